// In-memory page store, audit log and parked sends: for replay (simulated time, one process) and for tests.
import { sortableTime } from './audit-export.ts';
import {
  firstSendPending,
  holdsUntilAfter,
  readOnePage,
  readOneSilence,
  readPage,
  readPages,
  readSilence,
  readSilences,
  type Page,
  type Silence,
} from '#domain/paging.ts';
import {
  VersionConflict,
  auditKey,
  type AckLink,
  type AuditEvent,
  type AuditLog,
  type PageStore,
  type ParkedSend,
  type ParkedSends,
} from '#ports';

export class MemoryPageStore implements PageStore {
  private readonly pages = new Map<string, Page>();
  private readonly silenceById = new Map<string, Silence>();
  /** Silences whose item cannot be read, ended by hand (the item is kept as it is). */
  private readonly unreadableEnded = new Set<string>();
  private readonly links = new Map<string, AckLink>();

  /** `audit`: where the entries saved with pages and silences go (a store without one refuses them). */
  constructor(private readonly audit?: AuditLog) {}

  /** Where these entries go, asked before anything changes: a store without an audit log refuses them. */
  private logFor(events: AuditEvent[] | undefined): AuditLog | undefined {
    if (!events?.length) return undefined;
    if (!this.audit) throw new Error('this page store keeps no audit trail');
    return this.audit;
  }

  async get(pageId: string) {
    const p = this.pages.get(pageId);
    return p && readOnePage(pageId, p, p.rev);
  }

  /**
   * Every page kept, each read as a store reads its items (a test may keep one of another shape): the pages that
   * `keep` takes, in `order`, and every item that cannot be read (of `patientId`, when given: a store reads one
   * patient's partition or rows).
   */
  private readAll(
    keep: (p: Page) => boolean,
    order?: (a: Page, b: Page) => number,
    limit = Number.POSITIVE_INFINITY,
    patientId?: string,
  ) {
    const kept = [...this.pages].filter(([, p]) => patientId === undefined || p.patientId === patientId);
    const read = readPages(kept.map(([id, p]) => readPage(id, p, p.rev)));
    const pages = read.pages.filter(keep);
    if (order) pages.sort(order);
    return { pages: pages.slice(0, limit), unreadable: read.unreadable };
  }

  async saveAckLink(key: string, link: AckLink) {
    if (!this.links.has(key)) this.links.set(key, { ...link });
  }

  async ackLink(key: string) {
    const link = this.links.get(key);
    return link && { ...link };
  }

  async openPages(patientId: string) {
    return this.readAll((p) => p.status === 'open', undefined, undefined, patientId);
  }

  async pendingPages(now: number) {
    return this.readAll(
      (p) =>
        (p.status === 'open' && (p.heldBy !== undefined || (p.dueAt !== null && p.dueAt <= now))) ||
        (!p.delivered && (p.status === 'open' || p.status === 'info')),
    );
  }

  async unsentPages(patientId: string) {
    return this.readAll(firstSendPending, (a, b) => a.triggeredAt - b.triggeredAt, undefined, patientId);
  }

  async patientPages(patientId: string, limit: number) {
    return this.readAll(
      () => true,
      (a, b) => b.triggeredAt - a.triggeredAt,
      limit,
      patientId,
    );
  }

  async save(pages: Page[], audit?: AuditEvent[]) {
    for (const p of pages) {
      const stored = this.pages.get(p.pageId);
      if ((stored?.rev ?? 0) !== p.rev || (p.rev === 0 && stored)) throw new VersionConflict(p.pageId);
    }
    const log = this.logFor(audit);
    for (const p of pages) this.pages.set(p.pageId, { ...p, rev: p.rev + 1 });
    await log?.append(audit!);
  }

  async silences(now: number) {
    const read = readSilences(
      [...this.silenceById].filter(([id]) => !this.unreadableEnded.has(id)).map(([id, s]) => readSilence(id, s)),
    );
    return { ...read, silences: read.silences.filter((s) => holdsUntilAfter(s, now)) };
  }

  async endUnreadableSilence(silenceId: string, _at: number, audit: AuditEvent[]) {
    if (!this.silenceById.has(silenceId) || this.unreadableEnded.has(silenceId)) return false;
    const log = this.logFor(audit);
    this.unreadableEnded.add(silenceId);
    await log?.append(audit);
    return true;
  }

  async getSilence(silenceId: string) {
    const s = this.silenceById.get(silenceId);
    return s && readOneSilence(silenceId, s);
  }

  async saveSilence(silence: Silence, audit?: AuditEvent[]) {
    const log = this.logFor(audit);
    this.silenceById.set(silence.silenceId, silence);
    await log?.append(audit!);
  }
}

export class MemoryAuditLog implements AuditLog {
  readonly events: AuditEvent[] = [];
  private readonly keys = new Set<string>();

  constructor(private readonly onAppend?: (event: AuditEvent) => void) {}

  /** An entry written again (a retry) is stored once, where it was first written, as on SQLite and DynamoDB. */
  async append(events: AuditEvent[]) {
    for (const e of events) {
      const key = auditKey(e);
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      this.events.push(e);
      this.onAppend?.(e);
    }
  }

  /** Oldest first, as every backend reads a trail: by time, then the order written (the sort is stable). */
  async *forPatient(patientId: string) {
    const trail = this.events.filter((e) => e.patientId === patientId);
    yield* trail
      .map((e) => ({ e, time: sortableTime(e.at) }))
      .sort((a, b) => (a.time === b.time ? 0 : a.time < b.time ? -1 : 1))
      .map((x) => x.e);
  }
}

export class MemoryParkedSends implements ParkedSends {
  private readonly byKey = new Map<string, ParkedSend>();

  async park(send: ParkedSend) {
    this.byKey.set(`${send.pageId}#${send.level}#${send.round}`, send);
  }

  async list() {
    return [...this.byKey.values()];
  }

  async remove(pageId: string, level: number, round: number) {
    this.byKey.delete(`${pageId}#${level}#${round}`);
  }
}
