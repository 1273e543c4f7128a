// A device token replaced by `crs token rotate` (2026-12-07): rotate stores the link on the old token, and a device
// still sending it once it is refused (revoked, or its overlap over) is told to install the replacement, naming it by
// id. Until 2026-12-07 it was told to issue a new one, which made a third token and left the replacement unused.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authenticate, issueToken, TOKEN_EXPIRED, TOKEN_REPLACED, TOKEN_REVOKED, tokenPrincipal } from '#app/auth.ts';
import { DB_FILE, openDataDir } from '#adapters/sqlite/db.ts';
import { SqliteTokenStore } from '#adapters/sqlite/tokens.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { MemoryTokenStore } from '#test/support/port-fakes.ts';
import { chainRefusals, rotationChains } from '#test/support/token-link.ts';

const NOW = new Date('2026-12-07T10:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const H = 3_600_000;

describe('the refusal of a replaced token (shared/app/auth.ts)', () => {
  const { record } = issueToken('gw-1', at(-H), { kind: 'monitor' });
  const replaced = { ...record, replacedBy: 'tok-2', replacedAt: NOW.toISOString() };

  it('says a revoked token was replaced, when and by which token, and to install that one', () => {
    const said =
      'device token replaced at 2026-12-07T10:00:00.000Z by token tok-2 (crs token rotate): install the replacement on the device (if it was lost, rotate that one: crs token rotate tok-2)';
    expect(TOKEN_REPLACED(replaced)).toBe(said);
    expect(tokenPrincipal({ ...replaced, revokedAt: NOW.toISOString() }, NOW)).toEqual({
      ok: false,
      status: 403,
      error: said,
    });
    expect(TOKEN_REPLACED(replaced, 'aws')).toContain(
      'rotate that one: crs token rotate tok-2 --backend aws --outputs FILE)',
    );
  });

  it('says so of a token whose overlap is over (expired), or whose expiry cannot be read, as of a revoked one', () => {
    const ended = { ...replaced, expiresAt: at(H).toISOString() };
    expect(tokenPrincipal(ended, at(H - 1)).ok).toBe(true); // in its overlap: taken
    expect(tokenPrincipal(ended, at(H))).toEqual({ ok: false, status: 403, error: TOKEN_REPLACED(replaced) });
    expect(tokenPrincipal({ ...replaced, expiresAt: 'soon' }, NOW)).toMatchObject({ error: TOKEN_REPLACED(replaced) });
  });

  it('keeps the advice of a token revoked or expired with no replacement (one stored before 2026-12-07 too)', () => {
    expect(tokenPrincipal({ ...record, revokedAt: NOW.toISOString() }, NOW)).toMatchObject({ error: TOKEN_REVOKED() });
    const expiresAt = at(H).toISOString();
    expect(tokenPrincipal({ ...record, expiresAt }, at(H))).toMatchObject({ error: TOKEN_EXPIRED(expiresAt) });
  });

  it('escapes what a hand edit left in the link; a time it cannot read is quoted, none is not said', () => {
    expect(TOKEN_REPLACED({ replacedBy: 'x\ny', replacedAt: 'later' })).toMatch(
      /^device token replaced at "later" by token x\\u000ay \(crs token rotate\)/,
    );
    expect(TOKEN_REPLACED({ replacedBy: 'tok-2' })).toMatch(/^device token replaced by token tok-2 \(/);
  });
});

describe('crs token rotate stores the link on the old token', () => {
  let store: MemoryTokenStore;
  let out: string;
  let clock: Date;
  const run = async (...argv: string[]) => {
    out = '';
    return tokenCommand([...argv, '--backend', 'aws'], {
      out: (t) => (out += t),
      err: () => undefined,
      now: () => clock,
      aws: async () => ({ tokens: store, close: () => undefined }),
      env: { CRS_TOKENS_TABLE: 'tokens' },
    });
  };
  const issue = async (...extra: string[]) => {
    clock = at(-2 * H);
    await run('issue', '--device', 'gw-1', '--kind', 'monitor', ...extra, '--json');
    return JSON.parse(out) as { token: string; tokenId: string };
  };
  const rotate = async (tokenId: string, ...extra: string[]) => {
    clock = NOW;
    expect(await run('rotate', tokenId, ...extra, '--json')).toBe(0);
    return JSON.parse(out) as { token: string; tokenId: string };
  };
  beforeEach(() => {
    store = new MemoryTokenStore();
  });

  it('with an overlap: taken until it ends, then refused naming the replacement', async () => {
    const old = await issue();
    const fresh = await rotate(old.tokenId, '--overlap', '1h');
    expect(store.tokens.find((t) => t.tokenId === old.tokenId)).toMatchObject({
      replacedBy: fresh.tokenId,
      replacedAt: NOW.toISOString(),
    });
    expect(store.tokens.find((t) => t.tokenId === fresh.tokenId)).not.toHaveProperty('replacedBy');
    expect((await authenticate(`Bearer ${old.token}`, store, at(H - 1))).ok).toBe(true);
    expect(await authenticate(`Bearer ${old.token}`, store, at(H), undefined, 'aws')).toEqual({
      ok: false,
      status: 403,
      error: TOKEN_REPLACED({ replacedBy: fresh.tokenId, replacedAt: NOW.toISOString() }, 'aws'),
    });
    // Revoked by hand once the device changed over: the same advice.
    await store.revoke(old.tokenId, at(H / 2).toISOString());
    expect(await authenticate(`Bearer ${old.token}`, store, at(H / 2))).toMatchObject({
      error: expect.stringContaining(`replaced at ${NOW.toISOString()} by token ${fresh.tokenId}`),
    });
  });

  it('with --overlap 0 (revoked now), and for a token that had expired already', async () => {
    const old = await issue();
    const fresh = await rotate(old.tokenId, '--overlap', '0');
    expect(await authenticate(`Bearer ${old.token}`, store, NOW)).toMatchObject({
      error: expect.stringMatching(new RegExp(`^device token replaced at \\S+ by token ${fresh.tokenId} `)),
    });
    const ended = await issue('--expires', '1h');
    const next = await rotate(ended.tokenId);
    expect(await authenticate(`Bearer ${ended.token}`, store, NOW)).toMatchObject({
      error: expect.stringContaining(`by token ${next.tokenId} `),
    });
  });

  it('a second rotation of the same token in its overlap names the newest replacement', async () => {
    const old = await issue();
    await rotate(old.tokenId);
    const second = await rotate(old.tokenId, '--overlap', '0');
    expect(await authenticate(`Bearer ${old.token}`, store, NOW)).toMatchObject({
      error: expect.stringContaining(`by token ${second.tokenId} `),
    });
  });
});

// 2026-12-07 (a review): the refusal read the direct link only. A token rotated with --overlap 0 whose replacement
// was revoked since was told to install that one (and `crs token rotate` of it failed: "no active token"); one whose
// replacement was rotated in turn was told to install the revoked middle one. `crs token list` followed the chain.
describe('the refusal of a replaced token follows the chain of rotations, as crs token list does', () => {
  let store: MemoryTokenStore;
  let clock: Date;
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const code = await tokenCommand([...argv, '--backend', 'aws'], {
      out: (t) => (out += t),
      err: (t) => (err += t),
      now: () => clock,
      aws: async () => ({ tokens: store, close: () => undefined }),
      env: { CRS_TOKENS_TABLE: 'tokens' },
    });
    return { code, out, err };
  };
  beforeEach(() => {
    store = new MemoryTokenStore();
    clock = NOW;
  });
  const aws = ' --backend aws --outputs FILE';

  it('names the first replacement still taken, or says none is and to issue a new token', async () => {
    const t = await rotationChains(run);
    const said = chainRefusals(t, aws);
    expect(await authenticate(`Bearer ${t.ended.a.token}`, store, NOW, undefined, 'aws')).toEqual({
      ok: false,
      status: 403,
      error: said.ended,
    });
    expect(await authenticate(`Bearer ${t.twice.a.token}`, store, NOW, undefined, 'aws')).toEqual({
      ok: false,
      status: 403,
      error: said.twice,
    });
    // The command it names runs: the middle token is revoked, the one named is not.
    expect((await run(['rotate', t.twice.c.tokenId, '--overlap', '0'])).code).toBe(0);
    expect((await run(['rotate', t.ended.b.tokenId])).err).toMatch(/no active token/);
  });

  it('says what crs token list says of a token whose overlap is over (the two agree)', async () => {
    clock = at(-2 * H);
    const a = JSON.parse((await run(['issue', '--device', 'gw-1', '--kind', 'monitor', '--json'])).out);
    const b = JSON.parse((await run(['rotate', a.tokenId, '--overlap', '1h', '--json'])).out);
    const c = JSON.parse((await run(['rotate', b.tokenId, '--overlap', '0', '--json'])).out);
    clock = NOW; // a's overlap over, b revoked: c is the one
    const refusal = await authenticate(`Bearer ${a.token}`, store, NOW, undefined, 'aws');
    expect(refusal).toMatchObject({ error: expect.stringContaining(`install token ${c.tokenId} on the device`) });
    const listed = JSON.parse((await run(['list', '--json'])).out) as { tokenId: string; refused: string | null }[];
    expect(listed.find((r) => r.tokenId === a.tokenId)?.refused).toBe(refusal.ok ? null : refusal.error);
  });

  it('ends a loop (a hand edit: A by B by A, both revoked) naming none', async () => {
    const a = issueToken('gw-1', at(-H), { kind: 'monitor' });
    const b = issueToken('gw-1', at(-H), { kind: 'monitor' });
    const ended = { revokedAt: NOW.toISOString(), replacedAt: NOW.toISOString() };
    await store.put({ ...a.record, ...ended, replacedBy: b.record.tokenId });
    await store.put({ ...b.record, ...ended, replacedBy: a.record.tokenId });
    expect(await authenticate(`Bearer ${a.token}`, store, NOW)).toMatchObject({
      error: expect.stringContaining('but no replacement is active any more'),
    });
  });

  it('looks up a bounded number of tokens by id, never the whole store, and says so past the bound', async () => {
    const first = issueToken('gw-1', at(-H), { kind: 'monitor' });
    let prev = first.record;
    // A chain of 40 rotations, each revoked: far past any bound the refusal keeps.
    for (let i = 0; i < 40; i++) {
      const next = issueToken('gw-1', at(-H), { kind: 'monitor' }).record;
      await store.put({
        ...prev,
        revokedAt: NOW.toISOString(),
        replacedBy: next.tokenId,
        replacedAt: NOW.toISOString(),
      });
      prev = next;
    }
    await store.put(prev); // the last one taken
    const lookups = { byId: 0, list: 0 };
    const byId = store.findById.bind(store);
    store.findById = (...a) => {
      lookups.byId++;
      return byId(...a);
    };
    store.list = async () => {
      lookups.list++;
      return [];
    };
    const refusal = await authenticate(`Bearer ${first.token}`, store, NOW);
    expect(lookups.list).toBe(0);
    expect(lookups.byId).toBeLessThanOrEqual(16);
    expect(refusal).toMatchObject({
      error: `device token replaced at ${NOW.toISOString()} by token ${store.tokens[1]!.tokenId} (crs token rotate): install the replacement on the device; crs token list names the one active now`,
    });
  });

  it('a store that cannot be read for the chain still refuses, naming where the replacement is found', async () => {
    const t = await rotationChains(run);
    store.findById = () => Promise.reject(new Error('throttled'));
    expect(await authenticate(`Bearer ${t.ended.a.token}`, store, NOW, undefined, 'aws')).toEqual({
      ok: false,
      status: 403,
      error: `device token replaced at ${t.ended.b.createdAt} by token ${t.ended.b.tokenId} (crs token rotate): install the replacement on the device; crs token list${aws} names the one active now`,
    });
  });
});

describe('the embedded store keeps the link', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-replaced-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('written by markReplaced and read back; a row stored before (no column) reads as no replacement', async () => {
    const db = openDataDir(dir);
    const store = new SqliteTokenStore(db);
    const a = issueToken('gw-1', NOW, { kind: 'monitor' });
    await store.put(a.record);
    expect(await store.findByHash(a.record.hash)).not.toHaveProperty('replacedBy');
    expect(await store.markReplaced('nope', 'tok-2', NOW.toISOString())).toBe(false);
    expect(await store.markReplaced(a.record.tokenId, 'tok-2', NOW.toISOString())).toBe(true);
    expect(await store.findByHash(a.record.hash)).toMatchObject({ replacedBy: 'tok-2', replacedAt: NOW.toISOString() });
    db.close();
    // A database of an earlier crs (the columns dropped, as it had none): its tokens open with no replacement.
    const raw = new Database(join(dir, DB_FILE));
    raw.exec('ALTER TABLE device_tokens DROP COLUMN replaced_by; ALTER TABLE device_tokens DROP COLUMN replaced_at');
    raw.close();
    const reopened = openDataDir(dir);
    const read = await new SqliteTokenStore(reopened).findByHash(a.record.hash);
    expect(read).toMatchObject({ tokenId: a.record.tokenId });
    expect(read).not.toHaveProperty('replacedBy');
    reopened.close();
  });
});
