// The board of a ward after a year, in real Chromium against the real `crs serve`: 300 patients discharged long
// ago (each paged once, de-escalated, discharged: quiet since) and 20 of now, all sent through the ingest. The list
// shows the 20 (those discharged 2 h ago among them, and the feverish ones' pages waiting), says how many it leaves
// out and why, and opens one of them by id (the patient view, as before); "← All patients" comes back to the list.
// Until 2026-12-05 it listed all 320, and built every card on each live refresh. Chromium is Debian's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser } from 'playwright-core';
import { launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOKEN, idle, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { wardHistory } from '#test/support/ward-history.ts';

const PAST = 300;
const CURRENT = 20;

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-left-out-'));
  server = await spawnServe(join(dir, 'data'), ['--max-patients', String(PAST + CURRENT + 10)]);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('the board after a year of a ward', () => {
  it('lists the current patients, says how many discharged ones it leaves out, and opens one by id', async () => {
    const messages = wardHistory({ past: PAST, current: CURRENT, now: Date.now() });
    // OLD-00123's SpO2 low without oxygen on its stay (a technical alert, paged) and back (its all-clear, sent).
    const normal = messages.findIndex((m) => m.messageId === 'OLD-00123-normal');
    const spo2 = (tag: string, minutes: number, value: number) => ({
      ...messages[normal]!,
      messageId: `OLD-00123-${tag}`,
      observedAt: new Date(Date.parse(messages[normal]!.observedAt) + minutes * 60_000).toISOString(),
      vitals: { spo2: value },
    });
    messages.splice(
      normal + 1,
      0,
      spo2('low-1', 10, 87),
      spo2('low-2', 15, 86),
      spo2('up-1', 20, 97),
      spo2('up-2', 25, 98),
    );
    for (let i = 0; i < messages.length; i += 100) {
      const res = await fetch(`${server.url}/v1/messages/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(messages.slice(i, i + 100)),
      });
      expect(res.status).toBe(202);
    }
    await idle(server);
    // OLD-00123's records past the retention, as the sweep drops them a month after its discharge (its pages stay).
    const db = new Database(join(dir, 'data', 'crs.db'), { timeout: 5000 });
    expect(db.prepare("DELETE FROM outbox WHERE patient_id = 'OLD-00123'").run().changes).toBeGreaterThan(0);
    db.close();

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(server.boardUrl);
    await page.locator('#counts', { hasText: new RegExp(`^${CURRENT} patients · 4 pages waiting`) }).waitFor();
    expect(await page.locator('article.card').count()).toBe(CURRENT);
    expect(await page.locator('article.card', { hasText: 'patient OLD-' }).count()).toBe(0);
    // Discharged 2 h ago: still listed, marked.
    expect(await page.locator('article.card', { hasText: 'monitoring ended (discharged)' }).count()).toBe(2);
    const leftOut = page.locator('#left-out');
    expect(await leftOut.isVisible()).toBe(true);
    expect(await page.locator('#left-out-text').textContent()).toBe(
      '300 patients are not listed: monitoring ended (a discharge) over 24 h ago, with no page, alert, grade or silence open.',
    );

    // One of them, by id, by keyboard.
    await page.getByLabel('Open a patient by id').fill(' OLD-00123 ');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/patient\/OLD-00123$/);
    const card = page.locator('article.card', { hasText: 'patient OLD-00123' });
    await card.waitFor();
    expect(await card.locator('p.meta').textContent()).toContain('monitoring ended (discharged)');
    // Its history is there: the fever's page to hematology and the de-escalation.
    await page.locator('li.page', { hasText: 'CRS grade 1' }).first().waitFor();
    // The grade the de-escalation fell from, from its pages once its record is gone (until 2026-12-07 left out).
    expect(await page.locator('li.page .title', { hasText: 'CRS grade 0' }).allTextContents()).toEqual([
      'CRS grade 0 (de-escalation from 1)',
    ]);
    // Its records past the retention: said so, its pages as recorded; never "not sent yet" (until 2026-12-07, and
    // later that day for its technical alert and all-clear).
    const groups = page.locator('li.page');
    expect(await groups.count()).toBeGreaterThan(0);
    expect(await page.locator('li.page.technical').count()).toBe(2);
    for (const g of await groups.all()) {
      const technical = (await g.getAttribute('class'))!.split(' ').includes('technical');
      expect(await g.locator('p.past-retention').textContent()).toBe(
        `${technical ? 'Sends' : 'Reasons, next steps and sends'} past the 30-day retention: crs audit export has them. The pages below are as recorded.`,
      );
      expect(await g.locator('.when').textContent()).toMatch(technical ? /^Raised / : /^First page opened /);
      const text = await g.textContent();
      for (const wrong of ['not sent yet', 'not paged yet', 'patient time', 'Why']) expect(text).not.toContain(wrong);
      expect(await g.locator('li.team-page').first().textContent()).toContain(': sends past the retention.');
    }
    await page.getByRole('link', { name: '← All patients' }).first().click();
    await page.locator('#counts', { hasText: new RegExp(`^${CURRENT} patients`) }).waitFor();
    expect(await page.locator('#left-out-text').textContent()).toMatch(/^300 patients are not listed/);

    // On a phone: the line and the form wrap inside the screen.
    await page.setViewportSize({ width: 390, height: 800 });
    const box = await leftOut.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});
