// The synthesized stack, kept between runs of `crs serve --backend aws`: a synthesis takes the CDK seconds of CPU,
// and every AWS integration test starts several hosts and teardowns with the same stack. Kept here, in the CLI's own
// code, so that a host whose stack is cached never loads the CDK app's TypeScript (bin/crs.js registers tsx's loader
// only to synthesize, and with the loader registered every later import of the process went through its hooks: about
// 0.5 s of CPU at each start).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SynthOptions, Synthesize, Synthesized } from './template.ts';
import { canonicalJson } from '#domain/settings-id.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** In this checkout's node_modules (the usual place for a build cache), not in a directory other users can write. */
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'crs-synth');

/**
 * Everything a synthesis is made from: the sources the stack is built from (infra/, shared/), the locked library
 * versions, the options and the environment the stack reads. Equal keys, equal templates.
 */
function synthesisKey(options: SynthOptions): string {
  const h = createHash('sha256');
  h.update(
    canonicalJson({
      options,
      account: process.env.CDK_DEFAULT_ACCOUNT ?? null,
      region: process.env.CDK_DEFAULT_REGION ?? null,
    }),
  );
  for (const dir of ['infra', 'shared']) {
    const files = (readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true }) as Dirent[])
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name))
      .sort();
    for (const file of files) h.update(file).update(readFileSync(file));
  }
  h.update(readFileSync(join(ROOT, 'package-lock.json')));
  return h.digest('hex').slice(0, 40);
}

/** `synthesize`, with each result kept under its key and used again while nothing it was made from has changed. */
export function cachedSynthesis(synthesize: Synthesize): Synthesize {
  return async (options) => {
    const cached = join(CACHE_DIR, `${synthesisKey(options)}.json`);
    try {
      return JSON.parse(readFileSync(cached, 'utf8')) as Synthesized;
    } catch {
      // not synthesized yet with these inputs
    }
    const synthesized = await synthesize(options);
    mkdirSync(CACHE_DIR, { recursive: true });
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, JSON.stringify(synthesized));
    renameSync(partial, cached); // whole or not at all, also when two processes synthesize at once
    return synthesized;
  };
}
