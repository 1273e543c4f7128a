// A failure of the deployed shape on an emulator, through the real `crs serve --backend aws`: an outbox record
// whose invocations always fail is given up alone, after a handful of bisected retries, while the later records are
// paged, and `crs outbox retry --backend aws` pages it from the stream afterwards. (One file per failure,
// aws-failures-*.test.ts, so that they run side by side, each on its own moto.)
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  byPatient,
  pageLines,
  postAll,
  replayPages,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { crsMain } from '#test/support/cli.ts';
import { recentFeed } from '#test/support/feed.ts';
import { failureRun } from '#test/support/aws-failures.ts';

const run = failureRun();

describe('failures of the deployed shape on an emulator', () => {
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
    const server = await spawnAwsServe(run.emulator.endpoint, prefix, ['--outputs', outputs, '--config', run.config], {
      CRS_TEST_FAIL_NOTIFY_PATIENT: poison,
    });
    const others = expected.filter((p) => p.patientId !== poison);
    try {
      const started = Date.now();
      await postAll(server.url, feed);
      // Up to 4 minutes: about 25 s alone, and a busy machine can take several times that (until 2026-12-06 2
      // minutes, which a load of 6-8 once ran out).
      const h = await settle(server, others.length, 240_000);
      const seconds = (Date.now() - started) / 1000;
      // Everything but the failing record was paged before its record age (5 minutes) would have expired and let the
      // shard move on.
      expect(h.pages.printed).toBe(others.length);
      expect(seconds).toBeLessThan(240);
      const outbox = await run.dynamodb.send(
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
      const described = await run.sqs.send(new ReceiveMessageCommand({ QueueUrl: onFailure, MaxNumberOfMessages: 10 }));
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
        await run.sqs.send(
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
        AWS_ENDPOINT_URL: run.emulator.endpoint,
        AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
      };
      // In this process (aws-conservation runs both commands through bin/crs.js).
      const crs = (args: string[]) => crsMain(args, { env, wentOnMs: 60_000 });
      const listed = await crs(['outbox', 'list', '--json', '--backend', 'aws', '--outputs', outputs]);
      expect(listed.status, listed.stderr).toBe(0);
      const ranges = (JSON.parse(listed.stdout) as { streamFailures: { id: string; condition: string }[] })
        .streamFailures;
      expect(ranges.map((r) => r.condition)).toEqual(infos.map(() => 'RetryAttemptsExhausted'));
      const retry = await crs(['outbox', 'retry', '--all', '--backend', 'aws', '--outputs', outputs]);
      expect(retry.status, retry.stderr).toBe(0);
      expect(retry.stdout).toContain(`0 parked record(s) and ${failing} stream range(s) paged again`);
      const after = await settle(server, expected.length);
      expect(after.pages.printed).toBe(expected.length);
      expect(after.notifyFailures).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(run.emulator.endpoint, prefix);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(byPatient(pageLines(server.lines))).toEqual(byPatient(expected));
  }, 420_000);
});
