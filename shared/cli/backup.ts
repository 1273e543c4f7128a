// `crs backup --to DIR [--data DIR]`: a copy of the data directory of `crs serve` that a server can run on, taken
// while it runs too. The database is copied as of one moment (SQLite's VACUUM INTO, in one read transaction: what
// the WAL holds is in it, and no half-written commit); the keys go with it (without ack.key and ack.key.previous the
// acknowledge links already sent would stop working), and the security log with its rotated file (evidence of what
// was refused at the door). Copying the files by hand while the server runs can miss the WAL's commits or catch a
// commit half-written.
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DB_FILE, refuseNewerSchema } from '#adapters/sqlite/db.ts';
import { createPrivate, secureDataDir } from '#adapters/sqlite/files.ts';
import { markBackup } from '#adapters/sqlite/restores.ts';
import { ACK_KEY_FILE, ACK_PREVIOUS_KEY_FILE } from '#hosts/embedded/ack-key.ts';
import { BOARD_KEY_FILE } from '#hosts/embedded/board-key.ts';
import { SECURITY_LOG_FILE } from '#hosts/embedded/security-log.ts';
import { inline, parseFlags } from './flags.ts';
import { damagedDatabase, DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';

export const BACKUP_USAGE = `  crs backup --to DIR [--data DIR]
      a copy of the data directory of crs serve (default ${DEFAULT_DATA_DIR}), taken while it runs too: the database as of
      one moment, its keys (ack.key, ack.key.previous: links already sent keep working) and security log, into
      DIR (new or empty), owner-only. To restore: stop crs serve, then start it with --data DIR (or put DIR in place of the data directory),
      then have every gateway send again what it sent since the backup's moment (printed; docs/embedded.md, Restoring from a backup)
`;

class BackupUsageError extends Error {}

/** The flags `crs backup` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const BACKUP_OPTIONS = {
  to: { type: 'string' },
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function backupCommand(args: string[]): number {
  try {
    const { values: v, positionals } = parseFlags({
      args,
      allowPositionals: true,
      options: BACKUP_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${BACKUP_USAGE}`);
      return 0;
    }
    if (positionals.length > 0) throw new BackupUsageError('backup takes no positional arguments; use --to DIR');
    if (!v.to) throw new BackupUsageError('backup needs --to DIR (a new or empty directory)');
    const from = resolve(v.data ?? DEFAULT_DATA_DIR);
    const to = resolve(v.to);
    const source = join(from, DB_FILE);
    if (!existsSync(source))
      throw new BackupUsageError(`no crs database in ${from} (give the data directory of crs serve with --data DIR)`);
    if (to === from) throw new BackupUsageError('--to must be another directory than --data');
    if (existsSync(to) && readdirSync(to).length > 0)
      throw new BackupUsageError(`${to} is not empty: give a new or empty directory`);
    // The outermost directory this makes (TO, or a parent of a nested TO): removed on failure, and nothing above it.
    let made: string | undefined;
    for (let d = to; !existsSync(d); d = dirname(d)) made = d;
    secureDataDir(to);
    let takenAt: number;
    try {
      takenAt = copyInto(from, to, source);
    } catch (err) {
      // Nothing half-made left (TO was new or empty): an empty crs.db left there was "restored" as an empty database
      // (2026-12-06), nor the parents made for it (2026-12-06). A damaged source is said as crs serve says it.
      if (made) rmSync(made, { recursive: true, force: true });
      else for (const f of readdirSync(to)) rmSync(join(to, f), { recursive: true, force: true });
      throw damagedDatabase(from, err, 'crs backup');
    }
    process.stdout.write(
      `backed up ${from} to ${to} as of ${new Date(takenAt).toISOString()}\nrestore: stop crs serve, then start it with --data ${to} (or put ${to} in place of ${from}); then have every gateway send again what it sent since that time\n`,
    );
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof BackupUsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs backup: ${inline(e.message)}\nusage:\n${BACKUP_USAGE}`);
      return 2;
    }
    process.stderr.write(`crs backup: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  }
}

/**
 * The database as of one moment, marked a backup (restores.ts) and checked, then the keys and the security log,
 * owner-only. Returns the moment the copy is said to be of: no later than the one it holds.
 */
function copyInto(from: string, to: string, source: string): number {
  const target = join(to, DB_FILE);
  let takenAt: number;
  createPrivate(target); // owner-only before SQLite writes patient data into it (an empty file VACUUM INTO takes)
  // Read-only beside the running server; a commit in progress waits up to 5 s, as the server's own readers do.
  const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    // A newer crs's directory may hold what this one does not know to copy (a file beside the database): refused.
    refuseNewerSchema(db.pragma('user_version', { simple: true }) as number);
    // Before the copy's moment, never after it: what the gateways send again from this time on holds all it lacks.
    takenAt = Date.now();
    db.prepare('VACUUM INTO ?').run(target);
  } finally {
    db.close();
  }
  const copy = new Database(target);
  let check: string;
  try {
    // A backup: the first crs serve on it is the restore (restores.ts).
    markBackup(copy, takenAt);
    check = (copy.pragma('quick_check', { simple: true }) as string) ?? 'no answer';
  } finally {
    copy.close();
  }
  if (check !== 'ok') throw new Error(`the copy ${target} fails SQLite's check (${check}): keep the data directory`);
  for (const file of [
    ACK_KEY_FILE,
    ACK_PREVIOUS_KEY_FILE,
    BOARD_KEY_FILE,
    SECURITY_LOG_FILE,
    `${SECURITY_LOG_FILE}.1`,
  ]) {
    if (!existsSync(join(from, file))) continue;
    // Written owner-only: copyFileSync gives the copy the original's mode (a key left readable by others stayed so).
    writeFileSync(join(to, file), readFileSync(join(from, file)), { mode: 0o600, flag: 'wx' });
  }
  return takenAt;
}
