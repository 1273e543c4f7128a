// Device bearer tokens: issued once, stored only as a SHA-256 hash with the device's scope, checked on every request.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DeviceToken, TokenStore } from '#ports';
import { LOCAL_PRINCIPAL, principalOf, type Principal, type TokenScope } from './scope.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new token for a device: the secret is returned once and only its hash (and the scope) is kept. */
export function issueToken(
  deviceId: string,
  now: Date,
  scope: TokenScope = {},
): { token: string; record: DeviceToken } {
  const tokenId = randomUUID();
  const token = `crs_${randomBytes(32).toString('base64url')}`;
  return { token, record: { tokenId, deviceId, hash: hashToken(token), createdAt: now.toISOString(), ...scope } };
}

/** What a device whose token is revoked is told (over HTTP, and over MLLP when the listener acts as the device). */
export const TOKEN_REVOKED = 'device token revoked';

/** CRS_INGEST_TOKEN: at least this long (a token issued by crs token is 47 characters). */
const LOCAL_TOKEN_MIN_LENGTH = 32;

/** Why a local token cannot be used, or undefined when it can. */
export function localTokenProblem(token: string): string | undefined {
  if (token.length < LOCAL_TOKEN_MIN_LENGTH)
    return `CRS_INGEST_TOKEN must be at least ${LOCAL_TOKEN_MIN_LENGTH} characters (it is ${token.length}); e.g. openssl rand -base64 32`;
  if (!/^[\x21-\x7e]+$/.test(token))
    return 'CRS_INGEST_TOKEN must be printable ASCII without spaces (it is sent as a bearer token)';
  return undefined;
}

/** Constant-time comparison of two secrets (of their digests, so that the lengths always match). */
export function secretMatches(expected: string, given: string): boolean {
  const d = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(d(expected), d(given));
}

export type AuthResult =
  | { ok: true; principal: Principal; deviceId: string }
  | { ok: false; status: 401 | 403; error: string };

/** Checks an Authorization header: 401 without a bearer token, 403 for an unknown or revoked one. */
export async function authenticate(
  header: string | undefined,
  tokens: TokenStore,
  localToken?: string,
): Promise<AuthResult> {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match)
    return { ok: false, status: 401, error: 'missing bearer token: send "Authorization: Bearer <device token>"' };
  const token = match[1]!;
  if (localToken && secretMatches(localToken, token))
    return { ok: true, principal: LOCAL_PRINCIPAL, deviceId: LOCAL_PRINCIPAL.deviceId };
  const record = await tokens.findByHash(hashToken(token));
  if (!record) return { ok: false, status: 403, error: 'unknown device token' };
  if (record.revokedAt) return { ok: false, status: 403, error: TOKEN_REVOKED };
  return { ok: true, principal: principalOf(record.deviceId, record), deviceId: record.deviceId };
}
