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

/**
 * The check after an RFC 3339 time's (z.iso.datetime) that refuses an offset no zone has (impossibleOffset), naming
 * the value as `show` quotes it: the contract's times and `crs replay`'s control lines.
 */
export function zoneOffsetCheck(show: (value: string) => string) {
  return z.refine((t: unknown) => typeof t !== 'string' || impossibleOffset(t) === undefined, {
    error: (iss) =>
      `${show(String(iss.input))} has an impossible UTC offset (${impossibleOffset(String(iss.input))}): ${IMPOSSIBLE_OFFSET}`,
  });
}
