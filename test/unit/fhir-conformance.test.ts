// Everything the FHIR routes answer is valid FHIR R4 (4.0.1), as a strict client (HAPI FHIR's parser, Firely,
// Medplum) reads it: checked against the specification's structure definitions and value sets
// (test/support/fhir-conformance.ts), for every kind of answer the routes give, from the real code paths.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashToken, issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { handleFhirHttp } from '#app/fhir/http.ts';
import type { HttpRequest } from '#app/ingest.ts';
import { handleDeviceRequest } from '#app/interfaces/http.ts';
import { FHIR_METADATA_ROUTE } from '#app/interfaces/routes.ts';
import { LOINC_SYSTEM, RXNORM, UCUM } from '#app/interfaces/terminology.ts';
import type { PatientDirectory } from '#app/scope.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { HttpFront } from '#hosts/aws-emulator/http-front.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { DEVICE_ROUTES, frontFor, ingestFunction } from '#test/support/front.ts';
import { enrol } from '#test/support/messages.ts';
import { fhirAnswerProblems, fhirProblems } from '#test/support/fhir-conformance.ts';
import { MemoryQueue, MemoryTokenStore, ingestFakes, queueDirectory } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const T = '2026-01-10T08:00:00+01:00';
let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
let monitorToken: string;

beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW, 'ehr-epic'));
  const monitor = issueToken('mon-1', new Date(NOW), { kind: 'monitor' });
  await tokens.put(monitor.record);
  monitorToken = monitor.token;
});

const directory = (): PatientDirectory => ({
  lookup: async (ids) => {
    const known = await queueDirectory(queue).lookup(ids);
    if (ids.includes('P-0042')) known.set('P-0042', { known: true });
    return known;
  },
});

type Answer = { status: number; headers: Record<string, string>; body: string };

const request = (
  req: Partial<Omit<HttpRequest, 'body'>> & { body?: unknown },
  deps: Partial<Parameters<typeof handleFhirHttp>[1]> = {},
) =>
  handleFhirHttp(
    {
      method: req.method ?? 'POST',
      path: req.path ?? '/fhir/r4',
      headers: req.headers ?? { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: typeof req.body === 'string' ? req.body : (JSON.stringify(req.body) ?? ''),
    },
    { queue, tokens, now: () => NOW, patients: directory(), ...deps },
  );
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request({
    path,
    body,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...headers },
  });

const subject = { reference: 'Patient/P-0042' };
let n = 0;
const obs = (code: { system: string; code: string }, extra: Record<string, unknown>): Resource =>
  ({
    resourceType: 'Observation',
    id: `obs-${++n}`,
    status: 'final',
    code: { coding: [code] },
    subject,
    effectiveDateTime: T,
    ...extra,
  }) as Resource;
const qty = (value: number, code: string) => ({ value, unit: code, system: UCUM, code });
const temperature = (value: number, extra: Record<string, unknown> = {}) =>
  obs({ system: LOINC_SYSTEM, code: '8310-5' }, { valueQuantity: qty(value, 'Cel'), ...extra });
const bundle = (type: string, resources: unknown[]): Bundle =>
  ({ resourceType: 'Bundle', type, entry: resources.map((resource) => ({ resource })) }) as Bundle;
const encounter = (patient: string): Resource =>
  ({
    resourceType: 'Encounter',
    id: `enc-${patient}`,
    status: 'in-progress',
    class: { code: 'IMP' },
    subject: { reference: `Patient/${patient}` },
    location: [
      {
        location: { display: 'H4-12' },
        physicalType: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'bd' }],
        },
        period: { start: T },
      },
    ],
  }) as Resource;

/** Every kind of answer, each named. */
async function everyAnswer(): Promise<[string, Answer][]> {
  const out: [string, Answer][] = [];
  const add = async (name: string, a: Promise<Answer>) => out.push([name, await a]);
  await add('metadata', request({ method: 'GET', path: '/fhir/r4/metadata', headers: {}, body: '' }));
  await add('metadata POST: 405', request({ path: '/fhir/r4/metadata', body: '' }));
  await add('no route: 404', post('/fhir/r4/Patient', {}));
  await add('no route, two segments: 404', post('/fhir/r4/Observation/1', {}));
  await add('no route, trailing slash: 404', post('/fhir/r4/', {}));
  await add('GET a POST route: 405', request({ method: 'GET', path: '/fhir/r4/Bundle', body: '' }));
  await add('DELETE the base: 405', request({ method: 'DELETE', path: '/fhir/r4', body: '' }));
  await add('no token: 401', post('/fhir/r4', bundle('batch', [temperature(39)]), { authorization: '' }));
  await add('unknown token: 403', post('/fhir/r4', bundle('batch', [temperature(39)]), { authorization: 'Bearer x' }));
  tokens.failWith = new Error('down');
  await add('token store down: 503', post('/fhir/r4', bundle('batch', [temperature(39)])));
  tokens.failWith = undefined;
  await add('text/plain: 415', post('/fhir/r4', bundle('batch', [temperature(39)]), { 'content-type': 'text/plain' }));
  await add('over 1 MiB: 413', post('/fhir/r4', ' '.repeat(1024 * 1024 + 1)));
  await add('65 deep: 400', post('/fhir/r4', `${'['.repeat(65)}${']'.repeat(65)}`));
  await add('byte order mark: 400', post('/fhir/r4', '\uFEFF{}'));
  await add('not JSON: 400', post('/fhir/r4', '{not json'));
  // What the sender sent, quoted in a diagnostics, with a control character or half a surrogate pair: escaped.
  await add('not JSON, with a control character: 400', post('/fhir/r4', '\u0001'));
  await add(
    'a resource type with a control character: 400',
    post('/fhir/r4/Observation', { resourceType: 'Obs\u0001' }),
  );
  await add(
    'an entry of a resource type with a control character: 200',
    post('/fhir/r4', bundle('batch', [{ resourceType: 'Pat\u0000ient\ud800' }])),
  );
  await add('no resourceType: 400', post('/fhir/r4', { a: 1 }));
  await add('a number: 400', post('/fhir/r4', 7));
  await add('wrong resource for the route: 400', post('/fhir/r4/Observation', bundle('batch', [temperature(39)])));
  await add('searchset: 400', post('/fhir/r4', bundle('searchset', [temperature(39)])));
  await add('no entry: 400', post('/fhir/r4', bundle('batch', [])));
  await add('1001 entries: 400', post('/fhir/r4', bundle('batch', Array(1001).fill(temperature(39)))));
  await add(
    'transaction with problems: 422',
    post('/fhir/r4', bundle('transaction', [temperature(39, { effectiveDateTime: '2026-01-10' }), temperature(90)])),
  );
  await add('one resource with a problem: 422', post('/fhir/r4/Observation', temperature(39, { subject: {} })));
  await add(
    'a resource with more than 20 problems: 422',
    post('/fhir/r4/Encounter', { ...(encounter('P-0042') as object), location: Array(30).fill(1) }),
  );
  // Under a key that names no element, or in a list in a list: named at the element it is in.
  await add(
    'a modifier extension under an odd key: 422',
    post('/fhir/r4/Observation', { ...(temperature(39) as object), 'odd key!': { modifierExtension: [{ url: 'x' }] } }),
  );
  await add(
    'a modifier extension in a list in a list: 422',
    post('/fhir/r4/Observation', { ...(temperature(39) as object), component: [[{ modifierExtension: [{}] }]] }),
  );
  // An element R4 does not define (2026-12-06): named at the object that has it, by its simple FHIRPath.
  await add(
    'an element R4 does not define, in a coding: 422',
    post('/fhir/r4/Observation', { ...(temperature(39) as object), code: { coding: [{ sytem: 'x', code: 'y' }] } }),
  );
  await add(
    "an element R4 does not define, in a Bundle's entry: 400",
    post('/fhir/r4', { ...(bundle('batch', [temperature(39)]) as object), entry: [{ fullurl: 'urn:uuid:1' }] }),
  );
  await add(
    "a modifier extension on a primitive's element: 422",
    post('/fhir/r4/Observation', { ...(temperature(39) as object), _status: { modifierExtension: [{}] } }),
  );
  await add(
    'a monitor sending a medication: 403',
    post(
      '/fhir/r4',
      bundle('transaction', [
        {
          resourceType: 'MedicationAdministration',
          id: 'ma-1',
          status: 'completed',
          medicationCodeableConcept: { coding: [{ system: RXNORM, code: '612865' }] },
          subject,
          effectiveDateTime: T,
          dosage: { dose: qty(500, 'mg') },
        },
      ]),
      { authorization: `Bearer ${monitorToken}` },
    ),
  );
  await add(
    'batch: 202 and 422 entries, warnings, information',
    post(
      '/fhir/r4',
      bundle('batch', [
        temperature(39),
        temperature(39, { effectiveDateTime: 'x' }),
        { resourceType: 'Patient', id: 'P-0042' },
        encounter('P-0999'),
        obs({ system: LOINC_SYSTEM, code: '72514-3' }, { valueInteger: 4 }),
        7,
      ]),
    ),
  );
  await add(
    'batch: one message of two entries refused, each 422',
    request(
      {
        body: bundle('batch', [
          temperature(39, { effectiveDateTime: '2025-11-01T08:00:00Z' }),
          obs(
            { system: LOINC_SYSTEM, code: '8867-4' },
            { valueQuantity: qty(90, '/min'), effectiveDateTime: '2025-11-01T08:00:00Z' },
          ),
          temperature(38.4),
        ]),
      },
      { maxObservationAgeMs: 7 * 24 * 3_600_000 },
    ),
  );
  await add(
    'transaction taken: 200 transaction-response',
    post('/fhir/r4/Bundle', bundle('transaction', [temperature(38.5), { resourceType: 'Patient', id: 'P-0042' }])),
  );
  await add(
    'collection taken: 202',
    post('/fhir/r4', bundle('collection', [temperature(38.6), { resourceType: 'Patient', id: 'P-0042' }])),
  );
  await add('one resource taken: 202', post('/fhir/r4/Observation', temperature(38.7)));
  await add('an Encounter of a patient not monitored: 202', post('/fhir/r4/Encounter', encounter('P-0998')));
  await add(
    'a vignette as the encoder writes it: 200',
    post('/fhir/r4', new FhirEncoder().bundle(enrol('P-0042', 0))!),
  );
  queue.failWith = new Error('down');
  await add('queue down: 503', post('/fhir/r4/Observation', temperature(38.8)));
  queue.failWith = undefined;
  await add(
    'a store that throws: 503',
    handleDeviceRequest(
      {
        method: 'POST',
        path: '/fhir/r4/Encounter',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
        body: JSON.stringify(encounter('P-0997')),
      },
      {
        queue,
        tokens,
        now: () => NOW,
        patients: {
          lookup: async () => {
            throw new Error('throttled');
          },
        },
      },
    ),
  );
  return out;
}

describe('the conformance check', () => {
  // It must be able to fail: each of these is what a strict client refuses or misreads.
  it('finds what a strict FHIR R4 client refuses', () => {
    const outcome = (issue: Record<string, unknown>) => ({ resourceType: 'OperationOutcome', issue: [issue] });
    const bad: [string, unknown][] = [
      ['an issue without a code', outcome({ severity: 'error', diagnostics: 'x' })],
      ['an IssueType that is none', outcome({ severity: 'error', code: 'refused', diagnostics: 'x' })],
      ['a severity that is none', outcome({ severity: 'info', code: 'value', diagnostics: 'x' })],
      ['an empty diagnostics', outcome({ severity: 'error', code: 'value', diagnostics: '' })],
      ['expression resourceType', outcome({ severity: 'error', code: 'value', expression: ['resourceType'] })],
      ['an expression with a space', outcome({ severity: 'error', code: 'value', expression: ['Observation.a b'] })],
      ['a Bundle.type that is none', { resourceType: 'Bundle', type: 'batch-result' }],
      [
        'a response status that is no code',
        { resourceType: 'Bundle', type: 'batch-response', entry: [{ response: { status: 'Accepted' } }] },
      ],
      ['an entry without its response', { resourceType: 'Bundle', type: 'batch-response', entry: [{}] }],
      [
        'an invalid outcome in an entry',
        {
          resourceType: 'Bundle',
          type: 'batch-response',
          entry: [{ response: { status: '202', outcome: outcome({ severity: 'x', code: 'value' }) } }],
        },
      ],
      [
        'a CapabilityStatement without its date',
        {
          resourceType: 'CapabilityStatement',
          status: 'active',
          kind: 'instance',
          fhirVersion: '4.0.1',
          format: ['json'],
          implementation: { description: 'x' },
          rest: [{ mode: 'server' }],
        },
      ],
      [
        'an interaction that is none',
        {
          resourceType: 'CapabilityStatement',
          status: 'active',
          date: '2026-12-03',
          kind: 'instance',
          fhirVersion: '4.0.1',
          format: ['json'],
          implementation: { description: 'x' },
          rest: [{ mode: 'server', interaction: [{ code: 'create' }] }],
        },
      ],
      [
        'a date that is none',
        {
          resourceType: 'CapabilityStatement',
          status: 'active',
          date: '2026-12-32',
          kind: 'instance',
          fhirVersion: '4.0.1',
          format: ['json'],
          implementation: { description: 'x' },
          rest: [{ mode: 'server' }],
        },
      ],
    ];
    for (const [what, resource] of bad) expect(fhirProblems(resource), what).not.toEqual([]);
    const answer = (type: string) => ({
      status: 200,
      headers: { 'content-type': type },
      body: JSON.stringify(outcome({ severity: 'information', code: 'informational', diagnostics: 'x' })),
    });
    expect(fhirAnswerProblems(answer('application/fhir+json; charset=utf-8'))).toEqual([]);
    expect(fhirAnswerProblems(answer('application/json; charset=utf-8'))).not.toEqual([]);
    expect(fhirAnswerProblems(answer('application/fhir+json'))).not.toEqual([]);
  });
});

describe('every FHIR answer is valid FHIR R4', () => {
  it('each kind of answer of the routes both backends share: every refusal, every response Bundle, the 202s, the CapabilityStatement', async () => {
    const answers = await everyAnswer();
    const problems = answers.flatMap(([name, a]) => fhirAnswerProblems(a).map((p) => `${name} (${a.status}): ${p}`));
    expect(problems).toEqual([]);
    // Each status the routes give is among them (429 is API Gateway's own, never the function's: docs/interfaces.md).
    expect(new Set(answers.map(([, a]) => a.status))).toEqual(
      new Set([200, 202, 400, 401, 403, 404, 405, 413, 415, 422, 503]),
    );
    const body = (name: string) => JSON.parse(answers.find(([n]) => n === name)![1].body);
    expect(body('a resource with more than 20 problems: 422').issue.at(-1)).toMatchObject({ code: 'too-costly' });
    expect(
      body('batch: one message of two entries refused, each 422').entry.map(
        (e: { response: { status: string } }) => e.response.status,
      ),
    ).toEqual(['422 Unprocessable Entity', '422 Unprocessable Entity', '202 Accepted']);
    expect(
      body('batch: 202 and 422 entries, warnings, information').entry.map(
        (e: { response: { status: string } }) => e.response.status,
      ),
    ).toEqual([
      '202 Accepted',
      '422 Unprocessable Entity',
      '202 Accepted',
      '202 Accepted',
      '202 Accepted',
      '422 Unprocessable Entity',
    ]);
  });
});

describe('what each backend adds: crs serve and the AWS ingest function behind its HTTP front', () => {
  const EHR = 'crs_conformance-ehr-token-0123456789abcdefghij';
  let dir: string;
  let embedded: EmbeddedServer;
  let front: HttpFront;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crs-fhir-conformance-'));
    embedded = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      pageStream: new PassThrough(),
      log: () => undefined,
      now: () => NOW,
    });
    const awsTokens = new MemoryTokenStore();
    const { record } = issueToken('ehr-1', new Date(NOW), { kind: 'ehr' });
    for (const store of [awsTokens, embedded.tokens]) await store.put({ ...record, hash: hashToken(EHR) });
    const awsQueue = new MemoryQueue();
    front = await frontFor(
      'ingest',
      await ingestFunction({ queue: awsQueue, tokens: awsTokens, now: () => NOW, patients: queueDirectory(awsQueue) }),
      [...DEVICE_ROUTES, `GET ${FHIR_METADATA_ROUTE}`],
    );
  });
  afterAll(async () => {
    await embedded.close();
    await front.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = async (base: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: headers ?? { authorization: `Bearer ${EHR}`, 'content-type': 'application/fhir+json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() };
  };

  it('every answer of the FHIR routes, as each host sends it, is valid FHIR R4 with its media type', async () => {
    const problems: string[] = [];
    const statuses = new Set<number>();
    const fhirJson = { 'content-type': 'application/fhir+json' };
    for (const base of [embedded.url, front.url]) {
      const cases: [string, string, unknown?, Record<string, string>?][] = [
        ['GET', FHIR_METADATA_ROUTE, undefined, {}],
        ['POST', FHIR_METADATA_ROUTE, ''],
        ['POST', '/fhir/r4/Patient', {}],
        ['POST', '/fhir/r4', bundle('batch', [temperature(39)]), fhirJson],
        ['POST', '/fhir/r4', bundle('batch', [temperature(39)]), { ...fhirJson, authorization: 'Bearer nope' }],
        [
          'POST',
          '/fhir/r4',
          bundle('batch', [temperature(39)]),
          { authorization: `Bearer ${EHR}`, 'content-type': 'text/plain' },
        ],
        ['POST', '/fhir/r4', ' '.repeat(1024 * 1024 + 1)],
        ['POST', '/fhir/r4', '{not json'],
        ['POST', '/fhir/r4/Observation', bundle('batch', [temperature(39)])],
        ['POST', '/fhir/r4', bundle('transaction', [temperature(39, { effectiveDateTime: '2026-01-10' })])],
        [
          'POST',
          '/fhir/r4',
          bundle('batch', [temperature(39.1), temperature(39, { effectiveDateTime: 'x' }), encounter('P-0999')]),
        ],
        ['POST', '/fhir/r4/Bundle', bundle('transaction', [temperature(39.2), { resourceType: 'Patient', id: 'P-1' }])],
        ['POST', '/fhir/r4/Observation', temperature(39.3)],
      ];
      for (const [method, path, body, headers] of cases) {
        const a = await send(base, method, path, body, headers);
        statuses.add(a.status);
        const host = base === front.url ? 'AWS' : 'crs serve';
        problems.push(...fhirAnswerProblems(a).map((p) => `${host} ${method} ${path} (${a.status}): ${p}`));
      }
    }
    expect(problems).toEqual([]);
    expect(statuses).toEqual(new Set([200, 202, 400, 401, 403, 404, 405, 413, 415, 422]));
  });

  it('crs serve answers every path under /fhir/r4 with an OperationOutcome: a method the route does not take, a path it has not', async () => {
    for (const [method, path] of [
      ['GET', '/fhir/r4/Observation'],
      ['PUT', '/fhir/r4/Bundle'],
      ['GET', '/fhir/r4'],
      ['GET', '/fhir/r4/Observation/1'],
      ['POST', '/fhir/r4/'],
      ['DELETE', FHIR_METADATA_ROUTE],
    ] as const) {
      const a = await send(embedded.url, method, path, method === 'GET' ? undefined : '{}');
      expect([method, path, fhirAnswerProblems(a)]).toEqual([method, path, []]);
      expect([404, 405]).toContain(a.status);
    }
  });
});
