// The deployed shape, read from the CDK stack itself: `crs serve --backend aws` is handed the synthesized template
// (infra/synthesize.ts: the same buildApp as `npm run synth`, cdk-nag included, Lambda bundling skipped; bin/crs.js
// passes it in, so nothing under shared/ imports infra/) and provisions and runs what the template says, so the
// local host can never drift from a second, hand-written list of resources.
import { PAGE_TEAMS } from '#domain/paging.ts';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: unknown;
}

interface Template {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown }>;
}

export type FunctionRole = 'ingest' | 'grade' | 'notify' | 'escalate' | 'ack';

export interface Synthesized {
  template: Template;
  /** The logical id of each function in the template. */
  functions: Record<FunctionRole, string>;
  /** The files the stack ships in each function's code beside its handler (name: content; CRS_CONFIG_FILE's, CRS_FHIR_DRUG_CODES_FILE's). */
  files: Record<FunctionRole, Record<string, string>>;
}

/**
 * The paging config used when the operator gives none: every team subscribed, on every ward. Its endpoints are
 * placeholders (the reserved .invalid domain): locally, each team's subscription is replaced by a queue.
 */
export const LOCAL_PAGING = {
  teams: Object.fromEntries(PAGE_TEAMS.map((team) => [team, { https: [`https://${team}.pages.invalid/`] }])),
};

export interface SynthOptions {
  /** The paging config (as `-c paging=...`); LOCAL_PAGING when absent. */
  paging?: unknown;
  /** Grading configuration overrides (as `-c gradingConfig=...`), shipped to the functions as CRS_CONFIG_FILE. */
  gradingOverrides?: Record<string, unknown>;
  /** How the ingest function reads HL7 v2 (as `-c hl7Zone=...`, `-c hl7PatientAuthority=...`): its environment. */
  hl7Zone?: string;
  hl7PatientAuthority?: string;
  /** How it reads FHIR (as `-c fhirPatientSystem=...`): the identifier system of the patient ids. */
  fhirPatientSystem?: string;
  /**
   * The site's FHIR drug codes (as `-c fhirDrugCodes=...`: the map itself, `[{ system, code, drug }]`), shipped to the
   * ingest function as CRS_FHIR_DRUG_CODES_FILE.
   */
  fhirDrugCodes?: unknown[];
  /** How many days before its arrival an observedAt may be (as `-c maxObservationAgeDays=...`). */
  maxObservationAgeDays?: number;
}

/** What a host synthesizes from these options (the paging config LOCAL_PAGING when none is given). */
export function stackOf(o: SynthOptions): SynthOptions & { paging: unknown } {
  return {
    paging: o.paging ?? LOCAL_PAGING,
    ...(o.gradingOverrides ? { gradingOverrides: o.gradingOverrides } : {}),
    ...(o.hl7Zone !== undefined ? { hl7Zone: o.hl7Zone } : {}),
    ...(o.hl7PatientAuthority !== undefined ? { hl7PatientAuthority: o.hl7PatientAuthority } : {}),
    ...(o.fhirPatientSystem !== undefined ? { fhirPatientSystem: o.fhirPatientSystem } : {}),
    ...(o.fhirDrugCodes !== undefined ? { fhirDrugCodes: o.fhirDrugCodes } : {}),
    ...(o.maxObservationAgeDays !== undefined ? { maxObservationAgeDays: o.maxObservationAgeDays } : {}),
  };
}

/** Synthesizes the stack with this paging config and these overrides (infra/synthesize.ts). */
export type Synthesize = (o: SynthOptions & { paging: unknown }) => Promise<Synthesized>;
