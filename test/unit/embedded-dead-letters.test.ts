// Dead letters on `crs serve` (AWS's MessagesDlq and its MessagesDlqDepth alarm): an accepted message (202) the
// grading worker fails 3 times is set aside. Before 2026-12-05 nobody was told but one line on standard error and a
// count in /api/health: the message was never graded and its grade change never paged. Now:
// - the delivery watch raises an alert at once (standard error, the board's banner by /api/outbox, /api/health);
// - `crs dead-letters list|redrive` shows them and puts them back, through the running server or, with none, on the
//   database under the data directory's lock;
// - a redriven message is graded once and its grade change paged; one already applied meanwhile (the device resent
//   it once the fault was fixed, or it is redriven twice) is a duplicate: nothing applied or paged twice;
// - the alert clears once nothing is dead-lettered.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { listDeadLetters, redriveDeadLetters } from '#adapters/sqlite/dead-letters.ts';
import { SqliteQueue } from '#adapters/sqlite/queue.ts';
import { messageDigest } from '#app/digest.ts';
import { resolveConfig } from '#domain/config.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { crsAsync, crsMain } from '#test/support/cli.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'dead-letters-test-token-of-32-chars!';
// The default alert age (2 minutes): the dead-letter alert does not wait for it.
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;

let dir: string;
let server: EmbeddedServer | undefined;
let logs: string[];
let pageLines: Record<string, unknown>[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-dead-letters-'));
  logs = [];
  pageLines = [];
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<EmbeddedServer> {
  const stream = new PassThrough();
  let buffered = '';
  stream.on('data', (c: Buffer) => {
    buffered += c.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) if (l) pageLines.push(JSON.parse(l) as Record<string, unknown>);
  });
  server = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: stream,
    log: (l) => logs.push(l),
    // The fever is dead-lettered after its 3 tries; how long the worker waits between them is not what is checked.
    gradingRetryMs: 10,
  });
  return server;
}

const post = (s: EmbeddedServer, m: unknown) =>
  fetch(`${s.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(m),
  });
const boardKey = (s: EmbeddedServer) => new URL(s.boardUrl).searchParams.get('key')!;
const api = async (s: EmbeddedServer, path: string, body?: unknown) =>
  (await (
    await fetch(`${s.url}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: {
        authorization: `Bearer ${boardKey(s)}`,
        ...(body ? { 'content-type': 'application/json', origin: s.url } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
  ).json()) as any;
const alertKeys = async (s: EmbeddedServer) =>
  ((await api(s, '/api/outbox')).alerts as { key: string }[]).map((a) => a.key);
/** The grade changes paged for a patient (the NDJSON page stream). */
const notified = (patientId: string) => pageLines.filter((l) => l.type === 'notification' && l.patientId === patientId);
const count = (s: EmbeddedServer, sql: string) => (s.db.prepare(sql).pluck().get() as number) ?? 0;

/** `crs ARGS` as the operator runs it, while the server runs in this process (so: spawned, not spawnSync). */
const crs = (...args: string[]) =>
  crsAsync(args, {}).then(({ status: code, stdout, stderr }) => ({ code, stdout, stderr }));

/** A refusal, through main in this process (a `crs` process costs about 0.25 s of CPU to start). */
const crsRefused = (...args: string[]) =>
  crsMain(args).then(({ status: code, stdout, stderr }) => ({ code, stdout, stderr }));

const FEVER = msg('P-DL', 10, { vitals: { temperatureC: 39.2 } }, 'P-DL-fever');

/**
 * P-DL enrolled and graded, then its fever (a grade change to CRS 1) dead-lettered: its grading commit fails (a
 * bug, not the disk: a trigger refusing its timeline point) 3 times. Returns the fix (the trigger dropped).
 */
async function deadLetterTheFever(s: EmbeddedServer): Promise<() => void> {
  expect((await post(s, enrol('P-DL', 0))).status).toBe(202);
  await until(() => count(s, "SELECT count(*) FROM patients WHERE patient_id = 'P-DL'") === 1, 'P-DL enrolled');
  s.db.exec(
    "CREATE TRIGGER a_bug BEFORE INSERT ON timeline WHEN NEW.patient_id = 'P-DL' BEGIN SELECT RAISE(ABORT, 'a bug'); END",
  );
  expect((await post(s, FEVER)).status).toBe(202);
  // Within 2 s: its 3 tries 10, then 20 ms apart (gradingRetryMs), not the default's 1, then 2 s.
  await until(() => count(s, 'SELECT count(*) FROM dead_letter') === 1, 'the fever dead-lettered', 2000);
  return () => s.db.exec('DROP TRIGGER a_bug');
}

describe('a dead-lettered message', () => {
  it('raises an alert at once (standard error, banner, /api/health); crs dead-letters lists it and redrives it: graded once, paged, the alert cleared', async () => {
    const s = await start();
    const fix = await deadLetterTheFever(s);

    // Told at once, by every path the delivery watch has, not only a count in /api/health.
    const alert = await until(
      async () =>
        ((await api(s, '/api/outbox')).alerts as { key: string; text: string }[]).find((a) => a.key === 'dead-letters'),
      'the dead-letter alert',
      2000,
    );
    expect(alert.text).toBe(
      '1 accepted message(s) failed grading 3 times and were dead-lettered: they are not graded, and any grade change they carry is not paged: crs dead-letters list shows them; fix the cause, then crs dead-letters redrive grades them',
    );
    expect(logs).toContainEqual(`delivery watch: ALERT ${alert.text}`);
    const health = await api(s, '/api/health');
    expect(health.deadLetters).toBe(1);
    expect(health.deliveryAlerts.map((a: { key: string }) => a.key)).toContain('dead-letters');
    expect(notified('P-DL')).toEqual([]);

    const listed = await crs('dead-letters', 'list', '--data', dir);
    expect(listed.code, listed.stderr).toBe(0);
    const [id] = listed.stdout.split(/\s+/);
    expect(listed.stdout).toMatch(
      new RegExp(
        `^${id}  \\S+  patient P-DL  message P-DL-fever  received \\S+  \\(failed 3 times: SqliteError: a bug\\)\\n`,
      ),
    );
    expect(listed.stdout).toContain('ALERT 1 accepted message(s) failed grading 3 times');

    fix();
    const redriven = await crs('dead-letters', 'redrive', id!, '--data', dir);
    expect(redriven.code, redriven.stderr).toBe(0);
    expect(redriven.stdout).toBe('1 dead-lettered message(s) put back in the inbox: graded now\n');
    await until(() => notified('P-DL').length === 1 || undefined, 'the fever paged');
    expect(notified('P-DL')[0]).toMatchObject({ condition: 'crs', toGrade: 1, causedBy: 'P-DL-fever' });
    expect(await alertKeys(s)).not.toContain('dead-letters');
    expect(logs).toContainEqual(
      'delivery watch: cleared: 1 accepted message(s) failed grading 3 times and were dead-lettered',
    );
    expect((await api(s, '/api/health')).deadLetters).toBe(0);

    // Redriven again: nothing is dead-lettered as that id any more; the command says so and exits 1.
    const again = await crs('dead-letters', 'redrive', id!, '--data', dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`crs dead-letters: nothing dead-lettered as ${id}`);
    await until(() => count(s, 'SELECT count(*) FROM inbox') === 0, 'the inbox empty');
    expect(count(s, "SELECT count(*) FROM timeline WHERE message_id = 'P-DL-fever'")).toBe(1);
    expect(notified('P-DL')).toHaveLength(1);
  });

  it('already applied when it is redriven (the device resent it once fixed): a duplicate, not applied or paged twice', async () => {
    const s = await start();
    const fix = await deadLetterTheFever(s);
    fix();
    expect((await post(s, FEVER)).status).toBe(202); // the same message again, graded now
    await until(() => notified('P-DL').length === 1 || undefined, 'the resent fever paged');
    const duplicates = s.worker.stats.duplicates;

    expect(await api(s, '/api/dead-letters/redrive', {})).toEqual({ redriven: 1 });
    await until(() => s.worker.stats.duplicates === duplicates + 1 || undefined, 'the redriven copy a duplicate');
    expect(count(s, 'SELECT count(*) FROM inbox')).toBe(0);
    expect(count(s, "SELECT count(*) FROM timeline WHERE message_id = 'P-DL-fever'")).toBe(1);
    expect(count(s, "SELECT count(*) FROM outbox WHERE kind = 'notification' AND patient_id = 'P-DL'")).toBe(1);
    expect(notified('P-DL')).toHaveLength(1);
    expect(await alertKeys(s)).not.toContain('dead-letters');
  });

  it('with no server running: listed and redriven on the database; the server raises the alert as it starts, and grades what was redriven', async () => {
    const s = await start();
    await deadLetterTheFever(s);
    await s.close(); // the bug (the trigger) stays in the database
    server = undefined;

    // Started again on a data directory that holds a dead letter: the banner says so from the start.
    const again = await start();
    expect(await alertKeys(again)).toContain('dead-letters');
    await again.close();
    server = undefined;

    const listed = await crs('dead-letters', 'list', '--json', '--data', dir);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).deadLetters).toEqual([
      expect.objectContaining({ patientId: 'P-DL', messageId: 'P-DL-fever', attempts: 3 }),
    ]);
    // As text, it says where it read them from (pinned by a mutation run, 2026-12-05).
    const text = await crs('dead-letters', 'list', '--data', dir);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^\d+ {2}\S+ {2}patient P-DL {2}message P-DL-fever /);
    expect(text.stderr).toBe(`crs dead-letters: no crs serve is running on ${dir}; read from its database\n`);
    const db = openDataDir(dir);
    db.exec('DROP TRIGGER a_bug'); // the fix
    db.close();
    const redriven = await crs('dead-letters', 'redrive', '--all', '--data', dir);
    expect(redriven.code, redriven.stderr).toBe(0);
    expect(redriven.stdout).toBe(
      `1 dead-lettered message(s) put back in the inbox; no crs serve is running on ${dir}: they are graded when it starts\n`,
    );

    // Nothing left: --all puts none back, and that is no failure (pinned by a mutation run, 2026-12-05).
    const none = await crs('dead-letters', 'redrive', '--all', '--data', dir);
    expect([none.code, none.stderr]).toEqual([0, '']);
    expect(none.stdout).toMatch(/^0 dead-lettered message\(s\) put back in the inbox/);

    const third = await start();
    await until(() => notified('P-DL').length === 1 || undefined, 'the fever paged');
    expect(await alertKeys(third)).not.toContain('dead-letters');
  });

  it('is refused with exit 2 and its usage for an id that is not one it printed, or on AWS (where SQS redrives)', async () => {
    openDataDir(dir).close();
    for (const [args, message] of [
      [['redrive'], 'redrive takes either --all or the ids to redrive'],
      [['redrive', 'P-DL-fever'], 'ID must be a number crs dead-letters list printed (got "P-DL-fever")'],
      [['list', '--backend', 'aws'], 'on AWS the dead letters are on the MessagesDlq queue'],
    ] as const) {
      const r = await crsRefused('dead-letters', ...args, '--data', dir);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`crs dead-letters: ${message}`);
      expect(r.stderr).toContain('usage:');
    }
    // The redrive command names the stack output that holds the queue's ARN (pinned by a mutation run).
    const aws = await crsRefused('dead-letters', 'list', '--backend', 'aws', '--data', dir);
    expect(aws.stderr).toContain('aws sqs start-message-move-task --source-arn <MessagesDlqArn>, a stack output');
  });
});

describe('redriveDeadLetters', () => {
  it('puts a message back keyed by the digest the ingest gave it: a copy the device resent, still waiting, is graded once', async () => {
    const db = openDataDir(dir);
    try {
      const queue = new SqliteQueue(db);
      const at = '2026-12-05T09:00:00.000Z';
      await queue.enqueue([{ message: FEVER, digest: messageDigest(FEVER), receivedAt: at, sender: 'dev' }]);
      // As the worker moves it: the row itself, its attempts and error.
      db.exec(
        `INSERT INTO dead_letter (seq, patient_id, message_id, body, received_at, attempts, error, failed_at)
         SELECT seq, patient_id, message_id, body, received_at, 3, 'Error: x', '${at}' FROM inbox; DELETE FROM inbox;`,
      );
      await queue.enqueue([{ message: FEVER, digest: messageDigest(FEVER), receivedAt: at, sender: 'dev' }]);
      expect(redriveDeadLetters(db, '999')).toBe(0);
      expect(redriveDeadLetters(db)).toBe(1);
      expect(listDeadLetters(db)).toEqual([]);
      expect(db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });
});
