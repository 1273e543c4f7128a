// Powertools logger and metrics for the Lambda functions. Logs carry ids only (patientId, messageId,
// notificationId, tokenId): never message bodies, values, or validation error texts, which echo values.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

export const METRICS_NAMESPACE = 'CrsAlerting';

/** Custom metric names (CloudWatch namespace CrsAlerting, dimension `service`). */
export const METRIC = {
  messagesAccepted: 'MessagesAccepted',
  rejects: 'Rejects',
  authFailures: 'AuthFailures',
  queueUnavailable: 'QueueUnavailable',
  gradesComputed: 'GradesComputed',
  duplicates: 'DuplicatesIgnored',
  poisonMessages: 'PoisonMessages',
  stateWriteFailures: 'StateWriteFailures',
  processingLatency: 'ProcessingLatency',
  pagesSent: 'PagesSent',
  pagesAlreadySent: 'PagesAlreadySent',
} as const;

export interface Telemetry {
  logger: Logger;
  metrics: Metrics;
}

export function telemetry(serviceName: string): Telemetry {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
  };
}

/** The name of an error, never its message (a validation message echoes the values it refused). */
export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

/**
 * Powertools throws FullBatchFailureError when every record failed, carrying each record's error. The failure
 * must still fail the invocation (so the records are retried and the errors alarm fires), but without those
 * errors, whose messages may echo values, reaching the function's log: this rethrows it bare.
 */
export function withoutRecordErrors(err: unknown): unknown {
  if ((err as Error)?.name !== 'FullBatchFailureError') return err;
  const bare = new Error(`all ${(err as { recordErrors?: unknown[] }).recordErrors?.length ?? ''} records in the batch failed; see the log entries by id`);
  bare.name = 'WholeBatchFailed';
  return bare;
}
