// The end of a patient's monitoring (a discharge) and its resumption (a re-admission) as a board user asks for them,
// for a ward without an ADT feed: each becomes an ordinary contract message (source kind `manual`, device `board`,
// observed at the server's now) that goes through the device ingest path itself (checked, scoped, durable before the
// 202, then ordered, graded and audited like any message), so that what an end or a re-admission does stays in the
// domain (paging.ts monitoringEnded, feedStatus). Each backend's HTTP layer only routes here. Ids only: a board
// request names a patient by its id, and the message carries nothing else about them.
//
// A change is checked against the graded state with the board's own changes still waiting to be graded folded in
// (BoardChanges), one request per patient at a time: two users ending a patient's monitoring together get one 202
// and one 409 "already ended", as the board shows a moment later.
import { randomBytes } from 'node:crypto';
import type { DeviceMessage } from '#domain/contract.ts';
import { monitoringEnded } from '#domain/paging.ts';
import { monitoringFields } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { MINUTE, formatSiteTime, iso, parseTime } from '#domain/time.ts';
import { checkAckName } from './ack.ts';
import { BOARD_DEVICE_ID, RETRY_LATER, UNAVAILABLE, type AuthResult } from './auth.ts';
import { ROUTES, check, handleIngest, type HttpResponse, type IngestDeps } from './ingest.ts';
import { unknownFields } from './json-body.ts';
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

/**
 * A change accepted is taken as waiting at most this long: one not graded by then (parked after failing, say) no
 * longer counts, and the graded state decides alone again.
 */
const WAITING_MS = 60 * MINUTE;

/**
 * The monitoring changes this server's board accepted (202) and grading has not yet applied, per patient, and the
 * patient's requests one at a time, so that a check sees the change accepted just before it. One per server: the
 * host makes it once. A restart forgets what was waiting (the graded state decides alone until it is graded).
 */
export class BoardChanges {
  private readonly waiting = new Map<string, { message: DeviceMessage; acceptedAt: number }[]>();
  private readonly turns = new Map<string, Promise<unknown>>();

  /** Runs `fn` once the patient's requests before it are answered. */
  async inTurn<T>(patientId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.turns.get(patientId) ?? Promise.resolve()).then(fn);
    const done = run.catch(() => undefined);
    this.turns.set(patientId, done);
    try {
      return await run;
    } finally {
      if (this.turns.get(patientId) === done) this.turns.delete(patientId);
    }
  }

  /**
   * The state as graded, with the patient's changes still waiting folded in as grading will fold them. A change the
   * graded state already holds (folding it changes nothing: graded, or outdone by a later one) is dropped: each field
   * only moves forward in time, so it would hold it for good. (Not by its messageId: a state read from storage keeps
   * no window of the ids it applied.)
   */
  withWaiting(state: PatientState, now: number): PatientState {
    const held = (w: { message: DeviceMessage }) => {
      const f = monitoringFields(state, w.message, parseTime(w.message.observedAt));
      const end = state.monitoringEnd;
      return (
        f.monitoringEnd?.t === end?.t &&
        f.monitoringEnd?.v === end?.v &&
        f.lastEnrolmentAt === state.lastEnrolmentAt &&
        f.readmittedAt === state.readmittedAt &&
        f.enrolmentsSinceEnd === state.enrolmentsSinceEnd
      );
    };
    const waiting = (this.waiting.get(state.patientId) ?? []).filter(
      (w) => !held(w) && now - w.acceptedAt < WAITING_MS,
    );
    if (waiting.length === 0) this.waiting.delete(state.patientId);
    else this.waiting.set(state.patientId, waiting);
    let fields = {
      monitoringEnd: state.monitoringEnd,
      lastEnrolmentAt: state.lastEnrolmentAt,
      readmittedAt: state.readmittedAt,
      enrolmentsSinceEnd: state.enrolmentsSinceEnd,
    };
    for (const w of waiting) fields = monitoringFields(fields, w.message, parseTime(w.message.observedAt));
    return { ...state, ...fields };
  }

  accepted(message: DeviceMessage, now: number): void {
    this.waiting.set(message.patientId, [...(this.waiting.get(message.patientId) ?? []), { message, acceptedAt: now }]);
  }
}

export interface MonitoringDeps {
  /** The backend's device ingest (its queue, patient directory and clock). */
  ingest: IngestDeps;
  /** The server's board changes waiting to be graded. */
  changes: BoardChanges;
  /** The patient's graded state, or undefined when the backend has never graded the patient. */
  state(patientId: string): Promise<PatientState | undefined> | PatientState | undefined;
  /** The site's zone (config.site.timeZone): the times in a refusal, which the board shows its user. */
  timeZone: string;
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
 * as graded, with this server's board changes still waiting to be graded taken as done (BoardChanges): a second end
 * sent while the first waits is refused as the first would be once graded (docs/embedded.md, the on-call board).
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

  return deps.changes.inTurn(patientId, () => checkAndSend(action, patientId, shape.message, by.name, now, deps));
}

/** The checks against the patient's state (with the changes still waiting) and the send: one patient's at a time. */
async function checkAndSend(
  action: MonitoringAction,
  patientId: string,
  shaped: DeviceMessage,
  name: string,
  now: number,
  deps: MonitoringDeps,
): Promise<MonitoringAnswer> {
  const graded = await deps.state(patientId);
  if (!graded) return answer(404, { error: NO_SUCH_PATIENT });
  const state = deps.changes.withWaiting(graded, now);
  const ended = monitoringEnded(state);
  let message: DeviceMessage;
  if (action === 'end') {
    if (ended)
      return answer(409, {
        errors: [
          `monitoringEnd: patient ${patientId}'s monitoring has already ended (${ended.v} at ${formatSiteTime(ended.t, deps.timeZone)}); resume it first to give another reason`,
        ],
      });
    message = shaped;
    // The domain's rule: an enrolment observed after an end restarts the watch, so one placed after the server's time
    // (a message is placed no later than it arrived: the server's clock was stepped back since) would undo it at once.
    if (monitoringEnded({ ...state, monitoringEnd: { v: message.monitoringEnd!.reason, t: now } }) === undefined)
      return answer(409, {
        errors: [
          `monitoringEnd: patient ${patientId} has an enrolment observed at or after the server's time (${formatSiteTime(state.lastEnrolmentAt ?? now, deps.timeZone)}): an end now would not hold`,
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
    const { messageId, observedAt, source } = shaped;
    message = { messageId, patientId, observedAt, source, enrolment: { bed, ...(ward !== undefined ? { ward } : {}) } };
    if (monitoringEnded({ ...state, lastEnrolmentAt: Math.max(state.lastEnrolmentAt ?? now, now) }) !== undefined)
      return answer(409, {
        errors: [
          `monitoring: patient ${patientId}'s end of monitoring is observed at ${formatSiteTime(ended.t, deps.timeZone)}, not before the server's time: a re-admission now would not follow it`,
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
      { ...BOARD, deviceId: boardSender(name) },
    );
  } catch {
    // A store the ingest reads (the patient directory) failed: nothing was accepted, as a device is told.
    return answer(503, { error: UNAVAILABLE }, RETRY_LATER);
  }
  const out = JSON.parse(res.body) as Record<string, unknown>;
  if (res.status === 202) {
    deps.changes.accepted(message, now);
    return answer(202, { ...out, message });
  }
  if (res.status === 400 && Array.isArray(out.errors)) out.errors = asRequest(out.errors as string[]);
  const { 'content-type': _type, ...headers } = res.headers;
  return answer(res.status, out, headers);
}
