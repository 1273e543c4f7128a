// SqsFifoQueue against a mocked SQS client: batches of 10 within 256 KiB, in order, one group per patient, the
// content digest as deduplication id, failed entries resent, and a rejection (so ingest answers 503) when SQS won't take them.
import { SQSClient, SendMessageBatchCommand, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQueued } from '#app/grade.ts';
import { handleIngest } from '#app/ingest.ts';
import type { QueuedMessage } from '#ports';
import { SQS_BATCH, SqsFifoQueue } from '#adapters/aws/sqs-fifo-queue.ts';
import { messageDigest } from '#app/digest.ts';
import { msg } from '#test/support/messages.ts';
import { MemoryTokenStore } from '#test/support/port-fakes.ts';
import { issueToken } from '#app/auth.ts';

const sqs = mockClient(SQSClient);
afterAll(() => sqs.restore());
const URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';

const queued = (patientId: string, n: number, extra: Record<string, unknown> = {}): QueuedMessage[] =>
  Array.from({ length: n }, (_, i) => {
    const message = { ...msg(patientId, i, { vitals: { heartRate: 80 + i } }), ...extra };
    return { message, digest: messageDigest(message), receivedAt: '2026-01-10T09:00:00Z', sender: 'gw-1' };
  });

const noSleep = async () => undefined;
const queue = () =>
  new SqsFifoQueue(new SQSClient({ region: 'eu-west-1' }), URL, { attempts: 3, baseDelayMs: 1 }, noSleep);
const sent = () =>
  sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input as SendMessageBatchCommandInput);

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
    Successful: input.Entries!.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
});
afterEach(() => sqs.reset());

describe('SqsFifoQueue', () => {
  it('sends 25 messages as batches of 10, 10 and 5, in order, grouped by patient, deduplicated by content digest', async () => {
    const messages = [...queued('P-1', 13), ...queued('P-2', 12)];
    await queue().enqueue(messages);
    const batches = sent();
    expect(batches.map((b) => b.Entries!.length)).toEqual([10, 10, 5]);
    const entries = batches.flatMap((b) => b.Entries!);
    expect(entries.map((e) => JSON.parse(e.MessageBody!))).toEqual(messages);
    expect(entries.map((e) => e.MessageGroupId)).toEqual(messages.map((q) => q.message.patientId));
    expect(entries.map((e) => e.MessageDeduplicationId)).toEqual(messages.map((q) => q.digest));
    expect(batches.every((b) => b.QueueUrl === URL)).toBe(true);
  });

  it('keeps each batch within 256 KiB of bodies', async () => {
    const big = queued('P-3', 9).map((q) => ({ ...q, sender: 'x'.repeat(60 * 1024) }));
    await queue().enqueue(big);
    const sizes = sent().map((b) => b.Entries!.reduce((n, e) => n + Buffer.byteLength(e.MessageBody!), 0));
    expect(sizes.every((s) => s <= SQS_BATCH.bytes)).toBe(true);
    expect(sizes.length).toBe(3); // 4 + 4 + 1 messages of ~60 KiB
    expect(sent().flatMap((b) => b.Entries!)).toHaveLength(9);
  });

  it('resends only the entries SQS failed, and resolves once all are queued', async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      call++;
      const failIds = call === 1 ? new Set(['2', '5']) : new Set<string>();
      return {
        Successful: input
          .Entries!.filter((e) => !failIds.has(e.Id!))
          .map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: input
          .Entries!.filter((e) => failIds.has(e.Id!))
          .map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })),
      };
    });
    await queue().enqueue(queued('P-4', 8));
    expect(sent().map((b) => b.Entries!.map((e) => e.Id))).toEqual([
      ['0', '1', '2', '3', '4', '5', '6', '7'],
      ['2', '5'],
    ]);
  });

  it("rejects when SQS keeps failing an entry, or refuses one as the sender's fault", async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [], Failed: [{ Id: '0', Code: 'ServiceUnavailable', SenderFault: false }] });
    await expect(queue().enqueue(queued('P-5', 1))).rejects.toThrow(/after 3 attempts/);
    expect(sent()).toHaveLength(3);

    sqs.reset();
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [], Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true }] });
    await expect(queue().enqueue(queued('P-5', 1))).rejects.toThrow(/refused/);
    expect(sent()).toHaveLength(1);
  });

  it('deduplicates by content: the same message twice has one id, a reused messageId with other content another', async () => {
    const [a] = queued('P-4', 1);
    const reused = { ...a!, message: { ...a!.message, vitals: { heartRate: 130 } } };
    await queue().enqueue([a!, structuredClone(a!), { ...reused, digest: messageDigest(reused.message) }]);
    const ids = sent().flatMap((b) => b.Entries!.map((e) => e.MessageDeduplicationId!));
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id))).toBe(true); // SQS accepts it whatever the messageId holds
  });

  it('queues a label holding U+FFFE or U+FFFF (valid in the contract) so that the grade function reads it back as sent', async () => {
    // SQS takes #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF in a body and replaces anything else with
    // U+FFFD (it used to refuse the message: InvalidMessageContents). JSON.stringify leaves U+FFFE and U+FFFF as
    // they are: until 2026-12-05 such a bed label was answered 202, and reached the grade function as "H4\uFFFD",
    // which the contract refuses: a poison message, it and the patient's later messages dead-lettered.
    const bodies: string[] = [];
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      for (const e of input.Entries!)
        bodies.push(e.MessageBody!.replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD'));
      return {
        Successful: input.Entries!.map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: [],
      };
    });
    const message = msg('P-7', 0, { enrolment: { therapy: 'car-t', bed: 'H4\uFFFF', ward: 'W\uFFFE', weightKg: 70 } });
    await queue().enqueue([
      { message, digest: messageDigest(message), receivedAt: '2026-01-10T09:00:00Z', sender: 'gw' },
    ]);
    expect(bodies).toHaveLength(1);
    expect(parseQueued(bodies[0]!)).toEqual(message);
  });

  it('makes ingest answer 503, accepting nothing, when SQS is unreachable; and 202 once it is back', async () => {
    const tokens = new MemoryTokenStore();
    const { token, record } = issueToken('gw-1', new Date());
    await tokens.put(record);
    const req = {
      method: 'POST',
      path: '/v1/messages',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(msg('P-6', 0, { vitals: { heartRate: 99 } })),
    };
    sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error('connect ETIMEDOUT'), { name: 'TimeoutError' }));
    const down = await handleIngest(req, { queue: queue(), tokens, now: Date.now });
    expect(down.status).toBe(503);

    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }], Failed: [] });
    const up = await handleIngest(req, { queue: queue(), tokens, now: Date.now });
    expect(up.status).toBe(202);
  });
});

describe('pinned by a mutation run', () => {
  /** A queued message whose SQS body is exactly `bytes` long (the sender padded). */
  const sized = (q: QueuedMessage, bytes: number): QueuedMessage => {
    const base = Buffer.byteLength(JSON.stringify({ ...q, sender: '' }));
    return { ...q, sender: 'x'.repeat(bytes - base) };
  };

  it('fills a batch to exactly 256 KiB of bodies, and starts another one byte over', async () => {
    const [a, b] = queued('P-7', 2);
    await queue().enqueue([sized(a!, 128 * 1024), sized(b!, 128 * 1024)]);
    expect(sent().map((s) => s.Entries!.length)).toEqual([2]);
    sqs.resetHistory();
    await queue().enqueue([sized(a!, 128 * 1024), sized(b!, 128 * 1024 + 1)]);
    expect(sent().map((s) => s.Entries!.length)).toEqual([1, 1]);
  });

  it('refuses a message over 256 KiB on its own, naming its size, and sends nothing (one of exactly 256 KiB goes)', async () => {
    const [a] = queued('P-8', 1);
    await queue().enqueue([sized(a!, SQS_BATCH.bytes)]);
    expect(sent()).toHaveLength(1);
    sqs.resetHistory();
    await expect(queue().enqueue([sized(a!, SQS_BATCH.bytes + 1)])).rejects.toThrow(
      `a queued message of ${SQS_BATCH.bytes + 1} bytes exceeds the SQS limit`,
    );
    expect(sent()).toHaveLength(0);
  });

  it('waits the base delay, then twice it, before each resend', async () => {
    const events: string[] = [];
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      events.push('send');
      const fail = ++call < 3;
      return {
        Successful: fail ? [] : input.Entries!.map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: fail ? input.Entries!.map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })) : [],
      };
    });
    const sleep = (ms: number) =>
      new Promise<void>((r) =>
        setTimeout(() => {
          events.push(`slept ${ms}`);
          r();
        }, 0),
      );
    const q = new SqsFifoQueue(new SQSClient({ region: 'eu-west-1' }), URL, { attempts: 3, baseDelayMs: 50 }, sleep);
    await q.enqueue(queued('P-9', 1));
    expect(events).toEqual(['send', 'slept 50', 'send', 'slept 100', 'send']);
  });

  it("resends a failed entry before the next batch goes: a patient's messages reach its group in order", async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      const fail = ++call === 1 ? new Set(['3']) : new Set<string>();
      return {
        Successful: input
          .Entries!.filter((e) => !fail.has(e.Id!))
          .map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: input
          .Entries!.filter((e) => fail.has(e.Id!))
          .map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })),
      };
    });
    await queue().enqueue(queued('P-10', 12));
    expect(sent().map((b) => b.Entries!.map((e) => e.Id))).toEqual([
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      ['3'],
      ['10', '11'],
    ]);
  });

  it("rejects at once when any failed entry is the sender's fault, even alongside a transient failure", async () => {
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [],
      Failed: [
        { Id: '0', Code: 'ServiceUnavailable', SenderFault: false },
        { Id: '1', Code: 'InvalidParameterValue', SenderFault: true },
      ],
    });
    await expect(queue().enqueue(queued('P-11', 2))).rejects.toThrow('SQS refused a message: InvalidParameterValue');
    expect(sent()).toHaveLength(1);
  });

  it('gives two messages that differ only in messageId two deduplication ids: SQS keeps both', async () => {
    const [a] = queued('P-12', 1);
    const b = { ...a!.message, messageId: `${a!.message.messageId}-b` };
    await queue().enqueue([a!, { ...a!, message: b, digest: messageDigest(b) }]);
    const ids = sent().flatMap((s) => s.Entries!.map((e) => e.MessageDeduplicationId));
    expect(new Set(ids).size).toBe(2);
  });
});
