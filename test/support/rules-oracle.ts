// An independent, deliberately naive reading of the grading rules (../shared/docs/crs-rules.md version 1.1,
// sections 1-4, and docs/grading-rules.md), written from the rules text alone, for differential tests of the
// engine. Naive on purpose: it takes every accepted message of one patient, orders them by observedAt (arrival
// order only among messages of one instant), and recomputes everything from scratch at the patient clock. No
// bounded history, no incremental state, no shared code with shared/domain beyond the contract's types.
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage, VasopressorEntry } from '#domain/contract.ts';

export interface OracleGrades {
  crs: number;
  icans: number;
}

/** The contract's instants and its sets (the pumps infusing, the drugs given at one instant). */
const INSTANTS = new Set(['observedAt', 'infusedAt']);
const SETS = new Set(['vasopressors', 'medications']);

/**
 * The same content (rules section 5: a duplicate is the same messageId and the same content, "the same fields and
 * values, key order aside"): an instant is the instant it denotes, however spelt; a set's entries in any order.
 */
function canonical(v: unknown, key = ''): string {
  if (INSTANTS.has(key) && typeof v === 'string') return String(Date.parse(v));
  if (Array.isArray(v)) {
    const entries = v.map((e) => canonical(e));
    return `[${(SETS.has(key) ? entries.sort() : entries).join(',')}]`;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k], k)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Drops exact duplicates (same messageId and content, however late); a reused id with new content is kept. */
function accepted(arrivals: readonly DeviceMessage[]): DeviceMessage[] {
  const seen = new Set<string>();
  const out: DeviceMessage[] = [];
  for (const m of arrivals) {
    const key = `${m.messageId}\u0000${canonical(m)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(m);
  }
  return out;
}

interface Timed {
  t: number;
  m: DeviceMessage;
}

/** One instant's merged data: fields field by field (later arrival wins), oxygen and vasopressors whole. */
interface Instant {
  t: number;
  temperatureC?: number;
  systolicBP?: number;
  meanArterialPressure?: number;
  oxygen?: DeviceMessage['oxygen'];
  vasopressors?: VasopressorEntry[];
  medications: string[];
}

function instants(sorted: Timed[]): Instant[] {
  const out: Instant[] = [];
  for (const { t, m } of sorted) {
    let cur = out[out.length - 1];
    if (!cur || cur.t !== t) {
      cur = { t, medications: [] };
      out.push(cur);
    }
    const v = m.vitals;
    if (v?.temperatureC !== undefined) cur.temperatureC = v.temperatureC;
    if (v?.systolicBP !== undefined) cur.systolicBP = v.systolicBP;
    if (v?.meanArterialPressure !== undefined) cur.meanArterialPressure = v.meanArterialPressure;
    if (m.oxygen !== undefined) cur.oxygen = m.oxygen;
    if (m.vasopressors !== undefined) cur.vasopressors = m.vasopressors;
    // Medications are given at observedAt: every one charted at an instant was given, but for a dose of 0 mg.
    for (const d of m.medications ?? []) if (d.doseMg !== 0) cur.medications.push(d.drug);
  }
  return out;
}

/** The latest value of a field by observedAt (the later arrival at one instant): sorted is in that order. */
function latest<T>(sorted: Timed[], get: (m: DeviceMessage) => T | undefined): T | undefined {
  let value: T | undefined;
  for (const { m } of sorted) {
    const v = get(m);
    if (v !== undefined) value = v;
  }
  return value;
}

// ---- exact decimal arithmetic for doses ("0.1 + 8.2 + 1.7 mcg/min is 10, high-dose") -----------------------

const SCALE = 30;
/** A number as written (its shortest decimal form), scaled by 10^SCALE, as a BigInt. */
function dec(x: number): bigint {
  const [mant, expPart] = x.toString().toLowerCase().split('e');
  const exp = expPart === undefined ? 0 : Number(expPart);
  const [int, frac = ''] = mant!.replace('-', '').split('.');
  const digits = BigInt(int! + frac);
  const shift = SCALE + exp - frac.length;
  const v = shift >= 0 ? digits * 10n ** BigInt(shift) : digits / 10n ** BigInt(-shift);
  return mant!.startsWith('-') ? -v : v;
}
const ONE = 10n ** BigInt(SCALE);

/** Lee 2014 high dose for one drug's infusing entries (summed), or true when a dose cannot be converted. */
function leeHighDose(
  drug: Exclude<VasopressorEntry['drug'], 'vasopressin'>,
  entries: VasopressorEntry[],
  weightKg: number | undefined,
  cfg: GradingConfig,
): boolean {
  const threshold = cfg.lee.highDose[drug];
  const w = weightKg === undefined ? undefined : dec(weightKg);
  // Work in mcg/min x ONE^2 when the threshold is in mcg/min, else in mcg/kg/min x weight: cross-multiplied.
  let sum = 0n;
  for (const e of entries) {
    if (e.unit === 'units/min') return true;
    if (e.unit === threshold.unit) {
      sum += threshold.unit === 'mcg/min' ? dec(e.dose) * ONE : dec(e.dose) * (w ?? 0n);
      continue;
    }
    if (w === undefined) return true;
    // e in mcg/kg/min, threshold mcg/min: dose x weight. e in mcg/min, threshold mcg/kg/min: dose (x ONE), the
    // threshold side is multiplied by the weight below.
    sum += threshold.unit === 'mcg/min' ? dec(e.dose) * w : dec(e.dose) * ONE;
  }
  if (threshold.unit === 'mcg/min') return sum >= dec(threshold.dose) * ONE;
  if (w === undefined) {
    // Every entry was in mcg/kg/min: compare directly (no weight needed).
    let direct = 0n;
    for (const e of entries) direct += dec(e.dose);
    return direct >= dec(threshold.dose);
  }
  return sum >= dec(threshold.dose) * w;
}

// ---- hypotension (rules section 1) ----------------------------------------------------------------------------

const infusing = (section: VasopressorEntry[] | undefined) => (section ?? []).filter((e) => e.dose > 0);

/**
 * Hypotension at the clock: two consecutive low readings (by observedAt) establish it; a vasopressor infusing is
 * hypotension; it clears after two consecutive normal readings observed strictly after the last vasopressor
 * stopped (a normal reading while one infused, or at the instant it stopped, counts toward nothing).
 */
function hypotension(all: Instant[], thresholds: { systolicBelow: number; mapBelow: number }): boolean {
  let on = false;
  let onPressor = false;
  let prev: 'L' | 'N' | 'V' | undefined;
  for (const i of all) {
    let stoppedHere = false;
    if (i.vasopressors !== undefined) {
      const now = infusing(i.vasopressors).length > 0;
      if (now) {
        on = true;
        prev = undefined; // no pair of normal readings spans a vasopressor period
      }
      stoppedHere = onPressor && !now;
      onPressor = now;
    }
    if (i.systolicBP === undefined && i.meanArterialPressure === undefined) continue;
    const low =
      (i.systolicBP !== undefined && i.systolicBP < thresholds.systolicBelow) ||
      (i.meanArterialPressure !== undefined && i.meanArterialPressure < thresholds.mapBelow);
    const cls = low ? 'L' : onPressor || stoppedHere ? 'V' : 'N';
    if (cls === 'L' && prev === 'L') on = true;
    if (cls === 'N' && prev === 'N') on = false;
    prev = cls;
  }
  return on;
}

// ---- the grades -----------------------------------------------------------------------------------------------

const VENTILATION = new Set(['cpap', 'bipap', 'mechanical_ventilation']);
const ASTCT_GRADE3_DEVICES = new Set(['high_flow_nasal_cannula', 'simple_mask', 'non_rebreather', 'venturi']);

function astctOxygen(o: DeviceMessage['oxygen'], cfg: GradingConfig): number {
  if (!o || o.forComfort === true || o.device === 'room_air') return 0;
  if (VENTILATION.has(o.device)) return 4;
  if (ASTCT_GRADE3_DEVICES.has(o.device)) return 3;
  if (o.device === 'blow_by') return 2;
  // nasal cannula
  if (o.flowLpm === undefined) return cfg.nasalCannulaUnknownFlow === 'high' ? 3 : 2;
  return o.flowLpm <= cfg.lowFlowMaxLpm ? 2 : 3;
}

function leeOxygen(o: DeviceMessage['oxygen'], cfg: GradingConfig): number {
  if (!o || o.forComfort === true || o.device === 'room_air') return 0;
  if (VENTILATION.has(o.device)) return 4;
  const est = cfg.lee.fio2Estimate;
  let fio2: number;
  if (o.fio2 !== undefined) fio2 = o.fio2;
  else if (o.device === 'nasal_cannula') {
    if (o.flowLpm === undefined) return cfg.nasalCannulaUnknownFlow === 'high' ? 3 : 2;
    // Exact: 0.21 + 0.04 x flow, at most the cap, compared in decimal.
    const e = dec(0.21) + (dec(est.nasalCannulaPerLpm) * dec(o.flowLpm)) / ONE;
    const capped = e > dec(est.nasalCannulaMax) ? dec(est.nasalCannulaMax) : e;
    return capped >= dec(cfg.lee.fio2Grade3) ? 3 : 2;
  } else fio2 = est[o.device as 'blow_by' | 'simple_mask' | 'non_rebreather' | 'venturi' | 'high_flow_nasal_cannula'];
  return dec(fio2) >= dec(cfg.lee.fio2Grade3) ? 3 : 2;
}

const ICE = (s: number) => (s >= 10 ? 0 : s >= 7 ? 1 : s >= 3 ? 2 : 3);
const CONSCIOUSNESS: Record<string, number> = {
  alert: 0,
  awakens_spontaneously: 1,
  awakens_to_voice: 2,
  awakens_to_touch: 3,
  unarousable: 4,
};
const SEIZURE: Record<string, number> = { none: 0, self_limited: 3, prolonged: 4 };
const EDEMA: Record<string, number> = { none: 0, focal: 3, diffuse: 4 };

/** The grades as of the patient clock, for every accepted message of one patient in arrival order. */
export function oracleGrades(arrivals: readonly DeviceMessage[], cfg: GradingConfig): OracleGrades {
  const sorted: Timed[] = accepted(arrivals)
    .map((m, k) => ({ t: Date.parse(m.observedAt), m, k }))
    .sort((a, b) => a.t - b.t || a.k - b.k);
  if (sorted.length === 0) return { crs: 0, icans: 0 };
  const clock = sorted[sorted.length - 1]!.t;
  const all = instants(sorted);

  // Enrolment: each field its latest value. The episode starts at the infusedAt observed last, or (episodeStart
  // "latest-infusion") at the latest infusedAt any accepted enrolment gave.
  const infusedAt = latest(sorted, (m) => m.enrolment?.infusedAt);
  const infusions = sorted.flatMap(({ m }) => (m.enrolment?.infusedAt === undefined ? [] : [m.enrolment.infusedAt]));
  const episodeStart =
    infusedAt === undefined
      ? -Infinity
      : cfg.episodeStart === 'latest-infusion'
        ? Math.max(...infusions.map(Date.parse))
        : Date.parse(infusedAt);
  const weightKg = latest(sorted, (m) => m.enrolment?.weightKg);
  const thresholds = {
    systolicBelow: latest(sorted, (m) => m.enrolment?.hypotension?.systolicBelow) ?? cfg.hypotension.systolicBelow,
    mapBelow: latest(sorted, (m) => m.enrolment?.hypotension?.mapBelow) ?? cfg.hypotension.mapBelow,
  };

  const febrile = (i: Instant) => i.temperatureC !== undefined && i.temperatureC >= cfg.feverThresholdC;
  const window = cfg.feverWindowMinutes * 60_000;
  const inWindow = (i: Instant) => (cfg.feverWindowEdge === 'inclusive' ? clock - i.t <= window : clock - i.t < window);
  const fever = all.some((i) => febrile(i) && inWindow(i));

  const oxygen = latest(sorted, (m) => m.oxygen);
  const section = latest(sorted, (m) => m.vasopressors);
  const hypo = hypotension(all, thresholds);

  // Agents: several entries of one drug are one agent; a paused pump (dose 0) is not infusing.
  const agents = new Map<VasopressorEntry['drug'], VasopressorEntry[]>();
  for (const e of infusing(section)) agents.set(e.drug, [...(agents.get(e.drug) ?? []), e]);

  let crs: number;
  if (cfg.scheme === 'astct2019') {
    const onset = all.find((i) => i.t >= episodeStart && febrile(i))?.t;
    const masking = new Set<string>(cfg.feverMaskingDrugs);
    const waiver =
      onset !== undefined &&
      (infusedAt !== undefined || !cfg.waiverNeedsInfusionTime) &&
      all.some((i) => i.t >= onset && i.medications.some((d) => masking.has(d)));
    const nonVasopressin = [...agents.keys()].filter((d) => d !== 'vasopressin').length;
    const hypoGrade = !hypo ? 0 : agents.size === 0 ? 2 : nonVasopressin >= 2 ? 4 : 3;
    const organ = Math.max(hypoGrade, astctOxygen(oxygen, cfg));
    crs = fever ? Math.max(1, organ) : waiver ? organ : 0;
  } else {
    let hypoGrade = 0;
    if (hypo) {
      if (agents.size === 0) hypoGrade = 2;
      else if (agents.size >= 2) hypoGrade = 3;
      else {
        const [drug, entries] = [...agents][0]!;
        hypoGrade = drug !== 'vasopressin' && leeHighDose(drug, entries, weightKg, cfg) ? 3 : 2;
      }
    }
    const ctcae = latest(sorted, (m) => m.organToxicity?.maxCtcaeGrade) ?? 0;
    const transaminitis = latest(sorted, (m) => m.organToxicity?.transaminitisGrade) ?? 0;
    const organ = Math.max(ctcae >= 2 ? ctcae : 0, transaminitis === 4 ? 3 : transaminitis >= 2 ? transaminitis : 0);
    crs = Math.max(fever ? 1 : 0, leeOxygen(oxygen, cfg), hypoGrade, organ);
  }

  const ice = latest(sorted, (m) => m.neuro?.iceScore);
  const consciousness = latest(sorted, (m) => m.neuro?.consciousness);
  const seizure = latest(sorted, (m) => m.neuro?.seizure);
  const motor = latest(sorted, (m) => m.neuro?.motorWeakness);
  const edema = latest(sorted, (m) => m.neuro?.cerebralEdema);
  const icans = Math.max(
    ice === undefined ? 0 : ICE(ice),
    consciousness === undefined ? 0 : CONSCIOUSNESS[consciousness]!,
    seizure === undefined ? 0 : SEIZURE[seizure]!,
    motor === true ? 4 : 0,
    edema === undefined ? 0 : EDEMA[edema]!,
  );
  return { crs, icans };
}
