// The on-call board on a 360 px phone, in real Chromium against the real `crs serve`: every time (with its zone),
// comparison and value with its unit on the list and on a patient's view is drawn on one line, as on the acknowledge
// page (one rule: shared/domain/unbroken.ts, which the server sends the board), and nothing scrolls sideways.
// Until 2026-12-06 a phone read "2026-" / "12-06 17:55 CET" on the board. Chromium is Debian's; playwright-core.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { narrowCourse, pieces, scrollsSideways } from '#test/support/unbroken.ts';
import { until } from '#test/support/until.ts';

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-phone-'));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ site: { timeZone: 'Europe/Paris' } }));
  server = await spawnServe(join(dir, 'data'), ['--config', config, '--page-lines']);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('the board on a 360 px phone', () => {
  it('keeps each time, comparison and value with its unit on one line, and does not scroll sideways', async () => {
    // Infused three days ago (the day since infusion in its place on the card).
    const infusedAt = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const messages = narrowCourse('PHONE-1', { infusedAt, ward: 'H4' });
    for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
    await until(
      () =>
        server.lines
          .map((l) => JSON.parse(l) as { type: string; patientId?: string; grade?: number })
          .some((e) => e.type === 'page' && e.patientId === 'PHONE-1' && e.grade === 3) || undefined,
      "PHONE-1's CRS 3 page",
    );

    const page = await browser.newPage({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    const broken = async (selector: string) => (await pieces(page, selector)).filter((p) => p.lines > 1 || !p.nowrap);

    await page.goto(server.boardUrl);
    const card = page.locator('article.card', { hasText: 'patient PHONE-1' });
    await card.waitFor();
    const listed = await pieces(page, 'body');
    expect(listed.some((p) => /^\d{4}-\d\d-\d\d \d\d:\d\d CES?T$/.test(p.text))).toBe(true);
    expect(await broken('body')).toEqual([]);
    expect(await scrollsSideways(page)).toBe(false);

    // The patient's view: every page with its reasons and next steps, the timeline's table, the audit trail.
    await card.getByRole('link').first().click();
    await page.locator('#d-table tr').first().waitFor({ state: 'attached' });
    await page.locator('.page .when').first().waitFor();
    const seen = (await pieces(page, 'main')).map((p) => p.text);
    expect(seen).toEqual(expect.arrayContaining(['38.8 °C', 'MAP < 65', '1-2 doses', '24 h', '0.1 mcg/kg/min']));
    expect(await broken('body')).toEqual([]);
    expect(await scrollsSideways(page)).toBe(false);

    // The acknowledge dialog's summary.
    await page
      .getByRole('button', { name: /^Acknowledge the ICU page/ })
      .first()
      .click();
    await page.locator('#ack-dialog[open]').waitFor();
    expect(await broken('#ack-dialog')).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
