// Device bearer tokens issued by an operator, kept as SHA-256 hashes in the embedded database with each token's
// scope (kind, wards, patients as JSON; NULL for a token issued before scopes).
import type { TokenScope } from '#app/scope.ts';
import type { DeviceToken, TokenStore } from '#ports';
import type { Db } from './db.ts';

interface Row {
  token_id: string;
  device_id: string;
  hash: string;
  created_at: string;
  /** A text as the store writes it; a hand edit can leave a number. */
  revoked_at: string | number | null;
  scope: string | null;
  /** Since schema version 10 (2026-12-06); NULL: never expires. A hand edit can leave a number. */
  expires_at: string | number | null;
  /** Added 2026-12-07 (ensureTokenScopes): the token that replaced it (crs token rotate), and when; NULL: none. */
  replaced_by?: string | number | null;
  replaced_at?: string | number | null;
}

/**
 * The scope column, added in place to a database of any schema version (an added nullable column: older tokens read
 * as having no kind, which is what they are). Outside the numbered migrations so that it composes with them. So are
 * the columns of a rotation's link (2026-12-07; replaced_by, replaced_at): older tokens read as never replaced, and a
 * server of an earlier crs beside them reads none (its devices are told to issue a new token, as before).
 */
export function ensureTokenScopes(db: Db): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('device_tokens')").pluck().all() as string[];
  if (columns.length === 0) return;
  for (const column of ['scope', 'replaced_by', 'replaced_at'])
    if (!columns.includes(column)) db.exec(`ALTER TABLE device_tokens ADD COLUMN ${column} TEXT`);
}

const scopeJson = (t: TokenScope): string | null => {
  const s: TokenScope = {
    ...(t.kind ? { kind: t.kind } : {}),
    ...(t.wards?.length ? { wards: t.wards } : {}),
    ...(t.patients?.length ? { patients: t.patients } : {}),
  };
  return Object.keys(s).length > 0 ? JSON.stringify(s) : null;
};

/**
 * The scope column read back, or that it cannot be (not JSON, not an object: a row edited by hand): the token is then
 * refused (tokenPrincipal), and listed as refused. Until 2026-12-05 it failed `crs token list` and that device's
 * every request (a 500).
 */
function scopeOf(json: string | null): TokenScope | { scopeUnreadable: true } {
  if (!json) return {};
  try {
    const v = JSON.parse(json) as unknown;
    // Its kind, wards and patients only, as stored (tokenPrincipal judges them): until 2026-12-06 the whole object was
    // spread over the token, and a hand-edited "revokedAt":null undid a revocation, a "deviceId" sent as another device.
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const { kind, wards, patients } = v as Record<string, unknown>;
      return {
        ...(kind !== undefined ? { kind } : {}),
        ...(wards !== undefined ? { wards } : {}),
        ...(patients !== undefined ? { patients } : {}),
      } as TokenScope;
    }
  } catch {
    // not JSON
  }
  return { scopeUnreadable: true };
}

const toToken = (r: Row): DeviceToken => ({
  tokenId: r.token_id,
  deviceId: r.device_id,
  hash: r.hash,
  createdAt: r.created_at,
  // Any revocation time is a revocation, as revoke(), setScope() and unrevokedOfDevice() read it (revoked_at IS NULL):
  // an empty text or a number (a row edited by hand) was read as none until 2026-12-06, the token taken over HTTP.
  ...(r.revoked_at !== null ? { revokedAt: String(r.revoked_at) || '(empty)' } : {}),
  ...scopeOf(r.scope),
  // Read as stored: one the server cannot read as a time is refused as expired (tokenExpired).
  ...(r.expires_at !== null ? { expiresAt: String(r.expires_at) } : {}),
  ...(r.replaced_by != null ? { replacedBy: String(r.replaced_by) } : {}),
  ...(r.replaced_at != null ? { replacedAt: String(r.replaced_at) } : {}),
});

export class SqliteTokenStore implements TokenStore {
  /**
   * Every device request looks its token up: one statement, prepared once (a statement prepared per request held
   * native memory until the garbage collector ran: about 90 MiB of RSS over 50,000 lookups).
   */
  private byHash?: ReturnType<Db['prepare']>;
  /** The refusal of a replaced token reads each link of its chain of rotations by id: prepared once too. */
  private byId?: ReturnType<Db['prepare']>;

  constructor(private readonly db: Db) {}

  async findByHash(hash: string): Promise<DeviceToken | undefined> {
    this.byHash ??= this.db.prepare('SELECT * FROM device_tokens WHERE hash = ?');
    const row = this.byHash.get(hash) as Row | undefined;
    return row ? toToken(row) : undefined;
  }

  /** The row of a token id (its primary key: one indexed read; the hash a rotation knew is not needed here). */
  async findById(tokenId: string): Promise<DeviceToken[]> {
    this.byId ??= this.db.prepare('SELECT * FROM device_tokens WHERE token_id = ?');
    return (this.byId.all(tokenId) as Row[]).map(toToken);
  }

  async put(token: DeviceToken): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO device_tokens (token_id, device_id, hash, created_at, revoked_at, scope, expires_at, replaced_by, replaced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        token.tokenId,
        token.deviceId,
        token.hash,
        token.createdAt,
        token.revokedAt ?? null,
        scopeJson(token),
        token.expiresAt ?? null,
        token.replacedBy ?? null,
        token.replacedAt ?? null,
      );
  }

  async revoke(tokenId: string, at: string): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE device_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL')
      .run(at, tokenId);
    return r.changes === 1;
  }

  async setScope(tokenId: string, scope: TokenScope): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE device_tokens SET scope = ? WHERE token_id = ? AND revoked_at IS NULL')
      .run(scopeJson(scope), tokenId);
    return r.changes === 1;
  }

  async expire(tokenId: string, at: string): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE device_tokens SET expires_at = ? WHERE token_id = ? AND revoked_at IS NULL')
      .run(at, tokenId);
    return r.changes === 1;
  }

  async markReplaced(tokenId: string, by: string, at: string): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE device_tokens SET replaced_by = ?, replaced_at = ? WHERE token_id = ?')
      .run(by, at, tokenId);
    return r.changes > 0;
  }

  async list(): Promise<DeviceToken[]> {
    return (this.db.prepare('SELECT * FROM device_tokens ORDER BY created_at').all() as Row[]).map(toToken);
  }

  /**
   * The tokens of a device not revoked, newest first (the MLLP listener's --mllp-device): expired or not, which the
   * listener decides (tokenPrincipal) at its clock.
   */
  async unrevokedOfDevice(deviceId: string): Promise<DeviceToken[]> {
    const rows = this.db
      .prepare('SELECT * FROM device_tokens WHERE device_id = ? AND revoked_at IS NULL ORDER BY created_at DESC')
      .all(deviceId) as Row[];
    return rows.map(toToken);
  }
}
