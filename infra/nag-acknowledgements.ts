// Every cdk-nag finding this stack acknowledges, each on the narrowest construct and with the reason it does not
// apply or is accepted. Anything not listed here fails the synth.
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { CrsAlertingStack } from './stack.ts';

function ack(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export function acknowledgeFindings(stack: CrsAlertingStack): void {
  for (const f of [stack.ingest, stack.grade, stack.notify]) {
    ack(
      f.fn,
      'AwsSolutions::AwsSolutions-L1',
      'Node.js 22 is the runtime the project targets and tests (bundles are built with target node22); moving to a newer runtime is a deliberate, tested upgrade, not a synth-time default.',
    );
    ack(
      f.fn,
      'HIPAA.Security::HIPAA.Security-LambdaDLQ',
      'No function is invoked asynchronously: ingest is invoked synchronously by API Gateway, grade and notify by event source mappings, for which a function DLQ never receives anything. Their failures go to the FIFO queue\'s DLQ (grade) and the stream\'s on-failure SQS destination (notify), both alarmed.',
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
  for (const route of stack.api.node.findAll().filter((c) => c.node.id.startsWith('POST--'))) {
    ack(
      route,
      'AwsSolutions::AwsSolutions-APIG4',
      'Every device authenticates with its own bearer token, checked by the ingest function against the stored SHA-256 hash before anything is queued (401 without a token, 403 for an unknown or revoked one); a revoked token fails on the next request. An API Gateway authorizer would duplicate that check or cache it past a revocation.',
    );
  }
  ack(
    stack.notifyDlq,
    'AwsSolutions::AwsSolutions-SQS3',
    'This queue is itself a dead-letter queue: the on-failure destination of the notifier\'s stream event source mapping (cdk-nag only recognises queues named in a RedrivePolicy). It is alarmed on depth.',
  );
  ack(
    stack.pagesDlq,
    'AwsSolutions::AwsSolutions-SQS3',
    'This queue is itself a dead-letter queue: the redrive target of every team subscription of the pages topic (cdk-nag only recognises queues named in an SQS RedrivePolicy). It is alarmed on depth.',
  );
  const backupRole = Stack.of(stack).node.findAll().find((c) => c.node.path.endsWith('BackupPlan/Tables/Role'));
  if (backupRole) {
    ack(
      backupRole,
      'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      'The AWS Backup service role policy, maintained by AWS for the service; only backup.amazonaws.com can assume this role, and it backs up this stack\'s tables into a vault encrypted with the stack\'s key.',
    );
  }
}
