// The notifier's DynamoDB stream event source, as Lambda runs it: each shard read in order (a child shard after
// its parent), records dropped that the mapping's filter does not match, batches of up to the batch size, and on
// failure the same records retried: from the first reported failure (batchItemFailures), the batch halved when
// the invocation itself fails (bisect), backing off between attempts, until the retry limit or the record age
// limit, when the batch's description goes to the on-failure queue and the shard moves on.
//
// Unlike Lambda, the host keeps no checkpoint across restarts: it reads each shard from its start again
// (TRIM_HORIZON), and the notifier's delivery ledger answers "already sent" for what was published before. A test
// that needs Lambda's resumption gives the checkpoint (`after`, CRS_TEST_NOTIFY_AFTER; 2026-12-07): a restore copies
// tables under the notifier, and a record read again from the start pages what the copy removed.
//
// A read that finds nothing on an iterator handed on by the read before is not taken as the end of the shard: the
// shard is read again at once with an iterator taken anew (after the last record read), and only an empty read on
// such a fresh iterator counts as caught up. moto 5.2.1 rolls a cancelled TransactWriteItems back by putting a
// copy of the table in its place, stream shard included, and an iterator it handed out before keeps reading the
// old shard, which gets no record again: chained on, the source would stop for good after the first cancelled grade
// transaction, and even when iterators were taken again after a few empty reads it reported itself caught up
// (`crs serve` idle) while records waited, so a test that settled then missed pages (docs/emulator.md). On AWS an
// idle shard costs one more GetShardIterator per read; the source runs only here, never in a deployment.
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type DynamoDBStreamsClient,
  type _Record as StreamRecord,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { matchesEventPattern } from './patterns.ts';
import type { StreamSourceSpec } from './provision.ts';

export interface StreamSourceOptions {
  streams: DynamoDBStreamsClient;
  sqs: SQSClient;
  spec: StreamSourceSpec;
  region: string;
  functionArn: string;
  invoke: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;
  log: (line: string) => void;
  /** How often an idle shard is read (Lambda reads 4 times a second). */
  pollIntervalMs: number;
  /**
   * With it, an idle shard is read less often the longer it stays idle, up to this, until a record comes or
   * `nudge()` says one may have (the host nudges after every invocation that can write the table).
   */
  idlePollMaxMs?: number;
  /** Called with each batch just before the invocation (the crash test's hook). */
  beforeInvoke?: (records: DynamoDBRecord[]) => void;
  /**
   * A checkpoint (test hook): the stream read from after this sequence number, as Lambda resumes a mapping from its
   * own; a shard that ends at or before it is done, one that begins after it is read from its start.
   */
  after?: string;
}

// Unref'd: a pending wait never keeps a stopping process alive.
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Backoff between attempts at a failing batch: 100 ms, doubling, at most 5 s. */
const retryDelayMs = (attempt: number) => Math.min(5000, 100 * 2 ** Math.max(0, attempt - 1));

function toLambdaRecord(r: StreamRecord, spec: StreamSourceSpec, region: string): DynamoDBRecord {
  const d = r.dynamodb ?? {};
  const created = d.ApproximateCreationDateTime;
  return {
    eventID: r.eventID!,
    eventName: r.eventName as DynamoDBRecord['eventName'],
    eventVersion: r.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: r.awsRegion ?? region,
    eventSourceARN: spec.streamArn,
    dynamodb: {
      ...(d as DynamoDBRecord['dynamodb']),
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
    },
  } as DynamoDBRecord;
}

type Outcome = { kind: 'ok' } | { kind: 'partial'; firstFailed: number } | { kind: 'threw'; error: unknown };

export class StreamEventSource {
  private stopping = false;
  private loop?: Promise<void>;
  private wake!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.wake = resolve));
  /**
   * `emptyReads`: reads on a fresh iterator that found nothing new; one after the queue drained tells the stream has
   * no record left. `staleReads`: reads on a handed-on iterator that found nothing where a fresh one found records
   * (moto after a cancelled transaction).
   */
  readonly stats = {
    delivered: 0,
    filteredOut: 0,
    retries: 0,
    sentToOnFailure: 0,
    pending: 0,
    caughtUp: false,
    emptyReads: 0,
    staleReads: 0,
  };

  /** The shards waiting to read again: `nudge()` wakes them. */
  private readonly waiting = new Set<() => void>();

  constructor(private readonly o: StreamSourceOptions) {}

  /** A record may have been written: every idle shard is read again now, and at the base interval from then on. */
  nudge(): void {
    for (const wake of this.waiting) wake();
  }

  /** Waits `ms`, or less if nudged (true) or stopped. */
  private async idle(ms: number): Promise<boolean> {
    let wake!: () => void;
    const nudged = new Promise<boolean>((resolve) => (wake = () => resolve(true)));
    this.waiting.add(wake);
    try {
      return await Promise.race([sleep(ms).then(() => false), nudged, this.stopped.then(() => false)]);
    } finally {
      this.waiting.delete(wake);
    }
  }

  start(): void {
    this.loop = this.run();
  }

  /** Stops after the invocation in flight; records not yet delivered are read again on the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
  }

  private async describe(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await this.o.streams.send(
        new DescribeStreamCommand({ StreamArn: this.o.spec.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  private async run(): Promise<void> {
    const done = new Set<string>();
    const running = new Map<string, Promise<void>>();
    while (!this.stopping) {
      let shards: Shard[];
      try {
        shards = await this.describe();
      } catch (err) {
        this.o.log(`notify source: cannot describe the stream (${(err as Error).name}); retrying`);
        await sleep(1000);
        continue;
      }
      const known = new Set(shards.map((s) => s.ShardId!));
      for (const shard of shards) {
        const id = shard.ShardId!;
        if (done.has(id) || running.has(id)) continue;
        if (this.checkpointed(shard) === 'done') {
          done.add(id);
          continue;
        }
        // A child shard waits for its parent, so that a key's records stay in order.
        if (shard.ParentShardId && known.has(shard.ParentShardId) && !done.has(shard.ParentShardId)) continue;
        running.set(
          id,
          this.readShard(id, this.checkpointed(shard) === 'within' ? this.o.after : undefined).then(() => {
            running.delete(id);
            done.add(id);
          }),
        );
      }
      // Shards are looked for again every few seconds (DynamoDB rotates them), sooner when one closes.
      await Promise.race([sleep(5000), ...running.values(), this.stopped]);
    }
    await Promise.all(running.values());
  }

  /** Where the checkpoint (`after`) stands to this shard: past its end, within it, or none to heed. */
  private checkpointed(shard: Shard): 'done' | 'within' | undefined {
    if (this.o.after === undefined) return undefined;
    const after = BigInt(this.o.after);
    const range = shard.SequenceNumberRange;
    if (range?.EndingSequenceNumber !== undefined && BigInt(range.EndingSequenceNumber) <= after) return 'done';
    return BigInt(range?.StartingSequenceNumber ?? '0') <= after ? 'within' : undefined;
  }

  private async readShard(shardId: string, checkpoint?: string): Promise<void> {
    const { streams, spec } = this.o;
    /** The last record read, to take an iterator again after it (or the checkpoint, to start after it). */
    let last: string | undefined = checkpoint;
    const take = async () =>
      (
        await streams.send(
          new GetShardIteratorCommand({
            StreamArn: spec.streamArn,
            ShardId: shardId,
            ...(last
              ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: last }
              : { ShardIteratorType: spec.startingPosition }),
          }),
        )
      ).ShardIterator;
    // LATEST before any record was read cannot be taken again without skipping what came in between.
    const retakable = () => last !== undefined || spec.startingPosition === 'TRIM_HORIZON';
    let iterator: string | undefined = await take();
    /** The iterator was just taken: it reads the shard as the table has it now. */
    let fresh = true;
    /** The last read found nothing: the next one takes an iterator anew. */
    let retake = false;
    /** ... and it was on a handed-on iterator, so it proved nothing. */
    let unconfirmed = false;
    const buffer: DynamoDBRecord[] = [];
    /** The wait before the next read of an idle shard: doubled after each such wait, up to idlePollMaxMs. */
    let idleMs = this.o.pollIntervalMs;
    while (!this.stopping) {
      if (buffer.length === 0) {
        let records: StreamRecord[];
        try {
          if (retake) {
            iterator = await take();
            fresh = true;
          }
          if (!iterator) return; // the shard is closed and fully read
          const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
          records = out.Records ?? [];
          iterator = out.NextShardIterator;
          if (records.length > 0) last = records[records.length - 1]!.dynamodb?.SequenceNumber ?? last;
          if (unconfirmed && records.length > 0) this.stats.staleReads++;
          unconfirmed = records.length === 0 && !fresh;
          fresh = false;
          retake = records.length === 0 && iterator !== undefined && retakable();
          if (retake && unconfirmed) continue; // read again at once, on a fresh iterator
        } catch (err) {
          this.o.log(`notify source: reading shard ${shardId} failed (${(err as Error).name}); retrying`);
          await sleep(1000);
          continue;
        }
        for (const r of records) {
          const record = toLambdaRecord(r, spec, this.o.region);
          if (spec.filters.length === 0 || spec.filters.some((f) => matchesEventPattern(f, record)))
            buffer.push(record);
          else this.stats.filteredOut++;
        }
        this.stats.pending = buffer.length;
        this.stats.caughtUp = records.length === 0;
        if (records.length === 0) this.stats.emptyReads++;
        if (records.length > 0) idleMs = this.o.pollIntervalMs;
        if (buffer.length === 0) {
          if (this.stopping) return;
          const nudged = await this.idle(idleMs);
          idleMs = nudged
            ? this.o.pollIntervalMs
            : Math.min(Math.max(this.o.idlePollMaxMs ?? 0, this.o.pollIntervalMs), idleMs * 2);
          continue;
        }
      }
      await this.deliver(shardId, buffer);
    }
    this.stats.pending = buffer.length;
  }

  /** Delivers the buffer's records in order, retrying as the mapping says; returns when the buffer is empty. */
  private async deliver(shardId: string, buffer: DynamoDBRecord[]): Promise<void> {
    const { spec } = this.o;
    let attempts = 0;
    let limit = spec.batchSize;
    while (buffer.length > 0 && !this.stopping) {
      const batch = buffer.slice(0, limit);
      const outcome = await this.invokeBatch(batch);
      if (outcome.kind === 'ok') {
        buffer.splice(0, batch.length);
        this.stats.delivered += batch.length;
        this.stats.pending = buffer.length;
        attempts = 0;
        limit = spec.batchSize;
        continue;
      }
      attempts++;
      this.stats.retries++;
      if (outcome.kind === 'partial') {
        // The records before the first failure are done; the retry starts at it.
        buffer.splice(0, outcome.firstFailed);
        this.stats.delivered += outcome.firstFailed;
      } else if (spec.bisectOnError && batch.length > 1) {
        limit = Math.ceil(batch.length / 2);
      }
      const head = buffer.slice(0, Math.min(limit, buffer.length));
      const oldest = Number(head[0]?.dynamodb?.ApproximateCreationDateTime ?? Date.now() / 1000);
      const tooOld = spec.maxRecordAgeSeconds >= 0 && Date.now() / 1000 - oldest > spec.maxRecordAgeSeconds;
      const exhausted = spec.maxRetryAttempts >= 0 && attempts > spec.maxRetryAttempts;
      if (tooOld || exhausted) {
        await this.sendToOnFailure(shardId, head, tooOld ? 'RecordAgeExceeded' : 'RetryAttemptsExhausted', attempts);
        buffer.splice(0, head.length);
        this.stats.pending = buffer.length;
        attempts = 0;
        limit = spec.batchSize;
        continue;
      }
      const why = outcome.kind === 'threw' ? ((outcome.error as Error)?.name ?? 'error') : 'batch item failures';
      this.o.log(
        `notify source: batch of ${batch.length} failed (${why}); retry ${attempts} in ${retryDelayMs(attempts)} ms`,
      );
      await Promise.race([sleep(retryDelayMs(attempts)), this.stopped]);
    }
  }

  private async invokeBatch(batch: DynamoDBRecord[]): Promise<Outcome> {
    this.o.beforeInvoke?.(batch);
    try {
      const response = await this.o.invoke({ Records: batch });
      const failures = this.o.spec.reportBatchItemFailures ? (response?.batchItemFailures ?? []) : [];
      if (failures.length === 0) return { kind: 'ok' };
      const index = batch.findIndex((r) => failures.some((f) => f.itemIdentifier === r.dynamodb?.SequenceNumber));
      // An identifier that is not in the batch fails the whole batch, as in Lambda.
      return index < 0
        ? { kind: 'threw', error: new Error('unknown batch item failure') }
        : { kind: 'partial', firstFailed: index };
    } catch (error) {
      return { kind: 'threw', error };
    }
  }

  /** What Lambda sends to a stream mapping's on-failure destination: where the skipped records are, not them. */
  private async sendToOnFailure(
    shardId: string,
    records: DynamoDBRecord[],
    condition: string,
    attempts: number,
  ): Promise<void> {
    const { spec } = this.o;
    this.stats.sentToOnFailure += records.length;
    const first = records[0]!.dynamodb!;
    const last = records[records.length - 1]!.dynamodb!;
    const body = {
      requestContext: {
        requestId: crypto.randomUUID(),
        functionArn: this.o.functionArn,
        condition,
        approximateInvokeCount: attempts,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: first.SequenceNumber,
        endSequenceNumber: last.SequenceNumber,
        approximateArrivalOfFirstRecord: new Date(Number(first.ApproximateCreationDateTime) * 1000).toISOString(),
        approximateArrivalOfLastRecord: new Date(Number(last.ApproximateCreationDateTime) * 1000).toISOString(),
        batchSize: records.length,
        streamArn: spec.streamArn,
      },
    };
    this.o.log(`notify source: gave up on ${records.length} records (${condition}); described on the on-failure queue`);
    if (!spec.onFailure) return;
    for (;;) {
      try {
        await this.o.sqs.send(
          new SendMessageCommand({ QueueUrl: spec.onFailure.url, MessageBody: JSON.stringify(body) }),
        );
        return;
      } catch (err) {
        this.o.log(`notify source: the on-failure queue refused (${(err as Error).name}); retrying`);
        await sleep(1000);
      }
    }
  }
}
