// The JSON body of a write that is not a device message: POST /v1/acks (ack-flow.ts, both backends) and the embedded
// board's writes (acknowledgements, silences, monitoring, outbox and dead letters). One reader, so the two refuse
// alike: a key sent twice was refused on /v1/acks but kept the last on the board (`"by": "Dr A", "by": "Mallory"`
// acknowledged as Mallory's) until 2026-12-06. An unknown field is named here as the contract names one, for every
// route: silences and the monitoring end (checkSilence, changeMonitoring) call unknownFields themselves.
import { unknownKeys } from '#domain/unknown-keys.ts';
import { codingRefused, isJsonType } from './media-type.ts';
import { duplicateKey, pathText, TWICE } from './json-keys.ts';

export type JsonBodyRead =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; status: 400 | 413 | 415; errors: string[] };

/** 415 for a body not sent as JSON or sent with a content coding (nothing inflates it), or undefined. */
export function jsonHeadersRefused(
  req: { contentType: string | undefined; contentEncoding: string | undefined },
  example: string,
): JsonBodyRead | undefined {
  if (!isJsonType(req.contentType))
    return { ok: false, status: 415, errors: [`content-type: send application/json, e.g. ${example}`] };
  const coded = codingRefused(req.contentEncoding);
  return coded ? { ok: false, status: 415, errors: [coded] } : undefined;
}

/**
 * A body of at most `limit` bytes that is one JSON object, each key once and (given `fields`) only those: 413 or
 * 400 naming what is wrong otherwise.
 */
export function jsonObject(body: string, example: string, limit: number, fields?: readonly string[]): JsonBodyRead {
  if (Buffer.byteLength(body) > limit) return { ok: false, status: 413, errors: [`body: more than ${limit} bytes`] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    return { ok: false, status: 400, errors: [`body: not a JSON object, e.g. ${example}`] };
  // JSON.parse keeps the last of a key sent twice: which one the sender meant would be a guess.
  const twice = duplicateKey(body);
  if (twice) return { ok: false, status: 400, errors: [`${pathText(twice)}: ${TWICE}`] };
  const unknown = fields ? unknownFields(parsed as Record<string, unknown>, fields) : [];
  if (unknown.length > 0) return { ok: false, status: 400, errors: unknown };
  return { ok: true, body: parsed as Record<string, unknown> };
}

/**
 * The error naming the fields of `body` not among `fields` as the contract names them (`unknown field "nmae" (did
 * you mean "name"?); allowed: ...`, the first 5), none when every one is known. Until 2026-12-06 the silences and
 * monitoring routes said `nmae: unknown field (this request takes only ...)`, one error a field.
 */
export function unknownFields(body: Record<string, unknown>, fields: readonly string[]): string[] {
  const unknown = Object.keys(body).filter((k) => !fields.includes(k));
  return unknown.length > 0 ? [unknownKeys(unknown, [...fields], 'field')] : [];
}

/** Both, in the order /v1/acks answers them: 413, 415, 400. */
export function readJsonObject(
  req: { contentType: string | undefined; contentEncoding: string | undefined; body: string },
  example: string,
  limit: number,
  fields?: readonly string[],
): JsonBodyRead {
  if (Buffer.byteLength(req.body) > limit) return jsonObject(req.body, example, limit, fields);
  return jsonHeadersRefused(req, example) ?? jsonObject(req.body, example, limit, fields);
}
