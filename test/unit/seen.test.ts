// The window of message identities: exact answers whichever state a lookup is made from, old or new, stored or
// live, with reused ids (one messageId, several digests) among them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addSeen, hasSeen, identify, seenCount, type SeenIds } from '#domain/seen.ts';

/** The identities a window holds, as a plain list of [messageId, digest]. */
const plainOf = (w: SeenIds) =>
  w.flatMap((chunk) => chunk.flatMap((id, i) => (i % 2 === 0 ? [[id, chunk[i + 1]!] as const] : [])));

function plainIdentify(plain: (readonly [string, string])[], id: string, digest: string, prior?: string[]) {
  if (plain.some(([i, d]) => i === id && d === digest) || prior?.includes(digest)) return 'duplicate';
  return plain.some(([i]) => i === id) || (prior?.length ?? 0) > 0 ? 'reused' : 'new';
}

describe('the message identity window', () => {
  it('answers exactly like a plain list of the identities it holds, for every state along the way', () => {
    let evicting = 0;
    fc.assert(
      fc.property(
        // size 'max': fast-check's default size draws at most 10 entries, and a window of 16 to 100 forgets
        // nothing before 65 to 161 (it drops whole chunks of 32).
        fc.array(fc.tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 2 })), {
          maxLength: 400,
          size: 'max',
        }),
        fc.integer({ min: 16, max: 100 }),
        (ids, window) => {
          const history: SeenIds[] = [[]];
          for (const [n, d] of ids) {
            const cur = history.at(-1)!;
            if (identify(cur, `id ${n}`, `d${d}`) !== 'duplicate')
              history.push(addSeen(cur, `id ${n}`, `d${d}`, window));
          }
          if (seenCount(history.at(-1)!) < history.length - 1) evicting++;
          // Ask old states too (their indexes were handed on) and copies as if read back from storage.
          for (const w of [...history].reverse()) {
            const plain = plainOf(w);
            const stored = JSON.parse(JSON.stringify(w)) as SeenIds;
            // One comparison per state (an expect per lookup made the longer runs slow), each answer labelled.
            const got: string[] = [];
            const want: string[] = [];
            for (let n = 0; n <= 120; n += 7) {
              for (const d of ['d0', 'd1', 'd2']) {
                got.push(`id ${n} ${d}: ${identify(w, `id ${n}`, d)}`);
                want.push(`id ${n} ${d}: ${plainIdentify(plain, `id ${n}`, d)}`);
                got.push(`id ${n} ${d} stored: ${identify(stored, `id ${n}`, d)}`);
                want.push(`id ${n} ${d} stored: ${plainIdentify(plain, `id ${n}`, d)}`);
                got.push(`id ${n} ${d} prior d1: ${identify(w, `id ${n}`, d, ['d1'])}`);
                want.push(`id ${n} ${d} prior d1: ${plainIdentify(plain, `id ${n}`, d, ['d1'])}`);
              }
              got.push(`id ${n} seen: ${hasSeen(w, `id ${n}`)}`);
              want.push(`id ${n} seen: ${plain.some(([i]) => i === `id ${n}`)}`);
            }
            expect(got).toEqual(want);
          }
        },
      ),
      // A failure is reported as found, unshrunk: shrinking re-runs long histories for minutes (and fc.assert is
      // synchronous: nothing could stop it). No time limit: a loaded machine is slow, not wrong.
      { numRuns: 60, endOnFailure: true },
    );
    // About half the runs go past the window (the index then forgets what the window drops, reused ids among it).
    expect(evicting).toBeGreaterThan(15);
  });

  it('remembers at least the last `window` identities, and fewer than window + 64', () => {
    let w: SeenIds = [];
    for (let i = 0; i < 2000; i++) {
      w = addSeen(w, `m${i}`, 'digest', 500);
      const count = seenCount(w);
      if (i < 500) expect(count).toBe(i + 1); // every identity kept until the window is full
      if (i >= 500) expect(count).toBeGreaterThanOrEqual(500);
      expect(count).toBeLessThan(564);
    }
    expect(hasSeen(w, 'm1999')).toBe(true);
    expect(hasSeen(w, 'm1500')).toBe(true);
    expect(hasSeen(w, 'm1000')).toBe(false);
  });

  it('tells a duplicate (same id, same digest), a reused id (same id, other digest) and a new message apart', () => {
    let w: SeenIds = [];
    w = addSeen(w, 'a', 'x', 16);
    expect(identify(w, 'a', 'x')).toBe('duplicate');
    expect(identify(w, 'a', 'y')).toBe('reused');
    expect(identify(w, 'b', 'x')).toBe('new');
    // A backend's long-term record of the id counts as the window does.
    expect(identify(w, 'b', 'x', ['x'])).toBe('duplicate');
    expect(identify(w, 'b', 'y', ['x'])).toBe('reused');
    // Both contents of a reused id stay known until each leaves the window.
    w = addSeen(w, 'a', 'y', 16);
    expect([identify(w, 'a', 'x'), identify(w, 'a', 'y'), identify(w, 'a', 'z')]).toEqual([
      'duplicate',
      'duplicate',
      'reused',
    ]);
    for (let i = 0; i < 100; i++) w = addSeen(w, `m${i}`, 'd', 16);
    expect(identify(w, 'a', 'x')).toBe('new');
  });
});

describe('pinned by a mutation run', () => {
  it('takes an empty long-tail record of an id as none: a new message, not a reused id', () => {
    // A backend that found nothing for the id may hand an empty list; a reuse recorded then would be false.
    expect(identify([], 'a', 'x', [])).toBe('new');
    expect(identify(addSeen([], 'b', 'y', 16), 'a', 'x', [])).toBe('new');
  });
});
