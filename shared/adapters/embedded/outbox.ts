// Delivery of committed pages from the outbox, one independent lane per sink (stdout, board, webhook): each sink
// has its own ledger rows and its own retry state, so a dead webhook never holds up stdout or the board.
// Pages leave in outbox order; a sink that fails is retried with exponential backoff on the same page.
import { deliverOnce } from '../../app/deliver.ts';
import type { Notification } from '../../domain/page.ts';
import type { Notifier, OutboxLedger } from '../../ports.ts';
import Database from 'better-sqlite3';
import type { Db } from './db.ts';

export class SqliteOutboxLedger implements OutboxLedger {
  private readonly sent;
  private readonly mark;
  private readonly delivered;

  constructor(
    private readonly db: Db,
    readonly sink: string,
  ) {
    this.sent = db.prepare('SELECT 1 FROM deliveries WHERE notification_id = ? AND sink = ?');
    this.mark = db.prepare('INSERT OR IGNORE INTO deliveries (notification_id, sink, sent_at) VALUES (?, ?, ?)');
    this.delivered = db.prepare('UPDATE pages SET delivered_at = coalesce(delivered_at, ?) WHERE notification_id = ?');
  }

  async isSent(notificationId: string): Promise<boolean> {
    return this.sent.get(notificationId, this.sink) !== undefined;
  }

  async markSent(notificationId: string, at: string): Promise<void> {
    // The delivery row is the record (one statement, its own commit); the page's delivered_at is bookkeeping.
    this.mark.run(notificationId, this.sink, at);
    this.delivered.run(at, notificationId);
  }
}

export interface Sink {
  name: string;
  notifier: Notifier;
  /** First retry delay and the cap of the exponential backoff, ms. */
  retry?: { initialMs: number; maxMs: number };
}

interface Lane {
  sink: Sink;
  ledger: SqliteOutboxLedger;
  running: boolean;
  again: boolean;
  failures: number;
  /** Outbox seq up to which this lane has delivered everything (pages leave in order, so it only moves on). */
  cursor: number;
  timer?: NodeJS.Timeout;
  idle: Promise<void>;
}

const DEFAULT_RETRY = { initialMs: 1000, maxMs: 60_000 };

export class OutboxDispatcher {
  private readonly lanes: Lane[];
  /**
   * The ledger's own connection, with synchronous=NORMAL: recording a delivery is then a single write to the WAL,
   * which a killed process cannot undo, and the window in which a crash repeats a page (published, not yet
   * recorded) stays a few microseconds. A power cut can lose such a record, and the page goes out again with the
   * same notificationId (see db.ts).
   */
  private readonly ledgerDb: Db;
  private readonly unsent;
  private readonly count;
  private stopped = false;
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    db: Db,
    sinks: Sink[],
    opts: { now?: () => number; log?: (line: string) => void } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
    this.unsent = db.prepare(
      `SELECT o.seq, o.body FROM outbox o
       WHERE o.seq > ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = o.notification_id AND d.sink = ?)
       ORDER BY o.seq LIMIT 100`,
    );
    this.count = db.prepare(
      `SELECT count(*) AS n FROM outbox o
       WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = o.notification_id AND d.sink = ?)`,
    );
    this.ledgerDb = new Database(db.name, { timeout: 5000 });
    this.ledgerDb.pragma('synchronous = NORMAL');
    this.lanes = sinks.map((sink) => ({
      sink,
      ledger: new SqliteOutboxLedger(this.ledgerDb, sink.name),
      running: false,
      again: false,
      failures: 0,
      cursor: 0,
      idle: Promise.resolve(),
    }));
  }

  /** Wakes every lane that is not waiting out a backoff. */
  kick(): void {
    for (const lane of this.lanes) if (!lane.timer) this.start(lane);
  }

  /** Lets the deliveries in flight finish (each lane stops after its current page). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const lane of this.lanes) clearTimeout(lane.timer);
    await Promise.all(this.lanes.map((l) => l.idle));
    if (this.ledgerDb.open) this.ledgerDb.close();
  }

  private start(lane: Lane): void {
    if (this.stopped) return;
    if (lane.running) {
      lane.again = true;
      return;
    }
    lane.running = true;
    lane.idle = this.drain(lane).finally(() => {
      lane.running = false;
    });
  }

  private async drain(lane: Lane): Promise<void> {
    for (;;) {
      lane.again = false;
      const rows = this.unsent.all(lane.cursor, lane.sink.name) as { seq: number; body: string }[];
      for (const row of rows) {
        if (this.stopped) return;
        const n = JSON.parse(row.body) as Notification;
        try {
          await deliverOnce(n, lane.ledger, lane.sink.notifier, this.now());
          lane.failures = 0;
          lane.cursor = row.seq;
        } catch (err) {
          this.backoff(lane, n, err as Error);
          return;
        }
      }
      if (rows.length === 0 && !lane.again) return;
    }
  }

  private backoff(lane: Lane, n: Notification, err: Error): void {
    const retry = lane.sink.retry ?? DEFAULT_RETRY;
    const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** lane.failures);
    lane.failures++;
    this.log(`${lane.sink.name}: page ${n.notificationId} not delivered (${err.message}); retry ${lane.failures} in ${delay} ms`);
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.start(lane);
    }, delay);
  }

  /** Pages committed and not yet delivered through this sink. */
  backlog(sink: string): number {
    return (this.count.get(sink) as { n: number }).n;
  }
}
