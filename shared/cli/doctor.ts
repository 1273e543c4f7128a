// `crs doctor --backend aws`: can a deployment reach people right now? What SNS, CloudWatch and DynamoDB say,
// read with the operator's credentials:
// - each team's subscriptions and their state: confirmed, waiting for confirmation (an email or HTTPS endpoint
//   that receives nothing until someone confirms it), or a phone that answered STOP (SNS sends it no SMS); with
//   the deploy's paging config (--paging), the endpoints that are gone (an unsubscribe click removes one without
//   telling anyone), and the subscriptions that are not in it (an endpoint removed from the config but left
//   subscribed by hand still gets patients' pages); each subscription's redrive policy (to the stack's
//   UndeliveredPages queue) and, for HTTPS, its delivery policy, and with --paging its filter policy, as the stack
//   gives them (one re-made by hand may lack them);
// - the operators' endpoints (the alarm topic's subscriptions) in the same way: their state, with --paging the
//   config's alarm endpoints that are gone, and their redrive policy (to UndeliveredAlarms) and HTTPS delivery policy;
// - the alarms in ALARM (those that notify the stack's alarm topic);
// - when the ingest, grade and escalate functions last ran (Lambda's own Invocations metric), and how many
//   patients are enrolled, with the newest monitor reading;
// - the device tokens (the token table) that expired or expire within 14 days, by id and device, as `crs token list`
//   warns of them (shared/app/token-expiry.ts): an expired one refuses its device (a problem), one ending soon will;
// - the account's SMS settings that CloudFormation cannot set (type, spend limit, sender ID, sandbox);
// - with --test-page TEAM, a test page through the real path (the pages topic, the team's filter policies, every
//   endpoint of the team), marked as a test in every protocol's text and never graded.
// Exit status: 0 when nothing is wrong, 1 when something is (a team nobody receives, an alarm firing, a device's
// token expired, ...), 2 for a usage error. Warnings (a token expiring within 14 days, ...) do not change it.
import {
  CloudWatchClient,
  GetMetricDataCommand,
  paginateDescribeAlarms,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  CheckIfPhoneNumberIsOptedOutCommand,
  GetSMSAttributesCommand,
  GetSMSSandboxAccountStatusCommand,
  GetSubscriptionAttributesCommand,
  PublishCommand,
  SNSClient,
  paginateListSubscriptionsByTopic,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FEED_INDEX_STEP_MS } from '#adapters/aws/dynamo-state-store.ts';
import { DynamoTokenStore } from '#adapters/aws/dynamo-token-store.ts';
import { ENV } from '#adapters/aws/env.ts';
import { isFromAws } from '#adapters/aws/outage.ts';
import { HTTPS_HEALTHY_RETRY_POLICY } from '#adapters/aws/sns-delivery.ts';
import { testPagePublishInput } from '#adapters/aws/sns-page-sender.ts';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { tokenExpired } from '#app/auth.ts';
import {
  EXPIRY_WARNING_DAYS,
  expiryFindingText,
  expiryFindings,
  refuses,
  type ExpiryFinding,
} from '#app/token-expiry.ts';
import { DEFAULT_CONFIG, pagedTeams, type GradingConfig } from '#domain/config.ts';
import { quoted } from '#domain/printable.ts';
import { endpointKey, endpointShown, PAGE_TEAMS, type PageTeam } from '#domain/paging.ts';
import {
  pagesSubscriptions,
  parsePagingConfig,
  wardLimitedTeamWarning,
  type PagingConfig,
} from '#domain/paging-endpoints.ts';
import { OPERATOR_ENV, OUTPUTS, OperatorUsageError, need, operatorAws, operatorVariables } from './aws-operator.ts';
import { inline, shown, parseFlags } from './flags.ts';
import { thisRelease } from '#app/release.ts';

export const DOCTOR_USAGE = `  crs doctor --backend aws [--outputs FILE] [--paging FILE] [--config FILE] [--test-page TEAM] [--json]
      whether pages reach people: each team's subscriptions (confirmed, pending confirmation, SMS opted out, their
      redrive and HTTPS delivery policies; with --paging, the deploy's paging config, the endpoints that are gone,
      those subscribed that it does not have and each subscription's filter policy; with --config, the deploy's
      gradingConfig: a team it pages nobody at needs no endpoint), the operators' alarm endpoints (the same checks),
      the alarms in ALARM, when ingest, grade
      and escalate last ran, enrolled patients, device tokens expired (a problem) or expiring within 14 days (a
      warning), the account's SMS settings; --test-page TEAM publishes a test page
      to TEAM's endpoints through the pages topic (marked as a test, never graded). Names from the stack's outputs
      (cdk deploy --outputs-file FILE, or crs serve --backend aws --outputs FILE) or CRS_* variables; AWS_REGION,
      credentials and AWS_ENDPOINT_URL as for the AWS CLI. --json: the report as one JSON object (problems and
      warnings among its keys), for a script. Exit 0: nothing wrong; 1: something is (listed); 2: a usage error.
`;

export type SubscriptionState = 'confirmed' | 'pending-confirmation' | 'opted-out';

export interface SubscriptionStatus {
  protocol: string;
  endpoint: string;
  state: SubscriptionState;
  /** Ward-limited endpoints: the wards whose pages they get. */
  wards?: string[];
  /** Kind-limited endpoints (an SMS number with `smsKinds`): the kinds of page they get. */
  kinds?: string[];
}

export interface DoctorReport {
  pagesTopicArn: string;
  /** False when the pages topic could not be read (a problem says why): its teams are not known, not unreceived. */
  pagesTopicRead: boolean;
  teams: Record<PageTeam, SubscriptionStatus[]>;
  /** Pending subscriptions no team can be told for (SNS shows nothing of them but protocol and endpoint). */
  unassigned: SubscriptionStatus[];
  /** Endpoints the paging config has that SNS does not (with --paging); `alarms`: an operators' endpoint. */
  missing: { team: PageTeam | 'alarms'; protocol: string; endpoint: string }[];
  /**
   * Pages subscriptions the paging config does not have (with --paging): their teams (from the filter policy; none:
   * every team's) and the subscription, to unsubscribe it.
   */
  notInConfig: { teams: PageTeam[]; protocol: string; endpoint: string; subscriptionArn: string }[];
  /** The alarm topic's subscriptions (the operators' endpoints); null when the alarm topic is not known. */
  alarmEndpoints: SubscriptionStatus[] | null;
  alarms: { watched: number; inAlarm: { name: string; since: string; reason: string }[] } | null;
  /** Seconds since the start of the minute in which each function last ran; null: not in the last 3 hours. */
  lastRuns: Record<'ingest' | 'grade' | 'escalate', number | null> | null;
  patients: { enrolled: number; newestReadingSecondsAgo: number | null } | null;
  /**
   * The token table (TokensTableName): how many tokens are active (not revoked, not expired) and those that expired
   * or expire within 14 days (never a token or its hash). Null when no table is named or it could not be read.
   */
  tokens: { table: string; active: number; findings: ExpiryFinding[] } | null;
  sms: { type: string | null; monthlySpendLimitUsd: string | null; senderId: string | null; inSandbox: boolean | null };
  testPage?: { team: PageTeam; testId: string; messageId: string; endpoints: number };
  /** Teams the deployment's configuration (--config; the defaults without it) pages nobody at: no endpoint needed. */
  unpaged: PageTeam[];
  /**
   * The release the stack deployed (its `Release` output; null: not given, or a stack from before 2026-12-07) and
   * this crs's: the operator commands read and write the stack's tables as their own release does.
   */
  release: { stack: string | null; crs: string };
  problems: string[];
  warnings: string[];
}

export interface DoctorClients {
  sns: SNSClient;
  cloudwatch: CloudWatchClient;
  dynamodb: DynamoDBClient;
  /** The dead-letter queues the outputs name: whether they are there (GetQueueUrl, GetQueueAttributes). */
  sqs: SQSClient;
}

export interface DoctorOptions {
  /** Endpoints per team as the deploy's paging config has them. */
  expected?: PagingConfig['teams'];
  /** The operators' endpoints as the deploy's paging config has them (its `alarms`). */
  expectedAlarms?: PagingConfig['alarms'];
  testPage?: PageTeam;
  now: number;
  /**
   * The deployment's configuration (`-c gradingConfig`, given to doctor as `--config`): a team its routing and alert
   * teams leave out needs no endpoint. The defaults page every team.
   */
  config?: GradingConfig;
  /** This crs's release: thisRelease() when not given. */
  release?: string;
}

/** The escalate schedule runs every minute; this long without a run means ladders are not escalating. */
export const ESCALATE_STALE_SECONDS = 5 * 60;
/** Patients are enrolled and nothing was graded for this long: the feed has stopped somewhere. */
export const INGEST_STALE_SECONDS = 15 * 60;
const WINDOW_SECONDS = 3 * 3600;

// On the one line of its finding: an SDK error can run over two (moto's HTML answer to the SMS sandbox request). An
// answer the SDK could not read (an HTML page: moto's for a request it does not implement, a proxy's) is said with
// its HTTP status, without the SDK's advice to "inspect the hidden field {error}.$response", which a command's user
// cannot (until 2026-12-07).
const DESERIALIZATION = /\s*Deserialization error: to see the raw response[\s\S]*$/;
const errorText = (err: unknown) => {
  const e = err as Error & { $metadata?: { httpStatusCode?: number } };
  if (!DESERIALIZATION.test(e.message ?? '')) return inline(`${e.name}: ${e.message}`);
  const status = e.$metadata?.httpStatusCode;
  return inline(
    `${status ? `HTTP ${status}, ` : ''}an answer that is not from AWS, or that the SDK could not read: ${e.message.replace(DESERIALIZATION, '')}`,
  );
};
/** Where an error was thrown: its stack's frames (after its first line, the message errorText says). */
const stackOf = (err: unknown) =>
  ((err as Error)?.stack ?? '')
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .join('\n');

const OUTPUT_OF: Record<string, string> = Object.fromEntries(Object.entries(OUTPUTS).map(([o, v]) => [v, o]));
/** Why a function's name may be wrong when CloudWatch has no run of it. */
const NO_DATA = 'CloudWatch has no data for one that does not exist';
const NO_SUCH_FUNCTION = `no function has that name (${NO_DATA}): check the name`;

/** Where a name came from, in a problem: its variable, or the stack output that gives it. */
const source = (variable: string) => `${variable}, ${OUTPUT_OF[variable]} in the stack's outputs`;

/**
 * One read of what the outputs name (a topic, the alarms, the functions' metrics, a table): one it cannot do (a
 * mistyped output, another stack's, no access) is a problem naming the resource, where its name came from and the
 * error, and the rest of the report goes on. Until 2026-12-06 a wrong PagesTopicArn ended the run on
 * `crs doctor: NotFoundException: Topic does not exist`, naming nothing, with no report. Undefined when it failed.
 * Only what AWS or the way to it answered (isFromAws) is such a problem; anything else is thrown.
 */
async function attempt<T>(
  report: DoctorReport,
  what: string,
  from: string,
  unknown: string,
  run: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    // An error of crs's own (a TypeError, an assertion) is no unreadable resource: it ends the run (2026-12-07).
    if (!isFromAws(err)) throw err;
    report.problems.push(`could not ${what} (${from}: ${errorText(err)}): ${unknown}`);
    return undefined;
  }
}

/** A subscription SNS gave the attributes of: what its policies are checked from. */
interface Listed {
  arn: string;
  protocol: string;
  endpoint: string;
  /** Whose it is, in a problem: a pages subscription's teams, or `alarms` (an operators' endpoint). */
  owner: string;
  attributes: Record<string, string>;
  state: SubscriptionState;
}
type PagesListed = Listed & { teams: PageTeam[] };
/** A subscription waiting for confirmation: SNS lists it without an ARN (and so without attributes). */
type Unconfirmed = SubscriptionStatus & { arn?: undefined };

/**
 * A topic's subscriptions as SNS lists them: each confirmed one (with an ARN) with its attributes and state, each
 * one still waiting for confirmation (no ARN, so no attributes yet) with its protocol and endpoint only.
 */
async function topicSubscriptions(sns: SNSClient, topicArn: string): Promise<(Omit<Listed, 'owner'> | Unconfirmed)[]> {
  const out: (Omit<Listed, 'owner'> | Unconfirmed)[] = [];
  for await (const page of paginateListSubscriptionsByTopic({ client: sns }, { TopicArn: topicArn })) {
    for (const s of page.Subscriptions ?? []) {
      // SNS lists an https endpoint with its password masked; masked here too, whatever lists it (moto does not).
      const base = { protocol: s.Protocol ?? '?', endpoint: endpointShown(s.Endpoint ?? '?') };
      if (!s.SubscriptionArn?.startsWith('arn:')) {
        out.push({ ...base, state: 'pending-confirmation' });
        continue;
      }
      const a =
        (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: s.SubscriptionArn }))).Attributes ?? {};
      let state: SubscriptionState = a.PendingConfirmation === 'true' ? 'pending-confirmation' : 'confirmed';
      if (state === 'confirmed' && base.protocol === 'sms') {
        const opted = await sns.send(new CheckIfPhoneNumberIsOptedOutCommand({ phoneNumber: base.endpoint }));
        if (opted.isOptedOut) state = 'opted-out';
      }
      out.push({ arn: s.SubscriptionArn, ...base, attributes: a, state });
    }
  }
  return out;
}

/** The pages topic's subscriptions, by team (their filter policies), and the wards each team's endpoints take. */
async function subscriptions(
  sns: SNSClient,
  topicArn: string,
  report: DoctorReport,
  listed: PagesListed[],
): Promise<Map<PageTeam, Set<string>>> {
  const wardsOf = new Map<PageTeam, Set<string>>();
  for (const s of await topicSubscriptions(sns, topicArn)) {
    const base = { protocol: s.protocol, endpoint: s.endpoint };
    if (s.arn === undefined) {
      report.unassigned.push({ ...base, state: s.state });
      continue;
    }
    const policy = s.attributes.FilterPolicy ? (JSON.parse(s.attributes.FilterPolicy) as Record<string, unknown>) : {};
    const teams = (Array.isArray(policy.teams) ? policy.teams : []).filter((t): t is PageTeam =>
      PAGE_TEAMS.includes(t as PageTeam),
    );
    listed.push({ ...s, teams, owner: teams.join(', ') });
    const wards = Array.isArray(policy.ward)
      ? policy.ward.filter((w): w is string => typeof w === 'string')
      : undefined;
    const kinds = Array.isArray(policy.kind)
      ? policy.kind.filter((k): k is string => typeof k === 'string' && k !== 'test')
      : undefined;
    const status: SubscriptionStatus = {
      ...base,
      state: s.state,
      ...(wards ? { wards } : {}),
      ...(kinds ? { kinds } : {}),
    };
    if (teams.length === 0)
      report.warnings.push(
        `${base.protocol} ${base.endpoint} is subscribed to the pages topic without a team filter: it gets every page of every team`,
      );
    for (const team of teams) {
      report.teams[team].push(status);
      if (wards) for (const w of wards) (wardsOf.get(team) ?? wardsOf.set(team, new Set()).get(team)!).add(w);
    }
  }
  return wardsOf;
}

/**
 * The runbook's row of an alarm (docs/runbook.md names each by its id, `MessagesDlqDepth`): its name without the
 * deployed stack's prefix (`CrsAlerting-`) or an emulated run's (`crs-local-`, `<prefix>-`). Until 2026-12-07 doctor
 * said "see its row" of `crs-local-MessagesDlqDepth`, a name no row has. None for a name not ending in an id.
 */
export const runbookRow = (alarmName: string): string | undefined => /-([A-Z][A-Za-z0-9]*)$/.exec(alarmName)?.[1];

async function alarms(
  cloudwatch: CloudWatchClient,
  alarmTopicArn: string,
): Promise<NonNullable<DoctorReport['alarms']>> {
  const out: NonNullable<DoctorReport['alarms']> = { watched: 0, inAlarm: [] };
  for await (const page of paginateDescribeAlarms({ client: cloudwatch }, { ActionPrefix: alarmTopicArn })) {
    for (const a of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
      if (!(a.AlarmActions ?? []).includes(alarmTopicArn)) continue;
      out.watched++;
      if (a.StateValue === 'ALARM')
        out.inAlarm.push({
          name: a.AlarmName ?? '?',
          since: a.StateUpdatedTimestamp?.toISOString() ?? '?',
          reason: a.StateReason ?? '',
        });
    }
  }
  out.inAlarm.sort((x, y) => x.name.localeCompare(y.name));
  return out;
}

async function lastRuns(
  cloudwatch: CloudWatchClient,
  names: Record<'ingest' | 'grade' | 'escalate', string>,
  now: number,
): Promise<NonNullable<DoctorReport['lastRuns']>> {
  const roles = Object.keys(names) as (keyof typeof names)[];
  const queries: MetricDataQuery[] = roles.map((role) => ({
    Id: role,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/Lambda',
        MetricName: 'Invocations',
        Dimensions: [{ Name: 'FunctionName', Value: names[role] }],
      },
      Period: 60,
      Stat: 'Sum',
    },
  }));
  const out = await cloudwatch.send(
    // Whole minutes, as Lambda sums them.
    new GetMetricDataCommand({
      MetricDataQueries: queries,
      StartTime: new Date(Math.floor(now / 60_000) * 60_000 - WINDOW_SECONDS * 1000),
      EndTime: new Date(Math.ceil((now + 1) / 60_000) * 60_000),
      ScanBy: 'TimestampDescending',
    }),
  );
  const runs = { ingest: null, grade: null, escalate: null } as Record<keyof typeof names, number | null>;
  for (const r of out.MetricDataResults ?? []) {
    const role = r.Id as keyof typeof names;
    const latest = (r.Timestamps ?? [])
      .map((t, i) => [t.getTime(), r.Values?.[i] ?? 0] as const)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[0] - a[0])[0];
    runs[role] = latest ? Math.max(0, Math.round((now - latest[0]) / 1000)) : null;
  }
  return runs;
}

async function patients(
  dynamodb: DynamoDBClient,
  stateTable: string,
  now: number,
): Promise<NonNullable<DoctorReport['patients']>> {
  let enrolled = 0;
  let newest: number | null = null;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await dynamodb.send(
      new QueryCommand({
        TableName: stateTable,
        IndexName: STATE_TABLE.feedIndex,
        KeyConditionExpression: '#shard = :feed',
        ExpressionAttributeNames: { '#shard': STATE_TABLE.feedShardAttribute },
        ExpressionAttributeValues: { ':feed': { S: STATE_TABLE.feedShard } },
        ...(start ? { ExclusiveStartKey: start as never } : {}),
      }),
    );
    for (const item of out.Items ?? []) {
      enrolled++;
      const since = Number(item[STATE_TABLE.feedSinceAttribute]?.N);
      if (Number.isFinite(since)) newest = Math.max(newest ?? since, since);
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return { enrolled, newestReadingSecondsAgo: newest === null ? null : Math.round((now - newest) / 1000) };
}

/**
 * The device tokens that expired or expire soon, as `crs token list` warns of them (one rule: expiryFindings): an
 * expired one, or one whose expiry cannot be read (its own field, as in the list), is a problem (its device is
 * refused), one expiring a warning (the device is still taken; a scheduled doctor that pages on exit 1 pages once it
 * has expired). A table it cannot read is a problem: a scheduled doctor would
 * otherwise pass while tokens run out unseen.
 */
async function deviceTokens(
  dynamodb: DynamoDBClient,
  table: string | undefined,
  now: number,
  report: DoctorReport,
): Promise<void> {
  if (!table) {
    report.warnings.push(
      `no ${ENV.tokensTable} (TokensTableName in the stack's outputs): device tokens' expiry not checked`,
    );
    return;
  }
  const at = new Date(now);
  const tokens = await attempt(
    report,
    `read the device tokens in table ${table}`,
    source(ENV.tokensTable),
    "whether a device's token expired or is about to is not known",
    () => new DynamoTokenStore(dynamodb, table).list(),
  );
  if (!tokens) return;
  const findings = expiryFindings(tokens, at);
  const active = tokens.filter((t) => !t.revokedAt && !tokenExpired(t, at)).length;
  report.tokens = { table, active, findings };
  const where = ` --backend aws --table ${table}`;
  for (const f of findings) (refuses(f) ? report.problems : report.warnings).push(expiryFindingText(f, where));
}

async function smsSettings(sns: SNSClient, report: DoctorReport): Promise<void> {
  try {
    const a = (await sns.send(new GetSMSAttributesCommand({}))).attributes ?? {};
    report.sms.type = a.DefaultSMSType ?? null;
    report.sms.monthlySpendLimitUsd = a.MonthlySpendLimit ?? null;
    report.sms.senderId = a.DefaultSenderID ?? null;
  } catch (err) {
    if (!isFromAws(err)) throw err;
    report.warnings.push(`could not read the account's SMS settings (${errorText(err)})`);
  }
  try {
    report.sms.inSandbox = (await sns.send(new GetSMSSandboxAccountStatusCommand({}))).IsInSandbox ?? null;
  } catch (err) {
    if (!isFromAws(err)) throw err;
    report.warnings.push(`could not tell whether the account is in the SMS sandbox (${errorText(err)})`);
  }
}

const GONE = 'see docs/runbook.md, "A subscription is gone"';
const shellQuoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const parsed = (json: string | undefined): unknown => {
  if (json === undefined || json === '') return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
};

/** The same filter policy: the same attributes, each with the same values (SNS's string allowlists, in any order). */
function sameFilter(got: unknown, want: Record<string, string[]>): boolean {
  if (!got || typeof got !== 'object' || Array.isArray(got)) return false;
  const g = got as Record<string, unknown>;
  const keys = Object.keys(want);
  if (Object.keys(g).length !== keys.length) return false;
  return keys.every((k) => {
    const v = g[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return false;
    const a = [...new Set(v as string[])].sort();
    const b = [...new Set(want[k])].sort();
    return a.length === b.length && a.every((x, i) => x === b[i]);
  });
}

/** The template's retries (HTTPS_HEALTHY_RETRY_POLICY): a number SNS's defaults give when absent, only when 0. */
function sameRetries(got: unknown): boolean {
  const h = (got as { healthyRetryPolicy?: Record<string, unknown> } | undefined)?.healthyRetryPolicy;
  if (!h || typeof h !== 'object') return false;
  return Object.entries(HTTPS_HEALTHY_RETRY_POLICY).every(([k, v]) =>
    typeof v === 'string' ? String(h[k] ?? '').toLowerCase() === v : (h[k] ?? 0) === v,
  );
}

/** A topic's dead-letter queue: where the stack has each of its subscriptions redrive what SNS cannot deliver. */
interface DeadLetters {
  /** The queue as the stack names it; its depth alarm is `<queue>Depth`. */
  queue: 'UndeliveredPages' | 'UndeliveredAlarms';
  /** The stack output with its ARN, and the variable that stands for it. */
  output: 'UndeliveredPagesArn' | 'UndeliveredAlarmsArn';
  variable: string;
  /** What SNS delivers to the topic's endpoints, in a problem: with "a" and with "the". */
  a: string;
  the: string;
  /** The topic's subscriptions, in the warning when the queue is not known. */
  subscriptions: string;
}
const PAGES_DEAD_LETTERS: DeadLetters = {
  queue: 'UndeliveredPages',
  output: 'UndeliveredPagesArn',
  variable: OPERATOR_ENV.undeliveredPagesArn,
  a: 'a page',
  the: 'the page',
  subscriptions: 'each subscription',
};
const ALARMS_DEAD_LETTERS: DeadLetters = {
  queue: 'UndeliveredAlarms',
  output: 'UndeliveredAlarmsArn',
  variable: OPERATOR_ENV.undeliveredAlarmsArn,
  a: 'an alarm notification',
  the: 'the notification',
  subscriptions: 'each alarm subscription',
};

/** The dead-letter queue the outputs name (`named`), and its ARN when SQS has a queue of that ARN (`found`). */
interface DeadLetterQueue {
  named: string | undefined;
  found: string | undefined;
}

const SQS_ARN = /^arn:aws[a-z-]*:sqs:[a-z0-9-]+:(\d{12}):([\w-]{1,80}(?:\.fifo)?)$/;

/**
 * Whether the topic's dead-letter queue the outputs name is there: SQS's queue of that name and account, whose ARN
 * must be the one named (another region's is another queue). One that is not, or cannot be read, is one problem
 * naming the ARN and its output, and no subscription is compared with it: until 2026-12-07 a mistyped
 * UndeliveredPagesArn (or a deleted queue) had every subscription "redriven" to a queue other than it.
 */
async function deadLetterQueue(
  sqs: SQSClient,
  dead: DeadLetters,
  vars: Record<string, string>,
  report: DoctorReport,
): Promise<DeadLetterQueue> {
  const named = vars[dead.variable];
  if (!named) return { named, found: undefined };
  const from = source(dead.variable);
  const unchecked = `${dead.subscriptions}'s redrive policy not checked against it`;
  const arn = SQS_ARN.exec(named);
  if (!arn) {
    report.problems.push(
      `${quoted(named)} (${from}) is no SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME): ${unchecked}`,
    );
    return { named, found: undefined };
  }
  const there = await attempt(report, `read the ${dead.queue} queue ${named}`, from, unchecked, async () => {
    try {
      const url = await sqs.send(new GetQueueUrlCommand({ QueueName: arn[2], QueueOwnerAWSAccountId: arn[1] }));
      const got = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url.QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      return got.Attributes?.QueueArn === named;
    } catch (err) {
      // The SDK names the error QueueDoesNotExist however SQS says it: its JSON `__type`, or the query-compatible
      // code AWS.SimpleQueueService.NonExistentQueue (header x-amzn-query-error, also set as `Code`), is mapped
      // to that class; no answer gives the code without the name (@aws-sdk/client-sqs 3.1175, checked 2026-12-07).
      if (err instanceof Error && err.name === 'QueueDoesNotExist') return false;
      throw err;
    }
  });
  if (there === false)
    report.problems.push(
      `no queue ${named}: the ${dead.queue} queue named by ${from}, does not exist (a mistyped output, another stack's, or the queue deleted): ${unchecked}`,
    );
  return { named, found: there ? named : undefined };
}

/**
 * Each subscription of a topic with the policies the stack gives it (infra/stack.ts for the pages topic,
 * infra/alarms.ts for the alarm topic): the redrive policy to the topic's dead-letter queue (without it what SNS
 * cannot deliver is dropped, and the queue's depth alarm stays quiet), an HTTPS endpoint's delivery policy (else
 * SNS's 3 retries), and where given (the pages topic with the paging config) the filter policy of each endpoint.
 * One re-made by hand (docs/runbook.md, "A subscription is gone") may lack any of them. Each problem says how to
 * set the policy in place.
 */
function policyProblems(
  listed: Listed[],
  dead: DeadLetters,
  queue: DeadLetterQueue,
  filters: Map<string, Record<string, string[]>> | undefined,
  report: DoctorReport,
): void {
  // Compared with the queue only when it is there: a mistyped output blamed every subscription (2026-12-07).
  const dlqArn = queue.found;
  if (!queue.named && listed.length > 0)
    report.warnings.push(
      `no ${dead.variable} (${dead.output} in the stack's outputs): ${dead.subscriptions}'s redrive policy checked for a queue, not for the stack's`,
    );
  for (const s of listed) {
    const who = `${s.owner ? `${s.owner}: ` : ''}${s.protocol} ${endpointShown(s.endpoint)}`;
    const fix = (attribute: string, value: unknown) =>
      `${GONE}, or set it in place: aws sns set-subscription-attributes --subscription-arn ${s.arn} --attribute-name ${attribute} --attribute-value ${shellQuoted(JSON.stringify(value))}`;
    const redrive = parsed(s.attributes.RedrivePolicy) as { deadLetterTargetArn?: unknown } | undefined;
    const target = typeof redrive?.deadLetterTargetArn === 'string' ? redrive.deadLetterTargetArn : undefined;
    const redriveFix = fix('RedrivePolicy', { deadLetterTargetArn: dlqArn ?? `<${dead.output}>` });
    if (!target)
      report.problems.push(
        `${who} has no redrive policy: ${dead.a} SNS cannot deliver to it is dropped, not kept in ${dead.queue}, and ${dead.queue}Depth stays quiet: ${redriveFix}`,
      );
    else if (dlqArn && target !== dlqArn)
      report.problems.push(
        `${who} has a redrive policy to ${target}, not to ${dead.queue} (${dlqArn}): ${dead.a} SNS cannot deliver to it is not kept there, and ${dead.queue}Depth stays quiet: ${redriveFix}`,
      );
    if (s.protocol === 'https') {
      const delivery = parsed(s.attributes.DeliveryPolicy);
      const deliveryFix = fix('DeliveryPolicy', { healthyRetryPolicy: HTTPS_HEALTHY_RETRY_POLICY });
      if (delivery === undefined)
        report.problems.push(
          `${who} has no delivery policy: SNS retries it 3 times, 20 s apart, not ${HTTPS_HEALTHY_RETRY_POLICY.numRetries} times over about ten minutes, before ${dead.the} is undeliverable: ${deliveryFix}`,
        );
      else if (!sameRetries(delivery))
        report.problems.push(
          `${who} has the delivery policy ${JSON.stringify(delivery)}, not the template's ${JSON.stringify({ healthyRetryPolicy: HTTPS_HEALTHY_RETRY_POLICY })}: ${deliveryFix}`,
        );
    }
    const want = filters?.get(endpointKey(s.protocol, endpointShown(s.endpoint)));
    if (want) {
      const got = parsed(s.attributes.FilterPolicy);
      const scope = s.attributes.FilterPolicyScope ?? 'MessageAttributes';
      if (!sameFilter(got, want) || scope !== 'MessageAttributes')
        report.problems.push(
          `${who} has ${got === undefined ? 'no filter policy' : `the filter policy ${JSON.stringify(got)}${scope === 'MessageAttributes' ? '' : ` (on the ${scope})`}`}, not the template's ${JSON.stringify(want)}: it gets pages that are not its own, or misses some that are: ${fix('FilterPolicy', want)}`,
        );
    }
  }
}

/** The protocols of the paging config's endpoints: the only ones the stack subscribes. */
const CONFIG_PROTOCOLS = ['email', 'sms', 'https'] as const;

/**
 * The endpoints of a paging config's entry (a team's, or its `alarms`) that SNS does not have, by their protocol and
 * endpoint as SNS lists them (an email address in another letter case is the same mailbox, subscribed once, as first
 * spelled; an https URL with its password masked).
 */
function gone(
  endpoints: PagingConfig['alarms'],
  subscribed: { protocol: string; endpoint: string }[],
): { protocol: string; endpoint: string }[] {
  const have = new Set(subscribed.map((s) => endpointKey(s.protocol, endpointShown(s.endpoint))));
  return CONFIG_PROTOCOLS.flatMap((protocol) =>
    endpoints[protocol]
      .map((endpoint) => ({ protocol, endpoint: endpointShown(endpoint) }))
      .filter((e) => !have.has(endpointKey(e.protocol, e.endpoint))),
  );
}

/**
 * The operators' endpoints: the alarm topic's subscriptions (infra/alarms.ts), each in the state SNS gives it, with
 * the paging config's `alarms` the ones that are gone, and each one's redrive policy (to UndeliveredAlarms) and HTTPS
 * delivery policy as for the pages topic. Nobody confirmed is a warning, as the synth's (the doctor itself reads
 * the alarms' states).
 */
async function operatorEndpoints(
  { sns, sqs }: Pick<DoctorClients, 'sns' | 'sqs'>,
  alarmTopicArn: string,
  vars: Record<string, string>,
  expected: PagingConfig['alarms'] | undefined,
  report: DoctorReport,
): Promise<void> {
  const all = await topicSubscriptions(sns, alarmTopicArn);
  const endpoints = all.map(({ protocol, endpoint, state }) => ({ protocol, endpoint, state }));
  report.alarmEndpoints = endpoints;
  for (const s of endpoints) {
    if (s.state === 'pending-confirmation')
      report.problems.push(
        `alarms: ${s.protocol} ${s.endpoint} has not confirmed its subscription: it receives no alarm notifications until it does`,
      );
    if (s.state === 'opted-out')
      report.problems.push(
        `alarms: ${s.endpoint} answered STOP: SNS sends it no SMS, no alarm notifications (opt it back in: aws sns opt-in-phone-number --phone-number ${s.endpoint})`,
      );
  }
  if (expected)
    for (const m of gone(expected, endpoints)) {
      report.missing.push({ team: 'alarms', ...m });
      report.problems.push(
        `alarms: ${m.protocol} ${m.endpoint} is in the paging config but not subscribed to the alarm topic (unsubscribed, or deleted): it gets no alarm notifications: see docs/runbook.md, "A subscription is gone"`,
      );
    }
  if (!endpoints.some((s) => s.state === 'confirmed'))
    report.warnings.push(
      'nobody receives the alarm notifications (no confirmed endpoint of the alarm topic): set alarms in the paging config, or run crs doctor on a schedule that tells the operators',
    );
  const listed = all.flatMap((s) => (s.arn === undefined ? [] : [{ ...s, owner: 'alarms' }]));
  policyProblems(
    listed,
    ALARMS_DEAD_LETTERS,
    await deadLetterQueue(sqs, ALARMS_DEAD_LETTERS, vars, report),
    undefined,
    report,
  );
}

/**
 * What the pages topic's subscriptions say: each team's endpoints unconfirmed or opted out, a team nobody receives,
 * with the paging config the endpoints gone and those it does not have, and each subscription's policies.
 */
function pagesFindings(report: DoctorReport, listed: PagesListed[], queue: DeadLetterQueue, o: DoctorOptions): void {
  // Endpoints of the paging config that SNS no longer has (a pending one is listed by endpoint, without its team),
  // and the subscriptions it does not have: an endpoint removed from the config but left subscribed, or subscribed
  // by hand, gets patients' pages still.
  const filters = o.expected ? new Map<string, Record<string, string[]>>() : undefined;
  if (o.expected) {
    for (const team of PAGE_TEAMS) {
      const e = o.expected[team];
      if (e)
        for (const m of gone(e, [...report.teams[team], ...report.unassigned])) report.missing.push({ team, ...m });
    }
    for (const x of pagesSubscriptions({ teams: o.expected }))
      filters!.set(endpointKey(x.protocol, endpointShown(x.endpoint)), x.filterPolicy);
    for (const s of listed) {
      if (filters!.has(endpointKey(s.protocol, s.endpoint))) continue;
      if ((CONFIG_PROTOCOLS as readonly string[]).includes(s.protocol))
        report.notInConfig.push({ teams: s.teams, protocol: s.protocol, endpoint: s.endpoint, subscriptionArn: s.arn });
      else
        report.warnings.push(
          `${s.protocol} ${s.endpoint} is subscribed to the pages topic, and the stack subscribes only the paging config's email, SMS and HTTPS endpoints: it gets pages (crs serve --backend aws subscribes a queue per team in their place); if it is not yours: aws sns unsubscribe --subscription-arn ${s.arn}`,
        );
    }
  }

  for (const team of PAGE_TEAMS) {
    const subs = report.teams[team];
    for (const s of subs) {
      if (s.state === 'pending-confirmation')
        report.problems.push(
          `${team}: ${s.protocol} ${s.endpoint} has not confirmed its subscription: it receives no pages until it does`,
        );
      if (s.state === 'opted-out')
        report.problems.push(
          `${team}: ${s.endpoint} answered STOP: SNS sends it no SMS (opt it back in: aws sns opt-in-phone-number --phone-number ${s.endpoint})`,
        );
    }
    const confirmed = subs.filter((s) => s.state === 'confirmed');
    if (confirmed.length === 0 && !report.unpaged.includes(team))
      report.problems.push(`${team}: nobody receives this team's pages (no confirmed endpoint)`);
    else if (!report.unpaged.includes(team) && confirmed.every((s) => s.wards))
      report.warnings.push(
        wardLimitedTeamWarning(
          team,
          confirmed.flatMap((s) => s.wards ?? []),
        ),
      );
  }
  for (const s of report.unassigned)
    report.problems.push(
      `${s.protocol} ${s.endpoint} has not confirmed its subscription: it receives no pages until it does`,
    );
  for (const m of report.missing.filter((x) => x.team !== 'alarms')) {
    report.problems.push(
      `${m.team}: ${m.protocol} ${m.endpoint} is in the paging config but not subscribed (unsubscribed, or deleted): see docs/runbook.md, "A subscription is gone"`,
    );
  }
  for (const x of report.notInConfig)
    report.problems.push(
      `${x.teams.length > 0 ? `${x.teams.join(', ')}: ` : ''}${x.protocol} ${x.endpoint} is subscribed but not in the paging config (removed from it, or subscribed by hand): it gets ${x.teams.length > 0 ? 'their' : "every team's"} patients' pages all the same; unsubscribe it: aws sns unsubscribe --subscription-arn ${x.subscriptionArn}`,
    );
  policyProblems(listed, PAGES_DEAD_LETTERS, queue, filters, report);
}

/** Everything the doctor looks at, and what it finds wrong. */
export async function examine(
  clients: DoctorClients,
  vars: Record<string, string>,
  o: DoctorOptions,
): Promise<DoctorReport> {
  const pagesTopicArn = need(vars, ENV.topicArn);
  const report: DoctorReport = {
    pagesTopicArn,
    pagesTopicRead: false,
    teams: Object.fromEntries(PAGE_TEAMS.map((t) => [t, []])) as unknown as Record<PageTeam, SubscriptionStatus[]>,
    unassigned: [],
    missing: [],
    notInConfig: [],
    alarmEndpoints: null,
    unpaged: PAGE_TEAMS.filter((t) => !pagedTeams(o.config ?? DEFAULT_CONFIG).has(t)),
    alarms: null,
    lastRuns: null,
    patients: null,
    tokens: null,
    sms: { type: null, monthlySpendLimitUsd: null, senderId: null, inSandbox: null },
    release: { stack: vars[ENV.release] ?? null, crs: o.release ?? thisRelease() },
    problems: [],
    warnings: [],
  };
  if (report.release.stack !== null && report.release.stack !== report.release.crs)
    report.warnings.push(
      `the stack runs release ${report.release.stack}, this crs is release ${report.release.crs}: run the operator commands (crs token, silence, outbox, restore) from a checkout of the stack's release`,
    );
  const listed: PagesListed[] = [];
  const wards = await attempt(
    report,
    `read the pages topic ${pagesTopicArn}`,
    source(ENV.topicArn),
    "who receives each team's pages is not known",
    () => subscriptions(clients.sns, pagesTopicArn, report, listed),
  );
  report.pagesTopicRead = wards !== undefined;
  if (wards) pagesFindings(report, listed, await deadLetterQueue(clients.sqs, PAGES_DEAD_LETTERS, vars, report), o);

  const alarmTopicArn = vars[OPERATOR_ENV.alarmTopicArn];
  if (alarmTopicArn) {
    const from = source(OPERATOR_ENV.alarmTopicArn);
    await attempt(
      report,
      `read the alarm topic ${alarmTopicArn}`,
      from,
      'who receives the alarm notifications is not known',
      () => operatorEndpoints(clients, alarmTopicArn, vars, o.expectedAlarms, report),
    );
    report.alarms =
      (await attempt(
        report,
        `read the alarms that notify ${alarmTopicArn}`,
        from,
        'whether an alarm is firing is not known',
        () => alarms(clients.cloudwatch, alarmTopicArn),
      )) ?? null;
    if (report.alarms?.watched === 0)
      report.problems.push(`no alarm notifies ${alarmTopicArn}: nothing tells the operators when something fails`);
    for (const a of report.alarms?.inAlarm ?? []) {
      const row = runbookRow(a.name);
      report.problems.push(
        `alarm ${a.name} is in ALARM since ${a.since}: see ${row ? `the ${row} row` : 'its row'} in docs/runbook.md`,
      );
    }
  } else {
    report.warnings.push(
      `no ${OPERATOR_ENV.alarmTopicArn} (AlarmTopicArn in the stack's outputs): alarms and the operators' endpoints not checked`,
    );
  }

  const names = {
    ingest: vars[OPERATOR_ENV.ingestFunction],
    grade: vars[OPERATOR_ENV.gradeFunction],
    escalate: vars[OPERATOR_ENV.escalateFunction],
  };
  if (names.ingest && names.grade && names.escalate) {
    report.lastRuns =
      (await attempt(
        report,
        `read when the functions ${names.ingest}, ${names.grade} and ${names.escalate} last ran`,
        "IngestFunctionName, GradeFunctionName, EscalateFunctionName in the stack's outputs",
        'whether they run, and so whether pages escalate, is not known',
        () => lastRuns(clients.cloudwatch, names as Record<keyof typeof names, string>, o.now),
      )) ?? null;
    const e = report.lastRuns?.escalate;
    if (report.lastRuns && (e === null || e! > ESCALATE_STALE_SECONDS)) {
      // Named, with its output: CloudWatch answers a name no function has with no data, as it does a function that
      // never ran (until 2026-12-06 a mistyped name read as a stopped schedule; GetFunction is not among our reads).
      report.problems.push(
        `the escalate function ${names.escalate} (${source(OPERATOR_ENV.escalateFunction)}) has not run for ${e === null ? 'over 3 hours' : `${Math.round(e! / 60)} minutes`}: its minute schedule is not firing, so unacknowledged pages do not escalate${e === null ? `; or ${NO_SUCH_FUNCTION}` : ''}`,
      );
    }
  } else {
    report.warnings.push(
      "no function names (IngestFunctionName, GradeFunctionName, EscalateFunctionName in the stack's outputs): last runs not checked",
    );
  }

  const stateTable = vars[ENV.stateTable];
  if (stateTable) {
    report.patients =
      (await attempt(
        report,
        `read the enrolled patients in table ${stateTable}`,
        source(ENV.stateTable),
        'whether patients are enrolled and their monitors send is not known',
        () => patients(clients.dynamodb, stateTable, o.now),
      )) ?? null;
    const g = report.lastRuns?.grade;
    if (
      report.patients &&
      report.patients.enrolled > 0 &&
      report.lastRuns &&
      (g === null || g! > INGEST_STALE_SECONDS)
    ) {
      report.warnings.push(
        `${report.patients.enrolled} patients are enrolled and nothing was graded for ${g === null ? 'over 3 hours' : `${Math.round(g! / 60)} minutes`}: are the device gateways sending?${g === null ? ` Or no function has the name ${names.grade} (${source(OPERATOR_ENV.gradeFunction)}; ${NO_DATA}): check the name` : ''}`,
      );
    }
  }

  await deviceTokens(clients.dynamodb, vars[ENV.tokensTable], o.now, report);

  await smsSettings(clients.sns, report);
  const smsInUse =
    PAGE_TEAMS.some((t) => report.teams[t].some((s) => s.protocol === 'sms')) ||
    report.unassigned.some((s) => s.protocol === 'sms');
  if (smsInUse) {
    if (report.sms.type !== 'Transactional')
      report.problems.push(
        `SMS pages go as ${report.sms.type ?? 'Promotional (the default)'}, not Transactional: carriers may delay or drop them (docs/runbook.md, SMS)`,
      );
    const limit = report.sms.monthlySpendLimitUsd === null ? null : Number(report.sms.monthlySpendLimitUsd);
    if (limit === null || limit <= 1)
      report.problems.push(
        `the account's SMS spend limit is ${limit === null ? 'not set (new accounts: 1 USD)' : `${limit} USD`}: SNS stops sending SMS pages once it is spent (docs/runbook.md, SMS)`,
      );
    if (!report.sms.senderId)
      report.warnings.push(
        'no default sender ID: where carriers allow one, SMS pages come from a shared number (docs/runbook.md, SMS)',
      );
    if (report.sms.inSandbox === true)
      report.problems.push('the account is in the SMS sandbox: only verified phone numbers receive SMS pages');
  }

  if (o.testPage && !wards)
    // Its wards (and the endpoints to count) come from the topic's subscriptions: sent without them, it went past the
    // team's ward-limited endpoints, and the report said none should receive it.
    report.problems.push(
      `the test page was not sent: who receives ${o.testPage}'s pages, and on which wards, is not known (the pages topic could not be read)`,
    );
  else if (o.testPage) {
    const team = o.testPage;
    const testId = randomUUID();
    const out = await attempt(
      report,
      `publish the test page to the pages topic ${pagesTopicArn}`,
      source(ENV.topicArn),
      `nobody of ${team} was sent it`,
      () =>
        clients.sns.send(
          new PublishCommand(
            testPagePublishInput(
              pagesTopicArn,
              team,
              [...(wards?.get(team) ?? [])].sort(),
              testId,
              o.now,
              (o.config ?? DEFAULT_CONFIG).site.timeZone,
            ),
          ),
        ),
    );
    if (out)
      report.testPage = {
        team,
        testId,
        messageId: out.MessageId ?? '?',
        endpoints: report.teams[team].filter((s) => s.state === 'confirmed').length,
      };
  }
  return report;
}

/** An age to the minute (Lambda's metrics are one-minute sums: the run was at most this long ago). */
const ranAgo = (s: number | null) =>
  s === null
    ? 'not in the last 3 hours'
    : s <= 60
      ? 'in the last minute'
      : s < 7200
        ? `in the last ${Math.ceil(s / 60)} minutes`
        : `about ${Math.round(s / 3600)} h ago`;
const ago = (s: number) =>
  s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;

export function formatReport(r: DoctorReport): string {
  const lines = [
    `Release: the stack ${r.release.stack ?? 'not said (no Release output given)'}; this crs ${r.release.crs}`,
    `Pages topic ${r.pagesTopicArn}${r.pagesTopicRead ? '' : ': could not be read (see the problems)'}`,
  ];
  for (const team of r.pagesTopicRead ? PAGE_TEAMS : []) {
    const subs = r.teams[team];
    lines.push(
      `  ${team}: ${subs.length === 0 ? 'no endpoint' : `${subs.length} endpoint${subs.length === 1 ? '' : 's'}`}${r.unpaged.includes(team) ? ` (the configuration pages nobody at ${team})` : ''}`,
    );
    for (const s of subs)
      lines.push(
        `    ${s.state.padEnd(20)} ${s.protocol.padEnd(6)} ${s.endpoint}${s.wards ? ` (wards ${s.wards.join(', ')})` : ''}${s.kinds ? ` (only ${s.kinds.join(', ')})` : ''}`,
      );
  }
  for (const s of r.unassigned) lines.push(`  (team unknown until confirmed) ${s.state} ${s.protocol} ${s.endpoint}`);
  for (const m of r.missing.filter((x) => x.team !== 'alarms'))
    lines.push(`  ${m.team}: MISSING ${m.protocol} ${m.endpoint} (in the paging config, not subscribed)`);
  for (const x of r.notInConfig)
    lines.push(
      `  ${x.teams.join(', ') || 'every team'}: NOT IN THE CONFIG ${x.protocol} ${x.endpoint} (subscribed, not in the paging config)`,
    );
  if (r.alarmEndpoints) {
    lines.push(
      `Alarm topic: ${r.alarmEndpoints.length === 0 ? 'no endpoint' : `${r.alarmEndpoints.length} endpoint${r.alarmEndpoints.length === 1 ? '' : 's'}`}`,
    );
    for (const s of r.alarmEndpoints) lines.push(`    ${s.state.padEnd(20)} ${s.protocol.padEnd(6)} ${s.endpoint}`);
    for (const m of r.missing.filter((x) => x.team === 'alarms'))
      lines.push(`    MISSING ${m.protocol} ${m.endpoint} (in the paging config, not subscribed)`);
  }
  if (r.alarms) {
    lines.push(`Alarms: ${r.alarms.watched} notify the alarm topic; ${r.alarms.inAlarm.length} in ALARM`);
    for (const a of r.alarms.inAlarm) lines.push(`  ALARM ${a.name} since ${a.since}: ${a.reason}`);
  }
  if (r.lastRuns)
    lines.push(
      `Last runs: ingest ${ranAgo(r.lastRuns.ingest)}; grade ${ranAgo(r.lastRuns.grade)}; escalate ${ranAgo(r.lastRuns.escalate)}`,
    );
  if (r.patients)
    lines.push(
      `Patients: ${r.patients.enrolled} enrolled${r.patients.newestReadingSecondsAgo === null ? '' : `; newest monitor reading ${ago(r.patients.newestReadingSecondsAgo)} (to within ${FEED_INDEX_STEP_MS / 60_000} minutes)`}`,
    );
  if (r.tokens) {
    const { findings } = r.tokens;
    const unreadable = findings.filter((f) => f.expiryUnreadable).length;
    const expired = findings.filter((f) => f.expired).length;
    const expiring = findings.length - expired - unreadable;
    // An expiry that cannot be read is said as such (2026-12-06), only when there is one.
    const cannotRead = unreadable > 0 ? `, ${unreadable} with an expiry that cannot be read (devices refused)` : '';
    lines.push(
      `Device tokens (table ${inline(r.tokens.table)}): ${r.tokens.active} active; ${findings.length === 0 ? `none expired or expiring within ${EXPIRY_WARNING_DAYS} days` : `${expired} expired (devices refused)${cannotRead}, ${expiring} expiring within ${EXPIRY_WARNING_DAYS} days`}`,
    );
    for (const f of findings)
      lines.push(
        f.expiryUnreadable
          ? `  UNREADABLE ${inline(f.tokenId)}  device ${inline(f.deviceId)}  expiry ${shown(f.expiresAt)}`
          : `  ${f.expired ? 'EXPIRED ' : 'expiring'} ${inline(f.tokenId)}  device ${inline(f.deviceId)}  at ${inline(f.expiresAt)}${f.replacedBy ? ` (replaced by ${inline(f.replacedBy)})` : ''}`,
      );
  }
  const sms = r.sms;
  lines.push(
    `SMS (account settings): type ${sms.type ?? 'not set (Promotional)'}; spend limit ${sms.monthlySpendLimitUsd === null ? 'not set' : `${sms.monthlySpendLimitUsd} USD a month`}; sender ID ${sms.senderId ?? 'none'}; sandbox ${sms.inSandbox === null ? 'unknown' : sms.inSandbox ? 'yes' : 'no'}`,
  );
  if (r.testPage)
    lines.push(
      `Test page ${r.testPage.testId} published to ${r.testPage.team} (SNS message ${r.testPage.messageId}); ${r.testPage.endpoints} confirmed endpoint(s) should receive it`,
    );
  lines.push(r.problems.length === 0 ? 'No problems found.' : `Problems (${r.problems.length}):`);
  for (const p of r.problems) lines.push(`  - ${p}`);
  if (r.warnings.length > 0) lines.push(`Warnings (${r.warnings.length}):`);
  for (const w of r.warnings) lines.push(`  - ${w}`);
  return `${lines.join('\n')}\n`;
}

type LoadConfig = (file: string | undefined, scheme: string | undefined) => GradingConfig;

/** The flags `crs doctor` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const DOCTOR_OPTIONS = {
  backend: { type: 'string' },
  outputs: { type: 'string' },
  paging: { type: 'string' },
  config: { type: 'string' },
  'test-page': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function doctorCommand(args: string[], loadConfig: LoadConfig): Promise<number> {
  let values;
  try {
    ({ values } = parseFlags({
      args,
      options: DOCTOR_OPTIONS,
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`usage:\n${DOCTOR_USAGE}`);
    return 0;
  }
  if (values.backend !== 'aws')
    return usage(
      'crs doctor checks an AWS deployment: give --backend aws (the embedded server shows its health on its board and at /api/health; crs serve --heartbeat-url tells an external monitor while it is healthy)',
    );
  const team = values['test-page'];
  if (team !== undefined && !PAGE_TEAMS.includes(team as PageTeam))
    return usage(`--test-page must be one of ${PAGE_TEAMS.join(', ')} (got ${shown(team)})`);
  let expected: DoctorOptions['expected'];
  let expectedAlarms: DoctorOptions['expectedAlarms'];
  let config: GradingConfig | undefined;
  let vars: Record<string, string>;
  let aws: { region: string };
  try {
    if (values.config !== undefined) config = loadConfig(values.config, undefined);
    vars = operatorVariables(values.outputs, process.env);
    need(vars, ENV.topicArn);
    aws = await operatorAws();
    if (values.paging !== undefined) {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(values.paging, 'utf8'));
      } catch (err) {
        throw new OperatorUsageError(`cannot read the paging config ${values.paging}: ${(err as Error).message}`);
      }
      ({ teams: expected, alarms: expectedAlarms } = parsePagingConfig(json, values.paging));
    }
  } catch (err) {
    if (err instanceof OperatorUsageError || /invalid (paging )?config|cannot read config/.test((err as Error).message))
      return usage((err as Error).message);
    throw err;
  }
  const clients: DoctorClients = {
    sns: new SNSClient(aws),
    cloudwatch: new CloudWatchClient(aws),
    dynamodb: new DynamoDBClient(aws),
    sqs: new SQSClient(aws),
  };
  try {
    const report = await examine(clients, vars, {
      ...(expected ? { expected } : {}),
      ...(expectedAlarms ? { expectedAlarms } : {}),
      ...(config ? { config } : {}),
      ...(team ? { testPage: team as PageTeam } : {}),
      now: Date.now(),
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.problems.length === 0 ? 0 : 1;
  } catch (err) {
    // One of crs's own (no AWS answer) is a defect to report: with where it was thrown, and said to be no finding.
    const own = isFromAws(err) ? '' : ` (an error of crs doctor itself, not a finding: no report)\n${stackOf(err)}`;
    process.stderr.write(`crs doctor: ${errorText(err)}${own}\n`);
    return 1;
  } finally {
    for (const c of Object.values(clients)) c.destroy();
  }
}

function usage(message: string): number {
  process.stderr.write(`crs doctor: ${message}\nusage:\n${DOCTOR_USAGE}`);
  return 2;
}
