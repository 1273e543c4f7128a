// `crs doctor --backend aws` against the deployed shape on an emulator: the real `crs serve --backend aws` (its
// alarms provisioned from the stack, Lambda's invocation metrics published as Lambda would) and the real `crs
// doctor` reading SNS, CloudWatch and DynamoDB with the run's outputs file. What an operator needs to see: every
// team reached, an alarm firing, a phone that answered STOP, an endpoint of the paging config that is gone, a
// subscription re-made by hand without the template's redrive, delivery or filter policy, one the paging config no
// longer has (it still gets pages), an operators' endpoint of the alarm topic re-made without its redrive or delivery
// policy or gone, the account's SMS settings, when ingest and escalate last ran; and a test page that reaches exactly
// one team's endpoints (ward-limited ones included), marked as a test and never graded.
import { CloudWatchClient, DescribeAlarmsCommand, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTopicsCommand,
  SNSClient,
  SetSMSAttributesCommand,
  SubscribeCommand,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, ListQueuesCommand, type QueueAttributeName, SQSClient } from '@aws-sdk/client-sqs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '#cli/doctor.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { PAGE_TEAMS } from '#domain/paging.ts';
import {
  pageLines,
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
  type AwsServe,
  synthesizedStack,
} from '#test/support/aws-serve.ts';
import { crsAsync, crsMain } from '#test/support/cli.ts';
import { citedOutputNames } from '#test/support/doc-outputs.ts';
import { configFor } from '#domain/config.ts';
import { gradingSettingsId } from '#domain/settings-id.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-doctor-'));
const outputsFile = join(dir, 'outputs.json');
// Every team subscribed as crs serve does by default, neurology only for wards H4 and H5.
const servePaging = join(dir, 'serve-paging.json');
writeFileSync(
  servePaging,
  JSON.stringify({
    teams: Object.fromEntries(
      PAGE_TEAMS.map((t) => [
        t,
        { https: [`https://${t}.pages.invalid/`], ...(t === 'neurology' ? { wards: ['H4', 'H5'] } : {}) },
      ]),
    ),
  }),
);

let emulator: Emulator;
let server: AwsServe;
let sns: SNSClient;
let cloudwatch: CloudWatchClient;
const prefix = runPrefix('doc');
const region = process.env.AWS_REGION ?? 'us-east-1';
const awsEnv = () => ({
  AWS_ENDPOINT_URL: emulator.endpoint,
  AWS_REGION: region,
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
});

beforeAll(async () => {
  emulator = await startEmulator();
  const config = { endpoint: emulator.endpoint, region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  sns = new SNSClient(config);
  cloudwatch = new CloudWatchClient(config);
  server = await spawnAwsServe(emulator.endpoint, prefix, [
    '--outputs',
    outputsFile,
    '--schedule-interval',
    '2',
    '--paging',
    servePaging,
  ]);
}, 120_000);
afterAll(async () => {
  if (server) await stop(server);
  if (emulator) await teardown(emulator.endpoint, prefix).catch(() => undefined);
  sns?.destroy();
  cloudwatch?.destroy();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `crs ARGS` through main in this process (a `crs` process costs about 0.3 s of CPU to start, and the doctor is asked
 * some 20 times here); the healthy run's text report through bin/crs.js (crsProcess), the real entry point's exit 0.
 */
const crs = (args: string[]) => crsMain(args, { env: awsEnv(), wentOnMs: 60_000 });
const crsProcess = (args: string[]) => crsAsync(args, awsEnv());

/** The run's outputs, as `cdk deploy --outputs-file` writes a stack's. */
const outputs = () =>
  Object.values(JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[0]!;

/**
 * The redrive policy of a subscription the stack made, as docs/runbook.md ("A subscription is gone") has the operator
 * copy it: from another subscription of the pages topic (here a team queue's, which the host subscribed as the
 * template says).
 */
async function copiedRedrivePolicy(): Promise<string> {
  const listed = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: server.resources.topic }));
  const other = listed.Subscriptions!.find((s) => s.Protocol === 'sqs')!;
  const a = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: other.SubscriptionArn! }));
  expect(a.Attributes?.RedrivePolicy).toBeDefined();
  return a.Attributes!.RedrivePolicy!;
}

async function doctor(...extra: string[]): Promise<{ status: number | null; report: DoctorReport }> {
  const r = await crs(['doctor', '--backend', 'aws', '--outputs', outputsFile, '--json', ...extra]);
  if (r.status !== 0 && r.status !== 1) throw new Error(`crs doctor exited ${r.status}:\n${r.stderr}`);
  return { status: r.status, report: JSON.parse(r.stdout) as DoctorReport };
}

/** Asks the doctor until `ok` holds (Lambda's metrics reach CloudWatch every few seconds). */
async function doctorUntil(
  ok: (r: DoctorReport) => boolean,
  timeoutMs = 40_000,
): Promise<{ status: number | null; report: DoctorReport }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const d = await doctor();
    if (ok(d.report)) return d;
    if (Date.now() > end) throw new Error(`the doctor never saw it: ${JSON.stringify(d.report, null, 2)}`);
    await sleep(1000);
  }
}

/**
 * Waits until the doctor finds nothing wrong. The host puts Lambda's metrics every 5 s, so for a few seconds after
 * it starts the doctor says the escalate function never ran. A test that checks the one problem it makes starts
 * from a healthy run, also alone.
 */
const healthy = () => doctorUntil((r) => r.problems.length === 0);

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
const message = (
  id: string,
  patientId: string,
  sections: Partial<DeviceMessage>,
  kind: 'monitor' | 'ehr' = 'monitor',
): DeviceMessage =>
  ({
    messageId: id,
    patientId,
    observedAt: ago(60),
    source: { deviceId: `dev-${patientId}`, kind },
    ...sections,
  }) as DeviceMessage;

describe('crs doctor on the deployed shape', () => {
  it('finds a healthy run healthy: every team reached, no alarm firing, escalate and ingest running, the patient enrolled', async () => {
    expect(
      (
        await post(
          server.url,
          message(
            'doc-1',
            'D-1',
            { enrolment: { therapy: 'car-t', infusedAt: ago(2 * 86_400), weightKg: 70, bed: 'B-1', ward: 'H4' } },
            'ehr',
          ),
        )
      ).status,
    ).toBe(202);
    expect(
      (await post(server.url, message('doc-2', 'D-1', { vitals: { temperatureC: 37.2, heartRate: 80 } }))).status,
    ).toBe(202);
    const { status, report } = await doctorUntil(
      (r) =>
        r.lastRuns?.escalate !== null &&
        r.lastRuns?.grade !== null &&
        r.lastRuns?.ingest !== null &&
        r.patients?.enrolled === 1,
    );
    expect(report.problems).toEqual([]);
    expect(status).toBe(0);
    for (const team of PAGE_TEAMS)
      expect(
        report.teams[team].map((s) => [s.protocol, s.state]),
        team,
      ).toEqual([['sqs', 'confirmed']]);
    expect(report.teams.neurology[0]!.wards).toEqual(['H4', 'H5']);
    expect(report.alarms!.watched).toBeGreaterThan(20);
    expect(report.alarms!.inAlarm).toEqual([]);
    expect(report.lastRuns!.escalate).toBeLessThanOrEqual(120);
    expect(report.patients!.newestReadingSecondsAgo).toBeGreaterThanOrEqual(50);

    const text = await crsProcess(['doctor', '--backend', 'aws', '--outputs', outputsFile]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/Alarms: \d+ notify the alarm topic; 0 in ALARM/);
    expect(text.stdout).toMatch(
      /Last runs: ingest in the last (minute|2 minutes); grade in the last (minute|2 minutes); escalate in the last (minute|2 minutes)\n/,
    );
    expect(text.stdout).toContain('No problems found.');
  }, 120_000);

  // 2026-12-06: doctor reads the token table of the outputs (TokensTableName) as crs token list does.
  it('names a device token expiring within 14 days as a warning (exit 0) and an expired one as a problem (exit 1), by id and device', async () => {
    // crs serve issues tokens of its own (none ending): counted, never named.
    const base = (await healthy()).report.tokens!;
    expect(base.findings).toEqual([]);
    const table = outputs().TokensTableName!;
    const issued = await crs([
      'token',
      'issue',
      '--backend',
      'aws',
      '--table',
      table,
      '--device',
      'gw-doc',
      '--kind',
      'monitor',
      '--expires',
      '3d',
      '--json',
    ]);
    expect(issued.status).toBe(0);
    const soon = JSON.parse(issued.stdout) as { token: string; tokenId: string; expiresAt: string };
    const warned = await doctor();
    expect(warned.status).toBe(0);
    expect(warned.report.tokens).toEqual({
      table,
      active: base.active + 1,
      findings: [
        {
          tokenId: soon.tokenId,
          deviceId: 'gw-doc',
          expiresAt: soon.expiresAt,
          expired: false,
          expiryUnreadable: false,
          replacedBy: null,
        },
      ],
    });
    expect(warned.report.warnings).toContain(
      `token ${soon.tokenId} of device gw-doc expires at ${soon.expiresAt}: rotate it (crs token rotate ${soon.tokenId} --backend aws --table ${table}) and configure the device with the new token`,
    );
    // An expired one, as a token issued with --expires is once its time has passed.
    const dynamodb = new DynamoDBClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const past = ago(3600);
    await dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          tokenHash: { S: 'doctor-test-expired' },
          tokenId: { S: 'tok-doc-expired' },
          deviceId: { S: 'gw-old' },
          createdAt: { S: ago(86_400) },
          kind: { S: 'monitor' },
          expiresAt: { S: past },
        },
      }),
    );
    dynamodb.destroy();
    const failed = await doctor();
    expect(failed.status).toBe(1);
    expect(failed.report.problems).toEqual([
      `token tok-doc-expired of device gw-old expired at ${past}: the device is refused; rotate it (crs token rotate tok-doc-expired --backend aws --table ${table}) and configure the device with the new token`,
    ]);
    const text = await crs(['doctor', '--backend', 'aws', '--outputs', outputsFile]);
    expect(text.stdout).toContain(
      `Device tokens (table ${table}): ${base.active + 1} active; 1 expired (devices refused), 1 expiring within 14 days\n`,
    );
    expect(text.stdout).not.toContain(soon.token);
    // Left as the other tests expect the run: healthy.
    for (const id of [soon.tokenId, 'tok-doc-expired'])
      expect((await crs(['token', 'revoke', id, '--backend', 'aws', '--table', table])).status).toBe(0);
    expect((await doctor()).report.tokens).toEqual(base);
  }, 120_000);

  it('names an alarm in ALARM, and fails', async () => {
    await healthy();
    const name = `${prefix}-LaddersExhausted`;
    expect(
      (await cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: [name] }))).MetricAlarms?.map(
        (a) => a.TreatMissingData,
      ),
    ).toEqual(['notBreaching']);
    await cloudwatch.send(
      new SetAlarmStateCommand({ AlarmName: name, StateValue: 'ALARM', StateReason: 'a ladder ran out' }),
    );
    try {
      const { status, report } = await doctor();
      expect(status).toBe(1);
      expect(report.alarms!.inAlarm).toEqual([expect.objectContaining({ name, reason: 'a ladder ran out' })]);
      // The runbook's row as it names it, without the run's prefix (2026-12-07).
      expect(report.problems).toEqual([
        expect.stringMatching(
          new RegExp(`^alarm ${name} is in ALARM .*: see the LaddersExhausted row in docs/runbook.md$`),
        ),
      ]);
    } finally {
      await cloudwatch.send(new SetAlarmStateCommand({ AlarmName: name, StateValue: 'OK', StateReason: 'test over' }));
    }
  }, 60_000);

  // 2026-12-07: the run's outputs file had none of the outputs only the docs' steps use (MessagesDlqArn for the
  // redrive, UndeliveredAlarmsQueueUrl, IngestUrl): each the run has is written, as the stack names it. Later that
  // day: nor GradingSettings, the id the runbook has the operator compare with the audit trail's after a change.
  it("writes each stack output the docs cite into the run's outputs file, with the run's own resource", async () => {
    const o = outputs();
    expect(citedOutputNames().filter((n) => o[n] === undefined)).toEqual([]);
    expect(o.GradingSettings).toBe(gradingSettingsId(configFor('astct2019')));
    expect([o.IngestUrl, o.IngestBatchUrl]).toEqual([`${server.url}/v1/messages`, `${server.url}/v1/messages/batch`]);
    const sqs = new SQSClient({
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const attributes = async (QueueUrl: string, name: QueueAttributeName) =>
        (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: [name] }))).Attributes?.[name];
      // The grade queue's dead-letter queue, and the queue of UndeliveredAlarmsArn.
      const redrive = JSON.parse((await attributes(server.resources.queue, 'RedrivePolicy')) ?? '{}');
      expect(redrive.deadLetterTargetArn).toBe(o.MessagesDlqArn);
      expect(await attributes(o.UndeliveredAlarmsQueueUrl!, 'QueueArn')).toBe(o.UndeliveredAlarmsArn);
    } finally {
      sqs.destroy();
    }
  });

  // 2026-12-06: a mistyped PagesTopicArn ended the run on `crs doctor: NotFoundException: Topic does not exist`,
  // naming nothing, with no report.
  it('names each topic and table of the outputs that is not there, with its output, and reports the rest', async () => {
    await healthy();
    const o = outputs();
    const typo = join(dir, 'typo-outputs.json');
    const wrong = (v: string) => `${v}-typo`;
    writeFileSync(
      typo,
      JSON.stringify({
        [prefix]: {
          ...o,
          PagesTopicArn: wrong(o.PagesTopicArn!),
          AlarmTopicArn: wrong(o.AlarmTopicArn!),
          StateTableName: wrong(o.StateTableName!),
          TokensTableName: wrong(o.TokensTableName!),
        },
      }),
    );
    const r = await crs(['doctor', '--backend', 'aws', '--outputs', typo]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    for (const [output, variable, what] of [
      ['PagesTopicArn', 'CRS_PAGES_TOPIC_ARN', 'the pages topic'],
      ['AlarmTopicArn', 'CRS_ALARM_TOPIC_ARN', 'the alarm topic'],
      ['StateTableName', 'CRS_STATE_TABLE', 'the enrolled patients in table'],
      ['TokensTableName', 'CRS_TOKENS_TABLE', 'the device tokens in table'],
    ] as const)
      expect(r.stdout).toContain(
        `could not read ${what} ${wrong(o[output]!)} (${variable}, ${output} in the stack's outputs: `,
      );
    expect(r.stdout).toContain(`Pages topic ${wrong(o.PagesTopicArn!)}: could not be read (see the problems)\n`);
    expect(r.stdout).toMatch(/Last runs: .*escalate in the last/);
  }, 60_000);

  // Until 2026-12-07 each subscription was said to redrive to another queue than the one the typo named.
  it('says once that the UndeliveredPages queue of a mistyped UndeliveredPagesArn does not exist, blaming no subscription', async () => {
    await healthy();
    const o = outputs();
    const typo = join(dir, 'typo-dlq-outputs.json');
    const named = `${o.UndeliveredPagesArn!}-typo`;
    writeFileSync(typo, JSON.stringify({ [prefix]: { ...o, UndeliveredPagesArn: named } }));
    const r = await crs(['doctor', '--backend', 'aws', '--outputs', typo]);
    expect([r.status, r.stderr]).toEqual([1, '']);
    expect(r.stdout).toContain(
      `no queue ${named}: the UndeliveredPages queue named by CRS_UNDELIVERED_PAGES_ARN, UndeliveredPagesArn in the stack's outputs, does not exist`,
    );
    expect(r.stdout).not.toContain('has a redrive policy to');
  }, 60_000);

  it('finds a phone that answered STOP, an endpoint of the paging config that is gone, and SMS settings that would stop SMS pages', async () => {
    await healthy();
    // The emulator treats numbers ending in 99 as opted out.
    const phone = await sns.send(
      new SubscribeCommand({
        TopicArn: server.resources.topic,
        Protocol: 'sms',
        Endpoint: '+15550100099',
        Attributes: { FilterPolicy: JSON.stringify({ teams: ['icu'] }), RedrivePolicy: await copiedRedrivePolicy() },
        ReturnSubscriptionArn: true,
      }),
    );
    const deployPaging = join(dir, 'deploy-paging.json');
    writeFileSync(
      deployPaging,
      JSON.stringify({ teams: { icu: { email: ['icu-charge@hospital.example'], sms: ['+15550100099'] } } }),
    );
    let email: string | undefined;
    try {
      const before = await doctor('--paging', deployPaging);
      expect(before.status).toBe(1);
      expect(before.report.teams.icu.map((s) => [s.protocol, s.state])).toEqual([
        ['sqs', 'confirmed'],
        ['sms', 'opted-out'],
      ]);
      expect(before.report.missing).toEqual([
        { team: 'icu', protocol: 'email', endpoint: 'icu-charge@hospital.example' },
      ]);
      expect(before.report.problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^icu: \+15550100099 answered STOP/),
          expect.stringMatching(/^icu: email icu-charge@hospital\.example is in the paging config but not subscribed/),
          expect.stringMatching(/not Transactional/),
          expect.stringMatching(/SMS spend limit is not set/),
        ]),
      );

      // The operator re-subscribes the address and sets the account's SMS settings as docs/runbook.md says.
      email = (
        await sns.send(
          new SubscribeCommand({
            TopicArn: server.resources.topic,
            Protocol: 'email',
            Endpoint: 'icu-charge@hospital.example',
            Attributes: {
              FilterPolicy: JSON.stringify({ teams: ['icu'] }),
              RedrivePolicy: await copiedRedrivePolicy(),
            },
            ReturnSubscriptionArn: true,
          }),
        )
      ).SubscriptionArn;
      await sns.send(
        new SetSMSAttributesCommand({
          attributes: { DefaultSMSType: 'Transactional', MonthlySpendLimit: '100', DefaultSenderID: 'CRSPAGES' },
        }),
      );
      const after = await doctor('--paging', deployPaging);
      expect(after.report.missing).toEqual([]);
      expect(after.report.sms).toMatchObject({
        type: 'Transactional',
        monthlySpendLimitUsd: '100',
        senderId: 'CRSPAGES',
      });
      // What is left is the opted-out phone.
      expect(after.report.problems).toEqual([expect.stringMatching(/^icu: \+15550100099 answered STOP/)]);
    } finally {
      await sns.send(new UnsubscribeCommand({ SubscriptionArn: phone.SubscriptionArn }));
      if (email) await sns.send(new UnsubscribeCommand({ SubscriptionArn: email }));
    }
  }, 60_000);

  it("finds a subscription re-made by hand without the template's redrive, delivery or filter policy, and none re-made as the runbook says", async () => {
    await healthy();
    const undelivered = outputs().UndeliveredPagesArn;
    expect(undelivered).toMatch(/^arn:aws:sqs:.*UndeliveredPages/);
    // The endpoints of the deploy (every team has one, as the stack requires); the doctor is given three of them.
    const gateway = 'https://pager:s3cret-pw@gw.hospital.example/pages';
    const ours = {
      icu: { email: ['icu-oncall@hospital.example'] },
      neurology: { https: [gateway], wards: ['H4', 'H5'] },
      hematology: { sms: ['+15550100123'], smsKinds: ['escalation', 'alert'] },
    };
    const template = (
      await synthesizedStack({
        paging: {
          teams: {
            ...ours,
            radiology: { email: ['rad@hospital.example'] },
            bedside: { email: ['h4@hospital.example'] },
          },
        },
      })
    ).template.Resources;
    const ofTemplate = (endpoint: string) =>
      Object.values(template).find((r) => r.Type === 'AWS::SNS::Subscription' && r.Properties?.Endpoint === endpoint)!
        .Properties!;
    const deployPaging = join(dir, 'policies-paging.json');
    writeFileSync(deployPaging, JSON.stringify({ teams: ours }));
    await sns.send(
      new SetSMSAttributesCommand({
        attributes: { DefaultSMSType: 'Transactional', MonthlySpendLimit: '100', DefaultSenderID: 'CRSPAGES' },
      }),
    );
    const subscribe = async (protocol: string, endpoint: string, attributes: Record<string, unknown>) =>
      (
        await sns.send(
          new SubscribeCommand({
            TopicArn: server.resources.topic,
            Protocol: protocol,
            Endpoint: endpoint,
            Attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, JSON.stringify(v)])),
            ReturnSubscriptionArn: true,
          }),
        )
      ).SubscriptionArn!;
    const made: string[] = [];
    const unsubscribeAll = async () => {
      for (const arn of made.splice(0)) await sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
    };
    try {
      // Re-made by hand, forgetting what the template gives: the email its redrive policy; the gateway its delivery
      // policy and its wards; the SMS redriven to a queue that is not the stack's.
      made.push(
        await subscribe('email', 'icu-oncall@hospital.example', { FilterPolicy: { teams: ['icu'] } }),
        await subscribe('https', gateway, {
          FilterPolicy: { teams: ['neurology'] },
          RedrivePolicy: { deadLetterTargetArn: undelivered },
        }),
        await subscribe('sms', '+15550100123', {
          FilterPolicy: ofTemplate('+15550100123').FilterPolicy,
          RedrivePolicy: { deadLetterTargetArn: 'arn:aws:sqs:us-east-1:123456789012:somewhere-else' },
        }),
      );
      const { status, report } = await doctor('--paging', deployPaging);
      expect(status).toBe(1);
      expect(report.problems).toEqual([
        expect.stringMatching(
          /^icu: email icu-oncall@hospital\.example has no redrive policy: a page SNS cannot deliver to it is dropped, not kept in UndeliveredPages/,
        ),
        expect.stringMatching(
          /^neurology: https https:\/\/pager:\*\*\*\*@gw\.hospital\.example\/pages has no delivery policy: SNS retries it 3 times/,
        ),
        expect.stringMatching(
          /^neurology: https https:\/\/pager:\*\*\*\*@gw\.hospital\.example\/pages has the filter policy \{"teams":\["neurology"\]\}, not the template's \{"teams":\["neurology"\],"ward":\["H4","H5"\]\}/,
        ),
        expect.stringMatching(
          /^hematology: sms \+15550100123 has a redrive policy to arn:aws:sqs:us-east-1:123456789012:somewhere-else, not to UndeliveredPages /,
        ),
      ]);
      // Each says what to do: the runbook's section, or the policy to set in place (the stack's own queue).
      for (const p of report.problems) {
        expect(p).toContain(
          'see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes',
        );
        if (p.includes('redrive')) expect(p).toContain(`'{"deadLetterTargetArn":"${undelivered}"}'`);
      }
      const text = await crs(['doctor', '--backend', 'aws', '--outputs', outputsFile, '--paging', deployPaging]);
      expect(text.status).toBe(1);
      expect(text.stdout).toContain('Problems (4):');
      expect(text.stdout + JSON.stringify(report)).not.toContain('s3cret-pw');

      // Re-made as docs/runbook.md says: the redrive policy copied from another subscription of the topic, the
      // filter policy and (HTTPS) the delivery policy the template gives.
      await unsubscribeAll();
      for (const [protocol, endpoint] of [
        ['email', 'icu-oncall@hospital.example'],
        ['https', gateway],
        ['sms', '+15550100123'],
      ] as const) {
        const t = ofTemplate(endpoint);
        made.push(
          await subscribe(protocol, endpoint, {
            FilterPolicy: t.FilterPolicy,
            RedrivePolicy: JSON.parse(await copiedRedrivePolicy()),
            ...(t.DeliveryPolicy ? { DeliveryPolicy: t.DeliveryPolicy } : {}),
          }),
        );
      }
      const after = await doctor('--paging', deployPaging);
      expect(after.report.problems).toEqual([]);
      expect(after.status).toBe(0);
    } finally {
      await unsubscribeAll();
    }
  }, 120_000);

  it('finds a pages subscription the paging config does not have, and none once unsubscribed with the command it prints', async () => {
    await healthy();
    // The deploy's config has the ICU's charge nurse; the fellow who left was removed from it but stays subscribed.
    const deployPaging = join(dir, 'removed-paging.json');
    writeFileSync(deployPaging, JSON.stringify({ teams: { icu: { email: ['icu-charge@hospital.example'] } } }));
    const attributes = { FilterPolicy: JSON.stringify({ teams: ['icu'] }), RedrivePolicy: await copiedRedrivePolicy() };
    const subscribe = async (endpoint: string) =>
      (
        await sns.send(
          new SubscribeCommand({
            TopicArn: server.resources.topic,
            Protocol: 'email',
            Endpoint: endpoint,
            Attributes: attributes,
            ReturnSubscriptionArn: true,
          }),
        )
      ).SubscriptionArn!;
    const charge = await subscribe('icu-charge@hospital.example');
    const fellow = await subscribe('old-fellow@hospital.example');
    try {
      const before = await doctor('--paging', deployPaging);
      expect(before.status).toBe(1);
      expect(before.report.notInConfig).toEqual([
        { teams: ['icu'], protocol: 'email', endpoint: 'old-fellow@hospital.example', subscriptionArn: fellow },
      ]);
      expect(before.report.problems).toEqual([
        `icu: email old-fellow@hospital.example is subscribed but not in the paging config (removed from it, or subscribed by hand): it gets their patients' pages all the same; unsubscribe it: aws sns unsubscribe --subscription-arn ${fellow}`,
      ]);
      // The stand-in team queues of crs serve are not the config's: said, not failed.
      expect(before.report.warnings.filter((w) => w.startsWith('sqs '))).toHaveLength(PAGE_TEAMS.length);

      // What the problem says to run.
      const arn = before.report.problems[0]!.match(/--subscription-arn (\S+)$/)![1]!;
      await sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
      const after = await doctor('--paging', deployPaging);
      expect(after.report.notInConfig).toEqual([]);
      expect(after.report.problems).toEqual([]);
      expect(after.status).toBe(0);
    } finally {
      for (const a of [charge, fellow]) await sns.send(new UnsubscribeCommand({ SubscriptionArn: a })).catch(() => {});
    }
  }, 60_000);

  it("finds an operators' endpoint re-made by hand without its redrive or delivery policy, or gone, and none re-made as the runbook says", async () => {
    await healthy();
    const alarmTopic = outputs().AlarmTopicArn!;
    const undelivered = outputs().UndeliveredAlarmsArn;
    expect(undelivered).toMatch(/^arn:aws:sqs:.*UndeliveredAlarms/);
    expect(undelivered).not.toBe(outputs().UndeliveredPagesArn);
    const webhook = 'https://ops:w3bh00k-pw@ops.hospital.example/alarms';
    const deployPaging = join(dir, 'alarms-paging.json');
    writeFileSync(
      deployPaging,
      JSON.stringify({
        teams: {},
        alarms: { email: ['platform-oncall@hospital.example', 'db-oncall@hospital.example'], https: [webhook] },
      }),
    );
    const template = (
      await synthesizedStack({
        paging: {
          teams: Object.fromEntries(PAGE_TEAMS.map((t) => [t, { email: [`${t}@hospital.example`] }])),
          alarms: { email: ['platform-oncall@hospital.example'], https: [webhook] },
        },
      })
    ).template.Resources;
    const ofTemplate = (endpoint: string) =>
      Object.values(template).find((r) => r.Type === 'AWS::SNS::Subscription' && r.Properties?.Endpoint === endpoint)!
        .Properties!;
    const made: string[] = [];
    const subscribe = async (protocol: string, endpoint: string, attributes: Record<string, unknown>) => {
      const arn = (
        await sns.send(
          new SubscribeCommand({
            TopicArn: alarmTopic,
            Protocol: protocol,
            Endpoint: endpoint,
            Attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, JSON.stringify(v)])),
            ReturnSubscriptionArn: true,
          }),
        )
      ).SubscriptionArn!;
      made.push(arn);
      return arn;
    };
    const unsubscribeAll = async () => {
      for (const arn of made.splice(0)) await sns.send(new UnsubscribeCommand({ SubscriptionArn: arn }));
    };
    try {
      // Re-made by hand: the address without its redrive policy, the webhook without its delivery policy and redriven
      // to the pages' queue; the database on-call's address not at all.
      const email = await subscribe('email', 'platform-oncall@hospital.example', {});
      const hook = await subscribe('https', webhook, {
        RedrivePolicy: { deadLetterTargetArn: outputs().UndeliveredPagesArn },
      });
      const { status, report } = await doctor('--paging', deployPaging);
      expect(status).toBe(1);
      expect(report.alarmEndpoints).toEqual([
        { protocol: 'email', endpoint: 'platform-oncall@hospital.example', state: 'confirmed' },
        { protocol: 'https', endpoint: 'https://ops:****@ops.hospital.example/alarms', state: 'confirmed' },
      ]);
      expect(report.missing).toEqual([{ team: 'alarms', protocol: 'email', endpoint: 'db-oncall@hospital.example' }]);
      expect(report.problems).toEqual([
        'alarms: email db-oncall@hospital.example is in the paging config but not subscribed to the alarm topic (unsubscribed, or deleted): it gets no alarm notifications: see docs/runbook.md, "A subscription is gone"',
        `alarms: email platform-oncall@hospital.example has no redrive policy: an alarm notification SNS cannot deliver to it is dropped, not kept in UndeliveredAlarms, and UndeliveredAlarmsDepth stays quiet: see docs/runbook.md, "A subscription is gone", or set it in place: aws sns set-subscription-attributes --subscription-arn ${email} --attribute-name RedrivePolicy --attribute-value '{"deadLetterTargetArn":"${undelivered}"}'`,
        expect.stringMatching(
          /^alarms: https https:\/\/ops:\*\*\*\*@ops\.hospital\.example\/alarms has a redrive policy to .*UndeliveredPages.*, not to UndeliveredAlarms /,
        ),
        expect.stringMatching(
          /^alarms: https https:\/\/ops:\*\*\*\*@ops\.hospital\.example\/alarms has no delivery policy: SNS retries it 3 times/,
        ),
      ]);
      for (const p of report.problems.slice(2)) expect(p).toContain(`--subscription-arn ${hook} `);
      const text = await crs(['doctor', '--backend', 'aws', '--outputs', outputsFile, '--paging', deployPaging]);
      expect(text.stdout).toContain('Alarm topic: 2 endpoints');
      expect(text.stdout + JSON.stringify(report)).not.toContain('w3bh00k-pw');

      // Re-made as docs/runbook.md says: the redrive policy to UndeliveredAlarmsArn and (HTTPS) the template's delivery
      // policy; the database on-call's address subscribed too.
      await unsubscribeAll();
      for (const [protocol, endpoint] of [
        ['email', 'platform-oncall@hospital.example'],
        ['https', webhook],
        ['email', 'db-oncall@hospital.example'],
      ] as const) {
        const t = protocol === 'https' ? ofTemplate(endpoint) : {};
        await subscribe(protocol, endpoint, {
          RedrivePolicy: { deadLetterTargetArn: undelivered },
          ...(t.DeliveryPolicy ? { DeliveryPolicy: t.DeliveryPolicy } : {}),
        });
      }
      const after = await doctor('--paging', deployPaging);
      expect(after.report.missing).toEqual([]);
      expect(after.report.problems).toEqual([]);
      expect(after.status).toBe(0);
    } finally {
      await unsubscribeAll();
    }
  }, 120_000);

  it("sends a test page through the pages topic to one team's endpoints, ward-limited ones included, marked as a test and never graded", async () => {
    const notificationsBefore = pageLines(server.lines).length;
    const { report } = await doctor('--test-page', 'neurology');
    expect(report.testPage).toMatchObject({ team: 'neurology', endpoints: 1 });
    const testLines = () =>
      server.lines
        .filter((l) => l.includes('"test-page"'))
        .map((l) => JSON.parse(l) as { team: string; testId: string });
    // Every team queue read to its end: a copy that another team wrongly received would be printed by now.
    const h = await settle(server, 0, 30_000);
    expect(h.pages.testPages).toBe(1);
    expect(testLines()).toEqual([
      { type: 'test-page', team: 'neurology', testId: report.testPage!.testId, sentAt: expect.any(String) },
    ]);
    expect(pageLines(server.lines).length).toBe(notificationsBefore); // nothing graded, nothing paged
    expect(
      (await crs(['doctor', '--backend', 'aws', '--outputs', outputsFile, '--test-page', 'pharmacy'])).status,
    ).toBe(2);
  }, 60_000);

  it('reads what it needs from the outputs file only', () => {
    const outputs = Object.values(
      JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>,
    )[0]!;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        'PagesTopicArn',
        'AlarmTopicArn',
        'IngestFunctionName',
        'GradeFunctionName',
        'EscalateFunctionName',
        'StateTableName',
        'UndeliveredPagesArn',
        'UndeliveredAlarmsArn',
      ]),
    );
  });

  // Last: it stops the server and deletes the run.
  it('crs serve --backend aws --teardown deletes the run: no table, queue or topic of its prefix is left', async () => {
    const config = {
      endpoint: emulator.endpoint,
      region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    };
    const dynamodb = new DynamoDBClient(config);
    const sqs = new SQSClient(config);
    const ofRun = async () => ({
      tables: ((await dynamodb.send(new ListTablesCommand({}))).TableNames ?? []).filter((n) => n.startsWith(prefix)),
      queues: (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? [],
      topics: ((await sns.send(new ListTopicsCommand({}))).Topics ?? []).filter((t) =>
        t.TopicArn!.split(':').at(-1)!.startsWith(prefix),
      ),
    });
    try {
      const before = await ofRun();
      expect(before.tables.length).toBeGreaterThan(0);
      expect(before.queues.length).toBeGreaterThan(0);
      expect(before.topics.length).toBeGreaterThan(0);
      expect(await stop(server)).toBe(0);
      // In another region nothing of the run is there: it says so and exits 1, creating nothing there (until
      // 2026-12-06 it provisioned the run in that region, deleted it, and said "deleted run").
      const elsewhere = region === 'eu-west-1' ? 'eu-central-1' : 'eu-west-1';
      const wrong = await crsAsync(
        ['serve', '--backend', 'aws', '--teardown', '--endpoint', emulator.endpoint, '--prefix', prefix],
        { ...awsEnv(), AWS_REGION: elsewhere },
      );
      expect(wrong.status).toBe(1);
      expect(wrong.stderr).toContain(`nothing of run ${prefix} on endpoint ${emulator.endpoint} (region ${elsewhere})`);
      const there = new SQSClient({ ...config, region: elsewhere });
      const thereTables = new DynamoDBClient({ ...config, region: elsewhere });
      try {
        expect((await there.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? []).toEqual([]);
        expect((await thereTables.send(new ListTablesCommand({}))).TableNames ?? []).toEqual(
          expect.not.arrayContaining([expect.stringMatching(new RegExp(`^${prefix}-`))]),
        );
      } finally {
        there.destroy();
        thereTables.destroy();
      }
      expect(await ofRun()).toEqual(before);
      const said = await teardown(emulator.endpoint, prefix, { always: true });
      expect(await ofRun()).toEqual({ tables: [], queues: [], topics: [] });
      // It says what it deleted, the alarms too (they watched the run's metrics).
      expect(said).toMatch(/deleted run .*: \d+ queues, \d+ tables, 2 topics, 1 secret, [1-9]\d* alarms/);
    } finally {
      dynamodb.destroy();
      sqs.destroy();
    }
  }, 60_000);
});
