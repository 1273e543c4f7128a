// The grading worker of the embedded backend: takes pending inbox rows in arrival order, groups them by patient,
// grades each group with gradePatient (one load, one save) and commits the pass in one transaction.
// A message that fails (poison: the reducer cannot apply it, or its write fails) is retried with backoff and, after
// MAX_ATTEMPTS, moved to the dead letters; meanwhile only its own patient waits (a patient's later messages must not
// overtake it), never the others. A patient whose write fails is graded again one message at a time (gradeQueued,
// shared with the grade Lambda), so that the failure counts against the message whose write fails, not the
// patient's first. A database that cannot write (a
// full disk) counts against no message: the patient waits a second.
import {
  gradePatient,
  gradeQueued,
  laterReleaseFields,
  readQueued,
  reusedIds,
  type GroupResult,
  type Queued,
} from '#app/grade.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { wireId } from '#domain/ids.ts';
import type { Assessment } from '#domain/reducer.ts';
import { iso, parseTime } from '#domain/time.ts';
import { storeUnavailable, type Db } from '#adapters/sqlite/db.ts';
import {
  timelineData,
  type Failure,
  type GradingBatch,
  type SqliteStateStore,
  type TimelinePoint,
} from '#adapters/sqlite/store.ts';

export const WORKER_LIMITS = {
  /** Inbox rows taken per pass: bounds how long one pass holds the event loop. */
  rowsPerPass: 500,
  /** Messages of one patient per pass, so one busy patient cannot starve the others. */
  rowsPerPatient: 100,
  maxAttempts: 3,
  retryBaseMs: 1000,
} as const;

interface InboxRow {
  seq: number;
  patient_id: string;
  message_id: string;
  body: string;
  attempts: number;
  retry_at: number;
}

/** What a patient's grading adds to /api/health once it is committed. */
interface Counts {
  applied: number;
  duplicates: number;
  reused: { messageId: string; patientId: string }[];
}

/** A failed attempt, with the error's name for the log (its text, which can echo values, goes to the database). */
type Attempt = Failure & { name: string };

interface PassResult {
  patients: string[];
  pages: number;
}

export interface WorkerOptions {
  db: Db;
  store: SqliteStateStore;
  config: GradingConfig;
  now?: () => number;
  /** After each committed pass: the patients that changed and how many pages were written to the outbox. */
  onCommitted?: (result: PassResult) => void;
  /** A message was moved to the dead letters (committed): the delivery watch raises its alert at once. */
  onDeadLettered?: () => void;
  log?: (line: string) => void;
  /** A failed message is tried again this long after, doubling; a patient the disk held, after it (retryBaseMs). */
  retryBaseMs?: number;
}

export class GradingWorker {
  private readonly take;
  private readonly blocked = new Map<string, number>();
  /** Patients whose commit the database could not write (a full disk): said once, until they are graded again. */
  private readonly storeWaiting = new Set<string>();
  /** SQLite's code of the last write the database refused (SQLITE_FULL ...), while a patient waits for it. */
  private storeCode: string | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly retryBaseMs: number;
  /** Counts for /api/health: applied, duplicates, dead letters, and messageIds reused with other content. */
  readonly stats = { applied: 0, duplicates: 0, reusedIds: 0 };

  constructor(private readonly o: WorkerOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log ?? (() => undefined);
    this.retryBaseMs = o.retryBaseMs ?? WORKER_LIMITS.retryBaseMs;
    this.take = o.db.prepare(
      `SELECT seq, patient_id, message_id, body, attempts, retry_at FROM inbox
       WHERE patient_id NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
    );
    // Patients still waiting for a retry when the process stopped keep waiting after a restart.
    const waiting = o.db
      .prepare('SELECT patient_id, max(retry_at) AS at FROM inbox WHERE retry_at > ? GROUP BY patient_id')
      .all(this.now());
    for (const r of waiting as { patient_id: string; at: number }[]) this.blocked.set(r.patient_id, r.at);
    this.unblockAhead(this.now());
  }

  /**
   * A retry further ahead than the longest backoff was stored by a wall clock since stepped back (or one ahead before
   * a restart): it waits the longest backoff from now. Until 2026-12-07 the patient waited for the clock to catch up
   * (a step back of an hour: its messages ungraded for an hour), and past 24.8 days the timer overflowed Node's
   * 2^31-1 ms and fired at once, again and again.
   */
  private unblockAhead(now: number): void {
    const latest = now + this.retryBaseMs * 2 ** (WORKER_LIMITS.maxAttempts - 2);
    for (const [p, at] of this.blocked) if (at > latest) this.blocked.set(p, latest);
  }

  /** Wakes the worker; it runs passes until the inbox has nothing it can take. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    // Right after the commit that woke it (same turn of the event loop), so a page does not wait for more I/O.
    this.idle = new Promise<void>((resolve) => queueMicrotask(() => void this.loop().finally(resolve)));
  }

  /** Finishes the pass in progress, then takes no more. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.idle;
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        const taken = await this.pass();
        if (this.stopped || (taken === 0 && !this.again)) break;
        await new Promise((resolve) => setImmediate(resolve)); // let requests in between passes
      }
    } catch (err) {
      // The error's name and SQLite's code (SQLITE_CORRUPT: a damaged database), never its text (it may echo data).
      const code = (err as { code?: unknown }).code;
      this.log(
        `grading worker: pass failed (${(err as Error).name}${typeof code === 'string' ? ` ${code}` : ''}); retrying in 1 s`,
      );
      this.scheduleRetry(this.now() + 1000);
    } finally {
      this.running = false;
    }
    this.scheduleNextRetry();
  }

  private scheduleNextRetry(): void {
    if (this.blocked.size > 0) this.scheduleRetry(Math.min(...this.blocked.values()));
  }

  private scheduleRetry(at: number): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.kick(), Math.max(0, at - this.now()));
    this.retryTimer.unref();
  }

  /** One pass: returns how many inbox rows it took. */
  async pass(): Promise<number> {
    const now = this.now();
    for (const [p, at] of this.blocked) if (at <= now) this.blocked.delete(p);
    this.unblockAhead(now);
    const rows = this.take.all(JSON.stringify([...this.blocked.keys()]), WORKER_LIMITS.rowsPerPass) as InboxRow[];
    if (rows.length === 0) return 0;

    const groups = new Map<string, InboxRow[]>();
    for (const r of rows) {
      const g = groups.get(r.patient_id) ?? [];
      if (g.length === 0) groups.set(r.patient_id, g);
      if (g.length < WORKER_LIMITS.rowsPerPatient) g.push(r);
    }

    const batch = this.o.store.batch();
    const counts = new Map<string, Counts>();
    /** The message of each patient the reducer could not apply, its failure written with the patient's commit. */
    const poisoned = new Map<string, { row: InboxRow; failure: Attempt }>();
    /** Patients whose messages could not be graded or written together, for a reason that is not the disk: why. */
    const alone = new Map<string, Error>();
    const queued = new Map<string, Queued>();
    for (const [patientId, group] of groups) {
      const q = readQueued(group.map((r) => r.body));
      queued.set(patientId, q);
      for (const { index, fields } of laterReleaseFields(q))
        this.log(
          `grading: message ${wireId(group[index]!.message_id)} of patient ${wireId(patientId)} graded without the fields this release does not know (${fields.map(wireId).join(', ')}; a later release queued it)`,
        );
      try {
        const { result, counts: c } = await this.stage(batch, patientId, group, q);
        counts.set(patientId, c);
        if (result.error) {
          const row = group[result.committed]!;
          const failure = this.failure(row, result.error, now);
          batch.failed(patientId, failure);
          poisoned.set(patientId, { row, failure });
        }
      } catch (err) {
        batch.discard(patientId);
        if (storeUnavailable(err)) this.waitForStore(patientId, err as Error, now);
        else alone.set(patientId, err as Error);
      }
    }

    const nowIso = iso(now);
    const staged = batch.patients();
    const committed: string[] = [];
    try {
      batch.commit(nowIso);
      committed.push(...staged);
    } catch {
      // Isolate the patient whose write fails; the others commit on their own.
      for (const patientId of staged) {
        try {
          batch.commitPatient(patientId, nowIso);
          committed.push(patientId);
        } catch (err) {
          if (storeUnavailable(err)) this.waitForStore(patientId, err as Error, now);
          else alone.set(patientId, err as Error);
        }
      }
    }
    let pages = batch.pageCount(committed);
    let deadLettered = false;
    for (const patientId of committed) {
      this.count(counts.get(patientId)!);
      const p = poisoned.get(patientId);
      if (p) deadLettered = this.announce(p.row, p.failure, now) || deadLettered;
    }
    // Only the message whose write fails is counted: the patient's messages one at a time, each committed alone.
    for (const [patientId, err] of alone) {
      const r = await this.gradeAlone(patientId, groups.get(patientId)!, queued.get(patientId)!, err, now);
      if (r.committed) committed.push(patientId);
      pages += r.pages;
      deadLettered = r.deadLettered || deadLettered;
    }
    for (const patientId of committed)
      if (this.storeWaiting.delete(patientId))
        this.log(`grading: patient ${wireId(patientId)} graded again (the database writes again)`);
    this.o.onCommitted?.({ patients: committed, pages });
    if (deadLettered) this.o.onDeadLettered?.();
    return rows.length;
  }

  /**
   * Grades a patient's rows into the batch (gradePatient: one load, one save) with what the board needs; throws if
   * the patient cannot be graded (its state cannot be read). Nothing is counted until it is committed.
   */
  private async stage(
    batch: GradingBatch,
    patientId: string,
    group: InboxRow[],
    { messages, provenance }: Queued,
  ): Promise<{ result: GroupResult; counts: Counts }> {
    const result = await gradePatient(batch, this.o.config, patientId, messages, provenance);
    const counts: Counts = { applied: 0, duplicates: 0, reused: reusedIds(result) };
    const points: TimelinePoint[] = [];
    let assessment: Assessment | undefined;
    result.steps.forEach((step, i) => {
      if (step.kind === 'duplicate') {
        counts.duplicates++;
        return;
      }
      counts.applied++;
      const m = messages[i] as DeviceMessage;
      assessment = step.assessment;
      points.push({
        messageId: m.messageId,
        observedAt: parseTime(m.observedAt),
        clock: step.state.clock,
        crs: step.assessment.crsGrade,
        icans: step.assessment.icansGrade,
        data: timelineData(m),
        ...(provenance[i]?.sender !== undefined ? { sender: provenance[i]!.sender! } : {}),
      });
    });
    batch.applied(
      patientId,
      group.slice(0, result.committed).map((r) => r.seq),
      points,
      assessment,
    );
    return { result, counts };
  }

  /** What a committed grading adds to /api/health, and the reused ids it says (by id only). */
  private count(c: Counts): void {
    this.stats.applied += c.applied;
    this.stats.duplicates += c.duplicates;
    for (const r of c.reused) {
      // Recorded (an audit entry, written with the state; a count in /api/health) and said, by id only.
      this.stats.reusedIds++;
      this.log(
        `grading: messageId ${wireId(r.messageId)} of patient ${wireId(r.patientId)} reused with other content; graded as a new observation`,
      );
    }
  }

  /**
   * A patient whose messages could not be graded or written together in the pass (`err`, not the disk): graded
   * again one message at a time, each committed alone (gradeQueued, as on AWS), so that the failure counts against
   * the message whose write fails, and the ones before it are graded and paged now. A lone message is failed with
   * `err` at once (until 2026-12-06 it was graded and written a second time, to fail the same way).
   */
  private async gradeAlone(
    patientId: string,
    group: InboxRow[],
    queued: Queued,
    err: Error,
    now: number,
  ): Promise<{ committed: boolean; pages: number; deadLettered: boolean }> {
    const nowIso = iso(now);
    let committed = false;
    let pages = 0;
    const result = await gradeQueued(
      queued,
      {
        // Graded together already: the pass staged them and its write (or the grading) failed with err.
        together: () => Promise.reject(err),
        alone: async (part, i) => {
          const batch = this.o.store.batch();
          const { result: r, counts } = await this.stage(batch, patientId, [group[i]!], part);
          if (r.error) return r; // the reducer cannot apply it: recorded below
          batch.commitPatient(patientId, nowIso);
          committed = true;
          pages += batch.pageCount([patientId]);
          this.count(counts);
          return r;
        },
      },
      storeUnavailable,
    );
    const deadLettered = result.error
      ? this.recordFailure(patientId, group[result.committed]!, result.error, now)
      : false;
    return { committed, pages, deadLettered };
  }

  /** A failed attempt of a row (nothing said or held yet: announce does, once it is recorded). */
  private failure(row: InboxRow, err: Error, now: number): Attempt {
    const attempts = row.attempts + 1;
    return {
      seq: row.seq,
      attempts,
      retryAt: now + this.retryBaseMs * 2 ** (attempts - 1),
      deadLetter: attempts >= WORKER_LIMITS.maxAttempts,
      error: `${err.name}: ${err.message}`,
      name: err.name,
    };
  }

  /** Says a recorded failure and holds its patient until the retry; true if the row went to the dead letters. */
  private announce(row: InboxRow, f: Attempt, now: number): boolean {
    const name = f.name;
    // Ids only: the error text can echo values from the message, so it is kept in the database, not logged.
    this.log(
      f.deadLetter
        ? `grading: message ${wireId(row.message_id)} of patient ${wireId(row.patient_id)} failed ${f.attempts} times (${name}); moved to the dead letters`
        : `grading: message ${wireId(row.message_id)} of patient ${wireId(row.patient_id)} failed (${name}, attempt ${f.attempts} of ${WORKER_LIMITS.maxAttempts}); patient retried in ${Math.round((f.retryAt - now) / 1000)} s`,
    );
    if (!f.deadLetter) this.blocked.set(row.patient_id, f.retryAt);
    return f.deadLetter;
  }

  /** Why grading waits on the database (SQLITE_FULL ...), while a patient does: the delivery watch says it. */
  cannotWrite(): string | undefined {
    return this.storeWaiting.size > 0 ? this.storeCode : undefined;
  }

  /** The database cannot write (a full disk): the patient waits a second, said once, nothing counted. */
  private waitForStore(patientId: string, err: Error, now: number): void {
    // Nothing is wrong with the message. Counted as an attempt, it was moved to the dead letters after 3 seconds,
    // when a small write still fitted: accepted, never graded.
    this.blocked.set(patientId, now + this.retryBaseMs);
    this.storeCode = (err as { code?: string }).code ?? err.name;
    if (!this.storeWaiting.has(patientId)) {
      this.storeWaiting.add(patientId);
      this.log(
        `grading: patient ${wireId(patientId)} waits: the database cannot write (${(err as { code?: string }).code}); tried again every second, its messages kept in the inbox`,
      );
    }
  }

  /** A row's attempt failed: count it in a transaction of its own; true if the row went to the dead letters. */
  private recordFailure(patientId: string, row: InboxRow, err: Error, now: number): boolean {
    if (storeUnavailable(err)) {
      this.waitForStore(patientId, err, now);
      return false;
    }
    const retry = this.o.store.batch();
    const f = this.failure(row, err, now);
    retry.failed(patientId, f);
    try {
      retry.commitPatient(patientId, iso(now));
    } catch {
      // Not recorded (the store fails under it): said, and tried again in a second.
      this.announce(row, { ...f, deadLetter: false, retryAt: now + this.retryBaseMs }, now);
      return false;
    }
    return this.announce(row, f, now);
  }
}
