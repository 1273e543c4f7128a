// Local wall-clock times to instants, for senders whose timestamps carry no offset: only when the site configured
// its zone (a fixed offset like +01:00, or an IANA name like Europe/Paris, daylight saving included).

/** The widest UTC offset any zone has (+14:00, Kiribati): +14:30 is a typo, never a zone or a time's offset. */
export const MAX_OFFSET_MINUTES = 14 * 60;

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

/** The instant of a wall-clock time (given as if it were UTC) in the site's zone. */
export function fromWallClock(wallAsUtcMs: number, zone: SiteZone): number {
  // Two passes settle the offset on either side of a daylight-saving change.
  let t = wallAsUtcMs - zone.offsetAt(wallAsUtcMs) * 60_000;
  t = wallAsUtcMs - zone.offsetAt(t) * 60_000;
  return t;
}
