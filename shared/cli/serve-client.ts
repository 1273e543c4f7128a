// The `crs serve` running on a data directory, as the operator commands reach it (crs silence, crs outbox): its
// address from DIR/serve.json and the board key from DIR/board.key, then its board API over HTTP.
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

/** The client of the server of `dir`, or undefined when none has left its address there. */
export function serveClient(dir: string): ServeClient | undefined {
  let url: string;
  let key: string;
  try {
    url = (JSON.parse(readFileSync(join(dir, SERVE_INFO_FILE), 'utf8')) as { url: string }).url;
    key = readFileSync(join(dir, BOARD_KEY_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
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
