// The board's JSON views: built from the stored state with the domain's own functions (gradeCrs, gradeIcans,
// dayPostInfusion, the paging policies), so the board shows exactly what the engine decided; nothing is
// re-derived in the browser. Pages are grouped by the grade change (or technical alert) they are about, one entry
// per team: who was paged (role, level, when), who acknowledged (who, when, how), what is pending (the next level
// and when), and what a silence holds.
import type { BoardQueries, PatientRecord } from '#adapters/sqlite/board.ts';
import { DEFAULT_RETENTION_DAYS } from '#adapters/sqlite/retention.ts';
import type { TimelinePoint } from '#adapters/sqlite/store.ts';
import type { GradingConfig } from '#domain/config.ts';
import {
  OXYGEN_DEVICE_NAMES,
  episodeInfusion,
  gradeCrs,
  gradeIcans,
  hypotensionThresholds,
  reasonText,
} from '#domain/grading.ts';
import { UNBROKEN } from '#domain/unbroken.ts';
import { dayPostInfusion, fromGradeOf } from '#domain/page.ts';
import {
  PAGE_TEAMS,
  awaitsAcknowledgement,
  hasPolicy,
  roleOf,
  type Page,
  type PageStatus,
  type PagingConfig,
  type Silence,
  ladderStep,
  monitoringEnded,
  newerChange,
  SilenceUnreadable,
  wasSent,
  type UnreadableSilence,
} from '#domain/paging.ts';
import type { PatientState, VitalFields } from '#domain/state.ts';
import { HOUR, iso } from '#domain/time.ts';

interface Measured<T> {
  value: T;
  at: string;
}

interface SendView {
  role: string;
  level: number;
  round: number;
  reason: string;
  at: string;
}

export interface SilenceView {
  silenceId: string;
  scope: { patientId: string } | { team: string };
  from: string;
  until: string;
  createdBy: string;
  reason: string;
}

/** One team's page about one grade change or alert. */
export interface TeamPageView {
  pageId: string;
  team: string;
  status: PageStatus;
  /** What the board says: waiting for an acknowledgement, held by a silence, or the status. */
  state: 'waiting' | 'held' | PageStatus;
  /** The role the current level goes to. */
  role: string;
  level: number;
  levels: number;
  round: number;
  loops: number;
  /** Every send of this page, oldest first. */
  sent: SendView[];
  /** Sends of this page whose stored row cannot be read, by send id with why (mend or delete the row). */
  unreadableSends: { sendId: string; reason: string }[];
  /** Who is paged next, and when, if nobody acknowledges; or when the ladder gives up (`exhaustsAt`). */
  next: { role: string; at: string } | null;
  exhaustsAt: string | null;
  heldBy: SilenceView | null;
  ack: { by: string; at: string; via: string } | null;
  closedAt: string | null;
}

interface PageGroupView {
  notificationId: string;
  subject: Page['subject'];
  kind: Page['kind'];
  /** A technical alert (no data, low SpO2): not a grade. */
  technical: boolean;
  grade: number;
  fromGrade: number | null;
  summary: string;
  /** As people read them: times in the site's zone. */
  reasons: string[];
  actions: string[];
  /** The patient clock of the grade change; for an alert, the time it was raised. */
  at: string;
  triggeredAt: string;
  /** The latest of its subject for this patient (a newer grade or all-clear makes it history). */
  current: boolean;
  /** Needs attention (needsAttention): shown on the patient's card. */
  attention: boolean;
  /** Why the grade change's stored row cannot be read (its reasons and next steps are not shown), or null. */
  unreadable: string | null;
  /**
   * The grade change's record and its sends, or a technical alert's sends, are past the retention (crs serve
   * --retention-days; the audit trail has them): no reasons, next steps nor sends are shown, the pages' teams,
   * statuses and acknowledgements are. Until 2026-12-07 the board read such a group, sent and acknowledged, as not
   * paged yet (a technical alert's until later that day). Null when the records are there.
   */
  pastRetention: { days: number } | null;
  pages: TeamPageView[];
}

interface PatientView {
  patientId: string;
  bed: string | null;
  ward: string | null;
  therapy: string | null;
  product: string | null;
  infusedAt: string | null;
  dayPostInfusion: number | null;
  /** The patient clock: the grades are as of this time. */
  clock: string;
  updatedAt: string;
  scheme: string;
  crs: { grade: number; reasons: string[] };
  icans: { grade: number; reasons: string[] };
  vitals: Partial<Record<keyof VitalFields, Measured<number>>>;
  lastVitalsAt: string | null;
  oxygen: (Measured<string> & { flowLpm: number | null; fio2: number | null; forComfort: boolean }) | null;
  vasopressors: Measured<{ drug: string; dose: number; unit: string }[]> | null;
  neuro: (Measured<string> & { iceScore: number | null }) | null;
  /** What the board marks as fever or low blood pressure (the patient's own hypotension limits when set). */
  limits: { feverC: number; systolicBelow: number; mapBelow: number };
  /** What needs attention: current grade changes with a page waiting, held or unanswered, and alerts in force. */
  paging: PageGroupView[];
  /** Pages waiting for an acknowledgement. */
  waiting: number;
  /** Silences of this patient in force. */
  silences: SilenceView[];
  /** The patient's pages whose stored row cannot be read, by id with why: the pager sets them aside; mend them. */
  unreadablePages: UnreadableView[];
  /** The end of monitoring in force (a discharge): no stale-feed watch; listed after the patients monitored. */
  monitoringEnded: { reason: string; at: string } | null;
}

/** A page (or silence) whose stored row cannot be read: its id, and why (never its values). */
interface UnreadableView {
  pageId: string;
  reason: string;
}

export function silenceView(s: Silence): SilenceView {
  return {
    silenceId: s.silenceId,
    scope: s.scope,
    from: iso(s.from),
    until: iso(s.until),
    createdBy: s.createdBy,
    reason: s.reason,
  };
}

const TECHNICAL = new Set<Page['subject']>(['stale-feed', 'spo2']);

/** Whom the ladder pages next after `p`'s current level, or that it gives up. */
function nextStep(p: Page, paging: PagingConfig): Pick<TeamPageView, 'next' | 'exhaustsAt'> {
  if (p.status !== 'open' || p.heldBy !== undefined || p.dueAt === null) return { next: null, exhaustsAt: null };
  const step = ladderStep(p, paging);
  return step
    ? { next: { role: step.role, at: iso(p.dueAt) }, exhaustsAt: null }
    : { next: null, exhaustsAt: iso(p.dueAt) };
}

function teamPageView(
  p: Page,
  queries: BoardQueries,
  paging: PagingConfig,
  silences: Map<string, Silence>,
): TeamPageView {
  // A team the config has no ladder for (a version that knew it was rolled back): the pager sets its page aside; it
  // is shown as it stands. Until 2026-12-05 it failed the board's list (500) for every patient.
  const policy = hasPolicy(p.team, paging) ? paging.policies[p.team] : undefined;
  const held = p.heldBy !== undefined ? silences.get(p.heldBy) : undefined;
  const sends = queries.sends(p.pageId);
  return {
    pageId: p.pageId,
    team: p.team,
    status: p.status,
    state: p.status === 'open' ? (p.heldBy !== undefined ? 'held' : 'waiting') : p.status,
    role: policy ? roleOf(p, paging) : `${p.team} (no ladder in the paging config)`,
    level: p.level,
    levels: policy?.levels.length ?? p.level + 1,
    round: p.round,
    loops: policy?.loops ?? p.round + 1,
    sent: sends.sends.map((e) => ({ role: e.role, level: e.level, round: e.round, reason: e.reason, at: e.sentAt })),
    unreadableSends: sends.unreadable,
    ...(policy ? nextStep(p, paging) : { next: null, exhaustsAt: null }),
    heldBy: held ? silenceView(held) : null,
    ack: p.ack ? { by: p.ack.by, at: iso(p.ack.at), via: p.ack.via } : null,
    closedAt: p.closedAt !== undefined ? iso(p.closedAt) : null,
  };
}

const TEAM_ORDER = new Map<string, number>(PAGE_TEAMS.map((t, i) => [t, i]));

/**
 * Groups a patient's pages (newest first) by the grade change or alert they are about, newest first. A group is
 * current when no newer change of its subject has pages (newerChange, the pager's order: until 2026-12-06 the group
 * paged last, and an older change paged late took the place of the newer one), the first of those in this order
 * should two tie. `keep` chooses the groups to build (each team's history is read only for those).
 */
function pageGroups(
  pages: Page[],
  queries: BoardQueries,
  paging: PagingConfig,
  silences: Map<string, Silence>,
  timeZone: string,
  retentionDays: number,
  keep: (g: GroupHead) => boolean = () => true,
): PageGroupView[] {
  const groups = new Map<string, Page[]>();
  for (const p of pages) {
    const list = groups.get(p.notificationId) ?? [];
    list.push(p);
    groups.set(p.notificationId, list);
  }
  const heads = [...groups.values()].map((list) => list[0]!);
  const currentOf = new Set<string>();
  const out: PageGroupView[] = [];
  for (const [notificationId, list] of groups) {
    const first = list[0]!;
    const current =
      !currentOf.has(first.subject) && !heads.some((h) => h.subject === first.subject && newerChange(h, first));
    if (current) currentOf.add(first.subject);
    const head: GroupHead = {
      current,
      kind: first.kind,
      // Waiting, held or unanswered: what the board must show until someone owns it.
      unresolved: list.some(awaitsAcknowledgement),
    };
    if (!keep(head)) continue;
    // A grade change whose row cannot be read: its pages are shown, with why its reasons are not.
    const read = TECHNICAL.has(first.subject) ? undefined : queries.notification(notificationId);
    const n = read && !('unreadable' in read) ? read : undefined;
    const teams = list
      .sort((a, b) => (TEAM_ORDER.get(a.team) ?? 9) - (TEAM_ORDER.get(b.team) ?? 9))
      .map((p) => ({ page: p, view: teamPageView(p, queries, paging, silences) }));
    out.push({
      notificationId,
      subject: first.subject,
      kind: first.kind,
      technical: TECHNICAL.has(first.subject),
      grade: first.grade,
      // Its pages carry it too, kept once the retention drops the record; a page stored before 2026-12-07 has only its
      // summary's words (an alert's say none).
      fromGrade: n?.fromGrade ?? first.fromGrade ?? fromGradeOf(first.summary) ?? null,
      summary: first.summary,
      reasons: n ? n.reasons.map((r) => reasonText(r, timeZone)) : [],
      actions: n?.actions ?? [],
      at: n?.at ?? iso(first.triggeredAt),
      triggeredAt: iso(Math.min(...list.map((p) => p.triggeredAt))),
      current,
      attention: needsAttention(head),
      unreadable:
        read && 'unreadable' in read ? `the grade change's stored record cannot be read (${read.unreadable})` : null,
      pastRetention: sweptBy(TECHNICAL.has(first.subject), read, teams) ? { days: retentionDays } : null,
      pages: teams.map((t) => t.view),
    });
  }
  return out;
}

/**
 * Whether the retention sweep dropped a group's outbox records. A grade change is recorded before any page of it
 * (the pager pages from the record): gone, the sweep dropped it. A technical alert has no record the board reads (a
 * ward's has none at all): a page of it marked sent (wasSent) whose sends are all gone (until 2026-12-07 read as
 * never sent).
 */
function sweptBy(
  technical: boolean,
  read: ReturnType<BoardQueries['notification']>,
  teams: { page: Page; view: TeamPageView }[],
): boolean {
  if (!technical) return read === undefined;
  return teams.some(({ page, view }) => wasSent(page) && view.sent.length + view.unreadableSends.length === 0);
}

/** A patient's (or ward's) page groups, and its pages whose stored row cannot be read. */
interface Groups {
  groups: PageGroupView[];
  unreadablePages: UnreadableView[];
}

export interface GroupHead {
  current: boolean;
  kind: Page['kind'];
  unresolved: boolean;
}

/** Needs attention: a current grade change with a page waiting, held or unanswered; a technical alert in force. */
const needsAttention = (g: GroupHead): boolean => g.current && (g.kind === 'alert' || g.unresolved);

const NEURO_TEXT: Record<string, string> = {
  alert: 'alert',
  awakens_spontaneously: 'awakens spontaneously',
  awakens_to_voice: 'awakens to voice',
  awakens_to_touch: 'awakens to touch',
  unarousable: 'unarousable',
};

/** When the latest neuro field was observed (each field keeps its own time); undefined before any. */
function neuroAt(n: PatientState['neuro']): number | undefined {
  let at: number | undefined;
  for (const f of Object.values(n)) if (f && (at === undefined || f.t > at)) at = f.t;
  return at;
}

function patientView(
  rec: PatientRecord,
  { groups, unreadablePages }: Groups,
  silences: Silence[],
  config: GradingConfig,
): PatientView {
  const s = rec.state;
  const crs = gradeCrs(s, config);
  const icans = gradeIcans(s);
  const vitals: PatientView['vitals'] = {};
  let last = Number.NEGATIVE_INFINITY;
  for (const [k, timed] of Object.entries(s.vitals) as [keyof VitalFields, { v: number; t: number }][]) {
    vitals[k] = { value: timed.v, at: iso(timed.t) };
    last = Math.max(last, timed.t);
  }
  const e = s.enrolment;
  const infusion = episodeInfusion(s);
  const n = s.neuro;
  const ended = monitoringEnded(s);
  return {
    patientId: rec.patientId,
    bed: e.bed?.v ?? null,
    ward: e.ward?.v ?? null,
    therapy: e.therapy?.v ?? null,
    product: e.product?.v ?? null,
    // The episode's infusion (episodeStart decides which; dayPostInfusion counts from it), as its other times: RFC 3339
    // UTC. Until 2026-12-07 the enrolment's observed last, a resent older one under latest-infusion.
    infusedAt: infusion !== undefined ? iso(infusion) : null,
    dayPostInfusion: dayPostInfusion(s, config.site.timeZone),
    clock: Number.isFinite(s.clock) ? iso(s.clock) : rec.updatedAt,
    updatedAt: rec.updatedAt,
    scheme: config.scheme,
    crs: { grade: crs.grade, reasons: crs.reasons.map((r) => reasonText(r, config.site.timeZone)) },
    icans: { grade: icans.grade, reasons: icans.reasons.map((r) => reasonText(r, config.site.timeZone)) },
    vitals,
    lastVitalsAt: Number.isFinite(last) ? iso(last) : null,
    oxygen: s.oxygen
      ? {
          value: s.oxygen.v.device,
          at: iso(s.oxygen.t),
          flowLpm: s.oxygen.v.flowLpm ?? null,
          fio2: s.oxygen.v.fio2 ?? null,
          forComfort: s.oxygen.v.forComfort ?? false,
        }
      : null,
    vasopressors: s.vasopressors
      ? { value: s.vasopressors.v.filter((v) => v.dose > 0), at: iso(s.vasopressors.t) }
      : null,
    neuro:
      neuroAt(n) === undefined
        ? null
        : {
            value: n.consciousness ? NEURO_TEXT[n.consciousness.v]! : 'not assessed',
            at: iso(neuroAt(n)!),
            iceScore: n.iceScore?.v ?? null,
          },
    limits: { feverC: config.feverThresholdC, ...hypotensionThresholds(s, config) },
    paging: groups.filter((g) => g.attention),
    waiting: groups.reduce((n, g) => n + g.pages.filter((p) => p.state === 'waiting').length, 0),
    silences: silences.filter((x) => 'patientId' in x.scope && x.scope.patientId === rec.patientId).map(silenceView),
    monitoringEnded: ended ? { reason: ended.v, at: iso(ended.t) } : null,
    unreadablePages,
  };
}

const severity = (p: PatientView) => Math.max(p.crs.grade, p.icans.grade);

/** The patients monitored first, sickest first; then those with pages waiting; then by bed. */
function sortPatients(list: PatientView[]): PatientView[] {
  return list.sort(
    (a, b) =>
      Number(a.monitoringEnded !== null) - Number(b.monitoringEnded !== null) ||
      severity(b) - severity(a) ||
      b.waiting - a.waiting ||
      (a.bed ?? a.patientId).localeCompare(b.bed ?? b.patientId, 'en', { numeric: true }),
  );
}

/** GET /api/patients?offset=&limit=: a page of the list (the board shows 50 at a time). */
export const LIST_PAGE_DEFAULT = 100;
export const LIST_PAGE_MAX = 500;

/** How many of a patient's pages the views read (newest first): months of an ordinary stay. */
const PAGES_PER_PATIENT = 200;

/**
 * crs serve --board-ended-hours, by default: how long a patient whose monitoring ended (a discharge) stays on the
 * list with nothing open. After it the list leaves them out (counted; opened by id), so that a ward's year of
 * discharged patients does not bury the current ones nor cost every refresh a card each.
 */
export const DEFAULT_ENDED_HOURS = 24;

export class BoardApi {
  constructor(
    private readonly queries: BoardQueries,
    private readonly config: GradingConfig,
    private readonly now: () => number = Date.now,
    private readonly endedHours = DEFAULT_ENDED_HOURS,
    private readonly retentionDays = DEFAULT_RETENTION_DAYS,
  ) {}

  /** What the board states about paging: the ladders, and the grade a silence never holds. */
  private pagingInfo() {
    const p = this.config.paging;
    return {
      teams: PAGE_TEAMS,
      policies: p.policies,
      timeoutMinutes: p.timeoutMinutes,
      severeFromGrade: p.severeFromGrade,
      unsilenceableFromGrade: p.unsilenceableFromGrade,
    };
  }

  /** What every board response carries besides its data: the site's zone, paging, and the domain's names. */
  private context() {
    return {
      serverTime: iso(this.now()),
      // The site's zone: the board writes every time in it.
      timeZone: this.config.site.timeZone,
      paging: this.pagingInfo(),
      // The board says an oxygen device as the reasons and pages do (the domain's names, not a copy in the page).
      oxygenDeviceNames: OXYGEN_DEVICE_NAMES,
      // What a phone keeps on one line, the acknowledge page's rule (its source: the board makes it a RegExp).
      unbroken: UNBROKEN.source,
    };
  }

  private groups(patientId: string, silences: Silence[], keep?: (g: GroupHead) => boolean): Groups {
    const byId = new Map(silences.map((s) => [s.silenceId, s]));
    const { pages, unreadable } = this.queries.pages(patientId, PAGES_PER_PATIENT);
    // A page held by a silence that has ended meanwhile (released at the next tick) still names it; one whose item
    // cannot be read (it holds nothing: the next tick releases the page) is named by none.
    for (const p of pages) {
      if (p.heldBy !== undefined && !byId.has(p.heldBy)) {
        let s: Silence | undefined;
        try {
          s = this.queries.silenceNow(p.heldBy);
        } catch (err) {
          if (!(err instanceof SilenceUnreadable)) throw err;
        }
        if (s) byId.set(s.silenceId, s);
      }
    }
    return {
      groups: pageGroups(
        pages,
        this.queries,
        this.config.paging,
        byId,
        this.config.site.timeZone,
        this.retentionDays,
        keep,
      ),
      unreadablePages: unreadable.map(({ pageId, reason }) => ({ pageId, reason })),
    };
  }

  /**
   * The list, sickest first, one page of it (`offset`, `limit`): 2,000 patients stay a small response. `total` and
   * `waiting` count them all; `wards` are the ward alerts in force (many feeds quiet at once), shown above the list.
   * Patients whose monitoring ended over `endedHours` ago with nothing open are left out (`leftOut` counts them;
   * `patient(id)` shows one): never one with a page open or unanswered, an alert in force, a grade above 0 not
   * de-escalated, or a silence in force.
   */
  patients(page: { offset: number; limit: number } = { offset: 0, limit: LIST_PAGE_DEFAULT }) {
    const now = this.now();
    // Each stored row is read on its own: one that cannot be read is named (id, why) where the others are listed.
    const { silences, unreadable: unreadableSilences } = this.queries.silencesRead(now);
    const {
      patients,
      unreadable: unreadablePatients,
      leftOut,
    } = this.queries.listed(now - this.endedHours * HOUR, now);
    // The list shows what needs attention: only those groups are built.
    const all = sortPatients(
      patients.map((r) => patientView(r, this.groups(r.patientId, silences, needsAttention), silences, this.config)),
    );
    const wards = this.queries.wardSubjects().flatMap((subject) => {
      const { groups: paging, unreadablePages } = this.groups(subject, silences, needsAttention);
      return paging.length > 0 || unreadablePages.length > 0
        ? [
            {
              subject,
              ward: subject.slice('ward '.length),
              paging,
              waiting: paging.reduce((n, g) => n + g.pages.filter((p) => p.state === 'waiting').length, 0),
              unreadablePages,
              // Its alert names every patient quiet when it was raised, and is cleared when the last has data again:
              // these are those still without data (until 2026-12-06 the board showed only the alert's list).
              quiet: this.queries.wardQuiet(subject).map((patientId) => {
                const read = this.queries.patientRead(patientId); // a row that cannot be read: no bed shown
                return {
                  patientId,
                  bed: read && 'patient' in read ? (read.patient.state.enrolment.bed?.v ?? null) : null,
                };
              }),
              // Those whose data came back while it is in force, with their bed then and when (2026-12-07): the same
              // as its all-clear will name. Ids and beds only.
              resumed: this.queries
                .wardResumed(subject)
                .map((r) => ({ patientId: r.patientId, bed: r.bed, at: iso(r.at) })),
            },
          ]
        : [];
    });
    return {
      ...this.context(),
      scheme: this.config.scheme,
      silences: silences.map(silenceView),
      unreadableSilences: unreadableSilences.map(unreadableSilenceView),
      unreadablePatients,
      total: all.length,
      leftOut: { count: leftOut, endedHours: this.endedHours },
      offset: page.offset,
      limit: page.limit,
      waiting: all.reduce((n, p) => n + p.waiting, 0) + wards.reduce((n, w) => n + w.waiting, 0),
      wards,
      patients: all.slice(page.offset, page.offset + page.limit),
    };
  }

  /** One patient: the card, every page (newest first) and the timeline of the last `hours` of patient time. */
  patient(patientId: string, hours = 72) {
    const read = this.queries.patientRead(patientId);
    if (!read) return undefined;
    const { silences, unreadable: unreadableSilences } = this.queries.silencesRead(this.now());
    const groups = this.groups(patientId, silences);
    const silencesUnread = unreadableSilences.map(unreadableSilenceView);
    // A patient whose state cannot be read: named with why, its pages shown (until 2026-12-05 its view answered 500).
    if ('unreadable' in read)
      return {
        ...this.context(),
        patient: null,
        unreadable: read.unreadable,
        pages: groups.groups,
        unreadablePages: groups.unreadablePages,
        unreadableSilences: silencesUnread,
      };
    const rec = read.patient;
    const clock = Number.isFinite(rec.state.clock) ? rec.state.clock : this.now();
    const from = clock - hours * HOUR;
    const timeline = this.queries.timeline(patientId, from);
    const points = timeline.points.map((p: TimelinePoint) => ({
      t: iso(p.observedAt),
      clock: iso(p.clock),
      messageId: p.messageId,
      crs: p.crs,
      icans: p.icans,
      ...p.data,
    }));
    return {
      ...this.context(),
      patient: patientView(rec, groups, silences, this.config),
      pages: groups.groups,
      unreadableSilences: silencesUnread,
      timeline: {
        from: iso(from),
        to: iso(clock),
        feverThresholdC: this.config.feverThresholdC,
        hypotension: hypotensionThresholds(rec.state, this.config),
        points,
        unreadable: timeline.unreadable,
      },
    };
  }

  /** One team page as the board shows it (after an acknowledgement). */
  teamPage(p: Page): TeamPageView {
    const silences = new Map(this.queries.silences(this.now()).map((s) => [s.silenceId, s]));
    return teamPageView(p, this.queries, this.config.paging, silences);
  }
}

/** A silence whose item cannot be read, as the board lists it (to be ended there): its patient, where the store knows it. */
const unreadableSilenceView = ({ silenceId, reason, patientId }: UnreadableSilence) => ({
  silenceId,
  reason,
  ...(patientId !== undefined ? { patientId } : {}),
});
