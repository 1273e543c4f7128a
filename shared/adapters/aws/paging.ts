// The pager on AWS: the shared Pager (shared/app/pager.ts) over DynamoDB pages and audit, SNS pages and SQS
// escalation timers, with the acknowledge-link secret from Secrets Manager. The notify, escalate and ack functions
// build it from the environment the stack gives them; `crs silence` builds the same from an operator's settings.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { Pager } from '#app/pager.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { AuditEvent, AuditLog, PageMessage, PageSender, ParkedSend } from '#ports';
import { readAckSecret } from './ack-secret.ts';
import { DynamoAuditLog } from './dynamo-audit-log.ts';
import { ENV, gradingConfigFromEnv, requireEnv } from './env.ts';
import { DynamoPageStore, DynamoParkedRecords, DynamoParkedSends } from './dynamo-page-store.ts';
import { DynamoStateStore } from './dynamo-state-store.ts';
import { SnsPageSender } from './sns-page-sender.ts';
import { SqsTimer, withTimers } from './sqs-timer.ts';

export { readAckSecret } from './ack-secret.ts';

export interface AwsPagingSettings {
  config: GradingConfig;
  ackSecret: Buffer;
  ackBaseUrl: string;
  pagesTable: string;
  auditTable: string;
  /** For the page's full content (the grade change in the outbox), the ward, and the stale-feed sweep. */
  stateTable?: string;
  /** Absent: this pager never sends (the ack function: acknowledging sends nothing). */
  topicArn?: string;
  /** Absent: no timers are set (the schedule's minute tick still runs the ladders). */
  escalationQueueUrl?: string;
}

export interface AwsPagingClients {
  dynamodb: DynamoDBClient;
  sns?: SNSClient;
  sqs?: SQSClient;
}

export interface AwsPagingHooks {
  /** Every page published (for a metric). */
  onSent?: (m: PageMessage) => void;
  /** Every audit entry written (metrics: exhausted ladders, refused links). */
  onAudit?: (e: AuditEvent) => void;
  /** A timer that could not be set (the minute tick covers it). */
  onTimerError?: (err: unknown) => void;
  /** A send SNS refused a few times, parked (a metric and an alarm, a log line by id). */
  onParked?: (send: ParkedSend) => void;
}

export interface AwsPaging {
  pager: Pager;
  pages: DynamoPageStore;
  parked: DynamoParkedSends;
  /** Outbox records the notifier parked (bad in themselves). */
  parkedRecords: DynamoParkedRecords;
  audit: AuditLog;
  states?: DynamoStateStore;
  sender?: SnsPageSender;
}

const refusingSender: PageSender = {
  send: async () => {
    throw new Error('this pager is not configured to send pages');
  },
};

/** `now`: the clock every store, the sender and the timers stamp with (the host's test clock on an emulator). */
export function awsPaging(
  s: AwsPagingSettings,
  clients: AwsPagingClients,
  hooks: AwsPagingHooks = {},
  now: () => number = Date.now,
): AwsPaging {
  // Pages are saved with the audit entries that say what changed, in one write (the audit table, append-only).
  const pages = new DynamoPageStore(clients.dynamodb, s.pagesTable, now, s.auditTable);
  const states = s.stateTable ? new DynamoStateStore(clients.dynamodb, s.stateTable, now) : undefined;
  const audit: AuditLog = new DynamoAuditLog(clients.dynamodb, s.auditTable, now);
  let sender: SnsPageSender | undefined;
  if (s.topicArn) {
    if (!clients.sns || !states) throw new Error('a pager that sends needs SNS and the state table');
    sender = new SnsPageSender(
      clients.sns,
      s.topicArn,
      {
        notification: (patientId, id) => states.notification(patientId, id),
        ward: async (patientId) => (await states.load(patientId))?.state.enrolment.ward?.v ?? null,
      },
      now,
    );
  }
  const send: PageSender = sender
    ? {
        send: async (m) => {
          await sender!.send(m);
          hooks.onSent?.(m);
        },
      }
    : refusingSender;
  const store =
    s.escalationQueueUrl && clients.sqs
      ? withTimers(pages, new SqsTimer(clients.sqs, s.escalationQueueUrl, now), hooks.onTimerError ?? (() => undefined))
      : pages;
  const parked = new DynamoParkedSends(clients.dynamodb, s.pagesTable);
  const pager = new Pager({
    pages: store,
    sender: send,
    audit,
    config: s.config.paging,
    ackSecret: s.ackSecret,
    ackBaseUrl: s.ackBaseUrl,
    parked,
    ...(hooks.onParked ? { onParked: hooks.onParked } : {}),
    ...(hooks.onAudit ? { onAudited: hooks.onAudit } : {}),
  });
  const parkedRecords = new DynamoParkedRecords(clients.dynamodb, s.pagesTable);
  return { pager, pages, parked, parkedRecords, audit, ...(states ? { states } : {}), ...(sender ? { sender } : {}) };
}

/**
 * The pager of a function that sends (notify, escalate), from the environment the stack gives it: read on the first invocation (the secret
 * needs a network call, which a module import must not make) and kept for the life of the container.
 */
export async function awsPagingFromEnv(
  env: NodeJS.ProcessEnv,
  clients: AwsPagingClients & { secrets: SecretsManagerClient },
  hooks: AwsPagingHooks = {},
  now: () => number = Date.now,
): Promise<AwsPaging & { config: GradingConfig; ackSecret: Buffer }> {
  const config = gradingConfigFromEnv(env);
  const ackSecret = await readAckSecret(clients.secrets, requireEnv(ENV.ackSecretArn, env));
  const paging = awsPaging(
    {
      config,
      ackSecret,
      ackBaseUrl: requireEnv(ENV.ackBaseUrl, env),
      pagesTable: requireEnv(ENV.pagesTable, env),
      auditTable: requireEnv(ENV.auditTable, env),
      stateTable: requireEnv(ENV.stateTable, env),
      topicArn: requireEnv(ENV.topicArn, env),
      escalationQueueUrl: requireEnv(ENV.escalationQueueUrl, env),
    },
    clients,
    hooks,
    now,
  );
  return { ...paging, config, ackSecret };
}
