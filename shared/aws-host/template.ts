// The deployed shape, read from the CDK stack itself: `crs serve --backend aws` synthesizes infra/ in this process
// (the same buildApp as `npm run synth`, cdk-nag included, Lambda bundling skipped) and provisions and runs what
// the template says, so the local host can never drift from a second, hand-written list of resources.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

export async function synthesizeStack(options: SynthOptions = {}): Promise<Synthesized> {
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
