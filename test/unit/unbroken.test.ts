// The rule of what a phone keeps on one line (shared/domain/unbroken.ts), read by the ack page and the board.
import { describe, expect, it } from 'vitest';
import { unbrokenPieces } from '#domain/unbroken.ts';

const kept = (s: string) => unbrokenPieces(s).flatMap((p) => (p.keep ? [p.text] : []));

describe('what a line keeps whole', () => {
  it.each([
    ['fever 39.1 °C at 2026-12-06 17:45 CET', ['39.1 °C', '2026-12-06 17:45 CET']],
    ['at 2026-12-06 03:12 GMT+5:30.', ['2026-12-06 03:12 GMT+5:30']],
    ['(systolic < 90 or MAP < 65)', ['systolic < 90', 'MAP < 65']],
    ['FiO2 0.45 (>= 0.4)', ['FiO2 0.45', '>= 0.4']],
    ['after 1-2 doses of tocilizumab', ['1-2 doses']],
    ['(1 in 24 h); repeat every 8 h; in 30 s; 5 min ago', ['24 h', '8 h', '30 s', '5 min']],
    [
      '12 mg/kg if < 30 kg, max 800 mg; 0.1 mcg/kg/min; 4 L/min; SpO2 92 %',
      ['12 mg/kg', 'if < 30 kg', '800 mg', '0.1 mcg/kg/min', '4 L/min', '92 %'],
    ],
    // Not a unit: a word that starts like one, an id, a grade.
    ['3 hours, 2 months, bed H4-12, CRS grade 3, 20 mg/dL', []],
  ])('%s', (text, pieces) => {
    expect(kept(text)).toEqual(pieces);
    expect(
      unbrokenPieces(text)
        .map((p) => p.text)
        .join(''),
    ).toBe(text);
  });
});
