// How the core's records sit in DynamoDB. Shared by the adapters, the notifier's stream decoding and the CDK
// stack (its stream filter, its indexes), so that they cannot drift apart.
//
// State table (one per deployment), partition key `pk` + sort key `sk`:
//   patient state  pk = patientId, sk = "state"                  kind = "state"   version, s (binary: the
//                  compact state and the messages its save applied without a transaction, pending for the
//                  seen-messages table (state-item.ts), deflated; items written before it hold `state`, JSON),
//                  and, for an enrolled patient, feedShard = "feed", feedSince (ms): the last monitor reading
//                  (or the enrolment) to within 10 minutes, indexed by `byFeed` for the stale-feed sweep
//   outbox record  pk = patientId, sk = "outbox#<id>"            kind = "outbox"  record = "notification" with
//                  notification (JSON), or record = "alert" with alert (JSON, a low-SpO2 warning raised or cleared);
//                  restoredAt (ms) on one `crs restore` wrote again because it was never paged by the restore's
//                  instant (restore-unpaged.ts, 2026-12-07): the pages the notifier opens for it carry it
//   restore        pk = "#restore", sk = "restore"              kind = "restore", restoredAt, takenAt (ms): the last
//                  `crs restore --backend aws` (2026-12-07); a patient with no state item starts with its sequence
//                  moved on by restoredAt (DynamoStateStore.firstState)
// Outbox records sit in their patient's partition and are written in the same transaction as the state (and the
// audit entries of the same messages, in the audit table, and the messages in the seen-messages table). A save
// with nothing but the state and its messages is a plain conditional put of the state item (dynamo-state-store.ts).
//
// Pages table, partition key `pk` + sort key `sk`:
//   page           pk = patientId, sk = "page#<pageId>"          page (JSON), rev, status, triggeredAt; while the
//                  page has something to do (open, held, or a send pending) dueShard = "page", dueAt (ms; 0 when
//                  it is held or a send is pending), indexed by `byDue` for the escalation tick
//   silence        pk = "#silences", sk = "<silenceId>"          silence (JSON), until (ms)
//   stale feed     pk = "#stale-feeds", sk = patientId           alertId, since: a stale-feed alert in force
//   parked send    pk = "#parked", sk = "<pageId>#<level>#<round>"  send (JSON): a send SNS refused a few times,
//                  set aside so the pages behind it go on (`crs outbox list|retry --backend aws`)
//   parked record  pk = "#parked", sk = "record#<patientId>#<outbox sk>"  record (JSON, with the stream image): an
//                  outbox record the notifier could not page because of the record itself (same commands)
// A page sits in its patient's partition so that a patient's open pages are read consistently (a grade 3 that
// follows a grade 2 within milliseconds must find the grade 2 page to supersede it). Every pageId starts with
// "<subject>|<patientId>|" (shared/domain/page.ts notificationId, and the alert ids), and a patientId cannot
// contain "|", so the partition of a page is known from its id.
//
// Audit table, partition key `patientId` + sort key `sk` = "<at>|<hash of auditKey>": append-only (conditional
// puts; the functions may only PutItem and Query it). `written` orders entries of the same instant. The assessment
// of a message applied for the first time is not here but in its seen-messages item (below), or pending in the
// patient's state item until that is put: the audit trail is the three together (DynamoAuditLog.forPatient).
//
// Tokens table, partition key `tokenHash`, index `byTokenId` on `tokenId`.
//
// Seen-messages table (every message applied, but those pending in their state item), partition key `patientId` +
// sort key `messageId`, attribute `digests` (string set): every content digest the id was accepted with; no expiry
// (a duplicate is a duplicate however late). Read before grading (BatchGetItem, consistent). Put only if absent:
// by the patient's next save for a message that changed no grade, or in the transaction of a grade change (with
// ReturnValuesOnConditionCheckFailure=ALL_OLD: an id found after all fails it with its digests, and the patient is
// graded again knowing them). A table of its own: no stream (the state table's stream
// carries what the notifier needs, not one record per message), and small items. The put also carries `entries`
// (binary: [entry, written] pairs as JSON, deflated with a preset dictionary behind a marker byte (audit-dictionary.ts),
// each entry without the patientId and messageId the key says; items written before hold them deflated without it, or
// a list of {entry (JSON), written}): the message's assessment audit entry, so that a message costs one item
// besides the state, not two (docs/cost.md); a later update only ADDs a digest (a reused id, whose assessment goes
// to the audit table), and the functions' roles may update nothing else.
export const STATE_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  stateSortKey: 'state',
  outboxSortKeyPrefix: 'outbox#',
  kindAttribute: 'kind',
  outboxKind: 'outbox',
  stateKind: 'state',
  /** The compact state, deflated (binary). */
  stateAttribute: 's',
  /** The state as JSON (version 1 or 2), in items written before the compact form. */
  legacyStateAttribute: 'state',
  ttlAttribute: 'expiresAt',
  /** What an outbox record carries: a grade change for the pager, or a technical alert. */
  recordAttribute: 'record',
  /** An outbox record written again by `crs restore` (restore-unpaged.ts): the restore's moment, epoch ms. */
  restoredAtAttribute: 'restoredAt',
  feedIndex: 'byFeed',
  feedShardAttribute: 'feedShard',
  feedShard: 'feed',
  feedSinceAttribute: 'feedSince',
} as const;

export const PAGES_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  pageSortKeyPrefix: 'page#',
  silencesPartition: '#silences',
  staleFeedsPartition: '#stale-feeds',
  parkedPartition: '#parked',
  /** Short acknowledge links (shared/app/ack.ts): sort key the SHA-256 of the token. */
  ackLinksPartition: '#ack-links',
  parkedRecordPrefix: 'record#',
  dueIndex: 'byDue',
  dueShardAttribute: 'dueShard',
  dueShard: 'page',
  dueAtAttribute: 'dueAt',
  ttlAttribute: 'expiresAt',
} as const;

export const AUDIT_TABLE = { partitionKey: 'patientId', sortKey: 'sk' } as const;

export const SEEN_TABLE = {
  partitionKey: 'patientId',
  sortKey: 'messageId',
  digestsAttribute: 'digests',
  entriesAttribute: 'entries',
} as const;

export const TOKENS_TABLE = {
  partitionKey: 'tokenHash',
  tokenIdIndex: 'byTokenId',
  tokenIdAttribute: 'tokenId',
} as const;

/** Outbox records are kept this long, then DynamoDB's TTL drops them (the audit table keeps the history). */
export const OUTBOX_RETENTION_DAYS = 30;

/** Silences are kept this long after they end (the audit table keeps their history). */
export const SILENCE_RETENTION_DAYS = 30;

/** A DynamoDB TTL value (epoch seconds, as text): `days` after the time `ms`. */
export const ttlAfter = (ms: number, days: number): string => String(Math.floor(ms / 1000) + days * 86_400);

/** The patient a page belongs to, from its id ("<subject>|<patientId>|..."). */
export function patientOfPageId(pageId: string): string | undefined {
  const parts = pageId.split('|');
  return parts.length >= 3 && parts[1] !== '' ? parts[1] : undefined;
}
