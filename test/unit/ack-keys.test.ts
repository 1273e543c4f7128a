// The acknowledge-link keys a warm process holds (shared/app/ack-keys.ts): read again as they age, never at the
// price of a page. Through the handlers: handlers-notify, handlers-ack, embedded-ack-key.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AckKeyring, type AckKeysSource } from '#app/ack-keys.ts';

const k1 = Buffer.alloc(32, 1);
const k2 = Buffer.alloc(32, 2);
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
