// `--fhir-drug-codes FILE` of crs serve and crs replay: the site's drug codes (shared/app/interfaces/drug-codes.ts),
// read from a JSON file at start; a file not read or a bad map is a usage error naming the file, entry and field.
import { readFileSync } from 'node:fs';
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';

/** The map of FILE, or the problem as `fail` makes it (each command's usage error). */
export function drugCodesFile(file: string, fail: (text: string) => Error): SiteDrugCodes {
  return checkedDrugCodesFile(file, fail).codes;
}

/**
 * The map of FILE and its JSON as read (once: what is checked is what `crs serve --backend aws` gives the stack), or
 * the problem as `fail` makes it.
 */
export function checkedDrugCodesFile(
  file: string,
  fail: (text: string) => Error,
): { codes: SiteDrugCodes; json: unknown[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    throw fail(`cannot read --fhir-drug-codes ${file}: ${(err as Error).message}`);
  }
  try {
    return { codes: parseDrugCodes(text, `--fhir-drug-codes ${file}`), json: JSON.parse(text) as unknown[] };
  } catch (err) {
    throw fail((err as Error).message);
  }
}
