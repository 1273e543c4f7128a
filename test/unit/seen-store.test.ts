// The long tail of a patient's messages (issue 10 item 1, crs-rules 1.1 item 8) on both backends: each messageId
// with the digest of every content it was accepted with.
// - SQLite: read before grading (priorDigests, a primary-key read), written with the state.
// - DynamoDB (a table of its own): read after the state (priorDigests, one consistent batch read); an id's item is
//   put only if absent, in the transaction of a grade change (a put that finds one fails it with the old item:
//   SeenBefore carries its digests) or, for a save that changed no grade, by the patient's next save (until then
//   the id is pending in the state item); a reuse adds its digest to the item.
import { BatchGetItemCommand, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { emptyState } from '#domain/state.ts';
import { SeenBefore, type AuditEvent } from '#ports';
import { hasSeen, identify } from '#domain/seen.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';

const state = emptyState('P-1');

describe('the long tail on SQLite', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-seen-'));
    db = openDataDir(dir);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every digest an id was accepted with, written with the state (all or nothing), per patient', async () => {
    const store = new SqliteStateStore(db);
    expect(await store.priorDigests('P-1', ['m1', 'm2'])).toEqual(new Map());
    await store.save('P-1', state, 0, [], {
      alerts: [],
      audit: [],
      seen: [
        { messageId: 'm1', digest: 'd1' },
        { messageId: 'm2', digest: 'd2' },
      ],
    });
    await store.save('P-1', state, 1, [], {
      alerts: [],
      audit: [],
      seen: [{ messageId: 'm1', digest: 'd9', prior: ['d1'] }],
    });
    expect(await store.priorDigests('P-1', ['m1', 'm2', 'm3'])).toEqual(
      new Map([
        ['m1', ['d1', 'd9']],
        ['m2', ['d2']],
      ]),
    );
    expect(await store.priorDigests('P-2', ['m1'])).toEqual(new Map());
    // A save whose version moved on writes nothing of its long tail either.
    await expect(
      store.save('P-1', state, 0, [], { alerts: [], audit: [], seen: [{ messageId: 'm3', digest: 'd3' }] }),
    ).rejects.toThrow(/state changed/);
    expect(await store.priorDigests('P-1', ['m3'])).toEqual(new Map());
  });
});

describe('the long tail on DynamoDB', () => {
  const ddb = new FakeDynamo(STATE_STORE_TABLES);
  afterAll(() => ddb.restore());
  beforeEach(() => ddb.reset());
  const store = () => stateStoreOn(ddb, Date.parse('2026-01-10T09:00:00Z'));
  const seenItems = () => Object.fromEntries(ddb.items('seen').map((i) => [`seen#${i.messageId!.S}`, i.digests!.SS]));

  // An entry for the audit table: a save with one is a grade change's (a transaction), not a quiet message's.
  const gradeChange = (): AuditEvent => ({
    at: '2026-01-10T09:00:00Z',
    patientId: 'P-1',
    type: 'notification',
    text: 'CRS 0 -> 1',
    details: {},
  });

  it('reads the digests of ids seen before, consistently, in one batch read', async () => {
    await store().save('P-1', state, 0, [], {
      alerts: [],
      audit: [gradeChange()],
      seen: [{ messageId: 'm1', digest: 'd1' }],
    });
    ddb.mock.resetHistory();
    expect(await store().priorDigests('P-1', ['m1', 'm2', 'm1'])).toEqual(new Map([['m1', ['d1']]]));
    const [read] = ddb.mock.commandCalls(BatchGetItemCommand);
    expect(read!.args[0].input.RequestItems!.seen).toMatchObject({ ConsistentRead: true, Keys: [{}, {}] });
  });

  it('reads every id of a long batch: 100 keys a request, and again the keys an answer left unprocessed', async () => {
    // An id missed is a duplicate graded (and paged) again.
    const ids = Array.from({ length: 150 }, (_, i) => `m${i}`);
    for (const id of ids)
      await ddb.client().send(
        new PutItemCommand({
          TableName: 'seen',
          Item: { patientId: { S: 'P-1' }, messageId: { S: id }, digests: { SS: [`d-${id}`] } },
        }),
      );
    const pageSize = ddb.pageSize;
    ddb.pageSize = 40; // DynamoDB may answer part of a batch (its 16 MB limit, or throttling)
    try {
      const prior = await store().priorDigests('P-1', ids);
      expect([...prior.keys()].sort()).toEqual([...ids].sort());
      expect(prior.get('m99')).toEqual(['d-m99']);
    } finally {
      ddb.pageSize = pageSize;
    }
    const keys = ddb.mock
      .commandCalls(BatchGetItemCommand)
      .map((c) => c.args[0].input.RequestItems!.seen!.Keys!.length);
    expect(keys).toEqual([100, 60, 20, 50, 10]);
  });

  it('puts an id never seen with a condition, in the transaction of a grade change, with no expiry', async () => {
    await store().save('P-1', state, 0, [], {
      alerts: [],
      audit: [gradeChange()],
      seen: [{ messageId: 'm1', digest: 'd1' }],
    });
    const [tx] = ddb.mock.commandCalls(TransactWriteItemsCommand);
    const put = tx!.args[0].input.TransactItems!.find((t) => t.Put?.TableName === 'seen')!.Put!;
    expect(put).toMatchObject({
      ConditionExpression: 'attribute_not_exists(#pk)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(put.Item).not.toHaveProperty(STATE_TABLE.ttlAttribute);
    expect(seenItems()).toEqual({ 'seen#m1': ['d1'] });
  });

  it('keeps the ids of a save without a grade change in the state item, and puts them, only if absent, at the next save', async () => {
    await store().save('P-1', state, 0, [], { alerts: [], audit: [], seen: [{ messageId: 'm1', digest: 'd1' }] });
    expect(ddb.mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(0);
    expect(seenItems()).toEqual({});
    expect(hasSeen((await store().load('P-1'))!.state.seen, 'm1')).toBe(true);
    await store().save('P-1', state, 1, [], { alerts: [], audit: [], seen: [{ messageId: 'm2', digest: 'd2' }] });
    expect(seenItems()).toEqual({ 'seen#m1': ['d1'] });
    const flush = ddb.mock.commandCalls(PutItemCommand).find((c) => c.args[0].input.TableName === 'seen')!;
    expect(flush.args[0].input).toMatchObject({ ConditionExpression: 'attribute_not_exists(#pk)' });
    expect(flush.args[0].input.Item).not.toHaveProperty(STATE_TABLE.ttlAttribute);
    const { seen } = (await store().load('P-1'))!.state;
    expect([hasSeen(seen, 'm1'), hasSeen(seen, 'm2')]).toEqual([false, true]);
  });

  it('knows every id of a save of many quiet messages as a duplicate until the next save puts them', async () => {
    // Pending ids are in no seen-messages item yet: one the state's window dropped would be graded again.
    const seen = Array.from({ length: 99 }, (_, i) => ({ messageId: `m${i}`, digest: `d${i}` }));
    await store().save('P-1', state, 0, [], { alerts: [], audit: [], seen });
    const window = (await store().load('P-1'))!.state.seen;
    expect(seen.filter((m) => identify(window, m.messageId, m.digest) !== 'duplicate')).toEqual([]);
  });

  // The id seen before last or first in the save: SeenBefore either way (a raw cancellation would fail the batch at
  // every redelivery, and its new message would never be graded), and nothing written: all or nothing.
  it.each([
    ['last', ['m2', 'm1']],
    ['first', ['m1', 'm2']],
  ])('answers an id seen before (%s in the save) with SeenBefore and its digests, writing nothing', async (_, ids) => {
    await store().save('P-1', state, 0, [], {
      alerts: [],
      audit: [gradeChange()],
      seen: [{ messageId: 'm1', digest: 'd1' }],
    });
    const err = await store()
      .save('P-1', state, 1, [], {
        alerts: [],
        audit: [gradeChange()],
        seen: ids.map((id) => ({ messageId: id, digest: id.replace('m', 'd') })),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SeenBefore);
    expect((err as SeenBefore).digests).toEqual(new Map([['m1', ['d1']]]));
    expect(seenItems()).toEqual({ 'seen#m1': ['d1'] });
  });

  it('adds the digest of a reused id (known before) to its item; an id reused within one batch is one item', async () => {
    await store().save('P-1', state, 0, [], { alerts: [], audit: [], seen: [{ messageId: 'm1', digest: 'd1' }] });
    await store().save('P-1', state, 1, [], {
      alerts: [],
      audit: [],
      seen: [{ messageId: 'm1', digest: 'd2', prior: ['d1'] }],
    });
    expect(seenItems()).toEqual({ 'seen#m1': ['d1', 'd2'] });
    await store().save('P-1', state, 2, [], {
      alerts: [],
      audit: [],
      seen: [
        { messageId: 'm5', digest: 'a' },
        { messageId: 'm5', digest: 'b' },
      ],
    });
    // Pending, each content of the id is known: either again is a duplicate, not a reuse graded anew.
    const pending = (await store().load('P-1'))!.state.seen;
    expect([identify(pending, 'm5', 'a'), identify(pending, 'm5', 'b')]).toEqual(['duplicate', 'duplicate']);
    await store().save('P-1', state, 3, [], { alerts: [], audit: [], seen: [] }); // puts what the save before left pending
    expect(seenItems()['seen#m5']).toEqual(['a', 'b']);
  });
});
