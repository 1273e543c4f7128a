// Runs the real `crs` command (bin/crs.js) as a user would, and parses its NDJSON output.
import { spawnSync } from 'node:child_process';

export const CLI = new URL('../../bin/crs.js', import.meta.url).pathname;

export function replayCli(args: string[], input: string) {
  const r = spawnSync(process.execPath, [CLI, 'replay', ...args], { input, encoding: 'utf8' });
  const events = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
  return { status: r.status, events, stderr: r.stderr };
}
