// The operators' alarms: one topic with a key of its own, so that nothing on the pages path (its key, topic,
// subscriptions, dead-letter queue) can silence the alarm about it, and one way to declare an alarm: what it
// watches, when it fires, and whether silence (no data at all) is itself the failure.
//
// What SNS cannot deliver to an operators' endpoint goes to a dead-letter queue of the topic's own
// (`UndeliveredAlarms`, this key), alarmed on depth: that alarm is told through the same topic, so an operator
// whose endpoints all fail learns of it from `crs doctor` (which reads alarm states from CloudWatch).
//
// Each alarm notifies the topic on entering ALARM and on returning to OK. Its description is what the operator
// reads in the notification: what it means and what to do (docs/runbook.md has the same table, checked by a test).
import { Annotations, Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { keptQueueProps } from './queues.ts';
import { HTTPS_DELIVERY_POLICY, warnOfHttpsPassword } from './delivery.ts';

export interface AlarmEndpoints {
  email: string[];
  sms: string[];
  https: string[];
}

export interface AlarmSpec {
  /** What it means and what to do: the first thing the operator reads. */
  description: string;
  metric: cloudwatch.IMetric;
  threshold: number;
  /** Consecutive periods that must breach (default 1). */
  periods?: number;
  /** Default: fires at or above the threshold. */
  comparison?: cloudwatch.ComparisonOperator;
  /**
   * What no data at all means, stated for every alarm:
   * - 'breaching' where silence is the failure (a heartbeat or a flow that stops: no data means nothing ran);
   * - 'ok' where no data means nothing happened (no errors, an idle queue, no throttles).
   */
  whenMissing: 'breaching' | 'ok';
}

export class OperatorAlarms {
  readonly key: kms.Key;
  readonly topic: sns.Topic;
  /** The alarm notifications SNS could not deliver to an operators' endpoint (`UndeliveredAlarms`). */
  readonly undelivered: sqs.Queue;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly action: cwActions.SnsAction;

  /**
   * Creates the key (`AlarmKey`), the topic (`Alarms`), its subscriptions, their dead-letter queue
   * (`UndeliveredAlarms`) and the alarm on it (`UndeliveredAlarmsDepth`) in the stack's own scope.
   */
  constructor(
    private readonly stack: Stack,
    endpoints: AlarmEndpoints,
  ) {
    this.key = new kms.Key(stack, 'AlarmKey', {
      description:
        "CRS alerting: the operators' alarm topic and its undelivered notifications only (independent of the pages path)",
      enableKeyRotation: true,
      alias: 'alias/crs-alerting-alarms',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch alarms publish to the encrypted topic: the key and the topic policy both have to let them.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    this.topic = new sns.Topic(stack, 'Alarms', { displayName: 'CRS alarms', masterKey: this.key, enforceSSL: true });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*` },
        },
      }),
    );
    this.action = new cwActions.SnsAction(this.topic);

    // What SNS could not deliver to an operators' endpoint (an address bouncing, a webhook down after its retries):
    // kept here, encrypted with this key (not the pages' key: nothing on the pages path touches the alarms), for 14
    // days and with the stack. SNS sends to it from this topic only (the queue policy each subscription adds); the key
    // lets SNS of this account's topics use it (naming the topic, which this key encrypts, would be circular).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SnsOfThisAccount',
        principals: [new iam.ServicePrincipal('sns.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:sns:${stack.region}:${stack.account}:*` },
        },
      }),
    );
    this.undelivered = new sqs.Queue(stack, 'UndeliveredAlarms', keptQueueProps(this.key));
    const deadLetterQueue = this.undelivered;

    for (const address of endpoints.email)
      this.topic.addSubscription(new subs.EmailSubscription(address, { deadLetterQueue }));
    // SmsSubscription drops deadLetterQueue: declared directly, with the id it gave (the topic's child named by the
    // number), so that a deployed number keeps its subscription and only gains the redrive policy.
    for (const phone of endpoints.sms)
      new sns.Subscription(this.topic, phone, {
        topic: this.topic,
        protocol: sns.SubscriptionProtocol.SMS,
        endpoint: phone,
        deadLetterQueue,
      });
    for (const url of endpoints.https) {
      warnOfHttpsPassword(stack, 'alarms', url);
      this.topic.addSubscription(
        new subs.UrlSubscription(url, {
          protocol: sns.SubscriptionProtocol.HTTPS,
          deliveryPolicy: HTTPS_DELIVERY_POLICY,
          deadLetterQueue,
        }),
      );
    }
    // Told through this same topic, so it reaches only the endpoints that still work (an operator whose address
    // bounces is not told by mail); `crs doctor` reads the alarm's state from CloudWatch, not through the topic.
    this.add('UndeliveredAlarmsDepth', {
      description:
        "SNS could not deliver an alarm notification to an operators' endpoint (an address bouncing, a webhook down): someone missed alarms. This notification goes through the same topic and reaches only the endpoints that still work; `crs doctor` shows it whatever the topic delivers. Read the UndeliveredAlarms queue (which alarm, which endpoint), fix the endpoint, then purge the queue.",
      metric: this.undelivered.metricApproximateNumberOfMessagesVisible({ period: MINUTE, statistic: 'Maximum' }),
      threshold: 1,
      whenMissing: 'ok',
    });
    if (endpoints.email.length + endpoints.sms.length + endpoints.https.length === 0) {
      Annotations.of(stack).addWarningV2(
        'crs:no-alarm-endpoints',
        'no alarm endpoints configured: alarms fire but nobody is told (set alarms in the paging config)',
      );
    }
  }

  /** One alarm, in the stack's scope under `id`, telling the operators when it fires and when it clears. */
  add(id: string, spec: AlarmSpec): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this.stack, id, {
      // Named for what it watches: the name an operator sees in the notification, in crs doctor and in docs/runbook.md.
      alarmName: `${this.stack.stackName}-${id}`,
      alarmDescription: spec.description,
      metric: spec.metric,
      threshold: spec.threshold,
      evaluationPeriods: spec.periods ?? 1,
      comparisonOperator: spec.comparison ?? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData:
        spec.whenMissing === 'breaching'
          ? cloudwatch.TreatMissingData.BREACHING
          : cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    this.alarms.push(alarm);
    return alarm;
  }
}

/** A one-minute period, the alarms' usual resolution. */
export const MINUTE = Duration.minutes(1);
