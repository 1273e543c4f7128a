// The on-call board in real Chromium against the real `crs serve`: a simulated patient escalates to CRS 3 while
// the board is open (live, no reload), the ICU is paged and its ladder climbs when nobody answers, the timeline
// opens, and the page is acknowledged with the keyboard, which stops the ladder; a silence is started and ended.
// Every time on the board is in the site's zone (Europe/Paris here, the browser being in New York), in the format
// of the pages. Chromium is Debian's (.ci/run installs it); playwright-core drives it.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { closeDialog, launchChromium, textMatching } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSiteTime, siteDay } from '#domain/time.ts';
import { buildScenario } from '#sim/courses.ts';
import { anchorStart, play } from '#sim/player.ts';
import { INGEST_TOKEN, post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { enrol, msg } from '#test/support/messages.ts';

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
      paging: { timeoutMinutes: { severe: 1 / 6, other: 0.5 }, staleFeedMinutes: LONGEST_SETTING_MINUTES },
      site: { timeZone: SITE_ZONE },
    }),
  );
  server = await spawnServe(join(dir, 'data'), ['--config', config]);
  browser = await launchChromium();
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

/** A request to the board's API with its key. */
const api = (path: string, init: RequestInit = {}) =>
  fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${server.boardKey}`, 'content-type': 'application/json' },
  });

/**
 * Enrols a patient of the test's own, infused two days ago, with a heart rate a minute ago: its card is on the board
 * whatever ran before (alone, the server has no patient).
 */
async function admit(patientId: string): Promise<void> {
  const observedAt = new Date(Date.now() - 60_000).toISOString();
  const infusedAt = new Date(Date.now() - 2 * 86_400_000).toISOString();
  for (const m of [
    { ...enrol(patientId, 0, { infusedAt }), observedAt },
    { ...msg(patientId, 0, { vitals: { heartRate: 80 } }), observedAt },
  ])
    expect((await post(server.url, m)).status).toBe(202);
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
    // Each team's page as sent: the pager stores a page before its first send, and a refresh between the two drew it
    // "not sent yet" (the sent state comes a refresh later), so the page is read until it reads as sent.
    const icu = grade3.locator('li.team-page', { hasText: 'ICU:' });
    await textMatching(
      icu,
      new RegExp(
        `Waiting\\s*ICU: paged ICU registrar ${SITE_TIME}\\. Next if nobody answers: ICU consultant at ${SITE_TIME}`,
      ),
    );
    // The reasons' times too (rendered by the server in the same format): never an RFC 3339 instant.
    expect(await grade3.textContent()).toMatch(new RegExp(`norepinephrine [^;]* at ${SITE_TIME}`));
    expect(await card.textContent()).not.toMatch(/\d\dT\d\d:\d\d/);
    await textMatching(grade3.locator('li.team-page', { hasText: 'Hematology:' }), /paged hematology fellow/);
    // Nobody answers: the ICU consultant is paged 10 s later, live.
    await icu.filter({ hasText: 'then ICU consultant' }).waitFor({ timeout: 25_000 });
    // Day +1 since infusion as the site counts calendar days in its zone; +2 once the course has passed midnight.
    const day = (iso: string) => siteDay(Date.parse(iso), SITE_ZONE);
    const infusedAt = scenario.messages.find((m) => m.patientId === patientId && m.enrolment)!.enrolment!.infusedAt!;
    const days = new Set(
      scenario.messages.filter((m) => m.patientId === patientId).map((m) => day(m.observedAt) - day(infusedAt)),
    );
    expect([...days].every((d) => d === 1 || d === 2)).toBe(true);
    expect(await card.textContent()).toMatch(new RegExp(`day \\+(${[...days].join('|')}) since infusion`));
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
      await closeDialog(page, () => page.keyboard.press('Enter'));
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
    await admit('SIL1');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(server.boardUrl);
    const card = page.locator('article.card', { hasText: 'patient SIL1' });
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

    await item.getByRole('button', { name: /^End silence/ }).click();
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

  it('says a grade change a silence holds was not paged yet, and when it was paged once the silence ends', async () => {
    // Until 2026-12-06 the grade change's line read "paged <time>" while its only page was held, sent to nobody.
    await admit('SIL3');
    const board = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) });
    const made = await board('/api/silences', {
      patientId: 'SIL3',
      minutes: 30,
      reason: 'transport to MRI',
      by: 'Bea',
    });
    expect(made.status).toBe(201);
    const { silence } = (await made.json()) as { silence: { silenceId: string } };
    const observedAt = new Date(Date.now() - 30_000).toISOString();
    expect((await post(server.url, { ...msg('SIL3', 0, { vitals: { temperatureC: 39 } }), observedAt })).status).toBe(
      202,
    );
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(server.boardUrl);
    const group = page
      .locator('article.card', { hasText: 'patient SIL3' })
      .locator('li.page', { hasText: 'CRS grade 1' });
    await group.locator('li.team-page', { hasText: 'not sent yet' }).waitFor();
    expect(await group.locator('.when').textContent()).toMatch(/\(patient time\) · held by a silence, not paged yet$/);

    expect((await board(`/api/silences/${silence.silenceId}/end`, { by: 'Bea' })).status).toBe(200);
    await group.locator('li.team-page', { hasText: 'paged hematology fellow' }).waitFor();
    const sentAt = (await group.locator('li.team-page').textContent())!.match(/hematology fellow (.*? CES?T)/)![1]!;
    expect(await group.locator('.when').textContent()).toMatch(new RegExp(` · paged ${sentAt}$`));
    await page.close();
  }, 60_000);

  // Until 2026-12-05 the board listed such a silence with no way to end it (crs silence end and the API could).
  it("ends a silence whose stored item cannot be read, asking the name afresh, and audits it in its patient's trail", async () => {
    await admit('USIL1');
    const made = (await (
      await api('/api/silences', {
        method: 'POST',
        body: JSON.stringify({ patientId: 'USIL1', minutes: 30, reason: 'transport to MRI', by: 'Nurse Bea' }),
      })
    ).json()) as { silence: { silenceId: string } };
    const id = made.silence.silenceId;
    const db = new Database(join(dir, 'data', 'crs.db'), { timeout: 5000 });
    db.prepare('UPDATE silences SET body = ? WHERE silence_id = ?').run('{"scope":', id);
    db.close();

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const seen = watch(page);
    // Named on its patient's view too, with the button.
    await page.goto(server.boardUrl);
    await page.evaluate(`location.hash = '#/patient/USIL1'`);
    await page
      .locator('#d-card li.unreadable', { hasText: `Silence ${id} of patient USIL1` })
      .getByRole('button', { name: `End silence ${id} (its stored record cannot be read)` })
      .waitFor();
    await page.evaluate(`location.hash = '#/'`);
    const item = page.locator('#unreadable li.unreadable', { hasText: `Silence ${id}` });
    await item.waitFor();
    expect(await item.locator('.unreadable-text').textContent()).toBe(
      `Silence ${id} of patient USIL1: its stored record cannot be read (not JSON); it holds nothing. End it, or an operator can mend it.`,
    );
    // The name dialog, empty: a name typed for an earlier action is not reused.
    await page.evaluate(`document.getElementById('ack-name').value = 'Someone Else'`);
    await item.getByRole('button', { name: `End silence ${id} (its stored record cannot be read)` }).click();
    await page.locator('#ack-dialog[open]').waitFor();
    expect(await page.locator('#ack-title').textContent()).toBe('End silence');
    expect(await page.locator('#ack-summary').textContent()).toBe(
      `Silence ${id} of patient USIL1: its stored record cannot be read (not JSON). It holds nothing; ended, it is no longer listed.`,
    );
    expect(await page.locator('#ack-name').inputValue()).toBe('');
    await page.keyboard.press('Enter'); // refused without a name: nothing is sent
    expect(await page.evaluate(`document.getElementById('ack-name').validity.valueMissing`)).toBe(true);
    expect(await page.locator('#ack-dialog').getAttribute('open')).toBe('');
    await page.locator('#ack-name').fill('Op Al');
    await page.keyboard.press('Enter');
    await item.waitFor({ state: 'detached' });
    await page.locator('#announcer', { hasText: 'Silence ended by Op Al.' }).waitFor();
    const silences = (await (await api('/api/silences')).json()) as { unreadable: unknown[] };
    expect(silences.unreadable).toEqual([]);
    const trail = (await (await api('/api/patients/USIL1/audit?format=ndjson')).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; text: string });
    expect(trail.filter((e) => e.type === 'silence').map((e) => e.text)).toEqual([
      expect.stringMatching(/^silence of patient USIL1 by Nurse Bea from /),
      `silence ${id} ended by Op Al (its stored item cannot be read: not JSON)`,
    ]);
    expect(seen.problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('is readable on a phone: one column, no sideways scrolling', async () => {
    await admit('PH1');
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(server.boardUrl);
    const card = page.locator('article.card', { hasText: 'patient PH1' });
    await card.waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    expect(await page.locator('article.card').count()).toBeGreaterThan(0);
    // A thumb's target: every link and button 44 px tall at least. Until 2026-12-06 "Silence a team…", "Silence…"
    // and "End monitoring…" were 36 px on a phone, next to each other, and the patient's link in the card's
    // heading (the way into the patient) about 20 px.
    await card.locator('button[data-key="end-monitoring:PH1"]').waitFor();
    const shortTargets = `[...document.querySelectorAll('a, button')].filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 44).map((b) => b.textContent + ' ' + b.getBoundingClientRect().height)`;
    expect(await page.evaluate(shortTargets)).toEqual([]);
    await card.locator('a').first().click();
    await page.locator('#chart svg').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    expect(await page.evaluate(shortTargets)).toEqual([]);
    await page.close();
    // A mouse on a wide screen keeps the denser layout: the heading's link is its line of text.
    const desk = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await desk.goto(server.boardUrl);
    const link = desk.locator('article.card', { hasText: 'patient PH1' }).locator('h3 a');
    expect((await link.boundingBox())!.height).toBeLessThan(30);
    await desk.close();
  }, 60_000);

  it('stays one column on a phone with the longest id and labels a device may send', async () => {
    // 64 characters of id, 32 of bed and ward, 64 of product (the contract's limits), with no space or hyphen to
    // break at: an OID-style id of a hospital's MPI. Until 2026-12-05 the card grew to 816 px on a 390 px phone.
    const id = 'MPI:2.16.840.1.113883.3.72.5.9.1:'.padEnd(64, '0');
    const bed = 'OncologyTowerB.H4.Room12.Bed0003';
    const ward = 'HaematologyOncologyStemCellUnit4';
    const product = 'lisocabtagene.maraleucel.lot.2026.11.30.'.padEnd(64, '7');
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const infusedAt = new Date(Date.now() - 2 * 86_400_000).toISOString();
    for (const m of [
      { ...enrol(id, 0, { infusedAt, bed, ward, product }), messageId: 'long-enrol', observedAt },
      { ...msg(id, 0, { vitals: { heartRate: 80, temperatureC: 39.1 } }, 'long-vitals'), observedAt },
    ]) {
      const res = await post(server.url, { ...m, source: { deviceId: 'mon-long', kind: 'monitor' } });
      expect(res.status, await res.text()).toBe(202);
    }
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(server.boardUrl);
    const card = page.locator('article.card', { hasText: `patient ${id}` });
    await card.locator('li.page', { hasText: 'CRS grade 1' }).waitFor();
    const oneColumn = 'document.documentElement.scrollWidth <= document.documentElement.clientWidth';
    expect(await page.evaluate(oneColumn)).toBe(true);
    // Nothing of it outside its card: the whole id and bed are read without scrolling sideways.
    const boxOf = async (selector: string) => (await page.locator(selector).first().boundingBox())!;
    const box = await card.boundingBox();
    for (const inner of [card.locator('h3'), card.locator('p.meta')]) {
      const b = (await inner.boundingBox())!;
      expect(b.x + b.width).toBeLessThanOrEqual(box!.x + box!.width);
      expect(await inner.evaluate((e) => e.scrollWidth <= e.clientWidth)).toBe(true);
    }
    expect(await card.locator('h3').textContent()).toBe(`Bed ${bed} · patient ${id}`);

    await card.locator('h3 a').click();
    await page.locator('#chart svg').waitFor();
    expect(await page.evaluate(oneColumn)).toBe(true);
    const heading = await boxOf('#d-card h2');
    expect(heading.x + heading.width).toBeLessThanOrEqual(390);
    await page.close();
  }, 60_000);

  it('asks for the access key when opened without it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByText('This board needs its access key').waitFor();
    await context.close();
  });

  it('stays open beside the board of another crs serve on the same machine, in the same browser', async () => {
    // Cookies ignore ports: until 2026-12-05 both servers set "crs_board", so opening the second board's link
    // logged the first board out ("No access key") at its next request, and back.
    await admit('TWO1');
    const other = await spawnServe(join(dir, 'data-other'));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const first = await context.newPage();
      await first.goto(server.boardUrl);
      await first.locator('article.card', { hasText: 'patient TWO1' }).waitFor();
      const second = await context.newPage();
      await second.goto(other.boardUrl);
      await second.locator('#status', { hasText: 'Live' }).waitFor();
      const cookies = await context.cookies();
      expect(cookies.map((c) => [c.httpOnly, c.sameSite])).toEqual([
        [true, 'Strict'],
        [true, 'Strict'],
      ]);
      expect(new Set(cookies.map((c) => c.name)).size).toBe(2);
      // Each board still reads its own server.
      await first.reload();
      await first.locator('article.card', { hasText: 'patient TWO1' }).waitFor();
      await first.locator('#status', { hasText: 'Live' }).waitFor();
      await second.reload();
      await second.locator('#status', { hasText: 'Live' }).waitFor();
      // "Live" is the event stream's, which can open before the list is drawn: the count of cards waits for the list.
      await second.locator('#counts', { hasText: /^0 patients/ }).waitFor();
      expect(await second.locator('article.card', { hasText: 'patient TWO1' }).count()).toBe(0);
    } finally {
      await context.close();
      await stop(other);
    }
  }, 60_000);

  it('says when a patient is not on this server, and shows the list again when asked', async () => {
    // A link to a patient this server does not know (a typo, another site's server, a new data directory). Until
    // 2026-12-05 the server's 404 (which carries no server time) threw in the board: "← All patients" left it blank
    // for good, its status still saying "Live".
    await admit('BACK1');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const seen = watch(page);
    await page.goto(server.boardUrl);
    await page.locator('article.card', { hasText: 'patient BACK1' }).waitFor();
    await page.evaluate(`location.hash = '#/patient/NOT-HERE'`);
    await page.locator('#main .notice', { hasText: 'No patient NOT-HERE.' }).waitFor();
    await page.getByRole('link', { name: '← All patients' }).click();
    await page.locator('article.card', { hasText: 'patient BACK1' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toMatch(new RegExp(`^Live · data as of ${SITE_TIME}$`));
    // The browser reports the 404 itself; nothing threw.
    expect(seen.problems.filter((p) => !p.includes('status of 404'))).toEqual([]);
    await page.close();
  }, 30_000);

  it('opened at a patient address cut short (a broken %-escape), says there is no such patient and goes on', async () => {
    // A link copied or wrapped in a message can lose its end: ".../#/patient/MPI%3A0012%3". Until 2026-12-05 the
    // board stayed blank at "Connecting…" (the address threw), and stayed so when the list was asked for.
    await admit('CUT1');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const seen = watch(page);
    await page.goto(`${server.boardUrl}#/patient/CUT1%3`);
    await page.locator('#main .notice', { hasText: 'No patient CUT1%3.' }).waitFor({ timeout: 10_000 });
    await page.locator('#status', { hasText: 'Live' }).waitFor();
    await page.getByRole('link', { name: '← All patients' }).click();
    await page.locator('article.card', { hasText: 'patient CUT1' }).waitFor();
    // The browser reports the 404 itself; nothing threw.
    expect(seen.problems.filter((p) => !p.includes('status of 404'))).toEqual([]);
    await page.close();
  }, 30_000);
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

// The board's own display against fixed API answers (the page intercepts /api/*; the server only serves the page), so
// that each rule of what a clinician reads is checked exactly: the grade's colour, the flags on a vital, the state of
// a page and who it goes to, what a silence sends, the order of the list and its live updates, the timeline's bands
// and hours. The event stream is a stand-in the test drives (window.__es), so an update comes only when sent.
type Json = Record<string, unknown>;
const FAKE_EVENTS = `
  class FakeEventSource extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.readyState = 0;
      window.__es = this;
      setTimeout(() => { this.readyState = 1; if (this.onopen) this.onopen({}); }, 0);
    }
    close() { this.readyState = 2; }
    emit(type, data) { this.dispatchEvent(new MessageEvent(type, { data: data || '{}' })); }
  }
  FakeEventSource.CONNECTING = 0; FakeEventSource.OPEN = 1; FakeEventSource.CLOSED = 2;
  window.EventSource = FakeEventSource;
`;
const MIN = 60_000;
const NOW = Math.floor(Date.now() / MIN) * MIN;
const at = (minutesAgo: number) => new Date(NOW - minutesAgo * MIN).toISOString();
const site = (iso: string) => formatSiteTime(iso, SITE_ZONE);
const PAGING_INFO = { teams: ['hematology', 'icu', 'neurology', 'radiology', 'bedside'], unsilenceableFromGrade: 4 };

function patientFixture(id: string, o: Json = {}): Json {
  return {
    patientId: id,
    bed: `B-${id}`,
    ward: 'H4',
    therapy: 'car-t',
    product: 'axi-cel',
    infusedAt: at(3 * 24 * 60),
    dayPostInfusion: 3,
    clock: at(5),
    updatedAt: at(5),
    scheme: 'ASTCT 2019',
    crs: { grade: 0, reasons: [] },
    icans: { grade: 0, reasons: [] },
    vitals: { heartRate: { value: 80, at: at(5) } },
    lastVitalsAt: at(5),
    oxygen: null,
    vasopressors: null,
    neuro: null,
    limits: { feverC: 38, systolicBelow: 90, mapBelow: 65 },
    paging: [],
    waiting: 0,
    silences: [],
    monitoringEnded: null,
    ...o,
  };
}
function teamPage(team: string, state: string, o: Json = {}): Json {
  return {
    pageId: `pg-${team}-${state}`,
    team,
    status: state === 'held' ? 'waiting' : state,
    state,
    role: `${team} fellow`,
    level: 1,
    levels: 2,
    round: 1,
    loops: 1,
    sent: [{ role: `${team} fellow`, level: 1, round: 1, reason: 'initial', at: at(20) }],
    next: null,
    exhaustsAt: null,
    heldBy: null,
    ack: null,
    closedAt: null,
    ...o,
  };
}
function group(o: Json): Json {
  return {
    notificationId: 'n-1',
    subject: 'crs',
    kind: 'escalation',
    technical: false,
    grade: 1,
    fromGrade: 0,
    summary: '',
    reasons: ['fever 38.4 °C'],
    actions: [],
    at: at(25),
    triggeredAt: at(20),
    current: true,
    attention: true,
    pages: [],
    ...o,
  };
}
function context(o: Json = {}): Json {
  return {
    serverTime: new Date(NOW).toISOString(),
    timeZone: SITE_ZONE,
    paging: PAGING_INFO,
    oxygenDeviceNames: { room_air: 'room air', nasal_cannula: 'nasal cannula' },
    ...o,
  };
}
function listOf(all: Json[], offset = 0, o: Json = {}): Json {
  return context({
    scheme: 'ASTCT 2019',
    silences: [],
    total: all.length,
    offset,
    limit: 50,
    waiting: all.reduce((n, p) => n + (p.waiting as number), 0),
    wards: [],
    patients: all.slice(offset, offset + 50),
    ...o,
  });
}

interface Fake {
  list: (offset: number) => Json;
  /** The list's status (200 unless said): a failing server answers 500 {"error": "internal error"}. */
  listStatus?: () => number;
  detail?: (id: string, hours: number) => Json | undefined;
  outbox?: () => Json;
  answer?: (path: string, body: Json) => { status: number; body: Json };
  /** Holds a GET's answer until the promise settles (an answer that comes late). */
  hold?: (path: string) => Promise<void> | undefined;
  gets: string[];
  posts: { path: string; body: Json }[];
}
function fake(o: Partial<Fake> & Pick<Fake, 'list'>): Fake {
  return { gets: [], posts: [], ...o };
}

async function boardWith(fx: Fake, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.addInitScript(FAKE_EVENTS);
  await page.route(/\/api\//, async (route) => {
    const req = route.request();
    const url = new URL(req.url());
    const json = (status: number, body: unknown) =>
      route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
    if (req.method() === 'POST') {
      const body = JSON.parse(req.postData() ?? '{}') as Json;
      fx.posts.push({ path: url.pathname, body });
      const a = fx.answer?.(url.pathname, body) ?? { status: 200, body: {} };
      return json(a.status, a.body);
    }
    fx.gets.push(url.pathname + url.search);
    await fx.hold?.(url.pathname);
    if (url.pathname === '/api/outbox') return json(200, fx.outbox?.() ?? { alerts: [] });
    if (url.pathname === '/api/patients') {
      const status = fx.listStatus?.() ?? 200;
      if (status !== 200) return json(status, { error: 'internal error' }); // as crs serve answers: no server time
      return json(200, fx.list(Number(url.searchParams.get('offset') ?? 0)));
    }
    const m = /^\/api\/patients\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const d = fx.detail?.(decodeURIComponent(m[1]!), Number(url.searchParams.get('hours')));
      return d ? json(200, d) : json(404, { error: 'no such patient' }); // as crs serve answers: no server time
    }
    return json(404, { error: 'not in the fixture' });
  });
  await page.goto(server.boardUrl);
  await page.locator('#status', { hasText: 'Live' }).waitFor();
  return page;
}
const emit = (page: Page, type: string, data = '{}') =>
  page.evaluate(`window.__es.emit(${JSON.stringify(type)}, ${JSON.stringify(data)})`);
const QUICK = { timeout: 5_000 };

describe('the board display, pinned by a mutation run', () => {
  it('shows each grade in its own colour, the worst on the card, and flags a vital at its limit as the rules do', async () => {
    const a = patientFixture('A', {
      crs: { grade: 1, reasons: ['fever 38 °C'] },
      icans: { grade: 4, reasons: ['ICE 0'] },
      vitals: {
        temperatureC: { value: 38, at: at(5) },
        systolicBP: { value: 90, at: at(5) },
        diastolicBP: { value: 50, at: at(5) },
        meanArterialPressure: { value: 65, at: at(5) },
      },
      neuro: { value: 'unarousable', at: at(5), iceScore: 0 },
      vasopressors: { value: [], at: at(5) },
    });
    const b = patientFixture('B', {
      crs: { grade: 2, reasons: ['hypotension'] },
      icans: { grade: 1, reasons: ['ICE 8'] },
      vitals: { systolicBP: { value: 120, at: at(5) }, meanArterialPressure: { value: 64, at: at(5) } },
    });
    const page = await boardWith(fake({ list: (off) => listOf([a, b], off) }));
    const cardA = page.locator('article.card', { hasText: 'patient A' });
    const cardB = page.locator('article.card', { hasText: 'patient B' });
    await cardB.waitFor();
    expect(await cardA.getAttribute('class')).toContain('sev-4'); // ICANS 4 with CRS 1: the worst
    expect(await cardA.locator('.grade', { hasText: 'ICANS 4' }).getAttribute('class')).toBe('grade g4');
    expect(await cardA.locator('.grade', { hasText: 'CRS 1' }).getAttribute('class')).toBe('grade g1');
    // 38.0 °C is a fever (>= 38); a systolic of 90 and a MAP of 65 are not hypotension (< 90, < 65).
    expect(await cardA.locator('ul.vitals li', { hasText: '38 °C' }).getAttribute('class')).toBe('high');
    expect(await cardA.locator('ul.vitals li', { hasText: 'mmHg' }).getAttribute('class')).toBeNull();
    expect(await cardB.locator('ul.vitals li', { hasText: 'mmHg' }).getAttribute('class')).toBe('low'); // MAP 64
    // An ICE score of 0 is shown (the worst, not "none"); an empty pressor list is no pressor.
    expect(await cardA.locator('ul.vitals').textContent()).toContain('ICE 0/10, unarousable');
    expect(await cardA.locator('ul.vitals').textContent()).not.toContain('Pressors');
    // Both conditions' reasons, grade 1 included.
    expect(await cardA.locator('p.reasons').textContent()).toBe('CRS: fever 38 °C — ICANS: ICE 0');
    expect(await cardB.locator('p.reasons').textContent()).toBe('CRS: hypotension — ICANS: ICE 8');
    await page.close();
  }, 30_000);

  it("keeps the sickest patient's observations on a phone: oxygen and two pressors wrap inside the card", async () => {
    // Until 2026-12-05 each observation was kept on one line: a patient on two pressors ran 200 px past a 390 px
    // phone's screen, the doses out of sight.
    const p = patientFixture('SICK', {
      crs: { grade: 4, reasons: ['norepinephrine and vasopressin infusing'] },
      vitals: {
        temperatureC: { value: 39.5, at: at(3) },
        systolicBP: { value: 78, at: at(3) },
        meanArterialPressure: { value: 55, at: at(3) },
      },
      oxygen: { value: 'nasal_cannula', at: at(3), flowLpm: 6, fio2: 0.44, forComfort: false },
      vasopressors: {
        value: [
          { drug: 'norepinephrine', dose: 0.2, unit: 'mcg/kg/min' },
          { drug: 'vasopressin', dose: 0.04, unit: 'units/min' },
        ],
        at: at(3),
      },
    });
    const page = await boardWith(fake({ list: (off) => listOf([p], off) }), { width: 390, height: 844 });
    const card = page.locator('article.card', { hasText: 'patient SICK' });
    const pressors = card.locator('.vitals li', { hasText: 'Pressors' });
    await pressors.waitFor();
    expect(await pressors.textContent()).toContain('vasopressin 0.04 units/min');
    const c = (await card.boundingBox())!;
    for (const li of await card.locator('.vitals li').all()) {
      const b = (await li.boundingBox())!;
      expect(b.x + b.width).toBeLessThanOrEqual(c.x + c.width);
    }
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    await page.close();
  }, 30_000);

  it('marks vitals older than 30 minutes stale as soon as the card is drawn', async () => {
    const old = patientFixture('OLD', { lastVitalsAt: at(45) });
    const recent = patientFixture('NEW', { lastVitalsAt: at(20) });
    const page = await boardWith(fake({ list: (off) => listOf([old, recent], off) }));
    const stale = page.locator('article.card', { hasText: 'patient OLD' }).locator('.age', { hasText: 'Last vitals' });
    await stale.waitFor();
    expect(await stale.textContent()).toBe(`Last vitals ${site(at(45))} (45 min ago, stale)`);
    expect(await stale.getAttribute('class')).toBe('age stale');
    const fresh = page.locator('article.card', { hasText: 'patient NEW' }).locator('.age', { hasText: 'Last vitals' });
    expect(await fresh.textContent()).toBe(`Last vitals ${site(at(20))} (20 min ago)`);
    expect(await fresh.getAttribute('class')).toBe('age');
    await page.close();
  }, 30_000);

  // Found by the hazard log (docs/safety.md, H9): ICANS 0 with no neuro field ever charted (a monitor sends none)
  // looked like ICANS 0 assessed, and an ICE score of yesterday like one of now.
  it('says when the neuro assessment was last charted, and that there is none yet', async () => {
    const assessed = patientFixture('NEURO', { neuro: { value: 'alert', at: at(9 * 60), iceScore: 10 } });
    const page = await boardWith(fake({ list: (off) => listOf([assessed, patientFixture('NONE')], off) }));
    const card = (id: string) => page.locator('article.card', { hasText: `patient ${id}` }).locator('.age');
    const last = card('NEURO').filter({ hasText: 'neuro' });
    await last.waitFor();
    expect(await last.textContent()).toBe(` · Last neuro assessment ${site(at(9 * 60))} (9 h 0 min ago)`);
    expect(await card('NONE').filter({ hasText: 'neuro' }).textContent()).toBe(' · No neuro assessment yet');
    await page.close();
  }, 30_000);

  it('marks a patient whose monitoring ended, with the reason and the time, and no other', async () => {
    const gone = patientFixture('GONE', { monitoringEnded: { reason: 'transferred', at: at(40) } });
    const here = patientFixture('HERE');
    const page = await boardWith(fake({ list: (off) => listOf([here, gone], off) }));
    const cardGone = page.locator('article.card', { hasText: 'patient GONE' });
    const cardHere = page.locator('article.card', { hasText: 'patient HERE' });
    await cardGone.waitFor();
    expect(await cardGone.locator('p.meta').textContent()).toContain(`monitoring ended (transferred) ${site(at(40))}`);
    expect(await cardGone.getAttribute('class')).toContain('ended');
    expect(await cardHere.locator('p.meta').textContent()).not.toContain('monitoring ended');
    expect(await cardHere.getAttribute('class')).not.toContain('ended');
    await page.close();
  }, 30_000);

  it("counts ages on the server's clock, not the browser's", async () => {
    const serverNow = NOW + 3 * 60 * MIN; // the browser's clock is 3 h behind the server's
    const vitals = new Date(serverNow - 20 * MIN).toISOString();
    const p = patientFixture('A', { lastVitalsAt: vitals });
    const page = await boardWith(
      fake({ list: (off) => listOf([p], off, { serverTime: new Date(serverNow).toISOString() }) }),
    );
    const age = page.locator('article.card .age', { hasText: 'Last vitals' });
    await age.waitFor();
    expect(await age.textContent()).toBe(`Last vitals ${site(vitals)} (20 min ago)`);
    await page.close();
  }, 30_000);

  it('says so when the server fails, keeping the last list and the time of its data, and goes live again', async () => {
    // Until 2026-12-05 a 500 left the status at "Live" (the answer has no server time, and the status line threw on
    // it) and every age on the board read "NaN days ago" at the next tick.
    let failing = false;
    const p = patientFixture('A', { lastVitalsAt: at(45) });
    const page = await boardWith(fake({ list: (off) => listOf([p], off), listStatus: () => (failing ? 500 : 200) }));
    const status = page.locator('#status');
    await page.locator('article.card', { hasText: 'patient A' }).waitFor();
    const asOf = `data as of ${site(new Date(NOW).toISOString())}`;
    expect(await status.textContent()).toBe(`Live · ${asOf}`);
    failing = true;
    await emit(page, 'patients');
    await status.filter({ hasText: 'Server error' }).waitFor(QUICK);
    expect(await status.textContent()).toBe(`Server error (HTTP 500): showing the last answer · ${asOf}`);
    expect(await page.locator('article.card', { hasText: 'patient A' }).textContent()).toContain(
      `Last vitals ${site(at(45))} (45 min ago, stale)`,
    );
    failing = false;
    await emit(page, 'patients');
    await status.filter({ hasText: /^Live/ }).waitFor(QUICK);
    await page.close();
  }, 30_000);

  it("never shows a late answer for a patient left under another patient's address", async () => {
    let release = () => {};
    const late = new Promise<void>((r) => {
      release = r;
    });
    const detail = (id: string): Json =>
      context({
        patient: patientFixture(id),
        pages: [],
        timeline: {
          from: at(600),
          to: at(5),
          feverThresholdC: 38,
          hypotension: { systolicBelow: 90, mapBelow: 65 },
          points: [],
        },
      });
    const fx = fake({
      list: (off) => listOf([patientFixture('A'), patientFixture('B')], off),
      detail,
      hold: (path) => (path === '/api/patients/A' ? late : undefined),
    });
    const page = await boardWith(fx);
    await page.getByRole('link', { name: 'Bed B-A · patient A' }).click();
    await page.waitForFunction("location.hash === '#/patient/A'");
    await page.evaluate(`
      window.__wrong = false;
      new MutationObserver(() => {
        const c = document.querySelector('#d-card');
        if (location.hash === '#/patient/B' && c && c.textContent.includes('patient A')) window.__wrong = true;
      }).observe(document.getElementById('main'), { childList: true, subtree: true });
      location.hash = '#/patient/B';
    `);
    release();
    await page.locator('#d-card', { hasText: 'patient B' }).waitFor(QUICK);
    expect(await page.evaluate('window.__wrong')).toBe(false);
    await page.close();
  }, 30_000);

  it('puts a bed label and reason text in as text, never as markup', async () => {
    const p = patientFixture('X', {
      bed: '<img id="inj1" src="x">',
      crs: { grade: 1, reasons: ['<b id="inj2">fever</b>'] },
    });
    const page = await boardWith(fake({ list: (off) => listOf([p], off) }));
    const c = page.locator('article.card', { hasText: 'patient X' });
    await c.waitFor();
    expect(await c.locator('h3').textContent()).toBe('Bed <img id="inj1" src="x"> · patient X');
    expect(await page.locator('#inj1, #inj2').count()).toBe(0);
    await page.close();
  }, 30_000);

  it('applies live updates: a changed card, a new order, a patient gone; and keeps the list paged after it shrinks', async () => {
    let all = [patientFixture('A'), patientFixture('B', { crs: { grade: 1, reasons: ['fever'] } })];
    const page = await boardWith(fake({ list: (off) => listOf(all, off) }));
    const ids = () => page.locator('#patients > li').evaluateAll((li) => li.map((e) => e.getAttribute('data-patient')));
    await page.locator('article.card', { hasText: 'patient B' }).waitFor();
    expect(await ids()).toEqual(['A', 'B']);
    // B worsens: the server sorts it first; only the "patients" event tells the board.
    all = [patientFixture('B', { crs: { grade: 3, reasons: ['pressor'] } }), patientFixture('A')];
    await emit(page, 'patients');
    await page.locator('article.card', { hasText: 'patient B' }).locator('.grade.g3').waitFor(QUICK);
    await page.waitForFunction(
      "[...document.querySelectorAll('#patients > li')].map((e) => e.getAttribute('data-patient')).join() === 'B,A'",
      undefined,
      QUICK,
    );
    // A is discharged.
    all = [all[0]!];
    await emit(page, 'patients');
    await page.locator('article.card', { hasText: 'patient A' }).waitFor({ state: 'detached', ...QUICK });
    expect(await ids()).toEqual(['B']);

    // 200 patients: to the last page (151–200), where Next is disabled; the list shrinks to 120 under it.
    all = Array.from({ length: 200 }, (_, i) => patientFixture(`P${i}`));
    await emit(page, 'patients');
    await page.locator('#counts', { hasText: '200 patients · 0 pages waiting' }).waitFor(QUICK);
    for (const range of ['51–100', '101–150', '151–200']) {
      await page.getByRole('button', { name: 'Next →' }).click();
      await page.locator('#list-pager', { hasText: `Patients ${range} of 200` }).waitFor(QUICK);
    }
    expect(await page.getByRole('button', { name: 'Next →' }).isDisabled()).toBe(true);
    all = all.slice(0, 120);
    await emit(page, 'patients');
    await page.locator('#list-pager', { hasText: 'Patients 101–120 of 120' }).waitFor(QUICK);
    await page.close();
  }, 60_000);

  it('shows each state of a page truthfully and acknowledges exactly the page whose button was pressed', async () => {
    const silence = {
      silenceId: 's-1',
      scope: { patientId: 'A' },
      from: at(30),
      until: at(-30),
      createdBy: 'Nurse Bea',
      reason: 'transport',
    };
    const g = group({
      pages: [
        teamPage('icu', 'exhausted', { loops: 1 }),
        teamPage('hematology', 'held', { heldBy: silence }),
        teamPage('neurology', 'acknowledged', { ack: { by: 'Dr N', at: at(10), via: 'link' } }),
      ],
    });
    const a = patientFixture('A', { crs: { grade: 1, reasons: ['fever'] }, paging: [g], waiting: 0 });
    const fx = fake({
      list: (off) => listOf([a], off),
      answer: (path) =>
        path.endsWith('/ack') && fx.posts.length === 1
          ? { status: 200, body: { changed: false, page: { ack: { by: 'Dr Early', at: at(2) } } } }
          : { status: 409, body: { error: 'that page is closed' } },
    });
    const page = await boardWith(fx);
    const pg = page.locator('article.card', { hasText: 'patient A' }).locator('li.page');
    await pg.waitFor();
    expect(await pg.locator('.title').textContent()).toBe('CRS grade 1 (escalation from 0)');
    const icu = pg.locator('li.team-page', { hasText: 'ICU:' });
    expect(await icu.textContent()).toContain('⚠ Nobody acknowledged');
    expect(await icu.textContent()).toContain('Every level was paged 1 time.');
    const held = pg.locator('li.team-page', { hasText: 'Hematology:' });
    expect(await held.textContent()).toContain(
      `Silence by Nurse Bea until ${site(silence.until)} (transport); hematology fellow is paged when it ends`,
    );
    const acked = pg.locator('li.team-page', { hasText: 'Neurology:' });
    expect(await acked.textContent()).toContain(`By Dr N at ${site(at(10))} via the page link.`);
    expect(await acked.getByRole('button').count()).toBe(0);
    // The bed as written on the card, the pages and the acknowledge page (until 2026-12-05 "bed b-a").
    const title = 'CRS grade 1 (escalation from 0), bed B-A, patient A';
    expect(await icu.getByRole('button', { name: `Acknowledge the ICU page: ${title}` }).count()).toBe(1);
    const ackHeld = held.getByRole('button', { name: `Acknowledge the hematology page: ${title}` });

    // The held page (the group's second): the POST names its page; the server says it was already acknowledged.
    await ackHeld.click();
    await page.locator('#ack-dialog[open]').waitFor();
    expect(await page.locator('#ack-summary').textContent()).toMatch(
      /^CRS grade 1 \(escalation from 0\) for bed B-A, /,
    );
    // No name (spaces are none): nothing is sent.
    await page.locator('#ack-name').fill('   ');
    await page.locator('#ack-confirm').click();
    await page.locator('#ack-error', { hasText: 'Type your name: it is recorded.' }).waitFor();
    expect(fx.posts).toEqual([]);
    await page.locator('#ack-name').fill('Dr Late');
    await page.locator('#ack-confirm').click();
    await page.locator('#ack-error', { hasText: `Already acknowledged by Dr Early at ${site(at(2))}.` }).waitFor();
    expect(fx.posts[0]).toEqual({ path: '/api/pages/pg-hematology-held/ack', body: { by: 'Dr Late' } });
    // Refused (409): said in the dialog, which stays open.
    await page.locator('#ack-confirm').click();
    await page.locator('#ack-error', { hasText: 'that page is closed' }).waitFor();
    expect(await page.locator('#ack-dialog').getAttribute('open')).toBe('');
    await page.close();
  }, 30_000);

  it("asks each action for its actor's name afresh: nothing filled in from the last user, Enter alone records nothing", async () => {
    // A wall screen is shared. Until 2026-12-05 every dialog was filled in with the name of the last person who
    // acted in that browser, and "Resume monitoring" then focused its confirm button: one Enter recorded the
    // action under someone else's name in the audit trail.
    const g = group({ pages: [teamPage('icu', 'waiting'), teamPage('hematology', 'waiting')] });
    const fx = fake({
      list: (off) => listOf([patientFixture('A', { paging: [g], waiting: 2 })], off),
      answer: (path, body) =>
        path.endsWith('/ack')
          ? { status: 200, body: { changed: true, page: { ack: { by: body.by, at: at(0) } } } }
          : { status: 202, body: {} },
    });
    const page = await boardWith(fx);
    // A name kept by an earlier version of the board is not used, and is not kept.
    await page.evaluate("localStorage.setItem('crs-board-name', 'Dr Old')");
    await page.reload();
    const card = page.locator('article.card', { hasText: 'patient A' });
    await card.waitFor();
    expect(await page.evaluate("localStorage.getItem('crs-board-name')")).toBeNull();
    const title = 'CRS grade 1 (escalation from 0), bed B-A, patient A';

    // Dr First acknowledges the ICU page.
    await card.getByRole('button', { name: `Acknowledge the ICU page: ${title}` }).click();
    await page.locator('#ack-dialog[open]').waitFor();
    expect(await page.locator('#ack-name').inputValue()).toBe('');
    await page.locator('#ack-name').fill('Dr First');
    await page.keyboard.press('Enter');
    await page.locator('#ack-dialog').waitFor({ state: 'hidden' });
    expect(fx.posts).toEqual([{ path: '/api/pages/pg-icu-waiting/ack', body: { by: 'Dr First' } }]);

    // The next person to use the screen: every dialog asks for a name, and Enter alone sends nothing.
    await card.getByRole('button', { name: `Acknowledge the hematology page: ${title}` }).click();
    await page.locator('#ack-dialog[open]').waitFor();
    expect(await page.locator('#ack-name').inputValue()).toBe('');
    expect(await page.evaluate('document.activeElement.id')).toBe('ack-name');
    await page.keyboard.press('Enter'); // refused by the browser: the name is required
    expect(await page.locator('#ack-name:invalid').count()).toBe(1);
    await page.locator('#ack-name').fill('  ');
    await page.keyboard.press('Enter');
    await page.locator('#ack-error', { hasText: 'Type your name: it is recorded.' }).waitFor(QUICK);
    await page.locator('#ack-cancel').click();

    await card.getByRole('button', { name: /^Silence pages for/ }).click();
    await page.locator('#silence-dialog[open]').waitFor();
    expect(await page.locator('#silence-name').inputValue()).toBe('');
    await page.locator('#silence-cancel').click();

    await card.getByRole('button', { name: 'End monitoring of bed B-A, patient A' }).click();
    await page.locator('#monitoring-dialog[open]').waitFor();
    expect(await page.locator('#monitoring-name').inputValue()).toBe('');
    await page.keyboard.press('Enter');
    expect(await page.locator('#monitoring-dialog').getAttribute('open')).toBe('');
    await page.locator('#monitoring-name').fill('   ');
    await page.locator('#monitoring-confirm').click();
    await page.locator('#monitoring-error', { hasText: 'Type your name: it is recorded.' }).waitFor(QUICK);
    expect(await page.locator('#monitoring-dialog').getAttribute('open')).toBe('');
    expect(fx.posts).toHaveLength(1);
    expect(await page.evaluate("localStorage.getItem('crs-board-name')")).toBeNull();
    await page.close();
  }, 30_000);

  it('states the grade a silence never holds as the server says, and sends a team silence for that team only', async () => {
    const patientSilence = {
      silenceId: 's-p',
      scope: { patientId: 'A' },
      from: at(5),
      until: at(-25),
      createdBy: 'Nurse Bea',
      reason: 'MRI',
    };
    const teamSilence = { ...patientSilence, silenceId: 's-t', scope: { team: 'radiology' }, reason: 'drill' };
    const fx = fake({
      list: (off) =>
        listOf([patientFixture('A', { silences: [patientSilence] })], off, {
          paging: { ...PAGING_INFO, unsilenceableFromGrade: 3 },
          silences: [patientSilence, teamSilence],
        }),
      answer: (_path, body) => ({
        status: 201,
        body: { silence: { ...teamSilence, silenceId: 's-new', scope: { team: body.team }, reason: body.reason } },
      }),
    });
    const page = await boardWith(fx);
    await page.locator('article.card').waitFor();
    // The banner lists the team silence, not the patient's (that one is on its card).
    expect(await page.locator('#team-silences li.silence').allTextContents()).toEqual([
      expect.stringContaining('Team radiology silenced until'),
    ]);
    await page.getByRole('button', { name: 'Silence a team…' }).click();
    await page.locator('#silence-dialog[open]').waitFor();
    expect(await page.locator('#silence-rule').textContent()).toContain(
      'A silence holds pages below grade 3 (and technical alerts) until it ends; they are sent then if still unanswered. Pages of grade 3 and above are never held: they always go out.',
    );
    await page.locator('#silence-team').selectOption({ label: 'ICU' });
    await page.locator('#silence-minutes').selectOption('120');
    await page.locator('#silence-reason').fill('handover');
    await page.locator('#silence-name').fill('Dr T');
    await page.locator('#silence-confirm').click();
    await page.locator('#silence-dialog[open]').waitFor({ state: 'detached' });
    expect(fx.posts).toEqual([
      { path: '/api/silences', body: { minutes: 120, reason: 'handover', by: 'Dr T', team: 'icu' } },
    ]);
    await page.close();
  }, 30_000);

  it('takes a silence, an acknowledgement and a paging-path alert from another board live, each by its own event', async () => {
    let silences: Json[] = [];
    let alerts: Json[] = [];
    let ack: Json | null = null;
    const fx = fake({
      list: (off) => {
        const pages = [teamPage('icu', ack ? 'acknowledged' : 'waiting', { ack })];
        return listOf([patientFixture('A', { paging: [group({ pages })], waiting: ack ? 0 : 1 })], off, {
          silences,
        });
      },
      outbox: () => ({ alerts }),
    });
    const page = await boardWith(fx);
    await page.locator('article.card li.team-page', { hasText: 'Waiting' }).waitFor();
    silences = [
      { silenceId: 's-t', scope: { team: 'icu' }, from: at(1), until: at(-30), createdBy: 'Dr T', reason: 'drill' },
    ];
    await emit(page, 'silences');
    await page.locator('#team-silences li.silence', { hasText: 'Team ICU silenced until' }).waitFor(QUICK);
    ack = { by: 'Dr Other', at: at(0), via: 'link' };
    await emit(page, 'ack');
    await page.locator('article.card li.team-page', { hasText: 'By Dr Other' }).waitFor(QUICK);
    alerts = [{ text: 'lane webhook is stuck', since: at(3) }];
    await emit(page, 'lanes');
    await page.locator('#delivery-alerts', { hasText: 'lane webhook is stuck' }).waitFor(QUICK);
    await page.close();
  }, 30_000);

  it('names a ladder nobody answered at the top, by patient, grade and teams, apart from the technical alerts', async () => {
    const exhausted = (team: string, since: string) => ({
      key: `exhausted:crs|P-0042|#3|${team}`,
      since,
      text: `ladder exhausted, page crs|P-0042|#3|${team} (patient P-0042, CRS grade 3, team ${team}): ...`,
      page: {
        pageId: `crs|P-0042|#3|${team}`,
        notificationId: 'crs|P-0042|#3',
        patientId: 'P-0042',
        team,
        subject: 'crs',
        grade: 3,
        exhaustedAt: Date.parse(since),
      },
    });
    let alerts: Json[] = [
      exhausted('icu', at(10)),
      exhausted('hematology', at(5)),
      { key: 'lane:webhook', text: 'lane webhook is stuck', since: at(3) },
    ];
    const page = await boardWith(fake({ list: (off) => listOf([], off), outbox: () => ({ alerts }) }));
    const banner = page.locator('#delivery-alerts');
    await banner.locator('p.unanswered').waitFor(QUICK);
    expect(await banner.locator('p.unanswered').allTextContents()).toEqual([
      // Since the first of its ladders ran out (pinned by a mutation run: the last one's passed).
      `Nobody acknowledged: patient P-0042 CRS 3, hematology and ICU: phone the team (since ${site(at(10))})`,
    ]);
    // The technical alert keeps its heading and list; the ladder is not listed there as well.
    expect(await banner.locator('li').allTextContents()).toEqual([expect.stringContaining('lane webhook is stuck')]);
    alerts = [];
    await emit(page, 'lanes');
    await banner.waitFor({ state: 'hidden', ...QUICK });
    await page.close();
  }, 30_000);

  // Until 2026-12-05 a page, a silence or a patient whose stored row could not be read vanished from the board (a
  // send or a grade change's row failed the whole list): nobody could see what to mend.
  it('names each stored record it cannot read, with why, where the others are listed', async () => {
    const g = group({
      unreadable: "the grade change's stored record cannot be read (not JSON)",
      reasons: [],
      pages: [
        teamPage('icu', 'waiting', {
          unreadableSends: [{ sendId: 'crs|A|#1|icu#2', reason: 'not JSON' }],
        }),
      ],
    });
    const a = patientFixture('A', {
      paging: [g],
      waiting: 1,
      unreadablePages: [{ pageId: 'crs|A|#0|hematology', reason: 'level is missing' }],
    });
    const page = await boardWith(
      fake({
        list: (off) =>
          listOf([a], off, {
            unreadableSilences: [{ silenceId: 'sil_AAAAAAAAAAAA', reason: 'scope is missing' }],
            unreadablePatients: [{ patientId: 'B', reason: 'its state: SyntaxError' }],
          }),
        detail: (id) =>
          id === 'B'
            ? context({ patient: null, unreadable: { patientId: 'B', reason: 'its state: SyntaxError' }, pages: [] })
            : undefined,
      }),
    );
    const card = page.locator('article.card', { hasText: 'patient A' });
    await card.waitFor();
    expect(await card.locator('li.unreadable').textContent()).toBe(
      'Page crs|A|#0|hematology: its stored record cannot be read (level is missing); the pager has set it aside. An operator must mend or delete it.',
    );
    expect(await card.locator('p.unreadable').textContent()).toBe(
      "Why and next steps not shown: the grade change's stored record cannot be read (not JSON).",
    );
    expect(await card.locator('li.team-page span.unreadable').textContent()).toBe(
      ' A send record of it cannot be read: crs|A|#1|icu#2 (not JSON).',
    );
    const top = page.locator('#unreadable li.unreadable');
    expect(await top.allTextContents()).toEqual([
      'Silence sil_AAAAAAAAAAAA: its stored record cannot be read (scope is missing); it holds nothing. End it, or an operator can mend it. End silence',
      'Patient B: its stored record cannot be read (its state: SyntaxError). An operator must mend or delete it.',
    ]);
    // Its own view says so (until 2026-12-05 crs serve answered it 500, and the board said only "server error").
    const seen = watch(page);
    await page.evaluate(`location.hash = '#/patient/B'`);
    const notice = page.locator('#main .notice[role=alert]');
    await notice.waitFor();
    expect(await notice.locator('p').first().textContent()).toBe(
      'Patient B: its stored state cannot be read (its state: SyntaxError). An operator must mend or delete its row; its pages are kept.',
    );
    expect(await notice.getByRole('link', { name: 'CSV' }).getAttribute('href')).toBe(
      'api/patients/B/audit?format=csv',
    );
    await page.getByRole('link', { name: '← All patients' }).click();
    await card.waitFor();
    expect(seen.problems).toEqual([]);
    await page.close();
  }, 30_000);

  /** The board with ward H4's no-data alert (`summary`, its page waiting) above patient A; `over`: more of the ward. */
  const boardWithWardAlert = (summary: string, over: Json = {}) => {
    const ward = group({
      notificationId: 'n-w',
      subject: 'stale-feed',
      kind: 'alert',
      technical: true,
      summary,
      pages: [teamPage('bedside', 'waiting')],
    });
    return boardWith(
      fake({
        list: (off) =>
          listOf([patientFixture('A')], off, {
            wards: [{ subject: 'ward H4', ward: 'H4', paging: [ward], waiting: 1, ...over }],
          }),
      }),
    );
  };
  const H4_QUIET = "NO DATA, ward H4: 3 patients' monitors quiet since 2026-12-06 09:20 CET (P1, bed 1; P2, bed 2; P3)";

  it("describes a ward alert as the ward's monitors, not a patient's", async () => {
    // Until 2026-12-06 it read "No data from the monitor", of a ward whose alert named five patients' monitors.
    const page = await boardWithWardAlert('monitors quiet');
    await page
      .getByRole('button', { name: "Acknowledge the bedside page: No data from the ward's monitors, ward H4" })
      .waitFor();
    expect(await page.locator('li.ward-alert .tag').textContent()).toBe('Technical alert · not a grade');
    expect(await page.locator('li.ward-alert .title').textContent()).toBe("No data from the ward's monitors");
    await page.close();
  }, 30_000);

  it("names the patients of a ward's no-data alert still without data, not those whose data came back", async () => {
    // Until 2026-12-06 the board showed only the alert's list, of when it was raised: a charge nurse chased monitors
    // that worked again (their cards said "Last vitals just now") until the last patient's data resumed.
    const quiet = [
      { patientId: 'P1', bed: '1' },
      { patientId: 'P3', bed: null },
    ];
    const page = await boardWithWardAlert(H4_QUIET, { quiet });
    const line = page.locator('li.ward-alert p.ward-quiet');
    await line.waitFor();
    expect(await line.textContent()).toBe(
      'Still without monitor data: P1, bed 1; P3. Any other patient the alert names has monitor data again.',
    );
    await page.close();
  }, 30_000);

  it("names who of a ward's no-data alert had data again, with the bed and when, in the site's zone", async () => {
    // Until 2026-12-07 a patient whose data came back just left the quiet list: nobody could say who, or when.
    const page = await boardWithWardAlert(H4_QUIET, {
      quiet: [{ patientId: 'P1', bed: '1' }],
      resumed: [
        { patientId: 'P2', bed: '2', at: '2026-12-06T08:41:00Z' },
        { patientId: 'P3', bed: null, at: '2026-12-06T08:47:00Z' },
      ],
    });
    const line = page.locator('li.ward-alert p.ward-resumed');
    await line.waitFor();
    expect(await line.textContent()).toBe('Resumed: P2, bed 2 at 2026-12-06 09:41 CET; P3 at 2026-12-06 09:47 CET.');
    await page.close();
  }, 30_000);

  it("draws the patient's timeline: grade bands by patient clock in their colours, ICE in its grade's colour, the site's hours", async () => {
    const id = 'P/1 x';
    const point = (minutesAgo: number, o: Json = {}): Json => ({
      t: at(minutesAgo),
      clock: at(minutesAgo),
      messageId: `m-${minutesAgo}`,
      crs: 0,
      icans: 0,
      ...o,
    });
    const points = [
      point(3000, { vitals: { heartRate: 70 } }),
      point(360, { crs: 1, vitals: { heartRate: 90, spo2: 97, temperatureC: 38.2 } }),
      point(350, { crs: 1, vitals: { heartRate: 91 } }),
      // Charted late: observed 5 h ago, graded at the patient's clock of 4 h ago.
      point(300, { clock: at(240), crs: 2, medications: [{ drug: 'tocilizumab', doseMg: 560 }] }),
      point(200, { crs: 4, icans: 1, neuro: { iceScore: 7 } }),
      point(190, { icans: 2, crs: 4, neuro: { iceScore: 3 } }),
      point(180, {
        crs: 4,
        icans: 2,
        oxygen: { device: 'nasal_cannula', flowLpm: 2, forComfort: true },
        vasopressors: [{ drug: '<tspan id="inj3">x</tspan>vasopressin', dose: 0, unit: 'U/min' }],
        medications: [{ drug: '<tspan id="inj4">x</tspan>' }],
      }),
      ...Array.from({ length: 60 }, (_, i) => point(170 - i, { crs: 4, icans: 2, vitals: { heartRate: 100 + i } })),
    ];
    const detail = (pid: string, hours: number): Json | undefined =>
      pid === id
        ? context({
            patient: patientFixture(id, { crs: { grade: 4, reasons: ['x'] }, icans: { grade: 2, reasons: ['y'] } }),
            pages: [],
            timeline: {
              from: at(hours * 60),
              to: at(111),
              feverThresholdC: 38.5,
              hypotension: { systolicBelow: 90, mapBelow: 65 },
              points: points.filter((p) => Date.parse(p.t as string) >= NOW - hours * 60 * MIN),
            },
          })
        : undefined;
    const fx = fake({ list: (off) => listOf([patientFixture(id)], off), detail });
    const page = await boardWith(fx);
    await page.getByRole('link', { name: `Bed B-${id} · patient ${id}` }).click();
    await page.locator('#chart svg').waitFor();
    expect(fx.gets).toContain(`/api/patients/${encodeURIComponent(id)}?hours=72`);
    expect(await page.title()).toBe(`Bed B-${id} · CRS 4 · ICANS 2 · on-call board`);
    // From the first point, not the range's start.
    expect(await page.locator('#chart svg').getAttribute('aria-label')).toMatch(
      new RegExp(`^Timeline from ${site(at(3000))} to `),
    );
    // The shape a title belongs to: its fill and width.
    const rect = async (title: string) =>
      (await page.evaluate(`(() => {
        const e = [...document.querySelectorAll('#chart title')].find((x) => x.textContent === ${JSON.stringify(title)})?.parentElement;
        return e ? { fill: e.getAttribute('fill'), width: Number(e.getAttribute('width')) } : null;
      })()`)) as { fill: string; width: number } | null;
    // The limits as the server gives them (the site's fever threshold).
    expect(await page.locator('#chart .thr-lbl').allTextContents()).toEqual([
      'fever 38.5 °C',
      'systolic < 90',
      'MAP < 65',
    ]);
    const titles = await page.locator('#chart svg title').allTextContents();
    expect(titles.filter((t) => t.startsWith('CRS grade'))).toEqual([
      `CRS grade 0 from ${site(at(3000))}`,
      `CRS grade 1 from ${site(at(360))}`,
      `CRS grade 2 from ${site(at(240))}`,
      `CRS grade 4 from ${site(at(200))}`,
    ]);
    expect((await rect(`CRS grade 1 from ${site(at(360))}`))!.width).toBeGreaterThan(20);
    expect((await rect(`CRS grade 4 from ${site(at(200))}`))!.fill).toBe('#5b1a7a');
    expect((await rect(`ICE score 7/10 at ${site(at(200))}`))!.fill).toBe('#fff4b8'); // grade 1
    expect((await rect(`ICE score 3/10 at ${site(at(190))}`))!.fill).toBe('#ffd6a5'); // grade 2
    expect((await rect(`nasal cannula 2 L/min (for comfort) from ${site(at(180))}`))!.fill).toBe('#f4f4f4');
    expect(titles.some((t) => t.includes('vasopressin'))).toBe(false); // dose 0: not infusing
    expect(await page.locator('#inj3, #inj4').count()).toBe(0);
    expect(
      await page.evaluate(
        "[...document.querySelectorAll('#chart title')].find((e) => e.textContent.startsWith('tocilizumab 560 mg')).parentElement.querySelector('path').getAttribute('fill')",
      ),
    ).toBe('#0b57d0');
    // The hour ticks on the site's wall clock (Paris, an hour off UTC): 00:00, 06:00, … whatever the step.
    const ticks = await page.locator('#chart g.axis text').allTextContents();
    const hours = ticks.filter((t) => /^\d\d:\d\d$/.test(t)).map((t) => t.split(':').map(Number));
    expect(hours.length).toBeGreaterThan(2);
    expect(hours.every(([hh, mm]) => mm === 0 && hh! % 3 === 0)).toBe(true);
    // The table: every row, newest first, each value in its column.
    const rows = page.locator('#d-table tbody tr');
    expect(await rows.count()).toBe(67);
    expect(await rows.first().locator('td').nth(0).textContent()).toBe(site(at(111)));
    expect(await rows.nth(65).locator('td').allTextContents()).toEqual([
      site(at(360)),
      '38.2',
      '',
      '90',
      '97',
      '',
      '',
      '',
      '',
      '1',
      '0',
    ]);
    // Another range fetches those hours.
    await page.getByRole('button', { name: '6 h' }).click();
    await page.locator('#tl-title', { hasText: 'Timeline: last 6 h of patient time' }).waitFor();
    expect(fx.gets).toContain(`/api/patients/${encodeURIComponent(id)}?hours=6`);
    await page.close();
  }, 60_000);
});
