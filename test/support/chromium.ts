// The browser tests' Chromium: Debian's chromium-headless-shell package (`npx playwright install` cannot download
// here), driven by playwright-core, quiet (no network of its own, no updates). The headless shell is Chromium's own
// headless build (Blink and V8 of the same release, without the browser's user interface), the one Playwright runs
// headless by default: the full `chromium` in headless mode took about three times its CPU (board and board-a11y:
// 130 s of Chromium's CPU against 42 s, 2026-12-05), a fifth of the whole suite's on two cores. `.ci/run` installs it.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { until } from './until.ts';

/** The headless shell, or Debian's full `chromium` where only that is installed (the same engine, more CPU). */
const EXECUTABLE = ['/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find((path) => existsSync(path));

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  if (EXECUTABLE === undefined) throw new Error('no Chromium: apt-get install chromium-headless-shell (.ci/run does)');
  return chromium.launch({ executablePath: EXECUTABLE, args: CHROMIUM_ARGS });
}

/**
 * Closes the open dialog by `close` (Escape, or Enter on its form) and waits until its close event has been handled:
 * the board gives the focus back to the dialog's opener then, a task after the dialog has shut. A test that waited
 * only for the dialog to shut focused the next dialog's button first and had the focus taken back, so that its Enter
 * opened the last dialog again (a CI run: "ack-dialog" where the silence dialog was asked for).
 */
export async function closeDialog(page: Page, close: () => Promise<void>): Promise<void> {
  await page.evaluate(
    `window.__closed = false; document.querySelector('dialog[open]').addEventListener('close', () => { window.__closed = true; }, { once: true })`,
  );
  await close();
  // Listeners run in the order they were added: the board's own (at load) has given the focus back by now.
  await until(() => page.evaluate('window.__closed === true'), 'the dialog closed and the focus given back');
}

/**
 * The text of `locator` once it matches `expected`, read until it does: the board draws a change a refresh after the
 * event that told it, and may draw a state in between (a page is stored before its first send: "not sent yet").
 * Fails with the text last read.
 */
export async function textMatching(locator: Locator, expected: RegExp, timeoutMs = 10_000): Promise<string> {
  let seen: string | null = null;
  return until(
    async () => {
      seen = await locator.textContent({ timeout: timeoutMs });
      return seen !== null && expected.test(seen) && seen;
    },
    () => `${locator} to read ${expected} (it read ${JSON.stringify(seen)})`,
    timeoutMs,
  );
}
