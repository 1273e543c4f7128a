// `crs restore --backend aws` (2026-12-07): the outbox records of the restored State table that were never paged by
// the restore's instant T. A grade change (or low-SpO2 alert) committed just before T, whose pages the notifier
// opened just after it, is in the restored State table and has no page in the restored Pages table; the copy removes
// the pages the lost pipeline opened, and nothing pages it again: the gateways send again from T, after its message,
// and the stream had delivered its record before the notifier was paused (the runbook's step 2), so that the mapping
// resumes past it. The copy leaves an item the stack's table holds the same be, and a put that changes nothing makes
// no stream record: until 2026-12-07 such a grade change was never paged by the restored pipeline (no page, no
// ladder, nothing on the board). Each is written again as a new item (deleted first: a stream INSERT, which the
// notifier's filter takes) marked with the restore's moment, which the pages it opens and every send of them carry
// (outbox-delivery.ts): the lost pipeline may have sent them under the same ids. The notifier pages it when it
// resumes, once however often the copy ran (a record whose pages are stored opens none), with the deployed paging
// configuration. Read by key from the restored Pages table, 100 keys a request: nothing per message.
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PAGE_TEAMS, pageId } from '#domain/paging.ts';
import { batchGet } from './batch-get.ts';
import { outboxRecord } from './dynamo-state-store.ts';
import { PAGES_TABLE as P, STATE_TABLE as T } from './table-layout.ts';

type Item = Record<string, AttributeValue>;

const isOutboxItem = (item: Item) =>
  item[T.kindAttribute]?.S === T.outboxKind && (item[T.sortKey]?.S ?? '').startsWith(T.outboxSortKeyPrefix);

/**
 * The keys of the restored Pages table any of which says the record was paged, or set aside, by T: its pages (a
 * grade change's teams; any team for an alert, whose teams the deployed configuration says) and its parked record.
 * Undefined for a grade change of no team: it pages nobody.
 */
function pagedKeys(item: Item): Item[] | undefined {
  const patientId = item[T.partitionKey]!.S!;
  // A record parked (it could not be paged) is the operator's: `crs outbox list|retry` shows and pages it.
  const parked = {
    [P.partitionKey]: { S: P.parkedPartition },
    [P.sortKey]: { S: `${P.parkedRecordPrefix}${patientId}#${item[T.sortKey]!.S!}` },
  };
  let r: ReturnType<typeof outboxRecord>;
  try {
    r = outboxRecord(item as Parameters<typeof outboxRecord>[0]);
  } catch {
    return [parked]; // unreadable, so never paged: written again, the notifier parks it, and the operator is told
  }
  if (!r) return undefined;
  const [id, teams] =
    r.record === 'notification' ? [r.notification.notificationId, r.notification.teams] : [r.alert.alertId, PAGE_TEAMS];
  if (teams.length === 0) return undefined;
  return [
    parked,
    ...teams.map((team) => ({
      [P.partitionKey]: { S: patientId },
      [P.sortKey]: { S: `${P.pageSortKeyPrefix}${pageId(id, team)}` },
    })),
  ];
}

/**
 * Of a page of the restored State table's items, the outbox records no page of which the restored Pages table holds
 * (nor a parked record), each as it is to be written again: marked with `restoredAt`. A record past its time to live
 * is left out (the table's TTL drops it: a grade change over 30 days old).
 */
export function unpagedRecords(
  client: DynamoDBClient,
  restoredPages: string,
  restoredAt: number,
): (items: Item[]) => Promise<Map<Item, Item>> {
  const live = (item: Item) => !(Number(item[T.ttlAttribute]?.N ?? Number.POSITIVE_INFINITY) * 1000 <= restoredAt);
  return async (items) => {
    const records = items.flatMap((item) => {
      const keys = isOutboxItem(item) && live(item) ? pagedKeys(item) : undefined;
      return keys ? [{ item, keys }] : [];
    });
    const unpaged = new Map<Item, Item>();
    if (records.length === 0) return unpaged;
    const keyText = (k: Item) => `${k[P.partitionKey]!.S}\u0000${k[P.sortKey]!.S}`;
    const read = await batchGet(
      client,
      restoredPages,
      records.flatMap((r) => r.keys),
      {
        ConsistentRead: true,
        ProjectionExpression: '#pk, #sk',
        ExpressionAttributeNames: { '#pk': P.partitionKey, '#sk': P.sortKey },
      },
    );
    const found = new Set(read.map(keyText));
    for (const { item, keys } of records)
      if (!keys.some((k) => found.has(keyText(k))))
        unpaged.set(item, { ...item, [T.restoredAtAttribute]: { N: String(restoredAt) } });
    return unpaged;
  };
}
