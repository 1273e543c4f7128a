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

/** DynamoDB kept leaving part of a batch unprocessed: the table is throttled. An outage (retried), never the data. */
class BatchThrottled extends Error {
  constructor(what: 'keys' | 'writes', table: string, left: number) {
    super(`DynamoDB left ${left} ${what} of ${table} unprocessed ${BATCH_ROUNDS} times (throttled)`);
    this.name = what === 'keys' ? 'BatchReadThrottled' : 'BatchWriteThrottled';
  }
}

const pause: Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `request`, then what each answer left unprocessed, with a backoff, BATCH_ROUNDS requests at most; throws
 * BatchThrottled (naming `table`) when some are still left.
 */
async function untilProcessed<R>(
  what: 'keys' | 'writes',
  table: string,
  first: R[],
  send: (request: R[]) => Promise<R[]>,
  sleep: Sleep,
): Promise<void> {
  let request = first;
  for (let round = 0; request.length > 0; round++) {
    if (round === BATCH_ROUNDS) throw new BatchThrottled(what, table, request.length);
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
  const items: Item[] = [];
  for (let i = 0; i < keys.length; i += 100)
    await untilProcessed(
      'keys',
      table,
      keys.slice(i, i + 100),
      async (request) => {
        const out: BatchGetItemCommandOutput = await client.send(
          new BatchGetItemCommand({ RequestItems: { [table]: { ...read, Keys: request } } }),
        );
        items.push(...(out.Responses?.[table] ?? []));
        return out.UnprocessedKeys?.[table]?.Keys ?? [];
      },
      sleep,
    );
  return items;
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
      table,
      writes.slice(i, i + 25),
      async (request) => {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: request } }));
        return out.UnprocessedItems?.[table] ?? [];
      },
      sleep,
    );
}
