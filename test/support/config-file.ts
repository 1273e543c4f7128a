// The grading configuration as the stack ships it to a function: a file beside the handler, named by CRS_CONFIG_FILE.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes `content` (JSON text as given, or a value to serialize) to a file of its own; the variable that names it. */
export function shippedConfig(content: unknown): { CRS_CONFIG_FILE: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'crs-config-')), 'crs-config.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return { CRS_CONFIG_FILE: path };
}
