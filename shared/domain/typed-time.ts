// A time a person types (a command's option), read strictly. A module of its own: only commands read such times,
// and the check is zod's, which a Lambda function that validates nothing else does not load (docs/cost.md "Cold
// start").
import { IMPOSSIBLE_OFFSET, impossibleOffset } from './time.ts';
import * as z from './zod.ts';

/** Built on first use: building it at each command's start would cost every one of them. */
let withOffset: ReturnType<typeof z.iso.datetime> | undefined;

/**
 * A time a person types (a command's option): RFC 3339 with a zone offset, else NaN. Date.parse alone would read
 * a time without an offset in the machine's own zone, so the same command would mean another time elsewhere.
 */
export function parseTimeWithOffset(value: string): number {
  withOffset ??= z.iso.datetime({ offset: true });
  return withOffset.safeParse(value).success && impossibleOffset(value) === undefined ? Date.parse(value) : Number.NaN;
}

/** An RFC 3339 time's ending when its offset is one a zone can have (Z, or up to 14:00 either way: MAX_OFFSET_MINUTES). */
const OFFSET_OF_A_ZONE = /(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))$/;

/**
 * The check after an RFC 3339 time's (z.iso.datetime) that refuses an offset no zone has (impossibleOffset), naming
 * the value as `show` quotes it: the contract's times and `crs replay`'s control lines. A pattern, not a refinement,
 * so that the contract's JSON Schema carries it (with the format, which a second pattern would drop).
 */
export function zoneOffsetCheck(show: (value: string) => string) {
  return [
    z.regex(OFFSET_OF_A_ZONE, {
      error: (iss) =>
        `${show(String(iss.input))} has an impossible UTC offset (${impossibleOffset(String(iss.input))}): ${IMPOSSIBLE_OFFSET}`,
    }),
    z.meta({ format: 'date-time' }),
  ] as const;
}

// A leap second: the date, T (or t, or a space), hours and minutes; then :60, a fraction, the zone.
const LEAP_SECOND = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}):60(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * What is wrong with a time RFC 3339 writes that the contract does not take, and the time to send, after the quoted
 * value; undefined when it is no time at all. The contract's times are ISO 8601's upper-case form with seconds 00-59
 * (docs/contract.md, "Times"), while RFC 3339 (section 5.6) also writes a leap second (23:59:60), lets `t` and `z` be
 * lower case and notes a space for the T: refused as "not an RFC 3339 timestamp", as they were until 2026-12-07,
 * the sender was told something false and not what to change.
 */
export function timeSpellingProblem(text: string): string | undefined {
  withOffset ??= z.iso.datetime({ offset: true });
  const leap = LEAP_SECOND.exec(text);
  const base = leap ? `${leap[1]}:59.999${leap[2]}` : text;
  const sep = base.charAt(10);
  const fixed = `${base.slice(0, 10)}${sep === 't' || sep === ' ' ? 'T' : sep}${base.slice(11)}`.replace(/z$/, 'Z');
  if (fixed === text || !withOffset.safeParse(fixed).success) return undefined;
  const lower = sep === 't' || base.endsWith('z');
  // With an offset no zone has, no time to send: the one written right would be refused for its offset.
  const offset = impossibleOffset(fixed);
  const problems = [
    leap ? 'has a leap second (:60), which the contract does not take' : '',
    lower ? 'writes t or z in lower case' : '',
    sep === ' ' ? 'separates the date and the time with a space' : '',
    offset ? `has an impossible UTC offset (${offset})` : '',
  ].filter((p) => p !== '');
  if (offset) return `${problems.join(', and ')}: ${IMPOSSIBLE_OFFSET}`;
  if (problems.length > 1 || leap) return `${problems.join(', and ')}: send ${fixed}`;
  return lower
    ? `writes t or z in lower case: write T and Z in upper case, ${fixed}`
    : `separates the date and the time with a space: write T between them, ${fixed}`;
}
