// `crs serve --alert-webhook URL` (docs/safety.md H2, H15): each delivery-watch alert raised and cleared is POSTed to
// the operator's chat or paging tool, with a receiver on 127.0.0.1: an exhausted ladder's alert raised and, once
// acknowledged, cleared; signed with CRS_WEBHOOK_SECRET; a receiver down then up gets every event in order, said
// once; a queue bounded while it is down, the events dropped counted when it is back.
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { iso } from '#domain/time.ts';
import { AlertWebhook, type AlertWebhookOptions } from '#hosts/embedded/alert-webhook.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { spawnServe, stop } from '#test/integration/embedded-support.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { boardApi, postMessages, startPagingServer } from '#test/support/in-process-serve.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'alert-webhook-test-token-of-32-chars!';
const SECRET = 'alert-webhook-secret';
const MIN = 60_000;

let dir: string;
let server: EmbeddedServer | undefined;
let receiver: Server;
/** What the receiver was sent: its body parsed, and its headers. */
let got: { body: Record<string, unknown>; raw: string; headers: IncomingHttpHeaders }[];
let tries: number;
let answer: (res: ServerResponse) => void;
let logs: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-alert-webhook-'));
  got = [];
  tries = 0;
  logs = [];
  answer = (res) => res.writeHead(200).end('ok');
  receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      tries++;
      answer(res);
      if (res.headersSent && res.statusCode >= 200 && res.statusCode < 300)
        got.push({ body: JSON.parse(raw) as Record<string, unknown>, raw, headers: req.headers });
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const receiverUrl = () => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/T000/secret-path`;
const events = () => got.map((g) => `${g.body.event as string} ${g.body.key as string}`);

describe('crs serve --alert-webhook, on a ladder nobody answered', () => {
  it('POSTs the raise when the ladder runs out and the clear when it is acknowledged, signed, ids only', async () => {
    let clock = T0 + 30 * MIN;
    const lines: string[] = [];
    const startServer = () =>
      startPagingServer({
        dataDir: dir,
        paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES, deliveryAlertMinutes: 60 },
        lines,
        now: () => clock,
        localToken: TOKEN,
        log: (l) => logs.push(l),
        alertWebhook: { url: receiverUrl(), secret: SECRET, server: 'https://crs.ward.example' },
      });
    let s = await startServer();
    server = s;
    await postMessages(s, TOKEN, [enrol('P1', 0), msg('P1', 10, { vitals: { temperatureC: 39.1, systolicBP: 118 } })]);
    const page = await until(
      () => lines.map((l) => JSON.parse(l) as PageEvent).find((e) => e.type === 'page'),
      'grade 1 paged',
    );
    // CRS 1: hematology, 15 minutes a level, 3 levels x 2 loops.
    for (let i = 0; i < 6; i++) {
      clock += 15 * MIN;
      await s.paging.tick();
    }
    const key = `exhausted:${page.pageId}`;
    await until(() => got.length >= 1, 'the raise posted');
    // A standing alert is raised once, not at each look of the watch.
    await until(() => s.alertWebhook!.waiting() === 0, 'the raise taken');
    s.watch.check();
    s.watch.check();
    expect(s.alertWebhook!.waiting()).toBe(0);
    expect(got[0]!.body).toEqual({
      event: 'raised',
      key,
      text: expect.stringContaining(`ladder exhausted, page ${page.pageId} (patient P1, CRS grade 1, team hematology)`),
      since: iso(T0 + 30 * MIN + 90 * MIN),
      at: iso(clock),
      server: 'https://crs.ward.example',
    });
    expect(got[0]!.headers['content-type']).toBe('application/json');
    expect(got[0]!.headers['x-crs-event']).toBe('alert');
    expect(got[0]!.headers['x-crs-event-id']).toBe(`raised|${key}|${got[0]!.body.since as string}`);
    expect(got[0]!.headers['x-crs-signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(got[0]!.raw).digest('hex')}`,
    );

    // Kept in memory only: a restart raises again what still stands, with its since and event id (the receiver
    // may drop the repeat).
    await s.close();
    clock += 5 * MIN; // the since is when the ladder ran out, not when the server started again
    s = await startServer();
    server = s;
    await until(() => got.length >= 2, 'the raise posted again after the restart');
    expect(got[1]!.body).toMatchObject({ event: 'raised', key, since: got[0]!.body.since });
    expect(got[1]!.headers['x-crs-event-id']).toBe(got[0]!.headers['x-crs-event-id']);
    got.splice(1);

    const ack = await boardApi(s)(`/api/pages/${encodeURIComponent(page.pageId)}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Dr Osei' }),
    });
    expect(ack.status).toBe(200);
    await until(() => got.length >= 2, 'the clear posted');
    expect(events()).toEqual([`raised ${key}`, `cleared ${key}`]);
    expect(got[1]!.body).toMatchObject({ event: 'cleared', key, since: got[0]!.body.since });
    // The acknowledger's name is no id: it is never sent, and the URL's path (a secret) is never logged.
    expect(got.map((g) => g.raw).join('\n')).not.toContain('Osei');
    expect(logs.join('\n')).not.toContain('secret-path');
  });
});

describe('the alert webhook itself', () => {
  const alert = (key: string) => ({ key, since: '2026-12-06T10:00:00.000Z', text: `${key} is stuck: its numbers` });
  const start = (maxQueued?: number) =>
    new AlertWebhook({
      url: receiverUrl(),
      log: (l) => logs.push(l),
      now: () => Date.parse('2026-12-06T10:05:00.000Z'),
      retry: { initialMs: 5, maxMs: 20 },
      ...(maxQueued ? { maxQueued } : {}),
    });

  it('a receiver down then up gets every event in order, a raise before its clear; said once, not per retry', async () => {
    answer = (res) => res.writeHead(503).end();
    const hook = start();
    try {
      hook.tell('raised', alert('lane:webhook'));
      hook.tell('raised', alert('pager'));
      hook.tell('cleared', alert('lane:webhook'));
      await until(() => tries >= 5, 'five tries refused');
      expect(got).toEqual([]);
      expect(logs.filter((l) => l.startsWith('alert webhook:'))).toEqual([
        `alert webhook: the receiver at http://127.0.0.1:${(receiver.address() as AddressInfo).port} answered HTTP 503; its alerts wait, in order, and are sent again (said once, until one gets through)`,
      ]);
      answer = (res) => res.writeHead(204).end();
      await until(() => got.length >= 3, 'the three events');
      expect(events()).toEqual(['raised lane:webhook', 'raised pager', 'cleared lane:webhook']);
      await until(() => logs.some((l) => l.includes('answers again')), 'said it answers again');
      expect(logs.filter((l) => l.startsWith('alert webhook:'))).toHaveLength(2);
      expect(logs.join('\n')).not.toContain('secret-path');
    } finally {
      await hook.stop();
    }
  });

  it('keeps the last events while the receiver is down, and says how many it dropped when it is back', async () => {
    answer = (res) => res.writeHead(500).end();
    const hook = start(3);
    try {
      for (let i = 1; i <= 5; i++) hook.tell('raised', alert(`lane:l${i}`));
      await until(() => tries >= 2, 'two tries refused');
      answer = (res) => res.writeHead(200).end();
      await until(() => got.length >= 3, 'the events kept');
      expect(events()).toEqual(['raised lane:l3', 'raised lane:l4', 'raised lane:l5']);
      await until(() => logs.some((l) => l.includes('answers again')), 'said it answers again');
      expect(logs.find((l) => l.includes('answers again'))).toContain(
        '2 older alert event(s) were dropped while it was down (the last 3 are kept)',
      );
    } finally {
      await hook.stop();
    }
  });

  it('an event the receiver refuses (422) is said and dropped, the next sent; a redirect is retried, not followed', async () => {
    let methods: string[] = [];
    answer = (res) => res.writeHead(422).end();
    const hook = start();
    try {
      hook.tell('raised', alert('pager'));
      await until(() => logs.some((l) => l.includes('refused')), 'the refusal said');
      expect(logs).toEqual([
        `alert webhook: the receiver at http://127.0.0.1:${(receiver.address() as AddressInfo).port} refused alert event raised pager (answered HTTP 422); dropped`,
      ]);
      answer = (res) => res.writeHead(302, { location: '/elsewhere' }).end();
      receiver.prependListener('request', (req) => void methods.push(`${req.method!} ${req.url!}`));
      methods = [];
      hook.tell('cleared', alert('pager'));
      await until(() => tries >= 4, 'the redirect retried');
      expect(new Set(methods)).toEqual(new Set(['POST /hooks/T000/secret-path']));
      expect(logs.at(-1)).toContain('answered HTTP 302; its alerts wait');
      answer = (res) => res.writeHead(200).end();
      await until(() => got.length >= 1, 'the clear sent');
      expect(events()).toEqual(['cleared pager']);
    } finally {
      await hook.stop();
    }
  });

  it('a receiver that never answers is timed out and holds up neither the one telling nor the stop', async () => {
    const hanging: ServerResponse[] = [];
    answer = (res) => void hanging.push(res);
    const hook = new AlertWebhook({
      url: receiverUrl(),
      log: (l) => logs.push(l),
      now: () => Date.now(),
      retry: { initialMs: 5, maxMs: 20 },
      timeoutMs: 30,
    });
    hook.tell('raised', alert('pager')); // returns at once
    await until(() => logs.some((l) => l.includes('did not answer within 30 ms')), 'the timeout said');
    await until(() => hanging.length >= 2, 'tried again');
    await hook.stop();
    for (const res of hanging) res.destroy();
  });
});

describe('the alert webhook itself (pinned by a mutation run)', () => {
  const alert = (key: string) => ({ key, since: '2026-12-06T10:00:00.000Z', text: `${key} is stuck: its numbers` });
  /** The waits the webhook asked of setTimeout between tries (its own calls only: fetch's are not counted). */
  const waitsAsked = () => {
    const waits: number[] = [];
    const real = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      if (new Error().stack?.includes('hosts/embedded/alert-webhook.ts')) waits.push(ms ?? 0);
      return real(fn, ms);
    }) as typeof setTimeout);
    return waits;
  };
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const hookWith = (o: Partial<AlertWebhookOptions> = {}) =>
    new AlertWebhook({ url: receiverUrl(), log: (l) => logs.push(l), now: () => Date.now(), ...o });

  it('waits between tries doubling from the first to the most, and from the first again once one got through', async () => {
    const waits = waitsAsked();
    answer = (res) => res.writeHead(503).end();
    const hook = hookWith({ retry: { initialMs: 3, maxMs: 20 } });
    try {
      hook.tell('raised', alert('pager'));
      hook.tell('cleared', alert('pager'));
      await until(() => tries >= 6, 'six tries refused');
      expect(waits.slice(0, 5)).toEqual([3, 6, 12, 20, 20]);
      // The waits asked before the raise got through (counted as it is answered: polling, the next would be in).
      let before: number | undefined;
      answer = (res) => {
        const first = before === undefined;
        before ??= waits.length;
        res.writeHead(first ? 204 : 503).end();
      };
      await until(() => got.length === 1 && before !== undefined, 'the raise sent');
      await until(() => waits.length >= before! + 2, 'the clear refused twice');
      expect(waits.slice(before, before! + 2)).toEqual([3, 6]);
    } finally {
      await hook.stop();
    }
  });

  it('an event in flight when the full queue drops it is not taken off again: the next one is still sent', async () => {
    const held: ServerResponse[] = [];
    answer = (res) => void held.push(res);
    const hook = hookWith({ maxQueued: 2 });
    try {
      hook.tell('raised', alert('lane:l1'));
      await until(() => held.length === 1, 'the first event in flight');
      hook.tell('raised', alert('lane:l2'));
      hook.tell('raised', alert('lane:l3')); // three waiting with the one in flight: the oldest (in flight) is dropped
      answer = (res) => res.writeHead(200).end();
      held[0]!.writeHead(200).end();
      // The receiver counts an event when it answers; the queue lets it go when the answer is read, a moment later.
      await until(() => got.length >= 2 && hook.waiting() === 0, 'the two kept, taken');
      expect(events()).toEqual(['raised lane:l2', 'raised lane:l3']);
    } finally {
      await hook.stop();
    }
  });

  it('a stop while waiting to try again returns at once, not at the end of the wait (up to 60 s)', async () => {
    answer = (res) => res.writeHead(503).end();
    const hook = hookWith({ retry: { initialMs: 60_000, maxMs: 60_000 } });
    hook.tell('raised', alert('pager'));
    await until(() => logs.some((l) => l.includes('answered HTTP 503')), 'the first try refused');
    const stopped = hook.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await until(() => done, 'stopped', 2000);
    expect(logs.at(-1)).toContain('1 alert event(s) not sent');
  });
  it('counts the events dropped afresh for each outage: a second one without drops says none', async () => {
    answer = (res) => res.writeHead(500).end();
    const hook = hookWith({ retry: { initialMs: 3, maxMs: 3 }, maxQueued: 1 });
    try {
      hook.tell('raised', alert('lane:l1'));
      hook.tell('raised', alert('lane:l2'));
      await until(() => tries >= 1, 'a try refused');
      answer = (res) => res.writeHead(200).end();
      await until(() => got.length === 1 && hook.waiting() === 0, 'the one kept, taken');
      answer = (res) => res.writeHead(500).end();
      const before = tries;
      hook.tell('cleared', alert('lane:l2'));
      await until(() => tries >= before + 1, 'refused again');
      answer = (res) => res.writeHead(200).end();
      await until(() => got.length === 2, 'the clear sent');
      await until(() => logs.filter((l) => l.includes('answers again')).length === 2, 'both recoveries said');
      const again = logs.filter((l) => l.includes('answers again'));
      expect(again[0]).toContain('1 older alert event(s) were dropped');
      expect(again[1]).not.toContain('dropped');
    } finally {
      await hook.stop();
    }
  });
  it('a stop while a POST is in flight lets it go at once, says no failure, and does not wait to try again', async () => {
    const held: ServerResponse[] = [];
    answer = (res) => void held.push(res);
    const hook = hookWith({ retry: { initialMs: 60_000, maxMs: 60_000 } });
    try {
      hook.tell('raised', alert('pager'));
      await until(() => held.length === 1, 'the POST in flight');
      let done = false;
      void hook.stop().then(() => (done = true));
      await until(() => done, 'stopped', 2000);
      expect(logs).toEqual([
        `alert webhook: 1 alert event(s) not sent to http://127.0.0.1:${(receiver.address() as AddressInfo).port} before the stop (the alerts still standing are raised again at the next start)`,
      ]);
    } finally {
      for (const res of held) res.destroy();
    }
  });
});

describe('crs serve --alert-webhook URL', () => {
  it('says so at start naming the origin only, and posts the clock step the server sees', async () => {
    const s = await spawnServe(join(dir, 'cli'), ['--alert-webhook', receiverUrl()], {
      CRS_TEST_CLOCK: '1',
      CRS_WEBHOOK_SECRET: SECRET,
    });
    try {
      const port = (receiver.address() as AddressInfo).port;
      await until(() => s.stderr().includes(`crs serve: alert webhook: POST http://127.0.0.1:${port}`));
      expect((await fetch(`${s.url}/local/clock?stepMs=${-3 * 3600_000}`, { method: 'POST' })).status).toBe(200);
      const clock = await until(() => got.find((g) => g.body.key === 'clock'), 'the clock alert posted');
      expect(clock.body).toMatchObject({ event: 'raised', key: 'clock', text: expect.stringContaining('clock') });
      expect(clock.headers['x-crs-signature']).toBe(
        `sha256=${createHmac('sha256', SECRET).update(clock.raw).digest('hex')}`,
      );
      expect(s.stderr()).not.toContain('secret-path');
    } finally {
      await stop(s);
    }
  });

  it('CRS_ALERT_WEBHOOK_URL alone (off the command line: 2026-12-06) posts the clock step as the flag would', async () => {
    const s = await spawnServe(join(dir, 'cli'), [], {
      CRS_TEST_CLOCK: '1',
      CRS_ALERT_WEBHOOK_URL: receiverUrl(),
    });
    try {
      const port = (receiver.address() as AddressInfo).port;
      await until(() => s.stderr().includes(`crs serve: alert webhook: POST http://127.0.0.1:${port}`));
      expect((await fetch(`${s.url}/local/clock?stepMs=${-3 * 3600_000}`, { method: 'POST' })).status).toBe(200);
      const clock = await until(() => got.find((g) => g.body.key === 'clock'), 'the clock alert posted');
      expect(clock.body).toMatchObject({ event: 'raised', key: 'clock' });
      expect(s.stderr()).not.toContain('secret-path');
    } finally {
      await stop(s);
    }
  });
});
