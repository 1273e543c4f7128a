// The screen of the HL7 v2 and FHIR routes (shared/app/interfaces/screen.ts): a bad observation is refused where it
// came from and the message's good observations are kept; an error no observation explains refuses the message.
// Pinned after a mutation run: each mutant of the screen passed every interface test.
import { describe, expect, it } from 'vitest';
import { check } from '#app/ingest.ts';
import { issueToken } from '#app/auth.ts';
import { handleDeviceRequest, isDevicePath } from '#app/interfaces/http.ts';
import { FHIR_BASE } from '#app/interfaces/routes.ts';
import { screen, type Translated } from '#app/interfaces/screen.ts';
import {
  CRS_CODES,
  ENUMS,
  LOINC_SYSTEM,
  RXNORM,
  SNOMED,
  enumOf,
  medicationOf,
  oxygenDeviceOf,
  vasopressorOf,
} from '#app/interfaces/terminology.ts';
import { toContractUnit, type SentUnit } from '#app/interfaces/units.ts';
import { ingestFakes } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const head = {
  messageId: 'm-1',
  patientId: 'P-1',
  observedAt: '2026-01-10T08:59:00Z',
  source: { deviceId: 'mon-1', kind: 'monitor' },
};
const run = (message: Record<string, unknown>, origins: Record<string, string>) =>
  screen({ message: { ...head, ...message }, origins, whole: 'PID' } satisfies Translated<string>, (v) =>
    check(v, NOW),
  );

describe('the screen keeps good observations', () => {
  it('refuses only the bad field, at its own origin, when its section also has an origin', () => {
    const r = run(
      { vitals: { temperatureC: 38.4, spo2: 130 } },
      { vitals: 'OBR', 'vitals.temperatureC': 'OBX-1', 'vitals.spo2': 'OBX-2' },
    );
    expect(r.message?.vitals).toEqual({ temperatureC: 38.4 });
    expect(r.problems).toEqual([{ at: 'OBX-2', text: 'vitals.spo2: 130 is outside 0-100' }]);
  });

  it('refuses a bad list entry by its list origin and keeps the vitals', () => {
    const r = run(
      { vitals: { temperatureC: 38.4 }, vasopressors: [{ drug: 'levophed', dose: 1, unit: 'mcg/min' }] },
      { 'vitals.temperatureC': 'OBX-1', vasopressors: 'RXA-1' },
    );
    expect(r.message?.vitals).toEqual({ temperatureC: 38.4 });
    expect(r.message?.vasopressors).toBeUndefined();
    expect(r.problems.map((p) => p.at)).toEqual(['RXA-1']);
  });

  it('drops a section left empty by a refused field and keeps the other sections', () => {
    const r = run(
      { vitals: { spo2: 130 }, neuro: { iceScore: 8 } },
      { 'vitals.spo2': 'OBX-2', 'neuro.iceScore': 'OBX-3' },
    );
    expect(r.message).toMatchObject({ neuro: { iceScore: 8 } });
    expect(r.message?.vitals).toBeUndefined();
    expect(r.problems).toEqual([{ at: 'OBX-2', text: 'vitals.spo2: 130 is outside 0-100' }]);
  });

  it('when every observation is refused, names each and adds no "no data section" error', () => {
    const r = run({ vitals: { spo2: 130 } }, { 'vitals.spo2': 'OBX-2' });
    expect(r.message).toBeUndefined();
    expect(r.problems).toEqual([{ at: 'OBX-2', text: 'vitals.spo2: 130 is outside 0-100' }]);
  });

  it('an error on the whole message refuses it and is always reported, with the field errors found alongside', () => {
    const r = run({ patientId: 'a b', vitals: { spo2: 130 } }, { 'vitals.spo2': 'OBX-2' });
    expect(r.message).toBeUndefined();
    expect(r.problems).toEqual([
      { at: 'OBX-2', text: 'vitals.spo2: 130 is outside 0-100' },
      { at: 'PID', text: 'patientId: "a b" is not 1-64 characters of A-Z a-z 0-9 . _ : -' },
    ]);
  });
});

describe('an error no removable part explains', () => {
  it('is reported at the whole message, even when its path has an origin whose part is absent, and the screen ends', () => {
    // oxygen.device has an origin but is missing: removing it cannot help, so the message is refused, saying why.
    const r = run(
      { oxygen: { flowLpm: 2 }, vitals: { heartRate: 80 } },
      { 'oxygen.device': 'OBX-9', 'oxygen.flowLpm': 'OBX-8', 'vitals.heartRate': 'OBX-1' },
    );
    expect(r.message).toBeUndefined();
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.at).toBe('PID');
    expect(r.problems[0]!.text).toMatch(/^oxygen\.device: is required/);
  });
});

describe('units and routes of the interfaces', () => {
  it('refuses a unit named like an inherited property ("constructor", "toString"), naming it', () => {
    for (const ucum of ['constructor', 'toString', '__proto__']) {
      expect(toContractUnit('vitals.heartRate', 80, { ucum })).toEqual({
        ok: false,
        problem: `unit ${JSON.stringify(ucum)} is not a unit for vitals.heartRate (use UCUM /min, {beats}/min or {beat}/min; MDC 264864 MDC_DIM_BEAT_PER_MIN)`,
      });
    }
  });

  it('routes the FHIR base itself to the device handler (a transaction Bundle is POSTed there)', () => {
    expect(isDevicePath(FHIR_BASE)).toBe(true);
    expect(isDevicePath(`${FHIR_BASE}/Observation`)).toBe(true);
    expect(isDevicePath('/fhir/r4x')).toBe(false);
  });
});

describe('codes and units of the interfaces, pinned by a mutation run', () => {
  it('maps no code named like an inherited property ("constructor", "toString", "__proto__") to a device or a drug', () => {
    for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(oxygenDeviceOf(SNOMED, code)).toBeUndefined();
      expect(vasopressorOf(RXNORM, code)).toBeUndefined();
      expect(medicationOf(RXNORM, code)).toBeUndefined();
    }
  });

  it('reads a unit sent as two codes that agree by either, and refuses two codes that name different units', () => {
    expect(toContractUnit('vitals.temperatureC', 101.3, { mdc: 266560, mdcRefId: 'MDC_DIM_FAHR' })).toEqual({
      ok: true,
      value: 38.5,
    });
    expect(toContractUnit('oxygen.fio2', 40, { mdc: 262688, ucum: '%' })).toEqual({ ok: true, value: 0.4 });
    // A code the table does not know beside one it does: read by the one it knows.
    expect(toContractUnit('vitals.systolicBP', 84, { mdc: 266016, mdcRefId: 'MDC_DIM_MM_HG' })).toEqual({
      ok: true,
      value: 84,
    });
    expect(toContractUnit('vitals.temperatureC', 101.3, { mdc: 266560, ucum: 'Cel' })).toEqual({
      ok: false,
      problem: 'unit "266560 / Cel" names two different units for vitals.temperatureC',
    });
    expect(toContractUnit('vitals.systolicBP', 11.2, { mdc: 266016, mdcRefId: 'MDC_DIM_KILO_PASCAL' })).toEqual({
      ok: false,
      problem: 'unit "266016 / MDC_DIM_KILO_PASCAL" names two different units for vitals.systolicBP',
    });
    expect(toContractUnit('oxygen.fio2', 0.4, { mdcRefId: 'MDC_DIM_PERCENT', ucum: '1' })).toMatchObject({ ok: false });
  });

  it("reads the ICANS domains only in the project's own CodeSystem: the same name under another system is no code", () => {
    expect(enumOf('consciousness', CRS_CODES, 'awakens_to_voice')).toBe('awakens_to_voice');
    expect(enumOf('consciousness', SNOMED, 'awakens_to_voice')).toBeUndefined();
    expect(enumOf('seizure', LOINC_SYSTEM, ENUMS.seizure[0])).toBeUndefined();
  });

  it('refuses an SpO2 sent as a fraction (unit "1"): only % is an SpO2 unit', () => {
    expect(toContractUnit('vitals.spo2', 0.93, { ucum: '1' })).toEqual({
      ok: false,
      problem: 'unit "1" is not a unit for vitals.spo2 (use UCUM %; MDC 262688 MDC_DIM_PERCENT)',
    });
  });
});

describe('units, codes, the screen and the device routes, pinned by a mutation run of shared/app/interfaces', () => {
  it("reads each unit code of docs/interfaces.md alone as that unit, and refuses another field's unit, naming the field", () => {
    const cases: [Parameters<typeof toContractUnit>[0], number, SentUnit, number | undefined][] = [
      ['vitals.temperatureC', 38.6, { mdc: 268192 }, 38.6],
      ['vitals.temperatureC', 101.3, { mdc: 266560 }, 38.5],
      ['vitals.temperatureC', 38.6, { mdcRefId: 'MDC_DIM_DEGC' }, 38.6],
      ['vitals.temperatureC', 101.3, { mdcRefId: 'MDC_DIM_FAHR' }, 38.5],
      ['vitals.temperatureC', 38.6, { ucum: 'Cel' }, 38.6],
      ['vitals.temperatureC', 101.3, { ucum: '[degF]' }, 38.5],
      ['vitals.heartRate', 112, { mdc: 264864 }, 112],
      ['vitals.heartRate', 112, { mdcRefId: 'MDC_DIM_BEAT_PER_MIN' }, 112],
      ['vitals.heartRate', 112, { ucum: '/min' }, 112],
      ['vitals.heartRate', 112, { ucum: '{beats}/min' }, 112],
      ['vitals.heartRate', 112, { mdc: 264928 }, undefined],
      ['vitals.heartRate', 112, { mdcRefId: 'MDC_DIM_RESP_PER_MIN' }, undefined],
      ['vitals.respiratoryRate', 24, { mdc: 264928 }, 24],
      ['vitals.respiratoryRate', 24, { mdcRefId: 'MDC_DIM_RESP_PER_MIN' }, 24],
      ['vitals.respiratoryRate', 24, { ucum: '/min' }, 24],
      ['vitals.respiratoryRate', 24, { ucum: '{breaths}/min' }, 24],
      ['vitals.respiratoryRate', 24, { mdc: 264864 }, undefined],
      ['vitals.respiratoryRate', 24, { mdcRefId: 'MDC_DIM_BEAT_PER_MIN' }, undefined],
      ['vitals.spo2', 93, { mdc: 262688 }, 93],
      ['vitals.spo2', 93, { mdcRefId: 'MDC_DIM_PERCENT' }, 93],
      ['vitals.spo2', 93, { ucum: '%' }, 93],
      ['vitals.systolicBP', 84, { mdc: 266016 }, 84],
      ['vitals.systolicBP', 84, { mdcRefId: 'MDC_DIM_MMHG' }, 84],
      ['vitals.systolicBP', 84, { ucum: 'mm[Hg]' }, 84],
      ['vitals.diastolicBP', 8.66, { mdc: 265987 }, 64.9553324682],
      ['vitals.diastolicBP', 8.66, { mdcRefId: 'MDC_DIM_KILO_PASCAL' }, 64.9553324682],
      ['vitals.meanArterialPressure', 8.66, { ucum: 'kPa' }, 64.9553324682],
      ['oxygen.fio2', 40, { mdc: 262688 }, 0.4],
      ['oxygen.fio2', 40, { mdcRefId: 'MDC_DIM_PERCENT' }, 0.4],
      ['oxygen.fio2', 40, { ucum: '%' }, 0.4],
      ['oxygen.fio2', 0.4, { ucum: '1' }, 0.4],
      ['oxygen.fio2', 0.4, { ucum: '{ratio}' }, 0.4],
      ['oxygen.flowLpm', 2, { ucum: 'L/min' }, 2],
      ['oxygen.flowLpm', 2, { ucum: 'l/min' }, 2],
      ['enrolment.weightKg', 70, { ucum: 'kg' }, 70],
      ['enrolment.weightKg', 70_500, { ucum: 'g' }, 70.5],
      ['enrolment.weightKg', 154, { ucum: '[lb_av]' }, 69.85322498],
    ];
    for (const [field, value, unit, expected] of cases) {
      expect(toContractUnit(field, value, unit), `${field} ${value} ${JSON.stringify(unit)}`).toEqual(
        expected === undefined ? { ok: false, problem: expect.stringContaining(field) } : { ok: true, value: expected },
      );
    }
  });

  it('maps each SNOMED CT oxygen device and RxNorm drug of docs/interfaces.md to its own contract name', () => {
    const devices = ['336623009', '425478008', '427591007', '428285009', '463587004'];
    expect(devices.map((c) => oxygenDeviceOf(SNOMED, c))).toEqual([
      'nasal_cannula',
      'blow_by',
      'non_rebreather',
      'venturi',
      'simple_mask',
    ]);
    const pressors = ['7512', '3992', '8163', '3628', '11149'];
    expect(pressors.map((c) => vasopressorOf(RXNORM, c))).toEqual([
      'norepinephrine',
      'epinephrine',
      'phenylephrine',
      'dopamine',
      'vasopressin',
    ]);
    const drugs = ['612865', '1535218', '72435', '3264', '6902', '5492', '161', '5640'];
    expect(drugs.map((c) => medicationOf(RXNORM, c))).toEqual([
      'tocilizumab',
      'siltuximab',
      'anakinra',
      'dexamethasone',
      'methylprednisolone',
      'hydrocortisone',
      'acetaminophen',
      'ibuprofen',
    ]);
  });

  it('reads a code only in its own system: a SNOMED CT or RxNorm number elsewhere, or a contract name outside the CRS system, is no code', () => {
    expect(oxygenDeviceOf(RXNORM, '336623009')).toBeUndefined();
    expect(oxygenDeviceOf(LOINC_SYSTEM, '336623009')).toBeUndefined();
    expect(oxygenDeviceOf(SNOMED, 'nasal_cannula')).toBeUndefined();
    expect(oxygenDeviceOf(CRS_CODES, 'nasal_cannula')).toBe('nasal_cannula');
    expect(vasopressorOf(SNOMED, '7512')).toBeUndefined();
    expect(vasopressorOf(RXNORM, 'norepinephrine')).toBeUndefined();
    expect(vasopressorOf(CRS_CODES, 'norepinephrine')).toBe('norepinephrine');
    expect(medicationOf(SNOMED, '612865')).toBeUndefined();
    expect(medicationOf(RXNORM, 'tocilizumab')).toBeUndefined();
    expect(medicationOf(CRS_CODES, 'tocilizumab')).toBe('tocilizumab');
    // A contract name is no code in a standard system either.
    expect(oxygenDeviceOf(RXNORM, 'nasal_cannula')).toBeUndefined();
    expect(vasopressorOf(SNOMED, 'norepinephrine')).toBeUndefined();
    expect(medicationOf(SNOMED, 'tocilizumab')).toBeUndefined();
  });

  it('refuses a field by its section origin when the field has none of its own, keeping the other sections', () => {
    const r = run(
      { oxygen: { device: 'venturi', fio2: 1.5 }, vitals: { heartRate: 80 } },
      { oxygen: 'OBX-9', 'vitals.heartRate': 'OBX-1' },
    );
    expect(r.message?.vitals).toEqual({ heartRate: 80 });
    expect(r.message?.oxygen).toBeUndefined();
    expect(r.problems).toEqual([{ at: 'OBX-9', text: expect.stringMatching(/^oxygen\.fio2: /) }]);
  });

  it('routes only /v1/... (not /v1x) to the device handler', () => {
    expect(isDevicePath('/v1/messages')).toBe(true);
    expect(isDevicePath('/v1x')).toBe(false);
    expect(isDevicePath('/v1')).toBe(false);
  });

  it('answers a JSON message with the ids it queued, and a path beside the HL7 or FHIR route 404 without reading it as HL7 or FHIR', async () => {
    const { queue, tokens, token } = await ingestFakes(NOW);
    const deps = { queue, tokens, now: () => NOW };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const message = { ...head, source: { deviceId: 'gw-icu4', kind: 'monitor' }, vitals: { heartRate: 90 } };
    const json = await handleDeviceRequest(
      { method: 'POST', path: '/v1/messages', headers, body: JSON.stringify(message) },
      deps,
    );
    expect([json.status, json.messageIds]).toEqual([202, ['m-1']]);
    const near = await handleDeviceRequest(
      {
        method: 'POST',
        path: '/v1/hl7v2x',
        headers: { ...headers, 'content-type': 'x-application/hl7-v2+er7' },
        body: 'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|X1|P|2.6',
      },
      deps,
    );
    expect([near.status, near.messageIds]).toEqual([404, []]);
    expect(near.body).toMatch(/no route \\"\/v1\/hl7v2x\\"/);
    const fhirNear = await handleDeviceRequest(
      {
        method: 'POST',
        path: '/fhir/r4x',
        headers: { ...headers, 'content-type': 'application/fhir+json' },
        body: '{}',
      },
      deps,
    );
    expect([fhirNear.status, fhirNear.messageIds]).toEqual([404, []]);
    // The FHIR base itself takes a Bundle (docs/interfaces.md: POST /fhir/r4/Bundle or /fhir/r4).
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: {
            resourceType: 'Observation',
            id: 'hr-1',
            status: 'final',
            subject: { reference: 'Patient/P-1' },
            effectiveDateTime: '2026-01-10T08:59:00Z',
            code: { coding: [{ system: LOINC_SYSTEM, code: '8867-4' }] },
            valueQuantity: { value: 90, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
          },
        },
      ],
    };
    const base = await handleDeviceRequest(
      {
        method: 'POST',
        path: FHIR_BASE,
        headers: { ...headers, 'content-type': 'application/fhir+json' },
        body: JSON.stringify(bundle),
      },
      deps,
    );
    expect([base.status, base.messageIds]).toEqual([200, ['fhir:Observation/hr-1']]);
    expect(queue.messages.map((q) => q.message.messageId)).toEqual(['m-1', 'fhir:Observation/hr-1']);
  });

  it('tells the host the error when a store it needs throws (the patient directory), and answers 503', async () => {
    const { queue, tokens } = await ingestFakes(NOW);
    const scoped = issueToken('mon-h4', new Date(NOW), { kind: 'ehr', wards: ['H4'] });
    await tokens.put(scoped.record);
    const boom = new Error('ProvisionedThroughputExceededException');
    const told: unknown[] = [];
    const res = await handleDeviceRequest(
      {
        method: 'POST',
        path: '/v1/messages',
        headers: { authorization: `Bearer ${scoped.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...head, vitals: { heartRate: 90 } }),
      },
      {
        queue,
        tokens,
        now: () => NOW,
        patients: { lookup: () => Promise.reject(boom) },
        onUnavailable: (e) => told.push(e),
      },
    );
    expect(res.status).toBe(503);
    expect(told).toEqual([boom]);
    expect(queue.messages).toEqual([]);
  });
});
