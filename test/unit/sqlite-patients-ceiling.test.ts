// crs serve --max-patients: the ceiling counts the patients still monitored. The alert tells the operator to "end
// monitoring of discharged patients"; until 2026-12-06 an ended patient still counted for 14 days (its end even
// renewed it), so doing so freed no room and the new patient stayed refused (seen running crs serve).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqlitePatientDirectory } from '#adapters/sqlite/patients.ts';

const NOW = Date.parse('2026-12-06T03:00:00Z');
let dir = '';
let db: Db | undefined;
afterEach(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

function withPatients(ended: (number | null)[]): SqlitePatientDirectory {
  dir = mkdtempSync(join(tmpdir(), 'crs-ceiling-'));
  db = openDataDir(dir);
  const put = db.prepare(
    "INSERT INTO patients (patient_id, version, state, updated_at, monitoring_ended_at, grade) VALUES (?, 1, '{}', ?, ?, 0)",
  );
  ended.forEach((at, i) => put.run(`P-${i}`, new Date(NOW - 60_000).toISOString(), at));
  return new SqlitePatientDirectory(db, () => NOW);
}

describe('the ceiling of new patients (crs serve --max-patients)', () => {
  it('has room once a patient is discharged (monitoring ended), as the ceiling alert tells the operator', () => {
    const full = withPatients([null, NOW - 30_000]);
    expect(full.admitNew(['P-new'], 2).ok).toBe(true);
  });

  it('counts every patient still monitored', () => {
    const full = withPatients([null, null]);
    expect(full.admitNew(['P-new'], 2)).toEqual({ ok: false, active: 2 });
  });
});
