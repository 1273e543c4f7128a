// The window of recent messageIds, for de-duplication, as a persistent structure: chunks of ids, oldest first.
// Every chunk but the last is full and never changes, so a new state shares them with the old one instead of
// copying the whole window on every message.
//
// Lookups go through a Set of the whole window, built once and then handed from each state's window to the
// next one's (addSeen moves it and updates it in place). A window that lost its Set to a successor, or that was
// just read from storage, rebuilds one on its next lookup, so every answer is exact. The Set rides on the array
// under a symbol (JSON leaves it out): a WeakMap keyed by a new array per message cost twice as much, mostly in
// the garbage collector.

export type SeenIds = string[][];

const CHUNK = 32;
const INDEX = Symbol('seen index');
type Indexed = SeenIds & { [INDEX]?: Set<string> | undefined };

export function hasSeen(seen: SeenIds, id: string): boolean {
  const w = seen as Indexed;
  let set = w[INDEX];
  if (!set) w[INDEX] = set = new Set(seen.flat());
  return set.has(id);
}

/** A new window with `id` added, remembering at least the last `window` ids (and fewer than window + 64). */
export function addSeen(seen: SeenIds, id: string, window: number): SeenIds {
  const n = seen.length;
  const last = seen[n - 1];
  let out: SeenIds;
  if (!last || last.length >= CHUNK) {
    out = seen.slice();
    out.push([id]);
  } else {
    out = seen.slice();
    const chunk = last.slice();
    chunk.push(id);
    out[n - 1] = chunk;
  }
  // Keep whole chunks: the last one (filling) and enough full ones before it to cover the window.
  const drop = out.length - 1 - Math.ceil(window / CHUNK);
  const dropped = drop > 0 ? out.splice(0, drop) : undefined;
  const set = (seen as Indexed)[INDEX];
  if (set) {
    (seen as Indexed)[INDEX] = undefined;
    set.add(id);
    if (dropped) for (const chunk of dropped) for (const old of chunk) set.delete(old);
    (out as Indexed)[INDEX] = set;
  }
  return out;
}

export function seenCount(seen: SeenIds): number {
  return seen.reduce((n, chunk) => n + chunk.length, 0);
}
