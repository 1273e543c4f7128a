// Grade Lambda on the FIFO queue. The batch is grouped by patient (MessageGroupId); each patient's messages are
// graded together by gradePatient (one state read, one transactional write with the outbox), all patients at
// once; a write that fails for a reason of its own (not an outage: a message the store refuses) is made again one
// message at a time (gradeQueued in shared/app, as on the embedded worker), so that the message it fails on is the
// poison message. Each record then succeeds or fails by its place in its group: records before a poison message
// succeed, the poison fails, and SqsFifoPartialProcessorAsync (skipGroupOnError) fails the rest of that patient's
// records so they are redelivered in order, while other patients go on. A patient not graded shortly before the
// function's timeout (a request that hangs, DynamoDB throttling it) is failed then, so that the others' records are
// not.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  gradePatient,
  gradeQueued,
  laterReleaseFields,
  readQueued,
  reusedIds,
  settingsChanges,
  type GroupResult,
  type Queued,
} from '#app/grade.ts';
import type { GradingConfig } from '#domain/config.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { ENV, requireEnv } from '#adapters/aws/env.ts';
import { gradingConfigFromEnv } from '#adapters/aws/grading-config.ts';
import { isOutage } from '#adapters/aws/outage.ts';
import {
  METRIC,
  errorName,
  telemetry,
  thrownToRuntime,
  type Telemetry,
  flushMetrics,
} from '#adapters/aws/telemetry.ts';
import type { StateStore } from '#ports';

export interface GradeHandlerDeps extends Telemetry {
  store: StateStore;
  config: GradingConfig;
  now: () => number;
}

type Outcome = { result: GroupResult } | { failed: unknown };

/**
 * How long before the function's timeout a patient still being graded is failed (retried), so that the invocation
 * answers with the other patients' records done. An invocation that ran into its timeout failed every record of its
 * batch: the other patients' messages came back after the queue's visibility timeout (90 s), their FIFO groups held
 * meanwhile, and were dead-lettered after 3 such times, because of one patient's throttling.
 */
export const GRADE_DEADLINE_MARGIN_MS = 3000;

/** Not graded in time: the patient's records are failed and delivered again (a grading still under way is harmless). */
export class NotGradedInTime extends Error {
  constructor() {
    super("not graded before the function's timeout");
    this.name = 'NotGradedInTime';
  }
}

const groupOf = (record: SQSRecord) => record.attributes.MessageGroupId ?? record.messageId;

export function createGradeHandler(deps: GradeHandlerDeps) {
  const { logger, metrics } = deps;

  const gradeGroup = async (patientId: string, records: SQSRecord[]): Promise<Outcome> => {
    const queued = readQueued(records.map((r) => r.body));
    for (const { messageId, fields } of laterReleaseFields(queued))
      logger.warn('queued message graded without the fields this release does not know (a later ingest queued it)', {
        patientId,
        messageId,
        fields,
      });
    try {
      // A write DynamoDB refuses for a reason of its own is made again one message at a time (gradeQueued), so that
      // the messages before the one it refuses are committed, not failed with it; an outage is thrown. A lone
      // message it refuses is the poison message too (it was counted a state write failure until 2026-12-05).
      const grade = (q: Queued) => gradePatient(deps.store, deps.config, patientId, q.messages, q.provenance);
      const result = await gradeQueued(queued, { together: () => grade(queued), alone: grade }, isOutage);
      const applied = result.steps.filter((s) => s.kind === 'applied').length;
      metrics.addMetric(METRIC.gradesComputed, MetricUnit.Count, applied);
      // Published only when there are some: CloudWatch bills a custom metric for each hour it receives data.
      const duplicates = result.steps.length - applied;
      if (duplicates > 0) metrics.addMetric(METRIC.duplicates, MetricUnit.Count, duplicates);
      const reused = reusedIds(result);
      if (reused.length > 0) {
        metrics.addMetric(METRIC.reusedMessageIds, MetricUnit.Count, reused.length);
        logger.warn('messageId reused with other content; graded as a new observation', {
          patientId,
          messageIds: reused.map((r) => r.messageId),
        });
      }
      // The site changed its grading configuration since this patient's last message (its audit trail and any page
      // say so too): ids only.
      for (const c of settingsChanges(result))
        logger.warn('graded under grading settings other than its last message (the configuration changed)', {
          patientId,
          ...c,
        });
      const now = deps.now();
      for (const r of records.slice(0, result.committed)) {
        const sent = Number(r.attributes.SentTimestamp);
        if (Number.isFinite(sent))
          metrics.addMetric(METRIC.processingLatency, MetricUnit.Milliseconds, Math.max(0, now - sent));
      }
      logger.info('graded', {
        patientId,
        messageIds: result.steps.map((s) => (s.kind === 'applied' ? s.assessment.messageId : s.messageId)),
        duplicates: result.steps.length - applied,
        notificationIds: result.notifications.map((n) => n.notificationId),
      });
      if (result.error && isOutage(result.error)) {
        // An outage after the messages before it were written alone: retried as any state write failure.
        metrics.addMetric(METRIC.stateWriteFailures, MetricUnit.Count, 1);
        logger.error("patient state not saved; the patient's messages are retried", {
          patientId,
          sqsMessageId: records[result.committed]?.messageId,
          error: errorName(result.error),
        });
      } else if (result.error) {
        metrics.addMetric(METRIC.poisonMessages, MetricUnit.Count, 1);
        logger.error("message cannot be applied; it and the patient's later messages are retried, then dead-lettered", {
          patientId,
          sqsMessageId: records[result.committed]?.messageId,
          error: errorName(result.error),
        });
      }
      return { result };
    } catch (err) {
      metrics.addMetric(METRIC.stateWriteFailures, MetricUnit.Count, 1);
      logger.error("patient state not saved; the patient's messages are retried", { patientId, error: errorName(err) });
      return { failed: err };
    }
  };

  return async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    if (context) logger.addContext(context);
    let timer: NodeJS.Timeout | undefined;
    try {
      const groups = new Map<string, SQSRecord[]>();
      for (const record of event.Records) {
        const group = groups.get(groupOf(record));
        if (group) group.push(record);
        else groups.set(groupOf(record), [record]);
      }
      const position = new Map<string, number>();
      for (const records of groups.values()) records.forEach((r, i) => position.set(r.messageId, i));
      // Every patient is graded concurrently; each record then waits for its own patient's outcome, or the deadline.
      const remaining = context?.getRemainingTimeInMillis();
      const budget =
        remaining === undefined ? undefined : Math.max(remaining - GRADE_DEADLINE_MARGIN_MS, remaining / 2);
      const deadline = new Promise<'deadline'>((resolve) => {
        if (budget !== undefined) timer = setTimeout(() => resolve('deadline'), budget);
      });
      const outcomes = new Map<string, Promise<Outcome>>();
      for (const [patientId, records] of groups) {
        const graded = gradeGroup(patientId, records);
        outcomes.set(
          patientId,
          Promise.race([graded, deadline]).then((o): Outcome => {
            if (o !== 'deadline') return o;
            // The state is written with a version condition: if this grading commits after all, the records
            // delivered again are duplicates.
            metrics.addMetric(METRIC.stateWriteFailures, MetricUnit.Count, 1);
            logger.error("patient not graded before the function's timeout; the patient's messages are retried", {
              patientId,
            });
            return { failed: new NotGradedInTime() };
          }),
        );
      }

      const settle = async (record: SQSRecord): Promise<void> => {
        const outcome = await outcomes.get(groupOf(record))!;
        if ('failed' in outcome) throw outcome.failed;
        const { result } = outcome;
        if (position.get(record.messageId)! < result.committed) return;
        throw result.error ?? new Error('message was not applied');
      };
      const processor = new SqsFifoPartialProcessorAsync();
      return await processPartialResponse(event, settle, processor, {
        skipGroupOnError: true,
        ...(context ? { context } : {}),
      });
    } catch (err) {
      throw thrownToRuntime(err);
    } finally {
      clearTimeout(timer);
      flushMetrics(metrics);
    }
  };
}

/** `now`: Date.now in Lambda; the host's clock when `crs serve --backend aws` runs the function. */
export function liveDeps(now: () => number = Date.now): GradeHandlerDeps {
  return {
    config: gradingConfigFromEnv(),
    // The audit entries of the assessments go to the audit table in the same transaction as the state.
    // and the long tail of seen messages to theirs.
    store: new DynamoStateStore(
      new DynamoDBClient({}),
      requireEnv(ENV.stateTable),
      now,
      requireEnv(ENV.auditTable),
      requireEnv(ENV.seenTable),
    ),
    now,
    ...telemetry('grade'),
  };
}

export const handler = createGradeHandler(liveDeps());
