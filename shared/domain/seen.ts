// The window of recent messageIds, for de-duplication, as a persistent structure: chunks of ids, oldest first.
// Every chunk but the last is full and never changes, so a new state shares them with the old one instead of
// copying the whole window on every message.
//
// Lookups go through a Set of the whole window, built once and then handed from each state's window to the
// next one's (addSeen moves it and updates it in place). A window that lost its Set to a successor, or that was
// just read from storage, rebuilds one on its next lookup, so every answer is exact.

export type SeenIds = string[][];

const CHUNK = 32;
const index = new WeakMap<SeenIds, Set<string>>();

export function hasSeen(seen: SeenIds, id: string): boolean {
  let set = index.get(seen);
  if (!set) index.set(seen, (set = new Set(seen.flat())));
  return set.has(id);
}

/** A new window with `id` added, remembering at least the last `window` ids (and fewer than window + 64). */
export function addSeen(seen: SeenIds, id: string, window: number): SeenIds {
  const last = seen[seen.length - 1];
  let out = !last || last.length >= CHUNK ? [...seen, [id]] : [...seen.slice(0, -1), [...last, id]];
  const fullChunksKept = Math.ceil(window / CHUNK);
  const dropped = out.length - 1 > fullChunksKept ? out.slice(0, out.length - 1 - fullChunksKept) : [];
  if (dropped.length > 0) out = out.slice(dropped.length);
  const set = index.get(seen);
  if (set) {
    index.delete(seen);
    set.add(id);
    for (const chunk of dropped) for (const old of chunk) set.delete(old);
    index.set(out, set);
  }
  return out;
}

export function seenCount(seen: SeenIds): number {
  return seen.reduce((n, chunk) => n + chunk.length, 0);
}
