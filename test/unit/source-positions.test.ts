// The functions run without --enable-source-maps (it decodes the bundle's map at every cold start); an error thrown
// to the runtime has its stack mapped to the sources when it is thrown (shared/adapters/aws/source-positions.ts).
// Checked on a bundle built with the stack's own esbuild options, run in a plain `node`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESBUILD_LAMBDA_OPTIONS, REPO_ROOT } from '#infra/bundling.ts';

// requireEnv throws from shared/adapters/aws/env.ts; the entry prints the stack before and after thrownToRuntime.
const ENTRY = `
import { requireEnv } from './shared/adapters/aws/env.ts';
import { thrownToRuntime } from './shared/adapters/aws/telemetry.ts';
try { requireEnv('CRS_NOT_SET', {}); } catch (err) {
  const raw = err.stack;
  process.stdout.write(JSON.stringify({ raw, mapped: thrownToRuntime(err).stack, message: err.message }));
}
`;
const THROW_LINE =
  readFileSync(join(REPO_ROOT, 'shared/adapters/aws/env.ts'), 'utf8')
    .split('\n')
    .findIndex((l) => l.includes('throw new Error(`environment variable')) + 1;

let dir: string;
let bundle: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-source-positions-'));
  bundle = join(dir, 'index.mjs');
  await build({
    stdin: { contents: ENTRY, resolveDir: REPO_ROOT, loader: 'ts' },
    outfile: bundle,
    logLevel: 'error',
    ...ESBUILD_LAMBDA_OPTIONS,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(): { raw: string; mapped: string; message: string } {
  const r = spawnSync(process.execPath, ['--no-warnings', bundle], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('an error thrown to the Lambda runtime', () => {
  it("names the source file and line of its frames, not the bundle's", () => {
    expect(THROW_LINE).toBeGreaterThan(0);
    const { raw, mapped, message } = run();
    expect(raw).toMatch(/index\.mjs:\d+:\d+/);
    expect(raw).not.toContain('env.ts');
    expect(mapped).toMatch(new RegExp(`shared/adapters/aws/env\\.ts:${THROW_LINE}:\\d+`));
    expect(mapped).not.toMatch(/index\.mjs:\d+:\d+/);
    expect(mapped.split('\n')[0]).toBe(`Error: ${message}`);
  });

  it('keeps its stack as it was when the map is not shipped', () => {
    rmSync(`${bundle}.map`);
    const { raw, mapped } = run();
    expect(mapped).toBe(raw);
  });
});
