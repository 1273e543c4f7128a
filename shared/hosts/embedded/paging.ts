// Pages that get answered, in `crs serve`: the shared Pager (shared/app/pager.ts) over the SQLite ports.
// - The pager lane of the outbox feeds it every grade change and SpO2 alert the grading committed.
// - A timer loop calls onTick every second and at the next due time; the timers themselves are rows (pages.due_at,
//   silences.until), so a restart resumes every ladder where it was. A page whose team has no ladder in the paging
//   config (a rollback), or whose row cannot be read, is set aside, said by id and by the delivery watch; every
//   other ladder goes on.
// - A stale-feed sweep raises "no data" alerts for enrolled patients whose monitor went quiet, and clears them when
//   data resumes; alert ids come from the patient and the time the feed went quiet, so nothing is raised twice.
// Every pager call goes through one queue: they are short, and one at a time no two of them race on a page.
import type { AckVerification } from '#app/ack.ts';
import { AckKeyring, type AckKeysSource } from '#app/ack-keys.ts';
import { Pager, setAsideText, tickAside, type PagerDeps, type SetAside } from '#app/pager.ts';
import { pageStaleFeeds, planStaleFeeds, type FeedCheck, type InForce } from '#app/stale-feed.ts';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { openConnection, type Db } from '#adapters/sqlite/db.ts';
import type { OutboxItem, Sink } from '#adapters/sqlite/outbox.ts';
import { SqlitePageSender, SqlitePageStore } from '#adapters/sqlite/pages.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { Notification } from '#domain/page.ts';
import { feedStatus, newerChange, type Page, type Silence } from '#domain/paging.ts';
import type { AlertChange } from '#domain/reducer.ts';
import { MINUTE, iso } from '#domain/time.ts';
import { ClockStepWatch, stepSpan, stepText, type ClockStep } from './clock-step.ts';
import { recordBody } from './sinks.ts';
import type { LaneName } from './lanes.ts';
import {
  RecordRefused,
  type AuditLog,
  type PageSender,
  type PageStore,
  type SecurityLog,
  type StoredState,
} from '#ports';

export interface EmbeddedPagingOptions {
  db: Db;
  config: GradingConfig;
  ackSecret: Buffer;
  /** The key before the last rotation (ack.key.previous): links it signed verify until they expire. */
  previousAckSecret?: Buffer | undefined;
  /** Where the keys are read again while the server runs (ack-key.ts, ackKeyFilesSource); absent: fixed. */
  ackKeysSource?: AckKeysSource;
  /** Acknowledge links are this plus the token, e.g. "https://crs.example.org/ack/" (read at each send). */
  ackBaseUrl: () => string;
  /** When the data directory was restored from a backup (restores.ts; PagerDeps.restoredAt); absent: never. */
  restoredAt?: number | undefined;
  now: () => number;
  log: (line: string) => void;
  /** A patient's committed state (for the stale-feed check). */
  loadState: (patientId: string) => Promise<StoredState | undefined>;
  /** A page went into the outbox: wake the sinks. */
  onSent: () => void;
  /** Pages of these patients changed (status, level, acknowledgement): tell the board. */
  onChanged: (patientIds: string[]) => void;
  /** Where forged and malformed acknowledge links are recorded (the data directory's security.log). */
  security?: SecurityLog;
  /**
   * Look for steps of `now` against the monotonic clock (`now` is the host's clock); off when `now` is a simulated
   * clock that a test moves on its own.
   */
  watchClock?: boolean;
  /** The monotonic clock (ms; performance.now by default): a test's own. */
  monotonic?: () => number;
  /** The host's clock stepped (the delivery watch looks again: clockAlert). */
  onClockStep?: () => void;
  /** A ladder ran out unanswered, or such a page was answered or passed (the delivery watch looks again). */
  onExhausted?: () => void;
  /** The first tick since the start completed: what it set aside is known (the delivery watch looks again). */
  onFirstTick?: () => void;
}

/** The sweep stopped because the server is stopping. */
class Stopped extends Error {}

/** The first five ids of a list, for a log line. */
const listed = (ids: string[]) => `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}`;

/** An error's name only: its message may quote the data it failed on. */
const errorOf = (err: unknown) => (err instanceof Error ? err.name : typeof err);

/** How far behind the last stored record the clock may start without a word (clockAtStart). */
const BEHIND_AT_START_MS = 60_000;

/** How far ahead of the clock a monitor's last data may be and still be taken as stored by it. */
const CLOCK_STEP_SLACK_MS = 5_000;

/** The longest the timer loop sleeps, whatever is due. */
const TICK_MS = 1000;

/** An error of SQLite itself (its code SQLITE_...): about the database, not about the record being paged. */
const sqliteFailed = (err: unknown) => String((err as { code?: unknown } | null)?.code ?? '').startsWith('SQLITE_');

export class EmbeddedPaging {
  /**
   * The pager's own connection, synchronous=NORMAL, for what it derives from the outbox and the clock: after a
   * power cut the outbox redelivers and the ladders step again (see db.ts). What a person did (acknowledgements,
   * silences) is written through the main connection, synchronous=FULL, before the answer says it is recorded.
   */
  private readonly derived: Db;
  readonly store: SqlitePageStore;
  readonly audit: SqliteAuditLog;
  readonly sender: SqlitePageSender;
  private readonly pager: Pager;
  /** For what people do (acknowledgements, silences): committed with synchronous=FULL before the answer. */
  private readonly personal: Pager;
  private queue: Promise<unknown> = Promise.resolve();
  private tickTimer: NodeJS.Timeout | undefined;
  private tickAt = Number.POSITIVE_INFINITY;
  /** Ticks failed in a row (the database cannot commit: a full disk). */
  private tickFailures = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the timer loop last completed a tick (epoch ms): the delivery watch alerts when it falls behind. */
  lastTickAt: number;
  /**
   * The pages the last tick set aside, by id, with why: their team has no ladder in the paging config (a rollback),
   * or their stored item cannot be read. The delivery watch alerts while there are any (the log, the board's banner,
   * /api/health); every other page goes on.
   */
  setAside: SetAside[] = [];
  /** A tick completed since the start: until then `setAside` is not known (the delivery watch waits for it). */
  ticked = false;
  /**
   * The pages whose ladder ran out with nobody acknowledging, by id, while no newer change of their subject
   * (newerChange: the pager's order) has passed them (the board shows them as unanswered): read once at start, then
   * kept from every save of a page. The delivery watch names each to the operator (AWS: the LaddersExhausted alarm)
   * until it is acknowledged or passed.
   */
  private readonly exhausted = new Map<string, Page>();
  /** What is in force (patientId or ward alert -> alertId); the database says so (pages, members), this mirrors it. */
  private staleAlerts = new Map<string, InForce>();
  /** One sweep at a time (a full one and the checks after commits): each plans from what the last one left. */
  private sweeping: Promise<void> = Promise.resolve();
  private readonly staleCandidates;
  private readonly feeds;
  readonly sweepMs: number;
  /** The wall clock against the monotonic clock, looked at before every pager call and sweep. */
  private readonly clock: ClockStepWatch | undefined;
  /**
   * Patients whose last monitor data was stored before a clock step (patientId -> that time and the steps since):
   * their feed's quiet time is counted with the steps taken out, until data comes again.
   */
  private readonly feedShift = new Map<string, { since: number; shiftMs: number }>();
  /** A step seen and not yet moved into the stored times (the database failed): moved at the next look. */
  private unmoved: ClockStep | undefined;
  /** The time of the last record stored, when the clock started behind it (clockAtStart). */
  private storedAhead: number | undefined;
  /** What the pager has moved of that step so far, by page and silence (Pager.clockStepped). */
  private readonly movedBy = new Map<string, number>();

  constructor(private readonly o: EmbeddedPagingOptions) {
    const onSaved = (pages: Page[]) => {
      this.noteExhausted(pages);
      o.onChanged([...new Set(pages.map((p) => p.patientId))]);
    };
    this.derived = openConnection(o.db);
    this.derived.pragma('synchronous = NORMAL');
    this.store = new SqlitePageStore(this.derived, { onSaved });
    const exhausted = this.store.exhaustedNow();
    for (const p of exhausted.pages) this.exhausted.set(p.pageId, p);
    // Not named by the delivery watch (it reads ids and grades from the page): said here, once, to be mended.
    if (exhausted.unreadable.length > 0)
      o.log(
        `paging: ${exhausted.unreadable.length} exhausted page(s) cannot be read, the delivery watch cannot name them: ${listed(exhausted.unreadable.map((u) => `${u.pageId} (${u.reason})`))}`,
      );
    this.audit = new SqliteAuditLog(this.derived);
    this.sender = new SqlitePageSender(this.derived, { now: o.now, onSent: o.onSent });
    // One key ring for the sending and the answering pager: with one each, a link signed with a key the one had just
    // read was refused as forged by the other, read a moment before, for up to 2 s after a rotation (until 2026-12-06).
    const ackKeyring = new AckKeyring({ current: o.ackSecret, previous: o.previousAckSecret }, o.ackKeysSource);
    const deps = (pages: PageStore, audit: AuditLog, sender: PageSender): PagerDeps => ({
      pages,
      audit,
      sender,
      config: o.config.paging,
      ackSecret: o.ackSecret,
      ackKeyring,
      get ackBaseUrl() {
        return o.ackBaseUrl();
      },
      ...(o.security ? { security: o.security } : {}),
      ...(o.restoredAt === undefined ? {} : { restoredAt: o.restoredAt }),
    });
    this.pager = new Pager(deps(this.store, this.audit, this.sender));
    this.personal = new Pager(
      deps(
        new SqlitePageStore(o.db, { onSaved }),
        new SqliteAuditLog(o.db),
        new SqlitePageSender(o.db, { now: o.now, onSent: o.onSent }),
      ),
    );
    this.staleCandidates = o.db
      .prepare('SELECT patient_id FROM patients WHERE feed_since IS NOT NULL AND feed_since <= ?')
      .pluck();
    // A quarter of the stale-feed time, between 250 ms and 15 s: an alert is at most that late.
    this.sweepMs = Math.min(15_000, Math.max(250, (o.config.paging.staleFeedMinutes * MINUTE) / 4));
    this.feeds = o.db.prepare('SELECT patient_id, feed_since FROM patients WHERE feed_since IS NOT NULL');
    this.lastTickAt = o.now();
    this.clock = o.watchClock ? new ClockStepWatch(o.now, o.monotonic) : undefined;
    this.resumeStep();
  }

  /** The ladders that ran out unanswered and still stand, oldest first. */
  exhaustedPages(): Page[] {
    return [...this.exhausted.values()];
  }

  /** Keeps `exhausted` as the database has it after a save (exhaustedNow's rule, newerChange, not a copy). */
  private noteExhausted(saved: Page[]): void {
    let changed = false;
    for (const p of saved) {
      if (p.status === 'exhausted') {
        changed ||= !this.exhausted.has(p.pageId);
        this.exhausted.set(p.pageId, p);
      } else changed = this.exhausted.delete(p.pageId) || changed;
      for (const [id, e] of this.exhausted)
        if (e.patientId === p.patientId && e.subject === p.subject && newerChange(p, e))
          changed = this.exhausted.delete(id) || changed;
    }
    if (changed) this.o.onExhausted?.();
  }

  /**
   * One pager call at a time, in the order asked; each after a look at the clock, so that no call decides on
   * times stored before a step it has not seen.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const call = async () => {
      await this.clockCheck();
      return fn();
    };
    const run = this.queue.then(call, call);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * After a step of the host's clock: the pending escalations and the silences in force keep the time they had
   * left (the pager moves them), as does every quiet monitor; said on standard error, and by the delivery watch
   * for an hour (clockAlert).
   */
  private async clockCheck(): Promise<void> {
    const seen = this.clock?.check();
    if (seen) this.keepStep(seen);
    // A step not yet moved (the database could not write it: a full disk) is moved at the next look, with any since.
    const had = this.unmoved;
    const step = had && seen ? { ...had, stepMs: had.stepMs + seen.stepMs, after: seen.after } : (had ?? seen);
    if (!step) return;
    this.unmoved = step;
    const moved = await this.personal.clockStepped(step.stepMs, step.before, this.movedBy);
    this.unmoved = undefined;
    this.movedBy.clear();
    this.shiftFeeds(step);
    this.lastTickAt += step.stepMs; // the watch would take a step forward for a loop that stopped
    this.o.log(
      `clock: ${stepText(step)}; ${moved.pages} pending escalation(s) and ${moved.silences} silence(s) keep the time they had left; check the host's time source`,
    );
    this.o.onClockStep?.();
  }

  /**
   * The last step seen, kept (clock_step, schema version 13) so that its alert stands across a restart: held in memory
   * only until 2026-12-07, a restart within its hour forgot it, and the alert webhook told it cleared.
   */
  private keepStep(step: ClockStep): void {
    try {
      this.o.db
        .prepare('INSERT OR REPLACE INTO clock_step (id, step_ms, before_at, after_at) VALUES (1, ?, ?, ?)')
        .run(step.stepMs, step.before, step.after);
    } catch (err) {
      const e = err as { code?: unknown; name?: unknown };
      this.o.log(
        `clock: the step could not be kept (${String(e.code ?? e.name ?? 'error')}): a restart within the hour would not say it again`,
      );
    }
  }

  /** At start: the step the last run saw, said by the delivery watch for the rest of its hour. */
  private resumeStep(): void {
    if (!this.clock) return;
    const row = this.o.db.prepare('SELECT step_ms, before_at, after_at FROM clock_step').get() as
      | { step_ms: number; before_at: number; after_at: number }
      | undefined;
    if (!row) return;
    const step = { stepMs: row.step_ms, before: row.before_at, after: row.after_at };
    if (this.clock.resume(step, this.o.now() - step.after))
      this.o.log(
        `clock: ${stepText(step)}, seen before the restart: the delivery watch says it until an hour after it`,
      );
    else this.o.db.prepare('DELETE FROM clock_step').run();
  }

  private shiftFeeds(step: ClockStep): void {
    for (const r of this.feeds.all() as { patient_id: string; feed_since: number }[]) {
      // Data stored ahead of the clock before a step forward: of a clock ahead of it (the last run's, before a reboot
      // with the clock behind), which the step catches up with (as the pager's clockStepped).
      if (step.stepMs > 0 && r.feed_since > step.before + CLOCK_STEP_SLACK_MS) continue;
      const had = this.feedShift.get(r.patient_id);
      const shiftMs = (had && had.since === r.feed_since ? had.shiftMs : 0) + step.stepMs;
      this.feedShift.set(r.patient_id, { since: r.feed_since, shiftMs });
    }
  }

  /**
   * A clock behind the last record the data directory stored (server time) is likely wrong: a bad RTC at boot,
   * before NTP steps it. Said at start, and by the delivery watch until the clock is past that record.
   */
  private clockAtStart(): void {
    if (!this.clock) return;
    const last = this.o.db.prepare('SELECT created_at FROM outbox ORDER BY seq DESC LIMIT 1').pluck().get();
    const at = typeof last === 'string' ? Date.parse(last) : Number.NaN;
    if (!(at - this.o.now() > BEHIND_AT_START_MS)) return;
    this.storedAhead = at;
    this.o.log(`clock: ${this.behindText(at)}`);
  }

  private behindText(at: number): string {
    return `the clock is behind the last record this data directory stored by ${stepSpan(at - this.o.now())} (${iso(at)}); if it is wrong (a bad RTC before NTP), escalations wait for it and monitors ahead of it by over 5 min are refused`;
  }

  /** The delivery watch's alert after a clock step (for an hour), or while the clock is behind the stored records. */
  clockAlert(): { text: string; incident: string; since?: number } | undefined {
    const step = this.clock?.recent();
    if (!step) {
      if (this.storedAhead === undefined) return undefined;
      if (this.storedAhead - this.o.now() > BEHIND_AT_START_MS)
        return { text: this.behindText(this.storedAhead), incident: 'behind at start' };
      this.storedAhead = undefined;
      return undefined;
    }
    // A server now behind its monitors refuses their readings as ahead of it (the device-clock rule).
    const behind = step.stepMs < 0 ? '; if the clock is wrong now, monitors ahead of it by over 5 min are refused' : '';
    return {
      text: `${stepText(step)}; pending escalations, silences and no-data alerts were moved to keep the time they had left; times sent before and after it are apart by the step${behind}; check the host's time source (NTP)`,
      incident: `step at ${step.after}`,
      since: step.after,
    };
  }

  /** The outbox lane that hands the pager every committed grade change and alert, once each. */
  sink(): Sink {
    return {
      name: 'pager' satisfies LaneName,
      kinds: ['notification', 'alert'],
      deliver: async (item: OutboxItem) => {
        await this.serial(async () => {
          try {
            if (item.kind === 'notification')
              await this.pager.onNotification(recordBody<Notification>(item), this.o.now());
            else {
              const a = recordBody<AlertChange>(item);
              await this.pager.onAlert(
                {
                  alertId: a.alertId,
                  patientId: a.patientId,
                  subject: a.subject,
                  cleared: a.cleared,
                  summary: a.summary,
                },
                this.o.now(),
              );
            }
          } catch (err) {
            // The database failing (a full disk, damage, the server closing) holds the lane, as a receiver down does.
            // Anything else is about this record (JSON of another shape: an older one, a row edited by hand), and
            // would fail again: it is refused, parked after its tries, and the records behind it are paged. Until
            // 2026-12-05 the lane took it for the pager down and held there: no patient was paged again.
            if (err instanceof RecordRefused || sqliteFailed(err) || !this.o.db.open) throw err;
            throw new RecordRefused(`the pager cannot page the record (${(err as Error).name})`);
          }
        });
        this.wake();
      },
    };
  }

  /** Starts the timer loop and the stale-feed sweep (both catch up at once with whatever fell due meanwhile). */
  start(): void {
    this.staleAlerts = this.store.staleFeedAlerts();
    // A stop between a ward alert's all-clear and its record kept rows nothing reads (2026-12-07): dropped here.
    this.store.dropStaleFeedsNotInForce(this.staleAlerts);
    this.clockAtStart();
    this.schedule(0);
    // The next sweep starts a period after this one ended (a long one never overlaps the next).
    const sweep = () => {
      if (this.stopped) return;
      this.sweep()
        .catch((err: Error) => this.o.log(`paging: stale-feed sweep failed (${err.name}: ${err.message})`))
        .finally(() => {
          if (this.stopped) return;
          this.sweepTimer = setTimeout(sweep, this.sweepMs);
          this.sweepTimer.unref();
        });
    };
    sweep();
  }

  /** Stops the timers and lets the pager call in progress finish (the outbox may still hand it work). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.tickTimer);
    clearTimeout(this.sweepTimer);
    await this.queue;
  }

  /** After the outbox lanes have stopped. */
  async close(): Promise<void> {
    await this.stop();
    if (this.derived.open) this.derived.close();
  }

  /** Lets time pass: pages the next level where nobody acknowledged in time, releases held pages, resends. */
  async tick(): Promise<void> {
    const setAside = tickAside(await this.serial(() => this.pager.onTick(this.o.now())));
    this.lastTickAt = this.o.now();
    if (setAsideText(setAside, Infinity) !== setAsideText(this.setAside, Infinity))
      this.o.log(
        setAside.length > 0
          ? `paging: ${setAside.length} page(s) set aside, the pager cannot step or send them: ${setAsideText(setAside, Infinity)}`
          : 'paging: no page set aside any more',
      );
    this.setAside = setAside;
    if (this.ticked) return;
    this.ticked = true;
    this.o.onFirstTick?.();
  }

  /** Runs the timer loop again now if something may be due before it would wake. */
  private wake(): void {
    if (this.stopped || this.tickFailures > 0) return; // failing: the loop tries again within a second anyway
    const next = this.store.nextDueAt();
    if (next !== null && next < this.tickAt) this.schedule(Math.max(0, next - this.o.now()));
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    clearTimeout(this.tickTimer);
    this.tickAt = this.o.now() + delay;
    this.tickTimer = setTimeout(() => {
      this.tickAt = Number.POSITIVE_INFINITY;
      this.tick()
        .then(() => {
          if (this.tickFailures > 0)
            this.o.log(`paging: escalation ticks work again (after ${this.tickFailures} failed)`);
          this.tickFailures = 0;
        })
        .catch((err: Error) => {
          // Said at the first failure and once a minute after: the delivery watch raises the alarm meanwhile.
          if (this.tickFailures++ % 60 === 0)
            this.o.log(
              `paging: escalation tick failed (${err.name}: ${err.message})${this.tickFailures > 1 ? `, ${this.tickFailures} times in a row` : ''}; retrying every second`,
            );
        })
        .finally(() => {
          if (this.stopped) return; // the connection may be closed by now
          this.schedule(this.nextDelay());
        });
    }, delay);
    this.tickTimer.unref();
  }

  /**
   * When the timer loop runs next: at the next due time, within a second. After a failed tick, a second: what was
   * due is due still, and running again at once spun the loop (about 500 failed ticks and log lines a second for as
   * long as the disk was full).
   */
  private nextDelay(): number {
    if (this.tickFailures > 0) return TICK_MS;
    try {
      const next = this.store.nextDueAt();
      // Still due after a tick that worked: a page set aside (its due time stays past). A second, not at once.
      if (next !== null && next <= this.o.now() && this.setAside.length > 0) return TICK_MS;
      return next === null ? TICK_MS : Math.min(TICK_MS, Math.max(0, next - this.o.now()));
    } catch {
      return TICK_MS;
    }
  }

  /**
   * Raises the "no data" alert for every enrolled patient whose monitor has been quiet for staleFeedMinutes (one
   * per ward when many go quiet at once: planStaleFeeds), and clears it for those whose data resumed. `only`:
   * check just these patients (after their data was committed).
   */
  sweep(only?: string[]): Promise<void> {
    const run = this.sweeping.then(() => this.sweepNow(only));
    this.sweeping = run.catch(() => undefined);
    return run;
  }

  private async sweepNow(only?: string[]): Promise<void> {
    const paging = this.o.config.paging;
    await this.serial(async () => undefined); // a look at the clock first
    const candidates = only ?? [
      ...new Set([
        ...(this.staleCandidates.all(this.o.now() - paging.staleFeedMinutes * MINUTE) as string[]),
        ...this.staleAlerts.keys(),
        ...this.feedShift.keys(),
      ]),
    ];
    const checks: FeedCheck[] = [];
    // A patient whose state cannot be read is left out (what is in force for it stays) and said at the end: one
    // patient's unreadable state stopped every patient's alerts (until 2026-12-05).
    const unreadable: string[] = [];
    for (const [i, patientId] of candidates.entries()) {
      if (this.staleAlerts.get(patientId)?.alertId === patientId) continue; // a ward's alert, not a patient
      // A ward-wide outage makes every feed quiet at once: let requests in between patients.
      if (i > 0 && i % 50 === 0) await new Promise((r) => setImmediate(r));
      if (this.stopped) return;
      let stored: StoredState | undefined;
      try {
        stored = await this.o.loadState(patientId);
      } catch {
        unreadable.push(patientId);
        continue;
      }
      checks.push({ patientId, state: stored?.state, feed: this.feedOf(patientId, stored) });
    }
    const now = this.o.now();
    const plan = planStaleFeeds(this.staleAlerts, checks, paging, now, only === undefined, this.o.config.site.timeZone);
    // One alert the pager fails on (a page of that patient that does not decode) is set aside and the others go on;
    // what the others changed is recorded. Until 2026-12-05 it stopped the sweep before anything was recorded: the
    // alerts after it were never paged, and those before it, paged but not recorded, got no all-clear when the data
    // resumed (their ladders climbed on), for as long as that page stayed bad.
    const paged = await pageStaleFeeds(
      plan,
      this.staleAlerts,
      async (alert) => {
        if (this.stopped) throw new Stopped();
        await this.serial(() => this.pager.onAlert(alert, now));
        await new Promise((r) => setImmediate(r));
      },
      (err) => err instanceof Stopped,
    );
    // Stored first: a database that fails leaves both as they were, and the next sweep plans the same again.
    this.store.recordStaleFeeds(paged.set, paged.remove);
    for (const key of paged.remove) this.staleAlerts.delete(key);
    for (const [key, e] of paged.set) this.staleAlerts.set(key, e);
    if (paged.stopped !== undefined) return;
    this.wake();
    const problems = [
      ...(unreadable.length > 0
        ? [`the state of ${unreadable.length} patient(s) could not be read (${listed(unreadable)})`]
        : []),
      ...(paged.failed.length > 0
        ? [
            `${paged.failed.length} alert(s) could not be paged (${listed(paged.failed.map((f) => f.alertId))}: ${errorOf(paged.failed[0]!.error)})`,
          ]
        : []),
    ];
    if (problems.length > 0) throw new Error(`${problems.join('; ')}; the others were swept`);
  }

  /** A patient's feed, its quiet time counted without the clock steps since its last data (shiftFeeds). */
  private feedOf(patientId: string, stored: StoredState | undefined): FeedCheck['feed'] {
    const now = this.o.now();
    const feed = stored ? feedStatus(stored.state, now, this.o.config.paging) : undefined;
    const shift = this.feedShift.get(patientId);
    if (!shift) return feed;
    if (!feed || feed.since !== shift.since) {
      this.feedShift.delete(patientId); // data came since (or monitoring ended): of the clock as it is
      return feed;
    }
    return { ...feed, stale: now - (feed.since + shift.shiftMs) >= this.o.config.paging.staleFeedMinutes * MINUTE };
  }

  /** After a grading commit: data from a quiet monitor clears its alert at once, not at the next sweep. */
  committed(patientIds: string[]): void {
    if (this.stopped) return;
    const quiet = patientIds.filter((p) => this.staleAlerts.has(p));
    if (quiet.length > 0)
      this.sweep(quiet).catch((err: Error) => this.o.log(`paging: stale-feed check failed (${err.name})`));
  }

  acknowledge(pageId: string, by: string) {
    return this.after(this.serial(() => this.personal.acknowledge(pageId, by, 'board', this.o.now())));
  }

  /** `client`: the address it came from, recorded with a refusal in the security log. */
  acknowledgeLink(token: string, by: string, client?: string) {
    return this.after(this.serial(() => this.personal.acknowledgeLink(token, by, this.o.now(), client)));
  }

  /** Checks a link without acknowledging (the GET of the link page; nothing is recorded). */
  verifyLink(token: string): Promise<AckVerification> {
    return this.personal.verifyLink(token, this.o.now());
  }

  silence(s: Silence) {
    return this.after(this.serial(() => this.personal.silence(s, this.o.now())));
  }

  endSilence(silenceId: string, by: string) {
    return this.after(this.serial(() => this.personal.endSilence(silenceId, by, this.o.now())));
  }

  private async after<T>(p: Promise<T>): Promise<T> {
    const r = await p;
    this.wake();
    return r;
  }
}
