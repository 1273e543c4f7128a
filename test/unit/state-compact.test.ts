// The compact stored form of the patient state (version 3, for DynamoDB): the same state as version 2 for any
// course, and graded the same once read back; smaller before any compression.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '../../shared/app/digest.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import { compactState, expandState } from '../../shared/domain/state-compact.ts';
import { hypotensionThresholds } from '../../shared/domain/grading.ts';
import { deserializeState, emptyState, serializeState, type PatientState } from '../../shared/domain/state.ts';
import { course, permutation } from '../support/arbitraries.ts';
import { msg, T0 } from '../support/messages.ts';
import { config } from '../support/run.ts';
import { week } from '../support/week.ts';

const throughJson = (s: PatientState) => expandState(JSON.parse(JSON.stringify(compactState(s))) as unknown[]);
/** The state as stored in version 2, as a value (the order of a section's fields is not kept). */
const v2 = (s: PatientState) => JSON.parse(serializeState(s)) as unknown;

describe('the compact patient state', () => {
  it('is the same state as version 2 after any course in any arrival order (millisecond times, folded history), and grades the same', () => {
    const small = config({ bpHistory: 3, vasopressorHistory: 2 });
    fc.assert(
      fc.property(
        course('C', 20),
        fc.array(fc.integer(), { minLength: 100, maxLength: 100 }),
        fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1 }),
        (ordered, keys, jitter) => {
          let live: PatientState | undefined;
          let stored: PatientState | undefined;
          for (const i of permutation(ordered.length, keys)) {
            const m = structuredClone(ordered[i]!);
            m.observedAt = new Date(Date.parse(m.observedAt) + jitter[i % jitter.length]!).toISOString();
            const a = reduce(live, m, small, arrivalOf(m));
            const b = reduce(stored, m, small, arrivalOf(m));
            expect({ ...b, state: v2(b.state) }).toEqual({ ...a, state: v2(a.state) });
            live = a.state;
            stored = throughJson(b.state);
            expect(v2(stored)).toEqual(v2(b.state));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('round-trips an empty state and a week of one-minute vitals, in under 70 % of the bytes of version 2 without the window', () => {
    expect(v2(throughJson(emptyState('E-1')))).toEqual(v2(emptyState('E-1')));
    let state: PatientState | undefined;
    for (const m of week('W-C')) state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    expect(v2(throughJson(state!))).toEqual(v2(state!));
    const windowless = { ...state!, seen: [] };
    const version2 = serializeState(windowless).length;
    const version3 = JSON.stringify(compactState(windowless)).length;
    expect(version3).toBeLessThan(version2 * 0.7);
  });

  it('refuses a form it does not know', () => {
    expect(() => expandState([4, 'X'])).toThrow(/unsupported compact patient state version 4/);
  });
});

describe("a patient's own hypotension thresholds in the stored forms", () => {
  // Stored before each threshold kept its own time: one field, `hypotension`, with both and one time.
  const withThresholds = () => {
    let s: PatientState | undefined;
    for (const [minutes, hypotension] of [
      [0, { systolicBelow: 100 }],
      [10, { mapBelow: 70 }],
    ] as const) {
      const m = msg('H', minutes, { enrolment: { hypotension } });
      s = reduce(s, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    }
    return s!;
  };

  it('a state stored before the split reads each threshold at the old field’s time, in both forms', () => {
    const now = withThresholds();
    const { hypotensionSystolicBelow: _s, hypotensionMapBelow: _m, ...rest } = now.enrolment;
    const legacy = { v: { systolicBelow: 100, mapBelow: 70 }, t: T0 + 10 * 60_000 };
    const before = JSON.parse(serializeState(now)) as { enrolment: Record<string, unknown> };
    before.enrolment = { ...rest, hypotension: legacy };
    const read = deserializeState(JSON.stringify(before));
    expect(read.enrolment.hypotensionSystolicBelow).toEqual({ v: 100, t: legacy.t });
    expect(read.enrolment.hypotensionMapBelow).toEqual({ v: 70, t: legacy.t });
    expect(hypotensionThresholds(read, DEFAULT_CONFIG)).toEqual({ systolicBelow: 100, mapBelow: 70 });

    const compact = compactState(now);
    const enrolmentSlots = compact[4] as unknown[];
    expect(enrolmentSlots.length).toBe(18); // the old field's slot (12, 13), then the two thresholds
    const compactBefore = [...compact];
    compactBefore[4] = [...enrolmentSlots.slice(0, 12), legacy.v, (now.clock - legacy.t) / 1000];
    expect(expandState(compactBefore).enrolment).toEqual(read.enrolment);
  });

  it('a state written now also carries both thresholds in the old field, for the code before (a rollback)', () => {
    const now = withThresholds();
    const legacy = { v: { systolicBelow: 100, mapBelow: 70 }, t: T0 + 10 * 60_000 };
    expect((JSON.parse(serializeState(now)) as { enrolment: unknown }).enrolment).toMatchObject({
      hypotension: legacy,
    });
    const slots = compactState(now)[4] as unknown[];
    expect(slots.slice(12, 14)).toEqual([legacy.v, (now.clock - legacy.t) / 1000]);
    // And it reads back split, each threshold with its own time.
    expect(deserializeState(serializeState(now)).enrolment).toEqual(now.enrolment);
    expect(expandState(compactState(now)).enrolment).toEqual(now.enrolment);
    expect(now.enrolment.hypotensionSystolicBelow).toEqual({ v: 100, t: T0 });
  });

  it('a state the code before updated after a rollback: its later change to the old field wins', () => {
    // The code before kept the split fields it did not know as they were, and replaced the old field whole.
    const now = withThresholds();
    const json = JSON.parse(serializeState(now)) as { enrolment: Record<string, unknown> };
    json.enrolment.hypotension = { v: { systolicBelow: 95 }, t: T0 + 20 * 60_000 };
    const read = deserializeState(JSON.stringify(json)).enrolment;
    expect(read.hypotensionSystolicBelow).toEqual({ v: 95, t: T0 + 20 * 60_000 });
    expect(read.hypotensionMapBelow).toEqual({ v: 70, t: T0 + 10 * 60_000 });
  });
});
