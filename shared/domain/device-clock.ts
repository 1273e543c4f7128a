// The device-clock rule: the times a message gives that no clock of ours can have made. One rule for every path
// (JSON, batch, HL7 v2 over HTTP and MLLP, FHIR, on both backends, and `crs replay`), so that they all decide alike
// (docs/contract.md, "Times"). The domain reads no clock: the arrival time comes in as an argument.
import type { DeviceMessage } from './contract.ts';
import { DAY, HOUR, iso, parseTime } from './time.ts';
import { quoted, SENDER_MOST } from './printable.ts';

export const DEVICE_CLOCK = {
  /** A device clock this far ahead of the server would freeze the patient clock: refused beyond it. */
  aheadMs: 5 * 60_000,
  /**
   * How long before its arrival an observedAt may be, by default (a deployment sets 1 to 36,500 days): a gateway flushes
   * its spool after a long weekend's network outage within it; a reading older than that is a clock reset to its
   * factory date far more often than a reading worth grading. A dead-letter redrive is never held to it: it goes back
   * to grading, which does not read this rule.
   */
  behindMs: 7 * DAY,
  /**
   * The settings' bounds, in days: a day at least (a night's spool); up to 100 years for an instance fed recorded
   * data through its interfaces (a validation site, the tests: their fixtures are dated 2026-01).
   */
  behindDays: { min: 1, max: 36_500 },
  /**
   * No time before this is taken, on any path (replay too, which has no arrival time): a clock reset to 1970, to
   * 2000-01-01 itself is past it, or a GPS week rollover's 1999, or an HL7 year 0000.
   */
  floor: '2000-01-01T00:00:00Z',
} as const;

const FLOOR_MS = parseTime(DEVICE_CLOCK.floor);
const YEAR = 365.2425 * DAY;
const HINT = 'check the device clock';

/**
 * A span as people read it: minutes under 2 hours, hours under 2 days, days under 2 years, then years; "over" when
 * it is not whole, so that one just past the limit never reads as the limit itself ("over 7 days ...; the limit is
 * 7 days").
 */
function span(ms: number): string {
  const [unit, name] =
    ms < 2 * HOUR
      ? [60_000, 'min']
      : ms < 2 * DAY
        ? [HOUR, 'h']
        : ms < 2 * YEAR // 730 days read "730 days", never "over 1 years"
          ? [DAY, 'days']
          : [YEAR, 'years'];
  const whole = Math.floor(ms / unit);
  return `${whole * unit === ms ? '' : 'over '}${whole} ${name}`;
}

/** A limit in days as the errors name it ("7 days", "1 day", "1.5 days"). */
const days = (ms: number): string => {
  const d = Math.round((ms / DAY) * 1000) / 1000;
  return `${d} ${d === 1 ? 'day' : 'days'}`;
};

/** When the message arrived (server time) and how far before it an observedAt may be; none in `crs replay`. */
export interface Arrival {
  atMs: number;
  /** None: no limit but the floor (a direct call of the ingest core; every host sets one, DEVICE_CLOCK.behindMs by default). */
  behindMs?: number;
}

/** Only an enrolment: the EHR charting an infusion at its time (a FHIR Procedure), an admission; no reading. */
const enrolmentOnly = (m: DeviceMessage): boolean =>
  m.enrolment !== undefined &&
  Object.keys(m).every((k) => ['messageId', 'patientId', 'observedAt', 'source', 'enrolment'].includes(k));

/**
 * The times of a valid message that cannot be right, as errors naming the field, the value, how far off it is, the
 * limit and what to do; [] when none. With an arrival (every live path):
 * - observedAt more than 5 minutes after it (existing rule), or more than `behindMs` before it, except in a message of
 *   only an enrolment (its time is the infusion's or the admission's, which may be weeks before; it changes no
 *   reading's history: an older enrolment value never replaces a newer one);
 * - enrolment.infusedAt more than 5 minutes after it: an infusion is sent once given (a message observed before
 *   the infusion it names is taken once it arrives after it: an admission charted before the infusion).
 * Everywhere, `crs replay` too (which has no arrival times): observedAt or infusedAt before 2000-01-01.
 */
export function deviceClockErrors(m: DeviceMessage, arrival?: Arrival): string[] {
  const errors: string[] = [];
  const observed = parseTime(m.observedAt);
  // Quoted as a sender's value is: RFC 3339 takes any number of second fractions (5,000 digits were echoed whole
  // until 2026-12-07).
  const observedAt = quoted(m.observedAt, SENDER_MOST);
  if (arrival && observed > arrival.atMs + DEVICE_CLOCK.aheadMs) {
    errors.push(`observedAt: ${observedAt} is in the future (server time ${iso(arrival.atMs)}); ${HINT}`);
  } else if (arrival?.behindMs !== undefined && observed < arrival.atMs - arrival.behindMs && !enrolmentOnly(m)) {
    errors.push(
      `observedAt: ${observedAt} is ${span(arrival.atMs - observed)} before its arrival (server time ${iso(arrival.atMs)}); the limit is ${days(arrival.behindMs)}: ${HINT}`,
    );
  } else if (observed < FLOOR_MS) {
    errors.push(
      `observedAt: ${observedAt} is before ${DEVICE_CLOCK.floor.slice(0, 10)}, the earliest time taken: ${HINT}`,
    );
  }
  const infusedAt = m.enrolment?.infusedAt;
  if (infusedAt !== undefined) {
    const infused = parseTime(infusedAt);
    if (arrival && infused > arrival.atMs + DEVICE_CLOCK.aheadMs) {
      errors.push(
        `enrolment.infusedAt: ${quoted(infusedAt, SENDER_MOST)} is ${span(infused - arrival.atMs)} after the message's arrival (server time ${iso(arrival.atMs)}): an infusion is sent once given; check the date and the sender's clock`,
      );
    } else if (infused < FLOOR_MS) {
      errors.push(
        `enrolment.infusedAt: ${quoted(infusedAt, SENDER_MOST)} is before ${DEVICE_CLOCK.floor.slice(0, 10)}, the earliest time taken: check the date`,
      );
    }
  }
  return errors;
}

/** The rule a setting of the limit follows, as its errors say it. */
export const MAX_OBSERVATION_AGE_RULE = `a number of days, ${DEVICE_CLOCK.behindDays.min}-${DEVICE_CLOCK.behindDays.max}`;

/** A setting of the limit in days (a flag's or a variable's text, or a number), as ms; undefined when not valid. */
export function maxObservationAgeMs(value: string | number): number | undefined {
  const d = typeof value === 'number' ? value : /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
  const { min, max } = DEVICE_CLOCK.behindDays;
  return Number.isFinite(d) && d >= min && d <= max ? Math.round(d * DAY) : undefined;
}

/** The environment variable both backends read the limit from when no flag or stack setting gives it. */
export const MAX_OBSERVATION_AGE_VARIABLE = 'CRS_MAX_OBSERVATION_AGE_DAYS';

/** The limit a host applies: the variable's (its text, given by the host), else the default; a bad value throws. */
export function maxObservationAgeSetting(text: string | undefined): number {
  if (text === undefined || text === '') return DEVICE_CLOCK.behindMs;
  const ms = maxObservationAgeMs(text);
  if (ms === undefined)
    throw new Error(`${MAX_OBSERVATION_AGE_VARIABLE} ${JSON.stringify(text)} is not ${MAX_OBSERVATION_AGE_RULE}`);
  return ms;
}
