// The notifier's delivery of outbox records (grade changes and alerts from the state table's stream) to the pager,
// for the notify function and for `crs outbox retry --backend aws`, which pages again what was parked or what the
// stream gave up on. A record ends one of four ways:
// - paged: its pages are stored and sent;
// - deferred: its pages are stored, and sending them failed because SNS is down. The record is done: the escalate
//   function's tick sends every page left unsent, oldest first, and the patient's next record sends them before
//   its own (shared/app/pager.ts). Retrying the record would only wait for SNS in the stream, and send records to
//   the on-failure queue once the stream gives up;
// - parked: the record is bad in itself (it cannot be read, or paging it fails for a reason that is not an
//   outage): set aside in the pages table with its reason (RecordsParked, alarmed; `crs outbox list|retry`), and
//   done, so that the records behind it go on;
// - failed: something it needs is down (DynamoDB, Secrets Manager, the network) before its pages were stored. The
//   stream retries it in order: once a record of an invocation fails, the records after it fail too without
//   reaching the pager, so that a later grade change of the patient cannot overtake it.
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SendDeferred, type Pager } from '#app/pager.ts';
import type { Notification } from '#domain/page.ts';
import { iso } from '#domain/time.ts';
import { outboxRecord } from './dynamo-state-store.ts';
import { isOutage } from './outage.ts';
import type { ParkedRecord } from './dynamo-page-store.ts';
import { STATE_TABLE } from './table-layout.ts';
import { errorName } from './telemetry.ts';

export interface NotifyPaging {
  pager: Pick<Pager, 'onNotification' | 'onAlert'>;
  /** Told each grade change before it is paged, so the page's content need not be read back. */
  remember?: (n: Notification) => void;
  /** Where a record bad in itself is parked. */
  parkedRecords: { park(r: ParkedRecord): Promise<void> };
}

export type Outcome = 'paged' | 'deferred' | 'parked' | 'ignored';

export interface OutboxDeliveryDeps {
  paging: () => Promise<NotifyPaging>;
  now: () => number;
  /** Ids only: never a summary, a value or an error message (they can echo values). */
  log: (level: 'info' | 'warn' | 'error', message: string, ids: Record<string, unknown>) => void;
  /** A record paged, deferred or parked (the notify function's metrics). */
  count?: (outcome: Outcome) => void;
  /**
   * `crs outbox retry`: the last restore (readRestore; undefined: none), which the pages of the records it pages carry
   * (a record parked or given up on before a restore may have been paged by the lost deployment since, under the same
   * ids). The notifier reads none: its records' ids come from the moved-on sequence, and a record the restore wrote
   * again because it was never paged by the restored instant carries the restore's moment itself (restore-unpaged.ts;
   * the lost deployment may have paged it after that instant, under the same ids).
   */
  restoredAt?: () => Promise<number | undefined>;
}

/** The stream image of an outbox item (DynamoDB JSON). */
export type OutboxImage = Record<string, AttributeValue>;

/** The restore's moment an outbox record written again by `crs restore` carries (undefined: none). */
function restoredAtOf(image: OutboxImage | undefined): number | undefined {
  const at = Number(image?.[STATE_TABLE.restoredAtAttribute]?.N);
  return Number.isSafeInteger(at) ? at : undefined;
}

/** Delivers the records of one invocation (or one re-drive) in order. */
export class OutboxDelivery {
  /** Set by the first record that fails: the records after it fail too, and are retried in stream order. */
  private held = false;

  constructor(private readonly deps: OutboxDeliveryDeps) {}

  /** Throws when the record must be retried (an outage); otherwise says how it ended. */
  async deliver(image: OutboxImage | undefined): Promise<Outcome> {
    if (this.held) throw new Error('an earlier record of this batch failed: retried in stream order');
    const { log } = this.deps;
    let ids: Record<string, unknown> = {
      patientId: image?.[STATE_TABLE.partitionKey]?.S,
      outbox: image?.[STATE_TABLE.sortKey]?.S,
    };
    let paging: NotifyPaging;
    try {
      paging = await this.deps.paging(); // a cold start that cannot read the secret is an outage, never the record's
    } catch (err) {
      return this.fail(err, ids);
    }
    try {
      const r = outboxRecord(image as Parameters<typeof outboxRecord>[0]);
      if (!r) return 'ignored'; // not an outbox insert: the stream filter should have dropped it
      ids =
        r.record === 'notification'
          ? {
              notificationId: r.notification.notificationId,
              patientId: r.notification.patientId,
              condition: r.notification.condition,
              toGrade: r.notification.toGrade,
            }
          : {
              alertId: r.alert.alertId,
              patientId: r.alert.patientId,
              subject: r.alert.subject,
              cleared: r.alert.cleared,
            };
      const restoredAt = (await this.deps.restoredAt?.()) ?? restoredAtOf(image);
      const marked = restoredAt === undefined ? {} : { restoredAt };
      if (r.record === 'notification') {
        paging.remember?.(r.notification);
        await paging.pager.onNotification({ ...r.notification, ...marked }, this.deps.now());
      } else {
        const { alertId, patientId, subject, cleared, summary } = r.alert;
        await paging.pager.onAlert({ alertId, patientId, subject, cleared, summary, ...marked }, this.deps.now());
      }
      log('info', 'paged', ids);
      return this.done('paged');
    } catch (err) {
      if (err instanceof SendDeferred) {
        log('warn', 'pages stored, SNS down: the escalate tick sends them', {
          ...ids,
          error: errorName((err as Error).cause),
        });
        return this.done('deferred');
      }
      if (isOutage(err)) return this.fail(err, ids);
      await this.park(paging, image, ids, err);
      return this.done('parked');
    }
  }

  private done(outcome: Outcome): Outcome {
    this.deps.count?.(outcome);
    return outcome;
  }

  private fail(err: unknown, ids: Record<string, unknown>): never {
    this.held = true;
    this.deps.log('error', 'not paged; will retry', { ...ids, error: errorName(err) });
    throw err;
  }

  private async park(
    paging: NotifyPaging,
    image: OutboxImage | undefined,
    ids: Record<string, unknown>,
    err: unknown,
  ): Promise<void> {
    const patientId = image?.[STATE_TABLE.partitionKey]?.S ?? '';
    const record: ParkedRecord = {
      key: `${patientId}#${image?.[STATE_TABLE.sortKey]?.S ?? ''}`,
      patientId,
      id: String(ids.notificationId ?? ids.alertId ?? ''),
      reason: `paging it failed (${errorName(err)})`,
      parkedAt: iso(this.deps.now()),
      image: JSON.stringify(image ?? null),
    };
    try {
      await paging.parkedRecords.park(record);
    } catch (parkErr) {
      this.fail(parkErr, ids); // could not even park it: retried like an outage
    }
    this.deps.log(
      'error',
      'outbox record PARKED: it cannot be paged; the records behind it go on (crs outbox list|retry --backend aws)',
      {
        ...ids,
        key: record.key,
        reason: record.reason,
      },
    );
  }
}
