// Failures of the deployed shape on an emulator, through the real `crs serve --backend aws`: a poison message is
// retried up to the queue's receive limit and dead-lettered while other patients go on; an outbox record whose
// invocations always fail is given up alone, after a handful of bisected retries, while the later records are
// paged, and `crs outbox retry --backend aws` pages it from the stream afterwards; an SNS outage delays pages but
// loses and repeats none, and sends nothing to the on-failure queue; a process killed after a page's state transaction and before its publish
// sends the page after a restart, once.
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import {
  byPatient,
  health,
  pageLines,
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
  type PageLine,
} from '#test/support/aws-serve.ts';
import { startFaultProxy } from '#test/support/fault-proxy.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';
import { recentFeed } from '#test/support/feed.ts';
import { crsAsync } from '#test/support/cli.ts';

let emulator: Emulator;
let sqs: SQSClient;
let dynamodb: DynamoDBClient;
beforeAll(async () => {
  emulator = await startEmulator();
  const config = {
    endpoint: emulator.endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  sqs = new SQSClient(config);
  dynamodb = new DynamoDBClient(config);
});
afterAll(async () => {
  sqs?.destroy();
  dynamodb?.destroy();
  await emulator?.stop();
});

const replayPages = (messages: DeviceMessage[]) => {
  const replay = new Replay(DEFAULT_CONFIG);
  return messages
    .flatMap((m, i) => replay.line(JSON.stringify(m), i + 1))
    .filter((e) => e.type === 'notification') as unknown as PageLine[];
};

async function postAll(url: string, messages: DeviceMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 20) expect((await post(url, messages.slice(i, i + 20))).status).toBe(202);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failures of the deployed shape on an emulator', () => {
  it('dead-letters a poison message after the receive limit while other patients go on', async () => {
    const feed = recentFeed(200, 20);
    const expected = replayPages(feed);
    const prefix = runPrefix('poison');
    const server = await spawnAwsServe(emulator.endpoint, prefix, ['--visibility-timeout', '1']);
    try {
      // Something on the queue that no grade can apply (it bypassed the ingest's validation).
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: server.resources.queue,
          MessageBody: '{"message":{"patientId":"P-POISON"}',
          MessageGroupId: 'P-POISON',
          MessageDeduplicationId: 'poison-1',
        }),
      );
      await postAll(server.url, feed);
      const h = await settle(server, expected.length);
      expect(h.pages.printed).toBe(expected.length);
      for (let i = 0; (await health(server)).deadLetters < 1; i++) {
        if (i > 200) throw new Error('the poison message never reached the DLQ');
        await sleep(100);
      }
      const dlqUrl =
        server.resources.queues[Object.keys(server.resources.queues).find((k) => k.startsWith('MessagesDlq'))!]!;
      const dead = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }),
      );
      // Received by the grade source 3 times (the queue's maxReceiveCount), and once more by this look.
      expect(dead.Messages?.map((m) => [m.Attributes?.MessageGroupId, m.Attributes?.ApproximateReceiveCount])).toEqual([
        ['P-POISON', '4'],
      ]);
      const after = await health(server);
      expect(after.grade.failedRecords).toBe(3); // received, failed and left three times, then dead-lettered
      expect(after.queue).toEqual({ visible: 0, inFlight: 0 });
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    expect(byPatient(pageLines(server.lines))).toEqual(byPatient(expected));
  }, 180_000);

  it('gives up on an outbox record that always fails, alone, pages every later record of the shard meanwhile, and pages it from the stream on crs outbox retry', async () => {
    const feed = recentFeed(200, 20);
    const expected = replayPages(feed);
    // The first patient of the feed with one grade change: its outbox record is early in the stream, before most
    // of the others, which a stuck shard would hold back.
    const pagesOf = byPatient(expected);
    const poison = feed.map((m) => m.patientId).find((p) => pagesOf[p]?.length === 1)!;
    const prefix = runPrefix('stuck');
    const dir = mkdtempSync(join(tmpdir(), 'crs-stuck-'));
    const outputs = join(dir, 'outputs.json');
    // The test hook fails the notify function's invocations with the poison patient's records (as a crash would),
    // in the local host, before the handler: only `crs outbox`, outside it, can page them.
    const server = await spawnAwsServe(emulator.endpoint, prefix, ['--outputs', outputs], {
      CRS_TEST_FAIL_NOTIFY_PATIENT: poison,
    });
    const others = expected.filter((p) => p.patientId !== poison);
    try {
      const started = Date.now();
      await postAll(server.url, feed);
      const h = await settle(server, others.length);
      const seconds = (Date.now() - started) / 1000;
      // Everything but the failing record was paged, long before its record age (5 minutes) would have expired.
      expect(h.pages.printed).toBe(others.length);
      expect(seconds).toBeLessThan(120);
      const outbox = await dynamodb.send(
        new QueryCommand({
          TableName:
            server.resources.tables[Object.keys(server.resources.tables).find((k) => k.startsWith('StateTable'))!]!,
          KeyConditionExpression: 'pk = :p AND begins_with(sk, :o)',
          ExpressionAttributeValues: { ':p': { S: poison }, ':o': { S: 'outbox#' } },
        }),
      );
      const failing = outbox.Items?.length ?? 0;
      expect(failing).toBeGreaterThanOrEqual(1);
      // Each failing record went to the on-failure queue by itself (bisected down to it): no healthy record with it.
      expect(h.notifyFailures).toBe(failing);
      expect(h.notify.sentToOnFailure).toBe(failing);
      const onFailure =
        server.resources.queues[Object.keys(server.resources.queues).find((k) => k.startsWith('NotifyFailures'))!]!;
      const described = await sqs.send(new ReceiveMessageCommand({ QueueUrl: onFailure, MaxNumberOfMessages: 10 }));
      const infos = (described.Messages ?? []).map(
        (m) =>
          JSON.parse(m.Body!) as {
            requestContext: { condition: string };
            DDBStreamBatchInfo: { batchSize: number; startSequenceNumber: string; endSequenceNumber: string };
          },
      );
      expect(infos.map((i) => [i.requestContext.condition, i.DDBStreamBatchInfo.batchSize])).toEqual(
        infos.map(() => ['RetryAttemptsExhausted', 1]),
      );
      for (const i of infos)
        expect(i.DDBStreamBatchInfo.startSequenceNumber).toBe(i.DDBStreamBatchInfo.endSequenceNumber);
      for (const m of described.Messages ?? []) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: onFailure,
            ReceiptHandle: m.ReceiptHandle!,
            VisibilityTimeout: 0,
          }),
        );
      }
      expect(pageLines(server.lines).some((p) => p.patientId === poison)).toBe(false);
      expect(byPatient(pageLines(server.lines))).toEqual(byPatient(others));

      // The operator sees where the records are, and has them read from the stream again and paged.
      const env = {
        AWS_ENDPOINT_URL: emulator.endpoint,
        AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
      };
      const listed = await crsAsync(['outbox', 'list', '--json', '--backend', 'aws', '--outputs', outputs], env);
      expect(listed.status, listed.stderr).toBe(0);
      const ranges = (JSON.parse(listed.stdout) as { streamFailures: { id: string; condition: string }[] })
        .streamFailures;
      expect(ranges.map((r) => r.condition)).toEqual(infos.map(() => 'RetryAttemptsExhausted'));
      const retry = await crsAsync(['outbox', 'retry', '--all', '--backend', 'aws', '--outputs', outputs], env);
      expect(retry.status, retry.stderr).toBe(0);
      expect(retry.stdout).toContain(`0 parked record(s) and ${failing} stream range(s) paged again`);
      const after = await settle(server, expected.length);
      expect(after.pages.printed).toBe(expected.length);
      expect(after.notifyFailures).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(byPatient(pageLines(server.lines))).toEqual(byPatient(expected));
  }, 300_000);

  it('delays pages through an SNS outage, losing and repeating none', async () => {
    const feed = recentFeed(400, 40);
    const expected = replayPages(feed);
    const proxy = await startFaultProxy(emulator.endpoint);
    const prefix = runPrefix('outage');
    // The escalate tick every 5 s: pages stored while SNS was down go out with it.
    const server = await spawnAwsServe(proxy.url, prefix, ['--schedule-interval', '5']);
    try {
      const half = feed.length / 2;
      await postAll(server.url, feed.slice(0, half));
      const before = await settle(server, replayPages(feed.slice(0, half)).length);

      proxy.down.add('sns');
      await postAll(server.url, feed.slice(half));
      // Every message of the second half graded and the pager refused by SNS: nothing got through meanwhile.
      // (Not idle: the notifier retries the records whose publish failed until SNS is back.)
      let during = await health(server);
      for (
        const end = Date.now() + 60_000;
        during.grade.succeeded < feed.length || !proxy.refused.get('sns');
        during = await health(server)
      ) {
        if (Date.now() > end)
          throw new Error(`the second half was not graded against a refusing SNS: ${JSON.stringify(during)}`);
        await sleep(100);
      }
      expect(during.pages.printed).toBe(before.pages.printed); // nothing got through SNS
      proxy.down.delete('sns');

      const after = await settle(server, expected.length);
      expect(after.pages.printed).toBe(expected.length);
      expect(after.notifyFailures).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await proxy.close();
      await teardown(emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines);
    expect(new Set(served.map((p) => p.notificationId)).size).toBe(served.length);
    expect(byPatient(served)).toEqual(byPatient(expected));
  }, 240_000);

  it('sends a page committed before a crash after the restart, exactly once', async () => {
    const vignettes = JSON.parse(readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8')) as {
      scheme: string;
      messages: DeviceMessage[];
    }[];
    const messages = vignettes.filter((v) => v.scheme === 'astct2019').flatMap((v) => v.messages);
    const expected = replayPages(messages);
    const prefix = runPrefix('crash');
    // By message, not messageId: one vignette (P-19) reuses a messageId with other content.
    const accepted = new Set<DeviceMessage>();
    const postUntilDown = async (url: string) => {
      for (const m of messages) {
        if (accepted.has(m)) continue;
        try {
          if ((await post(url, m)).status === 202) accepted.add(m);
        } catch {
          return; // the server is gone
        }
      }
    };

    const doomed = await spawnAwsServe(emulator.endpoint, prefix, ['--visibility-timeout', '2'], {
      CRS_TEST_CRASH_BEFORE_PUBLISH: '1',
    });
    await postUntilDown(doomed.url);
    await doomed.exited;
    expect(doomed.child.signalCode).toBe('SIGKILL');
    expect(doomed.lines.filter((l) => l.trim() !== '')).toEqual([]);
    // The state and its page are in the table: killed between the transaction and the publish.
    const firstPage = expected.find((p) => accepted.has(messages.find((m) => m.patientId === p.patientId)!))!;
    const outbox = await dynamodb.send(
      new QueryCommand({
        TableName:
          doomed.resources.tables[Object.keys(doomed.resources.tables).find((k) => k.startsWith('StateTable'))!]!,
        KeyConditionExpression: 'pk = :p AND begins_with(sk, :o)',
        ExpressionAttributeValues: { ':p': { S: firstPage.patientId }, ':o': { S: 'outbox#' } },
      }),
    );
    expect(outbox.Items?.length ?? 0).toBeGreaterThan(0);

    const server = await spawnAwsServe(emulator.endpoint, prefix, ['--visibility-timeout', '2']);
    try {
      await postUntilDown(server.url);
      expect(accepted.size).toBe(messages.length);
      const h = await settle(server, expected.length); // idle: what the crash left in flight was redelivered too
      expect(h.pages.printed).toBe(expected.length);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines);
    expect(new Set(served.map((p) => p.notificationId)).size).toBe(served.length);
    expect(byPatient(served)).toEqual(byPatient(expected));
  }, 240_000);
});
