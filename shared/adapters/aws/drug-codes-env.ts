// The site's FHIR drug codes of the ingest function, read once at its cold start: the file the stack ships beside
// the handler (CRS_FHIR_DRUG_CODES_FILE, `-c fhirDrugCodes`), or the JSON itself set by hand (CRS_FHIR_DRUG_CODES).
// Apart from env.ts, which every function imports: only the ingest function loads the map's loader.
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';
import { ENV, shippedFile } from './env.ts';

/** The map, or undefined when neither variable is set; a bad, unreadable or second map fails the cold start. */
export function fhirDrugCodesFromEnv(env: NodeJS.ProcessEnv = process.env): SiteDrugCodes | undefined {
  const inline = env[ENV.fhirDrugCodes];
  if (inline && env[ENV.fhirDrugCodesFile])
    throw new Error(
      `${ENV.fhirDrugCodes} and ${ENV.fhirDrugCodesFile} are both set: give the site drug codes once (the stack ships them as the file)`,
    );
  if (inline) return parseDrugCodes(inline, ENV.fhirDrugCodes);
  const shipped = shippedFile(ENV.fhirDrugCodesFile, env);
  return shipped ? parseDrugCodes(shipped.text.replace(/^\uFEFF/, ''), shipped.named) : undefined;
}
