// Escalate Lambda: lets the pager's clock tick. Woken two ways:
// - by an escalation timer (a delayed message on the escalation queue, set when a page is stored with a due time):
//   a timer not yet due (SQS delays at most 15 minutes) is put back with the remaining delay; otherwise the pager
//   pages the next level of every ladder nobody acknowledged in time, releases pages whose silence ended, and
//   finishes sends a crash cut short; a page whose team has no ladder in the paging config (a rollback) is set
//   aside and logged by id, and every other page goes on (the schedule's run then fails: EscalateErrors);
// - every minute by the schedule: the same tick (the safety net for a lost timer), then the stale-feed sweep, which
//   runs whatever became of the tick (each failure is logged as its own and fails the invocation).
// Ticks may overlap (a timer and the schedule): every step of a ladder is a conditional write, so only one of
// them pages it.
// SNS down (SendDeferred: the page is stored unsent) is a state, not a failure of the run: the sends wait for the
// next tick, the sweep still runs, the run is counted, and SendsDeferred (alarmed) tells the operators.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { SendDeferred, setAsideText, tickAside, type Pager, type SetAside } from '#app/pager.ts';
import type { PagingConfig } from '#domain/paging.ts';
import { ENV, requireEnv } from '#adapters/aws/env.ts';
import { awsPagingFromEnv } from '#adapters/aws/paging.ts';
import { readRestore } from '#adapters/aws/restore.ts';
import { SqsTimer, parseTimerMessage } from '#adapters/aws/sqs-timer.ts';
import { sweepStaleFeeds, type SweepDeps } from '#adapters/aws/stale-feed-sweep.ts';
import {
  METRIC,
  errorName,
  pagingMetrics,
  telemetry,
  thrownToRuntime,
  type Telemetry,
  flushMetrics,
} from '#adapters/aws/telemetry.ts';
import { coldStart } from '#adapters/aws/cold-start.ts';

/** EventBridge's scheduled event (only what is used). */
export interface ScheduledEvent {
  source: string;
  'detail-type': string;
  time?: string;
}

export interface EscalatePaging {
  pager: Pick<Pager, 'onTick' | 'onAlert'>;
  sweep: Omit<SweepDeps, 'pager' | 'config'>;
  config: PagingConfig;
}

export interface EscalateHandlerDeps extends Telemetry {
  paging: () => Promise<EscalatePaging>;
  timer: Pick<SqsTimer, 'wake'>;
  now: () => number;
}

/** A step of the schedule's run failed (its first failure, as `cause`), logged where it failed. */
class ScheduleFailed extends Error {}

/**
 * The schedule's tick set these pages aside (their team has no ladder in the paging config: a rollback; or their
 * stored item cannot be read: not JSON, a field missing, an older shape, an item edited by hand); every other page
 * went on. It fails the invocation (EscalateErrors) but counts the run (the ladders
 * ran: NoEscalateRun stays quiet).
 */
class PagesSetAside extends Error {
  constructor(readonly pages: SetAside[]) {
    super(`${pages.length} page(s) set aside: the pager cannot step or send them (${setAsideText(pages)})`);
    this.name = 'PagesSetAside';
  }
}

/**
 * The sweep found records of the alerts in force it cannot read (an older shape, an item edited by hand), named by key
 * with why; it swept their patients as if nothing were in force, and every other patient as ever. It fails the
 * invocation (EscalateErrors) but counts the run, as pages set aside do.
 */
class StaleFeedRecordsUnreadable extends Error {
  constructor(readonly records: { key: string; reason: string }[]) {
    super(`${records.length} stale-feed record(s) in force cannot be read (${records.map((r) => r.key).join(', ')})`);
    this.name = 'StaleFeedRecordsUnreadable';
  }
}

/** A timer this close to its time runs now rather than hopping again. */
const EARLY_MS = 1000;

const isScheduled = (e: unknown): e is ScheduledEvent => (e as ScheduledEvent)?.['detail-type'] === 'Scheduled Event';

export function createEscalateHandler(deps: EscalateHandlerDeps) {
  const { logger, metrics } = deps;

  /** SNS down only defers sends (stored, sent by a later tick): counted and said, not thrown. */
  const snsDown = (what: string, err: SendDeferred) => {
    metrics.addMetric(METRIC.sendsDeferred, MetricUnit.Count, 1);
    logger.warn(`${what}: SNS down, pages stored; a later tick sends them`, { error: errorName(err.cause) });
  };
  const unlessSnsDown = async <T>(what: string, step: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof SendDeferred)) throw err;
      snsDown(what, err);
      return undefined;
    }
  };

  /**
   * `notBefore`: the time a timer stands for, when it came a moment early by this function's clock. Returns the pages
   * the tick set aside (their team has no ladder in the paging config, or their item cannot be read), logged by id:
   * every other page went on.
   */
  const tick = async (why: string, notBefore = 0): Promise<SetAside[]> => {
    const { pager } = await deps.paging();
    const now = Math.max(deps.now(), notBefore);
    const r = await unlessSnsDown('tick', () => pager.onTick(now));
    logger.debug('ticked', { why, at: new Date(now).toISOString() });
    const setAside = r ? tickAside(r) : [];
    if (setAside.length > 0)
      logger.error('escalation tick: pages set aside, the pager cannot step or send them', {
        pages: setAside.map((p) => p.pageId),
        reasons: setAside.map((p) => `${p.pageId}: ${p.reason}`),
      });
    return setAside;
  };

  const sweep = async () => {
    const { pager, sweep, config } = await deps.paging();
    // SNS down does not cut the sweep short: the alerts' pages are stored (and kept in force), a later tick sends them.
    const r = await sweepStaleFeeds({ ...sweep, pager, config }, deps.now());
    if (r.deferred) snsDown('stale-feed sweep', r.deferred);
    // Every minute, also when it is 0: with GradesComputed it tells "no ingest while patients are enrolled".
    metrics.addMetric(METRIC.enrolledPatients, MetricUnit.Count, r.patients);
    if (r.raised.length > 0) metrics.addMetric(METRIC.staleFeedAlerts, MetricUnit.Count, r.raised.length);
    if (r.raised.length + r.cleared.length > 0)
      logger.info('stale feeds', { raised: r.raised, cleared: r.cleared, patients: r.patients });
    // The others were paged; these alerts wait (what is in force for them stays) until a sweep pages them.
    if (r.alertsFailed)
      logger.error('stale-feed sweep: alerts not paged', {
        alerts: r.alertsFailed.alertIds,
        error: errorName(r.alertsFailed.cause),
      });
    // Swept as if nothing were in force for them (a quiet patient's record is written whole again); named until mended.
    if (r.unreadable)
      logger.error('stale-feed sweep: records in force unreadable', {
        records: r.unreadable.map((u) => u.key),
        reasons: r.unreadable.map((u) => `${u.key}: ${u.reason}`),
      });
    // The others were swept; these patients' alerts wait until their state reads again: a failure of the run.
    if (r.incomplete) {
      logger.error('stale-feed sweep: state unreadable', {
        patients: r.incomplete.patientIds,
        error: errorName(r.incomplete.cause),
      });
      throw r.incomplete;
    }
    if (r.alertsFailed) throw r.alertsFailed;
    if (r.unreadable) throw new StaleFeedRecordsUnreadable(r.unreadable);
  };

  const onTimers = async (event: SQSEvent): Promise<SQSBatchResponse & { ok: boolean }> => {
    const now = deps.now();
    const failures: { itemIdentifier: string }[] = [];
    // The latest time the due timers stand for: one a moment early ticks as at its time, or it would find its
    // level not yet due and leave it to the schedule's minute.
    let due: number | undefined;
    const dueRecords: string[] = [];
    for (const record of event.Records) {
      const timer = parseTimerMessage(record.body);
      if (timer && timer.wakeAt > now + EARLY_MS) {
        try {
          await deps.timer.wake(timer.wakeAt);
        } catch (err) {
          logger.warn('timer not put back; SQS will deliver it again', { error: errorName(err) });
          failures.push({ itemIdentifier: record.messageId });
        }
      } else {
        due = Math.max(due ?? now, timer?.wakeAt ?? now); // due, or unreadable: a tick is always safe
        dueRecords.push(record.messageId);
      }
    }
    if (due === undefined) return { batchItemFailures: failures, ok: true };
    // A failed tick fails the due timers only: they come back (and after 3 tries go to the escalation DLQ). A timer
    // put back already is done: failing it too would bring it back beside its copy (until 2026-12-05 the whole batch
    // failed: timers doubled at every failed tick, and healthy ones reached the DLQ, raising EscalationDlqDepth).
    try {
      await tick('timer', due);
      return { batchItemFailures: failures, ok: true };
    } catch (err) {
      logger.error('escalation tick failed', { error: errorName(err) });
      return { batchItemFailures: [...failures, ...dueRecords.map((id) => ({ itemIdentifier: id }))], ok: false };
    }
  };

  /**
   * The schedule's tick and sweep, each whatever became of the other: a tick that fails (one page's bad data, a
   * table throttled) leaves the "no data" alerts to the sweep, and a failing sweep leaves the ladders to the tick.
   * Each failure is logged as its own; either fails the invocation (EscalateErrors) and is no run (NoEscalateRun).
   * Until 2026-12-05 a tick that failed at every run stopped every patient's "no data" alert and its all-clear, and
   * the patients enrolled went uncounted (NoIngestWhileEnrolled read them as none).
   */
  const onSchedule = async (): Promise<unknown[]> => {
    const failures: unknown[] = [];
    for (const [what, step] of [
      [
        'escalation tick',
        async () => {
          const setAside = await tick('schedule');
          if (setAside.length > 0) throw new PagesSetAside(setAside);
        },
      ],
      ['stale-feed sweep', sweep],
    ] as const) {
      try {
        await step();
      } catch (err) {
        logger.error(`${what} failed`, { error: errorName(err) });
        failures.push(err);
      }
    }
    if (failures.every((f) => f instanceof PagesSetAside || f instanceof StaleFeedRecordsUnreadable))
      metrics.addMetric(METRIC.escalateRuns, MetricUnit.Count, 1);
    return failures;
  };

  return async (event: SQSEvent | ScheduledEvent, context?: Context): Promise<SQSBatchResponse | void> => {
    if (context) logger.addContext(context);
    try {
      if (isScheduled(event)) {
        const [failed] = await onSchedule();
        if (failed !== undefined) throw new ScheduleFailed('the scheduled run failed', { cause: failed });
        return;
      }
      const { ok, ...r } = await onTimers(event);
      // A failed tick is not a run (NoEscalateRun); the schedule's own tick fails its invocation (EscalateErrors).
      if (ok) metrics.addMetric(METRIC.escalateRuns, MetricUnit.Count, 1);
      return r;
    } catch (err) {
      if (err instanceof ScheduleFailed) throw thrownToRuntime(err.cause); // logged already, step by step
      logger.error('escalation tick failed', { error: errorName(err) });
      throw thrownToRuntime(err);
    } finally {
      flushMetrics(metrics);
    }
  };
}

/** `now`: Date.now in Lambda; the host's clock when `crs serve --backend aws` runs the function. */
export function liveDeps(now: () => number = Date.now): EscalateHandlerDeps {
  const t = telemetry('escalate');
  const sqs = new SQSClient({});
  const clients = {
    dynamodb: new DynamoDBClient({}),
    sns: new SNSClient({}),
    sqs,
    secrets: new SecretsManagerClient({}),
  };
  return {
    paging: coldStart(() =>
      awsPagingFromEnv(process.env, clients, pagingMetrics(t), now).then(
        ({ pager, pages, states, config }): EscalatePaging => {
          if (!states) throw new Error(`${ENV.stateTable} is not set`);
          const stateTable = requireEnv(ENV.stateTable);
          const restoredAt = async () => (await readRestore(clients.dynamodb, stateTable))?.restoredAt;
          return { pager, sweep: { pages, states, timeZone: config.site.timeZone, restoredAt }, config: config.paging };
        },
      ),
    ),
    timer: new SqsTimer(sqs, requireEnv(ENV.escalationQueueUrl), now),
    now,
    ...t,
  };
}

export const handler = createEscalateHandler(liveDeps());
