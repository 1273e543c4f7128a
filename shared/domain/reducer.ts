// The per-patient reducer: (state, message) -> (new state, assessment, notifications). Pure: no I/O, no clock.
// It never mutates the state it is given.
import type { Condition, GradingConfig, Scheme, Team } from './config.ts';
import type { DeviceMessage } from './contract.ts';
import { gradeCrs, gradeIcans, isLowReading, hypotensionThresholds, type Graded, type Reason } from './grading.ts';
import { buildPage, type Notification } from './page.ts';
import { addSeen, hasSeen } from './seen.ts';
import { copyState, emptyState, type BpMachine, type BpReading, type NotifiedGrade, type PatientState, type Timed, type TimedFields } from './state.ts';
import { HOUR, MINUTE, iso, parseTime } from './time.ts';

/** A warning that is not a grade (crs-rules are silent on it; the paging layer decides whom to tell). */
export interface Warning {
  warning: 'spo2-low-without-oxygen';
  at: string;
  text: string;
}

export interface Assessment {
  messageId: string;
  patientId: string;
  /** The patient clock: grades are as of this time. */
  at: string;
  scheme: Scheme;
  crsGrade: number;
  icansGrade: number;
  reasons: Reason[];
  warnings: Warning[];
}

/** A technical alert raised or cleared (not a grade): it goes to the pager, not to the grade pages. */
export interface AlertChange {
  alertId: string;
  patientId: string;
  subject: 'spo2';
  cleared: boolean;
  summary: string;
  at: string;
}

export type Step =
  | { kind: 'duplicate'; state: PatientState; messageId: string; patientId: string }
  | { kind: 'applied'; state: PatientState; assessment: Assessment; notifications: Notification[]; alerts: AlertChange[] };

const TOCILIZUMAB_HISTORY = 16;

function latest<T>(cur: Timed<T> | undefined, v: T, t: number): Timed<T> {
  // Ties go to the later arrival, so a correction sent for the same instant wins.
  return cur && cur.t > t ? cur : { v, t };
}

function mergeFields<T extends object>(target: TimedFields<T>, section: Partial<T>, t: number): TimedFields<T> {
  const out: TimedFields<T> = { ...target };
  for (const key of Object.keys(section) as (keyof T)[]) {
    const v = section[key];
    if (v === undefined) continue;
    out[key] = latest(out[key], v as NonNullable<T[keyof T]>, t) as TimedFields<T>[keyof T];
  }
  return out;
}

/** Adds a febrile temperature to the monotonic queue (times rising, temperatures falling). */
function addFebrile(queue: PatientState['febrile'], t: number, c: number): PatientState['febrile'] {
  if (queue.some(([t2, c2]) => t2 >= t && c2 >= c)) return queue; // a later, at-least-as-high reading covers it
  const out = queue.filter(([t2, c2]) => !(t2 <= t && c2 <= c));
  const at = out.findIndex(([t2]) => t2 > t);
  out.splice(at < 0 ? out.length : at, 0, [t, c]);
  return out;
}

function stepMachine(m: BpMachine, low: boolean): BpMachine {
  return { on: m.lastLow === low ? low : m.on, lastLow: low };
}

/**
 * Adds a blood-pressure reading in observedAt order. A reading at the same instant replaces the earlier one
 * (so a redelivered message cannot make a "consecutive" pair with itself). A reading older than every kept one
 * cannot change the result once the kept history holds a consecutive pair, and is not kept.
 */
function addBp(state: PatientState, reading: BpReading, keep: number, th: { systolicBelow: number; mapBelow: number }) {
  let bp = state.bp;
  let dropped = state.bpDropped;
  const same = bp.findIndex((r) => r[0] === reading[0]);
  if (same >= 0) {
    bp = bp.slice();
    bp[same] = reading;
    return { bp, dropped };
  }
  if (bp.length >= keep && reading[0] < bp[0]![0]) return { bp, dropped };
  bp = bp.slice();
  const at = bp.findIndex((r) => r[0] > reading[0]);
  bp.splice(at < 0 ? bp.length : at, 0, reading);
  while (bp.length > keep) dropped = stepMachine(dropped, isLowReading(bp.shift()!, th));
  return { bp, dropped };
}

/** The two latest readings by observedAt; a reading at the same instant replaces the earlier one. */
function lastTwo(readings: [number, number][], t: number, value: number): [number, number][] {
  const r: [number, number] = [t, value];
  const [a, b] = readings;
  if (!a) return [r];
  if (!b) return a[0] === t ? [r] : a[0] < t ? [a, r] : [r, a];
  if (b[0] === t) return [a, r];
  if (a[0] === t) return [r, b];
  if (t > b[0]) return [b, r];
  return t > a[0] ? [r, b] : [a, b]; // older than both: the two latest stay as they were
}

/** SpO2 below the threshold on the last two readings, with no oxygen support documented. */
function spo2Warning(s: PatientState, config: GradingConfig): Warning | undefined {
  const [a, b] = s.spo2;
  const below = config.paging.spo2WarningBelow;
  if (!a || !b || a[1] >= below || b[1] >= below) return undefined;
  if (s.oxygen && s.oxygen.v.device !== 'room_air') return undefined;
  const at = iso(b[0]);
  return { warning: 'spo2-low-without-oxygen', at, text: `SpO2 ${a[1]} % then ${b[1]} % (below ${below} %) with no oxygen support documented at ${at}` };
}

function addTime(times: number[], t: number, keep: number): number[] {
  if (times.includes(t)) return times;
  const out = [...times, t].sort((a, b) => a - b);
  return out.length > keep ? out.slice(out.length - keep) : out;
}

function applyMessage(prev: PatientState, msg: DeviceMessage, t: number, config: GradingConfig): PatientState {
  const s = copyState(prev);
  s.clock = Math.max(prev.clock, t);

  if (msg.enrolment) {
    const before = s.enrolment.infusedAt?.v;
    s.enrolment = mergeFields(s.enrolment, msg.enrolment, t);
    const after = s.enrolment.infusedAt?.v;
    // A new infusion starts a new episode: the fever waiver and CRS onset belong to the old one.
    if (before && after && parseTime(after) > parseTime(before)) {
      s.crsSince = undefined;
      s.waiverSince = undefined;
      s.crsZeroSince = undefined;
    }
  }

  if (msg.vitals) {
    const v = msg.vitals;
    s.vitals = mergeFields(s.vitals, v, t);
    if (v.temperatureC !== undefined && v.temperatureC >= config.feverThresholdC) {
      s.febrile = addFebrile(s.febrile, t, v.temperatureC);
    }
    if (v.systolicBP !== undefined || v.meanArterialPressure !== undefined) {
      const th = hypotensionThresholds(s, config);
      const reading: BpReading = [t, v.systolicBP ?? null, v.meanArterialPressure ?? null];
      const added = addBp(s, reading, config.bpHistory, th);
      s.bp = added.bp;
      s.bpDropped = added.dropped;
    }
  }

  if (msg.source.kind === 'monitor') s.lastMonitorAt = Math.max(s.lastMonitorAt ?? t, t);
  if (msg.vitals?.spo2 !== undefined) s.spo2 = lastTwo(s.spo2, t, msg.vitals.spo2);
  if (msg.oxygen) s.oxygen = latest(s.oxygen, msg.oxygen, t);
  if (msg.vasopressors) s.vasopressors = latest(s.vasopressors, msg.vasopressors, t);
  if (msg.neuro) s.neuro = latest(s.neuro, msg.neuro, t);
  if (msg.organToxicity) s.organ = mergeFields(s.organ, msg.organToxicity, t);
  if (msg.labs) s.labs = mergeFields(s.labs, msg.labs, t);

  if (msg.medications && msg.medications.length > 0) {
    s.lastGiven = { ...s.lastGiven };
    for (const m of msg.medications) {
      s.lastGiven[m.drug] = Math.max(s.lastGiven[m.drug] ?? t, t);
      if (m.drug === 'tocilizumab') s.tocilizumab = addTime(s.tocilizumab, t, TOCILIZUMAB_HISTORY);
      if (config.feverMaskingDrugs.includes(m.drug)) {
        s.lastMaskingAt = Math.max(s.lastMaskingAt ?? t, t);
        // The waiver: a masking medication given at or after CRS onset (premedication does not count).
        if (s.crsSince !== undefined && t >= s.crsSince && (s.waiverSince === undefined || t < s.waiverSince)) {
          s.waiverSince = t;
        }
      }
    }
  }

  const windowStart = s.clock - config.feverWindowMinutes * MINUTE;
  if (s.febrile.length > 0 && s.febrile[0]![0] < windowStart) s.febrile = s.febrile.filter(([ft]) => ft >= windowStart);
  return s;
}

/** Tracks CRS onset and the end of an episode (the optional reset of the fever waiver). */
function trackEpisode(s: PatientState, crsGrade: number, config: GradingConfig): void {
  if (crsGrade >= 1) {
    s.crsZeroSince = undefined;
    if (s.crsSince === undefined) {
      s.crsSince = s.clock;
      if (s.lastMaskingAt !== undefined && s.lastMaskingAt >= s.crsSince) s.waiverSince = s.lastMaskingAt;
    }
    return;
  }
  s.crsZeroSince ??= s.clock;
  const endAfter = config.episodeEndsAfterHoursAtGrade0;
  if (endAfter !== null && s.crsSince !== undefined && s.clock - s.crsZeroSince >= endAfter * HOUR) {
    s.crsSince = undefined;
    s.waiverSince = undefined;
  }
}

interface Decision {
  next: NotifiedGrade;
  page?: { kind: 'escalation' | 'de-escalation'; fromGrade: number; toGrade: number; teams: Team[] };
}

/** Escalate at once; de-escalate once the grade has stayed below the notified grade for the hold time. */
export function decide(n: NotifiedGrade, grade: number, clock: number, condition: Condition, config: GradingConfig): Decision {
  if (grade > n.grade) {
    const teams = [...config.routing[condition][grade - 1]!];
    return { next: { grade, teams }, page: { kind: 'escalation', fromGrade: n.grade, toGrade: grade, teams } };
  }
  if (grade === n.grade) return { next: n.belowSince === undefined ? n : { grade: n.grade, teams: n.teams } };
  const belowSince = n.belowSince ?? clock;
  if (clock - belowSince >= config.holdMinutes * MINUTE) {
    // The stand-down goes to everyone paged at the notified grade; they stay the audience until it is 0.
    const teams = n.teams;
    return { next: { grade, teams: grade === 0 ? [] : teams }, page: { kind: 'de-escalation', fromGrade: n.grade, toGrade: grade, teams } };
  }
  return { next: n.belowSince === belowSince ? n : { ...n, belowSince } };
}

// The assessment's ICANS reasons say so in their text; worked out once per (shared, frozen) ICANS result.
const labelled = new WeakMap<Graded, Reason[]>();
function labelledIcans(icans: Graded): Reason[] {
  let out = labelled.get(icans);
  if (!out) labelled.set(icans, (out = Object.freeze(icans.reasons.map((r) => Object.freeze({ ...r, text: `ICANS ${r.text}` }))) as Reason[]));
  return out;
}

/**
 * Applies one validated message to a patient's state. A messageId already applied for this patient is a
 * duplicate: the state is returned unchanged and nothing is assessed or sent.
 */
export function reduce(prev: PatientState | undefined, msg: DeviceMessage, config: GradingConfig): Step {
  const base = prev ?? emptyState(msg.patientId);
  if (base.patientId !== msg.patientId) {
    throw new Error(`state of patient ${base.patientId} given a message for ${msg.patientId}`);
  }
  if (hasSeen(base.seen, msg.messageId)) {
    return { kind: 'duplicate', state: base, messageId: msg.messageId, patientId: msg.patientId };
  }
  const t = parseTime(msg.observedAt);
  const s = applyMessage(base, msg, t, config);
  s.seen = addSeen(base.seen, msg.messageId, config.dedupeWindow);

  const crs = gradeCrs(s, config);
  const icans = gradeIcans(s);
  trackEpisode(s, crs.grade, config);

  const notifications: Notification[] = [];
  const page = (condition: Condition, graded: Graded): NotifiedGrade => {
    const d = decide(s.notified[condition], graded.grade, s.clock, condition, config);
    if (d.page) {
      notifications.push(
        buildPage({ state: s, config, condition, ...d.page, reasons: graded.reasons, crsGrade: crs.grade, causedBy: msg.messageId }),
      );
    }
    return d.next;
  };
  const crsNotified = page('crs', crs);
  const icansNotified = page('icans', icans);
  if (crsNotified !== s.notified.crs || icansNotified !== s.notified.icans) s.notified = { crs: crsNotified, icans: icansNotified };

  const assessment: Assessment = {
    messageId: msg.messageId,
    patientId: msg.patientId,
    at: iso(s.clock),
    scheme: config.scheme,
    crsGrade: crs.grade,
    icansGrade: icans.grade,
    reasons: icans.reasons.length === 0 ? crs.reasons : [...crs.reasons, ...labelledIcans(icans)],
    warnings: [],
  };
  const warning = spo2Warning(s, config);
  if (warning) assessment.warnings.push(warning);
  const alerts: AlertChange[] = [];
  if ((warning !== undefined) !== s.spo2Alert) {
    s.spo2Alert = warning !== undefined;
    const where = s.enrolment.bed ? `patient ${s.patientId}, bed ${s.enrolment.bed.v}` : `patient ${s.patientId}`;
    alerts.push({
      alertId: `spo2|${s.patientId}|${msg.messageId}`,
      patientId: s.patientId,
      subject: 'spo2',
      cleared: !warning,
      summary: warning ? `WARNING (not a grade), ${where}: ${warning.text}` : `Cleared, ${where}: SpO2 no longer low without oxygen support`,
      at: assessment.at,
    });
  }
  return { kind: 'applied', state: s, assessment, notifications, alerts };
}
