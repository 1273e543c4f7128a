// The acknowledge-link keys a running process holds, read again as they age (2026-12-06): a rotation (on AWS
// put-secret-value, on crs serve `crs ack-key rotate`) signs every new link with the new key, and a dropped previous
// key stops verifying, within a bound, without replacing containers or restarting. Until then the keys were read
// once, at a cold start or at the server's start. One rule for both backends; each says where its keys are kept.
import type { AckKeys } from './ack.ts';

export interface AckKeysSource {
  /** Reads the keys where they are kept; throws when they cannot be read (the keys held are kept). */
  read: () => Promise<AckKeys>;
  /** When the keys the pager was given were read, on the clock of the pager's calls. */
  readAt: number;
  /** Keys this old (or read on a clock since stepped back) are read again before a link is signed or verified. */
  maxAgeMs: number;
  /** The least time between two reads, a failed one too: a link that looks forged asks for a read, at most this often. */
  minGapMs: number;
  /**
   * The same for a link issued here (a short one whose claims are stored) that the keys held call forged (2026-12-06):
   * not a forgery but a key put since they were read (on AWS another container signed with it), so read again sooner
   * than minGapMs; not at every request, for one genuine link under a dropped key. Absent: minGapMs.
   */
  issuedLinkGapMs?: number;
  /** A read taking longer is given up (the keys held sign and verify): a hung read must not hold a page back. */
  readTimeoutMs?: number;
  /** A read failed: the keys held sign and verify until a read succeeds (a page is never lost to it). */
  onReadFailed?: (err: unknown) => void;
  /** A read succeeded: `changed`, it gave other keys than those held. */
  onRead?: (keys: AckKeys, changed: boolean) => void;
}

/** Whether `at` is less than `ms` before `now` (a time after `now`: the clock stepped back, so not). */
const within = (now: number, at: number, ms: number) => now >= at && now - at < ms;

/** Whether two sets of keys are the same keys. */
export const sameAckKeys = (a: AckKeys, b: AckKeys) =>
  a.current.equals(b.current) &&
  (a.previous === undefined ? b.previous === undefined : b.previous !== undefined && a.previous.equals(b.previous));

/** A callback whose failure changes nothing: the keys held sign all the same. */
const tell = (fn: () => void) => {
  try {
    fn();
  } catch {
    // nothing: see above
  }
};

/** `promise`, or a rejection once `ms` have passed without it settling (no bound without `ms`). */
async function withTimeout<T>(promise: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the keys were not read within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export class AckKeyring {
  private readAt: number;
  private triedAt: number;
  /** A read under way: callers at the same time share it. */
  private reading: Promise<boolean> | undefined;

  /** `held`: the keys read at `source.readAt` (without a source, fixed). */
  constructor(
    private held: AckKeys,
    private readonly source?: AckKeysSource,
  ) {
    this.readAt = this.triedAt = source?.readAt ?? 0;
  }

  /** The keys to sign or verify with at `now`: read again first when older than the source's maxAgeMs. */
  async keys(now: number): Promise<AckKeys> {
    if (this.source && !within(now, this.readAt, this.source.maxAgeMs)) await this.read(now);
    return this.held;
  }

  /**
   * For a link the keys held call forged (a key put since they were read): the keys read again; undefined when not
   * (no source, too soon after the last read, or the read failed): the link is judged by the keys held. `issued`:
   * the link was issued here (its claims are stored): the least gap is the source's issuedLinkGapMs, not minGapMs, so a
   * genuine link signed with a key put since the read is taken at once (2026-12-06: refused as forged for up to
   * minGapMs) while a random forgery still buys a read at most every minGapMs.
   */
  async reread(now: number, issued = false): Promise<AckKeys | undefined> {
    return (await this.read(now, issued ? this.source?.issuedLinkGapMs : undefined)) ? this.held : undefined;
  }

  /** Reads the keys unless a read was tried less than `gapMs` (else minGapMs) ago; whether it read them. */
  private read(now: number, gapMs?: number): Promise<boolean> {
    const source = this.source;
    // Before the gap: a caller while a read is under way waits for it (it was given the keys held, which a dropped
    // previous key still verified under, until 2026-12-06).
    if (this.reading) return this.reading;
    if (!source || within(now, this.triedAt, gapMs ?? source.minGapMs)) return Promise.resolve(false);
    const reading = (async () => {
      this.triedAt = now;
      try {
        const keys = await withTimeout(source.read(), source.readTimeoutMs);
        const changed = !sameAckKeys(keys, this.held);
        this.held = keys;
        this.readAt = now;
        tell(() => source.onRead?.(keys, changed));
        return true;
      } catch (err) {
        tell(() => source.onReadFailed?.(err));
        return false;
      }
    })();
    this.reading = reading;
    void reading.finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    return this.reading;
  }
}
