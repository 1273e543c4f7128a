// A data directory of an earlier crs, as the operator meets it after upgrading crs: the commands that work on its
// database beside (or without) crs serve. crs serve itself upgrades it as it starts (embedded-paging, -store and
// -board-list tests); the commands must never upgrade it beneath a server of the earlier version still running, and
// must read it as this version has it when none runs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILE, lockDataDir, openDataDir } from '#adapters/sqlite/db.ts';
import { CLI, REPO } from '#test/support/cli.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-upgrade-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `crs ARGS` as the operator runs it (spawned: a lock this process holds stands for a running server). */
function crs(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const version = () => {
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

/** A database as version 6 left it (today's tables without the list's columns of version 7). */
function version6(): void {
  openDataDir(dir).close();
  const raw = new Database(join(dir, DB_FILE));
  raw.exec(`DROP INDEX patients_ended;
    ALTER TABLE patients DROP COLUMN monitoring_ended_at;
    ALTER TABLE patients DROP COLUMN grade;`);
  raw.pragma('user_version = 6');
  raw.close();
}

/** A database of version 1 (issue 5: no parked lane, an inbox without digests) holding one dead letter. */
function version1WithDeadLetter(): void {
  const old = new Database(join(dir, DB_FILE));
  old.exec(readFileSync(new URL('../fixtures/embedded-schema-v1.sql', import.meta.url), 'utf8'));
  old.pragma('user_version = 1');
  const message = {
    messageId: 'old-fever',
    patientId: 'P-OLD',
    observedAt: '2026-01-10T08:10:00Z',
    source: { deviceId: 'mon-1', kind: 'monitor' },
    vitals: { temperatureC: 39.2 },
  };
  old
    .prepare(
      "INSERT INTO dead_letter (seq, patient_id, message_id, body, received_at, attempts, error, failed_at) VALUES (7, 'P-OLD', 'old-fever', ?, '2026-01-10T08:10:01Z', 3, 'TypeError', '2026-01-10T08:10:04Z')",
    )
    .run(JSON.stringify({ message, receivedAt: '2026-01-10T08:10:01Z', sender: 'gw' }));
  old.close();
}

describe('a data directory of an earlier version', () => {
  it('is not upgraded by crs token while a crs serve (of that version) runs on it: refused, naming both versions and what to do', async () => {
    version6();
    const running = lockDataDir(dir); // the earlier server, still running the code it started with
    try {
      const r = await crs('token', 'issue', '--device', 'gw-2', '--kind', 'monitor', '--data', dir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `the database ${join(dir, DB_FILE)} is of an earlier crs (schema version 6; this crs has 7) and a crs serve runs on it: restart crs serve with this crs (it upgrades the database as it starts), then try again`,
      );
      expect(r.stdout).toBe('');
      expect(version()).toBe(6); // the running server's tables untouched
    } finally {
      running.release();
    }
    // Once it is stopped, the command upgrades it itself.
    const issued = await crs('token', 'issue', '--device', 'gw-2', '--kind', 'monitor', '--data', dir);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stdout).toMatch(/^token: {4}crs_/);
    expect(version()).toBe(7);
  });

  it('with no server running: crs dead-letters redrives and crs outbox lists on it (upgraded first, as crs serve would)', async () => {
    version1WithDeadLetter();
    const listed = await crs('dead-letters', 'list', '--json', '--data', dir);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).deadLetters).toEqual([expect.objectContaining({ messageId: 'old-fever' })]);
    const redriven = await crs('dead-letters', 'redrive', '--all', '--data', dir);
    expect(redriven.code, redriven.stderr).toBe(0);
    expect(redriven.stdout).toMatch(/^1 dead-lettered message\(s\) put back in the inbox/);
    const parked = await crs('outbox', 'list', '--json', '--data', dir);
    expect(parked.code, parked.stderr).toBe(0);
    expect(JSON.parse(parked.stdout)).toEqual({ parked: [] });
    expect(version()).toBe(7);
    const db = openDataDir(dir);
    expect(db.prepare('SELECT seq, message_id FROM inbox').all()).toEqual([{ seq: 7, message_id: 'old-fever' }]);
    db.close();
  });

  it('of a newer crs (a rollback) is refused by every command that opens it, naming both versions, and left as it is', async () => {
    openDataDir(dir).close();
    const raw = new Database(join(dir, DB_FILE));
    raw.pragma('user_version = 8');
    raw.close();
    const refusal =
      'database schema version 8 is newer than this crs (7): upgrade crs, or use another --data directory';
    for (const args of [
      ['token', 'list'],
      ['dead-letters', 'list'],
      ['dead-letters', 'redrive', '--all'],
      ['outbox', 'list'],
      ['outbox', 'retry', '--all'],
    ]) {
      const r = await crs(...args, '--data', dir);
      expect([args, r.code]).toEqual([args, 1]);
      expect(r.stderr).toContain(refusal);
    }
    expect(version()).toBe(8);
  });
});
