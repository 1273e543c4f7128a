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
  /**
   * The map ships beside the bundle (without the sources), read only when an error's stack reaches the runtime's log
   * (shared/adapters/aws/source-positions.ts): the functions run without --enable-source-maps, which would decode
   * it at every cold start.
   */
  sourcesContent: false,
  /**
   * The AWS SDK is bundled in, so each function runs the SDK version the tests ran against (the lockfile's) rather
   * than whatever the runtime ships, as AWS recommends; minified and tree-shaken, each bundle stays within the size
   * budget, and a bundle imports faster than the runtime's SDK loaded file by file. Left out: the credential
   * providers the default chain loads (dynamic import) only when the environment has no credentials (SSO, profile
   * files, credential processes, web identity tokens, console logins). In Lambda the execution role's credentials
   * are always in the environment, so they are never loaded; bundled, they cost the ingest function 115 KB.
   */
  external: [
    '@aws-sdk/credential-provider-sso',
    '@aws-sdk/credential-provider-ini',
    '@aws-sdk/credential-provider-process',
    '@aws-sdk/credential-provider-web-identity',
    '@aws-sdk/credential-provider-login',
  ] as string[],
  /** The SDK's CommonJS dependencies call require(), which an ES module must be given. */
  banner: "import { createRequire as __crsRequire } from 'node:module'; const require = __crsRequire(import.meta.url);",
  /** Prefer dependencies' ESM builds (tree-shaken better than their CommonJS ones). */
  mainFields: ['module', 'main'],
} as const;

/** LAMBDA_BUNDLE as esbuild's own build options: what the bench and the tests build with (CDK maps it itself). */
export const ESBUILD_LAMBDA_OPTIONS = {
  bundle: true,
  format: LAMBDA_BUNDLE.format,
  platform: LAMBDA_BUNDLE.platform,
  target: LAMBDA_BUNDLE.target,
  minify: LAMBDA_BUNDLE.minify,
  sourcemap: LAMBDA_BUNDLE.sourcemap,
  sourcesContent: LAMBDA_BUNDLE.sourcesContent,
  external: [...LAMBDA_BUNDLE.external],
  mainFields: [...LAMBDA_BUNDLE.mainFields],
  banner: { js: LAMBDA_BUNDLE.banner },
};

/**
 * Budgets that `npm run bench` prints against. DynamoDB requests per patient in a grade batch: a read of the state,
 * one of the batch's seen messages, and one write (a transaction, or a put of the state item); plus, before it, a
 * put of each message the patient's last save left pending in its state item (docs/cost.md: the price of a message
 * that changes no grade paying for no transaction).
 */
export const BUDGETS = { bundleBytes: 600 * 1024, coldImportMs: 100, dynamoRequestsPerPatient: 3 } as const;
