// What `crs serve` drops once it serves no purpose, after a retention the operator sets (`--retention-days`, 30 by
// default: the AWS outbox records, ended silences and acknowledge links expire 30 days on with a DynamoDB TTL).
//
// Dropped, once older than the retention:
// - outbox records (grade changes, alerts, page sends) and their delivery ledger rows, that every lane of this
//   server has delivered (or that came before the lane's start: a lane added later is not owed them): nothing from
//   the first record a lane still has to deliver on, and no parked record, is touched. Kept as well, whatever their
//   age: the grade change (or alert) of every page still open or not sent yet, and of each patient's newest page
//   group of each subject, with their sends: what the pager still reads to page and what the board shows as current;
//   the newest group only until the board no longer lists the patient (board.ts LEFT_OUT: nothing open, a grade of 0)
//   with their monitoring ended more than the retention ago (2026-12-07: until then for good, and a year's 2,600
//   patients were read at every sweep). The audit trail keeps every grade change, send and acknowledgement.
// - silences ended (or run out) that hold no open page;
// - acknowledge links expired (a link opened later is refused as unknown, as on AWS).
//
// Never dropped: the audit trail (append-only), the patients' states and the identities of every message applied
// (seen_messages: a duplicate is a duplicate however late), the pages (the board's history), parked records and
// dead letters (until an operator retries or redrives them), the inbox (consumed rows go in the grading commit).
import { DAY } from '#domain/time.ts';
import type { OutboxKind } from './outbox.ts';
import { LEFT_OUT } from './board.ts';
import { relaxedTransaction, type Db } from './db.ts';
import { withNewerChange } from './pages.ts';

export const DEFAULT_RETENTION_DAYS = 30;

/** A lane of the server and the kinds of record it delivers. */
export interface LaneKinds {
  sink: string;
  kinds: readonly OutboxKind[];
}

export interface Dropped {
  outbox: number;
  deliveries: number;
  silences: number;
  ackLinks: number;
}

/** Rows dropped per transaction: the server answers requests between two. */
const BATCH = 500;
/**
 * Outbox records read per statement, from where the last one ended: the records kept for good (each patient's current
 * page group) are read once a sweep, a window at a time. Until 2026-12-07 each statement read them all from the first:
 * a year's 2,600 patients held the server's one thread 1.7-3.3 s at every hourly sweep, and a sweep of 109,200
 * records took 103 s, each batch reading the kept ones again.
 */
const WINDOW = 1000;

/**
 * The lanes and the kinds each takes, with where each starts (outbox.ts: it owes the records after; a lane and kind
 * with no start recorded owes every record, and keeps them all).
 */
const LANES = `lanes AS (SELECT json_extract(l.value, '$.sink') AS sink, k.value AS kind,
                 coalesce((SELECT s.after_seq FROM lane_starts s
                           WHERE s.sink = json_extract(l.value, '$.sink') AND s.kind = k.value), 0) AS after
               FROM json_each(@lanes) l, json_each(l.value, '$.kinds') k)`;

const iso = (ms: number) => new Date(ms).toISOString();

export class RetentionSweep {
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly lanes: readonly LaneKinds[],
  ) {
    this.s = {
      // The first record each lane still has to deliver (neither delivered nor parked by it): nothing from there on
      // is dropped, whatever its age (a receiver down for weeks gets it all once back).
      waiting: db
        .prepare(
          `WITH ${LANES}
           SELECT min(o.seq) FROM outbox o JOIN lanes l ON l.kind = o.kind AND o.seq > l.after
           WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = l.sink)
             AND NOT EXISTS (SELECT 1 FROM parked p WHERE p.item_id = o.item_id AND p.sink = l.sink)`,
        )
        .pluck(),
      // The grade changes (and alerts) kept whatever their age: of every page still open or unsent (the pager reads
      // the grade change to page it), and of the page group the board shows as current (each patient's newest of each
      // subject, in the board's order) but for a patient the board leaves out (LEFT_OUT) whose monitoring ended more
      // than the retention ago (its pages and acknowledgements stay; an acknowledgement, silence or escalation reads
      // the pages, and a re-admission is paged from the state, none from these records). Read once a sweep.
      keep: withNewerChange(db)
        .prepare(
          `SELECT notification_id FROM pages WHERE rowid IN (
             SELECT (SELECT q.rowid FROM pages q WHERE q.patient_id = g.patient_id AND q.subject = g.subject
                     ORDER BY q.triggered_at DESC, q.rowid DESC LIMIT 1)
             FROM (SELECT DISTINCT patient_id, subject FROM pages) g
             WHERE g.patient_id NOT IN (SELECT patient_id FROM patients WHERE ${LEFT_OUT}))
           UNION SELECT notification_id FROM pages INDEXED BY pages_open WHERE status = 'open'
           UNION SELECT notification_id FROM pages INDEXED BY pages_unsent WHERE delivered = 0`,
        )
        .pluck(),
      // Records older than the cutoff, below every lane's first waiting record, parked by no lane, delivered by
      // every lane that takes their kind (a parked record an operator puts back meanwhile is no longer), and not of a
      // group kept (above), nor a send of a page of one (a send whose body is not JSON is of none: until 2026-12-07
      // json_extract failed on it, and every sweep with it).
      candidates: db
        .prepare(
          `WITH keep AS (SELECT value AS id FROM json_each(@keep)),
                ${LANES}
           SELECT o.seq, o.item_id FROM outbox o
           WHERE o.seq > @from AND o.seq <= @to AND o.seq < @below AND o.created_at < @before
             AND NOT EXISTS (SELECT 1 FROM parked p WHERE p.item_id = o.item_id)
             AND NOT EXISTS (SELECT 1 FROM lanes l WHERE l.kind = o.kind AND o.seq > l.after
                               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = o.item_id AND d.sink = l.sink))
             AND o.item_id NOT IN keep
             AND NOT (o.kind = 'page' AND EXISTS (SELECT 1 FROM pages pg
                        WHERE pg.page_id = CASE WHEN json_valid(o.body) THEN json_extract(o.body, '$.pageId') END
                          AND pg.notification_id IN keep))
           ORDER BY o.seq`,
        )
        .raw(),
      // The last record of the next window (null: none left below the first waiting record).
      windowEnd: db
        .prepare(
          `SELECT max(seq) FROM (SELECT seq FROM outbox WHERE seq > @from AND seq < @below ORDER BY seq LIMIT ${WINDOW})`,
        )
        .pluck(),
      outbox: db.prepare('DELETE FROM outbox WHERE seq = ?'),
      deliveries: db.prepare('DELETE FROM deliveries WHERE item_id = ?'),
      silences: db.prepare(
        `DELETE FROM silences WHERE silence_id IN (SELECT silence_id FROM silences s
           WHERE coalesce(min(s.ended_at, s.until), s.until) < ?
             AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.status = 'open' AND p.held_by = s.silence_id)
           LIMIT ${BATCH})`,
      ),
      ackLinks: db.prepare(
        `DELETE FROM ack_links WHERE link_key IN (SELECT link_key FROM ack_links WHERE expires_at < ? LIMIT ${BATCH})`,
      ),
    };
  }

  /** Drops what is older than `days` at `nowMs`, a batch per transaction, yielding between batches. */
  async sweep(nowMs: number, days: number): Promise<Dropped> {
    const cutoff = nowMs - days * DAY;
    const dropped: Dropped = { outbox: 0, deliveries: 0, silences: 0, ackLinks: 0 };
    const below =
      (this.s.waiting.get({ lanes: JSON.stringify(this.lanes) }) as number | null) ?? Number.MAX_SAFE_INTEGER;
    const keep = JSON.stringify(this.s.keep.all({ endedBefore: cutoff, now: nowMs }));
    const lanes = JSON.stringify(this.lanes);
    for (let from = 0; ; ) {
      const to = this.s.windowEnd.get({ from, below }) as number | null;
      if (to === null) break;
      const rows = this.s.candidates.all({ from, to, below, before: iso(cutoff), keep, lanes }) as [number, string][];
      for (let i = 0; i < rows.length; i += BATCH)
        // synchronous=NORMAL: a power cut can only bring rows back, which the next sweep drops again.
        relaxedTransaction(this.db, () => {
          for (const [seq, itemId] of rows.slice(i, i + BATCH)) {
            dropped.outbox += this.s.outbox.run(seq).changes;
            dropped.deliveries += this.s.deliveries.run(itemId).changes;
          }
        });
      from = to;
      await new Promise((r) => setImmediate(r));
    }
    for (const [key, stmt] of [
      ['silences', this.s.silences],
      ['ackLinks', this.s.ackLinks],
    ] as const) {
      for (;;) {
        const n = stmt.run(cutoff).changes;
        dropped[key] += n;
        if (n < BATCH) break;
        await new Promise((r) => setImmediate(r));
      }
    }
    return dropped;
  }
}
