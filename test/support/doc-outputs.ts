// The stack outputs the docs cite: names in the stack's output style (`...Arn`, `...Url`, `...Name`, in code spans or
// <...>) in README.md and docs/*.md, but for the AWS API names the docs quote, and any name cited as an output (the
// output `GradingSettings`, the stack's `Release` output; 2026-12-07: those were not looked for, and the run's
// outputs file lacked GradingSettings, which the runbook has the operator compare with the audit trail's).
// test/infra/stack.test.ts checks the stack has each; test/integration/aws-doctor.test.ts that `crs serve --backend
// aws --outputs` writes each it can.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '#infra/bundling.ts';

const API_NAMES = new Set(['GetQueueUrl', 'TopicArn']);

/**
 * Outputs the stack gives only in some deployments: TeamsWithoutEndpoints when the paging config leaves a team
 * without endpoints (test/infra/stack.test.ts, 'teams without endpoints', checks it then).
 */
const SOME_DEPLOYMENTS = new Set(['TeamsWithoutEndpoints']);

export function citedOutputNames(): string[] {
  const docs = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).map((f) => join('docs', f))].filter((f) =>
    f.endsWith('.md'),
  );
  const cited = new Set(
    docs.flatMap((f) => {
      const text = readFileSync(join(REPO_ROOT, f), 'utf8');
      return [
        ...[...text.matchAll(/[`<]([A-Z][A-Za-z0-9]+(?:Arn|Url|Name))[`>]/g)].map((m) => m[1]!),
        ...[...text.matchAll(/\boutput `([A-Z][A-Za-z0-9]+)`|`([A-Z][A-Za-z0-9]+)` output\b/g)].map(
          (m) => (m[1] ?? m[2])!,
        ),
      ];
    }),
  );
  return [...cited].filter((n) => !API_NAMES.has(n) && !SOME_DEPLOYMENTS.has(n)).sort();
}
