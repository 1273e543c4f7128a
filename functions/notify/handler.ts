// Notifier Lambda on the state table's DynamoDB stream (filtered to outbox inserts): hands each grade change and
// each low-SpO2 alert to the pager (pages to every team it concerns, each with a signed acknowledge link,
// escalation timers set), in stream order, one at a time. How each record ends (paged; pages stored and left to
// the escalate tick while SNS is down; parked when bad in itself; failed and retried in order when something it
// needs is down) is shared/adapters/aws/outbox-delivery.ts. Failed records are reported so that only they and the
// records after them are retried (bisected on error, then described on the on-failure queue, from where
// `crs outbox retry --backend aws` pages them again).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { Notification } from '#domain/page.ts';
import {
  OutboxDelivery,
  type NotifyPaging,
  type OutboxDeliveryDeps,
  type OutboxImage,
} from '#adapters/aws/outbox-delivery.ts';
import { awsPagingFromEnv } from '#adapters/aws/paging.ts';
import {
  METRIC,
  pagingMetrics,
  telemetry,
  thrownToRuntime,
  type Telemetry,
  flushMetrics,
} from '#adapters/aws/telemetry.ts';
import { coldStart } from '#adapters/aws/cold-start.ts';

export type { NotifyPaging } from '#adapters/aws/outbox-delivery.ts';

export interface NotifyHandlerDeps extends Telemetry {
  paging: () => Promise<NotifyPaging>;
  now: () => number;
}

/** The delivery's log and metrics through Powertools (ids only). */
export function deliveryTelemetry({ logger, metrics }: Telemetry): Pick<OutboxDeliveryDeps, 'log' | 'count'> {
  return {
    log: (level, message, ids) => logger[level](message, ids),
    count: (outcome) => {
      // Opened: handed to the pager, its pages stored (sent, or left to the tick while SNS is down).
      if (outcome === 'paged' || outcome === 'deferred') metrics.addMetric(METRIC.pagesOpened, MetricUnit.Count, 1);
      if (outcome === 'deferred') metrics.addMetric(METRIC.sendsDeferred, MetricUnit.Count, 1);
      if (outcome === 'parked') metrics.addMetric(METRIC.recordsParked, MetricUnit.Count, 1);
    },
  };
}

export function createNotifyHandler(deps: NotifyHandlerDeps) {
  const { logger, metrics } = deps;
  const reporting = deliveryTelemetry(deps);

  return async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    const delivery = new OutboxDelivery({ paging: deps.paging, now: deps.now, ...reporting });
    const deliver = async (record: DynamoDBRecord): Promise<void> => {
      await delivery.deliver(record.dynamodb?.NewImage as OutboxImage | undefined);
    };
    try {
      // In stream order, one at a time: a patient's pages go out in the order they were written, and a higher
      // grade supersedes the page of the lower one written just before it.
      const processor = new BatchProcessor(EventType.DynamoDBStreams);
      return await processPartialResponse(event, deliver, processor, {
        processInParallel: false,
        ...(context ? { context } : {}),
      });
    } catch (err) {
      throw thrownToRuntime(err);
    } finally {
      flushMetrics(metrics);
    }
  };
}

/** `now`: Date.now in Lambda; the host's clock when `crs serve --backend aws` runs the function. */
export function liveDeps(now: () => number = Date.now): NotifyHandlerDeps {
  const t = telemetry('notify');
  const clients = {
    dynamodb: new DynamoDBClient({}),
    sns: new SNSClient({}),
    sqs: new SQSClient({}),
    secrets: new SecretsManagerClient({}),
  };
  return {
    paging: coldStart(() =>
      awsPagingFromEnv(process.env, clients, pagingMetrics(t), now).then(
        ({ pager, sender, parkedRecords }): NotifyPaging => ({
          pager,
          parkedRecords,
          ...(sender ? { remember: (n: Notification) => sender.remember(n) } : {}),
        }),
      ),
    ),
    now,
    ...t,
  };
}

export const handler = createNotifyHandler(liveDeps());
