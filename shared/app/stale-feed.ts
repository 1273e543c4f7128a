// The stale-feed alert and its all-clear, as every backend raises them: "no data: the grade cannot be trusted"
// for an enrolled patient whose monitor went quiet, cleared when data resumes. The alert's id comes from the
// patient and the time the feed went quiet, so raising it again (a repeated sweep) opens nothing new.
//
// Many feeds quiet at once (a ward's network or gateway down) page once per ward (issue 16 item 3): planStaleFeeds
// is the one rule both backends' sweeps follow; each backend only finds the feeds and stores what is in force.
import { byId } from '#domain/ids.ts';
import { monitoringEnded, type AlertInput, type PagingConfig } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { MINUTE, formatSiteTime } from '#domain/time.ts';
import { SendDeferred } from './pager.ts';

const bedOf = (state: PatientState | undefined) => (state?.enrolment.bed ? `, bed ${state.enrolment.bed.v}` : '');

const staleFeedAlertId = (patientId: string, since: number) => `stale-feed|${patientId}|${since}`;

/**
 * A ward's alert pages as this "patient" (pages, their audit and the board's lists are keyed by patient): never a
 * patient id, whose characters exclude the space.
 */
const wardSubject = (ward: string) => `ward ${ward}`;
/**
 * The ward a ward alert's "patient" stands for (`ward H4`: H4), else undefined (a patient id has no space). Its pages
 * reach the ward's endpoints by it: the ward has no state item to read it from.
 */
export const wardOfSubject = (patientId: string) =>
  patientId.startsWith('ward ') ? patientId.slice('ward '.length) : undefined;
const WARD_ALERT = 'stale-feed|ward ';
export const isWardAlert = (alertId: string) => alertId.startsWith(WARD_ALERT);
const wardOfAlert = (alertId: string) => alertId.slice(WARD_ALERT.length, alertId.lastIndexOf('|'));
const sinceOfAlert = (alertId: string) => Number(alertId.slice(alertId.lastIndexOf('|') + 1));

/**
 * What a quiet feed has been quiet since (`since`, feedStatus's): the last monitor data, or, when no monitor data
 * came in this watch, its start: the enrolment, or the re-admission after an end. Until 2026-12-07 both read "nothing
 * from the monitor since", and a monitor that never sent seemed to have stopped at the enrolment time.
 */
function quietSince(state: PatientState | undefined, since: number, timeZone: string): string {
  const at = formatSiteTime(since, timeZone);
  if (!neverSent(state, since)) return `nothing from the monitor since ${at}`;
  return `no monitor data since ${isReadmission(state, since) ? 're-admission' : 'enrolment'} at ${at}`;
}

/** A feed watched from `since` is watched again after an end (a re-admission), not from the enrolment. */
const isReadmission = (state: PatientState, since: number) =>
  state.monitoringEnd !== undefined && since >= state.monitoringEnd.t;

/** No monitor data came since the feed was watched from `since` (its enrolment or re-admission): it never sent. */
function neverSent(state: PatientState | undefined, since: number): state is PatientState {
  return state !== undefined && (state.lastMonitorAt ?? Number.NEGATIVE_INFINITY) < since;
}

/** `timeZone`: the site's (config.site.timeZone), for the time in the summary people read. */
export function staleFeedAlert(
  patientId: string,
  since: number,
  state: PatientState | undefined,
  timeZone: string,
): AlertInput {
  return {
    alertId: staleFeedAlertId(patientId, since),
    patientId,
    subject: 'stale-feed',
    cleared: false,
    summary: `NO DATA, patient ${patientId}${bedOf(state)}: ${quietSince(state, since, timeZone)}; the grade cannot be trusted`,
  };
}

/**
 * The all-clear of the alert `alertId`, now that the monitor has sent data again (last at `since`), that the
 * patient's monitoring has ended (a discharge: nobody is to go and look at the monitor), or that the patient was
 * re-admitted after an end (watched again from `since`, a new alert if the monitor stays quiet).
 */
function staleFeedCleared(
  alertId: string,
  patientId: string,
  since: number,
  state: PatientState | undefined,
  timeZone: string,
): AlertInput {
  const why = whyLeft(state, since);
  const who = `patient ${patientId}${bedOf(state)}`;
  return {
    alertId: `${alertId}|cleared`,
    patientId,
    subject: 'stale-feed',
    cleared: true,
    summary:
      why === 'resumed'
        ? `Data resumed, ${who}: monitor data since ${formatSiteTime(since, timeZone)}`
        : why === 'readmitted'
          ? `Re-admitted, ${who}: watched again from ${formatSiteTime(since, timeZone)}, with no monitor data yet; the no-data alert is closed`
          : `Monitoring ended, ${who}: ${why.v} at ${formatSiteTime(why.t, timeZone)}; the no-data alert is closed`,
  };
}

/**
 * Why a quiet feed is quiet no more (watched from `since`): its monitoring ended (a discharge: nobody is to go and
 * look at the monitor), the patient was re-admitted after an end (watched again, no monitor data came), or data resumed.
 */
function whyLeft(state: PatientState | undefined, since: number) {
  const end = state && monitoringEnded(state);
  if (end) return end;
  // Watched again after an end, no monitor data since (2026-12-07: it asked whether `since` was the latest enrolment,
  // a move after the re-admission's, and an all-clear after a re-admission and a move said "Data resumed").
  const readmitted = neverSent(state, since) && isReadmission(state, since);
  return readmitted ? ('readmitted' as const) : ('resumed' as const);
}

/**
 * What a ward's quiet monitors have been quiet since, in few characters (an SMS of three patients of short ids is one
 * part): "N patients' monitors quiet since T" when all of them sent and stopped (T the earliest); "N monitors quiet,
 * s since T, k since enrolment" when k never sent (T the earliest of the s that stopped, never an enrolment:
 * 2026-12-07, it read "quiet since 08:00, k never sent", 08:00 the enrolment of those that never sent, and the one
 * that sent had stopped later); "N patients' monitors never sent, enrolled from T" (the earliest) when none sent.
 * Those that never sent say since what, as the patient's alert does: their enrolment, their re-admission ("re-admitted
 * from"; until 2026-12-07 "enrolled from" was said of re-admissions too). Of both, "k never sent" ("never sent, watched
 * from T"), each since its own enrolment or re-admission: until later on 2026-12-07 "since enrolment or re-admission"
 * ("enrolled or re-admitted from"), 12-13 characters more than either alone, took a second SMS part where every other
 * wording took one, and a long ward's SMS, cut at two parts, lost patients from its list.
 */
function wardQuiet(quiet: readonly FeedCheck[], timeZone: string): string {
  const { never, stopped } = splitQuiet(quiet);
  const n = `${quiet.length} patients' monitors`;
  const earliest = (cs: readonly FeedCheck[]) => formatSiteTime(earliestOf(cs), timeZone);
  if (never.length === 0) return `${n} quiet since ${earliest(stopped)}`;
  const readmitted = never.filter((c) => isReadmission(c.state!, c.feed!.since)).length;
  // Of both (some enrolled, some re-admitted): "never sent" since each was watched, no longer than either alone.
  const mixed = readmitted > 0 && readmitted < never.length;
  if (stopped.length === 0) {
    const from = mixed ? 'watched' : readmitted > 0 ? 're-admitted' : 'enrolled';
    return `${n} never sent, ${from} from ${earliest(never)}`;
  }
  const start = mixed ? 'never sent' : `since ${readmitted > 0 ? 're-admission' : 'enrolment'}`;
  return `${quiet.length} monitors quiet, ${stopped.length} since ${earliest(stopped)}, ${never.length} ${start}`;
}

const earliestOf = (cs: readonly FeedCheck[]) => Math.min(...cs.map((c) => c.feed!.since));

/**
 * The time a ward's alert gives (wardQuiet): the earliest of the monitors that stopped, else (none sent) the earliest
 * enrolment or re-admission. Its id keeps the earliest of all, which is not in its text when one that never sent was
 * watched before the first that sent stopped: its all-clear names it by this one (2026-12-07).
 */
function wardQuietAt(quiet: readonly FeedCheck[]): number {
  const { stopped } = splitQuiet(quiet);
  return earliestOf(stopped.length > 0 ? stopped : quiet);
}

/** A ward's quiet monitors: those that never sent since they were watched, and those that sent and stopped. */
function splitQuiet(quiet: readonly FeedCheck[]) {
  const never = quiet.filter((c) => neverSent(c.state, c.feed!.since));
  return { never, stopped: quiet.filter((c) => !never.includes(c)) };
}

/** How many patients a ward page names (the board lists them all). */
const NAMED = 20;

function wardAlert(ward: string, since: number, quiet: FeedCheck[], timeZone: string): AlertInput {
  const named = quiet
    .slice(0, NAMED)
    .map((c) => `${c.patientId}${bedOf(c.state)}`)
    .join('; ');
  const more = quiet.length > NAMED ? `; and ${quiet.length - NAMED} more` : '';
  const what = wardQuiet(quiet, timeZone);
  return {
    alertId: staleFeedAlertId(wardSubject(ward), since),
    patientId: wardSubject(ward),
    subject: 'stale-feed',
    cleared: false,
    summary: `NO DATA, ward ${ward}: ${what} (${named}${more}); their grades cannot be trusted`,
  };
}

/**
 * Who of a ward alert's patients had data again while it was in force, and when (the board's `resumed` says the same):
 * "P1, bed 4 at 2026-12-01 09:20 CET; P2 at ...". Ids and beds only, never names.
 */
function resumedText(resumed: readonly Resumed[], timeZone: string): string {
  const who = resumed
    .map((r) => `${r.patientId}${r.bed ? `, bed ${r.bed}` : ''} at ${formatSiteTime(r.at, timeZone)}`)
    .join('; ');
  return resumed.length >= RESUMED_KEPT ? `the last ${RESUMED_KEPT} to resume: ${who}` : `resumed: ${who}`;
}

/**
 * `e`: the ward alert's own entry in force.
 * `ended`: some of its patients left it without data (a discharge, a re-admission with no monitor data since), not
 * because data resumed.
 * Those whose data came back (`resumed`, the newest RESUMED_KEPT) are named with when (2026-12-07).
 */
function wardCleared(e: InForce, timeZone: string, ended: boolean): AlertInput {
  const { alertId, resumed = [] } = e;
  const ward = wardOfAlert(alertId);
  // By the time the alert gave (an alert stored before 2026-12-07 has none: its id's, the time it gave then).
  const of = `the no-data alert of ${formatSiteTime(e.said ?? sinceOfAlert(alertId), timeZone)}`;
  const who = resumed.length > 0 ? ` (${resumedText(resumed, timeZone)})` : '';
  return {
    alertId: `${alertId}|cleared`,
    patientId: wardSubject(ward),
    subject: 'stale-feed',
    cleared: true,
    summary: ended
      ? `No-data alert closed, ward ${ward}: every patient of ${of} has monitor data again or has left monitoring${who}`
      : `Data resumed, ward ${ward}: every patient of ${of} has monitor data again${who}`,
    resolves: alertId,
  };
}

/** A patient whose feed a sweep looked at. */
export interface FeedCheck {
  patientId: string;
  state: PatientState | undefined;
  /** feedStatus of the state now (undefined: not enrolled, or no state). */
  feed: { stale: boolean; since: number } | undefined;
}

/**
 * What is in force, by key: a patient (its own alert, or the ward alert it belongs to: `alertId` says which), or a
 * ward alert's id (the alert itself). `since`: when the patient's feed went quiet (a ward alert: its earliest).
 */
export interface InForce {
  alertId: string;
  since: number;
  /**
   * A ward alert's own entry: its patients whose data came back while it was in force, oldest first, the newest
   * RESUMED_KEPT (2026-12-07: before, a member's record went when its data resumed, and nobody could say who had).
   * Absent: none. Dropped with the alert; a patient quiet again (any alert) leaves it.
   */
  resumed?: readonly Resumed[];
  /**
   * A ward alert's own entry: the time its text gave (wardQuietAt), by which its all-clear names it; absent: `since`
   * (an alert stored before 2026-12-07, or one whose text gave its id's time).
   */
  said?: number;
}

/** A patient of a ward alert whose monitor data came back: its bed then, and its first reading back (epoch ms). */
export interface Resumed {
  patientId: string;
  bed?: string;
  at: number;
}

/** A patient's bed as a ward alert names it: with its own ward when that is not the alert's (a move). */
function bedInWard(state: PatientState | undefined, alertWard: string): string | undefined {
  const bed = state?.enrolment.bed?.v;
  const ward = state?.enrolment.ward?.v;
  return bed !== undefined && ward !== undefined && ward !== alertWard ? `${bed} of ward ${ward}` : bed;
}

/** How many of a ward alert's resumed patients are kept (the newest): a page and the board name them all. */
const RESUMED_KEPT = 20;

const sameResumed = (a: readonly Resumed[] = [], b: readonly Resumed[] = []) =>
  a.length === b.length &&
  a.every((r, i) => r.patientId === b[i]!.patientId && r.bed === b[i]!.bed && r.at === b[i]!.at);

/**
 * A patient grouped into a ward's alert: what a backend must keep beside the alerts themselves, or a restart finds
 * the members again by the ward they are in now, and pages on its own one who moved while quiet (the same silence
 * paged twice). AWS keeps every entry; crs serve finds the alerts from its pages and keeps these.
 */
export const isWardMember = (key: string, e: InForce) => key !== e.alertId && isWardAlert(e.alertId);

/**
 * What is in force after a restart: the alerts, and the members kept of each ward alert still in force (one whose
 * all-clear was stored before its members were let go has none).
 */
export function withMembers(
  alerts: ReadonlyMap<string, InForce>,
  members: Iterable<[string, InForce]>,
): Map<string, InForce> {
  const out = new Map(alerts);
  for (const [key, e] of members) if (alerts.get(e.alertId)?.alertId === e.alertId && !out.has(key)) out.set(key, e);
  return out;
}

export interface StaleFeedPlan {
  /** To raise or clear, in this order, before `set` and `remove` are stored (a crash between repeats nothing). */
  alerts: AlertInput[];
  set: Map<string, InForce>;
  remove: string[];
}

/**
 * One sweep's decisions. `checks`: the patients looked at (the others keep what is in force). `full`: every quiet
 * feed was looked at, so a ward alert left with no quiet patient is cleared even if none resumed in this sweep
 * (its members not known: a crs serve database upgraded from version 8 or before, which did not keep them).
 */
export function planStaleFeeds(
  inForce: ReadonlyMap<string, InForce>,
  checks: readonly FeedCheck[],
  config: Pick<PagingConfig, 'staleFeedGroup'>,
  now: number,
  full: boolean,
  /** The site's zone (config.site.timeZone), for the times in the summaries. */
  timeZone: string,
): StaleFeedPlan {
  // In the order of the ids, whatever order a backend found them in: the same alerts, summaries and pages on both.
  const next = new Map([...inForce].sort(([a], [b]) => byId(a, b)));
  const alerts: AlertInput[] = [];
  const newlyQuiet: FeedCheck[] = [];
  const leftWard = new Set<string>();
  const endedInWard = new Set<string>();
  const resumedNow: { alertId: string; resumed: Resumed }[] = [];
  for (const c of [...checks].sort((a, b) => byId(a.patientId, b.patientId))) {
    const e = next.get(c.patientId);
    const f = c.feed;
    if (!e) {
      if (f?.stale) newlyQuiet.push(c);
      continue;
    }
    const inWard = isWardAlert(e.alertId);
    // Not quiet long enough by the settings now, yet nothing came since it went quiet: a deployment lengthened
    // staleFeedMinutes while the alert was in force. The monitor is quiet still, so the alert stays. Until 2026-12-05
    // it was cleared ("Data resumed"), and raised again later under the same id, which the pager had opened already:
    // nobody was paged for a monitor that stayed quiet.
    if (f && !f.stale && f.since === e.since) continue;
    if (!f?.stale) {
      next.delete(c.patientId);
      if (inWard) {
        leftWard.add(e.alertId);
        // No feed (a state gone, or not enrolled): it left, nothing resumed. A patient moved to another ward is
        // named with it ("bed 3 of ward ICU"): a bare bed reads as one of the alert's ward (2026-12-07).
        const bed = bedInWard(c.state, wardOfAlert(e.alertId));
        if (f && whyLeft(c.state, f.since) === 'resumed')
          resumedNow.push({
            alertId: e.alertId,
            resumed: { patientId: c.patientId, ...(bed ? { bed } : {}), at: f.since },
          });
        // Left without data (a discharge, a re-admission with no monitor data since, a state gone): the all-clear
        // must not say every patient has data again (2026-12-07: it did after a re-admission between two sweeps).
        else endedInWard.add(e.alertId);
      } else alerts.push(staleFeedCleared(e.alertId, c.patientId, f?.since ?? now, c.state, timeZone));
    } else if (f.since !== e.since) {
      // Data moved on but the feed is stale still: a reading that arrived late, itself older than staleFeedMinutes
      // (or data that came and went while no sweep ran). Nobody was told the data had resumed, and it has not now:
      // the alert stays in force, paging nothing (an all-clear and a new "no data" page at once would be noise).
      next.set(c.patientId, { alertId: e.alertId, since: f.since });
    }
  }

  const windowMs = config.staleFeedGroup.windowMinutes * MINUTE;
  const byWard = new Map<string | undefined, FeedCheck[]>();
  for (const c of newlyQuiet) {
    const ward = c.state?.enrolment.ward?.v;
    byWard.set(ward, [...(byWard.get(ward) ?? []), c]);
  }
  for (const [ward, quiet] of byWard) {
    const earliest = Math.min(...quiet.map((c) => c.feed!.since));
    // The ward's alert in force that these went quiet soon enough after to be the same outage.
    const joined =
      ward === undefined
        ? undefined
        : [...next.values()]
            .filter(
              (e) =>
                isWardAlert(e.alertId) &&
                next.get(e.alertId) === e &&
                wardOfAlert(e.alertId) === ward &&
                earliest - e.since <= windowMs,
            )
            .sort((a, b) => b.since - a.since || byId(a.alertId, b.alertId))[0];
    if (joined) {
      for (const c of quiet) next.set(c.patientId, { alertId: joined.alertId, since: c.feed!.since });
    } else if (ward !== undefined && quiet.length >= config.staleFeedGroup.fromPatients) {
      const alert = wardAlert(ward, earliest, quiet, timeZone);
      alerts.push(alert);
      const said = wardQuietAt(quiet);
      next.set(alert.alertId, { alertId: alert.alertId, since: earliest, ...(said !== earliest ? { said } : {}) });
      for (const c of quiet) next.set(c.patientId, { alertId: alert.alertId, since: c.feed!.since });
    } else {
      for (const c of quiet) {
        const alert = staleFeedAlert(c.patientId, c.feed!.since, c.state, timeZone);
        alerts.push(alert);
        next.set(c.patientId, { alertId: alert.alertId, since: c.feed!.since });
      }
    }
  }

  // Who of each ward alert had data again: those of this sweep added, those quiet again (any alert) let go.
  for (const [key, e] of [...next]) {
    if (key !== e.alertId || !isWardAlert(key)) continue;
    const resumed = [
      ...(e.resumed ?? []).filter((r) => !next.has(r.patientId)),
      ...resumedNow.filter((r) => r.alertId === key).map((r) => r.resumed),
    ]
      .sort((a, b) => a.at - b.at || byId(a.patientId, b.patientId))
      .slice(-RESUMED_KEPT);
    if (!sameResumed(resumed, e.resumed))
      next.set(key, {
        alertId: e.alertId,
        since: e.since,
        ...(e.said === undefined ? {} : { said: e.said }),
        ...(resumed.length > 0 ? { resumed } : {}),
      });
  }

  // A ward alert with no quiet patient left is answered.
  const members = new Set([...next].filter(([key, e]) => key !== e.alertId).map(([, e]) => e.alertId));
  for (const [key, e] of [...next]) {
    if (key === e.alertId && isWardAlert(key) && !members.has(key) && (full || leftWard.has(key))) {
      alerts.push(wardCleared(e, timeZone, endedInWard.has(key)));
      next.delete(key);
    }
  }

  const set = new Map(
    [...next].filter(([key, e]) => {
      const was = inForce.get(key);
      return (
        was?.alertId !== e.alertId ||
        was.since !== e.since ||
        was.said !== e.said ||
        !sameResumed(was.resumed, e.resumed)
      );
    }),
  );
  const remove = [...inForce.keys()].filter((key) => !next.has(key));
  return { alerts, set, remove };
}

/** What handing a plan's alerts to the pager came to: what to store as in force, and what failed. */
export interface PagedPlan {
  /** The plan's `set` and `remove`, less what the alerts that failed would have changed (the next sweep plans them again). */
  set: Map<string, InForce>;
  remove: string[];
  /** The alerts the pager failed on for a reason of their own (a page item that does not decode), by id. */
  failed: { alertId: string; error: unknown }[];
  /** Set when SNS refused to send some of their pages: stored, a later tick sends them (they count as handed over). */
  deferred?: SendDeferred;
  /** The error that stopped the handing over (an outage: `stops`); the alerts from there on wait like the failed ones. */
  stopped?: unknown;
}

/**
 * Hands each alert of the plan to the pager, in order, and says what may be stored as in force. One alert failing for
 * a reason of its own is set aside and the others go on (until 2026-12-05 it stopped the rest of the sweep on AWS,
 * every minute, and on crs serve none of the sweep's alerts was recorded). An error `stops` says is an outage stops it.
 * What the alerts that failed or were not handed over would have changed is left as it was: a key keeps the alert in
 * force for it, so an all-clear that failed leaves its alert in force (no new alert can be raised over it: the plan
 * keeps a key's alert in force until it is cleared), and it is planned again at the next sweep, under the same id.
 */
export async function pageStaleFeeds(
  plan: StaleFeedPlan,
  inForce: ReadonlyMap<string, InForce>,
  onAlert: (alert: AlertInput) => Promise<void>,
  stops: (err: unknown) => boolean = () => false,
): Promise<PagedPlan> {
  const failed: PagedPlan['failed'] = [];
  let deferred: SendDeferred | undefined;
  let stopped: { at: number; error: unknown } | undefined;
  for (const [at, alert] of plan.alerts.entries()) {
    try {
      await onAlert(alert);
    } catch (error) {
      if (error instanceof SendDeferred) deferred ??= error;
      else if (stops(error)) {
        stopped = { at, error };
        break;
      } else failed.push({ alertId: alert.alertId, error });
    }
  }
  const undoneAlerts = [
    ...failed.map((f) => f.alertId),
    ...plan.alerts.slice(stopped?.at ?? plan.alerts.length).map((a) => a.alertId),
  ];
  const undone = new Set(undoneAlerts.map((id) => id.replace(/\|cleared$/, '')));
  return {
    set: new Map([...plan.set].filter(([, e]) => !undone.has(e.alertId))),
    remove: plan.remove.filter((key) => !undone.has(inForce.get(key)?.alertId ?? '')),
    failed,
    ...(deferred ? { deferred } : {}),
    ...(stopped ? { stopped: stopped.error } : {}),
  };
}
