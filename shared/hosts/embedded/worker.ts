// The grading worker of the embedded backend: takes pending inbox rows in arrival order, groups them by patient,
// grades each group with gradePatient (one load, one save) and commits the pass in one transaction.
// A message that fails (poison) is retried with backoff and, after MAX_ATTEMPTS, moved to the dead letters;
// meanwhile only its own patient waits (a patient's later messages must not overtake it), never the others.
import { gradePatient, parseQueued, provenanceOf, reusedIds } from '#app/grade.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { wireId } from '#domain/ids.ts';
import type { Assessment } from '#domain/reducer.ts';
import { iso, parseTime } from '#domain/time.ts';
import { storeUnavailable, type Db } from '#adapters/sqlite/db.ts';
import { timelineData, type GradingBatch, type SqliteStateStore, type TimelinePoint } from '#adapters/sqlite/store.ts';

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
}

export class GradingWorker {
  private readonly take;
  private readonly blocked = new Map<string, number>();
  /** Patients whose commit the database could not write (a full disk): said once, until they are graded again. */
  private readonly storeWaiting = new Set<string>();
  /** The patients of this pass whose failure moves a message to the dead letters. */
  private readonly deadLettering = new Set<string>();
  private running = false;
  private again = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  /** Counts for /api/health: applied, duplicates, dead letters, and messageIds reused with other content. */
  readonly stats = { applied: 0, duplicates: 0, reusedIds: 0 };

  constructor(private readonly o: WorkerOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log ?? (() => undefined);
    this.take = o.db.prepare(
      `SELECT seq, patient_id, message_id, body, attempts, retry_at FROM inbox
       WHERE patient_id NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
    );
    // Patients still waiting for a retry when the process stopped keep waiting after a restart.
    const waiting = o.db
      .prepare('SELECT patient_id, max(retry_at) AS at FROM inbox WHERE retry_at > ? GROUP BY patient_id')
      .all(this.now());
    for (const r of waiting as { patient_id: string; at: number }[]) this.blocked.set(r.patient_id, r.at);
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
    const rows = this.take.all(JSON.stringify([...this.blocked.keys()]), WORKER_LIMITS.rowsPerPass) as InboxRow[];
    if (rows.length === 0) return 0;

    const groups = new Map<string, InboxRow[]>();
    for (const r of rows) {
      const g = groups.get(r.patient_id) ?? [];
      if (g.length === 0) groups.set(r.patient_id, g);
      if (g.length < WORKER_LIMITS.rowsPerPatient) g.push(r);
    }

    const batch = this.o.store.batch();
    this.deadLettering.clear();
    const counts = new Map<string, { applied: number; duplicates: number }>();
    for (const [patientId, group] of groups) {
      const c = { applied: 0, duplicates: 0 };
      counts.set(patientId, c);
      await this.gradeGroup(batch, patientId, group, now, c);
    }

    const nowIso = iso(now);
    const committed: string[] = [];
    try {
      batch.commit(nowIso);
      committed.push(...batch.patients());
    } catch {
      // Isolate the patient whose write fails; the others commit on their own.
      for (const patientId of batch.patients()) {
        try {
          batch.commitPatient(patientId, nowIso);
          committed.push(patientId);
        } catch (err) {
          this.recordStoreFailure(patientId, groups.get(patientId)![0]!, err as Error, now);
        }
      }
    }
    for (const patientId of committed)
      if (this.storeWaiting.delete(patientId))
        this.log(`grading: patient ${wireId(patientId)} graded again (the database writes again)`);
    // Only what was committed: a patient whose commit failed is graded again at its next pass (it was counted at
    // each, /api/health saying 611 graded while a full disk had let 3 through).
    for (const patientId of committed) {
      this.stats.applied += counts.get(patientId)?.applied ?? 0;
      this.stats.duplicates += counts.get(patientId)?.duplicates ?? 0;
    }
    this.o.onCommitted?.({ patients: committed, pages: batch.pageCount(committed) });
    if (committed.some((p) => this.deadLettering.has(p))) this.o.onDeadLettered?.();
    return rows.length;
  }

  private async gradeGroup(
    batch: GradingBatch,
    patientId: string,
    group: InboxRow[],
    now: number,
    counts: { applied: number; duplicates: number },
  ): Promise<void> {
    const messages: (DeviceMessage | Error)[] = group.map((r) => {
      try {
        return parseQueued(r.body);
      } catch (err) {
        return err as Error;
      }
    });
    const provenance = group.map((r) => provenanceOf(r.body));
    let result;
    try {
      result = await gradePatient(batch, this.o.config, patientId, messages, provenance);
    } catch (err) {
      this.fail(batch, patientId, group[0]!, err as Error, now);
      return;
    }
    for (const r of reusedIds(result)) {
      // Recorded (an audit entry, written with the state; a count in /api/health) and said, by id only.
      this.stats.reusedIds++;
      this.log(
        `grading: messageId ${wireId(r.messageId)} of patient ${wireId(r.patientId)} reused with other content; graded as a new observation`,
      );
    }
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
    if (result.error) this.fail(batch, patientId, group[result.committed]!, result.error, now);
  }

  private failure(row: InboxRow, err: Error, now: number) {
    const attempts = row.attempts + 1;
    const deadLetter = attempts >= WORKER_LIMITS.maxAttempts;
    const retryAt = now + WORKER_LIMITS.retryBaseMs * 2 ** (attempts - 1);
    // Ids only: the error text can echo values from the message, so it is kept in the database, not logged.
    this.log(
      deadLetter
        ? `grading: message ${wireId(row.message_id)} of patient ${wireId(row.patient_id)} failed ${attempts} times (${err.name}); moved to the dead letters`
        : `grading: message ${wireId(row.message_id)} of patient ${wireId(row.patient_id)} failed (${err.name}, attempt ${attempts} of ${WORKER_LIMITS.maxAttempts}); patient retried in ${Math.round((retryAt - now) / 1000)} s`,
    );
    if (!deadLetter) this.blocked.set(row.patient_id, retryAt);
    return { seq: row.seq, attempts, retryAt, deadLetter, error: `${err.name}: ${err.message}` };
  }

  private fail(batch: GradingBatch, patientId: string, row: InboxRow, err: Error, now: number): void {
    const f = this.failure(row, err, now);
    if (f.deadLetter) this.deadLettering.add(patientId);
    batch.failed(patientId, f);
  }

  /** The patient's own commit failed: count an attempt against its first row, in a transaction of its own. */
  private recordStoreFailure(patientId: string, row: InboxRow, err: Error, now: number): void {
    if (storeUnavailable(err)) {
      // Nothing is wrong with the message: the database cannot write (a full disk). Counted as an attempt, it was
      // moved to the dead letters after 3 seconds, when a small write still fitted: accepted, never graded.
      this.blocked.set(patientId, now + WORKER_LIMITS.retryBaseMs);
      if (!this.storeWaiting.has(patientId)) {
        this.storeWaiting.add(patientId);
        this.log(
          `grading: patient ${wireId(patientId)} waits: the database cannot write (${(err as { code?: string }).code}); tried again every second, its messages kept in the inbox`,
        );
      }
      return;
    }
    const retry = this.o.store.batch();
    const f = this.failure(row, err, now);
    retry.failed(patientId, f);
    try {
      retry.commitPatient(patientId, iso(now));
      if (f.deadLetter) this.o.onDeadLettered?.();
    } catch {
      this.blocked.set(patientId, now + WORKER_LIMITS.retryBaseMs);
    }
  }
}
