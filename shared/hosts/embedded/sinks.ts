// Where outbox records go (each sink is a lane with its own ledger, adapters/sqlite/outbox.ts):
// - standard output: every grade change as one NDJSON line, exactly as `crs replay` prints it; with --page-lines
//   also every page to a role ({"type":"page",...}, with its acknowledge link);
// - the board's live stream: a hint per page sent (the board then reads the database);
// - the webhook: every grade change (as on standard output) and every page to a role, told apart by `type`.
// Each sink tells a record the receiver refuses (RecordRefused: the lane parks it after a few tries and goes on)
// from a receiver that is down (any other error: the lane keeps its order and backs off).
import { createHmac } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { LaneRetry, OutboxItem, OutboxKind, Sink } from '#adapters/sqlite/outbox.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { notificationEvent } from '#domain/events.ts';
import { wireId } from '#domain/ids.ts';
import type { Notification } from '#domain/page.ts';
import { RecordRefused } from '#ports';
import type { SseHub } from './sse.ts';
import type { LaneName } from './lanes.ts';

/** A record's JSON body; one that does not parse is refused (sent again, it would fail again). */
export function recordBody<T>(item: OutboxItem): T {
  try {
    return JSON.parse(item.body) as T;
  } catch {
    throw new RecordRefused('the record is not valid JSON');
  }
}

/** What a sink makes of a record before its transport: anything that fails here fails for this record, every time. */
function prepared<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof RecordRefused) throw err;
    throw new RecordRefused(`the record cannot be prepared (${(err as Error).name})`);
  }
}

/**
 * Statuses that say the receiver is not ready rather than that this record is wrong: it is misconfigured (401,
 * 403, 404, 405, 407: every record would get the same), slow (408, 429) or not there yet (425, 421). The lane keeps
 * its order and retries these with backoff, as for 5xx; any other 4xx refuses the record.
 */
const RECEIVER_NOT_READY = new Set([401, 403, 404, 405, 407, 408, 421, 425, 429]);

/**
 * One NDJSON line per record. On Linux, process.stdout writes to a pipe, file or terminal synchronously: when
 * write() returns, the line is with the kernel, and the ledger records it right after, in the same turn of the event
 * loop. That keeps the window in which a crash repeats a line (written, not yet recorded) to microseconds; waiting
 * for the write callback would stretch it to a whole turn of the event loop.
 */
export class StdoutSink implements Sink {
  readonly name = 'stdout' satisfies LaneName;
  readonly kinds: readonly OutboxKind[];
  private broken: Error | undefined;

  /** `pageLines`: also print each page to a role (off by default: the stream stays what `crs replay` prints). */
  constructor(
    private readonly out: Writable = process.stdout,
    pageLines = false,
  ) {
    this.kinds = pageLines ? ['notification', 'page'] : ['notification'];
    // EPIPE when the reader went away: the lane retries (and logs) instead of the process crashing.
    out.on('error', (err: Error) => {
      this.broken = err;
    });
  }

  async deliver(item: OutboxItem): Promise<void> {
    if (this.broken)
      throw new Error(`standard output is closed (${(this.broken as { code?: string }).code ?? this.broken.name})`);
    const line = prepared(() => {
      if (item.kind === 'notification') return JSON.stringify(notificationEvent(recordBody<Notification>(item)));
      recordBody(item); // a page is written as stored, once it is known to be JSON
      return item.body;
    });
    this.out.write(`${line}\n`);
  }
}

/** The board learns of each page at once; what it shows comes from the database. */
export class BoardSink implements Sink {
  readonly name = 'board' satisfies LaneName;
  readonly kinds = ['page'] as const;

  constructor(private readonly hub: SseHub) {}

  async deliver(item: OutboxItem): Promise<void> {
    // A record that is no page (JSON, but not an object) is refused, parked: until 2026-12-05 its TypeError was taken
    // for a receiver down, and the lane held there.
    const hint = prepared(() => {
      const p = recordBody<PageEvent | null>(item);
      if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new RecordRefused('the record is not a page');
      return {
        pageId: p.pageId,
        patientId: p.patientId,
        team: p.team,
        role: p.role,
        subject: p.subject,
        kind: p.kind,
        grade: p.grade,
        technical: p.technical,
        reason: p.reason,
      };
    });
    this.hub.broadcast('page', hint);
  }
}

const WEBHOOK_TIMEOUT_MS = 10_000;
/** What is read of a receiver's answer (its status decides; the body is only read to free the connection). */
const WEBHOOK_ANSWER_BYTES = 64 * 1024;

/**
 * Reads an answer's body up to WEBHOOK_ANSWER_BYTES, then lets the rest go (the connection is closed). It was read
 * whole (res.arrayBuffer()) until 2026-12-05: a receiver that answered 200 and kept sending made crs serve hold all
 * that came for 10 s (1.7 GB on this machine's loopback, measured) at every page sent to it.
 */
async function readLittle(res: Response): Promise<void> {
  const reader = res.body?.getReader();
  if (!reader) return;
  try {
    for (let read = 0; read <= WEBHOOK_ANSWER_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The answer's status is what counts; a body cut short (or timed out) changes nothing.
  }
}

/**
 * POSTs each grade change (the same JSON object as its NDJSON line) and each page to a role (the PageEvent, with
 * the grade change it is about under `notification`), and succeeds only on a 2xx answer. Headers: x-crs-event
 * (notification or page), x-crs-event-id (notificationId, or the page's sendId) for the receiver to drop a rare
 * repeat, x-crs-notification-id on grade changes, and x-crs-signature (HMAC-SHA256 of the body) with a secret.
 * A redirect (3xx) is not followed: the lane keeps its order and retries, as for 5xx.
 */
export class WebhookSink implements Sink {
  readonly name = 'webhook' satisfies LaneName;
  readonly kinds = ['notification', 'page'] as const;

  constructor(
    private readonly url: string,
    private readonly secret: string | undefined,
    /** The grade change a page is about, to send along with it. */
    private readonly notificationOf: (notificationId: string) => Notification | undefined,
    readonly retry?: LaneRetry,
  ) {}

  async deliver(item: OutboxItem): Promise<void> {
    const { body, headers } = prepared(() => this.request(item));
    const r = await postSigned(this.url, body, headers, this.secret);
    if (r.ok) return;
    if (r.refused) throw new RecordRefused(r.status ? `webhook answered HTTP ${r.status}` : r.problem);
    throw new Error(r.status ? `webhook answered HTTP ${r.status}` : `webhook unreachable (${r.cause})`);
  }

  private request(item: OutboxItem): { body: string; headers: Record<string, string> } {
    let body: string;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-crs-event': item.kind,
      'x-crs-event-id': wireId(item.id),
    };
    if (item.kind === 'notification') {
      const n = recordBody<Notification>(item);
      body = JSON.stringify(notificationEvent(n));
      headers['x-crs-notification-id'] = wireId(n.notificationId);
    } else {
      const page = recordBody<PageEvent>(item);
      const n = page.technical ? undefined : this.notificationOf(page.notificationId);
      body = JSON.stringify(n ? { ...page, notification: notificationEvent(n) } : page);
    }
    return { body, headers };
  }
}

/**
 * What a POST to a receiver came to: delivered (2xx); refused (a 4xx that says this body is wrong, or a request fetch
 * cannot build: sent again, it would fail again); or not delivered now (unreachable, timed out, 5xx, a redirect, or
 * a 4xx that says the receiver is not ready: RECEIVER_NOT_READY), to be tried again. `problem` says it for a log.
 */
export type PostResult =
  | { ok: true }
  | { ok: false; refused: boolean; problem: string; status?: number; cause?: string };

/**
 * POSTs a JSON body, signed (x-crs-signature: sha256=<HMAC-SHA256 of the body>) when there is a secret, timed out,
 * never following a redirect. The webhook lane's transport, and the alert webhook's (alert-webhook.ts).
 */
export async function postSigned(
  url: string,
  body: string,
  headers: Record<string, string>,
  secret: string | undefined,
  timeoutMs = WEBHOOK_TIMEOUT_MS,
  stop?: AbortSignal,
): Promise<PostResult> {
  const signed = secret
    ? { ...headers, 'x-crs-signature': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` }
    : headers;
  let res: Response;
  try {
    // A redirect is never followed: fetch would send a 301, 302 or 303 on as a GET without the body, and count
    // the page delivered when that GET answered 2xx. Like a 404, it says the URL is wrong: the lane holds.
    const timeout = AbortSignal.timeout(timeoutMs);
    res = await fetch(url, {
      method: 'POST',
      headers: signed,
      body,
      redirect: 'manual',
      signal: stop ? AbortSignal.any([timeout, stop]) : timeout,
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const cause = e.cause?.code;
    // fetch refuses a request it cannot build (a header value it will not carry) before connecting: a TypeError
    // with no network cause. That record would be refused every time.
    if (e.name === 'TypeError' && !cause && !e.cause)
      return { ok: false, refused: true, problem: `the request cannot be sent (${e.message.slice(0, 80)})` };
    if (e.name === 'TimeoutError')
      return { ok: false, refused: false, problem: `did not answer within ${timeoutMs} ms`, cause: e.name };
    return { ok: false, refused: false, problem: `could not be reached (${cause ?? e.name})`, cause: cause ?? e.name };
  }
  await readLittle(res); // free the connection
  if (res.status >= 200 && res.status <= 299) return { ok: true };
  const refused = res.status >= 400 && res.status <= 499 && !RECEIVER_NOT_READY.has(res.status);
  return { ok: false, refused, problem: `answered HTTP ${res.status}`, status: res.status };
}
