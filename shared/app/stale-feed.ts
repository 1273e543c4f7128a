// The stale-feed alert and its all-clear, as every backend raises them: "no data: the grade cannot be trusted"
// for an enrolled patient whose monitor went quiet, cleared when data resumes. The alert's id comes from the
// patient and the time the feed went quiet, so raising it again (a repeated sweep) opens nothing new.
import type { PatientState } from '../domain/state.ts';
import { formatSiteTime } from '../domain/time.ts';
import type { AlertInput } from './pager.ts';

const bedOf = (state: PatientState | undefined) => (state?.enrolment.bed ? `, bed ${state.enrolment.bed.v}` : '');

export const staleFeedAlertId = (patientId: string, since: number) => `stale-feed|${patientId}|${since}`;

/** `timeZone`: the site's (config.site.timeZone), for the time in the summary people read. */
export function staleFeedAlert(patientId: string, since: number, state: PatientState | undefined, timeZone: string): AlertInput {
  return {
    alertId: staleFeedAlertId(patientId, since),
    patientId,
    subject: 'stale-feed',
    cleared: false,
    summary: `NO DATA, patient ${patientId}${bedOf(state)}: nothing from the monitor since ${formatSiteTime(since, timeZone)}; the grade cannot be trusted`,
  };
}

/** The all-clear of the alert `alertId`, now that the monitor has sent data again (last at `since`). */
export function staleFeedCleared(alertId: string, patientId: string, since: number, state: PatientState | undefined, timeZone: string): AlertInput {
  return {
    alertId: `${alertId}|cleared`,
    patientId,
    subject: 'stale-feed',
    cleared: true,
    summary: `Data resumed, patient ${patientId}${bedOf(state)}: monitor data since ${formatSiteTime(since, timeZone)}`,
  };
}
