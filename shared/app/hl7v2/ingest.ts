// One HL7 v2 message in, its ACK out, whatever carried it (MLLP, HTTP): translate (pcd01.ts), pass every contract
// message through the ingest's own check (the contract's validation and the device-clock rule), queue what passed
// through the same durable queue as JSON, and only then answer AA. An observation refused is named in an ERR
// segment (AE) while the message's good observations are kept; AR when nothing could be read or queued.
import { INGEST_LIMITS, admit, enqueueAll, scopedCheck, type IngestDeps } from '#app/ingest.ts';
import type { Principal } from '#app/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { MessageQueue } from '#ports';
import { NOT_MONITORED, sortIfKnown } from '#app/interfaces/known.ts';
import { screen, wholeOf } from '#app/interfaces/screen.ts';
import type { SiteZone } from '#app/interfaces/zone.ts';
import { buildAck, unreadableAck, type AckCode } from './ack.ts';
import { translatePcd01, type Hl7Header, type Hl7Problem } from './pcd01.ts';

export interface Hl7IngestDeps
  extends Pick<IngestDeps, 'patients' | 'maxPatients' | 'maxObservationAgeMs' | 'backend'> {
  queue: MessageQueue;
  now: () => number;
  /** The site's zone for HL7 times sent without an offset (else they are refused). */
  hl7Zone?: SiteZone;
  /** The site's patient authority (PID-3.4): its PID-3 repetition is the patient (shared/app/hl7v2/pcd01.ts). */
  hl7PatientAuthority?: string;
}

export interface Hl7Answer {
  code: AckCode;
  /**
   * 202 (accepted, in whole or part), 400 (AR: unreadable), 413 (AR: over the bounds of a message's segments or
   * delimiters, as one over 1 MiB), 422 (AE: nothing acceptable), 403 (AR: nothing this device may send,
   * shared/app/scope.ts), 503 (AR: queue down, or no room for a new patient: send again).
   */
  status: 202 | 400 | 403 | 413 | 422 | 503;
  /** 503 for a new patient past the ceiling (send again once there is room: a longer Retry-After). */
  full?: true;
  ack: string;
  messageIds: string[];
  problems: Hl7Problem[];
}

/**
 * `principal` is who sent it (the HTTP route's device token; the MLLP listener's configured device): what it may
 * not send is refused like an invalid observation (ERR, code 207), and so are the messages of patients outside its
 * scope; the rest is kept.
 */
export async function ingestHl7(text: string, principal: Principal, deps: Hl7IngestDeps): Promise<Hl7Answer> {
  const now = deps.now();
  const r = translatePcd01(text, {
    ...(deps.hl7Zone ? { zone: deps.hl7Zone } : {}),
    notAfter: now + INGEST_LIMITS.futureSkewMs,
    ...(deps.hl7PatientAuthority !== undefined ? { patientAuthority: deps.hl7PatientAuthority } : {}),
  });
  if (!r.ok) {
    return {
      code: 'AR',
      status: r.tooLarge ? 413 : 400,
      ack: unreadableAck(r, now),
      messageIds: [],
      problems: r.problems,
    };
  }
  const problems = [...r.problems];
  const notes = [...(r.notes ?? [])];
  const screened: { message: DeviceMessage; whole: Hl7Problem['at']; alsoAt?: Hl7Problem['at'][]; ifKnown?: true }[] =
    [];
  const scoped = scopedCheck(principal, now, deps.maxObservationAgeMs, deps.backend);
  let forbidden = false;
  for (const t of r.translated) {
    // The token's scope first: a sender it refuses is told so, known patient or not (never an AA that says which).
    const s = screen(t, scoped.check);
    for (const p of s.problems) {
      const refused = scoped.refusals.has(p.text);
      forbidden ||= refused;
      problems.push({ at: p.at, code: refused ? 207 : 102, text: p.text });
    }
    if (s.message)
      screened.push({
        message: s.message,
        whole: t.whole,
        ...(t.alsoAt ? { alsoAt: t.alsoAt } : {}),
        ...(t.ifKnown ? { ifKnown: t.ifKnown } : {}),
      });
  }
  // An ADT event is taken only for a patient the server knows (shared/app/interfaces/known.ts).
  const sorted = await sortIfKnown(screened, principal, deps.patients);
  // A message refused whole is named at each PID group it came from (wholeOf).
  for (const x of sorted.refused) for (const at of wholeOf(x.item)) problems.push({ at, code: 207, text: x.error });
  forbidden ||= sorted.refused.length > 0;
  if (sorted.notMonitored.length > 0) notes.push(`ADT event ${r.header.trigger}: ${NOT_MONITORED}`);
  const taken = sorted.taken;
  const admission = await admit(
    principal,
    taken.map((s) => s.message),
    deps,
  );
  const out = new Set(admission.refusals.map((x) => x.index));
  // A refusal for want of room carries its code (ERR-5 NO_ROOM): crs mllp-bridge waits for room by it, not by words.
  for (const x of admission.refusals)
    for (const at of wholeOf(taken[x.index]!))
      problems.push({ at, code: 207, text: x.error, ...(x.full ? { application: 'NO_ROOM' as const } : {}) });
  forbidden ||= admission.refusals.some((x) => !x.full);
  const messages = taken.flatMap((s, i) => (out.has(i) ? [] : [s.message]));
  let queued = false;
  try {
    if (messages.length > 0 && !(await enqueueAll(messages, principal.deviceId, now, deps)))
      return queueDown(r.header, now);
    queued = messages.length > 0;
  } finally {
    admission.release(queued);
  }
  // A patient refused for the ceiling alone: the message is valid, the server lacks room. An AR and 503, never an
  // AE (kept by no engine) nor a 403: the sender sends the whole message again later; what was taken of it now is
  // the same messages again then (one messageId each), taken once. Refused for the token's scope as well, the scope
  // wins (403 or AE, as JSON and FHIR): room would not mend it, and a 503 had it sent again for ever (2026-12-06).
  if (!forbidden && admission.refusals.some((x) => x.full)) {
    const text = `${messages.length > 0 ? `${messages.length} message(s) accepted, ` : ''}not all: ${NO_ROOM_ACK}`;
    return {
      code: 'AR',
      status: 503,
      full: true,
      ack: buildAck({ code: 'AR', header: r.header, problems, text, now }),
      messageIds: messages.map((m) => m.messageId),
      problems,
    };
  }
  if (messages.length === 0 && forbidden) {
    return {
      code: 'AR',
      status: 403,
      ack: buildAck({ code: 'AR', header: r.header, problems, text: 'not accepted: not allowed for this device', now }),
      messageIds: [],
      problems,
    };
  }
  const messageIds = messages.map((m) => m.messageId);
  const code: AckCode = problems.length === 0 ? 'AA' : 'AE';
  const summary =
    code === 'AA'
      ? [`accepted ${messages.length} message(s)`, ...notes].join('; ')
      : `${messages.length} message(s) accepted; ${problems.length} problem(s), see ERR`;
  return {
    code,
    status: code === 'AA' || messages.length > 0 ? 202 : 422,
    ack: buildAck({ code, header: r.header, problems: [...problems, ...(r.warnings ?? [])], text: summary, now }),
    messageIds,
    problems,
  };
}

/** MSA-3 of an AR for a new patient past the ceiling (the MLLP bridge tells it from a queue down by it). */
export const NO_ROOM_ACK = 'no room for a new patient, send again later';

/** The AR of a queue that failed: nothing was accepted, send again (503). */
function queueDown(header: Hl7Header, now: number): Hl7Answer {
  const down: Hl7Problem[] = [
    {
      at: { segment: 'MSH', sequence: 1 },
      code: 207,
      text: 'the queue is unavailable; nothing was accepted, send again later',
    },
  ];
  return {
    code: 'AR',
    status: 503,
    ack: buildAck({ code: 'AR', header, problems: down, text: 'not accepted: send again later', now }),
    messageIds: [],
    problems: down,
  };
}
