// What the JSON routes echo of what a sender sent is bounded as the FHIR and HL7 v2 answers are (2026-12-07): a
// value or key quoted (shared/domain/printable.ts, quoted with SENDER_MOST), at most 64 characters then `..."`, its
// control and format characters escaped; a message's problems named up to 20, the rest counted. One table per route
// family: the device messages (handleIngest: crs serve and the ingest Lambda alike), the JSON writes
// (/v1/acks on both backends and the board's writes: jsonObject), the board's silences and monitoring.
import { beforeEach, describe, expect, it } from 'vitest';
import { ACK_BODY_LIMIT } from '#app/ack.ts';
import { handleIngest, type HttpRequest, type IngestDeps } from '#app/ingest.ts';
import { jsonObject } from '#app/json-body.ts';
import { BoardChanges, changeMonitoring, type MonitoringDeps } from '#app/monitoring.ts';
import { checkSilence } from '#app/silence.ts';
import { msg } from '#test/support/messages.ts';
import { type MemoryQueue, type MemoryTokenStore, ingestFakes } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const LONG = 'x'.repeat(5000);
/** 64 characters of the value, then `..."`: never the 65th, never the rest. */
const CUT = `"${'x'.repeat(64)}..."`;
const BIDI = 'a\u202eb';

/** Each echo bounded: the cut is there, no run of 65 of the value, a bidirectional override never raw. */
const bounded = (text: string) => {
  expect(text).not.toMatch(/x{65}/);
  expect(text).not.toContain('\u202e');
};

let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW));
});
const deps = (): IngestDeps => ({ queue, tokens, now: () => NOW });
/** A request without its token (the tables are built before the token is issued): `send` adds it. */
const post = (body: unknown, path = '/v1/messages', headers: Record<string, string> = {}): HttpRequest => ({
  method: 'POST',
  path,
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const send = (req: HttpRequest) =>
  handleIngest({ ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } }, deps());
const base = msg('P-1', 0, { vitals: { heartRate: 80 } });

describe('device messages (POST /v1/messages and /v1/messages/batch)', () => {
  const frac = `2027-01-10T08:59:00.${'1'.repeat(5000)}Z`;
  // [echo point, request, what the answer says of it]
  const cases: [string, HttpRequest, string | RegExp][] = [
    ['an unknown key', post({ ...base, [LONG]: 1 }), `message: unknown section or field ${CUT}; allowed: `],
    ['an unknown key with an override', post({ ...base, [BIDI]: 1 }), 'unknown section or field "a\\u202eb"'],
    ['an enum value', post({ ...base, source: { ...base.source, kind: LONG } }), `source.kind: ${CUT} is not one of`],
    ['a string for a number', post({ ...base, vitals: { heartRate: LONG } }), `vitals.heartRate: ${CUT} is not a`],
    ['a messageId', post({ ...base, messageId: LONG }), `messageId: ${CUT} is not 1-128`],
    ['a patientId', post({ ...base, patientId: LONG }), `patientId: ${CUT} is not 1-64`],
    ['a deviceId', post({ ...base, source: { ...base.source, deviceId: LONG } }), `source.deviceId: ${CUT} is not`],
    ['a label', post({ ...base, enrolment: { ward: `${LONG}\u202e` } }), `enrolment.ward: ${CUT} is longer than`],
    [
      'an observedAt of 5,000 second fractions',
      post({ ...base, observedAt: frac }),
      /^observedAt: "2027-01-10T08:59:00\.1{44}\.\.\." is in the future/,
    ],
    [
      'a key twice, with an override',
      post(`{"vitals":{"${BIDI}":1,"${BIDI}":2}}`),
      'vitals["a\\u202eb"]: the key appears twice',
    ],
    ['JSON the parser quotes', post('{"a":\u202eb}'), /^body is not valid JSON: Unexpected token '\\u202e'/],
    [
      'a content-type',
      post(base, '/v1/messages', { 'content-type': `text/${LONG}` }),
      `content-type "text/${'x'.repeat(59)}..." is not JSON`,
    ],
    ['a path', post(base, `/v1/${LONG}`), `no route "/v1/${'x'.repeat(60)}..."; POST`],
    [
      'a content-encoding',
      post(base, '/v1/messages', { 'content-encoding': LONG }),
      `content-encoding ${CUT} is not taken: send the body uncompressed`,
    ],
    [
      'a content-encoding with an override',
      post(base, '/v1/messages', { 'content-encoding': `gzip, ${BIDI}` }),
      'content-encoding "gzip, a\\u202eb" is not taken',
    ],
  ];
  it.each(cases)('%s: quoted, cut at 64 characters, the answer small', async (_, req, said) => {
    const out = await send(req);
    expect(out.status).toBeGreaterThanOrEqual(400);
    bounded(out.body);
    expect(out.body.length).toBeLessThan(400);
    const answer = JSON.parse(out.body) as { error?: string; errors?: string[] };
    const text = answer.error ?? answer.errors![0]!;
    if (typeof said === 'string') expect(text).toContain(said);
    else expect(text).toMatch(said);
    expect(queue.messages).toHaveLength(0);
  });

  it('many problems: 5 unknown keys named, 20 problems, the rest counted; a batch bounded by its items', async () => {
    // 12 unknown keys of 5,000 characters (60 KB, under the 64 KiB of one message): 5 named, 64 characters each.
    const keys = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`${i}${LONG}`, 1]));
    const many = await send(post({ ...base, ...keys }));
    expect(many.status).toBe(400);
    bounded(many.body);
    expect(many.body.length).toBeLessThan(1500);
    expect(JSON.parse(many.body).errors[0]).toMatch(/; and 7 more unknown \(not named\)$/);
    // Every field wrong, each with a 100-character value (a batch of 100 of them fits its 1 MiB): 20 named, then one
    // counting the rest.
    const wrong = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, 'x'.repeat(100)]));
    const all = {
      ...base,
      vitals: wrong(['temperatureC', 'heartRate', 'respiratoryRate', 'systolicBP', 'diastolicBP', 'spo2']),
      labs: wrong(['crpMgL', 'ferritinNgMl', 'il6PgMl']),
      neuro: wrong(['iceScore', 'consciousness', 'seizure', 'motorWeakness', 'cerebralEdema']),
      organToxicity: wrong(['maxCtcaeGrade', 'transaminitisGrade']),
      oxygen: wrong(['device', 'flowLpm', 'fio2', 'forComfort']),
      enrolment: wrong(['therapy', 'product', 'infusedAt', 'weightKg', 'bed', 'ward']),
    };
    const out = await send(post(all));
    const { errors } = JSON.parse(out.body) as { errors: string[] };
    expect(errors).toHaveLength(21);
    expect(errors[20]).toBe('and 6 more problems in this message, not named (the first 20 are)');
    bounded(out.body);
    expect(out.body.length).toBeLessThan(3500);
    // The same in a batch, each message's answer bounded alike: 100 messages, 100 keys of 5,000 characters.
    const batch = Array.from({ length: 100 }, (_, i) => ({ ...all, messageId: `m-${i}`, [`${i}${LONG}`]: 1 }));
    const b = await send(post(batch, '/v1/messages/batch'));
    expect(b.status).toBe(400);
    bounded(b.body);
    const items = JSON.parse(b.body) as { errors: { index: number; errors: string[] }[] };
    expect(items.errors).toHaveLength(100);
    // The unknown key is the 27th problem of each (zod names unknown keys after the fields): counted, not named.
    for (const item of items.errors) {
      expect(item.errors).toHaveLength(21);
      expect(item.errors[20]).toBe('and 7 more problems in this message, not named (the first 20 are)');
    }
    expect(b.body.length).toBeLessThan(100 * 3500);
  });
});

describe('JSON writes (POST /v1/acks on both backends, the board writes)', () => {
  // The largest key that fits the 4 KiB body; a longer body is refused 413 before any key is read.
  const KEY = 'x'.repeat(ACK_BODY_LIMIT - 100);
  const FIELDS = ['token', 'by'];
  const cases: [string, string, string][] = [
    ['an unknown field', `{"${KEY}":1}`, `unknown field "${'x'.repeat(64)}..."; allowed: token, by`],
    ['an unknown field with an override', `{"${BIDI}":1}`, 'unknown field "a\\u202eb"'],
    [
      'a key twice',
      `{"by":{"${KEY.slice(2000)}":1,"${KEY.slice(2000)}":2}}`,
      `by["${'x'.repeat(40)}..."]: the key appears twice`,
    ],
    ['a key twice, with an override', `{"${BIDI}":1,"${BIDI}":2}`, '["a\\u202eb"]: the key appears twice'],
  ];
  it.each(cases)('%s: quoted, cut, the answer small', (_, body, said) => {
    const read = jsonObject(body, '{"token": "...", "by": "Dr A"}', ACK_BODY_LIMIT, FIELDS);
    expect(read.ok).toBe(false);
    const { errors } = read as { errors: string[] };
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(said);
    bounded(JSON.stringify(errors));
    expect(JSON.stringify(errors).length).toBeLessThan(300);
  });
  it('a body over the limit: 413 naming only the limit', () => {
    const read = jsonObject(`{"${LONG}":1}`, '{}', ACK_BODY_LIMIT, FIELDS);
    expect(read).toEqual({ ok: false, status: 413, errors: [`body: more than ${ACK_BODY_LIMIT} bytes`] });
  });
});

describe("the board's silences and monitoring (crs serve)", () => {
  const KEY = 'x'.repeat(ACK_BODY_LIMIT - 100);
  it('a silence: an unknown field quoted and cut', () => {
    const out = checkSilence({ [KEY]: 1, reason: 'MRI', minutes: 30, team: 'crs', by: 'Dr A' }, NOW);
    expect(out).toEqual({ ok: false, errors: [expect.stringContaining(`unknown field "${'x'.repeat(64)}..."`)] });
    bounded(JSON.stringify(out));
  });
  it.each([
    ['an unknown field', 'P-1', { [KEY]: 1, by: 'Dr A' }, `unknown field "${'x'.repeat(64)}..."`],
    ['a reason', 'P-1', { reason: KEY, by: 'Dr A' }, `reason: "${'x'.repeat(64)}..." is not one of`],
    ['a patient id (the path)', LONG, { reason: 'discharged', by: 'Dr A' }, `patientId: "${'x'.repeat(64)}..." is not`],
  ] as const)('the end of monitoring: %s quoted and cut', async (_, patientId, body, said) => {
    const monitoring: MonitoringDeps = {
      ingest: deps(),
      changes: new BoardChanges(),
      state: () => undefined,
      timeZone: 'UTC',
    };
    const out = await changeMonitoring('end', patientId, body, monitoring);
    expect(out.status).toBe(400);
    const { errors } = out.body as { errors: string[] };
    expect(errors[0]).toContain(said);
    bounded(JSON.stringify(out.body));
    expect(JSON.stringify(out.body).length).toBeLessThan(400);
  });
});
