// The synthesized stack for the emulator host (`crs serve --backend aws`): bin/crs.js hands this function to the CLI,
// so the runtime code under shared/ reads the template without importing the stack's code.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { buildApp, STACK_NAME } from './build.ts';

export interface SynthRequest {
  paging: unknown;
  gradingOverrides?: Record<string, unknown>;
}

/** What the emulator host reads (shared/hosts/aws-emulator/template.ts has the same shape). */
export interface Synthesized {
  template: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: unknown }> };
  functions: Record<'ingest' | 'grade' | 'notify' | 'escalate' | 'ack', string>;
}

export async function synthesizeStack(options: SynthRequest): Promise<Synthesized> {
  const outdir = mkdtempSync(join(tmpdir(), 'crs-aws-host-'));
  try {
    const context: Record<string, unknown> = {
      paging: options.paging,
      // No Lambda bundles: the handlers run here from their TypeScript sources.
      'aws:cdk:bundling-stacks': [],
    };
    if (options.gradingOverrides) context.gradingConfig = options.gradingOverrides;
    const { app, stack } = buildApp({ outdir, context });
    app.synth();
    const template = JSON.parse(readFileSync(join(outdir, `${STACK_NAME}.template.json`), 'utf8')) as Synthesized['template'];
    const id = (fn: { fn: { node: { defaultChild: unknown } } }) => stack.getLogicalId(fn.fn.node.defaultChild as CfnFunction);
    return {
      template,
      functions: { ingest: id(stack.ingest), grade: id(stack.grade), notify: id(stack.notify), escalate: id(stack.escalate), ack: id(stack.ack) },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
