// The messageId window: exact answers whichever state a lookup is made from, old or new, stored or live.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addSeen, hasSeen, seenCount, type SeenIds } from '../../shared/domain/seen.ts';

describe('the messageId window', () => {
  it('answers exactly like a plain list of the ids it holds, for every state along the way', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 400 }), fc.integer({ min: 16, max: 100 }), (ids, window) => {
        const history: SeenIds[] = [[]];
        for (const n of ids) {
          const cur = history.at(-1)!;
          if (!hasSeen(cur, `id-${n}`)) history.push(addSeen(cur, `id-${n}`, window));
        }
        // Ask old states too (their Sets were handed on) and copies as if read back from storage.
        for (const w of [...history].reverse()) {
          const plain = new Set(w.flat());
          const stored = JSON.parse(JSON.stringify(w)) as SeenIds;
          for (let n = 0; n <= 300; n += 7) {
            expect(hasSeen(w, `id-${n}`)).toBe(plain.has(`id-${n}`));
            expect(hasSeen(stored, `id-${n}`)).toBe(plain.has(`id-${n}`));
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('remembers at least the last `window` ids, and fewer than window + 64', () => {
    let w: SeenIds = [];
    for (let i = 0; i < 2000; i++) {
      w = addSeen(w, `m${i}`, 500);
      const count = seenCount(w);
      expect(count).toBe(Math.min(i + 1, count));
      if (i >= 500) expect(count).toBeGreaterThanOrEqual(500);
      expect(count).toBeLessThan(564);
    }
    expect(hasSeen(w, 'm1999')).toBe(true);
    expect(hasSeen(w, 'm1500')).toBe(true);
    expect(hasSeen(w, 'm1000')).toBe(false);
  });
});
