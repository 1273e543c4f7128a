// A ward without an ADT feed discharges a patient from the board, in real Chromium against the real `crs serve`:
// the card's "End monitoring…" asks for the reason and a confirmation (Cancel sends nothing), and the card is then
// marked "monitoring ended (reason) time", live; "Resume monitoring…" (a re-admission) takes the mark away again.
// Chromium is Debian's (.ci/run installs it); playwright-core drives it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { until } from '#test/support/until.ts';

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-monitoring-'));
  server = await spawnServe(join(dir, 'data'));
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

interface Listed {
  patientId: string;
  monitoringEnded: { reason: string } | null;
}
const listed = async (): Promise<Listed[]> =>
  (
    (await (
      await fetch(`${server.url}/api/patients`, { headers: { authorization: `Bearer ${server.boardKey}` } })
    ).json()) as { patients: Listed[] }
  ).patients;

describe("the end of a patient's monitoring on the board", () => {
  it('ends it from the card after a confirmation, marks the card ended, and resumes it', async () => {
    const res = await post(server.url, {
      messageId: 'W-1-enrol',
      patientId: 'W-1',
      observedAt: new Date().toISOString(),
      source: { deviceId: 'charting', kind: 'manual' },
      enrolment: { therapy: 'car-t', product: 'axi-cel', bed: 'H4-07', ward: 'H4' },
      vitals: { heartRate: 82 },
    });
    expect(res.status).toBe(202);
    await until(async () => (await listed()).length === 1 || undefined, 'W-1 graded');

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    // What the board sends (the server grades an end a moment after accepting it: its list would not show it yet).
    const posted: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posted.push(new URL(r.url()).pathname);
    });
    await page.goto(server.boardUrl);
    const card = page.locator('article.card', { hasText: 'patient W-1' });
    await card.waitFor();
    const end = card.getByRole('button', { name: 'End monitoring of bed H4-07, patient W-1' });

    // Cancel: nothing is sent.
    await end.click();
    await page.locator('#monitoring-dialog[open]').waitFor();
    await page.locator('#monitoring-cancel').click();
    await page.locator('#monitoring-dialog').waitFor({ state: 'hidden' });
    expect(posted).toEqual([]);
    expect((await listed())[0]!.monitoringEnded).toBeNull();
    expect(await card.locator('p.meta').textContent()).not.toContain('monitoring ended');

    // The reason, then the confirmation.
    await end.click();
    await page.locator('#monitoring-dialog[open]').waitFor();
    expect(await page.locator('#monitoring-summary').textContent()).toContain('bed H4-07, patient W-1');
    expect(await page.locator('#monitoring-rule').textContent()).toContain('no-data watch of this patient stops');
    await page.locator('#monitoring-reason').selectOption('transferred');
    await page.locator('#monitoring-name').fill('R. Nurse'); // who did it: the trail records it
    await page.locator('#monitoring-confirm').click();
    await page.locator('#monitoring-dialog').waitFor({ state: 'hidden' });
    await card.locator('p.meta', { hasText: 'monitoring ended (transferred)' }).waitFor();
    expect(await card.locator('p.meta').textContent()).toMatch(
      /monitoring ended \(transferred\) \d{4}-\d\d-\d\d \d\d:\d\d UTC/,
    );
    expect(await card.getAttribute('class')).toContain('ended');
    expect((await listed())[0]!.monitoringEnded).toMatchObject({ reason: 'transferred' });

    // A re-admission: confirmed, and the card is monitored again.
    await card.getByRole('button', { name: 'Resume monitoring of bed H4-07, patient W-1' }).click();
    await page.locator('#monitoring-dialog[open]').waitFor();
    expect(await page.locator('#monitoring-reason-row').isHidden()).toBe(true);
    expect(await page.locator('#monitoring-name').inputValue()).toBe(''); // asked again: the screen may be shared
    await page.locator('#monitoring-name').fill('R. Nurse');
    await page.locator('#monitoring-confirm').click();
    await card.getByRole('button', { name: 'End monitoring of bed H4-07, patient W-1' }).waitFor();
    expect(await card.locator('p.meta').textContent()).not.toContain('monitoring ended');
    expect(await card.getAttribute('class')).not.toContain('ended');
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
