// Ack Lambda behind the HTTP API: acknowledge links from a phone, without a login (the signed, expiring token is
// the authority), and the same for apps and integration engines.
//   GET  /ack/{token}   the page's summary and a form asking for a name. Never acknowledges: SMS and chat apps
//                       fetch links to preview them.
//   POST /ack/{token}   the form: acknowledges (by=<name>, form-encoded), answers a small HTML page.
//   POST /v1/acks       {"token", "by"}: acknowledges, answers JSON.
// A forged, altered or expired token is refused (403): an expired (genuine) one in the patient's audit trail, a forged
// or malformed one in the function's log as a security event with the client's address and what the token claimed
// (never in a patient's trail). Other logs carry ids only: the name typed stays in the pages and audit tables.
// Per-address rate limits are API Gateway's to give (the routes' throttles; a WAF rate rule per IP: docs/security.md).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import {
  ACK_ROUTES,
  acknowledgeByApi,
  linkFailed,
  restoredFromOf,
  showLink,
  submitLink,
  type AckAnswer,
  type AckFlowDeps,
} from '#app/ack-flow.ts';
import type { Pager } from '#app/pager.ts';
import type { Page, PagingConfig } from '#domain/paging.ts';
import { ackKeysFromEnv } from '#adapters/aws/ack-secret.ts';
import { dynamoPager } from '#adapters/aws/dynamo-pager.ts';
import { readRestore } from '#adapters/aws/restore.ts';
import { ENV, requireEnv } from '#adapters/aws/env.ts';
import { loadGradingConfig } from '#adapters/aws/load-grading-config.ts';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  METRIC,
  errorName,
  pagingMetrics,
  telemetry,
  thrownToRuntime,
  type Telemetry,
  flushMetrics,
} from '#adapters/aws/telemetry.ts';
import { coldStart } from '#adapters/aws/cold-start.ts';

export interface AckPaging {
  pager: Pick<Pager, 'acknowledgeLink' | 'verifyLink'>;
  page(pageId: string): Promise<Page | undefined>;
  config: PagingConfig;
  /** The site's zone (config.site.timeZone): the acknowledge page's times. */
  timeZone: string;
  /**
   * The last `crs restore --backend aws` (the State table's restore record; undefined: none, or not readable): a link
   * the restored Pages table does not know is then said to be maybe one sent after the backup (2026-12-07).
   */
  restore?: () => Promise<{ restoredAt: number; takenAt: number } | undefined>;
}

export interface AckHandlerDeps extends Telemetry {
  paging: () => Promise<AckPaging>;
  now: () => number;
}

type Result = APIGatewayProxyStructuredResultV2;

function bodyOf(event: APIGatewayProxyEventV2): string {
  const raw = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
}

/** API Gateway serves the function over HTTPS only: each answer says so (HSTS). */
const TRANSPORT = { httpsOnly: true } as const;

export function createAckHandler(deps: AckHandlerDeps) {
  const { logger } = deps;

  /** The shared flow over this function's pager and pages table. */
  async function flow(): Promise<AckFlowDeps> {
    const paging = await deps.paging();
    const restore = await paging.restore?.();
    return {
      acknowledgeLink: (token, by, client) => paging.pager.acknowledgeLink(token, by, deps.now(), client),
      verify: (token) => paging.pager.verifyLink(token, deps.now()),
      page: (id) => paging.page(id),
      config: paging.config,
      timeZone: paging.timeZone,
      board: false, // there is no board on AWS
      restoredFrom: () => restoredFromOf(restore, deps.now(), paging.config.ackLinkMinutes),
      ...TRANSPORT,
    };
  }

  const answer = (how: string, a: AckAnswer): Result => {
    if (a.page)
      logger.info(a.outcome === 'acknowledged' ? 'acknowledged' : 'already acknowledged', {
        via: how,
        pageId: a.page.pageId,
        patientId: a.page.patientId,
      });
    // A page whose item cannot be read: by id, at error (the operators mend the item; the tick names it too).
    else if (a.unreadable !== undefined)
      logger.error('acknowledgement refused', { via: how, outcome: a.outcome, pageId: a.unreadable });
    else if (a.outcome !== 'shown' && a.outcome !== 'failed')
      logger.warn('acknowledgement refused', { via: how, outcome: a.outcome });
    return { statusCode: a.status, headers: a.headers, body: a.body };
  };

  return async (event: APIGatewayProxyEventV2, context?: Context): Promise<Result> => {
    if (context) logger.addContext(context);
    try {
      const method = event.requestContext.http.method;
      const path = event.rawPath;
      const client = event.requestContext.http.sourceIp;
      if (method === 'POST' && path === ACK_ROUTES.api) {
        return answer(
          'api',
          await acknowledgeByApi(
            {
              contentType: event.headers?.['content-type'],
              contentEncoding: event.headers?.['content-encoding'],
              body: bodyOf(event),
              client,
            },
            await flow(),
          ),
        );
      }
      const token = event.pathParameters?.token ?? path.match(/^\/ack\/([^/]+)$/)?.[1];
      if (token !== undefined && path.startsWith('/ack/') && (method === 'GET' || method === 'POST')) {
        try {
          if (method === 'GET') return answer('link', await showLink(token, await flow()));
          return answer('link', await submitLink(token, { body: bodyOf(event), client }, await flow()));
        } catch (err) {
          // A phone gets a page saying nothing was recorded, not API Gateway's JSON; the failure is counted for
          // the AckErrors alarm (which watches this metric with the function's errors).
          logger.error('acknowledgement failed', { via: 'link', error: errorName(err) });
          deps.metrics.addMetric(METRIC.ackLinkFailures, MetricUnit.Count, 1);
          return answer('link', linkFailed(method, TRANSPORT));
        }
      }
      return {
        statusCode: 404,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ errors: ['no such route'] }),
      };
    } catch (err) {
      logger.error('acknowledgement failed', { error: errorName(err) });
      throw thrownToRuntime(err);
    } finally {
      flushMetrics(deps.metrics);
    }
  };
}

/**
 * The pager as the ack function needs it: pages and audit, the link key; acknowledging sends nothing, so it has no
 * sender (and its bundle loads no SNS or SQS client).
 */
async function ackPaging(
  dynamodb: DynamoDBClient,
  secrets: SecretsManagerClient,
  t: Telemetry,
  now: () => number,
): Promise<AckPaging> {
  const config = await loadGradingConfig();
  const { onAudit, onSecurity, onAckKeysReadFailed } = pagingMetrics(t);
  // The pager every function runs, without SNS or SQS: acknowledging sends nothing and sets no timer.
  const { pager, pages } = dynamoPager(
    {
      config,
      // The key before the last rotation too: links sent under it are taken until they expire. Read again once 5
      // minutes old (a rotation, AWSPREVIOUS removed), and for a link under a key put since this container read its
      // keys: within a second for a link issued here, at most every 30 s for one that is not (2026-12-06).
      ...(await ackKeysFromEnv(secrets, { verifies: true, now: now(), onReadFailed: onAckKeysReadFailed })),
      ackBaseUrl: requireEnv(ENV.ackBaseUrl),
      pagesTable: requireEnv(ENV.pagesTable),
      auditTable: requireEnv(ENV.auditTable),
    },
    dynamodb,
    {},
    { onAudit, onSecurity },
    now,
  );
  const stateTable = process.env[ENV.stateTable];
  return {
    pager,
    page: (id) => pages.get(id),
    config: config.paging,
    timeZone: config.site.timeZone,
    ...(stateTable ? { restore: restoreReader(dynamodb, stateTable, now, t) } : {}),
  };
}

/** How long a warm container keeps the State table's restore record before it reads it again. */
export const RESTORE_RECORD_MAX_AGE_MS = 60_000;

/**
 * The State table's restore record (`crs restore --backend aws`), read at most once a minute: a restore runs with
 * the pipeline paused, but the ack function stays warm through it. A read that fails keeps what was read before (a
 * refusal's wording, never whether a link is taken, hangs on it).
 */
function restoreReader(
  dynamodb: DynamoDBClient,
  stateTable: string,
  now: () => number,
  t: Telemetry,
): () => Promise<{ restoredAt: number; takenAt: number } | undefined> {
  let held: { at: number; restore: { restoredAt: number; takenAt: number } | undefined } | undefined;
  return async () => {
    if (held === undefined || now() - held.at >= RESTORE_RECORD_MAX_AGE_MS) {
      try {
        held = { at: now(), restore: await readRestore(dynamodb, stateTable) };
      } catch (err) {
        t.logger.warn('restore record not read', { error: errorName(err) });
        held = { at: now(), restore: held?.restore };
      }
    }
    return held.restore;
  };
}

/** `now`: Date.now in Lambda; the host's clock when `crs serve --backend aws` runs the function. */
export function liveDeps(now: () => number = Date.now): AckHandlerDeps {
  const t = telemetry('ack');
  const dynamodb = new DynamoDBClient({});
  const secrets = new SecretsManagerClient({});
  return {
    paging: coldStart(() => ackPaging(dynamodb, secrets, t, now)),
    now,
    ...t,
  };
}

export const handler = createAckHandler(liveDeps());
