// The stack's resources that hold data or that others hold on to (the pages topic's confirmed subscriptions), by
// logical id, with each property whose change makes CloudFormation replace the resource. The stack keeps them
// (Retain), so a replacement is no error at deploy: it leaves the old one orphaned, with its data, and the pipeline
// starts on an empty one (every patient new, pages and tokens gone, e-mail subscriptions to confirm again).
// test/infra/stack.test.ts compares them with stateful-resources.json, what the last release deployed.

/** Each stateful type and the properties whose update requires replacement (CloudFormation's reference). */
const REPLACED_BY: Record<string, readonly string[]> = {
  'AWS::DynamoDB::Table': ['TableName', 'KeySchema', 'LocalSecondaryIndexes'],
  'AWS::SQS::Queue': ['QueueName', 'FifoQueue'],
  'AWS::SNS::Topic': ['TopicName', 'FifoTopic'],
  'AWS::KMS::Key': [],
  'AWS::SecretsManager::Secret': ['Name'],
  'AWS::Logs::LogGroup': ['LogGroupName'],
  'AWS::Backup::BackupVault': ['BackupVaultName', 'EncryptionKeyArn'],
  'AWS::S3::Bucket': ['BucketName'],
};

type Resource = { Type: string; Properties?: Record<string, unknown> };

/** The stateful resources of a template: logical id to type and the properties that would replace it. */
export function statefulResources(resources: Record<string, Resource>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of Object.entries(resources).sort(([a], [b]) => a.localeCompare(b))) {
    const props = REPLACED_BY[r.Type];
    if (!props) continue;
    out[id] = { Type: r.Type };
    for (const p of props) if (r.Properties?.[p] !== undefined) out[id][p] = r.Properties[p];
    // A key attribute's type is part of the key: changed, the table is replaced too.
    const keys = (r.Properties?.KeySchema as { AttributeName: string }[] | undefined)?.map((k) => k.AttributeName);
    const types = r.Properties?.AttributeDefinitions as { AttributeName: string }[] | undefined;
    if (keys && types) out[id].KeyAttributes = types.filter((a) => keys.includes(a.AttributeName));
  }
  return out;
}
