// StateStore on DynamoDB: one item per patient, written with a condition on `version`, and the pages it caused
// written as outbox records in the same TransactWriteItems, so a page exists if and only if its state does.
import {
  GetItemCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type AttributeValue,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import type { Notification } from '../../domain/page.ts';
import { deserializeState, serializeState, type PatientState } from '../../domain/state.ts';
import { VersionConflict, type StateStore, type StoredState } from '../../ports.ts';
import { OUTBOX_RETENTION_DAYS, STATE_TABLE as T } from './table-layout.ts';

/** DynamoDB allows 100 items in one transaction: the state plus 99 pages (a batch of 10 makes at most 20). */
const MAX_OUTBOX_PER_SAVE = 99;

export class DynamoStateStore implements StateStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    /** Server time, ms (stamps the records and their expiry). */
    private readonly now: () => number = Date.now,
  ) {}

  async load(patientId: string): Promise<StoredState | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: patientId }, [T.sortKey]: { S: T.stateSortKey } },
        // A stale read would only cost a version conflict and a retry, but a consistent one avoids it.
        ConsistentRead: true,
        ProjectionExpression: '#state, #version',
        ExpressionAttributeNames: { '#state': 'state', '#version': 'version' },
      }),
    );
    const item = out.Item;
    if (!item) return undefined;
    const stateJson = item.state?.S;
    const version = Number(item.version?.N);
    if (stateJson === undefined || !Number.isInteger(version)) throw new Error(`patient ${patientId}: stored state item is malformed`);
    return { state: deserializeState(stateJson), version };
  }

  async save(patientId: string, state: PatientState, expectedVersion: number, outbox: Notification[]): Promise<void> {
    if (outbox.length > MAX_OUTBOX_PER_SAVE) throw new Error(`patient ${patientId}: ${outbox.length} pages exceed one transaction`);
    const nowMs = this.now();
    const stamp = new Date(nowMs).toISOString();
    const expiresAt = String(Math.floor(nowMs / 1000) + OUTBOX_RETENTION_DAYS * 86_400);
    const stateItem: Record<string, AttributeValue> = {
      [T.partitionKey]: { S: patientId },
      [T.sortKey]: { S: T.stateSortKey },
      [T.kindAttribute]: { S: T.stateKind },
      version: { N: String(expectedVersion + 1) },
      state: { S: serializeState(state) },
      updatedAt: { S: stamp },
    };
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.tableName,
          Item: stateItem,
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': T.partitionKey } }
            : {
                ConditionExpression: '#version = :expected',
                ExpressionAttributeNames: { '#version': 'version' },
                ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
              }),
        },
      },
      ...outbox.map(
        (n): TransactWriteItem => ({
          Put: {
            TableName: this.tableName,
            Item: {
              [T.partitionKey]: { S: patientId },
              [T.sortKey]: { S: `${T.outboxSortKeyPrefix}${n.notificationId}` },
              [T.kindAttribute]: { S: T.outboxKind },
              notificationId: { S: n.notificationId },
              notification: { S: JSON.stringify(n) },
              createdAt: { S: stamp },
              [T.ttlAttribute]: { N: expiresAt },
            },
          },
        }),
      ),
    ];
    try {
      await this.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
    } catch (err) {
      // The version moved on (another delivery won), or another transaction held the item: reload and retry.
      if (err instanceof TransactionCanceledException || (err as Error).name === 'TransactionCanceledException') {
        const codes = ((err as TransactionCanceledException).CancellationReasons ?? []).map((r) => r.Code);
        if (codes[0] === 'ConditionalCheckFailed' || codes.includes('TransactionConflict')) throw new VersionConflict(patientId);
      }
      throw err;
    }
  }
}

/**
 * The page in an outbox record, as the DynamoDB stream delivers it (NEW_IMAGE). Undefined for any other item
 * (patient state, a removal), so the notifier can ignore what its stream filter should already have dropped.
 */
export function outboxNotification(image: Record<string, { S?: string } | undefined> | undefined): Notification | undefined {
  if (!image || image[T.kindAttribute]?.S !== T.outboxKind) return undefined;
  const json = image.notification?.S;
  if (json === undefined) throw new Error('outbox record has no notification');
  const n = JSON.parse(json) as Notification;
  if (typeof n.notificationId !== 'string' || !Array.isArray(n.teams)) throw new Error('outbox record is not a notification');
  return n;
}
