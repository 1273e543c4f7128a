// An AWS emulator for the AWS integration tests and the end-to-end bench: the endpoint in AWS_ENDPOINT_URL when
// set (CI starts moto itself; `npm run test:localstack` points at LocalStack), otherwise a moto_server of this
// test file's own on a free loopback port, stopped afterwards. moto (started here or found at AWS_ENDPOINT_URL) is
// reached through a guard that runs its DynamoDB transactions in isolation (moto-guard.ts: moto 5.2.1 loses other
// requests' writes when it rolls a cancelled transaction back); LocalStack and AWS are reached directly. The moto
// started here (and by .ci/run) is moto-server.py: moto_server with its FIFO redelivery order put right.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startMotoGuard } from './moto-guard.ts';

export interface Emulator {
  endpoint: string;
  /** True when this process started it (and stop() ends it). */
  owned: boolean;
  stop(): Promise<void>;
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

/** Whether the endpoint is moto: it serves its dashboard at /moto-api/. */
async function isMoto(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/moto-api/', endpoint), { signal: AbortSignal.timeout(5000) });
    return res.ok && (await res.text()).includes('<title>Moto</title>');
  } catch {
    return false;
  }
}

/** The endpoint the tests use: moto's behind the guard, any other as it is. */
async function guarded(endpoint: string): Promise<{ endpoint: string; close: () => Promise<void> }> {
  if (!(await isMoto(endpoint))) return { endpoint, close: async () => undefined };
  const guard = await startMotoGuard(endpoint);
  return { endpoint: guard.url, close: guard.close };
}

export async function startEmulator(): Promise<Emulator> {
  const given = process.env.AWS_ENDPOINT_URL;
  if (given) {
    await waitForEndpoint(given);
    const { endpoint, close } = await guarded(given);
    return { endpoint, owned: false, stop: close };
  }
  const port = await freePort();
  const server = fileURLToPath(new URL('./moto-server.py', import.meta.url));
  const child: ChildProcess = spawn('python3', [server, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new Error(`cannot start python3 ${server} (${err.message}); install moto or set AWS_ENDPOINT_URL`)),
    );
    void exited.then(() => reject(new Error(`moto_server exited:\n${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await Promise.race([waitForEndpoint(endpoint), failed]);
  failed.catch(() => undefined);
  const guard = await startMotoGuard(endpoint);
  return {
    endpoint: guard.url,
    owned: true,
    stop: async () => {
      await guard.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // A moto busy with a large table can ignore SIGTERM for long: then it is killed.
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}
