// What the deployed stack itself bills for, read from the template `cdk synth` produces (the same app, context and
// cdk-nag checks as `npm run synth`): keys, alarms and the metrics they watch, secrets, each function's memory and
// log levels, log retention, each table's capacity mode, point-in-time recovery and indexes, the backup plan's
// rules and the tables they cover, the access-log format, a CloudTrail trail, and the team subscriptions.
import { synthesize, PAGING } from '../infra/synth.ts';

export type FunctionName = 'ingest' | 'grade' | 'notify' | 'escalate' | 'ack';
export type TableName = 'state' | 'pages' | 'audit' | 'tokens' | 'seen';

interface TableFacts {
  billing: 'PAY_PER_REQUEST' | 'PROVISIONED';
  pitr: boolean;
  tableClass: string;
}

interface BackupRule {
  name: string;
  /** Day of month the rule runs on, or undefined for every day. */
  dayOfMonth?: number;
  /** Once a week (a day-of-week rule). */
  weekly?: boolean;
  deleteAfterDays: number;
  coldAfterDays?: number;
  tables: TableName[];
}

export interface StackFacts {
  kmsKeys: number;
  /** Metrics watched by alarms (AWS bills an alarm per metric it evaluates). */
  alarmMetrics: number;
  alarms: number;
  secrets: number;
  functions: Record<FunctionName, { memoryMb: number; systemLogLevel: string; powertoolsLogLevel: string }>;
  logRetentionDays: number;
  tables: Partial<Record<TableName, TableFacts>>;
  /** The tables `-c capacity=provisioned` provisions: those written on every message. */
  perMessageTables: TableName[];
  /** The tables `-c historyTableClass=infrequent-access` puts in Standard-IA: those that only grow. */
  historyTables: TableName[];
  backups: BackupRule[];
  accessLogFormat: string;
  /** CloudTrail data events on the audit table (the production context). */
  auditDataEvents: boolean;
  /** Subscriptions per team, by protocol. */
  subscriptions: Record<string, Record<string, number>>;
  /** The kinds of page a team's SMS subscriptions let through (`smsKinds`); a team absent here gets every kind. */
  smsKinds: Record<string, string[]>;
}

const TABLE_IDS: [string, TableName][] = [
  ['StateTable', 'state'],
  ['PagesTable', 'pages'],
  ['AuditTable', 'audit'],
  ['TokensTable', 'tokens'],
  ['SeenMessagesTable', 'seen'],
];

const tableOf = (logicalId: string) =>
  TABLE_IDS.find(
    ([prefix]) => logicalId.startsWith(prefix) && /^[A-Z0-9]{8}$/.test(logicalId.slice(prefix.length)),
  )?.[1];

type Resources = [string, { Type: string; Properties?: any }][];

function tablesOf(resources: Resources): Partial<Record<TableName, TableFacts>> {
  const tables: Partial<Record<TableName, TableFacts>> = {};
  for (const [id, r] of resources.filter(([, r]) => r.Type === 'AWS::DynamoDB::Table')) {
    const name = tableOf(id);
    if (!name) throw new Error(`the cost model does not know table ${id}`);
    tables[name] = {
      billing: r.Properties.BillingMode ?? 'PROVISIONED',
      pitr: r.Properties.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled === true,
      tableClass: r.Properties.TableClass ?? 'STANDARD',
    };
  }
  return tables;
}

/**
 * The template's resources, synthesized with this context: no asset bundling and no CloudFormation validation by the
 * CDK (its WebAssembly engine, about 7 s of CPU in each process), since the resources are what is billed and
 * `npm run synth` and the stack tests validate the same template.
 */
function resourcesOf(context: Record<string, unknown>): Resources {
  return Object.entries(
    synthesize({ paging: PAGING, 'aws:cdk:bundling-stacks': [], ...context }, { cloudFormationValidation: false })
      .template.Resources,
  );
}

export function stackFacts(context: Record<string, unknown> = {}): StackFacts {
  const resources = resourcesOf(context);
  const ofType = (t: string) => resources.filter(([, r]) => r.Type === t);

  const functions = {} as StackFacts['functions'];
  for (const [id, r] of ofType('AWS::Lambda::Function')) {
    const name = (['Ingest', 'Grade', 'Notify', 'Escalate', 'Ack'] as const).find((n) => id.startsWith(`${n}Function`));
    if (!name) continue;
    const p = r.Properties;
    functions[name.toLowerCase() as FunctionName] = {
      memoryMb: p.MemorySize ?? 128,
      systemLogLevel: p.LoggingConfig?.SystemLogLevel ?? 'INFO',
      powertoolsLogLevel: p.Environment?.Variables?.POWERTOOLS_LOG_LEVEL ?? 'INFO',
    };
  }

  const tables = tablesOf(resources);
  // Which tables each scenario's set-up changes, as the stack decides it: the same stack provisioned, in Standard-IA.
  const variant = Object.entries(
    tablesOf(resourcesOf({ ...context, capacity: 'provisioned', historyTableClass: 'infrequent-access' })),
  ) as [TableName, TableFacts][];
  const perMessageTables = variant.filter(([, t]) => t.billing === 'PROVISIONED').map(([name]) => name);
  const historyTables = variant.filter(([, t]) => t.tableClass === 'STANDARD_INFREQUENT_ACCESS').map(([name]) => name);

  // Backup rules and the tables each plan's selection covers.
  const selections = new Map<string, TableName[]>();
  for (const [, r] of ofType('AWS::Backup::BackupSelection')) {
    const plan = r.Properties.BackupPlanId?.['Fn::GetAtt']?.[0] as string;
    const covered = JSON.stringify(r.Properties.BackupSelection.Resources ?? []).match(/"([A-Za-z0-9]+)","Arn"/g) ?? [];
    selections.set(plan, [
      ...(selections.get(plan) ?? []),
      ...covered.map((s) => tableOf(s.split('"')[1]!)!).filter(Boolean),
    ]);
  }
  const backups: BackupRule[] = [];
  for (const [id, r] of ofType('AWS::Backup::BackupPlan')) {
    for (const rule of r.Properties.BackupPlan.BackupPlanRule) {
      const cron = /cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)/.exec(rule.ScheduleExpression ?? '');
      const day = cron && /^\d+$/.test(cron[3]!) ? Number(cron[3]) : undefined;
      const weekly = cron !== null && /^[A-Z]{3}$|^[1-7]$/.test(cron[5]!);
      backups.push({
        name: rule.RuleName,
        ...(day !== undefined ? { dayOfMonth: day } : {}),
        ...(weekly ? { weekly: true } : {}),
        deleteAfterDays: rule.Lifecycle?.DeleteAfterDays ?? 36_500,
        ...(rule.Lifecycle?.MoveToColdStorageAfterDays !== undefined
          ? { coldAfterDays: rule.Lifecycle.MoveToColdStorageAfterDays }
          : {}),
        tables: selections.get(id) ?? [],
      });
    }
  }

  let alarmMetrics = 0;
  for (const [, r] of ofType('AWS::CloudWatch::Alarm')) {
    alarmMetrics += r.Properties.Metrics
      ? (r.Properties.Metrics as { MetricStat?: unknown }[]).filter((m) => m.MetricStat).length
      : 1;
  }

  const subscriptions: StackFacts['subscriptions'] = {};
  const smsKinds: StackFacts['smsKinds'] = {};
  for (const [, r] of ofType('AWS::SNS::Subscription')) {
    const teams = (r.Properties.FilterPolicy?.teams as string[] | undefined) ?? [];
    const kinds = r.Properties.FilterPolicy?.kind as string[] | undefined;
    for (const team of teams) {
      const byProtocol = (subscriptions[team] ??= {});
      byProtocol[r.Properties.Protocol] = (byProtocol[r.Properties.Protocol] ?? 0) + 1;
      if (r.Properties.Protocol === 'sms' && kinds) smsKinds[team] = kinds;
    }
  }

  const logGroups = ofType('AWS::Logs::LogGroup').filter(([id]) => /^(Ingest|Grade|Notify|Escalate|Ack)Logs/.test(id));
  const stage = ofType('AWS::ApiGatewayV2::Stage')[0]?.[1];
  return {
    kmsKeys: ofType('AWS::KMS::Key').length,
    alarmMetrics,
    alarms: ofType('AWS::CloudWatch::Alarm').length,
    secrets: ofType('AWS::SecretsManager::Secret').length,
    functions,
    logRetentionDays: Math.max(...logGroups.map(([, r]) => r.Properties.RetentionInDays ?? 3653)),
    tables,
    perMessageTables,
    historyTables,
    backups,
    accessLogFormat: stage?.Properties.AccessLogSettings?.Format ?? '',
    auditDataEvents: ofType('AWS::CloudTrail::Trail').length > 0,
    subscriptions,
    smsKinds,
  };
}
