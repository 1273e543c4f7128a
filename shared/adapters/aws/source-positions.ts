// The stack of an error a function throws to the Lambda runtime (which logs it), with the bundle's positions
// mapped to the TypeScript sources. The functions do not run with --enable-source-maps: Node would read and decode
// the bundle's source maps at every cold start (about 20 ms on a slow machine, `npm run bench`) to serve the rare
// error whose stack reaches a log. Here a file's map is read on the first such error in it.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundle's directory: its entry and the files split from it (infra/bundling.ts), each with its map beside it. */
const bundleDir = dirname(fileURLToPath(import.meta.url));
const maps = new Map<string, SourceMap | null>();

function mapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null; // shipped without its map: the frame stays as it is
    }
    maps.set(file, map);
  }
  return map;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A frame in one of the bundle's files (not bundled, in tests or tsx, the sources are .ts files: none matches). */
const frame = new RegExp(`(?:file://)?(${escapeRegExp(bundleDir)}/[^/\\s():]+\\.mjs):(\\d+):(\\d+)`, 'g');

/** `err` with the frames in this bundle rewritten to `source.ts:line:column`; anything else is returned as is. */
export function withSourcePositions<T>(err: T): T {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return err;
  err.stack = err.stack.replace(frame, (whole, file: string, line: string, column: string) => {
    const entry = mapOf(file)?.findEntry(Number(line) - 1, Number(column) - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    if (entry?.originalSource === undefined || entry.originalLine === undefined) return whole;
    return `${entry.originalSource}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
  });
  return err;
}
