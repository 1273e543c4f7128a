// The notifier Lambda with the real pager over in-memory stores: each grade change in the outbox pages its teams
// once however often the stream delivers it, each SpO2 alert pages the alert teams; a record whose pages are stored
// while SNS is down is done (the tick sends them, in order), a record bad in itself is parked and the ones behind
// it go on, a record that meets an outage is reported so that it and the ones after it are retried in order; the
// log carries ids only.
import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDBRecord } from 'aws-lambda';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { Notification } from '#domain/page.ts';
import { reduce, type AlertChange } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import { VersionConflict, type AuditEvent, type PageMessage } from '#ports';
import type { Page } from '#domain/paging.ts';
import type { ParkedRecord } from '#adapters/aws/dynamo-page-store.ts';
import { isOutage } from '#adapters/aws/outbox-delivery.ts';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import { captureOutput, metricSum, outboxInsert, quiet, streamEvent } from '#test/support/lambda-events.ts';
import { enrol, msg } from '#test/support/messages.ts';

type HandlerModule = typeof import('#functions/notify/handler.ts');
let mod: HandlerModule;
let live: Telemetry;

beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('#functions/notify/handler.ts');
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
let phone: { sent: PageMessage[]; failing: Set<string>; down: boolean };
let pager: Pager;
let remembered: string[];
let coldStartFails: number;
let parked: ParkedRecord[];
/** DynamoDB throttling the page store's writes (an outage before any page is stored). */
let throttled: boolean;

class ThrottledPageStore extends MemoryPageStore {
  override async save(pages: Page[], audit?: AuditEvent[]) {
    if (throttled)
      throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
        name: 'ThrottlingException',
        $fault: 'client',
      });
    return super.save(pages, audit);
  }
}

beforeEach(() => {
  phone = { sent: [], failing: new Set(), down: false };
  const sender = {
    send: async (m: PageMessage) => {
      if (phone.down || phone.failing.has(m.page.notificationId)) throw new Error('SNS unavailable');
      phone.sent.push(m);
    },
  };
  const audit = new MemoryAuditLog();
  pager = new Pager({
    pages: new ThrottledPageStore(audit),
    sender,
    audit,
    config: DEFAULT_CONFIG.paging,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://api.example/ack/',
  });
  remembered = [];
  coldStartFails = 0;
  parked = [];
  throttled = false;
});

const notify = () =>
  quiet(
    mod.createNotifyHandler({
      paging: async () => {
        if (coldStartFails > 0) {
          coldStartFails--;
          throw new Error('secret unreadable');
        }
        return {
          pager,
          remember: (n) => remembered.push(n.notificationId),
          parkedRecords: { park: async (r) => void parked.push(r) },
        };
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
    expect(sentLog()).toEqual(
      changes.flatMap((n) =>
        n.teams.map((t) => `${n.notificationId}|${t} ${DEFAULT_CONFIG.paging.policies[t].levels[0]}`),
      ),
    );
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
    expect(sentLog()).toEqual([
      `${change!.notificationId}|hematology hematology fellow`,
      `${change!.notificationId}|hematology hematology attending`,
    ]);
  });

  it('hands a low-SpO2 alert to the pager, which pages the alert teams', async () => {
    const alert: AlertChange = {
      alertId: 'spo2|A|m9',
      patientId: 'A',
      subject: 'spo2',
      cleared: false,
      summary: 'WARNING (not a grade), patient A: SpO2 88 %',
      at: '2026-01-10T09:00:00Z',
    };
    await notify()(streamEvent([alertInsert(alert, 1)]));
    expect(sentLog()).toEqual(['spo2|A|m9|bedside bedside nurse', 'spo2|A|m9|hematology hematology fellow']);
  });

  it("takes a record whose pages are stored while SNS is down as done: the tick sends them, and a patient's later pages wait behind them", async () => {
    const a = gradeChanges('A');
    const b = gradeChanges('B');
    expect(a.length).toBeGreaterThanOrEqual(2);
    phone.down = true;
    const { result, out } = await captureOutput(() => notify()(streamEvent([a[0]!, b[0]!].map(outboxInsert))));
    expect(result.batchItemFailures).toEqual([]); // nothing for the stream to retry, nothing to the on-failure queue
    expect(metricSum(out, 'SendsDeferred')).toBe(2);
    expect(metricSum(out, 'PagesOpened')).toBe(2);
    phone.down = false;
    // A's next grade changes: A's first page goes before them (superseded by now, it is still sent once, as
    // information); B's page waits for the tick, whose grace has not passed for it in a real store.
    const later = await notify()(streamEvent(a.slice(1).map(outboxInsert)));
    expect(later.batchItemFailures).toEqual([]);
    const ofA = phone.sent.filter((m) => m.page.patientId === 'A');
    expect(ofA.map((m) => m.page.notificationId).filter((id, i, all) => all.indexOf(id) === i)).toEqual(
      a.map((n) => n.notificationId),
    );
    expect(ofA[0]).toMatchObject({ page: { notificationId: a[0]!.notificationId, status: 'info' } });
    expect(ofA[0]!.ackUrl).toBeUndefined(); // superseded before it was sent: nothing to acknowledge
    await pager.onTick(NOW + 60_000);
    expect(phone.sent.filter((m) => m.page.patientId === 'B').map((m) => m.page.notificationId)).toEqual(
      b[0]!.teams.map(() => b[0]!.notificationId),
    );
    expect(new Set(sentLog()).size).toBe(sentLog().length); // none twice
  });

  it('parks a record that is bad in itself, with ids only, and pages the records behind it', async () => {
    const changes = gradeChanges('A');
    const bad = outboxInsert(changes[0]!);
    bad.dynamodb!.NewImage!.notification = { S: '{"notificationId": 7, "summary": "PROVISIONAL CRS grade 1"' };
    const { result, out } = await captureOutput(() =>
      notify()(streamEvent([bad, ...changes.slice(1).map(outboxInsert)])),
    );
    expect(result.batchItemFailures).toEqual([]);
    expect(parked).toEqual([
      {
        key: `A#outbox#${changes[0]!.notificationId}`,
        patientId: 'A',
        id: '',
        reason: 'paging it failed (SyntaxError)',
        parkedAt: '2026-01-10T10:00:00Z',
        image: JSON.stringify(bad.dynamodb!.NewImage),
      },
    ]);
    expect(metricSum(out, 'RecordsParked')).toBe(1);
    expect(out).toContain('outbox record PARKED');
    expect(out).not.toContain('PROVISIONAL');
    expect(new Set(phone.sent.map((m) => m.page.notificationId))).toEqual(
      new Set(changes.slice(1).map((n) => n.notificationId)),
    );
  });

  it('fails a record that meets an outage before its pages are stored: it and the records after it are retried in order, paged once', async () => {
    const changes = [...gradeChanges('A'), ...gradeChanges('B')];
    const records = changes.map(outboxInsert);
    await notify()(streamEvent(records.slice(0, 1)));
    throttled = true;
    const res = await notify()(streamEvent(records)); // the first is paged already: it stores nothing
    // Nothing after the failed record was handed to the pager: a later grade change (a de-escalation) must not
    // overtake the earlier one (issue 10).
    expect(res.batchItemFailures).toEqual(
      records.slice(1).map((r) => ({ itemIdentifier: r.dynamodb!.SequenceNumber })),
    );
    expect(parked).toEqual([]);
    throttled = false;
    const retry = await notify()(streamEvent(records.slice(1)));
    expect(retry.batchItemFailures).toEqual([]);
    expect(phone.sent.map((m) => m.page.notificationId).filter((id, i, all) => all.indexOf(id) === i)).toEqual(
      changes.map((c) => c.notificationId),
    );
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
      dynamodb: {
        NewImage: { pk: { S: 'A' }, sk: { S: 'state' }, kind: { S: 'state' }, state: { S: '{}' } },
        SequenceNumber: '1',
      },
    };
    const removed: DynamoDBRecord = {
      eventName: 'REMOVE',
      dynamodb: { Keys: { pk: { S: 'A' } }, SequenceNumber: '2' },
    };
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

describe('what a failure is about (isOutage)', () => {
  const aws = (name: string, fault: 'client' | 'server') =>
    Object.assign(new Error(name), {
      name,
      $fault: fault,
      $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 },
    });
  it('an AWS service failing or refusing this caller, the network, or another writer: an outage, retried', () => {
    for (const e of [
      aws('ThrottlingException', 'client'),
      aws('ProvisionedThroughputExceededException', 'client'),
      aws('InternalServerError', 'server'),
      aws('AnythingElse', 'server'),
      aws('AccessDeniedException', 'client'),
      aws('KMSDisabledException', 'client'),
      aws('ResourceNotFoundException', 'client'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      new VersionConflict('crs|P-1|m1|icu'),
    ]) {
      expect(isOutage(e), e.name).toBe(true);
    }
  });
  it("the record's own: unreadable, refused as a request, or an error of the code on it", () => {
    for (const e of [
      new SyntaxError('Unexpected end of JSON input'),
      new TypeError('x is undefined'),
      aws('ValidationException', 'client'),
      new Error('outbox record has no notification'),
      'a string',
    ]) {
      expect(isOutage(e), String(e)).toBe(false);
    }
  });
});
