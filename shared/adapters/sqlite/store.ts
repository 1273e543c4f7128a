// Patient state on SQLite, with the outbox written in the same transaction (the StateStore port).
//
// The grading worker uses a GradingBatch: gradePatient loads and saves through it as usual (one load, one save
// with a version condition), and the batch commits every patient of a worker pass in ONE transaction together with
// what the board needs (timeline rows, latest assessment), the technical alerts for the pager (outbox records),
// the audit entries of the assessments and grade changes, and the deletion of the consumed inbox rows. So a crash
// can never leave a state saved with its inbox rows still queued, nor a timeline missing a point, nor a grade
// without its audit entry: in the embedded backend each message is applied exactly once. (The reducer's messageId
// window still absorbs resends by devices.)
import type { DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import type { AlertChange, Assessment } from '#domain/reducer.ts';
import { deserializeState, movedOnByRestore, serializeState, type PatientState } from '#domain/state.ts';
import { DAY } from '#domain/time.ts';
import {
  VersionConflict,
  type AuditEvent,
  type SaveExtras,
  type SeenMessage,
  type StateStore,
  type StoredState,
} from '#ports';
import { AUDIT_INSERT, auditRow, feedSince } from './audit.ts';
import { listColumns } from './board.ts';
import { relaxedTransaction, type Db } from './db.ts';

/** How much timeline history each patient keeps (patient clock); older points are pruned as new ones arrive. */
const TIMELINE_KEEP_MS = 14 * DAY;

export interface TimelinePoint {
  messageId: string;
  observedAt: number;
  clock: number;
  crs: number;
  icans: number;
  /** The message's clinical sections. */
  data: Pick<DeviceMessage, 'vitals' | 'oxygen' | 'vasopressors' | 'medications' | 'neuro' | 'labs' | 'organToxicity'>;
  /** The device whose token sent it (kept in the row's data, as `sender`). */
  sender?: string;
}

export function timelineData(m: DeviceMessage): TimelinePoint['data'] {
  const { vitals, oxygen, vasopressors, medications, neuro, labs, organToxicity } = m;
  return { vitals, oxygen, vasopressors, medications, neuro, labs, organToxicity };
}

/** A failed grading attempt of one inbox row: retried later, or moved to the dead letters. */
export interface Failure {
  seq: number;
  attempts: number;
  retryAt: number;
  deadLetter: boolean;
  error: string;
}

interface PatientWork {
  state?: {
    state: PatientState;
    baseVersion: number;
    version: number;
    outbox: Notification[];
    alerts: AlertChange[];
    audit: AuditEvent[];
    seen: SeenMessage[];
  };
  assessment?: Assessment;
  timeline: TimelinePoint[];
  consumed: number[];
  failure?: Failure;
}

function statements(db: Db) {
  return {
    load: db.prepare('SELECT version, state FROM patients WHERE patient_id = ?'),
    version: db.prepare('SELECT version FROM patients WHERE patient_id = ?').pluck(),
    insertState: db.prepare(
      `INSERT OR IGNORE INTO patients (patient_id, version, state, assessment, updated_at, feed_since, monitoring_ended_at, grade)
       VALUES (?, ?, ?, ?, ?, ?, ?, max(?, coalesce(?, 0), coalesce(?, 0)))`,
    ),
    updateState: db.prepare(
      // The grade of the list (board.ts): as last paged, and as graded by this write's assessment or else the one
      // kept (a SET reads the row as it was).
      `UPDATE patients SET version = ?, state = ?, assessment = coalesce(?, assessment), updated_at = ?, feed_since = ?,
         monitoring_ended_at = ?, grade = max(?, coalesce(?, json_extract(assessment, '$.crsGrade'), 0),
         coalesce(?, json_extract(assessment, '$.icansGrade'), 0))
       WHERE patient_id = ? AND version = ?`,
    ),
    // Not OR IGNORE: ids are unique per grade change, and one that exists must fail the commit loudly rather than
    // drop a grade change (the failure is retried, then dead-lettered and logged).
    outbox: db.prepare('INSERT INTO outbox (kind, item_id, patient_id, body, created_at) VALUES (?, ?, ?, ?, ?)'),
    audit: db.prepare(AUDIT_INSERT),
    seen: db.prepare('INSERT OR IGNORE INTO seen_messages (patient_id, message_id, digest) VALUES (?, ?, ?)'),
    priorDigests: db.prepare(
      'SELECT message_id AS messageId, digest FROM seen_messages WHERE patient_id = ? AND message_id IN (SELECT value FROM json_each(?))',
    ),
    timeline: db.prepare(
      'INSERT INTO timeline (patient_id, message_id, observed_at, clock, crs, icans, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    prune: db.prepare('DELETE FROM timeline WHERE patient_id = ? AND observed_at < ?'),
    consume: db.prepare('DELETE FROM inbox WHERE seq = ?'),
    retry: db.prepare('UPDATE inbox SET attempts = ?, retry_at = ? WHERE seq = ?'),
    deadLetter: db.prepare(
      `INSERT OR REPLACE INTO dead_letter (seq, patient_id, message_id, body, received_at, attempts, error, failed_at)
       SELECT seq, patient_id, message_id, body, received_at, ?, ?, ? FROM inbox WHERE seq = ?`,
    ),
  };
}
type Statements = ReturnType<typeof statements>;

function priorDigests(stmts: Statements, patientId: string, messageIds: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (messageIds.length === 0) return out;
  for (const r of stmts.priorDigests.all(patientId, JSON.stringify(messageIds)) as {
    messageId: string;
    digest: string;
  }[]) {
    const list = out.get(r.messageId);
    if (list) list.push(r.digest);
    else out.set(r.messageId, [r.digest]);
  }
  return out;
}

function readState(stmts: Statements, patientId: string): StoredState | undefined {
  const row = stmts.load.get(patientId) as { version: number; state: string } | undefined;
  return row ? { state: deserializeState(row.state), version: row.version } : undefined;
}

/**
 * The latest committed states, kept parsed: the worker is the only writer of a data directory (it is locked), so
 * a state it committed is the state in the database, and reading it back would only cost a JSON parse of the
 * whole document. States are never mutated (the reducer returns new ones), so they can be shared. Bounded (LRU).
 */
export class StateCache {
  private readonly map = new Map<string, StoredState>();

  constructor(private readonly max = 2000) {}

  get(patientId: string): StoredState | undefined {
    const hit = this.map.get(patientId);
    if (hit) {
      this.map.delete(patientId);
      this.map.set(patientId, hit);
    }
    return hit;
  }

  set(patientId: string, stored: StoredState): void {
    this.map.delete(patientId);
    this.map.set(patientId, stored);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  delete(patientId: string): void {
    this.map.delete(patientId);
  }
}

/**
 * A unit of work for one worker pass. load/save behave as the StateStore port says (version condition checked on
 * save and again at commit); nothing is written until commit().
 */
export class GradingBatch implements StateStore {
  private readonly work = new Map<string, PatientWork>();

  constructor(
    private readonly db: Db,
    private readonly stmts: Statements,
    private readonly cache: StateCache,
    /** When this data directory was restored from a backup (epoch ms; restores.ts): new patients start there. */
    private readonly restoredAt?: number,
  ) {}

  firstState(patientId: string): PatientState | undefined {
    return this.restoredAt === undefined ? undefined : movedOnByRestore(undefined, patientId, this.restoredAt);
  }

  private of(patientId: string): PatientWork {
    let w = this.work.get(patientId);
    if (!w) {
      w = { timeline: [], consumed: [] };
      this.work.set(patientId, w);
    }
    return w;
  }

  async load(patientId: string): Promise<StoredState | undefined> {
    const staged = this.work.get(patientId)?.state;
    if (staged) return { state: staged.state, version: staged.version };
    const cached = this.cache.get(patientId);
    if (cached) return cached;
    const stored = readState(this.stmts, patientId);
    if (stored) this.cache.set(patientId, stored);
    return stored;
  }

  async save(
    patientId: string,
    state: PatientState,
    expectedVersion: number,
    outbox: Notification[],
    extras?: SaveExtras,
  ): Promise<void> {
    const w = this.of(patientId);
    const current = w.state ? w.state.version : ((this.stmts.version.get(patientId) as number | undefined) ?? 0);
    if (current !== expectedVersion) throw new VersionConflict(patientId);
    w.state = {
      state,
      baseVersion: w.state ? w.state.baseVersion : expectedVersion,
      version: expectedVersion + 1,
      outbox: [...(w.state?.outbox ?? []), ...outbox],
      alerts: [...(w.state?.alerts ?? []), ...(extras?.alerts ?? [])],
      audit: [...(w.state?.audit ?? []), ...(extras?.audit ?? [])],
      seen: [...(w.state?.seen ?? []), ...(extras?.seen ?? [])],
    };
  }

  /** The long tail: a read of the primary key, cheap enough per message on SQLite (written in commit()). */
  async priorDigests(patientId: string, messageIds: readonly string[]): Promise<Map<string, string[]>> {
    return priorDigests(this.stmts, patientId, messageIds);
  }

  /** The messages applied (or found duplicate) for a patient: their inbox rows go, their points are kept. */
  applied(patientId: string, seqs: number[], points: TimelinePoint[], assessment: Assessment | undefined): void {
    const w = this.of(patientId);
    w.consumed.push(...seqs);
    w.timeline.push(...points);
    if (assessment) w.assessment = assessment;
  }

  failed(patientId: string, failure: Failure): void {
    this.of(patientId).failure = failure;
  }

  /** Drops what the batch holds for a patient (graded again apart, or not at all in this pass). */
  discard(patientId: string): void {
    this.work.delete(patientId);
  }

  patients(): string[] {
    return [...this.work.keys()];
  }

  /** How many records (grade changes and alerts) these patients' saves put in the outbox. */
  pageCount(patientIds: string[]): number {
    return patientIds.reduce(
      (n, p) => n + (this.work.get(p)?.state?.outbox.length ?? 0) + (this.work.get(p)?.state?.alerts.length ?? 0),
      0,
    );
  }

  /** Everything in one transaction. Throws (and writes nothing) if any patient's write fails. */
  commit(nowIso: string): void {
    try {
      relaxedTransaction(this.db, () => {
        for (const [patientId, w] of this.work) this.write(patientId, w, nowIso);
      });
    } catch (err) {
      for (const patientId of this.work.keys()) this.cache.delete(patientId);
      throw err;
    }
    for (const [patientId, w] of this.work) this.cached(patientId, w);
  }

  /** One patient alone (used to isolate a patient whose write fails, so that it cannot hold up the others). */
  commitPatient(patientId: string, nowIso: string): void {
    const w = this.work.get(patientId);
    if (!w) return;
    try {
      relaxedTransaction(this.db, () => this.write(patientId, w, nowIso));
    } catch (err) {
      this.cache.delete(patientId);
      throw err;
    }
    this.cached(patientId, w);
  }

  private cached(patientId: string, w: PatientWork): void {
    if (w.state) this.cache.set(patientId, { state: w.state.state, version: w.state.version });
  }

  private write(patientId: string, w: PatientWork, nowIso: string): void {
    const s = this.stmts;
    if (w.state) {
      // Without the window of recent identities: every identity is in seen_messages (written below, in this
      // transaction) and read after each load (priorDigests), so the window would only make every write and every
      // json_extract of the state longer (about 22 KB of a busy patient's 24).
      const text = serializeState({ ...w.state.state, seen: [] });
      const assessment = w.assessment ? JSON.stringify(w.assessment) : null;
      const since = feedSince(w.state.state);
      const list = listColumns(w.state.state);
      const listed = [list.endedAt, list.notified, w.assessment?.crsGrade ?? null, w.assessment?.icansGrade ?? null];
      const done =
        w.state.baseVersion === 0
          ? s.insertState.run(patientId, w.state.version, text, assessment, nowIso, since, ...listed)
          : s.updateState.run(
              w.state.version,
              text,
              assessment,
              nowIso,
              since,
              ...listed,
              patientId,
              w.state.baseVersion,
            );
      if (done.changes !== 1) throw new VersionConflict(patientId);
      for (const n of w.state.outbox)
        s.outbox.run('notification', n.notificationId, patientId, JSON.stringify(n), nowIso);
      for (const a of w.state.alerts) s.outbox.run('alert', a.alertId, patientId, JSON.stringify(a), nowIso);
      for (const e of w.state.audit) s.audit.run(...auditRow(e));
      for (const m of w.state.seen) s.seen.run(patientId, m.messageId, m.digest);
    }
    let latestClock = Number.NEGATIVE_INFINITY;
    for (const p of w.timeline) {
      s.timeline.run(
        patientId,
        p.messageId,
        p.observedAt,
        p.clock,
        p.crs,
        p.icans,
        JSON.stringify(p.sender !== undefined ? { ...p.data, sender: p.sender } : p.data),
      );
      latestClock = Math.max(latestClock, p.clock);
    }
    if (w.timeline.length > 0) s.prune.run(patientId, latestClock - TIMELINE_KEEP_MS);
    for (const seq of w.consumed) s.consume.run(seq);
    const f = w.failure;
    if (f) {
      if (f.deadLetter) {
        s.deadLetter.run(f.attempts, f.error, nowIso, f.seq);
        s.consume.run(f.seq);
      } else {
        s.retry.run(f.attempts, f.retryAt, f.seq);
      }
    }
  }
}

/** The StateStore port on SQLite: each save commits at once. The worker uses GradingBatch instead. */
export class SqliteStateStore implements StateStore {
  private readonly stmts: Statements;
  private readonly cache = new StateCache();

  constructor(
    private readonly db: Db,
    /** When this data directory was restored from a backup (restores.ts lastRestore); undefined: never. */
    private readonly restoredAt?: number,
  ) {
    this.stmts = statements(db);
  }

  firstState(patientId: string): PatientState | undefined {
    return this.batch().firstState(patientId);
  }

  /**
   * How many patients were last graded under each grading settings id (PatientState.gradedUnder; null: a state stored
   * before 2026-12-07, which names none): what crs serve says at its start (settingsAtStart). One pass of the table.
   */
  gradedUnder(): Map<string | null, number> {
    const rows = this.db
      .prepare("SELECT json_extract(state, '$.gradedUnder') AS id, count(*) AS n FROM patients GROUP BY id")
      .all() as { id: string | null; n: number }[];
    return new Map(rows.map((r) => [typeof r.id === 'string' ? r.id : null, r.n]));
  }

  async load(patientId: string): Promise<StoredState | undefined> {
    return this.batch().load(patientId);
  }

  async priorDigests(patientId: string, messageIds: readonly string[]): Promise<Map<string, string[]>> {
    return priorDigests(this.stmts, patientId, messageIds);
  }

  async save(
    patientId: string,
    state: PatientState,
    expectedVersion: number,
    outbox: Notification[],
    extras?: SaveExtras,
  ): Promise<void> {
    const batch = this.batch();
    await batch.save(patientId, state, expectedVersion, outbox, extras);
    batch.commit(new Date().toISOString());
  }

  batch(): GradingBatch {
    return new GradingBatch(this.db, this.stmts, this.cache, this.restoredAt);
  }
}
