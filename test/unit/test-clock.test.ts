// The test clock's one parameter (shared/hosts/test-clock.ts), as both hosts read it: the bounds a hand mutation run
// found untested (2026-12-06): the AWS host's least step, 0, taken; a fraction of a millisecond refused.
import { describe, expect, it } from 'vitest';
import { clockParameter } from '#hosts/test-clock.ts';

const WANTED = 'a whole number of milliseconds, 0 or more';
const advance = (query: string) =>
  clockParameter(new URL(`http://127.0.0.1/local/clock${query}`), 'advanceMs', 0, WANTED);

describe('clockParameter', () => {
  it('takes a whole number at or above the least: 0 moves nothing and is no error', () => {
    expect(advance('?advanceMs=0')).toEqual({ ms: 0 });
    expect(advance('?advanceMs=60000')).toEqual({ ms: 60_000 });
    expect(advance('?advanceMs=-1')).toEqual({ error: `advanceMs: ${WANTED}` });
  });

  it('refuses a fraction of a millisecond, and what is no number', () => {
    for (const given of ['1.5', '0.1', 'Infinity', 'abc'])
      expect(advance(`?advanceMs=${given}`), given).toEqual({ error: `advanceMs: ${WANTED}` });
  });

  // 2026-12-06: the first value was taken and the second passed over, as no field sent twice is elsewhere.
  it('refuses the parameter given twice, naming it, even with the same value', () => {
    for (const query of ['?advanceMs=1&advanceMs=2', '?advanceMs=5&advanceMs=5', '?advanceMs=1&advanceMs='])
      expect(advance(query), query).toEqual({
        error: 'advanceMs: given twice: which value is meant would be a guess; send it once',
      });
  });
});
