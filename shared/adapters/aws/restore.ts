// `crs restore --backend aws` (2026-12-07): the stack's State, SeenMessages and Pages tables made to hold what the
// tables DynamoDB restored (always new tables) hold, item for item, page by page (no table is held in memory), and
// each patient's sequence moved on by the restore's moment as the embedded restore does (movedOnByRestore: the ids
// of what the restored pipeline pages are none the lost one sent after the backup). The moment is kept in the state
// table (RESTORE_KEY), where the state store reads it for a patient it has no state of (firstState): a patient
// first seen after the backup may have been paged by the lost pipeline too. Each page is marked with the moment
// (Page.restoredAt), and so is each no-data alert the sweep raises since (stale-feed-sweep.ts): their sendIds are
// made of ids the resend gives again or of revisions the lost pipeline went on from, and every send of them carries
// the mark, as every send of a restored crs serve does (page-event.ts, restoredSendId).
import {
  type AttributeValue,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  paginateScan,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { changeSeq } from '#domain/page.ts';
import { isUnreadable, readPage } from '#domain/paging.ts';
import { movedOnByRestore } from '#domain/state.ts';
import { batchGet, batchWrite } from './batch-get.ts';
import { encodeStateItem, stateOfItem } from './state-item.ts';
import { PAGES_TABLE as P, STATE_TABLE as T } from './table-layout.ts';

type Item = Record<string, AttributeValue>;

/** The state table's item that records the last restore: kind "restore", restoredAt and takenAt (epoch ms). */
export const RESTORE_KEY = { [T.partitionKey]: { S: '#restore' }, [T.sortKey]: { S: 'restore' } } as const;

/** The partition key of the restore record: the one key of the State table the ack function may read (infra). */
export const RESTORE_PARTITION = RESTORE_KEY[T.partitionKey].S;

/** The last restore the state table records (undefined: none), read consistently. */
export async function readRestore(
  client: DynamoDBClient,
  stateTable: string,
): Promise<{ restoredAt: number; takenAt: number } | undefined> {
  const out = await client.send(new GetItemCommand({ TableName: stateTable, Key: RESTORE_KEY, ConsistentRead: true }));
  return restoreOf(out.Item);
}

/** The restore a RESTORE_KEY item records (undefined: no item, or not one); read by the state store in a batch too. */
export function restoreOf(item: Item | undefined): { restoredAt: number; takenAt: number } | undefined {
  const restoredAt = Number(item?.restoredAt?.N);
  const takenAt = Number(item?.takenAt?.N);
  return Number.isSafeInteger(restoredAt) && Number.isSafeInteger(takenAt) ? { restoredAt, takenAt } : undefined;
}

export interface CopyCount {
  /** Items of the restored table. */
  items: number;
  /** Of them, put into the stack's table (different there, or absent). */
  put: number;
  /** Items of the stack's table the restored one does not hold, deleted. */
  deleted: number;
  /** State items whose sequence was moved on (state table only). */
  movedOn: number;
  /** Pages marked with the restore (pages table only): every send of them carries it (Page.restoredAt). */
  marked: number;
  /** State items and pages that could not be read: copied as they are (the board and the tick name them). */
  unreadable: number;
  /** Items written again as new ones (`anew`: the outbox records never paged by the restored instant). */
  anew: number;
}

async function keyNames(client: DynamoDBClient, table: string): Promise<string[]> {
  const t = (await client.send(new DescribeTableCommand({ TableName: table }))).Table;
  return (t?.KeySchema ?? []).map((k) => k.AttributeName!);
}

const keyOf = (names: string[], item: Item): Item => Object.fromEntries(names.map((n) => [n, item[n]!]));
const keyText = (names: string[], item: Item) => JSON.stringify(names.map((n) => item[n]));

/** The items of `table` with these keys, consistently read (batchGet: unprocessed keys asked again), by key text. */
async function getBatch(
  client: DynamoDBClient,
  table: string,
  names: string[],
  keys: Item[],
): Promise<Map<string, Item>> {
  const items = await batchGet(client, table, keys, { ConsistentRead: true });
  return new Map(items.map((item) => [keyText(names, item), item]));
}

/** A state item with its patient's sequence moved on by `restoredAt`; undefined when it holds no readable state. */
function movedOn(item: Item, restoredAt: number): Item | undefined {
  let held: ReturnType<typeof stateOfItem>;
  try {
    held = stateOfItem(item);
  } catch {
    return undefined;
  }
  if (!held) return undefined;
  const patientId = item[T.partitionKey]!.S!;
  const { [T.legacyStateAttribute]: _legacy, ...rest } = item;
  const version = Number(item.version?.N ?? 0) + 1;
  return {
    ...rest,
    [T.stateAttribute]: { B: encodeStateItem(movedOnByRestore(held.state, patientId, restoredAt), held.pending) },
    version: { N: String(version) },
  };
}

const isStateItem = (item: Item) =>
  item[T.sortKey]?.S === T.stateSortKey && !(item[T.partitionKey]?.S ?? '#').startsWith('#');

/** The state table's record of the last restore: the copy leaves it be (recordRestore writes it before the copy). */
const isRestoreRecord = (item: Item) =>
  item[T.partitionKey]?.S === RESTORE_KEY[T.partitionKey].S && item[T.sortKey]?.S === RESTORE_KEY[T.sortKey].S;

const isPageItem = (item: Item) => (item[P.sortKey]?.S ?? '').startsWith(P.pageSortKeyPrefix) && 'page' in item;

/**
 * A page item marked with the restore (Page.restoredAt): the pages of the backup go on from their revision, level
 * and round as they went on in the lost deployment, which sent their next steps under sendIds made of those; marked,
 * none of their sends is one of those. Undefined when it holds no readable page.
 */
function marked(item: Item, restoredAt: number): Item | undefined {
  const json = item.page?.S ?? '';
  const pageId = (item[P.sortKey]?.S ?? '').slice(P.pageSortKeyPrefix.length);
  if (isUnreadable(readPage(pageId, json, Number(item.rev?.N ?? 0)))) return undefined;
  return { ...item, page: { S: JSON.stringify({ ...JSON.parse(json), restoredAt }) } };
}

/**
 * Makes `to` hold exactly the items of `from`: each page of `from` put where it differs (when `restoredAt` is given,
 * state items moved on and page items marked with it; those `anew` names written as new items), then each page of
 * `to` deleted where `from` holds no such key. Pages of at most 100 items; nothing else is held. The state table's
 * `#restore` record is neither put nor deleted: recordRestore wrote this restore's before the copy.
 */
export async function copyTable(
  client: DynamoDBClient,
  from: string,
  to: string,
  o: {
    restoredAt?: number;
    /**
     * Of a page of `from`'s items, those to be written as new items, and what to write (deleted from `to` first when
     * it holds them: a stream INSERT, whatever it held): unpagedRecords.
     */
    anew?: (items: Item[]) => Promise<Map<Item, Item>>;
  } = {},
): Promise<CopyCount> {
  const names = await keyNames(client, to);
  const fromNames = await keyNames(client, from);
  if (JSON.stringify(names) !== JSON.stringify(fromNames))
    throw new Error(
      `${from} is keyed by ${fromNames.join(', ')} and ${to} by ${names.join(', ')}: not a restore of it`,
    );
  const count: CopyCount = { items: 0, put: 0, deleted: 0, movedOn: 0, marked: 0, unreadable: 0, anew: 0 };
  for await (const page of paginateScan(
    { client, pageSize: 100 },
    { TableName: from, ConsistentRead: true, Limit: 100 },
  )) {
    const items = page.Items ?? [];
    count.items += items.length;
    if (items.length === 0) continue;
    const have = await getBatch(
      client,
      to,
      names,
      items.map((i) => keyOf(names, i)),
    );
    const anew = (await o.anew?.(items)) ?? new Map<Item, Item>();
    const puts: WriteRequest[] = [];
    const removed: WriteRequest[] = [];
    for (const item of items) {
      if (isRestoreRecord(item)) continue; // an earlier restore's, in a backup taken after it
      if (anew.has(item)) {
        if (have.has(keyText(names, item))) removed.push({ DeleteRequest: { Key: keyOf(names, item) } });
        continue;
      }
      let want = item;
      if (o.restoredAt !== undefined && isStateItem(item)) {
        const moved = movedOn(item, o.restoredAt);
        if (moved) {
          want = moved;
          count.movedOn++;
        } else count.unreadable++;
      } else if (o.restoredAt !== undefined && isPageItem(item)) {
        const mark = marked(item, o.restoredAt);
        if (mark) {
          want = mark;
          count.marked++;
        } else count.unreadable++;
      }
      if (want !== item || !sameItem(want, have.get(keyText(names, item)))) puts.push({ PutRequest: { Item: want } });
    }
    count.put += puts.length + anew.size;
    await batchWrite(client, to, puts);
    // Deleted, then put one by one (each an insert), a patient's in the order of their ids, as they were written.
    await batchWrite(client, to, removed);
    for (const item of [...anew.values()].sort(byChange)) {
      await client.send(new PutItemCommand({ TableName: to, Item: item }));
      count.anew++;
    }
  }
  for await (const page of paginateScan(
    { client, pageSize: 100 },
    {
      TableName: to,
      ConsistentRead: true,
      Limit: 100,
      ProjectionExpression: names.map((_, i) => `#k${i}`).join(', '),
      ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#k${i}`, n])),
    },
  )) {
    const keys = (page.Items ?? []).filter((i) => !isRestoreRecord(i)).map((i) => keyOf(names, i));
    if (keys.length === 0) continue;
    const want = await getBatch(client, from, names, keys);
    const deletes = keys
      .filter((k) => !want.has(keyText(names, k)))
      .map((k): WriteRequest => ({ DeleteRequest: { Key: k } }));
    count.deleted += deletes.length;
    await batchWrite(client, to, deletes);
  }
  return count;
}

/** A patient's items in the order of the change ids their sort keys end with (`outbox#crs|P1|#7`: 7). */
const byChange = (a: Item, b: Item) =>
  (a[T.partitionKey]?.S ?? '').localeCompare(b[T.partitionKey]?.S ?? '') ||
  (changeSeq(a[T.sortKey]?.S ?? '') ?? 0) - (changeSeq(b[T.sortKey]?.S ?? '') ?? 0);

/** Whether two items hold the same attributes (binary compared by bytes). */
function sameItem(a: Item, b: Item | undefined): boolean {
  if (!b) return false;
  const text = (i: Item) =>
    JSON.stringify(
      Object.keys(i)
        .sort()
        .map((k) => [k, i[k]]),
      (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v),
    );
  return text(a) === text(b);
}

/**
 * Records the restore in the state table, before the copy (2026-12-07; after it until then): a copy that fails part
 * way leaves the moment recorded, so that a patient first seen, or a no-data alert raised, before the run again
 * takes ids past the lost pipeline's. Ids moved on are harmless; a run again records its own moment.
 */
export async function recordRestore(
  client: DynamoDBClient,
  stateTable: string,
  r: { restoredAt: number; takenAt: number },
): Promise<void> {
  await client.send(
    new PutItemCommand({
      TableName: stateTable,
      Item: {
        ...RESTORE_KEY,
        [T.kindAttribute]: { S: 'restore' },
        restoredAt: { N: String(r.restoredAt) },
        takenAt: { N: String(r.takenAt) },
      },
    }),
  );
}
