// `crs serve --backend aws`: the deployed shape on any AWS-compatible endpoint. Synthesizes the stack, provisions
// its data plane under a prefix, and runs the five real handlers as Lambda would call them: the HTTP front to
// ingest and ack, the SQS FIFO event source to grade, the DynamoDB stream event source to notify, the escalation
// timers' SQS event source and the schedule to escalate; then prints the pages that reach the team queues. One
// host per process: the handler modules read this process's environment.
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DeleteItemCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashToken, isLoopbackHost } from '#app/auth.ts';
import { DynamoTokenStore } from '#adapters/aws/dynamo-token-store.ts';
import { ENV } from '#adapters/aws/env.ts';
import { STATE_TABLE, TOKENS_TABLE } from '#adapters/aws/table-layout.ts';
import { startHttpFront, type HttpFront, type RouteTarget } from './http-front.ts';
import { invoke, loadHandlers, type Handlers, type ScheduledEvent } from './lambda.ts';
import { PagePrinter } from './page-printer.ts';
import { PlatformMetrics } from './platform-metrics.ts';
import { deprovision, localFunctionName, provision, type AwsClients, type Provisioned } from './provision.ts';
import { SqsEventSource } from './sqs-source.ts';
import { StreamEventSource } from './stream-source.ts';
import { LOCAL_PAGING, stackOf, type FunctionRole, type SynthOptions, type Synthesize } from './template.ts';
import { clockParameter } from '../test-clock.ts';

export interface AwsHostOptions extends SynthOptions {
  /** Synthesizes the stack (infra/synthesize.ts, handed in by bin/crs.js). */
  synthesize: Synthesize;
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
  /** Print every page each team receives too (not only each grade change once). */
  pageLines?: boolean;
  /** How often the schedule rule fires (seconds); the stack's rate when absent (a minute). */
  scheduleSeconds?: number;
  /**
   * Test hook: the functions run on a clock that a test moves forward (POST /local/clock?advanceMs=N) and the
   * schedule fires on request too (POST /local/schedule, answered when the escalate invocation has ended), so that
   * a ladder's levels fall due without waiting for them.
   */
  testClock?: boolean;
  /** Test hook: the process kills itself after a page's state transaction and before its publish. */
  crashBeforePublish?: boolean;
  /**
   * Test hook: every notify invocation whose batch holds an outbox record of this patient fails, as a function
   * that crashes or times out on that record would.
   */
  failNotifyPatient?: string;
  /**
   * Test hook (2026-12-07): the notify mapping's checkpoint, a sequence number of the state table's stream: the stream
   * is read from after it, as Lambda resumes a mapping disabled and enabled again (the runbook's restore), not from
   * its start, which this host reads again at every start otherwise.
   */
  notifyAfter?: string;
  out: (line: string) => void;
  log: (line: string) => void;
}

export interface AwsHostHealth {
  queue: { visible: number; inFlight: number };
  deadLetters: number;
  notifyFailures: number;
  grade: SqsEventSource['stats'];
  notify: StreamEventSource['stats'];
  escalate: SqsEventSource['stats'] & {
    scheduled: number;
    scheduleFailures: number;
    /** Scheduled invocations not yet ended. */
    scheduleRunning: number;
    timers: { visible: number; inFlight: number };
    deadLetters: number;
  };
  pages: PagePrinter['stats'];
  /** Messages in the team queues, not yet printed. */
  teamQueues: { visible: number; inFlight: number };
  /**
   * Nothing in progress: no message waiting or being handled in the grade, timer or team queues, no stream record
   * pending, no scheduled invocation running. Delayed timers (ladder steps not yet due) do not count. The stream's
   * end is known only from a read made after the grade queue drained: `notify.emptyReads` moving on tells that.
   */
  idle: boolean;
  /** The functions' clock (ms since the epoch): real time, plus what a test moved it by. */
  now: number;
}

export interface AwsHost {
  url: string;
  provisioned: Provisioned;
  /**
   * The dummy credentials set for a loopback emulator because the environment had none (empty otherwise): what a
   * command run from another shell on this machine needs too.
   */
  dummyCredentials: Readonly<Record<string, string>>;
  health(): Promise<AwsHostHealth>;
  /** The page counts, also after close. */
  pages(): PagePrinter['stats'];
  close(): Promise<void>;
}

/**
 * The handlers build their SDK clients from the environment, as in Lambda: point it at the endpoint. A local
 * emulator needs some credentials; dummy ones are set when none are, and returned (none: empty).
 */
function configureAwsEnvironment(
  endpoint: string | undefined,
  region: string,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<Record<string, string>> {
  env.AWS_REGION = region;
  if (!endpoint) {
    delete env.AWS_ENDPOINT_URL;
    return {};
  }
  env.AWS_ENDPOINT_URL = endpoint;
  if (!isLoopbackHost(new URL(endpoint).hostname) || env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE) return {};
  const dummy = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
  Object.assign(env, dummy);
  return dummy;
}

function clientsFor(endpoint: string | undefined, region: string): AwsClients & { streams: DynamoDBStreamsClient } {
  const config = { region, ...(endpoint ? { endpoint } : {}) };
  return {
    sqs: new SQSClient(config),
    dynamodb: new DynamoDBClient(config),
    sns: new SNSClient(config),
    secrets: new SecretsManagerClient(config),
    cloudwatch: new CloudWatchClient(config),
    streams: new DynamoDBStreamsClient(config),
  };
}

/** The function a role's invocations share: at most `limit` at once, as reserved concurrency makes it in Lambda. */
function limiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

async function acceptLocalToken(
  clients: AwsClients,
  tokensTable: string,
  token: string,
  log: (line: string) => void,
): Promise<void> {
  const store = new DynamoTokenStore(clients.dynamodb, tokensTable);
  const hash = hashToken(token);
  const existing = await store.findByHash(hash);
  if (existing?.revokedAt)
    log("crs serve: CRS_INGEST_TOKEN was revoked in this run's tokens table; requests with it are refused (403)");
  // The operator's own token: an EHR's scope (every section, every kind, every patient), as on the embedded server.
  if (existing) {
    if (!existing.revokedAt && existing.kind !== 'ehr') await store.setScope(existing.tokenId, { kind: 'ehr' });
    return;
  }
  await store.put({
    tokenId: `local-${hash.slice(0, 12)}`,
    deviceId: 'local',
    hash,
    createdAt: new Date().toISOString(),
    kind: 'ehr',
  });
}

/** A token acceptLocalToken stored: the device `local`, its id made of its hash. */
const isLocalToken = (t: { tokenId: string; deviceId: string; hash: string }) =>
  t.deviceId === 'local' && t.tokenId === `local-${t.hash.slice(0, 12)}`;

/**
 * The tables outlive a run: an earlier run's CRS_INGEST_TOKEN (every right) is deleted from the tokens table by a
 * run that is not given it (unset, or another value: `keep`, the hash of this run's), so that it is taken only while
 * a run sets it, on a loopback listener (or with --ingest-token-any-host). Until 2026-12-08 a later run of the same
 * prefix on a network address, without it, took it. A revoked one is kept revoked (set again, it is refused, as
 * acceptLocalToken says).
 */
async function forgetLocalToken(
  clients: AwsClients,
  tokensTable: string,
  keep: string | undefined,
  log: (line: string) => void,
): Promise<void> {
  const stale = (await new DynamoTokenStore(clients.dynamodb, tokensTable).list()).filter(
    (t) => isLocalToken(t) && t.hash !== keep && t.revokedAt === undefined,
  );
  for (const t of stale)
    await clients.dynamodb.send(
      new DeleteItemCommand({ TableName: tokensTable, Key: { [TOKENS_TABLE.partitionKey]: { S: t.hash } } }),
    );
  if (stale.length > 0)
    log(
      "crs serve: an earlier run's CRS_INGEST_TOKEN deleted from this run's tokens table (taken only while CRS_INGEST_TOKEN is set to it)",
    );
}

/** Real time, plus what a test moved it forward by (never back: the stores' conditional writes assume it). */
class HostClock {
  private offsetMs = 0;
  readonly now = (): number => Date.now() + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export async function startAwsHost(o: AwsHostOptions): Promise<AwsHost> {
  const dummyCredentials = configureAwsEnvironment(o.endpoint, o.region);
  const clock = new HostClock();
  const clients = clientsFor(o.endpoint, o.region);
  const synth = await o.synthesize(stackOf(o));

  // The front listens first: its URL is the acknowledge links' base, which the functions read at cold start.
  let ready!: (h: Handlers) => void;
  const loaded = new Promise<Handlers>((resolve) => (ready = resolve));
  const targets: Record<string, RouteTarget> = {};
  let local: (req: IncomingMessage, res: ServerResponse) => boolean = () => false;
  const front: HttpFront = await startHttpFront({
    port: o.port,
    host: o.host,
    routes: targets,
    local: (req, res) => local(req, res),
    log: o.log,
  });
  let p: Provisioned;
  let handlers: Handlers;
  try {
    p = await provision(synth, clients, {
      prefix: o.prefix,
      ...(o.visibilityTimeoutSeconds !== undefined ? { visibilityTimeoutSeconds: o.visibilityTimeoutSeconds } : {}),
      hostVariables: { [ENV.ackBaseUrl]: `${front.url}/ack/` },
    });
    const tokensTable = p.functions.ingest.environment[ENV.tokensTable]!;
    await forgetLocalToken(clients, tokensTable, o.localToken ? hashToken(o.localToken) : undefined, o.log);
    if (o.localToken) await acceptLocalToken(clients, tokensTable, o.localToken, o.log);
    handlers = await loadHandlers(p.functions, clock.now);
  } catch (err) {
    await front.close();
    for (const c of Object.values(clients)) c.destroy();
    throw err;
  }
  ready(handlers);
  const name = (role: FunctionRole) => localFunctionName(o.prefix, role);
  // On an emulator, each invocation is counted in AWS/Lambda as Lambda would (the alarms and crs doctor read it).
  const platform = o.endpoint ? new PlatformMetrics(clients.cloudwatch, o.log) : undefined;
  /** Tells the notifier's stream source that the state table may have a new record (set once it exists). */
  let stateWritten = () => {};
  const call = <E, R>(role: FunctionRole, handler: (e: E) => Promise<R>, event: E) => {
    const invoked = invoke(p.functions[role], name(role), o.region, handler, event);
    const running = role === 'notify' ? invoked : invoked.finally(() => stateWritten());
    if (!platform) return running;
    return running.then(
      (r) => {
        platform.record(name(role), false);
        return r;
      },
      (err: unknown) => {
        platform.record(name(role), true);
        throw err;
      },
    );
  };
  for (const [key, role] of Object.entries(p.routeTargets)) {
    if (role !== 'ingest' && role !== 'ack')
      throw new Error(`route ${key} reaches ${role}, which the local front does not serve`);
    targets[key] = {
      name: role,
      maxConcurrency: p.functions[role].reservedConcurrency,
      invoke: async (event) => call(role, (await loaded)[role], event),
    };
  }
  front.open(); // every route has its function: requests are served from now on (503 before)
  // The escalate function's timers and its schedule share its reserved concurrency.
  const escalateSlot = limiter(p.functions.escalate.reservedConcurrency);
  const callEscalate = (event: Parameters<Handlers['escalate']>[0]) =>
    escalateSlot(() => call('escalate', handlers.escalate, event));

  const grade = new SqsEventSource({
    sqs: clients.sqs,
    spec: p.gradeSource,
    region: o.region,
    maxConcurrency: Math.min(p.gradeSource.maxConcurrency ?? Infinity, p.functions.grade.reservedConcurrency),
    invoke: (event) => call('grade', handlers.grade, event),
    log: o.log,
  });
  const notify = new StreamEventSource({
    streams: clients.streams,
    sqs: clients.sqs,
    spec: p.notifySource,
    region: o.region,
    functionArn: `arn:aws:lambda:${o.region}:000000000000:function:${name('notify')}`,
    invoke: (event) => {
      if (
        o.failNotifyPatient &&
        event.Records.some((r) => r.dynamodb?.NewImage?.[STATE_TABLE.partitionKey]?.S === o.failNotifyPatient)
      ) {
        return Promise.reject(
          Object.assign(new Error(`CRS_TEST_FAIL_NOTIFY_PATIENT: a record of ${o.failNotifyPatient}`), {
            name: 'TestRecordFails',
          }),
        );
      }
      return call('notify', handlers.notify, event);
    },
    log: o.log,
    pollIntervalMs: o.streamPollMs ?? 50,
    // Idle, a read a second at most (three requests to the emulator each, 60 a second at 50 ms): the functions
    // that write the state table run here and nudge it at once; a write from outside (a test, a restore) waits that.
    idlePollMaxMs: 1000,
    ...(o.notifyAfter ? { after: o.notifyAfter } : {}),
    ...(o.crashBeforePublish
      ? {
          beforeInvoke: () => {
            o.log(
              'crs serve: CRS_TEST_CRASH_BEFORE_PUBLISH: a page is committed and not yet published; killing this process',
            );
            process.kill(process.pid, 'SIGKILL');
          },
        }
      : {}),
  });
  stateWritten = () => notify.nudge();
  const escalate = new SqsEventSource({
    sqs: clients.sqs,
    spec: p.escalateSource,
    region: o.region,
    maxConcurrency: Math.min(p.escalateSource.maxConcurrency ?? Infinity, p.functions.escalate.reservedConcurrency),
    invoke: (event) => callEscalate(event) as Promise<SQSBatchResponse | void>,
    log: o.log,
  });
  const scheduleStats = { scheduled: 0, scheduleFailures: 0, scheduleRunning: 0 };
  const schedule = p.schedules.find((x) => x.role === 'escalate');
  let scheduleTimer: NodeJS.Timeout | undefined;
  let scheduled: Promise<unknown> = Promise.resolve();
  const fire = () => {
    const event: ScheduledEvent = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      time: new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: o.region,
      resources: [`arn:aws:events:${o.region}:000000000000:rule/${o.prefix}-schedule`],
      detail: {},
    };
    scheduleStats.scheduled++;
    scheduleStats.scheduleRunning++;
    const run = callEscalate(event).then(
      () => true,
      (err: Error) => {
        scheduleStats.scheduleFailures++;
        o.log(`escalate: scheduled invocation failed (${err.name})`);
        return false;
      },
    );
    scheduled = run.finally(() => scheduleStats.scheduleRunning--);
    return run;
  };
  const printer = new PagePrinter({
    sqs: clients.sqs,
    teamQueues: p.teamQueues,
    out: o.out,
    log: o.log,
    pageLines: o.pageLines ?? false,
  });

  const depth = async (url: string) => {
    const a =
      (
        await clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        )
      ).Attributes ?? {};
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  };
  const dlqArn = JSON.parse(
    (
      await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: p.gradeSource.queue.url, AttributeNames: ['RedrivePolicy'] }),
      )
    ).Attributes?.RedrivePolicy ?? '{}',
  ) as { deadLetterTargetArn?: string };
  const dlq = p.queues.find((q) => q.arn === dlqArn.deadLetterTargetArn);
  const escalationDlqArn = JSON.parse(
    (
      await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: p.escalateSource.queue.url, AttributeNames: ['RedrivePolicy'] }),
      )
    ).Attributes?.RedrivePolicy ?? '{}',
  ) as { deadLetterTargetArn?: string };
  const escalationDlq = p.queues.find((q) => q.arn === escalationDlqArn.deadLetterTargetArn);
  const health = async (): Promise<AwsHostHealth> => {
    // In the order of the flow, so that work moving on between two reads is seen in the later one.
    const queue = await depth(p.gradeSource.queue.url);
    const notifyStats = { ...notify.stats };
    const timers = await depth(p.escalateSource.queue.url);
    const running = scheduleStats.scheduleRunning;
    const teamDepths = await Promise.all(p.teamQueues.map((t) => depth(t.queue.url)));
    const teamQueues = {
      visible: teamDepths.reduce((n, d) => n + d.visible, 0),
      inFlight: teamDepths.reduce((n, d) => n + d.inFlight, 0),
    };
    const empty = (d: { visible: number; inFlight: number }) => d.visible === 0 && d.inFlight === 0;
    return {
      queue,
      deadLetters: dlq ? (await depth(dlq.url)).visible : 0,
      notifyFailures: p.notifySource.onFailure ? (await depth(p.notifySource.onFailure.url)).visible : 0,
      grade: { ...grade.stats },
      notify: notifyStats,
      escalate: {
        ...escalate.stats,
        ...scheduleStats,
        scheduleRunning: running,
        timers,
        deadLetters: escalationDlq ? (await depth(escalationDlq.url)).visible : 0,
      },
      pages: { ...printer.stats, deliveries: { ...printer.stats.deliveries } },
      teamQueues,
      idle:
        empty(queue) &&
        notifyStats.pending === 0 &&
        notifyStats.caughtUp &&
        empty(timers) &&
        running === 0 &&
        empty(teamQueues),
      now: clock.now(),
    };
  };

  const answer = (res: ServerResponse, work: Promise<unknown>) =>
    work.then(
      (value) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(value));
      },
      (err: Error) => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.name }));
      },
    );
  // Not API routes: the local host's own status, for operators and tests (counts only, no patient data), and with
  // the test clock, moving the clock and firing the schedule.
  local = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://local');
    if (req.method === 'GET' && url.pathname === '/local/health') {
      // A reader of the health waits for the stream's end to be read after what it did (settle()).
      notify.nudge();
      answer(res, health());
      return true;
    }
    if (!o.testClock || req.method !== 'POST') return false;
    if (url.pathname === '/local/clock') {
      const step = clockParameter(url, 'advanceMs', 0, 'a whole number of milliseconds, 0 or more');
      if ('error' in step) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: step.error }));
        return true;
      }
      clock.advance(step.ms);
      answer(res, Promise.resolve({ now: clock.now() }));
      return true;
    }
    if (url.pathname === '/local/schedule') {
      answer(
        res,
        fire().then((ok) => (ok ? { now: clock.now() } : Promise.reject(new Error('the scheduled invocation failed')))),
      );
      return true;
    }
    return false;
  };

  platform?.start();
  printer.start();
  notify.start();
  grade.start();
  escalate.start();
  // The schedule fires once at start (catching up with whatever fell due while nothing ran), then at its rate.
  const everyMs = (o.scheduleSeconds ?? schedule?.everySeconds ?? 60) * 1000;
  if (schedule) {
    fire();
    scheduleTimer = setInterval(fire, everyMs);
    scheduleTimer.unref();
  }

  return {
    url: front.url,
    provisioned: p,
    dummyCredentials,
    health,
    pages: () => printer.stats,
    close: async () => {
      // In the order of the flow: no new requests, then grading, then notifying, then the last pages printed.
      await front.close();
      clearInterval(scheduleTimer);
      await grade.stop();
      await notify.stop();
      await escalate.stop();
      await scheduled;
      await printer.stop();
      await platform?.stop();
      for (const c of Object.values(clients)) c.destroy();
    },
  };
}

/**
 * Whether anything of a run is there: a queue or a table named `<prefix>-...` in this region. (A run whose prefix
 * starts another's, `crs-local` and `crs-local-2`, counts as found: the teardown then does what it did before.)
 */
async function runFound(prefix: string, clients: AwsClients): Promise<boolean> {
  const queues = await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: `${prefix}-`, MaxResults: 1 }));
  if ((queues.QueueUrls ?? []).length > 0) return true;
  // Tables are listed in name order: the first after "<prefix>-" is one of the run's if there is any.
  const tables = await clients.dynamodb.send(
    new ListTablesCommand({ ExclusiveStartTableName: `${prefix}-`, Limit: 1 }),
  );
  return (tables.TableNames ?? []).some((name) => name.startsWith(`${prefix}-`));
}

/**
 * Deletes a run's resources (the same synthesis names them); undefined, touching nothing, when no queue or table of
 * the run is there (another --prefix or --region). Until 2026-12-06 it provisioned the run there first, then deleted
 * it, and said it had deleted the run.
 */
export async function teardownAwsHost(
  o: Pick<AwsHostOptions, 'endpoint' | 'region' | 'prefix' | 'paging' | 'gradingOverrides' | 'synthesize'>,
): Promise<Provisioned | undefined> {
  configureAwsEnvironment(o.endpoint, o.region);
  const clients = clientsFor(o.endpoint, o.region);
  try {
    if (!(await runFound(o.prefix, clients))) return undefined;
    const synth = await o.synthesize({ paging: o.paging ?? LOCAL_PAGING });
    // Provisioning again finds what exists (and creates what a partial run left out), so all of it is named.
    const p = await provision(synth, clients, {
      prefix: o.prefix,
      hostVariables: { [ENV.ackBaseUrl]: 'http://127.0.0.1/ack/' },
    });
    await deprovision(p, clients);
    return p;
  } finally {
    for (const c of Object.values(clients)) c.destroy();
  }
}
