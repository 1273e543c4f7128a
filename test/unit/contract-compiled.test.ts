// validateMessage's fast path (z.compile of the contract's schema, contract.ts): it must take exactly what the
// schema's own parser takes and give exactly its output, byte for byte (the content digest is of that JSON). A
// refusal is always the schema's own parser's (z.compile hands every input its fast path refuses to it).
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceMessage, deviceMessageJsonSchema, validateMessage } from '#domain/contract.ts';
import * as z from '#domain/zod.ts';
import { timeline } from '#test/support/arbitraries.ts';
import '#test/support/fast-check-seed.ts';

const compiled = z.compile(DeviceMessage);

/** Both parsers' answers to one input, as comparable JSON (a refusal by its issues' paths and messages). */
function answers(input: unknown): { runtime: string; compiled: string } {
  const show = (r: ReturnType<typeof DeviceMessage.safeParse>) =>
    r.success
      ? `ok ${JSON.stringify(r.data)}`
      : `refused ${JSON.stringify(r.error.issues.map((i) => [i.path, i.message]))}`;
  return { runtime: show(DeviceMessage.safeParse(input)), compiled: show(compiled.safeParse(input)) };
}

const SECTIONS = ['enrolment', 'vitals', 'oxygen', 'vasopressors', 'medications', 'neuro', 'organToxicity', 'labs'];
const KEYS = [
  'messageId',
  'patientId',
  'observedAt',
  'source',
  'monitoringEnd',
  'reason',
  'deviceId',
  'kind',
  'temperatureC',
  'heartRate',
  'systolicBP',
  'meanArterialPressure',
  'spo2',
  'device',
  'flowLpm',
  'fio2',
  'forComfort',
  'iceScore',
  'consciousness',
  'motorWeakness',
  'maxCtcaeGrade',
  'crpMgL',
  'bed',
  'ward',
  'product',
  'infusedAt',
  'hypotension',
  'systolicBelow',
  'drug',
  'dose',
  'unit',
  'doseMg',
  'extra',
  '__proto__',
  ...SECTIONS,
];
/** Values at and beyond the contract's edges: ranges, whole numbers, labels, ids, timestamps, lists. */
const EDGE = fc.constantFrom<unknown>(
  0,
  -0,
  -1,
  0.5,
  4,
  4.5,
  10,
  10.5,
  25,
  45,
  45.01,
  100,
  101,
  300,
  301,
  400,
  1e308,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  true,
  '',
  ' ',
  'x',
  '37.5',
  'a'.repeat(32),
  'a'.repeat(33),
  'a'.repeat(65),
  'a\u200db',
  '\u0645\u200c\u0627',
  'S\uFFFDd',
  '\ud800',
  'a\u2028b',
  'a\nb',
  'id with space',
  '2026-11-26T10:00:00Z',
  '2026-11-26T10:00:00+00:00',
  '2026-11-26T10:00:00',
  '2026-13-40T00:00:00Z',
  '2026-11-26T10:00:00.123456Z',
  'room_air',
  'nasal_cannula',
  'norepinephrine',
  'mcg/kg/min',
  'tocilizumab',
  'alert',
  'monitor',
  'discharge',
  [],
  {},
  [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
  { systolicBelow: 90 },
  { device: 'room_air' },
);
const VALUE = fc.oneof(EDGE, fc.jsonValue({ maxDepth: 2 }));

/** A valid message with a few of its fields (at the top, in a section, in a list entry) set to other values. */
const edited = fc
  .tuple(
    timeline('P1', 6),
    fc.array(fc.record({ section: fc.constantFrom(...SECTIONS, ''), key: fc.constantFrom(...KEYS), value: VALUE }), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .filter(([messages]) => messages.length > 0)
  .map(([messages, edits]) => {
    const m = JSON.parse(JSON.stringify(messages[0])) as Record<string, unknown>;
    for (const e of edits) {
      const at = e.section === '' ? m : m[e.section];
      const target = Array.isArray(at) ? at[0] : at;
      if (target !== null && typeof target === 'object') (target as Record<string, unknown>)[e.key] = e.value;
      else m[e.section || e.key] = e.value;
    }
    return m;
  });

describe("validateMessage's compiled parser", () => {
  it('is compiled: the contract uses nothing z.compile cannot generate (else it is the schema itself, no faster)', () => {
    expect(compiled).not.toBe(DeviceMessage);
    expect(() => z.compile(DeviceMessage, { strict: true })).not.toThrow();
  });

  it('takes every valid message with the same output, byte for byte', () => {
    fc.assert(
      fc.property(timeline('P1', 40), (messages) => {
        for (const m of messages) {
          const a = answers(JSON.parse(JSON.stringify(m)));
          expect(a.compiled).toBe(a.runtime);
          expect(a.compiled.startsWith('ok ')).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('takes and refuses what the schema does, for messages with fields gone wrong', () => {
    fc.assert(
      fc.property(edited, (m) => {
        const a = answers(m);
        expect(a.compiled).toBe(a.runtime);
      }),
      { numRuns: 4000 },
    );
  });

  it('takes and refuses what the schema does, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => {
        const a = answers(v);
        expect(a.compiled).toBe(a.runtime);
      }),
      { numRuns: 1000 },
    );
  });

  it('validateMessage answers as before once it has switched to the compiled parser', () => {
    const valid = JSON.parse(JSON.stringify(fc.sample(timeline('P1', 40), { numRuns: 20 }).flat()[0])) as unknown;
    const before = validateMessage(valid);
    for (let i = 0; i < 600; i++) validateMessage(valid);
    expect(validateMessage(valid)).toEqual(before);
    expect(validateMessage({ ...(valid as object), vitals: {} })).toEqual({
      ok: false,
      errors: ['vitals: is empty: give at least one measurement'],
    });
  });
});

describe('the published JSON Schema (shared/contract/device-message.v1.schema.json)', () => {
  // A gateway vendor validates against it before sending: what it takes, the contract must take, and what it
  // refuses, refuse (2026-12-07: it took a message with no section, or an empty one, which every route answers 400).
  const ajv = new Ajv2020({ strict: false, formats: { 'date-time': true } });
  const published = ajv.compile(deviceMessageJsonSchema());
  const agree = (m: unknown) => {
    const json = JSON.parse(JSON.stringify(m)) as unknown;
    expect(published(json), JSON.stringify(json)).toBe(validateMessage(json).ok);
  };

  it('takes and refuses what the contract does, for messages with fields gone wrong', () => {
    fc.assert(fc.property(edited, agree), { numRuns: 4000 });
  });

  it('refuses a message with no section, or with an empty one, as the contract does', () => {
    const valid = JSON.parse(JSON.stringify(fc.sample(timeline('P1', 40), { numRuns: 20 }).flat()[0])) as object;
    const { messageId, patientId, observedAt, source } = valid as Record<string, unknown>;
    const bare = { messageId, patientId, observedAt, source };
    for (const m of [
      bare,
      ...['enrolment', 'vitals', 'neuro', 'organToxicity', 'labs'].map((s) => ({ ...bare, [s]: {} })),
      { ...bare, enrolment: { hypotension: {} } },
      { ...bare, oxygen: {} },
      { ...bare, monitoringEnd: {} },
    ]) {
      expect(validateMessage(m).ok).toBe(false);
      agree(m);
    }
    agree({ ...bare, vasopressors: [] });
  });
});
