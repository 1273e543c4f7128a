// The HTTP host of `crs serve` (node:http): device ingest through handleIngest (the same code, statuses and auth
// as the Lambda), acknowledge links (GET shows, POST acknowledges) and the acknowledgement API, the board's static
// files, its JSON API (acknowledgements, silences, audit export) and its live event stream.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SqliteAuditLog } from '../adapters/embedded/audit.ts';
import type { BoardQueries } from '../adapters/embedded/board.ts';
import type { LaneHealth, ParkedRecord } from '../adapters/embedded/outbox.ts';
import type { DeliveryAlert } from './delivery-watch.ts';
import { ACK_BODY_LIMIT, ACK_NAME_MAX, checkAckName } from '../app/ack.ts';
import { auditCsvHeader, auditCsvRow, auditNdjsonRow } from '../app/audit-export.ts';
import { INGEST_LIMITS } from '../app/ingest.ts';
import { handleDeviceRequest, isDevicePath, type DeviceDeps } from '../adapters/interfaces/http.ts';
import { PAGE_TEAMS, awaitsAcknowledgement, roleOf, type PageTeam, type PagingConfig, type Silence } from '../domain/paging.ts';
import type { AckResult } from '../domain/paging.ts';
import { MINUTE, formatSiteTime, iso } from '../domain/time.ts';
import { ACK_PAGE_HEADERS, LINK_REFUSALS, ackErrorPage, ackFormPage, ackStatusPage, closedText } from './ack-page.ts';
import { BOARD_COOKIE, keyMatches } from './board-key.ts';
import { silenceView, type BoardApi } from './board-api.ts';
import type { EmbeddedPaging } from './paging.ts';
import type { SseHub } from './sse.ts';

export interface HostDeps {
  ingest: DeviceDeps;
  board: BoardApi;
  queries: BoardQueries;
  paging: EmbeddedPaging;
  /** The lanes, what they parked, the delivery watch's alerts, and putting parked records back (crs outbox). */
  outbox: {
    lanes(): LaneHealth[];
    parked(): ParkedRecord[];
    alerts(): DeliveryAlert[];
    retry(sink?: string, itemId?: string): number;
  };
  pagingConfig: PagingConfig;
  /** The site's zone (config.site.timeZone): the acknowledge page's times. */
  timeZone: string;
  audit: SqliteAuditLog;
  sse: SseHub;
  boardKey: string;
  now: () => number;
  /** Counts for /api/health (no patient data). */
  health: () => Record<string, unknown>;
  log: (line: string) => void;
}

const BOARD_DIR = new URL('../board/', import.meta.url);
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/board.css': { file: 'board.css', type: 'text/css; charset=utf-8' },
  '/board.js': { file: 'board.js', type: 'text/javascript; charset=utf-8' },
  '/chart.js': { file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};


/** Reads the body up to `limit` + 1 bytes (enough for the handler to answer 413); the rest is drained, not kept. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > limit) return;
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      resolve((body.length > limit + 1 ? body.subarray(0, limit + 1) : body).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  res.writeHead(status, { 'cache-control': 'no-store', ...headers });
  res.end(body);
}

const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  send(res, status, { 'content-type': 'application/json', ...SECURITY_HEADERS, ...headers }, JSON.stringify(body));

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function flatHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export const SILENCE_LIMITS = { maxMinutes: 24 * 60, reasonMax: 200 } as const;

/** Checks a silence request: exactly one scope, a duration, a reason and a name. */
export function checkSilence(body: Record<string, unknown>, now: number): { ok: true; silence: Silence } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const { patientId, team, minutes, reason } = body;
  let scope: Silence['scope'] | undefined;
  if ((patientId === undefined) === (team === undefined)) errors.push('scope: give either patientId or team, not both');
  else if (patientId !== undefined) {
    if (typeof patientId !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(patientId)) errors.push('patientId: must be a patient id');
    else scope = { patientId };
  } else if (typeof team !== 'string' || !(PAGE_TEAMS as readonly string[]).includes(team)) {
    errors.push(`team: must be one of ${PAGE_TEAMS.join(', ')}`);
  } else scope = { team: team as PageTeam };
  if (typeof minutes !== 'number' || !Number.isFinite(minutes) || minutes < 1 || minutes > SILENCE_LIMITS.maxMinutes) {
    errors.push(`minutes: how long, 1 to ${SILENCE_LIMITS.maxMinutes}`);
  }
  const why = typeof reason === 'string' ? reason.trim().replace(/\s+/g, ' ') : '';
  if (why.length === 0) errors.push('reason: is required (e.g. transport to MRI)');
  else if (why.length > SILENCE_LIMITS.reasonMax || /[\p{Cc}\p{Cf}]/u.test(why)) errors.push(`reason: at most ${SILENCE_LIMITS.reasonMax} printable characters`);
  const name = checkAckName(body.by);
  if (!name.ok) errors.push(name.error);
  if (errors.length > 0 || !scope || !name.ok) return { ok: false, errors };
  return {
    ok: true,
    silence: {
      silenceId: `sil_${randomBytes(9).toString('base64url')}`,
      scope,
      from: now,
      until: now + Math.round((minutes as number) * MINUTE),
      createdBy: name.name,
      reason: why,
    },
  };
}

export function createRequestHandler(deps: HostDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const files = new Map<string, Buffer>();
  for (const [path, f] of Object.entries(STATIC)) files.set(path, readFileSync(new URL(f.file, BOARD_DIR)));

  const authorised = (req: IncomingMessage): boolean => {
    const bearer = req.headers.authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    return keyMatches(deps.boardKey, bearer ?? cookie(req, BOARD_COOKIE));
  };

  /** A state-changing board request must come from the board itself (no cross-site form or script). */
  const sameOrigin = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin;
    if (!origin) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  };

  /** A JSON body of at most `limit` bytes, or the answer already sent (415, 413, 400). */
  async function jsonBody(req: IncomingMessage, res: ServerResponse, example: string, limit = ACK_BODY_LIMIT): Promise<Record<string, unknown> | undefined> {
    if (!/json/i.test(req.headers['content-type'] ?? '')) {
      sendJson(res, 415, { error: `send JSON: ${example}` });
      return undefined;
    }
    const body = await readBody(req, limit);
    if (Buffer.byteLength(body) > limit) {
      sendJson(res, 413, { error: `body is over ${limit} bytes` });
      return undefined;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      sendJson(res, 400, { errors: ['body is not valid JSON'] });
      return undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      sendJson(res, 400, { errors: [`body must be a JSON object: ${example}`] });
      return undefined;
    }
    return parsed as Record<string, unknown>;
  }

  /** The answer to an acknowledgement: 200 (also when it was acknowledged before), 403, 404 or 409 with the reason. */
  function ackAnswer(res: ServerResponse, result: AckResult, how: string): void {
    if (!result.ok) {
      const status = result.reason.startsWith('acknowledge link') ? 403 : result.reason === 'no such page' ? 404 : 409;
      return sendJson(res, status, { error: result.reason });
    }
    const p = result.page;
    if (result.changed) {
      deps.log(`paging: page ${p.pageId} acknowledged via ${how}`); // ids only: the name stays in the database
      deps.sse.broadcast('ack', { patientId: p.patientId, pageId: p.pageId });
    }
    sendJson(res, 200, { acknowledged: true, changed: result.changed, page: deps.board.teamPage(p) });
  }

  /** POST /api/pages/<pageId>/ack {"by"}: the board's button (the board key authenticates it). */
  async function boardAck(req: IncomingMessage, res: ServerResponse, pageId: string): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
    const body = await jsonBody(req, res, '{"by": "your name"}');
    if (!body) return;
    const name = checkAckName(body.by);
    if (!name.ok) return sendJson(res, 400, { errors: [name.error] });
    ackAnswer(res, await deps.paging.acknowledge(pageId, name.name), 'board');
  }

  /** POST /v1/acks {"token", "by"}: the acknowledge link's token, for apps and integration engines. */
  async function apiAck(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await jsonBody(req, res, '{"token": "<from the acknowledge link>", "by": "your name"}');
    if (!body) return;
    const errors: string[] = [];
    if (typeof body.token !== 'string' || body.token.length === 0 || body.token.length > 2048) errors.push('token: is required (the last part of the acknowledge link)');
    const name = checkAckName(body.by);
    if (!name.ok) errors.push(name.error);
    if (errors.length > 0 || !name.ok) return sendJson(res, 400, { errors });
    ackAnswer(res, await deps.paging.acknowledgeLink(body.token as string, name.name), 'api');
  }

  /** GET /ack/<token> shows the page and a form; POST acknowledges. Refused links answer 403. */
  async function linkPage(req: IncomingMessage, res: ServerResponse, method: string, token: string): Promise<void> {
    const html = (status: number, text: string) => send(res, status, ACK_PAGE_HEADERS, text);
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return send(res, 405, { ...ACK_PAGE_HEADERS, allow: 'GET, POST' }, ackErrorPage('Not allowed', 'Use the link as it was sent.'));
    if (method === 'POST') {
      const body = await readBody(req, ACK_BODY_LIMIT);
      if (Buffer.byteLength(body) > ACK_BODY_LIMIT) return html(413, ackErrorPage('Too long', `The form sent too much; type a name of up to ${ACK_NAME_MAX} characters.`));
      const name = checkAckName(new URLSearchParams(body).get('by') ?? undefined);
      const v = deps.paging.verifyLink(token);
      if (!name.ok) {
        const page = v.ok ? deps.queries.page(v.claims.pageId) : undefined;
        if (v.ok && page) return html(400, ackFormPage(page, v.claims.role, ACK_NAME_MAX, deps.timeZone, name.error.replace(/^by: /, 'Your name: ')));
      }
      // A refused link is refused (and audited) whatever the name says.
      const result = await deps.paging.acknowledgeLink(token, name.ok ? name.name : '(no name)');
      if (!result.ok) {
        const reason = result.reason.replace('acknowledge link ', '');
        if (result.reason.startsWith('acknowledge link')) return html(403, ackErrorPage('Link refused', LINK_REFUSALS[reason] ?? reason));
        if (result.reason === 'no such page') return html(404, ackErrorPage('No such page', 'This server has no record of the page.'));
        const page = deps.queries.page(v.ok ? v.claims.pageId : '');
        return page
          ? html(409, ackStatusPage(page, v.ok ? v.claims.role : roleOf(page, deps.pagingConfig), 'Nothing to acknowledge', closedText(page.status), false, deps.timeZone))
          : html(409, ackErrorPage('Nothing to acknowledge', result.reason));
      }
      const p = result.page;
      if (result.changed) {
        deps.log(`paging: page ${p.pageId} acknowledged via link`);
        deps.sse.broadcast('ack', { patientId: p.patientId, pageId: p.pageId });
      }
      const ack = p.ack!;
      const detail = result.changed
        ? `Recorded: ${ack.by} at ${formatSiteTime(ack.at, deps.timeZone)}. Nobody else on this ladder will be paged for it.`
        : `It was already acknowledged by ${ack.by} at ${formatSiteTime(ack.at, deps.timeZone)} (via ${ack.via}).`;
      return html(200, ackStatusPage(p, v.ok ? v.claims.role : roleOf(p, deps.pagingConfig), result.changed ? 'Acknowledged' : 'Already acknowledged', detail, true, deps.timeZone));
    }
    const v = deps.paging.verifyLink(token);
    if (!v.ok) return html(403, ackErrorPage('Link refused', LINK_REFUSALS[v.reason] ?? v.reason));
    const page = deps.queries.page(v.claims.pageId);
    if (!page) return html(404, ackErrorPage('No such page', 'This server has no record of the page.'));
    if (awaitsAcknowledgement(page)) return html(200, ackFormPage(page, v.claims.role, ACK_NAME_MAX, deps.timeZone));
    if (page.status === 'acknowledged' && page.ack) {
      return html(200, ackStatusPage(page, v.claims.role, 'Already acknowledged', `Acknowledged by ${page.ack.by} at ${formatSiteTime(page.ack.at, deps.timeZone)} (via ${page.ack.via}).`, true, deps.timeZone));
    }
    return html(200, ackStatusPage(page, v.claims.role, 'Nothing to acknowledge', closedText(page.status), false, deps.timeZone));
  }

  /** POST /api/silences {"patientId" | "team", "minutes", "reason", "by"}. */
  async function createSilence(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
    const body = await jsonBody(req, res, '{"patientId": "P" or "team": "icu", "minutes": 30, "reason": "transport", "by": "your name"}');
    if (!body) return;
    const s = checkSilence(body, deps.now());
    if (!s.ok) return sendJson(res, 400, { errors: s.errors });
    if ('patientId' in s.silence.scope && !deps.queries.patient(s.silence.scope.patientId)) return sendJson(res, 404, { error: 'no such patient' });
    const created = await deps.paging.silence(s.silence);
    deps.log(`paging: silence ${created.silenceId} created`);
    deps.sse.broadcast('silences', { silenceId: created.silenceId });
    sendJson(res, 201, { silence: silenceView(created) });
  }

  /** POST /api/silences/<id>/end {"by"}: ends it now; what it held is paged at once. */
  async function endSilence(req: IncomingMessage, res: ServerResponse, silenceId: string): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
    const body = await jsonBody(req, res, '{"by": "your name"}');
    if (!body) return;
    const name = checkAckName(body.by);
    if (!name.ok) return sendJson(res, 400, { errors: [name.error] });
    const ended = await deps.paging.endSilence(silenceId, name.name);
    if (!ended) return sendJson(res, 404, { error: 'no such silence' });
    deps.log(`paging: silence ${silenceId} ended`);
    deps.sse.broadcast('silences', { silenceId });
    sendJson(res, 200, { silence: { ...silenceView(ended), endedAt: ended.endedAt !== undefined ? iso(ended.endedAt) : null, endedBy: ended.endedBy ?? null } });
  }

  /** GET /api/patients/<id>/audit?format=ndjson|csv: the patient's audit trail, oldest first, as a download. */
  async function auditExport(res: ServerResponse, patientId: string, format: string): Promise<void> {
    if (format !== 'ndjson' && format !== 'csv') return sendJson(res, 400, { errors: ['format: must be ndjson or csv'] });
    const safe = patientId.replace(/[^A-Za-z0-9._-]/g, '_');
    res.writeHead(200, {
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
      'content-disposition': `attachment; filename="audit-${safe}.${format}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (format === 'csv') res.write(auditCsvHeader());
    for await (const e of deps.audit.forPatient(patientId)) res.write(format === 'csv' ? auditCsvRow(e) : auditNdjsonRow(e));
    res.end();
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (path === '/v1/acks') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return apiAck(req, res);
    }
    const link = path.match(/^\/ack\/([A-Za-z0-9._-]{1,2048})$/);
    if (link) return linkPage(req, res, method, link[1]!);

    if (isDevicePath(path)) {
      // The body is read only up to the batch limit: the handlers answer 413 for anything larger.
      const body = method === 'POST' ? await readBody(req, INGEST_LIMITS.batchBytes) : '';
      const out = await handleDeviceRequest({ method, path, headers: flatHeaders(req), body }, deps.ingest);
      return send(res, out.status, out.headers, out.body);
    }

    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });

    const file = STATIC[path];
    if (file && (method === 'GET' || method === 'HEAD')) {
      if (path === '/' && url.searchParams.has('key')) {
        // The printed link: keep the key in an HttpOnly cookie and take it out of the address bar.
        const key = url.searchParams.get('key') ?? '';
        if (!keyMatches(deps.boardKey, key)) {
          return send(res, 403, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }, 'This board link has a wrong access key: open the link that crs serve printed.\n');
        }
        return send(res, 303, { location: '/', 'set-cookie': `${BOARD_COOKIE}=${key}; HttpOnly; SameSite=Strict; Path=/` }, '');
      }
      return send(res, 200, { 'content-type': file.type, ...SECURITY_HEADERS }, files.get(path)!);
    }

    if (path.startsWith('/api/')) {
      if (!authorised(req)) {
        return sendJson(res, 401, { error: 'board access key required: open the board with the link crs serve printed' });
      }
      if (method === 'GET' && path === '/api/patients') return sendJson(res, 200, deps.board.patients());
      if (method === 'GET' && path === '/api/health') return sendJson(res, 200, { serverTime: iso(deps.now()), ...deps.health() });
      if (method === 'GET' && path === '/api/events') {
        if (!deps.sse.attach(res)) sendJson(res, 503, { error: 'too many board connections' }, { 'retry-after': '10' });
        return;
      }
      const patient = path.match(/^\/api\/patients\/([^/]+)$/);
      if (method === 'GET' && patient) {
        const hours = Number(url.searchParams.get('hours') ?? 72);
        const view = deps.board.patient(decodeURIComponent(patient[1]!), Number.isFinite(hours) && hours > 0 ? Math.min(hours, 24 * 14) : 72);
        return view ? sendJson(res, 200, view) : sendJson(res, 404, { error: 'no such patient' });
      }
      const page = path.match(/^\/api\/pages\/([^/]+)\/ack$/);
      if (page) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        return boardAck(req, res, decodeURIComponent(page[1]!));
      }
      const audit = path.match(/^\/api\/patients\/([^/]+)\/audit$/);
      if (audit && method === 'GET') return auditExport(res, decodeURIComponent(audit[1]!), url.searchParams.get('format') ?? 'ndjson');
      if (path === '/api/silences') {
        if (method === 'GET') return sendJson(res, 200, { serverTime: iso(deps.now()), silences: deps.queries.silences(deps.now()).map(silenceView) });
        if (method === 'POST') return createSilence(req, res);
        return sendJson(res, 405, { error: 'use GET or POST' }, { allow: 'GET, POST' });
      }
      if (path === '/api/outbox') {
        if (method !== 'GET') return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
        const lanes = deps.outbox.lanes().map((l) => ({ ...l, oldestAt: l.oldestAt === null ? null : iso(l.oldestAt) }));
        return sendJson(res, 200, { serverTime: iso(deps.now()), alerts: deps.outbox.alerts(), lanes, parked: deps.outbox.parked() });
      }
      if (path === '/api/outbox/retry') {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
        const body = await jsonBody(req, res, '{"sink": "webhook", "itemId": "..."} (both optional: every parked record)');
        if (!body) return;
        const { sink, itemId } = body;
        if ((sink !== undefined && typeof sink !== 'string') || (itemId !== undefined && typeof itemId !== 'string')) {
          return sendJson(res, 400, { errors: ['sink and itemId: strings, each optional'] });
        }
        return sendJson(res, 200, { retried: deps.outbox.retry(sink, itemId) });
      }
      const end = path.match(/^\/api\/silences\/([^/]+)\/end$/);
      if (end) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        return endSilence(req, res, decodeURIComponent(end[1]!));
      }
    }
    sendJson(res, 404, { error: `no route ${method} ${path}` });
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof URIError) return sendJson(res, 400, { error: 'malformed percent-encoding in the path' });
      deps.log(`http: ${req.method} ${new URL(req.url ?? '/', 'http://localhost').pathname} failed (${(err as Error).name})`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}
