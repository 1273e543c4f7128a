// ICANS inputs (the neuro fields) through HL7 v2 and FHIR R4, against the same clinical content as contract JSON: a
// value an interface cannot read as the contract would is refused or said, never graded as another, never dropped
// under an AA or a 202 without a word (docs/interfaces.md).
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

  it.each([
    ['neuro.iceScore', 'OBX|2|NM|ice-score^ICE^99CRS||2||||||F'],
    ['neuro.consciousness', 'OBX|2|CWE|icans-consciousness^^99CRS||unarousable^^99CRS||||||F'],
    ['neuro.seizure', 'OBX|2|CWE|icans-seizure^^99CRS||prolonged^^99CRS||||||F'],
    ['neuro.motorWeakness', 'OBX|2|CWE|^^^icans-motor-weakness^^99CRS||Y^^HL70136||||||F'],
    ['neuro.cerebralEdema', 'OBX|2|CWE|icans-cerebral-edema^^99CRS||diffuse^^99CRS||||||F'],
    ['oxygen.forComfort', 'OBX|2|CWE|oxygen-for-comfort^^99CRS||Y^^HL70136||||||F'],
    ['organToxicity.maxCtcaeGrade', 'OBX|2|NM|organ-toxicity-max-ctcae-grade^^99CRS||3||||||F'],
    ['organToxicity.transaminitisGrade', 'OBX|2|NM|transaminitis-ctcae-grade^^99CRS||3||||||F'],
    ['neuro.iceScore', 'OBX|2|NM|ice-score^ICE^99crs||2||||||F'],
  ])('refuses %s (the project code in 99CRS), naming it, never an AA that drops it', (field, obx) => {
    // The same content as JSON grades ICANS 3 or 4; over HL7 v2 it was answered AA with the heart rate alone.
    const r = translateItem({ format: 'hl7v2', text: oru(obx), from: 'x' }, NOW);
    expect(r.messages.map((m) => Object.keys(m).filter((k) => k === 'vitals' || k === 'neuro'))).toEqual([['vitals']]);
    expect(r.problems).toEqual([expect.stringContaining(`${field} is not read over HL7 v2`)]);
  });

  it('refuses it as AE 103 at OBX-3, the rest of the message taken (never an AR)', async () => {
    const text = oru('OBX|2|NM|ice-score^ICE^99CRS||2||||||F');
    const r = translatePcd01(text);
    expect(r.ok && r.problems).toEqual([
      { at: expect.objectContaining({ segment: 'OBX', field: 3 }), code: 103, text: expect.any(String) },
    ]);
    const queue = new MemoryQueue();
    const a = await ingestHl7(text, { deviceId: 'gw', role: 'monitor' }, { queue, now: () => NOW });
    expect([a.code, a.status, a.messageIds.length]).toEqual(['AE', 202, 1]);
  });

  it('skips such a code with no result (OBX-11 X) or in another coding system, as any code it does not grade', () => {
    for (const obx of [
      'OBX|2|NM|ice-score^ICE^99CRS||||||||X',
      'OBX|2|NM|ice-score^ICE^L||2||||||F',
      'OBX|2|CWE|icans-seizure^^LN||prolonged^^99CRS||||||F',
    ]) {
      const r = translateItem({ format: 'hl7v2', text: oru(obx), from: 'x' }, NOW);
      expect(r.problems, obx).toEqual([]);
      expect(
        r.messages.map((m) => m.vitals),
        obx,
      ).toEqual([{ heartRate: 88 }]);
    }
  });
});
