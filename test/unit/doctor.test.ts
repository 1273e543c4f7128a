// crs doctor's findings from what AWS answers, where the emulator cannot answer it (it confirms every
// subscription at once and has no SMS sandbox): an email or HTTPS endpoint still waiting for confirmation, a team
// nobody receives, the account in the SMS sandbox, an escalate schedule that stopped, patients enrolled with
// nothing graded.
import { CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand, ResourceNotFoundException, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  CheckIfPhoneNumberIsOptedOutCommand,
  GetSMSAttributesCommand,
  GetSMSSandboxAccountStatusCommand,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  PublishCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, QueueDoesNotExist, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { AssertionError } from 'node:assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { doctorCommand, examine, formatReport } from '#cli/doctor.ts';
import { loadConfig } from '#cli/main.ts';
import { DEFAULT_CONFIG, configFor } from '#domain/config.ts';

const sns = mockClient(SNSClient);
const cloudwatch = mockClient(CloudWatchClient);
const dynamodb = mockClient(DynamoDBClient);
const sqs = mockClient(SQSClient);
afterAll(() => {
  sns.restore();
  cloudwatch.restore();
  dynamodb.restore();
  sqs.restore();
});
const clients = () => ({
  sns: new SNSClient({}),
  cloudwatch: new CloudWatchClient({}),
  dynamodb: new DynamoDBClient({}),
  sqs: new SQSClient({}),
});
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:CrsAlerting-Pages';
const ALARMS = 'arn:aws:sns:eu-west-1:123456789012:CrsAlerting-Alarms';
const NOW = Date.parse('2026-03-01T12:00:30Z');
const UNDELIVERED = 'arn:aws:sqs:eu-west-1:123456789012:CrsAlerting-UndeliveredPages1EA5B415';
const UNDELIVERED_ALARMS = 'arn:aws:sqs:eu-west-1:123456789012:CrsAlerting-UndeliveredAlarms7C1B44D2';
/** What the stack gives an HTTPS subscription, as SNS keeps it (CloudFormation passes the template's JSON). */
const HTTPS_DELIVERY = JSON.stringify({
  healthyRetryPolicy: {
    minDelayTarget: 1,
    maxDelayTarget: 60,
    numRetries: 20,
    numNoDelayRetries: 0,
    numMinDelayRetries: 3,
    numMaxDelayRetries: 8,
    backoffFunction: 'EXPONENTIAL',
  },
});
const vars = {
  CRS_PAGES_TOPIC_ARN: TOPIC,
  CRS_ALARM_TOPIC_ARN: ALARMS,
  CRS_INGEST_FUNCTION: 'ingest',
  CRS_GRADE_FUNCTION: 'grade',
  CRS_ESCALATE_FUNCTION: 'escalate',
  CRS_STATE_TABLE: 'state',
  CRS_TOKENS_TABLE: 'tokens',
  CRS_UNDELIVERED_PAGES_ARN: UNDELIVERED,
  CRS_UNDELIVERED_ALARMS_ARN: UNDELIVERED_ALARMS,
};
/**
 * An error as the SDK throws what a service answered: with its `$fault` and `$metadata` (the deserializer gives a
 * response it cannot parse its `$metadata` too). Only such errors, and the network's, are a resource it could not read.
 */
const awsError = (name: string, message: string, status = 400) =>
  Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
const sub = (team: string, protocol: string, endpoint: string, arn: string) => ({ team, protocol, endpoint, arn });
const SUBS = [
  sub('hematology', 'email', 'heme@hospital.example', `${TOPIC}:1`),
  sub('icu', 'https', 'https://icu.hospital.example/hook', `${TOPIC}:2`),
  sub('neurology', 'sms', '+15550100003', `${TOPIC}:3`),
  sub('bedside', 'email', 'h4-nurses@hospital.example', `${TOPIC}:4`),
];

/** The alarm topic's subscriptions (the operators' endpoints), each with the attributes infra/alarms.ts gives it. */
const alarmSubscriptions = (
  subs: { protocol: string; endpoint: string; arn: string; attributes?: Record<string, string> }[],
) => {
  sns.on(ListSubscriptionsByTopicCommand, { TopicArn: ALARMS }).resolves({
    Subscriptions: subs.map((s) => ({
      Protocol: s.protocol,
      Endpoint: s.endpoint,
      SubscriptionArn: s.arn,
      TopicArn: ALARMS,
    })),
  });
  for (const s of subs)
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: s.arn }).resolves({
      Attributes: s.attributes ?? {
        PendingConfirmation: 'false',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED_ALARMS }),
        ...(s.protocol === 'https' ? { DeliveryPolicy: HTTPS_DELIVERY } : {}),
      },
    });
};

/** The account's SQS queues, as GetQueueUrl (by name and owner) and GetQueueAttributes (QueueArn) answer them. */
const queuesAre = (arns: string[]) => {
  sqs.reset();
  sqs
    .on(GetQueueUrlCommand)
    .rejects(new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: {} }));
  for (const arn of arns) {
    const [, , , region, account, name] = arn.split(':');
    const url = `https://sqs.${region}.amazonaws.com/${account}/${name}`;
    sqs.on(GetQueueUrlCommand, { QueueName: name, QueueOwnerAWSAccountId: account }).resolves({ QueueUrl: url });
    sqs.on(GetQueueAttributesCommand, { QueueUrl: url }).resolves({ Attributes: { QueueArn: arn } });
  }
};

beforeEach(() => {
  for (const m of [sns, cloudwatch, dynamodb]) m.reset();
  queuesAre([UNDELIVERED, UNDELIVERED_ALARMS]);
  alarmSubscriptions([{ protocol: 'email', endpoint: 'platform-oncall@hospital.example', arn: `${ALARMS}:1` }]);
  sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({
    Subscriptions: [
      ...SUBS.map((s) => ({ Protocol: s.protocol, Endpoint: s.endpoint, SubscriptionArn: s.arn, TopicArn: TOPIC })),
      // Not confirmed yet: SNS lists it without an ARN.
      {
        Protocol: 'email',
        Endpoint: 'new-fellow@hospital.example',
        SubscriptionArn: 'PendingConfirmation',
        TopicArn: TOPIC,
      },
    ],
  });
  for (const s of SUBS) {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: s.arn }).resolves({
      Attributes: {
        FilterPolicy: JSON.stringify({ teams: [s.team] }),
        PendingConfirmation: s.protocol === 'https' ? 'true' : 'false',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
        ...(s.protocol === 'https' ? { DeliveryPolicy: HTTPS_DELIVERY } : {}),
      },
    });
  }
  sns.on(CheckIfPhoneNumberIsOptedOutCommand).resolves({ isOptedOut: false });
  sns
    .on(GetSMSAttributesCommand)
    .resolves({ attributes: { DefaultSMSType: 'Transactional', MonthlySpendLimit: '200', DefaultSenderID: 'CRS' } });
  sns.on(GetSMSSandboxAccountStatusCommand).resolves({ IsInSandbox: true });
  cloudwatch
    .on(DescribeAlarmsCommand)
    .resolves({ MetricAlarms: [{ AlarmName: 'CrsAlerting-Api5xx', StateValue: 'OK', AlarmActions: [ALARMS] }] });
  // ingest and grade ran 3 hours ago at most... not at all; escalate 20 minutes ago.
  cloudwatch.on(GetMetricDataCommand).resolves({
    MetricDataResults: [
      { Id: 'ingest', Timestamps: [], Values: [] },
      { Id: 'grade', Timestamps: [], Values: [] },
      {
        Id: 'escalate',
        Timestamps: [new Date(NOW - 20 * 60_000 - 30_000), new Date(NOW - 10 * 60_000 - 30_000)],
        Values: [1, 0],
      },
    ],
  });
  dynamodb.on(QueryCommand).resolves({ Items: [{ pk: { S: 'P-1' }, feedSince: { N: String(NOW - 3_600_000) } }] });
  dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({ Items: [] });
});

describe('crs doctor', () => {
  it('says which release the stack runs and warns when this crs is another (its commands act as their release)', async () => {
    const same = await examine(
      clients(),
      { ...vars, CRS_RELEASE: '2026-12-07 1c3511dd' },
      {
        now: NOW,
        release: '2026-12-07 1c3511dd',
      },
    );
    expect(same.release).toEqual({ stack: '2026-12-07 1c3511dd', crs: '2026-12-07 1c3511dd' });
    expect(same.warnings.join('\n')).not.toContain('release');
    expect(formatReport(same)).toContain('Release: the stack 2026-12-07 1c3511dd; this crs 2026-12-07 1c3511dd\n');
    const other = await examine(
      clients(),
      { ...vars, CRS_RELEASE: '2026-12-06 0a1b2c3d' },
      {
        now: NOW,
        release: '2026-12-07 1c3511dd',
      },
    );
    expect(other.warnings).toContain(
      "the stack runs release 2026-12-06 0a1b2c3d, this crs is release 2026-12-07 1c3511dd: run the operator commands (crs token, silence, outbox, restore) from a checkout of the stack's release",
    );
    // A stack from before 2026-12-07 has no Release output: said, not warned of.
    const before = await examine(clients(), vars, { now: NOW, release: '2026-12-07 1c3511dd' });
    expect(before.release.stack).toBeNull();
    expect(formatReport(before)).toContain('Release: the stack not said (no Release output given); this crs');
  });

  it('finds what keeps pages from people that the emulator cannot show', async () => {
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.teams.icu).toEqual([
      { protocol: 'https', endpoint: 'https://icu.hospital.example/hook', state: 'pending-confirmation' },
    ]);
    expect(r.unassigned).toEqual([
      { protocol: 'email', endpoint: 'new-fellow@hospital.example', state: 'pending-confirmation' },
    ]);
    expect(r.lastRuns).toEqual({ ingest: null, grade: null, escalate: 20 * 60 + 30 });
    expect(r.patients).toEqual({ enrolled: 1, newestReadingSecondsAgo: 3600 });
    expect(r.problems).toEqual([
      'icu: https https://icu.hospital.example/hook has not confirmed its subscription: it receives no pages until it does',
      "icu: nobody receives this team's pages (no confirmed endpoint)",
      "radiology: nobody receives this team's pages (no confirmed endpoint)",
      'email new-fellow@hospital.example has not confirmed its subscription: it receives no pages until it does',
      "the escalate function escalate (CRS_ESCALATE_FUNCTION, EscalateFunctionName in the stack's outputs) has not run for 21 minutes: its minute schedule is not firing, so unacknowledged pages do not escalate",
      'the account is in the SMS sandbox: only verified phone numbers receive SMS pages',
    ]);
    expect(r.warnings).toEqual([
      "1 patients are enrolled and nothing was graded for over 3 hours: are the device gateways sending? Or no function has the name grade (CRS_GRADE_FUNCTION, GradeFunctionName in the stack's outputs; CloudWatch has no data for one that does not exist): check the name",
    ]);
    // Only the alarms of this stack's topic are asked for.
    expect(cloudwatch.commandCalls(DescribeAlarmsCommand)[0]!.args[0].input).toMatchObject({ ActionPrefix: ALARMS });
    const text = formatReport(r);
    expect(text).toMatch(/pending-confirmation +https +https:\/\/icu\.hospital\.example\/hook/);
    expect(text).toContain(
      'Last runs: ingest not in the last 3 hours; grade not in the last 3 hours; escalate in the last 21 minutes',
    );
    expect(text).toContain('Problems (6):');
  });

  // A site that pages no radiologist (its routing leaves radiology out: docs/aws.md says to route a team's pages
  // elsewhere when the site has no such team) is deployed without radiology endpoints, as the synth allows: doctor
  // still said "radiology: nobody receives this team's pages" and exited 1 at every run, whatever else was right.
  it("with the deployment's configuration, finds nothing wrong in a team it pages nobody at", async () => {
    const icans = DEFAULT_CONFIG.routing.icans.map((teams) => teams.filter((t) => t !== 'radiology'));
    const r = await examine(clients(), vars, { now: NOW, config: configFor('astct2019', { routing: { icans } }) });
    expect(r.problems).not.toContain("radiology: nobody receives this team's pages (no confirmed endpoint)");
    expect(r.problems).toContain("icu: nobody receives this team's pages (no confirmed endpoint)");
    expect(formatReport(r)).toMatch(/radiology: no endpoint \(the configuration pages nobody at radiology\)/);
    // Without it, the defaults: they page radiology.
    const plain = await examine(clients(), vars, { now: NOW });
    expect(plain.problems).toContain("radiology: nobody receives this team's pages (no confirmed endpoint)");
  });

  it('leaves SMS settings alone when no team has an SMS endpoint, and says what it could not check', async () => {
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({ Subscriptions: [] });
    sns.on(GetSMSAttributesCommand).rejects(awsError('AuthorizationErrorException', 'denied'));
    // An emulator (moto) does not answer it: the warning says what it answered (until 2026-12-06 only "(Error)").
    sns.on(GetSMSSandboxAccountStatusCommand).rejects(awsError('NotImplementedError', 'not implemented', 501));
    const r = await examine(clients(), { CRS_PAGES_TOPIC_ARN: TOPIC }, { now: NOW });
    expect(r.problems.filter((p) => /SMS|sandbox/.test(p))).toEqual([]);
    expect(r.alarms).toBeNull();
    expect(r.lastRuns).toBeNull();
    expect(r.warnings).toEqual([
      "no CRS_ALARM_TOPIC_ARN (AlarmTopicArn in the stack's outputs): alarms and the operators' endpoints not checked",
      "no function names (IngestFunctionName, GradeFunctionName, EscalateFunctionName in the stack's outputs): last runs not checked",
      "no CRS_TOKENS_TABLE (TokensTableName in the stack's outputs): device tokens' expiry not checked",
      "could not read the account's SMS settings (AuthorizationErrorException: denied)",
      'could not tell whether the account is in the SMS sandbox (NotImplementedError: not implemented)',
    ]);
    expect(r.tokens).toBeNull();
  });

  // moto answers the sandbox request with an HTML page, and the SDK's error runs over two lines: the warning, one of
  // "the lines" of the report (and of --json's warnings), took two. Its second line told the operator to "inspect the
  // hidden field {error}.$response", which a command's user cannot (2026-12-07): the finding says the HTTP status
  // and that the answer was not AWS's (moto's page for a request it does not implement, a proxy's error page).
  it('keeps an AWS error of more than one line on the one line of its finding, an answer not from AWS said so', async () => {
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({ Subscriptions: [] });
    sns
      .on(GetSMSSandboxAccountStatusCommand)
      .rejects(
        awsError(
          'Error',
          '@aws-sdk XML parse error: mismatched tags <html> and </title>.\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.',
          500,
        ),
      );
    const r = await examine(clients(), { CRS_PAGES_TOPIC_ARN: TOPIC }, { now: NOW });
    expect(r.warnings).toContain(
      'could not tell whether the account is in the SMS sandbox (HTTP 500, an answer that is not from AWS, or that the SDK could not read: @aws-sdk XML parse error: mismatched tags <html> and </title>.)',
    );
    expect(
      formatReport(r)
        .split('\n')
        .filter((l) => l.includes('XML parse error')),
    ).toEqual([expect.stringContaining('SMS sandbox')]);
  });
});

/** A token as DynamoTokenStore stores it (keyed by its hash), `created` and `expires` in days from NOW. */
const tokenItem = (t: { id: string; device: string; created: number; expires?: number; revoked?: boolean }) => ({
  tokenHash: { S: `hash-of-${t.id}` },
  tokenId: { S: t.id },
  deviceId: { S: t.device },
  createdAt: { S: new Date(NOW + t.created * 86_400_000).toISOString() },
  kind: { S: 'monitor' },
  ...(t.expires === undefined ? {} : { expiresAt: { S: new Date(NOW + t.expires * 86_400_000).toISOString() } }),
  ...(t.revoked ? { revokedAt: { S: new Date(NOW - 86_400_000).toISOString() } } : {}),
});
const iso = (days: number) => new Date(NOW + days * 86_400_000).toISOString();

// Device tokens can expire (2026-12-06): doctor said nothing of them, so a token about to end on AWS went unnoticed
// until its device was refused. It finds what crs token list warns of (shared/app/token-expiry.ts, one rule).
describe("crs doctor: device tokens' expiry", () => {
  const TOKENS = [
    tokenItem({ id: 'tok-past', device: 'gw-past', created: -90, expires: -1 }),
    tokenItem({ id: 'tok-soon', device: 'gw-soon', created: -80, expires: 10 }),
    tokenItem({ id: 'tok-late', device: 'gw-late', created: -80, expires: 15 }),
    tokenItem({ id: 'tok-never', device: 'gw-never', created: -80 }),
    // Rotated yesterday: the old one is taken a day more, the new one for 90 days.
    tokenItem({ id: 'tok-rot-old', device: 'gw-rot', created: -89, expires: 1 }),
    tokenItem({ id: 'tok-rot-new', device: 'gw-rot', created: -1, expires: 89 }),
    // Rotated long ago: the old one expired, the new one is taken: nothing to say.
    tokenItem({ id: 'tok-done-old', device: 'gw-done', created: -120, expires: -30 }),
    tokenItem({ id: 'tok-done-new', device: 'gw-done', created: -31, expires: 59 }),
    tokenItem({ id: 'tok-revoked', device: 'gw-revoked', created: -90, expires: -1, revoked: true }),
  ];

  it('reports an active token expired as a problem and one expiring within 14 days as a warning, by id and device', async () => {
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({ Items: TOKENS });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.tokens).toEqual({
      table: 'tokens',
      active: 6,
      findings: [
        {
          tokenId: 'tok-past',
          deviceId: 'gw-past',
          expiresAt: iso(-1),
          expired: true,
          expiryUnreadable: false,
          replacedBy: null,
        },
        {
          tokenId: 'tok-rot-old',
          deviceId: 'gw-rot',
          expiresAt: iso(1),
          expired: false,
          expiryUnreadable: false,
          replacedBy: 'tok-rot-new',
        },
        {
          tokenId: 'tok-soon',
          deviceId: 'gw-soon',
          expiresAt: iso(10),
          expired: false,
          expiryUnreadable: false,
          replacedBy: null,
        },
      ],
    });
    expect(r.problems.filter((p) => p.includes('token'))).toEqual([
      `token tok-past of device gw-past expired at ${iso(-1)}: the device is refused; rotate it (crs token rotate tok-past --backend aws --table tokens) and configure the device with the new token`,
    ]);
    expect(r.warnings.filter((w) => w.includes('token'))).toEqual([
      `token tok-rot-old of device gw-rot expires at ${iso(1)}: replaced by tok-rot-new; configure the device with that before then`,
      `token tok-soon of device gw-soon expires at ${iso(10)}: rotate it (crs token rotate tok-soon --backend aws --table tokens) and configure the device with the new token`,
    ]);
    const text = formatReport(r);
    expect(text).toContain(
      'Device tokens (table tokens): 6 active; 1 expired (devices refused), 2 expiring within 14 days\n',
    );
    expect(text).toContain(`  EXPIRED  tok-past  device gw-past  at ${iso(-1)}\n`);
    expect(text).toContain(`  expiring tok-rot-old  device gw-rot  at ${iso(1)} (replaced by tok-rot-new)\n`);
    expect(text).toContain('Problems (7):');
    // Never a token's hash.
    expect(JSON.stringify(r)).not.toContain('hash-of-');
    expect(text).not.toContain('hash-of-');
  });

  // Until 2026-12-06 an expiry edited in the console ("2027-01-02") was read loosely, as midnight UTC, and the token
  // counted as active; one that is no ISO 8601 instant with its zone is a problem now: its device is refused.
  it('reports a token whose expiry it cannot read as a problem, never as active', async () => {
    const edited = {
      ...tokenItem({ id: 'tok-edit', device: 'gw-edit', created: -10 }),
      expiresAt: { S: '2027-01-02' },
    };
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({ Items: [TOKENS[3]!, edited] });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.tokens).toEqual({
      table: 'tokens',
      active: 1,
      findings: [
        {
          tokenId: 'tok-edit',
          deviceId: 'gw-edit',
          expiresAt: '2027-01-02',
          // Its own field, as `crs token list --json` has it (2026-12-06: was expired: true as well).
          expired: false,
          expiryUnreadable: true,
          replacedBy: null,
        },
      ],
    });
    expect(r.problems.filter((p) => p.includes('token'))).toEqual([
      'token tok-edit of device gw-edit has an expiry that cannot be read ("2027-01-02"; an ISO 8601 instant with its zone is needed): the device is refused; rotate it (crs token rotate tok-edit --expires WHEN --backend aws --table tokens) and configure the device with the new token',
    ]);
    const text = formatReport(r);
    expect(text).toContain(
      'Device tokens (table tokens): 1 active; 0 expired (devices refused), 1 with an expiry that cannot be read (devices refused), 0 expiring within 14 days\n',
    );
    expect(text).toContain('  UNREADABLE tok-edit  device gw-edit  expiry "2027-01-02"\n');
  });

  it('reads every page of the table, and says nothing of tokens when none is ending', async () => {
    dynamodb
      .on(ScanCommand, { TableName: 'tokens' })
      .resolvesOnce({ Items: [TOKENS[2]!], LastEvaluatedKey: { tokenHash: { S: 'hash-of-tok-late' } } })
      .resolves({ Items: [TOKENS[0]!] });
    const r = await examine(clients(), vars, { now: NOW });
    // tok-late is active, tok-past expired: both pages were read.
    expect(r.tokens!.active).toBe(1);
    expect(r.tokens!.findings.map((f) => f.tokenId)).toEqual(['tok-past']);
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({ Items: [TOKENS[2]!, TOKENS[3]!] });
    const fine = await examine(clients(), vars, { now: NOW });
    expect(fine.problems.join('\n')).not.toContain('token');
    expect(fine.warnings.join('\n')).not.toContain('token');
    expect(formatReport(fine)).toContain(
      'Device tokens (table tokens): 2 active; none expired or expiring within 14 days\n',
    );
  });

  it('counts a revoked token as not active, even one that never expires (pinned by a mutation run)', async () => {
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({
      Items: [TOKENS[3]!, tokenItem({ id: 'tok-gone', device: 'gw-gone', created: -10, revoked: true })],
    });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.tokens).toMatchObject({ active: 1, findings: [] });
  });

  it.each([
    ['AccessDeniedException', 'User: arn:aws:iam::123456789012:user/ops is not authorized to perform: dynamodb:Scan'],
    ['ResourceNotFoundException', 'Requested resource not found'],
  ])('says plainly that it could not read the token table (%s), and goes on with the rest', async (name, message) => {
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).rejects(awsError(name, message));
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.tokens).toBeNull();
    expect(r.problems).toContain(
      `could not read the device tokens in table tokens (CRS_TOKENS_TABLE, TokensTableName in the stack's outputs: ${name}: ${message}): whether a device's token expired or is about to is not known`,
    );
    // The rest is checked all the same.
    expect(r.sms.type).toBe('Transactional');
    expect(formatReport(r)).not.toContain('Device tokens (table');
  });

  // A state table the outputs name wrongly (a typo, another stack's file): the whole report was lost to one line,
  // `crs doctor: ResourceNotFoundException: Requested resource not found`, naming no table.
  it('says plainly that it could not read the state table, naming it, and goes on with the rest', async () => {
    dynamodb
      .on(QueryCommand, { TableName: 'state' })
      .rejects(awsError('ResourceNotFoundException', 'Requested resource not found'));
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.patients).toBeNull();
    expect(r.problems).toContain(
      "could not read the enrolled patients in table state (CRS_STATE_TABLE, StateTableName in the stack's outputs: ResourceNotFoundException: Requested resource not found): whether patients are enrolled and their monitors send is not known",
    );
    expect(r.sms.type).toBe('Transactional');
    expect(r.tokens).not.toBeNull();
  });

  // A mistyped PagesTopicArn (or AlarmTopicArn, ...) ended the run on `crs doctor: NotFoundException: Topic does not
  // exist`, naming nothing and printing no report (2026-12-06). Each resource the doctor reads is one problem naming it
  // and its output when it cannot be read, and the rest is checked.
  const notFound = (message: string) => awsError('NotFoundException', message, 404);
  it.each([
    [
      'the pages topic',
      () => sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).rejects(notFound('Topic does not exist')),
      `could not read the pages topic ${TOPIC} (CRS_PAGES_TOPIC_ARN, PagesTopicArn in the stack's outputs: NotFoundException: Topic does not exist): who receives each team's pages is not known`,
    ],
    [
      'the alarm topic',
      () => sns.on(ListSubscriptionsByTopicCommand, { TopicArn: ALARMS }).rejects(notFound('Topic does not exist')),
      `could not read the alarm topic ${ALARMS} (CRS_ALARM_TOPIC_ARN, AlarmTopicArn in the stack's outputs: NotFoundException: Topic does not exist): who receives the alarm notifications is not known`,
    ],
    [
      'the alarms',
      () => cloudwatch.on(DescribeAlarmsCommand).rejects(awsError('AccessDenied', 'denied')),
      `could not read the alarms that notify ${ALARMS} (CRS_ALARM_TOPIC_ARN, AlarmTopicArn in the stack's outputs: AccessDenied: denied): whether an alarm is firing is not known`,
    ],
    [
      "the functions' runs",
      () => cloudwatch.on(GetMetricDataCommand).rejects(awsError('AccessDenied', 'denied')),
      "could not read when the functions ingest, grade and escalate last ran (IngestFunctionName, GradeFunctionName, EscalateFunctionName in the stack's outputs: AccessDenied: denied): whether they run, and so whether pages escalate, is not known",
    ],
  ])('names %s it cannot read, with its output, and goes on with the rest', async (_what, fail, problem) => {
    fail();
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.problems).toContain(problem);
    expect(r.sms.type).toBe('Transactional');
    expect(r.tokens).not.toBeNull();
    expect(r.patients).not.toBeNull();
    expect(formatReport(r)).toContain(problem);
  });

  it('reports the teams as not known, not as nobody receiving them, when the pages topic cannot be read', async () => {
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).rejects(notFound('Topic does not exist'));
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.problems.filter((p) => p.includes('nobody receives'))).toEqual([]);
    expect(formatReport(r)).toContain(`Pages topic ${TOPIC}: could not be read (see the problems)\n`);
    expect(formatReport(r)).not.toContain('no endpoint');
    // The operators' endpoints are still listed.
    expect(r.alarmEndpoints).toHaveLength(1);
    // A test page asked for is said not sent, and why, not left to a bare error.
    sns.on(PublishCommand).rejects(notFound('Topic does not exist'));
    const t = await examine(clients(), vars, { now: NOW, testPage: 'icu' });
    expect(t.testPage).toBeUndefined();
    expect(t.problems).toContain(TEST_PAGE_UNSENT);
  });

  const TEST_PAGE_UNSENT =
    "the test page was not sent: who receives icu's pages, and on which wards, is not known (the pages topic could not be read)";

  it('sends no test page when the pages topic cannot be read, even where a publish would go through', async () => {
    // Listing refused (a role without ListSubscriptionsByTopic), publishing allowed: the page went out with no ward,
    // past the team's ward-limited endpoints, and the report said "0 confirmed endpoint(s) should receive it".
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).rejects(awsError('AuthorizationError', 'denied'));
    sns.on(PublishCommand).resolves({ MessageId: 'msg-1' });
    const t = await examine(clients(), vars, { now: NOW, testPage: 'icu' });
    expect(t.testPage).toBeUndefined();
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(t.problems).toContain(TEST_PAGE_UNSENT);
    // The topic read, the publish refused: said not sent, and why.
    sns.reset();
    sns.on(ListSubscriptionsByTopicCommand).resolves({ Subscriptions: [] });
    // Answered as SNS does (an unmocked call answers undefined: read as a TypeError, a defect, since 2026-12-07).
    sns.on(GetSMSAttributesCommand).resolves({ attributes: {} });
    sns.on(GetSMSSandboxAccountStatusCommand).resolves({ IsInSandbox: false });
    sns.on(PublishCommand).rejects(notFound('Topic does not exist'));
    const p = await examine(clients(), vars, { now: NOW, testPage: 'icu' });
    expect(p.testPage).toBeUndefined();
    expect(p.problems).toContain(
      `could not publish the test page to the pages topic ${TOPIC} (CRS_PAGES_TOPIC_ARN, PagesTopicArn in the stack's outputs: NotFoundException: Topic does not exist): nobody of icu was sent it`,
    );
  });

  // What AWS or the way to it answered is a resource it could not read; anything else is an error of crs's own, which
  // until 2026-12-07 was reported the same way (a TypeError as "could not read the device tokens"), and went on.
  const TOKENS_UNREAD =
    "could not read the device tokens in table tokens (CRS_TOKENS_TABLE, TokensTableName in the stack's outputs";
  it.each([
    ['a service refusal', awsError('ResourceNotFoundException', 'Requested resource not found')],
    ['an SDK exception', new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: {} })],
    ['a service failure', awsError('InternalServerError', 'Internal server error', 500)],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' })],
    ['a timeout', Object.assign(new Error('Connection timed out after 3000 ms'), { name: 'TimeoutError' })],
    [
      'no credentials',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
    ],
  ])('reports %s as the table it could not read, and goes on with the rest', async (_what, error) => {
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).rejects(error);
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.problems.filter((p) => p.startsWith(TOKENS_UNREAD))).toEqual([
      `${TOKENS_UNREAD}: ${error.name}: ${error.message}): whether a device's token expired or is about to is not known`,
    ]);
    expect(r.sms.type).toBe('Transactional');
    expect(r.patients).not.toBeNull();
  });

  it.each([
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'S')")],
    ['a ReferenceError', new ReferenceError('table is not defined')],
    ['an assertion', new AssertionError({ message: 'a token has an id', actual: undefined, expected: 'tok-1' })],
    ['a plain Error', new Error('unexpected state')],
  ])('lets %s in a read end the run, never a problem line', async (_what, error) => {
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).rejects(error);
    await expect(examine(clients(), vars, { now: NOW })).rejects.toBe(error);
    // The same in the pages topic's read, the SMS settings' and the test page's publish.
    dynamodb.on(ScanCommand, { TableName: 'tokens' }).resolves({ Items: [] });
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).rejects(error);
    await expect(examine(clients(), vars, { now: NOW })).rejects.toBe(error);
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({ Subscriptions: [] });
    sns.on(GetSMSAttributesCommand).rejects(error);
    await expect(examine(clients(), vars, { now: NOW })).rejects.toBe(error);
    sns.on(GetSMSAttributesCommand).resolves({ attributes: {} });
    sns.on(GetSMSSandboxAccountStatusCommand).rejects(error);
    await expect(examine(clients(), vars, { now: NOW })).rejects.toBe(error);
    sns.on(GetSMSSandboxAccountStatusCommand).resolves({ IsInSandbox: false });
    sns.on(PublishCommand).rejects(error);
    await expect(examine(clients(), vars, { now: NOW, testPage: 'icu' })).rejects.toBe(error);
  });
});

describe('crs doctor: the dead-letter queues the outputs name (2026-12-07)', () => {
  // A mistyped UndeliveredPagesArn (or a deleted queue) was read as the one queue every subscription should redrive
  // to: each of them was said to be "redriven elsewhere", the fix given to point it at a queue that is not there.
  const TYPO = 'arn:aws:sqs:eu-west-1:123456789012:CrsAlerting-UndeliveredPagez1EA5B415';
  const elsewhere = (r: { problems: string[] }) => r.problems.filter((p) => p.includes('has a redrive policy to'));

  it('says once that the undelivered-pages queue UndeliveredPagesArn names does not exist, blaming no subscription', async () => {
    for (const [arn, queues] of [
      [TYPO, [UNDELIVERED, UNDELIVERED_ALARMS]],
      [UNDELIVERED, [UNDELIVERED_ALARMS]], // the right name, the queue deleted
    ] as const) {
      queuesAre([...queues]);
      const r = await examine(clients(), { ...vars, CRS_UNDELIVERED_PAGES_ARN: arn }, { now: NOW });
      expect(elsewhere(r)).toEqual([]);
      // Named, though not there: no warning that the output is missing (pinned by a mutation run).
      expect(r.warnings.filter((w) => w.includes('CRS_UNDELIVERED_PAGES_ARN'))).toEqual([]);
      expect(r.problems.filter((p) => p.includes('UndeliveredPages'))).toEqual([
        `no queue ${arn}: the UndeliveredPages queue named by CRS_UNDELIVERED_PAGES_ARN, UndeliveredPagesArn in the stack's outputs, does not exist (a mistyped output, another stack's, or the queue deleted): each subscription's redrive policy not checked against it`,
      ]);
    }
  });

  it('says so once when the queue cannot be read, and of a queue the ARN names in another region or account', async () => {
    sqs.on(GetQueueUrlCommand).rejects(awsError('AccessDenied', 'not authorized to perform: sqs:GetQueueUrl'));
    const denied = await examine(clients(), vars, { now: NOW });
    expect(elsewhere(denied)).toEqual([]);
    expect(denied.problems.filter((p) => p.includes('queue'))).toEqual([
      `could not read the UndeliveredPages queue ${UNDELIVERED} (CRS_UNDELIVERED_PAGES_ARN, UndeliveredPagesArn in the stack's outputs: AccessDenied: not authorized to perform: sqs:GetQueueUrl): each subscription's redrive policy not checked against it`,
      `could not read the UndeliveredAlarms queue ${UNDELIVERED_ALARMS} (CRS_UNDELIVERED_ALARMS_ARN, UndeliveredAlarmsArn in the stack's outputs: AccessDenied: not authorized to perform: sqs:GetQueueUrl): each alarm subscription's redrive policy not checked against it`,
    ]);
    // The right name in another region: SQS answers the queue of this region, whose ARN is another.
    queuesAre([UNDELIVERED, UNDELIVERED_ALARMS]);
    const west2 = UNDELIVERED.replace('eu-west-1', 'eu-west-2');
    const r = await examine(clients(), { ...vars, CRS_UNDELIVERED_PAGES_ARN: west2 }, { now: NOW });
    expect(elsewhere(r)).toEqual([]);
    expect(r.problems.filter((p) => p.startsWith('no queue '))).toEqual([
      expect.stringContaining(`no queue ${west2}:`),
    ]);
    // No ARN at all: said what it is, once.
    const odd = await examine(clients(), { ...vars, CRS_UNDELIVERED_PAGES_ARN: 'UndeliveredPages' }, { now: NOW });
    expect(elsewhere(odd)).toEqual([]);
    expect(odd.problems.filter((p) => p.includes('UndeliveredPages'))).toEqual([
      `"UndeliveredPages" (CRS_UNDELIVERED_PAGES_ARN, UndeliveredPagesArn in the stack's outputs) is no SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME): each subscription's redrive policy not checked against it`,
    ]);
  });

  it('still blames a subscription redriven elsewhere when the queue is there, and one with no redrive policy always', async () => {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:1` }).resolves({
      Attributes: { PendingConfirmation: 'false', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: TYPO }) },
    });
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:4` }).resolves({
      Attributes: { PendingConfirmation: 'false' },
    });
    const r = await examine(clients(), vars, { now: NOW });
    expect(elsewhere(r)).toEqual([
      expect.stringMatching(/^email heme@hospital\.example has a redrive policy to \S+UndeliveredPagez/),
    ]);
    // The queue gone: the one without a policy is still said, its fix naming the output, not a queue that is not there.
    queuesAre([UNDELIVERED_ALARMS]);
    const gone = await examine(clients(), vars, { now: NOW });
    expect(elsewhere(gone)).toEqual([]);
    expect(gone.problems.filter((p) => p.includes('has no redrive policy'))).toEqual([
      expect.stringMatching(
        /^email h4-nurses@hospital\.example has no redrive policy: .* --attribute-value '\{"deadLetterTargetArn":"<UndeliveredPagesArn>"\}'$/,
      ),
    ]);
  });

  it("checks the operators' queue, UndeliveredAlarmsArn, in the same way", async () => {
    queuesAre([UNDELIVERED]);
    const r = await examine(clients(), vars, { now: NOW });
    expect(elsewhere(r)).toEqual([]);
    expect(r.problems.filter((p) => p.includes('UndeliveredAlarms'))).toEqual([
      `no queue ${UNDELIVERED_ALARMS}: the UndeliveredAlarms queue named by CRS_UNDELIVERED_ALARMS_ARN, UndeliveredAlarmsArn in the stack's outputs, does not exist (a mistyped output, another stack's, or the queue deleted): each alarm subscription's redrive policy not checked against it`,
    ]);
  });
});

describe('crs doctor, pinned by a mutation run', () => {
  const runs = (escalate: number[], grade: number[] = []) =>
    cloudwatch.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'ingest', Timestamps: [], Values: [] },
        { Id: 'grade', Timestamps: grade.map((m) => new Date(NOW - m * 60_000 - 30_000)), Values: grade.map(() => 2) },
        {
          Id: 'escalate',
          Timestamps: escalate.map((m) => new Date(NOW - m * 60_000 - 30_000)),
          Values: escalate.map(() => 1),
        },
      ],
    });
  const escalateProblems = (r: { problems: string[] }) => r.problems.filter((p) => p.includes('escalate function'));

  it('counts a phone that answered STOP as nobody, and names it', async () => {
    sns.on(CheckIfPhoneNumberIsOptedOutCommand, { phoneNumber: '+15550100003' }).resolves({ isOptedOut: true });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.teams.neurology).toEqual([{ protocol: 'sms', endpoint: '+15550100003', state: 'opted-out' }]);
    expect(r.problems).toContain(
      'neurology: +15550100003 answered STOP: SNS sends it no SMS (opt it back in: aws sns opt-in-phone-number --phone-number +15550100003)',
    );
    expect(r.problems).toContain("neurology: nobody receives this team's pages (no confirmed endpoint)");
  });

  it('warns of an endpoint subscribed without a team filter (it gets every page)', async () => {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:1` }).resolves({
      Attributes: { PendingConfirmation: 'false' },
    });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.warnings).toContain(
      'email heme@hospital.example is subscribed to the pages topic without a team filter: it gets every page of every team',
    );
    expect(r.problems).toContain("hematology: nobody receives this team's pages (no confirmed endpoint)");
  });

  it("reports every alarm of the stack's topic in ALARM, composite ones too, and only those", async () => {
    cloudwatch.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [
        {
          AlarmName: 'CrsAlerting-NotifyErrors',
          StateValue: 'ALARM',
          AlarmActions: [ALARMS],
          StateUpdatedTimestamp: new Date('2026-03-01T11:50:00Z'),
          StateReason: 'Threshold crossed',
        },
        { AlarmName: 'CrsAlerting-Api5xx', StateValue: 'INSUFFICIENT_DATA', AlarmActions: [ALARMS] },
        // Same prefix, another topic (ActionPrefix matches by prefix): not this stack's.
        { AlarmName: 'Other-Errors', StateValue: 'ALARM', AlarmActions: [`${ALARMS}-Old`] },
      ],
      CompositeAlarms: [{ AlarmName: 'CrsAlerting-PagesDown', StateValue: 'ALARM', AlarmActions: [ALARMS] }],
    });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.alarms).toEqual({
      watched: 3,
      inAlarm: [
        { name: 'CrsAlerting-NotifyErrors', since: '2026-03-01T11:50:00.000Z', reason: 'Threshold crossed' },
        { name: 'CrsAlerting-PagesDown', since: '?', reason: '' },
      ],
    });
    expect(r.problems.filter((p) => p.startsWith('alarm '))).toEqual([
      'alarm CrsAlerting-NotifyErrors is in ALARM since 2026-03-01T11:50:00.000Z: see the NotifyErrors row in docs/runbook.md',
      'alarm CrsAlerting-PagesDown is in ALARM since ?: see the PagesDown row in docs/runbook.md',
    ]);
  });

  // 2026-12-07: the hint said "see its row" of crs-local-MessagesDlqDepth, a name the runbook has no row of (its rows
  // are the alarm ids): the row is named without the deployed stack's or the emulated run's prefix.
  it('names the runbook row of an alarm in ALARM, without the stack or run prefix, a row the runbook has', async () => {
    const names = ['crs-local-MessagesDlqDepth', 'crs-run-7-UndeliveredAlarmsDepth', 'CrsAlerting-Api5xx'];
    cloudwatch.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: names.map((AlarmName) => ({ AlarmName, StateValue: 'ALARM', AlarmActions: [ALARMS] })),
    });
    const r = await examine(clients(), vars, { now: NOW });
    const said = r.problems.filter((p) => p.startsWith('alarm ')).map((p) => p.split(': see ')[1]);
    expect(said).toEqual([
      'the MessagesDlqDepth row in docs/runbook.md',
      'the UndeliveredAlarmsDepth row in docs/runbook.md',
      'the Api5xx row in docs/runbook.md',
    ]);
    const runbook = readFileSync(new URL('../../docs/runbook.md', import.meta.url), 'utf8');
    for (const row of ['Api5xx', 'MessagesDlqDepth', 'UndeliveredAlarmsDepth'])
      expect(runbook, row).toMatch(new RegExp(`^\\| \`${row}\` +\\|`, 'm'));
  });

  it('reports a stack whose alarm topic no alarm notifies', async () => {
    cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [] });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.problems).toContain(`no alarm notifies ${ALARMS}: nothing tells the operators when something fails`);
  });

  it('takes the latest run, and reports an escalate schedule 5 minutes quiet, or never seen', async () => {
    runs([25, 3]);
    const recent = await examine(clients(), vars, { now: NOW });
    expect(recent.lastRuns!.escalate).toBe(3 * 60 + 30);
    expect(escalateProblems(recent)).toEqual([]);
    expect(formatReport(recent)).toContain('escalate in the last 4 minutes');
    runs([6]);
    expect(escalateProblems(await examine(clients(), vars, { now: NOW }))).toEqual([
      "the escalate function escalate (CRS_ESCALATE_FUNCTION, EscalateFunctionName in the stack's outputs) has not run for 7 minutes: its minute schedule is not firing, so unacknowledged pages do not escalate",
    ]);
    runs([]);
    const never = await examine(clients(), vars, { now: NOW });
    expect(never.lastRuns!.escalate).toBeNull();
    expect(escalateProblems(never)).toEqual([
      "the escalate function escalate (CRS_ESCALATE_FUNCTION, EscalateFunctionName in the stack's outputs) has not run for over 3 hours: its minute schedule is not firing, so unacknowledged pages do not escalate; or no function has that name (CloudWatch has no data for one that does not exist): check the name",
    ]);
  });

  it('names the function and its output when CloudWatch has no run of it: a mistyped name has no data either (2026-12-06)', async () => {
    // Until 2026-12-06 "the escalate function has not run for over 3 hours", naming neither the function nor the
    // output: a mistyped EscalateFunctionName read as a stopped schedule. (GetFunction is not among doctor's reads.)
    runs([]);
    const r = await examine(clients(), { ...vars, CRS_ESCALATE_FUNCTION: 'escalat' }, { now: NOW });
    expect(escalateProblems(r)).toEqual([
      "the escalate function escalat (CRS_ESCALATE_FUNCTION, EscalateFunctionName in the stack's outputs) has not run for over 3 hours: its minute schedule is not firing, so unacknowledged pages do not escalate; or no function has that name (CloudWatch has no data for one that does not exist): check the name",
    ]);
    expect(r.warnings).toEqual([
      "1 patients are enrolled and nothing was graded for over 3 hours: are the device gateways sending? Or no function has the name grade (CRS_GRADE_FUNCTION, GradeFunctionName in the stack's outputs; CloudWatch has no data for one that does not exist): check the name",
    ]);
  });

  it('counts patients over every page of the feed index, with the newest reading', async () => {
    dynamodb
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ pk: { S: 'P-1' }, feedSince: { N: String(NOW - 3_600_000) } }],
        LastEvaluatedKey: { pk: { S: 'P-1' } },
      })
      .resolvesOnce({
        Items: [
          { pk: { S: 'P-2' }, feedSince: { N: String(NOW - 90_000) } },
          { pk: { S: 'P-3' }, feedSince: { N: String(NOW - 600_000) } },
        ],
      });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.patients).toEqual({ enrolled: 3, newestReadingSecondsAgo: 90 });
    expect(dynamodb.commandCalls(QueryCommand)[1]!.args[0].input.ExclusiveStartKey).toEqual({ pk: { S: 'P-1' } });
  });

  it('warns when patients are enrolled and nothing was graded for over 15 minutes, and not without patients', async () => {
    runs([0], [20]);
    expect((await examine(clients(), vars, { now: NOW })).warnings).toEqual([
      '1 patients are enrolled and nothing was graded for 21 minutes: are the device gateways sending?',
    ]);
    runs([0], [10]);
    expect((await examine(clients(), vars, { now: NOW })).warnings).toEqual([]);
    runs([0]);
    dynamodb.on(QueryCommand).resolves({ Items: [] });
    expect((await examine(clients(), vars, { now: NOW })).warnings).toEqual([]);
  });

  it('reports SMS sent as Promotional, a spend limit of 1 USD or none, even when the only SMS endpoint is unconfirmed', async () => {
    const smsProblems = (r: { problems: string[] }) => r.problems.filter((p) => /SMS pages go|spend limit/.test(p));
    sns.on(GetSMSAttributesCommand).resolves({ attributes: { DefaultSMSType: 'Promotional', MonthlySpendLimit: '1' } });
    expect(smsProblems(await examine(clients(), vars, { now: NOW }))).toEqual([
      'SMS pages go as Promotional, not Transactional: carriers may delay or drop them (docs/runbook.md, SMS)',
      "the account's SMS spend limit is 1 USD: SNS stops sending SMS pages once it is spent (docs/runbook.md, SMS)",
    ]);
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({
      Subscriptions: [{ Protocol: 'sms', Endpoint: '+15550100009', SubscriptionArn: 'PendingConfirmation' }],
    });
    sns.on(GetSMSAttributesCommand).resolves({ attributes: {} });
    const r = await examine(clients(), vars, { now: NOW });
    expect(smsProblems(r)).toEqual([
      'SMS pages go as Promotional (the default), not Transactional: carriers may delay or drop them (docs/runbook.md, SMS)',
      "the account's SMS spend limit is not set (new accounts: 1 USD): SNS stops sending SMS pages once it is spent (docs/runbook.md, SMS)",
    ]);
    expect(r.warnings).toContain(
      'no default sender ID: where carriers allow one, SMS pages come from a shared number (docs/runbook.md, SMS)',
    );
  });

  it("reports the paging config's endpoints SNS does not have, and no unconfirmed one as gone", async () => {
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: {
        hematology: {
          email: ['heme@hospital.example', 'new-fellow@hospital.example', 'gone@hospital.example'],
          sms: [],
          https: [],
        },
      },
    });
    expect(r.missing).toEqual([{ team: 'hematology', protocol: 'email', endpoint: 'gone@hospital.example' }]);
    expect(r.problems).toContain(
      'hematology: email gone@hospital.example is in the paging config but not subscribed (unsubscribed, or deleted): see docs/runbook.md, "A subscription is gone"',
    );
  });

  it('takes an email address subscribed in another letter case (the stack subscribes the first spelling) as subscribed', async () => {
    // Two teams spelling one mailbox differently share the subscription of the first spelling (infra/stack.ts).
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: {
        hematology: { email: ['Heme@Hospital.example'], sms: [], https: [] },
        bedside: { email: ['H4-Nurses@hospital.example'], sms: [], https: [] },
      },
    });
    expect(r.missing).toEqual([]);
  });

  it("reports a pages subscription the paging config does not have (it gets patients' pages all the same), with the command to unsubscribe it", async () => {
    // An endpoint removed from the config, left subscribed: the deploy does not know it, SNS still delivers to it.
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: {
        hematology: { email: ['Heme@Hospital.example'], sms: [], https: [] },
        icu: { email: [], sms: [], https: ['https://icu.hospital.example/hook'] },
        bedside: { email: ['h4-nurses@hospital.example'], sms: [], https: [] },
      },
    });
    expect(r.missing).toEqual([]);
    expect(r.notInConfig).toEqual([
      { teams: ['neurology'], protocol: 'sms', endpoint: '+15550100003', subscriptionArn: `${TOPIC}:3` },
    ]);
    expect(r.problems).toContain(
      `neurology: sms +15550100003 is subscribed but not in the paging config (removed from it, or subscribed by hand): it gets their patients' pages all the same; unsubscribe it: aws sns unsubscribe --subscription-arn ${TOPIC}:3`,
    );
    expect(formatReport(r)).toContain(
      '  neurology: NOT IN THE CONFIG sms +15550100003 (subscribed, not in the paging config)\n',
    );
    // Without the paging config nothing is known of what should be subscribed: nothing said.
    expect((await examine(clients(), vars, { now: NOW })).notInConfig).toEqual([]);
  });

  it('reports one not in the paging config, with its password masked, and another protocol (a queue) as a warning', async () => {
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({
      Subscriptions: [
        { Protocol: 'https', Endpoint: 'https://sns:****@old.hospital.example/hook', SubscriptionArn: `${TOPIC}:8` },
        { Protocol: 'sqs', Endpoint: 'arn:aws:sqs:eu-west-1:123456789012:feed', SubscriptionArn: `${TOPIC}:9` },
      ],
    });
    for (const arn of [`${TOPIC}:8`, `${TOPIC}:9`])
      sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: arn }).resolves({
        Attributes: {
          PendingConfirmation: 'false',
          FilterPolicy: JSON.stringify({ teams: ['icu'] }),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
          DeliveryPolicy: HTTPS_DELIVERY,
        },
      });
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: { icu: { email: ['icu@hospital.example'], sms: [], https: [] } },
    });
    expect(r.notInConfig).toEqual([
      {
        teams: ['icu'],
        protocol: 'https',
        endpoint: 'https://sns:****@old.hospital.example/hook',
        subscriptionArn: `${TOPIC}:8`,
      },
    ]);
    expect(r.problems).toContain(
      `icu: https https://sns:****@old.hospital.example/hook is subscribed but not in the paging config (removed from it, or subscribed by hand): it gets their patients' pages all the same; unsubscribe it: aws sns unsubscribe --subscription-arn ${TOPIC}:8`,
    );
    expect(r.warnings).toContain(
      `sqs arn:aws:sqs:eu-west-1:123456789012:feed is subscribed to the pages topic, and the stack subscribes only the paging config's email, SMS and HTTPS endpoints: it gets pages (crs serve --backend aws subscribes a queue per team in their place); if it is not yours: aws sns unsubscribe --subscription-arn ${TOPIC}:9`,
    );
  });

  it("checks the operators' endpoints (the alarm topic's subscriptions) as the pages topic's: their state and their redrive and delivery policies", async () => {
    const gateway = 'https://ops:S3cret@ops.hospital.example/alarms';
    alarmSubscriptions([
      // Re-made by hand without its redrive policy.
      {
        protocol: 'email',
        endpoint: 'platform-oncall@hospital.example',
        arn: `${ALARMS}:1`,
        attributes: { PendingConfirmation: 'false' },
      },
      // Without its delivery policy, redriven to the pages' queue (not the alarms').
      {
        protocol: 'https',
        endpoint: gateway,
        arn: `${ALARMS}:2`,
        attributes: {
          PendingConfirmation: 'false',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
        },
      },
      // As the stack makes it, but the phone answered STOP.
      { protocol: 'sms', endpoint: '+15550100777', arn: `${ALARMS}:3` },
      // Not confirmed yet.
      { protocol: 'email', endpoint: 'new-operator@hospital.example', arn: 'PendingConfirmation' },
    ]);
    sns.on(CheckIfPhoneNumberIsOptedOutCommand, { phoneNumber: '+15550100777' }).resolves({ isOptedOut: true });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.alarmEndpoints).toEqual([
      { protocol: 'email', endpoint: 'platform-oncall@hospital.example', state: 'confirmed' },
      { protocol: 'https', endpoint: 'https://ops:****@ops.hospital.example/alarms', state: 'confirmed' },
      { protocol: 'sms', endpoint: '+15550100777', state: 'opted-out' },
      { protocol: 'email', endpoint: 'new-operator@hospital.example', state: 'pending-confirmation' },
    ]);
    expect(r.problems.filter((p) => p.startsWith('alarms: '))).toEqual([
      'alarms: +15550100777 answered STOP: SNS sends it no SMS, no alarm notifications (opt it back in: aws sns opt-in-phone-number --phone-number +15550100777)',
      'alarms: email new-operator@hospital.example has not confirmed its subscription: it receives no alarm notifications until it does',
      `alarms: email platform-oncall@hospital.example has no redrive policy: an alarm notification SNS cannot deliver to it is dropped, not kept in UndeliveredAlarms, and UndeliveredAlarmsDepth stays quiet: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${ALARMS}:1 --attribute-name RedrivePolicy --attribute-value '{"deadLetterTargetArn":"${UNDELIVERED_ALARMS}"}'`,
      `alarms: https https://ops:****@ops.hospital.example/alarms has a redrive policy to ${UNDELIVERED}, not to UndeliveredAlarms (${UNDELIVERED_ALARMS}): an alarm notification SNS cannot deliver to it is not kept there, and UndeliveredAlarmsDepth stays quiet: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${ALARMS}:2 --attribute-name RedrivePolicy --attribute-value '{"deadLetterTargetArn":"${UNDELIVERED_ALARMS}"}'`,
      `alarms: https https://ops:****@ops.hospital.example/alarms has no delivery policy: SNS retries it 3 times, 20 s apart, not 20 times over about ten minutes, before the notification is undeliverable: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${ALARMS}:2 --attribute-name DeliveryPolicy --attribute-value '{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":20,"numNoDelayRetries":0,"numMinDelayRetries":3,"numMaxDelayRetries":8,"backoffFunction":"exponential"}}'`,
    ]);
    const text = formatReport(r);
    expect(text).toContain('Alarm topic: 4 endpoints\n');
    expect(text).toMatch(/opted-out +sms +\+15550100777\n/);
    expect(JSON.stringify(r) + text).not.toContain('S3cret');
    // The alarm topic's subscriptions only: the pages topic's are not checked against UndeliveredAlarms.
    expect(r.problems.filter((p) => p.includes('UndeliveredAlarms') && !p.startsWith('alarms: '))).toEqual([]);
  });

  it("checks an operators' redrive policy for a queue when the outputs do not name UndeliveredAlarmsArn, saying so; warns when nobody gets alarms", async () => {
    alarmSubscriptions([
      {
        protocol: 'email',
        endpoint: 'platform-oncall@hospital.example',
        arn: `${ALARMS}:1`,
        attributes: {
          PendingConfirmation: 'false',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
        },
      },
      { protocol: 'sms', endpoint: '+15550100778', arn: `${ALARMS}:2`, attributes: { PendingConfirmation: 'false' } },
    ]);
    const { CRS_UNDELIVERED_ALARMS_ARN: _, ...older } = vars;
    const r = await examine(clients(), older, { now: NOW });
    expect(r.problems.filter((p) => p.startsWith('alarms: '))).toEqual([
      expect.stringMatching(
        /^alarms: sms \+15550100778 has no redrive policy: .* --attribute-value '\{"deadLetterTargetArn":"<UndeliveredAlarmsArn>"\}'$/,
      ),
    ]);
    expect(r.warnings).toContain(
      "no CRS_UNDELIVERED_ALARMS_ARN (UndeliveredAlarmsArn in the stack's outputs): each alarm subscription's redrive policy checked for a queue, not for the stack's",
    );
    alarmSubscriptions([]);
    const none = await examine(clients(), vars, { now: NOW });
    expect(none.alarmEndpoints).toEqual([]);
    expect(none.warnings).toContain(
      'nobody receives the alarm notifications (no confirmed endpoint of the alarm topic): set alarms in the paging config, or run crs doctor on a schedule that tells the operators',
    );
    expect(formatReport(none)).toContain('Alarm topic: no endpoint\n');
  });

  it("with the paging config, reports an operators' endpoint of its alarms that is not subscribed (masked), and none subscribed in another letter case", async () => {
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: {},
      expectedAlarms: {
        email: ['Platform-Oncall@hospital.example', 'gone-operator@hospital.example'],
        sms: [],
        https: ['https://ops:S3cret@ops.hospital.example/alarms'],
      },
    });
    expect(r.missing).toEqual([
      { team: 'alarms', protocol: 'email', endpoint: 'gone-operator@hospital.example' },
      { team: 'alarms', protocol: 'https', endpoint: 'https://ops:****@ops.hospital.example/alarms' },
    ]);
    expect(r.problems.filter((p) => p.startsWith('alarms: '))).toEqual([
      'alarms: email gone-operator@hospital.example is in the paging config but not subscribed to the alarm topic (unsubscribed, or deleted): it gets no alarm notifications: see docs/runbook.md, "A subscription is gone"',
      'alarms: https https://ops:****@ops.hospital.example/alarms is in the paging config but not subscribed to the alarm topic (unsubscribed, or deleted): it gets no alarm notifications: see docs/runbook.md, "A subscription is gone"',
    ]);
    const text = formatReport(r);
    expect(text).toContain('    MISSING email gone-operator@hospital.example (in the paging config, not subscribed)\n');
    expect(text).not.toContain('alarms: MISSING');
    expect(JSON.stringify(r) + text).not.toContain('S3cret');
  });

  it('matches an https endpoint with a password as SNS lists it (password masked), and never prints the password', async () => {
    // ListSubscriptionsByTopic answers `https://user:****@host/...`: the configured URL was reported missing (exit 1).
    sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).resolves({
      Subscriptions: [
        {
          Protocol: 'https',
          Endpoint: 'https://sns:****@icu.hospital.example/hook',
          SubscriptionArn: `${TOPIC}:9`,
          TopicArn: TOPIC,
        },
      ],
    });
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:9` }).resolves({
      Attributes: { FilterPolicy: JSON.stringify({ teams: ['icu'] }), PendingConfirmation: 'false' },
    });
    const r = await examine(clients(), vars, {
      now: NOW,
      expected: {
        icu: {
          email: [],
          sms: [],
          https: ['https://sns:S3cret@icu.hospital.example/hook', 'https://sns:0ther@gone.hospital.example/hook'],
        },
      },
    });
    expect(r.missing).toEqual([
      { team: 'icu', protocol: 'https', endpoint: 'https://sns:****@gone.hospital.example/hook' },
    ]);
    expect(JSON.stringify(r) + formatReport(r)).not.toMatch(/S3cret|0ther/);
  });

  it("reports a subscription whose policies are not the template's, in any order the same, and says how to set them", async () => {
    const attributes = (arn: string, a: Record<string, string>) =>
      sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: arn }).resolves({
        Attributes: {
          PendingConfirmation: 'false',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
          ...a,
        },
      });
    // The gateway's retries are SNS's defaults (copied from an HTTPS subscription of another topic); the nurses'
    // wards and teams in another order (the same filter); the SMS number without its smsKinds.
    attributes(`${TOPIC}:2`, {
      FilterPolicy: JSON.stringify({ teams: ['icu'] }),
      DeliveryPolicy: JSON.stringify({ healthyRetryPolicy: { numRetries: 3, minDelayTarget: 20, maxDelayTarget: 20 } }),
    });
    attributes(`${TOPIC}:4`, { FilterPolicy: JSON.stringify({ ward: ["O'Neil 2", 'H4'], teams: ['bedside'] }) });
    attributes(`${TOPIC}:3`, { FilterPolicy: JSON.stringify({ teams: ['neurology'] }) });
    const expected = {
      icu: { email: [], sms: [], https: ['https://icu.hospital.example/hook'] },
      neurology: { email: [], sms: ['+15550100003'], https: [], smsKinds: ['escalation' as const] },
      bedside: { email: ['h4-nurses@hospital.example'], sms: [], https: [], wards: ['H4', "O'Neil 2"] },
    };
    const r = await examine(clients(), vars, { now: NOW, expected });
    const policies = r.problems.filter((p) => /policy/.test(p));
    expect(policies).toEqual([
      `icu: https https://icu.hospital.example/hook has the delivery policy {"healthyRetryPolicy":{"numRetries":3,"minDelayTarget":20,"maxDelayTarget":20}}, not the template's {"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":20,"numNoDelayRetries":0,"numMinDelayRetries":3,"numMaxDelayRetries":8,"backoffFunction":"exponential"}}: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${TOPIC}:2 --attribute-name DeliveryPolicy --attribute-value '{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":20,"numNoDelayRetries":0,"numMinDelayRetries":3,"numMaxDelayRetries":8,"backoffFunction":"exponential"}}'`,
      `neurology: sms +15550100003 has the filter policy {"teams":["neurology"]}, not the template's {"teams":["neurology"],"kind":["escalation","test"]}: it gets pages that are not its own, or misses some that are: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${TOPIC}:3 --attribute-name FilterPolicy --attribute-value '{"teams":["neurology"],"kind":["escalation","test"]}'`,
    ]);

    // A ward with a quote is quoted for the shell; a subscription redriven anywhere passes when the outputs do not
    // name the stack's queue (an outputs file from before UndeliveredPagesArn), with a warning; none redriven fails.
    attributes(`${TOPIC}:4`, { FilterPolicy: JSON.stringify({ teams: ['bedside'] }) });
    attributes(`${TOPIC}:1`, { FilterPolicy: JSON.stringify({ teams: ['hematology'] }), RedrivePolicy: '' });
    attributes(`${TOPIC}:3`, {
      FilterPolicy: JSON.stringify({ teams: ['neurology'], kind: ['test', 'escalation'] }),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:123456789012:other' }),
    });
    const { CRS_UNDELIVERED_PAGES_ARN: _, ...older } = vars;
    const o = await examine(clients(), older, { now: NOW, expected });
    expect(o.problems.filter((p) => /policy/.test(p))).toEqual([
      expect.stringMatching(
        /^hematology: email heme@hospital\.example has no redrive policy: .* --attribute-name RedrivePolicy --attribute-value '\{"deadLetterTargetArn":"<UndeliveredPagesArn>"\}'$/,
      ),
      expect.stringContaining('icu: https https://icu.hospital.example/hook has the delivery policy'),
      expect.stringMatching(
        /^bedside: email h4-nurses@hospital\.example has the filter policy \{"teams":\["bedside"\]\}, not the template's .* --attribute-value '\{"teams":\["bedside"\],"ward":\["H4","O'\\''Neil 2"\]\}'$/,
      ),
    ]);
    expect(o.warnings).toContain(
      "no CRS_UNDELIVERED_PAGES_ARN (UndeliveredPagesArn in the stack's outputs): each subscription's redrive policy checked for a queue, not for the stack's",
    );
  });

  it("sends the test page to the team's wards, counting its confirmed endpoints only", async () => {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:4` }).resolves({
      Attributes: {
        FilterPolicy: JSON.stringify({ teams: ['bedside'], ward: ['H4', 'H2'] }),
        PendingConfirmation: 'false',
      },
    });
    sns.on(PublishCommand).resolves({ MessageId: 'msg-1' });
    const bedside = await examine(clients(), vars, { now: NOW, testPage: 'bedside' });
    expect(bedside.testPage).toMatchObject({ team: 'bedside', messageId: 'msg-1', endpoints: 1 });
    expect(sns.commandCalls(PublishCommand)[0]!.args[0].input.MessageAttributes!.ward).toEqual({
      DataType: 'String.Array',
      StringValue: '["H2","H4"]',
    });
    const icu = await examine(clients(), vars, { now: NOW, testPage: 'icu' });
    expect(icu.testPage).toMatchObject({ team: 'icu', endpoints: 0 });
  });

  // A ward-limited team pages nobody for a patient in another ward or in none (docs/paging.md, "A patient who moves
  // wards"): SNS takes the page, nothing is parked, and nothing said so before the ladder ran out.
  it('warns of a paged team whose every confirmed endpoint is limited to wards, and not of one paged nowhere', async () => {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:4` }).resolves({
      Attributes: {
        FilterPolicy: JSON.stringify({ teams: ['bedside'], ward: ['H4', 'H2'] }),
        PendingConfirmation: 'false',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: UNDELIVERED }),
      },
    });
    const warning =
      "bedside: every endpoint is limited to wards H2, H4: a page of a patient in another ward, or in none, reaches nobody of bedside (drop the team's wards, or route those pages to another team too)";
    expect((await examine(clients(), vars, { now: NOW })).warnings).toContain(warning);
    const alerts = { ...DEFAULT_CONFIG.paging.alertTeams };
    for (const k of Object.keys(alerts) as (keyof typeof alerts)[])
      alerts[k] = alerts[k].map((t) => (t === 'bedside' ? 'icu' : t));
    // Grade changes never page bedside (its routing has no such team): its alerts moved to icu, nothing pages it.
    const unpaged = await examine(clients(), vars, {
      now: NOW,
      config: configFor('astct2019', { paging: { alertTeams: alerts } }),
    });
    expect(unpaged.unpaged).toContain('bedside');
    expect(unpaged.warnings).not.toContain(warning);
    // Without wards on it, no warning.
    const hematology = await examine(clients(), vars, { now: NOW });
    expect(hematology.warnings.filter((w) => w.startsWith('hematology:'))).toEqual([]);
  });

  it('says which kinds of page an SMS number limited by smsKinds gets (the test page aside)', async () => {
    sns.on(GetSubscriptionAttributesCommand, { SubscriptionArn: `${TOPIC}:3` }).resolves({
      Attributes: {
        FilterPolicy: JSON.stringify({ teams: ['neurology'], kind: ['escalation', 'alert', 'test'] }),
        PendingConfirmation: 'false',
      },
    });
    const r = await examine(clients(), vars, { now: NOW });
    expect(r.teams.neurology).toEqual([
      { protocol: 'sms', endpoint: '+15550100003', state: 'confirmed', kinds: ['escalation', 'alert'] },
    ]);
    expect(formatReport(r)).toMatch(/confirmed +sms +\+15550100003 \(only escalation, alert\)\n/);
  });

  it('says "Problems (1)" for a single problem, and "No problems found." only for none', async () => {
    const r = await examine(clients(), vars, { now: NOW });
    expect(formatReport({ ...r, problems: ['one'] })).toContain('Problems (1):\n  - one\n');
    expect(formatReport({ ...r, problems: ['one'] })).not.toContain('No problems found.');
    expect(formatReport({ ...r, problems: [] })).toContain('No problems found.');
  });

  describe('doctorCommand: exit 0 nothing wrong, 1 something is, 2 usage', () => {
    let stdout: string;
    let stderr: string;
    beforeEach(() => {
      stdout = '';
      stderr = '';
      vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
        stdout += String(c);
        return true;
      });
      vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
        stderr += String(c);
        return true;
      });
      for (const [k, v] of Object.entries(vars)) vi.stubEnv(k, v);
      vi.stubEnv('AWS_REGION', 'eu-west-1');
    });
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    });

    it('exits 1 when it finds a problem, listing it', async () => {
      expect(await doctorCommand(['--backend', 'aws'], loadConfig)).toBe(1);
      expect(stdout).toContain('Problems (6):');
    });

    it('reads the configuration of --config, and refuses a bad one naming the key', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'crs-doctor-'));
      const file = join(dir, 'grading.json');
      const icans = DEFAULT_CONFIG.routing.icans.map((teams) => teams.filter((t) => t !== 'radiology'));
      writeFileSync(file, JSON.stringify({ routing: { icans } }));
      expect(await doctorCommand(['--backend', 'aws', '--config', file], loadConfig)).toBe(1);
      expect(stdout).toContain('Problems (5):');
      expect(stdout).not.toContain('radiology: nobody receives');
      writeFileSync(file, JSON.stringify({ routing: { icans: icans.slice(1) } }));
      sns.resetHistory();
      expect(await doctorCommand(['--backend', 'aws', '--config', file], loadConfig)).toBe(2);
      expect(stderr).toContain('invalid config: routing.icans');
      expect(sns.calls()).toHaveLength(0);
    });

    it('gives the token findings in --json; an expiring token alone is a warning, not exit 1', async () => {
      dynamodb
        .on(ScanCommand, { TableName: 'tokens' })
        .resolves({ Items: [tokenItem({ id: 'tok-soon', device: 'gw-soon', created: -80, expires: 10 })] });
      vi.setSystemTime(NOW);
      expect(await doctorCommand(['--backend', 'aws', '--json'], loadConfig)).toBe(1);
      const report = JSON.parse(stdout) as { tokens: unknown; problems: string[]; warnings: string[] };
      expect(report.tokens).toEqual({
        table: 'tokens',
        active: 1,
        findings: [
          {
            tokenId: 'tok-soon',
            deviceId: 'gw-soon',
            expiresAt: iso(10),
            expired: false,
            expiryUnreadable: false,
            replacedBy: null,
          },
        ],
      });
      // The 6 problems of the fixture, none of them the token.
      expect(report.problems).toHaveLength(6);
      expect(report.warnings.filter((w) => w.startsWith('token tok-soon'))).toHaveLength(1);
    });

    // Until 2026-12-06 a pages topic it could not read ended the run on `crs doctor: AccessDenied: denied` alone.
    it('exits 1 with the report, naming the resource an AWS failure was on', async () => {
      sns.on(ListSubscriptionsByTopicCommand, { TopicArn: TOPIC }).rejects(awsError('AccessDenied', 'denied'));
      expect(await doctorCommand(['--backend', 'aws'], loadConfig)).toBe(1);
      expect(stderr).toBe('');
      expect(stdout).toContain(`could not read the pages topic ${TOPIC} (CRS_PAGES_TOPIC_ARN, PagesTopicArn`);
      expect(stdout).toContain('Device tokens (table tokens)');
    });

    it('exits 1 naming an error it did not expect, with where it was thrown', async () => {
      vi.spyOn(Date, 'now').mockImplementation(() => {
        throw new Error('clock');
      });
      expect(await doctorCommand(['--backend', 'aws'], loadConfig)).toBe(1);
      expect(stderr).toMatch(
        /^crs doctor: Error: clock \(an error of crs doctor itself, not a finding: no report\)\n {4}at .*\n$/s,
      );
    });

    // Until 2026-12-07 a defect in reading a resource was one more problem line ("could not read the device tokens
    // ... (TypeError: ...)"), as if the table could not be read, and the run went on to its usual exit.
    it.each([
      ['the device tokens', () => dynamodb.on(ScanCommand, { TableName: 'tokens' })],
      ['the SMS sandbox status', () => sns.on(GetSMSSandboxAccountStatusCommand)],
    ])(
      'fails loudly on an error of its own in a read of %s: exit 1, the error and its stack, no report',
      async (_, read) => {
        read().rejects(new TypeError("Cannot read properties of undefined (reading 'S')"));
        expect(await doctorCommand(['--backend', 'aws'], loadConfig)).toBe(1);
        expect(stdout).toBe('');
        expect(stderr).toMatch(
          /^crs doctor: TypeError: Cannot read properties of undefined \(reading 'S'\) \(an error of crs doctor itself, not a finding: no report\)\n {4}at /,
        );
        expect(stderr).not.toContain('could not read');
      },
    );

    it.each([
      [[], 'give --backend aws'],
      [['--backend', 'embedded'], 'give --backend aws'],
      [['--backend', 'aws', '--test-page', 'cardiology'], '--test-page must be one of'],
      [['--backend', 'aws', '--bogus'], "Unknown option '--bogus'"],
    ])('exits 2 for %o, with the usage, asking AWS nothing', async (args, message) => {
      expect(await doctorCommand(args, loadConfig)).toBe(2);
      expect(stderr).toContain(message);
      expect(stderr).toContain('usage:');
      expect(sns.calls()).toHaveLength(0);
    });
  });
});
