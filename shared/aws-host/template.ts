// The deployed shape, read from the CDK stack itself: `crs serve --backend aws` synthesizes infra/ in this process
// (the same buildApp as `npm run synth`, cdk-nag included, Lambda bundling skipped) and provisions and runs what
// the template says, so the local host can never drift from a second, hand-written list of resources.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { PAGE_TEAMS } from '../domain/paging.ts';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: unknown;
}

export interface Template {
  Resources: Record<string, CfnResource>;
}

export type FunctionRole = 'ingest' | 'grade' | 'notify' | 'escalate' | 'ack';

export interface Synthesized {
  template: Template;
  /** The logical id of each function in the template. */
  functions: Record<FunctionRole, string>;
}

/**
 * The paging config used when the operator gives none: every team subscribed, on every ward. Its endpoints are
 * placeholders (the reserved .invalid domain): locally, each team's subscription is replaced by a queue.
 */
export const LOCAL_PAGING = {
  teams: Object.fromEntries(PAGE_TEAMS.map((team) => [team, { https: [`https://${team}.pages.invalid/`] }])),
};

export interface SynthOptions {
  /** The paging config (as `-c paging=...`); LOCAL_PAGING when absent. */
  paging?: unknown;
  /** Grading configuration overrides (as `-c gradingConfig=...`), given to the grade function as CRS_CONFIG. */
  gradingOverrides?: Record<string, unknown>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** In this checkout's node_modules (the usual place for a build cache), not in a directory other users can write. */
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'crs-synth');

/**
 * Everything a synthesis is made from: the sources the stack is built from (infra/, shared/), the locked library
 * versions, the options and the environment the stack reads. Equal keys, equal templates.
 */
function synthesisKey(options: SynthOptions): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ options, account: process.env.CDK_DEFAULT_ACCOUNT ?? null, region: process.env.CDK_DEFAULT_REGION ?? null }));
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

/**
 * The stack synthesized with these options. A synthesis takes the CDK seconds of CPU, and every AWS integration
 * test starts several hosts and teardowns: the result is kept under its key (synthesisKey) and used again.
 */
export async function synthesizeStack(options: SynthOptions = {}): Promise<Synthesized> {
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
}

async function synthesize(options: SynthOptions): Promise<Synthesized> {
  // Loaded on demand: the CDK library is large and only this command needs it.
  const { buildApp, STACK_NAME } = await import('../../infra/build.ts');
  const outdir = mkdtempSync(join(tmpdir(), 'crs-aws-host-'));
  try {
    const context: Record<string, unknown> = {
      paging: options.paging ?? LOCAL_PAGING,
      // No Lambda bundles: the handlers run here from their TypeScript sources.
      'aws:cdk:bundling-stacks': [],
    };
    if (options.gradingOverrides) context.gradingConfig = options.gradingOverrides;
    const { app, stack } = buildApp({ outdir, context });
    app.synth();
    const template = JSON.parse(readFileSync(join(outdir, `${STACK_NAME}.template.json`), 'utf8')) as Template;
    const id = (fn: { fn: { node: { defaultChild: unknown } } }) => stack.getLogicalId(fn.fn.node.defaultChild as CfnFunction);
    return {
      template,
      functions: { ingest: id(stack.ingest), grade: id(stack.grade), notify: id(stack.notify), escalate: id(stack.escalate), ack: id(stack.ack) },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
