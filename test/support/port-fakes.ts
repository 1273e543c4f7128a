// In-memory fakes of the ports, with the semantics the real adapters promise: the queue drops a messageId its
// patient already queued (SQS FIFO deduplication), the state store checks the version, the ledger marks once.
// Each counts its calls, and each can be told to fail, so handler tests can exercise failures and retries.
import { issueToken } from '#app/auth.ts';
import type { PatientDirectory, TokenScope } from '#app/scope.ts';
import type { Notification } from '#domain/page.ts';
import type { PatientState } from '#domain/state.ts';
import {
  VersionConflict,
  type DeviceToken,
  type MessageQueue,
  type QueuedMessage,
  type SecurityEvent,
  type SecurityRefusal,
  type StateStore,
  type StoredState,
  type TokenStore,
} from '#ports';

/** What the ingest tests start from: an empty queue, and a token store holding an EHR gateway's token issued at `now`. */
export async function ingestFakes(now: number, deviceId = 'gw-icu4') {
  const queue = new MemoryQueue();
  const tokens = new MemoryTokenStore();
  const issued = issueToken(deviceId, new Date(now), { kind: 'ehr' });
  await tokens.put(issued.record);
  return { queue, tokens, token: issued.token };
}

export class MemoryQueue implements MessageQueue {
  readonly messages: QueuedMessage[] = [];
  private readonly seen = new Set<string>();
  calls = 0;
  failWith: Error | undefined;

  async enqueue(messages: QueuedMessage[]): Promise<void> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    for (const q of messages) {
      const key = `${q.message.patientId}\u0000${q.message.messageId}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.messages.push(q);
    }
  }
}

export class MemoryStateStore implements StateStore {
  readonly records = new Map<string, { json: string; version: number }>();
  readonly outbox: Notification[] = [];
  loads = 0;
  saves = 0;
  /** Thrown by the next save for this patient (then cleared). */
  readonly failNextSave = new Map<string, Error>();
  /** Before the next save for this patient, another writer commits `bump(state)` first (then cleared). */
  readonly racer = new Map<string, (state: PatientState | undefined) => PatientState>();

  async load(patientId: string): Promise<StoredState | undefined> {
    this.loads++;
    const r = this.records.get(patientId);
    return r ? { state: JSON.parse(r.json) as PatientState, version: r.version } : undefined;
  }

  async save(patientId: string, state: PatientState, expectedVersion: number, outbox: Notification[]): Promise<void> {
    this.saves++;
    const fail = this.failNextSave.get(patientId);
    if (fail) {
      this.failNextSave.delete(patientId);
      throw fail;
    }
    const race = this.racer.get(patientId);
    if (race) {
      this.racer.delete(patientId);
      const cur = this.records.get(patientId);
      const theirs = race(cur ? (JSON.parse(cur.json) as PatientState) : undefined);
      this.records.set(patientId, { json: JSON.stringify(theirs), version: (cur?.version ?? 0) + 1 });
    }
    const current = this.records.get(patientId)?.version ?? 0;
    if (current !== expectedVersion) throw new VersionConflict(patientId);
    this.records.set(patientId, { json: JSON.stringify(state), version: expectedVersion + 1 });
    this.outbox.push(...outbox);
  }

  state(patientId: string): PatientState | undefined {
    const r = this.records.get(patientId);
    return r ? (JSON.parse(r.json) as PatientState) : undefined;
  }
}

export class MemoryTokenStore implements TokenStore {
  readonly tokens: DeviceToken[] = [];
  /** Thrown by every read of a token while set (a throttled or unreachable table). */
  failWith: Error | undefined;

  async findByHash(hash: string): Promise<DeviceToken | undefined> {
    if (this.failWith) throw this.failWith;
    return this.tokens.find((t) => t.hash === hash);
  }

  async put(token: DeviceToken): Promise<void> {
    if (this.tokens.some((t) => t.hash === token.hash)) throw new Error('token exists');
    this.tokens.push({ ...token });
  }

  async revoke(tokenId: string, at: string): Promise<boolean> {
    const t = this.tokens.find((x) => x.tokenId === tokenId && !x.revokedAt);
    if (!t) return false;
    t.revokedAt = at;
    return true;
  }

  async setScope(tokenId: string, scope: TokenScope): Promise<boolean> {
    const t = this.tokens.find((x) => x.tokenId === tokenId && !x.revokedAt);
    if (!t) return false;
    delete t.kind;
    delete t.wards;
    delete t.patients;
    Object.assign(t, scope);
    return true;
  }

  async expire(tokenId: string, at: string): Promise<boolean> {
    const t = this.tokens.find((x) => x.tokenId === tokenId && !x.revokedAt);
    if (!t) return false;
    t.expiresAt = at;
    return true;
  }

  async findById(tokenId: string): Promise<DeviceToken[]> {
    if (this.failWith) throw this.failWith;
    return this.tokens.filter((t) => t.tokenId === tokenId).map((t) => ({ ...t }));
  }

  async markReplaced(tokenId: string, by: string, at: string, byHash?: string): Promise<boolean> {
    const found = this.tokens.filter((x) => x.tokenId === tokenId);
    for (const t of found) {
      Object.assign(t, { replacedBy: by, replacedAt: at });
      if (byHash !== undefined) t.replacedByHash = byHash;
      else delete t.replacedByHash;
    }
    return found.length > 0;
  }

  async list(): Promise<DeviceToken[]> {
    return this.tokens.map((t) => ({ ...t }));
  }
}

/** A token store's reads counted: findByHash (a request's token) and findById (each link of a chain of rotations). */
export function countedReads<S extends TokenStore>(store: S): S & { reads: () => number } {
  let reads = 0;
  const byHash = store.findByHash.bind(store);
  const byId = store.findById.bind(store);
  store.findByHash = (hash) => {
    reads++;
    return byHash(hash);
  };
  store.findById = (tokenId, hash) => {
    reads++;
    return byId(tokenId, hash);
  };
  return Object.assign(store, { reads: () => reads });
}

/** A patient directory that knows no patient and counts the room reserved for new ones (`reserved()`). */
export function reservingDirectory(): { patients: PatientDirectory; reserved: () => number } {
  let reserved = 0;
  const patients: PatientDirectory = {
    lookup: async () => new Map(),
    admitNew: (ids, ceiling) => {
      if (reserved + ids.length > ceiling) return { ok: false, active: reserved };
      reserved += ids.length;
      return { ok: true, release: () => (reserved -= ids.length) };
    },
  };
  return { patients, reserved: () => reserved };
}

/**
 * A directory that knows each patient the queue holds a message of: the AWS ingest's state table once the grade
 * function has taken them, as `crs serve` knows a patient from its inbox. No ceiling.
 */
export function queueDirectory(queue: MemoryQueue): PatientDirectory {
  return {
    lookup: async (ids) => {
      const held = new Set(queue.messages.map((q) => q.message.patientId));
      return new Map(ids.filter((id) => held.has(id)).map((id) => [id, { known: true }]));
    },
  };
}

/** A security log that keeps what it is given: the lines written, and the refusals the budget kept out. */
export class MemorySecurityLog {
  readonly events: SecurityEvent[] = [];
  readonly notWrittenOf: { kind: SecurityRefusal; client: string }[] = [];

  async record(event: SecurityEvent): Promise<void> {
    this.events.push(event);
  }

  async notWritten(kind: SecurityRefusal, client: string): Promise<void> {
    this.notWrittenOf.push({ kind, client });
  }
}
