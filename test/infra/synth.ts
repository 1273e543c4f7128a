// Synthesizes the CDK app the way `npm run synth` does (cdk-nag packs attached, local esbuild bundling, no AWS
// credentials), with a paging config that gives every team endpoints, into a temporary cloud assembly.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppProps } from 'aws-cdk-lib';
import { buildApp, STACK_NAME } from '#infra/build.ts';

export const PAGING = {
  teams: {
    hematology: { email: ['heme-oncall@hospital.example'], sms: ['+15550100001'] },
    icu: { email: ['icu-charge@hospital.example'], https: ['https://paging.hospital.example/hooks/icu'] },
    neurology: { sms: ['+15550100003'], wards: ['H4', 'H5'] },
    radiology: { https: ['https://paging.hospital.example/hooks/radiology'] },
    bedside: { https: ['https://paging.hospital.example/hooks/bedside'], wards: ['H4'] },
  },
  alarms: { email: ['platform-oncall@hospital.example'] },
};

/**
 * `cloudFormationValidation: false` leaves out the CDK's own CloudFormation validation (its WebAssembly engine, about
 * 7 s of CPU the first time in a process): for a test whose template compliance.test.ts validates (and cfn-lint
 * checks) in its own synth.
 */
export function synthesize(
  context: Record<string, unknown> = { paging: PAGING },
  { cloudFormationValidation = true }: { cloudFormationValidation?: boolean } = {},
) {
  const outdir = mkdtempSync(join(tmpdir(), 'crs-cdk-'));
  const { app, stack } = buildApp({
    outdir,
    context,
    ...(cloudFormationValidation ? {} : { builtinCloudFormationValidation: false }),
  });
  const assembly = app.synth();
  const templatePath = join(outdir, `${STACK_NAME}.template.json`);
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as {
    Resources: Record<string, { Type: string; Properties?: any; DependsOn?: unknown }>;
    Outputs?: Record<string, unknown>;
  };
  return { app, stack, assembly, outdir, templatePath, template };
}

/**
 * The app for a test that reads the template only: without the functions bundled (esbuild over five functions,
 * seconds of CPU a synth) or the CDK's own CloudFormation validation (its WebAssembly engine, about 5 s of CPU to
 * start in each test file). `synthesize` keeps both, as `npm run synth` does, for the tests of bundles and templates.
 */
export function templateApp(props: AppProps = {}): ReturnType<typeof buildApp> {
  return buildApp({
    builtinCloudFormationValidation: false,
    ...props,
    context: { 'aws:cdk:bundling-stacks': [], ...props.context },
  });
}
