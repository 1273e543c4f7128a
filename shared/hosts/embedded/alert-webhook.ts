// `crs serve --alert-webhook URL` (docs/safety.md H2, H15): each delivery-watch alert raised and cleared (a lane
// stuck, the pager late, grading behind, dead letters, a clock step, a ladder nobody answered) is POSTed to the
// operator's chat or paging tool (a Slack or Teams incoming webhook's adapter, Opsgenie's or PagerDuty's generic
// webhook, an on-call phone gateway), as AWS's alarms go to the alarm topic. JSON, ids only:
// {"event":"raised"|"cleared","key","text","since","at","server"?}, signed as the page webhook's (sinks.ts).
// At least once while the server runs, in order (a raise before its clear), retried with backoff; a receiver down
// is said once, never holds up the watch (tell() only queues), and costs at most `maxQueued` events of memory.
// The queue is in memory: at a restart the watch raises again what still stands, and the receiver hears it again,
// with the since it was told (and so the same event id: the same incident, 2026-12-07; delivery-watch.ts toldBefore).
// What was told raised is remembered in the database (`told`, alerts-told.ts) from the moment it is queued until the
// receiver takes its clear: a clear that happened while the server was stopped, or was still queued at the stop, is
// sent at the next start (clearGone), so a tool that dedups by key does not keep that incident open for ever.
import type { DeliveryAlert } from './delivery-watch.ts';
import { postSigned } from './sinks.ts';
import { wireId } from '#domain/ids.ts';
import { iso } from '#domain/time.ts';

export interface AlertEvent {
  event: 'raised' | 'cleared';
  key: string;
  text: string;
  since: string;
  at: string;
  /** Which server says it (crs serve --public-url), for an operator with several. */
  server?: string;
}

/** The alerts told raised and not yet told cleared, kept across a restart (SqliteAlertsTold). */
interface AlertsTold {
  /** Returns how many of the oldest were forgotten to keep the bound. */
  raised(key: string, since: string): number;
  cleared(key: string): void;
  open(): { key: string; since: string }[];
}

export interface AlertWebhookOptions {
  url: string;
  secret?: string;
  now: () => number;
  log: (line: string) => void;
  server?: string;
  /** The backoff while the receiver is down: 1 s doubling to 60 s. */
  retry?: { initialMs: number; maxMs: number };
  /** The most events kept while the receiver is down (the oldest go first): 1,000. */
  maxQueued?: number;
  /** How long a POST may take: 10 s, as the page webhook's. */
  timeoutMs?: number;
  /** Where the alerts told raised are remembered across a restart (none: a clear missed at a stop is never sent). */
  told?: AlertsTold;
}

export const ALERT_WEBHOOK_QUEUE = 1000;

export class AlertWebhook {
  readonly stats = { sent: 0, failed: 0, dropped: 0, refused: 0 };
  private readonly queue: AlertEvent[] = [];
  private readonly origin: string;
  private readonly max: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly stopping = new AbortController();
  private sending: Promise<void> | undefined;
  /**
   * Set and cleared in drain's own turns: a promise's finally() cleared it a turn after the queue was seen empty,
   * and an event told in between would have waited for the next one.
   */
  private running = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Since the receiver last took an event: failing (said once), and how many events were dropped meanwhile. */
  private failing = false;
  private droppedWhileDown = 0;
  /** The remembered alerts are cleared once, at the watch's first look that read everything (clearGone). */
  private settled = false;

  constructor(private readonly o: AlertWebhookOptions) {
    // The URL's path may be its secret (incoming-webhook URLs are): only its origin is said.
    this.origin = new URL(o.url).origin;
    this.max = o.maxQueued ?? ALERT_WEBHOOK_QUEUE;
    this.initialMs = o.retry?.initialMs ?? 1000;
    this.maxMs = o.retry?.maxMs ?? 60_000;
  }

  /** Queues the event and returns at once: the watch's look, and what called it, never wait on the receiver. */
  tell(event: AlertEvent['event'], alert: Pick<DeliveryAlert, 'key' | 'text' | 'since'>): void {
    if (this.stopping.signal.aborted) return;
    // Remembered as it is queued, not once it is taken: a raise the receiver took whose answer was lost at a stop
    // would otherwise be forgotten, and its clear never sent. A raise remembered and never taken costs at most a clear
    // the receiver never opened (a tool that dedups by key ignores it).
    if (event === 'raised')
      this.remember(alert.key, () => {
        const forgotten = this.o.told!.raised(alert.key, alert.since);
        if (forgotten > 0)
          this.o.log(
            `alert webhook: ${forgotten} older alert(s) told raised forgotten (the newest 1000 are remembered): a clear of theirs missed at a stop will not be sent`,
          );
      });
    this.queue.push({
      event,
      key: alert.key,
      text: alert.text,
      since: alert.since,
      at: iso(this.o.now()),
      ...(this.o.server ? { server: this.o.server } : {}),
    });
    if (this.queue.length > this.max) {
      this.queue.shift();
      this.stats.dropped++;
      this.droppedWhileDown++;
    }
    if (!this.running) this.sending = this.drain();
  }

  /**
   * At start, once the watch has looked and read everything: a clear for each alert remembered told raised and no
   * longer standing (it cleared while the server was stopped, or its clear was still queued at the stop), with the
   * key and since the raise had, as a clear sent live has them. Once: after it, clears are told as the watch sees
   * them.
   */
  clearGone(standing: readonly Pick<DeliveryAlert, 'key'>[]): void {
    if (this.settled || !this.o.told) return;
    const keys = new Set(standing.map((a) => a.key));
    let gone: { key: string; since: string }[] = [];
    this.remember('', () => {
      // Not one whose clear is queued already (told raised and cleared while the watch could not read everything).
      const queued = new Set(this.queue.filter((e) => e.event === 'cleared').map((e) => e.key));
      gone = this.o.told!.open().filter((a) => !keys.has(a.key) && !queued.has(a.key));
      // Only once read: a read that failed is tried again at the next full look, not given up for the run.
      this.settled = true;
    });
    for (const a of gone)
      this.tell('cleared', {
        key: a.key,
        since: a.since,
        text: `${a.key}: no longer standing at the start of crs serve (it cleared while the server was stopped, or its clear was not sent before the stop)`,
      });
    if (gone.length > 0)
      this.o.log(
        `alert webhook: ${gone.length} alert(s) told raised before the restart and no longer standing: cleared`,
      );
  }

  /** The events not yet taken by the receiver. */
  waiting(): number {
    return this.queue.length;
  }

  /**
   * A write or read of the alerts remembered, when there is a store: one that fails (the disk full, an I/O error) is
   * said, and never stops the watch that told the alert.
   */
  private remember(key: string, f: () => void): void {
    if (!this.o.told) return;
    try {
      f();
    } catch (err) {
      const e = err as { code?: unknown; name?: unknown };
      this.o.log(
        `alert webhook: the alerts told could not be ${key ? `updated for ${key}` : 'read'} (${String(e.code ?? e.name ?? 'error')}): a clear missed at a stop may not be sent at the next start`,
      );
    }
  }

  /**
   * Stops sending: the POST in flight is let go, and what is queued is lost from memory, and said; the alerts told
   * raised and not cleared stay remembered, and their clears are sent at the next start if they no longer stand.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    this.wake?.();
    await this.sending;
    if (this.queue.length > 0)
      this.o.log(
        `alert webhook: ${this.queue.length} alert event(s) not sent to ${this.origin} before the stop (the alerts still standing are raised again at the next start${this.o.told ? ', the others cleared' : ''})`,
      );
  }

  /**
   * Sends the queued events in order. `running` is cleared in the very turn the queue is seen empty (the finally
   * here): cleared a turn later, by a promise's finally(), an event told in between would wait for the next one.
   */
  private async drain(): Promise<void> {
    this.running = true;
    try {
      let delay = this.initialMs;
      while (this.queue.length > 0 && !this.stopping.signal.aborted) {
        const event = this.queue[0]!;
        const body = JSON.stringify(event);
        const r = await postSigned(
          this.o.url,
          body,
          {
            'content-type': 'application/json',
            'x-crs-event': 'alert',
            // The same event sent twice (a POST whose answer was lost) has the same id, across a restart too (an
            // alert still standing is raised again with its `since`): the receiver may drop the repeat.
            'x-crs-event-id': wireId(`${event.event}|${event.key}|${event.since}`),
          },
          this.o.secret,
          this.o.timeoutMs,
          this.stopping.signal,
        );
        if (this.stopping.signal.aborted) return;
        if (r.ok || r.refused) {
          // The event at the head may have been dropped meanwhile (the queue full): only it is taken off.
          if (this.queue[0] === event) this.queue.shift();
          // Its clear taken (or refused: it would be again), the alert is forgotten, unless raised again since.
          if (event.event === 'cleared' && !this.queue.some((e) => e.event === 'raised' && e.key === event.key))
            this.remember(event.key, () => this.o.told!.cleared(event.key));
          if (r.ok) this.stats.sent++;
          else {
            // This body is refused (a 4xx that is not "not ready"): sent again, it would be refused again.
            this.stats.refused++;
            this.o.log(
              `alert webhook: the receiver at ${this.origin} refused alert event ${event.event} ${event.key} (${r.problem}); dropped`,
            );
          }
          const dropped = `${this.droppedWhileDown} older alert event(s) were dropped`;
          if (this.failing)
            this.o.log(
              `alert webhook: the receiver at ${this.origin} answers again${this.droppedWhileDown ? `; ${dropped} while it was down (the last ${this.max} are kept)` : ''}`,
            );
          else if (this.droppedWhileDown) this.o.log(`alert webhook: ${dropped} (more than ${this.max} waiting)`);
          this.failing = false;
          this.droppedWhileDown = 0;
          delay = this.initialMs;
          continue;
        }
        this.stats.failed++;
        if (!this.failing)
          this.o.log(
            `alert webhook: the receiver at ${this.origin} ${r.problem}; its alerts wait, in order, and are sent again (said once, until one gets through)`,
          );
        this.failing = true;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, delay);
          this.timer.unref();
        });
        this.wake = undefined;
        delay = Math.min(this.maxMs, delay * 2);
      }
    } finally {
      this.running = false;
    }
  }
}
