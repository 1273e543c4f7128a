// Time arithmetic on epoch milliseconds. The domain never reads a clock: every time comes in with the data.

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** RFC 3339 in UTC, without milliseconds when they are zero: 2026-01-10T08:00:00Z. */
export function iso(ms: number): string {
  const s = new Date(ms).toISOString();
  return s.endsWith('.000Z') ? `${s.slice(0, -5)}Z` : s;
}

/** Parses a contract timestamp (already validated as RFC 3339 with an offset). */
export function parseTime(value: string): number {
  return Date.parse(value);
}
