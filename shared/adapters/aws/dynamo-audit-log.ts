// AuditLog on DynamoDB: append-only. One item per entry, keyed by patient and by the entry's time and a hash of
// its stable key (auditKey), written with a condition so that a retried write stores it once and nothing is
// ever overwritten. The functions' roles may only PutItem and Query this table: no update, no delete.
import { createHash } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  PutItemCommand,
  paginateQuery,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { auditKey, type AuditEvent, type AuditLog } from '#ports';
import { AUDIT_TABLE as T } from './table-layout.ts';

let counter = 0;

/**
 * When this process wrote an entry: server milliseconds and a counter, so that entries of the same instant (a page
 * opened and delivered in the same millisecond) are exported in the order they were written.
 */
function writtenStamp(nowMs: number): string {
  counter = (counter + 1) % 1_000_000;
  return `${String(nowMs).padStart(15, '0')}.${String(counter).padStart(6, '0')}`;
}

/** Sorted by time: the time at a fixed width (entries say 10:00:00Z or 10:00:00.500Z), then the hash of the key. */
function auditSortKey(e: AuditEvent): string {
  const t = Date.parse(e.at);
  const time = Number.isFinite(t) ? new Date(t).toISOString() : e.at;
  return `${time}|${createHash('sha256').update(auditKey(e)).digest('base64url').slice(0, 22)}`;
}

/** The item of one audit entry (also written by the state store, in the grading transaction). */
export function auditItem(e: AuditEvent, nowMs: number): Record<string, AttributeValue> {
  return {
    [T.partitionKey]: { S: e.patientId },
    [T.sortKey]: { S: auditSortKey(e) },
    written: { S: writtenStamp(nowMs) },
    entry: { S: JSON.stringify(e) },
  };
}

/** The condition that keeps the table append-only: an entry is written once and never replaced. */
export const APPEND_ONLY = {
  ConditionExpression: 'attribute_not_exists(#sk)',
  ExpressionAttributeNames: { '#sk': T.sortKey },
};

const isConditionFailure = (err: unknown) =>
  err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';

export class DynamoAuditLog implements AuditLog {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async append(events: AuditEvent[]): Promise<void> {
    // One at a time, in order: the `written` stamps keep the order of entries of the same instant.
    for (const e of events) {
      try {
        await this.client.send(
          new PutItemCommand({ TableName: this.tableName, Item: auditItem(e, this.now()), ...APPEND_ONLY }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err; // stored before (a retry): once is enough
      }
    }
  }

  /** Every entry about a patient, oldest first (by time, then by the order they were written). */
  async *forPatient(patientId: string): AsyncIterable<AuditEvent> {
    let group: { at: string; written: string; event: AuditEvent }[] = [];
    const flush = () => {
      const out = group.sort((a, b) => a.written.localeCompare(b.written)).map((g) => g.event);
      group = [];
      return out;
    };
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :p',
        ExpressionAttributeNames: { '#pk': T.partitionKey },
        ExpressionAttributeValues: { ':p': { S: patientId } },
        ConsistentRead: true,
      },
    );
    for await (const page of query) {
      for (const item of page.Items ?? []) {
        const event = JSON.parse(item.entry?.S ?? 'null') as AuditEvent | null;
        if (!event) throw new Error(`audit entry ${item[T.sortKey]?.S} of patient ${patientId} is malformed`);
        const at = (item[T.sortKey]?.S ?? '').split('|')[0]!;
        if (group.length > 0 && group[0]!.at !== at) yield* flush();
        group.push({ at, written: item.written?.S ?? '', event });
      }
    }
    yield* flush();
  }
}
