// Pages are neither lost nor doubled, and the trail says what happened, wherever the pager on AWS stops. Grade
// changes, technical alerts, silences, minute ticks, acknowledgements and the stale-feed sweep (four enrolled
// patients whose monitors send now and then) go to the pager over the DynamoDB page
// store and audit log twice: once with nothing failing, once with any DynamoDB request or page send failing before
// it is carried out or after (the send made, its answer lost), each failed call made again at the same time (the
// stream's or the schedule's retry), with a new pager or the same; in both runs one team's endpoint may refuse its
// pages (parked after a few tries). Both runs must end with the same pages and the same audit trail, and make the
// same sends (a repeat of a send cut short keeps its sendId, which receivers drop repeats by).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { DynamoPageStore, DynamoParkedSends } from '#adapters/aws/dynamo-page-store.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { sweepStaleFeeds } from '#adapters/aws/stale-feed-sweep.ts';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { SqlitePageStore } from '#adapters/sqlite/pages.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { gradePatient } from '#app/grade.ts';
import { Pager, SendDeferred } from '#app/pager.ts';
import { DEFAULT_CONFIG, TEAMS, type Team } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { pageEvent } from '#domain/page-event.ts';
import { DEFAULT_PAGING, PAGE_TEAMS, type PageTeam, type PageableNotification } from '#domain/paging.ts';
import { RecordRefused, type AuditLog, type PageMessage, type PageStore, type ParkedSends } from '#ports';
import { FakeDynamo, PAGING_TABLES, faultyClient, type Fault } from '#test/support/fake-dynamo.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

// Monitor data at T0 + minutes (msg, enrol).
const MINUTE = 60_000;
const SECRET = Buffer.alloc(32, 7);

type Op =
  | { op: 'grade'; patient: number; toGrade: number; teams: Team[] }
  | { op: 'alert'; patient: number; subject: 'spo2' | 'stale-feed'; cleared: boolean }
  | { op: 'silence'; patient: number; team: Team | null; minutes: number }
  | { op: 'end-silence'; which: number }
  | { op: 'tick'; minutes: number }
  | { op: 'ack'; which: number }
  | { op: 'data'; patient: number }
  | { op: 'sweep'; minutes: number };

const ops = fc.array(
  fc.oneof(
    fc.record({
      op: fc.constant('grade' as const),
      patient: fc.integer({ min: 1, max: 2 }),
      toGrade: fc.integer({ min: 0, max: 4 }),
      teams: fc.shuffledSubarray([...TEAMS], { minLength: 1 }),
    }),
    fc.record({
      op: fc.constant('alert' as const),
      patient: fc.integer({ min: 1, max: 2 }),
      subject: fc.constantFrom('spo2' as const, 'stale-feed' as const),
      cleared: fc.boolean(),
    }),
    fc.record({
      op: fc.constant('silence' as const),
      patient: fc.integer({ min: 1, max: 2 }),
      team: fc.option(fc.constantFrom(...TEAMS)),
      minutes: fc.integer({ min: 5, max: 60 }),
    }),
    fc.record({ op: fc.constant('end-silence' as const), which: fc.nat() }),
    fc.record({ op: fc.constant('tick' as const), minutes: fc.integer({ min: 1, max: 20 }) }),
    fc.record({ op: fc.constant('ack' as const), which: fc.nat() }),
    fc.record({ op: fc.constant('data' as const), patient: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ op: fc.constant('sweep' as const), minutes: fc.integer({ min: 1, max: 20 }) }),
  ),
  { minLength: 1, maxLength: 16 },
);

/** The stores a pager runs over (new ones after a crash), and the backend's stale-feed sweep. */
interface Stores {
  pages: PageStore;
  audit: AuditLog;
  parked?: ParkedSends;
  sweep?: (pager: Pager, now: number) => Promise<unknown>;
}

interface Backend {
  stores(clock: { now: number }): Stores;
  /** Monitor data, graded with nothing failing (grading's failures are the other file's). */
  grade(message: DeviceMessage, clock: { now: number }): Promise<void>;
}

/** The pager over DynamoDB, every request failing as the plan says; monitor data graded on the same tables. */
function onDynamo(ddb: FakeDynamo, plan: Fault[]): Backend {
  return {
    stores: (clock) => {
      const client = faultyClient(ddb, plan);
      // No grace for unsent pages: the call made again at the same time sends what the failed one left unsent (on
      // AWS the next tick does, after UNSENT_GRACE_MS, so that overlapping ticks never send a page twice).
      const pages = new DynamoPageStore(client, 'pages', () => clock.now, 'audit', 0);
      const states = new DynamoStateStore(client, 'state', () => clock.now);
      return {
        pages,
        audit: new DynamoAuditLog(client, 'audit', () => clock.now),
        parked: new DynamoParkedSends(client, 'pages'),
        sweep: (pager, now) => sweepStaleFeeds({ states, pages, pager, config: DEFAULT_PAGING, timeZone: 'UTC' }, now),
      };
    },
    grade: async (m, clock) => {
      const store = new DynamoStateStore(ddb.client(), 'state', () => clock.now, 'audit', 'seen');
      await gradePatient(store, DEFAULT_CONFIG, m.patientId, [m]);
    },
  };
}

/**
 * Plays the script to the pager over the backend; returns every send made, by sendId, in order (repeats included).
 * `refusing`: the teams whose endpoint refuses every page (parked after a few tries).
 */
async function play(
  backend: Backend,
  script: Op[],
  plan: Fault[],
  fresh: boolean[],
  refusing: PageTeam[],
): Promise<string[]> {
  const clock = { now: T0 };
  const sends: string[] = [];
  let f = 0;
  for (let k = 1; k <= 4; k++) await backend.grade({ ...enrol(`P-${k}`, 0), messageId: `enrol-${k}` }, clock);
  const pagerOf = () => {
    const stores = backend.stores(clock);
    const pager = new Pager({
      pages: stores.pages,
      sender: {
        send: async (m: PageMessage) => {
          if (refusing.includes(m.page.team)) throw new RecordRefused('the endpoint refuses this page');
          const fault = plan.shift() ?? 'none';
          if (fault === 'before') throw new Error('injected: SNS down');
          sends.push(pageEvent(m, clock.now).sendId);
          if (fault === 'after') throw new Error('injected: publish answer lost');
        },
      },
      audit: stores.audit,
      config: DEFAULT_PAGING,
      ackSecret: SECRET,
      ackBaseUrl: 'https://crs.example.org/ack/',
      ...(stores.parked ? { parked: stores.parked } : {}),
      refusedDelayMs: 0,
    });
    return { ...stores, pager };
  };
  let current = pagerOf();
  /**
   * Until it is carried out whole: a stored page whose send failed is the next tick's, at the same time; a sweep
   * cut short by a send is run again whole, as the escalate function's next minute does (the sweep is idempotent:
   * it stores the alerts in force after paging them).
   */
  const untilDone = async (call: (p: Pager, c: typeof current) => Promise<unknown>, whenDeferred = 'tick') => {
    for (let attempt = 0; ; attempt++) {
      expect(attempt, 'a call never carried out').toBeLessThan(200);
      try {
        await call(current.pager, current);
        return;
      } catch (err) {
        if (!(err instanceof Error) || !/injected/.test(err.message)) throw err;
        if (fresh[f++ % fresh.length]) current = pagerOf();
        if (err instanceof SendDeferred && whenDeferred === 'tick') call = (p) => p.onTick(clock.now);
      }
    }
  };
  const grades = new Map<number, number>();
  const silences: string[] = [];
  let n = 0;
  for (const step of script) {
    const now = clock.now;
    if (step.op === 'data') {
      await backend.grade(
        msg(`P-${step.patient}`, (now - T0) / MINUTE, { vitals: { heartRate: 80 } }, `d${++n}`),
        clock,
      );
    } else if (step.op === 'sweep') {
      // The escalate function's minute: the stale-feed sweep, then the ladders.
      clock.now += step.minutes * MINUTE;
      await untilDone(async (p, c) => {
        await c.sweep?.(p, clock.now);
        await p.onTick(clock.now);
      }, 'again');
    } else if (step.op === 'alert') {
      const alert = {
        alertId: `${step.subject}|P-${step.patient}|#${++n}`,
        patientId: `P-${step.patient}`,
        subject: step.subject,
        cleared: step.cleared,
        summary: `${step.subject} ${step.cleared ? 'cleared' : 'raised'}`,
      };
      await untilDone((p) => p.onAlert(alert, now));
    } else if (step.op === 'silence') {
      const silence = {
        silenceId: `s${silences.length + 1}`,
        scope: step.team ? { team: step.team } : { patientId: `P-${step.patient}` },
        from: now,
        until: now + step.minutes * MINUTE,
        createdBy: 'Nurse B',
        reason: 'transfer',
      };
      silences.push(silence.silenceId);
      await untilDone((p) => p.silence(silence, now));
    } else if (step.op === 'end-silence') {
      const id = silences[step.which % Math.max(1, silences.length)];
      if (id) await untilDone((p) => p.endSilence(id, 'Nurse B', now));
    } else if (step.op === 'tick') {
      clock.now += step.minutes * MINUTE;
      await untilDone((p) => p.onTick(clock.now));
    } else if (step.op === 'grade') {
      const from = grades.get(step.patient) ?? 0;
      if (step.toGrade === from) continue;
      grades.set(step.patient, step.toGrade);
      const notification: PageableNotification = {
        notificationId: `crs|P-${step.patient}|#${++n}`,
        patientId: `P-${step.patient}`,
        condition: 'crs',
        kind: step.toGrade > from ? 'escalation' : 'de-escalation',
        toGrade: step.toGrade,
        teams: step.teams,
        summary: `PROVISIONAL CRS grade ${step.toGrade}`,
      };
      await untilDone((p) => p.onNotification(notification, now));
    } else {
      // An acknowledgement of one of the pages with something still to do: chosen once (a retry after a lost
      // answer finds that page acknowledged, and must not acknowledge another one).
      let chosen: { pageId: string } | undefined | null = null;
      await untilDone(async (p, c) => {
        if (chosen === null) {
          const open = (await c.pages.pendingPages(now + 24 * 60 * MINUTE)).pages;
          chosen = [...open].sort((a, b) => a.pageId.localeCompare(b.pageId))[step.which % Math.max(1, open.length)];
        }
        if (chosen) await p.acknowledge(chosen.pageId, 'dr-a', 'api', now);
      });
    }
  }
  return sends;
}

/** The tables as left, audit entries without their `written` stamp (a process-wide sequence for one instant). */
const tables = (ddb: FakeDynamo) => {
  const items = (table: string) =>
    ddb
      .items(table)
      .map(({ written, ...i }) => JSON.stringify(i))
      .sort();
  return { pages: items('pages'), trail: items('audit') };
};

describe('the pager and the stale-feed sweep on DynamoDB when any request or send fails', () => {
  const ddb = new FakeDynamo(PAGING_TABLES);
  afterAll(() => ddb.restore());

  it('ends with the pages, trail and sends of a run where nothing fails', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        ops,
        fc.array(fc.constantFrom<Fault>('none', 'none', 'none', 'none', 'before', 'after'), {
          maxLength: 300,
          size: 'max',
        }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        fc.subarray([...PAGE_TEAMS], { maxLength: 1 }),
        async (script, faults, fresh, refusing) => {
          ddb.reset();
          const sent = await play(onDynamo(ddb, []), script, [], [false], refusing);
          const expected = tables(ddb);
          ddb.reset();
          const plan = [...faults];
          const sentWithFailures = await play(onDynamo(ddb, plan), script, plan, fresh, refusing);
          expect(new Set(sent).size).toBe(sent.length);
          expect([...new Set(sentWithFailures)].sort()).toEqual([...sent].sort());
          expect(tables(ddb)).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});

// One behaviour on both backends: the same script (the stale-feed sweeps aside: each backend has its own, and the
// embedded one parks refused sends in its lanes, not in the pager) gives the same pages, trail and sends on SQLite.
describe('the pager on DynamoDB and on SQLite', () => {
  const ddb = new FakeDynamo(PAGING_TABLES);
  afterAll(() => ddb.restore());

  const view = async (pages: PageStore, audit: AuditLog) => {
    const out = { pages: [] as string[], trail: [] as string[] };
    for (const patientId of ['P-1', 'P-2']) {
      for (const p of (await pages.patientPages(patientId, 1000)).pages) out.pages.push(JSON.stringify(p));
    }
    for (const patientId of ['P-1', 'P-2', '*']) {
      for await (const e of audit.forPatient(patientId)) out.trail.push(JSON.stringify(e));
    }
    return { pages: out.pages.sort(), trail: out.trail.sort() };
  };

  it('gives the same pages, trail and sends', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        ops.map((script) => script.filter((s) => s.op !== 'sweep' && s.op !== 'data')),
        async (script) => {
          ddb.reset();
          const dynamo = onDynamo(ddb, []);
          const sentOnDynamo = await play(dynamo, script, [], [false], []);
          const dynamoView = await view(
            new DynamoPageStore(ddb.client(), 'pages'),
            new DynamoAuditLog(ddb.client(), 'audit', Date.now, { seenTable: 'seen', stateTable: 'state' }),
          );
          const dir = mkdtempSync(join(tmpdir(), 'crs-pager-agree-'));
          const db = openDataDir(dir);
          try {
            const sqlite: Backend = {
              stores: () => ({ pages: new SqlitePageStore(db), audit: new SqliteAuditLog(db) }),
              grade: async (m) => void (await gradePatient(new SqliteStateStore(db), DEFAULT_CONFIG, m.patientId, [m])),
            };
            const sentOnSqlite = await play(sqlite, script, [], [false], []);
            expect(sentOnSqlite).toEqual(sentOnDynamo);
            expect(await view(new SqlitePageStore(db), new SqliteAuditLog(db))).toEqual(dynamoView);
          } finally {
            db.close();
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      {
        numRuns: 100,
        // Found by this property: a grade change routed to radiology, then neurology (SQLite sent its pages in that
        // order, DynamoDB in the order of their ids).
        examples: [[[{ op: 'grade', patient: 1, toGrade: 1, teams: ['radiology', 'neurology'] }]]],
      },
    );
  });
});
