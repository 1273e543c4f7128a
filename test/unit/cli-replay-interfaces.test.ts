// `crs replay --format hl7v2|fhir|mixed` (the real command): the vignettes as an interface engine's capture grade and
// page as their JSON does; HL7 files split by MLLP frames or blank lines; refusals are "rejected" events.
import { describe, expect, it } from 'vitest';
import { frame } from '#app/hl7v2/mllp.ts';
import { replayCli, replayMain } from '#test/support/cli.ts';
import { asInterfaces, vignettes } from '#test/support/interfaces.ts';

const pages = (events: Record<string, unknown>[]) =>
  events.filter((e) => e.type === 'notification').map(({ notificationId: _n, causedBy: _c, ...rest }) => rest);

describe('crs replay --format', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    it(`a mixed capture of the ${scheme} vignettes pages and grades as their JSON`, async () => {
      const set = vignettes.filter((v) => v.scheme === scheme);
      const capture = set
        .flatMap(asInterfaces)
        .map((i) => (i.format === 'hl7v2' ? i.text.replace(/\r/g, '\n') : JSON.stringify(i.bundle)))
        .join('\n\n');
      const viaInterfaces = await replayMain(['-', '--format', 'mixed', '--scheme', scheme], capture);
      const viaJson = await replayMain(
        ['-', '--scheme', scheme],
        set
          .flatMap((v) => v.messages)
          .map((m) => JSON.stringify(m))
          .join('\n'),
      );
      expect(viaInterfaces.stderr).toBe('');
      expect(viaInterfaces.status).toBe(0);
      expect(pages(viaInterfaces.events)).toEqual(pages(viaJson.events));
      expect(pages(viaInterfaces.events).length).toBe(set.reduce((n, v) => n + v.expect.notifications.length, 0));
      const last = (r: typeof viaJson, patientId: string) =>
        r.events.filter((e) => e.type === 'assessment' && e.patientId === patientId).at(-1);
      for (const patientId of new Set(set.flatMap((v) => v.messages.map((m) => m.patientId)))) {
        expect([last(viaInterfaces, patientId)?.crsGrade, last(viaInterfaces, patientId)?.icansGrade]).toEqual([
          last(viaJson, patientId)?.crsGrade,
          last(viaJson, patientId)?.icansGrade,
        ]);
      }
    });
  }

  it('reads HL7 files as MLLP frames or as blank-line blocks, and FHIR as NDJSON; refusals are rejected events with exit 1', async () => {
    const v = vignettes[0]!;
    const hl7 = asInterfaces(v).flatMap((i) => (i.format === 'hl7v2' ? [i.text] : []));
    // Standard input in a process of its own (bin/crs.js), as an interface engine's capture is piped in; the others
    // run through main in this process, which reads their "-" from a file.
    const framed = replayCli(['-', '--format', 'hl7v2'], Buffer.concat(hl7.map(frame)).toString('utf8'));
    const blocks = await replayMain(
      ['-', '--format', 'hl7v2'],
      hl7.map((t) => t.replace(/\r/g, '\r\n')).join('\r\n\r\n'),
    );
    expect(framed.status).toBe(0);
    expect(framed.events.filter((e) => e.type === 'assessment')).toHaveLength(hl7.length);
    expect(blocks.events).toEqual(framed.events);

    const bad = await replayMain(
      ['-', '--format', 'hl7v2'],
      `${hl7[0]!.replace('268192^MDC_DIM_DEGC^MDC', '')}\n\nnot hl7`,
    );
    expect(bad.status).toBe(1);
    expect(bad.events.filter((e) => e.type === 'rejected')).toEqual([
      { type: 'rejected', line: 1, errors: [expect.stringMatching(/^OBX-1.6: OBX-6 no unit/)] },
      { type: 'rejected', line: 2, errors: ['MSH-1: the message does not start with an MSH segment'] },
    ]);

    const fhir = asInterfaces(v).flatMap((i) => (i.format === 'fhir' ? [JSON.stringify(i.bundle)] : []));
    const nd = await replayMain(['-', '--format', 'fhir'], `${fhir.join('\n')}\n{"resourceType":"Observation"}\n`);
    expect(nd.status).toBe(1);
    expect(nd.events.at(-1)).toMatchObject({ type: 'rejected', line: fhir.length + 1 });
  });

  it('refuses what the servers refuse before reading it: a frame over 1 MiB, one cut off by the next start block', async () => {
    const hl7 = vignettes.flatMap(asInterfaces).flatMap((i) => (i.format === 'hl7v2' ? [i.text] : []));
    const huge = `${hl7[0]!}\rNTE|1||${'x'.repeat(1024 * 1024)}`;
    const cutOff = Buffer.from(`\x0b${hl7[0]!}`);
    const r = await replayMain(
      ['-', '--format', 'hl7v2'],
      Buffer.concat([frame(huge), cutOff, frame(hl7[1]!), frame(hl7[2]!)]).toString('utf8'),
    );
    expect(r.status).toBe(1);
    expect(r.events.filter((e) => e.type === 'rejected')).toEqual([
      { type: 'rejected', line: 1, errors: ['MSH-1: the message is longer than 1048576 bytes, the most taken'] },
      {
        type: 'rejected',
        line: 2,
        errors: ['MSH-1: a frame started before the previous one ended; the previous one is dropped'],
      },
    ]);
    expect(r.events.filter((e) => e.type === 'assessment')).toHaveLength(2); // the two whole frames after them
    const blocks = await replayMain(['-', '--format', 'hl7v2'], `${huge}\n\n${hl7[1]!}`);
    expect(blocks.events.filter((e) => e.type === 'rejected')).toEqual([
      { type: 'rejected', line: 1, errors: ['MSH-1: the message is longer than 1048576 bytes, the most taken'] },
    ]);
  });

  it('refuses a message over the segment or delimiter bound, as the servers do, and grades the next', async () => {
    const hl7 = vignettes.flatMap(asInterfaces).flatMap((i) => (i.format === 'hl7v2' ? [i.text] : []));
    const segments = `${hl7[0]!}${'\rNTE|1'.repeat(1_000)}`;
    const delimiters = `${hl7[0]!}\rNTE|1||${'^'.repeat(40_000)}`;
    const r = await replayMain(
      ['-', '--format', 'hl7v2'],
      Buffer.concat([segments, delimiters, hl7[1]!].map(frame)).toString(),
    );
    expect(r.status).toBe(1);
    expect(r.events.filter((e) => e.type === 'rejected')).toEqual([
      {
        type: 'rejected',
        line: 1,
        errors: [expect.stringMatching(/^MSH-1: the message has \d+ segments, more than 1000, the most taken$/)],
      },
      {
        type: 'rejected',
        line: 2,
        errors: [
          expect.stringMatching(
            /^MSH-1: the message has \d+ field, component, repetition and subcomponent delimiters, more than 40000, the most taken$/,
          ),
        ],
      },
    ]);
    expect(r.events.filter((e) => e.type === 'assessment')).toHaveLength(1);
  });
});

describe('crs replay --format, pinned by a mutation run', () => {
  const obs = (id: string, unit = 'Cel') => ({
    resource: {
      resourceType: 'Observation',
      identifier: [{ system: 'urn:crs:message-id', value: id }],
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }] },
      subject: { reference: 'Patient/F-1' },
      effectiveDateTime: '2026-01-10T08:00:00Z',
      valueQuantity: { value: 38.6, unit, system: 'http://unitsofmeasure.org', code: unit },
    },
    request: { method: 'POST', url: 'Observation' },
  });
  const bundle = (type: string, entry: object[]) => ({ resourceType: 'Bundle', type, entry });
  const fhir = (input: string) => replayMain(['-', '--format', 'fhir'], input);
  const types = (r: Awaited<ReturnType<typeof replayMain>>) => r.events.map((e) => e.type);
  const badUnit = [
    'Bundle.entry[1].resource.valueQuantity.code: unit "mmHg" is not a unit for vitals.temperatureC (use UCUM Cel or [degF]; MDC 268192 MDC_DIM_DEGC or 266560 MDC_DIM_FAHR)',
  ];

  it('reads a pretty-printed FHIR file as one value', async () => {
    const r = await fhir(JSON.stringify(bundle('transaction', [obs('f1')]), null, 2));
    expect(r.status).toBe(0);
    expect(types(r)).toEqual(['assessment', 'notification']);
  });

  it('reads a FHIR file that opens with a UTF-8 byte order mark (a Windows tool wrote it), as the same file without', async () => {
    const r = await fhir(`\uFEFF${JSON.stringify(bundle('transaction', [obs('f1')]), null, 2)}`);
    expect(r.events.map((e) => e.type)).toEqual(['assessment', 'notification']);
    expect(r.status).toBe(0);
  });

  it('refuses a whole transaction with a bad entry, grades a batch but its bad entry, and ignores an unknown resource', async () => {
    const tx = await fhir(JSON.stringify(bundle('transaction', [obs('f1'), obs('f2', 'mmHg')])));
    expect(tx.status).toBe(1);
    expect(tx.events).toEqual([{ type: 'rejected', line: 1, errors: badUnit }]);

    const batch = await fhir(JSON.stringify(bundle('batch', [obs('f1'), obs('f2', 'mmHg')])));
    expect(batch.status).toBe(1);
    expect(types(batch)).toEqual(['rejected', 'assessment', 'notification']);
    expect(batch.events[0]).toEqual({ type: 'rejected', line: 1, errors: badUnit });

    const other = { resource: { resourceType: 'Practitioner' }, request: { method: 'POST', url: 'Practitioner' } };
    const warned = await fhir(JSON.stringify(bundle('transaction', [obs('f1'), other])));
    expect(warned.status).toBe(0);
    expect(types(warned)).toEqual(['assessment', 'notification']);
  });

  it('says which NDJSON line is not JSON', async () => {
    const r = await fhir(`${JSON.stringify(bundle('transaction', [obs('f1')]))}\n{oops\n`);
    expect(r.status).toBe(1);
    expect(r.events.at(-1)).toEqual({
      type: 'rejected',
      line: 2,
      errors: [expect.stringMatching(/^not JSON: /)],
    });
  });

  it('refuses a FHIR item nested deeper than the servers take, as rejected, and grades the next', async () => {
    // Until 2026-12-05 a Bundle.type nested 100,000 deep overflowed the stack where it is quoted: replay crashed.
    const deep = `{"resourceType":"Bundle","type":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`;
    const r = await fhir(`${deep}\n${JSON.stringify(bundle('transaction', [obs('f1')]))}\n`);
    expect(r.status).toBe(1);
    expect(r.events[0]).toEqual({
      type: 'rejected',
      line: 1,
      errors: ['the item nests arrays and objects more than 64 deep'],
    });
    expect(types(r).slice(1)).toEqual(['assessment', 'notification']);
  });

  const hl7 = (n: number, time: string, celsius: string) =>
    [
      `MSH|^~\\&|CRS-SIM|SIM|CRS|HOSP|20260110080000+0000||ORU^R01^ORU_R01|H-00${n}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
      'PID|||H1^^^HOSP^MR',
      `OBR|1|H-00${n}^CRS-SIM|H-00${n}^CRS-SIM|182777000^monitoring of patient^SCT|||${time}`,
      `OBX|1|NM|150344^MDC_TEMP^MDC|1.1.1.1|${celsius}|268192^MDC_DIM_DEGC^MDC|||||F|||${time}||||monitor-H1^EUI-64`,
    ].join('\n');

  it('splits HL7 blocks at a line of only spaces and tabs', async () => {
    const input = `${hl7(1, '20260110080000+0000', '37.0')}\n \t\n${hl7(2, '20260110090000+0000', '38.6')}\n`;
    const r = await replayMain(['-', '--format', 'hl7v2'], input);
    expect(r.status).toBe(0);
    expect(r.events.map((e) => `${e.type}:${e.messageId ?? e.toGrade}`)).toEqual([
      'assessment:hl7v2:SIM/H-001',
      'assessment:hl7v2:SIM/H-002',
      'notification:1',
    ]);
  });

  it("takes an ADT event's bed (A01, A02...) for a patient already in the file, as a server takes it for one it knows", async () => {
    const a02 = (patient: string, id: string) =>
      [
        `MSH|^~\\&|EPIC|HOSP|CRS|HOSP|20260110100000+0000||ADT^A02^ADT_A02|${id}|P|2.6`,
        'EVN|A02|20260110100000+0000',
        `PID|||${patient}^^^HOSP^MR`,
        'PV1||I|H5^^07',
      ].join('\n');
    const r = await replayMain(
      ['-', '--format', 'hl7v2'],
      [a02('H1', 'T-1'), hl7(1, '20260110080000+0000', '37.0'), a02('H1', 'T-2'), a02('H9', 'T-3')].join('\n\n'),
    );
    expect(r.status).toBe(0);
    // The first transfer comes before any data of H1, the last is of a patient the file never names otherwise.
    expect(r.events.map((e) => `${e.type}:${e.messageId}`)).toEqual([
      'assessment:hl7v2:SIM/H-001',
      'assessment:hl7v2:HOSP/T-2',
    ]);
  });

  it("takes an Encounter for a patient of an earlier item or of its own item's data, as a server takes it for one it knows", async () => {
    const encounter = (patient: string, id: string, status = 'in-progress') => ({
      resource: {
        resourceType: 'Encounter',
        id,
        status,
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
        subject: { reference: `Patient/${patient}` },
        period: { start: '2026-01-10T07:00:00Z', ...(status === 'finished' ? { end: '2026-01-10T09:00:00Z' } : {}) },
        location: [
          {
            location: { display: 'H5-07' },
            physicalType: {
              coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'bd' }],
            },
          },
        ],
      },
      request: { method: 'PUT', url: `Encounter/${id}` },
    });
    const other = (e: ReturnType<typeof obs>, patient: string) => ({
      ...e,
      resource: { ...e.resource, subject: { reference: `Patient/${patient}` } },
    });
    const items = [
      bundle('transaction', [encounter('F-1', 'e-before')]), // before any data of F-1: nothing taken
      bundle('transaction', [obs('f1')]),
      bundle('transaction', [encounter('F-1', 'e-after', 'finished')]), // F-1 known: its bed and its discharge
      bundle('transaction', [encounter('F-9', 'e-never')]), // a patient the file never names otherwise
      bundle('batch', [encounter('F-2', 'e-with'), other(obs('f2'), 'F-2')]), // its own data in the same request
    ];
    const r = await fhir(items.map((i) => JSON.stringify(i)).join('\n'));
    expect(r.status).toBe(0);
    expect(r.events.filter((e) => e.type === 'assessment').map((e) => e.messageId)).toEqual([
      'fhir:Observation/f1',
      expect.stringMatching(/^fhir:Encounter\/e-after\/t=/),
      expect.stringMatching(/^fhir:Encounter\/e-after\/t=/),
      'fhir:Encounter/e-with',
      'fhir:Observation/f2',
    ]);
  });

  it('reads HL7 times without an offset in --hl7-zone', async () => {
    const r = await replayMain(
      ['-', '--format', 'hl7v2', '--hl7-zone', 'Europe/Paris'],
      hl7(3, '20260110090000', '38.6'),
    );
    expect(r.status).toBe(0);
    expect(r.events[0]).toMatchObject({ type: 'assessment', at: '2026-01-10T08:00:00Z', crsGrade: 1 });
  });

  it('refuses an HL7 time of the hour a daylight-saving change repeats, naming both offsets (a file has no arrival to tell them apart)', async () => {
    const input = `${hl7(4, '20261025013000', '37.0')}\n\n${hl7(5, '20261025023000', '38.6')}\n\n${hl7(6, '20261025023000+0100', '38.6')}\n`;
    const r = await replayMain(['-', '--format', 'hl7v2', '--hl7-zone', 'Europe/Paris'], input);
    expect(r.status).toBe(1);
    const events = r.events.filter((e) => e.type !== 'notification');
    expect(events.map((e) => [e.type, e.type === 'assessment' ? e.at : e.errors])).toEqual([
      ['assessment', '2026-10-24T23:30:00Z'],
      [
        'rejected',
        [
          'OBR-1.7: OBR-7 "20261025023000" is in the hour Europe/Paris repeats when its clocks go from +0200 to +0100: either 20261025023000+0200 or 20261025023000+0100; send the time with its UTC offset',
          'OBX-1.14: OBX-14 "20261025023000" is in the hour Europe/Paris repeats when its clocks go from +0200 to +0100: either 20261025023000+0200 or 20261025023000+0100; send the time with its UTC offset',
        ],
      ],
      ['assessment', '2026-10-25T01:30:00Z'],
    ]);
  });

  it("takes the identifier of --fhir-patient-system's system, as crs serve does", async () => {
    const HOSP = 'http://hospital.example/mrn';
    const temp = (n: number, at: string, value: number, identifier: Record<string, unknown>) =>
      JSON.stringify({
        resourceType: 'Observation',
        id: `t-${n}`,
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }] },
        subject: { identifier },
        effectiveDateTime: at,
        valueQuantity: { value, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
      });
    // The hospital's number, then a regional one: both taken without the setting (two patients), the regional refused
    // with it.
    const input = [
      temp(1, '2026-01-10T08:00:00Z', 37.0, { system: HOSP, value: 'H1' }),
      temp(2, '2026-01-10T09:00:00Z', 38.6, { system: HOSP, value: 'H1' }),
      temp(3, '2026-01-10T10:00:00Z', 38.7, { system: 'urn:region', value: 'R-9' }),
    ].join('\n\n');
    const unset = await replayMain(['-', '--format', 'fhir'], input);
    expect(new Set(unset.events.filter((e) => e.type === 'assessment').map((e) => e.patientId))).toEqual(
      new Set(['H1', 'R-9']),
    );
    const r = await replayMain(['-', '--format', 'mixed', '--fhir-patient-system', HOSP], input);
    expect(r.status).toBe(1);
    expect(r.events.filter((e) => e.type === 'assessment').map((e) => e.patientId)).toEqual(['H1', 'H1']);
    expect(r.events.filter((e) => e.type === 'rejected')).toEqual([
      {
        type: 'rejected',
        line: 3,
        errors: [
          `Observation.subject.identifier.system: the patient is identified by an identifier of the system "${HOSP}", whose values are this system's patient ids: send that one`,
        ],
      },
    ]);
  });

  it("takes the PID-3 repetition of --hl7-patient-authority's assigning authority, as crs serve does", async () => {
    // The hospital's and the regional MR number, in either order: refused without the setting (which is the patient
    // would be a guess), the hospital's taken with it, in both orders, as one patient.
    const input = [
      hl7(1, '20260110080000+0000', '37.0').replace('PID|||H1^^^HOSP^MR', 'PID|||R-9^^^REGION^MR~H1^^^HOSP^MR'),
      hl7(2, '20260110090000+0000', '38.6').replace('PID|||H1^^^HOSP^MR', 'PID|||H1^^^HOSP^MR~R-9^^^REGION^MR'),
      hl7(3, '20260110100000+0000', '38.7').replace('PID|||H1^^^HOSP^MR', 'PID|||R-9^^^REGION^MR'),
    ].join('\n\n');
    const unset = await replayMain(['-', '--format', 'hl7v2'], input);
    expect(unset.events.filter((e) => e.type === 'rejected').map((e) => e.line)).toEqual([1, 2]);
    const r = await replayMain(['-', '--format', 'mixed', '--hl7-patient-authority', 'HOSP'], input);
    expect(r.status).toBe(1);
    expect(r.events.filter((e) => e.type === 'assessment').map((e) => e.patientId)).toEqual(['H1', 'H1']);
    expect(r.events.filter((e) => e.type === 'rejected')).toEqual([
      {
        type: 'rejected',
        line: 3,
        errors: [
          'PID-1.3: PID-3 holds no identifier of the assigning authority "HOSP" (PID-3.4), whose ids are this system\'s patient ids: send that one',
          expect.stringMatching(/^OBX-1.3: refused: the patient \(PID 1\) has no valid PID-3/),
        ],
      },
    ]);
  });

  it('reads back-to-back MLLP frames as one message each', async () => {
    const framed = [hl7(1, '20260110080000+0000', '37.0'), hl7(2, '20260110090000+0000', '38.6')]
      .map((t) => frame(t.replace(/\n/g, '\r')))
      .map((b) => b.toString('utf8'))
      .join('');
    const r = await replayMain(['-', '--format', 'hl7v2'], framed);
    expect(r.status).toBe(0);
    expect(r.events.map((e) => `${e.type}:${e.messageId ?? e.toGrade}`)).toEqual([
      'assessment:hl7v2:SIM/H-001',
      'assessment:hl7v2:SIM/H-002',
      'notification:1',
    ]);
  });

  it('an unreadable file is a usage error, exit 2, naming the file', async () => {
    const r = await replayMain(['nofile.hl7', '--format', 'hl7v2'], '');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read nofile\.hl7/);
  });
});

describe('crs replay --format, file layouts, pinned by a mutation run', () => {
  const hl7 = (n: number, time: string, celsius: string) => [
    `MSH|^~\\&|CRS-SIM|SIM|CRS|HOSP|20260110080000+0000||ORU^R01^ORU_R01|E-00${n}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
    'PID|||E1^^^HOSP^MR',
    `OBR|1|E-00${n}^CRS-SIM|E-00${n}^CRS-SIM|182777000^monitoring of patient^SCT|||${time}`,
    `OBX|1|NM|150344^MDC_TEMP^MDC|1.1.1.1|${celsius}|268192^MDC_DIM_DEGC^MDC|||||F|||${time}||||monitor-E1^EUI-64`,
  ];
  const fever = {
    resourceType: 'Observation',
    identifier: [{ system: 'urn:crs:message-id', value: 'E-f1' }],
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }] },
    subject: { reference: 'Patient/E2' },
    effectiveDateTime: '2026-01-10T08:00:00Z',
    valueQuantity: { value: 38.6, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
  };
  const seen = (r: Awaited<ReturnType<typeof replayMain>>) =>
    r.events.map((e) => `${e.type}:${e.messageId ?? e.toGrade ?? JSON.stringify(e.errors)}`);

  it('splits HL7 written with CR line ends at an empty line (CR CR)', async () => {
    const input = `${hl7(1, '20260110080000+0000', '37.0').join('\r')}\r\r${hl7(2, '20260110090000+0000', '38.6').join('\r')}\r`;
    const r = await replayMain(['-', '--format', 'hl7v2'], input);
    expect(seen(r)).toEqual(['assessment:hl7v2:SIM/E-001', 'assessment:hl7v2:SIM/E-002', 'notification:1']);
    expect(r.status).toBe(0);
  });

  it('skips blank lines of an NDJSON file', async () => {
    const later = {
      ...fever,
      identifier: [{ system: 'urn:crs:message-id', value: 'E-f2' }],
      effectiveDateTime: '2026-01-10T09:00:00Z',
    };
    const r = await replayMain(
      ['-', '--format', 'fhir'],
      `${JSON.stringify(fever)}\n\n   \n${JSON.stringify(later)}\n`,
    );
    expect(seen(r)).toEqual(['assessment:fhir:Observation/E-f1', 'notification:1', 'assessment:fhir:Observation/E-f2']);
    expect(r.status).toBe(0);
  });

  it('reads a mixed capture written with CRLF, a JSON block indented, blank lines before and after', async () => {
    const input = [
      '',
      hl7(1, '20260110070000+0000', '37.0').join('\r\n'),
      `  ${JSON.stringify(fever)}`,
      hl7(2, '20260110090000+0000', '37.2').join('\r\n'),
      '',
    ].join('\r\n\r\n');
    const r = await replayMain(['-', '--format', 'mixed'], input);
    expect(seen(r)).toEqual([
      'assessment:hl7v2:SIM/E-001',
      'assessment:fhir:Observation/E-f1',
      'notification:1',
      'assessment:hl7v2:SIM/E-002',
    ]);
    expect(r.status).toBe(0);
  });

  it('replays a capture dated after today: replay has no clock', async () => {
    const r = await replayMain(['-', '--format', 'hl7v2'], hl7(1, '20990110080000+0000', '38.6').join('\n'));
    expect(seen(r)).toEqual(['assessment:hl7v2:SIM/E-001', 'notification:1']);
    expect(r.status).toBe(0);
  });

  it('skips blank lines before and between HL7 messages', async () => {
    const input = `\n${hl7(1, '20260110080000+0000', '37.0').join('\n')}\n\n\n\n${hl7(2, '20260110090000+0000', '38.6').join('\n')}\n`;
    const r = await replayMain(['-', '--format', 'hl7v2'], input);
    expect(seen(r)).toEqual(['assessment:hl7v2:SIM/E-001', 'assessment:hl7v2:SIM/E-002', 'notification:1']);
  });

  it('leaves out the whole of a batch entry with an error, never its good parts', async () => {
    const crs = 'https://crs-alerting.example/fhir/CodeSystem/crs';
    const oxygen = {
      ...fever,
      identifier: [{ system: 'urn:crs:message-id', value: 'E-o1' }],
      effectiveDateTime: '2026-01-10T09:00:00Z',
      code: { coding: [{ system: crs, code: 'oxygen-device' }] },
      valueQuantity: undefined,
      valueCodeableConcept: { coding: [{ system: crs, code: 'nasal_cannula' }] },
      component: [
        {
          code: { coding: [{ system: 'http://loinc.org', code: '3151-8' }] },
          valueQuantity: { value: 2, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mmHg' },
        },
      ],
    };
    const entry = (resource: object) => ({ resource, request: { method: 'POST', url: 'Observation' } });
    const r = await replayMain(
      ['-', '--format', 'fhir'],
      JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [entry(fever), entry(oxygen)] }),
    );
    expect(r.events.map((e) => `${e.type}:${e.messageId ?? e.toGrade ?? e.line}`)).toEqual([
      'rejected:1',
      'assessment:fhir:Observation/E-f1',
      'notification:1',
    ]);
    expect(r.status).toBe(1);
  });

  it('reports a reading the contract refuses, and a JSON value that is no FHIR resource or Bundle, as rejected', async () => {
    const hot = await replayMain(['-', '--format', 'hl7v2'], hl7(1, '20260110080000+0000', '99.0').join('\n'));
    expect(hot.events).toEqual([
      { type: 'rejected', line: 1, errors: ['OBX-1.5: vitals.temperatureC: 99 is outside 25-45 (Fahrenheit?)'] },
    ]);
    expect(hot.status).toBe(1);
    const notFhir = await replayMain(['-', '--format', 'fhir'], `${JSON.stringify(fever)}\n[1, 2]\n`);
    expect(notFhir.events.map((e) => `${e.type}:${e.line ?? e.messageId ?? e.toGrade}`)).toEqual([
      'assessment:fhir:Observation/E-f1',
      'notification:1',
      'rejected:2',
    ]);
    expect(notFhir.status).toBe(1);
  });
});
