// The operator commands of the AWS backend, `crs silence ... --backend aws` and `crs audit export --backend aws`,
// as a user runs them: a mistake is named before any AWS call, and the names of the tables come from flags, the
// functions' variables or the stack's outputs file (as `cdk deploy --outputs-file` or `crs serve --backend aws
// --outputs` write it).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { auditSource, need, operatorPaging, operatorVariables, readOutputs } from '#cli/aws-operator.ts';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { AUDIT_TABLE, SEEN_TABLE, STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { gradePatient } from '#app/grade.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { AuditEvent } from '#ports';
import { crsMain } from '#test/support/cli.ts';
import { FakeDynamo } from '#test/support/fake-dynamo.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-operator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The environment without any CRS_* setting (undefined: unset for the call) and with an endpoint nobody listens on,
 * should a call slip out.
 */
const cleanEnv = (): Record<string, string | undefined> => ({
  ...Object.fromEntries(Object.keys(process.env).flatMap((k) => (k.startsWith('CRS_') ? [[k, undefined]] : []))),
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'x',
  AWS_SECRET_ACCESS_KEY: 'x',
});
// Through main in this process (a `crs` process costs about 0.25 s of CPU to start): each command family keeps a
// test through bin/crs.js in the AWS integration files (aws-doctor, aws-paging, aws-conservation, aws-token-hint).
const crs = (...args: string[]) => crsMain(args, { env: cleanEnv(), wentOnMs: 30_000 });

describe('crs silence --backend aws', () => {
  it('names every missing or bad field of a silence before calling AWS', async () => {
    const r = await crs('silence', 'create', '--backend', 'aws', '--patient', 'P-1', '--minutes', '2000');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--minutes: how long, 1 to 1440');
    expect(r.stderr).toContain('--reason: is required');
    expect(r.stderr).toContain('--by: is required');
    const both = await crs(
      'silence',
      'create',
      '--backend',
      'aws',
      '--patient',
      'P-1',
      '--team',
      'icu',
      '--minutes',
      '5',
      '--by',
      'N',
      '--reason',
      'x',
    );
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/give either patientId or team, not both/);
    expect((await crs('silence', 'end', '--backend', 'aws', '--by', 'N')).stderr).toContain(
      'end takes exactly one SILENCE_ID',
    );
  });

  it("says where the deployment's names come from when none is given", async () => {
    const r = await crs('silence', 'list', '--backend', 'aws');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      "no CRS_ACK_SECRET_ARN: set CRS_ACK_SECRET_ARN, or give the stack's outputs with --outputs FILE",
    );
  });
});

describe('crs audit export --backend aws', () => {
  it('says which table is missing', async () => {
    const r = await crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no CRS_AUDIT_TABLE: pass --table NAME, set CRS_AUDIT_TABLE');
    // The seen-messages table carries most assessments: a trail read without it would be silently short.
    const seen = await crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws', '--table', 'audit-1');
    expect(seen.status).toBe(2);
    expect(seen.stderr).toContain('no CRS_SEEN_TABLE: pass --seen-table NAME, set CRS_SEEN_TABLE');
    // The state item carries the assessments of a patient's last messages (until the next save moves them).
    const state = await crs(
      'audit',
      'export',
      '--patient',
      'P-1',
      '--backend',
      'aws',
      '--table',
      'a',
      '--seen-table',
      's',
    );
    expect(state.status).toBe(2);
    expect(state.stderr).toContain('no CRS_STATE_TABLE: pass --state-table NAME, set CRS_STATE_TABLE');
  });

  // A table name given wrong answered only "ResourceNotFoundException: Requested resource not found": the failure
  // line names the tables it read (here the endpoint nobody listens on fails the first read).
  it('names the tables it was reading when a read fails', async () => {
    const tables = { table: 'audit-typo', 'seen-table': 'seen-1', 'state-table': 'state-1' };
    const flags = Object.entries(tables).flatMap(([k, v]) => [`--${k}`, v]);
    const r = await crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws', ...flags);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^crs audit: reading the trail failed after 0 entries: the export is incomplete \(.+; DynamoDB tables audit-typo, seen-1 and state-1\)\n$/,
    );
  });
});

// A patient id that no patient can have (a trailing CR pasted from a file, a control character, 100,000 characters)
// read nothing and said so with exit 0 ("0 entries for patient P-1\r"), as if the patient's trail were empty; on
// AWS one too long for a key failed as an incomplete export (exit 1). Refused before anything is opened, on both.
describe('crs audit export --patient', () => {
  it.each([['embedded'], ['aws']])(
    'refuses an id no patient can have, on %s, naming it (escaped) with exit 2',
    async (backend) => {
      const data = join(dir, 'audit-ids');
      openDataDir(data).close(); // a database, so that an export would run
      for (const bad of ['P-1\r', 'P 1', '\u001b[31mP', 'x'.repeat(100_000), '../P-1']) {
        const r = await crs(
          'audit',
          'export',
          '--patient',
          bad,
          '--backend',
          backend,
          '--data',
          data,
          '--table',
          'a',
          '--seen-table',
          's',
          '--state-table',
          'st',
        );
        expect(r.status, JSON.stringify(bad).slice(0, 40)).toBe(2);
        expect(r.stderr).toMatch(
          /^crs audit: --patient must be a patient id \(1-64 characters of A-Z a-z 0-9 \. _ : -\) or \* \(team-wide entries\)/,
        );
        expect(r.stderr).not.toMatch(/[\r\u001b]/);
      }
    },
  );
});

describe('crs outbox --backend aws', () => {
  it('says which name is missing, as a usage error (2) as the other operator commands do', async () => {
    for (const action of [['list'], ['retry', '--all']]) {
      const r = await crs('outbox', ...action, '--backend', 'aws');
      expect(r.status, action.join(' ')).toBe(2);
      expect(r.stderr).toContain(
        "crs outbox: no CRS_ACK_SECRET_ARN: set CRS_ACK_SECRET_ARN, or give the stack's outputs with --outputs FILE",
      );
      expect(r.stderr).toContain('usage:');
    }
  });
});

describe('every AWS operator command with no AWS region', () => {
  // Every name given (the outputs file), so that only the region is missing; no profile to take one from.
  const outputs = join(dir, 'region-outputs.json');
  writeFileSync(
    outputs,
    JSON.stringify({
      CrsAlerting: {
        StateTableName: 'state-1',
        PagesTableName: 'pages-1',
        AuditTableName: 'audit-1',
        SeenTableName: 'seen-1',
        PagesTopicArn: 'arn:aws:sns:eu-west-1:123456789012:pages',
        EscalationQueueUrl: 'http://127.0.0.1:9/timers',
        AckSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ack',
        AckBaseUrl: 'https://api.example/ack/',
        TokensTableName: 'tokens-1',
        AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
        NotifyFailuresQueueUrl: 'http://127.0.0.1:9/notify-failures',
      },
    }),
  );
  const regionless = (extra: Record<string, string> = {}) => ({
    ...cleanEnv(),
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
    ...extra,
  });
  const run = (args: string[], extra?: Record<string, string>) =>
    crsMain(args, { env: regionless(extra), wentOnMs: 30_000 });
  const NO_REGION =
    'no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile), e.g. AWS_REGION=eu-west-1';

  it.each([
    ['token list', ['--table', 'tokens-1']],
    ['outbox list', ['--outputs', outputs]],
    ['outbox retry', ['--all', '--outputs', outputs]],
    ['doctor', ['--outputs', outputs]],
    ['audit export', ['--patient', 'P-1', '--outputs', outputs]],
    ['silence list', ['--outputs', outputs]],
    ['silence end', ['sil_AAAAAAAAAAAA', '--by', 'N', '--outputs', outputs]],
    ['silence create', ['--patient', 'P-1', '--minutes', '5', '--by', 'N', '--reason', 'x', '--outputs', outputs]],
  ])(
    'crs %s --backend aws: a usage error (2) saying how to set the region, before any AWS call',
    async (command, args) => {
      const r = await run([...command.split(' '), '--backend', 'aws', ...args]);
      expect(r.status, r.stderr).toBe(2);
      const prefix = `crs ${command.split(' ')[0]}:`;
      expect(r.stderr.split('\n').find((l) => l.startsWith(prefix))).toBe(`${prefix} ${NO_REGION}`);
    },
  );

  it("takes AWS_DEFAULT_REGION, as the AWS CLI does, and the profile's region (the call then goes out)", async () => {
    const config = join(dir, 'aws-config');
    writeFileSync(config, '[default]\nregion = eu-west-2\n');
    for (const extra of [{ AWS_DEFAULT_REGION: 'eu-west-1' }, { AWS_CONFIG_FILE: config }] as Record<
      string,
      string
    >[]) {
      const r = await run(['token', 'list', '--backend', 'aws', '--table', 'tokens-1'], extra);
      expect(r.status, JSON.stringify(extra)).toBe(1);
      expect(r.stderr).toContain('ECONNREFUSED'); // the endpoint nobody listens on: the region was found
    }
  });
});

describe("the stack's outputs", () => {
  it('name the tables, topic, timers queue and secret; a flag or a variable wins over the file', () => {
    const file = join(dir, 'outputs.json');
    writeFileSync(
      file,
      JSON.stringify({
        CrsAlerting: {
          PagesTableName: 'pages-1',
          AuditTableName: 'audit-1',
          SeenTableName: 'seen-1',
          AckSecretArn: 'arn:secret',
          IngestUrl: 'https://x',
        },
      }),
    );
    expect(readOutputs(file)).toEqual({
      CRS_PAGES_TABLE: 'pages-1',
      CRS_AUDIT_TABLE: 'audit-1',
      CRS_SEEN_TABLE: 'seen-1',
      CRS_ACK_SECRET_ARN: 'arn:secret',
    });
    expect(operatorVariables(file, { CRS_PAGES_TABLE: 'pages-env' }, { CRS_AUDIT_TABLE: 'audit-flag' })).toMatchObject({
      CRS_PAGES_TABLE: 'pages-env',
      CRS_AUDIT_TABLE: 'audit-flag',
      CRS_ACK_SECRET_ARN: 'arn:secret',
    });
    writeFileSync(file, '[]');
    expect(() => readOutputs(file)).toThrow(/is not a CDK outputs file/);
    // Nor is a list holding one stack's outputs (its index was read as the stack's name by a mutant no test failed).
    writeFileSync(file, JSON.stringify([{ PagesTableName: 'pages-1' }]));
    expect(() => readOutputs(file)).toThrow(/is not a CDK outputs file/);
  });
});

describe("the operator's names and tables: pinned by a mutation run", () => {
  it('reads every name the stack outputs, under its own variable', () => {
    const file = join(dir, 'all-outputs.json');
    const names = {
      StateTableName: 'state-1',
      PagesTableName: 'pages-1',
      AuditTableName: 'audit-1',
      SeenTableName: 'seen-1',
      PagesTopicArn: 'arn:topic',
      EscalationQueueUrl: 'https://sqs/timers',
      AckSecretArn: 'arn:secret',
      AckBaseUrl: 'https://api/ack/',
      TokensTableName: 'tokens-1',
      AlarmTopicArn: 'arn:alarms',
      IngestFunctionName: 'ingest-fn',
      GradeFunctionName: 'grade-fn',
      EscalateFunctionName: 'escalate-fn',
      NotifyFailuresQueueUrl: 'https://sqs/notify-failures',
      TeamsWithoutEndpoints: 'radiology',
    };
    writeFileSync(
      file,
      JSON.stringify({
        CrsAlerting: { ...names, IngestUrl: 'https://x', Count: 3 },
      }),
    );
    expect(readOutputs(file)).toEqual({
      CRS_STATE_TABLE: 'state-1',
      CRS_PAGES_TABLE: 'pages-1',
      CRS_AUDIT_TABLE: 'audit-1',
      CRS_SEEN_TABLE: 'seen-1',
      CRS_PAGES_TOPIC_ARN: 'arn:topic',
      CRS_ESCALATION_QUEUE_URL: 'https://sqs/timers',
      CRS_ACK_SECRET_ARN: 'arn:secret',
      CRS_ACK_BASE_URL: 'https://api/ack/',
      CRS_TOKENS_TABLE: 'tokens-1',
      CRS_ALARM_TOPIC_ARN: 'arn:alarms',
      CRS_INGEST_FUNCTION: 'ingest-fn',
      CRS_GRADE_FUNCTION: 'grade-fn',
      CRS_ESCALATE_FUNCTION: 'escalate-fn',
      CRS_NOTIFY_FAILURES_QUEUE: 'https://sqs/notify-failures',
      CRS_TEAMS_WITHOUT_ENDPOINTS: 'radiology',
    });
    // A file whose first stack is not an object of outputs is refused as such (not read as naming nothing).
    writeFileSync(file, JSON.stringify({ CrsAlerting: 'pages-1' }));
    expect(() => readOutputs(file)).toThrow(/is not a CDK outputs file/);
  });

  // `cdk deploy --all --outputs-file` writes every stack's outputs in one file: the first was read without a word,
  // whichever deployment that was (2026-12-06).
  it('refuses a file of several stacks, naming them and saying how to keep one', async () => {
    const file = join(dir, 'two-stacks.json');
    writeFileSync(
      file,
      JSON.stringify({ CrsStaging: { PagesTableName: 'pages-1' }, CrsAlerting: { PagesTableName: 'pages-2' } }),
    );
    const refusal = `${file} holds the outputs of several stacks (CrsStaging, CrsAlerting): keep one stack's outputs in the file (cdk deploy STACK --outputs-file FILE)`;
    expect(() => readOutputs(file)).toThrow(refusal);
    const r = await crs('doctor', '--backend', 'aws', '--outputs', file);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`crs doctor: ${refusal}`);
    const token = await crs('token', 'list', '--backend', 'aws', '--outputs', file);
    expect(token.status).toBe(2);
    expect(token.stderr).toContain(refusal);
    // A stack that names none of the outputs (another app's) leaves one to read, wherever it is in the file.
    writeFileSync(file, JSON.stringify({ Pipeline: { BucketName: 'b' }, CrsAlerting: { PagesTableName: 'pages-2' } }));
    expect(readOutputs(file)).toEqual({ CRS_PAGES_TABLE: 'pages-2' });
  });

  // `crs doctor --outputs paging.json --paging outputs.json`, the two JSON files swapped: the paging config was read
  // as a stack named "teams" with no outputs, and the command said `no CRS_PAGES_TOPIC_ARN: ..., or give the stack's
  // outputs with --outputs FILE` to an operator who had given one.
  it('refuses a file that names none of the stack outputs, saying so (a paging config given as --outputs)', async () => {
    const r = await crs('doctor', '--backend', 'aws', '--outputs', 'infra/paging.example.json');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^crs doctor: infra\/paging\.example\.json names none of the stack's outputs \(PagesTopicArn, TokensTableName, \.\.\.\): give the file cdk deploy --outputs-file wrote \(or crs serve --backend aws --outputs\)\n/,
    );
    const token = await crs('token', 'list', '--backend', 'aws', '--outputs', 'infra/paging.example.json');
    expect(token.status).toBe(2);
    expect(token.stderr).toContain("infra/paging.example.json names none of the stack's outputs");
  });

  it('takes a flag over the variable over the file; an empty variable or an unset flag hides nothing', () => {
    const file = join(dir, 'precedence.json');
    writeFileSync(
      file,
      JSON.stringify({ CrsAlerting: { PagesTableName: 'pages-file', AuditTableName: 'audit-file' } }),
    );
    const vars = operatorVariables(
      file,
      { CRS_PAGES_TABLE: 'pages-env', CRS_AUDIT_TABLE: '' },
      { CRS_PAGES_TABLE: 'pages-flag', CRS_AUDIT_TABLE: undefined },
    );
    expect(vars).toEqual({ CRS_PAGES_TABLE: 'pages-flag', CRS_AUDIT_TABLE: 'audit-file' });
    expect(need(vars, 'CRS_AUDIT_TABLE', 'table')).toBe('audit-file');
    // A name left empty in the file is missing, said so (never a call to a table named "").
    writeFileSync(file, JSON.stringify({ CrsAlerting: { AuditTableName: '' } }));
    expect(() => need(operatorVariables(file, {}), 'CRS_AUDIT_TABLE', 'table')).toThrow(
      'no CRS_AUDIT_TABLE: pass --table NAME, set CRS_AUDIT_TABLE',
    );
  });

  it('`crs audit export --backend aws` reads the audit, seen-messages and state tables it was given, each as itself', async () => {
    const ddb = new FakeDynamo({
      'audit-x': { partitionKey: AUDIT_TABLE.partitionKey, sortKey: AUDIT_TABLE.sortKey },
      'seen-x': { partitionKey: SEEN_TABLE.partitionKey, sortKey: SEEN_TABLE.sortKey },
      'state-x': { partitionKey: STATE_TABLE.partitionKey, sortKey: STATE_TABLE.sortKey },
    });
    try {
      const states = new DynamoStateStore(ddb.client(), 'state-x', () => T0, 'audit-x', 'seen-x');
      await gradePatient(states, DEFAULT_CONFIG, 'P-9', [
        enrol('P-9', -60),
        msg('P-9', 0, { vitals: { temperatureC: 38.7 } }),
      ]);
      await gradePatient(states, DEFAULT_CONFIG, 'P-9', [msg('P-9', 10, { vitals: { temperatureC: 37.1 } })]);
      const expected: AuditEvent[] = [];
      for await (const e of new DynamoAuditLog(ddb.client(), 'audit-x', () => T0, {
        seenTable: 'seen-x',
        stateTable: 'state-x',
      }).forPatient('P-9'))
        expected.push(e);
      expect(expected.filter((e) => e.type === 'assessment')).toHaveLength(3);
      vi.stubEnv('AWS_REGION', 'eu-west-1');
      const source = await auditSource({ table: 'audit-x', 'seen-table': 'seen-x', 'state-table': 'state-x' });
      const read: AuditEvent[] = [];
      for await (const e of source.log.forPatient('P-9')) read.push(e);
      source.close();
      expect(read).toEqual(expected);
    } finally {
      vi.unstubAllEnvs();
      ddb.restore();
    }
  });
});

describe("the operator's pager (crs silence --backend aws): pinned by a mutation run", () => {
  it('is built only with every name the functions run it with: a silence ended must page as they do', async () => {
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'operator-ack-secret-of-at-least-32-bytes' });
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    try {
      const vars = {
        CRS_ACK_SECRET_ARN: 'arn:secret',
        CRS_ACK_BASE_URL: 'https://api/ack/',
        CRS_PAGES_TABLE: 'pages',
        CRS_AUDIT_TABLE: 'audit',
        CRS_STATE_TABLE: 'state',
        CRS_PAGES_TOPIC_ARN: 'arn:topic',
        CRS_ESCALATION_QUEUE_URL: 'https://sqs/timers',
      };
      const built = await operatorPaging(vars, DEFAULT_CONFIG);
      expect(built.sender).toBeDefined();
      built.close();
      for (const name of Object.keys(vars)) {
        const without: Record<string, string> = { ...vars };
        delete without[name];
        await expect(operatorPaging(without, DEFAULT_CONFIG), name).rejects.toThrow(`no ${name}:`);
      }
      expect(secrets.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId)).toContain('arn:secret');
    } finally {
      vi.unstubAllEnvs();
      secrets.restore();
    }
  });
});

// test/integration/aws-ack-key.test.ts rotates the stack's secret on moto, which allows every call: what Secrets
// Manager refuses there is said here, in one line naming what to check (2026-12-07).
describe('crs ack-key --backend aws, refused by Secrets Manager', () => {
  const denied = () =>
    Object.assign(
      new Error('User: arn:aws:iam::1:user/op is not authorized to perform: secretsmanager:PutSecretValue'),
      {
        name: 'AccessDeniedException',
      },
    );
  const env = () => ({ ...cleanEnv(), CRS_ACK_SECRET_ARN: 'arn:secret' });
  const stages = { VersionIdsToStages: { v1: ['AWSCURRENT'], v0: ['AWSPREVIOUS'] } };

  it('names the permissions when access is denied (exit 1)', async () => {
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(DescribeSecretCommand).resolves(stages).on(PutSecretValueCommand).rejects(denied());
    try {
      const r = await crsMain(['ack-key', 'rotate', '--backend', 'aws'], { env: env() });
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^crs ack-key: putting a new value in arn:secret failed: AccessDeniedException: /);
      expect(r.stderr).toContain("check the operator's credentials and IAM permissions: secretsmanager:DescribeSecret");
      expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
    } finally {
      secrets.restore();
    }
  });

  // A mutation run (2026-12-07): drop-previous alone refused was never tried.
  it('says drop-previous could not remove AWSPREVIOUS, and from which secret (exit 1)', async () => {
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(DescribeSecretCommand).resolves(stages).on(UpdateSecretVersionStageCommand).rejects(denied());
    try {
      const r = await crsMain(['ack-key', 'drop-previous', '--backend', 'aws'], { env: env() });
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toMatch(/^crs ack-key: removing AWSPREVIOUS from arn:secret failed: AccessDeniedException: /);
      expect(secrets.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    } finally {
      secrets.restore();
    }
  });

  it('says the new key was put when the previous one could not be dropped after it (exit 1)', async () => {
    const secrets = mockClient(SecretsManagerClient);
    let putVersion: string | undefined;
    secrets
      .on(DescribeSecretCommand)
      // After the put, the version it replaced (v1) is AWSPREVIOUS, as Secrets Manager moves it.
      .callsFake(() =>
        putVersion === undefined
          ? stages
          : { VersionIdsToStages: { [putVersion]: ['AWSCURRENT'], v1: ['AWSPREVIOUS'] } },
      )
      .on(PutSecretValueCommand)
      .callsFake((input: { ClientRequestToken: string }) => {
        putVersion = input.ClientRequestToken;
        return { VersionId: putVersion };
      })
      .on(UpdateSecretVersionStageCommand)
      .rejects(denied());
    try {
      const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], { env: env() });
      expect([r.status, r.stdout]).toEqual([1, '']);
      const [put] = secrets.commandCalls(PutSecretValueCommand);
      const version = put!.args[0].input.ClientRequestToken;
      expect(r.stderr).toMatch(
        new RegExp(
          `^crs ack-key: new acknowledge-link key in arn:secret \\(version ${version}, AWSCURRENT\\), but removing AWSPREVIOUS failed \\(the previous key still verifies: crs ack-key drop-previous --backend aws once mended\\): AccessDeniedException`,
        ),
      );
      expect(r.stderr).not.toContain(put!.args[0].input.SecretString);
    } finally {
      secrets.restore();
    }
  });
});

// Found 2026-12-07: rotate --drop-previous read AWSPREVIOUS back after its put and removed it from whatever version
// carried it then; a rotation by someone else in between made that the new key (or theirs), which it voided.
describe('crs ack-key rotate --drop-previous --backend aws, the secret changed by someone else meanwhile', () => {
  const env = () => ({ ...cleanEnv(), CRS_ACK_SECRET_ARN: 'arn:secret' });
  /** A secret on v1 (v0 before it): the stages DescribeSecret gives after the put, given the version put. */
  const secretThen = (afterPut: (put: string) => Record<string, string[]>) => {
    const secrets = mockClient(SecretsManagerClient);
    let put: string | undefined;
    secrets
      .on(DescribeSecretCommand)
      .callsFake(() => ({
        VersionIdsToStages: put === undefined ? { v1: ['AWSCURRENT'], v0: ['AWSPREVIOUS'] } : afterPut(put),
      }))
      .on(PutSecretValueCommand)
      .callsFake((input: { ClientRequestToken: string }) => {
        put = input.ClientRequestToken;
        return { VersionId: put };
      })
      .on(UpdateSecretVersionStageCommand)
      .resolves({});
    return secrets;
  };

  it('removes AWSPREVIOUS from the version it replaced, and says so', async () => {
    const secrets = secretThen((put) => ({ [put]: ['AWSCURRENT'], v1: ['AWSPREVIOUS'], v0: [] }));
    try {
      const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], { env: env() });
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(secrets.commandCalls(UpdateSecretVersionStageCommand).map((c) => c.args[0].input)).toEqual([
        { SecretId: 'arn:secret', VersionStage: 'AWSPREVIOUS', RemoveFromVersionId: 'v1' },
      ]);
      expect(r.stdout).toContain('no previous key kept (AWSPREVIOUS removed from version v1)');
    } finally {
      secrets.restore();
    }
  });

  it('another rotation between the put and the drop: removes nothing, and says what the labels are (exit 1)', async () => {
    // Theirs (v3) made the new key AWSPREVIOUS; the key replaced (v1) already verifies no link.
    const secrets = secretThen((put) => ({ v3: ['AWSCURRENT'], [put]: ['AWSPREVIOUS'], v1: [], v0: [] }));
    try {
      const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], { env: env() });
      const put = secrets.commandCalls(PutSecretValueCommand)[0]!.args[0].input.ClientRequestToken;
      expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`new acknowledge-link key put in arn:secret (version ${put})`);
      expect(r.stderr).toContain('the version it replaced (v1) no longer carries AWSPREVIOUS');
      expect(r.stderr).toContain(`AWSCURRENT on v3, AWSPREVIOUS on ${put}`);
      expect(r.stderr).toContain('nothing removed');
      expect(r.stderr).toContain('the key it replaced verifies no link');
    } finally {
      secrets.restore();
    }
  });

  it('the replaced version dropped by someone else: removes nothing, none is AWSPREVIOUS (exit 1)', async () => {
    const secrets = secretThen((put) => ({ [put]: ['AWSCURRENT'], v1: [], v0: [] }));
    try {
      const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], { env: env() });
      const put = secrets.commandCalls(PutSecretValueCommand)[0]!.args[0].input.ClientRequestToken;
      expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`AWSCURRENT on ${put}, AWSPREVIOUS on none`);
    } finally {
      secrets.restore();
    }
  });

  // Pinned by a mutation run (2026-12-07): the message said the replaced key verified no link whatever its labels.
  it('the replaced version made AWSCURRENT again by someone else: removes nothing, says it still verifies', async () => {
    const secrets = secretThen((put) => ({ v1: ['AWSCURRENT'], [put]: ['AWSPREVIOUS'], v0: [] }));
    try {
      const r = await crsMain(['ack-key', 'rotate', '--drop-previous', '--backend', 'aws'], { env: env() });
      const put = secrets.commandCalls(PutSecretValueCommand)[0]!.args[0].input.ClientRequestToken;
      expect(secrets.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toContain(`AWSCURRENT on v1, AWSPREVIOUS on ${put}`);
      expect(r.stderr).toContain('the key it replaced still verifies (it is AWSCURRENT)');
    } finally {
      secrets.restore();
    }
  });
});

// crsMain (test/support/cli.ts) runs the commands above in this process, their variables set for the call alone.
describe('crsMain env', () => {
  it('sets the variables for the call, unsets those given as undefined, and puts each back after', async () => {
    // process.env itself, not vi.stubEnv (which changes import.meta.env's object: another file that replaced
    // process.env leaves the two apart in the worker, and this test then failed in a whole run).
    const saved = { audit: process.env.CRS_AUDIT_TABLE, seen: process.env.CRS_SEEN_TABLE };
    process.env.CRS_AUDIT_TABLE = 'audit-before';
    delete process.env.CRS_SEEN_TABLE;
    try {
      const env = { ...cleanEnv(), CRS_SEEN_TABLE: 'seen-1', CRS_AUDIT_TABLE: undefined };
      const r = await crsMain(['audit', 'export', '--patient', 'P-1', '--backend', 'aws'], { env });
      expect(r.stderr).toContain('no CRS_AUDIT_TABLE'); // unset for the call; the seen table (set) not missed
      expect([process.env.CRS_AUDIT_TABLE, 'CRS_SEEN_TABLE' in process.env]).toEqual(['audit-before', false]);
      // A second call while one runs is refused (it would capture the first's output and change its variables).
      const first = crsMain(['token', 'list', '--backend', 'aws', '--table', 't'], { env });
      await expect(crsMain(['--help'])).rejects.toThrow('while another crsMain runs');
      expect((await first).stderr).toContain('ECONNREFUSED 127.0.0.1:9');
      expect([process.env.CRS_AUDIT_TABLE, 'CRS_SEEN_TABLE' in process.env]).toEqual(['audit-before', false]);
      expect(process.env.AWS_ENDPOINT_URL).not.toBe('http://127.0.0.1:9');
    } finally {
      for (const [name, value] of [
        ['CRS_AUDIT_TABLE', saved.audit],
        ['CRS_SEEN_TABLE', saved.seen],
      ] as const)
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
    }
  });
});
