// BatchGetItem for as many keys as needed: 100 a request, the keys DynamoDB leaves unprocessed asked again with a
// backoff, a bounded number of times. While it throttles a table, DynamoDB answers a batch read with the keys it
// did not read (UnprocessedKeys) for as long as it throttles: a caller that asked again for ever held its invocation
// until the function's timeout (the grade function's whole batch, every patient's records with it, came back).
import {
  BatchGetItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type KeysAndAttributes,
} from '@aws-sdk/client-dynamodb';

type Item = Record<string, AttributeValue>;

/** Requests for one batch of keys, the first included: backoff 100, 200, 400, 800 ms, then 1 s (2.5 s in all). */
const BATCH_GET_ROUNDS = 6;

/** DynamoDB kept leaving keys unprocessed: the table is throttled. An outage (retried), never the caller's data. */
class BatchReadThrottled extends Error {
  constructor(table: string, left: number) {
    super(`DynamoDB left ${left} keys of ${table} unprocessed ${BATCH_GET_ROUNDS} times (throttled)`);
    this.name = 'BatchReadThrottled';
  }
}

/** Every item found under `keys` (in no particular order); throws BatchReadThrottled when some stay unread. */
export async function batchGet(
  client: DynamoDBClient,
  table: string,
  keys: readonly Item[],
  read: Omit<KeysAndAttributes, 'Keys'>,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<Item[]> {
  const items: Item[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    let request: Item[] = keys.slice(i, i + 100);
    for (let round = 0; request.length > 0; round++) {
      if (round === BATCH_GET_ROUNDS) throw new BatchReadThrottled(table, request.length);
      if (round > 0) await sleep(Math.min(1000, 50 * 2 ** round));
      const out: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({ RequestItems: { [table]: { ...read, Keys: request } } }),
      );
      items.push(...(out.Responses?.[table] ?? []));
      request = out.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  }
  return items;
}
