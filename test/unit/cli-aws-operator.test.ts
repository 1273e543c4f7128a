// The operator commands of the AWS backend, `crs silence ... --backend aws` and `crs audit export --backend aws`,
// as a user runs them: a mistake is named before any AWS call, and the names of the tables come from flags, the
// functions' variables or the stack's outputs file (as `cdk deploy --outputs-file` or `crs serve --backend aws
// --outputs` write it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { operatorVariables, readOutputs } from '#cli/aws-operator.ts';
import { CLI } from '#test/support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-operator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The environment without any CRS_* or AWS endpoint setting (and an endpoint nobody listens on, should a call slip out). */
const cleanEnv = () => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CRS_') && k !== 'AWS_ENDPOINT_URL')),
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'x',
  AWS_SECRET_ACCESS_KEY: 'x',
});
const crs = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });

describe('crs silence --backend aws', () => {
  it('names every missing or bad field of a silence before calling AWS', () => {
    const r = crs('silence', 'create', '--backend', 'aws', '--patient', 'P-1', '--minutes', '2000');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--minutes: how long, 1 to 1440');
    expect(r.stderr).toContain('--reason: is required');
    expect(r.stderr).toContain('--by: is required');
    const both = crs(
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
    expect(crs('silence', 'end', '--backend', 'aws', '--by', 'N').stderr).toContain('end takes exactly one SILENCE_ID');
  });

  it("says where the deployment's names come from when none is given", () => {
    const r = crs('silence', 'list', '--backend', 'aws');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      "no CRS_ACK_SECRET_ARN: set CRS_ACK_SECRET_ARN, or give the stack's outputs with --outputs FILE",
    );
  });
});

describe('crs audit export --backend aws', () => {
  it('says which table is missing', () => {
    const r = crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no CRS_AUDIT_TABLE: pass --table NAME, set CRS_AUDIT_TABLE');
    // The seen-messages table carries most assessments: a trail read without it would be silently short.
    const seen = crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws', '--table', 'audit-1');
    expect(seen.status).toBe(2);
    expect(seen.stderr).toContain('no CRS_SEEN_TABLE: pass --seen-table NAME, set CRS_SEEN_TABLE');
    // The state item carries the assessments of a patient's last messages (until the next save moves them).
    const state = crs('audit', 'export', '--patient', 'P-1', '--backend', 'aws', '--table', 'a', '--seen-table', 's');
    expect(state.status).toBe(2);
    expect(state.stderr).toContain('no CRS_STATE_TABLE: pass --state-table NAME, set CRS_STATE_TABLE');
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
  });
});
