// TokenStore on DynamoDB: keyed by the token's SHA-256 hash, so checking a request is one consistent GetItem;
// the `byTokenId` index finds a token to revoke by its public id.
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  paginateScan,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { DeviceKind, TokenScope } from '#app/scope.ts';
import type { DeviceToken, TokenStore } from '#ports';
import { TOKENS_TABLE as T } from './table-layout.ts';

const isConditionFailure = (err: unknown) =>
  err instanceof ConditionalCheckFailedException || (err as Error).name === 'ConditionalCheckFailedException';

function fromItem(item: Record<string, AttributeValue>): DeviceToken {
  const token: DeviceToken = {
    tokenId: item.tokenId?.S ?? '',
    deviceId: item.deviceId?.S ?? '',
    hash: item[T.partitionKey]?.S ?? '',
    createdAt: item.createdAt?.S ?? '',
  };
  // Any revokedAt is a revocation, as revoke() and setScope() read it (attribute_not_exists): one stored otherwise than
  // as a text (a number, an empty text: a hand edit) was read as none until 2026-12-06, and the token was taken
  // while `crs token revoke` answered that it was revoked already.
  if (item.revokedAt) token.revokedAt = item.revokedAt.S || JSON.stringify(item.revokedAt);
  // As stored: one that is no time (a number, a hand edit) is refused as expired (tokenExpired), never read as none.
  if (item.expiresAt) token.expiresAt = item.expiresAt.S ?? JSON.stringify(item.expiresAt);
  // The link a rotation wrote (2026-12-07); an item written before has none. Said escaped (TOKEN_REPLACED).
  if (item.replacedBy) token.replacedBy = item.replacedBy.S ?? JSON.stringify(item.replacedBy);
  if (item.replacedAt) token.replacedAt = item.replacedAt.S ?? JSON.stringify(item.replacedAt);
  // The replacement's key (2026-12-07, later that day): a key only, used as one (a text), never said.
  if (item.replacedByHash?.S) token.replacedByHash = item.replacedByHash.S;
  // Kept as stored, known or not: authenticate() refuses a kind it does not know (never read as no kind). A kind
  // stored as no text (a string set, a number) or an empty one is such a kind: until 2026-12-06 it was read as none.
  if (item.kind) token.kind = (item.kind.S ?? JSON.stringify(item.kind)) as DeviceKind;
  // A list of texts, as scopeAttributes writes it; anything else (a string set, a number among them) is kept as
  // stored, and authenticate() refuses the token: read as no list, it was a token for every ward or patient.
  const list = (a: AttributeValue): string[] =>
    a.L?.every((v) => v.S !== undefined) ? a.L.map((v) => v.S!) : (a as unknown as string[]);
  if (item.wards && item.wards.L?.length !== 0) token.wards = list(item.wards);
  if (item.patients && item.patients.L?.length !== 0) token.patients = list(item.patients);
  return token;
}

/** A token's scope as item attributes (absent: no kind, every ward, every patient). */
function scopeAttributes(scope: TokenScope): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  if (scope.kind) out.kind = { S: scope.kind };
  if (scope.wards?.length) out.wards = { L: scope.wards.map((w) => ({ S: w })) };
  if (scope.patients?.length) out.patients = { L: scope.patients.map((p) => ({ S: p })) };
  return out;
}

export class DynamoTokenStore implements TokenStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async findByHash(hash: string): Promise<DeviceToken | undefined> {
    // Consistent, so that a revocation takes effect on the very next request.
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: { [T.partitionKey]: { S: hash } }, ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  async put(token: DeviceToken): Promise<void> {
    const item: Record<string, AttributeValue> = {
      [T.partitionKey]: { S: token.hash },
      tokenId: { S: token.tokenId },
      deviceId: { S: token.deviceId },
      createdAt: { S: token.createdAt },
      ...scopeAttributes(token),
    };
    if (token.revokedAt) item.revokedAt = { S: token.revokedAt };
    if (token.expiresAt) item.expiresAt = { S: token.expiresAt };
    if (token.replacedBy) item.replacedBy = { S: token.replacedBy };
    if (token.replacedAt) item.replacedAt = { S: token.replacedAt };
    if (token.replacedByHash) item.replacedByHash = { S: token.replacedByHash };
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: item,
        // Never overwrite a token (a revoked one would come back to life).
        ConditionExpression: 'attribute_not_exists(#hash)',
        ExpressionAttributeNames: { '#hash': T.partitionKey },
      }),
    );
  }

  /**
   * A token id's items, read consistently, never with a scan (the refusal of a replaced token follows its chain of
   * rotations with this): by `hash`, the key rotate stored beside the id, when that item still holds the id; else the
   * byTokenId index (keys only) gives the keys, each then read consistently. The index is eventually consistent: a
   * token issued a moment before may not be found (only a link written before the key was stored looks there).
   */
  async findById(tokenId: string, hash?: string): Promise<DeviceToken[]> {
    if (hash) {
      const byKey = await this.findByHash(hash);
      if (byKey?.tokenId === tokenId) return [byKey];
    }
    const items = await Promise.all((await this.indexedHashes(tokenId)).map((h) => this.findByHash(h)));
    return items.filter((t): t is DeviceToken => t?.tokenId === tokenId);
  }

  /** The hashes the byTokenId index holds for a token id (eventually consistent). */
  private async indexedHashes(tokenId: string): Promise<string[]> {
    const found = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: T.tokenIdIndex,
        KeyConditionExpression: '#id = :id',
        ExpressionAttributeNames: { '#id': T.tokenIdAttribute },
        ExpressionAttributeValues: { ':id': { S: tokenId } },
      }),
    );
    return (found.Items ?? []).flatMap((i) => (i[T.partitionKey]?.S ? [i[T.partitionKey]!.S!] : []));
  }

  /**
   * The hashes of a token id's items (one, unless an id was ever reused). The index is eventually consistent: a token
   * it does not show yet (issued a moment before: `crs token rotate` right after `issue`) is looked for with a
   * consistent scan, so that it is not taken for unknown and left active (until 2026-12-06). Only an operator's
   * command comes here, and only for an id the index does not show.
   */
  private async hashesOf(tokenId: string): Promise<string[]> {
    const hashes = await this.indexedHashes(tokenId);
    if (hashes.length > 0) return hashes;
    return (await this.list()).filter((t) => t.tokenId === tokenId && t.hash).map((t) => t.hash);
  }

  /** True when this call revoked the token; false for an unknown or already revoked one (its time is kept). */
  async revoke(tokenId: string, at: string): Promise<boolean> {
    return this.updateActive(tokenId, {
      UpdateExpression: 'SET revokedAt = :at',
      ExpressionAttributeValues: { ':at': { S: at } },
    });
  }

  /** Sets an active token's expiry (crs token rotate); false for an unknown or revoked one. */
  async expire(tokenId: string, at: string): Promise<boolean> {
    return this.updateActive(tokenId, {
      UpdateExpression: 'SET expiresAt = :at',
      ExpressionAttributeValues: { ':at': { S: at } },
    });
  }

  /**
   * Links a token to its replacement (crs token rotate), revoked or not, with the replacement's key beside its id
   * (replacedByHash; a link given none removes an earlier link's); false for an unknown one.
   */
  async markReplaced(tokenId: string, by: string, at: string, byHash?: string): Promise<boolean> {
    return this.updateActive(
      tokenId,
      {
        UpdateExpression: byHash
          ? 'SET replacedBy = :by, replacedAt = :at, replacedByHash = :key'
          : 'SET replacedBy = :by, replacedAt = :at REMOVE replacedByHash',
        ExpressionAttributeValues: { ':by': { S: by }, ':at': { S: at }, ...(byHash ? { ':key': { S: byHash } } : {}) },
      },
      'attribute_exists(#hash)',
    );
  }

  /** Replaces an active token's scope; false for an unknown or revoked one. */
  async setScope(tokenId: string, scope: TokenScope): Promise<boolean> {
    const attrs = scopeAttributes(scope);
    const names = ['kind', 'wards', 'patients'];
    const set = names.filter((n) => attrs[n]);
    const remove = names.filter((n) => !attrs[n]);
    const update = [
      set.length ? `SET ${set.map((n) => `#${n} = :${n}`).join(', ')}` : '',
      remove.length ? `REMOVE ${remove.map((n) => `#${n}`).join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return this.updateActive(tokenId, {
      UpdateExpression: update,
      ExpressionAttributeNames: Object.fromEntries(names.map((n) => [`#${n}`, n])),
      ...(set.length ? { ExpressionAttributeValues: Object.fromEntries(set.map((n) => [`:${n}`, attrs[n]!])) } : {}),
    });
  }

  /** Applies `update` to each item of the token that is still active (or meets `condition`); true when any was. */
  private async updateActive(
    tokenId: string,
    update: {
      UpdateExpression: string;
      ExpressionAttributeNames?: Record<string, string>;
      ExpressionAttributeValues?: Record<string, AttributeValue>;
    },
    condition = 'attribute_exists(#hash) AND attribute_not_exists(revokedAt)',
  ): Promise<boolean> {
    let changed = false;
    for (const hash of await this.hashesOf(tokenId)) {
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: { [T.partitionKey]: { S: hash } },
            ConditionExpression: condition,
            ...update,
            ExpressionAttributeNames: { '#hash': T.partitionKey, ...update.ExpressionAttributeNames },
          }),
        );
        changed = true;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    return changed;
  }

  /**
   * Every token, strongly consistent (`crs token rotate` finds its token here: an eventually consistent Scan could
   * miss one issued a moment before, or find one active after its revocation; until 2026-12-06).
   */
  async list(): Promise<DeviceToken[]> {
    const tokens: DeviceToken[] = [];
    const scan = { TableName: this.tableName, ConsistentRead: true };
    for await (const page of paginateScan({ client: this.client }, scan)) {
      for (const item of page.Items ?? []) tokens.push(fromItem(item));
    }
    return tokens.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.tokenId.localeCompare(b.tokenId));
  }
}
