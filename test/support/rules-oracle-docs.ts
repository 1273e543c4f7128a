// A second reading of docs/grading-rules.md, written from that text alone (not from shared/domain, not from
// rules-oracle.ts), for the interpretations the first oracle leaves at their defaults: the placement of a message
// dated ahead of its arrival (section 1), the optional end of an episode after hours at CRS 0 (section 4, measured
// as messages arrive, so this oracle walks the arrivals in order), and every threshold and estimate of section 13
// set by the caller's configuration. After each arrival it recomputes every grade from the whole set of accepted
// messages as of the patient clock; only the episode end is carried from one arrival to the next.
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage, VasopressorEntry } from '#domain/contract.ts';

export interface Arrived {
  message: DeviceMessage;
  /** When the server accepted it (epoch ms); absent: placed at its observedAt (a replay of a file). */
  receivedAt?: number;
}

export interface DocsGrades {
  crs: number;
  icans: number;
  duplicate: boolean;
}

// ---- exact decimals: every comparison with a threshold is made on the values as written ----------------------

/** A rational number p/q with q > 0, from a number's shortest decimal form. */
type Q = [bigint, bigint];
function q(x: number): Q {
  const [mant, e = '0'] = x.toString().toLowerCase().split('e');
  const neg = mant!.startsWith('-');
  const [int, frac = ''] = mant!.replace('-', '').split('.');
  let p = BigInt(int! + frac);
  let d = 10n ** BigInt(frac.length);
  const exp = Number(e);
  if (exp > 0) p *= 10n ** BigInt(exp);
  else d *= 10n ** BigInt(-exp);
  return [neg ? -p : p, d];
}
const add = (a: Q, b: Q): Q => [a[0] * b[1] + b[0] * a[1], a[1] * b[1]];
const mul = (a: Q, b: Q): Q => [a[0] * b[0], a[1] * b[1]];
const div = (a: Q, b: Q): Q => (b[0] < 0n ? [-a[0] * b[1], a[1] * -b[0]] : [a[0] * b[1], a[1] * b[0]]);
const cmp = (a: Q, b: Q): number => {
  const l = a[0] * b[1];
  const r = b[0] * a[1];
  return l < r ? -1 : l > r ? 1 : 0;
};

/**
 * The same content (docs/grading-rules.md section 10): the same fields and values, whatever the order of keys; an
 * instant (`observedAt`, `enrolment.infusedAt`) as the millisecond it denotes; `vasopressors` and `medications` as
 * sets (their entries in any order, each counted).
 */
function canonical(v: unknown, field?: string): string {
  if ((field === 'observedAt' || field === 'infusedAt') && typeof v === 'string') return `@${new Date(v).getTime()}`;
  if (Array.isArray(v)) {
    const entries = v.map((x) => canonical(x));
    if (field === 'vasopressors' || field === 'medications') entries.sort();
    return `[${entries.join(',')}]`;
  }
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x, k)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

interface Placed {
  /** Where the message is placed: its observedAt, or its arrival when it is dated ahead of that (section 1). */
  t: number;
  /** Arrival position. */
  k: number;
  m: DeviceMessage;
}

/** Fever, section 2: a temperature at an instant is the last one to arrive for that instant. */
function temperatures(ms: Placed[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of ms) if (p.m.vitals?.temperatureC !== undefined) out.set(p.t, p.m.vitals.temperatureC);
  return out;
}

/** The latest value by placement (the later arrival at one instant). `ms` is sorted by (t, k). */
function latestOf<T>(ms: Placed[], get: (m: DeviceMessage) => T | undefined): { v: T; t: number } | undefined {
  let out: { v: T; t: number } | undefined;
  for (const p of ms) {
    const v = get(p.m);
    if (v !== undefined) out = { v, t: p.t };
  }
  return out;
}

/** Section 5: the readings and sections in time order (a section before a reading at one instant). */
function hypotensionOn(ms: Placed[], th: { systolicBelow: number; mapBelow: number }): boolean {
  const times = [...new Set(ms.map((p) => p.t))].sort((a, b) => a - b);
  let on = false;
  let infusing = false;
  let previous: 'L' | 'N' | 'V' | undefined;
  for (const t of times) {
    const here = ms.filter((p) => p.t === t);
    // A section is whole: the last to arrive at this instant.
    const section = here.filter((p) => p.m.vasopressors !== undefined).at(-1)?.m.vasopressors;
    let stoppedNow = false;
    if (section !== undefined) {
      const now = section.some((e) => e.dose > 0);
      if (now) {
        on = true; // a vasopressor infusing is hypotension
        previous = undefined;
      } else if (infusing) {
        stoppedNow = true;
        previous = undefined;
      }
      infusing = now;
    }
    // Systolic and MAP merge field by field over the instant's messages, the last arrival of each field winning.
    let sys: number | undefined;
    let map: number | undefined;
    for (const p of here) {
      if (p.m.vitals?.systolicBP !== undefined) sys = p.m.vitals.systolicBP;
      if (p.m.vitals?.meanArterialPressure !== undefined) map = p.m.vitals.meanArterialPressure;
    }
    if (sys === undefined && map === undefined) continue;
    const low = (sys !== undefined && sys < th.systolicBelow) || (map !== undefined && map < th.mapBelow);
    const cls = low ? 'L' : infusing || stoppedNow ? 'V' : 'N';
    if (cls === 'L' && previous === 'L') on = true;
    if (cls === 'N' && previous === 'N') on = false;
    previous = cls;
  }
  return on;
}

const VENTILATOR = ['cpap', 'bipap', 'mechanical_ventilation'];

function astctOxygen(o: DeviceMessage['oxygen'], cfg: GradingConfig): number {
  if (o === undefined || o.device === 'room_air' || o.forComfort === true) return 0;
  if (VENTILATOR.includes(o.device)) return 4;
  if (o.device === 'blow_by') return 2;
  if (o.device === 'nasal_cannula') {
    if (o.flowLpm === undefined) return cfg.nasalCannulaUnknownFlow === 'low' ? 2 : 3;
    return cmp(q(o.flowLpm), q(cfg.lowFlowMaxLpm)) <= 0 ? 2 : 3;
  }
  return 3; // high-flow nasal cannula, simple mask, non-rebreather, Venturi
}

/** Lee 2014 oxygen (section 7): 4 on a ventilator, else by FiO2 given or estimated. */
function leeOxygen(o: DeviceMessage['oxygen'], cfg: GradingConfig): number {
  if (o === undefined || o.device === 'room_air' || o.forComfort === true) return 0;
  if (VENTILATOR.includes(o.device)) return 4;
  const est = cfg.lee.fio2Estimate;
  let fio2: Q;
  if (o.fio2 !== undefined) fio2 = q(o.fio2);
  else if (o.device === 'nasal_cannula') {
    if (o.flowLpm === undefined) {
      if (cfg.nasalCannulaUnknownFlow === 'low') return 2; // "low-flow (FiO2 below 40 %)"
      fio2 = q(est.nasalCannulaMax); // graded as high-flow: the most a nasal cannula is estimated at
    } else {
      const e = add(q(0.21), mul(q(est.nasalCannulaPerLpm), q(o.flowLpm)));
      fio2 = cmp(e, q(est.nasalCannulaMax)) > 0 ? q(est.nasalCannulaMax) : e;
    }
  } else
    fio2 = q(est[o.device as 'blow_by' | 'simple_mask' | 'non_rebreather' | 'venturi' | 'high_flow_nasal_cannula']);
  return cmp(fio2, q(cfg.lee.fio2Grade3)) >= 0 ? 3 : 2;
}

/** Lee high dose of the one infusing drug: summed over its pumps, converted with the weight; unconvertible is high. */
function leeHighDose(
  drug: Exclude<VasopressorEntry['drug'], 'vasopressin'>,
  pumps: VasopressorEntry[],
  weightKg: number | undefined,
  cfg: GradingConfig,
): boolean {
  const limit = cfg.lee.highDose[drug];
  let sum: Q = [0n, 1n];
  for (const p of pumps) {
    if (p.unit === limit.unit) sum = add(sum, q(p.dose));
    else if (p.unit === 'units/min' || weightKg === undefined) return true;
    else if (limit.unit === 'mcg/min') sum = add(sum, mul(q(p.dose), q(weightKg)));
    else sum = add(sum, div(q(p.dose), q(weightKg)));
  }
  return cmp(sum, q(limit.dose)) >= 0;
}

const ICE = (s: number) => (s >= 10 ? 0 : s >= 7 ? 1 : s >= 3 ? 2 : 3);
const DOMAIN: Record<string, Record<string, number>> = {
  consciousness: { alert: 0, awakens_spontaneously: 1, awakens_to_voice: 2, awakens_to_touch: 3, unarousable: 4 },
  seizure: { none: 0, self_limited: 3, prolonged: 4 },
  cerebralEdema: { none: 0, focal: 3, diffuse: 4 },
};

function icans(sorted: Placed[]): number {
  const n = (f: keyof NonNullable<DeviceMessage['neuro']>) => latestOf(sorted, (m) => m.neuro?.[f])?.v;
  const ice = n('iceScore') as number | undefined;
  let g = ice === undefined ? 0 : ICE(ice);
  for (const f of ['consciousness', 'seizure', 'cerebralEdema'] as const) {
    const v = n(f) as string | undefined;
    if (v !== undefined) g = Math.max(g, DOMAIN[f]![v]!);
  }
  if (n('motorWeakness') === true) g = 4;
  return g;
}

interface Episode {
  /** The infusion time the episode end below belongs to. */
  infusedAt: number | undefined;
  /** When the episode ended after hours at CRS 0 (undefined: it has not). */
  endedAt: number | undefined;
  /** Since when (patient clock) CRS has been computed as 0. */
  zeroSince: number | undefined;
}

function crsGrade(sorted: Placed[], clock: number, episodeStart: number, cfg: GradingConfig, infused: boolean) {
  const temps = temperatures(sorted);
  const febrileTimes = [...temps].filter(([, c]) => c >= cfg.feverThresholdC).map(([t]) => t);
  const windowMs = cfg.feverWindowMinutes * 60_000;
  const fever = febrileTimes.some((t) =>
    cfg.feverWindowEdge === 'inclusive' ? clock - t <= windowMs : clock - t < windowMs,
  );
  const enrolment = (f: 'weightKg') => latestOf(sorted, (m) => m.enrolment?.[f])?.v;
  const th = {
    systolicBelow: latestOf(sorted, (m) => m.enrolment?.hypotension?.systolicBelow)?.v ?? cfg.hypotension.systolicBelow,
    mapBelow: latestOf(sorted, (m) => m.enrolment?.hypotension?.mapBelow)?.v ?? cfg.hypotension.mapBelow,
  };
  const hypo = hypotensionOn(sorted, th);
  const section = latestOf(sorted, (m) => m.vasopressors)?.v ?? [];
  const drugs = new Map<VasopressorEntry['drug'], VasopressorEntry[]>();
  for (const p of section) if (p.dose > 0) drugs.set(p.drug, [...(drugs.get(p.drug) ?? []), p]);
  const oxygen = latestOf(sorted, (m) => m.oxygen)?.v;

  if (cfg.scheme === 'astct2019') {
    const onset = febrileTimes.filter((t) => t >= episodeStart).sort((a, b) => a - b)[0];
    const waiver =
      onset !== undefined &&
      (infused || !cfg.waiverNeedsInfusionTime) &&
      sorted.some((p) => p.t >= onset && (p.m.medications ?? []).some((d) => cfg.feverMaskingDrugs.includes(d.drug)));
    if (!fever && !waiver) return { grade: 0, febrileTimes };
    let organ = 0;
    if (hypo) {
      const nonVasopressin = [...drugs.keys()].filter((d) => d !== 'vasopressin').length;
      organ = nonVasopressin >= 2 ? 4 : drugs.size > 0 ? 3 : 2;
    }
    organ = Math.max(organ, astctOxygen(oxygen, cfg));
    return { grade: Math.max(fever ? 1 : 0, organ), febrileTimes };
  }
  let g = fever ? 1 : 0;
  if (hypo) {
    if (drugs.size >= 2) g = Math.max(g, 3);
    else if (drugs.size === 0) g = Math.max(g, 2);
    else {
      const [drug, pumps] = [...drugs][0]!;
      g = Math.max(g, drug !== 'vasopressin' && leeHighDose(drug, pumps, enrolment('weightKg'), cfg) ? 3 : 2);
    }
  }
  g = Math.max(g, leeOxygen(oxygen, cfg));
  const ctcae = latestOf(sorted, (m) => m.organToxicity?.maxCtcaeGrade)?.v ?? 0;
  const tx = latestOf(sorted, (m) => m.organToxicity?.transaminitisGrade)?.v ?? 0;
  if (ctcae >= 2) g = Math.max(g, ctcae);
  if (tx >= 2) g = Math.max(g, Math.min(tx, 3));
  return { grade: g, febrileTimes };
}

/**
 * Section 1: placed at its observedAt, or at its arrival when it is dated ahead of that (aheadOfArrival "arrival",
 * the default; a caller passes no arrival under "observedAt"); a message for an observedAt
 * placed ahead before is placed where that one was (one instant), while it is among the latest 32 so placed. The
 * instants placed ahead keep their observedAt order, each at its own time: when the arrival is not after where the
 * one observed just before it was placed, or not before where the one observed just after it was, it goes midway
 * between those two (to the millisecond, rounded down), or 16 ms after the one before (before the one after) when
 * there is one only; always before its own observedAt; where no millisecond is left between them, with the one
 * before. `placed` (observedAt -> where) is updated.
 */
export function placedAt(placed: Map<number, number>, observed: number, receivedAt: number | undefined): number {
  const known = placed.get(observed);
  if (known !== undefined) return known;
  if (receivedAt === undefined || receivedAt >= observed) return observed;
  const before = [...placed].filter(([o]) => o < observed).sort((a, b) => b[0] - a[0])[0]?.[1];
  const after = [...placed].filter(([o]) => o > observed).sort((a, b) => a[0] - b[0])[0]?.[1];
  let t = receivedAt;
  if ((before !== undefined && t <= before) || (after !== undefined && t >= after)) {
    if (before !== undefined && after !== undefined) t = Math.floor((before + after) / 2);
    else if (before !== undefined) t = before + 16;
    else t = after! - 16;
  }
  t = Math.min(t, observed - 1);
  if (before !== undefined && t <= before) t = before;
  placed.set(observed, t);
  const oldest = [...placed.keys()].sort((a, b) => a - b);
  while (placed.size > 32) placed.delete(oldest.shift()!);
  return t;
}

/** The grades after each arrival, duplicates included (a duplicate changes nothing and is marked). */
export function docsOracle(arrivals: readonly Arrived[], cfg: GradingConfig): DocsGrades[] {
  const identities = new Set<string>();
  const accepted: Placed[] = [];
  const placedAhead = new Map<number, number>();
  const episode: Episode = { infusedAt: undefined, endedAt: undefined, zeroSince: undefined };
  const out: DocsGrades[] = [];
  let last = { crs: 0, icans: 0 };
  arrivals.forEach(({ message: m, receivedAt }, k) => {
    const id = `${m.messageId}\u0000${canonical(m)}`;
    if (identities.has(id)) {
      out.push({ ...last, duplicate: true });
      return;
    }
    identities.add(id);
    // aheadOfArrival "observedAt" (section 1): every message at its observedAt, as with no arrival time.
    const t = placedAt(
      placedAhead,
      Date.parse(m.observedAt),
      cfg.aheadOfArrival === 'arrival' ? receivedAt : undefined,
    );
    accepted.push({ t, k, m });
    const sorted = [...accepted].sort((a, b) => a.t - b.t || a.k - b.k);
    const clock = sorted.at(-1)!.t;
    // The infusion the episode is of: the infusedAt observed last (section 4), or with episodeStart
    // "latest-infusion" the latest infusion time of every accepted message, whenever observed.
    const infusedText = latestOf(sorted, (x) => x.enrolment?.infusedAt)?.v;
    const given = accepted.map((p) => p.m.enrolment?.infusedAt).filter((x): x is string => x !== undefined);
    const infusedAt =
      infusedText === undefined
        ? undefined
        : cfg.episodeStart === 'latest-infusion'
          ? Math.max(...given.map((x) => Date.parse(x)))
          : Date.parse(infusedText);
    // A new infusion (a later infusion time) starts a new episode: the end at CRS 0 belonged to the old one. The docs
    // do not say whether the hours at CRS 0 before it count toward ending the new one: this reads them as the old
    // episode's too (the count starts again), as the engine does (an ambiguity reported with this oracle).
    if (episode.infusedAt !== undefined && infusedAt !== undefined && infusedAt > episode.infusedAt) {
      episode.endedAt = undefined;
      episode.zeroSince = undefined;
    }
    episode.infusedAt = infusedAt;
    const start = Math.max(infusedAt ?? Number.NEGATIVE_INFINITY, episode.endedAt ?? Number.NEGATIVE_INFINITY);
    const { grade, febrileTimes } = crsGrade(sorted, clock, start, cfg, infusedAt !== undefined);
    // The optional end: CRS computed as 0 for N hours of patient clock, in an episode that has had a fever.
    if (grade > 0) episode.zeroSince = undefined;
    else {
      episode.zeroSince ??= clock;
      const n = cfg.episodeEndsAfterHoursAtGrade0;
      if (n !== null && febrileTimes.some((t) => t >= start) && clock - episode.zeroSince >= n * 3_600_000)
        episode.endedAt = clock;
    }
    last = { crs: grade, icans: icans(sorted) };
    out.push({ ...last, duplicate: false });
  });
  return out;
}
