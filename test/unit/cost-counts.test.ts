// The cost model's counts are the handlers' own: an hour of one patient's vitals, none of which changes a grade,
// run through the deployed handlers over the fakes (test/cost/measure.ts, as `npm run cost` does), costs exactly
// these DynamoDB requests and units per message. A change to the write path that adds a write (an item, an
// attribute that pushes an item over 1 KB, an index entry) changes these numbers and fails here: update the
// expectation, and the figures in docs/cost.md, on purpose.
import { describe, expect, it } from 'vitest';
import { measure } from '../cost/measure.ts';
import { floor, pageDeliveryCost, price, type Priced, type Scenario, type Setup } from '../cost/model.ts';
import { stackFacts } from '../cost/stack.ts';
import { PRICES } from '../cost/prices.ts';

describe('the cost model counts what the handlers do', () => {
  it('a message that changes no grade: a consistent read of the state and of its seen item, a put of the state (carrying the message and its audit entry) and, at the next message, a put of its seen item, 1 KB each', async () => {
    const m = await measure({
      patients: 1,
      hours: 1,
      intervalSeconds: 60,
      messagesPerRequest: 1,
      recordsPerInvocation: 1,
      logLevel: 'WARN',
      tickPatients: 1,
    });
    // The feed's first hour: an enrolment, a neuro and oxygen charting, and vitals every minute, all grade 0.
    expect(m.notifications).toBe(0);
    expect(m.messages).toBe(62);
    const n = m.messages;
    const u = m.grade.usage;
    // One GetItem a message (the state) and one BatchGetItem (its seen item). For the patient's first, with no state
    // stored, the BatchGetItem reads one item more: whether the state table was restored (crs restore --backend aws,
    // 2026-12-07), once in a patient's life; a read unit, no request.
    expect(u.requests['dynamodb:GetItem']).toBe(n);
    expect(u.requests['dynamodb:BatchGetItem']).toBe(n);
    // No transaction: the state item alone, and the message before's seen item (the last one waits in the state).
    expect(u.requests['dynamodb:TransactWriteItems']).toBeUndefined();
    expect(u.requests['dynamodb:PutItem']).toBe(n + (n - 1));
    expect(u.dynamo.state).toMatchObject({ read: n + 1, write: n, transactionalWrite: 0 });
    // The assessment's audit entry rides in the message's seen item (at most 1 KB with it): no audit item.
    expect(u.dynamo.audit).toBeUndefined();
    expect(u.dynamo.seen).toEqual({ read: n, write: n - 1, transactionalWrite: 0, indexWrite: 0 });
    // The stale-feed index moves every 10 minutes of feed, not on every message: its first entry (the enrolment, an
    // hour before the vitals), then a delete and a put each time it moves: when the vitals start after that gap,
    // then every 10 minutes of the hour.
    expect(u.dynamo.state!.indexWrite).toBe(1 + 2 * (1 + 5));
    expect(m.stateItem.max).toBeLessThanOrEqual(1024);
    // Per message: nothing else on DynamoDB, one SQS send, and at the default log level one line per invocation:
    // its metrics (EMF), no INFO line.
    expect(Object.keys(u.dynamo).sort()).toEqual(['seen', 'state']);
    expect(m.ingest.usage.requests['sqs:SendMessageBatch']).toBe(n);
    expect(m.grade.invocations).toBe(n);
    expect(m.grade.logLines).toBe(n);
  }, 120_000);
});

describe('the pages the cost model prices', () => {
  it('counts each SMS by its parts, as SNS bills it: a page with its short acknowledge link takes one', async () => {
    // A day of the feed's first patient: a fever, so a CRS grade 1 page to hematology (one publish).
    const m = await measure({
      patients: 1,
      hours: 24,
      intervalSeconds: 300,
      messagesPerRequest: 1,
      recordsPerInvocation: 1,
      logLevel: 'WARN',
      tickPatients: 1,
    });
    const publishes = m.notify.usage.requests['sns:Publish'];
    expect(publishes).toBe(1);
    // The SMS says the grade, the bed, the patient and the link (on the API's own address, 81 characters): one
    // part of 160. A link that carried its claims (about 200 characters) made it two.
    expect(m.notify.usage.smsParts).toEqual({ escalation: 1 });
    const cost = pageDeliveryCost(1, 2, { email: 1, sms: 1 });
    expect(cost).toBeCloseTo(PRICES.sns.perPublish + PRICES.sns.perEmail + 2 * PRICES.sns.perSmsUs, 12);
    expect(pageDeliveryCost(3, 0, { email: 1 })).toBeCloseTo(3 * (PRICES.sns.perPublish + PRICES.sns.perEmail), 12);
  }, 120_000);
});

describe('the pages of a whole course', () => {
  it('are the CRS 1 page and, an hour after the grade falls, its de-escalation: each priced as the SMS filter lets it through', async () => {
    // Two days of the feed's first patient: the fever's page, then 24 hours after the last fever and the hour's
    // hold, the de-escalation (what a one-day run never reached).
    const m = await measure({
      patients: 1,
      hours: 48,
      intervalSeconds: 900,
      messagesPerRequest: 1,
      recordsPerInvocation: 1,
      logLevel: 'WARN',
      tickPatients: 1,
    });
    expect(m.notify.usage.smsParts).toEqual({ escalation: 1, 'de-escalation': 1 });
    const scenario: Scenario = {
      key: 'a',
      title: 'one patient',
      patients: 1,
      intervalSeconds: 900,
      messagesPerRequest: 1,
      recordsPerInvocation: 1,
      target: 10,
    };
    const setup: Setup = { capacity: 'on-demand', historyTableClass: 'STANDARD' };
    const stack = stackFacts();
    const pages = (smsKinds: string[] | undefined) =>
      price(scenario, m, { ...stack, smsKinds: smsKinds ? { hematology: smsKinds } : {} }, setup).lines.find(
        (l) => l.driver === 'SNS pages',
      )!.month1;
    const noSms = pages(['no such kind']);
    // The same publishes and emails; of the SMS, the escalation's part and not the de-escalation's.
    expect(pages(['escalation', 'alert', 'test'])).toBeLessThan(pages(undefined));
    expect(pages(undefined) - noSms).toBeCloseTo(2 * (pages(['escalation', 'alert', 'test']) - noSms), 12);
    expect(pages(['de-escalation']) - noSms).toBeCloseTo(pages(['escalation']) - noSms, 12);
  }, 120_000);
});

describe('the floor of the architecture', () => {
  it('adds the pages, the fixed costs and the API and SQS requests, and nothing the write path spends', () => {
    const line = (driver: string, month1: number) => ({ driver, item: driver, quantity: '', month1, month12: month1 });
    const p = {
      patientDaysPerMonth: 2000,
      lines: [
        line('SNS pages', 8),
        line('CloudWatch metrics and alarms', 4),
        line('KMS', 3),
        line('Secrets Manager', 0.4),
        line('API Gateway requests', 2),
        line('SQS requests', 1.6),
        line('DynamoDB capacity', 50),
        line('Lambda grade', 7),
        line('CloudWatch Logs', 2),
        line('DynamoDB storage (audit)', 1),
      ],
    } as unknown as Priced;
    expect(floor(p)).toEqual({ month1: 19, perKPatientDays1: 9.5, pagesPerKPatientDays1: 4 });
  });
});
