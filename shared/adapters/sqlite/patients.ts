// What the embedded server knows of patients, for device scopes and the ceiling on new patients (shared/app/scope.ts):
// a patient is known once graded (patients) or waiting to be (inbox); its ward is the latest by time of the graded
// state's and those its waiting messages give, as grading will make it (a move charted late changes nothing). The ceiling counts patients with data in the last ACTIVE_DAYS, those waiting, and the
// room reserved by requests not yet committed, so that concurrent requests cannot overshoot it together.
import type { PatientDirectory, PatientFacts } from '../../app/scope.ts';
import { DAY, iso } from '../../domain/time.ts';
import type { Db } from './db.ts';

type WaitingRow = { id: string; ward: string | null; observedAt: string | null; receivedAt: string | null };

/**
 * When grading will place a waiting message: its observedAt, or its arrival when dated ahead of it (reducer.ts
 * placement, under the default aheadOfArrival); a time that cannot be read counts as the latest.
 */
function waitingAt(r: WaitingRow): number {
  const observed = r.observedAt === null ? Number.NaN : Date.parse(r.observedAt);
  const received = r.receivedAt === null ? Number.NaN : Date.parse(r.receivedAt);
  const t = Math.min(observed, Number.isNaN(received) ? observed : received);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

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
      // Each row's JSON read only once it is known to be JSON: json_extract of a row that is not (edited by hand,
      // damaged) fails the whole statement ("malformed JSON"). A state that is not a JSON object, or whose ward is
      // not a text, is unreadable (`readable` 0): its ward cannot be told.
      graded: db.prepare(
        `SELECT id, readable, CASE WHEN readable THEN json_extract(state, '$.enrolment.ward.v') END AS ward,
                CASE WHEN readable THEN json_extract(state, '$.enrolment.ward.t') END AS t
         FROM (SELECT patient_id AS id, state, CASE WHEN json_valid(state) AND json_type(state) = 'object'
                 THEN coalesce(json_type(state, '$.enrolment.ward.v'), 'text') = 'text' ELSE 0 END AS readable
               FROM patients WHERE patient_id IN (SELECT value FROM json_each(?)))`,
      ),
      // Each ward a waiting message gives (a patient placed, or moved, by a message not graded yet), in arrival order;
      // a message that is not JSON gives none (grading sets it aside).
      waiting: db.prepare(
        `SELECT patient_id AS id, CASE WHEN json_valid(body) THEN json_extract(body, '$.message.enrolment.ward') END AS ward,
                CASE WHEN json_valid(body) THEN json_extract(body, '$.message.observedAt') END AS observedAt,
                CASE WHEN json_valid(body) THEN json_extract(body, '$.receivedAt') END AS receivedAt
         FROM inbox WHERE patient_id IN (SELECT value FROM json_each(?)) ORDER BY seq`,
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
    // The ward with its time: the graded state's first, then each waiting message's in arrival order, a later one
    // taking the place at the same time or after (ties go to the later arrival, as in grading). Until 2026-12-07 the
    // newest waiting message's ward counted whatever its time: a move charted before the one graded, while it waited,
    // put the patient back in the ward left (its token reached the patient; the new ward's was refused).
    const latest = new Map<string, { ward?: string; t: number }>();
    const place = (id: string, ward: string | null, t: number) => {
      const cur = latest.get(id);
      if (ward === null) {
        if (!cur) latest.set(id, { t: Number.NEGATIVE_INFINITY });
      } else if (!cur || cur.ward === undefined || t >= cur.t) latest.set(id, { ward, t });
    };
    // A patient whose state cannot be read is known, its ward not told (as on AWS): until 2026-12-07 it failed the
    // lookup, and every request naming it was answered 503 (the ceiling reads every request's patients).
    const unreadable = new Set<string>();
    for (const r of this.s.graded.all(ids) as { id: string; readable: number; ward: string | null; t: number | null }[])
      if (r.readable) place(r.id, r.ward, r.t ?? Number.NEGATIVE_INFINITY);
      else unreadable.add(r.id);
    for (const r of this.s.waiting.all(ids) as WaitingRow[]) place(r.id, r.ward, waitingAt(r));
    const out = new Map<string, PatientFacts>();
    for (const id of unreadable) out.set(id, { known: true, unreadable: true });
    for (const [id, { ward }] of latest)
      if (!unreadable.has(id)) out.set(id, { known: true, ...(ward !== undefined ? { ward } : {}) });
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
