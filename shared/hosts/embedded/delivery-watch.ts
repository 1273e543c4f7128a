// The paging path proves itself (issue 10): a watchdog, outside the lanes and the pager, that raises an operator
// alert when a lane's oldest undelivered record is older than `deliveryAlertMinutes`, when a lane has parked
// records, when the pager's timer loop has not completed a tick for that long, when its ticks set pages aside, or when
// an accepted message has waited that long to be graded (AWS's MessagesOldestAge), and at once while any accepted
// message is dead-lettered (AWS's MessagesDlqDepth: grading failed it 3 times; crs dead-letters). It tells by paths that do not
// depend on what is stuck: standard error (one line when an alert starts, one when it clears, ids only), the
// board's banner (GET /api/outbox, pushed by a `lanes` live event) and /api/health.
// It also names each ladder that ran out with nobody acknowledging (AWS's LaddersExhausted alarm), by the same paths:
// a clinical non-response, not a fault of the server, so these alerts never hold the heartbeat (serverAlerts).
import type { LaneHealth } from '#adapters/sqlite/outbox.ts';
import { setAsideText, type SetAside } from '#app/pager.ts';
import { MINUTE, iso } from '#domain/time.ts';
import type { CeilingRefusals } from './ceiling.ts';

export interface DeliveryAlert {
  /** Stable per condition: `lane:<sink>`, `parked:<sink>`, `pager`, `set-aside`, `grading`, `dead-letters`, `ceiling`, `clock`, `restored`, `watch`. */
  key: string;
  /**
   * When it began: the first look that saw it, or its own moment (a ladder's end, a clock's step); one standing at a
   * start that the alert webhook told raised before the stop keeps the since it was told with (2026-12-07).
   */
  since: string;
  text: string;
  /** An exhausted ladder's page (key `exhausted:<pageId>`), ids only: what the board's banner names. */
  page?: ExhaustedPage;
}

/** A page whose ladder ran out unanswered, as the alert names it: ids and grade only, never a name. */
interface ExhaustedPage {
  pageId: string;
  notificationId: string;
  patientId: string;
  team: string;
  subject: string;
  grade: number;
  /** When the ladder ran out (epoch ms): the alert's `since`, across a restart too. */
  exhaustedAt: number;
}

const SUBJECT: Record<string, (grade: number) => string> = {
  crs: (g) => `CRS grade ${g}`,
  icans: (g) => `ICANS grade ${g}`,
  'stale-feed': () => 'no-data alert',
  spo2: () => 'SpO2 warning',
};

/** What an exhausted ladder's alert is called, raised and cleared (its ids may hold a colon: not cut at one). */
const exhaustedTitle = (p: ExhaustedPage) =>
  `ladder exhausted, page ${p.pageId} (patient ${p.patientId}, ${(SUBJECT[p.subject] ?? (() => p.subject))(p.grade)}, team ${p.team})`;

export interface DeliveryWatchOptions {
  lanes: () => LaneHealth[];
  /** When the pager last completed a tick (epoch ms). */
  lastTickAt: () => number;
  /**
   * The pages the pager's last tick set aside: their team has no ladder in the paging config (a rollback), or their
   * stored item cannot be read. Undefined: not known yet (no tick since the start), so a look does not know all that
   * stands (onLooked waits: a set-aside alert told raised before a restart would have been cleared, then raised again).
   */
  setAside?: () => SetAside[] | undefined;
  /** The accepted messages not graded yet: how many, and when the oldest arrived (epoch ms; null: none). */
  inbox?: () => { waiting: number; oldestAt: number | null; cannotWrite?: string | undefined };
  /** How many accepted messages grading set aside (dead letters): each one is a patient's data never graded. */
  deadLetters?: () => number;
  /** The pages whose ladder ran out with nobody acknowledging, still standing (EmbeddedPaging.exhaustedPages). */
  exhausted?: () => ExhaustedPage[];
  /** Why every device message is refused now (the database cannot take them: a full disk); undefined when taken. */
  ingest?: () => string | undefined;
  /** New patients refused for crs serve --max-patients (ceiling.ts), while that stands. */
  ceiling?: () => CeilingRefusals | undefined;
  /**
   * What to say after a step of the host's clock (for an hour); undefined when there was none. `incident` names the
   * step: another step while the alert stands (the operator's fix of the first) is told again, not only shown.
   * `since` is the step's moment (epoch ms): the alert's since, across a restart too.
   */
  clock?: () => { text: string; incident: string; since?: number } | undefined;
  /** What to say after a restore from a backup (for an hour; `since`: the restore, epoch ms); undefined otherwise. */
  restored?: () => { text: string; since: number } | undefined;
  /**
   * The alerts told raised before this start and not told cleared (the alert webhook's `alerts_told`), read at the
   * first look: one standing until the first look that reads everything is the same incident, its since kept.
   */
  toldBefore?: () => readonly { key: string; since: string }[];
  deliveryAlertMinutes: number;
  now: () => number;
  log: (line: string) => void;
  /** The set of alerts changed (the board refreshes its banner). */
  onChange: () => void;
  /** An alert was raised or cleared, as standard error says it (crs serve --alert-webhook: alert-webhook.ts). */
  onAlert?: (event: 'raised' | 'cleared', alert: DeliveryAlert) => void;
  /**
   * It looked and read everything (no `watch` alert): what stands now is known, not kept from an earlier look
   * (the alert webhook clears at start what was told raised before a stop and no longer stands).
   */
  onLooked?: (standing: DeliveryAlert[]) => void;
}

export class DeliveryWatch {
  private readonly alerts = new Map<string, DeliveryAlert>();
  /** The incident each standing alert that names one is about (the clock's step): a new one is told again. */
  private readonly incidents = new Map<string, string>();
  /**
   * The since of each alert told raised before this start (toldBefore), taken by its first raise; emptied at the
   * first look that reads everything (what stood before and does not now is cleared then: raised later, it is new).
   */
  private toldBefore: Map<string, string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** How often it looks: a quarter of the alert age, between 250 ms and 15 s. */
  readonly everyMs: number;

  constructor(private readonly o: DeliveryWatchOptions) {
    this.everyMs = Math.min(15_000, Math.max(250, (o.deliveryAlertMinutes * MINUTE) / 4));
  }

  /** Looks at once (a server started on dead letters says so from the start), then every `everyMs`. */
  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  current(): DeliveryAlert[] {
    return [...this.alerts.values()];
  }

  /** The exhausted ladders alerted now: how many, and their page ids (sorted), for /api/health. */
  exhaustedLadders(): { count: number; pageIds: string[] } {
    const pageIds = this.current()
      .flatMap((a) => (a.page ? [a.page.pageId] : []))
      .sort();
    return { count: pageIds.length, pageIds };
  }

  /**
   * The alerts about the server's own health (what the heartbeat beats by): all but the exhausted ladders, which are
   * patients nobody answered, not a server down; a held heartbeat would tell the operator's monitor it is.
   */
  serverAlerts(): DeliveryAlert[] {
    return this.current().filter((a) => !a.page);
  }

  /** Looks once: raises what is new, clears what is over. */
  check(): void {
    const now = this.o.now();
    this.toldBefore ??= this.readToldBefore();
    const limit = this.o.deliveryAlertMinutes * MINUTE;
    const found = new Map<string, string>();
    // A read that fails (an I/O error) must not end crs serve, whose timer this runs on: the watch says it cannot see,
    // and keeps the alerts that read would have confirmed or cleared.
    const unread: string[] = [];
    const read = <V>(what: string, keys: (key: string) => boolean, f: () => V, none: V): V => {
      try {
        return f();
      } catch (err) {
        const e = err as { code?: unknown; name?: unknown };
        unread.push(`${what} ${String(e.code ?? e.name ?? 'error')}`);
        for (const [key, alert] of this.alerts) if (keys(key)) found.set(key, alert.text);
        return none;
      }
    };
    const lanes = read(
      'lanes',
      (k) => k.startsWith('lane:') || k.startsWith('parked:'),
      () => this.o.lanes(),
      [],
    );
    for (const lane of lanes) {
      if (lane.oldestAt !== null && now - lane.oldestAt > limit) {
        const age = Math.round((now - lane.oldestAt) / 1000);
        found.set(
          `lane:${lane.sink}`,
          `lane ${lane.sink} is stuck: its oldest undelivered record is ${age} s old (${lane.backlog} waiting${lane.lastError ? `; last error: ${lane.lastError}` : ''})`,
        );
      }
      if (lane.parked > 0) {
        found.set(
          `parked:${lane.sink}`,
          `lane ${lane.sink} parked ${lane.parked} record(s) its receiver refused: crs outbox list shows them, crs outbox retry sends them again`,
        );
      }
    }
    const tickAge = now - this.o.lastTickAt();
    if (tickAge > limit)
      found.set(
        'pager',
        `the pager has not run for ${Math.round(tickAge / 1000)} s: escalations and silences are not being processed`,
      );

    const aside = this.o.setAside?.();
    const setAside = aside ?? [];
    if (setAside.length > 0)
      found.set(
        'set-aside',
        `the pager set aside ${setAside.length} page(s) it cannot step or send (${setAsideText(setAside)}): they are not escalated or sent until the config has their team again or their item is mended; every other page goes on`,
      );

    // Accepted and not graded (the disk full, the database damaged, grading far behind): no grade changes, no pages.
    const inbox = read(
      'inbox',
      (k) => k === 'grading',
      () => this.o.inbox?.(),
      undefined,
    );
    if (inbox && inbox.oldestAt !== null && now - inbox.oldestAt > limit)
      found.set(
        'grading',
        `grading is behind: the oldest accepted message has waited ${Math.round((now - inbox.oldestAt) / 1000)} s to be graded (${inbox.waiting} waiting): their grade changes and pages wait with them${inbox.cannotWrite ? `; ${inbox.cannotWrite}` : ''}`,
      );

    // Accepted (202), failed 3 times, set aside: never graded and never paged unless someone redrives it.
    const dead = read(
      'dead letters',
      (k) => k === 'dead-letters',
      () => this.o.deadLetters?.() ?? 0,
      0,
    );
    if (dead > 0)
      found.set(
        'dead-letters',
        `${dead} accepted message(s) failed grading 3 times and were dead-lettered: they are not graded, and any grade change they carry is not paged: crs dead-letters list shows them; fix the cause, then crs dead-letters redrive grades them`,
      );

    const pages = new Map<string, ExhaustedPage>();
    for (const p of read(
      'pages',
      (k) => k.startsWith('exhausted:'),
      () => this.o.exhausted?.() ?? [],
      [],
    )) {
      pages.set(`exhausted:${p.pageId}`, p);
      found.set(
        `exhausted:${p.pageId}`,
        `${exhaustedTitle(p)}: every level and loop was paged and nobody acknowledged: phone the team`,
      );
    }

    const ingest = this.o.ingest?.();
    if (ingest) found.set('ingest', ingest);

    // Valid messages of new patients turned away (their senders told 503, send again): patients not monitored.
    const full = this.o.ceiling?.();
    if (full)
      found.set(
        'ceiling',
        `${full.count} new patient(s) refused since ${full.since}, the server holding its most (crs serve --max-patients ${full.maxPatients} patients with data in the last 14 days; the latest: ${full.patientIds.join(', ')}): they are not monitored: raise --max-patients or end monitoring of discharged patients; their senders are told to send again`,
      );

    const clock = this.o.clock?.();
    if (clock) found.set('clock', clock.text);
    const incidents = new Map(clock ? [['clock', clock.incident]] : []);
    const sinces = new Map(clock?.since !== undefined ? [['clock', clock.since]] : []);
    const restored = this.o.restored?.();
    if (restored) {
      found.set('restored', restored.text);
      sinces.set('restored', restored.since);
    }

    if (unread.length > 0)
      found.set(
        'watch',
        `the delivery watch cannot read the database, so it cannot tell what is stuck there: ${unread.join(', ')}`,
      );

    let changed = false;
    for (const [key, text] of found) {
      const incident = incidents.get(key);
      // Another incident of a standing alert (a second step of the clock, the operator's fix of the first): told as
      // raised again, since now, or the chat would still say "stepped back" after the clock was set right. The first
      // is told cleared before it: every raise has its clear with its own since (a tool keyed by key and since kept it
      // open), and a tool that dedups by key opens a new incident rather than adding to the first (review, 2026-12-06).
      const before = this.alerts.get(key);
      const had = incident === this.incidents.get(key) ? before : undefined;
      if (before && !had) this.cleared(before);
      if (incident === undefined) this.incidents.delete(key);
      else this.incidents.set(key, incident);
      if (had && had.text.replace(/\d+/g, '') === text.replace(/\d+/g, '')) {
        had.text = text; // the same alert, older: its numbers (age, count) kept current, nothing announced again
        continue;
      }
      if (!had) this.o.log(`delivery watch: ALERT ${text}`);
      const page = pages.get(key) ?? had?.page;
      // Standing at the start and told raised before the stop: the same incident, raised again with its since (and
      // event id), not a second one that leaves the first open for ever (2026-12-07). A since of the alert's own (the
      // ladder's end, the clock's step) comes first. One that names an incident (the clock) may be another than the
      // one told (not remembered): never given the told since (its raise would be the told one's event id, dropped
      // by the receiver as a repeat), and the told one is told cleared first unless its since is the same.
      const told = before ? undefined : this.toldBefore.get(key);
      this.toldBefore.delete(key);
      const own = page?.exhaustedAt ?? sinces.get(key);
      const kept = incident === undefined ? told : undefined;
      const since = had?.since ?? (own === undefined ? (kept ?? iso(now)) : iso(own));
      if (told !== undefined && told !== since)
        this.cleared({ key, since: told, text: `${key}: told before the start` });
      const alert = { key, since, text, ...(page ? { page } : {}) };
      this.alerts.set(key, alert);
      if (!had) this.o.onAlert?.('raised', alert);
      changed = true;
    }
    for (const key of [...this.alerts.keys()]) {
      if (found.has(key)) continue;
      this.cleared(this.alerts.get(key)!);
      this.alerts.delete(key);
      this.incidents.delete(key);
      changed = true;
    }
    if (changed) this.o.onChange();
    if (unread.length === 0 && (aside !== undefined || !this.o.setAside)) {
      this.toldBefore.clear();
      this.o.onLooked?.(this.current());
    }
  }

  /** The alerts told raised before this start, once; a read that fails is said, and none are (their since is now). */
  private readToldBefore(): Map<string, string> {
    try {
      return new Map((this.o.toldBefore?.() ?? []).map((a) => [a.key, a.since]));
    } catch (err) {
      const e = err as { code?: unknown; name?: unknown };
      this.o.log(
        `delivery watch: the alerts told raised before the start could not be read (${String(e.code ?? e.name ?? 'error')}): one still standing is raised again with a new since`,
      );
      return new Map();
    }
  }

  private cleared(gone: DeliveryAlert): void {
    this.o.log(`delivery watch: cleared: ${gone.page ? exhaustedTitle(gone.page) : gone.text.split(':')[0]}`);
    this.o.onAlert?.('cleared', gone);
  }
}
