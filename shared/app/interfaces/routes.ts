// The device routes of the HL7 v2 and FHIR interfaces, apart from their code so that the stack (infra/) can name
// them without loading the translators.
export const HL7_ROUTE = '/v1/hl7v2';
export const FHIR_BASE = '/fhir/r4';
/** The FHIR CapabilityStatement: GET, public, to the ingest function. */
export const FHIR_METADATA_ROUTE = `${FHIR_BASE}/metadata`;
/**
 * API Gateway route paths, all POST, all to the ingest function. A Bundle posted as a resource (`/fhir/r4/Bundle`)
 * has a route of its own, so that it is throttled as a Bundle, not at a single resource's rate.
 */
export const INTERFACE_ROUTES = [HL7_ROUTE, FHIR_BASE, `${FHIR_BASE}/Bundle`, `${FHIR_BASE}/{resource}`] as const;
