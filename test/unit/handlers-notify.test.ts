// The notifier Lambda with the real pager over in-memory stores: each grade change in the outbox pages its teams
// once however often the stream delivers it, each SpO2 alert pages the alert teams; a record whose pages are stored
// while SNS is down is done (the tick sends them, in order), a record bad in itself is parked and the ones behind
// it go on, a record that meets an outage is reported so that it and the ones after it are retried in order; the
// log carries ids only.
import { ENV } from '#adapters/aws/env.ts';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SendMessageCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { DynamoDBRecord } from 'aws-lambda';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { iso } from '#domain/time.ts';
import type { Notification } from '#domain/page.ts';
import { reduce, type AlertChange } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import { VersionConflict, type AuditEvent, type PageMessage } from '#ports';
import type { Page } from '#domain/paging.ts';
import { pageEvent } from '#domain/page-event.ts';
import type { ParkedRecord } from '#adapters/aws/dynamo-page-store.ts';
import { OutboxDelivery, type OutboxImage } from '#adapters/aws/outbox-delivery.ts';
import { isFromAws, isOutage } from '#adapters/aws/outage.ts';
import { PAGES_TABLE, STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { awsPagingFromEnv } from '#adapters/aws/paging.ts';
import { ACK_KEYS_MAX_AGE_MS } from '#adapters/aws/ack-secret.ts';
import { shortAckToken } from '#app/ack.ts';
import { gradePatient } from '#app/grade.ts';
import { shippedConfig } from '#test/support/config-file.ts';
import { FakeDynamo, PAGING_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';
import { receiveNotifyFailures, redrive, release, type NotifyFailure } from '#adapters/aws/notify-failures.ts';
import { telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import {
  captureOutput,
  metricSum,
  outboxInsert,
  quiet,
  streamEvent,
  withoutTimestamps,
} from '#test/support/lambda-events.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';

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
/** The page store's next writes throttled, this many of them (an outage that passes at once). */
let throttledWrites: number;
/** The parked-records table failing its writes (an outage of the parking itself). */
let parkingDown: boolean;

class ThrottledPageStore extends MemoryPageStore {
  override async save(pages: Page[], audit?: AuditEvent[]) {
    if (throttled || throttledWrites > 0) {
      throttledWrites = Math.max(0, throttledWrites - 1);
      throw Object.assign(new Error('Rate of requests exceeds the allowed throughput'), {
        name: 'ThrottlingException',
        $fault: 'client',
      });
    }
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
  throttledWrites = 0;
  parkingDown = false;
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
          parkedRecords: {
            park: async (r) => {
              if (parkingDown)
                throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client' });
              parked.push(r);
            },
          },
        };
      },
      now: () => NOW,
      ...live,
    }),
  );

const sentLog = () => phone.sent.map((m) => `${m.page.pageId} ${m.role}`);

/** A low-SpO2 alert of patient A. */
const SPO2_ALERT: AlertChange = {
  alertId: 'spo2|A|m9',
  patientId: 'A',
  subject: 'spo2',
  cleared: false,
  summary: 'WARNING (not a grade), patient A: SpO2 88 %',
  at: '2026-01-10T09:00:00Z',
};
describe('notify handler', () => {
  // Powertools' warning on an empty flush ("No application metrics to publish...") was a log line per quiet
  // invocation: on stderr under crs serve --backend aws, in CloudWatch Logs (billed) on AWS.
  it('an invocation with nothing to count writes no metrics and no warning about it', async () => {
    const { result, out } = await captureOutput(() => notify()(streamEvent([])));
    expect(result.batchItemFailures).toEqual([]);
    expect(out).not.toContain('No application metrics');
    expect(out).not.toContain('"_aws"');
    // With something to count, it is flushed as before.
    const counted = await captureOutput(() => notify()(streamEvent(gradeChanges('E').map(outboxInsert))));
    expect(metricSum(counted.out, 'PagesOpened')).toBeGreaterThan(0);
  });

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
    expect(phone.sent.every((m) => /^https:\/\/api\.example\/ack\/[A-Za-z0-9_-]{22}$/.test(m.ackUrl ?? ''))).toBe(true);
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
    const alert = SPO2_ALERT;
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
    expect(withoutTimestamps(out)).not.toContain('38.7');
  });
});

describe('notify handler: pinned by a mutation run', () => {
  it('holds every record after a failed one, even when the outage is over by the time they come: none overtakes it', async () => {
    const changes = gradeChanges('A');
    expect(changes.length).toBeGreaterThanOrEqual(2);
    const b = outboxInsert(gradeChanges('B')[0]!);
    await notify()(streamEvent([b])); // paged already: delivered again, it writes nothing
    const sentBefore = phone.sent.length;
    const records = changes.map(outboxInsert);
    throttledWrites = 1; // A's first write throttled; the table answers again at once
    const res = await notify()(streamEvent([b, ...records]));
    expect(res.batchItemFailures).toEqual(records.map((r) => ({ itemIdentifier: r.dynamodb!.SequenceNumber })));
    expect(phone.sent).toHaveLength(sentBefore); // A's later grade changes did not go out before its first
    const retry = await notify()(streamEvent(records));
    expect(retry.batchItemFailures).toEqual([]);
    const ofA = phone.sent.filter((m) => m.page.patientId === 'A').map((m) => m.page.notificationId);
    expect(ofA.filter((id, i, all) => all.indexOf(id) === i)).toEqual(changes.map((c) => c.notificationId));
  });

  it('fails a record it could not even park (the parking table down), and the records after it: retried, never lost', async () => {
    const changes = gradeChanges('A');
    const bad = outboxInsert(changes[0]!);
    bad.dynamodb!.NewImage!.notification = { S: '{"notificationId": 7' };
    const records = [bad, ...changes.slice(1).map(outboxInsert)];
    parkingDown = true;
    await expect(notify()(streamEvent(records))).rejects.toThrow(/all 2 records in the batch failed/);
    expect(phone.sent).toEqual([]);
    parkingDown = false;
    const retry = await notify()(streamEvent(records));
    expect(retry.batchItemFailures).toEqual([]);
    expect(parked.map((r) => r.key)).toEqual([`A#outbox#${changes[0]!.notificationId}`]);
    expect(new Set(phone.sent.map((m) => m.page.notificationId))).toEqual(
      new Set(changes.slice(1).map((n) => n.notificationId)),
    );
  });
  it('holds the records after one whose pager could not start, even when it starts for the next one', async () => {
    const changes = gradeChanges('A');
    expect(changes.length).toBeGreaterThanOrEqual(2);
    coldStartFails = 1; // the secret unreadable once, readable again at once
    await expect(notify()(streamEvent(changes.map(outboxInsert)))).rejects.toThrow(/records in the batch failed/);
    expect(phone.sent).toEqual([]);
  });

  it('parks a readable record that paging fails on under its grade change or alert id, for `crs outbox list`', async () => {
    const [change] = gradeChanges('A');
    const alert = SPO2_ALERT;
    const broken = async () => {
      throw new TypeError('x is undefined');
    };
    pager = { onNotification: broken, onAlert: broken } as unknown as Pager;
    const res = await notify()(streamEvent([outboxInsert(change!), alertInsert(alert, 99)]));
    expect(res.batchItemFailures).toEqual([]);
    expect(parked.map((r) => [r.key, r.id, r.reason])).toEqual([
      [`A#outbox#${change!.notificationId}`, change!.notificationId, 'paging it failed (TypeError)'],
      ['A#outbox#spo2|A|m9', 'spo2|A|m9', 'paging it failed (TypeError)'],
    ]);
  });
  it('says a record that is not an outbox insert was ignored, not paged (what `crs outbox retry` counts)', async () => {
    const counted: string[] = [];
    const delivery = new OutboxDelivery({
      paging: async () => ({ pager, parkedRecords: { park: async (r) => void parked.push(r) } }),
      now: () => NOW,
      log: () => {},
      count: (o) => counted.push(o),
    });
    const state: OutboxImage = { pk: { S: 'A' }, sk: { S: 'state' }, kind: { S: 'state' }, state: { S: '{}' } };
    expect(await delivery.deliver(state)).toBe('ignored');
    expect(await delivery.deliver(outboxInsert(gradeChanges('A')[0]!).dynamodb!.NewImage as OutboxImage)).toBe('paged');
    expect(counted).toEqual(['paged']);
  });
  it('marks with the last restore the pages of the records `crs outbox retry` pages: a grade change and an alert (2026-12-07)', async () => {
    // A record parked (or given up on) before a restore may have been paged by the lost deployment since, under the
    // same ids: its sends are marked, as every send of a restored crs serve is. The notifier gives no restoredAt.
    const [change] = gradeChanges('A');
    const reads: string[] = [];
    const delivery = new OutboxDelivery({
      paging: async () => ({ pager, parkedRecords: { park: async (r) => void parked.push(r) } }),
      now: () => NOW,
      log: () => {},
      restoredAt: async () => {
        reads.push('#restore');
        return 1_796_669_000_000;
      },
    });
    expect(await delivery.deliver(outboxInsert(change!).dynamodb!.NewImage as OutboxImage)).toBe('paged');
    expect(await delivery.deliver(alertInsert(SPO2_ALERT, 99).dynamodb!.NewImage as OutboxImage)).toBe('paged');
    const sendIds = phone.sent.map((m) => pageEvent(m, NOW).sendId);
    expect(new Set(phone.sent.map((m) => m.page.notificationId))).toEqual(
      new Set([change!.notificationId, SPO2_ALERT.alertId]),
    );
    expect(sendIds.filter((id) => !id.endsWith('@1796669000000'))).toEqual([]);
    expect(reads).toHaveLength(2);
  });
  it('hands the grade change to the sender before the pager sends its pages (so none is read back from the outbox, which may have dropped it)', async () => {
    const [change] = gradeChanges('A');
    const knownAtSend: boolean[] = [];
    const delivery = new OutboxDelivery({
      paging: async () => ({
        pager: {
          onNotification: async (n: Notification) => void knownAtSend.push(remembered.includes(n.notificationId)),
          onAlert: async () => {},
        } as unknown as Pager,
        remember: (n) => remembered.push(n.notificationId),
        parkedRecords: { park: async (r) => void parked.push(r) },
      }),
      now: () => NOW,
      log: () => {},
    });
    expect(await delivery.deliver(outboxInsert(change!).dynamodb!.NewImage as OutboxImage)).toBe('paged');
    expect(knownAtSend).toEqual([true]);
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
      aws('TransactionCanceledException', 'client'), // a transaction still throttled after its retries
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

describe('what a failure is about (isOutage), pinned by a mutation run', () => {
  const answered = (status: number | undefined, fault?: 'server') =>
    Object.assign(new Error('UnknownError'), {
      name: 'UnknownError',
      ...(fault ? { $fault: fault } : {}),
      $metadata: status === undefined ? {} : { httpStatusCode: status },
    });
  it('an answer the SDK has no name for is an outage by its status (500 and up, 401, 403, 407, 408, 429) or its fault', () => {
    for (const status of [500, 503, 401, 403, 407, 408, 429])
      expect(isOutage(answered(status)), `${status}`).toBe(true);
    expect(isOutage(answered(undefined, 'server')), 'a server fault without a status').toBe(true);
    for (const status of [400, 404, 409, 413, 499]) expect(isOutage(answered(status)), `${status}`).toBe(false);
  });
});

// crs doctor reports only these as a resource it could not read; anything else ends its run (2026-12-07).
describe('whether an error came from AWS or the way to it (isFromAws), pinned by a mutation run', () => {
  it("an answer of a service (its $metadata, or its $fault alone), the network: AWS's; an error of the code: not", () => {
    const named = (name: string, o: object) => Object.assign(new Error(name), { name, ...o });
    expect(isFromAws(named('ValidationException', { $metadata: { httpStatusCode: 400 } }))).toBe(true);
    expect(isFromAws(named('SomethingNew', { $fault: 'client' }))).toBe(true);
    expect(isFromAws(named('Error', { code: 'ECONNRESET' }))).toBe(true);
    for (const e of [new TypeError('x is undefined'), new Error('assertion'), { $metadata: {} }, 'a string'])
      expect(isFromAws(e), String(e)).toBe(false);
  });
});

describe('the on-failure queue, read again by `crs outbox retry --backend aws`: pinned by a mutation run', () => {
  const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/NotifyFailures';
  const ARN = 'arn:aws:dynamodb:eu-west-1:123456789012:table/state/stream/2026';
  const failure = (first: string, last: string) =>
    JSON.stringify({
      requestContext: { condition: 'RetryAttemptsExhausted' },
      DDBStreamBatchInfo: {
        shardId: 'shard-1',
        startSequenceNumber: first,
        endSequenceNumber: last,
        approximateArrivalOfFirstRecord: '2026-01-10T09:00:00Z',
        batchSize: 3,
        streamArn: ARN,
      },
    });

  it('reads every message, oldest range first by sequence number (not as text), and counts those that are not stream failures', async () => {
    const sqs = mockClient(SQSClient);
    try {
      sqs
        .on(ReceiveMessageCommand)
        .resolvesOnce({
          Messages: [
            { Body: failure('10000', '10002'), ReceiptHandle: 'r1' },
            { Body: '{"not":"a stream failure"}', ReceiptHandle: 'r2' },
          ],
        })
        .resolvesOnce({
          Messages: [
            { Body: failure('900', '902'), ReceiptHandle: 'r3' },
            {
              Body: JSON.stringify({ DDBStreamBatchInfo: { shardId: 's', startSequenceNumber: '1', streamArn: ARN } }),
              ReceiptHandle: 'r4',
            },
          ],
        })
        .resolves({ Messages: [] });
      const read = await receiveNotifyFailures(new SQSClient({ region: 'eu-west-1' }), QUEUE);
      expect(read.failures.map((f) => [f.id, f.receiptHandle])).toEqual([
        ['stream#900..902', 'r3'],
        ['stream#10000..10002', 'r1'],
      ]);
      expect(read.unreadable).toBe(2);
      // Hidden from another operator's command meanwhile; shown again at once when released.
      expect(sqs.commandCalls(ReceiveMessageCommand)[0]!.args[0].input.VisibilityTimeout).toBeGreaterThan(0);
      await release(new SQSClient({ region: 'eu-west-1' }), QUEUE, read.failures[0]!);
      expect(sqs.commandCalls(ChangeMessageVisibilityCommand)[0]!.args[0].input).toEqual({
        QueueUrl: QUEUE,
        ReceiptHandle: 'r3',
        VisibilityTimeout: 0,
      });
    } finally {
      sqs.restore();
    }
  });

  it('reads to the end of the queue, never stopping at a false empty answer of short polling (a few messages on it)', async () => {
    const sqs = mockClient(SQSClient);
    try {
      // SQS short polling (WaitTimeSeconds 0) samples some of its servers: with few messages on the queue it may
      // answer none while there are some. Long polling (1 s or more) asks them all.
      let left = [{ Body: failure('900', '902'), ReceiptHandle: 'r1' }];
      sqs.on(ReceiveMessageCommand).callsFake((input: { WaitTimeSeconds?: number }) => {
        if (!input.WaitTimeSeconds) return { Messages: [] };
        const Messages = left;
        left = [];
        return { Messages };
      });
      const read = await receiveNotifyFailures(new SQSClient({ region: 'eu-west-1' }), QUEUE);
      expect(read.failures.map((f) => f.id)).toEqual(['stream#900..902']);
    } finally {
      sqs.restore();
    }
  });

  /** A shard: its records by sequence number, read through iterators; `pages` says how each read is cut. */
  function shard(seqs: number[], pages: number[]) {
    const reads: number[] = [...pages];
    let ids = 0;
    const iterators = new Map<string, number>();
    const iterator = (at: number) => {
      const id = `it-${ids++}`;
      iterators.set(id, at);
      return id;
    };
    const record = (seq: number) => ({
      eventName: seq % 10 === 9 ? 'REMOVE' : 'INSERT',
      dynamodb: { SequenceNumber: String(seq), NewImage: { seq: { N: String(seq) } } },
    });
    const client = {
      reads: 0,
      send: async (command: unknown) => {
        if (command instanceof GetShardIteratorCommand) {
          const from = Number(command.input.SequenceNumber);
          const i = seqs.findIndex((s) =>
            command.input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER' ? s > from : s >= from,
          );
          return { ShardIterator: iterator(i < 0 ? seqs.length : i) };
        }
        if (command instanceof GetRecordsCommand) {
          const at = iterators.get(command.input.ShardIterator!)!;
          client.reads++;
          const n = reads.length > 0 ? reads.shift()! : 100; // an open shard: empty reads at its end
          const records = seqs.slice(at, at + n).map(record);
          return { Records: records, NextShardIterator: iterator(at + records.length) };
        }
        throw new Error('unexpected command');
      },
    };
    return client as typeof client & DynamoDBStreamsClient;
  }
  const range = (first: number, last: number): NotifyFailure => ({
    id: `stream#${first}..${last}`,
    receiptHandle: 'r',
    condition: 'RetryAttemptsExhausted',
    shardId: 'shard-1',
    streamArn: ARN,
    startSequenceNumber: String(first),
    endSequenceNumber: String(last),
    batchSize: 0,
    firstArrival: '',
  });
  const delivering = () => {
    const seen: string[] = [];
    const delivery = {
      deliver: async (image: OutboxImage | undefined) => {
        seen.push(image?.seq?.N ?? 'none');
        return 'paged' as const;
      },
    } as unknown as OutboxDelivery;
    return { seen, delivery };
  };

  it('delivers the inserts of the range, first and last included, in order, and nothing past it', async () => {
    const { seen, delivery } = delivering();
    const counts = await redrive(range(101, 104), shard([100, 101, 102, 103, 104, 105, 106], []), delivery);
    expect(seen).toEqual(['101', '102', '103', '104']);
    expect(counts).toEqual({ paged: 4, deferred: 0, parked: 0, ignored: 0 });
  });

  it('leaves out the records that are not inserts (what the stream filter drops)', async () => {
    const { seen, delivery } = delivering();
    await redrive(range(101, 111), shard([101, 109, 110, 111], []), delivery);
    expect(seen).toEqual(['101', '110', '111']);
  });

  it('reads on through the empty reads an open shard answers between records: none of the range is left behind', async () => {
    const { seen, delivery } = delivering();
    // Reads of the shard: empty three times, one record, empty once, then the rest.
    await redrive(range(101, 104), shard([101, 102, 103, 104], [0, 0, 0, 1, 0, 100]), delivery);
    expect(seen).toEqual(['101', '102', '103', '104']);
  });

  it('stops reading at the first record past the range, on a shard that keeps being written', async () => {
    const { seen, delivery } = delivering();
    const busy = shard(
      Array.from({ length: 200 }, (_, i) => 101 + i),
      Array.from({ length: 200 }, () => 1),
    );
    await redrive(range(101, 104), busy, delivery);
    expect(seen).toEqual(['101', '102', '103', '104']);
    expect(busy.reads).toBe(5);
  });

  it('throws when none of the range can be read any more, so that its message stays on the queue', async () => {
    const { seen, delivery } = delivering();
    await expect(redrive(range(101, 104), shard([200, 201], []), delivery)).rejects.toThrow(/could be read/);
    expect(seen).toEqual([]);
  });
});

describe('notify handler, one instance over many invocations (as in Lambda): pinned by a mutation run', () => {
  it('holds records only within the invocation that failed: the retry by the same function instance pages them', async () => {
    const handler = notify(); // created once per container in Lambda, used by every invocation
    const changes = gradeChanges('A');
    const records = changes.map(outboxInsert);
    throttled = true;
    await expect(handler(streamEvent(records))).rejects.toThrow(/records in the batch failed/);
    throttled = false;
    const retry = await handler(streamEvent(records));
    expect(retry.batchItemFailures).toEqual([]);
    expect(new Set(phone.sent.map((m) => m.page.notificationId))).toEqual(
      new Set(changes.map((c) => c.notificationId)),
    );
  });
});

describe("the notify function's pager from the stack's variables (liveDeps, awsPagingFromEnv): pinned by a mutation run", () => {
  const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
  const TIMERS = 'https://sqs.eu-west-1.amazonaws.com/123456789012/EscalationTimers';
  const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AckSigningSecret';
  const ACK_BASE = 'https://api.example/ack/';
  /** What the stack sets on the notify function, with a grading configuration whose timeout is not the default. */
  const STACK_ENV: Record<string, string> = {
    CRS_PAGES_TABLE: 'pages',
    CRS_AUDIT_TABLE: 'audit',
    CRS_STATE_TABLE: 'state',
    CRS_PAGES_TOPIC_ARN: TOPIC,
    CRS_ESCALATION_QUEUE_URL: TIMERS,
    CRS_ACK_SECRET_ARN: SECRET_ARN,
    CRS_ACK_BASE_URL: ACK_BASE,
    ...shippedConfig({ paging: { timeoutMinutes: { severe: 5, other: 7 } } }),
  };
  let ddb: FakeDynamo;
  let sns: ReturnType<typeof mockClient>;
  let sqs: ReturnType<typeof mockClient>;
  let secrets: ReturnType<typeof mockClient>;
  let published: PublishCommandInput[];
  let timers: SendMessageCommandInput[];
  const saved: Record<string, string | undefined> = {};

  beforeEach(() => {
    ddb = new FakeDynamo(PAGING_TABLES);
    sns = mockClient(SNSClient);
    sqs = mockClient(SQSClient);
    secrets = mockClient(SecretsManagerClient);
    published = [];
    timers = [];
    sns.on(PublishCommand).callsFake((input: PublishCommandInput) => {
      published.push(input);
      return { MessageId: `m${published.length}` };
    });
    sqs.on(SendMessageCommand).callsFake((input: SendMessageCommandInput) => {
      timers.push(input);
      return { MessageId: `t${timers.length}` };
    });
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'live-deps-ack-secret-of-at-least-32-bytes' });
    for (const [name, value] of Object.entries(STACK_ENV)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });
  afterEach(() => {
    for (const [name, value] of Object.entries(saved))
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    ddb.restore();
    sns.restore();
    sqs.restore();
    secrets.restore();
  });

  /** A patient of ward W7 graded febrile (CRS 1) by the grade function: the stream's INSERT of that grade change. */
  async function gradeChange(patientId: string, at: number): Promise<DynamoDBRecord> {
    await gradePatient(stateStoreOn(ddb, at), DEFAULT_CONFIG, patientId, [
      enrol(patientId, -60, { ward: 'W7' }),
      msg(patientId, 0, { vitals: { temperatureC: 38.7 } }),
    ]);
    const item = ddb
      .items('state')
      .find((i) => i.pk?.S === patientId && i.sk?.S?.startsWith(STATE_TABLE.outboxSortKeyPrefix) && i.notification);
    if (!item) throw new Error('no grade change in the outbox');
    return outboxInsert(JSON.parse(item.notification!.S!) as Notification);
  }

  it("pages through the stack's topic, with the patient's ward, the stack's link and configuration, and sets the timer on the stack's queue", async () => {
    const notify = mod.createNotifyHandler(mod.liveDeps(() => T0));
    const change = await gradeChange('P-live', T0);
    const first = await captureOutput(() => notify(streamEvent([change])));
    expect(first.result.batchItemFailures).toEqual([]);
    // The grade 1 page to hematology, on the stack's topic, with the ward ward-limited subscriptions filter on.
    expect(published.length).toBeGreaterThan(0);
    for (const p of published) {
      expect(p.TopicArn).toBe(TOPIC);
      expect(p.MessageAttributes?.ward?.StringValue).toBe('W7');
      expect(p.Message).toContain(ACK_BASE);
    }
    // Counted as sent, once a page (the PagesSent metric).
    expect(metricSum(first.out, 'PagesSent')).toBe(published.length);
    // Its escalation timer on the stack's queue, after CRS_CONFIG's 7 minutes (not the default 15).
    expect(timers.length).toBeGreaterThan(0);
    for (const t of timers) {
      expect(t.QueueUrl).toBe(TIMERS);
      expect(t.DelaySeconds).toBe(7 * 60);
    }
    // The pages in the pages table (and its audit entries in the audit table).
    expect(ddb.items('pages').some((i) => i.sk?.S?.startsWith(PAGES_TABLE.pageSortKeyPrefix))).toBe(true);
    // Its trail in the stack's audit table (a trail written elsewhere passed when only the pages were looked at).
    const trail = ddb
      .items('audit')
      .sort((a, b) => a.written!.S!.localeCompare(b.written!.S!))
      .map((i) => JSON.parse(i.entry!.S!) as { patientId: string; type: string; details: { pageId?: string } });
    expect(trail.map((e) => [e.patientId, e.type, e.details.pageId])).toEqual([
      ['P-live', 'notification', undefined],
      ['P-live', 'page', 'crs|P-live|#2|hematology'],
      ['P-live', 'delivery', 'crs|P-live|#2|hematology'],
    ]);

    // Stamped by the function's clock (the host's test clock on an emulator).
    for (const p of published) expect(JSON.parse(JSON.parse(p.Message!).default).page.sentAt).toBe(iso(T0));

    // The next invocation of the same container reads the secret no more while it is fresh (docs/paging.md). An
    // alert carries no ward of its own: its pages carry the patient's, read from the state table.
    const before = published.length;
    const spo2: AlertChange = {
      alertId: 'spo2|P-live|m9',
      patientId: 'P-live',
      subject: 'spo2',
      cleared: false,
      summary: 'WARNING (not a grade), patient P-live: SpO2 88 %',
      at: iso(T0),
    };
    const second = await captureOutput(() => notify(streamEvent([alertInsert(spo2, 2)])));
    expect(second.result.batchItemFailures).toEqual([]);
    expect(published.length).toBeGreaterThan(before);
    for (const p of published.slice(before)) expect(p.MessageAttributes?.ward?.StringValue).toBe('W7');
    expect(secrets.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId)).toEqual([SECRET_ARN]);
  });

  it('signs with a key put since its cold start once its key is 5 minutes old; a failed read keeps the key it holds (2026-12-06)', async () => {
    const k1 = 'first-ack-secret-of-at-least-32-bytes-long';
    const k2 = 'second-ack-secret-of-at-least-32-bytes-long';
    secrets.on(GetSecretValueCommand).resolves({ SecretString: k1 });
    let clock = T0;
    const notify = quiet(mod.createNotifyHandler(mod.liveDeps(() => clock)));
    /** The key the last page published was signed with (its link's token is the MAC of its claims). */
    const signedWith = async (patientId: string) => {
      const at = published.length;
      expect((await notify(streamEvent([await gradeChange(patientId, clock)]))).batchItemFailures).toEqual([]);
      const [p] = published
        .slice(at)
        .map((m) => JSON.parse(JSON.parse(m.Message!).default).page as Record<string, string>);
      const claims = {
        pageId: p!.pageId!,
        role: p!.role!,
        expiresAt: clock + DEFAULT_CONFIG.paging.ackLinkMinutes * 60_000,
      };
      const token = p!.ackUrl!.split('/').at(-1);
      return [k1, k2].find((k) => shortAckToken(Buffer.from(k), claims) === token);
    };
    const reads = () => secrets.commandCalls(GetSecretValueCommand).length;
    expect(await signedWith('P-1')).toBe(k1);
    // put-secret-value: this warm container reads it once the key it holds is ACK_KEYS_MAX_AGE_MS old.
    secrets.on(GetSecretValueCommand).resolves({ SecretString: k2 });
    clock = T0 + ACK_KEYS_MAX_AGE_MS - 1;
    expect(await signedWith('P-2')).toBe(k1);
    expect(reads()).toBe(1);
    clock = T0 + ACK_KEYS_MAX_AGE_MS;
    expect(await signedWith('P-3')).toBe(k2);
    expect(reads()).toBe(2);
    // Secrets Manager failing: the page goes out, signed with the key held; counted and logged by the error's name.
    secrets
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('secret arn:x denied'), { name: 'AccessDeniedException' }));
    clock = T0 + 2 * ACK_KEYS_MAX_AGE_MS;
    const failed = await captureOutput(() => signedWith('P-4'));
    expect(failed.result).toBe(k2);
    expect(reads()).toBe(3);
    expect(metricSum(failed.out, 'AckKeyReadFailures')).toBe(1);
    expect(failed.out).toContain('"error":"AccessDeniedException"');
    expect(failed.out).not.toContain('arn:x');
  });

  it('counts as sent only the pages SNS took (PagesSent), not those it refused', async () => {
    sns
      .on(PublishCommand)
      .rejects(Object.assign(new Error('SNS is down'), { name: 'InternalErrorException', $fault: 'server' }));
    const notify = mod.createNotifyHandler(mod.liveDeps(() => T0));
    const change = await gradeChange('P-down', T0);
    const { result, out } = await captureOutput(() => notify(streamEvent([change])));
    expect(result.batchItemFailures).toEqual([]);
    expect(metricSum(out, 'SendsDeferred')).toBeGreaterThan(0);
    expect(metricSum(out, 'PagesSent')).toBe(0);
  });

  it('parks a page SNS refuses (SendsParked, logged as an error by id) and a record bad in itself, both in the pages table', async () => {
    sns
      .on(PublishCommand)
      .rejects(
        Object.assign(new Error('Invalid parameter: W7'), { name: 'InvalidParameterException', $fault: 'client' }),
      );
    const notify = mod.createNotifyHandler(mod.liveDeps(() => T0));
    const change = await gradeChange('P-refused', T0);
    const bad = await gradeChange('P-bad', T0);
    bad.dynamodb!.NewImage!.notification = { S: '{"notificationId": 7' };
    const { result, out } = await captureOutput(() => notify(streamEvent([change, bad])));
    expect(result.batchItemFailures).toEqual([]);
    expect(metricSum(out, 'SendsParked')).toBeGreaterThan(0);
    expect(metricSum(out, 'RecordsParked')).toBe(1);
    const parkedLine = out.split('\n').find((l) => l.includes('page send PARKED'));
    expect(JSON.parse(parkedLine!)).toMatchObject({ level: 'ERROR', patientId: 'P-refused' });
    const parked = ddb.items('pages').filter((i) => i.pk?.S === PAGES_TABLE.parkedPartition);
    expect(parked.some((i) => i.sk?.S?.startsWith(`${PAGES_TABLE.parkedRecordPrefix}P-bad#`))).toBe(true);
    expect(parked.some((i) => i.sk?.S?.startsWith('crs|P-refused|'))).toBe(true);
  });

  it('counts an escalation timer SQS refused (TimerErrors), by its error name only', async () => {
    sqs.on(SendMessageCommand).rejects(Object.assign(new Error('queue https://x gone'), { name: 'QueueDoesNotExist' }));
    const notify = mod.createNotifyHandler(mod.liveDeps(() => T0));
    const change = await gradeChange('P-timer', T0);
    const { result, out } = await captureOutput(() => notify(streamEvent([change])));
    expect(result.batchItemFailures).toEqual([]);
    expect(published.length).toBeGreaterThan(0);
    expect(metricSum(out, 'TimerErrors')).toBeGreaterThan(0);
    expect(out).toContain('"error":"QueueDoesNotExist"');
    expect(out).not.toContain('queue https://x gone');
  });

  it('publishes nothing for a team the stack says has no endpoint now (CRS_TEAMS_WITHOUT_ENDPOINTS): its page is kept, unsent, for the tick to name', async () => {
    process.env[ENV.teamsWithoutEndpoints] = 'hematology';
    try {
      const notify = mod.createNotifyHandler(mod.liveDeps(() => T0));
      const change = await gradeChange('P-gone', T0); // CRS 1: hematology alone
      const { result } = await captureOutput(() => notify(streamEvent([change])));
      expect(result.batchItemFailures).toEqual([]);
      // Until 2026-12-07 it was published to the topic, which no subscription of hematology read.
      expect(published).toEqual([]);
      const page = ddb.items('pages').find((i) => i.sk?.S?.includes('crs|P-gone|#2|hematology'));
      expect(page).toBeDefined();
    } finally {
      delete process.env[ENV.teamsWithoutEndpoints];
    }
  });

  it("fails the cold start naming a variable the stack did not set, and hands the functions CRS_CONFIG_FILE's configuration", async () => {
    const clients = {
      dynamodb: ddb.client(),
      sns: new SNSClient({}),
      sqs: new SQSClient({}),
      secrets: new SecretsManagerClient({}),
    };
    const built = await awsPagingFromEnv({ ...STACK_ENV }, clients);
    expect(built.config.paging.timeoutMinutes.other).toBe(7);
    expect(built.states).toBeDefined();
    expect(built.sender).toBeDefined();
    for (const name of Object.keys(STACK_ENV).filter((n) => n !== 'CRS_CONFIG_FILE')) {
      const env: NodeJS.ProcessEnv = { ...STACK_ENV };
      delete env[name];
      await expect(awsPagingFromEnv(env, clients), name).rejects.toThrow(`environment variable ${name} is not set`);
    }
    await expect(awsPagingFromEnv({ ...STACK_ENV, CRS_PAGES_TABLE: '' }, clients)).rejects.toThrow(
      'environment variable CRS_PAGES_TABLE is not set',
    );
    // No file is the default configuration; a file that is missing, not JSON, or not a valid configuration fails the
    // cold start, naming the variable and the file.
    await expect(
      awsPagingFromEnv({ ...STACK_ENV, ...shippedConfig({ paging: { timeoutMinutes: { other: -1 } } }) }, clients),
    ).rejects.toThrow(/^CRS_CONFIG_FILE \(.*crs-config\.json\) is not a valid grading configuration/);
    const { CRS_CONFIG_FILE: _shipped, ...unconfigured } = STACK_ENV;
    expect((await awsPagingFromEnv(unconfigured, clients)).config.paging.timeoutMinutes.other).toBe(15);
    await expect(awsPagingFromEnv({ ...STACK_ENV, ...shippedConfig('{"paging": ') }, clients)).rejects.toThrow(
      /^CRS_CONFIG_FILE \(.*\) is not valid JSON/,
    );
    await expect(
      awsPagingFromEnv({ ...STACK_ENV, CRS_CONFIG_FILE: 'not-shipped.json', LAMBDA_TASK_ROOT: '/var/task' }, clients),
    ).rejects.toThrow('CRS_CONFIG_FILE (/var/task/not-shipped.json) cannot be read: ENOENT');
  });
});
