// Signed, expiring acknowledge links: a page can be acknowledged from a phone without a login, and nobody can
// acknowledge a page they were not sent. HMAC-SHA256 over the page, the role it was sent to and the expiry.
//
// Pages carry short links: 22 characters, so that an SMS with its link is one part (SNS bills each part, and a
// phone may show two parts apart, the link cut in two). A short token names nothing: its claims are stored under
// linkKey(token) when the page is sent, and it is genuine only if it is the MAC of what is stored. Links signed
// before (v1: the claims in the token itself) are still taken until they expire.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AckResult } from '#domain/paging.ts';
import { unprintable } from '#domain/printable.ts';

export interface AckClaims {
  pageId: string;
  /** The role the page was sent to (e.g. "hematology fellow"), recorded with the acknowledgement. */
  role: string;
  expiresAt: number;
}

/**
 * An acknowledgement through a link, with the link's claims once it verified (the page it names, the role it was sent
 * to), whatever became of the page: the form answers with them without verifying the link a second time.
 */
export type LinkAckResult = AckResult & { claims?: AckClaims };

export type AckVerification =
  | { ok: true; claims: AckClaims }
  /** `claims`: an expired link's, which are genuine (it was issued here): its refusal goes in the patient's trail. */
  | { ok: false; reason: 'malformed' | 'forged' | 'expired'; claims?: AckClaims };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
/** Whether a base64url text is the one encoding of what it decodes to (no stray bits in its last character). */
const canonical = (s: string) => Buffer.from(s, 'base64url').toString('base64url') === s;
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

function mac(secret: Buffer, pageId: string, role: string, expiresAt: number): Buffer {
  return createHmac('sha256', secret).update(`v1\n${pageId}\n${role}\n${expiresAt}`).digest();
}

export function signAck(secret: Buffer, claims: AckClaims): string {
  const { pageId, role, expiresAt } = claims;
  return [
    'v1',
    b64(pageId),
    b64(role),
    expiresAt.toString(36),
    mac(secret, pageId, role, expiresAt).toString('base64url'),
  ].join('.');
}

/** Checks a token: refuses a malformed, altered or forged one, and one past its expiry. */
export function verifyAck(secret: Buffer, token: string, now: number): AckVerification {
  const parts = token.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') return { ok: false, reason: 'malformed' };
  const [, p, r, e, sig] = parts as [string, string, string, string, string];
  if (!/^[0-9a-z]{1,12}$/.test(e) || !/^[A-Za-z0-9_-]+$/.test(p + r + sig)) return { ok: false, reason: 'malformed' };
  // One spelling per token: base64url leaves unused bits in a last character (2 in the MAC's 43rd), so several
  // spellings decode to the same bytes (and invalid UTF-8 to the same text). Only what signAck writes is taken.
  if (
    b64(unb64(p)) !== p ||
    b64(unb64(r)) !== r ||
    !canonical(sig) ||
    sig.length !== 43 ||
    (e.length > 1 && e.startsWith('0'))
  )
    return { ok: false, reason: 'malformed' };
  const expiresAt = Number.parseInt(e, 36);
  const pageId = unb64(p);
  const role = unb64(r);
  const given = Buffer.from(sig, 'base64url');
  const expected = mac(secret, pageId, role, expiresAt);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'forged' };
  if (now >= expiresAt) return { ok: false, reason: 'expired', claims: { pageId, role, expiresAt } };
  return { ok: true, claims: { pageId, role, expiresAt } };
}

/** A short link's token: 16 bytes of MAC, base64url. */
const SHORT_TOKEN = /^[A-Za-z0-9_-]{22}$/;

const isShortAckToken = (token: string): boolean => SHORT_TOKEN.test(token);

/** The token of a short link: the first 128 bits of an HMAC-SHA256 over its claims (another text than v1's). */
export function shortAckToken(secret: Buffer, claims: AckClaims): string {
  const { pageId, role, expiresAt } = claims;
  return createHmac('sha256', secret)
    .update(`short\n${pageId}\n${role}\n${expiresAt}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}

/** Where a short link's claims are stored: the SHA-256 of its token, so that the store never holds a live link. */
export function ackLinkKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Checks a short token against the claims stored under its key (undefined: none, so it was never issued here). */
export function verifyShortAck(
  secret: Buffer,
  token: string,
  stored: AckClaims | undefined,
  now: number,
): AckVerification {
  if (!isShortAckToken(token) || !canonical(token)) return { ok: false, reason: 'malformed' };
  if (!stored) return { ok: false, reason: 'forged' };
  const given = Buffer.from(token, 'base64url');
  const expected = Buffer.from(shortAckToken(secret, stored), 'base64url');
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'forged' };
  if (now >= stored.expiresAt) return { ok: false, reason: 'expired', claims: stored };
  return { ok: true, claims: stored };
}

/**
 * The keys acknowledge links are checked against (2026-12-06): links are signed with `current`; `previous` is the
 * key before the last rotation, kept so that the links already sent work until they expire. None: never rotated, or
 * dropped by the operator (it leaked).
 */
export interface AckKeys {
  current: Buffer;
  previous?: Buffer | undefined;
}

/**
 * Checks a link's token (short or v1) under the current key, then under the previous one: only a token the current
 * key calls forged is tried again (malformed is malformed under any key; expired means the current key signed it).
 * `stored`: the claims a short token's page stored under its key, read only for a short token.
 */
export async function verifyAckLink(
  keys: AckKeys,
  token: string,
  now: number,
  stored: (linkKey: string) => Promise<AckClaims | undefined>,
): Promise<AckVerification> {
  const short = isShortAckToken(token);
  const claims = short ? await stored(ackLinkKey(token)) : undefined;
  const under = (secret: Buffer) =>
    short ? verifyShortAck(secret, token, claims, now) : verifyAck(secret, token, now);
  const v = under(keys.current);
  if (v.ok || v.reason !== 'forged' || keys.previous === undefined) return v;
  return under(keys.previous);
}

export const ACK_NAME_MAX = 80;
/** The most an acknowledgement request (link form or API body) may send, in bytes. */
export const ACK_BODY_LIMIT = 4096;

/** The name of the person acknowledging (or silencing), as typed: printable, trimmed, 1-80 characters. */
/** What a JSON value sent where text belongs is, in words ("a list", "a number"). */
export const kindOf = (value: unknown): string =>
  Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;

export function checkAckName(value: unknown): { ok: true; name: string } | { ok: false; error: string } {
  if (value === undefined || value === null)
    return { ok: false, error: 'by: is required (your name: the audit trail records who did it)' };
  // Sent, but not as text: say so (not "required", which sends the sender looking for a field they did send).
  if (typeof value !== 'string') return { ok: false, error: `by: must be text (your name), not ${kindOf(value)}` };
  const name = value.trim().replace(/\s+/g, ' ');
  if (name.length === 0) return { ok: false, error: 'by: is empty; type your name' };
  if (name.length > ACK_NAME_MAX) return { ok: false, error: `by: is longer than ${ACK_NAME_MAX} characters` };
  const problem = unprintable(name, 'name');
  if (problem) return { ok: false, error: `by: ${problem}` };
  return { ok: true, name };
}
