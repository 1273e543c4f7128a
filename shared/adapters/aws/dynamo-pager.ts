// The pager over the DynamoDB tables, as every function and the operator's CLI run it: pages saved with their
// audit entries in one write, the append-only audit log, parked sends, the metric hooks. How pages go out (SNS)
// and how timers are set (SQS) are the caller's to give (paging.ts), so that a function that sends nothing (ack)
// loads neither client.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AckKeysSource } from '#app/ack-keys.ts';
import { Pager } from '#app/pager.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { AuditEvent, AuditLog, PageSender, PageStore, ParkedSend, SecurityEvent } from '#ports';
import { DynamoAuditLog } from './dynamo-audit-log.ts';
import { DynamoPageStore, DynamoParkedSends } from './dynamo-page-store.ts';

export interface DynamoPagerSettings {
  config: GradingConfig;
  ackSecret: Buffer;
  /** The key before the last rotation (the ack function's AWSPREVIOUS): links it signed verify until they expire. */
  previousAckSecret?: Buffer | undefined;
  /** Where a function's keys are read again as they age, and for a link that looks forged (ack-secret.ts). */
  ackKeysSource?: AckKeysSource;
  ackBaseUrl: string;
  pagesTable: string;
  auditTable: string;
  /** Pause between the tries of a send SNS refuses, ms, doubling (REFUSED_DELAY_MS). */
  refusedDelayMs?: number;
  /** Teams with no endpoint in the paging config deployed (PagerDeps.unreachable). */
  unreachable?: ReadonlySet<string>;
}

export interface DynamoPagerHooks {
  /** Every audit entry written (metrics: escalations, exhausted ladders, acknowledgements, refused links). */
  onAudit?: (e: AuditEvent) => void;
  /** A send SNS refused a few times, parked (a metric and an alarm, a log line by id). */
  onParked?: (send: ParkedSend) => void;
  /** A forged or malformed acknowledge link (never in a patient's trail): the function's log is its security log. */
  onSecurity?: (e: SecurityEvent) => void;
}

export interface DynamoPager {
  pager: Pager;
  pages: DynamoPageStore;
  parked: DynamoParkedSends;
  audit: AuditLog;
}

const refusingSender: PageSender = {
  send: async () => {
    throw new Error('this pager is not configured to send pages');
  },
};

/**
 * `sender`: absent for a pager that never sends (acknowledging sends nothing). `withTimers`: wraps the page store
 * so that saving a page sets its escalation timer (absent: the schedule's minute tick runs the ladders alone).
 */
export function dynamoPager(
  s: DynamoPagerSettings,
  dynamodb: DynamoDBClient,
  delivery: { sender?: PageSender; withTimers?: (pages: PageStore) => PageStore },
  hooks: DynamoPagerHooks = {},
  now: () => number = Date.now,
): DynamoPager {
  const pages = new DynamoPageStore(dynamodb, s.pagesTable, now, s.auditTable);
  const audit = new DynamoAuditLog(dynamodb, s.auditTable, now);
  const parked = new DynamoParkedSends(dynamodb, s.pagesTable);
  const pager = new Pager({
    pages: delivery.withTimers ? delivery.withTimers(pages) : pages,
    sender: delivery.sender ?? refusingSender,
    audit,
    config: s.config.paging,
    ackSecret: s.ackSecret,
    previousAckSecret: s.previousAckSecret,
    ...(s.ackKeysSource ? { ackKeysSource: s.ackKeysSource } : {}),
    ackBaseUrl: s.ackBaseUrl,
    ...(s.unreachable ? { unreachable: s.unreachable } : {}),
    parked,
    ...(s.refusedDelayMs !== undefined ? { refusedDelayMs: s.refusedDelayMs } : {}),
    ...(hooks.onParked ? { onParked: hooks.onParked } : {}),
    ...(hooks.onAudit ? { onAudited: hooks.onAudit } : {}),
    ...(hooks.onSecurity ? { security: { record: async (e: SecurityEvent) => hooks.onSecurity!(e) } } : {}),
  });
  return { pager, pages, parked, audit };
}
