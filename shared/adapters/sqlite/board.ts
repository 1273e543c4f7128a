// What the on-call board reads from the embedded database: patients, their timeline, and their pages (the Page
// model of shared/domain/paging.ts, with every send of each page and the grade change it is about).
import { monitoringEnded, type PagesRead, type Page, type Silence, type SilencesRead } from '#domain/paging.ts';
import type { Notification } from '#domain/page.ts';
import type { Assessment } from '#domain/reducer.ts';
import { deserializeState, type PatientState } from '#domain/state.ts';
import type { Db } from './db.ts';
import { isNumber, isText, jsonObject, readNotification } from './rows.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { PASSED, withNewerChange, type SqlitePageStore } from './pages.ts';
import type { TimelinePoint } from './store.ts';

/**
 * What the list decides by, kept with each state (columns `monitoring_ended_at` and `grade`): when the monitoring in
 * force ended (null while monitored) and the highest grade last paged (CRS or ICANS: 0 once de-escalated). The
 * store adds the grade as graded.
 */
export function listColumns(state: PatientState): { endedAt: number | null; notified: number } {
  return {
    endedAt: monitoringEnded(state)?.t ?? null,
    notified: Math.max(state.notified.crs.grade, state.notified.icans.grade),
  };
}

/**
 * A patient the board's list leaves out: monitoring ended before @endedBefore, graded 0 and de-escalated, no page
 * of theirs open, exhausted or not sent yet where it is current (no newer change of its subject passed it: PASSED, the
 * pager's order), no alert in force, and no silence of theirs in force. Decided from columns and indexes: no state is
 * read. (The board shows a group's pages when it is current and one awaits an answer, or it is an alert: board-api.ts
 * needsAttention.) The retention (retention.ts) drops such a patient's current page group once their monitoring
 * ended more than the retention ago.
 */
export const LEFT_OUT = `monitoring_ended_at < @endedBefore AND grade = 0
  AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.patient_id = patients.patient_id AND (p.status = 'open' OR p.delivered = 0
    OR ((p.status = 'exhausted' OR p.kind = 'alert') AND NOT ${PASSED})))
  AND NOT EXISTS (SELECT 1 FROM silences s WHERE s.patient_id = patients.patient_id AND s.until > @now
    AND (s.ended_at IS NULL OR s.ended_at > @now))`;

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

/** A patient whose stored row cannot be read (its state or assessment): named, the others listed. */
export interface UnreadablePatient {
  patientId: string;
  reason: string;
}

/** An observation of the timeline whose row cannot be read: its message id, and why. */
export interface UnreadablePoint {
  messageId: string;
  reason: string;
}

/** A send of a page (an outbox row) whose body cannot be read: named by its send id, with why. */
export interface UnreadableSend {
  sendId: string;
  reason: string;
}

/** A page's send as the board shows it (role, level, round, why, when), or why its row cannot be read. */
function readSend(body: string): PageEvent | string {
  const v = jsonObject(body);
  if (typeof v === 'string') return v;
  for (const [field, ok] of [
    ['role', isText],
    ['level', isNumber],
    ['round', isNumber],
    ['reason', isText],
    ['sentAt', isText],
  ] as const) {
    if (v[field] === undefined) return `${field} is missing`;
    if (!ok(v[field])) return `${field} is not what a send holds there`;
  }
  return v as unknown as PageEvent;
}

export class BoardQueries {
  private readonly s;

  constructor(
    db: Db,
    private readonly pageStore: SqlitePageStore,
  ) {
    withNewerChange(db);
    this.s = {
      // Through the index of ended ones: the rest are listed, found by id (their states only are read).
      listed: db.prepare(
        `SELECT * FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM patients WHERE ${LEFT_OUT}) ORDER BY patient_id`,
      ),
      count: db.prepare('SELECT count(*) FROM patients').pluck(),
      patient: db.prepare('SELECT * FROM patients WHERE patient_id = ?'),
      timeline: db.prepare(
        'SELECT message_id, observed_at, clock, crs, icans, data FROM timeline WHERE patient_id = ? AND observed_at >= ? ORDER BY observed_at, id',
      ),
      // A page's sends have ids "<pageId>#<rev>": a range of the unique index.
      sends: db.prepare(
        "SELECT item_id, body FROM outbox WHERE item_id > ? AND item_id < ? AND kind = 'page' ORDER BY seq",
      ),
      notification: db.prepare("SELECT body FROM outbox WHERE item_id = ? AND kind = 'notification'"),
      // Ward alerts page as "ward W" (shared/app/stale-feed.ts): a range of the patient index.
      wards: db
        .prepare("SELECT DISTINCT patient_id FROM pages WHERE patient_id >= 'ward ' AND patient_id < 'ward!'")
        .pluck(),
      // The patients of a ward's alert in force still without data: a member is let go when its data resumes.
      wardQuiet: db
        .prepare(
          `SELECT patient_id FROM stale_feed_members WHERE alert_id > :from AND alert_id < :to
             AND instr(substr(alert_id, length(:from) + 1), '|') = 0 ORDER BY patient_id`,
        )
        .pluck(),
      // Its patients whose data came back while it is in force (an alert whose all-clear is stored has none).
      wardResumed: db.prepare(
        `SELECT patient_id, bed, at FROM stale_feed_resumed r WHERE alert_id > :from AND alert_id < :to
           AND instr(substr(alert_id, length(:from) + 1), '|') = 0
           AND NOT EXISTS (SELECT 1 FROM pages c WHERE c.page_id > r.alert_id || '|cleared|' AND c.page_id < r.alert_id || '|cleared}')
         ORDER BY at, patient_id`,
      ),
      counts: db.prepare(
        `SELECT (SELECT count(*) FROM inbox) AS inbox, (SELECT count(*) FROM dead_letter) AS deadLetters,
                (SELECT count(*) FROM patients) AS patients, (SELECT count(*) FROM pages WHERE status = 'open') AS openPages`,
      ),
    };
  }

  /**
   * The patients the board lists, and how many it leaves out (LEFT_OUT): those whose monitoring ended before
   * `endedBefore` with nothing open, as of `now`. A listed patient whose row cannot be read is named by id with why
   * (the error's name: never the row's values); until 2026-12-05 one such row failed the board's list for every
   * patient.
   */
  listed(
    endedBefore: number,
    now: number,
  ): { patients: PatientRecord[]; unreadable: UnreadablePatient[]; leftOut: number } {
    // Both read in one turn of the event loop: no write of the server's comes between them.
    const rows = this.s.listed.all({ endedBefore, now }) as PatientRow[];
    return { ...this.read(rows), leftOut: (this.s.count.get() as number) - rows.length };
  }

  private read(rows: PatientRow[]): { patients: PatientRecord[]; unreadable: UnreadablePatient[] } {
    const patients: PatientRecord[] = [];
    const unreadable: UnreadablePatient[] = [];
    for (const r of rows) {
      try {
        patients.push(toPatient(r));
      } catch (err) {
        unreadable.push({
          patientId: r.patient_id,
          reason: `its state: ${(err as Error).name}`,
        });
      }
    }
    return { patients, unreadable };
  }

  /** The subjects ("ward W") of every ward alert ever raised. */
  wardSubjects(): string[] {
    return this.s.wards.all() as string[];
  }

  /** The patients of the ward's no-data alert (`subject`: "ward W") still without data, in the order of their ids. */
  wardQuiet(subject: string): string[] {
    return this.s.wardQuiet.all(wardRange(subject)) as string[];
  }

  /**
   * The patients of the ward's no-data alert in force whose data came back meanwhile (the newest 20 of each alert):
   * their bed then, and their first reading back (epoch ms), oldest first (2026-12-07).
   */
  wardResumed(subject: string): { patientId: string; bed: string | null; at: number }[] {
    return (this.s.wardResumed.all(wardRange(subject)) as { patient_id: string; bed: string | null; at: number }[]).map(
      (r) => ({ patientId: r.patient_id, bed: r.bed, at: r.at }),
    );
  }

  patient(patientId: string): PatientRecord | undefined {
    const row = this.s.patient.get(patientId) as PatientRow | undefined;
    return row ? toPatient(row) : undefined;
  }

  /** One patient, or, when its row cannot be read, its id with why (as the list names it); undefined when none. */
  patientRead(patientId: string): { patient: PatientRecord } | { unreadable: UnreadablePatient } | undefined {
    const row = this.s.patient.get(patientId) as PatientRow | undefined;
    if (!row) return undefined;
    const { patients, unreadable } = this.read([row]);
    return patients[0] ? { patient: patients[0] } : { unreadable: unreadable[0]! };
  }

  /**
   * A patient's newest pages, newest first, with the pages of each subject's newest change (newerChange) should they
   * be older than the window; and those whose row cannot be read (by id, with why).
   */
  pages(patientId: string, limit = 200): PagesRead {
    return this.pageStore.patientPagesWithNewestNow(patientId, limit);
  }

  page(pageId: string): Page | undefined {
    return this.pageStore.pageNow(pageId);
  }

  /**
   * Every time the page was sent (to which role, at which level, when), oldest first; and the sends whose row cannot
   * be read, by send id with why. Until 2026-12-05 one such row failed the board's list, for every patient.
   */
  sends(pageId: string): { sends: PageEvent[]; unreadable: UnreadableSend[] } {
    const sends: PageEvent[] = [];
    const unreadable: UnreadableSend[] = [];
    for (const r of this.s.sends.all(`${pageId}#`, `${pageId}$`) as { item_id: string; body: string }[]) {
      const e = readSend(r.body);
      if (typeof e === 'string') unreadable.push({ sendId: r.item_id, reason: e });
      else sends.push(e);
    }
    return { sends, unreadable };
  }

  /** The grade change, or why its row cannot be read (`unreadable`); undefined when there is none. */
  notification(notificationId: string): Notification | { unreadable: string } | undefined {
    const row = this.s.notification.get(notificationId) as { body: string } | undefined;
    if (!row) return undefined;
    const n = readNotification(row.body);
    return typeof n === 'string' ? { unreadable: n } : n;
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

  /**
   * A patient's observations since `sinceMs`, and those whose row cannot be read (by message id, with why): until
   * 2026-12-05 one such row answered the patient's view with 500.
   */
  timeline(patientId: string, sinceMs: number): { points: TimelinePoint[]; unreadable: UnreadablePoint[] } {
    const rows = this.s.timeline.all(patientId, sinceMs) as {
      message_id: string;
      observed_at: number;
      clock: number;
      crs: number;
      icans: number;
      data: string;
    }[];
    const points: TimelinePoint[] = [];
    const unreadable: UnreadablePoint[] = [];
    for (const r of rows) {
      const data = jsonObject(r.data);
      if (typeof data === 'string') unreadable.push({ messageId: r.message_id, reason: data });
      else
        points.push({
          messageId: r.message_id,
          observedAt: r.observed_at,
          clock: r.clock,
          crs: r.crs,
          icans: r.icans,
          data: data as TimelinePoint['data'],
        });
    }
    return { points, unreadable };
  }

  counts(): { inbox: number; deadLetters: number; patients: number; openPages: number } {
    return this.s.counts.get() as { inbox: number; deadLetters: number; patients: number; openPages: number };
  }
}

/**
 * A ward's alert ids, "stale-feed|ward W|<since>": those between "...|" and "...}" ('}' follows '|'); the queries also
 * want no further '|' (a ward's name may hold one: ward "A|1"'s ids are in ward A's range).
 */
const wardRange = (subject: string) => ({ from: `stale-feed|${subject}|`, to: `stale-feed|${subject}}` });
