// Local wall-clock times to instants, for senders whose timestamps carry no offset: only when the site configured
// its zone (a fixed offset like +01:00, or an IANA name like Europe/Paris, daylight saving included).
import { MAX_OFFSET_MINUTES, timeZoneProblem, UNKNOWN_TIME_ZONE } from '#domain/time.ts';

const NOT_A_ZONE = 'is not an IANA zone (Europe/Paris) or an offset (+01:00)';

/**
 * Why `text` is no HL7 v2 site zone (`--hl7-zone`, `-c hl7Zone`, CRS_HL7_ZONE), said after the quoted text, or
 * undefined when parseZone takes it. The name of a fixed offset (IANA's Etc/GMT+5, which is UTC-5; EST) is refused
 * as site.timeZone refuses it, by the same check and in its words (timeZoneProblem, since 2026-12-07: it was taken,
 * ten hours off for a site that meant UTC+5); an offset written as one (-05:00) is taken.
 */
export function zoneProblem(text: string): string | undefined {
  if (parseZone(text)) return undefined;
  // An offset-shaped text (+15:00) is no name either: timeZoneProblem calls it unknown.
  const named = timeZoneProblem(text);
  return named === undefined || named === UNKNOWN_TIME_ZONE ? NOT_A_ZONE : named;
}

const FIXED_OFFSET = /^([+-])(\d{2}):?(\d{2})$/;

/**
 * A configured site zone: `+01:00`, `-0500`, `Z` or an IANA zone name (not a fixed offset's: zoneProblem). Undefined
 * when the text is neither.
 */
export function parseZone(text: string): SiteZone | undefined {
  const fixed = text.match(FIXED_OFFSET);
  if (fixed) {
    const minutes = (Number(fixed[2]) * 60 + Number(fixed[3])) * (fixed[1] === '-' ? -1 : 1);
    return Math.abs(minutes) <= MAX_OFFSET_MINUTES && Number(fixed[3]) < 60
      ? { name: text, offsetAt: () => minutes }
      : undefined;
  }
  if (text === 'Z' || text === 'UTC') return { name: text, offsetAt: () => 0 };
  if (timeZoneProblem(text) !== undefined) return undefined;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: text,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    return undefined;
  }
  return {
    name: text,
    offsetAt: (utcMs) => {
      const p = Object.fromEntries(format.formatToParts(new Date(utcMs)).map((x) => [x.type, x.value]));
      const wall = Date.UTC(
        Number(p.year),
        Number(p.month) - 1,
        Number(p.day),
        Number(p.hour),
        Number(p.minute),
        Number(p.second),
      );
      return Math.round((wall - Math.floor(utcMs / 1000) * 1000) / 60_000);
    },
  };
}

export interface SiteZone {
  name: string;
  /** Minutes east of UTC at that instant. */
  offsetAt(utcMs: number): number;
}

/**
 * The instants a wall-clock time (given as if it were UTC) names in the site's zone, earliest first: one, none in
 * the hour a daylight-saving change skips, two in the hour it repeats (02:30 in Paris on 25 October is 00:30Z at
 * +02:00 and 01:30Z at +01:00). A time is one of them when the zone's offset at it is the one it was read with.
 */
export function wallClockInstants(wallAsUtcMs: number, zone: SiteZone): number[] {
  const out: number[] = [];
  // The offsets on either side of the time: a change between them is the only one near it (zones change at most a
  // few times a year).
  for (const offset of new Set([zone.offsetAt(wallAsUtcMs - DAY_MS), zone.offsetAt(wallAsUtcMs + DAY_MS)])) {
    const t = wallAsUtcMs - offset * 60_000;
    if (zone.offsetAt(t) === offset && !out.includes(t)) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

const DAY_MS = 86_400_000;
