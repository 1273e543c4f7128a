// The grade and escalate functions' SQS event source in `crs serve --backend aws`
// (shared/hosts/aws-emulator/sqs-source.ts), on a fake queue: what Lambda's mapping deletes and what it leaves for
// the visibility timeout (so that SQS redelivers it, and dead-letters it after the receive limit), the records'
// attributes, and the mapping's concurrency.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type ReceiveMessageCommandInput,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SqsSourceSpec } from '#hosts/aws-emulator/provision.ts';
import { SqsEventSource } from '#hosts/aws-emulator/sqs-source.ts';
import { until } from '#test/support/until.ts';

/** A FIFO queue: receives hand out visible messages (a group at a time is not modelled), deletes remove them. */
class FakeQueue {
  readonly visible: Message[] = [];
  readonly deleted: string[] = [];
  /** Each visibility change: the message ids and the new timeout. */
  readonly renewed: { ids: string[]; seconds: number }[] = [];
  readonly receives: ReceiveMessageCommandInput[] = [];
  private n = 0;

  send(body: string, group = 'P-1', receiveCount = '1'): string {
    const id = `m${this.n++}`;
    this.visible.push({
      MessageId: id,
      ReceiptHandle: `rh-${id}`,
      Body: body,
      MD5OfBody: 'md5',
      Attributes: {
        ApproximateReceiveCount: receiveCount,
        SentTimestamp: '1700000000000',
        SenderId: 'AIDA',
        ApproximateFirstReceiveTimestamp: '1700000000001',
        SequenceNumber: `1800000000000000${this.n}`,
        MessageGroupId: group,
        MessageDeduplicationId: `d-${id}`,
      },
      MessageAttributes: { kind: { DataType: 'String', StringValue: 'timer' } },
    });
    return id;
  }

  readonly client = {
    send: async (command: unknown) => {
      await new Promise((r) => setImmediate(r));
      if (command instanceof ReceiveMessageCommand) {
        const i = command.input;
        this.receives.push(i);
        const taken = this.visible.splice(0, i.MaxNumberOfMessages ?? 1);
        const all = (names: string[] | undefined) => names?.includes('All') ?? false;
        return {
          Messages: taken.map(({ Attributes, MessageAttributes, ...m }) => ({
            ...m,
            ...(all(i.MessageSystemAttributeNames as string[]) ? { Attributes } : {}),
            ...(all(i.MessageAttributeNames) ? { MessageAttributes } : {}),
          })),
        };
      }
      if (command instanceof DeleteMessageBatchCommand) {
        for (const e of command.input.Entries ?? []) this.deleted.push(e.ReceiptHandle!.slice(3));
        return { Successful: command.input.Entries?.map((e) => ({ Id: e.Id })) };
      }
      if (command instanceof ChangeMessageVisibilityBatchCommand) {
        const entries = command.input.Entries ?? [];
        this.renewed.push({
          ids: entries.map((e) => e.ReceiptHandle!.slice(3)),
          seconds: entries[0]!.VisibilityTimeout!,
        });
        return { Successful: entries.map((e) => ({ Id: e.Id })) };
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    },
  } as unknown as SQSClient;
}

const spec: SqsSourceSpec = {
  role: 'grade',
  queue: {
    logicalId: 'Queue',
    name: 'q.fifo',
    url: 'http://sqs/q.fifo',
    arn: 'arn:aws:sqs:us-east-1:000000000000:q.fifo',
    fifo: true,
    visibilityTimeoutSeconds: 30,
  },
  batchSize: 10,
  reportBatchItemFailures: true,
};

let source: SqsEventSource | undefined;
afterEach(async () => {
  await source?.stop();
  source = undefined;
});

function sourceOn(
  queue: FakeQueue,
  invoke: (event: SQSEvent) => Promise<SQSBatchResponse | void>,
  over: Partial<SqsSourceSpec> = {},
  maxConcurrency = 1,
) {
  source = new SqsEventSource({
    sqs: queue.client,
    spec: { ...spec, ...over },
    region: 'us-east-1',
    maxConcurrency,
    invoke,
    log: () => undefined,
  });
  return source;
}

/** Stops the source on fake timers (its receive loop waits on them). */
async function stopOnFakeTimers(s: SqsEventSource) {
  let stopped = false;
  const stopping = s.stop().then(() => (stopped = true));
  while (!stopped) await vi.advanceTimersByTimeAsync(10);
  await stopping;
  source = undefined;
}

describe('a batch in flight', () => {
  it('keeps its records in flight while its invocation runs, past the visibility timeout, and not after', async () => {
    // Found in a loaded run: with `--visibility-timeout 2` a batch graded for longer than 2 s was received again by
    // a second invocation, and one patient was graded by two at once. Lambda never lets that happen.
    vi.useFakeTimers();
    let finish: (() => void) | undefined;
    try {
      const queue = new FakeQueue();
      const ids = [queue.send('a'), queue.send('b')];
      const s = sourceOn(queue, () => new Promise<void>((r) => (finish = r)), {
        queue: { ...spec.queue, visibilityTimeoutSeconds: 2 },
      });
      s.start();
      while (s.stats.invocations < 1) await vi.advanceTimersByTimeAsync(1);
      await vi.advanceTimersByTimeAsync(5000);
      // Renewed every second (half the timeout): never more than 2 s without.
      expect(queue.renewed.length).toBeGreaterThanOrEqual(5);
      expect(queue.renewed.every((r) => r.seconds === 2 && r.ids.join() === ids.join())).toBe(true);
      finish!();
      while (queue.deleted.length < 2) await vi.advanceTimersByTimeAsync(1);
      const renewals = queue.renewed.length;
      await vi.advanceTimersByTimeAsync(5000);
      expect(queue.renewed.length, 'no renewal once the invocation has ended').toBe(renewals);
    } finally {
      finish?.();
      if (source) await stopOnFakeTimers(source);
      vi.useRealTimers();
    }
  });

  it('stops keeping the records of an invocation that fails, so that they come back after the timeout', async () => {
    vi.useFakeTimers();
    let fail: ((err: Error) => void) | undefined;
    try {
      const queue = new FakeQueue();
      queue.send('a');
      const s = sourceOn(queue, () => new Promise<void>((_, reject) => (fail = reject)), {
        queue: { ...spec.queue, visibilityTimeoutSeconds: 2 },
      });
      s.start();
      while (s.stats.invocations < 1) await vi.advanceTimersByTimeAsync(1);
      await vi.advanceTimersByTimeAsync(1500);
      fail!(new Error('Task timed out after 15.00 seconds'));
      while (s.stats.failedInvocations < 1) await vi.advanceTimersByTimeAsync(1);
      const renewals = queue.renewed.length;
      expect(renewals).toBeGreaterThan(0);
      await vi.advanceTimersByTimeAsync(5000);
      expect(queue.renewed.length).toBe(renewals);
      expect(queue.deleted).toEqual([]);
    } finally {
      fail?.(new Error('the test ended'));
      if (source) await stopOnFakeTimers(source);
      vi.useRealTimers();
    }
  });
});

describe('the SQS event source, pinned by a mutation run', () => {
  it('deletes the records that succeeded and leaves each reported failure for the visibility timeout', async () => {
    const queue = new FakeQueue();
    const ids = ['a', 'b', 'c'].map((b) => queue.send(b));
    const s = sourceOn(queue, async () => ({ batchItemFailures: [{ itemIdentifier: ids[1]! }] }));
    s.start();
    await until(() => s.stats.invocations === 1 && queue.deleted.length === 2, 'a batch handled');
    await s.stop();
    expect(queue.deleted).toEqual([ids[0], ids[2]]);
    expect(s.stats).toMatchObject({ succeeded: 2, failedRecords: 1 });
  });

  it('leaves the whole batch when a reported failure names a record not in it, as Lambda does', async () => {
    const queue = new FakeQueue();
    queue.send('a');
    queue.send('b');
    const s = sourceOn(queue, async () => ({ batchItemFailures: [{ itemIdentifier: 'not-in-the-batch' }] }));
    s.start();
    await until(() => s.stats.failedRecords === 2, 'a batch handled');
    await s.stop();
    expect(queue.deleted).toEqual([]);
  });

  it('leaves every record of an invocation that fails', async () => {
    const queue = new FakeQueue();
    queue.send('a');
    queue.send('b');
    const s = sourceOn(queue, async () => {
      throw Object.assign(new Error('Task timed out'), { name: 'InvocationTimeout' });
    });
    s.start();
    await until(() => s.stats.failedInvocations === 1, 'a batch handled');
    await s.stop();
    expect(queue.deleted).toEqual([]);
    expect(s.stats.failedRecords).toBe(2);
  });

  it('deletes the whole batch when the mapping does not report batch item failures', async () => {
    const queue = new FakeQueue();
    const ids = [queue.send('a'), queue.send('b')];
    const s = sourceOn(queue, async () => ({ batchItemFailures: [{ itemIdentifier: ids[0]! }] }), {
      reportBatchItemFailures: false,
    });
    s.start();
    await until(() => queue.deleted.length === 2, 'deleted');
    expect(queue.deleted).toEqual(ids);
  });

  it("gives the handler each message's group, receive count, sequence number and attributes, as Lambda's records carry them", async () => {
    const queue = new FakeQueue();
    const id = queue.send('{"x":1}', 'P-7', '3');
    const events: SQSEvent[] = [];
    const s = sourceOn(queue, async (e) => {
      events.push(e);
    });
    s.start();
    await until(() => events.length === 1, 'invoked');
    const [record] = events[0]!.Records;
    expect(record).toMatchObject({
      messageId: id,
      receiptHandle: `rh-${id}`,
      body: '{"x":1}',
      eventSource: 'aws:sqs',
      eventSourceARN: spec.queue.arn,
      awsRegion: 'us-east-1',
      attributes: {
        ApproximateReceiveCount: '3',
        MessageGroupId: 'P-7',
        SequenceNumber: expect.stringMatching(/^18/),
        MessageDeduplicationId: `d-${id}`,
      },
      messageAttributes: { kind: { dataType: 'String', stringValue: 'timer' } },
    });
  });

  it("receives at most the mapping's batch size", async () => {
    const queue = new FakeQueue();
    for (let i = 0; i < 5; i++) queue.send(`m${i}`);
    const sizes: number[] = [];
    const s = sourceOn(
      queue,
      async (e) => {
        sizes.push(e.Records.length);
      },
      { batchSize: 3 },
    );
    s.start();
    await until(() => s.stats.succeeded === 5, 'all handled');
    expect(sizes).toEqual([3, 2]);
  });

  it('runs at most its concurrency of batches at once', async () => {
    const queue = new FakeQueue();
    for (let i = 0; i < 4; i++) queue.send(`m${i}`);
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const s = sourceOn(
      queue,
      async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => release.push(r));
        running--;
      },
      { batchSize: 1 },
      2,
    );
    s.start();
    await until(() => running === 2, 'two batches running');
    // Give the receive loop every chance to start a third.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(most).toBe(2);
    while (s.stats.succeeded < 4) {
      release.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(most).toBe(2);
  });

  it('stops only when the batches in flight have ended and their records are deleted', async () => {
    // On fake timers: the receive loop's waits pass at once, so that a stop that does not wait for the batch in
    // flight would be seen to return.
    vi.useFakeTimers();
    try {
      const queue = new FakeQueue();
      const id = queue.send('a');
      let finish!: () => void;
      // Room for another batch: the receive loop itself does not wait for this one.
      const s = sourceOn(queue, () => new Promise<void>((r) => (finish = r)), {}, 2);
      s.start();
      while (s.stats.invocations < 1) await vi.advanceTimersByTimeAsync(1);
      let stopped = false;
      const stopping = s.stop().then(() => (stopped = true));
      await vi.advanceTimersByTimeAsync(5000);
      expect(stopped).toBe(false);
      finish();
      while (!stopped) await vi.advanceTimersByTimeAsync(1);
      await stopping;
      expect(queue.deleted).toEqual([id]);
    } finally {
      vi.useRealTimers();
    }
  });
});
