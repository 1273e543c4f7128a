// 50 patients' devices posting at once to the real `crs serve --backend aws` on an emulator: every patient's
// pages come out in that patient's order, each once, the same as `crs replay` gives for the patient; and a
// gateway resending a whole batch (duplicates) pages nobody again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import {
  byPatient,
  freshFeedConfig,
  pageLines,
  post,
  replayPages,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { recentFeed } from '#test/support/feed.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

// The feed ends two hours ago: with the default 15 minutes every one of the 50 monitors would be "quiet" and
// raise a stale-feed alert, which is not what this test is about (aws-paging.test.ts is).
const config = freshFeedConfig();

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.stop();
  config.remove();
});

describe('many patients at once through the deployed shape on an emulator', () => {
  it("keeps every patient's pages in order, once each, and duplicates page nobody", async () => {
    // 50 patients, four messages each, 20 requests at a time: enough to interleave on the queue (100 patients cost
    // twice the CPU, 32 s of it, and interleaved no differently).
    const feed = recentFeed(200, 50);
    const expected = replayPages(feed);
    expect(expected.length).toBeGreaterThan(15);

    const devices = new Map<string, DeviceMessage[]>();
    for (const m of feed) devices.set(m.patientId, [...(devices.get(m.patientId) ?? []), m]);
    expect(devices.size).toBe(50);

    const prefix = runPrefix('ord');
    const server = await spawnAwsServe(emulator.endpoint, prefix, ['--config', config.file]);
    try {
      // Round after round, every patient's next message, 20 requests at a time: the patients interleave on the
      // queue while each patient's messages keep their order (as one device per patient sends them).
      const rounds = Math.max(...[...devices.values()].map((d) => d.length));
      for (let r = 0; r < rounds; r++) {
        const next = [...devices.values()].flatMap((d) => (d[r] ? [d[r]!] : []));
        const statuses: number[] = [];
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            for (let m = next.shift(); m; m = next.shift()) statuses.push((await post(server.url, m)).status);
          }),
        );
        expect(statuses.filter((s) => s !== 202)).toEqual([]);
      }
      const h = await settle(server, expected.length);
      expect(h.pages.printed).toBe(expected.length);

      // A gateway resends its last batches (it never saw the answers): accepted, nobody paged again.
      const resent = feed.slice(-100);
      for (let i = 0; i < resent.length; i += 100)
        expect((await post(server.url, resent.slice(i, i + 100))).status).toBe(202);
      const after = await settle(server, expected.length);
      expect(after.pages.printed).toBe(expected.length);
      expect(after.pages.misdelivered).toBe(0);
      expect(after.deadLetters).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines);
    const ids = served.map((p) => p.notificationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(byPatient(served)).toEqual(byPatient(expected));
  }, 240_000);
});
