// The one set of esbuild options for the Lambda bundles: NodejsFunction uses it (local esbuild, no Docker) and so
// does the bundle-size and cold-import benchmark, so the figures are those of what is deployed.
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Each function's entry, relative to the repository root. */
export const FUNCTION_ENTRIES = {
  ingest: 'functions/ingest/handler.ts',
  grade: 'functions/grade/handler.ts',
  notify: 'functions/notify/handler.ts',
  escalate: 'functions/escalate/handler.ts',
  ack: 'functions/ack/handler.ts',
} as const;
export type FunctionName = keyof typeof FUNCTION_ENTRIES;

export const LAMBDA_BUNDLE = {
  format: 'esm',
  target: 'node22',
  platform: 'node',
  minify: true,
  sourcemap: true,
  /** Stack traces map back to the TypeScript without shipping the sources. */
  sourcesContent: false,
  /** The Node.js 22 runtime provides AWS SDK v3; bundling it would put each function near 1 MB. */
  external: ['@aws-sdk/*'],
  /**
   * Prefer dependencies' ESM builds. Every bundled dependency is ESM, so no createRequire banner is needed; a CJS
   * dependency that calls require() would fail the cold-import benchmark ("Dynamic require ... not supported").
   */
  mainFields: ['module', 'main'],
} as const;

/** Budgets that `npm run bench` prints against. */
export const BUDGETS = { bundleBytes: 200 * 1024, coldImportMs: 100, dynamoRequestsPerPatient: 2 } as const;
