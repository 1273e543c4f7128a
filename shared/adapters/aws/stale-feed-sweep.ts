// The stale-feed sweep on AWS, run by the escalate function every minute: every enrolled patient whose monitor
// has sent nothing for staleFeedMinutes gets the "no data" alert, and loses it when data resumes. The state
// table's `byFeed` index nominates (it is eventually consistent); a consistent read of the patient decides. The
// alerts in force are kept in the pages table, so that each is raised once and cleared once; the alert ids come
// from the patient and the time the feed went quiet, so a sweep repeated after a crash pages nobody twice.
import type { Pager } from '../../app/pager.ts';
import { staleFeedAlert, staleFeedCleared } from '../../app/stale-feed.ts';
import { feedStatus, type PagingConfig } from '../../domain/paging.ts';
import { MINUTE } from '../../domain/time.ts';
import type { DynamoPageStore } from './dynamo-page-store.ts';
import type { DynamoStateStore } from './dynamo-state-store.ts';

export interface SweepDeps {
  states: Pick<DynamoStateStore, 'feeds' | 'load'>;
  pages: Pick<DynamoPageStore, 'staleFeedAlerts' | 'setStaleFeedAlert' | 'clearStaleFeedAlert'>;
  pager: Pick<Pager, 'onAlert'>;
  config: PagingConfig;
  /** The site's zone (config.site.timeZone), for the times in the alerts' summaries. */
  timeZone: string;
}

export interface SweepResult {
  patients: number;
  raised: string[];
  cleared: string[];
}

export async function sweepStaleFeeds(d: SweepDeps, now: number): Promise<SweepResult> {
  const staleMs = d.config.staleFeedMinutes * MINUTE;
  const active = await d.pages.staleFeedAlerts();
  const result: SweepResult = { patients: 0, raised: [], cleared: [] };
  for await (const { patientId, since } of d.states.feeds()) {
    result.patients++;
    const inForce = active.get(patientId);
    const looksStale = now - since >= staleMs;
    if (looksStale ? inForce?.since === since : inForce === undefined) continue; // nothing changed
    const state = (await d.states.load(patientId))?.state;
    const f = state ? feedStatus(state, now, d.config) : undefined;
    if (inForce && (!f?.stale || f.since !== inForce.since)) {
      // Data resumed (and, if it is quiet again, that is a new alert below).
      await d.pager.onAlert(staleFeedCleared(inForce.alertId, patientId, f?.since ?? since, state, d.timeZone), now);
      await d.pages.clearStaleFeedAlert(patientId);
      result.cleared.push(patientId);
    }
    if (f?.stale && f.since !== inForce?.since) {
      const alert = staleFeedAlert(patientId, f.since, state, d.timeZone);
      await d.pager.onAlert(alert, now);
      await d.pages.setStaleFeedAlert(patientId, alert.alertId, f.since);
      result.raised.push(patientId);
    }
  }
  return result;
}
