// What keeps the audit trail (and the rest of the data) beyond the tables themselves:
// - AWS Backup: daily (and optionally monthly) backups of every table into a vault with a key of its own, kept
//   for a configurable time, optionally copied to a vault in another account or region, and optionally locked in
//   compliance mode: once the grace time (3 days) has passed, nobody, the account root included, can delete a
//   recovery point before its retention ends or shorten the retention. The tables that only grow (the audit
//   trail and the seen messages) are backed up monthly by default (`auditBackups`: weekly or daily on demand): a
//   DynamoDB backup is a full copy, so 35 daily copies of a table that only grows cost 35 times its size (by month
//   12, most of the bill), while point-in-time recovery already restores any second of the last 35 days, deletion
//   protection guards the tables, and deleting one with point-in-time recovery on leaves a 35-day system backup.
//   Backups kept long enough (monthly ones) can move to cold storage (`coldStorageAfterDays`).
// - CloudTrail data events on the Audit table (optional; on in the production context): every call on the table
//   itself, with who made it, recorded in a bucket of its own (encrypted, versioned, log files signed by
//   CloudTrail's digests, optionally object-locked), and sent to a log group whose metric filter alarms on any
//   attempt to change or delete an audit entry. The functions' roles can only PutItem and Query the table; the
//   trail is what shows it stayed so.
// docs/runbook.md says what each guarantees and what it costs.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ManagedPolicyRole } from './function-defaults.ts';
import { letLogGroupsUse } from './keys.ts';
import { DeployInputError } from './deploy-input.ts';

export interface AuditOptions {
  /** Days each daily backup is kept (AWS Backup's own default plan keeps 35). */
  backupRetentionDays: number;
  /** Days each monthly backup (the 1st of the month) is kept; 0 for no monthly backups. */
  monthlyRetentionDays: number;
  /** Vault lock in compliance mode (irreversible after 3 days). */
  vaultLock: boolean;
  /** Copy every backup into this vault (another account or region), kept as long. */
  copyVaultArn?: string;
  /** CloudTrail data events on the Audit table. */
  dataEvents: boolean;
  /** Days the trail's log files are kept (and locked, with vaultLock). */
  trailRetentionDays: number;
  /** How often the tables that only grow (the audit trail, the seen messages) are backed up. */
  historyBackups: HistoryBackups;
  /**
   * Move backups to cold storage this many days after they are taken (AWS Backup keeps them there at least 90
   * days, so only rules kept at least this + 90 days move: the monthly ones). Needs AWS Backup's advanced features
   * for DynamoDB turned on for the account (docs/runbook.md).
   */
  coldStorageAfterDays?: number;
}

const HISTORY_BACKUPS = ['daily', 'weekly', 'monthly'] as const;
type HistoryBackups = (typeof HISTORY_BACKUPS)[number];

export const DEFAULT_AUDIT: AuditOptions = {
  backupRetentionDays: 35,
  monthlyRetentionDays: 0,
  vaultLock: false,
  dataEvents: false,
  trailRetentionDays: 365,
  historyBackups: 'monthly',
};

/** What the production context turns on unless told otherwise. */
export const PRODUCTION_AUDIT: Partial<AuditOptions> = { dataEvents: true, monthlyRetentionDays: 365 };

/** Days AWS Backup and S3 Object Lock accept as a retention. */
const MAX_RETENTION_DAYS = 36_500;

function checkAuditOptions(o: AuditOptions): AuditOptions {
  const days = (name: keyof AuditOptions, min: number) => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < min || v > MAX_RETENTION_DAYS)
      throw new DeployInputError(
        `${name} must be a whole number of days ${min}-${MAX_RETENTION_DAYS} (got ${JSON.stringify(v)})`,
      );
  };
  days('backupRetentionDays', 1);
  days('monthlyRetentionDays', 0);
  days('trailRetentionDays', 1);
  if (!(HISTORY_BACKUPS as readonly string[]).includes(o.historyBackups))
    throw new DeployInputError(
      `auditBackups must be ${HISTORY_BACKUPS.join(', ')} (got ${JSON.stringify(o.historyBackups)})`,
    );
  if (o.coldStorageAfterDays !== undefined) {
    days('coldStorageAfterDays', 1);
    if (o.monthlyRetentionDays < o.coldStorageAfterDays + 90) {
      throw new DeployInputError(
        `backupColdStorageAfterDays ${o.coldStorageAfterDays} needs monthly backups kept at least ${o.coldStorageAfterDays + 90} days (AWS Backup keeps cold backups 90 days at least); backupMonthlyRetentionDays is ${o.monthlyRetentionDays}`,
      );
    }
  }
  if (
    o.copyVaultArn !== undefined &&
    !/^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:backup-vault:[A-Za-z0-9_.-]+$/.test(o.copyVaultArn)
  ) {
    throw new DeployInputError(`backupCopyVaultArn is not a backup vault ARN (got ${JSON.stringify(o.copyVaultArn)})`);
  }
  return o;
}

export interface AuditRetentionProps extends AuditOptions {
  tables: dynamodb.ITable[];
  /** Tables that only grow (of `tables`): backed up as `historyBackups` says. */
  historyTables: dynamodb.ITable[];
  /** The tables that hold audit entries: the Audit table, and the SeenMessages table (first-time assessments). */
  auditTables: dynamodb.ITable[];
  logRetention: logs.RetentionDays;
}

export class AuditRetention extends Construct {
  readonly key: kms.Key;
  readonly vault: backup.BackupVault;
  readonly plan: backup.BackupPlan;
  /** The plan of the tables that only grow, unless they are backed up daily like the others. */
  readonly historyPlan?: backup.BackupPlan;
  readonly trail?: cloudtrail.CfnTrail;
  readonly trailBucket?: s3.Bucket;
  readonly trailLogs?: logs.LogGroup;

  constructor(scope: Construct, id: string, props: AuditRetentionProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const o = checkAuditOptions(props);

    // A key of its own: backups and the trail stay readable whatever happens to the data key (and its policy).
    this.key = new kms.Key(this, 'Key', {
      description: "CRS alerting: backups of the tables and the audit table's CloudTrail data events",
      enableKeyRotation: true,
      alias: 'alias/crs-alerting-audit',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const longest = Math.max(o.backupRetentionDays, o.monthlyRetentionDays);
    const shortest = Math.min(o.backupRetentionDays, o.monthlyRetentionDays || o.backupRetentionDays);
    this.vault = new backup.BackupVault(this, 'Vault', {
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
      ...(o.vaultLock
        ? {
            lockConfiguration: {
              minRetention: Duration.days(shortest),
              // The CDK takes a maximum only above the minimum: with one retention (daily backups alone, or monthly
              // ones kept as long) there is none, which stopped the synth of `-c backupVaultLock=true` alone.
              ...(longest > shortest ? { maxRetention: Duration.days(longest) } : {}),
              // Compliance mode: after these 3 days of grace the lock can no longer be changed or removed.
              changeableFor: Duration.days(3),
            },
          }
        : {}),
    });
    const copyTo = o.copyVaultArn
      ? backup.BackupVault.fromBackupVaultArn(this, 'CopyVault', o.copyVaultArn)
      : undefined;
    const rule = (ruleName: string, schedule: events.Schedule, days: number) => {
      const cold =
        o.coldStorageAfterDays !== undefined && days >= o.coldStorageAfterDays + 90
          ? Duration.days(o.coldStorageAfterDays)
          : undefined;
      return new backup.BackupPlanRule({
        ruleName,
        scheduleExpression: schedule,
        deleteAfter: Duration.days(days),
        ...(cold ? { moveToColdStorageAfter: cold } : {}),
        ...(copyTo
          ? {
              copyActions: [
                {
                  destinationBackupVault: copyTo,
                  deleteAfter: Duration.days(days),
                  ...(cold ? { moveToColdStorageAfter: cold } : {}),
                },
              ],
            }
          : {}),
      });
    };
    const firstOfMonth = events.Schedule.cron({ minute: '0', hour: '5', day: '1' });
    const monthly = o.monthlyRetentionDays > 0 ? [rule('Monthly', firstOfMonth, o.monthlyRetentionDays)] : [];
    const apart = o.historyBackups !== 'daily' && props.historyTables.length > 0;
    const history = new Set(apart ? props.historyTables : []);
    this.plan = new backup.BackupPlan(this, 'Plan', {
      backupPlanName: `${stack.stackName}-tables`,
      backupVault: this.vault,
      backupPlanRules: [
        rule('Daily', events.Schedule.cron({ minute: '0', hour: '5' }), o.backupRetentionDays),
        ...monthly,
      ],
    });
    const tables = this.plan.addSelection('Tables', {
      resources: props.tables.filter((t) => !history.has(t)).map((t) => backup.BackupResource.fromDynamoDbTable(t)),
    });
    if (apart) {
      this.historyPlan = new backup.BackupPlan(this, 'HistoryPlan', {
        backupPlanName: `${stack.stackName}-history`,
        backupVault: this.vault,
        backupPlanRules:
          o.historyBackups === 'weekly'
            ? [
                rule('Weekly', events.Schedule.cron({ minute: '0', hour: '5', weekDay: 'SUN' }), o.backupRetentionDays),
                ...monthly,
              ]
            : [rule('Monthly', firstOfMonth, Math.max(o.backupRetentionDays, o.monthlyRetentionDays))],
      });
      // The same backup role as the other tables'.
      this.historyPlan.addSelection('Tables', {
        resources: props.historyTables.map((t) => backup.BackupResource.fromDynamoDbTable(t)),
        role: tables.grantPrincipal as iam.IRole,
      });
    }

    if (!o.dataEvents) return;

    // ---- CloudTrail data events on the Audit table. The trail is named, so that its ARN can be written into the
    // bucket and key policies it needs before it exists.
    const trailName = `${stack.stackName}-audit-table`;
    const trailArn = `arn:${stack.partition}:cloudtrail:${stack.region}:${stack.account}:trail/${trailName}`;
    this.trailBucket = new s3.Bucket(this, 'TrailBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      versioned: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { expiration: Duration.days(o.trailRetentionDays), noncurrentVersionExpiration: Duration.days(1) },
      ],
      ...(o.vaultLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(o.trailRetentionDays)),
          }
        : {}),
    });
    const fromThisTrail = { StringEquals: { 'aws:SourceArn': trailArn } };
    const cloudTrail = new iam.ServicePrincipal('cloudtrail.amazonaws.com');
    this.trailBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailAclCheck',
        principals: [cloudTrail],
        actions: ['s3:GetBucketAcl'],
        resources: [this.trailBucket.bucketArn],
        conditions: fromThisTrail,
      }),
    );
    this.trailBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailWrite',
        principals: [cloudTrail],
        actions: ['s3:PutObject'],
        resources: [this.trailBucket.arnForObjects(`AWSLogs/${stack.account}/*`)],
        conditions: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': trailArn } },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailOfThisTrail',
        principals: [cloudTrail],
        actions: ['kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceArn': trailArn },
          StringLike: {
            'kms:EncryptionContext:aws:cloudtrail:arn': `arn:${stack.partition}:cloudtrail:*:${stack.account}:trail/*`,
          },
        },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailDescribeKey',
        principals: [cloudTrail],
        actions: ['kms:DescribeKey'],
        resources: ['*'],
      }),
    );
    letLogGroupsUse(this.key);

    this.trailLogs = new logs.LogGroup(this, 'TrailLogs', {
      retention: props.logRetention,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new ManagedPolicyRole(this, 'TrailLogsRole', {
      assumedBy: cloudTrail,
      description: "crs audit trail: CloudTrail delivers the Audit table's data events to their log group",
    });
    this.trailLogs.grantWrite(role);

    this.trail = new cloudtrail.CfnTrail(this, 'Trail', {
      trailName,
      isLogging: true,
      s3BucketName: this.trailBucket.bucketName,
      kmsKeyId: this.key.keyArn,
      enableLogFileValidation: true,
      isMultiRegionTrail: false,
      includeGlobalServiceEvents: false,
      cloudWatchLogsLogGroupArn: this.trailLogs.logGroupArn,
      cloudWatchLogsRoleArn: role.roleArn,
      // Data events on the tables of audit entries only (reads and writes); management events stay with the
      // account's trail.
      advancedEventSelectors: [
        {
          name: 'Audit entry tables data events',
          fieldSelectors: [
            { field: 'eventCategory', equalTo: ['Data'] },
            { field: 'resources.type', equalTo: ['AWS::DynamoDB::Table'] },
            { field: 'resources.ARN', equalTo: props.auditTables.map((t) => t.tableArn) },
          ],
        },
      ],
    });
    this.trail.node.addDependency(this.trailBucket.policy!, role.policy);
  }
}

/**
 * Calls that change or delete audit entries (never made by the functions), or any call refused. The one update a
 * function makes, the grade role's digest added to a seen message (its policy allows no other attribute), is not.
 */
export function auditTamperingPattern(gradeRoleArn: string): string {
  return `{ ($.eventName = "DeleteItem") || ($.eventName = "BatchWriteItem") || ($.errorCode = "AccessDenied*") || (($.eventName = "UpdateItem") && ($.userIdentity.sessionContext.sessionIssuer.arn != "${gradeRoleArn}")) }`;
}
