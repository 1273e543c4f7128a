// quoted (shared/domain/printable.ts) on its own: what every device answer and CLI message quotes of a value.
// A mutation run of 2026-12-07 found its edges pinned by no test (the callers' tests use plain ASCII).
import { describe, expect, it } from 'vitest';
import { quoted, SENDER_MOST } from '#domain/printable.ts';

describe('quoted', () => {
  it('cuts between code points, never inside a surrogate pair', () => {
    const face = '\u{1F469}'; // two UTF-16 units
    // The pair straddles the bound: it goes whole, the cut one short.
    expect(quoted(`${'x'.repeat(SENDER_MOST - 1)}${face}tail`, SENDER_MOST)).toBe(
      `"${'x'.repeat(SENDER_MOST - 1)}..."`,
    );
    // The pair ends at the bound: kept whole.
    expect(quoted(`${'x'.repeat(SENDER_MOST - 2)}${face}tail`, SENDER_MOST)).toBe(
      `"${'x'.repeat(SENDER_MOST - 2)}${face}..."`,
    );
    // At most `most` characters: one that long is not cut.
    expect(quoted('x'.repeat(SENDER_MOST), SENDER_MOST)).toBe(`"${'x'.repeat(SENDER_MOST)}"`);
  });

  it('escapes C0 and C1 controls and format characters', () => {
    expect(quoted('a\u0001b\u0085c\u202ed\u200b')).toBe('"a\\u0001b\\u0085c\\u202ed\\u200b"');
  });

  it('says what is no string by its kind', () => {
    expect([[1, 2], {}, null, 7, true, undefined].map((v) => quoted(v))).toEqual([
      'a list',
      'an object',
      'null',
      '7',
      'true',
      'undefined',
    ]);
  });
});
