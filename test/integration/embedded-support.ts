// Runs the real `crs serve` as a child process (node bin/crs.js serve), as an operator would, and talks to it
// over HTTP. Used by the embedded integration tests, the browser test and the HTTP benchmark.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeviceMessage } from '#domain/contract.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CRS_BIN = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));
export const INGEST_TOKEN = 'integration-test-token-of-32-characters';

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  boardUrl: string;
  boardKey: string;
  /** Every complete line written to standard output (the page stream), in order. */
  lines: string[];
  /** Called with each new stdout line (for latency measurements). */
  onLine?: (line: string, at: bigint) => void;
  stderr: () => string;
  exited: Promise<number | null>;
}

export async function spawnServe(
  dataDir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CRS_BIN, 'serve', '--port', '0', '--data', dataDir, ...args], {
    cwd: REPO,
    env: { ...process.env, CRS_INGEST_TOKEN: INGEST_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const proc: Partial<ServeProcess> & { lines: string[] } = { child, lines: [], stderr: () => err };
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
  // 'close', not 'exit': every line the process wrote has been read by then.
  proc.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const board = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crs serve did not start:\n${err}`)), 20_000);
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const m = err.match(/on-call board: (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`crs serve exited with ${code}:\n${err}`));
    });
  });
  const u = new URL(board);
  return Object.assign(proc, { url: u.origin, boardUrl: board, boardKey: u.searchParams.get('key')! }) as ServeProcess;
}

export async function health(s: {
  url: string;
  boardKey: string;
}): Promise<{ inbox: number; undelivered: Record<string, number>; graded: number }> {
  const res = await fetch(`${s.url}/api/health`, { headers: { authorization: `Bearer ${s.boardKey}` } });
  return (await res.json()) as { inbox: number; undelivered: Record<string, number>; graded: number };
}

/** Waits until everything accepted is graded and every committed page has gone to stdout. */
export async function idle(s: { url: string; boardKey: string }, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const h = await health(s);
    if (h.inbox === 0 && h.undelivered.stdout === 0) return;
    if (Date.now() > end) throw new Error(`not idle after ${timeoutMs} ms: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function stop(s: ServeProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal);
  return s.exited;
}

export function post(url: string, m: DeviceMessage | DeviceMessage[], token = INGEST_TOKEN): Promise<Response> {
  return fetch(`${url}${Array.isArray(m) ? '/v1/messages/batch' : '/v1/messages'}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(m),
  });
}

/** Page events from NDJSON lines. */
export const pageEvents = (lines: string[]) =>
  lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string; notificationId: string; patientId: string });
