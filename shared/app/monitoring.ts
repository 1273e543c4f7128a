// The end of a patient's monitoring (a discharge) and its resumption (a re-admission) as a board user asks for them,
// for a ward without an ADT feed: each becomes an ordinary contract message (source kind `manual`, device `board`,
// observed at the server's now) that goes through the device ingest path itself (checked, scoped, durable before the
// 202, then ordered, graded and audited like any message), so that what an end or a re-admission does stays in the
// domain (paging.ts monitoringEnded, feedStatus). Each backend's HTTP layer only routes here. Ids only: a board
// request names a patient by its id, and the message carries nothing else about them.
import { randomBytes } from 'node:crypto';
import type { DeviceMessage } from '#domain/contract.ts';
import { monitoringEnded } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { iso } from '#domain/time.ts';
import { checkAckName } from './ack.ts';
import { BOARD_DEVICE_ID, RETRY_LATER, UNAVAILABLE, type AuthResult } from './auth.ts';
import { ROUTES, check, handleIngest, type HttpResponse, type IngestDeps } from './ingest.ts';
import { unknownFields } from './request-fields.ts';
import { NO_SUCH_PATIENT } from './silence.ts';

/** The board as a sender: a nurse's charting (`manual`), every patient, no token of its own (the board key is it). */
const BOARD: Extract<AuthResult, { ok: true }> = {
  ok: true,
  principal: { deviceId: BOARD_DEVICE_ID, role: 'manual' },
  deviceId: BOARD_DEVICE_ID,
};

export type MonitoringAction = 'end' | 'resume';

/** The fields each action's request body takes. */
const FIELDS: Record<MonitoringAction, readonly string[]> = { end: ['reason', 'by'], resume: ['by'] };

/**
 * A body each action takes, as the host's refusals of a body that is not JSON or not an object quote it: every field
 * the request requires, so that a sender who follows it is not refused again for the name.
 */
export const MONITORING_EXAMPLES: Record<MonitoringAction, string> = {
  end: '{"reason": "discharged", "by": "your name"}',
  resume: '{"by": "your name"}',
};

export interface MonitoringDeps {
  /** The backend's device ingest (its queue, patient directory and clock). */
  ingest: IngestDeps;
  /** The patient's graded state, or undefined when the backend has never graded the patient. */
  state(patientId: string): Promise<PatientState | undefined> | PatientState | undefined;
}

export interface MonitoringAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const answer = (status: number, body: unknown, headers: Record<string, string> = {}): MonitoringAnswer => ({
  status,
  headers,
  body,
});

/** The contract's errors in the board request's words: `monitoringEnd.reason: ...` is the body's `reason`. */
const asRequest = (errors: string[]) => errors.map((e) => e.replace(/^monitoringEnd\.reason:/, 'reason:'));

/** The sender the trail records (the assessment's `sender`): the board, and the name the board user typed. */
const boardSender = (name: string) => `${BOARD_DEVICE_ID} (by ${name})`;

const messageId = (action: MonitoringAction) => `board-${action}-${randomBytes(12).toString('base64url')}`;

/**
 * Ends a patient's monitoring (`{"reason": "discharged" | "transferred" | "other", "by": name}`) or resumes it (`{"by"}`: an
 * enrolment with the bed the patient has, which restarts the stale-feed watch). 202 once the message is durable
 * (`messageIds`, and the message itself); 400 naming the field; 404 for a patient never graded; 409 when the
 * patient's monitoring has ended already (end), has not ended (resume), or there is no bed to re-admit to. "Ended" is
 * as graded: an end still waiting in the queue is not seen, so a second end sent meanwhile is taken too, and the later
 * one holds (docs/embedded.md, the on-call board).
 */
export async function changeMonitoring(
  action: MonitoringAction,
  patientId: string,
  body: Record<string, unknown>,
  deps: MonitoringDeps,
): Promise<MonitoringAnswer> {
  const unknown = unknownFields(body, FIELDS[action]);
  if (unknown.length > 0) return answer(400, { errors: unknown });
  // Who did it, as for a silence or an acknowledgement: the trail records the message as sent by the board, by them.
  const by = checkAckName(body.by);
  const now = deps.ingest.now();
  const base = { messageId: messageId(action), patientId, observedAt: iso(now) };
  const source = { deviceId: BOARD_DEVICE_ID, kind: 'manual' } as const;
  // The request as the contract takes it (the reason, the patient id), before anything is looked up; a resumption's
  // bed comes from the patient's state below (a stand-in here, only for the shape).
  const shape = check(
    action === 'end'
      ? { ...base, source, monitoringEnd: { reason: body.reason } }
      : { ...base, source, enrolment: { bed: 'bed' } },
    now,
  );
  if (!shape.ok || !by.ok)
    return answer(400, { errors: [...(shape.ok ? [] : asRequest(shape.errors)), ...(by.ok ? [] : [by.error])] });

  const state = await deps.state(patientId);
  if (!state) return answer(404, { error: NO_SUCH_PATIENT });
  const ended = monitoringEnded(state);
  let message: DeviceMessage;
  if (action === 'end') {
    if (ended)
      return answer(409, {
        errors: [
          `monitoringEnd: patient ${patientId}'s monitoring has already ended (${ended.v} at ${iso(ended.t)}); resume it first to give another reason`,
        ],
      });
    message = shape.message;
    // The domain's rule: an enrolment observed after an end restarts the watch, so one placed after the server's time
    // (a message is placed no later than it arrived: the server's clock was stepped back since) would undo it at once.
    if (monitoringEnded({ ...state, monitoringEnd: { v: message.monitoringEnd!.reason, t: now } }) === undefined)
      return answer(409, {
        errors: [
          `monitoringEnd: patient ${patientId} has an enrolment observed after the server's time (${iso(state.lastEnrolmentAt ?? now)}): an end now would not hold`,
        ],
      });
  } else {
    if (!ended)
      return answer(409, {
        errors: [`monitoring: patient ${patientId}'s monitoring has not ended: there is nothing to resume`],
      });
    const bed = state.enrolment.bed?.v;
    if (bed === undefined)
      return answer(409, {
        errors: [
          `enrolment.bed: patient ${patientId} has no bed on record, and a re-admission names one: send it from the EHR, or an enrolment with the bed from a manual token`,
        ],
      });
    // The ward on record too: a ward's quiet feeds page as one (the stale-feed grouping) and tokens are scoped by it.
    const ward = state.enrolment.ward?.v;
    message = { ...base, source, enrolment: { bed, ...(ward !== undefined ? { ward } : {}) } };
    if (monitoringEnded({ ...state, lastEnrolmentAt: Math.max(state.lastEnrolmentAt ?? now, now) }) !== undefined)
      return answer(409, {
        errors: [
          `monitoring: patient ${patientId}'s end of monitoring is observed at ${iso(ended.t)}, not before the server's time: a re-admission now would not follow it`,
        ],
      });
  }

  // The device path itself: checked again, scoped (a manual sender), admitted and queued durably, all or nothing.
  let res: HttpResponse;
  try {
    res = await handleIngest(
      {
        method: 'POST',
        path: ROUTES.single,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
      },
      deps.ingest,
      { ...BOARD, deviceId: boardSender(by.name) },
    );
  } catch {
    // A store the ingest reads (the patient directory) failed: nothing was accepted, as a device is told.
    return answer(503, { error: UNAVAILABLE }, RETRY_LATER);
  }
  const out = JSON.parse(res.body) as Record<string, unknown>;
  if (res.status === 202) return answer(202, { ...out, message });
  if (res.status === 400 && Array.isArray(out.errors)) out.errors = asRequest(out.errors as string[]);
  const { 'content-type': _type, ...headers } = res.headers;
  return answer(res.status, out, headers);
}
