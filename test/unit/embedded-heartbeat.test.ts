// The dead man's switch of `crs serve --heartbeat-url` (docs/safety.md H15), on the server in process with a receiver
// on 127.0.0.1 that counts the beats: beats while healthy, none while the pager's tick is stalled (a delivery alert),
// beats again once it ticks; a monitor that hangs, refuses or fails is said once and holds nothing up.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { resolveConfig } from '#domain/config.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { Heartbeat, type HeartbeatOptions } from '#hosts/embedded/heartbeat.ts';
import { spawnServe, stop } from '#test/integration/embedded-support.ts';
import { enrol } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'heartbeat-test-token-of-at-least-32-chars';
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES, deliveryAlertMinutes: 1 } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
const EVERY_MS = 50;

let dir: string;
let server: EmbeddedServer | undefined;
let logs: string[];
let monitor: Server;
/** The beats the monitor received: method, path and body. */
let beats: { method: string; path: string; body: string }[];
/** What the monitor does with a beat: answers with a status, or never answers. */
let answer: (res: ServerResponse) => void;
const hanging: ServerResponse[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-heartbeat-'));
  logs = [];
  beats = [];
  answer = (res) => res.writeHead(200).end('OK');
  monitor = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      beats.push({ method: req.method!, path: req.url!, body });
      answer(res);
    });
  });
  await new Promise<void>((r) => monitor.listen(0, '127.0.0.1', r));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await server?.close();
  server = undefined;
  for (const res of hanging.splice(0)) res.destroy();
  monitor.closeAllConnections();
  await new Promise((r) => monitor.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const monitorUrl = () => `http://127.0.0.1:${(monitor.address() as AddressInfo).port}/ping/secret-uuid`;

async function start(url = monitorUrl(), now?: () => number, timeoutMs?: number): Promise<EmbeddedServer> {
  server = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: new PassThrough(),
    log: (l) => logs.push(l),
    ...(now ? { now } : {}),
    heartbeat: { url, everyMs: EVERY_MS, ...(timeoutMs ? { timeoutMs } : {}) },
  });
  return server;
}

const said = (what: RegExp) => logs.filter((l) => what.test(l));

describe('crs serve --heartbeat-url', () => {
  it('beats (GET, nothing sent) while healthy, stops while the pager tick is stalled, and beats again after', async () => {
    // A clock the test moves: the stalled tick is older than deliveryAlertMinutes at once, without waiting a minute.
    let skew = 0;
    // A beat may take its time here (a loaded machine: half of 50 ms timed one out), never failing one.
    const s = await start(monitorUrl(), () => Date.now() + skew, 10_000);
    await until(() => beats.length >= 3, 'three beats');
    expect(beats[0]).toEqual({ method: 'GET', path: '/ping/secret-uuid', body: '' });
    expect(s.heartbeat!.stats).toMatchObject({ held: 0, failed: 0 });

    // The pager's tick hangs (as a loop stuck on the database would), and a minute and a second pass.
    let release: (() => void) | undefined;
    vi.spyOn(s.paging, 'tick').mockImplementation(() => new Promise<void>((r) => (release = r)));
    skew += CONFIG.paging.deliveryAlertMinutes * 60_000 + 1000;
    await until(() => s.heartbeat!.stats.held >= 1, 'a beat held back');
    const sent = s.heartbeat!.stats.sent;
    // Five intervals on, unhealthy all along: no beat asked, and every one asked before has arrived, no more.
    await until(() => s.heartbeat!.stats.held >= 6, 'six beats held back');
    expect(s.heartbeat!.stats.sent).toBe(sent);
    await until(() => beats.length === sent, 'the beats sent before the stall');
    expect(said(/^heartbeat: held back/)).toEqual([
      expect.stringContaining('held back while the server is unhealthy (pager)'),
    ]);
    // The log names the monitor's origin, never its path (a push URL's path is its secret).
    expect(logs.join('\n')).not.toContain('secret-uuid');

    // The pager ticks again: the alert clears and the beats resume.
    vi.restoreAllMocks();
    release?.();
    await until(() => beats.length >= sent + 2, 'beats again');
    expect(said(/^heartbeat: held back/)).toHaveLength(1);
    expect(said(/^heartbeat: the server is healthy again/)).toHaveLength(1);
  });

  it('a monitor that never answers is timed out, said once, and holds up neither grading nor the stop', async () => {
    answer = (res) => void hanging.push(res);
    const s = await start(monitorUrl(), undefined, 30);
    await until(() => s.heartbeat!.stats.failed >= 3, 'three beats timed out');
    expect(said(/^heartbeat: /)).toEqual([
      'heartbeat: the monitor at http://127.0.0.1:' +
        (monitor.address() as AddressInfo).port +
        ' did not answer within 30 ms; it will page when it misses beats (said once, until one gets through)',
    ]);
    // Grading goes on meanwhile.
    const posted = await fetch(`${s.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(enrol('HB1', 0)),
    });
    expect(posted.status).toBe(202);
    await until(() => s.worker.stats.applied >= 1, 'the message graded');
    // The monitor answers again: said once.
    answer = (res) => res.writeHead(200).end('OK');
    await until(() => said(/answers again/).length === 1, 'the monitor answering again');
    // A beat in flight to a monitor that hangs does not hold up the stop.
    answer = (res) => void hanging.push(res);
    await until(() => hanging.length > 0, 'a beat hanging');
    server = undefined;
    await s.close();
  });

  it('a monitor that refuses the connection, or answers 500, is said once per outage, never per beat', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const s = await start(`http://127.0.0.1:${port}/ping`, undefined, 10_000);
    await until(() => s.heartbeat!.stats.failed >= 5, 'five beats refused');
    expect(said(/^heartbeat: /)).toEqual([
      `heartbeat: the monitor at http://127.0.0.1:${port} could not be reached (ECONNREFUSED); it will page when it misses beats (said once, until one gets through)`,
    ]);
    await s.close();

    answer = (res) => res.writeHead(500).end();
    logs = [];
    const t = await start(monitorUrl(), undefined, 10_000);
    await until(() => t.heartbeat!.stats.failed >= 5, 'five beats answered 500');
    expect(said(/^heartbeat: /)).toEqual([expect.stringContaining('answered HTTP 500; it will page')]);
  });

  // From CRS_HEARTBEAT_URL (2026-12-06), the push URL (its path is its token) is off the command line every user of
  // the machine sees (ps, /proc/PID/cmdline): an owner-only EnvironmentFile holds it.
  it.each([
    ['--heartbeat-url URL', true],
    ['CRS_HEARTBEAT_URL alone', false],
  ])('crs serve, the URL by %s: beats at start, and says so naming the origin only', async (_, byFlag) => {
    const url = monitorUrl();
    const s = await spawnServe(
      join(dir, 'cli'),
      [...(byFlag ? ['--heartbeat-url', url] : []), '--heartbeat-seconds', '10'],
      byFlag ? {} : { CRS_HEARTBEAT_URL: url },
    );
    try {
      await until(() => beats.length >= 1, 'the first beat');
      expect(beats[0]).toEqual({ method: 'GET', path: '/ping/secret-uuid', body: '' });
      const port = (monitor.address() as AddressInfo).port;
      await until(() =>
        s.stderr().includes(`crs serve: heartbeat: GET http://127.0.0.1:${port} every 10 s while healthy`),
      );
      expect(s.stderr()).not.toContain('secret-uuid');
    } finally {
      await stop(s);
    }
  });

  it('--heartbeat-url wins over CRS_HEARTBEAT_URL, said once, neither URL shown', async () => {
    const flag = monitorUrl().replace('secret-uuid', 'flag-uuid');
    const s = await spawnServe(join(dir, 'cli'), ['--heartbeat-url', flag, '--heartbeat-seconds', '10'], {
      CRS_HEARTBEAT_URL: monitorUrl(),
    });
    try {
      await until(() => beats.length >= 1, 'the first beat');
      expect(beats.map((b) => b.path)).toEqual(['/ping/flag-uuid']);
      expect(
        s
          .stderr()
          .split('\n')
          .filter((l) => l.includes('both given')),
      ).toEqual(['crs serve: --heartbeat-url and CRS_HEARTBEAT_URL both given: --heartbeat-url is used']);
      expect(s.stderr()).not.toMatch(/secret-uuid|flag-uuid/);
    } finally {
      await stop(s);
    }
  });

  it('crs serve --heartbeat-url URL alone beats every 60 s (pinned by a mutation run)', async () => {
    const s = await spawnServe(join(dir, 'cli'), ['--heartbeat-url', monitorUrl()]);
    try {
      const port = (monitor.address() as AddressInfo).port;
      await until(() =>
        s.stderr().includes(`crs serve: heartbeat: GET http://127.0.0.1:${port} every 60 s while healthy`),
      );
    } finally {
      await stop(s);
    }
  });
});

describe('the heartbeat itself: pinned by a mutation run', () => {
  let beating: Heartbeat | undefined;
  afterEach(async () => {
    await beating?.stop();
    beating = undefined;
  });
  const heartbeat = (o: Partial<HeartbeatOptions> & { everyMs: number }): Heartbeat => {
    beating = new Heartbeat({ url: monitorUrl(), unhealthy: () => [], log: (l) => logs.push(l), ...o });
    beating.start();
    return beating;
  };

  it('beats at once at start, not an interval later (the monitor hears of a restart)', async () => {
    heartbeat({ everyMs: 3_600_000 });
    await until(() => beats.length === 1, 'the first beat', 5_000);
  });

  it('a beat may take half the interval by default', async () => {
    answer = (res) => void hanging.push(res);
    heartbeat({ everyMs: 100 });
    await until(() => said(/did not answer/).length > 0, 'a beat timed out', 5_000);
    expect(said(/did not answer/)[0]).toContain('did not answer within 50 ms;');
  });

  it('a health that cannot be read is not healthy: held back and said, nothing sent', async () => {
    const hb = heartbeat({
      everyMs: 3_600_000,
      unhealthy: () => {
        throw new TypeError('no watch');
      },
    });
    expect(hb.stats).toEqual({ sent: 0, held: 1, failed: 0 });
    expect(logs).toEqual([
      expect.stringContaining('held back while the server is unhealthy (its health cannot be read (TypeError))'),
    ]);
  });

  it('never overlaps: no beat is sent while the last one is in flight', async () => {
    answer = (res) => void hanging.push(res);
    // Taken when the first beat times out: a next beat may go out as soon as it has.
    let atTimeout: { sent: number; received: number } | undefined;
    const hb: Heartbeat = heartbeat({
      everyMs: 10,
      timeoutMs: 200,
      log: (l) => {
        logs.push(l);
        atTimeout ??= { sent: hb.stats.sent, received: beats.length };
      },
    });
    await until(() => atTimeout, 'the first beat timed out', 5_000);
    expect(atTimeout).toEqual({ sent: 1, received: 1 });
  });

  it('stop lets a beat in flight go at once, and says nothing of it', async () => {
    answer = (res) => void hanging.push(res);
    const hb = heartbeat({ everyMs: 3_600_000, timeoutMs: 60_000 });
    await until(() => hanging.length === 1, 'a beat hanging', 5_000);
    const t0 = Date.now();
    await hb.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(hb.stats.failed).toBe(0);
    expect(logs).toEqual([]);
  });

  it('a second outage is said again, and a monitor answering again is said once per recovery', async () => {
    let ok = true;
    answer = (res) => res.writeHead(ok ? 200 : 500).end();
    const hb = heartbeat({ everyMs: 10, timeoutMs: 1_000 });
    const outage = async () => {
      ok = false;
      const failed = hb.stats.failed;
      await until(() => hb.stats.failed >= failed + 2, 'two beats failed', 5_000);
      ok = true;
      const sent = beats.length;
      await until(() => beats.length >= sent + 3, 'three beats after', 5_000);
    };
    await outage();
    await outage();
    expect(said(/answered HTTP 500/)).toHaveLength(2);
    expect(said(/answers again/)).toHaveLength(2);
  });
});
