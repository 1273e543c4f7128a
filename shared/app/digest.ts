// A message's identity is (messageId, content digest) (crs-rules.md v1.1 item 8): the same id with the same
// content is a duplicate however late it comes; the same id with other content is a new observation.
import { hash } from 'node:crypto';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Arrival } from '#domain/reducer.ts';

/** base64url characters kept from the SHA-256: 22 characters, 132 bits. */
const DIGEST_LENGTH = 22;

/**
 * The digest of a validated message (as validateMessage returns it): SHA-256 of its JSON, first 22 base64url
 * characters. The validator builds every object in the contract's field order, so the JSON is canonical: the
 * order of keys as sent does not change it, the order of array entries does, and values count as parsed (38.50
 * and 38.5 are one value; two spellings of one instant, such as "Z" and "+00:00", are two).
 */
export function messageDigest(message: DeviceMessage): string {
  return hash('sha256', JSON.stringify(message), 'base64url').slice(0, DIGEST_LENGTH);
}

/** What the reducer needs to know of a message's identity: its digest, and the digests its id had before. */
export function arrivalOf(message: DeviceMessage, priorDigests?: readonly string[]): Arrival {
  const digest = messageDigest(message);
  return priorDigests && priorDigests.length > 0 ? { digest, priorDigests } : { digest };
}
