// `crs serve --backend aws`: the deployed shape on any AWS-compatible endpoint. Synthesizes the stack, provisions
// its data plane under a prefix, and runs the three real handlers as Lambda would call them: the HTTP front to
// ingest, the SQS FIFO event source to grade, the DynamoDB stream event source to notify; then prints the pages
// that reach the team queues. One host per process: the handler modules read this process's environment.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashToken } from '../app/auth.ts';
import { DynamoTokenStore } from '../adapters/aws/dynamo-token-store.ts';
import { ENV } from '../adapters/aws/env.ts';
import { startHttpFront, type HttpFront } from './http-front.ts';
import { invoke, loadHandlers } from './lambda.ts';
import { PagePrinter } from './page-printer.ts';
import { deprovision, provision, type AwsClients, type Provisioned } from './provision.ts';
import { SqsEventSource } from './sqs-source.ts';
import { StreamEventSource } from './stream-source.ts';
import { synthesizeStack, type FunctionRole, type SynthOptions } from './template.ts';

export interface AwsHostOptions extends SynthOptions {
  /** The AWS-compatible endpoint (moto, LocalStack); real AWS when absent. */
  endpoint?: string;
  region: string;
  prefix: string;
  port: number;
  host: string;
  visibilityTimeoutSeconds?: number;
  /** A device token accepted for local use (CRS_INGEST_TOKEN): stored, hashed, in this run's tokens table. */
  localToken?: string;
  /** How often an idle stream shard is read, ms. */
  streamPollMs?: number;
  /** Test hook: the process kills itself after a page's state transaction and before its publish. */
  crashBeforePublish?: boolean;
  out: (line: string) => void;
  log: (line: string) => void;
}

export interface AwsHostHealth {
  queue: { visible: number; inFlight: number };
  deadLetters: number;
  notifyFailures: number;
  grade: SqsEventSource['stats'];
  notify: StreamEventSource['stats'];
  pages: PagePrinter['stats'];
}

export interface AwsHost {
  url: string;
  provisioned: Provisioned;
  health(): Promise<AwsHostHealth>;
  /** The page counts, also after close. */
  pages(): PagePrinter['stats'];
  close(): Promise<void>;
}

const LOOPBACK = /^(localhost|127(?:\.\d+){3}|\[::1\])$/;

/**
 * The handlers build their SDK clients from the environment, as in Lambda: point it at the endpoint. A local
 * emulator needs some credentials; dummy ones are set when none are.
 */
export function configureAwsEnvironment(endpoint: string | undefined, region: string, env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_REGION = region;
  if (endpoint) {
    env.AWS_ENDPOINT_URL = endpoint;
    if (LOOPBACK.test(new URL(endpoint).hostname) && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
      env.AWS_ACCESS_KEY_ID = 'test';
      env.AWS_SECRET_ACCESS_KEY = 'test';
    }
  } else {
    delete env.AWS_ENDPOINT_URL;
  }
}

function clientsFor(endpoint: string | undefined, region: string): AwsClients & { streams: DynamoDBStreamsClient } {
  const config = { region, ...(endpoint ? { endpoint } : {}) };
  return { sqs: new SQSClient(config), dynamodb: new DynamoDBClient(config), sns: new SNSClient(config), streams: new DynamoDBStreamsClient(config) };
}

async function acceptLocalToken(clients: AwsClients, tokensTable: string, token: string, log: (line: string) => void): Promise<void> {
  const store = new DynamoTokenStore(clients.dynamodb, tokensTable);
  const hash = hashToken(token);
  const existing = await store.findByHash(hash);
  if (existing?.revokedAt) log('crs serve: CRS_INGEST_TOKEN was revoked in this run\'s tokens table; requests with it are refused (403)');
  if (existing) return;
  await store.put({ tokenId: `local-${hash.slice(0, 12)}`, deviceId: 'local', hash, createdAt: new Date().toISOString() });
}

export async function startAwsHost(o: AwsHostOptions): Promise<AwsHost> {
  configureAwsEnvironment(o.endpoint, o.region);
  const clients = clientsFor(o.endpoint, o.region);
  const synth = await synthesizeStack({ ...(o.paging ? { paging: o.paging } : {}), ...(o.gradingOverrides ? { gradingOverrides: o.gradingOverrides } : {}) });
  const p = await provision(synth, clients, {
    prefix: o.prefix,
    ...(o.visibilityTimeoutSeconds !== undefined ? { visibilityTimeoutSeconds: o.visibilityTimeoutSeconds } : {}),
  });
  if (o.localToken) await acceptLocalToken(clients, p.functions.ingest.environment[ENV.tokensTable]!, o.localToken, o.log);

  const handlers = await loadHandlers(p.functions);
  const name = (role: FunctionRole) => `${o.prefix}-${role}`;
  const call = <E, R>(role: FunctionRole, handler: (e: E) => Promise<R>, event: E) => invoke(p.functions[role], name(role), o.region, handler, event);

  const grade = new SqsEventSource({
    sqs: clients.sqs,
    spec: p.gradeSource,
    region: o.region,
    maxConcurrency: p.functions.grade.reservedConcurrency,
    invoke: (event) => call('grade', handlers.grade, event),
    log: o.log,
  });
  const notify = new StreamEventSource({
    streams: clients.streams,
    sqs: clients.sqs,
    spec: p.notifySource,
    region: o.region,
    functionArn: `arn:aws:lambda:${o.region}:000000000000:function:${name('notify')}`,
    invoke: (event) => call('notify', handlers.notify, event),
    log: o.log,
    pollIntervalMs: o.streamPollMs ?? 50,
    ...(o.crashBeforePublish
      ? {
          beforeInvoke: () => {
            o.log('crs serve: CRS_TEST_CRASH_BEFORE_PUBLISH: a page is committed and not yet published; killing this process');
            process.kill(process.pid, 'SIGKILL');
          },
        }
      : {}),
  });
  const printer = new PagePrinter({ sqs: clients.sqs, teamQueues: p.teamQueues, out: o.out, log: o.log });

  const depth = async (url: string) => {
    const a = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
    return { visible: Number(a.ApproximateNumberOfMessages ?? 0), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) };
  };
  const dlqArn = JSON.parse(
    ((await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: p.gradeSource.queue.url, AttributeNames: ['RedrivePolicy'] }))).Attributes?.RedrivePolicy) ?? '{}',
  ) as { deadLetterTargetArn?: string };
  const dlq = p.queues.find((q) => q.arn === dlqArn.deadLetterTargetArn);
  const health = async (): Promise<AwsHostHealth> => ({
    queue: await depth(p.gradeSource.queue.url),
    deadLetters: dlq ? (await depth(dlq.url)).visible : 0,
    notifyFailures: p.notifySource.onFailure ? (await depth(p.notifySource.onFailure.url)).visible : 0,
    grade: { ...grade.stats },
    notify: { ...notify.stats },
    pages: { ...printer.stats, deliveries: { ...printer.stats.deliveries } },
  });

  // Not an API route: the local host's own status, for operators and tests (counts only, no patient data).
  const local = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || req.url !== '/local/health') return false;
    health().then(
      (h) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(h));
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.name }));
      },
    );
    return true;
  };

  printer.start();
  notify.start();
  grade.start();
  let front: HttpFront;
  try {
    front = await startHttpFront({
      port: o.port,
      host: o.host,
      routes: p.routes,
      maxConcurrency: p.functions.ingest.reservedConcurrency,
      invoke: (event) => call('ingest', handlers.ingest, event),
      local,
      log: o.log,
    });
  } catch (err) {
    await Promise.all([grade.stop(), notify.stop(), printer.stop()]);
    throw err;
  }

  return {
    url: front.url,
    provisioned: p,
    health,
    pages: () => printer.stats,
    close: async () => {
      // In the order of the flow: no new requests, then grading, then notifying, then the last pages printed.
      await front.close();
      await grade.stop();
      await notify.stop();
      await printer.stop();
      for (const c of Object.values(clients)) c.destroy();
    },
  };
}

/** Deletes a run's resources (the same synthesis names them). */
export async function teardownAwsHost(o: Pick<AwsHostOptions, 'endpoint' | 'region' | 'prefix' | 'paging' | 'gradingOverrides'>): Promise<Provisioned> {
  configureAwsEnvironment(o.endpoint, o.region);
  const clients = clientsFor(o.endpoint, o.region);
  try {
    const synth = await synthesizeStack({ ...(o.paging ? { paging: o.paging } : {}) });
    // Provisioning again finds what exists (and creates what a partial run left out), so all of it is named.
    const p = await provision(synth, clients, { prefix: o.prefix });
    await deprovision(p, clients);
    return p;
  } finally {
    for (const c of Object.values(clients)) c.destroy();
  }
}
