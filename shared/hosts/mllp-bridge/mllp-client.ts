// An MLLP sender, as a monitor gateway is one: one connection, one message at a time, each answered by its ACK
// before the next goes. Used by `crs simulate --format hl7v2 --mllp`, the tests and the MLLP benchmark. With `tls`,
// MLLP inside TLS: the device's certificate and key, and the CA the listener's certificate must be signed by.
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { MllpTls } from '../mllp-tls.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';

export class MllpClient {
  private socket: Socket | undefined;
  /** The connection opened last (connecting or connected). */
  private current: Socket | undefined;
  private readonly decoder = new MllpDecoder();
  private waiting: { resolve: (ack: string) => void; reject: (err: Error) => void } | undefined;
  private queue = Promise.resolve() as Promise<unknown>;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs = 30_000,
    /** The address to send from (a loopback one per bedside monitor in the benchmark: each monitor has its own). */
    private readonly localAddress?: string,
    private readonly tls?: MllpTls,
  ) {}

  private open(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const where = {
        host: this.host,
        port: this.port,
        ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      };
      const s = this.tls
        ? connectTls({ ...where, cert: this.tls.cert, key: this.tls.key, ca: this.tls.ca, minVersion: 'TLSv1.2' })
        : connect(where);
      s.setNoDelay(true);
      s.once(this.tls ? 'secureConnect' : 'connect', () => {
        this.socket = s;
        resolve(s);
      });
      // A connection given up on (a timeout) closes later, when the next send may be waiting on a new one: only the
      // current connection's end fails the send waiting.
      this.current = s;
      s.on('error', (err) => {
        reject(err);
        if (this.current === s) this.fail(err);
      });
      s.on('close', () => {
        if (this.current === s) this.fail(new Error('the MLLP connection closed before the ACK'));
      });
      s.on('data', (chunk: Buffer) => {
        for (const e of this.decoder.push(chunk)) {
          if (e.type !== 'frame') continue;
          const w = this.waiting;
          this.waiting = undefined;
          w?.resolve(e.text);
        }
      });
    });
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
    this.socket = undefined;
  }

  /** Sends one message and resolves with its ACK (text); rejects on a timeout or a closed connection. */
  send(text: string): Promise<string> {
    const run = async () => {
      const s = await this.open();
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiting = undefined;
          s.destroy();
          reject(new Error(`no ACK within ${this.timeoutMs} ms`));
        }, this.timeoutMs);
        this.waiting = {
          resolve: (ack) => {
            clearTimeout(timer);
            resolve(ack);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        };
        s.write(frame(text));
      });
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.socket?.end();
    this.socket = undefined;
  }
}
