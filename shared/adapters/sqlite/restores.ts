// A data directory restored from a backup (2026-12-07). `crs backup` marks its copy with the moment it was taken; the
// first `crs serve` on the copy is the restore: it moves every patient's sequence on (movedOnByRestore: the ids of
// what it pages are none the lost server sent after the backup) and records when, in one transaction, and says that
// it runs on a backup of that moment and that the gateways must send again what they sent since.
import { deserializeState, movedOnByRestore, serializeState } from '#domain/state.ts';
import type { Db } from './db.ts';

/**
 * Version 15: the backups a data directory is. A row without restored_at is a copy crs backup made and no crs serve
 * has started on yet; a backup of a restored directory keeps the rows of the restores before it.
 */
export const SCHEMA_RESTORES = `
CREATE TABLE IF NOT EXISTS restores (
  taken_at INTEGER PRIMARY KEY,               -- when crs backup took the copy (epoch ms): nothing accepted after is in it
  restored_at INTEGER                         -- when crs serve first started on it (epoch ms; NULL: not yet)
);
`;

export interface Restore {
  takenAt: number;
  restoredAt: number;
}

/** Marks a copy crs backup made (its own connection to it) as a backup taken at `takenAt`. */
export function markBackup(copy: Db, takenAt: number): void {
  copy.exec(SCHEMA_RESTORES);
  copy.prepare('INSERT OR REPLACE INTO restores (taken_at, restored_at) VALUES (?, NULL)').run(takenAt);
}

/**
 * The restore, at the first start on a copy crs backup made: each patient's sequence moved on by `now`, and the
 * restore recorded, in one transaction. Undefined when the directory is no copy not yet started on. A state that
 * cannot be read is left as it is (the board names it).
 */
export function applyRestore(db: Db, now: number): Restore | undefined {
  return db.transaction(() => {
    const takenAt = db.prepare('SELECT max(taken_at) FROM restores WHERE restored_at IS NULL').pluck().get() as
      | number
      | null;
    if (takenAt === null) return undefined;
    const set = db.prepare('UPDATE patients SET state = ?, version = version + 1 WHERE patient_id = ?');
    for (const r of db.prepare('SELECT patient_id, state FROM patients').all() as {
      patient_id: string;
      state: string;
    }[]) {
      let text: string;
      try {
        text = serializeState(movedOnByRestore(deserializeState(r.state), r.patient_id, now));
      } catch {
        continue;
      }
      set.run(text, r.patient_id);
    }
    db.prepare('UPDATE restores SET restored_at = ? WHERE restored_at IS NULL').run(now);
    return { takenAt, restoredAt: now };
  })();
}

/** The latest restore this data directory had (undefined: none). */
export function lastRestore(db: Db): Restore | undefined {
  return db
    .prepare(
      'SELECT taken_at AS takenAt, restored_at AS restoredAt FROM restores WHERE restored_at IS NOT NULL ORDER BY restored_at DESC LIMIT 1',
    )
    .get() as Restore | undefined;
}
