// `crs backup`: a copy of a running `crs serve`'s data directory that another server runs on. The docs said "back it
// up" and nothing more; the files copied by hand while the server runs miss what the WAL holds (every commit since
// the last checkpoint) or catch a commit half-written.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  chmodSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { applyRestore, lastRestore, markBackup } from '#adapters/sqlite/restores.ts';
import { resolveConfig } from '#domain/config.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { backupCommand } from '#cli/backup.ts';
import { CLI, captured, crsMain } from '#test/support/cli.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'backup-test-token-of-at-least-32-chars';
// The messages are from January: no "no data" alert of the restored server in the way of the comparison.
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
let root: string;
let servers: EmbeddedServer[];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'crs-backup-'));
  servers = [];
});
afterEach(async () => {
  for (const s of servers) await s.close();
  rmSync(root, { recursive: true, force: true });
});

const start = async (dir: string) => {
  const s = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: new PassThrough(),
    log: () => undefined,
  });
  servers.push(s);
  return s;
};
/** `crs ARGS` through the CLI's `main` in this process; the copy of a running server is taken by a process of its own. */
const crs = (...args: string[]) => crsMain(args);
const get = async (s: EmbeddedServer, path: string) =>
  (await (
    await fetch(`${s.url}${path}`, {
      headers: { authorization: `Bearer ${new URL(s.boardUrl).searchParams.get('key')}` },
    })
  ).json()) as Record<string, unknown>;

describe('crs backup', () => {
  it('copies the data directory of a running server, WAL included, with its keys, into one a server runs on', async () => {
    const data = join(root, 'data');
    const server = await start(data);
    for (const m of [enrol('P-1', 0), msg('P-1', 10, { vitals: { temperatureC: 39.1 } })]) {
      const r = await fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(m),
      });
      expect(r.status).toBe(202);
    }
    await until(() => server.queue.pending() === 0 && server.paging.store.patientPagesNow('P-1', 10).pages.length > 0);
    const before = await get(server, '/api/patients/P-1');
    // A refusal at the door goes to the security log: the copy carries it.
    const forged = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json' },
      body: JSON.stringify(msg('P-1', 20, { vitals: { heartRate: 80 } })),
    });
    expect(forged.status).toBe(403);
    await until(() => existsSync(join(data, 'security.log')));

    // What a copy of the database file alone, made now, would hold: none of it (every commit is still in the WAL).
    const naive = join(root, 'naive.db');
    copyFileSync(join(data, 'crs.db'), naive);
    const naiveDb = new Database(naive, { readonly: true });
    expect(naiveDb.prepare("SELECT name FROM sqlite_master WHERE name = 'patients'").all()).toEqual([]);
    naiveDb.close();

    const copy = join(root, 'copy');
    // A process of its own (bin/crs.js), as an operator runs it: the server, in this process, still runs.
    const r = spawnSync(process.execPath, [CLI, 'backup', '--data', data, '--to', copy], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`backed up ${data} to ${copy}`);
    expect(statSync(copy).mode & 0o777).toBe(0o700);
    for (const f of ['crs.db', 'ack.key', 'board.key', 'security.log'])
      expect(statSync(join(copy, f)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(copy, 'ack.key'))).toEqual(readFileSync(join(data, 'ack.key')));
    expect(readFileSync(join(copy, 'security.log'), 'utf8')).toBe(readFileSync(join(data, 'security.log'), 'utf8'));

    await server.close();
    const restored = await start(copy);
    expect(await get(restored, '/api/patients/P-1')).toEqual({ ...before, serverTime: expect.any(String) });
  });

  // Pinned by a mutation run: the rotated security log goes with the current one, and every file copied is
  // owner-only even when the original is not (a key or log an operator left readable by others). The command is run
  // under umask 0, not main's 077: that umask alone would make a copy created 0644 end 0600, so only the modes the
  // command gives its directory and files explicitly are checked here.
  it('copies the rotated security log too, and each copy owner-only whatever the original and the umask', async () => {
    const data = join(root, 'data');
    openDataDir(data).close();
    for (const [f, text] of [
      ['ack.key', 'a'.repeat(64)],
      ['ack.key.previous', 'b'.repeat(64)], // the key before a rotation (crs ack-key rotate): links it signed
      ['security.log', '{"refused":"now"}\n'],
      ['security.log.1', '{"refused":"before"}\n'],
    ] as const) {
      writeFileSync(join(data, f), text);
      chmodSync(join(data, f), 0o644);
    }
    const copy = join(root, 'copy');
    const umask = process.umask(0);
    let r: Awaited<ReturnType<typeof captured>>;
    try {
      r = await captured(async () => backupCommand(['--data', data, '--to', copy]));
    } finally {
      process.umask(umask);
    }
    expect(r.code, r.err).toBe(0);
    expect(statSync(copy).mode & 0o777).toBe(0o700);
    expect(statSync(join(copy, 'crs.db')).mode & 0o777).toBe(0o600);
    for (const f of ['ack.key', 'ack.key.previous', 'security.log', 'security.log.1']) {
      expect(readFileSync(join(copy, f), 'utf8'), f).toBe(readFileSync(join(data, f), 'utf8'));
      expect(statSync(join(copy, f)).mode & 0o777, f).toBe(0o600);
    }
  });

  // A restore (2026-12-07): the copy is marked a backup of its moment; the first server on it moves each patient's
  // sequence on (the ids of what it pages: test/integration/embedded-restore.test.ts), once, and leaves a state it
  // cannot read as it is. A directory that is no marked copy is not touched.
  it('marks the copy a backup of its moment; the first start on it moves each readable state on, once', async () => {
    const data = join(root, 'data');
    const server = await start(data);
    const r = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(enrol('P-1', 0)),
    });
    expect(r.status).toBe(202);
    await until(() => server.queue.pending() === 0);
    await server.close();
    const damaged = openDataDir(data);
    damaged
      .prepare("INSERT INTO patients (patient_id, version, state, updated_at) VALUES ('P-2', 1, 'not json', '')")
      .run();
    damaged.close();
    const own = openDataDir(data);
    expect(applyRestore(own, Date.now())).toBeUndefined(); // no copy crs backup made: nothing moved
    own.close();
    const before = Date.now();
    const copy = join(root, 'copy');
    const made = await crs('backup', '--data', data, '--to', copy);
    expect(made.status, made.stderr).toBe(0);
    const at = made.stdout.match(/ as of (\S+)\n/)?.[1];
    expect(Date.parse(at!)).toBeGreaterThanOrEqual(before);
    const db = openDataDir(copy);
    try {
      const seq = (id: string) =>
        (
          JSON.parse(db.prepare('SELECT state FROM patients WHERE patient_id = ?').pluck().get(id) as string) as {
            seq: number;
          }
        ).seq;
      expect(seq('P-1')).toBe(1);
      expect(applyRestore(db, 5_000_000)).toEqual({ takenAt: Date.parse(at!), restoredAt: 5_000_000 });
      expect(seq('P-1')).toBe(5_000_001);
      expect(db.prepare("SELECT state FROM patients WHERE patient_id = 'P-2'").pluck().get()).toBe('not json');
      expect(applyRestore(db, 6_000_000)).toBeUndefined();
      expect(seq('P-1')).toBe(5_000_001);
      expect(lastRestore(db)).toEqual({ takenAt: Date.parse(at!), restoredAt: 5_000_000 });
    } finally {
      db.close();
    }
  });

  // Mutation review (2026-12-07): a backup of a restored directory keeps the rows of the restores before it; its own
  // restore is the latest, and names its own backup's moment, not the first one's.
  it('takes the latest restore of a directory restored twice: the second backup, restored last', () => {
    const dir = join(root, 'twice');
    mkdirSync(dir);
    const db = openDataDir(dir);
    try {
      markBackup(db, 1_000);
      expect(applyRestore(db, 5_000)).toEqual({ takenAt: 1_000, restoredAt: 5_000 });
      markBackup(db, 7_000); // crs backup of the restored directory (the row of the first restore kept)
      expect(applyRestore(db, 9_000)).toEqual({ takenAt: 7_000, restoredAt: 9_000 });
      expect(lastRestore(db)).toEqual({ takenAt: 7_000, restoredAt: 9_000 });
    } finally {
      db.close();
    }
  });

  it('refuses a target that is not empty, and a directory without a database, touching nothing', async () => {
    const data = join(root, 'data');
    openDataDir(data).close();
    const target = join(root, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'x'), 'kept');
    const notEmpty = await crs('backup', '--data', data, '--to', target);
    expect(notEmpty.status).toBe(2);
    expect(notEmpty.stderr).toContain(`crs backup: ${target} is not empty: give a new or empty directory`);
    expect(readdirSync(target)).toEqual(['x']);
    const none = await crs('backup', '--data', join(root, 'none'), '--to', join(root, 'out'));
    expect(none.status).toBe(2);
    expect(none.stderr).toContain(`crs backup: no crs database in ${join(root, 'none')}`);
    expect(existsSync(join(root, 'out'))).toBe(false);
  });

  it('leaves no empty crs.db behind when the copy fails (a damaged database), and says what is wrong', async () => {
    // Until 2026-12-06 a failed copy left TARGET/crs.db empty: a "restore" from TARGET started an empty database.
    const data = join(root, 'data');
    mkdirSync(data, { mode: 0o700 });
    writeFileSync(join(data, 'crs.db'), Buffer.alloc(8192, 7), { mode: 0o600 });
    const target = join(root, 'target');
    const r = await crs('backup', '--data', data, '--to', target);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `crs backup: the database ${join(data, 'crs.db')} cannot be used (SQLITE_NOTADB: file is not a database): it is damaged or not a crs database`,
    );
    expect(existsSync(target)).toBe(false);
    // An empty directory given: kept, and left empty (only what the copy put there goes).
    mkdirSync(target, { mode: 0o700 });
    expect((await crs('backup', '--data', data, '--to', target)).status).toBe(1);
    expect(readdirSync(target)).toEqual([]);
    // A new nested TO: the parents it made go too, and only those (until 2026-12-06 ROOT/new/a stayed).
    const nested = join(root, 'new', 'a', 'b');
    expect((await crs('backup', '--data', data, '--to', nested)).status).toBe(1);
    expect(existsSync(join(root, 'new'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });
});
