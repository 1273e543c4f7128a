// The patient state in its compact stored form (version 3), for a store that pays by the byte (a DynamoDB item:
// every started KB written is a write unit). The same content as version 2 (state.ts), written without names and
// with every time in seconds before the patient clock: one JSON array, each part in a fixed place, each timed
// field in a fixed place of its section. It compresses well (the adapter deflates it): repeated times are zeros.
//
//   [3, patientId, clock, seq, enrolment, vitals, oxygen, vasopressors, neuro, organ, labs, febrile, feverOnset,
//    bp, pressors, bpFold, tocilizumab, lastGiven, lastMaskingAt, episodeEndedAt, crsZeroSince, notified,
//    lastMonitorAt, spo2, spo2Alert, seen, latestFever, maskedFever, unmaskedFever, monitoringEnd,
//    lastEnrolmentAt, placedAhead, feverDropped, latestInfusedAt, firstEnrolledAt, readmittedAt,
//    enrolmentsSinceEnd, gradedUnder]
//
// - clock: epoch ms, or null for an empty state; every other time: seconds before the clock (fractions for ms),
//   or null when absent;
// - a section of timed fields (enrolment, vitals, neuro, organ, labs): [v, t, v, t, ...] in the order of the
//   section's keys below, null, null for a field without a value, trailing nulls dropped;
// - oxygen, vasopressors: [section, t] or null; febrile, spo2: [t, value, t, value, ...]; tocilizumab: [t, ...];
//   lastGiven: [drug, t, drug, t, ...]; notified: [[grade, teams, belowSince], [...]] for crs and icans;
// - bp, pressors, bpFold: as in version 2; seen: the window's chunks as they are;
// - feverOnset: what the code before latestFever and maskedFever reads as the episode's onset (onsetForOlderReaders),
//   unused when they are present. States stored before they were appended (ending at seen) kept the episode's
//   earliest febrile time here; on load, the two are derived from it (withKnownFevers);
// - unmaskedFever: appended after maskedFever (code before it ignores it); a state stored before it (or with none)
//   takes it from the fevers it knows on load (withKnownFevers);
// - monitoringEnd: [reason, t] or null, and lastEnrolmentAt, appended after unmaskedFever (code before them ignores
//   them, and keeps watching the feed of a patient whose monitoring ended, as it did);
// - placedAhead: [observedAt, ahead, then seconds after the one before, ahead, ...] (encodePlacedAhead) or null when
//   empty, appended after lastEnrolmentAt (code before it ignores
//   it, and places a later message of such an instant at its own arrival, as it did);
// - feverDropped: [first, last] or null, appended after placedAhead (2026-12-06): a state stored before it loads as one
//   that dropped no febrile reading; code before it ignores it (and may miss the waiver that rests on one, as it did);
// - latestInfusedAt: a time or null, appended after feverDropped (2026-12-07, episodeStart "latest-infusion"): a
//   state stored before it loads as one that knows only its current infusion; code before it ignores it (and starts
//   the episode at the infusion observed last, its only reading).
// - firstEnrolledAt: a time or null, appended after latestInfusedAt (2026-12-07): a state stored before it loads as
//   one that counts a never-sent monitor's quiet from its enrolment fields; code before it ignores it (and counts so).
// - readmittedAt: a time or null, appended after firstEnrolledAt (2026-12-07): a state stored before it loads as one
//   that counts a re-admitted patient's quiet from its latest enrolment (a move after the re-admission restarting the
//   watch), until its next enrolment or end; code before it ignores it (and counts so).
// - enrolmentsSinceEnd: [t, ...] or null when empty, appended after readmittedAt (2026-12-07): a state stored before
//   it loads as one that kept none (readmittedAt as it was, until the next end or enrolment); code before it ignores
//   it (and keeps the re-admission that arrived first).
// - gradedUnder: the id of the grading settings the last message was graded under (config.ts gradingSettingsId) or
//   null, appended after enrolmentsSinceEnd (2026-12-07): a state stored before it loads as one whose settings are not
//   known (its next message records them, and claims no change); code before it ignores it.
import type { Condition } from './config.ts';
import type { MedicationDrug, MonitoringEndReason } from './contract.ts';
import { MEDICATION_DRUGS } from './vocabulary.ts';
import {
  decodeBp,
  emptyState,
  encodeBp,
  copyState,
  enrolmentForOlderReaders,
  enrolmentFromStored,
  type StoredEnrolmentFields,
  type LabFields,
  type NeuroFields,
  type OrganFields,
  type PatientState,
  type StoredBp,
  type Timed,
  type TimedFields,
  type VitalFields,
  onsetForOlderReaders,
  withKnownFevers,
} from './state.ts';

const COMPACT_STATE_VERSION = 3;

/** Every key of T, in a fixed order: a key added to T and not listed here does not compile. */
type AllKeys<T, K extends readonly (keyof T)[]> =
  Exclude<keyof T, K[number]> extends never ? K : { missing: Exclude<keyof T, K[number]> };
const keys =
  <T>() =>
  <const K extends readonly (keyof T)[]>(k: AllKeys<T, K>) =>
    k as K;

// The thresholds' old field keeps its place (the code before the split reads it); the split ones come after it.
const ENROLMENT = keys<StoredEnrolmentFields>()([
  'therapy',
  'product',
  'infusedAt',
  'weightKg',
  'bed',
  'ward',
  'hypotension',
  'hypotensionSystolicBelow',
  'hypotensionMapBelow',
]);
const VITALS = keys<VitalFields>()([
  'temperatureC',
  'heartRate',
  'respiratoryRate',
  'systolicBP',
  'diastolicBP',
  'meanArterialPressure',
  'spo2',
]);
const NEURO = keys<NeuroFields>()(['iceScore', 'consciousness', 'seizure', 'motorWeakness', 'cerebralEdema']);
const ORGAN = keys<OrganFields>()(['maxCtcaeGrade', 'transaminitisGrade']);
const LABS = keys<LabFields>()(['crpMgL', 'ferritinNgMl', 'il6PgMl']);
const CONDITIONS = keys<Record<Condition, unknown>>()(['crs', 'icans']);

type T = number | null;

function codec(clock: number) {
  const finite = clock !== Number.NEGATIVE_INFINITY;
  return {
    t: (ms: number | undefined): T => (ms === undefined ? null : finite ? (clock - ms) / 1000 : ms),
    ms: (t: T | undefined): number | undefined =>
      t === null || t === undefined ? undefined : finite ? clock - Math.round(t * 1000) : t,
  };
}

/**
 * Placements ahead as [first observedAt (seconds before the clock), how far ahead it was placed (s), then for each
 * next one: seconds after the one before, how far ahead]: what varies is the arrival's jitter, the rest compresses.
 */
function encodePlacedAhead(list: PatientState['placedAhead'], t: (ms: number) => T): number[] {
  return list.flatMap(([o, p], i) => [i === 0 ? t(o)! : (o - list[i - 1]![0]) / 1000, (o - p) / 1000]);
}

function decodePlacedAhead(flat: T[], ms: (t: T) => number | undefined): PatientState['placedAhead'] {
  const out: PatientState['placedAhead'] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const o = i === 0 ? ms(flat[0]!)! : out[out.length - 1]![0] + Math.round(flat[i]! * 1000);
    out.push([o, o - Math.round(flat[i + 1]! * 1000)]);
  }
  return out;
}

function trimNulls(a: unknown[]): unknown[] {
  let n = a.length;
  while (n > 0 && a[n - 1] === null) n--;
  return a.slice(0, n);
}

/** The compact form of a state (JSON-able; the blood-pressure memo, a cache, is left out). */
export function compactState(s: PatientState): unknown[] {
  const { t } = codec(s.clock);
  const timed = <F>(fields: TimedFields<F>, order: readonly (keyof F)[]) =>
    trimNulls(
      order.flatMap((k) => {
        const f = fields[k] as Timed<unknown> | undefined;
        return f ? [f.v, t(f.t)] : [null, null];
      }),
    );
  const pairs = (list: [number, number][]) => list.flatMap(([at, v]) => [t(at), v]);
  const bp: StoredBp = encodeBp(s);
  const out: Record<keyof Omit<PatientState, 'bpMemo' | 'v'> | 'feverOnset', unknown> = {
    patientId: s.patientId,
    clock: s.clock === Number.NEGATIVE_INFINITY ? null : s.clock,
    seq: s.seq,
    enrolment: timed(enrolmentForOlderReaders(s.enrolment), ENROLMENT),
    vitals: timed(s.vitals, VITALS),
    oxygen: s.oxygen ? [s.oxygen.v, t(s.oxygen.t)] : null,
    vasopressors: s.vasopressors ? [s.vasopressors.v, t(s.vasopressors.t)] : null,
    neuro: timed(s.neuro, NEURO),
    organ: timed(s.organ, ORGAN),
    labs: timed(s.labs, LABS),
    febrile: pairs(s.febrile),
    feverOnset: t(onsetForOlderReaders(s)),
    bp: bp.bp,
    pressors: bp.pressors,
    bpFold: bp.bpFold,
    tocilizumab: s.tocilizumab.map(t),
    lastGiven: MEDICATION_DRUGS.flatMap((d) => (s.lastGiven[d] === undefined ? [] : [d, t(s.lastGiven[d])])),
    lastMaskingAt: t(s.lastMaskingAt),
    episodeEndedAt: t(s.episodeEndedAt),
    crsZeroSince: t(s.crsZeroSince),
    notified: CONDITIONS.map((c) => trimNulls([s.notified[c].grade, s.notified[c].teams, t(s.notified[c].belowSince)])),
    lastMonitorAt: t(s.lastMonitorAt),
    spo2: pairs(s.spo2),
    spo2Alert: s.spo2Alert ? 1 : 0,
    seen: s.seen,
    latestFever: t(s.latestFever),
    maskedFever: t(s.maskedFever),
    unmaskedFever: t(s.unmaskedFever),
    monitoringEnd: s.monitoringEnd ? [s.monitoringEnd.v, t(s.monitoringEnd.t)] : null,
    lastEnrolmentAt: t(s.lastEnrolmentAt),
    placedAhead: s.placedAhead.length === 0 ? null : encodePlacedAhead(s.placedAhead, t),
    feverDropped: s.feverDropped ? [t(s.feverDropped[0]), t(s.feverDropped[1])] : null,
    latestInfusedAt: t(s.latestInfusedAt),
    firstEnrolledAt: t(s.firstEnrolledAt),
    readmittedAt: t(s.readmittedAt),
    enrolmentsSinceEnd: s.enrolmentsSinceEnd.length === 0 ? null : s.enrolmentsSinceEnd.map(t),
    gradedUnder: s.gradedUnder ?? null,
  };
  // Trailing nulls dropped: a state that knows no fever ends at seen, as one stored before the fevers were appended.
  return trimNulls([
    COMPACT_STATE_VERSION,
    out.patientId,
    out.clock,
    out.seq,
    out.enrolment,
    out.vitals,
    out.oxygen,
    out.vasopressors,
    out.neuro,
    out.organ,
    out.labs,
    out.febrile,
    out.feverOnset,
    out.bp,
    out.pressors,
    out.bpFold,
    out.tocilizumab,
    out.lastGiven,
    out.lastMaskingAt,
    out.episodeEndedAt,
    out.crsZeroSince,
    out.notified,
    out.lastMonitorAt,
    out.spo2,
    out.spo2Alert,
    out.seen,
    out.latestFever,
    out.maskedFever,
    out.unmaskedFever,
    out.monitoringEnd,
    out.lastEnrolmentAt,
    out.placedAhead,
    out.feverDropped,
    out.latestInfusedAt,
    out.firstEnrolledAt,
    out.readmittedAt,
    out.enrolmentsSinceEnd,
    out.gradedUnder,
  ]);
}

/** A state from its compact form. */
export function expandState(a: unknown[]): PatientState {
  if (a[0] !== COMPACT_STATE_VERSION) throw new Error(`unsupported compact patient state version ${String(a[0])}`);
  const [
    ,
    patientId,
    clockOrNull,
    seq,
    enrolment,
    vitals,
    oxygen,
    vasopressors,
    neuro,
    organ,
    labs,
    febrile,
    feverOnset,
    bp,
    pressors,
    bpFold,
    tocilizumab,
    lastGiven,
    lastMaskingAt,
    episodeEndedAt,
    crsZeroSince,
    notified,
    lastMonitorAt,
    spo2,
    spo2Alert,
    seen,
    latestFever,
    maskedFever,
    unmaskedFever,
    monitoringEnd,
    lastEnrolmentAt,
    placedAhead,
    feverDropped,
    latestInfusedAt,
    firstEnrolledAt,
    readmittedAt,
    enrolmentsSinceEnd,
    gradedUnder,
  ] = a as [
    number,
    string,
    number | null,
    number,
    unknown[],
    unknown[],
    [unknown, T] | null,
    [unknown, T] | null,
    unknown[],
    unknown[],
    unknown[],
    T[],
    T,
    StoredBp['bp'],
    StoredBp['pressors'],
    StoredBp['bpFold'],
    T[],
    (string | T)[],
    T,
    T,
    T,
    [number, string[], T?][],
    T,
    T[],
    number,
    string[][],
    T?,
    T?,
    T?,
    ([MonitoringEndReason, T] | null)?,
    T?,
    (T[] | null)?,
    ([T, T] | null)?,
    T?,
    T?,
    T?,
    (T[] | null)?,
    (string | null)?,
  ];
  const clock = clockOrNull === null ? Number.NEGATIVE_INFINITY : clockOrNull;
  const { ms } = codec(clock);
  const timed = <F>(flat: unknown[], order: readonly (keyof F)[]): TimedFields<F> => {
    const out: Record<string, Timed<unknown>> = {};
    order.forEach((k, i) => {
      if (2 * i < flat.length && flat[2 * i + 1] !== null && flat[2 * i + 1] !== undefined)
        out[k as string] = { v: flat[2 * i], t: ms(flat[2 * i + 1] as T)! };
    });
    return out as TimedFields<F>;
  };
  const pairsOf = (flat: T[], pair: (a: T, b: T) => [number, number]): [number, number][] => {
    const out: [number, number][] = [];
    for (let i = 0; i < flat.length; i += 2) out.push(pair(flat[i]!, flat[i + 1]!));
    return out;
  };
  const pairs = (flat: T[]) => pairsOf(flat, (at, v) => [ms(at)!, v as number]);
  const given: Partial<Record<MedicationDrug, number>> = {};
  for (let i = 0; i < lastGiven.length; i += 2) given[lastGiven[i] as MedicationDrug] = ms(lastGiven[i + 1] as T)!;
  const note = ([grade, teams, below]: [number, string[], T?]) =>
    below === undefined || below === null ? { grade, teams } : { grade, teams, belowSince: ms(below)! };
  const state = copyState({
    ...emptyState(patientId),
    clock,
    seq,
    enrolment: enrolmentFromStored(timed<StoredEnrolmentFields>(enrolment, ENROLMENT)),
    latestInfusedAt: ms(latestInfusedAt),
    vitals: timed<VitalFields>(vitals, VITALS),
    oxygen: oxygen ? { v: oxygen[0] as never, t: ms(oxygen[1])! } : undefined,
    vasopressors: vasopressors ? { v: vasopressors[0] as never, t: ms(vasopressors[1])! } : undefined,
    neuro: timed<NeuroFields>(neuro, NEURO),
    organ: timed<OrganFields>(organ, ORGAN),
    labs: timed<LabFields>(labs, LABS),
    febrile: pairs(febrile),
    latestFever: ms(latestFever),
    maskedFever: ms(maskedFever),
    unmaskedFever: ms(unmaskedFever),
    ...decodeBp({ bp, pressors, bpFold }, clock),
    tocilizumab: tocilizumab.map((x) => ms(x)!),
    lastGiven: given,
    lastMaskingAt: ms(lastMaskingAt),
    episodeEndedAt: ms(episodeEndedAt),
    crsZeroSince: ms(crsZeroSince),
    notified: {
      crs: note(notified[0]!) as PatientState['notified']['crs'],
      icans: note(notified[1]!) as PatientState['notified']['icans'],
    },
    lastMonitorAt: ms(lastMonitorAt),
    spo2: pairs(spo2),
    spo2Alert: spo2Alert === 1,
    seen,
    monitoringEnd: monitoringEnd ? { v: monitoringEnd[0], t: ms(monitoringEnd[1])! } : undefined,
    lastEnrolmentAt: ms(lastEnrolmentAt),
    placedAhead: placedAhead ? decodePlacedAhead(placedAhead, ms) : [],
    feverDropped: feverDropped ? [ms(feverDropped[0])!, ms(feverDropped[1])!] : undefined,
    firstEnrolledAt: ms(firstEnrolledAt),
    readmittedAt: ms(readmittedAt),
    enrolmentsSinceEnd: enrolmentsSinceEnd ? enrolmentsSinceEnd.map((x) => ms(x)!) : [],
    gradedUnder: typeof gradedUnder === 'string' ? gradedUnder : undefined,
  });
  return withKnownFevers(state, ms(feverOnset));
}
