// Notifier Lambda on the state table's DynamoDB stream (filtered to outbox inserts): hands each grade change to
// the pager (pages to every team it concerns, each with a signed acknowledge link, escalation timers set) and each
// low-SpO2 alert to the pager too. The pager opens a record's pages once however often the stream delivers it
// and finishes sends a crash cut short. Failed records are reported so that only they are retried (bisected on
// error, then sent to the on-failure queue).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { Pager } from '../../shared/app/pager.ts';
import type { Notification } from '../../shared/domain/page.ts';
import { outboxRecord } from '../../shared/adapters/aws/dynamo-state-store.ts';
import { awsPagingFromEnv } from '../../shared/adapters/aws/paging.ts';
import { METRIC, errorName, pagingMetrics, telemetry, withoutRecordErrors, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';

export interface NotifyPaging {
  pager: Pick<Pager, 'onNotification' | 'onAlert'>;
  /** Told each grade change before it is paged, so the page's content need not be read back. */
  remember?: (n: Notification) => void;
}

export interface NotifyHandlerDeps extends Telemetry {
  paging: () => Promise<NotifyPaging>;
  now: () => number;
}

export function createNotifyHandler(deps: NotifyHandlerDeps) {
  const { logger, metrics } = deps;

  /**
   * Set by the first record of an invocation that fails: the records after it are not handed to the pager but
   * failed too, so that the stream retries them in order. Otherwise a later grade change of the same patient (a
   * de-escalation) could be paged while an earlier one waits, resolving its pages before they were ever sent.
   */
  let held = false;

  const deliver = async (record: DynamoDBRecord): Promise<void> => {
    if (held) throw new Error('an earlier record of this batch failed: retried in stream order');
    const r = outboxRecord(record.dynamodb?.NewImage as Parameters<typeof outboxRecord>[0]);
    if (!r) return; // not an outbox insert: the stream filter should have dropped it
    const ids =
      r.record === 'notification'
        ? { notificationId: r.notification.notificationId, patientId: r.notification.patientId, condition: r.notification.condition, toGrade: r.notification.toGrade }
        : { alertId: r.alert.alertId, patientId: r.alert.patientId, subject: r.alert.subject, cleared: r.alert.cleared };
    try {
      const { pager, remember } = await deps.paging();
      if (r.record === 'notification') {
        remember?.(r.notification);
        await pager.onNotification(r.notification, deps.now());
      } else {
        const { alertId, patientId, subject, cleared, summary } = r.alert;
        await pager.onAlert({ alertId, patientId, subject, cleared, summary }, deps.now());
      }
      metrics.addMetric(METRIC.pagesOpened, MetricUnit.Count, 1);
      logger.info('paged', ids);
    } catch (err) {
      held = true;
      logger.error('not paged; will retry', { ...ids, error: errorName(err) });
      throw err;
    }
  };

  return async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    held = false;
    try {
      // In stream order, one at a time: a patient's pages go out in the order they were written, and a higher
      // grade supersedes the page of the lower one written just before it.
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
  const t = telemetry('notify');
  let paging: Promise<NotifyPaging> | undefined;
  const clients = { dynamodb: new DynamoDBClient({}), sns: new SNSClient({}), sqs: new SQSClient({}), secrets: new SecretsManagerClient({}) };
  return {
    paging: () =>
      (paging ??= awsPagingFromEnv(process.env, clients, pagingMetrics(t)).then(({ pager, sender }) => ({
        pager,
        ...(sender ? { remember: (n: Notification) => sender.remember(n) } : {}),
      })).catch((err: unknown) => {
        paging = undefined; // a failed cold start (the secret unreadable) is tried again on the next invocation
        throw err;
      })),
    now: Date.now,
    ...t,
  };
}

export const handler = createNotifyHandler(liveDeps());
