// Ids that travel. The contract keeps messageId, patientId and deviceId to characters that are safe in HTTP
// headers, SNS message attributes, file names and log lines; ids derived from them add '|' and '#'. Whatever
// reaches a header, an attribute or a log still goes through wireId: an id stored before the contract was strict,
// or built from anything else, can then never make a transport refuse a record or split a log line.

const SAFE = /^[A-Za-z0-9._:~@/+=|#-]*$/;
const UNSAFE = /[^A-Za-z0-9._:~@/+=|#-]/gu;

/** The id as it is when every character is safe; otherwise each unsafe character percent-encoded (UTF-8). */
export function wireId(id: string): string {
  if (SAFE.test(id)) return id;
  return id.replace(UNSAFE, (ch) => {
    const code = ch.codePointAt(0)!;
    // A lone surrogate has no UTF-8 form (encodeURIComponent throws): its code unit, marked apart.
    if (code >= 0xd800 && code <= 0xdfff) return `%u${code.toString(16).toUpperCase()}`;
    // encodeURIComponent leaves ! ' ( ) * as they are: encode them too.
    return encodeURIComponent(ch).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  });
}

/**
 * Ids in the order of their UTF-16 code units (not the locale's): the same order on every backend and machine,
 * whatever order a store reads them in.
 */
export const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
