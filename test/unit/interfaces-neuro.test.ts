// ICANS inputs (the neuro fields) through HL7 v2 and FHIR R4, against the same clinical content as contract JSON: a
// value an interface cannot read as the contract would is refused or said, never graded as another, never dropped
// under an AA or a 202 without a word (docs/interfaces.md).
import { readFileSync } from 'node:fs';
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { translateResources } from '#app/fhir/translate.ts';
import { ingestHl7 } from '#app/hl7v2/ingest.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { CRS_CODES, UCUM } from '#app/interfaces/terminology.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { translateItem } from '#test/support/interfaces.ts';
import { MemoryQueue } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const T = '2026-01-10T08:00:00Z';

/** The ICANS grade of messages replayed in order (the last assessment's). */
function icansOf(messages: DeviceMessage[]): number | undefined {
  const replay = new Replay(DEFAULT_CONFIG);
  const events = messages.flatMap((m, i) => replay.line(JSON.stringify(m), i + 1));
  const last = events.filter((e) => e.type === 'assessment').at(-1) as { icansGrade: number } | undefined;
  return last?.icansGrade;
}

const json = (neuro: DeviceMessage['neuro']): DeviceMessage =>
  ({
    messageId: 'json-1',
    patientId: 'P-0042',
    observedAt: T,
    source: { deviceId: 'ehr-1', kind: 'manual' },
    neuro,
  }) as DeviceMessage;

const observation = (code: string, extra: Record<string, unknown>) => ({
  resourceType: 'Observation',
  id: `o-${code}`,
  status: 'final',
  code: { coding: [{ system: CRS_CODES, code }] },
  subject: { reference: 'Patient/P-0042' },
  effectiveDateTime: T,
  ...extra,
});
const bundle = (...resources: unknown[]): Bundle =>
  ({ resourceType: 'Bundle', type: 'batch', entry: resources.map((resource) => ({ resource })) }) as Bundle;

describe('ICANS inputs over FHIR', () => {
  it('refuses an ICE score sent as a bound (valueQuantity with a comparator): "< 7" is no ICE 7 (grade 1)', () => {
    // The JSON path cannot say "< 7"; the score it stands for is 6 or less, ICANS grade 2 or more.
    expect(icansOf([json({ iceScore: 7 })])).toBe(1);
    const r = translateItem(
      {
        format: 'fhir',
        bundle: bundle(observation('ice-score', { valueQuantity: { value: 7, comparator: '<' } })),
        from: 'x',
      },
      NOW,
    );
    expect(r.messages).toEqual([]);
    expect(r.problems).toEqual([expect.stringMatching(/valueQuantity\.comparator: .*bound, not a measurement/)]);
  });

  it('refuses an ICE score as a quantity with a unit (ICE is points, dimensionless: 1 or a {annotation})', () => {
    const unit = (code: string) =>
      translateItem(
        {
          format: 'fhir',
          bundle: bundle(observation('ice-score', { valueQuantity: { value: 7, system: UCUM, code } })),
          from: 'x',
        },
        NOW,
      );
    expect(unit('%').messages).toEqual([]);
    expect(unit('%').problems).toEqual([expect.stringMatching(/valueQuantity\.code: .*ICE score/)]);
    expect(unit('{score}').messages.map((m) => m.neuro)).toEqual([{ iceScore: 7 }]);
    expect(unit('1').messages.map((m) => m.neuro)).toEqual([{ iceScore: 7 }]);
    const text = translateItem(
      {
        format: 'fhir',
        bundle: bundle(observation('ice-score', { valueQuantity: { value: 7, unit: 'points' } })),
        from: 'x',
      },
      NOW,
    );
    expect(text.messages.map((m) => m.neuro)).toEqual([{ iceScore: 7 }]);
    // "points" is read as text only: as a coded unit it is no UCUM unit of 1; an annotation is one whole {...}.
    for (const code of ['points', '{score', 'x{score}'])
      expect(unit(code).problems, code).toEqual([expect.stringMatching(/valueQuantity\.code: .*ICE score/)]);
  });

  it.each([
    ['ice-score', { valueInteger: 3 }],
    ['icans-consciousness', { valueCodeableConcept: { coding: [{ system: CRS_CODES, code: 'alert' }] } }],
    ['icans-seizure', { valueCodeableConcept: { coding: [{ system: CRS_CODES, code: 'none' }] } }],
    ['icans-motor-weakness', { valueBoolean: false }],
    ['icans-cerebral-edema', { valueCodeableConcept: { coding: [{ system: CRS_CODES, code: 'none' }] } }],
    ['organ-toxicity-max-ctcae-grade', { valueInteger: 1 }],
    ['transaminitis-ctcae-grade', { valueInteger: 1 }],
  ])('says a component of %s is not read (its own value taken)', (code, value) => {
    const t = translateResources(
      [
        {
          resource: observation(code, {
            ...value,
            component: [{ code: { coding: [{ system: CRS_CODES, code: 'icans-seizure' }] }, valueInteger: 4 }],
          }),
          at: 'Bundle.entry[0].resource',
        },
      ],
      { deviceId: 'ehr-1' },
    );
    expect(t.translated).toHaveLength(1);
    expect(t.issues).toEqual([
      expect.objectContaining({ expression: 'Bundle.entry[0].resource.component[0].code', severity: 'warning' }),
    ]);
  });

  it('says when a neuro Observation carries components: a seizure charted as a component of the ICE score is not read', () => {
    const t = translateResources(
      [
        {
          resource: observation('ice-score', {
            valueInteger: 3,
            component: [
              {
                code: { coding: [{ system: CRS_CODES, code: 'icans-seizure' }] },
                valueCodeableConcept: { coding: [{ system: CRS_CODES, code: 'prolonged' }] },
              },
            ],
          }),
          at: 'Bundle.entry[0].resource',
        },
      ],
      { deviceId: 'ehr-1' },
    );
    // ICE 3 is taken (grade 2); the prolonged seizure (grade 4) is not, and the sender is told so.
    expect(t.translated.map((x) => x.message.neuro)).toEqual([{ iceScore: 3 }]);
    expect(t.issues).toEqual([
      expect.objectContaining({
        expression: 'Bundle.entry[0].resource.component[0].code',
        severity: 'warning',
        text: expect.stringMatching(/ignored: .*not taken/),
      }),
    ]);
  });
});

describe('ICANS inputs over HL7 v2', () => {
  const oru = (...obx: string[]) =>
    [
      'MSH|^~\\&|GW|FAC|||20260110080000+0000||ORU^R01|C1|P|2.6',
      'PID|||P-0042^^^^MR',
      'OBR|1|||x|||20260110080000+0000',
      'OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||88|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F',
      ...obx,
    ].join('\r');
  const hl7 = (...obx: string[]) => translateItem({ format: 'hl7v2', text: oru(...obx), from: 'x' }, NOW);
  /** The sections other than the vitals of what was read. */
  const charted = (r: { messages: DeviceMessage[] }) =>
    r.messages.flatMap((m) => {
      const { messageId: _id, patientId: _p, observedAt: _t, source: _s, vitals: _v, ...rest } = m;
      return Object.keys(rest).length > 0 ? [rest] : [];
    });
  const DEVICE = 'OBX|3|CWE|oxygen-device^^99CRS||nasal_cannula^^99CRS||||||F';

  it.each([
    ['OBX|2|NM|ice-score^ICE^99CRS||2||||||F', { neuro: { iceScore: 2 } }],
    ['OBX|2|NM|ice-score^ICE^99crs||2.0|{score}^^UCUM|||||F', { neuro: { iceScore: 2 } }],
    ['OBX|2||^^^ice-score^^99CRS||10|points|||||F', { neuro: { iceScore: 10 } }],
    ['OBX|2|CWE|icans-consciousness^^99CRS||unarousable^^99CRS||||||F', { neuro: { consciousness: 'unarousable' } }],
    ['OBX|2|CE|icans-consciousness^^99CRS||awakens_to_voice||||||F', { neuro: { consciousness: 'awakens_to_voice' } }],
    ['OBX|2|CWE|icans-seizure^^99CRS||prolonged^^99CRS||||||F', { neuro: { seizure: 'prolonged' } }],
    ['OBX|2|ST|icans-seizure^^99CRS||self_limited||||||F', { neuro: { seizure: 'self_limited' } }],
    ['OBX|2|CWE|^^^icans-motor-weakness^^99CRS||Y^^HL70136||||||F', { neuro: { motorWeakness: true } }],
    ['OBX|2|CWE|icans-motor-weakness^^99CRS||false^^99CRS||||||F', { neuro: { motorWeakness: false } }],
    ['OBX|2|CWE|icans-cerebral-edema^^99CRS||diffuse^^99CRS||||||F', { neuro: { cerebralEdema: 'diffuse' } }],
    ['OBX|2|NM|organ-toxicity-max-ctcae-grade^^99CRS||3||||||F', { organToxicity: { maxCtcaeGrade: 3 } }],
    ['OBX|2|NM|transaminitis-ctcae-grade^^99CRS||0||||||F', { organToxicity: { transaminitisGrade: 0 } }],
    // The value's alternate identifier (OBX-5.4-6) alone, and its system in lower case, as OBX-3 is read.
    ['OBX|2|CWE|icans-consciousness^^99CRS||^^^unarousable^^99CRS||||||F', { neuro: { consciousness: 'unarousable' } }],
    ['OBX|2|CWE|icans-seizure^^99CRS||prolonged^^99crs||||||F', { neuro: { seizure: 'prolonged' } }],
  ])('reads %s into the contract field, as FHIR reads the same code', (obx, want) => {
    const r = hl7(obx);
    expect(r.problems).toEqual([]);
    expect(charted(r)).toEqual([want]);
  });

  it('charts the ICANS domains as FHIR does (source.kind manual), organ toxicity as the EHR: apart from the vitals', () => {
    const r = hl7(
      'OBX|2|NM|ice-score^ICE^99CRS||2||||||F',
      'OBX|3|CWE|icans-seizure^^99CRS||none^^99CRS||||||F',
      'OBX|4|NM|organ-toxicity-max-ctcae-grade^^99CRS||1||||||F',
    );
    expect(r.problems).toEqual([]);
    expect(r.messages.map((m) => [m.source.kind, m.vitals, m.neuro, m.organToxicity])).toEqual([
      ['monitor', { heartRate: 88 }, undefined, undefined],
      ['manual', undefined, { iceScore: 2, seizure: 'none' }, undefined],
      ['ehr', undefined, undefined, { maxCtcaeGrade: 1 }],
    ]);
    expect(new Set(r.messages.map((m) => m.messageId)).size).toBe(3);
    // The same content charted as JSON and as FHIR grades ICANS 3 (ICE 2).
    expect(icansOf(r.messages)).toBe(3);
  });

  it('reads oxygen for comfort with the oxygen device of the same time (Y/N of table 0136, or true/false)', () => {
    expect(charted(hl7(DEVICE, 'OBX|4|CWE|oxygen-for-comfort^^99CRS||Y^^HL70136||||||F'))).toEqual([
      { oxygen: { device: 'nasal_cannula', forComfort: true } },
    ]);
    expect(charted(hl7(DEVICE, 'OBX|4|CWE|oxygen-for-comfort^^99CRS||false||||||F'))).toEqual([
      { oxygen: { device: 'nasal_cannula', forComfort: false } },
    ]);
    // Without the device, as FiO2 and flow: never guessed.
    const alone = hl7('OBX|2|CWE|oxygen-for-comfort^^99CRS||Y^^HL70136||||||F');
    expect(charted(alone)).toEqual([]);
    expect(alone.problems).toEqual([expect.stringContaining('oxygen.forComfort needs the oxygen device')]);
  });

  it.each([
    ['OBX|2|NM|ice-score^ICE^99CRS||2.5||||||F', /neuro\.iceScore: 2\.5 is not a whole number/],
    ['OBX|2|NM|ice-score^ICE^99CRS||11||||||F', /neuro\.iceScore: 11 is outside 0-10/],
    ['OBX|2|NM|organ-toxicity-max-ctcae-grade^^99CRS||2.5||||||F', /organToxicity\.maxCtcaeGrade: 2\.5 is not a whole/],
    ['OBX|2|NM|transaminitis-ctcae-grade^^99CRS||5||||||F', /organToxicity\.transaminitisGrade: 5 is outside 0-4/],
    ['OBX|2|NM|ice-score^ICE^99CRS||seven||||||F', /OBX-5 "seven" is not a number/],
    ['OBX|2|NM|ice-score^ICE^99CRS||7|%^^UCUM|||||F', /neuro\.iceScore.*unit "%"/],
    ['OBX|2|SN|ice-score^ICE^99CRS||<^7||||||F', /OBX-2 value type "SN".*neuro\.iceScore/],
    [
      'OBX|2|CWE|icans-seizure^^99CRS||status^^99CRS||||||F',
      /neuro\.seizure: "status" is not one of none, self_limited, prolonged/,
    ],
    ['OBX|2|CWE|icans-seizure^^99CRS||91175000^Seizure^SCT||||||F', /neuro\.seizure: .*SCT.* 99CRS/],
    [
      'OBX|2|CWE|icans-cerebral-edema^^99CRS||Diffuse||||||F',
      /neuro\.cerebralEdema: "Diffuse" is not one of none, focal, diffuse/,
    ],
    ['OBX|2|CWE|icans-motor-weakness^^99CRS||maybe||||||F', /neuro\.motorWeakness: "maybe" is not Y or N/],
    ['OBX|2|NM|icans-consciousness^^99CRS||3||||||F', /OBX-2 value type "NM".*neuro\.consciousness/],
    ['OBX|2|CWE|icans-seizure^^99CRS||||||||F', /OBX-5 is empty: no value for neuro\.seizure/],
    // Two repetitions that differ: neither (the first was not taken for the sender's meaning).
    ['OBX|2|CWE|icans-motor-weakness^^99CRS||Y^^HL70136~N^^HL70136||||||F', /motorWeakness: .*two different values/],
    // Points are the ICE score's, as text: not a UCUM code, not an organ toxicity grade's unit.
    ['OBX|2|NM|ice-score^ICE^99CRS||7|points^^UCUM|||||F', /neuro\.iceScore: OBX-6 unit "points"/],
    ['OBX|2|NM|organ-toxicity-max-ctcae-grade^^99CRS||2|points|||||F', /maxCtcaeGrade: OBX-6 unit "points"/],
  ])('refuses %s naming the field, the rest of the message taken', (obx, problem) => {
    const r = hl7(obx);
    expect(r.messages.map((m) => m.vitals)).toEqual([{ heartRate: 88 }]);
    expect(charted(r)).toEqual([]);
    expect(r.problems).toEqual([expect.stringMatching(problem)]);
  });

  it.each([
    ['OBX|2|CWE|icans-consciousness^^99CRS||^unarousable||||||F', 'OBX-5.2', 'unarousable'],
    ['OBX|2|ST|icans-seizure^^99CRS||^prolonged||||||F', 'OBX-5.2', 'prolonged'],
    ['OBX|2|CWE|icans-cerebral-edema^^99CRS||^^^^focal||||||F', 'OBX-5.5', 'focal'],
  ])('refuses %s (a text, no code) saying the code is missing, not that OBX-5 is empty', (obx, where, word) => {
    // The reader takes the code (OBX-5.1 or 5.4), never the text: a text is not the contract's word.
    const r = hl7(obx);
    expect(charted(r)).toEqual([]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).not.toMatch(/empty/);
    expect(r.problems[0]).toContain(
      `no code in OBX-5.1 (or 5.4); the text in ${where} (${JSON.stringify(word)}) is not read`,
    );
    expect(r.problems[0]).toContain(`${word}^^99CRS`);
    const out = translatePcd01(oru(obx));
    expect(out.ok && out.problems.map((p) => [p.at.field, p.code])).toEqual([[5, 101]]);
  });

  it.each([['', 'score', 'points', 'Points', '{score}', '1'].flatMap((u) => [u, `^${u}`, `${u}^${u}`])].flat())(
    'takes an ICE score with OBX-6 %j: no unit, 1, an annotation or points, in OBX-6.1 or 6.2 alike',
    (unit) => {
      const r = hl7(`OBX|2|NM|ice-score^ICE^99CRS||7|${unit}|||||F`);
      expect(r.problems).toEqual([]);
      expect(charted(r)).toEqual([{ neuro: { iceScore: 7 } }]);
    },
  );

  it.each([
    ['%^^UCUM', /neuro\.iceScore: OBX-6 unit "%"/],
    ['^%', /neuro\.iceScore: OBX-6\.2 unit text "%"/],
    ['{score}^mmHg', /neuro\.iceScore: OBX-6\.2 unit text "mmHg"/],
    ['1^/min', /neuro\.iceScore: OBX-6\.2 unit text "\/min"/],
    ['points^^UCUM', /neuro\.iceScore: OBX-6 unit "points"/],
    ['{score', /neuro\.iceScore: OBX-6 unit "\{score"/],
  ])('refuses an ICE score with OBX-6 %s naming OBX-6', (unit, problem) => {
    const r = hl7(`OBX|2|NM|ice-score^ICE^99CRS||7|${unit}|||||F`);
    expect(charted(r)).toEqual([]);
    expect(r.problems).toEqual([expect.stringMatching(problem)]);
  });

  it('takes an organ toxicity grade with no unit in OBX-6.1 or 6.2 alike, never points', () => {
    const grade = (unit: string) => hl7(`OBX|2|NM|organ-toxicity-max-ctcae-grade^^99CRS||2|${unit}|||||F`);
    for (const unit of ['', '1', '^1', '{grade}', '^{grade}'])
      expect(charted(grade(unit)), unit).toEqual([{ organToxicity: { maxCtcaeGrade: 2 } }]);
    for (const unit of ['points', '^points', '^score'])
      expect(grade(unit).problems, unit).toEqual([expect.stringMatching(/maxCtcaeGrade: OBX-6(\.2)? unit/)]);
  });

  it('answers AE with code 103 for a value out of the vocabulary and 102 for a score not whole (never rounded)', async () => {
    const codes = (obx: string) => {
      const r = translatePcd01(oru(obx));
      return r.ok ? r.problems.map((p) => [p.at.field, p.code]) : [];
    };
    expect(codes('OBX|2|CWE|icans-seizure^^99CRS||status^^99CRS||||||F')).toEqual([[5, 103]]);
    const queue = new MemoryQueue();
    const a = await ingestHl7(
      oru('OBX|2|NM|ice-score^ICE^99CRS||2.5||||||F'),
      { deviceId: 'gw', role: 'ehr' },
      { queue, now: () => NOW },
    );
    expect([a.code, a.status, a.messageIds.length]).toEqual(['AE', 202, 1]);
    expect(a.problems).toEqual([
      { at: expect.objectContaining({ segment: 'OBX', sequence: 2, field: 5 }), code: 102, text: expect.any(String) },
    ]);
  });

  it('takes no place (PV1-3) with charted rows: an enrolment from the EHR would re-admit a patient', () => {
    const r = translatePcd01(oru('PV1||I|W1^^B2', 'OBX|2|NM|ice-score^ICE^99CRS||2||||||F'));
    const charted = r.ok ? r.translated.filter((t) => (t.message.source as { kind: string }).kind === 'manual') : [];
    expect(charted.map((t) => [t.message.neuro, t.message.enrolment])).toEqual([[{ iceScore: 2 }, undefined]]);
  });

  it('refuses a section on a monitor token at each of its OBX, not at the first alone', async () => {
    const text = oru('OBX|2|NM|ice-score^ICE^99CRS||2||||||F', 'OBX|3|CWE|icans-seizure^^99CRS||none||||||F');
    const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue: new MemoryQueue(), now: () => NOW });
    const at = a.problems.filter((p) => p.code === 207 && p.at.segment === 'OBX').map((p) => p.at.sequence);
    expect(at).toEqual([2, 3]);
  });

  it('refuses two different values of one field at one time (neither used), takes the same value twice', () => {
    const two = hl7('OBX|2|NM|ice-score^ICE^99CRS||2||||||F', 'OBX|3|NM|ice-score^ICE^99CRS||8||||||F');
    expect(charted(two)).toEqual([]);
    expect(two.problems).toEqual([
      expect.stringContaining('neuro.iceScore has different values'),
      expect.stringContaining('neuro.iceScore has different values'),
    ]);
    const same = hl7('OBX|2|NM|ice-score^ICE^99CRS||2||||||F', 'OBX|3|NM|ice-score^ICE^99CRS||2||||||F');
    expect(same.problems).toEqual([]);
    expect(charted(same)).toEqual([{ neuro: { iceScore: 2 } }]);
  });

  it('takes an ICE score on an EHR token and AA; refuses it on a monitor token (not its section), vitals kept', async () => {
    const text = oru('OBX|2|NM|ice-score^ICE^99CRS||2||||||F');
    const ehr = await ingestHl7(text, { deviceId: 'gw', role: 'ehr' }, { queue: new MemoryQueue(), now: () => NOW });
    expect([ehr.code, ehr.status, ehr.messageIds.length]).toEqual(['AA', 202, 2]);
    const monitor = await ingestHl7(
      text,
      { deviceId: 'gw', role: 'monitor' },
      { queue: new MemoryQueue(), now: () => NOW },
    );
    expect([monitor.code, monitor.status, monitor.messageIds.length]).toEqual(['AE', 202, 1]);
    expect(monitor.problems.map((p) => p.code)).toContain(207);
    expect(monitor.problems.map((p) => p.text).join('\n')).toMatch(/neuro/);
  });

  it('reads the example ORU of docs/interfaces.md: ICE 2, a prolonged seizure (ICANS 4) and oxygen for comfort', () => {
    const docs = readFileSync(new URL('../../docs/interfaces.md', import.meta.url), 'utf8');
    const example = docs.match(/An ICE score of 2 \(ICANS 3[^`]*```text\n([^`]*)```/)?.[1];
    expect(example).toBeDefined();
    const r = translateItem(
      { format: 'hl7v2', text: example!.trim().split('\n').join('\r'), from: 'docs' },
      Date.parse('2026-12-07T08:00:00Z'),
    );
    expect(r.problems).toEqual([]);
    expect(charted(r)).toEqual([
      { neuro: { iceScore: 2, seizure: 'prolonged' } },
      { oxygen: { device: 'nasal_cannula', flowLpm: 2, forComfort: true } },
    ]);
    expect(icansOf(r.messages)).toBe(4);
  });

  it('skips such a code with no result (OBX-11 X) or in another coding system, as any code it does not grade', () => {
    for (const obx of [
      'OBX|2|NM|ice-score^ICE^99CRS||||||||X',
      'OBX|2|NM|ice-score^ICE^99CRS||2||||||D',
      'OBX|2|NM|ice-score^ICE^L||2||||||F',
      'OBX|2|CWE|icans-seizure^^LN||prolonged^^99CRS||||||F',
    ]) {
      const r = translateItem({ format: 'hl7v2', text: oru(obx), from: 'x' }, NOW);
      expect(r.problems, obx).toEqual([]);
      expect(
        r.messages.map((m) => m.vitals),
        obx,
      ).toEqual([{ heartRate: 88 }]);
      expect(charted(r), obx).toEqual([]);
    }
  });
});
