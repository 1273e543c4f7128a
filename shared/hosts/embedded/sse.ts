// Server-Sent Events for the board: small hints ("patients changed", "new page", "acknowledged"); the board then
// fetches the authoritative data from the JSON API, so a missed event costs nothing but a refetch on reconnect.
// A client that stops reading (a frozen tab, a laptop whose lid closed on the board: its connection stays open) is
// let go once its unsent events pass a bound: until 2026-12-05 every event for it was held in memory, without end.
// The ping is an event (`ping`, with its period), not a comment: a comment never reaches the page's script, and the
// board must tell a connection that stays open while the server hangs from a live one (docs/safety.md H15).
import type { ServerResponse } from 'node:http';

/** `unsentBytes`: what one client may leave unread (beyond the socket's own buffers) before it is let go. */
const SSE_LIMITS = { clients: 100, heartbeatMs: 15_000, retryMs: 2000, unsentBytes: 256 * 1024 } as const;

export class SseHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly ping: string;

  /** `pingMs`: how often every client is sent a ping (15 s; shorter in tests). */
  constructor(pingMs: number = SSE_LIMITS.heartbeatMs) {
    this.ping = `event: ping\ndata: ${JSON.stringify({ everyMs: pingMs })}\n\n`;
    this.heartbeat = setInterval(() => this.write(this.ping), pingMs);
    this.heartbeat.unref();
  }

  /** Takes over the response as an event stream; false when the hub is full (the caller answers 503). */
  attach(res: ServerResponse): boolean {
    if (this.clients.size >= SSE_LIMITS.clients) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    // The first ping at once: the board learns the period it may expect them at.
    res.write(`retry: ${SSE_LIMITS.retryMs}\n\n${this.ping}`);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    return true;
  }

  broadcast(event: string, data: unknown): void {
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  get size(): number {
    return this.clients.size;
  }

  private write(chunk: string): void {
    for (const res of this.clients) {
      // Not reading: dropped (its browser reconnects when it wakes, and fetches the board again).
      if (res.writableLength > SSE_LIMITS.unsentBytes) {
        this.clients.delete(res);
        res.destroy();
      } else res.write(chunk);
    }
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
