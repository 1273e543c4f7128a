// The embedded backend's one SQLite file: inbox (the per-patient ordered queue), patient state with its version,
// outbox and per-sink delivery ledger, page lifecycle, timeline history, device tokens, dead letters.
//
// Durability of the 202: WAL with synchronous=FULL, so a commit is on disk (fsync of the WAL) before enqueue
// resolves. NORMAL would survive a killed process but not a power cut or an OS crash, and the 202 promises the
// sender it may forget the message. Commits are grouped (one transaction for every request that arrived in the
// same turn of the event loop), so the fsync is paid once per group, not once per message.
//
// What is derived from the inbox (the grading commit, which deletes the inbox rows it consumed in the same
// transaction, and the delivery ledger) commits with NORMAL: it survives a killed process like any commit; a
// power cut can lose only the tail written since the last FULL commit (whose fsync covers everything before it in
// the WAL), and then the inbox rows are back and are graded again into the same state and the same pages, which
// go out again with the same notificationId. Nothing accepted is lost either way.
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Notification } from '#domain/page.ts';
import { deserializeState, type PatientState } from '#domain/state.ts';
import { notificationAudit } from '#app/grade.ts';
import type { AuditEvent } from '#ports';
import { AUDIT_INSERT, auditRow, feedSince } from './audit.ts';
import { createPrivate, holdLock, LockHeld } from './files.ts';
import { ensureTokenScopes } from './tokens.ts';
import { listColumns } from './board.ts';
import { SCHEMA_RESTORES } from './restores.ts';

export type Db = Database.Database;

const SCHEMA_VERSION = 15;

/** Tables every version has, unchanged since version 1 (the timeline, changed in version 4, is SCHEMA_TIMELINE). */
const SCHEMA_COMMON = `
CREATE TABLE inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,      -- arrival order; the worker takes each patient's rows in this order
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  body TEXT NOT NULL,                         -- {"message":…,"receivedAt":…,"sender":…}, read back by parseQueued
  received_at TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,        -- failed grading attempts (poison handling)
  retry_at INTEGER NOT NULL DEFAULT 0,        -- epoch ms before which this patient is not retried
  UNIQUE (patient_id, message_id)             -- a resend while the first copy waits changes nothing
);
CREATE TABLE dead_letter (
  seq INTEGER PRIMARY KEY,
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at TEXT NOT NULL
);
CREATE TABLE device_tokens (
  token_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,                  -- SHA-256 of the token; the token itself is never stored
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
`;

/** Version 2 (pages that get answered): the Page model, silences, the audit trail; the outbox carries kinds. */
const SCHEMA_V2_PAGING = `
CREATE TABLE pages (
  page_id TEXT PRIMARY KEY,                   -- one page per notification (or alert) per team
  notification_id TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  team TEXT NOT NULL,
  subject TEXT NOT NULL,                      -- crs, icans, stale-feed, spo2
  kind TEXT NOT NULL,
  status TEXT NOT NULL,                       -- open, acknowledged, superseded, resolved, exhausted, info
  delivered INTEGER NOT NULL,
  held_by TEXT,
  due_at INTEGER,                             -- epoch ms of the next escalation (the durable timer)
  triggered_at INTEGER NOT NULL,
  rev INTEGER NOT NULL,                       -- a save writes rev + 1 only where rev is still what it read
  body TEXT NOT NULL                          -- the whole Page (shared/domain/paging.ts) as JSON
);
CREATE INDEX pages_by_patient ON pages (patient_id, triggered_at);
-- The timer loop's seeks: the next due escalation, the pages a silence holds, the sends not made yet. Held pages
-- have no due time (null), which min() skips.
CREATE INDEX pages_due ON pages (due_at) WHERE status = 'open';
CREATE INDEX pages_held ON pages (held_by) WHERE status = 'open' AND held_by IS NOT NULL;
CREATE INDEX pages_unsent ON pages (status) WHERE delivered = 0;
CREATE INDEX pages_open ON pages (patient_id) WHERE status = 'open';
CREATE INDEX pages_stale_feed ON pages (patient_id) WHERE subject = 'stale-feed';
CREATE TABLE silences (
  silence_id TEXT PRIMARY KEY,
  patient_id TEXT,                            -- the scope: one patient, or one team
  team TEXT,
  from_at INTEGER NOT NULL,
  until INTEGER NOT NULL,
  ended_at INTEGER,
  body TEXT NOT NULL                          -- the whole Silence as JSON (who, why)
);
CREATE INDEX silences_active ON silences (until) WHERE ended_at IS NULL;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,                    -- the order entries were written (no row is ever deleted, so never reused)
  key BLOB NOT NULL UNIQUE,                   -- SHA-256 of auditKey(entry): a retried write stores it once
  patient_id TEXT NOT NULL,
  type TEXT NOT NULL,
  at TEXT NOT NULL,
  entry TEXT NOT NULL                         -- the AuditEvent as JSON
);
CREATE INDEX audit_by_patient ON audit (patient_id, seq);
-- Append-only: the database itself refuses to change or remove an entry, whoever asks. REPLACE deletes without
-- firing delete triggers (unless recursive_triggers is on), so an insert that would replace a row is refused or,
-- for an entry already stored (same key), ignored.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_once BEFORE INSERT ON audit WHEN EXISTS (SELECT 1 FROM audit WHERE key = NEW.key) BEGIN SELECT RAISE(IGNORE); END;
`;

/**
 * Version 3 (page conservation): records a lane parked (a receiver refused them a few times; listed and retried
 * with `crs outbox`), and the long tail of the messages each patient was sent, beyond the state's recent window:
 * a messageId with the digest of each content it was accepted with (written in the grading transaction).
 */
const SCHEMA_V3_CONSERVATION = `
CREATE TABLE parked (
  item_id TEXT NOT NULL,                      -- the outbox record
  sink TEXT NOT NULL,                         -- the lane that parked it
  seq INTEGER NOT NULL,                       -- its outbox seq (a retry starts the lane there again)
  reason TEXT NOT NULL,                       -- what the receiver said (no patient data: status and error names)
  attempts INTEGER NOT NULL,
  parked_at TEXT NOT NULL,
  PRIMARY KEY (item_id, sink)
) WITHOUT ROWID;
CREATE TABLE seen_messages (
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  digest TEXT NOT NULL,                       -- the message's content digest (shared/app/digest.ts)
  PRIMARY KEY (patient_id, message_id, digest)
) WITHOUT ROWID;
-- The inbox keys a waiting message by its content too: a messageId reused with other content while the first copy
-- waits is a new observation, not a resend. (Rows of an earlier version have digest ''.) The sequence carries on.
CREATE TABLE inbox_v3 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  digest TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  received_at TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  retry_at INTEGER NOT NULL DEFAULT 0,
  UNIQUE (patient_id, message_id, digest)
);
INSERT INTO inbox_v3 (seq, patient_id, message_id, body, received_at, attempts, retry_at)
  SELECT seq, patient_id, message_id, body, received_at, attempts, retry_at FROM inbox;
DELETE FROM sqlite_sequence WHERE name = 'inbox_v3';
INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox_v3', seq FROM sqlite_sequence WHERE name = 'inbox';
DROP TABLE inbox;
ALTER TABLE inbox_v3 RENAME TO inbox;
`;

const SCHEMA_V2 = `${SCHEMA_COMMON}
CREATE TABLE patients (
  patient_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,                        -- serializeState(PatientState)
  assessment TEXT,                            -- the latest Assessment (grades and reasons as of the patient clock)
  updated_at TEXT NOT NULL,
  feed_since INTEGER                          -- feedStatus(state).since: last monitor data (null: not enrolled)
);
CREATE INDEX patients_feed ON patients (feed_since) WHERE feed_since IS NOT NULL;
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,                         -- notification (grade change), alert (SpO2 warning), page (to a role)
  item_id TEXT NOT NULL UNIQUE,               -- notificationId, alertId, or the page send's id
  patient_id TEXT NOT NULL,
  body TEXT NOT NULL,                         -- the Notification, the AlertChange, or the PageEvent
  created_at TEXT NOT NULL
);
CREATE TABLE deliveries (
  item_id TEXT NOT NULL,
  sink TEXT NOT NULL,                         -- pager, stdout, board, webhook: each has its own ledger
  sent_at TEXT NOT NULL,
  PRIMARY KEY (item_id, sink)
) WITHOUT ROWID;
${SCHEMA_V2_PAGING}`;
const SCHEMA_V3 = `${SCHEMA_V2}${SCHEMA_V3_CONSERVATION}`;

/**
 * The timeline (version 4). Versions 1 to 3 had it unique on (patient, messageId), which left a reused messageId's
 * second observation (graded and paged) off the board; points are written only in the grading commit of an applied
 * message, so nothing needs the constraint.
 */
const SCHEMA_TIMELINE = `
CREATE TABLE timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  observed_at INTEGER NOT NULL,               -- epoch ms
  clock INTEGER NOT NULL,                     -- the patient clock after the message (grades are as of it)
  crs INTEGER NOT NULL,
  icans INTEGER NOT NULL,
  data TEXT NOT NULL                          -- the message's clinical sections (vitals, oxygen, vasopressors, ...)
);
CREATE INDEX timeline_by_time ON timeline (patient_id, observed_at);
`;

/** Version 5: what each short acknowledge link stands for (shared/app/ack.ts), by the SHA-256 of its token. */
const SCHEMA_ACK_LINKS = `
CREATE TABLE ack_links (
  link_key TEXT PRIMARY KEY,
  page_id TEXT NOT NULL,
  role TEXT NOT NULL,
  expires_at INTEGER NOT NULL                 -- epoch ms
);
`;

/**
 * Version 7: what the board's list decides by (board.ts), kept with each state so that a ward's thousands of patients
 * discharged long ago are left out without reading their states: when the monitoring in force ended (null while
 * monitored) and the highest grade graded or last paged (CRS or ICANS).
 */
const SCHEMA_LIST = `
ALTER TABLE patients ADD COLUMN monitoring_ended_at INTEGER;
ALTER TABLE patients ADD COLUMN grade INTEGER NOT NULL DEFAULT 0;
CREATE INDEX patients_ended ON patients (monitoring_ended_at, grade, patient_id) WHERE monitoring_ended_at IS NOT NULL;
`;

/**
 * Version 8: where each lane starts, by kind of record (outbox.ts): it owes the records of that kind after
 * `after_seq`. A lane (or a kind of record on a lane) seen for the first time starts at the end of the outbox: a
 * webhook added today is owed what comes after, not the history kept (until 2026-12-05 it was sent every grade change
 * and page send of the retention, acknowledged ones too).
 */
const SCHEMA_LANE_STARTS = `
CREATE TABLE lane_starts (
  sink TEXT NOT NULL,                         -- the lane: stdout, pager, board, webhook
  kind TEXT NOT NULL,                         -- a kind of record it takes: notification, alert, page
  after_seq INTEGER NOT NULL,                 -- it owes the records of that kind whose outbox seq is greater
  since TEXT NOT NULL,                        -- when it was first seen (or the upgrade to version 8)
  PRIMARY KEY (sink, kind)
) WITHOUT ROWID;
`;

/**
 * Version 9: who belongs to a ward's "no data" alert (shared/app/stale-feed.ts isWardMember). The alerts themselves
 * are found from the pages; before version 9 a restart found the members again by the ward they were in then.
 */
const SCHEMA_STALE_MEMBERS = `
CREATE TABLE stale_feed_members (
  patient_id TEXT PRIMARY KEY,                -- a quiet patient grouped into a ward's alert
  alert_id TEXT NOT NULL,                     -- that alert (stale-feed|ward W|since), whichever ward the patient is in now
  since INTEGER NOT NULL                      -- when the patient's feed went quiet (epoch ms)
) WITHOUT ROWID;
`;

/**
 * Version 12 (2026-12-07): who of a ward "no data" alert's patients had data again while it was in force (the alert's
 * `resumed`, shared/app/stale-feed.ts: the newest 20), for the board and the all-clear; dropped with the alert.
 */
const SCHEMA_STALE_RESUMED = `
CREATE TABLE IF NOT EXISTS stale_feed_resumed (
  alert_id TEXT NOT NULL,                     -- the ward alert in force (stale-feed|ward W|since)
  patient_id TEXT NOT NULL,                   -- one of its patients whose monitor data came back (ids only, no names)
  bed TEXT,                                   -- its bed then (NULL: none known)
  at INTEGER NOT NULL,                        -- its first reading back (epoch ms)
  PRIMARY KEY (alert_id, patient_id)
) WITHOUT ROWID;
`;

/**
 * Version 13 (2026-12-07): the last step of the host's clock crs serve saw (clock-step.ts), so that its hour-long alert
 * stands across a restart: it was held in memory only, and a restart within the hour forgot it (the alert webhook told
 * it cleared). One row at most: a later step replaces it.
 */
const SCHEMA_CLOCK_STEP = `
CREATE TABLE IF NOT EXISTS clock_step (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  step_ms INTEGER NOT NULL,                   -- how far the wall clock moved against the monotonic clock (< 0: back)
  before_at INTEGER NOT NULL,                 -- the moment of the step on the wall clock as it was (epoch ms)
  after_at INTEGER NOT NULL                   -- the same moment on the wall clock as it became (epoch ms)
);
`;

/**
 * Version 14 (2026-12-07): the time a ward "no data" alert's text gave, where it is not its id's (the alert's `said`,
 * shared/app/stale-feed.ts), by which its all-clear names it: held in memory only before, a restart named the alert
 * by its id's time again. Dropped with the alert. The ward alerts themselves are found from the pages (no table of
 * their own to add a column to).
 */
const SCHEMA_STALE_SAID = `
CREATE TABLE IF NOT EXISTS stale_feed_said (
  alert_id TEXT PRIMARY KEY,                  -- the ward alert in force (stale-feed|ward W|since)
  said INTEGER NOT NULL                       -- the time its text gave (epoch ms)
) WITHOUT ROWID;
`;

/**
 * Version 11 (2026-12-06): the alerts `crs serve --alert-webhook` told the operator's tool were raised and has not
 * told cleared (alerts-told.ts), so that a restart sends the clear of one that ended while the server was stopped.
 */
const SCHEMA_ALERTS_TOLD = `
CREATE TABLE IF NOT EXISTS alerts_told (
  seq INTEGER PRIMARY KEY,                    -- the order they were told (the oldest go first past the bound)
  key TEXT NOT NULL UNIQUE,                   -- the alert's key (lane:<sink>, dead-letters, exhausted:<pageId> ...)
  since TEXT NOT NULL                         -- its since as the raise said it: the clear's since and event id
);
`;

/**
 * Version 10 (2026-12-06): a device token may expire (crs token issue --expires, crs token rotate). The tokens of an
 * earlier version get NULL: they never expire, as before. A version, not an added column beside them (the scope's):
 * crs token refuses to write an expiry beside a running server of an earlier version, which would not enforce it.
 */
function addTokenExpiry(db: Db): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('device_tokens')").pluck().all() as string[];
  // Added once: a database whose version was set back by hand (as the upgrade tests make old ones) has it already.
  if (!columns.includes('expires_at')) db.exec('ALTER TABLE device_tokens ADD COLUMN expires_at TEXT'); // ISO; NULL: never
}

/**
 * Versions 1 to 7 to 8: which lane owed which records was not stored, so every lane and kind that left a trace (a
 * record of that kind it delivered or parked) owes from the start, as before, and so do the lanes every crs serve has
 * had since version 2 (the pager's grade changes and alerts, standard output's grade changes, the board's pages), and
 * both kinds of a webhook with any trace (it has taken both since version 2): nothing an upgraded server owed is
 * dropped. A lane with no trace (a webhook configured but down since it was added, or all it delivered dropped by the
 * retention; --page-lines on but no page printed yet) cannot be told from one never configured: it starts afresh,
 * at the end of the outbox, when a server first has it (said on standard error).
 */
function laneStartsOfVersion7(db: Db): void {
  const owed = db.prepare('INSERT OR IGNORE INTO lane_starts (sink, kind, after_seq, since) VALUES (?, ?, 0, ?)');
  const at = new Date().toISOString();
  const traced = db
    .prepare(
      `SELECT DISTINCT t.sink, o.kind FROM (SELECT item_id, sink FROM deliveries UNION ALL SELECT item_id, sink FROM parked) t
       JOIN outbox o ON o.item_id = t.item_id`,
    )
    .all() as { sink: string; kind: string }[];
  const always = [
    ['pager', 'notification'],
    ['pager', 'alert'],
    ['stdout', 'notification'],
    ['board', 'page'],
  ];
  const webhook = traced.some((t) => t.sink === 'webhook')
    ? [
        ['webhook', 'notification'],
        ['webhook', 'page'],
      ]
    : [];
  for (const [sink, kind] of [...traced.map((t) => [t.sink, t.kind]), ...always, ...webhook]) owed.run(sink, kind, at);
}

/**
 * Versions 1 to 6 to 7: each state's columns of the list. A state that cannot be read keeps null (listed: the board
 * names it where the others are listed).
 */
function fillListColumns(db: Db): void {
  const set = db.prepare('UPDATE patients SET monitoring_ended_at = ?, grade = ? WHERE patient_id = ?');
  for (const r of db.prepare('SELECT patient_id, state, assessment FROM patients').all() as {
    patient_id: string;
    state: string;
    assessment: string | null;
  }[]) {
    try {
      const graded = r.assessment ? (JSON.parse(r.assessment) as { crsGrade?: unknown; icansGrade?: unknown }) : {};
      const c = listColumns(deserializeState(r.state));
      const grades = [c.notified, graded.crsGrade, graded.icansGrade].filter((g) => typeof g === 'number');
      set.run(c.endedAt, Math.max(...(grades as number[])), r.patient_id);
    } catch {
      // Left as it is: listed.
    }
  }
}

/** Versions 1 to 3 to 4, in place: the timeline rebuilt without its unique, every point kept. */
const MIGRATE_TIMELINE = `
DROP INDEX timeline_by_time;
ALTER TABLE timeline RENAME TO timeline_v3;
${SCHEMA_TIMELINE}
INSERT INTO timeline (id, patient_id, message_id, observed_at, clock, crs, icans, data)
  SELECT id, patient_id, message_id, observed_at, clock, crs, icans, data FROM timeline_v3;
DROP TABLE timeline_v3;
`;

/**
 * Version 1 (issue 5) to 2, in place: the outbox and its ledger take kinds and item ids, patients get feed_since,
 * and the old pages table (one row per notification, with its acknowledgement) gives way to the Page model.
 * Nothing accepted, graded or issued is touched (inbox, states, timeline, tokens, dead letters). The old pages are
 * not paged again (the pager lane counts every existing outbox record as handled); their notifications and
 * acknowledgements become the first entries of each patient's audit trail.
 */
function migrateV1(db: Db): void {
  db.exec(`
    ALTER TABLE outbox RENAME COLUMN notification_id TO item_id;
    ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'notification';
    ALTER TABLE deliveries RENAME COLUMN notification_id TO item_id;
    ALTER TABLE patients ADD COLUMN feed_since INTEGER;
    CREATE INDEX patients_feed ON patients (feed_since) WHERE feed_since IS NOT NULL;
    DROP INDEX IF EXISTS pages_by_patient;
    DROP INDEX IF EXISTS pages_open;
    ALTER TABLE pages RENAME TO pages_v1;
  `);
  db.exec(SCHEMA_V2_PAGING);
  const now = new Date().toISOString();
  db.prepare("INSERT OR IGNORE INTO deliveries (item_id, sink, sent_at) SELECT item_id, 'pager', ? FROM outbox").run(
    now,
  );

  const insert = db.prepare(AUDIT_INSERT);
  // The acknowledgement is told from the old page's own columns: a grade change whose row cannot be read (not JSON,
  // another shape: a row edited by hand, damage) has no entry of its own, and is left in the outbox as it is (until
  // 2026-12-07 it failed the upgrade, and crs serve did not start).
  const old = db
    .prepare(
      `SELECT o.body, p.notification_id, p.patient_id, p.condition, p.to_grade, p.acknowledged_at, p.acknowledged_by
         FROM pages_v1 p JOIN outbox o ON o.item_id = p.notification_id ORDER BY o.seq`,
    )
    .all() as {
    body: string;
    notification_id: string;
    patient_id: string;
    condition: string;
    to_grade: number;
    acknowledged_at: string | null;
    acknowledged_by: string | null;
  }[];
  for (const row of old) {
    let entry: AuditEvent | undefined;
    try {
      entry = notificationAudit(JSON.parse(row.body) as Notification);
    } catch {
      // Not read: no entry of its own.
    }
    if (entry) insert.run(...auditRow(entry));
    if (row.acknowledged_at && row.acknowledged_by) {
      insert.run(
        ...auditRow({
          at: row.acknowledged_at,
          patientId: row.patient_id,
          type: 'acknowledgement',
          text: `${row.condition.toUpperCase()} grade ${row.to_grade} page acknowledged by ${row.acknowledged_by} via board (recorded before escalation ladders)`,
          details: { notificationId: row.notification_id, by: row.acknowledged_by, via: 'board' },
        }),
      );
    }
  }
  db.exec('DROP TABLE pages_v1');

  const feed = db.prepare('UPDATE patients SET feed_since = ? WHERE patient_id = ?');
  for (const r of db.prepare('SELECT patient_id, state FROM patients').all() as {
    patient_id: string;
    state: string;
  }[]) {
    const state = stateOrNone(r.state);
    if (state) feed.run(feedSince(state), r.patient_id);
  }
}

/**
 * Versions 2 to 5 to 6: states are stored without their window of recent identities (the store's write), so each
 * state's window is copied to seen_messages first, where every identity applied since version 3 already is.
 * (A version-1 state kept no digests: its window was never carried over.)
 */
function keepWindowIdentities(db: Db): void {
  const insert = db.prepare('INSERT OR IGNORE INTO seen_messages (patient_id, message_id, digest) VALUES (?, ?, ?)');
  for (const r of db.prepare('SELECT patient_id, state FROM patients').all() as { patient_id: string; state: string }[])
    for (const chunk of stateOrNone(r.state)?.seen ?? [])
      for (let i = 0; i < chunk.length; i += 2) insert.run(r.patient_id, chunk[i], chunk[i + 1]);
}

/**
 * A state as an upgrade reads it, or none when it cannot be read (not JSON, an older shape, a row edited by hand):
 * left as it is, the board names it. Until 2026-12-07 one such row failed the upgrade, and crs serve did not start.
 */
function stateOrNone(text: string): PatientState | undefined {
  try {
    return deserializeState(text);
  } catch {
    return undefined;
  }
}

/**
 * Refuses a database of a newer crs, naming both versions: what it added or changed later (a column, a table, a
 * file beside it) this crs cannot read or copy whole. Every command that opens it says so in these words.
 */
export function refuseNewerSchema(version: number): void {
  if (version > SCHEMA_VERSION)
    throw new Error(
      `database schema version ${version} is newer than this crs (${SCHEMA_VERSION}): upgrade crs, or use another --data directory`,
    );
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  refuseNewerSchema(version);
  db.transaction(() => {
    if (version === 0) {
      db.exec(
        `${SCHEMA_V3}${SCHEMA_TIMELINE}${SCHEMA_ACK_LINKS}${SCHEMA_LIST}${SCHEMA_LANE_STARTS}${SCHEMA_STALE_MEMBERS}${SCHEMA_ALERTS_TOLD}${SCHEMA_STALE_RESUMED}${SCHEMA_CLOCK_STEP}${SCHEMA_STALE_SAID}${SCHEMA_RESTORES}`,
      );
      addTokenExpiry(db);
    } else if (version >= 1 && version <= 14) {
      if (version === 1) migrateV1(db);
      if (version <= 2) db.exec(SCHEMA_V3_CONSERVATION);
      if (version <= 3) db.exec(MIGRATE_TIMELINE);
      if (version <= 4) db.exec(SCHEMA_ACK_LINKS);
      if (version <= 5) keepWindowIdentities(db);
      if (version <= 6) {
        db.exec(SCHEMA_LIST);
        fillListColumns(db);
      }
      if (version <= 7) {
        db.exec(SCHEMA_LANE_STARTS);
        laneStartsOfVersion7(db);
      }
      // The members of a ward alert in force were not kept: the next full sweep finds them by ward, as before.
      if (version <= 8) db.exec(SCHEMA_STALE_MEMBERS);
      addTokenExpiry(db);
      // What an earlier server told the operator's tool was not kept: its alerts still open there stay open (as before).
      // If not there: a database whose version was set back by hand (as the upgrade tests make old ones) has it.
      db.exec(SCHEMA_ALERTS_TOLD);
      // Who resumed of a ward alert in force was not kept: its board and all-clear name those from now on.
      db.exec(SCHEMA_STALE_RESUMED);
      // A step seen by an earlier server was not kept: its alert, if its hour was not over, is not raised again.
      db.exec(SCHEMA_CLOCK_STEP);
      // The time a ward alert in force gave was not kept: its all-clear names it by its id's time, as before.
      db.exec(SCHEMA_STALE_SAID);
      // A directory of an earlier version is no backup (unless crs backup marked its copy: the table is there).
      db.exec(SCHEMA_RESTORES);
    } else throw new Error(`database schema version ${version} is not supported (expected ${SCHEMA_VERSION})`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/**
 * The WAL's size once a checkpoint has let it start again: twice what SQLite's checkpoints (every 1,000 pages,
 * 4 MB) leave it at. SQLite keeps the file at the largest it ever grew to otherwise: a reader holding one moment
 * of the database for minutes (crs backup's VACUUM INTO) lets no checkpoint through, every commit meanwhile is
 * appended, and the server kept that file (33 MB after 8,000 messages, 50 MB for a ten-minute backup of a busy
 * ward) until it stopped. Set on every connection that writes (the one that starts the WAL again cuts it).
 */
const WAL_SIZE_LIMIT = 8 * 1024 * 1024;

/** Another connection of the server to its database (the pager's, the ledger's), with the WAL's size limit. */
export function openConnection(db: Db): Db {
  const other = new Database(db.name, { timeout: 5000 });
  other.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  return other;
}

/** Opens (creating if needed) the database file with the pragmas the durability promise depends on. */
function openDatabase(file: string): Db {
  // Owner-only before SQLite opens it: the WAL and SHM files it creates next take the database file's mode.
  createPrivate(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  migrate(db);
  ensureTokenScopes(db);
  return db;
}

/** A transaction committed with synchronous=NORMAL: only for writes that can be redone from the inbox (above). */
export function relaxedTransaction<T>(db: Db, fn: () => T): T {
  db.pragma('synchronous = NORMAL');
  try {
    return db.transaction(fn)();
  } finally {
    db.pragma('synchronous = FULL');
  }
}

/**
 * SQLite could not write or read for a reason outside the data: the disk is full, an I/O error, the file locked
 * or read-only. Nothing is wrong with what was being written; it is tried again, never given up on.
 */
export function storeUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|NOMEM|PROTOCOL)/.test(code);
}

export const DB_FILE = 'crs.db';

/** Creates the data directory readable by its owner only (it holds patient data and the keys): files.ts. */
function ensureDataDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function openDataDir(dir: string): Db {
  ensureDataDir(dir);
  const file = join(dir, DB_FILE);
  const db = openDatabase(file);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  return db;
}

/** The schema version of the database file, read without changing anything (0: none yet). */
function storedVersion(file: string): number {
  if (!existsSync(file)) return 0;
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/**
 * The database of a data directory for a command that works beside a running server (crs token). One of an earlier
 * version is upgraded only while no process holds the directory (under its lock, as crs serve does): after crs is
 * upgraded, the server started before runs on with the code it started with, and a database upgraded beneath it no
 * longer fits its statements (a version-1 server's board failed on every patient). Until 2026-12-05 crs token upgraded
 * it there. One a server runs on is refused, naming both versions; one of a newer crs is refused by openDataDir.
 */
export function openDataDirBeside(dir: string): Db {
  const file = join(dir, DB_FILE);
  const version = storedVersion(file);
  if (version >= SCHEMA_VERSION) return openDataDir(dir);
  let lock: { release(): void };
  try {
    lock = holdLock(join(dir, 'serve.lock'));
  } catch (err) {
    if (!(err instanceof LockHeld)) throw err;
    throw new Error(
      version === 0
        ? `crs serve is creating the database ${file}: try again in a moment`
        : `the database ${file} is of an earlier crs (schema version ${version}; this crs has ${SCHEMA_VERSION}) and a crs serve runs on it: restart crs serve with this crs (it upgrades the database as it starts), then try again`,
    );
  }
  try {
    return openDataDir(dir);
  } finally {
    lock.release();
  }
}

/** One server per data directory: an exclusive lock held for as long as the process lives (holdLock). */
export function lockDataDir(dir: string): { release(): void } {
  ensureDataDir(dir);
  try {
    return holdLock(join(dir, 'serve.lock'));
  } catch (err) {
    // What to do too: a server left running (npx stopped, its child not) is the usual cause (docs/embedded.md).
    if (err instanceof LockHeld)
      throw new Error(
        `another crs serve is using the data directory ${dir}: stop it first, or give another --data DIR`,
      );
    throw err;
  }
}

/**
 * Whether a process holds the data directory's lock (a crs serve, or a command working on its database), found
 * without taking it: a read of the lock file is refused (SQLITE_BUSY) while its holder keeps it exclusive.
 */
export function dataDirLocked(dir: string): boolean {
  const file = join(dir, 'serve.lock');
  if (!existsSync(file)) return false;
  let probe: Db;
  try {
    probe = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch {
    return false;
  }
  try {
    probe.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'holder'").get();
    return false;
  } catch (err) {
    return (err as { code?: string }).code?.startsWith('SQLITE_BUSY') === true;
  } finally {
    probe.close();
  }
}
