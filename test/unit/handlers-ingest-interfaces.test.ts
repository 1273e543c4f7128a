// The ingest Lambda on its HL7 v2 and FHIR routes, with in-memory ports: the body as API Gateway gives it (base64
// for the HL7 content type), the ACK or OperationOutcome back, the metrics, and logs with no patient data.
import type { Bundle } from '@medplum/fhirtypes';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { parseZone } from '#app/interfaces/zone.ts';
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import { telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { captureOutput, httpEvent, metricSum, withoutTimestamps } from '#test/support/lambda-events.ts';
import { issueToken } from '#app/auth.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { countedReads, type MemoryQueue, type MemoryTokenStore, ingestFakes } from '#test/support/port-fakes.ts';

type HandlerModule = typeof import('#functions/ingest/handler.ts');
let mod: HandlerModule;
let live: Telemetry;
beforeAll(async () => {
  process.env.CRS_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
  process.env.CRS_TOKENS_TABLE = 'tokens';
  process.env.CRS_STATE_TABLE = 'state';
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('#functions/ingest/handler.ts');
  live = telemetry('ingest');
});

const NOW = Date.parse('2026-01-10T09:00:00Z');
let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW));
});

const hl7 = (text: string) =>
  httpEvent({
    path: '/v1/hl7v2',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'x-application/hl7-v2+er7' },
    body: text,
    base64: true,
  });

describe('ingest handler, HL7 v2 and FHIR routes', () => {
  it('answers an HL7 message with its ACK (base64 body decoded), counts it, and logs ids only', async () => {
    const text = toPcd01(msg('P-1', 0, { vitals: { temperatureC: 38.4 } }, 'M-1'))!.replace(
      'PID|||P-1^^^HOSP^MR',
      'PID|||P-1^^^HOSP^MR||Quigglesworth^Zebedee',
    );
    const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live });
    // The log lines' own timestamps at an instant that holds "38.4" (a whole run failed at 15:04:38.492Z): only the
    // temperature sent may fail the test below, never the time of the run.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-12-07T15:04:38.492Z') });
    const { result, out } = await captureOutput(() => handler(hl7(text))).finally(() => vi.useRealTimers());
    expect(result.statusCode).toBe(202);
    expect(result.headers?.['content-type']).toMatch(/^x-application\/hl7-v2\+er7/);
    expect(readAck(result.body as string)).toMatchObject({ code: 'AA', controlId: 'M-1' });
    expect(queue.messages.map((q) => [q.message.messageId, q.sender])).toEqual([['hl7v2:SIM/M-1', 'gw-icu4']]);
    expect(metricSum(out, 'MessagesAccepted')).toBe(1);
    expect(out).toContain('hl7v2:SIM/M-1');
    expect(withoutTimestamps(out)).not.toMatch(/Quigglesworth|Zebedee|38\.4/);
  });

  it('counts a partly refused HL7 message as accepted and refused; a wrong token gets an AR with 403', async () => {
    const text = toPcd01(msg('P-1', 0, { vitals: { temperatureC: 38.4, heartRate: 100 } }, 'M-2'))!.replace(
      '268192^MDC_DIM_DEGC^MDC',
      '',
    );
    const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live });
    const { result, out } = await captureOutput(() => handler(hl7(text)));
    expect([result.statusCode, readAck(result.body as string)?.code]).toEqual([202, 'AE']);
    expect(metricSum(out, 'MessagesAccepted')).toBe(1);
    expect(metricSum(out, 'Rejects')).toBe(1);
    token = 'wrong';
    const { result: denied } = await captureOutput(() => handler(hl7(text)));
    expect([denied.statusCode, readAck(denied.body as string)?.code]).toEqual([403, 'AR']);
  });

  // 2026-12-07 (a review): a rotated token whose replacement was revoked since was told to install that one.
  it('tells a token whose chain of replacements ended so, in one wording on JSON, HL7 (AR) and FHIR', async () => {
    const a = issueToken('gw-icu4', new Date(NOW), { kind: 'ehr' });
    const b = issueToken('gw-icu4', new Date(NOW), { kind: 'ehr' });
    const at = new Date(NOW).toISOString();
    await tokens.put({ ...a.record, revokedAt: at, replacedBy: b.record.tokenId, replacedAt: at });
    await tokens.put({ ...b.record, revokedAt: at });
    token = a.token;
    const said = `device token replaced at ${at} by token ${b.record.tokenId} (crs token rotate), but no replacement is active any more (revoked or expired): issue the device a new one (crs token issue --backend aws --outputs FILE) and configure it with that`;
    // The store's reads counted: the container's store holds what the first refusal read (REFUSAL_MEMO_TTL_MS).
    const { reads } = countedReads(tokens);
    const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live });
    const text = toPcd01(msg('P-1', 0, { vitals: { heartRate: 100 } }, 'M-9'))!;
    const { result: hl7Answer } = await captureOutput(() => handler(hl7(text)));
    // Refused before its body is read: no control id to echo.
    expect([hl7Answer.statusCode, readAck(hl7Answer.body as string)]).toEqual([
      403,
      { code: 'AR', controlId: '', text: said },
    ]);
    const { result: fhirAnswer } = await captureOutput(() =>
      handler(
        httpEvent({
          path: '/fhir/r4/Bundle',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
          body: JSON.stringify(new FhirEncoder().bundle(enrol('P-2', -60))),
        }),
      ),
    );
    expect(fhirAnswer.statusCode).toBe(403);
    expect(JSON.stringify(JSON.parse(fhirAnswer.body as string))).toContain(JSON.stringify(said).slice(1, -1));
    const { result: jsonAnswer } = await captureOutput(() =>
      handler(
        httpEvent({
          path: '/v1/messages',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(msg('P-1', 0, { vitals: { heartRate: 100 } })),
        }),
      ),
    );
    expect([jsonAnswer.statusCode, JSON.parse(jsonAnswer.body as string)]).toEqual([403, { error: said }]);
    // The token and its one link, read for the first refusal only (2026-12-07: 6 reads for the three).
    expect(reads()).toBe(2);
  });

  it('takes local HL7 times in the configured site zone', async () => {
    const text = toPcd01(msg('P-1', 0, { vitals: { spo2: 93 } }, 'M-3'))!.replace(/\+0000/g, '');
    const refused = await captureOutput(() =>
      mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live })(hl7(text)),
    );
    expect(refused.result.statusCode).toBe(422);
    const zoned = await captureOutput(() =>
      mod.createIngestHandler({ queue, tokens, now: () => NOW, hl7Zone: parseZone('Europe/Paris')!, ...live })(
        hl7(text),
      ),
    );
    expect(zoned.result.statusCode).toBe(202);
    expect(queue.messages[0]!.message.observedAt).toBe('2026-01-10T07:00:00Z');
  });

  it("takes the PID-3 repetition of the site's patient authority (CRS_HL7_PATIENT_AUTHORITY), refuses a PID-3 without it", async () => {
    // Two MR numbers (the hospital's and a regional one): refused without the setting, whichever comes first.
    const text = (pid: string, id: string) =>
      toPcd01(msg('P-1', 0, { vitals: { spo2: 93 } }, id))!.replace('PID|||P-1^^^HOSP^MR', `PID|||${pid}`);
    const two = text('E-77^^^REGION^MR~P-1^^^HOSP^MR', 'M-4');
    const unset = await captureOutput(() =>
      mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live })(hl7(two)),
    );
    expect(unset.result.statusCode).toBe(422);
    process.env.CRS_HL7_PATIENT_AUTHORITY = 'HOSP';
    try {
      const { hl7PatientAuthority } = mod.liveDeps(() => NOW);
      expect(hl7PatientAuthority).toBe('HOSP');
      const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, hl7PatientAuthority: 'HOSP', ...live });
      const taken = await captureOutput(() => handler(hl7(two)));
      expect([taken.result.statusCode, readAck(taken.result.body as string)?.code]).toEqual([202, 'AA']);
      expect(queue.messages.map((q) => q.message.patientId)).toEqual(['P-1']);
      const none = await captureOutput(() => handler(hl7(text('E-77^^^REGION^MR', 'M-5'))));
      expect(none.result.statusCode).toBe(422);
      expect(none.result.body).toMatch(/\rERR\|\|PID\^1\^3\^1\|102\^[^\r]*assigning authority "HOSP"/);
      // A value no namespace id can be stops the function at its start, as a bad zone does.
      process.env.CRS_HL7_PATIENT_AUTHORITY = 'HOSP^MR';
      expect(() => mod.liveDeps(() => NOW)).toThrow(
        /CRS_HL7_PATIENT_AUTHORITY "HOSP\^MR" is not an assigning authority/,
      );
    } finally {
      delete process.env.CRS_HL7_PATIENT_AUTHORITY;
    }
  });

  it("reads the site's FHIR patient system from CRS_FHIR_PATIENT_SYSTEM at its start, and refuses one that is no URI", () => {
    process.env.CRS_FHIR_PATIENT_SYSTEM = 'http://hospital.example/mrn';
    try {
      expect(mod.liveDeps(() => NOW).fhirPatientSystem).toBe('http://hospital.example/mrn');
      // A value no identifier system can be stops the function at its start, as a bad zone does.
      for (const bad of ['MRN', 'http://hospital.example/my mrn', '1http://x']) {
        process.env.CRS_FHIR_PATIENT_SYSTEM = bad;
        expect(() => mod.liveDeps(() => NOW), bad).toThrow(/^CRS_FHIR_PATIENT_SYSTEM ".*" is not an absolute URI/);
      }
    } finally {
      delete process.env.CRS_FHIR_PATIENT_SYSTEM;
    }
    expect(mod.liveDeps(() => NOW)).not.toHaveProperty('fhirPatientSystem');
  });

  it("reads the site's drug codes the stack ships beside the handler (CRS_FHIR_DRUG_CODES_FILE), and refuses a bad or missing map", () => {
    const root = mkdtempSync(join(tmpdir(), 'crs-ingest-drugs-'));
    const map = [{ system: 'urn:oid:1.2.3', code: '40012', drug: 'norepinephrine' }];
    writeFileSync(join(root, 'codes.json'), JSON.stringify(map));
    writeFileSync(join(root, 'bad.json'), JSON.stringify([{ ...map[0], code: '' }]));
    process.env.LAMBDA_TASK_ROOT = root;
    process.env.CRS_FHIR_DRUG_CODES_FILE = 'codes.json';
    try {
      expect([...(mod.liveDeps(() => NOW).fhirDrugCodes ?? [])]).toEqual([['urn:oid:1.2.3\n40012', 'norepinephrine']]);
      process.env.CRS_FHIR_DRUG_CODES_FILE = 'bad.json';
      expect(() => mod.liveDeps(() => NOW)).toThrow(
        /^CRS_FHIR_DRUG_CODES_FILE \(.*bad\.json\): entry 0 code: must be 1-256 printable ASCII/,
      );
      process.env.CRS_FHIR_DRUG_CODES_FILE = 'none.json';
      expect(() => mod.liveDeps(() => NOW)).toThrow(
        /^CRS_FHIR_DRUG_CODES_FILE \(.*none\.json\) cannot be read: ENOENT/,
      );
    } finally {
      delete process.env.CRS_FHIR_DRUG_CODES_FILE;
      delete process.env.LAMBDA_TASK_ROOT;
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('answers a FHIR transaction with a transaction-response Bundle and queues its messages', async () => {
    const bundle = new FhirEncoder().bundle(enrol('P-2', -60))!;
    const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live });
    const { result } = await captureOutput(() =>
      handler(
        httpEvent({
          path: '/fhir/r4/Bundle',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
          body: JSON.stringify(bundle),
        }),
      ),
    );
    // 202 and an OperationOutcome until 2026-12-05: a FHIR client's transaction() could not read it as a Bundle.
    expect([result.statusCode, result.headers?.['content-type']]).toEqual([
      200,
      'application/fhir+json; charset=utf-8',
    ]);
    const answer = JSON.parse(result.body as string) as Bundle;
    expect([answer.resourceType, answer.type]).toEqual(['Bundle', 'transaction-response']);
    expect(answer.entry!.map((e) => e.response!.status)).toEqual(bundle.entry!.map(() => '202 Accepted'));
    expect(queue.messages.map((q) => q.message.enrolment)).toEqual([
      { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', product: 'axi-cel' }, // at the infusion's time
      { weightKg: 70, bed: 'H4-P-2', ward: 'H4' }, // the weight and the Encounter: one source, one time
    ]);
  });

  it('answers GET /fhir/r4/metadata with the CapabilityStatement, reading no token and queuing nothing', async () => {
    tokens.failWith = new Error('the token table is down'); // read, it would answer 503
    const handler = mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live });
    const result = await handler(httpEvent({ method: 'GET', path: '/fhir/r4/metadata', headers: {} }));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body as string)).toMatchObject({ resourceType: 'CapabilityStatement' });
    expect(queue.messages).toEqual([]);
  });

  describe("a store ingest reads that throws (a throttle, an outage): 503 in the route's format, nothing queued", () => {
    const m = msg('P-4', 0, { vitals: { heartRate: 90 } }, 'M-4');
    /** The same message on each route: its status, Retry-After, and what the body says in its format. */
    const onEveryRoute = async (deps: Parameters<typeof mod.createIngestHandler>[0]) => {
      const handler = mod.createIngestHandler(deps);
      const headers = (type: string) => ({ authorization: `Bearer ${token}`, 'content-type': type });
      const answers = [
        await handler(httpEvent({ headers: headers('application/json'), body: JSON.stringify(m) })),
        await handler(hl7(toPcd01(m)!)),
        await handler(
          httpEvent({
            path: '/fhir/r4/Bundle',
            headers: headers('application/fhir+json'),
            body: JSON.stringify(new FhirEncoder().bundle(m)),
          }),
        ),
      ];
      return answers.map((a) => {
        const body = a.body as string;
        const said = body.startsWith('MSH')
          ? readAck(body)?.code
          : ((JSON.parse(body) as { issue?: { code: string }[] }).issue?.[0]?.code ?? 'json');
        return [a.statusCode, a.headers?.['retry-after'], said];
      });
    };
    const unavailable = [
      [503, '5', 'json'],
      [503, '5', 'AR'],
      [503, '5', 'transient'],
    ];

    it('the device tokens (read on every request): not a 500, nor a 403, which would tell the device to stop', async () => {
      tokens.failWith = new Error('ProvisionedThroughputExceededException');
      const { result: answers, out } = await captureOutput(() =>
        onEveryRoute({ queue, tokens, now: () => NOW, ...live }),
      );
      expect(answers).toEqual(unavailable);
      expect(queue.calls).toBe(0);
      expect(metricSum(out, 'AuthFailures')).toBe(0);
      tokens.failWith = undefined;
      const { result: after } = await captureOutput(() => onEveryRoute({ queue, tokens, now: () => NOW, ...live }));
      expect(after.map(([status]) => status)).toEqual([202, 202, 200]);
    });

    it('the patient directory (read for a token scoped to wards): not a 500', async () => {
      const scoped = issueToken('mon-h4', new Date(NOW), { kind: 'ehr', wards: ['H4'] });
      await tokens.put(scoped.record);
      token = scoped.token;
      const patients = {
        lookup: () => Promise.reject(new Error('ProvisionedThroughputExceededException')),
      };
      const { result: answers, out } = await captureOutput(() =>
        onEveryRoute({ queue, tokens, patients, now: () => NOW, ...live }),
      );
      expect(answers).toEqual(unavailable);
      expect(queue.calls).toBe(0);
      // The operator sees why, by the error's name only (its message may echo data).
      expect(out).toContain('"message":"a store ingest reads failed"');
      expect(out).toContain('"error":"Error"');
    });
  });
});

describe("the site's drug codes on the FHIR route (2026-12-07, a mutation run)", () => {
  it('a local code the map reads as norepinephrine is queued as one; without the map it is refused', async () => {
    const drip = {
      resourceType: 'MedicationAdministration',
      id: 'ma-n',
      status: 'in-progress',
      medicationCodeableConcept: {
        coding: [{ system: 'urn:oid:1.2.3', code: '40012', display: 'NORADRENALINE DRIP' }],
      },
      subject: { reference: 'Patient/P-1' },
      effectiveDateTime: '2026-01-10T08:00:00Z',
      dosage: {
        rateQuantity: { value: 0.1, unit: 'ug/kg/min', system: 'http://unitsofmeasure.org', code: 'ug/kg/min' },
      },
    };
    const post = (fhirDrugCodes?: ReturnType<typeof parseDrugCodes>) =>
      captureOutput(() =>
        mod.createIngestHandler({
          queue,
          tokens,
          now: () => NOW,
          ...live,
          ...(fhirDrugCodes ? { fhirDrugCodes } : {}),
        })(
          httpEvent({
            path: '/fhir/r4/MedicationAdministration',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
            body: JSON.stringify(drip),
          }),
        ),
      );
    expect((await post()).result.statusCode).toBe(422);
    expect(queue.messages).toEqual([]);
    const map = parseDrugCodes('[{ "system": "urn:oid:1.2.3", "code": "40012", "drug": "norepinephrine" }]', 'test');
    expect((await post(map)).result.statusCode).toBe(202);
    expect(queue.messages.map((q) => q.message.vasopressors)).toEqual([
      [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
    ]);
  });
});
