// CRS (ASTCT 2019, Lee 2014 as in the seed's Table 3) and ICANS (ASTCT 2019) grading of a patient state,
// as of the patient clock. Every grade comes with the reasons that drove it.
import type { GradingConfig, Scheme } from './config.ts';
import type { NeuroSection, OxygenDevice, VasopressorEntry } from './contract.ts';
import type { BpReading, PatientState, Timed } from './state.ts';
import { MINUTE, iso } from './time.ts';

export interface Reason {
  /** Which criterion: fever, fever-waiver, no-fever, hypotension, vasopressor, oxygen, fio2, organ-toxicity, ... */
  criterion: string;
  value: string | number | boolean;
  /** When the value was observed (RFC 3339). */
  at: string;
  text: string;
}

export interface Graded {
  grade: number;
  reasons: Reason[];
}

const DEVICE_NAMES: Record<OxygenDevice, string> = {
  room_air: 'room air',
  blow_by: 'blow-by oxygen',
  nasal_cannula: 'nasal cannula',
  high_flow_nasal_cannula: 'high-flow nasal cannula',
  simple_mask: 'simple mask',
  non_rebreather: 'non-rebreather mask',
  venturi: 'Venturi mask',
  cpap: 'CPAP',
  bipap: 'BiPAP',
  mechanical_ventilation: 'mechanical ventilation',
};

function reason(criterion: string, value: string | number | boolean, t: number, text: string): Reason {
  const at = iso(t);
  return { criterion, value, at, text: `${text} at ${at}` };
}

// ---------------------------------------------------------------------------------------------- shared facts

export interface Fever {
  /** The most recent febrile temperature in the window, and the highest. */
  latest: [t: number, c: number];
  peak: [t: number, c: number];
}

/** Any temperature >= threshold observed within the fever window before the patient clock. */
export function fever(state: PatientState, config: GradingConfig): Fever | undefined {
  const since = state.clock - config.feverWindowMinutes * MINUTE;
  const q = state.febrile;
  const first = q.findIndex(([t]) => t >= since);
  if (first < 0) return undefined;
  // The queue is monotonic: the first entry in the window is the peak, the last is the latest.
  return { peak: q[first]!, latest: q[q.length - 1]! };
}

export function hypotensionThresholds(state: PatientState, config: GradingConfig): { systolicBelow: number; mapBelow: number } {
  const own = state.enrolment.hypotension?.v;
  if (!own) return config.hypotension;
  return {
    systolicBelow: own?.systolicBelow ?? config.hypotension.systolicBelow,
    mapBelow: own?.mapBelow ?? config.hypotension.mapBelow,
  };
}

export function isLowReading([, sys, map]: BpReading, th: { systolicBelow: number; mapBelow: number }): boolean {
  return (sys !== null && sys < th.systolicBelow) || (map !== null && map < th.mapBelow);
}

/**
 * Two consecutive low readings establish hypotension, two consecutive normal readings clear it; one reading
 * alone changes nothing. Returns whether it is established and, if so, the pair of low readings that did it.
 */
export function bpHypotension(state: PatientState, config: GradingConfig): { on: boolean; pair?: [BpReading, BpReading] } {
  const th = hypotensionThresholds(state, config);
  let { on, lastLow } = state.bpDropped;
  let pair: [BpReading, BpReading] | undefined;
  let prev: BpReading | undefined;
  for (const r of state.bp) {
    const low = isLowReading(r, th);
    if (lastLow === low) {
      on = low;
      if (low && prev) pair = [prev, r];
    }
    lastLow = low;
    prev = r;
  }
  return on ? (pair ? { on, pair } : { on }) : { on };
}

const NONE: VasopressorEntry[] = Object.freeze([]) as unknown as VasopressorEntry[];

/** Vasopressors now infusing (a dose of 0 is a paused pump, not an infusion). */
export function activeVasopressors(state: PatientState): VasopressorEntry[] {
  const pumps = state.vasopressors?.v;
  if (!pumps || pumps.length === 0) return NONE;
  return pumps.every((v) => v.dose > 0) ? pumps : pumps.filter((v) => v.dose > 0);
}

function bpText([, sys, map]: BpReading): string {
  const parts = [];
  if (sys !== null) parts.push(`systolic ${sys}`);
  if (map !== null) parts.push(`MAP ${map}`);
  return `${parts.join(', ')} mmHg`;
}

function hypotensionReasons(state: PatientState, config: GradingConfig, vasos: VasopressorEntry[]): Reason[] | undefined {
  const out: Reason[] = [];
  const bp = bpHypotension(state, config);
  if (bp.on) {
    const th = hypotensionThresholds(state, config);
    const limits = `systolic < ${th.systolicBelow} or MAP < ${th.mapBelow}`;
    if (bp.pair) {
      for (const r of bp.pair) {
        const text = bpText(r);
        out.push(reason('hypotension', text, r[0], `low blood pressure ${text} (${limits})`));
      }
    } else {
      out.push(reason('hypotension', 'established', state.clock, `hypotension on consecutive low readings (${limits})`));
    }
  }
  if (vasos.length > 0) {
    const t = state.vasopressors!.t;
    for (const v of vasos) out.push(reason('vasopressor', `${v.drug} ${v.dose} ${v.unit}`, t, `${v.drug} ${v.dose} ${v.unit} infusing`));
  }
  return out.length > 0 ? out : undefined;
}

/** The entry criterion (fever, or the fever waiver). Undefined when neither holds. */
function entryCriterion(state: PatientState, config: GradingConfig): { febrile: boolean; reasons: Reason[] } | undefined {
  const f = fever(state, config);
  if (f) {
    const [t, c] = f.latest;
    const reasons = [reason('fever', c, t, `fever ${c} °C`)];
    if (f.peak[1] > c) reasons.push(reason('fever-peak', f.peak[1], f.peak[0], `peak ${f.peak[1]} °C in the fever window`));
    return { febrile: true, reasons };
  }
  if (state.waiverSince !== undefined) {
    return {
      febrile: false,
      reasons: [reason('fever-waiver', true, state.waiverSince, 'fever not required: fever-masking medication given after CRS onset')],
    };
  }
  return undefined;
}

/** Supplemental oxygen that counts (not room air, not for comfort). */
function supplementalOxygen(state: PatientState) {
  const o = state.oxygen;
  if (!o || o.v.device === 'room_air' || o.v.forComfort === true) return undefined;
  return o;
}

function oxygenText(device: OxygenDevice, flowLpm?: number, fio2?: number): string {
  let s = DEVICE_NAMES[device];
  if (flowLpm !== undefined) s += ` ${flowLpm} L/min`;
  if (fio2 !== undefined) s += ` FiO2 ${fio2}`;
  return s;
}

// ------------------------------------------------------------------------------------------------ ASTCT 2019

function astctHypotensionGrade(vasos: VasopressorEntry[]): number {
  const nonVasopressin = new Set(vasos.filter((v) => v.drug !== 'vasopressin').map((v) => v.drug)).size;
  if (nonVasopressin >= 2) return 4;
  if (vasos.length > 0) return 3; // exactly one non-vasopressin (with or without vasopressin), or vasopressin alone
  return 2;
}

function astctOxygen(state: PatientState, config: GradingConfig): Graded | undefined {
  const o = supplementalOxygen(state);
  if (!o) return undefined;
  const { device, flowLpm, fio2 } = o.v;
  const text = oxygenText(device, flowLpm, fio2);
  let grade: number;
  let note = '';
  switch (device) {
    case 'blow_by':
      grade = 2;
      break;
    case 'nasal_cannula':
      if (flowLpm === undefined) {
        grade = config.nasalCannulaUnknownFlow === 'high' ? 3 : 2;
        note = ` (flow not documented: graded as ${config.nasalCannulaUnknownFlow}-flow)`;
      } else {
        grade = flowLpm <= config.lowFlowMaxLpm ? 2 : 3;
      }
      break;
    case 'cpap':
    case 'bipap':
    case 'mechanical_ventilation':
      grade = 4;
      break;
    default: // high-flow nasal cannula, simple mask, non-rebreather, Venturi
      grade = 3;
  }
  return { grade, reasons: [reason('oxygen', text, o.t, `${text}${note}`)] };
}

function gradeAstct(state: PatientState, config: GradingConfig, entry: { febrile: boolean; reasons: Reason[] }): Graded {
  const vasos = activeVasopressors(state);
  const hypo = hypotensionReasons(state, config, vasos);
  const oxygen = astctOxygen(state, config);
  if (!entry.febrile && !hypo && !oxygen) return { grade: 0, reasons: entry.reasons };
  let grade = entry.febrile ? 1 : 0;
  const reasons = entry.reasons; // built afresh for this grading
  if (hypo) {
    grade = Math.max(grade, astctHypotensionGrade(vasos));
    reasons.push(...hypo);
  }
  if (oxygen) {
    grade = Math.max(grade, oxygen.grade);
    reasons.push(...oxygen.reasons);
  }
  return { grade, reasons };
}

// -------------------------------------------------------------------------------------------------- Lee 2014

/** FiO2 given, or estimated from the device (the page says when it was estimated). */
export function leeFio2(
  device: OxygenDevice,
  flowLpm: number | undefined,
  fio2: number | undefined,
  config: GradingConfig,
): { fio2?: number; estimated: boolean; note?: string } {
  if (fio2 !== undefined) return { fio2, estimated: false };
  const est = config.lee.fio2Estimate;
  switch (device) {
    case 'nasal_cannula':
      if (flowLpm === undefined) {
        return config.nasalCannulaUnknownFlow === 'high'
          ? { fio2: est.nasalCannulaMax, estimated: true, note: 'flow not documented: graded as high-flow' }
          : { estimated: true, note: 'flow not documented: graded as low-flow (FiO2 below 40 %)' };
      }
      return { fio2: Math.min(est.nasalCannulaMax, Math.round((0.21 + est.nasalCannulaPerLpm * flowLpm) * 1000) / 1000), estimated: true };
    case 'cpap':
    case 'bipap':
    case 'mechanical_ventilation':
      return { estimated: true };
    default:
      return { fio2: est[device], estimated: true };
  }
}

function leeOxygen(state: PatientState, config: GradingConfig): Graded | undefined {
  const o = supplementalOxygen(state);
  if (!o) return undefined;
  const { device, flowLpm, fio2 } = o.v;
  const text = oxygenText(device, flowLpm, fio2);
  if (device === 'cpap' || device === 'bipap' || device === 'mechanical_ventilation') {
    return { grade: 4, reasons: [reason('oxygen', text, o.t, `ventilator support: ${text}`)] };
  }
  const f = leeFio2(device, flowLpm, fio2, config);
  const threshold = config.lee.fio2Grade3;
  if (f.fio2 === undefined) {
    return { grade: 2, reasons: [reason('oxygen', text, o.t, `oxygen requirement: ${text} (${f.note})`)] };
  }
  const how = f.estimated ? `FiO2 estimated ${f.fio2} from the device` : `FiO2 ${f.fio2}`;
  const grade = f.fio2 >= threshold ? 3 : 2;
  const cmp = grade === 3 ? `>= ${threshold}` : `< ${threshold}`;
  const note = f.note ? `; ${f.note}` : '';
  return { grade, reasons: [reason('fio2', f.fio2, o.t, `${text}: ${how} (${cmp}${note})`)] };
}

/** A vasopressor dose in the unit of the high-dose threshold, or undefined when it cannot be converted. */
function doseIn(v: VasopressorEntry, unit: 'mcg/min' | 'mcg/kg/min', weightKg: number | undefined): number | undefined {
  if (v.unit === unit) return v.dose;
  if (v.unit === 'units/min' || weightKg === undefined) return undefined;
  return unit === 'mcg/min' ? v.dose * weightKg : v.dose / weightKg;
}

function leeHypotension(state: PatientState, config: GradingConfig): Graded | undefined {
  const vasos = activeVasopressors(state);
  const reasons = hypotensionReasons(state, config, vasos);
  if (!reasons) return undefined;
  if (vasos.length === 0) return { grade: 2, reasons };
  const t = state.vasopressors!.t;
  if (vasos.length >= 2) {
    return { grade: 3, reasons: [...reasons, reason('vasopressor', vasos.length, t, `multiple vasopressors (${vasos.length})`)] };
  }
  const v = vasos[0]!;
  if (v.drug === 'vasopressin') {
    return { grade: 2, reasons: [...reasons, reason('vasopressor', 'low-dose', t, 'vasopressin monotherapy counts as low-dose')] };
  }
  const limit = config.lee.highDose[v.drug];
  const weight = state.enrolment.weightKg?.v;
  const dose = doseIn(v, limit.unit, weight);
  if (dose === undefined) {
    const why =
      v.unit === 'units/min'
        ? `${v.unit} cannot be compared with ${limit.dose} ${limit.unit}`
        : `no enrolment weight to convert ${v.unit} to ${limit.unit}`;
    return {
      grade: 3,
      reasons: [...reasons, reason('vasopressor', 'high-dose (unconvertible)', t, `${v.drug} graded as high-dose: ${why} (fail safe)`)],
    };
  }
  const rounded = Math.round(dose * 100) / 100;
  if (dose >= limit.dose) {
    return {
      grade: 3,
      reasons: [...reasons, reason('vasopressor', 'high-dose', t, `${v.drug} high-dose: ${rounded} ${limit.unit} >= ${limit.dose}`)],
    };
  }
  return {
    grade: 2,
    reasons: [...reasons, reason('vasopressor', 'low-dose', t, `${v.drug} low-dose: ${rounded} ${limit.unit} < ${limit.dose}`)],
  };
}

/**
 * Organ toxicity (CTCAE): maxCtcaeGrade excludes transaminitis. Transaminitis counts as an organ toxicity of
 * its grade up to 3; transaminitis grade 4 is CRS grade 3, never 4 (Table 3).
 */
function leeOrgan(state: PatientState): Graded | undefined {
  const reasons: Reason[] = [];
  let grade = 0;
  const organ = state.organ.maxCtcaeGrade;
  if (organ && organ.v >= 2) {
    grade = organ.v;
    reasons.push(reason('organ-toxicity', organ.v, organ.t, `organ toxicity CTCAE grade ${organ.v}`));
  }
  const tx = state.organ.transaminitisGrade;
  if (tx && tx.v >= 2) {
    grade = Math.max(grade, Math.min(tx.v, 3));
    reasons.push(reason('transaminitis', tx.v, tx.t, `transaminitis grade ${tx.v}`));
  }
  return grade >= 2 ? { grade, reasons } : undefined;
}

function gradeLee(state: PatientState, config: GradingConfig, entry: { febrile: boolean; reasons: Reason[] }): Graded {
  const hypo = leeHypotension(state, config);
  const oxygen = leeOxygen(state, config);
  // With the waiver and no fever, CRS is 0 unless there is hypotension or hypoxia (crs-rules.md section 1).
  if (!entry.febrile && !hypo && !oxygen) return { grade: 0, reasons: entry.reasons };
  let grade = entry.febrile ? 1 : 0;
  const reasons = entry.reasons; // built afresh for this grading
  for (const part of [hypo, oxygen, leeOrgan(state)]) {
    if (!part) continue;
    grade = Math.max(grade, part.grade);
    reasons.push(...part.reasons);
  }
  return { grade, reasons };
}

// ------------------------------------------------------------------------------------------------- CRS, ICANS

export function gradeCrs(state: PatientState, config: GradingConfig, scheme: Scheme = config.scheme): Graded {
  const entry = entryCriterion(state, config);
  if (!entry) {
    const why = `no temperature >= ${config.feverThresholdC} °C in the last ${config.feverWindowMinutes / 60} h`;
    return { grade: 0, reasons: [reason('no-fever', false, state.clock, `CRS entry criterion not met: ${why}`)] };
  }
  return scheme === 'lee2014' ? gradeLee(state, config, entry) : gradeAstct(state, config, entry);
}

const CONSCIOUSNESS_GRADE = { alert: 0, awakens_spontaneously: 1, awakens_to_voice: 2, awakens_to_touch: 3, unarousable: 4 } as const;
const SEIZURE_GRADE = { none: 0, self_limited: 3, prolonged: 4 } as const;
const EDEMA_GRADE = { none: 0, focal: 3, diffuse: 4 } as const;

export function iceGrade(score: number): number {
  if (score >= 10) return 0;
  if (score >= 7) return 1;
  if (score >= 3) return 2;
  return 3;
}

const NO_ICANS: Graded = Object.freeze({ grade: 0, reasons: Object.freeze([]) as unknown as Reason[] });

// ICANS depends on the latest neuro assessment alone, which most messages leave as it was: its grade and reasons
// are worked out once per assessment object (states never change one) and frozen, since callers share them.
const icansByAssessment = new WeakMap<object, Graded>();

/** ICANS: the most severe domain of the latest neuro assessment (a field left out counts as normal). */
export function gradeIcans(state: PatientState): Graded {
  const n = state.neuro;
  if (!n) return NO_ICANS;
  let graded = icansByAssessment.get(n);
  if (!graded) icansByAssessment.set(n, (graded = icansOf(n)));
  return graded;
}

function icansOf(n: Timed<NeuroSection>): Graded {
  const { iceScore, consciousness, seizure, motorWeakness, cerebralEdema } = n.v;
  const domains: [number, Reason][] = [];
  if (iceScore !== undefined) domains.push([iceGrade(iceScore), reason('ice-score', iceScore, n.t, `ICE score ${iceScore}/10`)]);
  if (consciousness) {
    domains.push([CONSCIOUSNESS_GRADE[consciousness], reason('consciousness', consciousness, n.t, `consciousness: ${consciousness.replaceAll('_', ' ')}`)]);
  }
  if (seizure) domains.push([SEIZURE_GRADE[seizure], reason('seizure', seizure, n.t, `seizure: ${seizure.replaceAll('_', ' ')}`)]);
  if (motorWeakness) domains.push([4, reason('motor-weakness', true, n.t, 'deep focal motor weakness')]);
  if (cerebralEdema) domains.push([EDEMA_GRADE[cerebralEdema], reason('cerebral-edema', cerebralEdema, n.t, `cerebral oedema: ${cerebralEdema}`)]);
  const grade = Math.max(0, ...domains.map(([g]) => g));
  const reasons = grade === 0 ? [] : domains.filter(([g]) => g > 0).map(([, r]) => Object.freeze(r));
  return Object.freeze({ grade, reasons: Object.freeze(reasons) as Reason[] });
}
