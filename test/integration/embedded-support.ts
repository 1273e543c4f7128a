// Runs the real `crs serve` as a child process (node bin/crs.js serve), as an operator would, and talks to it
// over HTTP. Used by the embedded integration tests, the browser test and the HTTP benchmark.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { CLI, REPO, spawnCrs, type CrsProcess } from '#test/support/cli.ts';

export { REPO, CLI as CRS_BIN };
export const INGEST_TOKEN = 'integration-test-token-of-32-characters';

export interface ServeProcess extends CrsProcess {
  url: string;
  boardUrl: string;
  boardKey: string;
}

export async function spawnServe(
  dataDir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  // The board's address; its key from board.key, as crs board-link reads it (a log is never given the link).
  const started = (err: string) => {
    const board = err.match(/on-call board: (http:\/\/\S+)/)?.[1];
    if (!board) return undefined;
    const boardKey = readFileSync(join(dataDir, 'board.key'), 'utf8').trim();
    return { url: new URL(board).origin, boardUrl: `${board}?key=${boardKey}`, boardKey };
  };
  return spawnCrs(
    ['serve', '--port', '0', '--data', dataDir, ...args],
    { CRS_INGEST_TOKEN: INGEST_TOKEN, ...env },
    started,
    20_000,
  );
}

export async function health(s: {
  url: string;
  boardKey: string;
}): Promise<{ inbox: number; undelivered: Record<string, number>; graded: number }> {
  const res = await fetch(`${s.url}/api/health`, { headers: { authorization: `Bearer ${s.boardKey}` } });
  return (await res.json()) as { inbox: number; undelivered: Record<string, number>; graded: number };
}

/**
 * Waits until everything accepted is graded, the pager has opened the pages of every grade change (its outbox lane:
 * each first send goes into the outbox before the lane moves on) and everything committed has gone to stdout. Until
 * 2026-12-06 the pager's lane was not waited for: a page line read after idle() could still be to come.
 */
export async function idle(s: { url: string; boardKey: string }, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const h = await health(s);
    if (h.inbox === 0 && h.undelivered.pager === 0 && h.undelivered.stdout === 0) return;
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

/** The pages a `crs serve --page-lines` printed. */
export const pageLines = (s: ServeProcess) =>
  s.lines.filter((l) => l.includes('"type":"page"')).map((l) => JSON.parse(l) as PageEvent);

/** A `--config` file in `dir` with only paging settings. */
export function pagingConfig(dir: string, name: string, paging: object): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ paging }));
  return file;
}
