// Issue 16's smaller items on `crs serve`, in process over real HTTP (each reproduction fails on the old code): the
// board's CSRF guard, CRS_INGEST_TOKEN's rules, the board cookie behind TLS, refused acknowledgements rate-limited
// per address and kept out of patients' trails, the device token checked before any body is read, connection caps
// and header timeouts, ids with CR/LF never reaching the log raw, and the data directory's files owner-only.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { Agent, request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLoopbackHost, issueToken, openMllpWarning, secretMatches } from '../../shared/app/auth.ts';
import { openDataDir } from '#adapters/sqlite/db.ts';
import { Spool } from '#hosts/mllp-bridge/spool.ts';
import { resolveConfig } from '../../shared/domain/config.ts';
import { RateLimiter, clientAddress } from '#hosts/embedded/limits.ts';
import { oneLine } from '#hosts/embedded/log-line.ts';
import { ownUrl, startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { boardCookieName } from '#hosts/embedded/board-key.ts';
import { BOARD_KEY_FILE, keyMatches, loadOrCreateBoardKey } from '#hosts/embedded/board-key.ts';
import { CountingSecurityLog } from '#hosts/embedded/security-log.ts';
import { iso } from '#domain/time.ts';
import type { SecurityEvent, SecurityRefusal } from '#ports';
import { until } from '../support/until.ts';
import { enrol, msg } from '../support/messages.ts';

const TOKEN = 'embedded-security-test-token-0123456789';
const config = (() => {
  const r = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
})();
let dir: string;
let server: EmbeddedServer | undefined;
let logs: string[];

const start = (extra: Partial<Parameters<typeof startEmbeddedServer>[0]> = {}) =>
  startEmbeddedServer({
    dataDir: dir,
    config,
    port: 0,
    localToken: TOKEN,
    pageStream: new PassThrough(),
    log: (l) => logs.push(l),
    ...extra,
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-security-'));
  logs = [];
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const keyOf = (s: EmbeddedServer) => new URL(s.boardUrl).searchParams.get('key')!;
const post = (s: EmbeddedServer, body: unknown, token = TOKEN) =>
  fetch(`${s.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/**
 * How long a raw exchange waits for the server to close the connection before it gives up and closes it itself: far
 * longer than anything this file waits for (a refusal at once, a 400 or 800 ms timeout), however busy the machine,
 * and shorter than what would close it otherwise (the default 10 s for headers and 30 s for a request).
 */
const GIVE_UP_MS = 8_000;

/**
 * A raw HTTP exchange: writes `text` (and keeps the socket open), resolves with what came back when it closed, and
 * who closed it: the server, or this side after GIVE_UP_MS.
 */
function raw(
  port: number,
  text: string,
  opts: { localAddress?: string } = {},
): Promise<{ data: string; closedBy: 'server' | 'us' }> {
  return new Promise((resolve) => {
    let closedBy: 'server' | 'us' = 'server';
    const socket: Socket = connect({
      port,
      host: '127.0.0.1',
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closedBy });
    });
    socket.on('connect', () => socket.write(text));
    const timer = setTimeout(() => {
      closedBy = 'us';
      socket.destroy();
    }, GIVE_UP_MS);
  });
}

async function stalePage(s: EmbeddedServer): Promise<string> {
  expect((await post(s, enrol('P1', 0))).status).toBe(202);
  expect((await post(s, msg('P1', 10, { vitals: { temperatureC: 39.4 } }))).status).toBe(202);
  return until(
    () => s.db.prepare("SELECT page_id FROM pages WHERE status = 'open' LIMIT 1").pluck().get() as string | undefined,
    'an open page',
  );
}

describe("the board's CSRF guard", () => {
  it('takes exactly application/json, and a cookie-carried request only with this server as its Origin', async () => {
    server = await start();
    const s = server;
    const pageId = await stalePage(s);
    const ack = (headers: Record<string, string>, by = 'Dr A') =>
      fetch(`${s.url}/api/pages/${encodeURIComponent(pageId)}/ack`, {
        method: 'POST',
        headers: { cookie: `${boardCookieName(keyOf(s))}=${keyOf(s)}`, ...headers },
        body: JSON.stringify({ by }),
      });
    const origin = new URL(s.url).origin;
    // The reproductions: a text/plain "json" type (a cross-site form can send it) and no Origin at all.
    expect((await ack({ 'content-type': 'text/plain; charset=json', origin })).status).toBe(415);
    expect((await ack({ 'content-type': 'application/json-seq', origin })).status).toBe(415);
    expect((await ack({ 'content-type': 'application/json' })).status).toBe(403);
    expect((await ack({ 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
    expect((await ack({ 'content-type': 'application/json', origin: 'null' })).status).toBe(403);
    expect(await s.paging.store.get(pageId)).toMatchObject({ status: 'open' });
    expect((await ack({ 'content-type': 'application/json; charset=UTF-8', origin })).status).toBe(200);
    // A script with the key as a bearer token sends no Origin (and cannot be made to by another site).
    const silence = await fetch(`${s.url}/api/silences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf(s)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ team: 'icu', minutes: 5, reason: 'drill', by: 'Ops' }),
    });
    expect(silence.status).toBe(201);
  });
});

describe("the board's key and Origin: pinned by a mutation run (2026-12-06)", () => {
  it('takes the key from the printed link only: the API refuses it in a query string (it would sit in logs, history)', async () => {
    server = await start();
    const s = server;
    const res = await fetch(`${s.url}/api/patients?key=${encodeURIComponent(keyOf(s))}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('refuses a cookie-carried write from another port of this host (cookies and SameSite ignore the port)', async () => {
    server = await start();
    const s = server;
    const pageId = await stalePage(s);
    const other = new URL(s.url);
    other.port = String(Number(other.port) === 65535 ? 65534 : Number(other.port) + 1);
    const res = await fetch(`${s.url}/api/pages/${encodeURIComponent(pageId)}/ack`, {
      method: 'POST',
      headers: {
        cookie: `${boardCookieName(keyOf(s))}=${keyOf(s)}`,
        'content-type': 'application/json',
        origin: other.origin,
      },
      body: JSON.stringify({ by: 'Dr A' }),
    });
    expect(res.status).toBe(403);
    expect(await s.paging.store.get(pageId)).toMatchObject({ status: 'open' });
  });
});

describe("the board's write routes and a compressed body", () => {
  it('answer a Content-Encoding other than identity 415 "send the body uncompressed", as the device routes do', async () => {
    // Until 2026-12-06 the compressed bytes were read as the body: a 400 "body is not valid JSON" told the sender to
    // mend JSON that was right. Nothing here inflates a body (one decoder fewer, no compression bomb to bound).
    const { gzipSync } = await import('node:zlib');
    server = await start();
    const s = server;
    const pageId = await stalePage(s);
    const origin = new URL(s.url).origin;
    const cookie = `${boardCookieName(keyOf(s))}=${keyOf(s)}`;
    const write = (path: string, body: unknown, encoding: string) =>
      fetch(`${s.url}${path}`, {
        method: 'POST',
        headers: { cookie, origin, 'content-type': 'application/json', 'content-encoding': encoding },
        body: gzipSync(JSON.stringify(body)),
      });
    const said = { error: 'content-encoding "gzip" is not taken: send the body uncompressed' };
    for (const [path, body] of [
      [`/api/pages/${encodeURIComponent(pageId)}/ack`, { by: 'Dr A' }],
      ['/api/silences', { team: 'icu', minutes: 5, reason: 'drill', by: 'Ops' }],
      ['/api/outbox/retry', {}],
    ] as const) {
      const r = await write(path, body, 'gzip');
      expect([r.status, await r.json()], path).toEqual([415, said]);
    }
    expect(await s.paging.store.get(pageId)).toMatchObject({ status: 'open' });
    // identity is no coding: taken as it comes.
    const plain = await fetch(`${s.url}/api/pages/${encodeURIComponent(pageId)}/ack`, {
      method: 'POST',
      headers: { cookie, origin, 'content-type': 'application/json', 'content-encoding': 'identity' },
      body: JSON.stringify({ by: 'Dr A' }),
    });
    expect(plain.status).toBe(200);
  });
});

describe('CRS_INGEST_TOKEN', () => {
  it('must be at least 32 characters and is accepted on a loopback listener only', async () => {
    await expect(start({ localToken: 'short-token' })).rejects.toThrow(
      /CRS_INGEST_TOKEN must be at least 32 characters \(it is 11\)/,
    );
    // Refused before anything listens (so nothing here ever listens beyond loopback).
    await expect(start({ host: '192.0.2.1' })).rejects.toThrow(
      /CRS_INGEST_TOKEN is accepted only on a loopback listener \(this one is 192\.0\.2\.1\).*--ingest-token-any-host/,
    );
    expect(['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.5', 'example.org'].some(isLoopbackHost)).toBe(false);
    server = await start();
    expect((await post(server, msg('P1', 0, { vitals: { heartRate: 80 } }), `${TOKEN.slice(0, -1)}x`)).status).toBe(
      403,
    );
    expect((await post(server, msg('P1', 0, { vitals: { heartRate: 80 } }))).status).toBe(202);
    expect(secretMatches('a'.repeat(40), 'a'.repeat(40))).toBe(true);
    expect(secretMatches('a'.repeat(40), 'a'.repeat(39))).toBe(false);
  });
});

describe('CRS_TEST_CLOCK', () => {
  it('is taken on a loopback listener only: POST /local/clock moves the clock and takes no key', async () => {
    // Refused before anything listens: on a listener others reach, anyone could step the clock that expires links,
    // escalates pages and refuses device data as too old or ahead (until 2026-12-06 it was taken on any --host).
    await expect(start({ localTokenAnyHost: true, testClock: true, host: '192.0.2.1' })).rejects.toThrow(
      /CRS_TEST_CLOCK \(a test hook: POST \/local\/clock moves the server's clock, and takes no key\) is accepted only on a loopback listener \(this one is 192\.0\.2\.1\)/,
    );
    server = await start({ testClock: true });
    expect((await fetch(`${server.url}/local/clock?stepMs=1000`, { method: 'POST' })).status).toBe(200);
  });

  it('refuses a parameter it does not take, and a missing step, naming them: a 200 moved nothing (2026-12-06)', async () => {
    // Until 2026-12-06 `?advanceMs=N` (the AWS host's name) or no parameter answered 200 and moved nothing, and a test
    // waited on a clock that had not moved.
    const s = await start({ testClock: true });
    server = s;
    const clock = async (query: string) => {
      const r = await fetch(`${s.url}/local/clock${query}`, { method: 'POST' });
      return [r.status, await r.json()];
    };
    expect(await clock('?advanceMs=60000')).toEqual([400, { error: 'unknown parameter "advanceMs"; allowed: stepMs' }]);
    expect(await clock('?stepMs=60000&stepms=1')).toEqual([
      400,
      { error: 'unknown parameter "stepms" (did you mean "stepMs"?); allowed: stepMs' },
    ]);
    expect(await clock('')).toEqual([400, { error: 'stepMs: a whole number of milliseconds' }]);
    expect(await clock('?stepMs=')).toEqual([400, { error: 'stepMs: a whole number of milliseconds' }]);
  });
});

describe('the MLLP listener on the network', () => {
  it('is warned of at start when it sends for every patient, not on loopback or with --mllp-device', () => {
    // Said, not refused (taking the monitors' gateway over the network is what it is for); until 2026-12-06 nothing
    // said that anyone reaching the port sends as a monitor for every patient. (Nothing here listens beyond loopback:
    // the line is crs serve's, made by this function.)
    for (const host of ['0.0.0.0', '::', '10.0.0.5'])
      expect(openMllpWarning(host, undefined)).toMatch(
        /^the MLLP listener takes HL7 v2 from anyone who reaches it on the network, as a monitor for every patient .*--mllp-device ID/,
      );
    expect(openMllpWarning('0.0.0.0', 'mon-gw-1')).toBeUndefined();
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(openMllpWarning(host, undefined)).toBeUndefined();
  });
});

describe('the board cookie', () => {
  const cookieOf = async (s: EmbeddedServer, headers: Record<string, string> = {}) =>
    (await fetch(`${s.url}/?key=${keyOf(s)}`, { redirect: 'manual', headers })).headers.get('set-cookie')!;

  it('is Secure behind TLS: an https --public-url, or X-Forwarded-Proto from a trusted proxy only', async () => {
    server = await start();
    expect(await cookieOf(server)).not.toMatch(/Secure/);
    expect(await cookieOf(server, { 'x-forwarded-proto': 'https' })).not.toMatch(/Secure/); // nobody trusted said so
    await server.close();
    server = await start({ trustProxy: ['127.0.0.1'] });
    expect(await cookieOf(server, { 'x-forwarded-proto': 'https' })).toMatch(
      /^crs_board_[0-9a-f]{16}=[^;]+; HttpOnly; SameSite=Strict; Secure$/,
    );
    expect(await cookieOf(server, { 'x-forwarded-proto': 'http' })).not.toMatch(/Secure/);
    await server.close();
    server = await start({ publicUrl: 'https://crs.example.org' });
    expect(await cookieOf(server)).toMatch(/; Secure$/);
  });

  // Until 2026-12-05 the printed link opened without its trailing slash behind a proxy (/wards?key=...) was sent to
  // `./`, the host's root, with the cookie for every path of the host.
  it("is for --public-url's path only, and the link goes there: a path of this host whatever the Host says (no open redirect)", async () => {
    server = await start({ publicUrl: 'https://crs.example.org/wards/' });
    for (const host of [undefined, 'evil.example']) {
      const res = await fetch(`${server.url}/?key=${keyOf(server)}`, {
        redirect: 'manual',
        headers: host ? { host } : {},
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/wards/');
      expect(res.headers.get('set-cookie')).toMatch(
        /^crs_board_[0-9a-f]{16}=[^;]+; HttpOnly; SameSite=Strict; Path=\/wards; Secure$/,
      );
    }
    // The board's page resolves its files and API under the prefix (its CSP lets a <base> of this origin), and this
    // server answers there too: at /wards/... as at /...
    const page = await fetch(`${server.url}/wards`);
    expect(await page.text()).toContain('<base href="/wards/">');
    expect(page.headers.get('content-security-policy')).toContain("base-uri 'self'");
    expect((await fetch(`${server.url}/wards/board.js`)).status).toBe(200);
    const cookie = (await fetch(`${server.url}/?key=${keyOf(server)}`, { redirect: 'manual' })).headers
      .get('set-cookie')!
      .split(';')[0]!;
    expect((await fetch(`${server.url}/wards/api/patients`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${server.url}/wardsx/board.js`)).status).toBe(404); // not under the prefix
  });

  it('is named for its server: another data directory on the machine has another, a restart keeps it', async () => {
    // Cookies ignore ports: until 2026-12-05 every crs serve set "crs_board", and two on one machine logged each
    // other's board out.
    const name = (cookie: string) => cookie.split('=')[0]!;
    server = await start();
    const first = name(await cookieOf(server));
    expect(first).toMatch(/^crs_board_[0-9a-f]{16}$/);
    expect(first).not.toContain(keyOf(server));
    const otherDir = mkdtempSync(join(tmpdir(), 'crs-security-other-'));
    const other = await start({ dataDir: otherDir });
    try {
      expect(name(await cookieOf(other))).not.toBe(first);
      // The other server's cookie does not open this one's board.
      const res = await fetch(`${server.url}/api/patients`, {
        headers: { cookie: (await cookieOf(other)).split(';')[0]! },
      });
      expect(res.status).toBe(401);
    } finally {
      await other.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
    await server.close();
    server = await start();
    expect(name(await cookieOf(server))).toBe(first);
  });
});

describe('refused acknowledgements', () => {
  it("are rate-limited per client address (429) and written to the security log, not to the patient's trail; a genuine link still acknowledges", async () => {
    server = await start({ httpLimits: { refusalBurst: 5, refusalRefillMs: 60_000 } });
    const s = server;
    const pageId = await stalePage(s);
    const genuine = (await s.paging.store.get(pageId))!;
    const forged = (i: number) =>
      `v1.${Buffer.from(genuine.pageId).toString('base64url')}.${Buffer.from(`Mallory ${i}`).toString('base64url')}.zzzzzzzz.${'A'.repeat(43)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${s.url}/v1/acks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: forged(i), by: `Mallory ${i}` }),
      });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([...Array(5).fill(403), ...Array(7).fill(429)]);
    const form = await fetch(`${s.url}/ack/${forged(99)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'by=Mallory',
    });
    expect(form.status).toBe(429);
    // The patient's trail holds nothing of it; the security log holds the five it counted, with what they claimed.
    const trail = s.db.prepare("SELECT count(*) FROM audit WHERE type = 'acknowledgement-refused'").pluck().get();
    expect(trail).toBe(0);
    const lines = readFileSync(join(dir, 'security.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { client: string; claimed: { by: string; role: string } });
    expect(lines.map((l) => [l.client, l.claimed.by, l.claimed.role])).toEqual(
      [0, 1, 2, 3, 4].map((i) => ['127.0.0.1', `Mallory ${i}`, `Mallory ${i}`]),
    );
    // A phone behind the same address with a genuine link is never locked out.
    const token = signedLinkOf(s, pageId);
    const ok = await fetch(`${s.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, by: 'Dr Real' }),
    });
    expect(ok.status).toBe(200);
  });

  it('counts the client a trusted proxy forwards, not the proxy', async () => {
    server = await start({ trustProxy: ['127.0.0.1'], httpLimits: { refusalBurst: 1, refusalRefillMs: 60_000 } });
    const s = server;
    const refuse = (xff: string) =>
      fetch(`${s.url}/v1/acks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
        body: JSON.stringify({ token: 'v1.a.b.c.d', by: 'M' }),
      });
    expect((await refuse('198.51.100.1')).status).toBe(403);
    expect((await refuse('198.51.100.1')).status).toBe(429);
    expect((await refuse('203.0.113.5, 198.51.100.2')).status).toBe(403); // the nearest untrusted hop is the client
    expect((await refuse('198.51.100.1, 198.51.100.2')).status).toBe(429);
    const req = (peer: string, xff?: string) =>
      ({ socket: { remoteAddress: peer }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as never;
    expect(clientAddress(req('::ffff:10.0.0.9', '1.2.3.4'), ['127.0.0.1'])).toBe('10.0.0.9'); // an untrusted peer's header is ignored
    expect(clientAddress(req('127.0.0.1', 'junk, 1.2.3.4, 127.0.0.1'), ['127.0.0.1'])).toBe('1.2.3.4');
  });
});

describe('refusals past the budget', () => {
  // Every refusal is a line in the security log or counted in a `suppressed` one: the flood below is 25 forged
  // acknowledgements and 25 unknown device tokens from one address, with the budget at its default (10).
  let clock: number;
  const T = Date.parse('2026-03-02T10:00:00Z');
  const startClocked = (extra: Partial<Parameters<typeof startEmbeddedServer>[0]> = {}) => {
    clock = T;
    return start({ now: () => clock, ...extra });
  };
  const from = (client?: string): Record<string, string> => (client ? { 'x-forwarded-for': client } : {});
  const forgedAck = async (s: EmbeddedServer, client?: string) =>
    (
      await fetch(`${s.url}/v1/acks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...from(client) },
        body: JSON.stringify({ token: 'v1.a.b.c.d', by: 'Mallory' }),
      })
    ).status;
  const badToken = async (s: EmbeddedServer, client?: string) =>
    (
      await fetch(`${s.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: 'Bearer crs_nope', 'content-type': 'application/json', ...from(client) },
        body: JSON.stringify(enrol('P1', 0)),
      })
    ).status;
  /**
   * The refusals from `from` to `to` (counted from the first) of each kind from every address in turn, the server's
   * clock a millisecond on before each round.
   */
  async function flood(s: EmbeddedServer, to: number, clients: (string | undefined)[] = [undefined], from = 0) {
    for (let i = from; i < to; i++) {
      clock++;
      for (const client of clients) {
        expect(await forgedAck(s, client)).toBe(i < 10 ? 403 : 429);
        expect(await badToken(s, client)).toBe(403);
      }
    }
  }
  const logged = (): SecurityEvent[] =>
    readFileSync(join(dir, 'security.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SecurityEvent);
  const written = (lines: SecurityEvent[], kind: SecurityRefusal, client = '127.0.0.1') =>
    lines.filter((e) => e.event === kind && e.client === client).length;
  const counted = (lines: SecurityEvent[], kind: SecurityRefusal, client = '127.0.0.1') =>
    lines
      .filter((e) => e.event === 'suppressed' && e.suppressed?.kind === kind && e.client === client)
      .reduce((n, e) => n + e.suppressed!.count, 0);

  it("writes the count before the address's next line of its kind: 10 lines and a count of 15, of each", async () => {
    server = await startClocked();
    await flood(server, 25);
    let lines = logged();
    expect(written(lines, 'acknowledge-link-refused')).toBe(10);
    expect(written(lines, 'device-token-refused')).toBe(10);
    expect(lines.filter((e) => e.event === 'suppressed')).toEqual([]); // counted, not yet written
    clock += 6_000; // one more of each is written now
    expect(await forgedAck(server)).toBe(403);
    expect(await badToken(server)).toBe(403);
    lines = logged();
    expect(lines.slice(20).map((e) => [e.event, e.client, e.suppressed])).toEqual([
      [
        'suppressed',
        '127.0.0.1',
        { kind: 'acknowledge-link-refused', count: 15, firstAt: iso(T + 11), lastAt: iso(T + 25) },
      ],
      ['acknowledge-link-refused', '127.0.0.1', undefined],
      [
        'suppressed',
        '127.0.0.1',
        { kind: 'device-token-refused', count: 15, firstAt: iso(T + 11), lastAt: iso(T + 25) },
      ],
      ['device-token-refused', '127.0.0.1', undefined],
    ]);
    expect(lines[20]!.at).toBe(iso(clock));
  });

  it('writes every count at each flush, during the flood or after it, one line per address and kind', async () => {
    server = await startClocked({ httpLimits: { refusalCountFlushMs: 20 } });
    await flood(server, 25);
    const lines = await until(
      () => {
        const l = logged();
        return counted(l, 'acknowledge-link-refused') === 15 && counted(l, 'device-token-refused') === 15 && l;
      },
      'the counts to be flushed',
      10_000,
    );
    expect(written(lines, 'acknowledge-link-refused')).toBe(10);
    expect(written(lines, 'device-token-refused')).toBe(10);
    // Nothing written twice: shutting down finds nothing left to count.
    await server.close();
    expect(logged()).toEqual(lines);
  });

  it('writes every count left at shutdown', async () => {
    server = await startClocked();
    await flood(server, 25);
    await server.close();
    const lines = logged();
    expect(lines.map((e) => [e.event, e.suppressed?.kind, e.suppressed?.count]).slice(20)).toEqual([
      ['suppressed', 'acknowledge-link-refused', 15],
      ['suppressed', 'device-token-refused', 15],
    ]);
    expect(written(lines, 'acknowledge-link-refused') + written(lines, 'device-token-refused')).toBe(20);
  });

  it('counts two addresses apart', async () => {
    server = await startClocked({ trustProxy: ['127.0.0.1'] });
    await flood(server, 12, ['198.51.100.1', '198.51.100.2']); // both past their budgets at once
    await flood(server, 13, ['198.51.100.2'], 12);
    await server.close();
    const lines = logged();
    for (const kind of ['acknowledge-link-refused', 'device-token-refused'] as const) {
      expect([written(lines, kind, '198.51.100.1'), counted(lines, kind, '198.51.100.1')]).toEqual([10, 2]);
      expect([written(lines, kind, '198.51.100.2'), counted(lines, kind, '198.51.100.2')]).toEqual([10, 3]);
    }
    expect(lines.filter((e) => e.event === 'suppressed')).toHaveLength(4);
  });

  it('keeps as many counts as the budgets keep addresses: past that, the one counted least recently is written, not dropped', async () => {
    const events: SecurityEvent[] = [];
    let t = T;
    let failing = false;
    const log = new CountingSecurityLog(
      {
        record: async (e) => {
          if (failing) throw new Error('disk full');
          events.push(e);
        },
      },
      () => t,
      2,
    );
    await log.notWritten('device-token-refused', 'a');
    t++;
    await log.notWritten('device-token-refused', 'b');
    t++;
    await log.notWritten('device-token-refused', 'a');
    expect(events).toEqual([]);
    await log.notWritten('acknowledge-link-refused', 'a'); // a third count: b's is written
    expect(events.map((e) => [e.client, e.suppressed])).toEqual([
      ['b', { kind: 'device-token-refused', count: 1, firstAt: iso(T + 1), lastAt: iso(T + 1) }],
    ]);
    // A count that failed to write is kept for the next try.
    failing = true;
    await expect(log.flush()).rejects.toThrow('disk full');
    failing = false;
    await log.flush();
    expect(events.slice(1).map((e) => [e.client, e.suppressed?.kind, e.suppressed?.count])).toEqual(
      expect.arrayContaining([
        ['a', 'device-token-refused', 2],
        ['a', 'acknowledge-link-refused', 1],
      ]),
    );
    expect(events).toHaveLength(3);
  });
});

/** The acknowledge link the pager sent for a page (from the stored sends). */
function signedLinkOf(s: EmbeddedServer, pageId: string): string {
  const body = s.db
    .prepare("SELECT body FROM outbox WHERE kind = 'page' AND item_id LIKE ? ORDER BY seq LIMIT 1")
    .pluck()
    .get(`${pageId}#%`) as string;
  return (JSON.parse(body) as { ackUrl: string }).ackUrl.split('/ack/')[1]!;
}

describe('device requests', () => {
  it('are refused before their body is read: an unauthenticated 1 MB request is answered at once and its connection closed', async () => {
    server = await start();
    const head = (auth: string) =>
      `POST /v1/messages/batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n${auth}\r\n`;
    // Headers only: the old server waited for the megabyte before answering. Each connection is closed by the server
    // (until 2026-12-06: within 2 s by the wall clock, which a busy machine could take), not left open for the body
    // it never reads: 30 s for a request, past GIVE_UP_MS.
    const none = await raw(server.port, head(''));
    expect(none.data).toMatch(/^HTTP\/1\.1 401 /);
    expect(none.data).toMatch(/connection: close/i);
    expect(none.closedBy).toBe('server');
    const wrong = await raw(server.port, head('authorization: Bearer crs_nope\r\n'));
    expect(wrong.data).toMatch(/^HTTP\/1\.1 403 /);
    // A known token with a body it says is over the limit: 413 at once, nothing read.
    const over = await raw(
      server.port,
      head(`authorization: Bearer ${TOKEN}\r\n`).replace('1000000', String(2 * 1024 * 1024)),
    );
    expect(over.data).toMatch(/^HTTP\/1\.1 413 /);
    expect(over.closedBy).toBe('server');
    // One message said to be over its own 64 KiB (under a batch's 1 MiB): 413 at once too (it waited for the body).
    const overOne = await raw(
      server.port,
      head(`authorization: Bearer ${TOKEN}\r\n`)
        .replace('/v1/messages/batch', '/v1/messages')
        .replace('1000000', String(100 * 1024)),
    );
    expect(overOne.data).toMatch(/^HTTP\/1\.1 413 /);
    expect(overOne.data).toContain(`body is ${100 * 1024} bytes; the limit is ${64 * 1024}`); // the size it said
    expect(overOne.closedBy).toBe('server');
    // Unknown tokens are logged for the operator (rate-limited per address), without the token.
    const log = readFileSync(join(dir, 'security.log'), 'utf8');
    expect(log).toContain('"event":"device-token-refused"');
    expect(log).not.toContain('crs_nope');
  });

  it('get a short time for headers, and one address only so many connections', async () => {
    server = await start({
      httpLimits: { headersTimeoutMs: 400, requestTimeoutMs: 800, checkIntervalMs: 100, maxConnectionsPerAddress: 4 },
    });
    const s = server;
    // Closed by the server (its 408) with this server's 400 and 800 ms, not the defaults (10 s, 30 s: past GIVE_UP_MS).
    const slow = await raw(s.port, 'POST /v1/messages HTTP/1.1\r\nhost: x\r\n'); // never finishes its headers
    expect(slow.closedBy).toBe('server');
    expect(slow.data).toMatch(/^HTTP\/1\.1 408 /);
    const dribble = await raw(
      s.port,
      `POST /v1/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{`,
    );
    expect(dribble.closedBy).toBe('server');
    expect(dribble.data).toMatch(/^HTTP\/1\.1 408 /);
    // Four held open from one address; the fifth is closed at once; another address is served.
    const held = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<Socket>((r) => {
            const c = connect(s.port, '127.0.0.1', () => r(c));
            c.on('error', () => undefined);
          }),
      ),
    );
    const fifth = await raw(s.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(fifth).toEqual({ data: '', closedBy: 'server' });
    const other = await raw(s.port, 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', {
      localAddress: '127.0.0.2',
    });
    expect(other.data).toMatch(/^HTTP\/1\.1 200 /);
    for (const c of held) c.destroy();
  });
});

describe('log lines', () => {
  it('never carry CR or LF raw, whatever an id holds (a page stored before ids were restricted)', async () => {
    server = await start();
    const s = server;
    const pageId = await stalePage(s);
    // A page id with CR/LF, as the old contract let a messageId make one.
    const evil = `${pageId}\r\ncrs serve: listening on http://evil`;
    const row = s.db.prepare('SELECT * FROM pages WHERE page_id = ?').get(pageId) as Record<string, unknown>;
    const page = { ...JSON.parse(row.body as string), pageId: evil };
    s.db
      .prepare(
        'INSERT INTO pages (page_id, notification_id, patient_id, team, subject, kind, status, delivered, held_by, due_at, triggered_at, rev, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        evil,
        row.notification_id,
        row.patient_id,
        row.team,
        row.subject,
        row.kind,
        row.status,
        row.delivered,
        row.held_by,
        row.due_at,
        row.triggered_at,
        row.rev,
        JSON.stringify(page),
      );
    const res = await fetch(`${s.url}/api/pages/${encodeURIComponent(evil)}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf(s)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Dr A' }),
    });
    expect(res.status).toBe(200);
    const line = logs.find((l) => l.includes('acknowledged via board'))!;
    expect(line).not.toMatch(/[\r\n]/);
    expect(line).toContain('%0D%0Acrs');
    expect(oneLine('a\r\nb\u2028c\x1b')).toBe('a\\x0d\\x0ab\\u2028c\\x1b');
    // A bidirectional override would reorder the rest of the line on the operator's terminal (crs dead-letters list
    // prints a stored error's text through this); a zero-width space would hide in it.
    expect(oneLine('x\u202eevil\u200by')).toBe('x\\u202eevil\\u200by');
  });
});

describe('the data directory', () => {
  it('keeps the database, its WAL and SHM, the keys and logs owner-only, and makes an existing open directory private, saying so', async () => {
    const prev = process.umask(0o022);
    try {
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'board.key'), `${'k'.repeat(32)}\n`, { mode: 0o644 });
      server = await start();
      expect(logs.filter((l) => l.startsWith('crs serve: made private'))).toEqual([
        `crs serve: made private (others could read patient data): ${dir} was 0755, now 0700`,
        `crs serve: made private (others could read patient data): ${join(dir, 'board.key')} was 0644, now 0600`,
      ]);
      await post(server, msg('P1', 0, { vitals: { heartRate: 80 } }));
      expect((await post(server, msg('P1', 1, { vitals: { heartRate: 80 } }), 'crs_unknown')).status).toBe(403); // into security.log
      // While it runs (the WAL and SHM go when the last connection closes).
      for (const f of [
        'crs.db',
        'crs.db-wal',
        'crs.db-shm',
        'serve.lock',
        'serve.json',
        'ack.key',
        'board.key',
        'security.log',
      ]) {
        expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
      }
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      // A database opened by crs token (another process) gets the same.
      const other = mkdtempSync(join(tmpdir(), 'crs-security-db-'));
      const db = openDataDir(other);
      db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      for (const f of ['crs.db', 'crs.db-wal', 'crs.db-shm'])
        expect((statSync(join(other, f)).mode & 0o777).toString(8), f).toBe('600');
      db.close();
      rmSync(other, { recursive: true, force: true });
    } finally {
      process.umask(prev);
    }
  });
});

describe('a data directory of another user', () => {
  it('is refused with a clear error (it cannot be made private by this process)', async () => {
    // Root makes one; anyone else is handed /tmp (root's).
    const theirs = process.getuid?.() === 0 ? mkdtempSync(join(tmpdir(), 'crs-theirs-')) : tmpdir();
    if (process.getuid?.() === 0) chownSync(theirs, 65534, 65534);
    try {
      await expect(
        startEmbeddedServer({
          dataDir: theirs,
          config,
          port: 0,
          localToken: TOKEN,
          pageStream: new PassThrough(),
          log: () => undefined,
        }),
      ).rejects.toThrow(
        /the data directory .* belongs to another user \(uid \d+\): patient data must be readable by the server's user only; choose a directory of your own with --data/,
      );
    } finally {
      if (theirs !== tmpdir()) rmSync(theirs, { recursive: true, force: true });
    }
  });
});

describe('the MLLP bridge spool', () => {
  it('is owner-only, its WAL and SHM too, and an open spool directory is made private', () => {
    const prev = process.umask(0o022);
    const spoolDir = join(dir, 'spool');
    try {
      mkdirSync(spoolDir, { mode: 0o755 });
      chmodSync(spoolDir, 0o755);
      const spool = new Spool(spoolDir);
      expect(spool.madePrivate).toEqual([`${spoolDir} was 0755, now 0700`]);
      spool.add('MSH|^~\\&|x', new Date().toISOString());
      for (const f of ['spool.db', 'spool.db-wal', 'spool.db-shm'])
        expect((statSync(join(spoolDir, f)).mode & 0o777).toString(8), f).toBe('600');
      spool.close();
    } finally {
      process.umask(prev);
    }
  });

  it('keeps no delivered message in its files: its patient data is overwritten, not left in free pages', () => {
    const spoolDir = join(dir, 'spool-erased');
    const name = (n: number) => `PID|||MRN-${n}||ERASEME^PATIENT${n}`;
    let spool = new Spool(spoolDir);
    const seqs = [1, 2, 3].map((n) => spool.add(`MSH|^~\\&|x\r${name(n)}`, new Date().toISOString()));
    spool.delivered(seqs[0]!);
    spool.delivered(seqs[1]!);
    spool.close(); // a checkpoint: the WAL's pages are written into spool.db
    spool = new Spool(spoolDir);
    spool.close();
    const bytes = readFileSync(join(spoolDir, 'spool.db')).toString('latin1');
    expect(bytes).not.toContain('PATIENT1');
    expect(bytes).not.toContain('PATIENT2');
    expect(bytes).toContain('PATIENT3'); // still waiting: it must stay
  });
});

describe('tokens of issue', () => {
  it('an issued token is 47 characters (above the 32 the local token needs)', () => {
    expect(issueToken('d', new Date()).token).toHaveLength(47);
  });
});

describe('pinned by a mutation run: the board key', () => {
  it('is made once (at least 32 characters of 24 random bytes), owner-only whatever the umask, and kept across restarts', () => {
    const prev = process.umask(0o022);
    try {
      const key = loadOrCreateBoardKey(dir);
      expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(statSync(join(dir, BOARD_KEY_FILE)).mode & 0o777).toBe(0o600);
      // The board link printed at the last start keeps working.
      expect(loadOrCreateBoardKey(dir)).toBe(key);
      const other = mkdtempSync(join(tmpdir(), 'crs-board-'));
      expect(loadOrCreateBoardKey(other)).not.toBe(key);
      rmSync(other, { recursive: true, force: true });
    } finally {
      process.umask(prev);
    }
  });

  it('replaces a key file too short to be a secret (empty, or cut) with a new key', () => {
    for (const short of ['', '\n', 'k'.repeat(31)]) {
      writeFileSync(join(dir, BOARD_KEY_FILE), short, { mode: 0o600 });
      const key = loadOrCreateBoardKey(dir);
      expect(key.length, JSON.stringify(short)).toBeGreaterThanOrEqual(32);
      expect(readFileSync(join(dir, BOARD_KEY_FILE), 'utf8')).toBe(`${key}\n`);
    }
  });

  it('matches the whole key only: not a prefix of it, not an empty or missing one', () => {
    const key = 'k'.repeat(16) + 'K'.repeat(16);
    expect(keyMatches(key, key)).toBe(true);
    for (const given of ['', 'k', key.slice(0, 31), `${key}x`, undefined])
      expect(keyMatches(key, given), JSON.stringify(given)).toBe(false);
  });
});

describe("pinned by a mutation run: the device routes' limits", () => {
  /** POSTs `body` to the batch route on a kept-alive connection: with its Content-Length, or chunked without one. */
  const postBatch = (port: number, body: string, chunked: boolean) =>
    new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const agent = new Agent({ keepAlive: true });
      const length = chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) };
      const req = httpRequest(
        {
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/v1/messages/batch',
          agent,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...length },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            agent.destroy();
            resolve({ status: res.statusCode!, connection: res.headers.connection });
          });
        },
      );
      req.on('error', reject);
      if (chunked) req.write(body.slice(0, 1000));
      req.end(chunked ? body.slice(1000) : body);
    });

  it('takes a batch body of exactly 1 MiB, said up front or chunked, and keeps the connection', async () => {
    server = await start();
    const text = JSON.stringify(Array.from({ length: 100 }, (_, i) => msg('P1', i, { vitals: { heartRate: 80 } })));
    const body = text + ' '.repeat(1024 * 1024 - Buffer.byteLength(text));
    expect(await postBatch(server.port, body, false)).toEqual({ status: 202, connection: 'keep-alive' });
    expect(await postBatch(server.port, body, true)).toEqual({ status: 202, connection: 'keep-alive' });
  });

  it('writes unknown device tokens to the security log only up to the refusal budget per address', async () => {
    server = await start({ httpLimits: { refusalBurst: 2, refusalRefillMs: 60_000 } });
    for (let i = 0; i < 4; i++) expect((await post(server, enrol('P1', 0), 'crs_nope')).status).toBe(403);
    const log = readFileSync(join(dir, 'security.log'), 'utf8');
    expect(log.match(/"event":"device-token-refused"/g)).toHaveLength(2);
  });

  it('serves as many connections from one address as the cap, gives them back when they close, and never caps a trusted proxy', async () => {
    server = await start({ httpLimits: { maxConnectionsPerAddress: 2 } });
    const s = server;
    const health = 'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n';
    const hold = () =>
      new Promise<Socket>((r) => {
        const c = connect(s.port, '127.0.0.1', () => r(c));
        c.on('error', () => undefined);
      });
    const held = await hold();
    expect((await raw(s.port, health)).data).toMatch(/^HTTP\/1\.1 200 /); // the second of two
    held.destroy();
    // Closed connections are given back: a run of requests one after another is never refused for good.
    let served = 0;
    for (let i = 0; i < 20 && served < 3; i++) if ((await raw(s.port, health)).data) served++;
    expect(served).toBe(3);
    await server.close();
    server = await start({ trustProxy: ['127.0.0.1'], httpLimits: { maxConnectionsPerAddress: 1 } });
    const proxy = server;
    const open = await Promise.all(
      [1, 2].map(
        () =>
          new Promise<Socket>((r) => {
            const c = connect(proxy.port, '127.0.0.1', () => r(c));
            c.on('error', () => undefined);
          }),
      ),
    );
    expect((await raw(proxy.port, health)).data).toMatch(/^HTTP\/1\.1 200 /);
    for (const c of open) c.destroy();
  });

  it('believes the nearest untrusted hop in X-Forwarded-For, not the leftmost one the client wrote', () => {
    const req = { socket: { remoteAddress: '127.0.0.1' }, headers: { 'x-forwarded-for': '203.0.113.5, 198.51.100.2' } };
    expect(clientAddress(req as never, ['127.0.0.1'])).toBe('198.51.100.2');
  });

  it('a refusal budget of 2 allows exactly 2, and forgets the oldest address past its key limit', () => {
    const limiter = new RateLimiter(2, 60_000, () => 0, 2);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false]);
    expect(limiter.exhausted('a')).toBe(true);
    limiter.take('b');
    limiter.take('c'); // a third address: 'a' is forgotten, and starts again with a full budget
    expect(limiter.exhausted('a')).toBe(false);
  });

  it('refills a refusal budget up to its burst, never beyond, however long the address was quiet', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 1000, () => now);
    limiter.take('a');
    limiter.take('a');
    now = 60_000;
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([true, true, false]);
  });
});

describe('pinned by a mutation run: starting and stopping', () => {
  const freePort = async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    return port;
  };

  it('gives back the data directory and the HTTP port when the start fails after listening (the MLLP port taken)', async () => {
    const taken = createNetServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = await freePort();
    try {
      await expect(start({ port, mllpPort: (taken.address() as AddressInfo).port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
    // Started again at once, as a supervisor would: same directory, same port.
    server = await start({ port });
    expect(server.port).toBe(port);
    expect((await post(server, enrol('P1', 0))).status).toBe(202);
  });

  it('says where it answers in serve.json while it runs, removes it when it stops, and stops once however often asked', async () => {
    server = await start();
    expect(JSON.parse(readFileSync(join(dir, 'serve.json'), 'utf8'))).toEqual({
      url: server.url,
      board: `${server.url}/`,
      pid: process.pid,
    });
    const s = server;
    await Promise.all([s.close(), s.close()]);
    await s.close();
    expect(() => statSync(join(dir, 'serve.json'))).toThrow(/ENOENT/);
    // Every connection closed (the pager's own too): the last one takes the WAL and its index with it.
    for (const f of ['crs.db-wal', 'crs.db-shm']) expect(() => statSync(join(dir, f)), f).toThrow(/ENOENT/);
    server = await start(); // the directory is free again
    expect((await post(server, enrol('P1', 0))).status).toBe(202);
    // The old server asked to stop once more (a second signal): the new one's serve.json stays.
    await s.close();
    expect(JSON.parse(readFileSync(join(dir, 'serve.json'), 'utf8'))).toEqual({
      url: server.url,
      board: `${server.url}/`,
      pid: process.pid,
    });
  });
});

describe("pinned by a mutation run: the server's own URL", () => {
  // What the board link, serve.json (crs silence and crs outbox go through it) and the acknowledge links' default
  // base are built from. Checked without listening on every address (startEmbeddedServer builds its URL with it).
  it('shows a server listening on every IPv4 address (0.0.0.0, no address to connect to) at 127.0.0.1', () => {
    expect(ownUrl('0.0.0.0', 8080)).toBe('http://127.0.0.1:8080');
    expect(ownUrl('127.0.0.1', 8080)).toBe('http://127.0.0.1:8080');
    expect(ownUrl('10.0.0.5', 43210)).toBe('http://10.0.0.5:43210');
    expect(ownUrl('::1', 8080)).toBe('http://[::1]:8080');
    expect(ownUrl('::', 8080)).toBe('http://[::1]:8080');
    expect(ownUrl('localhost', 1)).toBe('http://localhost:1');
  });
});

describe("pinned by a mutation run: the board's CSRF guard on every write", () => {
  it('refuses a cookie-carried silence, silence end or outbox retry from another site, doing nothing', async () => {
    server = await start();
    const s = server;
    const silence = await fetch(`${s.url}/api/silences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf(s)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ team: 'icu', minutes: 30, reason: 'drill', by: 'Ops' }),
    });
    const { silenceId } = ((await silence.json()) as { silence: { silenceId: string } }).silence;
    const write = (path: string, body: unknown) =>
      fetch(`${s.url}${path}`, {
        method: 'POST',
        headers: {
          cookie: `${boardCookieName(keyOf(s))}=${keyOf(s)}`,
          'content-type': 'application/json',
          origin: 'http://evil.example',
        },
        body: JSON.stringify(body),
      });
    expect((await write('/api/silences', { team: 'hematology', minutes: 30, reason: 'x', by: 'Mallory' })).status).toBe(
      403,
    );
    expect((await write(`/api/silences/${silenceId}/end`, { by: 'Mallory' })).status).toBe(403);
    expect((await write('/api/outbox/retry', {})).status).toBe(403);
    const listed = (await (
      await fetch(`${s.url}/api/silences`, { headers: { authorization: `Bearer ${keyOf(s)}` } })
    ).json()) as { silences: { silenceId: string; scope: { team?: string } }[] };
    expect(listed.silences.map((x) => [x.silenceId, x.scope.team])).toEqual([[silenceId, 'icu']]);
  });

  // docs/security.md sentence by sentence (2026-12-08): the guard of POST /api/dead-letters/redrive dropped failed no test.
  it('refuses a cookie-carried dead-letter redrive from another site or with no Origin (403)', async () => {
    server = await start();
    const s = server;
    const redrive = (origin: string | undefined) =>
      fetch(`${s.url}/api/dead-letters/redrive`, {
        method: 'POST',
        headers: {
          cookie: `${boardCookieName(keyOf(s))}=${keyOf(s)}`,
          'content-type': 'application/json',
          ...(origin ? { origin } : {}),
        },
        body: '{}',
      });
    for (const origin of ['http://evil.example', undefined]) {
      const r = await redrive(origin);
      expect([r.status, await r.json()], String(origin)).toEqual([403, { error: 'cross-origin request refused' }]);
    }
    const own = await redrive(new URL(s.url).origin);
    expect([own.status, await own.json()]).toEqual([200, { redriven: 0 }]);
  });

  it('takes a cookie-carried write whose Origin is the --public-url the board is reached at (behind a proxy)', async () => {
    server = await start({ publicUrl: 'https://crs.example.org/' });
    const s = server;
    const pageId = await stalePage(s);
    const ack = (origin: string) =>
      fetch(`${s.url}/api/pages/${encodeURIComponent(pageId)}/ack`, {
        method: 'POST',
        headers: { cookie: `${boardCookieName(keyOf(s))}=${keyOf(s)}`, 'content-type': 'application/json', origin },
        body: JSON.stringify({ by: 'Dr A' }),
      });
    expect((await ack('https://crs.example.org.evil.example')).status).toBe(403);
    expect((await ack(`ftp://${new URL(s.url).host}`)).status).toBe(403); // this host, but no web page's origin
    expect((await ack('https://crs.example.org')).status).toBe(200);
  });
});

describe('which listening hosts are loopback, pinned by a mutation run', () => {
  it('an IPv4-mapped 127.0.0.1 is loopback; a name that only begins like one is not', () => {
    expect(isLoopbackHost('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackHost('[::ffff:127.0.0.1]')).toBe(true);
    // Names resolve wherever their owner points them: CRS_INGEST_TOKEN and the test clock stay off them.
    for (const host of ['127.0.0.1.nip.io', '127.example.org', 'localhost.example.org', 'localhost6'])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});
