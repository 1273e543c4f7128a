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

export type Db = Database.Database;

const SCHEMA_VERSION = 1;

const SCHEMA = `
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
CREATE TABLE patients (
  patient_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,                        -- serializeState(PatientState)
  assessment TEXT,                            -- the latest Assessment (grades and reasons as of the patient clock)
  updated_at TEXT NOT NULL
);
CREATE TABLE timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  patient_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  observed_at INTEGER NOT NULL,               -- epoch ms
  clock INTEGER NOT NULL,                     -- the patient clock after the message (grades are as of it)
  crs INTEGER NOT NULL,
  icans INTEGER NOT NULL,
  data TEXT NOT NULL,                         -- the message's clinical sections (vitals, oxygen, vasopressors, ...)
  UNIQUE (patient_id, message_id)
);
CREATE INDEX timeline_by_time ON timeline (patient_id, observed_at);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id TEXT NOT NULL UNIQUE,
  patient_id TEXT NOT NULL,
  body TEXT NOT NULL,                         -- the Notification
  created_at TEXT NOT NULL
);
CREATE TABLE deliveries (
  notification_id TEXT NOT NULL,
  sink TEXT NOT NULL,                         -- stdout, board, webhook: each sink has its own ledger
  sent_at TEXT NOT NULL,
  PRIMARY KEY (notification_id, sink)
) WITHOUT ROWID;
CREATE TABLE pages (
  notification_id TEXT PRIMARY KEY,           -- the page lifecycle: triggered, delivered, acknowledged
  patient_id TEXT NOT NULL,
  condition TEXT NOT NULL,
  kind TEXT NOT NULL,
  from_grade INTEGER NOT NULL,
  to_grade INTEGER NOT NULL,
  triggered_at TEXT NOT NULL,                 -- server time the page was committed
  delivered_at TEXT,                          -- server time it first left through a sink
  acknowledged_at TEXT,                       -- server time of the acknowledgement
  acknowledged_by TEXT,                       -- the name the clinician typed
  acknowledged_via TEXT                       -- the page whose acknowledgement covered this one, if not itself
);
CREATE INDEX pages_by_patient ON pages (patient_id, triggered_at);
CREATE INDEX pages_open ON pages (notification_id) WHERE acknowledged_at IS NULL;
CREATE TABLE device_tokens (
  token_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,                  -- SHA-256 of the token; the token itself is never stored
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
`;

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version !== 0) throw new Error(`database schema version ${version} is not supported (expected ${SCHEMA_VERSION})`);
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/** Opens (creating if needed) the database file with the pragmas the durability promise depends on. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
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

export const DB_FILE = 'crs.db';

/** Creates the data directory readable by its owner only (it holds patient data and the board key). */
export function ensureDataDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function openDataDir(dir: string): Db {
  ensureDataDir(dir);
  const file = join(dir, DB_FILE);
  const db = openDatabase(file);
  chmodSync(file, 0o600);
  return db;
}

/**
 * One server per data directory: an exclusive lock held by a tiny SQLite file for as long as the process lives.
 * The kernel drops it when the process dies, even by SIGKILL, so a crash never leaves a stale lock behind.
 */
export function lockDataDir(dir: string): { release(): void } {
  ensureDataDir(dir);
  const lock = new Database(join(dir, 'serve.lock'), { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec(`CREATE TABLE IF NOT EXISTS holder (pid INTEGER); BEGIN EXCLUSIVE; DELETE FROM holder; INSERT INTO holder VALUES (${process.pid}); COMMIT;`);
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new Error(`another crs serve is using the data directory ${dir}`);
    }
    throw err;
  }
  return { release: () => lock.close() };
}
