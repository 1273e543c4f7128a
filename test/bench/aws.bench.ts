// AWS budgets: each Lambda bundle's minified size (<= 200 KB), the cold import of each bundle in a fresh node
// process with the network blocked (<= 100 ms), and DynamoDB requests per distinct patient in a grade batch (<= 2).
// The bundles are built with the stack's own esbuild options (infra/bundling.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient, GetItemCommand, TransactWriteItemsCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { build } from 'esbuild';
import type { SQSRecord } from 'aws-lambda';
import { BUDGETS, FUNCTION_ENTRIES, LAMBDA_BUNDLE, REPO_ROOT, type FunctionName } from '../../infra/bundling.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { DynamoStateStore } from '../../shared/adapters/aws/dynamo-state-store.ts';
import { ENV } from '../../shared/adapters/aws/env.ts';

const COLD_RUNS = 7;
/** Inside the repository, so that the bundles find @aws-sdk/* in node_modules as they find it in the Lambda runtime. */
const OUT = join(REPO_ROOT, 'node_modules', '.cache', 'crs-aws-bench');
const verdict = (ok: boolean) => (ok ? 'within budget' : 'OVER BUDGET');

/** The stack's bundle; with `withSdk`, the alternative that bundles the AWS SDK too (for comparison only). */
async function bundle(name: FunctionName, withSdk = false): Promise<{ file: string; bytes: number; gzipBytes: number }> {
  const outdir = join(OUT, withSdk ? `${name}-with-sdk` : name);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, 'index.mjs');
  await build({
    entryPoints: [join(REPO_ROOT, FUNCTION_ENTRIES[name])],
    outfile: file,
    bundle: true,
    logLevel: 'error',
    format: LAMBDA_BUNDLE.format,
    platform: LAMBDA_BUNDLE.platform,
    target: LAMBDA_BUNDLE.target,
    minify: LAMBDA_BUNDLE.minify,
    sourcemap: LAMBDA_BUNDLE.sourcemap,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    external: withSdk ? [] : [...LAMBDA_BUNDLE.external],
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    // The SDK's CommonJS dependencies call require(), which an ES module must be given.
    ...(withSdk ? { banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" } } : {}),
  });
  return { file, bytes: statSync(file).size, gzipBytes: gzipSync(readFileSync(file)).length };
}

// Runs in a fresh node: blocks every outgoing connection and DNS lookup, then times the imports alone.
const COLD_IMPORT_SCRIPT = `
import net from 'node:net';
import dns from 'node:dns';
const refuse = () => { throw new Error('network blocked during the cold-import benchmark'); };
net.Socket.prototype.connect = refuse;
dns.lookup = refuse;
const specifiers = JSON.parse(process.argv[1]);
const t0 = performance.now();
for (const s of specifiers) await import(s);
process.stdout.write(JSON.stringify({ ms: performance.now() - t0 }));
`;

const BENCH_ENV = {
  PATH: process.env.PATH,
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo',
  [ENV.tokensTable]: 'tokens',
  [ENV.stateTable]: 'state',
  [ENV.topicArn]: 'arn:aws:sns:eu-west-1:123456789012:Pages',
  [ENV.pagesTable]: 'pages',
  [ENV.auditTable]: 'audit',
  [ENV.escalationQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers',
  [ENV.ackSecretArn]: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AckSigningSecret',
  [ENV.ackBaseUrl]: 'https://api.example/ack/',
  POWERTOOLS_SERVICE_NAME: 'bench',
};

/** Imports `specifiers` in a fresh node (with the flags the functions run with), in the bundle's directory. */
function coldImportMs(specifiers: string[], cwd: string): number {
  const run = spawnSync(
    process.execPath,
    ['--enable-source-maps', '--no-warnings', '--input-type=module', '-e', COLD_IMPORT_SCRIPT, JSON.stringify(specifiers)],
    { encoding: 'utf8', cwd, env: BENCH_ENV },
  );
  if (run.status !== 0) throw new Error(`cold import of ${specifiers.join(', ')} failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { ms: number }).ms;
}

/** The runtime-provided packages a bundle imports (the external @aws-sdk/* clients). */
function externalsOf(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  return [...new Set([...code.matchAll(/from"(@aws-sdk\/[^"]+)"/g)].map((m) => m[1]!))].sort();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A grade batch as SQS delivers it: 10 records (the FIFO maximum) across `patients` patients. */
function gradeBatch(patients: number): SQSRecord[] {
  const base = Date.parse('2026-01-10T08:00:00Z');
  return Array.from({ length: 10 }, (_, i) => {
    const patientId = `P-${i % patients}`;
    const message: DeviceMessage = {
      messageId: `bench-${i}`,
      patientId,
      observedAt: new Date(base + i * 60_000).toISOString(),
      source: { deviceId: 'mon-1', kind: 'monitor' },
      ...(i < patients
        ? { enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', weightKg: 70, bed: `B${i}`, ward: 'H4' } }
        : { vitals: { temperatureC: 38.5 + (i % 3) / 10, systolicBP: 85, heartRate: 110 } }),
    };
    return {
      messageId: `sqs-${i}`,
      receiptHandle: `rh-${i}`,
      body: JSON.stringify({ message, receivedAt: '2026-01-10T08:00:00Z', sender: 'gw' }),
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'x', ApproximateFirstReceiveTimestamp: '0', MessageGroupId: patientId },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:Messages.fifo',
      awsRegion: 'eu-west-1',
    };
  });
}

async function dynamoRequestsPerPatient(): Promise<{ patients: number; firstDelivery: number; redelivery: number }[]> {
  process.env[ENV.stateTable] = 'state';
  process.env[ENV.auditTable] = 'audit';
  process.env.AWS_REGION ??= 'eu-west-1';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const { createGradeHandler } = await import('../../functions/grade/handler.ts');
  const { telemetry } = await import('../../shared/adapters/aws/telemetry.ts');
  const ddb = mockClient(DynamoDBClient);
  const results = [];
  for (const patients of [1, 4, 10]) {
    const items = new Map<string, Record<string, AttributeValue>>();
    ddb.reset();
    ddb.on(GetItemCommand).callsFake((input) => ({ Item: items.get(input.Key.pk.S) }));
    ddb.on(TransactWriteItemsCommand).callsFake((input) => {
      const state = input.TransactItems[0].Put.Item;
      items.set(state.pk.S, state);
      return {};
    });
    const store = new DynamoStateStore(new DynamoDBClient({ region: 'eu-west-1' }), 'state', Date.now, 'audit', 'seen');
    const handler = createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...telemetry('grade') });
    const batch = gradeBatch(patients);
    const res = await handler({ Records: batch });
    if (res.batchItemFailures.length > 0) throw new Error('bench grade batch failed');
    const firstDelivery = ddb.calls().length / patients;
    ddb.resetHistory();
    await handler({ Records: batch });
    results.push({ patients, firstDelivery, redelivery: ddb.calls().length / patients });
  }
  ddb.restore();
  return results;
}

export async function run(): Promise<void> {
  console.log('\n== aws: Lambda bundles, cold import, DynamoDB requests per patient ==');
  console.log(`node ${process.version} here (Lambda runs Node.js 22 on arm64); @aws-sdk/* is external (the runtime provides it)`);
  for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[]) {
    const b = await bundle(name);
    const kb = b.bytes / 1024;
    const url = pathToFileURL(b.file).href;
    const sdk = externalsOf(b.file);
    coldImportMs([url], OUT); // warm the file system cache, as a Lambda image is
    const times = Array.from({ length: COLD_RUNS }, () => coldImportMs([url], OUT));
    const sdkTimes = Array.from({ length: COLD_RUNS }, () => coldImportMs(sdk, OUT));
    const med = median(times);
    console.log(
      `${name.padEnd(7)} bundle ${kb.toFixed(1).padStart(6)} KB minified (${(b.gzipBytes / 1024).toFixed(1)} KB gzip), ` +
        `budget ${BUDGETS.bundleBytes / 1024} KB: ${verdict(b.bytes <= BUDGETS.bundleBytes)}`,
    );
    console.log(
      `        cold import median ${med.toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}, ` +
        `${COLD_RUNS} fresh processes, network blocked), budget ${BUDGETS.coldImportMs} ms: ${verdict(med <= BUDGETS.coldImportMs)};\n        ` +
        `the runtime's SDK (${sdk.join(', ')}) alone: median ${median(sdkTimes).toFixed(1)} ms, ` +
        `so the bundle's own code ~${Math.max(0, med - median(sdkTimes)).toFixed(0)} ms`,
    );
    const full = await bundle(name, true);
    const fullUrl = pathToFileURL(full.file).href;
    coldImportMs([fullUrl], OUT);
    const fullTimes = Array.from({ length: COLD_RUNS }, () => coldImportMs([fullUrl], OUT));
    console.log(
      `        (alternative, not deployed: with the SDK bundled in, ${(full.bytes / 1024).toFixed(1)} KB minified, ` +
        `cold import median ${median(fullTimes).toFixed(1)} ms)`,
    );
  }
  for (const r of await dynamoRequestsPerPatient()) {
    console.log(
      `grade batch of 10 records, ${String(r.patients).padStart(2)} patient(s): ${r.firstDelivery.toFixed(2)} DynamoDB requests per patient ` +
        `(redelivered: ${r.redelivery.toFixed(2)}), budget ${BUDGETS.dynamoRequestsPerPatient}: ` +
        verdict(r.firstDelivery <= BUDGETS.dynamoRequestsPerPatient && r.redelivery <= BUDGETS.dynamoRequestsPerPatient),
    );
  }
}

// Run alone with `npx tsx test/bench/aws.bench.ts`.
if (import.meta.url === `file://${process.argv[1]}`) await run();
