// docs/interfaces.md read as a specification: its tables of observation codes and units are parsed from the page and
// each row is sent over HL7 v2 (OBX-3, OBX-6) and FHIR (code.coding, valueQuantity), so that a row the code does not
// hold, or holds differently (a unit not converted, a code mapped to another field), fails here by the doc's words.
// A sentence-by-sentence audit (2026-12-07) found rows no test sent: MDC_DIM_DEGC alone in OBX-6, among others.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { translateResources } from '#app/fhir/translate.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { parseZone } from '#app/interfaces/zone.ts';
import { CRS_CODES, LOINC_SYSTEM, MDC_SYSTEM, RXNORM, SNOMED, UCUM } from '#app/interfaces/terminology.ts';

const DOC = readFileSync(new URL('../../docs/interfaces.md', import.meta.url), 'utf8');

/** The rows of the markdown table under `heading` (cells trimmed, the header and its rule left out). */
function tableUnder(heading: string): string[][] {
  const start = DOC.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const lines = DOC.slice(start + heading.length + 2).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows;
}

const OBR_TIME = '20260110080000+0000';
const EFFECTIVE = '2026-01-10T08:00:00Z';

/** The contract message's value at `field` (vitals.heartRate), of the one message translated. */
const valueAt = (message: Record<string, unknown>, field: string): unknown =>
  field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], message);

function overHl7(obx3: string, value: number, obx6: string, oxygen = false) {
  const text = [
    'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|M1|P|2.6',
    'PID|||P-0042^^^^MR',
    `OBR|1||||||${OBR_TIME}`,
    `OBX|1|NM|${obx3}||${value}|${obx6}|||||F`,
    // FiO2 and flow are read with their device (a high-flow cannula's, which any FiO2 and flow may come with).
    ...(oxygen ? ['OBX|2|CWE|oxygen-device^^99CRS||high_flow_nasal_cannula^^99CRS||||||F'] : []),
  ].join('\r');
  const r = translatePcd01(text);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return { messages: r.translated.map((t) => t.message), problems: r.problems.map((p) => p.text) };
}

/** An Observation of P-0042 at EFFECTIVE, its `value[x]` given. */
const observation = (id: string, coding: { system: string; code: string }, value: Record<string, unknown>) => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [coding] },
  subject: { reference: 'Patient/P-0042' },
  effectiveDateTime: EFFECTIVE,
  ...value,
});
/** The oxygen device of P-0042 at EFFECTIVE, coded as `coding`. */
const oxygenDevice = (id: string, coding: { system: string; code: string }) =>
  observation(id, { system: CRS_CODES, code: 'oxygen-device' }, { valueCodeableConcept: { coding: [coding] } });

function overFhir(coding: { system: string; code: string }, value: number, unit: { system: string; code: string }) {
  const oxygen =
    [LOINC_SYSTEM, MDC_SYSTEM].includes(coding.system) && ['3150-0', '3151-8', '152196'].includes(coding.code);
  const device = oxygenDevice('o2', { system: CRS_CODES, code: 'high_flow_nasal_cannula' });
  const resource = observation('o1', coding, { valueQuantity: { value, ...unit } });
  const items: { resource: unknown; at: string }[] = [{ resource, at: 'Bundle.entry[0].resource' }];
  if (oxygen) items.push({ resource: device, at: 'Bundle.entry[1].resource' });
  const r = translateResources(items, { deviceId: 'ehr-1' });
  return {
    messages: r.translated.map((t) => t.message),
    problems: r.issues.filter((i) => (i.severity ?? 'error') === 'error').map((i) => i.text),
  };
}

const one = (r: { messages: Record<string, unknown>[]; problems: string[] }, field: string): unknown => {
  expect(r.problems).toEqual([]);
  expect(r.messages).toHaveLength(1);
  return valueAt(r.messages[0]!, field);
};

describe('docs/interfaces.md, Observation codes: each MDC and LOINC code of the table names its contract field', () => {
  const rows = tableUnder('### Observation codes').filter(([field]) => /^`(vitals|oxygen)\.\w+`$/.test(field!));
  const numeric = rows.filter(([, mdc, loinc]) => /\d{6}/.test(mdc!) || /\d+-\d/.test(loinc!));
  it('the table has the nine measured fields', () => {
    expect(numeric.map(([f]) => f!.slice(1, -1))).toEqual([
      'vitals.temperatureC',
      'vitals.heartRate',
      'vitals.respiratoryRate',
      'vitals.spo2',
      'vitals.systolicBP',
      'vitals.diastolicBP',
      'vitals.meanArterialPressure',
      'oxygen.fio2',
      'oxygen.flowLpm',
    ]);
  });
  /** A value and a unit each field takes as is (the first of the units table). */
  const plain: Record<string, [number, string, string]> = {
    'vitals.temperatureC': [38.4, 'Cel', '268192'],
    'vitals.heartRate': [117, '/min', '264864'],
    'vitals.respiratoryRate': [23, '/min', '264928'],
    'vitals.spo2': [91, '%', '262688'],
    'vitals.systolicBP': [87, 'mm[Hg]', '266016'],
    'vitals.diastolicBP': [47, 'mm[Hg]', '266016'],
    'vitals.meanArterialPressure': [61, 'mm[Hg]', '266016'],
    'oxygen.fio2': [0.45, '1', ''],
    'oxygen.flowLpm': [6, 'L/min', ''],
  };
  for (const [cell, mdcCell, loincCell] of numeric) {
    const field = cell!.slice(1, -1);
    const [value, ucum, mdcUnit] = plain[field]!;
    const mdc = [...mdcCell!.matchAll(/(\d{6}) (MDC_\w+)/g)].map((m) => [m[1]!, m[2]!] as const);
    const loinc = [...loincCell!.matchAll(/\d+-\d/g)].map((m) => m[0]);
    const obx6 = mdcUnit ? `${mdcUnit}^^MDC` : `${ucum}^^UCUM`;
    for (const [code, refId] of mdc) {
      it(`${field}: OBX-3 ${code}^${refId}^MDC, and FHIR ${MDC_SYSTEM}|${code}`, () => {
        expect(one(overHl7(`${code}^${refId}^MDC`, value, obx6, field.startsWith('oxygen')), field)).toBe(value);
        const unit = mdcUnit ? { system: MDC_SYSTEM, code: mdcUnit } : { system: UCUM, code: ucum };
        expect(one(overFhir({ system: MDC_SYSTEM, code }, value, unit), field)).toBe(value);
      });
    }
    for (const code of loinc) {
      it(`${field}: OBX-3 ${code}^^LN, and FHIR ${LOINC_SYSTEM}|${code}`, () => {
        expect(one(overHl7(`${code}^^LN`, value, `${ucum}^^UCUM`, field.startsWith('oxygen')), field)).toBe(value);
        expect(one(overFhir({ system: LOINC_SYSTEM, code }, value, { system: UCUM, code: ucum }), field)).toBe(value);
      });
    }
  }
});

describe('docs/interfaces.md, Units: every unit of the table, as OBX-6 (number, reference id or UCUM) and in FHIR', () => {
  const rows = tableUnder('### Units (OBX-6; FHIR `valueQuantity.code`)');
  /** Each row's field, its code over HL7 (none: FHIR only) and FHIR, and what the converted column's formula does. */
  const fields: Record<
    string,
    { field: string; hl7?: string; loinc: string; formula?: [string, (v: number) => number] }
  > = {
    temperature: {
      field: 'vitals.temperatureC',
      hl7: '150344^MDC_TEMP^MDC',
      loinc: '8310-5',
      formula: ['(F - 32) x 5/9', (v) => ((v - 32) * 5) / 9],
    },
    'heart rate': { field: 'vitals.heartRate', hl7: '8867-4^^LN', loinc: '8867-4' },
    'respiratory rate': { field: 'vitals.respiratoryRate', hl7: '9279-1^^LN', loinc: '9279-1' },
    SpO2: { field: 'vitals.spo2', hl7: '150456^MDC_PULS_OXIM_SAT_O2^MDC', loinc: '59408-5' },
    'blood pressures': {
      field: 'vitals.meanArterialPressure',
      hl7: '150035^MDC_PRESS_BLD_ART_MEAN^MDC',
      loinc: '8478-0',
      formula: ['x 1000 / 133.322387415', (v) => (v * 1000) / 133.322387415],
    },
    FiO2: { field: 'oxygen.fio2', hl7: '3150-0^^LN', loinc: '3150-0', formula: ['/ 100', (v) => v / 100] },
    'O2 flow': { field: 'oxygen.flowLpm', hl7: '3151-8^^LN', loinc: '3151-8' },
    'weight (FHIR)': { field: 'enrolment.weightKg', loinc: '29463-7' },
  };
  /** Weight's conversions are not written as formulas in the table: by UCUM's definitions. */
  const weight: Record<string, (v: number) => number> = {
    kg: (v) => v,
    g: (v) => v / 1000,
    '[lb_av]': (v) => v * 0.45359237,
  };

  it('has the eight rows, each with the formula the test applies', () => {
    expect(rows.map(([f]) => f)).toEqual(Object.keys(fields));
    for (const [name, , converted] of rows) {
      const formula = fields[name!]!.formula;
      if (formula) expect(converted).toContain(`: ${formula[0]}`);
    }
  });

  /** The units of a cell: UCUM codes in backquotes, MDC numbers with their reference id. */
  const unitsOf = (cell: string) => ({
    ucum: [...cell.split(':')[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
    mdc: [...cell.matchAll(/MDC (\d{6}) (MDC_DIM_\w+)/g)].map((m) => [m[1]!, m[2]!] as const),
  });

  // Values whose conversion is not the identity to 12 significant digits, nor a rounding of it.
  const VALUE: Record<string, number> = {
    temperature: 101.3,
    'blood pressures': 8.66,
    FiO2: 39.996,
    'weight (FHIR)': 154.3,
  };
  for (const [name, accepted, converted] of rows) {
    const { field, hl7, loinc, formula } = fields[name!]!;
    for (const [cell, convert] of [
      [accepted!, (v: number) => v],
      [converted!, formula?.[1]],
    ] as const) {
      const { ucum, mdc } = unitsOf(cell);
      for (const [unit, value] of [
        ...ucum.map((u) => [u, VALUE[name!] ?? 0.61] as const),
        ...mdc.map(([n]) => [n, VALUE[name!] ?? 0.61] as const),
      ]) {
        const to = field === 'enrolment.weightKg' ? weight[unit]! : convert!;
        const expected = Number(to(value).toPrecision(12));
        const isMdc = /^\d{6}$/.test(unit);
        const oxygen = field.startsWith('oxygen');
        it(`${name}: ${unit} ${value} is ${expected} (${field})`, () => {
          if (hl7 && isMdc) {
            const refId = mdc.find(([n]) => n === unit)![1];
            // The MDC number alone, the reference id alone (OBX-6.2 under MDC, as gateways send it), and both.
            for (const obx6 of [`${unit}^^MDC`, `^${refId}^MDC`, `${unit}^${refId}^MDC`])
              expect(one(overHl7(hl7, value, obx6, oxygen), field), obx6).toBe(expected);
          } else if (hl7) expect(one(overHl7(hl7, value, `${unit}^^UCUM`, oxygen), field)).toBe(expected);
          const quantity = isMdc ? { system: MDC_SYSTEM, code: unit } : { system: UCUM, code: unit };
          expect(one(overFhir({ system: LOINC_SYSTEM, code: loinc }, value, quantity), field)).toBe(expected);
        });
      }
    }
  }

  it('refuses an SpO2 sent as a fraction (unit 1), never multiplied by 100, over both', () => {
    expect(overHl7('150456^MDC_PULS_OXIM_SAT_O2^MDC', 0.91, '1^^UCUM').messages).toEqual([]);
    expect(overFhir({ system: LOINC_SYSTEM, code: '59408-5' }, 0.91, { system: UCUM, code: '1' }).messages).toEqual([]);
  });
});

describe('docs/interfaces.md, body temperature by site, Philips MDIL and the codes never read', () => {
  const rows = tableUnder(
    "A body temperature coded by where it was taken is the temperature (the rules' fever is >= 38.0 °C whatever the",
  );
  it('the site table has its three ranks', () => expect(rows.map(([site]) => site)).toHaveLength(3));
  for (const [site, mdcCell, loincCell] of rows) {
    const mdc = [...mdcCell!.matchAll(/\b(\d{6})\b/g)].map((m) => m[1]!);
    const loinc = [...loincCell!.matchAll(/\b(\d+-\d)\b/g)].map((m) => m[1]!);
    it(`${site}: each MDC (${mdc.join(', ')}) and LOINC (${loinc.join(', ')}) code is the temperature`, () => {
      expect(mdc.length + loinc.length).toBeGreaterThan(0);
      for (const code of mdc) {
        expect(one(overHl7(`${code}^^MDC`, 38.9, 'Cel^^UCUM'), 'vitals.temperatureC'), code).toBe(38.9);
        const fhir = overFhir({ system: MDC_SYSTEM, code }, 38.9, { system: UCUM, code: 'Cel' });
        expect(one(fhir, 'vitals.temperatureC'), code).toBe(38.9);
      }
      for (const code of loinc) {
        expect(one(overHl7(`${code}^^LN`, 38.9, 'Cel^^UCUM'), 'vitals.temperatureC'), code).toBe(38.9);
        const fhir = overFhir({ system: LOINC_SYSTEM, code }, 38.9, { system: UCUM, code: 'Cel' });
        expect(one(fhir, 'vitals.temperatureC'), code).toBe(38.9);
      }
    });
  }

  it("reads Philips' MDIL codes and units in hex as the MDC ones the page names", () => {
    expect(DOC).toContain('`0002-4182^HR^MDIL` is partition 2, code 0x4182, that is 147842');
    expect(one(overHl7('0002-4182^HR^MDIL', 112, '0004-0aa0^bpm^MDIL'), 'vitals.heartRate')).toBe(112);
    expect(DOC).toContain('`0002-4b60^Tcore^MDIL` is 150368 MDC_TEMP_CORE');
    expect(DOC).toContain('`0004-17a0` is 268192 MDC_DIM_DEGC');
    expect(one(overHl7('0002-4b60^Tcore^MDIL', 38.2, '0004-17a0^degC^MDIL'), 'vitals.temperatureC')).toBe(38.2);
  });

  it('skips, with no ERR and nothing taken, the codes the page says are never read', () => {
    for (const obx3 of [
      '150388^MDC_TEMP_SKIN^MDC',
      '76010-8^^LN',
      '151658^MDC_PULS_OXIM_PLETH_RESP_RATE^MDC',
      '0002-5000^Resp^MDIL',
      '0002-480a^Pulse^MDIL',
      '150016^MDC_PRESS_BLD^MDC',
      '150017^^MDC',
      '150018^^MDC',
      '150019^^MDC',
    ])
      expect(overHl7(obx3, 38.9, 'Cel^^UCUM'), obx3).toEqual({ messages: [], problems: [] });
  });
});

describe('docs/interfaces.md, FHIR labs: each unit of the row, converted to the contract unit', () => {
  const row = DOC.split('\n').find((l) => l.startsWith('| `Observation` 1988-5 CRP, 2276-4 ferritin, 26881-3 IL-6'));
  it('the row names the units taken, in the order of its codes', () => {
    expect(row).toContain('`labs` (mg/L or mg/dL; ng/mL or ug/L; pg/mL or ng/L)');
  });
  // mg/dL is 10 mg/L; ug/L is ng/mL; ng/L is pg/mL (by UCUM's prefixes).
  const cases: [string, string, string, number][] = [
    ['1988-5', 'mg/L', 'labs.crpMgL', 1],
    ['1988-5', 'mg/dL', 'labs.crpMgL', 10],
    ['2276-4', 'ng/mL', 'labs.ferritinNgMl', 1],
    ['2276-4', 'ug/L', 'labs.ferritinNgMl', 1],
    ['26881-3', 'pg/mL', 'labs.il6PgMl', 1],
    ['26881-3', 'ng/L', 'labs.il6PgMl', 1],
  ];
  for (const [code, unit, field, factor] of cases)
    it(`${code} in ${unit} is ${field} x ${factor}`, () => {
      const r = overFhir({ system: LOINC_SYSTEM, code }, 10.02, { system: UCUM, code: unit });
      expect(one(r, field)).toBe(Number((10.02 * factor).toPrecision(12)));
    });
  it('refuses a lab in a unit of the wrong dimension (IL-6 in ng/mL), never guessed', () => {
    const r = overFhir({ system: LOINC_SYSTEM, code: '26881-3' }, 10, { system: UCUM, code: 'ng/mL' });
    expect(r.messages).toEqual([]);
    expect(r.problems.join()).toContain('is not taken for labs.il6PgMl');
  });
});

describe('docs/interfaces.md, Codes: the SNOMED CT oxygen devices and the RxNorm drugs of its tables', () => {
  const devices = tableUnder('### Codes');
  const lines = DOC.split('\n');
  const drugHeader = lines.findIndex((l) => l.startsWith('| drug '));
  const rxRows = lines.slice(
    drugHeader + 2,
    lines.findIndex((l, i) => i > drugHeader && !l.startsWith('|')),
  );

  it('reads each SNOMED CT device of the table as its contract device, over HL7 v2 (SCT, SNM) and FHIR', () => {
    const pairs = devices.flatMap(([name, code]) => {
      const m = code!.match(/^(\d{6,})/);
      return m ? [[name!.slice(1, -1), m[1]!] as const] : [];
    });
    expect(pairs).toHaveLength(5);
    for (const [device, code] of pairs) {
      for (const system of ['SCT', 'SNM']) {
        const text = [
          'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|M1|P|2.6',
          'PID|||P-0042^^^^MR',
          `OBR|1||||||${OBR_TIME}`,
          `OBX|1|CWE|oxygen-device^^99CRS||${code}^^${system}||||||F`,
        ].join('\r');
        const r = translatePcd01(text);
        expect(r.ok && r.translated.map((t) => valueAt(t.message, 'oxygen.device')), `${code} ${system}`).toEqual([
          device,
        ]);
      }
      const resource = oxygenDevice('o1', { system: SNOMED, code });
      const f = translateResources([{ resource, at: 'Observation' }], { deviceId: 'ehr-1' });
      expect(
        f.translated.map((t) => valueAt(t.message, 'oxygen.device')),
        code,
      ).toEqual([device]);
    }
  });

  it('reads each RxNorm ingredient of the table as its drug (a vasopressor by its rate, a medication by its dose)', () => {
    const pairs = rxRows.flatMap((row) => {
      const [names, codes] = row
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().split(/,\s*/));
      expect(names!.length, row).toBe(codes!.length);
      return names!.map((name, i) => [name, codes![i]!] as const);
    });
    expect(pairs).toHaveLength(13);
    for (const [drug, code] of pairs) {
      const pressor = ['norepinephrine', 'epinephrine', 'phenylephrine', 'dopamine', 'vasopressin'].includes(drug);
      const resource = {
        resourceType: 'MedicationAdministration',
        id: `ma-${code}`,
        status: pressor ? 'in-progress' : 'completed',
        medicationCodeableConcept: { coding: [{ system: RXNORM, code }] },
        subject: { reference: 'Patient/P-0042' },
        effectiveDateTime: EFFECTIVE,
        dosage: pressor
          ? { rateQuantity: { value: 0.1, system: UCUM, code: drug === 'vasopressin' ? 'U/min' : 'ug/kg/min' } }
          : { dose: { value: 8, system: UCUM, code: 'mg' } },
      };
      const f = translateResources([{ resource, at: 'MedicationAdministration' }], { deviceId: 'ehr-1' });
      const section = f.translated.map((t) => valueAt(t.message, pressor ? 'vasopressors' : 'medications'));
      expect(section, `${drug} ${code}`).toEqual([[expect.objectContaining({ drug })]]);
    }
  });
});

describe('docs/interfaces.md, HL7 v2 times: decimals of a second to the millisecond, the rest dropped', () => {
  const observedAt = (obx14: string) => {
    const text = [
      'MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|M1|P|2.6',
      'PID|||P-0042^^^^MR',
      `OBX|1|NM|150344^MDC_TEMP^MDC||38.9|Cel^^UCUM|||||F|||${obx14}`,
    ].join('\r');
    const r = translatePcd01(text);
    return r.ok ? [r.translated.map((t) => t.message.observedAt), r.problems.map((p) => p.text)] : r.problems;
  };
  it('reads .9995 as .999, never rounded up (the last half millisecond of a day stays in its day), as FHIR and JSON', () => {
    expect(DOC).toContain('Decimals of a second are read to the millisecond, the rest dropped');
    expect(observedAt('20260110075959.9995+0000')).toEqual([['2026-01-10T07:59:59.999Z'], []]);
    expect(observedAt('20251231235959.9999+0000')).toEqual([['2025-12-31T23:59:59.999Z'], []]);
    expect(observedAt('20260110080000.1235+0100')).toEqual([['2026-01-10T07:00:00.123Z'], []]);
    // The same instants as FHIR reads them.
    for (const [hl7, fhir] of [
      ['20260110075959.9995+0000', '2026-01-10T07:59:59.9995Z'],
      ['20260110080000.1235+0100', '2026-01-10T08:00:00.1235+01:00'],
    ] as const) {
      const resource = observation(
        'o1',
        { system: LOINC_SYSTEM, code: '8310-5' },
        {
          effectiveDateTime: fhir,
          valueQuantity: { value: 38.9, system: UCUM, code: 'Cel' },
        },
      );
      const f = translateResources([{ resource, at: 'Observation' }], { deviceId: 'ehr-1' });
      expect(f.translated.map((t) => t.message.observedAt)).toEqual((observedAt(hl7) as string[][])[0]);
    }
  });
});

describe('docs/interfaces.md, HL7 v2 ids: one contract message per patient, device and time, each its own messageId', () => {
  const T1 = '20260110080000+0000';
  const ids = (...rows: string[]) => {
    const r = translatePcd01(
      ['MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|M1|P|2.6', ...rows].join('\r'),
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.problems).toEqual([]);
    return r.translated.map((t) => t.message.messageId);
  };
  const hr = (value: number, time = T1, device = '') =>
    `OBX|1|NM|8867-4^^LN||${value}|/min^^UCUM|||||F|||${time}||||${device}`;
  it('adds /p=, /d= and /t= only when the message holds several patients, devices or times', () => {
    expect(DOC).toContain('plus `/t=<time>` when the message holds several times');
    expect(ids('PID|||P-1^^^^MR', hr(80))).toEqual(['hl7v2:ICU4/M1']);
    // Two patients of one time and device: two messages, never one id (a duplicate, the second patient lost).
    expect(ids('PID|||P-1^^^^MR', hr(80), 'PID|||P-2^^^^MR', hr(90))).toEqual([
      'hl7v2:ICU4/M1/p=P-1',
      'hl7v2:ICU4/M1/p=P-2',
    ]);
    expect(ids('PID|||P-1^^^^MR', hr(80, T1, 'mon-a'), hr(81, T1, 'mon-b'))).toEqual([
      'hl7v2:ICU4/M1/d=mon-a',
      'hl7v2:ICU4/M1/d=mon-b',
    ]);
    expect(ids('PID|||P-1^^^^MR', hr(80), hr(82, '20260110080100+0000'))).toEqual([
      'hl7v2:ICU4/M1/t=20260110T080000Z',
      'hl7v2:ICU4/M1/t=20260110T080100Z',
    ]);
  });
});

describe('docs/interfaces.md, HL7 v2 MSH-11 and the site zone', () => {
  const oru = (processing: string, obx14 = '20260110080000+0000') =>
    [
      `MSH|^~\\&|GW|ICU4|CRS|HOSP|20260110080500+0000||ORU^R01^ORU_R01|M1|${processing}|2.6`,
      'PID|||P-0042^^^^MR',
      `OBX|1|NM|8867-4^^LN||80|/min^^UCUM|||||F|||${obx14}`,
    ].join('\r');
  it('takes MSH-11 P or empty, and refuses training and debug (AR 202)', () => {
    expect(DOC).toContain('`P` (or empty) only: training and debug messages are refused (`AR`, 202)');
    for (const p of ['P', '', 'P^T']) expect(translatePcd01(oru(p)).ok, p).toBe(true);
    for (const p of ['T', 'D'])
      expect(translatePcd01(oru(p)), p).toMatchObject({ ok: false, problems: [{ code: 202 }] });
  });
  it('reads a time without an offset in the site zone: Z and UTC are UTC, +HH:MM, +HHMM and -HH:MM fixed offsets', () => {
    expect(DOC).toContain('`Z` and `UTC` are UTC');
    const at = (zone: string) => {
      const r = translatePcd01(oru('P', '202601100800'), { zone: parseZone(zone)! });
      return r.ok ? r.translated.map((t) => t.message.observedAt) : r.problems;
    };
    for (const [zone, instant] of [
      ['Z', '2026-01-10T08:00:00Z'],
      ['UTC', '2026-01-10T08:00:00Z'],
      ['+01:00', '2026-01-10T07:00:00Z'],
      ['+0530', '2026-01-10T02:30:00Z'],
      ['-05:00', '2026-01-10T13:00:00Z'],
      ['Europe/Paris', '2026-01-10T07:00:00Z'],
    ] as const)
      expect(at(zone), zone).toEqual([instant]);
  });
});
