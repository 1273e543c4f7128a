// The notifier Lambda with the real pager over in-memory stores: each grade change in the outbox pages its teams
// once however often the stream delivers it, each SpO2 alert pages the alert teams, a failed page is reported so
// that only its record is retried, and the log carries ids only.
import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDBRecord } from 'aws-lambda';
import { MemoryAuditLog, MemoryPageStore } from '../../shared/app/memory.ts';
import { Pager } from '../../shared/app/pager.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import type { Notification } from '../../shared/domain/page.ts';
import { reduce, type AlertChange } from '../../shared/domain/reducer.ts';
import { arrivalOf } from '../../shared/app/digest.ts';
import type { PatientState } from '../../shared/domain/state.ts';
import type { PageMessage } from '../../shared/ports.ts';
import { STATE_TABLE } from '../../shared/adapters/aws/table-layout.ts';
import { telemetry, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';
import { captureOutput, metricSum, outboxInsert, quiet, streamEvent } from '../support/lambda-events.ts';
import { enrol, msg } from '../support/messages.ts';

type HandlerModule = typeof import('../../functions/notify/handler.ts');
let mod: HandlerModule;
let live: Telemetry;

beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('../../functions/notify/handler.ts');
  live = telemetry('notify');
});

/** Real grade changes: a patient enrolled, then febrile (CRS 1), then hypotensive on oxygen (CRS 2 and more). */
function gradeChanges(patientId: string): Notification[] {
  let state: PatientState | undefined;
  const pages: Notification[] = [];
  for (const m of [
    enrol(patientId),
    msg(patientId, 0, { vitals: { temperatureC: 38.7 } }),
    msg(patientId, 10, { vitals: { systolicBP: 82 }, oxygen: { device: 'nasal_cannula', flowLpm: 3 } }),
    msg(patientId, 20, { vitals: { systolicBP: 80 } }),
  ]) {
    const step = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m));
    state = step.state;
    if (step.kind === 'applied') pages.push(...step.notifications);
  }
  return pages;
}

/** A stream INSERT of an alert outbox record, as the state store writes it. */
function alertInsert(a: AlertChange, seq: number): DynamoDBRecord {
  return {
    eventName: 'INSERT',
    dynamodb: {
      NewImage: {
        [STATE_TABLE.partitionKey]: { S: a.patientId },
        [STATE_TABLE.sortKey]: { S: `outbox#${a.alertId}` },
        [STATE_TABLE.kindAttribute]: { S: STATE_TABLE.outboxKind },
        [STATE_TABLE.recordAttribute]: { S: 'alert' },
        alert: { S: JSON.stringify(a) },
      },
      SequenceNumber: String(seq),
    },
  };
}

const NOW = Date.parse('2026-01-10T10:00:00Z');
let phone: { sent: PageMessage[]; failing: Set<string> };
let pager: Pager;
let remembered: string[];
let coldStartFails: number;

beforeEach(() => {
  phone = { sent: [], failing: new Set() };
  const sender = {
    send: async (m: PageMessage) => {
      if (phone.failing.has(m.page.notificationId)) throw new Error('SNS unavailable');
      phone.sent.push(m);
    },
  };
  pager = new Pager({ pages: new MemoryPageStore(), sender, audit: new MemoryAuditLog(), config: DEFAULT_CONFIG.paging, ackSecret: randomBytes(32), ackBaseUrl: 'https://api.example/ack/' });
  remembered = [];
  coldStartFails = 0;
});

const notify = () =>
  quiet(
    mod.createNotifyHandler({
      paging: async () => {
        if (coldStartFails > 0) {
          coldStartFails--;
          throw new Error('secret unreadable');
        }
        return { pager, remember: (n) => remembered.push(n.notificationId) };
      },
      now: () => NOW,
      ...live,
    }),
  );

const sentLog = () => phone.sent.map((m) => `${m.page.pageId} ${m.role}`);

describe('notify handler', () => {
  it('pages every team of every grade change, in stream order, each with an acknowledge link', async () => {
    const changes = [...gradeChanges('A'), ...gradeChanges('B')];
    expect(changes.length).toBeGreaterThanOrEqual(4);
    const res = await notify()(streamEvent(changes.map(outboxInsert)));
    expect(res.batchItemFailures).toEqual([]);
    expect(sentLog()).toEqual(changes.flatMap((n) => n.teams.map((t) => `${n.notificationId}|${t} ${DEFAULT_CONFIG.paging.policies[t].levels[0]}`)));
    expect(phone.sent.every((m) => m.ackUrl?.startsWith('https://api.example/ack/v1.'))).toBe(true);
    expect(remembered).toEqual(changes.map((n) => n.notificationId));
  });

  it('pages once per grade change when the stream delivers the batch again', async () => {
    const records = gradeChanges('A').map(outboxInsert);
    await notify()(streamEvent(records));
    const first = sentLog();
    const { result, out } = await captureOutput(() => notify()(streamEvent(records)));
    expect(result.batchItemFailures).toEqual([]);
    expect(sentLog()).toEqual(first);
    expect(metricSum(out, 'PagesOpened')).toBe(records.length);
  });

  it('leaves a later level of a ladder to the tick that is sending it when the stream delivers the grade change again', async () => {
    const [change] = gradeChanges('A');
    const records = [outboxInsert(change!)];
    await notify()(streamEvent(records));
    // A tick stores the next level and is cut short before its send (or is still sending it).
    phone.failing.add(change!.notificationId);
    await expect(pager.onTick(NOW + 16 * 60_000)).rejects.toThrow('SNS unavailable');
    phone.failing.clear();
    await notify()(streamEvent(records)); // the stream delivers the grade change again (a retry, a restart)
    expect(sentLog()).toEqual([`${change!.notificationId}|hematology hematology fellow`]);
    await pager.onTick(NOW + 17 * 60_000); // the tick's own recovery sends it, once
    expect(sentLog()).toEqual([`${change!.notificationId}|hematology hematology fellow`, `${change!.notificationId}|hematology hematology attending`]);
  });

  it('hands a low-SpO2 alert to the pager, which pages the alert teams', async () => {
    const alert: AlertChange = { alertId: 'spo2|A|m9', patientId: 'A', subject: 'spo2', cleared: false, summary: 'WARNING (not a grade), patient A: SpO2 88 %', at: '2026-01-10T09:00:00Z' };
    await notify()(streamEvent([alertInsert(alert, 1)]));
    expect(sentLog()).toEqual(['spo2|A|m9|bedside bedside nurse', 'spo2|A|m9|hematology hematology fellow']);
  });

  it('stops at a record whose page failed: it and the records after it are reported and paged on the retry, in order, once', async () => {
    const changes = [...gradeChanges('A'), ...gradeChanges('B')];
    expect(changes.length).toBeGreaterThan(2);
    const records = changes.map(outboxInsert);
    phone.failing.add(changes[1]!.notificationId);
    const res = await notify()(streamEvent(records));
    expect(res.batchItemFailures).toEqual(records.slice(1).map((r) => ({ itemIdentifier: r.dynamodb!.SequenceNumber })));
    // Nothing after the failed record was handed to the pager: a later grade change (a de-escalation) must not
    // resolve the earlier one's pages before they were ever sent (issue 10).
    expect(new Set(phone.sent.map((m) => m.page.notificationId))).toEqual(new Set([changes[0]!.notificationId]));
    phone.failing.clear();
    // Lambda retries from the failed record on.
    const retry = await notify()(streamEvent(records.slice(1)));
    expect(retry.batchItemFailures).toEqual([]);
    expect(phone.sent.map((m) => m.page.notificationId).filter((id, i, all) => all.indexOf(id) === i)).toEqual(changes.map((c) => c.notificationId));
    expect(new Set(sentLog()).size).toBe(sentLog().length);
  });

  it('fails the records when the pager cannot start (the secret unreadable), and starts it on the retry', async () => {
    coldStartFails = 1;
    const records = gradeChanges('A').slice(0, 1).map(outboxInsert);
    await expect(notify()(streamEvent(records))).rejects.toThrow(/records in the batch failed/);
    expect((await notify()(streamEvent(records))).batchItemFailures).toEqual([]);
    expect(phone.sent.length).toBeGreaterThan(0);
  });

  it('ignores stream records that are not outbox inserts', async () => {
    const state: DynamoDBRecord = {
      eventName: 'MODIFY',
      dynamodb: { NewImage: { pk: { S: 'A' }, sk: { S: 'state' }, kind: { S: 'state' }, state: { S: '{}' } }, SequenceNumber: '1' },
    };
    const removed: DynamoDBRecord = { eventName: 'REMOVE', dynamodb: { Keys: { pk: { S: 'A' } }, SequenceNumber: '2' } };
    const res = await notify()(streamEvent([state, removed]));
    expect(res.batchItemFailures).toEqual([]);
    expect(phone.sent).toEqual([]);
  });

  it('logs ids only: no summary, no reasons, no bed', async () => {
    const changes = gradeChanges('A');
    const { out } = await captureOutput(() => notify()(streamEvent(changes.map(outboxInsert))));
    expect(out).toContain(changes[0]!.notificationId);
    expect(out).not.toContain('PROVISIONAL');
    expect(out).not.toContain(changes[0]!.bed!);
    expect(out).not.toContain('38.7');
  });
});
