// Ingest: one HTTP request in, one response out, whatever hosts it (Lambda, the embedded server).
// A valid message is answered 202 only once it is durably queued; anything else gets a status to act on.
import { validateMessage, type DeviceMessage } from '#domain/contract.ts';
import { DEVICE_CLOCK, deviceClockErrors } from '#domain/device-clock.ts';
import { inline, PROBLEMS_NAMED, quoted, SENDER_MOST } from '#domain/printable.ts';
import { iso } from '#domain/time.ts';
import type { MessageQueue, QueuedMessage, TokenStore } from '#ports';
import { messageDigest } from './digest.ts';
import { duplicateKey, pathText, TWICE } from './json-keys.ts';
import { codingRefused, isJsonType } from './media-type.ts';
import { authenticate, refusalHeaders, RETRY_LATER, ROOM_LATER, type AuthResult, type TokenBackend } from './auth.ts';
import { admitPatients, sectionRefusals, type Admission, type PatientDirectory, type Principal } from './scope.ts';

export interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
  body: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface IngestDeps {
  queue: MessageQueue;
  tokens: TokenStore;
  /** Server time, ms. */
  now: () => number;
  /** A token accepted for local use (CRS_INGEST_TOKEN), never in production. */
  localToken?: string;
  /** Which backend answers (its refusals of a token name its operator's `crs token` command); embedded if none. */
  backend?: TokenBackend;
  /** What the backend knows of patients: for tokens scoped to wards, and the ceiling. */
  patients?: PatientDirectory;
  /** The most patients with recent data the server takes (embedded: crs serve --max-patients). */
  maxPatients?: number;
  /**
   * How long before its arrival an observedAt may be: each host sets it (DEVICE_CLOCK.behindMs, 7 days, unless
   * configured: crs serve --max-observation-age-days, the stack's -c maxObservationAgeDays, or
   * CRS_MAX_OBSERVATION_AGE_DAYS); none, no limit but the floor (shared/domain/device-clock.ts).
   */
  maxObservationAgeMs?: number;
}

export const INGEST_LIMITS = {
  messageBytes: 64 * 1024,
  batchBytes: 1024 * 1024,
  batchMessages: 100,
  /** A device clock this far ahead of the server would freeze the patient clock: refuse it (shared/domain/device-clock.ts). */
  futureSkewMs: DEVICE_CLOCK.aheadMs,
  /** Nesting of arrays and objects: a message needs 4 (a batch 5); anything deeper is refused before parsing. */
  depth: 16,
  /**
   * The same for a FHIR body: a Bundle's resource with a complex extension on a component's coding needs 12. The
   * translator quotes what it refuses (a Bundle.type, a comparator): 100,000 deep, that overflowed the stack.
   */
  fhirDepth: 64,
} as const;

/** How deeply arrays and objects nest in a JSON text, without parsing it (strings skipped); stops past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export const ROUTES = { single: '/v1/messages', batch: '/v1/messages/batch' } as const;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

export function header(req: HttpRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export type Checked = { ok: true; message: DeviceMessage } | { ok: false; errors: string[] };

/**
 * The contract's validation plus the device-clock rule (shared/domain/device-clock.ts): what every accepted message
 * passes, whatever its format. `maxAgeMs`: how long before its arrival (`nowMs`) an observedAt may be.
 */
export function check(value: unknown, nowMs: number, maxAgeMs?: number): Checked {
  const v = validateMessage(value);
  if (!v.ok) return v;
  const errors = deviceClockErrors(v.message, {
    atMs: nowMs,
    ...(maxAgeMs !== undefined ? { behindMs: maxAgeMs } : {}),
  });
  return errors.length > 0 ? { ok: false, errors } : v;
}

/** The same for `crs replay`, which has no arrival times: each message is taken as arriving at its observedAt. */
export function checkReplayed(value: unknown): Checked {
  const v = validateMessage(value);
  if (!v.ok) return v;
  const errors = deviceClockErrors(v.message);
  return errors.length > 0 ? { ok: false, errors } : v;
}

/**
 * One line of a `crs replay` file, read as the device routes read a body: JSON with each key once in an object (a
 * key sent twice is refused in the words of the HTTP answer), then checkReplayed. Until 2026-12-07 a replay took
 * the last value of a key sent twice (a heart rate of 99 then 300 graded 300) where both servers answer 400.
 */
export function checkReplayedLine(text: string): Checked {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`line is not valid JSON: ${(err as Error).message}`] };
  }
  const twice = duplicateKey(text);
  return twice ? { ok: false, errors: [`${pathText(twice)}: ${TWICE}`] } : checkReplayed(value);
}

/** The request's device token, checked (a host that checks it before reading the body passes the result on). */
export function authenticateRequest(
  req: Pick<HttpRequest, 'headers'>,
  deps: Pick<IngestDeps, 'tokens' | 'localToken' | 'now' | 'backend'>,
): Promise<AuthResult> {
  const at = new Date(deps.now());
  return authenticate(header(req as HttpRequest, 'authorization'), deps.tokens, at, deps.localToken, deps.backend);
}

/** A check that also refuses what this device may not send (shared/app/scope.ts), for the HL7 and FHIR screens. */
export function scopedCheck(
  principal: Principal,
  nowMs: number,
  maxAgeMs?: number,
  backend?: TokenBackend,
): { check: (value: unknown) => Checked; refusals: Set<string> } {
  const refusals = new Set<string>();
  return {
    refusals,
    check: (value) => {
      const c = check(value, nowMs, maxAgeMs);
      if (!c.ok) return c;
      const refused = sectionRefusals(principal, c.message, backend);
      if (refused.length === 0) return c;
      for (const r of refused) refusals.add(r);
      return { ok: false, errors: refused };
    },
  };
}

/** Whether the messages' patients are the principal's, and room for new ones (shared/app/scope.ts). */
export function admit(
  principal: Principal,
  messages: DeviceMessage[],
  deps: Pick<IngestDeps, 'patients' | 'maxPatients'>,
): Promise<Admission> {
  return admitPatients(principal, messages, {
    ...(deps.patients ? { directory: deps.patients } : {}),
    ...(deps.maxPatients !== undefined ? { maxPatients: deps.maxPatients } : {}),
  });
}

const FORBIDDEN = 'not allowed for this device token';
const NO_ROOM = 'no room for a new patient, nothing was accepted';
/** The batch route's answer to a body that is no list: what to do with one message (walked 2026-12-07). */
const NOT_A_LIST =
  'body must be a JSON array of messages: one message alone goes to POST /v1/messages, or send it as [ ... ]';
/** An object that is no list: what a device message is, before the contract reads it. */
const isMessageLike = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A message's problems as its answer names them: the first PROBLEMS_NAMED, the rest counted, as FHIR names a
 * resource's. Each problem is bounded (its values quoted, SENDER_MOST), their number was not until 2026-12-07.
 */
const named = (errors: string[]): string[] =>
  errors.length <= PROBLEMS_NAMED
    ? errors
    : [
        ...errors.slice(0, PROBLEMS_NAMED),
        `and ${errors.length - PROBLEMS_NAMED} more problems in this message, not named (the first ${PROBLEMS_NAMED} are)`,
      ];

/** 503: nothing was accepted, send again after a while. */
export const unavailable = (error: string): HttpResponse => json(503, { error }, RETRY_LATER);

export async function handleIngest(
  req: HttpRequest,
  deps: IngestDeps,
  authenticated?: AuthResult,
): Promise<HttpResponse> {
  const route = req.path === ROUTES.single ? 'single' : req.path === ROUTES.batch ? 'batch' : undefined;
  if (!route)
    return json(404, { error: `no route ${quoted(req.path, SENDER_MOST)}; POST ${ROUTES.single} or ${ROUTES.batch}` });
  if (req.method.toUpperCase() !== 'POST') return json(405, { error: 'use POST' }, { allow: 'POST' });

  const auth = authenticated ?? (await authenticateRequest(req, deps));
  if (!auth.ok) return json(auth.status, { error: auth.error }, refusalHeaders(auth));

  const type = header(req, 'content-type');
  if (type && !isJsonType(type))
    return json(415, { error: `content-type ${quoted(type, SENDER_MOST)} is not JSON: send application/json (UTF-8)` });
  const coded = codingRefused(header(req, 'content-encoding'));
  if (coded) return json(415, { error: coded });
  const limit = route === 'single' ? INGEST_LIMITS.messageBytes : INGEST_LIMITS.batchBytes;
  let size = Buffer.byteLength(req.body, 'utf8');
  if (size > limit) {
    // crs serve stops reading a body its content-length says is over the limit: name the size the request gave.
    const declared = Number(header(req, 'content-length'));
    if (Number.isSafeInteger(declared) && declared > size) size = declared;
    return json(413, { error: `body is ${size} bytes; the limit is ${limit}` });
  }

  if (jsonDepth(req.body, INGEST_LIMITS.depth) > INGEST_LIMITS.depth) {
    return json(400, {
      errors: [`body nests arrays and objects more than ${INGEST_LIMITS.depth} deep; a message needs 4`],
    });
  }
  // The parser's own words for a byte order mark show an invisible character ("Unexpected token '\uFEFF'").
  if (req.body.startsWith('\uFEFF'))
    return json(400, { errors: ['body starts with a byte order mark (U+FEFF): send the JSON without it'] });
  let parsed: unknown;
  try {
    parsed = JSON.parse(req.body);
  } catch (err) {
    // The parser quotes a few characters of the body as they are, a bidirectional override too: escaped (inline).
    return json(400, { errors: [`body is not valid JSON: ${inline((err as Error).message)}`] });
  }
  const twice = duplicateKey(req.body);
  if (twice) {
    const [index, ...rest] = twice;
    // In a batch, named as its other refusals are: by the message's index, nothing accepted.
    return route === 'batch' && typeof index === 'number'
      ? json(400, { errors: [{ index, errors: [`${pathText(rest)}: ${TWICE}`] }], accepted: 0 })
      : json(400, { errors: [`${pathText(twice)}: ${TWICE}`] });
  }

  const now = deps.now();
  let messages: DeviceMessage[];
  if (route === 'single') {
    // A list of messages sent to the one-message route: name the route that takes it (a gateway's usual slip).
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(isMessageLike)) {
      const list = `a list of ${parsed.length} message${parsed.length === 1 ? '' : 's'}`;
      return json(400, {
        errors: [`message: ${list} is not one message (an object): send a list to POST /v1/messages/batch`],
      });
    }
    const c = check(parsed, now, deps.maxObservationAgeMs);
    if (!c.ok) return json(400, { errors: named(c.errors) });
    messages = [c.message];
  } else {
    if (!Array.isArray(parsed)) return json(400, { errors: [NOT_A_LIST] });
    if (parsed.length === 0 || parsed.length > INGEST_LIMITS.batchMessages) {
      const max = INGEST_LIMITS.batchMessages;
      const todo = parsed.length === 0 ? 'send at least one' : `send them in requests of ${max} at most`;
      return json(400, { errors: [`a batch holds 1-${max} messages (got ${parsed.length}): ${todo}`] });
    }
    const checked = parsed.map((m) => check(m, now, deps.maxObservationAgeMs));
    const bad = checked.flatMap((c, index) => (c.ok ? [] : [{ index, errors: named(c.errors) }]));
    // All or nothing: the sender fixes or drops the bad ones and resends; duplicates of the good ones are harmless.
    if (bad.length > 0) return json(400, { errors: bad, accepted: 0 });
    messages = checked.map((c) => (c as { message: DeviceMessage }).message);
  }

  // What this device may send, for whom: 403 naming the section or the patient, nothing accepted.
  const refused = messages.flatMap((m, index) => {
    const errors = sectionRefusals(auth.principal, m, deps.backend);
    return errors.length > 0 ? [{ index, errors }] : [];
  });
  const admission = refused.length === 0 ? await admit(auth.principal, messages, deps) : undefined;
  for (const r of admission?.refusals ?? []) refused.push({ index: r.index, errors: [r.error] });
  if (refused.length > 0 || !admission) {
    admission?.release(false);
    const first = refused[0]!.errors[0]!;
    // Refused for the ceiling alone: valid, the server lacks room; 503 so that the sender keeps it and sends again.
    const full = admission?.refusals.every((r) => r.full) === true;
    const [status, lead, headers] = full ? [503, NO_ROOM, ROOM_LATER] : [403, FORBIDDEN, {}];
    return route === 'single'
      ? json(status, { error: `${lead}: ${first}`, errors: refused.flatMap((r) => r.errors) }, headers)
      : json(
          status,
          { error: `${lead}: message [${refused[0]!.index}] ${first}`, errors: refused, accepted: 0 },
          headers,
        );
  }

  let queued = false;
  try {
    if (!(await enqueueAll(messages, auth.deviceId, now, deps))) {
      return unavailable('the queue is unavailable; nothing was accepted, retry later');
    }
    queued = true;
  } finally {
    admission.release(queued);
  }
  return json(202, { accepted: messages.length, messageIds: messages.map((m) => m.messageId) });
}

/** Queues checked messages durably, all or none: true once committed, false when the queue refused them. */
export async function enqueueAll(
  messages: DeviceMessage[],
  sender: string,
  now: number,
  deps: Pick<IngestDeps, 'queue'>,
): Promise<boolean> {
  const receivedAt = iso(now);
  const queued: QueuedMessage[] = messages.map((message) => ({
    message,
    digest: messageDigest(message),
    receivedAt,
    sender,
  }));
  try {
    await deps.queue.enqueue(queued);
    return true;
  } catch {
    return false;
  }
}
