// Arithmetic on measured values (a unit conversion, an estimate from a formula) rounds for floating-point noise
// only, never to a few decimals: a value rounded to two places can cross a grading threshold (64.955 mmHg is
// hypotension, 65.0 is not; an FiO2 of 0.3996 is Lee grade 2, 0.400 is grade 3).

/** `v` to 12 significant digits: (101.3 - 32) x 5/9 is 38.5, not 38.499999999999996; no measurement is changed. */
export const withoutFloatNoise = (v: number): number => Number(v.toPrecision(12));
