// AWS budgets: each Lambda bundle's minified size with the AWS SDK in it (<= 600 KB), the median cold import of each
// bundle over fresh node processes with the network blocked (<= 100 ms), interleaved with a bare file importing the
// same SDK clients (what our own code adds, as a ratio), and DynamoDB requests per distinct patient in a grade batch
// (<= 3). The bundles are built with the stack's own esbuild options (infra/bundling.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildSync, type Metafile } from 'esbuild';
import type { SQSRecord } from 'aws-lambda';
import {
  BUDGETS,
  ESBUILD_LAMBDA_OPTIONS,
  FUNCTION_ENTRIES,
  REPO_ROOT,
  bundleFunction,
  coldStartFiles,
  type FunctionName,
} from '#infra/bundling.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { ENV } from '#adapters/aws/env.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';

// 21 rounds: on a machine with bursts of outside load (seen here: one bundle 83 ms and 145 ms by the median of 9) a
// median of 9 moved by tens of ms between runs.
const COLD_RUNS = 21;
/** Inside the repository, so that the bundles find @aws-sdk/* in node_modules as they find it in the Lambda runtime. */
const OUT = join(REPO_ROOT, 'node_modules', '.cache', 'crs-aws-bench');
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT MET');

interface Bundle {
  /** The entry's file, `index.mjs`. */
  file: string;
  /** All the bundle's files (the entry and the files split from it), minified, and gzipped one by one. */
  bytes: number;
  gzipBytes: number;
  files: number;
  /** What a cold start reads: the entry and the files it imports statically (not those behind a dynamic import). */
  startBytes: number;
  sdkClients: string[];
}

/** Builds `entry` (a function, or `contents` as an entry file) with the stack's own esbuild options. */
function bundle(name: string, entry: { function: FunctionName } | { contents: string }): Bundle {
  const outdir = join(OUT, name);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  let meta: Metafile;
  if ('function' in entry) meta = bundleFunction(entry.function, outdir);
  else {
    const source = join(OUT, `${name}.ts`);
    writeFileSync(source, entry.contents);
    meta = buildSync({ ...ESBUILD_LAMBDA_OPTIONS, entryPoints: { index: source }, outdir, metafile: true }).metafile;
  }
  const sdkClients = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(input);
    if (m) sdkClients.add(m[1]!);
  }
  const outputs = Object.entries(meta.outputs).filter(([f]) => f.endsWith('.mjs'));
  const byPath = new Map(outputs);
  const atStart = coldStartFiles(meta).files;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    file: join(outdir, 'index.mjs'),
    bytes: sum(outputs.map(([, o]) => o.bytes)),
    gzipBytes: sum(outputs.map(([f]) => gzipSync(readFileSync(resolve(f))).length)),
    files: outputs.length,
    startBytes: sum(atStart.map((f) => byPath.get(f)!.bytes)),
    sdkClients: [...sdkClients].sort(),
  };
}

/** A file that imports the same SDK clients and does nothing else: the floor under a bundle's cold import. */
function bareEntry(clients: string[]): string {
  return clients
    .map((c, i) => {
      const exported = readFileSync(join(REPO_ROOT, 'node_modules', '@aws-sdk', c, 'dist-types', 'index.d.ts'), 'utf8');
      const client = /export \* from "\.\/([A-Za-z0-9]+Client)"/.exec(exported)?.[1];
      if (!client) throw new Error(`no client class found in @aws-sdk/${c}`);
      return `export { ${client} as c${i} } from '@aws-sdk/${c}';`;
    })
    .join('\n');
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
  [ENV.seenTable]: 'seen',
  [ENV.escalationQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers',
  [ENV.ackSecretArn]: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AckSigningSecret',
  [ENV.ackBaseUrl]: 'https://api.example/ack/',
  POWERTOOLS_SERVICE_NAME: 'bench',
};

/** Imports `specifiers` in a fresh node (the functions run with no NODE_OPTIONS), in the bundle's directory. */
function coldImportMs(specifiers: string[], cwd: string): number {
  const run = spawnSync(
    process.execPath,
    ['--no-warnings', '--input-type=module', '-e', COLD_IMPORT_SCRIPT, JSON.stringify(specifiers)],
    { encoding: 'utf8', cwd, env: BENCH_ENV },
  );
  if (run.status !== 0) throw new Error(`cold import of ${specifiers.join(', ')} failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { ms: number }).ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * A grade batch as SQS delivers it: 10 records (the FIFO maximum) across `patients` patients; the `round`th of a
 * series (each patient enrolled in round 0). Febrile and hypotensive, every patient's grade changes (a
 * transaction); `quiet`, nothing changes (the state item carries the messages pending to the next save).
 */
function gradeBatch(patients: number, { round = 0, quiet = false } = {}): SQSRecord[] {
  const base = Date.parse('2026-01-10T08:00:00Z') + round * 600_000;
  return Array.from({ length: 10 }, (_, i) => {
    const patientId = `P-${i % patients}`;
    const message: DeviceMessage = {
      messageId: `bench-${round}-${i}`,
      patientId,
      observedAt: new Date(base + i * 60_000).toISOString(),
      source: { deviceId: 'mon-1', kind: 'monitor' },
      ...(round === 0 && i < patients
        ? { enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', weightKg: 70, bed: `B${i}`, ward: 'H4' } }
        : quiet
          ? { vitals: { temperatureC: 36.8, systolicBP: 120, heartRate: 80 } }
          : { vitals: { temperatureC: 38.5 + (i % 3) / 10, systolicBP: 85, heartRate: 110 } }),
    };
    return {
      messageId: `sqs-${round}-${i}`,
      receiptHandle: `rh-${round}-${i}`,
      body: JSON.stringify({ message, receivedAt: '2026-01-10T08:00:00Z', sender: 'gw' }),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'x',
        ApproximateFirstReceiveTimestamp: '0',
        MessageGroupId: patientId,
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:Messages.fifo',
      awsRegion: 'eu-west-1',
    };
  });
}

/**
 * DynamoDB requests per patient of a grade batch: the first (each patient's grade changes: a transaction), the same
 * batch redelivered, and a quiet batch after a quiet one (the steady state of a ward: the last message's seen item
 * put first, then the state).
 */
async function dynamoRequestsPerPatient(): Promise<
  { patients: number; firstDelivery: number; redelivery: number; quietAfterQuiet: number }[]
> {
  process.env[ENV.stateTable] = 'state';
  process.env[ENV.auditTable] = 'audit';
  process.env[ENV.seenTable] = 'seen';
  process.env.AWS_REGION ??= 'eu-west-1';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const { createGradeHandler } = await import('#functions/grade/handler.ts');
  const { telemetry } = await import('#adapters/aws/telemetry.ts');
  const ddb = new FakeDynamo(STATE_STORE_TABLES);
  const results = [];
  for (const patients of [1, 4, 10]) {
    ddb.reset();
    const store = stateStoreOn(ddb, Date.now());
    const handler = createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...telemetry('grade') });
    const requests = async (batch: SQSRecord[]) => {
      ddb.mock.resetHistory();
      const res = await handler({ Records: batch });
      if (res.batchItemFailures.length > 0) throw new Error('bench grade batch failed');
      return ddb.mock.calls().length / patients;
    };
    const batch = gradeBatch(patients);
    const firstDelivery = await requests(batch);
    const redelivery = await requests(batch);
    // A quiet ward: enrolled and afebrile, one quiet batch after another.
    ddb.reset();
    await requests(gradeBatch(patients, { quiet: true }));
    await requests(gradeBatch(patients, { round: 1, quiet: true }));
    const quietAfterQuiet = await requests(gradeBatch(patients, { round: 2, quiet: true }));
    results.push({ patients, firstDelivery, redelivery, quietAfterQuiet });
  }
  ddb.restore();
  return results;
}

export async function run(): Promise<void> {
  console.log('\n== aws: Lambda bundles (the AWS SDK bundled in), cold import, DynamoDB requests per patient ==');
  console.log(
    `node ${process.version} here (Lambda runs Node.js 22 on arm64); ${COLD_RUNS} interleaved rounds of fresh processes, network blocked; ` +
      `load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores (the times scale with it: compare with the bare file's)`,
  );
  let met = true;
  for (const name of Object.keys(FUNCTION_ENTRIES) as FunctionName[]) {
    const ours = bundle(name, { function: name });
    const bare = bundle(`${name}-bare`, { contents: bareEntry(ours.sdkClients) });
    const urls = { ours: pathToFileURL(ours.file).href, bare: pathToFileURL(bare.file).href };
    coldImportMs([urls.ours], OUT); // warm the file system cache, as a Lambda image is
    coldImportMs([urls.bare], OUT);
    // Interleaved, so that whatever else the machine does weighs on both alike; the order alternates too.
    const times = { ours: [] as number[], bare: [] as number[] };
    for (let r = 0; r < COLD_RUNS; r++) {
      for (const which of r % 2 === 0 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const))
        times[which].push(coldImportMs([urls[which]], OUT));
    }
    const med = median(times.ours);
    const sizeOk = ours.bytes <= BUDGETS.bundleBytes;
    const coldOk = med <= BUDGETS.coldImportMs;
    met &&= sizeOk && coldOk;
    console.log(
      `${name.padEnd(8)} bundle ${(ours.bytes / 1024).toFixed(1).padStart(6)} KB minified (${(ours.gzipBytes / 1024).toFixed(1)} KB gzip) ` +
        `in ${ours.files} files, ${(ours.startBytes / 1024).toFixed(1)} KB of them read at a cold start, budget ${BUDGETS.bundleBytes / 1024} KB: ${verdict(sizeOk)}`,
    );
    console.log(
      `         cold import median ${med.toFixed(1)} ms (min ${Math.min(...times.ours).toFixed(1)}, max ${Math.max(...times.ours).toFixed(1)}), ` +
        `budget ${BUDGETS.coldImportMs} ms: ${verdict(coldOk)}`,
    );
    console.log(
      `         a bare file importing the same SDK clients (${ours.sdkClients.join(', ')}; ${(bare.startBytes / 1024).toFixed(1)} KB read at a cold start): median ${median(times.bare).toFixed(1)} ms; ` +
        `ours / bare = ${(med / median(times.bare)).toFixed(2)}`,
    );
  }
  console.log(`bundles and cold imports: ${met ? 'all budgets met' : 'budgets NOT MET'}`);
  for (const r of await dynamoRequestsPerPatient()) {
    // A quiet batch first puts the seen items of the messages the patient's last save left pending: one each.
    const pending = 10 / r.patients;
    const budget = BUDGETS.dynamoRequestsPerPatient;
    console.log(
      `grade batch of 10 records, ${String(r.patients).padStart(2)} patient(s): DynamoDB requests per patient ` +
        `${r.firstDelivery.toFixed(2)} (grade changes), ${r.redelivery.toFixed(2)} redelivered, budget ${budget}: ` +
        `${verdict(Math.max(r.firstDelivery, r.redelivery) <= budget)}; ${r.quietAfterQuiet.toFixed(2)} (a quiet batch ` +
        `after a quiet one), budget ${budget} + ${pending} left pending: ${verdict(r.quietAfterQuiet <= budget + pending)}`,
    );
  }
}

// Run alone with `npx tsx test/bench/aws.bench.ts`.
if (import.meta.url === `file://${process.argv[1]}`) await run();
