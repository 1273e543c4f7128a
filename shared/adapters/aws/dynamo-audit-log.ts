// AuditLog on DynamoDB: append-only. One item per entry, keyed by patient and by the entry's time and a hash of
// its stable key (auditKey), written with a condition so that a retried write stores it once and nothing is
// ever overwritten. The functions' roles may only PutItem and Query this table: no update, no delete. The
// assessment of a message applied for the first time rides in the message's seen-messages item instead (one
// item a message, docs/cost.md), or, until the patient's next save puts it there, in the state item's pending
// messages: the trail of a patient is read from the three, in time order.
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  paginateQuery,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { sortableTime } from '#app/audit-export.ts';
import { auditKey, type AuditEvent, type AuditLog } from '#ports';
import { AUDIT_DICTIONARY_V1 } from './audit-dictionary.ts';
import { stateOfItem, type CarriedEntry } from './state-item.ts';
import { AUDIT_TABLE as T, SEEN_TABLE, STATE_TABLE } from './table-layout.ts';

let counter = 0;

/**
 * When this process wrote an entry: server milliseconds and a counter, so that entries of the same instant (a page
 * opened and delivered in the same millisecond) are exported in the order they were written.
 */
export function writtenStamp(nowMs: number): string {
  counter = (counter + 1) % 1_000_000;
  return `${String(nowMs).padStart(15, '0')}.${String(counter).padStart(6, '0')}`;
}

/** Sorted by time, then the hash of the key. */
function auditSortKey(e: AuditEvent): string {
  return `${sortableTime(e.at)}|${createHash('sha256').update(auditKey(e)).digest('base64url').slice(0, 22)}`;
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

/**
 * The first byte of entries deflated with AUDIT_DICTIONARY_V1. Its bits 1-2 set say BTYPE 11, reserved, so no raw
 * deflate stream starts with it: items deflated without a dictionary (before 2026-12-04) still read.
 */
const WITH_DICTIONARY_V1 = 0x06;

/**
 * Audit entries as a seen-messages item carries them (the `entries` attribute): [entry, written] pairs as JSON,
 * deflated with a preset dictionary of typical entries, each entry without the patientId and details.messageId that
 * the item's key says (kept when they differ). Every item of the table is stored for good: this is about a third of
 * the entries as JSON text (deflated alone, about three quarters).
 */
export function carriedEntries(patientId: string, messageId: string, entries: CarriedEntry[]): AttributeValue {
  const pairs = entries.map(({ event, written }) => {
    const { patientId: p, details, ...rest } = event;
    const { messageId: m, ...otherDetails } = details;
    return [
      { ...rest, ...(p === patientId ? {} : { patientId: p }), details: m === messageId ? otherDetails : details },
      written,
    ];
  });
  const deflated = deflateRawSync(JSON.stringify(pairs), { dictionary: AUDIT_DICTIONARY_V1 });
  return { B: Buffer.concat([Buffer.of(WITH_DICTIONARY_V1), deflated]) };
}

/** The entries a seen-messages item carries, whole again: deflated (carriedEntries), or JSON text in a list (before). */
export function entriesCarried(
  patientId: string,
  messageId: string,
  value: AttributeValue | undefined,
): { event: AuditEvent; written: string }[] {
  if (value?.B) {
    const b = value.B;
    const json =
      b[0] === WITH_DICTIONARY_V1
        ? inflateRawSync(b.subarray(1), { dictionary: AUDIT_DICTIONARY_V1 })
        : inflateRawSync(b);
    const pairs = JSON.parse(json.toString('utf8')) as [Partial<AuditEvent>, string][];
    return pairs.map(([e, written]) => {
      const { at, patientId: p, type, text, details, ...rest } = e;
      // The order an entry is made in (grade.ts stepAudit), so that the export prints it as it was written.
      const event = {
        at,
        patientId: p ?? patientId,
        type,
        text,
        details: { messageId: details?.messageId ?? messageId, ...details },
        ...rest,
      } as AuditEvent;
      return { event, written };
    });
  }
  return (value?.L ?? []).map((x) => {
    const event = JSON.parse(x.M?.entry?.S ?? 'null') as AuditEvent | null;
    if (!event) throw new Error(`an audit entry carried by message ${messageId} of patient ${patientId} is malformed`);
    return { event, written: x.M?.written?.S ?? '' };
  });
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
    /**
     * Where the rest of the trail is (read by forPatient): the seen-messages table, whose items carry the
     * assessments of first-time messages, and the state table, whose items carry those not yet put there.
     */
    private readonly trail?: { seenTable: string; stateTable: string },
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
   * Every entry about a patient, oldest first (by time, then by the order they were written): the audit table's,
   * and the assessments the seen-messages items and the state item's pending messages carry. Without those tables
   * the trail would miss most assessments, so reading it needs them.
   */
  async *forPatient(patientId: string): AsyncIterable<AuditEvent> {
    if (!this.trail) throw new Error('reading an audit trail needs the seen-messages and state tables as well');
    const { seenTable, stateTable } = this.trail;
    const all: { time: string; written: string; event: AuditEvent }[] = [];
    const byPatient = (TableName: string, partitionKey: string, only?: readonly string[]) =>
      paginateQuery(
        { client: this.client },
        {
          TableName,
          KeyConditionExpression: '#pk = :p',
          ExpressionAttributeNames: {
            '#pk': partitionKey,
            ...Object.fromEntries((only ?? []).map((a, i) => [`#a${i}`, a])),
          },
          ExpressionAttributeValues: { ':p': { S: patientId } },
          ...(only ? { ProjectionExpression: only.map((_, i) => `#a${i}`).join(', ') } : {}),
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
    // The state item first: a save puts its pending messages in the seen-messages table before it replaces them,
    // so an entry that moves meanwhile is read twice at worst (the same entry: kept once below), never missed.
    const stateItem = await this.client.send(
      new GetItemCommand({
        TableName: stateTable,
        Key: { [STATE_TABLE.partitionKey]: { S: patientId }, [STATE_TABLE.sortKey]: { S: STATE_TABLE.stateSortKey } },
        ConsistentRead: true,
        ProjectionExpression: '#s',
        ExpressionAttributeNames: { '#s': STATE_TABLE.stateAttribute },
      }),
    );
    const carried = new Map<string, { time: string; written: string; event: AuditEvent }>();
    // Only the compact form carries pending messages (read alone: items written before it have none).
    for (const p of stateItem.Item ? (stateOfItem(stateItem.Item)?.pending ?? []) : [])
      for (const x of p.entries)
        carried.set(`${p.messageId}|${x.written}`, {
          time: sortableTime(x.event.at),
          written: x.written,
          event: x.event,
        });
    for await (const page of byPatient(seenTable, SEEN_TABLE.partitionKey, [
      SEEN_TABLE.sortKey,
      SEEN_TABLE.entriesAttribute,
    ])) {
      for (const item of page.Items ?? []) {
        const messageId = item[SEEN_TABLE.sortKey]?.S ?? '';
        for (const { event, written } of entriesCarried(patientId, messageId, item[SEEN_TABLE.entriesAttribute]))
          carried.set(`${messageId}|${written}`, { time: sortableTime(event.at), written, event });
      }
    }
    all.push(...carried.values());
    all.sort((a, b) => (a.time === b.time ? a.written.localeCompare(b.written) : a.time < b.time ? -1 : 1));
    for (const x of all) yield x.event;
  }
}
