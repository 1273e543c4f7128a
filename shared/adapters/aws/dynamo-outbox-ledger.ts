// OutboxLedger on DynamoDB: a delivery mark per notificationId, written with a condition so that it is set once.
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { OutboxLedger } from '../../ports.ts';
import { DELIVERIES_TABLE as T, OUTBOX_RETENTION_DAYS } from './table-layout.ts';

export class DynamoOutboxLedger implements OutboxLedger {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async isSent(notificationId: string): Promise<boolean> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { [T.partitionKey]: { S: notificationId } },
        ConsistentRead: true,
        ProjectionExpression: '#id',
        ExpressionAttributeNames: { '#id': T.partitionKey },
      }),
    );
    return out.Item !== undefined;
  }

  async markSent(notificationId: string, at: string): Promise<void> {
    const expiresAt = Math.floor(Date.parse(at) / 1000) + OUTBOX_RETENTION_DAYS * 86_400;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { [T.partitionKey]: { S: notificationId }, sentAt: { S: at }, [T.ttlAttribute]: { N: String(expiresAt) } },
          // The first mark wins and keeps its time; marking again is a no-op.
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': T.partitionKey },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException') return;
      throw err;
    }
  }
}
