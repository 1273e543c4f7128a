// Pages that get answered: the lifecycle of one page to one team (triggered, delivered, acknowledged, resolved),
// its escalation ladder, and silences. Pure: every time is data (wall-clock ms on a live server, simulated
// time in replay), so the ladders are deterministic and testable.
import type { Condition } from './config.ts';
import { changeSeq, type Notification } from './page.ts';
import { enrolledAt, type PatientState } from './state.ts';
import { byId } from './ids.ts';
import { formatSiteTime, MINUTE } from './time.ts';
import type { pagingConfigSchema } from './paging-schema.ts';
import type * as z from './zod.ts';

export const PAGE_TEAMS = ['hematology', 'icu', 'neurology', 'radiology', 'bedside'] as const;
export type PageTeam = (typeof PAGE_TEAMS)[number];

/**
 * What identifies an endpoint: its protocol and the endpoint, an email address in lower case. SNS takes each spelling
 * of an address as another subscription, but mail servers treat addresses case-insensitively (the domain always, the
 * local part in practice): `Heme@x.org` and `heme@x.org` are one mailbox, which got every page twice.
 */
export function endpointKey(protocol: string, endpoint: string): string {
  return `${protocol} ${protocol === 'email' ? endpoint.toLowerCase() : endpoint}`;
}

/**
 * An endpoint as SNS lists it (ListSubscriptionsByTopic) and as it may be shown: an https URL's password (SNS's basic
 * authentication, `https://user:password@host/`) replaced by `****`.
 */
export function endpointShown(endpoint: string): string {
  return endpoint.replace(/^(https?:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1:****@');
}

/**
 * The longest duration a setting may give: 10 years. Not a clinical bound (a setting that long switches its timer
 * off in practice, as tests do with the stale-feed alert); a technical one: a longer one (a typo, 10^12) put the
 * times computed from it (an escalation due, a link's expiry, when another dose is allowed) past what a date can
 * hold, so that pages could never be sent and grading failed.
 */
export const LONGEST_SETTING_MINUTES = 10 * 365 * 24 * 60;
/** The configuration's paging part, as its schema (paging-schema.ts, built only to check overrides) reads it. */
export type PagingConfig = z.infer<ReturnType<typeof pagingConfigSchema>>;

export const DEFAULT_PAGING: PagingConfig = {
  policies: {
    hematology: { levels: ['hematology fellow', 'hematology attending', 'hematology consultant'], loops: 2 },
    icu: { levels: ['ICU registrar', 'ICU consultant'], loops: 2 },
    neurology: { levels: ['neurology resident', 'neurology attending'], loops: 2 },
    radiology: { levels: ['radiology registrar', 'radiology consultant'], loops: 1 },
    bedside: { levels: ['bedside nurse', 'nurse in charge'], loops: 2 },
  },
  timeoutMinutes: { severe: 5, other: 15 },
  severeFromGrade: 3,
  ackLinkMinutes: 12 * 60,
  staleFeedMinutes: 15,
  spo2WarningBelow: 90,
  alertTeams: { staleFeed: ['bedside'], spo2: ['bedside', 'hematology'] },
  staleFeedGroup: { fromPatients: 3, windowMinutes: 5 },
  unsilenceableFromGrade: 4,
  deliveryAlertMinutes: 2,
};

export type PageStatus =
  /** Waiting for an acknowledgement; the ladder is running (or held by a silence). */
  | 'open'
  | 'acknowledged'
  /** A newer page for the same patient and condition replaced it. */
  | 'superseded'
  /** The grade fell (de-escalation) or the alert cleared: nothing left to answer. */
  | 'resolved'
  /** Every level was paged, every loop, and nobody answered. */
  | 'exhausted'
  /** Informational (a de-escalation, an alert clearing): delivered once, nothing to acknowledge. */
  | 'info';

type PageSubject = Condition | 'stale-feed' | 'spo2';

export interface Page {
  /** One page per notification per team. */
  pageId: string;
  notificationId: string;
  patientId: string;
  team: PageTeam;
  subject: PageSubject;
  kind: 'escalation' | 'de-escalation' | 'alert' | 'alert-cleared';
  grade: number;
  /**
   * A grade change's grade before it (the notification's fromGrade): the board's "from N" once the retention has
   * dropped the change's record. Absent for alerts, and on pages stored before 2026-12-07, whose summary says it
   * (fromGradeOf). Until then the board read it out of the summary text alone.
   */
  fromGrade?: number;
  /** What the page says (the notification's summary, or the alert text): ids and bed only, never a name. */
  summary: string;
  /**
   * A grade change's next steps (the notification's actions, the tocilizumab dose among them): the acknowledge
   * link's page shows them, since the SMS leaves them to the link. Absent for alerts and pages stored before.
   */
  actions?: string[];
  status: PageStatus;
  /** Whether the current level has been sent (false: a send is pending, e.g. after a crash or a timeout). */
  delivered: boolean;
  /** Storage revision: a store writes rev + 1 only if it still holds `rev` (0 for a page never stored). */
  rev: number;
  /** The level of the team's policy paged last (0 is the first). */
  level: number;
  /** Which walk of the ladder this is (0 is the first). */
  round: number;
  triggeredAt: number;
  /** When the next level is paged if nobody acknowledges; null when nothing is pending. */
  dueAt: number | null;
  /** Set while a silence holds the page: it is delivered when the silence ends, if still open. */
  heldBy?: string;
  /**
   * When a silence began to hold the page (kept while another silence takes over the hold, and after the release):
   * what its send and its acknowledge page say of the hold (heldText). Absent on pages held before 2026-12-07.
   */
  heldAt?: number;
  /**
   * When a silence that held the page ended and released it: its send at this level says so (the change it is
   * about may be older than the send). Cleared when the ladder moves on.
   */
  releasedAt?: number;
  ack?: Acknowledgement;
  closedAt?: number;
  /**
   * The page of the newer grade that replaced this one, of the same patient and team (a grade change that pages
   * another team leaves none): its acknowledge link says which page to answer. Absent on pages replaced before
   * 2026-12-06. Written with the supersession (the replaced page is saved then anyway: no write of its own).
   */
  supersededBy?: string;
  /**
   * The teams the newer grade paged when none is this page's (a routing of its own: grade 1 to hematology, grade 2
   * to neurology), so that its link says where that grade went, not "answer that one" (2026-12-06; absent before).
   */
  supersededTeams?: string[];
  /**
   * On AWS, the restore (`crs restore --backend aws`, epoch ms) of the deployment that holds the page, when the page
   * came from the backup (the copy marks it) or is an alert raised since whose id the lost deployment may have given
   * (a no-data alert's: when the feed went quiet). Every send of it carries it in its sendId (page-event.ts,
   * restoredSendId), as every send of a restored crs serve does (2026-12-07). Absent: never restored.
   */
  restoredAt?: number;
}

/**
 * A page item a store holds but cannot read back as a page: not JSON, a field missing or of another type (an older
 * shape, an item edited by hand), or another page's id inside. Named by the id it is stored under; the pager sets it
 * aside (neither steps nor sends it) and every other page goes on. `reason` names the field, never its value.
 */
export interface UnreadablePage {
  unreadable: true;
  pageId: string;
  reason: string;
}

/** A read of several pages: those read, and the items that could not be (never dropped silently). */
export interface PagesRead {
  pages: Page[];
  unreadable: UnreadablePage[];
}

/** A page read alone (by id) whose item cannot be read: what the pager and the acknowledge flow tell apart. */
export class PageUnreadable extends Error {
  constructor(
    readonly pageId: string,
    readonly reason: string,
  ) {
    super(`page ${pageId}: its stored item cannot be read (${reason})`);
    this.name = 'PageUnreadable';
  }
}

const PAGE_STATUSES: readonly string[] = ['open', 'acknowledged', 'superseded', 'resolved', 'exhausted', 'info'];
const PAGE_KINDS: readonly string[] = ['escalation', 'de-escalation', 'alert', 'alert-cleared'];
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isTime = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isText = (v: unknown) => typeof v === 'string';
/** What each field of a stored page must be (optional ones only when present). */
const PAGE_FIELDS: [keyof Page, (v: unknown) => boolean, 'required' | 'optional'][] = [
  ['pageId', isText, 'required'],
  ['notificationId', isText, 'required'],
  ['patientId', isText, 'required'],
  ['team', isText, 'required'],
  ['subject', isText, 'required'],
  ['kind', (v) => PAGE_KINDS.includes(v as string), 'required'],
  ['grade', isTime, 'required'],
  ['fromGrade', isCount, 'optional'],
  ['summary', isText, 'required'],
  ['status', (v) => PAGE_STATUSES.includes(v as string), 'required'],
  ['delivered', (v) => typeof v === 'boolean', 'required'],
  ['level', isCount, 'required'],
  ['round', isCount, 'required'],
  ['triggeredAt', isTime, 'required'],
  ['dueAt', (v) => v === null || isTime(v), 'required'],
  ['actions', (v) => Array.isArray(v) && v.every(isText), 'optional'],
  ['heldBy', isText, 'optional'],
  ['heldAt', isTime, 'optional'],
  ['releasedAt', isTime, 'optional'],
  ['closedAt', isTime, 'optional'],
  ['supersededBy', isText, 'optional'],
  ['supersededTeams', (v) => Array.isArray(v) && v.every(isText), 'optional'],
  ['restoredAt', isTime, 'optional'],
  [
    'ack',
    (v) => {
      const a = v as Record<string, unknown> | null;
      return typeof a === 'object' && a !== null && isText(a.by) && isTime(a.at) && isText(a.via);
    },
    'optional',
  ],
];

/**
 * A stored page (its JSON text, or the object a store keeps) read back as a Page with the store's revision, or what
 * is wrong with it: the one check of every store, so that no backend steps or sends a page it could not read whole.
 * Fields it does not know are kept (a page written by a newer version and read by an older one keeps them).
 */
export function readPage(pageId: string, stored: unknown, rev: number): Page | UnreadablePage {
  const unreadable = (reason: string): UnreadablePage => ({ unreadable: true, pageId, reason });
  let value = stored;
  if (typeof stored === 'string') {
    try {
      value = JSON.parse(stored) as unknown;
    } catch {
      return unreadable('not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return unreadable('not a JSON object');
  if (!isCount(rev)) return unreadable('its revision is not a whole number');
  const v = value as Record<string, unknown>;
  for (const [field, ok, need] of PAGE_FIELDS) {
    if (v[field] === undefined && need === 'optional') continue;
    if (v[field] === undefined) return unreadable(`${field} is missing`);
    if (!ok(v[field])) return unreadable(`${field} is not what a page holds there`);
  }
  if (v.pageId !== pageId) return unreadable('it holds another page id');
  return { ...(v as unknown as Page), rev };
}

export const isUnreadable = (p: Page | UnreadablePage): p is UnreadablePage => 'unreadable' in p;

/** Pages read one by one: the unreadable ones apart, each named. */
export function readPages(read: (Page | UnreadablePage)[]): PagesRead {
  const pages: Page[] = [];
  const unreadable: UnreadablePage[] = [];
  for (const p of read) (isUnreadable(p) ? unreadable : pages).push(p as never);
  return { pages, unreadable };
}

/** A page read alone: its item unreadable is PageUnreadable (thrown), by its id. */
export function readOnePage(pageId: string, stored: unknown, rev: number): Page {
  const p = readPage(pageId, stored, rev);
  if (isUnreadable(p)) throw new PageUnreadable(p.pageId, p.reason);
  return p;
}

export interface Acknowledgement {
  by: string;
  at: number;
  via: 'link' | 'board' | 'api';
}

export interface Silence {
  silenceId: string;
  scope: { patientId: string } | { team: PageTeam };
  from: number;
  until: number;
  createdBy: string;
  reason: string;
  endedAt?: number;
  endedBy?: string;
}

/**
 * A silence item a store holds but cannot read back (not JSON, a field missing or of another type): named by its id.
 * Nobody can tell what it would hold, so it holds nothing: the pages it held are released and paged (a page too many
 * rather than one lost), and the pager names it.
 */
export interface UnreadableSilence {
  unreadable: true;
  silenceId: string;
  reason: string;
  /**
   * The patient it was made for, where the store keeps it apart from the item's JSON (a column, an attribute written
   * with it from its scope): the audit entry of its end goes into that patient's trail. Absent for a team's silence,
   * and where nothing but the JSON says (an item written before 2026-12-05 on AWS): its JSON cannot be trusted.
   */
  patientId?: string;
}

/** Silences read one by one: those read, and the items that could not be (never dropped silently). */
export interface SilencesRead {
  silences: Silence[];
  unreadable: UnreadableSilence[];
}

/** A silence read alone (by id) whose item cannot be read. */
export class SilenceUnreadable extends Error {
  constructor(
    readonly silenceId: string,
    readonly reason: string,
    /** As UnreadableSilence's. */
    readonly patientId?: string,
  ) {
    super(`silence ${silenceId}: its stored item cannot be read (${reason})`);
    this.name = 'SilenceUnreadable';
  }
}

/**
 * A stored silence (its JSON text, or the object a store keeps) read back, or what is wrong with it; `patientId`:
 * the patient the store keeps apart from the JSON, if any (named with an unreadable one).
 */
export function readSilence(silenceId: string, stored: unknown, patientId?: string): Silence | UnreadableSilence {
  const unreadable = (reason: string): UnreadableSilence => ({
    unreadable: true,
    silenceId,
    reason,
    ...(patientId !== undefined ? { patientId } : {}),
  });
  let v = stored as Record<string, unknown> | null;
  if (typeof stored === 'string') {
    try {
      v = JSON.parse(stored) as Record<string, unknown> | null;
    } catch {
      return unreadable('not JSON');
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return unreadable('not a JSON object');
  const scope = v.scope as Record<string, unknown> | null;
  if (typeof scope !== 'object' || scope === null) return unreadable('scope is missing');
  if (typeof scope.patientId !== 'string' && typeof scope.team !== 'string')
    return unreadable('scope names neither a patient nor a team');
  for (const [field, ok] of [
    ['silenceId', isText],
    ['from', isTime],
    ['until', isTime],
    ['createdBy', isText],
    ['reason', isText],
  ] as const) {
    if (v[field] === undefined) return unreadable(`${field} is missing`);
    if (!ok(v[field])) return unreadable(`${field} is not what a silence holds there`);
  }
  if (v.endedAt !== undefined && !isTime(v.endedAt)) return unreadable('endedAt is not what a silence holds there');
  if (v.silenceId !== silenceId) return unreadable('it holds another silence id');
  return v as unknown as Silence;
}

/** Silences read one by one: the unreadable ones apart, each named. */
export function readSilences(read: (Silence | UnreadableSilence)[]): SilencesRead {
  const silences: Silence[] = [];
  const unreadable: UnreadableSilence[] = [];
  for (const s of read)
    if ('unreadable' in s) unreadable.push(s);
    else silences.push(s);
  return { silences, unreadable };
}

/** A silence read alone: its item unreadable is SilenceUnreadable (thrown), by its id. */
export function readOneSilence(silenceId: string, stored: unknown, patientId?: string): Silence {
  const s = readSilence(silenceId, stored, patientId);
  if ('unreadable' in s) throw new SilenceUnreadable(s.silenceId, s.reason, s.patientId);
  return s;
}

/** A delivery the caller must make: page `page` to the given level's role of its team. */
interface Delivery {
  page: Page;
  role: string;
  /** Why: the first page, the next level after a timeout, or a held page released when its silence ended. */
  reason: 'triggered' | 'escalated' | 'released';
}

/** Why a page's current level is sent: released by the end of a silence, its first send, or a later step. */
export const sendReason = (p: Pick<Page, 'level' | 'round' | 'releasedAt'>): Delivery['reason'] =>
  p.releasedAt !== undefined ? 'released' : p.level === 0 && p.round === 0 ? 'triggered' : 'escalated';

/**
 * What a page a silence held and then released says of it, in the site's time (`timeZone`): the e-mail sent at the
 * release and the acknowledge page opened from its link (2026-12-07: the page said nothing of it), on both backends.
 * Undefined for a page not released, or held again since. A page held before 2026-12-07 has no `heldAt`: only when
 * it was sent.
 */
export function heldText(p: Pick<Page, 'heldBy' | 'heldAt' | 'releasedAt'>, timeZone: string): string | undefined {
  if (p.heldBy !== undefined || p.releasedAt === undefined) return undefined;
  const from = p.heldAt !== undefined ? ` from ${formatSiteTime(p.heldAt, timeZone)}` : '';
  return `Held by a silence${from}, sent ${formatSiteTime(p.releasedAt, timeZone)} when it ended: the change it is about may be older than this page.`;
}

export interface Transition {
  /** Pages created or changed, in the order to store them. */
  pages: Page[];
  deliveries: Delivery[];
}

export const pageId = (notificationId: string, team: PageTeam) => `${notificationId}|${team}`;

function timeoutMs(grade: number, config: PagingConfig): number {
  return (grade >= config.severeFromGrade ? config.timeoutMinutes.severe : config.timeoutMinutes.other) * MINUTE;
}

const isOpen = (p: Page) => p.status === 'open';

/**
 * Whether a page's first send is still to be made: never sent (its transport was down, or a crash cut it short),
 * not held by a silence, at the first level of its first round, and open or informational.
 */
export const firstSendPending = (p: Page) =>
  !p.delivered &&
  p.heldBy === undefined &&
  p.level === 0 &&
  p.round === 0 &&
  (p.status === 'open' || p.status === 'info');

/**
 * Whether a send of the page was made: marked delivered (after its send is stored), but for an informational page a
 * silence held when it was opened (marked delivered, kept, never sent: newPage).
 */
export const wasSent = (p: Pick<Page, 'delivered' | 'status' | 'heldBy'>) =>
  p.delivered && !(p.status === 'info' && p.heldBy !== undefined);

/** When a silence stops holding pages: its end, or when someone ended it, if earlier. */
const heldUntil = (s: Pick<Silence, 'until' | 'endedAt'>): number => Math.min(s.until, s.endedAt ?? s.until);

/**
 * A silence still holds at `t` (its start aside): `until` after `t`, and not ended by hand by then. A silence ended
 * since still held at an earlier `t` (a late tick decides a past step by what was in force then). The stores list
 * silences by this rule (PageStore.silences).
 */
export const holdsUntilAfter = (s: Pick<Silence, 'until' | 'endedAt'>, t: number): boolean => t < heldUntil(s);

/**
 * The silence that holds this page now, if any; pages at or above unsilenceableFromGrade are never held. When
 * several do, the one that holds it longest (the latest end), then a patient's before a team's, the earlier
 * started, the smaller id: the same on every backend, whatever order its store lists silences in.
 */
function silenceFor(
  page: Pick<Page, 'patientId' | 'team' | 'grade'>,
  silences: Silence[],
  now: number,
  config: PagingConfig,
) {
  if (page.grade >= config.unsilenceableFromGrade) return undefined;
  const holding = silences.filter(
    (s) =>
      s.from <= now &&
      holdsUntilAfter(s, now) &&
      ('patientId' in s.scope ? s.scope.patientId === page.patientId : s.scope.team === page.team),
  );
  const team = (s: Silence) => ('team' in s.scope ? 1 : 0);
  return holding.sort(
    (a, b) => b.until - a.until || team(a) - team(b) || a.from - b.from || byId(a.silenceId, b.silenceId),
  )[0];
}

function close(p: Page, status: PageStatus, now: number): Page {
  return { ...p, status, dueAt: null, closedAt: now, heldBy: undefined };
}

/**
 * Closes an open page that a newer page replaces (`superseded` by a higher grade, `resolved` by a lower one or an
 * all-clear). A page whose first send never went out (its transport was down) is still owed that send: a grade
 * change paged to nobody is lost (crs-rules section 5, conservation). It becomes informational instead: sent once,
 * in its turn before the page that replaced it, with nothing to acknowledge. A page a silence held is not owed.
 */
function replace(
  p: Page,
  status: 'superseded' | 'resolved',
  now: number,
  by?: { page: string } | { teams: string[] },
): Page {
  const neverSent = !p.delivered && p.heldBy === undefined && p.level === 0 && p.round === 0;
  const closed = close(p, neverSent ? 'info' : status, now);
  if (by === undefined) return closed;
  return 'page' in by ? { ...closed, supersededBy: by.page } : { ...closed, supersededTeams: by.teams };
}

/** What the pager needs of a grade-change notification (a Notification, or its NDJSON event). */
export type PageableNotification = Pick<
  Notification,
  'notificationId' | 'patientId' | 'condition' | 'kind' | 'toGrade' | 'teams' | 'summary'
> &
  // Every notification has fromGrade (the record, its NDJSON event); a caller that gives none opens pages without it.
  Partial<Pick<Notification, 'actions' | 'fromGrade'>> & {
    /**
     * Paged again by a deployment restored from a backup at this moment (AWS: `crs outbox retry` of a record parked
     * or given up on, whose id the lost deployment may have paged): its pages carry it, as an alert's do.
     */
    restoredAt?: number;
  };

/**
 * Where a change's id stands in the order of its subject's changes: the patient's sequence number it ends with
 * (changeSeq), and below every such number (-Infinity) an id that carries none. Those are of two kinds, and neither
 * is newer than a numbered change of its subject: a grade change or SpO2 alert stored by a version before changeId
 * (`crs|P-1|m3`), which predates every numbered change (those versions number none); and a stale-feed alert
 * (`stale-feed|P-1|<since>`, shared/app/stale-feed.ts, and its `|cleared`), whose subject `stale-feed` has no numbered
 * change at all (changeId numbers only conditions and `spo2`: page.ts, reducer.ts), so it never meets one. Two ids
 * without a number rank alike: newerChange takes their creation, the pager their arrival. One rank for every order
 * (newerChange, standing, the pager's sends within one millisecond): until 2026-12-06 an id without a number was
 * compared by creation with numbered ones, and a subject mixing them could cycle (#5 at 20, #6 at 5, none at 10),
 * leaving the board no current group and letting a grade change of an old version, paged late, replace newer pages.
 */
export const changeRank = (id: string): number => changeSeq(id) ?? Number.NEGATIVE_INFINITY;

/**
 * How a change of a patient's subject (a condition, or an alert's subject) stands to the pages already opened for it,
 * by changeRank (the sequence number its id ends with). Records reach the pager in the order of the changes,
 * except one paged late (the notifier's stream gave up on it and `crs outbox retry` pages it afterwards): such a change
 * is older than pages opened meanwhile. It replaces only the open pages of older changes (and of ids without a
 * sequence number), never a newer one's, and when a newer change of the subject was paged (whatever became of its
 * pages since), it is outdated: its pages are still sent once, as information, with no ladder of their own. A change
 * without a sequence number is older than any with one (changeRank): it replaces only pages of ids without one, the
 * last to arrive of those being the newest. A late SpO2 all-clear so closes the warning of its own episode, still
 * open beside the newer one (a grade change finds no older page open: the newer change replaced them).
 */
function standing(id: string, patientId: string, subject: Page['subject'], pages: Page[]) {
  const rank = changeRank(id);
  const mine = pages.filter((p) => p.patientId === patientId && p.subject === subject);
  const newer = (p: Page) => changeRank(p.notificationId) > rank;
  return { older: mine.filter((p) => isOpen(p) && !newer(p)), outdated: mine.some(newer) };
}

/** A change of a patient's subject as its pages tell it: the change's id, and when its pages were created. */
type ChangeOf = Pick<Page, 'notificationId' | 'triggeredAt'>;

/**
 * Whether `a` is a newer change of a patient's subject than `b` (another change: never its own pages): the one rule of
 * the board's current group, the exhausted ladders still standing (the delivery watch, the board's banner) and the
 * board's list (in SQL: adapters/sqlite/pages.ts PASSED calls this). By changeRank, the pager's order (standing): the
 * sequence numbers the ids end with, an id without one older than any with one; two ids without one (a stale-feed
 * alert's, a grade change stored by a version before changeId) by when their pages were created, which is the order
 * they reached the pager. A strict weak order: irreflexive, asymmetric, transitive, and two changes are tied (neither
 * newer) only when both lack a number and were created in the same millisecond (the board then takes the one stored
 * last; two numbered ids of one subject never share a number). Until 2026-12-06 an id without a number was compared by creation with numbered ones too, which could cycle
 * (changeRank); before that it was always by creation: an older change paged late (`crs outbox retry`) passed the
 * newer change's exhausted ladders, which left the alert.
 */
export function newerChange(a: ChangeOf, b: ChangeOf): boolean {
  if (a.notificationId === b.notificationId) return false;
  const rankA = changeRank(a.notificationId);
  const rankB = changeRank(b.notificationId);
  return rankA !== rankB ? rankA > rankB : rankA === Number.NEGATIVE_INFINITY && a.triggeredAt > b.triggeredAt;
}

/** The pages of a change that newer ones have passed: owed once, as information (replace), never a ladder. */
function passed(created: { page: Page; delivery?: Delivery }[], status: 'superseded' | 'resolved', now: number) {
  return created.map(({ page, delivery }) => {
    if (!isOpen(page)) return { page, ...(delivery ? { delivery } : {}) };
    const closed = replace(page, status, now);
    return {
      page: closed,
      ...(delivery && closed.status === 'info' ? { delivery: { ...delivery, page: closed } } : {}),
    };
  });
}

/**
 * Opens one page per team for a grade-change notification, and closes the pages it replaces. `pages`: the patient's
 * pages (any status), of which the open ones of older changes of the condition are replaced.
 */
export function pagesForNotification(
  n: PageableNotification,
  pages: Page[],
  silences: Silence[],
  now: number,
  config: PagingConfig,
): Transition {
  // A newer grade for the same condition replaces every open page about it: a higher grade re-pages at once
  // (even if the last page was acknowledged), a lower one cancels the pending escalations (a page never sent is
  // still sent once: replace).
  const { older, outdated } = standing(n.notificationId, n.patientId, n.condition, pages);
  const status = n.kind === 'escalation' ? 'superseded' : 'resolved';
  // A superseded page names its team's page of the newer grade (its link's answer says which page to answer), or
  // the teams that grade paged when none is its own (its link says where the grade went).
  const by = (p: Page) => {
    if (status !== 'superseded') return undefined;
    if ((n.teams as readonly PageTeam[]).includes(p.team)) return { page: pageId(n.notificationId, p.team) };
    return n.teams.length > 0 ? { teams: [...n.teams] } : undefined;
  };
  const replaced = older.map((p) => replace(p, status, now, by(p)));
  const opened = n.teams.map((team) =>
    newPage(
      {
        notificationId: n.notificationId,
        patientId: n.patientId,
        team,
        subject: n.condition,
        kind: n.kind,
        grade: n.toGrade,
        ...(n.fromGrade !== undefined ? { fromGrade: n.fromGrade } : {}),
        summary: n.summary,
        ...(n.actions ? { actions: n.actions } : {}),
        ...(n.restoredAt === undefined ? {} : { restoredAt: n.restoredAt }),
      },
      now,
      silences,
      config,
    ),
  );
  const created = outdated ? passed(opened, 'superseded', now) : opened;
  return { pages: [...replaced, ...created.map((c) => c.page)], deliveries: created.flatMap((c) => c.delivery ?? []) };
}

/** An alert that is not a grade change (a feed gone quiet, a low SpO2), raised or cleared. */
export interface AlertInput {
  alertId: string;
  patientId: string;
  subject: 'stale-feed' | 'spo2';
  cleared: boolean;
  summary: string;
  /** An all-clear that answers only this alert's pages (a ward's); without it, every open one of the subject's. */
  resolves?: string;
  /**
   * Raised by a deployment restored from a backup at this moment (AWS, epoch ms), for an id the lost deployment may
   * have paged: its pages carry it (Page.restoredAt), and so does every send of them.
   */
  restoredAt?: number;
}

/** The teams an alert of this subject pages (`alertTeams`). */
export function alertTeamsFor(subject: AlertInput['subject'], config: PagingConfig): readonly PageTeam[] {
  return subject === 'stale-feed' ? config.alertTeams.staleFeed : config.alertTeams.spo2;
}

/**
 * Opens alert pages (stale feed, low SpO2) or their all-clear, closing the open ones it answers. `pages`: the patient's
 * pages (any status), as for pagesForNotification. `reachable`: whether the backend can deliver to a team now (AWS:
 * none of a team the deployed paging config gives no endpoint, Pager's `unreachable`); every team by default.
 */
export function pagesForAlert(
  alert: AlertInput,
  pages: Page[],
  silences: Silence[],
  now: number,
  config: PagingConfig,
  reachable: (team: PageTeam) => boolean = () => true,
): Transition {
  const { older, outdated } = standing(alert.alertId, alert.patientId, alert.subject, pages);
  const resolved = alert.cleared
    ? older
        .filter((p) => alert.resolves === undefined || p.notificationId === alert.resolves)
        .map((p) => replace(p, 'resolved', now))
    : [];
  // An all-clear goes to the teams the alert went to as well: a deployment may have changed `alertTeams` since, and
  // the team that was told of the alert is the one to hear it is over.
  const configured = alertTeamsFor(alert.subject, config);
  // A team the config no longer has a ladder for (a version that knew it was rolled back) has nobody to page: its
  // page is resolved, and no all-clear goes to it (until 2026-12-05 the all-clear threw, and every alert after it in
  // the sweep waited). Nor to a team the backend cannot reach now, no longer among alertTeams (AWS: its endpoints
  // removed with it): until 2026-12-08 its all-clear was kept unsent and named by every tick (EscalateErrors, every
  // minute) until the team had an endpoint again, and was sent then, however late.
  const closedTeams = resolved.map((p) => p.team).filter((t) => hasPolicy(t, config) && reachable(t));
  const teams = [...new Set([...configured, ...closedTeams])];
  const kind = alert.cleared ? 'alert-cleared' : 'alert';
  const opened = teams.map((team) =>
    newPage(
      {
        notificationId: alert.alertId,
        patientId: alert.patientId,
        team,
        subject: alert.subject,
        kind,
        grade: 0,
        summary: alert.summary,
        ...(alert.restoredAt === undefined ? {} : { restoredAt: alert.restoredAt }),
      },
      now,
      silences,
      config,
    ),
  );
  const created = outdated ? passed(opened, 'resolved', now) : opened;
  return { pages: [...resolved, ...created.map((c) => c.page)], deliveries: created.flatMap((c) => c.delivery ?? []) };
}

type PageSeed = Pick<
  Page,
  | 'notificationId'
  | 'patientId'
  | 'team'
  | 'subject'
  | 'kind'
  | 'grade'
  | 'fromGrade'
  | 'summary'
  | 'actions'
  | 'restoredAt'
>;

function newPage(
  seed: PageSeed,
  now: number,
  silences: Silence[],
  config: PagingConfig,
): { page: Page; delivery?: Delivery } {
  const answerable = seed.kind === 'escalation' || seed.kind === 'alert';
  const page: Page = {
    ...seed,
    pageId: pageId(seed.notificationId, seed.team),
    status: answerable ? 'open' : 'info',
    delivered: false,
    rev: 0,
    level: 0,
    round: 0,
    triggeredAt: now,
    dueAt: answerable ? now + timeoutMs(seed.grade, config) : null,
  };
  const silence = silenceFor(page, silences, now, config);
  // Held: an open page waits for the silence to end; an informational one is kept and never sent.
  if (silence)
    return { page: { ...page, heldBy: silence.silenceId, heldAt: now, dueAt: null, delivered: !answerable } };
  // A team the config has no ladder for (a record routed by a version that knew it, delivered after a rollback): its
  // page is kept, unsent, and the pager sets it aside (named by the tick) until the config has the team again.
  // Until 2026-12-05 this threw: nobody was paged for the grade change, its other teams neither.
  if (!hasPolicy(seed.team, config)) return { page };
  return { page, delivery: { page, role: config.policies[seed.team].levels[0]!, reason: 'triggered' } };
}

/**
 * Moves every open page whose time has come: to the next level, round the ladder again, or exhausted; and
 * releases held pages whose silence has ended. Call it whenever time passes.
 */
/** The ladder's next step after a page's current level (round the ladder again), or null when it gives up. */
export function ladderStep(
  p: Pick<Page, 'team' | 'level' | 'round'>,
  config: PagingConfig,
): { level: number; round: number; role: string } | null {
  const policy = config.policies[p.team];
  let level = levelOf(p, config) + 1;
  let round = p.round;
  if (level >= policy.levels.length) {
    level = 0;
    round++;
  }
  return round >= policy.loops ? null : { level, round, role: policy.levels[level]! };
}

export function tick(pages: Page[], silences: Silence[], now: number, config: PagingConfig): Transition {
  const changed: Page[] = [];
  const deliveries: Delivery[] = [];
  for (const p of pages) {
    if (!isOpen(p)) continue;
    if (p.heldBy !== undefined) {
      const own = silences.find((s) => s.silenceId === p.heldBy);
      if (own && silenceFor(p, [own], now, config)) continue;
      // Its silence ended, but another in force holds it too: held by that one, released when it ends.
      const other = silenceFor(p, silences, now, config);
      if (other) {
        changed.push({ ...p, heldBy: other.silenceId });
        continue;
      }
      const released: Page = {
        ...p,
        heldBy: undefined,
        releasedAt: now,
        delivered: false,
        dueAt: now + timeoutMs(p.grade, config),
      };
      changed.push(released);
      deliveries.push({ page: released, role: roleOf(released, config), reason: sendReason(released) });
      continue;
    }
    if (p.dueAt === null || p.dueAt > now) continue;
    const silence = silenceFor(p, silences, now, config);
    if (silence) {
      // A silence that began after the page: hold the next step until it ends.
      // A release of an earlier hold is no longer what its next send is about.
      changed.push({ ...p, heldBy: silence.silenceId, heldAt: now, releasedAt: undefined, dueAt: null });
      continue;
    }
    const step = ladderStep(p, config);
    if (!step) {
      changed.push(close(p, 'exhausted', now));
      continue;
    }
    const next: Page = {
      ...p,
      level: step.level,
      round: step.round,
      heldAt: undefined,
      releasedAt: undefined,
      delivered: false,
      dueAt: p.dueAt + timeoutMs(p.grade, config),
    };
    changed.push(next);
    deliveries.push({ page: next, role: step.role, reason: sendReason(next) });
  }
  return { pages: changed, deliveries };
}

/** Why an acknowledgement was refused: a link that is malformed, forged or expired, a page unknown or no longer open. */
export type AckRefusal = 'link-malformed' | 'link-forged' | 'link-expired' | 'no-such-page' | 'not-open';

export type AckResult = { ok: true; page: Page; changed: boolean } | { ok: false; code: AckRefusal; reason: string };

/**
 * Records who acknowledged a page; the ladder stops. Acknowledging twice keeps the first acknowledgement; an
 * exhausted page may still be acknowledged; a superseded, resolved or informational one may not.
 */
/** Whether a page still waits for someone to own it: open, or exhausted (answered late, someone owns it then). */
export const awaitsAcknowledgement = (page: Pick<Page, 'status'>) =>
  page.status === 'open' || page.status === 'exhausted';

export function acknowledge(page: Page, ack: Acknowledgement): AckResult {
  if (page.status === 'acknowledged') return { ok: true, page, changed: false };
  if (!awaitsAcknowledgement(page)) {
    return { ok: false, code: 'not-open', reason: `page is ${page.status}, there is nothing to acknowledge` };
  }
  return {
    ok: true,
    changed: true,
    page: { ...page, status: 'acknowledged', ack, dueAt: null, heldBy: undefined, closedAt: ack.at },
  };
}

/**
 * The level of its team's ladder a page is at: its own, or the ladder's last when the page is past the end of it (a
 * deployment shortened the ladder while the page was open: held by a silence, unsent while the transport was down, or
 * waiting for an answer at that level). Such a page is paged to the last level, and its ladder goes on from there.
 */
/**
 * Whether the paging config has a ladder for this team. A page stored by a version that knew another team (then rolled
 * back), or edited by hand, has none: the pager sets it aside (Pager.onTick) rather than fail every patient's tick.
 */
export const hasPolicy = (team: string, config: Pick<PagingConfig, 'policies'>) => Object.hasOwn(config.policies, team);

export const levelOf = (p: Pick<Page, 'team' | 'level'>, config: PagingConfig) =>
  Math.min(p.level, config.policies[p.team].levels.length - 1);

/** The role a page's current level goes to (the ladder's last, for a page past its end: levelOf). */
export const roleOf = (p: Pick<Page, 'team' | 'level'>, config: PagingConfig) =>
  config.policies[p.team].levels[levelOf(p, config)]!;

/**
 * The next time `tick` has something to do (null: nothing pending): a ladder step falling due, or the end of the
 * silence holding a page. A held page whose silence is not among `silences`, or whose grade a silence may no longer
 * hold (a deployment lowered `unsilenceableFromGrade`), is released by the next tick: `now`.
 */
export function nextDue(
  pages: Page[],
  silences: Silence[],
  now: number,
  config: Pick<PagingConfig, 'unsilenceableFromGrade'>,
): number | null {
  let next: number | null = null;
  const earlier = (t: number) => (next = next === null || t < next ? t : next);
  for (const p of pages) {
    if (!isOpen(p)) continue;
    if (p.heldBy !== undefined) {
      const s = silences.find((x) => x.silenceId === p.heldBy);
      earlier(s && p.grade < config.unsilenceableFromGrade ? heldUntil(s) : now);
    } else if (p.dueAt !== null) earlier(p.dueAt);
  }
  return next;
}

/**
 * Monitor data this long after the end of monitoring restarts the watch: a monitor still sending an hour after the
 * discharge was charted is on a patient (still there, or back). Sooner, it is a monitor not yet unplugged. Fixed,
 * not a setting: the AWS stale-feed index is written from it where the deployment's paging settings are not read.
 */
export const MONITOR_RESTARTS_AFTER_MINUTES = 60;

/**
 * When the watch restarted after the end of monitoring at `end` (a re-admission), or undefined: the first enrolment
 * at or after the end (readmittedAt: a move after it restarts nothing, 2026-12-07), or monitor data long enough after
 * it, whichever is later. An enrolment at the
 * instant of the end counts (a discharge cancelled in the minute it was charted, HL7 times being to the minute; a
 * transfer's next stay starting as the last one ends): when the two cannot be told apart, the patient stays watched.
 */
function restartedAt(state: PatientState, end: number): number | undefined {
  const from = (t: number | undefined, start: number) => (t !== undefined && t >= start ? t : undefined);
  // The re-admission's own time, not a move's after it (a state stored before it was kept: the latest enrolment).
  const enrolled =
    from(state.lastEnrolmentAt, end) === undefined
      ? undefined
      : (from(state.readmittedAt, end) ?? state.lastEnrolmentAt);
  const monitored = from(state.lastMonitorAt, end + MONITOR_RESTARTS_AFTER_MINUTES * MINUTE);
  if (enrolled === undefined || monitored === undefined) return enrolled ?? monitored;
  return Math.max(enrolled, monitored);
}

/**
 * The end of the patient's monitoring in force (`monitoringEnd`, a discharge), or undefined. It stays in force
 * until a re-admission: an enrolment observed at or after it from a source other than a monitor (the EHR's new stay, a
 * nurse charting the bed), or monitor data observed MONITOR_RESTARTS_AFTER_MINUTES or more after it. Monitor data
 * sooner, and the bed and ward a monitor sends with its readings, do not restart the watch, so that a monitor
 * unplugged after the discharge was charted raises no alert. Order-independent: only the latest times count.
 */
export function monitoringEnded(state: PatientState): PatientState['monitoringEnd'] {
  const end = state.monitoringEnd;
  return end && restartedAt(state, end.t) === undefined ? end : undefined;
}

/**
 * Whether an enrolled patient's monitor feed has gone quiet: nothing from a monitor for staleFeedMinutes of
 * server time (`now`), counted from the enrolment when no monitor has sent yet (from the re-admission after an end
 * of monitoring, when no monitor has sent since). Undefined for a patient who is not enrolled, or whose monitoring
 * has ended.
 */
export function feedStatus(
  state: PatientState,
  now: number,
  config: PagingConfig,
): { stale: boolean; since: number } | undefined {
  const since0 = enrolledAt(state);
  if (!Number.isFinite(since0)) return undefined;
  const end = state.monitoringEnd;
  const restarted = end ? restartedAt(state, end.t) : undefined;
  if (end && restarted === undefined) return undefined;
  const since = Math.max(state.lastMonitorAt ?? since0, restarted ?? Number.NEGATIVE_INFINITY);
  return { stale: now - since >= config.staleFeedMinutes * MINUTE, since };
}
