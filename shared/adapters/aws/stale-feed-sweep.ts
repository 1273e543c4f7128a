// The stale-feed sweep on AWS, run by the escalate function every minute: every enrolled patient whose monitor
// has sent nothing for staleFeedMinutes gets the "no data" alert, and loses it when data resumes or the patient's
// monitoring ends (a patient whose monitoring ended leaves the index: feedStatus is undefined). The state
// table's `byFeed` index nominates (it is eventually consistent); a consistent read of the patient decides. The
// alerts in force are kept in the pages table, so that each is raised once and cleared once; the alert ids come
// from the patient and the time the feed went quiet, so a sweep repeated after a crash pages nobody twice. Many
// quiet at once page once per ward (planStaleFeeds, the rule the embedded sweep follows too); the ward's alert is
// kept there as well, under its id, with each of its patients pointing at it, and who of them had data again (its
// `resumed`, named by its all-clear: 2026-12-07). What is in force is stored for every
// alert the pager stored the pages of, also when SNS refused to send them (the tick sends them later) or another
// alert of the sweep failed: an alert raised but not kept in force would never be cleared, and its ladder would
// climb on after the data resumed. One alert the pager fails on (its own bad data) is set aside, named by id, and
// the sweep goes on (pageStaleFeeds).
import type { Pager, SendDeferred } from '#app/pager.ts';
import { pageStaleFeeds, planStaleFeeds, type FeedCheck } from '#app/stale-feed.ts';
import { feedStatus, type PagingConfig } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { MINUTE } from '#domain/time.ts';
import type { DynamoPageStore, UnreadableRecord } from './dynamo-page-store.ts';
import { FEED_INDEX_STEP_MS, type DynamoStateStore } from './dynamo-state-store.ts';
import { isOutage } from './outage.ts';

export interface SweepDeps {
  states: Pick<DynamoStateStore, 'feeds' | 'load'>;
  pages: Pick<DynamoPageStore, 'staleFeedAlerts' | 'setStaleFeedAlert' | 'clearStaleFeedAlert'>;
  pager: Pick<Pager, 'onAlert'>;
  config: PagingConfig;
  /** The site's zone (config.site.timeZone), for the times in the alerts' summaries. */
  timeZone: string;
  /**
   * When `crs restore --backend aws` last ran (the state table's `#restore` record, readRestore; undefined: never).
   * Read once a sweep, and only by a sweep that raises or clears an alert: those alerts carry it (AlertInput.restoredAt),
   * their ids being made of when the feed went quiet, which the gateways' resend gives again after a restore.
   * Absent: the deployment is taken as never restored (tests).
   */
  restoredAt?: () => Promise<number | undefined>;
}

export interface SweepResult {
  patients: number;
  /** The alerts raised and cleared: patient ids, or "ward W" for a ward's alert. */
  raised: string[];
  cleared: string[];
  /** Set when SNS refused to send some of their pages: stored, the escalate tick sends them (SendDeferred). */
  deferred?: SendDeferred;
  /** Set when some patients' state could not be read: the others were swept (the caller reports it as a failure). */
  incomplete?: SweepIncomplete;
  /** Set when the pager failed on some alerts for a reason of their own: the others were paged (a failure too). */
  alertsFailed?: AlertsFailed;
  /**
   * The records in force that could not be read (their key: a patient, or a ward alert's id; and why): swept as if
   * nothing were in force for them, the others as ever. A quiet patient's is written whole again by this sweep (its
   * alert raised under the id it had: the pager opens nothing new for an id it has), and the next sweep names it no
   * more; any other stays, named at every sweep, until it is mended or deleted.
   */
  unreadable?: UnreadableRecord[];
}

/**
 * The pager failed on these alerts (or all-clears) for a reason of their own (a page item that does not decode): the
 * others were paged, and what is in force for these stays as it was until a sweep pages them.
 */
class AlertsFailed extends Error {
  constructor(
    readonly alertIds: string[],
    cause: unknown,
  ) {
    super(`${alertIds.length} stale-feed alert(s) could not be paged; the others were`, { cause });
    this.name = 'AlertsFailed';
  }
}

/**
 * Some patients' state could not be read for a reason of their own (an item that does not decode): the others were
 * swept, and these keep what was in force for them.
 */
class SweepIncomplete extends Error {
  constructor(
    readonly patientIds: string[],
    cause: unknown,
  ) {
    super(`the state of ${patientIds.length} patient(s) could not be read; the others were swept`, { cause });
    this.name = 'SweepIncomplete';
  }
}

export async function sweepStaleFeeds(d: SweepDeps, now: number): Promise<SweepResult> {
  const staleMs = d.config.staleFeedMinutes * MINUTE;
  // A record in force that cannot be read is left out, named: its patient is swept as if nothing were in force.
  const { alerts: active, unreadable: unreadableInForce } = await d.pages.staleFeedAlerts();
  const checks: FeedCheck[] = [];
  // One patient's state that cannot be read (an item that does not decode) must not stop every other patient's
  // alerts: that patient is left out (what is in force for it stays), the others are swept, and the sweep reports
  // it at the end. An outage (DynamoDB throttled or down) stops the sweep, as every read would fail alike.
  const unreadable: { patientId: string; error: unknown }[] = [];
  const check = async (patientId: string) => {
    let state: PatientState | undefined;
    try {
      state = (await d.states.load(patientId))?.state;
    } catch (error) {
      if (isOutage(error)) throw error;
      unreadable.push({ patientId, error });
      return;
    }
    checks.push({ patientId, state, feed: state ? feedStatus(state, now, d.config) : undefined });
  };
  let patients = 0;
  const indexed = new Set<string>();
  for await (const { patientId, since } of d.states.feeds()) {
    patients++;
    indexed.add(patientId);
    const inForce = active.get(patientId);
    const looksStale = now - since >= staleMs;
    // The index lags the feed by less than a step, and a late reading moves the feed by less than the index's gap:
    // an alert whose index value has not moved is known to hold only once the feed is stale even a step later.
    const surelyStale = now - since >= staleMs + FEED_INDEX_STEP_MS;
    if (looksStale ? inForce?.since === since && surelyStale : inForce === undefined) continue; // nothing changed
    await check(patientId);
  }
  // A patient with an alert in force who has left the index: the monitoring ended (a discharge) or the state went.
  for (const [key, e] of active) {
    if (key === e.alertId || indexed.has(key)) continue; // a ward's alert, or looked at above
    await check(key);
  }
  // Every feed was looked at (or known unchanged): a ward alert left with nobody quiet is answered.
  const plan = planStaleFeeds(active, checks, d.config, now, true, d.timeZone);
  // Each alert's pages are stored before they are sent: SNS refusing the send (SendDeferred) leaves them stored. One
  // alert failing for a reason of its own (a page item that does not decode) is set aside, and the others go on; an
  // outage stops the sweep, as every alert would fail alike. What the alerts not handled would have changed waits for
  // the next sweep, which plans them again.
  // Marked with the last restore: unmarked, a restored deployment pages a quiet spell the lost one paged too under
  // the same sendIds, and a receiver dropping repeats by them drops a real alert (until 2026-12-07).
  let restore: Promise<number | undefined> | undefined;
  const paged = await pageStaleFeeds(
    plan,
    active,
    async (alert) => {
      const restoredAt = await (restore ??= d.restoredAt?.() ?? Promise.resolve(undefined));
      await d.pager.onAlert(restoredAt === undefined ? alert : { ...alert, restoredAt }, now);
    },
    isOutage,
  );
  for (const key of paged.remove) await d.pages.clearStaleFeedAlert(key);
  for (const [key, e] of paged.set) await d.pages.setStaleFeedAlert(key, e.alertId, e.since, e.resumed, e.said);
  if (paged.stopped !== undefined) throw paged.stopped;
  const failed = new Set(paged.failed.map((f) => f.alertId));
  const handled = plan.alerts.filter((a) => !failed.has(a.alertId));
  return {
    ...(unreadableInForce.length > 0 ? { unreadable: unreadableInForce } : {}),
    ...(unreadable.length > 0
      ? {
          incomplete: new SweepIncomplete(
            unreadable.map((u) => u.patientId),
            unreadable[0]!.error,
          ),
        }
      : {}),
    ...(paged.failed.length > 0
      ? {
          alertsFailed: new AlertsFailed(
            paged.failed.map((f) => f.alertId),
            paged.failed[0]!.error,
          ),
        }
      : {}),
    patients,
    raised: handled.filter((a) => !a.cleared).map((a) => a.patientId),
    cleared: handled.filter((a) => a.cleared).map((a) => a.patientId),
    ...(paged.deferred ? { deferred: paged.deferred } : {}),
  };
}
