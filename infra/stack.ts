// The serverless pipeline: HTTP API -> ingest -> SQS FIFO (group per patient) -> grade -> DynamoDB (state + outbox,
// one transaction) -> stream -> notify -> SNS (a filtered subscription per team). Encrypted with one customer
// managed key, TLS only, least-privilege roles from grants, a DLQ or on-failure destination behind every
// asynchronous consumer, and alarms that page the operators.
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Annotations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ROUTES } from '../shared/app/ingest.ts';
import { ENV } from '../shared/adapters/aws/env.ts';
import { DELIVERIES_TABLE, STATE_TABLE, TOKENS_TABLE } from '../shared/adapters/aws/table-layout.ts';
import { METRIC, METRICS_NAMESPACE } from '../shared/adapters/aws/telemetry.ts';
import { TEAMS, resolveConfig } from '../shared/domain/config.ts';
import { CrsFunction } from './function-defaults.ts';
import type { PagingConfig } from './paging-config.ts';

export interface Concurrency {
  ingest: number;
  grade: number;
  notify: number;
}

export interface CrsAlertingStackProps extends StackProps {
  paging: PagingConfig;
  /** Grading configuration overrides (JSON object), checked at synth and passed to the grade function. */
  gradingOverrides?: Record<string, unknown>;
  /** Reserved concurrency per function: capacity no other function in the account can take. */
  concurrency?: Concurrency;
  /** Requests per second (and burst) the HTTP API accepts before answering 429. */
  ingestThrottle?: { rateLimit: number; burstLimit: number };
  logRetention?: logs.RetentionDays;
}

export const DEFAULT_CONCURRENCY: Concurrency = { ingest: 50, grade: 20, notify: 5 };

/** The grade function's timeout: the queue's visibility timeout is six times it, as Lambda advises. */
const GRADE_TIMEOUT = Duration.seconds(15);
/** Deliveries before a message that keeps failing goes to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 3;

export class CrsAlertingStack extends Stack {
  readonly key: kms.Key;
  readonly stateTable: dynamodb.Table;
  readonly deliveriesTable: dynamodb.Table;
  readonly tokensTable: dynamodb.Table;
  readonly queue: sqs.Queue;
  readonly queueDlq: sqs.Queue;
  readonly notifyDlq: sqs.Queue;
  readonly pagesDlq: sqs.Queue;
  readonly pagesTopic: sns.Topic;
  readonly alarmTopic: sns.Topic;
  readonly ingest: CrsFunction;
  readonly grade: CrsFunction;
  readonly notify: CrsFunction;
  readonly api: apigwv2.HttpApi;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: CrsAlertingStackProps) {
    super(scope, id, props);
    const concurrency = props.concurrency ?? DEFAULT_CONCURRENCY;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;

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

    // ---- DynamoDB: patient state with its outbox (streamed to the notifier), delivery marks, device tokens.
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
    this.deliveriesTable = new dynamodb.Table(this, 'DeliveriesTable', {
      ...tableDefaults,
      partitionKey: { name: DELIVERIES_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: DELIVERIES_TABLE.ttlAttribute,
    });
    this.tokensTable = new dynamodb.Table(this, 'TokensTable', {
      ...tableDefaults,
      partitionKey: { name: TOKENS_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
    });
    this.tokensTable.addGlobalSecondaryIndex({
      indexName: TOKENS_TABLE.tokenIdIndex,
      partitionKey: { name: TOKENS_TABLE.tokenIdAttribute, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    const vault = new backup.BackupVault(this, 'BackupVault', { encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
    const plan = backup.BackupPlan.daily35DayRetention(this, 'BackupPlan', vault);
    plan.addSelection('Tables', {
      resources: [this.stateTable, this.deliveriesTable, this.tokensTable].map((t) => backup.BackupResource.fromDynamoDbTable(t)),
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
    this.grade = new CrsFunction(this, 'Grade', {
      ...fnDefaults,
      name: 'grade',
      description: 'Grades CRS and ICANS per patient; state and outbox in one DynamoDB transaction',
      timeout: GRADE_TIMEOUT,
      reservedConcurrency: concurrency.grade,
      environment: { [ENV.stateTable]: this.stateTable.tableName, ...(gradingConfigJson ? { [ENV.gradingConfig]: gradingConfigJson } : {}) },
    });
    this.notify = new CrsFunction(this, 'Notify', {
      ...fnDefaults,
      name: 'notify',
      description: 'Publishes outbox pages to SNS once per notificationId',
      timeout: Duration.seconds(30),
      memorySize: 256,
      reservedConcurrency: concurrency.notify,
      environment: { [ENV.deliveriesTable]: this.deliveriesTable.tableName, [ENV.topicArn]: this.pagesTopic.topicArn },
    });

    // Least privilege: each function gets exactly the calls its adapters make.
    // The table only (a plain table.grant() would add its indexes too): ingest looks tokens up by hash.
    iam.Grant.addToPrincipal({ grantee: this.ingest.role, actions: ['dynamodb:GetItem'], resourceArns: [this.tokensTable.tableArn] });
    this.key.grantDecrypt(this.ingest.role);
    this.queue.grantSendMessages(this.ingest.role);

    this.stateTable.grant(this.grade.role, 'dynamodb:GetItem', 'dynamodb:PutItem');
    this.key.grantEncryptDecrypt(this.grade.role);
    this.grade.fn.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );

    this.deliveriesTable.grant(this.notify.role, 'dynamodb:GetItem', 'dynamodb:PutItem');
    this.key.grantEncryptDecrypt(this.notify.role);
    this.pagesTopic.grantPublish(this.notify.role);
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

    // ---- HTTP API: only the two POST routes reach the function; throttled; access logs without bodies.
    const accessLogs = new logs.LogGroup(this, 'IngestAccessLogs', {
      retention: logRetention,
      encryptionKey: this.key,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.api = new apigwv2.HttpApi(this, 'IngestApi', {
      description: 'CRS alerting device ingest',
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

    this.addAlarms();

    new CfnOutput(this, 'IngestUrl', { value: `${this.api.apiEndpoint}${ROUTES.single}`, description: 'POST one message here' });
    new CfnOutput(this, 'IngestBatchUrl', { value: `${this.api.apiEndpoint}${ROUTES.batch}`, description: 'POST up to 100 messages here' });
    new CfnOutput(this, 'TokensTableName', { value: this.tokensTable.tableName, description: `for crs token --table NAME (or ${ENV.tokensTable})` });
    new CfnOutput(this, 'PagesTopicArn', { value: this.pagesTopic.topicArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  private subscribeTeams(paging: PagingConfig): void {
    let count = 0;
    for (const team of TEAMS) {
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

  private alarm(id: string, description: string, metric: cloudwatch.IMetric, threshold: number, evaluationPeriods = 1, comparison = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods,
      comparisonOperator: comparison,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
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
    for (const [name, fn] of [
      ['Ingest', this.ingest],
      ['Grade', this.grade],
      ['Notify', this.notify],
    ] as const) {
      this.alarm(
        `${name}Errors`,
        `The ${name.toLowerCase()} function failed invocations (crash, timeout, or a whole batch failed); see its log group by request id.`,
        fn.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        1,
      );
    }
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
