// The HTTP host of `crs serve` (node:http): device ingest through handleIngest (the same code, statuses and auth
// as the Lambda), the board's static files, its JSON API and its live event stream.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AckResult, BoardQueries } from '../adapters/embedded/board.ts';
import { INGEST_LIMITS, handleIngest, type IngestDeps } from '../app/ingest.ts';
import { iso } from '../domain/time.ts';
import { BOARD_COOKIE, keyMatches } from './board-key.ts';
import { pageView, type BoardApi } from './board-api.ts';
import type { SseHub } from './sse.ts';

export interface HostDeps {
  ingest: IngestDeps;
  board: BoardApi;
  queries: BoardQueries;
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

const ACK_BODY_LIMIT = 4096;
export const ACK_NAME_MAX = 80;

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

/** A name typed on the board: printable, trimmed, 1-80 characters. */
export function checkAckName(value: unknown): { ok: true; name: string } | { ok: false; error: string } {
  if (typeof value !== 'string') return { ok: false, error: 'by: is required (the name of the person acknowledging)' };
  const name = value.trim().replace(/\s+/g, ' ');
  if (name.length === 0) return { ok: false, error: 'by: is empty; type your name' };
  if (name.length > ACK_NAME_MAX) return { ok: false, error: `by: is longer than ${ACK_NAME_MAX} characters` };
  if (/[\p{Cc}\p{Cf}]/u.test(name)) return { ok: false, error: 'by: contains control characters' };
  return { ok: true, name };
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

  async function ack(req: IncomingMessage, res: ServerResponse, notificationId: string): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-origin request refused' });
    if (!/json/i.test(req.headers['content-type'] ?? '')) return sendJson(res, 415, { error: 'send JSON: {"by": "your name"}' });
    const body = await readBody(req, ACK_BODY_LIMIT);
    if (Buffer.byteLength(body) > ACK_BODY_LIMIT) return sendJson(res, 413, { error: `body is over ${ACK_BODY_LIMIT} bytes` });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { errors: ['body is not valid JSON'] });
    }
    const name = checkAckName((parsed as { by?: unknown } | null)?.by);
    if (!name.ok) return sendJson(res, 400, { errors: [name.error] });
    const result: AckResult = deps.queries.acknowledge(notificationId, name.name, iso(deps.now()));
    if (result.kind === 'not-found') return sendJson(res, 404, { error: 'no such page' });
    if (result.kind === 'already') {
      return sendJson(res, 409, { error: 'already acknowledged', page: pageView(result.page) });
    }
    const patientId = result.page.notification.patientId;
    deps.log(`board: page ${notificationId} acknowledged (${result.notificationIds.length} page(s) of patient ${patientId})`);
    deps.sse.broadcast('ack', { patientId, notificationIds: result.notificationIds });
    sendJson(res, 200, { acknowledged: result.notificationIds, page: pageView(result.page) });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (path.startsWith('/v1/')) {
      // The body is read only up to the batch limit: handleIngest answers 413 for anything larger.
      const body = method === 'POST' ? await readBody(req, INGEST_LIMITS.batchBytes) : '';
      const out = await handleIngest({ method, path, headers: flatHeaders(req), body }, deps.ingest);
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
        return ack(req, res, decodeURIComponent(page[1]!));
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
