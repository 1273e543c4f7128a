// `crs replay --escalations` against the AWS functions, differentially: the random script of
// replay-vs-serve-paging (patients of one ward; grades up and down, late messages, duplicates, waits,
// acknowledgements, silences of a patient or a team started and ended) is run as a replay file through
// EscalatingReplay, and through the grade, notify, escalate and ack handlers over the DynamoDB fake with SNS, SQS and
// Secrets Manager mocked. Both must write the same audit trail of pages: opened, sent (to whom, at which level and
// round, when), escalated, held and released, acknowledged, superseded, resolved, alerts, silences.
//
// The AWS side, as deployed:
// - A message is graded by the grade function (an SQS FIFO record), each outbox record it wrote goes to the notify
//   function (its stream record), in order.
// - Time passes only by the escalate function's wake-ups: every escalation timer it (or the notifier) put on SQS is
//   delivered when the clock reaches its DelaySeconds (the function puts back one not yet due, at most 15 minutes
//   a hop), and the EventBridge schedule fires at every whole minute (tick, then the stale-feed sweep).
// - Acknowledgements go through the ack function with the link a page was sent with (SNS): `POST /ack/{token}`
//   (the form) or `POST /v1/acks`. Silences through the pager as `crs silence --backend aws` runs it.
//
// What differs by design (docs/paging.md: "The same holds against the AWS functions"), and how it is compared:
// - Stale-feed sweeps: the schedule sweeps every minute, replay at the moment a feed becomes stale. The script's
//   times are whole minutes, so a minute's schedule sees what replay saw; at one instant the schedule runs after
//   the step (a message arriving in the second before it), and also before it when a feed becomes stale at that
//   very instant (a phase the real schedule may have: the sweep at 08:15:00.000, the reading at 08:15:00.400).
// - Acknowledgements: only by a link a page was sent with (there is no board on AWS), recorded with the role the link
//   went to, `via link` or `via api`; replay's line names the page. An ack step picks among the pages sent with a
//   link still valid; replay acknowledges the same page. `by` and `via` are compared up to that.
// - Silence ids: made by the pager on AWS, named by replay's file. Mapped.
// Since the schedule also ticks every minute, a ladder would climb without its timers: every step taken between the
// script's steps is checked to fall at a time a timer was set for.
// REPLAY_AWS_RUNS raises the number of random scripts (default 15).
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBRecord, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStateStore, outboxRecord } from '#adapters/aws/dynamo-state-store.ts';
import { awsPaging } from '#adapters/aws/paging.ts';
import { SqsTimer } from '#adapters/aws/sqs-timer.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { checkSilence, startSilence } from '#app/silence.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { feedStatus } from '#domain/paging.ts';
import { iso } from '#domain/time.ts';
import type { QueuedMessage } from '#ports';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';
import { httpEvent, quiet, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { T0 } from '#test/support/messages.ts';
import {
  CONFIG,
  type Entry,
  everyScriptAgrees,
  MINUTE,
  type Outcome,
  PAGING_TYPES,
  PATIENTS,
  type Script,
  type Step,
  runReplay,
  silenceLabels,
  stepsOf,
  trail,
} from '#test/support/paging-scripts.ts';

const RUNS = Number(process.env.REPLAY_AWS_RUNS ?? 15);
const SECRET = 'replay-aws-ack-secret-of-32-bytes!!!';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
const TIMERS = 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers';
const ACK_BASE = 'https://api.example/ack/';

const ddb = new FakeDynamo(PAGING_TABLES);
const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
const secrets = mockClient(SecretsManagerClient);
// The handlers' modules build their live dependencies when imported: from the stack's variables.
let fns: {
  grade: typeof import('#functions/grade/handler.ts');
  notify: typeof import('#functions/notify/handler.ts');
  escalate: typeof import('#functions/escalate/handler.ts');
  ack: typeof import('#functions/ack/handler.ts');
};
beforeAll(async () => {
  Object.assign(process.env, {
    AWS_REGION: 'eu-west-1',
    CRS_STATE_TABLE: 'state',
    CRS_AUDIT_TABLE: 'audit',
    CRS_SEEN_TABLE: 'seen',
    CRS_ESCALATION_QUEUE_URL: TIMERS,
  });
  fns = {
    grade: await import('#functions/grade/handler.ts'),
    notify: await import('#functions/notify/handler.ts'),
    escalate: await import('#functions/escalate/handler.ts'),
    ack: await import('#functions/ack/handler.ts'),
  };
});
afterAll(() => {
  ddb.restore();
  sns.restore();
  sqs.restore();
  secrets.restore();
});

/** An escalation timer on the queue: delivered when the clock reaches `at`. */
interface Timer {
  at: number;
  body: string;
  n: number;
}

interface AwsRun {
  outcome: Outcome;
  /** Per ack step: the page acknowledged (none: no page had been sent with a valid link). */
  pageChoices: Map<number, string | undefined>;
}

async function runAws(steps: Step[]): Promise<AwsRun> {
  ddb.reset();
  sns.reset();
  sqs.reset();
  secrets.reset();
  let clock = T0;
  const now = () => clock;
  const timers: Timer[] = [];
  let sent = 0;
  sqs.on(SendMessageCommand).callsFake((input: { MessageBody: string; DelaySeconds?: number; QueueUrl: string }) => {
    expect(input.QueueUrl).toBe(TIMERS);
    expect(input.DelaySeconds ?? 0).toBeLessThanOrEqual(900);
    timers.push({ at: clock + (input.DelaySeconds ?? 0) * 1000, body: input.MessageBody, n: ++sent });
    return { MessageId: `t${sent}` };
  });
  const published: PageEvent[] = [];
  /** Each publish's `ward` attribute (what a ward-limited endpoint's filter matches), and its grade change's ward. */
  const wards: { page: PageEvent; attribute: string | undefined; changeWard: string | null | undefined }[] = [];
  sns
    .on(PublishCommand)
    .callsFake((input: { Message: string; MessageAttributes: Record<string, { StringValue?: string }> }) => {
      const body = JSON.parse((JSON.parse(input.Message) as { default: string }).default) as {
        page: PageEvent;
        ward?: string | null;
      };
      published.push(body.page);
      wards.push({ page: body.page, attribute: input.MessageAttributes.ward?.StringValue, changeWard: body.ward });
      return { MessageId: `m${published.length}` };
    });
  /**
   * Where each patient is (the ward of its latest enrolment by observedAt, the later arrival at one instant), and the
   * ward each page's endpoints are chosen by (docs/paging.md, A patient who moves wards): a grade change's page, its
   * change's ward, which is where the patient is when it is first sent at once; an alert, where the patient is now;
   * a ward's alert, that ward.
   */
  const placed = new Map<string, { ward: string; at: number }>();
  const checkWards = (i: number) => {
    for (const { page, attribute, changeWard } of wards.splice(0)) {
      const where = `step ${i}: ${page.sendId}`;
      if (page.subject === 'crs' || page.subject === 'icans') {
        expect(attribute ?? null, where).toBe(changeWard);
        if (page.reason === 'triggered' && page.level === 0 && page.round === 0 && page.status === 'open')
          expect(attribute, where).toBe(placed.get(page.patientId)?.ward);
      } else
        expect(attribute, where).toBe(
          page.patientId.startsWith('ward ') ? page.patientId.slice(5) : placed.get(page.patientId)?.ward,
        );
    }
  };
  secrets.on(GetSecretValueCommand).resolves({ SecretString: SECRET });

  const client = ddb.client();
  const ackSecret = Buffer.from(SECRET);
  const settings = {
    config: CONFIG,
    ackSecret,
    ackBaseUrl: ACK_BASE,
    pagesTable: 'pages',
    auditTable: 'audit',
    stateTable: 'state',
  };
  // The pager of the notify and escalate functions (awsPagingFromEnv builds the same from the stack's variables).
  const paging = awsPaging(
    { ...settings, topicArn: TOPIC, escalationQueueUrl: TIMERS },
    { dynamodb: client, sns: new SNSClient({ region: 'eu-west-1' }), sqs: new SQSClient({ region: 'eu-west-1' }) },
    {},
    now,
  );
  // The ack function's: the same tables, no sender, no timers.
  const ackPaging = awsPaging(settings, { dynamodb: client }, {}, now);
  const states = new DynamoStateStore(client, 'state', now, 'audit', 'seen');

  const grade = quiet(fns.grade.createGradeHandler({ store: states, config: CONFIG, now, ...telemetry('grade') }));
  const notify = quiet(
    fns.notify.createNotifyHandler({
      paging: async () => ({
        pager: paging.pager,
        parkedRecords: paging.parkedRecords,
        remember: (n) => paging.sender!.remember(n),
      }),
      now,
      ...telemetry('notify'),
    }),
  );
  const escalate = quiet(
    fns.escalate.createEscalateHandler({
      paging: async () => ({
        pager: paging.pager,
        sweep: { pages: paging.pages, states, timeZone: CONFIG.site.timeZone },
        config: CONFIG.paging,
      }),
      timer: new SqsTimer(new SQSClient({ region: 'eu-west-1' }), TIMERS, now),
      now,
      ...telemetry('escalate'),
    }),
  );
  const ack = quiet(
    fns.ack.createAckHandler({
      paging: async () => ({
        pager: ackPaging.pager,
        page: (id) => ackPaging.pages.get(id),
        config: CONFIG.paging,
        timeZone: CONFIG.site.timeZone,
      }),
      now,
      ...telemetry('ack'),
    }),
  );

  /** The notify function: every outbox record not handed to it yet, in the order written (the stream's). */
  const streamed = new Set<string>();
  const notifyAll = async () => {
    const records: DynamoDBRecord[] = [];
    for (const item of ddb.items('state')) {
      const key = `${item.pk!.S}#${item.sk!.S}`;
      if (streamed.has(key) || outboxRecord(item as never) === undefined) continue;
      streamed.add(key);
      records.push({ eventName: 'INSERT', dynamodb: { NewImage: item as never, SequenceNumber: key } });
    }
    if (records.length === 0) return;
    const r = await notify({ Records: records });
    expect(r.batchItemFailures, 'the notify function pages every record').toEqual([]);
  };

  /** The escalate function on the timers due at the clock (one batch), or on the schedule. */
  const wakeTimers = async () => {
    const due = timers.filter((t) => t.at <= clock);
    if (due.length === 0) return;
    for (const t of due) timers.splice(timers.indexOf(t), 1);
    const records = due.map((t): SQSRecord => ({ ...sqsRecord(t.body), messageId: `timer-${t.n}` }));
    const r = await escalate(sqsEvent(records));
    expect(r, 'the escalate function puts every timer back or ticks').toEqual({ batchItemFailures: [] });
  };
  const schedule = async () => {
    await escalate({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date(clock).toISOString() });
  };
  /** Whether a patient's feed becomes stale exactly at the clock. */
  const staleNow = async () => {
    for (const p of PATIENTS) {
      const s = await states.load(p);
      const f = s && feedStatus(s.state, clock, CONFIG.paging);
      if (f && f.since + CONFIG.paging.staleFeedMinutes * MINUTE === clock) return true;
    }
    return false;
  };
  /** The clock runs to `to`: timers delivered at their times, the schedule at every whole minute before `to`. */
  const advance = async (to: number) => {
    if (to <= clock) return;
    for (let wakes = 0, last = clock; ; wakes = clock === last ? wakes + 1 : 0, last = clock) {
      // A timer set for the instant it is delivered at would wake the function again and again.
      if (wakes > 50) throw new Error(`the escalate function keeps waking itself at ${iso(clock)}`);
      const nextMinute = Math.floor(clock / MINUTE) * MINUTE + MINUTE;
      const nextTimer = Math.min(...timers.map((t) => t.at));
      const at = Math.min(nextMinute, nextTimer);
      if (at > to) break;
      clock = Math.max(clock, at);
      await wakeTimers();
      if (clock === nextMinute && clock < to) await schedule();
    }
    clock = Math.max(clock, to);
    await wakeTimers();
    if (await staleNow()) await schedule();
  };

  const labels = silenceLabels(steps);
  const silenceIds = new Map<string, string>(); // AWS id -> label
  const made: string[] = [];
  const answers: string[] = [];
  const pageChoices = new Map<number, string | undefined>();
  for (const [i, s] of steps.entries()) {
    await advance(s.now);
    checkWards(i);
    switch (s.op.op) {
      case 'until':
      case 'wait':
        break;
      case 'ack': {
        // The pages sent so far with a link still valid, in the order first sent.
        const links = new Map<string, string[]>();
        for (const p of published) {
          const token = p.ackUrl?.slice(ACK_BASE.length);
          if (token === undefined || !(await ackPaging.pager.verifyLink(token, clock)).ok) continue;
          links.set(p.pageId, [...(links.get(p.pageId) ?? []), token]);
        }
        const ids = [...links.keys()];
        if (ids.length === 0) {
          pageChoices.set(i, undefined);
          break;
        }
        const pageId = ids[s.op.which % ids.length]!;
        pageChoices.set(i, pageId);
        const tokens = links.get(pageId)!;
        const token = tokens[s.op.link % tokens.length]!;
        const res =
          s.op.via === 'link'
            ? await ack(
                httpEvent({
                  method: 'POST',
                  path: `/ack/${token}`,
                  headers: { 'content-type': 'application/x-www-form-urlencoded' },
                  body: new URLSearchParams({ by: 'Dr A' }).toString(),
                }),
              )
            : await ack(httpEvent({ method: 'POST', path: '/v1/acks', body: JSON.stringify({ token, by: 'Dr A' }) }));
        answers.push(res.statusCode === 200 ? 'acknowledged' : 'refused');
        break;
      }
      case 'silence': {
        const c = JSON.parse(s.line) as {
          patientId?: string;
          team?: string;
          silenceId: string;
          from: string;
          until: string;
        };
        const checked = checkSilence(
          {
            ...(c.team ? { team: c.team } : { patientId: c.patientId }),
            minutes: (Date.parse(c.until) - Date.parse(c.from)) / MINUTE,
            reason: 'transport',
            by: 'Nurse B',
          },
          clock,
        );
        if (!checked.ok) throw new Error(checked.errors.join('; '));
        const r = await startSilence(
          checked.silence,
          async (p) => (await states.load(p)) !== undefined,
          (x) => paging.pager.silence(x, clock),
        );
        if (!r.ok) throw new Error(`silence at step ${i}: ${r.error}`);
        silenceIds.set(r.silence.silenceId, labels.get(c.silenceId)!);
        made.push(r.silence.silenceId);
        break;
      }
      case 'end-silence': {
        if (made.length === 0) break;
        const id = made[s.op.which % made.length]!;
        expect(await paging.pager.endSilence(id, 'Nurse B', clock), `end of silence at step ${i}`).toBeDefined();
        break;
      }
      default: {
        const ward = s.message!.enrolment?.ward;
        const at = Date.parse(s.message!.observedAt);
        if (ward !== undefined && at >= (placed.get(s.message!.patientId)?.at ?? Number.NEGATIVE_INFINITY))
          placed.set(s.message!.patientId, { ward, at });
        // As the ingest function queues it: received now.
        const record = sqsRecord(s.message!, { sentAt: clock });
        const queued: QueuedMessage = { ...(JSON.parse(record.body) as QueuedMessage), receivedAt: iso(clock) };
        const r = await grade(sqsEvent([{ ...record, body: JSON.stringify(queued) }]));
        expect(r.batchItemFailures, `message at step ${i}`).toEqual([]);
        await notifyAll();
      }
    }
    // The minute's schedule, right after the step (the next step of the instant a moment later).
    if (clock % MINUTE === 0) await schedule();
    checkWards(i);
  }
  const entries = ddb
    .items('audit')
    .map((i) => JSON.parse(i.entry!.S!) as Entry)
    .filter((e) => PAGING_TYPES.has(e.type));
  // The ladders ran on their timers, not on the schedule's safety net: every step taken between the script's steps
  // (escalated, held, released, exhausted) fell at a time a timer was set for.
  const wakeAts = new Set(
    sqs
      .commandCalls(SendMessageCommand)
      .map((c) => (JSON.parse(c.args[0].input.MessageBody!) as { wakeAt: number }).wakeAt),
  );
  const stepTimes = new Set(steps.map((x) => x.now));
  for (const e of entries.filter((x) => x.type === 'escalation' && !stepTimes.has(Date.parse(x.at))))
    expect(wakeAts.has(Date.parse(e.at)), `a timer for ${e.at}: ${e.text}`).toBe(true);
  return { outcome: { trail: trail(entries, silenceIds), answers }, pageChoices };
}

async function compare(script: Script): Promise<Record<string, string[]>> {
  const steps = stepsOf(script);
  const aws = await runAws(steps);
  const replay = await runReplay(steps, (i) => aws.pageChoices.get(i));
  expect(aws.outcome.trail).toEqual(replay.trail);
  expect(aws.outcome.answers).toEqual(replay.answers);
  return replay.trail;
}

/** Scripts that found a defect (each also a fixed example where the behaviour lives). */
const FOUND: Script[] = [
  // A step due during a silence that had ended by the next tick escalated through it (replay's catch-up tick, and
  // any late tick) instead of being held and released (test/unit/pager.test.ts, "a late tick").
  {
    patients: 2,
    ops: [
      { op: 'icans', patient: 0, grade: 3, late: 0 },
      { op: 'silence', patient: 0, team: null, minutes: 6 },
      { op: 'wait', minutes: 4 },
    ],
    tail: 2,
  },
  // A reading 19 minutes late, itself stale on arrival: replay answered the no-data alert and raised it anew (two
  // pages to the bedside nurse); the AWS sweep, its feed index not moved by a minute, paged nothing
  // (test/unit/handlers-escalate.test.ts, "keeps the alert in force").
  {
    patients: 2,
    ops: [
      { op: 'wait', minutes: 20 },
      { op: 'crs', patient: 0, grade: 0, late: 19 },
    ],
    tail: 0,
  },
  // A reading 14 minutes late, as the feed went stale: fresh for one more minute. Replay cleared the alert; the AWS
  // sweep, its feed index not moved, took the alert for unchanged (test/unit/aws-feed-index.test.ts, "late reading").
  {
    patients: 2,
    ops: [
      { op: 'wait', minutes: 15 },
      { op: 'crs', patient: 0, grade: 0, late: 14 },
    ],
    tail: 0,
  },
];

describe('crs replay --escalations and the AWS functions page alike', () => {
  it('the same pages, sends, escalations, acknowledgements, silences and alerts over random scripts', async () => {
    await everyScriptAgrees(compare, RUNS, FOUND);
  }, 600_000);
});
