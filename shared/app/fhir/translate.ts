// FHIR R4 resources to contract messages: Observations (vital-signs LOINC codes, the oxygen device, the ICE score
// and ICANS domains, weight, labs), MedicationAdministrations (vasopressor infusions, CRS medications), Encounters
// (bed and ward; a finished one, the end of monitoring) and Procedures (the cell-therapy infusion). Each resource
// gives fragments; fragments of one patient, source and time become one contract message (an oxygen device and its
// FiO2 sent as two Observations are one oxygen section). Every problem names its FHIRPath expression. Pure: no
// clock, no I/O.
import type {
  Bundle,
  CodeableConcept,
  Encounter,
  Medication,
  MedicationAdministration,
  Observation,
  ObservationComponent,
  Procedure,
  Quantity,
  Reference,
} from '@medplum/fhirtypes';
import { LOINC, LOINC_BP_PANEL, type CodedField } from '#domain/codes.ts';
import {
  measurementProblem,
  type SOURCE_KINDS,
  type THERAPIES,
  type VASOPRESSOR_UNITS,
  type VasopressorDrug,
} from '#domain/contract.ts';
import { withoutFloatNoise } from '#domain/numbers.ts';
import { PROBLEMS_NAMED, quoted, SENDER_MOST } from '#domain/printable.ts';
import { iso, MAX_OFFSET_MINUTES } from '#domain/time.ts';
import { CONTRACT_ID, compactTime, idPart, messageIdOf } from '#app/interfaces/ids.ts';
import type { Translated } from '#app/interfaces/screen.ts';
import {
  CRS_CODES,
  CRS_OBSERVATIONS,
  LOINC_SYSTEM,
  MDC_SYSTEM,
  TEMPERATURE_SITE_RANK,
  UCUM,
  chartedFieldOf,
  endReasonOf,
  enumOf,
  medicationOf,
  oxygenDeviceOf,
  RXNORM,
  RXNORM_VASOPRESSORS,
  type SiteDrugCodes,
  siteNotGraded,
  vasopressorOf,
  vasopressorsNamed,
} from '#app/interfaces/terminology.ts';
import { toContractUnit, unitlessOrPoints, type SentUnit } from '#app/interfaces/units.ts';
import { fieldOfLoinc, fieldOfMdc, rankOfLoinc, rankOfMdc } from '#app/interfaces/codes.ts';
import { emptyValue, noResourceType, unknownElements } from './elements.ts';

type IssueCode =
  | 'invalid'
  | 'required'
  | 'value'
  | 'code-invalid'
  | 'not-supported'
  | 'structure'
  | 'forbidden'
  | 'too-costly';

export interface FhirIssue {
  expression: string;
  code: IssueCode;
  text: string;
  /** A warning refuses nothing (a resource or code this system does not grade, in a flowsheet's Bundle). */
  severity?: 'warning';
}

type Kind = (typeof SOURCE_KINDS)[number];

/** Resource types this interface takes. */
export const FHIR_RESOURCES = ['Observation', 'MedicationAdministration', 'Encounter', 'Procedure'] as const;

/** LOINC codes beyond the vital signs (crs-rules.md section 7): body weight and the CRS laboratory values. */
export const LOINC_WEIGHT = '29463-7';
const LOINC_LABS: Record<string, { field: 'crpMgL' | 'ferritinNgMl' | 'il6PgMl'; units: Record<string, number> }> = {
  '1988-5': { field: 'crpMgL', units: { 'mg/L': 1, 'mg/dL': 10 } },
  '2276-4': { field: 'ferritinNgMl', units: { 'ng/mL': 1, 'ug/L': 1 } },
  '26881-3': { field: 'il6PgMl', units: { 'pg/mL': 1, 'ng/L': 1 } },
};

/** Vasopressor rate units (UCUM, and the contract's own spelling) onto the contract's units. */
const RATE_UNITS: Record<string, (typeof VASOPRESSOR_UNITS)[number]> = {
  'ug/kg/min': 'mcg/kg/min',
  'mcg/kg/min': 'mcg/kg/min',
  'ug/min': 'mcg/min',
  'mcg/min': 'mcg/min',
  'U/min': 'units/min',
  '[U]/min': 'units/min',
  '[iU]/min': 'units/min',
  'units/min': 'units/min',
};

/** Therapy codes (CRS_CODES) of the infusion Procedure. */
const THERAPY_CODES: Record<string, (typeof THERAPIES)[number]> = {
  'car-t-infusion': 'car-t',
  'bispecific-infusion': 'bispecific',
};

interface Fragment {
  patientId: string;
  ms: number;
  kind: Kind;
  deviceId: string;
  /** 'vitals.spo2', 'oxygen.device', 'vasopressors', 'medications', 'neuro.iceScore', 'enrolment.bed', ... */
  key: string;
  value: unknown;
  /** The resource's expression (its entry in a Bundle), and the value's own. */
  resource: string;
  at: string;
  /** The resource's identity, for the messageId. */
  id: string;
  /** An Encounter's: taken for a patient the server knows only (shared/app/interfaces/known.ts). */
  ifKnown?: true;
  /** A measurement's rank (HL7 v2's SOURCE_RANK): of one source and time, only the best-ranked is read. */
  rank?: number;
}

/** A message, and the resources it was made of: each removable part's, and all of them. */
type FhirTranslated = Translated<string> & {
  /** The resources (their expressions) each removable part ('vitals.spo2', 'vasopressors', 'oxygen') came from. */
  parts: Record<string, string[]>;
  /** Every resource of the message, `whole` first. */
  resources: string[];
};

export interface FhirTranslation {
  translated: FhirTranslated[];
  issues: FhirIssue[];
}

export interface FhirOptions {
  /** The sender's device id (its token), for resources that name no device. */
  deviceId: string;
  /**
   * The site's patient system (shared/app/interfaces/patient-system.ts): the identifier of that system is the
   * patient, whatever else is there; without it, the identifier typed MR or untyped.
   */
  patientSystem?: string;
  /** The site's drug codes (shared/app/interfaces/drug-codes.ts), read before the built-in table. */
  drugCodes?: SiteDrugCodes;
}

/** A URI (an extension's url, a coding's system) is quoted to 100 characters: 64 would cut a usual one's name. */
const URI_MOST = 100;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A typed part of a resource that is really there as an object (the JSON came from outside). */
const present = <T>(v: T | undefined): v is T => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * Translates resources (each with its expression, e.g. Bundle.entry[2].resource) into contract messages. With
 * `independent` (a batch), a resource with an error is left out and the others go on; otherwise the caller refuses
 * the whole request when there is any error.
 */
export function translateResources(
  items: { resource: unknown; at: string; fullUrl?: string }[],
  o: FhirOptions,
  independent = false,
): FhirTranslation {
  let fragments: Fragment[] = [];
  const patients = bundledPatients(items, o.patientSystem);
  const medications = bundledMedications(items);
  const byResource = new Map<string, ResourceIssues>();
  // Vasopressor administrations refused (a batch's entry), by patient and time: the set they belong to; and by
  // patient, those that cannot be placed in one set (UNPLACED_MEMBER).
  const refusedSets = new Map<string, string>();
  const unplaced = new Map<string, string>();
  for (const item of items) {
    const own = new ResourceIssues(item.at);
    byResource.set(item.at, own);
    const f = resourceFragments(item.resource, item.at, item.fullUrl, o, own, patients, medications);
    // One at a time: a resource's fragments (or problems) may be more than a call's arguments can be.
    if (!independent || !own.refused()) {
      for (const x of f) if (x.value !== REFUSED_MEMBER && x.value !== UNPLACED_MEMBER) fragments.push(x);
    } else
      for (const x of f)
        if (x.value === REFUSED_MEMBER) refusedSets.set(`${x.patientId}\n${x.ms}`, x.resource);
        else if (x.value === UNPLACED_MEMBER && !unplaced.has(x.patientId)) unplaced.set(x.patientId, x.resource);
  }
  // The vasopressors of one patient at one time are the complete set infusing: one refused, the others would say it
  // is not infusing (two pressors graded as one, CRS 4 as 3). They are refused with it; with one that cannot be
  // placed, each set of the patient is.
  if (refusedSets.size > 0 || unplaced.size > 0)
    fragments = fragments.filter((f) => {
      if (f.key !== 'vasopressors') return true;
      // Its own patient's first; else one whose patient cannot be read (ANY_PATIENT), a member of any patient's.
      const own = refusedSets.get(`${f.patientId}\n${f.ms}`);
      const atSet = own ?? refusedSets.get(`${ANY_PATIENT}\n${f.ms}`);
      const ownAny = atSet === undefined ? unplaced.get(f.patientId) : undefined;
      const anySet = atSet === undefined ? (ownAny ?? unplaced.get(ANY_PATIENT)) : undefined;
      if (atSet === undefined && anySet === undefined) return true;
      const why =
        own !== undefined
          ? `refused with ${atSet}: the vasopressors of one patient at one time are one set`
          : atSet !== undefined
            ? `refused with ${atSet}: a vasopressor whose patient cannot be read may be a member of the set of any patient at its time`
            : ownAny !== undefined
              ? `refused with ${anySet}: a vasopressor of this patient whose time or drug cannot be read may be a member of any of its sets`
              : `refused with ${anySet}: a vasopressor whose patient cannot be read, nor its time or drug, may be a member of any set of any patient`;
      byResource.get(f.resource)!.push({
        expression: f.resource,
        code: 'value',
        text: `${why}, each the complete set infusing; without it the others would say it is not infusing`,
      });
      return false;
    });
  const translated = assemble(oneVasopressorSet(fragments, o.deviceId), (f, issue) =>
    byResource.get(f.resource)!.push(issue),
  );
  return { translated, issues: [...byResource.values()].flatMap((r) => r.all()) };
}

/**
 * The problems named for one resource; the rest are counted in one more issue. A resource with 100,000 parts of the
 * wrong shape (200 KB) was answered with 12 MB, one issue each: past Lambda's 6 MB response, so API Gateway's 500 on
 * AWS; 500,000 overflowed the stack, and both hosts answered 503, which tells the sender to send it again, for ever.
 */
const ISSUES_PER_RESOURCE = PROBLEMS_NAMED;

/** One resource's problems: the first ISSUES_PER_RESOURCE kept, the rest counted (as errors when any was). */
class ResourceIssues {
  readonly named: FhirIssue[] = [];
  private more = 0;
  private moreErrors = false;
  constructor(private readonly at: string) {}

  push(issue: FhirIssue): void {
    if (this.named.length < ISSUES_PER_RESOURCE) this.named.push(issue);
    else {
      this.more++;
      this.moreErrors ||= issue.severity !== 'warning';
    }
  }

  /** Whether anything refuses the resource. */
  refused(): boolean {
    return this.moreErrors || this.named.some((i) => i.severity !== 'warning');
  }

  all(): FhirIssue[] {
    if (this.more === 0) return this.named;
    return [
      ...this.named,
      {
        expression: this.at,
        code: 'too-costly',
        text: `and ${this.more} more problems in this resource, not named (the first ${ISSUES_PER_RESOURCE} are)`,
        ...(this.moreErrors ? {} : { severity: 'warning' as const }),
      },
    ];
  }
}

/**
 * A bundled Patient's patient id (its MR number, or its identifier of the site's patient system), none
 * (undefined), or how many different ones it has.
 */
type BundledPatient = string | { ambiguous: number } | { refused: string } | undefined;

/** Where a resource's problems are written (each resource's own budget). */
type IssueSink = Pick<ResourceIssues, 'push'>;

const MR_TYPE = 'http://terminology.hl7.org/CodeSystem/v2-0203';

/**
 * The Patients a Bundle carries (a transaction creating them, as Synthea's: the others name them by `urn:uuid`), by
 * their entry's fullUrl: the patient id of each (patientIdOf).
 */
function bundledPatients(
  items: { resource: unknown; at: string; fullUrl?: string }[],
  system: string | undefined,
): Map<string, BundledPatient> {
  const out = new Map<string, BundledPatient>();
  for (const { resource, at, fullUrl } of items) {
    if (!isObject(resource) || resource.resourceType !== 'Patient' || !fullUrl) continue;
    // One refused for an element R4 does not define is not read, for those naming it either (a batch's entries).
    const refused = unknownElements(resource, 'Patient', at, true, 0).length > 0;
    const read: BundledPatient = refused ? { refused: at } : patientIdOf(resource, system);
    // R4 (bdl-7): a fullUrl is unique in a Bundle. Two Patients of one that differ are a guess: until 2026-12-07 the
    // last was read, and what names it graded for that patient whichever it was given to.
    const prior = out.get(fullUrl);
    const same = !out.has(fullUrl) || JSON.stringify(prior) === JSON.stringify(read);
    out.set(fullUrl, same ? read : { ambiguous: 2 });
  }
  return out;
}

/**
 * The Medications a Bundle carries, by their entry's fullUrl and as `Medication/<id>`: never read as a drug (a drug is
 * its administration's, or a contained one's), only to recognise a vasopressor refused (possiblyPressor).
 */
function bundledMedications(items: { resource: unknown; fullUrl?: string }[]): Map<string, Medication> {
  const out = new Map<string, Medication>();
  for (const { resource, fullUrl } of items) {
    if (!isObject(resource) || resource.resourceType !== 'Medication') continue;
    const medication = resource as unknown as Medication;
    if (fullUrl) out.set(fullUrl, medication);
    if (typeof resource.id === 'string' && resource.id) out.set(`Medication/${resource.id}`, medication);
  }
  return out;
}

/**
 * A Patient's patient id, of one in the Bundle or contained in the resource that names it (the one way a Patient is
 * read): the identifier of the site's patient system when one is set (whatever else the Patient has), else the
 * medical record number (the identifier typed MR, as PID-3's); undefined for none.
 */
function patientIdOf(patient: Record<string, unknown>, system: string | undefined): BundledPatient {
  const identifiers = Array.isArray(patient.identifier) ? patient.identifier : [];
  const ids = identifiers.filter(
    (i) =>
      isObject(i) &&
      typeof i.value === 'string' &&
      (system !== undefined
        ? i.system === system
        : codingsOf(i.type as CodeableConcept | undefined).some((c) => c.code === 'MR' && c.system === MR_TYPE)),
  ) as { value: string }[];
  // Two different MR numbers (two systems), or two values of the site's system: which is the patient would be a
  // guess, and the first taken made two patients of one for a sender that lists them in another order.
  const values = [...new Set(ids.map((i) => i.value))];
  return values.length > 1 ? { ambiguous: values.length } : values[0];
}

/**
 * The resource of that type a local reference (`#id`) names among the resource's own contained ones (R4
 * references.html: a contained resource's id is local to its container, and it is named from there alone), or
 * undefined. `#` alone names the container itself, none of them.
 */
function containedOf(
  resource: Record<string, unknown>,
  reference: string,
  type: string,
): Record<string, unknown> | undefined {
  const id = reference.slice(1);
  if (!reference.startsWith('#') || !id) return undefined;
  return (Array.isArray(resource.contained) ? resource.contained : []).find(
    (c): c is Record<string, unknown> => isObject(c) && c.resourceType === type && c.id === id,
  );
}

const NOT_CONTAINED = (type: string) =>
  `names no ${type} contained in this resource (contained, with that id): a contained resource is read only in its own resource`;

/** The resources of a Bundle (batch, transaction or collection) or of one resource, with their expressions. */
export function entriesOf(
  body: unknown,
):
  | { ok: true; type: string; items: { resource: unknown; at: string; fullUrl?: string }[] }
  | { ok: false; issues: FhirIssue[] } {
  if (!isObject(body) || typeof body.resourceType !== 'string') {
    return {
      ok: false,
      // No expression: nothing in the body is a resource to name a path from (`resourceType` is no element).
      issues: [
        {
          expression: '',
          code: 'structure',
          text: 'the body is not a FHIR resource (no resourceType)',
        },
      ],
    };
  }
  if (body.resourceType !== 'Bundle')
    return { ok: true, type: 'single', items: [{ resource: body, at: body.resourceType }] };
  // The Bundle's own elements and its entries' (each entry's resource is checked as a resource, in its own right):
  // a misspelt `fullUrl` or `request` would change which Patient a reference names or what an entry asks for.
  // Every one named (until 2026-12-07 the first alone: a feed was mended one resend at a time), to the bound a
  // resource's problems have, the rest counted.
  const unknown = unknownElements(body, 'Bundle', 'Bundle', false, ISSUES_PER_RESOURCE);
  if (unknown.length > 0) {
    const named = unknown.slice(0, ISSUES_PER_RESOURCE);
    const more = unknown.length - named.length;
    const issues: FhirIssue[] = named.map((u) => ({ expression: u.path, code: 'structure', text: u.text }));
    if (more > 0)
      issues.push({
        expression: 'Bundle',
        code: 'too-costly',
        text: `and ${more} more problems in this Bundle, not named (the first ${ISSUES_PER_RESOURCE} are)`,
      });
    return { ok: false, issues };
  }
  const bundle = body as unknown as Bundle;
  if (!['batch', 'transaction', 'collection'].includes(bundle.type as string)) {
    return {
      ok: false,
      issues: [
        {
          expression: 'Bundle.type',
          code: 'not-supported',
          text: `Bundle.type ${quoted(bundle.type, SENDER_MOST)} is not taken: send batch, transaction or collection`,
        },
      ],
    };
  }
  if (!Array.isArray(bundle.entry) || bundle.entry.length === 0)
    return { ok: false, issues: [{ expression: 'Bundle.entry', code: 'required', text: 'the Bundle has no entry' }] };
  if (bundle.entry.length > 1000)
    return {
      ok: false,
      issues: [
        {
          expression: 'Bundle.entry',
          code: 'value',
          text: `the Bundle has ${bundle.entry.length} entries; at most 1000`,
        },
      ],
    };
  return {
    ok: true,
    type: bundle.type as string,
    items: bundle.entry.map((e, i) => ({
      resource: isObject(e) ? e.resource : undefined,
      at: `Bundle.entry[${i}].resource`,
      ...(isObject(e) && typeof e.fullUrl === 'string' ? { fullUrl: e.fullUrl } : {}),
    })),
  };
}

function resourceFragments(
  resource: unknown,
  at: string,
  fullUrl: string | undefined,
  o: FhirOptions,
  issues: IssueSink,
  patients: Map<string, BundledPatient> = new Map(),
  medications: Map<string, Medication> = new Map(),
): Fragment[] {
  if (!isObject(resource) || typeof resource.resourceType !== 'string') {
    issues.push({ expression: at, code: 'structure', text: 'is not a FHIR resource (no resourceType)' });
    return [];
  }
  const type = resource.resourceType;
  // R4: an entry's resource is a resource; one of a datatype's type (a Quantity) or of none R4 has is refused, not
  // warned of as a Condition is (until 2026-12-06 it was only "ignored").
  const odd = noResourceType(type);
  if (odd !== undefined) {
    const text = `resourceType ${odd} is no R4 resource type: an entry's resource is a resource (R4), so this entry is not read`;
    issues.push({ expression: at, code: 'structure', text });
    return [];
  }
  // An element R4 does not define is refused, anywhere in a resource read (a bundled Patient's identifier is):
  // misspelt, what it was meant to say would be lost (2026-12-06: it was passed over, `"statsu"` beside `status`).
  const unknown =
    FHIR_RESOURCES.includes(type as never) || type === 'Patient'
      ? unknownElements(resource, type, at, true, ISSUES_PER_RESOURCE)
      : [];
  for (const u of unknown) issues.push({ expression: u.path, code: 'structure', text: u.text });
  if (!(FHIR_RESOURCES as readonly string[]).includes(type)) {
    issues.push({
      expression: at,
      code: 'not-supported',
      severity: 'warning',
      text: `${type} is ignored; this system takes ${FHIR_RESOURCES.join(', ')}`,
    });
    return [];
  }
  const r = new Reader(resource, at, issues, patients, o.patientSystem);
  const modifier = modifierExtensionOf(resource);
  if (unknown.length > 0 && !modifier) return unreadMember(resource, at, o, patients, medications);
  if (modifier) {
    // R4 (extensibility): a modifier extension changes the meaning of the element it is on (a component flagged
    // unreliable, an act that did not happen); one that is not understood must not be read as if it were absent.
    // This system understands none, so the resource is refused, never graded.
    r.issue(
      modifier.path,
      'not-supported',
      `a modifier extension${modifier.url ? ` (${quoted(modifier.url, URI_MOST)})` : ''} changes the meaning of what it is on and is not understood here: the ${type} is refused, never read as if it were absent`,
    );
    return unreadMember(resource, at, o, patients, medications);
  }
  // Each problem of the resource is named (until 2026-12-07 the first alone: an integrator mended one field a
  // round trip): what is read on past one refused is checked, never taken (the readers take nothing without a base,
  // a time and a device, or once any of those reads said an error).
  const id = identityOf(resource, fullUrl);
  if (!id)
    r.issue(
      'id',
      'required',
      `${type} needs an id, an identifier or a Bundle entry fullUrl, so that a resend is recognised`,
    );
  const patientId = r.patient();
  const base = id && patientId !== undefined ? { patientId, resource: at, id: `${type}/${idPart(id)}` } : undefined;
  switch (type) {
    case 'Observation':
      return observation(resource as unknown as Observation, r, base, o);
    case 'MedicationAdministration':
      return medicationAdministration(
        resource as unknown as MedicationAdministration,
        r,
        base,
        o,
        patientId,
        medications,
      );
    case 'Encounter':
      // Where a patient is, the end of the stay and a re-admission are taken for a patient the server knows only: an
      // EHR's feed sends every patient's Encounters (shared/app/interfaces/known.ts).
      return encounter(resource as unknown as Encounter, r, base, o).map((f) => ({ ...f, ifKnown: true as const }));
    default:
      return procedure(resource as unknown as Procedure, r, base, o);
  }
}

/**
 * A vasopressor administration refused before it is read (an element R4 does not define or of another shape, a
 * modifier extension) is a member of its set all the same: when its patient, drug and time can be read, the set is
 * refused with it (REFUSED_MEMBER); when its time or drug cannot be read (a drug recognisably a vasopressor), each
 * set of its patient (UNPLACED_MEMBER). Until 2026-12-07 it was not: the other pump of the patient at that time was
 * graded as the complete set (two pressors as one, CRS 4 as 3). What is read here is said nowhere (the resource's
 * refusal is said).
 */
function unreadMember(
  resource: Record<string, unknown>,
  at: string,
  o: FhirOptions,
  patients: Map<string, BundledPatient>,
  medications: Map<string, Medication>,
): Fragment[] {
  if (resource.resourceType !== 'MedicationAdministration') return [];
  const ma = resource as unknown as MedicationAdministration;
  const r = new Reader(resource, at, { push: () => undefined }, patients, o.patientSystem);
  const patientId = r.patient() ?? ANY_PATIENT;
  // Refused for two choices of its drug or its time (R4 allows one), each is read: saline beside a reference to a
  // contained vasopressor hid that one, and the other pump was graded as the complete set.
  const { medicationCodeableConcept: _, ...byReference } = ma;
  const both = ma.medicationCodeableConcept !== undefined && ma.medicationReference !== undefined;
  const drugChoices = both ? [ma, byReference] : [ma];
  const site = o.drugCodes;
  const drugs = drugChoices.map((m) => drugCodings(m, site));
  // A drug read but graded as none that names a vasopressor (pressorsNamedBy) is placed as one, unless the site maps
  // its code `not-graded`.
  const namesPressor = pressorsNamedBy(ma, medications).length > 0;
  const pressor = drugs.some(
    (named) =>
      !('problem' in named) &&
      (named.codings.some((c) => isPressor(c, site)) || (namesPressor && !named.codings.some((c) => known(c, site)))),
  );
  // Each choice unread is weighed alone: an antibiotic's code beside a Medication on the server may hide a pressor.
  const unread =
    !pressor && drugChoices.some((m, i) => 'problem' in drugs[i]! && possiblyPressor(m, medications, site));
  if (!pressor && !unread) return [];
  if (unread) return [refusal(patientId, at, o, UNPLACED_MEMBER)];
  const status = typeof ma.status === 'string' ? (ma.status as string) : undefined;
  const { effectiveDateTime: _t, ...byPeriod } = ma;
  const choices = ma.effectiveDateTime !== undefined && ma.effectivePeriod !== undefined ? [ma, byPeriod] : [ma];
  const times = new Set(choices.map((m) => administrationTime(m, r, true, status)));
  if (times.has(undefined)) return [refusal(patientId, at, o, UNPLACED_MEMBER)];
  return [...times].map((ms) => refusal(patientId, at, o, REFUSED_MEMBER, ms));
}

const isPressor = (c: Coded, site: SiteDrugCodes | undefined) => Boolean(vasopressorOf(c.system, c.code, site));

/**
 * Whether an administration whose drug cannot be read (drugCodings' problem) may be a vasopressor: unless its drug is
 * recognisably something else, it may. Recognisably a vasopressor: a coding of its concept, of a contained
 * Medication's code or ingredients, or of the Medication of the Bundle its reference names (`bundled`, never read as
 * its drug) is one. Recognisably not: the drug it names (its concept, the contained Medication its `#id` names, the
 * Bundle's Medication its reference names) is coded, and none of those codings is a vasopressor (an antibiotic; a bag
 * of two graded drugs). Anything else is unknown, so possibly a vasopressor: a Medication on the server or at a URL,
 * one contained in another resource, one coded by text alone, no drug at all. Until 2026-12-07 a reference to a
 * Bundle's vasopressor was refused alone, and until later that day one to a Medication not in the Bundle: the other
 * pump of the patient was graded as the complete set (two pressors as one, CRS 4 as 3).
 */
function possiblyPressor(
  ma: MedicationAdministration,
  bundled: Map<string, Medication>,
  site: SiteDrugCodes | undefined,
): boolean {
  const medicationCodings = (m: Medication) => [
    ...codingsOf(m.code),
    ...(Array.isArray(m.ingredient) ? m.ingredient : []).flatMap((i) =>
      isObject(i) ? codingsOf(i.itemCodeableConcept as CodeableConcept | undefined) : [],
    ),
  ];
  const contained = (Array.isArray(ma.contained) ? (ma.contained as unknown[]) : []).filter(
    (c): c is Medication => isObject(c) && c.resourceType === 'Medication',
  );
  const ref = ma.medicationReference?.reference;
  const inBundle = typeof ref === 'string' ? bundled.get(ref) : undefined;
  const anywhere = [
    ...codingsOf(ma.medicationCodeableConcept),
    ...[...contained, ...(inBundle ? [inBundle] : [])].flatMap(medicationCodings),
  ];
  if (anywhere.some((c) => isPressor(c, site)) || pressorsNamedBy(ma, bundled).length > 0) return true;
  const local = typeof ref === 'string' && ref.startsWith('#');
  const named = local
    ? (containedOf(ma as unknown as Record<string, unknown>, ref, 'Medication') as Medication | undefined)
    : inBundle;
  const drug = [...codingsOf(ma.medicationCodeableConcept), ...(named ? medicationCodings(named) : [])];
  return !drug.some((c) => c.code !== '');
}

/**
 * The vasopressors an administration's drug names in words (vasopressorsNamed): its concept's text and codings'
 * displays, its medicationReference's display, and the code and ingredients (text, displays) of each Medication it
 * carries (contained) or names in the Bundle (`bundled`). Never read as its drug: a drug coded as none this system
 * grades that names one (a norepinephrine infusion by its RxNorm clinical drug code, a local code or text alone) is
 * refused with its set (until 2026-12-07 "not a drug graded", 202, and the other pump graded as the complete set).
 */
function pressorsNamedBy(ma: MedicationAdministration, bundled: Map<string, Medication>): VasopressorDrug[] {
  const words = (c: unknown): string[] =>
    isObject(c)
      ? [
          str(c.text),
          ...(Array.isArray(c.coding) ? c.coding : []).map((x: unknown) => (isObject(x) ? str(x.display) : '')),
        ]
      : [];
  const ref = ma.medicationReference?.reference;
  const inBundle = typeof ref === 'string' ? bundled.get(ref) : undefined;
  const medications = [
    ...(Array.isArray(ma.contained) ? (ma.contained as unknown[]) : []).filter(
      (c): c is Medication => isObject(c) && c.resourceType === 'Medication',
    ),
    ...(inBundle ? [inBundle] : []),
  ];
  const texts = [
    ...words(ma.medicationCodeableConcept),
    str(isObject(ma.medicationReference) ? ma.medicationReference.display : undefined),
    ...medications.flatMap((m) => [
      ...words(m.code),
      ...(Array.isArray(m.ingredient) ? m.ingredient : []).flatMap((i) =>
        isObject(i) ? words(i.itemCodeableConcept) : [],
      ),
    ]),
  ];
  return vasopressorsNamed(texts.filter(Boolean).join('\n'));
}

/** What a drug naming vasopressors (pressorsNamedBy) but coded as none graded is told: how to code each. */
const namedNotCoded = (named: VasopressorDrug[], refused = true): string => {
  const how = named.map((d) => {
    const rxcui = Object.keys(RXNORM_VASOPRESSORS).find((k) => RXNORM_VASOPRESSORS[k] === d);
    return `${d}: the RxNorm ingredient code ${rxcui} (system ${RXNORM}) or the CRS code ${d} (system ${CRS_CODES})`;
  });
  const what = `names ${named.join(' and ')}, ${named.length > 1 ? 'vasopressors' : 'a vasopressor'}, but is coded as no drug this system grades (a clinical drug or product code, a local code, text alone): code it by its ingredient, ${how.join('; ')}`;
  return refused
    ? `${what}. Refused, and the vasopressors of its patient at its time with it (each time, when its time cannot be read): without it they would be graded as the complete set`
    : what;
};

/** What a drug naming vasopressors but coded as none graded, not infusing (its status), is told: ignored. */
const namedNotInfusing = (named: VasopressorDrug[], status: string): string =>
  `ignored: ${namedNotCoded(named, false)}. Its status ${status} says it is not infusing, so its set is graded without it`;

/**
 * The fragment of a vasopressor administration refused: REFUSED_MEMBER at its set's time, or UNPLACED_MEMBER (its
 * time or its drug not read) for any set of its patient, each refused with it by translateResources. Until
 * 2026-12-07 an unplaced one refused none: the other pump of the patient was graded as the complete set (two
 * pressors as one, CRS 4 as 3).
 */
function refusal(patientId: string, at: string, o: FhirOptions, value: symbol, ms = 0): Fragment {
  return { patientId, resource: at, id: at, ms, kind: 'ehr', deviceId: o.deviceId, at, key: 'vasopressors', value };
}

/**
 * The time of an administration (its `status` as sent): a vasopressor that ended, at its end (when it stopped
 * infusing), else when it was given.
 */
function administrationTime(
  ma: MedicationAdministration,
  r: Reader,
  pressor: boolean,
  status: string | undefined,
): number | undefined {
  const ended = status === 'stopped' || status === 'completed';
  const path =
    ma.effectiveDateTime !== undefined
      ? 'effectiveDateTime'
      : pressor && ended && ma.effectivePeriod?.end
        ? 'effectivePeriod.end'
        : 'effectivePeriod.start';
  const period = present(ma.effectivePeriod) ? ma.effectivePeriod : undefined;
  return r.time(path, ma.effectiveDateTime ?? (pressor && ended ? (period?.end ?? period?.start) : period?.start));
}

/**
 * The first modifierExtension anywhere in a resource (its root or a backbone element: a component, the dosage, a
 * location...), with its path and url. Iterative, so that no nesting depth of a hostile body can overflow the stack.
 */
function modifierExtensionOf(resource: Record<string, unknown>): { path: string; url?: string } | undefined {
  // The path is R4's simple FHIRPath (OperationOutcome.issue.expression): element names and indexes. Under a key
  // that names no element (a space, a list in a list), it stays at the element it is in: such a key, written into
  // the expression, made it no FHIRPath. A primitive's `_name` is the element `name`.
  const stack: [unknown, string, boolean][] = [[resource, '', false]];
  while (stack.length > 0) {
    const [value, path, stuck] = stack.pop()!;
    if (Array.isArray(value)) {
      const indexed = !stuck && path !== '' && !path.endsWith(']');
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], indexed ? `${path}[${i}]` : path, !indexed]);
      continue;
    }
    if (!isObject(value)) continue;
    const modifier = value.modifierExtension;
    if (modifier !== undefined && modifier !== null && !(Array.isArray(modifier) && modifier.length === 0)) {
      const first = Array.isArray(modifier) ? modifier[0] : modifier;
      const url = isObject(first) && typeof first.url === 'string' ? first.url : undefined;
      const at = stuck ? path : path ? `${path}.modifierExtension` : 'modifierExtension';
      return { path: at, ...(url ? { url } : {}) };
    }
    const keys = Object.keys(value);
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k]!;
      const name = /^_?[a-z][A-Za-z0-9]*$/.test(key) ? key.replace(/^_/, '') : undefined;
      stack.push([value[key], stuck || !name ? path : path ? `${path}.${name}` : name, stuck || !name]);
    }
  }
  return undefined;
}

function identityOf(resource: Record<string, unknown>, fullUrl: string | undefined): string | undefined {
  const meta = isObject(resource.meta) ? resource.meta : {};
  if (typeof resource.id === 'string' && resource.id)
    return typeof meta.versionId === 'string' ? `${resource.id}/_history/${meta.versionId}` : resource.id;
  const identifier = Array.isArray(resource.identifier)
    ? resource.identifier.find((i) => isObject(i) && typeof i.value === 'string' && i.value)
    : undefined;
  if (isObject(identifier)) return identifier.value as string;
  return fullUrl || undefined;
}

/** Reads fields of one resource, recording each problem with its expression. */
class Reader {
  /** The errors said so far (warnings refuse nothing): what is read past one is checked, never taken. */
  errors = 0;
  constructor(
    readonly resource: Record<string, unknown>,
    readonly at: string,
    private readonly issues: IssueSink,
    /** The Patients of the same Bundle, by fullUrl (bundledPatients). */
    private readonly patients: Map<string, BundledPatient> = new Map(),
    /** The site's patient system (FhirOptions.patientSystem). */
    private readonly patientSystem?: string,
  ) {}

  issue(path: string, code: IssueCode, text: string, severity?: 'warning'): undefined {
    if (!severity) this.errors++;
    this.issues.push({
      expression: path ? `${this.at}.${path}` : this.at,
      code,
      text,
      ...(severity ? { severity } : {}),
    });
    return undefined;
  }

  /**
   * subject.reference "Patient/<id>" (or a URL ending so), or the fullUrl of a Patient in the same Bundle or the
   * `#id` of one contained in this resource (its MR identifier: patientIdOf), else subject.identifier.value. With the
   * site's patient system, a subject.identifier of that system comes first, and a bundled or contained Patient's
   * identifier of that system is its id; an identifier of any other is refused.
   */
  patient(): string | undefined {
    const subject = this.resource.subject as Reference | undefined;
    if (!present(subject))
      return this.issue('subject', 'required', 'subject is required: Patient/<id> or an identifier');
    const system = this.patientSystem;
    const identifier = present(subject.identifier) ? subject.identifier : undefined;
    const shownSystem = JSON.stringify(system?.slice(0, 200));
    let id: string | undefined;
    let path = 'subject.reference';
    if (system !== undefined && identifier?.system === system && typeof identifier.value === 'string') {
      // The site's own patient id: whatever its type, and whatever the reference says.
      id = identifier.value;
      path = 'subject.identifier.value';
    } else if (
      typeof subject.reference === 'string' &&
      (subject.reference.startsWith('#') || this.patients.has(subject.reference))
    ) {
      // A Patient contained in this resource (`#id`, as a device gateway carries the MRN) is read as a bundled one.
      const local = subject.reference.startsWith('#');
      const contained = local ? containedOf(this.resource, subject.reference, 'Patient') : undefined;
      if (local && !contained) return this.issue(path, 'value', NOT_CONTAINED('Patient'));
      const bundled = contained ? patientIdOf(contained, system) : this.patients.get(subject.reference);
      const named = local ? 'the contained Patient this names' : 'the Patient this names in the Bundle';
      const what =
        system === undefined
          ? 'medical record numbers (identifiers of type MR, v2-0203)'
          : `identifiers of the system ${shownSystem} (this system's patient ids)`;
      if (typeof bundled === 'object' && 'refused' in bundled)
        return this.issue(
          path,
          'value',
          `${named} (${bundled.refused}) is refused for an element R4 does not define: which patient it is is not read`,
        );
      if (typeof bundled === 'object')
        return this.issue(
          path,
          'value',
          `${named} has ${bundled.ambiguous} different ${what}: which one is the patient would be a guess`,
        );
      id = bundled;
      if (id === undefined)
        return this.issue(
          path,
          'value',
          system === undefined
            ? `${named} has no medical record number (an identifier of type MR, v2-0203)`
            : `${named} has no identifier of the system ${shownSystem}, whose values are this system's patient ids: send that one`,
        );
    } else if (typeof subject.reference === 'string') {
      // A version (R4 references: Patient/<id>/_history/<v>) names the same patient.
      const m = subject.reference.match(/(?:^|\/)Patient\/([^/]+)(?:\/_history\/[^/]+)?$/);
      if (!m) return this.issue(path, 'value', 'subject.reference must be Patient/<id>');
      id = m[1];
    } else if (system !== undefined && identifier !== undefined && identifier.value !== undefined) {
      // An identifier of another system (a regional number, a social security number), or of none: not this site's.
      return this.issue(
        'subject.identifier.system',
        'value',
        `the patient is identified by an identifier of the system ${shownSystem}, whose values are this system's patient ids: send that one`,
      );
    } else if (typeof identifier?.value === 'string') {
      // The medical record number, as PID-3's: untyped, or typed MR. Another type (a social security or passport
      // number) is no patient id here: taken, it made a second patient of one.
      const type = present(identifier.type) ? codingsOf(identifier.type) : [];
      if (type.length > 0 && !type.some((c) => c.code === 'MR' && c.system === MR_TYPE))
        return this.issue(
          'subject.identifier.type',
          'value',
          `the patient is identified by the medical record number: an identifier typed MR (${MR_TYPE}), or untyped`,
        );
      id = identifier.value;
      path = 'subject.identifier.value';
    }
    if (id === undefined)
      return this.issue('subject', 'required', 'subject needs a reference (Patient/<id>) or identifier.value');
    // Not echoed: what stands in a patient field could be a name.
    if (!CONTRACT_ID.test(id))
      return this.issue(path, 'value', 'the patient id is not 1-64 characters of A-Z a-z 0-9 . _ : -');
    return id;
  }

  /** A FHIR dateTime or instant with a time and an offset. */
  time(path: string, value: unknown): number | undefined {
    if (typeof value !== 'string') return this.issue(path, 'required', 'a time is required');
    const m = value.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|([+-])(\d{2}):(\d{2}))$/);
    if (!m) {
      return this.issue(
        path,
        'value',
        `${quoted(value, SENDER_MOST)} is not a dateTime with a time and a zone offset (e.g. 2026-11-26T10:00:00Z)`,
      );
    }
    // Date.parse rolls an impossible date over (30 February is 2 March, 24:00 the next day): each part is checked,
    // as HL7's DTM is, and the offset is one a zone can have (at most 14 hours).
    const [, y, mo, d, h, mi, sec, , , , oh, om] = m.map(Number);
    const day = new Date(Date.UTC(y!, mo! - 1, d!));
    const offset = oh === undefined || Number.isNaN(oh) ? 0 : oh * 60 + om!;
    // FHIR's dateTime writes a leap second (23:59:60), which is not taken (nor by the contract or HL7 v2): named, with
    // the time to send, the last millisecond before it.
    const leap = sec === 60;
    const ms = Date.parse(leap ? value.replace(/:60(\.\d+)?(?=Z|[+-])/, ':59.999') : value);
    if (
      Number.isNaN(ms) ||
      day.getUTCFullYear() !== y ||
      day.getUTCMonth() !== mo! - 1 ||
      day.getUTCDate() !== d ||
      h! > 23 ||
      mi! > 59 ||
      (sec! > 59 && !leap) ||
      om! > 59 ||
      offset > MAX_OFFSET_MINUTES
    )
      return this.issue(
        path,
        'value',
        `${quoted(value, SENDER_MOST)} is not a real date and time with a real zone offset`,
      );
    if (leap)
      return this.issue(
        path,
        'value',
        `${quoted(value, SENDER_MOST)} has a leap second (:60), which is not taken: send ${value.replace(/:60(\.\d+)?(?=Z|[+-])/, ':59.999')}`,
      );
    return ms;
  }

  /**
   * The device that made the observation or ran the infusion (Device/<id>; for an Observation also DeviceMetric/<id>,
   * which R4 allows there and its own satO2 example uses), or a Device contained in the resource (`#id`) by its
   * identifier, else the sender's.
   */
  device(path: string, ref: unknown, fallback: string, metric = false): { id: string; named: boolean } | undefined {
    if (!isObject(ref) || typeof ref.reference !== 'string') return { id: fallback, named: false };
    if (ref.reference.startsWith('#')) return this.containedDevice(`${path}.reference`, ref.reference);
    const m = ref.reference.match(
      metric
        ? /(?:^|\/)Device(?:Metric)?\/([^/]+)(?:\/_history\/[^/]+)?$/
        : /(?:^|\/)Device\/([^/]+)(?:\/_history\/[^/]+)?$/,
    );
    if (!m || !CONTRACT_ID.test(m[1]!))
      return this.issue(
        `${path}.reference`,
        'value',
        `must be Device/<id>${metric ? ' or DeviceMetric/<id>' : ''} with an id of 1-64 characters of A-Z a-z 0-9 . _ : -`,
      );
    return { id: m[1]!, named: true };
  }

  /**
   * A contained Device is the device by its identifier (an EUI-64, as OBX-18's; a serial number): its id is local to
   * this resource (R4 references.html), so two gateways' `#d1` would be one device. Refused without one, or with two
   * different ones (which is the device would be a guess), as a bundled Patient is.
   */
  private containedDevice(path: string, reference: string): { id: string; named: true } | undefined {
    const device = containedOf(this.resource, reference, 'Device');
    if (!device) return this.issue(path, 'value', NOT_CONTAINED('Device'));
    const identifiers = Array.isArray(device.identifier) ? device.identifier : [];
    const values = [
      ...new Set(
        identifiers.filter((i) => isObject(i) && typeof i.value === 'string' && i.value).map((i) => i.value as string),
      ),
    ];
    if (values.length === 0)
      return this.issue(
        path,
        'required',
        "a contained Device's id is its resource's own, not the device's (R4): the device is read by its identifier (e.g. its EUI-64), and this one has none",
      );
    if (values.length > 1)
      return this.issue(
        path,
        'value',
        `the contained Device this names has ${values.length} different identifiers: which one is the device would be a guess`,
      );
    if (!CONTRACT_ID.test(values[0]!))
      return this.issue(
        path,
        'value',
        "the contained Device's identifier is not 1-64 characters of A-Z a-z 0-9 . _ : -",
      );
    return { id: values[0]!, named: true };
  }

  /** The objects of a list (component, location) with their indexes; anything else there is named as a problem. */
  objects<T>(path: string, list: T[] | undefined): [T, number][] {
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) return this.issue(path, 'structure', 'must be a list') ?? [];
    return list.flatMap((x, i): [T, number][] =>
      present(x) ? [[x, i]] : (this.issue(`${path}[${i}]`, 'structure', 'must be an object') ?? []),
    );
  }

  /**
   * Whether a quantity is a measurement rather than a bound: a comparator (`<`, `<=`, `>=`, `>`, as an assay's range
   * or a device's limit) says the value is not the value, and it is never graded as one (">= 112" is not 112).
   */
  exact(path: string, q: Quantity): boolean {
    if (q.comparator === undefined || q.comparator === null) return true;
    this.issue(
      `${path}.comparator`,
      'value',
      `a value with a comparator (${quoted(q.comparator, SENDER_MOST)}) is a bound, not a measurement; it is never read as the value`,
    );
    return false;
  }

  /** The number of a valueQuantity converted to the contract's unit for a coded field. */
  quantity(path: string, q: Quantity | undefined, field: Parameters<typeof toContractUnit>[0]): number | undefined {
    if (!present(q)) return this.issue(`${path}.value`, 'required', `a number is required for ${field}`);
    // The number, the comparator and the unit are each said: none is a consequence of another.
    const value =
      typeof q.value === 'number' && Number.isFinite(q.value)
        ? q.value
        : this.issue(`${path}.value`, 'required', `a number is required for ${field}`);
    const exact = this.exact(path, q);
    // Text only: an object there (with its own toString, say) is no unit, and must not be turned into one.
    const unit = str(q.system === UCUM && q.code ? q.code : (q.code ?? q.unit));
    // A unit in MDC (a device gateway's) is its number, or its MDC_DIM_ reference id, as OBX-6 is read.
    const sent: SentUnit =
      q.system === MDC_SYSTEM && /^\d+$/.test(unit)
        ? { mdc: Number(unit) }
        : q.system === MDC_SYSTEM && unit.startsWith('MDC_')
          ? { mdcRefId: unit }
          : unit
            ? { ucum: unit }
            : {};
    const c = toContractUnit(field, value ?? 0, sent);
    if (!c.ok) return this.issue(`${path}.code`, 'value', c.problem);
    return value !== undefined && exact ? c.value : undefined;
  }
}

/** The codings of a concept, with system and code as strings ('' when absent or not text). */
const codingsOf = (c: CodeableConcept | undefined): { system: string; code: string }[] =>
  present(c) && Array.isArray(c.coding)
    ? c.coding.filter((x) => present(x)).map((x) => ({ system: str(x.system), code: str(x.code) }))
    : [];
const hasCode = (c: CodeableConcept | undefined, system: string, code: string) =>
  codingsOf(c).some((x) => x.system === system && x.code === code);

type Base = { patientId: string; resource: string; id: string };

/**
 * Observation statuses with no result to grade: said, not passed over (until 2026-12-05 they were, and an EHR that
 * cancels a value charted in error took the 202 for its withdrawal).
 */
const OBSERVATION_SKIP: Record<string, string> = {
  cancelled:
    'ignored: an Observation cancelled has no result (R4: not started or not completed); a value sent before for this time is not applied as a withdrawal: this system has no retraction, and it stays graded. Send the right value (amended or corrected, at the same time), or tell the clinical team',
  registered: 'ignored: an Observation registered has no result yet; send it again once it is final',
};

/**
 * A resource entered in error is a retraction, which the contract does not have: what an earlier version gave stays
 * (a value stays graded: docs/grading-rules.md, a grade is never lowered by data the system cannot verify). Said
 * with a warning, so that the sender does not take the 202 for a withdrawal.
 */
function notRetracted(r: Reader): [] {
  r.issue(
    'status',
    'not-supported',
    'entered-in-error is not applied: this system has no retraction; what an earlier version of this resource gave stays (a value stays graded). Send the right data (an Observation corrected or amended at the same time; an Encounter in progress to resume monitoring), or tell the clinical team',
    'warning',
  );
  return [];
}
/**
 * Blood pressure panels read by their systolic and diastolic components: the vital-signs profile's 85354-9, and
 * 55284-4 (systolic and diastolic), which the SMART sandbox, older Synthea data and IHE examples use.
 */
const BP_PANELS = new Set([LOINC_BP_PANEL, '55284-4']);
/** Inhaled oxygen flow and concentration (the codes of oxygen.flowLpm and oxygen.fio2). */
const LOINC_OXYGEN_COMPONENTS = ['3151-8', '3150-0'];

/** An Observation or component that says why it has no value (R4 obs-6): nothing to grade, as HL7's OBX-11 X. */
const absent = (x: { dataAbsentReason?: unknown; component?: unknown }): boolean =>
  isObject(x.dataAbsentReason) &&
  !Object.keys(x).some((k) => k.startsWith('value')) &&
  !(Array.isArray(x.component) && x.component.length > 0);

/**
 * A component whose code is none read in its Observation (a blood pressure panel's, an oxygen device's): said, never
 * passed over, since it may be the very value graded under a code mistyped (a systolic under `http://loinc.org/`).
 */
function notRead(r: Reader, i: number, read: string): void {
  r.issue(
    `component[${i}].code`,
    'not-supported',
    `ignored: this component is coded with none of the codes read here (${read}; LOINC in the system ${LOINC_SYSTEM}): its value is not taken`,
    'warning',
  );
}

/** R4's Observation.status value set (required binding). */
const OBSERVATION_STATUSES = [
  'registered',
  'preliminary',
  'final',
  'amended',
  'corrected',
  'cancelled',
  'entered-in-error',
  'unknown',
];
/** R4's Encounter.status value set (required binding). */
const ENCOUNTER_STATUSES = [
  'planned',
  'arrived',
  'triaged',
  'in-progress',
  'onleave',
  'finished',
  'cancelled',
  'entered-in-error',
  'unknown',
];

/**
 * Whether a resource's status is one of R4's codes for its type, else said (an error at `status`). Any other text
 * was taken as a status read (an Observation "retracted", an engine's mapping of OBX-11 D, was graded; an Encounter
 * "active" moved the bed), while a MedicationAdministration's was refused.
 */
function knownStatus(r: Reader, status: unknown, type: string, codes: string[]): status is string {
  if (status === undefined) return r.issue('status', 'required', 'status is required') ?? false;
  if (typeof status === 'string' && codes.includes(status)) return true;
  const shown = quoted(status, SENDER_MOST);
  return r.issue('status', 'code-invalid', `${shown} is not an R4 ${type} status (${codes.join(', ')})`) ?? false;
}

function observation(obs: Observation, r: Reader, base: Base | undefined, o: FhirOptions): Fragment[] {
  if (knownStatus(r, obs.status, 'Observation', OBSERVATION_STATUSES)) {
    if (obs.status === 'entered-in-error') return notRetracted(r);
    if (Object.hasOwn(OBSERVATION_SKIP, obs.status))
      return r.issue('status', 'not-supported', OBSERVATION_SKIP[obs.status]!, 'warning') ?? [];
  }
  if (absent(obs)) return [];
  const ms = r.time(
    obs.effectiveDateTime !== undefined
      ? 'effectiveDateTime'
      : obs.effectiveInstant !== undefined
        ? 'effectiveInstant'
        : 'effectivePeriod.start',
    obs.effectiveDateTime ?? obs.effectiveInstant ?? obs.effectivePeriod?.start,
  );
  const device = r.device('device', obs.device, o.deviceId, true);
  // Past a refused status, time, device, patient or identity the value is checked, its problems named, never taken.
  const read = base !== undefined && ms !== undefined && device !== undefined && r.errors === 0;
  const out: Fragment[] = [];
  const push = (key: string, value: unknown, at: string, kind: Kind, rank?: number) =>
    read &&
    out.push({
      ...base,
      ms,
      kind,
      deviceId: device.id,
      key,
      value,
      at: `${r.at}.${at}`,
      ...(rank !== undefined ? { rank } : {}),
    });
  const measured: Kind = device?.named ? 'monitor' : 'manual';

  const codings = codingsOf(obs.code);
  // Every coding is read: two that name different fields are refused (until 2026-12-07 the first was read, and
  // LOINC 8867-4 beside the CRS ice-score made an ICE score of 4 a heart rate of 4). Codings of one field are one,
  // and one of no interest beside a known one is passed over.
  const fields = [
    ...new Map(
      codings.flatMap((c) => {
        const field = fieldOfCoding(c);
        return field ? [[field, `${c.system}|${c.code} (${field})`] as const] : [];
      }),
    ).values(),
  ];
  if (fields.length > 1)
    return (
      r.issue(
        'code.coding',
        'value',
        `names two different fields: ${fields.join(' and ')}: which one is meant would be a guess; send the codings of one observation`,
      ) ?? []
    );
  const loinc = codings.filter((c) => c.system === LOINC_SYSTEM).map((c) => c.code);
  const own = codings.filter((c) => c.system === CRS_CODES).map((c) => c.code);
  // LOINC, else the MDC code of a device gateway (the codes HL7 v2's OBX-3 is read by), with its rank. One
  // Observation is one reading, however many codes name it (the vital-signs profile's 8310-5 beside a site's code).
  const coded = [
    ...loinc.map((c) => ({ field: fieldOfLoinc(c), rank: rankOfLoinc(c) })),
    ...codings
      .filter((c) => c.system === MDC_SYSTEM && /^\d+$/.test(c.code))
      .map((c) => ({ field: fieldOfMdc(Number(c.code)), rank: rankOfMdc(Number(c.code)) })),
  ];
  const vital = coded.find((c) => c.field)?.field as CodedField | undefined;
  // A measurement ranks by its codes' best, as HL7 v2's OBX do: the arterial line over the cuff, the ECG's heart rate
  // over the oximeter's (MDC), either over a LOINC code; a body temperature, the generic one (MDC or LOINC alike, 0)
  // over a site's, a core site over the mouth over the axilla.
  const ranks = coded.filter((c) => c.field === vital).map((c) => c.rank);
  const rank =
    vital === 'vitals.temperatureC'
      ? Math.min(...ranks.map((r) => (r < TEMPERATURE_SITE_RANK.core ? 0 : r)))
      : Math.min(...ranks);

  if (loinc.some((c) => BP_PANELS.has(c))) {
    // Components with a value to read (each refused one said at itself): the panel's own problem is having none.
    let valued = 0;
    let unmeasured = 0;
    r.objects<ObservationComponent>('component', obs.component).forEach(([comp, i]) => {
      const code = codingsOf(comp.code).find((c) => c.system === LOINC_SYSTEM && Object.hasOwn(LOINC, c.code))?.code as
        | string
        | undefined;
      const field = code ? LOINC[code] : undefined;
      if (!field?.startsWith('vitals.')) return notRead(r, i, 'LOINC 8480-6 systolic, 8462-4 diastolic, 8478-0 mean');
      if (absent(comp)) {
        unmeasured++;
        return;
      }
      valued++;
      const v = r.quantity(`component[${i}].valueQuantity`, comp.valueQuantity, field);
      if (v !== undefined) push(field, v, `component[${i}].valueQuantity`, measured, rankOfLoinc(code!));
    });
    if (valued === 0 && unmeasured === 0)
      r.issue(
        'component',
        'required',
        'a blood pressure panel needs systolic (8480-6) or diastolic (8462-4) components with values',
      );
    return out;
  }
  if (vital) {
    const v = r.quantity('valueQuantity', obs.valueQuantity, vital);
    if (v === undefined) return [];
    if (vital.startsWith('oxygen.')) push(vital, v, 'valueQuantity', device?.named ? 'ventilator' : 'manual');
    else push(vital, v, 'valueQuantity', measured, rank);
    // US Core's pulse oximetry carries the inhaled oxygen as components, without the device the contract's oxygen
    // needs: not read, and said, so that the sender sends them as the oxygen device's Observations.
    const components = Array.isArray(obs.component) ? obs.component : [];
    if (
      components.some(
        (c) =>
          isObject(c) && LOINC_OXYGEN_COMPONENTS.some((code) => hasCode(c.code as CodeableConcept, LOINC_SYSTEM, code)),
      )
    )
      r.issue(
        'component',
        'not-supported',
        'ignored: inhaled oxygen flow (3151-8) and concentration (3150-0) as components are not read; send them with the oxygen device (CRS oxygen-device Observation), docs/interfaces.md',
        'warning',
      );
    return out;
  }
  if (loinc.includes(LOINC_WEIGHT)) {
    const v = r.quantity('valueQuantity', obs.valueQuantity, 'enrolment.weightKg');
    if (v !== undefined) push('enrolment.weightKg', v, 'valueQuantity', 'ehr');
    return out;
  }
  const lab = loinc.map((c) => (Object.hasOwn(LOINC_LABS, c) ? LOINC_LABS[c] : undefined)).find(Boolean);
  if (lab) {
    const q = present(obs.valueQuantity) ? obs.valueQuantity : undefined;
    const unit = str(q?.code ?? q?.unit);
    const value =
      typeof q?.value === 'number'
        ? q.value
        : r.issue('valueQuantity.value', 'required', `a number is required for labs.${lab.field}`);
    // Of a quantity sent, the number, the comparator and the unit are each said (none is a consequence of another).
    if (!q) return [];
    const exact = r.exact('valueQuantity', q);
    if (!Object.hasOwn(lab.units, unit))
      return (
        r.issue(
          'valueQuantity.code',
          'value',
          `unit ${quoted(unit, SENDER_MOST)} is not taken for labs.${lab.field} (use ${Object.keys(lab.units).join(' or ')})`,
        ) ?? []
      );
    if (value === undefined || !exact) return [];
    // Without floating-point noise, as every unit conversion (units.ts): 10.02 mg/dL of CRP is 100.2 mg/L.
    push(`labs.${lab.field}`, withoutFloatNoise(value * lab.units[unit]!), 'valueQuantity', 'ehr');
    return out;
  }
  const code = own[0];
  // An ICANS domain or an organ toxicity is its Observation's value alone: a component of one (a seizure charted
  // inside the ICE score's Observation) is said, not passed over (until 2026-12-07 it was, under a 202).
  if (code !== undefined && Object.hasOwn(VALUE_ONLY, code))
    r.objects('component', obs.component).forEach(([, i]) =>
      r.issue(
        `component[${i}].code`,
        'not-supported',
        `ignored: a component of ${code} is not read (each ICANS domain and organ toxicity is an Observation of its own, docs/interfaces.md): its value is not taken`,
        'warning',
      ),
    );
  switch (code) {
    case CRS_OBSERVATIONS.oxygenDevice: {
      const kind: Kind = device?.named ? 'ventilator' : 'manual';
      const dev = soleOf(
        r,
        'valueCodeableConcept',
        codingsOf(obs.valueCodeableConcept).map((c) => oxygenDeviceOf(c.system, c.code)),
        'oxygen devices',
      );
      if (!dev)
        r.issue(
          'valueCodeableConcept',
          'code-invalid',
          'the oxygen device must be a SNOMED CT device code or a contract device name (see docs/interfaces.md)',
        );
      else if (dev !== TWO) push('oxygen.device', dev, 'valueCodeableConcept', kind);
      // The components' problems are said whatever the device; their values are taken with a device read alone.
      const taken = dev !== undefined && dev !== TWO;
      r.objects('component', obs.component).forEach(([comp, i]) => {
        const field = codingsOf(comp.code)
          .map((c) => (c.system === LOINC_SYSTEM && Object.hasOwn(LOINC, c.code) ? LOINC[c.code] : undefined))
          .find(Boolean);
        if (field === 'oxygen.fio2' || field === 'oxygen.flowLpm') {
          const v = r.quantity(`component[${i}].valueQuantity`, comp.valueQuantity, field);
          if (v !== undefined && taken) push(field, v, `component[${i}].valueQuantity`, kind);
        } else if (hasCode(comp.code, CRS_CODES, CRS_OBSERVATIONS.oxygenForComfort)) {
          if (typeof comp.valueBoolean !== 'boolean')
            r.issue(`component[${i}].valueBoolean`, 'required', 'oxygen-for-comfort needs valueBoolean');
          else if (taken) push('oxygen.forComfort', comp.valueBoolean, `component[${i}].valueBoolean`, kind);
        } else notRead(r, i, `LOINC 3150-0 FiO2, 3151-8 flow, ${CRS_CODES} ${CRS_OBSERVATIONS.oxygenForComfort}`);
      });
      return out;
    }
    case CRS_OBSERVATIONS.iceScore: {
      const q = obs.valueInteger === undefined && present(obs.valueQuantity) ? obs.valueQuantity : undefined;
      const v = obs.valueInteger ?? q?.value;
      if (typeof v !== 'number')
        return r.issue('valueInteger', 'required', 'the ICE score needs valueInteger (0-10)') ?? [];
      // As a quantity, a number of points: a bound ("< 7" is 6 or less, ICANS 2, not ICE 7, grade 1: until
      // 2026-12-07 its comparator was dropped) or a unit (a percent) is no ICE score.
      if (q) {
        const exact = r.exact('valueQuantity', q);
        // A UCUM unit of 1 ({score}: an annotation is 1), or with no code, a text that says points.
        const unit = str(q.code ?? q.unit);
        const points = unitlessOrPoints(unit, q.code === undefined);
        if (!points)
          r.issue(
            'valueQuantity.code',
            'value',
            `unit ${quoted(unit, SENDER_MOST)} is not taken for the ICE score: points 0-10, with no unit (1 or {score}), as valueInteger`,
          );
        if (!exact || !points) return [];
      }
      push('neuro.iceScore', v, q ? 'valueQuantity.value' : 'valueInteger', 'manual');
      return out;
    }
    case CRS_OBSERVATIONS.consciousness:
    case CRS_OBSERVATIONS.seizure:
    case CRS_OBSERVATIONS.cerebralEdema: {
      const domain =
        code === CRS_OBSERVATIONS.consciousness
          ? 'consciousness'
          : code === CRS_OBSERVATIONS.seizure
            ? 'seizure'
            : 'cerebralEdema';
      const v = soleOf(
        r,
        'valueCodeableConcept',
        codingsOf(obs.valueCodeableConcept).map((c) => enumOf(domain, c.system, c.code)),
        `${domain} values`,
      );
      if (v === TWO) return [];
      if (!v)
        return (
          r.issue(
            'valueCodeableConcept',
            'code-invalid',
            `${code} needs a ${CRS_CODES} code: one of the contract's ${domain} values`,
          ) ?? []
        );
      push(`neuro.${domain}`, v, 'valueCodeableConcept', 'manual');
      return out;
    }
    case CRS_OBSERVATIONS.motorWeakness:
      if (typeof obs.valueBoolean !== 'boolean')
        return r.issue('valueBoolean', 'required', 'motor weakness needs valueBoolean') ?? [];
      push('neuro.motorWeakness', obs.valueBoolean, 'valueBoolean', 'manual');
      return out;
    case CRS_OBSERVATIONS.organToxicity:
    case CRS_OBSERVATIONS.transaminitis: {
      const v = obs.valueInteger;
      if (typeof v !== 'number')
        return r.issue('valueInteger', 'required', `${code} needs valueInteger (CTCAE grade 0-4)`) ?? [];
      push(
        code === CRS_OBSERVATIONS.organToxicity ? 'organToxicity.maxCtcaeGrade' : 'organToxicity.transaminitisGrade',
        v,
        'valueInteger',
        'ehr',
      );
      return out;
    }
  }
  // A code this system does not grade: not an error for a batch from a flowsheet, but named so the sender knows.
  r.issue(
    'code',
    'not-supported',
    `ignored: no code this system grades (LOINC vital signs, ${LOINC_WEIGHT}, labs, or ${CRS_CODES}); see docs/interfaces.md`,
    'warning',
  );
  return out;
}

/** The contract field (or the panel) an Observation's coding names, or undefined for a code of no interest. */
function fieldOfCoding(c: Coded): string | undefined {
  if (c.system === LOINC_SYSTEM) {
    if (BP_PANELS.has(c.code)) return 'blood pressure panel';
    if (c.code === LOINC_WEIGHT) return 'enrolment.weightKg';
    if (Object.hasOwn(LOINC_LABS, c.code)) return `labs.${LOINC_LABS[c.code]!.field}`;
    return fieldOfLoinc(c.code);
  }
  if (c.system === MDC_SYSTEM) return /^\d+$/.test(c.code) ? fieldOfMdc(Number(c.code)) : undefined;
  if (c.system !== CRS_CODES) return undefined;
  if (c.code === CRS_OBSERVATIONS.oxygenDevice) return 'oxygen.device';
  return chartedFieldOf(c.code);
}

/** The project's codes of Observations read by their value alone, not by components. */
const VALUE_ONLY: Record<string, true> = Object.fromEntries(
  [
    CRS_OBSERVATIONS.iceScore,
    CRS_OBSERVATIONS.consciousness,
    CRS_OBSERVATIONS.seizure,
    CRS_OBSERVATIONS.motorWeakness,
    CRS_OBSERVATIONS.cerebralEdema,
    CRS_OBSERVATIONS.organToxicity,
    CRS_OBSERVATIONS.transaminitis,
  ].map((c) => [c, true]),
);

/** What soleOf returns for codings that name two different things (said there). */
const TWO = Symbol('two different things');

/**
 * The one thing a concept's codings name (several codings of it, in several systems, are one), or undefined for
 * none. Two different things are refused (`value`): read by the first coding, the other was dropped unsaid, and the
 * order an EHR lists its codes in chose a nasal cannula (ASTCT 2) over high flow (3).
 */
function soleOf<T>(r: Reader, path: string, named: (T | undefined)[], what: string): T | undefined | typeof TWO {
  const distinct = [...new Set(named.filter((x): x is T => x !== undefined))];
  if (distinct.length < 2) return distinct[0];
  r.issue(
    path,
    'value',
    `names two different ${what} (${distinct.join(', ')}): which one is meant would be a guess; send one`,
  );
  return TWO;
}

type Coded = { system: string; code: string };
const graded = (c: Coded, site: SiteDrugCodes | undefined) =>
  Boolean(vasopressorOf(c.system, c.code, site) ?? medicationOf(c.system, c.code, site));
/** Graded, or mapped `not-graded` by the site (a product naming a vasopressor that is none): named, not refused. */
const known = (c: Coded, site: SiteDrugCodes | undefined) => graded(c, site) || siteNotGraded(site, c.system, c.code);

/**
 * The codings that name an administration's drug: its medicationCodeableConcept, or those of the Medication its
 * medicationReference names among its own contained resources (`#id`, as Oracle Health sends a drip): the
 * Medication's code, else the one ingredient this system grades (a drip is a drug in a carrier). A reference to a
 * Medication elsewhere is not taken (this system reads no other resource to find it).
 */
function drugCodings(
  ma: MedicationAdministration,
  site: SiteDrugCodes | undefined,
): { codings: Coded[] } | { path: string; code: IssueCode; problem: string } {
  // An empty one (`{}`, `[]`) is absent, as the shape check takes it (elements.ts): until 2026-12-07 it was read as
  // a drug not graded (202, a warning), and beside a medicationReference to a contained vasopressor hid that one.
  const concept = ma.medicationCodeableConcept as unknown;
  if (isObject(concept) && !emptyValue(concept)) return { codings: codingsOf(ma.medicationCodeableConcept) };
  const ref = ma.medicationReference?.reference;
  const contained = typeof ref === 'string' ? ref.slice(1) : '';
  const medication =
    typeof ref === 'string'
      ? (containedOf(ma as unknown as Record<string, unknown>, ref, 'Medication') as Medication | undefined)
      : undefined;
  if (!medication)
    return {
      path: ma.medicationReference ? 'medicationReference' : 'medicationCodeableConcept',
      code: 'required',
      problem:
        'the drug is required: medicationCodeableConcept (RxNorm), or medicationReference to a contained Medication (#id); a Medication elsewhere is not read',
    };
  const own = codingsOf(medication.code);
  if (own.some((c) => graded(c, site))) return { codings: own };
  const ingredients = (Array.isArray(medication.ingredient) ? medication.ingredient : [])
    .map((i) => (isObject(i) ? codingsOf(i.itemCodeableConcept as CodeableConcept | undefined) : []))
    .filter((codings) => codings.some((c) => graded(c, site)));
  if (ingredients.length > 1)
    return {
      path: 'contained.ingredient',
      code: 'value',
      problem: `the contained Medication #${contained} has ${ingredients.length} ingredients this system grades: which one the rate is of would be a guess`,
    };
  return { codings: ingredients[0] ?? own };
}

/**
 * The value of a vasopressor administration refused once its patient, time and drug are read: it names the set it
 * belonged to (translateResources refuses the set with it), and is never a value of any message.
 */
const REFUSED_MEMBER = Symbol('a refused member of a vasopressor set');
/**
 * The patient of a refused vasopressor whose patient cannot be read: it may be a member of any patient's set (no
 * patient id is empty: CONTRACT_ID). Until 2026-12-07 it refused none, and the other pump of its patient was graded
 * as the complete set.
 */
const ANY_PATIENT = '';
/** The value of a refused vasopressor administration of no one set known (its time or drug not read: refusal). */
const UNPLACED_MEMBER = Symbol('a refused vasopressor of any set of its patient');

/** R4 statuses of a dose not known to be given (a drug other than a vasopressor): not counted, with what to send. */
const NOT_GIVEN: Record<string, string> = {
  unknown: 'ignored: status unknown, so not counted as given (send completed once it is)',
  'on-hold': 'ignored: status on-hold, so not counted as given (a held dose; send completed once it is given)',
  stopped:
    'ignored: status stopped, so not counted as given (stopped before all of it was given; send completed with the dose given if it counts)',
};

/**
 * Whether a resource's status is completed or in-progress, the two taken. Any other is said, never passed over: one
 * of R4's (`ignored`, with its text) with a warning, one R4 lacks refused (`expected`, what to send).
 */
function takenStatus(r: Reader, status: string, ignored: Record<string, string>, expected: string): boolean {
  if (status === 'completed' || status === 'in-progress') return true;
  if (Object.hasOwn(ignored, status)) r.issue('status', 'value', ignored[status]!, 'warning');
  else r.issue('status', 'value', `${expected} (got ${quoted(status, SENDER_MOST)})`);
  return false;
}

function medicationAdministration(
  ma: MedicationAdministration,
  r: Reader,
  base: Base | undefined,
  o: FhirOptions,
  /** Read even without the resource's identity: a vasopressor refused for want of one still refuses its set. */
  patientId: string | undefined,
  medications: Map<string, Medication>,
): Fragment[] {
  const status = typeof ma.status === 'string' ? (ma.status as string) : undefined;
  if (status === undefined) r.issue('status', 'required', 'status is required');
  if (status === 'entered-in-error') return notRetracted(r);
  if (status === 'not-done') return [];
  const ended = status === 'stopped' || status === 'completed';
  const timeOf = (pressor: boolean) => administrationTime(ma, r, pressor, status);
  const site = o.drugCodes;
  const named = drugCodings(ma, site);
  if ('problem' in named) {
    r.issue(named.path, named.code, named.problem);
    // Past a drug not named, what does not depend on which drug it is is still checked (a vasopressor's time is
    // its end once it ended: where a drug's time and a vasopressor's differ, neither is said).
    if (ma.effectiveDateTime !== undefined || !ended || !ma.effectivePeriod?.end) timeOf(false);
    r.device('device[0]', ma.device?.[0], o.deviceId);
    return possiblyPressor(ma, medications, site) ? [refusal(patientId ?? ANY_PATIENT, r.at, o, UNPLACED_MEMBER)] : [];
  }
  const codings = named.codings;
  const pressor = codings.map((c) => vasopressorOf(c.system, c.code, site)).find(Boolean);
  const drug = codings.map((c) => medicationOf(c.system, c.code, site)).find(Boolean);
  // Codings that name two drugs (norepinephrine in RxNorm, epinephrine in the CRS codes): which one was given would be
  // a guess. A vasopressor so named is refused with its set, as any vasopressor refused.
  const twoDrugs =
    soleOf(
      r,
      ma.medicationCodeableConcept ? 'medicationCodeableConcept' : 'medicationReference',
      codings.map((c) => vasopressorOf(c.system, c.code, site) ?? medicationOf(c.system, c.code, site)),
      'drugs',
    ) === TWO;
  // A drug this system does not grade (an antibiotic on the flowsheet): ignored, named so the sender knows, as an
  // Observation's code is; an error would refuse the vasopressors of the same transaction with it.
  // A code the site maps `not-graded` (lidocaine with epinephrine) is what it says: not a drug graded.
  const notGraded = codings.some((c) => siteNotGraded(site, c.system, c.code));
  const namedPressors = !pressor && !drug && !notGraded ? pressorsNamedBy(ma, medications) : [];
  if (namedPressors.length > 0) {
    const concept = isObject(ma.medicationCodeableConcept) && !emptyValue(ma.medicationCodeableConcept);
    const element = concept ? 'medicationCodeableConcept' : 'medicationReference';
    // Not infusing (stopped or completed: not infusing in its set; on hold: dose 0, a paused pump), it changes no
    // set's grade left out: a warning (a completed bolus of lidocaine with epinephrine). Until 2026-12-07 refused.
    if (ended || status === 'on-hold')
      return r.issue(element, 'not-supported', namedNotInfusing(namedPressors, status), 'warning') ?? [];
    // Refused at its drug, and its set with it: at its time (a vasopressor's), else every set of its patient.
    r.issue(element, 'code-invalid', namedNotCoded(namedPressors));
    const at = timeOf(true);
    r.device('device[0]', ma.device?.[0], o.deviceId);
    return at === undefined
      ? [refusal(patientId ?? ANY_PATIENT, r.at, o, UNPLACED_MEMBER)]
      : [refusal(patientId ?? ANY_PATIENT, r.at, o, REFUSED_MEMBER, at)];
  }
  if (!pressor && !drug)
    return (
      r.issue(
        'medicationCodeableConcept',
        'not-supported',
        notGraded
          ? 'ignored: the site maps its code not-graded (drugCodes)'
          : 'ignored: not a drug this system grades (RxNorm codes in docs/interfaces.md)',
        'warning',
      ) ?? []
    );
  const ms = timeOf(Boolean(pressor));
  const device = r.device('device[0]', ma.device?.[0], o.deviceId);
  if (pressor) {
    const kind: Kind = device?.named ? 'pump' : 'ehr';
    const infusing = status === 'in-progress';
    const statusRead = ended || infusing || status === 'on-hold';
    if (status !== undefined && !statusRead)
      r.issue(
        'status',
        'value',
        `a vasopressor administration must be in-progress, on-hold, stopped or completed, or not-done if it was not given (got ${status})`,
      );
    // The rate of one infusing is read; of a status not read, a rate sent is checked all the same.
    const rate = ma.dosage?.rateQuantity;
    let dose: { drug: string; dose: number; unit: string } | undefined;
    if (infusing || (!statusRead && rate !== undefined)) {
      const value =
        present(rate) && typeof rate.value === 'number'
          ? rate.value
          : r.issue(
              'dosage.rateQuantity',
              'required',
              'an infusing vasopressor needs dosage.rateQuantity (value and unit)',
            );
      const exact = present(rate) && r.exact('dosage.rateQuantity', rate);
      const unit = rateUnitOf(ma);
      if (present(rate) && !unit)
        r.issue(
          'dosage.rateQuantity.code',
          'value',
          `rate unit ${quoted(rate.code ?? rate.unit ?? '', SENDER_MOST)} is not one of ug/kg/min, ug/min, U/min`,
        );
      if (value !== undefined && exact && unit) dose = { drug: pressor, dose: value, unit };
    }
    // Without its time, it may be a member of any set of its patient; without its patient, of any patient's set at
    // its time (ANY_PATIENT): each is refused with it (until 2026-12-07 none was). Without its identity (no id,
    // identifier or fullUrl) it is known: until 2026-12-07 a batch's entry without one was refused alone, and the
    // other pump graded as the complete set.
    if (ms === undefined) return [refusal(patientId ?? ANY_PATIENT, r.at, o, UNPLACED_MEMBER)];
    const id = base?.id ?? r.at;
    const frag = (value: unknown, at: string): Fragment[] => [
      {
        patientId: patientId ?? ANY_PATIENT,
        resource: r.at,
        id,
        ms,
        kind,
        deviceId: device?.id ?? o.deviceId,
        key: 'vasopressors',
        value,
        at: `${r.at}.${at}`,
      },
    ];
    // Any error said of it refuses it, and its set with it.
    if (r.errors > 0 || !base || !device || twoDrugs || patientId === undefined) return frag(REFUSED_MEMBER, 'status');
    if (ended) return frag(null, 'status'); // counted in the set, as not infusing
    if (status === 'on-hold') return frag({ drug: pressor, dose: 0, unit: rateUnitOf(ma) ?? 'mcg/min' }, 'status');
    return dose ? frag(dose, 'dosage.rateQuantity') : frag(REFUSED_MEMBER, 'status');
  }
  // A dose not known to be given is said, not passed over: it is not counted (towards the tocilizumab caps, or as
  // masking fever), and the sender is told so (until 2026-12-05 on-hold and stopped were dropped unsaid).
  if (
    status !== undefined &&
    !takenStatus(
      r,
      status,
      NOT_GIVEN,
      'a medication administration must be completed, in-progress, on-hold, stopped, unknown, or not-done if it was not given',
    ) &&
    Object.hasOwn(NOT_GIVEN, status)
  )
    return [];
  const dose = ma.dosage?.dose;
  let doseMg: number | undefined;
  if (present(dose)) {
    const exact = r.exact('dosage.dose', dose);
    const unit = dose.code ?? dose.unit;
    const factor = unit === 'mg' ? 1 : unit === 'g' ? 1000 : undefined;
    if (typeof dose.value !== 'number' || factor === undefined)
      r.issue('dosage.dose', 'value', `the dose needs a value in mg or g (got ${quoted(unit ?? null, SENDER_MOST)})`);
    else if (exact) doseMg = withoutFloatNoise(dose.value * factor);
  }
  if (ms === undefined || !base || !device || r.errors > 0) return [];
  const at = `${r.at}.${doseMg !== undefined ? 'dosage.dose' : 'medicationCodeableConcept'}`;
  const value = doseMg !== undefined ? { drug, doseMg } : { drug };
  return [{ ...base, ms, kind: 'ehr', deviceId: device.id, key: 'medications', value, at }];
}

function rateUnitOf(ma: MedicationAdministration): (typeof VASOPRESSOR_UNITS)[number] | undefined {
  const rate = ma.dosage?.rateQuantity;
  const unit = str(rate?.code ?? rate?.unit);
  return unit && Object.hasOwn(RATE_UNITS, unit) ? RATE_UNITS[unit] : undefined;
}

const PHYSICAL_TYPE = 'http://terminology.hl7.org/CodeSystem/location-physical-type';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
/** Encounter.class codes of an inpatient stay (v3 ActEncounterCode: inpatient, and its acute and non-acute kinds). */
const INPATIENT = new Set(['IMP', 'ACUTE', 'NONAC']);

function encounter(enc: Encounter, r: Reader, base: Base | undefined, o: FhirOptions): Fragment[] {
  const known = knownStatus(r, enc.status, 'Encounter', ENCOUNTER_STATUSES);
  if (enc.status === 'entered-in-error') return notRetracted(r);
  if (enc.status === 'cancelled') return [];
  // A planned stay's location is where the patient will be, not where the patient is: read as the current bed, a
  // bed booked for next week moved the patient's pages there, and after a discharge restarted the watch.
  if (enc.status === 'planned')
    return (
      r.issue(
        'status',
        'not-supported',
        'ignored: a planned Encounter is not where the patient is; its bed and ward are taken once it is in progress',
        'warning',
      ) ?? []
    );
  const out: Fragment[] = [];
  // Past a refused status, patient or identity, the locations are checked, their problems named, never taken.
  const read = base !== undefined && r.errors === 0;
  const locations = enc.location ?? [];
  // The current bed and ward of a stay in progress (a location not left: no period.end), the latest-starting of each.
  const current = new Map<string, Fragment>();
  // Locations read (a bed or ward, named, at a time read), taken or not: whether there is one to take is said.
  let readable = 0;
  r.objects('location', locations).forEach(([loc, i]) => {
    if (loc.status && loc.status !== 'active') return;
    const name = loc.location?.display ?? loc.location?.identifier?.value;
    const codings = codingsOf(loc.physicalType);
    const type = codings.find((c) => c.system === PHYSICAL_TYPE)?.code;
    const key = type === 'bd' ? 'enrolment.bed' : type === 'wa' ? 'enrolment.ward' : undefined;
    if (!key) {
      // A bed or ward code in another system, or in none, is not read (a local code is no bed: no guess); say so
      // where it is, since "no location with physicalType bd" alone tells a sender who sent "bd" nothing.
      const near = codings.find((c) => c.code === 'bd' || c.code === 'wa');
      if (near)
        r.issue(
          `location[${i}].physicalType`,
          'code-invalid',
          `${quoted(near.code, SENDER_MOST)} is read only in the system ${PHYSICAL_TYPE} (${near.system === '' ? 'this coding has no system' : `this coding's is ${quoted(near.system, URI_MOST)}`}): no bed or ward was taken from this location`,
          'warning',
        );
      return;
    }
    if (typeof name !== 'string' || !name) {
      r.issue(`location[${i}].location.display`, 'required', 'the bed or ward needs a name (location.display)');
      return;
    }
    const path = loc.period?.start !== undefined ? `location[${i}].period.start` : 'period.start';
    const ms = r.time(path, loc.period?.start ?? enc.period?.start);
    if (ms !== undefined) readable++;
    if (ms === undefined || !read) return;
    const f: Fragment = {
      ...base,
      ms,
      kind: 'ehr',
      deviceId: o.deviceId,
      key,
      value: name,
      at: `${r.at}.location[${i}].location.display`,
    };
    out.push(f);
    const held = current.get(key);
    if (loc.period?.end === undefined && (!held || held.ms <= ms)) current.set(key, f);
  });
  // A stay in progress is where the patient is when that version was recorded (meta.lastUpdated), not only since the
  // bed's start: a discharge cancelled by putting the same Encounter back in progress (the v2-to-FHIR mapping of an
  // ADT^A13) keeps the stay's old start, before the end it undoes, and dated there alone it restarted nothing (the
  // patient stayed unwatched). Dated when recorded, as an A13 is at EVN-2, it is the re-admission.
  // A status not read says nothing of where the patient is, or whether the stay ended. Past a refused id or patient,
  // the rest is checked and named, never taken (until 2026-12-07 a finished stay's period.end went unsaid).
  if (!known) return out;
  // A finished inpatient stay is the end of the patient's monitoring (a discharge): taken for that, with or without
  // a bed. Any other visit that ends (a clinic or emergency visit, a day of outpatient CAR-T care) is not: the
  // patient may be monitored all the same, and ending the watch on it would lose a no-data alert.
  if (enc.status === 'finished') {
    // A part of a stay (partOf: a ward's leg of the hospitalization, as some EHRs chart each ward) finishes when the
    // patient moves on: it is no discharge, and taken for one it left a patient still in hospital unwatched.
    if (enc.partOf !== undefined && enc.partOf !== null) {
      r.issue(
        'partOf',
        'not-supported',
        'not taken as the end of monitoring: an Encounter that is part of another (partOf) is a leg of a stay, not its end; the patient stays watched',
        'warning',
      );
      return out;
    }
    const cls = present(enc.class) ? enc.class : undefined;
    if (cls && (cls.system === undefined || cls.system === ACT_CODE) && INPATIENT.has(String(cls.code)))
      return [...out, ...stayEnd(enc, r, read ? base : undefined, o)];
    r.issue(
      'class',
      'not-supported',
      `not taken as the end of monitoring: a finished Encounter of class ${quoted(cls?.code ?? null, SENDER_MOST)} is not the end of an inpatient stay (IMP, ACUTE or NONAC); the patient stays watched`,
      'warning',
    );
    return out;
  }
  const recorded = enc.status === 'in-progress' ? lastUpdatedOf(enc, r) : undefined;
  if (recorded !== undefined) for (const f of current.values()) if (f.ms < recorded) f.ms = recorded;
  if (readable === 0 && Array.isArray(locations) && locations.length === 0)
    r.issue(
      'location',
      'required',
      'an Encounter is taken for its bed and ward (location with physicalType bd or wa), or, finished, for the end of the stay (period.end)',
    );
  else if (readable === 0)
    r.issue(
      'location',
      'not-supported',
      'ignored: no location with physicalType bd (bed) or wa (ward) and a name (location.display): no bed or ward was stored',
      'warning',
    );
  return out;
}

/**
 * When the EHR recorded this version of a resource (meta.lastUpdated, an instant), or undefined: absent, or not an
 * instant (said with a warning; the resource is read as without it).
 */
function lastUpdatedOf(resource: { meta?: { lastUpdated?: unknown } }, r: Reader): number | undefined {
  const meta = resource.meta;
  if (!present(meta) || meta.lastUpdated === undefined) return undefined;
  const kept: FhirIssue[] = [];
  const ms = new Reader(r.resource, r.at, kept).time('meta.lastUpdated', meta.lastUpdated);
  for (const issue of kept) r.issue('meta.lastUpdated', issue.code, `ignored: ${issue.text}`, 'warning');
  return ms;
}

/**
 * The end of monitoring a finished Encounter says, at period.end (required: when the stay ended, as every other
 * resource's time is), its reason from hospitalization.dischargeDisposition (terminology.ts), else `discharged`.
 * Without a base (the Encounter refused for its id, patient or another problem), period.end is checked, not taken.
 */
function stayEnd(enc: Encounter, r: Reader, base: Base | undefined, o: FhirOptions): Fragment[] {
  const end = enc.period?.end;
  if (end === undefined || end === null) {
    r.issue(
      'period.end',
      'required',
      "a finished Encounter needs period.end (when the stay ended): it ends the patient's monitoring then",
    );
    return [];
  }
  const ms = r.time('period.end', end);
  if (ms === undefined || !base) return [];
  const disposition = present(enc.hospitalization) ? enc.hospitalization.dischargeDisposition : undefined;
  const reason = codingsOf(disposition)
    .map((c) => endReasonOf(c.system, c.code))
    .find(Boolean);
  return [
    {
      ...base,
      ms,
      kind: 'ehr',
      deviceId: o.deviceId,
      key: 'monitoringEnd.reason',
      value: reason ?? 'discharged',
      at: `${r.at}.status`, // what makes it an end: where a device that may not send one is told so
    },
  ];
}

/** R4 Procedure statuses of an infusion not (or not known to be) given. */
const PROCEDURE_NOT_TAKEN: Record<string, string> = Object.fromEntries(
  ['preparation', 'not-done', 'on-hold', 'stopped', 'unknown'].map((status) => [
    status,
    `ignored: a Procedure of status ${status} is not taken as the infusion (enrolment.infusedAt): only completed or in-progress is; send completed, with performedDateTime, once the cells are given`,
  ]),
);

function procedure(proc: Procedure, r: Reader, base: Base | undefined, o: FhirOptions): Fragment[] {
  const status = typeof proc.status === 'string' ? (proc.status as string) : undefined;
  if (status === undefined) r.issue('status', 'required', 'status is required');
  if (status === 'entered-in-error') return notRetracted(r);
  // An infusion not (or not known to be) given is said, not passed over: it sets no infusion time (the episode's
  // start), and until 2026-12-05 a CAR-T infusion stopped part-way was answered 202 with nothing said. A status R4
  // lacks is an error, and the rest is checked on.
  if (
    status !== undefined &&
    !takenStatus(
      r,
      status,
      PROCEDURE_NOT_TAKEN,
      "a Procedure's status must be one of R4's: completed, in-progress, preparation, not-done, on-hold, stopped, unknown or entered-in-error",
    ) &&
    Object.hasOwn(PROCEDURE_NOT_TAKEN, status)
  )
    return [];
  const therapy = soleOf(
    r,
    'code',
    codingsOf(proc.code).map((c) =>
      c.system === CRS_CODES && Object.hasOwn(THERAPY_CODES, c.code) ? THERAPY_CODES[c.code] : undefined,
    ),
    'therapies',
  );
  if (!therapy)
    r.issue(
      'code',
      'code-invalid',
      `the infusion Procedure needs a ${CRS_CODES} code: ${Object.keys(THERAPY_CODES).join(' or ')}`,
    );
  const path = proc.performedDateTime !== undefined ? 'performedDateTime' : 'performedPeriod.start';
  const ms = r.time(path, proc.performedDateTime ?? proc.performedPeriod?.start);
  if (ms === undefined || !base || !therapy || therapy === TWO || r.errors > 0) return [];
  const frag = (key: string, value: unknown, at: string): Fragment => ({
    ...base,
    ms,
    kind: 'ehr',
    deviceId: o.deviceId,
    key,
    value,
    at: `${r.at}.${at}`,
  });
  const out = [frag('enrolment.therapy', therapy, 'code'), frag('enrolment.infusedAt', iso(ms), path)];
  const product = proc.usedCode?.[0];
  const name = product?.text ?? codingsOf(product).find((c) => c.code)?.code;
  if (typeof name === 'string' && name) out.push(frag('enrolment.product', name, 'usedCode[0]'));
  return out;
}

/**
 * The vasopressors of one patient at one time in one request are the complete set infusing (docs/interfaces.md):
 * one section, whichever pumps (each MedicationAdministration naming its own Device) or chart they come from. Left
 * in one message per pump, each was a complete set of its own, and the later at the instant replaced the others
 * (grading-rules section 6): two drugs were one agent, and a stopped pump's [] took an infusing one away. When they
 * come from more than one source, the set is the sender's: kind `pump` when every one names a pump, else `ehr`.
 */
function oneVasopressorSet(fragments: Fragment[], sender: string): Fragment[] {
  const atOf = (f: Fragment) => `${f.patientId}\n${f.ms}`;
  const sets = new Map<string, Fragment[]>();
  for (const f of fragments) {
    if (f.key !== 'vasopressors') continue;
    const set = sets.get(atOf(f));
    if (set) set.push(f);
    else sets.set(atOf(f), [f]);
  }
  return fragments.map((f) => {
    const set = f.key === 'vasopressors' ? sets.get(atOf(f))! : [];
    if (new Set(set.map((g) => `${g.kind}\n${g.deviceId}`)).size <= 1) return f;
    return { ...f, deviceId: sender, kind: set.every((g) => g.kind === 'pump') ? 'pump' : 'ehr' };
  });
}

/**
 * The fragments of one source and time (the best-ranked of each measurement) that give a field two different values:
 * each is refused, and the field is not sent, as over HL7 v2 ("neither is used"). A value the contract refuses anyway
 * (out of its range: a garbled 384.5 °C) is refused on its own first, so that it never takes a good one down with
 * it. Until 2026-12-05 the later value was queued and the first resource's error was said at the second: in a batch
 * the entry whose value was dropped was answered `202 Accepted`, and the one whose value was graded `422`.
 */
function conflicts(list: Fragment[], ms: number, issue: (f: Fragment, issue: FhirIssue) => void): Set<Fragment> {
  const byKey = new Map<string, Fragment[]>();
  for (const f of list) {
    if (f.key === 'vasopressors' || f.key === 'medications') continue;
    byKey.set(f.key, [...(byKey.get(f.key) ?? []), f]);
  }
  const refused = new Set<Fragment>();
  const distinct = (fs: Fragment[]) => new Set(fs.map((f) => JSON.stringify(f.value))).size;
  for (const [key, all] of byKey) {
    if (distinct(all) < 2) continue;
    const fine = all.filter((f) => {
      const problem = measurementProblem(key, f.value);
      if (problem === undefined) return true;
      refused.add(f);
      issue(f, { expression: f.at, code: 'value', text: `${key}: ${problem}` });
      return false;
    });
    if (distinct(fine) < 2) continue;
    const where = [...new Set(fine.map((f) => f.resource))].join(', ');
    for (const f of fine) {
      refused.add(f);
      issue(f, {
        expression: f.at,
        code: 'value',
        text: `${key} has two different values at ${iso(ms)} in this request (${where}); neither is used`,
      });
    }
  }
  return refused;
}

/**
 * Of a measurement's ranked fragments (several sources of one time), those of the best source left that the contract
 * refuses, each refused on its own, until a good one leads (or one is left, refused by the contract as any value).
 */
function refusedFirst(list: Fragment[], issue: (f: Fragment, issue: FhirIssue) => void): Set<Fragment> {
  const byKey = new Map<string, Fragment[]>();
  for (const f of list) if (f.rank !== undefined) byKey.set(f.key, [...(byKey.get(f.key) ?? []), f]);
  const out = new Set<Fragment>();
  for (const [key, all] of byKey) {
    let left = all;
    while (left.length > 1) {
      const first = Math.min(...left.map((f) => f.rank!));
      const bad = left.filter((f) => {
        if (f.rank !== first) return false;
        const problem = measurementProblem(key, f.value);
        if (problem) issue(f, { expression: f.at, code: 'value', text: `${key}: ${problem}` });
        return problem !== undefined;
      });
      if (bad.length === 0) break;
      for (const f of bad) out.add(f);
      left = left.filter((f) => !bad.includes(f));
    }
  }
  return out;
}

/** Fragments of one patient, source and time as one contract message each. */
function assemble(fragments: Fragment[], issue: (f: Fragment, issue: FhirIssue) => void): FhirTranslated[] {
  const groups = new Map<string, Fragment[]>();
  for (const f of fragments) {
    const key = `${f.patientId}\n${f.kind}\n${f.deviceId}\n${f.ms}`;
    const group = groups.get(key);
    if (group) group.push(f);
    else groups.set(key, [f]);
  }
  const out: FhirTranslated[] = [];
  const idsOf = (list: Fragment[]) => [...new Set(list.map((f) => f.id))].sort().join('+');
  // One resource at two times (an Encounter's bed and ward taken at different times; a finished Encounter's bed and
  // its end) makes two messages: each then names its time, as HL7's /t= does, so that neither is taken for the other
  // resent (or its id reused). A resource at one time keeps the id it always had.
  const uses = new Map<string, number>();
  for (const list of groups.values()) uses.set(idsOf(list), (uses.get(idsOf(list)) ?? 0) + 1);
  for (const list of groups.values()) {
    const { patientId, kind, deviceId, ms } = list[0]!;
    const ids = idsOf(list);
    const message: Record<string, unknown> = {
      messageId: messageIdOf('fhir', uses.get(ids)! > 1 ? [ids, `t=${compactTime(ms)}`] : [ids]),
      patientId,
      observedAt: iso(ms),
      source: { deviceId, kind },
    };
    const origins: Record<string, string> = {};
    const parts: Record<string, string[]> = {};
    const from = (key: string, f: Fragment) => {
      origins[key] ??= f.at;
      const list = (parts[key] ??= []);
      if (!list.includes(f.resource)) list.push(f.resource);
    };
    // Of one source and time, the best-ranked source of a measurement is read (the arterial line over the cuff, the
    // generic body temperature over a site's); two values of one rank are a conflict.
    // A value of the best source the contract refuses (an arterial line flushed, 400 mmHg) is refused on its own
    // first, and the next source read: it was passed over as ranked below, and in a batch its entry answered
    // `202 Accepted` with nothing of it queued.
    const outOfRange = refusedFirst(list, issue);
    const best = new Map<string, number>();
    for (const f of list)
      if (f.rank !== undefined && !outOfRange.has(f)) best.set(f.key, Math.min(f.rank, best.get(f.key) ?? f.rank));
    const refused = conflicts(
      list.filter((f) => !outOfRange.has(f) && (f.rank === undefined || f.rank === best.get(f.key))),
      ms,
      issue,
    );
    for (const f of outOfRange) refused.add(f);
    for (const f of list) {
      if (refused.has(f)) continue;
      if (f.rank !== undefined && f.rank > best.get(f.key)!) {
        issue(f, {
          expression: f.at,
          code: 'not-supported',
          text: `ignored: ${f.key} at ${iso(ms)} is taken from a better source in this request (the arterial line over the cuff, the body temperature over a site's, a core site over the mouth or ear over the axilla; docs/interfaces.md)`,
          severity: 'warning',
        });
        continue;
      }
      const [section, field] = f.key.split('.') as [string, string | undefined];
      if (section === 'vasopressors' || section === 'medications') {
        const arr = (message[section] as unknown[] | undefined) ?? [];
        if (f.value !== null) arr.push(f.value);
        message[section] = arr;
        from(section, f);
      } else {
        const obj = (message[section] as Record<string, unknown> | undefined) ?? {};
        obj[field!] = f.value;
        message[section] = obj;
        // The oxygen section and the end of monitoring are each one part: refused (a device's scope) as a whole.
        from(section === 'oxygen' || section === 'monitoringEnd' ? section : f.key, f);
      }
    }
    const oxygen = message.oxygen as Record<string, unknown> | undefined;
    if (oxygen && oxygen.device === undefined) {
      for (const f of list)
        if (f.key.startsWith('oxygen.') && !refused.has(f))
          issue(f, {
            expression: f.at,
            code: 'required',
            text: `${f.key} needs the oxygen device at the same time (an Observation coded ${CRS_CODES}|${CRS_OBSERVATIONS.oxygenDevice}); it is never guessed`,
          });
      delete message.oxygen;
      delete origins.oxygen;
      delete parts.oxygen;
    }
    if (Object.keys(message).length === 4) continue;
    // Of an Encounter alone, it is taken for a patient the server knows only; with another resource's data (a weight
    // charted with the bed) it is taken as that data is: the request gives the patient's data (known.ts).
    const ifKnown = list.every((f) => f.ifKnown);
    const resources = [...new Set(list.map((f) => f.resource))];
    out.push({ message, origins, parts, resources, whole: list[0]!.resource, ...(ifKnown ? { ifKnown } : {}) });
  }
  return out;
}
