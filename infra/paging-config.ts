// Who gets paged: each team's endpoints (email, SMS, HTTPS), and the operators' endpoints for alarms. Comes from
// CDK context: `-c pagingConfig=FILE` (a JSON file) or `-c paging='{...}'` (the same JSON inline).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePagingConfig, type PagingConfig } from '#domain/paging-endpoints.ts';

export type { PagingConfig } from '#domain/paging-endpoints.ts';

/** Reads the paging config from context; no config means no subscriptions (the stack warns at synth). */
export function pagingConfigFromContext(tryGetContext: (key: string) => unknown, cwd = process.cwd()): PagingConfig {
  const inline = tryGetContext('paging');
  if (inline !== undefined)
    return parsePagingConfig(typeof inline === 'string' ? JSON.parse(inline) : inline, 'context paging');
  const file = tryGetContext('pagingConfig');
  if (typeof file === 'string' && file !== '') {
    const path = resolve(cwd, file);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read paging config ${path}: ${(err as Error).message}`);
    }
    return parsePagingConfig(json, path);
  }
  return parsePagingConfig({}, 'none given');
}
