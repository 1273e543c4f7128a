// How the core's records sit in DynamoDB. Shared by the adapters, the notifier's stream decoding and the CDK
// stack (its stream filter), so that the three cannot drift apart.
//
// State table (one per deployment), partition key `pk` + sort key `sk`:
//   patient state  pk = patientId, sk = "state"                    kind = "state"   version, state (JSON)
//   outbox record  pk = patientId, sk = "outbox#<notificationId>"  kind = "outbox"  notification (JSON)
// Outbox records sit in their patient's partition and are written in the same transaction as the state.
// Deliveries table (the outbox ledger), partition key `notificationId`: one item per published page.
// Tokens table, partition key `tokenHash`, index `byTokenId` on `tokenId`.
export const STATE_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  stateSortKey: 'state',
  outboxSortKeyPrefix: 'outbox#',
  kindAttribute: 'kind',
  outboxKind: 'outbox',
  stateKind: 'state',
  ttlAttribute: 'expiresAt',
} as const;

export const DELIVERIES_TABLE = { partitionKey: 'notificationId', ttlAttribute: 'expiresAt' } as const;

export const TOKENS_TABLE = { partitionKey: 'tokenHash', tokenIdIndex: 'byTokenId', tokenIdAttribute: 'tokenId' } as const;

/** Outbox records and delivery marks are kept this long (an audit trail of pages), then DynamoDB's TTL drops them. */
export const OUTBOX_RETENTION_DAYS = 30;
