// What the grade's state transaction carries besides the state (test/support/fake-dynamo.ts as the table): the
// grade changes and SpO2 alerts as outbox records for the pager, the audit entries of the assessments in the
// audit table, and the enrolled patient's feed time for the stale-feed index; all or nothing, within the
// 100-item limit of a DynamoDB transaction.
import { GetItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { gradePatient } from '#app/grade.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { emptyState } from '#domain/state.ts';
import { DynamoAuditLog } from '#adapters/aws/dynamo-audit-log.ts';
import { outboxRecord } from '#adapters/aws/dynamo-state-store.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

const ddb = new FakeDynamo(STATE_STORE_TABLES);
afterAll(() => ddb.restore());
beforeEach(() => ddb.reset());

const NOW = Date.parse('2026-01-10T09:00:00Z');
const store = () => stateStoreOn(ddb, NOW);

describe('the grade transaction', () => {
  it('writes the state, its grade changes, its SpO2 alert and its audit entries in one transaction', async () => {
    const messages = [
      enrol('P-1'),
      msg('P-1', 0, { vitals: { temperatureC: 38.9, spo2: 88 } }),
      msg('P-1', 5, { vitals: { spo2: 87 } }), // low twice without oxygen: a warning, not a grade
    ];
    const result = await gradePatient(store(), DEFAULT_CONFIG, 'P-1', messages);
    expect(result.committed).toBe(3);
    const tx = ddb.mock.commandCalls(TransactWriteItemsCommand);
    expect(tx).toHaveLength(1);
    const tables = tx[0]!.args[0].input.TransactItems!.map((t) => t.Put!.TableName);
    // The grade change to the audit table; the three assessments in the three messages' seen items.
    expect(tables.filter((t) => t === 'audit')).toHaveLength(1);
    expect(tables.filter((t) => t === 'seen')).toHaveLength(3);

    const outbox = ddb
      .items('state')
      .filter((i) => i.kind?.S === 'outbox')
      .map((i) => outboxRecord(i as never)!);
    expect(outbox.map((r) => r.record).sort()).toEqual(['alert', 'notification']);
    const alert = outbox.find((r) => r.record === 'alert')!;
    expect(alert.record === 'alert' && alert.alert).toMatchObject({
      patientId: 'P-1',
      subject: 'spo2',
      cleared: false,
      alertId: 'spo2|P-1|#3',
    }); // raised by the third message applied

    const trail = [];
    for await (const e of new DynamoAuditLog(ddb.client(), 'audit', () => NOW, {
      seenTable: 'seen',
      stateTable: 'state',
    }).forPatient('P-1'))
      trail.push(e.type);
    expect(trail).toEqual(['assessment', 'assessment', 'notification', 'assessment']);
  });

  it('writes an SpO2 alert to the outbox in a transaction even when the save has no grade change or audit entry', async () => {
    // Left out of the outbox, the alert would never reach the pager.
    const alert = {
      alertId: 'spo2|P-1|#1',
      patientId: 'P-1',
      subject: 'spo2' as const,
      cleared: false,
      summary: 'SpO2 88%',
      at: '2026-01-10T09:00:00Z',
    };
    await store().save('P-1', emptyState('P-1'), 0, [], { alerts: [alert], audit: [] });
    expect(ddb.mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(1);
    const outbox = ddb
      .items('state')
      .filter((i) => i.kind?.S === 'outbox')
      .map((i) => outboxRecord(i as never)!);
    expect(outbox).toEqual([{ record: 'alert', alert }]);
  });

  it('refuses, naming it, an outbox record that exists already: never overwritten', async () => {
    // An overwrite is a MODIFY, which the stream filter drops: a page nobody would get.
    const alert = (summary: string) => ({
      alertId: 'spo2|P-1|#1',
      patientId: 'P-1',
      subject: 'spo2' as const,
      cleared: false,
      summary,
      at: '2026-01-10T09:00:00Z',
    });
    await store().save('P-1', emptyState('P-1'), 0, [], { alerts: [alert('SpO2 88%')], audit: [] });
    await expect(
      store().save('P-1', emptyState('P-1'), 1, [], { alerts: [alert('SpO2 87%')], audit: [] }),
    ).rejects.toThrow('patient P-1: outbox record spo2|P-1|#1 exists already');
    const outbox = ddb.items('state').filter((i) => i.kind?.S === 'outbox');
    expect(outbox.map((i) => outboxRecord(i as never))).toEqual([{ record: 'alert', alert: alert('SpO2 88%') }]);
  });

  it('writes nothing at all when the version moved on (the audit entries neither)', async () => {
    await store().save('P-1', emptyState('P-1'), 0, []);
    const err = await store()
      .save('P-1', emptyState('P-1'), 0, [], {
        alerts: [],
        audit: [
          { at: '2026-01-10T08:00:00Z', patientId: 'P-1', type: 'assessment', text: 'x', details: { messageId: 'm' } },
        ],
      })
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe('VersionConflict');
    expect(ddb.items('audit')).toEqual([]);
  });

  it("keeps an enrolled patient's feed time (the last monitor reading, else the enrolment) for the stale-feed index", async () => {
    await gradePatient(store(), DEFAULT_CONFIG, 'P-1', [enrol('P-1', -60)]);
    await gradePatient(store(), DEFAULT_CONFIG, 'P-2', [
      enrol('P-2', -60),
      msg('P-2', 10, { vitals: { heartRate: 80 } }),
    ]);
    await gradePatient(store(), DEFAULT_CONFIG, 'P-3', [msg('P-3', 10, { vitals: { heartRate: 80 } })]); // not enrolled
    ddb.pageSize = 1;
    const feeds = [];
    for await (const f of store().feeds()) feeds.push(f);
    expect(feeds).toEqual([
      { patientId: 'P-1', since: T0 - 60 * 60_000 },
      { patientId: 'P-2', since: T0 + 10 * 60_000 },
    ]);
  });

  it('refuses a save beyond the 100 items of one transaction, naming the patient', async () => {
    const audit = Array.from({ length: 100 }, (_, i) => ({
      at: '2026-01-10T08:00:00Z',
      patientId: 'P-1',
      type: 'assessment' as const,
      text: `a${i}`,
      details: { messageId: `m${i}` },
    }));
    await expect(store().save('P-1', emptyState('P-1'), 0, [], { alerts: [], audit })).rejects.toThrow(
      'patient P-1: 101 items exceed one transaction',
    );
    expect(ddb.mock.commandCalls(TransactWriteItemsCommand)).toHaveLength(0);
  });

  it('gives the pager a grade change back from the outbox, for a later level of its ladder', async () => {
    const { notifications } = await gradePatient(store(), DEFAULT_CONFIG, 'P-1', [
      enrol('P-1'),
      msg('P-1', 0, { vitals: { temperatureC: 39 } }),
    ]);
    expect(await store().notification('P-1', notifications[0]!.notificationId)).toEqual(notifications[0]);
    expect(await store().notification('P-1', 'crs|P-1|nope')).toBeUndefined();
  });

  it('reads a grade change just written back as it is, not as a lagging replica has it (else its page was parked)', async () => {
    // An eventually consistent read may answer from a replica that has not seen the grade transaction yet: the
    // escalate tick sending a page deferred a moment before, or a fresh `crs outbox retry`, found no grade change
    // and parked the page ("not in the outbox"): the team was not paged.
    const before = new Map(ddb.table('state').entries());
    const { notifications } = await gradePatient(store(), DEFAULT_CONFIG, 'P-1', [
      enrol('P-1'),
      msg('P-1', 0, { vitals: { temperatureC: 39 } }),
    ]);
    const current = ddb.table('state');
    ddb.mock.on(GetItemCommand).callsFake((input) => {
      const table = input.ConsistentRead ? current : before; // the replica has not caught up yet
      const item = [...table.values()].find((i) => i.pk?.S === input.Key.pk?.S && i.sk?.S === input.Key.sk?.S);
      return { Item: item };
    });
    expect(await store().notification('P-1', notifications[0]!.notificationId)).toEqual(notifications[0]);
  });
});
