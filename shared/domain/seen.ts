// The window of recently applied messages, for de-duplication (crs-rules.md v1.1 item 8): each entry is one
// message's identity, its messageId with the digest of its content (computed in shared/app/digest.ts).
//
// A persistent structure: chunks of entries, oldest first, each chunk a flat list [messageId, digest, messageId,
// digest, ...]. Every chunk but the last is full and never changes, so a new state shares them with the old one
// instead of copying the whole window on every message.
//
// Lookups go through an index of the whole window (messageId -> the digests it was applied with), built once and
// then handed from each state's window to the next one's (addSeen moves it and updates it in place). A window
// that lost its index to a successor, or that was just read from storage, rebuilds one on its next lookup, so
// every answer is exact. The index rides on the array under a symbol (JSON leaves it out): a WeakMap keyed by a
// new array per message cost twice as much, mostly in the garbage collector.

export type SeenIds = string[][];

/** What a message is, given the identities already applied: new, a duplicate, or a reused messageId. */
export type Identity = 'new' | 'duplicate' | 'reused';

/** Entries per chunk (each entry is two strings). */
const CHUNK = 32;
const INDEX = Symbol('seen index');
/** messageId -> its digest, or its digests when the id was reused (rare: an array only then). */
type Index = Map<string, string | string[]>;
type Indexed = SeenIds & { [INDEX]?: Index | undefined };

function indexOf(seen: SeenIds): Index {
  const w = seen as Indexed;
  let index = w[INDEX];
  if (!index) {
    index = new Map();
    for (const chunk of seen) for (let i = 0; i < chunk.length; i += 2) add(index, chunk[i]!, chunk[i + 1]!);
    w[INDEX] = index;
  }
  return index;
}

function add(index: Index, id: string, digest: string): void {
  const known = index.get(id);
  if (known === undefined) index.set(id, digest);
  else if (typeof known === 'string') index.set(id, [known, digest]);
  else known.push(digest);
}

function remove(index: Index, id: string, digest: string): void {
  const known = index.get(id);
  if (typeof known === 'string' || known === undefined) {
    index.delete(id);
    return;
  }
  known.splice(known.indexOf(digest), 1);
  if (known.length === 1) index.set(id, known[0]!);
}

/** Whether a message with this id was applied within the window (with whatever content). */
export function hasSeen(seen: SeenIds, messageId: string): boolean {
  return indexOf(seen).has(messageId);
}

/**
 * Same messageId and digest as a message in the window or among `prior` (the digests the id was applied with
 * before, from a backend's long-term record): a duplicate. Same id, other content: a reused id. Else new.
 */
export function identify(seen: SeenIds, messageId: string, digest: string, prior?: readonly string[]): Identity {
  const known = indexOf(seen).get(messageId);
  if (known === digest || (typeof known === 'object' && known.includes(digest)) || prior?.includes(digest))
    return 'duplicate';
  return known !== undefined || (prior !== undefined && prior.length > 0) ? 'reused' : 'new';
}

/** A new window with this identity added, remembering at least the last `window` entries (and fewer than window + 64). */
export function addSeen(seen: SeenIds, messageId: string, digest: string, window: number): SeenIds {
  const n = seen.length;
  const last = seen[n - 1];
  const out = seen.slice();
  if (!last || last.length >= 2 * CHUNK) {
    out.push([messageId, digest]);
  } else {
    // concat, not slice then push: push would grow the exact-length copy by half again (a second copy).
    out[n - 1] = last.concat([messageId, digest]);
  }
  // Keep whole chunks: the last one (filling) and enough full ones before it to cover the window.
  const drop = out.length - 1 - Math.ceil(window / CHUNK);
  const dropped = drop > 0 ? out.splice(0, drop) : undefined;
  const index = (seen as Indexed)[INDEX];
  if (index) {
    (seen as Indexed)[INDEX] = undefined;
    add(index, messageId, digest);
    if (dropped)
      for (const chunk of dropped) for (let i = 0; i < chunk.length; i += 2) remove(index, chunk[i]!, chunk[i + 1]!);
    (out as Indexed)[INDEX] = index;
  }
  return out;
}

export function seenCount(seen: SeenIds): number {
  return seen.reduce((n, chunk) => n + chunk.length / 2, 0);
}
