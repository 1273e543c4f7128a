// Time arithmetic on epoch milliseconds. The domain never reads a clock: every time comes in with the data.

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * RFC 3339 in UTC, without milliseconds when they are zero: 2026-01-10T08:00:00Z. Written out by hand because
 * it is on the hot path (every reason carries a time) and Date#toISOString is several times slower.
 */
export function iso(ms: number): string {
  const slot = Math.floor(ms / 1000) & (FORMATTED_SLOTS - 1);
  if (formattedAt[slot] === ms) return formatted[slot]!;
  const text = format(ms);
  formattedAt[slot] = ms;
  formatted[slot] = text;
  return text;
}

// A reason's time is written out again on every message until its value changes, so formatted times are kept
// in a small direct-mapped memo (slot by second; a clash just formats again).
const FORMATTED_SLOTS = 4096;
const formattedAt = new Float64Array(FORMATTED_SLOTS).fill(Number.NaN);
const formatted: string[] = new Array<string>(FORMATTED_SLOTS).fill('');

function format(ms: number): string {
  const days = Math.floor(ms / DAY);
  const rem = ms - days * DAY;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 1000 || year > 9999 || !Number.isFinite(ms)) {
    const s = new Date(ms).toISOString();
    return s.endsWith('.000Z') ? `${s.slice(0, -5)}Z` : s;
  }
  const h = Math.floor(rem / HOUR);
  const m = Math.floor((rem % HOUR) / MINUTE);
  const sec = Math.floor((rem % MINUTE) / 1000);
  const milli = rem % 1000;
  const frac = milli === 0 ? '' : `.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`;
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(m)}:${pad2(sec)}${frac}Z`;
}

/** Parses a contract timestamp (already validated as RFC 3339 with an offset). */
export function parseTime(value: string): number {
  return Date.parse(value);
}
