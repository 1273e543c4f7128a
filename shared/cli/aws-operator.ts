// What an operator's `crs` command needs to reach a deployment on AWS (or a `crs serve --backend aws` run): the
// tables, topic, timers queue and link secret, from flags, the functions' environment variables (CRS_PAGES_TABLE,
// ...), or the stack's outputs (`cdk deploy --outputs-file FILE`, or the file `crs serve --backend aws --outputs
// FILE` writes); the region, credentials and AWS_ENDPOINT_URL as for the AWS CLI (the region checked once, here, by
// every command: operatorAws).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { readFileSync } from 'node:fs';
import type { GradingConfig } from '#domain/config.ts';
import { ENV } from '#adapters/aws/env.ts';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { awsPaging, readAckSecret, teamsWithoutEndpoints, type AwsPaging } from '#adapters/aws/paging.ts';
import type { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { readRestore } from '#adapters/aws/restore.ts';

/** What only the operator commands use (crs doctor), named like the functions' variables. */
export const OPERATOR_ENV = {
  alarmTopicArn: 'CRS_ALARM_TOPIC_ARN',
  ingestFunction: 'CRS_INGEST_FUNCTION',
  gradeFunction: 'CRS_GRADE_FUNCTION',
  escalateFunction: 'CRS_ESCALATE_FUNCTION',
  /** The notifier's on-failure queue (crs outbox). */
  notifyFailuresQueue: 'CRS_NOTIFY_FAILURES_QUEUE',
  /** The pages topic's dead-letter queue: where each of its subscriptions' redrive policy must send (crs doctor). */
  undeliveredPagesArn: 'CRS_UNDELIVERED_PAGES_ARN',
  /** The alarm topic's dead-letter queue: where each of its subscriptions' redrive policy must send (crs doctor). */
  undeliveredAlarmsArn: 'CRS_UNDELIVERED_ALARMS_ARN',
} as const;

/** The stack's outputs that name what the operator commands use, and the variable each stands for. */
export const OUTPUTS = {
  StateTableName: ENV.stateTable,
  PagesTableName: ENV.pagesTable,
  AuditTableName: ENV.auditTable,
  SeenTableName: ENV.seenTable,
  PagesTopicArn: ENV.topicArn,
  EscalationQueueUrl: ENV.escalationQueueUrl,
  AckSecretArn: ENV.ackSecretArn,
  AckBaseUrl: ENV.ackBaseUrl,
  TokensTableName: ENV.tokensTable,
  AlarmTopicArn: OPERATOR_ENV.alarmTopicArn,
  IngestFunctionName: OPERATOR_ENV.ingestFunction,
  GradeFunctionName: OPERATOR_ENV.gradeFunction,
  EscalateFunctionName: OPERATOR_ENV.escalateFunction,
  NotifyFailuresQueueUrl: OPERATOR_ENV.notifyFailuresQueue,
  UndeliveredPagesArn: OPERATOR_ENV.undeliveredPagesArn,
  UndeliveredAlarmsArn: OPERATOR_ENV.undeliveredAlarmsArn,
  /** The release deployed (crs doctor compares it with its own). */
  Release: ENV.release,
  /**
   * The teams the paging config deployed gives no endpoint (output only when there are some): the operator's pager
   * sets their pages aside as the functions do (crs silence, crs outbox retry; 2026-12-07).
   */
  TeamsWithoutEndpoints: ENV.teamsWithoutEndpoints,
} as const;

export class OperatorUsageError extends Error {}

/** What every AWS operator command says when no region is configured: a usage error (exit 2), before any call. */
const NO_REGION =
  'no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile), e.g. AWS_REGION=eu-west-1';

/**
 * The settings of an operator command's AWS clients: the region, found as the AWS CLI finds it (AWS_REGION, then
 * AWS_DEFAULT_REGION, which the SDK alone ignores, then the profile's in the AWS config file, as the SDK reads it).
 * Without one the SDK failed the command's first call with "Region is missing" (exit 1; `crs audit export` took it
 * for a trail cut short).
 */
export async function operatorAws(): Promise<{ region: string }> {
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || (await profileRegion());
  if (!region) throw new OperatorUsageError(NO_REGION);
  return { region };
}

/** The region the SDK's own chain finds (the profile's, AWS_PROFILE or default), or undefined. */
async function profileRegion(): Promise<string | undefined> {
  const probe = new DynamoDBClient({});
  try {
    return await probe.config.region();
  } catch {
    return undefined; // "Region is missing"
  } finally {
    probe.destroy();
  }
}

/** Reads a CDK outputs file: {"<stack>": {"PagesTableName": "...", ...}}, of one stack. */
export function readOutputs(file: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OperatorUsageError(`cannot read the outputs file ${file}: ${(err as Error).message}`);
  }
  // `cdk deploy --all --outputs-file` writes every stack's: the first was read without a word, whichever deployment
  // it was (until 2026-12-06). Each command reads its own flags, so none chooses: the file holds one stack. A stack
  // here names one of the outputs (a paging config's "teams" and "alarms" do not: refused below as naming none).
  const entries = json && typeof json === 'object' && !Array.isArray(json) ? Object.entries(json) : [];
  const stacks = entries.filter(
    ([, v]) =>
      !!v &&
      typeof v === 'object' &&
      Object.keys(OUTPUTS).some((o) => typeof (v as Record<string, unknown>)[o] === 'string'),
  );
  if (stacks.length > 1)
    throw new OperatorUsageError(
      `${file} holds the outputs of several stacks (${stacks.map(([k]) => k).join(', ')}): keep one stack's outputs in the file (cdk deploy STACK --outputs-file FILE)`,
    );
  const stack = (stacks[0] ?? entries[0])?.[1];
  if (!stack || typeof stack !== 'object')
    throw new OperatorUsageError(`${file} is not a CDK outputs file ({"<stack>": {"<output>": "<value>"}})`);
  const vars: Record<string, string> = {};
  for (const [output, variable] of Object.entries(OUTPUTS)) {
    const v = (stack as Record<string, unknown>)[output];
    if (typeof v === 'string') vars[variable] = v;
  }
  // Another JSON file (the paging config, swapped with it on the command line) named nothing, and each command then
  // asked for the outputs file it had been given.
  if (Object.keys(vars).length === 0)
    throw new OperatorUsageError(
      `${file} names none of the stack's outputs (PagesTopicArn, TokensTableName, ...): give the file cdk deploy --outputs-file wrote (or crs serve --backend aws --outputs)`,
    );
  return vars;
}

/** The variables: flags first, then the environment, then the outputs file. */
export function operatorVariables(
  outputsFile: string | undefined,
  env: NodeJS.ProcessEnv,
  flags: Record<string, string | undefined> = {},
): Record<string, string> {
  const vars: Record<string, string> = outputsFile ? readOutputs(outputsFile) : {};
  for (const name of Object.values(OUTPUTS)) if (env[name]) vars[name] = env[name]!;
  for (const [name, value] of Object.entries(flags)) if (value) vars[name] = value;
  return vars;
}

export function need(vars: Record<string, string>, name: string, flag?: string): string {
  const v = vars[name];
  if (!v)
    throw new OperatorUsageError(
      `no ${name}: ${flag ? `pass --${flag} NAME, ` : ''}set ${name}, or give the stack's outputs with --outputs FILE`,
    );
  return v;
}

export interface OperatorPaging extends AwsPaging {
  /** The state table, always given here: a patient's silence is refused for a patient never graded. */
  states: DynamoStateStore;
  /** The last `crs restore --backend aws` (readRestore), read once (undefined: none). */
  restoredAt: () => Promise<number | undefined>;
  close(): void;
}

/**
 * The pager as the functions run it, with the operator's credentials (for silences: they release held pages). Every
 * name and the region are checked before any call. `aws`: the clients' settings, when the caller resolved them.
 */
export async function operatorPaging(
  vars: Record<string, string>,
  config: GradingConfig,
  aws?: { region: string },
): Promise<OperatorPaging> {
  const names = {
    ackSecretArn: need(vars, ENV.ackSecretArn),
    ackBaseUrl: need(vars, ENV.ackBaseUrl),
    pagesTable: need(vars, ENV.pagesTable),
    auditTable: need(vars, ENV.auditTable),
    stateTable: need(vars, ENV.stateTable),
    topicArn: need(vars, ENV.topicArn),
    escalationQueueUrl: need(vars, ENV.escalationQueueUrl),
  };
  const settings = aws ?? (await operatorAws());
  const clients = {
    dynamodb: new DynamoDBClient(settings),
    sns: new SNSClient(settings),
    sqs: new SQSClient(settings),
    secrets: new SecretsManagerClient(settings),
  };
  try {
    const { ackSecretArn, ...tables } = names;
    const ackSecret = await readAckSecret(clients.secrets, ackSecretArn);
    // The teams the functions are told have no endpoint: a silence ended or a parked send retried here sets their
    // pages aside as the functions do (until 2026-12-07 it published them to a topic nobody of theirs read).
    const paging = awsPaging({ config, ackSecret, ...tables, ...teamsWithoutEndpoints(vars) }, clients);
    const { states } = paging;
    if (!states) throw new Error('the operator pager is built with the state table');
    let restore: Promise<number | undefined> | undefined;
    const restoredAt = () => (restore ??= readRestore(clients.dynamodb, tables.stateTable).then((r) => r?.restoredAt));
    return { ...paging, states, restoredAt, close: () => Object.values(clients).forEach((c) => c.destroy()) };
  } catch (err) {
    Object.values(clients).forEach((c) => c.destroy());
    throw err;
  }
}

/**
 * `crs audit export --backend aws`: the audit table and the seen-messages table, read with Query only, and the
 * patient's state item (its pending messages' assessments), read with GetItem.
 */
export async function auditSource(
  o: Record<string, string | boolean | undefined>,
): Promise<{ log: DynamoAuditLog; close(): void; where: string }> {
  const flag = (name: string) => (typeof o[name] === 'string' ? (o[name] as string) : undefined);
  const vars = operatorVariables(flag('outputs'), process.env, {
    [ENV.auditTable]: flag('table'),
    [ENV.seenTable]: flag('seen-table'),
    [ENV.stateTable]: flag('state-table'),
  });
  const audit = need(vars, ENV.auditTable, 'table');
  const seenTable = need(vars, ENV.seenTable, 'seen-table');
  const stateTable = need(vars, ENV.stateTable, 'state-table');
  const client = new DynamoDBClient(await operatorAws());
  return {
    log: new DynamoAuditLog(client, audit, Date.now, { seenTable, stateTable }),
    close: () => client.destroy(),
    where: `DynamoDB tables ${audit}, ${seenTable} and ${stateTable}`,
  };
}
