// The alarm helper on a stack of its own: an alarm is a few lines, says what no data means, and tells the
// operators through a topic whose key and policy let CloudWatch publish; HTTPS endpoints get the retrying policy.
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { describe, expect, it } from 'vitest';
import { MINUTE, OperatorAlarms } from '#infra/alarms.ts';
import { HTTPS_RETRY, httpsRetryUpperBoundSeconds } from '#adapters/aws/sns-delivery.ts';

function build() {
  const stack = new Stack(new App(), 'AlarmsOnly', { env: { account: '123456789012', region: 'eu-west-1' } });
  const alarms = new OperatorAlarms(stack, {
    email: ['ops@hospital.example'],
    sms: ['+15550100000'],
    https: ['https://ops.hospital.example/hook'],
  });
  const heartbeat = new cloudwatch.Metric({
    namespace: 'CrsAlerting',
    metricName: 'Heartbeat',
    period: MINUTE,
    statistic: 'Sum',
  });
  alarms.add('Silent', {
    description: 'The heartbeat stopped: nothing ran for three minutes.',
    metric: heartbeat,
    threshold: 1,
    periods: 3,
    comparison: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    whenMissing: 'breaching',
  });
  alarms.add('Noisy', {
    description: 'Something failed at least once in a minute.',
    metric: heartbeat,
    threshold: 1,
    whenMissing: 'ok',
  });
  return { stack, alarms, template: Template.fromStack(stack) };
}

describe('OperatorAlarms', () => {
  it('declares an alarm in a few lines, treating no data as breaching where silence is the failure', () => {
    const { template, stack, alarms } = build();
    const topic = { Ref: stack.getLogicalId(alarms.topic.node.defaultChild as never) };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: 'The heartbeat stopped: nothing ran for three minutes.',
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'breaching',
      AlarmActions: [topic],
      OKActions: [topic],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: 'Something failed at least once in a minute.',
      TreatMissingData: 'notBreaching',
    });
    expect(alarms.alarms).toHaveLength(3); // the two above and UndeliveredAlarmsDepth
  });

  it('publishes through a topic with its own rotated key, which CloudWatch alarms of this account may use', () => {
    const { template, stack, alarms } = build();
    const keyId = stack.getLogicalId(alarms.key.node.defaultChild as never);
    const t = template.toJSON().Resources;
    expect(t[keyId].Properties.EnableKeyRotation).toBe(true);
    expect(t[stack.getLogicalId(alarms.topic.node.defaultChild as never)].Properties.KmsMasterKeyId).toEqual({
      'Fn::GetAtt': [keyId, 'Arn'],
    });
    expect(t[keyId].Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
      }),
    );
    const [policy] = Object.values(template.findResources('AWS::SNS::TopicPolicy')) as {
      Properties: { PolicyDocument: { Statement: unknown[] } };
    }[];
    const publish = policy!.Properties.PolicyDocument.Statement.find((st) =>
      JSON.stringify(st).includes('cloudwatch.amazonaws.com'),
    ) as Record<string, any>;
    expect(publish).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
    });
    expect(publish.Condition.StringEquals).toEqual({ 'aws:SourceAccount': '123456789012' });
    expect(JSON.stringify(publish.Condition.ArnLike['aws:SourceArn'])).toContain(
      ':cloudwatch:eu-west-1:123456789012:alarm:*',
    );
  });

  it('subscribes the operators, HTTPS endpoints with retries that back off (within the hour SNS allows)', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@hospital.example' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'sms', Endpoint: '+15550100000' });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'https',
      Endpoint: 'https://ops.hospital.example/hook',
      DeliveryPolicy: {
        healthyRetryPolicy: {
          numRetries: HTTPS_RETRY.numRetries,
          backoffFunction: 'EXPONENTIAL',
          minDelayTarget: 1,
          maxDelayTarget: 60,
        },
      },
    });
    expect(httpsRetryUpperBoundSeconds()).toBeLessThanOrEqual(3600);
    expect(httpsRetryUpperBoundSeconds()).toBeGreaterThanOrEqual(600); // long enough to ride out a gateway restart
  });
});

describe("the alarm topic's undelivered notifications", () => {
  // An alarm notification SNS could not deliver (a bouncing address, an operators' webhook down) left no trace.
  it('go to a dead-letter queue of their own, from every subscription (SMS too), encrypted with the alarm key and kept', () => {
    const { template, stack, alarms } = build();
    const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
    const t = template.toJSON().Resources;
    const queue = t[id(alarms.undelivered)];
    expect(queue.Type).toBe('AWS::SQS::Queue');
    expect(queue.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [id(alarms.key), 'Arn'] });
    expect(queue.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(queue.DeletionPolicy).toBe('Retain');
    expect(queue.UpdateReplacePolicy).toBe('Retain');
    const subs = Object.values(template.findResources('AWS::SNS::Subscription')) as { Properties: any }[];
    expect(subs.map((s) => s.Properties.Protocol).sort()).toEqual(['email', 'https', 'sms']);
    for (const s of subs)
      expect(s.Properties.RedrivePolicy, s.Properties.Protocol).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [id(alarms.undelivered), 'Arn'] },
      });
  });

  it('may be sent by SNS from the alarm topic only, with the alarm key', () => {
    const { template, stack, alarms } = build();
    const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
    const [policy, ...more] = Object.values(template.findResources('AWS::SQS::QueuePolicy')) as { Properties: any }[];
    expect(more).toEqual([]);
    const sends = (policy!.Properties.PolicyDocument.Statement as any[]).filter((st) => st.Effect === 'Allow');
    expect(sends).toEqual([
      expect.objectContaining({
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { ArnEquals: { 'aws:SourceArn': { Ref: id(alarms.topic) } } },
      }),
    ]);
    const byKey = (template.toJSON().Resources[id(alarms.key)].Properties.KeyPolicy.Statement as any[]).filter(
      (st) => JSON.stringify(st.Principal) === JSON.stringify({ Service: 'sns.amazonaws.com' }),
    );
    expect(byKey).toEqual([expect.objectContaining({ Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] })]);
    expect(byKey[0].Condition.StringEquals).toEqual({ 'aws:SourceAccount': '123456789012' });
    expect(JSON.stringify(byKey[0].Condition.ArnLike['aws:SourceArn'])).toContain(':sns:eu-west-1:123456789012:*');
  });

  it('raise an alarm on the queue, which says it is told through the same topic and crs doctor shows it anyway', () => {
    const { template, stack, alarms } = build();
    const depth = Object.values(template.findResources('AWS::CloudWatch::Alarm')).find(
      (a: any) => a.Properties.AlarmName === 'AlarmsOnly-UndeliveredAlarmsDepth',
    ) as { Properties: any };
    expect(depth.Properties).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [stack.getLogicalId(alarms.undelivered.node.defaultChild as never), 'QueueName'] },
        },
      ],
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    expect(depth.Properties.AlarmDescription).toMatch(/same topic/);
    expect(depth.Properties.AlarmDescription).toMatch(/crs doctor/);
  });

  it("keeps an alarm SMS number's subscription (its id) now that it has a dead-letter queue", () => {
    const { stack, template } = build();
    const ids = Object.keys(template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'sms' } }));
    // The id SmsSubscription gave it (topic Alarms, subscriber the number): a new one re-subscribed the number.
    expect(ids).toEqual([expect.stringMatching(/^Alarms15550100000[0-9A-F]{8}$/)]);
    expect(stack.node.findChild('Alarms').node.tryFindChild('+15550100000')).toBeDefined();
  });
});

describe('OperatorAlarms, pinned by a mutation run', () => {
  it('fires an alarm declared without periods or comparison on the first period at or above its threshold', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: 'Something failed at least once in a minute.',
      AlarmName: 'AlarmsOnly-Noisy',
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('warns when the operators have no endpoint at all, and not when they have SMS only', () => {
    const warnings = (endpoints: { email: string[]; sms: string[]; https: string[] }) => {
      const stack = new Stack(new App(), 'AlarmsOnly');
      new OperatorAlarms(stack, endpoints);
      return Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('no alarm endpoints'));
    };
    expect(warnings({ email: [], sms: [], https: [] })).toHaveLength(1);
    expect(warnings({ email: [], sms: ['+15550100000'], https: [] })).toEqual([]);
  });

  it('retries an HTTPS endpoint 3 times a second apart, then backing off to a minute apart, 20 times in all', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'https',
      DeliveryPolicy: {
        healthyRetryPolicy: {
          numRetries: 20,
          numNoDelayRetries: 0,
          numMinDelayRetries: 3,
          minDelayTarget: 1,
          numMaxDelayRetries: 8,
          maxDelayTarget: 60,
          backoffFunction: 'EXPONENTIAL',
        },
      },
    });
  });
});
