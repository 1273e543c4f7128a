// Which release of crs this is: the commit it runs from and that commit's date (UTC), marked when the checkout had
// changes not committed. The runbook's upgrade and rollback rules speak in those dates ("roll back no further than
// 2026-12-06"), so an operator compares them with what `crs --version`, `/api/health` and the stack's `Release`
// output say. Read from git when asked (the CLI, a synth); a Lambda reads what the stack set (ENV.release).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The environment variable the stack sets on each function to its release (ENV.release). */
export const RELEASE_VARIABLE = 'CRS_RELEASE';

/** What a release is called when nothing says it (not a git checkout, git missing, a variable unset). */
export const UNKNOWN_RELEASE = 'unknown release';

/** The release of the checkout at `root`: `2026-12-07 7bd0b468`, `... with uncommitted changes`, or UNKNOWN_RELEASE. */
export function releaseOfCheckout(root: string): string {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', root, ...args], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC' },
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const head = git('log', '-1', '--abbrev=8', '--date=format-local:%Y-%m-%d', '--format=%cd %h');
    if (!head) return UNKNOWN_RELEASE;
    const changed = git('status', '--porcelain', '--untracked-files=no') !== '';
    return changed ? `${head} with uncommitted changes` : head;
  } catch {
    return UNKNOWN_RELEASE;
  }
}

let own: string | undefined;

/** The release of the checkout this code runs from (the CLI's, the synth's), read once a process. */
export function thisRelease(): string {
  own ??= releaseOfCheckout(fileURLToPath(new URL('../..', import.meta.url)));
  return own;
}
