// Where the test helpers keep the `crs` children they started (test/support/cli.ts: spawnCrs), for the per-file
// clean-up in test/support/fresh-modules.ts. On globalThis: each test file loads its own copy of the helpers.
import type { ChildProcess } from 'node:child_process';

export const CHILDREN = Symbol.for('crs.test.children');

/**
 * Kills the children a test file left running. A test that failed before it stopped its server left it so until
 * 2026-12-06, after the run too: a server whose reader has gone retries its stdout lane and never ends.
 */
export function killLeftChildren(): void {
  const running = (globalThis as { [CHILDREN]?: Set<ChildProcess> })[CHILDREN];
  for (const child of running ?? []) child.kill('SIGKILL');
  running?.clear();
}
