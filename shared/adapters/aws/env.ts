// Lambda configuration from the environment the stack sets. Read once at cold start; a missing or bad value
// fails the cold start loudly instead of grading with the wrong settings.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MAX_OBSERVATION_AGE_VARIABLE } from '#domain/device-clock.ts';
import { RELEASE_VARIABLE } from '#app/release.ts';

/** The environment variables the stack sets on the functions (names shared with infra/). */
export const ENV = {
  stateTable: 'CRS_STATE_TABLE',
  tokensTable: 'CRS_TOKENS_TABLE',
  queueUrl: 'CRS_QUEUE_URL',
  topicArn: 'CRS_PAGES_TOPIC_ARN',
  pagesTable: 'CRS_PAGES_TABLE',
  auditTable: 'CRS_AUDIT_TABLE',
  /** The long tail of seen messages (the grade function's). */
  seenTable: 'CRS_SEEN_TABLE',
  /** The escalation timers' queue (delayed messages that wake the escalate function). */
  escalationQueueUrl: 'CRS_ESCALATION_QUEUE_URL',
  /** The Secrets Manager secret that signs acknowledge links. */
  ackSecretArn: 'CRS_ACK_SECRET_ARN',
  /** Acknowledge links are this plus the token (the HTTP API's URL and "/ack/"). */
  ackBaseUrl: 'CRS_ACK_BASE_URL',
  /** Optional: the site's zone for HL7 v2 times sent without an offset (refused otherwise). */
  hl7Zone: 'CRS_HL7_ZONE',
  /** Optional: the assigning authority (PID-3.4) whose ids are this system's patient ids (docs/interfaces.md). */
  hl7PatientAuthority: 'CRS_HL7_PATIENT_AUTHORITY',
  /** Optional: the FHIR identifier system (a URI) whose values are this system's patient ids (docs/interfaces.md). */
  fhirPatientSystem: 'CRS_FHIR_PATIENT_SYSTEM',
  /**
   * Optional: the file of the site's FHIR drug codes shipped beside the ingest handler (`-c fhirDrugCodes`), as
   * CRS_CONFIG_FILE: a map of a site's products soon exceeds Lambda's 4 KB of variables a function.
   */
  fhirDrugCodesFile: 'CRS_FHIR_DRUG_CODES_FILE',
  /** Optional: how many days before its arrival an observedAt may be (shared/domain/device-clock.ts; default 7). */
  maxObservationAgeDays: MAX_OBSERVATION_AGE_VARIABLE,
  /**
   * Optional: the file, shipped beside the handler (a path relative to the function's code, LAMBDA_TASK_ROOT), of
   * JSON overrides of the grading configuration (DEFAULT_CONFIG otherwise). A file, not the JSON itself in a variable:
   * a site's protocol texts soon exceed Lambda's 4 KB of variables a function.
   */
  gradingConfigFile: 'CRS_CONFIG_FILE',
  /**
   * The teams the paging config deployed gives no endpoint (comma-separated; absent when it gives every team one, or
   * none at all): the notify and escalate functions set their open pages aside, named, rather than publish them to
   * nobody (a site that removed a team's endpoints with its routing while its pages were open: 2026-12-07).
   */
  teamsWithoutEndpoints: 'CRS_TEAMS_WITHOUT_ENDPOINTS',
  /** The release the stack was synthesized from (shared/app/release.ts): on every log line, in the console. */
  release: RELEASE_VARIABLE,
} as const;

/** The name of that file in a function's code (infra/stack.ts ships it there). */
export const CONFIG_FILE = 'crs-config.json';
/** The name of the site drug codes' file in the ingest function's code (CRS_FHIR_DRUG_CODES_FILE). */
export const DRUG_CODES_FILE = 'crs-fhir-drug-codes.json';

export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

/**
 * The text of the file the stack ships beside the handler that `variable` names (a path relative to the function's
 * code, LAMBDA_TASK_ROOT), and how to name it in an error; undefined when the variable is not set.
 */
export function shippedFile(
  variable: string,
  env: NodeJS.ProcessEnv = process.env,
): { named: string; text: string } | undefined {
  const file = env[variable];
  if (!file) return undefined;
  const path = resolve(env.LAMBDA_TASK_ROOT ?? process.cwd(), file);
  const named = `${variable} (${path})`;
  try {
    return { named, text: readFileSync(path, 'utf8') };
  } catch (err) {
    throw new Error(`${named} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
