// The embedded audit trail: an append-only SQLite table (triggers refuse UPDATE and DELETE; see db.ts). Entries
// are written with INSERT OR IGNORE on the SHA-256 of auditKey(entry), so a retried write stores an entry once.
import { createHash } from 'node:crypto';
import { sortableTime } from '#app/audit-export.ts';
import { DEFAULT_PAGING, feedStatus } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { auditKey, type AuditEvent, type AuditLog } from '#ports';
import type { Db } from './db.ts';

export const AUDIT_INSERT = 'INSERT OR IGNORE INTO audit (key, patient_id, type, at, entry) VALUES (?, ?, ?, ?, ?)';

export function auditRow(e: AuditEvent): [Buffer, string, string, string, string] {
  return [createHash('sha256').update(auditKey(e)).digest(), e.patientId, e.type, e.at, JSON.stringify(e)];
}

/** When the monitor feed last had data (feedStatus's `since`, which no setting changes); null when not enrolled. */
export function feedSince(state: PatientState): number | null {
  return feedStatus(state, 0, DEFAULT_PAGING)?.since ?? null;
}

const PAGE_SIZE = 500;

export class SqliteAuditLog implements AuditLog {
  private readonly insert;
  private readonly times;
  private readonly entries;

  /** How durable each append is, is the connection's synchronous setting (see server/paging.ts). */
  constructor(private readonly db: Db) {
    this.insert = db.prepare(AUDIT_INSERT);
    this.times = db.prepare('SELECT seq, at FROM audit WHERE patient_id = ? ORDER BY seq');
    this.entries = db.prepare('SELECT seq, entry FROM audit WHERE seq IN (SELECT value FROM json_each(?))');
  }

  async append(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.db.transaction(() => {
      for (const e of events) this.insert.run(...auditRow(e));
    })();
  }

  /**
   * Oldest first: by time (`at` may carry any offset), then the order written. Only the times are sorted in
   * memory; the entries are read in pages, so that a long trail never sits in memory at once.
   */
  async *forPatient(patientId: string): AsyncIterable<AuditEvent> {
    const order = (this.times.all(patientId) as { seq: number; at: string }[])
      .map((r) => ({ seq: r.seq, time: sortableTime(r.at) }))
      .sort((a, b) => (a.time === b.time ? a.seq - b.seq : a.time < b.time ? -1 : 1))
      .map((r) => r.seq);
    for (let i = 0; i < order.length; i += PAGE_SIZE) {
      const seqs = order.slice(i, i + PAGE_SIZE);
      const rows = this.entries.all(JSON.stringify(seqs)) as { seq: number; entry: string }[];
      const bySeq = new Map(rows.map((r) => [r.seq, r.entry]));
      for (const seq of seqs) yield JSON.parse(bySeq.get(seq)!) as AuditEvent;
    }
  }
}
