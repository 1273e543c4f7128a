// The functions run without --enable-source-maps (it decodes the bundle's map at every cold start); an error thrown
// to the runtime has its stack mapped to the sources when it is thrown (shared/adapters/aws/source-positions.ts).
// Checked on a bundle built with the stack's own esbuild options (split into files), run in a plain `node`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESBUILD_LAMBDA_OPTIONS, REPO_ROOT } from '#infra/bundling.ts';

// requireEnv throws from shared/adapters/aws/env.ts, imported dynamically so that it is in a file split from the
// entry (as the HL7 v2 and FHIR routes are); the entry prints the stack before and after thrownToRuntime.
const ENTRY = `
import { thrownToRuntime } from '${REPO_ROOT}shared/adapters/aws/telemetry.ts';
const { requireEnv } = await import('${REPO_ROOT}shared/adapters/aws/env.ts');
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
  writeFileSync(join(dir, 'entry.ts'), ENTRY);
  bundle = join(dir, 'out', 'index.mjs');
  await build({ ...ESBUILD_LAMBDA_OPTIONS, entryPoints: { index: join(dir, 'entry.ts') }, outdir: join(dir, 'out') });
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
    expect(raw).toMatch(/index\.mjs:\d+:\d+/); // the entry's frame
    expect(raw).toMatch(/env-\w+\.mjs:\d+:\d+/); // requireEnv's, in the file split from it
    expect(raw).not.toContain('env.ts');
    expect(mapped).toMatch(new RegExp(`shared/adapters/aws/env\\.ts:${THROW_LINE}:\\d+`));
    expect(mapped).toMatch(/entry\.ts:\d+:\d+/);
    expect(mapped).not.toMatch(/\.mjs:\d+:\d+/);
    expect(mapped.split('\n')[0]).toBe(`Error: ${message}`);
  });

  it('keeps its stack as it was when the maps are not shipped', () => {
    for (const f of readdirSync(join(dir, 'out'))) if (f.endsWith('.map')) rmSync(join(dir, 'out', f));
    const { raw, mapped } = run();
    expect(mapped).toBe(raw);
  });
});
