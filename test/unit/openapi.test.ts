// The OpenAPI document of the device-facing HTTP API (shared/app/openapi.ts): published as generated, valid OpenAPI
// 3.1, the contract's own schema, its examples real fixtures, its paths the ones `crs serve` answers (the stack's:
// test/infra/openapi-routes.test.ts), and every status it documents the one the code answers, with the body's shape.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileErrors, dereference, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACK_ROUTES } from '#app/ack-flow.ts';
import { signAck } from '#app/ack.ts';
import { issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { FHIR_RESOURCES } from '#app/fhir/translate.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { ROUTES } from '#app/ingest.ts';
import { handleDeviceRequest } from '#app/interfaces/http.ts';
import { FHIR_METADATA_ROUTE, INTERFACE_ROUTES } from '#app/interfaces/routes.ts';
import { OPENAPI_ROUTE, openApiDocument } from '#app/openapi.ts';
import { deviceMessageJsonSchema, validateMessage, type DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { crsAsync } from '#test/support/cli.ts';
import { startPagingServer } from '#test/support/in-process-serve.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { MemoryQueue, ingestFakes } from '#test/support/port-fakes.ts';
import { until } from '#test/support/until.ts';

// A JSON document, read by path.
type Json = any;
const doc: Json = openApiDocument();
const published = JSON.parse(readFileSync(new URL('../../shared/contract/openapi.v1.json', import.meta.url), 'utf8'));
const fixture = readFileSync(new URL('../fixtures/sample-timeline.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as DeviceMessage);

/** Every operation: "POST /v1/messages" -> the operation. */
const operations = (d: Json): Record<string, Json> =>
  Object.fromEntries(
    Object.entries(d.paths as Json).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op]),
    ),
  );
const example = (op: string, type = 'application/json') => operations(doc)[op].requestBody.content[type].example;

describe('the published document', () => {
  it('is the one generated from the code (run `npm run schema` after changing a route, a status or the contract)', () => {
    expect(published).toEqual(doc);
  });

  it('is valid OpenAPI 3.1, without warnings (and the validator refuses a broken one)', async () => {
    const r = await validate(structuredClone(doc));
    expect(r.valid ? [] : compileErrors(r)).toEqual([]);
    expect(r).toMatchObject({ valid: true, warnings: [], specification: 'OpenAPI' });
    expect(doc.openapi).toMatch(/^3\.1\./);
    const broken = structuredClone(doc) as Json;
    delete broken.paths[ROUTES.single].post.responses['202'].description;
    expect((await validate(broken)).valid).toBe(false);
  });

  it("holds the contract's own JSON Schema once, and every device message body refers to it", () => {
    expect(doc.components.schemas.DeviceMessage).toEqual(deviceMessageJsonSchema());
    const ref = { $ref: '#/components/schemas/DeviceMessage' };
    const ops = operations(doc);
    expect(ops[`POST ${ROUTES.single}`].requestBody.content['application/json'].schema).toEqual(ref);
    expect(ops[`POST ${ROUTES.batch}`].requestBody.content['application/json'].schema.items).toEqual(ref);
    // Written nowhere else: the schema's own keys appear in the document as often as in the schema (twice since
    // 2026-12-07: a property, and a section of which the schema requires one).
    const times = (json: unknown) => JSON.stringify(json).split('"organToxicity"').length - 1;
    expect(times(doc)).toBe(times(deviceMessageJsonSchema()));
  });

  it('gives as example requests lines of test/fixtures/sample-timeline.ndjson, which the contract accepts', () => {
    const single = example(`POST ${ROUTES.single}`);
    const batch = example(`POST ${ROUTES.batch}`) as DeviceMessage[];
    for (const m of [single, ...batch]) {
      expect(fixture).toContainEqual(m);
      expect(validateMessage(m)).toEqual({ ok: true, message: m });
    }
  });

  it('is what `crs schema --openapi` prints', async () => {
    const r = await crsAsync(['schema', '--openapi'], {});
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(doc);
  });
});

// ---- Every documented status, provoked on the real code: crs serve in process, and the ingest with a queue down.

const TOKEN = 'local-test-token-of-at-least-32-chars';
const NOW = Date.parse('2026-11-26T12:00:00Z');
let dir: string;
let server: EmbeddedServer;
let lines: string[];
let pumpToken: string;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
interface Case {
  /** The operation, as "METHOD /path/{template}". */
  op: string;
  /** The status the request must get. */
  status: number;
  /** What the request is. */
  what: string;
  send: () => Promise<Answer>;
}

const read = async (res: Response): Promise<Answer> => ({
  status: res.status,
  headers: Object.fromEntries(res.headers),
  body: await res.text(),
});
function http(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return async () =>
    read(await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) }));
}
const bearer = (token = TOKEN) => ({ authorization: `Bearer ${token}` });
const JSON_TYPE = { 'content-type': 'application/json' };
const HL7_TYPE = { 'content-type': 'x-application/hl7-v2+er7' };
const FHIR_TYPE = { 'content-type': 'application/fhir+json' };

/** The ingest, as both hosts call it, with its queue down: nothing accepted, 503. */
function queueDown(path: string, body: string, type: Record<string, string>) {
  return async (): Promise<Answer> => {
    const fakes = await ingestFakes(NOW);
    const queue = new MemoryQueue();
    queue.failWith = new Error('down');
    const { messageIds: _ids, ...answer } = await handleDeviceRequest(
      { method: 'POST', path, headers: { ...bearer(fakes.token), ...type }, body },
      { queue, tokens: fakes.tokens, now: () => NOW },
    );
    return answer;
  };
}

const bundleOf = (m: DeviceMessage, type = 'transaction') => ({ ...new FhirEncoder().bundle(m)!, type });
const FAHRENHEIT = (m: DeviceMessage) => ({ ...m, vitals: { temperatureC: 101.3 } });
const [READING] = fixture.filter((m) => m.vitals) as [DeviceMessage];
const [ENROLMENT] = fixture.filter((m) => m.enrolment) as [DeviceMessage];

/** The refusals every POST device route gives, whatever its format. */
function deviceRefusals(op: string, path: string, type: Record<string, string>, limit: number): Case[] {
  return [
    { op, status: 401, what: 'no token', send: http('POST', path, '{}', type) },
    { op, status: 403, what: 'an unknown token', send: http('POST', path, '{}', { ...bearer('nope'), ...type }) },
    { op, status: 405, what: 'GET', send: http('GET', path) },
    {
      op,
      status: 413,
      what: 'a body over the limit',
      send: http('POST', path, ' '.repeat(limit + 1), { ...bearer(), ...type }),
    },
    {
      op,
      status: 415,
      what: 'text/plain',
      send: http('POST', path, '{}', { ...bearer(), 'content-type': 'text/plain' }),
    },
    { op, status: 503, what: 'the queue down', send: queueDown(path, bodyFor(op), type) },
  ];
}

/** A request body each route accepts: the document's own examples. */
function bodyFor(op: string): string {
  if (op.includes('hl7v2')) return example(op, 'x-application/hl7-v2+er7');
  if (op.includes('{resource}')) return JSON.stringify(new FhirEncoder().resources(READING)[0]);
  if (op.includes('fhir')) return JSON.stringify(example(op, 'application/fhir+json'));
  return JSON.stringify(example(op));
}

function cases(): Case[] {
  const single = `POST ${ROUTES.single}`;
  const batch = `POST ${ROUTES.batch}`;
  const hl7 = 'POST /v1/hl7v2';
  const fhirOps = ['POST /fhir/r4', 'POST /fhir/r4/Bundle'];
  const resource = 'POST /fhir/r4/{resource}';
  const observation = JSON.stringify(new FhirEncoder().resources(READING)[0]);
  const acks = `POST ${ACK_ROUTES.api}`;
  const linkGet = `GET ${ACK_ROUTES.link}`;
  const linkPost = `POST ${ACK_ROUTES.link}`;
  const ackApi = (body: unknown, headers: Record<string, string> = JSON_TYPE) =>
    http('POST', ACK_ROUTES.api, typeof body === 'string' ? body : JSON.stringify(body), headers);
  const form = (token: string, body: string) =>
    http('POST', `/ack/${token}`, body, { 'content-type': 'application/x-www-form-urlencoded' });
  const forged = 'v1.forged.link';
  return [
    {
      op: single,
      status: 202,
      what: 'the example',
      send: http('POST', ROUTES.single, bodyFor(single), { ...bearer(), ...JSON_TYPE }),
    },
    {
      op: single,
      status: 400,
      what: 'a Fahrenheit temperature',
      send: http(
        'POST',
        ROUTES.single,
        JSON.stringify({ ...READING, vitals: { ...READING.vitals, temperatureC: 101.3 } }),
        { ...bearer(), ...JSON_TYPE },
      ),
    },
    {
      op: single,
      status: 403,
      what: 'a section the token may not send',
      send: async () =>
        http('POST', ROUTES.single, JSON.stringify(ENROLMENT), { ...bearer(pumpToken), ...JSON_TYPE })(),
    },
    ...deviceRefusals(single, ROUTES.single, JSON_TYPE, 64 * 1024),
    {
      op: batch,
      status: 202,
      what: 'the example',
      send: http('POST', ROUTES.batch, bodyFor(batch), { ...bearer(), ...JSON_TYPE }),
    },
    {
      op: batch,
      status: 400,
      what: 'a bad message at index 1',
      send: http(
        'POST',
        ROUTES.batch,
        JSON.stringify([READING, { ...READING, vitals: { ...READING.vitals, temperatureC: 101.3 } }]),
        { ...bearer(), ...JSON_TYPE },
      ),
    },
    {
      op: batch,
      status: 400,
      what: 'an empty batch',
      send: http('POST', ROUTES.batch, '[]', { ...bearer(), ...JSON_TYPE }),
    },
    {
      op: batch,
      status: 403,
      what: 'a section the token may not send',
      send: async () =>
        http('POST', ROUTES.batch, JSON.stringify([READING, ENROLMENT]), { ...bearer(pumpToken), ...JSON_TYPE })(),
    },
    ...deviceRefusals(batch, ROUTES.batch, JSON_TYPE, 1024 * 1024),
    {
      op: hl7,
      status: 202,
      what: 'the example',
      send: http('POST', '/v1/hl7v2', bodyFor(hl7), { ...bearer(), ...HL7_TYPE }),
    },
    { op: hl7, status: 400, what: 'not HL7', send: http('POST', '/v1/hl7v2', 'hello', { ...bearer(), ...HL7_TYPE }) },
    {
      op: hl7,
      status: 403,
      what: 'nothing the token may send',
      send: async () => http('POST', '/v1/hl7v2', bodyFor(hl7), { ...bearer(pumpToken), ...HL7_TYPE })(),
    },
    {
      op: hl7,
      status: 422,
      what: 'nothing acceptable',
      send: http('POST', '/v1/hl7v2', toPcd01(FAHRENHEIT(READING))!, { ...bearer(), ...HL7_TYPE }),
    },
    ...deviceRefusals(hl7, '/v1/hl7v2', HL7_TYPE, 1024 * 1024),
    ...fhirOps.flatMap((op): Case[] => {
      const path = op.slice('POST '.length);
      return [
        // The example, a transaction: a transaction-response (until 2026-12-05 it was 202 and an OperationOutcome).
        { op, status: 200, what: 'the example', send: http('POST', path, bodyFor(op), { ...bearer(), ...FHIR_TYPE }) },
        {
          op,
          status: 200,
          what: 'a batch',
          send: http('POST', path, JSON.stringify(bundleOf(ENROLMENT, 'batch')), { ...bearer(), ...FHIR_TYPE }),
        },
        {
          op,
          status: 202,
          what: 'a collection',
          send: http('POST', path, JSON.stringify(bundleOf(ENROLMENT, 'collection')), { ...bearer(), ...FHIR_TYPE }),
        },
        { op, status: 400, what: 'not JSON', send: http('POST', path, 'hello', { ...bearer(), ...FHIR_TYPE }) },
        {
          op,
          status: 403,
          what: 'nothing the token may send',
          send: async () => http('POST', path, bodyFor(op), { ...bearer(pumpToken), ...FHIR_TYPE })(),
        },
        {
          op,
          status: 422,
          what: 'a Fahrenheit temperature',
          send: http('POST', path, JSON.stringify(bundleOf(FAHRENHEIT(READING))), { ...bearer(), ...FHIR_TYPE }),
        },
        ...deviceRefusals(op, path, FHIR_TYPE, 1024 * 1024),
      ];
    }),
    {
      op: resource,
      status: 202,
      what: 'an Observation',
      send: http('POST', '/fhir/r4/Observation', observation, { ...bearer(), ...FHIR_TYPE }),
    },
    {
      op: resource,
      status: 400,
      what: 'a Bundle to Observation',
      send: http('POST', '/fhir/r4/Observation', bodyFor('POST /fhir/r4'), { ...bearer(), ...FHIR_TYPE }),
    },
    {
      op: resource,
      status: 403,
      what: 'nothing the token may send',
      send: async () =>
        http(
          'POST',
          '/fhir/r4/Encounter',
          JSON.stringify(new FhirEncoder().resources(ENROLMENT).find((r) => r.resourceType === 'Encounter')),
          { ...bearer(pumpToken), ...FHIR_TYPE },
        )(),
    },
    {
      op: resource,
      status: 404,
      what: 'a Patient',
      send: http('POST', '/fhir/r4/Patient', '{}', { ...bearer(), ...FHIR_TYPE }),
    },
    {
      op: resource,
      status: 422,
      what: 'a Fahrenheit temperature',
      send: http('POST', '/fhir/r4/Observation', JSON.stringify(new FhirEncoder().resources(FAHRENHEIT(READING))[0]), {
        ...bearer(),
        ...FHIR_TYPE,
      }),
    },
    ...deviceRefusals(resource, '/fhir/r4/Observation', FHIR_TYPE, 1024 * 1024),
    {
      op: `GET ${FHIR_METADATA_ROUTE}`,
      status: 200,
      what: 'the statement',
      send: http('GET', FHIR_METADATA_ROUTE),
    },
    { op: `GET ${FHIR_METADATA_ROUTE}`, status: 405, what: 'PUT', send: http('PUT', FHIR_METADATA_ROUTE, '{}') },
    { op: `GET ${OPENAPI_ROUTE}`, status: 200, what: 'the document', send: http('GET', OPENAPI_ROUTE) },
    {
      op: `GET ${OPENAPI_ROUTE}`,
      status: 405,
      what: 'POST',
      send: http('POST', OPENAPI_ROUTE, '{}', JSON_TYPE),
    },
    // Acknowledgements: a real page's link; a link signed with the server's key for a page that does not exist; a page
    // no longer open (superseded by a higher grade).
    { op: linkGet, status: 200, what: 'a page', send: async () => http('GET', `/ack/${await link('open')}`)() },
    { op: linkGet, status: 403, what: 'a forged link', send: http('GET', `/ack/${forged}`) },
    { op: linkGet, status: 404, what: 'no such page', send: async () => http('GET', `/ack/${await link('none')}`)() },
    { op: linkGet, status: 405, what: 'PUT', send: http('PUT', `/ack/${forged}`) },
    { op: linkPost, status: 400, what: 'no name', send: async () => form(await link('open'), 'by=+')() },
    { op: linkPost, status: 200, what: 'a name', send: async () => form(await link('open'), 'by=Dr+Ada')() },
    { op: linkPost, status: 403, what: 'a forged link', send: form(forged, 'by=Mallory') },
    { op: linkPost, status: 404, what: 'no such page', send: async () => form(await link('none'), 'by=Dr+Ada')() },
    {
      op: linkPost,
      status: 409,
      what: 'a page no longer open',
      send: async () => form(await link('closed'), 'by=Dr+Ada')(),
    },
    { op: linkPost, status: 413, what: 'a long form', send: form(forged, `by=${'x'.repeat(5000)}`) },
    { op: linkPost, status: 405, what: 'PUT', send: http('PUT', `/ack/${forged}`) },
    {
      op: acks,
      status: 200,
      what: 'a token and a name',
      send: async () => ackApi({ token: await link('open'), by: 'Dr Ada' })(),
    },
    { op: acks, status: 400, what: 'no name', send: ackApi({ token: 'x' }) },
    { op: acks, status: 403, what: 'a forged link', send: ackApi({ token: forged, by: 'Mallory' }) },
    {
      op: acks,
      status: 404,
      what: 'no such page',
      send: async () => ackApi({ token: await link('none'), by: 'Dr Ada' })(),
    },
    { op: acks, status: 405, what: 'GET', send: http('GET', ACK_ROUTES.api) },
    {
      op: acks,
      status: 409,
      what: 'a page no longer open',
      send: async () => ackApi({ token: await link('closed'), by: 'Dr Ada' })(),
    },
    { op: acks, status: 413, what: 'a long body', send: ackApi('x'.repeat(5000)) },
    {
      op: acks,
      status: 415,
      what: 'a form',
      send: ackApi('token=x', { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    // Last: past the budget of refused acknowledgements (10 an address), 429 until it refills.
    {
      op: acks,
      status: 429,
      what: 'too many refused',
      send: refusedUntil429(() => ackApi({ token: forged, by: 'Mallory' })()),
    },
    { op: linkPost, status: 429, what: 'too many refused', send: refusedUntil429(() => form(forged, 'by=Mallory')()) },
  ];
}

function refusedUntil429(send: () => Promise<Answer>) {
  return async () => {
    for (let i = 0; i < 20; i++) {
      const a = await send();
      if (a.status !== 403) return a;
    }
    throw new Error('never 429');
  };
}

let pagesBy: Record<'open' | 'closed', string>;
/** A link's token: of a page open, of one no longer open, or signed with the server's key for no page at all. */
async function link(which: 'open' | 'closed' | 'none'): Promise<string> {
  if (which === 'none')
    return signAck(readFileSync(join(dir, 'ack.key')), {
      pageId: 'no-such-notification|icu',
      role: 'ICU registrar',
      expiresAt: NOW + 3_600_000,
    });
  return pagesBy[which];
}

const answers = new Map<Case, Answer>();
const all = cases();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-openapi-'));
  lines = [];
  server = await startPagingServer({
    dataDir: dir,
    paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES },
    lines,
    now: () => NOW,
    localToken: TOKEN,
  });
  // A pump's token: it may send vasopressors and medications only.
  const pump = issueToken('pump-h4-12', new Date(NOW), { kind: 'pump' });
  await server.tokens.put(pump.record);
  pumpToken = pump.token;
  // Two patients paged: one's page stays open; the other's grade-1 page is superseded by grade 3 (no longer open).
  const post = (m: DeviceMessage) =>
    fetch(`${server.url}${ROUTES.single}`, {
      method: 'POST',
      headers: { ...bearer(), ...JSON_TYPE },
      body: JSON.stringify(m),
    });
  const fever = (p: string, minutes: number) => msg(p, minutes, { vitals: { temperatureC: 39.1, systolicBP: 118 } });
  for (const m of [enrol('P1', 0), fever('P1', 10), enrol('P2', 0), fever('P2', 10)]) await post(m);
  const pages = () =>
    lines.map((l) => JSON.parse(l) as PageEvent).filter((e) => e.type === 'page' && e.team === 'hematology');
  const first = await until(() => (pages().length === 2 ? pages() : undefined), 'both patients paged');
  await post(msg('P2', 20, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] }));
  await until(() => (pages().length > 2 ? true : undefined), 'P2 paged again');
  const token = (p: PageEvent) => p.ackUrl!.split('/ack/')[1]!;
  pagesBy = {
    open: token(first.find((p) => p.patientId === 'P1')!),
    closed: token(first.find((p) => p.patientId === 'P2')!),
  };
  for (const c of all) answers.set(c, await c.send());
}, 120_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** API Gateway's own answers (its throttle's 429), which no request in process can get. */
const awsOnly = (response: Json) => (response.description as string).startsWith('AWS only');

describe('every documented status, provoked', () => {
  // JSON Schema 2020-12, as OpenAPI 3.1 uses it; OpenAPI's own keywords (externalDocs) are not JSON Schema's.
  const ajv = new Ajv2020({ strictSchema: false, formats: { 'date-time': true } });
  let resolved: Json;
  beforeAll(async () => {
    resolved = operations(await dereference(structuredClone(doc)));
  });

  it.each(all.map((c) => [c.op, c.status, c.what, c] as const))('%s %i (%s)', (op, status, _what, c) => {
    const a = answers.get(c)!;
    expect(a.status, a.body.slice(0, 300)).toBe(status);
    const response = resolved[op].responses[String(status)];
    expect(response, `${op} documents ${status}`).toBeDefined();
    const type = (a.headers['content-type'] ?? '').split(';')[0]!.trim();
    const media = response.content?.[type];
    expect(media, `${op} ${status} documents ${type}`).toBeDefined();
    if (/json/.test(type)) {
      const body = JSON.parse(a.body);
      expect(ajv.validate(media.schema, body) ? [] : ajv.errors, JSON.stringify(body).slice(0, 300)).toEqual([]);
    } else expect(a.body).toMatch(type === 'text/html' ? /^<!doctype html>/i : /^MSH\|/);
    for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
      const value = a.headers[name.toLowerCase()];
      expect(value, `${op} ${status}: ${name}`).toBeDefined();
      // The value as documented, not only a value: a Retry-After of 0 or another auth scheme passed here.
      const typed = header.schema?.type === 'integer' && /^\d+$/.test(value!) ? Number(value) : value;
      expect(ajv.validate(header.schema, typed) ? [] : ajv.errors, `${op} ${status}: ${name}: ${value}`).toEqual([]);
      // A 405's Allow names the method the operation takes.
      if (name === 'Allow') expect(value!.split(/,\s*/), `${op} ${status}: Allow`).toContain(op.split(' ')[0]);
    }
  });

  it('is every status each operation documents (but the AWS throttle, which API Gateway answers)', () => {
    for (const [op, o] of Object.entries(operations(doc))) {
      const documented = Object.entries(o.responses as Json)
        .filter(([, r]) => !awsOnly(r))
        .map(([s]) => Number(s))
        .sort();
      const provoked = [...new Set(all.filter((c) => c.op === op).map((c) => c.status))].sort();
      expect(provoked, op).toEqual(documented);
    }
  });

  it('gives as response examples only bodies the code answers', () => {
    let examples = 0;
    for (const [op, o] of Object.entries(operations(doc)))
      for (const [status, r] of Object.entries(o.responses as Json))
        for (const [type, media] of Object.entries(((r as Json).content ?? {}) as Json)) {
          if ((media as Json).example === undefined || awsOnly(r)) continue;
          examples++;
          const bodies = all
            .filter((c) => c.op === op && String(c.status) === status)
            .map((c) => answers.get(c)!)
            .filter((a) => a.headers['content-type']?.startsWith(type))
            .map((a) => JSON.parse(a.body));
          expect(bodies, `${op} ${status}`).toContainEqual((media as Json).example);
        }
    expect(examples).toBeGreaterThan(10);
  });

  it('serves this document on crs serve', () => {
    const c = all.find((x) => x.op === `GET ${OPENAPI_ROUTE}` && x.status === 200)!;
    expect(JSON.parse(answers.get(c)!.body)).toEqual(doc);
  });
});

describe("the embedded server's routes", () => {
  /** Whether a documented path (its templates' enums included) is `path`. */
  const documented = (path: string) =>
    Object.entries(doc.paths as Json).some(([template, item]) => {
      const want = template.split('/');
      const got = path.split('/');
      if (want.length !== got.length) return false;
      const params = Object.values(item as Json).flatMap((op) => (op as Json).parameters ?? []);
      return want.every((w, i) => {
        const name = w.match(/^\{(.+)\}$/)?.[1];
        if (!name) return w === got[i];
        const schema = params.find((p: Json) => p.name === name)?.schema;
        return got[i] !== '' && (!schema?.enum || schema.enum.includes(got[i]));
      });
    });
  // The route tables both hosts and the stack use, each route as sent (templates filled) and a few near misses.
  const routes = [
    ...Object.values(ROUTES),
    ...INTERFACE_ROUTES,
    FHIR_METADATA_ROUTE,
    ...Object.values(ACK_ROUTES),
    OPENAPI_ROUTE,
  ].flatMap((r) =>
    r.includes('{resource}')
      ? [...FHIR_RESOURCES, 'Patient', 'metadata'].map((x) => r.replace('{resource}', x))
      : [r.replace('{token}', 'v1.abc')],
  );
  const candidates = [
    ...new Set(
      routes.flatMap((r) => [r, `${r}/x`, `${r}/`, r.toUpperCase(), r.split('/').slice(0, -1).join('/') || '/']),
    ),
    '/v1/message',
    '/v1/acks/x',
    '/ack/',
    '/fhir/r4/Observation/1',
    '/fhir/R4/Bundle',
  ].filter((p) => p !== '/');

  it.each(candidates)('%s is served by crs serve exactly when documented', async (path) => {
    const answers = await Promise.all(
      ['GET', 'POST'].map(async (method) =>
        read(
          await fetch(`${server.url}${path}`, {
            method,
            headers: JSON_TYPE,
            ...(method === 'POST' ? { body: '{}' } : {}),
          }),
        ),
      ),
    );
    const served = answers.some((a) => !(a.status === 404 && /no route/.test(a.body)));
    expect(served, answers.map((a) => `${a.status} ${a.body.slice(0, 80)}`).join(' | ')).toBe(documented(path));
  });
});
