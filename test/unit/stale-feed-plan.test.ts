// The stale-feed rule every backend's sweep follows (planStaleFeeds, shared/app/stale-feed.ts), case by case:
// the edges of the ward rule that a mutation run found no test pinning down.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pageSms, smsSegments } from '#adapters/aws/sns-page-sender.ts';
import type { PageMessage } from '#ports';
import { pageStaleFeeds, planStaleFeeds, type FeedCheck, type InForce } from '#app/stale-feed.ts';
import { SendDeferred } from '#app/pager.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-12-01T08:00:00Z');
const at = (m: number) => T0 + m * MIN;
/** A patient of the ward whose monitor sent until `lastMonitorAt` (a monitor that never sent is worded apart). */
const inWard = (ward: string, lastMonitorAt?: number) =>
  ({ enrolment: { ward: { v: ward, t: 0 } }, lastMonitorAt }) as unknown as PatientState;
const check = (patientId: string, ward: string, stale: boolean, since: number): FeedCheck => ({
  patientId,
  state: inWard(ward, at(since)),
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

  // A mutation run (2026-12-07) found no test of a re-admission at the instant of the end: watched again from then.
  it('a monitor silent since a re-admission at the very time of the discharge says so (re-admission), not enrolment', () => {
    const readmitted = (t: number) =>
      ({
        ...inWard('A'),
        lastMonitorAt: at(0),
        monitoringEnd: { v: 'discharged', t: at(30) },
        lastEnrolmentAt: at(t),
      }) as PatientState;
    const summary = (t: number) =>
      plan([], [{ patientId: 'P1', state: readmitted(t), feed: { stale: true, since: at(t) } }], 60).alerts[0]!.summary;
    expect(summary(30)).toBe(
      'NO DATA, patient P1: no monitor data since re-admission at 2026-12-01 08:30 UTC; the grade cannot be trusted',
    );
    expect(summary(31)).toContain('no monitor data since re-admission at 2026-12-01 08:31 UTC');
  });

  // The same run: whether a patient never sent is of its own watch (since its re-admission), not the ward's earliest.
  it("a ward's patient re-admitted after its monitor sent, silent since, is one that never sent", () => {
    const readmitted = {
      ...inWard('A', at(2)),
      monitoringEnd: { v: 'discharged', t: at(2.5) },
      lastEnrolmentAt: at(3),
    } as PatientState;
    const p = plan(
      [],
      [
        check('P1', 'A', true, 0),
        { patientId: 'P2', state: readmitted, feed: { stale: true, since: at(3) } },
        check('P3', 'A', true, 0),
      ],
      60,
    );
    expect(p.alerts[0]!.summary).toContain('3 monitors quiet, 2 since 2026-12-01 08:00 UTC, 1 since re-admission (');
  });

  // 2026-12-07: the time a ward's alert said its monitors were quiet since was the earliest of all, an enrolment too.
  it("a ward's alert says when the monitors that sent stopped (the earliest), never the enrolment of those that did not", () => {
    const never = (patientId: string, enrolledAt: number): FeedCheck => ({
      patientId,
      state: inWard('A'),
      feed: { stale: true, since: at(enrolledAt) },
    });
    const p = plan([], [never('P1', 0), check('P2', 'A', true, 7), check('P3', 'A', true, 5), never('P4', 1)], 60);
    expect(p.alerts[0]!.summary).toContain('4 monitors quiet, 2 since 2026-12-01 08:05 UTC, 2 since enrolment (');
    // Its id (and the all-clear's "the no-data alert of") is of the earliest of all, as before.
    expect(p.alerts[0]!.alertId).toBe(wardAlertId('A', 0));
  });

  // 2026-12-07: the all-clear named "the no-data alert of 08:00", the enrolment of those that never sent, a time the
  // alert (which said "2 since 08:05, 2 since enrolment") never gave: the clinician could not tell which had cleared.
  it("a ward's all-clear names its alert by the time the alert gave, not by its id's", () => {
    const never = (patientId: string, enrolledAt: number): FeedCheck => ({
      patientId,
      state: inWard('A'),
      feed: { stale: true, since: at(enrolledAt) },
    });
    const raised = plan([], [never('P1', 0), check('P2', 'A', true, 7), check('P3', 'A', true, 5), never('P4', 1)], 60);
    const back = ['P1', 'P2', 'P3', 'P4'].map((p) => check(p, 'A', false, 70));
    const cleared = plan([...raised.set], back, 71);
    expect(cleared.alerts.map((a) => [a.alertId, a.summary])).toEqual([
      [
        `${wardAlertId('A', 0)}|cleared`,
        'Data resumed, ward A: every patient of the no-data alert of 2026-12-01 08:05 UTC has monitor data again ' +
          '(resumed: P1 at 2026-12-01 09:10 UTC; P2 at 2026-12-01 09:10 UTC; P3 at 2026-12-01 09:10 UTC; P4 at 2026-12-01 09:10 UTC)',
      ],
    ]);
  });

  it("a ward's alert of monitors that never sent since their re-admission says re-admitted, not enrolled", () => {
    const readmittedAt = (patientId: string, t: number): FeedCheck => ({
      patientId,
      state: {
        ...inWard('A'),
        monitoringEnd: { v: 'discharged', t: at(t - 1) },
        lastEnrolmentAt: at(t),
      } as PatientState,
      feed: { stale: true, since: at(t) },
    });
    const p = plan([], [readmittedAt('P1', 4), readmittedAt('P2', 3), readmittedAt('P3', 6)], 60);
    expect(p.alerts[0]!.summary).toContain("3 patients' monitors never sent, re-admitted from 2026-12-01 08:03 UTC (");
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

// Handing a plan's alerts to the pager (pageStaleFeeds): what may be stored as in force when an alert did not go.
// A mutation run of 2026-12-06 found none of this pinned down.
// Who of a ward alert's patients had data again while it was in force (2026-12-07): kept on the alert's own entry,
// for the board and the all-clear; ids and beds only.
describe("a ward alert's resumed patients", () => {
  const inBed = (ward: string, bed: string) =>
    ({ enrolment: { ward: { v: ward, t: 0 }, bed: { v: bed, t: 0 } } }) as unknown as PatientState;
  const back = (patientId: string, bed: string, since: number): FeedCheck => ({
    patientId,
    state: inBed('A', bed),
    feed: { stale: false, since: at(since) },
  });
  const alertA = wardAlertId('A', 0);

  it('a member whose data resumes is named on the alert in force, with its bed and its first reading back', () => {
    const p = plan(wardInForce('A', 0, ['P1', 'P2', 'P3']), [back('P2', '7', 22)], 23, false);
    expect(p.alerts).toEqual([]);
    expect(p.remove).toEqual(['P2']);
    expect(p.set.get(alertA)).toEqual({
      alertId: alertA,
      since: at(0),
      resumed: [{ patientId: 'P2', bed: '7', at: at(22) }],
    });
    // The next one is added after it, the list kept whole.
    const then = plan(
      [...wardInForce('A', 0, ['P1', 'P3']).map(([k, e]): [string, InForce] => [k, p.set.get(k) ?? e])],
      [{ patientId: 'P3', state: inWard('A'), feed: { stale: false, since: at(25) } }],
      26,
      false,
    );
    expect(then.set.get(alertA)?.resumed).toEqual([
      { patientId: 'P2', bed: '7', at: at(22) },
      { patientId: 'P3', at: at(25) },
    ]);
  });

  it('a member whose monitoring ended (a discharge) is not named as resumed', () => {
    const gone = { ...inBed('A', '7'), monitoringEnd: { v: 'discharged', t: at(20) } } as PatientState;
    const p = plan(
      wardInForce('A', 0, ['P1', 'P2', 'P3']),
      [{ patientId: 'P2', state: gone, feed: undefined }],
      23,
      false,
    );
    expect(p.remove).toEqual(['P2']);
    expect(p.set.has(alertA)).toBe(false);
  });

  it('keeps the newest 20, and lets go of a patient quiet again', () => {
    const ids = Array.from({ length: 22 }, (_, i) => `P${String(i).padStart(2, '0')}`);
    const p = plan(
      [...wardInForce('A', 0, [...ids, 'Q1'])],
      ids.map((id, i) => back(id, `B${i}`, 10 + i)),
      40,
      false,
    );
    const resumed = p.set.get(alertA)?.resumed ?? [];
    expect(resumed.map((r) => r.patientId)).toEqual(ids.slice(2));
    // P05 goes quiet again (past the ward's window: an alert of its own): no longer "resumed".
    const again = plan(
      [
        [alertA, p.set.get(alertA)!],
        ['Q1', { alertId: alertA, since: at(0) }],
      ],
      [check('P05', 'A', true, 41)],
      60,
      false,
    );
    expect(again.set.get('P05')?.alertId).toBe(`stale-feed|P05|${at(41)}`);
    expect(again.set.get(alertA)?.resumed?.map((r) => r.patientId)).toEqual(ids.slice(2).filter((id) => id !== 'P05'));
    // The last of the ward back: its all-clear says it names the last 20, not all who resumed.
    const clear = plan(
      [
        [alertA, p.set.get(alertA)!],
        ['Q1', { alertId: alertA, since: at(0) }],
      ],
      [back('Q1', 'Q', 50)],
      51,
    );
    expect(clear.alerts[0]!.summary).toContain('has monitor data again (the last 20 to resume: P03, bed B3 at ');
    expect(clear.alerts[0]!.summary).toContain('; Q1, bed Q at 2026-12-01 08:50 UTC)');
  });

  it("a member that moved to another ward is named with its new ward, not a bed of the alert's ward", () => {
    // 2026-12-07: P1 moved from ward A to the ICU, bed 3, and its monitor sent there: the all-clear of ward A read
    // "P1, bed 3", which a reader takes for bed 3 of ward A.
    const moved: FeedCheck = { patientId: 'P1', state: inBed('ICU', '3'), feed: { stale: false, since: at(18) } };
    const p = plan(wardInForce('A', 0, ['P1', 'P2']), [moved, back('P2', '5', 22)], 23);
    expect(p.alerts.map((a) => a.summary)).toEqual([
      'Data resumed, ward A: every patient of the no-data alert of 2026-12-01 08:00 UTC has monitor data again ' +
        '(resumed: P1, bed 3 of ward ICU at 2026-12-01 08:18 UTC; P2, bed 5 at 2026-12-01 08:22 UTC)',
    ]);
  });

  it('the all-clear names who resumed and when, and the list goes with the alert', () => {
    const inForce: [string, InForce][] = [
      [alertA, { alertId: alertA, since: at(0), resumed: [{ patientId: 'P1', bed: '4', at: at(20) }] }],
      ['P2', { alertId: alertA, since: at(0) }],
    ];
    const p = plan(inForce, [back('P2', '5', 22)], 23, false);
    expect(p.alerts.map((a) => a.summary)).toEqual([
      'Data resumed, ward A: every patient of the no-data alert of 2026-12-01 08:00 UTC has monitor data again ' +
        '(resumed: P1, bed 4 at 2026-12-01 08:20 UTC; P2, bed 5 at 2026-12-01 08:22 UTC)',
    ]);
    expect(p.remove.sort()).toEqual(['P2', alertA].sort());
    expect(p.set.size).toBe(0);
  });

  // A mutation run of 2026-12-07 found these not pinned down.
  it('the last resumed patient quiet again leaves the list empty: the alert is stored without it', () => {
    const inForce: [string, InForce][] = [
      [alertA, { alertId: alertA, since: at(0), resumed: [{ patientId: 'P05', at: at(20) }] }],
      ['Q1', { alertId: alertA, since: at(0) }],
    ];
    const p = plan(inForce, [check('P05', 'A', true, 41)], 60, false);
    expect(p.set.get(alertA)).toEqual({ alertId: alertA, since: at(0) });
    expect(p.set.get(alertA)).not.toHaveProperty('resumed');
  });

  it('two back at the same minute, one kept from an earlier sweep, are in the order of their ids', () => {
    const inForce: [string, InForce][] = [
      [alertA, { alertId: alertA, since: at(0), resumed: [{ patientId: 'P2', bed: '2', at: at(22) }] }],
      ['P1', { alertId: alertA, since: at(0) }],
      ['P3', { alertId: alertA, since: at(0) }],
    ];
    const p = plan(inForce, [back('P1', '1', 22)], 23, false);
    expect(p.set.get(alertA)?.resumed?.map((r) => r.patientId)).toEqual(['P1', 'P2']);
  });

  it("a patient back is named on its own ward's alert only, not on another in force", () => {
    const alertB = wardAlertId('B', 0);
    const p = plan(
      [...wardInForce('A', 0, ['P1', 'P2']), ...wardInForce('B', 0, ['P3', 'P4'])],
      [back('P1', '1', 22)],
      23,
      false,
    );
    expect(p.set.get(alertA)?.resumed).toEqual([{ patientId: 'P1', bed: '1', at: at(22) }]);
    expect(p.set.has(alertB)).toBe(false);
  });

  // 2026-12-07: a ward's all-clear said "every patient ... has monitor data again" when one of them had been
  // discharged and re-admitted between two sweeps with no monitor data since (a patient's own alert says so).
  it('a member re-admitted with no monitor data is not said to have data again in the ward all-clear', () => {
    const readmitted = {
      ...inBed('A', '3'),
      lastMonitorAt: at(0),
      monitoringEnd: { v: 'discharged', t: at(20) },
      lastEnrolmentAt: at(21),
    } as PatientState;
    const p = plan(
      wardInForce('A', 0, ['P1', 'P2']),
      [back('P1', '1', 22), { patientId: 'P2', state: readmitted, feed: { stale: false, since: at(21) } }],
      23,
      false,
    );
    expect(p.alerts.map((a) => a.summary)).toEqual([
      'No-data alert closed, ward A: every patient of the no-data alert of 2026-12-01 08:00 UTC has monitor data ' +
        'again or has left monitoring (resumed: P1, bed 1 at 2026-12-01 08:22 UTC)',
    ]);
  });
});

describe('handing the plan to the pager', () => {
  const quiet = (patientId: string, since: number): FeedCheck => ({
    patientId,
    state: undefined,
    feed: { stale: true, since: at(since) },
  });
  const resumed = (patientId: string, since: number): FeedCheck => ({
    ...quiet(patientId, since),
    feed: { stale: false, since: at(since) },
  });
  // P1's alert (of minute 0) is in force and its data resumed; P2 has gone quiet: an all-clear, then an alert.
  const inForce = new Map<string, InForce>([['P1', { alertId: `stale-feed|P1|${at(0)}`, since: at(0) }]]);
  const thePlan = () =>
    planStaleFeeds(inForce, [resumed('P1', 30), quiet('P2', 10)], DEFAULT_PAGING, at(31), false, 'UTC');
  const failing = (alertId: string, error: unknown) => async (a: { alertId: string }) => {
    if (a.alertId === alertId) throw error;
  };

  it('the plan clears P1 and raises P2, in that order', () => {
    expect(thePlan().alerts.map((a) => a.alertId)).toEqual([
      `stale-feed|P1|${at(0)}|cleared`,
      `stale-feed|P2|${at(10)}`,
    ]);
  });

  it('an alert whose pages are stored but unsent (SNS down) counts as handed over: in force, not failed', async () => {
    // Counted failed, it was not recorded in force: data resuming before the next sweep then cleared nothing, and the
    // "no data" page, open, went on up its ladder.
    const deferred = new SendDeferred(new Error('SNS down'));
    const paged = await pageStaleFeeds(thePlan(), inForce, failing(`stale-feed|P2|${at(10)}`, deferred));
    expect(paged.failed).toEqual([]);
    expect(paged.deferred).toBe(deferred);
    expect([...paged.set.keys()]).toEqual(['P2']);
    expect(paged.remove).toEqual(['P1']);
  });

  it('an outage stops the handing over: the alert it stopped at and those after change nothing in force', async () => {
    // The alert the outage stopped at was never stored: recorded in force, it was never raised again (nobody paged).
    const outage = new Error('store down');
    const stoppedAtRaise = await pageStaleFeeds(
      thePlan(),
      inForce,
      failing(`stale-feed|P2|${at(10)}`, outage),
      () => true,
    );
    expect(stoppedAtRaise.stopped).toBe(outage);
    expect([...stoppedAtRaise.set.keys()]).toEqual([]);
    expect(stoppedAtRaise.remove).toEqual(['P1']);
    const stoppedAtClear = await pageStaleFeeds(
      thePlan(),
      inForce,
      failing(`stale-feed|P1|${at(0)}|cleared`, outage),
      () => true,
    );
    expect([...stoppedAtClear.set.keys()]).toEqual([]);
    expect(stoppedAtClear.remove).toEqual([]);
  });

  it('an all-clear that failed leaves its alert in force, to be cleared again at the next sweep', async () => {
    // Let go, the open "no data" page was never resolved: no later sweep planned its all-clear again.
    const clear = `stale-feed|P1|${at(0)}|cleared`;
    const paged = await pageStaleFeeds(thePlan(), inForce, failing(clear, new Error('page item does not decode')));
    expect(paged.failed.map((f) => f.alertId)).toEqual([clear]);
    expect(paged.remove).toEqual([]);
    expect([...paged.set.keys()]).toEqual(['P2']);
  });
});

// 2026-12-07: a ward's no-data alert whose monitors that never sent were of both an enrolment and a re-admission said
// "enrolment or re-admission" ("enrolled or re-admitted from"), 12-13 characters more than either alone: the shortest
// ward (three patients of short ids) took two SMS parts where every other wording took one, and a longer ward's SMS,
// cut to two parts at a word, lost patients from its list that the other wordings kept.
describe("the length of a ward's no-data alert whose quiet monitors mix enrolments and re-admissions", () => {
  type Kind = 'stopped' | 'enrolment' | 're-admission';
  const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/St_Johns'];
  const LINK = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/ack/U8hxA2w8fIT0AW94a1clCg';
  /** A patient quiet since minute 10: its monitor stopped then, or never sent since its enrolment or re-admission. */
  const quiet = (patientId: string, ward: string, bed: string | undefined, kind: Kind): FeedCheck => {
    const enrolment = { ward: { v: ward, t: 0 }, ...(bed ? { bed: { v: bed, t: 0 } } : {}) };
    const state = {
      enrolment,
      ...(kind === 'stopped' ? { lastMonitorAt: at(10) } : {}),
      ...(kind === 're-admission' ? { lastMonitorAt: at(1), monitoringEnd: { v: 'discharged', t: at(5) } } : {}),
    } as unknown as PatientState;
    return { patientId, state, feed: { stale: true, since: at(10) } };
  };
  const summary = (ward: string, zone: string, ps: { id: string; bed?: string; kind: Kind }[]) => {
    const p = planStaleFeeds(
      new Map(),
      ps.map((x) => quiet(x.id, ward, x.bed, x.kind)),
      DEFAULT_PAGING,
      at(40),
      true,
      zone,
    );
    expect(p.alerts).toHaveLength(1);
    return p.alerts[0]!.summary;
  };
  const parts = (text: string, ackUrl?: string) =>
    smsSegments(
      pageSms({
        page: { summary: text, level: 0, round: 0 } as PageMessage['page'],
        role: 'bedside nurse',
        reason: 'triggered',
        ...(ackUrl ? { ackUrl } : {}),
      }),
    );
  /** The same ward with every monitor that never sent of one kind: the wordings that are not mixed. */
  const unmixed = (ps: { id: string; bed?: string; kind: Kind }[]) =>
    (['enrolment', 're-admission'] as const).map((k) => ps.map((x) => (x.kind === 'stopped' ? x : { ...x, kind: k })));

  it('takes one SMS part for three patients of short ids, as every other wording does', () => {
    const three = (kinds: Kind[]) =>
      summary(
        'H4',
        'UTC',
        kinds.map((kind, i) => ({ id: `P${i + 1}`, ...(i < 2 ? { bed: String(i + 1) } : {}), kind })),
      );
    for (const kinds of [
      ['enrolment', 're-admission', 're-admission'],
      ['stopped', 'enrolment', 're-admission'],
      ['re-admission', 'stopped', 'enrolment'],
    ] as Kind[][]) {
      const text = three(kinds);
      expect(parts(text), text).toBe(1);
      for (const p of ['P1, bed 1', 'P2, bed 2', 'P3']) expect(text).toContain(p);
    }
  });

  it('is never longer than the same ward worded without the mix, up to the longest ids, beds and wards allowed', () => {
    const label = (max: number) => fc.string({ unit: fc.constantFrom(...'AZaz09-. '), minLength: 1, maxLength: max });
    const patient = fc.record({
      id: fc.string({ unit: fc.constantFrom(...'AZaz09._:-'), minLength: 1, maxLength: 64 }),
      bed: fc.option(label(32), { nil: undefined }),
      kind: fc.constantFrom<Kind>('stopped', 'enrolment', 're-admission'),
    });
    fc.assert(
      fc.property(
        label(32).map((w) => w.trim() || 'W'),
        fc.constantFrom(...ZONES),
        fc.uniqueArray(patient, { minLength: 3, maxLength: 25, selector: (p) => p.id }),
        (ward, zone, ps) => {
          const kinds = new Set(ps.map((p) => p.kind));
          fc.pre(kinds.has('enrolment') && kinds.has('re-admission'));
          const mixed = summary(ward, zone, ps);
          const others = unmixed(ps).map((o) => summary(ward, zone, o));
          expect(mixed.length).toBeLessThanOrEqual(Math.max(...others.map((o) => o.length)));
          for (const ackUrl of [LINK, undefined])
            expect(parts(mixed, ackUrl)).toBeLessThanOrEqual(Math.max(...others.map((o) => parts(o, ackUrl))));
        },
      ),
    );
    // The worst case: 25 patients (20 named), ids of 64 characters, beds and the ward of 32, the zone an offset.
    const ward = 'W'.repeat(32);
    const ps = Array.from({ length: 25 }, (_, i) => ({
      id: `${String(i).padStart(2, '0')}${'x'.repeat(62)}`,
      bed: 'B'.repeat(32),
      kind: (['stopped', 'enrolment', 're-admission'] as const)[i % 3]!,
    }));
    const mixed = summary(ward, 'Asia/Kolkata', ps);
    for (const o of unmixed(ps).map((x) => summary(ward, 'Asia/Kolkata', x))) {
      expect(mixed.length).toBeLessThanOrEqual(o.length);
      expect(parts(mixed, LINK)).toBe(parts(o, LINK));
    }
  });
});
