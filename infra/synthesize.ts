// The synthesized stack for the emulator host (`crs serve --backend aws`): bin/crs.js hands this function to the CLI,
// so the runtime code under shared/ reads the template without importing the stack's code.
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  type Dirent,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';

export interface SynthRequest {
  paging: unknown;
  gradingOverrides?: Record<string, unknown>;
  hl7Zone?: string;
  hl7PatientAuthority?: string;
  fhirPatientSystem?: string;
  maxObservationAgeDays?: number;
}

/** What the emulator host reads (shared/hosts/aws-emulator/template.ts has the same shape). */
export interface Synthesized {
  template: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: unknown }> };
  functions: Record<'ingest' | 'grade' | 'notify' | 'escalate' | 'ack', string>;
  files: Record<'ingest' | 'grade' | 'notify' | 'escalate' | 'ack', Record<string, string>>;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** In this checkout's node_modules (the usual place for a build cache), not in a directory other users can write. */
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'crs-synth');

/**
 * Everything a synthesis is made from: the sources the stack is built from (infra/, shared/), the locked library
 * versions, the options and the environment the stack reads. Equal keys, equal templates.
 */
function synthesisKey(options: SynthRequest): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      options,
      account: process.env.CDK_DEFAULT_ACCOUNT ?? null,
      region: process.env.CDK_DEFAULT_REGION ?? null,
    }),
  );
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
export async function synthesizeStack(options: SynthRequest): Promise<Synthesized> {
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

async function synthesize(options: SynthRequest): Promise<Synthesized> {
  // Loaded here, on a miss only: the CDK takes about 1.2 s of CPU to load, and most hosts find their stack cached.
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
