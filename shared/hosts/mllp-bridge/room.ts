// A new patient past `crs serve --max-patients`: the server answers a valid message "no room, send again later".
// The bridge keeps such a message in its spool and sends it again later, while the messages of other patients go
// on; the messages of the same patient wait behind it, in order (docs/interfaces.md, "crs mllp-bridge").
import { Hl7Message } from '@medplum/core';
import { applicationErrors, readAck } from '#app/hl7v2/ack.ts';
import { NO_ROOM_ACK } from '#app/hl7v2/ingest.ts';
import { unescaper } from '#app/hl7v2/pcd01.ts';

/** Without a Retry-After the server's own (shared/app/auth.ts ROOM_LATER): 60 s. */
const ROOM_RETRY_MS = 60_000;
/** A Retry-After beyond this (a day, a date far off) is not waited for: a patient's readings would wait too long. */
const ROOM_RETRY_MAX_MS = 10 * 60_000;

const trimmed = (text: string) => text.replace(/^\uFEFF/, '').replace(/^[\s\x0b]+/, '');

/**
 * The server's "no room for a new patient": a 503 whose body is an AR answering this very message (MSA-2 its
 * MSH-10) with an ERR coded NO_ROOM in ERR-5 (`NO_ROOM^no room for a new patient^99CRS`, since 2026-12-06; ERR-3 is
 * 207, as a queue down's). The words of MSA-3 are for people and may change: until 2026-12-06 the bridge read them.
 * A server older than that writes no ERR-5 at all: only then is MSA-3 ending in NO_ROOM_ACK taken instead. A 503 AR
 * of a queue down (MSA-3 "not accepted: send again later") is retried in place, as before.
 */
export function noRoom(status: number, ack: string, message: string): boolean {
  if (status !== 503) return false;
  const read = readAck(ack);
  if (read?.code !== 'AR') return false;
  const codes = applicationErrors(ack);
  if (codes.length > 0 ? !codes.includes('NO_ROOM') : !read.text.endsWith(NO_ROOM_ACK)) return false;
  try {
    return read.controlId !== '' && read.controlId === Hl7Message.parse(trimmed(message)).header.getComponent(10, 1);
  } catch {
    return false;
  }
}

/** When to send it again: the server's Retry-After (seconds or a date), 1 s to 10 min; else 60 s. */
export function roomRetryMs(retryAfter: string | null, nowMs: number): number {
  const text = retryAfter?.trim() ?? '';
  const ms = /^\d{1,9}$/.test(text) ? Number(text) * 1000 : text ? Date.parse(text) - nowMs : Number.NaN;
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 1000), ROOM_RETRY_MAX_MS) : ROOM_RETRY_MS;
}

/**
 * The patients a message may be about, as the server could identify them: every identifier (CX-1) of every PID-3
 * repetition of every PID, whatever its assigning authority. The server takes one of them (the site's authority
 * chooses, shared/app/hl7v2/pcd01.ts); two messages of one patient share it, so they share a key here. Two
 * patients of different authorities with one number are taken as one: the later waits, it is never reordered.
 */
export function patientKeys(message: string): string[] {
  const text = trimmed(message);
  let parsed: Hl7Message;
  try {
    parsed = Hl7Message.parse(text);
  } catch {
    return [];
  }
  const plain = unescaper(text.slice(3, 8));
  const keys = new Set<string>();
  for (const pid of parsed.getAllSegments('PID')) {
    const repetitions = pid.getField(3)?.components.length ?? 0;
    for (let r = 0; r < repetitions; r++) {
      const id = plain(pid.getComponent(3, 1, undefined, r) ?? '').trim();
      if (id) keys.add(id);
    }
  }
  return [...keys];
}
