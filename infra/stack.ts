// The serverless pipeline: HTTP API -> ingest -> SQS FIFO (group per patient) -> grade -> DynamoDB (state + outbox
// + audit, one transaction) -> stream -> notify (the pager) -> SNS (a filtered subscription per team), with the
// pages' escalation ladders run by the escalate function (delayed SQS timers and a minute schedule, which also
// sweeps for stale monitor feeds) and acknowledgements through the ack function (signed links and the API).
// Encrypted with customer managed keys (data, alarms, audit), TLS only, least-privilege roles from grants, a DLQ or
// on-failure destination behind every asynchronous consumer, and alarms that page the operators.
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Annotations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ROUTES } from '#app/ingest.ts';
import { FHIR_METADATA_ROUTE, INTERFACE_ROUTES } from '#app/interfaces/routes.ts';
import { zoneProblem } from '#app/interfaces/zone.ts';
import { PATIENT_AUTHORITY_RULE, parsePatientAuthority } from '#app/interfaces/patient-authority.ts';
import { PATIENT_SYSTEM_RULE, parsePatientSystem } from '#app/interfaces/patient-system.ts';
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import { ACK_ROUTES } from '#app/ack-flow.ts';
import { ACK_SECRET_FORMAT } from '#adapters/aws/ack-secret.ts';
import { CONFIG_FILE, DRUG_CODES_FILE, ENV } from '#adapters/aws/env.ts';
import { PAGES_TOPIC_DISPLAY_NAME } from '#adapters/aws/sns-page-sender.ts';
import { AUDIT_TABLE, PAGES_TABLE, SEEN_TABLE, STATE_TABLE, TOKENS_TABLE } from '#adapters/aws/table-layout.ts';
import { RESTORE_PARTITION } from '#adapters/aws/restore.ts';
import { METRIC, METRICS_NAMESPACE } from '#adapters/aws/telemetry.ts';
import { pagedTeams, resolveConfig } from '#domain/config.ts';
import { MAX_OBSERVATION_AGE_RULE, maxObservationAgeMs } from '#domain/device-clock.ts';
import { pagesSubscriptions, wardLimitedTeamWarning } from '#domain/paging-endpoints.ts';
import { MINUTE, OperatorAlarms, type AlarmSpec } from './alarms.ts';
import { AuditRetention, DEFAULT_AUDIT, auditTamperingPattern, type AuditOptions } from './audit.ts';
import { HTTPS_DELIVERY_POLICY, warnOfHttpsPassword } from './delivery.ts';
import {
  autoScale,
  checkCapacity,
  capacityLimitsOf,
  perMessageBilling,
  perMessageIndexCapacity,
  type CapacityLimits,
  type CapacityMode,
} from './capacity.ts';
import { CrsFunction, LOG_LEVELS, type LogLevel } from './function-defaults.ts';
import { letLogGroupsUse } from './keys.ts';
import { keptQueueProps } from './queues.ts';
import { DEFAULT_THROTTLE, checkThrottlesFit, routeThrottles, type RouteThrottle } from './throttles.ts';
import { checkEveryPagedTeamSubscribed, teamsWithoutEndpoints, type PagingConfig } from './paging-config.ts';
import { DeployInputError } from './deploy-input.ts';
import { thisRelease } from '#app/release.ts';
import { gradingSettingsId } from '#domain/settings-id.ts';

export interface Concurrency {
  ingest: number;
  grade: number;
  notify: number;
  ack: number;
}

export interface CrsAlertingStackProps extends StackProps {
  paging: PagingConfig;
  /** Grading configuration overrides (JSON object, `paging` included), checked at synth and passed to the functions. */
  gradingOverrides?: Record<string, unknown>;
  /** Reserved concurrency per function: capacity no other function in the account can take. */
  concurrency?: Concurrency;
  /** Overrides of the routes' own rate limits (infra/throttles.ts), by route key. */
  routeThrottles?: Record<string, Partial<Pick<RouteThrottle, 'rateLimit' | 'burstLimit'>>>;
  logRetention?: logs.RetentionDays;
  /** Backup retention, vault lock, a copy vault, CloudTrail data events on the audit table (infra/audit.ts). */
  audit?: Partial<AuditOptions>;
  /** How often the schedule wakes the escalate function (the stale-feed sweep, and the tick behind lost timers). */
  sweepInterval?: Duration;
  /** The site's zone (Europe/Paris, +01:00) for HL7 v2 times sent without an offset; refused without one. */
  hl7Zone?: string;
  /**
   * The assigning authority (PID-3.4) whose ids are this system's patient ids: the PID-3 repetition of that authority
   * is the patient; without it, the one typed MR or the only one (docs/interfaces.md).
   */
  hl7PatientAuthority?: string;
  /**
   * The FHIR identifier system (a URI) whose values are this system's patient ids: the identifier of that system is
   * the patient; without it, the one typed MR or untyped (docs/interfaces.md).
   */
  fhirPatientSystem?: string;
  /**
   * The site's FHIR drug codes (docs/interfaces.md, "Site drug codes"): the JSON `[{ system, code, drug }]` and the file
   * it was read from, if any (named in a refusal). Checked at synth; shipped beside the ingest handler as a file, not
   * in a variable: a site's products soon exceed Lambda's 4 KB of variables a function.
   */
  fhirDrugCodes?: { json: string; file?: string };
  /**
   * How many days before its arrival an observedAt may be (1-365; 7 by default, shared/domain/device-clock.ts): older
   * readings are refused, "check the device clock" (docs/contract.md).
   */
  maxObservationAgeDays?: number;
  /** The functions' log level (default WARN: no line per message; infra/function-defaults.ts). */
  logLevel?: LogLevel;
  /** Capacity of the tables written on every message: on demand (default) or provisioned (infra/capacity.ts). */
  capacity?: CapacityMode;
  capacityLimits?: Partial<CapacityLimits>;
  /**
   * Table class of the tables that only grow (audit, seen messages): Standard (default) or Standard-IA, whose
   * storage costs 60 % less and reads and writes 25 % more (docs/cost.md: it pays from month 2 at 1,000 patients).
   */
  historyTableClass?: dynamodb.TableClass;
}

/** Requests the HTTP API refused with 429, by route (from the access log). */
export const API_THROTTLED_METRIC = 'ApiThrottled';
/** Calls that change or delete audit entries, or are refused, on the Audit table (from its CloudTrail data events). */
const AUDIT_TAMPERING_METRIC = 'AuditTableTampering';

export const DEFAULT_CONCURRENCY: Concurrency = { ingest: 55, grade: 20, notify: 5, ack: 10 };

/*
 * SQS triggers that throttling cannot dead-letter. A poller that takes a batch raises each message's receive count
 * whether or not the function then runs: a throttled batch goes back to the queue when its visibility timeout ends,
 * counted, and after MAX_RECEIVE_COUNT receives to the dead-letter queue, although nothing was wrong with it. So
 * each SQS mapping is set such that:
 *
 * 1. Its maximum concurrency plus what else invokes the function is at most the function's reserved concurrency:
 *    the pollers never invoke more than the function may run, so Lambda never throttles them (reserved
 *    concurrency is the function's own: no other function can use it up).
 *      grade:    mapping = reserved (20 by default)  + nothing else invokes it                      <= 20
 *      escalate: mapping 2 (ESCALATE_TIMER_CONCURRENCY) + the schedule 2 (SCHEDULE_CONCURRENCY: a 60 s tick a
 *                minute overlaps one other at most, plus EventBridge's retry of a failed invocation) = 4  <= 5
 * 2. The queue's visibility timeout is at least six times the function's timeout (Lambda's advice): a batch still
 *    running is never handed out again. grade 90 s = 6 x 15 s; escalation timers 360 s = 6 x 60 s.
 * 3. So every receive is an invocation that ran, and MAX_RECEIVE_COUNT counts failures only: a message that fails
 *    3 times (a bug, or DynamoDB refusing 3 times over 3 x 90 s) is dead-lettered and alarmed, and holds its
 *    patient's FIFO group for at most 3 visibility timeouts (4.5 minutes) before that.
 *
 * test/infra/stack.test.ts checks all three on the synthesized template.
 */

/** The escalate function's reserved concurrency: its timers' mapping and its schedule share it. */
const ESCALATE_CONCURRENCY = 5;
/** How many timer batches the escalate function's SQS mapping runs at once (its maximum concurrency). */
const ESCALATE_TIMER_CONCURRENCY = 2;
/** The most scheduled escalate invocations that run at once (a tick overlapping one other, or a retry). */
export const SCHEDULE_CONCURRENCY = 2;
/** Default account quotas (us-east-1; raised on request): DynamoDB units a table, Lambda concurrent executions. */
const DEFAULT_TABLE_UNITS_QUOTA = 40_000;
const DEFAULT_CONCURRENCY_QUOTA = 1_000;
/** What Lambda keeps unreserved of the account's concurrency (reservations cannot take it). */
const UNRESERVED_CONCURRENCY = 100;

/** What Lambda allows as an SQS mapping's maximum concurrency. */
const MIN_MAPPING_CONCURRENCY = 2;

/** The grade function's timeout: the queue's visibility timeout is six times it, as Lambda advises. */
const GRADE_TIMEOUT = Duration.seconds(15);
/** The escalate function's timeout (a tick, and a sweep over every enrolled patient). */
const ESCALATE_TIMEOUT = Duration.seconds(60);
/** Deliveries before a message that keeps failing goes to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 3;

/*
 * The notifier's stream mapping: a shard's records are delivered in order, so a record that keeps failing holds
 * every later page of its shard until Lambda gives up on it. Lambda gives up soon, and on that record alone:
 * - bisect on error: a failing batch of NOTIFY_BATCH_SIZE (25) halves to 13, 7, 4, 2 and 1 record in 5 retries, so
 *   NOTIFY_RETRY_ATTEMPTS (6) isolate a record that always fails and try it alone once more (a partial batch
 *   response, ReportBatchItemFailures, starts the retry at the failed record, so the records before it are done);
 * - NOTIFY_MAX_RECORD_AGE (5 minutes) bounds the wait whatever the retries: no later page waits longer than that
 *   behind a failing record (a notifier that cannot reach DynamoDB or SNS at all stops the shard for that long).
 * The record then goes to the on-failure queue (NotifyFailures, alarmed): Lambda sends where it was in the stream
 * (shard, sequence numbers, stream ARN), not the record itself, and the shard moves on.
 */
export const NOTIFY_BATCH_SIZE = 25;
export const NOTIFY_RETRY_ATTEMPTS = 6;
const NOTIFY_MAX_RECORD_AGE = Duration.minutes(5);

export class CrsAlertingStack extends Stack {
  readonly key: kms.Key;
  readonly stateTable: dynamodb.Table;
  readonly pagesTable: dynamodb.Table;
  readonly auditTable: dynamodb.Table;
  readonly tokensTable: dynamodb.Table;
  readonly audit: AuditRetention;
  readonly seenTable: dynamodb.Table;
  readonly ackSecret: secretsmanager.Secret;
  readonly queue: sqs.Queue;
  readonly queueDlq: sqs.Queue;
  readonly notifyDlq: sqs.Queue;
  readonly pagesDlq: sqs.Queue;
  readonly escalationQueue: sqs.Queue;
  readonly escalationDlq: sqs.Queue;
  readonly sweepRule: events.Rule;
  readonly pagesTopic: sns.Topic;
  readonly alarmTopic: sns.Topic;
  /** Where every alarm is declared (`operatorAlarms.add(id, {...})`), with its topic and key. */
  readonly operatorAlarms: OperatorAlarms;
  readonly ingest: CrsFunction;
  readonly grade: CrsFunction;
  readonly notify: CrsFunction;
  readonly escalate: CrsFunction;
  readonly ack: CrsFunction;
  readonly api: apigwv2.HttpApi;
  readonly alarms: cloudwatch.Alarm[];
  /** Each route's throttle name (its 429 alarm is Throttled<name>). */
  routeThrottleNames: Record<string, string> = {};

  constructor(scope: Construct, id: string, props: CrsAlertingStackProps) {
    super(scope, id, props);
    const concurrency = props.concurrency ?? DEFAULT_CONCURRENCY;
    const badZone = props.hl7Zone === undefined ? undefined : zoneProblem(props.hl7Zone);
    if (badZone !== undefined) throw new DeployInputError(`hl7Zone ${JSON.stringify(props.hl7Zone)} ${badZone}`);
    if (props.hl7PatientAuthority !== undefined && parsePatientAuthority(props.hl7PatientAuthority) === undefined)
      throw new DeployInputError(
        `hl7PatientAuthority ${JSON.stringify(props.hl7PatientAuthority)} is not ${PATIENT_AUTHORITY_RULE}`,
      );
    if (props.fhirPatientSystem !== undefined && parsePatientSystem(props.fhirPatientSystem) === undefined)
      throw new DeployInputError(
        `fhirPatientSystem ${JSON.stringify(props.fhirPatientSystem)} is not ${PATIENT_SYSTEM_RULE}`,
      );
    if (props.fhirDrugCodes !== undefined) {
      const { json, file } = props.fhirDrugCodes;
      try {
        parseDrugCodes(json, `fhirDrugCodes${file !== undefined ? ` ${file}` : ''}`);
      } catch (err) {
        throw new DeployInputError((err as Error).message);
      }
    }
    if (props.maxObservationAgeDays !== undefined && maxObservationAgeMs(props.maxObservationAgeDays) === undefined)
      throw new DeployInputError(
        `maxObservationAgeDays ${JSON.stringify(props.maxObservationAgeDays)} is not ${MAX_OBSERVATION_AGE_RULE}`,
      );
    // The grade mapping runs as many batches at once as the function may (see the arithmetic above).
    if (
      !Number.isInteger(concurrency.grade) ||
      concurrency.grade < MIN_MAPPING_CONCURRENCY ||
      concurrency.grade > 1000
    ) {
      throw new DeployInputError(
        `concurrency.grade must be a whole number ${MIN_MAPPING_CONCURRENCY}-1000: it is also the queue mapping's maximum concurrency (got ${concurrency.grade})`,
      );
    }
    for (const fn of ['ingest', 'notify', 'ack'] as const) {
      const v = concurrency[fn];
      if (!Number.isInteger(v) || v < 1)
        throw new DeployInputError(`concurrency.${fn} must be a whole number of at least 1 (got ${JSON.stringify(v)})`);
    }
    if (ESCALATE_TIMER_CONCURRENCY + SCHEDULE_CONCURRENCY > ESCALATE_CONCURRENCY)
      throw new Error("the escalate function's invokers exceed its reserved concurrency");
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    if (props.logLevel !== undefined && !LOG_LEVELS.includes(props.logLevel))
      throw new DeployInputError(
        `logLevel must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(props.logLevel)})`,
      );
    const capacityLimits = capacityLimitsOf(props.capacityLimits);
    const capacity = checkCapacity(props.capacity ?? 'on-demand', capacityLimits);
    // Limits of on-demand tables did nothing: the operator who gave them meant provisioned tables.
    if (props.capacityLimits !== undefined && capacity !== 'provisioned')
      throw new DeployInputError(
        `capacityLimits is given, but the tables are on demand (capacity ${capacity}): add -c capacity=provisioned, or leave capacityLimits out`,
      );
    // Account quotas an operator can raise, so warned of, not refused: a deploy past one fails in CloudFormation (the
    // tables, the functions' reserved concurrency), or the tables never scale that far.
    const reserved =
      concurrency.ingest + concurrency.grade + concurrency.notify + concurrency.ack + ESCALATE_CONCURRENCY;
    for (const [over, id, text] of [
      [
        capacity === 'provisioned' && capacityLimits.max > DEFAULT_TABLE_UNITS_QUOTA,
        'crs:dynamodb-quota',
        `capacityLimits.max ${capacityLimits.max} is above DynamoDB's default quota of ${DEFAULT_TABLE_UNITS_QUOTA} read and ${DEFAULT_TABLE_UNITS_QUOTA} write units a table${capacityLimits.min > DEFAULT_TABLE_UNITS_QUOTA ? ' (min too: the tables cannot be created)' : ''}: raise the account's quota (Service Quotas) first`,
      ],
      [
        reserved + UNRESERVED_CONCURRENCY > DEFAULT_CONCURRENCY_QUOTA,
        'crs:concurrency-quota',
        `the functions reserve ${reserved} concurrent executions: with the ${UNRESERVED_CONCURRENCY} Lambda keeps unreserved, above the default account quota of ${DEFAULT_CONCURRENCY_QUOTA}: raise it (Service Quotas) first, or the deploy fails`,
      ],
    ] as const)
      if (over) Annotations.of(this).addWarningV2(id, text);

    // The one configuration (grading and paging) every function that grades or pages reads (CRS_CONFIG_FILE).
    let gradingConfigJson: string | undefined;
    // Only an absent one is the defaults: `-c gradingConfig=null` is refused, as a file holding null is by --config.
    const resolved = resolveConfig(props.gradingOverrides === undefined ? {} : props.gradingOverrides);
    if (!resolved.ok) throw new DeployInputError(`invalid grading config: ${resolved.errors.join('; ')}`);
    if (props.gradingOverrides) gradingConfigJson = JSON.stringify(props.gradingOverrides);
    checkEveryPagedTeamSubscribed(props.paging, resolved.config);
    for (const team of pagedTeams(resolved.config).keys()) {
      const e = props.paging.teams[team as keyof PagingConfig['teams']];
      if (e?.wards && e.email.length + e.sms.length + e.https.length > 0)
        Annotations.of(this).addWarningV2(`crs:ward-limited-${team}`, wardLimitedTeamWarning(team, e.wards));
    }

    // ---- Encryption: one customer managed key for queues, topics, tables, logs and backups.
    this.key = new kms.Key(this, 'Key', {
      description: "CRS alerting: SQS, the pages topic, DynamoDB, CloudWatch Logs and the functions' environment",
      enableKeyRotation: true,
      alias: 'alias/crs-alerting',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    letLogGroupsUse(this.key);
    // The services that write to an encrypted queue of this stack themselves (not through a function's role): SNS
    // to the undelivered-pages queue, EventBridge to the escalation DLQ (the schedule's failed invocations). Each
    // is limited to this account's topics or rules (an ARN pattern: the topic and the rule are encrypted with this
    // key, so naming them here would be a circular reference).
    const producers: [string, string, string][] = [
      ['SnsOfThisAccount', 'sns.amazonaws.com', `arn:${this.partition}:sns:${this.region}:${this.account}:*`],
      [
        'EventBridgeRulesOfThisAccount',
        'events.amazonaws.com',
        `arn:${this.partition}:events:${this.region}:${this.account}:rule/*`,
      ],
    ];
    for (const [sid, service, sourceArn] of producers) {
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid,
          principals: [new iam.ServicePrincipal(service)],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': this.account }, ArnLike: { 'aws:SourceArn': sourceArn } },
        }),
      );
    }

    // ---- DynamoDB: patient state with its outbox (streamed to the notifier), pages and silences, the append-only
    // audit trail, device tokens.
    const tableDefaults = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.stateTable = new dynamodb.Table(this, 'StateTable', {
      ...tableDefaults,
      ...perMessageBilling(capacity, capacityLimits),
      partitionKey: { name: STATE_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: STATE_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: STATE_TABLE.ttlAttribute,
      stream: dynamodb.StreamViewType.NEW_IMAGE,
    });
    // Enrolled patients by the time their monitor last sent something: the stale-feed sweep's candidates.
    this.stateTable.addGlobalSecondaryIndex({
      indexName: STATE_TABLE.feedIndex,
      partitionKey: { name: STATE_TABLE.feedShardAttribute, type: dynamodb.AttributeType.STRING },
      sortKey: { name: STATE_TABLE.feedSinceAttribute, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
      ...perMessageIndexCapacity(capacity, capacityLimits),
    });
    this.pagesTable = new dynamodb.Table(this, 'PagesTable', {
      ...tableDefaults,
      partitionKey: { name: PAGES_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: PAGES_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: PAGES_TABLE.ttlAttribute,
    });
    // Pages with something to do (a due time, held by a silence, a send pending): the escalation tick's candidates.
    this.pagesTable.addGlobalSecondaryIndex({
      indexName: PAGES_TABLE.dueIndex,
      partitionKey: { name: PAGES_TABLE.dueShardAttribute, type: dynamodb.AttributeType.STRING },
      sortKey: { name: PAGES_TABLE.dueAtAttribute, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
    // Append-only: every writer's role may only PutItem (always conditional: never replacing an entry) and Query.
    // Written per page and acknowledgement, not per message (the assessments ride in the seen messages): on demand.
    const historyTableClass = props.historyTableClass ?? dynamodb.TableClass.STANDARD;
    this.auditTable = new dynamodb.Table(this, 'AuditTable', {
      ...tableDefaults,
      tableClass: historyTableClass,
      partitionKey: { name: AUDIT_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AUDIT_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
    });
    this.tokensTable = new dynamodb.Table(this, 'TokensTable', {
      ...tableDefaults,
      partitionKey: { name: TOKENS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
    });
    // The long tail of seen messages (issue 10): one small item per message, written in the grading transaction.
    this.seenTable = new dynamodb.Table(this, 'SeenMessagesTable', {
      ...tableDefaults,
      ...perMessageBilling(capacity, capacityLimits),
      tableClass: historyTableClass,
      partitionKey: { name: SEEN_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: SEEN_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
    });
    this.tokensTable.addGlobalSecondaryIndex({
      indexName: TOKENS_TABLE.tokenIdIndex,
      partitionKey: { name: TOKENS_TABLE.tokenIdAttribute, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    if (capacity === 'provisioned') {
      autoScale(this.stateTable, [STATE_TABLE.feedIndex], capacityLimits);
      autoScale(this.seenTable, [], capacityLimits);
    }

    // Backups (their own key and vault, optionally locked and copied) and CloudTrail data events on the audit table.
    this.audit = new AuditRetention(this, 'Audit', {
      ...DEFAULT_AUDIT,
      ...props.audit,
      tables: [this.stateTable, this.pagesTable, this.auditTable, this.tokensTable, this.seenTable],
      historyTables: [this.auditTable, this.seenTable],
      auditTables: [this.auditTable, this.seenTable],
      logRetention,
    });

    // ---- SQS: the per-patient FIFO queue and the dead-letter queues.
    const queueDefaults = keptQueueProps(this.key);
    this.queueDlq = new sqs.Queue(this, 'MessagesDlq', { ...queueDefaults, fifo: true });
    this.queue = new sqs.Queue(this, 'Messages', {
      ...queueDefaults,
      fifo: true,
      contentBasedDeduplication: false,
      // Deduplication per patient (message group): messageIds are unique per sender, not across patients.
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: Duration.seconds(GRADE_TIMEOUT.toSeconds() * 6),
      deadLetterQueue: { queue: this.queueDlq, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    this.notifyDlq = new sqs.Queue(this, 'NotifyFailures', queueDefaults);
    this.pagesDlq = new sqs.Queue(this, 'UndeliveredPages', queueDefaults);
    // Escalation timers: delayed messages (up to 15 minutes, then another hop) that wake the escalate function.
    this.escalationDlq = new sqs.Queue(this, 'EscalationDlq', queueDefaults);
    this.escalationQueue = new sqs.Queue(this, 'EscalationTimers', {
      ...queueDefaults,
      visibilityTimeout: Duration.seconds(ESCALATE_TIMEOUT.toSeconds() * 6),
      deadLetterQueue: { queue: this.escalationDlq, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    // ---- The key that signs acknowledge links (HMAC-SHA256), generated here and never leaving Secrets Manager
    // but to the functions that sign and verify links.
    this.ackSecret = new secretsmanager.Secret(this, 'AckSigningSecret', {
      description: 'CRS alerting: HMAC key of the acknowledge links (rotating it: docs/runbook.md)',
      encryptionKey: this.key,
      generateSecretString: { ...ACK_SECRET_FORMAT },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- SNS: the pages topic (one filtered subscription per team endpoint) and the operators' alarm topic, which
    // has its own key (infra/alarms.ts).
    // The display name starts every SMS ("CRS PAGES> "): short, and counted in the SMS length (sns-page-sender.ts).
    this.pagesTopic = new sns.Topic(this, 'Pages', {
      displayName: PAGES_TOPIC_DISPLAY_NAME,
      masterKey: this.key,
      enforceSSL: true,
    });
    this.subscribeTeams(props.paging);
    this.operatorAlarms = new OperatorAlarms(this, props.paging.alarms);
    this.alarmTopic = this.operatorAlarms.topic;
    this.alarms = this.operatorAlarms.alarms;

    // ---- Functions.
    const fnDefaults = { key: this.key, logRetention, ...(props.logLevel ? { logLevel: props.logLevel } : {}) };
    this.ingest = new CrsFunction(this, 'Ingest', {
      ...fnDefaults,
      ...(props.fhirDrugCodes !== undefined ? { files: { [DRUG_CODES_FILE]: props.fhirDrugCodes.json } } : {}),
      name: 'ingest',
      description: 'Authenticates devices, validates messages and queues them (202 only once queued)',
      timeout: Duration.seconds(10),
      reservedConcurrency: concurrency.ingest,
      environment: {
        [ENV.queueUrl]: this.queue.queueUrl,
        [ENV.tokensTable]: this.tokensTable.tableName,
        // Read for device tokens scoped to wards (a patient's ward), never written (shared/app/scope.ts).
        [ENV.stateTable]: this.stateTable.tableName,
        ...(props.hl7Zone ? { [ENV.hl7Zone]: props.hl7Zone } : {}),
        ...(props.hl7PatientAuthority !== undefined ? { [ENV.hl7PatientAuthority]: props.hl7PatientAuthority } : {}),
        ...(props.fhirPatientSystem !== undefined ? { [ENV.fhirPatientSystem]: props.fhirPatientSystem } : {}),
        ...(props.fhirDrugCodes !== undefined ? { [ENV.fhirDrugCodesFile]: DRUG_CODES_FILE } : {}),
        ...(props.maxObservationAgeDays !== undefined
          ? { [ENV.maxObservationAgeDays]: String(props.maxObservationAgeDays) }
          : {}),
      },
    });
    // The overrides go in a file shipped with each function that grades or pages, not in a variable: a site's protocol
    // texts soon exceed Lambda's 4 KB of variables a function (the deploy failed).
    const config: Record<string, string> = gradingConfigJson ? { [ENV.gradingConfigFile]: CONFIG_FILE } : {};
    const configFiles = gradingConfigJson ? { files: { [CONFIG_FILE]: gradingConfigJson } } : {};
    this.grade = new CrsFunction(this, 'Grade', {
      ...fnDefaults,
      ...configFiles,
      name: 'grade',
      description: 'Grades CRS and ICANS per patient; state, outbox and audit in one DynamoDB transaction',
      timeout: GRADE_TIMEOUT,
      reservedConcurrency: concurrency.grade,
      environment: {
        [ENV.stateTable]: this.stateTable.tableName,
        [ENV.auditTable]: this.auditTable.tableName,
        [ENV.seenTable]: this.seenTable.tableName,
        ...config,
      },
    });
    // What the pager needs wherever it runs; the acknowledge links' base URL is added once the API exists.
    const pagerEnvironment = {
      [ENV.pagesTable]: this.pagesTable.tableName,
      [ENV.auditTable]: this.auditTable.tableName,
      [ENV.ackSecretArn]: this.ackSecret.secretArn,
      ...config,
    };
    // Teams without an endpoint now: their pages still open from before are set aside, named, not sent to nobody.
    const unreachable = teamsWithoutEndpoints(props.paging);
    const sendingEnvironment = {
      ...pagerEnvironment,
      [ENV.stateTable]: this.stateTable.tableName,
      [ENV.topicArn]: this.pagesTopic.topicArn,
      [ENV.escalationQueueUrl]: this.escalationQueue.queueUrl,
      ...(unreachable.length > 0 ? { [ENV.teamsWithoutEndpoints]: unreachable.join(',') } : {}),
    };
    this.notify = new CrsFunction(this, 'Notify', {
      ...fnDefaults,
      ...configFiles,
      name: 'notify',
      description:
        'Pages the teams for each grade change and alert in the outbox (signed acknowledge links, escalation timers)',
      timeout: Duration.seconds(30),
      memorySize: 256,
      reservedConcurrency: concurrency.notify,
      environment: sendingEnvironment,
    });
    this.escalate = new CrsFunction(this, 'Escalate', {
      ...fnDefaults,
      ...configFiles,
      name: 'escalate',
      description: 'Escalation ladders (timers and a minute tick), silences ending, and the stale-feed sweep',
      timeout: ESCALATE_TIMEOUT,
      memorySize: 256,
      reservedConcurrency: ESCALATE_CONCURRENCY,
      environment: sendingEnvironment,
    });
    this.ack = new CrsFunction(this, 'Ack', {
      ...fnDefaults,
      ...configFiles,
      name: 'ack',
      description: 'Acknowledges pages through signed links (GET shows, POST acknowledges) and the API',
      timeout: Duration.seconds(10),
      memorySize: 256,
      reservedConcurrency: concurrency.ack,
      environment: pagerEnvironment,
    });

    // Least privilege: each function gets exactly the calls its adapters make.
    // The table only (a plain table.grant() would add its indexes too): ingest looks tokens up by hash.
    iam.Grant.addToPrincipal({
      grantee: this.ingest.role,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.tokensTable.tableArn],
    });
    // The wards of patients, for device tokens scoped to wards: reads of the state table only.
    iam.Grant.addToPrincipal({
      grantee: this.ingest.role,
      actions: ['dynamodb:BatchGetItem'],
      resourceArns: [this.stateTable.tableArn],
    });
    this.key.grantDecrypt(this.ingest.role);
    this.grantSend(this.queue, this.ingest.role);

    // The table only (a plain table.grant() would add its indexes too).
    iam.Grant.addToPrincipal({
      grantee: this.grade.role,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.stateTable.tableArn],
    });
    // Seen messages: read before grading (BatchGetItem), a conditional put that returns the old item when it fails
    // (hence GetItem), or a digest added. The put carries the message's assessment (an audit entry): an update may
    // touch the digests only, so that what was put stays as it was written, as in the audit table.
    iam.Grant.addToPrincipal({
      grantee: this.grade.role,
      actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.seenTable.tableArn],
    });
    this.grade.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:UpdateItem'],
        resources: [this.seenTable.tableArn],
        conditions: {
          'ForAllValues:StringEquals': {
            'dynamodb:Attributes': [SEEN_TABLE.partitionKey, SEEN_TABLE.sortKey, SEEN_TABLE.digestsAttribute],
          },
        },
      }),
    );
    this.grantAppendAudit(this.grade.role);
    this.key.grantEncryptDecrypt(this.grade.role);
    this.grade.fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: concurrency.grade,
      }),
    );

    // The pager where it sends: pages (read, conditional write, a patient's pages), audit (append), the outbox
    // (what a page says in full) and the patient's ward, the topic, the timers, the link key.
    for (const f of [this.notify, this.escalate]) {
      iam.Grant.addToPrincipal({
        grantee: f.role,
        actions: ['dynamodb:GetItem'],
        resourceArns: [this.stateTable.tableArn],
      });
      iam.Grant.addToPrincipal({
        grantee: f.role,
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        resourceArns: [this.pagesTable.tableArn],
      });
      this.grantAppendAudit(f.role);
      this.pagesTopic.grantPublish(f.role);
      this.grantSend(this.escalationQueue, f.role);
      this.grantLinkKey(f.role);
      this.key.grantEncryptDecrypt(f.role);
    }
    this.notify.fn.addEventSource(
      new DynamoEventSource(this.stateTable, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: NOTIFY_BATCH_SIZE,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: NOTIFY_RETRY_ATTEMPTS,
        maxRecordAge: NOTIFY_MAX_RECORD_AGE,
        onFailure: new SqsDlq(this.notifyDlq),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('INSERT'),
            dynamodb: {
              NewImage: { [STATE_TABLE.kindAttribute]: { S: lambda.FilterRule.isEqual(STATE_TABLE.outboxKind) } },
            },
          }),
        ],
      }),
    );

    // The escalation tick: due pages from the index, read back in batches; the stale-feed sweep: enrolled patients
    // from the state table's index, and the alerts in force (set and cleared) in the pages table.
    iam.Grant.addToPrincipal({
      grantee: this.escalate.role,
      actions: ['dynamodb:Query'],
      resourceArns: [
        `${this.pagesTable.tableArn}/index/${PAGES_TABLE.dueIndex}`,
        `${this.stateTable.tableArn}/index/${STATE_TABLE.feedIndex}`,
      ],
    });
    iam.Grant.addToPrincipal({
      grantee: this.escalate.role,
      actions: ['dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
      resourceArns: [this.pagesTable.tableArn],
    });
    this.escalate.fn.addEventSource(
      new SqsEventSource(this.escalationQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: ESCALATE_TIMER_CONCURRENCY,
      }),
    );
    this.sweepRule = new events.Rule(this, 'EscalationSchedule', {
      description: 'Wakes the escalate function: the stale-feed sweep, and the tick behind any lost escalation timer',
      schedule: events.Schedule.rate(props.sweepInterval ?? Duration.minutes(1)),
      targets: [
        new eventTargets.LambdaFunction(this.escalate.fn, {
          retryAttempts: 2,
          maxEventAge: Duration.minutes(2),
          deadLetterQueue: this.escalationDlq,
        }),
      ],
    });

    // The ack function: a page read and written (acknowledged), the refusal or acknowledgement audited, the link key.
    iam.Grant.addToPrincipal({
      grantee: this.ack.role,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.pagesTable.tableArn],
    });
    // Of the State table, the restore record only (crs restore --backend aws; 2026-12-07): a link the restored Pages
    // table does not know is said to be maybe one sent after the backup, as crs serve says it. No patient's state.
    this.ack.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem'],
        resources: [this.stateTable.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [RESTORE_PARTITION] } },
      }),
    );
    this.ack.fn.addEnvironment(ENV.stateTable, this.stateTable.tableName);
    this.grantAppendAudit(this.ack.role);
    this.grantLinkKey(this.ack.role);
    this.key.grantEncryptDecrypt(this.ack.role);

    // ---- HTTP API: only the stack's routes reach a function; throttled; access logs without bodies.
    const accessLogs = new logs.LogGroup(this, 'IngestAccessLogs', {
      retention: logRetention,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.api = new apigwv2.HttpApi(this, 'IngestApi', {
      description: 'CRS alerting: device ingest and page acknowledgements',
      createDefaultStage: false,
    });
    const stage = new apigwv2.HttpStage(this, 'IngestStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: DEFAULT_THROTTLE,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            route: '$context.routeKey',
            status: '$context.status',
            ip: '$context.identity.sourceIp',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const integration = new HttpLambdaIntegration('IngestIntegration', this.ingest.fn, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    // JSON, HL7 v2 (/v1/hl7v2) and FHIR R4 (/fhir/r4, /fhir/r4/Bundle, /fhir/r4/{resource}): one function, one set of device tokens.
    for (const path of [ROUTES.single, ROUTES.batch, ...INTERFACE_ROUTES]) {
      this.api.addRoutes({ path, methods: [apigwv2.HttpMethod.POST], integration });
    }
    // The FHIR CapabilityStatement, which FHIR clients read before they send (public: it names no patient).
    this.api.addRoutes({ path: FHIR_METADATA_ROUTE, methods: [apigwv2.HttpMethod.GET], integration });
    const ackIntegration = new HttpLambdaIntegration('AckIntegration', this.ack.fn, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
    this.api.addRoutes({
      path: ACK_ROUTES.link,
      methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
      integration: ackIntegration,
    });
    this.api.addRoutes({ path: ACK_ROUTES.api, methods: [apigwv2.HttpMethod.POST], integration: ackIntegration });
    const throttles = routeThrottles(props.routeThrottles);
    checkThrottlesFit(throttles, concurrency);
    this.throttleRoutes(stage, throttles, accessLogs);
    const ackBaseUrl = `${this.api.apiEndpoint}/ack/`;
    for (const f of [this.notify, this.escalate, this.ack]) f.fn.addEnvironment(ENV.ackBaseUrl, ackBaseUrl);

    this.addAlarms();

    new CfnOutput(this, 'Release', {
      value: thisRelease(),
      description: 'the release deployed: its commit and that commit date (crs --version says the same of a checkout)',
    });
    new CfnOutput(this, 'GradingSettings', {
      value: gradingSettingsId(resolved.config),
      description:
        'the id of the grading settings deployed: the audit trail names it with the grades given under them (docs/runbook.md)',
    });
    new CfnOutput(this, 'IngestUrl', {
      value: `${this.api.apiEndpoint}${ROUTES.single}`,
      description: 'POST one message here',
    });
    new CfnOutput(this, 'IngestBatchUrl', {
      value: `${this.api.apiEndpoint}${ROUTES.batch}`,
      description: 'POST up to 100 messages here',
    });
    new CfnOutput(this, 'TokensTableName', {
      value: this.tokensTable.tableName,
      description: `for crs token --backend aws --table NAME (or ${ENV.tokensTable})`,
    });
    new CfnOutput(this, 'StateTableName', {
      value: this.stateTable.tableName,
      description: `for crs silence (${ENV.stateTable})`,
    });
    new CfnOutput(this, 'PagesTableName', {
      value: this.pagesTable.tableName,
      description: `for crs silence (${ENV.pagesTable})`,
    });
    new CfnOutput(this, 'AuditTableName', {
      value: this.auditTable.tableName,
      description: `for crs audit export and crs silence (${ENV.auditTable})`,
    });
    new CfnOutput(this, 'SeenTableName', {
      value: this.seenTable.tableName,
      description: `for crs audit export: it carries the assessments of first-time messages (${ENV.seenTable})`,
    });
    new CfnOutput(this, 'EscalationQueueUrl', {
      value: this.escalationQueue.queueUrl,
      description: `for crs silence (${ENV.escalationQueueUrl})`,
    });
    new CfnOutput(this, 'AckSecretArn', {
      value: this.ackSecret.secretArn,
      description: `for crs silence (${ENV.ackSecretArn})`,
    });
    new CfnOutput(this, 'AckBaseUrl', {
      value: ackBaseUrl,
      description: `acknowledge links start with this (${ENV.ackBaseUrl})`,
    });
    new CfnOutput(this, 'PagesTopicArn', { value: this.pagesTopic.topicArn });
    // An output's value cannot be empty: none when every team has an endpoint (the operator's pager reads none).
    if (unreachable.length > 0)
      new CfnOutput(this, 'TeamsWithoutEndpoints', {
        value: unreachable.join(','),
        description: `the teams the paging config gives no endpoint: crs silence and crs outbox set their pages aside, as the functions do (${ENV.teamsWithoutEndpoints})`,
      });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.alarmTopic.topicArn,
      description: 'for crs doctor (the alarms that notify it)',
    });
    new CfnOutput(this, 'IngestFunctionName', {
      value: this.ingest.fn.functionName,
      description: 'for crs doctor (last ingest)',
    });
    new CfnOutput(this, 'GradeFunctionName', {
      value: this.grade.fn.functionName,
      description: 'for crs doctor (last message graded)',
    });
    new CfnOutput(this, 'EscalateFunctionName', {
      value: this.escalate.fn.functionName,
      description: 'for crs doctor (last escalate run)',
    });
    new CfnOutput(this, 'NotifyFailuresQueueUrl', {
      value: this.notifyDlq.queueUrl,
      description: 'for crs outbox (the stream ranges the notifier gave up on)',
    });
    new CfnOutput(this, 'MessagesDlqArn', {
      value: this.queueDlq.queueArn,
      description:
        'the device messages grading set aside (MessagesDlqDepth): the source of the SQS redrive, docs/runbook.md',
    });
    new CfnOutput(this, 'UndeliveredPagesArn', {
      value: this.pagesDlq.queueArn,
      description:
        'the pages SNS could not deliver (UndeliveredPagesDepth): every pages subscription redrives to it (crs doctor checks; docs/runbook.md)',
    });
    new CfnOutput(this, 'UndeliveredAlarmsQueueUrl', {
      value: this.operatorAlarms.undelivered.queueUrl,
      description: 'the alarm notifications SNS could not deliver to an operators endpoint (UndeliveredAlarmsDepth)',
    });
    new CfnOutput(this, 'UndeliveredAlarmsArn', {
      value: this.operatorAlarms.undelivered.queueArn,
      description: 'the same queue: every alarm subscription redrives to it (crs doctor checks; docs/runbook.md)',
    });
  }

  /**
   * Every route its own rate limit (infra/throttles.ts), and a metric of the requests refused with 429, by route,
   * from the access log (HTTP APIs publish 4xx, not 429): each route's throttle alarm is declared from it.
   */
  private throttleRoutes(
    stage: apigwv2.HttpStage,
    throttles: Record<string, RouteThrottle>,
    accessLogs: logs.LogGroup,
  ): void {
    (stage.node.defaultChild as apigwv2.CfnStage).routeSettings = Object.fromEntries(
      Object.entries(throttles).map(([k, t]) => [
        k,
        { ThrottlingRateLimit: t.rateLimit, ThrottlingBurstLimit: t.burstLimit },
      ]),
    );
    // Route settings name routes, which must exist first (the API's whole subtree, so routes added later too).
    stage.node.addDependency(this.api);
    // Checked when the app is synthesized, so that a route added anywhere is covered.
    this.node.addValidation({
      validate: () => {
        const keys = this.api.node.findAll().flatMap((c) => (c instanceof apigwv2.CfnRoute ? [c.routeKey] : []));
        return [
          ...keys
            .filter((k) => !throttles[k])
            .map((k) => `route ${k} has no rate limit: add it to ROUTE_THROTTLES in infra/throttles.ts`),
          ...Object.keys(throttles)
            .filter((k) => !keys.includes(k))
            .map((k) => `rate limit for ${k}, a route the API does not have`),
        ];
      },
    });

    new logs.MetricFilter(this, 'ApiThrottledRequests', {
      logGroup: accessLogs,
      filterPattern: logs.FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: METRICS_NAMESPACE,
      metricName: API_THROTTLED_METRIC,
      metricValue: '1',
      dimensions: { route: '$.route' },
    });
    this.routeThrottleNames = Object.fromEntries(Object.entries(throttles).map(([k, t]) => [k, t.name]));
  }

  /**
   * A send to an encrypted queue: SendMessage and the data key. CDK's grantSendMessages adds GetQueueAttributes and
   * GetQueueUrl, which no function sends (each has its queue's URL in its environment).
   */
  private grantSend(queue: sqs.Queue, role: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee: role, actions: ['sqs:SendMessage'], resourceArns: [queue.queueArn] });
    this.key.grantEncryptDecrypt(role);
  }

  /**
   * The link key's value (its current and previous versions), decrypted with the data key: CDK's grantRead adds
   * DescribeSecret, which no function sends.
   */
  private grantLinkKey(role: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [this.ackSecret.secretArn],
    });
    this.key.grantDecrypt(role);
  }

  /** Append-only: PutItem (the writers always put with attribute_not_exists) and nothing that updates or deletes. */
  private grantAppendAudit(role: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['dynamodb:PutItem'],
      resourceArns: [this.auditTable.tableArn],
    });
  }

  private subscribeTeams(paging: PagingConfig): void {
    // One subscription per endpoint, with its filter policy: pagesSubscriptions, which `crs doctor --paging` checks
    // the deployed subscriptions against.
    const subscriptions = pagesSubscriptions(paging);
    for (const { protocol, endpoint, teams, filterPolicy: allowlists } of subscriptions) {
      const filterPolicy = Object.fromEntries(
        Object.entries(allowlists).map(([attribute, allowlist]) => [
          attribute,
          sns.SubscriptionFilter.stringFilter({ allowlist }),
        ]),
      );
      const options = { filterPolicy, deadLetterQueue: this.pagesDlq };
      if (protocol === 'email')
        this.pagesTopic.addSubscription(new subs.EmailSubscription(endpoint, { ...options, json: false }));
      else if (protocol === 'sms') {
        // SmsSubscription drops deadLetterQueue, so SMS subscriptions are declared directly to keep their DLQ. The id
        // names the number's first team only, as it did before a number could be in several teams: a number that joins
        // or leaves a later team keeps its subscription and has its filter updated. A new id made CloudFormation
        // subscribe the number again before deleting the old resource, which SNS refuses ("already exists with
        // different attributes"): the update failed and rolled back (docs/aws.md: when its first team changes).
        new sns.Subscription(this, `Pages${teams[0]}Sms${endpoint}`, {
          topic: this.pagesTopic,
          protocol: sns.SubscriptionProtocol.SMS,
          endpoint,
          ...options,
        });
      } else {
        warnOfHttpsPassword(this, teams.map((t) => `teams.${t}`).join(', '), endpoint);
        this.pagesTopic.addSubscription(
          new subs.UrlSubscription(endpoint, {
            ...options,
            protocol: sns.SubscriptionProtocol.HTTPS,
            rawMessageDelivery: false,
            deliveryPolicy: HTTPS_DELIVERY_POLICY,
          }),
        );
      }
    }
    if (subscriptions.length === 0) {
      Annotations.of(this).addWarningV2(
        'crs:no-paging-endpoints',
        'no team endpoints configured: pages are published but nobody receives them (set -c pagingConfig=FILE)',
      );
    }
  }

  private addAlarms(): void {
    const alarm = (id: string, spec: AlarmSpec) => this.operatorAlarms.add(id, spec);
    // Dead-letter queues: an idle queue publishes no metric, which means nothing was dead-lettered.
    const deadLetters = (q: sqs.Queue) =>
      q.metricApproximateNumberOfMessagesVisible({ period: MINUTE, statistic: 'Maximum' });
    alarm('MessagesDlqDepth', {
      description:
        'Device messages were dead-lettered after repeated grading failures: those patients are not being graded from them. Inspect the DLQ, fix, redrive.',
      metric: deadLetters(this.queueDlq),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('MessagesOldestAge', {
      description:
        'The oldest queued device message is over 2 minutes old: grading is behind or a patient is blocked by a failing message.',
      metric: this.queue.metricApproximateAgeOfOldestMessage({ period: MINUTE, statistic: 'Maximum' }),
      threshold: 120,
      periods: 2,
      whenMissing: 'ok',
    });
    alarm('NotifyFailuresDepth', {
      description:
        "The notifier's stream gave up on outbox records (its invocations kept failing: an outage longer than its retries, a crash): their pages may not have been sent. `crs outbox retry --all --backend aws` reads them from the stream again (within 24 hours) and pages them.",
      metric: deadLetters(this.notifyDlq),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('UndeliveredPagesDepth', {
      description: 'SNS could not deliver pages to a team endpoint (bad address, endpoint down): a team missed pages.',
      metric: deadLetters(this.pagesDlq),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('NotifyIteratorAge', {
      description: 'Pages are more than a minute behind the grades (notifier slow or failing).',
      metric: this.notify.fn.metric('IteratorAge', { period: MINUTE, statistic: 'Maximum' }),
      threshold: 60_000,
      periods: 2,
      whenMissing: 'ok',
    });
    alarm('EscalationDlqDepth', {
      description:
        'Escalation timers failed 3 times (or the schedule could not invoke the escalate function): ladders may be late. The minute schedule keeps ticking; check EscalateErrors and the escalate log.',
      metric: deadLetters(this.escalationDlq),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('LaddersExhausted', {
      description:
        "A page walked its whole escalation ladder, every loop, and nobody acknowledged it: a patient's page is unanswered. Call the team; the audit export of the patient shows who was paged when.",
      metric: new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: METRIC.laddersExhausted,
        dimensionsMap: { service: 'escalate' },
        period: MINUTE,
        statistic: 'Sum',
      }),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('AckLinksRefused', {
      description:
        'Acknowledge links were refused (forged, altered or expired) 5 times in 5 minutes: someone may be guessing links, or links are being opened long after they expire.',
      metric: new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: METRIC.acknowledgementsRefused,
        dimensionsMap: { service: 'ack' },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
      threshold: 5,
      whenMissing: 'ok',
    });
    for (const [name, fn] of this.namedFunctions()) {
      const errors = fn.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' });
      alarm(`${name}Errors`, {
        description:
          fn === this.ack
            ? 'The ack function failed: an invocation crashed or timed out, or an acknowledge link could not be served (its store failing; the phone was told nothing was recorded). Look for "acknowledgement failed" in its log group.'
            : `The ${name.toLowerCase()} function failed invocations (crash, timeout, or a whole batch failed); see its log group by request id.`,
        // A link the ack function cannot serve is answered with a page (a phone reads it), so it is no function
        // error: the function counts it (AckLinkFailures) and the alarm adds the two.
        metric:
          fn === this.ack
            ? new cloudwatch.MathExpression({
                expression: 'FILL(errors, 0) + FILL(links, 0)',
                usingMetrics: {
                  errors,
                  links: new cloudwatch.Metric({
                    namespace: METRICS_NAMESPACE,
                    metricName: METRIC.ackLinkFailures,
                    dimensionsMap: { service: 'ack' },
                    period: Duration.minutes(5),
                    statistic: 'Sum',
                  }),
                },
                label: 'ack invocations failed and links answered with a failure page',
                period: Duration.minutes(5),
              })
            : errors,
        threshold: 1,
        whenMissing: 'ok',
      });
    }
    // Throttles anywhere on the path: each is a caller refused or a step delayed, never expected at these limits.
    for (const [name, fn] of this.namedFunctions()) {
      alarm(`${name}Throttles`, {
        description: `Lambda throttled the ${name.toLowerCase()} function (its reserved concurrency was all in use): callers got 5xx or a step of the pipeline waited. See docs/runbook.md.`,
        metric: fn.fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        whenMissing: 'ok',
      });
    }
    for (const [routeKey, name] of Object.entries(this.routeThrottleNames)) {
      alarm(`Throttled${name}`, {
        description: `The API answered 429 on ${routeKey} (over its own rate limit): ${routeKey.includes('ack') ? 'a clinician could not acknowledge from a link or app' : 'a device gateway is sending faster than its limit and is told to retry'}. See docs/runbook.md.`,
        metric: new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: API_THROTTLED_METRIC,
          dimensionsMap: { route: routeKey },
          period: Duration.minutes(5),
          statistic: 'Sum',
        }),
        threshold: 1,
        whenMissing: 'ok',
      });
    }
    alarm('Api5xx', {
      description:
        'The HTTP API answered 5xx (a function failed, timed out or was throttled, or the queue refused): devices retry, a clinician saw an error page. See docs/runbook.md.',
      metric: this.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      whenMissing: 'ok',
    });
    for (const [name, table] of [
      ['StateTable', this.stateTable],
      ['PagesTable', this.pagesTable],
      ['AuditTable', this.auditTable],
      ['TokensTable', this.tokensTable],
      ['SeenMessagesTable', this.seenTable],
    ] as const) {
      const throttled = (metricName: string) =>
        new cloudwatch.Metric({
          namespace: 'AWS/DynamoDB',
          metricName,
          dimensionsMap: { TableName: table.tableName },
          period: Duration.minutes(5),
          statistic: 'Sum',
        });
      alarm(`${name}Throttled`, {
        description: `DynamoDB throttled reads or writes on the ${name} (a hot partition, or an account limit): the SDK retries, then the function fails and its records are retried. See docs/runbook.md.`,
        metric: new cloudwatch.MathExpression({
          expression: 'FILL(r, 0) + FILL(w, 0)',
          usingMetrics: { r: throttled('ReadThrottleEvents'), w: throttled('WriteThrottleEvents') },
          label: `${name} throttle events`,
          period: Duration.minutes(5),
        }),
        threshold: 1,
        whenMissing: 'ok',
      });
    }
    // The dead-letter paths themselves failing (a key or queue policy that refuses the service): what would
    // otherwise be lost without a trace.
    alarm('UndeliveredPagesRedriveFailed', {
      description:
        'SNS could not put an undeliverable page on the UndeliveredPages queue (its key or queue policy refused SNS): that page is lost. Check the key policy and the queue policy now. See docs/runbook.md.',
      metric: this.pagesTopic.metric('NumberOfNotificationsFailedToRedriveToDlq', { period: MINUTE, statistic: 'Sum' }),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('ScheduleDlqFailed', {
      description:
        'EventBridge could not invoke the escalate function and could not put the event on the EscalationDlq either (its key or queue policy refused it). See docs/runbook.md.',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'InvocationsFailedToBeSentToDlq',
        dimensionsMap: { RuleName: this.sweepRule.ruleName },
        period: MINUTE,
        statistic: 'Sum',
      }),
      threshold: 1,
      whenMissing: 'ok',
    });
    if (this.audit.trailLogs) {
      new logs.MetricFilter(this, 'AuditTableTamperingFilter', {
        logGroup: this.audit.trailLogs,
        filterPattern: logs.FilterPattern.literal(auditTamperingPattern(this.grade.role.roleArn)),
        metricNamespace: METRICS_NAMESPACE,
        metricName: AUDIT_TAMPERING_METRIC,
        metricValue: '1',
      });
      alarm('AuditTableTampering', {
        description:
          'CloudTrail recorded a call that changes or deletes audit entries, or a refused call, on the Audit or SeenMessages table: nothing of this stack makes one. Find who in the trail (userIdentity) now. See docs/runbook.md.',
        metric: new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: AUDIT_TAMPERING_METRIC,
          period: Duration.minutes(5),
          statistic: 'Sum',
        }),
        threshold: 1,
        whenMissing: 'ok',
      });
    }
    alarm('IngestQueueUnavailable', {
      description:
        'Ingest answered 503: SQS refused messages, or the device tokens or the patients could not be read; devices are being told to retry.',
      metric: new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: METRIC.queueUnavailable,
        dimensionsMap: { service: 'ingest' },
        period: MINUTE,
        statistic: 'Sum',
      }),
      threshold: 1,
      whenMissing: 'ok',
    });

    // The paging path proves itself (issue 10): where silence is the failure, no data breaches.
    const ours = (metricName: string, service: string, period = MINUTE) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service },
        period,
        statistic: 'Sum',
      });
    alarm('SendsParked', {
      description:
        'SNS refused a page send 3 times, or the notifier could not page an outbox record because of the record itself, and it was parked so that what is behind it goes on: a team did not get that page. `crs outbox list --backend aws` names it; fix the cause, then `crs outbox retry --backend aws`.',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(notify, 0) + FILL(escalate, 0) + FILL(records, 0)',
        usingMetrics: {
          notify: ours(METRIC.sendsParked, 'notify'),
          escalate: ours(METRIC.sendsParked, 'escalate'),
          records: ours(METRIC.recordsParked, 'notify'),
        },
        period: MINUTE,
        label: 'page sends and outbox records parked',
      }),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('PagesDeferred', {
      description:
        'SNS refused page publishes (an outage or throttling): the pages are stored and go out, in order, once SNS takes them again (the escalate tick tries every minute); until then nobody is being paged. Check SNS in the AWS Health Dashboard and the notify and escalate logs; call the teams of the patients on the board meanwhile.',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(notify, 0) + FILL(escalate, 0)',
        usingMetrics: {
          notify: ours(METRIC.sendsDeferred, 'notify'),
          escalate: ours(METRIC.sendsDeferred, 'escalate'),
        },
        period: MINUTE,
        label: 'page publishes deferred (SNS down)',
      }),
      threshold: 1,
      whenMissing: 'ok',
    });
    // The ack function verifies links with keys it holds and reads again every 5 minutes, only when a link is opened:
    // while those reads fail, a key dropped since (a leaked one: AWSPREVIOUS removed) still verifies in that warm
    // container. Links are opened seldom, so a read that does not recover may fail only once in 5 minutes: the first.
    alarm('AckKeysNotRead', {
      description:
        'The ack function could not read the acknowledge-link secret again: a warm container verifies links with the keys it holds, so a key dropped since (a leaked one) is still taken there. Check Secrets Manager and the ack role (secretsmanager:GetSecretValue); if it goes on, update the function\'s configuration to replace its containers. See docs/runbook.md, "Rotating the acknowledge-link key".',
      metric: ours(METRIC.ackKeyReadFailures, 'ack', Duration.minutes(5)),
      threshold: 1,
      whenMissing: 'ok',
    });
    alarm('NoEscalateRun', {
      description:
        'The escalate function has not run for 3 minutes (its schedule fires every minute): escalation ladders, silences ending, stale-feed alerts and pages stored while SNS was down are not being processed. Check the schedule rule, EscalateErrors and the escalate log.',
      metric: ours(METRIC.escalateRuns, 'escalate'),
      threshold: 1,
      periods: 3,
      comparison: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      whenMissing: 'breaching',
    });
    alarm('NoIngestWhileEnrolled', {
      description:
        'Patients are enrolled but no device message has been graded for 10 minutes: gateways, the API, ingest or grading are not getting data through. Check IngestErrors, MessagesOldestAge and the gateways.',
      metric: new cloudwatch.MathExpression({
        expression: 'IF(FILL(enrolled, 0) > 0 AND FILL(graded, 0) == 0, 1, 0)',
        usingMetrics: {
          enrolled: ours(METRIC.enrolledPatients, 'escalate', Duration.minutes(5)),
          graded: ours(METRIC.gradesComputed, 'grade', Duration.minutes(5)),
        },
        period: Duration.minutes(5),
        label: 'enrolled and nothing graded',
      }),
      threshold: 1,
      periods: 2,
      whenMissing: 'breaching',
    });
    alarm('PagesPublishFailed', {
      description:
        'SNS failed to deliver pages to subscribed endpoints (NumberOfNotificationsFailed): a team may have missed pages. The UndeliveredPages queue holds them.',
      metric: this.pagesTopic.metricNumberOfNotificationsFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      whenMissing: 'ok',
    });
  }

  /** The five functions by the name their alarms carry. */
  private namedFunctions(): [string, CrsFunction][] {
    return [
      ['Ingest', this.ingest],
      ['Grade', this.grade],
      ['Notify', this.notify],
      ['Escalate', this.escalate],
      ['Ack', this.ack],
    ];
  }
}
