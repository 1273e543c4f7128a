// The bridge's durable spool: every HL7 message is on disk (SQLite, WAL, synchronous=FULL: fsynced) before the
// monitor can get an AA for it, and leaves the spool only when the server gave a definitive answer.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { createPrivate, holdLock, LockHeld, secureDataDir } from '#adapters/sqlite/files.ts';

/** Another bridge holds the spool directory (its lock): the CLI says so and exits 1. */
export class SpoolInUse extends Error {
  constructor(readonly dir: string) {
    super(`another crs mllp-bridge is using the spool directory ${dir}: give each bridge its own --spool DIR`);
  }
}

export interface Spooled {
  seq: number;
  text: string;
  receivedAt: string;
}

/** A message waiting for room at the server, and when it is tried again (0: after its patient's earlier one). */
export interface WaitingForRoom {
  seq: number;
  text: string;
  retryAt: number;
}

function openSpool(file: string): Database.Database {
  createPrivate(file);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // A delivered message's bytes (names, record numbers) are overwritten, not left in the file's free pages.
    db.pragma('secure_delete = ON');
    db.exec(`
      CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, received_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS refused (seq INTEGER PRIMARY KEY, text TEXT NOT NULL, received_at TEXT NOT NULL, status INTEGER NOT NULL, ack TEXT NOT NULL, at TEXT NOT NULL);
    `);
    // 2026-12-06: a message waiting for room at the server (a new patient past crs serve --max-patients) has the time
    // of its next try (ms since 1970; 0: once the message of its patient before it has gone); NULL, in line. A
    // spool from before gets the column, every message in line.
    const columns = db.prepare('PRAGMA table_info(spool)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'retry_at')) db.exec('ALTER TABLE spool ADD COLUMN retry_at INTEGER');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

export class Spool {
  private readonly db: Database.Database;
  private readonly lock: { release(): void };
  private readonly insert;
  private readonly first;
  private readonly remove;
  private readonly refuse;
  private readonly one;
  private readonly setRetry;
  /** What opening it made owner-only (a spool directory or file others could read), to be said. */
  readonly madePrivate: string[];

  constructor(dir: string) {
    // It holds patient data: owner-only, the WAL and SHM too (SQLite gives them the database file's mode).
    this.madePrivate = secureDataDir(dir, /^spool\.(db(-wal|-shm|-journal)?|lock)$/);
    // One bridge per spool: two forwarded the same messages (each one twice to the server) and removed each other's.
    try {
      this.lock = holdLock(join(dir, 'spool.lock'));
    } catch (err) {
      throw err instanceof LockHeld ? new SpoolInUse(dir) : err;
    }
    try {
      this.db = openSpool(join(dir, 'spool.db'));
    } catch (err) {
      this.lock.release();
      throw err;
    }
    this.insert = this.db.prepare('INSERT INTO spool (text, received_at) VALUES (?, ?)');
    this.first = this.db.prepare(
      'SELECT seq, text, received_at AS receivedAt FROM spool WHERE seq > ? AND retry_at IS NULL ORDER BY seq LIMIT 1',
    );
    this.one = this.db.prepare('SELECT seq, text, received_at AS receivedAt FROM spool WHERE seq = ?');
    this.setRetry = this.db.prepare('UPDATE spool SET retry_at = ? WHERE seq = ?');
    this.remove = this.db.prepare('DELETE FROM spool WHERE seq = ?');
    this.refuse = this.db.prepare(
      'INSERT OR REPLACE INTO refused (seq, text, received_at, status, ack, at) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  /** Durably adds a message; returns its sequence number once it is on disk. */
  add(text: string, receivedAt: string): number {
    return Number(this.insert.run(text, receivedAt).lastInsertRowid);
  }

  /** The oldest message in line (after `after`), not one waiting for room at the server. */
  oldest(after = 0): Spooled | undefined {
    return this.first.get(after) as Spooled | undefined;
  }

  get(seq: number): Spooled | undefined {
    return this.one.get(seq) as Spooled | undefined;
  }

  /** It waits for room at the server until `retryAt` (see WaitingForRoom): out of the line, kept on disk. */
  waitForRoom(seq: number, retryAt: number): void {
    this.setRetry.run(retryAt, seq);
  }

  /** The messages waiting for room, oldest first (a bridge started again goes on waiting with them). */
  forRoom(): WaitingForRoom[] {
    return this.db
      .prepare('SELECT seq, text, retry_at AS retryAt FROM spool WHERE retry_at IS NOT NULL ORDER BY seq')
      .all() as WaitingForRoom[];
  }

  /** The server took it (202): gone from the spool. */
  delivered(seq: number): void {
    this.remove.run(seq);
  }

  /** The server refused it for good (400, 403, 413, 422; or in part: 202 with an AE) after the monitor had its AA: kept aside for an operator. */
  refused(m: Spooled, status: number, ack: string, at: string): void {
    this.db.transaction(() => {
      this.refuse.run(m.seq, m.text, m.receivedAt, status, ack, at);
      this.remove.run(m.seq);
    })();
  }

  /** `waiting`: every message in the spool, those waiting for room at the server too. */
  counts(): { waiting: number; refused: number } {
    const n = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return { waiting: n('SELECT count(*) AS n FROM spool'), refused: n('SELECT count(*) AS n FROM refused') };
  }

  close(): void {
    this.db.close();
    this.lock.release();
  }
}
