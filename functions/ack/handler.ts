// Ack Lambda behind the HTTP API: acknowledge links from a phone, without a login (the signed, expiring token is
// the authority), and the same for apps and integration engines.
//   GET  /ack/{token}   the page's summary and a form asking for a name. Never acknowledges: SMS and chat apps
//                       fetch links to preview them.
//   POST /ack/{token}   the form: acknowledges (by=<name>, form-encoded), answers a small HTML page.
//   POST /v1/acks       {"token", "by"}: acknowledges, answers JSON.
// A forged, altered or expired token is refused (403) and the refusal is audited by the pager. Logs carry ids only:
// the name typed stays in the pages and audit tables.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { ACK_BODY_LIMIT, ACK_NAME_MAX, checkAckName, verifyAck, type AckVerification } from '../../shared/app/ack.ts';
import { Pager } from '../../shared/app/pager.ts';
import { awaitsAcknowledgement, roleOf, type AckResult, type Page, type PagingConfig } from '../../shared/domain/paging.ts';
import { formatSiteTime, iso } from '../../shared/domain/time.ts';
import { ACK_PAGE_HEADERS, LINK_REFUSALS, ackErrorPage, ackFormPage, ackStatusPage, closedText } from '../../shared/server/ack-page.ts';
import { readAckSecret } from '../../shared/adapters/aws/ack-secret.ts';
import { DynamoAuditLog } from '../../shared/adapters/aws/dynamo-audit-log.ts';
import { DynamoPageStore } from '../../shared/adapters/aws/dynamo-page-store.ts';
import { ENV, gradingConfigFromEnv, requireEnv } from '../../shared/adapters/aws/env.ts';
import { errorName, pagingMetrics, telemetry, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';

const TOKEN = /^[A-Za-z0-9._-]{1,2048}$/;

export interface AckPaging {
  pager: Pick<Pager, 'acknowledgeLink'>;
  page(pageId: string): Promise<Page | undefined>;
  verify(token: string, now: number): AckVerification;
  config: PagingConfig;
  /** The site's zone (config.site.timeZone): the acknowledge page's times. */
  timeZone: string;
}

export interface AckHandlerDeps extends Telemetry {
  paging: () => Promise<AckPaging>;
  now: () => number;
}

type Result = APIGatewayProxyStructuredResultV2;

const html = (statusCode: number, body: string): Result => ({ statusCode, headers: { ...ACK_PAGE_HEADERS }, body });
const json = (statusCode: number, value: unknown): Result => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
  body: JSON.stringify(value),
});

function bodyOf(event: APIGatewayProxyEventV2): string {
  const raw = event.body ?? '';
  return event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
}

/** What the JSON API tells about a page after an acknowledgement (ids, team, level, who and when). */
const pageSummary = (p: Page) => ({
  pageId: p.pageId,
  patientId: p.patientId,
  team: p.team,
  status: p.status,
  level: p.level,
  ...(p.ack ? { ack: { by: p.ack.by, at: iso(p.ack.at), via: p.ack.via } } : {}),
});

export function createAckHandler(deps: AckHandlerDeps) {
  const { logger } = deps;

  const logResult = (how: string, r: AckResult) => {
    if (r.ok) logger.info(r.changed ? 'acknowledged' : 'already acknowledged', { via: how, pageId: r.page.pageId, patientId: r.page.patientId });
    else logger.warn('acknowledgement refused', { via: how, reason: r.reason });
  };

  async function api(event: APIGatewayProxyEventV2): Promise<Result> {
    const example = '{"token": "<from the acknowledge link>", "by": "your name"}';
    const text = bodyOf(event);
    if (Buffer.byteLength(text) > ACK_BODY_LIMIT) return json(413, { errors: [`body: more than ${ACK_BODY_LIMIT} bytes`] });
    if (!/^application\/json\b/i.test(event.headers?.['content-type'] ?? '')) return json(415, { errors: [`content-type: send application/json, e.g. ${example}`] });
    let body: Record<string, unknown>;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return json(400, { errors: [`body: not a JSON object, e.g. ${example}`] });
    }
    const errors: string[] = [];
    if (typeof body.token !== 'string' || !TOKEN.test(body.token)) errors.push('token: is required (the last part of the acknowledge link)');
    const name = checkAckName(body.by);
    if (!name.ok) errors.push(name.error);
    if (errors.length > 0 || !name.ok) return json(400, { errors });
    const { pager } = await deps.paging();
    const r = await pager.acknowledgeLink(body.token as string, name.name, deps.now());
    logResult('api', r);
    if (!r.ok) return json(r.reason.startsWith('acknowledge link') ? 403 : r.reason === 'no such page' ? 404 : 409, { error: r.reason });
    return json(200, { acknowledged: true, changed: r.changed, page: pageSummary(r.page) });
  }

  async function link(event: APIGatewayProxyEventV2, token: string): Promise<Result> {
    const paging = await deps.paging();
    const now = deps.now();
    const v = paging.verify(token, now);
    const role = (page: Page) => (v.ok ? v.claims.role : roleOf(page, paging.config));
    if (event.requestContext.http.method === 'POST') {
      const text = bodyOf(event);
      if (Buffer.byteLength(text) > ACK_BODY_LIMIT) return html(413, ackErrorPage('Too long', `The form sent too much; type a name of up to ${ACK_NAME_MAX} characters.`));
      const name = checkAckName(new URLSearchParams(text).get('by') ?? undefined);
      if (!name.ok && v.ok) {
        const page = await paging.page(v.claims.pageId);
        if (page) return html(400, ackFormPage(page, v.claims.role, ACK_NAME_MAX, paging.timeZone, name.error.replace(/^by: /, 'Your name: ')));
      }
      // A refused link is refused (and audited) whatever the name says.
      const r = await paging.pager.acknowledgeLink(token, name.ok ? name.name : '(no name)', now);
      logResult('link', r);
      if (!r.ok) {
        const reason = r.reason.replace('acknowledge link ', '');
        if (r.reason.startsWith('acknowledge link')) return html(403, ackErrorPage('Link refused', LINK_REFUSALS[reason] ?? reason));
        if (r.reason === 'no such page') return html(404, ackErrorPage('No such page', 'There is no record of this page.'));
        const page = v.ok ? await paging.page(v.claims.pageId) : undefined;
        return page
          ? html(409, ackStatusPage(page, role(page), 'Nothing to acknowledge', closedText(page.status), false, paging.timeZone))
          : html(409, ackErrorPage('Nothing to acknowledge', r.reason));
      }
      const p = r.page;
      const ack = p.ack!;
      const detail = r.changed
        ? `Recorded: ${ack.by} at ${formatSiteTime(ack.at, paging.timeZone)}. Nobody else on this ladder will be paged for it.`
        : `It was already acknowledged by ${ack.by} at ${formatSiteTime(ack.at, paging.timeZone)} (via ${ack.via}).`;
      return html(200, ackStatusPage(p, role(p), r.changed ? 'Acknowledged' : 'Already acknowledged', detail, true, paging.timeZone));
    }
    if (!v.ok) return html(403, ackErrorPage('Link refused', LINK_REFUSALS[v.reason] ?? v.reason));
    const page = await paging.page(v.claims.pageId);
    if (!page) return html(404, ackErrorPage('No such page', 'There is no record of this page.'));
    if (awaitsAcknowledgement(page)) return html(200, ackFormPage(page, v.claims.role, ACK_NAME_MAX, paging.timeZone));
    if (page.status === 'acknowledged' && page.ack) {
      return html(200, ackStatusPage(page, v.claims.role, 'Already acknowledged', `Acknowledged by ${page.ack.by} at ${formatSiteTime(page.ack.at, paging.timeZone)} (via ${page.ack.via}).`, true, paging.timeZone));
    }
    return html(200, ackStatusPage(page, v.claims.role, 'Nothing to acknowledge', closedText(page.status), false, paging.timeZone));
  }

  return async (event: APIGatewayProxyEventV2, context?: Context): Promise<Result> => {
    if (context) logger.addContext(context);
    try {
      const method = event.requestContext.http.method;
      const path = event.rawPath;
      if (method === 'POST' && path === '/v1/acks') return await api(event);
      const token = event.pathParameters?.token ?? path.match(/^\/ack\/([^/]+)$/)?.[1];
      if ((method === 'GET' || method === 'POST') && token !== undefined && path.startsWith('/ack/')) {
        if (!TOKEN.test(token)) return html(403, ackErrorPage('Link refused', LINK_REFUSALS.malformed!));
        return await link(event, token);
      }
      return json(404, { error: 'no such route' });
    } catch (err) {
      logger.error('acknowledgement failed', { error: errorName(err) });
      throw err;
    } finally {
      deps.metrics.publishStoredMetrics();
    }
  };
}

/**
 * The pager as the ack function needs it: pages and audit, the link key; acknowledging sends nothing, so it has no
 * sender (and its bundle loads no SNS or SQS client).
 */
async function ackPaging(dynamodb: DynamoDBClient, secrets: SecretsManagerClient, t: Telemetry): Promise<AckPaging> {
  const config = gradingConfigFromEnv();
  const ackSecret = await readAckSecret(secrets, requireEnv(ENV.ackSecretArn));
  const pages = new DynamoPageStore(dynamodb, requireEnv(ENV.pagesTable));
  const dynamoAudit = new DynamoAuditLog(dynamodb, requireEnv(ENV.auditTable));
  const { onAudit } = pagingMetrics(t);
  const pager = new Pager({
    pages,
    audit: {
      append: async (events) => {
        await dynamoAudit.append(events);
        events.forEach(onAudit);
      },
      forPatient: (patientId) => dynamoAudit.forPatient(patientId),
    },
    sender: {
      send: async () => {
        throw new Error('the ack function sends no page');
      },
    },
    config: config.paging,
    ackSecret,
    ackBaseUrl: requireEnv(ENV.ackBaseUrl),
  });
  // The GET of a link verifies it with the same key, without acknowledging.
  return { pager, page: (id) => pages.get(id), verify: (token, now) => verifyAck(ackSecret, token, now), config: config.paging, timeZone: config.site.timeZone };
}

function liveDeps(): AckHandlerDeps {
  const t = telemetry('ack');
  const dynamodb = new DynamoDBClient({});
  const secrets = new SecretsManagerClient({});
  let paging: Promise<AckPaging> | undefined;
  return {
    paging: () =>
      (paging ??= ackPaging(dynamodb, secrets, t).catch((err: unknown) => {
        paging = undefined; // a failed cold start (the secret unreadable) is tried again on the next invocation
        throw err;
      })),
    now: Date.now,
    ...t,
  };
}

export const handler = createAckHandler(liveDeps());
