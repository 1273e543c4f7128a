// The notifier's on-failure queue (NotifyFailures) made recoverable: when the stream gives up on records (the
// invocation itself kept failing: an outage longer than its retries, a crash, a timeout), Lambda puts there only
// where they were: the shard, the first and last sequence numbers and the stream's ARN. `crs outbox retry --backend
// aws` reads those records from the stream again (DynamoDB keeps a stream's records 24 hours) and hands each to the
// notifier's own delivery (outbox-delivery.ts), which pages it once however often it comes; a message is deleted
// once all its records are done.
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type DynamoDBStreamsClient,
} from '@aws-sdk/client-dynamodb-streams';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { OutboxDelivery, OutboxImage, Outcome } from './outbox-delivery.ts';

/** One NotifyFailures message: a range of one shard's records the stream gave up on. */
export interface NotifyFailure {
  /** `stream#<first>..<last>`: how `crs outbox` names it. */
  id: string;
  receiptHandle: string;
  condition: string;
  shardId: string;
  streamArn: string;
  startSequenceNumber: string;
  endSequenceNumber: string;
  batchSize: number;
  /** When the first record reached the stream (RFC 3339). */
  firstArrival: string;
}

interface OnFailureRecord {
  requestContext?: { condition?: string };
  DDBStreamBatchInfo?: {
    shardId?: string;
    startSequenceNumber?: string;
    endSequenceNumber?: string;
    approximateArrivalOfFirstRecord?: string;
    batchSize?: number;
    streamArn?: string;
  };
}

function parseNotifyFailure(body: string, receiptHandle: string): NotifyFailure | undefined {
  let m: OnFailureRecord;
  try {
    m = JSON.parse(body) as OnFailureRecord;
  } catch {
    return undefined;
  }
  const b = m.DDBStreamBatchInfo;
  if (!b?.shardId || !b.startSequenceNumber || !b.endSequenceNumber || !b.streamArn) return undefined;
  return {
    id: `stream#${b.startSequenceNumber}..${b.endSequenceNumber}`,
    receiptHandle,
    condition: m.requestContext?.condition ?? 'unknown',
    shardId: b.shardId,
    streamArn: b.streamArn,
    startSequenceNumber: b.startSequenceNumber,
    endSequenceNumber: b.endSequenceNumber,
    batchSize: b.batchSize ?? 0,
    firstArrival: b.approximateArrivalOfFirstRecord ?? '',
  };
}

/** How long the messages read stay hidden from another reader while a command works on them. */
const HOLD_SECONDS = 120;

/**
 * Every message on the queue, hidden for a while from other readers (release() shows them again). Messages that
 * are not stream failures are left alone and reported.
 */
export async function receiveNotifyFailures(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ failures: NotifyFailure[]; unreadable: number }> {
  const failures: NotifyFailure[] = [];
  let unreadable = 0;
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: HOLD_SECONDS,
        // Long polling, however short: a short poll (0) asks only some of SQS's servers and, with the few
        // messages this queue holds, may answer none while there are some, which would end the read early.
        WaitTimeSeconds: 1,
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0)
      return {
        failures: failures.sort((a, b) => compareSequence(a.startSequenceNumber, b.startSequenceNumber)),
        unreadable,
      };
    for (const m of messages) {
      const f = parseNotifyFailure(m.Body ?? '', m.ReceiptHandle!);
      if (f) failures.push(f);
      else unreadable++;
    }
  }
}

/** Shows a message to other readers again (left on the queue). */
export async function release(sqs: SQSClient, queueUrl: string, f: NotifyFailure): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: f.receiptHandle, VisibilityTimeout: 0 }),
  );
}

export async function remove(sqs: SQSClient, queueUrl: string, f: NotifyFailure): Promise<void> {
  await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: f.receiptHandle }));
}

const compareSequence = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

/** Empty reads of the shard after which the range is taken as read (an open shard answers empty reads at its end). */
const EMPTY_READS = 5;

/**
 * Reads the message's records from the stream again and delivers each outbox insert, in order. Throws when the
 * records can no longer be read (older than the stream keeps them) or one meets an outage (the message stays).
 */
export async function redrive(
  f: NotifyFailure,
  streams: DynamoDBStreamsClient,
  delivery: OutboxDelivery,
): Promise<Record<Outcome, number>> {
  const counts: Record<Outcome, number> = { paged: 0, deferred: 0, parked: 0, ignored: 0 };
  const end = BigInt(f.endSequenceNumber);
  let iterator = (
    await streams.send(
      new GetShardIteratorCommand({
        StreamArn: f.streamArn,
        ShardId: f.shardId,
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        SequenceNumber: f.startSequenceNumber,
      }),
    )
  ).ShardIterator;
  let read = 0;
  reading: for (let empty = 0; iterator && empty < EMPTY_READS; ) {
    const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 100 }));
    const records = out.Records ?? [];
    iterator = out.NextShardIterator;
    empty = records.length === 0 ? empty + 1 : 0;
    for (const r of records) {
      if (BigInt(r.dynamodb?.SequenceNumber ?? '0') > end) break reading;
      read++;
      if (r.eventName !== 'INSERT') continue; // the mapping's filter: outbox inserts only (the delivery ignores the rest)
      counts[await delivery.deliver(r.dynamodb?.NewImage as OutboxImage | undefined)]++;
    }
  }
  if (read === 0) throw new Error(`no record of ${f.id} could be read from shard ${f.shardId} again`);
  return counts;
}
