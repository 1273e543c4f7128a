// The per-patient state: one compact JSON document (it lives in one DynamoDB item, hard limit 400 KB).
// It keeps the latest value of each parameter and only the history the rules need, each part bounded.
import type { Condition, Team } from './config.ts';
import type { MedicationDrug, NeuroSection, OxygenSection, VasopressorEntry } from './contract.ts';
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
  hypotension: { systolicBelow?: number; mapBelow?: number };
}

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

export interface LabFields {
  crpMgL: number;
  ferritinNgMl: number;
  il6PgMl: number;
}

/** A blood-pressure reading: [observedAt, systolic or null, mean arterial pressure or null]. */
export type BpReading = [t: number, systolic: number | null, map: number | null];

/**
 * The consecutive-readings rule as a small state machine, for readings that fell out of the kept history:
 * `on` is whether hypotension was established, `lastLow` whether the last dropped reading was low (null: none).
 */
export interface BpMachine {
  on: boolean;
  lastLow: boolean | null;
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
  v: 1;
  patientId: string;
  /** The patient clock: the latest observedAt seen (epoch ms). Grades are computed as of this time. */
  clock: number;
  enrolment: TimedFields<EnrolmentFields>;
  vitals: TimedFields<VitalFields>;
  oxygen: Timed<OxygenSection> | undefined;
  vasopressors: Timed<VasopressorEntry[]> | undefined;
  neuro: Timed<NeuroSection> | undefined;
  organ: TimedFields<OrganFields>;
  labs: TimedFields<LabFields>;
  /** Febrile temperatures in the fever window as [t, °C], a monotonic queue: times rise and temperatures fall. */
  febrile: [t: number, temperatureC: number][];
  /** The latest blood-pressure readings, ordered by observedAt. */
  bp: BpReading[];
  bpDropped: BpMachine;
  /** Tocilizumab dose times (ms), ascending, unique, the most recent 16. */
  tocilizumab: number[];
  /** Latest time each medication was given. */
  lastGiven: Partial<Record<MedicationDrug, number>>;
  /** Latest observedAt of a fever-masking medication. */
  lastMaskingAt: number | undefined;
  /** Patient clock when CRS grade >= 1 was first reached in this episode. */
  crsSince: number | undefined;
  /** When the fever waiver took effect (the masking medication's time), if it has. */
  waiverSince: number | undefined;
  /** Patient clock since when the CRS grade has been 0 (for the optional episode end). */
  crsZeroSince: number | undefined;
  notified: Record<Condition, NotifiedGrade>;
  /** Latest observedAt of a message from a bedside monitor (source.kind "monitor"), for the stale-feed alert. */
  lastMonitorAt: number | undefined;
  /** The last two SpO2 readings by observedAt, [t, %], for the low-SpO2 warning. */
  spo2: [t: number, spo2: number][];
  /** Whether the low-SpO2 warning is raised (it is raised and cleared once each). */
  spo2Alert: boolean;
  /** The most recent messageIds applied (at least config.dedupeWindow of them), see seen.ts. */
  seen: SeenIds;
}

/**
 * A state with every key present, in one fixed order: states then share one object shape, which keeps the
 * reducer fast. Keys without a value yet are undefined (and left out of the JSON).
 */
export function emptyState(patientId: string): PatientState {
  return copyState({
    v: 1,
    patientId,
    clock: Number.NEGATIVE_INFINITY,
    enrolment: {},
    vitals: {},
    oxygen: undefined,
    vasopressors: undefined,
    neuro: undefined,
    organ: {},
    labs: {},
    febrile: [],
    bp: [],
    bpDropped: { on: false, lastLow: null },
    tocilizumab: [],
    lastGiven: {},
    lastMaskingAt: undefined,
    crsSince: undefined,
    waiverSince: undefined,
    crsZeroSince: undefined,
    notified: { crs: { grade: 0, teams: [] }, icans: { grade: 0, teams: [] } },
    lastMonitorAt: undefined,
    spo2: [],
    spo2Alert: false,
    seen: [],
  });
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
    enrolment: s.enrolment,
    vitals: s.vitals,
    oxygen: s.oxygen,
    vasopressors: s.vasopressors,
    neuro: s.neuro,
    organ: s.organ,
    labs: s.labs,
    febrile: s.febrile,
    bp: s.bp,
    bpDropped: s.bpDropped,
    tocilizumab: s.tocilizumab,
    lastGiven: s.lastGiven,
    lastMaskingAt: s.lastMaskingAt,
    crsSince: s.crsSince,
    waiverSince: s.waiverSince,
    crsZeroSince: s.crsZeroSince,
    notified: s.notified,
    lastMonitorAt: s.lastMonitorAt,
    spo2: s.spo2,
    spo2Alert: s.spo2Alert,
    seen: s.seen,
  };
}

/** JSON has no -Infinity: an empty state's clock serialises as null. */
export function serializeState(state: PatientState): string {
  return JSON.stringify(state, (_k, v) => (v === Number.NEGATIVE_INFINITY ? null : v));
}

export function deserializeState(json: string): PatientState {
  const stored = JSON.parse(json) as PatientState;
  if (stored.v !== 1) throw new Error(`unsupported patient state version ${String(stored.v)}`);
  const state = copyState({ ...emptyState(stored.patientId), ...stored });
  if (state.clock === null) state.clock = Number.NEGATIVE_INFINITY;
  return state;
}
