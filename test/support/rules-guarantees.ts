// What the rules oracles leave out: arrivals outside the engine's documented guarantees (docs/grading-rules.md
// sections 2, 4 and 9), judged on the engine's own state, replayed. Shared by the oracle tests.
import { arrivalOf } from '#app/digest.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { hypotensionThresholds } from '#domain/grading.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';

/**
 * Arrivals inside the engine's documented guarantees (docs/grading-rules.md sections 2, 4 and 9), where these
 * differ from the rules' "no bound may change a result". Left out, by name (each judged on the engine's own state,
 * replayed):
 * - a febrile temperature corrected at its instant (another temperature at the same observedAt) when a febrile
 *   reading arrived before is not kept (`feverHistory` later ones and a covering one pushed it out): the correction
 *   may have needed it;
 * - a late masking medication (one observed later than every masking medication arrived before it, arriving
 *   after a fever observed later than it, when the latest fever observed at or before it is later than those
 *   medications and no longer kept: `feverHistory` later readings and a covering one pushed it out) in a course whose episode start moves after a fever has arrived (an enrolment after fevers,
 *   a re-infusion, an infusion time corrected): the fever the medication follows is then a fever of the episode,
 *   maybe not the latest one before it, which can leave the episode when its start moves;
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
  if (!startMovesAfterFever(arrivals, cfg)) return true;
  return !arrivals.some((_, k) => lateMaskingLosesFever(arrivals.slice(0, k + 1), cfg));
}

/**
 * The engine keeps every febrile reading that has arrived: none was pushed out by `feverHistory` later ones (one
 * that has left the fever window is kept while it is among the latest `feverHistory`: the waiver may rest on it).
 */
function keepsEveryFever(state: PatientState, fevers: Map<number, number>): boolean {
  const kept = new Set(state.febrile.map(([t]) => t));
  return [...fevers.keys()].every((t) => kept.has(t));
}

/** The infusion time in effect (the latest observedAt's, a tie to the later arrival) changes after a fever arrived. */
function startMovesAfterFever(arrivals: DeviceMessage[], cfg: GradingConfig): boolean {
  let infused: { t: number; at: string } | undefined;
  let feverArrived = false;
  for (const m of arrivals) {
    const at = m.enrolment?.infusedAt;
    const t = Date.parse(m.observedAt);
    if (at !== undefined && (infused === undefined || t >= infused.t)) {
      if (feverArrived && Date.parse(at) !== (infused ? Date.parse(infused.at) : undefined)) return true;
      infused = { t, at };
    }
    if ((m.vitals?.temperatureC ?? 0) >= cfg.feverThresholdC) feverArrived = true;
  }
  return false;
}

/** The last arrival is the late masking medication that withinGuarantees names (the engine's state, replayed). */
function lateMaskingLosesFever(arrived: DeviceMessage[], cfg: GradingConfig): boolean {
  const last = arrived.at(-1)!;
  const masking = (m: DeviceMessage) => m.medications?.some((d) => cfg.feverMaskingDrugs.includes(d.drug)) ?? false;
  if (!masking(last)) return false;
  const m = Date.parse(last.observedAt);
  const before = arrived.slice(0, -1);
  const earlier = Math.max(...before.filter(masking).map((x) => Date.parse(x.observedAt)));
  if (earlier >= m) return false;
  // Fevers arrived so far (the message's own temperature is applied before its medications).
  const fevers = arrived
    .filter((x) => (x.vitals?.temperatureC ?? 0) >= cfg.feverThresholdC)
    .map((x) => ({ t: Date.parse(x.observedAt), c: x.vitals!.temperatureC! }));
  if (!fevers.some((f) => f.t > m)) return false;
  const atOrBefore = fevers.filter((f) => f.t <= m);
  if (atOrBefore.length === 0) return false;
  const f = atOrBefore.reduce((a, b) => (b.t > a.t ? b : a));
  if (f.t <= earlier) return false; // the state has it already, from the earlier medication
  const state = before.reduce<PatientState | undefined>((s, x) => reduce(s, x, cfg, arrivalOf(x)).state, undefined);
  return !state?.febrile.some(([t]) => t === f.t);
}
