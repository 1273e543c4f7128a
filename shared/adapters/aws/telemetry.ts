// Powertools logger and metrics for the Lambda functions. Logs carry ids only (patientId, messageId,
// notificationId, tokenId): never message bodies, values, or validation error texts, which echo values.
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
// The release's names from release.ts, not env.ts: env.ts in this module's chunk would load at every cold start.
import { RELEASE_VARIABLE, UNKNOWN_RELEASE } from '#app/release.ts';
import type { SecurityEvent } from '../../ports.ts';
import { withSourcePositions } from './source-positions.ts';

export const METRICS_NAMESPACE = 'CrsAlerting';

/** Custom metric names (CloudWatch namespace CrsAlerting, dimension `service`). */
export const METRIC = {
  messagesAccepted: 'MessagesAccepted',
  rejects: 'Rejects',
  authFailures: 'AuthFailures',
  queueUnavailable: 'QueueUnavailable',
  /** Messages the grade function applied; with EnrolledPatients, "no ingest while patients are enrolled" (alarmed). */
  gradesComputed: 'GradesComputed',
  duplicates: 'DuplicatesIgnored',
  poisonMessages: 'PoisonMessages',
  stateWriteFailures: 'StateWriteFailures',
  processingLatency: 'ProcessingLatency',
  /** Pages published to SNS (every level of every ladder). */
  pagesSent: 'PagesSent',
  /** Grade changes and alerts the notifier handed to the pager. */
  pagesOpened: 'PagesOpened',
  escalations: 'Escalations',
  /** Ladders walked to the end with nobody acknowledging: alarmed. */
  laddersExhausted: 'LaddersExhausted',
  acknowledgements: 'Acknowledgements',
  /** Acknowledge links the ack function could not serve (its store failing): answered with a page, alarmed (AckErrors). */
  ackLinkFailures: 'AckLinkFailures',
  /**
   * Reads of the acknowledge-link keys that failed in a warm container (it signs and verifies with the keys it
   * holds): while they go on, a rotation does not reach it (docs/runbook.md).
   */
  ackKeyReadFailures: 'AckKeyReadFailures',
  /** Acknowledge links refused (forged, altered, expired). */
  acknowledgementsRefused: 'AcknowledgementsRefused',
  staleFeedAlerts: 'StaleFeedAlerts',
  /** Escalation timers that could not be set (the minute tick covers them). */
  timerErrors: 'TimerErrors',
  /** Page sends SNS refused a few times and that were parked (the pages behind them went on): alarmed. */
  sendsParked: 'SendsParked',
  /** Outbox records the notifier parked, bad in themselves (the records behind them went on): alarmed. */
  recordsParked: 'RecordsParked',
  /** Pages stored whose send failed because SNS was down: left to the escalate tick (the record is done). */
  sendsDeferred: 'SendsDeferred',
  /** Escalate function runs (timers and the schedule): alarmed when missing, since silence is the failure. */
  escalateRuns: 'EscalateRuns',
  /** Enrolled patients, counted by the escalate function's stale-feed sweep each minute. */
  enrolledPatients: 'EnrolledPatients',
  /** A messageId reused with other content: graded as a new observation, and recorded. */
  reusedMessageIds: 'ReusedMessageIds',
} as const;

export interface Telemetry {
  logger: Logger;
  metrics: Metrics;
}

export function telemetry(serviceName: string): Telemetry {
  return {
    // Every line says which release wrote it: during a deploy or after a rollback the functions run two.
    logger: new Logger({ serviceName, persistentKeys: { release: process.env[RELEASE_VARIABLE] ?? UNKNOWN_RELEASE } }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
  };
}

/**
 * Flushes what an invocation counted (EMF on stdout), when it counted anything: on an empty buffer Powertools writes
 * no metric, only a warning ("No application metrics to publish...", 169 bytes), a log line per quiet invocation
 * (a stream batch with nothing to page), on stderr under crs serve --backend aws and billed in CloudWatch Logs. No
 * function adds dimensions or metadata per invocation, nor the cold-start metric: an empty buffer leaves nothing.
 */
export function flushMetrics(metrics: Metrics): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
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
  const bare = new Error(
    `all ${(err as { recordErrors?: unknown[] }).recordErrors?.length ?? ''} records in the batch failed; see the log entries by id`,
  );
  bare.name = 'WholeBatchFailed';
  return bare;
}

/**
 * What a function throws to the Lambda runtime, which logs it: without the records' errors, and with the bundle's
 * positions in its stack mapped to the sources (the functions run without --enable-source-maps: source-positions.ts).
 */
export function thrownToRuntime(err: unknown): unknown {
  return withSourcePositions(withoutRecordErrors(err));
}

/** The pager's metrics: pages sent, escalations, exhausted ladders, acknowledgements and refused links. */
export function pagingMetrics({ logger, metrics }: Telemetry) {
  return {
    onSent: () => metrics.addMetric(METRIC.pagesSent, MetricUnit.Count, 1),
    onAudit: (e: { type: string; details: Record<string, unknown> }) => {
      if (e.type === 'escalation' && e.details.status === 'exhausted')
        metrics.addMetric(METRIC.laddersExhausted, MetricUnit.Count, 1);
      else if (e.type === 'escalation' && !e.details.held) metrics.addMetric(METRIC.escalations, MetricUnit.Count, 1);
      else if (e.type === 'acknowledgement') metrics.addMetric(METRIC.acknowledgements, MetricUnit.Count, 1);
      else if (e.type === 'acknowledgement-refused')
        metrics.addMetric(METRIC.acknowledgementsRefused, MetricUnit.Count, 1);
    },
    /** A forged or malformed link (never in a trail): the function's log is its security log; counted with the refusals. */
    onSecurity: (e: SecurityEvent) => {
      logger.warn('security', { ...e });
      if (e.event === 'acknowledge-link-refused')
        metrics.addMetric(METRIC.acknowledgementsRefused, MetricUnit.Count, 1);
    },
    onAckKeysReadFailed: (err: unknown) => {
      metrics.addMetric(METRIC.ackKeyReadFailures, MetricUnit.Count, 1);
      logger.warn('acknowledge-link keys not read again; the keys held sign and verify', { error: errorName(err) });
    },
    onTimerError: (err: unknown) => {
      metrics.addMetric(METRIC.timerErrors, MetricUnit.Count, 1);
      logger.warn('escalation timer not set; the minute tick covers it', { error: errorName(err) });
    },
    onParked: (send: { pageId: string; patientId: string; level: number; round: number; reason: string }) => {
      metrics.addMetric(METRIC.sendsParked, MetricUnit.Count, 1);
      logger.error(
        'page send PARKED: SNS refused it; the pages behind it go on (crs outbox list|retry --backend aws)',
        {
          pageId: send.pageId,
          patientId: send.patientId,
          level: send.level,
          round: send.round,
          reason: send.reason,
        },
      );
    },
  };
}
