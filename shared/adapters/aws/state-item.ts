// The state item's binary attribute (`s`): the compact state (state-compact.ts) and the messages its save applied
// without a transaction that are not yet in the seen-messages table (`pending`), deflated together. An item stores
// the bytes it holds and every started KB of it is a write unit, so the item stays at or under 1 KB for a patient
// sending vitals (npm run cost measures it): the state keeps no window of recent ids of its own, only the pending
// messages' (every message applied before them is in the seen-messages table, read before grading).
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { addSeen } from '#domain/seen.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { deserializeState, type PatientState } from '#domain/state.ts';
import type { AuditEvent } from '#ports';
import { STATE_TABLE } from './table-layout.ts';

/** An audit entry as a seen-messages item carries it: the entry, and when this process wrote it. */
export interface CarriedEntry {
  event: AuditEvent;
  written: string;
}

/**
 * A message applied by a save without a transaction (one that changed no grade), not yet in the seen-messages
 * table: its id, digests, and the assessment its seen-messages item will carry. The patient's next save writes it
 * there before it writes the state (DynamoStateStore.save), so that every applied message is always in one place
 * or the other.
 */
export interface PendingSeen {
  messageId: string;
  digests: string[];
  entries: CarriedEntry[];
}

type EncodedPending = [messageId: string, digests: string[], entries: [event: AuditEvent, written: string][]];

export function encodeStateItem(state: PatientState, pending: readonly PendingSeen[]): Uint8Array {
  const compact = compactState({ ...state, seen: [] });
  const encoded: EncodedPending[] = pending.map((p) => [
    p.messageId,
    p.digests,
    p.entries.map((e) => [e.event, e.written]),
  ]);
  return deflateRawSync(JSON.stringify(encoded.length > 0 ? [compact, encoded] : [compact]));
}

/**
 * The state, whose window of recent ids holds the pending messages (items written before pending messages existed
 * kept a window of the last 16 ids, all of them in the seen-messages table as well), and the pending messages.
 */
export function decodeStateItem(bytes: Uint8Array): { state: PatientState; pending: PendingSeen[] } {
  const [compact, encoded = []] = JSON.parse(inflateRawSync(bytes).toString('utf8')) as [unknown[], EncodedPending[]?];
  const state = expandState(compact);
  const pending = encoded.map(([messageId, digests, entries]) => ({
    messageId,
    digests,
    entries: entries.map(([event, written]) => ({ event, written })),
  }));
  // A window wide enough for every pending digest: a pending id the window dropped would be in neither place a
  // duplicate is looked for (a save of more than 64 quiet messages once graded the first ones again on redelivery).
  const window = 64 + pending.reduce((n, p) => n + p.digests.length, 0);
  let seen = state.seen;
  for (const p of pending) for (const d of p.digests) seen = addSeen(seen, p.messageId, d, window);
  return { state: { ...state, seen }, pending };
}

/**
 * What an item of the state table holds: the compact state (`s`, what the state store writes), or the JSON of an
 * item written before it (`state`), with no pending messages; undefined when it has neither. Every reader of the
 * table goes through it (reading `state` alone once made the patient directory see every graded patient in no ward).
 */
export function stateOfItem(
  item: Record<string, AttributeValue>,
): { state: PatientState; pending: PendingSeen[] } | undefined {
  const compact = item[STATE_TABLE.stateAttribute]?.B;
  if (compact !== undefined) return decodeStateItem(compact);
  const json = item[STATE_TABLE.legacyStateAttribute]?.S;
  return json === undefined ? undefined : { state: deserializeState(json), pending: [] };
}
