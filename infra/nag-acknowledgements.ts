// Every cdk-nag finding this stack acknowledges, each on the narrowest construct and with the reason it does not
// apply or is accepted. Anything not listed here fails the synth.
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { CrsAlertingStack } from './stack.ts';

function ack(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export function acknowledgeFindings(stack: CrsAlertingStack): void {
  for (const f of [stack.ingest, stack.grade, stack.notify, stack.escalate, stack.ack]) {
    ack(
      f.fn,
      'AwsSolutions::AwsSolutions-L1',
      'Node.js 22 is the runtime the project targets and tests (bundles are built with target node22); moving to a newer runtime is a deliberate, tested upgrade, not a synth-time default.',
    );
    ack(
      f.fn,
      'HIPAA.Security::HIPAA.Security-LambdaDLQ',
      "Ingest and ack are invoked synchronously by API Gateway, grade, notify and escalate by event source mappings, for which a function DLQ never receives anything; their failures go to the FIFO queue's DLQ (grade), the stream's on-failure SQS destination (notify) and the escalation timers' DLQ (escalate), all alarmed. The one asynchronous invocation, the minute schedule of escalate, is an idempotent tick that the next minute's repeats; EventBridge's own failures to invoke go to the escalation DLQ, and failed invocations raise EscalateErrors.",
    );
    ack(
      f.fn,
      'HIPAA.Security::HIPAA.Security-LambdaInsideVPC',
      'The functions reach only AWS service APIs (SQS, DynamoDB, SNS, KMS) over TLS with IAM-signed requests, and no resource of this stack lives in a VPC; a VPC would add NAT or interface endpoints without removing any exposure.',
    );
    // CDK's key grants name the actions with their standard wildcards; the resource is this stack's key only.
    for (const action of ['kms:ReEncrypt*', 'kms:GenerateDataKey*']) {
      ack(
        f.role.policy,
        `AwsSolutions::AwsSolutions-IAM5[Action::${action}]`,
        `${action} is CDK's grant on the stack's one customer managed key (its ARN is the only resource); the wildcard covers the variants (ReEncryptFrom/To, GenerateDataKeyWithoutPlaintext) that SQS, SNS and DynamoDB use with it.`,
      );
    }
  }
  ack(
    stack.notify.role.policy,
    'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
    'dynamodb:ListStreams, which the stream event source needs, does not support resource-level permissions; every other statement names its table, stream, topic or queue.',
  );
  const routes = stack.api.node.findAll().filter((c) => /^(GET|POST)--/.test(c.node.id));
  for (const route of routes.filter((c) => !c.node.id.includes('--ack'))) {
    ack(
      route,
      'AwsSolutions::AwsSolutions-APIG4',
      'Every device authenticates with its own bearer token, checked by the ingest function against the stored SHA-256 hash before anything is queued (401 without a token, 403 for an unknown or revoked one); a revoked token fails on the next request. An API Gateway authorizer would duplicate that check or cache it past a revocation.',
    );
  }
  for (const route of routes.filter((c) => c.node.id.includes('--ack'))) {
    ack(
      route,
      'AwsSolutions::AwsSolutions-APIG4',
      'The acknowledge routes are opened from a phone without a login by design: the authority is the token in the link, an HMAC-SHA256 over the page, the role paged and an expiry, keyed by a secret only the functions read. The ack function refuses a forged, altered or expired token (403) and audits the refusal; GET never acknowledges; refusals are alarmed (AckLinksRefused).',
    );
  }
  ack(
    stack.ackSecret,
    'AwsSolutions::AwsSolutions-SMG4',
    "The acknowledge-link key is rotated by hand (docs/runbook.md: Rotating the acknowledge-link key), never on a schedule: the functions read it once per container, so a rotation is followed by replacing their containers, the ack function first (which reads AWSPREVIOUS too, so that the links already sent keep working until they expire); two rotations within a link's life would void links in the middle of an escalation. Links expire after 12 hours, and the key never leaves Secrets Manager but to the three functions that sign or verify links.",
  );
  ack(
    stack.ackSecret,
    'HIPAA.Security::HIPAA.Security-SecretsManagerRotationEnabled',
    "The acknowledge-link key is rotated by hand (docs/runbook.md), never on a schedule: the functions read it once per container, so a rotation is followed by replacing their containers, the ack function first (it reads AWSPREVIOUS too, so that the links already sent keep working until they expire). Links expire after 12 hours; the secret is encrypted with the stack's customer managed key.",
  );
  ack(
    stack.notifyDlq,
    'AwsSolutions::AwsSolutions-SQS3',
    "This queue is itself a dead-letter queue: the on-failure destination of the notifier's stream event source mapping (cdk-nag only recognises queues named in a RedrivePolicy). It is alarmed on depth.",
  );
  ack(
    stack.pagesDlq,
    'AwsSolutions::AwsSolutions-SQS3',
    'This queue is itself a dead-letter queue: the redrive target of every team subscription of the pages topic (cdk-nag only recognises queues named in an SQS RedrivePolicy). It is alarmed on depth.',
  );
  ack(
    stack.operatorAlarms.undelivered,
    'AwsSolutions::AwsSolutions-SQS3',
    "This queue is itself a dead-letter queue: the redrive target of every subscription of the operators' alarm topic (cdk-nag only recognises queues named in an SQS RedrivePolicy). It is alarmed on depth.",
  );
  const trailBucket = stack.audit.trailBucket;
  if (trailBucket) {
    const why =
      "The bucket receives only CloudTrail's log files of the Audit table's data events, written by CloudTrail alone (the bucket policy names this trail's ARN); every file is proven unaltered by CloudTrail's signed digest files (log file validation), versioning keeps every version, and with backupVaultLock the files are object-locked in compliance mode. Server access logs would need a second bucket whose own access would again go unlogged.";
    ack(trailBucket, 'AwsSolutions::AwsSolutions-S1', why);
    ack(trailBucket, 'HIPAA.Security::HIPAA.Security-S3BucketLoggingEnabled', why);
    ack(
      trailBucket,
      'HIPAA.Security::HIPAA.Security-S3BucketReplicationEnabled',
      "A copy outside the region is the operator's (docs/runbook.md, audit retention): the same events also go to the TrailLogs log group, and the audit table itself is backed up (monthly by default, with point-in-time recovery over 35 days) into a vault that can be copied to another account or region (backupCopyVaultArn). Replicating this bucket would need a second bucket and key in another region, which this single-region stack does not own.",
    );
  }
  const backupRole = Stack.of(stack)
    .node.findAll()
    .find((c) => c.node.path.endsWith('Audit/Plan/Tables/Role'));
  if (backupRole) {
    ack(
      backupRole,
      'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      "The AWS Backup service role policy, maintained by AWS for the service; only backup.amazonaws.com can assume this role, and it backs up this stack's tables into a vault encrypted with the stack's key.",
    );
  }
}
