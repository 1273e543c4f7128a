// The cost model's counts are the handlers' own: an hour of one patient's vitals, none of which changes a grade,
// run through the deployed handlers over the fakes (test/cost/measure.ts, as `npm run cost` does), costs exactly
// these DynamoDB requests and units per message. A change to the write path that adds a write (an item, an
// attribute that pushes an item over 1 KB, an index entry) changes these numbers and fails here: update the
// expectation, and the figures in docs/cost.md, on purpose.
import { describe, expect, it } from 'vitest';
import { measure } from '../cost/measure.ts';

describe('the cost model counts what the handlers do', () => {
  it('a message that changes no grade: one consistent read and one transaction of the state, audit entry and seen message, 1 KB each', async () => {
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
    expect(u.requests['dynamodb:GetItem']).toBe(n);
    expect(u.requests['dynamodb:TransactWriteItems']).toBe(n);
    // A transaction writes each item twice (TransactWriteItems bills 2 units per KB).
    expect(u.dynamo.state).toMatchObject({ read: n, write: 0, transactionalWrite: 2 * n });
    expect(u.dynamo.audit).toEqual({ read: 0, write: 0, transactionalWrite: 2 * n, indexWrite: 0 });
    expect(u.dynamo.seen).toEqual({ read: 0, write: 0, transactionalWrite: 2 * n, indexWrite: 0 });
    // The stale-feed index moves every 5 minutes of feed, not on every message: its first entry (the enrolment, an
    // hour before the vitals), then a delete and a put each time it moves: when the vitals start after that gap,
    // then every 5 minutes of the hour.
    expect(u.dynamo.state!.indexWrite).toBe(1 + 2 * (1 + 11));
    expect(m.stateItem.max).toBeLessThanOrEqual(1024);
    // Per message: nothing else on DynamoDB, one SQS send, and at the default log level one line per invocation:
    // its metrics (EMF), no INFO line.
    expect(Object.keys(u.dynamo).sort()).toEqual(['audit', 'seen', 'state']);
    expect(m.ingest.usage.requests['sqs:SendMessageBatch']).toBe(n);
    expect(m.grade.invocations).toBe(n);
    expect(m.grade.logLines).toBe(n);
  }, 120_000);
});
