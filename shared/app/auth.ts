// Device bearer tokens: issued once, stored only as a SHA-256 hash, checked on every request.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { DeviceToken, TokenStore } from '#ports';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new token for a device: the secret is returned once and only its hash is kept. */
export function issueToken(deviceId: string, now: Date): { token: string; record: DeviceToken } {
  const tokenId = randomUUID();
  const token = `crs_${randomBytes(32).toString('base64url')}`;
  return { token, record: { tokenId, deviceId, hash: hashToken(token), createdAt: now.toISOString() } };
}

export type AuthResult =
  | { ok: true; deviceId: string }
  | { ok: false; status: 401 | 403; error: string };

/** Checks an Authorization header: 401 without a bearer token, 403 for an unknown or revoked one. */
export async function authenticate(header: string | undefined, tokens: TokenStore, localToken?: string): Promise<AuthResult> {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match) return { ok: false, status: 401, error: 'missing bearer token: send "Authorization: Bearer <device token>"' };
  const token = match[1]!;
  if (localToken && token === localToken) return { ok: true, deviceId: 'local' };
  const record = await tokens.findByHash(hashToken(token));
  if (!record) return { ok: false, status: 403, error: 'unknown device token' };
  if (record.revokedAt) return { ok: false, status: 403, error: 'device token revoked' };
  return { ok: true, deviceId: record.deviceId };
}
