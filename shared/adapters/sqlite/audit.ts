// The embedded audit trail: an append-only SQLite table (triggers refuse UPDATE and DELETE; see db.ts). Entries
// are written with INSERT OR IGNORE on the SHA-256 of auditKey(entry), so a retried write stores an entry once.
import { createHash } from 'node:crypto';
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
  private readonly page;

  /** How durable each append is, is the connection's synchronous setting (see server/paging.ts). */
  constructor(private readonly db: Db) {
    this.insert = db.prepare(AUDIT_INSERT);
    this.page = db.prepare('SELECT seq, entry FROM audit WHERE patient_id = ? AND seq > ? ORDER BY seq LIMIT ?');
  }

  async append(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.db.transaction(() => {
      for (const e of events) this.insert.run(...auditRow(e));
    })();
  }

  /** Oldest first (in the order written), read in pages so that a long trail never sits in memory at once. */
  async *forPatient(patientId: string): AsyncIterable<AuditEvent> {
    let after = 0;
    for (;;) {
      const rows = this.page.all(patientId, after, PAGE_SIZE) as { seq: number; entry: string }[];
      for (const r of rows) yield JSON.parse(r.entry) as AuditEvent;
      if (rows.length < PAGE_SIZE) return;
      after = rows.at(-1)!.seq;
    }
  }
}
