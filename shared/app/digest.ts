// A message's identity is (messageId, content digest) (crs-rules.md v1.1 item 8): the same id with the same
// content is a duplicate however late it comes; the same id with other content is a new observation.
import { hash } from 'node:crypto';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Arrival } from '#domain/reducer.ts';
import { iso, parseTime } from '#domain/time.ts';

/** base64url characters kept from the SHA-256: 22 characters, 132 bits. */
const DIGEST_LENGTH = 22;

/**
 * The digest of a validated message (as validateMessage returns it): SHA-256 of the JSON of its canonical form,
 * first 22 base64url characters. "The same content" is the same fields and values (crs-rules 1.1 section 5):
 * - keys: the validator builds every object in the contract's field order, so the order of keys as sent does not
 *   count;
 * - numbers count as parsed (38.50 and 38.5 are one value);
 * - instants (`observedAt`, `enrolment.infusedAt`) count as the instant they denote, to the millisecond as the
 *   reducer places them: written as `iso` writes them (UTC, "Z", milliseconds only when not zero), so
 *   "08:00:00Z", "08:00:00.000Z" and "09:00:00+01:00" are one instant, and so are ".123Z" and ".123456Z";
 * - `vasopressors` (the set infusing) and `medications` (the drugs given at `observedAt`) are sets: their entries
 *   count in a fixed order (by each entry's JSON), each as many times as sent.
 * The canonical form of a message sent the usual way (times in "Z" without a zero fraction, as the HL7 v2 and FHIR
 * translators write them; one vasopressor, one medication) is the message itself: its digest is the one it had
 * before 2026-12-06, so identities stored before then still match (test/unit/digest.test.ts pins them). Until
 * 2026-12-06 the digest was of the message as sent: a redelivery respelled by an integration engine was a new
 * observation, and as the later arrival at its instant it undid a correction sent in between.
 */
export function messageDigest(message: DeviceMessage): string {
  return hash('sha256', JSON.stringify(canonical(message)), 'base64url').slice(0, DIGEST_LENGTH);
}

/** The message with its instants as iso writes them and its sets in a fixed order (itself when it is so already). */
function canonical(m: DeviceMessage): DeviceMessage {
  let c = m;
  const observedAt = instant(m.observedAt);
  if (observedAt !== m.observedAt) c = { ...c, observedAt };
  const infused = m.enrolment?.infusedAt;
  if (infused !== undefined) {
    const infusedAt = instant(infused);
    if (infusedAt !== infused) c = { ...c, enrolment: { ...m.enrolment, infusedAt } };
  }
  const vasopressors = m.vasopressors && inOrder(m.vasopressors);
  if (vasopressors !== m.vasopressors) c = { ...c, vasopressors };
  const medications = m.medications && inOrder(m.medications);
  if (medications !== m.medications) c = { ...c, medications };
  return c;
}

/**
 * A contract timestamp as `iso` writes its instant. A validated one of 20 characters is YYYY-MM-DDTHH:MM:SSZ, a real
 * date (the validator refuses any other), which is how `iso` writes it: taken as it is, without parsing.
 */
function instant(value: string): string {
  if (value.length === 20 && value.charCodeAt(19) === 90) return value; // Z
  const ms = parseTime(value);
  return Number.isFinite(ms) ? iso(ms) : value;
}

/** A set's entries ordered by their JSON (the same array when they are in that order already). */
function inOrder<T>(entries: T[]): T[] {
  if (entries.length < 2) return entries;
  const keyed = entries.map((e) => [JSON.stringify(e), e] as const);
  const sorted = [...keyed].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return sorted.every((e, i) => e === keyed[i]) ? entries : sorted.map((e) => e[1]);
}

/** What the reducer needs to know of a message's identity: its digest, and the digests its id had before. */
export function arrivalOf(message: DeviceMessage, priorDigests?: readonly string[]): Arrival {
  const digest = messageDigest(message);
  return priorDigests && priorDigests.length > 0 ? { digest, priorDigests } : { digest };
}
