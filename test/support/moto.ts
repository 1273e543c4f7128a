// An AWS emulator for the AWS integration tests and the end-to-end bench: the endpoint in AWS_ENDPOINT_URL when
// set (`npm run test:localstack` points at LocalStack), otherwise a moto of this test file's own on a free
// loopback port, stopped afterwards (CI too): moto-server.py, moto_server with three of its departures from AWS put
// right (a cancelled transaction losing other writes, a timed-out FIFO batch coming back out of order, a visibility
// change of a message no longer in flight taken) and transactions that back up the items they touch, not whole
// tables (docs/emulator.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Emulator {
  endpoint: string;
  /** True when this process started it (and stop() ends it). */
  owned: boolean;
  stop(): Promise<void>;
}

/** The endpoints of the motos this process started and has not stopped. */
const started = new Set<string>();

/** Whether `endpoint` is a moto of this test file's own, which ends with the file (with all it holds). */
export function isOwnEmulator(endpoint: string): boolean {
  return started.has(endpoint);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Waits until the endpoint answers HTTP at all (any status). */
async function waitForEndpoint(endpoint: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      if (Date.now() > end) throw new Error(`no AWS emulator answers at ${endpoint}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startEmulator(): Promise<Emulator> {
  const given = process.env.AWS_ENDPOINT_URL;
  if (given) {
    await waitForEndpoint(given);
    return { endpoint: given, owned: false, stop: async () => undefined };
  }
  const zygote = await runZygote();
  const moto = zygote ? forkedMoto(zygote) : spawnedMoto();
  const endpoint = `http://127.0.0.1:${await Promise.race([moto.port, moto.failed])}`;
  await Promise.race([waitForEndpoint(endpoint), moto.failed]);
  moto.failed.catch(() => undefined);
  started.add(endpoint);
  return {
    endpoint,
    owned: true,
    stop: async () => {
      started.delete(endpoint);
      moto.end();
      // A moto busy with a large table can take long to end: then it is killed.
      const force = setTimeout(() => moto.kill(), 5000);
      await moto.exited;
      clearTimeout(force);
    },
  };
}

const SERVER = fileURLToPath(new URL('./moto-server.py', import.meta.url));

/** A moto being started: its port once it listens, its end, and a rejection with what it said if it ends first. */
interface StartingMoto {
  port: Promise<string>;
  failed: Promise<never>;
  exited: Promise<void>;
  /** Asks it to end. */
  end(): void;
  kill(): void;
}

/** Reads what a moto says (its standard error) for its port, keeping the last of it for an error message. */
function reading(output: NodeJS.ReadableStream, exited: Promise<void>, startError: Promise<Error>) {
  let said = '';
  let listening: (port: string) => void;
  const port = new Promise<string>((resolve) => (listening = resolve));
  output.on('data', (c: Buffer) => {
    said = (said + c.toString()).slice(-4000);
    const found = said.match(/moto-server\.py: listening on port (\d+)/)?.[1];
    if (found) listening(found);
  });
  const failed = new Promise<never>((_, reject) => {
    void startError.then(reject);
    void exited.then(() => reject(new Error(`moto_server exited:\n${said}`)));
  });
  return { port, failed, said: () => said };
}

/** moto-server.py as a process of its own (outside a vitest run: the bench). */
function spawnedMoto(): StartingMoto {
  // Port 0: moto binds a free port itself and says which (a port found free here first could be taken meanwhile).
  const child: ChildProcess = spawn('python3', [SERVER, '-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const startError = new Promise<Error>((resolve) =>
    child.once('error', (err) =>
      resolve(new Error(`cannot start python3 ${SERVER} (${err.message}); install moto or set AWS_ENDPOINT_URL`)),
    ),
  );
  const { port, failed } = reading(child.stderr!, exited, startError);
  const signal = (s: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
  };
  return { port, failed, exited, end: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

/**
 * A moto forked from the run's zygote (moto-server.py, patch 7): the connection is the moto's standard error, and
 * closing it ends the moto.
 */
function forkedMoto(socketPath: string): StartingMoto {
  const conn = createConnection(socketPath);
  const exited = new Promise<void>((resolve) => conn.once('close', () => resolve()));
  const startError = new Promise<Error>((resolve) =>
    conn.once('error', (err) => resolve(new Error(`cannot reach the moto zygote at ${socketPath}: ${err.message}`))),
  );
  const { port, failed, said } = reading(conn, exited, startError);
  const kill = () => {
    const pid = said().match(/moto-server\.py: pid (\d+)/)?.[1];
    if (pid) process.kill(Number(pid), 'SIGKILL');
    conn.destroy();
  };
  return { port, failed, exited, end: () => conn.end(), kill };
}

/**
 * The socket of the vitest run's moto zygote (global-setup.ts gives the run a directory), started by the first file
 * that needs one; undefined outside a vitest run.
 */
async function runZygote(): Promise<string | undefined> {
  const dir = process.env.CRS_TEST_RUN_DIR;
  const runPid = process.env.CRS_TEST_RUN_PID;
  if (!dir || !runPid) return undefined;
  const socketPath = join(dir, 'moto.sock');
  const log = join(dir, 'moto-zygote.log');
  try {
    mkdirSync(join(dir, 'moto-zygote'));
    const out = openSync(log, 'a');
    spawn('python3', [SERVER, '--zygote', socketPath, runPid], { detached: true, stdio: ['ignore', 'ignore', out] })
      .on('error', () => undefined)
      .unref();
    closeSync(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // Another file may have started it a moment ago: the socket is there once it accepts (moto-server.py renames it).
  const end = Date.now() + 60_000;
  while (!existsSync(socketPath)) {
    if (Date.now() > end) {
      const said = existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '';
      throw new Error(`the moto zygote did not start (install moto or set AWS_ENDPOINT_URL):\n${said}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return socketPath;
}
