// PageStore on DynamoDB (layout in table-layout.ts): a page is an item in its patient's partition, written with a
// condition on its revision, several pages, or pages and the audit entries that say what changed, in one
// transaction (all or nothing); silences and the stale-feed alerts in force sit in partitions of their own. Every
// read the pager decides on is strongly consistent: the `byDue` index only nominates pages, which are then read
// back from the table.
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  paginateQuery,
  TransactionCanceledException,
  type AttributeValue,
  type DynamoDBClient,
  type Put,
} from '@aws-sdk/client-dynamodb';
import {
  firstSendPending,
  isUnreadable,
  PageUnreadable,
  readOneSilence,
  readPage,
  readPages,
  readSilence,
  readSilences,
  type Page,
  type PagesRead,
  type Silence,
  type SilencesRead,
  type UnreadablePage,
  type UnreadableSilence,
} from '#domain/paging.ts';
import {
  ACK_LINK_RETENTION_DAYS,
  VersionConflict,
  auditKey,
  type AckLink,
  type AuditEvent,
  type PageStore,
  type ParkedSend,
  type ParkedSends,
} from '#ports';
import type { InForce, Resumed } from '#app/stale-feed.ts';
import { batchGet } from './batch-get.ts';
import { transactWrite } from './transact.ts';
import { APPEND_ONLY, auditItem, writtenStamp } from './dynamo-audit-log.ts';
import { PAGES_TABLE as T, SILENCE_RETENTION_DAYS, patientOfPageId, ttlAfter } from './table-layout.ts';

type Item = Record<string, AttributeValue>;

/**
 * An unsent page is left to whoever stored it for this long: that pager (the notifier, or a tick) is sending it
 * and marking it sent within milliseconds, and another tick running meanwhile (ticks may overlap) must neither
 * send it a second time nor step its ladder on. A send that a crash cut short goes out at the first tick after.
 */
export const UNSENT_GRACE_MS = 30_000;

const isConditionFailure = (err: unknown) =>
  err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';

function patientOf(pageId: string): string {
  const patientId = patientOfPageId(pageId);
  if (!patientId) throw new Error(`page id ${JSON.stringify(pageId)} does not name its patient`);
  return patientId;
}

const pageKey = (pageId: string): Item => ({
  [T.partitionKey]: { S: patientOf(pageId) },
  [T.sortKey]: { S: `${T.pageSortKeyPrefix}${pageId}` },
});

/** When a page next needs the tick: its due time, 0 while held or unsent (always), or never. */
function dueAt(p: Page): number | undefined {
  if (p.status === 'open' && p.heldBy !== undefined) return 0;
  if (!p.delivered && (p.status === 'open' || p.status === 'info')) return 0;
  if (p.status === 'open' && p.dueAt !== null) return p.dueAt;
  return undefined;
}

/** The page an item holds, read with the domain's readPage (the id is its sort key's), or why it cannot be. */
function fromItem(item: Item): Page | UnreadablePage {
  const pageId = (item[T.sortKey]?.S ?? '').slice(T.pageSortKeyPrefix.length);
  const rev = Number(item.rev?.N);
  // JSON has no undefined: optional fields come back absent, as they were.
  return readPage(pageId, item.page?.S ?? '', Number.isInteger(rev) ? rev : -1);
}

export class DynamoPageStore implements PageStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
    /** Where the audit entries saved with pages and silences go (the audit table); without it they are refused. */
    private readonly auditTableName?: string,
    /** How long an unsent page is left to whoever stored it (UNSENT_GRACE_MS). */
    private readonly unsentGraceMs = UNSENT_GRACE_MS,
  ) {}

  async get(pageId: string): Promise<Page | undefined> {
    if (!patientOfPageId(pageId)) return undefined;
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: pageKey(pageId), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const p = fromItem(out.Item);
    if (isUnreadable(p)) throw new PageUnreadable(p.pageId, p.reason);
    return p;
  }

  private async *patientItems(patientId: string): AsyncIterable<Item> {
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :p AND begins_with(#sk, :page)',
        ExpressionAttributeNames: { '#pk': T.partitionKey, '#sk': T.sortKey },
        ExpressionAttributeValues: { ':p': { S: patientId }, ':page': { S: T.pageSortKeyPrefix } },
        ConsistentRead: true,
      },
    );
    for await (const page of query) {
      yield* page.Items ?? [];
    }
  }

  async saveAckLink(key: string, link: AckLink): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          [T.partitionKey]: { S: T.ackLinksPartition },
          [T.sortKey]: { S: key },
          pageId: { S: link.pageId },
          role: { S: link.role },
          linkExpiresAt: { N: String(link.expiresAt) },
          [T.ttlAttribute]: { N: ttlAfter(link.expiresAt, ACK_LINK_RETENTION_DAYS) },
        },
      }),
    );
  }

  async ackLink(key: string): Promise<AckLink | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: T.ackLinksPartition }, [T.sortKey]: { S: key } },
        ConsistentRead: true,
      }),
    );
    const item = out.Item;
    if (!item?.pageId?.S || item.role?.S === undefined || !item.linkExpiresAt?.N) return undefined;
    return { pageId: item.pageId.S, role: item.role.S, expiresAt: Number(item.linkExpiresAt.N) };
  }

  async openPages(patientId: string): Promise<PagesRead> {
    const read: (Page | UnreadablePage)[] = [];
    for await (const item of this.patientItems(patientId)) if (item.status?.S === 'open') read.push(fromItem(item));
    return readPages(read);
  }

  async unsentPages(patientId: string): Promise<PagesRead> {
    const read: (Page | UnreadablePage)[] = [];
    for await (const item of this.patientItems(patientId)) {
      if (item[T.dueAtAttribute]?.N !== '0') continue; // neither held nor unsent
      read.push(fromItem(item));
    }
    const { pages, unreadable } = readPages(read);
    return { pages: pages.filter(firstSendPending).sort((a, b) => a.triggeredAt - b.triggeredAt), unreadable };
  }

  async patientPages(patientId: string, limit: number): Promise<PagesRead> {
    const read: (Page | UnreadablePage)[] = [];
    for await (const item of this.patientItems(patientId)) read.push(fromItem(item));
    const { pages, unreadable } = readPages(read);
    return { pages: pages.sort((a, b) => b.triggeredAt - a.triggeredAt).slice(0, limit), unreadable };
  }

  async pendingPages(now: number): Promise<PagesRead> {
    const keys: Item[] = [];
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        IndexName: T.dueIndex,
        KeyConditionExpression: '#shard = :shard AND #due <= :now',
        ExpressionAttributeNames: { '#shard': T.dueShardAttribute, '#due': T.dueAtAttribute },
        ExpressionAttributeValues: { ':shard': { S: T.dueShard }, ':now': { N: String(now) } },
      },
    );
    for await (const out of query) {
      for (const item of out.Items ?? [])
        keys.push({ [T.partitionKey]: item[T.partitionKey]!, [T.sortKey]: item[T.sortKey]! });
    }
    // The index is eventually consistent: read the nominated pages back, and keep those still pending.
    const pages: Page[] = [];
    const unreadable: UnreadablePage[] = [];
    // A send another pager is making now (by patient, the earliest): the patient's first sends triggered after it
    // wait too, so as not to overtake it.
    const sending = new Map<string, number>();
    for (const item of await batchGet(this.client, this.tableName, keys, { ConsistentRead: true })) {
      const p = fromItem(item);
      if (isUnreadable(p)) {
        unreadable.push(p); // still nominated, as it stands: the pager sets it aside and names it
        continue;
      }
      const due = dueAt(p);
      if (due === undefined || due > now) continue;
      const beingSent = !p.delivered && p.heldBy === undefined;
      if (beingSent && now - Number(item.changedAt?.N ?? 0) < this.unsentGraceMs) {
        sending.set(p.patientId, Math.min(p.triggeredAt, sending.get(p.patientId) ?? Infinity));
        continue;
      }
      pages.push(p);
    }
    return {
      pages: pages.filter((p) => !(firstSendPending(p) && p.triggeredAt > (sending.get(p.patientId) ?? Infinity))),
      unreadable,
    };
  }

  async save(pages: Page[], audit: AuditEvent[] = []): Promise<void> {
    if (pages.length === 0 && audit.length === 0) return;
    const nowMs = this.now();
    const puts = pages.map((p): Put => {
      const item: Item = {
        ...pageKey(p.pageId),
        page: { S: JSON.stringify({ ...p, rev: p.rev + 1 }) },
        rev: { N: String(p.rev + 1) },
        status: { S: p.status },
        triggeredAt: { N: String(p.triggeredAt) },
        changedAt: { N: String(nowMs) },
      };
      const due = dueAt(p);
      if (due !== undefined) {
        item[T.dueShardAttribute] = { S: T.dueShard };
        item[T.dueAtAttribute] = { N: String(due) };
      }
      return {
        TableName: this.tableName,
        Item: item,
        ...(p.rev === 0
          ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': T.partitionKey } }
          : {
              ConditionExpression: '#rev = :rev',
              ExpressionAttributeNames: { '#rev': 'rev' },
              ExpressionAttributeValues: { ':rev': { N: String(p.rev) } },
            }),
      };
    });
    try {
      await this.write(puts, audit, nowMs);
    } catch (err) {
      if (isConditionFailure(err)) throw new VersionConflict(pages[0]!.pageId);
      if (err instanceof TransactionCanceledException || (err as Error).name === 'TransactionCanceledException') {
        const codes = ((err as TransactionCanceledException).CancellationReasons ?? []).map((r) => r.Code);
        const i = codes.findIndex((c) => c === 'ConditionalCheckFailed' || c === 'TransactionConflict');
        if (i >= 0 && i < pages.length) throw new VersionConflict(pages[i]!.pageId);
      }
      throw err;
    }
  }

  /**
   * Puts these items with the audit entries, all or nothing: one PutItem when it is one item alone, else one
   * transaction. An audit entry stored already (the same entry: its key is its content) is left out and the rest
   * written again, so that the append-only condition never fails a write for a good reason.
   */
  private async write(puts: Put[], audit: AuditEvent[], nowMs: number): Promise<void> {
    if (audit.length > 0 && !this.auditTableName)
      throw new Error('the page store was given audit entries but no audit table');
    // One entry once: a transaction may not touch an item twice.
    let entries = [...new Map(audit.map((e) => [auditKey(e), e])).values()].map(
      (e): Put => ({ TableName: this.auditTableName!, Item: auditItem(e, writtenStamp(nowMs)), ...APPEND_ONLY }),
    );
    if (puts.length + entries.length > 100)
      throw new Error(`${puts.length + entries.length} items exceed one transaction`);
    for (;;) {
      const all = [...puts, ...entries];
      if (all.length === 0) return;
      if (all.length === 1 && puts.length === 1) {
        await this.client.send(new PutItemCommand(puts[0]!));
        return;
      }
      try {
        await transactWrite(this.client, { TransactItems: all.map((Put) => ({ Put })) });
        return;
      } catch (err) {
        const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
        const stored = new Set(
          reasons.flatMap((r, i) => (i >= puts.length && r.Code === 'ConditionalCheckFailed' ? [i - puts.length] : [])),
        );
        const pagesFine = reasons.slice(0, puts.length).every((r) => r.Code === 'None' || r.Code === undefined);
        if ((err as Error).name !== 'TransactionCanceledException' || stored.size === 0 || !pagesFine) throw err;
        entries = entries.filter((_, i) => !stored.has(i));
      }
    }
  }

  async silences(now: number): Promise<SilencesRead> {
    const silences: (Silence | UnreadableSilence)[] = [];
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :p',
        FilterExpression: '#until > :now AND (attribute_not_exists(endedAt) OR endedAt > :now)',
        ExpressionAttributeNames: { '#pk': T.partitionKey, '#until': 'until' },
        ExpressionAttributeValues: { ':p': { S: T.silencesPartition }, ':now': { N: String(now) } },
        ConsistentRead: true,
      },
    );
    for await (const out of query) {
      for (const item of out.Items ?? []) silences.push(readSilenceItem(item));
    }
    return readSilences(silences);
  }

  /**
   * Every silence still kept (ended ones for 30 days), newest first, and the items that cannot be read, named by id
   * with why: for `crs silence list --all`. Until 2026-12-05 one such item failed the whole list.
   */
  async allSilences(): Promise<SilencesRead> {
    const read: (Silence | UnreadableSilence)[] = [];
    for await (const item of partitionItems(this.client, this.tableName, T.silencesPartition))
      read.push(readSilenceItem(item));
    const { silences, unreadable } = readSilences(read);
    return { silences: silences.sort((a, b) => b.from - a.from), unreadable };
  }

  async getSilence(silenceId: string): Promise<Silence | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: T.silencesPartition }, [T.sortKey]: { S: silenceId } },
        ConsistentRead: true,
      }),
    );
    return out.Item ? readOneSilence(silenceId, out.Item.silence?.S ?? '', out.Item.patientId?.S) : undefined;
  }

  /** The item is put back as it is, with endedAt (which silences() reads by) and its retention from now. */
  async endUnreadableSilence(silenceId: string, at: number, audit: AuditEvent[]): Promise<boolean> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: T.silencesPartition }, [T.sortKey]: { S: silenceId } },
        ConsistentRead: true,
      }),
    );
    const item = out.Item;
    if (!item || item.endedAt !== undefined || !(Number(item.until?.N) > at)) return false;
    try {
      await this.write(
        [
          {
            TableName: this.tableName,
            Item: {
              ...item,
              endedAt: { N: String(at) },
              [T.ttlAttribute]: { N: ttlAfter(at, SILENCE_RETENTION_DAYS) },
            },
            // Ended by someone else meanwhile: the write fails rather than end it twice.
            ConditionExpression: 'attribute_not_exists(endedAt)',
          },
        ],
        audit,
        this.now(),
      );
    } catch (err) {
      // That someone else's end is the one recorded: this one had already ended (until 2026-12-05 an error).
      const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
      if (isConditionFailure(err) || reasons[0]?.Code === 'ConditionalCheckFailed') return false;
      throw err;
    }
    return true;
  }

  async saveSilence(s: Silence, audit: AuditEvent[] = []): Promise<void> {
    const end = s.endedAt ?? s.until;
    const item: Item = {
      [T.partitionKey]: { S: T.silencesPartition },
      [T.sortKey]: { S: s.silenceId },
      silence: { S: JSON.stringify(s) },
      until: { N: String(s.until) },
      [T.ttlAttribute]: { N: ttlAfter(end, SILENCE_RETENTION_DAYS) },
    };
    // Apart from the JSON, as sqlite's patient_id column: it names the patient of an item whose JSON cannot be read.
    if ('patientId' in s.scope) item.patientId = { S: s.scope.patientId };
    if (s.endedAt !== undefined) item.endedAt = { N: String(s.endedAt) };
    await this.write([{ TableName: this.tableName, Item: item }], audit, this.now());
  }

  /**
   * The stale-feed alerts in force: patientId (or a ward alert's id) -> the alert's id and the time the feed went
   * quiet (a ward alert's: who of its patients had data again, `resumed`); and the records that cannot be read (an
   * older shape, an item edited by hand), apart, each named by its key with why. Until 2026-12-05 one such record
   * failed every sweep (a TypeError): no patient's "no data" alert was raised or cleared while it stayed. A ward
   * alert whose `resumed` alone cannot be read is in force without it, and named too: losing who resumed must not
   * keep the alert from its all-clear.
   */
  async staleFeedAlerts(): Promise<StaleFeedsRead> {
    const alerts = new Map<string, InForce>();
    const unreadable: UnreadableRecord[] = [];
    const query = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :p',
        ExpressionAttributeNames: { '#pk': T.partitionKey },
        ExpressionAttributeValues: { ':p': { S: T.staleFeedsPartition } },
        ConsistentRead: true,
      },
    );
    for await (const out of query) {
      for (const item of out.Items ?? []) {
        const key = item[T.sortKey]?.S ?? '';
        const e = inForceOf(item);
        if (typeof e === 'string') {
          unreadable.push({ key, reason: e });
          continue;
        }
        const resumed = resumedOf(item);
        if (typeof resumed === 'string') unreadable.push({ key, reason: `${resumed} (in force without it)` });
        alerts.set(key, Array.isArray(resumed) ? { ...e, resumed } : e);
      }
    }
    return { alerts, unreadable };
  }

  /** `resumed`: a ward alert's patients whose data came back (shared/app/stale-feed.ts), stored whole on its item. */
  async setStaleFeedAlert(
    patientId: string,
    alertId: string,
    since: number,
    resumed: readonly Resumed[] = [],
    /** A ward alert's: the time its text gave (InForce `said`). */
    said?: number,
  ): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          [T.partitionKey]: { S: T.staleFeedsPartition },
          [T.sortKey]: { S: patientId },
          alertId: { S: alertId },
          since: { N: String(since) },
          ...(said === undefined ? {} : { said: { N: String(said) } }),
          ...(resumed.length > 0
            ? {
                resumed: {
                  L: resumed.map((r) => ({
                    M: {
                      patientId: { S: r.patientId },
                      ...(r.bed === undefined ? {} : { bed: { S: r.bed } }),
                      at: { N: String(r.at) },
                    },
                  })),
                },
              }
            : {}),
        },
      }),
    );
  }

  async clearStaleFeedAlert(patientId: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: T.staleFeedsPartition }, [T.sortKey]: { S: patientId } },
      }),
    );
  }
}

/** A record of one of the pages table's own partitions that cannot be read: its key, and why (never its values). */
export interface UnreadableRecord {
  key: string;
  reason: string;
}

/** The stale-feed alerts in force, by key, and the records that could not be read (never dropped silently). */
export interface StaleFeedsRead {
  alerts: Map<string, InForce>;
  unreadable: UnreadableRecord[];
}

/** A stale-feed record in force read back, or why it cannot be (the attribute, never its value). */
function inForceOf(item: Item): { alertId: string; since: number; said?: number } | string {
  const alertId = item.alertId;
  if (alertId === undefined) return 'alertId is missing';
  if (typeof alertId.S !== 'string' || alertId.S === '') return 'alertId is not text';
  if (item.since === undefined) return 'since is missing';
  const since = Number(item.since.N);
  if (item.since.N === undefined || !Number.isFinite(since)) return 'since is not a number';
  // A ward alert's `said` that cannot be read: its all-clear names it by its id's time, as before 2026-12-07.
  const said = Number(item.said?.N);
  return { alertId: alertId.S, since, ...(item.said?.N !== undefined && Number.isFinite(said) ? { said } : {}) };
}

/** A ward alert's `resumed` read back (undefined: none), or why it cannot be (never its values). */
function resumedOf(item: Item): Resumed[] | undefined | string {
  if (item.resumed === undefined) return undefined;
  const list = item.resumed.L;
  if (!Array.isArray(list)) return 'resumed is not a list';
  const out: Resumed[] = [];
  for (const v of list) {
    const m = v.M;
    const at = Number(m?.at?.N);
    if (typeof m?.patientId?.S !== 'string' || m.at?.N === undefined || !Number.isFinite(at))
      return 'resumed holds an entry with no patientId or at';
    if (m.bed !== undefined && typeof m.bed.S !== 'string') return 'resumed holds a bed that is not text';
    out.push({ patientId: m.patientId.S, ...(m.bed?.S === undefined ? {} : { bed: m.bed.S }), at });
  }
  return out;
}

/** Every item of one of the pages table's own partitions (read consistently). */
async function* partitionItems(client: DynamoDBClient, table: string, partition: string): AsyncIterable<Item> {
  const pages = paginateQuery(
    { client },
    {
      TableName: table,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': T.partitionKey },
      ExpressionAttributeValues: { ':pk': { S: partition } },
      ConsistentRead: true,
    },
  );
  for await (const page of pages) yield* page.Items ?? [];
}

type Check = (v: unknown) => boolean;
const isText: Check = (v) => typeof v === 'string';
const isCount: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * A parked item's JSON read back with the fields it must have, and stored under the key those fields make; or why it
 * cannot be (the field, never its value). One check per kind of item, so that no list fails on one item.
 */
function readParked<R>(
  sortKey: string,
  json: string | undefined,
  fields: Record<keyof R & string, Check>,
  keyOf: (r: R) => string,
): Parked<R> {
  const unreadable = (reason: string): Parked<R> => ({ ok: false, unreadable: { key: sortKey, reason } });
  if (json === undefined) return unreadable('its JSON attribute is missing');
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return unreadable('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return unreadable('not a JSON object');
  const o = v as Record<string, unknown>;
  for (const [field, ok] of Object.entries(fields) as [string, Check][]) {
    if (o[field] === undefined) return unreadable(`${field} is missing`);
    if (!ok(o[field])) return unreadable(`${field} is not what it holds there`);
  }
  if (keyOf(o as R) !== sortKey) return unreadable('it holds another key');
  return { ok: true, value: o as R };
}

type Parked<R> = { ok: true; value: R } | { ok: false; unreadable: UnreadableRecord };

/** What a list of parked items read: those read, and those that could not be, each named (never dropped silently). */
export interface ParkedRead<R> {
  items: R[];
  unreadable: UnreadableRecord[];
}

function parkedRead<R>(read: Parked<R>[], order: (a: R, b: R) => number): ParkedRead<R> {
  const items: R[] = [];
  const unreadable: UnreadableRecord[] = [];
  for (const r of read)
    if (r.ok) items.push(r.value);
    else unreadable.push(r.unreadable);
  return { items: items.sort(order), unreadable };
}

const SEND_FIELDS: Record<keyof ParkedSend, Check> = {
  pageId: isText,
  patientId: isText,
  notificationId: isText,
  team: isText,
  level: isCount,
  round: isCount,
  reason: isText,
  attempts: isCount,
  parkedAt: isText,
};

/** Parked sends in the pages table's `#parked` partition (one small item each; a few at most, in practice). */
export class DynamoParkedSends implements ParkedSends {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  private key(pageId: string, level: number, round: number): Item {
    return { [T.partitionKey]: { S: T.parkedPartition }, [T.sortKey]: { S: `${pageId}#${level}#${round}` } };
  }

  async park(send: ParkedSend): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { ...this.key(send.pageId, send.level, send.round), send: { S: JSON.stringify(send) } },
      }),
    );
  }

  /** The parked sends that can be read, oldest first (`read` names the others). */
  async list(): Promise<ParkedSend[]> {
    return (await this.read()).items;
  }

  /**
   * The parked sends, oldest first, and the items that cannot be read (by key: `<pageId>#<level>#<round>`, with why).
   * Until 2026-12-05 one such item failed `crs outbox list` and `retry`, every parked send and record with it.
   */
  async read(): Promise<ParkedRead<ParkedSend>> {
    const read: Parked<ParkedSend>[] = [];
    for await (const item of partitionItems(this.client, this.table, T.parkedPartition)) {
      const sk = item[T.sortKey]?.S ?? '';
      if (sk.startsWith(T.parkedRecordPrefix)) continue; // a parked outbox record
      read.push(readParked<ParkedSend>(sk, item.send?.S, SEND_FIELDS, (p) => `${p.pageId}#${p.level}#${p.round}`));
    }
    return parkedRead(read, (a, b) => a.parkedAt.localeCompare(b.parkedAt));
  }

  async remove(pageId: string, level: number, round: number): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.table, Key: this.key(pageId, level, round) }));
  }
}

/**
 * An outbox record the notifier could not page because of the record itself (it cannot be read, or paging it fails
 * for a reason that is not an outage): set aside so that the records behind it go on, and paged again from here by
 * `crs outbox retry --backend aws`.
 */
export interface ParkedRecord {
  /** The outbox item's keys in the state table: "<patientId>#<sort key>". */
  key: string;
  patientId: string;
  /** The grade change's notificationId, or the alert's alertId ('' when the record could not even be read). */
  id: string;
  reason: string;
  parkedAt: string;
  /** The outbox item as the stream carried it (DynamoDB JSON), to page it again. */
  image: string;
}

const RECORD_FIELDS: Record<keyof ParkedRecord, Check> = {
  key: isText,
  patientId: isText,
  id: isText,
  reason: isText,
  parkedAt: isText,
  image: isText,
};

/** Parked outbox records in the pages table's `#parked` partition, beside the parked sends (sk "record#<key>"). */
export class DynamoParkedRecords {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  private sortKey(key: string): string {
    return `${T.parkedRecordPrefix}${key}`;
  }

  async park(r: ParkedRecord): Promise<void> {
    const item: Item = {
      [T.partitionKey]: { S: T.parkedPartition },
      [T.sortKey]: { S: this.sortKey(r.key) },
      record: { S: JSON.stringify(r) },
    };
    await this.client.send(new PutItemCommand({ TableName: this.table, Item: item }));
  }

  /** The parked records that can be read, oldest first (`read` names the others). */
  async list(): Promise<ParkedRecord[]> {
    return (await this.read()).items;
  }

  /** The parked records, oldest first, and the items that cannot be read (by key: `record#<key>`, with why). */
  async read(): Promise<ParkedRead<ParkedRecord>> {
    const read: Parked<ParkedRecord>[] = [];
    for await (const item of partitionItems(this.client, this.table, T.parkedPartition)) {
      const sk = item[T.sortKey]?.S ?? '';
      if (!sk.startsWith(T.parkedRecordPrefix)) continue; // a parked send
      read.push(readParked<ParkedRecord>(sk, item.record?.S, RECORD_FIELDS, (r) => this.sortKey(r.key)));
    }
    return parkedRead(read, (a, b) => a.parkedAt.localeCompare(b.parkedAt));
  }

  async remove(key: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.table,
        Key: { [T.partitionKey]: { S: T.parkedPartition }, [T.sortKey]: { S: this.sortKey(key) } },
      }),
    );
  }
}

/**
 * A silence item read back; one that cannot be read names its patient from the attribute written with it (items
 * written before 2026-12-05 have none: only their JSON, which cannot be trusted, says).
 */
const readSilenceItem = (item: Item) => readSilence(item[T.sortKey]?.S ?? '', item.silence?.S ?? '', item.patientId?.S);
