// What each Lambda bundle reads at a cold start (its entry and the files it imports statically), built with the
// stack's own esbuild options: no module a function uses only on a rare path, none it never calls (docs/cost.md
// "Cold start"). Each such module is code V8 parses and runs at every cold start of the function.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleFunction, coldStartFiles, type FunctionName } from '#infra/bundling.ts';

const out = mkdtempSync(join(tmpdir(), 'crs-cold-start-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The source files (relative to the repository, packages as `node_modules/...`) a cold start of `name` reads. */
function readAtStart(name: FunctionName): string[] {
  const meta = bundleFunction(name, join(out, name));
  const inputs = new Set<string>();
  for (const f of coldStartFiles(meta).files)
    for (const [input, { bytesInOutput }] of Object.entries(meta.outputs[f]!.inputs))
      if (bytesInOutput > 0) inputs.add(input.replace(/^.*?(node_modules\/|shared\/|functions\/)/, '$1'));
  return [...inputs];
}

const zod = (files: string[]) => files.filter((f) => f.startsWith('node_modules/zod/'));

describe('what a cold start reads', () => {
  it('the ack function builds no device-message schema: it only words unknown fields as the contract does', () => {
    expect(readAtStart('ack')).not.toContain('shared/domain/contract.ts');
  });

  it.each(['notify', 'escalate', 'ack'] as const)(
    'the %s function loads no zod: it validates only grading overrides the stack ships, when it ships them',
    (name) => {
      expect(zod(readAtStart(name))).toEqual([]);
    },
  );

  // A dynamic import is a file of every bundle that imports the module it is written in: in adapters/aws/env.ts it
  // put the defaults and zod's parts for the configuration's schema into what the ingest function reads.
  it('the ingest function reads no grading configuration: it grades nothing', () => {
    expect(readAtStart('ingest')).not.toContain('shared/domain/config-defaults.ts');
  });

  it.each(['ingest', 'grade'] as const)('the %s function loads zod: it validates every device message', (name) => {
    expect(zod(readAtStart(name))).toContain('node_modules/zod/v4/core/schemas.js');
  });
});
