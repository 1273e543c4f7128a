// What a sender sent, echoed in a device answer (a FHIR OperationOutcome, an HL7 v2 ACK), is cut: a value (a status,
// a unit, a time) at 64 characters, a URI at 100, a key of a path at 40, then `..."`. A value may run to the body's
// limit (1 MiB): one 5,000 characters long is sent at each place an answer quotes one, and the answer stays small.
import type { OperationOutcome } from '@medplum/fhirtypes';
import { beforeEach, describe, expect, it } from 'vitest';
import { handleFhirHttp } from '#app/fhir/http.ts';
import { handleHl7Http } from '#app/hl7v2/http.ts';
import type { HttpRequest } from '#app/ingest.ts';
import { LOINC_SYSTEM, UCUM } from '#app/interfaces/terminology.ts';
import { SENDER_MOST } from '#domain/printable.ts';
import { ingestFakes, type MemoryQueue, type MemoryTokenStore } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const LONG = 5000;
/** The most characters of an answer that quotes one value: its own words and the value's cut. */
const ANSWER_MOST = 2048;
const KEY_MOST = 40;
const URI_MOST = 100;

let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW, 'ehr-epic'));
});

/** Whether `said` quotes `value` cut at `most` characters, then `..."`, and nothing more of it. */
function expectCut(said: string, value: string, most: number) {
  expect(said, said.slice(0, 200)).toContain(`"${value.slice(0, most)}..."`);
  expect(said).not.toContain(value.slice(0, most + 1));
}

describe('FHIR: a value echoed in an OperationOutcome', () => {
  const request = (over: Partial<HttpRequest> & { json?: unknown }): HttpRequest => ({
    method: 'POST',
    path: '/fhir/r4/Observation',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...over.headers },
    body: over.body ?? JSON.stringify(over.json),
    ...(over.path ? { path: over.path } : {}),
  });
  const observation = (over: Record<string, unknown>, code = '8310-5') => ({
    resourceType: 'Observation',
    id: 'o',
    status: 'final',
    code: { coding: [{ system: LOINC_SYSTEM, code }] },
    subject: { reference: 'Patient/P-0042' },
    effectiveDateTime: '2026-01-10T08:00:00Z',
    valueQuantity: { value: 38.5, unit: 'Cel', system: UCUM, code: 'Cel' },
    ...over,
  });
  const crp = (q: Record<string, unknown>) =>
    observation({ valueQuantity: { value: 12, unit: 'mg/L', system: UCUM, code: 'mg/L', ...q } }, '1988-5');
  const extension = (url: string) => observation({ modifierExtension: [{ url, valueBoolean: true }] });
  const key = 'k'.repeat(LONG);
  const uri = (n: number) => `http://example.org/${'u'.repeat(n - 19)}`;

  // [where, the value echoed, the request, the most of it shown]
  const cases: [string, string, (v: string) => Partial<HttpRequest> & { json?: unknown }, number][] = [
    ['C1 an unknown route', `/fhir/r4/${'p'.repeat(LONG)}`, (v) => ({ path: v, json: {} }), SENDER_MOST],
    [
      'C2 a content type',
      `text/${'t'.repeat(LONG)}`,
      (v) => ({ headers: { 'content-type': v }, json: observation({}) }),
      SENDER_MOST,
    ],
    ['C4 a key sent twice', key, () => ({ body: `{"resourceType":"Observation","${key}":1,"${key}":2}` }), KEY_MOST],
    [
      'a content coding',
      'c'.repeat(LONG),
      (v) => ({ headers: { 'content-encoding': v }, json: observation({}) }),
      SENDER_MOST,
    ],
    ['C5 an Observation status', 's'.repeat(LONG), (v) => ({ json: observation({ status: v }) }), SENDER_MOST],
    [
      'C6 a dateTime',
      `2026-01-10T08:00:00Z${'9'.repeat(LONG)}`,
      (v) => ({ json: observation({ effectiveDateTime: v }) }),
      SENDER_MOST,
    ],
    [
      'C6 a dateTime of its form, no real date',
      `2026-02-30T08:00:00.${'9'.repeat(LONG)}Z`,
      (v) => ({ json: observation({ effectiveDateTime: v }) }),
      SENDER_MOST,
    ],
    ['C7 a Quantity comparator', '<'.repeat(LONG), (v) => ({ json: crp({ comparator: v }) }), SENDER_MOST],
    ['C13 a lab unit', 'm'.repeat(LONG), (v) => ({ json: crp({ unit: v, code: v }) }), SENDER_MOST],
    ['C8 a modifier extension url', uri(LONG), (v) => ({ json: extension(v) }), URI_MOST],
    ['C8 a url one over 100', uri(URI_MOST + 1), (v) => ({ json: extension(v) }), URI_MOST],
  ];

  it.each(cases)('%s: at most its bound of characters, then ..., in a small answer', async (_, value, make, most) => {
    const res = await handleFhirHttp(request(make(value)), { queue, tokens, now: () => NOW });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.length).toBeLessThan(ANSWER_MOST);
    const said = (JSON.parse(res.body) as OperationOutcome).issue.map((i) => i.diagnostics).join('\n');
    expectCut(said, value, most);
    expect(queue.messages).toEqual([]);
  });

  it('C8 a url of exactly 100 characters is shown whole', async () => {
    const url = uri(URI_MOST);
    const res = await handleFhirHttp(request({ json: extension(url) }), { queue, tokens, now: () => NOW });
    expect((JSON.parse(res.body) as OperationOutcome).issue[0]!.diagnostics).toContain(`("${url}")`);
  });
});

describe('HL7 v2: a value echoed in an ACK', () => {
  const message = (obx5: string, obx11: string) =>
    [
      'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|MSG1|P|2.6',
      'PID|||P-0042^^^HOSP^MR',
      'PV1||I|ICU4^^12',
      'OBR|1|GW1^GW|GW1^GW|182777000^monitoring of patient^SCT|||20260110080000+0000',
      `OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1|${obx5}|262688^MDC_DIM_PERCENT^MDC|||||${obx11}|||20260110080000+0000`,
    ].join('\r');
  const cases: [string, string, (v: string) => Partial<HttpRequest>, number][] = [
    ['C10 OBX-5', 'v'.repeat(LONG), (v) => ({ body: message(v, 'F') }), SENDER_MOST],
    ['C12 OBX-11', 'S'.repeat(LONG), (v) => ({ body: message('93', v) }), SENDER_MOST],
    [
      'a content type',
      `text/${'t'.repeat(LONG)}`,
      (v) => ({ body: message('93', 'F'), headers: { 'content-type': v } }),
      SENDER_MOST,
    ],
    [
      'a content coding',
      'c'.repeat(LONG),
      (v) => ({ body: message('93', 'F'), headers: { 'content-encoding': v } }),
      SENDER_MOST,
    ],
  ];

  it.each(cases)('%s: at most 64 characters of it, then ..., in a small ACK', async (_, value, make, most) => {
    const over = make(value);
    const res = await handleHl7Http(
      {
        method: 'POST',
        path: '/v1/hl7v2',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7', ...over.headers },
        body: over.body ?? '',
      },
      { queue, tokens, now: () => NOW },
    );
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.length).toBeLessThan(ANSWER_MOST);
    expectCut(res.body, value, most);
    expect(queue.messages).toEqual([]);
  });
});
