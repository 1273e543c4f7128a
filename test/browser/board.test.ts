// The on-call board in real Chromium against the real `crs serve`: a simulated patient escalates to CRS 3 while
// the board is open (live, no reload), the ICU is paged and its ladder climbs when nobody answers, the timeline
// opens, and the page is acknowledged with the keyboard, which stops the ladder; a silence is started and ended.
// Every time on the board is in the site's zone (Europe/Paris here, the browser being in New York), in the format
// of the pages. Chromium is Debian's (.ci/run installs it); playwright-core drives it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSiteTime } from '#domain/time.ts';
import { buildScenario } from '#sim/courses.ts';
import { anchorStart, play } from '#sim/player.ts';
import { INGEST_TOKEN, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const SPEED = 900;
const SITE_ZONE = 'Europe/Paris';
/** A time as the site reads it (2026-12-01 09:20 CET), in the site's zone whatever the browser's. */
const SITE_TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d CES?T`;

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-'));
  // A grade 3 page climbs a level every 10 s (two loops of the ICU's two levels: 40 s to act, even on a busy
  // machine); the course is from the recent past, so no stale-feed alerts here.
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      paging: { timeoutMinutes: { severe: 1 / 6, other: 0.5 }, staleFeedMinutes: 100_000 },
      site: { timeZone: SITE_ZONE },
    }),
  );
  server = await spawnServe(join(dir, 'data'), ['--config', config]);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

function watch(page: Page) {
  const problems: string[] = [];
  const external: string[] = [];
  let loads = 0;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url)) external.push(r.url());
  });
  page.on('load', () => loads++);
  return { problems, external, loads: () => loads };
}

describe('the on-call board', () => {
  it('shows a simulated patient escalate to CRS 3 with the ICU paged, opens the timeline, and acknowledges the page', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: 'America/New_York' });
    const seen = watch(page);
    await page.goto(server.boardUrl);
    expect(page.url()).toBe(`${server.url}/`); // the key went into a cookie, out of the address bar
    await page.locator('#status', { hasText: 'Live' }).waitFor();

    // The course starts while the board is open.
    const scenario0 = buildScenario({ seed: 5, start: 0, courses: ['crs'] });
    const scenario = buildScenario({
      seed: 5,
      start: anchorStart(Date.now(), scenario0.spanMs, SPEED),
      courses: ['crs'],
    });
    const patientId = scenario.patients[0]!.patientId;
    const abort = new AbortController();
    const sim = play(scenario, { url: server.url, token: INGEST_TOKEN, speed: SPEED, signal: abort.signal }).catch(
      () => undefined,
    );

    const card = page.locator('article.card', { hasText: `patient ${patientId}` });
    await card.locator('.grade', { hasText: 'CRS 1' }).waitFor({ timeout: 30_000 });
    await card.locator('.grade', { hasText: 'CRS 3' }).waitFor({ timeout: 30_000 });
    abort.abort();
    await sim;

    // Grade in text and colour; the ICU page with its reasons and actions; who was paged and who is next; all
    // without a reload.
    expect(await card.locator('.grade', { hasText: 'CRS 3' }).getAttribute('class')).toContain('g3');
    const grade3 = card.locator('li.page', { hasText: 'CRS grade 3 (escalation from 2)' });
    expect(await grade3.textContent()).toContain('norepinephrine');
    expect(await grade3.textContent()).toContain('Transfer to ICU.');
    const icu = grade3.locator('li.team-page', { hasText: 'ICU:' });
    expect(await icu.textContent()).toMatch(
      new RegExp(
        `Waiting\\s*ICU: paged ICU registrar ${SITE_TIME}\\. Next if nobody answers: ICU consultant at ${SITE_TIME}`,
      ),
    );
    // The reasons' times too (rendered by the server in the same format): never an RFC 3339 instant.
    expect(await grade3.textContent()).toMatch(new RegExp(`norepinephrine [^;]* at ${SITE_TIME}`));
    expect(await card.textContent()).not.toMatch(/\d\dT\d\d:\d\d/);
    expect(await grade3.locator('li.team-page', { hasText: 'Hematology:' }).textContent()).toContain(
      'paged hematology fellow',
    );
    // Nobody answers: the ICU consultant is paged 10 s later, live.
    await icu.filter({ hasText: 'then ICU consultant' }).waitFor({ timeout: 25_000 });
    expect(await card.textContent()).toMatch(/day \+1 since infusion/);
    expect(await card.textContent()).toMatch(/Last vitals .* ago|just now/);
    expect(seen.loads()).toBe(1);

    // The patient view and its timeline.
    await card.getByRole('link', { name: `Bed H4-01 · patient ${patientId}` }).click();
    await page.locator('#chart svg').waitFor();
    const titles = await page.locator('#chart svg title').allTextContents();
    expect(titles.some((t) => new RegExp(`^CRS grade 3 from ${SITE_TIME}$`).test(t))).toBe(true);
    expect(titles.some((t) => t.startsWith('norepinephrine 0.08 mcg/kg/min'))).toBe(true);
    expect(titles.some((t) => /^systolic \d+ at/.test(t))).toBe(true);
    expect(titles.some((t) => /^temperature 3[89]/.test(t))).toBe(true);
    expect(titles.some((t) => t.startsWith('tocilizumab'))).toBe(true);
    // The oxygen device in the domain's words (sent by the server, as reasons and pages say it), never its code.
    expect(titles.some((t) => new RegExp(`^room air from ${SITE_TIME}$`).test(t))).toBe(true);
    expect(titles.join(' ')).not.toContain('room_air');

    // Acknowledge both teams' pages with the keyboard only; each stops its ladder.
    for (const team of ['ICU', 'hematology']) {
      const button = page
        .locator('#d-card li.page', { hasText: 'CRS grade 3 (escalation from 2)' })
        .getByRole('button', { name: `Acknowledge the ${team} page: CRS grade 3` });
      await button.focus();
      await page.keyboard.press('Enter');
      await page.locator('#ack-dialog[open]').waitFor();
      await page.keyboard.press('Control+a');
      await page.keyboard.type('Dr Test');
      await page.keyboard.press('Enter');
      await page.locator('#ack-dialog[open]').waitFor({ state: 'detached' });
    }
    const ackedIcu = page
      .locator('#d-pages li.page', { hasText: 'CRS grade 3' })
      .locator('li.team-page', { hasText: 'ICU:' });
    await ackedIcu
      .filter({ hasText: new RegExp(`Acknowledged\\s*ICU: .* By Dr Test at ${SITE_TIME} via the board\\.`) })
      .waitFor();
    expect(await ackedIcu.textContent()).not.toContain('Next if nobody answers');
    await page.locator('#d-card', { hasText: 'No pages waiting.' }).waitFor();

    // The server recorded who, when (server time) and how, and nothing is pending on that ladder any more.
    const detail = (await (
      await fetch(`${server.url}/api/patients/${patientId}`, {
        headers: { authorization: `Bearer ${server.boardKey}` },
      })
    ).json()) as {
      pages: {
        grade: number;
        pages: {
          team: string;
          state: string;
          next: unknown;
          sent: unknown[];
          ack: { by: string; at: string; via: string } | null;
        }[];
      }[];
    };
    const acked = detail.pages.find((g) => g.grade === 3)!.pages.find((p) => p.team === 'icu')!;
    expect(acked).toMatchObject({ state: 'acknowledged', next: null, ack: { by: 'Dr Test', via: 'board' } });
    // The board writes exactly what the server's formatter writes (the pages, the acknowledge page).
    expect(await ackedIcu.textContent()).toContain(
      `By Dr Test at ${formatSiteTime(acked.ack!.at, SITE_ZONE)} via the board.`,
    );
    expect(Math.abs(Date.parse(acked.ack!.at) - Date.now())).toBeLessThan(60_000);

    // Back on the list, nothing of this patient is waiting any more.
    await page.getByRole('link', { name: '← All patients' }).click();
    await card.getByText('No pages waiting.').waitFor();
    expect(seen.problems).toEqual([]);
    expect(seen.external).toEqual([]);
    await page.close();
  }, 90_000);

  it('starts a silence for a patient and ends it, naming who did, with the grade 4 rule stated', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(server.boardUrl);
    const card = page.locator('article.card').first();
    await card.waitFor();
    const silence = card.getByRole('button', { name: /^Silence pages for/ });
    await silence.focus();
    await page.keyboard.press('Enter');
    await page.locator('#silence-dialog[open]').waitFor();
    expect(await page.locator('#silence-rule').textContent()).toContain('Pages of grade 4 are never held');
    await page.locator('#silence-reason').fill('transport to MRI');
    await page.locator('#silence-name').fill('Nurse Bea');
    await page.locator('#silence-minutes').selectOption('30');
    await page.locator('#silence-confirm').press('Enter');
    const item = card.locator('li.silence', { hasText: 'This patient silenced until' });
    await item.filter({ hasText: 'by Nurse Bea (transport to MRI)' }).waitFor();
    expect(await page.evaluate("document.activeElement && document.activeElement.getAttribute('data-key')")).toMatch(
      /^silence:/,
    );

    await item.getByRole('button', { name: /^End the silence/ }).click();
    await page.locator('#ack-dialog[open]').waitFor();
    await page.locator('#ack-name').fill('Nurse Bea');
    await page.keyboard.press('Enter');
    await item.waitFor({ state: 'detached' });
    const silences = (await (
      await fetch(`${server.url}/api/silences`, { headers: { authorization: `Bearer ${server.boardKey}` } })
    ).json()) as { silences: unknown[] };
    expect(silences.silences).toEqual([]);
    await page.close();
  }, 60_000);

  it('is readable on a phone: one column, no sideways scrolling', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(server.boardUrl);
    await page.locator('article.card').first().waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    expect(await page.locator('article.card').count()).toBeGreaterThan(0);
    await page.locator('article.card a').first().click();
    await page.locator('#chart svg').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    await page.close();
  }, 60_000);

  it('asks for the access key when opened without it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByText('This board needs its access key').waitFor();
    await context.close();
  });
});

describe('the paging path on the board (issue 10)', () => {
  it('shows a banner when the webhook refuses a record (parked), live, and clears it when the record is sent again', async () => {
    let refusing = true;
    const hook = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(refusing ? 422 : 204).end());
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const own = await spawnServe(
      join(dir, 'data-hook'),
      ['--webhook', `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`],
      { CRS_TEST_WEBHOOK_RETRY_MS: '20,100' },
    );
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(own.boardUrl);
      await page.locator('#status', { hasText: 'Live' }).waitFor();
      expect(await page.locator('#delivery-alerts').isHidden()).toBe(true);
      // Two days ago (the server refuses the future): the course's first grade change pages hematology.
      const scenario = buildScenario({
        seed: 5,
        start: Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000,
        courses: ['crs'],
      });
      for (const m of scenario.messages) {
        const res = await fetch(`${own.url}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify(m),
        });
        expect(res.status).toBe(202);
      }
      const banner = page.locator('#delivery-alerts');
      await banner.getByText(/lane webhook parked \d+ record\(s\) its receiver refused/).waitFor({ timeout: 20_000 });
      expect(await banner.getAttribute('role')).toBe('alert');
      refusing = false;
      const retried = await fetch(`${own.url}/api/outbox/retry`, {
        method: 'POST',
        headers: { authorization: `Bearer ${own.boardKey}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(((await retried.json()) as { retried: number }).retried).toBeGreaterThan(0);
      await banner.waitFor({ state: 'hidden', timeout: 20_000 });
    } finally {
      await page.close();
      await stop(own);
      await new Promise((r) => hook.close(r));
    }
  }, 60_000);
});
