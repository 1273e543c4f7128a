// Which content types are JSON, once for every JSON route (device messages, FHIR, acknowledgements, the board API).

import { quoted, SENDER_MOST } from '#domain/printable.ts';

/**
 * `application/json` or a structured `+json` type (`application/fhir+json`), with parameters; a charset, when named,
 * UTF-8 (JSON is UTF-8: a body declared otherwise would be read wrong). Never text/plain or a form, so a browser's
 * cross-site form post is never taken as JSON; never look-alikes such as `application/json-seq` or `x-ndjson`.
 */
export function isJsonType(type: string | undefined): boolean {
  const { essence, params } = parse(type);
  if (essence !== 'application/json' && !/^application\/[a-z0-9!#$&^_.-]+\+json$/.test(essence)) return false;
  return params.every(([name, value]) => name !== 'charset' || /^utf-?8$/.test(value));
}

/** The `fhirVersion` parameter of a FHIR content type (`application/fhir+json; fhirVersion=4.0`), if named. */
export function fhirVersionOf(type: string | undefined): string | undefined {
  return parse(type).params.find(([name]) => name === 'fhirversion')?.[1];
}

function parse(type: string | undefined): { essence: string; params: [string, string][] } {
  const [essence = '', ...params] = (type ?? '').split(';').map((p) => p.trim().toLowerCase());
  return {
    essence,
    params: params.map((p) => {
      const [name = '', value = ''] = p.split('=').map((s) => s.trim());
      return [name, value.replace(/^"(.*)"$/, '$1')];
    }),
  };
}

/**
 * Why a body sent with a content coding (`Content-Encoding: gzip`, `deflate`, `br`) is refused (415), or undefined
 * when it has none or `identity`. No route inflates a body: read as it came, a gzipped message was answered "not
 * valid JSON" (an AR "does not start with an MSH segment"), which told the sender to fix a message that was right.
 * The codings are quoted as every sender echo is (at most 64 characters, control and format characters escaped):
 * until 2026-12-07 they were cut at 40 but went back raw.
 */
export function codingRefused(encoding: string | undefined): string | undefined {
  const codings = (encoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return undefined;
  return `content-encoding ${quoted(codings.join(', '), SENDER_MOST)} is not taken: send the body uncompressed`;
}
