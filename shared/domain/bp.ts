// The blood-pressure history behind the hypotension rule (crs-rules.md section 1, v1.1 items 2 and 3).
//
// Kept: the raw readings [t, systolic, MAP] and the vasopressor points [t, infusing] in observedAt order, so that
// the rule is evaluated at grading time over the data ordered by time (whatever order it arrived in) and with
// the patient's current thresholds. Only the oldest readings and points beyond a count bound are folded, in time
// order, into a small summary (BpFold): the rule's state machine as of the newest folded instant.
//
// The rule, as a walk over readings and points in observedAt order (a point before a reading at the same instant):
//   - a reading is L (low: systolic or MAP below its threshold), N (normal), or V (normal, but taken while a
//     vasopressor infused or at the instant one stopped: it counts toward nothing and separates readings);
//   - two consecutive L: hypotension on; two consecutive N: off; a vasopressor infusing: on, and it stays on after
//     the stop until two consecutive N observed after the stop.

/** A blood-pressure reading: [observedAt, systolic or null, mean arterial pressure or null]. */
export type BpReading = [t: number, systolic: number | null, map: number | null];

/** A vasopressors section reduced to what the rule needs: [observedAt, whether any pump infuses (dose > 0)]. */
export type PressorPoint = [t: number, infusing: boolean];

/** Class of the last reading that can still pair with the next one: none, low or normal. */
export type Last = 0 | 1 | 2;
const NONE: Last = 0;
const LOW: Last = 1;
const NORMAL: Last = 2;

/** The rule's state as of the newest folded instant `at` (readings and points at or before it are not kept). */
export interface BpFold {
  /** Newest folded instant (-Infinity: nothing folded yet). */
  at: number;
  on: boolean;
  last: Last;
  /** Whether a vasopressor infused as of `at`. */
  infusing: boolean;
  /** When the vasopressor last stopped, while hypotension has not cleared since (for the reasons). */
  stoppedAt: number | null;
  /** The latest two consecutive low readings, while hypotension has stayed on since them (for the reasons). */
  pair: [BpReading, BpReading] | null;
  /** The last folded reading when it was low (the first of a pair the next reading may complete). */
  prev: BpReading | null;
}

export const NOTHING_FOLDED: BpFold = Object.freeze({
  at: Number.NEGATIVE_INFINITY,
  on: false,
  last: NONE,
  infusing: false,
  stoppedAt: null,
  pair: null,
  prev: null,
});

export interface BpHistory {
  bp: BpReading[];
  pressors: PressorPoint[];
  bpFold: BpFold;
  bpMemo?: BpMemo | undefined;
}

export interface Thresholds {
  systolicBelow: number;
  mapBelow: number;
}

function isLowReading(r: BpReading, th: Thresholds): boolean {
  const sys = r[1];
  const map = r[2];
  return (sys !== null && sys < th.systolicBelow) || (map !== null && map < th.mapBelow);
}

/** The rule's walk state; `apply*` step it over one point or one reading. */
interface Walk {
  on: boolean;
  last: Last;
  infusing: boolean;
  stoppedAt: number | null;
  /** Time of the latest stop (a normal reading at that instant is V). */
  stopT: number;
  /** The latest two consecutive low readings while hypotension has stayed on. */
  pair: [BpReading, BpReading] | undefined;
  prev: BpReading | undefined;
}

function applyPoint(w: Walk, [t, infusing]: PressorPoint): void {
  if (infusing) {
    w.on = true;
    w.last = NONE;
    w.infusing = true;
    w.stoppedAt = null;
  } else if (w.infusing) {
    w.infusing = false;
    w.stoppedAt = t;
    w.stopT = t;
    w.last = NONE;
  }
}

function applyReading(w: Walk, r: BpReading, th: Thresholds): void {
  if (isLowReading(r, th)) {
    if (w.last === LOW) {
      w.on = true;
      w.pair = w.prev ? [w.prev, r] : undefined; // (a state migrated from version 1 may not know the first)
    }
    w.last = LOW;
    w.prev = r;
  } else if (w.infusing || r[0] === w.stopT) {
    w.last = NONE; // V: taken on a vasopressor, or at the instant it stopped
  } else {
    if (w.last === NORMAL && w.on) {
      w.on = false;
      w.pair = undefined;
      w.stoppedAt = null;
    }
    w.last = NORMAL;
  }
}

function startWalk(f: BpFold): Walk {
  return {
    on: f.on,
    last: f.last,
    infusing: f.infusing,
    stoppedAt: f.stoppedAt,
    stopT: f.stoppedAt ?? Number.NaN,
    pair: f.pair ?? undefined,
    prev: f.prev ?? undefined,
  };
}

export interface Hypotension {
  on: boolean;
  /** The latest two consecutive low readings, when hypotension has stayed on since them. */
  pair?: [BpReading, BpReading];
  /** The vasopressor stopped at this time and two consecutive normal readings have not followed yet. */
  stoppedAt?: number;
}

/** The rule evaluated over the kept history with the given thresholds. */
export function hypotension(h: BpHistory, th: Thresholds): Hypotension {
  const m = validMemo(h, th) ?? memoFor(h, th);
  return (m.result ??= resultOf(m));
}

function walk(h: BpHistory, th: Thresholds): Walk {
  const w = startWalk(h.bpFold);
  const { bp, pressors } = h;
  let j = 0;
  for (let i = 0; i < bp.length; i++) {
    const r = bp[i]!;
    while (j < pressors.length && pressors[j]![0] <= r[0]) applyPoint(w, pressors[j++]!);
    applyReading(w, r, th);
  }
  while (j < pressors.length) applyPoint(w, pressors[j++]!);
  return w;
}

function resultOf(w: Walk): Hypotension {
  if (!w.on) return NOT_ON;
  const out: Hypotension = { on: true };
  if (w.pair) out.pair = w.pair;
  if (!w.infusing && w.stoppedAt !== null) out.stoppedAt = w.stoppedAt;
  return out;
}

const NOT_ON: Hypotension = Object.freeze({ on: false });

/**
 * The walk's end state, for the lists, fold and thresholds it was computed from (a cache on the state, never
 * stored): walking 64 readings on every message cost a fifth of the reducer. A reading or point added after
 * everything kept steps it once (folding does not change it: the fold is the same walk's state at the fold
 * instant); any other change, a stored state or new thresholds walk again. One object per message: the walk's
 * fields, what they were computed from, and the result, filled in when first asked for.
 */
export interface BpMemo extends Walk {
  bp: BpReading[];
  pressors: PressorPoint[];
  fold: BpFold;
  systolicBelow: number;
  mapBelow: number;
  result: Hypotension | undefined;
}

function validMemo(h: BpHistory, th: Thresholds): BpMemo | undefined {
  const m = h.bpMemo;
  return m !== undefined &&
    m.bp === h.bp &&
    m.pressors === h.pressors &&
    m.fold === h.bpFold &&
    m.systolicBelow === th.systolicBelow &&
    m.mapBelow === th.mapBelow
    ? m
    : undefined;
}

function memoOf(h: BpHistory, th: Thresholds, w: Walk): BpMemo {
  return {
    on: w.on,
    last: w.last,
    infusing: w.infusing,
    stoppedAt: w.stoppedAt,
    stopT: w.stopT,
    pair: w.pair,
    prev: w.prev,
    bp: h.bp,
    pressors: h.pressors,
    fold: h.bpFold,
    systolicBelow: th.systolicBelow,
    mapBelow: th.mapBelow,
    result: undefined,
  };
}

/** The memo for this history and these thresholds: the one it has, or a new walk. */
export function memoFor(h: BpHistory, th: Thresholds): BpMemo {
  return validMemo(h, th) ?? memoOf(h, th, walk(h, th));
}

/** A copy of the list with the item in time order; an item at the same instant as one kept is merged with it. */
function withReading(list: BpReading[], r: BpReading): BpReading[] {
  const t = r[0];
  let i = list.length;
  while (i > 0 && list[i - 1]![0] > t) i--;
  const same = i > 0 ? list[i - 1]! : undefined;
  // Several messages at one instant merge field by field: a panel sent as systolic in one and MAP in another is
  // one reading; a field sent again at the same instant is a correction (the later arrival wins).
  if (same && same[0] === t) {
    const out = list.slice();
    out[i - 1] = [t, r[1] ?? same[1], r[2] ?? same[2]];
    return out;
  }
  return withItem(list, i, r);
}

/**
 * A copy of the list with the item inserted at `i`. The usual case, after everything kept, is concat: a copy of the
 * new length, where slice then push copies twice (push grows the exact-length copy by half again).
 */
function withItem<T>(list: T[], i: number, item: T): T[] {
  if (i === list.length) return list.concat([item]);
  const out = list.slice();
  out.splice(i, 0, item);
  return out;
}

function withPoint(list: PressorPoint[], p: PressorPoint): PressorPoint[] {
  const t = p[0];
  let i = list.length;
  while (i > 0 && list[i - 1]![0] > t) i--;
  // A vasopressors section is whole: the later arrival at one instant replaces it.
  if (i > 0 && list[i - 1]![0] === t) {
    const out = list.slice();
    out[i - 1] = p;
    return out;
  }
  return withItem(list, i, p);
}

/** At least this many readings and points are kept; up to a quarter more, since they are folded in batches. */
const slack = (bound: number) => Math.max(1, bound >> 2);

/**
 * Adds a reading or a point (or both, from one message) to the history of `h`, a state the caller has just made
 * and owns (it is updated in place), and folds the oldest instants once a list holds a quarter more than its bound
 * (folding on every message cost more than the few readings more kept). A reading or point at or before the newest
 * folded instant can no longer be placed in order and is not kept. Leaves the walk's memo for these thresholds.
 */
export function addToHistory(
  h: BpHistory,
  reading: BpReading | undefined,
  point: PressorPoint | undefined,
  maxReadings: number,
  maxPressors: number,
  th: Thresholds,
): void {
  const f = h.bpFold;
  const keepReading = reading !== undefined && reading[0] > f.at;
  const keepPoint = point !== undefined && point[0] > f.at;
  if (!keepReading && !keepPoint) {
    h.bpMemo = memoFor(h, th);
    return;
  }
  const t = keepReading ? reading[0] : point![0];
  const before = validMemo(h, th);
  const last = h.bp[h.bp.length - 1];
  const lastPoint = h.pressors[h.pressors.length - 1];
  const after = (!last || t > last[0]) && (!lastPoint || t > lastPoint[0]); // after everything kept
  const bp = keepReading ? withReading(h.bp, reading) : h.bp;
  const pressors = keepPoint ? withPoint(h.pressors, point!) : h.pressors;
  if (bp.length <= maxReadings + slack(maxReadings) && pressors.length <= maxPressors + slack(maxPressors)) {
    h.bp = bp;
    h.pressors = pressors;
  } else {
    fold(h, bp, pressors, maxReadings, maxPressors, th, bp !== h.bp, pressors !== h.pressors);
  }
  let w: Walk;
  if (before && after) {
    w = memoOf(h, th, before); // a copy of the walk, to step
    if (keepPoint) applyPoint(w, point!);
    if (keepReading) applyReading(w, reading, th);
    h.bpMemo = w as BpMemo;
  } else {
    h.bpMemo = memoOf(h, th, walk(h, th));
  }
}

/**
 * Folds whole instants, oldest first, until both lists are within their bounds, into `h`. A list this call owns
 * (a fresh copy) is cut in place.
 */
function fold(
  h: BpHistory,
  bp: BpReading[],
  pressors: PressorPoint[],
  maxReadings: number,
  maxPressors: number,
  th: Thresholds,
  ownBp: boolean,
  ownPressors: boolean,
): void {
  const f = h.bpFold;
  const w = startWalk(f);
  let i = 0;
  let j = 0;
  let at = f.at;
  while (bp.length - i > maxReadings || pressors.length - j > maxPressors) {
    const t = Math.min(bp[i]?.[0] ?? Number.POSITIVE_INFINITY, pressors[j]?.[0] ?? Number.POSITIVE_INFINITY);
    while (j < pressors.length && pressors[j]![0] === t) applyPoint(w, pressors[j++]!);
    while (i < bp.length && bp[i]![0] === t) applyReading(w, bp[i++]!, th);
    at = t;
  }
  const on = w.on;
  if (i > 0 && ownBp) bp.splice(0, i);
  if (j > 0 && ownPressors) pressors.splice(0, j);
  h.bp = i === 0 || ownBp ? bp : bp.slice(i);
  h.pressors = j === 0 || ownPressors ? pressors : pressors.slice(j);
  h.bpFold = {
    at,
    on,
    last: w.last,
    infusing: w.infusing,
    stoppedAt: on ? w.stoppedAt : null,
    pair: on ? (w.pair ?? null) : null,
    prev: w.last === LOW ? (w.prev ?? null) : null,
  };
}
