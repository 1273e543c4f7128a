// The pager: turns grade changes and alerts into pages to teams, walks their escalation ladders as time passes,
// records acknowledgements (signed links, the board, the API) and silences, and audits every step.
// Crash-safe: a page is stored before it is sent and marked delivered after, so a send interrupted by a crash
// (or failed because the transport is down) is made again by the next tick; a notification handled twice opens
// its pages once. A patient's first sends leave in the order their pages were triggered.
import { createHash, randomBytes } from 'node:crypto';
import {
  acknowledge,
  alertTeamsFor,
  hasPolicy,
  levelOf,
  nextDue,
  PageUnreadable,
  SilenceUnreadable,
  pageId,
  pagesForAlert,
  pagesForNotification,
  roleOf,
  sendReason,
  tick,
  changeRank,
  type Acknowledgement,
  type AckResult,
  type AlertInput,
  type Page,
  type PageableNotification,
  type PagesRead,
  type PagingConfig,
  type Silence,
  type Transition,
} from '../domain/paging.ts';
import { byId } from '#domain/ids.ts';
import { MINUTE, iso } from '#domain/time.ts';
import {
  RecordRefused,
  refusedDelay,
  REFUSED_TRIES,
  VersionConflict,
  type AuditEvent,
  type AuditLog,
  type PageMessage,
  type PageSender,
  type PageStore,
  type ParkedSend,
  type ParkedSends,
  type SecurityLog,
} from '#ports';
import { AckKeyring, type AckKeysSource } from './ack-keys.ts';
import {
  ackLinkKey,
  shortAckToken,
  verifyAckLink,
  type AckClaims,
  type AckVerification,
  type LinkAckResult,
} from './ack.ts';

export interface PagerDeps {
  pages: PageStore;
  sender: PageSender;
  audit: AuditLog;
  config: PagingConfig;
  /** The key that signs acknowledge links (and verifies them first). */
  ackSecret: Buffer;
  /** The key before the last rotation: links it signed are still taken until they expire (ack.ts, verifyAckLink). */
  previousAckSecret?: Buffer | undefined;
  /**
   * Where the keys are read again (ack-keys.ts): when older than a bound, before a link is signed or verified (a
   * rotation signs new links with the new key, a dropped previous key stops verifying), and when a link looks forged
   * (on AWS a notify container may have read a key put since). Without it, ackSecret and previousAckSecret are fixed.
   */
  ackKeysSource?: AckKeysSource;
  /**
   * The keys as another pager of the same host holds them (crs serve's sending and answering pagers): one ring, so
   * that a link the one signs with a key just read is verified by the other under the same keys. Given, it is used
   * instead of ackSecret, previousAckSecret and ackKeysSource.
   */
  ackKeyring?: AckKeyring;
  /** Acknowledge links are this plus the token, e.g. "https://crs.example.org/ack/". */
  ackBaseUrl: string;
  /**
   * Teams the backend can deliver to nobody now (AWS: no endpoint in the paging config deployed, CRS_TEAMS_WITHOUT_ENDPOINTS):
   * their pages are set aside as those of a team with no ladder, named by each tick, rather than published to nobody
   * until the ladder is exhausted (2026-12-07). Without it, every team with a ladder is reachable.
   */
  unreachable?: ReadonlySet<string>;
  /** Where forged and malformed acknowledge links are recorded (never a patient's trail); unrecorded without one. */
  security?: SecurityLog;
  /** Where a send the transport refuses is parked; without it, a refusal fails the call (it is retried). */
  parked?: ParkedSends;
  /** Told of each parked send (the backend's operator alert: a metric, a log line by id). */
  onParked?: (send: ParkedSend) => void;
  /** Told of every audit entry written, with its pages or alone (a backend's metrics: escalations, acknowledgements). */
  onAudited?: (event: AuditEvent) => void;
  /** Pause between the tries of a refused send, ms (tests make it 0). */
  refusedDelayMs?: number;
  /**
   * When the data directory was restored from a backup (crs serve; absent: never): every send carries it, so that its
   * sendId is none the lost server sent (page-event.ts, restoredSendId).
   */
  restoredAt?: number;
}

/**
 * How `retryParked` ended: sent; taken back by its page's ladder while the transport is down (the next tick sends
 * it); still parked because the transport is down; refused again and parked again; its page is gone; or not tried and
 * left parked, because the pager cannot send its page: its team has no ladder in the paging config (a rollback), its
 * team has no endpoint now ('unreachable', PagerDeps.unreachable; until 2026-12-07 said 'no-ladder'), or its stored
 * item cannot be read (the tick sets such a page aside too).
 */
export type RetryOutcome =
  | 'sent'
  | 'deferred'
  | 'down'
  | 'parked'
  | 'gone'
  | 'no-ladder'
  | 'unreachable'
  | 'unreadable';

/** Why a page of a team cannot be paged, as the tick names it when it sets the page aside. */
const CANNOT_PAGE = {
  'no-ladder': 'its team has no ladder in the paging config',
  unreachable: 'its team has no endpoint now: nobody would receive it',
} as const;

const ATTEMPTS = 5;

/** A page a tick could not step or send, by id, and why (never the page's content). */
export interface SetAside {
  pageId: string;
  /** "its team has no ladder in the paging config", "its stored item cannot be read: level is missing". */
  reason: string;
}

/**
 * What a tick left: `setAside`, the pages it could not step or send (every other page went on), by id: their team
 * has no ladder in the paging config (a rollback), or their stored item cannot be read (not JSON, a field missing or
 * of another type). Each backend tells its operators (a log line by ids, and the alarm or health output they watch).
 */
export interface TickResult {
  setAside: SetAside[];
  /**
   * Silences in force (or holding a page) whose stored item cannot be read, by id, with why; present only when there
   * are any. They hold nothing: the pages they held are released and paged. The backends tell them as set-aside pages.
   */
  unreadableSilences?: { silenceId: string; reason: string }[];
}

/**
 * A silence ended: `changed` false when it had ended already (ended by someone, or its time ran out). One whose
 * stored item cannot be read is named by id with why (it held nothing).
 */
export type EndedSilence =
  | {
      silence: Silence;
      changed: boolean;
      /**
       * The pages the release left unsent (tickAside): a team with no endpoint now (crs silence --backend aws with
       * TeamsWithoutEndpoints), no ladder, or an item that cannot be read. Said to whoever ended it, not "paged"
       * (2026-12-07). Not given by crs serve's API (its board and delivery watch name them).
       */
      setAside?: SetAside[];
    }
  | { unreadable: { silenceId: string; reason: string }; changed: boolean };

/**
 * What a tick could not use, for its host to tell: the pages set aside, then each silence that cannot be read (as
 * "silence <id>"), each with why.
 */
export const tickAside = (r: TickResult): SetAside[] => [
  ...r.setAside,
  ...(r.unreadableSilences ?? []).map((u) => ({
    pageId: `silence ${u.silenceId}`,
    reason: `its stored item cannot be read: ${u.reason}; it holds no page`,
  })),
];

/** The set-aside pages for a log line or an alert: "id (reason), ...", the first `max`. */
export const setAsideText = (pages: SetAside[], max = 5) =>
  `${pages
    .slice(0, max)
    .map((p) => `${p.pageId} (${p.reason})`)
    .join(', ')}${pages.length > max ? ', ...' : ''}`;

/**
 * A page is stored, but sending it failed because the transport is down (anything the sender throws other than
 * RecordRefused): it is left to the next tick, which sends every page still unsent, oldest first. A caller that
 * stored a record's pages may take the record as handled.
 */
export class SendDeferred extends Error {
  constructor(cause: unknown) {
    super(`${cause instanceof Error ? cause.message : String(cause)} (the page is stored: the next tick sends it)`, {
      cause,
    });
    this.name = 'SendDeferred';
  }
}

/**
 * Oldest first; pages triggered in the same millisecond by patient, then in the order of the patient's grade
 * changes (a crs change after an icans one must not overtake it because "crs" sorts first; changeRank, the order of
 * newerChange: an id without a sequence number first, until 2026-12-06 last), then by id (a grade
 * change's teams in the order of their names): the same order on every backend, whatever order its store reads them
 * in (a DynamoDB batch read has none).
 */
const byTrigger = (pages: Page[]) =>
  [...pages].sort(
    (a, b) =>
      a.triggeredAt - b.triggeredAt ||
      byId(a.patientId, b.patientId) ||
      changeRank(a.notificationId) - changeRank(b.notificationId) ||
      byId(a.pageId, b.pageId),
  );

export class Pager {
  /** The link keys: the deps', read again as they age when the deps say where from. */
  private readonly ackKeys: AckKeyring;

  constructor(private readonly deps: PagerDeps) {
    this.ackKeys =
      deps.ackKeyring ??
      new AckKeyring({ current: deps.ackSecret, previous: deps.previousAckSecret }, deps.ackKeysSource);
  }

  /** A grade change from the outbox: open (or reuse) its pages, replace the ones it answers, send. */
  async onNotification(n: PageableNotification, now: number): Promise<void> {
    await this.open(
      n.patientId,
      n.teams.map((t) => pageId(n.notificationId, t)),
      now,
      (patientPages, silences) => pagesForNotification(n, patientPages, silences, now, this.deps.config),
    );
  }

  /** A technical alert (stale feed, low SpO2) or its all-clear. */
  async onAlert(alert: AlertInput, now: number): Promise<void> {
    const teams = alertTeamsFor(alert.subject, this.deps.config);
    await this.open(
      alert.patientId,
      teams.map((t) => pageId(alert.alertId, t)),
      now,
      (patientPages, silences) =>
        pagesForAlert(alert, patientPages, silences, now, this.deps.config, (t) => this.cannotPage(t) === undefined),
    );
  }

  /**
   * Opens a record's pages (once: a redelivered record finds them stored) and makes the patient's first sends that
   * are still to be made, oldest first: a page left unsent while the transport was down goes before this record's,
   * so that a patient's pages arrive in the order of their grade changes. Only first sends: a page a tick has moved
   * on (a later level, a later round) is the tick's to send; on a backend where ticks and outbox deliveries run
   * side by side (AWS), sending it here too would page that level twice. Throws SendDeferred when the pages are
   * stored and only sending failed (the transport is down).
   */
  private async open(
    patientId: string,
    ids: string[],
    now: number,
    /** Given the patient's pages (any status: a change paged late must not undo newer ones) and the silences. */
    plan: (patientPages: Page[], silences: Silence[]) => Transition,
  ) {
    const { pages } = this.deps;
    // A page stored whose item cannot be read exists all the same (the tick names it): the record is not opened again.
    const stored = await Promise.all(
      ids.map((id) =>
        pages.get(id).catch((err) => (err instanceof PageUnreadable ? 'unreadable' : Promise.reject(err))),
      ),
    );
    if (stored.every((p) => p === undefined)) {
      await this.retry(async () => {
        // A page of the patient whose item cannot be read is left out (the tick names it, if it is pending).
        const { pages: patientPages } = await pages.patientPages(patientId, Number.MAX_SAFE_INTEGER);
        // A silence that cannot be read holds nothing (the tick names it).
        const t = plan(patientPages, (await pages.silences(now)).silences);
        return this.persist(
          t.pages,
          t.pages.map((p) => pageAudit(p, now)),
        );
      });
    }
    await this.sendPending(byTrigger((await pages.unsentPages(patientId)).pages), now);
  }

  /**
   * The host's clock stepped by `stepMs` (its wall clock against its monotonic clock: an NTP step after a bad RTC,
   * an operator fixing the time by hand). Every open page's next step and every silence in force at `before` (the
   * moment of the step, on the clock as it was) are moved by the step, so each keeps the time it had left: a level
   * due in 5 minutes goes in 5 minutes, not an hour late after a step back, nor at once after a step forward.
   * Nothing is sent here; the next tick does what falls due. `moved` (by page and silence id, what each was moved
   * by) is kept by the caller across a call that failed part way (a full disk): called again, with the same step or
   * a larger one, each is moved by what it has not been yet.
   */
  async clockStepped(
    stepMs: number,
    before: number,
    moved: Map<string, number>,
  ): Promise<{ pages: number; silences: number }> {
    const read = await this.deps.pages.pendingPages(Number.MAX_SAFE_INTEGER);
    const by = (id: string) => stepMs - (moved.get(id) ?? 0);
    // A time this clock could not have set before the step (a page opened or a silence begun after it, a level due
    // further ahead than the longest level) was stored by a clock ahead of it: the last run's, before a reboot with
    // the clock behind (a bad RTC). The step forward catches up with it: it is left as it is.
    const t = this.deps.config.timeoutMinutes;
    const longest = Math.max(t.severe, t.other) * MINUTE;
    const ahead = (at: number, by = 0) => stepMs > 0 && at > before + by + CLOCK_SLACK_MS;
    let pages = 0;
    for (const p of read.pages) {
      if (p.status !== 'open' || p.dueAt === null) continue;
      if (ahead(p.triggeredAt) || ahead(p.dueAt, longest)) continue;
      pages++;
      if (by(`page ${p.pageId}`) === 0) continue;
      try {
        await this.persist([{ ...p, dueAt: p.dueAt + by(`page ${p.pageId}`) }]);
      } catch (err) {
        if (!(err instanceof VersionConflict)) throw err; // changed meanwhile: its due time is of the clock as it is
      }
      moved.set(`page ${p.pageId}`, stepMs);
    }
    const { silences } = await this.deps.pages.silences(before);
    for (const s of silences) {
      if (ahead(s.from)) continue;
      const d = by(`silence ${s.silenceId}`);
      if (d !== 0) await this.saveSilence({ ...s, from: s.from + d, until: s.until + d }, []);
      moved.set(`silence ${s.silenceId}`, stepMs);
    }
    return { pages, silences: silences.length };
  }

  /**
   * Time passed: page the next level where nobody acknowledged in time, release pages whose silence ended, and
   * finish pending sends. Steps through each due time in order, so the ladder keeps its cadence whatever the
   * interval between calls.
   */
  async onTick(now: number): Promise<TickResult> {
    const setAside = new Map<string, string>();
    const unreadableSilences = new Map<string, string>();
    for (let guard = 0; guard < 10_000; guard++) {
      const pending = byTrigger(this.laddered(await this.deps.pages.pendingPages(now), setAside));
      await this.sendPending(byTrigger(pending.filter((p) => !p.delivered && p.heldBy === undefined)), now);
      const silences = await this.silencesFor(pending, now, unreadableSilences);
      const at = nextDue(pending, silences, now, this.deps.config);
      if (at === null || at > now) break;
      // A step that fell due before now (a late tick: after downtime, or replay's catch-up) is decided by the
      // silences in force when it fell due: a silence that ended since still held it then.
      const t = tick(
        pending,
        at < now ? await this.silencesFor(pending, at, unreadableSilences) : silences,
        at,
        this.deps.config,
      );
      if (t.pages.length === 0) break;
      const released = new Set(t.deliveries.filter((d) => d.reason === 'released').map((d) => d.page.pageId));
      const saved = await this.persistOrSkip(t.pages, (p) =>
        tickAudit(p, at, released.has(p.pageId), this.deps.config),
      );
      // Decided as of when it fell due, sent now: the delivery's record and the link's expiry say when it went out.
      await this.sendPending(saved, now);
    }
    return {
      setAside: [...setAside].map(([pageId, reason]) => ({ pageId, reason })).sort((a, b) => byId(a.pageId, b.pageId)),
      ...(unreadableSilences.size > 0
        ? {
            unreadableSilences: [...unreadableSilences]
              .map(([silenceId, reason]) => ({ silenceId, reason }))
              .sort((a, b) => byId(a.silenceId, b.silenceId)),
          }
        : {}),
    };
  }

  /**
   * The pages read whose team has a ladder in the config; the others are set aside (left as they are, added to
   * `setAside` by id with why): an item that cannot be read (not JSON, a field missing or of another type: an older
   * shape, an item edited by hand), and a page of a team the config does not know (a version that knew it was rolled
   * back) cannot be stepped or sent. Until 2026-12-05 either failed every tick, for every patient: a store read all
   * the due pages at once, and the first item it could not read failed the read.
   */
  private laddered(read: PagesRead, setAside?: Map<string, string>): Page[] {
    for (const u of read.unreadable) setAside?.set(u.pageId, `its stored item cannot be read: ${u.reason}`);
    return read.pages.filter((p) => {
      const why = this.cannotPage(p.team);
      if (why === undefined) return true;
      setAside?.set(p.pageId, CANNOT_PAGE[why]);
      return false;
    });
  }

  /** Why this pager cannot page a team (no ladder in the paging config, or no endpoint now), or undefined. */
  private cannotPage(team: string): keyof typeof CANNOT_PAGE | undefined {
    if (!hasPolicy(team, this.deps.config)) return 'no-ladder';
    if (this.deps.unreachable?.has(team)) return 'unreachable';
    return undefined;
  }

  /**
   * The earliest ladder step or release of a held page at or before `until` (null: none). A simulated clock
   * (`crs replay --escalations`) ticks at each, as a timely ticker would: a tick sends what it finds due when it
   * runs, so a tick that catches up after downtime sends (and records) the steps it decides then, not when they
   * fell due.
   */
  async nextDue(until: number): Promise<number | null> {
    const pending = this.laddered(await this.deps.pages.pendingPages(until));
    const at = nextDue(pending, await this.silencesFor(pending, until), until, this.deps.config);
    return at !== null && at <= until ? at : null;
  }

  /**
   * The silences in force at `now`, and those holding any of these pages (ended or not). A silence whose item cannot
   * be read holds nothing (the pages it held are released and paged: a page too many rather than one lost), and is
   * added to `unreadable` by id with why. Until 2026-12-05 one such item failed every tick and every grade change's
   * paging, for every patient, while it was in force.
   */
  private async silencesFor(pages: Page[], now: number, unreadable?: Map<string, string>): Promise<Silence[]> {
    const read = await this.deps.pages.silences(now);
    const active = read.silences;
    for (const u of read.unreadable) unreadable?.set(u.silenceId, u.reason);
    const known = new Set([...active.map((s) => s.silenceId), ...read.unreadable.map((u) => u.silenceId)]);
    const ids = new Set(pages.flatMap((p) => (p.heldBy !== undefined && !known.has(p.heldBy) ? [p.heldBy] : [])));
    const holding = await Promise.all(
      [...ids].map(async (id) => {
        try {
          return await this.deps.pages.getSilence(id);
        } catch (err) {
          if (!(err instanceof SilenceUnreadable)) throw err;
          unreadable?.set(err.silenceId, err.reason);
          return undefined;
        }
      }),
    );
    return [...active, ...holding.filter((s): s is Silence => s !== undefined)];
  }

  /** Acknowledges a page for a signed-in user of the board or the API. */
  async acknowledge(id: string, by: string, via: 'board' | 'api', now: number): Promise<AckResult> {
    return this.ack(id, { by, at: now, via });
  }

  /**
   * Acknowledges through a signed link; a forged, altered or expired token is refused. An expired link is genuine (we
   * signed it): its refusal goes into the patient's trail (someone answered late). A forged or malformed one vouches
   * for nothing, so what it claims goes to the security log with the client's address, never into a trail. The one
   * verification of the link: its claims come back with the result.
   */
  async acknowledgeLink(token: string, by: string, now: number, client?: string): Promise<LinkAckResult> {
    const v = await this.verifyLink(token, now);
    if (!v.ok) {
      const claimed = claimsOf(token);
      const page = v.reason === 'expired' && v.claims ? await this.deps.pages.get(v.claims.pageId) : undefined;
      if (page) {
        await this.audit([
          {
            at: iso(now),
            patientId: page.patientId,
            type: 'acknowledgement-refused',
            text: `acknowledge link refused (${v.reason})`,
            // An id of this attempt: two alike to the millisecond (the same link and name) are two entries, each
            // counted; a retried write of this one is still stored once.
            details: { reason: v.reason, pageId: page.pageId, by, attemptId: randomBytes(9).toString('base64url') },
          },
        ]);
      } else {
        await this.deps.security?.record({
          at: iso(now),
          event: 'acknowledge-link-refused',
          reason: v.reason,
          ...(client !== undefined ? { client } : {}),
          claimed: {
            // The token's digest, not the token: a genuine link damaged by one character (a mail client's wrap) would
            // otherwise be in the log a few guesses from the real one (until 2026-12-06 the token itself was).
            tokenDigest: createHash('sha256').update(token).digest('hex').slice(0, 16),
            pageId: claimed.pageId ?? null,
            role: claimed.role ?? null,
            expiresAt: claimed.expiresAt ?? null,
            by: clip(by),
          },
        });
      }
      return { ok: false, code: `link-${v.reason}`, reason: `acknowledge link ${v.reason}` };
    }
    return {
      ...(await this.ack(v.claims.pageId, { by: `${by} (${v.claims.role})`, at: now, via: 'link' })),
      claims: v.claims,
    };
  }

  /**
   * Verifies an acknowledge link's token without acknowledging: a short one by the claims stored when its page was
   * sent, one signed before short links (v1) by itself.
   */
  async verifyLink(token: string, now: number): Promise<AckVerification> {
    // The stored claims, read once for both tries (one token, one key). Claims stored and a MAC that fails: a link
    // issued here under a key put since the keys held were read, so read again without minGapMs (2026-12-06); none
    // stored: a forgery, which buys a read at most every minGapMs.
    let claims: Promise<AckClaims | undefined> | undefined;
    const stored = (key: string) => {
      claims ??= this.deps.pages.ackLink(key);
      return claims;
    };
    const v = await verifyAckLink(await this.ackKeys.keys(now), token, now, stored);
    if (v.ok || v.reason !== 'forged') return v;
    const keys = await this.ackKeys.reread(now, (await claims) !== undefined);
    return keys ? verifyAckLink(keys, token, now, stored) : v;
  }

  private async ack(id: string, ack: Acknowledgement): Promise<AckResult> {
    const result = await this.retry(async (): Promise<AckResult> => {
      const page = await this.deps.pages.get(id);
      if (!page) return { ok: false, code: 'no-such-page', reason: 'no such page' };
      const r = acknowledge(page, ack);
      if (!r.ok || !r.changed) return r;
      const p = r.page;
      const [stored] = await this.persist(
        [p],
        [
          {
            at: iso(ack.at),
            patientId: p.patientId,
            type: 'acknowledgement',
            text: `${p.team} page acknowledged by ${ack.by} via ${ack.via}`,
            details: {
              pageId: p.pageId,
              notificationId: p.notificationId,
              team: p.team,
              by: ack.by,
              via: ack.via,
              level: p.level,
            },
          },
        ],
      );
      return { ok: true, changed: true, page: stored! };
    });
    return result;
  }

  /** Starts a silence for a patient or a team; it holds pages below the unsilenceable grade until it ends. */
  async silence(s: Silence, now: number): Promise<Silence> {
    if (!(s.until > s.from)) throw new Error('a silence must end after it starts');
    const scope = 'patientId' in s.scope ? `patient ${s.scope.patientId}` : `team ${s.scope.team}`;
    await this.saveSilence(s, [
      {
        at: iso(now),
        patientId: 'patientId' in s.scope ? s.scope.patientId : '*',
        type: 'silence',
        text: `silence of ${scope} by ${s.createdBy} from ${iso(s.from)} until ${iso(s.until)}: ${s.reason}`,
        details: {
          silenceId: s.silenceId,
          by: s.createdBy,
          from: iso(s.from),
          until: iso(s.until),
          team: 'team' in s.scope ? s.scope.team : null,
        },
      },
    ]);
    return s;
  }

  /**
   * Ends a silence now and pages what it held. `changed` is false for one that had ended already (ended by
   * someone, or its time ran out): nothing is recorded then, but held pages are still released (a call made
   * again after a crash between the two finishes the release).
   */
  async endSilence(silenceId: string, by: string, now: number): Promise<EndedSilence | undefined> {
    let s: Silence | undefined;
    try {
      s = await this.deps.pages.getSilence(silenceId);
    } catch (err) {
      if (!(err instanceof SilenceUnreadable)) throw err;
      // It holds nothing already; ended, it is no longer read as in force (until 2026-12-05 it could not be ended:
      // an operator had to edit the database by hand). Its item is kept as it is, to be mended or to expire. Audited
      // in its patient's trail where the store keeps the patient apart from the JSON (until 2026-12-05 always under
      // '*'); a team's silence, or one whose patient only its JSON names, under '*', as a team's silence always is.
      const changed = await this.deps.pages.endUnreadableSilence(silenceId, now, [
        {
          at: iso(now),
          patientId: err.patientId ?? '*',
          type: 'silence',
          text: `silence ${silenceId} ended by ${by} (its stored item cannot be read: ${err.reason})`,
          details: { silenceId, by, ended: true },
        },
      ]);
      await this.onTick(now);
      return { unreadable: { silenceId, reason: err.reason }, changed };
    }
    if (!s) return undefined;
    if (s.endedAt !== undefined || s.until <= now)
      return { silence: s, changed: false, setAside: tickAside(await this.onTick(now)) };
    const ended = { ...s, endedAt: now, endedBy: by };
    await this.saveSilence(ended, [
      {
        at: iso(now),
        patientId: 'patientId' in s.scope ? s.scope.patientId : '*',
        type: 'silence',
        text: `silence ${silenceId} ended by ${by}`,
        details: { silenceId, by, ended: true },
      },
    ]);
    const released = await this.onTick(now); // release what it held
    return { silence: ended, changed: true, setAside: tickAside(released) };
  }

  /** Sends every page in `candidates` whose current level is not sent yet, then marks it delivered; returns the sends parked. */
  private async sendPending(candidates: Page[], now: number): Promise<ParkedSend[]> {
    const parkedSends: ParkedSend[] = [];
    for (const candidate of candidates) {
      // Read again just before its send: on AWS the notifier, the ticks and the ack function run side by side, and
      // since this call read it another may have acknowledged it, replaced it with a newer grade or sent it. Until
      // 2026-12-05 the copy read at the start was sent: an acknowledged page went on to the next role as "nobody
      // acknowledged in time", and a superseded grade's page went out, open, after the newer grade's.
      let page = await this.deps.pages.get(candidate.pageId);
      if (
        !page ||
        page.level !== candidate.level ||
        page.round !== candidate.round ||
        page.delivered ||
        page.heldBy !== undefined ||
        (page.status !== 'open' && page.status !== 'info') ||
        this.cannotPage(page.team) !== undefined // set aside: the tick names it
      )
        continue;
      // Past the end of its team's ladder (a deployment shortened it while the page was held, unsent or waiting):
      // moved to the ladder's last level first, so that what is sent, stored and audited is a level that exists.
      // Until 2026-12-05 it went to role `undefined`: on AWS its link could not be stored and every tick failed
      // there, for every patient; on crs serve it went out with a link that was never stored and could not be used.
      const last = levelOf(page, this.deps.config);
      if (last !== page.level) {
        const from = page.level;
        const [moved] = await this.persistOrSkip([{ ...page, level: last }], (p) =>
          movedAudit(p, from, now, this.deps.config),
        );
        if (!moved) continue; // changed meanwhile: its new state is another send's
        page = moved;
      }
      const role = roleOf(page, this.deps.config);
      const ackUrl = page.status === 'open' ? await this.ackUrl(page, role, now) : undefined;
      const parked = await this.sendOrPark(
        { page, role, reason: sendReason(page), ...(ackUrl ? { ackUrl } : {}) },
        now,
      );
      if (parked) parkedSends.push(parked);
      const details = {
        pageId: page.pageId,
        notificationId: page.notificationId,
        team: page.team,
        role,
        level: page.level,
        round: page.round,
      };
      // Written with the mark (all or nothing), or alone when the page changed meanwhile and nothing is marked.
      const entry = (marked: boolean): AuditEvent =>
        parked
          ? {
              at: iso(now),
              patientId: page.patientId,
              type: 'delivery',
              text: `${page.kind} page to ${role} (${page.team}) PARKED: ${parked.reason}; the pages behind it go on (crs outbox retry sends it again)`,
              details: { ...details, parked: true },
            }
          : {
              at: iso(now),
              patientId: page.patientId,
              type: 'delivery',
              text: `${page.kind} page to ${role} (${page.team})`,
              details: { ...details, marked },
            };
      if (!(await this.markDelivered(page, entry(true)))) await this.audit([entry(false)]);
    }
    return parkedSends;
  }

  /**
   * Sends; a send the transport refuses (RecordRefused) is tried REFUSED_TRIES times, then parked, and the page is
   * marked delivered like a sent one so that neither the ladder nor the pages behind it wait for it. Returns the
   * parked send, or undefined when it was sent. Any other error means the transport is down: SendDeferred is thrown
   * (the page stays unsent, and the next tick sends it, in order).
   */
  private async sendOrPark(message: PageMessage, now: number): Promise<ParkedSend | undefined> {
    const { parked, sender, restoredAt } = this.deps;
    const m = restoredAt === undefined ? message : { ...message, restoredAt };
    for (let attempt = 1; ; attempt++) {
      try {
        await sender.send(m);
        return undefined;
      } catch (err) {
        if (!(err instanceof RecordRefused)) throw new SendDeferred(err);
        if (!parked) throw err;
        if (attempt < REFUSED_TRIES) {
          const delay = refusedDelay(attempt, this.deps.refusedDelayMs);
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          continue;
        }
        const p = m.page;
        const send: ParkedSend = {
          pageId: p.pageId,
          patientId: p.patientId,
          notificationId: p.notificationId,
          team: p.team,
          level: p.level,
          round: p.round,
          reason: err.message,
          attempts: attempt,
          parkedAt: iso(now),
        };
        await parked.park(send);
        this.deps.onParked?.(send);
        return send;
      }
    }
  }

  /**
   * `crs outbox retry`: sends a parked send again. While its page is still at that level and round and wants
   * sending, as the ladder's own send (with a fresh acknowledge link): the page is stored unsent again, so that if
   * the transport is down now the next tick sends it once it is back ('deferred'), like any page an outage held.
   * Once the page has moved on (escalated, acknowledged, superseded, resolved), as it stands now to the role it was
   * meant for, marked `resent` and without a link, so that the team still hears of that grade change once; only the
   * ladder's pages are stored, so while the transport is down such a send stays parked ('down'), to be retried once
   * it is back. A send refused again is parked again ('parked'); 'gone' when the page no longer exists.
   */
  async retryParked(send: ParkedSend, now: number): Promise<RetryOutcome> {
    const { parked } = this.deps;
    // A page the pager cannot send stays parked, untouched, and the caller says why. Until 2026-12-05 one of a team
    // the config no longer has was reported sent and its parked send removed, though nothing was sent (it had moved
    // on: a TypeError, and `crs outbox retry` ended there, with a stack trace).
    try {
      const page = await this.deps.pages.get(send.pageId);
      const why = page && this.cannotPage(page.team);
      if (why) return why;
    } catch (err) {
      if (err instanceof PageUnreadable) return 'unreadable';
      throw err;
    }
    const wanted = (p: Page | undefined): p is Page =>
      p !== undefined &&
      p.level === send.level &&
      p.round === send.round &&
      p.heldBy === undefined &&
      (p.status === 'open' || p.status === 'info');
    const stored = await this.retry(async () => {
      const page = await this.deps.pages.get(send.pageId);
      return wanted(page) ? this.persist([{ ...page, delivered: false }]) : [];
    });
    if (stored.length > 0) {
      // The page is the ladder's to send now: a refusal parks it again under the same key, after this removal.
      await parked?.remove(send.pageId, send.level, send.round);
      try {
        return (await this.sendPending(stored, now)).length > 0 ? 'parked' : 'sent';
      } catch (err) {
        if (err instanceof SendDeferred) return 'deferred';
        throw err;
      }
    }
    const page = await this.deps.pages.get(send.pageId);
    if (!page) {
      await parked?.remove(send.pageId, send.level, send.round);
      return 'gone';
    }
    const then = { ...page, level: send.level, round: send.round };
    const role = roleOf(then, this.deps.config);
    let again: ParkedSend | undefined;
    try {
      again = await this.sendOrPark({ page: then, role, reason: 'resent' }, now);
    } catch (err) {
      // Down: nothing else would send it, so it stays parked (removed only once sent or parked again).
      if (err instanceof SendDeferred) return 'down';
      throw err;
    }
    if (again) return 'parked'; // refused again: parked again, under the same key
    await this.audit([
      {
        at: iso(now),
        patientId: page.patientId,
        type: 'delivery',
        text: `${page.kind} page to ${role} (${page.team}) resent from the parked sends; the page is ${page.status} now`,
        details: {
          pageId: page.pageId,
          notificationId: page.notificationId,
          team: page.team,
          role,
          level: send.level,
          round: send.round,
          resent: true,
        },
      },
    ]);
    await parked?.remove(send.pageId, send.level, send.round);
    return 'sent';
  }

  /** Marks the page sent, with the delivery's audit entry; false when it changed meanwhile (nothing written). */
  private async markDelivered(sent: Page, entry: AuditEvent): Promise<boolean> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = await this.deps.pages.get(sent.pageId);
      // Changed meanwhile (acknowledged, moved on): nothing to mark; the next level is another send.
      if (!current || current.delivered || current.level !== sent.level || current.round !== sent.round) return false;
      try {
        await this.persist([{ ...current, delivered: true }], [entry]);
        return true;
      } catch (err) {
        if (!(err instanceof VersionConflict)) throw err;
      }
    }
    return false;
  }

  /** A short link for this send, stored before the page carrying it goes out (a retry stores the same again). */
  private async ackUrl(page: Page, role: string, now: number): Promise<string> {
    const link = { pageId: page.pageId, role, expiresAt: now + this.deps.config.ackLinkMinutes * MINUTE };
    const token = shortAckToken((await this.ackKeys.keys(now)).current, link);
    await this.deps.pages.saveAckLink(ackLinkKey(token), link);
    return `${this.deps.ackBaseUrl}${token}`;
  }

  /** Saves the pages with the audit entries that say what changed (all or nothing); returns them as stored (rev + 1). */
  private async persist(pages: Page[], audit: AuditEvent[] = []): Promise<Page[]> {
    if (pages.length === 0) return [];
    await this.deps.pages.save(pages, audit);
    for (const e of audit) this.deps.onAudited?.(e);
    return pages.map((p) => ({ ...p, rev: p.rev + 1 }));
  }

  private async saveSilence(s: Silence, audit: AuditEvent[]): Promise<void> {
    await this.deps.pages.saveSilence(s, audit);
    for (const e of audit) this.deps.onAudited?.(e);
  }

  /** Saves the tick's changes one page at a time, each with its entry: a page changed meanwhile is left as it is. */
  private async persistOrSkip(pages: Page[], entry: (p: Page) => AuditEvent): Promise<Page[]> {
    const saved: Page[] = [];
    for (const p of pages) {
      try {
        saved.push(...(await this.persist([p], [entry(p)])));
      } catch (err) {
        if (!(err instanceof VersionConflict)) throw err;
      }
    }
    return saved;
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof VersionConflict) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  /** Entries with no page change to go with (a refused link, a resend from the parked sends, a page changed meanwhile). */
  private async audit(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.deps.audit.append(events);
    for (const e of events) this.deps.onAudited?.(e);
  }
}

/** How far ahead of the clock a stored time may be and still be taken as set by it (clockStepped). */
const CLOCK_SLACK_MS = 5_000;

/** What a token says (unverified), each part clipped, where a part reads as text: for the security log. */
function claimsOf(token: string): { pageId?: string; role?: string; expiresAt?: string } {
  const [, p, r, e] = token.split('.');
  const text = (part: string | undefined) => {
    if (!part || !/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
    const t = Buffer.from(part, 'base64url').toString('utf8');
    return Buffer.from(t, 'utf8').toString('base64url') === part ? clip(t) : undefined; // else it is in `token`
  };
  const pageId = text(p);
  const role = text(r);
  const expires = e && /^[0-9a-z]{1,12}$/.test(e) ? Number.parseInt(e, 36) : Number.NaN;
  return {
    ...(pageId ? { pageId } : {}),
    ...(role ? { role } : {}),
    ...(Number.isFinite(expires) && expires < 8.64e15 ? { expiresAt: iso(expires) } : {}),
  };
}

const clip = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

function pageAudit(p: Page, now: number): AuditEvent {
  const what =
    p.status === 'superseded' || p.status === 'resolved'
      ? `${p.team} page ${p.status}`
      : p.closedAt !== undefined
        ? `${p.team} page replaced before it was ever sent: sent once, for information`
        : `${p.kind} page opened for ${p.team}`;
  return {
    at: iso(now),
    patientId: p.patientId,
    type: p.kind === 'alert' || p.kind === 'alert-cleared' ? 'alert' : 'page',
    text: `${what}${p.heldBy ? ` (held by silence ${p.heldBy})` : ''}: ${p.summary}`,
    details: {
      pageId: p.pageId,
      notificationId: p.notificationId,
      team: p.team,
      subject: p.subject,
      grade: p.grade,
      status: p.status,
      held: p.heldBy !== undefined,
    },
  };
}

function movedAudit(p: Page, from: number, at: number, config: PagingConfig): AuditEvent {
  return escalationAudit(
    p,
    at,
    `${p.team} page at level ${from + 1}, which the ladder no longer has (${config.policies[p.team].levels.length} levels now): paging its last level, ${roleOf(p, config)}`,
    { held: false, fromLevel: from },
  );
}

/** A ladder's audit entry: the page as it stands, and what became of it. */
function escalationAudit(p: Page, at: number, text: string, extra: Record<string, unknown>): AuditEvent {
  return {
    at: iso(at),
    patientId: p.patientId,
    type: 'escalation',
    text,
    details: { pageId: p.pageId, team: p.team, level: p.level, round: p.round, status: p.status, ...extra },
  };
}

function tickAudit(p: Page, at: number, released: boolean, config: PagingConfig): AuditEvent {
  const text =
    p.status === 'exhausted'
      ? `${p.team} page exhausted: nobody acknowledged after ${config.policies[p.team].loops} rounds of the ladder`
      : released
        ? `${p.team} page released: its silence ended; paging ${roleOf(p, config)}`
        : p.heldBy !== undefined
          ? `${p.team} page held by silence ${p.heldBy}`
          : `${p.team} page not acknowledged in time: escalated to ${roleOf(p, config)}`;
  return escalationAudit(p, at, text, { held: p.heldBy !== undefined });
}
