// A table on the emulator keyed as the stack's are: a partition key and a sort key, both strings, on demand (the AWS
// integration tests and the Lambda soak bench make the tables they need beside the stack's).
import { CreateTableCommand, type CreateTableCommandInput, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

export const createKeyedTable = (
  dynamodb: DynamoDBClient,
  name: string,
  [pk, sk]: [string, string],
  extra: Pick<Partial<CreateTableCommandInput>, 'AttributeDefinitions' | 'GlobalSecondaryIndexes'> = {},
) =>
  dynamodb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: pk, AttributeType: 'S' },
        { AttributeName: sk, AttributeType: 'S' },
        ...(extra.AttributeDefinitions ?? []),
      ],
      KeySchema: [
        { AttributeName: pk, KeyType: 'HASH' },
        { AttributeName: sk, KeyType: 'RANGE' },
      ],
      ...(extra.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: extra.GlobalSecondaryIndexes } : {}),
    }),
  );
