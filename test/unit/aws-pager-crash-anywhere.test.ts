// Pages are neither lost nor doubled, and the trail says what happened, wherever the pager on AWS stops. Grade
// changes, technical alerts, silences, minute ticks, acknowledgements and the stale-feed sweep (four enrolled
// patients whose monitors send now and then) go to the pager over the DynamoDB page
// store and audit log twice: once with nothing failing, once with any DynamoDB request or page send failing before
// it is carried out or after (the send made, its answer lost), each failed call made again at the same time (the
// stream's or the schedule's retry), with a new pager or the same; in both runs one team's endpoint may refuse its
// pages (parked after a few tries). Both runs must end with the same pages and the same audit trail, and make the
// same sends (a repeat of a send cut short keeps its sendId, which receivers drop repeats by).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Pager, SendDeferred } from '#app/pager.ts';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { DynamoPageStore, DynamoParkedSends } from '#adapters/aws/dynamo-page-store.ts';
import { AUDIT_TABLE, PAGES_TABLE } from '#adapters/aws/table-layout.ts';
import { DEFAULT_CONFIG, TEAMS, type Team } from '#domain/config.ts';
import { pageEvent } from '#domain/page-event.ts';
import { DEFAULT_PAGING, PAGE_TEAMS, type PageTeam, type PageableNotification } from '#domain/paging.ts';
import { RecordRefused, type PageMessage } from '#ports';
import { gradePatient } from '#app/grade.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { sweepStaleFeeds } from '#adapters/aws/stale-feed-sweep.ts';
import { FakeDynamo, STATE_STORE_TABLES } from '#test/support/fake-dynamo.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

// Monitor data at T0 + minutes (msg, enrol).
const MINUTE = 60_000;
const SECRET = Buffer.alloc(32, 7);

type Fault = 'none' | 'before' | 'after';
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
      teams: fc.subarray([...TEAMS], { minLength: 1 }),
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

/** A client whose requests fail as the plan says, one entry a request, then all succeed. */
function faultyClient(ddb: FakeDynamo, plan: Fault[]): DynamoDBClient {
  const client = ddb.client();
  const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
  client.send = (async (command: unknown) => {
    const fault = plan.shift() ?? 'none';
    if (fault === 'before') throw Object.assign(new Error('injected: failed before'), { name: 'InternalServerError' });
    const out = await send(command);
    if (fault === 'after') throw Object.assign(new Error('injected: response lost'), { name: 'TimeoutError' });
    return out;
  }) as typeof client.send;
  return client;
}

interface Run {
  /** Every send made, by sendId, in order (repeats included). */
  sends: string[];
  pages: string[];
  trail: string[];
}

/** `refusing`: the teams whose endpoint refuses every page (parked after a few tries), in both runs alike. */
async function play(
  ddb: FakeDynamo,
  script: Op[],
  plan: Fault[],
  fresh: boolean[],
  refusing: PageTeam[],
): Promise<Run> {
  ddb.reset();
  let now = T0;
  const sends: string[] = [];
  let f = 0;
  // Monitor data is graded with nothing failing (grading's failures are aws-crash-anywhere.test.ts's).
  const grading = new DynamoStateStore(ddb.client(), 'state', () => now, 'audit', 'seen');
  for (let k = 1; k <= 4; k++) await gradePatient(grading, DEFAULT_CONFIG, `P-${k}`, [enrol(`P-${k}`, 0)]);
  const pagerOf = () => {
    const client = faultyClient(ddb, plan);
    // No grace for unsent pages: the call made again at the same time sends what the failed one left unsent (on
    // AWS the next tick does, after UNSENT_GRACE_MS, so that overlapping ticks never send a page twice).
    const pages = new DynamoPageStore(client, 'pages', () => now, 'audit', 0);
    return {
      pages,
      states: new DynamoStateStore(client, 'state', () => now),
      pager: new Pager({
        pages,
        sender: {
          send: async (m: PageMessage) => {
            if (refusing.includes(m.page.team)) throw new RecordRefused('the endpoint refuses this page');
            const fault = plan.shift() ?? 'none';
            if (fault === 'before') throw new Error('injected: SNS down');
            sends.push(pageEvent(m, now).sendId);
            if (fault === 'after') throw new Error('injected: publish answer lost');
          },
        },
        audit: new DynamoAuditLog(client, 'audit', () => now),
        config: DEFAULT_PAGING,
        ackSecret: SECRET,
        ackBaseUrl: 'https://crs.example.org/ack/',
        parked: new DynamoParkedSends(client, 'pages'),
        refusedDelayMs: 0,
      }),
    };
  };
  let current = pagerOf();
  /** Until it is carried out whole: a stored page whose send failed is the next tick's, at the same time. */
  const untilDone = async (call: (p: Pager, c: typeof current) => Promise<unknown>) => {
    for (let attempt = 0; ; attempt++) {
      expect(attempt, 'a call never carried out').toBeLessThan(200);
      try {
        await call(current.pager, current);
        return;
      } catch (err) {
        if (!(err instanceof Error) || !/injected/.test(err.message)) throw err;
        if (fresh[f++ % fresh.length]) current = pagerOf();
        if (err instanceof SendDeferred) call = (p) => p.onTick(now);
      }
    }
  };
  const grades = new Map<number, number>();
  const silences: string[] = [];
  let n = 0;
  for (const step of script) {
    if (step.op === 'data') {
      const m = msg(`P-${step.patient}`, (now - T0) / MINUTE, { vitals: { heartRate: 80 } }, `d${++n}`);
      await gradePatient(grading, DEFAULT_CONFIG, m.patientId, [m]);
    } else if (step.op === 'sweep') {
      // The escalate function's minute: the stale-feed sweep, then the ladders.
      now += step.minutes * MINUTE;
      await untilDone(async (p, c) => {
        await sweepStaleFeeds(
          { states: c.states, pages: c.pages, pager: p, config: DEFAULT_PAGING, timeZone: 'UTC' },
          now,
        );
        await p.onTick(now);
      });
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
      now += step.minutes * MINUTE;
      await untilDone((p) => p.onTick(now));
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
      const open = await new DynamoPageStore(ddb.client(), 'pages', () => now).pendingPages(now + 24 * 60 * MINUTE);
      const page = [...open].sort((a, b) => a.pageId.localeCompare(b.pageId))[step.which % Math.max(1, open.length)];
      if (page) await untilDone((p) => p.acknowledge(page.pageId, 'dr-a', 'api', now));
    }
  }
  // Audit entries without their `written` stamp (a process-wide sequence that orders entries of one instant).
  const items = (table: string) =>
    ddb
      .items(table)
      .map(({ written, ...i }) => JSON.stringify(i))
      .sort();
  return { sends, pages: items('pages'), trail: items('audit') };
}

describe('the pager and the stale-feed sweep on DynamoDB when any request or send fails', () => {
  const ddb = new FakeDynamo({
    ...STATE_STORE_TABLES,
    pages: {
      partitionKey: 'pk',
      sortKey: 'sk',
      indexes: {
        [PAGES_TABLE.dueIndex]: { partitionKey: PAGES_TABLE.dueShardAttribute, sortKey: PAGES_TABLE.dueAtAttribute },
      },
    },
    audit: { partitionKey: AUDIT_TABLE.partitionKey, sortKey: AUDIT_TABLE.sortKey },
  });
  afterAll(() => ddb.restore());

  it('ends with the pages, trail and sends of a run where nothing fails', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        ops,
        fc.array(fc.constantFrom<Fault>('none', 'none', 'none', 'none', 'before', 'after'), { maxLength: 300 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        fc.subarray([...PAGE_TEAMS], { maxLength: 1 }),
        async (script, faults, fresh, refusing) => {
          const expected = await play(ddb, script, [], [false], refusing);
          const got = await play(ddb, script, [...faults], fresh, refusing);
          expect(new Set(expected.sends).size).toBe(expected.sends.length);
          expect([...new Set(got.sends)].sort()).toEqual([...expected.sends].sort());
          expect(got.pages).toEqual(expected.pages);
          expect(got.trail).toEqual(expected.trail);
        },
      ),
      { numRuns: 150 },
    );
  });
});
