// crs-rules.md version 1.1 read sentence by sentence (independent conformance read, 2026-12-07): a direct case for
// each rule sentence, its expected grade worked out from the sentence quoted, not from running the engine. The
// defaults are compared with the numbers the rules text gives (config-defaults.test.ts holds them to the schema only).
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { validateMessage, type DeviceMessage } from '#domain/contract.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';

type Pumps = NonNullable<DeviceMessage['vasopressors']>;
const P = 'TXT';
const lee = config({ scheme: 'lee2014' });
const crs = (msgs: DeviceMessage[], cfg = config()) => run(msgs, cfg).last.crsGrade;
const icans = (msgs: DeviceMessage[]) => run(msgs).last.icansGrade;
const temp = (min: number, temperatureC: number) => msg(P, min, { vitals: { temperatureC } });
const sys = (min: number, systolicBP: number) => msg(P, min, { vitals: { systolicBP } });
const oxygen = (min: number, o: NonNullable<DeviceMessage['oxygen']>) => msg(P, min, { oxygen: o });
const pressors = (min: number, v: Pumps) => msg(P, min, { vasopressors: v });
const given = (min: number, drug: NonNullable<DeviceMessage['medications']>[number]['drug']) =>
  msg(P, min, { medications: [{ drug }] });
const organ = (min: number, o: NonNullable<DeviceMessage['organToxicity']>) => msg(P, min, { organToxicity: o });
const neuro = (min: number, n: NonNullable<DeviceMessage['neuro']>) => msg(P, min, { neuro: n });
const twoLow = (min: number) => [sys(min, 85), sys(min + 5, 84)];

describe('the defaults are the numbers the rules text gives', () => {
  it('section 1: fever >= 38.0 °C in 24 h; systolic < 90 or MAP < 65; section 5: hold 60 min', () => {
    expect(DEFAULT_CONFIG.feverThresholdC).toBe(38.0);
    expect(DEFAULT_CONFIG.feverWindowMinutes).toBe(24 * 60);
    expect(DEFAULT_CONFIG.hypotension).toEqual({ systolicBelow: 90, mapBelow: 65 });
    expect(DEFAULT_CONFIG.holdMinutes).toBe(60);
    expect(DEFAULT_CONFIG.scheme).toBe('astct2019');
  });

  it('section 2: nasal cannula <= 6 L/min is low-flow', () => {
    expect(DEFAULT_CONFIG.lowFlowMaxLpm).toBe(6);
  });

  it('section 3: FiO2 0.40, the device estimates and the high-dose thresholds', () => {
    expect(DEFAULT_CONFIG.lee.fio2Grade3).toBe(0.4);
    expect(DEFAULT_CONFIG.lee.fio2Estimate).toEqual({
      room_air: 0.21,
      nasalCannulaPerLpm: 0.04,
      nasalCannulaMax: 0.45,
      blow_by: 0.25,
      simple_mask: 0.4,
      non_rebreather: 0.6,
      venturi: 0.4,
      high_flow_nasal_cannula: 0.4,
    });
    expect(DEFAULT_CONFIG.lee.highDose).toEqual({
      norepinephrine: { dose: 20, unit: 'mcg/min' },
      dopamine: { dose: 10, unit: 'mcg/kg/min' },
      phenylephrine: { dose: 200, unit: 'mcg/min' },
      epinephrine: { dose: 10, unit: 'mcg/min' },
    });
  });

  it('section 5: the routing table', () => {
    const h = 'hematology';
    expect(DEFAULT_CONFIG.routing.crs).toEqual([[h], [h], [h, 'icu'], [h, 'icu']]);
    expect(DEFAULT_CONFIG.routing.icans).toEqual([
      [h, 'neurology'],
      [h, 'neurology', 'radiology'],
      [h, 'neurology', 'radiology', 'icu'],
      [h, 'neurology', 'radiology', 'icu'],
    ]);
  });
});

describe('section 1: time and state', () => {
  it('"a late (older) message never overwrites a newer value": an older oxygen section leaves the newer one', () => {
    expect(crs([enrol(P), temp(0, 39), oxygen(20, { device: 'bipap' }), oxygen(10, { device: 'room_air' })])).toBe(4);
  });

  it('"`oxygen` and `vasopressors` are whole sections (the later arrival at one instant replaces them)"', () => {
    expect(
      crs([enrol(P), temp(0, 39), oxygen(10, { device: 'non_rebreather' }), oxygen(10, { device: 'room_air' })]),
    ).toBe(1);
    const two: Pumps = [
      { drug: 'norepinephrine', dose: 5, unit: 'mcg/min' },
      { drug: 'epinephrine', dose: 2, unit: 'mcg/min' },
    ];
    const one: Pumps = [{ drug: 'norepinephrine', dose: 5, unit: 'mcg/min' }];
    expect(crs([enrol(P), temp(0, 39), pressors(10, two), pressors(10, one)])).toBe(3);
  });

  it('"Fever: any temperature >= 38.0 °C observed within the fever window": a later normal one does not undo it', () => {
    expect(crs([enrol(P), temp(0, 38.5), temp(60, 36.8)])).toBe(1);
    expect(crs([enrol(P), temp(0, 38.5), temp(24 * 60 + 1, 36.8)])).toBe(0);
  });

  it('"Without either, the ASTCT CRS grade is 0": mechanical ventilation and two vasopressors without fever', () => {
    const both: Pumps = [
      { drug: 'norepinephrine', dose: 5, unit: 'mcg/min' },
      { drug: 'phenylephrine', dose: 50, unit: 'mcg/min' },
    ];
    expect(crs([enrol(P), temp(0, 37), oxygen(5, { device: 'mechanical_ventilation' }), pressors(6, both)])).toBe(0);
  });

  it('"forComfort: true ... never counts as hypoxia", in both schemes', () => {
    const m = [enrol(P), temp(0, 39), oxygen(5, { device: 'non_rebreather', forComfort: true })];
    expect(crs(m)).toBe(1);
    expect(crs(m, lee)).toBe(1);
  });
});

describe('section 1: the fever waiver', () => {
  const day = 24 * 60;
  it('"at or after the time grade >= 1 was first reached": a masking drug at the fever\'s instant waives fever', () => {
    expect(crs([enrol(P), temp(0, 38.6), given(0, 'acetaminophen'), ...twoLow(day + 60)])).toBe(2);
  });

  it('"Medication given before that time (premedication) does not waive fever"', () => {
    expect(crs([enrol(P), given(0, 'acetaminophen'), temp(1, 38.6), ...twoLow(day + 60)])).toBe(0);
  });

  it('"fever is no longer required for the rest of the episode": days after the fever left the window', () => {
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'hydrocortisone'), ...twoLow(5 * day)])).toBe(2);
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'siltuximab'), oxygen(5 * day, { device: 'bipap' })])).toBe(4);
  });

  it('"When the waiver applies and there is neither hypotension nor hypoxia and the patient is afebrile, CRS grade is 0"', () => {
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'anakinra'), temp(day + 60, 37)])).toBe(0);
    const comfort = oxygen(day + 60, { device: 'simple_mask', forComfort: true });
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'anakinra'), comfort])).toBe(0);
  });

  it('"a new enrolment with a later infusedAt starts a new one": the old episode\'s waiver is gone', () => {
    const reinfused = enrol(P, day, {
      infusedAt: new Date(Date.parse('2026-01-10T08:00:00Z') + day * 60_000).toISOString(),
    });
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'tocilizumab'), reinfused, ...twoLow(day + 60)])).toBe(0);
  });

  it('"The fever waiver does not apply to Lee 2014": afebrile after tocilizumab, no row, Lee 0', () => {
    expect(crs([enrol(P), temp(0, 38.6), given(30, 'tocilizumab'), temp(day + 60, 37)], lee)).toBe(0);
  });
});

describe('section 1: hypotension', () => {
  it('"One low reading alone is an artefact candidate and does not count"', () => {
    expect(crs([enrol(P), temp(0, 39), sys(5, 80), sys(10, 120), sys(15, 80)])).toBe(1);
  });

  it('"MAP < 65" on two consecutive readings, 65 itself normal', () => {
    const map = (min: number, meanArterialPressure: number) => msg(P, min, { vitals: { meanArterialPressure } });
    expect(crs([enrol(P), temp(0, 39), map(5, 64), map(10, 64)])).toBe(2);
    expect(crs([enrol(P), temp(0, 39), map(5, 65), map(10, 65)])).toBe(1);
  });

  it('"readings taken ... at the instant it stopped, do not count toward clearing"', () => {
    const on = pressors(5, [{ drug: 'norepinephrine', dose: 5, unit: 'mcg/min' }]);
    const course = [enrol(P), temp(0, 39), on, pressors(30, []), sys(30, 120), sys(40, 120)];
    expect(crs(course)).toBe(2); // one normal reading after the stop: not cleared, hypotension without vasopressor
    expect(crs([...course, sys(50, 120)])).toBe(1);
  });

  it('"configurable ... per patient": a patient threshold of systolic < 100 makes 95 low', () => {
    const child = enrol(P, -60, { hypotension: { systolicBelow: 100 } });
    expect(crs([child, temp(0, 39), sys(5, 95), sys(10, 95)])).toBe(2);
    expect(crs([enrol(P), temp(0, 39), sys(5, 95), sys(10, 95)])).toBe(1);
  });
});

describe('section 2: ASTCT hypoxia by device', () => {
  it.each([
    [{ device: 'blow_by' }, 2],
    [{ device: 'nasal_cannula', flowLpm: 6 }, 2],
    [{ device: 'nasal_cannula', flowLpm: 6.5 }, 3],
    [{ device: 'high_flow_nasal_cannula', flowLpm: 2 }, 3],
    [{ device: 'simple_mask' }, 3],
    [{ device: 'non_rebreather' }, 3],
    [{ device: 'venturi', fio2: 0.24 }, 3],
    [{ device: 'cpap' }, 4],
    [{ device: 'bipap' }, 4],
    [{ device: 'mechanical_ventilation', fio2: 0.21 }, 4],
    [{ device: 'room_air' }, 1],
  ] as const)('%j with fever: CRS %i', (o, grade) => {
    expect(crs([enrol(P), temp(0, 39), oxygen(5, o)])).toBe(grade);
  });

  it('"Organ toxicities do not change the ASTCT CRS grade"', () => {
    expect(crs([enrol(P), temp(0, 39), organ(5, { maxCtcaeGrade: 4, transaminitisGrade: 4 })])).toBe(1);
  });
});

describe('section 3: Lee 2014', () => {
  it.each([
    // FiO2 given wins over the estimate
    [{ device: 'high_flow_nasal_cannula', fio2: 0.35 }, 2],
    [{ device: 'high_flow_nasal_cannula' }, 3], // estimated 0.40
    [{ device: 'venturi' }, 3], // 0.40
    [{ device: 'simple_mask' }, 3], // 0.40
    [{ device: 'non_rebreather' }, 3], // 0.60
    [{ device: 'non_rebreather', fio2: 0.3 }, 2],
    [{ device: 'blow_by' }, 2], // 0.25
    [{ device: 'nasal_cannula', flowLpm: 4 }, 2], // 0.37
    [{ device: 'nasal_cannula', flowLpm: 5 }, 3], // 0.41
    [{ device: 'nasal_cannula', flowLpm: 15 }, 3], // 0.81, at most 0.45
    [{ device: 'cpap', fio2: 0.21 }, 4],
  ] as const)('afebrile %j: Lee %i', (o, grade) => {
    expect(crs([enrol(P), temp(0, 37), oxygen(5, o)], lee)).toBe(grade);
  });

  /** Lee grade of an afebrile patient on these pumps, enrolled at this weight (null: no weight known). */
  const lo = (v: Pumps, weightKg: number | null = 70) => {
    const e = enrol(P, -60);
    if (weightKg === null) delete e.enrolment!.weightKg;
    else e.enrolment!.weightKg = weightKg;
    return crs([e, temp(0, 37), pressors(5, v)], lee);
  };
  it('high dose as monotherapy, each drug at its threshold and just below', () => {
    expect(lo([{ drug: 'norepinephrine', dose: 20, unit: 'mcg/min' }])).toBe(3);
    expect(lo([{ drug: 'norepinephrine', dose: 19.9, unit: 'mcg/min' }])).toBe(2);
    expect(lo([{ drug: 'phenylephrine', dose: 200, unit: 'mcg/min' }])).toBe(3);
    expect(lo([{ drug: 'phenylephrine', dose: 199, unit: 'mcg/min' }])).toBe(2);
    expect(lo([{ drug: 'epinephrine', dose: 10, unit: 'mcg/min' }])).toBe(3);
    expect(lo([{ drug: 'epinephrine', dose: 9.5, unit: 'mcg/min' }])).toBe(2);
    expect(lo([{ drug: 'dopamine', dose: 10, unit: 'mcg/kg/min' }])).toBe(3);
    expect(lo([{ drug: 'dopamine', dose: 9, unit: 'mcg/kg/min' }])).toBe(2);
  });

  it('"Convert mcg/kg/min to mcg/min with the enrolment weight, and dopamine the other way"', () => {
    expect(lo([{ drug: 'norepinephrine', dose: 0.25, unit: 'mcg/kg/min' }], 80)).toBe(3); // 20 mcg/min
    expect(lo([{ drug: 'norepinephrine', dose: 0.24, unit: 'mcg/kg/min' }], 80)).toBe(2); // 19.2 mcg/min
    expect(lo([{ drug: 'dopamine', dose: 800, unit: 'mcg/min' }], 80)).toBe(3); // 10 mcg/kg/min
    expect(lo([{ drug: 'dopamine', dose: 720, unit: 'mcg/min' }], 80)).toBe(2); // 9 mcg/kg/min
  });

  it('"A dose in a unit that cannot be converted (no weight known) is graded as high-dose"', () => {
    expect(lo([{ drug: 'norepinephrine', dose: 0.01, unit: 'mcg/kg/min' }], null)).toBe(3);
  });

  it('"Vasopressin monotherapy counts as low-dose"; "Any two or more vasopressors count as multiple"', () => {
    expect(lo([{ drug: 'vasopressin', dose: 0.04, unit: 'units/min' }])).toBe(2);
    expect(
      lo([
        { drug: 'vasopressin', dose: 0.04, unit: 'units/min' },
        { drug: 'phenylephrine', dose: 20, unit: 'mcg/min' },
      ]),
    ).toBe(3);
  });

  it('"hypotension with no vasopressor": two low readings, afebrile, Lee 2', () => {
    expect(crs([enrol(P), temp(0, 37), ...twoLow(5)], lee)).toBe(2);
  });

  it.each([
    [{ maxCtcaeGrade: 1 }, 0],
    [{ maxCtcaeGrade: 2 }, 2],
    [{ maxCtcaeGrade: 3 }, 3],
    [{ maxCtcaeGrade: 4 }, 4],
    [{ transaminitisGrade: 1 }, 0],
    [{ transaminitisGrade: 2 }, 2],
    [{ transaminitisGrade: 3 }, 3],
    [{ transaminitisGrade: 4 }, 3],
  ] as const)('organ toxicity %j, afebrile: Lee %i', (o, grade) => {
    expect(crs([enrol(P), temp(0, 37), organ(5, o)], lee)).toBe(grade);
  });

  it('"Grade 1: fever, and no row above matches"', () => {
    expect(crs([enrol(P), temp(0, 38.0)], lee)).toBe(1);
    expect(crs([enrol(P), temp(0, 38.0), organ(5, { maxCtcaeGrade: 1 })], lee)).toBe(1);
  });
});

describe('section 4: ICANS', () => {
  it.each([
    [{ iceScore: 10, consciousness: 'alert' }, 0],
    [{ iceScore: 9 }, 1],
    [{ iceScore: 7 }, 1],
    [{ iceScore: 6 }, 2],
    [{ iceScore: 3 }, 2],
    [{ iceScore: 2 }, 3],
    [{ iceScore: 0 }, 3],
    [{ consciousness: 'awakens_spontaneously' }, 1],
    [{ consciousness: 'awakens_to_voice' }, 2],
    [{ consciousness: 'awakens_to_touch' }, 3],
    [{ iceScore: 10, consciousness: 'unarousable' }, 4],
    [{ seizure: 'self_limited' }, 3],
    [{ seizure: 'prolonged' }, 4],
    [{ motorWeakness: true }, 4],
    [{ motorWeakness: false, seizure: 'none', cerebralEdema: 'none' }, 0],
    [{ cerebralEdema: 'focal' }, 3],
    [{ cerebralEdema: 'diffuse' }, 4],
  ] as const)('%j: ICANS %i', (n, grade) => {
    expect(icans([enrol(P), neuro(0, n)])).toBe(grade);
  });

  it('"it does not depend on CRS": ICANS 2 while CRS is 0', () => {
    const r = run([enrol(P), temp(0, 37), neuro(5, { iceScore: 5 })]);
    expect([r.last.crsGrade, r.last.icansGrade]).toEqual([0, 2]);
  });
});

describe('section 5: who is paged', () => {
  it('escalations go to the teams of the new grade', () => {
    const r = run([
      enrol(P),
      temp(0, 39),
      oxygen(5, { device: 'nasal_cannula', flowLpm: 2 }),
      oxygen(10, { device: 'non_rebreather' }),
      neuro(15, { iceScore: 8 }),
      neuro(20, { iceScore: 5 }),
      neuro(25, { iceScore: 1 }),
    ]);
    expect(pages(r)).toEqual([
      'escalation crs 0->1 hematology',
      'escalation crs 1->2 hematology',
      'escalation crs 2->3 hematology+icu',
      'escalation icans 0->1 hematology+neurology',
      'escalation icans 1->2 hematology+neurology+radiology',
      'escalation icans 2->3 hematology+neurology+radiology+icu',
    ]);
  });

  const down = (holdAt: number) =>
    run([
      enrol(P),
      temp(0, 39),
      oxygen(5, { device: 'non_rebreather' }),
      oxygen(10, { device: 'room_air' }),
      msg(P, holdAt, { vitals: { heartRate: 80 } }),
    ]);
  it('"stayed below the notified grade for at least the hold time (default 60 min)": at 60 min, not at 59', () => {
    expect(pages(down(69)).slice(2)).toEqual([]);
    expect(pages(down(70)).slice(2)).toEqual(['de-escalation crs 3->1 hematology+icu']);
  });

  it('"Going down and back up within the hold time sends nothing"', () => {
    const r = run([
      enrol(P),
      temp(0, 39),
      oxygen(5, { device: 'non_rebreather' }),
      oxygen(10, { device: 'room_air' }),
      oxygen(60, { device: 'simple_mask' }),
      msg(P, 200, { vitals: { heartRate: 80 } }),
    ]);
    expect(pages(r)).toEqual(['escalation crs 0->1 hematology', 'escalation crs 1->3 hematology+icu']);
  });

  it('"A duplicate message (same messageId and the same content ... key order aside) changes nothing"', () => {
    const m = msg(P, 5, { vitals: { temperatureC: 39, heartRate: 100 } }, 'dup-1');
    // As sent: keys in another order. The validator writes the contract's order, so the digest is the same.
    const sent = validateMessage(JSON.parse(JSON.stringify({ ...m, vitals: { heartRate: 100, temperatureC: 39 } })));
    if (!sent.ok) throw new Error(sent.errors.join('; '));
    const again = sent.message;
    const r = run([enrol(P), m, temp(5, 37), again]);
    expect(r.duplicates).toBe(1);
    expect(r.last.crsGrade).toBe(0);
  });

  it('"A reused messageId with different content is a new observation: graded"', () => {
    const r = run([
      enrol(P),
      msg(P, 5, { vitals: { temperatureC: 37 } }, 'r-1'),
      msg(P, 6, { vitals: { temperatureC: 39 } }, 'r-1'),
    ]);
    expect(r.duplicates).toBe(0);
    expect(r.last.crsGrade).toBe(1);
    expect(pages(r)).toEqual(['escalation crs 0->1 hematology']);
  });
});
