// The board with 2,000 patients (issue 16 item 3), in real Chromium against the real `crs serve`: the issue's
// reproduction (one token, 20 batch requests of 100 enrolments; their feeds then go quiet together) made the old
// board fetch all 2,000 patients (2.7 MB) on every update and the old server send 2,000 "no data" pages. Now the
// list comes a page of 50 at a time (Previous / Next), the counts cover all of them, and the ward's one "no data"
// alert stands above the list, acknowledged from there. Prints the list response's size and time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { closeDialog, launchChromium } from '#test/support/chromium.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { INGEST_TOKEN, idle, spawnServe, stop, type ServeProcess } from '../integration/embedded-support.ts';

const PATIENTS = 2000;

let dir: string;
let server: ServeProcess;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-many-'));
  // Feeds count as quiet 3 s after enrolment: the ward's alert comes while the board is open.
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ paging: { staleFeedMinutes: 0.05 } }));
  server = await spawnServe(join(dir, 'data'), [
    '--config',
    config,
    '--page-lines',
    '--max-patients',
    String(PATIENTS + 100),
  ]);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('the board with 2,000 patients', () => {
  it('shows them 50 at a time with the counts of all, and the ward\'s one "no data" alert above, acknowledged from there', async () => {
    const at = new Date(Date.now() - 60_000).toISOString();
    const enrol = (i: number): DeviceMessage => ({
      messageId: `enrol-${i}`,
      patientId: `P${String(i).padStart(4, '0')}`,
      observedAt: at,
      source: { deviceId: 'ehr-1', kind: 'ehr' },
      enrolment: {
        therapy: 'car-t',
        product: 'axi-cel',
        infusedAt: '2026-01-08T08:00:00Z',
        weightKg: 70,
        bed: `H4-${i}`,
        ward: 'H4',
      },
    });
    for (let b = 0; b < PATIENTS / 100; b++) {
      const res = await fetch(`${server.url}/v1/messages/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(Array.from({ length: 100 }, (_, j) => enrol(b * 100 + j))),
      });
      expect(res.status).toBe(202);
    }

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    const lists: { bytes: number; ms: number }[] = [];
    page.on('requestfinished', async (r) => {
      if (!new URL(r.url()).pathname.endsWith('/api/patients')) return;
      const res = await r.response();
      lists.push({ bytes: (await res!.body()).length, ms: r.timing().responseEnd });
    });
    await page.goto(server.boardUrl);
    await page.locator('#counts', { hasText: `${PATIENTS} patients` }).waitFor({ timeout: 60_000 });
    await page.locator('#list-pager', { hasText: `Patients 1–50 of ${PATIENTS}` }).waitFor();
    expect(await page.locator('article.card').count()).toBe(50);

    // The ward's alert: one, above the list, naming how many.
    const ward = page.locator('li.ward-alert', { hasText: 'Ward H4' });
    await ward.waitFor({ timeout: 30_000 });
    // Those quiet at the first sweep are named and counted; the ones whose enrolment landed after joined it silently.
    expect(await ward.textContent()).toMatch(
      /NO DATA, ward H4: \d+ patients' monitors never sent, enrolled from .*\(P0000, bed H4-0; P0001, bed H4-1; /,
    );
    expect(await page.locator('article.card li.page.technical').count()).toBe(0);
    const button = ward.getByRole('button', {
      name: "Acknowledge the bedside page: No data from the ward's monitors, ward H4",
    });
    await button.focus();
    await page.keyboard.press('Enter');
    await page.locator('#ack-dialog[open]').waitFor();
    await page.keyboard.press('Control+a');
    await page.keyboard.type('Nurse Lee');
    // The board gives the focus back at the close event, a task after the dialog shuts: waited for, so that it cannot
    // take the focus from Next (focused below) before Enter.
    await closeDialog(page, () => page.keyboard.press('Enter'));
    await ward.locator('li.team-page', { hasText: /Acknowledged\s*Bedside: .* By Nurse Lee at/ }).waitFor();
    // One page in all went to the bedside team, for the 2,000 of them (its line printed: the board's view of the
    // acknowledgement came another way).
    await idle(server);
    const sent = server.lines.map(
      (l) => JSON.parse(l) as { type: string; subject?: string; patientId: string; team: string },
    );
    expect(sent.filter((e) => e.type === 'page').map((e) => [e.subject, e.patientId, e.team])).toEqual([
      ['stale-feed', 'ward H4', 'bedside'],
    ]);
    const health = (await (
      await fetch(`${server.url}/api/patients?limit=1`, { headers: { authorization: `Bearer ${server.boardKey}` } })
    ).json()) as { total: number; wards: unknown[] };
    expect(health).toMatchObject({ total: PATIENTS });
    expect(health.wards).toHaveLength(1);

    // Next and Previous, by keyboard.
    await page.getByRole('button', { name: 'Next →' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#list-pager', { hasText: `Patients 51–100 of ${PATIENTS}` }).waitFor();
    expect(await page.locator('article.card').count()).toBe(50);
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.locator('#list-pager', { hasText: `Patients 1–50 of ${PATIENTS}` }).waitFor();
    expect(problems).toEqual([]);

    const largest = Math.max(...lists.map((l) => l.bytes));
    const slowest = Math.max(...lists.map((l) => l.ms));
    process.stdout.write(
      `board list with ${PATIENTS} patients: ${lists.length} fetches, largest ${(largest / 1024).toFixed(0)} KiB, slowest ${slowest.toFixed(0)} ms\n`,
    );
    expect(largest).toBeLessThan(400 * 1024); // the old list was 2.7 MB
    await page.close();
  }, 180_000);
});
