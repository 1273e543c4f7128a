// Paging on the embedded backend's SQLite, against a real database file: the PageStore contract (the same cases
// run against the in-memory reference), the append-only audit trail, the acknowledge-link key, the pager's ladders
// across a restart and a send cut short, and the migration of an issue-5 database.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { until } from '#test/support/until.ts';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { BoardQueries } from '#adapters/sqlite/board.ts';
import { DB_FILE, openDataDir, type Db } from '#adapters/sqlite/db.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { SqlitePageSender, SqlitePageStore } from '#adapters/sqlite/pages.ts';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { DEFAULT_PAGING, newerChange, type Page, type PageableNotification, type Silence } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import { HOUR, iso } from '#domain/time.ts';
import {
  RecordRefused,
  VersionConflict,
  type AuditEvent,
  type AuditLog,
  type PageMessage,
  type PageSender,
  type PageStore,
} from '#ports';
import { ACK_KEY_FILE, loadAckKeys, loadOrCreateAckSecret } from '#hosts/embedded/ack-key.ts';
import { startEmbeddedServer } from '#hosts/embedded/embedded.ts';
import { DeliveryWatch } from '#hosts/embedded/delivery-watch.ts';
import { EmbeddedPaging, type EmbeddedPagingOptions } from '#hosts/embedded/paging.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;

let dir: string;
let db: Db;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-paging-'));
  db = openDataDir(dir);
});
afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function page(over: Partial<Page> = {}): Page {
  return {
    pageId: 'crs|P1|m1|icu',
    notificationId: 'crs|P1|m1',
    patientId: 'P1',
    team: 'icu',
    subject: 'crs',
    kind: 'escalation',
    grade: 3,
    fromGrade: 2,
    summary: 'PROVISIONAL CRS grade 3, patient P1',
    status: 'open',
    delivered: true,
    rev: 0,
    level: 0,
    round: 0,
    triggeredAt: min(0),
    dueAt: min(5),
    ...over,
  };
}

const silence = (over: Partial<Silence> = {}): Silence => ({
  silenceId: 's1',
  scope: { patientId: 'P1' },
  from: min(0),
  until: min(30),
  createdBy: 'Nurse B',
  reason: 'transport',
  ...over,
});

const ids = (pages: Page[]) => pages.map((p) => p.pageId).sort();

// The same contract for the reference (in memory) and the SQLite store: what the pager relies on.
describe.each([
  ['MemoryPageStore', () => new MemoryPageStore() as PageStore],
  ['SqlitePageStore', () => new SqlitePageStore(db) as PageStore],
])('%s', (_name, make) => {
  it('stores a new page as rev 1 and refuses it a second time', async () => {
    const store = make();
    expect(await store.get('nope')).toBeUndefined();
    await store.save([page()]);
    expect(await store.get('crs|P1|m1|icu')).toEqual({ ...page(), rev: 1 });
    await expect(store.save([page()])).rejects.toThrow(VersionConflict);
  });

  it('saves a change only over the revision it read, all or nothing', async () => {
    const store = make();
    await store.save([page()]);
    const stored = (await store.get('crs|P1|m1|icu'))!;
    await store.save([{ ...stored, level: 1 }]);
    await expect(store.save([{ ...stored, level: 2 }])).rejects.toThrow(VersionConflict); // someone got there first
    // One stale page in a save: none of it is written.
    await expect(
      store.save([page({ pageId: 'new|icu', notificationId: 'new' }), { ...stored, status: 'acknowledged' }]),
    ).rejects.toThrow(VersionConflict);
    expect(await store.get('new|icu')).toBeUndefined();
    expect(await store.get('crs|P1|m1|icu')).toMatchObject({ level: 1, rev: 2, status: 'open' });
  });

  it('lists a patient open pages, and the pending ones: due, held, or not sent yet', async () => {
    const store = make();
    await store.save([
      page({ pageId: 'due', dueAt: min(5) }),
      page({ pageId: 'later', dueAt: min(20) }),
      page({ pageId: 'held', dueAt: null, heldBy: 's1' }),
      page({ pageId: 'unsent', dueAt: min(20), delivered: false }),
      page({ pageId: 'info-unsent', status: 'info', kind: 'de-escalation', dueAt: null, delivered: false }),
      page({ pageId: 'info-sent', status: 'info', kind: 'de-escalation', dueAt: null }),
      page({ pageId: 'acked', status: 'acknowledged', dueAt: null, ack: { by: 'Dr A', at: min(1), via: 'board' } }),
      page({ pageId: 'other', patientId: 'P2', dueAt: min(50) }),
    ]);
    expect(ids((await store.openPages('P1')).pages)).toEqual(['due', 'held', 'later', 'unsent']);
    expect(ids((await store.pendingPages(min(6))).pages)).toEqual(['due', 'held', 'info-unsent', 'unsent']);
    expect(ids((await store.pendingPages(min(60))).pages)).toEqual([
      'due',
      'held',
      'info-unsent',
      'later',
      'other',
      'unsent',
    ]);
  });

  it("gives a patient's first sends still to be made, oldest first: not a later level or walk, not a held or closed page", async () => {
    const store = make();
    await store.save([
      page({ pageId: 'b', delivered: false, triggeredAt: min(2) }),
      page({
        pageId: 'a',
        status: 'info',
        kind: 'escalation',
        dueAt: null,
        delivered: false,
        closedAt: min(2),
        triggeredAt: min(1),
      }),
      page({ pageId: 'sent', triggeredAt: min(0) }),
      page({ pageId: 'level-1', level: 1, delivered: false, triggeredAt: min(0) }),
      // The first level of the ladder's next walk is the tick's to send (on AWS an outbox delivery sending it too
      // would page that role twice).
      page({ pageId: 'walk-2', level: 0, round: 1, delivered: false, triggeredAt: min(0) }),
      page({ pageId: 'held', heldBy: 's1', dueAt: null, delivered: false, triggeredAt: min(0) }),
      page({ pageId: 'superseded', status: 'superseded', dueAt: null, delivered: false, triggeredAt: min(0) }),
      page({ pageId: 'other', patientId: 'P2', delivered: false, triggeredAt: min(0) }),
    ]);
    expect((await store.unsentPages('P1')).pages.map((p) => p.pageId)).toEqual(['a', 'b']);
    expect((await store.unsentPages('P3')).pages).toEqual([]);
  });

  it("gives a patient's pages newest first", async () => {
    const store = make();
    await store.save([
      page({ pageId: 'a', triggeredAt: min(1) }),
      page({ pageId: 'c', triggeredAt: min(3) }),
      page({ pageId: 'b', triggeredAt: min(2) }),
    ]);
    expect((await store.patientPages('P1', 2)).pages.map((p) => p.pageId)).toEqual(['c', 'b']);
  });

  it('keeps silences: in force until they end or run out, and in force before the time they were ended', async () => {
    const store = make();
    await store.saveSilence(silence());
    await store.saveSilence(silence({ silenceId: 's2', scope: { team: 'icu' }, until: min(10) }));
    expect((await store.silences(min(5))).silences.map((s) => s.silenceId).sort()).toEqual(['s1', 's2']);
    expect((await store.silences(min(10))).silences.map((s) => s.silenceId)).toEqual(['s1']);
    await store.saveSilence({ ...silence(), endedAt: min(7), endedBy: 'Nurse B' });
    expect((await store.silences(min(8))).silences.map((s) => s.silenceId)).toEqual(['s2']);
    // Asked about a time before it was ended (a late tick deciding a past step): in force then.
    expect((await store.silences(min(6))).silences.map((s) => s.silenceId).sort()).toEqual(['s1', 's2']);
    expect(await store.getSilence('s1')).toMatchObject({ endedAt: min(7), endedBy: 'Nurse B', createdBy: 'Nurse B' });
  });
});

// A page changed and the entry that says so are written together or not at all: a retry finds the page changed
// and would not write the entry again.
describe.each([
  [
    'MemoryPageStore',
    () => {
      const audit = new MemoryAuditLog();
      return { store: new MemoryPageStore(audit) as PageStore, audit: audit as AuditLog };
    },
  ],
  [
    'SqlitePageStore',
    () => ({ store: new SqlitePageStore(db) as PageStore, audit: new SqliteAuditLog(db) as AuditLog }),
  ],
])('%s with its audit entries', (_name, make) => {
  const opened: AuditEvent = {
    at: iso(min(0)),
    patientId: 'P1',
    type: 'page',
    text: 'escalation page opened for icu',
    details: { pageId: 'crs|P1|m1|icu' },
  };
  const trail = async (audit: AuditLog) => {
    const out: AuditEvent[] = [];
    for await (const e of audit.forPatient('P1')) out.push(e);
    return out;
  };

  it('saves pages and silences with the entries, and neither when the save is refused', async () => {
    const { store, audit } = make();
    await store.save([page()], [opened]);
    expect(await trail(audit)).toEqual([opened]);
    const again = { ...opened, text: 'a second open that must not be written' };
    await expect(store.save([page()], [again])).rejects.toThrow(VersionConflict);
    expect(await trail(audit)).toEqual([opened]);
    const silenced: AuditEvent = { ...opened, type: 'silence', text: 'silence of patient P1', details: {} };
    await store.saveSilence(silence(), [silenced]);
    expect(await trail(audit)).toEqual([opened, silenced]);
    expect(await store.getSilence('s1')).toMatchObject({ silenceId: 's1' });
  });
});

describe('SqlitePageStore', () => {
  it('knows the next time a ladder has something to do: a due escalation or the end of a silence holding a page', async () => {
    const store = new SqlitePageStore(db);
    expect(store.nextDueAt()).toBeNull();
    await store.save([page({ pageId: 'a', dueAt: min(15) }), page({ pageId: 'b', dueAt: null, heldBy: 's1' })]);
    expect(store.nextDueAt()).toBe(min(15));
    await store.saveSilence(silence({ until: min(12) }));
    expect(store.nextDueAt()).toBe(min(12));
    await store.saveSilence({ ...silence({ until: min(12) }), endedAt: min(3) });
    expect(store.nextDueAt()).toBe(min(3));
    // As the domain's nextDue: a silence ended after it ran out held until its end.
    await store.saveSilence({ ...silence({ until: min(12) }), endedAt: min(20) });
    expect(store.nextDueAt()).toBe(min(12));
  });
});

describe("the exhausted ladders still standing (exhaustedNow): a newer change by the pager's order", () => {
  // (2026-12-06) By the sequence numbers where both ids carry one, whenever the pages were created; an id without one
  // (a grade change of a version before changeId) is older than any with one; two without (stale-feed alerts' ids)
  // by when they were created. Until the second change of 2026-12-06 an id without one went by creation (D stood).
  const change = (patientId: string, id: string, at: number, status: Page['status'] = 'acknowledged') =>
    page({
      pageId: `${id}|icu`,
      notificationId: id,
      patientId,
      subject: id.startsWith('stale-feed') ? 'stale-feed' : 'crs',
      status,
      triggeredAt: min(at),
    });
  const pages = [
    change('A', 'crs|A|#5', 0, 'exhausted'),
    change('A', 'crs|A|#4', 10), // older, paged late: the ladder stands
    change('B', 'crs|B|#5', 10, 'exhausted'),
    change('B', 'crs|B|#6', 0), // newer, whenever created: passed
    change('C', 'crs|C|m3', 0, 'exhausted'),
    change('C', 'crs|C|#2', 5), // numbered against none: passed
    change('D', 'crs|D|m3', 5, 'exhausted'),
    change('D', 'crs|D|#9', 0), // created earlier, but numbered: passed
    change('E', 'stale-feed|E|1000', 0, 'exhausted'),
    change('E', 'stale-feed|E|2000', 10), // stale-feed ids: by creation
    change('F', 'crs|F|#7', 0, 'exhausted'),
    change('F', 'crs|F|#7', 20, 'acknowledged'), // its own change (another team's page): never passes it
  ].map((p, i, all) =>
    i === all.length - 1 ? { ...p, pageId: 'crs|F|#7|hematology', team: 'hematology' as const } : p,
  );
  it('keeps those no newer change passed, in SQL as newerChange decides in memory', async () => {
    const store = new SqlitePageStore(db);
    await store.save(pages);
    const standing = store.exhaustedNow().pages.map((p) => p.pageId);
    expect(standing.sort()).toEqual(['crs|A|#5|icu', 'crs|F|#7|icu']);
    const inMemory = pages.filter(
      (e) =>
        e.status === 'exhausted' &&
        !pages.some((p) => p.patientId === e.patientId && p.subject === e.subject && newerChange(p, e)),
    );
    expect(ids(inMemory)).toEqual(standing.sort());
  });

  // Pinned by a mutation run (2026-12-06).
  it('a change never passes itself (an id without a sequence number, its pages created apart), nor one created the same ms', () => {
    const at = (notificationId: string, triggeredAt: number) => ({ notificationId, triggeredAt });
    expect(newerChange(at('stale-feed|P|1000', 20), at('stale-feed|P|1000', 0))).toBe(false);
    // Two ids without a number created the same ms are tied (2026-12-06: a numbered id is newer than one without).
    expect(newerChange(at('crs|P|m4', 5), at('crs|P|m3', 5))).toBe(false);
    expect(newerChange(at('crs|P|m3', 5), at('crs|P|m4', 5))).toBe(false);
  });
});

describe('newerChange is an order (2026-12-06)', () => {
  // Ids of one patient's subject: numbered ones and, mixed with them, ids without a number (a grade change stored by a
  // version before changeId); created at any time (a change paged late). Until 2026-12-06 an id without a number was
  // compared by creation with numbered ones, and the relation could cycle: #5 at 20, #6 at 5, m at 10.
  const change = fc.record({
    notificationId: fc.oneof(
      fc.integer({ min: 1, max: 8 }).map((n) => `crs|P|#${n}`),
      fc.integer({ min: 1, max: 8 }).map((n) => `crs|P|m${n}`),
    ),
    triggeredAt: fc.integer({ min: 0, max: 6 }),
  });
  // A change's pages share its creation: ids decide which change, their first time when it was created.
  const oneTimeAnId = (cs: ChangeAt[]) =>
    cs.map((c) => ({ ...c, triggeredAt: cs.find((d) => d.notificationId === c.notificationId)!.triggeredAt }));

  it('is irreflexive, asymmetric and transitive, and ties are transitive too (a strict weak order)', () => {
    fc.assert(
      fc.property(fc.tuple(change, change, change), (drawn) => {
        const [a, b, c] = oneTimeAnId(drawn) as [ChangeAt, ChangeAt, ChangeAt];
        for (const x of [a, b, c]) expect(newerChange(x, x)).toBe(false);
        for (const [x, y] of [
          [a, b],
          [b, c],
          [a, c],
        ] as const)
          expect(newerChange(x, y) && newerChange(y, x)).toBe(false);
        if (newerChange(a, b) && newerChange(b, c)) expect(newerChange(a, c)).toBe(true);
        const tied = (x: ChangeAt, y: ChangeAt) => !newerChange(x, y) && !newerChange(y, x);
        if (tied(a, b) && tied(b, c)) expect(tied(a, c)).toBe(true);
      }),
    );
  });

  it('so every subject has a newest change: the one no other passes', () => {
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 12 }), (drawn) => {
        const cs = oneTimeAnId(drawn);
        expect(cs.some((x) => !cs.some((y) => newerChange(y, x)))).toBe(true);
      }),
    );
  });

  it('puts an id without a sequence number below every id with one, whenever either was created', () => {
    const at = (notificationId: string, triggeredAt: number) => ({ notificationId, triggeredAt });
    expect(newerChange(at('crs|P|#5', 20), at('crs|P|#6', 5))).toBe(false);
    expect(newerChange(at('crs|P|#6', 5), at('crs|P|m3', 10))).toBe(true);
    expect(newerChange(at('crs|P|m3', 10), at('crs|P|#5', 20))).toBe(false);
    expect(newerChange(at('crs|P|m3', 10), at('crs|P|#5', 0))).toBe(false);
    expect(newerChange(at('crs|P|m3', 10), at('crs|P|m2', 0))).toBe(true);
  });
});
type ChangeAt = { notificationId: string; triggeredAt: number };

describe("the board's read of a patient's pages: the newest by creation, and each subject's newest change", () => {
  // (2026-12-06) The board reads a patient's newest pages by creation (200). Until then a newer change that fell out of
  // that window (a long history of alerts after it) left the place to an older one paged late, which became current.
  const of = (id: string, at: number, over: Partial<Page> = {}) =>
    page({
      pageId: `${id}|bedside`,
      notificationId: id,
      team: 'bedside',
      subject: id.startsWith('stale-feed') ? 'stale-feed' : 'crs',
      triggeredAt: min(at),
      ...over,
    });
  const pages = [
    of('crs|P1|#9', 0),
    ...[1, 2, 3, 4, 5].map((i) => of(`stale-feed|P1|${i}`, i, { status: 'resolved' })),
    of('crs|P1|#4', 10, { status: 'info' }), // older, paged late
  ];

  it("adds the pages of a subject's newest change that the window left out, after the window", async () => {
    const store = new SqlitePageStore(db);
    await store.save(pages);
    const read = new BoardQueries(db, store).pages('P1', 3).pages.map((p) => p.notificationId);
    expect(read).toEqual(['crs|P1|#4', 'stale-feed|P1|5', 'stale-feed|P1|4', 'crs|P1|#9']);
  });

  it('adds nothing when the window holds them or is not full; each subject has its newest', async () => {
    const store = new SqlitePageStore(db);
    await store.save(pages);
    const board = new BoardQueries(db, store);
    expect(board.pages('P1', 7).pages).toHaveLength(7);
    expect(board.pages('P1', 8).pages.map((p) => p.notificationId)[6]).toBe('crs|P1|#9');
    await store.save([of('crs|P1|#12', 11)]);
    expect(board.pages('P1', 2).pages.map((p) => p.notificationId)).toEqual([
      'crs|P1|#12',
      'crs|P1|#4',
      'stale-feed|P1|5',
    ]);
  });

  it('of two changes tied (no number, created the same ms) out of the window, adds the one stored last', async () => {
    // As the board's list, newest first, puts it first (pinned by a mutation run, 2026-12-06). Both orders of the ids,
    // so that neither the order the changes are read in nor the ids decide it.
    const store = new SqlitePageStore(db);
    for (const [patientId, ids] of [
      ['P1', ['stale-feed|P1|1000', 'stale-feed|P1|2000']],
      ['P2', ['stale-feed|P2|2000', 'stale-feed|P2|1000']],
    ] as const) {
      for (const id of ids) await store.save([of(id, 1, { patientId, status: 'resolved' })]);
      await store.save([2, 3].map((m) => of(`crs|${patientId}|#${m}`, m, { patientId })));
      const read = new BoardQueries(db, store).pages(patientId, 2).pages.map((p) => p.notificationId);
      expect(read, patientId).toEqual([`crs|${patientId}|#3`, `crs|${patientId}|#2`, ids[1]]);
    }
  });
});

// Behaviour a mutation run of the SQLite page store (shared/adapters/sqlite/pages.ts) found no test pinning down.
describe('SqlitePageStore, pinned by a mutation run', () => {
  /** A page of ward H4's no-data alert `id`. */
  const ward = (id: string, over: Partial<Page> = {}) =>
    page({
      pageId: `${id}|bedside`,
      notificationId: id,
      patientId: 'ward H4',
      team: 'bedside',
      subject: 'stale-feed',
      kind: 'alert',
      dueAt: null,
      ...over,
    });

  it("knows after a restart which wards' no-data alerts are in force: not one whose all-clear is stored", async () => {
    const store = new SqlitePageStore(db);
    await store.save([
      ward('stale-feed|ward H4|1000'),
      ward('stale-feed|ward H4|1000|cleared', { kind: 'alert-cleared', status: 'info' }),
      ward('stale-feed|ward H4|5000'),
    ]);
    expect([...store.staleFeedAlerts()]).toEqual([
      ['stale-feed|ward H4|5000', { alertId: 'stale-feed|ward H4|5000', since: 5000 }],
    ]);
  });

  // Until 2026-12-05 the members were not kept: a restart found them again by the ward they were in then.
  it("keeps who belongs to a ward's no-data alert across a restart, and of an alert no longer in force nobody", async () => {
    const h4 = 'stale-feed|ward H4|5000';
    const gone = 'stale-feed|ward H4|1000';
    const store = new SqlitePageStore(db);
    await store.save([ward(gone), ward(h4)]);
    const member = (alertId: string, since: number) => ({ alertId, since });
    store.recordStaleFeeds(
      new Map([
        [h4, member(h4, 5000)],
        ['P1', member(h4, 5000)],
        ['P2', member(h4, 6000)],
        ['P3', member(gone, 1000)],
        ['P4', member('stale-feed|P4|7000', 7000)], // its own alert: found from its pages, not kept here
      ]),
      [],
    );
    // P2's data resumed; the older alert was cleared (its all-clear stored) before its member was let go.
    store.recordStaleFeeds(new Map(), ['P2']);
    await store.save([ward(`${gone}|cleared`, { kind: 'alert-cleared', status: 'info' })]);
    db.close();
    db = openDataDir(dir);
    expect([...new SqlitePageStore(db).staleFeedAlerts()]).toEqual([
      [h4, member(h4, 5000)],
      ['P1', member(h4, 5000)],
    ]);
  });

  // Pinned by a mutation run (the members' upsert, and a member row never over the patient's own alert).
  it('keeps a member moved from one ward alert to another under the second, and a patient’s own alert over a member row', async () => {
    const h4 = 'stale-feed|ward H4|5000';
    const h5 = 'stale-feed|ward H5|6000';
    const store = new SqlitePageStore(db);
    await store.save([ward(h4), ward(h5, { patientId: 'ward H5' })]);
    store.recordStaleFeeds(
      new Map([
        ['P1', { alertId: h4, since: 5000 }],
        ['P2', { alertId: h4, since: 5000 }],
      ]),
      [],
    );
    store.recordStaleFeeds(new Map([['P1', { alertId: h5, since: 6000 }]]), []);
    // P2's own alert was paged, and the server stopped before the sweep recorded it (its member row is still there).
    await store.save([
      page({
        pageId: 'stale-feed|P2|7000|bedside',
        notificationId: 'stale-feed|P2|7000',
        patientId: 'P2',
        team: 'bedside',
        subject: 'stale-feed',
        kind: 'alert',
        dueAt: null,
      }),
    ]);
    db.close();
    db = openDataDir(dir);
    const inForce = new SqlitePageStore(db).staleFeedAlerts();
    expect([inForce.get('P1'), inForce.get('P2')]).toEqual([
      { alertId: h5, since: 6000 },
      { alertId: 'stale-feed|P2|7000', since: 7000 },
    ]);
  });

  // Until 2026-12-07 nothing said who of a ward alert's patients had data again: a member's record went with its data.
  it("keeps who of a ward alert's patients resumed across a restart, and drops them with the alert", async () => {
    const h4 = 'stale-feed|ward H4|5000';
    const store = new SqlitePageStore(db);
    await store.save([ward(h4)]);
    // Oldest first, which is not the order of their ids.
    const resumed = [
      { patientId: 'P3', bed: '7', at: 9000 },
      { patientId: 'P2', at: 9500 },
    ];
    store.recordStaleFeeds(
      new Map([
        [h4, { alertId: h4, since: 5000, resumed }],
        ['P1', { alertId: h4, since: 5000 }],
      ]),
      ['P2', 'P3'],
    );
    db.close();
    db = openDataDir(dir);
    const again = new SqlitePageStore(db);
    expect(again.staleFeedAlerts().get(h4)).toEqual({ alertId: h4, since: 5000, resumed });
    // Stored whole: a list that lost one (quiet again) is the list.
    again.recordStaleFeeds(new Map([[h4, { alertId: h4, since: 5000, resumed: resumed.slice(1) }]]), []);
    expect(again.staleFeedAlerts().get(h4)?.resumed).toEqual(resumed.slice(1));
    again.recordStaleFeeds(new Map(), [h4, 'P1']);
    expect(db.prepare('SELECT count(*) FROM stale_feed_resumed').pluck().get()).toBe(0);
  });

  it("the board's resumed of a ward: its own ward's alerts in force only, oldest first, with their beds", async () => {
    const add = db.prepare('INSERT INTO stale_feed_resumed (alert_id, patient_id, bed, at) VALUES (?, ?, ?, ?)');
    add.run('stale-feed|ward H4|1000', 'P-1', '7', 3000);
    add.run('stale-feed|ward H4|2000', 'P-2', null, 2500);
    add.run('stale-feed|ward H4|1|1000', 'P-9', null, 2000); // ward "H4|1": in ward H4's range of ids
    add.run('stale-feed|ward H45|1000', 'P-8', null, 2000);
    // An alert whose all-clear is stored (the sweep stopped before it let its list go): not shown.
    add.run('stale-feed|ward H4|500', 'P-5', null, 2000);
    const store = new SqlitePageStore(db);
    await store.save([ward('stale-feed|ward H4|500|cleared', { kind: 'alert-cleared', status: 'info' })]);
    const board = new BoardQueries(db, store);
    // Oldest first, which is not the order of their ids.
    expect(board.wardResumed('ward H4')).toEqual([
      { patientId: 'P-2', bed: null, at: 2500 },
      { patientId: 'P-1', bed: '7', at: 3000 },
    ]);
    expect(board.wardResumed('ward H4|1')).toEqual([{ patientId: 'P-9', bed: null, at: 2000 }]);
  });

  it('opens a version-11 data directory as version 12: its ward alerts and their members in force, none known resumed', async () => {
    const h4 = 'stale-feed|ward H4|5000';
    await new SqlitePageStore(db).save([ward(h4)]);
    new SqlitePageStore(db).recordStaleFeeds(new Map([['P1', { alertId: h4, since: 5000 }]]), []);
    db.exec('DROP TABLE stale_feed_resumed');
    db.pragma('user_version = 11');
    db.close();
    db = openDataDir(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(15);
    const store = new SqlitePageStore(db);
    expect([...store.staleFeedAlerts()]).toEqual([
      [h4, { alertId: h4, since: 5000 }],
      ['P1', { alertId: h4, since: 5000 }],
    ]);
    store.recordStaleFeeds(new Map([[h4, { alertId: h4, since: 5000, resumed: [{ patientId: 'P2', at: 6000 }] }]]), []);
    expect(store.staleFeedAlerts().get(h4)?.resumed).toEqual([{ patientId: 'P2', at: 6000 }]);
  });

  // Until 2026-12-07 it was held in memory only: after a restart the all-clear named the alert by its id's time.
  it("keeps the time a ward alert gave across a restart, and drops it with the alert or when it is its id's", async () => {
    const h4 = 'stale-feed|ward H4|5000';
    const h5 = 'stale-feed|ward H5|6000';
    await new SqlitePageStore(db).save([ward(h4), ward(h5, { patientId: 'ward H5' })]);
    new SqlitePageStore(db).recordStaleFeeds(
      new Map([
        [h4, { alertId: h4, since: 5000, said: 5500 }],
        [h5, { alertId: h5, since: 6000, said: 6500 }],
      ]),
      [],
    );
    db.close();
    db = openDataDir(dir);
    const again = new SqlitePageStore(db);
    expect([again.staleFeedAlerts().get(h4), again.staleFeedAlerts().get(h5)]).toEqual([
      { alertId: h4, since: 5000, said: 5500 },
      { alertId: h5, since: 6000, said: 6500 },
    ]);
    again.recordStaleFeeds(new Map([[h5, { alertId: h5, since: 6000 }]]), [h4]);
    expect(db.prepare('SELECT count(*) FROM stale_feed_said').pluck().get()).toBe(0);
    expect(again.staleFeedAlerts().get(h5)).toEqual({ alertId: h5, since: 6000 });
  });

  it('opens a version-13 data directory as version 14: its ward alerts in force named by their ids, as before', async () => {
    const h4 = 'stale-feed|ward H4|5000';
    await new SqlitePageStore(db).save([ward(h4)]);
    db.exec('DROP TABLE stale_feed_said');
    db.pragma('user_version = 13');
    db.close();
    db = openDataDir(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(15);
    const store = new SqlitePageStore(db);
    expect(store.staleFeedAlerts().get(h4)).toEqual({ alertId: h4, since: 5000 });
    store.recordStaleFeeds(new Map([[h4, { alertId: h4, since: 5000, said: 5500 }]]), []);
    expect(store.staleFeedAlerts().get(h4)?.said).toBe(5500);
  });

  it('opens a version-12 data directory as version 13 with no clock step kept (an earlier server kept none)', () => {
    db.exec('DROP TABLE clock_step');
    db.pragma('user_version = 12');
    db.close();
    db = openDataDir(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(15);
    expect(db.prepare('SELECT count(*) FROM clock_step').pluck().get()).toBe(0);
  });

  it('opens a version-8 data directory as version 9: its ward alerts in force, their members found again by ward', () => {
    db.exec('DROP TABLE stale_feed_members');
    db.pragma('user_version = 8');
    db.close();
    db = openDataDir(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(15);
    expect(db.prepare('SELECT count(*) FROM stale_feed_members').pluck().get()).toBe(0);
    const store = new SqlitePageStore(db);
    store.recordStaleFeeds(new Map([['P1', { alertId: 'stale-feed|ward H4|5000', since: 5000 }]]), []);
    expect(db.prepare('SELECT patient_id FROM stale_feed_members').pluck().all()).toEqual(['P1']);
  });

  it('saves a silence with its audit entry or not at all: no silence holds pages without saying who set it', async () => {
    const store = new SqlitePageStore(db);
    db.exec("CREATE TEMP TRIGGER audit_fails BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END");
    const entry: AuditEvent = { at: iso(min(0)), patientId: 'P1', type: 'silence', text: 'silence of P1', details: {} };
    await expect(store.saveSilence(silence(), [entry])).rejects.toThrow('disk I/O error');
    expect(await store.getSilence('s1')).toBeUndefined();
    expect((await store.silences(min(1))).silences).toEqual([]);
  });
});

const entry = (i: number, patientId = 'P1'): AuditEvent => ({
  at: new Date(min(i)).toISOString(),
  patientId,
  type: 'escalation',
  text: `step ${i}`,
  details: { pageId: `p${i}` },
});

async function all(log: AuditLog, patientId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of log.forPatient(patientId)) out.push(e);
  return out;
}

describe('SqliteAuditLog', () => {
  it("stores each entry once however often it is written, and gives a patient's entries oldest first", async () => {
    const log = new SqliteAuditLog(db);
    const reference = new MemoryAuditLog();
    const entries = Array.from({ length: 1200 }, (_, i) => entry(i, i % 3 === 0 ? 'P2' : 'P1'));
    await log.append(entries.slice(0, 700));
    await log.append(entries.slice(600)); // a retried write overlaps
    await reference.append(entries);
    expect(await all(log, 'P1')).toEqual(await all(reference, 'P1'));
    expect(await all(log, 'P2')).toHaveLength(400);
    expect(await all(log, 'nobody')).toEqual([]);
  });

  it('is append-only: the database refuses to change or delete an entry', async () => {
    await new SqliteAuditLog(db).append([entry(1)]);
    expect(() => db.prepare("UPDATE audit SET entry = '{}'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    // REPLACE deletes without firing delete triggers: refused over a row, a no-op over an entry already stored.
    expect(() =>
      db
        .prepare(
          "INSERT OR REPLACE INTO audit (seq, key, patient_id, type, at, entry) SELECT seq, x'00', 'X', type, at, '{}' FROM audit",
        )
        .run(),
    ).toThrow(/append-only/);
    db.prepare(
      "INSERT OR REPLACE INTO audit (key, patient_id, type, at, entry) SELECT key, 'P1', type, at, '{}' FROM audit",
    ).run();
    db.prepare(
      "REPLACE INTO audit (key, patient_id, type, at, entry) SELECT key, 'P1', type, at, '{}' FROM audit",
    ).run();
    expect(await all(new SqliteAuditLog(db), 'P1')).toEqual([entry(1)]);
  });
});

describe('the acknowledge-link key', () => {
  it('is 32 random bytes made once, owner-only, and the same after a restart', () => {
    const key = loadOrCreateAckSecret(dir);
    expect(key).toHaveLength(32);
    expect(statSync(join(dir, ACK_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(loadOrCreateAckSecret(dir).equals(key)).toBe(true);
    expect(loadOrCreateAckSecret(mkdtempSync(join(tmpdir(), 'crs-key-'))).equals(key)).toBe(false);
  });

  it('refuses a damaged key file rather than quietly voiding every link sent', () => {
    writeFileSync(join(dir, ACK_KEY_FILE), 'short', { mode: 0o600 });
    expect(() => loadOrCreateAckSecret(dir)).toThrow(/not a 32-byte key; delete it to make a new one/);
  });

  it('a damaged previous key file at start says what deleting it does', () => {
    loadOrCreateAckSecret(dir);
    writeFileSync(join(dir, 'ack.key.previous'), 'short', { mode: 0o600 });
    expect(() => loadAckKeys(dir)).toThrow(
      /ack\.key\.previous is not a 32-byte key; delete it to start without a previous key/,
    );
  });
});

describe('pinned by a mutation run: the acknowledge-link key file', () => {
  it('is created owner-only whatever the umask, and an existing one others can read is made owner-only', () => {
    const prev = process.umask(0o022);
    try {
      loadOrCreateAckSecret(dir);
      expect(statSync(join(dir, ACK_KEY_FILE)).mode & 0o777).toBe(0o600);
      const other = mkdtempSync(join(tmpdir(), 'crs-key-'));
      const key = Buffer.alloc(32, 7);
      writeFileSync(join(other, ACK_KEY_FILE), key);
      chmodSync(join(other, ACK_KEY_FILE), 0o644);
      expect(loadOrCreateAckSecret(other).equals(key)).toBe(true);
      expect(statSync(join(other, ACK_KEY_FILE)).mode & 0o777).toBe(0o600);
      rmSync(other, { recursive: true, force: true });
    } finally {
      process.umask(prev);
    }
  });
});

const grade3: PageableNotification = {
  notificationId: 'crs|P1|m3',
  patientId: 'P1',
  condition: 'crs',
  kind: 'escalation',
  toGrade: 3,
  teams: ['icu'],
  summary: 'PROVISIONAL CRS grade 3, patient P1',
};

const secret = Buffer.alloc(32, 3);

/** crs serve's paging over the test's database: no state to load, nothing sent or changed told, unless given. */
const pagingWith = (o: Partial<EmbeddedPagingOptions>) =>
  new EmbeddedPaging({
    db,
    config: DEFAULT_CONFIG,
    ackSecret: secret,
    ackBaseUrl: () => 'https://crs.example/ack/',
    now: () => Date.now(),
    log: () => undefined,
    loadState: async () => undefined,
    onSent: () => undefined,
    onChanged: () => undefined,
    ...o,
  });

/** The pager over SQLite, as crs serve builds it; `sender` may be wrapped to fail. */
function sqlitePager(wrap?: (s: PageSender) => PageSender, config = DEFAULT_PAGING) {
  const sender = new SqlitePageSender(db, { now: () => T, onSent: () => undefined });
  const pages = new SqlitePageStore(db);
  const pager = new Pager({
    pages,
    audit: new SqliteAuditLog(db),
    sender: wrap ? wrap(sender) : sender,
    config,
    ackSecret: secret,
    ackBaseUrl: 'https://crs.example/ack/',
  });
  return { pager, pages };
}

const sends = () =>
  (db.prepare("SELECT body FROM outbox WHERE kind = 'page' ORDER BY seq").all() as { body: string }[]).map(
    (r) => JSON.parse(r.body) as PageEvent,
  );

describe('the pager on SQLite', () => {
  it('keeps its ladders across a restart: the next level is paged once, at its time', async () => {
    await sqlitePager().pager.onNotification(grade3, min(0));
    db.close(); // the process stops; nothing of the ladder lived in memory
    db = openDataDir(dir);
    const { pager } = sqlitePager();
    await pager.onTick(min(4));
    expect(sends().map((s) => s.role)).toEqual(['ICU registrar']);
    await pager.onTick(min(5));
    await pager.onTick(min(5));
    expect(sends().map((s) => `${s.role} ${s.level}/${s.round}`)).toEqual(['ICU registrar 0/0', 'ICU consultant 1/0']);
    expect(sends()[1]!.escalatesAt).toBe(iso(min(10)));
  });

  it('stores a send cut short by a crash once, however often it is made again', async () => {
    let crash = true;
    const { pager, pages } = sqlitePager((inner) => ({
      send: async (m: PageMessage) => {
        await inner.send(m); // into the outbox...
        if (crash) throw new Error('killed'); // ...and the process dies before marking it delivered
      },
    }));
    await expect(pager.onNotification(grade3, min(0))).rejects.toThrow('killed');
    expect((await pages.get('crs|P1|m3|icu'))!.delivered).toBe(false);
    crash = false;
    await pager.onTick(min(1)); // finishes the send
    await pager.onNotification(grade3, min(1)); // the outbox redelivers the notification
    expect(sends().map((s) => s.sendId)).toEqual(['crs|P1|m3|icu#1']);
    expect((await pages.get('crs|P1|m3|icu'))!.delivered).toBe(true);
  });

  it('a page released by the end of a silence is a new send to the same role, saying it was released', async () => {
    const { pager } = sqlitePager();
    await pager.onNotification({ ...grade3, toGrade: 2 }, min(0));
    await pager.silence(silence({ from: min(1), until: min(60) }), min(1));
    await pager.onTick(min(15)); // due while silenced: held
    await pager.endSilence('s1', 'Nurse B', min(20));
    expect(sends().map((s) => `${s.role} ${s.reason}`)).toEqual(['ICU registrar triggered', 'ICU registrar released']);
    expect(new Set(sends().map((s) => s.sendId)).size).toBe(2);
  });
});

describe('the pager on SQLite after a deployment that shortened a ladder', () => {
  // Until 2026-12-05 a page released at a level the ladder no longer had went out to role `undefined` (the
  // webhook's page had no role) with a link whose claims the database would not store (role NOT NULL, the insert
  // ignored): nobody it reached could acknowledge it.
  it('sends a page held at a level the ladder no longer has to its last level, with a link that acknowledges', async () => {
    const { pager } = sqlitePager();
    await pager.onNotification({ ...grade3, toGrade: 2, teams: ['hematology'] }, min(0));
    await pager.onTick(min(15));
    await pager.onTick(min(30)); // the consultant, the third level
    await pager.silence(silence({ from: min(31), until: min(50) }), min(31));
    await pager.onTick(min(45)); // held there
    const shortened = {
      ...DEFAULT_PAGING,
      policies: {
        ...DEFAULT_PAGING.policies,
        hematology: { levels: ['hematology fellow', 'hematology attending'], loops: 2 },
      },
    };
    const after = sqlitePager(undefined, shortened).pager;
    await after.onTick(min(51));
    const released = sends().at(-1)!;
    expect(`${released.role} ${released.level} ${released.reason}`).toBe('hematology attending 1 released');
    const token = released.ackUrl!.split('/').at(-1)!;
    expect(await after.acknowledgeLink(token, 'Dr A', min(52))).toMatchObject({
      ok: true,
      page: { status: 'acknowledged', ack: { by: 'Dr A (hematology attending)' } },
    });
  });
});

describe("the pager's own connection, pinned by a mutation run", () => {
  it('writes what it derives on its own connection with synchronous=NORMAL (redone after a power cut), never OFF', async () => {
    // Pinned with the ledger's (embedded-store.test.ts): a setting no other test can tell from NORMAL.
    const paging = pagingWith({});
    try {
      const derived = (paging as unknown as { derived: Db }).derived;
      expect(derived.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(derived.pragma('synchronous', { simple: true })).toBe(1);
    } finally {
      await paging.close();
    }
  });
});

describe('the pager lane of crs serve when the database fails', () => {
  it('holds the lane on an SQLite failure (the receiver down), never refuses the record: refused, it would be parked', async () => {
    const paging = pagingWith({});
    try {
      db.exec("CREATE TRIGGER full BEFORE INSERT ON pages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
      const body = JSON.stringify(grade3);
      const failed = await paging
        .sink()
        .deliver({ seq: 1, kind: 'notification', id: grade3.notificationId, patientId: 'P1', body })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(failed).toMatchObject({ code: expect.stringMatching(/^SQLITE_/) });
      expect(failed).not.toBeInstanceOf(RecordRefused);
    } finally {
      await paging.close();
    }
  });
});

describe('the timer loop of crs serve', () => {
  it('tries a failing tick again a second later, not at once, says so once, and pages what was due once it can', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log: string[] = [];
    let clock = min(0);
    const paging = pagingWith({ now: () => clock, log: (l) => log.push(l) });
    try {
      const body = JSON.stringify(grade3);
      await paging.sink().deliver({ seq: 1, kind: 'notification', id: grade3.notificationId, patientId: 'P1', body });
      clock = min(6); // the ICU's next level is due, and the disk is full: every page change fails
      db.exec("CREATE TRIGGER full BEFORE UPDATE ON pages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
      const ticks = vi.spyOn(paging, 'tick');
      paging.start();
      await vi.advanceTimersByTimeAsync(3000);
      expect(ticks.mock.calls.length).toBeLessThanOrEqual(4); // it ran again at once: hundreds of ticks a second
      expect(log.filter((l) => l.includes('escalation tick failed'))).toEqual([
        'paging: escalation tick failed (SqliteError: database or disk is full); retrying every second',
      ]);
      // Pinned by a mutation run (2026-12-05). Board actions while it fails (each wakes the loop) run no tick of
      // their own, and the failure is said again once a minute, not at each.
      const before = ticks.mock.calls.length;
      for (let i = 0; i < 20; i++) {
        await paging.silence({
          silenceId: `s${i}`,
          scope: { patientId: `OTHER-${i}` },
          from: clock,
          until: clock + 60_000,
          createdBy: 'Nurse B',
          reason: 'MRI',
        });
        await vi.advanceTimersByTimeAsync(10);
      }
      await vi.advanceTimersByTimeAsync(800);
      expect(ticks.mock.calls.length - before).toBeLessThanOrEqual(2);
      await vi.advanceTimersByTimeAsync(59_000); // 61 to 89 failed ticks in all
      expect(ticks.mock.calls.length).toBeGreaterThan(61);
      expect(ticks.mock.calls.length).toBeLessThan(90);
      expect(log.filter((l) => l.includes('escalation tick failed'))).toEqual([
        'paging: escalation tick failed (SqliteError: database or disk is full); retrying every second',
        'paging: escalation tick failed (SqliteError: database or disk is full), 61 times in a row; retrying every second',
      ]);
      db.exec('DROP TRIGGER full'); // space freed
      await vi.advanceTimersByTimeAsync(1000);
      expect(sends().map((s) => s.role)).toEqual(['ICU registrar', 'ICU consultant']);
      expect(log.at(-1)).toMatch(/^paging: escalation ticks work again \(after \d+ failed\)$/);
      // Said once; and the loop wakes at the next due time again, not each second (the ICU's next level, due 5
      // minutes after the consultant was paged, at its millisecond).
      await vi.advanceTimersByTimeAsync(10_000);
      expect(log.filter((l) => l.includes('work again'))).toHaveLength(1);
    } finally {
      await paging.close();
      vi.useRealTimers();
    }
  });
});

describe('the timer loop of crs serve when the host clock steps', () => {
  // The wall clock (`now`) steps while the monotonic clock goes on; the step is moved into the stored due times.
  it('moves a step the database could not record (the disk full) once it can, and each time once: the next level keeps its time', async () => {
    const log: string[] = [];
    let mono = 0;
    let clock = min(0);
    const at = (m: number, stepMs = 0) => {
      mono = m * 60_000;
      clock = min(m) + stepMs;
    };
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true, log: (l) => log.push(l) });
    try {
      const body = JSON.stringify(grade3);
      await paging.sink().deliver({ seq: 1, kind: 'notification', id: grade3.notificationId, patientId: 'P1', body });
      expect(sends().map((s) => s.role)).toEqual(['ICU registrar']); // the consultant is due at minute 5
      await paging.silence({
        silenceId: 's1',
        scope: { patientId: 'OTHER' },
        from: min(0),
        until: min(10),
        createdBy: 'Nurse B',
        reason: 'MRI',
      });
      // The clock steps back an hour, and the disk fills: the page is moved, the silence cannot be.
      at(1, -HOUR);
      db.exec(
        "CREATE TRIGGER full BEFORE UPDATE ON silences BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
      await expect(paging.tick()).rejects.toThrow('database or disk is full');
      db.exec('DROP TRIGGER full'); // space freed
      at(2, -HOUR);
      await paging.tick();
      expect(log.filter((l) => l.startsWith('clock:'))).toEqual([
        expect.stringContaining('clock: the system clock stepped back by 1 h'),
      ]);
      const until = db.prepare("SELECT until FROM silences WHERE silence_id = 's1'").pluck();
      expect(until.get()).toBe(min(10) - HOUR); // ten minutes after it began, by the monotonic clock
      at(4.9, -HOUR); // the page was moved once, not once for each try
      await paging.tick();
      expect(sends().map((s) => s.role)).toEqual(['ICU registrar']);
      at(5, -HOUR);
      await paging.tick();
      expect(sends().map((s) => s.role)).toEqual(['ICU registrar', 'ICU consultant']);
    } finally {
      await paging.close();
    }
  });

  it('tells the operator again when the clock steps while its alert stands (the fix of the first step), not only shows it', async () => {
    // Until 2026-12-06 the alert webhook heard "stepped back" and nothing when the operator set the clock right: the
    // alert's text changed on the board, and the chat said "stepped back" for the rest of the hour.
    let mono = 0;
    let clock = min(0);
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true });
    const told: [string, string, string, string][] = [];
    const watch = new DeliveryWatch({
      lanes: () => [],
      lastTickAt: () => clock,
      clock: () => paging.clockAlert(),
      deliveryAlertMinutes: 60,
      now: () => clock,
      log: () => undefined,
      onChange: () => undefined,
      onAlert: (event, a) => told.push([event, a.key, a.text.split(' against')[0]!, a.since]),
    });
    const at = async (m: number, stepMs: number) => {
      mono = m * 60_000;
      clock = min(m) + stepMs;
      await paging.tick();
      watch.check();
    };
    try {
      await at(1, -HOUR);
      await at(2, -HOUR); // nothing new: told once
      await at(5, 0); // the operator sets the clock right
      await at(6, 0);
      // The first step's alert is told cleared before the second is raised (review, 2026-12-06): each raise has its
      // clear with its own since, as --alert-webhook promises, and a tool that dedups by key opens a new incident
      // (two raises of one key and one clear left the first open in a tool keyed by key and since, and were one
      // incident, not told again, in a tool keyed by key).
      expect(told).toEqual([
        ['raised', 'clock', 'the system clock stepped back by 1 h', iso(min(1) - HOUR)],
        ['cleared', 'clock', 'the system clock stepped back by 1 h', iso(min(1) - HOUR)],
        ['raised', 'clock', 'the system clock stepped forward by 1 h', iso(min(5))],
      ]);
      expect(watch.current()).toEqual([expect.objectContaining({ key: 'clock', since: iso(min(5)) })]);
      await at(66, 0); // an hour after the last step: cleared once
      expect(told.slice(3)).toEqual([['cleared', 'clock', 'the system clock stepped forward by 1 h', iso(min(5))]]);
    } finally {
      await paging.close();
    }
  });

  it('moves its last tick with a step forward: the watch, told of the step, does not say the pager has stopped', async () => {
    // crs serve checks the delivery watch as the step is told (onClockStep), before the tick that saw it ends: a
    // last tick left an hour behind the new clock would read as a pager that has not run for an hour.
    let mono = 0;
    let clock = min(0);
    let watch: DeliveryWatch | undefined;
    const paging = pagingWith({
      now: () => clock,
      monotonic: () => mono,
      watchClock: true,
      onClockStep: () => watch?.check(),
    });
    const told: [string, string][] = [];
    watch = new DeliveryWatch({
      lanes: () => [],
      lastTickAt: () => paging.lastTickAt,
      clock: () => paging.clockAlert(),
      deliveryAlertMinutes: 60,
      now: () => clock,
      log: () => undefined,
      onChange: () => undefined,
      onAlert: (event, a) => told.push([event, a.key]),
    });
    try {
      await paging.tick();
      mono = 60_000;
      clock = min(1) + HOUR; // NTP steps the clock forward an hour
      await paging.tick();
      expect(told).toEqual([['raised', 'clock']]); // not 'pager': its last tick, a minute ago, moved with the clock
    } finally {
      await paging.close();
    }
  });

  it('says at start that the clock is behind the last record the data directory stored, until it is not', async () => {
    await sqlitePager().pager.onNotification(grade3, min(0)); // the last run paged at minute 0 (its outbox record)
    db.prepare("UPDATE outbox SET created_at = ? WHERE kind = 'page'").run(iso(min(10)));
    const log: string[] = [];
    let clock = min(11) - 3 * HOUR;
    const paging = pagingWith({ now: () => clock, watchClock: true, log: (l) => log.push(l) });
    try {
      paging.start();
      expect(log).toEqual([
        'clock: the clock is behind the last record this data directory stored by 3 h (2026-11-26T10:10:00Z); if it is wrong (a bad RTC before NTP), escalations wait for it and monitors ahead of it by over 5 min are refused',
      ]);
      expect(paging.clockAlert()?.text).toContain('the clock is behind the last record this data directory stored');
      clock = min(11);
      expect(paging.clockAlert()).toBeUndefined();
    } finally {
      await paging.close();
    }
  });

  it('leaves times stored ahead of a clock that started behind (a bad RTC at boot): the step forward catches up with them', async () => {
    // The last run paged the registrar at minute 0 (the consultant due at 5) with a right clock; this one starts
    // after a reboot, the clock three hours behind, until NTP steps it forward at minute 2.
    await sqlitePager().pager.onNotification(grade3, min(0));
    await sqlitePager().pager.silence(silence({ scope: { patientId: 'OTHER' } }), min(0));
    const log: string[] = [];
    let mono = 0;
    let clock = min(1) - 3 * HOUR;
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true, log: (l) => log.push(l) });
    try {
      await paging.tick();
      mono = 60_000;
      clock = min(2);
      await paging.tick();
      expect(log).toEqual([expect.stringContaining('clock: the system clock stepped forward by 3 h')]);
      clock = min(5);
      mono = 4 * 60_000;
      await paging.tick();
      expect(sends().map((s) => s.role)).toEqual(['ICU registrar', 'ICU consultant']);
      expect(db.prepare('SELECT until FROM silences').pluck().get()).toBe(min(30));
    } finally {
      await paging.close();
    }
  });
});

describe('the timer loop of crs serve when the host clock steps, pinned by a mutation run', () => {
  // The last run paged the registrar at minute 0 (the consultant due at 5); this one starts with the clock behind.
  const steppedForward = async (behindMs: number, steppedAt: number) => {
    await sqlitePager().pager.onNotification(grade3, min(0));
    let mono = 0;
    let clock = min(steppedAt) - behindMs;
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true });
    await paging.tick();
    const at = async (m: number) => {
      mono = (m - steppedAt) * 60_000;
      clock = min(m);
      await paging.tick();
      return sends().map((s) => s.role);
    };
    return { paging, at };
  };

  it('leaves a page opened ahead of the clock even when its level is due within the longest timeout: due at its time', async () => {
    // Six minutes behind (it reads minute -5 at minute 1), stepped forward at minute 2: the page was opened after
    // the step's moment on this clock, and its level, due at minute 5, is within the longest timeout of it.
    const { paging, at } = await steppedForward(6 * 60_000, 1);
    try {
      expect(await at(2)).toEqual(['ICU registrar']); // the step forward, seen
      expect(await at(4.9)).toEqual(['ICU registrar']);
      expect(await at(5)).toEqual(['ICU registrar', 'ICU consultant']); // not six minutes late
    } finally {
      await paging.close();
    }
  });

  it('leaves a level due further ahead than the longest timeout, though its page was opened before the step', async () => {
    // The page opened at minute 0; the last run (its clock right) moved its level to minute 25 (as a later level
    // would). This run starts at minute 21 with the clock 19 minutes behind, which steps forward: minute 25 is kept.
    const { paging, at } = await steppedForward(19 * 60_000, 21);
    try {
      db.prepare("UPDATE pages SET due_at = ?, body = json_set(body, '$.dueAt', ?)").run(min(25), min(25));
      expect(await at(21.5)).toEqual(['ICU registrar']); // the step forward, seen
      expect(await at(24.9)).toEqual(['ICU registrar']);
      expect(await at(25)).toEqual(['ICU registrar', 'ICU consultant']);
    } finally {
      await paging.close();
    }
  });
});

describe('the timer loop of crs serve when the host clock steps while it runs, pinned by a mutation run', () => {
  // `at(m, stepMs)`: minute m by the monotonic clock, the wall clock stepped by stepMs in all.
  const stepping = () => {
    let mono = 0;
    let clock = min(0);
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true });
    const at = async (m: number, stepMs = 0) => {
      mono = m * 60_000;
      clock = min(m) + stepMs;
      await paging.tick();
      return sends().map((s) => s.role);
    };
    const deliver = () =>
      paging.sink().deliver({
        seq: 1,
        kind: 'notification',
        id: grade3.notificationId,
        patientId: 'P1',
        body: JSON.stringify(grade3),
      });
    const silence = (silenceId: string, patientId: string, minutes = 10) =>
      paging.silence({
        silenceId,
        scope: { patientId },
        from: min(0),
        until: min(minutes),
        createdBy: 'Nurse B',
        reason: 'MRI',
      });
    const until = (silenceId: string) =>
      db.prepare('SELECT until FROM silences WHERE silence_id = ?').pluck().get(silenceId);
    return { paging, at, deliver, silence, until };
  };

  it('a step forward by an hour: the next level keeps the four minutes it had left, never paged at once', async () => {
    const { paging, at, deliver } = stepping();
    try {
      await deliver();
      expect(await at(1, HOUR)).toEqual(['ICU registrar']);
      expect(await at(4.9, HOUR)).toEqual(['ICU registrar']);
      expect(await at(5, HOUR)).toEqual(['ICU registrar', 'ICU consultant']);
    } finally {
      await paging.close();
    }
  });

  it('a step forward by an hour: a silence keeps the minutes it had left, and the page it holds goes then', async () => {
    const { paging, at, deliver, silence } = stepping();
    try {
      await silence('s1', 'P1');
      await deliver(); // held by the silence
      expect(await at(2, HOUR)).toEqual([]);
      expect(await at(9.9, HOUR)).toEqual([]);
      expect(await at(10, HOUR)).toEqual(['ICU registrar']);
    } finally {
      await paging.close();
    }
  });

  it('two steps back, each moved: a silence ends after the minutes it had left, by the monotonic clock', async () => {
    const { paging, at, silence, until } = stepping();
    try {
      await silence('s1', 'OTHER');
      await at(1, -HOUR);
      await at(2, -2 * HOUR); // another hour back, as far again
      expect(until('s1')).toBe(min(10) - 2 * HOUR);
    } finally {
      await paging.close();
    }
  });

  it('a step the disk could not record, then another before it could: both are moved', async () => {
    const { paging, at, deliver, silence, until } = stepping();
    try {
      await deliver();
      await silence('s1', 'OTHER');
      db.exec(
        "CREATE TRIGGER full BEFORE UPDATE ON silences BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
      await expect(at(1, -HOUR)).rejects.toThrow('database or disk is full');
      db.exec('DROP TRIGGER full');
      await at(2, -2 * HOUR);
      expect(until('s1')).toBe(min(10) - 2 * HOUR);
      expect(await at(4.9, -2 * HOUR)).toEqual(['ICU registrar']);
      expect(await at(5, -2 * HOUR)).toEqual(['ICU registrar', 'ICU consultant']);
    } finally {
      await paging.close();
    }
  });

  it('a disk that fails part way through the silences: each silence is moved once, the one saved before too', async () => {
    const { paging, at, silence, until } = stepping();
    try {
      // Three hours each: moved back by the hour, they are still in force at the step's moment when it is tried again.
      await silence('s1', 'OTHER', 180);
      await silence('s2', 'ANOTHER', 180);
      db.exec(
        "CREATE TRIGGER full BEFORE UPDATE ON silences WHEN NEW.silence_id = 's2' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
      await expect(at(1, -HOUR)).rejects.toThrow('database or disk is full');
      expect(until('s1')).toBe(min(180) - HOUR); // s1 was moved before s2 failed
      db.exec('DROP TRIGGER full');
      await at(2, -HOUR);
      expect([until('s1'), until('s2')]).toEqual([min(180) - HOUR, min(180) - HOUR]);
    } finally {
      await paging.close();
    }
  });

  it('a step back by an hour: a silence in force still holds a page raised after the step', async () => {
    const { paging, at, deliver, silence } = stepping();
    try {
      await silence('s1', 'P1');
      await at(1, -HOUR);
      await deliver();
      expect(await at(2, -HOUR)).toEqual([]);
      expect(await at(10, -HOUR)).toEqual(['ICU registrar']);
    } finally {
      await paging.close();
    }
  });

  it('a step back of a clock ahead of the last run: a page that run opened further ahead still keeps the time it had left', async () => {
    // The last run's clock was two hours ahead (the registrar paged at minute 120); this one's reads minute 60,
    // an hour ahead, and steps back an hour at minute 1: the consultant goes five minutes after minute 60's page.
    await sqlitePager().pager.onNotification(grade3, min(120));
    let mono = 0;
    let clock = min(60);
    const paging = pagingWith({ now: () => clock, monotonic: () => mono, watchClock: true });
    const at = async (m: number) => {
      mono = m * 60_000;
      clock = min(m);
      await paging.tick();
      return sends().map((s) => s.role);
    };
    try {
      await paging.tick();
      expect(await at(1)).toEqual(['ICU registrar']); // the step back, seen
      expect(await at(64.9)).toEqual(['ICU registrar']);
      expect(await at(65)).toEqual(['ICU registrar', 'ICU consultant']);
    } finally {
      await paging.close();
    }
  });
});

describe('the timer loop of crs serve after a rollback to a config without a team it paged', () => {
  // Until 2026-12-05 a page of a team the config does not know failed every tick (TypeError): every patient's ladder
  // stopped, and the loop said "escalation tick failed" until the delivery watch said the pager had not run.
  it("sets that page aside, says so once (log, delivery watch), and every other patient's ladder goes on", async () => {
    const withCardiology = {
      ...DEFAULT_PAGING,
      policies: { ...DEFAULT_PAGING.policies, cardiology: { levels: ['cardiology fellow'], loops: 1 } },
    } as typeof DEFAULT_PAGING;
    const down: PageSender = { send: async () => Promise.reject(new Error('disk')) };
    await sqlitePager(() => down, withCardiology)
      .pager.onNotification(
        { ...grade3, notificationId: 'crs|P9|#1', patientId: 'P9', teams: ['cardiology' as never] },
        min(0),
      )
      .catch(() => undefined); // stored, its send cut short: unsent and due
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { t, log, paging, watch } = watchedPaging();
    try {
      const icu = { ...grade3, notificationId: 'crs|P2|#1', patientId: 'P2', teams: ['icu' as const] };
      await paging
        .sink()
        .deliver({ seq: 1, kind: 'notification', id: icu.notificationId, patientId: 'P2', body: JSON.stringify(icu) });
      const ticks = vi.spyOn(paging, 'tick');
      paging.start();
      t.clock = min(7); // the ICU's next level is due
      await vi.advanceTimersByTimeAsync(3000);
      expect(sends().map((s) => `${s.patientId} ${s.role}`)).toEqual(['P2 ICU registrar', 'P2 ICU consultant']);
      // A tick a second while the set-aside page stays due, not a loop spinning on it.
      expect(ticks.mock.calls.length).toBeLessThanOrEqual(5);
      expect(log.filter((l) => l.includes('set aside'))).toEqual([
        'paging: 1 page(s) set aside, the pager cannot step or send them: crs|P9|#1|cardiology (its team has no ladder in the paging config)',
      ]);
      watch.check();
      expect(watch.current().map((a) => a.key)).toEqual(['set-aside']);
      expect(watch.current()[0]!.text).toContain('crs|P9|#1|cardiology');
      expect(log.some((l) => l.includes('escalation tick failed'))).toBe(false);
    } finally {
      await paging.close();
      vi.useRealTimers();
    }
  });
});

describe('the pager on SQLite with a silence row that cannot be read', () => {
  // Until 2026-12-05 every tick failed on it (SyntaxError), and so did every grade change's paging (the pager lane
  // parked each record): nobody was paged for anything while it was in force.
  it('holds nothing, is named by the tick, and every ladder and grade change goes on', async () => {
    const { pager } = sqlitePager();
    const silence = { scope: { patientId: 'P9' }, from: min(0), until: min(60), createdBy: 'N', reason: 'MRI' };
    await pager.silence({ ...silence, silenceId: 's1' }, min(0));
    db.prepare("UPDATE silences SET body = '{' WHERE silence_id = 's1'").run();
    await pager.onNotification({ ...grade3, notificationId: 'crs|P2|#1', patientId: 'P2', teams: ['icu'] }, min(0));
    expect(await pager.onTick(min(6))).toEqual({
      setAside: [],
      unreadableSilences: [{ silenceId: 's1', reason: 'not JSON' }],
    });
    expect(sends().map((s) => `${s.patientId} ${s.role}`)).toEqual(['P2 ICU registrar', 'P2 ICU consultant']);
  });
});

describe('the timer loop of crs serve with a page row that cannot be read', () => {
  // Until 2026-12-05 the store read every due page at once, and a row whose body was not JSON failed the read: every
  // tick failed there ("escalation tick failed"), no patient's ladder moved, and that patient's next grade change
  // failed on the pager lane too.
  it("sets that page aside, names it (log, delivery watch), and every other patient's ladder goes on", async () => {
    const { pager } = sqlitePager();
    await pager.onNotification({ ...grade3, notificationId: 'crs|P9|#1', patientId: 'P9', teams: ['icu'] }, min(0));
    db.prepare('UPDATE pages SET body = ? WHERE page_id = ?').run('{"pageId": "crs|P9|#1|icu", "lev', 'crs|P9|#1|icu');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { t, log, paging, watch } = watchedPaging();
    try {
      const icu = { ...grade3, notificationId: 'crs|P2|#1', patientId: 'P2', teams: ['icu' as const] };
      await paging
        .sink()
        .deliver({ seq: 1, kind: 'notification', id: icu.notificationId, patientId: 'P2', body: JSON.stringify(icu) });
      paging.start();
      t.clock = min(7); // the ICU's next level is due, for both patients
      await vi.advanceTimersByTimeAsync(3000);
      expect(sends().map((s) => `${s.patientId} ${s.role}`)).toEqual([
        'P9 ICU registrar',
        'P2 ICU registrar',
        'P2 ICU consultant',
      ]);
      expect(log.filter((l) => l.includes('set aside'))).toEqual([
        'paging: 1 page(s) set aside, the pager cannot step or send them: crs|P9|#1|icu (its stored item cannot be read: not JSON)',
      ]);
      expect(log.some((l) => l.includes('escalation tick failed'))).toBe(false);
      watch.check();
      expect(watch.current().map((a) => a.key)).toEqual(['set-aside']);
      expect(watch.current()[0]!.text).toContain('crs|P9|#1|icu (its stored item cannot be read: not JSON)');
      // That patient's next grade change is paged.
      const next = { ...grade3, notificationId: 'crs|P9|#2', patientId: 'P9', toGrade: 4, teams: ['icu' as const] };
      await paging.sink().deliver({
        seq: 2,
        kind: 'notification',
        id: next.notificationId,
        patientId: 'P9',
        body: JSON.stringify(next),
      });
      expect(sends().at(-1)).toMatchObject({ patientId: 'P9', role: 'ICU registrar', grade: 4 });
    } finally {
      await paging.close();
      vi.useRealTimers();
    }
  });
});

describe('the stale-feed sweep of crs serve', () => {
  // Until 2026-12-05 one patient whose state could not be read failed the whole sweep, every time: nobody's "no data"
  // alert was raised or cleared.
  it("raises the other patients' alerts when one patient's state cannot be read, and says which could not", async () => {
    let state: PatientState | undefined;
    for (const m of [enrol('P1', 0), msg('P1', 1, { vitals: { heartRate: 80 } })])
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    const paging = pagingWith({
      now: () => state!.lastMonitorAt! + 16 * 60_000,
      loadState: async (id) => {
        if (id === 'P0') throw new SyntaxError('Unexpected token in JSON');
        return { state: state!, version: 1 };
      },
    });
    try {
      await expect(paging.sweep(['P0', 'P1'])).rejects.toThrow(
        'the state of 1 patient(s) could not be read (P0); the others were swept',
      );
      expect(sends().map((s) => `${s.patientId} ${s.role} ${s.summary.split(':')[0]}`)).toEqual([
        'P1 bedside nurse NO DATA, patient P1, bed H4-P1',
      ]);
    } finally {
      await paging.close();
    }
  });
});

describe('the stale-feed sweep of crs serve when the pager fails on one alert', () => {
  // Until 2026-12-05 one alert the pager failed on (a page of that patient that does not decode) stopped the sweep
  // before anything was recorded, at every sweep: the alerts after it were never paged (P9 here, whose monitor was
  // quiet: nobody told), and those before it, paged but not recorded, got no all-clear when the data resumed (P1: its
  // "no data" page stayed open and its ladder climbed on, to the nurse in charge). Nothing was paged twice (the ids
  // are the same at each sweep).
  it("pages every other patient's alert and all-clear, once, and names the alert it could not page", async () => {
    const states = new Map<string, PatientState>();
    const stateOf = (id: string, minutes: number[]) => {
      let state: PatientState | undefined;
      for (const m of [enrol(id, 0), ...minutes.map((t) => msg(id, t, { vitals: { heartRate: 80 } }))])
        state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      states.set(id, state!);
      return state!;
    };
    const since = stateOf('P1', [1]).lastMonitorAt!;
    stateOf('P5', [1]);
    stateOf('P9', [1]);
    // P5's "no data" page cannot be written (the store refuses it): its alert cannot be paged. (A page item that
    // cannot be read is no longer a way to fail it: a page stored exists, read or not, and the tick names it.)
    db.exec(
      "CREATE TRIGGER refuse_p5 BEFORE INSERT ON pages WHEN NEW.patient_id = 'P5' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
    );
    let clock = since + 16 * 60_000;
    const log: string[] = [];
    const paging = pagingWith({
      // Three quiet in one ward page once per ward by default: here each its own.
      config: {
        ...DEFAULT_CONFIG,
        paging: { ...DEFAULT_CONFIG.paging, staleFeedGroup: { fromPatients: 10, windowMinutes: 5 } },
      },
      now: () => clock,
      log: (l) => log.push(l),
      loadState: async (id) => ({ state: states.get(id)!, version: 1 }),
    });
    const paged = () => sends().map((s) => `${s.patientId} ${s.role} ${s.summary.split(',')[0]}`);
    try {
      await expect(paging.sweep(['P1', 'P5', 'P9'])).rejects.toThrow(
        `1 alert(s) could not be paged (stale-feed|P5|${since}: SqliteError); the others were swept`,
      );
      expect(paged()).toEqual(['P1 bedside nurse NO DATA', 'P9 bedside nurse NO DATA']);
      await expect(paging.sweep(['P1', 'P5', 'P9'])).rejects.toThrow(/could not be paged/);
      expect(paged()).toHaveLength(2); // nothing paged twice
      clock += 60_000;
      stateOf('P1', [1, 17]);
      stateOf('P9', [1, 17]);
      await expect(paging.sweep(['P1', 'P5', 'P9'])).rejects.toThrow(/could not be paged/);
      expect(paged()).toEqual([
        'P1 bedside nurse NO DATA',
        'P9 bedside nurse NO DATA',
        'P1 bedside nurse Data resumed',
        'P9 bedside nurse Data resumed',
      ]);
      expect(db.prepare("SELECT count(*) FROM pages WHERE patient_id = 'P5'").pluck().get()).toBe(0); // none written
    } finally {
      await paging.close();
    }
  });
});

describe('the stale-feed sweep of crs serve when the host clock steps, pinned by a mutation run', () => {
  // P1's monitor last sent at `since` (its state and the patients row, as a commit leaves them); the sweeps are full
  // ones, as the server's own timer runs them. `at(m, stepMs)`: m minutes after `since` by the monotonic clock, the
  // wall clock stepped by stepMs in all.
  const quiet = (clockStartsAt = 0) => {
    const states = new Map<string, PatientState>();
    const dataAt = (minutes: number[]) => {
      let state: PatientState | undefined;
      for (const m of [enrol('P1', 0), ...minutes.map((t) => msg('P1', t, { vitals: { heartRate: 80 } }))])
        state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      states.set('P1', state!);
      db.prepare(
        "INSERT INTO patients (patient_id, version, state, updated_at, feed_since) VALUES ('P1', 1, '{}', '', ?) ON CONFLICT DO UPDATE SET feed_since = excluded.feed_since",
      ).run(state!.lastMonitorAt);
      return state!.lastMonitorAt!;
    };
    const since = dataAt([1]);
    const onFeed = (m: number) => since + m * 60_000;
    let mono = 0;
    let clock = onFeed(clockStartsAt);
    const paging = pagingWith({
      now: () => clock,
      monotonic: () => mono,
      watchClock: true,
      loadState: async (id) => (states.has(id) ? { state: states.get(id)!, version: 1 } : undefined),
    });
    const at = async (m: number, stepMs = 0) => {
      mono = m * 60_000;
      clock = onFeed(m) + stepMs;
      await paging.sweep();
      return sends().map((s) => s.summary.split(',')[0]);
    };
    return { paging, at, dataAt, onFeed };
  };
  const stale = DEFAULT_CONFIG.paging.staleFeedMinutes;

  it('a step back by an hour: the no-data alert goes when the monitor has been quiet long enough, not an hour late', async () => {
    const { paging, at } = quiet();
    try {
      expect(await at(1, -HOUR)).toEqual([]);
      expect(await at(stale - 0.1, -HOUR)).toEqual([]);
      expect(await at(stale, -HOUR)).toEqual(['NO DATA']);
    } finally {
      await paging.close();
    }
  });

  it('two steps back: the quiet time counts both out', async () => {
    const { paging, at } = quiet();
    try {
      expect(await at(1, -HOUR)).toEqual([]);
      expect(await at(2, -2 * HOUR)).toEqual([]);
      expect(await at(stale - 0.1, -2 * HOUR)).toEqual([]);
      expect(await at(stale, -2 * HOUR)).toEqual(['NO DATA']);
    } finally {
      await paging.close();
    }
  });

  it('data after a step back: the quiet time counts from it, by the clock as it is', async () => {
    const { paging, at, dataAt, onFeed } = quiet();
    try {
      expect(await at(1, -30_000)).toEqual([]); // half a minute back
      // The monitor sends again at minute 5, stamped by the clock as it is.
      expect(dataAt([1, (onFeed(5) - 30_000 - onFeed(-1)) / 60_000])).toBe(onFeed(5) - 30_000);
      expect(await at(5 + stale - 0.1, -30_000)).toEqual([]);
      expect(await at(5 + stale, -30_000)).toEqual(['NO DATA']);
    } finally {
      await paging.close();
    }
  });

  it('a clock that started behind the data it stored, stepped forward: the alert goes at its time, not hours later', async () => {
    const { paging, at } = quiet(2 - 3 * 60); // three hours behind at minute 2
    try {
      await paging.sweep();
      expect(await at(3)).toEqual([]); // the step forward, seen
      expect(await at(stale - 0.1)).toEqual([]);
      expect(await at(stale)).toEqual(['NO DATA']);
    } finally {
      await paging.close();
    }
  });
});

describe('the stale-feed sweep of crs serve grouping a ward, pinned by a mutation run', () => {
  it('records who belongs to the ward alert it pages, so that a restart finds them under it', async () => {
    const states = new Map<string, PatientState>();
    for (const id of ['P1', 'P2', 'P3']) {
      let state: PatientState | undefined;
      for (const m of [enrol(id, 0), msg(id, 1, { vitals: { heartRate: 80 } })])
        state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      states.set(id, state!);
    }
    const since = states.get('P1')!.lastMonitorAt!;
    const paging = pagingWith({
      now: () => since + 16 * 60_000,
      loadState: async (id) => ({ state: states.get(id)!, version: 1 }),
    });
    try {
      await paging.sweep(['P1', 'P2', 'P3']);
      expect(sends().map((s) => s.patientId)).toEqual(['ward H4']); // three quiet in one ward: one page
    } finally {
      await paging.close();
    }
    db.close();
    db = openDataDir(dir);
    const inForce = new SqlitePageStore(db).staleFeedAlerts();
    const alertId = [...inForce.keys()].find((k) => k.startsWith('stale-feed|ward H4|'))!;
    expect(['P1', 'P2', 'P3'].map((id) => inForce.get(id)?.alertId)).toEqual([alertId, alertId, alertId]);
  });
});

/**
 * Patients fed for crs serve's sweeps (their states as its commits leave them), at a clock a minute past the staleness
 * of a monitor that last sent at 08:02 (T0 + 2 min).
 */
function quietWards() {
  const states = new Map<string, PatientState>();
  const feed = (id: string, messages: DeviceMessage[]) => {
    let state = states.get(id);
    for (const m of messages) state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    states.set(id, state!);
  };
  const ehr = (m: DeviceMessage): DeviceMessage => ({ ...m, source: { deviceId: 'adt', kind: 'ehr' } });
  const w = {
    clock: T0 + (2 + DEFAULT_CONFIG.paging.staleFeedMinutes + 1) * 60_000,
    /** Enrolled by the EHR at 08:00 in `ward`, the monitor never sent. */
    neverSent: (id: string, ward = 'H4') => feed(id, [ehr(enrol(id, 0, { ward }))]),
    /** Enrolled at 08:00 in `ward`, the monitor sent until 08:02. */
    stopped: (id: string, ward = 'H4') => feed(id, [enrol(id, 0, { ward }), msg(id, 2, { vitals: { heartRate: 80 } })]),
    /** A minute later, monitor data from each of `ids`. */
    dataAgain: (...ids: string[]) => {
      w.clock += 60_000;
      for (const id of ids) feed(id, [msg(id, (w.clock - T0) / 60_000 - 1, { vitals: { heartRate: 80 } })]);
    },
    paging: () =>
      pagingWith({
        now: () => w.clock,
        loadState: async (id) => (states.has(id) ? { state: states.get(id)!, version: 1 } : undefined),
      }),
    /** crs serve started again on the database: start() and its first (full) sweep, then stopped. */
    restarted: async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const again = w.paging();
      try {
        again.start(); // its first sweep, at once
        await again.sweep();
      } finally {
        await again.close();
        vi.useRealTimers();
      }
    },
  };
  return w;
}

describe('the all-clear of a ward no-data alert raised before a restart of crs serve', () => {
  // Until 2026-12-07 the time the alert gave was held in memory only: after a restart its all-clear named it by its
  // id's time, "the no-data alert of 08:00" (P1's enrolment), where the alert said "1 since 08:02, 2 since enrolment".
  it('names the alert by the time it gave, as before the restart', async () => {
    const w = quietWards();
    // P1 and P3 enrolled by the EHR at 08:00, their monitors never sent; P2's sent until 08:02.
    w.neverSent('P1');
    w.stopped('P2');
    w.neverSent('P3');
    const first = w.paging();
    try {
      await first.sweep(['P1', 'P2', 'P3']);
    } finally {
      await first.close();
    }
    expect(sends().map((s) => s.summary)).toEqual([
      expect.stringContaining('3 monitors quiet, 1 since 2026-01-10 08:02 UTC, 2 since enrolment'),
    ]);
    db.close(); // the server stops; the monitors send again meanwhile
    db = openDataDir(dir);
    w.dataAgain('P1', 'P2', 'P3');
    await w.restarted();
    expect(sends().map((s) => s.summary)[1]).toMatch(
      /^Data resumed, ward H4: every patient of the no-data alert of 2026-01-10 08:02 UTC has monitor data again /,
    );
  });
});

describe('a ward no-data alert cleared just before crs serve stopped', () => {
  // Found 2026-12-07: the sweep pages the all-clear, then records that the alert is no longer in force (its rows in
  // stale_feed_said, stale_feed_resumed and stale_feed_members dropped). A server stopped between the two kept those
  // rows for good: the alert, cleared in the pages, was never read again, and nothing dropped them.
  it('drops what was kept of it at the next start, and nothing of an alert in force; pages nothing more', async () => {
    const w = quietWards();
    // In wards H4 and H5, some monitors never sent (each alert gives a time not its id's: said), some stopped.
    for (const id of ['P1', 'P3']) w.neverSent(id);
    w.stopped('P2');
    w.neverSent('Q1', 'H5');
    for (const id of ['Q2', 'Q3']) w.stopped(id, 'H5');
    const TABLES = ['stale_feed_said', 'stale_feed_resumed', 'stale_feed_members'];
    const kept = () => TABLES.map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all());
    const first = w.paging();
    try {
      await first.sweep(['P1', 'P2', 'P3', 'Q1', 'Q2', 'Q3']); // the two ward alerts
      w.dataAgain('P2', 'Q2');
      await first.sweep(['P2', 'Q2']); // resumed: named by the all-clears
      expect(kept().map((rows) => rows.length)).toEqual([2, 2, 4]);
      w.dataAgain('P1', 'P3');
      // The server stops after H4's all-clear is paged, before the sweep records the alert gone.
      const record = vi.spyOn(SqlitePageStore.prototype, 'recordStaleFeeds').mockImplementationOnce(() => {
        throw new Error('stopped');
      });
      try {
        await expect(first.sweep(['P1', 'P3'])).rejects.toThrow('stopped');
      } finally {
        record.mockRestore();
      }
    } finally {
      await first.close();
    }
    const paged = sends().map((s) => s.summary);
    expect(paged).toEqual([
      expect.stringContaining('NO DATA, ward H4'),
      expect.stringContaining('NO DATA, ward H5'),
      expect.stringMatching(/^Data resumed, ward H4/),
    ]);
    const before = kept();
    expect(before.map((rows) => rows.length)).toEqual([2, 2, 4]);
    const inForceBefore = new SqlitePageStore(db).staleFeedAlerts();
    db.close();
    db = openDataDir(dir);
    w.clock += 60_000;
    await w.restarted();
    // H4's rows gone, H5's (in force) as they were; what is in force, and what was paged, unchanged.
    const h5 = (r: unknown) => JSON.stringify(r).includes('ward H5');
    expect(kept()).toEqual(before.map((rows) => rows.filter(h5)));
    expect(kept().map((rows) => rows.length)).toEqual([1, 1, 2]);
    expect(new SqlitePageStore(db).staleFeedAlerts()).toEqual(inForceBefore);
    expect(sends().map((s) => s.summary)).toEqual(paged);
  });
});

describe('a data directory of issue 5 (schema version 1)', () => {
  function legacyDatabase(file: string): { notificationId: string; inboxMessage: DeviceMessage } {
    const old = new Database(file);
    old.exec(readFileSync(new URL('../fixtures/embedded-schema-v1.sql', import.meta.url), 'utf8'));
    old.pragma('user_version = 1');
    let state: PatientState | undefined;
    const messages = [enrol('P1', 0), msg('P1', 10, { vitals: { temperatureC: 39.2, heartRate: 100 } }, 'legacy-2')];
    const notifications = messages.flatMap((m) => {
      const step = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m));
      state = step.state;
      return step.kind === 'applied' ? step.notifications : [];
    });
    // As that version stored them: its patient state (version 1, from its own reducer), its notification ids.
    const n = { ...notifications[0]!, notificationId: 'crs|P1|legacy-2' };
    const stateV1 = (
      JSON.parse(readFileSync(new URL('../fixtures/patient-states-v1.json', import.meta.url), 'utf8')) as Record<
        string,
        unknown
      >
    ).P1;
    old
      .prepare('INSERT INTO patients (patient_id, version, state, assessment, updated_at) VALUES (?, 1, ?, NULL, ?)')
      .run('P1', JSON.stringify(stateV1), '2026-01-10T09:00:00Z');
    old
      .prepare('INSERT INTO outbox (notification_id, patient_id, body, created_at) VALUES (?, ?, ?, ?)')
      .run(n.notificationId, 'P1', JSON.stringify(n), '2026-01-10T09:00:00Z');
    old
      .prepare("INSERT INTO deliveries (notification_id, sink, sent_at) VALUES (?, 'stdout', '2026-01-10T09:00:01Z')")
      .run(n.notificationId);
    old
      .prepare(
        `INSERT INTO pages (notification_id, patient_id, condition, kind, from_grade, to_grade, triggered_at, delivered_at, acknowledged_at, acknowledged_by)
       VALUES (?, 'P1', 'crs', 'escalation', 0, 1, '2026-01-10T09:00:00Z', '2026-01-10T09:00:01Z', '2026-01-10T09:03:00Z', 'Dr Ada')`,
      )
      .run(n.notificationId);
    const inboxMessage = msg('P1', 20, { vitals: { heartRate: 90 } });
    old
      .prepare('INSERT INTO inbox (patient_id, message_id, body, received_at) VALUES (?, ?, ?, ?)')
      .run(
        'P1',
        inboxMessage.messageId,
        JSON.stringify({ message: inboxMessage, receivedAt: '2026-01-10T09:05:00Z', sender: 'gw' }),
        '2026-01-10T09:05:00Z',
      );
    old.close();
    return { notificationId: n.notificationId, inboxMessage };
  }

  it('is migrated in place: nothing accepted is lost, old pages are not paged again, their acknowledgements go to the audit trail', async () => {
    db.close();
    const file = join(dir, DB_FILE);
    rmSync(file);
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    const { notificationId, inboxMessage } = legacyDatabase(file);

    db = openDataDir(dir);
    expect(db.pragma('user_version', { simple: true })).toBe(15);
    expect(db.prepare('SELECT message_id FROM inbox').pluck().all()).toEqual([inboxMessage.messageId]);
    expect(db.prepare('SELECT kind, item_id FROM outbox').all()).toEqual([
      { kind: 'notification', item_id: notificationId },
    ]);
    expect(db.prepare('SELECT sink FROM deliveries ORDER BY sink').pluck().all()).toEqual(['pager', 'stdout']);
    expect(db.prepare("SELECT feed_since FROM patients WHERE patient_id = 'P1'").pluck().get()).toBe(
      Date.parse('2026-01-10T08:10:00Z'),
    );
    const audit = await all(new SqliteAuditLog(db), 'P1');
    expect(audit.map((e) => [e.type, e.details.by ?? null])).toEqual([
      ['notification', null],
      ['acknowledgement', 'Dr Ada'],
    ]);
    db.close();

    // The server starts on it: the queued message is graded, nothing old is paged or printed again.
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
    // The server restarts an hour after the monitor's last data, with feeds stale after two (no alert here).
    const server = await startEmbeddedServer({
      dataDir: dir,
      config: { ...DEFAULT_CONFIG, paging: { ...DEFAULT_CONFIG.paging, staleFeedMinutes: 120 } },
      now: () => Date.parse('2026-01-10T09:10:00Z'),
      port: 0,
      pageStream: out,
      pageLines: true,
      log: () => undefined,
    });
    try {
      await until(() => server.queue.pending() === 0, 'the queue graded');
      // Idle: whatever the grading put in the outbox has been through every lane (a page printed would show).
      await server.dispatcher.settled();
      expect(server.dispatcher.backlog('stdout')).toBe(0);
      await new Promise((r) => setImmediate(r));
      expect(lines).toEqual([]);
      expect((await server.paging.store.patientPages('P1', 10)).pages).toEqual([]);
    } finally {
      await server.close();
    }
    db = openDataDir(dir);
    // The version-1 state was read, graded on and written back as version 2.
    const stored = JSON.parse(
      db.prepare("SELECT state FROM patients WHERE patient_id = 'P1'").pluck().get() as string,
    ) as PatientState;
    expect([stored.v, stored.seq, stored.notified.crs.grade]).toEqual([2, 1, 1]);
  });

  it('refuses a database from a newer crs', () => {
    db.pragma('user_version = 99');
    db.close();
    expect(() => openDataDir(dir)).toThrow(/schema version 99 is newer than this crs/);
    const fix = new Database(join(dir, DB_FILE));
    fix.pragma('user_version = 14');
    fix.close();
    db = openDataDir(dir);
  });
});

/** crs serve's paging on a clock the test moves (from minute 1), the delivery watch over it, and their one log. */
function watchedPaging() {
  const t = { clock: min(1) };
  const log: string[] = [];
  const paging = pagingWith({ now: () => t.clock, log: (l) => log.push(l) });
  const watch = new DeliveryWatch({
    lanes: () => [],
    lastTickAt: () => paging.lastTickAt,
    setAside: () => paging.setAside,
    deliveryAlertMinutes: DEFAULT_PAGING.deliveryAlertMinutes,
    now: () => t.clock,
    log: (l) => log.push(l),
    onChange: () => undefined,
  });
  return { t, log, paging, watch };
}
