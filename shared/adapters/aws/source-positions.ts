// The stack of an error a function throws to the Lambda runtime (which logs it), with the bundle's positions
// mapped to the TypeScript sources. The functions do not run with --enable-source-maps: Node would read and decode
// the bundle's source map at every cold start (about 20 ms on a slow machine, `npm run bench`) to serve the rare
// error whose stack reaches a log. Here the map is read on the first such error only.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

let bundleMap: { file: string; map: SourceMap } | null | undefined;

function loadBundleMap(): typeof bundleMap {
  try {
    const file = fileURLToPath(import.meta.url);
    return { file, map: new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) };
  } catch {
    return null; // not bundled (tests, tsx), or shipped without its map: the stack stays as it is
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `err` with the frames in this bundle rewritten to `source.ts:line:column`; anything else is returned as is. */
export function withSourcePositions<T>(err: T): T {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return err;
  if (bundleMap === undefined) bundleMap = loadBundleMap();
  if (!bundleMap) return err;
  const { file, map } = bundleMap;
  const frame = new RegExp(`(?:file://)?${escapeRegExp(file)}:(\\d+):(\\d+)`, 'g');
  err.stack = err.stack.replace(frame, (whole, line: string, column: string) => {
    const entry = map.findEntry(Number(line) - 1, Number(column) - 1) as {
      originalSource?: string;
      originalLine?: number;
      originalColumn?: number;
    };
    if (entry?.originalSource === undefined || entry.originalLine === undefined) return whole;
    return `${entry.originalSource}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
  });
  return err;
}
