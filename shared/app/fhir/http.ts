// FHIR R4 ingest over HTTP, with the same device tokens as JSON ingest: POST /fhir/r4/Bundle (or the base) with a
// batch, transaction or collection Bundle, or POST /fhir/r4/<Observation|MedicationAdministration|Encounter|Procedure>
// with one resource. Every contract message passes the ingest's own check and is queued durably before it is answered.
// A transaction, a collection or a single resource is all or nothing (422 with an OperationOutcome naming each
// problem's expression); a batch takes each entry on its own. A batch, and a transaction taken, are answered 200
// with a batch-response or transaction-response Bundle; a collection or a resource taken, 202 with an
// OperationOutcome.
import type { Bundle, BundleEntry, OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import {
  INGEST_LIMITS,
  admit,
  authenticateRequest,
  enqueueAll,
  header,
  jsonDepth,
  scopedCheck,
  type HttpRequest,
  type IngestDeps,
} from '#app/ingest.ts';
import { duplicateKey, KEY_SHOWN, pathText, TWICE } from '#app/json-keys.ts';
import { refusalHeaders, RETRY_LATER, ROOM_LATER, type AuthResult } from '#app/auth.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { DeviceAnswer } from '#app/hl7v2/http.ts';
import { CONTRACT_ID } from '#app/interfaces/ids.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { NOT_MONITORED, sortIfKnown } from '#app/interfaces/known.ts';
import { screen } from '#app/interfaces/screen.ts';
import { capabilityStatement } from './capability.ts';
import { FHIR_RESOURCES, entriesOf, translateResources, type FhirIssue } from './translate.ts';

import { FHIR_BASE } from '#app/interfaces/routes.ts';
import { codingRefused, fhirVersionOf, isJsonType } from '#app/media-type.ts';

export { FHIR_BASE };
export const FHIR_CONTENT_TYPE = 'application/fhir+json';

type OutcomeIssue = Omit<FhirIssue, 'severity' | 'code'> & { code: string; severity?: 'warning' | 'information' };

/**
 * Text as an R4 `string` (no control character but tab, CR and LF; Unicode): what a sender sent, quoted in a
 * diagnostics (a resource type, the JSON parser's words on a body that is none), is shown escaped, `\u0001`. Such a
 * character made the OperationOutcome invalid FHIR.
 */
const fhirString = (text: string) =>
  text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

export function outcome(issues: OutcomeIssue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map(
      (i): OperationOutcomeIssue => ({
        severity: i.severity ?? 'error',
        code: i.code as OperationOutcomeIssue['code'],
        diagnostics: fhirString(i.text),
        ...(i.expression ? { expression: [i.expression] } : {}),
      }),
    ),
  };
}

const fhir = (
  status: number,
  body: unknown,
  messageIds: string[] = [],
  extra: Record<string, string> = {},
): DeviceAnswer => ({
  status,
  headers: { 'content-type': `${FHIR_CONTENT_TYPE}; charset=utf-8`, ...extra },
  body: JSON.stringify(body),
  messageIds,
});

const problem = (status: number, code: string, text: string, expression = '', extra: Record<string, string> = {}) =>
  fhir(status, outcome([{ code, text, expression }]), [], extra);

/** A resource type with its article: "an Observation", "a Bundle". */
const aType = (type: string): string => `${/^[AEIOU]/.test(type) ? 'an' : 'a'} ${type}`;

/** 503 'transient': nothing was accepted, send again after a while. */
export const fhirUnavailable = (text: string): DeviceAnswer => problem(503, 'transient', text, '', RETRY_LATER);

export type FhirIngestDeps = IngestDeps & {
  /** The site's patient system: the identifier system whose values are this system's patient ids (translate.ts). */
  fhirPatientSystem?: string;
  /** The site's drug codes (shared/app/interfaces/drug-codes.ts), read before the built-in table. */
  fhirDrugCodes?: SiteDrugCodes;
};

const inside = (expression: string, at: string) => expression === at || expression.startsWith(`${at}.`);

export async function handleFhirHttp(
  req: HttpRequest,
  deps: FhirIngestDeps,
  authenticated?: AuthResult,
): Promise<DeviceAnswer> {
  // The base itself or one segment under it, as API Gateway routes them: no trailing slash, no empty segment.
  const tail = req.path.slice(FHIR_BASE.length);
  const rest = tail === '' ? '' : /^\/[^/]+$/.test(tail) ? tail.slice(1) : undefined;
  if (rest === 'metadata') {
    // Public, as FHIR clients expect: it says what the endpoint takes, nothing of any patient.
    if (req.method.toUpperCase() !== 'GET') return problem(405, 'not-supported', 'use GET', '', { allow: 'GET' });
    return fhir(200, capabilityStatement());
  }
  const allowed = ['', 'Bundle', ...FHIR_RESOURCES];
  if (rest === undefined || !allowed.includes(rest))
    return problem(
      404,
      'not-supported',
      `no route ${quoted(req.path, SENDER_MOST)}; POST ${FHIR_BASE}/Bundle or ${FHIR_BASE}/<${FHIR_RESOURCES.join('|')}>, GET ${FHIR_BASE}/metadata`,
    );
  if (req.method.toUpperCase() !== 'POST') return problem(405, 'not-supported', 'use POST', '', { allow: 'POST' });
  const auth = authenticated ?? (await authenticateRequest(req, deps));
  if (!auth.ok) {
    const code = auth.status === 401 ? 'login' : auth.status === 503 ? 'transient' : 'security';
    return problem(auth.status, code, auth.error, '', refusalHeaders(auth));
  }
  const type = header(req, 'content-type') ?? '';
  if (!isJsonType(type))
    return problem(
      415,
      'not-supported',
      `content-type ${type ? quoted(type, SENDER_MOST) : '(none)'} is not ${FHIR_CONTENT_TYPE}`,
    );
  const version = fhirVersionOf(type);
  // A body declared of another FHIR version (STU3's 3.0) may mean other things by the same names: never read as R4.
  if (version !== undefined && !/^4\.0(\.\d+)?$/.test(version))
    return problem(
      415,
      'not-supported',
      `content-type says fhirVersion=${version}; this server takes FHIR R4 (4.0) only`,
    );
  const coded = codingRefused(header(req, 'content-encoding'));
  if (coded) return problem(415, 'not-supported', coded);
  const size = Buffer.byteLength(req.body, 'utf8');
  if (size > INGEST_LIMITS.batchBytes)
    return problem(413, 'too-costly', `body is ${size} bytes; the limit is ${INGEST_LIMITS.batchBytes}`);
  if (jsonDepth(req.body, INGEST_LIMITS.fhirDepth) > INGEST_LIMITS.fhirDepth)
    return problem(400, 'structure', `the body nests arrays and objects more than ${INGEST_LIMITS.fhirDepth} deep`);
  // The parser's own words for a byte order mark show an invisible character ("Unexpected token '\uFEFF'").
  if (req.body.startsWith('\uFEFF'))
    return problem(400, 'structure', 'the body starts with a byte order mark (U+FEFF): send the JSON without it');
  let body: unknown;
  try {
    body = JSON.parse(req.body);
  } catch (err) {
    return problem(400, 'structure', `the body is not JSON: ${(err as Error).message}`);
  }
  const twice = duplicateKey(req.body);
  if (twice) {
    // Named from the resource's type, a FHIRPath when every key is an element's name (else no expression).
    const type = (body as { resourceType?: unknown }).resourceType;
    const at = pathText(twice);
    const path =
      typeof type === 'string' && /^[A-Z][A-Za-z]{0,63}$/.test(type)
        ? `${type}${at.startsWith('[') ? '' : '.'}${at}`
        : at;
    const fhirPath = twice.every(
      (p) => typeof p === 'number' || (p.length <= KEY_SHOWN && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)),
    );
    return problem(400, 'structure', `${path}: ${TWICE}`, fhirPath && path !== at ? path : '');
  }
  const entries = entriesOf(body);
  if (!entries.ok) return fhir(400, outcome(entries.issues));
  const expected = rest === '' ? 'Bundle' : rest;
  const sent = (body as { resourceType: string }).resourceType;
  // No expression: the resource's type is no element of it (`resourceType` was named, which is no FHIRPath of R4's).
  if (sent !== expected) {
    // Where to send it instead (2026-12-06: the sender was told only what the route takes).
    const where = (['Bundle', ...FHIR_RESOURCES] as string[]).includes(sent)
      ? `POST it to ${FHIR_BASE}/${sent}`
      : `this system takes ${FHIR_RESOURCES.join(', ')} (or a Bundle of them)`;
    // A name as R4 writes one is said plain; anything else quoted, bounded and printable (2026-12-07: echoed whole).
    const named = /^[A-Z][A-Za-z]{0,63}$/.test(sent) ? aType(sent) : `resourceType ${quoted(sent, SENDER_MOST)}`;
    return problem(400, 'invalid', `this route takes ${aType(expected)}, not ${named}: ${where}`);
  }

  const batch = entries.type === 'batch';
  const now = deps.now();
  // What names no device is sent as the token's device, when that is a contract id (crs token issue takes more),
  // else as `fhir-client`, as HL7 falls back to `hl7v2-gateway`; the token's device is the sender all the same.
  const deviceId = CONTRACT_ID.test(auth.deviceId) ? auth.deviceId : 'fhir-client';
  const scoped = scopedCheck(auth.principal, now, deps.maxObservationAgeMs, deps.backend);
  const options = {
    deviceId,
    ...(deps.fhirPatientSystem !== undefined ? { patientSystem: deps.fhirPatientSystem } : {}),
    ...(deps.fhirDrugCodes !== undefined ? { drugCodes: deps.fhirDrugCodes } : {}),
  };
  // A batch answers each entry on its own: one refused (422) gives nothing to what is queued. A part refused after
  // translation (a value out of the contract's range, two values at one time) refused its resource, whose other
  // parts were queued all the same (an oxygen Observation's device with its FiO2 refused): such resources are left
  // out, their issues kept, and the rest translated again, until no refused resource gives anything.
  const excluded = new Map<string, OutcomeIssue[]>();
  let pass = translateAndScreen(entries.items, options, batch, scoped);
  while (batch) {
    const refused = new Set(pass.issues.filter((i) => i.severity === undefined).map((i) => resourceOf(i.expression)));
    const giving = pass.screened.flatMap((x) => x.giving).filter((r) => refused.has(r) && !excluded.has(r));
    if (giving.length === 0) break;
    for (const r of new Set(giving))
      excluded.set(
        r,
        pass.issues.filter((i) => inside(i.expression, r)),
      );
    pass = translateAndScreen(
      entries.items.filter((item) => !excluded.has(item.at)),
      options,
      batch,
      scoped,
    );
  }
  const issues: OutcomeIssue[] = [...[...excluded.values()].flat(), ...pass.issues];
  const { screened, refusedWith } = pass;
  // An Encounter is taken only for a patient the server knows, or one this request gives other data of
  // (shared/app/interfaces/known.ts); for another, the sender is told so, never with an error.
  const sorted = await sortIfKnown(screened, auth.principal, deps.patients);
  for (const x of sorted.refused) {
    const issue: OutcomeIssue = { expression: x.item.whole, code: 'forbidden', text: x.error };
    issues.push(issue);
    refusedWith.push({ issue, resources: x.item.resources });
  }
  // Said to a sender whose request is taken, never in a refusal of what the token may not send: that answer tells
  // no token which patients are monitored (docs/interfaces.md).
  const notMonitored = new Set<OutcomeIssue>();
  for (const whole of new Set(sorted.notMonitored.map((x) => x.whole))) {
    const issue: OutcomeIssue = {
      expression: whole,
      code: 'informational',
      severity: 'information',
      text: `Encounter: ${NOT_MONITORED}`,
    };
    notMonitored.add(issue);
    issues.push(issue);
  }
  const taken = sorted.taken;
  const admission = await admit(
    auth.principal,
    taken.map((s) => s.message),
    deps,
  );
  const out = new Set(admission.refusals.map((x) => x.index));
  for (const x of admission.refusals) {
    // No room for a new patient: `transient` (send again), as a queue down is, never `forbidden`.
    const code = x.full ? 'transient' : 'forbidden';
    const issue: OutcomeIssue = { expression: taken[x.index]!.whole, code, text: x.error };
    issues.push(issue);
    refusedWith.push({ issue, resources: taken[x.index]!.resources });
  }
  if (batch) issues.push(...alsoRefused(refusedWith, issues));
  const messages = taken.flatMap((s, i) => (out.has(i) ? [] : [s.message]));
  const errors = issues.filter((i) => i.severity === undefined);
  const forbidden = errors.length > 0 && errors.every((i) => i.code === 'forbidden');
  // One resource or a transaction refused for a token's scope, and perhaps for room too: 403, final (room would not
  // mend it), as JSON and HL7 v2 answer; until 2026-12-06 a transaction mixing the two was a 422. (A batch answers
  // each entry on its own.)
  const scopeWins =
    forbidden ||
    (errors.some((i) => i.code === 'forbidden') &&
      errors.every((i) => i.code === 'forbidden' || i.code === 'transient'));
  // Refused for the ceiling (and nothing else the sender must mend): 503, send again once there is room.
  const full = errors.length > 0 && errors.every((i) => i.code === 'transient');
  const refusal = issues.filter((i) => !notMonitored.has(i));
  let queued = false;
  try {
    if (!batch && full) return fhir(503, outcome(refusal), [], ROOM_LATER);
    if (!batch && errors.length > 0) return fhir(scopeWins ? 403 : 422, outcome(scopeWins ? refusal : issues));
    if (batch && messages.length === 0 && full) return fhir(503, outcome(refusal), [], ROOM_LATER);
    if (batch && messages.length === 0 && forbidden) return fhir(403, outcome(refusal));
    if (messages.length > 0 && !(await enqueueAll(messages, auth.deviceId, now, deps))) {
      return fhirUnavailable('the queue is unavailable; nothing was accepted, send again later');
    }
    queued = messages.length > 0;
  } finally {
    admission.release(queued);
  }
  const messageIds = messages.map((m) => m.messageId);
  // A batch, and a transaction that succeeded, are answered as FHIR says (R4 http.html, batch/transaction): 200
  // with a Bundle of one response a request entry, in its order; a transaction that failed was answered above.
  if (entries.type === 'batch' || entries.type === 'transaction')
    return fhir(200, entryResponses(`${entries.type}-response`, entries.items, issues), messageIds);
  const info: OutcomeIssue[] = [
    {
      expression: '',
      code: 'informational',
      severity: 'information',
      text: `accepted ${messages.length} message(s)${messageIds.length ? `: ${messageIds.join(' ')}` : ''}`,
    },
  ];
  return fhir(202, outcome([...info, ...issues]), messageIds);
}

/** A resource's expression (`Bundle.entry[2].resource`) from one of its issues' expressions. */
const resourceOf = (expression: string) => /^Bundle\.entry\[\d+\]\.resource/.exec(expression)?.[0];

type Screened = { message: DeviceMessage; whole: string; resources: string[]; giving: string[]; ifKnown?: true };

/**
 * The resources translated into contract messages, each passed through the ingest's check (the scope's too): the
 * messages (with what was refused of them taken out), every issue, and the resources each refusal refuses.
 */
function translateAndScreen(
  items: { resource: unknown; at: string; fullUrl?: string }[],
  options: Parameters<typeof translateResources>[1],
  batch: boolean,
  scoped: ReturnType<typeof scopedCheck>,
) {
  const t = translateResources(items, options, batch);
  const issues: OutcomeIssue[] = [...t.issues];
  const screened: Screened[] = [];
  // A refusal said at one resource that refuses others' data too (batch only: each entry is answered on its own).
  const refusedWith: { issue: OutcomeIssue; resources: string[] }[] = [];
  for (const one of t.translated) {
    const s = screen(one, scoped.check);
    for (const p of s.problems) {
      const issue: OutcomeIssue = {
        expression: p.at,
        code: scoped.refusals.has(p.text) ? 'forbidden' : 'value',
        text: p.text,
      };
      issues.push(issue);
      // The message refused whole: every resource of it; a part (a section several resources gave): its resources.
      const parts = Object.keys(one.origins).filter((k) => one.origins[k] === p.at);
      refusedWith.push({ issue, resources: s.message ? parts.flatMap((k) => one.parts[k] ?? []) : one.resources });
    }
    if (s.message) {
      // The resources that give what is queued of the message.
      const kept = Object.entries(s.message).flatMap(([k, v]) =>
        v && typeof v === 'object' && !Array.isArray(v) ? [k, ...Object.keys(v).map((f) => `${k}.${f}`)] : [k],
      );
      const giving = [...new Set(kept.flatMap((k) => one.parts[k] ?? []))];
      screened.push({
        message: s.message,
        whole: one.whole,
        resources: one.resources,
        giving,
        ...(one.ifKnown ? { ifKnown: one.ifKnown } : {}),
      });
    }
  }
  return { issues, screened, refusedWith };
}

/**
 * In a batch, the resources of one patient, source and time are one message: refused (its time too old, no room
 * for its patient, a section the token may not send), it is refused for each resource that gave it, each entry then
 * answered 422 with the reason. Said at the first alone, the others were answered `202 Accepted` though nothing of
 * them was queued, and a sender would never send them again. One issue a resource, the first reason.
 */
function alsoRefused(refusedWith: { issue: OutcomeIssue; resources: string[] }[], issues: OutcomeIssue[]) {
  const refused = new Set(issues.filter((i) => i.severity === undefined).map((i) => resourceOf(i.expression)));
  const out: OutcomeIssue[] = [];
  for (const { issue, resources } of refusedWith) {
    for (const resource of resources) {
      if (refused.has(resource)) continue;
      refused.add(resource);
      out.push({
        expression: resource,
        code: issue.code,
        text: `refused with ${issue.expression} (one message: one patient, source and time): ${issue.text}`,
      });
    }
  }
  return out;
}

/**
 * A batch-response or transaction-response: each request entry's status, `202 Accepted` (queued, to be graded) or
 * `422 Unprocessable Entity` (a batch's entry refused; `503 Service Unavailable` for want of room alone), with its own issues (warnings, information, errors) as its
 * outcome. A transaction is answered so only when nothing of it was refused: each of its entries is `202 Accepted`.
 */
function entryResponses(
  type: 'batch-response' | 'transaction-response',
  items: { at: string }[],
  issues: OutcomeIssue[],
): Bundle {
  return {
    resourceType: 'Bundle',
    type,
    entry: items.map((item): BundleEntry => {
      const own = issues.filter((i) => inside(i.expression, item.at));
      const errors = own.filter((i) => i.severity === undefined);
      // An entry refused only for want of room (the ceiling): 503, which an engine sends again; 422 it drops.
      const status =
        errors.length === 0
          ? '202 Accepted'
          : errors.every((i) => i.code === 'transient')
            ? '503 Service Unavailable'
            : '422 Unprocessable Entity';
      return {
        response: {
          status,
          ...(own.length > 0 ? { outcome: outcome(own) } : {}),
        },
      };
    }),
  };
}
