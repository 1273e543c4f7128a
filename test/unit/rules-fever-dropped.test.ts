// The fever waiver when the fever it rests on was dropped from the kept febrile readings (docs/grading-rules.md
// section 4): the span of dropped ones (feverDropped) stands in, so the waiver holds when it may (never below the rules).
import { describe, expect, it } from 'vitest';
import { enrol, msg } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';

const P = 'FD';
const HOUR = 60;
const temp = (m: number, c: number) => msg(P, m, { vitals: { temperatureC: c } });
const bp = (m: number, s: number) => msg(P, m, { vitals: { systolicBP: s } });
const toci = (m: number) => msg(P, m, { medications: [{ drug: 'tocilizumab' }] });
const infused = (m: number, at: string) => enrol(P, m, { infusedAt: `2026-01-10T${at}:00Z` });
/** Minutes from 08:00 of 2026-01-10 (the messages' clock). */
const at = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return (h! - 8) * HOUR + m!;
};
const hourly = (from: number, n: number) => Array.from({ length: n }, (_, h) => temp(from + h * HOUR, 38.5));
/** The next day two low systolics (afebrile: every fever has left the window), then the infusion time corrected. */
const nextDay = (correctedTo: string) => [bp(39 * HOUR, 85), bp(39 * HOUR + 5, 84), infused(40 * HOUR, correctedTo)];
const both = (course: ReturnType<typeof msg>[]) => ({
  oracle: oracleGrades(course, config()).crs,
  engine: run(course, config()).last.crsGrade,
});

describe('a fever of the new episode dropped (past the latest 8 out of the window), the start moved', () => {
  // Infused 06:00; 38.5 °C at 10:30 and hourly 11:00-22:00; the next day two low systolics; the infusion time
  // corrected to 10:45: 10:30-14:00 were dropped (the latest 8, 15:00-22:00, are kept).
  const fevers = [infused(-2 * HOUR, '06:00'), temp(at('10:30'), 38.5), ...hourly(at('11:00'), 12)];

  it('tocilizumab at 11:30 charted late: the 11:00 fever precedes it, CRS 2, the reason names the span', () => {
    const course = [...fevers, ...nextDay('10:45'), toci(at('11:30'))];
    expect(both(course)).toEqual({ oracle: 2, engine: 2 }); // until 2026-12-06 the engine gave 0
    const r = run(course, config());
    expect(r.state!.feverDropped).toEqual([Date.parse('2026-01-10T10:30:00Z'), Date.parse('2026-01-10T14:00:00Z')]);
    const waiver = r.last.reasons.find((x) => x.criterion === 'fever-waiver')!;
    expect(waiver.text).toBe(
      'fever not required: fever-masking medication (tocilizumab) given on or after a fever of the episode (maybe one' +
        ' of the febrile readings between 2026-01-10T10:30:00Z and 2026-01-10T14:00:00Z, no longer kept: graded as' +
        ' if so) at 2026-01-10T11:30:00Z',
    );
  });

  it('tocilizumab at 10:40, before the new start (10:45): no fever of the episode precedes it, CRS 0', () => {
    expect(both([...fevers, ...nextDay('10:45'), toci(at('10:40'))])).toEqual({ oracle: 0, engine: 0 });
  });

  it('the start moved again, past the fever first taken (11:10): the 11:20 fever still precedes 11:30, CRS 2', () => {
    // A bound taken once, when the start first moved, would be 10:45 and lost here: the waiver reads the span afresh.
    const course = [
      infused(-2 * HOUR, '06:00'),
      temp(at('10:30'), 38.5),
      temp(at('11:00'), 38.5),
      temp(at('11:20'), 38.5),
      ...hourly(at('12:00'), 11),
      ...nextDay('10:45'),
      toci(at('11:30')),
      infused(41 * HOUR, '11:10'),
    ];
    expect(both(course)).toEqual({ oracle: 2, engine: 2 }); // until 2026-12-06 the engine gave 0
  });

  it('admitted over-grade: dropped fevers at 10:30 and 14:00 only, none between 10:45 and 11:30, CRS 2', () => {
    // The rules give 0 (no fever of the episode before the medication), but the kept history cannot tell the
    // dropped readings from readings in between: the span [10:30, 14:00] may hold one, and the waiver holds
    // (fail-safe: the higher grade; docs/grading-rules.md section 4).
    const course = [
      infused(-2 * HOUR, '06:00'),
      temp(at('10:30'), 38.5),
      temp(at('14:00'), 38.5),
      ...hourly(at('15:00'), 8),
      ...nextDay('10:45'),
      toci(at('11:30')),
    ];
    expect(run(course, config()).state!.feverDropped).toEqual([
      Date.parse('2026-01-10T10:30:00Z'),
      Date.parse('2026-01-10T14:00:00Z'),
    ]);
    expect(both(course)).toEqual({ oracle: 0, engine: 2 });
  });
});

describe('a covered fever dropped in the window (feverHistory later ones, a probe every minute)', () => {
  it('tocilizumab at 10:40 charted late, the start corrected to 10:35: the 10:35 fever precedes it, CRS 2', () => {
    // 38.5 °C each minute from 10:30 for 80 minutes: the earliest 16 are covered and dropped at once (64 kept).
    const probe = Array.from({ length: 80 }, (_, i) => temp(at('10:30') + i, 38.5));
    const early = [infused(-2 * HOUR, '06:00'), ...probe];
    expect(run(early, config()).state!.feverDropped).toEqual([
      Date.parse('2026-01-10T10:30:00Z'),
      Date.parse('2026-01-10T10:45:00Z'),
    ]);
    const course = [
      ...early,
      toci(at('10:40')),
      infused(at('12:00'), '10:35'),
      bp(39 * HOUR, 85),
      bp(39 * HOUR + 5, 84),
    ];
    expect(both(course)).toEqual({ oracle: 2, engine: 2 }); // until 2026-12-06 the engine gave 0
  });
});

describe('the span of dropped fevers does not bridge two episodes (a re-infusion: step-up doses)', () => {
  it('fevers of the first episode dropped, a second infusion, a masking drug before its own fevers: CRS 0', () => {
    // Infused 06:00; hourly fevers 09:00-20:00 (the first episode); infused again the next day at 08:00 (a new
    // episode); acetaminophen at 09:00 that day, then hourly fevers 10:00-21:00, the day after two low systolics
    // once every fever has left the window. The rules: no fever of the second episode precedes the acetaminophen,
    // so no waiver, CRS 0. A span widened across both episodes (09:00 of day 1 to 13:00 of day 2) held one.
    const course = [
      infused(-2 * HOUR, '06:00'),
      ...hourly(at('09:00'), 12),
      enrol(P, 24 * HOUR, { infusedAt: '2026-01-11T08:00:00Z' }),
      msg(P, 25 * HOUR, { medications: [{ drug: 'acetaminophen' }] }),
      ...hourly(26 * HOUR, 12),
      bp(63 * HOUR, 85),
      bp(63 * HOUR + 5, 84),
    ];
    expect(both(course)).toEqual({ oracle: 0, engine: 0 });
  });

  it('the first episode dropped before the second infusion arrives: its span is cleared (pinned by a mutation run)', () => {
    // As above, but the second infusion two days on, and a normal temperature between: the first episode's 09:00
    // to 12:00 fevers are dropped (past the latest 8 out of the window) while that episode stands. The infusion
    // clears that span; the second episode's own dropped fevers (10:00-13:00) all follow the acetaminophen at 09:00,
    // so no waiver, CRS 0. A span kept across the infusion reached from 09:00 of day 1 to 13:00 of day 3: CRS 2.
    const course = [
      infused(-2 * HOUR, '06:00'),
      ...hourly(at('09:00'), 12),
      temp(40 * HOUR, 37),
      enrol(P, 48 * HOUR, { infusedAt: '2026-01-12T08:00:00Z' }),
      msg(P, 49 * HOUR, { medications: [{ drug: 'acetaminophen' }] }),
      ...hourly(50 * HOUR, 12),
      bp(87 * HOUR, 85),
      bp(87 * HOUR + 5, 84),
    ];
    expect(both(course)).toEqual({ oracle: 0, engine: 0 });
  });
});

describe('a masking drug charted late, the fever before it pushed out of the kept ones (pinned by a mutation run)', () => {
  it('the waiver names the first fever of the episode it follows, not the span of dropped ones', () => {
    // Section 4: "A masking medication charted late, after a later fever arrived, follows the fever before it too,
    // even when ... a later, higher one covered it". feverHistory 2: 38.4 °C at 09:00 and 38.5 °C at 09:45 are
    // covered by 38.9 °C at 11:00 and 39.0 °C at 11:30; tocilizumab at 10:00 is charted after all four.
    const cfg = config({ feverHistory: 2 });
    const course = [
      infused(-HOUR, '08:00'),
      temp(at('09:00'), 38.4),
      temp(at('09:45'), 38.5),
      temp(at('11:00'), 38.9),
      temp(at('11:30'), 39),
      toci(at('10:00')),
      bp(30 * HOUR, 85),
      bp(30 * HOUR + 5, 84),
    ];
    const a = run(course, cfg).last;
    expect([oracleGrades(course, cfg).crs, a.crsGrade]).toEqual([2, 2]);
    expect(a.reasons.find((r) => r.criterion === 'fever-waiver')!.text).toContain(
      'given on or after a fever of the episode (2026-01-10T09:00:00Z) at 2026-01-10T10:00:00Z',
    );
  });
});
