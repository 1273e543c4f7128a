// What the rules oracles leave out: arrivals outside the engine's documented guarantees (docs/grading-rules.md
// sections 2, 4 and 9), judged on the engine's own state, replayed. Shared by the oracle tests.
import { arrivalOf } from '#app/digest.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { hypotensionThresholds } from '#domain/grading.ts';
import { reduce } from '#domain/reducer.ts';
import { oracleGrades } from './rules-oracle.ts';
import type { PatientState } from '#domain/state.ts';

/**
 * Arrivals inside the engine's documented guarantees (docs/grading-rules.md sections 2, 4 and 9), where these
 * differ from the rules' "no bound may change a result". Left out, by name (each judged on the engine's own state,
 * replayed):
 * - a febrile temperature corrected at its instant (another temperature at the same observedAt) when a febrile
 *   reading arrived before is not kept (`feverHistory` later ones and a covering one pushed it out): the correction
 *   may have needed it;
 * - a late masking medication (one observed later than every masking medication arrived before it, arriving
 *   after a fever observed later than it) when the state has lost a fever observed after those medications
 *   (`feverHistory` later readings and a covering one pushed it out), and the episode start then moves (an arrival
 *   after it changes the infusion time in effect, or the episode ends at CRS 0): docs/grading-rules.md section 4,
 *   "limits of what is kept". The fever the medication follows is a fever of the episode, maybe not the latest
 *   one before it, and the fever after it maybe not the earliest, either of which can leave the episode when its
 *   start moves. A start that moves before such a medication arrives is inside the guarantees (section 4: the
 *   waiver "stays right wherever the episode start moves");
 * - the patient's own hypotension thresholds changed after blood-pressure readings were folded: the folded ones
 *   keep the class they were folded with.
 * Otherwise the episode start may move anywhere, and masking medications may come in any order.
 */
export function withinGuarantees(arrivals: DeviceMessage[], cfg: GradingConfig): boolean {
  const fevers = new Map<number, number>(); // the febrile reading in effect at each instant (the later arrival)
  const temperatureAt = new Set<number>();
  let state: PatientState | undefined;
  for (const m of arrivals) {
    const t = Date.parse(m.observedAt);
    const c = m.vitals?.temperatureC;
    if (c !== undefined && temperatureAt.has(t) && state && !keepsEveryFever(state, fevers)) return false;
    const before = state && hypotensionThresholds(state, cfg);
    const folded = state !== undefined && state.bpFold.at !== Number.NEGATIVE_INFINITY;
    state = reduce(state, m, cfg, arrivalOf(m)).state;
    const after = hypotensionThresholds(state, cfg);
    if (folded && (before!.systolicBelow !== after.systolicBelow || before!.mapBelow !== after.mapBelow)) return false;
    if (c !== undefined) {
      temperatureAt.add(t);
      if (c >= cfg.feverThresholdC) fevers.set(t, c);
      else fevers.delete(t);
    }
  }
  const late = arrivals.findIndex((_, k) => lateMaskingLosesFever(arrivals.slice(0, k + 1), cfg));
  return late < 0 || !startMovesAfter(arrivals, late, cfg);
}

/**
 * The engine keeps every febrile reading that has arrived: none was pushed out by `feverHistory` later ones (one
 * that has left the fever window is kept while it is among the latest `feverHistory`: the waiver may rest on it).
 */
function keepsEveryFever(state: PatientState, fevers: Map<number, number>): boolean {
  const kept = new Set(state.febrile.map(([t]) => t));
  return [...fevers.keys()].every((t) => kept.has(t));
}

/**
 * The episode start moves at an arrival after the `k`th: the infusion time in effect changes (by the rules text:
 * the latest observedAt's, a tie to the later arrival; with episodeStart "latest-infusion", the latest infusion time
 * given), or the episode ends after hours at CRS 0 (the engine's).
 */
function startMovesAfter(arrivals: DeviceMessage[], k: number, cfg: GradingConfig): boolean {
  let infused: { t: number; at: number } | undefined;
  let state: PatientState | undefined;
  const latestInfusion = cfg.episodeStart === 'latest-infusion';
  for (const [i, m] of arrivals.entries()) {
    const at = m.enrolment?.infusedAt;
    const t = Date.parse(m.observedAt);
    const ended = state?.episodeEndedAt;
    state = reduce(state, m, cfg, arrivalOf(m)).state;
    if (i > k && state.episodeEndedAt !== ended) return true;
    if (at === undefined) continue;
    if (latestInfusion ? infused !== undefined && Date.parse(at) <= infused.at : infused !== undefined && t < infused.t)
      continue;
    if (i > k && Date.parse(at) !== infused?.at) return true;
    infused = { t, at: Date.parse(at) };
  }
  return false;
}

/**
 * The last arrival is the late masking medication that withinGuarantees names: the engine's state before it (or
 * after it) has lost a fever observed after the masking medications before it.
 */
function lateMaskingLosesFever(arrived: DeviceMessage[], cfg: GradingConfig): boolean {
  const last = arrived.at(-1)!;
  const masking = (m: DeviceMessage) => m.medications?.some((d) => cfg.feverMaskingDrugs.includes(d.drug)) ?? false;
  if (!masking(last)) return false;
  const m = Date.parse(last.observedAt);
  const before = arrived.slice(0, -1);
  const earlier = Math.max(...before.filter(masking).map((x) => Date.parse(x.observedAt)));
  if (earlier >= m) return false;
  // The fevers in effect (the later arrival at an instant) observed after those medications.
  const fevers = new Map<number, boolean>();
  for (const x of arrived) {
    const c = x.vitals?.temperatureC;
    if (c !== undefined) fevers.set(Date.parse(x.observedAt), c >= cfg.feverThresholdC);
  }
  const after = [...fevers].filter(([t, f]) => f && t > earlier).map(([t]) => t);
  if (!after.some((t) => t > m)) return false;
  const replay = (xs: DeviceMessage[]) =>
    xs.reduce<PatientState | undefined>((s, x) => reduce(s, x, cfg, arrivalOf(x)).state, undefined);
  const keptBefore = new Set(replay(before)?.febrile.map(([t]) => t));
  const keptAfter = new Set(replay(arrived)!.febrile.map(([t]) => t));
  const own = Date.parse(last.observedAt);
  return after.some((t) => !keptAfter.has(t) || (t !== own && !keptBefore.has(t)));
}

/**
 * The first arrival after which the engine (one message at a time, its bounded state, read back through `load` when
 * given: a store's round trip) and the naive oracle disagree on the CRS or ICANS grade, or undefined.
 */
export function disagreement(
  arrivals: DeviceMessage[],
  cfg: GradingConfig,
  load: (s: PatientState) => PatientState = (s) => s,
) {
  let state: PatientState | undefined;
  let engine = { crs: 0, icans: 0 };
  for (let k = 0; k < arrivals.length; k++) {
    const step = reduce(state, arrivals[k]!, cfg, arrivalOf(arrivals[k]!));
    state = load(step.state);
    if (step.kind === 'applied') engine = { crs: step.assessment.crsGrade, icans: step.assessment.icansGrade };
    const oracle = oracleGrades(arrivals.slice(0, k + 1), cfg);
    if (engine.crs !== oracle.crs || engine.icans !== oracle.icans)
      return { after: k + 1, scheme: cfg.scheme, engine, oracle };
  }
  return undefined;
}
