// The browser tests' Chromium: Debian's chromium-headless-shell package (`npx playwright install` cannot download
// here), driven by playwright-core, quiet (no network of its own, no updates). The headless shell is Chromium's own
// headless build (Blink and V8 of the same release, without the browser's user interface), the one Playwright runs
// headless by default: the full `chromium` in headless mode took about three times its CPU (board and board-a11y:
// 130 s of Chromium's CPU against 42 s, 2026-12-05), a fifth of the whole suite's on two cores. `.ci/run` installs it.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
