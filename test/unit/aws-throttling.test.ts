// The AWS functions under throttling and partial failures of the AWS calls they make: DynamoDB answering some of a
// batch read's keys only (UnprocessedKeys, what it does while throttling), a request that never answers, and what
// each function then tells its trigger. The question each test asks is what a user would see: a healthy patient's
// messages held or dead-lettered because of another's throttling, a loop that never ends.
import { BatchGetItemCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { FakeDynamo, STATE_STORE_TABLES } from '#test/support/fake-dynamo.ts';
import { quiet, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { enrol, msg } from '#test/support/messages.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const ddb = new FakeDynamo(STATE_STORE_TABLES);
beforeEach(() => ddb.reset());
afterAll(() => ddb.restore());

type HandlerModule = typeof import('#functions/grade/handler.ts');
let grade: HandlerModule;
beforeAll(async () => {
  process.env.CRS_STATE_TABLE = 'state';
  process.env.CRS_AUDIT_TABLE = 'audit';
  process.env.CRS_SEEN_TABLE = 'seen';
  process.env.AWS_REGION = 'eu-west-1';
  grade = await import('#functions/grade/handler.ts');
});

/** A client of the fake whose requests about `patientId` are answered as `about` says (undefined: as the fake does). */
function clientWith(about: (command: unknown) => Promise<unknown> | undefined): DynamoDBClient {
  const client = ddb.client();
  const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
  client.send = ((command: unknown) => about(command) ?? send(command)) as typeof client.send;
  return client;
}

/** Whether a command's keys (a GetItem's, a BatchGetItem's: the state's `pk`, the seen messages' `patientId`) are all the patient's. */
function isAbout(command: unknown, patientId: string): boolean {
  const input = (command as { input: Record<string, unknown> }).input;
  if (command instanceof GetItemCommand) return (input.Key as { pk?: { S?: string } }).pk?.S === patientId;
  if (command instanceof BatchGetItemCommand) {
    type Key = { pk?: { S?: string }; patientId?: { S?: string } };
    const requests = Object.values(input.RequestItems as Record<string, { Keys: Key[] }>);
    return requests.every((r) => r.Keys.every((k) => (k.pk ?? k.patientId)?.S === patientId));
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
    // as it throttles. Until 2026-12-06 the store asked again for ever: the invocation ran into its timeout, and
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
});
