// The site's FHIR drug codes of the ingest function, read once at its cold start: the file the stack ships beside
// the handler (CRS_FHIR_DRUG_CODES_FILE, `-c fhirDrugCodes`).
// Apart from env.ts, which every function imports: only the ingest function loads the map's loader.
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';
import { ENV, shippedFile } from './env.ts';

/** The map, or undefined when the stack ships none; a bad or unreadable map fails the cold start. */
export function fhirDrugCodesFromEnv(env: NodeJS.ProcessEnv = process.env): SiteDrugCodes | undefined {
  const shipped = shippedFile(ENV.fhirDrugCodesFile, env);
  return shipped ? parseDrugCodes(shipped.text.replace(/^\uFEFF/, ''), shipped.named) : undefined;
}
