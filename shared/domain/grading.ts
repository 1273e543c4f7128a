// CRS (ASTCT 2019, Lee 2014 as in the seed's Table 3) and ICANS (ASTCT 2019) grading of a patient state,
// as of the patient clock. Every grade comes with the reasons that drove it.
import { hypotension, type BpReading, type Thresholds } from './bp.ts';
import type { GradingConfig, Scheme } from './config.ts';
import type { OxygenDevice, VasopressorDrug, VasopressorEntry } from './contract.ts';
import { withoutFloatNoise } from './numbers.ts';
import type { NeuroFields, PatientState, Timed, TimedFields } from './state.ts';
import { MINUTE, formatSiteTime, iso, parseTime } from './time.ts';

/** Words, or an instant (RFC 3339) that each renderer writes in its reader's time zone. */
export type ReasonPart = string | { at: string };

export interface Reason {
  /** Which criterion: fever, fever-waiver, no-fever, hypotension, vasopressor, oxygen, fio2, organ-toxicity, ... */
  criterion: string;
  value: string | number | boolean;
  /** When the value was observed (RFC 3339). */
  at: string;
  /** What the reason says, its times as data: what people read is rendered from these (reasonText). */
  parts: readonly ReasonPart[];
  /** The stable string form, times in RFC 3339 UTC: `crs replay`'s `reasons`, the audit trail. */
  text: string;
}

/**
 * A reason as people read it: its times in the site's zone (formatSiteTime). A reason stored before reasons
 * carried parts (an outbox record written by an older version) reads as its text.
 */
export function reasonText(r: Pick<Reason, 'text'> & { parts?: readonly ReasonPart[] }, timeZone: string): string {
  if (!r.parts) return r.text;
  let out = '';
  for (const p of r.parts) out += typeof p === 'string' ? p : formatSiteTime(p.at, timeZone);
  return out;
}

export interface Graded {
  grade: number;
  reasons: Reason[];
}

/** What reasons, pages and the board call each oxygen device. */
export const OXYGEN_DEVICE_NAMES: Record<OxygenDevice, string> = {
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

/** A reason: its words (with any time inside them as a part), then " at " the time the value was observed. */
function reason(
  criterion: string,
  value: string | number | boolean,
  t: number,
  words: string | readonly ReasonPart[],
): Reason {
  const at = iso(t);
  if (typeof words === 'string')
    return { criterion, value, at, parts: [`${words} at `, { at }], text: `${words} at ${at}` };
  const parts = [...words, ' at ', { at }];
  return { criterion, value, at, parts, text: parts.map((p) => (typeof p === 'string' ? p : p.at)).join('') };
}

// ---------------------------------------------------------------------------------------------- shared facts

interface Fever {
  /** The most recent febrile temperature in the window, and the highest. */
  latest: [t: number, c: number];
  peak: [t: number, c: number];
}

/**
 * Any temperature >= threshold observed within the fever window before the patient clock. The kept febrile readings
 * were febrile by the threshold in force when each arrived: after the site changed `feverThresholdC`, one below the
 * threshold of now is no fever (until 2026-12-07 a 38.2 °C kept under 38.0 graded CRS 1 for a day under 38.5), and
 * the latest temperature at or above it is one though it was not kept (until then it was missed, under a threshold
 * lowered from 38.5 to 38.0, until the next febrile reading). Under one threshold both change nothing: every kept
 * reading is at or above it, and the latest temperature, when febrile, is kept.
 */
function fever(state: PatientState, config: GradingConfig): Fever | undefined {
  const since = state.clock - config.feverWindowMinutes * MINUTE;
  const q = state.febrile;
  const threshold = config.feverThresholdC;
  const inclusive = config.feverWindowEdge === 'inclusive';
  const inWindow = (t: number) => (inclusive ? t >= since : t > since);
  let first = 0;
  while (first < q.length && !inWindow(q[first]![0])) first++;
  // In time order: the last is the latest; the peak is the highest, the latest of equal ones.
  let peak: Fever['peak'] | undefined;
  let last: Fever['latest'] | undefined;
  for (let i = first; i < q.length; i++) {
    const e = q[i]!;
    if (e[1] < threshold) continue;
    if (peak === undefined || e[1] >= peak[1]) peak = e;
    last = e;
  }
  const temp = state.vitals.temperatureC;
  if (temp !== undefined && temp.v >= threshold && inWindow(temp.t) && !keptAt(q, temp.t)) {
    const e: Fever['latest'] = [temp.t, temp.v];
    if (peak === undefined || e[1] > peak[1] || (e[1] === peak[1] && e[0] > peak[0])) peak = e;
    if (last === undefined || e[0] > last[0]) last = e;
  }
  return peak === undefined || last === undefined ? undefined : { peak, latest: last };
}

/** Whether a febrile reading at `t` is kept (they are in time order: looked for from the latest). */
function keptAt(q: PatientState['febrile'], t: number): boolean {
  for (let i = q.length - 1; i >= 0 && q[i]![0] >= t; i--) if (q[i]![0] === t) return true;
  return false;
}

export function hypotensionThresholds(state: PatientState, config: GradingConfig): Thresholds {
  const { hypotensionSystolicBelow: systolic, hypotensionMapBelow: map } = state.enrolment;
  if (!systolic && !map) return config.hypotension;
  return {
    systolicBelow: systolic?.v ?? config.hypotension.systolicBelow,
    mapBelow: map?.v ?? config.hypotension.mapBelow,
  };
}

/**
 * The infusion the current episode is of (epoch ms): the infusedAt of the enrolment observed last, or with
 * episodeStart "latest-infusion" the latest infusedAt of all (state.latestInfusedAt, kept by the reducer).
 */
export function episodeInfusion(state: PatientState): number | undefined {
  const infused = state.enrolment.infusedAt;
  const current = infused ? parseTime(infused.v) : undefined;
  const latest = state.latestInfusedAt;
  return latest === undefined || (current !== undefined && current > latest) ? current : latest;
}

/** When the current episode started: its infusion (episodeInfusion), or the optional end of the last one at CRS 0. */
export function episodeStart(state: PatientState): number {
  const start = episodeInfusion(state) ?? Number.NEGATIVE_INFINITY;
  return state.episodeEndedAt !== undefined && state.episodeEndedAt > start ? state.episodeEndedAt : start;
}

/** One vasopressor agent now infusing: the pumps of one drug (several entries of a drug are one agent). */
interface Agent {
  drug: VasopressorDrug;
  pumps: VasopressorEntry[];
  /** "norepinephrine 0.05 mcg/kg/min", or for several pumps "norepinephrine 0.05 + 0.05 mcg/kg/min (2 pumps)". */
  text: string;
  /** "... infusing", at the section's time (shared: every message until the next section names it). */
  reason: Reason;
}

const NO_REASONS: readonly Reason[] = Object.freeze([]);
const NO_AGENTS: Agent[] = Object.freeze([]) as unknown as Agent[];
const agentsBySection = new WeakMap<Timed<VasopressorEntry[]>, Agent[]>();

/** The agents now infusing, from the latest vasopressors section (a dose of 0 is a paused pump, not an infusion). */
function infusingAgents(state: PatientState): Agent[] {
  const section = state.vasopressors;
  if (!section || section.v.length === 0) return NO_AGENTS;
  let agents = agentsBySection.get(section);
  if (!agents) {
    const byDrug = new Map<VasopressorDrug, VasopressorEntry[]>();
    for (const p of section.v) if (p.dose > 0) byDrug.get(p.drug)?.push(p) ?? byDrug.set(p.drug, [p]);
    agents = Object.freeze(
      [...byDrug].map(([drug, pumps]) => {
        const text = agentText(drug, pumps);
        return Object.freeze({
          drug,
          pumps,
          text,
          reason: Object.freeze(reason('vasopressor', text, section.t, `${text} infusing`)),
        });
      }),
    ) as Agent[];
    agentsBySection.set(section, agents);
  }
  return agents;
}

function agentText(drug: VasopressorDrug, pumps: VasopressorEntry[]): string {
  const [first] = pumps;
  if (pumps.length === 1) return `${drug} ${first!.dose} ${first!.unit}`;
  const oneUnit = pumps.every((p) => p.unit === first!.unit);
  const doses = oneUnit
    ? `${pumps.map((p) => p.dose).join(' + ')} ${first!.unit}`
    : pumps.map((p) => `${p.dose} ${p.unit}`).join(' + ');
  return `${drug} ${doses} (${pumps.length} pumps)`;
}

function bpText([, sys, map]: BpReading): string {
  const parts = [];
  if (sys !== null) parts.push(`systolic ${sys}`);
  if (map !== null) parts.push(`MAP ${map}`);
  return `${parts.join(', ')} mmHg`;
}

// A low reading's reason is the same on every message while it is one of the pair hypotension rests on: worked out
// once per reading (the state's readings never change; a reading merged with another is a new one) and thresholds,
// and frozen, since callers share it.
const lowReading = new WeakMap<BpReading, { th: Thresholds; reason: Reason }>();

function lowReadingReason(r: BpReading, th: Thresholds, limits: () => string): Reason {
  const known = lowReading.get(r);
  if (known && known.th.systolicBelow === th.systolicBelow && known.th.mapBelow === th.mapBelow) return known.reason;
  const text = bpText(r);
  const out = Object.freeze(reason('hypotension', text, r[0], `low blood pressure ${text} (${limits()})`));
  lowReading.set(r, { th, reason: out });
  return out;
}

function hypotensionReasons(state: PatientState, config: GradingConfig, agents: Agent[]): Reason[] | undefined {
  const th = hypotensionThresholds(state, config);
  const bp = hypotension(state, th);
  if (!bp.on && agents.length === 0) return undefined;
  const out: Reason[] = [];
  const limits = () => `systolic < ${th.systolicBelow} or MAP < ${th.mapBelow}`;
  if (bp.pair) for (const r of bp.pair) out.push(lowReadingReason(r, th, limits));
  if (bp.stoppedAt !== undefined) {
    out.push(
      reason(
        'hypotension',
        'not cleared after vasopressor',
        bp.stoppedAt,
        'hypotension not cleared: no two consecutive normal readings since the vasopressor stopped',
      ),
    );
  } else if (bp.on && !bp.pair && agents.length === 0) {
    out.push(
      reason('hypotension', 'established', state.clock, `hypotension on consecutive low readings (${limits()})`),
    );
  }
  for (const a of agents) out.push(a.reason);
  return out;
}

/**
 * ASTCT fever waiver: a fever-masking medication at or after a fever of the episode (then at or after its first
 * fever too). maskedFever is the latest fever at or before the latest masking medication: such a pair is in the
 * episode exactly when that fever is, wherever the episode start moves (for a medication charted after later
 * fevers, a fever of the episode before it: reducer.ts maskAt, and the limit in docs/grading-rules.md section 4).
 * When no fever kept says so, the span of dropped febrile readings may (droppedFeverMasked): fail-safe, it waives.
 */
function waiver(state: PatientState, config: GradingConfig): Reason | undefined {
  const fever = state.maskedFever;
  const masked = state.lastMaskingAt;
  if (masked === undefined) return undefined;
  if (config.waiverNeedsInfusionTime && state.enrolment.infusedAt === undefined) return undefined;
  const kept = fever !== undefined && fever >= episodeStart(state);
  if (!kept && !droppedFeverMasked(state)) return undefined;
  // Which drug, for the reader (the waiver rests on the time alone): those of the list charted at that time
  // (lastGiven keeps each drug's latest; none on the list is later). Unnamed when the list changed since (none is).
  const drugs = config.feverMaskingDrugs.filter((d) => state.lastGiven[d] === masked);
  const words = `fever not required: fever-masking medication${drugs.length > 0 ? ` (${drugs.join(', ')})` : ''}`;
  if (kept)
    return reason('fever-waiver', true, masked, [
      `${words} given on or after a fever of the episode (`,
      { at: iso(fever) },
      ')',
    ]);
  // No reading kept says which: name the span, not a time no reading had.
  return reason('fever-waiver', true, masked, [
    `${words} given on or after a fever of the episode (maybe one of the febrile readings between `,
    { at: iso(state.feverDropped![0]) },
    ' and ',
    { at: iso(state.feverDropped![1]) },
    ', no longer kept: graded as if so)',
  ]);
}

/**
 * Where a febrile reading dropped from the kept ones (feverDropped) can be a fever of the episode at or before the
 * latest masking medication: [from, to], the span within the episode and up to that medication, or undefined. The
 * kept history cannot tell whether one is, so the waiver takes it as one (fail-safe: the rules' grade is never
 * higher; it may be lower, when none of those readings falls there: docs/grading-rules.md section 4).
 */
export function droppedFeverMasked(state: PatientState): [from: number, to: number] | undefined {
  const span = state.feverDropped;
  const masked = state.lastMaskingAt;
  if (!span || masked === undefined) return undefined;
  const from = Math.max(span[0], episodeStart(state));
  const to = Math.min(span[1], masked);
  return from <= to ? [from, to] : undefined;
}

// A febrile reading's reasons are the same on every message while it stays the latest or the peak: worked out once
// per reading (the state's [t, °C] pairs never change; a correction makes a new one) and frozen, since callers share
// them.
const feverReason = new WeakMap<Fever['latest'], Reason>();
const peakReason = new WeakMap<Fever['peak'], Reason>();

function feverReasons(state: PatientState, config: GradingConfig): Reason[] | undefined {
  const f = fever(state, config);
  if (!f) return undefined;
  const [t, c] = f.latest;
  let latest = feverReason.get(f.latest);
  if (!latest) feverReason.set(f.latest, (latest = Object.freeze(reason('fever', c, t, `fever ${c} °C`))));
  // Arrays of their length: pushing onto [latest] would grow it to 18 places.
  if (!(f.peak[1] > c)) return [latest];
  let peak = peakReason.get(f.peak);
  if (!peak)
    peakReason.set(
      f.peak,
      (peak = Object.freeze(reason('fever-peak', f.peak[1], f.peak[0], `peak ${f.peak[1]} °C in the fever window`))),
    );
  return [latest, peak];
}

/** The ASTCT entry criterion (fever, or the fever waiver). Undefined when neither holds. */
function entryCriterion(
  state: PatientState,
  config: GradingConfig,
): { febrile: boolean; reasons: Reason[] } | undefined {
  const febrile = feverReasons(state, config);
  if (febrile) return { febrile: true, reasons: febrile };
  const waived = waiver(state, config);
  return waived ? { febrile: false, reasons: [waived] } : undefined;
}

/** Supplemental oxygen that counts (not room air, not for comfort). */
function supplementalOxygen(state: PatientState) {
  const o = state.oxygen;
  if (!o || o.v.device === 'room_air' || o.v.forComfort === true) return undefined;
  return o;
}

function oxygenText(device: OxygenDevice, flowLpm?: number, fio2?: number): string {
  let s = OXYGEN_DEVICE_NAMES[device];
  if (flowLpm !== undefined) s += ` ${flowLpm} L/min`;
  if (fio2 !== undefined) s += ` FiO2 ${fio2}`;
  return s;
}

// ------------------------------------------------------------------------------------------------ ASTCT 2019

function astctHypotensionGrade(agents: Agent[]): number {
  let nonVasopressin = 0;
  for (const a of agents) if (a.drug !== 'vasopressin') nonVasopressin++;
  if (nonVasopressin >= 2) return 4;
  if (agents.length > 0) return 3; // exactly one non-vasopressin (with or without vasopressin), or vasopressin alone
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

function gradeAstct(state: PatientState, config: GradingConfig): Graded {
  const entry = entryCriterion(state, config);
  if (!entry) {
    const why = `no temperature >= ${config.feverThresholdC} °C in the last ${config.feverWindowMinutes / 60} h`;
    return { grade: 0, reasons: [reason('no-fever', false, state.clock, `CRS entry criterion not met: ${why}`)] };
  }
  const agents = infusingAgents(state);
  const hypo = hypotensionReasons(state, config, agents);
  const oxygen = astctOxygen(state, config);
  if (!entry.febrile && !hypo && !oxygen) {
    // The waiver lets CRS grade without fever; what makes it 0 is that nothing grades it (crs-rules section 1).
    const why = `no temperature >= ${config.feverThresholdC} °C in the last ${config.feverWindowMinutes / 60} h, no hypotension and no hypoxia`;
    entry.reasons.push(reason('no-fever', false, state.clock, `CRS 0 with the fever waiver: ${why}`));
    return { grade: 0, reasons: entry.reasons };
  }
  let grade = entry.febrile ? 1 : 0;
  if (hypo) grade = Math.max(grade, astctHypotensionGrade(agents));
  if (oxygen) grade = Math.max(grade, oxygen.grade);
  // One array of the length needed (pushing onto the entry's reasons grew them by half again and 16 more places).
  const reasons =
    hypo || oxygen ? entry.reasons.concat(hypo ?? NO_REASONS, oxygen?.reasons ?? NO_REASONS) : entry.reasons;
  return { grade, reasons };
}

// -------------------------------------------------------------------------------------------------- Lee 2014

/** FiO2 given, or estimated from the device (the page says when it was estimated). */
function leeFio2(
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
          : {
              estimated: true,
              note: `flow not documented: graded as low-flow (FiO2 below ${withoutFloatNoise(config.lee.fio2Grade3 * 100)} %)`,
            };
      }
      return {
        fio2: Math.min(est.nasalCannulaMax, withoutFloatNoise(0.21 + est.nasalCannulaPerLpm * flowLpm)),
        estimated: true,
      };
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
  const grade = f.fio2 >= threshold ? 3 : 2;
  const cmp = grade === 3 ? `>= ${threshold}` : `< ${threshold}`;
  const note = f.note ? `; ${f.note}` : '';
  // A given FiO2 is in the device's text already: said once (until 2026-12-06 "FiO2 0.45: FiO2 0.45 (>= 0.4)").
  const words = f.estimated
    ? `${text}: FiO2 estimated ${f.fio2} from the device (${cmp}${note})`
    : `${text} (${cmp}${note})`;
  return { grade, reasons: [reason('fio2', f.fio2, o.t, words)] };
}

/** A vasopressor dose in the unit of the high-dose threshold, or undefined when it cannot be converted. */
function doseIn(v: VasopressorEntry, unit: 'mcg/min' | 'mcg/kg/min', weightKg: number | undefined): number | undefined {
  if (v.unit === unit) return v.dose;
  if (v.unit === 'units/min' || weightKg === undefined) return undefined;
  return unit === 'mcg/min' ? v.dose * weightKg : v.dose / weightKg;
}

function leeHypotension(state: PatientState, config: GradingConfig): Graded | undefined {
  const agents = infusingAgents(state);
  const reasons = hypotensionReasons(state, config, agents);
  if (!reasons) return undefined;
  if (agents.length === 0) return { grade: 2, reasons };
  const t = state.vasopressors!.t;
  if (agents.length >= 2) {
    return {
      grade: 3,
      reasons: [...reasons, reason('vasopressor', agents.length, t, `multiple vasopressors (${agents.length} drugs)`)],
    };
  }
  const a = agents[0]!;
  if (a.drug === 'vasopressin') {
    return {
      grade: 2,
      reasons: [...reasons, reason('vasopressor', 'low-dose', t, 'vasopressin monotherapy counts as low-dose')],
    };
  }
  const limit = config.lee.highDose[a.drug];
  const weight = state.enrolment.weightKg?.v;
  // Several pumps of one drug are one agent: the summed dose is compared with the threshold.
  let dose: number | undefined = 0;
  for (const p of a.pumps) {
    const d = doseIn(p, limit.unit, weight);
    if (d === undefined) {
      dose = undefined;
      break;
    }
    dose += d;
  }
  if (dose === undefined) {
    const units = a.pumps.some((p) => p.unit === 'units/min');
    const why = units
      ? `units/min cannot be compared with ${limit.dose} ${limit.unit}`
      : `no enrolment weight to convert to ${limit.unit}`;
    return {
      grade: 3,
      reasons: [
        ...reasons,
        reason('vasopressor', 'high-dose (unconvertible)', t, `${a.drug} graded as high-dose: ${why} (fail safe)`),
      ],
    };
  }
  // The sum as the pumps say it: 0.1 + 8.2 + 1.7 mcg/min is 10 (high-dose), not 9.999999999999998.
  dose = withoutFloatNoise(dose);
  // A dose converted with the enrolment weight says which weight: a weight charted since can move the grade.
  const converted = [...new Set(a.pumps.filter((p) => p.unit !== limit.unit).map((p) => p.unit))];
  const notes = [
    ...(a.pumps.length > 1 ? [`${a.pumps.length} pumps summed`] : []),
    ...(converted.length > 0 ? [`from ${converted.join(' and ')} at ${weight} kg`] : []),
  ];
  const summed = notes.length > 0 ? ` (${notes.join(', ')})` : '';
  if (dose >= limit.dose) {
    return {
      grade: 3,
      reasons: [
        ...reasons,
        reason('vasopressor', 'high-dose', t, `${a.drug} high-dose: ${dose} ${limit.unit}${summed} >= ${limit.dose}`),
      ],
    };
  }
  return {
    grade: 2,
    reasons: [
      ...reasons,
      reason('vasopressor', 'low-dose', t, `${a.drug} low-dose: ${dose} ${limit.unit}${summed} < ${limit.dose}`),
    ],
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

/** Lee 2014 (seed Table 3): the highest row that matches; no fever needed for grades 2-4; grade 1 is fever. */
function gradeLee(state: PatientState, config: GradingConfig): Graded {
  const febrile = feverReasons(state, config);
  let grade = febrile ? 1 : 0;
  const reasons = febrile ?? []; // built afresh for this grading
  for (const part of [leeHypotension(state, config), leeOxygen(state, config), leeOrgan(state)]) {
    if (!part) continue;
    grade = Math.max(grade, part.grade);
    reasons.push(...part.reasons);
  }
  if (grade === 0) {
    const why = `no temperature >= ${config.feverThresholdC} °C in the last ${config.feverWindowMinutes / 60} h, no hypotension, oxygen requirement or organ toxicity grade >= 2`;
    reasons.push(reason('no-fever', false, state.clock, `no Lee 2014 criterion met: ${why}`));
  }
  return { grade, reasons };
}

// ------------------------------------------------------------------------------------------------- CRS, ICANS

export function gradeCrs(state: PatientState, config: GradingConfig, scheme: Scheme = config.scheme): Graded {
  return scheme === 'lee2014' ? gradeLee(state, config) : gradeAstct(state, config);
}

const CONSCIOUSNESS_GRADE = {
  alert: 0,
  awakens_spontaneously: 1,
  awakens_to_voice: 2,
  awakens_to_touch: 3,
  unarousable: 4,
} as const;
const SEIZURE_GRADE = { none: 0, self_limited: 3, prolonged: 4 } as const;
const EDEMA_GRADE = { none: 0, focal: 3, diffuse: 4 } as const;

function iceGrade(score: number): number {
  if (score >= 10) return 0;
  if (score >= 7) return 1;
  if (score >= 3) return 2;
  return 3;
}

const NO_ICANS: Graded = Object.freeze({ grade: 0, reasons: Object.freeze([]) as unknown as Reason[] });

// Most messages leave the neuro fields as they were: the grade and reasons are worked out once per neuro object
// (states never change one; a neuro section makes a new one) and frozen, since callers share them.
const icansByNeuro = new WeakMap<object, Graded>();

/**
 * ICANS: the most severe domain over the neuro fields, each the latest value observed for it (a field left out of
 * a message keeps its value; before any value a domain is normal).
 */
export function gradeIcans(state: PatientState): Graded {
  const n = state.neuro;
  let graded = icansByNeuro.get(n);
  if (!graded) icansByNeuro.set(n, (graded = icansOf(n)));
  return graded;
}

/**
 * The neuro values an ICANS grade of 0 rests on: every domain known (each normal then), with its value and time.
 * What a page standing ICANS down to 0 names (crs-rules.md section 6: the criteria that drove the grade); the
 * assessments and the board list ICANS reasons only above 0, as before.
 */
export function icansNormalReasons(state: PatientState): Reason[] {
  return icansDomains(state.neuro).map(([, r]) => r);
}

function icansDomains(n: TimedFields<NeuroFields>): [number, Reason][] {
  const { iceScore, consciousness, seizure, motorWeakness, cerebralEdema } = n;
  const domains: [number, Reason][] = [];
  if (iceScore)
    domains.push([iceGrade(iceScore.v), reason('ice-score', iceScore.v, iceScore.t, `ICE score ${iceScore.v}/10`)]);
  if (consciousness) {
    const c = consciousness.v;
    domains.push([
      CONSCIOUSNESS_GRADE[c],
      reason('consciousness', c, consciousness.t, `consciousness: ${c.replaceAll('_', ' ')}`),
    ]);
  }
  if (seizure)
    domains.push([
      SEIZURE_GRADE[seizure.v],
      reason('seizure', seizure.v, seizure.t, `seizure: ${seizure.v.replaceAll('_', ' ')}`),
    ]);
  if (motorWeakness) {
    const weak = motorWeakness.v;
    domains.push([
      weak ? 4 : 0,
      reason(
        'motor-weakness',
        weak,
        motorWeakness.t,
        weak ? 'deep focal motor weakness' : 'no deep focal motor weakness',
      ),
    ]);
  }
  if (cerebralEdema) {
    domains.push([
      EDEMA_GRADE[cerebralEdema.v],
      reason('cerebral-edema', cerebralEdema.v, cerebralEdema.t, `cerebral oedema: ${cerebralEdema.v}`),
    ]);
  }
  return domains;
}

function icansOf(n: TimedFields<NeuroFields>): Graded {
  const domains = icansDomains(n);
  let grade = 0;
  for (const [g] of domains) grade = Math.max(grade, g);
  if (grade === 0) return NO_ICANS;
  const reasons = domains.filter(([g]) => g > 0).map(([, r]) => Object.freeze(r));
  return Object.freeze({ grade, reasons: Object.freeze(reasons) as Reason[] });
}
