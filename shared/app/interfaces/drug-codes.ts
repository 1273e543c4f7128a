// The site's drug codes (`drugCodes`): a local code, or an RxNorm product's (a clinical drug, SCD), mapped to one of
// the contract's drugs, or to `not-graded` (a product that names a vasopressor but is none: lidocaine with
// epinephrine). Read by the FHIR ingest before the built-in table (terminology.ts); one loader for every host (the
// ingest function's CRS_FHIR_DRUG_CODES_FILE as the stack ships it, `crs serve` and `crs replay --fhir-drug-codes FILE`, the stack's
// `-c fhirDrugCodes`). A built-in code is never mapped to another drug: refused at start.
import { MEDICATION_DRUGS, VASOPRESSOR_DRUGS, type MedicationDrug, type VasopressorDrug } from '#domain/contract.ts';
import * as z from '#domain/zod.ts';
import { parsePatientSystem } from './patient-system.ts';
import {
  CRS_CODES,
  drugCodeKey,
  RXNORM,
  RXNORM_MEDICATIONS,
  RXNORM_VASOPRESSORS,
  type SiteDrugCodes,
} from './terminology.ts';

const NOT_GRADED = 'not-graded';
type SiteDrug = VasopressorDrug | MedicationDrug | typeof NOT_GRADED;
/** By drugCodeKey (system and code): what the site says the code is. */
export type DrugCodes = SiteDrugCodes & ReadonlyMap<string, SiteDrug>;

const DRUGS = [...VASOPRESSOR_DRUGS, ...MEDICATION_DRUGS, NOT_GRADED] as const;
/** The most entries a map may hold: a site's formulary of pressor products fits; a whole formulary is not asked. */
const MOST = 500;

const entrySchema = z.strictObject({
  system: z.string().check(
    z.refine((s) => parsePatientSystem(s) !== undefined, {
      error: 'must be an absolute URI (a Coding.system: urn:oid:1.2.3.4, http://hospital.example/drugs)',
    }),
  ),
  code: z.string().check(
    z.refine((s) => /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/.test(s) && s.length <= 256, {
      error: 'must be 1-256 printable ASCII characters, no leading, trailing or double space (a Coding.code)',
    }),
  ),
  drug: z.enum(DRUGS, { error: `must be one of ${DRUGS.join(', ')}` }),
});
const mapSchema = z.array(entrySchema).check(z.maxLength(MOST, { error: `holds at most ${MOST} entries` }));

/** What is built in for a code (terminology.ts), if anything: a site entry may only repeat it. */
function builtIn(system: string, code: string): SiteDrug | 'any' | undefined {
  if (system === CRS_CODES) return 'any';
  if (system !== RXNORM) return undefined;
  return Object.hasOwn(RXNORM_VASOPRESSORS, code)
    ? RXNORM_VASOPRESSORS[code]
    : Object.hasOwn(RXNORM_MEDICATIONS, code)
      ? RXNORM_MEDICATIONS[code]
      : undefined;
}

/**
 * The site's drug codes from their JSON text (`[{ "system", "code", "drug" }]`), or an error naming `origin` (the
 * setting), the entry and its field. Refused too: a code of the CRS system, an RxNorm code of the built-in table
 * mapped to another drug (a norepinephrine ingredient code can never be read as anything else), a code twice.
 */
export function parseDrugCodes(text: string, origin: string): DrugCodes {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${origin}: not JSON (${(e as Error).message}); expected [{ "system", "code", "drug" }]`);
  }
  const parsed = mapSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const [index, field] = first.path;
    const where =
      typeof index === 'number' ? `entry ${index}${field !== undefined ? ` ${String(field)}` : ''}` : 'the map';
    throw new Error(`${origin}: ${where}: ${first.message}; expected [{ "system", "code", "drug" }]`);
  }
  const codes = new Map<string, SiteDrug>();
  parsed.data.forEach(({ system, code, drug }, i) => {
    const own = builtIn(system, code);
    if (own === 'any')
      throw new Error(`${origin}: entry ${i} system: the CRS code system (${CRS_CODES}) is built in, never mapped`);
    if (own !== undefined && own !== drug)
      throw new Error(
        `${origin}: entry ${i} drug: RxNorm ${code} is ${own} (built in), never mapped to ${drug}; map the product's or the local code instead`,
      );
    const key = drugCodeKey(system, code);
    if (codes.has(key)) throw new Error(`${origin}: entry ${i} code: ${system} ${code} is mapped twice`);
    codes.set(key, drug);
  });
  return codes;
}
