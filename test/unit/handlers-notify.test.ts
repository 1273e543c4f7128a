// The notifier Lambda with in-memory ports: each outbox page is published once per notificationId, however often
// the stream delivers it, and a failed publish is reported so that only it is retried.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDBRecord } from 'aws-lambda';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import type { Notification } from '../../shared/domain/page.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import type { PatientState } from '../../shared/domain/state.ts';
import { telemetry, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';
import { captureOutput, metricSum, outboxInsert, quiet, streamEvent } from '../support/lambda-events.ts';
import { enrol, msg } from '../support/messages.ts';
import { MemoryLedger, MemoryNotifier } from '../support/port-fakes.ts';

type HandlerModule = typeof import('../../functions/notify/handler.ts');
let mod: HandlerModule;
let live: Telemetry;

beforeAll(async () => {
  process.env.CRS_DELIVERIES_TABLE = 'deliveries';
  process.env.CRS_PAGES_TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:Pages';
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('../../functions/notify/handler.ts');
  live = telemetry('notify');
});

/** Real pages: a patient enrolled, then febrile (CRS 1), then hypotensive on oxygen (CRS 2 and more). */
function pagesFor(patientId: string): Notification[] {
  let state: PatientState | undefined;
  const pages: Notification[] = [];
  for (const m of [
    enrol(patientId),
    msg(patientId, 0, { vitals: { temperatureC: 38.7 } }),
    msg(patientId, 10, { vitals: { systolicBP: 82 }, oxygen: { device: 'nasal_cannula', flowLpm: 3 } }),
    msg(patientId, 20, { vitals: { systolicBP: 80 } }),
  ]) {
    const step = reduce(state, m, DEFAULT_CONFIG);
    state = step.state;
    if (step.kind === 'applied') pages.push(...step.notifications);
  }
  return pages;
}

let ledger: MemoryLedger;
let notifier: MemoryNotifier;
beforeEach(() => {
  ledger = new MemoryLedger();
  notifier = new MemoryNotifier();
});

const notify = () => quiet(mod.createNotifyHandler({ ledger, notifier, now: () => Date.parse('2026-01-10T10:00:00Z'), ...live }));

describe('notify handler', () => {
  it('publishes every outbox page and marks it sent', async () => {
    const pages = [...pagesFor('A'), ...pagesFor('B')];
    expect(pages.length).toBeGreaterThanOrEqual(4);
    const res = await notify()(streamEvent(pages.map(outboxInsert)));
    expect(res.batchItemFailures).toEqual([]);
    expect(notifier.published.map((n) => n.notificationId)).toEqual(pages.map((n) => n.notificationId));
    expect([...ledger.sent.keys()]).toEqual(pages.map((n) => n.notificationId));
    expect(ledger.sent.get(pages[0]!.notificationId)).toBe('2026-01-10T10:00:00Z');
  });

  it('publishes once per notificationId when the stream delivers the batch again', async () => {
    const records = pagesFor('A').map(outboxInsert);
    await notify()(streamEvent(records));
    const { result, out } = await captureOutput(() => notify()(streamEvent(records)));
    expect(result.batchItemFailures).toEqual([]);
    expect(notifier.published).toHaveLength(records.length);
    expect(metricSum(out, 'PagesAlreadySent')).toBe(records.length);
    expect(metricSum(out, 'PagesSent')).toBe(0);
  });

  it('reports a failed publish by sequence number, sends the rest, and sends only it on the retry', async () => {
    const pages = pagesFor('A');
    const records = pages.map(outboxInsert);
    notifier.failing.add(pages[1]!.notificationId);
    const res = await notify()(streamEvent(records));
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: records[1]!.dynamodb!.SequenceNumber }]);
    expect(notifier.published.map((n) => n.notificationId)).not.toContain(pages[1]!.notificationId);

    // Lambda retries from the failed record on: the ones after it were sent already and are not sent twice.
    notifier.failing.clear();
    const retry = await notify()(streamEvent(records.slice(1)));
    expect(retry.batchItemFailures).toEqual([]);
    expect(notifier.published.map((n) => n.notificationId).sort()).toEqual(pages.map((n) => n.notificationId).sort());
  });

  it('ignores stream records that are not outbox inserts', async () => {
    const state: DynamoDBRecord = {
      eventName: 'MODIFY',
      dynamodb: { NewImage: { pk: { S: 'A' }, sk: { S: 'state' }, kind: { S: 'state' }, state: { S: '{}' } }, SequenceNumber: '1' },
    };
    const removed: DynamoDBRecord = { eventName: 'REMOVE', dynamodb: { Keys: { pk: { S: 'A' } }, SequenceNumber: '2' } };
    const res = await notify()(streamEvent([state, removed]));
    expect(res.batchItemFailures).toEqual([]);
    expect(notifier.published).toEqual([]);
  });

  it('logs ids only: no summary, no reasons, no bed', async () => {
    const pages = pagesFor('A');
    const { out } = await captureOutput(() => notify()(streamEvent(pages.map(outboxInsert))));
    expect(out).toContain(pages[0]!.notificationId);
    expect(out).not.toContain('PROVISIONAL');
    expect(out).not.toContain(pages[0]!.bed!);
    expect(out).not.toContain('38.7');
  });
});
