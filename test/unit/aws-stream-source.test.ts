// The notifier's stream event source in `crs serve --backend aws` (shared/hosts/aws-emulator/stream-source.ts), on
// a stream that behaves as moto 5.2.1's does after a cancelled transaction: the table, stream shard included, is
// replaced by a copy, and an iterator handed out before reads the old shard, which gets no record again. The source
// must neither stop nor say it has caught up (the host's idle signal, which tests settle on) while a record waits.
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type DynamoDBStreamsClient,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StreamSourceSpec } from '#hosts/aws-emulator/provision.ts';
import { StreamEventSource } from '#hosts/aws-emulator/stream-source.ts';
import { until } from '#test/support/until.ts';

const START = 1000;

/** A stream of one shard whose shard object a "cancelled transaction" replaces by a copy, as moto does. */
class MotoLikeStream {
  private shard: StreamRecord[] = [];
  private readonly iterators = new Map<string, { shard: StreamRecord[]; next: number }>();
  private ids = 0;

  write(key: string): void {
    const seq = START + this.shard.length;
    this.shard.push({
      eventID: `e${seq}`,
      eventName: 'INSERT',
      dynamodb: { SequenceNumber: String(seq), NewImage: { pk: { S: key } } },
    });
  }

  cancelTransaction(): void {
    this.shard = [...this.shard];
  }

  private iterator(shard: StreamRecord[], next: number): string {
    const id = `it-${this.ids++}`;
    this.iterators.set(id, { shard, next });
    return id;
  }

  readonly client = {
    send: async (command: unknown) => {
      await new Promise((r) => setImmediate(r));
      if (command instanceof DescribeStreamCommand)
        return { StreamDescription: { Shards: [{ ShardId: 'shard-1', SequenceNumberRange: {} }] } };
      if (command instanceof GetShardIteratorCommand) {
        const i = command.input;
        const next =
          i.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER'
            ? Number(i.SequenceNumber) + 1
            : i.ShardIteratorType === 'LATEST'
              ? START + this.shard.length
              : START;
        return { ShardIterator: this.iterator(this.shard, next) };
      }
      if (command instanceof GetRecordsCommand) {
        const it = this.iterators.get(command.input.ShardIterator!)!;
        const records = it.shard.slice(it.next - START, it.next - START + (command.input.Limit ?? 1000));
        return { Records: records, NextShardIterator: this.iterator(it.shard, it.next + records.length) };
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    },
  } as unknown as DynamoDBStreamsClient;
}

const spec: StreamSourceSpec = {
  table: {} as StreamSourceSpec['table'],
  streamArn: 'arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/label',
  batchSize: 10,
  bisectOnError: false,
  reportBatchItemFailures: true,
  maxRetryAttempts: -1,
  maxRecordAgeSeconds: -1,
  startingPosition: 'TRIM_HORIZON',
  filters: [],
};

let source: StreamEventSource | undefined;
afterEach(async () => {
  await source?.stop();
  source = undefined;
});

describe('stream event source on a stream whose shard is replaced (moto)', () => {
  it('delivers what comes after a replacement, and is never caught up while it waits', async () => {
    const stream = new MotoLikeStream();
    const delivered: string[] = [];
    let emptyReads = 0;
    source = new StreamEventSource({
      streams: stream.client,
      sqs: {} as SQSClient,
      spec,
      region: 'us-east-1',
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:notify',
      invoke: async (event: DynamoDBStreamEvent) => {
        for (const r of event.Records) delivered.push(r.dynamodb!.NewImage!.pk!.S!);
        if (delivered.length === 1) {
          // While the source holds an iterator handed on after 'a': a grade transaction is cancelled, and another
          // commits after it, its record in the new shard only.
          stream.cancelTransaction();
          stream.write('b');
          emptyReads = source!.stats.emptyReads;
        }
      },
      log: () => undefined,
      pollIntervalMs: 1,
    });
    stream.write('a');
    source.start();
    // What the host's idle signal and the tests' settle() go by: caught up, across two more empty reads.
    await until(() => delivered.length > 0 && source!.stats.emptyReads >= emptyReads + 2, 'two more empty reads');
    expect(source.stats.caughtUp).toBe(true);
    expect(delivered).toEqual(['a', 'b']);
    expect(source.stats.staleReads).toBe(1);

    // The same while idle.
    stream.cancelTransaction();
    stream.write('c');
    await until(() => delivered.includes('c'), 'c delivered');
    expect(delivered).toEqual(['a', 'b', 'c']);
  });
});

/** A stream of shards as DynamoDB Streams keeps them: a closed shard ends its reads, a child names its parent. */
class PlainStream {
  readonly shards = new Map<string, { parent?: string; records: StreamRecord[]; closed: boolean }>();
  private readonly iterators = new Map<string, { shard: string; next: number }>();
  private ids = 0;
  private seq = START;
  /** Called after each GetRecords (with the records it answered). */
  afterRead?: (records: StreamRecord[]) => void;

  shard(id: string, parent?: string): void {
    this.shards.set(id, { ...(parent ? { parent } : {}), records: [], closed: false });
  }

  write(shard: string, key: string, createdAt = new Date()): string {
    const seq = String(this.seq++);
    this.shards.get(shard)!.records.push({
      eventID: `e${seq}`,
      eventName: 'INSERT',
      dynamodb: { SequenceNumber: seq, NewImage: { pk: { S: key } }, ApproximateCreationDateTime: createdAt },
    });
    return seq;
  }

  private iterator(shard: string, next: number): string {
    const id = `it-${this.ids++}`;
    this.iterators.set(id, { shard, next });
    return id;
  }

  readonly client = {
    send: async (command: unknown) => {
      await new Promise((r) => setImmediate(r));
      if (command instanceof DescribeStreamCommand)
        return {
          StreamDescription: {
            Shards: [...this.shards].map(([ShardId, s]) => ({
              ShardId,
              ...(s.parent ? { ParentShardId: s.parent } : {}),
              SequenceNumberRange: {},
            })),
          },
        };
      if (command instanceof GetShardIteratorCommand) {
        const i = command.input;
        const records = this.shards.get(i.ShardId!)!.records;
        const at = (seq: string | undefined) => records.findIndex((r) => r.dynamodb!.SequenceNumber === seq);
        const next =
          i.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER'
            ? at(i.SequenceNumber) + 1
            : i.ShardIteratorType === 'AT_SEQUENCE_NUMBER'
              ? at(i.SequenceNumber)
              : i.ShardIteratorType === 'LATEST'
                ? records.length
                : 0;
        return { ShardIterator: this.iterator(i.ShardId!, next) };
      }
      if (command instanceof GetRecordsCommand) {
        const it = this.iterators.get(command.input.ShardIterator!)!;
        const shard = this.shards.get(it.shard)!;
        const records = shard.records.slice(it.next, it.next + (command.input.Limit ?? 1000));
        const end = it.next + records.length;
        this.afterRead?.(records);
        return {
          Records: records,
          ...(shard.closed && end >= shard.records.length ? {} : { NextShardIterator: this.iterator(it.shard, end) }),
        };
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    },
  } as unknown as DynamoDBStreamsClient;
}

/** The on-failure queue: the bodies it accepted; it refuses the first `refusals` sends. */
function onFailureQueue(refusals = 0) {
  const bodies: Record<string, any>[] = [];
  let refused = 0;
  const client = {
    send: async (command: { input: { QueueUrl?: string; MessageBody?: string } }) => {
      if (refused < refusals) {
        refused++;
        throw Object.assign(new Error('throttled'), { name: 'RequestThrottled' });
      }
      bodies.push(JSON.parse(command.input.MessageBody!));
      return {};
    },
  } as unknown as SQSClient;
  return { client, bodies };
}

const keysOf = (event: DynamoDBStreamEvent) => event.Records.map((r) => r.dynamodb!.NewImage!.pk!.S!);

/**
 * A source over `stream` whose invocations `answer` decides (it throws to fail the invocation); every batch's keys
 * are kept, in order, in `batches`.
 */
function sourceOver(
  stream: PlainStream,
  answer: (keys: string[], event: DynamoDBStreamEvent) => DynamoDBBatchResponse | void,
  over: Partial<StreamSourceSpec> = {},
  sqs: SQSClient = onFailureQueue().client,
) {
  const batches: string[][] = [];
  const s = new StreamEventSource({
    streams: stream.client,
    sqs,
    spec: {
      ...spec,
      onFailure: {
        logicalId: 'NotifyDlq',
        name: 'dlq',
        url: 'http://sqs/dlq',
        arn: 'arn:dlq',
        fifo: false,
        visibilityTimeoutSeconds: 30,
      },
      ...over,
    },
    region: 'us-east-1',
    functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:notify',
    invoke: async (event) => {
      const keys = keysOf(event);
      batches.push(keys);
      return answer(keys, event);
    },
    log: () => undefined,
    pollIntervalMs: 1,
  });
  source = s;
  return { source: s, batches };
}

const fails = (name = 'Boom') => {
  throw Object.assign(new Error('the notifier failed'), { name });
};
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

describe('the stream event source, as the mapping runs it, pinned by a mutation run', () => {
  it('retries a partial batch from its first failed record: the records before it are done, none after it lost', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    const seqs = ['a', 'b', 'c', 'd'].map((k) => stream.write('s1', k));
    let first = true;
    const { source, batches } = sourceOver(stream, () => {
      if (!first) return;
      first = false;
      return { batchItemFailures: [{ itemIdentifier: seqs[2]! }, { itemIdentifier: seqs[3]! }] };
    });
    source.start();
    await until(() => source.stats.delivered === 4, 'every record delivered');
    expect(batches).toEqual([
      ['a', 'b', 'c', 'd'],
      ['c', 'd'],
    ]);
    expect(source.stats.retries).toBe(1);
  });

  it('fails the whole batch when a reported failure names a record not in it, as Lambda does', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'a');
    stream.write('s1', 'b');
    let first = true;
    const { source, batches } = sourceOver(stream, () => {
      if (!first) return;
      first = false;
      return { batchItemFailures: [{ itemIdentifier: 'not-in-the-batch' }] };
    });
    source.start();
    await until(() => source.stats.delivered === 2, 'the batch delivered');
    expect(batches).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
  });

  it('ignores reported failures when the mapping does not report batch item failures', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    const seq = stream.write('s1', 'a');
    const { source, batches } = sourceOver(stream, () => ({ batchItemFailures: [{ itemIdentifier: seq }] }), {
      reportBatchItemFailures: false,
    });
    source.start();
    await until(() => source.stats.delivered === 1, 'the record delivered');
    await until(() => source.stats.emptyReads >= 2, 'caught up');
    expect(batches).toEqual([['a']]);
  });

  it('bisects a failing batch down to the record that always fails, gives up on it alone after the retry limit, and delivers the rest', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    const seqA = stream.write('s1', 'a');
    stream.write('s1', 'b');
    const dlq = onFailureQueue();
    const { source, batches } = sourceOver(
      stream,
      (keys) => {
        if (keys.includes('a')) fails();
      },
      { batchSize: 2, bisectOnError: true, maxRetryAttempts: 2 },
      dlq.client,
    );
    source.start();
    await until(() => source.stats.delivered === 1, 'b delivered');
    // Two retries after the first failure: the halved batch, then the record alone again; then b.
    expect(batches).toEqual([['a', 'b'], ['a'], ['a'], ['b']]);
    expect(dlq.bodies).toHaveLength(1);
    expect(dlq.bodies[0]!.requestContext.condition).toBe('RetryAttemptsExhausted');
    expect(dlq.bodies[0]!.requestContext.approximateInvokeCount).toBe(3);
    expect(dlq.bodies[0]!.DDBStreamBatchInfo).toMatchObject({
      shardId: 's1',
      startSequenceNumber: seqA,
      endSequenceNumber: seqA,
      batchSize: 1,
    });
    expect(source.stats.sentToOnFailure).toBe(1);
  });

  it('counts the retries of one batch only: a record that fails once after another that failed once is not given up', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'a');
    stream.write('s1', 'b');
    const dlq = onFailureQueue();
    const failed = new Set<string>();
    const { source, batches } = sourceOver(
      stream,
      (keys) => {
        if (!failed.has(keys[0]!)) {
          failed.add(keys[0]!);
          fails();
        }
      },
      { batchSize: 1, maxRetryAttempts: 1 },
      dlq.client,
    );
    source.start();
    await until(() => source.stats.delivered === 2, 'both delivered');
    expect(batches).toEqual([['a'], ['a'], ['b'], ['b']]);
    expect(dlq.bodies).toEqual([]);
  });

  it('gives up on records past the maximum record age, describing exactly the range it skips, and delivers the records after it', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    const created = minutesAgo(10);
    const seqA = stream.write('s1', 'a', created);
    const seqB = stream.write('s1', 'b', created);
    // Records written since: within the age limit (Lambda skips a record past it even untried; this source only
    // looks at the age of a failed batch, so these stay clear of that difference).
    stream.write('s1', 'c');
    stream.write('s1', 'd');
    const dlq = onFailureQueue();
    const { source, batches } = sourceOver(
      stream,
      (keys) => {
        if (keys.includes('a')) fails();
      },
      { batchSize: 4, bisectOnError: true, maxRecordAgeSeconds: 300 },
      dlq.client,
    );
    source.start();
    await until(() => source.stats.delivered === 2, 'c and d delivered');
    // The failed batch halves; its first half is past the age limit and is given up; the rest goes on.
    expect(batches).toEqual([
      ['a', 'b', 'c', 'd'],
      ['c', 'd'],
    ]);
    expect(dlq.bodies).toHaveLength(1);
    expect(dlq.bodies[0]!.requestContext.condition).toBe('RecordAgeExceeded');
    expect(dlq.bodies[0]!.DDBStreamBatchInfo).toMatchObject({
      startSequenceNumber: seqA,
      endSequenceNumber: seqB,
      batchSize: 2,
      approximateArrivalOfFirstRecord: new Date(Math.floor(created.getTime() / 1000) * 1000).toISOString(),
    });
  });

  it('never gives up on an old record for its age when the mapping sets no maximum age', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'a', minutesAgo(60 * 24));
    const dlq = onFailureQueue();
    let calls = 0;
    const { source, batches } = sourceOver(
      stream,
      () => {
        if (++calls < 3) fails();
      },
      { maxRecordAgeSeconds: -1, maxRetryAttempts: 5 },
      dlq.client,
    );
    source.start();
    await until(() => source.stats.delivered === 1, 'a delivered');
    expect(batches).toEqual([['a'], ['a'], ['a']]);
    expect(dlq.bodies).toEqual([]);
  });

  it('sends the description again when the on-failure queue refuses it', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'a');
    stream.write('s1', 'b');
    const dlq = onFailureQueue(1);
    const { source } = sourceOver(
      stream,
      (keys) => {
        if (keys.includes('a')) fails();
      },
      { batchSize: 1, maxRetryAttempts: 0 },
      dlq.client,
    );
    source.start();
    await until(() => source.stats.delivered === 1, 'b delivered');
    expect(dlq.bodies).toHaveLength(1);
    expect(dlq.bodies[0]!.DDBStreamBatchInfo.batchSize).toBe(1);
  });

  it("reads a child shard only after its parent is read to its end, so that a key's records stay in order", async () => {
    const stream = new PlainStream();
    stream.shard('parent');
    stream.shard('child', 'parent');
    stream.write('parent', 'p1');
    stream.write('child', 'c1');
    stream.write('parent', 'p2');
    const { source, batches } = sourceOver(stream, () => undefined);
    source.start();
    await until(() => source.stats.delivered === 2, 'the parent read');
    stream.shards.get('parent')!.closed = true;
    await until(() => source.stats.delivered === 3, 'the child read');
    expect(batches).toEqual([['p1', 'p2'], ['c1']]);
  });

  it('starting at LATEST, keeps reading on from where it started: a record written after an empty first read is delivered', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'before');
    let reads = 0;
    stream.afterRead = () => {
      if (++reads === 1) stream.write('s1', 'after');
    };
    const { source, batches } = sourceOver(stream, () => undefined, { startingPosition: 'LATEST' });
    source.start();
    await until(() => source.stats.delivered === 1, 'after delivered');
    expect(batches).toEqual([['after']]);
  });

  it('never says it has caught up between a cancelled transaction and the record committed after it', async () => {
    const stream = new MotoLikeStream();
    let watching = false;
    let caughtUpWhileWaiting = 0;
    const client = {
      send: (command: unknown) => {
        if (watching && source?.stats.caughtUp) caughtUpWhileWaiting++;
        return stream.client.send(command as never);
      },
    } as unknown as DynamoDBStreamsClient;
    const delivered: string[] = [];
    source = new StreamEventSource({
      streams: client,
      sqs: {} as SQSClient,
      spec,
      region: 'us-east-1',
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:notify',
      invoke: async (event: DynamoDBStreamEvent) => {
        for (const r of event.Records) delivered.push(r.dynamodb!.NewImage!.pk!.S!);
        if (delivered.length === 1) {
          stream.cancelTransaction();
          stream.write('b');
          watching = true;
        } else watching = false;
      },
      log: () => undefined,
      pollIntervalMs: 1,
    });
    stream.write('a');
    source.start();
    await until(() => delivered.length === 2, 'b delivered');
    expect(caughtUpWhileWaiting).toBe(0);
  });

  it('is not caught up while it delivers what it read', async () => {
    const stream = new PlainStream();
    stream.shard('s1');
    stream.write('s1', 'a');
    const seen: boolean[] = [];
    const { source } = sourceOver(stream, () => {
      seen.push(source.stats.caughtUp);
    });
    source.start();
    await until(() => source.stats.delivered === 1, 'a delivered');
    expect(seen).toEqual([false]);
  });
});

describe('the stream event source, idle (2026-12-08: three emulator requests a read, 60 a second at 50 ms)', () => {
  /** One shard that answers at once (no timer between requests), with the GetRecords counted. */
  function idleStream() {
    const waiting: StreamRecord[] = [];
    const stream = { waiting, reads: 0, seq: START };
    const client = {
      send: async (command: unknown) => {
        if (command instanceof DescribeStreamCommand)
          return { StreamDescription: { Shards: [{ ShardId: 'shard-1', SequenceNumberRange: {} }] } };
        if (command instanceof GetShardIteratorCommand) return { ShardIterator: 'it' };
        if (command instanceof GetRecordsCommand) {
          stream.reads++;
          return { Records: waiting.splice(0), NextShardIterator: 'it' };
        }
        throw new Error(`unexpected command ${(command as object).constructor.name}`);
      },
    } as unknown as DynamoDBStreamsClient;
    return { stream, client };
  }

  it('reads an idle shard less and less often, at most a second apart, and at once when nudged', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { stream, client } = idleStream();
      const delivered: string[] = [];
      source = new StreamEventSource({
        streams: client,
        sqs: {} as SQSClient,
        spec,
        region: 'us-east-1',
        functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:notify',
        invoke: async (event) => {
          delivered.push(...keysOf(event));
        },
        log: () => undefined,
        pollIntervalMs: 50,
        idlePollMaxMs: 1000,
      });
      source.start();
      await vi.advanceTimersByTimeAsync(60_000);
      // Waits of 50, 100, 200, 400 and 800 ms, then of a second: 63 in the minute, each followed by a read (on an
      // iterator taken anew). At 50 ms throughout, 1,200 reads; doubling without a ceiling, 11.
      expect(stream.reads).toBeGreaterThanOrEqual(60);
      expect(stream.reads).toBeLessThanOrEqual(66);

      // A second into a wait of a second (the fake clock stands still now): a record written and the source
      // nudged is read and delivered without the wait ending.
      stream.waiting.push({
        eventID: 'e1',
        eventName: 'INSERT',
        dynamodb: { SequenceNumber: String(stream.seq), NewImage: { pk: { S: 'nudged' } } },
      });
      source.nudge();
      await until(() => delivered.length > 0, 'the nudged read', 5000);
      expect(delivered).toEqual(['nudged']);
    } finally {
      vi.useRealTimers();
    }
  });
});
