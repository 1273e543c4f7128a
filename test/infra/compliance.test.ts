// The synth gate: cdk-nag's AwsSolutions and HIPAA Security packs find nothing unacknowledged (and every
// acknowledgement has a real reason), a new violation does fail the synth, and cfn-lint finds no error.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAGING, synthesize, templateApp } from './synth.ts';

interface Report {
  pluginReports: {
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: { ruleName: string; reason: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

let synth: ReturnType<typeof synthesize>;
let report: Report;
/** The production context: CloudTrail data events, vault lock and a copy vault. */
let prod: ReturnType<typeof synthesize>;

beforeAll(() => {
  // The packs and cfn-lint read the template, not the functions' code: no bundling (stack.test.ts checks the bundles).
  synth = synthesize({ paging: PAGING, 'aws:cdk:bundling-stacks': [] });
  report = JSON.parse(readFileSync(join(synth.outdir, 'validation-report.json'), 'utf8')) as Report;
  prod = synthesize({
    paging: PAGING,
    production: 'true',
    backupVaultLock: 'true',
    backupCopyVaultArn: 'arn:aws:backup:eu-central-1:210987654321:backup-vault:crs-copies',
    'aws:cdk:bundling-stacks': [],
  });
}, 120_000);

describe('cdk-nag at synth', () => {
  it('runs the AwsSolutions and HIPAA Security packs and both pass with no unacknowledged finding', () => {
    const byName = Object.fromEntries(report.pluginReports.map((r) => [r.pluginName, r]));
    for (const pack of ['AwsSolutions', 'HIPAA.Security']) {
      expect(byName[pack], pack).toBeDefined();
      expect(byName[pack]!.conclusion, pack).toBe('success');
      expect(byName[pack]!.violations, pack).toEqual([]);
    }
  });

  it('acknowledges only known findings, each with a reason that explains it', () => {
    const acknowledged = report.pluginReports.flatMap((r) =>
      r.suppressedViolations.map((v) => ({
        rule: v.ruleName.replace(/\[.*$/, ''),
        reason: v.reason,
        where: v.violatingConstructs.map((c) => c.constructPath),
      })),
    );
    expect([...new Set(acknowledged.map((a) => a.rule))].sort()).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-IAM4',
      'AwsSolutions-IAM5',
      'AwsSolutions-L1',
      'AwsSolutions-SMG4',
      'AwsSolutions-SQS3',
      'HIPAA.Security-LambdaDLQ',
      'HIPAA.Security-LambdaInsideVPC',
      'HIPAA.Security-SecretsManagerRotationEnabled',
    ]);
    for (const a of acknowledged) {
      expect(a.reason.length, `${a.rule} on ${a.where.join(', ')}`).toBeGreaterThan(80);
    }
    // Nothing on the data path is waived: no finding on a table, key, topic or the FIFO queue is acknowledged.
    const paths = acknowledged.flatMap((a) => a.where);
    for (const p of paths)
      expect(p).not.toMatch(
        /\/(StateTable|PagesTable|AuditTable|TokensTable|Key|AlarmKey|Pages|Alarms|Messages|MessagesDlq|EscalationTimers)\//,
      );
    // The link secret's one waiver is scheduled rotation (rotating it would void the links of pages in flight).
    expect(
      acknowledged
        .filter((a) => a.where.some((w) => w.includes('/AckSigningSecret/')))
        .map((a) => a.rule)
        .sort(),
    ).toEqual(['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled']);
  });

  it('fails the synth on a finding nobody acknowledged (the gate is real)', () => {
    const { app, stack } = templateApp({
      outdir: mkdtempSync(join(tmpdir(), 'crs-cdk-bad-')),
      context: { paging: PAGING },
    });
    new sqs.Queue(stack, 'Unencrypted', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => app.synth()).toThrow(/CrsAlerting\/Unencrypted\/Resource[\s\S]*AwsSolutions-SQS/);
  }, 120_000);
});

describe('the production context', () => {
  it("with CloudTrail data events, vault lock and a copy vault, passes both packs with only the trail bucket's acknowledged findings", () => {
    const r = JSON.parse(readFileSync(join(prod.outdir, 'validation-report.json'), 'utf8')) as Report;
    for (const pack of r.pluginReports) expect(pack.violations, pack.pluginName).toEqual([]);
    const onTrailBucket = r.pluginReports.flatMap((p) =>
      p.suppressedViolations
        .filter((v) => v.violatingConstructs.some((c) => c.constructPath.includes('/Audit/TrailBucket/')))
        .map((v) => v.ruleName),
    );
    expect(onTrailBucket.sort()).toEqual([
      'AwsSolutions-S1',
      'HIPAA.Security-S3BucketLoggingEnabled',
      'HIPAA.Security-S3BucketReplicationEnabled',
    ]);
  });
});

describe('cfn-lint', () => {
  it('finds no error in the synthesized templates, the production context too', () => {
    // Both templates in one run: cfn-lint takes about 2 s of CPU to start.
    const run = spawnSync('cfn-lint', ['--format', 'json', '--', synth.templatePath, prod.templatePath], {
      encoding: 'utf8',
    });
    expect(run.error, 'cfn-lint is installed and runs').toBeUndefined();
    const findings = JSON.parse(run.stdout) as {
      Level: string;
      Rule: { Id: string };
      Message: string;
      Filename: string;
    }[];
    const errors = findings.filter((f) => f.Level === 'Error');
    expect(errors.map((e) => `${e.Filename}: ${e.Rule.Id}: ${e.Message}`)).toEqual([]);
    // cfn-lint's exit status has bit 2 set for errors (4 is warnings, 8 informational).
    expect((run.status ?? 0) & 2).toBe(0);
  }, 120_000); // cfn-lint takes 10-20 s idle, over 30 s on a loaded machine
});
