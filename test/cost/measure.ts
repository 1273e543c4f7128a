// Runs the deployed handlers (the `handler` export of each function, wired from its environment exactly as on
// Lambda) over the fakes, on a ward's feed, and records what they ask of AWS: every DynamoDB request with the
// capacity its items' sizes consume, every SQS, SNS and Secrets Manager request, the bytes each invocation logs
// (Powertools lines and EMF metrics, with a Lambda context as AWS gives it), the custom metrics it publishes, and
// how long it computes. The path is the deployed one: a gateway posts to ingest, which queues on SQS; the grade
// function takes the queue's records in batches; each outbox record it writes reaches the notifier as the stream
// delivers it; the pages it opens are acknowledged through the ack function's API, their escalation timers fire
// the escalate function, and the minute schedule ticks over the enrolled patients. Nothing is estimated here:
// test/cost/model.ts turns these counts into money.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBRecord, SQSRecord } from 'aws-lambda';
import { issueToken } from '../../shared/app/auth.ts';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { ENV } from '../../shared/adapters/aws/env.ts';
import {
  AUDIT_TABLE,
  PAGES_TABLE,
  SEEN_TABLE,
  STATE_TABLE,
  TOKENS_TABLE,
} from '../../shared/adapters/aws/table-layout.ts';
import { FakeDynamo, type TableSpec } from '../support/fake-dynamo.ts';
import { captureOutput, httpEvent } from '../support/lambda-events.ts';
import { itemSize, storedBytes, type TableModel } from './capacity.ts';
import { wardFeed } from './feed.ts';
import { Meter, addUsage, emptyUsage, type Usage } from './meter.ts';

export interface HarnessOptions {
  patients: number;
  hours: number;
  /** Seconds between two vital-sign messages of one patient. */
  intervalSeconds: number;
  /** Messages a gateway puts in one request (1: the single route; more: the batch route). */
  messagesPerRequest: number;
  /** Records in one grade invocation (the SQS poller's batch, at most 10). */
  recordsPerInvocation: number;
  /** The Powertools log level the stack gives the functions (POWERTOOLS_LOG_LEVEL). */
  logLevel: string;
  /** Enrolled patients the scheduled tick sweeps (the scenario's; the feed's patients are copied up to it). */
  tickPatients: number;
}

/** One function's share of the run. */
export interface Phase {
  invocations: number;
  /** Wall time of the invocations here (the fakes answer at once: AWS latency is added by the model). */
  computeMs: number;
  usage: Usage;
  logBytes: number;
  logLines: number;
  /** Custom metric names the function published (EMF). */
  metrics: string[];
}

export interface Measurement {
  options: HarnessOptions;
  messages: number;
  requests: number;
  ingest: Phase;
  grade: Phase & { records: number };
  notify: Phase & { records: number };
  ack: Phase;
  timers: Phase;
  /** One scheduled escalate run over every enrolled patient (the minute tick and the stale-feed sweep). */
  tick: Phase;
  /** Grade changes and alerts that reached the pager, and the pages (one per team) it opened. */
  notifications: number;
  pages: number;
  /** Bytes each table stores (items plus DynamoDB's 100-byte overhead, with their index entries), and items. */
  storage: Record<string, { items: number; bytes: number }>;
  /** The patient state items as stored after the run: largest and mean item size (bytes). */
  stateItem: { max: number; mean: number };
}

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/CrsAlerting-Messages.fifo';
const TIMERS_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/CrsAlerting-EscalationTimers';

/** The tables as the stack declares them (keys and KEYS_ONLY indexes), for the fake and for the meter. */
const TABLES: Record<string, TableModel> = {
  state: {
    partitionKey: STATE_TABLE.partitionKey,
    sortKey: STATE_TABLE.sortKey,
    indexes: {
      [STATE_TABLE.feedIndex]: {
        partitionKey: STATE_TABLE.feedShardAttribute,
        sortKey: STATE_TABLE.feedSinceAttribute,
        projection: 'KEYS_ONLY',
      },
    },
  },
  pages: {
    partitionKey: PAGES_TABLE.partitionKey,
    sortKey: PAGES_TABLE.sortKey,
    indexes: {
      [PAGES_TABLE.dueIndex]: {
        partitionKey: PAGES_TABLE.dueShardAttribute,
        sortKey: PAGES_TABLE.dueAtAttribute,
        projection: 'KEYS_ONLY',
      },
    },
  },
  audit: { partitionKey: AUDIT_TABLE.partitionKey, sortKey: AUDIT_TABLE.sortKey },
  seen: { partitionKey: SEEN_TABLE.partitionKey, sortKey: SEEN_TABLE.sortKey },
  tokens: {
    partitionKey: TOKENS_TABLE.partitionKey,
    indexes: { [TOKENS_TABLE.tokenIdIndex]: { partitionKey: TOKENS_TABLE.tokenIdAttribute, projection: 'KEYS_ONLY' } },
  },
};

const specs = (): Record<string, TableSpec> =>
  Object.fromEntries(
    Object.entries(TABLES).map(([name, t]) => [
      name,
      {
        partitionKey: t.partitionKey,
        ...(t.sortKey ? { sortKey: t.sortKey } : {}),
        ...(t.indexes
          ? {
              indexes: Object.fromEntries(
                Object.entries(t.indexes).map(([i, x]) => [
                  i,
                  { partitionKey: x.partitionKey, ...(x.sortKey ? { sortKey: x.sortKey } : {}) },
                ]),
              ),
            }
          : {}),
      },
    ]),
  );

function environment(logLevel: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'cost',
    AWS_SECRET_ACCESS_KEY: 'cost',
    [ENV.stateTable]: 'state',
    [ENV.auditTable]: 'audit',
    [ENV.seenTable]: 'seen',
    [ENV.pagesTable]: 'pages',
    [ENV.tokensTable]: 'tokens',
    [ENV.queueUrl]: QUEUE_URL,
    [ENV.escalationQueueUrl]: TIMERS_URL,
    [ENV.topicArn]: 'arn:aws:sns:us-east-1:123456789012:CrsAlerting-Pages',
    [ENV.ackSecretArn]: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:AckSigningSecret',
    [ENV.ackBaseUrl]: 'https://abcdef1234.execute-api.us-east-1.amazonaws.com/ack/',
    POWERTOOLS_LOG_LEVEL: logLevel,
    POWERTOOLS_METRICS_NAMESPACE: 'CrsAlerting',
  };
}

/** A Lambda context as AWS passes it: Powertools puts its fields on every log line. */
function lambdaContext(fn: string, memory: number): Context {
  const name = `CrsAlerting-${fn}Function3A1B2C4D-AbCdEfGhIjKl`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${name}`,
    memoryLimitInMB: String(memory),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: '2026/12/01/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: () => 10_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

// The handlers keep references to Date.now (as default arguments, in their dependencies) from the time they are
// first imported: the replacement is installed once and reads the running measurement's clock, or the real one.
const realNow = Date.now;
let simulated: (() => number) | undefined;
function installClock(): void {
  if (Date.now === realNow) Date.now = () => (simulated ? simulated() : realNow());
}

const emptyPhase = (): Phase => ({
  invocations: 0,
  computeMs: 0,
  usage: emptyUsage(),
  logBytes: 0,
  logLines: 0,
  metrics: [],
});

/**
 * Runs a ward's feed through the deployed handlers and returns what they asked of AWS. Date.now tells the feed's
 * clock while it runs (the handlers take their time from it), and the real time again after.
 */
export async function measure(options: HarnessOptions): Promise<Measurement> {
  const saved = { ...process.env };
  Object.assign(process.env, environment(options.logLevel));
  installClock();
  let clock = 0;
  simulated = () => clock;

  const fake = new FakeDynamo(specs());
  const meter = new Meter(fake, TABLES);
  // Every DynamoDB client (the handlers' own, built at import) goes through the meter, then the fake.
  const stub = DynamoDBClient.prototype.send;
  DynamoDBClient.prototype.send = function (this: DynamoDBClient, command: unknown) {
    return meter.observe(command as never, () => (stub as (c: unknown) => Promise<unknown>).call(this, command));
  } as DynamoDBClient['send'];

  try {
    const [ingestMod, gradeMod, notifyMod, escalateMod, ackMod] = await Promise.all([
      import('../../functions/ingest/handler.ts'),
      import('../../functions/grade/handler.ts'),
      import('../../functions/notify/handler.ts'),
      import('../../functions/escalate/handler.ts'),
      import('../../functions/ack/handler.ts'),
    ]);
    const m: Measurement = {
      options,
      messages: 0,
      requests: 0,
      ingest: emptyPhase(),
      grade: { ...emptyPhase(), records: 0 },
      notify: { ...emptyPhase(), records: 0 },
      ack: emptyPhase(),
      timers: emptyPhase(),
      tick: emptyPhase(),
      notifications: 0,
      pages: 0,
      storage: {},
      stateItem: { max: 0, mean: 0 },
    };

    const invoke = async <R>(phase: Phase, run: () => Promise<R>): Promise<R> => {
      meter.take();
      const t0 = performance.now();
      const { result, out } = await captureOutput(run);
      phase.computeMs += performance.now() - t0;
      phase.invocations++;
      addUsage(phase.usage, meter.take());
      const lines = out.split('\n').filter((l) => l.trim() !== '');
      phase.logLines += lines.length;
      phase.logBytes += lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
      for (const l of lines) {
        if (!l.includes('"_aws"')) continue;
        const doc = JSON.parse(l) as { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } };
        for (const d of doc._aws.CloudWatchMetrics)
          for (const x of d.Metrics) if (!phase.metrics.includes(x.Name)) phase.metrics.push(x.Name);
      }
      return result;
    };

    // A device token, as `crs token issue --kind ehr` stores it: the ward's integration engine, which sends every
    // section (the enrolment's therapy and infusion included) for its patients.
    const { token, record } = issueToken('gw-ward-h4', new Date(Date.parse('2026-11-01T00:00:00Z')), { kind: 'ehr' });
    fake.table('tokens').set(`${record.hash}\u0000`, {
      [TOKENS_TABLE.partitionKey]: { S: record.hash },
      tokenId: { S: record.tokenId },
      deviceId: { S: record.deviceId },
      createdAt: { S: record.createdAt },
      kind: { S: 'ehr' },
    });

    const feed = wardFeed(options.patients, options.hours, options.intervalSeconds);
    m.messages = feed.length;
    const seenOutbox = new Set<string>();
    let sqsSeq = 0;

    const gradeRecords = (): SQSRecord[] => {
      const records = meter.sent.splice(0).filter((s) => s.queueUrl === QUEUE_URL);
      return records.map((s) => ({
        messageId: `sqs-${++sqsSeq}`,
        receiptHandle: `rh-${sqsSeq}`,
        body: s.body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(clock),
          SenderId: 'AROAEXAMPLE:ingest',
          ApproximateFirstReceiveTimestamp: String(clock),
          MessageGroupId: s.groupId!,
          MessageDeduplicationId: `d-${sqsSeq}`,
          SequenceNumber: String(sqsSeq),
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:CrsAlerting-Messages.fifo',
        awsRegion: 'us-east-1',
      }));
    };

    const pendingTimers: { wakeAt: number; body: string }[] = [];
    const takeTimers = () => {
      for (const s of meter.sent.splice(0)) {
        if (s.queueUrl !== TIMERS_URL) throw new Error(`unexpected message on ${s.queueUrl}`);
        pendingTimers.push({ wakeAt: clock + (s.delaySeconds ?? 0) * 1000, body: s.body });
      }
    };

    /** The outbox inserts of the last grade invocation, as the stream hands them to the notifier (25 a batch). */
    const notifyNew = async () => {
      const inserts: DynamoDBRecord[] = [];
      for (const [key, item] of fake.table('state')) {
        if (item[STATE_TABLE.kindAttribute]?.S !== STATE_TABLE.outboxKind || seenOutbox.has(key)) continue;
        seenOutbox.add(key);
        inserts.push({
          eventID: `e${seenOutbox.size}`,
          eventName: 'INSERT',
          eventSource: 'aws:dynamodb',
          awsRegion: 'us-east-1',
          dynamodb: {
            Keys: { pk: item.pk!, sk: item.sk! } as never,
            NewImage: item as never,
            SequenceNumber: String(seenOutbox.size),
            SizeBytes: itemSize(item),
            StreamViewType: 'NEW_IMAGE',
          },
        });
      }
      for (let i = 0; i < inserts.length; i += 25) {
        const batch = inserts.slice(i, i + 25);
        m.notify.records += batch.length;
        m.notifications += batch.length;
        const published = meter.published.length;
        const res = await invoke(m.notify, () => notifyMod.handler({ Records: batch }, lambdaContext('Notify', 256)));
        if (res.batchItemFailures.length > 0) throw new Error('the notifier failed records');
        takeTimers();
        // Each page is acknowledged from its link (the JSON API: an app or an integration engine).
        const tokens = new Set<string>();
        for (const p of meter.published.slice(published))
          for (const t of p.matchAll(/\/ack\/([A-Za-z0-9._-]+)/g)) tokens.add(t[1]!);
        m.pages += tokens.size;
        for (const t of tokens) {
          clock += 60_000;
          const r = await invoke(m.ack, () =>
            ackMod.handler(
              httpEvent({ path: '/v1/acks', body: JSON.stringify({ token: t, by: 'Dr Ward' }) }),
              lambdaContext('Ack', 256),
            ),
          );
          if (r.statusCode !== 200 && r.statusCode !== 409)
            throw new Error(`acknowledgement answered ${r.statusCode}: ${r.body}`);
          clock -= 60_000;
        }
      }
    };

    // The gateway posts the feed as it comes, `messagesPerRequest` at a time; the grade function takes the queued
    // records in batches as SQS hands them over.
    const n = options.messagesPerRequest;
    for (let i = 0; i < feed.length; i += n) {
      const chunk: DeviceMessage[] = feed.slice(i, i + n);
      clock = Date.parse(chunk[chunk.length - 1]!.observedAt) + 2_000;
      const body = n === 1 ? JSON.stringify(chunk[0]) : JSON.stringify(chunk);
      const res = await invoke(m.ingest, () =>
        ingestMod.handler(
          httpEvent({
            path: n === 1 ? '/v1/messages' : '/v1/messages/batch',
            headers: { authorization: `Bearer ${token}` },
            body,
          }),
          lambdaContext('Ingest', 512),
        ),
      );
      if (res.statusCode !== 202) throw new Error(`ingest answered ${res.statusCode}: ${res.body}`);
      m.requests++;
      const records = gradeRecords();
      for (let k = 0; k < records.length; k += options.recordsPerInvocation) {
        const batch = records.slice(k, k + options.recordsPerInvocation);
        m.grade.records += batch.length;
        const out = await invoke(m.grade, () => gradeMod.handler({ Records: batch }, lambdaContext('Grade', 512)));
        if (out.batchItemFailures.length > 0) throw new Error('the grade function failed records');
        await notifyNew();
      }
      // Escalation timers that are due fire the escalate function (the pages were acknowledged: nothing to page).
      for (const due of pendingTimers.filter((t) => t.wakeAt <= clock)) {
        pendingTimers.splice(pendingTimers.indexOf(due), 1);
        await invoke(m.timers, () =>
          escalateMod.handler({ Records: [timerRecord(due.body)] }, lambdaContext('Escalate', 256)),
        );
        takeTimers();
      }
    }

    // One scheduled run with the scenario's patients enrolled (copies of the feed's): what each minute costs.
    const states = [...fake.table('state').values()].filter(
      (i) => i[STATE_TABLE.kindAttribute]?.S === STATE_TABLE.stateKind,
    );
    for (let i = states.length; i < options.tickPatients; i++) {
      const copy = structuredClone(states[i % states.length]!);
      copy[STATE_TABLE.partitionKey] = { S: `COPY-${i}` };
      fake.table('state').set(`COPY-${i}\u0000${STATE_TABLE.stateSortKey}`, copy);
    }
    clock += 60_000;
    await invoke(m.tick, () =>
      escalateMod.handler(
        { source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date(clock).toISOString() },
        lambdaContext('Escalate', 256),
      ),
    );
    meter.sent.splice(0);

    for (const [key] of fake.table('state')) if (key.startsWith('COPY-')) fake.table('state').delete(key);
    for (const [name, model] of Object.entries(TABLES)) {
      const items = [...fake.table(name).values()];
      m.storage[name] = { items: items.length, bytes: items.reduce((s, i) => s + storedBytes(model, i), 0) };
    }
    const sizes = [...fake.table('state').values()]
      .filter((i) => i[STATE_TABLE.kindAttribute]?.S === STATE_TABLE.stateKind)
      .map(itemSize);
    m.stateItem = { max: Math.max(...sizes), mean: sizes.reduce((a, b) => a + b, 0) / sizes.length };
    return m;
  } finally {
    DynamoDBClient.prototype.send = stub;
    meter.restore();
    fake.restore();
    simulated = undefined;
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

function timerRecord(body: string): SQSRecord {
  return {
    messageId: randomUUID(),
    receiptHandle: 'rh',
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:CrsAlerting-EscalationTimers',
    awsRegion: 'us-east-1',
  };
}
