// Device bearer tokens: issued once, stored only as a SHA-256 hash with the device's scope, checked on every request.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { inline, quoted } from '#domain/printable.ts';
import { instantMs } from '#domain/time.ts';
import type { DeviceToken, TokenStore } from '#ports';
import {
  isDeviceKind,
  LOCAL_PRINCIPAL,
  principalOf,
  crsTokenCommand,
  type Principal,
  type TokenBackend,
  type TokenScope,
} from './scope.ts';

export type { TokenBackend };

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The device the board's End and Resume monitoring are sent as (shared/app/monitoring.ts): the trail says the board
 * sent them, so no token may be issued with this id.
 */
export const BOARD_DEVICE_ID = 'board';

/** A new token for a device: the secret is returned once and only its hash (and the scope) is kept. */
export function issueToken(
  deviceId: string,
  now: Date,
  scope: TokenScope = {},
  expiresAt?: string,
): { token: string; record: DeviceToken } {
  const tokenId = randomUUID();
  const token = `crs_${randomBytes(32).toString('base64url')}`;
  const record = { tokenId, deviceId, hash: hashToken(token), createdAt: now.toISOString(), ...scope };
  return { token, record: expiresAt !== undefined ? { ...record, expiresAt } : record };
}

/**
 * What a device whose token is revoked is told (over HTTP, and over MLLP when the listener acts as the device), and one
 * whose token the server never issued: each says what to do, as an expired one's does (2026-12-06).
 */
export const TOKEN_REVOKED = (backend: TokenBackend = 'embedded') =>
  `device token revoked: issue the device a new one (${crsTokenCommand('issue', backend)}) and configure it with that`;
export const TOKEN_UNKNOWN = (backend: TokenBackend = 'embedded') =>
  `unknown device token: configure the device with a token this server issued (${crsTokenCommand('issue', backend)})`;

/** An instant as the server read it (UTC), or as stored, quoted, when it cannot be read (a hand edit). */
const instantSaid = (at: string) => new Date(instantMs(at) ?? Number.NaN).toJSON() ?? quoted(at);

/**
 * What the chain of rotations from a replaced token comes to (2026-12-07): the first replacement taken now (a
 * replacement rotated in turn names its own, replacedBy), 'none' when the chain ends in tokens revoked, expired or gone
 * (or loops: a hand edit), 'unknown' when it was not followed to its end (past the refusal's bound, or the store could
 * not be read).
 */
export type Replacement = { tokenId: string } | 'none' | 'unknown';

/**
 * How many links the refusal of a replaced token follows, each one read by key or id (TokenStore.findById): a refused
 * request stays a few reads (refusals are not rate-limited, only their log), and what they read is held a minute per
 * token (REFUSAL_MEMO_TTL_MS): a device that keeps sending it costs them once a minute. A chain longer (eight rotations
 * since the token a device still sends) is said as unknown, with `crs token list` to name the replacement.
 */
const REFUSAL_CHAIN_LINKS = 8;

/** A link of a chain of rotations to look up: the replacement's id, and its key where rotate stored it. */
interface ReplacementLink {
  tokenId: string;
  hash?: string;
}

/**
 * The chain walk, one rule for `crs token list` (which holds every token: replacementAmong) and the refusal (which
 * reads each link: replacementOf): yields each link to look up, is given the tokens stored under its id, and returns
 * the first taken now (not revoked, nothing stored with it that the server refuses), none, or unknown past `limit`.
 */
function* replacementChain(
  from: DeviceToken,
  now: Date,
  limit: number,
): Generator<ReplacementLink, Replacement, DeviceToken[]> {
  const linkOf = (t: DeviceToken | undefined): ReplacementLink | undefined =>
    t?.replacedBy === undefined
      ? undefined
      : { tokenId: t.replacedBy, ...(t.replacedByHash ? { hash: t.replacedByHash } : {}) };
  const seen = new Set([from.tokenId]);
  let link = linkOf(from);
  for (let links = 0; link !== undefined && !seen.has(link.tokenId); links++) {
    if (links >= limit) return 'unknown';
    seen.add(link.tokenId);
    const items = yield link;
    const live = items.find((t) => !t.revokedAt && tokenPrincipal(t, now).ok);
    if (live) return { tokenId: live.tokenId };
    link = linkOf(items.find((t) => t.replacedBy !== undefined));
  }
  return 'none';
}

/** Where the chain of rotations from `from` leads at `now`, among every token (`crs token list`, doctor). */
export function replacementAmong(tokens: readonly DeviceToken[], from: DeviceToken, now: Date): Replacement {
  const walk = replacementChain(from, now, Infinity);
  for (let step = walk.next([]); ; ) {
    if (step.done) return step.value;
    const id = step.value.tokenId;
    step = walk.next(tokens.filter((t) => t.tokenId === id));
  }
}

/**
 * Where the chain of rotations from `from` leads at `now`, each link read from the store by key or id
 * (REFUSAL_CHAIN_LINKS at most, never a scan); unknown when the store cannot be read (the token is refused all the same).
 */
export async function replacementOf(
  from: DeviceToken,
  tokens: Pick<TokenStore, 'findById'>,
  now: Date,
): Promise<Replacement> {
  const walk = replacementChain(from, now, REFUSAL_CHAIN_LINKS);
  try {
    for (let step = walk.next([]); ; ) {
      if (step.done) return step.value;
      step = walk.next(await tokens.findById(step.value.tokenId, step.value.hash));
    }
  } catch {
    return 'unknown';
  }
}

/** Refused as replaced (TOKEN_REPLACED): linked by a rotation, and ended (revoked, expired, its expiry unreadable). */
export const refusedAsReplaced = (record: DeviceToken, now: Date): boolean =>
  record.replacedBy !== undefined && (!!record.revokedAt || tokenExpired(record, now));

/**
 * What a device whose token was replaced by `crs token rotate` (DeviceToken.replacedBy) is told once that token is
 * refused, revoked or expired (its overlap over) alike (2026-12-07): by ids and dates only (never a secret), the
 * replacement to install as `crs token list` names it, the first of the chain of rotations taken now (`current`;
 * none: the link's own). Until 2026-12-07 it was told to issue a new one, which made a third token and left the
 * replacement unused; then, until a review the same day, it was told of the direct link only, even when that one was
 * revoked since (its `crs token rotate` then failing: "no active token") or rotated in turn.
 */
export const TOKEN_REPLACED = (
  link: Pick<DeviceToken, 'replacedBy' | 'replacedAt'>,
  backend: TokenBackend = 'embedded',
  current: Replacement = { tokenId: link.replacedBy ?? '' },
) => {
  const by = inline(link.replacedBy ?? '');
  const when = link.replacedAt !== undefined ? ` at ${instantSaid(link.replacedAt)}` : '';
  const replaced = `device token replaced${when} by token ${by} (crs token rotate)`;
  if (current === 'none')
    return `${replaced}, but no replacement is active any more (revoked or expired): issue the device a new one (${crsTokenCommand('issue', backend)}) and configure it with that`;
  if (current === 'unknown')
    return `${replaced}: install the replacement on the device; ${crsTokenCommand('list', backend)} names the one active now`;
  const now = inline(current.tokenId);
  const lost = `(if it was lost, rotate that one: ${crsTokenCommand(`rotate ${now}`, backend)})`;
  if (current.tokenId === link.replacedBy) return `${replaced}: install the replacement on the device ${lost}`;
  return `${replaced}, and that one replaced since: install token ${now} on the device, the replacement active now ${lost}`;
};

/**
 * A token's end as the server reads it: Infinity without expiresAt (it never expires), NaN for one that is no
 * instant (a hand edit in the DynamoDB console or the embedded column; instantMs), else its time in ms.
 */
export function expiryMs(record: Pick<DeviceToken, 'expiresAt'>): number {
  if (record.expiresAt === undefined) return Infinity;
  return instantMs(record.expiresAt) ?? Number.NaN;
}

/** Whether a token has an expiresAt that cannot be read (it is refused, saying so: TOKEN_EXPIRY_UNREADABLE). */
export const expiryUnreadable = (record: Pick<DeviceToken, 'expiresAt'>): boolean => Number.isNaN(expiryMs(record));

/** What a device whose token has expired is told, as a revoked one is (2026-12-06): the time as the server read it. */
export const TOKEN_EXPIRED = (at: string, backend: TokenBackend = 'embedded') =>
  `device token expired at ${instantSaid(at)}: issue the device a new one (${crsTokenCommand('rotate TOKEN_ID', backend)}, or ${crsTokenCommand('issue', backend)}) and configure it with that`;

/**
 * What a device whose token's expiry cannot be read is told (2026-12-06): refused, never taken as never expiring,
 * the value quoted (a hand edit can leave anything there). Its rotation needs --expires (the old life is unknown).
 */
export const TOKEN_EXPIRY_UNREADABLE = (at: string, backend: TokenBackend = 'embedded') =>
  `device token with an expiry that cannot be read (${quoted(at)}: an ISO 8601 instant with its zone is needed, such as 2027-03-01T08:00:00Z): issue the device a new one (${crsTokenCommand('rotate TOKEN_ID --expires WHEN', backend)}, or ${crsTokenCommand('issue', backend)}) and configure it with that`;

/**
 * Whether a token has expired at `now` (the server's clock): a token without expiresAt never does; one whose expiresAt
 * cannot be read has (fails closed: wherever expiry is asked it is not taken), and tokenPrincipal says which.
 */
export function tokenExpired(record: Pick<DeviceToken, 'expiresAt'>, now: Date): boolean {
  return !(expiryMs(record) > now.getTime());
}

const DURATION = /^(\d{1,5})([dhm])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;

/** A duration as `crs token` takes it (`90d`, `12h`, `30m`; `0` alone for none), in ms, or undefined. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/**
 * `--expires WHEN` read at `now`: a duration from now (`90d`, `12h`, `30m`) or an ISO date or instant with its zone,
 * which must be later than now. The instant as stored (ISO, UTC), or why WHEN cannot be taken.
 */
export function expiryOf(when: string, now: Date): { ok: true; at: string } | { ok: false; error: string } {
  const ms = parseDuration(when);
  // A date alone is 00:00 UTC; an instant is read as a stored expiry is (instantMs), so that what is written is read.
  const at =
    ms !== undefined ? now.getTime() + ms : instantMs(/^\d{4}-\d{2}-\d{2}$/.test(when) ? `${when}T00:00Z` : when);
  if (at === undefined)
    return {
      ok: false,
      error: `--expires takes a duration (90d, 12h, 30m) or an ISO date or instant with its zone (2027-03-01, 2027-03-01T08:00:00Z); got ${quoted(when)}`,
    };
  if (!(at > now.getTime()))
    return { ok: false, error: `--expires ${quoted(when)} is not in the future (now is ${now.toISOString()})` };
  return { ok: true, at: new Date(at).toISOString() };
}

/**
 * When a rotated token stops being taken: `overlapMs` after `now` (0: now, as a revocation), or its own expiry if that
 * comes first (a rotation never lengthens a token's life).
 */
export function rotatedExpiry(old: Pick<DeviceToken, 'expiresAt'>, now: Date, overlapMs: number): string {
  const end = new Date(now.getTime() + overlapMs);
  return old.expiresAt !== undefined && tokenExpired(old, end) ? old.expiresAt : end.toISOString();
}

/**
 * What `crs token scope` needs to mend a token: its whole scope, as it sets it (a kind alone drops the wards and
 * patients: the token would reach every patient), as the operator of `backend` runs it (2026-12-06).
 */
const rescope = (backend: TokenBackend) =>
  `${crsTokenCommand('scope TOKEN_ID --kind K', backend)} with its --ward W and --patient P (the whole scope)`;

/**
 * What a device whose token has a kind this version does not know is told (and `crs token list`): the kind as
 * stored, escaped (a hand edit can leave anything there).
 */
export const UNKNOWN_KIND = (kind: string, backend: TokenBackend = 'embedded') =>
  `device token of an unknown kind ${quoted(kind)}: give it a known kind with ${rescope(backend)}`;

/** A token whose stored scope cannot be read at all (not JSON). */
export const UNREADABLE_SCOPE_ALL = (backend: TokenBackend = 'embedded') =>
  `device token with a scope that cannot be read: set it again with ${crsTokenCommand('scope TOKEN_ID --kind K', backend)}`;

/** What a device whose token's wards or patients cannot be read is told. */
export const UNREADABLE_SCOPE = (field: string, backend: TokenBackend = 'embedded') =>
  `device token with ${field} that cannot be read: set them again with ${rescope(backend)}`;

/** CRS_INGEST_TOKEN: at least this long (a token issued by crs token is 47 characters). */
const LOCAL_TOKEN_MIN_LENGTH = 32;

/** Whether a token can be sent as `Authorization: Bearer <token>`: printable ASCII, no space, one line. */
export const isBearerToken = (token: string): boolean => /^[\x21-\x7e]+$/.test(token);

/** Why a local token cannot be used, or undefined when it can. */
export function localTokenProblem(token: string): string | undefined {
  if (token.length < LOCAL_TOKEN_MIN_LENGTH)
    return `CRS_INGEST_TOKEN must be at least ${LOCAL_TOKEN_MIN_LENGTH} characters (it is ${token.length}); e.g. openssl rand -base64 32`;
  if (!isBearerToken(token))
    return 'CRS_INGEST_TOKEN must be printable ASCII without spaces (it is sent as a bearer token)';
  return undefined;
}

/** Whether a listening host is this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.')) || h === '::ffff:127.0.0.1';
}

/**
 * Why CRS_INGEST_TOKEN (every right) cannot be taken on a listener at `host`, or undefined when it can: on loopback
 * only, unless the operator says otherwise (`--ingest-token-any-host`). The rule of both backends of `crs serve`.
 */
export function localTokenHostProblem(host: string, anyHost: boolean): string | undefined {
  if (anyHost || isLoopbackHost(host)) return undefined;
  return `CRS_INGEST_TOKEN is accepted only on a loopback listener (this one is ${host}): issue device tokens (crs token issue), or pass --ingest-token-any-host`;
}

/**
 * Why the test clock (CRS_TEST_CLOCK: `POST /local/clock` moves the server's clock, and takes no key) cannot be used
 * on a listener at `host`, or undefined when it can: on loopback only. Anyone who reached it could step the clock
 * that expires acknowledge links, escalates pages and refuses device data as too old or too far ahead.
 */
export function testClockHostProblem(host: string): string | undefined {
  if (isLoopbackHost(host)) return undefined;
  return `CRS_TEST_CLOCK (a test hook: POST /local/clock moves the server's clock, and takes no key) is accepted only on a loopback listener (this one is ${host}): unset it`;
}

/**
 * What `crs serve` says at start of an MLLP listener (plain MLLP carries no credentials) that anyone on the network may
 * reach and that sends as a monitor for every patient (no --mllp-device, no TLS), or undefined: on loopback (a local
 * bridge, a test), scoped to a device's token, or inside TLS with client certificates (each sender authenticated and
 * acting as its certificate's device). Said, not refused: MLLP from the monitors' gateway over the network is what the
 * listener is for; the network segment is then its protection.
 */
export function openMllpWarning(host: string, device: string | undefined, tls = false): string | undefined {
  if (tls || device !== undefined || isLoopbackHost(host)) return undefined;
  return "the MLLP listener takes HL7 v2 from anyone who reaches it on the network, as a monitor for every patient (MLLP has no credentials): authenticate each device with MLLP over TLS and client certificates (--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca; the certificate names the device), or keep it on the monitors' network segment and limit it to one device's token scope with --mllp-device ID (revoking the token then stops it)";
}

/**
 * What `crs serve` says at start when it listens in plain HTTP on an address others reach with no TLS proxy named (an
 * https `--public-url`, a `--trust-proxy`), or undefined. Device tokens, the board key and patient data would cross the
 * network in clear. Said, not refused: a network that is itself encrypted is the operator's to know of.
 */
export function plainHttpWarning(
  host: string,
  tls: { publicUrl?: string; trustProxy?: readonly string[] },
  // crs serve --backend aws has no board and no proxy flags: it stands in for API Gateway in tests.
  said = {
    carried: 'device tokens, the board key and patient data',
    remedy: 'put it behind a TLS reverse proxy (--public-url https://..., --trust-proxy ADDR)',
  },
): string | undefined {
  if (isLoopbackHost(host) || tls.publicUrl?.startsWith('https:') || (tls.trustProxy?.length ?? 0) > 0)
    return undefined;
  return `plain HTTP on a network address (--host ${host}): ${said.carried} would cross the network unencrypted; ${said.remedy}`;
}

/** Constant-time comparison of two secrets (of their digests, so that the lengths always match). */
export function secretMatches(expected: string, given: string): boolean {
  const d = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(d(expected), d(given));
}

export type AuthResult =
  | { ok: true; principal: Principal; deviceId: string }
  | { ok: false; status: 401 | 403 | 503; error: string };

/** What a sender is told when a store the request needs cannot be read: nothing was taken, send it again. */
export const UNAVAILABLE = 'a store this request needs is unavailable; nothing was accepted, send again later';
/** How long a sender told 503 waits before sending again. */
export const RETRY_LATER: Record<string, string> = { 'retry-after': '5' };
/**
 * How long a sender told 503 for a new patient past crs serve --max-patients waits: room comes when the operator
 * raises the ceiling or ends discharged patients' monitoring, minutes rather than seconds.
 */
export const ROOM_LATER: Record<string, string> = { 'retry-after': '60' };

/** The headers of a refused authentication: how to authenticate (401), when to send again (503). */
export function refusalHeaders(auth: { status: number }): Record<string, string> {
  if (auth.status === 401) return { 'www-authenticate': 'Bearer realm="crs-ingest"' };
  return auth.status === 503 ? RETRY_LATER : {};
}

/**
 * Checks an Authorization header at `now` (the server's clock): 401 without a bearer token, 403 for an unknown,
 * revoked or expired one, 503 when the token store cannot be read (a throttle, an outage: the sender sends again,
 * where a 403 would tell it to stop).
 */
export async function authenticate(
  header: string | undefined,
  tokens: TokenStore,
  now: Date,
  localToken?: string,
  backend: TokenBackend = 'embedded',
): Promise<AuthResult> {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match)
    return { ok: false, status: 401, error: 'missing bearer token: send "Authorization: Bearer <device token>"' };
  const token = match[1]!;
  if (localToken && secretMatches(localToken, token))
    return { ok: true, principal: LOCAL_PRINCIPAL, deviceId: LOCAL_PRINCIPAL.deviceId };
  const hash = hashToken(token);
  const memo = refusalMemo(tokens);
  // Refused as replaced within the minute: the records read then, no read (a replaced token ended stays refused).
  const held = memo.get(hash, now);
  if (held) return refusedReplaced(held, tokens, now, backend, memo);
  let record: DeviceToken | undefined;
  try {
    record = await tokens.findByHash(hash);
  } catch {
    return { ok: false, status: 503, error: UNAVAILABLE };
  }
  if (!record) return { ok: false, status: 403, error: TOKEN_UNKNOWN(backend) };
  if (!refusedAsReplaced(record, now)) return tokenPrincipal(record, now, backend);
  return refusedReplaced(
    { hash, at: now.getTime(), record: { ...record }, links: new Map() },
    tokens,
    now,
    backend,
    memo,
  );
}

/**
 * How long the refusal of a replaced token keeps the records it read (on the server's clock, `now`): a gateway that
 * keeps sending a token rotated and ended since, or anyone holding a leaked one, has its chain read once a minute per
 * token and process, not on every request (up to 1 + REFUSAL_CHAIN_LINKS store reads, each a DynamoDB read paid per
 * request on AWS). A change to the store (the replacement revoked or rotated, the old token rotated again, a hand
 * edit) is said within this long.
 */
export const REFUSAL_MEMO_TTL_MS = 60_000;
/** How many tokens' refusals are held at most (per token store: a Lambda container, a crs serve); the oldest go. */
export const REFUSAL_MEMO_SIZE = 1000;

/** The records the refusal of a replaced token read: the token's, and each link of its chain by id and key. */
interface HeldRefusal {
  hash: string;
  /** When they were first read (ms, the server's clock): the time-limit counts from here, never renewed by a use. */
  at: number;
  record: DeviceToken;
  links: Map<string, DeviceToken[]>;
}

/**
 * The refusals of replaced tokens held, by token hash, bounded in number and time (2026-12-07). What is held is what
 * was read, never an answer: the refusal is derived at each request's instant (a replacement whose expiry passes is
 * not said after it; the walk reads the links it had not reached). Held only for a token refused as replaced (linked
 * by a rotation and ended: revoked, or expired, which no command undoes), and only when its chain was read to its end:
 * never an unknown token (one just issued may not be readable yet), a store that could not be read (503, or a chain
 * said as unknown), a token taken, or one refused for another reason.
 */
class RefusalMemo {
  private readonly held = new Map<string, HeldRefusal>();

  /** What is held for `hash` at `now`: nothing past its time, or read at a later instant (a clock set back). */
  get(hash: string, now: Date): HeldRefusal | undefined {
    const entry = this.held.get(hash);
    const age = now.getTime() - (entry?.at ?? Number.NaN);
    if (age >= 0 && age < REFUSAL_MEMO_TTL_MS) return entry;
    this.held.delete(hash);
    return undefined;
  }

  set(entry: HeldRefusal): void {
    // Kept in the order first read (a use neither renews its time nor moves it): the oldest is the first key.
    if (this.held.get(entry.hash) === entry) return;
    this.held.delete(entry.hash);
    this.held.set(entry.hash, entry);
    for (const oldest of this.held.keys()) {
      if (this.held.size <= REFUSAL_MEMO_SIZE) break;
      this.held.delete(oldest);
    }
  }

  forget(hash: string): void {
    this.held.delete(hash);
  }
}

/** One memo per token store: a process holds one (a Lambda container, a crs serve), a test each of its own. */
const memos = new WeakMap<TokenStore, RefusalMemo>();
const refusalMemo = (tokens: TokenStore): RefusalMemo => {
  let memo = memos.get(tokens);
  if (!memo) memos.set(tokens, (memo = new RefusalMemo()));
  return memo;
};

/**
 * The refusal of a token refused as replaced, its chain read through what is held (a link not held yet is read and
 * kept), then held; forgotten when the chain could not be read to its end (unknown), so that the next request reads.
 */
async function refusedReplaced(
  entry: HeldRefusal,
  tokens: TokenStore,
  now: Date,
  backend: TokenBackend,
  memo: RefusalMemo,
): Promise<AuthResult> {
  const findById = async (tokenId: string, hash?: string) => {
    const key = `${tokenId}\n${hash ?? ''}`;
    const items = entry.links.get(key) ?? (await tokens.findById(tokenId, hash)).map((t) => ({ ...t }));
    entry.links.set(key, items);
    return items;
  };
  // Replaced: the chain of rotations is followed to the replacement taken now, as `crs token list` follows it.
  const replacement = await replacementOf(entry.record, { findById }, now);
  if (replacement === 'unknown') memo.forget(entry.hash);
  else memo.set(entry);
  return tokenPrincipal(entry.record, now, backend, replacement);
}

/**
 * Who a stored token is at `now`, or why it is refused (replaced; revoked; expired; a scope this version cannot read): for a
 * request's bearer token, and for the MLLP listener acting as a device (--mllp-device), which decides as that token
 * does over HTTP. `replacement`: where its chain of rotations leads (replacementOf, replacementAmong), for the refusal
 * of a replaced one; none: its own link is said.
 */
export function tokenPrincipal(
  record: DeviceToken,
  now: Date,
  backend: TokenBackend = 'embedded',
  replacement?: Replacement,
): AuthResult {
  // Ended (revoked, expired, its expiry unreadable) after a rotation: the replacement is the one to install.
  if (refusedAsReplaced(record, now))
    return { ok: false, status: 403, error: TOKEN_REPLACED(record, backend, replacement) };
  if (record.revokedAt) return { ok: false, status: 403, error: TOKEN_REVOKED(backend) };
  if (expiryUnreadable(record))
    return { ok: false, status: 403, error: TOKEN_EXPIRY_UNREADABLE(record.expiresAt!, backend) };
  if (tokenExpired(record, now)) return { ok: false, status: 403, error: TOKEN_EXPIRED(record.expiresAt!, backend) };
  // A scope that cannot be read at all: refused, never read as a token issued before scopes (every section, patient).
  if (record.scopeUnreadable) return { ok: false, status: 403, error: UNREADABLE_SCOPE_ALL(backend) };
  // A kind this code does not know (a newer version's, after a rollback; a hand-edited item) has no rights here:
  // refused, never read as a token issued before scopes, which may send every section.
  if (record.kind !== undefined && !isDeviceKind(record.kind))
    return { ok: false, status: 403, error: UNKNOWN_KIND(record.kind, backend) };
  // Wards or patients stored in a form this code does not read (a string set, a text) are refused the same way: read
  // as absent they were a token for every patient; a ward as text matched any part of it.
  for (const field of ['wards', 'patients'] as const) {
    const list: unknown = record[field];
    if (list !== undefined && !(Array.isArray(list) && list.every((x) => typeof x === 'string')))
      return { ok: false, status: 403, error: UNREADABLE_SCOPE(field, backend) };
  }
  return { ok: true, principal: principalOf(record.deviceId, record), deviceId: record.deviceId };
}
