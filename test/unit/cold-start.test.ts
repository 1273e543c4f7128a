import { describe, expect, it } from 'vitest';
import { coldStart } from '#adapters/aws/cold-start.ts';

describe('coldStart (what a Lambda builds once per container)', () => {
  it('builds once for every invocation, also concurrent ones', async () => {
    let built = 0;
    const get = coldStart(async () => ++built);
    expect(await Promise.all([get(), get(), get()])).toEqual([1, 1, 1]);
    expect(await get()).toBe(1);
  });

  it('tries a failed cold start again on the next invocation', async () => {
    let attempts = 0;
    const get = coldStart(async () => {
      if (++attempts === 1) throw new Error('secret unreadable');
      return 'pager';
    });
    await expect(get()).rejects.toThrow('secret unreadable');
    expect(await get()).toBe('pager');
    expect(await get()).toBe('pager');
    expect(attempts).toBe(2);
  });
});
