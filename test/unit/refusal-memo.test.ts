// The cost of refusing a replaced token (2026-12-07): a gateway that keeps sending a token rotated and ended since (or
// anyone holding a leaked one) was answered by reading the token and then each link of its chain of rotations, up to
// 9 store reads a request, every request, forever (refusals are not rate-limited, only their log); on AWS each is a
// DynamoDB read paid per request. The refusal's records are now held a minute per token hash (REFUSAL_MEMO_TTL_MS, on
// the server's clock), a bounded number of tokens (REFUSAL_MEMO_SIZE): the walk is read at most once a minute per
// token and process, and the answer is the same, derived at each request's instant from the records held.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  authenticate,
  issueToken,
  REFUSAL_MEMO_SIZE,
  REFUSAL_MEMO_TTL_MS,
  replacementAmong,
  TOKEN_UNKNOWN,
  tokenPrincipal,
} from '#app/auth.ts';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { SqliteTokenStore } from '#adapters/sqlite/tokens.ts';
import type { DeviceToken, TokenStore } from '#ports';
import { countedReads, MemoryTokenStore } from '#test/support/port-fakes.ts';

const NOW = new Date('2026-12-07T10:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const H = 3_600_000;

/**
 * A token sent by a device, then `links` rotations, each replacement revoked but the last (taken), each linked to the
 * next with its key, as `crs token rotate` stores it: refusing the first reads the token, then `links` links.
 */
async function chain(
  store: TokenStore,
  links: number,
  ended: Partial<DeviceToken> = { revokedAt: at(-H).toISOString() },
) {
  const issued = Array.from({ length: links + 1 }, () => issueToken('gw-1', at(-2 * H), { kind: 'monitor' }));
  for (const [i, { record }] of issued.entries()) {
    const next = issued[i + 1]?.record;
    await store.put(
      next
        ? { ...record, ...ended, replacedBy: next.tokenId, replacedAt: at(-H).toISOString(), replacedByHash: next.hash }
        : record,
    );
  }
  return { token: issued[0]!.token, records: issued.map((t) => t.record) };
}

/** What `crs token list` says of the token at `now` (every token held: replacementAmong), the refusal's other rule. */
async function listSays(store: TokenStore, record: DeviceToken, now: Date) {
  const tokens = await store.list();
  const stored = tokens.find((t) => t.tokenId === record.tokenId)!;
  return tokenPrincipal(stored, now, 'aws', replacementAmong(tokens, stored, now));
}

describe('the refusal of a replaced token reads its chain at most once a minute per token (REFUSAL_MEMO_TTL_MS)', () => {
  it.each([3, 5, 8])(
    'a chain of %i links: 50 requests within the minute read it once, then once more',
    async (links) => {
      const store = countedReads(new MemoryTokenStore());
      const { token, records } = await chain(store, links);
      const said = await listSays(store, records[0]!, NOW);
      expect(said).toMatchObject({
        ok: false,
        error: expect.stringContaining(`install token ${records[links]!.tokenId}`),
      });
      for (let i = 0; i < 50; i++) {
        // One a second and a bit, as a gateway retrying: all within the minute.
        const when = at(Math.floor((i * (REFUSAL_MEMO_TTL_MS - 1)) / 50));
        expect(await authenticate(`Bearer ${token}`, store, when, undefined, 'aws')).toEqual(said);
      }
      // The token, then each link: once (it was 50 x (1 + links) until 2026-12-07).
      expect(store.reads()).toBe(1 + links);
      // The minute over (on the server's clock, never Date.now()): read again, once, the same answer.
      for (let i = 0; i < 10; i++)
        expect(await authenticate(`Bearer ${token}`, store, at(REFUSAL_MEMO_TTL_MS + i), undefined, 'aws')).toEqual(
          said,
        );
      expect(store.reads()).toBe(2 * (1 + links));
    },
  );

  it('says what it said unheld, on both stores, and what crs token list says: the one taken, none, or unknown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-refusal-memo-'));
    const db = openDataDir(dir);
    try {
      for (const make of [() => new MemoryTokenStore(), () => new SqliteTokenStore(db)]) {
        const store = countedReads(make());
        const taken = await chain(store, 3);
        // Every link revoked: none taken.
        const none = await chain(store, 2);
        await store.revoke(none.records[2]!.tokenId, at(-H).toISOString());
        // Ended by its overlap, not revoked.
        const expired = await chain(store, 1, { expiresAt: at(-1).toISOString() });
        for (const t of [taken, none, expired]) {
          const said = await listSays(store, t.records[0]!, NOW);
          const first = await authenticate(`Bearer ${t.token}`, store, NOW, undefined, 'aws');
          expect(first).toEqual(said);
          const reads = store.reads();
          expect(await authenticate(`Bearer ${t.token}`, store, at(1000), undefined, 'aws')).toEqual(first);
          expect(store.reads()).toBe(reads);
        }
        expect(await authenticate(`Bearer ${none.token}`, store, NOW)).toMatchObject({
          error: expect.stringContaining('but no replacement is active any more'),
        });
      }
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a replacement whose expiry passes within the minute is not said after it: the answer is of each instant', async () => {
    const store = countedReads(new MemoryTokenStore());
    const { token, records } = await chain(store, 2);
    // The last link expires 30 s from now; the one before it is taken until then.
    const [, middle, last] = records as [DeviceToken, DeviceToken, DeviceToken];
    store.tokens.find((t) => t.tokenId === middle.tokenId)!.revokedAt = undefined;
    store.tokens.find((t) => t.tokenId === middle.tokenId)!.expiresAt = at(30_000).toISOString();
    const before = await authenticate(`Bearer ${token}`, store, NOW, undefined, 'aws');
    expect(before).toMatchObject({
      error: expect.stringMatching(`by token ${middle.tokenId} .*: install the replacement`),
    });
    const after = await authenticate(`Bearer ${token}`, store, at(30_000), undefined, 'aws');
    expect(after).toMatchObject({ error: expect.stringContaining(`install token ${last.tokenId} on the device`) });
    expect(after).toEqual(await listSays(store, records[0]!, at(30_000)));
    // The token and the middle one held; the last one read when the walk first reached it.
    expect(store.reads()).toBe(3);
  });

  it('a change to the store is seen within the minute at the latest (the staleness the memo allows)', async () => {
    const store = countedReads(new MemoryTokenStore());
    const { token, records } = await chain(store, 1);
    const named = await authenticate(`Bearer ${token}`, store, NOW);
    expect(named).toMatchObject({ error: expect.stringContaining('install the replacement on the device') });
    await store.revoke(records[1]!.tokenId, at(1000).toISOString());
    expect(await authenticate(`Bearer ${token}`, store, at(REFUSAL_MEMO_TTL_MS - 1))).toEqual(named);
    expect(await authenticate(`Bearer ${token}`, store, at(REFUSAL_MEMO_TTL_MS))).toMatchObject({
      error: expect.stringContaining('but no replacement is active any more'),
    });
  });

  it('a clock set back (CRS_TEST_CLOCK) reads again: a token taken at that instant is taken', async () => {
    const store = countedReads(new MemoryTokenStore());
    const { token } = await chain(store, 1, { expiresAt: NOW.toISOString() });
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({ ok: false, status: 403 });
    expect(await authenticate(`Bearer ${token}`, store, at(-1))).toMatchObject({ ok: true, deviceId: 'gw-1' });
    expect(store.reads()).toBe(3);
  });

  it(`holds ${REFUSAL_MEMO_SIZE} tokens at most, the first read dropped first (a use does not keep it)`, async () => {
    const store = countedReads(new MemoryTokenStore());
    const chains: Awaited<ReturnType<typeof chain>>[] = [];
    for (let i = 0; i <= REFUSAL_MEMO_SIZE; i++) chains.push(await chain(store, 1));
    const refuse = (i: number) => authenticate(`Bearer ${chains.at(i)!.token}`, store, NOW);
    for (let i = 0; i < REFUSAL_MEMO_SIZE; i++) await refuse(i);
    expect(store.reads()).toBe(2 * REFUSAL_MEMO_SIZE);
    await refuse(0); // held: nothing read
    expect(store.reads()).toBe(2 * REFUSAL_MEMO_SIZE);
    await refuse(REFUSAL_MEMO_SIZE); // one more: the first read goes, though just used
    expect(store.reads()).toBe(2 * (REFUSAL_MEMO_SIZE + 1));
    await refuse(1);
    await refuse(REFUSAL_MEMO_SIZE);
    expect(store.reads()).toBe(2 * (REFUSAL_MEMO_SIZE + 1));
    await refuse(0);
    expect(store.reads()).toBe(2 * (REFUSAL_MEMO_SIZE + 2));
  });

  it('the bounds docs/security.md says: a minute on the server clock, 1,000 tokens', async () => {
    // Mutation run (2026-12-07): every test read the constants, so ten minutes (or 100,000 tokens) survived them.
    expect(REFUSAL_MEMO_SIZE).toBe(1000);
    const store = countedReads(new MemoryTokenStore());
    const { token } = await chain(store, 1);
    for (const ms of [0, 59_999]) await authenticate(`Bearer ${token}`, store, at(ms));
    expect(store.reads()).toBe(2);
    await authenticate(`Bearer ${token}`, store, at(60_000));
    expect(store.reads()).toBe(4);
  });

  it('a refusal read again by a request sent meanwhile is held as of that read (the order the first read goes)', async () => {
    // Mutation run (2026-12-07): a refusal held again in its old place (set() without moving it) survived every test.
    // Two requests with the same token in flight: the second's read, ended after another token's, is held after it.
    const store = countedReads(new MemoryTokenStore());
    const x = await chain(store, 1);
    const y = await chain(store, 1);
    const others: Awaited<ReturnType<typeof chain>>[] = [];
    for (let i = 0; i < REFUSAL_MEMO_SIZE - 1; i++) others.push(await chain(store, 1));
    const refuse = (token: string) => authenticate(`Bearer ${token}`, store, NOW);
    const gates: (() => void)[] = [];
    const byHash = store.findByHash;
    store.findByHash = (hash) => new Promise<void>((open) => gates.push(open)).then(() => byHash(hash));
    const first = refuse(x.token);
    const second = refuse(x.token);
    // Both wait on their read of the token (taken synchronously up to it).
    expect(gates).toHaveLength(2);
    gates[0]!();
    await first;
    store.findByHash = byHash;
    await refuse(y.token);
    gates[1]!();
    await second;
    // Held: y, then x (its second read); the others fill the memo and one more drops the first held, y.
    for (const t of others) await refuse(t.token);
    const reads = store.reads();
    await refuse(x.token);
    expect(store.reads()).toBe(reads);
    await refuse(y.token);
    expect(store.reads()).toBe(reads + 2);
  });
});

describe('what is never held: each request reads as before', () => {
  let store: MemoryTokenStore & { reads: () => number };
  beforeEach(() => {
    store = countedReads(new MemoryTokenStore());
  });

  it('an unknown token (one just issued may not be readable yet): looked up every time, taken once stored', async () => {
    const { token, record } = issueToken('gw-1', NOW, { kind: 'monitor' });
    for (let i = 0; i < 5; i++)
      expect(await authenticate(`Bearer ${token}`, store, NOW)).toEqual({
        ok: false,
        status: 403,
        error: TOKEN_UNKNOWN(),
      });
    expect(store.reads()).toBe(5);
    await store.put(record);
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({ ok: true });
  });

  it('a store that cannot be read (503), and a chain it could not read to its end (unknown)', async () => {
    const { token } = await chain(store, 2);
    store.failWith = new Error('throttled');
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({ status: 503 });
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({ status: 503 });
    store.failWith = undefined;
    const byId = store.findById;
    store.findById = () => Promise.reject(new Error('throttled'));
    const unknown = await authenticate(`Bearer ${token}`, store, NOW);
    expect(unknown).toMatchObject({ error: expect.stringContaining('crs token list names the one active now') });
    store.findById = byId;
    const reads = store.reads();
    const named = await authenticate(`Bearer ${token}`, store, NOW);
    expect(named).toMatchObject({ error: expect.stringContaining('and that one replaced since: install token') });
    expect(store.reads()).toBe(reads + 3);
    expect(await authenticate(`Bearer ${token}`, store, NOW)).toEqual(named);
    expect(store.reads()).toBe(reads + 3);
  });

  it('a held refusal whose walk, going further within the minute, cannot read a link is held no more', async () => {
    // Mutation run (2026-12-07): a memo kept on an unknown chain survived every test. The middle link is taken for
    // 30 s; then the walk reads the last one, which fails: the token's record is read again at the next request.
    const { token, records } = await chain(store, 2);
    const [, middle, last] = records as [DeviceToken, DeviceToken, DeviceToken];
    store.tokens.find((t) => t.tokenId === middle.tokenId)!.revokedAt = undefined;
    store.tokens.find((t) => t.tokenId === middle.tokenId)!.expiresAt = at(30_000).toISOString();
    await authenticate(`Bearer ${token}`, store, NOW);
    expect(store.reads()).toBe(2);
    const byId = store.findById;
    store.findById = (id: string) => (id === last.tokenId ? Promise.reject(new Error('throttled')) : byId(id));
    expect(await authenticate(`Bearer ${token}`, store, at(30_000))).toMatchObject({
      error: expect.stringContaining('crs token list names the one active now'),
    });
    store.findById = byId;
    const reads = store.reads();
    const named = await authenticate(`Bearer ${token}`, store, at(31_000), undefined, 'aws');
    expect(named).toEqual(await listSays(store, records[0]!, at(31_000)));
    // Read afresh: the token, the middle link and the last (held, only the last had been read).
    expect(store.reads() - reads).toBe(3);
  });

  it('a chain past the bound (unknown): walked every time', async () => {
    const { token } = await chain(store, 12);
    for (let i = 0; i < 3; i++)
      expect(await authenticate(`Bearer ${token}`, store, NOW)).toMatchObject({
        error: expect.stringContaining('crs token list names the one active now'),
      });
    expect(store.reads()).toBe(3 * 9);
  });

  it('a token taken, and one revoked that was never replaced: read every time', async () => {
    const taken = issueToken('gw-1', NOW, { kind: 'monitor' });
    const revoked = issueToken('gw-1', NOW, { kind: 'monitor' });
    await store.put(taken.record);
    await store.put({ ...revoked.record, revokedAt: NOW.toISOString() });
    for (let i = 0; i < 3; i++) {
      expect(await authenticate(`Bearer ${taken.token}`, store, NOW)).toMatchObject({ ok: true });
      expect(await authenticate(`Bearer ${revoked.token}`, store, NOW)).toMatchObject({ ok: false, status: 403 });
    }
    expect(store.reads()).toBe(6);
  });

  it('each store holds its own (a process has one: a Lambda container, a crs serve)', async () => {
    const { token } = await chain(store, 1);
    await authenticate(`Bearer ${token}`, store, NOW);
    const other = countedReads(new MemoryTokenStore());
    for (const t of store.tokens) await other.put(t);
    await authenticate(`Bearer ${token}`, other, NOW);
    expect([store.reads(), other.reads()]).toEqual([2, 2]);
  });
});
