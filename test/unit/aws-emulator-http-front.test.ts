// The HTTP front of `crs serve --backend aws` (shared/hosts/aws-emulator/http-front.ts), standing in for the stack's
// API Gateway HTTP API: which requests reach a function, the payload 2.0 event it gets, how its result and its
// failure are answered, and the function's concurrency.
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpFront, type HttpFront, type RouteTarget } from '#hosts/aws-emulator/http-front.ts';

let front: HttpFront | undefined;
afterEach(async () => {
  await front?.close();
  front = undefined;
});

type Invoke = RouteTarget['invoke'];

async function frontWith(
  routes: Record<string, Invoke>,
  maxConcurrency = 4,
): Promise<{ url: string; events: APIGatewayProxyEventV2[] }> {
  const events: APIGatewayProxyEventV2[] = [];
  const targets: Record<string, RouteTarget> = {};
  for (const [key, invoke] of Object.entries(routes))
    targets[key] = {
      name: 'fn',
      maxConcurrency,
      invoke: (e) => {
        events.push(e);
        return invoke(e);
      },
    };
  front = await startHttpFront({ port: 0, host: '127.0.0.1', routes: targets, log: () => undefined });
  front.open();
  return { url: front.url, events };
}

const ok: Invoke = async () => ({ statusCode: 200, body: 'ok' });

/** A raw request (the path sent as given, not normalized as fetch would). */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the local API front, pinned by a mutation run', () => {
  it('passes a route by its method and its whole path only: anything else is 404 and reaches no function', async () => {
    const { url, events } = await frontWith({ 'POST /v1/messages': ok, 'GET /ack/{token}': ok });
    expect((await raw(url, 'GET', '/v1/messages')).status).toBe(404);
    expect((await raw(url, 'POST', '/v1/messages/extra')).status).toBe(404);
    expect((await raw(url, 'GET', '/ack/one/two')).status).toBe(404);
    // A malformed escape in a path parameter: API Gateway's 404, not a failure of the front.
    const bad = await raw(url, 'GET', '/ack/%E0%A4%A');
    expect(bad.status).toBe(404);
    expect(JSON.parse(bad.body.toString())).toEqual({ message: 'Not Found' });
    expect(events).toHaveLength(0);
    expect((await raw(url, 'POST', '/v1/messages')).status).toBe(200);
  });

  it('takes the most specific route, as API Gateway does: a literal path before a variable, whatever their order', async () => {
    const { url, events } = await frontWith({ 'POST /fhir/r4/{resource}': ok, 'POST /fhir/r4/Bundle': ok });
    await raw(url, 'POST', '/fhir/r4/Bundle');
    await raw(url, 'POST', '/fhir/r4/Observation');
    expect(events.map((e) => e.routeKey)).toEqual(['POST /fhir/r4/Bundle', 'POST /fhir/r4/{resource}']);
    expect(events[0]!.pathParameters).toBeUndefined();
  });

  it('gives a path parameter decoded, and headers, cookies and repeated query parameters as API Gateway does', async () => {
    const { url, events } = await frontWith({ 'GET /ack/{token}': ok });
    await raw(url, 'GET', '/ack/a%20b%2Bc?x=1&x=2&y=3', { cookie: 'a=1; b=2', 'x-thing': 'v' });
    const [e] = events;
    expect(e!.pathParameters).toEqual({ token: 'a b+c' });
    expect(e!.queryStringParameters).toEqual({ x: '1,2', y: '3' });
    expect(e!.rawQueryString).toBe('x=1&x=2&y=3');
    expect(e!.cookies).toEqual(['a=1', 'b=2']);
    expect(e!.headers.cookie).toBeUndefined();
    expect(e!.headers['x-thing']).toBe('v');
    expect(e!.routeKey).toBe('GET /ack/{token}');
  });

  it('gives a text body as text and any other body in base64', async () => {
    const { url, events } = await frontWith({ 'POST /v1/messages': ok });
    await raw(url, 'POST', '/v1/messages', { 'content-type': 'application/json' }, Buffer.from('{"a":"é"}'));
    const binary = Buffer.from([0x0b, 0xff, 0x00, 0x1c, 0x0d]);
    await raw(url, 'POST', '/v1/messages', { 'content-type': 'application/octet-stream' }, binary);
    expect(events[0]).toMatchObject({ body: '{"a":"é"}', isBase64Encoded: false });
    expect(events[1]).toMatchObject({ body: binary.toString('base64'), isBase64Encoded: true });
  });

  it("answers the function's result: its status (200 when it gives none), its headers, its cookies and its body, base64 decoded", async () => {
    const bytes = Buffer.from([0x00, 0xfe, 0x41]);
    const { url } = await frontWith({
      'POST /a': async () => ({
        statusCode: 503,
        headers: { 'Retry-After': '7', 'Content-Type': 'application/json' },
        body: '{"busy":true}',
      }),
      'POST /b': async () => ({ body: bytes.toString('base64'), isBase64Encoded: true, cookies: ['s=1; HttpOnly'] }),
    });
    const a = await raw(url, 'POST', '/a');
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('7');
    expect(a.body.toString()).toBe('{"busy":true}');
    const b = await raw(url, 'POST', '/b');
    expect(b.status).toBe(200);
    expect(b.body).toEqual(bytes);
    expect(b.headers['set-cookie']).toEqual(['s=1; HttpOnly']);
  });

  it("answers a function error as API Gateway's 500, and frees the function's slot for the next request", async () => {
    let calls = 0;
    const { url } = await frontWith(
      {
        'POST /v1/messages': async () => {
          if (++calls === 1) throw new Error('crashed');
          return { statusCode: 202, body: '' };
        },
      },
      1,
    );
    const failed = await raw(url, 'POST', '/v1/messages');
    expect(failed.status).toBe(500);
    expect(JSON.parse(failed.body.toString())).toEqual({ message: 'Internal Server Error' });
    expect((await raw(url, 'POST', '/v1/messages')).status).toBe(202);
  });

  it("takes a body of exactly API Gateway's 10 MiB, and answers 413 to one byte more without invoking", async () => {
    const { url, events } = await frontWith({
      'POST /v1/messages': async (e) => ({ statusCode: 200, body: String(e.body?.length) }),
    });
    const limit = 10 * 1024 * 1024;
    const at = await raw(url, 'POST', '/v1/messages', { 'content-type': 'text/plain' }, Buffer.alloc(limit, 0x61));
    expect(at.status).toBe(200);
    expect(at.body.toString()).toBe(String(limit));
    const over = await raw(
      url,
      'POST',
      '/v1/messages',
      { 'content-type': 'text/plain' },
      Buffer.alloc(limit + 1, 0x61),
    );
    expect(over.status).toBe(413);
    expect(events).toHaveLength(1);
  });

  it("runs at most the function's reserved concurrency at once; the others wait their turn and are all served", async () => {
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const { url } = await frontWith(
      {
        'POST /v1/messages': async () => {
          running++;
          most = Math.max(most, running);
          await new Promise<void>((r) => release.push(r));
          running--;
          return { statusCode: 202, body: '' };
        },
      },
      2,
    );
    const answers = Promise.all([1, 2, 3, 4].map(() => raw(url, 'POST', '/v1/messages')));
    while (release.length < 2) await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(running).toBe(2);
    let served = 0;
    while (served < 4) {
      if (release.length > 0) {
        release.shift()!();
        served++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    expect((await answers).map((a) => a.status)).toEqual([202, 202, 202, 202]);
    expect(most).toBe(2);
  });
});
