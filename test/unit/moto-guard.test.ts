// The lock behind the moto guard (test/support/moto-guard.ts): a transaction runs alone, waits for the requests in
// flight before it, and holds back the ones that come after it; other requests run together.
import { describe, expect, it } from 'vitest';
import { FairLock, lockModeOf } from '#test/support/moto-guard.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('moto guard', () => {
  it('locks DynamoDB transactions alone, other DynamoDB and stream requests together, nothing else', () => {
    expect(lockModeOf('DynamoDB_20120810.TransactWriteItems')).toBe('exclusive');
    expect(lockModeOf('DynamoDB_20120810.PutItem')).toBe('shared');
    expect(lockModeOf('DynamoDB_20120810.GetItem')).toBe('shared');
    expect(lockModeOf('DynamoDBStreams_20120810.GetRecords')).toBe('shared');
    expect(lockModeOf('AmazonSQS.ReceiveMessage')).toBeUndefined();
    expect(lockModeOf(undefined)).toBeUndefined();
  });

  it('runs a transaction after the requests before it and before the ones after it', async () => {
    const lock = new FairLock();
    const log: string[] = [];
    const run = (name: string, mode: 'shared' | 'exclusive') =>
      lock.acquire(mode).then((release) => {
        log.push(`start ${name}`);
        return release;
      });
    const a = run('a', 'shared');
    const b = run('b', 'shared');
    const tx = run('tx', 'exclusive');
    const c = run('c', 'shared');
    await tick();
    expect(log).toEqual(['start a', 'start b']);
    (await a)();
    await tick();
    expect(log).toEqual(['start a', 'start b']);
    (await b)();
    await tick();
    expect(log).toEqual(['start a', 'start b', 'start tx']);
    const release = await tx;
    release();
    release(); // a second release changes nothing
    await tick();
    expect(log).toEqual(['start a', 'start b', 'start tx', 'start c']);
    (await c)();
    expect(lock.busyFor('exclusive')).toBe(false);
  });
});
