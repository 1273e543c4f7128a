// Device bearer tokens issued by an operator, kept as SHA-256 hashes in the embedded database.
import type { DeviceToken, TokenStore } from '#ports';
import type { Db } from './db.ts';

interface Row {
  token_id: string;
  device_id: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

const toToken = (r: Row): DeviceToken => ({
  tokenId: r.token_id,
  deviceId: r.device_id,
  hash: r.hash,
  createdAt: r.created_at,
  ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
});

export class SqliteTokenStore implements TokenStore {
  constructor(private readonly db: Db) {}

  async findByHash(hash: string): Promise<DeviceToken | undefined> {
    const row = this.db.prepare('SELECT * FROM device_tokens WHERE hash = ?').get(hash) as Row | undefined;
    return row ? toToken(row) : undefined;
  }

  async put(token: DeviceToken): Promise<void> {
    this.db
      .prepare('INSERT INTO device_tokens (token_id, device_id, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)')
      .run(token.tokenId, token.deviceId, token.hash, token.createdAt, token.revokedAt ?? null);
  }

  async revoke(tokenId: string, at: string): Promise<boolean> {
    const r = this.db.prepare('UPDATE device_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL').run(at, tokenId);
    return r.changes === 1;
  }

  async list(): Promise<DeviceToken[]> {
    return (this.db.prepare('SELECT * FROM device_tokens ORDER BY created_at').all() as Row[]).map(toToken);
  }
}
