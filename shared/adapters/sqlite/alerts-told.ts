// The alerts `crs serve --alert-webhook` told the operator's tool were raised (sent, or queued to be) and has not told
// cleared (table alerts_told, version 11): its queue is in memory, and a clear that happened while the server was
// stopped, or was still queued at the stop, was never sent, so a tool that dedups by key kept that incident open for
// ever. At a start the server sends the clear of each one no longer standing (alert-webhook.ts). Ids only: the key
// and since the raise carried, nothing else.
import type { Db } from './db.ts';

/** The most alerts kept: few stand at once (one per lane and condition, one per ladder nobody answered). */
const ALERTS_TOLD_MAX = 1000;

export class SqliteAlertsTold {
  private readonly upsert;
  private readonly trim;
  private readonly remove;
  private readonly all;

  constructor(
    db: Db,
    private readonly max = ALERTS_TOLD_MAX,
  ) {
    // Told again (a restart, or raised again after a clear not yet taken): its since is the latest raise's, its place
    // the latest.
    this.upsert = db.prepare(
      `INSERT INTO alerts_told (seq, key, since) VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM alerts_told), ?, ?)
       ON CONFLICT (key) DO UPDATE SET since = excluded.since, seq = excluded.seq`,
    );
    this.trim = db.prepare(
      'DELETE FROM alerts_told WHERE seq IN (SELECT seq FROM alerts_told ORDER BY seq DESC LIMIT -1 OFFSET ?)',
    );
    this.remove = db.prepare('DELETE FROM alerts_told WHERE key = ?');
    this.all = db.prepare('SELECT key, since FROM alerts_told ORDER BY seq');
  }

  /** Remembers an alert told raised; returns how many of the oldest were forgotten to keep `max`. */
  raised(key: string, since: string): number {
    this.upsert.run(key, since);
    return this.trim.run(this.max).changes;
  }

  /** Forgets an alert whose clear the receiver took. */
  cleared(key: string): void {
    this.remove.run(key);
  }

  /** The alerts told raised and not told cleared, oldest first. */
  open(): { key: string; since: string }[] {
    return this.all.all() as { key: string; since: string }[];
  }
}
