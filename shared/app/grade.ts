// Grading a patient's messages from the queue: read the state once, apply the messages in order, write the
// state and its outbox once, with a version condition so that no concurrent or repeated delivery loses an update.
import type { GradingConfig } from '#domain/config.ts';
import { validateQueuedMessage, type DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import { reduce, type Step } from '#domain/reducer.ts';
import {
  SeenBefore,
  VersionConflict,
  type AuditEvent,
  type QueuedMessage,
  type SeenMessage,
  type StateStore,
} from '#ports';
import { arrivalOf, messageDigest } from './digest.ts';

export interface GroupResult {
  /** How many of the messages (from the start) are now applied and committed. */
  committed: number;
  steps: Step[];
  notifications: Notification[];
  /** Why message number `committed` could not be applied (a poison message); the rest were not tried. */
  error?: Error;
}

const MAX_CONFLICT_RETRIES = 5;

/** The fields of a queue body this release writes and reads: every key of QueuedMessage, checked by the compiler. */
const QUEUE_BODY_FIELDS: ReadonlySet<string> = new Set(
  Object.keys({ message: true, digest: true, receivedAt: true, sender: true } satisfies Record<
    keyof QueuedMessage,
    true
  >),
);

/**
 * Parses a queue body back into a message, and the fields of a later release's ingest it was read without
 * (validateQueuedMessage; the body's own, beside the message, as `queueBody.NAME`: 2026-12-07, they were passed over
 * unnamed); a body that no longer validates is a poison message.
 */
function readQueuedBody(body: string): { message: DeviceMessage; ignored: string[] } {
  let parsed: { message?: unknown } | null;
  try {
    parsed = JSON.parse(body) as { message?: unknown } | null;
  } catch {
    throw new Error('queue body is not JSON');
  }
  const v = validateQueuedMessage(parsed?.message);
  if (!v.ok) throw new Error(`queued message is invalid: ${v.errors.join('; ')}`);
  const envelope = Object.keys(parsed ?? {})
    .filter((k) => !QUEUE_BODY_FIELDS.has(k))
    .sort()
    .map((k) => `queueBody.${k}`);
  return { message: v.message, ignored: [...(v.ignored ?? []), ...envelope] };
}

/** Parses a queue body back into a message; a body that no longer validates is a poison message. */
export function parseQueued(body: string): DeviceMessage {
  return readQueuedBody(body).message;
}

/**
 * The content digest of a queue body, as the ingest computed it when it queued the message (QueuedMessage.digest):
 * what a dead letter put back in the queue is keyed by. '' for a body that no longer validates.
 */
export function queuedDigest(body: string): string {
  try {
    return messageDigest(parseQueued(body));
  } catch {
    return '';
  }
}

/** Where a queued message came from, as the ingest wrote it with the message (QueuedMessage). */
export interface Provenance {
  /** The authenticated device (the token's device id), recorded in the audit trail. */
  sender?: string;
  /** When the ingest accepted it (epoch ms): a message is never placed later than it arrived (Arrival.receivedAt). */
  receivedAt?: number;
}

/** The sender and arrival of a queue body; empty for a body without them (never throws: the message is parsed apart). */
export function provenanceOf(body: string): Provenance {
  try {
    const q = JSON.parse(body) as { sender?: unknown; receivedAt?: unknown };
    const receivedAt = typeof q.receivedAt === 'string' ? Date.parse(q.receivedAt) : Number.NaN;
    return {
      ...(typeof q.sender === 'string' ? { sender: q.sender } : {}),
      ...(Number.isFinite(receivedAt) ? { receivedAt } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Applies one patient's messages in order with one load and one save. A message that cannot be applied stops
 * the group there: the ones before it are committed, it and the ones after it are reported as not committed.
 *
 * Identity is (messageId, content digest), however late a message comes: the state remembers the recent ids, and
 * the store the long tail beyond them (`seen`, written with the state or, on DynamoDB, by the next save). A store
 * that reads the long tail gives it after each load (priorDigests); a conditional write that finds an id anyway
 * throws SeenBefore, and the batch is graded again knowing those ids.
 */
export async function gradePatient(
  store: StateStore,
  config: GradingConfig,
  patientId: string,
  messages: (DeviceMessage | Error)[],
  /** Each message's sender and arrival, by index (absent in replays of files). */
  provenance: readonly (Provenance | undefined)[] = [],
): Promise<GroupResult> {
  const ids = messages.flatMap((m) => (m instanceof Error || m.patientId !== patientId ? [] : [m.messageId]));
  const known = new Map<string, string[]>();
  const learn = (digests: Iterable<[string, readonly string[]]>) => {
    for (const [id, d] of digests) known.set(id, [...new Set([...(known.get(id) ?? []), ...d])]);
  };
  for (let attempt = 0; ; attempt++) {
    const stored = await store.load(patientId);
    // Read after the state, on every attempt: what the loaded version has applied is in the long tail by now, or
    // in the state's own window (a store that moves messages from one to the other writes the long tail first).
    if (store.priorDigests && ids.length > 0) learn(await store.priorDigests(patientId, ids));
    let state = stored?.state ?? store.firstState?.(patientId);
    const steps: Step[] = [];
    const seen: SeenMessage[] = [];
    let error: Error | undefined;
    for (const [i, m] of messages.entries()) {
      try {
        if (m instanceof Error) throw m;
        if (m.patientId !== patientId) throw new Error(`message ${m.messageId} is for another patient`);
        const prior = known.get(m.messageId);
        const receivedAt = provenance[i]?.receivedAt;
        const step = reduce(state, m, config, {
          ...arrivalOf(m, prior),
          ...(receivedAt !== undefined ? { receivedAt } : {}),
        });
        steps.push(step);
        state = step.state;
        // A reuse the state's recent window saw is an id the long tail has too (written when it was applied): the
        // store adds the digest instead of a put that would only fail.
        if (step.kind === 'applied')
          seen.push({
            messageId: m.messageId,
            digest: step.digest,
            ...(prior || step.reusedId ? { prior: prior ?? [] } : {}),
          });
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
        break;
      }
    }
    const notifications = steps.flatMap((s) => (s.kind === 'applied' ? s.notifications : []));
    const alerts = steps.flatMap((s) => (s.kind === 'applied' ? s.alerts : []));
    const audit = steps.flatMap((step, i) => stepAudit(step, provenance[i]?.sender));
    const changed = steps.some((s) => s.kind === 'applied');
    try {
      if (changed && state)
        await store.save(patientId, state, stored?.version ?? 0, notifications, { alerts, audit, seen });
    } catch (err) {
      if (err instanceof SeenBefore && attempt < MAX_CONFLICT_RETRIES) {
        learn(err.digests);
        continue;
      }
      if (err instanceof VersionConflict && attempt < MAX_CONFLICT_RETRIES) continue;
      throw err;
    }
    return error
      ? { committed: steps.length, steps, notifications, error }
      : { committed: steps.length, steps, notifications };
  }
}

/** A patient's queue bodies parsed: each a message or the Error that makes it a poison message, and provenance. */
export interface Queued {
  messages: (DeviceMessage | Error)[];
  provenance: Provenance[];
  /** By index, the fields of a later release each message was read without (validateQueuedMessage): to log. */
  ignored?: string[][];
}

/** Parses a patient's queue bodies (parseQueued); a body that does not parse is its Error: a poison message. */
export function readQueued(bodies: readonly string[]): Queued {
  const ignored: string[][] = [];
  const messages = bodies.map((body): DeviceMessage | Error => {
    try {
      const read = readQueuedBody(body);
      ignored.push(read.ignored);
      return read.message;
    } catch (err) {
      ignored.push([]);
      return err instanceof Error ? err : new Error(String(err));
    }
  });
  return { messages, provenance: bodies.map(provenanceOf), ignored };
}

/** How many left-out fields a warning names: a later release can add many, and the log line stays short. */
const LATER_FIELDS_NAMED = 10;

/**
 * The warnings a host logs for the messages of `queued` read without a later release's fields (readQueued), each
 * naming at most LATER_FIELDS_NAMED fields and how many more there were: field names only, never values.
 */
export function laterReleaseFields(queued: Queued): { index: number; messageId: string; fields: string[] }[] {
  return (queued.ignored ?? []).flatMap((fields, index) => {
    const m = queued.messages[index];
    if (fields.length === 0 || !m || m instanceof Error) return [];
    const more = fields.length - LATER_FIELDS_NAMED;
    return [
      {
        index,
        messageId: m.messageId,
        fields: more > 0 ? [...fields.slice(0, LATER_FIELDS_NAMED), `${more} more`] : fields,
      },
    ];
  });
}

/**
 * Grades a patient's queued messages together (`together`: one load, one write); if that fails for a reason of
 * their own (not `isOutage`: a message the store refuses), grades them again one at a time, in order, each graded
 * and written alone by `alone(part, i)`, to find the message whose write fails: the ones before it are committed, it
 * is the result's error (at `committed`: tried again, then set aside) and the ones after it wait behind it, as
 * behind a message the reducer cannot apply. A lone message is that message already: it is failed at once with the
 * error, not written again (until 2026-12-06 the embedded worker wrote it a second time, the grade function did not;
 * conservation needs neither: nothing of a failed write is committed). An outage is thrown: each backend retries
 * the patient its own way. Until 2026-12-05 both backends failed the patient's whole group instead: `crs serve`
 * counted the failure against the group's first message, so a good message (an enrolment) was dead-lettered for a
 * later one's fault, then the next, one by one; the grade Lambda failed the good messages before it too.
 */
export async function gradeQueued(
  queued: Queued,
  grade: {
    together: () => Promise<GroupResult>;
    alone: (part: Queued, index: number) => Promise<GroupResult>;
  },
  isOutage: (err: unknown) => boolean,
): Promise<GroupResult> {
  try {
    return await grade.together();
  } catch (err) {
    if (isOutage(err)) throw err;
    const error = err instanceof Error ? err : new Error(String(err));
    if (queued.messages.length < 2) return { committed: 0, steps: [], notifications: [], error };
    return gradeOneByOne(queued.messages.length, (i) =>
      grade.alone({ messages: [queued.messages[i]!], provenance: [queued.provenance[i]!] }, i),
    );
  }
}

/** Each message graded and written alone, in order, up to the first that fails (gradeQueued's fallback). */
async function gradeOneByOne(count: number, grade: (index: number) => Promise<GroupResult>): Promise<GroupResult> {
  const done: GroupResult = { committed: 0, steps: [], notifications: [] };
  for (let i = 0; i < count; i++) {
    let r: GroupResult;
    try {
      r = await grade(i);
    } catch (err) {
      return { ...done, error: err instanceof Error ? err : new Error(String(err)) };
    }
    done.committed += r.committed;
    done.steps.push(...r.steps);
    done.notifications.push(...r.notifications);
    if (r.error) return { ...done, error: r.error };
  }
  return done;
}

/**
 * The messages of a result graded under grading settings other than the patient's last message was (the site changed
 * its configuration): what a host logs, ids only (2026-12-07).
 */
export function settingsChanges(
  result: GroupResult,
): { messageId: string; settings: string; formerSettings: string }[] {
  return result.steps.flatMap((s) =>
    s.kind === 'applied' && s.settings?.former !== undefined
      ? [{ messageId: s.assessment.messageId, settings: s.settings.id, formerSettings: s.settings.former }]
      : [],
  );
}

/** The messages of a result that reused a messageId with other content (graded as new observations). */
export function reusedIds(result: GroupResult): { messageId: string; patientId: string }[] {
  return result.steps.flatMap((s) =>
    s.kind === 'applied' && s.reusedId
      ? [{ messageId: s.assessment.messageId, patientId: s.assessment.patientId }]
      : [],
  );
}

/**
 * The audit entries of one applied message: its assessment (with the device whose token sent it) and the grade
 * changes it caused (ids, no names).
 */
function stepAudit(step: Step, sender?: string): AuditEvent[] {
  if (step.kind !== 'applied') return [];
  const a = step.assessment;
  const entries: AuditEvent[] = [
    {
      at: a.at,
      patientId: a.patientId,
      type: 'assessment',
      text: `CRS ${a.crsGrade}, ICANS ${a.icansGrade} (${a.scheme}): ${a.reasons.map((r) => r.text).join('; ')}`,
      details: {
        messageId: a.messageId,
        digest: step.digest,
        crsGrade: a.crsGrade,
        icansGrade: a.icansGrade,
        scheme: a.scheme,
        // The grading settings it was graded under, where they are not the last message's (the entry that names
        // them first): every assessment after it, to the next that names others, was graded under them.
        ...(step.settings ? { settings: step.settings.id } : {}),
        ...(sender !== undefined ? { sender } : {}),
      },
    },
  ];
  if (step.settings?.former !== undefined) {
    // The site changed its grading configuration since this patient's last message: what this message graded (and
    // any grade change it caused, whose page says so) may come from the configuration, not the patient.
    const { id, former } = step.settings;
    entries.push({
      at: a.at,
      patientId: a.patientId,
      type: 'settings-changed',
      text: `graded under grading settings ${id} from message ${a.messageId} on (were ${former}): a grade change here may come from the configuration, not the patient`,
      details: { messageId: a.messageId, digest: step.digest, settings: id, formerSettings: former },
    });
  }
  if (step.reusedId) {
    // Recorded (crs-rules 1.1 item 8): a device reused a messageId with other content (a counter reset?).
    entries.push({
      at: a.at,
      patientId: a.patientId,
      type: 'message-reused',
      text: `messageId ${a.messageId} reused with other content (digest ${step.digest}): graded as a new observation`,
      details: { messageId: a.messageId, digest: step.digest },
    });
  }
  for (const n of step.notifications) entries.push(notificationAudit(n));
  return entries;
}

/** The audit entry of a grade change (also written for one recorded before the audit trail existed). */
export function notificationAudit(n: Notification): AuditEvent {
  return {
    at: n.at,
    patientId: n.patientId,
    type: 'notification',
    text: `${n.kind} ${n.condition.toUpperCase()} ${n.fromGrade} -> ${n.toGrade} to ${n.teams.join(', ')}${n.settingsChanged ? ` (the grading settings changed since the last message: ${n.settingsChanged.from} -> ${n.settingsChanged.to})` : ''}`,
    details: {
      notificationId: n.notificationId,
      messageId: n.causedBy,
      condition: n.condition,
      fromGrade: n.fromGrade,
      toGrade: n.toGrade,
      ...(n.settingsChanged ? { settings: n.settingsChanged.to, formerSettings: n.settingsChanged.from } : {}),
    },
  };
}
