// Page conservation on the deployed shape (issue 10 item 7), through the real `crs serve --backend aws` on moto,
// its host killed by SIGKILL mid-stream and started again: duplicates (at once and past the recent window),
// reused messageIds (issue 10's reproduction among them), hostile id characters (400 from the ingest function), and
// SNS that refuses some pages (400 InvalidParameter: the pager parks them after 3 tries, `crs outbox retry
// --backend aws` sends them again) and is down for a while (503: the pages are stored and go out in order once it is
// back, with the patient's next grade change or the escalate tick). Every grade change
// `crs replay` computes for the accepted messages reaches each of its teams' queues exactly once (by id), and
// nothing behind a refused page waits for it. Also: the host answers no route 404 while it starts.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '#domain/config.ts';
import {
  CONSERVATION_CONFIG,
  checkConservation,
  conservationStreams,
  expectedChanges,
  sendStreams,
  type Received,
} from '#test/support/conservation.ts';
import { UNSENT_GRACE_MS } from '#adapters/aws/dynamo-page-store.ts';
import {
  advanceClock,
  INGEST_TOKEN,
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teamPages,
  teardown,
} from '#test/support/aws-serve.ts';
import { startFaultProxy, type FaultProxy } from '#test/support/fault-proxy.ts';
import { freePort, startEmulator, type Emulator } from '#test/support/moto.ts';
import { crsAsync } from '#test/support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-conservation-'));
const configFile = join(dir, 'config.json');
const outputsFile = join(dir, 'outputs.json');
writeFileSync(configFile, JSON.stringify(CONSERVATION_CONFIG));
const region = process.env.AWS_REGION ?? 'us-east-1';

let emulator: Emulator;
let proxy: FaultProxy;
beforeAll(async () => {
  emulator = await startEmulator();
  proxy = await startFaultProxy(emulator.endpoint);
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** SNS refuses these pages (by pageId) until the operator fixes the cause: about one in eight. */
const refusedPage = (pageId: string) => createHash('sha256').update(pageId).digest()[0]! < 32;

function pageIdOf(body: URLSearchParams): string | undefined {
  if (body.get('Action') !== 'Publish') return undefined;
  for (const [k, v] of body) {
    const m = k.match(/^MessageAttributes\.entry\.(\d+)\.Name$/);
    if (m && v === 'pageId') return body.get(`MessageAttributes.entry.${m[1]}.Value.StringValue`) ?? undefined;
  }
  return undefined;
}

const crs = (args: string[]) =>
  crsAsync(args, {
    AWS_ENDPOINT_URL: emulator.endpoint,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });

const received = (lines: string[]): Received[] =>
  teamPages(lines)
    .filter((p) => !p.technical)
    .map((p) => ({
      notificationId: p.notificationId,
      team: p.team,
      pageId: p.pageId,
      sendId: p.sendId,
      level: p.level,
      round: p.round,
    }));

describe('page conservation, crs serve --backend aws', () => {
  // Not retried. Its failures now and then (pages missing and not parked, grade changes under other sequence
  // numbers) were moto's: a cancelled transaction's rollback lost other transactions' commits, the stream shard that
  // rollback swaps made the host look idle while records waited, and a FIFO batch that timed out in flight came back
  // last message first. The tests start moto as test/support/moto-server.py, which puts the first and the last
  // right, and the stream source reads again on a fresh iterator. docs/emulator.md has the evidence.
  it('pages every grade change replay computes to each of its teams exactly once, through a killed host, hostile ids and SNS refusing and down', {
    timeout: 300_000,
  }, async () => {
    const resolved = resolveConfig(CONSERVATION_CONFIG);
    if (!resolved.ok) throw new Error(resolved.errors.join('; '));
    const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000;
    const streams = conservationStreams({ seed: 23, start, copies: 1, window: CONSERVATION_CONFIG.dedupeWindow });
    const sends = [...streams.values()].flat();
    expect(sends.filter((s) => s.kind === 'reused-id').length).toBeGreaterThan(1);
    expect(sends.filter((s) => s.kind === 'hostile').length).toBeGreaterThan(1);
    const expected = expectedChanges(streams, resolved.config);
    const devices = [...streams.values()].map((s) => ({ sends: s, next: 0 }));
    const prefix = runPrefix('cons');
    const args = [
      '--config',
      configFile,
      '--outputs',
      outputsFile,
      '--page-lines',
      '--visibility-timeout',
      '2',
      '--schedule-interval',
      '2',
    ];
    proxy.refuse = (service, body) => {
      const pageId = service === 'sns' ? pageIdOf(body) : undefined;
      return pageId && refusedPage(pageId) ? 'InvalidParameter' : undefined;
    };

    const lines: string[] = [];
    // Ready before traffic: from the moment the port opens, a device polling it gets 503 (retry), never 404. The port
    // is chosen here, to be polled before the host says where it listens (once ready): another process of the run can
    // bind it first (a moto, a server on port 0). Then the host cannot, and says so: the start is made again on
    // another port, what was polled (the other process's answers, if any) thrown away.
    const startPolled = async () => {
      const port = await freePort();
      const first = spawnAwsServe(proxy.url, prefix, [...args, '--port', String(port)]);
      let starting = true;
      void first.finally(() => (starting = false)).catch(() => undefined);
      const early: number[] = [];
      const retryAfter: (string | null)[] = [];
      while (starting) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v1/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
            body: '{}',
          });
          early.push(res.status);
          if (res.status === 503) retryAfter.push(res.headers.get('retry-after'));
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      return first.then(
        (server) => ({ server, early, retryAfter }),
        (err: Error) => {
          if (err.message.includes('the port is in use')) return undefined;
          throw err;
        },
      );
    };
    let started: Awaited<ReturnType<typeof startPolled>>;
    for (let tries = 1; !(started = await startPolled()); tries++)
      if (tries === 3) throw new Error('three ports found free were each taken before the host could bind them');
    const { server: doomed, early, retryAfter } = started;
    expect(retryAfter.filter((r) => r !== '1')).toEqual([]);
    expect(early.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(early.filter((s) => s !== 503 && s !== 400)).toEqual([]); // 404 before (issue 10); 400 for "{}" once ready
    let sent = 0;
    let killed = false;
    await sendStreams(post, doomed.url, devices, () => {
      sent++;
      if (sent === Math.floor(sends.length * 0.2)) proxy.down.add('sns');
      if (sent === Math.floor(sends.length * 0.35)) proxy.down.delete('sns');
      if (!killed && sent >= sends.length * 0.5) {
        killed = true;
        doomed.child.kill('SIGKILL');
      }
    });
    await doomed.exited;
    expect(doomed.child.signalCode).toBe('SIGKILL');
    lines.push(...doomed.lines);

    // On a test clock: the sends the killed host had begun are left to it for UNSENT_GRACE_MS (so that no tick sends
    // a page twice meanwhile), then the next tick makes them; the clock moves past that grace instead of the test
    // waiting for it.
    const server = await spawnAwsServe(proxy.url, prefix, args, { CRS_TEST_CLOCK: '1' });
    try {
      await sendStreams(post, server.url, devices, () => undefined);
      expect(devices.every((d) => d.next === d.sends.length)).toBe(true);
      await advanceClock(server, UNSENT_GRACE_MS);
      await settle(server, 0, 180_000, { afterTick: true });

      // Nothing waits behind a refused page: everything missing is parked.
      const listed = await crs([
        'outbox',
        'list',
        '--json',
        '--backend',
        'aws',
        '--outputs',
        outputsFile,
        '--config',
        configFile,
      ]);
      expect(listed.status, listed.stderr).toBe(0);
      const parked = (JSON.parse(listed.stdout) as { parked: { id: string; reason: string; attempts: number }[] })
        .parked;
      expect(parked.length).toBeGreaterThan(0);
      expect(
        parked.every((p) => p.reason === 'SNS refused the page (InvalidParameterException)' && p.attempts === 3),
      ).toBe(true);
      const parkedPages = new Set(parked.map((p) => p.id.replace(/#\d+#\d+$/, '')));
      const before = checkConservation(expected, received([...lines, ...server.lines]));
      expect(before.twice).toEqual([]);
      expect(before.unexpected).toEqual([]);
      for (const m of before.missing) {
        const [notificationId, team] = m.split(' -> ');
        expect(parkedPages.has(`${notificationId}|${team}`), `${m} is missing and not parked`).toBe(true);
      }

      // The operator fixes the cause and sends them again.
      proxy.refuse = undefined;
      const retry = await crs([
        'outbox',
        'retry',
        '--all',
        '--backend',
        'aws',
        '--outputs',
        outputsFile,
        '--config',
        configFile,
      ]);
      expect(retry.status, retry.stderr).toBe(0);
      expect(retry.stdout).toContain(`${parked.length} parked send(s) sent again`);
      await settle(server, 0, 60_000, { afterTick: true });
      lines.push(...server.lines);
    } finally {
      proxy.refuse = undefined;
      proxy.down.clear();
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    expect(checkConservation(expected, received(lines))).toEqual({ missing: [], twice: [], unexpected: [] });
    expect(expected.some((c) => c.patientId === 'P-REPRO')).toBe(true);
  });
});
