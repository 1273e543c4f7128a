// An AWS emulator for the AWS integration tests and the end-to-end bench: the endpoint in AWS_ENDPOINT_URL when
// set (`npm run test:localstack` points at LocalStack), otherwise a moto of this test file's own on a free
// loopback port, stopped afterwards (CI too): moto-server.py, moto_server with three of its departures from AWS put
// right (a cancelled transaction losing other writes, a timed-out FIFO batch coming back out of order, a visibility
// change of a message no longer in flight taken) and transactions that back up the items they touch, not whole
// tables (docs/emulator.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
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
  const server = fileURLToPath(new URL('./moto-server.py', import.meta.url));
  // Port 0: moto binds a free port itself and says which (a port found free here first could be taken meanwhile).
  const child: ChildProcess = spawn('python3', [server, '-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let listening: (port: string) => void;
  const bound = new Promise<string>((resolve) => (listening = resolve));
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
    const port = stderr.match(/moto-server\.py: listening on port (\d+)/)?.[1];
    if (port) listening(port);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new Error(`cannot start python3 ${server} (${err.message}); install moto or set AWS_ENDPOINT_URL`)),
    );
    void exited.then(() => reject(new Error(`moto_server exited:\n${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${await Promise.race([bound, failed])}`;
  await Promise.race([waitForEndpoint(endpoint), failed]);
  failed.catch(() => undefined);
  started.add(endpoint);
  return {
    endpoint,
    owned: true,
    stop: async () => {
      started.delete(endpoint);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // A moto busy with a large table can ignore SIGTERM for long: then it is killed.
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}
