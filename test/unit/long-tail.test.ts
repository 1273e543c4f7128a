// A duplicate is a duplicate however late, and a reused messageId with other content is graded, paged and
// recorded (issue 10's first reproduction, crs-rules 1.1 item 8), through gradePatient on both stores: each reads
// the long tail after the state. On DynamoDB a message that changes no grade waits in the state item until the
// patient's next save puts it in the seen-messages table: it is known in one place or the other at every moment.
import {
  BatchGetItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gradePatient, reusedIds, type GroupResult } from '#app/grade.ts';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { resolveConfig } from '#domain/config.ts';
import { hasSeen } from '#domain/seen.ts';
import { startEmbeddedServer } from '#hosts/embedded/embedded.ts';
import { PassThrough } from 'node:stream';
import type { DeviceMessage } from '#domain/contract.ts';
import { messageDigest } from '#app/digest.ts';
import { VersionConflict, type AuditEvent, type StateStore } from '#ports';
import { DynamoAuditLog, entriesCarried } from '#adapters/aws/dynamo-audit-log.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { decodeStateItem } from '#adapters/aws/state-item.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';
import { until } from '#test/support/until.ts';
import { enrol, msg } from '#test/support/messages.ts';

const resolved = resolveConfig({ dedupeWindow: 16, holdMinutes: 0 });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;

/** Issue 10's reproduction: ICANS 1 as `dup`, ICE 10, 100 other messages (in batches of 10), then the end. */
async function reproduce(store: StateStore, last: DeviceMessage): Promise<GroupResult> {
  await gradePatient(store, CONFIG, 'P-1', [
    enrol('P-1', -60),
    msg('P-1', 1, { neuro: { iceScore: 8 } }, 'dup'),
    msg('P-1', 2, { neuro: { iceScore: 10 } }, 'ice-ok'),
  ]);
  for (let b = 0; b < 10; b++) {
    await gradePatient(
      store,
      CONFIG,
      'P-1',
      Array.from({ length: 10 }, (_, i) => msg('P-1', 3 + b * 10 + i, { vitals: { heartRate: 80 } }, `v${b * 10 + i}`)),
    );
  }
  return gradePatient(store, CONFIG, 'P-1', [last]);
}

const reused = () => msg('P-1', 200, { neuro: { iceScore: 3 } }, 'dup');
const lateCopy = () => msg('P-1', 1, { neuro: { iceScore: 8 } }, 'dup');

function expectReuseGraded(result: GroupResult) {
  expect(result.steps.map((s) => s.kind)).toEqual(['applied']);
  expect(reusedIds(result)).toEqual([{ messageId: 'dup', patientId: 'P-1' }]);
  expect(result.notifications.map((n) => [n.condition, n.fromGrade, n.toGrade, n.teams])).toEqual([
    ['icans', 0, 2, ['hematology', 'neurology', 'radiology']],
  ]);
}

describe('the long tail through gradePatient, SQLite', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-tail-'));
    db = openDataDir(dir);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grades and pages a reused id past the window, and records it in the audit trail', async () => {
    const result = await reproduce(new SqliteStateStore(db), reused());
    expectReuseGraded(result);
    const audit = db.prepare("SELECT entry FROM audit WHERE type = 'message-reused'").pluck().all() as string[];
    expect(audit.map((e) => JSON.parse(e).text)).toEqual([
      expect.stringMatching(/^messageId dup reused with other content \(digest \S+\): graded as a new observation$/),
    ]);
    expect(db.prepare("SELECT count(*) FROM seen_messages WHERE message_id = 'dup'").pluck().get()).toBe(2);
  });

  it('keeps a duplicate a duplicate however late it comes', async () => {
    const result = await reproduce(new SqliteStateStore(db), lateCopy());
    expect(result.steps.map((s) => s.kind)).toEqual(['duplicate']);
    expect(result.notifications).toEqual([]);
  });

  describe('pinned by a mutation run', () => {
    it('keeps a late copy of either content of a reused id a duplicate, past the window', async () => {
      const store = new SqliteStateStore(db);
      expectReuseGraded(await reproduce(store, reused()));
      // 80 more messages: both contents of `dup` are now only in the long tail (a window of 16 keeps fewer than 80).
      await gradePatient(
        store,
        CONFIG,
        'P-1',
        Array.from({ length: 80 }, (_, i) => msg('P-1', 201 + i, { vitals: { heartRate: 80 } }, `w${i}`)),
      );
      expect(hasSeen((await store.load('P-1'))!.state.seen, 'dup')).toBe(false);
      for (const copy of [lateCopy(), reused()]) {
        const result = await gradePatient(store, CONFIG, 'P-1', [copy]);
        expect(result.steps.map((s) => s.kind)).toEqual(['duplicate']);
        expect(result.notifications).toEqual([]);
      }
    });

    it('keeps both assessments of a reused id in the trail when they read the same (the digest tells them apart)', async () => {
      // Same id, same instant, other content that grades the same: two entries alike but for the message's digest.
      const a = msg('P-1', 1, { vitals: { heartRate: 80 } }, 'same');
      const b = msg('P-1', 1, { vitals: { heartRate: 81 } }, 'same');
      const result = await gradePatient(new SqliteStateStore(db), CONFIG, 'P-1', [enrol('P-1', -60), a, b]);
      expect(reusedIds(result)).toEqual([{ messageId: 'same', patientId: 'P-1' }]);
      const entries = (db.prepare('SELECT entry FROM audit').pluck().all() as string[]).map(
        (e) => JSON.parse(e) as AuditEvent,
      );
      const assessments = entries.filter((e) => e.type === 'assessment' && e.details.messageId === 'same');
      expect(assessments.map((e) => e.details.digest)).toEqual([messageDigest(a), messageDigest(b)]);
      // The reuse is recorded with the content it came with, as data, not only in its text.
      expect(entries.filter((e) => e.type === 'message-reused').map((e) => e.details)).toEqual([
        { messageId: 'same', digest: messageDigest(b) },
      ]);
    });
  });
});

const LOCAL_TOKEN = 'long-tail-test-token-of-32-characters';

describe('a reused id on crs serve', () => {
  it('is said on standard error by id only and counted in /api/health', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-tail-serve-'));
    const logs: string[] = [];
    const server = await startEmbeddedServer({
      dataDir: dir,
      config: CONFIG,
      port: 0,
      localToken: LOCAL_TOKEN,
      pageStream: new PassThrough(),
      log: (l) => logs.push(l),
    });
    try {
      const post = (m: DeviceMessage) =>
        fetch(`${server.url}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${LOCAL_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify(m),
        });
      for (const m of [
        enrol('P-9', -60),
        msg('P-9', 1, { neuro: { iceScore: 8 } }, 'dup'),
        msg('P-9', 2, { neuro: { iceScore: 3 } }, 'dup'),
      ])
        expect((await post(m)).status).toBe(202);
      const key = new URL(server.boardUrl).searchParams.get('key')!;
      await until(() => logs.some((l) => l.includes('reused')), 'the reuse logged');
      expect(logs.filter((l) => l.includes('reused'))).toEqual([
        'grading: messageId dup of patient P-9 reused with other content; graded as a new observation',
      ]);
      const health = (await (
        await fetch(`${server.url}/api/health`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as { reusedIds: number };
      expect(health.reusedIds).toBe(1);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the long tail through gradePatient, DynamoDB', () => {
  const ddb = new FakeDynamo(STATE_STORE_TABLES);
  afterAll(() => ddb.restore());
  beforeEach(() => ddb.reset());
  const store = () => stateStoreOn(ddb, Date.parse('2026-01-10T09:00:00Z'));
  const requests = () => ({
    stateReads: ddb.mock.commandCalls(GetItemCommand).length,
    seenReads: ddb.mock.commandCalls(BatchGetItemCommand).length,
    transactions: ddb.mock.commandCalls(TransactWriteItemsCommand).length,
    puts: ddb.mock.commandCalls(PutItemCommand).length,
  });
  const pendingIds = () => {
    const item = ddb.itemAt('state', { pk: { S: 'P-1' }, sk: { S: 'state' } })!;
    return decodeStateItem(item.s!.B!).pending.map((p) => p.messageId);
  };
  /** P-1's trail as `crs audit export` reads it (the audit table, seen messages and pending entries). */
  const trailOf = async () => {
    const out: AuditEvent[] = [];
    const log = new DynamoAuditLog(ddb.client(), 'audit', () => 0, { seenTable: 'seen', stateTable: 'state' });
    for await (const e of log.forPatient('P-1')) out.push(e);
    return out;
  };

  it('grades and pages a reused id past the window, learning the old digest from the seen-messages table', async () => {
    const s = store();
    await reproduce(s, msg('P-1', 150, { vitals: { heartRate: 81 } }, 'v-last'));
    const before = requests();
    const result = await gradePatient(s, CONFIG, 'P-1', [reused()]);
    expectReuseGraded(result);
    // One read of each table, `v-last` (pending) put in the seen-messages table, then the grade change's transaction.
    expect(requests()).toEqual({
      stateReads: before.stateReads + 1,
      seenReads: before.seenReads + 1,
      transactions: before.transactions + 1,
      puts: before.puts + 1,
    });
    const item = ddb.items('seen').find((i) => i.messageId?.S === 'dup')!;
    expect(item.digests!.SS).toHaveLength(2);
    expect(ddb.items('audit').filter((i) => JSON.parse(i.entry?.S ?? '{}').type === 'message-reused')).toHaveLength(1);
  });

  it('keeps a duplicate a duplicate however late it comes, writing nothing', async () => {
    const result = await reproduce(store(), lateCopy());
    expect(result.steps.map((s) => s.kind)).toEqual(['duplicate']);
    expect(result.notifications).toEqual([]);
  });

  it("keeps a first-time message's assessment in its seen item, and reads the trail from both tables in order", async () => {
    const now = Date.parse('2026-01-10T09:00:00Z');
    await reproduce(stateStoreOn(ddb, now), msg('P-1', 150, { vitals: { heartRate: 81 } }, 'v-last'));
    await gradePatient(stateStoreOn(ddb, now), CONFIG, 'P-1', [reused()]);
    const assessments = (items: Record<string, { S?: string }>[]) =>
      items.filter((i) => JSON.parse(i.entry?.S ?? '{}').type === 'assessment');
    // One item a message besides the state: the 104 first-time messages' assessments ride in their seen items;
    // the reuse's (an update of its seen item may only add the digest) is in the audit table.
    const carried = (i: Record<string, AttributeValue>) => entriesCarried('P-1', i.messageId!.S!, i.entries);
    expect(ddb.items('seen').filter((i) => carried(i).length === 1)).toHaveLength(104);
    expect(assessments(ddb.items('audit') as never).map((i) => JSON.parse(i.entry!.S!).details.messageId)).toEqual([
      'dup',
    ]);
    const trail: AuditEvent[] = [];
    for await (const e of new DynamoAuditLog(ddb.client(), 'audit', () => now, {
      seenTable: 'seen',
      stateTable: 'state',
    }).forPatient('P-1'))
      trail.push(e);
    const ids = trail.filter((e) => e.type === 'assessment').map((e) => e.details.messageId);
    expect(ids).toHaveLength(105); // the enrolment first
    expect(ids.slice(1)).toEqual(['dup', 'ice-ok', ...Array.from({ length: 100 }, (_, i) => `v${i}`), 'v-last', 'dup']);
    // Oldest first, and each grade change right after the assessment that caused it (same instant, written after).
    expect(trail.map((e) => e.at)).toEqual(trail.map((e) => e.at).sort());
    const reuse = trail.findIndex((e) => e.type === 'message-reused');
    expect(trail[reuse - 1]).toMatchObject({ type: 'assessment', details: { messageId: 'dup' } });
    expect(trail.slice(reuse + 1).map((e) => e.type)).toEqual(['notification']); // ICANS 0 -> 2
    // Reading it without the seen-messages and state tables would miss most assessments: refused.
    await expect(async () => {
      for await (const _ of new DynamoAuditLog(ddb.client(), 'audit').forPatient('P-1'));
    }).rejects.toThrow(/needs the seen-messages and state tables/);
  });

  it('costs a read of each table and one write per patient batch: a transaction for a grade change, else a put', async () => {
    await gradePatient(store(), CONFIG, 'P-2', [enrol('P-2', -60), msg('P-2', 1, { vitals: { temperatureC: 38.9 } })]);
    // The first time as every time: the restore the state table records (none here; 2026-12-07) is read with the
    // seen messages, in the same BatchGetItem.
    expect(requests()).toEqual({ stateReads: 1, seenReads: 1, transactions: 1, puts: 0 }); // CRS 1 paged
    ddb.mock.resetHistory();
    await gradePatient(store(), CONFIG, 'P-2', [msg('P-2', 2, { vitals: { temperatureC: 38.7 } })]);
    expect(requests()).toEqual({ stateReads: 1, seenReads: 1, transactions: 0, puts: 1 }); // no grade change
    ddb.mock.resetHistory();
    await gradePatient(store(), CONFIG, 'P-2', [msg('P-2', 3, { vitals: { temperatureC: 38.6 } })]);
    // The message before goes to the seen-messages table, then the state with this one pending.
    expect(requests()).toEqual({ stateReads: 1, seenReads: 1, transactions: 0, puts: 2 });
  });

  it('keeps a message that changed no grade pending in the state item until the next save puts it in the seen-messages table', async () => {
    await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
    const quiet = (n: number, id = `q${n}`) => msg('P-1', n, { vitals: { heartRate: 80 + n } }, id);
    await gradePatient(store(), CONFIG, 'P-1', [quiet(1)]);
    expect(pendingIds()).toEqual(['q1']);
    expect(ddb.items('seen').map((i) => i.messageId!.S)).not.toContain('q1');
    // Sent again now, or redriven from the dead-letter queue after 30 later messages: a duplicate both times.
    expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(1)])).steps.map((s) => s.kind)).toEqual(['duplicate']);
    for (let n = 2; n <= 31; n++) await gradePatient(store(), CONFIG, 'P-1', [quiet(n)]);
    expect(pendingIds()).toEqual(['q31']);
    const q1 = ddb.items('seen').find((i) => i.messageId!.S === 'q1')!;
    expect(entriesCarried('P-1', 'q1', q1.entries)).toHaveLength(1); // its assessment, carried from the state item
    expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(1)])).steps.map((s) => s.kind)).toEqual(['duplicate']);
  });

  it('loses and doubles nothing when a save fails between putting the pending messages and writing the state', async () => {
    const enrolment = enrol('P-1', -60);
    await gradePatient(store(), CONFIG, 'P-1', [enrolment]);
    const quiet = (n: number) => msg('P-1', n, { vitals: { heartRate: 80 + n } }, `q${n}`);
    await gradePatient(store(), CONFIG, 'P-1', [quiet(1)]);
    // The state put fails once (a crash or a throttle after `q1` went to the seen-messages table).
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
    const client = ddb.client();
    const send = client.send.bind(client) as (c: unknown) => Promise<unknown>;
    let failed = false;
    client.send = ((command: unknown) => {
      if (!failed && command instanceof PutItemCommand && command.input.TableName === 'state') {
        failed = true;
        return Promise.reject(throttled);
      }
      return send(command);
    }) as typeof client.send;
    const failing = new DynamoStateStore(client, 'state', () => Date.parse('2026-01-10T09:00:00Z'), 'audit', 'seen');
    await expect(gradePatient(failing, CONFIG, 'P-1', [quiet(2)])).rejects.toBe(throttled);
    expect(ddb.items('seen').map((i) => i.messageId!.S)).toContain('q1');
    expect(pendingIds()).toEqual(['q1']); // in both places for now
    // The delivery again (SQS redelivers it), and once more (a duplicate): q2 applied once, q1 once.
    expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(2)])).steps.map((s) => s.kind)).toEqual(['applied']);
    expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(2)])).steps.map((s) => s.kind)).toEqual(['duplicate']);
    expect(pendingIds()).toEqual(['q2']);
    expect(ddb.items('seen').filter((i) => i.messageId!.S === 'q1')).toHaveLength(1);
    const trail = await trailOf();
    expect(trail.filter((e) => e.type === 'assessment').map((e) => e.details.messageId)).toEqual([
      enrolment.messageId,
      'q1',
      'q2',
    ]);
  });

  describe('pinned by a mutation run', () => {
    it('exports an assessment once while it is both pending in the state item and in the seen-messages table', async () => {
      const enrolment = enrol('P-1', -60);
      await gradePatient(store(), CONFIG, 'P-1', [enrolment]);
      const quiet = (n: number) => msg('P-1', n, { vitals: { heartRate: 80 + n } }, `q${n}`);
      await gradePatient(store(), CONFIG, 'P-1', [quiet(1)]);
      // The save after it puts q1 in the seen-messages table, then fails to replace the state item: q1 in both.
      const client = ddb.client();
      const send = client.send.bind(client) as (c: unknown) => Promise<unknown>;
      client.send = ((command: unknown) =>
        command instanceof PutItemCommand && command.input.TableName === 'state'
          ? Promise.reject(
              Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }),
            )
          : send(command)) as typeof client.send;
      const failing = new DynamoStateStore(client, 'state', () => Date.parse('2026-01-10T09:00:00Z'), 'audit', 'seen');
      await expect(gradePatient(failing, CONFIG, 'P-1', [quiet(2)])).rejects.toThrow('Rate exceeded');
      expect(pendingIds()).toEqual(['q1']);
      expect(ddb.items('seen').map((i) => i.messageId!.S)).toContain('q1');
      const trail = await trailOf();
      expect(trail.filter((e) => e.type === 'assessment').map((e) => e.details.messageId)).toEqual([
        enrolment.messageId,
        'q1',
      ]);
    });

    it('exports the assessment of a first-time message before the grade change it caused, and a pending one before what was written after it at its instant', async () => {
      const trail = trailOf;
      // CRS 1: the assessment rides in the message's seen item, the notification is in the audit table.
      await gradePatient(store(), CONFIG, 'P-1', [
        enrol('P-1', -60),
        msg('P-1', 1, { vitals: { temperatureC: 38.9 } }, 'fever'),
      ]);
      const first = await trail();
      const notification = first.findIndex((e) => e.type === 'notification');
      expect(first[notification - 1]).toMatchObject({ type: 'assessment', details: { messageId: 'fever' } });
      expect(first[notification]!.at).toBe(first[notification - 1]!.at);
      // A message that changed no grade, pending in the state item; then an entry of its very instant, written after.
      await gradePatient(store(), CONFIG, 'P-1', [msg('P-1', 2, { vitals: { temperatureC: 38.7 } }, 'quiet')]);
      expect(pendingIds()).toEqual(['quiet']);
      const at = (await trail()).find((e) => e.details.messageId === 'quiet')!.at;
      await new DynamoAuditLog(ddb.client(), 'audit').append([
        { at, patientId: 'P-1', type: 'silence', text: 'written after', details: { silenceId: 'sil_1' } },
      ]);
      expect((await trail()).slice(-2).map((e) => e.type)).toEqual(['assessment', 'silence']);
    });

    it('adds the digest of a reused id still pending in the state item at once: one transaction, no refused put', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      await gradePatient(store(), CONFIG, 'P-1', [msg('P-1', 1, { neuro: { iceScore: 10 } }, 'dup')]);
      expect(pendingIds()).toEqual(['dup']);
      ddb.mock.resetHistory();
      expectReuseGraded(await gradePatient(store(), CONFIG, 'P-1', [reused()]));
      // `dup` (pending) put in the seen-messages table, then its new digest added in the grade change's transaction.
      expect(requests()).toEqual({ stateReads: 1, seenReads: 1, transactions: 1, puts: 1 });
      expect(ddb.items('seen').find((i) => i.messageId?.S === 'dup')!.digests!.SS).toHaveLength(2);
    });

    it('reads the long tail again after a version conflict: a message another delivery applied meanwhile stays a duplicate', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      const quiet = (n: number) => msg('P-1', n, { vitals: { heartRate: 80 + n } }, `q${n}`);
      const mine = store();
      let raced = false;
      const racing: StateStore = {
        load: (patientId) => mine.load(patientId),
        priorDigests: (patientId, ids) => mine.priorDigests(patientId, ids),
        save: async (...args) => {
          if (!raced) {
            raced = true;
            // Between this delivery's read and write, another delivery of q1 commits it, and the patient's next
            // message moves it from the state item to the seen-messages table.
            await gradePatient(store(), CONFIG, 'P-1', [quiet(1)]);
            await gradePatient(store(), CONFIG, 'P-1', [quiet(2)]);
          }
          return mine.save(...args);
        },
      };
      // q1 is then in neither the reloaded state item nor what the first read of the long tail found.
      const result = await gradePatient(racing, CONFIG, 'P-1', [quiet(1)]);
      expect(result.steps.map((s) => s.kind)).toEqual(['duplicate']);
      expect(pendingIds()).toEqual(['q2']);
    });

    it('fails the save, writing no state, when a pending message cannot be put in the seen-messages table', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      const quiet = (n: number) => msg('P-1', n, { vitals: { heartRate: 80 + n } }, `q${n}`);
      await gradePatient(store(), CONFIG, 'P-1', [quiet(1)]);
      // Throttled while putting q1 there: a state written now without q1 pending would hold it in neither place.
      const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
      const client = ddb.client();
      const send = client.send.bind(client) as (c: unknown) => Promise<unknown>;
      client.send = ((command: unknown) =>
        command instanceof PutItemCommand && command.input.TableName === 'seen'
          ? Promise.reject(throttled)
          : send(command)) as typeof client.send;
      const failing = new DynamoStateStore(client, 'state', () => Date.parse('2026-01-10T09:00:00Z'), 'audit', 'seen');
      await expect(gradePatient(failing, CONFIG, 'P-1', [quiet(2)])).rejects.toBe(throttled);
      expect(pendingIds()).toEqual(['q1']);
      expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(1)])).steps.map((s) => s.kind)).toEqual(['duplicate']);
    });

    it('never takes back a digest added since, when a store that read an older version puts the pending messages again', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      await gradePatient(store(), CONFIG, 'P-1', [msg('P-1', 1, { neuro: { iceScore: 10 } }, 'dup')]);
      const stale = store();
      const read = (await stale.load('P-1'))!;
      expect(pendingIds()).toEqual(['dup']);
      expectReuseGraded(await gradePatient(store(), CONFIG, 'P-1', [reused()])); // `dup` put, its new digest added
      // The stale store's save puts `dup` again before its state put fails on the version.
      await expect(stale.save('P-1', read.state, read.version, [])).rejects.toBeInstanceOf(VersionConflict);
      expect(ddb.items('seen').find((i) => i.messageId?.S === 'dup')!.digests!.SS).toHaveLength(2);
      expect((await gradePatient(store(), CONFIG, 'P-1', [reused()])).steps.map((s) => s.kind)).toEqual(['duplicate']);
    });

    it('records a messageId reused within one batch in the audit table, though no grade changed', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      const result = await gradePatient(store(), CONFIG, 'P-1', [
        msg('P-1', 1, { vitals: { heartRate: 81 } }, 'twice'),
        msg('P-1', 2, { vitals: { heartRate: 82 } }, 'twice'),
      ]);
      expect(reusedIds(result)).toEqual([{ messageId: 'twice', patientId: 'P-1' }]);
      expect(result.notifications).toEqual([]);
      expect((await trailOf()).filter((e) => e.type === 'message-reused').map((e) => e.details.messageId)).toEqual([
        'twice',
      ]);
    });

    it('keeps every message of a quiet save of more than 64 (here 99) a duplicate while it is pending', async () => {
      await gradePatient(store(), CONFIG, 'P-1', [enrol('P-1', -60)]);
      const quiet = (n: number) => msg('P-1', n, { vitals: { heartRate: 60 + n } }, `q${n}`);
      const all = Array.from({ length: 99 }, (_, n) => quiet(n + 1));
      expect((await gradePatient(store(), CONFIG, 'P-1', all)).notifications).toEqual([]);
      expect(pendingIds()).toHaveLength(99);
      expect((await gradePatient(store(), CONFIG, 'P-1', [quiet(1)])).steps.map((s) => s.kind)).toEqual(['duplicate']);
    });
  });
});
