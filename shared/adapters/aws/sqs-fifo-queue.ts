// MessageQueue on SQS FIFO: one message group per patient (ordered per patient, parallel across patients) and
// the content digest as the deduplication id, so a resent identical message within SQS's 5-minute window is
// dropped by SQS, while a reused messageId with other content (a new observation, rules 1.1 item 8) is queued.
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import type { MessageQueue, QueuedMessage } from '#ports';

/** SQS limits for one SendMessageBatch: 10 entries and 256 KiB of bodies in total. */
export const SQS_BATCH = { entries: 10, bytes: 256 * 1024 } as const;

export interface RetryPolicy {
  /** Attempts per chunk, counting the first. */
  attempts: number;
  /** Delay before the second attempt, doubled for each further one (ms). */
  baseDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 50 };

/**
 * The JSON of a queued message in the characters SQS keeps: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and beyond #xFFFF.
 * JSON.stringify escapes the controls and lone surrogates but leaves U+FFFE and U+FFFF (a label may hold them), which
 * SQS replaces with U+FFFD: escaped, the grade function reads back the message as it was sent.
 */
function queueBody(q: QueuedMessage): string {
  return JSON.stringify(q).replace(/[\uFFFE\uFFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function toEntries(messages: QueuedMessage[]): SendMessageBatchRequestEntry[] {
  return messages.map((q, i) => ({
    Id: String(i),
    MessageBody: queueBody(q),
    MessageGroupId: q.message.patientId,
    MessageDeduplicationId: q.digest, // base64url: characters SQS accepts, whatever the messageId holds
  }));
}

/** Splits entries, in order, into batches within SQS's count and size limits. */
function chunkEntries(entries: SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const chunks: SendMessageBatchRequestEntry[][] = [];
  let current: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry.MessageBody ?? '', 'utf8');
    if (size > SQS_BATCH.bytes) throw new Error(`a queued message of ${size} bytes exceeds the SQS limit`);
    if (current.length === SQS_BATCH.entries || bytes + size > SQS_BATCH.bytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export class SqsFifoQueue implements MessageQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async enqueue(messages: QueuedMessage[]): Promise<void> {
    // Chunks go one after another: a patient's messages must reach its group in the order they were posted.
    for (const chunk of chunkEntries(toEntries(messages))) await this.sendChunk(chunk);
  }

  /** Sends one batch, resending only the entries SQS failed; rejects unless every entry is queued. */
  private async sendChunk(chunk: SendMessageBatchRequestEntry[]): Promise<void> {
    let pending = chunk;
    for (let attempt = 1; ; attempt++) {
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const senderFault = failed.find((f) => f.SenderFault);
      if (senderFault) throw new Error(`SQS refused a message: ${senderFault.Code ?? 'sender fault'}`);
      if (attempt >= this.retry.attempts) {
        throw new Error(
          `SQS failed ${failed.length} of ${chunk.length} messages after ${attempt} attempts (${failed[0]!.Code ?? 'unknown'})`,
        );
      }
      const failedIds = new Set(failed.map((f) => f.Id));
      pending = pending.filter((e) => failedIds.has(e.Id));
      await this.sleep(this.retry.baseDelayMs * 2 ** (attempt - 1));
    }
  }
}
