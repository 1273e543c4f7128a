// The times of a JSON device message (docs/contract.md, "Times"): an instant is the same instant in any offset a zone
// can have, and an offset no zone has is refused naming the field, as HL7 v2's DTM and FHIR's dateTime refuse it
// (test/unit/hl7v2.test.ts, fhir.test.ts). Until 2026-12-07 the contract took any offset up to 23:59: a reading
// sent "+18:00" (a gateway's typo for +08:00) was graded 10 hours before it was taken, out of the windows, unsaid.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { EscalatingReplay } from '#app/replay-escalations.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { deviceMessageJsonSchema, validateMessage } from '#domain/contract.ts';
import { parseTimeWithOffset } from '#domain/typed-time.ts';

const reading = (observedAt: string, extra: Record<string, unknown> = {}) => ({
  messageId: `m-${observedAt}`,
  patientId: 'P-1',
  observedAt,
  source: { deviceId: 'mon-1', kind: 'monitor' },
  vitals: { temperatureC: 39.1, heartRate: 112 },
  ...extra,
});
const errorsOf = (value: unknown) => {
  const v = validateMessage(value);
  return v.ok ? [] : v.errors;
};

describe('a contract time with an offset no zone has', () => {
  it('is refused naming the field, the value and the widest offset, in observedAt and enrolment.infusedAt', () => {
    for (const when of [
      '2026-01-10T08:00:00+18:00',
      '2026-01-10T08:00:00+14:30',
      '2026-01-10T08:00:00-14:01',
      '2026-01-10T08:00:00-23:59',
    ]) {
      expect(errorsOf(reading(when))).toEqual([
        `observedAt: "${when}" has an impossible UTC offset (${when.slice(-6)}): no zone is more than 14 hours from UTC; check the sender's time zone setting`,
      ]);
      const enrolment = { enrolment: { therapy: 'car-t', infusedAt: when } };
      expect(errorsOf(reading('2026-01-10T08:00:00Z', enrolment))).toEqual([
        `enrolment.infusedAt: "${when}" has an impossible UTC offset (${when.slice(-6)}): no zone is more than 14 hours from UTC; check the sender's time zone setting`,
      ]);
    }
  });

  it('takes the widest offsets zones have (+14:00, Kiribati; -12:00) and -00:00', () => {
    for (const when of ['2026-01-10T08:00:00+14:00', '2026-01-10T08:00:00-12:00', '2026-01-10T08:00:00-00:00'])
      expect(errorsOf(reading(when))).toEqual([]);
  });

  it('is refused by the published JSON Schema too, which keeps the date-time format (it took any offset to 23:59)', () => {
    const schema = deviceMessageJsonSchema() as { properties: Record<string, { format?: string }> };
    expect(schema.properties.observedAt?.format).toBe('date-time');
    const validate = new Ajv2020({ strict: false, formats: { 'date-time': true } }).compile(schema);
    for (const when of [
      '2026-01-10T08:00:00+18:00',
      '2026-01-10T08:00:00+14:01',
      '2026-01-10T08:00:00-14:30',
      '2026-01-10T08:00:00+14:00',
      '2026-01-10T08:00:00-12:00',
      '2026-01-10T08:00:00+05:45',
      '2026-01-10T08:00:00.123Z',
    ]) {
      const m = reading(when);
      expect(validate(m), when).toBe(errorsOf(m).length === 0);
    }
  });

  it('is refused by crs replay, its control lines and the times typed to a command, never graded hours away', async () => {
    const replay = new Replay(DEFAULT_CONFIG);
    expect(replay.line(JSON.stringify(reading('2026-01-10T08:00:00+18:00')), 1)).toEqual([
      {
        type: 'rejected',
        line: 1,
        errors: [expect.stringMatching(/^observedAt: .* has an impossible UTC offset \(\+18:00\)/)],
      },
    ]);
    const escalating = new EscalatingReplay(DEFAULT_CONFIG);
    expect(await escalating.line(JSON.stringify({ type: 'advance', to: '2026-01-10T08:00:00-18:00' }), 1)).toEqual([
      { type: 'control-refused', line: 1, error: expect.stringMatching(/^to: .*impossible UTC offset \(-18:00\)/) },
    ]);
    expect(parseTimeWithOffset('2026-01-10T08:00:00+14:30')).toBeNaN();
    expect(parseTimeWithOffset('2026-01-10T08:00:00-14:00')).toBe(Date.parse('2026-01-10T22:00:00Z'));
    expect(parseTimeWithOffset('2026-01-10T08:00:00+14:00')).toBe(Date.parse('2026-01-09T18:00:00Z'));
  });

  it('a text that is no time at all is named once, not also for its offset (each path stops at the first error)', async () => {
    const when = '2026-02-30T08:00:00+18:00';
    expect(errorsOf(reading(when))).toEqual([
      `observedAt: "${when}" is not an RFC 3339 timestamp with a zone offset (e.g. 2026-11-26T10:00:00Z)`,
    ]);
    const escalating = new EscalatingReplay(DEFAULT_CONFIG);
    const [refused] = await escalating.line(JSON.stringify({ type: 'advance', to: when }), 1);
    expect(refused).toMatchObject({ type: 'control-refused', line: 1 });
    expect((refused as { error: string }).error).not.toMatch(/impossible UTC offset|;/);
  });
});

describe('one instant in any offset', () => {
  it('grades alike: the same grade, reasons and times, whatever the offset or the digits of the fraction', () => {
    const spellings = [
      '2026-01-10T08:00:00.120Z',
      '2026-01-10T13:30:00.12+05:30',
      '2026-01-10T05:00:00.120999999-03:00',
      '2026-01-09T22:00:00.1200-10:00',
    ];
    const graded = spellings.map((when) => {
      const replay = new Replay(DEFAULT_CONFIG);
      const enrol = {
        messageId: 'e-1',
        patientId: 'P-1',
        observedAt: '2026-01-09T08:00:00Z',
        source: { deviceId: 'ehr-1', kind: 'ehr' },
        enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T09:00:00Z', weightKg: 70 },
      };
      replay.line(JSON.stringify(enrol), 1);
      return replay
        .line(JSON.stringify({ ...reading(when), messageId: 'm-1' }), 2)
        .map((e) => ('reasons' in e ? { type: e.type, at: 'at' in e ? e.at : null, reasons: e.reasons } : e));
    });
    expect(graded[0]).toContainEqual(expect.objectContaining({ type: 'notification', at: '2026-01-10T08:00:00.120Z' }));
    for (const g of graded.slice(1)) expect(g).toEqual(graded[0]);
  });
});

// RFC 3339 (section 5.6) writes a leap second (23:59:60) and lets `t` and `z` be lower case; the contract's times are
// ISO 8601's upper-case form with seconds 00-59 (docs/contract.md "Times", the JSON Schema's pattern). Such a time is
// refused as before, and since 2026-12-07 the error names what is wrong and what to send: it said the time was "not
// an RFC 3339 timestamp with a zone offset", which is false, and left the sender to find the difference.
describe('an RFC 3339 time the contract does not take', () => {
  it('is refused naming the leap second, or the lower-case t or z, with the time to send', () => {
    for (const [when, error] of [
      [
        '2026-12-31T23:59:60Z',
        'has a leap second (:60), which the contract does not take: send 2026-12-31T23:59:59.999Z',
      ],
      [
        '2027-01-01T00:59:60.25+01:00',
        'has a leap second (:60), which the contract does not take: send 2027-01-01T00:59:59.999+01:00',
      ],
      ['2026-12-31t23:59:59z', 'writes t or z in lower case: write T and Z in upper case, 2026-12-31T23:59:59Z'],
      ['2026-12-31T08:00:00z', 'writes t or z in lower case: write T and Z in upper case, 2026-12-31T08:00:00Z'],
      [
        '2026-12-31t08:00:00+01:00',
        'writes t or z in lower case: write T and Z in upper case, 2026-12-31T08:00:00+01:00',
      ],
      [
        '2026-12-31 08:00:00Z',
        'separates the date and the time with a space: write T between them, 2026-12-31T08:00:00Z',
      ],
      [
        '2026-12-31 23:59:60Z',
        'has a leap second (:60), which the contract does not take, and separates the date and the time with a space: send 2026-12-31T23:59:59.999Z',
      ],
      [
        '2026-12-31t23:59:60z',
        'has a leap second (:60), which the contract does not take, and writes t or z in lower case: send 2026-12-31T23:59:59.999Z',
      ],
    ]) {
      expect(errorsOf({ ...reading(when!), messageId: 'm-1' })).toEqual([`observedAt: "${when}" ${error}`]);
      const enrolment = { enrolment: { therapy: 'car-t', infusedAt: when } };
      expect(errorsOf(reading('2026-12-31T08:00:00Z', enrolment))).toEqual([`enrolment.infusedAt: "${when}" ${error}`]);
    }
  });

  it('with an offset no zone has too names both, and sends no time the contract refuses (it said "send ...+18:00")', () => {
    const offset = "no zone is more than 14 hours from UTC; check the sender's time zone setting";
    for (const [when, error] of [
      [
        '2026-12-31T23:59:60+18:00',
        `has a leap second (:60), which the contract does not take, and has an impossible UTC offset (+18:00): ${offset}`,
      ],
      [
        '2026-12-31t08:00:00+18:00',
        `writes t or z in lower case, and has an impossible UTC offset (+18:00): ${offset}`,
      ],
      [
        '2026-12-31 08:00:00-15:00',
        `separates the date and the time with a space, and has an impossible UTC offset (-15:00): ${offset}`,
      ],
    ])
      expect(errorsOf({ ...reading(when!), messageId: 'm-1' })).toEqual([`observedAt: "${when}" ${error}`]);
  });

  it('that is no time at all is still "not an RFC 3339 timestamp": a leap second in a day that does not exist too', () => {
    for (const when of ['2026-12-31T24:00:00Z', '2026-02-30T23:59:60Z', '2026-12-31t23:59:59', 'yesterday'])
      expect(errorsOf(reading(when))).toEqual([
        `observedAt: "${when}" is not an RFC 3339 timestamp with a zone offset (e.g. 2026-11-26T10:00:00Z)`,
      ]);
  });
});
