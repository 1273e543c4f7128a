// Delivery of what the outbox holds, one independent lane per sink, each with its own ledger rows and retry state,
// so a dead webhook never holds up standard output, the board or the pager. The outbox holds three kinds of
// record: grade changes (`notification`, written with the state), technical alerts (`alert`, likewise) and pages
// to a role (`page`, written by the pager's sender). A sink takes the kinds it names, in outbox order; one that
// fails is retried with exponential backoff on the same record.
//
// Each record goes through a sink once: the ledger row is written right after the sink took it. The one window
// for a repeat is a crash between the two; the record's id travels with it so that a receiver can drop it.
//
// No lane is held by one record: a sink that throws RecordRefused (a 4xx about the request, a value the transport
// will not carry) has that record retried a few times at short intervals, then parked (the `parked` table, with
// the reason) and the lane moves on; any other error means the receiver is down, and the lane keeps its order and
// retries the same record with exponential backoff. Parked records are listed and retried with `crs outbox`.
//
// A lane owes the records from where it starts (the table lane_starts, by sink and kind of record): a lane, or a kind
// of record on a lane, seen for the first time starts at the end of the outbox, so a webhook added today (or
// --page-lines turned on) gets what comes after, not the history kept. Until 2026-12-05 it got every grade change and
// page send of the retention at once, acknowledged ones still saying "status":"open". A lane configured all along
// but down keeps its start, across restarts (one without it included, while it is owed anything): it gets its
// backlog. One no longer configured that is owed nothing is forgotten, so that configured again it starts afresh.
import { wireId } from '#domain/ids.ts';
import { iso } from '#domain/time.ts';
import { RecordRefused, refusedDelay, REFUSED_TRIES, type OutboxLedger } from '#ports';
import { openConnection, type Db } from './db.ts';

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
  retry?: LaneRetry;
}

export interface LaneRetry {
  /** First retry delay and the cap of the exponential backoff while the receiver is down, ms. */
  initialMs: number;
  maxMs: number;
  /** Pause before the second try of a refused record, doubling before the third, ms (REFUSED_DELAY_MS). */
  refusedMs?: number;
}

/** A record a lane parked: the receiver refused it REFUSED_TRIES times. */
export interface ParkedRecord {
  itemId: string;
  sink: string;
  seq: number;
  kind: OutboxKind;
  patientId: string;
  reason: string;
  attempts: number;
  parkedAt: string;
}

/** How a lane stands, for the board, /api/health and the watchdog (no patient data). */
export interface LaneHealth {
  sink: string;
  /** Records committed, not yet delivered and not parked. */
  backlog: number;
  /** When the oldest of them was committed (epoch ms), or null. */
  oldestAt: number | null;
  parked: number;
  /** The receiver is down: the lane is waiting out a backoff. */
  retrying: boolean;
  lastError: string | null;
}

interface Lane {
  sink: Sink;
  /** Where the lane starts, as the queries take it: by kind it takes (null: a kind it does not take), and the least. */
  starts: LaneStarts;
  ledger: SqliteOutboxLedger;
  running: boolean;
  again: boolean;
  failures: number;
  /**
   * Refusals of the records being tried (each is parked at REFUSED_TRIES): by record, since an operator's retry
   * can put an earlier record in front of one waiting for its next try.
   */
  refusals: Map<string, number>;
  lastError: string | null;
  /** Outbox seq up to which this lane has delivered everything (pages leave in order, so it only moves on). */
  cursor: number;
  /**
   * Where an operator's retry wants the lane to read from again (parked records put back): applied by the drain
   * between two records, so that a delivery in flight cannot move the cursor past them afterwards.
   */
  rewind: number | undefined;
  /**
   * Records the sink took whose delivery could not be recorded (the ledger's write failed: a full disk): recorded
   * before anything else, never handed to the sink again by this process (a receiver got a page again at each
   * retry, every minute, for as long as the disk stayed full).
   */
  unrecorded: Set<string>;
  timer?: NodeJS.Timeout;
  idle: Promise<void>;
}

/**
 * Where each lane starts, by kind of record (sink name -> kind -> the outbox seq after which it owes records): a
 * lane or kind seen for the first time is recorded at the end of the outbox, said once on `log` when that skips
 * records. A lane or kind no longer configured that is owed nothing (no record after its start undelivered, none
 * parked) is forgotten: configured again, it starts afresh. One owed anything keeps its start (a webhook down,
 * started once without it): its backlog is not dropped.
 */
function laneStarts(
  db: Db,
  sinks: readonly Sink[],
  at: string,
  log: (line: string) => void,
): Map<string, Record<string, number>> {
  const begin = db.prepare(
    `INSERT OR IGNORE INTO lane_starts (sink, kind, after_seq, since)
     SELECT ?, ?, coalesce(max(seq), 0), ? FROM outbox RETURNING after_seq`,
  );
  const read = db.prepare('SELECT after_seq FROM lane_starts WHERE sink = ? AND kind = ?').pluck();
  const owes = db.prepare(
    `SELECT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = @kind AND o.seq > @after
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = @sink))
       OR EXISTS (SELECT 1 FROM parked p JOIN outbox o ON o.item_id = p.item_id WHERE p.sink = @sink AND o.kind = @kind)`,
  );
  const forget = db.prepare('DELETE FROM lane_starts WHERE sink = ? AND kind = ?');
  const configured = new Set(sinks.flatMap((s) => s.kinds.map((k) => `${s.name} ${k}`)));
  return db.transaction(() => {
    const forgotten = new Map<string, string[]>();
    for (const r of db.prepare('SELECT sink, kind, after_seq AS after FROM lane_starts').all() as {
      sink: string;
      kind: string;
      after: number;
    }[]) {
      if (configured.has(`${r.sink} ${r.kind}`) || owes.pluck().get(r) === 1) continue;
      forget.run(r.sink, r.kind);
      forgotten.set(r.sink, [...(forgotten.get(r.sink) ?? []), r.kind]);
    }
    for (const [sink, kinds] of forgotten) {
      const whole = !sinks.some((s) => s.name === sink);
      log(
        `${sink}: no longer configured${whole ? '' : ` for ${kinds.join(' and ')} records`}, and owed nothing: configured again, it starts from the records committed then`,
      );
    }
    const starts = new Map<string, Record<string, number>>();
    for (const sink of sinks) {
      const byKind: Record<string, number> = {};
      const fresh: string[] = [];
      let from = 0;
      for (const kind of sink.kinds) {
        const added = begin.pluck().get(sink.name, kind, at) as number | undefined;
        if (added !== undefined && added > 0) {
          fresh.push(kind);
          from = added;
        }
        byKind[kind] = added ?? (read.get(sink.name, kind) as number);
      }
      if (fresh.length > 0)
        log(
          `${sink.name}: new lane${fresh.length < sink.kinds.length ? ` for ${fresh.join(' and ')} records` : ''}, delivering from record ${from + 1}; earlier records are not sent to it`,
        );
      starts.set(sink.name, byKind);
    }
    return starts;
  })();
}

/** A lane's starts as query parameters: @notification, @alert, @page (null: not taken) and @from, the least. */
interface LaneStarts {
  notification: number | null;
  alert: number | null;
  page: number | null;
  from: number;
}

function asParameters(byKind: Record<string, number>): LaneStarts {
  return {
    notification: byKind.notification ?? null,
    alert: byKind.alert ?? null,
    page: byKind.page ?? null,
    from: Math.min(...Object.values(byKind)),
  };
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
  private readonly park;
  private readonly parkedRows;
  private readonly unpark;
  private stopped = false;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly onParked: (record: ParkedRecord) => void;

  constructor(
    db: Db,
    sinks: Sink[],
    opts: { now?: () => number; log?: (line: string) => void; onParked?: (record: ParkedRecord) => void } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
    this.onParked = opts.onParked ?? (() => undefined);
    // A record of a kind the lane takes, after the lane's start for that kind (a kind it does not take compares with
    // null: never true).
    const open = `o.seq > @from
         AND o.seq > CASE o.kind WHEN 'notification' THEN @notification WHEN 'alert' THEN @alert WHEN 'page' THEN @page END
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = @sink)
         AND NOT EXISTS (SELECT 1 FROM parked p WHERE p.item_id = o.item_id AND p.sink = @sink)`;
    this.unsent = db.prepare(
      `SELECT o.seq, o.kind, o.item_id AS id, o.patient_id AS patientId, o.body FROM outbox o
       WHERE o.seq > @cursor AND ${open}
       ORDER BY o.seq LIMIT ${BATCH}`,
    );
    this.last = db.prepare('SELECT max(seq) FROM outbox').pluck();
    this.count = db.prepare(`SELECT count(*) AS n, min(o.created_at) AS oldest FROM outbox o WHERE ${open}`);
    this.parkedRows = db.prepare(
      `SELECT p.item_id AS itemId, p.sink, p.seq, o.kind, o.patient_id AS patientId, p.reason, p.attempts, p.parked_at AS parkedAt
       FROM parked p JOIN outbox o ON o.item_id = p.item_id ORDER BY p.seq, p.sink`,
    );
    this.ledgerDb = openConnection(db);
    this.ledgerDb.pragma('synchronous = NORMAL');
    this.park = this.ledgerDb.prepare(
      'INSERT OR IGNORE INTO parked (item_id, sink, seq, reason, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.unpark = this.ledgerDb.prepare(
      'DELETE FROM parked WHERE sink = ? AND (? IS NULL OR item_id = ?) RETURNING seq',
    );
    const starts = laneStarts(db, sinks, iso(this.now()), this.log);
    this.lanes = sinks.map((sink) => ({
      sink,
      starts: asParameters(starts.get(sink.name)!),
      ledger: new SqliteOutboxLedger(this.ledgerDb, sink.name),
      running: false,
      again: false,
      failures: 0,
      refusals: new Map(),
      lastError: null,
      // Nothing before its earliest start is owed: a lane added later reads none of the history kept.
      cursor: asParameters(starts.get(sink.name)!).from,
      rewind: undefined,
      unrecorded: new Set(),
      idle: Promise.resolve(),
    }));
  }

  /** Wakes every lane that is not waiting out a backoff. */
  kick(): void {
    for (const lane of this.lanes) if (!lane.timer) this.start(lane);
  }

  /** Resolves when no lane is delivering: what a kick found has been delivered, or is waiting out a backoff. */
  async settled(): Promise<void> {
    while (this.lanes.some((l) => l.running)) await Promise.all(this.lanes.map((l) => l.idle));
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
    lane.idle = this.drain(lane)
      .catch((err: Error) => {
        // What the database refuses outside a delivery (reading the outbox, a full disk): the lane waits and reads
        // again. Left unhandled it ended the process, and every lane and the pager with it.
        this.log(`${lane.sink.name}: cannot read the outbox (${err.message}); trying again`);
        this.wait(lane, DEFAULT_RETRY.initialMs);
      })
      .finally(() => {
        lane.running = false;
      });
  }

  private wait(lane: Lane, delay: number): void {
    if (this.stopped) return;
    clearTimeout(lane.timer);
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.start(lane);
    }, delay);
  }

  private async drain(lane: Lane): Promise<void> {
    let since = performance.now();
    for (;;) {
      lane.again = false;
      if (lane.rewind !== undefined) {
        lane.cursor = Math.min(lane.cursor, lane.rewind);
        lane.rewind = undefined;
      }
      const top = this.last.get() as number | null;
      const rows = this.unsent.all({ ...lane.starts, sink: lane.sink.name, cursor: lane.cursor }) as OutboxItem[];
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
            if (!lane.unrecorded.has(item.id)) {
              await lane.sink.deliver(item);
              lane.unrecorded.add(item.id);
            }
            await lane.ledger.markSent(item.id, iso(this.now()));
            lane.unrecorded.delete(item.id);
          }
          lane.failures = 0;
          lane.lastError = null;
          lane.refusals.delete(item.id);
          lane.cursor = item.seq;
        } catch (err) {
          if (lane.unrecorded.has(item.id)) {
            // Delivered, but the ledger cannot say so: the lane holds here and records it when it can.
            this.backoff(lane, item, err as Error, 'delivered, not yet recorded');
            return;
          }
          if (!(err instanceof RecordRefused)) {
            this.backoff(lane, item, err as Error);
            return;
          }
          try {
            if (this.refused(lane, item, err)) return; // tried again shortly
          } catch (parkErr) {
            // It cannot be parked (a full disk): the lane holds, and parks it at its next refusal.
            this.backoff(lane, item, parkErr as Error, 'refused, cannot be parked');
            return;
          }
          lane.cursor = item.seq; // parked: the lane moves on
        }
        if (lane.rewind !== undefined) break; // records put back behind this one: read again from there
      }
      // Everything of this lane up to `top` is delivered: records of other kinds need not be read again.
      if (lane.rewind === undefined && rows.length < BATCH && top !== null) lane.cursor = Math.max(lane.cursor, top);
      if (rows.length === 0 && !lane.again) return;
    }
  }

  /** A refusal of `item`: true when it is to be tried again shortly, false once it is parked. */
  private refused(lane: Lane, item: OutboxItem, err: RecordRefused): boolean {
    const count = (lane.refusals.get(item.id) ?? 0) + 1;
    lane.refusals.set(item.id, count);
    lane.lastError = err.message;
    if (count < REFUSED_TRIES) {
      const delay = refusedDelay(count, lane.sink.retry?.refusedMs);
      this.log(
        `${lane.sink.name}: ${item.kind} ${wireId(item.id)} refused (${err.message}); attempt ${count + 1} of ${REFUSED_TRIES} in ${delay} ms`,
      );
      lane.timer = setTimeout(() => {
        lane.timer = undefined;
        this.start(lane);
      }, delay);
      return true;
    }
    const record: ParkedRecord = {
      itemId: item.id,
      sink: lane.sink.name,
      seq: item.seq,
      kind: item.kind,
      patientId: item.patientId,
      reason: err.message,
      attempts: count,
      parkedAt: iso(this.now()),
    };
    this.park.run(record.itemId, record.sink, record.seq, record.reason, record.attempts, record.parkedAt);
    lane.refusals.delete(item.id);
    this.log(
      `${lane.sink.name}: ALERT ${item.kind} ${wireId(item.id)} of patient ${wireId(item.patientId)} parked after ${count} refusals (${err.message}); ` +
        'the lane goes on; crs outbox list shows it, crs outbox retry sends it again',
    );
    this.onParked(record);
    return false;
  }

  /** Records parked by any lane, oldest first. */
  parked(): ParkedRecord[] {
    return this.parkedRows.all() as ParkedRecord[];
  }

  /**
   * Puts parked records back in their lanes (all of a sink, or one record): each lane starts again at the
   * earliest of them, so they go out in outbox order. Returns how many were put back.
   */
  retryParked(sink?: string, itemId?: string): number {
    let n = 0;
    for (const lane of this.lanes) {
      if (sink !== undefined && lane.sink.name !== sink) continue;
      const seqs = this.unpark.pluck().all(lane.sink.name, itemId ?? null, itemId ?? null) as number[];
      if (seqs.length === 0) continue;
      n += seqs.length;
      lane.rewind = Math.min(lane.rewind ?? Number.POSITIVE_INFINITY, Math.min(...seqs) - 1);
      clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.failures = 0;
      this.start(lane);
    }
    return n;
  }

  /** Every lane's backlog, its oldest undelivered record and its parked records. */
  health(): LaneHealth[] {
    const parked = new Map<string, number>();
    for (const r of this.parked()) parked.set(r.sink, (parked.get(r.sink) ?? 0) + 1);
    return this.lanes.map((lane) => {
      const c = this.count.get({ ...lane.starts, sink: lane.sink.name }) as { n: number; oldest: string | null };
      return {
        sink: lane.sink.name,
        backlog: c.n,
        oldestAt: c.oldest === null ? null : Date.parse(c.oldest),
        parked: parked.get(lane.sink.name) ?? 0,
        retrying: lane.timer !== undefined && lane.failures > 0,
        lastError: lane.lastError,
      };
    });
  }

  private backoff(lane: Lane, item: OutboxItem, err: Error, what = 'not delivered'): void {
    const retry = lane.sink.retry ?? DEFAULT_RETRY;
    const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** lane.failures);
    lane.failures++;
    lane.lastError = err.message;
    this.log(
      `${lane.sink.name}: ${item.kind} ${wireId(item.id)} ${what} (${err.message}); retry ${lane.failures} in ${delay} ms`,
    );
    this.wait(lane, delay);
  }

  /** Records committed and not yet delivered through this sink. */
  backlog(sink: string): number {
    const lane = this.lanes.find((l) => l.sink.name === sink);
    return lane ? (this.count.get({ ...lane.starts, sink }) as { n: number }).n : 0;
  }
}
