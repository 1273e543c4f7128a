// What the on-call board reads from the embedded database: patients, their timeline, and their pages (the Page
// model of shared/domain/paging.ts, with every send of each page and the grade change it is about).
import type { Page, Silence, SilencesRead } from '#domain/paging.ts';
import type { Notification } from '#domain/page.ts';
import type { Assessment } from '#domain/reducer.ts';
import { deserializeState, type PatientState } from '#domain/state.ts';
import type { Db } from './db.ts';
import type { PageEvent } from '#domain/page-event.ts';
import type { SqlitePageStore } from './pages.ts';
import type { TimelinePoint } from './store.ts';

export interface PatientRecord {
  patientId: string;
  version: number;
  state: PatientState;
  assessment: Assessment | null;
  updatedAt: string;
}

interface PatientRow {
  patient_id: string;
  version: number;
  state: string;
  assessment: string | null;
  updated_at: string;
}

const toPatient = (r: PatientRow): PatientRecord => ({
  patientId: r.patient_id,
  version: r.version,
  state: deserializeState(r.state),
  assessment: r.assessment ? (JSON.parse(r.assessment) as Assessment) : null,
  updatedAt: r.updated_at,
});

export class BoardQueries {
  private readonly s;

  constructor(
    db: Db,
    private readonly pageStore: SqlitePageStore,
  ) {
    this.s = {
      patients: db.prepare('SELECT * FROM patients ORDER BY patient_id'),
      patient: db.prepare('SELECT * FROM patients WHERE patient_id = ?'),
      timeline: db.prepare(
        'SELECT message_id, observed_at, clock, crs, icans, data FROM timeline WHERE patient_id = ? AND observed_at >= ? ORDER BY observed_at, id',
      ),
      // A page's sends have ids "<pageId>#<rev>": a range of the unique index.
      sends: db.prepare("SELECT body FROM outbox WHERE item_id > ? AND item_id < ? AND kind = 'page' ORDER BY seq"),
      notification: db.prepare("SELECT body FROM outbox WHERE item_id = ? AND kind = 'notification'"),
      // Ward alerts page as "ward W" (shared/app/stale-feed.ts): a range of the patient index.
      wards: db
        .prepare("SELECT DISTINCT patient_id FROM pages WHERE patient_id >= 'ward ' AND patient_id < 'ward!'")
        .pluck(),
      counts: db.prepare(
        `SELECT (SELECT count(*) FROM inbox) AS inbox, (SELECT count(*) FROM dead_letter) AS deadLetters,
                (SELECT count(*) FROM patients) AS patients, (SELECT count(*) FROM pages WHERE status = 'open') AS openPages`,
      ),
    };
  }

  patients(): PatientRecord[] {
    return (this.s.patients.all() as PatientRow[]).map(toPatient);
  }

  /** The subjects ("ward W") of every ward alert ever raised. */
  wardSubjects(): string[] {
    return this.s.wards.all() as string[];
  }

  patient(patientId: string): PatientRecord | undefined {
    const row = this.s.patient.get(patientId) as PatientRow | undefined;
    return row ? toPatient(row) : undefined;
  }

  /** A patient's pages, newest first. */
  pages(patientId: string, limit = 200): Page[] {
    return this.pageStore.patientPagesNow(patientId, limit).pages;
  }

  page(pageId: string): Page | undefined {
    return this.pageStore.pageNow(pageId);
  }

  /** Every time the page was sent (to which role, at which level, when), oldest first. */
  sends(pageId: string): PageEvent[] {
    return (this.s.sends.all(`${pageId}#`, `${pageId}$`) as { body: string }[]).map(
      (r) => JSON.parse(r.body) as PageEvent,
    );
  }

  notification(notificationId: string): Notification | undefined {
    const row = this.s.notification.get(notificationId) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as Notification) : undefined;
  }

  silences(now: number): Silence[] {
    return this.pageStore.activeSilences(now);
  }

  /** The silences in force, and those in force whose item cannot be read (by id, with why). */
  silencesRead(now: number): SilencesRead {
    return this.pageStore.silencesNow(now);
  }

  silenceNow(silenceId: string): Silence | undefined {
    return this.pageStore.silenceNow(silenceId);
  }

  timeline(patientId: string, sinceMs: number): TimelinePoint[] {
    const rows = this.s.timeline.all(patientId, sinceMs) as {
      message_id: string;
      observed_at: number;
      clock: number;
      crs: number;
      icans: number;
      data: string;
    }[];
    return rows.map((r) => ({
      messageId: r.message_id,
      observedAt: r.observed_at,
      clock: r.clock,
      crs: r.crs,
      icans: r.icans,
      data: JSON.parse(r.data) as TimelinePoint['data'],
    }));
  }

  counts(): { inbox: number; deadLetters: number; patients: number; openPages: number } {
    return this.s.counts.get() as { inbox: number; deadLetters: number; patients: number; openPages: number };
  }
}
