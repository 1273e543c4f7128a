// The serverless pipeline: HTTP API -> ingest -> SQS FIFO (group per patient) -> grade -> DynamoDB (state + outbox
// + audit, one transaction) -> stream -> notify (the pager) -> SNS (a filtered subscription per team), with the
// pages' escalation ladders run by the escalate function (delayed SQS timers and a minute schedule, which also
// sweeps for stale monitor feeds) and acknowledgements through the ack function (signed links and the API).
// Encrypted with one customer managed key, TLS only, least-privilege roles from grants, a DLQ or on-failure
// destination behind every asynchronous consumer, and alarms that page the operators.
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Annotations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
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
import { ROUTES } from '../shared/app/ingest.ts';
import { ACK_ROUTES } from '../shared/adapters/aws/env.ts';
import { ENV } from '../shared/adapters/aws/env.ts';
import { AUDIT_TABLE, PAGES_TABLE, SEEN_TABLE, STATE_TABLE, TOKENS_TABLE } from '../shared/adapters/aws/table-layout.ts';
import { METRIC, METRICS_NAMESPACE } from '../shared/adapters/aws/telemetry.ts';
import { resolveConfig } from '../shared/domain/config.ts';
import { PAGE_TEAMS } from '../shared/domain/paging.ts';
import { CrsFunction } from './function-defaults.ts';
import type { PagingConfig } from './paging-config.ts';

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
  /** Requests per second (and burst) the HTTP API accepts before answering 429. */
  ingestThrottle?: { rateLimit: number; burstLimit: number };
  logRetention?: logs.RetentionDays;
  /** How often the schedule wakes the escalate function (the stale-feed sweep, and the tick behind lost timers). */
  sweepInterval?: Duration;
}

export const DEFAULT_CONCURRENCY: Concurrency = { ingest: 50, grade: 20, notify: 5, ack: 10 };

/**
 * The escalate function's reserved concurrency, and how many timer batches its SQS mapping runs at once (the
 * mapping's maximum concurrency, which Lambda honours without throttling: a reserved concurrency below what the
 * mapping polls with would throttle timers back to the queue and on to its DLQ). The rest is for the schedule.
 * Ticks may overlap: every step of a ladder is a conditional write, so only one of them pages it.
 */
export const ESCALATE_CONCURRENCY = 5;
export const ESCALATE_TIMER_CONCURRENCY = 2;

/** The grade function's timeout: the queue's visibility timeout is six times it, as Lambda advises. */
const GRADE_TIMEOUT = Duration.seconds(15);
/** The escalate function's timeout (a tick, and a sweep over every enrolled patient). */
const ESCALATE_TIMEOUT = Duration.seconds(60);
/** Deliveries before a message that keeps failing goes to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 3;

export class CrsAlertingStack extends Stack {
  readonly key: kms.Key;
  readonly stateTable: dynamodb.Table;
  readonly pagesTable: dynamodb.Table;
  readonly auditTable: dynamodb.Table;
  readonly tokensTable: dynamodb.Table;
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
  readonly ingest: CrsFunction;
  readonly grade: CrsFunction;
  readonly notify: CrsFunction;
  readonly escalate: CrsFunction;
  readonly ack: CrsFunction;
  readonly api: apigwv2.HttpApi;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: CrsAlertingStackProps) {
    super(scope, id, props);
    const concurrency = props.concurrency ?? DEFAULT_CONCURRENCY;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;

    // The one configuration (grading and paging) every function that grades or pages reads as CRS_CONFIG.
    let gradingConfigJson: string | undefined;
    if (props.gradingOverrides) {
      const r = resolveConfig(props.gradingOverrides);
      if (!r.ok) throw new Error(`invalid grading config: ${r.errors.join('; ')}`);
      gradingConfigJson = JSON.stringify(props.gradingOverrides);
    }

    // ---- Encryption: one customer managed key for queues, topics, tables, logs and backups.
    this.key = new kms.Key(this, 'Key', {
      description: 'CRS alerting: SQS, SNS, DynamoDB, CloudWatch Logs and backups',
      enableKeyRotation: true,
      alias: 'alias/crs-alerting',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccount',
        principals: [new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:*` } },
      }),
    );
    // SNS delivers to the encrypted subscription DLQ, and CloudWatch alarms publish to the encrypted alarm topic.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SnsAndCloudWatchOfThisAccount',
        principals: [new iam.ServicePrincipal('sns.amazonaws.com'), new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

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
    this.auditTable = new dynamodb.Table(this, 'AuditTable', {
      ...tableDefaults,
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
      partitionKey: { name: SEEN_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: SEEN_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
    });
    this.tokensTable.addGlobalSecondaryIndex({
      indexName: TOKENS_TABLE.tokenIdIndex,
      partitionKey: { name: TOKENS_TABLE.tokenIdAttribute, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    const vault = new backup.BackupVault(this, 'BackupVault', { encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
    const plan = backup.BackupPlan.daily35DayRetention(this, 'BackupPlan', vault);
    plan.addSelection('Tables', {
      resources: [this.stateTable, this.pagesTable, this.auditTable, this.tokensTable, this.seenTable].map((t) => backup.BackupResource.fromDynamoDbTable(t)),
    });

    // ---- SQS: the per-patient FIFO queue and the dead-letter queues.
    const queueDefaults = {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      dataKeyReuse: Duration.minutes(5),
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    };
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
      description: 'CRS alerting: HMAC key of the acknowledge links (replacing it voids every link already sent)',
      encryptionKey: this.key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- SNS: the pages topic (one filtered subscription per team endpoint) and the operators' alarm topic.
    this.pagesTopic = new sns.Topic(this, 'Pages', { displayName: 'CRS alerting pages', masterKey: this.key, enforceSSL: true });
    this.alarmTopic = new sns.Topic(this, 'Alarms', { displayName: 'CRS alerting alarms', masterKey: this.key, enforceSSL: true });
    this.subscribeTeams(props.paging);
    this.subscribeOperators(props.paging);

    // ---- Functions.
    const fnDefaults = { key: this.key, logRetention };
    this.ingest = new CrsFunction(this, 'Ingest', {
      ...fnDefaults,
      name: 'ingest',
      description: 'Authenticates devices, validates messages and queues them (202 only once queued)',
      timeout: Duration.seconds(10),
      reservedConcurrency: concurrency.ingest,
      environment: { [ENV.queueUrl]: this.queue.queueUrl, [ENV.tokensTable]: this.tokensTable.tableName },
    });
    const config: Record<string, string> = gradingConfigJson ? { [ENV.gradingConfig]: gradingConfigJson } : {};
    this.grade = new CrsFunction(this, 'Grade', {
      ...fnDefaults,
      name: 'grade',
      description: 'Grades CRS and ICANS per patient; state, outbox and audit in one DynamoDB transaction',
      timeout: GRADE_TIMEOUT,
      reservedConcurrency: concurrency.grade,
      environment: { [ENV.stateTable]: this.stateTable.tableName, [ENV.auditTable]: this.auditTable.tableName, [ENV.seenTable]: this.seenTable.tableName, ...config },
    });
    // What the pager needs wherever it runs; the acknowledge links' base URL is added once the API exists.
    const pagerEnvironment = {
      [ENV.pagesTable]: this.pagesTable.tableName,
      [ENV.auditTable]: this.auditTable.tableName,
      [ENV.ackSecretArn]: this.ackSecret.secretArn,
      ...config,
    };
    const sendingEnvironment = {
      ...pagerEnvironment,
      [ENV.stateTable]: this.stateTable.tableName,
      [ENV.topicArn]: this.pagesTopic.topicArn,
      [ENV.escalationQueueUrl]: this.escalationQueue.queueUrl,
    };
    this.notify = new CrsFunction(this, 'Notify', {
      ...fnDefaults,
      name: 'notify',
      description: 'Pages the teams for each grade change and alert in the outbox (signed acknowledge links, escalation timers)',
      timeout: Duration.seconds(30),
      memorySize: 256,
      reservedConcurrency: concurrency.notify,
      environment: sendingEnvironment,
    });
    this.escalate = new CrsFunction(this, 'Escalate', {
      ...fnDefaults,
      name: 'escalate',
      description: 'Escalation ladders (timers and a minute tick), silences ending, and the stale-feed sweep',
      timeout: ESCALATE_TIMEOUT,
      memorySize: 256,
      reservedConcurrency: ESCALATE_CONCURRENCY,
      environment: sendingEnvironment,
    });
    this.ack = new CrsFunction(this, 'Ack', {
      ...fnDefaults,
      name: 'ack',
      description: 'Acknowledges pages through signed links (GET shows, POST acknowledges) and the API',
      timeout: Duration.seconds(10),
      memorySize: 256,
      reservedConcurrency: concurrency.ack,
      environment: pagerEnvironment,
    });

    // Least privilege: each function gets exactly the calls its adapters make.
    // The table only (a plain table.grant() would add its indexes too): ingest looks tokens up by hash.
    iam.Grant.addToPrincipal({ grantee: this.ingest.role, actions: ['dynamodb:GetItem'], resourceArns: [this.tokensTable.tableArn] });
    this.key.grantDecrypt(this.ingest.role);
    this.queue.grantSendMessages(this.ingest.role);

    // The table only (a plain table.grant() would add its indexes too).
    iam.Grant.addToPrincipal({ grantee: this.grade.role, actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resourceArns: [this.stateTable.tableArn] });
    // Seen messages: a conditional put that returns the old item when it fails (hence GetItem), or a digest added.
    iam.Grant.addToPrincipal({ grantee: this.grade.role, actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], resourceArns: [this.seenTable.tableArn] });
    this.grantAppendAudit(this.grade.role);
    this.key.grantEncryptDecrypt(this.grade.role);
    this.grade.fn.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );

    // The pager where it sends: pages (read, conditional write, a patient's pages), audit (append), the outbox
    // (what a page says in full) and the patient's ward, the topic, the timers, the link key.
    for (const f of [this.notify, this.escalate]) {
      iam.Grant.addToPrincipal({ grantee: f.role, actions: ['dynamodb:GetItem'], resourceArns: [this.stateTable.tableArn] });
      iam.Grant.addToPrincipal({ grantee: f.role, actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], resourceArns: [this.pagesTable.tableArn] });
      this.grantAppendAudit(f.role);
      this.pagesTopic.grantPublish(f.role);
      this.escalationQueue.grantSendMessages(f.role);
      this.ackSecret.grantRead(f.role);
      this.key.grantEncryptDecrypt(f.role);
    }
    this.notify.fn.addEventSource(
      new DynamoEventSource(this.stateTable, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 25,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: 20,
        maxRecordAge: Duration.hours(6),
        onFailure: new SqsDlq(this.notifyDlq),
        filters: [
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('INSERT'),
            dynamodb: { NewImage: { [STATE_TABLE.kindAttribute]: { S: lambda.FilterRule.isEqual(STATE_TABLE.outboxKind) } } },
          }),
        ],
      }),
    );

    // The escalation tick: due pages from the index, read back in batches; the stale-feed sweep: enrolled patients
    // from the state table's index, and the alerts in force (set and cleared) in the pages table.
    iam.Grant.addToPrincipal({
      grantee: this.escalate.role,
      actions: ['dynamodb:Query'],
      resourceArns: [`${this.pagesTable.tableArn}/index/${PAGES_TABLE.dueIndex}`, `${this.stateTable.tableArn}/index/${STATE_TABLE.feedIndex}`],
    });
    iam.Grant.addToPrincipal({ grantee: this.escalate.role, actions: ['dynamodb:BatchGetItem', 'dynamodb:DeleteItem'], resourceArns: [this.pagesTable.tableArn] });
    this.escalate.fn.addEventSource(
      new SqsEventSource(this.escalationQueue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: ESCALATE_TIMER_CONCURRENCY }),
    );
    this.sweepRule = new events.Rule(this, 'EscalationSchedule', {
      description: 'Wakes the escalate function: the stale-feed sweep, and the tick behind any lost escalation timer',
      schedule: events.Schedule.rate(props.sweepInterval ?? Duration.minutes(1)),
      targets: [new eventTargets.LambdaFunction(this.escalate.fn, { retryAttempts: 2, maxEventAge: Duration.minutes(2), deadLetterQueue: this.escalationDlq })],
    });

    // The ack function: a page read and written (acknowledged), the refusal or acknowledgement audited, the link key.
    iam.Grant.addToPrincipal({ grantee: this.ack.role, actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resourceArns: [this.pagesTable.tableArn] });
    this.grantAppendAudit(this.ack.role);
    this.ackSecret.grantRead(this.ack.role);
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
    const throttle = props.ingestThrottle ?? { rateLimit: 200, burstLimit: 400 };
    new apigwv2.HttpStage(this, 'IngestStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle,
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
    for (const path of [ROUTES.single, ROUTES.batch]) {
      this.api.addRoutes({ path, methods: [apigwv2.HttpMethod.POST], integration });
    }
    const ackIntegration = new HttpLambdaIntegration('AckIntegration', this.ack.fn, { payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0 });
    this.api.addRoutes({ path: ACK_ROUTES.link, methods: [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST], integration: ackIntegration });
    this.api.addRoutes({ path: ACK_ROUTES.api, methods: [apigwv2.HttpMethod.POST], integration: ackIntegration });
    const ackBaseUrl = `${this.api.apiEndpoint}/ack/`;
    for (const f of [this.notify, this.escalate, this.ack]) f.fn.addEnvironment(ENV.ackBaseUrl, ackBaseUrl);

    this.addAlarms();

    new CfnOutput(this, 'IngestUrl', { value: `${this.api.apiEndpoint}${ROUTES.single}`, description: 'POST one message here' });
    new CfnOutput(this, 'IngestBatchUrl', { value: `${this.api.apiEndpoint}${ROUTES.batch}`, description: 'POST up to 100 messages here' });
    new CfnOutput(this, 'TokensTableName', { value: this.tokensTable.tableName, description: `for crs token --backend aws --table NAME (or ${ENV.tokensTable})` });
    new CfnOutput(this, 'StateTableName', { value: this.stateTable.tableName, description: `for crs silence (${ENV.stateTable})` });
    new CfnOutput(this, 'PagesTableName', { value: this.pagesTable.tableName, description: `for crs silence (${ENV.pagesTable})` });
    new CfnOutput(this, 'AuditTableName', { value: this.auditTable.tableName, description: `for crs audit export and crs silence (${ENV.auditTable})` });
    new CfnOutput(this, 'EscalationQueueUrl', { value: this.escalationQueue.queueUrl, description: `for crs silence (${ENV.escalationQueueUrl})` });
    new CfnOutput(this, 'AckSecretArn', { value: this.ackSecret.secretArn, description: `for crs silence (${ENV.ackSecretArn})` });
    new CfnOutput(this, 'AckBaseUrl', { value: ackBaseUrl, description: `acknowledge links start with this (${ENV.ackBaseUrl})` });
    new CfnOutput(this, 'PagesTopicArn', { value: this.pagesTopic.topicArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  /** Append-only: PutItem (the writers always put with attribute_not_exists) and nothing that updates or deletes. */
  private grantAppendAudit(role: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:PutItem'], resourceArns: [this.auditTable.tableArn] });
  }

  private subscribeTeams(paging: PagingConfig): void {
    let count = 0;
    for (const team of PAGE_TEAMS) {
      const endpoints = paging.teams[team];
      if (!endpoints) continue;
      const filterPolicy: Record<string, sns.SubscriptionFilter> = {
        teams: sns.SubscriptionFilter.stringFilter({ allowlist: [team] }),
        ...(endpoints.wards ? { ward: sns.SubscriptionFilter.stringFilter({ allowlist: endpoints.wards }) } : {}),
      };
      const options = { filterPolicy, deadLetterQueue: this.pagesDlq };
      for (const address of endpoints.email) this.pagesTopic.addSubscription(new subs.EmailSubscription(address, { ...options, json: false }));
      // SmsSubscription drops deadLetterQueue, so SMS subscriptions are declared directly to keep their DLQ.
      for (const phone of endpoints.sms) {
        new sns.Subscription(this, `Pages${team}Sms${phone}`, { topic: this.pagesTopic, protocol: sns.SubscriptionProtocol.SMS, endpoint: phone, ...options });
      }
      for (const url of endpoints.https) {
        this.pagesTopic.addSubscription(new subs.UrlSubscription(url, { ...options, protocol: sns.SubscriptionProtocol.HTTPS, rawMessageDelivery: false }));
      }
      count += endpoints.email.length + endpoints.sms.length + endpoints.https.length;
    }
    if (count === 0) {
      Annotations.of(this).addWarningV2('crs:no-paging-endpoints', 'no team endpoints configured: pages are published but nobody receives them (set -c pagingConfig=FILE)');
    }
  }

  private subscribeOperators(paging: PagingConfig): void {
    const a = paging.alarms;
    for (const address of a.email) this.alarmTopic.addSubscription(new subs.EmailSubscription(address));
    for (const phone of a.sms) this.alarmTopic.addSubscription(new subs.SmsSubscription(phone));
    for (const url of a.https) this.alarmTopic.addSubscription(new subs.UrlSubscription(url, { protocol: sns.SubscriptionProtocol.HTTPS }));
    if (a.email.length + a.sms.length + a.https.length === 0) {
      Annotations.of(this).addWarningV2('crs:no-alarm-endpoints', 'no alarm endpoints configured: alarms fire but nobody is told (set alarms in the paging config)');
    }
  }

  private alarm(
    id: string,
    description: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    evaluationPeriods = 1,
    comparison = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    /** BREACHING where silence is the failure (nothing reported means the reporter is not running). */
    treatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
  ) {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: comparison,
      treatMissingData,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
    alarm.addOkAction(new cwActions.SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
    return alarm;
  }

  private addAlarms(): void {
    const minute = Duration.minutes(1);
    this.alarm(
      'MessagesDlqDepth',
      'Device messages were dead-lettered after repeated grading failures: those patients are not being graded from them. Inspect the DLQ, fix, redrive.',
      this.queueDlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
      1,
    );
    this.alarm(
      'MessagesOldestAge',
      'The oldest queued device message is over 2 minutes old: grading is behind or a patient is blocked by a failing message.',
      this.queue.metricApproximateAgeOfOldestMessage({ period: minute, statistic: 'Maximum' }),
      120,
      2,
    );
    this.alarm(
      'NotifyFailuresDepth',
      'The notifier gave up on outbox records (retries exhausted or record too old): pages were not sent. The message names the stream range to replay.',
      this.notifyDlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
      1,
    );
    this.alarm(
      'UndeliveredPagesDepth',
      'SNS could not deliver pages to a team endpoint (bad address, endpoint down): a team missed pages.',
      this.pagesDlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
      1,
    );
    this.alarm(
      'NotifyIteratorAge',
      'Pages are more than a minute behind the grades (notifier slow or failing).',
      this.notify.fn.metric('IteratorAge', { period: minute, statistic: 'Maximum' }),
      60_000,
      2,
    );
    this.alarm(
      'EscalationDlqDepth',
      'Escalation timers failed 3 times (or the schedule could not invoke the escalate function): ladders may be late. The minute schedule keeps ticking; check EscalateErrors and the escalate log.',
      this.escalationDlq.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
      1,
    );
    this.alarm(
      'LaddersExhausted',
      'A page walked its whole escalation ladder, every loop, and nobody acknowledged it: a patient\'s page is unanswered. Call the team; the audit export of the patient shows who was paged when.',
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRIC.laddersExhausted, dimensionsMap: { service: 'escalate' }, period: minute, statistic: 'Sum' }),
      1,
    );
    this.alarm(
      'AckLinksRefused',
      'Acknowledge links were refused (forged, altered or expired) 5 times in 5 minutes: someone may be guessing links, or links are being opened long after they expire.',
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRIC.acknowledgementsRefused, dimensionsMap: { service: 'ack' }, period: Duration.minutes(5), statistic: 'Sum' }),
      5,
    );
    for (const [name, fn] of [
      ['Ingest', this.ingest],
      ['Grade', this.grade],
      ['Notify', this.notify],
      ['Escalate', this.escalate],
      ['Ack', this.ack],
    ] as const) {
      this.alarm(
        `${name}Errors`,
        `The ${name.toLowerCase()} function failed invocations (crash, timeout, or a whole batch failed); see its log group by request id.`,
        fn.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        1,
      );
    }
    // The paging path proves itself: where silence is the failure, missing data breaches.
    const ours = (metricName: string, service: string, period = minute) =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service }, period, statistic: 'Sum' });
    this.alarm(
      'SendsParked',
      'SNS refused a page send 3 times and it was parked so that the pages behind it go on: a team did not get that page. `crs outbox list --backend aws` names it; fix the cause, then `crs outbox retry --backend aws`.',
      new cloudwatch.MathExpression({
        expression: 'FILL(notify, 0) + FILL(escalate, 0)',
        usingMetrics: { notify: ours(METRIC.sendsParked, 'notify'), escalate: ours(METRIC.sendsParked, 'escalate') },
        period: minute,
        label: 'page sends parked',
      }),
      1,
    );
    this.alarm(
      'NoEscalateRun',
      'The escalate function has not run for 3 minutes (its schedule fires every minute): escalation ladders, silences ending and stale-feed alerts are not being processed. Check the schedule rule, EscalateErrors and the escalate log.',
      ours(METRIC.escalateRuns, 'escalate'),
      1,
      3,
      cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      cloudwatch.TreatMissingData.BREACHING,
    );
    this.alarm(
      'NoIngestWhileEnrolled',
      'Patients are enrolled but no device message has been graded for 10 minutes: gateways, the API, ingest or grading are not getting data through. Check IngestErrors, MessagesOldestAge and the gateways.',
      new cloudwatch.MathExpression({
        expression: 'IF(FILL(enrolled, 0) > 0 AND FILL(graded, 0) == 0, 1, 0)',
        usingMetrics: { enrolled: ours(METRIC.enrolledPatients, 'escalate', Duration.minutes(5)), graded: ours(METRIC.gradesComputed, 'grade', Duration.minutes(5)) },
        period: Duration.minutes(5),
        label: 'enrolled and nothing graded',
      }),
      1,
      2,
      cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      cloudwatch.TreatMissingData.BREACHING,
    );
    this.alarm(
      'PagesPublishFailed',
      'SNS failed to deliver pages to subscribed endpoints (NumberOfNotificationsFailed): a team may have missed pages. The UndeliveredPages queue holds them.',
      this.pagesTopic.metricNumberOfNotificationsFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
      1,
    );
    this.alarm(
      'IngestQueueUnavailable',
      'Ingest answered 503: SQS refused messages, devices are being told to retry.',
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: METRIC.queueUnavailable,
        dimensionsMap: { service: 'ingest' },
        period: minute,
        statistic: 'Sum',
      }),
      1,
    );
  }
}
