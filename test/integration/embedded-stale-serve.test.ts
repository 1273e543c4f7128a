// A serve.json left behind by a `crs serve` killed with SIGKILL (or a power cut) names a port that any local process
// may listen on since. `crs silence`, `crs outbox` and `crs dead-letters` sent the board key to whatever answered
// there (the key handed to another process) and reported its 401. Now the key goes only to the server that wrote
// serve.json while it still runs: the data directory's lock must be held and the process that wrote it alive.
// Real processes: the real `crs serve` killed, another listener on its port, the commands run as an operator would.
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataDirLocked, lockDataDir } from '#adapters/sqlite/db.ts';
import { crsAsync } from '#test/support/cli.ts';
import { spawnServe, stop } from './embedded-support.ts';

let dir: string;
let squatter: Server | undefined;
let heard: { path: string; authorization: string | undefined }[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-stale-serve-'));
  heard = [];
});
afterEach(async () => {
  if (squatter) await new Promise((r) => squatter!.close(r));
  squatter = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** The real crs serve, killed with SIGKILL: its serve.json stays, and another process listens on its port. */
async function killedServeAndSquatter(): Promise<{ boardKey: string; port: number }> {
  const serve = await spawnServe(dir);
  const port = Number(new URL(serve.url).port);
  await stop(serve, 'SIGKILL');
  expect(JSON.parse(readFileSync(join(dir, 'serve.json'), 'utf8')).url).toBe(serve.url);
  squatter = createServer((req, res) => {
    heard.push({ path: req.url!, authorization: req.headers.authorization });
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"who are you?"}');
  });
  // The port is free from the kill until here, but any process may take it meanwhile: that fails the test at once,
  // naming the port (a listen error unheard left the test waiting for its timeout).
  await new Promise<void>((resolve, reject) => {
    squatter!.once('error', (err) =>
      reject(new Error(`the squatter cannot listen on ${port}, the killed crs serve's port: ${err.message}`)),
    );
    squatter!.listen(port, '127.0.0.1', resolve);
  });
  return { boardKey: serve.boardKey, port };
}

const crs = (...args: string[]) => crsAsync([...args, '--data', dir], {});

describe('a serve.json left by a crs serve killed with SIGKILL', () => {
  it('sends the board key to no one: crs silence says no server runs; crs outbox and crs dead-letters read the database', async () => {
    const { boardKey } = await killedServeAndSquatter();

    const silences = await crs('silence', 'list');
    expect(silences.stderr).toContain(`no crs serve is running on ${dir}`);
    expect(silences.stderr).not.toContain('401');
    expect(silences.status).toBe(2);

    const outbox = await crs('outbox', 'list');
    expect(outbox.status, outbox.stderr).toBe(0);
    expect(outbox.stdout).toBe('no parked records\n');
    expect(outbox.stderr).toContain(`no crs serve is running on ${dir}; read from its database`);

    const dead = await crs('dead-letters', 'list');
    expect(dead.status, dead.stderr).toBe(0);
    expect(dead.stderr).toContain(`no crs serve is running on ${dir}; read from its database`);

    expect(heard).toEqual([]);
    expect(JSON.stringify(heard)).not.toContain(boardKey);
  });

  it('sends it to no one either while another process holds the data directory (the pid that wrote serve.json is gone)', async () => {
    await killedServeAndSquatter();
    const lock = lockDataDir(dir); // a crs command working on the database, say
    try {
      const silences = await crs('silence', 'list');
      expect(silences.status).toBe(2);
      expect(silences.stderr).toContain(`no crs serve is running on ${dir}`);
      const outbox = await crs('outbox', 'retry', '--all');
      expect(outbox.status).toBe(1);
      expect(outbox.stderr).toContain(`crs outbox: ${dir} is in use by another process`);
      expect(heard).toEqual([]);
    } finally {
      lock.release();
    }
  });

  it('still reaches the crs serve that runs (its lock held, its pid alive)', async () => {
    const serve = await spawnServe(dir);
    try {
      const silences = await crs('silence', 'list');
      expect(silences.status, silences.stderr).toBe(0);
      const dead = await crs('dead-letters', 'list');
      expect(dead.status, dead.stderr).toBe(0);
      expect(dead.stdout).toBe('no dead letters\n');
      expect(dead.stderr).toBe('');
    } finally {
      await stop(serve);
    }
  });
});

describe('a crs serve stopped with SIGTERM, as a supervisor or a script stops it', () => {
  it('exits 0 by itself, leaves no serve.json and frees the data directory: the next crs serve starts on it', async () => {
    // The signal must reach this process: `npx crs serve` killed leaves it running, holding the directory (npx
    // does not pass the signal on), so docs/embedded.md has a supervisor run `node bin/crs.js serve`.
    const serve = await spawnServe(dir);
    expect(dataDirLocked(dir)).toBe(true);
    expect(existsSync(join(dir, 'serve.json'))).toBe(true);
    expect(await stop(serve, 'SIGTERM')).toBe(0); // null had the signal ended it, its work in flight cut off
    expect(serve.stderr()).toContain('crs serve: SIGTERM: finishing the work in flight and stopping');
    expect(existsSync(join(dir, 'serve.json'))).toBe(false);
    expect(dataDirLocked(dir)).toBe(false);
    const next = await spawnServe(dir);
    expect(await stop(next)).toBe(0);
  });
});
