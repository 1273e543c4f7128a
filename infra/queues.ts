import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/**
 * Every queue of the stack: encrypted with its key, TLS only, 14 days to act on what it holds, and kept, as the tables
 * are, when the stack is deleted or a queue replaced: the queues hold device messages not yet graded, dead letters to
 * redrive, undelivered pages and alarms and escalation timers (CDK's default deleted them).
 */
export function keptQueueProps(key: kms.IKey) {
  return {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: key,
    dataKeyReuse: Duration.minutes(5),
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    removalPolicy: RemovalPolicy.RETAIN,
  } satisfies sqs.QueueProps;
}
