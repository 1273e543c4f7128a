// The data directory holds patient data and secrets (the database with its WAL and SHM, the board and link keys,
// the security log): readable by its owner only (issue 16 item 4). Files are created owner-only (crs serve runs
// with umask 077, and each file is also created with mode 0600, so this holds for a process started otherwise),
// and a directory, or a file of ours, that others can read is made owner-only at start, and said so. A directory
// owned by another user is refused: it cannot be made private by this process.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The files crs serve keeps in a data directory (and the database's companions). */
const OURS =
  /^(crs\.db(-wal|-shm|-journal)?|serve\.lock|serve\.json|board\.key|ack\.key(\.previous)?|security\.log(\.1)?)$/;

/**
 * Creates the directory owner-only, or makes an existing one (and our files in it: `ours`) owner-only. Returns what it
 * changed, to be said; throws when the directory belongs to someone else.
 */
export function secureDataDir(dir: string, ours: RegExp = OURS): string[] {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return [];
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Error(`the data directory ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(
      `the data directory ${dir} belongs to another user (uid ${st.uid}): patient data must be readable by the server's user only; choose a directory of your own with --data`,
    );
  }
  const changed: string[] = [];
  if ((st.mode & 0o077) !== 0) {
    chmodSync(dir, 0o700);
    changed.push(`${dir} was ${mode(st.mode)}, now 0700`);
  }
  for (const f of readdirSync(dir)) {
    if (!ours.test(f)) continue;
    const file = join(dir, f);
    const fst = statSync(file);
    if (fst.isFile() && (fst.mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      changed.push(`${file} was ${mode(fst.mode)}, now 0600`);
    }
  }
  return changed;
}

/** Creates an empty file owner-only if it does not exist (so that what SQLite derives from it is owner-only too). */
export function createPrivate(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
}

const mode = (m: number) => `0${(m & 0o777).toString(8)}`;

/** Another process holds the lock (holdLock). */
export class LockHeld extends Error {}

/**
 * An exclusive lock held by a tiny SQLite file (owner-only) for as long as the process lives: one crs serve per data
 * directory, one bridge per spool. The kernel drops it when the process dies, even by SIGKILL, so a crash never
 * leaves a stale lock behind. Throws LockHeld while another process (or connection) holds it.
 */
export function holdLock(file: string): { release(): void } {
  createPrivate(file);
  const lock = new Database(file, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec(
      `CREATE TABLE IF NOT EXISTS holder (pid INTEGER); BEGIN EXCLUSIVE; DELETE FROM holder; INSERT INTO holder VALUES (${process.pid}); COMMIT;`,
    );
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new LockHeld(file);
    throw err;
  }
  return { release: () => lock.close() };
}
