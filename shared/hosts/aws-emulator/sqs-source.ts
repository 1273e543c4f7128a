// The grade function's SQS event source, as Lambda runs it on a FIFO queue: receive up to the batch size, invoke
// with real SQS records (MessageGroupId, SequenceNumber, ApproximateReceiveCount...), delete what succeeded, and
// leave every failed record (batchItemFailures, or the whole batch when the invocation fails or times out) in
// flight until the queue's visibility timeout, so SQS redelivers it and, after maxReceiveCount, dead-letters it.
// Several batches run at once, up to the function's reserved concurrency; SQS FIFO keeps a patient's group out
// of other batches while one of its messages is in flight.
//
// While an invocation runs, its records are kept in flight (their visibility timeout renewed): Lambda refuses a
// mapping whose queue's visibility timeout is below the function's timeout and ends an invocation at its timeout, so
// a batch is never received again while its invocation still runs. The local host cannot end a JavaScript
// invocation, and tests shorten the visibility timeout (`--visibility-timeout 2`) for quick retries: without the
// renewal, a batch slower than that was received again by a second invocation, and one patient was graded by two at
// once. A renewal that lands after the timeout is refused (MessageNotInflight): the batch may then be received
// again beside its first invocation, in order, and the state's version check keeps one grading of each message.
// Once the invocation has ended (or failed at its timeout), its failed records come back after the visibility
// timeout, as in Lambda.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { SqsSourceSpec } from './provision.ts';

export interface SqsSourceOptions {
  sqs: SQSClient;
  spec: SqsSourceSpec;
  region: string;
  maxConcurrency: number;
  invoke: (event: SQSEvent) => Promise<SQSBatchResponse | void>;
  log: (line: string) => void;
}

// Unref'd: a pending wait never keeps a stopping process alive.
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function toSqsRecord(m: Message, spec: SqsSourceSpec, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  const attributes: SQSRecord['attributes'] = {
    ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
    SentTimestamp: a.SentTimestamp ?? String(Date.now()),
    SenderId: a.SenderId ?? '',
    ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
  };
  if (a.SequenceNumber) attributes.SequenceNumber = a.SequenceNumber;
  if (a.MessageGroupId) attributes.MessageGroupId = a.MessageGroupId;
  if (a.MessageDeduplicationId) attributes.MessageDeduplicationId = a.MessageDeduplicationId;
  const messageAttributes: SQSRecord['messageAttributes'] = {};
  for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) {
    messageAttributes[k] = {
      dataType: v.DataType ?? 'String',
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
    };
  }
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes,
    messageAttributes,
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: spec.queue.arn,
    awsRegion: region,
  };
}

export class SqsEventSource {
  private stopping = false;
  private loop?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  readonly stats = { invocations: 0, succeeded: 0, failedRecords: 0, failedInvocations: 0 };

  constructor(private readonly o: SqsSourceOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** Stops receiving, and lets the batches in flight finish (their records are deleted or left as usual). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    const { sqs, spec } = this.o;
    while (!this.stopping) {
      if (this.inFlight.size >= this.o.maxConcurrency) {
        await Promise.race(this.inFlight);
        continue;
      }
      let messages: Message[];
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: spec.queue.url,
            MaxNumberOfMessages: Math.min(10, spec.batchSize),
            // Long polling when idle. While batches are in flight a short poll: some emulators spin on a long
            // poll whose only visible messages belong to groups in flight.
            WaitTimeSeconds: this.inFlight.size === 0 ? 1 : 0,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
        );
        messages = out.Messages ?? [];
      } catch (err) {
        this.o.log(`grade source: receive failed (${(err as Error).name}); retrying`);
        await sleep(1000);
        continue;
      }
      if (messages.length === 0) {
        if (this.inFlight.size > 0) await Promise.race([...this.inFlight, sleep(10)]);
        continue;
      }
      const batch: Promise<void> = this.process(messages).finally(() => this.inFlight.delete(batch));
      this.inFlight.add(batch);
    }
  }

  /** Renews the records' visibility timeout at half its length until cleared (the invocation has ended). */
  private keepInFlight(records: SQSRecord[]): NodeJS.Timeout {
    const { sqs, spec } = this.o;
    const seconds = spec.queue.visibilityTimeoutSeconds;
    const timer = setInterval(
      () => {
        for (let i = 0; i < records.length; i += 10) {
          const entries = records
            .slice(i, i + 10)
            .map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle, VisibilityTimeout: seconds }));
          sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: spec.queue.url, Entries: entries })).then(
            (out) => {
              if (out.Failed?.length)
                this.o.log(
                  `${spec.role} source: ${out.Failed.length} records in flight not kept; they may be received again`,
                );
            },
            (err: unknown) =>
              this.o.log(
                `${spec.role} source: keeping records in flight failed (${(err as Error).name}); they may be received again`,
              ),
          );
        }
      },
      Math.max(250, (seconds * 1000) / 2),
    );
    timer.unref();
    return timer;
  }

  private async process(messages: Message[]): Promise<void> {
    const { sqs, spec } = this.o;
    const records = messages.map((m) => toSqsRecord(m, spec, this.o.region));
    let failed: Set<string>;
    this.stats.invocations++;
    const renewal = this.keepInFlight(records);
    try {
      const response = await this.o.invoke({ Records: records });
      const ids = spec.reportBatchItemFailures ? (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier) : [];
      // An identifier that is not in the batch fails the whole batch, as in Lambda.
      const known = new Set(records.map((r) => r.messageId));
      failed = ids.every((id) => known.has(id)) ? new Set(ids) : known;
    } catch (err) {
      this.stats.failedInvocations++;
      this.o.log(
        `grade source: invocation failed (${(err as Error).name}); ${records.length} records left for the visibility timeout`,
      );
      failed = new Set(records.map((r) => r.messageId));
    } finally {
      clearInterval(renewal);
    }
    this.stats.failedRecords += failed.size;
    const done = records.filter((r) => !failed.has(r.messageId));
    this.stats.succeeded += done.length;
    for (let i = 0; i < done.length; i += 10) {
      const chunk = done.slice(i, i + 10);
      try {
        const out = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: spec.queue.url,
            Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
          }),
        );
        if (out.Failed?.length)
          this.o.log(
            `grade source: ${out.Failed.length} processed records not deleted; they will be redelivered (harmless: duplicates)`,
          );
      } catch (err) {
        this.o.log(
          `grade source: delete failed (${(err as Error).name}); processed records will be redelivered (harmless: duplicates)`,
        );
      }
    }
  }
}
