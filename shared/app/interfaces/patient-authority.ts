// The site's patient authority: the assigning authority (an HL7 HD namespace id, PID-3.4.1) whose identifiers are
// this system's patient ids. Set, the PID-3 repetition of that authority is the patient, whatever the order and
// whatever else PID-3 holds (shared/app/hl7v2/pcd01.ts); unset, the repetition typed MR or the only one.

/**
 * What the setting may be: 1-64 printable ASCII characters, none of HL7's delimiters (| ^ ~ \ &: a namespace id
 * cannot hold them unescaped), no space at either end (a value is compared trimmed).
 */
const PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;

export const PATIENT_AUTHORITY_RULE =
  "an assigning authority's namespace id (PID-3.4): 1-64 printable ASCII characters, none of | ^ ~ \\ &, no space at either end";

/** The text as the site's patient authority, or undefined when it cannot be one. */
export function parsePatientAuthority(text: string): string | undefined {
  return PATTERN.test(text) && !/[|^~\\&]/.test(text) ? text : undefined;
}
