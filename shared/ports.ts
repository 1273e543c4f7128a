// Ports: what the core needs from the outside world. Adapters (AWS in shared/adapters/aws, embedded SQLite in
// shared/adapters/embedded, in-memory fakes in test/) implement them; the core never imports an SDK.
import type { DeviceMessage } from './domain/contract.ts';
import type { Notification } from './domain/page.ts';
import type { PatientState } from './domain/state.ts';

/** A validated message as it travels on the queue, with who sent it and when it arrived. */
export interface QueuedMessage {
  message: DeviceMessage;
  /** Server time the ingest accepted it (RFC 3339). */
  receivedAt: string;
  /** The authenticated device (token subject) that posted it. */
  sender: string;
}

/** The per-patient ordered queue (SQS FIFO: MessageGroupId = patientId, MessageDeduplicationId = messageId). */
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

/** Per-patient state, one record per patient, with the outbox of pages written in the same transaction. */
export interface StateStore {
  load(patientId: string): Promise<StoredState | undefined>;
  /**
   * Writes the state as version expectedVersion + 1 if the stored version is still expectedVersion, and the
   * notifications as pending outbox records, atomically. Throws VersionConflict when the version moved on.
   */
  save(patientId: string, state: PatientState, expectedVersion: number, outbox: Notification[]): Promise<void>;
}

/** Sends one page to its teams. Called at least once per notification; must be safe to call again. */
export interface Notifier {
  publish(notification: Notification): Promise<void>;
}

export interface DeviceToken {
  tokenId: string;
  deviceId: string;
  /** SHA-256 of the token, hex; the token itself is never stored. */
  hash: string;
  createdAt: string;
  revokedAt?: string;
}

/** Device bearer tokens, stored only as hashes. */
export interface TokenStore {
  findByHash(hash: string): Promise<DeviceToken | undefined>;
  put(token: DeviceToken): Promise<void>;
  revoke(tokenId: string, at: string): Promise<boolean>;
  list(): Promise<DeviceToken[]>;
}

/** Delivery bookkeeping for outbox records, keyed by notificationId. */
export interface OutboxLedger {
  /** True if this notification was already published (so a retry must not publish it again). */
  isSent(notificationId: string): Promise<boolean>;
  /** Records that it was published; idempotent. */
  markSent(notificationId: string, at: string): Promise<void>;
}
