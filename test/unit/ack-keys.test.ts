// The acknowledge-link keys a warm process holds (shared/app/ack-keys.ts): read again as they age, never at the
// price of a page. Through the handlers: handlers-notify, handlers-ack, embedded-ack-key.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AckKeys } from '#app/ack.ts';
import { AckKeyring, sameAckKeys, type AckKeysSource } from '#app/ack-keys.ts';
import { ACK_SECRET_FORMAT, ackKeysSource, newAckSecretValue } from '#adapters/aws/ack-secret.ts';
import { ackKeyFilesSource } from '#hosts/embedded/ack-key.ts';

const k1 = Buffer.alloc(32, 1);
const k2 = Buffer.alloc(32, 2);
const k3 = Buffer.alloc(32, 3);
const source = (read: () => Promise<{ current: Buffer }>, extra: Partial<AckKeysSource> = {}): AckKeysSource => ({
  read,
  readAt: 0,
  maxAgeMs: 300_000,
  minGapMs: 30_000,
  ...extra,
});

describe('AckKeyring', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a re-read that hangs is given up after readTimeoutMs: the keys held sign, and the failure is told', async () => {
    vi.useFakeTimers();
    const failures: string[] = [];
    const ring = new AckKeyring(
      { current: k1 },
      source(() => new Promise(() => {}), {
        readTimeoutMs: 2_000,
        onReadFailed: (err) => failures.push((err as Error).message),
      }),
    );
    let keys: Buffer | undefined;
    void ring.keys(300_000).then((k) => {
      keys = k.current;
    });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(keys).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(keys).toEqual(k1);
    expect(failures).toEqual(['the keys were not read within 2000 ms']);
  });

  it('a re-read within readTimeoutMs gives the new keys', async () => {
    const ring = new AckKeyring(
      { current: k1 },
      source(async () => ({ current: k2 }), { readTimeoutMs: 2_000 }),
    );
    expect((await ring.keys(299_999)).current).toEqual(k1);
    expect((await ring.keys(300_000)).current).toEqual(k2);
  });
});

describe('the acknowledge-link keys read again: pinned by a mutation run', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A source whose reads give `next()` (or throw what it throws), counted. */
  const counted = (next: () => AckKeys, extra: Partial<AckKeysSource> = {}) => {
    const c: { reads: number; source: AckKeysSource } = { reads: 0, source: source(async () => next(), extra) };
    c.source.read = async () => {
      c.reads++;
      return next();
    };
    return c;
  };

  it('reads again at once when the clock was stepped back to before the read (a time after now is no age)', async () => {
    const c = counted(() => ({ current: k2 }), { readAt: 100_000 });
    const ring = new AckKeyring({ current: k1 }, c.source);
    expect((await ring.keys(100_000 + 299_999)).current).toEqual(k1);
    expect((await ring.keys(99_999)).current).toEqual(k2);
    expect(c.reads).toBe(1);
  });

  it('after a read, reads again only once the keys it gave are maxAgeMs old, not at each minGapMs', async () => {
    const c = counted(() => ({ current: k2 }));
    const ring = new AckKeyring({ current: k1 }, c.source);
    await ring.keys(300_000);
    await ring.keys(300_000 + 30_000);
    await ring.keys(300_000 + 299_999);
    expect(c.reads).toBe(1);
    await ring.keys(600_000);
    expect(c.reads).toBe(2);
  });

  it('after a failed read, tries again no sooner than minGapMs from it; a failed or skipped re-read gives nothing', async () => {
    let fail = true;
    const c = counted(() => {
      if (fail) throw new Error('throttled');
      return { current: k2 };
    });
    const ring = new AckKeyring({ current: k1 }, c.source);
    expect(await ring.reread(10_000)).toBeUndefined(); // within minGapMs of the keys' read: not read
    expect(c.reads).toBe(0);
    expect((await ring.keys(300_000)).current).toEqual(k1);
    expect((await ring.keys(329_999)).current).toEqual(k1);
    expect(await ring.reread(329_999)).toBeUndefined();
    expect(c.reads).toBe(1);
    expect(await ring.reread(330_000)).toBeUndefined(); // read, and failed
    expect(c.reads).toBe(2);
    fail = false;
    expect((await ring.reread(360_000))?.current).toEqual(k2);
  });

  it('a link issued here that the keys held call forged reads again after issuedLinkGapMs, a forgery after minGapMs', async () => {
    // Read k1 at 0; a key put at 5 s signs a page; its link is answered at 6 s (2026-12-06: refused for 30 s).
    const c = counted(() => ({ current: k2, previous: k1 }), { issuedLinkGapMs: 1_000 });
    const ring = new AckKeyring({ current: k1 }, c.source);
    expect(await ring.reread(6_000)).toBeUndefined(); // a random forgery: within minGapMs, no read
    expect(c.reads).toBe(0);
    expect((await ring.reread(6_000, true))?.current).toEqual(k2);
    expect(c.reads).toBe(1);
    // One genuine link under a dropped key, answered again and again: a read at most every issuedLinkGapMs.
    expect(await ring.reread(6_999, true)).toBeUndefined();
    expect(await ring.reread(7_000, false)).toBeUndefined();
    expect(c.reads).toBe(1);
    expect((await ring.reread(7_000, true))?.current).toEqual(k2);
    expect(c.reads).toBe(2);
    expect(await ring.reread(36_999)).toBeUndefined(); // a forgery: minGapMs from the last read
    expect(c.reads).toBe(2);
    expect((await ring.reread(37_000))?.current).toEqual(k2);
    expect(c.reads).toBe(3);
  });

  it('without issuedLinkGapMs, a link issued here waits minGapMs like a forgery', async () => {
    const c = counted(() => ({ current: k2 }));
    const ring = new AckKeyring({ current: k1 }, c.source);
    expect(await ring.reread(29_999, true)).toBeUndefined();
    expect(c.reads).toBe(0);
    expect((await ring.reread(30_000, true))?.current).toEqual(k2);
    expect(c.reads).toBe(1);
  });

  it('a link issued here shares a read under way', async () => {
    let reads = 0;
    let give: (keys: AckKeys) => void = () => undefined;
    const ring = new AckKeyring(
      { current: k1 },
      source(
        () => {
          reads++;
          return new Promise((resolve) => {
            give = resolve;
          });
        },
        { issuedLinkGapMs: 1_000 },
      ),
    );
    const first = ring.reread(6_000, true);
    const second = ring.reread(6_000, true);
    give({ current: k2 });
    expect([(await first)?.current, (await second)?.current]).toEqual([k2, k2]);
    expect(reads).toBe(1);
  });

  it('callers at the same time share one read, and each gets the keys it gives', async () => {
    let reads = 0;
    let give: (keys: AckKeys) => void = () => undefined;
    const ring = new AckKeyring(
      { current: k1 },
      source(() => {
        reads++;
        return new Promise((resolve) => {
          give = resolve;
        });
      }),
    );
    const first = ring.keys(300_000);
    const second = ring.keys(300_000);
    const forged = ring.reread(300_000);
    give({ current: k2 });
    expect([(await first).current, (await second).current, (await forged)?.current]).toEqual([k2, k2, k2]);
    expect(reads).toBe(1);
  });

  it('tells onRead whether the keys changed: the current key, a previous key added, dropped or replaced', async () => {
    const reads: AckKeys[] = [
      { current: k1 },
      { current: k2 },
      { current: k2, previous: k1 },
      { current: k2, previous: k1 },
      { current: k2, previous: k3 },
      { current: k2 },
    ];
    const told: boolean[] = [];
    const ring = new AckKeyring(
      { current: k1 },
      source(async () => reads.shift()!, { onRead: (_keys, changed) => void told.push(changed) }),
    );
    for (let i = 1; i <= 6; i++) await ring.keys(i * 300_000);
    expect(told).toEqual([false, true, true, false, true, true]);
    expect(sameAckKeys({ current: k1, previous: k2 }, { current: k1, previous: k2 })).toBe(true);
    expect(sameAckKeys({ current: k1 }, { current: k1, previous: k2 })).toBe(false);
    expect(sameAckKeys({ current: k1, previous: k2 }, { current: k1 })).toBe(false);
  });

  it('a callback that throws changes nothing: the keys read are taken, and a failed read still gives the keys held', async () => {
    const failed: unknown[] = [];
    let fail = false;
    const ring = new AckKeyring(
      { current: k1 },
      source(
        async () => {
          if (fail) throw new Error('throttled');
          return { current: k2 };
        },
        {
          onRead: () => {
            throw new Error('a metric that cannot be written');
          },
          onReadFailed: (err) => {
            failed.push(err);
            throw new Error('a log that cannot be written');
          },
        },
      ),
    );
    expect((await ring.reread(30_000))?.current).toEqual(k2);
    expect(failed).toEqual([]);
    fail = true;
    expect((await ring.keys(330_000)).current).toEqual(k2);
    expect(failed).toHaveLength(1);
  });

  it('leaves no timer behind once a bounded read is answered', async () => {
    vi.useFakeTimers();
    const ring = new AckKeyring(
      { current: k1 },
      source(async () => ({ current: k2 }), { readTimeoutMs: 2_000 }),
    );
    expect((await ring.keys(300_000)).current).toEqual(k2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("AWS: 5 minutes' age, 30 s between reads (1 s for a link issued here), a read given up after 2 s, from the cold start's read", () => {
    const read = async () => ({ current: k1 });
    const onReadFailed = () => undefined;
    expect(ackKeysSource(read, 123, onReadFailed)).toEqual({
      read,
      readAt: 123,
      maxAgeMs: 300_000,
      minGapMs: 30_000,
      issuedLinkGapMs: 1_000,
      readTimeoutMs: 2_000,
      onReadFailed,
    });
  });

  it("crs serve: 2 s from the start's read; the log says a change of keys once, and each new failure once", () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-ack-keys-'));
    try {
      const logged: string[] = [];
      const s = ackKeyFilesSource(dir, { current: k1 }, 123, (line) => logged.push(line));
      expect([s.readAt, s.maxAgeMs, s.minGapMs]).toEqual([123, 2_000, 2_000]);
      s.onRead!({ current: k1 }, false);
      expect(logged).toEqual([]);
      s.onRead!({ current: k2 }, true);
      s.onRead!({ current: k2 }, false);
      expect(logged).toHaveLength(1);
      s.onReadFailed!(new Error(`${dir}/ack.key is missing`));
      s.onReadFailed!(new Error(`${dir}/ack.key is missing`));
      expect(logged.slice(1)).toEqual([
        `crs serve: acknowledge-link keys not read again (${dir}/ack.key is missing); links are signed and verified with the keys in hand until the files are mended`,
      ]);
      s.onRead!({ current: k2 }, false); // mended: the same failure again is said again
      s.onReadFailed!(new Error(`${dir}/ack.key is missing`));
      expect(logged).toHaveLength(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A mutation run (2026-12-07) found the value crs ack-key rotate --backend aws puts unpinned beyond its length: one
// letter or digit never drawn (a smaller alphabet, a weaker key) passed every test.
describe('the value crs ack-key rotate --backend aws puts', () => {
  it('is 64 letters and digits, the stack format, each of the 62 drawn', () => {
    const values = Array.from({ length: 200 }, newAckSecretValue);
    for (const v of values) expect(v).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(values[0]!.length).toBe(ACK_SECRET_FORMAT.passwordLength);
    // 12,800 draws: a character of 62 missing by chance has a probability below 1e-80.
    expect(new Set(values.join('')).size).toBe(62);
  });
});
