// Delivery of what the outbox holds, one independent lane per sink, each with its own ledger rows and retry state,
// so a dead webhook never holds up standard output, the board or the pager. The outbox holds three kinds of
// record: grade changes (`notification`, written with the state), technical alerts (`alert`, likewise) and pages
// to a role (`page`, written by the pager's sender). A sink takes the kinds it names, in outbox order; one that
// fails is retried with exponential backoff on the same record.
//
// Each record goes through a sink once: the ledger row is written right after the sink took it. The one window
// for a repeat is a crash between the two; the record's id travels with it so that a receiver can drop it.
import { iso } from '../../domain/time.ts';
import type { OutboxLedger } from '../../ports.ts';
import Database from 'better-sqlite3';
import type { Db } from './db.ts';

export type OutboxKind = 'notification' | 'alert' | 'page';

export interface OutboxItem {
  seq: number;
  kind: OutboxKind;
  /** notificationId, alertId, or the page send's id. */
  id: string;
  patientId: string;
  /** The record as JSON: a Notification, an AlertChange, or a PageEvent. */
  body: string;
}

export class SqliteOutboxLedger implements OutboxLedger {
  private readonly sent;
  private readonly mark;

  constructor(
    db: Db,
    readonly sink: string,
  ) {
    this.sent = db.prepare('SELECT 1 FROM deliveries WHERE item_id = ? AND sink = ?');
    this.mark = db.prepare('INSERT OR IGNORE INTO deliveries (item_id, sink, sent_at) VALUES (?, ?, ?)');
  }

  async isSent(itemId: string): Promise<boolean> {
    return this.sent.get(itemId, this.sink) !== undefined;
  }

  /** One statement, its own commit. */
  async markSent(itemId: string, at: string): Promise<void> {
    this.mark.run(itemId, this.sink, at);
  }
}

export interface Sink {
  name: string;
  /** The kinds of record this sink takes. */
  kinds: readonly OutboxKind[];
  deliver(item: OutboxItem): Promise<void>;
  /** First retry delay and the cap of the exponential backoff, ms. */
  retry?: { initialMs: number; maxMs: number };
}

interface Lane {
  sink: Sink;
  /** sink.kinds as JSON, for the query. */
  kinds: string;
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
const YIELD_AFTER_MS = 5;
const BATCH = 100;

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
  private readonly last;
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
      `SELECT o.seq, o.kind, o.item_id AS id, o.patient_id AS patientId, o.body FROM outbox o
       WHERE o.seq > ? AND o.kind IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = ?)
       ORDER BY o.seq LIMIT ${BATCH}`,
    );
    this.last = db.prepare('SELECT max(seq) FROM outbox').pluck();
    this.count = db.prepare(
      `SELECT count(*) AS n FROM outbox o
       WHERE o.kind IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = ?)`,
    );
    this.ledgerDb = new Database(db.name, { timeout: 5000 });
    this.ledgerDb.pragma('synchronous = NORMAL');
    this.lanes = sinks.map((sink) => ({
      sink,
      kinds: JSON.stringify(sink.kinds),
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
    let since = performance.now();
    for (;;) {
      lane.again = false;
      const top = this.last.get() as number | null;
      const rows = this.unsent.all(lane.cursor, lane.kinds, lane.sink.name) as OutboxItem[];
      for (const item of rows) {
        if (this.stopped) return;
        // A long backlog (after a restart, or a burst of alerts) must not hold up requests: yield every few ms.
        if (performance.now() - since > YIELD_AFTER_MS) {
          await new Promise((r) => setImmediate(r));
          since = performance.now();
          if (this.stopped) return;
        }
        try {
          if (!(await lane.ledger.isSent(item.id))) {
            await lane.sink.deliver(item);
            await lane.ledger.markSent(item.id, iso(this.now()));
          }
          lane.failures = 0;
          lane.cursor = item.seq;
        } catch (err) {
          this.backoff(lane, item, err as Error);
          return;
        }
      }
      // Everything of this lane up to `top` is delivered: records of other kinds need not be read again.
      if (rows.length < BATCH && top !== null) lane.cursor = Math.max(lane.cursor, top);
      if (rows.length === 0 && !lane.again) return;
    }
  }

  private backoff(lane: Lane, item: OutboxItem, err: Error): void {
    const retry = lane.sink.retry ?? DEFAULT_RETRY;
    const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** lane.failures);
    lane.failures++;
    this.log(`${lane.sink.name}: ${item.kind} ${item.id} not delivered (${err.message}); retry ${lane.failures} in ${delay} ms`);
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.start(lane);
    }, delay);
  }

  /** Records committed and not yet delivered through this sink. */
  backlog(sink: string): number {
    const lane = this.lanes.find((l) => l.sink.name === sink);
    return lane ? (this.count.get(lane.kinds, sink) as { n: number }).n : 0;
  }
}
