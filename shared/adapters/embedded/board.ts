// What the on-call board reads from the embedded database, and the acknowledgements it writes.
import type { Notification } from '../../domain/page.ts';
import type { Assessment } from '../../domain/reducer.ts';
import { deserializeState, type PatientState } from '../../domain/state.ts';
import type { Db } from './db.ts';
import type { TimelinePoint } from './store.ts';

export interface PatientRecord {
  patientId: string;
  version: number;
  state: PatientState;
  assessment: Assessment | null;
  updatedAt: string;
}

export interface PageRecord {
  notification: Notification;
  seq: number;
  triggeredAt: string;
  deliveredAt: string | null;
  deliveredTo: string[];
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  acknowledgedVia: string | null;
}

export type AckResult =
  | { kind: 'acknowledged'; notificationIds: string[]; page: PageRecord }
  | { kind: 'already'; page: PageRecord }
  | { kind: 'not-found' };

interface PatientRow {
  patient_id: string;
  version: number;
  state: string;
  assessment: string | null;
  updated_at: string;
}

interface PageRow {
  seq: number;
  body: string;
  triggered_at: string;
  delivered_at: string | null;
  delivered_to: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  acknowledged_via: string | null;
}

const PAGE_SELECT = `
  SELECT o.seq, o.body, p.triggered_at, p.acknowledged_at, p.acknowledged_by, p.acknowledged_via,
         coalesce(p.delivered_at, (SELECT min(d.sent_at) FROM deliveries d WHERE d.notification_id = p.notification_id)) AS delivered_at,
         (SELECT group_concat(d.sink) FROM deliveries d WHERE d.notification_id = p.notification_id) AS delivered_to
  FROM pages p JOIN outbox o ON o.notification_id = p.notification_id`;

const toPatient = (r: PatientRow): PatientRecord => ({
  patientId: r.patient_id,
  version: r.version,
  state: deserializeState(r.state),
  assessment: r.assessment ? (JSON.parse(r.assessment) as Assessment) : null,
  updatedAt: r.updated_at,
});

const toPage = (r: PageRow): PageRecord => ({
  notification: JSON.parse(r.body) as Notification,
  seq: r.seq,
  triggeredAt: r.triggered_at,
  deliveredAt: r.delivered_at,
  deliveredTo: r.delivered_to ? r.delivered_to.split(',').sort() : [],
  acknowledgedAt: r.acknowledged_at,
  acknowledgedBy: r.acknowledged_by,
  acknowledgedVia: r.acknowledged_via,
});

export class BoardQueries {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      patients: db.prepare('SELECT * FROM patients ORDER BY patient_id'),
      patient: db.prepare('SELECT * FROM patients WHERE patient_id = ?'),
      openPages: db.prepare(`${PAGE_SELECT} WHERE p.acknowledged_at IS NULL ORDER BY o.seq`),
      pagesOf: db.prepare(`${PAGE_SELECT} WHERE p.patient_id = ? ORDER BY o.seq`),
      page: db.prepare(`${PAGE_SELECT} WHERE p.notification_id = ?`),
      timeline: db.prepare(
        'SELECT message_id, observed_at, clock, crs, icans, data FROM timeline WHERE patient_id = ? AND observed_at >= ? ORDER BY observed_at, id',
      ),
      ackCovered: db.prepare(
        `SELECT p.notification_id FROM pages p JOIN outbox o ON o.notification_id = p.notification_id
         WHERE p.patient_id = ? AND p.condition = ? AND p.acknowledged_at IS NULL AND o.seq <= ?`,
      ),
      ack: db.prepare(
        'UPDATE pages SET acknowledged_at = ?, acknowledged_by = ?, acknowledged_via = ? WHERE notification_id = ? AND acknowledged_at IS NULL',
      ),
      counts: db.prepare(
        `SELECT (SELECT count(*) FROM inbox) AS inbox, (SELECT count(*) FROM dead_letter) AS deadLetters,
                (SELECT count(*) FROM patients) AS patients, (SELECT count(*) FROM pages WHERE acknowledged_at IS NULL) AS openPages`,
      ),
    };
  }

  patients(): PatientRecord[] {
    return (this.s.patients.all() as PatientRow[]).map(toPatient);
  }

  patient(patientId: string): PatientRecord | undefined {
    const row = this.s.patient.get(patientId) as PatientRow | undefined;
    return row ? toPatient(row) : undefined;
  }

  openPages(): PageRecord[] {
    return (this.s.openPages.all() as PageRow[]).map(toPage);
  }

  pagesOf(patientId: string): PageRecord[] {
    return (this.s.pagesOf.all(patientId) as PageRow[]).map(toPage);
  }

  page(notificationId: string): PageRecord | undefined {
    const row = this.s.page.get(notificationId) as PageRow | undefined;
    return row ? toPage(row) : undefined;
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

  /**
   * Records who acknowledged a page and when (server time). Older open pages of the same patient and condition
   * are acknowledged with it (acknowledged_via names this page): whoever answers grade 3 has seen grade 2.
   */
  acknowledge(notificationId: string, by: string, atIso: string): AckResult {
    return this.db.transaction((): AckResult => {
      const page = this.page(notificationId);
      if (!page) return { kind: 'not-found' };
      if (page.acknowledgedAt) return { kind: 'already', page };
      const n = page.notification;
      const covered = (this.s.ackCovered.all(n.patientId, n.condition, page.seq) as { notification_id: string }[]).map(
        (r) => r.notification_id,
      );
      for (const id of covered) this.s.ack.run(atIso, by, id === notificationId ? null : notificationId, id);
      return { kind: 'acknowledged', notificationIds: covered, page: this.page(notificationId)! };
    })();
  }

  counts(): { inbox: number; deadLetters: number; patients: number; openPages: number } {
    return this.s.counts.get() as { inbox: number; deadLetters: number; patients: number; openPages: number };
  }
}
