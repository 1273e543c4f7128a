// Provisions the data plane of the synthesized stack on an AWS-compatible endpoint (moto, LocalStack, AWS): the
// queues, tables (with their streams and indexes), the pages topic, the acknowledge-link secret, and one queue
// per team subscribed to the topic with the team's filter policy as the stack has it. Each resource is created from its CloudFormation properties, with the
// Refs and GetAtts among them resolved to what was created. Names are derived from a prefix, so that runs can sit
// side by side on one endpoint and be deleted afterwards; creating again with the same prefix reuses what exists.
//
// The alarms are created too (CloudWatch), named `<prefix>-<alarm>` (the stack names them `<stack>-<alarm>`), watching the metrics of what is provisioned
// here (a function's metrics under `<prefix>-<function>`, which the host publishes as Lambda would; an API's or a
// rule's under `<prefix>-<logical id>`), and notifying the alarm topic.
//
// Left out, as control plane or unreachable here: IAM roles and policies, queue and topic policies, log groups and
// their metric filters, backups, the trail, the API, the schedule rule and the Lambda functions themselves (the host
// runs the handlers and fires the schedule), and the customer managed KMS keys: queues use SQS-managed encryption, tables DynamoDB's
// default encryption, the topic the AWS-managed SNS key and the secret Secrets Manager's default key instead. Deletion protection and point-in-time recovery are not set, so a run can be removed.
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { randomInt } from 'node:crypto';
import {
  DeleteAlarmsCommand,
  PutMetricAlarmCommand,
  type CloudWatchClient,
  type PutMetricAlarmCommandInput,
} from '@aws-sdk/client-cloudwatch';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  SubscribeCommand,
  UnsubscribeCommand,
  type SNSClient,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { PAGE_TEAMS, type PageTeam as Team } from '#domain/paging.ts';
import type { CfnResource, FunctionRole, Synthesized } from './template.ts';
import { PREFIX_PATTERN } from './run-prefix.ts';

interface QueueInfo {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
  fifo: boolean;
  /** The queue's visibility timeout as made (the stack's, or `--visibility-timeout` for the grade queue). */
  visibilityTimeoutSeconds: number;
}

interface TableInfo {
  logicalId: string;
  name: string;
  arn: string;
  streamArn?: string;
}

interface TopicInfo {
  logicalId: string;
  name: string;
  arn: string;
}

interface AlarmInfo {
  logicalId: string;
  name: string;
}

interface SecretInfo {
  logicalId: string;
  name: string;
  arn: string;
}

export interface TeamQueue {
  team: Team;
  queue: QueueInfo;
  /** The stack's filter policy for this team's subscriptions. */
  filterPolicy: Record<string, unknown>;
  subscriptionArn: string;
}

export interface FunctionSpec {
  role: FunctionRole;
  logicalId: string;
  /** The variables the stack gives the function, resolved to the provisioned names: its CRS_* ones and those every function shares. */
  environment: Record<string, string>;
  /** The files shipped beside its handler (Synthesized.files). */
  files: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
  reservedConcurrency: number;
}

export interface SqsSourceSpec {
  role: FunctionRole;
  queue: QueueInfo;
  /** The mapping's maximum concurrency (ScalingConfig), if it sets one. */
  maxConcurrency?: number;
  batchSize: number;
  reportBatchItemFailures: boolean;
}

export interface StreamSourceSpec {
  table: TableInfo;
  streamArn: string;
  batchSize: number;
  bisectOnError: boolean;
  reportBatchItemFailures: boolean;
  /** -1 means until the record expires, as in Lambda. */
  maxRetryAttempts: number;
  maxRecordAgeSeconds: number;
  startingPosition: 'TRIM_HORIZON' | 'LATEST';
  filters: Record<string, unknown>[];
  onFailure?: QueueInfo;
}

export interface Provisioned {
  prefix: string;
  queues: QueueInfo[];
  tables: TableInfo[];
  topics: TopicInfo[];
  secrets: SecretInfo[];
  alarms: AlarmInfo[];
  /** The topic the alarms notify. */
  alarmTopicArn?: string;
  /** The pages topic's dead-letter queue (the stack's UndeliveredPagesArn output), for crs doctor. */
  undeliveredPagesArn?: string;
  /** The alarm topic's dead-letter queue (the stack's UndeliveredAlarmsArn output), for crs doctor. */
  undeliveredAlarmsArn?: string;
  /**
   * The stack's outputs only the runbook's AWS CLI steps use (2026-12-07; the run's outputs file left them out):
   * MessagesDlqArn (the redrive's source) and UndeliveredAlarmsQueueUrl (the alarm notifications not delivered).
   */
  messagesDlqArn?: string;
  undeliveredAlarmsQueueUrl?: string;
  teamQueues: TeamQueue[];
  functions: Record<FunctionRole, FunctionSpec>;
  gradeSource: SqsSourceSpec;
  /** The escalate function's timers queue. */
  escalateSource: SqsSourceSpec;
  notifySource: StreamSourceSpec;
  /** The API's route keys, e.g. "POST /v1/messages" or "GET /ack/{token}". */
  routes: string[];
  /** Which function each route reaches. */
  routeTargets: Record<string, FunctionRole>;
  /** The schedule rules: which function, how often (seconds). */
  schedules: { role: FunctionRole; everySeconds: number }[];
}

export interface AwsClients {
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  sns: SNSClient;
  secrets: SecretsManagerClient;
  cloudwatch: CloudWatchClient;
}

/** The local name of a function (its metrics' FunctionName), as the host runs it. */
export const localFunctionName = (prefix: string, role: FunctionRole) => `${prefix}-${role}`;

export interface ProvisionOptions {
  prefix: string;
  /** Overrides the visibility timeout (seconds) of the grade function's queue: retries come sooner in tests. */
  visibilityTimeoutSeconds?: number;
  /**
   * Function variables the host sets itself instead of resolving them from the template (the acknowledge links'
   * base URL, which is the API's URL and here the local front's).
   */
  hostVariables?: Record<string, string>;
}

/** The team queues' visibility timeout (seconds): they are the local host's own, standing in for the teams' phones. */
const TEAM_QUEUE_VISIBILITY_SECONDS = 5;

type Created = { ref: string; attrs: Record<string, string> };

export async function provision(
  synth: Synthesized,
  clients: AwsClients,
  options: ProvisionOptions,
): Promise<Provisioned> {
  const { prefix } = options;
  if (!PREFIX_PATTERN.test(prefix))
    throw new Error(`the prefix must be 1-40 characters of A-Z a-z 0-9 _ - (got "${prefix}")`);
  const resources = synth.template.Resources;
  const created = new Map<string, Promise<Created>>();
  const queues: QueueInfo[] = [];
  const tables: TableInfo[] = [];
  const topics: TopicInfo[] = [];
  const secrets: SecretInfo[] = [];

  const resource = (id: string): CfnResource => {
    const r = resources[id];
    if (!r) throw new Error(`the template has no resource ${id}`);
    return r;
  };
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const functionRole = (value: unknown): FunctionRole | undefined => {
    const id = (value as { Ref?: string })?.Ref;
    return (Object.keys(synth.functions) as FunctionRole[]).find((role) => synth.functions[role] === id);
  };

  // The grade function's queue, whose visibility timeout may be overridden.
  const gradeMapping = ofType('AWS::Lambda::EventSourceMapping').find(
    ([, r]) => functionRole(r.Properties?.FunctionName) === 'grade',
  );
  const gradeQueueId = (gradeMapping?.[1].Properties?.EventSourceArn as { 'Fn::GetAtt'?: [string, string] })?.[
    'Fn::GetAtt'
  ]?.[0];

  async function resolve(value: unknown): Promise<unknown> {
    if (Array.isArray(value)) return Promise.all(value.map(resolve));
    if (!value || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    if (typeof obj.Ref === 'string') {
      const pseudo: Record<string, string | undefined> = {
        'AWS::Partition': 'aws',
        'AWS::URLSuffix': 'amazonaws.com',
        'AWS::NoValue': undefined,
      };
      if (obj.Ref in pseudo) return pseudo[obj.Ref];
      return (await ensure(obj.Ref)).ref;
    }
    if (Array.isArray(obj['Fn::GetAtt'])) {
      const [id, attr] = obj['Fn::GetAtt'] as [string, string];
      const value = (await ensure(id)).attrs[attr];
      if (value === undefined) throw new Error(`${id} has no attribute ${attr} locally`);
      return value;
    }
    if (Array.isArray(obj['Fn::Join'])) {
      const [sep, parts] = obj['Fn::Join'] as [string, unknown[]];
      return ((await resolve(parts)) as unknown[]).join(sep);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = await resolve(v);
    return out;
  }

  function ensure(id: string): Promise<Created> {
    let p = created.get(id);
    if (!p) {
      const r = resource(id);
      if (r.Type === 'AWS::SQS::Queue') p = createQueue(id, r.Properties ?? {});
      else if (r.Type === 'AWS::DynamoDB::Table') p = createTable(id, r.Properties ?? {});
      else if (r.Type === 'AWS::SNS::Topic') p = createTopic(id, r.Properties ?? {});
      else if (r.Type === 'AWS::SecretsManager::Secret') p = createSecret(id, r.Properties ?? {});
      else throw new Error(`${id} (${r.Type}) is referenced by the data plane but is not provisioned locally`);
      created.set(id, p);
    }
    return p;
  }

  async function ensureQueue(name: string, attributes: Record<string, string>, logicalId: string): Promise<QueueInfo> {
    let url: string;
    try {
      url = (await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
    } catch (err) {
      // An earlier run made it with other attributes (e.g. another visibility timeout): reuse it, updated.
      if ((err as Error).name !== 'QueueAlreadyExists' && (err as Error).name !== 'QueueNameExists') throw err;
      url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
      const { FifoQueue: _fifo, ...mutable } = attributes;
      await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: mutable }));
    }
    const attrs = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn', 'VisibilityTimeout'] }),
    );
    return {
      logicalId,
      name,
      url,
      arn: attrs.Attributes!.QueueArn!,
      fifo: name.endsWith('.fifo'),
      visibilityTimeoutSeconds: Number(attrs.Attributes!.VisibilityTimeout ?? 30),
    };
  }

  async function createQueue(id: string, props: Record<string, unknown>): Promise<Created> {
    const fifo = String(props.FifoQueue) === 'true';
    const name = `${prefix}-${id}${fifo ? '.fifo' : ''}`;
    const attributes: Record<string, string> = {};
    for (const [key, raw] of Object.entries(props)) {
      if (key === 'QueueName' || key === 'Tags' || key.startsWith('Kms')) continue;
      const value = await resolve(raw);
      attributes[key] = typeof value === 'object' ? JSON.stringify(value) : String(value);
    }
    if (props.KmsMasterKeyId !== undefined) attributes.SqsManagedSseEnabled = 'true';
    if (id === gradeQueueId && options.visibilityTimeoutSeconds !== undefined)
      attributes.VisibilityTimeout = String(options.visibilityTimeoutSeconds);
    const q = await ensureQueue(name, attributes, id);
    queues.push(q);
    return { ref: q.url, attrs: { Arn: q.arn, QueueUrl: q.url, QueueName: q.name } };
  }

  async function createTable(id: string, props: Record<string, unknown>): Promise<Created> {
    const name = `${prefix}-${id}`;
    // Encryption with the stack's key, recovery, deletion protection and tags are left out (see the top).
    const {
      SSESpecification: _sse,
      PointInTimeRecoverySpecification: _pitr,
      DeletionProtectionEnabled: _dp,
      Tags: _tags,
      ...data
    } = props;
    // biome-ignore lint/suspicious/noExplicitAny: a CloudFormation property bag, typed by the SDK input it fills
    const p = (await resolve(data)) as Record<string, any>;
    const input: CreateTableCommandInput = {
      TableName: name,
      KeySchema: p.KeySchema,
      AttributeDefinitions: p.AttributeDefinitions,
      BillingMode: p.BillingMode ?? 'PROVISIONED',
      ...(p.ProvisionedThroughput ? { ProvisionedThroughput: p.ProvisionedThroughput } : {}),
      ...(p.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: p.GlobalSecondaryIndexes } : {}),
      ...(p.LocalSecondaryIndexes ? { LocalSecondaryIndexes: p.LocalSecondaryIndexes } : {}),
      ...(p.StreamSpecification
        ? { StreamSpecification: { StreamEnabled: true, StreamViewType: p.StreamSpecification.StreamViewType } }
        : {}),
    };
    try {
      await clients.dynamodb.send(new CreateTableCommand(input));
    } catch (err) {
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
    await waitUntilTableExists(
      { client: clients.dynamodb, maxWaitTime: 120, minDelay: 1, maxDelay: 5 },
      { TableName: name },
    );
    if (p.TimeToLiveSpecification?.Enabled) {
      try {
        await clients.dynamodb.send(
          new UpdateTimeToLiveCommand({
            TableName: name,
            TimeToLiveSpecification: { AttributeName: p.TimeToLiveSpecification.AttributeName, Enabled: true },
          }),
        );
      } catch (err) {
        // Already enabled by an earlier run.
        if ((err as Error).name !== 'ValidationException') throw err;
      }
    }
    const table = (await clients.dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table!;
    if (p.StreamSpecification && !table.LatestStreamArn)
      throw new Error(`table ${name} exists without the stream the stack gives it`);
    const info: TableInfo = {
      logicalId: id,
      name,
      arn: table.TableArn!,
      ...(table.LatestStreamArn ? { streamArn: table.LatestStreamArn } : {}),
    };
    tables.push(info);
    return { ref: name, attrs: { Arn: info.arn, ...(info.streamArn ? { StreamArn: info.streamArn } : {}) } };
  }

  async function createTopic(id: string, props: Record<string, unknown>): Promise<Created> {
    const fifo = String(props.FifoTopic) === 'true';
    const name = `${prefix}-${id}${fifo ? '.fifo' : ''}`;
    const attributes: Record<string, string> = {};
    if (typeof props.DisplayName === 'string') attributes.DisplayName = props.DisplayName;
    if (props.KmsMasterKeyId !== undefined) attributes.KmsMasterKeyId = 'alias/aws/sns';
    if (fifo) attributes.FifoTopic = 'true';
    const arn = (await clients.sns.send(new CreateTopicCommand({ Name: name, Attributes: attributes }))).TopicArn!;
    topics.push({ logicalId: id, name, arn });
    return { ref: arn, attrs: { TopicArn: arn, TopicName: name } };
  }

  async function createSecret(id: string, props: Record<string, unknown>): Promise<Created> {
    const name = `${prefix}-${id}`;
    const g = (props.GenerateSecretString ?? {}) as { PasswordLength?: number; ExcludePunctuation?: boolean };
    if (props.SecretString !== undefined || props.GenerateSecretString === undefined)
      throw new Error(`secret ${id}: only generated secrets are provisioned locally`);
    const alphabet = `ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789${g.ExcludePunctuation ? '' : '!#$%&()*+,-.:;<=>?@[]^_{|}~'}`;
    const value = Array.from({ length: g.PasswordLength ?? 32 }, () => alphabet[randomInt(alphabet.length)]).join('');
    let arn: string;
    try {
      arn = (
        await clients.secrets.send(
          new CreateSecretCommand({ Name: name, SecretString: value, Description: String(props.Description ?? '') }),
        )
      ).ARN!;
    } catch (err) {
      // An earlier run made it: keep its value, so that the links it signed stay valid across a restart.
      if ((err as Error).name !== 'ResourceExistsException') throw err;
      arn = (await clients.secrets.send(new DescribeSecretCommand({ SecretId: name }))).ARN!;
    }
    secrets.push({ logicalId: id, name, arn });
    return { ref: arn, attrs: {} };
  }

  // ---- The functions' environments (which creates the queues, tables, topic and secret they name).
  const functions = {} as Record<FunctionRole, FunctionSpec>;
  const variablesOf = (logicalId: string) =>
    ((resource(logicalId).Properties?.Environment as { Variables?: Record<string, unknown> })?.Variables ??
      {}) as Record<string, unknown>;
  // The functions share one process here: besides their own CRS_ variables, it takes what every function is given
  // alike (the log level), never what differs between them (the Powertools service name).
  const all = Object.values(synth.functions).map(variablesOf);
  const shared = Object.entries(all[0] ?? {}).filter(
    ([k, v]) => !k.startsWith('CRS_') && all.every((vars) => JSON.stringify(vars[k]) === JSON.stringify(v)),
  );
  for (const role of Object.keys(synth.functions) as FunctionRole[]) {
    const logicalId = synth.functions[role];
    const props = resource(logicalId).Properties ?? {};
    const environment: Record<string, string> = {};
    for (const [k, v] of [...Object.entries(variablesOf(logicalId)).filter(([k]) => k.startsWith('CRS_')), ...shared])
      environment[k] = options.hostVariables?.[k] ?? String(await resolve(v));
    functions[role] = {
      role,
      logicalId,
      environment,
      files: synth.files[role],
      timeoutSeconds: Number(props.Timeout ?? 3),
      memoryMb: Number(props.MemorySize ?? 128),
      reservedConcurrency: Number(props.ReservedConcurrentExecutions ?? 10),
    };
  }

  // ---- The event source mappings.
  const sqsSources: Partial<Record<FunctionRole, SqsSourceSpec>> = {};
  let notifySource: StreamSourceSpec | undefined;
  for (const [id, r] of ofType('AWS::Lambda::EventSourceMapping')) {
    const p = r.Properties ?? {};
    const role = functionRole(p.FunctionName);
    const source = (p.EventSourceArn as { 'Fn::GetAtt'?: [string, string] })?.['Fn::GetAtt'];
    if (!role || !source) throw new Error(`event source mapping ${id} is not understood by the local host`);
    const reportBatchItemFailures = ((p.FunctionResponseTypes as string[]) ?? []).includes('ReportBatchItemFailures');
    const filters = ((p.FilterCriteria as { Filters?: { Pattern: string }[] })?.Filters ?? []).map((f) =>
      JSON.parse(f.Pattern),
    ) as Record<string, unknown>[];
    const created = await ensure(source[0]);
    if (resource(source[0]).Type === 'AWS::SQS::Queue') {
      if (filters.length > 0)
        throw new Error(`event source mapping ${id}: SQS filters are not supported by the local host`);
      const queue = queues.find((q) => q.logicalId === source[0])!;
      if (sqsSources[role])
        throw new Error(`event source mapping ${id}: a second SQS source for ${role} is not expected`);
      const scaling = (p.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency;
      sqsSources[role] = {
        role,
        queue,
        batchSize: Number(p.BatchSize ?? 10),
        reportBatchItemFailures,
        ...(scaling ? { maxConcurrency: Number(scaling) } : {}),
      };
    } else {
      const table = tables.find((t) => t.logicalId === source[0])!;
      const destination = (p.DestinationConfig as { OnFailure?: { Destination?: unknown } })?.OnFailure?.Destination;
      const onFailureArn = destination === undefined ? undefined : String(await resolve(destination));
      const spec: StreamSourceSpec = {
        table,
        streamArn: created.attrs.StreamArn!,
        batchSize: Number(p.BatchSize ?? 100),
        bisectOnError: p.BisectBatchOnFunctionError === true,
        reportBatchItemFailures,
        maxRetryAttempts: Number(p.MaximumRetryAttempts ?? -1),
        maxRecordAgeSeconds: Number(p.MaximumRecordAgeInSeconds ?? -1),
        startingPosition: p.StartingPosition === 'LATEST' ? 'LATEST' : 'TRIM_HORIZON',
        filters,
        ...(onFailureArn ? { onFailure: queues.find((q) => q.arn === onFailureArn)! } : {}),
      };
      if (role === 'notify') notifySource = spec;
      else throw new Error(`event source mapping ${id}: a stream source for ${role} is not expected`);
    }
  }
  const gradeSource = sqsSources.grade;
  const escalateSource = sqsSources.escalate;
  if (!gradeSource || !escalateSource || !notifySource)
    throw new Error('the template lacks the grade, escalate or notify event source mapping');

  // ---- Every other queue, table and topic of the stack (dead-letter queues, the tokens table, the alarm topic).
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::SQS::Queue' || r.Type === 'AWS::DynamoDB::Table' || r.Type === 'AWS::SNS::Topic')
      await ensure(id);
  }

  // ---- The alarms, on the metrics of what runs here. A reference to what is not provisioned (a function, the
  // API, the rule) resolves to its local name.
  const alarms: AlarmInfo[] = [];
  let alarmTopicArn: string | undefined;
  const dataPlane = new Set([
    'AWS::SQS::Queue',
    'AWS::DynamoDB::Table',
    'AWS::SNS::Topic',
    'AWS::SecretsManager::Secret',
  ]);
  const localName = (id: string) => {
    const role = functionRole({ Ref: id });
    return role ? localFunctionName(prefix, role) : `${prefix}-${id}`;
  };
  const forAlarm = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(forAlarm);
    if (!value || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const target =
      typeof obj.Ref === 'string'
        ? obj.Ref
        : Array.isArray(obj['Fn::GetAtt'])
          ? (obj['Fn::GetAtt'] as string[])[0]!
          : undefined;
    if (target && resources[target] && !dataPlane.has(resources[target].Type)) return localName(target);
    if (target || obj['Fn::Join']) return value;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, forAlarm(v)]));
  };
  for (const [id, r] of ofType('AWS::CloudWatch::Alarm')) {
    // biome-ignore lint/suspicious/noExplicitAny: a CloudFormation property bag, typed by the SDK input it fills
    const { AlarmName: given, ...props } = (await resolve(forAlarm(r.Properties ?? {}))) as Record<string, any>;
    // "<stack>-<alarm>" becomes "<prefix>-<alarm>".
    const name = `${prefix}-${typeof given === 'string' && given.includes('-') ? given.slice(given.indexOf('-') + 1) : id}`;
    await clients.cloudwatch.send(
      new PutMetricAlarmCommand({ ...props, AlarmName: name } as PutMetricAlarmCommandInput),
    );
    alarmTopicArn ??= (props.AlarmActions as string[] | undefined)?.[0];
    alarms.push({ logicalId: id, name });
  }

  // ---- The schedules that invoke a function (fired by the host).
  const schedules: Provisioned['schedules'] = [];
  for (const [id, r] of ofType('AWS::Events::Rule')) {
    const expr = String(r.Properties?.ScheduleExpression ?? '');
    const rate = expr.match(/^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/);
    if (!rate) throw new Error(`schedule rule ${id}: ${JSON.stringify(expr)} is not understood by the local host`);
    const unit = { minute: 60, minutes: 60, hour: 3600, hours: 3600, day: 86_400, days: 86_400 }[rate[2]!]!;
    for (const t of (r.Properties?.Targets as { Arn?: unknown }[]) ?? []) {
      const arn = (t.Arn as { 'Fn::GetAtt'?: [string, string] })?.['Fn::GetAtt']?.[0];
      const role = (Object.keys(synth.functions) as FunctionRole[]).find((x) => synth.functions[x] === arn);
      if (!role) throw new Error(`schedule rule ${id}: a target that is not one of the functions`);
      schedules.push({ role, everySeconds: Number(rate[1]) * unit });
    }
  }

  // ---- One queue per team, subscribed to the pages topic with the team's filter policy as the stack has it.
  const pagesTopicArn = functions.notify.environment.CRS_PAGES_TOPIC_ARN;
  const pagesTopicId = topics.find((t) => t.arn === pagesTopicArn)?.logicalId;
  const policies = new Map<Team, { policy: Record<string, unknown>; props: Record<string, unknown> }>();
  for (const [, r] of ofType('AWS::SNS::Subscription')) {
    const p = r.Properties ?? {};
    if ((p.TopicArn as { Ref?: string })?.Ref !== pagesTopicId) continue;
    const policy = (typeof p.FilterPolicy === 'string' ? JSON.parse(p.FilterPolicy) : p.FilterPolicy) as
      | Record<string, unknown>
      | undefined;
    const teams = policy?.teams;
    const team = Array.isArray(teams) && teams.length === 1 ? (teams[0] as Team) : undefined;
    if (!team || !PAGE_TEAMS.includes(team))
      throw new Error('a pages subscription without a single-team filter policy is not understood by the local host');
    if (!policies.has(team)) policies.set(team, { policy: policy!, props: p });
  }
  const teamQueues: TeamQueue[] = [];
  for (const team of PAGE_TEAMS) {
    const found = policies.get(team);
    if (!found) continue;
    const name = `${prefix}-team-${team}`;
    const policyDoc = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: '*',
          Condition: { ArnEquals: { 'aws:SourceArn': pagesTopicArn } },
        },
      ],
    });
    // A receive whose answer never arrives (a host killed during it, a connection reset) leaves its page invisible
    // for the visibility timeout: 30 s by default. The printer prints each SNS delivery once (a repeat is dropped),
    // so a short timeout only brings such a page sooner.
    const queue = await ensureQueue(
      name,
      { Policy: policyDoc, VisibilityTimeout: String(TEAM_QUEUE_VISIBILITY_SECONDS) },
      `team-${team}`,
    );
    const attributes: Record<string, string> = {
      FilterPolicy: JSON.stringify(found.policy),
      RawMessageDelivery: 'false',
    };
    if (typeof found.props.FilterPolicyScope === 'string') attributes.FilterPolicyScope = found.props.FilterPolicyScope;
    if (found.props.RedrivePolicy) attributes.RedrivePolicy = JSON.stringify(await resolve(found.props.RedrivePolicy));
    const sub = await clients.sns.send(
      new SubscribeCommand({
        TopicArn: pagesTopicArn,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: attributes,
        ReturnSubscriptionArn: true,
      }),
    );
    teamQueues.push({ team, queue, filterPolicy: found.policy, subscriptionArn: sub.SubscriptionArn! });
  }

  // ---- The API's routes and the function behind each (route -> integration -> function).
  const routes: string[] = [];
  const routeTargets: Record<string, FunctionRole> = {};
  for (const [id, r] of ofType('AWS::ApiGatewayV2::Route')) {
    const key = String(r.Properties?.RouteKey);
    const target = (r.Properties?.Target as { 'Fn::Join'?: [string, unknown[]] })?.['Fn::Join']?.[1] ?? [];
    const integrationId = (
      target.find((x) => typeof x === 'object' && x !== null && 'Ref' in x) as { Ref?: string } | undefined
    )?.Ref;
    const uri = integrationId
      ? (resource(integrationId).Properties?.IntegrationUri as { 'Fn::GetAtt'?: [string, string] })
      : undefined;
    const role = (Object.keys(synth.functions) as FunctionRole[]).find(
      (x) => synth.functions[x] === uri?.['Fn::GetAtt']?.[0],
    );
    if (!role)
      throw new Error(`route ${id} (${key}) does not reach one of the functions in a way the local host understands`);
    routes.push(key);
    routeTargets[key] = role;
  }
  const output = async (name: string) => {
    const o = synth.template.Outputs?.[name];
    return o ? String(await resolve(o.Value)) : undefined;
  };
  const undeliveredPagesArn = await output('UndeliveredPagesArn');
  const undeliveredAlarmsArn = await output('UndeliveredAlarmsArn');
  const messagesDlqArn = await output('MessagesDlqArn');
  const undeliveredAlarmsQueueUrl = await output('UndeliveredAlarmsQueueUrl');
  return {
    prefix,
    queues,
    tables,
    topics,
    secrets,
    alarms,
    ...(alarmTopicArn ? { alarmTopicArn } : {}),
    ...(undeliveredPagesArn ? { undeliveredPagesArn } : {}),
    ...(undeliveredAlarmsArn ? { undeliveredAlarmsArn } : {}),
    ...(messagesDlqArn ? { messagesDlqArn } : {}),
    ...(undeliveredAlarmsQueueUrl ? { undeliveredAlarmsQueueUrl } : {}),
    teamQueues,
    functions,
    gradeSource,
    escalateSource,
    notifySource,
    routes,
    routeTargets,
    schedules,
  };
}

/** Deletes what provision() created (or found) for this prefix. */
export async function deprovision(p: Provisioned, clients: AwsClients): Promise<void> {
  const quietly = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      if (!/NotFound|NonExistent|ResourceNotFound/i.test((err as Error).name)) throw err;
    }
  };
  if (p.alarms.length > 0)
    await quietly(() => clients.cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: p.alarms.map((a) => a.name) })));
  for (const t of p.teamQueues)
    await quietly(() => clients.sns.send(new UnsubscribeCommand({ SubscriptionArn: t.subscriptionArn })));
  for (const t of p.topics) await quietly(() => clients.sns.send(new DeleteTopicCommand({ TopicArn: t.arn })));
  for (const q of [...p.queues, ...p.teamQueues.map((t) => t.queue)])
    await quietly(() => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: q.url })));
  for (const t of p.tables) await quietly(() => clients.dynamodb.send(new DeleteTableCommand({ TableName: t.name })));
  for (const x of p.secrets)
    await quietly(() =>
      clients.secrets.send(new DeleteSecretCommand({ SecretId: x.arn, ForceDeleteWithoutRecovery: true })),
    );
}
