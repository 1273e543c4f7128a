// Any body whatever gets a 4xx, never a 5xx (issue 10): the validator never throws, and both HTTP fronts (the
// embedded server and the AWS ingest function behind the emulator's HTTP front) answer arbitrary and deeply nested
// JSON, and text that is not JSON, with 400/413/415, both alike to the byte (a device is answered the same way by
// either backend). Ready before traffic: the AWS front answers 503 with Retry-After, never 404, until its routes
// are in place.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { INGEST_LIMITS, jsonDepth } from '#app/ingest.ts';
import { startHttpFront, type HttpFront, type RouteTarget } from '#hosts/aws-emulator/http-front.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { validateMessage } from '#domain/contract.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { quiet } from '#test/support/lambda-events.ts';
import { msg } from '#test/support/messages.ts';
import { MemoryQueue, MemoryTokenStore } from '#test/support/port-fakes.ts';

const TOKEN = 'hostile-test-token-of-at-least-32-chars';
const NOW = Date.parse('2026-01-10T09:00:00Z');

/** A value nested `depth` deep, as text: arrays, objects, or both. */
const nested = (depth: number, kind: 'array' | 'object' | 'mixed') => {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const array = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    open += array ? '[' : '{"k":';
    close = (array ? ']' : '}') + close;
  }
  return `${open}1${close}`;
};

/** Bodies a hostile or broken gateway might send: any JSON, deep JSON, JSON inside a message, and non-JSON. */
const bodies = fc.oneof(
  fc.json({ depthSize: 'large' }),
  fc
    .jsonValue()
    .map((v) =>
      JSON.stringify({ ...JSON.parse(JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80 } }))), vitals: v }),
    ),
  fc.jsonValue().map((v) => JSON.stringify([v, v])),
  fc
    .record({
      depth: fc.integer({ min: 1, max: 40_000 }),
      kind: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
    })
    .map(({ depth, kind }) => nested(depth, kind)),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '',
    '[',
    '{"messageId":',
    '\u0000',
    '"\\ud800"',
    '1e400',
    '[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]',
  ),
);

/** A valid message (or a batch of copies) with one to three fields set to something else, or added. */
const FIELDS = [
  'messageId',
  'patientId',
  'observedAt',
  'source',
  'vitals',
  'enrolment',
  'oxygen',
  'vasopressors',
  'medications',
  'neuro',
  'labs',
  'organToxicity',
  'extra',
];
const nearValid = fc
  .array(
    fc.record({
      field: fc.constantFrom(...FIELDS),
      sub: fc.option(
        fc.constantFrom(
          'temperatureC',
          'heartRate',
          'systolicBP',
          'spo2',
          'deviceId',
          'kind',
          'iceScore',
          'device',
          'fio2',
        ),
      ),
      value: fc.oneof(fc.jsonValue(), fc.constantFrom(37.5, -1, 1e9, 'x', null, '2026-13-40T00:00:00Z')),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .chain((edits) =>
    fc.integer({ min: 1, max: 3 }).map((copies) => {
      const m = JSON.parse(JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37 } }))) as Record<
        string,
        unknown
      >;
      for (const e of edits) {
        const section = m[e.field];
        if (e.sub && section !== null && typeof section === 'object')
          (section as Record<string, unknown>)[e.sub] = e.value;
        else m[e.field] = e.value;
      }
      return copies === 1 ? JSON.stringify(m) : JSON.stringify(Array.from({ length: copies }, () => m));
    }),
  );

describe('the validator', () => {
  it('never throws on any JSON value, however deep (30k levels overflowed the stack in its error formatter)', () => {
    for (const kind of ['array', 'object', 'mixed'] as const) {
      expect(validateMessage(JSON.parse(nested(30_000, kind))).ok).toBe(false);
    }
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'large' }), (v) => {
        expect(validateMessage(v).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('measures nesting without parsing, skipping strings and escapes', () => {
    expect(jsonDepth('{"a":[1,{"b":"[[[["}]}', 100)).toBe(3);
    expect(jsonDepth('["\\"[[["]', 100)).toBe(1);
    expect(jsonDepth(nested(30_000, 'array'), INGEST_LIMITS.depth)).toBe(INGEST_LIMITS.depth + 1);
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        const depth = (x: unknown): number =>
          x !== null && typeof x === 'object' ? 1 + Math.max(0, ...Object.values(x as object).map(depth)) : 0;
        expect(jsonDepth(text, 1000)).toBe(depth(v));
      }),
    );
  });
});

describe('both HTTP fronts answer any body with a 4xx', () => {
  let dir: string;
  let embedded: EmbeddedServer;
  let front: HttpFront;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crs-hostile-'));
    embedded = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      localToken: TOKEN,
      pageStream: new PassThrough(),
      log: () => undefined,
      now: () => NOW,
    });
    process.env.CRS_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
    process.env.CRS_TOKENS_TABLE = 'tokens';
    process.env.CRS_STATE_TABLE = 'state';
    process.env.AWS_REGION ??= 'eu-west-1';
    const { createIngestHandler } = await import('#functions/ingest/handler.ts');
    const tokens = new MemoryTokenStore();
    const { issueToken, hashToken } = await import('#app/auth.ts');
    const issued = issueToken('gw', new Date(NOW));
    await tokens.put({ ...issued.record, hash: hashToken(TOKEN) });
    const ingest = quiet(
      createIngestHandler({ queue: new MemoryQueue(), tokens, now: () => NOW, ...telemetry('ingest') }),
    );
    const target: RouteTarget = { name: 'ingest', maxConcurrency: 4, invoke: (e) => ingest(e) };
    front = await startHttpFront({
      port: 0,
      host: '127.0.0.1',
      routes: { 'POST /v1/messages': target, 'POST /v1/messages/batch': target },
      log: () => undefined,
    });
    front.open();
  });
  afterAll(async () => {
    await embedded.close();
    await front.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (base: string, path: string, body: string) =>
    (
      await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      })
    ).status;

  it('30k-deep arrays and objects: 400 on both, single and batch (413 where that is also over the size limit)', async () => {
    for (const base of [embedded.url, front.url]) {
      for (const path of ['/v1/messages', '/v1/messages/batch']) {
        expect(await post(base, path, nested(30_000, 'array')), `${base}${path}`).toBe(400);
        expect(await post(base, path, nested(10_000, 'object')), `${base}${path}`).toBe(400);
        const big = await post(base, path, nested(30_000, 'mixed'));
        expect(path.endsWith('batch') ? big === 400 : big === 413, `${base}${path}: ${big}`).toBe(true);
      }
    }
  });

  it('the same status and answer from both, for any body and for messages with fields gone wrong', async () => {
    const answer = async (base: string, path: string, body: string) => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      });
      return { status: r.status, body: await r.text() };
    };
    const statuses = new Set<number>();
    const valid = JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37 } }, 'same-answer-1'));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(bodies, nearValid),
        fc.constantFrom('/v1/messages', '/v1/messages/batch'),
        async (body, path) => {
          const embeddedAnswer = await answer(embedded.url, path, body);
          expect(await answer(front.url, path, body)).toEqual(embeddedAnswer);
          statuses.add(embeddedAnswer.status);
        },
      ),
      {
        numRuns: 300,
        // A message as sent, alone and in a batch: accepted by both, with the same answer.
        examples: [
          [valid, '/v1/messages'],
          [`[${valid},${valid}]`, '/v1/messages/batch'],
        ],
      },
    );
    expect([...statuses].sort()).toEqual(expect.arrayContaining([202, 400]));
  });

  it('arbitrary bodies: a 4xx (or 202 for a valid message), never a 5xx, on both', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, fc.constantFrom('/v1/messages', '/v1/messages/batch'), async (body, path) => {
        for (const base of [embedded.url, front.url]) {
          const status = await post(base, path, body);
          expect(status === 202 || (status >= 400 && status <= 499), `${status} from ${base}${path}`).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('ready before traffic', () => {
  it('the AWS front answers 503 with Retry-After until its routes are in place, never 404 for a known route', async () => {
    const routes: Record<string, RouteTarget> = {};
    const front = await startHttpFront({ port: 0, host: '127.0.0.1', routes, log: () => undefined });
    try {
      const early = await fetch(`${front.url}/v1/messages`, { method: 'POST', body: '{}' });
      expect(early.status).toBe(503);
      expect(early.headers.get('retry-after')).toBe('1');
      routes['POST /v1/messages'] = {
        name: 'ingest',
        maxConcurrency: 1,
        invoke: async () => ({ statusCode: 202, body: '{}' }),
      };
      front.open();
      expect((await fetch(`${front.url}/v1/messages`, { method: 'POST', body: '{}' })).status).toBe(202);
      expect((await fetch(`${front.url}/nowhere`, { method: 'POST', body: '{}' })).status).toBe(404);
    } finally {
      await front.close();
    }
  });
});
