// TransactWriteItems, sent again when DynamoDB cancelled it only because it was throttling (a ThrottlingError or
// ProvisionedThroughputExceeded reason, every other item None): nothing was written, and the SDK, which retries a
// throttled request, never retries a cancelled transaction. Without this, a throttled grade change waited for the
// queue's visibility timeout (90 s; dead-lettered after 3 times) and an acknowledgement answered 500.
import {
  TransactWriteItemsCommand,
  type DynamoDBClient,
  type TransactWriteItemsCommandInput,
  type TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';

/** Sends in all, the first included; the SDK's backoff for throttling between them (up to 0.5 s, then 1 s). */
const ATTEMPTS = 3;
const THROTTLED = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

function cancelledForThrottling(err: unknown): boolean {
  if ((err as Error)?.name !== 'TransactionCanceledException') return false;
  const codes = ((err as TransactionCanceledException).CancellationReasons ?? []).map((r) => r.Code ?? 'None');
  return codes.some((c) => THROTTLED.has(c)) && codes.every((c) => c === 'None' || THROTTLED.has(c));
}

export async function transactWrite(
  client: DynamoDBClient,
  input: TransactWriteItemsCommandInput,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.send(new TransactWriteItemsCommand(input));
      return;
    } catch (err) {
      if (attempt >= ATTEMPTS || !cancelledForThrottling(err)) throw err;
      await sleep(Math.random() * 500 * 2 ** (attempt - 1));
    }
  }
}
