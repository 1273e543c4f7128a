// The five Lambda handlers, loaded from functions/*/handler.ts as they are deployed, and invoked the way the
// Lambda runtime does: with the environment the stack gives each function, a context object, and the function's
// timeout (an invocation that overruns fails, and its records are retried).
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENV } from '#adapters/aws/env.ts';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
  DynamoDBBatchResponse,
  DynamoDBStreamEvent,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import type { FunctionSpec } from './provision.ts';
import type { FunctionRole } from './template.ts';

type Handler<E, R> = (event: E, context?: Context) => Promise<R>;

/** EventBridge's scheduled event, as the schedule rule delivers it. */
export interface ScheduledEvent {
  version: '0';
  id: string;
  'detail-type': 'Scheduled Event';
  source: 'aws.events';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, never>;
}

export interface Handlers {
  ingest: Handler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;
  grade: Handler<SQSEvent, SQSBatchResponse>;
  notify: Handler<DynamoDBStreamEvent, DynamoDBBatchResponse>;
  escalate: Handler<SQSEvent | ScheduledEvent, SQSBatchResponse | void>;
  ack: Handler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;
}

/**
 * Sets each function's variables (they do not overlap) and imports the handler modules, which read them once at
 * cold start and build their AWS clients from the process's AWS settings (AWS_ENDPOINT_URL, region, credentials).
 * Each handler is built as the module builds its own (`liveDeps`), on the host's clock.
 */
export async function loadHandlers(
  functions: Record<FunctionRole, FunctionSpec>,
  now: () => number = Date.now,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Handlers> {
  const set = new Map<string, string>();
  for (const spec of Object.values(functions)) {
    for (const [k, v] of Object.entries(spec.environment)) {
      if (set.has(k) && set.get(k) !== v)
        throw new Error(`functions disagree on ${k}; they cannot share one local process`);
      set.set(k, v);
    }
  }
  // A variable the stack does not give a function must not leak in from the operator's shell either.
  for (const k of [ENV.gradingConfigFile]) if (!set.has(k)) delete env[k];
  for (const [k, v] of set) env[k] = v;
  env.LAMBDA_TASK_ROOT = functionFiles(functions);
  const [ingest, grade, notify, escalate, ack] = await Promise.all([
    import('#functions/ingest/handler.ts'),
    import('#functions/grade/handler.ts'),
    import('#functions/notify/handler.ts'),
    import('#functions/escalate/handler.ts'),
    import('#functions/ack/handler.ts'),
  ]);
  return {
    ingest: ingest.createIngestHandler(ingest.liveDeps(now)),
    grade: grade.createGradeHandler(grade.liveDeps(now)),
    notify: notify.createNotifyHandler(notify.liveDeps(now)),
    escalate: escalate.createEscalateHandler(escalate.liveDeps(now)),
    ack: ack.createAckHandler(ack.liveDeps(now)),
  };
}

/**
 * The files the stack ships beside the handlers (the functions' code is their sources here, not a bundle), written
 * where the functions read them as on Lambda: LAMBDA_TASK_ROOT. One directory for the process, named by its contents
 * (so written once, and never changed under a running host).
 */
function functionFiles(functions: Record<FunctionRole, FunctionSpec>): string {
  const files = new Map<string, string>();
  for (const spec of Object.values(functions)) {
    for (const [name, content] of Object.entries(spec.files)) {
      if (files.has(name) && files.get(name) !== content)
        throw new Error(`functions disagree on their file ${name}; they cannot share one local process`);
      files.set(name, content);
    }
  }
  const sorted = [...files].sort(([a], [b]) => (a < b ? -1 : 1));
  const digest = createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `crs-function-files-${digest}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of sorted) {
    // Whole or not at all: another host of the same files may be reading it.
    const partial = join(dir, `.${name}.${process.pid}`);
    writeFileSync(partial, content);
    renameSync(partial, join(dir, name));
  }
  return dir;
}

class InvocationTimeout extends Error {
  constructor(seconds: number) {
    super(`Task timed out after ${seconds.toFixed(2)} seconds`);
    this.name = 'InvocationTimeout';
  }
}

/** One invocation: a fresh request id, the remaining time, and failure when it overruns the function's timeout. */
export async function invoke<E, R>(
  spec: FunctionSpec,
  functionName: string,
  region: string,
  handler: Handler<E, R>,
  event: E,
): Promise<R> {
  const start = Date.now();
  const timeoutMs = spec.timeoutSeconds * 1000;
  const context: Context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: String(spec.memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'crs-serve-local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - start)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  const running = handler(event, context);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const first = await Promise.race([
      running.then(
        () => 'done' as const,
        () => 'done' as const,
      ),
      timedOut,
    ]);
    if (first === 'timeout') {
      // Lambda would stop the invocation here. It cannot be stopped in this process, so the failure is reported
      // once it has ended: a retry never runs alongside the invocation it retries.
      await running.catch(() => undefined);
      throw new InvocationTimeout(spec.timeoutSeconds);
    }
    return await running;
  } finally {
    clearTimeout(timer);
  }
}
