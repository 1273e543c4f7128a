// Notifier Lambda on the state table's DynamoDB stream (filtered to outbox inserts): publishes each page to SNS
// once per notificationId (deliverOnce checks and marks the ledger), and reports failed records so that only
// those are retried (bisected on error, then sent to the on-failure queue).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { deliverOnce } from '../../shared/app/deliver.ts';
import { DynamoOutboxLedger } from '../../shared/adapters/aws/dynamo-outbox-ledger.ts';
import { outboxNotification } from '../../shared/adapters/aws/dynamo-state-store.ts';
import { ENV, requireEnv } from '../../shared/adapters/aws/env.ts';
import { SnsNotifier } from '../../shared/adapters/aws/sns-notifier.ts';
import { METRIC, errorName, telemetry, withoutRecordErrors, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';
import type { Notifier, OutboxLedger } from '../../shared/ports.ts';

export interface NotifyHandlerDeps extends Telemetry {
  ledger: OutboxLedger;
  notifier: Notifier;
  now: () => number;
}

export function createNotifyHandler(deps: NotifyHandlerDeps) {
  const { logger, metrics } = deps;

  const deliver = async (record: DynamoDBRecord): Promise<void> => {
    const n = outboxNotification(record.dynamodb?.NewImage as Parameters<typeof outboxNotification>[0]);
    if (!n) return; // not an outbox insert: the stream filter should have dropped it
    try {
      const outcome = await deliverOnce(n, deps.ledger, deps.notifier, deps.now());
      metrics.addMetric(outcome === 'sent' ? METRIC.pagesSent : METRIC.pagesAlreadySent, MetricUnit.Count, 1);
      logger.info(outcome === 'sent' ? 'page sent' : 'page already sent', {
        notificationId: n.notificationId,
        patientId: n.patientId,
        condition: n.condition,
        toGrade: n.toGrade,
        teams: n.teams,
      });
    } catch (err) {
      logger.error('page not sent; will retry', { notificationId: n.notificationId, patientId: n.patientId, error: errorName(err) });
      throw err;
    }
  };

  return async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    try {
      // In stream order, one at a time: a patient's pages go out in the order they were written.
      const processor = new BatchProcessor(EventType.DynamoDBStreams);
      return await processPartialResponse(event, deliver, processor, { processInParallel: false, ...(context ? { context } : {}) });
    } catch (err) {
      throw withoutRecordErrors(err);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

function liveDeps(): NotifyHandlerDeps {
  return {
    ledger: new DynamoOutboxLedger(new DynamoDBClient({}), requireEnv(ENV.deliveriesTable)),
    notifier: new SnsNotifier(new SNSClient({}), requireEnv(ENV.topicArn)),
    now: Date.now,
    ...telemetry('notify'),
  };
}

export const handler = createNotifyHandler(liveDeps());
