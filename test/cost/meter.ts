// What the handlers ask of AWS, recorded while they run over the fakes: every DynamoDB request with the capacity
// it consumes (from the items' measured sizes, before and after, in test/support/fake-dynamo.ts), every SQS and
// SNS request with its payload, Secrets Manager reads. Nothing here decides what a handler does: the handlers
// run as deployed, with their real adapters, and the meter only watches their requests go by.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { smsSegments } from '../../shared/adapters/aws/sns-page-sender.ts';
import type { FakeDynamo } from '../support/fake-dynamo.ts';
import {
  indexEntry,
  indexWriteUnits,
  itemSize,
  readUnits,
  writeUnits,
  type Item,
  type TableModel,
} from './capacity.ts';

/** What one stretch of work asked of AWS. */
export interface Usage {
  /** Requests by service and command, e.g. "dynamodb:GetItem", "sqs:SendMessageBatch". */
  requests: Record<string, number>;
  /** Billed requests where the payload counts in 64 KB chunks (SQS, SNS). */
  chunks: Record<string, number>;
  /** DynamoDB read units, write units (standard and transactional: already doubled) and index write units, by table. */
  dynamo: Record<string, { read: number; write: number; transactionalWrite: number; indexWrite: number }>;
  /**
   * The parts (segments) of the SMS text of the SNS messages published, by the page's `kind` attribute (escalation,
   * de-escalation, alert, alert-cleared): SNS bills an SMS subscriber each part of the kinds its filter lets through.
   */
  smsParts: Record<string, number>;
}

export const emptyUsage = (): Usage => ({ requests: {}, chunks: {}, dynamo: {}, smsParts: {} });

export function addUsage(into: Usage, u: Usage): Usage {
  for (const [k, v] of Object.entries(u.requests)) into.requests[k] = (into.requests[k] ?? 0) + v;
  for (const [k, v] of Object.entries(u.chunks)) into.chunks[k] = (into.chunks[k] ?? 0) + v;
  for (const [t, d] of Object.entries(u.dynamo)) {
    const o = (into.dynamo[t] ??= { read: 0, write: 0, transactionalWrite: 0, indexWrite: 0 });
    o.read += d.read;
    o.write += d.write;
    o.transactionalWrite += d.transactionalWrite;
    o.indexWrite += d.indexWrite;
  }
  for (const [k, v] of Object.entries(u.smsParts)) into.smsParts[k] = (into.smsParts[k] ?? 0) + v;
  return into;
}

export const dynamoTotals = (u: Usage) =>
  Object.values(u.dynamo).reduce(
    (a, d) => ({ read: a.read + d.read, write: a.write + d.write + d.transactionalWrite + d.indexWrite }),
    { read: 0, write: 0 },
  );

const CHUNK = 64 * 1024;
const chunks = (bytes: number) => Math.max(1, Math.ceil(bytes / CHUNK));

type Input = Record<string, any>;

/** Meters every DynamoDB request a client sends to the fake tables. */
export class Meter {
  usage: Usage = emptyUsage();
  readonly sqs = mockClient(SQSClient);
  readonly sns = mockClient(SNSClient);
  readonly secrets = mockClient(SecretsManagerClient);
  /** Every SQS message sent, in order: the queue URL and the body (the grade queue's become the grade batches). */
  readonly sent: { queueUrl: string; body: string; groupId?: string; delaySeconds?: number }[] = [];
  /** Every SNS message published (the pages). */
  readonly published: string[] = [];

  constructor(
    private readonly fake: FakeDynamo,
    private readonly tables: Record<string, TableModel>,
    secret = 'cost-model-ack-secret-0123456789abcdef0123456789abcdef',
  ) {
    this.resetMocks(secret);
  }

  /**
   * Takes what was recorded since the last call, and clears the mocks' call history: nothing reads it, and a run of
   * tens of thousands of messages kept every request, its answer and its call stack (gigabytes).
   */
  take(): Usage {
    for (const mock of [this.fake.mock, this.sqs, this.sns, this.secrets]) mock.resetHistory();
    const u = this.usage;
    this.usage = emptyUsage();
    return u;
  }

  private count(key: string, n = 1): void {
    this.usage.requests[key] = (this.usage.requests[key] ?? 0) + n;
  }

  private table(name: string) {
    return (this.usage.dynamo[name] ??= { read: 0, write: 0, transactionalWrite: 0, indexWrite: 0 });
  }

  private model(name: string): TableModel {
    const m = this.tables[name];
    if (!m) throw new Error(`the meter has no model of table ${name}`);
    return m;
  }

  private indexWrites(name: string, before: Item | undefined, after: Item | undefined): void {
    const m = this.model(name);
    for (const index of Object.values(m.indexes ?? {}))
      this.table(name).indexWrite += indexWriteUnits(m, index, before, after);
  }

  private resetMocks(secret: string): void {
    this.sqs.reset();
    this.sqs.on(SendMessageBatchCommand).callsFake((input: Input) => {
      const entries = input.Entries as { Id: string; MessageBody: string; MessageGroupId?: string }[];
      this.count('sqs:SendMessageBatch');
      this.usage.chunks['sqs:SendMessageBatch'] =
        (this.usage.chunks['sqs:SendMessageBatch'] ?? 0) +
        chunks(entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody), 0));
      for (const e of entries)
        this.sent.push({
          queueUrl: input.QueueUrl,
          body: e.MessageBody,
          ...(e.MessageGroupId ? { groupId: e.MessageGroupId } : {}),
        });
      return {
        Successful: entries.map((e) => ({ Id: e.Id, MessageId: `m-${this.sent.length}`, MD5OfMessageBody: '' })),
        Failed: [],
      };
    });
    this.sqs.on(SendMessageCommand).callsFake((input: Input) => {
      this.count('sqs:SendMessage');
      this.usage.chunks['sqs:SendMessage'] =
        (this.usage.chunks['sqs:SendMessage'] ?? 0) + chunks(Buffer.byteLength(input.MessageBody));
      this.sent.push({ queueUrl: input.QueueUrl, body: input.MessageBody, delaySeconds: input.DelaySeconds });
      return { MessageId: `m-${this.sent.length}` };
    });
    this.sns.reset();
    this.sns.on(PublishCommand).callsFake((input: Input) => {
      this.count('sns:Publish');
      const bytes =
        Buffer.byteLength(input.Message ?? '') + Buffer.byteLength(JSON.stringify(input.MessageAttributes ?? {}));
      this.usage.chunks['sns:Publish'] = (this.usage.chunks['sns:Publish'] ?? 0) + chunks(bytes);
      // What an SMS subscriber receives: the `sms` text of a per-protocol message, else its `default`.
      const bodies = input.MessageStructure === 'json' ? (JSON.parse(input.Message) as Record<string, string>) : {};
      const kind = input.MessageAttributes?.kind?.StringValue ?? 'none';
      this.usage.smsParts[kind] =
        (this.usage.smsParts[kind] ?? 0) + smsSegments(bodies.sms ?? bodies.default ?? input.Message);
      this.published.push(input.Message);
      return { MessageId: `p-${this.published.length}` };
    });
    this.secrets.reset();
    this.secrets.on(GetSecretValueCommand).callsFake(() => {
      this.count('secretsmanager:GetSecretValue');
      return { SecretString: secret };
    });
  }

  restore(): void {
    this.sqs.restore();
    this.sns.restore();
    this.secrets.restore();
  }

  /** Records one DynamoDB request (`run` sends it to the fake) and what it consumed. */
  async observe(
    command: { input: Input; constructor: { name: string } },
    run: () => Promise<unknown>,
  ): Promise<unknown> {
    const name = command.constructor.name.replace(/Command$/, '');
    const input = command.input;
    this.count(`dynamodb:${name}`);
    switch (name) {
      case 'GetItem': {
        const out = (await run()) as { Item?: Item };
        this.table(input.TableName).read += readUnits(
          itemSize(this.fake.itemAt(input.TableName, input.Key) ?? out.Item),
          input.ConsistentRead === true,
        );
        return out;
      }
      case 'BatchGetItem': {
        const out = (await run()) as { UnprocessedKeys?: Record<string, { Keys: Item[] }> };
        for (const [t, req] of Object.entries(
          input.RequestItems as Record<string, { Keys: Item[]; ConsistentRead?: boolean }>,
        )) {
          const later = new Set((out.UnprocessedKeys?.[t]?.Keys ?? []).map((k) => JSON.stringify(k)));
          for (const k of req.Keys) {
            if (!later.has(JSON.stringify(k)))
              this.table(t).read += readUnits(itemSize(this.fake.itemAt(t, k)), req.ConsistentRead === true);
          }
        }
        return out;
      }
      case 'Query': {
        const out = (await run()) as { Items?: Item[] };
        const m = this.model(input.TableName);
        const index = input.IndexName ? m.indexes?.[input.IndexName] : undefined;
        // The fake returns whole items; an index read reads the index's entries.
        const bytes = (out.Items ?? []).reduce((n, i) => n + itemSize(index ? indexEntry(m, index, i) : i), 0);
        this.table(input.TableName).read += readUnits(bytes, input.ConsistentRead === true);
        return out;
      }
      case 'PutItem': {
        const before = this.fake.itemAt(input.TableName, input.Item);
        try {
          const out = await run();
          this.indexWrites(input.TableName, before, input.Item);
          return out;
        } finally {
          this.table(input.TableName).write += writeUnits(itemSize(before), itemSize(input.Item));
        }
      }
      case 'UpdateItem':
      case 'DeleteItem': {
        const before = this.fake.itemAt(input.TableName, input.Key);
        try {
          const out = await run();
          this.indexWrites(input.TableName, before, this.fake.itemAt(input.TableName, input.Key));
          return out;
        } finally {
          this.table(input.TableName).write += writeUnits(
            itemSize(before),
            itemSize(this.fake.itemAt(input.TableName, input.Key)),
          );
        }
      }
      case 'TransactWriteItems': {
        type Op = { TableName: string; Item?: Item; Key?: Item };
        const ops = (input.TransactItems as Record<string, Op>[]).map((t) => Object.values(t)[0]!);
        const keys = ops.map((o) => (o.Item ?? o.Key)!);
        const before = ops.map((o, i) => this.fake.itemAt(o.TableName, keys[i]!));
        let ok = false;
        try {
          const out = await run();
          ok = true;
          return out;
        } finally {
          ops.forEach((o, i) => {
            const after = ok ? this.fake.itemAt(o.TableName, keys[i]!) : o.Item;
            // A transactional write costs twice a standard one; a cancelled transaction is counted as written.
            this.table(o.TableName).transactionalWrite += 2 * writeUnits(itemSize(before[i]), itemSize(after));
            if (ok) this.indexWrites(o.TableName, before[i], after);
          });
        }
      }
      default:
        return run();
    }
  }
}
