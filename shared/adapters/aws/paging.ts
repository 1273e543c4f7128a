// The pager on AWS: the pager over DynamoDB (dynamo-pager.ts) with SNS pages and SQS escalation timers, and the
// acknowledge-link secret from Secrets Manager. The notify and escalate functions build it from the environment
// the stack gives them; `crs silence` builds the same from an operator's settings. The ack function, which sends
// nothing, builds the DynamoDB part alone.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { GradingConfig } from '#domain/config.ts';
import type { PageMessage, PageStore } from '#ports';
import { ackKeysFromEnv } from './ack-secret.ts';
import { dynamoPager, type DynamoPager, type DynamoPagerHooks, type DynamoPagerSettings } from './dynamo-pager.ts';
import { ENV, requireEnv } from './env.ts';
import { loadGradingConfig } from './load-grading-config.ts';
import { DynamoParkedRecords } from './dynamo-page-store.ts';
import { DynamoStateStore } from './dynamo-state-store.ts';
import { SnsPageSender } from './sns-page-sender.ts';
import { SqsTimer, withTimers } from './sqs-timer.ts';

export { readAckSecret } from './ack-secret.ts';

export interface AwsPagingSettings extends DynamoPagerSettings {
  /** For the page's full content (the grade change in the outbox), the ward, and the stale-feed sweep. */
  stateTable?: string;
  /** Absent: this pager never sends. */
  topicArn?: string;
  /** Absent: no timers are set (the schedule's minute tick still runs the ladders). */
  escalationQueueUrl?: string;
}

export interface AwsPagingClients {
  dynamodb: DynamoDBClient;
  sns?: SNSClient;
  sqs?: SQSClient;
}

export interface AwsPagingHooks extends DynamoPagerHooks {
  /** Every page published (for a metric). */
  onSent?: (m: PageMessage) => void;
  /** A timer that could not be set (the minute tick covers it). */
  onTimerError?: (err: unknown) => void;
  /** The link key could not be read again (the key held signs): a metric, a log line. */
  onAckKeysReadFailed?: (err: unknown) => void;
}

export interface AwsPaging extends DynamoPager {
  /** Outbox records the notifier parked (bad in themselves). */
  parkedRecords: DynamoParkedRecords;
  states?: DynamoStateStore;
  sender?: SnsPageSender;
}

/** `now`: the clock every store, the sender and the timers stamp with (the host's test clock on an emulator). */
export function awsPaging(
  s: AwsPagingSettings,
  clients: AwsPagingClients,
  hooks: AwsPagingHooks = {},
  now: () => number = Date.now,
): AwsPaging {
  const states = s.stateTable ? new DynamoStateStore(clients.dynamodb, s.stateTable, now) : undefined;
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
      s.config.site.timeZone,
      now,
    );
  }
  const sqs = s.escalationQueueUrl && clients.sqs ? new SqsTimer(clients.sqs, s.escalationQueueUrl, now) : undefined;
  const paging = dynamoPager(
    s,
    clients.dynamodb,
    {
      ...(sender
        ? {
            sender: {
              send: async (m: PageMessage) => {
                await sender!.send(m);
                hooks.onSent?.(m);
              },
            },
          }
        : {}),
      ...(sqs
        ? { withTimers: (pages: PageStore) => withTimers(pages, sqs, hooks.onTimerError ?? (() => undefined)) }
        : {}),
    },
    hooks,
    now,
  );
  const parkedRecords = new DynamoParkedRecords(clients.dynamodb, s.pagesTable);
  return { ...paging, parkedRecords, ...(states ? { states } : {}), ...(sender ? { sender } : {}) };
}

/**
 * The pager of a function that sends (notify, escalate), from the environment the stack gives it: read on the first
 * invocation (the secret needs a network call, which a module import must not make) and kept for the life of the
 * container; the link key in it is read again once ACK_KEYS_MAX_AGE_MS old (ack-secret.ts), before a link is signed.
 */
export async function awsPagingFromEnv(
  env: NodeJS.ProcessEnv,
  clients: AwsPagingClients & { secrets: SecretsManagerClient },
  hooks: AwsPagingHooks = {},
  now: () => number = Date.now,
): Promise<AwsPaging & { config: GradingConfig; ackSecret: Buffer }> {
  const config = await loadGradingConfig(env);
  // These functions only sign: AWSCURRENT alone.
  const keys = await ackKeysFromEnv(clients.secrets, {
    verifies: false,
    now: now(),
    onReadFailed: hooks.onAckKeysReadFailed,
    env,
  });
  const paging = awsPaging(
    {
      config,
      ...keys,
      ackBaseUrl: requireEnv(ENV.ackBaseUrl, env),
      pagesTable: requireEnv(ENV.pagesTable, env),
      auditTable: requireEnv(ENV.auditTable, env),
      stateTable: requireEnv(ENV.stateTable, env),
      topicArn: requireEnv(ENV.topicArn, env),
      escalationQueueUrl: requireEnv(ENV.escalationQueueUrl, env),
      ...teamsWithoutEndpoints(env),
    },
    clients,
    hooks,
    now,
  );
  return { ...paging, config, ackSecret: keys.ackSecret };
}

/**
 * The teams the stack says have no endpoint (ENV.teamsWithoutEndpoints: the functions' variable, or the operator's
 * from the stack's output TeamsWithoutEndpoints), as the pager takes them.
 */
export function teamsWithoutEndpoints(env: Readonly<Record<string, string | undefined>>): {
  unreachable?: ReadonlySet<string>;
} {
  const teams = (env[ENV.teamsWithoutEndpoints] ?? '').split(',').filter(Boolean);
  return teams.length > 0 ? { unreachable: new Set(teams) } : {};
}
