// Who is told when crs serve --max-patients turns new patients away (2026-12-06): the sender gets a 503 and sends
// again, but a patient not monitored is the clinical side's business too. This directory remembers the refusals for
// the delivery watch's `ceiling` alert (standard error, the board's banner, /api/health, the alert webhook).
import type { PatientDirectory } from '#app/scope.ts';
import { MINUTE, iso } from '#domain/time.ts';

/** With no refusal for this long the alert clears: its senders stopped sending (or the patients went elsewhere). */
const CEILING_QUIET_MS = 60 * MINUTE;
/** The most distinct patient ids remembered (a device flooding new ids is what the ceiling bounds). */
const REMEMBERED = 10_000;
/** The ids the alert names (the latest). */
const NAMED = 5;

export interface CeilingRefusals {
  /** Distinct new patients refused since `since` (at most REMEMBERED counted, the latest). */
  count: number;
  since: string;
  lastAt: string;
  /** The latest refused, ids only. */
  patientIds: string[];
  maxPatients: number;
}

export class CeilingWatchedDirectory implements PatientDirectory {
  private refused = new Set<string>();
  private since = 0;
  private lastAt = 0;
  private max = 0;

  constructor(
    private readonly inner: PatientDirectory & Required<Pick<PatientDirectory, 'admitNew'>>,
    private readonly now: () => number,
    /** Refusals began, or ended by an admission: the watch looks at once. */
    private readonly onChange: () => void,
  ) {}

  lookup(patientIds: readonly string[]) {
    return this.inner.lookup(patientIds);
  }

  admitNew(patientIds: readonly string[], ceiling: number) {
    const r = this.inner.admitNew(patientIds, ceiling);
    const standing = this.current() !== undefined;
    if (r.ok) {
      // Room reserved is no patient taken: the alert ends once the message is queued, not when the queue failed and
      // the patient went unmonitored after all (it ended at the reservation until 2026-12-06).
      return {
        ok: true as const,
        release: (admitted: boolean) => {
          r.release(admitted);
          if (admitted) this.admitted();
        },
      };
    }
    const now = this.now();
    if (!standing) {
      this.refused.clear();
      this.since = now;
    }
    this.lastAt = now;
    this.max = ceiling;
    for (const id of patientIds) {
      this.refused.delete(id); // the latest last
      // Full, the oldest goes: the latest are the ones named (they were the first 10,000's last, until 2026-12-06).
      if (this.refused.size >= REMEMBERED) this.refused.delete(this.refused.values().next().value!);
      this.refused.add(id);
    }
    if (!standing) this.onChange();
    return r;
  }

  /** A new patient taken: there is room again. */
  private admitted(): void {
    const standing = this.current() !== undefined;
    this.refused.clear();
    if (standing) this.onChange();
  }

  /** The refusals standing (one in the last CEILING_QUIET_MS, none admitted since), or undefined. */
  current(): CeilingRefusals | undefined {
    if (this.refused.size === 0 || this.now() - this.lastAt > CEILING_QUIET_MS) return undefined;
    return {
      count: this.refused.size,
      since: iso(this.since),
      lastAt: iso(this.lastAt),
      patientIds: [...this.refused].slice(-NAMED),
      maxPatients: this.max,
    };
  }
}
