// Runs the real `crs` command (bin/crs.js) as a user would: one-off commands (their NDJSON output parsed), and
// `crs serve` as a long-running child (spawnCrs: the embedded and the AWS integration tests start it so).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { lockDataDir } from '#adapters/sqlite/db.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));

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
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // 'close', not 'exit': the output is all read by then.
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A long-running `crs` child (`crs serve`): its standard output line by line, its standard error, and its end. */
export interface CrsProcess {
  child: ChildProcess;
  /** Every complete line written to standard output (the page stream), in order. */
  lines: string[];
  /** Called with each new stdout line (for latency measurements). */
  onLine?: (line: string, at: bigint) => void;
  stderr: () => string;
  /** Its exit code, once every line it wrote has been read. */
  exited: Promise<number | null>;
}

/**
 * Starts `crs ARGS` and waits until `started` finds what it needs in its standard error (where it listens); refused
 * when the process exits first or has not started within `timeoutMs`.
 */
export async function spawnCrs<T extends object>(
  args: string[],
  env: Record<string, string>,
  started: (stderr: string) => T | undefined,
  timeoutMs: number,
): Promise<CrsProcess & T> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const proc: CrsProcess = {
    child,
    lines: [],
    stderr: () => err,
    // 'close', not 'exit': every line the process wrote has been read by then.
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const at = process.hrtime.bigint();
    out += chunk;
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const line of parts) {
      proc.lines.push(line);
      proc.onLine?.(line, at);
    }
  });
  child.stderr!.setEncoding('utf8');
  const name = `crs ${args.slice(0, args[1] === '--backend' ? 3 : 1).join(' ')}`;
  const found = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${err.slice(-4000)}`)), timeoutMs);
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const t = started(err);
      if (t) {
        clearTimeout(timer);
        resolve(t);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${err.slice(-4000)}`));
    });
  });
  return Object.assign(proc, found);
}

/** A command run in this process (crs outbox, crs silence...), its standard output and error captured. */
export async function captured(run: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => out.push(String(c)) > 0);
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c) => err.push(String(c)) > 0);
  try {
    const code = await run();
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/**
 * Makes `dir` the data directory of a crs serve answering on `port` (its serve.json, database and board key), run by
 * this process: it holds the directory's lock, as a server does, until `release`.
 */
export function pretendServeDir(dir: string, port: number): { release(): void } {
  writeFileSync(join(dir, 'crs.db'), '');
  writeFileSync(join(dir, 'serve.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid }));
  writeFileSync(join(dir, 'board.key'), 'k'.repeat(43));
  return lockDataDir(dir);
}
