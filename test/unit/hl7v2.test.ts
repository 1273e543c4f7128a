// IHE PCD-01 (HL7 v2 ORU^R01) in, contract messages and an ACK out: realistic monitor-gateway messages (several OBX
// groups, arterial and cuff pressure, repeated observations, Z-segments, missing units, bad times, a name in PID-5).
import type { Principal } from '#app/scope.ts';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { applicationErrors, buildAck, readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { handleHl7Http } from '#app/hl7v2/http.ts';
import { ingestHl7 } from '#app/hl7v2/ingest.ts';
import { HL7_MAX_DELIMITERS, HL7_MAX_SEGMENTS, translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { idPart, messageIdOf } from '#app/interfaces/ids.ts';
import { parseZone, wallClockInstants, zoneProblem } from '#app/interfaces/zone.ts';
import { timeZoneProblem } from '#domain/time.ts';
import { crsGradesOf } from '../support/interfaces.ts';
import { MemoryQueue, ingestFakes, reservingDirectory } from '#test/support/port-fakes.ts';
import type { DeviceMessage } from '#domain/contract.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const NAME = 'Zebedee^Quigglesworth';

/** A Philips/GE-style gateway message: MDS/VMD/channel rows, two times, arterial and cuff pressure, a Z-segment. */
const PCD01 = [
  'MSH|^~\\&|GW-ICU4^0012345678ABCDEF^EUI-64|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|MSG000123|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO',
  `PID|||P-0042^^^HOSP^MR~998877^^^HOSP^PI||${NAME}||19700101|F`,
  'PV1||I|ICU4^^12',
  'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110080000+0000',
  'OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||0012345678ABCDEF^EUI-64',
  'OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080000+0000',
  'OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.1.1.2|110|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110080000+0000',
  'OBX|4|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|112|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110080000+0000',
  'OBX|5|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|1.3.1.1|86|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000',
  'OBX|6|NM|150034^MDC_PRESS_BLD_ART_DIA^MDC|1.3.1.2|48|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000',
  'OBX|7|NM|150035^MDC_PRESS_BLD_ART_MEAN^MDC|1.3.1.3|61|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000',
  'OBX|8|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.4.1.1|94|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000',
  'OBX|9|NM|150344^MDC_TEMP^MDC|1.5.1.1|38.6|268192^MDC_DIM_DEGC^MDC|||||R|||20260110080000+0000',
  'OBX|10|NM|151562^MDC_RESP_RATE^MDC|1.6.1.1|24|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||20260110080000+0000',
  'OBX|11|NM|131841^MDC_ECG_AMPL_ST_II^MDC|1.2.1.5|0.1|266418^MDC_DIM_MILLI_VOLT^MDC|||||R|||20260110080000+0000',
  'ZPD|1|vendor private|data',
  'OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|91|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080100+0000',
  'OBX|13|NM|150344^MDC_TEMP^MDC|1.5.1.1|38.9|268192^MDC_DIM_DEGC^MDC|||||D|||20260110080100+0000',
].join('\r');

const ok = (text: string, zone?: string) => {
  const r = translatePcd01(text, zone ? { zone: parseZone(zone)! } : {});
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r;
};
const garbled = `${PCD01.split('\r')[0]}\rZebedee^Quigglesworth`;
const withLine = (n: number, line: string) =>
  PCD01.split('\r')
    .map((l, i) => (i === n ? line : l))
    .join('\r');

describe('PCD-01 translation', () => {
  it("quotes what a sender sent at most 64 characters long, then ..., and printable, in an ACK's ERR text", () => {
    // Until 2026-12-07 a 5,000-character message type was echoed whole, a control character raw.
    for (const [type, shown] of [
      ['X'.repeat(5000), `"${'X'.repeat(64)}..."`],
      ['SIU\u0001\u202e', '"SIU\\u0001\\u202e"'],
    ]) {
      const r = translatePcd01(PCD01.replace('ORU^R01^ORU_R01', `${type}^R01`));
      expect(r.ok).toBe(false);
      const text = r.ok ? '' : r.problems[0]!.text;
      expect(text.startsWith(`message type ${shown} is not taken`), text.slice(0, 120)).toBe(true);
    }
    const time = `2026${'1'.repeat(4000)}`;
    const r = translatePcd01(
      withLine(5, `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||${time}`),
    );
    const said = JSON.stringify(r.ok ? r.problems : r.problems);
    expect(said).not.toMatch(/1{65}/);
  });

  it('makes one contract message per observation time, arterial over cuff, ECG over oximeter, skipping rows without values, unknown codes, deleted results and Z-segments', () => {
    const r = ok(PCD01);
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message)).toEqual([
      {
        messageId: 'hl7v2:ICU4/MSG000123/t=20260110T080000Z',
        patientId: 'P-0042',
        observedAt: '2026-01-10T08:00:00Z',
        source: { deviceId: 'GW-ICU4', kind: 'monitor' },
        vitals: {
          spo2: 93,
          heartRate: 112,
          systolicBP: 86,
          diastolicBP: 48,
          meanArterialPressure: 61,
          temperatureC: 38.6,
          respiratoryRate: 24,
        },
        enrolment: { bed: '12', ward: 'ICU4' },
      },
      {
        messageId: 'hl7v2:ICU4/MSG000123/t=20260110T080100Z',
        patientId: 'P-0042',
        observedAt: '2026-01-10T08:01:00Z',
        source: { deviceId: 'GW-ICU4', kind: 'monitor' },
        vitals: { spo2: 91 },
        enrolment: { bed: '12', ward: 'ICU4' },
      },
    ]);
  });

  it('never reads PID-5: the name is in no message, no ACK, no problem text', async () => {
    const queue = new MemoryQueue();
    const bad = withLine(1, `PID|||Zebedee Quigglesworth^^^HOSP^MR||${NAME}`); // a name typed into PID-3 too (refused, not echoed)
    for (const text of [
      PCD01,
      bad,
      garbled,
      withLine(11, 'OBX|8|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.4.1.1|94||||||R'),
    ]) {
      const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
      const everything = JSON.stringify([a, queue.messages]);
      expect(everything).not.toMatch(/Zebedee|Quigglesworth/);
    }
    expect(queue.messages.length).toBeGreaterThan(0);
  });

  it('is deterministic: the same message sent again gives the same ids and content (it deduplicates)', () => {
    expect(ok(PCD01).translated.map((t) => t.message)).toEqual(ok(PCD01).translated.map((t) => t.message));
    const other = ok(PCD01.replace('MSG000123', 'MSG000124')).translated[0]!.message.messageId;
    expect(other).toBe('hl7v2:ICU4/MSG000124/t=20260110T080000Z');
  });

  it('keeps ids in the contract set: other characters of MSH-10 and MSH-4 are escaped one to one', () => {
    const r = ok(PCD01.replace('|ICU4|CRS|', '|ICU 4_A|CRS|').replace('MSG000123', 'A_B C\\F\\D'));
    expect(r.translated[0]!.message.messageId).toBe('hl7v2:ICU~204~5FA/A~5FB~20C~7CD/t=20260110T080000Z');
  });

  it('converts Fahrenheit only when the unit says so, and refuses a vital without a unit (never guessed)', async () => {
    const f = ok(
      withLine(12, 'OBX|9|NM|150344^MDC_TEMP^MDC|1.5.1.1|101.3|266560^MDC_DIM_FAHR^MDC|||||R|||20260110080000+0000'),
    );
    expect((f.translated[0]!.message.vitals as Record<string, number>).temperatureC).toBe(38.5);
    const f2 = ok(
      withLine(12, 'OBX|9|NM|8310-5^Body temperature^LN|1.5.1.1|101.3|[degF]^^UCUM|||||R|||20260110080000+0000'),
    );
    expect((f2.translated[0]!.message.vitals as Record<string, number>).temperatureC).toBe(38.5);

    const noUnit = ok(withLine(12, 'OBX|9|NM|150344^MDC_TEMP^MDC|1.5.1.1|38.6||||||R|||20260110080000+0000'));
    expect(noUnit.problems).toEqual([
      {
        at: { segment: 'OBX', sequence: 9, field: 6 },
        code: 103,
        text: expect.stringMatching(/OBX-6 no unit: a vitals.temperatureC value needs one/),
      },
    ]);
    expect(noUnit.translated[0]!.message.vitals).not.toHaveProperty('temperatureC');

    // 101.3 "Cel": the contract's own range check refuses it, reported at its OBX, and the other vitals are kept.
    const queue = new MemoryQueue();
    const a = await ingestHl7(
      withLine(12, 'OBX|9|NM|150344^MDC_TEMP^MDC|1.5.1.1|101.3|Cel^^UCUM|||||R|||20260110080000+0000'),
      { deviceId: 'gw', role: 'monitor' },
      { queue, now: () => NOW },
    );
    expect(a.code).toBe('AE');
    expect(a.status).toBe(202);
    expect(a.ack).toContain(
      'ERR||OBX^9^5^1|102^Data type error^HL70357|E||||vitals.temperatureC: 101.3 is outside 25-45 (Fahrenheit?)',
    );
    expect(queue.messages[0]!.message.vitals).toEqual({
      spo2: 93,
      heartRate: 112,
      systolicBP: 86,
      diastolicBP: 48,
      meanArterialPressure: 61,
      respiratoryRate: 24,
    });
  });

  it('takes OBX-14, else OBR-7; refuses a time without an offset unless the site zone is configured, and impossible times', () => {
    const local = PCD01.replace(/\+0000/g, '');
    const refused = translatePcd01(local);
    expect(refused.ok && refused.translated).toEqual([]);
    expect(refused.problems.map((p) => `${p.at.segment}-${p.at.field}`)).toContain('OBX-14');
    expect(refused.problems[0]!.text).toMatch(/has no UTC offset/);
    const paris = ok(local, 'Europe/Paris');
    expect(paris.translated[0]!.message.observedAt).toBe('2026-01-10T07:00:00Z');
    const summer = ok(local.replace(/20260110/g, '20260710'), 'Europe/Paris');
    expect(summer.translated[0]!.message.observedAt).toBe('2026-07-10T06:00:00Z');
    expect(ok(local, '+0530').translated[0]!.message.observedAt).toBe('2026-01-10T02:30:00Z');

    const noObx14 = ok(
      PCD01.split('\r')
        .map((l) => (l.startsWith('OBX') ? l.replace(/\|20260110080[01]00\+0000$/, '|') : l))
        .join('\r'),
    );
    expect(noObx14.translated.map((t) => t.message.observedAt)).toEqual(['2026-01-10T08:00:00Z']);

    for (const [bad, why] of [
      ['20261310080000+0000', /not a real date/],
      ['20260230080000+0000', /not a real date/],
      ['2026011008+0000', /not precise enough/],
      ['yesterday', /not an HL7 time/],
      ['20260110080000+2500', /impossible UTC offset/],
      ['20260110080000+0160', /impossible UTC offset/], // minutes of an offset, too
      ['20260110080000+1430', /impossible UTC offset/], // past +14:00, the widest zone
      ['20260110080000-1401', /impossible UTC offset/],
      // Second 60 (a leap second; read as the next minute, it would be 08:01:00): named, with the time to send.
      [
        '20260110080060+0000',
        'OBX-14 "20260110080060+0000" has a leap second (second 60), which is not taken: send 20260110080059.999+0000',
      ],
      [
        '20261231235960.5-0500',
        'OBX-14 "20261231235960.5-0500" has a leap second (second 60), which is not taken: send 20261231235959.999-0500',
      ],
      ['20260230235960+0000', /not a real date/],
    ] as const) {
      const r = ok(
        withLine(5, `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||${bad}`),
      );
      expect(r.problems).toEqual([
        {
          at: { segment: 'OBX', sequence: 2, field: 14 },
          code: 102,
          text: typeof why === 'string' ? why : expect.stringMatching(why),
        },
      ]);
    }
  });

  it('treats OBX-11 C as a correction (taken) and X, D, W as no value', () => {
    const corrected = ok(
      withLine(
        16,
        'OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||C|||20260110080100+0000',
      ),
    );
    expect(corrected.translated[1]!.message.vitals).toEqual({ spo2: 95 });
    const deleted = ok(
      withLine(
        16,
        'OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||W|||20260110080100+0000',
      ),
    );
    expect(deleted.translated).toHaveLength(1);
    // A gateway that writes the status in lower case still means "wrong": the value is not graded.
    const lower = ok(
      withLine(
        16,
        'OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||w|||20260110080100+0000',
      ),
    );
    expect(lower.translated).toHaveLength(1);
  });

  // Found by the hazard log (docs/safety.md, H9): no test sent these, and graded, a placeholder sent with "no result"
  // (a pressure of 120 from a cuff that could not measure) would count as a normal reading.
  it('skips a value sent with OBX-11 X (no result), N (not asked), I (pending) or O (order detail), told as nothing', () => {
    for (const status of ['X', 'x', 'N', 'I', 'O']) {
      const r = ok(
        withLine(
          16,
          `OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||${status}|||20260110080100+0000`,
        ).replace(/\rOBX\|13\|.*$/, ''), // its deleted row, which the AA tells of
      );
      expect(r.translated, status).toHaveLength(1);
      expect([r.problems, r.warnings ?? []], status).toEqual([[], []]);
    }
  });

  // Until 2026-12-06 a status outside HL7 table 0085 (a "Z", a typo, a vendor's own) was taken as a final result and
  // graded: what the sender meant by it is unknown. Refused at OBX-11 as a bad OBX-5 is; the other OBX still taken.
  it('refuses an OBX-11 that is no HL7 result status (table 0085), naming OBX-11 and the codes; the rest is taken', async () => {
    for (const status of ['Z', 'z', 'FINAL', 'A']) {
      const text = withLine(
        16,
        `OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||${status}|||20260110080100+0000`,
      );
      const r = ok(text);
      const why = `OBX-11 ${JSON.stringify(status.toUpperCase())} is no HL7 result status (table 0085: C D F I N O P R S U W X): whether the value is final, a correction or none would be a guess; the OBX is refused`;
      expect(r.problems, status).toEqual([{ at: { segment: 'OBX', sequence: 12, field: 11 }, code: 103, text: why }]);
      expect(
        r.translated.map((t) => t.message.vitals),
        status,
      ).toEqual([ok(PCD01).translated[0]!.message.vitals]);
      const queue = new MemoryQueue();
      const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
      expect([a.code, readAck(a.ack)?.code], status).toEqual(['AE', 'AE']);
      expect(a.ack.split('\r').filter((l) => l.startsWith('ERR|'))[0], status).toMatch(/^ERR\|\|OBX\^12\^11\^1\|103\^/);
      expect(queue.messages, status).toHaveLength(1);
    }
    // Every code of the table is known; an empty OBX-11 is read as before (taken), as is a code this system does not
    // grade with any status (skipped, as every field of it is).
    for (const status of ['C', 'F', 'P', 'R', 'S', 'U', '']) {
      const r = ok(
        withLine(
          16,
          `OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||${status}|||20260110080100+0000`,
        ),
      );
      expect([r.problems, r.translated[1]?.message.vitals], status).toEqual([[], { spo2: 95 }]);
    }
    const ungraded = ok(
      withLine(
        16,
        'OBX|12|NM|131841^MDC_ECG_AMPL_ST_II^MDC|1.2.1.5|0.1|266418^MDC_DIM_MILLI_VOLT^MDC|||||Z|||20260110080100+0000',
      ),
    );
    expect(ungraded.problems).toEqual([]);
  });

  it('tells the sender that a retraction (OBX-11 W or D) of a graded value is not applied: AA with an ERR of severity W', async () => {
    // The contract has no retraction: a value graded before stays graded (a grade is never lowered by data the
    // engine cannot verify). The sender believed it withdrawn when the AA said nothing.
    const why =
      'OBX-11 "W" (retracted) is not applied: this system has no retraction; a value sent before for this time stays graded. Send the right value with OBX-11 C and the same OBX-14, or tell the clinical team';
    for (const status of ['W', 'w', 'D']) {
      const text = withLine(
        16,
        `OBX|12|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|95|262688^MDC_DIM_PERCENT^MDC|||||${status}|||20260110080100+0000`,
      ).replace(/\rOBX\|13\|.*$/, '');
      const r = ok(text);
      expect([r.problems, r.warnings], status).toEqual([
        [],
        [
          {
            at: { segment: 'OBX', sequence: 12, field: 11 },
            code: 0,
            severity: 'W',
            text: why.replace('"W" (retracted)', status === 'D' ? '"D" (deleted)' : '"W" (retracted)'),
          },
        ],
      ]);
      const a = await ingestHl7(
        text,
        { deviceId: 'gw', role: 'monitor' },
        { queue: new MemoryQueue(), now: () => NOW },
      );
      expect([a.code, a.status, readAck(a.ack)?.code], status).toEqual(['AA', 202, 'AA']);
      expect(a.ack.split('\r').filter((l) => l.startsWith('ERR'))).toEqual([
        `ERR||OBX^12^11^1|0^Message accepted^HL70357|W||||${why.replace('"W" (retracted)', status === 'D' ? '"D" (deleted)' : '"W" (retracted)')}`,
      ]);
    }
    // No value (X), or a code this system does not grade: nothing was graded, nothing to say.
    const none = ok(
      withLine(
        16,
        'OBX|12|NM|131841^MDC_ECG_AMPL_ST_II^MDC|1.2.1.5|0.1|266418^MDC_DIM_MILLI_VOLT^MDC|||||W|||20260110080100+0000',
      ).replace(/\rOBX\|13\|.*$/, ''),
    );
    expect(none.warnings ?? []).toEqual([]);
  });

  it('reads OBX-3 by its coding system: the alternate identifier, and no MDC or 99CRS code under another system', () => {
    const at = '|||||R|||20260110080000+0000';
    // A vendor code first, the MDC code as the alternate identifier (OBX-3.4-6): still SpO2.
    const alternate = ok(
      withLine(5, `OBX|2|NM|0002-4822^Vendor SpO2^99VND^150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|88|%^^UCUM${at}`),
    );
    expect((alternate.translated[0]!.message.vitals as Record<string, number>).spo2).toBe(88);
    // A vendor's own 150344 is not MDC_TEMP, an oxygen-device code of another system is not ours, and a LOINC
    // "code" named like a property of every object is no code at all: each skipped silently, as any unknown code.
    const foreign = ok(
      [
        PCD01,
        `OBX|14|NM|150344^Vendor counter^99VND|1.9.1.1|3|Cel^^UCUM${at}`,
        `OBX|15|CWE|oxygen-device^^LN|1.9.1.2|336623009^Oxygen nasal cannula^SCT${at}`,
        `OBX|16|NM|constructor^^LN|1.9.1.3|20|/min^^UCUM${at}`,
      ].join('\r'),
    );
    expect(foreign.problems).toEqual([]);
    expect(foreign.translated.map((t) => t.message)).toEqual(ok(PCD01).translated.map((t) => t.message));
  });

  it('refuses a value that is not a plain HL7 NM: another value type, an exponent', () => {
    const at = '|||||R|||20260110080000+0000';
    const st = ok(withLine(5, `OBX|2|ST|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|%^^UCUM${at}`));
    expect(st.problems).toEqual([
      {
        at: { segment: 'OBX', sequence: 2, field: 2 },
        code: 102,
        text: 'OBX-2 value type "ST": a vitals.spo2 measurement must be NM',
      },
    ]);
    // 9.3e1 is no NM: it is refused, not read as 93.
    const exp = ok(withLine(5, `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|9.3e1|%^^UCUM${at}`));
    expect(exp.problems).toEqual([
      { at: { segment: 'OBX', sequence: 2, field: 5 }, code: 102, text: 'OBX-5 "9.3e1" is not a number' },
    ]);
    expect(exp.translated[0]!.message.vitals).not.toHaveProperty('spo2');
  });

  it('refuses an NM field that holds more than one number: two repetitions, components, a formatting escape', () => {
    // Only the first repetition or component was read, the rest dropped unsaid (a second SpO2 of 70 % among them),
    // and a formatting escape inside the digits was dropped: "9\.br\3" was read as 93.
    const at = '|||||R|||20260110080000+0000';
    for (const [value, shown] of [
      ['93~70', '93~70'],
      ['93^70', '93^70'],
      ['9\\.br\\3', '9\\.br\\3'],
    ]) {
      const r = ok(withLine(5, `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|${value}|%^^UCUM${at}`));
      expect(r.problems, value).toEqual([
        {
          at: { segment: 'OBX', sequence: 2, field: 5 },
          code: 102,
          text: `OBX-5 ${JSON.stringify(shown)} is not a number`,
        },
      ]);
      expect(r.translated[0]!.message.vitals, value).not.toHaveProperty('spo2');
    }
    // Spaces around the number are no second value.
    expect(ok(withLine(5, `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1| 93 |%^^UCUM${at}`)).problems).toEqual([]);
  });

  it('reads OBX-6 as sent: a bare MDC unit code, a UCUM code with its text', () => {
    const at = '|||||R|||20260110080000+0000';
    // 266016 with no coding system is MDC_DIM_MMHG (a number is no UCUM code); "Cel^deg C^UCUM" is Cel, not its text.
    const r = ok(
      withLine(8, `OBX|5|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|1.3.1.1|86|266016${at}`).replace(
        '|38.6|268192^MDC_DIM_DEGC^MDC|',
        '|38.6|Cel^deg C^UCUM|',
      ),
    );
    expect(r.problems).toEqual([]);
    expect(r.translated[0]!.message.vitals).toMatchObject({ systolicBP: 86, temperatureC: 38.6 });
  });

  it('reads a UCUM unit sent under the system MDC as written, and refuses another naming it (it was refused as no unit)', () => {
    const at = '|||||R|||20260110080000+0000';
    const sys = (unit: string) => ok(withLine(8, `OBX|5|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|1.3.1.1|86|${unit}${at}`));
    const ucum = sys('mm[Hg]^^MDC');
    expect(ucum.problems).toEqual([]);
    expect(ucum.translated.map((t) => (t.message.vitals as { systolicBP?: number } | undefined)?.systolicBP)).toContain(
      86,
    );
    const text = sys('^mmHg^MDC').problems.filter((p) => p.at.segment === 'OBX' && p.at.field === 6);
    expect(text.map((p) => p.text)).toEqual([expect.stringContaining('"mmHg"')]);
    expect(text[0]!.text).not.toContain('no unit');
  });

  it('refuses a unit whose MDC code and reference id name different units, naming OBX-6: never guessed', () => {
    const at = '|||||R|||20260110080000+0000';
    // 11.2 read as mmHg would be a systolic of 11 (hypotension); read as kPa it is 84. Which one was meant is unknown.
    const r = ok(
      withLine(8, `OBX|5|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|1.3.1.1|11.2|266016^MDC_DIM_KILO_PASCAL^MDC${at}`),
    );
    const unit = r.problems.filter((p) => p.at.segment === 'OBX' && p.at.field === 6);
    expect(unit.map((p) => p.text)).toEqual([
      expect.stringContaining('unit "266016 / MDC_DIM_KILO_PASCAL" names two different units for vitals.systolicBP'),
    ]);
    // The message's other systolic (the cuff's 94) is taken; neither reading of this one is.
    const systolic = r.translated
      .map((t) => (t.message.vitals as Record<string, number> | undefined)?.systolicBP)
      .filter((v) => v !== undefined);
    expect(systolic).toEqual([94]);
  });

  it('gives a second PID in one message no bed or OBR-7 time of the patient before it', () => {
    // The bed on a page must be the patient's own: another patient's PV1 or OBR-7 is never carried over.
    const r = ok(
      [
        PCD01,
        'PID|||P-0043^^^HOSP^MR',
        'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|97|262688^MDC_DIM_PERCENT^MDC|||||R',
        'OBX|2|NM|151562^MDC_RESP_RATE^MDC|1.6.1.1|18|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||20260110080000+0000',
      ].join('\r'),
    );
    expect(r.problems.map((p) => [p.at.segment, p.at.sequence, p.at.field, p.code])).toEqual([['OBX', 14, 14, 101]]);
    expect(r.problems[0]!.text).toBe('no observation time: OBX-14 is empty and there is no OBR-7');
    const second = r.translated.filter((t) => t.message.patientId === 'P-0043').map((t) => t.message);
    expect(second).toEqual([expect.objectContaining({ vitals: { respiratoryRate: 18 } })]);
    expect(second[0]).not.toHaveProperty('enrolment');
  });

  it('names the device of OBX-18 as the source, apart from the gateway', () => {
    const r = ok(
      withLine(
        5,
        'OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080000+0000||||0012345678ABCDEF^EUI-64',
      ),
    );
    const oximeter = r.translated.find(
      (t) => (t.message.source as { deviceId: string }).deviceId === '0012345678ABCDEF',
    )!.message;
    expect(oximeter).toMatchObject({
      messageId: expect.stringContaining('/d=0012345678ABCDEF/'),
      vitals: { spo2: 93 },
    });
  });

  it('takes the PID-3 repetition typed MR, wherever it stands', () => {
    const r = ok(PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', '998877^^^HOSP^PI~P-0042^^^HOSP^MR'));
    expect(r.translated.map((t) => t.message.patientId)).toEqual(['P-0042', 'P-0042']);
  });

  it('refuses a PID-3 with two different MR numbers (two assigning authorities), in any order: never the first taken', () => {
    // Taking the first made two patients of one when another sender (or the same, re-ordered) listed them the other way.
    for (const pid of ['P-0042^^^HOSP^MR~E-77^^^ENTERPRISE^MR', 'E-77^^^ENTERPRISE^MR~P-0042^^^HOSP^MR']) {
      const r = ok(PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', pid));
      expect(r.translated, pid).toEqual([]);
      expect(r.problems.slice(0, 1), pid).toEqual([
        {
          at: { segment: 'PID', sequence: 1, field: 3 },
          code: 102,
          text: 'PID-3 holds 2 different identifiers typed MR (PID-3.5): which one is the patient would be a guess; send the one of the hospital whose ids this system uses',
        },
      ]);
    }
    // The same number twice (two authorities that agree) is one patient; so is one bare identifier, typed or not.
    const same = ok(PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', 'P-0042^^^HOSP^MR~P-0042^^^ENT^MR'));
    expect(same.translated.map((t) => t.message.patientId)).toEqual(['P-0042', 'P-0042']);
    const bare = ok(PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', 'P-0042'));
    expect(bare.translated.map((t) => t.message.patientId)).toEqual(['P-0042', 'P-0042']);
    // None typed MR and several that differ: as ambiguous.
    const untyped = ok(PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', 'P-0042^^^HOSP^PI~998877^^^HOSP^AN'));
    expect([untyped.translated, untyped.problems[0]?.text]).toEqual([
      [],
      'PID-3 holds 2 different identifiers and none typed MR (PID-3.5): which one is the patient would be a guess; send the medical record number typed MR',
    ]);
  });

  describe("with the site's patient authority (--hl7-patient-authority)", () => {
    const pid = (cx: string) => PCD01.replace('P-0042^^^HOSP^MR~998877^^^HOSP^PI', cx);
    const read = (text: string, patientAuthority: string) => {
      const r = translatePcd01(text, { patientAuthority });
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      return { ids: r.translated.map((t) => t.message.patientId), problems: r.problems };
    };

    it('takes the PID-3 repetition of that assigning authority (PID-3.4.1), in any order, whatever else PID-3 holds', () => {
      // An engine that always sends two MR numbers, the hospital's and a regional one: refused without the setting.
      for (const cx of [
        'P-0042^^^HOSP^MR~E-77^^^REGION^MR',
        'E-77^^^REGION^MR~P-0042^^^HOSP^MR',
        'E-77^^^REGION^MR~998877^^^HOSP2^PI~P-0042^^^HOSP&1.2.250.1.71&ISO^MR~123^^^SSA^SS',
        'E-77^^^REGION^MR~P-0042^^^HOSP', // the hospital's untyped
        'E-77^^^REGION^MR~P-0042^^^HOSP^MR~P-0042^^^HOSP^MR', // the same number twice
      ])
        expect(read(pid(cx), 'HOSP'), cx).toEqual({ ids: ['P-0042', 'P-0042'], problems: [] });
      // The other site of the same region, the same message: its own number.
      expect(read(pid('P-0042^^^HOSP^MR~E-77^^^REGION^MR'), 'REGION').ids).toEqual(['E-77', 'E-77']);
      // Of the authority's repetitions, the one typed MR (the hospital's account number beside it is not the patient).
      expect(read(pid('998877^^^HOSP^AN~E-77^^^REGION^MR~P-0042^^^HOSP^MR'), 'HOSP').ids).toEqual(['P-0042', 'P-0042']);
    });

    it('refuses a PID-3 with no identifier of that authority (AE 102 naming PID-3 and the authority), never another taken', () => {
      for (const cx of [
        'E-77^^^REGION^MR',
        'P-0042^^^hosp^MR',
        'P-0042',
        'P-0042^^^HOSPITAL^MR',
        'P-0042^^^^MR^HOSP',
      ]) {
        const r = read(pid(cx), 'HOSP');
        expect([r.ids, r.problems[0]], cx).toEqual([
          [],
          {
            at: { segment: 'PID', sequence: 1, field: 3 },
            code: 102,
            text: 'PID-3 holds no identifier of the assigning authority "HOSP" (PID-3.4), whose ids are this system\'s patient ids: send that one',
          },
        ]);
        // Then each OBX of that PID is refused for it, as for any PID-3 refused.
        expect(new Set(r.problems.slice(1).map((p) => p.text)), cx).toEqual(
          new Set(['refused: the patient (PID 1) has no valid PID-3']),
        );
      }
      // Empty, it is missing (101), as without the setting.
      expect(read(pid(''), 'HOSP').problems[0]).toMatchObject({
        code: 101,
        text: 'PID-3 (patient identifier) is required',
      });
    });

    it('refuses two different numbers of that authority, as two MR numbers are refused without it', () => {
      for (const [cx, typed] of [
        ['P-0042^^^HOSP^MR~P-0043^^^HOSP^MR~E-77^^^REGION^MR', 'typed MR (PID-3.5)'],
        ['P-0042^^^HOSP^PI~P-0043^^^HOSP^AN', 'and none typed MR (PID-3.5)'],
      ] as const) {
        const r = read(pid(cx), 'HOSP');
        expect([r.ids, r.problems[0]], cx).toEqual([
          [],
          {
            at: { segment: 'PID', sequence: 1, field: 3 },
            code: 102,
            text: `PID-3 holds 2 different identifiers of the assigning authority "HOSP" ${typed}: which one is the patient would be a guess; send one`,
          },
        ]);
      }
    });

    it('is read for an ADT event too', () => {
      const a03 = [
        'MSH|^~\\&|EHR|HOSP|CRS|HOSP|20260110080500+0000||ADT^A03^ADT_A03|ADT1|P|2.5',
        'EVN|A03|20260110080000+0000',
        'PID|||E-77^^^REGION^MR~P-0042^^^HOSP^MR',
        'PV1||I|ICU4^^12||||||||||||||||||||||||||||||||||||||||||20260110080000+0000',
      ].join('\r');
      const r = translatePcd01(a03, { patientAuthority: 'HOSP' });
      expect(r.ok && r.translated.map((t) => t.message.patientId)).toEqual(['P-0042']);
      const unset = translatePcd01(a03);
      expect(unset.ok && [unset.translated, unset.problems.map((p) => p.code)]).toEqual([[], [102]]);
    });
  });

  it('refuses two different values for one measurement at one time from equally good sources, naming both OBX', () => {
    const r = ok(
      `${PCD01}\rOBX|14|NM|150035^MDC_PRESS_BLD_ART_MEAN^MDC|1.3.1.3|70|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000`,
    );
    expect(r.problems.map((p) => [p.at.sequence, p.text])).toEqual([
      [7, 'vitals.meanArterialPressure has different values at the same time (OBX 7, OBX 14); neither is used'],
      [14, 'vitals.meanArterialPressure has different values at the same time (OBX 7, OBX 14); neither is used'],
    ]);
    expect(r.translated[0]!.message.vitals).not.toHaveProperty('meanArterialPressure');
  });

  it('counts segments as the parser splits them (a CR LF is one line end), and reads no MSH over the bounds', () => {
    const lines = PCD01.split('\r');
    const padding = (n: number) => Array.from({ length: n }, () => 'NTE|1||x');
    const atBound = [...lines, ...padding(HL7_MAX_SEGMENTS - lines.length)].join('\r\n');
    expect(translatePcd01(atBound).ok).toBe(true);
    const over = translatePcd01(`${atBound}\n\nNTE|1||x`);
    expect(over).toMatchObject({ ok: false, tooLarge: true, header: { controlIdSent: 'MSG000123' } });
    // An MSH that is itself over the bound of delimiters is not parsed: the AR is addressed to no one.
    const hugeMsh = translatePcd01(`${lines[0]}|${'~'.repeat(HL7_MAX_DELIMITERS)}\r${lines.slice(1).join('\r')}`);
    expect(hugeMsh.ok || hugeMsh.header).toBe(undefined);
    expect(hugeMsh.problems.map((p) => p.code)).toEqual([207]);
  });

  it('names at most five OBX of a conflict in each ERR: the ACK of a message at the bounds stays under 1 MiB', () => {
    // Until 2026-12-06 each refused OBX's ERR named every one: 983 OBX of one time with different values made an ACK
    // of several MB, which no MLLP client reads (1 MiB per frame), and 5,000 made 245 MB of text.
    const rows = Array.from(
      { length: 982 },
      (_, i) =>
        `OBX|${i + 14}|NM|150035^MDC_PRESS_BLD_ART_MEAN^MDC|1.3.1.3|${70 + (i % 5)}|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000`,
    );
    const r = ok(`${PCD01}\r${rows.join('\r')}`);
    const conflict = r.problems.filter((p) => p.text.includes('different values'));
    expect(conflict).toHaveLength(983);
    expect(conflict[0]!.text).toBe(
      'vitals.meanArterialPressure has different values at the same time (OBX 7, OBX 14, OBX 15, OBX 16, OBX 17 and 978 more); neither is used',
    );
    const ack = buildAck({ code: 'AE', header: r.header, problems: r.problems, now: NOW });
    expect(Buffer.byteLength(ack)).toBeLessThan(1024 * 1024);
  });

  it('takes FiO2 and oxygen flow (LOINC) with the coded oxygen device, and refuses them without it', () => {
    const device =
      'OBX|20|CWE|oxygen-device^Oxygen delivery device^99CRS|1.9.1.1|336623009^Oxygen nasal cannula^SCT||||||F|||20260110080000+0000';
    const flow = 'OBX|21|NM|3151-8^Inhaled oxygen flow rate^LN|1.9.1.2|4|L/min^^UCUM|||||F|||20260110080000+0000';
    const fio2 =
      'OBX|22|NM|152196^MDC_CONC_AWAY_O2_INSP^MDC|1.9.1.3|33|262688^MDC_DIM_PERCENT^MDC|||||F|||20260110080000+0000';
    const r = ok([PCD01, device, flow, fio2].join('\r'));
    expect(r.translated[0]!.message.oxygen).toEqual({ device: 'nasal_cannula', flowLpm: 4, fio2: 0.33 });
    const alone = ok([PCD01, flow].join('\r'));
    expect(alone.translated[0]!.message).not.toHaveProperty('oxygen');
    expect(alone.problems[0]!.text).toMatch(/oxygen.flowLpm needs the oxygen device at the same time/);
  });

  // Until 2026-12-05 an FiO2 the contract refuses took the whole oxygen section with it, named at the device's OBX:
  // the FiO2 row itself was not named (an engine took it for accepted), and the device and flow were dropped unsaid.
  it('refuses an FiO2 out of range at its own OBX, and takes the oxygen device and flow beside it', async () => {
    const device =
      'OBX|20|CWE|oxygen-device^Oxygen delivery device^99CRS|1.9.1.1|336623009^Oxygen nasal cannula^SCT||||||F|||20260110080000+0000';
    const flow = 'OBX|21|NM|3151-8^Inhaled oxygen flow rate^LN|1.9.1.2|4|L/min^^UCUM|||||F|||20260110080000+0000';
    const fio2 = 'OBX|22|NM|3150-0^Inhaled oxygen concentration^LN|1.9.1.3|40|1^^UCUM|||||F|||20260110080000+0000';
    const queue = new MemoryQueue();
    const a = await ingestHl7(
      [PCD01, device, flow, fio2].join('\r'),
      { deviceId: 'gw', role: 'monitor' },
      {
        queue,
        now: () => NOW,
      },
    );
    expect(a.code).toBe('AE');
    expect(a.ack.split('\r').filter((l) => l.startsWith('ERR') && l.includes('|E|'))).toEqual([
      'ERR||OBX^16^5^1|102^Data type error^HL70357|E||||oxygen.fio2: 40 is outside 0.21-1 (a percent? send 0.4)',
    ]);
    expect(queue.messages.map((q) => q.message.oxygen).filter(Boolean)).toEqual([
      { device: 'nasal_cannula', flowLpm: 4 },
    ]);
  });

  it('answers AR for what cannot be taken, naming the segment and field', async () => {
    const queue = new MemoryQueue();
    const cases: [string, string][] = [
      [
        'not hl7 at all',
        'ERR||MSH^1|100^Segment sequence error^HL70357|E||||the message does not start with an MSH segment',
      ],
      [
        PCD01.replace('ORU^R01^ORU_R01', 'SIU^S12^SIU_S12'),
        'ERR||MSH^1^9^1^1|200^Unsupported message type^HL70357|E||||message type "SIU" is not taken; send ORU\\S\\R01 (IHE PCD-01) or ADT (A03 a discharge, A13 its cancellation, A01, A02, A06, A08, A12 an inpatient\'s bed)',
      ],
      // Every ADT event is answered (hl7-adt.test.ts): only an ADT message with no event is not.
      [
        PCD01.replace('ORU^R01^ORU_R01', 'ADT'),
        'ERR||MSH^1^9^1^2|201^Unsupported event code^HL70357|E||||event "" is no ADT trigger event (A01, A02, A03...)',
      ],
      [PCD01.replace('ORU^R01^ORU_R01', 'ORU^R30'), 'ERR||MSH^1^9^1^2|201^Unsupported event code^HL70357'],
      [PCD01.replace('|MSG000123|P|', '||P|'), 'ERR||MSH^1^10^1|101^Required field missing^HL70357'],
      [PCD01.replace('|MSG000123|P|', '|MSG000123|T|'), 'ERR||MSH^1^11^1|202^Unsupported processing id^HL70357'],
      [
        `${PCD01}\r${PCD01}`,
        'ERR||MSH^2|100^Segment sequence error^HL70357|E||||a second MSH: send one message per frame',
      ],
      // Until 2026-12-06 "line 16 is not an HL7 segment" alone: not what a segment is, nor that nothing was taken.
      [
        PCD01.replace('ZPD|1|', 'ZPD 1|'),
        'ERR||UNK^16|100^Segment sequence error^HL70357|E||||line 16 is not an HL7 segment (a 3-character id such as OBX, then the field separator): nothing of the message was taken; correct it and send the message again',
      ],
    ];
    for (const [text, err] of cases) {
      const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
      expect([a.code, a.status]).toEqual(['AR', 400]);
      expect(a.ack.split('\r')[2]).toContain(err);
    }
    expect(queue.messages).toEqual([]);
  });

  it('answers AA only after the queue committed, echoing MSH-10 and swapping the addresses; AR when the queue is down', async () => {
    const queue = new MemoryQueue();
    const a = await ingestHl7(PCD01, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
    expect([a.code, a.status, a.messageIds.length, queue.messages.length]).toEqual(['AA', 202, 2, 2]);
    expect(a.ack.split('\r')[0]).toMatch(
      /^MSH\|\^~\\&\|CRS\|HOSP\|GW-ICU4\^0012345678ABCDEF\^EUI-64\|ICU4\|20260110090000\+0000\|\|ACK\^R01\^ACK\|/,
    );
    expect(readAck(a.ack)).toEqual({ code: 'AA', controlId: 'MSG000123', text: 'accepted 2 message(s)' });
    queue.failWith = new Error('disk full');
    const down = await ingestHl7(PCD01, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
    expect([down.code, down.status]).toEqual(['AR', 503]);
    expect(down.ack).toContain('207^Application internal error^HL70357');
  });

  it('never throws on any input, and every answer that is not AA names a segment (property)', async () => {
    const queue = new MemoryQueue();
    const lines = PCD01.split('\r');
    const mutated = fc
      .tuple(
        fc.integer({ min: 0, max: lines.length - 1 }),
        fc.integer({ min: 0, max: 200 }),
        fc.string({ maxLength: 12 }),
        fc.integer({ min: 0, max: 12 }),
      )
      .map(([line, pos, insert, cut]) =>
        lines.map((l, i) => (i === line ? l.slice(0, pos) + insert + l.slice(pos + cut) : l)).join('\r'),
      );
    const anything = fc.oneof(
      fc.string(),
      fc.string().map((s) => `MSH|^~\\&|${s}`),
      mutated,
      fc.constantFrom(...lines).map((l) => `${lines[0]}\r${l}`),
    );
    await fc.assert(
      fc.asyncProperty(anything, async (text) => {
        const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
        expect(['AA', 'AE', 'AR']).toContain(a.code);
        expect(readAck(a.ack)?.code).toBe(a.code);
        if (a.code !== 'AA') expect(a.ack).toMatch(/\rERR\|\|[A-Z][A-Z0-9]{2}\^\d+/);
        expect(a.ack).not.toMatch(/Zebedee/);
      }),
      { numRuns: 400 },
    );
  });
});

// Structural fuzzing of PCD-01 (2026-12-06, seeded by FC_SEED): segments dropped, cut, repeated or reordered; the
// delimiters MSH-1 and MSH-2 declare changed (the body re-delimited, or not); fields swapped; unicode put in; CR, LF
// and CRLF between segments. Never a throw; an AE or AR names each problem (ERR-2 a segment, ERR-8 what is wrong);
// over HTTP never a 5xx.
describe('PCD-01 mutated structurally (property)', () => {
  const lines = PCD01.split('\r');
  const UNICODE = ['\u00fc', '\u{1F600}', '\uFFFD', '\u202E', '\u0000', '\uD800', '\u2028', '\u0085', '\uFEFF'];
  const edit = fc.oneof(
    fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('cut' as const), at: fc.nat(), pos: fc.nat(120) }),
    fc.record({ op: fc.constant('repeat' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ op: fc.constant('swap' as const), at: fc.nat(), a: fc.nat(20), b: fc.nat(20) }),
    fc.record({ op: fc.constant('unicode' as const), at: fc.nat(), pos: fc.nat(120), u: fc.constantFrom(...UNICODE) }),
    fc.record({
      op: fc.constant('delimiters' as const),
      // A new set of field, component, repetition, escape and subcomponent characters; the body re-delimited or not.
      set: fc.constantFrom('#^~\\&', '|!~\\&', '|^^\\&', '||~\\&', '|^~\\', '|^~', ' ^~\\&', '\r^~\\&'),
      rewrite: fc.boolean(),
    }),
  );
  type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;
  const apply = (edits: Edit[], eol: string) => {
    let ls = [...lines];
    for (const e of edits) {
      const i = e.op === 'delimiters' ? 0 : e.at % Math.max(ls.length, 1);
      if (ls.length === 0) break;
      if (e.op === 'drop') ls.splice(i, 1);
      else if (e.op === 'cut') ls[i] = ls[i]!.slice(0, e.pos);
      else if (e.op === 'repeat') ls.splice(i, 0, ls[i]!);
      else if (e.op === 'move') ls.splice(e.to % ls.length, 0, ...ls.splice(i, 1));
      else if (e.op === 'swap') {
        const f = ls[i]!.split('|');
        [f[e.a % f.length], f[e.b % f.length]] = [f[e.b % f.length]!, f[e.a % f.length]!];
        ls[i] = f.join('|');
      } else if (e.op === 'unicode') ls[i] = ls[i]!.slice(0, e.pos) + e.u + ls[i]!.slice(e.pos);
      else {
        const [fs, ...enc] = [...e.set];
        const map: Record<string, string> = { '|': fs!, '^': enc[0] ?? '^', '~': enc[1] ?? '~', '&': enc[3] ?? '&' };
        ls = ls.map((l, n) => {
          const body = e.rewrite ? l.replace(/[|^~&]/g, (c) => map[c]!) : l;
          return n === 0 && l.startsWith('MSH|^~\\&') ? `MSH${fs}${enc.join('')}${body.slice(8)}` : body;
        });
      }
    }
    return ls.join(eol);
  };
  const mutated = fc
    .tuple(
      fc.array(edit, { minLength: 1, maxLength: 4 }),
      fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\r'),
      fc.boolean(),
    )
    .map(([edits, eol, trailing]) => apply(edits, eol) + (trailing ? eol : ''));

  /** Every ERR of an ACK: its location (ERR-2.1, a segment) and its text (ERR-8). */
  const errs = (ack: string) =>
    ack
      .split('\r')
      .filter((l) => l.startsWith('ERR|'))
      .map((l) => ({ at: l.split('|')[2]!.split('^')[0]!, text: l.split('|')[8] ?? '' }));

  it('never throws; an AE or AR names where and what for each problem', async () => {
    const queue = new MemoryQueue();
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(mutated, async (text) => {
        const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
        codes.add(a.code);
        expect(['AA', 'AE', 'AR'], text).toContain(a.code);
        expect(readAck(a.ack)?.code, text).toBe(a.code);
        if (a.code === 'AA') return;
        const e = errs(a.ack);
        expect(e.length, a.ack).toBeGreaterThan(0);
        for (const x of e) {
          expect(x.at, a.ack).toMatch(/^[A-Z][A-Z0-9]{2}$/);
          expect(x.text.trim(), a.ack).not.toBe('');
        }
        expect(a.ack).not.toMatch(/Zebedee/);
      }),
      { numRuns: 1500 },
    );
    // The mutations reach all three answers (a property over refusals only would prove little).
    expect([...codes].sort()).toEqual(['AA', 'AE', 'AR']);
  });

  it('over HTTP: an ACK with 200, 202, 400, 413 or 422, never a 5xx', async () => {
    const { queue, tokens, token } = await ingestFakes(NOW);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7' };
    await fc.assert(
      fc.asyncProperty(mutated, async (body) => {
        const res = await handleHl7Http(
          { method: 'POST', path: '/v1/hl7v2', headers, body },
          { queue, tokens, now: () => NOW },
        );
        expect(res.status, body).toBeLessThan(500);
        expect(readAck(res.body)?.code, res.body).toMatch(/^A[AER]$/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('a message that is not UTF-8', () => {
  // An engine sending ISO 8859-1 (MSH-18 8859/1, charset=iso-8859-1): each byte of "ü" that is not UTF-8 reaches the
  // translator as U+FFFD, whichever host read the body. Taken, the ward was "S\uFFFDd": another ward than the EHR's
  // "Süd" (its stale-feed grouping, the tokens scoped to it) and so on every page. Refused where it is read, saying
  // why; what is never read (a name in PID-5) refuses nothing.
  const latin1 = (text: string) => Buffer.from(text, 'latin1').toString('utf8');
  const sud = withLine(2, 'PV1||I|S\u00fcd^^12');
  const send = async (body: string) => {
    const { queue, tokens, token } = await ingestFakes(NOW);
    const headers = {
      authorization: `Bearer ${token}`,
      'content-type': 'x-application/hl7-v2+er7; charset=iso-8859-1',
    };
    const res = await handleHl7Http(
      { method: 'POST', path: '/v1/hl7v2', headers, body },
      { queue, tokens, now: () => NOW },
    );
    return { status: res.status, ack: res.body, queued: queue.messages.map((m) => m.message) };
  };

  it('a label read with its characters replaced is refused, naming the field and why', async () => {
    const { status, ack, queued } = await send(latin1(sud));
    // The readings go through (AE: accepted but for what its ERR segments name); the ward does not.
    expect([status, readAck(ack)?.code]).toEqual([202, 'AE']);
    expect(ack).toContain('enrolment.ward: "S\uFFFDd" holds U+FFFD, the mark of bytes that were not UTF-8: send UTF-8');
    expect(queued.length).toBeGreaterThan(0);
    expect(queued.flatMap((m) => (m.enrolment ? [m.enrolment] : []))).toEqual([]);
  });

  it('a name in PID-5 (never read) in ISO 8859-1 refuses nothing', async () => {
    const { status, ack, queued } = await send(
      latin1(withLine(1, 'PID|||P-0042^^^HOSP^MR||M\u00fcller^J\u00fcrgen||19700101|F')),
    );
    expect([status, readAck(ack)?.code]).toEqual([202, 'AA']);
    expect(queued.length).toBeGreaterThan(0);
  });

  it('takes the same label in UTF-8, as written', () => {
    const r = ok(sud);
    expect(r.translated.map((t) => t.message.enrolment)).toContainEqual({ ward: 'S\u00fcd', bed: '12' });
  });

  // An engine that writes what is not ASCII as HL7 hex escapes (\Xhh..\) sends the ward's UTF-8 bytes: C3 BC for
  // "ü". They were read as ISO 8859-1, one character a byte: "SÃ¼d", another ward than the EHR's "Süd" (its
  // stale-feed group, the tokens scoped to it), on every page and the board, and taken (AA). They are the message's
  // bytes, read as UTF-8 as the rest of it is: a byte that is not UTF-8 there (FC, "ü" in ISO 8859-1) is refused as
  // a raw one is.
  it('reads hex escapes as UTF-8 bytes, as the rest of the message: the same ward as written, or refused', async () => {
    const escaped = ok(withLine(2, 'PV1||I|S\\XC3BC\\d^^12'));
    expect(escaped.translated.map((t) => t.message.enrolment)).toContainEqual({ ward: 'S\u00fcd', bed: '12' });
    const { status, ack, queued } = await send(withLine(2, 'PV1||I|S\\XFC\\d^^12'));
    expect([status, readAck(ack)?.code]).toEqual([202, 'AE']);
    expect(ack).toContain('enrolment.ward: "S\uFFFDd" holds U+FFFD, the mark of bytes that were not UTF-8: send UTF-8');
    expect(queued.flatMap((m) => (m.enrolment ? [m.enrolment] : []))).toEqual([]);
  });
});

describe('the ACK a sender reads, pinned by a mutation run', () => {
  const monitor = { deviceId: 'gw', role: 'monitor' } as const;
  const ingest = (text: string, now = NOW) => ingestHl7(text, monitor, { queue: new MemoryQueue(), now: () => now });
  const fields = (ack: string, segment: string) =>
    ack
      .split('\r')
      .find((s) => s.startsWith(`${segment}|`))!
      .split('|');

  it('a transport refusal (405, 415) says why in MSA-3, not only in ERR-8', async () => {
    const { queue, tokens, token } = await ingestFakes(NOW);
    const send = (method: string, type: string) =>
      handleHl7Http(
        { method, path: '/v1/hl7v2', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body: PCD01 },
        { queue, tokens, now: () => NOW },
      );
    const get = await send('GET', 'x-application/hl7-v2+er7');
    expect([get.status, readAck(get.body)]).toEqual([405, { code: 'AR', controlId: '', text: 'use POST' }]);
    const json = await send('POST', 'application/json');
    expect(json.status).toBe(415);
    expect(readAck(json.body)?.text).toBe('content-type "application/json" is not x-application/hl7-v2+er7');
    expect(queue.messages).toEqual([]);
  });

  it("addresses the ACK with a sender field holding the ACK's own field separator escaped, not splitting the MSH", async () => {
    // Custom delimiters: '#' separates fields, so '|' is plain text in MSH-3 ("GW|A").
    const custom = PCD01.replaceAll('|', '#').replace('#GW-ICU4^0012345678ABCDEF^EUI-64#', '#GW|A#');
    const a = await ingest(custom);
    expect(a.code).toBe('AA');
    const msh = fields(a.ack, 'MSH');
    expect(msh.slice(2, 6)).toEqual(['CRS', 'HOSP', 'GW\\F\\A', 'ICU4']);
    expect(msh[8]).toBe('ACK^R01^ACK');
    expect(readAck(a.ack)).toMatchObject({ code: 'AA', controlId: 'MSG000123' });
  });

  it('echoes MSH-10 in MSA-2 as sent: a hex or formatting escape, a component, spaces (an engine matches the ACK by it)', async () => {
    for (const id of ['A\\X42\\C', 'MSG\\.br\\1', 'MSG^2', 'ID 7 ', '\\F\\x']) {
      const a = await ingest(PCD01.replace('|MSG000123|P|', `|${id}|P|`));
      expect([a.code, fields(a.ack, 'MSA')[2]], id).toEqual(['AA', id]);
    }
  });

  it('echoes the trigger event (MSH-9.2) and the version (MSH-12) of the message acknowledged', async () => {
    const adt = await ingest(PCD01.replace('ORU^R01^ORU_R01', 'ADT^A04^ADT_A01').replace('|P|2.6|', '|P|2.5|'));
    expect(adt.code).toBe('AA');
    const msh = fields(adt.ack, 'MSH');
    expect([msh[8], msh[11]]).toEqual(['ACK^A04^ACK', '2.5']);
    const v231 = await ingest(PCD01.replace('|P|2.6|', '|P|2.3.1|'));
    expect(v231.code).toBe('AA');
    expect(fields(v231.ack, 'MSH')[11]).toBe('2.3.1');
  });

  it('keeps a problem text holding a delimiter in ERR-8, escaped (a unit sent as x\\F\\y)', async () => {
    const a = await ingest(withLine(12, PCD01.split('\r')[12]!.replace('268192^MDC_DIM_DEGC^MDC', 'x\\F\\y')));
    expect(a.code).toBe('AE');
    const err = fields(a.ack, 'ERR');
    expect(err).toHaveLength(9);
    expect(err.slice(2, 4)).toEqual(['OBX^9^6^1', '103^Table value not found^HL70357']);
    expect(err[8]).toContain('unit "x\\F\\y" is not a unit for vitals.temperatureC');
  });

  it('reads an ACK sent with a start block or a line break before its MSH (the simulator, the bridge)', async () => {
    const { ack } = await ingest(PCD01);
    for (const sent of [`\x0b${ack}`, `\r\n${ack}`, ` ${ack}`])
      expect(readAck(sent)).toEqual({ code: 'AA', controlId: 'MSG000123', text: 'accepted 2 message(s)' });
  });

  it('gives each ACK a control id of its own (MSH-10), many in one millisecond too, at most 18 characters', async () => {
    const one = fields((await ingest(PCD01, NOW)).ack, 'MSH')[9];
    const two = fields((await ingest(PCD01, NOW + 1)).ack, 'MSH')[9];
    expect(two).not.toBe(one);
    // Until 2026-12-06 MSH-10 was the time alone: two ACKs of one millisecond had one id. Past 1296 in a millisecond
    // the next is taken; a clock stepped back (NOW - 1000 after NOW) gives no id used before either.
    const times = [...Array.from({ length: 3000 }, () => NOW + 5), NOW - 1000, NOW + 5, NOW + 6];
    const ids = times.map((now) => fields(buildAck({ code: 'AA', now }), 'MSH')[9]!);
    expect(new Set(ids).size).toBe(ids.length);
    // At most 18 characters, as docs/interfaces.md says (ST allows 20): a number past 1295 (two base-36 digits) in a
    // millisecond would make 19 (pinned by a mutation run).
    expect(Math.max(...ids.map((id) => id.length))).toBeLessThanOrEqual(18);
    expect(one).toMatch(/^ACK[0-9a-z]+\.[0-9a-z]+$/);
  });

  it("writes the process's tag in 4 characters, however small the number drawn (pinned by a mutation run)", async () => {
    // A shorter tag would let two processes meet: tag `abc` and number `d0` read as tag `abcd` and number `0`.
    vi.resetModules();
    vi.doMock('node:crypto', async (original) => ({
      ...(await original<typeof import('node:crypto')>()),
      randomInt: () => 35,
    }));
    try {
      const fresh = await import('#app/hl7v2/ack.ts');
      expect(fields(fresh.buildAck({ code: 'AA', now: NOW }), 'MSH')[9]).toBe(`ACK${NOW.toString(36)}.000z0`);
    } finally {
      vi.doUnmock('node:crypto');
      vi.resetModules();
    }
  });

  it('never puts a start block (VT) or end block (FS) byte in an ACK, whatever MSH-3, MSH-4 or MSH-10 held', async () => {
    const a = await ingest(
      PCD01.replace('|GW-ICU4^0012345678ABCDEF^EUI-64|ICU4|', '|GW\x1cA\x0b|IC\x1cU|').replace(
        'MSG000123',
        'M\x1c1\x0b',
      ),
    );
    expect(a.code).toBe('AA');
    expect(a.ack).not.toMatch(/[\x0b\x1c]/);
    expect(fields(a.ack, 'MSH').slice(4, 6)).toEqual(['GW A ', 'IC U']);
    expect(fields(a.ack, 'MSA')[2]).toBe('M 1 ');
  });

  it("the simulator's message keeps the milliseconds of its time (OBX-14, OBR-7): read back, the same instant", () => {
    for (const observedAt of ['2026-01-10T08:00:00.050Z', '2026-01-10T08:00:00.500Z', '2026-01-10T08:00:00.007Z']) {
      const text = toPcd01({
        messageId: 'm-ms',
        patientId: 'P-0042',
        observedAt,
        source: { deviceId: 'mon-1', kind: 'monitor' },
        vitals: { heartRate: 90 },
      })!;
      expect(ok(text).translated.map((t) => t.message.observedAt)).toEqual([observedAt]);
    }
  });

  it('a queue that is down: the AR still echoes MSH-10 (the sender knows which message to send again)', async () => {
    const queue = new MemoryQueue();
    queue.failWith = new Error('disk full');
    const down = await ingestHl7(PCD01, monitor, { queue, now: () => NOW });
    expect([down.status, readAck(down.ack)]).toEqual([
      503,
      { code: 'AR', controlId: 'MSG000123', text: 'not accepted: send again later' },
    ]);
    expect(fields(down.ack, 'MSH').slice(4, 6)).toEqual(['GW-ICU4^0012345678ABCDEF^EUI-64', 'ICU4']);
  });

  // One patient's observations of one time in two PID groups are one message: refused whole (the patient outside the
  // token's patients, no room for a new patient, a device clock a week behind), it is named at each PID. Until
  // 2026-12-05 only the first PID was, and an engine reading the ERR took the second group's OBX for accepted.
  it('names each PID group of a message refused whole, not only the first', async () => {
    const group = (patient: string, value: number) => [
      `PID|||${patient}^^^HOSP^MR`,
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110085800+0000',
      `OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110085800+0000`,
    ];
    const text = [PCD01.split('\r')[0]!, ...group('P-1', 80), ...group('P-3', 90), ...group('P-3', 90)].join('\r');
    const scoped = { deviceId: 'mon-gw', role: 'monitor' as const, patients: ['P-1'] };
    const queue = new MemoryQueue();
    const a = await ingestHl7(text, scoped, { queue, now: () => NOW });
    expect(a.code).toBe('AE');
    expect(
      a.ack
        .split('\r')
        .filter((l) => l.startsWith('ERR'))
        .map((l) => l.split('|')[2]),
    ).toEqual(['PID^2^3^1', 'PID^3^3^1']);
    expect(queue.messages.map((q) => q.message.patientId)).toEqual(['P-1']);
  });

  // A known patient's group is taken, a new one past the ceiling is not: an AR 503 that says how much was taken, so
  // that the sender knows sending it again repeats those (taken once, by messageId).
  it('no room for one new patient of a message: the rest queued, the AR 503 says how many were accepted', async () => {
    const group = (patient: string, value: number) => [
      `PID|||${patient}^^^HOSP^MR`,
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110085800+0000',
      `OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110085800+0000`,
    ];
    const text = [PCD01.split('\r')[0]!, ...group('P-1', 80), ...group('P-3', 90)].join('\r');
    const patients = {
      lookup: async (ids: readonly string[]) =>
        new Map(ids.filter((id) => id === 'P-1').map((id) => [id, { known: true }])),
      admitNew: () => ({ ok: false as const, active: 1 }),
    };
    const queue = new MemoryQueue();
    const a = await ingestHl7(text, monitor, { queue, patients, maxPatients: 1, now: () => NOW });
    expect([a.status, a.code, a.full]).toEqual([503, 'AR', true]);
    expect(readAck(a.ack)?.text).toBe('1 message(s) accepted, not all: no room for a new patient, send again later');
    // The refusal's code, for a program (crs mllp-bridge) to tell it by, whatever the words (2026-12-06).
    const errs = a.ack.split('\r').filter((l) => l.startsWith('ERR|'));
    expect(errs.map((e) => e.split('|').slice(2, 6))).toEqual([
      ['PID^2^3^1', '207^Application internal error^HL70357', 'E', 'NO_ROOM^no room for a new patient^99CRS'],
    ]);
    expect(applicationErrors(a.ack)).toEqual(['NO_ROOM']);
    expect(queue.messages.map((q) => q.message.patientId)).toEqual(['P-1']);
    expect(a.messageIds).toHaveLength(1);
  });

  // Until 2026-12-05 the first PV1 was taken and the other dropped, under an AA that said everything was taken.
  it('refuses two different places (PV1-3) for one patient at one time, naming both PV1, and takes the readings', async () => {
    const group = (ward: string, value: number) => [
      'PID|||P-1^^^HOSP^MR',
      `PV1||I|${ward}^^12`,
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110085800+0000',
      `OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110085800+0000`,
    ];
    const text = [PCD01.split('\r')[0]!, ...group('H4', 80), ...group('H5', 80)].join('\r');
    const queue = new MemoryQueue();
    const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
    expect(a.code).toBe('AE');
    expect(
      a.ack
        .split('\r')
        .filter((l) => l.startsWith('ERR'))
        .map((l) => l.split('|').slice(2, 3).concat(l.split('|').slice(-1))),
    ).toEqual(
      ['PV1^1^3^1', 'PV1^2^3^1'].map((at) => [
        at,
        'enrolment: PV1-3 gives two different places at the same time (PV1 1, PV1 2); neither is used',
      ]),
    );
    expect(queue.messages.map((q) => [q.message.vitals, q.message.enrolment])).toEqual([
      [{ heartRate: 80 }, undefined],
    ]);
  });

  // Until 2026-12-05 a PID group whose every OBX was refused dropped its PV1-3 under the ERR of its OBX alone: the
  // sender could not tell that the place was not taken either (one value out of range did take it, on its own).
  describe('a PID group whose every OBX is refused', () => {
    const heartRate = (n: number, value: string, time = '20260110085800+0000') =>
      `OBX|${n}|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||${time}`;
    const send = async (...obx: string[]) => {
      const text = [PCD01.split('\r')[0]!, 'PID|||P-1^^^HOSP^MR', 'PV1||I|H5^^14', ...obx].join('\r');
      const queue = new MemoryQueue();
      const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
      const errors = a.ack
        .split('\r')
        .filter((l) => l.startsWith('ERR'))
        .map((l) => [l.split('|')[2], l.split('|').at(-1)]);
      return { code: a.code, errors, queued: queue.messages.map((q) => [q.message.observedAt, q.message.enrolment]) };
    };

    it('takes its place (PV1-3) on its own at the readings’ time, as when one value is out of range', async () => {
      const conflict = await send(heartRate(1, '80'), heartRate(2, '95'));
      expect(conflict.errors.map(([at]) => at)).toEqual(['OBX^1^5^1', 'OBX^2^5^1']);
      expect(conflict.queued).toEqual([['2026-01-10T08:58:00Z', { bed: '14', ward: 'H5' }]]);
      const range = await send(heartRate(1, '999'));
      expect(range.errors.map(([at]) => at)).toEqual(['OBX^1^5^1']);
      expect(range.queued).toEqual(conflict.queued);
    });

    it('names its PV1-3 as not taken when no OBX of the group could be read (no time to place it at)', async () => {
      const r = await send(heartRate(1, '80', '2026011'), heartRate(2, '80', '20260110085800'));
      expect(r.code).toBe('AE');
      expect(r.errors.map(([at]) => at)).toEqual(['OBX^1^14^1', 'OBX^2^14^1', 'PV1^1^3^1']);
      expect(r.errors.at(-1)![1]).toBe(
        "enrolment: PV1-3 is not taken: no OBX of its group could be read (OBX 1, OBX 2), and a monitor's place is taken at its readings' time; send it again with a reading",
      );
      expect(r.queued).toEqual([]);
    });
  });

  it('gives back the room it reserved for new patients, whether the queue took the messages or not', async () => {
    const { patients, reserved } = reservingDirectory();
    const queue = new MemoryQueue();
    const deps = { queue, patients, maxPatients: 1, now: () => NOW };
    expect((await ingestHl7(PCD01, monitor, deps)).code).toBe('AA');
    expect(reserved()).toBe(0);
    queue.failWith = new Error('disk full');
    expect((await ingestHl7(PCD01.replace('MSG000123', 'MSG2'), monitor, deps)).status).toBe(503);
    expect(reserved()).toBe(0);
  });

  describe('over HTTP', () => {
    const send = async (body: string, queue = new MemoryQueue()) => {
      const { tokens, token } = await ingestFakes(NOW);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7' };
      return handleHl7Http({ method: 'POST', path: '/v1/hl7v2', headers, body }, { queue, tokens, now: () => NOW });
    };
    /** PCD01 with an NTE (ignored) making it `bytes` long in UTF-8, written with `ch` (1 or 2 bytes). */
    const sized = (bytes: number, ch = 'x') => {
      const head = `${PCD01}\rNTE|1||`;
      const room = bytes - Buffer.byteLength(head);
      const wide = Buffer.byteLength(ch);
      return head + ch.repeat(Math.floor(room / wide)) + 'x'.repeat(room % wide);
    };

    it('takes a message of exactly 1 MiB, and refuses one byte more with 413, counting bytes not characters', async () => {
      const exact = await send(sized(1024 * 1024));
      expect([exact.status, readAck(exact.body)?.code]).toEqual([202, 'AA']);
      const over = await send(sized(1024 * 1024 + 1));
      expect([over.status, readAck(over.body)?.text]).toEqual([
        413,
        'the message is longer than 1048576 bytes, the most taken',
      ]);
      const wide = sized(1024 * 1024 + 2, 'é');
      expect(wide.length).toBeLessThan(1024 * 1024);
      expect((await send(wide)).status).toBe(413);
    });

    it('takes a POST whatever the case of its method, as the JSON routes do', async () => {
      const { queue, tokens, token } = await ingestFakes(NOW);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7' };
      const res = await handleHl7Http(
        { method: 'post', path: '/v1/hl7v2', headers, body: PCD01 },
        { queue, tokens, now: () => NOW },
      );
      expect([res.status, readAck(res.body)?.code]).toEqual([202, 'AA']);
    });

    it('takes the HL7 v2 content types in use, named by hl7-v2 or by er7, in any case', async () => {
      for (const type of ['application/hl7-v2', 'application/ER7', 'X-Application/HL7-V2+ER7; charset=utf-8']) {
        const { queue, tokens, token } = await ingestFakes(NOW);
        const headers = { authorization: `Bearer ${token}`, 'content-type': type };
        const res = await handleHl7Http(
          { method: 'POST', path: '/v1/hl7v2', headers, body: PCD01 },
          { queue, tokens, now: () => NOW },
        );
        expect([type, res.status]).toEqual([type, 202]);
      }
    });

    it('a queue that is down: 503 with Retry-After, so the sender sends again', async () => {
      const queue = new MemoryQueue();
      queue.failWith = new Error('disk full');
      const res = await send(PCD01, queue);
      expect([res.status, res.headers['retry-after'], readAck(res.body)?.code]).toEqual([503, '5', 'AR']);
    });
  });

  it('gives MSH-10s that differ only as "/" and "~2F" different messageIds (a message is never taken for another\'s resend)', () => {
    const ids = ['A/B', 'A\\R\\2FB', 'A\\R\\B'].map(
      (id) => ok(PCD01.replace('MSG000123', id)).translated[0]!.message.messageId as string,
    );
    expect(new Set(ids).size).toBe(3);
    expect(idPart('a~/')).toBe('a~7E~2F');
    expect(idPart('\tA')).toBe('~09A');
  });

  it('keeps a messageId of exactly 128 characters as it is, and hashes one of 129', () => {
    const at = (n: number) => messageIdOf('hl7', ['x'.repeat(n - 'hl7:'.length)]);
    expect(at(128)).toBe(`hl7:${'x'.repeat(124)}`);
    expect(at(129)).toMatch(/^hl7:sha256=[0-9a-f]{64}$/);
  });

  it('reads a local time in the hour before a daylight-saving change at its own offset (Europe/Paris, 29 March)', () => {
    const paris = parseZone('Europe/Paris')!;
    const at = (wall: string) => wallClockInstants(Date.parse(wall), paris).map((t) => new Date(t).toISOString());
    expect(at('2026-03-29T01:30:00Z')).toEqual(['2026-03-29T00:30:00.000Z']);
    expect(at('2026-03-29T03:30:00Z')).toEqual(['2026-03-29T01:30:00.000Z']);
    // 02:30 is skipped that night, and on 25 October it is twice: at +02:00, then at +01:00.
    expect(at('2026-03-29T02:30:00Z')).toEqual([]);
    expect(at('2026-10-25T02:30:00Z')).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z']);
  });

  describe('local times on the nights the clocks change (--hl7-zone Europe/Paris)', () => {
    const paris = parseZone('Europe/Paris')!;
    /** A monitor's temperature at a local time without an offset, as a gateway set to the site's zone sends it. */
    const reading = (id: string, wall: string, temperatureC: number) =>
      [
        `MSH|^~\\&|GW-ICU4|ICU4|CRS|HOSP|${wall}||ORU^R01^ORU_R01|${id}|P|2.6`,
        'PID|||P-0042^^^HOSP^MR',
        'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||' + wall,
        `OBX|1|NM|150344^MDC_TEMP^MDC|1.5.1.1|${temperatureC}|268192^MDC_DIM_DEGC^MDC|||||R|||${wall}`,
      ].join('\r');
    /** Sent over HTTP at `now`: the status, and the observedAt of what was queued. */
    const sendAt = async (now: number, text: string) => {
      const { queue, tokens, token } = await ingestFakes(now);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/hl7-v2' };
      const res = await handleHl7Http(
        { method: 'POST', path: '/v1/hl7v2', headers, body: text },
        { queue, tokens, now: () => now, hl7Zone: paris },
      );
      return { status: res.status, observedAt: queue.messages.map((q) => q.message.observedAt), body: res.body };
    };

    it('takes the readings of the hour repeated in autumn, both times round, each at the instant it was taken', async () => {
      // 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 is shown twice. Read as its second pass alone,
      // a reading taken at 02:30 CEST (00:30Z) was an hour ahead of its arrival: refused, "check the device clock".
      expect(await sendAt(Date.parse('2026-10-25T00:30:20Z'), reading('M-1', '202610250230', 38.9))).toMatchObject({
        status: 202,
        observedAt: ['2026-10-25T00:30:00Z'],
      });
      expect(await sendAt(Date.parse('2026-10-25T01:30:20Z'), reading('M-2', '202610250230', 37.0))).toMatchObject({
        status: 202,
        observedAt: ['2026-10-25T01:30:00Z'],
      });
      // A reading of the first pass that arrives a few minutes into the second is still of the first.
      expect(await sendAt(Date.parse('2026-10-25T01:02:00Z'), reading('M-3', '202610250258', 38.9))).toMatchObject({
        status: 202,
        observedAt: ['2026-10-25T00:58:00Z'],
      });
    });

    it('a monitor reporting every 5 minutes through both nights: every reading kept, at its own instant', async () => {
      const fmt = new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Europe/Paris',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      });
      const wall = (ms: number) => {
        const p = Object.fromEntries(fmt.formatToParts(ms).map((x) => [x.type, x.value]));
        return `${p.year}${p.month}${p.day}${p.hour}${p.minute}`;
      };
      for (const night of ['2026-03-28T22:00:00Z', '2026-10-24T22:00:00Z']) {
        const start = Date.parse(night);
        for (let i = 0; i < 6 * 12; i++) {
          const taken = start + i * 5 * 60_000;
          const arrives = taken + 20_000;
          const r = await sendAt(arrives, reading(`M-${i}`, wall(taken), 37.2));
          expect([wall(taken), r.status, r.observedAt]).toEqual([
            wall(taken),
            202,
            [new Date(taken).toISOString().replace('.000Z', 'Z')],
          ]);
        }
      }
    });

    it('without an arrival (a replayed file), refuses a time of the repeated hour and one of the skipped hour, saying why', () => {
      const repeated = translatePcd01(reading('M-1', '202610250230', 38.9), { zone: paris });
      expect(repeated.ok && repeated.translated).toEqual([]);
      expect(repeated.problems.map((p) => p.text)).toContain(
        'OBX-14 "202610250230" is in the hour Europe/Paris repeats when its clocks go from +0200 to +0100: either 202610250230+0200 or 202610250230+0100; send the time with its UTC offset',
      );
      const skipped = translatePcd01(reading('M-2', '202603290230', 38.9), { zone: paris });
      expect(skipped.ok && skipped.translated).toEqual([]);
      expect(skipped.problems.map((p) => p.text)).toContain(
        'OBX-14 "202603290230" is no time in Europe/Paris: its clocks went from +0100 to +0200 then, skipping it; send the time with its UTC offset',
      );
      // Live too: no clock keeping the zone's time shows it.
      const live = translatePcd01(reading('M-3', '202603290230', 38.9), {
        zone: paris,
        notAfter: Date.parse('2026-03-29T02:00:00Z'),
      });
      expect(live.ok && live.translated).toEqual([]);
    });
  });

  it('takes site zones up to +14:00 (Line Islands) and refuses +15:00', () => {
    expect(parseZone('+14:00')?.offsetAt(0)).toBe(14 * 60);
    expect(parseZone('-1200')?.offsetAt(0)).toBe(-12 * 60);
    expect(parseZone('+15:00')).toBeUndefined();
    expect(parseZone('+01:60')).toBeUndefined();
    // Up to 14 hours, as docs/interfaces.md says: +14:30 and -14:01 are wider than any zone (a typo), never taken.
    expect(parseZone('+14:30')).toBeUndefined();
    expect(parseZone('-1401')).toBeUndefined();
    expect(parseZone('+13:45')?.offsetAt(0)).toBe(13 * 60 + 45);
  });

  // IANA's Etc/GMT+5 is UTC-5 (POSIX's sign): set as the HL7 site zone by a site that meant UTC+5, its times without
  // an offset were read ten hours off. Refused since 2026-12-07 as site.timeZone refuses it, by the same check and
  // with its words (timeZoneProblem); an explicit offset (-05:00) is still taken.
  it('refuses the names of fixed offsets (Etc/GMT+5, EST) as site.timeZone does, with its words', () => {
    for (const name of ['Etc/GMT+5', 'etc/gmt-14', 'EST', 'hst']) {
      expect(parseZone(name), name).toBeUndefined();
      expect(zoneProblem(name), name).toBe(timeZoneProblem(name));
    }
    expect(zoneProblem('Etc/GMT+5')).toMatch(/^is a fixed offset, UTC-5 \(IANA reverses the sign/);
    expect(zoneProblem('Mars/Base')).toBe('is not an IANA zone (Europe/Paris) or an offset (+01:00)');
    expect(zoneProblem('+15:00')).toBe('is not an IANA zone (Europe/Paris) or an offset (+01:00)');
    for (const taken of ['Europe/Paris', 'UTC', 'Z', 'Etc/UTC', 'GMT', 'EST5EDT', '-05:00', '+0530']) {
      expect(zoneProblem(taken), taken).toBeUndefined();
      expect(parseZone(taken), taken).toBeDefined();
    }
  });

  it('the simulator numbers its OBX segments 1, 2, 3 (OBX-1), so an ERR-2 names the right one', () => {
    const text = toPcd01({
      messageId: 'm-set',
      patientId: 'P-0042',
      observedAt: '2026-01-10T08:00:00Z',
      source: { deviceId: 'mon-1', kind: 'monitor' },
      vitals: { heartRate: 90, spo2: 93 },
      oxygen: { device: 'nasal_cannula', flowLpm: 2 },
    })!;
    const obx = text.split('\r').filter((l) => l.startsWith('OBX|'));
    expect(obx.map((l) => l.split('|').slice(1, 2).concat(l.split('|')[4]!))).toEqual([
      ['1', '1.1.1.1'],
      ['2', '1.1.1.2'],
      ['3', '1.1.1.3'],
      ['4', '1.1.1.4'],
    ]);
  });
});

describe('site zones and ids of HL7 messages, pinned by a mutation run of shared/app/interfaces', () => {
  const at = (wall: string, zone: string) => {
    const instants = wallClockInstants(Date.parse(wall), parseZone(zone)!);
    expect(instants).toHaveLength(1);
    return new Date(instants[0]!).toISOString();
  };

  it('reads Z and UTC as UTC, and a fixed offset of either sign, with or without its colon', () => {
    expect(at('2026-01-10T08:00:00Z', 'Z')).toBe('2026-01-10T08:00:00.000Z');
    expect(at('2026-01-10T08:00:00Z', 'UTC')).toBe('2026-01-10T08:00:00.000Z');
    expect(at('2026-01-10T08:00:00Z', '-05:00')).toBe('2026-01-10T13:00:00.000Z');
    expect(at('2026-01-10T08:00:00Z', '-0330')).toBe('2026-01-10T11:30:00.000Z');
    expect(at('2026-01-10T08:00:00Z', '+05:45')).toBe('2026-01-10T02:15:00.000Z');
  });

  it('reads a local time just after midnight, in the afternoon and on New Year’s Eve at that hour of the zone', () => {
    expect(at('2026-01-10T00:30:00Z', 'Europe/Paris')).toBe('2026-01-09T23:30:00.000Z');
    expect(at('2026-07-10T14:30:00Z', 'Europe/Paris')).toBe('2026-07-10T12:30:00.000Z');
    expect(at('2026-01-10T23:59:30Z', 'America/New_York')).toBe('2026-01-11T04:59:30.000Z');
    expect(at('2026-12-31T23:30:00Z', 'Europe/Paris')).toBe('2026-12-31T22:30:00.000Z');
  });

  const oru = (pid: string, obx18: string) =>
    [
      'MSH|^~\\&|GW-ICU4|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|MSG-ID|P|2.6',
      `PID|||${pid}^^^HOSP^MR`,
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110080000+0000',
      `OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080000+0000||||${obx18}^EUI-64`,
    ].join('\r');
  const sources = (pid: string, obx18: string) => {
    const r = translatePcd01(oru(pid, obx18));
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return {
      ids: r.translated.map((t) => [t.message.patientId, (t.message.source as { deviceId: string }).deviceId]),
      problems: r.problems.map((p) => `${p.at.segment}-${p.at.field}`),
    };
  };

  it('takes an OBX-18 device of 64 characters of the id set (with _) as the source, one of 65 as no device id; the same for PID-3', () => {
    const d64 = `dev_${'x'.repeat(60)}`;
    expect(sources('P-0042', d64).ids).toEqual([['P-0042', d64]]);
    expect(sources('P-0042', `${d64}y`).ids).toEqual([['P-0042', 'GW-ICU4']]);
    const p64 = `P_${'1'.repeat(62)}`;
    expect(sources(p64, 'dev-1').ids).toEqual([[p64, 'dev-1']]);
    const refused = sources(`${p64}1`, 'dev-1');
    expect(refused.ids).toEqual([]);
    expect(refused.problems).toContain('PID-3');
  });

  it('names each time of a message that holds several in its messageId, milliseconds included', () => {
    const text = [
      'MSH|^~\\&|GW-ICU4|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|MSG-MS|P|2.6',
      'PID|||P-0042^^^HOSP^MR',
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110080000+0000',
      'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080000.25+0000',
      'OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|92|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110080100+0000',
    ].join('\r');
    expect(ok(text).translated.map((t) => t.message.messageId)).toEqual([
      'hl7v2:ICU4/MSG-MS/t=20260110T080000d250Z',
      'hl7v2:ICU4/MSG-MS/t=20260110T080100Z',
    ]);
  });
});

describe('toPcd01 (crs simulate --format hl7v2, the fixtures), pinned by a mutation run', () => {
  const ok = (text: string) => {
    const r = translatePcd01(text);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.problems).toEqual([]);
    return r.translated.map((t) => t.message);
  };
  const base = {
    patientId: 'P-9',
    observedAt: '2026-01-10T08:00:00Z',
    source: { deviceId: 'MON-7', kind: 'monitor' },
  } as const;

  it('writes every vital, the oxygen and the place as a monitor sends them, and they read back as sent', () => {
    const m = {
      ...base,
      messageId: 'enc-1',
      vitals: {
        temperatureC: 38.45,
        heartRate: 101,
        respiratoryRate: 22,
        spo2: 93,
        systolicBP: 88,
        diastolicBP: 51,
        meanArterialPressure: 63,
      },
      oxygen: { device: 'high_flow_nasal_cannula', fio2: 0.4, flowLpm: 40 },
      enrolment: { ward: 'Onc^H&O', bed: '4|A~1\\' },
    } as DeviceMessage;
    const text = toPcd01(m)!;
    expect(ok(text)).toEqual([{ ...m, messageId: 'hl7v2:SIM/enc-1' }]);
    const obx = text.split('\r').filter((l) => l.startsWith('OBX|'));
    expect(obx.map((l) => l.split('|').slice(1, 5).join('|'))).toEqual([
      '1|NM|150344^MDC_TEMP^MDC|1.1.1.1',
      '2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.2',
      '3|NM|151562^MDC_RESP_RATE^MDC|1.1.1.3',
      '4|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.4',
      '5|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.1.1.5',
      '6|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.1.1.6',
      '7|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.1.1.7',
      '8|CWE|oxygen-device^Oxygen delivery device^99CRS|1.1.1.8',
      '9|NM|3150-0^Inhaled oxygen concentration^LN|1.1.1.9',
      '10|NM|3151-8^Inhaled oxygen flow rate^LN|1.1.1.10',
    ]);
    expect(obx.map((l) => l.split('|')[18])).toEqual(Array(10).fill('MON-7^EUI-64'));
  });

  it('writes oxygen for comfort as oxygen-for-comfort^^99CRS (Y/N, HL7 table 0136): read back as sent', () => {
    // Until 2026-12-07 it was left out (never written as oxygen that counts toward hypoxia).
    for (const forComfort of [true, false]) {
      const oxygen = { device: 'nasal_cannula', flowLpm: 2, forComfort } as const;
      const both = { ...base, messageId: 'enc-4', vitals: { spo2: 91 }, oxygen } as DeviceMessage;
      const text = toPcd01(both)!;
      expect(ok(text)).toEqual([{ ...both, messageId: 'hl7v2:SIM/enc-4' }]);
      expect(text).toContain(
        `|CWE|oxygen-for-comfort^Oxygen for comfort^99CRS|1.1.1.4|${forComfort ? 'Y^Yes' : 'N^No'}^HL70136|`,
      );
      const alone = { ...base, messageId: 'enc-5', oxygen } as DeviceMessage;
      expect(ok(toPcd01(alone)!)).toEqual([{ ...alone, messageId: 'hl7v2:SIM/enc-5' }]);
    }
  });

  it('writes the ICANS domains and organ toxicity as 99CRS rows (NM, CWE, Y/N), read back as charted messages', () => {
    const neuro = {
      iceScore: 3,
      consciousness: 'awakens_to_voice',
      seizure: 'self_limited',
      motorWeakness: false,
      cerebralEdema: 'focal',
    } as const;
    const organToxicity = { maxCtcaeGrade: 3, transaminitisGrade: 2 };
    const m = { ...base, messageId: 'enc-6', vitals: { heartRate: 80 }, neuro, organToxicity } as DeviceMessage;
    const text = toPcd01(m)!;
    const obx = text.split('\r').filter((l) => l.startsWith('OBX|'));
    expect(obx.map((l) => l.split('|').slice(2, 7).join('|'))).toEqual([
      'NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|80|264864^MDC_DIM_BEAT_PER_MIN^MDC',
      'NM|ice-score^ICE score^99CRS|1.1.1.2|3|',
      'CWE|icans-consciousness^Level of consciousness^99CRS|1.1.1.3|awakens_to_voice^^99CRS|',
      'CWE|icans-seizure^Seizure^99CRS|1.1.1.4|self_limited^^99CRS|',
      'CWE|icans-motor-weakness^Motor weakness^99CRS|1.1.1.5|N^No^HL70136|',
      'CWE|icans-cerebral-edema^Cerebral edema^99CRS|1.1.1.6|focal^^99CRS|',
      'NM|organ-toxicity-max-ctcae-grade^Organ toxicity, highest CTCAE grade^99CRS|1.1.1.7|3|',
      'NM|transaminitis-ctcae-grade^Transaminitis, CTCAE grade^99CRS|1.1.1.8|2|',
    ]);
    const { neuro: _n, organToxicity: _o, ...vitals } = m;
    const charted = (kind: string, section: object) => ({
      ...base,
      messageId: `hl7v2:SIM/enc-6/k=${kind}`,
      source: { deviceId: 'MON-7', kind },
      ...section,
    });
    expect(ok(text)).toEqual([
      { ...vitals, messageId: 'hl7v2:SIM/enc-6' },
      charted('manual', { neuro }),
      charted('ehr', { organToxicity }),
    ]);
    // Charting alone is a message too; an empty section writes nothing.
    const alone = { ...base, messageId: 'enc-7', neuro: { motorWeakness: true } } as DeviceMessage;
    expect(ok(toPcd01(alone)!)).toEqual(
      [charted('manual', { neuro: { motorWeakness: true } })].map((x) => ({
        ...x,
        messageId: 'hl7v2:SIM/enc-7/k=manual',
      })),
    );
    expect(toPcd01({ ...base, messageId: 'enc-8', neuro: {} } as DeviceMessage)).toBeUndefined();
  });

  it('writes an oxygen reading alone, FiO2 0.21 and no flow, and a bed or a ward alone', () => {
    const oxygen = { ...base, messageId: 'enc-2', oxygen: { device: 'room_air', fio2: 0.21 } } as DeviceMessage;
    expect(ok(toPcd01(oxygen)!)).toEqual([{ ...oxygen, messageId: 'hl7v2:SIM/enc-2' }]);
    for (const enrolment of [{ bed: 'H4-14' }, { ward: 'H4' }]) {
      const moved = { ...base, messageId: 'enc-3', vitals: { heartRate: 80 }, enrolment } as DeviceMessage;
      expect(ok(toPcd01(moved)!)).toEqual([{ ...moved, messageId: 'hl7v2:SIM/enc-3' }]);
    }
  });

  it('names its sender and control id as asked, escaped', () => {
    const m = { ...base, messageId: 'enc-4', vitals: { heartRate: 80 } } as DeviceMessage;
    const text = toPcd01(m, { application: 'GW|1', facility: 'ICU&4', controlId: 'C^1' })!;
    expect(text.split('\r')[0]!.split('|').slice(2, 10)).toEqual([
      'GW\\F\\1',
      'ICU\\T\\4',
      'CRS',
      'HOSP',
      '20260110080000+0000',
      '',
      'ORU^R01^ORU_R01',
      'C\\S\\1',
    ]);
    expect(ok(text).map((x) => x.messageId)).toEqual([expect.stringMatching(/^hl7v2:ICU.*4\/C.*1$/)]);
  });
});

describe('real public samples', () => {
  // Mindray VS-900 spot monitor, as quoted with HAPI's ExampleParseMessages (a public write-up of a Mindray
  // integration); PID-3 was empty in the sample and is a test id here. The cuff pressure is MDC_PRESS_CUFF_*
  // (150301-150303), which Mindray and Comen monitors send for the non-invasive blood pressure.
  const MINDRAY_VS900 = [
    'MSH|^~\\&|MINDRAY_VS900^00A0370098007A80^EUI-64||||20191206113452||ORU^R01^ORU_R01|1914|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO',
    'PID|||PAT1^^^Hospital^PI||^^^^^^L',
    'PV1||I||||||||||||||||||||||||||||||||||||||||||20191201',
    'OBR|1|1914^MINDRAY_VS900^00A0370098007A80^EUI-64|1914^MINDRAY_VS900^00A0370098007A80^EUI-64|182777000^monitoring of patient^SCT|||20191206113452',
    'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|99|262688^MDC_DIM_PERCENT^MDC|||||R|||20191206113452||||00A0370098007A80^^00A0370098007A80^EUI-64',
    'OBX|2|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|94|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20191206113452',
    'OBX|3|NM|150488^MDC_BLD_PERF_INDEX^MDC|1.3.1.150488|0.94|262688^MDC_DIM_PERCENT^MDC|||||R|||20191206113452',
    'OBX|4|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301|147|266016^MDC_DIM_MMHG^MDC|||||R|||20191206111016|||^APERIODIC',
    'OBX|5|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.9.150303|109|266016^MDC_DIM_MMHG^MDC|||||R|||20191206111016|||^APERIODIC',
    'OBX|6|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.1.9.150302|90|266016^MDC_DIM_MMHG^MDC|||||R|||20191206111016|||^APERIODIC',
  ].join('\r');

  it('reads the cuff pressure a Mindray VS-900 sends as MDC_PRESS_CUFF_SYS/DIA/MEAN (150301-150303)', () => {
    const r = ok(MINDRAY_VS900, 'UTC');
    expect(r.problems).toEqual([]);
    const bp = r.translated.map((t) => t.message).find((m) => m.observedAt === '2019-12-06T11:10:16Z');
    expect(bp).toMatchObject({
      patientId: 'PAT1',
      vitals: { systolicBP: 147, diastolicBP: 90, meanArterialPressure: 109 },
    });
  });

  it('ranks the cuff codes with the other non-invasive pressure: the arterial line wins, a different cuff value under another code is refused', () => {
    const at = '20191206111016';
    const base = MINDRAY_VS900.split('\r').slice(0, 4);
    const art = ok(
      [
        ...base,
        `OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1|147|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
        `OBX|2|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC|2|88|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
      ].join('\r'),
      'UTC',
    );
    expect(art.translated.map((t) => t.message.vitals)).toEqual([{ systolicBP: 88 }]);
    const two = ok(
      [
        ...base,
        `OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1|147|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
        `OBX|2|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|2|120|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
      ].join('\r'),
      'UTC',
    );
    expect(two.translated).toEqual([]);
    expect(two.problems.map((p) => p.at.sequence)).toEqual([1, 2]);
  });

  it('refuses a value OBX-8 flags as no measurement of the patient: a Mindray in demo mode (DEMO), off the scale (< or >)', () => {
    // The same VS-900 in demo mode, as a public HL7 library's test script quotes it: every OBX flagged DEMO.
    const demo = MINDRAY_VS900.split('\r')
      .map((l) =>
        l.startsWith('OBX|')
          ? l
              .split('|')
              .map((f, i) => (i === 8 ? 'DEMO' : f))
              .join('|')
          : l,
      )
      .join('\r');
    const r = ok(demo, 'UTC');
    expect(r.translated).toEqual([]);
    expect(r.problems.map((p) => [p.at.sequence, p.at.field, p.code])).toEqual([
      [1, 8, 102],
      [2, 8, 102],
      [4, 8, 102],
      [5, 8, 102],
      [6, 8, 102],
    ]);
    expect(r.problems[0]!.text).toContain('demo mode');
    // Off the scale: the bound is not the value (an SpO2 "<" 50 is not 50); the other OBX are taken.
    const base = MINDRAY_VS900.split('\r').slice(0, 4);
    const at = '20191206113452';
    const off = ok(
      [
        ...base,
        `OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1|50|262688^MDC_DIM_PERCENT^MDC||<|||R|||${at}`,
        `OBX|2|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|2|250|264864^MDC_DIM_BEAT_PER_MIN^MDC||N~>|||R|||${at}`,
        `OBX|3|NM|150344^MDC_TEMP^MDC|3|38.4|268192^MDC_DIM_DEGC^MDC||H|||R|||${at}`,
      ].join('\r'),
      'UTC',
    );
    expect(off.problems.map((p) => [p.at.sequence, p.at.field])).toEqual([
      [1, 8],
      [2, 8],
    ]);
    expect(off.problems[0]!.text).toContain('a bound, not a measurement');
    // A flag that only says abnormal (H, L, A...) is a measurement like any other.
    expect(off.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.4 }]);
  });

  // Mindray eGateway sample message of a public Next.js HL7 ingest page (DUMMY_ORU); PID-3 was empty there and
  // is a test id here. The respiratory rate comes from the ECG leads' impedance: MDC_TTHOR_RESP_RATE (151578).
  it('reads the impedance respiratory rate (MDC_TTHOR_RESP_RATE 151578) of a Mindray eGateway message', () => {
    const t = '20260912120000.0000+0530';
    const r = ok(
      [
        `MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||${t}||ORU^R01^ORU_R01|23545|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
        'PID|||PAT5^^^Hospital^PI||||||unknownrace',
        'PV1||I|ICU^^5^XYZ HOSPITAL^^^^^00-0F-14-50-72-99',
        `OBR|1|23545^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|23545^MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|182777000^monitoring of patient^SCT|||${t}`,
        `OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|98|262688^MDC_DIM_PERCENT^MDC|||||R|||${t}`,
        `OBX|5|NM|151578^MDC_TTHOR_RESP_RATE^MDC|1.7.1.151578|17|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||${t}`,
        `OBX|13|NM|147842^MDC_ECG_HEART_RATE^MDC|1.7.4.147842|66|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||${t}`,
      ].join('\r'),
    );
    expect(r.problems).toEqual([]);
    expect(r.translated.map((x) => x.message)).toEqual([
      expect.objectContaining({
        patientId: 'PAT5',
        observedAt: '2026-09-12T06:30:00Z',
        vitals: { spo2: 98, respiratoryRate: 17, heartRate: 66 },
      }),
    ]);
  });

  // The arterial line as Philips IntelliVue, Mindray and OpenICE label it (MDC_PRESS_BLD_ART_ABP_*, 150037-150039;
  // public code tables of their integrations): the pressure of a patient on vasopressors, read as the arterial line.
  it('reads the arterial line sent as MDC_PRESS_BLD_ART_ABP_SYS/DIA/MEAN (150037-150039), over the cuff', () => {
    const base = MINDRAY_VS900.split('\r').slice(0, 4);
    const at = '20191206111016';
    const r = ok(
      [
        ...base,
        `OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1|112|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
        `OBX|2|NM|150037^MDC_PRESS_BLD_ART_ABP_SYS^MDC|2|84|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
        `OBX|3|NM|150038^MDC_PRESS_BLD_ART_ABP_DIA^MDC|3|45|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
        `OBX|4|NM|150039^MDC_PRESS_BLD_ART_ABP_MEAN^MDC|4|58|266016^MDC_DIM_MMHG^MDC|||||R|||${at}`,
      ].join('\r'),
      'UTC',
    );
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message.vitals)).toEqual([
      { systolicBP: 84, diastolicBP: 45, meanArterialPressure: 58 },
    ]);
  });

  // A spot monitor's public sample sent its temperature twice at one time, once garbled (384.5): the tie refused
  // both, and the real fever with them. A value the contract refuses anyway no longer weighs against a good one.
  it('refuses an out-of-range reading on its own, keeping the good one of the same quantity and time; two good ones that differ are still both refused', () => {
    const base = MINDRAY_VS900.split('\r').slice(0, 4);
    const at = '20191206113452';
    const temp = (n: number, v: string) =>
      `OBX|${n}|NM|150344^MDC_TEMP^MDC|${n}|${v}|268192^MDC_DIM_DEGC^MDC|||||R|||${at}`;
    const garbled = ok([...base, temp(1, '384.5'), temp(2, '38.5')].join('\r'), 'UTC');
    expect(garbled.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.5 }]);
    expect(garbled.problems.map((p) => [p.at.sequence, p.text])).toEqual([
      [1, expect.stringMatching(/^vitals\.temperatureC: 384\.5 is outside 25-45/)],
    ]);
    const two = ok([...base, temp(1, '36.8'), temp(2, '36.9')].join('\r'), 'UTC');
    expect(two.translated).toEqual([]);
    expect(two.problems.map((p) => p.at.sequence)).toEqual([1, 2]);
  });

  // HL7 v2.7 gives PV1-3's point of care and bed as HD (name&universal id&type): the whole "Bed12&1.2.3&ISO" was the
  // bed label shown on pages and the board. The name (the first subcomponent) is the label.
  it('reads the bed and ward of a v2.7 PV1-3 whose parts are HD (Bed12&1.2.3&ISO) by their names', () => {
    const r = ok(PCD01.replace('PV1||I|ICU4^^12', 'PV1||I|ICU4&1.2.3.4&ISO^^Bed12&1.2.3&ISO'));
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message.enrolment)).toEqual([
      { bed: 'Bed12', ward: 'ICU4' },
      { bed: 'Bed12', ward: 'ICU4' },
    ]);
  });

  // A body temperature coded by where it was taken (an EHR flowsheet's oral row, a monitor's core or axillary
  // probe) was skipped in silence (AA, nothing taken): a 38.9 °C fever charted as an oral temperature never reached
  // the grade. Each site's code is read as the temperature; skin is still no body temperature.
  describe('a body temperature coded by its site', () => {
    const base = MINDRAY_VS900.split('\r').slice(0, 4);
    const at = '20191206113452';
    const temp = (n: number, code: string, value: string, unit = '268192^MDC_DIM_DEGC^MDC') =>
      `OBX|${n}|NM|${code}|${n}|${value}|${unit}|||||R|||${at}`;
    const SITES = [
      '8331-1^Oral temperature^LN',
      '8328-7^Axillary temperature^LN',
      '8332-9^Rectal temperature^LN',
      '8333-7^Tympanic membrane temperature^LN',
      '76011-6^Ear temperature^LN',
      '75539-7^Body temperature - Temporal artery^LN',
      '8329-5^Body temperature - Core^LN',
      '8330-3^Body temperature - Intravascular^LN',
      '60834-9^Blood temperature^LN',
      '60836-4^Esophageal temperature^LN',
      '60838-0^Nasopharyngeal temperature^LN',
      '8334-5^Body temperature - Urinary bladder^LN',
      '150364^MDC_TEMP_BODY^MDC',
      '150368^MDC_TEMP_CORE^MDC',
      '150372^MDC_TEMP_ESOPH^MDC',
      '150380^MDC_TEMP_NASOPH^MDC',
      '150392^MDC_TEMP_TYMP^MDC',
      '188420^MDC_TEMP_RECT^MDC',
      '188424^MDC_TEMP_ORAL^MDC',
      '188428^MDC_TEMP_EAR^MDC',
      '188436^Blood temperature^MDC',
      '188452^MDC_TEMP_AXILLA^MDC',
      '188456^MDC_TEMP_GIT^MDC',
      '188496^MDC_TEMP_AXIL^MDC',
      '0002-4b60^Tcore^MDIL',
    ];
    it.each(SITES)('takes a fever coded %s, and it is graded', (code) => {
      const r = ok([...base, temp(1, code, '38.9')].join('\r'), 'UTC');
      expect(r.problems).toEqual([]);
      expect(r.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.9 }]);
      expect(crsGradesOf(r.translated[0]!.message)).toEqual([1]);
    });

    it('still skips a skin, surface or nasal temperature (they read low, and could hide a fever)', () => {
      for (const code of [
        '150388^MDC_TEMP_SKIN^MDC',
        '61008-9^Body surface temperature^LN',
        '60830-7^Finger temperature^LN',
        '76010-8^Nasal temperature^LN',
      ]) {
        const r = ok([...base, temp(1, code, '36.1')].join('\r'), 'UTC');
        expect(r.problems, code).toEqual([]);
        expect(r.translated, code).toEqual([]);
      }
    });

    it('reads a generic and a site temperature of one message as one reading: the generic, never overridden by the site', () => {
      // The generic body temperature (MDC or LOINC) over any site, whichever comes first.
      for (const generic of ['150344^MDC_TEMP^MDC', '8310-5^Body temperature^LN', '150364^MDC_TEMP_BODY^MDC'])
        for (const site of ['188424^MDC_TEMP_ORAL^MDC', '8329-5^Body temperature - Core^LN', '8328-7^Axillary^LN']) {
          const one = ok([...base, temp(1, site, '38.9'), temp(2, generic, '37.2')].join('\r'), 'UTC');
          expect(one.problems, `${generic} ${site}`).toEqual([]);
          expect(one.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 37.2 }]);
          expect(one.translated[0]!.origins['vitals.temperatureC']).toMatchObject({ sequence: 2 });
        }
      // Among the sites: core, then the mouth (or ear, temporal artery), then the axilla.
      const sites = ok(
        [
          ...base,
          temp(1, '8328-7^Axillary temperature^LN', '37.4'),
          temp(2, '188424^MDC_TEMP_ORAL^MDC', '38.1'),
          temp(3, '150368^MDC_TEMP_CORE^MDC', '38.6'),
        ].join('\r'),
        'UTC',
      );
      expect(sites.problems).toEqual([]);
      expect(sites.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.6 }]);
      const oralOverAxilla = ok(
        [...base, temp(1, '8328-7^Axillary^LN', '37.4'), temp(2, '8331-1^Oral^LN', '38.1')].join('\r'),
        'UTC',
      );
      expect(oralOverAxilla.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.1 }]);
      // Two different values of one site (as of two generic ones) are still both refused.
      const two = ok(
        [...base, temp(1, '8331-1^Oral^LN', '38.1'), temp(2, '188424^Oral^MDC', '37.0')].join('\r'),
        'UTC',
      );
      expect(two.translated).toEqual([]);
      expect(two.problems.map((p) => p.at.sequence)).toEqual([1, 2]);
    });
  });

  // Philips IntelliVue Information Center and Efficia CM monitors send their numerics in Philips' own coding system
  // MDIL: the MDC term as "partition-code" in hex (0002-4182 is partition 2, code 0x4182: 147842 MDC_ECG_HEART_RATE;
  // the unit 0004-0aa0 is 264864 MDC_DIM_BEAT_PER_MIN). The messages below are the public samples of two HL7
  // integrations of those monitors (the times moved, a temperature row added, 0002-4b48 MDC_TEMP): they were
  // answered AA with nothing taken, and the Efficia's was refused (AR) for an MSH-3 it had.
  const PHILIPS_IIC = [
    'MSH|^~\\&|||||||ORU^R01|HP104220879017992|P|2.2||||||8859/1',
    'PID|||MRN5733||Smith^John||19550508|M',
    'PV1||I|^^Doc1',
    'OBR|||||||20260110080000',
    'OBX||NM|0002-4bb8^SpO2^MDIL|0|95|0004-0220^%^MDIL|||||F',
    'OBX||NM|0002-5000^Resp^MDIL|0|15|0004-0ae0^rpm^MDIL|||||F',
    'OBX||NM|0002-4182^HR^MDIL|0|60|0004-0aa0^bpm^MDIL|||||F',
    'OBX||NM|0002-4a15^ABPs^MDIL|0|120|0004-0f20^mmHg^MDIL|||||F',
    'OBX||NM|0002-4a16^ABPd^MDIL|0|70|0004-0f20^mmHg^MDIL|||||F',
    'OBX||NM|0002-4a17^ABPm^MDIL|0|91|0004-0f20^mmHg^MDIL|||||F',
    'OBX||NM|0002-4b48^Temp^MDIL|0|38.6|0004-17a0^°C^MDIL|||||F',
  ].join('\r');

  it('reads the MDIL codes of Philips monitors (partition-code in hex) as the MDC codes they are, units too', () => {
    const r = ok(PHILIPS_IIC.replace('|||||||ORU^R01|', '|PIIC|PHILIPS|||||ORU^R01|'), 'UTC');
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message)).toEqual([
      expect.objectContaining({
        patientId: 'MRN5733',
        observedAt: '2026-01-10T08:00:00Z',
        // 0002-5000 (Philips' "Resp", 151552) is none of the respiratory rates read: skipped, as under MDC.
        vitals: {
          spo2: 95,
          heartRate: 60,
          systolicBP: 120,
          diastolicBP: 70,
          meanArterialPressure: 91,
          temperatureC: 38.6,
        },
        enrolment: { bed: 'Doc1' },
      }),
    ]);
    // A unit in MDIL is read as its MDC code: Fahrenheit (0004-1140, 266560) converted, an unknown one refused.
    const fahrenheit = ok(
      PHILIPS_IIC.replace('|||||||ORU^R01|', '|PIIC|PHILIPS|||||ORU^R01|').replace(
        '38.6|0004-17a0^°C^MDIL',
        '101.3|0004-1140^°F^MDIL',
      ),
      'UTC',
    );
    expect(fahrenheit.translated[0]!.message.vitals).toMatchObject({ temperatureC: 38.5 });
    const unknown = ok(
      PHILIPS_IIC.replace('|||||||ORU^R01|', '|PIIC|PHILIPS|||||ORU^R01|').replace(
        '0004-0220^%^MDIL',
        '0004-0f20^mmHg^MDIL',
      ),
      'UTC',
    );
    expect(unknown.problems.map((p) => [p.at.sequence, p.at.field, p.code])).toEqual([[1, 6, 103]]);
  });

  it('scopes MSH-10 by MSH-3 when MSH-3 names the application by its universal id only (an Efficia CM: ^EfficiaCM)', () => {
    const efficia = [
      'MSH|^~\\&|^EfficiaCM||||20260110080100||ORU^R01^ORU_R01|CN92390246|P|2.4',
      'PID|||1234||^Erick^',
      'PV1|||^^|||||||||||||||A|1234',
      'ORC|NW|||||||||||||||||CN92390246',
      'OBR||||MONITOR|||20260110080000|||',
      'OBX||NM|0002-4182^HR^MDIL||60|0004-0aa0^bpm^MDIL|||||F',
      'OBX||NM|0002-4bb8^SpO2^MDIL||96|0004-0220^%^MDIL|||||F',
    ].join('\r');
    const r = ok(efficia, 'UTC');
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message)).toEqual([
      expect.objectContaining({
        messageId: 'hl7v2:EfficiaCM/CN92390246',
        patientId: '1234',
        source: { deviceId: 'EfficiaCM', kind: 'monitor' },
        vitals: { heartRate: 60, spo2: 96 },
      }),
    ]);
    // With neither MSH-3 nor MSH-4 (the IntelliVue Information Center's own sample), still refused, naming MSH-4.
    const none = translatePcd01(PHILIPS_IIC, { zone: parseZone('UTC')! });
    expect(none).toMatchObject({ ok: false, problems: [{ at: { segment: 'MSH', field: 4 }, code: 101 }] });
  });

  // An EHR's flowsheet keeps the blood pressure as one row, "120/80" (Epic's BP row), and its outbound interface
  // sends it so, coded as the panel: it was skipped without a word (AA, nothing taken), and a hypotension charted by
  // the nurses never reached the grade.
  it('reads a blood pressure panel sent as one value, systolic/diastolic (85354-9 or 55284-4), and refuses one it cannot read', () => {
    const flowsheet = (obx: string) =>
      [
        'MSH|^~\\&|EPIC|HOSP|||20260110080500+0000||ORU^R01^ORU_R01|FS1|P|2.5.1',
        'PID|||P-0042^^^HOSP^MR',
        'PV1||I|H4^^12',
        'OBR|1|||VITALS^Vital signs|||20260110080000+0000',
        obx,
      ].join('\r');
    for (const code of ['85354-9^Blood pressure panel^LN', '55284-4^Blood pressure^LN']) {
      const r = ok(flowsheet(`OBX|1|ST|${code}||86/48|mm[Hg]^mmHg^UCUM|||||F`));
      expect(r.problems).toEqual([]);
      expect(r.translated.map((t) => t.message.vitals)).toEqual([{ systolicBP: 86, diastolicBP: 48 }]);
    }
    const kpa = ok(flowsheet('OBX|1|ST|85354-9^BP^LN||12/6.4|kPa^kPa^UCUM|||||F'));
    expect(kpa.translated[0]!.message.vitals).toEqual({ systolicBP: 90.0073891015, diastolicBP: 48.0039408541 });
    // Without a unit, or a value that is no systolic/diastolic: refused, naming the field (never guessed).
    const noUnit = ok(flowsheet('OBX|1|ST|85354-9^BP^LN||86/48||||||F'));
    expect(noUnit.translated).toEqual([]);
    // Its PV1-3 is named too: no OBX of the group read, it has no time to be taken at.
    expect(noUnit.problems.map((p) => [p.at.segment, p.at.field, p.code])).toEqual([
      ['OBX', 6, 103],
      ['PV1', 3, 102],
    ]);
    const text = ok(flowsheet('OBX|1|ST|85354-9^BP^LN||see note|mm[Hg]|||||F'));
    expect(text.translated).toEqual([]);
    expect(text.problems).toEqual([
      expect.objectContaining({
        at: { segment: 'OBX', sequence: 1, field: 5 },
        code: 102,
        text: expect.stringContaining('120/80'),
      }),
      expect.objectContaining({ at: { segment: 'PV1', sequence: 1, field: 3 }, code: 102 }),
    ]);
    // A panel's heading row with no value, its systolic and diastolic in OBX of their own: those taken, no AE.
    const heading = ok(
      flowsheet(
        [
          'OBX|1||85354-9^Blood pressure panel^LN||||||||F',
          'OBX|2|NM|8480-6^Systolic^LN||84|mm[Hg]^mmHg^UCUM|||||F',
          'OBX|3|NM|8462-4^Diastolic^LN||50|mm[Hg]^mmHg^UCUM|||||F',
        ].join('\r'),
      ),
    );
    expect(heading.problems).toEqual([]);
    expect(heading.translated.map((t) => t.message.vitals)).toEqual([{ systolicBP: 84, diastolicBP: 50 }]);
  });

  // One OBX, two values: named refused in its ERR, the half the contract took was still queued and graded (a
  // systolic 86 with the diastolic 480 refused: a hypotension from a row the sender was told was refused).
  it('refuses a blood pressure panel (one OBX) whole when one half is out of range: nothing of the row refused is queued', async () => {
    const flowsheet = (value: string) =>
      [
        'MSH|^~\\&|EPIC|HOSP|||20260110085800+0000||ORU^R01^ORU_R01|FS2|P|2.5.1',
        'PID|||P-0042^^^HOSP^MR',
        'OBR|1|||VITALS^Vital signs|||20260110085800+0000',
        'OBX|1|NM|8867-4^Heart rate^LN||112|/min|||||F',
        `OBX|2|ST|85354-9^Blood pressure panel^LN||${value}|mm[Hg]^mmHg^UCUM|||||F`,
      ].join('\r');
    for (const [value, refused] of [
      ['86/480', 'vitals.diastolicBP: 480 is outside 0-250'],
      ['400/48', 'vitals.systolicBP: 400 is outside 0-300'],
    ] as const) {
      const queue = new MemoryQueue();
      const a = await ingestHl7(flowsheet(value), { deviceId: 'gw', role: 'ehr' }, { queue, now: () => NOW });
      expect(a.code).toBe('AE');
      const errs = a.ack.split('\r').filter((l) => l.startsWith('ERR'));
      expect(errs.length).toBeGreaterThan(0);
      for (const e of errs) expect(e).toMatch(/^ERR\|\|OBX\^2\^5\^1\|102\^/);
      expect(errs.join('\n')).toContain(refused);
      expect(queue.messages.map((q) => q.message.vitals)).toEqual([{ heartRate: 112 }]);
    }
    // Two panels at one time whose diastolics differ: both rows refused, their systolic (the same in both) with them.
    const queue = new MemoryQueue();
    const two = `${flowsheet('86/48')}\rOBX|3|ST|85354-9^Blood pressure panel^LN||86/50|mm[Hg]^mmHg^UCUM|||||F`;
    const a = await ingestHl7(two, { deviceId: 'gw', role: 'ehr' }, { queue, now: () => NOW });
    expect(a.code).toBe('AE');
    expect(a.problems.map((p) => [p.at.sequence, /^vitals\.\w+/.exec(p.text)?.[0]])).toEqual([
      [2, 'vitals.diastolicBP'],
      [3, 'vitals.diastolicBP'],
      [2, 'vitals.systolicBP'],
    ]);
    expect(queue.messages.map((q) => q.message.vitals)).toEqual([{ heartRate: 112 }]);
  });

  // The better source refused (an arterial line flushed: 400 mmHg, out of the contract's range) hid the good one of
  // the same time (the cuff's 86, a hypotension): dropped without an ERR, the sender took it for accepted.
  it('takes the next source of a measurement when the better one is out of range, refusing that one at its own OBX', async () => {
    const queue = new MemoryQueue();
    const a = await ingestHl7(
      [
        'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110085800+0000||ORU^R01^ORU_R01|ART1|P|2.6',
        'PID|||P-0042^^^HOSP^MR',
        'OBR|1|||182777000^monitoring of patient^SCT|||20260110085800+0000',
        'OBX|1|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC||400|266016^MDC_DIM_MMHG^MDC|||||F',
        'OBX|2|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||86|266016^MDC_DIM_MMHG^MDC|||||F',
        'OBX|3|ST|85354-9^Blood pressure panel^LN||90/480|mm[Hg]^mmHg^UCUM|||||F',
        'OBX|4|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC||48|266016^MDC_DIM_MMHG^MDC|||||F',
      ].join('\r'),
      { deviceId: 'gw', role: 'monitor' },
      { queue, now: () => NOW },
    );
    expect(a.code).toBe('AE');
    expect(a.problems.map((p) => [p.at.sequence, p.text]).sort()).toEqual([
      [1, 'vitals.systolicBP: 400 is outside 0-300'],
      [3, "vitals.diastolicBP: 480 is outside 0-250; the panel's row is refused whole"],
    ]);
    expect(queue.messages.map((q) => q.message.vitals)).toEqual([{ systolicBP: 86, diastolicBP: 48 }]);
  });

  it("takes the monitor's respiratory rate (MDC_RESP_RATE) over the impedance channel's when both come, whatever their order", () => {
    const t = '20260912120000+0000';
    const head = [
      `MSH|^~\\&|MINDRAY_EGATEWAY^00A03700273EDE18^EUI-64|MINDRAY|||${t}||ORU^R01^ORU_R01|23546|P|2.6`,
      'PID|||PAT5^^^Hospital^PI',
      `OBR|1|23546||182777000^monitoring of patient^SCT|||${t}`,
    ];
    const impedance = `OBX|1|NM|151578^MDC_TTHOR_RESP_RATE^MDC|1|31|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||${t}`;
    const monitor = `OBX|2|NM|151562^MDC_RESP_RATE^MDC|2|17|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||${t}`;
    for (const obx of [
      [impedance, monitor],
      [monitor, impedance],
    ]) {
      const r = ok([...head, ...obx].join('\r'));
      expect(r.problems).toEqual([]);
      expect(r.translated.map((x) => x.message.vitals)).toEqual([{ respiratoryRate: 17 }]);
    }
  });
});

describe('the MDIL codes, the blood pressure panel and the temperature sites, pinned by a mutation run', () => {
  const flowsheet = (...obx: string[]) =>
    ok(
      [
        'MSH|^~\\&|EPIC|HOSP|||20260110080500+0000||ORU^R01^ORU_R01|FS1|P|2.5.1',
        'PID|||P-0042^^^HOSP^MR',
        'PV1||I|H4^^12',
        'OBR|1|||VITALS^Vital signs|||20260110080000+0000',
        ...obx,
      ].join('\r'),
    );
  const panel = (value: string, type = 'ST') => `OBX|1|${type}|85354-9^BP^LN||${value}|mm[Hg]^mmHg^UCUM|||||F`;

  it('reads a panel with spaces around its slash, or sent as NM, and refuses any other type or shape, naming OBX-5', () => {
    for (const [value, type] of [
      [' 86 / 48 ', 'ST'],
      ['86 /48', 'ST'],
      ['86/48', 'NM'],
      ['86/48', ''],
    ] as const) {
      const r = flowsheet(panel(value, type));
      expect(r.problems, value).toEqual([]);
      expect(r.translated.map((t) => t.message.vitals)).toEqual([{ systolicBP: 86, diastolicBP: 48 }]);
    }
    // A third number, an exponent, a sign, text before it, a second component or repetition, an escape: no guess.
    for (const [value, type] of [
      ['120/80/60', 'ST'],
      ['1e3/2', 'ST'],
      ['-120/80', 'ST'],
      ['BP 120/80', 'ST'],
      ['120/80 mmHg', 'ST'],
      ['120/80^x', 'ST'],
      ['120/80~130/85', 'ST'],
      ['120\\S\\80', 'ST'],
      ['120\\X2F\\80', 'ST'],
      ['120/80', 'CWE'],
      ['120/80', 'TX'],
    ] as const) {
      const r = flowsheet(panel(value, type));
      expect(r.translated, value).toEqual([]);
      expect(
        r.problems.map((p) => [p.at.segment, p.at.field, p.code, p.text.includes('blood pressure panel')]),
        value,
      ).toEqual([
        ['OBX', 5, 102, true],
        ['PV1', 3, 102, false],
      ]);
    }
  });

  it('ranks a panel as a LOINC source: the arterial line of the same message and time is read over it', () => {
    const r = flowsheet(
      panel('118/76'),
      'OBX|2|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC||86|266016^MDC_DIM_MMHG^MDC|||||F',
      'OBX|3|NM|150034^MDC_PRESS_BLD_ART_DIA^MDC||48|266016^MDC_DIM_MMHG^MDC|||||F',
    );
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message.vitals)).toEqual([{ systolicBP: 86, diastolicBP: 48 }]);
  });

  it('scopes MSH-10 by the namespace id of MSH-3 before its universal id, when MSH-4 is empty', () => {
    const r = ok(PCD01.replace('|ICU4|CRS|HOSP|', '||CRS|HOSP|'));
    expect(r.translated[0]!.message.messageId).toMatch(/^hl7v2:GW-ICU4\/MSG000123\//);
  });

  it('reads an MDIL code only as four hex digits, a dash and four, under the system MDIL', () => {
    const hr = (code: string) => `OBX|1|NM|${code}||60|0004-0aa0^bpm^MDIL|||||F`;
    expect(flowsheet(hr('0002-4182^HR^MDIL')).translated.map((t) => t.message.vitals)).toEqual([{ heartRate: 60 }]);
    for (const code of [
      '2-4182^HR^MDIL',
      '00002-4182^HR^MDIL',
      '0002-41820^HR^MDIL',
      'GGGG-4182^HR^MDIL',
      '0x02-4182^HR^MDIL',
      '0002_4182^HR^MDIL',
      'FFFF-FFFF^HR^MDIL',
      // Without the system, a hex code is no MDC number: not guessed to be Philips'.
      '0002-4182^HR',
      '0002-4182^HR^MDC',
    ]) {
      const r = flowsheet(hr(code));
      expect(r.translated, code).toEqual([]);
      expect(r.problems, code).toEqual([]);
    }
  });

  it('refuses an MDIL unit that is not partition-code in hex, naming it as sent in OBX-6', () => {
    for (const unit of ['0004-XXXX^bpm^MDIL', 'bpm^^MDIL']) {
      const r = flowsheet(`OBX|1|NM|0002-4182^HR^MDIL||60|${unit}|||||F`);
      expect(r.translated, unit).toEqual([]);
      expect(r.problems.map((p) => [p.at.segment, p.at.field, p.code])).toEqual([
        ['OBX', 6, 103],
        ['PV1', 3, 102],
      ]);
      expect(r.problems[0]!.text, unit).toContain(`"${unit.split('^')[0]}"`);
    }
  });

  it('ranks the core sites over the mouth and ear: rectal over tympanic, whatever their order', () => {
    const rectal = 'OBX|1|NM|188420^MDC_TEMP_RECT^MDC||38.6|268192^MDC_DIM_DEGC^MDC|||||F';
    const tympanic = 'OBX|2|NM|150392^MDC_TEMP_TYMP^MDC||37.6|268192^MDC_DIM_DEGC^MDC|||||F';
    for (const pair of [
      [rectal, tympanic],
      [tympanic, rectal],
    ]) {
      const r = flowsheet(...pair);
      expect(r.problems).toEqual([]);
      expect(r.translated.map((t) => t.message.vitals)).toEqual([{ temperatureC: 38.6 }]);
    }
  });
});

describe('the HL7 v2 changes of 2026-12-05 (places, panels, sources), pinned by a mutation run', () => {
  const MSH = 'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110085800+0000||ORU^R01^ORU_R01|MUT1|P|2.6';
  const heartRate = (n: number, value: string, time = '20260110085800+0000') =>
    `OBX|${n}|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|${value}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||${time}`;
  const send = async (role: Principal['role'], ...segments: string[]) => {
    const queue = new MemoryQueue();
    const a = await ingestHl7([MSH, ...segments].join('\r'), { deviceId: 'gw', role }, { queue, now: () => NOW });
    const errors = a.ack
      .split('\r')
      .filter((l) => l.startsWith('ERR'))
      .map((l) => [l.split('|')[2], l.split('|').at(-1)]);
    return { code: a.code, errors, queued: queue.messages.map((q) => q.message) };
  };

  it('names a PV1-3 none of whose OBX could be read when another PV1 follows in the same PID group', async () => {
    const r = await send(
      'monitor',
      'PID|||P-1^^^HOSP^MR',
      'PV1||I|H4^^12',
      heartRate(1, '80', '2026011'),
      'PV1||I|H5^^14',
      heartRate(2, '80'),
    );
    expect(r.code).toBe('AE');
    expect(r.errors.map(([at]) => at)).toEqual(['OBX^1^14^1', 'PV1^1^3^1']);
    expect(r.errors[1]![1]).toMatch(/^enrolment: PV1-3 is not taken: no OBX of its group could be read \(OBX 1\)/);
    expect(r.queued.map((m) => [m.vitals, m.enrolment])).toEqual([[{ heartRate: 80 }, { bed: '14', ward: 'H5' }]]);
  });

  it('names each PV1-3 not taken in a message of several PID groups, whatever the groups between took', async () => {
    const group = (patient: string, place: string, obx: string) => [
      `PID|||${patient}^^^HOSP^MR`,
      `PV1||I|${place}`,
      obx,
    ];
    const r = await send(
      'monitor',
      ...group('P-1', 'H4^^12', heartRate(1, '80', '2026011')),
      ...group('P-2', 'H5^^14', heartRate(2, '80')),
      ...group('P-3', 'H6^^16', heartRate(3, '80', '2026011')),
    );
    expect(r.errors.map(([at]) => at)).toEqual(['OBX^1^14^1', 'PV1^1^3^1', 'OBX^3^14^1', 'PV1^3^3^1']);
    expect(r.queued.map((m) => [m.patientId, m.enrolment])).toEqual([['P-2', { bed: '14', ward: 'H5' }]]);
  });

  it('refuses each of two values of one measurement and time that are both out of range, and takes the rest', async () => {
    const r = await send(
      'monitor',
      'PID|||P-1^^^HOSP^MR',
      heartRate(1, '999'),
      heartRate(2, '998'),
      'OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.2|95|262688^MDC_DIM_PERCENT^MDC|||||R|||20260110085800+0000',
    );
    expect(r.code).toBe('AE');
    expect(r.errors.map(([at]) => at)).toEqual(['OBX^1^5^1', 'OBX^2^5^1']);
    expect(r.queued.map((m) => m.vitals)).toEqual([{ spo2: 95 }]);
  });

  it('names a refusal of a whole message at each PID group it came from (a kind the token may not claim)', async () => {
    const group = ['PID|||P-1^^^HOSP^MR', heartRate(1, '80')];
    const r = await send('ventilator', ...group, ...group);
    expect(r.code).toBe('AR');
    expect(r.errors.map(([at]) => at)).toEqual(['PID^1^3^1', 'PID^2^3^1']);
    expect(r.queued).toEqual([]);
  });

  it('names an oxygen section a token may not send at each of its OBX (device, flow and FiO2), not the device alone', async () => {
    const at = '20260110085800+0000';
    const r = await send(
      'pump',
      'PID|||P-1^^^HOSP^MR',
      heartRate(1, '80'),
      `OBX|2|CWE|oxygen-device^Oxygen delivery device^99CRS|1.9.1.1|336623009^Oxygen nasal cannula^SCT||||||F|||${at}`,
      `OBX|3|NM|3151-8^Inhaled oxygen flow rate^LN|1.9.1.2|4|L/min^^UCUM|||||F|||${at}`,
      `OBX|4|NM|3150-0^Inhaled oxygen concentration^LN|1.9.1.3|0.4|1^^UCUM|||||F|||${at}`,
    );
    expect(r.code).toBe('AR'); // nothing of it taken
    expect(r.errors.filter(([, text]) => text!.startsWith('oxygen:')).map(([at]) => at)).toEqual([
      'OBX^2^5^1',
      'OBX^3^5^1',
      'OBX^4^5^1',
    ]);
    expect(r.queued).toEqual([]);
  });

  it('passes over a worse source out of range without a word when the better one is read (AA)', async () => {
    const r = await send(
      'monitor',
      'PID|||P-0042^^^HOSP^MR',
      'OBR|1|||182777000^monitoring of patient^SCT|||20260110085800+0000',
      'OBX|1|NM|150033^MDC_PRESS_BLD_ART_SYS^MDC||120|266016^MDC_DIM_MMHG^MDC|||||F',
      'OBX|2|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||400|266016^MDC_DIM_MMHG^MDC|||||F',
    );
    expect([r.code, r.errors]).toEqual(['AA', []]);
    expect(r.queued.map((m) => m.vitals)).toEqual([{ systolicBP: 120 }]);
  });

  it("takes a panel's other half from another OBX of the same value and source when the panel's row is refused in a conflict", async () => {
    const r = await send(
      'ehr',
      'PID|||P-0042^^^HOSP^MR',
      'OBR|1|||VITALS^Vital signs|||20260110085800+0000',
      'OBX|1|ST|85354-9^Blood pressure panel^LN||120/80|mm[Hg]^mmHg^UCUM|||||F',
      'OBX|2|NM|8480-6^Systolic blood pressure^LN||130|mm[Hg]^mmHg^UCUM|||||F',
      'OBX|3|NM|8462-4^Diastolic blood pressure^LN||80|mm[Hg]^mmHg^UCUM|||||F',
    );
    expect(r.code).toBe('AE');
    expect(r.errors.map(([at]) => at)).toEqual(['OBX^1^5^1', 'OBX^2^5^1']);
    expect(r.queued.map((m) => m.vitals)).toEqual([{ diastolicBP: 80 }]);
  });
});

describe('an oxygen device coded twice (OBX-5 CWE, its identifier and alternate identifier), 2026-12-05', () => {
  const deviceObx = (value: string) =>
    `OBX|20|CWE|oxygen-device^Oxygen delivery device^99CRS|1.9.1.1|${value}||||||F|||20260110080000+0000`;
  const oxygenOf = (value: string) => {
    const r = ok(`${PCD01}\r${deviceObx(value)}`);
    return { problems: r.problems, oxygen: r.translated.map((t) => t.message.oxygen).filter(Boolean) };
  };

  it('refuses two different devices (until then the alternate was never read: high flow graded as a nasal cannula)', () => {
    const r = oxygenOf('336623009^Oxygen nasal cannula^SCT^high_flow_nasal_cannula^High flow^99CRS');
    expect(r.oxygen).toEqual([]);
    expect(r.problems).toEqual([
      {
        at: { segment: 'OBX', sequence: 14, field: 5 },
        code: 102,
        text: expect.stringMatching(/names two different oxygen devices \(nasal_cannula, high_flow_nasal_cannula\)/),
      },
    ]);
  });

  it('refuses two different devices in two repetitions of OBX-5 (the second was never read)', () => {
    const r = oxygenOf('336623009^Oxygen nasal cannula^SCT~non_rebreather^^99CRS');
    expect([r.oxygen, r.problems.map((p) => [p.at.field, p.code])]).toEqual([[], [[5, 102]]]);
  });

  it('takes one device named in both, or in the alternate identifier alone', () => {
    expect(oxygenOf('336623009^Oxygen nasal cannula^SCT^nasal_cannula^^99CRS')).toEqual({
      problems: [],
      oxygen: [{ device: 'nasal_cannula' }],
    });
    expect(oxygenOf('NC^Nasal cannula^L^high_flow_nasal_cannula^^99CRS')).toEqual({
      problems: [],
      oxygen: [{ device: 'high_flow_nasal_cannula' }],
    });
  });
});

describe('the bounds of one message and the places an ERR names (2026-12-06), pinned by a mutation run', () => {
  const lines = PCD01.split('\r');
  const msh = lines[0]!;
  const nte = (text: string) => `NTE|1||${text}`;
  const delimitersOf = (s: string) => (s.match(/[|^~&]/g) ?? []).length;

  it('the bounds are the documented 1,000 segments and 40,000 delimiters (docs/interfaces.md)', () => {
    expect([HL7_MAX_SEGMENTS, HL7_MAX_DELIMITERS]).toEqual([1000, 40000]);
  });

  it('counts the subcomponent delimiter (&) and not the escape character (\\)', () => {
    const base = lines.join('\r');
    const ampersands = translatePcd01(`${base}\r${nte('&'.repeat(HL7_MAX_DELIMITERS - delimitersOf(base) - 2))}`);
    expect(ampersands).toMatchObject({ ok: false, tooLarge: true });
    // Escape sequences (\E\ is a backslash) are text within a field: 45,000 backslashes are no delimiters.
    expect(translatePcd01(`${base}\r${nte('\\E\\'.repeat(22_500))}`).ok).toBe(true);
  });

  it('an AR over the delimiters is addressed to the message when its MSH is within them, wherever the rest lies', () => {
    // The delimiters before the last segment: the MSH is still read alone, and named.
    const early = [msh, nte('~'.repeat(HL7_MAX_DELIMITERS)), ...lines.slice(1)].join('\r');
    expect(translatePcd01(early)).toMatchObject({ ok: false, tooLarge: true, header: { controlIdSent: 'MSG000123' } });
    // An MSH of exactly 40,000 delimiters is within them: read.
    const padding = '~'.repeat(HL7_MAX_DELIMITERS - delimitersOf(msh) - 1);
    const fullMsh = translatePcd01([`${msh}|${padding}`, ...lines.slice(1)].join('\r'));
    expect(fullMsh).toMatchObject({ ok: false, tooLarge: true, header: { controlIdSent: 'MSG000123' } });
    // A message of one segment over them: its MSH is not read, the AR addressed to no one.
    const alone = translatePcd01(`${msh}|${'~'.repeat(HL7_MAX_DELIMITERS)}`);
    expect(alone.ok || [alone.header, alone.problems.map((p) => p.code)]).toEqual([undefined, [207]]);
  });

  it('a message over both bounds is named by its segments', () => {
    const r = translatePcd01(
      [...lines, nte('~'.repeat(HL7_MAX_DELIMITERS)), ...Array.from({ length: HL7_MAX_SEGMENTS }, () => nte('x'))].join(
        '\r',
      ),
    );
    expect(r.problems.map((p) => p.text)).toEqual([
      `the message has ${lines.length + 1 + HL7_MAX_SEGMENTS} segments, more than 1000, the most taken`,
    ]);
  });

  it('a conflict of exactly five OBX names the five, with no "and 0 more"', () => {
    const rows = [14, 15, 16, 17].map(
      (n) =>
        `OBX|${n}|NM|150035^MDC_PRESS_BLD_ART_MEAN^MDC|1.3.1.3|${60 + n}|266016^MDC_DIM_MMHG^MDC|||||R|||20260110080000+0000`,
    );
    const r = ok(`${PCD01}\r${rows.join('\r')}`);
    expect(r.problems.find((p) => p.text.includes('different values'))?.text).toBe(
      'vitals.meanArterialPressure has different values at the same time (OBX 7, OBX 14, OBX 15, OBX 16, OBX 17); neither is used',
    );
  });

  it('places of one patient at one time in seven PID groups: each PV1 ERR names five of them and how many more', () => {
    const group = (ward: string) => [
      'PID|||P-1^^^HOSP^MR',
      `PV1||I|${ward}^^12`,
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110085800+0000',
      'OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.2.1.1|80|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||20260110085800+0000',
    ];
    const r = ok([msh, ...['H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'H7'].flatMap(group)].join('\r'));
    const texts = r.problems.filter((p) => p.at.segment === 'PV1').map((p) => p.text);
    expect(texts).toHaveLength(7);
    expect(new Set(texts)).toEqual(
      new Set([
        'enrolment: PV1-3 gives two different places at the same time (PV1 1, PV1 2, PV1 3, PV1 4, PV1 5 and 2 more); neither is used',
      ]),
    );
  });
});

describe('an ORU^R01 without its patient result (2026-12-06): refused, never AA "accepted 0"', () => {
  const send = async (body: string) => {
    const { queue, tokens, token } = await ingestFakes(NOW);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7' };
    const res = await handleHl7Http(
      { method: 'POST', path: '/v1/hl7v2', headers, body },
      { queue, tokens, now: () => NOW },
    );
    const segments = res.body.split('\r');
    const errs = segments.filter((s) => s.startsWith('ERR|')).map((s) => s.split('|').slice(2, 4).join(' '));
    return { status: res.status, ack: readAck(res.body), errs, taken: res.messageIds.length };
  };
  const lines = PCD01.split('\r');
  const [msh, pid, pv1, obr] = lines as [string, string, string, string];
  const obx = lines.filter((l) => l.startsWith('OBX|'));

  it('only an MSH, or segments joined by something other than CR or LF (one long MSH): AR 100, HTTP 400', async () => {
    for (const body of [
      msh,
      `${msh}\rNTE|1||a note\rZPD|1|vendor`,
      lines.join('\\r'),
      lines.join(' '),
      lines.join('\t'),
    ]) {
      const a = await send(body);
      expect([a.status, a.ack?.code, a.ack?.controlId, a.errs], body.slice(0, 140)).toEqual([
        400,
        'AR',
        'MSG000123',
        ['OBR^1 100^Segment sequence error^HL70357'],
      ]);
    }
  });

  it('a PID with no OBR or OBX after it: AE 100 at that PID, the other groups taken', async () => {
    for (const body of [[msh, pid].join('\r'), [msh, pid, pv1].join('\r')]) {
      const a = await send(body);
      expect([a.status, a.ack?.code, a.errs, a.taken]).toEqual([
        422,
        'AE',
        ['PID^1 100^Segment sequence error^HL70357'],
        0,
      ]);
    }
    const second = await send([...lines, 'PID|||P-0043^^^HOSP^MR', 'PV1||I|ICU4^^13'].join('\r'));
    expect([second.status, second.ack?.code, second.errs, second.taken]).toEqual([
      202,
      'AE',
      // PCD01's OBX 13 (a deleted result) keeps its warning.
      ['PID^2 100^Segment sequence error^HL70357', 'OBX^13^11^1 0^Message accepted^HL70357'],
      2,
    ]);
  });

  it('still taken: segments ended by LF or CR LF, an OBR with no OBX yet (AA, nothing to take), OBX with no OBR', async () => {
    for (const end of ['\n', '\r\n']) expect((await send(lines.join(end))).ack?.code).toBe('AA');
    const order = await send([msh, pid, pv1, obr].join('\r'));
    expect([order.status, order.ack?.code, order.ack?.text, order.errs]).toEqual([
      202,
      'AA',
      'accepted 0 message(s)',
      [],
    ]);
    const noObr = await send([msh, pid, pv1, ...obx].join('\r'));
    expect([noObr.ack?.code, noObr.taken]).toEqual(['AA', 2]);
  });

  // Pinned by a mutation run (2026-12-06): each of PID, OBR and OBX alone keeps a message from the AR, and a PID with
  // no result named before a whole group is named too, not passed over for the group after it.
  it('an OBR or an OBX with no PID is no AR; a PID with no result before a whole group is named, the group taken', async () => {
    const order = await send([msh, obr].join('\r'));
    expect([order.status, order.ack?.code, order.errs]).toEqual([202, 'AA', []]);
    const unnamed = await send([msh, ...obx].join('\r'));
    expect([unnamed.status, unnamed.ack?.code]).toEqual([422, 'AE']);
    expect(unnamed.errs.some((e) => e.startsWith('OBR^1 '))).toBe(false);
    const first = await send([msh, 'PID|||P-0043^^^HOSP^MR', ...lines.slice(1)].join('\r'));
    expect([first.status, first.ack?.code, first.errs, first.taken]).toEqual([
      202,
      'AE',
      ['PID^1 100^Segment sequence error^HL70357', 'OBX^13^11^1 0^Message accepted^HL70357'],
      2,
    ]);
  });
});

describe('the times and value types of an OBX, pinned by a mutation run of the clinical mapping (2026-12-06)', () => {
  const spo2At = (type: string, time: string) =>
    withLine(5, `OBX|2|${type}|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|93|262688^MDC_DIM_PERCENT^MDC|||||R|||${time}`);

  it('takes an OBX-14 offset of the widest zones, +1400 (Line Islands) and -1200, to the instant', () => {
    // Refused as "impossible" at +1400 (a bound off by one), a Kiribati monitor's readings were all lost.
    for (const [time, instant] of [
      ['20260110220000+1400', '2026-01-10T08:00:00Z'],
      ['20260109200000-1200', '2026-01-10T08:00:00Z'],
    ] as const) {
      const r = ok(spo2At('NM', time));
      expect(r.problems, time).toEqual([]);
      expect(
        r.translated.map((t) => t.message.observedAt),
        time,
      ).toContain(instant);
    }
  });

  it('reads a number with OBX-2 empty as NM (as many gateways send it), and refuses another type, naming OBX-2', () => {
    const empty = ok(spo2At('', '20260110080000+0000'));
    expect(empty.problems).toEqual([]);
    expect(empty.translated[0]!.message.vitals).toMatchObject({ spo2: 93 });
    expect(ok(spo2At('ST', '20260110080000+0000')).problems).toEqual([
      { at: { segment: 'OBX', sequence: 2, field: 2 }, code: 102, text: expect.stringMatching(/must be NM/) },
    ]);
  });
});

describe('an observation coded twice (OBX-3.1-3 and 3.4-6) naming two different fields, 2026-12-07', () => {
  const at = '|||||F|||20260110080200+0000';
  const taken = (obx: string) => ok(`${PCD01}\r${obx}`);

  it.each([
    [
      'a LOINC heart rate with the ICE score (99CRS) as the alternate',
      'OBX|20|NM|8867-4^Heart rate^LN^ice-score^ICE score^99CRS|1.9.1.1|4|/min^^UCUM',
      /^OBX-3 names two different fields: "8867-4\^\^LN" \(vitals\.heartRate\) and "ice-score\^\^99CRS" \(neuro\.iceScore\)/,
    ],
    [
      'a LOINC heart rate with the MDC SpO2 as the alternate',
      'OBX|20|NM|8867-4^Heart rate^LN^150456^MDC_PULS_OXIM_SAT_O2^MDC|1.9.1.1|88|%^^UCUM',
      /^OBX-3 names two different fields: "8867-4\^\^LN" \(vitals\.heartRate\) and "150456\^\^MDC" \(vitals\.spo2\)/,
    ],
  ])('refuses %s (AE 103 at OBX-3), never read by the first code; the rest of the message taken', (_, obx, text) => {
    // Until 2026-12-07 the identifier was read and the alternate never looked at: an ICE score of 4 (ICANS 2) was
    // graded as a heart rate of 4, with nothing said.
    const r = taken(`${obx}${at}`);
    expect(r.problems).toEqual([
      {
        at: { segment: 'OBX', sequence: 14, field: 3 },
        code: 103,
        text: expect.stringMatching(text),
      },
    ]);
    expect(r.translated.map((t) => t.message)).toEqual(ok(PCD01).translated.map((t) => t.message));
  });

  it('takes two codes of one field (LOINC and MDC of one vital, a local code beside), and a code of no interest beside a known one', () => {
    for (const [code, field, value, unit] of [
      ['8867-4^Heart rate^LN^147842^MDC_ECG_HEART_RATE^MDC', 'heartRate', 101, '/min'],
      ['150456^MDC_PULS_OXIM_SAT_O2^MDC^59408-5^SpO2^LN', 'spo2', 89, '%'],
      ['HR^Heart rate^L^8867-4^Heart rate^LN', 'heartRate', 101, '/min'],
      ['131841^MDC_ECG_AMPL_ST_II^MDC^8867-4^Heart rate^LN', 'heartRate', 101, '/min'],
    ] as const) {
      const r = taken(`OBX|20|NM|${code}|1.9.1.1|${value}|${unit}^^UCUM${at}`);
      expect(r.problems, code).toEqual([]);
      const later = r.translated.find((x) => String(x.message.observedAt).startsWith('2026-01-10T08:02'));
      expect([code, later?.message.vitals]).toEqual([code, { [field]: value }]);
    }
  });
});
