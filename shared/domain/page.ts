// What a page carries (crs-rules.md section 6): who and where (id and bed, never a name), what changed, why,
// and the local protocol's next steps, with the tocilizumab dose worked out. Decision support, provisional.
import type { Condition, GradingConfig, Scheme, Team } from './config.ts';
import { episodeInfusion, episodeStart, reasonText, type Reason } from './grading.ts';
import type { PatientState } from './state.ts';
import { DAY, HOUR, formatSiteTime, iso, siteDay } from './time.ts';

interface TocilizumabAdvice {
  /** The dose for this patient, or null when no enrolment weight is known. */
  doseMg: number | null;
  weightKg: number | null;
  mgPerKg: number;
  capped: boolean;
  /** The doses counted towards the total cap: every dose kept, or this episode's (`tocilizumab.totalPer`). */
  givenTotal: number;
  given24h: number;
  lastGivenAt: string | null;
  /** Whether the 24 h and total caps allow another dose now. */
  anotherAllowed: boolean;
  /** Earliest time the next dose may be given (the repeat interval), when that is later than now. */
  notBefore: string | null;
  text: string;
}

export interface Notification {
  notificationId: string;
  patientId: string;
  /** The patient clock when the grade changed. */
  at: string;
  kind: 'escalation' | 'de-escalation';
  condition: Condition;
  fromGrade: number;
  toGrade: number;
  teams: Team[];
  /** The scheme the grade was given in: the deployment's for CRS, ASTCT 2019 for ICANS (both schemes). */
  scheme: Scheme;
  bed: string | null;
  ward: string | null;
  therapy: string | null;
  /** The day since the infusion (day 0 is the calendar day of the infusion, in the site's zone), null without one. */
  dayPostInfusion: number | null;
  provisional: true;
  reasons: Reason[];
  /** What people read (pages, the board): the grade change and its reasons, times in the site's zone. */
  summary: string;
  actions: string[];
  tocilizumab: TocilizumabAdvice;
  /** The messageId of the message whose arrival caused this page. */
  causedBy: string;
  /**
   * The grading settings changed since the patient's last message (config.ts gradingSettingsId: `to` now, `from`
   * before): this change may come from the configuration, not from the patient, and the summary says so (2026-12-07).
   * Absent otherwise.
   */
  settingsChanged?: SettingsChange;
}

/** Ids of the grading settings a patient was graded under before (`from`) and now (`to`). */
export interface SettingsChange {
  from: string;
  to: string;
}

/**
 * What a grade change's page says when the grading settings changed since the patient's last message. The wording is
 * this project's (an owner decision: docs/runbook.md, "Changing the grading or paging configuration").
 */
const settingsChangedText = (c: SettingsChange) =>
  `The grading settings changed since this patient's last message (settings ${c.to}, were ${c.from}): this change may come from the configuration, not from the patient.`;

const SCHEME_NAMES: Record<Scheme, string> = { astct2019: 'ASTCT 2019', lee2014: 'Lee 2014' };
const CONDITION_NAMES: Record<Condition, string> = { crs: 'CRS', icans: 'ICANS' };

/**
 * A page's grade as people read it first: "CRS grade 3", or "CRS grade down to 1" for a fall (2026-12-06: "CRS grade 1
 * (was 3)" read at a glance as a rise). The summary, the e-mail subject and the SMS all start with it.
 */
export function gradeHeadline(n: Pick<Notification, 'condition' | 'kind' | 'toGrade'>): string {
  return `${CONDITION_NAMES[n.condition]} grade ${n.kind === 'de-escalation' ? 'down to ' : ''}${n.toGrade}`;
}

/**
 * The grade a change went from, as its summary (buildPage's) says it: "PROVISIONAL CRS grade down to 0 (was 2; ...",
 * the same since the first version bar "down to" (2026-12-06). The board's "from N", once the retention has dropped
 * the grade change's record, of a page stored before pages carried it (Page.fromGrade, 2026-12-07): those keep only
 * their summary, in that wording. Nothing else reads it. Undefined for another text.
 */
export function fromGradeOf(summary: string): number | undefined {
  const names = Object.values(CONDITION_NAMES).join('|');
  const m = new RegExp(`^PROVISIONAL (?:${names}) grade (?:down to )?\\d+ \\(was (\\d+); `).exec(summary);
  return m ? Number(m[1]) : undefined;
}

/**
 * The day since the infusion, as the ward counts it: day 0 is the calendar day of the infusion in the site's zone,
 * day +1 the next from midnight, day -1 the day before. Until 2026-12-05 it counted whole 24 hours: a patient infused
 * at 16:00 was on "day +0" the next morning, and a fever an hour before the infusion was on "day -1".
 */
export function dayPostInfusion(state: PatientState, timeZone: string): number | null {
  // The episode's infusion (`episodeStart` decides which: under latest-infusion a resent older one is not it; until
  // 2026-12-07 the count followed the enrolment observed last whatever the option).
  const infused = episodeInfusion(state);
  if (infused === undefined || !Number.isFinite(state.clock)) return null;
  return siteDay(state.clock, timeZone) - siteDay(infused, timeZone);
}

function tocilizumabAdvice(state: PatientState, config: GradingConfig): TocilizumabAdvice {
  const c = config.tocilizumab;
  const weightKg = state.enrolment.weightKg?.v ?? null;
  const mgPerKg = weightKg !== null && weightKg < c.lowWeightBelowKg ? c.mgPerKgLowWeight : c.mgPerKg;
  const raw = weightKg === null ? null : Math.round(weightKg * mgPerKg);
  const doseMg = raw === null ? null : Math.min(raw, c.maxDoseMg);
  const capped = raw !== null && raw > c.maxDoseMg;
  const doses = state.tocilizumab.filter((t) => t <= state.clock);
  const given24h = doses.filter((t) => t > state.clock - DAY).length;
  // The 24 h cap and the repeat interval count every dose whatever the episode (the drug is still there).
  const perEpisode = c.totalPer === 'episode';
  const start = episodeStart(state);
  const givenTotal = perEpisode ? doses.filter((t) => t >= start).length : doses.length;
  const totalName = perEpisode ? 'this episode' : 'in total';
  const last = doses[doses.length - 1];
  const anotherAllowed = given24h < c.max24h && givenTotal < c.maxTotal;
  const repeatAt = last === undefined ? undefined : last + c.repeatAfterHours * HOUR;
  const notBefore = anotherAllowed && repeatAt !== undefined && repeatAt > state.clock ? iso(repeatAt) : null;

  const dose =
    doseMg === null
      ? `Tocilizumab ${c.mgPerKg} mg/kg IV (${c.mgPerKgLowWeight} mg/kg if < ${c.lowWeightBelowKg} kg, max ${c.maxDoseMg} mg): dose not computed, no enrolment weight`
      : `Tocilizumab ${doseMg} mg IV (${mgPerKg} mg/kg x ${weightKg} kg${capped ? `, capped at ${c.maxDoseMg} mg` : ''})`;
  // None given yet reads as such (until 2026-12-06: "0 doses given (0 in 24 h); another dose is allowed now").
  const given =
    doses.length === 0
      ? 'no dose given yet'
      : perEpisode
        ? `${givenTotal} dose${givenTotal === 1 ? '' : 's'} given this episode (${given24h} in 24 h, ${doses.length} in all)`
        : `${givenTotal} dose${givenTotal === 1 ? '' : 's'} given (${given24h} in 24 h)`;
  const verdict = !anotherAllowed
    ? `no further dose allowed: ${givenTotal >= c.maxTotal ? `${c.maxTotal} ${totalName} reached` : `${c.max24h} in 24 h reached`}`
    : notBefore
      ? `another allowed from ${formatSiteTime(notBefore, config.site.timeZone)} (repeat every ${c.repeatAfterHours} h)`
      : doses.length === 0
        ? 'a dose is allowed now'
        : 'another dose is allowed now';
  return {
    doseMg,
    weightKg,
    mgPerKg,
    capped,
    givenTotal,
    given24h,
    lastGivenAt: last === undefined ? null : iso(last),
    anotherAllowed,
    notBefore,
    text: `${dose}; ${given}; ${verdict} (at most ${c.max24h} in 24 h, ${c.maxTotal} ${totalName}).`,
  };
}

export interface PageInput {
  state: PatientState;
  config: GradingConfig;
  condition: Condition;
  kind: 'escalation' | 'de-escalation';
  fromGrade: number;
  toGrade: number;
  teams: Team[];
  reasons: Reason[];
  /** The other condition's current grade (ICANS without CRS changes the tocilizumab advice). */
  crsGrade: number;
  causedBy: string;
  settingsChanged?: SettingsChange;
}

function actionsFor(p: PageInput, toci: TocilizumabAdvice): string[] {
  const { config, condition, toGrade } = p;
  const actions: string[] = [];
  // An empty stand-down or interruption text (taken by the configuration) is a site's way to leave the line out.
  if (p.kind === 'de-escalation' && config.actions.deEscalation !== '') actions.push(config.actions.deEscalation);
  if (toGrade >= 1) actions.push(...config.actions[condition][toGrade - 1]!);
  if (condition === 'crs' && toGrade >= 1) actions.push(toci.text);
  if (condition === 'icans' && toGrade >= 1 && p.crsGrade === 0) actions.push(...config.actions.icansWithoutCrs);
  const therapy = p.state.enrolment.therapy?.v;
  if (
    therapy === 'bispecific' &&
    toGrade >= config.actions.bispecificInterruptFromGrade &&
    config.actions.bispecificInterrupt !== ''
  ) {
    actions.push(config.actions.bispecificInterrupt);
  }
  return actions;
}

/**
 * The id of a grade change or technical alert: `<condition>|<patientId>|#<seq>`, seq being the patient's count of
 * applied messages at the message that caused it. Unique per change even when devices reuse messageIds, and the
 * same whenever that message is graded again from the same state (a retried batch, a replay). patientId has no
 * "|", and no messageId can hold "#", so no id made from a messageId by earlier versions
 * (`<condition>|<patientId>|<messageId>`) can equal one.
 */
export function changeId(subject: Condition | 'spo2', state: Pick<PatientState, 'patientId' | 'seq'>): string {
  return `${subject}|${state.patientId}|#${state.seq}`;
}

/**
 * The patient's sequence number a change's id ends with (`crs|P-1|#7`: 7), which orders a patient's changes; undefined
 * for an id that carries none (a stale-feed alert's, or a grade change stored by the versions before changeId).
 */
export function changeSeq(id: string): number | undefined {
  const m = /\|#(\d+)$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

export function buildPage(p: PageInput): Notification {
  const { state, config, condition, kind, fromGrade, toGrade } = p;
  const toci = tocilizumabAdvice(state, config);
  const bed = state.enrolment.bed?.v ?? null;
  const day = dayPostInfusion(state, config.site.timeZone);
  // ICANS is graded by ASTCT 2019 in both schemes: the scheme a page names is the one its grade was given in.
  const scheme: Scheme = condition === 'icans' ? 'astct2019' : config.scheme;
  // Day -1 before the infusion (a fever during lymphodepletion), never "day +-1".
  const dayText = day === null ? null : `day ${day < 0 ? day : `+${day}`}`;
  const where = [`patient ${state.patientId}`, bed ? `bed ${bed}` : null, dayText].filter(Boolean).join(', ');
  const grading = condition === 'icans' ? 'ASTCT 2019 ICANS' : SCHEME_NAMES[scheme];
  // What people read: every time in the site's zone (the reasons' text field keeps the stable UTC form).
  const why = p.reasons.map((r) => reasonText(r, config.site.timeZone)).join('; ');
  const summary =
    `PROVISIONAL ${gradeHeadline({ condition, kind, toGrade })} (was ${fromGrade}; ${grading}), ${where}` +
    `${why ? `: ${why}` : ''}.${p.settingsChanged ? ` ${settingsChangedText(p.settingsChanged)}` : ''} Provisional: confirm at bedside.`;
  return {
    notificationId: changeId(condition, state),
    patientId: state.patientId,
    at: iso(state.clock),
    kind,
    condition,
    fromGrade,
    toGrade,
    teams: p.teams,
    scheme,
    bed,
    ward: state.enrolment.ward?.v ?? null,
    therapy: state.enrolment.therapy?.v ?? null,
    dayPostInfusion: day,
    provisional: true,
    reasons: p.reasons,
    summary,
    actions: actionsFor(p, toci),
    tocilizumab: toci,
    causedBy: p.causedBy,
    ...(p.settingsChanged ? { settingsChanged: p.settingsChanged } : {}),
  };
}
