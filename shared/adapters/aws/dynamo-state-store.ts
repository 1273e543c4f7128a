// StateStore on DynamoDB: one item per patient, written with a condition on `version`.
// - A save that changes a grade (or raises an alert, or records a reused id) writes what it caused in the same
//   TransactWriteItems: the grade changes and SpO2 alerts as outbox records (which the stream hands to the pager),
//   the messages in the seen-messages table and the audit entries, so that all of it exists if and only if the
//   state does. A first-time message's assessment rides in its seen-messages item (one item, not two).
// - A save that changes no grade, nearly every one, pays for no transaction (docs/cost.md): it writes the state
//   item alone, carrying its messages (ids, digests, assessments) as `pending`; the patient's next save first puts
//   those in the seen-messages table, then writes its state. Every applied message is in the seen-messages table
//   or pending in the state item, never in neither: a crash between the two writes leaves it in both, and a message
//   redriven from the dead-letter queue however late is still known. Duplicates are recognised by reading the
//   seen-messages table after the state (priorDigests), the pending ones by the state's window.
// - A patient with no state starts from the restore the state table records (firstState): its record is read in the
//   same BatchGetItem as the seen messages, so a patient's first grading costs no request more than its next ones.
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  paginateQuery,
  PutItemCommand,
  TransactionCanceledException,
  type AttributeValue,
  type DynamoDBClient,
  type Put,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import type { Notification } from '#domain/page.ts';
import { DEFAULT_PAGING, feedStatus } from '#domain/paging.ts';
import type { AlertChange } from '#domain/reducer.ts';
import { movedOnByRestore, type PatientState } from '#domain/state.ts';
import {
  SeenBefore,
  VersionConflict,
  type SaveExtras,
  type SeenMessage,
  type StateStore,
  type StoredState,
} from '#ports';
import { batchGetTables } from './batch-get.ts';
import { RESTORE_KEY, restoreOf } from './restore.ts';
import { transactWrite } from './transact.ts';
import { APPEND_ONLY, auditItem, carriedEntries, writtenStamp } from './dynamo-audit-log.ts';
import { encodeStateItem, stateOfItem, type CarriedEntry, type PendingSeen } from './state-item.ts';
import { OUTBOX_RETENTION_DAYS, SEEN_TABLE, STATE_TABLE as T, ttlAfter } from './table-layout.ts';

/**
 * DynamoDB allows 100 items in one transaction. A grade batch of 10 messages for one patient writes at most 1 state
 * + 20 grade changes (CRS and ICANS per message) + 10 alerts + 30 audit entries (an assessment per message and one
 * per grade change) + 10 seen messages = 71.
 */
const MAX_TRANSACTION_ITEMS = 100;

/** An outbox record: a grade change or a technical alert, for the pager. */
export type OutboxRecord =
  | { record: 'notification'; notification: Notification }
  | { record: 'alert'; alert: AlertChange };

/** When an enrolled patient's monitor feed last sent something (or the enrolment), for the stale-feed index. */
function feedSince(state: PatientState | undefined): number | undefined {
  // feedStatus's `since` does not depend on the time or the configuration it is asked with.
  return state ? feedStatus(state, 0, DEFAULT_PAGING)?.since : undefined;
}

/**
 * The stale-feed index (`byFeed`) may lag the feed by this much: its value moves only when the feed has moved on
 * this far, so that a patient sending every minute rewrites the index every 10 minutes, not every message (an
 * index entry whose key changes costs two writes). The index only nominates: the sweep decides on a consistent
 * read of the state, and an index value at or before the true one nominates a quiet feed as soon as it is quiet.
 * A lag longer than staleFeedMinutes would only cost reads (a feed still sending, nominated and read each sweep):
 * 10 minutes stays under the default 15 with room for a feed that sends every few minutes.
 */
export const FEED_INDEX_STEP_MS = 10 * 60_000;
/** After a gap in the feed this long (data resuming), the index is written exact, so the all-clear is prompt. */
export const FEED_INDEX_GAP_MS = 2 * 60_000;

/** The value to index: the feed time, or the one indexed before while the feed has not moved on far enough. */
export function feedIndexValue(
  since: number | undefined,
  before: { indexed: number | undefined; since: number | undefined },
): number | undefined {
  if (since === undefined) return undefined;
  const { indexed, since: previous } = before;
  if (indexed === undefined || previous === undefined || since < indexed) return since;
  return since - indexed < FEED_INDEX_STEP_MS && since - previous < FEED_INDEX_GAP_MS ? indexed : since;
}

type SeenGroup = { messageId: string; digests: string[]; prior?: readonly string[] };

/** One transaction may touch an item once: a messageId applied twice in a batch (reused at once) is one item. */
function oneItemPerId(seen: SeenMessage[]): SeenGroup[] {
  const byId = new Map<string, SeenGroup>();
  for (const m of seen) {
    const g = byId.get(m.messageId);
    if (!g)
      byId.set(m.messageId, { messageId: m.messageId, digests: [m.digest], ...(m.prior ? { prior: m.prior } : {}) });
    else if (!g.digests.includes(m.digest)) g.digests.push(m.digest);
  }
  return [...byId.values()];
}

/**
 * Patients whose last read a store remembers (the most recent ones). A read is needed only until the save that
 * follows it in the same grading; one forgotten is read again. The grade function's store lives as long as its
 * container, for hours, and there is no ceiling on patients on AWS: until 2026-12-05 it kept every patient it ever
 * read (about 1 KB each, more with pending messages), one more for each new patient id a device sent.
 */
export const LOADED_PATIENTS_MAX = 256;

export class DynamoStateStore implements StateStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    /** Server time, ms (stamps the records and their expiry). */
    private readonly now: () => number = Date.now,
    /** Where the audit entries of a save go (the audit table); without it, a save with audit entries is refused. */
    private readonly auditTableName?: string,
    /** The long tail of seen messages (the seen-messages table); without it, a save with seen messages is refused. */
    private readonly seenTableName?: string,
  ) {}

  /** What each patient's state item held when it was last loaded: its version, index value, feed time and pending messages. */
  private readonly loaded = new Map<
    string,
    { version: number; indexed: number | undefined; since: number | undefined; pending: PendingSeen[] }
  >();

  /** Patients the last load found no state of: priorDigests reads the restore for them (RESTORE_KEY). */
  private readonly stateless = new Set<string>();

  /** For patients the last load found no state of: the restore the state table records, as priorDigests read it. */
  private readonly restoredAt = new Map<string, number>();

  /**
   * The state a patient with none stored starts from after a restore: its sequence moved on (movedOnByRestore).
   * Known once priorDigests has read the restore record after the load (gradePatient does, for any message to apply).
   */
  firstState(patientId: string): PatientState | undefined {
    const at = this.restoredAt.get(patientId);
    return at === undefined ? undefined : movedOnByRestore(undefined, patientId, at);
  }

  /** How many patients' last reads it holds (at most LOADED_PATIENTS_MAX). */
  get remembered(): number {
    return this.loaded.size;
  }

  async load(patientId: string): Promise<StoredState | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: patientId }, [T.sortKey]: { S: T.stateSortKey } },
        // A stale read would only cost a version conflict and a retry, but a consistent one avoids it.
        ConsistentRead: true,
        ProjectionExpression: '#s, #state, #version, #feedSince',
        ExpressionAttributeNames: {
          '#s': T.stateAttribute,
          '#state': T.legacyStateAttribute,
          '#version': 'version',
          '#feedSince': T.feedSinceAttribute,
        },
      }),
    );
    const item = out.Item;
    this.restoredAt.delete(patientId);
    this.stateless.delete(patientId);
    if (!item) {
      // A patient with no state: after a restore (crs restore --backend aws), its sequence starts moved on too. The
      // restore record is read with the seen messages (priorDigests), not in a request of its own.
      this.stateless.add(patientId);
      if (this.stateless.size > LOADED_PATIENTS_MAX) this.stateless.delete(this.stateless.keys().next().value!);
      return undefined;
    }
    const version = Number(item.version?.N);
    // Items written before the compact form hold the state as JSON (version 1 or 2): read, and written compact.
    const held = stateOfItem(item);
    if (!held || !Number.isInteger(version)) throw new Error(`patient ${patientId}: stored state item is malformed`);
    const { state, pending } = held;
    const indexed = item[T.feedSinceAttribute]?.N;
    this.loaded.delete(patientId);
    this.loaded.set(patientId, {
      version,
      indexed: indexed === undefined ? undefined : Number(indexed),
      since: feedSince(state),
      pending,
    }); // most recent last
    if (this.loaded.size > LOADED_PATIENTS_MAX) this.loaded.delete(this.loaded.keys().next().value!);
    return { state, version };
  }

  /**
   * The digests each of these messageIds was applied with before, from the seen-messages table: consistent reads
   * (read after the state: whatever the state's version has applied is there or pending in the state item). For a
   * patient the last load found no state of, the restore record of the state table in the same request (firstState).
   */
  async priorDigests(patientId: string, messageIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const S = SEEN_TABLE;
    const tables: Parameters<typeof batchGetTables>[1] = {};
    if (this.stateless.has(patientId)) tables[this.tableName] = { keys: [RESTORE_KEY], read: { ConsistentRead: true } };
    if (this.seenTableName)
      tables[this.seenTableName] = {
        keys: [...new Set(messageIds)].map((id) => ({ [S.partitionKey]: { S: patientId }, [S.sortKey]: { S: id } })),
        read: {
          ConsistentRead: true,
          ProjectionExpression: '#id, #digests',
          ExpressionAttributeNames: { '#id': S.sortKey, '#digests': S.digestsAttribute },
        },
      };
    const found = await batchGetTables(this.client, tables);
    if (this.stateless.delete(patientId)) {
      const restore = restoreOf(found.get(this.tableName)?.[0]);
      if (restore) this.restoredAt.set(patientId, restore.restoredAt);
      if (this.restoredAt.size > LOADED_PATIENTS_MAX) this.restoredAt.delete(this.restoredAt.keys().next().value!);
    }
    for (const item of this.seenTableName ? (found.get(this.seenTableName) ?? []) : []) {
      const id = item[S.sortKey]?.S;
      if (id !== undefined) out.set(id, item[S.digestsAttribute]?.SS ?? []);
    }
    return out;
  }

  /**
   * Puts the messages a save left pending into the seen-messages table, each only if absent: a put again after a
   * crash finds its own item, and a digest added since (a reuse) is never undone.
   */
  private async flush(patientId: string, pending: readonly PendingSeen[]): Promise<void> {
    // Side by side: each put stands alone (the state is written only once all are in).
    await Promise.all(pending.map((p) => this.putSeen(patientId, p)));
  }

  private async putSeen(patientId: string, p: PendingSeen): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.seenTableName!,
          Item: this.seenPut(patientId, p.messageId, p.digests, p.entries),
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': SEEN_TABLE.partitionKey },
        }),
      );
    } catch (err) {
      if (
        !(err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException')
      )
        throw err;
    }
  }

  /** The messages the item at this version left pending (a store that did not load it reads it again). */
  private async pendingAt(patientId: string, version: number): Promise<PendingSeen[]> {
    if (version === 0) return [];
    if (this.loaded.get(patientId)?.version !== version) await this.load(patientId);
    const loaded = this.loaded.get(patientId);
    if (loaded?.version !== version) throw new VersionConflict(patientId);
    return loaded.pending;
  }

  async save(
    patientId: string,
    state: PatientState,
    expectedVersion: number,
    outbox: Notification[],
    extras?: SaveExtras,
  ): Promise<void> {
    const alerts = extras?.alerts ?? [];
    const seen = oneItemPerId(extras?.seen ?? []);
    const nowMs = this.now();
    // Stamped in the order given (it orders entries of the same instant), then split: the assessment of a message
    // seen for the first time goes into its seen-messages item, every other entry into the audit table.
    const firstTime = new Set(seen.filter((m) => !m.prior).map((m) => m.messageId));
    const carried = new Map<string, CarriedEntry[]>();
    const audit: CarriedEntry[] = [];
    for (const event of extras?.audit ?? []) {
      const entry = { event, written: writtenStamp(nowMs) };
      const id = event.details.messageId;
      if (event.type === 'assessment' && typeof id === 'string' && firstTime.has(id))
        carried.set(id, [...(carried.get(id) ?? []), entry]);
      else audit.push(entry);
    }
    const count = 1 + outbox.length + alerts.length + audit.length + seen.length;
    if (count > MAX_TRANSACTION_ITEMS) throw new Error(`patient ${patientId}: ${count} items exceed one transaction`);
    if (audit.length > 0 && !this.auditTableName)
      throw new Error('the state store was given audit entries but no audit table');
    if (seen.length > 0 && !this.seenTableName)
      throw new Error('the state store was given seen messages but no seen-messages table');
    // What the last save left pending goes to the seen-messages table first (see the top of the file).
    await this.flush(patientId, await this.pendingAt(patientId, expectedVersion));
    // No grade change, alert or reused id: nothing but the state and its messages, which can wait in the state item.
    const light = outbox.length === 0 && alerts.length === 0 && audit.length === 0 && seen.every((m) => !m.prior);
    const pending: PendingSeen[] = light
      ? seen.map((m) => ({ messageId: m.messageId, digests: m.digests, entries: carried.get(m.messageId) ?? [] }))
      : [];
    const stamp = new Date(nowMs).toISOString();
    const expiresAt = ttlAfter(nowMs, OUTBOX_RETENTION_DAYS);
    const stateItem: Record<string, AttributeValue> = {
      [T.partitionKey]: { S: patientId },
      [T.sortKey]: { S: T.stateSortKey },
      [T.kindAttribute]: { S: T.stateKind },
      version: { N: String(expectedVersion + 1) },
      [T.stateAttribute]: { B: encodeStateItem(state, pending) },
    };
    const indexed = feedIndexValue(
      feedSince(state),
      (expectedVersion > 0 ? this.loaded.get(patientId) : undefined) ?? { indexed: undefined, since: undefined },
    );
    if (indexed !== undefined) {
      stateItem[T.feedShardAttribute] = { S: T.feedShard };
      stateItem[T.feedSinceAttribute] = { N: String(indexed) };
    }
    const outboxItem = (id: string, record: Record<string, AttributeValue>): TransactWriteItem => ({
      Put: {
        TableName: this.tableName,
        Item: {
          [T.partitionKey]: { S: patientId },
          [T.sortKey]: { S: `${T.outboxSortKeyPrefix}${id}` },
          [T.kindAttribute]: { S: T.outboxKind },
          createdAt: { S: stamp },
          [T.ttlAttribute]: { N: expiresAt },
          ...record,
        },
        // Ids are unique per grade change: a record that exists already must fail loudly, never be overwritten (a
        // MODIFY, which the stream filter drops: a page nobody would get).
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': T.partitionKey },
      },
    });
    const statePut: Put = {
      TableName: this.tableName,
      Item: stateItem,
      ...(expectedVersion === 0
        ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': T.partitionKey } }
        : {
            ConditionExpression: '#version = :expected',
            ExpressionAttributeNames: { '#version': 'version' },
            ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
          }),
    };
    if (light) {
      try {
        await this.client.send(new PutItemCommand(statePut));
      } catch (err) {
        if (err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException')
          throw new VersionConflict(patientId);
        throw err;
      }
      return;
    }
    const records: TransactWriteItem[] = [
      ...outbox.map((n) =>
        outboxItem(n.notificationId, {
          [T.recordAttribute]: { S: 'notification' },
          notificationId: { S: n.notificationId },
          notification: { S: JSON.stringify(n) },
        }),
      ),
      ...alerts.map((a) =>
        outboxItem(a.alertId, {
          [T.recordAttribute]: { S: 'alert' },
          alertId: { S: a.alertId },
          alert: { S: JSON.stringify(a) },
        }),
      ),
    ];
    // Audit entries are keyed by their content: these messages were never applied before (a redelivery is a
    // duplicate and audits nothing), so an entry found stored is this very one, written before a restore brought the
    // state back to before it (docs/runbook.md, 2026-12-07): left out, as SQLite's audit table ignores it. Until then
    // its append-only condition failed the transaction at every try, and the message was dead-lettered.
    let entries = audit.map(
      (e): TransactWriteItem => ({
        Put: { TableName: this.auditTableName!, Item: auditItem(e.event, e.written), ...APPEND_ONLY },
      }),
    );
    const seenItems = seen.map((m) => this.seenItem(patientId, m, carried.get(m.messageId) ?? []));
    for (;;) {
      const items: TransactWriteItem[] = [{ Put: statePut }, ...records, ...entries, ...seenItems];
      const firstEntry = 1 + records.length;
      const firstSeen = firstEntry + entries.length;
      try {
        await transactWrite(this.client, { TransactItems: items });
        return;
      } catch (err) {
        if (err instanceof TransactionCanceledException || (err as Error).name === 'TransactionCanceledException') {
          const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
          const stored = (i: number) => i >= firstEntry && i < firstSeen;
          const failed = reasons.flatMap((r, i) => (r.Code && r.Code !== 'None' ? [i] : []));
          if (failed.length > 0 && failed.every((i) => stored(i) && reasons[i]!.Code === 'ConditionalCheckFailed')) {
            entries = entries.filter((_, j) => !failed.includes(firstEntry + j));
            continue;
          }
          // A messageId this patient had before (its put found the item): its digests came back, no read needed.
          const before = new Map<string, string[]>();
          reasons.forEach((r, i) => {
            if (i < firstSeen || r.Code !== 'ConditionalCheckFailed') return;
            before.set(seen[i - firstSeen]!.messageId, r.Item?.[SEEN_TABLE.digestsAttribute]?.SS ?? []);
          });
          if (before.size > 0) throw new SeenBefore(patientId, before);
          // The version moved on (another delivery won), or another transaction held the item: reload and retry.
          const codes = reasons.map((r) => r.Code);
          if (codes[0] === 'ConditionalCheckFailed' || codes.includes('TransactionConflict'))
            throw new VersionConflict(patientId);
          const taken = codes.findIndex((c, i) => i > 0 && i < firstEntry && c === 'ConditionalCheckFailed');
          if (taken > 0)
            throw new Error(
              `patient ${patientId}: outbox record ${(items[taken]!.Put!.Item![T.sortKey]!.S ?? '').slice(T.outboxSortKeyPrefix.length)} exists already; its grade change is not overwritten`,
            );
        }
        throw err;
      }
    }
  }

  /**
   * A message for the long tail. An id not known before is put only if absent (returning the old item when not:
   * SeenBefore), with its assessment's audit entry; an id known before (a reuse, graded as a new observation) gets
   * its new digest added, and its assessment goes to the audit table.
   */
  private seenItem(patientId: string, m: SeenGroup, entries: CarriedEntry[]): TransactWriteItem {
    const S = SEEN_TABLE;
    const key = { [S.partitionKey]: { S: patientId }, [S.sortKey]: { S: m.messageId } };
    if (m.prior) {
      return {
        Update: {
          TableName: this.seenTableName!,
          Key: key,
          UpdateExpression: 'ADD #digests :digests',
          ExpressionAttributeNames: { '#digests': S.digestsAttribute },
          ExpressionAttributeValues: { ':digests': { SS: m.digests } },
        },
      };
    }
    return {
      Put: {
        TableName: this.seenTableName!,
        Item: this.seenPut(patientId, m.messageId, m.digests, entries),
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': S.partitionKey },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }

  /** A message's seen-messages item as first put: its digests, and the audit entries it carries. */
  private seenPut(
    patientId: string,
    messageId: string,
    digests: readonly string[],
    entries: CarriedEntry[],
  ): Record<string, AttributeValue> {
    const S = SEEN_TABLE;
    return {
      [S.partitionKey]: { S: patientId },
      [S.sortKey]: { S: messageId },
      [S.digestsAttribute]: { SS: [...digests] },
      ...(entries.length > 0 ? { [S.entriesAttribute]: carriedEntries(patientId, messageId, entries) } : {}),
    };
  }

  /** A grade change from the outbox (kept 30 days): what a page about it says in full. Read consistently. */
  async notification(patientId: string, notificationId: string): Promise<Notification | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: patientId }, [T.sortKey]: { S: `${T.outboxSortKeyPrefix}${notificationId}` } },
        // Consistent: a replica that has not seen the grade transaction yet would answer "no such grade change", and
        // the page about it would be parked unsent (the escalate tick right after a deferred send, a fresh retry).
        ConsistentRead: true,
        ProjectionExpression: 'notification',
      }),
    );
    const json = out.Item?.notification?.S;
    return json === undefined ? undefined : (JSON.parse(json) as Notification);
  }

  /** Every enrolled patient and when their monitor feed last sent something (the `byFeed` index). */
  async *feeds(): AsyncIterable<{ patientId: string; since: number }> {
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        IndexName: T.feedIndex,
        KeyConditionExpression: '#shard = :feed',
        ExpressionAttributeNames: { '#shard': T.feedShardAttribute },
        ExpressionAttributeValues: { ':feed': { S: T.feedShard } },
      },
    );
    for await (const page of query) {
      for (const item of page.Items ?? []) {
        const patientId = item[T.partitionKey]?.S;
        const since = Number(item[T.feedSinceAttribute]?.N);
        if (patientId && Number.isFinite(since)) yield { patientId, since };
      }
    }
  }
}

/**
 * The grade change or alert in an outbox record, as the DynamoDB stream delivers it (NEW_IMAGE). Undefined for any
 * other item (patient state, a removal), so the notifier can ignore what its stream filter should already have
 * dropped. A record written before alerts existed has no `record` attribute: it is a grade change.
 */
export function outboxRecord(image: Record<string, { S?: string } | undefined> | undefined): OutboxRecord | undefined {
  if (!image || image[T.kindAttribute]?.S !== T.outboxKind) return undefined;
  if (image[T.recordAttribute]?.S === 'alert') {
    const json = image.alert?.S;
    if (json === undefined) throw new Error('outbox record has no alert');
    const a = JSON.parse(json) as AlertChange;
    if (typeof a.alertId !== 'string' || typeof a.patientId !== 'string')
      throw new Error('outbox record is not an alert');
    return { record: 'alert', alert: a };
  }
  const json = image.notification?.S;
  if (json === undefined) throw new Error('outbox record has no notification');
  const n = JSON.parse(json) as Notification;
  if (typeof n.notificationId !== 'string' || !Array.isArray(n.teams))
    throw new Error('outbox record is not a notification');
  return { record: 'notification', notification: n };
}

/** The grade change in an outbox record (undefined for an alert or any other item). */
export function outboxNotification(
  image: Record<string, { S?: string } | undefined> | undefined,
): Notification | undefined {
  const r = outboxRecord(image);
  return r?.record === 'notification' ? r.notification : undefined;
}
