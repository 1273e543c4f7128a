// Who is paged and when, written from crs-rules.md section 5 alone (not from the engine's reducer): given the
// grades the engine computed after each applied message (its `assessment` events, in arrival order), the grade
// changes that must be paged. The grading itself is tested elsewhere (rules-oracle-agree); this model is about
// the notification decisions only.
//
// Rules (section 5):
// - Each condition has a notified grade: the grade in the last notification sent for it (0 before any).
// - Escalation: the grade rises above the notified grade: notify at once, to the teams of the new grade.
// - De-escalation: the grade has stayed below the notified grade for at least the hold time (patient clock):
//   notify the teams that were paged at the notified grade, once.
// - Down and back up within the hold sends nothing.
//
// Where the rules leave a choice, this model takes the reading named here:
// - The hold starts at the patient clock of the first assessment below the notified grade, and restarts when an
//   assessment is back at (or above) the notified grade. Moves below the notified grade (3 -> 1 -> 2 with 3
//   notified) do not restart it: the grade stayed below.
// - The hold is checked when a message is applied (no timer): a de-escalation is sent with the first assessment
//   whose clock is at least `holdMinutes` after the start (inclusive; with a hold of 0, at once). A later message
//   whose clock does not move adds no time.
// - A de-escalation reports the grade of the assessment that sends it (the grade now, not the lowest or the first
//   grade below), and that grade becomes the notified grade.
// - "The teams that were paged at the notified grade": the teams of the notification that set it, by default
//   (`deEscalationTeams: 'last-page'`); after an escalation these are the routing of that grade, after a
//   de-escalation the teams that de-escalation went to. `'routing'` takes the routing of the notified grade.
import type { Condition, GradingConfig, Team } from '#domain/config.ts';

export interface AssessedStep {
  /** The patient clock of the assessment (RFC 3339). */
  at: string;
  crsGrade: number;
  icansGrade: number;
}

export interface ExpectedNotification {
  /** Index of the assessment (applied message) that sends it. */
  step: number;
  kind: 'escalation' | 'de-escalation';
  condition: Condition;
  fromGrade: number;
  toGrade: number;
  teams: Team[];
}

export interface NotifyModelOptions {
  deEscalationTeams?: 'last-page' | 'routing';
}

interface ConditionState {
  notified: number;
  /** The teams paged by the notification that set `notified` (none at 0 before any). */
  pagedTeams: Team[];
  /** Patient clock (ms) of the first assessment of the current run below `notified`. */
  belowSince: number | undefined;
}

const CONDITIONS: Condition[] = ['crs', 'icans'];

type NotifyConfig = Pick<GradingConfig, 'holdMinutes' | 'routing'>;

/**
 * `cfg` may change from one message to the next (a site edits its routing or hold while patients are paged): each
 * decision uses the configuration in force at its message; a de-escalation still goes to the teams actually paged.
 */
export function expectedNotifications(
  steps: readonly AssessedStep[],
  cfg: NotifyConfig | ((step: number) => NotifyConfig),
  { deEscalationTeams = 'last-page' }: NotifyModelOptions = {},
): ExpectedNotification[] {
  const at = typeof cfg === 'function' ? cfg : () => cfg;
  const states: Record<Condition, ConditionState> = {
    crs: { notified: 0, pagedTeams: [], belowSince: undefined },
    icans: { notified: 0, pagedTeams: [], belowSince: undefined },
  };
  const out: ExpectedNotification[] = [];
  steps.forEach((s, step) => {
    const holdMs = at(step).holdMinutes * 60_000;
    const route = (condition: Condition, grade: number): Team[] => [...at(step).routing[condition][grade - 1]!];
    const clock = Date.parse(s.at);
    for (const condition of CONDITIONS) {
      const st = states[condition];
      const grade = condition === 'crs' ? s.crsGrade : s.icansGrade;
      if (grade > st.notified) {
        const teams = route(condition, grade);
        out.push({ step, kind: 'escalation', condition, fromGrade: st.notified, toGrade: grade, teams });
        states[condition] = { notified: grade, pagedTeams: teams, belowSince: undefined };
      } else if (grade === st.notified) {
        st.belowSince = undefined;
      } else {
        const since = st.belowSince ?? clock;
        if (clock - since >= holdMs) {
          const teams = deEscalationTeams === 'routing' ? route(condition, st.notified) : st.pagedTeams;
          out.push({ step, kind: 'de-escalation', condition, fromGrade: st.notified, toGrade: grade, teams });
          states[condition] = { notified: grade, pagedTeams: teams, belowSince: undefined };
        } else st.belowSince = since;
      }
    }
  });
  return out;
}
