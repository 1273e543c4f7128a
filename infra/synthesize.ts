// The synthesized stack for the emulator host (`crs serve --backend aws`): bin/crs.js hands this function to the CLI,
// so the runtime code under shared/ reads the template without importing the stack's code.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';

export interface SynthRequest {
  paging: unknown;
  gradingOverrides?: Record<string, unknown>;
  hl7Zone?: string;
  hl7PatientAuthority?: string;
  fhirPatientSystem?: string;
  fhirDrugCodes?: unknown[];
  maxObservationAgeDays?: number;
}

/** What the emulator host reads (shared/hosts/aws-emulator/template.ts has the same shape). */
export interface Synthesized {
  template: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: unknown }> };
  functions: Record<'ingest' | 'grade' | 'notify' | 'escalate' | 'ack', string>;
  files: Record<'ingest' | 'grade' | 'notify' | 'escalate' | 'ack', Record<string, string>>;
}

/**
 * The stack synthesized with these options (seconds of the CDK's CPU: bin/crs.js keeps the result with
 * shared/hosts/aws-emulator/synthesis-cache.ts, and calls this only when nothing kept fits).
 */
export async function synthesizeStack(options: SynthRequest): Promise<Synthesized> {
  // Loaded here: the CDK takes about 1.2 s of CPU to load.
  const { buildApp, STACK_NAME } = await import('./build.ts');
  const outdir = mkdtempSync(join(tmpdir(), 'crs-aws-host-'));
  try {
    const context: Record<string, unknown> = {
      paging: options.paging,
      // No Lambda bundles: the handlers run here from their TypeScript sources.
      'aws:cdk:bundling-stacks': [],
    };
    if (options.gradingOverrides) context.gradingConfig = options.gradingOverrides;
    if (options.hl7Zone !== undefined) context.hl7Zone = options.hl7Zone;
    if (options.hl7PatientAuthority !== undefined) context.hl7PatientAuthority = options.hl7PatientAuthority;
    if (options.fhirPatientSystem !== undefined) context.fhirPatientSystem = options.fhirPatientSystem;
    if (options.fhirDrugCodes !== undefined) context.fhirDrugCodes = options.fhirDrugCodes;
    if (options.maxObservationAgeDays !== undefined) context.maxObservationAgeDays = options.maxObservationAgeDays;
    // Without the CDK's own CloudFormation validation: its WebAssembly engine costs a process about 5 s of CPU to
    // start, and this template only provisions an emulator (`npm run synth`, the stack tests and cfn-lint check it).
    const { app, stack } = buildApp({ outdir, context, builtinCloudFormationValidation: false });
    app.synth();
    const template = JSON.parse(
      readFileSync(join(outdir, `${STACK_NAME}.template.json`), 'utf8'),
    ) as Synthesized['template'];
    const id = (fn: { fn: { node: { defaultChild: unknown } } }) =>
      stack.getLogicalId(fn.fn.node.defaultChild as CfnFunction);
    return {
      template,
      functions: {
        ingest: id(stack.ingest),
        grade: id(stack.grade),
        notify: id(stack.notify),
        escalate: id(stack.escalate),
        ack: id(stack.ack),
      },
      // Shipped in the bundles, which are not built here (the handlers run from their sources): the host writes them.
      files: {
        ingest: { ...stack.ingest.files },
        grade: { ...stack.grade.files },
        notify: { ...stack.notify.files },
        escalate: { ...stack.escalate.files },
        ack: { ...stack.ack.files },
      },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
