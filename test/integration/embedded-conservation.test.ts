// Page conservation on the embedded backend (issue 10 item 7), with the real `crs serve` process killed by SIGKILL
// twice while devices stream to it: duplicates (at once and long after the recent window), reused messageIds,
// hostile id characters (400), and a webhook receiver that refuses some records (422: parked, then retried with
// `crs outbox retry`) and goes down for a while (503, then connection refused: the lane keeps its order and backs
// off). Every grade change `crs replay` computes for the accepted messages reaches each of its teams exactly once
// (by id), and nothing behind a refused record waits for it.
import { createHash } from 'node:crypto';
import { until } from '#test/support/until.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '#domain/config.ts';
import {
  CONSERVATION_CONFIG,
  checkConservation,
  conservationStreams,
  expectedChanges,
  sendStreams,
  type Received,
  type Send,
} from '#test/support/conservation.ts';
import { health, post, spawnServe, stop, type ServeProcess } from './embedded-support.ts';
import { crsAsync } from '#test/support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-conservation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The receiver refuses these records until the operator fixes it: about one in eight, chosen by id. */
const refusedId = (id: string) => createHash('sha256').update(id).digest()[0]! < 32;

interface Webhook {
  url: string;
  /** Every request answered 2xx: the event type and its body. */
  received: { event: string; body: Record<string, any> }[];
  refused: Set<string>;
  mode: 'up' | '503' | 'refusing-connections';
  refusing: boolean;
  close(): Promise<void>;
}

async function startWebhook(): Promise<Webhook> {
  const hook: Partial<Webhook> & { received: Webhook['received']; refused: Set<string> } = {
    received: [],
    refused: new Set(),
    mode: 'up',
    refusing: true,
  };
  let port = 0;
  let server: Server;
  const listen = async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const id = String(req.headers['x-crs-event-id']);
        if (hook.mode === '503') return void res.writeHead(503).end();
        if (hook.refusing && refusedId(id)) {
          hook.refused.add(id);
          return void res.writeHead(422).end();
        }
        hook.received.push({ event: String(req.headers['x-crs-event']), body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  };
  const close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  await listen();
  return Object.assign(hook, {
    url: `http://127.0.0.1:${port}/pages`,
    close,
    /** Down: nothing listens on the port (connection refused) until up() . */
    down: close,
    up: listen,
  }) as Webhook & { down(): Promise<void>; up(): Promise<void> };
}

const crs = (args: string[]) => crsAsync(args, {});

/** Until everything accepted is graded and every lane has delivered all it can (parked records aside). */
async function drained(server: ServeProcess, timeoutMs = 60_000): Promise<void> {
  let h: { inbox: number; lanes: { sink: string; backlog: number }[] } | undefined;
  await until(
    async () => {
      h = (await health(server)) as unknown as NonNullable<typeof h>;
      return h.inbox === 0 && h.lanes.every((l) => l.backlog === 0);
    },
    () => `drained: ${JSON.stringify(h)}`,
    timeoutMs,
  );
}

describe('page conservation, crs serve', () => {
  it('pages every grade change replay computes to each of its teams exactly once, through SIGKILLs, hostile ids and a failing webhook', async () => {
    const resolved = resolveConfig(CONSERVATION_CONFIG);
    if (!resolved.ok) throw new Error(resolved.errors.join('; '));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(CONSERVATION_CONFIG));
    const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000;
    const streams = conservationStreams({ seed: 7, start, copies: 3, window: CONSERVATION_CONFIG.dedupeWindow });
    const sends = [...streams.values()].flat();
    const kinds = (k: Send['kind']) => sends.filter((s) => s.kind === k).length;
    expect(kinds('reused-id')).toBeGreaterThan(3);
    expect(kinds('late-duplicate')).toBeGreaterThan(3);
    expect(kinds('hostile')).toBeGreaterThan(3);
    const expected = expectedChanges(streams, resolved.config);
    expect(expected.some((c) => c.patientId === 'P-REPRO' && c.teams.includes('radiology'))).toBe(true); // ICANS 0 -> 2

    const hook = (await startWebhook()) as Webhook & { down(): Promise<void>; up(): Promise<void> };
    const args = ['--webhook', hook.url, '--config', configFile];
    const env = { CRS_TEST_WEBHOOK_RETRY_MS: '50,400' };
    const devices = [...streams.values()].map((s) => ({ sends: s, next: 0 }));
    let sent = 0;
    try {
      // Two runs killed mid-stream; the webhook answers 503 during the first, and refuses connections in the second.
      for (const [killAt, outage] of [
        [0.3, '503'],
        [0.65, 'refusing-connections'],
      ] as const) {
        const server = await spawnServe(dir, args, env);
        let killed = false;
        let outageOn = false;
        await sendStreams(post, server.url, devices, () => {
          sent++;
          if (!outageOn && sent >= sends.length * (killAt - 0.15)) {
            outageOn = true;
            if (outage === '503') hook.mode = '503';
            else void hook.down();
          }
          if (!killed && sent >= sends.length * killAt) {
            killed = true;
            server.child.kill('SIGKILL');
          }
        });
        await server.exited;
        expect(server.child.signalCode).toBe('SIGKILL');
        if (outage === '503') hook.mode = 'up';
        else await hook.up();
      }
      const last = await spawnServe(dir, args, env);
      try {
        await sendStreams(post, last.url, devices, () => undefined);
        expect(devices.every((d) => d.next === d.sends.length)).toBe(true);
        await drained(last);

        // Nothing waits behind a refused record: all that is not parked is delivered, before anyone retries.
        const listed = await crs(['outbox', 'list', '--json', '--data', dir]);
        const parked = (JSON.parse(listed.stdout) as { parked: { id: string; lane: string; reason: string }[] }).parked;
        expect(parked.length).toBeGreaterThan(0);
        expect(
          parked.every(
            (p) => p.lane === 'webhook' && p.reason === 'webhook answered HTTP 422' && hook.refused.has(p.id),
          ),
        ).toBe(true);
        const parkedIds = new Set(parked.map((p) => p.id));
        const received = () =>
          hook.received
            .filter((r) => r.event === 'page' && !r.body.technical)
            .map(
              (r): Received => ({
                notificationId: r.body.notificationId,
                team: r.body.team,
                pageId: r.body.pageId,
                sendId: r.body.sendId,
                level: r.body.level,
                round: r.body.round,
              }),
            );
        const before = checkConservation(expected, received());
        expect(before.twice).toEqual([]);
        expect(before.unexpected).toEqual([]);
        const pageOfParked = new Set(parked.map((p) => p.id.replace(/#\d+$/, '')));
        const parkedNotifications = new Set(parked.map((p) => p.id));
        for (const m of before.missing) {
          const [notificationId, team] = m.split(' -> ');
          expect(
            pageOfParked.has(`${notificationId}|${team}`) || parkedNotifications.has(notificationId!),
            `${m} is missing and not parked`,
          ).toBe(true);
        }

        // The operator fixes the receiver and sends the parked records again.
        hook.refusing = false;
        const retry = await crs(['outbox', 'retry', '--all', '--data', dir]);
        expect(retry.status, retry.stderr).toBe(0);
        expect(retry.stdout).toContain(`${parkedIds.size} parked record(s) put back in their lanes`);
        await drained(last);
      } finally {
        expect(await stop(last)).toBe(0);
      }
    } finally {
      await hook.close().catch(() => undefined);
    }

    const result = checkConservation(
      expected,
      hook.received.filter((r) => r.event === 'page' && !r.body.technical).map((r) => r.body) as unknown as Received[],
    );
    expect(result).toEqual({ missing: [], twice: [], unexpected: [] });
    // Each grade change itself, too: every one replay computes, by id, and no other.
    const changes = new Set(
      hook.received.filter((r) => r.event === 'notification').map((r) => r.body.notificationId as string),
    );
    expect([...changes].sort()).toEqual(expected.map((c) => c.notificationId).sort());
    expect(expected.length).toBeGreaterThan(20);
  }, 180_000);
});
