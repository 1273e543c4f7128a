// The device message contract v1 (message-contract.md): what is accepted, and what each refusal says.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { deviceMessageJsonSchema, validateMessage } from '#domain/contract.ts';

const base = {
  messageId: 'gw-icu4-000123',
  patientId: 'P-0042',
  observedAt: '2026-11-26T10:00:00Z',
  source: { deviceId: 'mon-icu4-12', kind: 'monitor' },
};

/** The full example of the contract, every section at once. */
const full = {
  ...base,
  enrolment: {
    therapy: 'car-t',
    product: 'axi-cel',
    infusedAt: '2026-11-24T09:00:00Z',
    weightKg: 70,
    bed: 'H4-12',
    ward: 'H4',
  },
  vitals: {
    temperatureC: 38.4,
    heartRate: 112,
    respiratoryRate: 22,
    systolicBP: 86,
    diastolicBP: 50,
    meanArterialPressure: 62,
    spo2: 93,
  },
  oxygen: { device: 'nasal_cannula', flowLpm: 4, fio2: 0.33, forComfort: false },
  vasopressors: [{ drug: 'norepinephrine', dose: 0.08, unit: 'mcg/kg/min' }],
  medications: [{ drug: 'tocilizumab', doseMg: 560 }],
  neuro: { iceScore: 8, consciousness: 'alert', seizure: 'none', motorWeakness: false, cerebralEdema: 'none' },
  organToxicity: { maxCtcaeGrade: 2, transaminitisGrade: 1 },
  labs: { crpMgL: 120, ferritinNgMl: 4200, il6PgMl: 850 },
};

const errors = (value: unknown) => {
  const r = validateMessage(value);
  return r.ok ? [] : r.errors;
};

describe('accepted', () => {
  it('the contract example with every section', () => {
    expect(validateMessage(full)).toEqual({ ok: true, message: full });
  });

  it.each([
    ['a zone offset', { observedAt: '2026-11-26T11:00:00+01:00' }],
    ['fractional seconds', { observedAt: '2026-11-26T10:00:00.123Z' }],
    ['an empty vasopressor list (all stopped)', { vasopressors: [] }],
    ['an id with every allowed character', { patientId: 'A.b_c:d-9' }],
    ['range ends', { vitals: { temperatureC: 25, spo2: 100, heartRate: 0 } }],
  ])('%s', (_name, extra) => {
    expect(errors({ ...base, vitals: { heartRate: 80 }, ...extra })).toEqual([]);
  });

  it.each([
    'room_air',
    'blow_by',
    'nasal_cannula',
    'high_flow_nasal_cannula',
    'simple_mask',
    'non_rebreather',
    'venturi',
    'cpap',
    'bipap',
    'mechanical_ventilation',
  ])('oxygen device %s', (device) => {
    expect(errors({ ...base, oxygen: { device } })).toEqual([]);
  });
});

describe('refused, naming the field and the problem', () => {
  it.each([
    [{ vitals: { temperatureC: 101.3 } }, 'vitals.temperatureC: 101.3 is outside 25-45 (Fahrenheit?)'],
    [{ vitals: { temperatureC: 46 } }, 'vitals.temperatureC: 46 is outside 25-45'],
    [{ vitals: { heartRate: 351 } }, 'vitals.heartRate: 351 is outside 0-350'],
    [{ vitals: { respiratoryRate: 121 } }, 'vitals.respiratoryRate: 121 is outside 0-120'],
    [{ vitals: { systolicBP: -1 } }, 'vitals.systolicBP: -1 is outside 0-300'],
    [{ vitals: { diastolicBP: 251 } }, 'vitals.diastolicBP: 251 is outside 0-250'],
    [{ vitals: { meanArterialPressure: 301 } }, 'vitals.meanArterialPressure: 301 is outside 0-300'],
    [{ vitals: { spo2: 101 } }, 'vitals.spo2: 101 is outside 0-100'],
    [{ vitals: { spo2: '93' } }, 'vitals.spo2: "93" is not a number (allowed 0-100)'],
    [{ oxygen: { device: 'nasal_cannula', flowLpm: 81 } }, 'oxygen.flowLpm: 81 is outside 0-80'],
    [{ oxygen: { device: 'nasal_cannula', fio2: 0.2 } }, 'oxygen.fio2: 0.2 is outside 0.21-1'],
    [{ oxygen: { device: 'nasal_cannula', fio2: 40 } }, 'oxygen.fio2: 40 is outside 0.21-1 (a percent? send 0.4)'],
    [{ enrolment: { weightKg: 401 } }, 'enrolment.weightKg: 401 is outside 0.5-400'],
    [{ neuro: { iceScore: 11 } }, 'neuro.iceScore: 11 is outside 0-10'],
    [{ neuro: { iceScore: 7.5 } }, 'neuro.iceScore: 7.5 is not a whole number (allowed 0-10)'],
    [{ organToxicity: { maxCtcaeGrade: 5 } }, 'organToxicity.maxCtcaeGrade: 5 is outside 0-4'],
    [
      { organToxicity: { transaminitisGrade: 2.5 } },
      'organToxicity.transaminitisGrade: 2.5 is not a whole number (allowed 0-4)',
    ],
    [
      { vasopressors: [{ drug: 'norepinephrine', dose: -0.1, unit: 'mcg/min' }] },
      'vasopressors[0].dose: -0.1 is below 0',
    ],
    [{ medications: [{ drug: 'tocilizumab', doseMg: -5 }] }, 'medications[0].doseMg: -5 is below 0'],
    [{ labs: { crpMgL: -1 } }, 'labs.crpMgL: -1 is below 0'],
  ])('%o', (extra, error) => {
    expect(errors({ ...base, ...extra })).toEqual([error]);
  });

  it.each([
    [{ oxygen: { device: 'nasal_prongs' } }, 'oxygen.device: "nasal_prongs" is not one of room_air, blow_by'],
    [
      { vasopressors: [{ drug: 'levophed', dose: 1, unit: 'mcg/min' }] },
      'vasopressors[0].drug: "levophed" is not one of norepinephrine',
    ],
    [
      { vasopressors: [{ drug: 'vasopressin', dose: 1, unit: 'U/min' }] },
      'vasopressors[0].unit: "U/min" is not one of mcg/min, mcg/kg/min, units/min',
    ],
    [{ medications: [{ drug: 'paracetamol' }] }, 'medications[0].drug: "paracetamol" is not one of tocilizumab'],
    [{ neuro: { consciousness: 'drowsy' } }, 'neuro.consciousness: "drowsy" is not one of alert'],
    [{ neuro: { seizure: 'yes' } }, 'neuro.seizure: "yes" is not one of none, self_limited, prolonged'],
    [{ neuro: { cerebralEdema: 'mild' } }, 'neuro.cerebralEdema: "mild" is not one of none, focal, diffuse'],
    [{ enrolment: { therapy: 'tcr' } }, 'enrolment.therapy: "tcr" is not one of car-t, bispecific'],
    [
      { source: { deviceId: 'x', kind: 'phone' }, vitals: { spo2: 90 } },
      'source.kind: "phone" is not one of monitor, pump, ventilator, ehr, manual',
    ],
  ])('unknown enum value %o', (extra, start) => {
    const e = errors({ ...base, ...extra });
    expect(e).toHaveLength(1);
    expect(e[0]).toContain(start);
  });

  it.each([
    [{ patientId: 'Jane Doe' }, 'patientId: "Jane Doe" is not 1-64 characters of A-Z a-z 0-9 . _ : -'],
    [{ patientId: 'x'.repeat(65) }, 'patientId: '],
    [{ patientId: '' }, 'patientId: "" is not 1-64 characters'],
    [{ messageId: '' }, 'messageId: "" is not 1-128 characters of A-Z a-z 0-9 . _ : ~ @ / + = -'],
    [{ messageId: 'm'.repeat(129) }, 'messageId: "mmm'],
    // Ids travel into HTTP headers, SNS attributes, file names and logs (issue 10): hostile characters are refused.
    [{ messageId: 'dup\r\nx-evil: 1' }, 'messageId: "dup\\r\\nx-evil: 1" is not 1-128 characters of'],
    [{ messageId: 'm\u00e9' }, 'messageId: "m\u00e9" is not 1-128 characters'],
    [{ messageId: '\u65e5\u672c' }, 'messageId: '],
    [{ messageId: 'a b' }, 'messageId: "a b" is not'],
    [{ messageId: 'a%0D' }, 'messageId: "a%0D" is not'],
    [{ messageId: 'a"b' }, 'messageId: '],
    [{ messageId: 'a\u0000b' }, 'messageId: '],
    [{ patientId: 'P\r\n1' }, 'patientId: '],
    [
      { source: { deviceId: 'mon 1', kind: 'monitor' } },
      'source.deviceId: "mon 1" is not 1-64 characters of A-Z a-z 0-9 . _ : -',
    ],
    [{ source: { deviceId: 'd'.repeat(65), kind: 'monitor' } }, 'source.deviceId: '],
    [{ source: { deviceId: 'mon/1', kind: 'monitor' } }, 'source.deviceId: "mon/1" is not'],
    [
      { observedAt: '2026-11-26T10:00:00' },
      'observedAt: "2026-11-26T10:00:00" is not an RFC 3339 timestamp with a zone offset',
    ],
    [{ observedAt: '2026-11-26' }, 'observedAt: "2026-11-26" is not an RFC 3339 timestamp'],
    [{ observedAt: '2026-02-30T10:00:00Z' }, 'observedAt: "2026-02-30T10:00:00Z" is not an RFC 3339 timestamp'],
    [{ observedAt: 1764151200000 }, 'observedAt: 1764151200000 is not an RFC 3339 timestamp'],
    [{ enrolment: { infusedAt: 'yesterday' } }, 'enrolment.infusedAt: "yesterday" is not an RFC 3339 timestamp'],
  ])('bad id or timestamp %#', (extra, error) => {
    const e = errors({ ...base, vitals: { heartRate: 80 }, ...extra });
    expect(e).toHaveLength(1);
    expect(e[0]).toContain(error);
  });

  it('accepts every character the contract allows in each id, at full length', () => {
    const messageId = 'Az09._:~@/+=-'.padEnd(128, 'x');
    expect(
      errors({
        ...base,
        messageId,
        patientId: 'Az09._:-'.padEnd(64, 'p'),
        source: { deviceId: 'Az09._:-'.padEnd(64, 'd'), kind: 'monitor' },
        vitals: { heartRate: 80 },
      }),
    ).toEqual([]);
  });

  it('never throws, however deeply a value nests (the error formatter once overflowed the stack)', () => {
    const deep = JSON.parse(`${'['.repeat(30_000)}${']'.repeat(30_000)}`);
    expect(validateMessage(deep)).toEqual({ ok: false, errors: ['message: a list of 1 is not an object'] });
    expect(errors({ ...base, vitals: deep })).toEqual(['vitals: a list of 1 is not an object']);
    const deepObject = JSON.parse(`${'{"a":'.repeat(30_000)}1${'}'.repeat(30_000)}`);
    expect(errors({ ...base, vitals: { heartRate: 80 }, labs: deepObject })[0]).toMatch(/^labs: unknown field "a"/);
  });

  it('a message with no section', () => {
    expect(errors(base)).toEqual([
      'message: has no data section: give at least one of enrolment, vitals, oxygen, vasopressors, medications, neuro, organToxicity, labs, monitoringEnd',
    ]);
  });

  it('the end of monitoring without a reason, or with one the contract does not know', () => {
    expect(errors({ ...base, monitoringEnd: {} })).toEqual([
      'monitoringEnd.reason: is required (one of discharged, transferred, other)',
    ]);
    expect(errors({ ...base, monitoringEnd: { reason: 'home' } })).toEqual([
      'monitoringEnd.reason: "home" is not one of discharged, transferred, other',
    ]);
    expect(errors({ ...base, monitoringEnd: { reason: 'discharged', at: 'now' } })[0]).toMatch(
      /^monitoringEnd: unknown field "at"/,
    );
    expect(validateMessage({ ...base, monitoringEnd: { reason: 'transferred' } }).ok).toBe(true);
  });

  it('an empty section', () => {
    expect(errors({ ...base, vitals: {} })).toEqual(['vitals: is empty: give at least one measurement']);
    // Every section alike: an empty neuro section was accepted, a message that said nothing.
    expect(errors({ ...base, neuro: {} })).toEqual(['neuro: is empty: give at least one neuro field']);
    expect(errors({ ...base, neuro: { seizure: 'none' } })).toEqual([]);
    // And a nested one: an empty enrolment.hypotension set no threshold and was accepted without a word.
    expect(errors({ ...base, enrolment: { hypotension: {} } })).toEqual([
      'enrolment.hypotension: is empty: give at least one threshold',
    ]);
    expect(errors({ ...base, enrolment: { bed: 'B-1', hypotension: {} } })).toEqual([
      'enrolment.hypotension: is empty: give at least one threshold',
    ]);
    expect(errors({ ...base, enrolment: { hypotension: { mapBelow: 60 } } })).toEqual([]);
  });

  it('missing required fields', () => {
    const { messageId: _m, source: _s, ...rest } = base;
    expect(errors({ ...rest, vitals: { spo2: 97 } })).toEqual(['messageId: is required', 'source: is required']);
    expect(errors({ ...base, oxygen: { flowLpm: 2 } })[0]).toMatch(/^oxygen.device: is required \(one of room_air/);
  });

  it('an unknown section is not silently dropped, and a near miss is suggested', () => {
    expect(errors({ ...base, vital: { temperatureC: 38 } })[0]).toMatch(
      /^message: unknown section or field "vital" \(did you mean "vitals"\?\)/,
    );
    expect(errors({ ...base, vitals: { heartRate: 80 }, comment: 'x' })[0]).toMatch(
      /^message: unknown section or field "comment"; allowed:/,
    );
  });

  it('a misspelt field is not silently dropped', () => {
    expect(errors({ ...base, vitals: { temprature: 38.2, heartRate: 90 } })).toEqual([
      'vitals: unknown field "temprature" (did you mean "temperatureC"?); allowed: temperatureC, heartRate, respiratoryRate, systolicBP, diastolicBP, meanArterialPressure, spo2',
    ]);
    expect(errors({ ...base, oxygen: { device: 'venturi', fiO2: 0.4 } })[0]).toContain(
      'unknown field "fiO2" (did you mean "fio2"?)',
    );
  });

  it('per-patient hypotension thresholds are range-checked, naming the nested field', () => {
    expect(errors({ ...base, enrolment: { hypotension: { systolicBelow: 200, mapBelow: 150 } } })).toEqual([]);
    expect(errors({ ...base, enrolment: { hypotension: { systolicBelow: 201 } } })).toEqual([
      'enrolment.hypotension.systolicBelow: 201 is outside 20-200',
    ]);
    expect(errors({ ...base, enrolment: { hypotension: { mapBelow: 9 } } })).toEqual([
      'enrolment.hypotension.mapBelow: 9 is outside 10-150',
    ]);
  });

  it('an FiO2 sent as a percent (21 to 100) is refused with the fraction to send, and no other value is', () => {
    const fio2 = (v: number) => errors({ ...base, oxygen: { device: 'venturi', fio2: v } });
    expect(fio2(40)).toEqual(['oxygen.fio2: 40 is outside 0.21-1 (a percent? send 0.4)']);
    expect(fio2(21)).toEqual(['oxygen.fio2: 21 is outside 0.21-1 (a percent? send 0.21)']);
    expect(fio2(100)).toEqual(['oxygen.fio2: 100 is outside 0.21-1 (a percent? send 1)']);
    expect(fio2(33.3)).toEqual(['oxygen.fio2: 33.3 is outside 0.21-1 (a percent? send 0.333)']);
    expect(fio2(20.9)).toEqual(['oxygen.fio2: 20.9 is outside 0.21-1']);
    expect(fio2(100.5)).toEqual(['oxygen.fio2: 100.5 is outside 0.21-1']);
    expect(fio2(0.2)).toEqual(['oxygen.fio2: 0.2 is outside 0.21-1']);
  });

  it('the Fahrenheit hint covers 90 to 115 inclusive, and no further', () => {
    expect(errors({ ...base, vitals: { temperatureC: 90 } })).toEqual([
      'vitals.temperatureC: 90 is outside 25-45 (Fahrenheit?)',
    ]);
    expect(errors({ ...base, vitals: { temperatureC: 115 } })).toEqual([
      'vitals.temperatureC: 115 is outside 25-45 (Fahrenheit?)',
    ]);
    expect(errors({ ...base, vitals: { temperatureC: 89.9 } })).toEqual(['vitals.temperatureC: 89.9 is outside 25-45']);
    expect(errors({ ...base, vitals: { temperatureC: 115.1 } })).toEqual([
      'vitals.temperatureC: 115.1 is outside 25-45',
    ]);
  });

  it('a long refused value is previewed, not echoed whole, in the error', () => {
    const e = errors({ ...base, enrolment: { product: 'p'.repeat(200) } });
    // Quoted as every device answer quotes a value: 64 characters, then `..."` (56 and `...` until 2026-12-07).
    expect(e).toEqual([`enrolment.product: "${'p'.repeat(64)}..." is longer than 64 characters`]);
  });

  it('a vasopressor entry without its dose is refused naming the entry and the field', () => {
    expect(errors({ ...base, vasopressors: [{ drug: 'norepinephrine', unit: 'mcg/min' }] })).toEqual([
      'vasopressors[0].dose: is required',
    ]);
  });

  it('lists are bounded: 10 vasopressors and 20 medications pass, one more is refused naming the list', () => {
    const pressor = { drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' };
    const med = { drug: 'acetaminophen', doseMg: 1000 };
    expect(errors({ ...base, vasopressors: Array(10).fill(pressor), medications: Array(20).fill(med) })).toEqual([]);
    expect(errors({ ...base, vasopressors: Array(11).fill(pressor) })).toEqual([
      'vasopressors: has more than 10 entries',
    ]);
    expect(errors({ ...base, medications: Array(21).fill(med) })).toEqual(['medications: has more than 20 entries']);
  });

  it('a ward or bed of up to 32 characters passes; 33 is refused naming the field', () => {
    expect(errors({ ...base, enrolment: { ward: 'w'.repeat(32), bed: 'b'.repeat(32) } })).toEqual([]);
    expect(errors({ ...base, enrolment: { ward: 'w'.repeat(33) } })).toEqual([
      `enrolment.ward: "${'w'.repeat(33)}" is longer than 32 characters`,
    ]);
    expect(errors({ ...base, enrolment: { bed: '' } })).toEqual(['enrolment.bed: is empty']);
  });

  it('a ward, bed or product with a control or format character is refused naming the field (a page shows them as one line)', () => {
    expect(
      errors({ ...base, enrolment: { ward: 'H4 Haematology', bed: '12-B', product: 'Kymriah (tisagenlecleucel)' } }),
    ).toEqual([]);
    expect(errors({ ...base, enrolment: { ward: 'H4\nICU' } })).toEqual([
      'enrolment.ward: "H4\\nICU" contains a control character (U+000A)',
    ]);
    // A bidirectional override reorders what follows it: refused, named, and written escaped in the error (which
    // it would reorder too).
    expect(errors({ ...base, enrolment: { bed: '12\u202eB' } })).toEqual([
      'enrolment.bed: "12\\u202eB" contains a format character (U+202E), which can hide or reorder text',
    ]);
    expect(errors({ ...base, enrolment: { product: 'axi-cel\t' } })).toEqual([
      'enrolment.product: "axi-cel\\t" contains a control character (U+0009)',
    ]);
    expect(errors({ ...base, enrolment: { ward: 'H4\u2066' } })[0]).toContain('a format character (U+2066)');
  });

  it('a ward, bed or product takes the joiners of Persian words and emoji, between the characters they join', () => {
    // Until 2026-12-05 the zero-width non-joiner and joiner (U+200C, U+200D) were refused as "a control character":
    // ordinary Persian words and emoji sequences. They shape the characters either side; they cannot reorder text.
    const persian = 'بخش\u200cها'; // a ward named in Persian, with its non-joiner
    const medic = '\u{1F469}\u200d\u2695\ufe0f'; // woman health worker: three characters joined
    const devanagari = 'क्\u200dष'; // a half form, by a joiner after the virama
    expect(errors({ ...base, enrolment: { ward: persian, bed: `H4 ${medic}`, product: devanagari } })).toEqual([]);
    // Next to ASCII, at an end or doubled, it joins nothing: it would only make a label look like another ("H4").
    for (const [bed, name] of [
      ['H4\u200d', 'zero-width joiner (U+200D)'],
      ['\u200cH4', 'zero-width non-joiner (U+200C)'],
      ['H\u200d4', 'zero-width joiner (U+200D)'],
      ['بخش\u200c\u200cها', 'zero-width non-joiner (U+200C)'],
    ] as const) {
      expect(errors({ ...base, enrolment: { bed } })).toEqual([
        `enrolment.bed: ${JSON.stringify(bed).replace(/[\u200c\u200d]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)} holds a ${name} where it joins nothing (next to ASCII, or at an end): it would only make the label look like another`,
      ]);
    }
  });

  it('the published JSON Schema takes and refuses the same labels as the contract', () => {
    const validate = new Ajv2020({ strict: false, formats: { 'date-time': true } }).compile(deviceMessageJsonSchema());
    for (const bed of [
      'H4',
      'بخش\u200cها',
      '\u{1F469}\u200d\u2695\ufe0f',
      'H4\u200d',
      'H\u200d4',
      '12\u202eB',
      'H4\n',
    ]) {
      const m = { ...base, enrolment: { bed } };
      expect(validate(m), JSON.stringify(bed)).toBe(errors(m).length === 0);
    }
  });

  it('a label holding half of a surrogate pair is refused naming the field; a whole pair (an emoji) passes', () => {
    // JSON can write one ("\ud800"), UTF-8 cannot: until 2026-12-05 it was taken, and the AWS SDK threw on every page
    // that named the ward.
    expect(errors({ ...base, enrolment: { ward: 'H4 \u{1F3E5}' } })).toEqual([]);
    expect(errors({ ...base, enrolment: { ward: 'H4\ud800' } })).toEqual([
      'enrolment.ward: "H4\\ud800" holds half of a surrogate pair, which is no character: send UTF-8',
    ]);
    expect(errors({ ...base, enrolment: { bed: '\udc00B' } })).toEqual([
      'enrolment.bed: "\\udc00B" holds half of a surrogate pair, which is no character: send UTF-8',
    ]);
  });

  it('a label holding a line or paragraph separator (U+2028, U+2029) is refused naming the field: it would break a page in two', () => {
    // Neither a control nor a format character, so until 2026-12-05 the rule took them, in text kept on one line.
    expect(errors({ ...base, enrolment: { ward: 'H4\u2028ICU' } })).toEqual([
      'enrolment.ward: "H4\\u2028ICU" holds a line or paragraph separator (U+2028), which starts a line of its own',
    ]);
    expect(errors({ ...base, enrolment: { bed: '\u2029B1' } })).toEqual([
      'enrolment.bed: "\\u2029B1" holds a line or paragraph separator (U+2029), which starts a line of its own',
    ]);
  });

  it('a short misspelt field (two letters swapped) still gets a suggestion', () => {
    expect(errors({ ...base, enrolment: { wrad: 'H4' } })[0]).toMatch(
      /^enrolment: unknown field "wrad" \(did you mean "ward"\?\)/,
    );
  });

  it('a section holding only a misspelt field gets the unknown-field error alone, not a misleading "is empty"', () => {
    expect(errors({ ...base, vitals: { temprature: 38.2 } })).toEqual([
      'vitals: unknown field "temprature" (did you mean "temperatureC"?); allowed: temperatureC, heartRate, respiratoryRate, systolicBP, diastolicBP, meanArterialPressure, spo2',
    ]);
  });

  it('reports every problem at once', () => {
    expect(errors({ ...base, patientId: 'a b', vitals: { temperatureC: 100, spo2: 120 } })).toHaveLength(3);
  });

  it.each([null, 'text', 42, [], true])('a body that is not an object (%o)', (value) => {
    expect(errors(value)[0]).toMatch(/^message: .* is not an object$/);
  });

  it('a non-finite number', () => {
    expect(errors({ ...base, vitals: { heartRate: Number.NaN } })[0]).toContain('vitals.heartRate');
    expect(errors({ ...base, vitals: { heartRate: Number.POSITIVE_INFINITY } })[0]).toContain('vitals.heartRate');
  });
});

describe('the published JSON Schema', () => {
  it('is the one generated from the zod schema (run `npm run schema` after changing the contract)', () => {
    const published = JSON.parse(
      readFileSync(new URL('../../shared/contract/device-message.v1.schema.json', import.meta.url), 'utf8'),
    );
    expect(published).toEqual(deviceMessageJsonSchema());
  });

  it('refuses unknown fields and names the required ones', () => {
    const schema = deviceMessageJsonSchema() as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { additionalProperties?: boolean }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['messageId', 'patientId', 'observedAt', 'source']);
    expect(schema.properties.vitals!.additionalProperties).toBe(false);
  });
});

describe('pinned by a mutation run', () => {
  it('a forComfort that is not a boolean is refused naming the field, never read as true', () => {
    for (const forComfort of ['yes', 'false', 1]) {
      expect(errors({ ...base, oxygen: { device: 'nasal_cannula', forComfort } })).toEqual([
        `oxygen.forComfort: ${JSON.stringify(forComfort)} is not true or false`,
      ]);
    }
  });

  it('answers, never throws, when reading the value itself throws', () => {
    const hostile = {
      ...base,
      get vitals(): unknown {
        throw new RangeError('boom');
      },
    };
    expect(validateMessage(hostile)).toEqual({
      ok: false,
      errors: ['message: cannot be checked (RangeError); send one JSON object as the contract describes'],
    });
  });

  it('a motorWeakness that is not a boolean is refused naming the field, never read as true', () => {
    expect(errors({ ...base, neuro: { motorWeakness: 'no' } })).toEqual([
      'neuro.motorWeakness: "no" is not true or false',
    ]);
  });

  it('suggests no field for an unknown one that is far from every field name', () => {
    expect(errors({ ...base, vitals: { heartRhythm: 80 } })).toEqual([
      'vitals: unknown field "heartRhythm"; allowed: temperatureC, heartRate, respiratoryRate, systolicBP, diastolicBP, meanArterialPressure, spo2',
    ]);
  });
});
