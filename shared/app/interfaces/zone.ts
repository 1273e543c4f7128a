// Local wall-clock times to instants, for senders whose timestamps carry no offset: only when the site configured
// its zone (a fixed offset like +01:00, or an IANA name like Europe/Paris, daylight saving included).
import { MAX_OFFSET_MINUTES } from '#domain/time.ts';

/** A configured site zone: `+01:00`, `-0500`, `Z` or an IANA zone name. Undefined when the text is neither. */
export function parseZone(text: string): SiteZone | undefined {
  const fixed = text.match(/^([+-])(\d{2}):?(\d{2})$/);
  if (fixed) {
    const minutes = (Number(fixed[2]) * 60 + Number(fixed[3])) * (fixed[1] === '-' ? -1 : 1);
    return Math.abs(minutes) <= MAX_OFFSET_MINUTES && Number(fixed[3]) < 60
      ? { name: text, offsetAt: () => minutes }
      : undefined;
  }
  if (text === 'Z' || text === 'UTC') return { name: text, offsetAt: () => 0 };
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
