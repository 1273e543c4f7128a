// The ingest core (shared/app/ingest.ts) at its edges: the exact limits and statuses a device gateway sees.
// Found by a mutation run of the input side: each test pins a boundary or a status no other test held.
import { beforeEach, describe, expect, it } from 'vitest';
import { issueToken, localTokenProblem } from '#app/auth.ts';
import { handleIngest, type HttpRequest, type IngestDeps } from '#app/ingest.ts';
import { msg } from '#test/support/messages.ts';
import { type MemoryQueue, type MemoryTokenStore, ingestFakes, reservingDirectory } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;

beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW));
});

const deps = (extra: Partial<IngestDeps> = {}): IngestDeps => ({ queue, tokens, now: () => NOW, ...extra });
const post = (body: unknown, path = '/v1/messages', headers: Record<string, string> = {}): HttpRequest => ({
  method: 'POST',
  path,
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const observedAt = (ms: number) => ({
  ...msg('P-1', 0, { vitals: { heartRate: 80 } }),
  observedAt: new Date(ms).toISOString(),
});

describe('ingest edges', () => {
  it('accepts a device clock exactly 5 minutes ahead, and refuses one a second more naming observedAt', async () => {
    const ok = await handleIngest(post(observedAt(NOW + 5 * 60_000)), deps());
    expect(ok.status).toBe(202);
    const late = await handleIngest(post(observedAt(NOW + 5 * 60_000 + 1000)), deps());
    expect(late.status).toBe(400);
    expect(JSON.parse(late.body).errors[0]).toMatch(
      /^observedAt: .* is in the future \(server time 2026-01-10T09:00:00Z\); check the device clock$/,
    );
    expect(queue.messages).toHaveLength(1);
  });

  it('names a byte order mark before the JSON: the parser said "Unexpected token" and showed an invisible one', async () => {
    const body = `\uFEFF${JSON.stringify(msg('P-1', 0, { vitals: { heartRate: 80 } }))}`;
    for (const path of ['/v1/messages', '/v1/messages/batch']) {
      const r = await handleIngest(post(path.endsWith('batch') ? `\uFEFF[${body.slice(1)}]` : body, path), deps());
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toEqual({
        errors: ['body starts with a byte order mark (U+FEFF): send the JSON without it'],
      });
    }
    expect(queue.messages).toHaveLength(0);
  });

  // Until 2026-12-06 the refusal said the bound only; the sender is told what to do now.
  it('takes a batch of 100 messages and refuses 101 or none with 400, queueing nothing', async () => {
    const batch = (n: number) => Array.from({ length: n }, (_, i) => msg(`P-${i}`, 0, { vitals: { heartRate: 80 } }));
    const over = await handleIngest(post(batch(101), '/v1/messages/batch'), deps());
    expect(over.status).toBe(400);
    expect(JSON.parse(over.body)).toEqual({
      errors: ['a batch holds 1-100 messages (got 101): send them in requests of 100 at most'],
    });
    const none = await handleIngest(post([], '/v1/messages/batch'), deps());
    expect(none.status).toBe(400);
    expect(JSON.parse(none.body)).toEqual({ errors: ['a batch holds 1-100 messages (got 0): send at least one'] });
    expect(queue.messages).toHaveLength(0);
    const full = await handleIngest(post(batch(100), '/v1/messages/batch'), deps());
    expect(full.status).toBe(202);
    expect(queue.messages).toHaveLength(100);
  });

  it('takes a message body of exactly 64 KiB and answers 413 naming the size one byte over', async () => {
    const padded = (bytes: number) => {
      const text = JSON.stringify(msg('P-1', 0, { vitals: { heartRate: 80 } }));
      return text + ' '.repeat(bytes - Buffer.byteLength(text));
    };
    expect((await handleIngest(post(padded(64 * 1024)), deps())).status).toBe(202);
    const over = await handleIngest(post(padded(64 * 1024 + 1)), deps());
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body)).toEqual({ error: 'body is 65537 bytes; the limit is 65536' });
    expect(queue.messages).toHaveLength(1);
  });

  // Until 2026-12-06 the 415 said what was wrong only; it says what to send now.
  it('answers 415 naming a content-type that is not JSON, and takes application/json with a charset', async () => {
    const m = msg('P-1', 0, { vitals: { heartRate: 80 } });
    const form = await handleIngest(post(m, '/v1/messages', { 'content-type': 'text/plain' }), deps());
    expect(form.status).toBe(415);
    expect(JSON.parse(form.body)).toEqual({
      error: 'content-type "text/plain" is not JSON: send application/json (UTF-8)',
    });
    expect(queue.messages).toHaveLength(0);
    const ok = await handleIngest(
      post(m, '/v1/messages', { 'content-type': 'application/json; charset=utf-8' }),
      deps(),
    );
    expect(ok.status).toBe(202);
  });

  it('takes JSON media types only: +json types and a UTF-8 charset, never a look-alike, text or another charset', async () => {
    const taken = [
      'application/json',
      'Application/JSON ; Charset="UTF-8"',
      'application/fhir+json',
      'application/json; v=1',
    ];
    const refused = [
      'application/x-ndjson',
      'application/json-seq',
      'text/json',
      'text/plain; charset=json',
      'application/json; charset=utf-16',
      'application/x-www-form-urlencoded',
    ];
    const m = msg('P-1', 0, { vitals: { heartRate: 80 } });
    for (const type of taken)
      expect((await handleIngest(post(m, '/v1/messages', { 'content-type': type }), deps())).status, type).toBe(202);
    const queued = queue.messages.length;
    for (const type of refused) {
      const r = await handleIngest(post(m, '/v1/messages', { 'content-type': type }), deps());
      expect({ status: r.status, body: JSON.parse(r.body) }, type).toEqual({
        status: 415,
        body: { error: `content-type ${JSON.stringify(type)} is not JSON: send application/json (UTF-8)` },
      });
    }
    expect(queue.messages).toHaveLength(queued);
  });

  it('refuses a body nested 17 deep before parsing it, saying so', async () => {
    const deep = `${'['.repeat(17)}${']'.repeat(17)}`;
    const res = await handleIngest(post(deep), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      errors: ['body nests arrays and objects more than 16 deep; a message needs 4'],
    });
  });

  it('does not count brackets inside strings, escaped quotes included: such a valid message is accepted', async () => {
    const m = msg('P-1', 0, { enrolment: { bed: `x"${'['.repeat(20)}` } });
    const res = await handleIngest(post(m), deps());
    expect(res.status).toBe(202);
    expect(queue.messages.map((q) => q.message)).toEqual([m]);
  });

  it('a batch refused for one patient outside the token gives back the room it reserved for the others', async () => {
    const scoped = issueToken('gw-p1', new Date(NOW), { kind: 'ehr', patients: ['P-1'] });
    await tokens.put(scoped.record);
    const { patients, reserved } = reservingDirectory();
    const as = { authorization: `Bearer ${scoped.token}` };
    const vitals = (p: string) => msg(p, 0, { vitals: { heartRate: 80 } });
    const refused = await handleIngest(
      post([vitals('P-1'), vitals('P-9')], '/v1/messages/batch', as),
      deps({ patients, maxPatients: 1 }),
    );
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error).toBe(
      "not allowed for this device token: message [1] patientId: patient P-9 is not one of this token's patients",
    );
    expect(reserved()).toBe(0);
    const later = await handleIngest(post(vitals('P-1'), '/v1/messages', as), deps({ patients, maxPatients: 1 }));
    expect(later.status).toBe(202);
  });

  it('answers 405 with Allow: POST to any other method, queueing nothing', async () => {
    const res = await handleIngest({ ...post(msg('P-1', 0, { vitals: { heartRate: 80 } })), method: 'PUT' }, deps());
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(queue.messages).toHaveLength(0);
  });

  it('answers 400 when the batch route gets one message instead of a list', async () => {
    const res = await handleIngest(post(msg('P-1', 0, { vitals: { heartRate: 80 } }), '/v1/messages/batch'), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      errors: [
        'body must be a JSON array of messages: one message alone goes to POST /v1/messages, or send it as [ ... ]',
      ],
    });
  });

  // Walked from the docs (2026-12-07): a gateway that posts its batch to the single-message route was told
  // "message: a list of 2 is not an object", which names neither the route it meant nor what to do.
  it('answers 400 naming the batch route when the single-message route gets a list of messages', async () => {
    const two = [msg('P-1', 0, { vitals: { heartRate: 80 } }), msg('P-1', 1, { vitals: { heartRate: 81 } })];
    const res = await handleIngest(post(two), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      errors: ['message: a list of 2 messages is not one message (an object): send a list to POST /v1/messages/batch'],
    });
    expect(queue.messages).toHaveLength(0);
  });

  it('takes the Bearer scheme in any case (RFC 7235), and only a header that is exactly "Bearer <token>"', async () => {
    const m = msg('P-1', 0, { vitals: { heartRate: 80 } });
    expect((await handleIngest(post(m, '/v1/messages', { authorization: `bearer ${token}` }), deps())).status).toBe(
      202,
    );
    for (const authorization of [`Basic Bearer ${token}`, `Bearer ${token} extra`, `Bearer${token}`]) {
      const res = await handleIngest(post(m, '/v1/messages', { authorization }), deps());
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="crs-ingest"');
    }
    expect(queue.messages).toHaveLength(1);
  });
});

describe('headers as hosts pass them', () => {
  it("reads Authorization and Content-Type in any case (API Gateway REST keeps the sender's case)", async () => {
    const m = msg('P-1', 0, { vitals: { heartRate: 80 } });
    const req = (type: string) => ({
      method: 'POST',
      path: '/v1/messages',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
      body: JSON.stringify(m),
    });
    expect((await handleIngest(req('text/plain'), deps())).status).toBe(415);
    expect((await handleIngest(req('application/json'), deps())).status).toBe(202);
  });

  it('takes a message sent without a content-type as JSON', async () => {
    const m = msg('P-1', 0, { vitals: { heartRate: 80 } });
    const res = await handleIngest(
      { method: 'POST', path: '/v1/messages', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(m) },
      deps(),
    );
    expect(res.status).toBe(202);
  });
});

describe('CRS_INGEST_TOKEN', () => {
  it('is refused with a space in it (it travels as a bearer token, which cannot hold one), and named', () => {
    expect(localTokenProblem(`${'a'.repeat(20)} ${'b'.repeat(20)}`)).toBe(
      'CRS_INGEST_TOKEN must be printable ASCII without spaces (it is sent as a bearer token)',
    );
    expect(localTokenProblem('a'.repeat(32))).toBeUndefined();
  });
});

describe('pinned by a mutation run', () => {
  const vitals = (p: string) => msg(p, 0, { vitals: { heartRate: 80 } });
  const paddedTo = (text: string, bytes: number) => text + ' '.repeat(bytes - Buffer.byteLength(text));

  it('takes a batch body of exactly 1 MiB and answers 413 naming the size one byte over, queueing nothing', async () => {
    const text = JSON.stringify(Array.from({ length: 100 }, (_, i) => vitals(`P-${i}`)));
    const over = await handleIngest(post(paddedTo(text, 1024 * 1024 + 1), '/v1/messages/batch'), deps());
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body)).toEqual({ error: 'body is 1048577 bytes; the limit is 1048576' });
    expect(queue.messages).toHaveLength(0);
    const full = await handleIngest(post(paddedTo(text, 1024 * 1024), '/v1/messages/batch'), deps());
    expect(full.status).toBe(202);
    expect(queue.messages).toHaveLength(100);
  });

  it('measures the body limit in UTF-8 bytes: 40,000 two-byte characters are 413, not a field error', async () => {
    const body = JSON.stringify({ ...vitals('P-1'), enrolment: { product: 'é'.repeat(40_000) } });
    expect(body.length).toBeLessThan(64 * 1024);
    const res = await handleIngest(post(body), deps());
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toBe(`body is ${Buffer.byteLength(body)} bytes; the limit is 65536`);
  });

  it('parses a body nested exactly 16 deep (the refusal is for 17): it is then refused for what it holds', async () => {
    const res = await handleIngest(post(`${'['.repeat(16)}${']'.repeat(16)}`), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).errors).toEqual(['message: a list of 1 is not an object']);
  });

  it('names the position of each bad message in a batch and says none was accepted', async () => {
    const bad = { ...vitals('P-2'), vitals: { heartRate: 400 } };
    const res = await handleIngest(post([vitals('P-1'), bad, vitals('P-3')], '/v1/messages/batch'), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      errors: [{ index: 1, errors: ['vitals.heartRate: 400 is outside 0-350'] }],
      accepted: 0,
    });
    expect(queue.messages).toHaveLength(0);
  });

  it('answers 404 to a path that only starts like a route, queueing nothing', async () => {
    for (const path of ['/v1/messages/', '/v1/messages/single', '/v1/messagesx']) {
      const res = await handleIngest(post(vitals('P-1'), path), deps());
      expect(res.status, path).toBe(404);
    }
    expect(queue.messages).toHaveLength(0);
  });

  it("judges a batch's device clocks by the server's time, as it does a single message", async () => {
    const ahead = { ...vitals('P-1'), observedAt: new Date(NOW + 5 * 60_000 + 1000).toISOString() };
    const res = await handleIngest(post([vitals('P-2'), ahead], '/v1/messages/batch'), deps());
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).errors[0].index).toBe(1);
    expect(queue.messages).toHaveLength(0);
  });

  it('queues a message resent with its keys in another order as the same content (one digest: deduplicated)', async () => {
    const m = msg('P-1', 0, { vitals: { heartRate: 80, spo2: 97 } });
    const reordered = Object.fromEntries(Object.entries({ ...m, vitals: { spo2: 97, heartRate: 80 } }).reverse());
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(m));
    const digests: string[] = [];
    const recording: IngestDeps['queue'] = { enqueue: async (qs) => void digests.push(...qs.map((q) => q.digest)) };
    expect((await handleIngest(post(m), deps({ queue: recording }))).status).toBe(202);
    expect((await handleIngest(post(reordered), deps({ queue: recording }))).status).toBe(202);
    const other = msg('P-1', 0, { vitals: { heartRate: 81, spo2: 97 } });
    expect((await handleIngest(post(other), deps({ queue: recording }))).status).toBe(202);
    // One digest for one content and another for other content: a digest that was the same for all passed here.
    expect(digests).toEqual([digests[0], digests[0], digests[2]]);
    expect(new Set(digests).size).toBe(2);
  });

  it('queues both messages of a batch that reuses a messageId with other content (a correction), in order', async () => {
    const first = msg('P-1', 0, { vitals: { heartRate: 80 } }, 'M-7');
    const correction = msg('P-1', 0, { vitals: { heartRate: 90 } }, 'M-7');
    const queued: unknown[] = [];
    const recording: IngestDeps['queue'] = { enqueue: async (qs) => void queued.push(...qs.map((q) => q.message)) };
    const res = await handleIngest(post([first, correction], '/v1/messages/batch'), deps({ queue: recording }));
    expect(res.status).toBe(202);
    expect(queued).toEqual([first, correction]);
  });
});
