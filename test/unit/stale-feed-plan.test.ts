// The stale-feed rule every backend's sweep follows (planStaleFeeds, shared/app/stale-feed.ts), case by case:
// the edges of the ward rule that a mutation run found no test pinning down.
import { describe, expect, it } from 'vitest';
import { planStaleFeeds, type FeedCheck, type InForce } from '#app/stale-feed.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-12-01T08:00:00Z');
const at = (m: number) => T0 + m * MIN;
const inWard = (ward: string) => ({ enrolment: { ward: { v: ward, t: 0 } } }) as unknown as PatientState;
const check = (patientId: string, ward: string, stale: boolean, since: number): FeedCheck => ({
  patientId,
  state: inWard(ward),
  feed: { stale, since: at(since) },
});
const wardAlertId = (ward: string, since: number) => `stale-feed|ward ${ward}|${at(since)}`;
/** A ward alert in force since minute `since`, with these members (what the sweeps store). */
const wardInForce = (ward: string, since: number, members: string[]): [string, InForce][] => [
  [wardAlertId(ward, since), { alertId: wardAlertId(ward, since), since: at(since) }],
  ...members.map((p): [string, InForce] => [p, { alertId: wardAlertId(ward, since), since: at(since) }]),
];
const plan = (inForce: [string, InForce][], checks: FeedCheck[], now: number, full = true) =>
  planStaleFeeds(new Map(inForce), checks, DEFAULT_PAGING, at(now), full, 'UTC');

describe('the stale-feed plan', () => {
  it('raises nothing for a feed that is not quiet (the sweep of the patients whose data just came in)', () => {
    const p = plan([], [check('P1', 'A', false, 20)], 21, false);
    expect(p.alerts).toEqual([]);
    expect([...p.set.keys()]).toEqual([]);
  });

  it("a ward's alert is dated when the first of its patients went quiet", () => {
    const p = plan([], [check('P1', 'A', true, 1), check('P2', 'A', true, 3), check('P3', 'A', true, 2)], 20);
    expect(p.alerts.map((a) => a.alertId)).toEqual([wardAlertId('A', 1)]);
    expect(p.alerts[0]!.summary).toContain('quiet since 2026-12-01 08:01 UTC');
  });

  it('a patient of the ward quiet exactly windowMinutes after its alert began joins it, paging nothing', () => {
    const p = plan(wardInForce('A', 0, ['P1', 'P2', 'P3']), [check('P4', 'A', true, 5)], 21);
    expect(p.alerts).toEqual([]);
    expect(p.set.get('P4')).toEqual({ alertId: wardAlertId('A', 0), since: at(5) });
  });

  it("a patient quiet within the window of two of its ward's alerts joins the later one", () => {
    const p = plan(
      [...wardInForce('A', 0, ['P1', 'P2', 'P3']), ...wardInForce('A', 3, ['P5', 'P6', 'P7'])],
      [check('P4', 'A', true, 4)],
      21,
    );
    expect(p.alerts).toEqual([]);
    expect(p.set.get('P4')?.alertId).toBe(wardAlertId('A', 3));
  });

  it('a full sweep answers a ward alert left with no quiet patient (a restart lost who belonged to it); a partial one leaves it', () => {
    const orphan = wardInForce('A', 0, []);
    expect(plan(orphan, [], 30, false).alerts).toEqual([]);
    const full = plan(orphan, [], 30, true);
    expect(full.alerts).toEqual([
      expect.objectContaining({
        alertId: `${wardAlertId('A', 0)}|cleared`,
        cleared: true,
        resolves: wardAlertId('A', 0),
      }),
    ]);
    expect(full.remove).toEqual([wardAlertId('A', 0)]);
  });

  it('a feed quiet since its alert was raised keeps it when a deployment lengthened staleFeedMinutes, its ward alert too', () => {
    const own: [string, InForce] = ['P9', { alertId: `stale-feed|P9|${at(0)}`, since: at(0) }];
    // Quiet since minute 0, not stale by the new settings at minute 20 (30 minutes, say): nothing came.
    const p = plan(
      [own, ...wardInForce('A', 0, ['P1', 'P2', 'P3'])],
      ['P1', 'P2', 'P3', 'P9'].map((id) => check(id, 'A', false, 0)),
      20,
    );
    expect(p.alerts).toEqual([]);
    expect(p.remove).toEqual([]);
    expect([...p.set.keys()]).toEqual([]);
  });

  it('a feed still quiet whose data moved on keeps its alert, paging nothing, and the sweep stores when it went quiet now', () => {
    const p = plan([['P1', { alertId: `stale-feed|P1|${at(0)}`, since: at(0) }]], [check('P1', 'A', true, 2)], 30);
    expect(p.alerts).toEqual([]);
    expect(p.set.get('P1')).toEqual({ alertId: `stale-feed|P1|${at(0)}`, since: at(2) });
    expect(p.remove).toEqual([]);
  });

  it('an all-clear says since when the monitor has data again (its first reading back), not when the sweep ran', () => {
    const p = plan([['P1', { alertId: `stale-feed|P1|${at(0)}`, since: at(0) }]], [check('P1', 'A', false, 22)], 30);
    expect(p.alerts).toEqual([
      expect.objectContaining({
        cleared: true,
        summary: expect.stringContaining('monitor data since 2026-12-01 08:22 UTC'),
      }),
    ]);
    // The all-clear of that alert (its id names it), and the alert is no longer in force: the next sweep says nothing.
    expect(p.alerts[0]).toMatchObject({ alertId: `stale-feed|P1|${at(0)}|cleared`, patientId: 'P1' });
    expect(p.remove).toEqual(['P1']);
    expect([...p.set.keys()]).toEqual([]);
  });

  it('an all-clear after a discharge and a re-admission with no monitor data since says so, not "data resumed"', () => {
    const state = {
      ...inWard('A'),
      lastMonitorAt: at(0),
      monitoringEnd: { v: 'discharged', t: at(30) },
      lastEnrolmentAt: at(30.5),
    } as PatientState;
    const p = plan(
      [['P1', { alertId: `stale-feed|P1|${at(0)}`, since: at(0) }]],
      [{ patientId: 'P1', state, feed: { stale: false, since: at(30.5) } }],
      31,
    );
    expect(p.alerts.map((a) => [a.alertId, a.summary])).toEqual([
      [
        `stale-feed|P1|${at(0)}|cleared`,
        'Re-admitted, patient P1: watched again from 2026-12-01 08:30 UTC, with no monitor data yet; the no-data alert is closed',
      ],
    ]);
  });

  it("a ward's page names up to 20 patients, and says how many more only when there are more", () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `P${String(i).padStart(2, '0')}`);
    const summary = (n: number) =>
      plan(
        [],
        ids(n).map((id) => check(id, 'A', true, 1)),
        20,
      ).alerts[0]!.summary;
    expect(summary(20)).not.toContain('more');
    expect(summary(20)).toContain('P19');
    expect(summary(21)).toContain('; and 1 more');
    expect(summary(21)).not.toContain('P20');
  });
});
