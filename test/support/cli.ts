// Runs the `crs` command as a user would: one-off commands through the CLI's `main` in this process (crsMain,
// replayMain) or as a process of their own (bin/crs.js: replayCli, crsAsync), and `crs serve` as a long-running child
// (spawnCrs: the embedded and the AWS integration tests start it so).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { lockDataDir } from '#adapters/sqlite/db.ts';
import { CHILDREN } from './children.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));

/** The NDJSON events `crs replay` printed, parsed. */
const replayEvents = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });

/** `crs replay ARGS` as a process of its own (bin/crs.js), `input` its standard input: its exit status and events. */
export function replayCli(args: string[], input: string) {
  const r = spawnSync(process.execPath, [CLI, 'replay', ...args], { input, encoding: 'utf8' });
  return { status: r.status, events: replayEvents(r.stdout), stderr: r.stderr };
}

/** `crs replay ARGS` through `main` in this process (crsMain: "-" reads `input`, from a file): its exit code and events. */
export async function replayMain(args: string[], input: string) {
  const r = await crsMain(['replay', ...args], { input });
  return { status: r.status, events: replayEvents(r.stdout), stderr: r.stderr };
}

/** Whether a crsMain runs: two at once (a call not awaited) would capture each other's output. */
let crsMainRunning = false;

/**
 * `crs ARGS` through the CLI's `main`, in this process, as bin/crs.js runs it (which adds only the exit status it
 * sets and a quiet end on EPIPE): each `crs` process costs about 0.25 s of CPU to start (Node and dist/cli), and the
 * unit tests ran some 290 of them. For commands that answer and end (a refusal, --help, a replay, a schema); what
 * only a process shows (the exit status, EPIPE, standard input itself) and `crs serve` run as processes (replayCli,
 * spawnCrs), and each command family keeps one test through bin/crs.js. The command in process has no standard input
 * of its own: the "-" of `crs replay` reads `input` (none: empty) from a file instead, so that nothing waits on the
 * test worker's. The umask some commands set (owner-only files) is put back after. `env`: variables set for the call
 * alone (an emulator's AWS_ENDPOINT_URL; undefined: unset), each put back as it was after, as is the one bin/crs.js
 * sets (the SDK's Node.js 20 warning off). The commands read process.env when they run, never once at import: an
 * env of a call reaches no other (the AWS SDK caches only the files it reads, by path, as AWS_CONFIG_FILE names them).
 */
export async function crsMain(
  args: string[],
  {
    input = '',
    wentOnMs = 8_000,
    env = {},
  }: { input?: string; wentOnMs?: number; env?: Record<string, string | undefined> } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  if (crsMainRunning) throw new Error(`crs ${args.join(' ')} while another crsMain runs: await each in turn`);
  crsMainRunning = true;
  const dir = args[0] === 'replay' && args.includes('-') ? mkdtempSync(join(tmpdir(), 'crs-stdin-')) : undefined;
  const umask = process.umask(0o022);
  process.umask(umask);
  const given = {
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED:
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ?? 'true',
    ...env,
  };
  const before = Object.entries(given).map(([k]) => [k, process.env[k]] as const);
  try {
    for (const [k, v] of Object.entries(given)) setEnv(k, v);
    if (dir) writeFileSync(join(dir, 'stdin'), input);
    const argv = dir ? args.map((a) => (a === '-' ? join(dir, 'stdin') : a)) : args;
    const { main } = await import('#cli/main.ts'); // here: the tests of `crs serve` alone do not load the CLI
    const r = await captured(() => main(argv), { wentOnMs, what: `crs ${args.join(' ')}` });
    return { status: r.code, stdout: r.out, stderr: r.err };
  } finally {
    for (const [k, v] of before) setEnv(k, v);
    crsMainRunning = false;
    process.umask(umask);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets a variable of process.env, or unsets it (undefined): assigning undefined would set the string "undefined". */
function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
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
 * The `crs` children still running, in one set per worker (each test file has its own copy of this module):
 * test/support/fresh-modules.ts kills what a file left running when it ends.
 */
const running = ((globalThis as { [CHILDREN]?: Set<ChildProcess> })[CHILDREN] ??= new Set<ChildProcess>());

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
  running.add(child);
  child.once('exit', () => running.delete(child));
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

/**
 * A command run in this process (crs outbox, crs silence...), its standard output and error captured. With `wentOnMs`,
 * a command that goes on instead of ending (a server started, input awaited) fails then, not at the test's timeout.
 */
export async function captured(
  run: () => Promise<number>,
  { wentOnMs, what = 'the command' }: { wentOnMs?: number; what?: string } = {},
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c) => out.push(String(c)) > 0);
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c) => err.push(String(c)) > 0);
  let went: NodeJS.Timeout | undefined;
  const wentOn = new Promise<never>((_, reject) => {
    if (wentOnMs !== undefined)
      went = setTimeout(() => reject(new Error(`${what} did not end within ${wentOnMs} ms: it went on`)), wentOnMs);
  });
  try {
    const code = await Promise.race([run(), wentOn]);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    clearTimeout(went);
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
