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
      'SELECT seq, text, received_at AS receivedAt FROM spool WHERE seq > ? ORDER BY seq LIMIT 1',
    );
    this.remove = this.db.prepare('DELETE FROM spool WHERE seq = ?');
    this.refuse = this.db.prepare(
      'INSERT OR REPLACE INTO refused (seq, text, received_at, status, ack, at) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  /** Durably adds a message; returns its sequence number once it is on disk. */
  add(text: string, receivedAt: string): number {
    return Number(this.insert.run(text, receivedAt).lastInsertRowid);
  }

  /** The oldest message waiting (after `after`: the ones before it are done, not yet removed). */
  oldest(after = 0): Spooled | undefined {
    return this.first.get(after) as Spooled | undefined;
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

  counts(): { waiting: number; refused: number } {
    const n = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return { waiting: n('SELECT count(*) AS n FROM spool'), refused: n('SELECT count(*) AS n FROM refused') };
  }

  close(): void {
    this.db.close();
    this.lock.release();
  }
}
