// Who gets paged: each team's endpoints (email, SMS, HTTPS), and the operators' endpoints for alarms. Comes from
// CDK context: `-c pagingConfig=FILE` (a JSON file) or `-c paging='{...}'` (the same JSON inline).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePagingConfig, type PagingConfig } from '#domain/paging-endpoints.ts';

export type { PagingConfig } from '#domain/paging-endpoints.ts';

/**
 * Reads the paging config from context; no config means no subscriptions (the stack warns at synth). An empty
 * `pagingConfig` (`-c pagingConfig=$PAGING` with the variable unset) is refused: it deployed a stack paging nobody.
 */
export function pagingConfigFromContext(tryGetContext: (key: string) => unknown, cwd = process.cwd()): PagingConfig {
  const inline = tryGetContext('paging');
  const file = tryGetContext('pagingConfig');
  if (inline !== undefined && file !== undefined)
    throw new Error('context paging and pagingConfig are both given: give the paging config once, inline or as a file');
  if (inline !== undefined) {
    let json: unknown = inline;
    if (typeof inline === 'string') {
      try {
        json = JSON.parse(inline);
      } catch (err) {
        throw new Error(`context paging is not valid JSON: ${(err as Error).message}`);
      }
    }
    return parsePagingConfig(json, 'context paging');
  }
  if (file !== undefined) {
    if (typeof file !== 'string' || file.trim() === '')
      throw new Error(
        `context pagingConfig must name a JSON file of the paging endpoints (got ${JSON.stringify(file)}): without it nobody is paged`,
      );
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
