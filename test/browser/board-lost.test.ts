// The board says loudly when it has lost the server (docs/safety.md H15): the real `crs serve` stopped (SIGSTOP: hung,
// its connections open and silent) or killed, the board in real Chromium raises its banner, and takes it down when
// the server answers again. The server pings every second here (CRS_TEST_SSE_PING_MS), so the board's thresholds (3
// pings missed: the stream let go; 4: the banner) are 3 s and 4 s instead of 45 s and 60 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { launchChromium } from '#test/support/chromium.ts';

const PING_MS = 1000;
const ENV = { CRS_TEST_SSE_PING_MS: String(PING_MS) };

let dir: string;
let browser: Browser;
const servers: ServeProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-lost-'));
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  for (const s of servers) {
    s.child.kill('SIGCONT');
    await stop(s, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

async function serve(data: string, args: string[] = []): Promise<ServeProcess> {
  const s = await spawnServe(join(dir, data), args, ENV);
  servers.push(s);
  return s;
}

/** Opens the board live, and notes (page time) every time the lost-server banner is shown. */
async function openBoard(server: ServeProcess): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(server.boardUrl);
  await page.locator('#status', { hasText: 'Live' }).waitFor();
  await page.evaluate(`window.__shown = [];
    const lost = document.getElementById('server-lost');
    new MutationObserver(() => {
      if (!lost.hidden) window.__shown.push(performance.now());
    }).observe(lost, { attributes: true, attributeFilter: ['hidden'] });`);
  expect(await page.locator('#server-lost').isHidden()).toBe(true);
  return page;
}

/** Marks (page time) when the server is stopped, then waits for the banner; answers how long it took, ms. */
async function bannerAfter(page: Page, stopServer: () => void): Promise<number> {
  const stoppedAt = (await page.evaluate('performance.now()')) as number;
  stopServer();
  const banner = page.locator('#server-lost[role="alert"]');
  await banner.waitFor({ state: 'visible', timeout: 8 * PING_MS + 10_000 });
  const text = await banner.textContent();
  expect(text).toMatch(/The server has not answered since \d{4}-\d\d-\d\d \d\d:\d\d \S+\./);
  expect(text).toContain('Pages may not be going out');
  expect(text).toContain('downtime procedure: phone the teams');
  // The status line stays, and no longer says Live.
  await page.locator('#status', { hasText: 'Reconnecting…' }).waitFor();
  const shown = (await page.evaluate('window.__shown')) as number[];
  // Not before the server stopped: the last ping came at most a period before, and the banner waits for 4.
  expect(shown[0]! - stoppedAt).toBeGreaterThan(3 * PING_MS - 100);
  // Nor long after the 4 pings (it looks every quarter period); 2 pings of slack for a loaded machine.
  expect(shown[0]! - stoppedAt).toBeLessThan(6 * PING_MS);
  return shown[0]! - stoppedAt;
}

describe('the board when the server is lost', () => {
  it('a hung server (SIGSTOP, its stream open and silent): the banner, then gone when it answers again', async () => {
    const server = await serve('hung');
    const page = await openBoard(server);
    const ms = await bannerAfter(page, () => server.child.kill('SIGSTOP'));
    console.log(`hung server: banner ${Math.round(ms)} ms after SIGSTOP (pings every ${PING_MS} ms)`);
    server.child.kill('SIGCONT');
    await page.locator('#server-lost').waitFor({ state: 'hidden', timeout: 15_000 });
    await page.locator('#status', { hasText: 'Live' }).waitFor({ timeout: 15_000 });
    await page.close();
  });

  it('a dead server (SIGKILL): the banner, then gone when a server is back at its address', async () => {
    const server = await serve('dead');
    const page = await openBoard(server);
    const ms = await bannerAfter(page, () => server.child.kill('SIGKILL'));
    console.log(`dead server: banner ${Math.round(ms)} ms after SIGKILL (pings every ${PING_MS} ms)`);
    await server.exited;
    await serve('dead', ['--port', new URL(server.url).port]);
    await page.locator('#server-lost').waitFor({ state: 'hidden', timeout: 15_000 });
    await page.locator('#status', { hasText: 'Live' }).waitFor({ timeout: 15_000 });
    await page.close();
  });
});
