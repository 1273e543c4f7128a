// Time arithmetic on epoch milliseconds. The domain never reads a clock: every time comes in with the data.
import * as z from './zod.ts';

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

/** Built on first use: only commands read times people type, and building it would cost every cold start. */
let withOffset: ReturnType<typeof z.iso.datetime> | undefined;

/**
 * A time a person types (a command's option): RFC 3339 with a zone offset, else NaN. Date.parse alone would read
 * a time without an offset in the machine's own zone, so the same command would mean another time elsewhere.
 */
export function parseTimeWithOffset(value: string): number {
  withOffset ??= z.iso.datetime({ offset: true });
  return withOffset.safeParse(value).success ? Date.parse(value) : Number.NaN;
}

// ---------------------------------------------------------------------------------------- times people read

/** The zone times are shown in when the site configures none (`site.timeZone`). */
export const DEFAULT_TIME_ZONE = 'UTC';

// Building an Intl.DateTimeFormat costs far more than using one: one per zone, kept.
const siteFormats = new Map<string, Intl.DateTimeFormat>();

function siteFormat(timeZone: string): Intl.DateTimeFormat {
  let f = siteFormats.get(timeZone);
  if (!f) {
    // en-GB: 24-hour parts and the zone abbreviations a European site expects (CET, CEST, GMT, BST, UTC); a zone
    // without one is written as its offset (GMT-5).
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
    siteFormats.set(timeZone, f);
  }
  return f;
}

/**
 * Whether `name` is an IANA time zone name this runtime knows (Europe/Paris, America/New_York, UTC). Fixed offsets
 * (+01:00) are not: a site's clock follows its daylight saving time.
 */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return false;
  try {
    siteFormat(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * A time as people read it, in every page (SMS, email, webhook summary), on the acknowledge page and on the
 * board: the site's wall clock to the minute, with the zone: `2026-12-01 09:20 CET`. The board writes the same
 * format in the browser (shared/web/board.js, siteTime). Machine-readable fields stay RFC 3339 UTC (iso).
 */
export function formatSiteTime(at: string | number, timeZone: string): string {
  const ms = typeof at === 'number' ? at : parseTime(at);
  if (!Number.isFinite(ms)) return String(at);
  const slot = Math.floor(ms / MINUTE) & (SITE_SLOTS - 1);
  if (siteAt[slot] === ms && siteZone[slot] === timeZone) return siteText[slot]!;
  const p: Record<string, string> = {};
  for (const part of siteFormat(timeZone).formatToParts(ms)) p[part.type] = part.value;
  const text = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
  siteAt[slot] = ms;
  siteZone[slot] = timeZone;
  siteText[slot] = text;
  return text;
}

// A page names the times of its reasons, which stay the same from page to page while their values do (Intl's
// formatToParts is slow): the latest written, in a small direct-mapped memo as iso's (slot by minute).
const SITE_SLOTS = 1024;
const siteAt = new Float64Array(SITE_SLOTS).fill(Number.NaN);
const siteZone: string[] = new Array<string>(SITE_SLOTS).fill('');
const siteText: string[] = new Array<string>(SITE_SLOTS).fill('');
