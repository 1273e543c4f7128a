// crs doctor's findings from what AWS answers, where the emulator cannot answer it (it confirms every
// subscription at once and has no SMS sandbox): an email or HTTPS endpoint still waiting for confirmation, a team
// nobody receives, the account in the SMS sandbox, an escalate schedule that stopped, patients enrolled with
// nothing graded.
import { CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  CheckIfPhoneNumberIsOptedOutCommand,
  GetSMSAttributesCommand,
  GetSMSSandboxAccountStatusCommand,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { examine, formatReport } from '#cli/doctor.ts';

const sns = mockClient(SNSClient);
const cloudwatch = mockClient(CloudWatchClient);
const dynamodb = mockClient(DynamoDBClient);
const clients = () => ({
  sns: new SNSClient({}),
  cloudwatch: new CloudWatchClient({}),
  dynamodb: new DynamoDBClient({}),
});
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:CrsAlerting-Pages';
const ALARMS = 'arn:aws:sns:eu-west-1:123456789012:CrsAlerting-Alarms';
const NOW = Date.parse('2026-03-01T12:00:30Z');
const vars = {
  CRS_PAGES_TOPIC_ARN: TOPIC,
  CRS_ALARM_TOPIC_ARN: ALARMS,
  CRS_INGEST_FUNCTION: 'ingest',
  CRS_GRADE_FUNCTION: 'grade',
  CRS_ESCALATE_FUNCTION: 'escalate',
  CRS_STATE_TABLE: 'state',
};
const sub = (team: string, protocol: string, endpoint: string, arn: string) => ({ team, protocol, endpoint, arn });
const SUBS = [
  sub('hematology', 'email', 'heme@hospital.example', `${TOPIC}:1`),
  sub('icu', 'https', 'https://icu.hospital.example/hook', `${TOPIC}:2`),
  sub('neurology', 'sms', '+15550100003', `${TOPIC}:3`),
  sub('bedside', 'email', 'h4-nurses@hospital.example', `${TOPIC}:4`),
];

beforeEach(() => {
  for (const m of [sns, cloudwatch, dynamodb]) m.reset();
  sns.on(ListSubscriptionsByTopicCommand).resolves({
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
});

describe('crs doctor', () => {
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
      'the escalate function has not run for 21 minutes: its minute schedule is not firing, so unacknowledged pages do not escalate',
      'the account is in the SMS sandbox: only verified phone numbers receive SMS pages',
    ]);
    expect(r.warnings).toEqual([
      '1 patients are enrolled and nothing was graded for over 3 hours: are the device gateways sending?',
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

  it('leaves SMS settings alone when no team has an SMS endpoint, and says what it could not check', async () => {
    sns.on(ListSubscriptionsByTopicCommand).resolves({ Subscriptions: [] });
    sns
      .on(GetSMSAttributesCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AuthorizationErrorException' }));
    const r = await examine(clients(), { CRS_PAGES_TOPIC_ARN: TOPIC }, { now: NOW });
    expect(r.problems.filter((p) => /SMS|sandbox/.test(p))).toEqual([]);
    expect(r.alarms).toBeNull();
    expect(r.lastRuns).toBeNull();
    expect(r.warnings).toEqual([
      "no CRS_ALARM_TOPIC_ARN (AlarmTopicArn in the stack's outputs): alarms not checked",
      "no function names (IngestFunctionName, GradeFunctionName, EscalateFunctionName in the stack's outputs): last runs not checked",
      "could not read the account's SMS settings (AuthorizationErrorException: denied)",
    ]);
  });
});
