// A crs command working on a data directory's database itself, when no crs serve answers on it.
import type { Db } from '#adapters/sqlite/db.ts';

/**
 * Runs `use` on the database under the data directory's lock, which proves no crs serve is running on it (one that
 * does not answer is refused). Opened as crs serve opens it: one of an earlier version upgraded first, under the
 * lock, as crs serve would (a redrive into a version-1 or 2 inbox failed with "table inbox has no column named
 * digest", `crs outbox list` with "no such table: parked"); one of a newer crs refused before anything is written.
 * A damaged file's advice names `command` (crs outbox), the one to run again.
 */
export async function withStoppedDataDir<T>(dir: string, command: string, use: (db: Db) => Promise<T>): Promise<T> {
  const { lockDataDir, openDataDir } = await import('#adapters/sqlite/db.ts');
  let lock: { release(): void };
  try {
    lock = lockDataDir(dir);
  } catch (err) {
    // An error with a code (SQLITE_NOTADB, EACCES...) is the lock file's, not a process holding it: said as crs serve
    // says it (2026-12-06: a damaged serve.lock was "in use by another process", a process that was not there).
    if ((err as { code?: unknown }).code !== undefined) {
      const { dataDirUnusable } = await import('#hosts/embedded/embedded.ts');
      throw dataDirUnusable(dir, 'serve.lock', err, command);
    }
    throw new Error(
      `${dir} is in use by another process (a crs serve that does not answer, or a crs command working on it); try again, or stop it first`,
    );
  }
  let db: Db;
  try {
    db = openDataDir(dir);
  } catch (err) {
    lock.release();
    const { damagedDatabase } = await import('#hosts/embedded/embedded.ts');
    throw damagedDatabase(dir, err, command);
  }
  try {
    return await use(db);
  } finally {
    db.close();
    lock.release();
  }
}
