// The stack's cost settings (docs/cost.md): functions log warnings and errors only unless told otherwise (Lambda's
// START/REPORT lines too), the tables written on every message can be provisioned with auto scaling, and long-kept
// backups can move to cold storage; cdk-nag accepts each (test/infra/compliance.test.ts runs the packs on the
// default stack; here they run on the others).
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { PAGING, templateApp } from './synth.ts';

type Resource = { Type: string; Properties?: any };

function synth(context: Record<string, unknown> = {}) {
  const { app, stack } = templateApp({ context: { paging: PAGING, ...context } });
  const assembly = app.synth();
  const messages = assembly.getStackArtifact(stack.artifactId).messages.filter((m) => m.level === 'error');
  const template = Template.fromStack(stack);
  const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
  return { stack, template, resources: template.toJSON().Resources as Record<string, Resource>, errors: messages, id };
}

/** The scalable targets' logical ids, sorted. */
const targetIds = (resources: Record<string, Resource>) =>
  Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::ApplicationAutoScaling::ScalableTarget')
    .map(([k]) => k)
    .sort();

/**
 * Each scaling policy's target and utilization, by target. A target without a policy stays at its minimum whatever
 * the load: a loop over the policies alone passed with none.
 */
const policyTargets = (resources: Record<string, Resource>) =>
  Object.values(resources)
    .filter((r) => r.Type === 'AWS::ApplicationAutoScaling::ScalingPolicy')
    .map((p) => [p.Properties.ScalingTargetId.Ref, p.Properties.TargetTrackingScalingPolicyConfiguration.TargetValue])
    .sort(([a], [b]) => (String(a) < String(b) ? -1 : 1));

describe('logs', () => {
  it("are warnings and errors only by default, Lambda's platform events too, and everything with logLevel=INFO", () => {
    const quiet = synth();
    const verbose = synth({ logLevel: 'info' });
    for (const [s, level] of [
      [quiet, 'WARN'],
      [verbose, 'INFO'],
    ] as const) {
      const fns = Object.values(s.resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      expect(fns).toHaveLength(5);
      for (const fn of fns) {
        expect(fn.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL).toBe(level);
        // Application logs are filtered by Powertools: Lambda's own filter would drop the EMF metric lines.
        expect(fn.Properties.LoggingConfig).toEqual({
          LogFormat: 'JSON',
          SystemLogLevel: level,
          LogGroup: expect.anything(),
        });
      }
    }
    expect(() => templateApp({ context: { logLevel: 'LOUD' } })).toThrow(
      /logLevel must be one of DEBUG, INFO, WARN, ERROR/,
    );
  }, 120_000);
});

describe('capacity', () => {
  it('is on demand by default', { timeout: 60_000 }, () => {
    const { template } = synth();
    for (const table of Object.values(template.findResources('AWS::DynamoDB::Table')))
      expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('provisioned: the state and seen-messages tables (and the stale-feed index) follow the load at 70 %, the pages, audit and tokens tables stay on demand', () => {
    const { stack, resources, errors, id } = synth({ capacity: 'provisioned', capacityLimits: { min: 10, max: 2000 } });
    expect(errors).toEqual([]); // cdk-nag: a provisioned table has auto scaling
    for (const t of [stack.stateTable, stack.seenTable]) {
      expect(resources[id(t)]!.Properties).toMatchObject({
        ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 10 },
      });
      expect(resources[id(t)]!.Properties.BillingMode).toBeUndefined();
    }
    expect(resources[id(stack.stateTable)]!.Properties.GlobalSecondaryIndexes[0]).toMatchObject({
      IndexName: 'byFeed',
      ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 10 },
    });
    for (const t of [stack.pagesTable, stack.tokensTable, stack.auditTable])
      expect(resources[id(t)]!.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    const targets = Object.values(resources)
      .filter((r) => r.Type === 'AWS::ApplicationAutoScaling::ScalableTarget')
      .map((r) => r.Properties);
    expect(targets.map((t) => t.ScalableDimension).sort()).toEqual([
      'dynamodb:index:ReadCapacityUnits',
      'dynamodb:index:WriteCapacityUnits',
      'dynamodb:table:ReadCapacityUnits',
      'dynamodb:table:ReadCapacityUnits',
      'dynamodb:table:WriteCapacityUnits',
      'dynamodb:table:WriteCapacityUnits',
    ]);
    for (const t of targets) expect(t).toMatchObject({ MinCapacity: 10, MaxCapacity: 2000 });
    expect(policyTargets(resources)).toEqual(targetIds(resources).map((t) => [t, 70]));
    expect(() => templateApp({ context: { capacity: 'reserved' } })).toThrow(
      /capacity must be on-demand or provisioned/,
    );
    expect(() => templateApp({ context: { capacity: 'provisioned', capacityLimits: { min: 10, max: 5 } } })).toThrow(
      /1 <= min <= max/,
    );
  }, 60_000);
});

describe('table class', () => {
  it('is Standard by default; -c historyTableClass=infrequent-access puts the tables that only grow in Standard-IA', () => {
    const standard = synth();
    for (const table of Object.values(standard.template.findResources('AWS::DynamoDB::Table')))
      expect(table.Properties.TableClass ?? 'STANDARD').toBe('STANDARD');
    const { stack, resources, errors, id } = synth({ historyTableClass: 'infrequent-access' });
    expect(errors).toEqual([]);
    for (const t of [stack.auditTable, stack.seenTable])
      expect(resources[id(t)]!.Properties.TableClass).toBe('STANDARD_INFREQUENT_ACCESS');
    for (const t of [stack.stateTable, stack.pagesTable, stack.tokensTable])
      expect(resources[id(t)]!.Properties.TableClass).toBeUndefined();
    expect(() => templateApp({ context: { historyTableClass: 'glacier' } })).toThrow(
      /historyTableClass: "glacier" is not one of standard, infrequent-access/,
    );
  }, 120_000);
});

describe('backups', () => {
  it('move the monthly ones to cold storage when asked, which the retention must allow; the audit table daily when asked', () => {
    const { stack, resources, errors, id } = synth({
      production: 'true',
      backupColdStorageAfterDays: 30,
      auditBackups: 'daily',
    });
    expect(errors).toEqual([]);
    expect(stack.audit.historyPlan).toBeUndefined();
    const rules = resources[id(stack.audit.plan)]!.Properties.BackupPlan.BackupPlanRule as {
      RuleName: string;
      Lifecycle: unknown;
    }[];
    expect(rules.map((r) => [r.RuleName, r.Lifecycle])).toEqual([
      ['Daily', { DeleteAfterDays: 35 }], // kept less than 30 + 90 days: stays warm
      ['Monthly', { DeleteAfterDays: 365, MoveToColdStorageAfterDays: 30 }],
    ]);
    expect(() => templateApp({ context: { backupColdStorageAfterDays: 30 } })).toThrow(
      /needs monthly backups kept at least 120 days/,
    );
    expect(() => templateApp({ context: { auditBackups: 'hourly' } })).toThrow(
      /auditBackups must be daily, weekly, monthly/,
    );
    // Weekly on demand: the audit and seen-messages tables every Sunday, kept as long as the daily ones.
    const weekly = synth({ auditBackups: 'weekly' });
    const history = weekly.resources[weekly.id(weekly.stack.audit.historyPlan!)]!.Properties.BackupPlan
      .BackupPlanRule as { RuleName: string; ScheduleExpression: string }[];
    expect(history.map((r) => [r.RuleName, r.ScheduleExpression])).toEqual([['Weekly', 'cron(0 5 ? * SUN *)']]);
  }, 60_000);
});

describe('capacity and logs, pinned by a mutation run', () => {
  it('provisioned without limits: 5 units to start and at least, 4,000 at most, 70 % target (docs/aws.md)', () => {
    const { stack, resources, id } = synth({ capacity: 'provisioned' });
    for (const t of [stack.stateTable, stack.seenTable])
      expect(resources[id(t)]!.Properties.ProvisionedThroughput).toEqual({
        ReadCapacityUnits: 5,
        WriteCapacityUnits: 5,
      });
    expect(resources[id(stack.stateTable)]!.Properties.GlobalSecondaryIndexes[0].ProvisionedThroughput).toEqual({
      ReadCapacityUnits: 5,
      WriteCapacityUnits: 5,
    });
    const targets = Object.values(resources).filter((r) => r.Type === 'AWS::ApplicationAutoScaling::ScalableTarget');
    expect(targets).toHaveLength(6);
    for (const t of targets) expect(t.Properties).toMatchObject({ MinCapacity: 5, MaxCapacity: 4000 });
    expect(policyTargets(resources)).toEqual(targetIds(resources).map((t) => [t, 70]));
  }, 60_000);

  it('takes limits at their edges (min = max, min 1, a target of 20 or 90 %) and refuses them just past', () => {
    const ok = (capacityLimits: Record<string, number>) =>
      expect(() => templateApp({ context: { capacity: 'provisioned', capacityLimits } })).not.toThrow();
    const refused = (capacityLimits: Record<string, number>, why: RegExp) =>
      expect(() => templateApp({ context: { capacity: 'provisioned', capacityLimits } })).toThrow(why);
    ok({ min: 7, max: 7 });
    ok({ min: 1, max: 10 });
    ok({ targetUtilization: 20 });
    ok({ targetUtilization: 90 });
    // The target given is the one every policy tracks: the other tests see only the default (70).
    for (const target of [20, 90]) {
      const { resources } = synth({ capacity: 'provisioned', capacityLimits: { targetUtilization: target } });
      expect(policyTargets(resources)).toEqual(targetIds(resources).map((t) => [t, target]));
    }
    refused({ min: 0, max: 10 }, /1 <= min <= max/);
    refused({ min: 2.5, max: 10 }, /whole numbers, 1 <= min <= max/);
    refused({ min: 5, max: 4000.5 }, /whole numbers, 1 <= min <= max/);
    refused({ targetUtilization: 19 }, /targetUtilization must be a whole percentage 20-90/);
    refused({ targetUtilization: 91 }, /targetUtilization must be a whole percentage 20-90/);
    // A limit misspelt is refused, not left at its default without a word.
    refused({ minimum: 10 }, /capacityLimits: no limit "minimum" \(min, max, targetUtilization\)/);
    expect(() => templateApp({ context: { capacity: 'provisioned', capacityLimits: '10' } })).toThrow(
      'capacityLimits must be a JSON object of min, max, targetUtilization (got 10)',
    );
  }, 60_000);

  it('refuses capacityLimits on on-demand tables, where they did nothing (the tables stayed on demand without a word)', () => {
    for (const capacity of [undefined, 'on-demand'])
      expect(() =>
        templateApp({
          context: { ...(capacity ? { capacity } : {}), capacityLimits: '{"min":10,"max":2000}' },
        }),
      ).toThrow(
        'capacityLimits is given, but the tables are on demand (capacity on-demand): add -c capacity=provisioned, or leave capacityLimits out',
      );
  });

  it('DEBUG brings Lambda platform events at DEBUG, ERROR keeps them at WARN', () => {
    for (const [level, system] of [
      ['debug', 'DEBUG'],
      ['error', 'WARN'],
    ] as const) {
      const fns = Object.values(synth({ logLevel: level }).resources).filter((r) => r.Type === 'AWS::Lambda::Function');
      for (const fn of fns) {
        expect(fn.Properties.LoggingConfig.SystemLogLevel, level).toBe(system);
        expect(fn.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL, level).toBe(level.toUpperCase());
      }
    }
  }, 60_000);
});
