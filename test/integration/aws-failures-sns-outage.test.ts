// A failure of the deployed shape on an emulator, through the real `crs serve --backend aws`: an SNS outage delays
// pages but loses and repeats none, and sends nothing to the on-failure queue. (One file per failure,
// aws-failures-*.test.ts, so that they run side by side, each on its own moto.)
import { describe, expect, it } from 'vitest';
import { UNSENT_GRACE_MS } from '#adapters/aws/dynamo-page-store.ts';
import {
  advanceClock,
  byPatient,
  health,
  pageLines,
  postAll,
  replayPages,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { startFaultProxy } from '#test/support/fault-proxy.ts';
import { recentFeed } from '#test/support/feed.ts';
import { failureRun } from '#test/support/aws-failures.ts';

const run = failureRun();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('failures of the deployed shape on an emulator', () => {
  it('delays pages through an SNS outage, losing and repeating none', async () => {
    const feed = recentFeed(200, 20);
    const expected = replayPages(feed);
    const proxy = await startFaultProxy(run.emulator.endpoint);
    const prefix = runPrefix('outage');
    // The escalate tick every 5 s: pages stored while SNS was down go out with it. On a test clock, so that the wait
    // for a deferred send's grace (below) is a move of the clock, not 30 s of the test's time.
    const server = await spawnAwsServe(proxy.url, prefix, ['--schedule-interval', '5', '--config', run.config], {
      CRS_TEST_CLOCK: '1',
    });
    try {
      const half = feed.length / 2;
      await postAll(server.url, feed.slice(0, half));
      const before = await settle(server, replayPages(feed.slice(0, half)).length);

      proxy.down.add('sns');
      await postAll(server.url, feed.slice(half));
      // Every message of the second half graded and the pager refused by SNS: nothing got through meanwhile.
      // (Not idle: the notifier retries the records whose publish failed until SNS is back.)
      let during = await health(server);
      for (
        const end = Date.now() + 60_000;
        during.grade.succeeded < feed.length || !proxy.refused.get('sns');
        during = await health(server)
      ) {
        if (Date.now() > end)
          throw new Error(`the second half was not graded against a refusing SNS: ${JSON.stringify(during)}`);
        await sleep(100);
      }
      expect(during.pages.printed).toBe(before.pages.printed); // nothing got through SNS
      proxy.down.delete('sns');
      // A page whose send SNS refused is left to the pager that stored it for UNSENT_GRACE_MS (so that no tick sends
      // it twice meanwhile), then any tick sends it: the clock moves past that grace, and the ticks go on every 5 s.
      await advanceClock(server, UNSENT_GRACE_MS);

      const after = await settle(server, expected.length);
      expect(after.pages.printed).toBe(expected.length);
      expect(after.notifyFailures).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await proxy.close();
      await teardown(run.emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines);
    expect(new Set(served.map((p) => p.notificationId)).size).toBe(served.length);
    expect(byPatient(served)).toEqual(byPatient(expected));
  }, 240_000);
});
