// What the aws-failures-*.test.ts files share (one file per failure, so that they run side by side): an emulator of
// the file's own, SQS and DynamoDB clients on it, and the `--config` file that keeps the stale-feed alert out.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll } from 'vitest';
import { freshFeedConfig } from '#test/support/aws-serve.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

export interface FailureRun {
  emulator: Emulator;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  /** For `--config`: the stale-feed alert after a day (freshFeedConfig). */
  config: string;
}

/** Starts the file's emulator before its tests and stops it after; the fields are set from then on. */
export function failureRun(): FailureRun {
  const run = {} as FailureRun;
  const config = freshFeedConfig();
  beforeAll(async () => {
    const emulator = await startEmulator();
    const client = {
      endpoint: emulator.endpoint,
      region: process.env.AWS_REGION ?? 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    };
    Object.assign(run, {
      emulator,
      sqs: new SQSClient(client),
      dynamodb: new DynamoDBClient(client),
      config: config.file,
    });
  });
  afterAll(async () => {
    run.sqs?.destroy();
    run.dynamodb?.destroy();
    await run.emulator?.stop();
    config.remove();
  });
  return run;
}
