// Time arithmetic on epoch milliseconds. The domain never reads a clock: every time comes in with the data.

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

// Two digits, 00-99: from a table, not a new string for each field of each time written.
const PAD2 = Array.from({ length: 100 }, (_, n) => (n < 10 ? `0${n}` : `${n}`));

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

// The clock of every message is a new time (the memo above misses it): the date and time to the minute are written
// once a minute, and only the seconds for each time in that minute.
let minuteOf = Number.NaN;
let minuteText = '';

function format(ms: number): string {
  const minute = Math.floor(ms / MINUTE);
  if (minute !== minuteOf) {
    const text = minuteFormat(ms);
    if (text === undefined) {
      const s = new Date(ms).toISOString();
      return s.endsWith('.000Z') ? `${s.slice(0, -5)}Z` : s;
    }
    minuteOf = minute;
    minuteText = text;
  }
  const rem = ms - minute * MINUTE;
  const sec = Math.floor(rem / 1000);
  const milli = rem % 1000;
  const frac = milli === 0 ? '' : `.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`;
  return `${minuteText}${PAD2[sec]}${frac}Z`;
}

/** `2026-01-10T08:00:` for a time in years 1000-9999; undefined for any other (Date writes those). */
function minuteFormat(ms: number): string | undefined {
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
  if (year < 1000 || year > 9999 || !Number.isFinite(ms)) return undefined;
  const h = Math.floor(rem / HOUR);
  const m = Math.floor((rem % HOUR) / MINUTE);
  return `${year}-${PAD2[month]}-${PAD2[day]}T${PAD2[h]}:${PAD2[m]}:`;
}

/**
 * Parses a contract timestamp (already validated as RFC 3339 with an offset). The usual spellings (seconds, no
 * fraction or milliseconds, then Z or an offset) are read by hand: every message is parsed, and Date.parse costs
 * as much as a tenth of the reducer. Anything else goes to Date.parse, which the hand reading agrees with wherever
 * it answers (test/unit/time.test.ts).
 */
export function parseTime(value: string): number {
  const ms = usualTime(value);
  return Number.isNaN(ms) ? Date.parse(value) : ms; // NaN: not a usual spelling
}

/** Two decimal digits at i, or -1. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** YYYY-MM-DDTHH:MM:SS[.mmm](Z|+HH:MM|-HH:MM) with a real date, year 1000-9999, as epoch ms; anything else NaN. */
function usualTime(s: string): number {
  const n = s.length;
  if (n < 20 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84) return Number.NaN;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return Number.NaN;
  const century = two(s, 0);
  const yy = two(s, 2);
  const month = two(s, 5);
  const day = two(s, 8);
  const hour = two(s, 11);
  const minute = two(s, 14);
  const second = two(s, 17);
  if (century < 10 || yy < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return Number.NaN;
  if (minute < 0 || minute > 59 || second < 0 || second > 59) return Number.NaN;
  const year = century * 100 + yy;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31))
    return Number.NaN;
  let i = 19;
  let milli = 0;
  if (s.charCodeAt(i) === 46) {
    const a = two(s, i + 1);
    const b = s.charCodeAt(i + 3) - 48;
    if (a < 0 || b < 0 || b > 9) return Number.NaN;
    milli = a * 10 + b;
    i += 4;
  }
  let offset = 0;
  const zone = s.charCodeAt(i);
  if (zone === 90) {
    if (n !== i + 1) return Number.NaN;
  } else if ((zone === 43 || zone === 45) && n === i + 6 && s.charCodeAt(i + 3) === 58) {
    const oh = two(s, i + 1);
    const om = two(s, i + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return Number.NaN;
    offset = (zone === 43 ? 1 : -1) * (oh * HOUR + om * MINUTE);
  } else return Number.NaN;
  // Days since 1970-01-01 from the civil date (H. Hinnant's algorithm; years here are positive).
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const days = era * 146097 + doe - 719468;
  return days * DAY + hour * HOUR + minute * MINUTE + second * 1000 + milli - offset;
}

/**
 * An ISO 8601 instant with its zone, read strictly (2027-03-01T08:00:00Z, 2027-03-01T09:00+01:00, a fraction of a
 * second of up to 9 digits, kept to the ms): its time in ms, or undefined. A date alone, a time without a zone, a
 * day or an hour out of range (30 February, 24:00) or any other text is no instant: until 2026-12-06 a stored expiry
 * was read with Date.parse, which takes "2027-01-02" as midnight UTC, a time without a zone as the server's own,
 * and "Jan 2 2027" as the engine guesses.
 */
export function instantMs(text: string): number | undefined {
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s = 0, zh = 0, zm = 0] = [1, 2, 3, 4, 5, 6, 9, 10].map((i) =>
    m[i] === undefined ? undefined : Number(m[i]),
  ) as number[];
  if (h! > 23 || mi! > 59 || s > 59 || zh > 23 || zm > 59) return undefined;
  const t = new Date(0);
  t.setUTCFullYear(y!, mo! - 1, d!); // not Date.UTC, which reads years 0-99 as 1900-1999
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo! - 1 || t.getUTCDate() !== d) return undefined;
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const offset = (m[8] === '-' ? -1 : 1) * (zh * 60 + zm) * 60_000;
  return t.getTime() + ((h! * 60 + mi!) * 60 + s) * 1000 + ms - offset;
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** The widest UTC offset any zone has (+14:00, Kiribati): +14:30 is a typo, never a zone or a time's offset. */
export const MAX_OFFSET_MINUTES = 14 * 60;

/** What a refusal of such an offset says after it. */
export const IMPOSSIBLE_OFFSET = "no zone is more than 14 hours from UTC; check the sender's time zone setting";

/**
 * The offset of an RFC 3339 time (`+18:00`) when no zone has it, past 14 hours either way; undefined for Z, for an
 * offset a zone can have, and for a text that ends in none. RFC 3339 takes any offset to 23:59: HL7 v2's DTM and
 * FHIR's dateTime are held to the zones' (shared/app/hl7v2/pcd01.ts, shared/app/fhir/translate.ts), and so, since
 * 2026-12-07, are the contract's times and those typed to a command.
 */
export function impossibleOffset(text: string): string | undefined {
  const m = /[+-](\d{2}):(\d{2})$/.exec(text);
  return m && Number(m[1]) * 60 + Number(m[2]) > MAX_OFFSET_MINUTES ? m[0] : undefined;
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
 * (+01:00) are not: a site's clock follows its daylight saving time; nor, since 2026-12-07, the names of fixed offsets
 * (Etc/GMT+5, EST: timeZoneProblem).
 */
export function isTimeZone(name: string): boolean {
  return timeZoneProblem(name) === undefined;
}

/** What timeZoneProblem says of a name that is no zone at all (not of a fixed offset's name). */
export const UNKNOWN_TIME_ZONE = 'is not an IANA time zone name (e.g. Europe/Paris, America/New_York, UTC)';

/** The tz database's fixed abbreviations (no daylight saving time), with their offset from UTC in hours. */
const FIXED_ABBREVIATIONS: Record<string, number> = { EST: -5, MST: -7, HST: -10 };

/**
 * Why `name` is no site zone, said after the quoted name (`"Europe/Pariss" is not an IANA time zone name ...`), or
 * undefined when it is one. UTC (Etc/UTC, GMT) is taken. A fixed offset under a zone's name is refused: IANA's
 * Etc/GMT+5 is UTC-5 (POSIX's sign, positive west), the reverse of what it reads as, and EST is UTC-5 all year;
 * neither keeps the daylight saving time of a site's region (docs/time-zones.md).
 */
export function timeZoneProblem(name: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return UNKNOWN_TIME_ZONE;
  let canonical: string;
  try {
    canonical = siteFormat(name).resolvedOptions().timeZone;
  } catch {
    return UNKNOWN_TIME_ZONE;
  }
  const fixed = /^Etc\/GMT([+-])(\d+)$/.exec(canonical);
  if (fixed) {
    const [, sign, hours] = fixed;
    return `is a fixed offset, UTC${sign === '+' ? '-' : '+'}${hours} (IANA reverses the sign: Etc/GMT${sign}N is N hours ${sign === '+' ? 'west' : 'east'} of UTC), without daylight saving time: set the region's zone name (e.g. America/Bogota, Asia/Karachi, Europe/Paris)`;
  }
  const abbreviation = FIXED_ABBREVIATIONS[name.toUpperCase()];
  if (abbreviation !== undefined)
    return `is a fixed offset, UTC${abbreviation} all year, without daylight saving time: set the region's zone name (e.g. America/New_York, America/Bogota)`;
  return undefined;
}

/**
 * The site's calendar day of an instant, as a day number (days from 1970-01-01 to its date in the site's zone): two
 * instants are on the same day for the people of the site when their numbers are equal.
 */
export function siteDay(ms: number, timeZone: string): number {
  const p: Record<string, string> = {};
  for (const part of siteFormat(timeZone).formatToParts(ms)) p[part.type] = part.value;
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day)) / DAY;
}

/**
 * A time as people read it, in every page (SMS, email, webhook summary), on the acknowledge page and on the
 * board: the site's wall clock to the minute, with the zone: `2026-12-01 09:20 CET`. The board writes the same
 * format in the browser (shared/web/board.js, siteTime). Machine-readable fields stay RFC 3339 UTC (iso).
 */
export function formatSiteTime(at: string | number, timeZone: string): string {
  const ms = typeof at === 'number' ? at : parseTime(at);
  if (!Number.isFinite(ms)) return String(at);
  const second = Math.floor(ms / 1000);
  const slot = (second ^ ((ms - second * 1000) << 3)) & (SITE_SLOTS - 1);
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
// formatToParts is slow, about 4 us): the latest written, in a small direct-mapped memo as iso's (slot by second
// and millisecond: the times of patients a fraction of a second apart would share a slot by second alone).
const SITE_SLOTS = 4096;
const siteAt = new Float64Array(SITE_SLOTS).fill(Number.NaN);
const siteZone: string[] = new Array<string>(SITE_SLOTS).fill('');
const siteText: string[] = new Array<string>(SITE_SLOTS).fill('');
