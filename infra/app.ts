// The CDK app: `npx cdk synth` / `npm run deploy` run this with tsx (see cdk.json).
import { buildApp } from './build.ts';
import { DeployInputError } from './deploy-input.ts';

// A deploy-time input refused (a context key misspelt, a bad paging config: a DeployInputError) is the operator's
// mistake, said in its own words: the CDK CLI printed it under a source line and a stack trace. Any other error (a
// TypeError, the CDK's own error classes, a plain Error of our own: until 2026-12-06 every plain Error was taken for
// the operator's) is a defect and keeps its trace, and CDK_DEBUG keeps it for every one.
try {
  buildApp().app.synth();
} catch (err) {
  if (!(err instanceof DeployInputError) || process.env.CDK_DEBUG) throw err;
  process.stderr.write(`crs: the stack was not synthesized: ${err.message}\n`);
  process.exitCode = 1;
}
