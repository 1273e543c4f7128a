// The screen of the HL7 v2 and FHIR routes (shared/app/interfaces/screen.ts): a bad observation is refused where it
// came from and the message's good observations are kept; an error no observation explains refuses the message.
// Pinned after a mutation run: each mutant of the screen passed every interface test.
import { describe, expect, it } from 'vitest';
import { check } from '#app/ingest.ts';
import { isDevicePath } from '#app/interfaces/http.ts';
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
import { toContractUnit } from '#app/interfaces/units.ts';

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
        problem: `unit ${JSON.stringify(ucum)} is not a unit for vitals.heartRate (use /min (MDC_DIM_BEAT_PER_MIN 264864))`,
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
      problem: 'unit "1" is not a unit for vitals.spo2 (use % (MDC_DIM_PERCENT 262688))',
    });
  });
});
