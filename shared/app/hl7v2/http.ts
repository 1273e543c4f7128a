// POST /v1/hl7v2: one HL7 v2 message as the body (x-application/hl7-v2+er7), the ACK as the answer's body, with
// the same device tokens as JSON ingest. 202 accepted (AA, or AE when some observations were refused), 400 AR
// (unreadable), 422 AE (nothing acceptable), 401/403/405/413/415 AR (403 also: nothing this device may send, for
// its patients: shared/app/scope.ts; 413 also: over the bounds of segments or delimiters, pcd01.ts), 503 AR (queue
// down: send again).
import { authenticateRequest, header, type HttpRequest, type HttpResponse, type IngestDeps } from '#app/ingest.ts';
import { refusalHeaders, RETRY_LATER, ROOM_LATER, type AuthResult } from '#app/auth.ts';
import { HL7_CONTENT_TYPE, HL7_MAX_BYTES, refusalAck, tooLong } from './ack.ts';
import { ingestHl7, type Hl7IngestDeps } from './ingest.ts';
import { codingRefused } from '#app/media-type.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';

export { HL7_ROUTE } from '#app/interfaces/routes.ts';

export type DeviceAnswer = HttpResponse & { messageIds: string[] };

export async function handleHl7Http(
  req: HttpRequest,
  deps: IngestDeps & Hl7IngestDeps,
  authenticated?: AuthResult,
): Promise<DeviceAnswer> {
  const answer = (
    status: number,
    ack: string,
    extra: Record<string, string> = {},
    messageIds: string[] = [],
  ): DeviceAnswer => ({
    status,
    headers: { 'content-type': `${HL7_CONTENT_TYPE}; charset=utf-8`, ...extra },
    body: ack,
    messageIds,
  });
  const refuse = (status: number, text: string, extra: Record<string, string> = {}) =>
    answer(status, refusalAck({ at: { segment: 'MSH', sequence: 1 }, code: 207, text }, deps.now()), extra);

  if (req.method.toUpperCase() !== 'POST') return refuse(405, 'use POST', { allow: 'POST' });
  const auth = authenticated ?? (await authenticateRequest(req, deps));
  if (!auth.ok) return refuse(auth.status, auth.error, refusalHeaders(auth));
  const type = header(req, 'content-type') ?? '';
  // Quoted and cut as FHIR's 415 is: a 5,000-character content type was echoed whole, twice (MSA-3, ERR-8), until
  // 2026-12-07.
  if (!/hl7-v2|er7/i.test(type))
    return refuse(415, `content-type ${type ? quoted(type, SENDER_MOST) : '(none)'} is not ${HL7_CONTENT_TYPE}`);
  const coded = codingRefused(header(req, 'content-encoding'));
  if (coded) return refuse(415, coded);
  // The body as read stops just past the limit (the embedded server reads no further): its size is not told.
  if (Buffer.byteLength(req.body, 'utf8') > HL7_MAX_BYTES) return answer(413, refusalAck(tooLong(), deps.now()));
  const a = await ingestHl7(req.body, auth.principal, deps);
  return answer(a.status, a.ack, a.full ? ROOM_LATER : a.status === 503 ? RETRY_LATER : {}, a.messageIds);
}

/** 503 AR: nothing was accepted, send again after a while. */
export function hl7Unavailable(text: string, now: number): DeviceAnswer {
  return {
    status: 503,
    headers: { 'content-type': `${HL7_CONTENT_TYPE}; charset=utf-8`, ...RETRY_LATER },
    body: refusalAck({ at: { segment: 'MSH', sequence: 1 }, code: 207, text }, now),
    messageIds: [],
  };
}
