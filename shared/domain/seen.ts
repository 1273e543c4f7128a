// The window of recent messageIds, for de-duplication, as a persistent structure: chunks of ids, oldest first.
// Every chunk but the last is full and never changes, so a new state shares them with the old one (no copy of
// the whole window per message) and a lookup uses one Set per full chunk instead of scanning every id.

export type SeenIds = string[][];

const CHUNK = 32;
/** A full chunk's Set, kept on the (never changed) chunk itself under a symbol, which JSON leaves out. */
const SET = Symbol('seen set');
type Chunk = string[] & { [SET]?: Set<string> };

export function hasSeen(seen: SeenIds, id: string): boolean {
  const lastIndex = seen.length - 1;
  for (let i = 0; i < lastIndex; i++) {
    const chunk = seen[i] as Chunk;
    const set = (chunk[SET] ??= new Set(chunk));
    if (set.has(id)) return true;
  }
  return lastIndex >= 0 && seen[lastIndex]!.includes(id);
}

/** A new window with `id` added, remembering at least the last `window` ids (and fewer than window + 64). */
export function addSeen(seen: SeenIds, id: string, window: number): SeenIds {
  const last = seen[seen.length - 1];
  const out = !last || last.length >= CHUNK ? [...seen, [id]] : [...seen.slice(0, -1), [...last, id]];
  const fullChunksKept = Math.ceil(window / CHUNK);
  return out.length - 1 > fullChunksKept ? out.slice(out.length - 1 - fullChunksKept) : out;
}

export function seenCount(seen: SeenIds): number {
  return seen.reduce((n, chunk) => n + chunk.length, 0);
}
