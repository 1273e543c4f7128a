// The per-patient reducer: (state, message) -> (new state, assessment, notifications). Pure: no I/O, no clock.
// It never mutates the state it is given.
import type { Condition, GradingConfig, Scheme, Team } from './config.ts';
import { gradingSettingsId } from './settings-id.ts';
import type { DeviceMessage } from './contract.ts';
import { addToHistory, memoFor, type BpReading, type PressorPoint } from './bp.ts';
import {
  episodeInfusion,
  episodeStart,
  gradeCrs,
  gradeIcans,
  hypotensionThresholds,
  icansNormalReasons,
  OXYGEN_DEVICE_NAMES,
  reasonText,
  type Graded,
  type Reason,
  type ReasonPart,
} from './grading.ts';
import { buildPage, changeId, type Notification, type SettingsChange } from './page.ts';
import { addSeen, identify } from './seen.ts';
import {
  copyState,
  emptyState,
  enrolledAt,
  knownUnmaskedFever,
  type NotifiedGrade,
  type PatientState,
  type Timed,
  type TimedFields,
} from './state.ts';
import { HOUR, MINUTE, formatSiteTime, iso, parseTime } from './time.ts';

/** A warning that is not a grade (crs-rules are silent on it; the paging layer decides whom to tell). */
interface Warning {
  warning: 'spo2-low-without-oxygen';
  at: string;
  /** As a reason's: the words with the time as data (what pages render), and the stable string form. */
  parts: readonly ReasonPart[];
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

/** How a message arrived: the digest of its content (shared/app/digest.ts), and what a backend knows of its id. */
export interface Arrival {
  digest: string;
  /** Digests this messageId was applied with before, from a backend's long-term record (beyond the window). */
  priorDigests?: readonly string[];
  /**
   * When the server accepted the message (epoch ms; absent in replays of files). A message is never placed later than
   * it arrived: an observedAt ahead of the arrival (a fast device clock, or a forged time) counts as the arrival, so
   * that a value dated minutes ahead cannot outrank the corrections that follow it (issue 16). Not read under
   * aheadOfArrival "observedAt" (GradingConfig).
   */
  receivedAt?: number;
}

export type Step =
  | { kind: 'duplicate'; state: PatientState; messageId: string; patientId: string }
  | {
      kind: 'applied';
      state: PatientState;
      assessment: Assessment;
      notifications: Notification[];
      alerts: AlertChange[];
      /** The message's content digest (with its messageId, its identity). */
      digest: string;
      /** The messageId was applied before with other content: this is a new observation under a reused id. */
      reusedId: boolean;
      /**
       * The id of the grading settings this message was graded under (config.ts gradingSettingsId), when the patient's
       * state was not graded under them: its first message, a state stored before 2026-12-07, or settings changed
       * since its last message (`former`: their id). Absent when they are the state's: the audit trail records the
       * settings of each assessment by the entry that first names them (app/grade.ts).
       */
      settings?: { id: string; former?: string };
    };

const TOCILIZUMAB_HISTORY = 16;
/** How many placements of messages dated ahead of their arrival are kept (the latest by observedAt). */
const PLACED_AHEAD_KEPT = 32;

/** How far past the one before it an instant dated ahead goes when its arrival is taken (placement). */
const AHEAD_STEP_MS = 16;

/**
 * Where a message observed at `observed` is placed: at its arrival when that is earlier (a value dated ahead of it, a
 * fast device clock, cannot outrank the corrections that follow it), and at the instant an earlier message of the
 * same observedAt was placed, so that messages of one instant stay one instant (section 1: a correction, the halves
 * of a panel) wherever their own arrivals fall. Instants dated ahead stay distinct and in observedAt order: one whose
 * arrival an instant placed before has taken or passed in that order (readings of one request, all arrived at once)
 * goes between its neighbours, AHEAD_STEP_MS after the last one when it is the latest, so a few milliseconds past its
 * arrival. Two kept 1 ms apart leave no time between them: a third observed between them is placed with the earlier.
 */
function placement(placed: PatientState['placedAhead'], observed: number, receivedAt: number | undefined): number {
  let lo = Number.NEGATIVE_INFINITY; // where the latest instant observed before this one was placed
  let hi = Number.POSITIVE_INFINITY; // and the earliest observed after it (placed is in observedAt order)
  for (const [o, p] of placed) {
    if (o === observed) return p;
    if (o < observed) lo = p;
    else {
      hi = p;
      break;
    }
  }
  if (receivedAt === undefined || receivedAt >= observed) return observed;
  if (receivedAt > lo && receivedAt < hi) return receivedAt;
  const between =
    hi === Number.POSITIVE_INFINITY
      ? lo + AHEAD_STEP_MS
      : lo === Number.NEGATIVE_INFINITY
        ? hi - AHEAD_STEP_MS
        : Math.floor((lo + hi) / 2);
  const t = Math.min(between, observed - 1); // still ahead of its observedAt: kept among the placements
  return Math.max(t, lo);
}

function withPlacement(placed: PatientState['placedAhead'], observed: number, t: number): PatientState['placedAhead'] {
  if (placed.some(([o]) => o === observed)) return placed;
  const out = [...placed, [observed, t] as [number, number]].sort((a, b) => a[0] - b[0]);
  return out.length > PLACED_AHEAD_KEPT ? out.slice(out.length - PLACED_AHEAD_KEPT) : out;
}
/** How many of the latest febrile readings are kept once they have left the fever window (the waiver's fevers). */
const FEVERS_BEYOND_WINDOW = 8;

function latest<T>(cur: Timed<T> | undefined, v: T, t: number): Timed<T> {
  // Ties go to the later arrival, so a correction sent for the same instant wins.
  return cur && cur.t > t ? cur : { v, t };
}

/** The fields of the state that say whether the patient's monitoring has ended (paging.ts monitoringEnded). */
type MonitoringFields = Pick<PatientState, 'monitoringEnd' | 'lastEnrolmentAt' | 'readmittedAt' | 'enrolmentsSinceEnd'>;

/**
 * How many enrolments (not a monitor's) at or after the end of monitoring a state keeps, the latest (enrolmentsSinceEnd):
 * a re-admission and the moves and updates the EHR or charting sends after it before a late discharge is charted.
 */
export const ENROLMENTS_KEPT = 16;

/**
 * The end of monitoring and the re-admission a message observed at `t` carries, folded in as grading does: the latest
 * of each by time (an enrolment from a monitor is not a re-admission), so folding a message in again changes nothing.
 * The board's checks fold in its own changes still waiting to be graded with this (app/monitoring.ts).
 */
export function monitoringFields(s: MonitoringFields, msg: DeviceMessage, t: number): MonitoringFields {
  const monitoringEnd = msg.monitoringEnd ? latest(s.monitoringEnd, msg.monitoringEnd.reason, t) : s.monitoringEnd;
  const enrolled = msg.enrolment && msg.source.kind !== 'monitor' ? t : undefined;
  const since = sinceEnd(s.enrolmentsSinceEnd, enrolled, monitoringEnd?.t ?? Number.NEGATIVE_INFINITY);
  return {
    monitoringEnd,
    lastEnrolmentAt: enrolled === undefined ? s.lastEnrolmentAt : Math.max(s.lastEnrolmentAt ?? t, t),
    readmittedAt: monitoringEnd && readmission(s, monitoringEnd.t, enrolled, since[0]),
    enrolmentsSinceEnd: since,
  };
}

/**
 * The enrolments kept at or after the end at `end` (every one without an end), with the one `enrolled` now: the
 * latest ENROLMENTS_KEPT of those observed at or after it, in time order. What it keeps depends only on which
 * enrolments and ends were applied, never on the order they arrived in: a later end (ends only move later) drops
 * those before it, and the latest ENROLMENTS_KEPT of the rest are those it had kept that are at or after it, or every
 * one of them when fewer. Unchanged (the same array) when nothing changes.
 */
function sinceEnd(kept: readonly number[], enrolled: number | undefined, end: number): number[] {
  let out = kept[0] !== undefined && kept[0] < end ? kept.filter((x) => x >= end) : (kept as number[]);
  // Not one older than every one of a full array: it would be dropped again (a copy would be no change).
  const dropped = out.length >= ENROLMENTS_KEPT && enrolled !== undefined && enrolled < out[0]!;
  if (enrolled !== undefined && enrolled >= end && !dropped && !out.includes(enrolled))
    out = [...out, enrolled].sort((a, b) => a - b);
  return out.length > ENROLMENTS_KEPT ? out.slice(out.length - ENROLMENTS_KEPT) : out;
}

/**
 * The earliest enrolment (not a monitor's) at or after the end of monitoring at `end`: the earliest of those kept
 * since the end (`first`, enrolmentsSinceEnd), which is it whatever order they arrived in while fewer than
 * ENROLMENTS_KEPT came at or after the end. Beyond that, or in a state stored before they were kept, the earlier of
 * it and the one the state had (readmittedAt, the one `enrolled` now, the latest enrolment standing in when the end
 * came after them): exact when the end arrived before the enrolments, else a later one. Until 2026-12-07 only the
 * latter: an end charted after the re-admission and a move counted the watch from the move, in that order only.
 */
function readmission(
  s: MonitoringFields,
  end: number,
  enrolled: number | undefined,
  first: number | undefined,
): number | undefined {
  const kept = s.readmittedAt !== undefined && s.readmittedAt >= end ? s.readmittedAt : s.lastEnrolmentAt;
  const known = kept !== undefined && kept >= end ? kept : undefined;
  const had =
    enrolled === undefined || enrolled < end ? known : known === undefined ? enrolled : Math.min(known, enrolled);
  return had === undefined ? first : first === undefined ? had : Math.min(had, first);
}

function mergeFields<T extends object>(target: TimedFields<T>, section: Partial<T>, t: number): TimedFields<T> {
  const out: TimedFields<T> = { ...target };
  // for-in, not Object.keys: no array per section (a validated section is a plain object with only its own fields).
  for (const k in section) {
    const key = k as keyof T;
    const v = section[key];
    if (v === undefined) continue;
    out[key] = latest(out[key], v as NonNullable<T[keyof T]>, t) as TimedFields<T>[keyof T];
  }
  return out;
}

/**
 * A temperature into the kept febrile readings (in time order, one per instant). A temperature at
 * the instant of a kept one is a correction and replaces it (one below the threshold removes it). Kept: the latest
 * `keep`, and every earlier one that no later reading covers (is at least as high as): the peak and the latest
 * are always known, and a correction lowering a kept reading finds the ones it covered while fewer than `keep`
 * came after them. Without corrections the kept set does not depend on the arrival order: a reading is left out
 * only when it is covered and `keep` later ones are kept, which stays true as more arrive. Those left out widen the
 * span of dropped ones (s.feverDropped).
 */
function addTemperature(
  s: PatientState,
  t: number,
  c: number,
  febrile: boolean,
  keep: number,
): PatientState['febrile'] {
  const readings = s.febrile;
  let atInstant = false; // a reading at this instant is kept (they are in time order: look back to it, no further)
  for (let i = readings.length - 1; i >= 0 && !atInstant && readings[i]![0] >= t; i--)
    atInstant = readings[i]![0] === t;
  // Most temperatures are not febrile and correct none: the readings stay as they are (no copy).
  if (!febrile && !atInstant && readings.length <= keep) return readings;
  const out = atInstant ? readings.filter(([t2]) => t2 !== t) : readings.slice();
  if (febrile) {
    let i = out.length;
    while (i > 0 && out[i - 1]![0] > t) i--;
    out.splice(i, 0, [t, c]);
  }
  if (out.length <= keep) return out;
  const kept: PatientState['febrile'] = [];
  let laterPeak = Number.NEGATIVE_INFINITY;
  for (let i = out.length - 1; i >= 0; i--) {
    const e = out[i]!;
    if (out.length - i <= keep || e[1] > laterPeak) kept.push(e);
    else widenDropped(s, e[0]);
    laterPeak = Math.max(laterPeak, e[1]);
  }
  return kept.reverse();
}

/**
 * The span of dropped febrile readings with one more (grading.ts droppedFeverMasked: the waiver may rest on it). Only
 * readings of the episode as it stands: one of an earlier episode would bridge the gap to the next one's, and waive
 * fever for a masking drug given in the new episode before any fever of its own (a re-infusion, a step-up dose).
 */
function widenDropped(s: PatientState, t: number): void {
  if (t < episodeStart(s)) return;
  const span = s.feverDropped;
  s.feverDropped = span === undefined ? [t, t] : [Math.min(span[0], t), Math.max(span[1], t)];
}

/** After the episode start moved: a span wholly before it is of an earlier episode (widenDropped). */
function clipDropped(s: PatientState): void {
  if (s.feverDropped && s.feverDropped[1] < episodeStart(s)) s.feverDropped = undefined;
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
  const words = `SpO2 ${a[1]} % then ${b[1]} % (below ${below} %) with no oxygen support documented at `;
  return { warning: 'spo2-low-without-oxygen', at, parts: [words, { at }], text: `${words}${at}` };
}

/**
 * Whether a low-SpO2 warning in force clears: oxygen support documented, or the last two readings at or above the
 * threshold (two to raise, two to clear, as hypotension). Until 2026-12-06 one reading cleared it: SpO2 hovering at
 * 90 % paged both teams a warning and an all-clear at every dip (docs/safety.md, alarm fatigue).
 */
function spo2Recovered(s: PatientState, config: GradingConfig): boolean {
  if (s.oxygen && s.oxygen.v.device !== 'room_air') return true;
  const below = config.paging.spo2WarningBelow;
  return s.spo2.length === 2 && s.spo2.every(([, v]) => v >= below);
}

/**
 * What cleared a low-SpO2 warning, in the words of the warning: oxygen support documented (its device and time, and
 * the last reading's value, which may still be low), or the two readings back at or above the threshold (their values, the
 * time of the second). Until 2026-12-07 every all-clear read "SpO2 no longer low without oxygen support", with no
 * value or time, also when the readings were still low and oxygen had been put on.
 */
function spo2ClearedText(s: PatientState, timeZone: string): string {
  const last = s.spo2.at(-1);
  if (s.oxygen && s.oxygen.v.device !== 'room_air') {
    // The reading's value alone: its time (before the oxygen's) would take the SMS to a second part.
    const o2 = `oxygen support (${OXYGEN_DEVICE_NAMES[s.oxygen.v.device]}) at ${formatSiteTime(s.oxygen.t, timeZone)}`;
    return last ? `${o2}; last SpO2 ${last[1]} %` : o2;
  }
  const values = s.spo2.map(([, v]) => `${v} %`).join(' then ');
  return last ? `SpO2 no longer low: ${values} at ${formatSiteTime(last[0], timeZone)}` : 'SpO2 no longer low';
}

function addTime(times: number[], t: number, keep: number): number[] {
  if (times.includes(t)) return times;
  const out = [...times, t].sort((a, b) => a - b);
  return out.length > keep ? out.slice(out.length - keep) : out;
}

function applyMessage(prev: PatientState, msg: DeviceMessage, t: number, config: GradingConfig): PatientState {
  const s = copyState(prev);
  s.clock = Math.max(prev.clock, t);

  const latestInfusion = config.episodeStart === 'latest-infusion';
  // A state kept under "latest-infusion" read under the default: the enrolment observed last says again.
  if (msg.enrolment || (prev.latestInfusedAt !== undefined && !latestInfusion)) {
    // The episode start may move either way (by default): the waiver reads it afresh (grading.ts); only
    // unmaskedFever, a fever of the episode, is recomputed.
    const startBefore = episodeStart(s);
    const infusedBefore = episodeInfusion(s);
    if (msg.enrolment) {
      // Each threshold is a parameter of its own: one sent alone leaves the other as it was.
      const { hypotension, ...fields } = msg.enrolment;
      s.enrolment = mergeFields(
        s.enrolment,
        { ...fields, hypotensionSystolicBelow: hypotension?.systolicBelow, hypotensionMapBelow: hypotension?.mapBelow },
        t,
      );
    }
    s.latestInfusedAt = latestInfusion ? latestInfusedAt(prev, msg.enrolment?.infusedAt) : undefined;
    const infusedAfter = episodeInfusion(s);
    // A new infusion starts a new episode (the optional end at CRS 0 belongs to the old one).
    if (infusedBefore !== undefined && infusedAfter !== undefined && infusedAfter > infusedBefore) {
      s.episodeEndedAt = undefined;
      s.crsZeroSince = undefined;
    }
    if (episodeStart(s) !== startBefore) {
      s.unmaskedFever = knownUnmaskedFever(s, [s.unmaskedFever]);
      clipDropped(s);
    }
  }

  if (msg.vitals) {
    const v = msg.vitals;
    s.vitals = mergeFields(s.vitals, v, t);
    if (v.temperatureC !== undefined) {
      const febrile = v.temperatureC >= config.feverThresholdC;
      s.febrile = addTemperature(s, t, v.temperatureC, febrile, config.feverHistory);
      if (febrile) {
        s.latestFever = Math.max(s.latestFever ?? t, t);
        if (s.lastMaskingAt !== undefined && t <= s.lastMaskingAt) s.maskedFever = Math.max(s.maskedFever ?? t, t);
        else if ((s.unmaskedFever === undefined || t < s.unmaskedFever) && t >= episodeStart(s)) s.unmaskedFever = t;
      } else {
        // A correction below the threshold at a fever's instant: the latest kept febrile reading before it stands
        // in (one the corrected reading covered, or that left the window, is not known: docs/grading-rules.md).
        if (t === s.latestFever) s.latestFever = keptFeverBefore(s.febrile, t);
        if (t === s.maskedFever) s.maskedFever = keptFeverBefore(s.febrile, t);
        if (t === s.unmaskedFever) s.unmaskedFever = knownUnmaskedFever(s);
      }
    }
  }
  const reading: BpReading | undefined =
    msg.vitals && (msg.vitals.systolicBP !== undefined || msg.vitals.meanArterialPressure !== undefined)
      ? [t, msg.vitals.systolicBP ?? null, msg.vitals.meanArterialPressure ?? null]
      : undefined;
  const point: PressorPoint | undefined = msg.vasopressors ? [t, msg.vasopressors.some((p) => p.dose > 0)] : undefined;
  const th = hypotensionThresholds(s, config);
  if (reading || point) addToHistory(s, reading, point, config.bpHistory, config.vasopressorHistory, th);
  else s.bpMemo = memoFor(s, th); // the one it has, unless the state was just read or the thresholds changed

  if (msg.source.kind === 'monitor') s.lastMonitorAt = Math.max(s.lastMonitorAt ?? t, t);
  if (msg.enrolment) s.firstEnrolledAt = Math.min(s.firstEnrolledAt ?? enrolledAt(prev), t);
  if (msg.monitoringEnd || msg.enrolment) {
    const m = monitoringFields(s, msg, t);
    s.monitoringEnd = m.monitoringEnd;
    s.lastEnrolmentAt = m.lastEnrolmentAt;
    s.readmittedAt = m.readmittedAt;
    s.enrolmentsSinceEnd = m.enrolmentsSinceEnd;
  }
  if (msg.vitals?.spo2 !== undefined) s.spo2 = lastTwo(s.spo2, t, msg.vitals.spo2);
  if (msg.oxygen) s.oxygen = latest(s.oxygen, msg.oxygen, t);
  if (msg.vasopressors) s.vasopressors = latest(s.vasopressors, msg.vasopressors, t);
  if (msg.neuro) s.neuro = mergeFields(s.neuro, msg.neuro, t);
  if (msg.organToxicity) s.organ = mergeFields(s.organ, msg.organToxicity, t);
  if (msg.labs) s.labs = mergeFields(s.labs, msg.labs, t);

  if (msg.medications && msg.medications.length > 0) {
    s.lastGiven = { ...s.lastGiven };
    for (const m of msg.medications) {
      // A dose of 0 mg was not given (an eMAR's held dose), as a vasopressor at 0 is not infusing: it is no
      // tocilizumab dose towards the caps and masks no fever.
      if (m.doseMg === 0) continue;
      s.lastGiven[m.drug] = Math.max(s.lastGiven[m.drug] ?? t, t);
      if (m.drug === 'tocilizumab') s.tocilizumab = addTime(s.tocilizumab, t, TOCILIZUMAB_HISTORY);
      if (config.feverMaskingDrugs.includes(m.drug) && (s.lastMaskingAt === undefined || t > s.lastMaskingAt))
        maskAt(s, t);
    }
  }

  // A febrile reading that has left the fever window no longer makes a fever, but the waiver may still rest on it
  // for the rest of the episode: a correction of a later fever, or a masking medication charted late, looks for it
  // (keptFeverBefore). So the latest FEVERS_BEYOND_WINDOW febrile readings stay whatever their age (at most
  // feverHistory); the others go once they leave the window. Not all feverHistory of them: a probe's hour of fever
  // kept for the rest of the stay took the AWS state item past 1 KB, two write units at every message. The span of
  // those dropped is kept instead (feverDropped): a waiver that may rest on one of them holds (section 4).
  const windowStart = s.clock - config.feverWindowMinutes * MINUTE;
  const keepFrom = s.febrile.length - Math.min(config.feverHistory, FEVERS_BEYOND_WINDOW);
  if (keepFrom > 0 && s.febrile[0]![0] < windowStart)
    s.febrile = s.febrile.filter(([ft], i) => {
      const kept = ft >= windowStart || i >= keepFrom;
      if (!kept) widenDropped(s, ft);
      return kept;
    });
  return s;
}

/**
 * The latest infusion time of every enrolment applied (episodeStart "latest-infusion"): the one kept, the current
 * enrolment's (a state stored before the option, or kept under the default, knows only that one) and `given`.
 */
function latestInfusedAt(prev: PatientState, given: string | undefined): number | undefined {
  let out = prev.latestInfusedAt;
  for (const at of [prev.enrolment.infusedAt?.v, given]) {
    if (at === undefined) continue;
    const t = parseTime(at);
    if (out === undefined || t > out) out = t;
  }
  return out;
}

/**
 * The latest kept febrile reading observed before `t`, or at it when `inclusive`: one of the latest `feverHistory`
 * febrile readings, in the fever window or not, or an earlier one still in the window.
 */
function keptFeverBefore(queue: PatientState['febrile'], t: number, inclusive = false): number | undefined {
  for (let i = queue.length - 1; i >= 0; i--) {
    const ft = queue[i]![0];
    if (ft < t || (inclusive && ft === t)) return ft;
  }
  return undefined;
}

/**
 * A fever-masking medication at `m`, later than any before: maskedFever becomes a fever at or before it. The latest
 * fever ever when that is not after it (exact). Otherwise the later of the latest kept one at or before it and
 * unmaskedFever when that is at or before it: unmaskedFever is the earliest fever of the episode after the masking
 * medications before, so the episode has a fever in between exactly when it is at or before `m` (a kept one before
 * `m` may be an earlier one, which only helps when it is in the episode). Then unmaskedFever, now masked, moves to
 * the earliest known fever of the episode after `m`: maybe later than the earliest (that one may not be kept), which
 * changes no waiver while the episode start stays where it is, because the waiver already holds on maskedFever.
 */
function maskAt(s: PatientState, m: number): void {
  s.lastMaskingAt = m;
  if (s.latestFever !== undefined && s.latestFever <= m) {
    s.maskedFever = s.latestFever;
    s.unmaskedFever = undefined; // no fever after m is known
    return;
  }
  const kept = keptFeverBefore(s.febrile, m, true);
  const unmasked = s.unmaskedFever !== undefined && s.unmaskedFever <= m ? s.unmaskedFever : undefined;
  const fever = kept === undefined ? unmasked : unmasked === undefined ? kept : Math.max(kept, unmasked);
  if (fever !== undefined && (s.maskedFever === undefined || fever > s.maskedFever)) s.maskedFever = fever;
  if (unmasked !== undefined) {
    s.unmaskedFever = knownUnmaskedFever(s);
  }
}

/**
 * The optional end of an episode after a time at CRS 0 (episodeEndsAfterHoursAtGrade0). It is measured on the
 * patient clock from when the grade was computed as 0, so unlike the grades it depends on arrival order.
 */
function trackEpisode(s: PatientState, crsGrade: number, config: GradingConfig): void {
  if (crsGrade >= 1) {
    s.crsZeroSince = undefined;
    return;
  }
  s.crsZeroSince ??= s.clock;
  const endAfter = config.episodeEndsAfterHoursAtGrade0;
  // Only an episode that has had a fever ends (and then fevers before the end are not its own: episodeStart).
  const hadFever = s.latestFever !== undefined && s.latestFever >= episodeStart(s);
  if (endAfter !== null && hadFever && s.clock - s.crsZeroSince >= endAfter * HOUR) {
    s.episodeEndedAt = s.clock;
    s.unmaskedFever = knownUnmaskedFever(s, [s.unmaskedFever]); // the fevers before the end are not the new episode's
    clipDropped(s);
  }
}

interface Decision {
  next: NotifiedGrade;
  page?: { kind: 'escalation' | 'de-escalation'; fromGrade: number; toGrade: number; teams: Team[] };
}

/** Escalate at once; de-escalate once the grade has stayed below the notified grade for the hold time. */
function decide(n: NotifiedGrade, grade: number, clock: number, condition: Condition, config: GradingConfig): Decision {
  if (grade > n.grade) {
    const teams = [...config.routing[condition][grade - 1]!];
    return { next: { grade, teams }, page: { kind: 'escalation', fromGrade: n.grade, toGrade: grade, teams } };
  }
  if (grade === n.grade) return { next: n.belowSince === undefined ? n : { grade: n.grade, teams: n.teams } };
  const belowSince = n.belowSince ?? clock;
  if (clock - belowSince >= config.holdMinutes * MINUTE) {
    // The stand-down goes to everyone paged at the notified grade; they stay the audience until it is 0.
    const teams = n.teams;
    return {
      next: { grade, teams: grade === 0 ? [] : teams },
      page: { kind: 'de-escalation', fromGrade: n.grade, toGrade: grade, teams },
    };
  }
  return { next: n.belowSince === belowSince ? n : { ...n, belowSince } };
}

/** The condition's notified grade after this grading, and its page (into `notifications`) when the grade changed. */
function page(
  s: PatientState,
  condition: Condition,
  graded: Graded,
  crsGrade: number,
  causedBy: string,
  config: GradingConfig,
  notifications: Notification[],
  settingsChanged: SettingsChange | undefined,
): NotifiedGrade {
  const n = s.notified[condition];
  // Most messages leave the grade as notified: nothing to decide.
  if (graded.grade === n.grade && n.belowSince === undefined) return n;
  const d = decide(n, graded.grade, s.clock, condition, config);
  if (d.page) {
    notifications.push(
      buildPage({
        state: s,
        config,
        condition,
        ...d.page,
        // ICANS at 0 has no domain above normal: the page names the normal values it rests on (section 6).
        reasons: condition === 'icans' && graded.grade === 0 ? icansNormalReasons(s) : graded.reasons,
        crsGrade,
        causedBy,
        ...(settingsChanged ? { settingsChanged } : {}),
      }),
    );
  }
  return d.next;
}

// The assessment's ICANS reasons say so in their text; worked out once per (shared, frozen) ICANS result.
const labelled = new WeakMap<Graded, Reason[]>();
function labelledIcans(icans: Graded): Reason[] {
  let out = labelled.get(icans);
  if (!out)
    labelled.set(
      icans,
      (out = Object.freeze(
        icans.reasons.map((r) => Object.freeze({ ...r, parts: ['ICANS ', ...r.parts], text: `ICANS ${r.text}` })),
      ) as unknown as Reason[]),
    );
  return out;
}

/**
 * Applies one validated message to a patient's state (crs-rules.md v1.1 item 8 for identity). A message whose
 * messageId and content digest match one already applied (in the state's window, or among `priorDigests`) is a
 * duplicate: the state is returned unchanged and nothing is assessed or sent. The same messageId with another
 * digest is a new observation (`reusedId`).
 */
export function reduce(
  prev: PatientState | undefined,
  msg: DeviceMessage,
  config: GradingConfig,
  arrival: Arrival,
): Step {
  const base = prev ?? emptyState(msg.patientId);
  if (base.patientId !== msg.patientId) {
    throw new Error(`state of patient ${base.patientId} given a message for ${msg.patientId}`);
  }
  const identity = identify(base.seen, msg.messageId, arrival.digest, arrival.priorDigests);
  if (identity === 'duplicate') {
    return { kind: 'duplicate', state: base, messageId: msg.messageId, patientId: msg.patientId };
  }
  const observed = parseTime(msg.observedAt);
  // aheadOfArrival "observedAt": no arrival is taken, as in a replay (an instant placed before under the default
  // stays where it was, so that its correction still merges with it).
  const receivedAt = config.aheadOfArrival === 'arrival' ? arrival.receivedAt : undefined;
  const t = placement(base.placedAhead, observed, receivedAt);
  const s = applyMessage(base, msg, t, config);
  if (t !== observed) s.placedAhead = withPlacement(base.placedAhead, observed, t);
  s.seq = base.seq + 1;
  s.seen = addSeen(base.seen, msg.messageId, arrival.digest, config.dedupeWindow);

  const crs = gradeCrs(s, config);
  const icans = gradeIcans(s);
  trackEpisode(s, crs.grade, config);

  // The settings the state was graded under, and these: a grade change at the first message under others may come
  // from the configuration, not the patient, and its page says so.
  const settings = gradingSettingsId(config);
  const former = base.gradedUnder;
  const changed = former !== undefined && former !== settings ? { from: former, to: settings } : undefined;
  if (former !== settings) s.gradedUnder = settings;

  const notifications: Notification[] = [];
  const crsNotified = page(s, 'crs', crs, crs.grade, msg.messageId, config, notifications, changed);
  const icansNotified = page(s, 'icans', icans, crs.grade, msg.messageId, config, notifications, changed);
  if (crsNotified !== s.notified.crs || icansNotified !== s.notified.icans)
    s.notified = { crs: crsNotified, icans: icansNotified };

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
  if (warning ? !s.spo2Alert : s.spo2Alert && spo2Recovered(s, config)) {
    s.spo2Alert = warning !== undefined;
    const where = s.enrolment.bed ? `patient ${s.patientId}, bed ${s.enrolment.bed.v}` : `patient ${s.patientId}`;
    alerts.push({
      alertId: changeId('spo2', s),
      patientId: s.patientId,
      subject: 'spo2',
      cleared: !warning,
      summary: warning
        ? `WARNING (not a grade), ${where}: ${reasonText(warning, config.site.timeZone)}`
        : `Cleared, ${where}: ${spo2ClearedText(s, config.site.timeZone)}`,
      at: assessment.at,
    });
  }
  return {
    kind: 'applied',
    state: s,
    assessment,
    notifications,
    alerts,
    digest: arrival.digest,
    reusedId: identity === 'reused',
    ...(former !== settings ? { settings: { id: settings, ...(former !== undefined ? { former } : {}) } } : {}),
  };
}
