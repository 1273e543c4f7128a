// The `crs serve` running on a data directory, as the operator commands reach it (crs silence, crs outbox,
// crs dead-letters): its address from DIR/serve.json and the board key from DIR/board.key, then its board API over
// HTTP. The key goes only to the server that wrote serve.json while it still runs: a serve.json left by a killed one
// (SIGKILL, a power cut) names a port any local process may listen on since, and the key sent there was the board's
// key handed over.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BOARD_KEY_FILE } from '#hosts/embedded/board-key.ts';
import { SERVE_INFO_FILE } from '#hosts/embedded/embedded.ts';

/** The server answered, but not with JSON (a 431 from Node itself for a URL too long): an answer, not silence. */
export class NotJson extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`the server answered ${status}${body.trim() ? `: ${body.trim().slice(0, 200)}` : ''}`);
  }
}

export interface ServeClient {
  url: string;
  /** One API call with the board key; throws when the server does not answer (NotJson: not with JSON). */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
}

/**
 * What the crs serve running on `dir` left there: its address, its board's (at --public-url when given) and the board
 * key; undefined when none runs: no serve.json, or one left behind by a server that is gone (the data directory's lock
 * is free, or the process that wrote it no longer exists).
 */
export async function runningServe(dir: string): Promise<{ url: string; board: string; key: string } | undefined> {
  let info: { url: string; board?: unknown; pid?: unknown };
  let key: string;
  try {
    info = JSON.parse(readFileSync(join(dir, SERVE_INFO_FILE), 'utf8')) as typeof info;
    key = readFileSync(join(dir, BOARD_KEY_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
  const { dataDirLocked } = await import('#adapters/sqlite/db.ts');
  if (!dataDirLocked(dir) || (typeof info.pid === 'number' && !processRuns(info.pid))) return undefined;
  return { url: info.url, board: typeof info.board === 'string' ? info.board : `${info.url}/`, key };
}

/** The client of the crs serve running on `dir` (runningServe), or undefined when none runs. */
export async function serveClient(dir: string): Promise<ServeClient | undefined> {
  const running = await runningServe(dir);
  if (running === undefined) return undefined;
  const { url, key } = running;
  return {
    url,
    call: async (method, path, body) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      try {
        return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
      } catch {
        throw new NotJson(res.status, text);
      }
    },
  };
}

/** Whether a process with this id exists (EPERM: it does, another user's). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The crs serve running on the data directory, if one runs (serveClient) and answers `probe` (a GET of the API the
 * command goes on to use); undefined sends the command to the database itself, under the data directory's lock.
 */
export async function answeringServer(dir: string, probe: string): Promise<ServeClient | undefined> {
  const client = await serveClient(dir);
  try {
    await client?.call('GET', probe);
    return client;
  } catch {
    return undefined;
  }
}

/**
 * --all (one call with no id) or each id in turn; an id that matched nothing is said (`nothing(id)`, on stderr) and
 * counted, so that the command exits 1 and a script acting on several ids learns which did nothing.
 */
export async function eachIdOrAll(
  all: boolean | undefined,
  ids: string[],
  act: (id: string | undefined) => Promise<number>,
  nothing: (id: string) => string,
): Promise<{ count: number; missing: number }> {
  let count = 0;
  let missing = 0;
  for (const id of all ? [undefined] : ids) {
    const n = await act(id);
    if (n === 0 && id !== undefined) {
      process.stderr.write(`${nothing(id)}\n`);
      missing++;
    }
    count += n;
  }
  return { count, missing };
}
