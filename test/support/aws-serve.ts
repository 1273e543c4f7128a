// Runs the real `crs serve --backend aws` as a child process against an emulator, as an operator would, and talks
// to it over HTTP: the AWS integration tests and the end-to-end bench use it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { DeviceMessage } from '#domain/contract.ts';
import type { AwsHostHealth } from '#hosts/aws-emulator/host.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CRS_BIN = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));
export const INGEST_TOKEN = 'aws-integration-token-of-32-characters';

export interface Resources {
  prefix: string;
  queue: string;
  queues: Record<string, string>;
  tables: Record<string, string>;
  topic: string;
  /** The acknowledge-link secret's ARN. */
  secret: string;
  ackBaseUrl: string;
  teamQueues: Record<string, string>;
}

export interface AwsServe {
  child: ChildProcess;
  url: string;
  resources: Resources;
  /** Every complete stdout line (the page stream), in order. */
  lines: string[];
  onLine?: (line: string, at: bigint) => void;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** A prefix of its own for each run, so that runs share an emulator without meeting. */
export const runPrefix = (tag: string) => `t${tag}-${randomBytes(4).toString('hex')}`;

export async function spawnAwsServe(endpoint: string, prefix: string, args: string[] = [], env: Record<string, string> = {}): Promise<AwsServe> {
  const child = spawn(process.execPath, [CRS_BIN, 'serve', '--backend', 'aws', '--endpoint', endpoint, '--prefix', prefix, '--port', '0', ...args], {
    cwd: REPO,
    env: { ...process.env, CRS_INGEST_TOKEN: INGEST_TOKEN, POWERTOOLS_LOG_LEVEL: 'WARN', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const proc: Partial<AwsServe> & { lines: string[] } = { child, lines: [], stderr: () => err };
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
  proc.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const started = await new Promise<{ url: string; resources: Resources }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crs serve --backend aws did not start:\n${err.slice(-4000)}`)), 90_000);
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const url = err.match(/listening on (http:\/\/\S+)/);
      const resources = err.match(/crs serve: resources (\{.*\})\n/);
      if (url && resources) {
        clearTimeout(timer);
        resolve({ url: url[1]!, resources: JSON.parse(resources[1]!) as Resources });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`crs serve --backend aws exited with ${code}:\n${err.slice(-4000)}`));
    });
  });
  return Object.assign(proc, started) as AwsServe;
}

export async function health(s: { url: string }): Promise<AwsHostHealth> {
  const res = await fetch(`${s.url}/local/health`);
  if (res.status !== 200) throw new Error(`health answered ${res.status}`);
  return (await res.json()) as AwsHostHealth;
}

/**
 * Waits until `pages` pages have been printed and the pipeline is idle: the queue empty, the stream read to its
 * end with nothing pending; then a quiet moment in which nothing more is printed.
 */
export async function settle(s: AwsServe, pages: number, timeoutMs = 120_000, quietMs = 1500): Promise<AwsHostHealth> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const h = await health(s);
    const idle = h.queue.visible === 0 && h.queue.inFlight === 0 && h.notify.pending === 0 && h.notify.caughtUp;
    if (idle && h.pages.printed >= pages) {
      await new Promise((r) => setTimeout(r, quietMs));
      const again = await health(s);
      if (again.pages.printed === h.pages.printed) return again;
      continue;
    }
    if (Date.now() > end) throw new Error(`not settled after ${timeoutMs} ms (want ${pages} pages): ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function stop(s: AwsServe, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
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

export type { PageLine as PrintedPage } from '#hosts/aws-emulator/page-printer.ts';
import type { PageLine as PrintedPage } from '#hosts/aws-emulator/page-printer.ts';

export interface PageLine {
  type: string;
  notificationId: string;
  patientId: string;
  condition: string;
  toGrade: number;
  teams: string[];
}

/** The grade changes printed (one `notification` line each, as `crs replay` prints them). */
export const pageLines = (lines: string[]) =>
  lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as PageLine)
    .filter((e) => e.type === 'notification');

/** Every page a team received (one `page` line each: team, role, level, acknowledge link). */
export const teamPages = (lines: string[]) =>
  lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string } & PrintedPage)
    .filter((e) => e.type === 'page');

/** Each patient's pages in order. */
export function byPatient<T extends { patientId: string }>(events: T[]): Record<string, T[]> {
  const out: Record<string, T[]> = {};
  for (const e of events) (out[e.patientId] ??= []).push(e);
  return out;
}

/** Deletes a run's resources from the emulator (the same command an operator uses). */
export async function teardown(endpoint: string, prefix: string): Promise<void> {
  const child = spawn(process.execPath, [CRS_BIN, 'serve', '--backend', 'aws', '--teardown', '--endpoint', endpoint, '--prefix', prefix], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`teardown of ${prefix} failed:\n${err.slice(-2000)}`);
}
