// A proxy in front of moto that gives its DynamoDB transactions the isolation AWS gives them. moto 5.2.1 runs each
// request on a thread of its own and, for a TransactWriteItems, deep-copies every table the transaction touches and,
// when the transaction is cancelled (a condition fails), puts those copies back in place of the tables
// (moto/dynamodb/models/__init__.py, transact_write_items): every write another request made to those tables in
// the meantime is lost, stream records included, though AWS acknowledged it; and a read made meanwhile can see the
// writes of a transaction that is then undone. The pipeline cancels transactions as a matter of course (a duplicate
// found by the seen-messages put, a state version or page revision taken by another writer), so on moto it lost
// pages and grade changes now and then (docs/emulator.md). Here a TransactWriteItems runs alone: it waits for the
// DynamoDB and DynamoDB Streams requests in flight to end, and the ones that come after it wait for it. Everything
// else (SQS, SNS, Secrets Manager) goes through untouched, and so does all of it on any other endpoint: only moto
// gets this proxy (startEmulator), so nothing is serialized against LocalStack or AWS.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MotoGuard {
  url: string;
  /** Transactions run so far, and how many of them waited for other requests. */
  stats: { transactions: number; waited: number };
  close(): Promise<void>;
}

type Mode = 'shared' | 'exclusive';

/** A readers-writer lock granted in arrival order, so that a transaction is not starved by a stream of reads. */
export class FairLock {
  private active = 0;
  private exclusive = false;
  private readonly queue: { mode: Mode; grant: () => void }[] = [];

  acquire(mode: Mode): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.active++;
        if (mode === 'exclusive') this.exclusive = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.active--;
          if (mode === 'exclusive') this.exclusive = false;
          this.next();
        });
      };
      this.queue.push({ mode, grant });
      this.next();
    });
  }

  /** Whether a request of this mode would wait now. */
  busyFor(mode: Mode): boolean {
    return this.queue.length > 0 || this.exclusive || (mode === 'exclusive' && this.active > 0);
  }

  private next(): void {
    while (this.queue.length > 0 && !this.exclusive) {
      const head = this.queue[0]!;
      if (head.mode === 'exclusive' && this.active > 0) return;
      this.queue.shift();
      head.grant();
    }
  }
}

/** The lock a request needs, from its JSON-protocol target ("DynamoDB_20120810.PutItem"), or none. */
export function lockModeOf(target: string | undefined): Mode | undefined {
  const [service, operation] = (target ?? '').split('.');
  if (service !== 'DynamoDB_20120810' && service !== 'DynamoDBStreams_20120810') return undefined;
  return operation === 'TransactWriteItems' ? 'exclusive' : 'shared';
}

export async function startMotoGuard(target: string): Promise<MotoGuard> {
  const upstream = new URL(target);
  const lock = new FairLock();
  const stats = { transactions: 0, waited: 0 };
  const server: Server = createServer((req, res) => {
    const header = req.headers['x-amz-target'];
    const mode = lockModeOf(Array.isArray(header) ? header[0] : header);
    if (!mode) return forward(req, res, () => undefined);
    if (mode === 'exclusive') {
      stats.transactions++;
      if (lock.busyFor(mode)) stats.waited++;
    }
    void lock.acquire(mode).then((release) => forward(req, res, release));
  });

  function forward(req: IncomingMessage, res: import('node:http').ServerResponse, release: () => void): void {
    // Released when moto has answered in full (it answers once it has applied the request), or cannot answer; not
    // when the client gives up, since moto may still be applying it.
    const up = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        answer.once('end', release).once('close', release);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => {
      release();
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
