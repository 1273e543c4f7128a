// The site's FHIR patient system: the identifier system (a URI) whose values are this system's patient ids, as the
// HL7 v2 patient authority is (patient-authority.ts). Set, the identifier of that system is the patient (a
// subject.identifier, or one among a bundled Patient's identifiers), whatever else is there (shared/app/fhir/
// translate.ts); unset, the identifier typed MR or untyped.

/**
 * What the setting may be: an absolute URI (a scheme, a colon, then something), 1-1024 printable ASCII characters,
 * no space (Identifier.system is compared exactly: a URI cannot hold one).
 */
const PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$/;

export const PATIENT_SYSTEM_RULE =
  'an absolute URI (an Identifier.system: http://hospital.example/mrn, urn:oid:1.2.3.4): a scheme and a colon, then the rest; 1-1024 printable ASCII characters, no space';

/** The text as the site's FHIR patient system, or undefined when it cannot be one. */
export function parsePatientSystem(text: string): string | undefined {
  return text.length <= 1024 && PATTERN.test(text) ? text : undefined;
}
