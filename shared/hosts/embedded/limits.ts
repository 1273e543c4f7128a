// Cheap refusals first (issue 16 item 2): what one client can make the embedded server hold. Connections are capped
// in total and per client address; a request has a short time to send its headers and its body; refused
// acknowledgements are counted per address and answered 429 past a small budget, so that forging links costs the
// server nothing it keeps. Behind a reverse proxy, the client is the address the trusted proxy forwards.
import type { IncomingMessage, Server } from 'node:http';
import { isIP } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';

export interface HttpLimits {
  /** Connections at once, every client together (Node drops the ones beyond). */
  maxConnections: number;
  /** Connections at once from one address (a trusted proxy's are not counted: it carries everyone's). */
  maxConnectionsPerAddress: number;
  /** From the connection (or the previous request) to the end of the headers. */
  headersTimeoutMs: number;
  /** From the connection (or the previous request) to the end of the body. */
  requestTimeoutMs: number;
  /** How often the two timeouts above are checked. */
  checkIntervalMs: number;
  /** Refused acknowledgements one address may make (a burst), then one more per `refusalRefillMs`; beyond: 429. */
  refusalBurst: number;
  refusalRefillMs: number;
  /**
   * Refusals past that budget are not written to the security log but counted: each count is written at least this
   * often (and before the address's next line of its kind, and at shutdown).
   */
  refusalCountFlushMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 1000,
  refusalBurst: 10,
  refusalRefillMs: 6_000,
  refusalCountFlushMs: 60_000,
};

/** Applies the connection caps and timeouts to a Node HTTP server. */
export function guardConnections(
  server: Server,
  limits: HttpLimits,
  trustProxy: readonly string[],
  onRefused: (address: string) => void,
): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  capConnections(server, limits, trustProxy, onRefused);
}

/**
 * Caps a server's connections (HTTP, or an MLLP listener's): `maxConnections` at once (Node drops the ones beyond)
 * and `maxConnectionsPerAddress` from one address (closed unanswered, `onRefused` told), `exempt` addresses aside.
 */
export function capConnections(
  server: NetServer,
  limits: Pick<HttpLimits, 'maxConnections' | 'maxConnectionsPerAddress'>,
  exempt: readonly string[],
  onRefused: (address: string) => void,
): void {
  server.maxConnections = limits.maxConnections;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = normalise(socket.remoteAddress ?? 'unknown');
    if (exempt.includes(address)) return;
    const n = (open.get(address) ?? 0) + 1;
    if (n > limits.maxConnectionsPerAddress) {
      onRefused(address);
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** An IPv4 address as Node reports it on a dual-stack socket (::ffff:127.0.0.1) written plainly. */
export function normalise(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address in X-Forwarded-For
 * that is not a trusted proxy (the header's left part is whatever the client wrote, so it is never believed).
 */
export function clientAddress(req: IncomingMessage, trustProxy: readonly string[]): string {
  const peer = normalise(req.socket.remoteAddress ?? 'unknown');
  if (!trustProxy.includes(peer)) return peer;
  const hops = String(req.headers['x-forwarded-for'] ?? '')
    .split(',')
    .map((h) => normalise(h.trim()))
    .filter((h) => isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) if (!trustProxy.includes(hops[i]!)) return hops[i]!;
  return peer;
}

/** Whether the request reached a TLS terminator first: a trusted proxy says so in X-Forwarded-Proto. */
export function forwardedHttps(req: IncomingMessage, trustProxy: readonly string[]): boolean {
  if (!trustProxy.includes(normalise(req.socket.remoteAddress ?? ''))) return false;
  const proto = String(req.headers['x-forwarded-proto'] ?? '')
    .split(',')
    .at(-1)
    ?.trim()
    .toLowerCase();
  return proto === 'https';
}

/**
 * A token bucket per key (client address): `take` spends one, `exhausted` tells whether nothing is left, without
 * spending. Bounded: the oldest keys are forgotten past `maxKeys` (an attacker rotating addresses gains nothing but
 * a fresh budget, which the total connection cap bounds).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly now: () => number,
    private readonly maxKeys = 10_000,
  ) {}

  private bucket(key: string) {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    const refill = Math.floor((now - b.at) / this.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.at = b.tokens === this.burst ? now : b.at + refill * this.refillMs;
    }
    return b;
  }

  exhausted(key: string): boolean {
    return this.bucket(key).tokens <= 0;
  }

  /** Spends one; false when there was none left. */
  take(key: string): boolean {
    const b = this.bucket(key);
    this.buckets.delete(key);
    this.buckets.set(key, b); // most recent last
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens <= 0) return false;
    b.tokens--;
    return true;
  }

  /** Seconds until one more is allowed. */
  retryAfter(key: string): number {
    const b = this.bucket(key);
    return b.tokens > 0 ? 0 : Math.max(1, Math.ceil((b.at + this.refillMs - this.now()) / 1000));
  }
}
