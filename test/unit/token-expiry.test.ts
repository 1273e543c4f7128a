// Device tokens that expire, and their rotation (2026-12-06): the rule (shared/app/auth.ts), `crs token issue --expires`,
// `rotate` and `list`, and an embedded data directory of version 9 (no expiry column) opening with its tokens working.
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  authenticate,
  expiryOf,
  issueToken,
  rotatedExpiry,
  expiryUnreadable,
  TOKEN_EXPIRED,
  TOKEN_EXPIRY_UNREADABLE,
  TOKEN_REVOKED,
  tokenExpired,
  tokenPrincipal,
} from '#app/auth.ts';
import { DB_FILE, openDataDir } from '#adapters/sqlite/db.ts';
import { instantMs } from '#domain/time.ts';
import { SqliteTokenStore } from '#adapters/sqlite/tokens.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { expiryFindings } from '#app/token-expiry.ts';
import { MemoryTokenStore } from '#test/support/port-fakes.ts';
import type { DeviceToken } from '#ports';

const NOW = new Date('2026-12-06T10:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const H = 3_600_000;
const D = 24 * H;

describe('the expiry rule', () => {
  it('expires a token at its expiresAt, never one without, and one whose expiresAt is no time', () => {
    const expiresAt = at(H).toISOString();
    expect(tokenExpired({}, at(100 * 365 * D))).toBe(false);
    expect(tokenExpired({ expiresAt }, at(H - 1))).toBe(false);
    expect(tokenExpired({ expiresAt }, at(H))).toBe(true);
    expect(tokenExpired({ expiresAt: 'soon' }, NOW)).toBe(true);
  });

  it('refuses an expired token 403 saying when and what to do; revoked is said first', () => {
    const { record } = issueToken('gw-1', NOW, { kind: 'monitor' }, at(H).toISOString());
    expect(tokenPrincipal(record, at(H - 1)).ok).toBe(true);
    expect(tokenPrincipal(record, at(H))).toEqual({
      ok: false,
      status: 403,
      error:
        'device token expired at 2026-12-06T11:00:00.000Z: issue the device a new one (crs token rotate TOKEN_ID, or crs token issue) and configure it with that',
    });
    expect(tokenPrincipal({ ...record, revokedAt: NOW.toISOString() }, at(H))).toMatchObject({
      error: TOKEN_REVOKED(),
    });
    expect(TOKEN_EXPIRED('x\n')).toContain('"x\\n"');
  });

  // Until 2026-12-06 an unknown or a revoked token was refused in three words, "unknown device token", "device token
  // revoked", where an expired one said what to do: an integrator reading the 403 was left to guess.
  it('tells a device refused for an unknown or a revoked token what to do, as an expired one', async () => {
    const store = new MemoryTokenStore();
    const { token, record } = issueToken('gw-1', NOW, { kind: 'monitor' });
    await store.put({ ...record, revokedAt: NOW.toISOString() });
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toEqual({
      ok: false,
      status: 403,
      error: 'device token revoked: issue the device a new one (crs token issue) and configure it with that',
    });
    expect(await authenticate('Bearer crs_nope', store, NOW)).toEqual({
      ok: false,
      status: 403,
      error: 'unknown device token: configure the device with a token this server issued (crs token issue)',
    });
  });

  // Until 2026-12-06 a hand-edited expiry was read with JavaScript's loose date parsing: a date alone as midnight UTC,
  // a time without a zone as the server's local time, "Jan 2 2027" as whatever the engine guessed. Only an ISO 8601
  // instant with its zone is read now; anything else is refused as unreadable, never taken as never expiring.
  it('reads a stored expiry strictly (an ISO 8601 instant with its zone) and refuses one it cannot read, saying so', () => {
    const { record } = issueToken('gw-1', NOW, { kind: 'monitor' });
    for (const expiresAt of [
      '2027-01-02',
      'Jan 2 2027',
      '2027-01-02T00:00:00',
      '2027-01-02 00:00:00Z',
      '2027-01-02T00:00:00+0100',
      '2027-01-02t00:00:00z',
      '+002027-01-02T00:00:00Z',
      '2027-02-30T00:00:00Z',
      '2027-01-02T24:00:00Z',
      '2027-01-02T00:60:00Z',
      '2027-01-02T00:00:60Z',
      '2027-01-02T00:00:00+24:00',
      '1798761600',
      '',
      'soon',
    ]) {
      const refused = tokenPrincipal({ ...record, expiresAt }, NOW);
      expect(refused, expiresAt).toEqual({ ok: false, status: 403, error: TOKEN_EXPIRY_UNREADABLE(expiresAt) });
      expect(expiryUnreadable({ expiresAt }), expiresAt).toBe(true);
      expect(tokenExpired({ expiresAt }, NOW), expiresAt).toBe(true); // fails closed wherever expiry is asked
    }
    expect(TOKEN_EXPIRY_UNREADABLE('Jan 2 2027')).toBe(
      'device token with an expiry that cannot be read ("Jan 2 2027": an ISO 8601 instant with its zone is needed, such as 2027-03-01T08:00:00Z): issue the device a new one (crs token rotate TOKEN_ID --expires WHEN, or crs token issue) and configure it with that',
    );
    for (const [expiresAt, instant] of [
      ['2027-01-02T00:00:00.000Z', '2027-01-02T00:00:00.000Z'],
      ['2027-01-02T00:00Z', '2027-01-02T00:00:00.000Z'],
      ['2027-01-02T01:30:00+01:30', '2027-01-02T00:00:00.000Z'],
      ['2027-01-01T23:00:00.5-01:00', '2027-01-02T00:00:00.500Z'],
      ['2027-01-02T00:00:00.123456Z', '2027-01-02T00:00:00.123Z'],
      ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ] as const) {
      expect(tokenPrincipal({ ...record, expiresAt }, NOW).ok, expiresAt).toBe(true);
      expect(tokenPrincipal({ ...record, expiresAt }, new Date(instant))).toEqual({
        ok: false,
        status: 403,
        error: TOKEN_EXPIRED(expiresAt),
      });
      expect(TOKEN_EXPIRED(expiresAt)).toContain(`expired at ${instant}:`);
    }
  });

  it('authenticates at the clock it is given', async () => {
    const tokens = new MemoryTokenStore();
    const { token, record } = issueToken('gw-1', NOW, {}, at(D).toISOString());
    await tokens.put(record);
    expect((await authenticate(`Bearer ${token}`, tokens, at(D - 1))).ok).toBe(true);
    expect(await authenticate(`Bearer ${token}`, tokens, at(D))).toMatchObject({ ok: false, status: 403 });
  });

  it('reads --expires as a duration or an ISO date or instant with its zone, in the future only', () => {
    expect(expiryOf('90d', NOW)).toEqual({ ok: true, at: at(90 * D).toISOString() });
    expect(expiryOf('12h', NOW)).toEqual({ ok: true, at: at(12 * H).toISOString() });
    expect(expiryOf('2027-03-01', NOW)).toEqual({ ok: true, at: '2027-03-01T00:00:00.000Z' });
    expect(expiryOf('2027-03-01T08:00:00+01:00', NOW)).toEqual({ ok: true, at: '2027-03-01T07:00:00.000Z' });
    for (const bad of [
      '90',
      '1w',
      '2027-03-01T08:00:00',
      'tomorrow',
      '2027-02-30',
      '2027-13-01',
      '2027-03-01T25:00Z',
      '',
    ])
      expect(expiryOf(bad, NOW), bad).toMatchObject({ ok: false, error: expect.stringMatching(/^--expires takes/) });
    for (const past of ['0d', '2026-12-06', NOW.toISOString()])
      expect(expiryOf(past, NOW), past).toMatchObject({
        ok: false,
        error: expect.stringContaining('not in the future'),
      });
  });

  it('ends a rotated token after the overlap, never later than it would have', () => {
    expect(rotatedExpiry({}, NOW, D)).toBe(at(D).toISOString());
    expect(rotatedExpiry({ expiresAt: at(H).toISOString() }, NOW, D)).toBe(at(H).toISOString());
    expect(rotatedExpiry({ expiresAt: at(2 * D).toISOString() }, NOW, D)).toBe(at(D).toISOString());
  });
});

describe('crs token issue --expires, rotate, list', () => {
  let store: MemoryTokenStore;
  let out: string;
  let err: string;
  let clock: Date;
  const run = async (...argv: string[]) => {
    out = '';
    err = '';
    const code = await tokenCommand([...argv, '--backend', 'aws'], {
      out: (t) => {
        out += t;
      },
      err: (t) => {
        err += t;
      },
      now: () => clock,
      aws: async () => ({ tokens: store, close: () => undefined }),
      env: { CRS_TOKENS_TABLE: 'tokens' },
    });
    return code;
  };
  beforeEach(() => {
    store = new MemoryTokenStore();
    clock = NOW;
  });

  it('issues a token that expires, printed with its expiry (text and JSON); none by default', async () => {
    expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '90d')).toBe(0);
    expect(out).toContain(`expires:  ${at(90 * D).toISOString()}\n`);
    expect(store.tokens[0]!.expiresAt).toBe(at(90 * D).toISOString());
    expect(await run('issue', '--device', 'gw-2', '--kind', 'monitor', '--json')).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ deviceId: 'gw-2', expiresAt: null });
    expect(store.tokens[1]).not.toHaveProperty('expiresAt');
  });

  it('refuses a --expires it cannot read, or one past, naming the flag (exit 2, nothing stored)', async () => {
    expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '3 months')).toBe(2);
    expect(err).toMatch(/^crs token: --expires takes a duration \(90d, 12h, 30m\) or an ISO date .* got "3 months"\n/);
    expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '2020-01-01')).toBe(2);
    expect(err).toContain('--expires "2020-01-01" is not in the future (now is 2026-12-06T10:00:00.000Z)');
    expect(await run('revoke', 'x', '--expires', '1d')).toBe(2);
    expect(err).toContain('--expires is for issue and rotate');
    expect(store.tokens).toEqual([]);
  });

  it('rotates: a new token of the same device and scope, the old one taken for the overlap (24h by default)', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--ward', 'H4', '--json');
    const old = JSON.parse(out) as { tokenId: string; token: string };
    clock = at(H);
    expect(await run('rotate', old.tokenId, '--expires', '30d', '--json')).toBe(0);
    const rotated = JSON.parse(out) as Record<string, unknown>;
    expect(rotated).toMatchObject({
      deviceId: 'gw-1',
      kind: 'monitor',
      wards: ['H4'],
      expiresAt: at(H + 30 * D).toISOString(),
      replaces: { tokenId: old.tokenId, expiresAt: at(H + D).toISOString() },
    });
    expect(rotated.token).toMatch(/^crs_/);
    expect(rotated.token).not.toBe(old.token);
    const tokens = new Map(store.tokens.map((t) => [t.tokenId, t]));
    expect(tokens.get(old.tokenId)?.expiresAt).toBe(at(H + D).toISOString());
    expect(await authenticate(`Bearer ${old.token}`, store, at(H + D - 1))).toMatchObject({ ok: true });
    expect(await authenticate(`Bearer ${old.token}`, store, at(H + D))).toMatchObject({ status: 403 });
    expect(await authenticate(`Bearer ${rotated.token}`, store, at(H + D))).toMatchObject({ ok: true });
    // Printed as issue prints it, with the old token's end; without --expires as long a life as the old one's (30 days).
    expect(await run('rotate', rotated.tokenId as string)).toBe(0);
    expect(out).toMatch(
      /^token: {4}crs_\S+\ntokenId: {2}\S+\ndevice: {3}gw-1\nscope: {4}monitor; wards H4\nexpires: {2}2027-01-05T11:00:00.000Z\n/,
    );
    expect(out).toContain(`replaces: ${rotated.tokenId} (taken until ${at(H + D).toISOString()}`);
    expect(out).toContain('cannot be shown again');
  });

  it('gives the successor of a token that expires as long a life unless told (--expires WHEN or never)', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '90d', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    clock = at(80 * D);
    expect(await run('rotate', old.tokenId, '--json')).toBe(0);
    const next = JSON.parse(out) as { tokenId: string; expiresAt: string };
    expect(next.expiresAt).toBe(at(170 * D).toISOString());
    expect(await run('rotate', next.tokenId, '--expires', 'never', '--json')).toBe(0);
    const last = JSON.parse(out) as { tokenId: string; expiresAt: string | null };
    expect(last.expiresAt).toBeNull();
    expect(await run('rotate', last.tokenId, '--json')).toBe(0);
    expect(JSON.parse(out).expiresAt).toBeNull();
    // An old expiry it cannot read (a hand edit): told to say, nothing issued.
    await run('issue', '--device', 'gw-2', '--kind', 'monitor', '--expires', '1d', '--json');
    const edited = JSON.parse(out) as { tokenId: string };
    store.tokens.find((t) => t.tokenId === edited.tokenId)!.expiresAt = 'soon';
    const count = store.tokens.length;
    expect(await run('rotate', edited.tokenId)).toBe(2);
    expect(err).toContain(`the expiry of ${edited.tokenId} cannot be read to give its successor as long a life`);
    expect(store.tokens).toHaveLength(count);
    expect(await run('issue', '--device', 'gw-3', '--kind', 'monitor', '--expires', 'never')).toBe(2);
  });

  it('rotates with --overlap 0 by revoking the old token now; refuses an unknown one and a bad overlap', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'pump', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    expect(await run('rotate', old.tokenId, '--overlap', '0', '--json')).toBe(0);
    expect(JSON.parse(out).replaces).toEqual({ tokenId: old.tokenId, revokedAt: NOW.toISOString() });
    expect(store.tokens.find((t) => t.tokenId === old.tokenId)?.revokedAt).toBe(NOW.toISOString());
    expect(await run('rotate', old.tokenId)).toBe(1);
    expect(err).toBe(`crs token: no active token ${old.tokenId} (unknown, or revoked)\n`);
    expect(await run('rotate', 'x', '--overlap', '1 day')).toBe(2);
    expect(err).toContain('--overlap takes a duration (24h, 7d, 30m; 0: revoke now); got "1 day"');
    expect(store.tokens).toHaveLength(2);
  });

  it('reads any overlap of no time (0d, 0h, 00m) as --overlap 0: the old token is revoked, and said so', async () => {
    for (const zero of ['0d', '0h', '00m']) {
      await run('issue', '--device', 'gw-1', '--kind', 'pump', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      expect(await run('rotate', old.tokenId, '--overlap', zero, '--json'), zero).toBe(0);
      expect(JSON.parse(out).replaces, zero).toEqual({ tokenId: old.tokenId, revokedAt: NOW.toISOString() });
      expect(await run('rotate', (JSON.parse(out) as { tokenId: string }).tokenId, '--overlap', zero)).toBe(0);
      expect(out, zero).toMatch(/^replaces: \S+ \(revoked now\)$/m);
    }
  });

  it('prints the new token when the old one could not be ended after it was stored (exit 1), and says what to do', async () => {
    for (const overlap of ['24h', '0']) {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--json');
      const old = JSON.parse(out) as { tokenId: string; token: string };
      const fail = async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      };
      const { expire, revoke } = store;
      store.expire = fail;
      store.revoke = fail;
      expect(await run('rotate', old.tokenId, '--overlap', overlap), overlap).toBe(1);
      store.expire = expire;
      store.revoke = revoke;
      // The new token is stored and taken: printed once, as ever, or nobody would ever hold it.
      const token = /^token: {4}(crs_\S+)$/m.exec(out)?.[1];
      expect(token, overlap).toBeDefined();
      expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({ ok: true, deviceId: 'gw-1' });
      expect(out, overlap).toContain(`replaces: ${old.tokenId} (not ended: still taken as before`);
      expect(err, overlap).toContain(
        `crs token: ${old.tokenId} could not be ended (ThrottlingException: Rate exceeded)`,
      );
      expect(err, overlap).toContain(`crs token revoke ${old.tokenId}`);
      // The old one is as it was: taken.
      expect(await authenticate(`Bearer ${old.token}`, store, at(100 * D))).toMatchObject({ ok: true });
      store.expire = fail;
      store.revoke = fail;
      expect(await run('rotate', old.tokenId, '--overlap', overlap, '--json')).toBe(1);
      store.expire = expire;
      store.revoke = revoke;
      expect(JSON.parse(out).replaces).toEqual({
        tokenId: old.tokenId,
        notEnded: 'ThrottlingException: Rate exceeded',
        expiresAt: null,
      });
    }
  });

  it('says so when the old token was revoked meanwhile, never that it is taken until a time', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    const { expire } = store;
    store.expire = async (tokenId, when) => {
      await store.revoke(tokenId, NOW.toISOString());
      return expire.call(store, tokenId, when);
    };
    expect(await run('rotate', old.tokenId, '--json')).toBe(0);
    expect(JSON.parse(out).replaces).toEqual({ tokenId: old.tokenId, revokedMeanwhile: true });
    expect(await run('rotate', (JSON.parse(out) as { tokenId: string }).tokenId)).toBe(0);
    expect(out).toMatch(/^replaces: \S+ \(revoked meanwhile\)$/m);
    expect(out).not.toContain('taken until');
  });

  it('rotates an expired token saying it expired, never that the device has until then; an unreadable expiry escaped', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '1h', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    clock = at(2 * H);
    expect(await run('rotate', old.tokenId)).toBe(0);
    expect(out).toContain(`replaces: ${old.tokenId} (expired at ${at(H).toISOString()})\n`);
    expect(out).not.toContain('configure the device before then');
    store.tokens[0]!.expiresAt = 'soon\nreplaces: x';
    expect(await run('rotate', old.tokenId, '--expires', '30d')).toBe(0);
    expect(out).toContain(
      `replaces: ${old.tokenId} (its expiry "soon\\nreplaces: x" cannot be read: refused already)\n`,
    );
    expect(store.tokens[0]!.expiresAt).toBe('soon\nreplaces: x');
  });

  // 2026-12-06: an expiry crs cannot read (a hand edit) was read loosely ("Jan 2 2027" as the engine guessed) and the
  // token listed as active; it is listed as unreadable, warned of, and rotated only with --expires (no life to copy).
  it('lists a token whose expiry it cannot read as unreadable, warns of it, and rotates it only with --expires', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '30d', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    store.tokens[0]!.expiresAt = 'Jan 2 2027';
    expect(await run('list', '--json')).toBe(0);
    expect(JSON.parse(out)).toMatchObject([
      {
        tokenId: old.tokenId,
        expiresAt: 'Jan 2 2027',
        expired: false,
        expiryUnreadable: true,
        // As this backend's operator runs crs token (2026-12-06: the embedded command, on --backend aws too).
        refused: TOKEN_EXPIRY_UNREADABLE('Jan 2 2027', 'aws'),
      },
    ]);
    // `crs doctor --json`'s finding for it says the same: unreadable, not expired (2026-12-06: it said both).
    expect(expiryFindings(store.tokens, NOW)).toMatchObject([{ expired: false, expiryUnreadable: true }]);
    expect(await run('list')).toBe(0);
    expect(out).toMatch(
      new RegExp(
        `^${old.tokenId} +gw-1 +\\S+ +Jan 2 2027 +unreadable +device token with an expiry that cannot be read`,
        'm',
      ),
    );
    expect(out).toContain(
      `warning: token ${old.tokenId} of device gw-1 has an expiry that cannot be read ("Jan 2 2027"; an ISO 8601 instant with its zone is needed): the device is refused; rotate it (crs token rotate ${old.tokenId} --expires WHEN --backend aws) and configure the device with the new token`,
    );
    expect(await run('rotate', old.tokenId)).toBe(2);
    expect(err).toContain(`the expiry of ${old.tokenId} cannot be read to give its successor as long a life`);
    expect(store.tokens).toHaveLength(1);
    expect(await run('rotate', old.tokenId, '--expires', '30d')).toBe(0);
    expect(out).toContain(`replaces: ${old.tokenId} (its expiry "Jan 2 2027" cannot be read: refused already)\n`);
    expect(store.tokens[0]!.expiresAt).toBe('Jan 2 2027'); // left as it is: refused already
    expect(await run('rotate', old.tokenId, '--expires', '30d', '--json')).toBe(0);
    expect(JSON.parse(out).replaces).toEqual({ tokenId: old.tokenId, expiresAt: 'Jan 2 2027', expiryUnreadable: true });
  });

  // What crs writes is read back by the strict rule (2026-12-06): a UTC instant as toISOString writes it, whatever form
  // --expires was given in, and whatever issue, rotate (a copied life, an overlap) wrote.
  it('writes every expiry as an instant the strict rule reads back, to the ms', async () => {
    for (const when of [
      '90d',
      '12h',
      '30m',
      '2027-03-01',
      '2027-03-01T08:00Z',
      '2027-03-01T09:00:00.5+01:00',
      '2027-03-01T08:00:00.123456Z',
    ])
      expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', when), when).toBe(0);
    const first = store.tokens[0]!.tokenId;
    expect(await run('rotate', first)).toBe(0); // the old one's life, copied; the old one ends after the overlap
    expect(await run('rotate', store.tokens[1]!.tokenId, '--overlap', '2h', '--expires', '2027-06-01')).toBe(0);
    expect(store.tokens).toHaveLength(9);
    for (const t of store.tokens) {
      expect(expiryUnreadable(t), t.expiresAt).toBe(false);
      expect(new Date(instantMs(t.expiresAt!)!).toISOString()).toBe(t.expiresAt);
    }
  });

  it('lists expiry and expired, and warns of tokens expiring within 14 days by id and device, never the token', async () => {
    await run('issue', '--device', 'gw-soon', '--kind', 'monitor', '--expires', '13d', '--json');
    const soon = JSON.parse(out) as { tokenId: string; token: string };
    await run('issue', '--device', 'gw-late', '--kind', 'monitor', '--expires', '15d');
    await run('issue', '--device', 'gw-past', '--kind', 'monitor', '--expires', '1h', '--json');
    const past = JSON.parse(out) as { tokenId: string };
    clock = at(2 * H);
    expect(await run('list', '--json')).toBe(0);
    const rows = JSON.parse(out) as { deviceId: string; expiresAt: string | null; expired: boolean }[];
    expect(rows.map((r) => [r.deviceId, r.expiresAt, r.expired])).toEqual([
      ['gw-soon', at(13 * D).toISOString(), false],
      ['gw-late', at(15 * D).toISOString(), false],
      ['gw-past', at(H).toISOString(), true],
    ]);
    expect(await run('list')).toBe(0);
    expect(out).toMatch(/^TOKEN ID +DEVICE +CREATED +EXPIRES +STATUS +SCOPE$/m);
    expect(out).toMatch(new RegExp(`^${past.tokenId} +gw-past +\\S+ +${at(H).toISOString()} +expired +monitor`, 'm'));
    expect(out).toContain(
      `warning: token ${soon.tokenId} of device gw-soon expires at ${at(13 * D).toISOString()}: rotate it (crs token rotate ${soon.tokenId} --backend aws)`,
    );
    expect(out).toContain(
      `warning: token ${past.tokenId} of device gw-past expired at ${at(H).toISOString()}: the device is refused`,
    );
    expect(out).not.toContain('gw-late expires');
    expect(out).not.toContain(soon.token);
  });

  it('never tells to rotate a token already replaced by a newer one of its device: the overlap is said, then nothing', async () => {
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--json');
    const old = JSON.parse(out) as { tokenId: string };
    await run('rotate', old.tokenId, '--json');
    const fresh = JSON.parse(out) as { tokenId: string };
    expect(await run('list')).toBe(0);
    expect(out).toContain(
      `warning: token ${old.tokenId} of device gw-1 expires at ${at(D).toISOString()}: replaced by ${fresh.tokenId}; configure the device with that before then`,
    );
    expect(out).not.toContain(`(crs token rotate ${old.tokenId})`);
    clock = at(2 * D);
    expect(await run('list')).toBe(0);
    expect(out).toMatch(new RegExp(`^${old.tokenId} +gw-1 +\\S+ +${at(D).toISOString()} +expired `, 'm'));
    expect(out).not.toContain('warning:');
    // A device whose every token ran out is still warned of: it is refused.
    await run('revoke', fresh.tokenId);
    expect(await run('list')).toBe(0);
    expect(out).toContain(
      `warning: token ${old.tokenId} of device gw-1 expired at ${at(D).toISOString()}: the device is refused`,
    );
  });

  describe('the expiry rule and crs token rotate, pinned by a mutation run', () => {
    it('reads the strict rule to its edges: offsets to :59, seconds, years before 100; says revoked before unreadable', () => {
      for (const bad of [
        '2027-01-02T00:00:00+00:60',
        '2027-01-02T00:00:00z',
        '2027-1-02T00:00:00Z',
        '2027-01-02T00:00:00Zjunk',
        '2027-01-02T00:00:00+01:00 ',
      ])
        expect(expiryUnreadable({ expiresAt: bad }), bad).toBe(true);
      expect(instantMs('2027-01-02T00:00:59Z')).toBe(Date.parse('2027-01-02T00:00:59Z'));
      expect(instantMs('2027-01-02T00:00:00+00:59')).toBe(Date.parse('2027-01-01T23:01:00Z'));
      expect(new Date(instantMs('0099-12-31T00:00:00Z')!).toISOString()).toBe('0099-12-31T00:00:00.000Z');
      const { record } = issueToken('gw-1', NOW, { kind: 'monitor' });
      const revoked = { ...record, expiresAt: 'soon', revokedAt: NOW.toISOString() };
      expect(tokenPrincipal(revoked, NOW)).toMatchObject({ error: TOKEN_REVOKED() });
    });

    it('warns of no token whose expiry it cannot read once a newer token of its device is taken', async () => {
      const first = issueToken('gw-1', NOW, { kind: 'monitor' }, at(5 * D).toISOString());
      const second = issueToken('gw-1', at(H), { kind: 'monitor' }, at(30 * D).toISOString());
      await store.put({ ...first.record, expiresAt: 'Jan 2 2027' });
      await store.put(second.record);
      expect(await run('list')).toBe(0);
      expect(out).toMatch(new RegExp(`^${first.record.tokenId} +gw-1 +\\S+ +Jan 2 2027 +unreadable`, 'm'));
      expect(out).not.toContain('warning:');
    });

    it('lists a revoked token as revoked only, whatever its expiry holds', async () => {
      const { record } = issueToken('gw-1', NOW, { kind: 'monitor' }, 'Jan 2 2027');
      await store.put({ ...record, revokedAt: NOW.toISOString() });
      expect(await run('list', '--json')).toBe(0);
      expect(JSON.parse(out)).toMatchObject([{ tokenId: record.tokenId, expired: false, expiryUnreadable: false }]);
    });

    it('copies no life from a token whose creation time is no instant (a hand edit): --expires is needed', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '30d', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      store.tokens[0]!.createdAt = '2026-12-06';
      expect(await run('rotate', old.tokenId)).toBe(2);
      expect(err).toContain(`the expiry of ${old.tokenId} cannot be read to give its successor as long a life`);
      expect(store.tokens).toHaveLength(1);
    });

    it('reads a duration of minutes and of five digits, anchored at both ends', () => {
      expect(expiryOf('30m', NOW)).toEqual({ ok: true, at: at(30 * 60_000).toISOString() });
      expect(expiryOf('99999m', NOW)).toEqual({ ok: true, at: at(99_999 * 60_000).toISOString() });
      for (const bad of ['x90d', '100000m', '90d '])
        expect(expiryOf(bad, NOW), bad).toMatchObject({ ok: false, error: expect.stringMatching(/^--expires takes/) });
    });

    it('says an expiry stored in another zone (a hand edit) as the UTC instant it read; a date alone it cannot read', () => {
      expect(TOKEN_EXPIRED('2026-12-01T08:00:00+01:00')).toMatch(/^device token expired at 2026-12-01T07:00:00.000Z: /);
      expect(tokenPrincipal({ ...issueToken('gw-1', NOW).record, expiresAt: '2026-12-01' }, NOW)).toMatchObject({
        error: TOKEN_EXPIRY_UNREADABLE('2026-12-01'),
      });
    });

    it('warns to rotate a token whose newer one of its device ends at the same time (it does not outlive it)', async () => {
      const first = issueToken('gw-1', NOW, { kind: 'monitor' }, at(5 * D).toISOString());
      const second = issueToken('gw-1', at(H), { kind: 'monitor' }, at(5 * D).toISOString());
      await store.put(first.record);
      await store.put(second.record);
      expect(await run('list')).toBe(0);
      expect(out).toContain(`warning: token ${first.record.tokenId} of device gw-1 expires at`);
      expect(out).toContain(`rotate it (crs token rotate ${first.record.tokenId} --backend aws)`);
      expect(out).not.toContain('replaced by');
    });

    it('prints a new token never expiring as "expires:  never"', async () => {
      expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor')).toBe(0);
      expect(out).toMatch(/^expires: {2}never$/m);
    });

    it('refuses --overlap for any command but rotate (exit 2, nothing stored)', async () => {
      expect(await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--overlap', '1h')).toBe(2);
      expect(err).toContain('--overlap is for rotate');
      expect(store.tokens).toEqual([]);
    });

    it('rotating an expired token with --overlap 0 revokes it now (text and JSON)', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '1h', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      clock = at(2 * H);
      expect(await run('rotate', old.tokenId, '--overlap', '0', '--expires', '30d', '--json')).toBe(0);
      expect(JSON.parse(out).replaces).toEqual({ tokenId: old.tokenId, revokedAt: at(2 * H).toISOString() });
      expect(store.tokens.find((t) => t.tokenId === old.tokenId)?.revokedAt).toBe(at(2 * H).toISOString());
    });

    it('says in JSON that a rotated token had expired already, with the UTC instant of a hand-edited expiry', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '1h', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      clock = at(2 * H);
      expect(await run('rotate', old.tokenId, '--json')).toBe(0);
      expect(JSON.parse(out).replaces).toEqual({ tokenId: old.tokenId, expiresAt: at(H).toISOString(), expired: true });
      const edited = issueToken('gw-2', NOW, { kind: 'monitor' }, '2026-12-06T11:00:00+01:00');
      await store.put(edited.record);
      expect(await run('rotate', edited.record.tokenId, '--expires', '30d')).toBe(0);
      expect(out).toContain(`replaces: ${edited.record.tokenId} (expired at 2026-12-06T10:00:00.000Z)\n`);
    });

    it('says until when an old token that could not be ended is still taken (text and JSON)', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '30d', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      store.expire = async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      };
      expect(await run('rotate', old.tokenId)).toBe(1);
      expect(out).toContain(
        `replaces: ${old.tokenId} (not ended: still taken as before, until ${at(30 * D).toISOString()})\n`,
      );
      expect(await run('rotate', old.tokenId, '--json')).toBe(1);
      expect(JSON.parse(out).replaces).toMatchObject({ expiresAt: at(30 * D).toISOString() });
    });

    it('never ends the old token when the new one could not be stored (exit 1, the old one as it was)', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--json');
      const old = JSON.parse(out) as { tokenId: string; token: string };
      let ended = 0;
      store.put = async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      };
      store.expire = async () => {
        ended++;
        return true;
      };
      expect(await run('rotate', old.tokenId)).toBe(1);
      expect(err).toBe('crs token: ThrottlingException: Rate exceeded (DynamoDB table tokens)\n');
      expect(out).toBe('');
      expect(ended).toBe(0);
      expect(store.tokens).toHaveLength(1);
    });

    it('tells on stderr that the old token was revoked meanwhile', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      store.expire = async () => false;
      expect(await run('rotate', old.tokenId)).toBe(0);
      const fresh = store.tokens[1]!.tokenId;
      expect(err).toBe(`crs token: ${old.tokenId} was revoked meanwhile; the new token ${fresh} is issued\n`);
    });

    it('lists a revoked token whose expiry has passed as revoked, not expired (JSON)', async () => {
      await run('issue', '--device', 'gw-1', '--kind', 'monitor', '--expires', '1h', '--json');
      const old = JSON.parse(out) as { tokenId: string };
      await run('revoke', old.tokenId);
      clock = at(2 * H);
      expect(await run('list', '--json')).toBe(0);
      expect(JSON.parse(out)).toMatchObject([{ tokenId: old.tokenId, revokedAt: NOW.toISOString(), expired: false }]);
    });
  });
});

describe('an embedded data directory of version 9 (no expiry column)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-expiry-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens as version 12 with its tokens kept, never expiring; a new one can expire', async () => {
    const db = openDataDir(dir);
    const { token, record } = issueToken('gw-old', NOW, { kind: 'monitor' });
    await new SqliteTokenStore(db).put(record);
    db.close();
    const raw = new Database(join(dir, DB_FILE));
    raw.exec('ALTER TABLE device_tokens DROP COLUMN expires_at');
    raw.pragma('user_version = 9');
    raw.close();

    const upgraded = openDataDir(dir);
    try {
      expect(upgraded.pragma('user_version', { simple: true })).toBe(15);
      const tokens = new SqliteTokenStore(upgraded);
      expect(await authenticate(`Bearer ${token}`, tokens, at(3650 * D))).toMatchObject({
        ok: true,
        deviceId: 'gw-old',
      });
      expect((await tokens.list())[0]).not.toHaveProperty('expiresAt');
      const fresh = issueToken('gw-new', NOW, { kind: 'monitor' }, at(D).toISOString());
      await tokens.put(fresh.record);
      expect(await authenticate(`Bearer ${fresh.token}`, tokens, at(D))).toMatchObject({ status: 403 });
      expect(await tokens.expire(record.tokenId, at(H).toISOString())).toBe(true);
      expect(await authenticate(`Bearer ${token}`, tokens, at(H))).toMatchObject({ status: 403 });
    } finally {
      upgraded.close();
    }
  });

  it('goes from version 1 (no scope, no expiry) straight to 11: its token kept, never expiring, and can be rotated', async () => {
    const old = new Database(join(dir, DB_FILE));
    old.exec(readFileSync(new URL('../fixtures/embedded-schema-v1.sql', import.meta.url), 'utf8'));
    old.pragma('user_version = 1');
    const { token, record } = issueToken('gw-v1', NOW);
    old
      .prepare('INSERT INTO device_tokens (token_id, device_id, hash, created_at) VALUES (?, ?, ?, ?)')
      .run(record.tokenId, record.deviceId, record.hash, record.createdAt);
    old.close();
    const upgraded = openDataDir(dir);
    try {
      expect(upgraded.pragma('user_version', { simple: true })).toBe(15);
      const tokens = new SqliteTokenStore(upgraded);
      expect(await authenticate(`Bearer ${token}`, tokens, at(3650 * D))).toMatchObject({ ok: true });
      expect(await tokens.expire(record.tokenId, at(H).toISOString())).toBe(true);
      expect(await authenticate(`Bearer ${token}`, tokens, at(H))).toMatchObject({ status: 403 });
    } finally {
      upgraded.close();
    }
  });
});

// A mutation run (2026-12-07) found the link followed one step only in every test: a chain of rotations whose middle
// token was revoked, and a link edited by hand into a loop, were never tried.
describe('the replacement crs token list names: the link followed (598ceb5a)', () => {
  const token = (tokenId: string, more: Partial<DeviceToken> = {}): DeviceToken => ({
    tokenId,
    deviceId: 'gw-1',
    hash: `h-${tokenId}`,
    createdAt: at(-D).toISOString(),
    ...more,
  });
  const soon = at(H).toISOString();
  const revoked = at(-H).toISOString();

  it('past a replacement revoked, to the one it was replaced by in turn', () => {
    const tokens = [
      token('A', { expiresAt: soon, replacedBy: 'B' }),
      token('B', { revokedAt: revoked, replacedBy: 'C' }),
      token('C'),
    ];
    expect(expiryFindings(tokens, NOW)).toMatchObject([{ tokenId: 'A', replacedBy: 'C' }]);
  });

  it('a loop (A replaced by B replaced by A, a hand edit) ends: none taken, none named', () => {
    const tokens = [
      token('A', { expiresAt: soon, replacedBy: 'B' }),
      token('B', { revokedAt: revoked, replacedBy: 'A' }),
    ];
    expect(expiryFindings(tokens, NOW)).toMatchObject([{ tokenId: 'A', replacedBy: null }]);
  });
});
