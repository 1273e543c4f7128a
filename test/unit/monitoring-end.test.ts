// The end of a patient's monitoring (`monitoringEnd`, a discharge): the stale-feed watch stops, in whatever order
// the discharge and the data around it arrive, and starts again at a re-admission; grading goes on throughout.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoardChanges, changeMonitoring, type MonitoringDeps } from '#app/monitoring.ts';
import { planStaleFeeds } from '#app/stale-feed.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { DEFAULT_PAGING, MONITOR_RESTARTS_AFTER_MINUTES, feedStatus, monitoringEnded } from '#domain/paging.ts';
import { ENROLMENTS_KEPT, monitoringFields } from '#domain/reducer.ts';
import { permutation } from '#test/support/arbitraries.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { MemoryQueue, MemoryTokenStore } from '#test/support/port-fakes.ts';
import { run } from '#test/support/run.ts';

const MIN = 60_000;
const at = (m: number) => T0 + m * MIN;
const ehr = (m: DeviceMessage): DeviceMessage => ({ ...m, source: { deviceId: 'adt', kind: 'ehr' } });
const discharge = (minutes: number, reason: 'discharged' | 'transferred' | 'other' = 'discharged') =>
  ehr(msg('P', minutes, { monitoringEnd: { reason } }));
const vitals = (minutes: number, extra: DeviceMessage['vitals'] = {}) =>
  msg('P', minutes, { vitals: { heartRate: 80, ...extra } });
const feed = (messages: DeviceMessage[], now: number) => feedStatus(run(messages).state!, at(now), DEFAULT_PAGING);

/** Up to 2 discharges, 5 enrolments and `readings` monitor readings at minutes 1 to `last`. */
const endsAndEnrolments = (last: number, readings: number) => {
  const minute = fc.integer({ min: 1, max: last });
  return fc.record({
    ends: fc.array(minute, { minLength: 1, maxLength: 2 }),
    enrolments: fc.array(minute, { maxLength: 5 }),
    readings: fc.array(minute, { maxLength: readings }),
  });
};
/** Those messages, after an enrolment at minute 0 (before every end). */
const messagesOf = (p: { ends: number[]; enrolments: number[]; readings: number[] }) => [
  ehr(enrol('P', 0)),
  ...p.ends.map((e) => discharge(e)),
  ...p.enrolments.map((e, i) => ehr(msg('P', e, { enrolment: { bed: `H4-${i}` } }))),
  ...p.readings.map((r) => vitals(r)),
];

describe('the end of monitoring', () => {
  it('stops the stale-feed watch of an enrolled patient, and says when and why', () => {
    const before = [ehr(enrol('P', 0)), vitals(1)];
    expect(feed(before, 60)).toEqual({ stale: true, since: at(1) });
    const after = [...before, discharge(30, 'transferred')];
    expect(feed(after, 60)).toBeUndefined();
    expect(monitoringEnded(run(after).state!)).toEqual({ v: 'transferred', t: at(30) });
  });

  it('is not undone by the monitor still sending within the hour after it, nor by the bed and ward it sends', () => {
    const m = [ehr(enrol('P', 0)), discharge(30), vitals(35), vitals(88), msg('P', 89, { enrolment: { bed: 'H4-1' } })];
    expect(feed(m, 200)).toBeUndefined();
    // Grading goes on: a fever after the discharge is still graded.
    expect(run([...m, vitals(40, { temperatureC: 39.2 })]).last.crsGrade).toBe(1);
  });

  it('is undone by a re-admission: an enrolment from the EHR or charting after it, or monitor data an hour after', () => {
    const ended = [ehr(enrol('P', 0)), vitals(5), discharge(30)];
    // The EHR's new stay names the bed and ward only: the watch restarts, timed from it, not from the last stay.
    const byEhr = [...ended, ehr(msg('P', 600, { enrolment: { bed: 'H4-7', ward: 'H4' } }))];
    expect(monitoringEnded(run(byEhr).state!)).toBeUndefined();
    expect(feed(byEhr, 605)).toEqual({ stale: false, since: at(600) });
    expect(feed(byEhr, 615)).toEqual({ stale: true, since: at(600) });
    expect(feed([...byEhr, vitals(606)], 620)).toEqual({ stale: false, since: at(606) });
    // A monitor sending an hour after the discharge: the patient is monitored (still, or again).
    expect(feed([...ended, vitals(90)], 100)).toEqual({ stale: false, since: at(90) });
    expect(feed([...ended, vitals(89)], 100)).toBeUndefined();
    // A re-enrolment observed before the end (an old chart entry arriving late) undoes nothing.
    expect(feed([...ended, ehr(msg('P', 20, { enrolment: { weightKg: 71 } }))], 60)).toBeUndefined();
  });

  it('is undone by a re-admission observed at the instant of the end, in either order and even in one message', () => {
    // A discharge cancelled in the minute it was charted (HL7 times to the minute), a transfer whose next stay starts
    // when the last one ends: the end and the re-admission cannot be told apart, and the patient stays watched.
    const ended = [ehr(enrol('P', 0)), vitals(5)];
    const cancelled = ehr(msg('P', 30, { enrolment: { bed: 'H4-7', ward: 'H4' } }));
    for (const order of [
      [discharge(30), cancelled],
      [cancelled, discharge(30)],
    ]) {
      expect(monitoringEnded(run([...ended, ...order]).state!)).toBeUndefined();
      expect(feed([...ended, ...order], 45)).toEqual({ stale: true, since: at(30) });
    }
    const both = ehr(
      msg('P', 30, { monitoringEnd: { reason: 'transferred' }, enrolment: { bed: 'H5-2', ward: 'H5' } }),
    );
    expect(feed([...ended, both], 45)).toEqual({ stale: true, since: at(30) });
    // A discharge charted after an enrolment of the same instant was already graded ends it only when observed later.
    expect(feed([...ended, cancelled, discharge(31)], 45)).toBeUndefined();
  });

  it('leaves the same watch whatever order the discharge, the re-enrolment and the data arrive in', () => {
    const parts = fc.record({
      end: fc.integer({ min: 1, max: 200 }),
      reEnrol: fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined }),
      readings: fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 4 }),
      reasons: fc.constantFrom('discharged', 'transferred', 'other'),
    });
    fc.assert(
      fc.property(parts, fc.array(fc.integer(), { minLength: 8, maxLength: 8 }), (p, keys) => {
        const messages = [
          ehr(enrol('P', 0)),
          discharge(p.end, p.reasons),
          ...(p.reEnrol === undefined ? [] : [ehr(msg('P', p.reEnrol, { enrolment: { bed: 'H4-9' } }))]),
          ...p.readings.map((r) => vitals(r)),
        ];
        const shuffled = permutation(messages.length, keys).map((i) => messages[i]!);
        const a = run(messages).state!;
        const b = run(shuffled).state!;
        expect(feedStatus(b, at(300), DEFAULT_PAGING)).toEqual(feedStatus(a, at(300), DEFAULT_PAGING));
        expect(monitoringEnded(b)).toEqual(monitoringEnded(a));
        const watched =
          (p.reEnrol !== undefined && p.reEnrol >= p.end) ||
          p.readings.some((r) => r >= p.end + MONITOR_RESTARTS_AFTER_MINUTES);
        expect(feedStatus(a, at(300), DEFAULT_PAGING) !== undefined).toBe(watched);
      }),
    );
  });

  // 2026-12-07: readmittedAt (the re-admission a move after it does not restart) kept only the earliest enrolment
  // after the end in force when it arrived: a discharge charted after the re-admission and a later move counted the
  // watch from the move (the latest enrolment), in that order only. No grade depends on it.
  it('counts the watch from the re-admission, not a later move, whichever of them the discharge arrives after', () => {
    const stay = [ehr(enrol('P', 0)), vitals(5)];
    const readmit = ehr(msg('P', 60, { enrolment: { bed: 'H4-7', ward: 'H4' } }));
    const move = ehr(msg('P', 90, { enrolment: { bed: 'H5-2', ward: 'H5' } }));
    for (const order of [
      [discharge(30), readmit, move],
      [readmit, discharge(30), move],
      [readmit, move, discharge(30)],
      [move, readmit, discharge(30)],
    ]) {
      const state = run([...stay, ...order]).state!;
      expect(state.readmittedAt).toBe(at(60));
      expect(feedStatus(state, at(100), DEFAULT_PAGING)).toEqual({ stale: true, since: at(60) });
    }
  });

  // The bound of what a state keeps (ENROLMENTS_KEPT): beyond it a discharge charted after the moves counts from the
  // earliest it kept, the same in every order the moves came in; exact when the discharge came first, as before.
  it('past ENROLMENTS_KEPT enrolments after the end: exact when the end came first, else from the earliest kept', () => {
    const moves = Array.from({ length: ENROLMENTS_KEPT + 3 }, (_, i) =>
      ehr(msg('P', 60 + i, { enrolment: { bed: `H4-${i}` } })),
    );
    const stay = [ehr(enrol('P', 0)), vitals(5)];
    expect(run([...stay, discharge(30), ...moves]).state!.readmittedAt).toBe(at(60));
    for (const order of [moves, [...moves].reverse()])
      expect(run([...stay, ...order, discharge(30)]).state!.readmittedAt).toBe(at(63));
    // Up to the bound, every order finds the re-admission.
    const kept = moves.slice(0, ENROLMENTS_KEPT);
    for (const order of [kept, [...kept].reverse()])
      expect(run([...stay, ...order, discharge(30)]).state!.readmittedAt).toBe(at(60));
    // A move older than those kept, folded in again, changes nothing: the very same array, so that the board drops
    // it from its waiting changes once graded (until 2026-12-07 a copy: held and folded in again for an hour).
    const state = run([...stay, discharge(30), ...moves]).state!;
    for (const m of moves)
      expect(monitoringFields(state, m, Date.parse(m.observedAt)).enrolmentsSinceEnd).toBe(state.enrolmentsSinceEnd);
    // One at the instant of the end, after them: the re-admission, though older than every one kept.
    expect(run([ehr(msg('P', 30, { enrolment: { bed: 'H4-0' } }))], undefined, state).state!.readmittedAt).toBe(at(30));
  });

  // Pinned by a mutation run (2026-12-07): a state stored before the enrolments since the end were kept.
  it('in a state stored before the enrolments were kept, an end at the instant of an enrolment leaves it re-admitted', () => {
    const readmit = ehr(msg('P', 60, { enrolment: { bed: 'H4-7' } }));
    const move = ehr(msg('P', 90, { enrolment: { bed: 'H5-2' } }));
    const stored = { ...run([ehr(enrol('P', 0)), discharge(30), readmit, move]).state!, enrolmentsSinceEnd: [] };
    expect(stored.readmittedAt).toBe(at(60));
    // A later end charted at the re-admission's minute: re-admitted at it, not at the move.
    expect(run([discharge(60)], undefined, stored).state!.readmittedAt).toBe(at(60));
    // Stored before readmittedAt too, an end at the move's minute: re-admitted at the move, still watched.
    expect(run([discharge(90)], undefined, { ...stored, readmittedAt: undefined }).state!.readmittedAt).toBe(at(90));
  });

  it('keeps the same re-admission and watch whatever order ends, re-admissions, moves and data arrive in', () => {
    fc.assert(
      fc.property(endsAndEnrolments(200, 3), fc.array(fc.integer(), { minLength: 11, maxLength: 11 }), (p, keys) => {
        const messages = messagesOf(p);
        const shuffled = permutation(messages.length, keys).map((i) => messages[i]!);
        const a = run(messages).state!;
        const b = run(shuffled).state!;
        const end = Math.max(...p.ends);
        // The first enrolment at or after the latest end, the first one (minute 0) being before every end.
        const first = p.enrolments.filter((e) => e >= end).sort((x, y) => x - y)[0];
        expect(a.readmittedAt).toBe(first === undefined ? undefined : at(first));
        expect(b.readmittedAt).toBe(a.readmittedAt);
        for (const now of [150, 300])
          expect(feedStatus(b, at(now), DEFAULT_PAGING)).toEqual(feedStatus(a, at(now), DEFAULT_PAGING));
        expect(monitoringEnded(b)).toEqual(monitoringEnded(a));
      }),
    );
  });

  // Pinned by a mutation run (2026-12-07): minutes so few that enrolments tie with the end and with each other.
  it('keeps each enrolment at or after the end once, in time order, in any order, an enrolment at the end among them', () => {
    fc.assert(
      fc.property(endsAndEnrolments(6, 0), fc.array(fc.integer(), { minLength: 8, maxLength: 8 }), (p, keys) => {
        const messages = messagesOf(p);
        const state = run(permutation(messages.length, keys).map((i) => messages[i]!)).state!;
        const end = Math.max(...p.ends);
        const since = [...new Set(p.enrolments.filter((e) => e >= end))].sort((x, y) => x - y);
        expect(state.enrolmentsSinceEnd).toEqual(since.map(at));
        expect(state.readmittedAt).toBe(since.length === 0 ? undefined : at(since[0]!));
        // Folding in again a message it holds changes nothing: the very same array (the board's waiting changes).
        for (const m of messages)
          expect(monitoringFields(state, m, Date.parse(m.observedAt)).enrolmentsSinceEnd).toBe(
            state.enrolmentsSinceEnd,
          );
      }),
    );
  });

  it('closes a "no data" alert in force with a page that says the monitoring ended, not that data resumed', () => {
    const state = run([ehr(enrol('P', 0)), discharge(30)]).state!;
    const alertId = `stale-feed|P|${at(0)}`;
    const plan = planStaleFeeds(
      new Map([['P', { alertId, since: at(0) }]]),
      [{ patientId: 'P', state, feed: feedStatus(state, at(40), DEFAULT_PAGING) }],
      DEFAULT_PAGING,
      at(40),
      true,
      'UTC',
    );
    expect(plan.alerts).toEqual([
      {
        alertId: `${alertId}|cleared`,
        patientId: 'P',
        subject: 'stale-feed',
        cleared: true,
        summary:
          'Monitoring ended, patient P, bed H4-P: discharged at 2026-01-10 08:30 UTC; the no-data alert is closed',
      },
    ]);
    expect(plan.remove).toEqual(['P']);
  });

  it("closes a ward's no-data alert whose patients resumed or were discharged, saying so", () => {
    const wardAlert = `stale-feed|ward H4|${at(0)}`;
    const inForce = new Map([
      [wardAlert, { alertId: wardAlert, since: at(0) }],
      ...['A', 'B', 'C'].map((p): [string, { alertId: string; since: number }] => [
        p,
        { alertId: wardAlert, since: at(0) },
      ]),
    ]);
    const state = (p: string, ...more: DeviceMessage[]) =>
      run([ehr({ ...enrol(p, 0), patientId: p }), ...more.map((m) => ({ ...m, patientId: p }))]).state!;
    const check = (p: string, s: ReturnType<typeof state>) => ({
      patientId: p,
      state: s,
      feed: feedStatus(s, at(40), DEFAULT_PAGING),
    });
    const resumed = ['A', 'B', 'C'].map((p) => check(p, state(p, vitals(39))));
    const summary = (checks: typeof resumed) =>
      planStaleFeeds(inForce, checks, DEFAULT_PAGING, at(40), true, 'UTC').alerts.map((a) => a.summary);
    expect(summary(resumed)).toEqual([
      'Data resumed, ward H4: every patient of the no-data alert of 2026-01-10 08:00 UTC has monitor data again ' +
        '(resumed: A, bed H4-A at 2026-01-10 08:39 UTC; B, bed H4-B at 2026-01-10 08:39 UTC; C, bed H4-C at 2026-01-10 08:39 UTC)',
    ]);
    expect(summary([check('A', state('A', discharge(30))), ...resumed.slice(1)])).toEqual([
      // The discharged patient is not named as resumed.
      'No-data alert closed, ward H4: every patient of the no-data alert of 2026-01-10 08:00 UTC has monitor data again or has left monitoring ' +
        '(resumed: B, bed H4-B at 2026-01-10 08:39 UTC; C, bed H4-C at 2026-01-10 08:39 UTC)',
    ]);
  });

  it('is graded like any message: an assessment, and no grade change of its own', () => {
    const r = run([ehr(enrol('P', 0)), vitals(1, { temperatureC: 39 }), discharge(30)]);
    expect(r.assessments).toHaveLength(3);
    expect(r.last.crsGrade).toBe(1);
    expect(r.notifications.map((n) => n.toGrade)).toEqual([1]);
  });
});

describe("the board's end and resumption, while the one sent before is still waiting to be graded", () => {
  /**
   * A server whose grading runs only when the test says (grade()): what the board accepted waits in the queue
   * meanwhile, as it does behind a backlog or a message being retried. Its clock is the test's.
   */
  function server() {
    const queue = new MemoryQueue();
    let graded = 0;
    let state = run([ehr(enrol('P', 0)), vitals(1)]).state!;
    const s = { now: at(20) };
    const deps: MonitoringDeps = {
      ingest: { queue, tokens: new MemoryTokenStore(), now: () => s.now },
      changes: new BoardChanges(),
      state: (id) => (id === 'P' ? state : undefined),
      timeZone: 'UTC',
    };
    const request = (action: 'end' | 'resume', body: Record<string, unknown>) =>
      changeMonitoring(action, 'P', body, deps);
    const grade = () => {
      state = run(
        queue.messages.slice(graded).map((q) => q.message),
        undefined,
        state,
      ).state!;
      graded = queue.messages.length;
    };
    return { s, queue, request, grade, state: () => state };
  }
  const end = (reason: string, by: string) => ({ reason, by });
  const errors = (a: { body: unknown }) => (a.body as { errors: string[] }).errors;

  it('takes one of two ends sent together and answers the other that the monitoring has already ended', async () => {
    const { queue, request, grade, state } = server();
    const [a, b] = await Promise.all([
      request('end', end('discharged', 'Nurse A')),
      request('end', end('transferred', 'Nurse B')),
    ]);
    expect([a.status, b.status]).toEqual([202, 409]);
    expect(errors(b)).toEqual([
      "monitoringEnd: patient P's monitoring has already ended (discharged at 2026-01-10 08:20 UTC); resume it first to give another reason",
    ]);
    // One message waits: the trail will hold one end, by the one who was answered 202, with their reason.
    expect(queue.messages.map((q) => [q.sender, q.message.monitoringEnd])).toEqual([
      ['board (by Nurse A)', { reason: 'discharged' }],
    ]);
    grade();
    expect(monitoringEnded(state())).toEqual({ v: 'discharged', t: at(20) });
  });

  it('answers an end sent after an accepted one, before it is graded, as it will once it is; and takes a resumption', async () => {
    const { s, queue, request, grade } = server();
    expect((await request('end', end('discharged', 'Nurse A'))).status).toBe(202);
    s.now = at(21);
    const again = await request('end', end('other', 'Nurse B'));
    expect(again.status).toBe(409);
    expect(errors(again)[0]).toMatch(/already ended \(discharged at 2026-01-10 08:20 UTC\)/);
    // A resumption of the end still waiting is taken (the end is known), and an end after it is taken in turn.
    expect((await request('resume', { by: 'Nurse B' })).status).toBe(202);
    s.now = at(22);
    expect((await request('end', end('transferred', 'Nurse C'))).status).toBe(202);
    expect(queue.messages.map((q) => q.sender)).toEqual([
      'board (by Nurse A)',
      'board (by Nurse B)',
      'board (by Nurse C)',
    ]);
    grade();
    s.now = at(23);
    expect(errors(await request('end', end('other', 'Nurse D')))[0]).toMatch(/already ended \(transferred at/);
  });

  it('forgets an end that was refused at the door, and one not graded within the hour (the graded state decides)', async () => {
    const { s, queue, request } = server();
    queue.failWith = new Error('disk full');
    expect((await request('end', end('discharged', 'Nurse A'))).status).toBe(503);
    queue.failWith = undefined;
    expect((await request('end', end('discharged', 'Nurse A'))).status).toBe(202);
    s.now = at(20 + 59);
    expect((await request('end', end('other', 'Nurse B'))).status).toBe(409);
    s.now = at(20 + 60);
    expect((await request('end', end('other', 'Nurse B'))).status).toBe(202);
  });
});

describe("the board's end and resumption (pinned by a mutation run)", () => {
  function deps(state = run([ehr(enrol('P', 0)), vitals(1)]).state!, now = at(20)) {
    const queue = new MemoryQueue();
    const d: MonitoringDeps = {
      ingest: { queue, tokens: new MemoryTokenStore(), now: () => now },
      changes: new BoardChanges(),
      state: (id) => (id === 'P' ? state : undefined),
      timeZone: 'UTC',
    };
    return { queue, d };
  }

  it('refuses a field an end does not take (a bed), naming it, and queues nothing', async () => {
    const { queue, d } = deps();
    const end = await changeMonitoring('end', 'P', { reason: 'discharged', by: 'Nurse A', bed: '12' }, d);
    expect(end.status).toBe(400);
    expect(JSON.stringify(end.body)).toMatch(/bed/);
    expect(queue.messages).toHaveLength(0);
  });

  it('answers 503 with Retry-After when the queue or the patient directory fails: nothing was accepted', async () => {
    const { queue, d } = deps();
    queue.failWith = new Error('disk full');
    const down = await changeMonitoring('end', 'P', { reason: 'discharged', by: 'Nurse A' }, d);
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toMatch(/^\d+$/);
    queue.failWith = undefined;
    d.ingest.maxPatients = 10;
    d.ingest.patients = {
      lookup: () => Promise.reject(new Error('throttled')),
      admitNew: () => ({ ok: true, release: () => undefined }),
    };
    const directory = await changeMonitoring('end', 'P', { reason: 'discharged', by: 'Nurse A' }, d);
    expect(directory.status).toBe(503);
    expect(directory.headers['retry-after']).toMatch(/^\d+$/);
    expect(queue.messages).toHaveLength(0);
  });

  it('refuses a second end while the first waits, when an earlier end of the same reason was graded and resumed', async () => {
    // Discharged at 5, re-admitted at 10 (both graded); the board ends it again at 20 and again at 21.
    const state = run([ehr(enrol('P', 0)), vitals(1), discharge(5), ehr(enrol('P', 10))]).state!;
    expect(monitoringEnded(state)).toBeUndefined();
    const { queue, d } = deps(state);
    expect((await changeMonitoring('end', 'P', { reason: 'discharged', by: 'Nurse A' }, d)).status).toBe(202);
    const again = await changeMonitoring('end', 'P', { reason: 'discharged', by: 'Nurse B' }, d);
    expect(again.status).toBe(409);
    expect(queue.messages).toHaveLength(1);
  });

  // Pinned by a mutation run (2026-12-07): the board folds its waiting changes in with the enrolments the state kept.
  it('folds a waiting discharge into the enrolments kept, and a waiting move only they would hold', () => {
    const graded = (minutes: number[]) =>
      run([
        ehr(enrol('P', 0)),
        discharge(30),
        ...minutes.map((m, i) => ehr(msg('P', m, { enrolment: { bed: `H4-${i}` } }))),
      ]).state!;
    // Moves at 70 and 90 after the re-admission at 60: a discharge at 65 waiting counts the watch from the move at 70.
    const changes = new BoardChanges();
    changes.accepted(discharge(65), at(100));
    expect(changes.withWaiting(graded([60, 70, 90]), at(100)).readmittedAt).toBe(at(70));
    // The move at 70 waiting too: not yet graded, though it moves neither the re-admission nor the latest enrolment.
    const waiting = new BoardChanges();
    waiting.accepted(ehr(msg('P', 70, { enrolment: { bed: 'H4-9' } })), at(100));
    waiting.accepted(discharge(65), at(100));
    expect(waiting.withWaiting(graded([60, 90]), at(100)).readmittedAt).toBe(at(70));
  });

  it("runs a patient's next request after one that failed, with its own answer", async () => {
    const changes = new BoardChanges();
    const failed = changes.inTurn('P', () => Promise.reject(new Error('state unreadable')));
    const next = changes.inTurn('P', () => Promise.resolve('answered'));
    await expect(failed).rejects.toThrow('state unreadable');
    await expect(next).resolves.toBe('answered');
  });
});
