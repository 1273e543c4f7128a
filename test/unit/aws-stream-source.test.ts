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
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamSourceSpec } from '#hosts/aws-emulator/provision.ts';
import { StreamEventSource } from '#hosts/aws-emulator/stream-source.ts';

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

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

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
    await until('two more empty reads', () => delivered.length > 0 && source!.stats.emptyReads >= emptyReads + 2);
    expect(source.stats.caughtUp).toBe(true);
    expect(delivered).toEqual(['a', 'b']);
    expect(source.stats.staleReads).toBe(1);

    // The same while idle.
    stream.cancelTransaction();
    stream.write('c');
    await until('c delivered', () => delivered.includes('c'));
    expect(delivered).toEqual(['a', 'b', 'c']);
  });
});
