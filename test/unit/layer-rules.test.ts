// The layer rules (`npm run lint:layers`, .dependency-cruiser.cjs) fail on the imports they forbid, packages among
// them: the project's own config, run over a small tree of files that each break one rule. Until 2026-12-04 the
// config left packages out of the graph, so every rule about a package passed whatever was imported.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Files that each cross one rule, by the rule that must name them. */
const CROSSINGS: Record<string, [file: string, source: string][]> = {
  'domain-is-pure': [
    ['shared/domain/sdk.ts', "import { SQSClient } from '@aws-sdk/client-sqs';\nexport const c = SQSClient;\n"],
    ['shared/domain/side-effect.ts', "import '@aws-sdk/client-sns';\nexport const x = 1;\n"],
    ['shared/domain/file.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n"],
  ],
  'app-uses-no-sdk': [['shared/app/sqlite.ts', "import Database from 'better-sqlite3';\nexport const d = Database;\n"]],
  'lambdas-are-aws-only': [
    ['functions/x/handler.ts', "import Database from 'better-sqlite3';\nexport const d = Database;\n"],
  ],
  'runtime-never-imports-infra': [
    ['shared/adapters/aws/cdk.ts', "import { Stack } from 'aws-cdk-lib';\nexport const s = Stack;\n"],
  ],
  'embedded-host-is-not-aws': [
    ['shared/hosts/embedded/sdk.ts', "import { SNSClient } from '@aws-sdk/client-sns';\nexport const c = SNSClient;\n"],
  ],
};
const ALLOWED: [string, string][] = [
  ['shared/domain/ok.ts', "import * as z from 'zod/mini';\nexport const s = z.string();\n"],
];

let tree: string;
let violations: { rule: string; from: string; to: string }[];

beforeAll(() => {
  tree = mkdtempSync(join(tmpdir(), 'crs-layers-'));
  for (const [file, source] of [...Object.values(CROSSINGS).flat(), ...ALLOWED]) {
    mkdirSync(dirname(join(tree, file)), { recursive: true });
    writeFileSync(join(tree, file), source);
  }
  copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(tree, '.dependency-cruiser.cjs'));
  writeFileSync(join(tree, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext' } }));
  writeFileSync(join(tree, 'package.json'), JSON.stringify({ type: 'module' }));
  // Linked, as a worktree's node_modules may be: packages still resolve to node_modules/... (preserveSymlinks).
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  const run = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'),
      'shared',
      'functions',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'json',
    ],
    { cwd: tree, encoding: 'utf8', timeout: 60_000 },
  );
  const result = JSON.parse(run.stdout) as {
    summary: { violations: { rule: { name: string }; from: string; to: string }[] };
  };
  violations = result.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}, 90_000);

afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('the layer rules', () => {
  it.each(Object.entries(CROSSINGS))('%s names each file that crosses it', (rule, files) => {
    for (const [file] of files) expect(violations, file).toContainEqual(expect.objectContaining({ rule, from: file }));
  });

  it('let the domain import zod, and nothing else is named', () => {
    const crossing = new Set(Object.values(CROSSINGS).flatMap((files) => files.map(([file]) => file)));
    expect(violations.filter((v) => !crossing.has(v.from))).toEqual([]);
    expect(violations.map((v) => v.to).filter((to) => to.includes('zod'))).toEqual([]);
  });
});
