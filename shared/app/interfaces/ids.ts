// Contract ids derived from what HL7 v2 and FHIR send, deterministically (a message sent again must give the same
// ids, so that it deduplicates) and within the contract's character sets.
import { createHash } from 'node:crypto';
import { iso } from '#domain/time.ts';

/** The contract's patient and device id set. */
export const CONTRACT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const MESSAGE_ID_MAX = 128;

// Kept as they are in an id part; '~' escapes, and '/', '@', '+', '=' are left free to separate parts.
const KEEP = /[A-Za-z0-9.:-]/;

/** A text as part of a messageId: characters outside the set become ~XX (UTF-8 bytes), so the mapping is one to one. */
export function idPart(text: string): string {
  let out = '';
  for (const ch of text) {
    if (KEEP.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `~${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `prefix:part1/part2...`, or a hash of it when that would be longer than the contract allows. */
export function messageIdOf(prefix: string, parts: string[]): string {
  const id = `${prefix}:${parts.join('/')}`;
  if (id.length <= MESSAGE_ID_MAX) return id;
  return `${prefix}:sha256=${createHash('sha256').update(id, 'utf8').digest('hex')}`;
}

/** 2026-01-10T08:00:00Z as 20260110T080000Z (with milliseconds when there are some), for id suffixes. */
export function compactTime(ms: number): string {
  return iso(ms).replace(/[-:]/g, '').replace('.', 'd');
}
