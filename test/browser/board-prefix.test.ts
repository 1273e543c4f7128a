// The board and the acknowledge page behind a reverse proxy that maps a path prefix (`--public-url
// http://host/wards/`), in real Chromium against the real `crs serve`: a proxy of the test's own passes /wards/... to
// the server without the prefix, as nginx's `location /wards/ { proxy_pass http://127.0.0.1:8080/; }` does (Host
// rewritten to the server's). Until 2026-12-05 the board's link redirected to `/` (outside the prefix), and the board
// asked `/api/...`, which the proxy does not pass: the board never loaded.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { until } from '#test/support/until.ts';
import { post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';

const PREFIX = '/wards';

let dir: string;
let server: ServeProcess;
/** Where crs serve listens (the proxy's upstream). */
let direct: string;
let proxy: Server;
let publicUrl: string;
let browser: Browser;
/** Every path the proxy was asked for, as the browser sent it. */
const asked: string[] = [];

/**
 * What the proxy does with PREFIX itself (no trailing slash): `redirect` to PREFIX/, as nginx's `location /wards/`
 * does; or `pass` it to crs serve as /, as a proxy that maps `/wards` does (Caddy's `handle_path /wards*`, a
 * strip-prefix rule): the browser stays at /wards.
 */
let bare: 'redirect' | 'pass' = 'redirect';

/** Passes PREFIX/... to crs serve as /..., PREFIX as `bare` says, and nothing else (404). */
function prefixProxy(upstream: () => URL): Server {
  return createServer((req, res) => {
    let path = req.url ?? '/';
    asked.push(path);
    if (bare === 'redirect' && (path === PREFIX || path.startsWith(`${PREFIX}?`))) {
      res.writeHead(301, { location: `${PREFIX}/` }).end();
      return;
    }
    if (bare === 'pass' && (path === PREFIX || path.startsWith(`${PREFIX}?`)))
      path = `${PREFIX}/${path.slice(PREFIX.length)}`;
    if (!path.startsWith(`${PREFIX}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not behind this prefix\n');
      return;
    }
    const to = upstream();
    const out = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: path.slice(PREFIX.length),
        headers: { ...req.headers, host: to.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-prefix-'));
  let upstream: URL | undefined;
  proxy = prefixProxy(() => upstream!);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  publicUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${PREFIX}/`;
  server = await spawnServe(join(dir, 'data'), ['--public-url', publicUrl, '--page-lines']);
  direct = server.stderr().match(/listening on (http:\/\/\S+)/)![1]!;
  upstream = new URL(direct);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  await new Promise((r) => proxy?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the board under a path prefix (--public-url http://host/wards/)', () => {
  it('opens at the prefix, keeps its cookie there, shows a patient live and acknowledges a page', async () => {
    expect(server.boardUrl).toMatch(new RegExp(`^${publicUrl}\\?key=`));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(publicUrl)) outside.push(r.url());
    });

    await page.goto(server.boardUrl);
    expect(page.url()).toBe(publicUrl); // the key went into a cookie, out of the address bar, at the prefix
    await page.locator('#status', { hasText: 'Live' }).waitFor();
    const [cookie, ...others] = await context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({ path: PREFIX, httpOnly: true, sameSite: 'Strict' });

    // A patient with a fever arrives while the board is open: its card comes live, hematology paged.
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const base = { patientId: 'PFX-1', observedAt, source: { deviceId: 'ehr-1', kind: 'ehr' as const } };
    const messages: DeviceMessage[] = [
      { ...base, messageId: 'pfx-enrol', enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z' } },
      { ...base, messageId: 'pfx-fever', vitals: { temperatureC: 39.2 } },
    ];
    // Sent through the proxy too.
    for (const m of messages) expect((await post(publicUrl.slice(0, -1), m)).status).toBe(202);
    const card = page.locator('article.card', { hasText: 'patient PFX-1' });
    await card.locator('.grade', { hasText: 'CRS 1' }).waitFor({ timeout: 30_000 });

    // The board's own write through the proxy (its Origin is the public URL's).
    await card.getByRole('button', { name: /^Acknowledge the hematology page/ }).click();
    await page.locator('#ack-dialog[open]').waitFor();
    await page.locator('#ack-name').fill('Dr Prefix');
    await page.keyboard.press('Enter');
    await page.locator('#ack-dialog[open]').waitFor({ state: 'detached' });
    await card.getByText('No pages waiting.').waitFor();

    // The patient view, and its audit export under the prefix too.
    await card.getByRole('link', { name: /patient PFX-1/ }).click();
    await page.locator('#chart svg').waitFor();
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: /CSV/ }).click();
    expect((await download).url()).toBe(`${publicUrl}api/patients/PFX-1/audit?format=csv`);

    expect(outside).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);

  // Until 2026-12-05 a proxy that passes /wards itself (no trailing slash) to crs serve broke the board: the page
  // at /wards resolved its files and its API against the host's root, outside the prefix, and the printed link typed
  // without its slash (/wards?key=...) was sent on to the host's root, its cookie set for every path of the host.
  it('opens at the prefix without its trailing slash, when the proxy passes /wards itself', async () => {
    bare = 'pass';
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      const outside: string[] = []; // anything but /wards (asked by the test) and /wards/...
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.origin !== new URL(publicUrl).origin || (u.pathname !== PREFIX && !u.pathname.startsWith(`${PREFIX}/`)))
          outside.push(r.url());
      });
      const key = new URL(server.boardUrl).searchParams.get('key')!;
      const bareUrl = publicUrl.slice(0, -1); // http://host/wards
      await page.goto(`${bareUrl}?key=${key}`);
      expect(page.url()).toBe(publicUrl); // to the prefix, not the host's root
      await page.locator('#status', { hasText: 'Live' }).waitFor();
      expect((await context.cookies()).map((c) => c.path)).toEqual([PREFIX]);
      // Opened again at /wards, as typed: its files, its API and its live events under the prefix.
      await page.goto(bareUrl);
      await page.locator('#status', { hasText: 'Live' }).waitFor();
      expect(page.url()).toBe(publicUrl); // the address bar takes the slash: the board's links stay on the page
      await page.getByRole('link', { name: 'CRS / ICANS on-call board' }).click();
      await page.locator('#status', { hasText: 'Live' }).waitFor();
      expect(outside).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    } finally {
      bare = 'redirect';
    }
  }, 30_000);

  // The board's files and API are asked under the prefix wherever it is opened (its <base> is --public-url's path):
  // the listening address answers them there too.
  it('still opens at the listening address, at the prefix there', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const key = new URL(server.boardUrl).searchParams.get('key')!;
    await page.goto(`${direct}/?key=${key}`);
    expect(page.url()).toBe(`${direct}${PREFIX}/`);
    await page.locator('#status', { hasText: 'Live' }).waitFor();
    expect((await context.cookies()).map((c) => c.path)).toEqual([PREFIX]);
    await context.close();
  }, 30_000);

  it('acknowledges from the acknowledge link at the prefix', async () => {
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const base = { patientId: 'PFX-2', observedAt, source: { deviceId: 'ehr-1', kind: 'ehr' as const } };
    for (const m of [
      { ...base, messageId: 'pfx2-enrol', enrolment: { therapy: 'car-t' as const, infusedAt: '2026-01-08T08:00:00Z' } },
      { ...base, messageId: 'pfx2-fever', vitals: { temperatureC: 39.2 } },
    ])
      expect((await post(direct, m)).status).toBe(202);
    const ackUrl = await until(
      () =>
        server.lines
          .map((l) => JSON.parse(l) as { type: string; patientId?: string; ackUrl?: string })
          .find((e) => e.type === 'page' && e.patientId === 'PFX-2' && e.ackUrl)?.ackUrl,
      "PFX-2's page with its acknowledge link",
    );
    expect(ackUrl.startsWith(`${publicUrl}ack/`)).toBe(true);
    const page = await browser.newPage();
    expect((await page.goto(ackUrl))!.status()).toBe(200);
    await page.getByLabel('Your name (recorded with the time)').fill('Dr Phone');
    await page.getByRole('button', { name: 'Acknowledge: I am on it' }).click();
    await page.locator('h1', { hasText: 'Acknowledged' }).waitFor();
    await page.close();
  }, 30_000);
});
