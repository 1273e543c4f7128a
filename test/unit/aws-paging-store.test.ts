// The DynamoDB page store and audit log against a table model (test/support/fake-dynamo.ts): revision-conditional,
// all-or-nothing page writes; a patient's pages read consistently from its partition; pending pages nominated by
// the index and read back; silences; the stale-feed alerts in force; an append-only audit trail exported in order.
// And the pager over them behaves exactly as over the in-memory stores (the reference semantics).
import { randomBytes } from 'node:crypto';
import {
  BatchGetItemCommand,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import {
  DEFAULT_PAGING,
  pagesForNotification,
  type Page,
  type PageableNotification,
  type Silence,
} from '#domain/paging.ts';
import {
  RecordRefused,
  REFUSED_DELAY_MS,
  REFUSED_TRIES,
  VersionConflict,
  type AuditEvent,
  type AuditLog,
  type PageMessage,
  type PageStore,
  type ParkedSend,
  type SecurityEvent,
} from '#ports';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { dynamoPager } from '#adapters/aws/dynamo-pager.ts';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import {
  DynamoPageStore,
  DynamoParkedRecords,
  DynamoParkedSends,
  UNSENT_GRACE_MS,
} from '#adapters/aws/dynamo-page-store.ts';
import { patientOfPageId } from '#adapters/aws/table-layout.ts';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';
import { iso } from '#domain/time.ts';

const ddb = new FakeDynamo(PAGING_TABLES);
afterAll(() => ddb.restore());

const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;
let now = T;
beforeEach(() => {
  ddb.reset();
  ddb.pageSize = 1000;
  now = T;
});

const store = () => new DynamoPageStore(ddb.client(), 'pages', () => now, 'audit');
const auditLog = () => new DynamoAuditLog(ddb.client(), 'audit', () => now, { seenTable: 'seen', stateTable: 'state' });
/** A pager over the DynamoDB stores, and what it sent ("<patient> <role>"). */
function recordingPager() {
  const sent: string[] = [];
  const pager = new Pager({
    pages: store(),
    sender: { send: async (m: PageMessage) => void sent.push(`${m.page.patientId} ${m.role}`) },
    audit: auditLog(),
    config: DEFAULT_PAGING,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://x/ack/',
  });
  return { pager, sent };
}

const grade = (
  toGrade: number,
  id: string,
  teams: PageableNotification['teams'] = ['hematology', 'icu'],
  patientId = 'P-1',
): PageableNotification => ({
  notificationId: `crs|${patientId}|${id}`,
  patientId,
  condition: 'crs',
  kind: 'escalation',
  // Its pages carry it (the board's "from N" past the retention): kept as stored.
  fromGrade: toGrade - 1,
  toGrade,
  teams,
  summary: `PROVISIONAL CRS grade ${toGrade}`,
});

const opened = (n: PageableNotification, at = T) => pagesForNotification(n, [], [], at, DEFAULT_PAGING).pages;

/** A send SNS refused 3 times, as parked. */
const PARKED_SEND = {
  pageId: 'crs|P-1|#3|icu',
  patientId: 'P-1',
  notificationId: 'crs|P-1|#3',
  team: 'icu',
  level: 0,
  round: 0,
  reason: 'SNS refused the page (InvalidParameterException)',
  attempts: 3,
  parkedAt: '2026-11-26T10:01:00Z',
};

/** An outbox record the notifier parked (its image as the stream gave it). */
const PARKED_RECORD = {
  key: 'P-1#outbox#crs|P-1|#4',
  patientId: 'P-1',
  id: 'crs|P-1|#4',
  reason: 'paging it failed (TypeError)',
  parkedAt: '2026-11-26T10:00:00Z',
  image: '{"pk":{"S":"P-1"}}',
};

describe('DynamoPageStore', () => {
  it("keeps each page in its patient's partition, and writes a new revision only over the one read", async () => {
    const s = store();
    const [heme] = opened(grade(3, 'm1'));
    expect(patientOfPageId(heme!.pageId)).toBe('P-1');
    await s.save([heme!]);
    const stored = (await s.get(heme!.pageId))!;
    expect(stored).toEqual({ ...heme, rev: 1 });
    expect(stored.fromGrade).toBe(2);
    expect(ddb.items('pages')[0]).toMatchObject({
      pk: { S: 'P-1' },
      sk: { S: `page#${heme!.pageId}` },
      status: { S: 'open' },
    });
    await expect(s.save([heme!])).rejects.toBeInstanceOf(VersionConflict); // a new page that exists already
    await s.save([{ ...stored, delivered: true }]);
    await expect(s.save([{ ...stored, status: 'acknowledged' }])).rejects.toBeInstanceOf(VersionConflict); // rev 1 is gone
    expect((await s.get(heme!.pageId))!).toMatchObject({ rev: 2, delivered: true, status: 'open' });
    expect(await s.get('no|such')).toBeUndefined();
  });

  it('writes several pages all or nothing, naming the page that conflicted', async () => {
    const s = store();
    const pages = opened(grade(3, 'm1'));
    await s.save([pages[1]!]);
    const err = await s.save(pages).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflict);
    expect((err as VersionConflict).patientId).toBe(pages[1]!.pageId);
    expect(await s.get(pages[0]!.pageId)).toBeUndefined();
  });

  it('writes a page and its audit entries in one transaction: neither when the page conflicts, an entry stored already left out', async () => {
    const s = store();
    const [heme] = opened(grade(3, 'm1'));
    const entry = (text: string): AuditEvent => ({
      at: iso(T),
      patientId: 'P-1',
      type: 'page',
      text,
      details: { pageId: heme!.pageId },
    });
    const trail = () => ddb.items('audit').map((i) => JSON.parse(i.entry!.S!).text);
    await s.save([heme!], [entry('opened')]);
    expect(ddb.mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(1);
    expect(trail()).toEqual(['opened']);
    // A save refused by the page's revision writes no entry.
    await expect(s.save([heme!], [entry('opened again')])).rejects.toBeInstanceOf(VersionConflict);
    expect(trail()).toEqual(['opened']);
    // An entry stored before (the same entry, by content) never fails the page's write, and is kept once.
    await s.save([{ ...heme!, rev: 1, delivered: true }], [entry('opened'), entry('sent')]);
    expect((await s.get(heme!.pageId))!).toMatchObject({ rev: 2, delivered: true });
    expect(trail().sort()).toEqual(['opened', 'sent']);
    // A store without the audit table refuses entries rather than drop them.
    await expect(
      new DynamoPageStore(ddb.client(), 'pages', () => now).save([{ ...heme!, rev: 2 }], [entry('x')]),
    ).rejects.toThrow(/no audit table/);
  });

  it("reads a patient's open pages and its pages newest first, consistently, across result pages", async () => {
    ddb.pageSize = 2;
    const s = store();
    await s.save(opened(grade(2, 'm1'), min(0)).map((p) => ({ ...p, delivered: true })));
    const t = pagesForNotification(grade(3, 'm2'), (await s.openPages('P-1')).pages, [], min(5), DEFAULT_PAGING);
    await s.save(t.pages);
    await s.save(opened(grade(1, 'x', ['hematology'], 'P-2')));
    const open = (await s.openPages('P-1')).pages;
    expect(open.map((p) => p.pageId).sort()).toEqual(['crs|P-1|m2|hematology', 'crs|P-1|m2|icu']);
    expect((await s.patientPages('P-1', 3)).pages.map((p) => `${p.pageId} ${p.status}`)).toEqual([
      expect.stringMatching(/^crs\|P-1\|m2\|/),
      expect.stringMatching(/^crs\|P-1\|m2\|/),
      expect.stringMatching(/^crs\|P-1\|m1\|.* superseded$/),
    ]);
    // Each superseded page names its team's page of the newer grade, read back as stored (2026-12-06).
    for (const team of ['hematology', 'icu'])
      expect((await s.get(`crs|P-1|m1|${team}`))!.supersededBy).toBe(`crs|P-1|m2|${team}`);
    for (const call of ddb.mock.commandCalls(QueryCommand)) expect(call.args[0].input.ConsistentRead).toBe(true);
  });

  it('nominates pending pages from the index and reads them back: due, held, and unsent once past the grace time', async () => {
    const s = store();
    const [due, held, unsent, fresh] = [
      { ...opened(grade(3, 'a'), min(0))[0]!, delivered: true },
      { ...opened(grade(2, 'b'), min(0))[0]!, delivered: true, heldBy: 's1', dueAt: null },
      opened(grade(2, 'c'), min(0))[0]!,
      opened(grade(2, 'd'), min(0))[0]!,
    ];
    now = min(0);
    await s.save([due!, held!, unsent!]);
    now = min(5) - 1000; // stored just now: its sender is still sending it
    await s.save([fresh!]);
    const acked: Page = { ...opened(grade(3, 'e'), min(0))[0]!, delivered: true, status: 'acknowledged', dueAt: null };
    await s.save([acked]);
    const pending = (await s.pendingPages(min(5))).pages;
    expect(pending.map((p) => p.pageId).sort()).toEqual([due!.pageId, held!.pageId, unsent!.pageId].sort());
    expect(ddb.mock.commandCalls(BatchGetItemCommand)[0]!.args[0].input.RequestItems!.pages!.ConsistentRead).toBe(true);
    expect((await s.pendingPages(min(5) - 1000 + UNSENT_GRACE_MS)).pages.map((p) => p.pageId)).toContain(fresh!.pageId);
    // Not due yet: the next level is due at 5 minutes (grade 3).
    expect((await s.pendingPages(min(4))).pages.map((p) => p.pageId)).not.toContain(due!.pageId);
    // A level another tick stored just now and is sending: left to it, even when it is due (a catch-up).
    now = min(20);
    await s.save([{ ...(await s.get(due!.pageId))!, level: 1, delivered: false, dueAt: min(10) }]);
    expect((await s.pendingPages(min(20) + 1000)).pages.map((p) => p.pageId)).not.toContain(due!.pageId);
    expect((await s.pendingPages(min(20) + UNSENT_GRACE_MS)).pages.map((p) => p.pageId)).toContain(due!.pageId);
  });

  it("gives a patient's unsent first sends oldest first, and holds back those a send another pager is making would be overtaken by", async () => {
    const s = store();
    now = min(0);
    const [a] = opened(grade(2, 'a', ['hematology']), min(0));
    const [b] = opened(grade(2, 'b', ['hematology'], 'P-2'), min(0));
    const [d] = opened(grade(1, 'd', ['icu'], 'P-2'), min(0) + 1);
    await s.save([a!, b!, d!, { ...opened(grade(3, 'sent', ['icu']), min(0))[0]!, delivered: true }]);
    now = min(1);
    // The next grade supersedes a before it was ever sent: a is owed its send, as information, before c.
    const t = pagesForNotification(
      grade(3, 'c', ['hematology']),
      (await s.openPages('P-1')).pages,
      [],
      min(1),
      DEFAULT_PAGING,
    );
    await s.save(t.pages);
    expect((await s.unsentPages('P-1')).pages.map((p) => `${p.pageId} ${p.status}`)).toEqual([
      'crs|P-1|a|hematology info',
      'crs|P-1|c|hematology open',
    ]);
    expect((await s.unsentPages('P-3')).pages).toEqual([]);
    // P-2's b is stored again just now (its pager is sending it); d, triggered after it, was stored long before.
    now = min(2) - UNSENT_GRACE_MS + 1000;
    await s.save([{ ...(await s.get(b!.pageId))!, summary: 'touched' }]);
    const pending = (await s.pendingPages(min(2))).pages.map((p) => p.pageId);
    expect(pending).toContain('crs|P-1|a|hematology');
    expect(pending).toContain('crs|P-1|c|hematology');
    // P-2: b is being sent (stored just now), d was triggered after it: held back with it, not to overtake it.
    expect(pending).not.toContain(b!.pageId);
    expect(pending).not.toContain(d!.pageId);
    expect((await s.pendingPages(min(2) + UNSENT_GRACE_MS)).pages.map((p) => p.pageId)).toEqual(
      expect.arrayContaining([b!.pageId, d!.pageId]),
    );
  });

  it('keeps parked sends and parked outbox records side by side in the #parked partition, each listed and removed on its own', async () => {
    const sends = new DynamoParkedSends(ddb.client(), 'pages');
    const records = new DynamoParkedRecords(ddb.client(), 'pages');
    const send = PARKED_SEND;
    const record = PARKED_RECORD;
    await sends.park(send);
    await records.park(record);
    await records.park({ ...record, key: 'P-2#outbox#crs|P-2|#1', patientId: 'P-2', parkedAt: '2026-11-26T09:00:00Z' });
    expect(await sends.list()).toEqual([send]);
    expect((await records.list()).map((r) => r.key)).toEqual(['P-2#outbox#crs|P-2|#1', record.key]); // oldest first
    await records.park({ ...record, reason: 'paging it failed (RangeError)' }); // parked again: replaced
    await records.remove('P-2#outbox#crs|P-2|#1');
    expect(await records.list()).toEqual([{ ...record, reason: 'paging it failed (RangeError)' }]);
    await sends.remove(send.pageId, 0, 0);
    expect(await sends.list()).toEqual([]);
    expect(await records.list()).toHaveLength(1);
  });

  it('follows unprocessed keys of a batch read', async () => {
    const s = store();
    for (let i = 0; i < 5; i++) await s.save([{ ...opened(grade(3, `m${i}`, ['icu']))[0]!, delivered: true }]);
    ddb.pageSize = 2;
    expect((await s.pendingPages(min(10))).pages).toHaveLength(5);
  });

  it('keeps silences: those in force, and each by id until 30 days after it ends', async () => {
    const s = store();
    const a: Silence = {
      silenceId: 's-a',
      scope: { patientId: 'P-1' },
      from: min(0),
      until: min(30),
      createdBy: 'Nurse B',
      reason: 'transport',
    };
    const b: Silence = {
      silenceId: 's-b',
      scope: { team: 'icu' },
      from: min(0),
      until: min(10),
      createdBy: 'Dr C',
      reason: 'drill',
    };
    await s.saveSilence(a);
    await s.saveSilence(b);
    expect((await s.silences(min(5))).silences.map((x) => x.silenceId).sort()).toEqual(['s-a', 's-b']);
    expect((await s.silences(min(15))).silences.map((x) => x.silenceId)).toEqual(['s-a']);
    await s.saveSilence({ ...a, endedAt: min(12), endedBy: 'Nurse B' });
    expect((await s.silences(min(13))).silences).toEqual([]);
    // Asked about a time before it was ended (a late tick deciding a past step): in force then.
    expect((await s.silences(min(11))).silences.map((x) => x.silenceId)).toEqual(['s-a']);
    expect(await s.getSilence('s-a')).toEqual({ ...a, endedAt: min(12), endedBy: 'Nurse B' });
    expect((await s.allSilences()).silences.map((x) => x.silenceId).sort()).toEqual(['s-a', 's-b']);
    const item = ddb.items('pages').find((i) => i.sk?.S === 's-a')!;
    expect(Number(item.expiresAt!.N)).toBe(min(12) / 1000 + 30 * 86_400);
    // One that cannot be read is named, with why, beside the others (until 2026-12-05 it failed the whole list), and
    // with its patient: an attribute written with it, apart from the JSON (a team's silence has none).
    expect(item.patientId).toEqual({ S: 'P-1' });
    expect(ddb.items('pages').find((i) => i.sk?.S === 's-b')!.patientId).toBeUndefined();
    item.silence = { S: '{"silenceId":' };
    expect(await s.allSilences()).toEqual({
      silences: [b],
      unreadable: [{ unreadable: true, silenceId: 's-a', reason: 'not JSON', patientId: 'P-1' }],
    });
    await expect(s.getSilence('s-a')).rejects.toMatchObject({ silenceId: 's-a', patientId: 'P-1' });
    // An item written before 2026-12-05 has no such attribute: nothing but its JSON, which cannot be read, says.
    delete item.patientId;
    expect((await s.allSilences()).unreadable).toEqual([{ unreadable: true, silenceId: 's-a', reason: 'not JSON' }]);
    await expect(s.getSilence('s-a')).rejects.toMatchObject({ silenceId: 's-a', patientId: undefined });
  });

  it("keeps a short acknowledge link's claims in the #ack-links partition, read consistently, until 30 days after it expires", async () => {
    const s = store();
    const link = { pageId: 'crs|P-1|m3|icu', role: 'ICU registrar', expiresAt: min(720) };
    await s.saveAckLink('k1', link);
    await s.saveAckLink('k1', link); // a retried send stores the same again
    expect(await s.ackLink('k1')).toEqual(link);
    expect(await s.ackLink('k2')).toBeUndefined();
    const items = ddb.items('pages').filter((i) => i.pk?.S === '#ack-links');
    expect(items.map((i) => i.sk?.S)).toEqual(['k1']);
    expect(Number(items[0]!.expiresAt!.N)).toBe(min(720) / 1000 + 30 * 86_400);
    expect(ddb.mock.commandCalls(GetItemCommand).at(-1)!.args[0].input.ConsistentRead).toBe(true);
  });

  it('keeps the stale-feed alerts in force', async () => {
    const s = store();
    await s.setStaleFeedAlert('P-1', 'stale-feed|P-1|5', 5);
    await s.setStaleFeedAlert('P-2', 'stale-feed|P-2|7', 7);
    await s.clearStaleFeedAlert('P-2');
    expect(await s.staleFeedAlerts()).toEqual({
      alerts: new Map([['P-1', { alertId: 'stale-feed|P-1|5', since: 5 }]]),
      unreadable: [],
    });
  });
});

describe('DynamoAuditLog', () => {
  const entry = (at: string, type: AuditEvent['type'], id: string, patientId = 'P-1'): AuditEvent => ({
    at,
    patientId,
    type,
    text: `${type} ${id}`,
    details: { pageId: id },
  });

  it('stores an entry once however often it is appended, with a condition that never replaces one', async () => {
    const log = auditLog();
    const e = entry('2026-11-26T10:00:00Z', 'page', 'p1');
    await log.append([e]);
    await log.append([e]);
    expect(ddb.items('audit')).toHaveLength(1);
    for (const call of ddb.mock.calls()) {
      const input = call.args[0].input as { ConditionExpression?: string };
      if ('Item' in input) expect(input.ConditionExpression).toBe('attribute_not_exists(#sk)');
    }
  });

  it("exports a patient's entries oldest first, the same instant in the order written, across result pages", async () => {
    ddb.pageSize = 2;
    const log = auditLog();
    await log.append([
      entry('2026-11-26T10:00:00.500Z', 'delivery', 'p2'),
      entry('2026-11-26T10:00:01Z', 'escalation', 'p2'),
    ]);
    await log.append([
      entry('2026-11-26T10:00:00Z', 'page', 'p1'),
      entry('2026-11-26T10:00:00Z', 'delivery', 'p1'),
      entry('2026-11-26T10:00:00Z', 'acknowledgement', 'p1'),
    ]);
    await log.append([entry('2026-11-26T09:00:00Z', 'page', 'other', 'P-2')]);
    const out: string[] = [];
    for await (const e of log.forPatient('P-1')) out.push(`${e.at} ${e.text}`);
    expect(out).toEqual([
      '2026-11-26T10:00:00Z page p1',
      '2026-11-26T10:00:00Z delivery p1',
      '2026-11-26T10:00:00Z acknowledgement p1',
      '2026-11-26T10:00:00.500Z delivery p2',
      '2026-11-26T10:00:01Z escalation p2',
    ]);
  });
});

/** The pager over either store: what it sent and audited, in a comparable form. */
async function story(pages: PageStore, audit: AuditLog & { all(): Promise<AuditEvent[]> }) {
  const sent: string[] = [];
  const sender = { send: async (m: PageMessage) => void sent.push(`${m.page.pageId} ${m.role} ${m.reason}`) };
  const pager = new Pager({
    pages,
    sender,
    audit,
    config: DEFAULT_PAGING,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://x/ack/',
  });
  await pager.silence(
    {
      silenceId: 's1',
      scope: { team: 'neurology' },
      from: min(0),
      until: min(20),
      createdBy: 'Dr N',
      reason: 'handover',
    },
    min(0),
  );
  await pager.onNotification(grade(2, 'm1', ['hematology', 'neurology']), min(1));
  await pager.onNotification(grade(2, 'm1', ['hematology', 'neurology']), min(1)); // redelivered
  await pager.onTick(min(16)); // hematology moves on (15 minutes below grade 3)
  await pager.onNotification(grade(3, 'm2', ['hematology', 'icu']), min(17)); // supersedes, re-pages at once
  await pager.acknowledge('crs|P-1|m2|icu', 'Dr I', 'api', min(18));
  await pager.onTick(min(22)); // silence over; hematology grade 3 escalates
  await pager.onNotification(grade(4, 'm3', ['icu']), min(23));
  const trail = (await audit.all()).map((e) => `${e.at.slice(11, 16)} ${e.type} ${e.text}`);
  return {
    sent,
    trail,
    pages: (await pages.patientPages('P-1', 50)).pages.map((p) => `${p.pageId} ${p.status} L${p.level}`).sort(),
  };
}

describe('the pager over DynamoDB', () => {
  it('sends, escalates, supersedes, acknowledges, holds and audits exactly as over the in-memory reference', async () => {
    const memoryAudit = Object.assign(new MemoryAuditLog(), { all: async () => memoryAudit.events });
    const reference = await story(new MemoryPageStore(memoryAudit), memoryAudit);
    const dynamoAudit = Object.assign(auditLog(), {
      all: async () => {
        const out: AuditEvent[] = [];
        for (const p of ['*', 'P-1']) for await (const e of dynamoAudit.forPatient(p)) out.push(e);
        return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
      },
    });
    const s = store();
    const dynamo = await story(s, dynamoAudit);
    expect(dynamo.sent).toEqual(reference.sent);
    expect(dynamo.pages).toEqual(reference.pages);
    expect(dynamo.trail.sort()).toEqual(reference.trail.sort());
    expect(reference.sent.length).toBeGreaterThan(4);
  });
});

describe('the pager over DynamoDB after a deployment that shortened a ladder', () => {
  // Until 2026-12-05 a page released at a level the ladder no longer had went to role `undefined`: its link's item
  // held an empty value, which DynamoDB refuses, and every tick failed there, for every patient.
  it("pages a held page's last level that exists, and every other patient's ladder goes on", async () => {
    const sent: string[] = [];
    const ackSecret = randomBytes(32);
    const pagerOf = (config: typeof DEFAULT_PAGING) =>
      new Pager({
        pages: store(),
        sender: { send: async (m: PageMessage) => void sent.push(`${m.page.patientId} ${m.role}`) },
        audit: auditLog(),
        config,
        ackSecret,
        ackBaseUrl: 'https://x/ack/',
      });
    const before = pagerOf(DEFAULT_PAGING);
    await before.onNotification(grade(2, '#1', ['hematology']), min(0));
    await before.onTick(min(15));
    await before.onTick(min(30)); // the consultant, the third level
    await before.silence(
      { silenceId: 's1', scope: { patientId: 'P-1' }, from: min(31), until: min(50), createdBy: 'N', reason: 'MRI' },
      min(31),
    );
    await before.onTick(min(45)); // held there
    await before.onNotification(grade(2, '#1', ['icu'], 'P-2'), min(46));
    const after = pagerOf({
      ...DEFAULT_PAGING,
      policies: {
        ...DEFAULT_PAGING.policies,
        hematology: { levels: ['hematology fellow', 'hematology attending'], loops: 2 },
      },
    });
    await after.onTick(min(61));
    expect(sent.slice(3)).toEqual(['P-2 ICU registrar', 'P-1 hematology attending', 'P-2 ICU consultant']);
    expect(await store().get('crs|P-1|#1|hematology')).toMatchObject({ level: 1, delivered: true });
  });
});

describe('the pager over DynamoDB after a rollback to a config without a team it paged', () => {
  // Until 2026-12-05 a page of a team the config does not know failed every tick (TypeError), for every patient.
  it("sets that team's page aside, and every other patient's ladder goes on", async () => {
    const sent: string[] = [];
    const ackSecret = randomBytes(32);
    let snsDown = false;
    const pagerOf = (config: typeof DEFAULT_PAGING) =>
      new Pager({
        pages: store(),
        sender: {
          send: async (m: PageMessage) => {
            if (snsDown) throw new Error('SNS down');
            sent.push(`${m.page.patientId} ${m.role}`);
          },
        },
        audit: auditLog(),
        config,
        ackSecret,
        ackBaseUrl: 'https://x/ack/',
      });
    const newer = pagerOf({
      ...DEFAULT_PAGING,
      policies: { ...DEFAULT_PAGING.policies, cardiology: { levels: ['cardiology fellow'], loops: 1 } },
    } as typeof DEFAULT_PAGING);
    snsDown = true; // its send cut short: stored unsent
    await newer.onNotification(grade(2, '#1', ['cardiology' as never], 'P-9'), min(0)).catch(() => undefined);
    snsDown = false;
    const rolledBack = pagerOf(DEFAULT_PAGING);
    await rolledBack.onNotification(grade(2, '#1', ['icu'], 'P-2'), min(1));
    expect(await rolledBack.onTick(min(20))).toEqual({
      setAside: [{ pageId: 'crs|P-9|#1|cardiology', reason: 'its team has no ladder in the paging config' }],
    });
    expect(sent).toEqual(['P-2 ICU registrar', 'P-2 ICU consultant']);
    expect(await store().get('crs|P-9|#1|cardiology')).toMatchObject({ status: 'open', delivered: false });
  });
});

describe("the notifier's pager over DynamoDB with a grade change routed to a team the config has no ladder for", () => {
  // Until 2026-12-05 opening its pages threw (TypeError): the notifier parked the record, and none of its teams was paged.
  it("pages its other teams, keeps that team's page and sets it aside", async () => {
    const { pager, sent } = recordingPager();
    await pager.onNotification(grade(3, '#1', ['icu', 'cardiology' as never], 'P-9'), min(0));
    expect(sent).toEqual(['P-9 ICU registrar']);
    expect(await pager.onTick(min(1))).toEqual({
      setAside: [{ pageId: 'crs|P-9|#1|cardiology', reason: 'its team has no ladder in the paging config' }],
    });
    expect(await store().get('crs|P-9|#1|cardiology')).toMatchObject({ status: 'open', delivered: false });
  });
});

describe('the pager over DynamoDB with a silence item that cannot be read', () => {
  // Until 2026-12-05 every tick failed on it (SyntaxError), and so did every grade change's paging (the notifier
  // parked each record): nobody was paged for anything while it was in force.
  it('holds nothing, is named by the tick, and every ladder and grade change goes on', async () => {
    const { pager, sent } = recordingPager();
    const silence = { scope: { patientId: 'P-9' }, from: min(0), until: min(60), createdBy: 'N', reason: 'MRI' };
    await pager.silence({ ...silence, silenceId: 's1' }, min(0));
    ddb.items('pages').find((i) => i.sk?.S === 's1')!.silence = { S: '{' };
    await pager.onNotification(grade(3, '#1', ['icu'], 'P-2'), min(0));
    expect(await pager.onTick(min(6))).toEqual({
      setAside: [],
      unreadableSilences: [{ silenceId: 's1', reason: 'not JSON' }],
    });
    expect(sent).toEqual(['P-2 ICU registrar', 'P-2 ICU consultant']);
  });

  it('ended by two operators at once: one ends it, the other is told it had already ended (not an error)', async () => {
    const { pager } = recordingPager();
    const silence = { scope: { patientId: 'P-9' }, from: min(0), until: min(60), createdBy: 'N', reason: 'MRI' };
    await pager.silence({ ...silence, silenceId: 's1' }, min(0));
    ddb.items('pages').find((i) => i.sk?.S === 's1')!.silence = { S: '{' };
    const ended = await Promise.all([pager.endSilence('s1', 'Op A', min(5)), pager.endSilence('s1', 'Op B', min(5))]);
    expect(ended.map((e) => e?.changed).sort()).toEqual([false, true]);
  });
});

describe('the pager over DynamoDB with a page item that cannot be read', () => {
  // Until 2026-12-05 the store read every due page at once, and the first item it could not read (not JSON, a field
  // missing: an older shape, an item edited by hand) failed the read: every tick failed there, every minute, and no
  // patient's ladder moved; the patient's next grade change failed too (its record parked, nobody paged).
  it("sets each such item aside, named by its id, and every other patient's ladder goes on", async () => {
    const { pager, sent } = recordingPager();
    await pager.onNotification(grade(2, '#1', ['icu'], 'P-8'), min(0));
    await pager.onNotification(grade(2, '#1', ['icu'], 'P-9'), min(0));
    await pager.onNotification(grade(2, '#1', ['icu'], 'P-2'), min(1));
    const item = (pageId: string) => ddb.items('pages').find((i) => i.sk?.S?.endsWith(`#${pageId}`))!;
    item('crs|P-8|#1|icu').page = { S: '{"pageId": "crs|P-8|#1|icu", "lev' };
    const { level: _, ...older } = JSON.parse(item('crs|P-9|#1|icu').page!.S!) as Page;
    item('crs|P-9|#1|icu').page = { S: JSON.stringify(older) };
    expect(await pager.onTick(min(20))).toEqual({
      setAside: [
        { pageId: 'crs|P-8|#1|icu', reason: 'its stored item cannot be read: not JSON' },
        { pageId: 'crs|P-9|#1|icu', reason: 'its stored item cannot be read: level is missing' },
      ],
    });
    expect(sent).toEqual(['P-8 ICU registrar', 'P-9 ICU registrar', 'P-2 ICU registrar', 'P-2 ICU consultant']);
    // The patient's next grade change is paged.
    await pager.onNotification(grade(4, '#2', ['icu'], 'P-9'), min(21));
    expect(sent.at(-1)).toBe('P-9 ICU registrar');
    await expect(store().get('crs|P-8|#1|icu')).rejects.toThrow(/crs\|P-8\|#1\|icu: its stored item cannot be read/);
  });
});

describe('DynamoPageStore: pinned by a mutation run', () => {
  it("reads a patient's unsent pages as first sends only: a held page and one a tick moved on are not its to send", async () => {
    // Pinned by a mutation run (2026-12-05): the grade change's paging sends these; a page at a later level is the
    // tick's (sending it here too would page that level twice), a held one the silence's.
    const s = store();
    const [first] = opened(grade(2, 'a', ['icu']), T);
    const [held] = opened(grade(2, 'b', ['hematology']), T + 1);
    const [later] = opened(grade(3, 'c', ['icu'], 'P-1'), T + 2);
    await s.save([
      { ...first!, delivered: false },
      { ...held!, heldBy: 's1', dueAt: null, delivered: false },
      { ...later!, level: 1, delivered: false },
    ]);
    expect((await s.unsentPages('P-1')).pages.map((p) => p.pageId)).toEqual([first!.pageId]);
  });

  // 2026-12-07: who of a ward alert's patients had data again, an attribute of the ward alert's item.
  it("keeps a ward alert's resumed patients on its item, stored whole; one it cannot read is named, the alert kept", async () => {
    const s = store();
    const h4 = 'stale-feed|ward H4|5';
    const resumed = [
      { patientId: 'P-2', bed: '7', at: min(20) },
      { patientId: 'P-3', at: min(22) },
    ];
    await s.setStaleFeedAlert(h4, h4, 5, resumed);
    await s.setStaleFeedAlert('P-1', h4, 5);
    expect((await s.staleFeedAlerts()).alerts).toEqual(
      new Map([
        [h4, { alertId: h4, since: 5, resumed }],
        ['P-1', { alertId: h4, since: 5 }],
      ]),
    );
    await s.setStaleFeedAlert(h4, h4, 5, resumed.slice(1));
    expect((await s.staleFeedAlerts()).alerts.get(h4)?.resumed).toEqual(resumed.slice(1));
    await s.setStaleFeedAlert(h4, h4, 5);
    expect((await s.staleFeedAlerts()).alerts.get(h4)).toEqual({ alertId: h4, since: 5 });
    // Edited by hand: the alert stays in force (its all-clear still comes), without the list, and it is named.
    await s.setStaleFeedAlert(h4, h4, 5, resumed);
    ddb.items('pages').find((i) => i.sk?.S === h4)!.resumed = { L: [{ M: { patientId: { S: 'P-2' } } }] };
    expect(await s.staleFeedAlerts()).toEqual({
      alerts: new Map([
        [h4, { alertId: h4, since: 5 }],
        ['P-1', { alertId: h4, since: 5 }],
      ]),
      unreadable: [{ key: h4, reason: 'resumed holds an entry with no patientId or at (in force without it)' }],
    });
  });

  // A mutation run of 2026-12-07 found these shapes not pinned down: each read would have thrown (failing every
  // sweep) or taken a value that is none.
  it.each([
    ['not a list', { S: 'P-2' }, 'resumed is not a list'],
    [
      'an entry with no patientId',
      { L: [{ M: { at: { N: '20' } } }] },
      'resumed holds an entry with no patientId or at',
    ],
    [
      'an at that is no number',
      { L: [{ M: { patientId: { S: 'P-2' }, at: { N: 'soon' } } }] },
      'resumed holds an entry with no patientId or at',
    ],
    [
      'a bed that is not text',
      { L: [{ M: { patientId: { S: 'P-2' }, bed: { N: '7' }, at: { N: '20' } } }] },
      'resumed holds a bed that is not text',
    ],
  ])('names a ward alert whose resumed holds %s, the alert kept in force', async (_, value, reason) => {
    const s = store();
    const h4 = 'stale-feed|ward H4|5';
    await s.setStaleFeedAlert(h4, h4, 5, [{ patientId: 'P-2', at: 20 }]);
    ddb.items('pages').find((i) => i.sk?.S === h4)!.resumed = value as never;
    expect(await s.staleFeedAlerts()).toEqual({
      alerts: new Map([[h4, { alertId: h4, since: 5 }]]),
      unreadable: [{ key: h4, reason: `${reason} (in force without it)` }],
    });
  });

  it('names a stale-feed record in force whose alert id is empty, as one without', async () => {
    const s = store();
    await s.setStaleFeedAlert('P-1', 'stale-feed|P-1|1', min(0));
    await s.setStaleFeedAlert('P-2', 'stale-feed|P-2|1', min(0));
    ddb.items('pages').find((i) => i.sk?.S === 'P-1' && i.alertId)!.alertId = { S: '' };
    expect(await s.staleFeedAlerts()).toEqual({
      alerts: new Map([['P-2', { alertId: 'stale-feed|P-2|1', since: min(0) }]]),
      unreadable: [{ key: 'P-1', reason: 'alertId is not text' }],
    });
  });

  it('lists every silence kept newest first, for crs silence list --all', async () => {
    const s = store();
    const silence = (silenceId: string, from: number): Silence => ({
      silenceId,
      scope: { team: 'icu' },
      from,
      until: from + 60_000,
      createdBy: 'Dr C',
      reason: 'drill',
    });
    for (const [id, from] of [
      ['s-mid', min(5)],
      ['s-old', min(0)],
      ['s-new', min(9)],
    ] as const)
      await s.saveSilence(silence(id, from));
    expect((await s.allSilences()).silences.map((x) => x.silenceId)).toEqual(['s-new', 's-mid', 's-old']);
  });

  it('names a parked send or record item without its JSON, or of another shape, by key with why, beside the others', async () => {
    const sends = new DynamoParkedSends(ddb.client(), 'pages');
    const records = new DynamoParkedRecords(ddb.client(), 'pages');
    await sends.park(PARKED_SEND);
    await sends.park({ ...PARKED_SEND, level: 1 });
    await sends.park({ ...PARKED_SEND, level: 2, parkedAt: '2026-11-26T10:00:00Z' });
    await records.park(PARKED_RECORD);
    await records.park({ ...PARKED_RECORD, key: 'P-2#outbox#x', patientId: 'P-2' });
    const item = (sk: string) => ddb.items('pages').find((i) => i.sk?.S === sk)!;
    delete item(`${PARKED_SEND.pageId}#1#0`).send;
    item('record#P-2#outbox#x').record = { S: JSON.stringify({ ...PARKED_RECORD, key: 'P-3#outbox#y' }) };
    expect(await sends.read()).toEqual({
      items: [{ ...PARKED_SEND, level: 2, parkedAt: '2026-11-26T10:00:00Z' }, PARKED_SEND],
      unreadable: [{ key: `${PARKED_SEND.pageId}#1#0`, reason: 'its JSON attribute is missing' }],
    });
    expect(await records.read()).toEqual({
      items: [PARKED_RECORD],
      unreadable: [{ key: 'record#P-2#outbox#x', reason: 'it holds another key' }],
    });
    item(`${PARKED_SEND.pageId}#0#0`).send = { S: JSON.stringify({ ...PARKED_SEND, attempts: '3' }) };
    expect((await sends.read()).unreadable).toContainEqual({
      key: `${PARKED_SEND.pageId}#0#0`,
      reason: 'attempts is not what it holds there',
    });
  });

  it("nominates a held page at once, even stored just now (nobody is sending it), and it holds back none of the patient's unsent pages", async () => {
    const s = store();
    now = min(0);
    const [unsent] = opened(grade(2, 'u', ['hematology']), min(0) + 1);
    await s.save([unsent!]); // its send cut short long ago
    now = min(2) - 1000;
    const held: Page = { ...opened(grade(2, 'h', ['icu']), min(0))[0]!, heldBy: 's1', dueAt: null };
    expect(held.delivered).toBe(false);
    await s.save([held]); // held by a silence just now
    expect((await s.pendingPages(min(2))).pages.map((p) => p.pageId).sort()).toEqual(
      [held.pageId, unsent!.pageId].sort(),
    );
  });

  it('holds back an unsent page triggered after the earliest of the patient sends being made now, not only after the latest', async () => {
    const s = store();
    now = min(0);
    const [b] = opened(grade(2, 'b', ['hematology']), min(0) + 1);
    await s.save([b!]); // its send cut short long ago
    now = min(2) - 1000; // a and c stored just now: their pagers are sending them
    const [a] = opened(grade(2, 'a', ['icu']), min(0));
    const [c] = opened(grade(2, 'c', ['icu']), min(0) + 2);
    await s.save([a!]);
    await s.save([c!]);
    // b would overtake a, which another pager is sending: it waits with it.
    expect((await s.pendingPages(min(2))).pages.map((p) => p.pageId)).not.toContain(b!.pageId);
    expect((await s.pendingPages(min(2) - 1000 + UNSENT_GRACE_MS)).pages.map((p) => p.pageId).sort()).toEqual(
      [a!.pageId, b!.pageId, c!.pageId].sort(),
    );
  });

  it('leaves a write cancelled for another reason than an entry stored already to its caller (retried with backoff), never tries it again at once', async () => {
    const real = ddb.client();
    let transactions = 0;
    const client = {
      send: async (command: unknown) => {
        if (command instanceof TransactWriteItemsCommand && transactions++ === 0)
          throw Object.assign(new Error('Transaction cancelled'), {
            name: 'TransactionCanceledException',
            // (One DynamoDB cancelled for throttling alone is sent again after a backoff: aws-throttling.test.ts.)
            CancellationReasons: [{ Code: 'None' }, { Code: 'ValidationError' }],
          });
        return real.send(command as never);
      },
    } as unknown as DynamoDBClient;
    const s = new DynamoPageStore(client, 'pages', () => now, 'audit');
    const [page] = opened(grade(3, 'm1'));
    const entry: AuditEvent = { at: iso(T), patientId: 'P-1', type: 'page', text: 'opened', details: {} };
    await expect(s.save([page!], [entry])).rejects.toThrow(/cancelled/);
    expect(transactions).toBe(1);
    expect(await s.get(page!.pageId)).toBeUndefined();
  });

  it('keeps a send parked at each round of the ladder apart, and lists parked sends oldest first', async () => {
    const sends = new DynamoParkedSends(ddb.client(), 'pages');
    const send = { ...PARKED_SEND, round: 1, parkedAt: '2026-11-26T11:00:00Z' };
    await sends.park(send);
    await sends.park({ ...send, round: 0, parkedAt: '2026-11-26T10:00:00Z' }); // the same level, the round before
    await sends.park({ ...send, pageId: 'crs|P-1|#2|icu', parkedAt: '2026-11-26T12:00:00Z' });
    expect((await sends.list()).map((p) => `${p.pageId} ${p.round}`)).toEqual([
      'crs|P-1|#3|icu 0',
      'crs|P-1|#3|icu 1',
      'crs|P-1|#2|icu 1',
    ]);
  });

  it('writes an audit entry given twice in one save once (a transaction may not touch an item twice)', async () => {
    const s = store();
    const [page] = opened(grade(3, 'm1'));
    const entry: AuditEvent = { at: iso(T), patientId: 'P-1', type: 'page', text: 'opened', details: {} };
    await s.save([page!], [entry, { ...entry }]);
    const items = ddb.mock.commandCalls(TransactWriteItemsCommand)[0]!.args[0].input.TransactItems!;
    expect(items).toHaveLength(2);
  });

  it('leaves an unsent page to the pager that stored it for 30 s (docs/paging.md), then a tick takes it', async () => {
    const s = store();
    now = min(0);
    const [page] = opened(grade(2, 'a', ['icu']), min(0));
    await s.save([page!]); // its pager is sending it (or crashed doing so)
    expect((await s.pendingPages(min(0) + 29_999)).pages.map((p) => p.pageId)).toEqual([]);
    expect((await s.pendingPages(min(0) + 30_000)).pages.map((p) => p.pageId)).toEqual([page!.pageId]);
  });

  it('reads pending pages back in batches of 100 keys at most (DynamoDB refuses more in one BatchGetItem)', async () => {
    const s = store();
    const pages = Array.from({ length: 150 }, (_, i) => ({
      ...opened(grade(3, `m${i}`, ['icu']))[0]!,
      delivered: true,
    }));
    for (let i = 0; i < pages.length; i += 25) await s.save(pages.slice(i, i + 25));
    expect((await s.pendingPages(min(10))).pages).toHaveLength(150);
    const sizes = ddb.mock
      .commandCalls(BatchGetItemCommand)
      .map((c) => c.args[0].input.RequestItems!.pages!.Keys!.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
  });
});

describe('dynamoPager: pinned by a mutation run', () => {
  const settings = {
    config: DEFAULT_CONFIG,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://x/ack/',
    pagesTable: 'pages',
    auditTable: 'audit',
    refusedDelayMs: 0,
  };

  it('tells its hooks of every audit entry, every parked send and every forged link, and parks in the pages table', async () => {
    const parked: ParkedSend[] = [];
    const audited: AuditEvent[] = [];
    const security: SecurityEvent[] = [];
    let tries = 0;
    // The pauses between tries are timers: which ones were set says which pause was used, however busy the machine.
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const { pager, parked: table } = dynamoPager(
      settings,
      ddb.client(),
      {
        sender: {
          send: async () => {
            tries++;
            throw new RecordRefused('InvalidParameter: phone number');
          },
        },
      },
      { onParked: (s) => parked.push(s), onAudit: (e) => audited.push(e), onSecurity: (e) => security.push(e) },
      () => T,
    );
    await pager.onNotification(grade(2, 'm1', ['hematology']), T);
    const delays = timers.mock.calls.map((c) => c[1]);
    timers.mockRestore();
    expect(parked.map((s) => s.pageId)).toEqual(['crs|P-1|m1|hematology']);
    // Tried with the settings' pause (none), not REFUSED_DELAY_MS's (100 ms, then 200).
    expect(tries).toBe(REFUSED_TRIES);
    expect(delays.filter((d) => d === REFUSED_DELAY_MS || d === 2 * REFUSED_DELAY_MS)).toEqual([]);
    expect((await table.list()).map((s) => s.pageId)).toEqual(['crs|P-1|m1|hematology']);
    expect(audited.some((e) => /PARKED/.test(e.text))).toBe(true);
    await pager.acknowledgeLink('forged.token', 'Dr X', T);
    expect(security.map((e) => e.event)).toEqual(['acknowledge-link-refused']);
  });
});

describe('the partition of a page, from its id (patientOfPageId): pinned by a mutation run', () => {
  it('is the patient the id names; an id naming none is an unknown page, read from no partition', async () => {
    expect(patientOfPageId('crs|P-1|n1|icu')).toBe('P-1');
    expect(patientOfPageId('stale-feed|P-2|2026-01-10T08:00:00Z')).toBe('P-2');
    for (const id of ['crs|P-1', 'crs||n1|icu', 'P-1', '']) expect(patientOfPageId(id), id).toBeUndefined();
    const reads = ddb.mock.commandCalls(GetItemCommand).length;
    expect(await store().get('crs||n1|icu')).toBeUndefined();
    expect(await store().get('crs|P-1')).toBeUndefined();
    expect(ddb.mock.commandCalls(GetItemCommand).length).toBe(reads);
  });

  it('keeps silences, parked sends and parked records under the keys items written before carry', async () => {
    const s = store();
    await s.saveSilence({
      silenceId: 'S-9',
      scope: { team: 'icu' },
      from: now,
      until: now + 60_000,
      createdBy: 'N',
      reason: 'x',
    });
    await new DynamoParkedSends(ddb.client(), 'pages').park(PARKED_SEND);
    await new DynamoParkedRecords(ddb.client(), 'pages').park(PARKED_RECORD);
    expect(
      ddb
        .items('pages')
        .map((i) => `${i.pk!.S} ${i.sk!.S}`)
        .sort(),
    ).toEqual(
      [
        '#silences S-9',
        `#parked ${PARKED_SEND.pageId}#${PARKED_SEND.level}#${PARKED_SEND.round}`,
        '#parked record#P-1#outbox#crs|P-1|#4',
      ].sort(),
    );
  });
});

describe('the pager over DynamoDB with a silence item that cannot be read, ended, still holding a page: pinned by a mutation run', () => {
  it('names it and pages what it held', async () => {
    const { pager, sent } = recordingPager();
    const silence = { scope: { patientId: 'P-9' }, from: min(0), until: min(10), createdBy: 'N', reason: 'MRI' };
    await pager.silence({ ...silence, silenceId: 's1' }, min(0));
    await pager.onNotification(grade(3, '#1', ['icu'], 'P-9'), min(1)); // held by s1
    expect(sent).toEqual([]);
    ddb.items('pages').find((i) => i.sk?.S === 's1')!.silence = { S: '{' };
    // Past its end the query no longer lists it: the tick reads it by the id the page holds.
    expect((await pager.onTick(min(11))).unreadableSilences).toEqual([{ silenceId: 's1', reason: 'not JSON' }]);
    expect(sent).toEqual(['P-9 ICU registrar']);
  });
});
