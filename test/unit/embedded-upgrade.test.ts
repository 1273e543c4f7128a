// A data directory of an earlier crs, as the operator meets it after upgrading crs: the commands that work on its
// database beside (or without) crs serve. crs serve itself upgrades it as it starts (embedded-paging, -store and
// -board-list tests); the commands must never upgrade it beneath a server of the earlier version still running, and
// must read it as this version has it when none runs.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILE, lockDataDir, openDataDir } from '#adapters/sqlite/db.ts';
import { OutboxDispatcher, type OutboxKind, type Sink } from '#adapters/sqlite/outbox.ts';
import { crsAsync } from '#test/support/cli.ts';
import { asVersion6 } from '#test/support/old-schema.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-upgrade-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `crs ARGS` as the operator runs it (spawned: a lock this process holds stands for a running server). */
const crs = (...args: string[]) =>
  crsAsync(args, {}).then(({ status: code, stdout, stderr }) => ({ code, stdout, stderr }));

const version = () => {
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

/** A database as version 6 left it (today's tables without the list's columns of version 7 and version 8's lane starts). */
function version6(): void {
  openDataDir(dir).close();
  asVersion6(join(dir, DB_FILE));
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
        `the database ${join(dir, DB_FILE)} is of an earlier crs (schema version 6; this crs has 15) and a crs serve runs on it: restart crs serve with this crs (it upgrades the database as it starts), then try again`,
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
    expect(version()).toBe(15);
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
    expect(version()).toBe(15);
    const db = openDataDir(dir);
    expect(db.prepare('SELECT seq, message_id FROM inbox').all()).toEqual([{ seq: 7, message_id: 'old-fever' }]);
    db.close();
  });

  it('of a newer crs (a rollback) is refused by every command that opens it, naming both versions, and left as it is', async () => {
    openDataDir(dir).close();
    const raw = new Database(join(dir, DB_FILE));
    raw.pragma('user_version = 16');
    raw.close();
    const refusal =
      'database schema version 16 is newer than this crs (15): upgrade crs, or use another --data directory';
    for (const args of [
      ['token', 'list'],
      ['dead-letters', 'list'],
      ['dead-letters', 'redrive', '--all'],
      ['outbox', 'list'],
      ['outbox', 'retry', '--all'],
      // Until 2026-12-06 these two read it: a column a newer crs added (or gave a new meaning) misread or left out.
      ['audit', 'export', '--patient', 'P1'],
      ['backup', '--to', join(dir, 'copy')],
    ]) {
      const r = await crs(...args, '--data', dir);
      expect([args, r.code]).toEqual([args, 1]);
      // Said as the command's own line: crs token said "crs token: Error: database ..." (2026-12-06).
      expect(r.stderr).toContain(`crs ${args[0]}: ${refusal}`);
    }
    expect(version()).toBe(16);
    expect(existsSync(join(dir, 'copy'))).toBe(false);
  });
});

// Version 8 records where each lane starts (a lane added later owes only what comes after it). Version 7 did not:
// the upgrade keeps owed every record a lane could owe by what the database shows of it.
describe('a data directory of version 7, upgraded to 8', () => {
  /** Version 7 holding five records (a grade change, its page, an alert, another grade change and page) and `ledger`. */
  function version7(ledger: { delivered: [string, string][]; parked: [string, string][] }): void {
    openDataDir(dir).close();
    const raw = new Database(join(dir, DB_FILE));
    const put = raw.prepare(
      "INSERT INTO outbox (kind, item_id, patient_id, body, created_at) VALUES (?, ?, 'P1', '{}', 'x')",
    );
    for (const [kind, id] of [
      ['notification', 'n1'],
      ['page', 'p1'],
      ['alert', 'a1'],
      ['notification', 'n2'],
      ['page', 'p2'],
    ])
      put.run(kind, id);
    for (const [sink, id] of ledger.delivered)
      raw.prepare("INSERT INTO deliveries (item_id, sink, sent_at) VALUES (?, ?, 'x')").run(id, sink);
    for (const [sink, id] of ledger.parked)
      raw
        .prepare(
          "INSERT INTO parked (item_id, sink, seq, reason, attempts, parked_at) VALUES (?, ?, (SELECT seq FROM outbox WHERE item_id = ?), 'HTTP 422', 3, 'x')",
        )
        .run(id, sink, id);
    raw.exec('DROP TABLE lane_starts; DROP TABLE stale_feed_members');
    raw.pragma('user_version = 7');
    raw.close();
  }
  const starts = () => {
    const db = openDataDir(dir);
    try {
      return db
        .prepare("SELECT sink || ' ' || kind || ' ' || after_seq FROM lane_starts ORDER BY sink, kind")
        .pluck()
        .all() as string[];
    } finally {
      db.close();
    }
  };
  /** What each lane is handed by a server started on it, and what it says. */
  async function served(lanes: Record<string, OutboxKind[]>): Promise<{ sent: string[]; log: string[] }> {
    const db = openDataDir(dir);
    const sent: string[] = [];
    const log: string[] = [];
    const sinks: Sink[] = Object.entries(lanes).map(([name, kinds]) => ({
      name,
      kinds,
      deliver: async (item) => void sent.push(`${name} ${item.id}`),
    }));
    const d = new OutboxDispatcher(db, sinks, { log: (l) => log.push(l) });
    d.kick();
    await d.settled();
    await d.stop();
    db.close();
    return { sent: sent.sort(), log };
  }

  it('owes every record still owed: the lanes that left a trace, the webhook both kinds, the lanes every server has', async () => {
    // The pager took nothing yet (killed at once); the webhook took n1 and is down since; standard output printed
    // the grade changes and parked a page (--page-lines); the board took p1.
    version7({
      delivered: [
        ['stdout', 'n1'],
        ['stdout', 'n2'],
        ['webhook', 'n1'],
        ['board', 'p1'],
      ],
      parked: [['stdout', 'p1']],
    });
    expect(starts()).toEqual([
      'board page 0',
      'pager alert 0',
      'pager notification 0',
      'stdout notification 0',
      'stdout page 0',
      'webhook notification 0',
      'webhook page 0',
    ]);
    const { sent, log } = await served({
      stdout: ['notification', 'page'],
      pager: ['notification', 'alert'],
      board: ['page'],
      webhook: ['notification', 'page'],
    });
    expect(sent).toEqual(
      ['board p2', 'pager a1', 'pager n1', 'pager n2', 'stdout p2', 'webhook n2', 'webhook p1', 'webhook p2'].sort(),
    );
    expect(log).toEqual([]);
  });

  it('starts a lane that left no trace afresh, and says so: a webhook that never delivered, --page-lines that never printed', async () => {
    version7({
      delivered: [
        ['stdout', 'n1'],
        ['stdout', 'n2'],
        ['pager', 'n1'],
        ['pager', 'a1'],
        ['pager', 'n2'],
        ['board', 'p1'],
        ['board', 'p2'],
      ],
      parked: [],
    });
    expect(starts()).toEqual(['board page 0', 'pager alert 0', 'pager notification 0', 'stdout notification 0']);
    const { sent, log } = await served({
      stdout: ['notification', 'page'],
      pager: ['notification', 'alert'],
      board: ['page'],
      webhook: ['notification', 'page'],
    });
    expect(sent).toEqual([]);
    expect(log).toEqual([
      'stdout: new lane for page records, delivering from record 6; earlier records are not sent to it',
      'webhook: new lane, delivering from record 6; earlier records are not sent to it',
    ]);
  });
});

// Found 2026-12-07: one state that was not JSON (a row edited by hand, damage) failed the upgrade of an earlier
// version's database (read for its feed, its window of identities, its list columns), and so did a version 1 page
// whose grade change was not (read for its audit entries): crs serve did not start.
describe('an earlier version with rows it cannot read (2026-12-07)', () => {
  it('is upgraded, the rows left as they are for the board to name', () => {
    version1WithDeadLetter();
    const old = new Database(join(dir, DB_FILE));
    old
      .prepare(
        "INSERT INTO patients (patient_id, version, state, updated_at) VALUES ('P-BAD', 1, '{\"v\":', '2026-01-10T08:10:01Z')",
      )
      .run();
    old
      .prepare(
        "INSERT INTO outbox (notification_id, patient_id, body, created_at) VALUES ('n-bad', 'P-BAD', '{\"at\":', '2026-01-10T09:00:00Z')",
      )
      .run();
    old
      .prepare(
        `INSERT INTO pages (notification_id, patient_id, condition, kind, from_grade, to_grade, triggered_at, acknowledged_at, acknowledged_by)
         VALUES ('n-bad', 'P-BAD', 'crs', 'escalation', 0, 2, '2026-01-10T09:00:00Z', '2026-01-10T09:05:00Z', 'Dr A')`,
      )
      .run();
    old.close();
    openDataDir(dir).close();
    expect(version()).toBe(15);
    const db = new Database(join(dir, DB_FILE), { readonly: true });
    try {
      expect(db.prepare("SELECT state, feed_since FROM patients WHERE patient_id = 'P-BAD'").get()).toEqual({
        state: '{"v":',
        feed_since: null,
      });
      expect(db.prepare("SELECT body FROM outbox WHERE item_id = 'n-bad'").pluck().get()).toBe('{"at":');
      // Its acknowledgement in the trail, from the old page's own columns.
      expect(db.prepare("SELECT type, entry FROM audit WHERE patient_id = 'P-BAD'").all()).toEqual([
        {
          type: 'acknowledgement',
          entry: JSON.stringify({
            at: '2026-01-10T09:05:00Z',
            patientId: 'P-BAD',
            type: 'acknowledgement',
            text: 'CRS grade 2 page acknowledged by Dr A via board (recorded before escalation ladders)',
            details: { notificationId: 'n-bad', by: 'Dr A', via: 'board' },
          }),
        },
      ]);
    } finally {
      db.close();
    }
  });
});
