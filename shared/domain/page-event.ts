// The wire format of one page sent to one role: what standard output (--page-lines), the webhook, the board, the
// SNS page sender and the emulator's page printer all carry, on both backends.
import type { Page } from './paging.ts';
import { iso } from './time.ts';

/** One page going out to one role of a team (SNS with attributes, or the embedded sinks). */
export interface PageMessage {
  page: Page;
  role: string;
  reason: 'triggered' | 'escalated' | 'released' | 'resent';
  /** The signed, expiring acknowledge link; absent for informational pages. */
  ackUrl?: string;
  /**
   * When the data directory the sending server runs on was restored from a backup (crs serve; absent: never). Every
   * sendId then carries it (restoredSendId); without it, the page's own mark (Page.restoredAt: AWS) does.
   */
  restoredAt?: number;
}

/**
 * The sendId of a server restored from a backup: marked with the restore's moment, so that it is none the lost
 * server could have sent after the backup (2026-12-07). A page's id, revision, level and round come from the backup
 * and go on from there as they went on the lost server, and a no-data alert's id from when the feed went quiet, which
 * the resent data gives again: unmarked, the restored server sent the lost server's ids again, and a receiver
 * dropping repeats by them dropped its pages. A repeat of a send after a crash keeps the same mark. On AWS the mark
 * is the page's (Page.restoredAt), set by the copy of `crs restore` and by the sweep raising a no-data alert, so that
 * whichever function sends, or sends again, a page gives the same sendId.
 */
const restoredSendId = (sendId: string, restoredAt: number | undefined) =>
  restoredAt === undefined ? sendId : `${sendId}@${restoredAt}`;

/** One page to one role, as every sink of both backends carries it. */
export interface PageEvent {
  type: 'page';
  /** The same for a repeat of this very send (after a crash), different for every new send: drop repeats by it. */
  sendId: string;
  pageId: string;
  notificationId: string;
  patientId: string;
  team: Page['team'];
  role: string;
  /** The level of the team's ladder (0 is the first) and the walk of the ladder (0 is the first). */
  level: number;
  round: number;
  reason: PageMessage['reason'];
  subject: Page['subject'];
  kind: Page['kind'];
  /** A technical alert (stale feed, low SpO2): not a grade. */
  technical: boolean;
  grade: number;
  status: Page['status'];
  summary: string;
  /** The signed, expiring acknowledge link; absent for informational pages. */
  ackUrl?: string;
  /** When the next level is paged if nobody acknowledges. */
  escalatesAt: string | null;
  sentAt: string;
}

export function pageEvent(m: PageMessage, sentAt: number): PageEvent {
  const p = m.page;
  return {
    type: 'page',
    // The storage revision identifies a send and its repeats after a crash. A parked send resent after the page
    // moved on is of an earlier level and round than the page now holds: named by them, or two such resends (and
    // the page's own next send) would share one id, and a receiver dropping repeats would drop all but one.
    sendId: restoredSendId(
      m.reason === 'resent' ? `${p.pageId}#${p.level}.${p.round}` : `${p.pageId}#${p.rev}`,
      m.restoredAt ?? p.restoredAt,
    ),
    pageId: p.pageId,
    notificationId: p.notificationId,
    patientId: p.patientId,
    team: p.team,
    role: m.role,
    level: p.level,
    round: p.round,
    reason: m.reason,
    subject: p.subject,
    kind: p.kind,
    technical: p.subject === 'stale-feed' || p.subject === 'spo2',
    grade: p.grade,
    status: p.status,
    summary: p.summary,
    ...(m.ackUrl ? { ackUrl: m.ackUrl } : {}),
    escalatesAt: p.status === 'open' && p.dueAt !== null ? iso(p.dueAt) : null,
    sentAt: iso(sentAt),
  };
}
