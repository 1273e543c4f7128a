// The HTTP host of `crs serve` (node:http): device ingest through handleIngest (the same code, statuses and auth
// as the Lambda), acknowledge links (GET shows, POST acknowledges) and the acknowledgement API, the API's OpenAPI
// document, the board's static files, its JSON API (acknowledgements, silences, audit export) and its live event stream.
// Cheap refusals first (issue 16): a device's token is checked before its body is read (a refused request is
// answered and its connection closed, the body never read); a body past its limit is not read further; refused
// acknowledgements are counted per client address (429 past a budget) and recorded in the security log, not a
// patient's trail (past the budget, counted in a `suppressed` line); a state-changing board request authenticated by
// the cookie must come from the board itself (Origin, and exactly application/json). Connection caps and timeouts:
// limits.ts.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import type { BoardQueries } from '#adapters/sqlite/board.ts';
import type { LaneHealth, ParkedRecord } from '#adapters/sqlite/outbox.ts';
import type { DeadLetter } from '#adapters/sqlite/dead-letters.ts';
import type { DeliveryAlert } from './delivery-watch.ts';
import { ACK_BODY_LIMIT, checkAckName } from '#app/ack.ts';
import { auditCsvHeader, auditCsvRow, auditNdjsonRow } from '#app/audit-export.ts';
import { INGEST_LIMITS, ROUTES, authenticateRequest } from '#app/ingest.ts';
import { OPENAPI_ROUTE, openApiDocument } from '#app/openapi.ts';
import { wireId } from '#domain/ids.ts';
import { RateLimiter, clientAddress, forwardedHttps, type HttpLimits } from './limits.ts';
import { handleDeviceRequest, isDevicePath, type DeviceDeps } from '#app/interfaces/http.ts';
import type { PagingConfig } from '#domain/paging.ts';
import { PageUnreadable, type AckResult } from '#domain/paging.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { iso } from '#domain/time.ts';
import { ACK_PAGE_HEADERS, ackErrorPage } from '#app/ack-page.ts';
import { jsonHeadersRefused, jsonObject } from '#app/json-body.ts';
import { checkSilence, silenceIdError, startSilence } from '#app/silence.ts';
import { BoardChanges, MONITORING_EXAMPLES, changeMonitoring, type MonitoringAction } from '#app/monitoring.ts';
import {
  ACK_ROUTES,
  acknowledgeByApi,
  linkFailed,
  refusalStatus,
  showLink,
  submitLink,
  type AckAnswer,
  type AckFlowDeps,
} from '#app/ack-flow.ts';
import { boardCookieName, keyMatches } from './board-key.ts';
import { LIST_PAGE_DEFAULT, LIST_PAGE_MAX, silenceView, type BoardApi } from './board-api.ts';
import type { EmbeddedPaging } from './paging.ts';
import { recordTokenRefusal, type CountingSecurityLog } from './security-log.ts';
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
  /** The messages grading set aside after 3 failures, and putting them back in the inbox (crs dead-letters). */
  deadLetters: {
    list(): DeadLetter[];
    redrive(id?: string): number;
  };
  pagingConfig: PagingConfig;
  /** The site's zone (config.site.timeZone): the acknowledge page's times. */
  timeZone: string;
  /** The moment of the backup this data directory was restored from (AckFlowDeps.restoredFrom); undefined: none. */
  restoredFrom?: () => number | undefined;
  audit: SqliteAuditLog;
  sse: SseHub;
  boardKey: string;
  now: () => number;
  /** Counts for /api/health (no patient data). */
  health: () => Record<string, unknown>;
  log: (line: string) => void;
  /**
   * Where refusals that concern no patient are recorded (forged links, unknown device tokens), and counted when the
   * address's budget kept them out.
   */
  security: Pick<CountingSecurityLog, 'record' | 'notWritten'>;
  /** Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (crs serve --trust-proxy). */
  trustProxy: readonly string[];
  /** The address phones and browsers reach this server at (--public-url): its origin is the board's; https: Secure cookie. */
  publicUrl?: string;
  limits: HttpLimits;
}

const BOARD_DIR = new URL('../../web/', import.meta.url);
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/board.css': { file: 'board.css', type: 'text/css; charset=utf-8' },
  '/board.js': { file: 'board.js', type: 'text/javascript; charset=utf-8' },
  '/chart.js': { file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * Reads the body up to `limit` + 1 bytes (enough for the handler to answer 413). A body that says or turns out to
 * be larger is not read further: reading stops, and the answer closes the connection (the rest is dropped).
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.pause();
      refuseRest.add(req);
      const body = Buffer.concat(chunks);
      resolve(body.subarray(0, limit + 1).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) stop();
    };
    if (Number(req.headers['content-length']) > limit) {
      // Said up front: answer from what the header says (the handler sees a body just over the limit).
      chunks.push(Buffer.alloc(limit + 1, 0x20));
      stop();
      return;
    }
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Requests whose body was not read whole: their answer closes the connection. */
const refuseRest = new WeakSet<IncomingMessage>();

/** How long, and how much of, the rest of a refused body is read and dropped after the answer (see lingerThenClose). */
const LINGER_MS = 2_000;
const LINGER_BYTES = 16 * 1024 * 1024;

/**
 * Closes a connection whose request body was refused, as nginx's lingering close does: the answer and a FIN go out,
 * then what the sender is still writing is read and dropped until it stops (its FIN), LINGER_MS pass or LINGER_BYTES
 * come. A socket closed with that data unread resets the connection, and the sender (still writing its body) met
 * the reset ("EPIPE", "fetch failed") instead of the 413 or 401 it was answered: a gateway would send again.
 */
function lingerThenClose(req: IncomingMessage): void {
  const socket: Socket = req.socket;
  let dropped = 0;
  const done = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, LINGER_MS);
  timer.unref();
  socket.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) done();
  });
  socket.once('end', done);
  socket.once('close', () => clearTimeout(timer));
  socket.end();
  // The body goes on to the request (whose reading stopped at the limit) or to the socket: drop it either way.
  req.on('data', () => undefined);
  req.resume();
  socket.resume();
}

/** Resolves when the response's buffer is written out, or the response is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  const close = refuseRest.has(res.req);
  // Node ends a `connection: close` answer's socket with destroySoon (a reset while the body still comes): linger.
  if (close && res.socket) res.socket.destroySoon = () => lingerThenClose(res.req);
  res.writeHead(status, { 'cache-control': 'no-store', ...headers, ...(close ? { connection: 'close' } : {}) });
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

/**
 * A path segment as API Gateway hands it to the ack function: percent-decoded, so that a link whose characters a
 * mail or chat app escaped (%76 for v) is the same link on both backends; a broken escape stays as sent (refused).
 */
function pathParameter(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function createRequestHandler(deps: HostDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const publicOrigin = deps.publicUrl ? new URL(deps.publicUrl).origin : undefined;
  const prefix = pathPrefix(deps.publicUrl);
  const files = new Map<string, Buffer>();
  for (const [path, f] of Object.entries(STATIC)) files.set(path, readFileSync(new URL(f.file, BOARD_DIR)));
  // Behind a proxy that maps a prefix (--public-url https://host/wards/), the board's relative URLs resolve under it
  // wherever the browser has it: at /wards/, and at /wards (a proxy that passes /wards itself as /, where they
  // resolved against the host's root until 2026-12-05).
  if (prefix) files.set('/', withBase(files.get('/')!, `${prefix}/`));
  const openapi = JSON.stringify(openApiDocument());

  const boardCookie = boardCookieName(deps.boardKey);
  // Refused acknowledgements (and unknown device tokens, for the log only) per client address.
  const ackRefusals = new RateLimiter(deps.limits.refusalBurst, deps.limits.refusalRefillMs, deps.now);
  const tokenRefusals = new RateLimiter(deps.limits.refusalBurst, deps.limits.refusalRefillMs, deps.now);
  const boardChanges = new BoardChanges();
  const client = (req: IncomingMessage) => clientAddress(req, deps.trustProxy);

  /** How the board key came: a bearer header (a script or crs silence) or the browser's cookie; undefined: it did not. */
  const authorised = (req: IncomingMessage): 'bearer' | 'cookie' | undefined => {
    const bearer = req.headers.authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
    if (bearer !== undefined) return keyMatches(deps.boardKey, bearer) ? 'bearer' : undefined;
    return keyMatches(deps.boardKey, cookie(req, boardCookie)) ? 'cookie' : undefined;
  };

  /**
   * A state-changing request carried by the cookie must come from the board itself: its Origin is required and must
   * be this server (the Host it was sent to, or --public-url). A bearer header cannot be sent cross-site.
   */
  const sameOrigin = (req: IncomingMessage): boolean => {
    if (authorised(req) === 'bearer') return true;
    const origin = req.headers.origin;
    if (!origin) return false;
    try {
      const o = new URL(origin);
      return (
        o.origin === publicOrigin ||
        (o.host === req.headers.host && (o.protocol === 'http:' || o.protocol === 'https:'))
      );
    } catch {
      return false;
    }
  };
  const crossOrigin = (res: ServerResponse) =>
    sendJson(res, 403, {
      error:
        "cross-origin request refused: the board's own page sends these (Origin required), or a script with the key as a bearer token",
    });

  /**
   * A JSON body of at most ACK_BODY_LIMIT bytes, each key once and (given `fields`) only those, or the answer
   * already sent (415, 413, 400): read as POST /v1/acks reads its body (shared/app/json-body.ts). The headers are
   * checked before the body is read. Silences and monitoring name their unknown fields themselves, in the same words
   * (unknownFields, called by checkSilence and changeMonitoring).
   */
  async function jsonBody(
    req: IncomingMessage,
    res: ServerResponse,
    example: string,
    fields?: readonly string[],
  ): Promise<Record<string, unknown> | undefined> {
    const headers = { contentType: req.headers['content-type'], contentEncoding: req.headers['content-encoding'] };
    const read =
      jsonHeadersRefused(headers, example) ??
      jsonObject(await readBody(req, ACK_BODY_LIMIT), example, ACK_BODY_LIMIT, fields);
    if (read.ok) return read.body;
    // A 415 or 413 is {"error"} on the board's routes (embedded-security pins the 415), a 400 {"errors"}.
    sendJson(res, read.status, read.status === 400 ? { errors: read.errors } : { error: read.errors.join('; ') });
    return undefined;
  }

  /** The answer to an acknowledgement: 200 (also when it was acknowledged before), 403, 404 or 409 with the reason. */
  function ackAnswer(res: ServerResponse, result: AckResult, how: string): void {
    if (!result.ok) {
      sendJson(res, refusalStatus(result), { errors: [result.reason] });
      return;
    }
    const p = result.page;
    if (result.changed) {
      deps.log(`paging: page ${wireId(p.pageId)} acknowledged via ${how}`); // ids only: the name stays in the database
      deps.sse.broadcast('ack', { patientId: p.patientId, pageId: p.pageId });
    }
    sendJson(res, 200, { acknowledged: true, changed: result.changed, page: deps.board.teamPage(p) });
  }

  /** POST /api/pages/<pageId>/ack {"by"}: the board's button (the board key authenticates it). */
  async function boardAck(req: IncomingMessage, res: ServerResponse, pageId: string): Promise<void> {
    if (!sameOrigin(req)) return crossOrigin(res);
    // An unknown field refused, as /v1/acks refuses one (ignored until 2026-12-06).
    const body = await jsonBody(req, res, '{"by": "your name"}', ['by']);
    if (!body) return;
    const name = checkAckName(body.by);
    if (!name.ok) return sendJson(res, 400, { errors: [name.error] });
    let result: AckResult;
    try {
      result = await deps.paging.acknowledge(pageId, name.name);
    } catch (err) {
      if (!(err instanceof PageUnreadable)) throw err;
      deps.log(`paging: acknowledgement via board refused: page ${wireId(err.pageId)}'s stored record cannot be read`);
      return sendJson(res, 500, {
        errors: [
          `page ${err.pageId}: its stored record cannot be read (${err.reason}); it cannot be acknowledged until an operator mends it`,
        ],
      });
    }
    ackAnswer(res, result, 'board');
  }

  /** The shared acknowledgement flow (shared/app/ack-flow.ts) over this server's pager and pages. */
  const ackFlow: AckFlowDeps = {
    acknowledgeLink: (token, by, from) => deps.paging.acknowledgeLink(token, by, from),
    verify: (token) => deps.paging.verifyLink(token),
    page: (id) => deps.queries.page(id),
    config: deps.pagingConfig,
    timeZone: deps.timeZone,
    board: true,
    ...(deps.restoredFrom ? { restoredFrom: deps.restoredFrom } : {}),
    // An address past its budget of refused acknowledgements gets 429, counted, not written; a link that verifies
    // still goes through (a phone behind the same hospital NAT is never locked out).
    refusals: {
      admit: async (token, from) => {
        if (!ackRefusals.exhausted(from) || (await deps.paging.verifyLink(token)).ok) return undefined;
        await deps.security.notWritten('acknowledge-link-refused', from);
        return ackRefusals.retryAfter(from);
      },
      refused: (from) => ackRefusals.take(from),
    },
  };

  /** Sends the flow's answer; an acknowledgement that changed a page is logged by id and pushed to the board. */
  function sendAck(res: ServerResponse, a: AckAnswer, how: string): void {
    if (a.outcome === 'acknowledged' && a.page) {
      deps.log(`paging: page ${wireId(a.page.pageId)} acknowledged via ${how}`); // ids only: the name stays in the database
      deps.sse.broadcast('ack', { patientId: a.page.patientId, pageId: a.page.pageId });
    }
    if (a.unreadable !== undefined)
      deps.log(
        `paging: acknowledgement via ${how} refused: page ${wireId(a.unreadable)}'s stored record cannot be read`,
      );
    send(res, a.status, a.headers, a.body);
  }

  /** POST /v1/acks {"token", "by"}: the acknowledge link's token, for apps and integration engines. */
  async function apiAck(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, ACK_BODY_LIMIT);
    sendAck(
      res,
      await acknowledgeByApi(
        {
          contentType: req.headers['content-type'],
          contentEncoding: req.headers['content-encoding'],
          body,
          client: client(req),
        },
        ackFlow,
      ),
      'api',
    );
  }

  /** GET /ack/<token> shows the page and a form; POST acknowledges. Refused links answer 403. */
  async function linkPage(req: IncomingMessage, res: ServerResponse, method: string, token: string): Promise<void> {
    if (method === 'GET' || method === 'HEAD' || method === 'POST') {
      const body = method === 'POST' ? await readBody(req, ACK_BODY_LIMIT) : '';
      let answer: AckAnswer;
      try {
        answer =
          method === 'POST'
            ? await submitLink(token, { body, client: client(req) }, ackFlow)
            : await showLink(token, ackFlow);
      } catch (err) {
        // The database failing: the phone gets a page saying nothing was recorded, not the API's JSON.
        deps.log(`http: ${method} /ack/<token> failed (${(err as Error).name})`);
        answer = linkFailed(method);
      }
      return sendAck(res, answer, 'link');
    }
    send(
      res,
      405,
      { ...ACK_PAGE_HEADERS, allow: 'GET, HEAD, POST' },
      ackErrorPage('Not allowed', 'Use the link as it was sent.'),
    );
  }

  /** POST /api/silences {"patientId" | "team", "minutes", "reason", "by"}. */
  async function createSilence(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return crossOrigin(res);
    const body = await jsonBody(
      req,
      res,
      '{"patientId": "P" or "team": "icu", "minutes": 30, "reason": "transport", "by": "your name"}',
    );
    if (!body) return;
    const s = checkSilence(body, deps.now());
    if (!s.ok) return sendJson(res, 400, { errors: s.errors });
    const r = await startSilence(
      s.silence,
      (patientId) => deps.queries.patientRead(patientId) !== undefined,
      (x) => deps.paging.silence(x),
    );
    if (!r.ok) return sendJson(res, 404, { error: r.error });
    const created = r.silence;
    deps.log(`paging: silence ${wireId(created.silenceId)} created`);
    deps.sse.broadcast('silences', { silenceId: created.silenceId });
    // timeZone: the site's, in which crs silence writes the times people read (as the board does).
    sendJson(res, 201, { silence: silenceView(created), timeZone: deps.timeZone });
  }

  /** POST /api/silences/<id>/end {"by"}: ends it now; what it held is paged at once. */
  async function endSilence(req: IncomingMessage, res: ServerResponse, silenceId: string): Promise<void> {
    if (!sameOrigin(req)) return crossOrigin(res);
    const badId = silenceIdError(silenceId);
    if (badId) return sendJson(res, 400, { errors: [badId] });
    // An unknown field refused, as /v1/acks refuses one (ignored until 2026-12-06).
    const body = await jsonBody(req, res, '{"by": "your name"}', ['by']);
    if (!body) return;
    const name = checkAckName(body.by);
    if (!name.ok) return sendJson(res, 400, { errors: [name.error] });
    const r = await deps.paging.endSilence(silenceId, name.name);
    if (!r) return sendJson(res, 404, { error: 'no such silence' });
    if (r.changed) {
      deps.log(`paging: silence ${wireId(silenceId)} ended`);
      deps.sse.broadcast('silences', { silenceId });
    }
    // One whose stored item cannot be read is ended all the same (it held nothing), named with why.
    if ('unreadable' in r) return sendJson(res, 200, { changed: r.changed, silence: null, unreadable: r.unreadable });
    const ended = r.silence;
    sendJson(res, 200, {
      // changed: false when it had ended already (ended by someone, or over): nothing was recorded.
      changed: r.changed,
      silence: {
        ...silenceView(ended),
        endedAt: ended.endedAt !== undefined ? iso(ended.endedAt) : null,
        endedBy: ended.endedBy ?? null,
      },
    });
  }

  /**
   * POST /api/patients/<id>/monitoring/end {"reason", "by"} and .../monitoring/resume {"by"}: the end of a patient's monitoring
   * (a discharge) or a re-admission, sent as the board's own message through the device ingest (shared/app/monitoring.ts).
   */
  async function patientMonitoring(
    req: IncomingMessage,
    res: ServerResponse,
    patientId: string,
    action: MonitoringAction,
  ): Promise<void> {
    if (!sameOrigin(req)) return crossOrigin(res);
    const body = await jsonBody(req, res, MONITORING_EXAMPLES[action]);
    if (!body) return;
    // Nothing can be checked against a state that cannot be read: said (it answered 500 until 2026-12-05).
    const read = deps.queries.patientRead(patientId);
    if (read && 'unreadable' in read)
      return sendJson(res, 409, {
        errors: [
          `patient ${patientId}: its stored state cannot be read (${read.unreadable.reason}); mend or delete its row first`,
        ],
      });
    const a = await changeMonitoring(action, patientId, body, {
      ingest: deps.ingest,
      changes: boardChanges,
      state: (id) => deps.queries.patient(id)?.state,
      timeZone: deps.timeZone,
    });
    if (a.status === 202) {
      const [id] = (a.body as { messageIds: string[] }).messageIds;
      deps.log(`board: monitoring ${action === 'end' ? 'end' : 'resumption'} queued as message ${wireId(id ?? '')}`);
    }
    sendJson(res, a.status, a.body, a.headers);
  }

  /** GET /api/patients/<id>/audit?format=ndjson|csv: the patient's audit trail, oldest first, as a download. */
  async function auditExport(res: ServerResponse, patientId: string, format: string): Promise<void> {
    if (format !== 'ndjson' && format !== 'csv')
      return sendJson(res, 400, { errors: ['format: must be ndjson or csv'] });
    const safe = patientId.replace(/[^A-Za-z0-9._-]/g, '_');
    res.writeHead(200, {
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
      'content-disposition': `attachment; filename="audit-${safe}.${format}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (format === 'csv') res.write(auditCsvHeader());
    // As fast as the reader takes it: written regardless, a long trail sat in memory whole (until 2026-12-05).
    for await (const e of deps.audit.forPatient(patientId)) {
      if (res.destroyed) return;
      if (!res.write(format === 'csv' ? auditCsvRow(e) : auditNdjsonRow(e))) await drained(res);
    }
    res.end();
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = withoutPrefix(url.pathname, prefix);
    const method = req.method ?? 'GET';

    if (path === ACK_ROUTES.api) {
      if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return apiAck(req, res);
    }
    const link = path.match(/^\/ack\/([^/]+)$/);
    if (link) return linkPage(req, res, method, pathParameter(link[1]!));

    // The API's description, without a token (it holds no patient data); a /v1/ path, so before the device routes.
    if (path === OPENAPI_ROUTE) {
      if (method !== 'GET' && method !== 'HEAD')
        return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      return send(res, 200, { 'content-type': 'application/json', ...SECURITY_HEADERS }, openapi);
    }

    if (isDevicePath(path)) {
      // The token first: a refused request is answered without reading its body (and its connection closed).
      const headers = flatHeaders(req);
      const auth = method === 'POST' ? await authenticateRequest({ headers }, deps.ingest) : undefined;
      if (auth && !auth.ok) {
        refuseRest.add(req);
        if (auth.status === 403)
          await recordTokenRefusal(deps.security, tokenRefusals, {
            at: iso(deps.now()),
            reason: auth.error,
            client: client(req),
            claimed: { route: path },
          });
      }
      // The body is read only up to the route's limit (one message's 64 KiB, else a batch's): the handlers answer
      // 413 for anything larger, at once when content-length says so.
      const limit = path === ROUTES.single ? INGEST_LIMITS.messageBytes : INGEST_LIMITS.batchBytes;
      const body = method === 'POST' && auth?.ok ? await readBody(req, limit) : '';
      const out = await handleDeviceRequest({ method, path, headers, body }, deps.ingest, auth);
      return send(res, out.status, out.headers, out.body);
    }

    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });

    const file = STATIC[path];
    if (file && (method === 'GET' || method === 'HEAD')) {
      if (path === '/' && url.searchParams.has('key')) {
        // The printed link: keep the key in an HttpOnly cookie and take it out of the address bar.
        const key = url.searchParams.get('key') ?? '';
        if (!keyMatches(deps.boardKey, key)) {
          return send(
            res,
            403,
            { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS },
            'This board link has a wrong access key: open the link that crs serve printed.\n',
          );
        }
        // Secure behind TLS (an https --public-url, or a trusted proxy that says the request came over https).
        const secure = publicOrigin?.startsWith('https:') || forwardedHttps(req, deps.trustProxy) ? '; Secure' : '';
        // Back to the board. With --public-url's prefix (https://host/wards/): there, a path of this host (never
        // the address a request names: no open redirect), and the cookie for that path only; this server answers
        // under the prefix too, so that also holds at the listening address. Without one: where the browser has it,
        // and the cookie for the path of the link it opened. Until 2026-12-05 `./` sent the link opened at /wards
        // (no trailing slash) to the host's root, its cookie set for every path of the host.
        return send(
          res,
          303,
          {
            location: prefix ? `${prefix}/` : './',
            'set-cookie': `${boardCookie}=${key}; HttpOnly; SameSite=Strict${prefix ? `; Path=${prefix}` : ''}${secure}`,
          },
          '',
        );
      }
      return send(res, 200, { 'content-type': file.type, ...SECURITY_HEADERS }, files.get(path)!);
    }

    if (path.startsWith('/api/')) {
      if (!authorised(req)) {
        return sendJson(res, 401, {
          error:
            'board access key required: open the board with its link (crs board-link --data DIR prints it), or send the key as Authorization: Bearer',
        });
      }
      // A view used with another method than GET: the path exists, so 405, not 404.
      const onlyGet = () => sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
      if (path === '/api/patients') {
        if (method !== 'GET') return onlyGet();
        const page = listPage(url.searchParams);
        return 'error' in page
          ? sendJson(res, 400, { errors: [page.error] })
          : sendJson(res, 200, deps.board.patients(page));
      }
      if (path === '/api/health') {
        if (method !== 'GET') return onlyGet();
        return sendJson(res, 200, { serverTime: iso(deps.now()), ...deps.health() });
      }
      if (path === '/api/events') {
        if (method !== 'GET') return onlyGet();
        if (!deps.sse.attach(res)) sendJson(res, 503, { error: 'too many board connections' }, { 'retry-after': '10' });
        return;
      }
      const patient = path.match(/^\/api\/patients\/([^/]+)$/);
      if (patient) {
        if (method !== 'GET') return onlyGet();
        const hours = Number(url.searchParams.get('hours') ?? 72);
        const view = deps.board.patient(
          decodeURIComponent(patient[1]!),
          Number.isFinite(hours) && hours > 0 ? Math.min(hours, 24 * 14) : 72,
        );
        return view ? sendJson(res, 200, view) : sendJson(res, 404, { error: 'no such patient' });
      }
      const page = path.match(/^\/api\/pages\/([^/]+)\/ack$/);
      if (page) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        return boardAck(req, res, decodeURIComponent(page[1]!));
      }
      const monitoring = path.match(/^\/api\/patients\/([^/]+)\/monitoring\/(end|resume)$/);
      if (monitoring) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        return patientMonitoring(req, res, decodeURIComponent(monitoring[1]!), monitoring[2] as MonitoringAction);
      }
      const audit = path.match(/^\/api\/patients\/([^/]+)\/audit$/);
      if (audit) {
        if (method !== 'GET') return onlyGet();
        return auditExport(res, decodeURIComponent(audit[1]!), url.searchParams.get('format') ?? 'ndjson');
      }
      if (path === '/api/silences') {
        if (method === 'GET') {
          // One that cannot be read is listed apart, by id with why, to be mended (it holds nothing meanwhile).
          const read = deps.queries.silencesRead(deps.now());
          return sendJson(res, 200, {
            serverTime: iso(deps.now()),
            timeZone: deps.timeZone,
            silences: read.silences.map(silenceView),
            // With its patient where the database keeps it apart from the item's JSON (its patient_id column).
            unreadable: read.unreadable.map(({ unreadable: _, ...listed }) => listed),
          });
        }
        if (method === 'POST') return createSilence(req, res);
        return sendJson(res, 405, { error: 'use GET or POST' }, { allow: 'GET, POST' });
      }
      if (path === '/api/outbox') {
        if (method !== 'GET') return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
        const lanes = deps.outbox
          .lanes()
          .map((l) => ({ ...l, oldestAt: l.oldestAt === null ? null : iso(l.oldestAt) }));
        return sendJson(res, 200, {
          serverTime: iso(deps.now()),
          alerts: deps.outbox.alerts(),
          lanes,
          parked: deps.outbox.parked(),
        });
      }
      if (path === '/api/outbox/retry') {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
        const body = await jsonBody(
          req,
          res,
          '{"sink": "webhook", "itemId": "..."} (both optional: every parked record)',
          ['sink', 'itemId'], // ignored until 2026-12-06: a misspelt "sinks" retried every parked record
        );
        if (!body) return;
        const { sink, itemId } = body;
        if ((sink !== undefined && typeof sink !== 'string') || (itemId !== undefined && typeof itemId !== 'string')) {
          return sendJson(res, 400, { errors: ['sink and itemId: strings, each optional'] });
        }
        return sendJson(res, 200, { retried: deps.outbox.retry(sink, itemId) });
      }
      if (path === '/api/dead-letters') {
        if (method !== 'GET') return sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
        return sendJson(res, 200, {
          serverTime: iso(deps.now()),
          alerts: deps.outbox.alerts(),
          deadLetters: deps.deadLetters.list(),
        });
      }
      if (path === '/api/dead-letters/redrive') {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
        const body = await jsonBody(req, res, '{"id": "..."} (optional: every dead letter)', ['id']);
        if (!body) return;
        const { id } = body;
        if (id !== undefined && typeof id !== 'string')
          return sendJson(res, 400, { errors: ['id: a string, optional'] });
        return sendJson(res, 200, { redriven: deps.deadLetters.redrive(id) });
      }
      const end = path.match(/^\/api\/silences\/([^/]+)\/end$/);
      if (end) {
        if (method !== 'POST') return sendJson(res, 405, { error: 'use POST' }, { allow: 'POST' });
        return endSilence(req, res, decodeURIComponent(end[1]!));
      }
    }
    sendJson(res, 404, { error: `no route ${method} ${quoted(path, SENDER_MOST)}` });
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof URIError) return sendJson(res, 400, { error: 'malformed percent-encoding in the path' });
      deps.log(`http: ${req.method} ${loggedPath(req, prefix)} failed (${(err as Error).name})`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

/**
 * The path as a log line says it: an acknowledge link's token is a credential (it acknowledges its page for hours),
 * so it is left out; every other path is its ids, percent-encoded where they could hold anything.
 */
function loggedPath(req: IncomingMessage, prefix: string): string {
  const path = withoutPrefix(new URL(req.url ?? '/', 'http://localhost').pathname, prefix);
  return /^\/ack\/[^/]+$/.test(path) ? '/ack/<token>' : wireId(path);
}

/** ?offset=N&limit=N of the board's list: whole numbers, limit 1 to LIST_PAGE_MAX. */
function listPage(q: URLSearchParams): { offset: number; limit: number } | { error: string } {
  const num = (name: string, fallback: number, min: number, max: number): number | string => {
    const raw = q.get(name);
    if (raw === null) return fallback;
    const n = Number(raw);
    return /^\d{1,7}$/.test(raw) && n >= min && n <= max ? n : `${name}: must be a whole number from ${min} to ${max}`;
  };
  const offset = num('offset', 0, 0, 1_000_000);
  const limit = num('limit', LIST_PAGE_DEFAULT, 1, LIST_PAGE_MAX);
  if (typeof offset === 'string') return { error: offset };
  if (typeof limit === 'string') return { error: limit };
  return { offset, limit };
}

/** --public-url's path without its trailing slash (`/wards`), or '' when it has none. */
function pathPrefix(publicUrl: string | undefined): string {
  return publicUrl ? new URL(publicUrl).pathname.replace(/\/+$/, '') : '';
}

/**
 * A path under the prefix as the path without it (`/wards/api/x` is `/api/x`, `/wards` is `/`): the board asks under
 * it wherever it is opened (its <base>), and a proxy may pass the prefix on. Any other path as it is.
 */
function withoutPrefix(path: string, prefix: string): string {
  if (!prefix) return path;
  if (path === prefix) return '/';
  return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
}

/** The board's page with `<base href>` (a path checked by crs serve: letters, digits and `-._~%/` only). */
function withBase(index: Buffer, href: string): Buffer {
  const text = index.toString('utf8');
  const at = text.indexOf('<meta charset="utf-8">');
  if (at < 0 || !/^\/[A-Za-z0-9\-._~%/]*\/$/.test(href)) throw new Error('the board page takes no <base> here');
  const end = at + '<meta charset="utf-8">'.length;
  return Buffer.from(`${text.slice(0, end)}\n  <base href="${href}">${text.slice(end)}`, 'utf8');
}
