// Ports: what the core needs from the outside world. Adapters (AWS in shared/adapters/aws, embedded SQLite in
// shared/adapters/sqlite, in-memory fakes in test/) implement them; the core never imports an SDK.
import type { TokenScope } from '#domain/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import type { AlertChange } from '#domain/reducer.ts';
import type { Page, PagesRead, Silence, SilencesRead } from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import type { PageMessage } from '#domain/page-event.ts';

export type { PageMessage };

/** A validated message as it travels on the queue, with who sent it and when it arrived. */
export interface QueuedMessage {
  message: DeviceMessage;
  /** The content digest (shared/app/digest.ts): with the messageId, the message's identity. */
  digest: string;
  /** Server time the ingest accepted it (RFC 3339). */
  receivedAt: string;
  /** The authenticated device (token subject) that posted it. */
  sender: string;
}

/** The per-patient ordered queue (SQS FIFO: MessageGroupId = patientId, MessageDeduplicationId = the digest). */
export interface MessageQueue {
  /** Resolves only once every message is durably queued; rejects otherwise (the sender may safely retry). */
  enqueue(messages: QueuedMessage[]): Promise<void>;
}

export interface StoredState {
  state: PatientState;
  /** Optimistic-concurrency version: 0 for a patient never stored. */
  version: number;
}

export class VersionConflict extends Error {
  constructor(readonly patientId: string) {
    super(`patient ${patientId}: state changed since it was read`);
    this.name = 'VersionConflict';
  }
}

/**
 * A receiver refused this record itself (an HTTP 4xx that is about the request, a value the transport will not
 * carry): sent again as it is, it will be refused again. A lane retries it (REFUSED_TRIES), then parks it and moves on;
 * any other error means the receiver is down, and the lane keeps its order and retries with backoff.
 */
export class RecordRefused extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RecordRefused';
  }
}

/** A refused record or send is tried this many times in all, REFUSED_DELAY_MS apart (doubling), then parked. */
export const REFUSED_TRIES = 3;
export const REFUSED_DELAY_MS = 100;

/** The pause after the `refusals`-th refusal of a record: `baseMs` (REFUSED_DELAY_MS unless set), doubling. */
export const refusedDelay = (refusals: number, baseMs = REFUSED_DELAY_MS): number => baseMs * 2 ** (refusals - 1);

/** A message as the long tail of a patient's messages keeps it: its id and the digest of its content. */
export interface SeenMessage {
  messageId: string;
  digest: string;
  /**
   * Present when the id was accepted before (its digests from priorDigests or SeenBefore; empty when the state's
   * recent window told): the store adds this digest to the id's record instead of creating it.
   */
  prior?: readonly string[];
}

/**
 * The long-tail record already held some of these messageIds, found when the grading transaction wrote them (on
 * AWS a conditional put, which returns the old item instead of a read per message): grade again knowing them.
 */
export class SeenBefore extends Error {
  constructor(
    readonly patientId: string,
    /** messageId -> the digests it was accepted with before. */
    readonly digests: ReadonlyMap<string, readonly string[]>,
  ) {
    super(`patient ${patientId}: ${digests.size} messageId(s) accepted before`);
    this.name = 'SeenBefore';
  }
}

/** What else is written with a patient's state, in the same transaction. */
export interface SaveExtras {
  /**
   * The messages applied, for the long tail beyond the state's recent window (crs-rules 1.1 item 8): a duplicate is
   * a duplicate however late; a reused id with other content is a new observation. A store that keeps one writes
   * them in the same transaction; one that finds an id it did not expect throws SeenBefore.
   */
  seen?: SeenMessage[];
  /** Technical alerts raised or cleared (low SpO2): pending outbox records for the pager, like notifications. */
  alerts: AlertChange[];
  /** Audit entries for the assessments and notifications (append-only, keyed by `auditKey`). */
  audit: AuditEvent[];
}

/** Per-patient state, one record per patient, with the outbox of pages written in the same transaction. */
export interface StateStore {
  load(patientId: string): Promise<StoredState | undefined>;
  /**
   * Writes the state as version expectedVersion + 1 if the stored version is still expectedVersion, and the
   * notifications as pending outbox records, atomically (and `extras`, where the store supports them). Throws
   * VersionConflict when the version moved on.
   */
  save(
    patientId: string,
    state: PatientState,
    expectedVersion: number,
    outbox: Notification[],
    extras?: SaveExtras,
  ): Promise<void>;
  /**
   * The long tail, read before grading where a read is cheap (SQLite): the digests each of these messageIds of the
   * patient was accepted with. A store without it learns them on write (SeenBefore).
   */
  priorDigests?(patientId: string, messageIds: readonly string[]): Promise<Map<string, string[]>>;
  /**
   * The state a patient with none stored starts from, where it is not the empty one: in a data directory restored
   * from a backup, its sequence moved on (movedOnByRestore, 2026-12-07). Undefined: the empty state. Asked after
   * load and priorDigests: the DynamoDB store reads the restore with the long tail (one request, not two).
   */
  firstState?(patientId: string): PatientState | undefined;
}

/** Sends one page to its teams. Called at least once per notification; must be safe to call again. */
export interface Notifier {
  publish(notification: Notification): Promise<void>;
}

export interface DeviceToken extends TokenScope {
  tokenId: string;
  deviceId: string;
  /** SHA-256 of the token, hex; the token itself is never stored. */
  hash: string;
  createdAt: string;
  revokedAt?: string;
  /** When the token stops being taken (ISO; shared/app/auth.ts tokenExpired); none: never (2026-12-06). */
  expiresAt?: string;
  /**
   * The token `crs token rotate` issued to replace this one (its id), and when (ISO): written on the old token by the
   * rotation, so that a device still sending it once refused is told to install that one (2026-12-07); none: never
   * rotated, or rotated before 2026-12-07.
   */
  replacedBy?: string;
  replacedAt?: string;
  /**
   * The replacement's storage key (its hash), stored beside its id by rotations since 2026-12-07 on DynamoDB, whose
   * table is keyed by hash: the refusal reads each link of a chain of rotations with one consistent read. Never said
   * (a refusal, `crs token list`): ids and dates only. None: a link written before, found by id (TokenStore.findById).
   */
  replacedByHash?: string;
  /** Its stored scope cannot be read at all (not JSON: an item edited by hand): refused, never read as no scope. */
  scopeUnreadable?: true;
}

/** Device bearer tokens, stored only as hashes, each with its scope (shared/app/scope.ts). */
export interface TokenStore {
  findByHash(hash: string): Promise<DeviceToken | undefined>;
  /**
   * The items stored under a token id (one, unless an id was ever reused), read consistently and without a scan: by
   * `hash` when it is given and still holds that id (a replacement's key as rotate stored it, replacedByHash), else by
   * the id's index (2026-12-07; the refusal of a replaced token follows the chain of rotations with it).
   */
  findById(tokenId: string, hash?: string): Promise<DeviceToken[]>;
  put(token: DeviceToken): Promise<void>;
  revoke(tokenId: string, at: string): Promise<boolean>;
  /** Replaces an active token's scope (kind, wards, patients); false for an unknown or revoked one. */
  setScope(tokenId: string, scope: TokenScope): Promise<boolean>;
  /** Sets an active token's expiresAt (`crs token rotate`); false for an unknown or revoked one. */
  expire(tokenId: string, at: string): Promise<boolean>;
  /**
   * Links a token to its replacement (`crs token rotate`; revoked or not, a later rotation's link replacing an
   * earlier one); false for an unknown token. `byHash`: the replacement's hash, kept beside its id where the store is
   * keyed by hash (replacedByHash); a link given none keeps none.
   */
  markReplaced(tokenId: string, by: string, at: string, byHash?: string): Promise<boolean>;
  list(): Promise<DeviceToken[]>;
}

/** Delivery bookkeeping for outbox records, keyed by notificationId. */
export interface OutboxLedger {
  /** True if this notification was already published (so a retry must not publish it again). */
  isSent(notificationId: string): Promise<boolean>;
  /** Records that it was published; idempotent. */
  markSent(notificationId: string, at: string): Promise<void>;
}

/** Pages to teams and their escalation ladders (shared/domain/paging.ts), and silences. */
//
// A store only stores: it reads each item with the domain's readPage, and a read of several pages hands back those
// it could not read apart (PagesRead.unreadable, by id) instead of failing for all; the pager decides what becomes
// of them (a tick sets them aside and names them). A page read alone whose item cannot be read is PageUnreadable.
export interface PageStore {
  /** Throws PageUnreadable when the page's item cannot be read. */
  get(pageId: string): Promise<Page | undefined>;
  /** A patient's open pages (to supersede or resolve when a grade changes). */
  openPages(patientId: string): Promise<PagesRead>;
  /** Open pages with something to do by `now` (due, or held by a silence), and pages with a send pending. */
  pendingPages(now: number): Promise<PagesRead>;
  /** A patient's pages whose first send is still to be made (firstSendPending), oldest first. */
  unsentPages(patientId: string): Promise<PagesRead>;
  /** A patient's pages, newest first (for the board). */
  patientPages(patientId: string, limit: number): Promise<PagesRead>;
  /**
   * Stores pages, each as rev + 1 if the store still holds `rev` (a new page has rev 0 and must not exist yet),
   * with the audit entries that say what changed, all or nothing: a crash can never leave a page changed and its
   * entry unwritten (a retry finds the page changed and would not write it). Throws VersionConflict naming the
   * page when another writer got there first.
   */
  save(pages: Page[], audit?: AuditEvent[]): Promise<void>;
  /**
   * Silences in force at `now` (domain/paging.ts holdsUntilAfter): `until` after it, and not ended by hand or
   * ended after it (a late tick decides a step that fell due at `now` by what was in force then).
   */
  silences(now: number): Promise<SilencesRead>;
  /** Throws SilenceUnreadable when the silence's item cannot be read. */
  getSilence(silenceId: string): Promise<Silence | undefined>;
  /** Stores a silence (new, or ended) with the audit entry that says so, all or nothing. */
  saveSilence(silence: Silence, audit?: AuditEvent[]): Promise<void>;
  /**
   * Ends at `at` a silence whose item cannot be read (its item kept as it is), with the audit entry that says so, all
   * or nothing: no longer in force, it is no longer read by silences(). False, with nothing written, when there is no
   * such silence, or it had ended or run out by `at`.
   */
  endUnreadableSilence(silenceId: string, at: number, audit: AuditEvent[]): Promise<boolean>;
  /**
   * Stores what a short acknowledge link stands for under its key (app/ack.ts ackLinkKey), before the page carrying
   * it is sent; storing the same again changes nothing. Kept for AckLink's retention past its expiry at least.
   */
  saveAckLink(key: string, link: AckLink): Promise<void>;
  ackLink(key: string): Promise<AckLink | undefined>;
}

/** What a short acknowledge link stands for: the page, the role it was sent to, and when the link expires. */
export interface AckLink {
  pageId: string;
  role: string;
  expiresAt: number;
}

/** How long a link's claims are kept after it expired: a late answer is still told "expired" and audited. */
export const ACK_LINK_RETENTION_DAYS = 30;

export interface PageSender {
  /** Throws RecordRefused when the transport refuses this page itself; anything else means it is down. */
  send(message: PageMessage): Promise<void>;
}

/** A send the transport refused a few times, set aside so that the pages behind it go on. */
export interface ParkedSend {
  pageId: string;
  patientId: string;
  notificationId: string;
  team: string;
  level: number;
  round: number;
  reason: string;
  attempts: number;
  /** Server time, RFC 3339. */
  parkedAt: string;
}

/** Where a backend keeps parked sends, to list them and send them again (`crs outbox list|retry`). */
export interface ParkedSends {
  park(send: ParkedSend): Promise<void>;
  list(): Promise<ParkedSend[]>;
  remove(pageId: string, level: number, round: number): Promise<void>;
}

export type AuditType =
  | 'assessment'
  | 'notification'
  | 'page'
  | 'delivery'
  | 'acknowledgement'
  | 'acknowledgement-refused'
  | 'escalation'
  | 'silence'
  | 'alert'
  /** A messageId reused with other content, graded as a new observation (crs-rules 1.1 item 8). */
  | 'message-reused'
  /** The first message graded under grading settings other than the patient's last message was (2026-12-07). */
  | 'settings-changed';

/** One entry of the append-only audit trail. Ids, grades and reasons only: never a name. */
export interface AuditEvent {
  /** Server time (or simulated time in replay), RFC 3339. */
  at: string;
  patientId: string;
  type: AuditType;
  /** A short human-readable line. */
  text: string;
  /** The ids and values the entry is about (pageId, notificationId, by, grade, ...). */
  details: Record<string, string | number | boolean | null>;
}

/** A stable key for an audit entry, so that writing it twice (a retried transaction) stores it once. */
export function auditKey(e: AuditEvent): string {
  const id = e.details.pageId ?? e.details.notificationId ?? e.details.messageId ?? e.details.silenceId ?? '';
  // A digest tells apart two messages under one id (a reused id) whose entries would otherwise read the same.
  const digest = e.details.digest === undefined ? '' : `|${String(e.details.digest)}`;
  // A page's level and walk of its ladder tell apart two sends of it to one role at one instant (a tick catching
  // up after downtime sends each step it finds due), whose entries would otherwise read the same.
  const step = e.details.level === undefined ? '' : `|${String(e.details.level)}.${String(e.details.round)}`;
  // A refused acknowledgement's attempt tells apart two alike at one instant (the same link and name, sent twice).
  const attempt = e.details.attemptId === undefined ? '' : `|${String(e.details.attemptId)}`;
  return `${e.at}|${e.type}|${String(id)}|${String(e.details.by ?? '')}|${e.text}${digest}${step}${attempt}`;
}

/** A refusal the security log has a line for. */
export type SecurityRefusal = 'acknowledge-link-refused' | 'device-token-refused';

/**
 * Something refused at the door that is about no patient anyone can vouch for: a forged or malformed acknowledge
 * link, an unknown device token. It goes to the host's security log (the embedded data directory's security.log,
 * the Lambda's log), never into a patient's audit trail, with what the request claimed (as sent, to investigate).
 * `suppressed`: how many refusals of one kind from one client were not written (its budget was spent).
 */
export interface SecurityEvent {
  /** Server time, RFC 3339. */
  at: string;
  event: SecurityRefusal | 'suppressed';
  reason: string;
  /** The client's address, as the host knows it (behind a trusted proxy, the forwarded one). */
  client?: string;
  /**
   * What the request claimed: the link's page, role and expiry; the name typed; the route; the MLLP listener's device
   * and token ids (`--mllp-device`).
   */
  claimed: Record<string, string | number | null>;
  /** A `suppressed` event's count: of which refusals, how many, the first and last not written (RFC 3339). */
  suppressed?: { kind: SecurityRefusal; count: number; firstAt: string; lastAt: string };
}

export interface SecurityLog {
  record(event: SecurityEvent): Promise<void>;
}

export interface AuditLog {
  append(events: AuditEvent[]): Promise<void>;
  /** Every entry about a patient, oldest first. */
  forPatient(patientId: string): AsyncIterable<AuditEvent>;
}
