// A failure of the deployed shape on an emulator, through the real `crs serve --backend aws`: a poison message is
// retried up to the queue's receive limit and dead-lettered while other patients go on. (The other failures are in
// the aws-failures-*.test.ts beside this one: one file each, so that they run side by side, each on its own moto.)
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import {
  byPatient,
  health,
  pageLines,
  postAll,
  replayPages,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { recentFeed } from '#test/support/feed.ts';
import { failureRun } from '#test/support/aws-failures.ts';

const run = failureRun();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failures of the deployed shape on an emulator', () => {
  it('dead-letters a poison message after the receive limit while other patients go on', async () => {
    const feed = recentFeed(200, 20);
    const expected = replayPages(feed);
    const prefix = runPrefix('poison');
    const server = await spawnAwsServe(run.emulator.endpoint, prefix, [
      '--visibility-timeout',
      '1',
      '--config',
      run.config,
    ]);
    try {
      // Something on the queue that no grade can apply (it bypassed the ingest's validation).
      await run.sqs.send(
        new SendMessageCommand({
          QueueUrl: server.resources.queue,
          MessageBody: '{"message":{"patientId":"P-POISON"}',
          MessageGroupId: 'P-POISON',
          MessageDeduplicationId: 'poison-1',
        }),
      );
      await postAll(server.url, feed);
      const h = await settle(server, expected); // on a timeout, names the notifications not printed
      expect(h.pages.printed).toBe(expected.length);
      for (let i = 0; (await health(server)).deadLetters < 1; i++) {
        if (i > 200) throw new Error('the poison message never reached the DLQ');
        await sleep(100);
      }
      const dlqUrl =
        server.resources.queues[Object.keys(server.resources.queues).find((k) => k.startsWith('MessagesDlq'))!]!;
      const dead = await run.sqs.send(
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
      await teardown(run.emulator.endpoint, prefix);
    }
    expect(byPatient(pageLines(server.lines))).toEqual(byPatient(expected));
  }, 180_000);
});
