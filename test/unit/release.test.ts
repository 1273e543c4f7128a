// Which release runs (shared/app/release.ts): what `crs --version`, `crs serve`, /api/health, each function's log
// lines and the stack's Release output say, so that an operator can apply the runbook's rules, dated by release.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UNKNOWN_RELEASE, releaseOfCheckout, thisRelease } from '#app/release.ts';
import { crsMain } from '#test/support/cli.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-release-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A repository with one commit made at `at` (committer date, with its offset), as `git` in dir. */
function commitAt(at: string): string {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GIT_COMMITTER_DATE: at, GIT_AUTHOR_DATE: at },
    }).trim();
  git('init', '-q');
  writeFileSync(join(dir, 'a.txt'), 'one\n');
  git('add', 'a.txt');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-q', '-m', 'one');
  return git('rev-parse', '--short=8', 'HEAD');
}

describe('the release of a checkout', () => {
  it("is its commit's date in UTC and its short hash", () => {
    // 23:30 at -05:00 is the next day in UTC: the runbook's dates are UTC.
    const hash = commitAt('2026-12-06T23:30:00-05:00');
    expect(releaseOfCheckout(dir)).toBe(`2026-12-07 ${hash}`);
  });

  it('says when the checkout has changes not committed (what runs is no commit)', () => {
    const hash = commitAt('2026-12-07T10:00:00Z');
    writeFileSync(join(dir, 'a.txt'), 'two\n');
    expect(releaseOfCheckout(dir)).toBe(`2026-12-07 ${hash} with uncommitted changes`);
  });

  it('is the UTC date whatever zone the machine running crs is in', () => {
    const hash = commitAt('2026-12-06T23:30:00-05:00');
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(releaseOfCheckout(dir)).toBe(`2026-12-07 ${hash}`);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('says nothing of files git does not track (a scratch file is no change to what runs)', () => {
    const hash = commitAt('2026-12-07T10:00:00Z');
    writeFileSync(join(dir, 'scratch.txt'), 'notes\n');
    expect(releaseOfCheckout(dir)).toBe(`2026-12-07 ${hash}`);
  });

  it('is unknown outside a git checkout, never an error', () => {
    expect(releaseOfCheckout(dir)).toBe(UNKNOWN_RELEASE);
  });
});

describe('crs --version', () => {
  it('prints the release of its checkout and exits 0', async () => {
    const r = await crsMain(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`crs ${thisRelease()}\n`);
    expect(r.stdout).toMatch(/^crs \d{4}-\d{2}-\d{2} [0-9a-f]{8}( with uncommitted changes)?\n$/);
  });
});
