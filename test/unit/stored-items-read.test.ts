// Pages and silences stored in a shape the pager cannot use (an older version's, a hand edit): each is read whole or
// named, on the real SQLite store crs serve pages from, as the tick tells its operators ("set aside: <id> (<why>)").
// Pinned by a mutation run (2026-12-05): the checks of each field had no test; a page with a field of another type
// was stepped and sent as it stood, and a silence of another shape held pages it should not.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqlitePageSender, SqlitePageStore } from '#adapters/sqlite/pages.ts';
import { Pager, type SetAside } from '#app/pager.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { DeliveryWatch } from '#hosts/embedded/delivery-watch.ts';
import { EmbeddedPaging } from '#hosts/embedded/paging.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { DEFAULT_PAGING, readPage, readSilence, type PageableNotification } from '#domain/paging.ts';

const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;

let dir: string;
let db: Db;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-items-'));
  db = openDataDir(dir);
});
afterEach(() => {
  if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function sqlitePager() {
  return new Pager({
    pages: new SqlitePageStore(db),
    audit: new SqliteAuditLog(db),
    sender: new SqlitePageSender(db, { now: () => T, onSent: () => undefined }),
    config: DEFAULT_PAGING,
    ackSecret: Buffer.alloc(32, 3),
    ackBaseUrl: 'https://crs.example/ack/',
  });
}

const sends = () =>
  (db.prepare("SELECT body FROM outbox WHERE kind = 'page' ORDER BY seq").all() as { body: string }[]).map((r) => {
    const e = JSON.parse(r.body) as PageEvent;
    return `${e.patientId} ${e.role}`;
  });

const grade3 = (patientId: string): PageableNotification => ({
  notificationId: `crs|${patientId}|#1`,
  patientId,
  condition: 'crs',
  kind: 'escalation',
  fromGrade: 1,
  toGrade: 3,
  teams: ['icu'],
  summary: `PROVISIONAL CRS grade 3, patient ${patientId}`,
});

const body = (pageId: string) =>
  JSON.parse(
    (db.prepare('SELECT body FROM pages WHERE page_id = ?').pluck().get(pageId) as string) ?? 'null',
  ) as Record<string, unknown>;
const setBody = (pageId: string, b: unknown) =>
  db.prepare('UPDATE pages SET body = ? WHERE page_id = ?').run(JSON.stringify(b), pageId);

describe('a page row of another shape: pinned by a mutation run', () => {
  // Each edit of P9's page, and what the tick says of it. P2's ladder goes on beside it every time.
  const edits: [string, (b: Record<string, unknown>) => unknown, string][] = [
    ['its level as text', (b) => ({ ...b, level: '0' }), 'level is not what a page holds there'],
    ['a kind no version wrote', (b) => ({ ...b, kind: 'page' }), 'kind is not what a page holds there'],
    ['a status no version wrote', (b) => ({ ...b, status: 'opened' }), 'status is not what a page holds there'],
    ['no delivered flag', ({ delivered: _, ...b }) => b, 'delivered is missing'],
    ['its dueAt as text', (b) => ({ ...b, dueAt: String(b.dueAt) }), 'dueAt is not what a page holds there'],
    ['another page in it', (b) => ({ ...b, pageId: 'crs|P2|#1|icu' }), 'it holds another page id'],
    [
      'when a silence began to hold it as text',
      (b) => ({ ...b, heldAt: 'soon' }),
      'heldAt is not what a page holds there',
    ],
    ['an array', () => [1], 'not a JSON object'],
    [
      'an acknowledgement without its time',
      (b) => ({ ...b, ack: { by: 'Dr A', via: 'link' } }),
      'ack is not what a page holds there',
    ],
    [
      'the page that replaced it as a number',
      (b) => ({ ...b, supersededBy: 7 }),
      'supersededBy is not what a page holds there',
    ],
    [
      'the teams the newer grade went to as text',
      (b) => ({ ...b, supersededTeams: 'icu' }),
      'supersededTeams is not what a page holds there',
    ],
    [
      'the grade its change went from as text',
      (b) => ({ ...b, fromGrade: '1' }),
      'fromGrade is not what a page holds there',
    ],
    [
      'the teams the newer grade went to not as text (pinned by a mutation run)',
      (b) => ({ ...b, supersededTeams: ['icu', 7] }),
      'supersededTeams is not what a page holds there',
    ],
  ];
  for (const [what, edit, reason] of edits)
    it(`a page row with ${what} is set aside, named with why, and never sent; the other ladders go on`, async () => {
      const pager = sqlitePager();
      await pager.onNotification(grade3('P9'), min(0));
      await pager.onNotification(grade3('P2'), min(0));
      setBody('crs|P9|#1|icu', edit(body('crs|P9|#1|icu')));
      expect(await pager.onTick(min(6))).toEqual({
        setAside: [{ pageId: 'crs|P9|#1|icu', reason: `its stored item cannot be read: ${reason}` }],
      });
      expect(sends()).toEqual(['P9 ICU registrar', 'P2 ICU registrar', 'P2 ICU consultant']);
    });

  it("a page a higher grade replaced keeps the id of its team's newer page, read back as stored", async () => {
    // The acknowledge link of the replaced page names the newer one (2026-12-06): no write of its own.
    const pager = sqlitePager();
    await pager.onNotification({ ...grade3('P9'), toGrade: 2 }, min(0));
    await pager.onNotification({ ...grade3('P9'), notificationId: 'crs|P9|#2', toGrade: 4 }, min(1));
    const store = new SqlitePageStore(db);
    expect(await store.get('crs|P9|#1|icu')).toMatchObject({ status: 'superseded', supersededBy: 'crs|P9|#2|icu' });
    expect((await store.get('crs|P9|#2|icu'))!.supersededBy).toBeUndefined();
  });

  it('a page row whose revision is not a whole number is set aside, not stepped', async () => {
    const pager = sqlitePager();
    await pager.onNotification(grade3('P9'), min(0));
    db.prepare('UPDATE pages SET rev = 1.5 WHERE page_id = ?').run('crs|P9|#1|icu');
    expect(await pager.onTick(min(6))).toEqual({
      setAside: [
        { pageId: 'crs|P9|#1|icu', reason: 'its stored item cannot be read: its revision is not a whole number' },
      ],
    });
    expect(sends()).toEqual(['P9 ICU registrar']);
  });
});

describe('a silence row of another shape: pinned by a mutation run', () => {
  const silence = { from: min(0), until: min(60), createdBy: 'Nurse B', reason: 'MRI' };
  const edits: [string, (b: Record<string, unknown>) => unknown, string][] = [
    [
      'a scope naming neither a patient nor a team',
      (b) => ({ ...b, scope: { ward: '4B' } }),
      'scope names neither a patient nor a team',
    ],
    ['its end as text', (b) => ({ ...b, until: String(b.until) }), 'until is not what a silence holds there'],
    ['an ended time as text', (b) => ({ ...b, endedAt: 'soon' }), 'endedAt is not what a silence holds there'],
    ['another silence in it', (b) => ({ ...b, silenceId: 's2' }), 'it holds another silence id'],
  ];
  for (const [what, edit, reason] of edits)
    it(`a silence row with ${what} holds nothing and is named: the page it held is paged`, async () => {
      const pager = sqlitePager();
      await pager.silence({ ...silence, silenceId: 's1', scope: { patientId: 'P9' } }, min(0));
      await pager.onNotification(grade3('P9'), min(1)); // held by s1
      expect(sends()).toEqual([]);
      const b = JSON.parse(
        db.prepare("SELECT body FROM silences WHERE silence_id = 's1'").pluck().get() as string,
      ) as Record<string, unknown>;
      db.prepare("UPDATE silences SET body = ? WHERE silence_id = 's1'").run(JSON.stringify(edit(b)));
      expect((await pager.onTick(min(2))).unreadableSilences).toEqual([{ silenceId: 's1', reason }]);
      expect(sends()).toEqual(['P9 ICU registrar']);
    });
});

describe('readPage and readSilence name what is wrong, never the value: pinned by a mutation run', () => {
  it('names a field missing, one of another type, and JSON that is no object', () => {
    expect(readPage('p', '[]', 1)).toEqual({ unreadable: true, pageId: 'p', reason: 'not a JSON object' });
    expect(readPage('p', '"secret text"', 1)).toEqual({ unreadable: true, pageId: 'p', reason: 'not a JSON object' });
    expect(readSilence('s', '[]')).toEqual({ unreadable: true, silenceId: 's', reason: 'not a JSON object' });
    expect(
      readSilence('s', { silenceId: 's', scope: { team: 'icu' }, from: 1, until: 2, createdBy: 7, reason: '' }),
    ).toEqual({ unreadable: true, silenceId: 's', reason: 'createdBy is not what a silence holds there' });
  });
});

describe('what the tick names, and how: pinned by a mutation run', () => {
  const silence = { from: min(0), until: min(10), createdBy: 'Nurse B', reason: 'MRI' };
  const corrupt = (silenceId: string) =>
    db.prepare("UPDATE silences SET body = '{' WHERE silence_id = ?").run(silenceId);

  it('a silence that ended, cannot be read and still holds a page: named, and the page it held is paged', async () => {
    const pager = sqlitePager();
    await pager.silence({ ...silence, silenceId: 's1', scope: { patientId: 'P9' } }, min(0));
    await pager.onNotification(grade3('P9'), min(1)); // held by s1
    corrupt('s1');
    // Past its end, the store no longer lists it as in force: the tick reads it by the id the page holds.
    expect((await pager.onTick(min(11))).unreadableSilences).toEqual([{ silenceId: 's1', reason: 'not JSON' }]);
    expect(sends()).toEqual(['P9 ICU registrar']);
  });

  it('a silence that cannot be read, in force when a late step fell due and ended since, is named', async () => {
    const pager = sqlitePager();
    await pager.silence({ ...silence, silenceId: 's7', scope: { patientId: 'P7' } }, min(0));
    corrupt('s7');
    await pager.onNotification(grade3('P2'), min(0));
    // The consultant's step fell due at 5 minutes, while s7 was in force; the tick comes at 11.
    expect((await pager.onTick(min(11))).unreadableSilences).toEqual([{ silenceId: 's7', reason: 'not JSON' }]);
    expect(sends().slice(0, 2)).toEqual(['P2 ICU registrar', 'P2 ICU consultant']);
  });

  it('names the pages and silences set aside in the order of their ids, whatever order they were read in', async () => {
    const pager = sqlitePager();
    await pager.silence({ ...silence, silenceId: 'sb', scope: { patientId: 'P7' } }, min(0));
    await pager.silence({ ...silence, silenceId: 'sa', from: min(1), scope: { patientId: 'P8' } }, min(1));
    corrupt('sb');
    corrupt('sa');
    await pager.onNotification(grade3('P9'), min(1));
    await pager.onNotification(grade3('P2'), min(2));
    db.prepare("UPDATE pages SET body = '{'").run();
    // Both are due by 8 minutes (P9's first): read P9, then P2.
    expect(await pager.onTick(min(8))).toEqual({
      setAside: [
        { pageId: 'crs|P2|#1|icu', reason: 'its stored item cannot be read: not JSON' },
        { pageId: 'crs|P9|#1|icu', reason: 'its stored item cannot be read: not JSON' },
      ],
      unreadableSilences: [
        { silenceId: 'sa', reason: 'not JSON' },
        { silenceId: 'sb', reason: 'not JSON' },
      ],
    });
  });

  it("crs serve's timer loop says a silence it cannot read, by id, with the pages set aside", async () => {
    const pager = sqlitePager();
    await pager.silence({ ...silence, until: min(60), silenceId: 's1', scope: { patientId: 'P7' } }, min(0));
    corrupt('s1');
    const log: string[] = [];
    const paging = new EmbeddedPaging({
      db,
      config: DEFAULT_CONFIG,
      ackSecret: Buffer.alloc(32, 3),
      ackBaseUrl: () => 'https://crs.example/ack/',
      now: () => min(1),
      log: (l) => log.push(l),
      loadState: async () => undefined,
      onSent: () => undefined,
      onChanged: () => undefined,
    });
    try {
      await paging.tick();
      expect(log).toEqual([
        'paging: 1 page(s) set aside, the pager cannot step or send them: silence s1 (its stored item cannot be read: not JSON; it holds no page)',
      ]);
    } finally {
      await paging.close();
    }
  });

  it("the delivery watch's alert names the first five set aside, then says there are more", () => {
    const aside = (n: number): SetAside[] =>
      Array.from({ length: n }, (_, i) => ({
        pageId: `p${i + 1}`,
        reason: 'its team has no ladder in the paging config',
      }));
    let setAside = aside(5);
    const watch = new DeliveryWatch({
      lanes: () => [],
      lastTickAt: () => T,
      setAside: () => setAside,
      deliveryAlertMinutes: 5,
      now: () => T,
      log: () => undefined,
      onChange: () => undefined,
    });
    const why = (id: string) => `${id} (its team has no ladder in the paging config)`;
    watch.check();
    expect(watch.current()[0]!.text).toContain(`(${['p1', 'p2', 'p3', 'p4', 'p5'].map(why).join(', ')}):`);
    setAside = aside(6);
    watch.check();
    expect(watch.current()[0]!.text).toContain(`(${['p1', 'p2', 'p3', 'p4', 'p5'].map(why).join(', ')}, ...):`);
  });
});
