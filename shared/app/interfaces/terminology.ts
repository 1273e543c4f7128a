// Codes both interfaces share: oxygen delivery devices (SNOMED CT), drugs (RxNorm ingredients) and the project's
// own CodeSystem for what has no standard code (ICANS domains, the ICE score, the contract's device names).
// A code not listed here is refused with an error that names it, never mapped to a neighbour.
import {
  CEREBRAL_EDEMA,
  CONSCIOUSNESS,
  MEDICATION_DRUGS,
  OXYGEN_DEVICES,
  SEIZURE,
  VASOPRESSOR_DRUGS,
  type MedicationDrug,
  type MonitoringEndReason,
  type OxygenDevice,
  type VasopressorDrug,
} from '#domain/contract.ts';

export const SNOMED = 'http://snomed.info/sct';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const LOINC_SYSTEM = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
/** IEEE 11073-10101 (MDC), as FHIR names it: observation codes and units, by number. */
export const MDC_SYSTEM = 'urn:iso:std:iso:11073:10101';
/** This project's CodeSystem: codes for the ICANS domains, the ICE score, therapies and the contract's enumerations. */
export const CRS_CODES = 'https://crs-alerting.example/fhir/CodeSystem/crs';

/** SNOMED CT physical-object codes of oxygen delivery devices. Devices without one here use the CRS_CODES name. */
const SNOMED_OXYGEN_DEVICES: Record<string, OxygenDevice> = {
  '336623009': 'nasal_cannula', // Oxygen nasal cannula
  '425478008': 'blow_by', // Blow by oxygen mask
  '427591007': 'non_rebreather', // Nonrebreather oxygen mask
  '428285009': 'venturi', // Venturi mask
  '463587004': 'simple_mask', // Rebreathing oxygen face mask (the "simple face mask")
};

/** RxNorm ingredient codes (RXCUI). */
export const RXNORM_VASOPRESSORS: Record<string, VasopressorDrug> = {
  '7512': 'norepinephrine',
  '3992': 'epinephrine',
  '8163': 'phenylephrine',
  '3628': 'dopamine',
  '11149': 'vasopressin',
};
/**
 * The names a drug's text may give a vasopressor (whole words, any case), with the brands and the names of other
 * languages a formulary may carry (2026-12-07; abbreviations such as NE, norepi or levo are not read: too many other
 * meanings): never read as the drug (a drug is read by its code), only to refuse one that names a vasopressor but is
 * coded as none this system grades (an RxNorm clinical drug, a local code, text alone), which would leave its set
 * short. Norepinephrine first: "nor-epinephrine" names it, not epinephrine. A word ends at anything but a letter: a
 * digit or an underscore too ("NOREPINEPHRINE16MG", "DOPAMINE_INFUSION": until 2026-12-07 a word boundary, \b, read
 * neither).
 */
const word = (names: string) => new RegExp(`(?<!\\p{L})(?:${names})(?!\\p{L})`, 'giu');
const ADRENALINE = 'adr[eé]nalin[ae]?';
const VASOPRESSOR_NAMES: [RegExp, VasopressorDrug][] = [
  [word(`nor[-\\s]?(?:epinephrine|epinefrina|${ADRENALINE})|levophed|arterenol`), 'norepinephrine'],
  [word(`epinephrine|epinefrina|${ADRENALINE}`), 'epinephrine'],
  [word('ph[eé]nyl[eé]phrine?|fenilefrina|neo[-\\s]?synephrine|vazculep|biorphen'), 'phenylephrine'],
  [word('dopamin[ae]?|intropin'), 'dopamine'],
  [word('vasopress?in[ae]?|vasostrict|pitressin'), 'vasopressin'],
];

/** The vasopressors a text names (VASOPRESSOR_NAMES), each once, in the contract's order. */
export function vasopressorsNamed(text: string): VasopressorDrug[] {
  let rest = text;
  const named = new Set<VasopressorDrug>();
  for (const [name, drug] of VASOPRESSOR_NAMES)
    rest = rest.replace(name, () => {
      named.add(drug);
      return ' ';
    });
  return VASOPRESSOR_DRUGS.filter((d) => named.has(d));
}

export const RXNORM_MEDICATIONS: Record<string, MedicationDrug> = {
  '612865': 'tocilizumab',
  '1535218': 'siltuximab',
  '72435': 'anakinra',
  '3264': 'dexamethasone',
  '6902': 'methylprednisolone',
  '5492': 'hydrocortisone',
  '161': 'acetaminophen',
  '5640': 'ibuprofen',
};

/** FHIR R4's discharge dispositions (Encounter.hospitalization.dischargeDisposition, an example binding). */
export const DISCHARGE_DISPOSITION = 'http://terminology.hl7.org/CodeSystem/discharge-disposition';
/**
 * Why the monitoring ended, by discharge disposition: home (or against advice) is a discharge; another facility,
 * hospice, long-term or skilled nursing care, psychiatry, rehabilitation a transfer out of the program's care; a
 * death and "other" are other. Any other code, or none, is a discharge (what a finished stay is).
 */
const DISPOSITION_REASONS: Record<string, MonitoringEndReason> = {
  home: 'discharged',
  'alt-home': 'discharged',
  aadvice: 'discharged',
  'other-hcf': 'transferred',
  hosp: 'transferred',
  long: 'transferred',
  psy: 'transferred',
  rehab: 'transferred',
  snf: 'transferred',
  exp: 'other',
  oth: 'other',
};
/** The disposition the FHIR encoder writes for each reason (read back as that reason). */
export const DISPOSITION_OF: Record<MonitoringEndReason, string> = {
  discharged: 'home',
  transferred: 'other-hcf',
  other: 'oth',
};

/**
 * Body temperature by where it was measured: read as `vitals.temperatureC` (the rules' fever is >= 38.0 °C whatever
 * the site). A rank each (lower first, as the HL7 v2 SOURCE_RANK): every site ranks after the generic body
 * temperature (MDC 150344 MDC_TEMP and 150364 MDC_TEMP_BODY; LOINC 8310-5), so that a site temperature never
 * overrides the generic one of the same message; among the sites, the core ones (blood, oesophagus, nasopharynx,
 * bladder, rectum, gut) first, then the mouth, the ear and the temporal artery, then the axilla (which reads low).
 * Skin and surface temperatures (MDC_TEMP_SKIN 150388; finger, toe, hand, foot, body surface), the nasal cavity, the
 * groin and temperatures that are not the patient's (room, incubator, fluid or blood warmer, dialysate) are not a
 * body temperature: not listed, so skipped. Sources, in docs/interfaces.md: the IEEE 11073-10101 codes as HL7
 * Denmark's DK Core and the MII ICU module (Germany) publish them, the LOINC codes of the eCQM "Body Temperature"
 * value set (2.16.840.1.113762.1.4.1045.152) and the MII ICU profiles.
 */
export const TEMPERATURE_SITE_RANK = { core: 10, oral: 11, axilla: 12 } as const;
const { core, oral, axilla } = TEMPERATURE_SITE_RANK;
/** MDC codes of a site's body temperature (under MDC, or Philips' MDIL as partition-code in hex: 0002-4b60 150368). */
export const MDC_TEMPERATURE_SITES: Record<number, number> = {
  150368: core, // MDC_TEMP_CORE
  150372: core, // MDC_TEMP_ESOPH
  150380: core, // MDC_TEMP_NASOPH
  188436: core, // blood temperature (MII ICU "Koerpertemperatur Blut", LOINC 60834-9)
  188420: core, // MDC_TEMP_RECT
  188456: core, // MDC_TEMP_GIT (gastro-intestinal tract)
  188424: oral, // MDC_TEMP_ORAL
  150392: oral, // MDC_TEMP_TYMP
  188428: oral, // MDC_TEMP_EAR
  188452: axilla, // MDC_TEMP_AXILLA
  188496: axilla, // axillary temperature (MII ICU "Koerpertemperatur Achsel"; Mindray's MDC_TEMP_AXIL)
};
/** LOINC codes of a site's body temperature. */
export const LOINC_TEMPERATURE_SITES: Record<string, number> = {
  '8329-5': core, // Body temperature - Core
  '8330-3': core, // Body temperature - Intravascular
  '60834-9': core, // Blood temperature
  '60836-4': core, // Esophageal temperature
  '60838-0': core, // Nasopharyngeal temperature
  '8334-5': core, // Body temperature - Urinary bladder
  '8332-9': core, // Rectal temperature
  '8331-1': oral, // Oral temperature
  '8333-7': oral, // Tympanic membrane temperature
  '76011-6': oral, // Ear temperature
  '75539-7': oral, // Body temperature - Temporal artery
  '8328-7': axilla, // Axillary temperature
};

/** CRS_CODES codes of observations (FHIR Observation.code, HL7 OBX-3 in the 99CRS system). */
export const CRS_OBSERVATIONS = {
  oxygenDevice: 'oxygen-device',
  oxygenForComfort: 'oxygen-for-comfort',
  iceScore: 'ice-score',
  consciousness: 'icans-consciousness',
  seizure: 'icans-seizure',
  motorWeakness: 'icans-motor-weakness',
  cerebralEdema: 'icans-cerebral-edema',
  organToxicity: 'organ-toxicity-max-ctcae-grade',
  transaminitis: 'transaminitis-ctcae-grade',
  therapyInfusion: 'cell-therapy-infusion',
} as const;

/** The contract field each of the project's charted codes names: one table for HL7 v2's OBX-3 and FHIR's codings. */
export const CRS_CHARTED_FIELDS = {
  [CRS_OBSERVATIONS.oxygenForComfort]: 'oxygen.forComfort',
  [CRS_OBSERVATIONS.iceScore]: 'neuro.iceScore',
  [CRS_OBSERVATIONS.consciousness]: 'neuro.consciousness',
  [CRS_OBSERVATIONS.seizure]: 'neuro.seizure',
  [CRS_OBSERVATIONS.motorWeakness]: 'neuro.motorWeakness',
  [CRS_OBSERVATIONS.cerebralEdema]: 'neuro.cerebralEdema',
  [CRS_OBSERVATIONS.organToxicity]: 'organToxicity.maxCtcaeGrade',
  [CRS_OBSERVATIONS.transaminitis]: 'organToxicity.transaminitisGrade',
} as const;

const own = <T>(table: Record<string, T>, code: string): T | undefined =>
  Object.hasOwn(table, code) ? table[code] : undefined;
const member = <T extends string>(values: readonly T[], code: string): T | undefined =>
  (values as readonly string[]).includes(code) ? (code as T) : undefined;

/** The contract field a project code names (CRS_CHARTED_FIELDS), or undefined. */
export const chartedFieldOf = (code: string): string | undefined =>
  own(CRS_CHARTED_FIELDS as Record<string, string>, code);

export const oxygenDeviceOf = (system: string, code: string): OxygenDevice | undefined =>
  system === SNOMED
    ? own(SNOMED_OXYGEN_DEVICES, code)
    : system === CRS_CODES
      ? member(OXYGEN_DEVICES, code)
      : undefined;
/**
 * A site's drug codes (drug-codes.ts, by drugCodeKey): what it maps, a drug or `not-graded`, is read before the tables
 * above (never one of their codes as another drug: refused when the map is loaded).
 */
export type SiteDrugCodes = ReadonlyMap<string, string>;
export const drugCodeKey = (system: string, code: string) => `${system}\n${code}`;
/** Whether the site maps the code to `not-graded` (a product naming a vasopressor that is none). */
export const siteNotGraded = (site: SiteDrugCodes | undefined, system: string, code: string): boolean =>
  site?.get(drugCodeKey(system, code)) === 'not-graded';

/** A drug of `values` by a site's code (its map first), an RxNorm ingredient code (`rxnorm`) or its CRS code. */
const drugOf =
  <T extends string>(rxnorm: Record<string, T>, values: readonly T[]) =>
  (system: string, code: string, site?: SiteDrugCodes): T | undefined => {
    const mapped = site?.get(drugCodeKey(system, code));
    if (mapped !== undefined) return member(values, mapped);
    return system === RXNORM ? own(rxnorm, code) : system === CRS_CODES ? member(values, code) : undefined;
  };
export const vasopressorOf = drugOf<VasopressorDrug>(RXNORM_VASOPRESSORS, VASOPRESSOR_DRUGS);
export const medicationOf = drugOf<MedicationDrug>(RXNORM_MEDICATIONS, MEDICATION_DRUGS);

export const endReasonOf = (system: string, code: string): MonitoringEndReason | undefined =>
  system === DISCHARGE_DISPOSITION ? own(DISPOSITION_REASONS, code) : undefined;

export const ENUMS = { consciousness: CONSCIOUSNESS, seizure: SEIZURE, cerebralEdema: CEREBRAL_EDEMA } as const;

/** The coded value of an enumerated neuro domain (CRS_CODES, the contract's own names). */
export function enumOf<K extends keyof typeof ENUMS>(
  domain: K,
  system: string,
  code: string,
): (typeof ENUMS)[K][number] | undefined {
  return system === CRS_CODES
    ? (member(ENUMS[domain] as readonly string[], code) as (typeof ENUMS)[K][number] | undefined)
    : undefined;
}

/** HL7 v2 coding-system names (OBX-3.3, CWE .3) for the systems above. */
export const HL7_SYSTEMS: Record<string, string> = {
  SCT: SNOMED,
  SNM: SNOMED,
  RXNORM,
  LN: LOINC_SYSTEM,
  '99CRS': CRS_CODES,
  UCUM,
};
