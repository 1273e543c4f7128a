// AuditLog on DynamoDB: append-only. One item per entry, keyed by patient and by the entry's time and a hash of
// its stable key (auditKey), written with a condition so that a retried write stores it once and nothing is
// ever overwritten. The functions' roles may only PutItem and Query this table: no update, no delete. The
// assessment of a message applied for the first time rides in the message's seen-messages item instead (one
// item a message, docs/cost.md): the trail of a patient is read from both tables, in time order.
import { createHash } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  PutItemCommand,
  paginateQuery,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { auditKey, type AuditEvent, type AuditLog } from '#ports';
import { AUDIT_TABLE as T, SEEN_TABLE } from './table-layout.ts';

let counter = 0;

/**
 * When this process wrote an entry: server milliseconds and a counter, so that entries of the same instant (a page
 * opened and delivered in the same millisecond) are exported in the order they were written.
 */
export function writtenStamp(nowMs: number): string {
  counter = (counter + 1) % 1_000_000;
  return `${String(nowMs).padStart(15, '0')}.${String(counter).padStart(6, '0')}`;
}

/** An entry's time at a fixed width (entries say 10:00:00Z or 10:00:00.500Z), so that times sort as text. */
function sortableTime(e: AuditEvent): string {
  const t = Date.parse(e.at);
  return Number.isFinite(t) ? new Date(t).toISOString() : e.at;
}

/** Sorted by time, then the hash of the key. */
function auditSortKey(e: AuditEvent): string {
  return `${sortableTime(e)}|${createHash('sha256').update(auditKey(e)).digest('base64url').slice(0, 22)}`;
}

/** The item of one audit entry (also written by the state store, in the grading transaction). */
export function auditItem(e: AuditEvent, written: string): Record<string, AttributeValue> {
  return {
    [T.partitionKey]: { S: e.patientId },
    [T.sortKey]: { S: auditSortKey(e) },
    written: { S: written },
    entry: { S: JSON.stringify(e) },
  };
}

/** Audit entries as a seen-messages item carries them (the `entries` attribute). */
export function carriedEntries(entries: { event: AuditEvent; written: string }[]): AttributeValue {
  return { L: entries.map((x) => ({ M: { entry: { S: JSON.stringify(x.event) }, written: { S: x.written } } })) };
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
    /** The seen-messages table, whose items carry the assessments of first-time messages (read by forPatient). */
    private readonly seenTableName?: string,
  ) {}

  async append(events: AuditEvent[]): Promise<void> {
    // One at a time, in order: the `written` stamps keep the order of entries of the same instant.
    for (const e of events) {
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: auditItem(e, writtenStamp(this.now())),
            ...APPEND_ONLY,
          }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err; // stored before (a retry): once is enough
      }
    }
  }

  /**
   * Every entry about a patient, oldest first (by time, then by the order they were written): the audit table's
   * and the assessments the seen-messages items carry. Without the seen-messages table the trail would miss most
   * assessments, so reading it needs one.
   */
  async *forPatient(patientId: string): AsyncIterable<AuditEvent> {
    if (!this.seenTableName) throw new Error('reading an audit trail needs the seen-messages table as well');
    const all: { time: string; written: string; event: AuditEvent }[] = [];
    const byPatient = (TableName: string, partitionKey: string, onlyAttribute?: string) =>
      paginateQuery(
        { client: this.client },
        {
          TableName,
          KeyConditionExpression: '#pk = :p',
          ExpressionAttributeNames: { '#pk': partitionKey, ...(onlyAttribute ? { '#a': onlyAttribute } : {}) },
          ExpressionAttributeValues: { ':p': { S: patientId } },
          ...(onlyAttribute ? { ProjectionExpression: '#a' } : {}),
          ConsistentRead: true,
        },
      );
    const parse = (json: string | undefined, where: string): AuditEvent => {
      const event = JSON.parse(json ?? 'null') as AuditEvent | null;
      if (!event) throw new Error(`audit entry ${where} of patient ${patientId} is malformed`);
      return event;
    };
    for await (const page of byPatient(this.tableName, T.partitionKey)) {
      for (const item of page.Items ?? []) {
        const sk = item[T.sortKey]?.S ?? '';
        all.push({ time: sk.split('|')[0]!, written: item.written?.S ?? '', event: parse(item.entry?.S, sk) });
      }
    }
    for await (const page of byPatient(this.seenTableName, SEEN_TABLE.partitionKey, SEEN_TABLE.entriesAttribute)) {
      for (const item of page.Items ?? []) {
        for (const x of item[SEEN_TABLE.entriesAttribute]?.L ?? []) {
          const event = parse(x.M?.entry?.S, 'carried by a seen message');
          all.push({ time: sortableTime(event), written: x.M?.written?.S ?? '', event });
        }
      }
    }
    all.sort((a, b) => (a.time === b.time ? a.written.localeCompare(b.written) : a.time < b.time ? -1 : 1));
    for (const x of all) yield x.event;
  }
}
