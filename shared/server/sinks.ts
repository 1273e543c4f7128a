// Where pages go from the outbox: standard output (NDJSON, exactly as `crs replay` prints them), the board's live
// stream, and an optional webhook. Each is a Notifier behind its own ledger lane (see adapters/embedded/outbox.ts).
import { createHmac } from 'node:crypto';
import type { Writable } from 'node:stream';
import { notificationEvent } from '../domain/events.ts';
import type { Notification } from '../domain/page.ts';
import type { Notifier } from '../ports.ts';
import type { SseHub } from './sse.ts';

/**
 * One NDJSON line per page. On Linux, process.stdout writes to a pipe, file or terminal synchronously: when write()
 * returns, the line is with the kernel, and the ledger records it right after, in the same turn of the event loop.
 * That keeps the window in which a crash repeats a page (written, not yet recorded) to microseconds; waiting for
 * the write callback would stretch it to a whole turn of the event loop.
 */
export class StdoutNotifier implements Notifier {
  private broken: Error | undefined;

  constructor(private readonly out: Writable = process.stdout) {
    // EPIPE when the reader went away: the lane retries (and logs) instead of the process crashing.
    out.on('error', (err: Error) => {
      this.broken = err;
    });
  }

  async publish(n: Notification): Promise<void> {
    if (this.broken) throw new Error(`standard output is closed (${(this.broken as { code?: string }).code ?? this.broken.name})`);
    this.out.write(`${JSON.stringify(notificationEvent(n))}\n`);
  }
}

/** The board learns of a page at once; what it shows comes from the database. */
export class BoardNotifier implements Notifier {
  constructor(private readonly hub: SseHub) {}

  async publish(n: Notification): Promise<void> {
    this.hub.broadcast('page', {
      notificationId: n.notificationId,
      patientId: n.patientId,
      condition: n.condition,
      kind: n.kind,
      toGrade: n.toGrade,
      bed: n.bed,
    });
  }
}

export const WEBHOOK_TIMEOUT_MS = 10_000;

/**
 * POSTs the page (the same JSON object as the NDJSON line) and succeeds only on a 2xx answer. The receiver can drop
 * a rare repeat by the x-crs-notification-id header, and check x-crs-signature (HMAC-SHA256 of the body with the
 * shared secret) when one is configured.
 */
export class WebhookNotifier implements Notifier {
  constructor(
    private readonly url: string,
    private readonly secret?: string,
  ) {}

  async publish(n: Notification): Promise<void> {
    const body = JSON.stringify(notificationEvent(n));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-crs-notification-id': n.notificationId,
    };
    if (this.secret) headers['x-crs-signature'] = `sha256=${createHmac('sha256', this.secret).update(body).digest('hex')}`;
    let res: Response;
    try {
      res = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new Error(`webhook unreachable${cause ? ` (${cause})` : ` (${(err as Error).name})`}`);
    }
    await res.arrayBuffer().catch(() => undefined); // free the connection
    if (res.status < 200 || res.status > 299) throw new Error(`webhook answered HTTP ${res.status}`);
  }
}
