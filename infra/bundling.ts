// How the Lambda functions are bundled: their entries, the one set of esbuild options (the stack, the benchmark and
// the tests build with it), the budgets `npm run bench` prints against.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, type BuildOptions, type Metafile } from 'esbuild';

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

/**
 * The one set of esbuild options for every Lambda bundle: the stack builds with it (infra/function-defaults.ts), and
 * so do the benchmark and the tests, so the figures are those of what is deployed.
 */
export const ESBUILD_LAMBDA_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minify: true,
  /**
   * Code splitting: what is loaded only by a dynamic import (the HL7 v2 and FHIR routes and their FHIR library, the
   * SDK's browser user-agent parser and event streams) goes to files of its own, which Node reads and compiles when
   * the import runs. In one file V8 parsed all of it at every cold start: about 10 ms of each function's cold import
   * on the machine of 2026-12-04 (docs/cost.md "Cold start").
   */
  splitting: true,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  /**
   * The maps ship beside the files (without the sources), read only when an error's stack reaches the runtime's
   * log (shared/adapters/aws/source-positions.ts): the functions run without --enable-source-maps, which would
   * decode them at every cold start.
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
  ],
  /** Prefer dependencies' ESM builds (tree-shaken better than their CommonJS ones). */
  mainFields: ['module', 'main'],
  /** The SDK's CommonJS dependencies call require(), which an ES module must be given. */
  banner: {
    js: "import { createRequire as __crsRequire } from 'node:module'; const require = __crsRequire(import.meta.url);",
  },
  logLevel: 'error',
} satisfies BuildOptions;

/**
 * Builds function `name` into `outdir`: `index.mjs` (the handler's module, `index.handler`), the files it imports
 * (statically, or on a route that needs them), and their source maps.
 */
export function bundleFunction(name: FunctionName, outdir: string): Metafile {
  return buildSync({
    ...ESBUILD_LAMBDA_OPTIONS,
    entryPoints: { index: join(REPO_ROOT, FUNCTION_ENTRIES[name]) },
    outdir,
    metafile: true,
  }).metafile;
}

/**
 * Budgets that `npm run bench` prints against. DynamoDB requests per patient in a grade batch: a read of the state,
 * one of the batch's seen messages, and one write (a transaction, or a put of the state item); plus, before it, a
 * put of each message the patient's last save left pending in its state item (docs/cost.md: the price of a message
 * that changes no grade paying for no transaction).
 */
export const BUDGETS = { bundleBytes: 600 * 1024, coldImportMs: 100, dynamoRequestsPerPatient: 3 } as const;

/**
 * The files of a bundle a cold start reads: its entry and the files it imports statically, not those behind a
 * dynamic import (`npm run bench` prints their bytes; test/unit/cold-start-modules.test.ts checks what is in them).
 */
export function coldStartFiles(meta: Metafile): { entry: string; files: string[] } {
  const outputs = new Map(Object.entries(meta.outputs).filter(([f]) => f.endsWith('.mjs')));
  const entry = [...outputs].find(([, o]) => o.entryPoint)![0];
  const atStart = new Set([entry]);
  for (const f of atStart)
    for (const i of outputs.get(f)!.imports)
      if (i.kind === 'import-statement' && outputs.has(i.path)) atStart.add(i.path);
  return { entry, files: [...atStart] };
}
