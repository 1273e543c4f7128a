// BatchGetItem for as many keys as needed: 100 a request, the keys DynamoDB leaves unprocessed asked again with a
// backoff, a bounded number of times. While it throttles a table, DynamoDB answers a batch read with the keys it
// did not read (UnprocessedKeys) for as long as it throttles: a caller that asked again for ever held its invocation
// until the function's timeout (the grade function's whole batch, every patient's records with it, came back).
// BatchWriteItem the same way (25 a request, UnprocessedItems sent again, as often): `crs restore --backend aws`
// sent them again for ever until 2026-12-07, and a throttled table held the operator's restore with no word.
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type KeysAndAttributes,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';

type Item = Record<string, AttributeValue>;
type Sleep = (ms: number) => Promise<void>;

/** Requests for one batch, the first included: backoff 100, 200, 400, 800 ms, then 1 s (2.5 s in all). */
const BATCH_ROUNDS = 6;
/** Keys DynamoDB takes in one BatchGetItem, over all its tables. */
const KEYS_PER_REQUEST = 100;

/** DynamoDB kept leaving part of a batch unprocessed: the table is throttled. An outage (retried), never the data. */
class BatchThrottled extends Error {
  constructor(what: 'keys' | 'writes', tables: readonly string[], left: number) {
    super(`DynamoDB left ${left} ${what} of ${tables.join(', ')} unprocessed ${BATCH_ROUNDS} times (throttled)`);
    this.name = what === 'keys' ? 'BatchReadThrottled' : 'BatchWriteThrottled';
  }
}

const pause: Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `request`, then what each answer left unprocessed (`send` returns it), with a backoff, BATCH_ROUNDS requests
 * at most; throws BatchThrottled (naming the tables `left` says are left) when some are still left.
 */
async function untilProcessed<R>(
  what: 'keys' | 'writes',
  first: R,
  left: (request: R) => { count: number; tables: string[] },
  send: (request: R) => Promise<R>,
  sleep: Sleep,
): Promise<void> {
  let request = first;
  for (let round = 0; left(request).count > 0; round++) {
    if (round === BATCH_ROUNDS) throw new BatchThrottled(what, left(request).tables, left(request).count);
    if (round > 0) await sleep(Math.min(1000, 50 * 2 ** round));
    request = await send(request);
  }
}

/** Every item found under `keys` (in no particular order); throws BatchReadThrottled when some stay unread. */
export async function batchGet(
  client: DynamoDBClient,
  table: string,
  keys: readonly Item[],
  read: Omit<KeysAndAttributes, 'Keys'>,
  sleep: Sleep = pause,
): Promise<Item[]> {
  return (await batchGetTables(client, { [table]: { keys, read } }, sleep)).get(table) ?? [];
}

/**
 * batchGet over several tables at once: one request for up to 100 keys of them all (two tables read for the price of
 * one request). The items found, by table (a table with none found may be absent).
 */
export async function batchGetTables(
  client: DynamoDBClient,
  tables: Record<string, { keys: readonly Item[]; read: Omit<KeysAndAttributes, 'Keys'> }>,
  sleep: Sleep = pause,
): Promise<Map<string, Item[]>> {
  const found = new Map<string, Item[]>();
  const all = Object.entries(tables).flatMap(([table, t]) => t.keys.map((key) => ({ table, key })));
  for (let i = 0; i < all.length; i += KEYS_PER_REQUEST) {
    const first: Record<string, KeysAndAttributes> = {};
    for (const { table, key } of all.slice(i, i + KEYS_PER_REQUEST)) {
      first[table] ??= { ...tables[table]!.read, Keys: [] };
      first[table].Keys!.push(key);
    }
    await untilProcessed(
      'keys',
      first,
      (request) => ({
        count: Object.values(request).reduce((n, r) => n + (r.Keys?.length ?? 0), 0),
        tables: Object.keys(request),
      }),
      async (request) => {
        const out: BatchGetItemCommandOutput = await client.send(new BatchGetItemCommand({ RequestItems: request }));
        for (const [table, items] of Object.entries(out.Responses ?? {})) {
          if (!found.has(table)) found.set(table, []);
          found.get(table)!.push(...items);
        }
        const next: Record<string, KeysAndAttributes> = {};
        for (const [table, left] of Object.entries(out.UnprocessedKeys ?? {}))
          if ((left.Keys?.length ?? 0) > 0) next[table] = { ...tables[table]!.read, Keys: left.Keys };
        return next;
      },
      sleep,
    );
  }
  return found;
}

/** Makes every put and delete of `writes`, 25 a request; throws BatchWriteThrottled when some stay unmade. */
export async function batchWrite(
  client: DynamoDBClient,
  table: string,
  writes: readonly WriteRequest[],
  sleep: Sleep = pause,
): Promise<void> {
  for (let i = 0; i < writes.length; i += 25)
    await untilProcessed(
      'writes',
      writes.slice(i, i + 25),
      (request) => ({ count: request.length, tables: [table] }),
      async (request) => {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: request } }));
        return out.UnprocessedItems?.[table] ?? [];
      },
      sleep,
    );
}
