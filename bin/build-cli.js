#!/usr/bin/env node
// Builds the `crs` command into dist/cli/ with esbuild: npm's `prepare` runs this at install, and bin/crs.js runs
// it again whenever a source file is newer than the build (so a developer running from source never runs a stale
// bundle). Packages stay external (better-sqlite3 is native; aws-cdk-lib, the AWS SDK, medplum load from
// node_modules) except zod, which every command needs: bundled, its hundred modules load as one file. Code splitting
// keeps every `await import()` lazy, so `crs --help` loads only the CLI's own code.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = join(ROOT, 'dist', 'cli');
/** Written last: the files the build read (relative to the repository) and when it began. */
const MANIFEST = 'inputs.json';

/**
 * A source that finds a file beside it (the board's assets, the JSON Schema, the repository root) does so from
 * import.meta.url: in the bundle that is the chunk's URL, so each module gets its own source file's URL instead.
 */
const ownUrl = (outDir) => ({
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url') || args.path.includes(`${sep}node_modules${sep}`)) return undefined;
      const rel = relative(outDir, args.path).split(sep).join('/');
      const url = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'ts', resolveDir: dirname(args.path) };
    });
  },
});

/** Every dependency but zod, with its subpaths. */
function externalPackages() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((name) => name !== 'zod');
  return names.flatMap((name) => [name, `${name}/*`]);
}

export async function buildCli() {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const tmp = `${OUT_DIR}.${process.pid}-${startedAt}`;
  const result = await build({
    entryPoints: { main: join(ROOT, 'shared/cli/main.ts') },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: externalPackages(),
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [ownUrl(OUT_DIR)],
  });
  const inputs = [...Object.keys(result.metafile.inputs), 'package.json', 'bin/build-cli.js'];
  writeFileSync(join(tmp, MANIFEST), `${JSON.stringify({ startedAt, inputs })}\n`);
  // Swapped in whole, so that a process starting meanwhile sees the old build or the new one, never half of one.
  mkdirSync(dirname(OUT_DIR), { recursive: true });
  const old = `${OUT_DIR}.old-${process.pid}`;
  try {
    renameSync(OUT_DIR, old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  renameSync(tmp, OUT_DIR);
  rmSync(old, { recursive: true, force: true });
}

/** True when dist/cli/ was built from the files as they are now (none changed or removed since). */
export function isFresh() {
  try {
    const { startedAt, inputs } = JSON.parse(readFileSync(join(OUT_DIR, MANIFEST), 'utf8'));
    return inputs.every((file) => statSync(join(ROOT, file)).mtimeMs < startedAt);
  } catch {
    return false; // no build yet, or an input was removed
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await buildCli();
