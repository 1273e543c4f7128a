// What the embedded server knows of patients, for device scopes and the ceiling on new patients (shared/app/scope.ts):
// a patient is known once graded (patients) or waiting to be (inbox); its ward is the one its newest waiting message
// gives, else the graded state's. The ceiling counts patients with data in the last ACTIVE_DAYS, those waiting, and the
// room reserved by requests not yet committed, so that concurrent requests cannot overshoot it together.
import type { PatientDirectory, PatientFacts } from '../../app/scope.ts';
import { DAY, iso } from '../../domain/time.ts';
import type { Db } from './db.ts';

/** A patient with no data for this long no longer counts against the ceiling. */
const ACTIVE_DAYS = 14;
/** crs serve --max-patients, by default. */
export const DEFAULT_MAX_PATIENTS = 500;

export class SqlitePatientDirectory implements PatientDirectory {
  private reserved = 0;
  private readonly s;

  constructor(
    db: Db,
    private readonly now: () => number,
  ) {
    this.s = {
      graded: db.prepare(
        "SELECT patient_id AS id, json_extract(state, '$.enrolment.ward.v') AS ward FROM patients WHERE patient_id IN (SELECT value FROM json_each(?))",
      ),
      // The newest ward a waiting message gives (a patient placed by a message not graded yet).
      waiting: db.prepare(
        `SELECT patient_id AS id, (SELECT json_extract(i2.body, '$.message.enrolment.ward') FROM inbox i2
            WHERE i2.patient_id = i.patient_id AND json_extract(i2.body, '$.message.enrolment.ward') IS NOT NULL ORDER BY i2.seq DESC LIMIT 1) AS ward
         FROM inbox i WHERE patient_id IN (SELECT value FROM json_each(?)) GROUP BY patient_id`,
      ),
      active: db
        .prepare(
          `SELECT (SELECT count(*) FROM patients WHERE updated_at >= ? AND monitoring_ended_at IS NULL)
                + (SELECT count(DISTINCT patient_id) FROM inbox WHERE patient_id NOT IN (SELECT patient_id FROM patients))`,
        )
        .pluck(),
    };
  }

  async lookup(patientIds: readonly string[]): Promise<Map<string, PatientFacts>> {
    const ids = JSON.stringify(patientIds);
    const out = new Map<string, PatientFacts>();
    for (const r of this.s.waiting.all(ids) as { id: string; ward: string | null }[])
      out.set(r.id, { known: true, ...(r.ward !== null ? { ward: r.ward } : {}) });
    for (const r of this.s.graded.all(ids) as { id: string; ward: string | null }[]) {
      const ward = out.get(r.id)?.ward ?? r.ward ?? undefined; // a waiting message is newer than the graded state
      out.set(r.id, { known: true, ...(ward !== undefined ? { ward } : {}) });
    }
    return out;
  }

  /** Synchronous: no other request runs between the count and the reservation. */
  admitNew(
    patientIds: readonly string[],
    ceiling: number,
  ): { ok: true; release(admitted: boolean): void } | { ok: false; active: number } {
    const active = (this.s.active.get(iso(this.now() - ACTIVE_DAYS * DAY)) as number) + this.reserved;
    if (active + patientIds.length > ceiling) return { ok: false, active };
    const n = patientIds.length;
    this.reserved += n;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.reserved -= n;
      },
    };
  }
}
