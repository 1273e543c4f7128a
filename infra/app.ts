// The CDK app: `npx cdk synth` / `npm run deploy` run this with tsx (see cdk.json).
import { buildApp } from './build.ts';

// A deploy-time input refused (a context key misspelt, a bad paging config) is the operator's mistake, said in its
// own words: the CDK CLI printed it under a source line and a stack trace. Any other error (a TypeError, the CDK's
// own error classes) keeps its trace, and CDK_DEBUG keeps it for every one.
try {
  buildApp().app.synth();
} catch (err) {
  if (!(err instanceof Error) || err.constructor !== Error || process.env.CDK_DEBUG) throw err;
  process.stderr.write(`crs: the stack was not synthesized: ${err.message}\n`);
  process.exitCode = 1;
}
