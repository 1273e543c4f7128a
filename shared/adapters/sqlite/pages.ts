// Pages, their escalation ladders and silences on SQLite (the PageStore port), and the page sender that hands each
// page to the outbox. The ladders' timers are the `due_at` column: nothing lives only in memory, so a restarted
// server finds every pending escalation where it was and pages the next level at its time.
import { isWardAlert, isWardMember, withMembers, type InForce, type Resumed } from '#app/stale-feed.ts';
import {
  firstSendPending,
  newerChange,
  readOnePage,
  readOneSilence,
  readPage,
  readPages,
  readSilence,
  readSilences,
  type Page,
  type PagesRead,
  type Silence,
  type SilencesRead,
} from '#domain/paging.ts';
import type { Notification } from '#domain/page.ts';
import { iso } from '#domain/time.ts';
import {
  VersionConflict,
  type AckLink,
  type AuditEvent,
  type PageMessage,
  type PageSender,
  type PageStore,
} from '#ports';
import { pageEvent } from '#domain/page-event.ts';
import { AUDIT_INSERT, auditRow } from './audit.ts';
import type { Db } from './db.ts';
import { readNotification } from './rows.ts';

interface SilenceRow {
  silence_id: string;
  patient_id: string | null;
  body: string;
}

interface PageRow {
  page_id: string;
  rev: number;
  body: string;
}

/** Rows read each on its own: one that does not read as a page is handed back apart, by id (PagesRead). */
const toPages = (rows: PageRow[]): PagesRead => readPages(rows.map((r) => readPage(r.page_id, r.body, r.rev)));

export interface SqlitePageStoreOptions {
  /** After each save, with the pages as stored (e.g. to tell the board). */
  onSaved?: (pages: Page[]) => void;
}

/**
 * SQL: a newer change of the subject of page `p` (the table's alias) has pages, by newerChange itself
 * (#domain/paging.ts, the pager's order), called through `newer_change` (withNewerChange), not a copy of it in SQL.
 */
export const PASSED = `EXISTS (SELECT 1 FROM pages n WHERE n.patient_id = p.patient_id AND n.subject = p.subject
  AND newer_change(n.notification_id, n.triggered_at, p.notification_id, p.triggered_at))`;

/** Gives the connection `newer_change`, which PASSED calls (before any statement using it is prepared). */
export function withNewerChange(db: Db): Db {
  db.function('newer_change', { deterministic: true }, (aId, aAt, bId, bAt) =>
    newerChange(
      { notificationId: String(aId), triggeredAt: Number(aAt) },
      { notificationId: String(bId), triggeredAt: Number(bAt) },
    )
      ? 1
      : 0,
  );
  return db;
}

export class SqlitePageStore implements PageStore {
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly o: SqlitePageStoreOptions = {},
  ) {
    withNewerChange(db);
    this.s = {
      get: db.prepare('SELECT page_id, rev, body FROM pages WHERE page_id = ?'),
      open: db.prepare(
        "SELECT page_id, rev, body FROM pages INDEXED BY pages_open WHERE patient_id = ? AND status = 'open' ORDER BY triggered_at, page_id",
      ),
      // Due or held (open pages), and sends not made yet (open or informational): one seek in each partial index
      // (INDEXED BY: a plan that scanned every page would slow every tick as pages accumulate).
      pending: db.prepare(
        `SELECT rev, body, triggered_at, page_id FROM pages INDEXED BY pages_due WHERE status = 'open' AND due_at <= ?
         UNION SELECT rev, body, triggered_at, page_id FROM pages INDEXED BY pages_held WHERE status = 'open' AND held_by IS NOT NULL
         UNION SELECT rev, body, triggered_at, page_id FROM pages INDEXED BY pages_unsent WHERE delivered = 0 AND status IN ('open', 'info')
         ORDER BY triggered_at, page_id`,
      ),
      // A patient's sends not made yet (the partial index holds only those; level and round are in the body).
      unsent: db.prepare(
        "SELECT page_id, rev, body FROM pages INDEXED BY pages_unsent WHERE delivered = 0 AND status IN ('open', 'info') AND held_by IS NULL AND patient_id = ? ORDER BY triggered_at, rowid",
      ),
      // Unanswered ladders still current (no newer change of their subject passed them: PASSED, as board.ts LEFT_OUT).
      // A scan of every page: read once, as the server starts (EmbeddedPaging keeps the set from its saves after).
      exhausted: db.prepare(
        `SELECT page_id, rev, body FROM pages p WHERE status = 'exhausted' AND NOT ${PASSED} ORDER BY triggered_at, page_id`,
      ),
      ofPatient: db.prepare(
        'SELECT page_id, rev, body FROM pages WHERE patient_id = ? ORDER BY triggered_at DESC, rowid DESC LIMIT ?',
      ),
      // Each change of the patient once (its pages share their creation), and where it was stored last.
      changes: db.prepare(
        'SELECT notification_id AS id, subject, max(triggered_at) AS at, max(rowid) AS last FROM pages WHERE patient_id = ? GROUP BY notification_id',
      ),
      ofChanges: db.prepare(
        'SELECT page_id, rev, body FROM pages WHERE patient_id = ? AND notification_id IN (SELECT value FROM json_each(?)) ORDER BY triggered_at DESC, rowid DESC',
      ),
      insert: db.prepare(
        `INSERT OR IGNORE INTO pages (page_id, notification_id, patient_id, team, subject, kind, status, delivered, held_by, due_at, triggered_at, rev, body)
         VALUES (@pageId, @notificationId, @patientId, @team, @subject, @kind, @status, @delivered, @heldBy, @dueAt, @triggeredAt, @rev, @body)`,
      ),
      update: db.prepare(
        `UPDATE pages SET status = @status, delivered = @delivered, held_by = @heldBy, due_at = @dueAt, rev = @rev, body = @body
         WHERE page_id = @pageId AND rev = @expected`,
      ),
      nextDue: db.prepare(
        `SELECT min(t) AS t FROM (
           SELECT min(due_at) AS t FROM pages WHERE status = 'open'
           UNION ALL SELECT min(min(s.until, coalesce(s.ended_at, s.until))) FROM pages p JOIN silences s ON s.silence_id = p.held_by
             WHERE p.status = 'open' AND p.held_by IS NOT NULL)`,
      ),
      silences: db.prepare(
        'SELECT silence_id, patient_id, body FROM silences WHERE until > @now AND (ended_at IS NULL OR ended_at > @now) ORDER BY from_at, silence_id',
      ),
      silence: db.prepare('SELECT patient_id, body FROM silences WHERE silence_id = ?'),
      endSilence: db.prepare(
        'UPDATE silences SET ended_at = @at WHERE silence_id = @id AND ended_at IS NULL AND until > @at',
      ),
      putLink: db.prepare(
        'INSERT OR IGNORE INTO ack_links (link_key, page_id, role, expires_at) VALUES (@key, @pageId, @role, @expiresAt)',
      ),
      link: db.prepare('SELECT page_id AS pageId, role, expires_at AS expiresAt FROM ack_links WHERE link_key = ?'),
      // The audit entries a save writes with its pages (the audit table of the same database, append-only).
      audit: db.prepare(AUDIT_INSERT),
      putSilence: db.prepare(
        `INSERT INTO silences (silence_id, patient_id, team, from_at, until, ended_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (silence_id) DO UPDATE SET until = excluded.until, ended_at = excluded.ended_at, body = excluded.body`,
      ),
      // The latest written (rowid) stale-feed page of each patient.
      latestStale: db.prepare(
        `SELECT patient_id, notification_id, kind FROM pages
         WHERE rowid IN (SELECT max(rowid) FROM pages WHERE subject = 'stale-feed' GROUP BY patient_id)`,
      ),
      // A ward's alerts (several may be in force): those whose all-clear (pages "<alertId>|cleared|<team>") is not stored.
      wardStale: db
        .prepare(
          `SELECT DISTINCT notification_id FROM pages p WHERE subject = 'stale-feed' AND kind = 'alert' AND patient_id LIKE 'ward %'
           AND NOT EXISTS (SELECT 1 FROM pages c WHERE c.page_id > p.notification_id || '|cleared|' AND c.page_id < p.notification_id || '|cleared}')`,
        )
        .pluck(),
      members: db.prepare('SELECT patient_id, alert_id, since FROM stale_feed_members'),
      putMember: db.prepare(
        `INSERT INTO stale_feed_members (patient_id, alert_id, since) VALUES (?, ?, ?)
         ON CONFLICT (patient_id) DO UPDATE SET alert_id = excluded.alert_id, since = excluded.since`,
      ),
      dropMember: db.prepare('DELETE FROM stale_feed_members WHERE patient_id = ?'),
      resumed: db.prepare(
        'SELECT alert_id, patient_id, bed, at FROM stale_feed_resumed ORDER BY alert_id, at, patient_id',
      ),
      putResumed: db.prepare('INSERT INTO stale_feed_resumed (alert_id, patient_id, bed, at) VALUES (?, ?, ?, ?)'),
      dropResumed: db.prepare('DELETE FROM stale_feed_resumed WHERE alert_id = ?'),
      saids: db.prepare('SELECT alert_id, said FROM stale_feed_said'),
      putSaid: db.prepare('INSERT OR REPLACE INTO stale_feed_said (alert_id, said) VALUES (?, ?)'),
      dropSaid: db.prepare('DELETE FROM stale_feed_said WHERE alert_id = ?'),
      // What is kept of the ward alerts not in the list, and of members not in the list (dropStaleFeedsNotInForce).
      dropSaidsBut: db.prepare('DELETE FROM stale_feed_said WHERE alert_id NOT IN (SELECT value FROM json_each(?))'),
      dropResumedBut: db.prepare(
        'DELETE FROM stale_feed_resumed WHERE alert_id NOT IN (SELECT value FROM json_each(?))',
      ),
      dropMembersBut: db.prepare(
        'DELETE FROM stale_feed_members WHERE patient_id NOT IN (SELECT value FROM json_each(?))',
      ),
    };
  }

  async get(pageId: string): Promise<Page | undefined> {
    return this.pageNow(pageId);
  }

  async saveAckLink(key: string, link: AckLink): Promise<void> {
    this.s.putLink.run({ key, pageId: link.pageId, role: link.role, expiresAt: link.expiresAt });
  }

  async ackLink(key: string): Promise<AckLink | undefined> {
    return this.s.link.get(key) as AckLink | undefined;
  }

  async openPages(patientId: string): Promise<PagesRead> {
    return toPages(this.s.open.all(patientId) as PageRow[]);
  }

  async pendingPages(now: number): Promise<PagesRead> {
    return toPages(this.s.pending.all(now) as PageRow[]);
  }

  async unsentPages(patientId: string): Promise<PagesRead> {
    const read = toPages(this.s.unsent.all(patientId) as PageRow[]);
    return { ...read, pages: read.pages.filter(firstSendPending) };
  }

  async patientPages(patientId: string, limit: number): Promise<PagesRead> {
    return this.patientPagesNow(patientId, limit);
  }

  /** The exhausted pages no newer change of their subject has passed (the board still shows them as unanswered). */
  exhaustedNow(): PagesRead {
    return toPages(this.s.exhausted.all() as PageRow[]);
  }

  /** patientPages without the promise, for the board's synchronous queries. */
  patientPagesNow(patientId: string, limit: number): PagesRead {
    return toPages(this.s.ofPatient.all(patientId, limit) as PageRow[]);
  }

  /**
   * The board's read of a patient's pages: the newest `limit` by creation (patientPagesNow), and the pages of each
   * subject's newest change (newerChange) outside them, after them (older by creation). The window is by creation,
   * the newest change by newerChange: with a long history (a flapping feed's alerts, a stay of months) a newer change
   * fell out of the window while an older one paged late was in it, and the board took the late one for current
   * (until 2026-12-06). Only a full window reads more: one row per change, without the bodies.
   */
  patientPagesWithNewestNow(patientId: string, limit: number): PagesRead {
    const rows = this.s.ofPatient.all(patientId, limit) as PageRow[];
    if (rows.length < limit) return toPages(rows);
    type Change = { id: string; subject: string; at: number; last: number };
    const newest = new Map<string, Change>();
    for (const c of this.s.changes.all(patientId) as Change[]) {
      const was = newest.get(c.subject);
      const ofC = { notificationId: c.id, triggeredAt: c.at };
      // Ties (neither newer) go to the change stored last, as the board's list (newest first) takes the first.
      const newer = !was || newerChange(ofC, { notificationId: was.id, triggeredAt: was.at });
      const tied = was && !newer && !newerChange({ notificationId: was.id, triggeredAt: was.at }, ofC);
      if (newer || (tied && c.last > was.last)) newest.set(c.subject, c);
    }
    const inWindow = new Set(rows.map((r) => r.page_id));
    const ids = JSON.stringify([...newest.values()].map((c) => c.id));
    const more = (this.s.ofChanges.all(patientId, ids) as PageRow[]).filter((r) => !inWindow.has(r.page_id));
    return toPages([...rows, ...more]);
  }

  async save(pages: Page[], audit: AuditEvent[] = []): Promise<void> {
    if (pages.length === 0 && audit.length === 0) return;
    this.write(() => {
      for (const e of audit) this.s.audit.run(...auditRow(e));
      for (const p of pages) {
        const stored = { ...p, rev: p.rev + 1 };
        const row = {
          pageId: p.pageId,
          notificationId: p.notificationId,
          patientId: p.patientId,
          team: p.team,
          subject: p.subject,
          kind: p.kind,
          status: p.status,
          delivered: p.delivered ? 1 : 0,
          heldBy: p.heldBy ?? null,
          dueAt: p.dueAt,
          triggeredAt: p.triggeredAt,
          rev: stored.rev,
          body: JSON.stringify(stored),
        };
        const done = p.rev === 0 ? this.s.insert.run(row) : this.s.update.run({ ...row, expected: p.rev });
        // Throwing inside the transaction rolls back every page of this save: all or nothing.
        if (done.changes !== 1) throw new VersionConflict(p.pageId);
      }
    });
    if (pages.length > 0) this.o.onSaved?.(pages.map((p) => ({ ...p, rev: p.rev + 1 })));
  }

  async silences(now: number): Promise<SilencesRead> {
    return this.silencesNow(now);
  }

  /** Silences in force at `now`, and those in force whose item cannot be read (named, for the board to list). */
  silencesNow(now: number): SilencesRead {
    const rows = this.s.silences.all({ now }) as SilenceRow[];
    return readSilences(rows.map((r) => readSilence(r.silence_id, r.body, r.patient_id ?? undefined)));
  }

  /** Silences in force at `now` (not ended, not past their end) that can be read, for the board. */
  activeSilences(now: number): Silence[] {
    return this.silencesNow(now).silences;
  }

  async getSilence(silenceId: string): Promise<Silence | undefined> {
    return this.silenceNow(silenceId);
  }

  silenceNow(silenceId: string): Silence | undefined {
    // The patient_id column is written with the body, from its scope: it names the patient of a body that cannot be read.
    const row = this.s.silence.get(silenceId) as Omit<SilenceRow, 'silence_id'> | undefined;
    return row ? readOneSilence(silenceId, row.body, row.patient_id ?? undefined) : undefined;
  }

  pageNow(pageId: string): Page | undefined {
    const row = this.s.get.get(pageId) as PageRow | undefined;
    return row ? readOnePage(row.page_id, row.body, row.rev) : undefined;
  }

  async saveSilence(s: Silence, audit: AuditEvent[] = []): Promise<void> {
    const patientId = 'patientId' in s.scope ? s.scope.patientId : null;
    const team = 'team' in s.scope ? s.scope.team : null;
    this.write(() => {
      this.s.putSilence.run(s.silenceId, patientId, team, s.from, s.until, s.endedAt ?? null, JSON.stringify(s));
      for (const e of audit) this.s.audit.run(...auditRow(e));
    });
  }

  async endUnreadableSilence(silenceId: string, at: number, audit: AuditEvent[]): Promise<boolean> {
    let changed = false;
    this.write(() => {
      changed = this.s.endSilence.run({ id: silenceId, at }).changes > 0;
      if (changed) for (const e of audit) this.s.audit.run(...auditRow(e));
    });
    return changed;
  }

  /**
   * The earliest time a ladder has something to do: a due escalation, or the end of a silence holding a page (the
   * domain's `nextDue`, as one indexed query over the whole table, for `crs serve`'s timer to sleep until).
   */
  nextDueAt(): number | null {
    return (this.s.nextDue.get() as { t: number | null }).t;
  }

  /**
   * Patients whose latest stale-feed page is an alert (not its all-clear): the feed is known to be quiet. The
   * alert id carries the time the feed went quiet.
   */
  staleFeedAlerts(): Map<string, InForce> {
    const out = new Map<string, InForce>();
    const sinceOf = (alertId: string) => Number(alertId.slice(alertId.lastIndexOf('|') + 1));
    for (const r of this.s.latestStale.all() as { patient_id: string; notification_id: string; kind: string }[]) {
      if (r.kind === 'alert' && !isWardAlert(r.notification_id))
        out.set(r.patient_id, { alertId: r.notification_id, since: sinceOf(r.notification_id) });
    }
    // Who of each ward alert had data again (recordStaleFeeds), oldest first.
    const resumed = new Map<string, Resumed[]>();
    for (const r of this.s.resumed.all() as { alert_id: string; patient_id: string; bed: string | null; at: number }[])
      resumed.set(r.alert_id, [
        ...(resumed.get(r.alert_id) ?? []),
        { patientId: r.patient_id, ...(r.bed === null ? {} : { bed: r.bed }), at: r.at },
      ]);
    // The time each gave, where not its id's (recordStaleFeeds; none kept before schema version 14).
    const said = new Map((this.s.saids.all() as { alert_id: string; said: number }[]).map((r) => [r.alert_id, r.said]));
    for (const id of this.s.wardStale.all() as string[]) {
      const back = resumed.get(id);
      const at = said.get(id);
      out.set(id, {
        alertId: id,
        since: sinceOf(id),
        ...(at === undefined ? {} : { said: at }),
        ...(back ? { resumed: back } : {}),
      });
    }
    // Who belongs to a ward's alert, as the sweeps recorded it (recordStaleFeeds).
    const members = this.s.members.all() as { patient_id: string; alert_id: string; since: number }[];
    return withMembers(
      out,
      members.map((r) => [r.patient_id, { alertId: r.alert_id, since: r.since }]),
    );
  }

  /**
   * What a sweep changed of what is in force (pageStaleFeeds' set and remove), once its alerts are paged: the
   * members of ward alerts are kept, who of each had data again (a ward alert's `resumed`, stored whole, dropped
   * with the alert) and the time its text gave (`said`, likewise); the rest is found from the pages (staleFeedAlerts).
   */
  recordStaleFeeds(set: ReadonlyMap<string, InForce>, remove: readonly string[]): void {
    this.write(() => {
      for (const key of remove) {
        this.s.dropMember.run(key);
        this.s.dropResumed.run(key);
        this.s.dropSaid.run(key);
      }
      for (const [key, e] of set)
        if (isWardMember(key, e)) this.s.putMember.run(key, e.alertId, e.since);
        else {
          this.s.dropMember.run(key);
          this.s.dropResumed.run(key);
          for (const r of e.resumed ?? []) this.s.putResumed.run(key, r.patientId, r.bed ?? null, r.at);
          if (e.said === undefined) this.s.dropSaid.run(key);
          else this.s.putSaid.run(key, e.said);
        }
    });
  }

  /**
   * Drops what is kept of the ward alerts no longer in force, `inForce` being staleFeedAlerts' (2026-12-07): a server
   * stopped after a sweep paged an alert's all-clear and before it recorded the alert gone (recordStaleFeeds) kept
   * its time, who resumed and its members for good, as nothing read them again. Members are kept only of the alerts
   * in force, as staleFeedAlerts takes them (withMembers).
   */
  dropStaleFeedsNotInForce(inForce: ReadonlyMap<string, InForce>): void {
    const wardAlerts = JSON.stringify(
      [...inForce].filter(([key, e]) => key === e.alertId && isWardAlert(key)).map(([key]) => key),
    );
    const members = JSON.stringify([...inForce].filter(([key, e]) => isWardMember(key, e)).map(([key]) => key));
    this.write(() => {
      this.s.dropSaidsBut.run(wardAlerts);
      this.s.dropResumedBut.run(wardAlerts);
      this.s.dropMembersBut.run(members);
    });
  }

  /** One transaction; how durable its commit is, is the connection's synchronous setting (see server/paging.ts). */
  private write(fn: () => void): void {
    this.db.transaction(fn)();
  }
}

/**
 * The pager's PageSender: each page goes into the outbox (one insert), and the sinks' lanes take it from there,
 * each at its own pace. A send repeated after a crash has the same sendId (the page's id and storage revision,
 * which only a new step of the ladder changes) and is stored once.
 */
export class SqlitePageSender implements PageSender {
  private readonly insert;
  private readonly notification;

  constructor(
    db: Db,
    private readonly o: { now: () => number; onSent: () => void },
  ) {
    this.insert = db.prepare(
      "INSERT OR IGNORE INTO outbox (kind, item_id, patient_id, body, created_at) VALUES ('page', ?, ?, ?, ?)",
    );
    this.notification = db.prepare("SELECT body FROM outbox WHERE item_id = ? AND kind = 'notification'");
  }

  async send(m: PageMessage): Promise<void> {
    const now = this.o.now();
    const event = pageEvent(m, now);
    this.insert.run(event.sendId, event.patientId, JSON.stringify(event), iso(now));
    this.o.onSent();
  }

  /**
   * The grade change a page is about (its reasons and actions), if it is about a grade and its row can be read (the
   * board names one that cannot be). Until 2026-12-07 a row that could not be read failed the page's webhook request,
   * and the page was parked: never sent to the receiver.
   */
  notificationOf(notificationId: string): Notification | undefined {
    const row = this.notification.get(notificationId) as { body: string } | undefined;
    const n = row ? readNotification(row.body) : undefined;
    return typeof n === 'string' ? undefined : n;
  }
}
