// The refusal of a replaced device token on DynamoDB (an emulator: its index, conditions and updates as they are),
// 2026-12-07 (a review): it read the direct link only, naming a replacement revoked since (whose `crs token rotate`
// failed: "no active token") or the revoked middle one of two rotations, where `crs token list` followed the chain.
// The chain is read by key (rotate stores the replacement's key beside its id), or for a link stored before that by
// the byTokenId index, never by a scan.
import { CreateTableCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate, hashToken } from '#app/auth.ts';
import { DynamoTokenStore } from '#adapters/aws/dynamo-token-store.ts';
import { TOKENS_TABLE } from '#adapters/aws/table-layout.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { runPrefix } from '#test/support/aws-serve.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';
import { chainRefusals, rotationChains } from '#test/support/token-link.ts';

let emulator: Emulator;
let client: DynamoDBClient;
const table = `${runPrefix('chain')}-tokens`;

beforeAll(async () => {
  emulator = await startEmulator();
  client = new DynamoDBClient({ endpoint: emulator.endpoint, region: process.env.AWS_REGION ?? 'us-east-1' });
  // The deployed layout (infra/stack.ts): keyed by hash, the byTokenId index keys only.
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TOKENS_TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: TOKENS_TABLE.tokenIdAttribute, AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: TOKENS_TABLE.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: TOKENS_TABLE.tokenIdIndex,
          KeySchema: [{ AttributeName: TOKENS_TABLE.tokenIdAttribute, KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    }),
  );
});
afterAll(async () => {
  client?.destroy();
  await emulator?.stop();
});

const run = async (argv: string[]) => {
  let out = '';
  let err = '';
  const code = await tokenCommand([...argv, '--backend', 'aws', '--table', table], {
    out: (t) => (out += t),
    err: (t) => (err += t),
    aws: async (name) => ({ tokens: new DynamoTokenStore(client, name), close: () => undefined }),
    env: {},
  });
  return { code, out, err };
};

describe('the refusal of a replaced token on DynamoDB', () => {
  it('names the first replacement of the chain still taken, or none; a link stored without the key too', async () => {
    const t = await rotationChains(run);
    const said = chainRefusals(t, ' --backend aws --outputs FILE');
    // A store each, as a new container: one holds what a refusal read for a minute (REFUSAL_MEMO_TTL_MS), and the
    // links stored without the key below would not be read again.
    const refusal = (token: string) =>
      authenticate(`Bearer ${token}`, new DynamoTokenStore(client, table), new Date(), undefined, 'aws');
    expect(await refusal(t.ended.a.token)).toEqual({ ok: false, status: 403, error: said.ended });
    expect(await refusal(t.twice.a.token)).toEqual({ ok: false, status: 403, error: said.twice });
    // Links written before the key was stored beside the id: found through the index.
    for (const { token } of [t.twice.a, t.twice.b])
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { [TOKENS_TABLE.partitionKey]: { S: hashToken(token) } },
          UpdateExpression: 'REMOVE replacedByHash',
        }),
      );
    expect(await new DynamoTokenStore(client, table).findByHash(hashToken(t.twice.a.token))).not.toHaveProperty(
      'replacedByHash',
    );
    expect(await refusal(t.twice.a.token)).toEqual({ ok: false, status: 403, error: said.twice });
    // The command the refusal names runs; the one the direct link named fails.
    expect((await run(['rotate', t.twice.c.tokenId, '--overlap', '0'])).code).toBe(0);
    expect((await run(['rotate', t.ended.b.tokenId])).err).toMatch(/no active token/);
  });
});
