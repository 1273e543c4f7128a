// The patient state is one compact JSON document in one DynamoDB item (hard limit 400 KB): prove it is bounded,
// that it round-trips, and that a version-1 state (rules 1.0) is read and graded by today's rules.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { gradeCrs, gradeIcans } from '#domain/grading.ts';
import { reduce } from '#domain/reducer.ts';
import { seenCount } from '#domain/seen.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { deserializeState, emptyState, serializeState, type PatientState } from '#domain/state.ts';
import { course, permutation } from '#test/support/arbitraries.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';
import { week } from '#test/support/week.ts';

/** What a step is worth comparing: its outputs and its state as stored (caches riding on the state left out). */
const view = (step: ReturnType<typeof reduce>) => ({ ...step, state: serializeState(step.state) });

describe('the patient state', () => {
  it('stays bounded through a week of one-minute vitals', () => {
    let state: PatientState | undefined;
    let count = 0;
    const sizes: number[] = [];
    for (const m of week('W-1')) {
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      count++;
      if (count % 1440 === 0) sizes.push(serializeState(state).length);
    }
    expect(count).toBeGreaterThan(7 * 24 * 60);
    // A measured budget: at most 26.0 KB measured, of which 22.3 KB is the window of the last 500+ message
    // identities (messageId and digest), 3.5 KB everything else, 0.6-0.75 KB the 64-80 blood-pressure readings,
    // 1.3 KB the 64-66 febrile readings; and no growth from day 2 to day 7.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(26.5 * 1024);
    expect(sizes.at(-1)! - sizes[1]!).toBeLessThan(1024);
    const stored = JSON.parse(serializeState(state!)) as Record<string, unknown>;
    const bytes = (v: unknown) => JSON.stringify(v).length;
    expect(bytes(stored.bp)).toBeLessThanOrEqual(800);
    expect(bytes(stored.febrile)).toBeLessThanOrEqual(1400);
    // 3600 until 2026-12-07, when the id of the grading settings (`"gradedUnder":"8 hex digits"`, 26 bytes) joined it.
    expect(bytes({ ...stored, seen: [] })).toBeLessThanOrEqual(3630);
    // Each bounded part holds what the rules need and no more.
    expect(seenCount(state!.seen)).toBeGreaterThanOrEqual(DEFAULT_CONFIG.dedupeWindow);
    expect(seenCount(state!.seen)).toBeLessThan(DEFAULT_CONFIG.dedupeWindow + 64);
    expect(state!.bp.length).toBeGreaterThanOrEqual(DEFAULT_CONFIG.bpHistory); // folded a quarter at a time
    expect(state!.bp.length).toBeLessThanOrEqual(DEFAULT_CONFIG.bpHistory * 1.25);
    expect(state!.pressors.length).toBeLessThanOrEqual(DEFAULT_CONFIG.vasopressorHistory * 1.25);
    expect(state!.bpFold.at).toBeLessThan(state!.bp[0]![0]);
    expect(state!.febrile.every(([t]) => t >= state!.clock - DEFAULT_CONFIG.feverWindowMinutes * 60_000)).toBe(true);
    // The latest feverHistory, and earlier ones no later reading covers (at most one per 0.1 °C from 38.0 to 45.0).
    expect(state!.febrile.length).toBeLessThanOrEqual(DEFAULT_CONFIG.feverHistory + 71);
    expect(state!.tocilizumab.length).toBeLessThanOrEqual(16);
  });

  it('round-trips through JSON and grades the same afterwards', () => {
    const msgs = [...week('W-2')].slice(0, 3000);
    let live: PatientState | undefined;
    let stored: string | undefined;
    for (const m of msgs) {
      const fromStore = stored === undefined ? undefined : deserializeState(stored);
      const a = reduce(live, m, DEFAULT_CONFIG, arrivalOf(m));
      const b = reduce(fromStore, m, DEFAULT_CONFIG, arrivalOf(m));
      expect(view(b)).toEqual(view(a));
      live = a.state;
      stored = serializeState(b.state);
    }
  });

  it('round-trips any course with millisecond times and a folded history, and grades the same afterwards', () => {
    const small = config({ bpHistory: 3, vasopressorHistory: 2 });
    fc.assert(
      fc.property(
        course('R', 20),
        fc.array(fc.integer(), { minLength: 100, maxLength: 100 }),
        fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1 }),
        (ordered, keys, jitter) => {
          let live: PatientState | undefined;
          let stored: string | undefined;
          const arrived = permutation(ordered.length, keys).map((i, n) => {
            const m = structuredClone(ordered[i]!);
            m.observedAt = new Date(Date.parse(m.observedAt) + jitter[n % jitter.length]!).toISOString();
            return m;
          });
          for (const m of arrived) {
            const a = reduce(live, m, small, arrivalOf(m));
            const b = reduce(stored === undefined ? undefined : deserializeState(stored), m, small, arrivalOf(m));
            expect(view(b)).toEqual(view(a));
            live = a.state;
            stored = serializeState(b.state);
            expect(serializeState(deserializeState(stored))).toBe(stored);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('serialises an empty state and refuses an unknown version', () => {
    const s = emptyState('E-1');
    expect(deserializeState(serializeState(s))).toEqual(s);
    expect(() => deserializeState('{"v":3}')).toThrow(/unsupported patient state version 3/);
  });

  it('never mutates the state it is given', () => {
    let state: PatientState | undefined;
    for (const m of [...week('W-3')].slice(0, 600)) {
      const before = state === undefined ? undefined : serializeState(state);
      const next = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      if (state) expect(serializeState(state)).toBe(before);
      state = next;
    }
  });
});

describe('a version-1 state (rules 1.0, as SQLite and DynamoDB hold it today)', () => {
  const v1 = JSON.parse(readFileSync(new URL('../fixtures/patient-states-v1.json', import.meta.url), 'utf8')) as Record<
    string,
    { v: number }
  >;
  const stored = JSON.stringify(v1['P-V1']);

  it('is read as version 2 with what version 1 kept', () => {
    const s = deserializeState(stored);
    expect(s.v).toBe(2);
    expect(s.seq).toBe(0);
    expect(s.neuro).toEqual({
      iceScore: { v: 8, t: Date.parse('2026-01-10T08:25:00Z') },
      consciousness: { v: 'alert', t: Date.parse('2026-01-10T08:25:00Z') },
    });
    expect(s.bp.map(([t, sys]) => [new Date(t).toISOString().slice(11, 16), sys])).toEqual([
      ['08:00', 84],
      ['08:05', 82],
      ['08:30', 102],
      ['08:40', 104],
    ]);
    expect(s.pressors).toEqual([[Date.parse('2026-01-10T08:10:00Z'), true]]);
    // Known fevers: the first CRS >= 1 (08:00) and the kept readings (08:05, 08:30); masking medication at 08:20.
    expect(s.latestFever).toBe(Date.parse('2026-01-10T08:30:00Z'));
    expect(s.maskedFever).toBe(Date.parse('2026-01-10T08:05:00Z'));
    expect(s.notified.crs).toEqual({ grade: 3, teams: ['hematology', 'icu'] });
    expect(s.seen).toEqual([]); // no digests in version 1: the window starts afresh
    expect(deserializeState(serializeState(s))).toEqual(s);
  });

  it('carries the rule state over the readings it dropped (bpDropped) into the next reading', () => {
    // Section 1: hypotension is a low reading "on two consecutive blood-pressure readings" and clears "after two
    // consecutive normal readings"; version 1 kept the class of the last dropped reading (bpDropped.lastLow).
    const old = JSON.parse(stored) as Record<string, unknown>;
    const hypotensiveAfter = (bpDropped: { on: boolean; lastLow: boolean }, systolicBP: number) => {
      const s = deserializeState(JSON.stringify({ ...old, bp: [], vasopressors: undefined, bpDropped }));
      const r = run([msg('P-V1', 50, { vitals: { systolicBP } })], config(), s);
      return r.last.reasons.some((x) => x.criterion === 'hypotension');
    };
    expect(hypotensiveAfter({ on: false, lastLow: true }, 85)).toBe(true); // dropped low + low: established
    expect(hypotensiveAfter({ on: false, lastLow: false }, 85)).toBe(false); // dropped normal + low: one low alone
    expect(hypotensiveAfter({ on: true, lastLow: false }, 110)).toBe(false); // dropped normal + normal: cleared
    expect(hypotensiveAfter({ on: true, lastLow: true }, 110)).toBe(true); // dropped low + normal: not yet
  });

  it('reads a vasopressor section whose pumps all run at dose 0 as none infusing (pinned by a mutation run)', () => {
    const old = JSON.parse(stored) as { vasopressors: { t: number } };
    const paused = { v: [{ drug: 'norepinephrine', dose: 0, unit: 'mcg/kg/min' }], t: old.vasopressors.t };
    expect(deserializeState(JSON.stringify({ ...old, vasopressors: paused })).pressors).toEqual([[paused.t, false]]);
  });

  it('keeps that rule state when it is stored again before the next reading, in both forms', () => {
    // Found by a mutation run (2026-12-06): nothing is folded yet (no folded instant), so both forms wrote the
    // instant as null, and a null instant was read back as no rule state at all: the dropped low reading was lost
    // at the first save after the upgrade, and the next low reading no longer established hypotension (CRS 1, not 2).
    const old = JSON.parse(stored) as Record<string, unknown>;
    for (const bpDropped of [
      { on: false, lastLow: true },
      { on: true, lastLow: true },
    ]) {
      const s = deserializeState(
        JSON.stringify({ ...old, bp: [], oxygen: undefined, vasopressors: undefined, bpDropped }),
      );
      const live = run([msg('P-V1', 46, { vitals: { temperatureC: 38.2 } })], config(), s).state!;
      const next = msg('P-V1', 50, { vitals: { systolicBP: bpDropped.on ? 110 : 85 } });
      const graded = (state: PatientState) => {
        const last = run([next], config(), state).last;
        return [last.crsGrade, last.reasons.some((x) => x.criterion === 'hypotension')];
      };
      expect(graded(live)).toEqual([2, true]);
      expect(graded(deserializeState(serializeState(live)))).toEqual([2, true]);
      expect(graded(expandState(JSON.parse(JSON.stringify(compactState(live))) as unknown[]))).toEqual([2, true]);
    }
  });

  it('grades as version 1 did where rules 1.0 and 1.1 agree, and by rules 1.1 from then on', () => {
    const s = deserializeState(stored);
    expect([gradeCrs(s, DEFAULT_CONFIG).grade, gradeIcans(s).grade]).toEqual([3, 1]);
    // The normal readings of 08:30 and 08:40 were taken on norepinephrine: after the stop, hypotension stays.
    const stop = msg('P-V1', 50, { vasopressors: [] });
    const r = run(
      [stop, msg('P-V1', 55, { vitals: { systolicBP: 110 } }), msg('P-V1', 60, { vitals: { systolicBP: 112 } })],
      config({ holdMinutes: 0 }),
      s,
    );
    const hypotensive = r.assessments.map((a) => a.reasons.some((x) => x.criterion === 'hypotension'));
    expect(hypotensive).toEqual([true, true, false]); // cleared by the two normal readings after the stop
    expect(r.assessments.map((a) => a.crsGrade)).toEqual([2, 2, 2]); // the nasal cannula keeps CRS 2
    expect(pages(r)).toEqual(['de-escalation crs 3->2 hematology+icu']);
    expect(r.notifications.map((n) => n.notificationId)).toEqual(['crs|P-V1|#1']);
  });
});

describe('the blood-pressure history bound', () => {
  it('folds the oldest readings into the rule, naming the pair of low readings that straddles the fold', () => {
    const small = config({ bpHistory: 3, vasopressorHistory: 2 });
    const bp = (m: number, systolicBP: number) => msg('B1', m, { vitals: { systolicBP } });
    // Low at 1 and 2 (a pair); then normal, low, normal, low...: no other pair, so hypotension stays on.
    const r = run(
      [
        enrol('B1'),
        msg('B1', 0, { vitals: { temperatureC: 39 } }),
        bp(1, 80),
        bp(2, 81),
        bp(3, 120),
        bp(4, 82),
        bp(5, 121),
        bp(6, 83),
      ],
      small,
    );
    expect(r.state!.bp).toHaveLength(4); // 3, and one more before the next fold
    expect(r.last.crsGrade).toBe(2);
    expect(r.last.reasons.filter((x) => x.criterion === 'hypotension').map((x) => x.value)).toEqual([
      'systolic 80 mmHg',
      'systolic 81 mmHg',
    ]);
    const stored = serializeState(r.state!);
    expect(deserializeState(stored)).toMatchObject({ bpFold: r.state!.bpFold });
  });

  it('a reading older than the newest folded instant is not kept; one newer than it is placed in order', () => {
    const small = config({ bpHistory: 3, vasopressorHistory: 2 });
    const bp = (m: number, systolicBP: number) => msg('B2', m, { vitals: { systolicBP } });
    const base = [
      enrol('B2'),
      msg('B2', 0, { vitals: { temperatureC: 39 } }),
      bp(10, 120),
      bp(20, 121),
      bp(30, 80),
      bp(40, 122),
      bp(50, 81),
    ];
    expect(run(base, small).state!.bpFold.at).toBe(Date.parse('2026-01-10T08:20:00Z'));
    // 35 is after the fold (20): in order it makes 80, 79 a pair.
    expect(run([...base, bp(35, 79)], small).last.crsGrade).toBe(2);
    // 15 is before it: not kept, although in observedAt order it would have made no difference here either.
    const late = run([...base, bp(15, 79)], small);
    expect(late.state!.bp.map(([t]) => t)).not.toContain(Date.parse('2026-01-10T08:15:00Z'));
    expect(late.last.crsGrade).toBe(1);
    // 20 is the fold itself: a correction there cannot be merged with the reading folded at that instant, so it is
    // not kept either (docs/grading-rules.md section 9: three readings later than it had been accepted).
    const atFold = run([...base, bp(20, 79)], small);
    expect(atFold.state!.bp.map(([t]) => t)).not.toContain(Date.parse('2026-01-10T08:20:00Z'));
    expect(atFold.last.crsGrade).toBe(1);
  });
});
