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
import { Pager } from '#app/pager.ts';
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
    ['an array', () => [1], 'not a JSON object'],
    [
      'an acknowledgement without its time',
      (b) => ({ ...b, ack: { by: 'Dr A', via: 'link' } }),
      'ack is not what a page holds there',
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
