// The stack outputs the docs cite: names in the stack's output style (`...Arn`, `...Url`, `...Name`, in code spans or
// <...>) in README.md and docs/*.md, but for the AWS API names the docs quote. test/infra/stack.test.ts checks the
// stack has each; test/integration/aws-doctor.test.ts that `crs serve --backend aws --outputs` writes each it can.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '#infra/bundling.ts';

const API_NAMES = new Set(['GetQueueUrl', 'TopicArn']);

export function citedOutputNames(): string[] {
  const docs = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).map((f) => join('docs', f))].filter((f) =>
    f.endsWith('.md'),
  );
  const cited = new Set(
    docs.flatMap((f) =>
      [...readFileSync(join(REPO_ROOT, f), 'utf8').matchAll(/[`<]([A-Z][A-Za-z0-9]+(?:Arn|Url|Name))[`>]/g)].map(
        (m) => m[1]!,
      ),
    ),
  );
  return [...cited].filter((n) => !API_NAMES.has(n)).sort();
}
