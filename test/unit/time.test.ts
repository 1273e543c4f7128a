import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iso } from '#domain/time.ts';

const reference = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('iso', () => {
  it('formats like Date#toISOString, without zero milliseconds', () => {
    expect(iso(Date.parse('2026-01-10T08:00:00Z'))).toBe('2026-01-10T08:00:00Z');
    expect(iso(Date.parse('2024-02-29T23:59:59.007Z'))).toBe('2024-02-29T23:59:59.007Z');
    expect(iso(0)).toBe('1970-01-01T00:00:00Z');
  });

  it('agrees with Date#toISOString for any time from year 0001 to 9999', () => {
    const min = Date.parse('0001-01-01T00:00:00Z');
    const max = Date.parse('9999-12-31T23:59:59.999Z');
    fc.assert(
      fc.property(fc.integer({ min, max }), (ms) => {
        expect(iso(ms)).toBe(reference(ms));
      }),
      { numRuns: 20_000 },
    );
  });

  it('stays exact when times repeat or share a memo slot (the same second, or 4,096 s apart)', () => {
    const t = Date.parse('2026-11-26T10:00:00Z');
    const clashing = [t, t + 1, t + 999, t + 4_096_000, t - 4_096_000, t + 1, t];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...clashing), { minLength: 1, maxLength: 30 }), (times) => {
        for (const ms of times) expect(iso(ms)).toBe(reference(ms));
      }),
    );
  });
});
