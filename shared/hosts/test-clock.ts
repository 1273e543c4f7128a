// The test clock's hook (CRS_TEST_CLOCK: POST /local/clock), as both hosts read its one parameter: crs serve's
// `stepMs` (either way) and the AWS host's `advanceMs` (forward only).
import { unknownKeys } from '#domain/unknown-keys.ts';

/**
 * The milliseconds to move the clock by, or the error to answer 400 with: a parameter the hook does not take (named),
 * a missing or empty one, one given twice, or one not a whole number at or above `min`. Until 2026-12-06 the other
 * host's name, or none, read as 0 and answered 200, and a test waited on a clock that had not moved; one given twice
 * was its first value, the second passed over (as no field sent twice is elsewhere).
 */
export function clockParameter(
  url: URL,
  name: string,
  min: number,
  wanted: string,
): { ms: number } | { error: string } {
  const unknown = [...new Set(url.searchParams.keys())].filter((k) => k !== name);
  if (unknown.length > 0) return { error: unknownKeys(unknown, [name], 'parameter') };
  if (url.searchParams.getAll(name).length > 1)
    return { error: `${name}: given twice: which value is meant would be a guess; send it once` };
  const given = url.searchParams.get(name);
  const ms = given === null || given.trim() === '' ? Number.NaN : Number(given);
  return Number.isInteger(ms) && ms >= min ? { ms } : { error: `${name}: ${wanted}` };
}
