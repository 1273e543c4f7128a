// Runs the real `crs` command (bin/crs.js) as a user would, and parses its NDJSON output.
import { spawn, spawnSync } from 'node:child_process';

export const CLI = new URL('../../bin/crs.js', import.meta.url).pathname;

export function replayCli(args: string[], input: string) {
  const r = spawnSync(process.execPath, [CLI, 'replay', ...args], { input, encoding: 'utf8' });
  const events = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
  return { status: r.status, events, stderr: r.stderr };
}

/** Runs `crs ARGS` with extra environment (e.g. an emulator's AWS_ENDPOINT_URL), without blocking the test. */
export function crsAsync(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
