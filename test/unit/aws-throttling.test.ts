// The AWS functions under throttling and partial failures of the AWS calls they make: DynamoDB answering some of a
// batch read's keys only (UnprocessedKeys, what it does while throttling), a request that never answers, and what
// each function then tells its trigger. The question each test asks is what a user would see: a healthy patient's
// messages held or dead-lettered because of another's throttling, a loop that never ends.
import {
  BatchGetItemCommand,
  type BatchWriteItemCommand,
  GetItemCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type DynamoDBClient,
  type KeysAndAttributes,
} from '@aws-sdk/client-dynamodb';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { arrivalOf } from '#app/digest.ts';
import { gradePatient } from '#app/grade.ts';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import type { PageMessage } from '#ports';
import { batchGet, batchGetTables, batchWrite } from '#adapters/aws/batch-get.ts';
import { isOutage } from '#adapters/aws/outage.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { transactWrite } from '#adapters/aws/transact.ts';
import { dynamoPager } from '#adapters/aws/dynamo-pager.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';
import { httpEvent, quiet, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { sweepFakes } from '#test/support/sweep.ts';
import { sweepStaleFeeds } from '#adapters/aws/stale-feed-sweep.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const ddb = new FakeDynamo(PAGING_TABLES);
beforeEach(() => ddb.reset());
afterAll(() => ddb.restore());

let grade: typeof import('#functions/grade/handler.ts');
let escalate: typeof import('#functions/escalate/handler.ts');
let ack: typeof import('#functions/ack/handler.ts');
beforeAll(async () => {
  process.env.CRS_STATE_TABLE = 'state';
  process.env.CRS_AUDIT_TABLE = 'audit';
  process.env.CRS_SEEN_TABLE = 'seen';
  process.env.CRS_ESCALATION_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers';
  process.env.AWS_REGION = 'eu-west-1';
  grade = await import('#functions/grade/handler.ts');
  escalate = await import('#functions/escalate/handler.ts');
  ack = await import('#functions/ack/handler.ts');
});

/** A client of the fake whose requests about `patientId` are answered as `about` says (undefined: as the fake does). */
function clientWith(about: (command: unknown) => Promise<unknown> | undefined): DynamoDBClient {
  const client = ddb.client();
  const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
  client.send = ((command: unknown) => about(command) ?? send(command)) as typeof client.send;
  return client;
}

/**
 * Whether a command's keys (a GetItem's, a BatchGetItem's: the state's `pk`, the seen messages' `patientId`) are all
 * the patient's, but for the state table's restore record, read with a new patient's seen messages.
 */
function isAbout(command: unknown, patientId: string): boolean {
  const input = (command as { input: Record<string, unknown> }).input;
  if (command instanceof GetItemCommand) return (input.Key as { pk?: { S?: string } }).pk?.S === patientId;
  if (command instanceof BatchGetItemCommand) {
    type Key = { pk?: { S?: string }; patientId?: { S?: string } };
    const keys = Object.values(input.RequestItems as Record<string, { Keys: Key[] }>).flatMap((r) => r.Keys);
    const own = keys.filter((k) => k.pk?.S !== '#restore');
    return own.length > 0 && own.every((k) => (k.pk ?? k.patientId)?.S === patientId);
  }
  return false;
}

/** A Lambda context whose function times out `timeoutMs` after now (the grade function's is 15 s). */
function lambdaContext(timeoutMs: number): Context {
  const end = Date.now() + timeoutMs;
  return {
    awsRequestId: 'req-throttled',
    functionName: 'grade',
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
  } as unknown as Context;
}

/** Whether the promise has settled once the clock has moved `ms` on (fake timers). */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

const failedIds = (r: SQSBatchResponse) => r.batchItemFailures.map((f) => f.itemIdentifier).sort();

/**
 * The next `times` transactions cancelled as DynamoDB cancels one it throttles: ThrottlingError for an item, None for
 * the rest. (The SDK retries a throttled request, never a cancelled transaction, whatever cancelled it.)
 */
function throttledTransactions(times: number): DynamoDBClient & { cancelled: number } {
  const client = Object.assign(
    clientWith((command) => {
      if (!(command instanceof TransactWriteItemsCommand) || client.cancelled === times) return undefined;
      client.cancelled++;
      const items = command.input.TransactItems ?? [];
      return Promise.reject(
        new TransactionCanceledException({
          message:
            'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]',
          $metadata: {},
          CancellationReasons: items.map((_, i) => ({ Code: i === items.length - 1 ? 'ThrottlingError' : 'None' })),
        }),
      );
    }),
    { cancelled: 0 },
  );
  return client;
}

describe('the grade function while DynamoDB throttles one patient', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: NOW }));
  afterEach(() => vi.useRealTimers());

  const handlerOn = (client: DynamoDBClient) =>
    quiet(
      grade.createGradeHandler({
        store: new DynamoStateStore(client, 'state', Date.now, 'audit', 'seen'),
        config: DEFAULT_CONFIG,
        now: Date.now,
        ...telemetry('grade'),
      }),
    );

  const batch = () => {
    const a = [enrol('A'), msg('A', 0, { vitals: { temperatureC: 38.9 } })].map((m) => sqsRecord(m));
    const b = [enrol('B'), msg('B', 0, { vitals: { temperatureC: 38.9 } })].map((m) => sqsRecord(m));
    return { a, b, event: sqsEvent([a[0]!, b[0]!, a[1]!, b[1]!]) };
  };

  it("fails the throttled patient's records, not the batch, when its seen-message reads keep coming back unprocessed", async () => {
    // DynamoDB answers a BatchGetItem it is throttling with the keys it did not read (UnprocessedKeys), for as long
    // as it throttles. Until 2026-12-05 the store asked again for ever: the invocation ran into its timeout, and
    // the whole batch came back, the other patients' records with it (held 90 s a time; dead-lettered after 3).
    const client = clientWith((command) =>
      command instanceof BatchGetItemCommand && isAbout(command, 'B')
        ? Promise.resolve({
            Responses: { seen: [] },
            UnprocessedKeys: (command.input as { RequestItems: unknown }).RequestItems,
          })
        : undefined,
    );
    const { a, b, event } = batch();
    const answer = handlerOn(client)(event, lambdaContext(15_000));
    expect(await settledWithin(answer, 14_000)).toBe(true);
    const res = await answer;
    expect(failedIds(res)).toEqual(b.map((r) => r.messageId).sort());
    expect(failedIds(res)).not.toContain(a[0]!.messageId);
    expect(ddb.itemAt('state', { pk: { S: 'A' }, sk: { S: 'state' } })).toBeDefined();
    // It gave up: no read of B is still being retried after the answer.
    const reads = ddb.mock.commandCalls(BatchGetItemCommand).length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ddb.mock.commandCalls(BatchGetItemCommand).length).toBe(reads);
  });

  it("answers before the function's timeout when a request about one patient never answers: only that patient is retried", async () => {
    // A request whose connection hangs (the SDK clients have no request timeout) held the invocation to Lambda's
    // timeout: the whole batch failed, the other patients' committed records were delivered again, their groups
    // held behind them for the queue's visibility timeout.
    const client = clientWith((command) =>
      command instanceof GetItemCommand && isAbout(command, 'B') ? new Promise(() => undefined) : undefined,
    );
    const { a, b, event } = batch();
    const answer = handlerOn(client)(event, lambdaContext(15_000));
    expect(await settledWithin(answer, 14_999)).toBe(true);
    const res = await answer;
    expect(failedIds(res)).toEqual(b.map((r) => r.messageId).sort());
    expect(failedIds(res)).not.toContain(a[1]!.messageId);
    expect(ddb.itemAt('state', { pk: { S: 'A' }, sk: { S: 'state' } })).toBeDefined();
  });
  it('writes a grade change whose transaction DynamoDB cancelled for throttling, in the same invocation', async () => {
    // Until 2026-12-05 a throttled transaction (every grade change is one) failed the patient at once: its grade
    // change waited for the queue's visibility timeout (90 s), and was dead-lettered after 3 such times.
    const { a, event } = batch();
    const answer = handlerOn(throttledTransactions(2))(event, lambdaContext(15_000));
    expect(await settledWithin(answer, 5_000)).toBe(true);
    expect((await answer).batchItemFailures).toEqual([]);
    const outbox = ddb.items('state').filter((i) => i.sk?.S?.startsWith('outbox#'));
    expect(outbox.map((i) => i.pk?.S).sort()).toEqual(['A', 'B']);
    expect(a).toHaveLength(2);
  });
});

describe('the ack function while DynamoDB throttles', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }));
  afterEach(() => vi.useRealTimers());

  it('records an acknowledgement whose transaction DynamoDB cancelled for throttling, and says so (not a 500)', async () => {
    const sent: PageMessage[] = [];
    const paging = (client: DynamoDBClient) =>
      dynamoPager(
        {
          config: DEFAULT_CONFIG,
          ackSecret: Buffer.alloc(32, 7),
          ackBaseUrl: 'https://api.example/ack/',
          pagesTable: 'pages',
          auditTable: 'audit',
        },
        client,
        { sender: { send: async (m) => void sent.push(m) } },
      );
    await paging(ddb.client()).pager.onNotification(
      {
        notificationId: 'crs|P-1|#3',
        patientId: 'P-1',
        condition: 'crs',
        kind: 'escalation',
        toGrade: 3,
        teams: ['icu'],
        summary: 'PROVISIONAL CRS grade 3, patient P-1',
      },
      NOW,
    );
    const { pager, pages } = paging(throttledTransactions(1));
    const handler = quiet(
      ack.createAckHandler({
        paging: async () => ({ pager, page: (id) => pages.get(id), config: DEFAULT_PAGING, timeZone: 'UTC' }),
        now: () => NOW + 60_000,
        ...telemetry('ack'),
      }),
    );
    const token = sent[0]!.ackUrl!.split('/').at(-1)!;
    const answer = handler(
      httpEvent({
        method: 'POST',
        path: '/v1/acks',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, by: 'Dr A' }),
      }),
    );
    expect(await settledWithin(answer, 5_000)).toBe(true);
    const res = await answer;
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body as string)).toMatchObject({ acknowledged: true, changed: true });
    expect((await pages.get('crs|P-1|#3|icu'))?.status).toBe('acknowledged');
  });
});

describe('transactions DynamoDB keeps cancelling for throttling', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }));
  afterEach(() => vi.useRealTimers());

  it('are sent 3 times in all, with a backoff, then left to the caller (retried as an outage)', async () => {
    const client = throttledTransactions(Number.POSITIVE_INFINITY);
    const store = new DynamoStateStore(client, 'state', () => NOW, 'audit', 'seen');
    const grading = gradePatient(store, DEFAULT_CONFIG, 'A', [
      enrol('A'),
      msg('A', 0, { vitals: { temperatureC: 39 } }),
    ]);
    grading.catch(() => undefined);
    expect(await settledWithin(grading, 60_000)).toBe(true);
    await expect(grading).rejects.toThrow(/ThrottlingError/);
    expect(client.cancelled).toBe(3);
    expect(ddb.items('state')).toEqual([]);
  });
});

describe('the stale-feed sweep while SNS throttles the pages', () => {
  /** P-1's state: enrolled, its monitor heard at these minutes after T0. */
  function heardAt(minutes: number[]): PatientState {
    let state: PatientState | undefined;
    for (const m of [enrol('P-1', -60), ...minutes.map((t) => msg('P-1', t, { vitals: { heartRate: 80 } }))])
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    return state!;
  }

  it('closes a "no data" alert whose pages SNS refused, once the data resumes: the ladder never climbs for it', async () => {
    // The pager stores an alert's pages, then sends them; SNS throttling the send (SendDeferred) left the pages
    // stored and the sweep cut short before it recorded the alert in force. Until 2026-12-05, a monitor that sent
    // again before SNS took pages was never given its all-clear: once SNS was back the "NO DATA" page went out
    // and its ladder climbed (nurse in charge, then round again), for a feed that had resumed.
    const phone: string[] = [];
    let snsDown = true;
    const audit = new MemoryAuditLog();
    const pages = new MemoryPageStore(audit);
    const pager = new Pager({
      pages,
      sender: {
        send: async (m: PageMessage) => {
          if (snsDown) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottledException' });
          phone.push(`${m.page.kind} ${m.role} ${m.page.summary.slice(0, 12)}`);
        },
      },
      audit,
      config: DEFAULT_PAGING,
      ackSecret: randomBytes(32),
      ackBaseUrl: 'https://x/ack/',
    });
    const fakes = sweepFakes();
    let now = T0;
    const handler = quiet(
      escalate.createEscalateHandler({
        paging: async () => ({
          pager,
          sweep: { pages: fakes.deps().pages, states: fakes.deps().states, timeZone: 'UTC' },
          config: DEFAULT_PAGING,
        }),
        timer: { wake: async () => undefined },
        now: () => now,
        ...telemetry('escalate'),
      }),
    );
    const minute = async (m: number) => {
      now = T0 + m * 60_000;
      await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
    };

    fakes.states.set('P-1', heardAt([0]));
    for (let m = 1; m <= 16; m++) await minute(m); // quiet from minute 15: the alert's pages stored, SNS refusing
    for (let m = 17; m <= 60; m++) {
      fakes.states.set('P-1', heardAt([0, m - 1])); // the monitor sends again, every minute
      snsDown = m < 18;
      await minute(m);
    }

    expect(phone.filter((p) => p.includes('nurse in charge'))).toEqual([]);
    expect(phone.at(-1)).toMatch(/^alert-cleared bedside nurse Data resumed/);
    const alertPages = (await pages.patientPages('P-1', 100)).pages.filter((p) => p.kind === 'alert');
    expect(alertPages.map((p) => p.status)).not.toContain('open');
  });

  it('keeps in force the alerts it raised before DynamoDB failed it on another: each is cleared when its data resumes', async () => {
    // Two monitors of two wards quiet at once; paging the second fails (DynamoDB throttling the pages table). Until
    // 2026-12-05 the sweep then recorded neither: the first patient's "no data" page was out, and when its monitor
    // sent again before the next sweep, no all-clear ever came and its ladder climbed on.
    const fakes = sweepFakes();
    const quietSince = (patientId: string, ward: string, minutes: number[]) => {
      let state: PatientState | undefined;
      for (const m of [
        enrol(patientId, -60, { ward }),
        ...minutes.map((t) => msg(patientId, t, { vitals: { heartRate: 80 } })),
      ])
        state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      fakes.states.set(patientId, state!);
    };
    quietSince('P-1', 'H4', [0]);
    quietSince('P-2', 'H5', [0]);
    const paged: string[] = [];
    const deps = () => ({
      ...fakes.deps(),
      pager: {
        onAlert: async (a: { alertId: string }) => {
          if (a.alertId.startsWith('stale-feed|P-2|') && paged.length === 1)
            throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
              name: 'ThrottlingException',
            });
          paged.push(a.alertId);
        },
      },
    });
    await expect(sweepStaleFeeds(deps(), T0 + 15 * 60_000)).rejects.toThrow(/throughput/);
    expect(paged).toEqual([`stale-feed|P-1|${T0}`]);
    quietSince('P-1', 'H4', [0, 15]); // P-1's monitor sends again before the next sweep
    await sweepStaleFeeds(deps(), T0 + 16 * 60_000);
    expect(paged).toEqual([`stale-feed|P-1|${T0}`, `stale-feed|P-1|${T0}|cleared`, `stale-feed|P-2|${T0}`]);
    expect([...fakes.inForce.keys()]).toEqual(['P-2']);
  });
});

describe('batch reads and transactions under throttling, pinned by a mutation run', () => {
  /** A client whose transactions are cancelled, each for these reasons, until they run out. */
  function cancelling(...reasons: string[][]) {
    let sends = 0;
    const client = {
      send: async () => {
        const codes = reasons[sends++];
        if (!codes) return {};
        throw new TransactionCanceledException({
          message: `Transaction cancelled [${codes.join(', ')}]`,
          $metadata: {},
          CancellationReasons: codes.map((Code) => ({ Code })),
        });
      },
    } as unknown as DynamoDBClient;
    return { client, sends: () => sends };
  }
  const input = { TransactItems: [] };

  it('sends a transaction again when DynamoDB cancelled it for any of its throttling reasons, after a backoff', async () => {
    for (const reason of ['ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']) {
      const c = cancelling(['None', reason]);
      const slept: number[] = [];
      await transactWrite(c.client, input, async (ms) => void slept.push(ms));
      expect([c.sends(), slept.length], reason).toEqual([2, 1]);
      expect(slept[0]).toBeGreaterThanOrEqual(0);
      expect(slept[0]).toBeLessThan(500);
    }
  });

  it('never sends again a transaction cancelled for anything else, throttling among the reasons or not (a conflict)', async () => {
    for (const codes of [
      ['ConditionalCheckFailed', 'ThrottlingError'],
      ['None', 'None'],
    ]) {
      const c = cancelling(codes, codes);
      await expect(transactWrite(c.client, input, async () => undefined)).rejects.toThrow(/cancelled/);
      expect(c.sends(), codes.join()).toBe(1);
    }
  });

  it('backs off 100, 200, 400, 800 ms, then 1 s, between the asks for keys left unprocessed, then fails (an outage)', async () => {
    const client = {
      send: async (command: BatchGetItemCommand) => ({
        Responses: { t: [] },
        UnprocessedKeys: { t: { Keys: command.input.RequestItems!.t!.Keys } },
      }),
    } as unknown as DynamoDBClient;
    const slept: number[] = [];
    await expect(batchGet(client, 't', [{ pk: { S: 'A' } }], {}, async (ms) => void slept.push(ms))).rejects.toThrow(
      /unprocessed 6 times/,
    );
    expect(slept).toEqual([100, 200, 400, 800, 1000]);
  });

  it("reads two tables in one request: at most 100 keys over both, the ones left unprocessed asked again with their table's read", async () => {
    const sent: Record<string, KeysAndAttributes>[] = [];
    const client = {
      send: async (command: BatchGetItemCommand) => {
        const asked = command.input.RequestItems!;
        sent.push(asked);
        // The first time, the last key of each table is left unprocessed.
        const later = sent.length === 1;
        const answer = (t: string) => (later ? asked[t]!.Keys!.slice(0, -1) : asked[t]!.Keys!);
        return {
          Responses: Object.fromEntries(
            Object.keys(asked).map((t) => [t, answer(t).map((k) => ({ ...k, in: { S: t } }))]),
          ),
          UnprocessedKeys: later
            ? Object.fromEntries(Object.keys(asked).map((t) => [t, { Keys: asked[t]!.Keys!.slice(-1) }]))
            : {},
        };
      },
    } as unknown as DynamoDBClient;
    const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ pk: { S: `k${i}` } }));
    const found = await batchGetTables(
      client,
      {
        a: { keys: keys(1), read: { ConsistentRead: true } },
        b: { keys: keys(120), read: { ProjectionExpression: 'pk' } },
      },
      async () => undefined,
    );
    expect(found.get('a')).toHaveLength(1);
    expect(found.get('b')).toHaveLength(120);
    expect(sent.map((r) => Object.values(r).reduce((n, t) => n + t.Keys!.length, 0))).toEqual([100, 2, 21]);
    expect(sent[1]).toEqual({
      a: { ConsistentRead: true, Keys: [{ pk: { S: 'k0' } }] },
      b: { ProjectionExpression: 'pk', Keys: [{ pk: { S: 'k98' } }] },
    });
  });

  it('writes again what a batch write leaves unprocessed, 25 a request, as a batch read asks again; then fails naming the table (2026-12-07)', async () => {
    // DynamoDB throttling the table: every write left unprocessed. Until 2026-12-07 the restore's copy sent them
    // again for ever, and `crs restore --backend aws` hung without a word.
    const writes = Array.from({ length: 30 }, (_, i) => ({ PutRequest: { Item: { pk: { S: `P${i}` } } } }));
    const sent: number[] = [];
    const throttled = {
      send: async (command: BatchWriteItemCommand) => {
        const request = command.input.RequestItems!['the-state-table']!;
        sent.push(request.length);
        return { UnprocessedItems: { 'the-state-table': request } };
      },
    } as unknown as DynamoDBClient;
    const slept: number[] = [];
    const write = batchWrite(throttled, 'the-state-table', writes, async (ms) => void slept.push(ms));
    await expect(write).rejects.toThrow('DynamoDB left 25 writes of the-state-table unprocessed 6 times (throttled)');
    await expect(write).rejects.toMatchObject({ name: 'BatchWriteThrottled' });
    expect(isOutage(await write.catch((e: unknown) => e))).toBe(true);
    expect([sent, slept]).toEqual([
      [25, 25, 25, 25, 25, 25],
      [100, 200, 400, 800, 1000],
    ]);
    // Left unprocessed for a while, then taken: every write made, each batch of 25 on its own.
    let refusals = 2;
    const made: string[] = [];
    const slow = {
      send: async (command: BatchWriteItemCommand) => {
        const request = command.input.RequestItems!.t!;
        const left = refusals-- > 0 ? request.slice(1) : [];
        made.push(...request.slice(0, request.length - left.length).map((w) => w.PutRequest!.Item!.pk!.S!));
        return { UnprocessedItems: left.length > 0 ? { t: left } : {} };
      },
    } as unknown as DynamoDBClient;
    await batchWrite(slow, 't', writes, async () => undefined);
    expect(made.sort()).toEqual(writes.map((w) => w.PutRequest.Item.pk.S).sort());
  });
});
