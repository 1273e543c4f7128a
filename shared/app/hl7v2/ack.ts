// HL7 v2 acknowledgements (original mode): AA once the messages are durably accepted, AE with one ERR segment per
// refused observation (ERR-2 where, ERR-3 the table 0357 code, ERR-8 the problem in words), AR for what cannot be
// taken at all. The time is a parameter; only each ACK's own control id (MSH-10) is drawn here (ackControlId).
import { randomInt } from 'node:crypto';
import { Hl7Message, Hl7Segment } from '@medplum/core';
import { escapeHl7, hl7Time } from './er7.ts';
import {
  APPLICATION_ERRORS,
  APPLICATION_SYSTEM,
  ERROR_CODES,
  unescaper,
  type Hl7Header,
  type Hl7Problem,
} from './pcd01.ts';

export type AckCode = 'AA' | 'AE' | 'AR';

export const HL7_CONTENT_TYPE = 'x-application/hl7-v2+er7';

/** The longest HL7 v2 message taken, whatever carries it (an MLLP frame, an HTTP body); a PCD-01 message is a few KB. */
export const HL7_MAX_BYTES = 1024 * 1024;

/** A message over the limit: the same problem over MLLP and over HTTP (the sender reads one ERR, not two). */
export const tooLong = (limit = HL7_MAX_BYTES): Hl7Problem => ({
  at: { segment: 'MSH', sequence: 1 },
  code: 207,
  text: `the message is longer than ${limit} bytes, the most taken`,
});

/**
 * The AR of a message that cannot be taken at all (translatePcd01 refused it), addressed back to its sender when
 * its MSH could be read: the same wherever it is refused (the ingest, the MLLP bridge before spooling).
 */
export function unreadableAck(r: { header?: Hl7Header; problems: Hl7Problem[] }, now: number): string {
  return buildAck({ code: 'AR', ...(r.header ? { header: r.header } : {}), problems: r.problems, now });
}

/**
 * The AR of a refusal made before the message was read (a transport's: a frame cut off, a token refused): the problem
 * is also MSA-3. Addressed back to the message's sender when its MSH was read all the same (the MLLP listener has the
 * frame), as every ACK is.
 */
export function refusalAck(problem: Hl7Problem, now: number, header?: Hl7Header): string {
  return buildAck({ code: 'AR', ...(header ? { header } : {}), problems: [problem], text: problem.text, now });
}

// A field as sent (already escaped) is only passed on when it holds no delimiter that would break the ACK, nor an
// MLLP start or end block byte (VT, FS) that would break its frame.
const safeRaw = (field: string) => (/^[^|\r\n\x0b\x1c]*$/.test(field) ? field : escapeHl7(field));

export interface AckInput {
  code: AckCode;
  /** The acknowledged message's header; without one (unparseable input) the ACK says so. */
  header?: Hl7Header;
  /** Each an ERR segment: the errors, then the warnings (severity W). */
  problems?: Hl7Problem[];
  /** MSA-3, a short text. */
  text?: string;
  now: number;
}

/** The ACK message as ER7 text (segments separated by CR). */
export function buildAck(a: AckInput): string {
  const h = a.header;
  const segment = (fields: string[]) => new Hl7Segment(fields);
  const segments = [
    segment([
      'MSH',
      '^~\\&',
      safeRaw(h?.receivingApplication || 'CRS'),
      safeRaw(h?.receivingFacility ?? ''),
      safeRaw(h?.sendingApplication ?? ''),
      safeRaw(h?.sendingFacility ?? ''),
      hl7Time(a.now),
      '',
      `ACK^${escapeHl7(h?.trigger || 'R01')}^ACK`,
      ackControlId(a.now),
      'P',
      escapeHl7(h?.version || '2.6'),
    ]),
    // MSA-2 is MSH-10 as sent, not as read: read, "A\X42\C" was echoed "ABC", "MSG^2" as "MSG", and the sender's
    // engine, matching the ACK to its message by that field, found none.
    segment(['MSA', a.code, safeRaw(h?.controlIdSent ?? ''), escapeHl7(a.text ?? defaultText(a.code))]),
    ...(a.problems ?? []).map((p) =>
      segment([
        'ERR',
        '',
        [
          p.at.segment,
          String(p.at.sequence),
          p.at.field ? String(p.at.field) : '',
          p.at.field ? '1' : '',
          p.at.component ? String(p.at.component) : '',
        ]
          .join('^')
          .replace(/\^+$/, ''),
        `${p.code}^${ERROR_CODES[p.code]}^HL70357`,
        p.severity ?? 'E',
        p.application ? `${p.application}^${escapeHl7(APPLICATION_ERRORS[p.application])}^${APPLICATION_SYSTEM}` : '',
        '',
        '',
        escapeHl7(p.text),
      ]),
    ),
  ];
  return new Hl7Message(segments).toString();
}

/** The last ACK control id's time (base 36 below) and its number in that millisecond; the process's tag. */
const lastId = { ms: Number.NEGATIVE_INFINITY, seq: 0, tag: '' };
/** Past this many in one millisecond the next millisecond is taken: an id stays at most 18 characters (ST: 20). */
const SEQ_PER_MS = 36 ** 2;

/**
 * MSH-10 of an ACK, unique in this process: `ACK` + the time in ms + `.` + a tag drawn once per process (4 base-36
 * characters, so that two processes, two Lambda instances, rarely meet) + the ACK's number in that millisecond, all
 * base 36: `ACKmxbshhc0.x7c20`. The time never goes back here (a clock stepped back goes on from the last), so no two
 * ACKs of one process share an id. Until 2026-12-06 it was `ACK` + the time alone, and two ACKs built in one
 * millisecond (two connections, a burst) had the same MSH-10, which HL7 makes the message's identity.
 */
function ackControlId(now: number): string {
  if (!lastId.tag)
    lastId.tag = randomInt(36 ** 4)
      .toString(36)
      .padStart(4, '0');
  const ms = Math.floor(now);
  if (ms > lastId.ms) {
    lastId.ms = ms;
    lastId.seq = 0;
  } else if (++lastId.seq >= SEQ_PER_MS) {
    lastId.ms++;
    lastId.seq = 0;
  }
  return `ACK${lastId.ms.toString(36)}.${lastId.tag}${lastId.seq.toString(36)}`;
}

function defaultText(code: AckCode): string {
  return code === 'AA' ? 'accepted' : code === 'AE' ? 'refused in part or whole: see ERR' : 'rejected: see ERR';
}

/** The acknowledgement code and MSA-3 text of an ACK (for the bridge and the simulator), or undefined. */
export function readAck(text: string): { code: string; controlId: string; text: string } | undefined {
  try {
    const msa = Hl7Message.parse(text.replace(/^[\s\x0b]+/, '')).getSegment('MSA');
    if (!msa) return undefined;
    return { code: msa.getComponent(1, 1), controlId: msa.getComponent(2, 1), text: msa.getComponent(3, 1) };
  } catch {
    return undefined;
  }
}

/** The application error codes (ERR-5.1 of the coding system 99CRS, APPLICATION_ERRORS) of an ACK's ERR segments. */
export function applicationErrors(text: string): string[] {
  try {
    return Hl7Message.parse(text.replace(/^[\s\x0b]+/, ''))
      .getAllSegments('ERR')
      .filter((e) => e.getComponent(5, 3) === APPLICATION_SYSTEM)
      .map((e) => e.getComponent(5, 1));
  } catch {
    return [];
  }
}

/**
 * What an ACK says of a refusal, for a sender's log (the simulator's), as HTTP's `errors` are: the text of each ERR
 * segment (ERR-8, or the error code's own text, ERR-3.2, when it has none), and MSA-3 when it says more than that
 * (crs serve's MSA-3 repeats a transport refusal's one ERR, or only points to them: "see ERR"). Unescaped, one line,
 * "; " between parts; undefined when the ACK says nothing (or is not one).
 */
export function ackReason(text: string): string | undefined {
  let msg: Hl7Message;
  try {
    msg = Hl7Message.parse(text.replace(/^[\s\x0b]+/, ''));
  } catch {
    return undefined;
  }
  const plain = unescaper(text.replace(/^[\s\x0b]+/, '').slice(3, 8));
  const said = (s: string | undefined) =>
    plain(s ?? '')
      .replace(/[\x00-\x1f\x7f]+/g, ' ')
      .trim();
  const errors = msg.getAllSegments('ERR').map((e) => said(e.getComponent(8, 1)) || said(e.getComponent(3, 2)));
  const parts = [...new Set(errors.filter(Boolean))];
  const summary = said(msg.getSegment('MSA')?.getComponent(3, 1));
  if (summary && !parts.includes(summary) && !(parts.length > 0 && /see ERR$/i.test(summary))) parts.unshift(summary);
  return parts.length > 0 ? parts.join('; ') : undefined;
}
