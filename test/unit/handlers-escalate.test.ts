// The escalate Lambda and its parts: escalation timers on SQS (a delay up to the due time, at most 15 minutes a
// hop), the page store that sets them, the handler that ticks the pager when a timer is due and puts back one that
// is not, the minute schedule that ticks and sweeps for stale monitor feeds; and the sweep itself, which raises
// the "no data" alert once and clears it once.
import { randomBytes } from 'node:crypto';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SQSRecord } from 'aws-lambda';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager, SendDeferred, type SetAside } from '#app/pager.ts';
import type { AlertInput } from '#domain/paging.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { DEFAULT_PAGING, pagesForNotification, type PageableNotification, type Silence } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import type { PageMessage } from '#ports';
import { SqsTimer, delaySeconds, withTimers } from '#adapters/aws/sqs-timer.ts';
import { sweepStaleFeeds, type SweepDeps } from '#adapters/aws/stale-feed-sweep.ts';
import { errorName, pagingMetrics, telemetry, withoutRecordErrors, type Telemetry } from '#adapters/aws/telemetry.ts';
import { captureOutput, metricSum, quiet, sqsEvent } from '#test/support/lambda-events.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { sweepFakes } from '#test/support/sweep.ts';

const sqs = mockClient(SQSClient);
afterAll(() => sqs.restore());
const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;

type HandlerModule = typeof import('#functions/escalate/handler.ts');
let mod: HandlerModule;
let live: Telemetry;
beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  process.env.CRS_ESCALATION_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers';
  mod = await import('#functions/escalate/handler.ts');
  live = telemetry('escalate');
});

let now = T;
beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
  now = T;
});

const timer = () => new SqsTimer(new SQSClient({ region: 'eu-west-1' }), 'https://q/timers', () => now);
const sentTimers = () =>
  sqs.commandCalls(SendMessageCommand).map((c) => ({
    delay: c.args[0].input.DelaySeconds,
    body: JSON.parse(c.args[0].input.MessageBody!) as { wakeAt: number },
  }));

/** A CRS 2 grade change of P-1 paged to hematology. */
const notification = (id: string): PageableNotification => ({
  notificationId: id,
  patientId: 'P-1',
  condition: 'crs',
  kind: 'escalation',
  toGrade: 2,
  teams: ['hematology'],
  summary: 's',
});

describe('escalation timers', () => {
  it('wait until the due time, rounded up, at most the 15 minutes SQS allows', () => {
    expect(delaySeconds(T + 4_001, T)).toBe(5);
    expect(delaySeconds(T - 10, T)).toBe(0);
    expect(delaySeconds(T + 3_600_000, T)).toBe(900);
  });

  it('are set for every level stored before its send, and for the end of a silence', async () => {
    const store = withTimers(new MemoryPageStore(), timer(), () => undefined);
    const t = pagesForNotification(
      {
        notificationId: 'crs|P-1|m1',
        patientId: 'P-1',
        condition: 'crs',
        kind: 'escalation',
        toGrade: 3,
        teams: ['hematology', 'icu'],
        summary: 's',
      },
      [],
      [],
      T,
      DEFAULT_PAGING,
    );
    await store.save(t.pages);
    // Marking them delivered keeps the due time: no second timer.
    await store.save(t.pages.map((p) => ({ ...p, rev: 1, delivered: true })));
    const silence: Silence = {
      silenceId: 's1',
      scope: { patientId: 'P-1' },
      from: T,
      until: min(30),
      createdBy: 'N',
      reason: 'transport',
    };
    await store.saveSilence(silence);
    await store.saveSilence({ ...silence, endedAt: min(10), endedBy: 'N' });
    expect(sentTimers()).toEqual([
      { delay: 300, body: { wakeAt: min(5) } }, // both teams' pages are due together: one timer
      { delay: 900, body: { wakeAt: min(30) } },
    ]);
  });

  it('a timer that cannot be set leaves the page stored (the minute tick covers it)', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('SQS down'));
    const errors: unknown[] = [];
    const pages = new MemoryPageStore();
    const store = withTimers(pages, timer(), (e) => errors.push(e));
    const t = pagesForNotification(notification('crs|P-1|m1'), [], [], T, DEFAULT_PAGING);
    await store.save(t.pages);
    expect(errors).toHaveLength(1);
    expect(await pages.get('crs|P-1|m1|hematology')).toBeDefined();
  });
});

function timerRecord(wakeAt: number | string, id = 't1'): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `rh-${id}`,
    body: typeof wakeAt === 'string' ? wakeAt : JSON.stringify({ wakeAt }),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:EscalationTimers',
    awsRegion: 'eu-west-1',
  };
}

describe('escalate handler', () => {
  let ticks: number[];
  let swept: number;
  let failTick: boolean;
  let snsDown: boolean;
  /** The pages the tick set aside (their team has no ladder in the config, or their item cannot be read). */
  let setAside: SetAside[];
  const handler = () =>
    quiet(
      mod.createEscalateHandler({
        paging: async () => ({
          pager: {
            onTick: async (t: number) => {
              if (failTick) throw new Error('DynamoDB throttled');
              ticks.push(t);
              if (snsDown) throw new SendDeferred(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
              return { setAside };
            },
            onAlert: async () => undefined,
          },
          sweep: {
            pages: {
              staleFeedAlerts: async () => ({ alerts: new Map(), unreadable: [] }),
              setStaleFeedAlert: async () => undefined,
              clearStaleFeedAlert: async () => undefined,
            },
            states: {
              feeds: async function* () {
                swept++;
                yield* [];
              },
              load: async () => undefined,
            },
            timeZone: 'UTC',
          },
          config: DEFAULT_PAGING,
        }),
        timer: timer(),
        now: () => now,
        ...live,
      }),
    );
  beforeEach(() => {
    ticks = [];
    swept = 0;
    failTick = false;
    snsDown = false;
    setAside = [];
  });

  it('ticks the pager once for a batch of due timers', async () => {
    now = min(5);
    const res = await handler()(
      sqsEvent([timerRecord(min(5), 'a'), timerRecord(min(4), 'b'), timerRecord('garbage', 'c')]),
    );
    expect(res).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([min(5)]);
    expect(sentTimers()).toEqual([]);
  });

  it('puts back a timer that is not due yet (SQS delays at most 15 minutes), without ticking', async () => {
    const res = await handler()(sqsEvent([timerRecord(min(40))]));
    expect(res).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([]);
    expect(sentTimers()).toEqual([{ delay: 900, body: { wakeAt: min(40) } }]);
  });

  it('when the tick fails, fails the due timers only, so that they come back (and are dead-lettered after 3)', async () => {
    failTick = true;
    const res = await handler()(
      sqsEvent([timerRecord(min(0), 'due'), timerRecord(min(40), 'later'), timerRecord('?', 'x')]),
    );
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'due' }, { itemIdentifier: 'x' }] });
    // The timer not due yet was put back once; failing it too brought it back beside its copy (two timers for one
    // due time, doubling at every failed tick), and a healthy timer reached the DLQ after 3 (EscalationDlqDepth).
    expect(sentTimers()).toEqual([{ delay: 900, body: { wakeAt: min(40) } }]);
  });

  it('with SNS down, defers the sends (stored: a later tick sends them) and still sweeps and counts the run', async () => {
    // A failed run would be retried, dead-lettered, and raise NoEscalateRun and EscalationDlqDepth, which say
    // something else; PagesDeferred (SendsDeferred) says this.
    snsDown = true;
    const scheduled = await captureOutput(() =>
      handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-11-26T10:01:00Z' }),
    );
    expect(swept).toBe(1);
    expect(metricSum(scheduled.out, 'EscalateRuns')).toBe(1);
    expect(metricSum(scheduled.out, 'SendsDeferred')).toBe(1);
    expect(scheduled.out).toMatch(/SNS down, pages stored/);
    const timers = await captureOutput(() => handler()(sqsEvent([timerRecord(min(0), 'due')])));
    expect(metricSum(timers.out, 'SendsDeferred')).toBe(1);
    await expect(handler()(sqsEvent([timerRecord(min(0), 'due')]))).resolves.toEqual({ batchItemFailures: [] });
  });

  it('reports a timer that could not be put back, alone', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('SQS down'));
    const res = await handler()(sqsEvent([timerRecord(min(40), 'late'), timerRecord(min(0), 'due')]));
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'late' }] });
    expect(ticks).toEqual([T]);
  });

  it('on the schedule, ticks (the net under lost timers) and sweeps the feeds', async () => {
    now = min(1);
    const res = await handler()({
      source: 'aws.events',
      'detail-type': 'Scheduled Event',
      time: '2026-11-26T10:01:00Z',
    });
    expect(res).toBeUndefined();
    expect(ticks).toEqual([min(1)]);
    expect(swept).toBe(1);
  });

  // Until 2026-12-05 the sweep ran only after a tick that worked: a tick failing at every run (one page's bad data)
  // stopped every patient's "no data" alert, and EnrolledPatients went missing (NoIngestWhileEnrolled read none).
  it('on the schedule, sweeps the feeds also when the tick fails, and says which failed', async () => {
    failTick = true;
    now = min(1);
    const { out } = await captureOutput(() =>
      // The invocation fails (EscalateErrors), with the tick's error.
      expect(handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).rejects.toThrow(
        'DynamoDB throttled',
      ),
    );
    expect(swept).toBe(1);
    expect(out).toMatch(/escalation tick failed/);
    expect(out).not.toMatch(/stale-feed sweep failed/);
    expect(out).toMatch(/"EnrolledPatients":0/);
    expect(metricSum(out, 'EscalateRuns')).toBe(0); // a failed run is not a run
  });

  it('names the pages the tick set aside (a team the config no longer has, an item that cannot be read), fails the schedule (EscalateErrors), still sweeps and counts the run', async () => {
    setAside = [
      { pageId: 'crs|P-9|#1|cardiology', reason: 'its team has no ladder in the paging config' },
      { pageId: 'crs|P-8|#2|icu', reason: 'its stored item cannot be read: level is missing' },
    ];
    const { out } = await captureOutput(() =>
      expect(handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).rejects.toThrow(/set aside/),
    );
    expect(swept).toBe(1);
    const line = out.split('\n').find((l) => l.includes('pages set aside'))!;
    expect(line).toContain('"pages":["crs|P-9|#1|cardiology","crs|P-8|#2|icu"]');
    expect(line).toContain('crs|P-8|#2|icu: its stored item cannot be read: level is missing');
    expect(metricSum(out, 'EscalateRuns')).toBe(1); // the ladders ran: NoEscalateRun stays quiet
    // A timer's tick logs them too, and its timers are done (not dead-lettered: the schedule reports them).
    const timers = await captureOutput(() => handler()(sqsEvent([timerRecord(min(0), 'due')])));
    expect(timers.out).toMatch(/pages set aside/);
    await expect(handler()(sqsEvent([timerRecord(min(0), 'due')]))).resolves.toEqual({ batchItemFailures: [] });
  });

  it('reports each run (EscalateRuns: the NoEscalateRun alarm breaches on silence) and the enrolled patients it swept, 0 included', async () => {
    const scheduled = await captureOutput(() =>
      handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-11-26T10:01:00Z' }),
    );
    expect(metricSum(scheduled.out, 'EscalateRuns')).toBe(1);
    expect(scheduled.out).toMatch(/"EnrolledPatients":0/);
    const timers = await captureOutput(() => handler()(sqsEvent([timerRecord(min(0))])));
    expect(metricSum(timers.out, 'EscalateRuns')).toBe(1);
    failTick = true;
    const failed = await captureOutput(() => handler()(sqsEvent([timerRecord(min(0))])));
    expect(metricSum(failed.out, 'EscalateRuns')).toBe(0); // a failed run is not a run
    expect(failed.out).toMatch(/escalation tick failed/);
    const scheduledFailed = await captureOutput(() =>
      handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event' }).catch(() => undefined),
    );
    expect(metricSum(scheduledFailed.out, 'EscalateRuns')).toBe(0);
  });
});

describe('stale-feed sweep', () => {
  /** A patient's state after enrolment and monitor readings at these minutes (after T0 of the message builders). */
  function stateWith(monitorAt: number[]): PatientState {
    let state: PatientState | undefined;
    for (const m of [enrol('P-1', -60), ...monitorAt.map((t) => msg('P-1', t, { vitals: { heartRate: 80 } }))])
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    return state!;
  }

  let states: Map<string, PatientState>;
  let alerts: AlertInput[];
  let inForce: Map<string, { alertId: string; since: number }>;
  let deps: () => SweepDeps;
  beforeEach(() => {
    ({ states, alerts, inForce, deps } = sweepFakes());
  });

  it('marks the alerts and all-clears of a restored deployment with the restore, read once a sweep that pages, else never (2026-12-07)', async () => {
    const quiet = stateWith([0]);
    states.set('P-1', quiet);
    const since = quiet.lastMonitorAt!;
    let reads = 0;
    const restoredAt = async () => {
      reads++;
      return 1_796_669_000_000;
    };
    const restored = () => ({ ...deps(), restoredAt });
    await sweepStaleFeeds(restored(), since + 14 * 60_000); // nothing to page: nothing read
    expect(reads).toBe(0);
    states.set('Q-1', { ...quiet, patientId: 'Q-1' });
    await sweepStaleFeeds(restored(), since + 15 * 60_000);
    expect(reads).toBe(1); // one read for both alerts
    await sweepStaleFeeds(restored(), since + 16 * 60_000);
    expect(reads).toBe(1);
    states.set('P-1', stateWith([0, 20]));
    await sweepStaleFeeds(restored(), since + 21 * 60_000);
    expect(reads).toBe(2);
    expect(alerts.map((a) => `${a.alertId} ${a.restoredAt}`)).toEqual([
      `stale-feed|P-1|${since} 1796669000000`,
      `stale-feed|Q-1|${since} 1796669000000`,
      `stale-feed|P-1|${since}|cleared 1796669000000`,
    ]);
  });

  it('raises the alert once when the monitor has been quiet 15 minutes, and clears it once when data resumes', async () => {
    const quiet = stateWith([0]);
    states.set('P-1', quiet);
    const since = quiet.lastMonitorAt!;
    await sweepStaleFeeds(deps(), since + 14 * 60_000);
    expect(alerts).toEqual([]);
    await sweepStaleFeeds(deps(), since + 15 * 60_000);
    await sweepStaleFeeds(deps(), since + 16 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`stale-feed|P-1|${since} false`]);
    expect(alerts[0]!.summary).toMatch(
      /^NO DATA, patient P-1, bed H4-P-1: nothing from the monitor since .*; the grade cannot be trusted$/,
    );

    states.set('P-1', stateWith([0, 20]));
    await sweepStaleFeeds(deps(), since + 21 * 60_000);
    await sweepStaleFeeds(deps(), since + 22 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([
      `stale-feed|P-1|${since} false`,
      `stale-feed|P-1|${since}|cleared true`,
    ]);
    expect(inForce.size).toBe(0);
  });

  // Until 2026-12-05 the first alert the pager failed on for a reason of its own (a page item that does not decode)
  // ended the sweep: every alert after it waited, every minute, for as long as that item stayed bad.
  it('pages every other alert when the pager fails on one, names it, and keeps what is in force for it', async () => {
    const quiet = stateWith([0]);
    states.set('P-0', quiet); // the pager fails on its alert (a page item of P-0 does not decode)
    states.set('P-1', quiet);
    const since = quiet.lastMonitorAt!;
    let bad = 'stale-feed|P-0|';
    const d = deps();
    const sweep = (at: number) =>
      sweepStaleFeeds(
        {
          ...d,
          pager: {
            onAlert: async (a, t) => {
              if (a.alertId.startsWith(bad)) throw new SyntaxError('page item does not decode');
              await d.pager.onAlert(a, t);
            },
          },
        },
        at,
      );
    const r = await sweep(since + 16 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`stale-feed|P-1|${since} false`]);
    expect(r.raised).toEqual(['P-1']);
    expect(r.alertsFailed?.alertIds).toEqual([`stale-feed|P-0|${since}`]);
    expect([...inForce.keys()]).toEqual(['P-1']); // P-0's is planned again at the next sweep, under the same id

    // P-1's data resumes, and its all-clear fails: its alert stays in force, as it was, to be cleared by a later sweep
    // (nothing can raise another alert over it meanwhile).
    bad = `stale-feed|P-1|${since}|cleared`;
    states.set('P-1', stateWith([0, 20]));
    const r2 = await sweep(since + 21 * 60_000);
    expect(r2.alertsFailed?.alertIds).toEqual([`stale-feed|P-1|${since}|cleared`]);
    expect(inForce.get('P-1')).toEqual({ alertId: `stale-feed|P-1|${since}`, since });
    expect(r2.raised).toEqual(['P-0']); // P-0's item was mended meanwhile
    bad = 'none';
    const r3 = await sweep(since + 22 * 60_000);
    expect(r3.alertsFailed).toBeUndefined();
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([
      `stale-feed|P-1|${since} false`,
      `stale-feed|P-0|${since} false`,
      `stale-feed|P-1|${since}|cleared true`,
    ]);
    expect([...inForce.keys()]).toEqual(['P-0']);
  });

  // Until 2026-12-05 one patient's state item that did not decode failed the whole sweep, every minute: no patient's
  // "no data" alert was raised or cleared.
  it("sweeps every other patient when one patient's state cannot be read, and says which could not", async () => {
    const quiet = stateWith([0]);
    states.set('P-0', quiet); // its item does not decode
    states.set('P-1', quiet);
    const since = quiet.lastMonitorAt!;
    const base = deps();
    const load = (id: string) => {
      if (id === 'P-0') return Promise.reject(new Error('patient P-0: stored state item is malformed'));
      return base.states.load(id);
    };
    const r = await sweepStaleFeeds({ ...base, states: { ...base.states, load } }, since + 16 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`stale-feed|P-1|${since} false`]);
    expect(r.incomplete?.patientIds).toEqual(['P-0']);
    // DynamoDB throttled is an outage: every read would fail alike, and the sweep stops.
    const throttled = () =>
      Promise.reject(Object.assign(new Error('Rate of requests exceeds'), { name: 'ThrottlingException' }));
    await expect(
      sweepStaleFeeds({ ...base, states: { ...base.states, load: throttled } }, since + 17 * 60_000),
    ).rejects.toThrow('Rate of requests');
  });

  it('keeps the alert in force when a deployment lengthened staleFeedMinutes and the monitor is quiet still', async () => {
    const quiet = stateWith([0]);
    states.set('P-1', quiet);
    const since = quiet.lastMonitorAt!;
    await sweepStaleFeeds(deps(), since + 16 * 60_000);
    const lengthened = () => ({ ...deps(), config: { ...DEFAULT_PAGING, staleFeedMinutes: 30 } });
    await sweepStaleFeeds(lengthened(), since + 17 * 60_000);
    await sweepStaleFeeds(lengthened(), since + 31 * 60_000);
    // No "Data resumed" while nothing came: the alert raised stays in force (its ladder runs).
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`stale-feed|P-1|${since} false`]);
    expect(inForce.get('P-1')).toEqual({ alertId: `stale-feed|P-1|${since}`, since });
    states.set('P-1', stateWith([0, 32]));
    await sweepStaleFeeds(lengthened(), since + 33 * 60_000);
    expect(alerts.map((a) => a.summary.split(':')[0])).toEqual([
      'NO DATA, patient P-1, bed H4-P-1',
      'Data resumed, patient P-1, bed H4-P-1',
    ]);
  });

  it('keeps the alert in force, paging nothing, when the feed moved on but is stale still (a late reading)', async () => {
    // docs/paging.md (Stale feeds): a reading that arrives already older than staleFeedMinutes does not resume the
    // feed; an all-clear and a new "no data" page at once would tell the nurse the monitor was back when it is not.
    // (Found by test/unit/replay-vs-aws-paging.test.ts: replay cleared and raised anew, the AWS sweep did not.)
    states.set('P-1', stateWith([0]));
    const first = states.get('P-1')!.lastMonitorAt!;
    await sweepStaleFeeds(deps(), first + 15 * 60_000);
    states.set('P-1', stateWith([0, 20]));
    const second = states.get('P-1')!.lastMonitorAt!;
    await sweepStaleFeeds(deps(), second + 15 * 60_000);
    await sweepStaleFeeds(deps(), second + 16 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`stale-feed|P-1|${first} false`]);
    expect(inForce.get('P-1')).toEqual({ alertId: `stale-feed|P-1|${first}`, since: second });
    // Data that resumes for real clears that alert.
    states.set('P-1', stateWith([0, 20, 40]));
    await sweepStaleFeeds(deps(), first + 41 * 60_000);
    expect(alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([
      `stale-feed|P-1|${first} false`,
      `stale-feed|P-1|${first}|cleared true`,
    ]);
  });
});

/** An ICU escalation paged by the real pager (level 1 sent, its timer set), and the escalate function over it. */
async function icuLadder() {
  const phone: string[] = [];
  const audit = new MemoryAuditLog();
  const pages = new MemoryPageStore(audit);
  const pager = new Pager({
    pages: withTimers(pages, timer(), () => undefined),
    sender: { send: async (m: PageMessage) => void phone.push(`${m.role}`) },
    audit,
    config: DEFAULT_PAGING,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://x/ack/',
  });
  await pager.onNotification(
    {
      notificationId: 'crs|P-1|m1',
      patientId: 'P-1',
      condition: 'crs',
      kind: 'escalation',
      toGrade: 3,
      teams: ['icu'],
      summary: 's',
    },
    T,
  );
  const h = quiet(
    mod.createEscalateHandler({
      paging: async () => ({
        pager,
        sweep: {
          pages: {
            staleFeedAlerts: async () => ({ alerts: new Map(), unreadable: [] }),
            setStaleFeedAlert: async () => undefined,
            clearStaleFeedAlert: async () => undefined,
          },
          states: { feeds: async function* () {}, load: async () => undefined },
          timeZone: 'UTC',
        },
        config: DEFAULT_PAGING,
      }),
      timer: timer(),
      now: () => now,
      ...live,
    }),
  );
  return { phone, pager, h };
}

describe('the schedule and the timers with the real pager', () => {
  it('climb the ladder at the due times and stop at the first acknowledgement', async () => {
    const { phone, pager, h } = await icuLadder();
    // Each timer fires at its time: the next level is paged, and its own timer set.
    for (let i = 0; i < 2; i++) {
      const [next] = sentTimers().slice(-1);
      now = next!.body.wakeAt;
      await h(sqsEvent([timerRecord(now)]));
    }
    expect(phone).toEqual(['ICU registrar', 'ICU consultant', 'ICU registrar']);
    await pager.acknowledge('crs|P-1|m1|icu', 'Dr I', 'api', now + 1000);
    now = min(60);
    const { out } = await captureOutput(() => h({ source: 'aws.events', 'detail-type': 'Scheduled Event' }));
    expect(phone).toHaveLength(3);
    expect(metricSum(out, 'Escalations')).toBe(0);
  });
});

describe('the timers with the real pager: pinned by a mutation run', () => {
  it("pages the next level when its timer comes a moment early by this function's clock (clocks differ)", async () => {
    const { phone, h } = await icuLadder();
    const [next] = sentTimers().slice(-1);
    now = next!.body.wakeAt - 200;
    const res = await h(sqsEvent([timerRecord(next!.body.wakeAt)]));
    expect(res).toEqual({ batchItemFailures: [] });
    expect(phone).toEqual(['ICU registrar', 'ICU consultant']);
  });
});

describe('escalate handler: pinned by a mutation run', () => {
  let ticks: number[];
  let fakes: ReturnType<typeof sweepFakes>;
  let feedsDown: boolean;
  let alertSnsDown: boolean;
  /** The pager fails on every alert (a page item that does not decode). */
  let alertBroken: boolean;
  /** A patient whose state item does not decode. */
  let badState: string | undefined;
  /** How long the pager takes to start (a cold start): the clock moves on meanwhile. */
  let startMs: number;
  const handler = () =>
    quiet(
      mod.createEscalateHandler({
        paging: async () => {
          now += startMs;
          const d = fakes.deps();
          return {
            pager: {
              onTick: async (t: number) => {
                ticks.push(t);
                return { setAside: [] };
              },
              onAlert: async (a, t) => {
                if (alertBroken) throw new SyntaxError('page item does not decode');
                if (alertSnsDown)
                  throw new SendDeferred(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
                return d.pager.onAlert(a, t);
              },
            },
            sweep: {
              pages: d.pages,
              states: {
                feeds: async function* () {
                  if (feedsDown)
                    throw Object.assign(new Error('Throughput exceeds the limit'), { name: 'ThrottlingException' });
                  yield* d.states.feeds();
                },
                load: (id: string) =>
                  id === badState ? Promise.reject(new Error('stored state item is malformed')) : d.states.load(id),
              },
              timeZone: 'UTC',
            },
            config: DEFAULT_PAGING,
          };
        },
        timer: timer(),
        now: () => now,
        ...live,
      }),
    );
  const schedule = () => handler()({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
  /** Patient P-1 enrolled, its monitor heard last at T0: quiet 16 minutes at `now`. */
  const quietPatient = () => {
    let state: PatientState | undefined;
    for (const m of [enrol('P-1', -60), msg('P-1', 0, { vitals: { heartRate: 80 } })])
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    fakes.states.set('P-1', state!);
    now = T0 + 16 * 60_000;
  };
  beforeEach(() => {
    ticks = [];
    fakes = sweepFakes();
    feedsDown = false;
    alertSnsDown = false;
    alertBroken = false;
    badState = undefined;
    startMs = 0;
  });

  it('ticks at the time the tick runs, after a slow start, not when the timer came', async () => {
    now = min(5);
    startMs = 2000;
    await handler()(sqsEvent([timerRecord(min(5))]));
    expect(ticks).toEqual([min(5) + 2000]);
  });

  it('clears the alert of a patient the index still names but whose state is gone', async () => {
    const alertId = `stale-feed|P-1|${T0}`;
    fakes.inForce.set('P-1', { alertId, since: T0 });
    const d = fakes.deps();
    now = T0 + 5 * 60_000;
    await sweepStaleFeeds(
      {
        ...d,
        states: {
          feeds: async function* () {
            yield { patientId: 'P-1', since: T0 + 4 * 60_000 };
          },
          load: async () => undefined,
        },
      },
      now,
    );
    expect(fakes.alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`${alertId}|cleared true`]);
    expect(fakes.inForce.size).toBe(0);
  });

  it('runs a timer a second or less from its time as if at its time, and puts back one further off', async () => {
    now = min(5) - 1000;
    expect(await handler()(sqsEvent([timerRecord(min(5))]))).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([min(5)]);
    expect(sentTimers()).toEqual([]);
    now = min(5) - 30_000;
    expect(await handler()(sqsEvent([timerRecord(min(5))]))).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([min(5)]);
    expect(sentTimers()).toEqual([{ delay: 30, body: { wakeAt: min(5) } }]);
  });

  it('ticks for a timer it cannot read (a tick is always safe)', async () => {
    expect(await handler()(sqsEvent([timerRecord('garbage')]))).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([T]);
  });

  it('reports the timer that could not be put back by its own id, wherever it is in the batch', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('SQS down'));
    const res = await handler()(sqsEvent([timerRecord(min(0), 'due'), timerRecord(min(40), 'late')]));
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'late' }] });
  });

  it('on the schedule, ticks the ladders before the sweep, so that a failing sweep does not hold them', async () => {
    feedsDown = true;
    const { out } = await captureOutput(() => expect(schedule()).rejects.toThrow(/Throughput/));
    expect(ticks).toEqual([T]);
    expect(out).toMatch(/stale-feed sweep failed/);
    expect(out).not.toMatch(/escalation tick failed/);
    expect(metricSum(out, 'EscalateRuns')).toBe(0);
  });

  it("counts what it swept when a patient's state is unreadable, names that patient, and fails the run", async () => {
    quietPatient();
    fakes.states.set('P-0', fakes.states.get('P-1')!);
    badState = 'P-0';
    const { out } = await captureOutput(() => expect(schedule()).rejects.toThrow(/could not be read/));
    expect(fakes.alerts.map((a) => a.patientId)).toEqual(['P-1']);
    expect(metricSum(out, 'StaleFeedAlerts')).toBe(1);
    expect(metricSum(out, 'EnrolledPatients')).toBe(2);
    expect(metricSum(out, 'EscalateRuns')).toBe(0);
    const line = out.split('\n').find((l) => l.includes('state unreadable'))!;
    expect(line).toContain('"patients":["P-0"]');
    expect(out).toMatch(/stale-feed sweep failed/);
  });

  it('names the alerts the pager failed on, by id, and fails the run (EscalateErrors)', async () => {
    quietPatient();
    alertBroken = true;
    const { out } = await captureOutput(() => expect(schedule()).rejects.toThrow(/could not be paged/));
    const line = out.split('\n').find((l) => l.includes('alerts not paged'))!;
    expect(line).toMatch(/"alerts":\["stale-feed\|P-1\|\d+"\]/);
    expect(line).toContain('"error":"SyntaxError"');
    expect(metricSum(out, 'StaleFeedAlerts')).toBe(0);
    expect(metricSum(out, 'EnrolledPatients')).toBe(1);
    expect(fakes.inForce.size).toBe(0);
  });

  // Until 2026-12-05 one such record failed the sweep at every minute (a TypeError), for every patient.
  it('names the records in force it cannot read, by key with why, sweeps every patient, and fails the run, which counts', async () => {
    quietPatient();
    fakes.unreadable.push({ key: 'P-7', reason: 'alertId is missing' });
    const { out } = await captureOutput(() => expect(schedule()).rejects.toThrow(/P-7/));
    const line = out.split('\n').find((l) => l.includes('records in force unreadable'))!;
    expect(line).toContain('"records":["P-7"]');
    expect(line).toContain('"reasons":["P-7: alertId is missing"]');
    expect(fakes.alerts.map((a) => a.patientId)).toEqual(['P-1']);
    expect(metricSum(out, 'StaleFeedAlerts')).toBe(1);
    expect(metricSum(out, 'EscalateRuns')).toBe(1);
    expect(out).toMatch(/stale-feed sweep failed/);
  });

  it('counts a raised stale-feed alert (StaleFeedAlerts) and the patients swept', async () => {
    quietPatient();
    const { out } = await captureOutput(() => schedule());
    expect(fakes.alerts.map((a) => a.cleared)).toEqual([false]);
    expect(metricSum(out, 'StaleFeedAlerts')).toBe(1);
    expect(metricSum(out, 'EnrolledPatients')).toBe(1);
  });

  it("says SNS is down when it refused an alert's pages, and still counts the enrolled patients (the sweep went on)", async () => {
    quietPatient();
    alertSnsDown = true;
    const { out } = await captureOutput(() => schedule());
    expect(out).toMatch(/stale-feed sweep: SNS down/);
    expect(metricSum(out, 'SendsDeferred')).toBe(1);
    expect(metricSum(out, 'EnrolledPatients')).toBe(1);
    expect(metricSum(out, 'EscalateRuns')).toBe(1);
    // The alert is kept in force (its pages are stored): the next sweep raises nothing again.
    expect(fakes.inForce.get('P-1')?.alertId).toMatch(/^stale-feed\|P-1\|/);
  });

  it('logs the alerts cleared, by patient id, when data resumes', async () => {
    quietPatient();
    await schedule();
    let state: PatientState | undefined = fakes.states.get('P-1');
    const back = msg('P-1', 17, { vitals: { heartRate: 82 } });
    state = reduce(state, back, DEFAULT_CONFIG, arrivalOf(back)).state;
    fakes.states.set('P-1', state);
    now = T0 + 18 * 60_000;
    const { out } = await captureOutput(() => schedule());
    expect(fakes.alerts.map((a) => a.cleared)).toEqual([false, true]);
    const line = out.split('\n').find((l) => l.includes('"stale feeds"'))!;
    expect(line).toContain('"cleared":["P-1"]');
  });
  it('treats a timer whose time is not a finite number as unreadable: a tick now, nothing put back', async () => {
    expect(await handler()(sqsEvent([timerRecord('{"wakeAt":1e999}')]))).toEqual({ batchItemFailures: [] });
    expect(ticks).toEqual([T]);
    expect(sentTimers()).toEqual([]);
  });

  it('clears a ward alert in force that no quiet patient belongs to any more (its members forgotten)', async () => {
    const ward = `stale-feed|ward H4|${T0}`;
    fakes.inForce.set(ward, { alertId: ward, since: T0 });
    now = T0 + 30 * 60_000;
    await schedule();
    expect(fakes.alerts.map((a) => `${a.alertId} ${a.cleared}`)).toEqual([`${ward}|cleared true`]);
    expect(fakes.inForce.size).toBe(0);
  });

  it('keeps the alert in force and moves its feed time when a late reading came while no sweep ran', async () => {
    quietPatient();
    await schedule();
    const first = fakes.inForce.get('P-1')!;
    let state: PatientState | undefined = fakes.states.get('P-1');
    const late = msg('P-1', 20, { vitals: { heartRate: 81 } });
    state = reduce(state, late, DEFAULT_CONFIG, arrivalOf(late)).state;
    fakes.states.set('P-1', state);
    now = state.lastMonitorAt! + 30 * 60_000; // the escalate function was down: the feed is long stale again
    await schedule();
    expect(fakes.alerts.map((a) => a.cleared)).toEqual([false]);
    expect(fakes.inForce.get('P-1')).toEqual({ alertId: first.alertId, since: state.lastMonitorAt });
  });
});

describe('escalation timers: pinned by a mutation run', () => {
  it('sets the other timers of a save when one cannot be set', async () => {
    const woken: number[] = [];
    const errors: unknown[] = [];
    const flaky = {
      wake: async (at: number) => {
        woken.push(at);
        if (woken.length === 1) throw new Error('SQS down');
      },
    };
    const store = withTimers(new MemoryPageStore(), flaky, (e) => errors.push(e));
    const a = pagesForNotification(notification('crs|P-1|m1'), [], [], T, DEFAULT_PAGING).pages;
    const b = pagesForNotification(notification('crs|P-1|m2'), [], [], min(1), DEFAULT_PAGING).pages;
    await store.save([...a, ...b]);
    expect(errors).toHaveLength(1);
    expect(woken).toEqual([a[0]!.dueAt, b[0]!.dueAt]);
  });

  it('sets no timer for a page that is no longer open, or that a silence holds (its end has its own timer)', async () => {
    const store = () => withTimers(new MemoryPageStore(), timer(), () => undefined);
    const [page] = pagesForNotification(notification('crs|P-1|m1'), [], [], T, DEFAULT_PAGING).pages;
    await store().save([{ ...page!, status: 'resolved' }]);
    await store().save([{ ...page!, heldBy: 's1' }]);
    expect(sentTimers()).toEqual([]);
  });
});

describe("the pager's metrics and security log (pagingMetrics): pinned by a mutation run", () => {
  it('counts each audit entry under the metric its alarm watches, in the CrsAlerting namespace by service', async () => {
    const t = telemetry('escalate');
    const m = pagingMetrics(t);
    const at = '2026-01-10T08:00:00Z';
    const { out } = await captureOutput(async () => {
      m.onAudit({ type: 'escalation', details: { status: 'exhausted' } });
      m.onAudit({ type: 'escalation', details: { level: 1, round: 0 } });
      m.onAudit({ type: 'escalation', details: { level: 1, held: true } });
      m.onAudit({ type: 'acknowledgement', details: {} });
      m.onAudit({ type: 'acknowledgement-refused', details: {} });
      m.onAudit({ type: 'page', details: {} });
      m.onSecurity({ at, event: 'acknowledge-link-refused', reason: 'forged', claimed: { pageId: 'crs|P-1|n1|icu' } });
      m.onSecurity({ at, event: 'device-token-refused', reason: 'unknown token', claimed: { route: '/v1/messages' } });
      m.onSecurity({ at, event: 'suppressed', reason: 'too many', claimed: {} });
      t.metrics.publishStoredMetrics();
    });
    expect(metricSum(out, 'LaddersExhausted')).toBe(1);
    expect(metricSum(out, 'Escalations')).toBe(1); // a held level is no escalation
    expect(metricSum(out, 'Acknowledgements')).toBe(1);
    expect(metricSum(out, 'AcknowledgementsRefused')).toBe(2); // the trail's refusal and the forged link only
    const emf = out
      .split('\n')
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] } });
    expect(emf.length).toBeGreaterThan(0);
    for (const doc of emf) {
      expect(doc).toMatchObject({ service: 'escalate' });
      expect(doc._aws.CloudWatchMetrics).toEqual([
        expect.objectContaining({ Namespace: 'CrsAlerting', Dimensions: [['service']] }),
      ]);
    }
    // Both security events in the function's log (its security log), at WARN, by service.
    const security = out
      .split('\n')
      .filter((l) => l.includes('"message":"security"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(security.map((l) => [l.level, l.service, l.event])).toEqual([
      ['WARN', 'escalate', 'acknowledge-link-refused'],
      ['WARN', 'escalate', 'device-token-refused'],
      ['WARN', 'escalate', 'suppressed'],
    ]);
  });

  it('turns a whole failed batch into an error naming no record error, and leaves any other error as it is', () => {
    const whole = Object.assign(new Error('all records failed'), {
      name: 'FullBatchFailureError',
      recordErrors: [new Error('temperatureC 38.7 out of range'), new Error('systolicBP 80 refused')],
    });
    const bare = withoutRecordErrors(whole) as Error;
    expect(bare.name).toBe('WholeBatchFailed');
    expect(bare.message).toBe('all 2 records in the batch failed; see the log entries by id');
    const other = new Error('temperatureC 38.7');
    expect(withoutRecordErrors(other)).toBe(other);
    expect(errorName(new RangeError('temperatureC 38.7 out of range'))).toBe('RangeError');
    expect(errorName('38.7')).toBe('string');
  });
});
