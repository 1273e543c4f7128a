// The acknowledge link's page on a phone, in real Chromium against the real `crs serve` (the same document and
// headers as the AWS ack function: shared/app/ack-page.ts): what the clinician paged reads, with its inline style
// allowed by the Content-Security-Policy's hash, and the form that acknowledges. The patient has the longest id and
// bed a device may send, with nothing to break a line at.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser } from 'playwright-core';
import { launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { until } from '#test/support/until.ts';
import { narrowCourse, pieces, scrollsSideways } from '#test/support/unbroken.ts';
import { post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-ack-page-'));
  server = await spawnServe(join(dir, 'data'), ['--page-lines']);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('the acknowledge page', () => {
  it('fits a phone with the longest id and bed, styled under its CSP, opens unfocused, acknowledges by keyboard', async () => {
    // An OID-style id of a hospital's MPI (64 characters, the contract's limit) and a 32-character bed. Until
    // 2026-12-05 the summary ran out of its card and the page scrolled sideways (790 px on a 390 px phone).
    const id = 'MPI:2.16.840.1.113883.3.72.5.9.1:'.padEnd(64, '0');
    const bed = 'OncologyTowerB.H4.Room12.Bed0003';
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const base = { patientId: id, observedAt, source: { deviceId: 'ehr-1', kind: 'ehr' as const } };
    const messages: DeviceMessage[] = [
      { ...base, messageId: 'ack-enrol', enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed } },
      { ...base, messageId: 'ack-fever', vitals: { temperatureC: 39.2 } },
    ];
    for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
    const ackUrl = await until(
      () =>
        server.lines
          .map((l) => JSON.parse(l) as { type: string; ackUrl?: string })
          .find((e) => e.type === 'page' && e.ackUrl)?.ackUrl,
      'a page with its acknowledge link',
    );

    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const refused: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') refused.push(m.text()); // a CSP refusal is reported here
    });
    const res = await page.goto(ackUrl);
    expect(res!.status()).toBe(200);
    const summary = page.locator('p.summary');
    expect(await summary.textContent()).toContain(`patient ${id}, bed ${bed}, day`);
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    const card = (await page.locator('.card').boundingBox())!;
    const text = (await summary.boundingBox())!;
    expect(text.x + text.width).toBeLessThanOrEqual(card.x + card.width);
    expect(await summary.evaluate((e) => e.scrollWidth <= e.clientWidth)).toBe(true);
    // The style applies (its hash is in the CSP): a button a thumb can hit.
    const button = page.getByRole('button', { name: 'Acknowledge: I am on it' });
    expect((await button.boundingBox())!.height).toBeGreaterThanOrEqual(52);
    expect(refused).toEqual([]);

    // Nothing takes the focus on opening: a focused name box opens a phone's keyboard over the summary (grade,
    // patient, bed, next steps) before it is read (it had `autofocus` until 2026-12-06). Autofocus runs at a
    // rendering step after the load: two frames later it would have.
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    expect(await page.evaluate('document.activeElement === document.body')).toBe(true);
    // The keyboard alone acknowledges: Tab reaches the name box first (its label names it), then the button.
    await page.keyboard.press('Tab');
    expect(await page.evaluate("document.activeElement.id + ' ' + document.activeElement.labels[0].textContent")).toBe(
      'by Your name (recorded with the time)',
    );
    await page.keyboard.type('Dr Phone');
    await page.keyboard.press('Tab');
    expect(await button.evaluate((b) => b === b.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Acknowledged' }).waitFor();
    expect(await page.locator('.card').textContent()).toContain('Recorded: Dr Phone (hematology fellow) at');
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
      true,
    );
    await page.close();
  }, 60_000);

  it('says on the phone, styled, that nothing was recorded when the server cannot read or record the page', async () => {
    // Until 2026-12-05 the phone showed {"error":"internal error"} (crs serve) or {"message":"Internal Server
    // Error"} (AWS).
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const base = { patientId: 'FAIL-1', observedAt, source: { deviceId: 'ehr-1', kind: 'ehr' as const } };
    const messages: DeviceMessage[] = [
      {
        ...base,
        messageId: 'fail-enrol',
        enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed: 'H4-9' },
      },
      { ...base, messageId: 'fail-fever', vitals: { temperatureC: 39.2 } },
    ];
    for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
    const ackUrl = await until(
      () =>
        server.lines
          .map((l) => JSON.parse(l) as { type: string; patientId?: string; ackUrl?: string })
          .find((e) => e.type === 'page' && e.patientId === 'FAIL-1' && e.ackUrl)?.ackUrl,
      "FAIL-1's page with its acknowledge link",
    );
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const refused: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('status of 500')) refused.push(m.text()); // a CSP refusal
    });
    // The form is open on the phone when the database fails.
    expect((await page.goto(ackUrl))!.status()).toBe(200);
    const db = new Database(join(dir, 'data', 'crs.db'));
    db.exec('ALTER TABLE pages RENAME TO pages_away');
    try {
      await page.getByLabel('Your name (recorded with the time)').fill('Dr Phone');
      await page.getByRole('button', { name: 'Acknowledge: I am on it' }).click();
      await page.locator('h1', { hasText: 'Not recorded' }).waitFor();
      expect(await page.locator('.card').textContent()).toContain('so the escalation goes on');
      expect(await page.locator('.card').textContent()).toContain('phone the team');
      // Styled under its CSP: the card's border is the style's.
      expect(await page.evaluate("getComputedStyle(document.querySelector('.card')).borderLeftWidth")).toBe('8px');
      const opened = await page.goto(ackUrl);
      expect(opened!.status()).toBe(500);
      expect(opened!.headers()['cache-control']).toBe('no-store');
      await page.locator('h1', { hasText: 'Page not available' }).waitFor();
      expect(await page.locator('.card').textContent()).toContain('Nothing was recorded.');
      expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(
        true,
      );
    } finally {
      db.exec('ALTER TABLE pages_away RENAME TO pages');
      db.close();
    }
    // The database back, the same link acknowledges.
    await page.goto(ackUrl);
    await page.getByLabel('Your name (recorded with the time)').fill('Dr Phone');
    await page.getByRole('button', { name: 'Acknowledge: I am on it' }).click();
    await page.locator('h1', { hasText: 'Acknowledged' }).waitFor();
    expect(refused).toEqual([]);
    await page.close();
  }, 60_000);

  it('says first, above the summary, what became of the page: a page a higher grade replaced, one acknowledged', async () => {
    // A grade 1 page opened after the grade 3 replaced it. Until 2026-12-06 the phone read "Nothing to acknowledge",
    // then the grade 1 summary and its next steps in bold, and only below them that a newer page replaced it.
    const observedAt = new Date(Date.now() - 60_000).toISOString();
    const base = { patientId: 'UP-1', observedAt, source: { deviceId: 'mon-1', kind: 'monitor' as const } };
    const enrolment = { therapy: 'car-t' as const, infusedAt: '2026-01-08T08:00:00Z', bed: 'H4-7', weightKg: 70 };
    const first: DeviceMessage[] = [
      { ...base, messageId: 'up-enrol', enrolment },
      { ...base, messageId: 'up-fever', vitals: { temperatureC: 39.2 } },
    ];
    for (const m of first) expect((await post(server.url, m)).status).toBe(202);
    const linkOf = (grade: number) =>
      until(
        () =>
          server.lines
            .map((l) => JSON.parse(l) as { type: string; patientId?: string; grade?: number; ackUrl?: string })
            .find((e) => e.type === 'page' && e.patientId === 'UP-1' && e.grade === grade && e.ackUrl)?.ackUrl,
        `UP-1's grade ${grade} page`,
      );
    const grade1 = await linkOf(1);
    const pressors: DeviceMessage = {
      ...base,
      messageId: 'up-pressors',
      vitals: { temperatureC: 39.2, systolicBP: 82 },
      vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
    };
    expect((await post(server.url, pressors)).status).toBe(202);
    const grade3 = await linkOf(3);

    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const above = async (text: string) => {
      const status = (await page.locator('p', { hasText: text }).boundingBox())!;
      const summary = (await page.locator('p.summary').boundingBox())!;
      return status.y + status.height <= summary.y;
    };
    await page.goto(grade1);
    await page.locator('h1', { hasText: 'Nothing to acknowledge' }).waitFor();
    // Which page replaced it, and that it still waits (until 2026-12-06 only "a newer page about this patient").
    expect(await above('A newer page replaced it: CRS grade 3 at ')).toBe(true);
    expect(await page.locator('p.status').textContent()).toMatch(/\(paged to hematology fellow\): answer that one\.$/);
    // And bolder than the summary, which it comes before (pinned by a mutation run, 2026-12-06, later).
    const weight = (css: string) => page.evaluate(`getComputedStyle(document.querySelector('${css}')).fontWeight`);
    expect([await weight('p.status'), await weight('p.summary')]).toEqual(['700', '600']);

    await page.goto(grade3);
    await page.getByLabel('Your name (recorded with the time)').fill('Dr Phone');
    await page.getByRole('button', { name: 'Acknowledge: I am on it' }).click();
    await page.locator('h1', { hasText: 'Acknowledged' }).waitFor();
    expect(await above('Recorded: Dr Phone')).toBe(true);
    await page.goto(grade3);
    await page.locator('h1', { hasText: 'Already acknowledged' }).waitFor();
    expect(await above('Acknowledged by Dr Phone')).toBe(true);
    await page.close();
  }, 60_000);
  it('keeps each time, comparison and value with its unit on one line on a 360 px phone (2026-12-06)', async () => {
    // Until 2026-12-06 the lines broke where they could: "fever 39.1" / "°C", "at 2026-12-" / "06 17:45 CET", on
    // the summary's reasons, the next steps and the acknowledgement's own line, read at night as two values; and
    // (later that day) "MAP" / "< 65", "1-" / "2 doses", "24" / "h".
    const messages = narrowCourse('WRAP-1');
    for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
    const link = (grade: number, team: string) =>
      until(
        () =>
          server.lines
            .map(
              (l) =>
                JSON.parse(l) as { type: string; patientId?: string; grade?: number; team?: string; ackUrl?: string },
            )
            .find((e) => e.type === 'page' && e.patientId === 'WRAP-1' && e.grade === grade && e.team === team)?.ackUrl,
        `WRAP-1's CRS ${grade} page to ${team} with its acknowledge link`,
      );
    const page = await browser.newPage({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const broken = async () => (await pieces(page, '.card')).filter((p) => p.lines > 1 || !p.nowrap);
    // The CRS 2 page (replaced since by the 3): its steps say "after 1-2 doses of tocilizumab".
    await page.goto(await link(2, 'hematology'));
    const two = await pieces(page, '.card');
    expect(two.map((p) => p.text)).toEqual(expect.arrayContaining(['MAP < 65', '1-2 doses', '24 h', '38.8 °C']));
    expect(await broken()).toEqual([]);
    expect(await scrollsSideways(page)).toBe(false);
    await page.goto(await link(3, 'icu'));
    const opened = await pieces(page, '.card');
    expect(opened.length).toBeGreaterThan(8);
    expect(opened.map((p) => p.text)).toContain('38.8 °C');
    expect(await broken()).toEqual([]);
    expect(await scrollsSideways(page)).toBe(false);
    await page.getByLabel('Your name (recorded with the time)').fill('Dr Narrow Phone');
    await page.getByRole('button', { name: 'Acknowledge: I am on it' }).click();
    await page.locator('h1', { hasText: 'Acknowledged' }).waitFor();
    expect(await broken()).toEqual([]);
    await page.close();
  }, 60_000);
});
