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

export const NOTHING_FOLDED: BpFold = Object.freeze({ at: Number.NEGATIVE_INFINITY, on: false, last: NONE, infusing: false, stoppedAt: null, pair: null, prev: null });

export interface BpHistory {
  bp: BpReading[];
  pressors: PressorPoint[];
  bpFold: BpFold;
}

export interface Thresholds {
  systolicBelow: number;
  mapBelow: number;
}

export function isLowReading(r: BpReading, th: Thresholds): boolean {
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
  return { on: f.on, last: f.last, infusing: f.infusing, stoppedAt: f.stoppedAt, stopT: f.stoppedAt ?? Number.NaN, pair: f.pair ?? undefined, prev: f.prev ?? undefined };
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
  const w = startWalk(h.bpFold);
  const { bp, pressors } = h;
  let j = 0;
  for (let i = 0; i < bp.length; i++) {
    const r = bp[i]!;
    while (j < pressors.length && pressors[j]![0] <= r[0]) applyPoint(w, pressors[j++]!);
    applyReading(w, r, th);
  }
  while (j < pressors.length) applyPoint(w, pressors[j++]!);
  if (!w.on) return { on: false };
  const out: Hypotension = { on: true };
  if (w.pair) out.pair = w.pair;
  if (!w.infusing && w.stoppedAt !== null) out.stoppedAt = w.stoppedAt;
  return out;
}

/** Inserts by time; an entry at the same instant is merged by `merge` (the later arrival wins). */
function insert<T extends [number, ...unknown[]]>(list: T[], item: T, merge: (old: T, item: T) => T): T[] {
  const t = item[0];
  const out = list.slice();
  let i = out.length;
  while (i > 0 && out[i - 1]![0] > t) i--;
  if (i > 0 && out[i - 1]![0] === t) out[i - 1] = merge(out[i - 1]!, item);
  else out.splice(i, 0, item);
  return out;
}

// Several messages at one instant merge field by field: a panel sent as systolic in one and MAP in another is
// one reading; a field sent again at the same instant is a correction.
const mergeReading = (old: BpReading, r: BpReading): BpReading => [r[0], r[1] ?? old[1], r[2] ?? old[2]];
// A vasopressors section is whole: the later arrival at one instant replaces it.
const replacePoint = (_old: PressorPoint, p: PressorPoint): PressorPoint => p;

export interface Bounds {
  readings: number;
  pressors: number;
}

/**
 * Adds a reading or a point (or both, from one message) and folds the oldest instants beyond the bounds. A reading
 * or point at or before the newest folded instant can no longer be placed in order and is not kept.
 */
export function addToHistory(h: BpHistory, reading: BpReading | undefined, point: PressorPoint | undefined, bounds: Bounds, th: Thresholds): BpHistory {
  const f = h.bpFold;
  let bp = h.bp;
  let pressors = h.pressors;
  if (reading && reading[0] > f.at) bp = insert(bp, reading, mergeReading);
  if (point && point[0] > f.at) pressors = insert(pressors, point, replacePoint);
  if (bp.length <= bounds.readings && pressors.length <= bounds.pressors) return { bp, pressors, bpFold: f };
  return fold(bp, pressors, f, bounds, th);
}

/** Folds whole instants, oldest first, until both lists are within their bounds. */
function fold(bp: BpReading[], pressors: PressorPoint[], f: BpFold, bounds: Bounds, th: Thresholds): BpHistory {
  const w = startWalk(f);
  let i = 0;
  let j = 0;
  let at = f.at;
  while (bp.length - i > bounds.readings || pressors.length - j > bounds.pressors) {
    const t = Math.min(bp[i]?.[0] ?? Number.POSITIVE_INFINITY, pressors[j]?.[0] ?? Number.POSITIVE_INFINITY);
    while (j < pressors.length && pressors[j]![0] === t) applyPoint(w, pressors[j++]!);
    while (i < bp.length && bp[i]![0] === t) applyReading(w, bp[i++]!, th);
    at = t;
  }
  const on = w.on;
  return {
    bp: bp.slice(i),
    pressors: pressors.slice(j),
    bpFold: {
      at,
      on,
      last: w.last,
      infusing: w.infusing,
      stoppedAt: on ? w.stoppedAt : null,
      pair: on ? (w.pair ?? null) : null,
      prev: w.last === LOW ? (w.prev ?? null) : null,
    },
  };
}
