// The HTTP front of the ingest and ack functions, standing in for the stack's API Gateway HTTP API: only the
// stack's routes reach a function (anything else is API Gateway's 404; "{name}" in a route matches one path
// segment, given as a path parameter), each request becomes a payload 2.0 event (lower-case headers, cookies
// apart, base64 for non-text bodies), and the function's result becomes the response; a function error is API
// Gateway's 500, and so is a result over Lambda's 6 MB response payload. Requests beyond a function's reserved concurrency wait for a free invocation (Lambda would
// throttle them). Not emulated: the stage's throttling (429) and TLS.
//
// Ready before traffic: the front listens before its functions are loaded (its URL is the acknowledge links'
// base, which they read at cold start); until the host calls open(), every request is answered 503 with
// Retry-After, never 404 (a gateway takes a 4xx as final and drops the message; it retries a 503).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** API Gateway's limit on a request's payload. */
const MAX_PAYLOAD = 10 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation's response (the result as JSON): beyond it the invocation fails. */
const MAX_RESULT = 6 * 1024 * 1024;
const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]*\+(json|xml)))/i;

/** The function behind some routes. */
export interface RouteTarget {
  name: string;
  invoke: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
  /** Invocations at once (the function's reserved concurrency); further requests wait for a free one. */
  maxConcurrency: number;
}

export interface HttpFrontOptions {
  port: number;
  host: string;
  /** Route keys from the stack (e.g. "POST /v1/messages", "GET /ack/{token}") and the function behind each. */
  routes: Record<string, RouteTarget>;
  /** Requests the front answers itself (e.g. the local health route); true when answered. */
  local?: (req: IncomingMessage, res: ServerResponse) => boolean;
  log: (line: string) => void;
}

export interface HttpFront {
  url: string;
  /** Routes are in place: requests go to them from now on (503 with Retry-After until then). */
  open(): void;
  close(): Promise<void>;
}

function apiTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_PAYLOAD) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_PAYLOAD ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface CompiledRoute {
  key: string;
  method: string;
  pattern: RegExp;
  names: string[];
  target: RouteTarget;
}

function compileRoute(key: string, target: RouteTarget): CompiledRoute {
  const [method, path] = key.split(' ') as [string, string];
  const names: string[] = [];
  const source = path
    .split('/')
    .map((segment) => {
      const param = segment.match(/^\{([A-Za-z0-9_]+)\}$/);
      if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(param[1]!);
      return '([^/]+)';
    })
    .join('/');
  return { key, method, pattern: new RegExp(`^${source}$`), names, target };
}

/** The route a request takes, and its path parameters; undefined when none matches (API Gateway's 404). */
function matchRoute(
  routes: CompiledRoute[],
  method: string,
  path: string,
): { route: CompiledRoute; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = path.match(route.pattern);
    if (!m) continue;
    const params: Record<string, string> = {};
    route.names.forEach((name, i) => {
      params[name] = decodeURIComponent(m[i + 1]!);
    });
    return { route, params };
  }
  return undefined;
}

function toHttpApiEvent(
  req: IncomingMessage,
  body: Buffer,
  routeKey: string,
  pathParameters: Record<string, string> = {},
): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k === 'cookie' || v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(',') : v;
  }
  const cookies = req.headers.cookie?.split(/;\s*/).filter(Boolean);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const text = body.length === 0 || TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = new Date();
  const host = headers.host ?? 'localhost';
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0]!,
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: apiTime(now),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: text ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !text,
  };
}

const gatewayError = (res: ServerResponse, status: number, message: string) => {
  res.writeHead(status, { 'content-type': 'application/json', 'apigw-requestid': randomUUID() });
  res.end(JSON.stringify({ message }));
};

export async function startHttpFront(o: HttpFrontOptions): Promise<HttpFront> {
  // Compiled again when routes are added (the host adds them once the functions are loaded).
  let routes: CompiledRoute[] = [];
  const current = () => {
    if (routes.length !== Object.keys(o.routes).length)
      // API Gateway takes the most specific route: a literal path before one with a variable in it.
      routes = Object.entries(o.routes)
        .map(([key, target]) => compileRoute(key, target))
        .sort((a, b) => a.names.length - b.names.length);
    return routes;
  };
  // One limit per function, shared by its routes.
  const limits = new Map<string, { running: number; waiting: (() => void)[] }>();
  const slot = async (t: RouteTarget) => {
    let l = limits.get(t.name);
    if (!l) limits.set(t.name, (l = { running: 0, waiting: [] }));
    if (l.running >= t.maxConcurrency) await new Promise<void>((resolve) => l.waiting.push(resolve));
    l.running++;
  };
  const release = (t: RouteTarget) => {
    const l = limits.get(t.name)!;
    l.running--;
    l.waiting.shift()?.();
  };
  let opened = false;
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (o.local?.(req, res)) return;
      if (!opened) {
        req.resume();
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', 'apigw-requestid': randomUUID() });
        res.end(JSON.stringify({ message: 'Service Unavailable: starting, retry shortly' }));
        return;
      }
      const path = new URL(req.url ?? '/', 'http://local').pathname;
      let found: ReturnType<typeof matchRoute>;
      try {
        found = matchRoute(current(), req.method ?? 'GET', path);
      } catch {
        found = undefined; // a malformed escape in the path
      }
      if (!found) {
        req.resume();
        return gatewayError(res, 404, 'Not Found');
      }
      const { route, params } = found;
      const body = await readBody(req);
      if (!body) return gatewayError(res, 413, 'Request Entity Too Large');
      let result: APIGatewayProxyStructuredResultV2;
      await slot(route.target);
      try {
        result = await route.target.invoke(toHttpApiEvent(req, body, route.key, params));
      } catch (err) {
        o.log(`${route.target.name}: invocation failed (${(err as Error).name})`);
        return gatewayError(res, 500, 'Internal Server Error');
      } finally {
        release(route.target);
      }
      if (Buffer.byteLength(JSON.stringify(result)) > MAX_RESULT) {
        o.log(`${route.target.name}: invocation failed (its response is over Lambda's 6 MB)`);
        return gatewayError(res, 500, 'Internal Server Error');
      }
      const headers: Record<string, string | string[]> = { 'apigw-requestid': randomUUID() };
      for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
      if (result.cookies?.length) headers['set-cookie'] = result.cookies;
      const payload =
        result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
      res.writeHead(result.statusCode ?? 200, headers);
      res.end(payload);
    })().catch((err: Error) => {
      o.log(`http front: ${err.name}`);
      if (!res.headersSent) gatewayError(res, 500, 'Internal Server Error');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    open: () => {
      opened = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
