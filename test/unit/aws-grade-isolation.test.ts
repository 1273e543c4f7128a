// The grade function when DynamoDB refuses one message's write (not an outage): the messages of the patient before
// it are committed and their grade changes paged, it fails (retried, then dead-lettered by SQS) with the ones after
// it (FIFO order), and the other patients go on. Until 2026-12-05 the patient's whole batch failed with it.
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { FakeDynamo, STATE_STORE_TABLES } from '#test/support/fake-dynamo.ts';
import { captureOutput, metricSum, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { enrol, msg } from '#test/support/messages.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const ddb = new FakeDynamo(STATE_STORE_TABLES);
beforeEach(() => ddb.reset());
afterAll(() => ddb.restore());

let grade: typeof import('#functions/grade/handler.ts');
beforeAll(async () => {
  process.env.CRS_STATE_TABLE = 'state';
  process.env.CRS_AUDIT_TABLE = 'audit';
  process.env.CRS_SEEN_TABLE = 'seen';
  process.env.AWS_REGION = 'eu-west-1';
  grade = await import('#functions/grade/handler.ts');
});

/** The grade changes `crs replay` computes for these messages, by id. */
function replayPages(messages: DeviceMessage[]): string[] {
  const replay = new Replay(DEFAULT_CONFIG);
  return messages
    .flatMap((m, i) => replay.line(JSON.stringify(m), i + 1))
    .flatMap((e) => (e.type === 'notification' ? [e.notificationId] : []));
}

/** The grade changes in the state table's outbox for a patient. */
const outbox = (patientId: string) =>
  ddb
    .items('state')
    .filter((i) => i.pk?.S === patientId && i.sk?.S?.startsWith(STATE_TABLE.outboxSortKeyPrefix))
    .map((i) => i.notificationId!.S!)
    .sort();

describe('the grade function when the store refuses one message of a patient', () => {
  it("commits the patient's messages before it and fails only it and the ones after it", async () => {
    const a = [
      enrol('A', 0),
      msg('A', 10, { vitals: { temperatureC: 38.9, systolicBP: 120 } }),
      msg('A', 20, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] }),
      msg('A', 30, { vitals: { heartRate: 90 } }),
    ];
    const b = [enrol('B', 0), msg('B', 10, { vitals: { temperatureC: 38.9 } })];
    // The vasopressor's grade change has an outbox record already (written by hand, a restore): its write fails
    // ("exists already; its grade change is not overwritten"), which is no outage.
    const [, taken] = replayPages(a);
    const held: Record<string, AttributeValue> = {
      pk: { S: 'A' },
      sk: { S: `${STATE_TABLE.outboxSortKeyPrefix}${taken}` },
      kind: { S: STATE_TABLE.outboxKind },
      notificationId: { S: taken! },
    };
    ddb.table('state').set(`A\u0000${held.sk!.S}`, held);
    const records = [...a, ...b].map((m) => sqsRecord(m));
    const handler = grade.createGradeHandler({
      store: new DynamoStateStore(ddb.client(), 'state', () => NOW, 'audit', 'seen'),
      config: DEFAULT_CONFIG,
      now: () => NOW,
      ...telemetry('grade'),
    });
    const { result, out } = await captureOutput(() => handler(sqsEvent(records)));
    expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([
      records[2]!.messageId,
      records[3]!.messageId,
    ]);
    // The enrolment and the fever are graded and the fever's grade change is in the outbox (to be paged).
    expect(outbox('A')).toEqual([...replayPages(a.slice(0, 2)), taken].sort());
    expect(outbox('B')).toEqual(replayPages(b));
    expect(metricSum(out, 'PoisonMessages')).toBe(1);
    const line = out.split('\n').find((l) => l.includes('message cannot be applied'))!;
    expect(line).toContain(`"sqsMessageId":"${records[2]!.messageId}"`);

    // Delivered again (SQS keeps the group's order): the vasopressor fails again, nothing is written twice.
    const again = await captureOutput(() => handler(sqsEvent([records[2]!, records[3]!])).catch((e: Error) => e));
    expect((again.result as Error).name).toBe('WholeBatchFailed');
    expect(outbox('A')).toEqual([...replayPages(a.slice(0, 2)), taken].sort());
  });
});
