// The per-patient state: one compact JSON document (it lives in one DynamoDB item, hard limit 400 KB).
// It keeps the latest value of each parameter and only the history the rules need, each part bounded.
import { NOTHING_FOLDED, type BpFold, type BpMemo, type BpReading, type Last, type PressorPoint } from './bp.ts';
import type { Condition, Team } from './config.ts';
import type { MedicationDrug, MonitoringEndReason, NeuroSection, OxygenSection, VasopressorEntry } from './contract.ts';
import { droppedFeverMasked, episodeStart } from './grading.ts';
import type { SeenIds } from './seen.ts';

/** A value with the observedAt (epoch ms) it was measured at; a later observation replaces an earlier one. */
export interface Timed<T> {
  v: T;
  t: number;
}

export type TimedFields<T> = { [K in keyof T]?: Timed<NonNullable<T[K]>> };

export interface EnrolmentFields {
  therapy: 'car-t' | 'bispecific';
  product: string;
  infusedAt: string;
  weightKg: number;
  bed: string;
  ward: string;
  /**
   * A patient's own hypotension thresholds (`enrolment.hypotension`), each with its own observedAt: a message that
   * sends one leaves the other as it was (rules 1.1 section 1: each parameter keeps its latest value).
   */
  hypotensionSystolicBelow: number;
  hypotensionMapBelow: number;
}

/** The thresholds as the code before them kept them: one field, both thresholds with one time. */
type LegacyThresholds = Timed<{ systolicBelow?: number; mapBelow?: number }>;

/** The enrolment's fields as stored: with the thresholds also in their old form, for the code before (a rollback). */
export type StoredEnrolmentFields = EnrolmentFields & { hypotension: LegacyThresholds['v'] };
export type StoredEnrolment = TimedFields<StoredEnrolmentFields>;

export interface VitalFields {
  temperatureC: number;
  heartRate: number;
  respiratoryRate: number;
  systolicBP: number;
  diastolicBP: number;
  meanArterialPressure: number;
  spo2: number;
}

export interface OrganFields {
  maxCtcaeGrade: number;
  transaminitisGrade: number;
}

export type NeuroFields = Required<{ [K in keyof NeuroSection]: NonNullable<NeuroSection[K]> }>;

export interface LabFields {
  crpMgL: number;
  ferritinNgMl: number;
  il6PgMl: number;
}

export interface NotifiedGrade {
  /** The grade in the last notification sent for this condition (0: none, or de-escalated to 0). */
  grade: number;
  /** The teams that notification went to (de-escalation goes to them). */
  teams: Team[];
  /** Patient clock (ms) when the current grade first fell below the notified grade; absent when not below. */
  belowSince?: number;
}

export interface PatientState {
  v: 2;
  patientId: string;
  /** The patient clock: the latest observedAt seen (epoch ms). Grades are computed as of this time. */
  clock: number;
  /** How many messages have been applied (the last one's sequence number): notification and alert ids use it. */
  seq: number;
  enrolment: TimedFields<EnrolmentFields>;
  /**
   * With episodeStart "latest-infusion" (config.ts), the latest `infusedAt` of every enrolment applied (epoch ms):
   * the infusion the episode is of, whatever the enrolment observed last says (grading.ts episodeInfusion).
   * Undefined otherwise, and in a state stored before the option (its next enrolment takes its current infusedAt).
   */
  latestInfusedAt: number | undefined;
  vitals: TimedFields<VitalFields>;
  oxygen: Timed<OxygenSection> | undefined;
  vasopressors: Timed<VasopressorEntry[]> | undefined;
  /** Each neuro field with its own observedAt (a field left out of a message keeps its value). */
  neuro: TimedFields<NeuroFields>;
  organ: TimedFields<OrganFields>;
  labs: TimedFields<LabFields>;
  /** Febrile temperatures as [t, °C] in time order: the latest config.feverHistory of the fever window (8 of those that left it: the waiver may rest on one), and every one in the window no later reading covers (reducer.ts). */
  febrile: [t: number, temperatureC: number][];
  /** Latest observedAt of a febrile temperature ever seen (the episode has had a fever when it is in the episode). */
  latestFever: number | undefined;
  /**
   * Latest observedAt of a febrile temperature at or before the latest fever-masking medication (lastMaskingAt):
   * the fever waiver holds when it is in the episode (a fever, then a masking medication, both in the episode). For
   * a medication charted after later fevers, a fever of the episode before it, maybe not the latest (reducer.ts).
   */
  maskedFever: number | undefined;
  /**
   * The earliest observedAt of a febrile temperature in the episode (at or after its start) later than every
   * fever-masking medication (any, before the first): the fever the next masking medication follows when it is
   * charted after later fevers (those that the fever window's queue keeps may not include it). It is exact while
   * no fever of the episode is masked; once one is, it is a fever of the episode after the medication, maybe later
   * than the earliest (docs/grading-rules.md section 4).
   */
  unmaskedFever: number | undefined;
  /**
   * The span [first, last] of the febrile readings dropped from `febrile` (covered ones past feverHistory, and those
   * that left the fever window past the latest FEVERS_BEYOND_WINDOW) in the episode as it stood at each drop, and
   * cleared when the episode start moves past it (reducer.ts widenDropped, clipDropped): the waiver takes one of
   * them as a fever of the episode before the latest masking medication when the span allows it (grading.ts
   * droppedFeverMasked; docs/grading-rules.md section 4). Undefined: none dropped.
   */
  feverDropped: [first: number, last: number] | undefined;
  /** Blood-pressure readings by observedAt (the newest config.bpHistory), see bp.ts. */
  bp: BpReading[];
  /** Vasopressor sections by observedAt, as [t, infusing] (the newest config.vasopressorHistory). */
  pressors: PressorPoint[];
  /** The hypotension rule's state over the readings and sections folded out of the two lists above. */
  bpFold: BpFold;
  /** The rule's walk over the history, cached for the next message (never stored), see bp.ts. */
  bpMemo: BpMemo | undefined;
  /** Tocilizumab dose times (ms), ascending, unique, the most recent 16. */
  tocilizumab: number[];
  /** Latest time each medication was given. */
  lastGiven: Partial<Record<MedicationDrug, number>>;
  /** Latest observedAt of a fever-masking medication. */
  lastMaskingAt: number | undefined;
  /** Patient clock when the optional end of an episode at CRS 0 (episodeEndsAfterHoursAtGrade0) ended one. */
  episodeEndedAt: number | undefined;
  /** Patient clock since when the CRS grade has been 0 (for the optional episode end). */
  crsZeroSince: number | undefined;
  notified: Record<Condition, NotifiedGrade>;
  /** Latest observedAt of a message from a bedside monitor (source.kind "monitor"), for the stale-feed alert. */
  lastMonitorAt: number | undefined;
  /**
   * The latest end of monitoring (`monitoringEnd`, a discharge) by observedAt: the stale-feed watch stops until a
   * re-admission (paging.ts monitoringEnded).
   */
  monitoringEnd: Timed<MonitoringEndReason> | undefined;
  /**
   * Latest observedAt of an enrolment from a source other than a bedside monitor (the EHR, charting): after an end of
   * monitoring, a re-admission (a monitor's enrolment is the bed and ward it sends with every reading).
   */
  lastEnrolmentAt: number | undefined;
  /**
   * The re-admission after the end of monitoring in force: the earliest observedAt of an enrolment from a source other
   * than a bedside monitor at or after monitoringEnd (reducer.ts monitoringFields), so that a move after it (a later
   * enrolment with a new bed and ward) does not restart the stale-feed watch again (paging.ts feedStatus). Undefined
   * when there is none, or in a state stored before it was kept (2026-12-07): lastEnrolmentAt stands in, as it did.
   */
  readmittedAt: number | undefined;
  /**
   * The observedAt of the enrolments from a source other than a bedside monitor at or after monitoringEnd (every one
   * while there is none), ascending, the latest ENROLMENTS_KEPT (reducer.ts): readmittedAt is the earliest of them, so
   * that an end charted after the re-admission and a move finds the re-admission, whatever order they arrived in
   * (2026-12-07; before, the latest enrolment stood in). Empty in a state stored before it was kept.
   */
  enrolmentsSinceEnd: number[];
  /**
   * Earliest observedAt of an enrolment from any source: the stale-feed watch of a patient no monitor has sent for
   * counts from it, and a transfer (a later enrolment with a new bed and ward) does not move it (paging.ts
   * feedStatus). Undefined in a state stored before it was kept (2026-12-07): the enrolment fields' earliest time
   * stands in, and the next enrolment applied keeps the earlier of the two.
   */
  firstEnrolledAt: number | undefined;
  /**
   * Where messages dated ahead of their arrival were placed (section 1: at the arrival), as [observedAt, placed] in
   * observedAt order, the latest PLACED_AHEAD_KEPT (reducer.ts): a later message for the same observedAt (a
   * correction, the other half of a panel) is placed at the same instant, so that it merges with the first.
   */
  placedAhead: [observedAt: number, placedAt: number][];
  /** The last two SpO2 readings by observedAt, [t, %], for the low-SpO2 warning. */
  spo2: [t: number, spo2: number][];
  /** Whether the low-SpO2 warning is raised (it is raised and cleared once each). */
  spo2Alert: boolean;
  /** Identities (messageId, digest) of the most recent applied messages (at least config.dedupeWindow), see seen.ts. */
  seen: SeenIds;
  /**
   * The id of the grading settings the last message was graded under (config.ts gradingSettingsId): the next
   * message graded under others says so (reducer.ts). Undefined in an empty state and in one stored before
   * 2026-12-07 (its settings are not known: its next message records the settings of now, and claims no change).
   */
  gradedUnder: string | undefined;
}

const STATE_VERSION = 2;

/**
 * A patient's state in a data directory restored from a backup at `restoredAt` (epoch ms; 2026-12-07): its sequence,
 * whose number the ids of its grade changes and alerts carry (changeId), moved on by `restoredAt`. The server the
 * backup was of went on after it, and what it paged carried the numbers that follow the backup's: counting on from
 * the backup gave other grade changes those ids, and a receiver drops a repeat by id (the grade change was never
 * delivered). No server applies as many messages to a patient as there are milliseconds since 1970, nor a restored
 * one as many as between its restore and a later one. A patient with no state yet (first seen after the backup,
 * perhaps by the lost server too) starts there as well. The order of a patient's changes is kept.
 */
export function movedOnByRestore(state: PatientState | undefined, patientId: string, restoredAt: number): PatientState {
  const s = state ?? emptyState(patientId);
  return { ...s, seq: s.seq + restoredAt };
}

/**
 * A state with every key present, in one fixed order: states then share one object shape, which keeps the
 * reducer fast. Keys without a value yet are undefined (and left out of the JSON).
 */
export function emptyState(patientId: string): PatientState {
  return copyState({
    v: 2,
    patientId,
    clock: Number.NEGATIVE_INFINITY,
    seq: 0,
    enrolment: {},
    latestInfusedAt: undefined,
    vitals: {},
    oxygen: undefined,
    vasopressors: undefined,
    neuro: {},
    organ: {},
    labs: {},
    febrile: [],
    latestFever: undefined,
    maskedFever: undefined,
    unmaskedFever: undefined,
    feverDropped: undefined,
    bp: [],
    pressors: [],
    bpFold: NOTHING_FOLDED,
    bpMemo: undefined,
    tocilizumab: [],
    lastGiven: {},
    lastMaskingAt: undefined,
    episodeEndedAt: undefined,
    crsZeroSince: undefined,
    notified: { crs: { grade: 0, teams: [] }, icans: { grade: 0, teams: [] } },
    lastMonitorAt: undefined,
    monitoringEnd: undefined,
    lastEnrolmentAt: undefined,
    readmittedAt: undefined,
    enrolmentsSinceEnd: [],
    firstEnrolledAt: undefined,
    placedAhead: [],
    spo2: [],
    spo2Alert: false,
    seen: [],
    gradedUnder: undefined,
  });
}

/**
 * When the patient was enrolled: the earliest enrolment applied (firstEnrolledAt), or for a state stored before it
 * was kept the earliest time of the enrolment fields it holds; Infinity when it has none. The stale-feed watch of a
 * patient no monitor has sent for counts from it (paging.ts feedStatus).
 */
export function enrolledAt(s: PatientState): number {
  if (s.firstEnrolledAt !== undefined) return s.firstEnrolledAt;
  let out = Number.POSITIVE_INFINITY;
  for (const f of Object.values(s.enrolment)) if (f.t < out) out = f.t;
  return out;
}

/**
 * A shallow copy with every key written out, in one order: one object literal, so every state has the same
 * hidden class (an object spread here was the reducer's most expensive line). The type lists every key as
 * required, so a key added to PatientState and forgotten here does not compile.
 */
export function copyState(s: PatientState): PatientState {
  return {
    v: s.v,
    patientId: s.patientId,
    clock: s.clock,
    seq: s.seq,
    enrolment: s.enrolment,
    latestInfusedAt: s.latestInfusedAt,
    vitals: s.vitals,
    oxygen: s.oxygen,
    vasopressors: s.vasopressors,
    neuro: s.neuro,
    organ: s.organ,
    labs: s.labs,
    febrile: s.febrile,
    latestFever: s.latestFever,
    maskedFever: s.maskedFever,
    unmaskedFever: s.unmaskedFever,
    feverDropped: s.feverDropped,
    bp: s.bp,
    pressors: s.pressors,
    bpFold: s.bpFold,
    bpMemo: s.bpMemo,
    tocilizumab: s.tocilizumab,
    lastGiven: s.lastGiven,
    lastMaskingAt: s.lastMaskingAt,
    episodeEndedAt: s.episodeEndedAt,
    crsZeroSince: s.crsZeroSince,
    notified: s.notified,
    lastMonitorAt: s.lastMonitorAt,
    monitoringEnd: s.monitoringEnd,
    lastEnrolmentAt: s.lastEnrolmentAt,
    readmittedAt: s.readmittedAt,
    enrolmentsSinceEnd: s.enrolmentsSinceEnd,
    firstEnrolledAt: s.firstEnrolledAt,
    placedAhead: s.placedAhead,
    spo2: s.spo2,
    spo2Alert: s.spo2Alert,
    seen: s.seen,
    gradedUnder: s.gradedUnder,
  };
}

// ------------------------------------------------------------------------------------------ stored form (JSON)
//
// Version 2 is the state above as JSON, except the blood-pressure history, which is most of a busy patient's
// state and is stored as flat lists of numbers with times in seconds (fractions for milliseconds):
//   bp:       [s0, sys0, map0, s1, sys1, map1, ...]   s0 = seconds before the clock, then seconds after the previous
//   pressors: [s0, on0, s1, on1, ...]                  the same times; on = 1 infusing, 0 not
//   bpFold:   [at, on, last, infusing, stoppedAt, pair, prev]
//             at and stoppedAt in seconds before the clock (null: none); on and infusing 1/0; last 0 none, 1 low,
//             2 normal; pair [s, sys, map, s, sys, map] and prev [s, sys, map] with s before the clock, or null
// systolic or MAP null when the reading had none. An empty state's clock (-Infinity) is null.

type Stored = Omit<PatientState, 'clock' | 'bp' | 'pressors' | 'bpFold' | 'bpMemo'> & {
  clock: number | null;
  bp: (number | null)[];
  pressors: number[];
  bpFold: [
    at: number | null,
    on: number,
    last: number,
    infusing: number,
    stoppedAt: number | null,
    pair: (number | null)[] | null,
    prev: (number | null)[] | null,
  ];
};

const secondsBefore = (clock: number, t: number) => (clock - t) / 1000;
const ms = (seconds: number) => Math.round(seconds * 1000);

function encodeTimes<T extends [number, ...unknown[]]>(
  list: T[],
  clock: number,
  values: (item: T, out: (number | null)[]) => void,
): (number | null)[] {
  const out: (number | null)[] = [];
  let prev = 0;
  for (let i = 0; i < list.length; i++) {
    const t = list[i]![0];
    out.push(i === 0 ? secondsBefore(clock, t) : (t - prev) / 1000);
    values(list[i]!, out);
    prev = t;
  }
  return out;
}

function decodeTimes<T>(flat: (number | null)[], width: number, clock: number, make: (t: number, i: number) => T): T[] {
  const out: T[] = [];
  let t = 0;
  for (let i = 0; i < flat.length; i += width) {
    t = i === 0 ? clock - ms(flat[0]!) : t + ms(flat[i]!);
    out.push(make(t, i));
  }
  return out;
}

const encodeReading = (clock: number, [t, sys, map]: BpReading): (number | null)[] => [
  secondsBefore(clock, t),
  sys,
  map,
];
const decodeReading = (clock: number, flat: (number | null)[], i: number): BpReading => [
  clock - ms(flat[i]!),
  flat[i + 1]!,
  flat[i + 2]!,
];

/** The blood-pressure history in its stored form (shared by version 2 and the compact form, state-compact.ts). */
export type StoredBp = Pick<Stored, 'bp' | 'pressors' | 'bpFold'>;

export function encodeBp(state: Pick<PatientState, 'clock' | 'bp' | 'pressors' | 'bpFold'>): StoredBp {
  const { clock, bpFold: f } = state;
  return {
    bp: encodeTimes(state.bp, clock, (r, out) => out.push(r[1], r[2])),
    pressors: encodeTimes(state.pressors, clock, (p, out) => out.push(p[1] ? 1 : 0)) as number[],
    bpFold: [
      f.at === Number.NEGATIVE_INFINITY ? null : secondsBefore(clock, f.at),
      f.on ? 1 : 0,
      f.last,
      f.infusing ? 1 : 0,
      f.stoppedAt === null ? null : secondsBefore(clock, f.stoppedAt),
      f.pair === null ? null : [...encodeReading(clock, f.pair[0]), ...encodeReading(clock, f.pair[1])],
      f.prev === null ? null : encodeReading(clock, f.prev),
    ],
  };
}

export function decodeBp(s: StoredBp, clock: number): Pick<PatientState, 'bp' | 'pressors' | 'bpFold'> {
  const [at, on, last, infusing, stoppedAt, pair, prev] = s.bpFold;
  return {
    bp: decodeTimes(s.bp, 3, clock, (t, i): BpReading => [t, s.bp[i + 1]!, s.bp[i + 2]!]),
    pressors: decodeTimes(s.pressors, 2, clock, (t, i): PressorPoint => [t, s.pressors[i + 1] === 1]),
    // A null instant is nothing folded yet, the rest read all the same: a version-1 state's rule state over the
    // readings it dropped has no instant (fromVersion1), and was lost at its first save until 2026-12-06.
    bpFold: {
      at: at === null ? Number.NEGATIVE_INFINITY : clock - ms(at),
      on: on === 1,
      last: last as Last,
      infusing: infusing === 1,
      stoppedAt: stoppedAt === null ? null : clock - ms(stoppedAt),
      pair: pair === null ? null : [decodeReading(clock, pair, 0), decodeReading(clock, pair, 3)],
      prev: prev === null ? null : decodeReading(clock, prev, 0),
    },
  };
}

/**
 * The enrolment with the thresholds also in the one field the code before them read (`hypotension`, at the later of
 * their times): a rollback, or both versions running during a deployment, grades a state written now with both.
 */
export function enrolmentForOlderReaders(e: TimedFields<EnrolmentFields>): StoredEnrolment {
  const sys = e.hypotensionSystolicBelow;
  const map = e.hypotensionMapBelow;
  if (!sys && !map) return e;
  const v: LegacyThresholds['v'] = {};
  if (sys) v.systolicBelow = sys.v;
  if (map) v.mapBelow = map.v;
  return {
    ...e,
    hypotension: { v, t: Math.max(sys?.t ?? Number.NEGATIVE_INFINITY, map?.t ?? Number.NEGATIVE_INFINITY) },
  };
}

/**
 * The enrolment of a stored state. The thresholds' old field, unless it is what this code wrote beside the split
 * ones, is read as each threshold it holds at its time where that is not earlier than the split one: a state written
 * before the split has only the old field; one that the code before updated after a rollback has it later than the
 * split ones it carried along unread, or at the same instant (a correction: the later arrival, as the reducer keeps).
 */
export function enrolmentFromStored(stored: StoredEnrolment): TimedFields<EnrolmentFields> {
  const { hypotension: legacy, ...e } = stored;
  const written = enrolmentForOlderReaders(e).hypotension;
  if (
    !legacy ||
    (written &&
      written.t === legacy.t &&
      written.v.systolicBelow === legacy.v.systolicBelow &&
      written.v.mapBelow === legacy.v.mapBelow)
  )
    return e;
  const out: TimedFields<EnrolmentFields> = { ...e };
  const { systolicBelow, mapBelow } = legacy.v;
  if (systolicBelow !== undefined && !(e.hypotensionSystolicBelow && e.hypotensionSystolicBelow.t > legacy.t))
    out.hypotensionSystolicBelow = { v: systolicBelow, t: legacy.t };
  if (mapBelow !== undefined && !(e.hypotensionMapBelow && e.hypotensionMapBelow.t > legacy.t))
    out.hypotensionMapBelow = { v: mapBelow, t: legacy.t };
  return out;
}

export function serializeState(state: PatientState): string {
  const { clock } = state;
  const { bpMemo: _cache, ...rest } = state;
  const stored: Omit<Stored, 'enrolment'> & { enrolment: StoredEnrolment; feverOnset?: number } = {
    ...rest,
    enrolment: enrolmentForOlderReaders(state.enrolment),
    clock: clock === Number.NEGATIVE_INFINITY ? null : clock,
    ...encodeBp(state),
    feverOnset: onsetForOlderReaders(state),
  };
  return JSON.stringify(stored);
}

export function deserializeState(json: string): PatientState {
  const stored = JSON.parse(json) as { v?: unknown };
  if (stored.v === 1) return fromVersion1(stored as StateV1);
  if (stored.v !== STATE_VERSION) throw new Error(`unsupported patient state version ${String(stored.v)}`);
  const s = stored as Omit<Stored, 'enrolment'> & { enrolment: StoredEnrolment; feverOnset?: number };
  const clock = s.clock === null ? Number.NEGATIVE_INFINITY : s.clock;
  const enrolment = enrolmentFromStored(s.enrolment);
  return withKnownFevers(
    copyState({ ...emptyState(s.patientId), ...s, enrolment, clock, ...decodeBp(s, clock) }),
    s.feverOnset,
  );
}

/**
 * What the code before latestFever and maskedFever reads as the episode's onset (`feverOnset`), written beside
 * them so that it grades a state written now as this code does (a rollback, or both versions running during a
 * deployment): that code waives fever when the latest masking medication is at or after the onset, and ends an
 * episode at CRS 0 only when it has one. A fever of the episode the waiver follows when it holds (when it rests on
 * dropped readings, the earliest time one of them can have in the episode), else the latest fever of the episode
 * (after every masking medication), else none. Unused by this code when it reads the state.
 */
export function onsetForOlderReaders(s: PatientState): number | undefined {
  const start = episodeStart(s);
  if (s.maskedFever !== undefined && s.maskedFever >= start) return s.maskedFever;
  const dropped = droppedFeverMasked(s);
  if (dropped) return dropped[0]; // the waiver rests on the dropped span: its earliest time in the episode
  if (s.latestFever !== undefined && s.latestFever >= start) return s.latestFever;
  return undefined;
}

/**
 * The earliest fever the state knows (the kept febrile readings, latestFever and `also`) that is in the episode and
 * later than the latest masking medication: what unmaskedFever is recomputed from when the fever it was is masked,
 * corrected away or leaves the episode (`also`: the fevers still known besides, such as the one it was when it may
 * still count), or the episode start moves.
 */
export function knownUnmaskedFever(s: PatientState, also: readonly (number | undefined)[] = []): number | undefined {
  const start = episodeStart(s);
  const masked = s.lastMaskingAt ?? Number.NEGATIVE_INFINITY;
  let out: number | undefined;
  const consider = (t: number | undefined) => {
    if (t !== undefined && t >= start && t > masked && (out === undefined || t < out)) out = t;
  };
  for (const [t] of s.febrile) consider(t);
  consider(s.latestFever);
  for (const t of also) consider(t);
  return out;
}

/**
 * A state stored before it kept latestFever and maskedFever (it kept `feverOnset`, the earliest febrile time of
 * the episode, instead): both derived from the fevers it knows, the onset and the kept febrile readings. It then
 * grades as it did (the waiver held when a masking medication came at or after the onset, which is in the episode).
 * A state without unmaskedFever (stored before it, or with no fever after its latest masking medication) takes the
 * earliest of those fevers in the episode after that medication (none, for a state stored with the field).
 */
export function withKnownFevers(s: PatientState, feverOnset: number | undefined): PatientState {
  const known = s.febrile.map(([t]) => t);
  if (feverOnset !== undefined) known.push(feverOnset);
  if (s.latestFever === undefined && s.maskedFever === undefined && known.length > 0) {
    s.latestFever = Math.max(...known);
    const masked = s.lastMaskingAt;
    const before = masked === undefined ? [] : known.filter((t) => t <= masked);
    s.maskedFever = before.length > 0 ? Math.max(...before) : undefined;
  }
  if (s.unmaskedFever === undefined) s.unmaskedFever = knownUnmaskedFever(s, [feverOnset]);
  return s;
}

// ------------------------------------------------------------------------------------- version 1 (rules 1.0)

/** The parts of a version-1 state that changed shape; the rest is read as it is. */
interface StateV1 {
  v: 1;
  patientId: string;
  clock: number | null;
  neuro?: Timed<NeuroSection>;
  vasopressors?: Timed<VasopressorEntry[]>;
  febrile?: [number, number][];
  bp?: BpReading[];
  bpDropped?: { on: boolean; lastLow: boolean | null };
  crsSince?: number;
  waiverSince?: number;
  [key: string]: unknown;
}

/**
 * A version-1 state (as stored by rules 1.0) in today's shape. Version 1 kept less history, so this is the best
 * reading of what it kept:
 * - neuro: the one assessment's fields, each with its time;
 * - the waiver's onset: the earliest of the first CRS >= 1 time, the waiver's time and the kept febrile readings
 *   (the true earliest fever is at or before the first CRS >= 1 time: the waiver holds where version 1 held it),
 *   read as a known fever (withKnownFevers);
 * - blood pressure: the kept readings, the latest vasopressors section as the one known point, and the rule's
 *   state over the dropped readings as the starting state;
 * - the messageId window is not carried over: version 1 kept no content digests. A message redelivered just
 *   after the upgrade is applied again, which changes nothing (every value and history is keyed by time).
 */
function fromVersion1(old: StateV1): PatientState {
  const { v: _v, neuro, bp, bpDropped, crsSince, waiverSince, seen: _seen, ...same } = old;
  const clock = old.clock === null ? Number.NEGATIVE_INFINITY : old.clock;
  const s = copyState({ ...emptyState(old.patientId), ...(same as Partial<PatientState>), clock });
  s.enrolment = enrolmentFromStored((old.enrolment ?? {}) as StoredEnrolment);
  s.neuro = {};
  if (neuro) {
    for (const [k, v] of Object.entries(neuro.v))
      if (v !== undefined) (s.neuro as Record<string, Timed<unknown>>)[k] = { v, t: neuro.t };
  }
  const onsets = [crsSince, waiverSince, old.febrile?.[0]?.[0]].filter((t): t is number => t !== undefined);
  withKnownFevers(s, onsets.length > 0 ? Math.min(...onsets) : undefined);
  s.bp = bp ?? [];
  s.pressors = old.vasopressors ? [[old.vasopressors.t, old.vasopressors.v.some((p) => p.dose > 0)]] : [];
  const lastLow = bpDropped?.lastLow ?? null;
  s.bpFold = { ...NOTHING_FOLDED, on: bpDropped?.on ?? false, last: lastLow === null ? 0 : lastLow ? 1 : 2 };
  return s;
}
