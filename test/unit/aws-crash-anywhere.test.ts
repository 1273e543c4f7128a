// Nothing lost, nothing doubled, wherever a grade invocation stops (guide: "retries, restarts and partial failures
// are normal conditions"). A patient's course (duplicates and reused ids among its messages) is graded in batches
// through gradePatient on the DynamoDB store twice: once with nothing failing, once with any DynamoDB request
// failing before it is carried out or after (a crash or a time-out with the write made), the batch then delivered
// again (SQS) to the same warm store or a fresh one, and earlier batches delivered again later (at-least-once,
// a dead-letter redrive). Both runs must leave the same state, the same grade changes in the outbox, each once,
// and the same audit trail, each message's assessment once. And the same batches on SQLite give what they give on
// DynamoDB, and `crs replay` prints the same grade changes (one behaviour everywhere).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { decodeStateItem } from '#adapters/aws/state-item.ts';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { gradePatient } from '#app/grade.ts';
import { Replay } from '#app/replay.ts';
import { resolveConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { notificationEvent } from '#domain/events.ts';
import { serializeState } from '#domain/state.ts';
import type { AuditEvent, AuditLog, StateStore } from '#ports';
import { course } from '#test/support/arbitraries.ts';
import { FakeDynamo, STATE_STORE_TABLES, faultyClient, type Fault } from '#test/support/fake-dynamo.ts';

// The shortest identity window, so that duplicates and reuses are also answered from the seen-messages table.
const resolved = resolveConfig({ dedupeWindow: 16 });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
const NOW = Date.parse('2026-01-10T09:00:00Z');
const PATIENT = 'P-1';

const storeOn = (client: DynamoDBClient) => new DynamoStateStore(client, 'state', () => NOW, 'audit', 'seen');

interface Outcome {
  state: unknown;
  /** The stale-feed index's value on the state item (byFeed): absent once the patient's monitoring ended. */
  feedSince: string | undefined;
  outbox: string[];
  trail: string[];
  /** Every applied id with its digests, from the seen-messages table and the state item's pending messages. */
  seen: string[];
}

async function outcome(ddb: FakeDynamo): Promise<Outcome> {
  const item = ddb.itemAt('state', { pk: { S: PATIENT }, sk: { S: STATE_TABLE.stateSortKey } });
  const decoded = item ? decodeStateItem(item[STATE_TABLE.stateAttribute]!.B!) : undefined;
  const outbox = ddb
    .items('state')
    .filter((i) => i[STATE_TABLE.kindAttribute]?.S === STATE_TABLE.outboxKind)
    .map((i) => `${i[STATE_TABLE.sortKey]!.S} ${JSON.stringify(without(i, ['createdAt', STATE_TABLE.ttlAttribute]))}`)
    .sort();
  const trail: string[] = [];
  const log = new DynamoAuditLog(ddb.client(), 'audit', () => NOW, { seenTable: 'seen', stateTable: 'state' });
  for await (const e of log.forPatient(PATIENT)) trail.push(JSON.stringify(e satisfies AuditEvent));
  const digests = new Map<string, Set<string>>();
  const add = (id: string, ds: readonly string[]) => {
    const set = digests.get(id) ?? new Set<string>();
    for (const d of ds) set.add(d);
    digests.set(id, set);
  };
  for (const i of ddb.items('seen')) add(i.messageId!.S!, i.digests!.SS!);
  for (const p of decoded?.pending ?? []) add(p.messageId, p.digests);
  return {
    state: decoded?.state,
    feedSince: item?.[STATE_TABLE.feedSinceAttribute]?.N,
    outbox,
    trail: trail.sort(),
    seen: [...digests].map(([id, ds]) => `${id} ${[...ds].sort().join(',')}`).sort(),
  };
}

function without(item: Record<string, AttributeValue>, names: string[]): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !names.includes(k)));
}

/**
 * A course with quiet messages among it (most messages change no grade: the state item keeps them pending), the EHR's
 * discharges (the end of monitoring, which takes the patient out of the stale-feed index) and re-admissions among
 * them, some messageIds reused by later messages with other content, cut into batches.
 */
const deliveries = course(PATIENT, 8).chain((messages) =>
  fc.record({
    messages: fc.constant(messages),
    quiet: fc.array(fc.nat({ max: 4 }), { minLength: messages.length, maxLength: messages.length }),
    adt: fc.array(fc.nat({ max: 5 }), { minLength: messages.length, maxLength: messages.length }),
    reuses: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 }),
    cuts: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 60, maxLength: 60 }),
    redeliveries: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
    // One request in three fails, most runs through to the end: fast-check's default size drew at most 10 faults,
    // all in the first requests of a run that makes about 60.
    faults: fc.array(fc.constantFrom<Fault>('none', 'none', 'none', 'none', 'before', 'after'), {
      maxLength: 300,
      size: 'max',
    }),
    warm: fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
  }),
);

/** From the EHR at a message's time (0: its discharge, 1: its re-admission, the bed only), else nothing. */
const ehrAt = (m: DeviceMessage, what: number): DeviceMessage[] =>
  what > 1
    ? []
    : [
        {
          messageId: `${m.messageId}-adt`,
          patientId: m.patientId,
          observedAt: m.observedAt,
          source: { deviceId: 'adt', kind: 'ehr' },
          ...(what === 0 ? { monitoringEnd: { reason: 'discharged' as const } } : { enrolment: { bed: 'B-2' } }),
        },
      ];

function batchesOf(
  messages: DeviceMessage[],
  quiet: number[],
  adt: number[],
  reuses: [number, number][],
  cuts: number[],
): DeviceMessage[][] {
  const out = messages.flatMap((m, i) => [
    structuredClone(m),
    ...ehrAt(m, adt[i]!),
    ...Array.from(
      { length: quiet[i]! },
      (_, j): DeviceMessage => ({
        messageId: `${m.messageId}-q${j}`,
        patientId: m.patientId,
        observedAt: m.observedAt,
        source: m.source,
        vitals: { heartRate: 80 + j },
      }),
    ),
  ]);
  for (const [a, b] of reuses) {
    const [from, to] = [a % out.length, b % out.length].sort((x, y) => x - y) as [number, number];
    if (from < to && out[to]!.enrolment === undefined) out[to]!.messageId = out[from]!.messageId;
  }
  const batches: DeviceMessage[][] = [];
  for (let i = 0, k = 0; i < out.length; k++) {
    const size = cuts[k % cuts.length]!;
    batches.push(out.slice(i, i + size));
    i += size;
  }
  return batches;
}

describe('grading on DynamoDB when any request fails', () => {
  const ddb = new FakeDynamo(STATE_STORE_TABLES);
  afterAll(() => ddb.restore());

  it('leaves the same state, outbox and audit trail as a run where nothing fails', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(deliveries, async ({ messages, quiet, adt, reuses, cuts, redeliveries, faults, warm }) => {
        const batches = batchesOf(messages, quiet, adt, reuses, cuts);

        ddb.reset();
        const clean = storeOn(ddb.client());
        let applied = 0;
        const paged: string[] = [];
        for (const batch of batches) {
          const result = await gradePatient(clean, CONFIG, PATIENT, batch);
          applied += result.steps.filter((s) => s.kind === 'applied').length;
          paged.push(...result.notifications.map((n) => n.notificationId));
        }
        const expected = await outcome(ddb);
        // The run where nothing fails keeps what it graded: each applied message's assessment, each grade change.
        expect(expected.trail.filter((e) => JSON.parse(e).type === 'assessment')).toHaveLength(applied);
        const outboxIds = expected.outbox.map((o) => JSON.parse(o.slice(o.indexOf(' ') + 1)).notificationId?.S);
        expect(outboxIds.filter((id) => id !== undefined)).toEqual(paged.sort());

        ddb.reset();
        const plan = [...faults];
        let store = storeOn(faultyClient(ddb, plan));
        let w = 0;
        // Each batch again until it is taken whole (as SQS redelivers a failed batch), and, after batch `at`,
        // an earlier batch once more.
        const queue: DeviceMessage[][] = [...batches];
        for (const [at, which] of redeliveries) {
          const i = at % batches.length;
          queue.splice(queue.indexOf(batches[i]!) + 1, 0, batches[which % (i + 1)]!);
        }
        for (const batch of queue) {
          for (let attempt = 0; ; attempt++) {
            expect(attempt, 'a batch never taken').toBeLessThan(200);
            try {
              const result = await gradePatient(store, CONFIG, PATIENT, batch);
              expect(result.error).toBeUndefined();
              break;
            } catch (err) {
              if (!(err instanceof Error) || !err.message.startsWith('injected')) throw err;
              // The same warm instance takes the redelivery, or a fresh one (the last one crashed).
              if (!warm[w++ % warm.length]) store = storeOn(faultyClient(ddb, plan));
            }
          }
        }
        const got = await outcome(ddb);
        expect(got.state).toEqual(expected.state);
        expect(got.outbox).toEqual(expected.outbox);
        expect(got.seen).toEqual(expected.seen);
        expect(got.trail).toEqual(expected.trail);
      }),
      { numRuns: 100 },
    );
  });
});

// One behaviour on both backends: the same batches graded on SQLite (crs serve) give the same steps, grade
// changes, state and audit trail as on DynamoDB.
describe('grading on DynamoDB and on SQLite', () => {
  const ddb = new FakeDynamo(STATE_STORE_TABLES);
  afterAll(() => ddb.restore());

  it('gives the same steps, grade changes, state and audit trail, and crs replay the same grade changes', {
    timeout: 60_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(deliveries, async ({ messages, quiet, adt, reuses, cuts }) => {
        const batches = batchesOf(messages, quiet, adt, reuses, cuts);
        const dir = mkdtempSync(join(tmpdir(), 'crs-agree-'));
        const db = openDataDir(dir);
        try {
          ddb.reset();
          const onDynamo = storeOn(ddb.client());
          const onSqlite = new SqliteStateStore(db);
          const paged: unknown[] = [];
          for (const batch of batches) {
            const a = await gradePatient(onDynamo, CONFIG, PATIENT, batch);
            const b = await gradePatient(onSqlite, CONFIG, PATIENT, batch);
            expect(b.steps.map((s) => s.kind)).toEqual(a.steps.map((s) => s.kind));
            expect(b.notifications).toEqual(a.notifications);
            paged.push(...a.notifications.map(notificationEvent));
          }
          // And `crs replay` of the same messages, one line each, prints the same grade changes.
          const replay = new Replay(CONFIG);
          const printed = batches
            .flat()
            .flatMap((m, i) => replay.line(JSON.stringify(m), i + 1))
            .filter((e) => e.type === 'notification');
          expect(printed).toEqual(paged);
          // As stored, but for the identity window: DynamoDB's state item keeps only the pending messages' ids
          // (its seen-messages table answers for the rest), SQLite's state the recent ones.
          const stored = async (store: StateStore) => {
            const state = (await store.load(PATIENT))?.state;
            return state && { ...JSON.parse(serializeState(state)), seen: undefined };
          };
          expect(await stored(onSqlite)).toEqual(await stored(onDynamo));
          const trail = async (log: AuditLog) => {
            const out: string[] = [];
            for await (const e of log.forPatient(PATIENT)) out.push(JSON.stringify(e));
            return out.sort();
          };
          const dynamoLog = new DynamoAuditLog(ddb.client(), 'audit', () => NOW, {
            seenTable: 'seen',
            stateTable: 'state',
          });
          expect(await trail(new SqliteAuditLog(db))).toEqual(await trail(dynamoLog));
        } finally {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
