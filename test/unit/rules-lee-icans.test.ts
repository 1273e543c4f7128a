// crs-rules.md sections 3 and 4, row by row: Lee 2014 (seed review Table 3) and ASTCT 2019 ICANS.
import { describe, expect, it } from 'vitest';
import type { VasopressorEntry } from '#domain/contract.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';

const P = 'L1';
const lee = config({ scheme: 'lee2014' });
const febrile = (m = 0) => msg(P, m, { vitals: { temperatureC: 38.6 } });
const lowPair = [msg(P, 10, { vitals: { systolicBP: 82 } }), msg(P, 15, { vitals: { systolicBP: 80 } })];
const grade = (...rest: Parameters<typeof msg>[2][]) =>
  run([enrol(P), febrile(0), ...rest.map((s, i) => msg(P, 20 + i, s))], lee).last;

describe('section 3: Lee 2014 grade 4', () => {
  it.each(['mechanical_ventilation', 'bipap', 'cpap'] as const)('ventilator support (%s)', (device) => {
    expect(grade({ oxygen: { device } }).crsGrade).toBe(4);
  });
  it('organ toxicity grade 4', () => {
    expect(grade({ organToxicity: { maxCtcaeGrade: 4 } }).crsGrade).toBe(4);
  });
  it('transaminitis grade 4 is excluded from grade 4 (it is grade 3)', () => {
    expect(grade({ organToxicity: { transaminitisGrade: 4 } }).crsGrade).toBe(3);
  });
});

describe('section 3: Lee 2014 grade 3', () => {
  it('FiO2 >= 0.40 given', () => {
    expect(grade({ oxygen: { device: 'high_flow_nasal_cannula', flowLpm: 30, fio2: 0.4 } }).crsGrade).toBe(3);
    expect(grade({ oxygen: { device: 'high_flow_nasal_cannula', flowLpm: 30, fio2: 0.39 } }).crsGrade).toBe(2);
  });

  const single = (v: VasopressorEntry) =>
    run([enrol(P), febrile(0), ...lowPair, msg(P, 20, { vasopressors: [v] })], lee).last;
  it.each([
    [{ drug: 'norepinephrine', dose: 20, unit: 'mcg/min' }, 3],
    [{ drug: 'norepinephrine', dose: 19.9, unit: 'mcg/min' }, 2],
    [{ drug: 'norepinephrine', dose: 0.3, unit: 'mcg/kg/min' }, 3], // 21 mcg/min at 70 kg
    [{ drug: 'norepinephrine', dose: 0.28, unit: 'mcg/kg/min' }, 2], // 19.6 mcg/min
    [{ drug: 'dopamine', dose: 10, unit: 'mcg/kg/min' }, 3],
    [{ drug: 'dopamine', dose: 9, unit: 'mcg/kg/min' }, 2],
    [{ drug: 'dopamine', dose: 700, unit: 'mcg/min' }, 3], // 10 mcg/kg/min at 70 kg
    [{ drug: 'dopamine', dose: 630, unit: 'mcg/min' }, 2], // 9 mcg/kg/min
    [{ drug: 'phenylephrine', dose: 200, unit: 'mcg/min' }, 3],
    [{ drug: 'phenylephrine', dose: 150, unit: 'mcg/min' }, 2],
    [{ drug: 'epinephrine', dose: 10, unit: 'mcg/min' }, 3],
    [{ drug: 'epinephrine', dose: 0.1, unit: 'mcg/kg/min' }, 2], // 7 mcg/min
    [{ drug: 'vasopressin', dose: 0.04, unit: 'units/min' }, 2], // monotherapy counts as low-dose
    [{ drug: 'norepinephrine', dose: 5, unit: 'units/min' }, 3], // cannot be converted: fail safe
  ] as const)('hypotension with %o -> grade %i', (v, g) => {
    expect(single(v).crsGrade).toBe(g);
  });

  it('a dose that cannot be converted (no weight) is high-dose, and the reasons say why', () => {
    const noWeight = msg(P, -60, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z' } });
    const a = run(
      [
        noWeight,
        febrile(0),
        ...lowPair,
        msg(P, 20, { vasopressors: [{ drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' }] }),
      ],
      lee,
    ).last;
    expect(a.crsGrade).toBe(3);
    expect(a.reasons.map((r) => r.text).join(' ')).toMatch(/no enrolment weight.*fail safe/);
  });

  it('multiple vasopressors (any two, vasopressin included)', () => {
    const a = run(
      [
        enrol(P),
        febrile(0),
        ...lowPair,
        msg(P, 20, {
          vasopressors: [
            { drug: 'norepinephrine', dose: 2, unit: 'mcg/min' },
            { drug: 'vasopressin', dose: 0.03, unit: 'units/min' },
          ],
        }),
      ],
      lee,
    ).last;
    expect(a.crsGrade).toBe(3);
  });

  it('organ toxicity grade 3', () => {
    expect(grade({ organToxicity: { maxCtcaeGrade: 3 } }).crsGrade).toBe(3);
  });
});

describe('section 3: Lee 2014 grades 2 and 1', () => {
  it('any oxygen requirement with FiO2 < 0.40', () => {
    expect(grade({ oxygen: { device: 'nasal_cannula', flowLpm: 2, fio2: 0.3 } }).crsGrade).toBe(2);
  });
  it('hypotension with no vasopressor', () => {
    expect(run([enrol(P), febrile(0), ...lowPair], lee).last.crsGrade).toBe(2);
  });
  it('organ toxicity grade 2', () => {
    expect(grade({ organToxicity: { maxCtcaeGrade: 2 } }).crsGrade).toBe(2);
  });
  it('the entry criterion alone is grade 1; organ toxicity 1 does not raise it', () => {
    expect(grade({ organToxicity: { maxCtcaeGrade: 1, transaminitisGrade: 1 } }).crsGrade).toBe(1);
  });
  it('Lee 2014 has no entry criterion: afebrile on BiPAP is grade 4 (1.1 item 7; 1.0 gave 0)', () => {
    expect(run([enrol(P), msg(P, 0, { oxygen: { device: 'bipap' } })], lee).last.crsGrade).toBe(4);
  });
  it('afebrile with no Lee row matching is 0', () => {
    const a = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 37.1, systolicBP: 120 } })], lee).last;
    expect(a.crsGrade).toBe(0);
    expect(a.reasons.map((r) => r.criterion)).toEqual(['no-fever']);
  });
  it('the latest organ toxicity values replace earlier ones', () => {
    expect(grade({ organToxicity: { maxCtcaeGrade: 3 } }, { organToxicity: { maxCtcaeGrade: 1 } }).crsGrade).toBe(1);
  });
});

describe('section 3: FiO2 estimated from the device when none is given', () => {
  it.each([
    ['room_air', undefined, 1, undefined],
    ['blow_by', undefined, 2, 0.25],
    ['nasal_cannula', 4, 2, 0.37],
    ['nasal_cannula', 5, 3, 0.41],
    // At the threshold: 0.21 + 0.04 x 4.74 is 0.3996, below 0.40 (it was rounded to 0.400: grade 3); 4.75 is 0.40.
    ['nasal_cannula', 4.74, 2, 0.3996],
    ['nasal_cannula', 4.75, 3, 0.4],
    ['nasal_cannula', 10, 3, 0.45], // capped
    ['simple_mask', undefined, 3, 0.4],
    ['non_rebreather', undefined, 3, 0.6],
    ['venturi', undefined, 3, 0.4],
    ['high_flow_nasal_cannula', 40, 3, 0.4],
  ] as const)('%s at %s L/min -> grade %i (FiO2 %s)', (device, flowLpm, g, fio2) => {
    const a = grade({ oxygen: flowLpm === undefined ? { device } : { device, flowLpm } });
    expect(a.crsGrade).toBe(g);
    if (fio2 !== undefined) {
      const r = a.reasons.find((x) => x.criterion === 'fio2')!;
      expect(r.value).toBe(fio2);
      expect(r.text).toContain('estimated');
    }
  });
});

describe('section 3: a nasal cannula with no flow documented (the configurable interpretation)', () => {
  // Section 3: "nasal cannula 0.21 + 0.04 x flow (L/min), at most 0.45"; with no flow the project's
  // nasalCannulaUnknownFlow interpretation decides, as in section 2.
  const noFlow = { oxygen: { device: 'nasal_cannula' as const } };
  it('is low-flow by default: an oxygen requirement with FiO2 below 0.40, grade 2, and says so', () => {
    const a = grade(noFlow);
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.map((r) => r.text).join(' ')).toContain('flow not documented: graded as low-flow');
  });
  it("says the site's threshold: with fio2Grade3 0.45, graded as low-flow (FiO2 below 45 %)", () => {
    // Until 2026-12-05 the reason said "below 40 %" whatever lee.fio2Grade3 was, beside a "(< 0.45)" elsewhere.
    const at45 = config({ scheme: 'lee2014', lee: { fio2Grade3: 0.45 } });
    const a = run([enrol(P), febrile(0), msg(P, 20, noFlow)], at45).last;
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.map((r) => r.text).join(' ')).toContain(
      'flow not documented: graded as low-flow (FiO2 below 45 %)',
    );
  });
  it('configured high-flow: FiO2 estimated at the 0.45 cap, grade 3', () => {
    const high = config({ scheme: 'lee2014', nasalCannulaUnknownFlow: 'high' });
    const a = run([enrol(P), febrile(0), msg(P, 20, noFlow)], high).last;
    expect(a.crsGrade).toBe(3);
    expect(a.reasons.find((r) => r.criterion === 'fio2')?.value).toBe(0.45);
  });
});

describe('section 4: ASTCT 2019 ICANS', () => {
  const icans = (neuro: Parameters<typeof msg>[2]['neuro']) => run([enrol(P), msg(P, 0, { neuro })]).last.icansGrade;
  it.each([
    [10, 0],
    [9, 1],
    [7, 1],
    [6, 2],
    [3, 2],
    [2, 3],
    [0, 3],
  ])('ICE score %i -> grade %i', (iceScore, g) => {
    expect(icans({ iceScore, consciousness: 'alert' })).toBe(g);
  });
  it.each([
    ['alert', 0],
    ['awakens_spontaneously', 1],
    ['awakens_to_voice', 2],
    ['awakens_to_touch', 3],
    ['unarousable', 4],
  ] as const)('consciousness %s -> grade %i', (consciousness, g) => {
    expect(icans({ iceScore: 10, consciousness })).toBe(g);
  });
  it.each([
    [{ seizure: 'self_limited' }, 3],
    [{ seizure: 'prolonged' }, 4],
    [{ motorWeakness: true }, 4],
    [{ cerebralEdema: 'focal' }, 3],
    [{ cerebralEdema: 'diffuse' }, 4],
    [{ seizure: 'none', motorWeakness: false, cerebralEdema: 'none' }, 0],
  ] as const)('%o -> grade %i', (neuro, g) => {
    expect(icans(neuro)).toBe(g);
  });
  it('the most severe domain wins', () => {
    expect(icans({ iceScore: 8, consciousness: 'awakens_to_voice', seizure: 'self_limited' })).toBe(3);
  });
  it('does not depend on CRS', () => {
    const a = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 39 }, neuro: { iceScore: 5 } })]).last;
    expect([a.crsGrade, a.icansGrade]).toEqual([1, 2]);
  });
});

describe('clauses pinned by the rules audit', () => {
  const pressor = (v: VasopressorEntry, enrolment = enrol(P)) =>
    run([enrolment, febrile(0), ...lowPair, msg(P, 20, { vasopressors: [v] })], lee);
  const noWeight = msg(P, -60, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed: 'B1' } });

  it.each([
    // Section 3, high-dose thresholds (>=): just below each is low-dose, grade 2.
    [{ drug: 'norepinephrine', dose: 19.99, unit: 'mcg/min' }, 2],
    [{ drug: 'dopamine', dose: 9.99, unit: 'mcg/kg/min' }, 2],
    [{ drug: 'phenylephrine', dose: 199.9, unit: 'mcg/min' }, 2],
    [{ drug: 'epinephrine', dose: 9.99, unit: 'mcg/min' }, 2],
    // Converted with the enrolment weight (70 kg) across 10 mcg/min: 9.996 is low-dose, 10.003 high-dose.
    [{ drug: 'epinephrine', dose: 0.1428, unit: 'mcg/kg/min' }, 2],
    [{ drug: 'epinephrine', dose: 0.1429, unit: 'mcg/kg/min' }, 3],
    // Dopamine sent in mcg/min, converted the other way: 693 mcg/min is 9.9 mcg/kg/min, 703 is 10.04.
    [{ drug: 'dopamine', dose: 693, unit: 'mcg/min' }, 2],
    [{ drug: 'dopamine', dose: 703, unit: 'mcg/min' }, 3],
  ] as const)('hypotension with %o -> grade %i', (v, g) => {
    expect(pressor(v).last.crsGrade).toBe(g);
  });

  it('a dose converted with the enrolment weight says which weight, so a weight charted since explains a grade that moved', () => {
    const on = pressor({ drug: 'norepinephrine', dose: 0.3, unit: 'mcg/kg/min' });
    expect(on.last.crsGrade).toBe(3);
    expect(on.last.reasons.map((r) => r.text)).toContain(
      'norepinephrine high-dose: 21 mcg/min (from mcg/kg/min at 70 kg) >= 20 at 2026-01-10T08:20:00Z',
    );
    // The weight charted again, 60 kg: the same pump is low-dose, and the page says at which weight.
    const lighter = run(
      [
        enrol(P),
        febrile(0),
        ...lowPair,
        msg(P, 20, { vasopressors: [{ drug: 'norepinephrine', dose: 0.3, unit: 'mcg/kg/min' }] }),
        msg(P, 30, { enrolment: { weightKg: 60 } }),
      ],
      lee,
    );
    expect(lighter.last.crsGrade).toBe(2);
    expect(lighter.last.reasons.map((r) => r.text)).toContain(
      'norepinephrine low-dose: 18 mcg/min (from mcg/kg/min at 60 kg) < 20 at 2026-01-10T08:20:00Z',
    );
  });

  it('pumps summed and converted say both, and the unit converted from once', () => {
    // Pinned by a mutation run (2026-12-05).
    const two = (a: VasopressorEntry, b: VasopressorEntry) =>
      run([enrol(P), febrile(0), ...lowPair, msg(P, 20, { vasopressors: [a, b] })], lee).last.reasons.map(
        (r) => r.text,
      );
    const kg = (dose: number): VasopressorEntry => ({ drug: 'norepinephrine', dose, unit: 'mcg/kg/min' });
    expect(two(kg(0.1), kg(0.2))).toContain(
      'norepinephrine high-dose: 21 mcg/min (2 pumps summed, from mcg/kg/min at 70 kg) >= 20 at 2026-01-10T08:20:00Z',
    );
    expect(two(kg(0.1), { drug: 'norepinephrine', dose: 5, unit: 'mcg/min' })).toContain(
      'norepinephrine low-dose: 12 mcg/min (2 pumps summed, from mcg/kg/min at 70 kg) < 20 at 2026-01-10T08:20:00Z',
    );
  });

  it('a dose already in the threshold unit needs no weight: graded on its value, not as unconvertible', () => {
    // Section 3: fail safe only for "a dose in a unit that cannot be converted (no weight known)".
    expect(pressor({ drug: 'norepinephrine', dose: 15, unit: 'mcg/min' }, noWeight).last.crsGrade).toBe(2);
    expect(pressor({ drug: 'dopamine', dose: 9.99, unit: 'mcg/kg/min' }, noWeight).last.crsGrade).toBe(2);
    expect(pressor({ drug: 'norepinephrine', dose: 20, unit: 'mcg/min' }, noWeight).last.crsGrade).toBe(3);
  });

  it.each([
    [
      'units/min',
      { drug: 'epinephrine', dose: 2, unit: 'units/min' },
      enrol(P),
      'epinephrine graded as high-dose: units/min cannot be compared with 10 mcg/min (fail safe)',
    ],
    [
      'no weight',
      { drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' },
      noWeight,
      'norepinephrine graded as high-dose: no enrolment weight to convert to mcg/min (fail safe)',
    ],
  ] as const)('an unconvertible dose (%s) is high-dose, and the page says why', (_name, v, enrolment, why) => {
    // Section 3: "graded as high-dose and the page says why (fail safe, never silent)".
    const r = pressor(v, enrolment);
    expect(r.last.crsGrade).toBe(3);
    const page = r.notifications.at(-1)!;
    expect([page.fromGrade, page.toGrade, page.teams]).toEqual([2, 3, ['hematology', 'icu']]);
    expect(page.summary).toContain(why);
  });

  it('the given FiO2 is used, also where it grades above the device estimate', () => {
    // Section 3: "FiO2: use the given `fio2`". Nasal cannula 2 L/min is estimated 0.29 (grade 2); given 0.40: 3.
    const a = grade({ oxygen: { device: 'nasal_cannula', flowLpm: 2, fio2: 0.4 } });
    expect(a.crsGrade).toBe(3);
    expect(a.reasons.find((r) => r.criterion === 'fio2')).toMatchObject({ value: 0.4 });
    expect(a.reasons.find((r) => r.criterion === 'fio2')!.text).not.toContain('estimated');
  });

  it('a given FiO2 is said once, with its threshold and time (vignette P-09)', () => {
    // Until 2026-12-06: "high-flow nasal cannula 30 L/min FiO2 0.45: FiO2 0.45 (>= 0.4) at ...".
    const a = grade({ oxygen: { device: 'high_flow_nasal_cannula', flowLpm: 30, fio2: 0.45 } });
    expect(a.reasons.find((r) => r.criterion === 'fio2')).toMatchObject({
      value: 0.45,
      text: 'high-flow nasal cannula 30 L/min FiO2 0.45 (>= 0.4) at 2026-01-10T08:20:00Z',
    });
    // Estimated, the device's text and the estimate are two things, both said.
    const e = grade({ oxygen: { device: 'nasal_cannula', flowLpm: 2 } });
    expect(e.reasons.find((r) => r.criterion === 'fio2')!.text).toBe(
      'nasal cannula 2 L/min: FiO2 estimated 0.29 from the device (< 0.4) at 2026-01-10T08:20:00Z',
    );
  });

  it.each(['bipap', 'non_rebreather'] as const)(
    'oxygen for comfort is no oxygen requirement in Lee 2014 (%s)',
    (device) => {
      // Section 1 (both schemes): "`forComfort: true` ... never counts as hypoxia".
      expect(grade({ oxygen: { device, forComfort: true } }).crsGrade).toBe(1);
    },
  );
});

// What Stryker's mutants of grading.ts left alive (docs/testing.md, 2026-12-07): the reasons a reader is shown.
describe('pinned by a mutation run: the Lee 2014 and ICANS reasons', () => {
  const texts = (a: { reasons: { text: string }[] }) => a.reasons.map((r) => r.text);
  const norepinephrine = (dose: number) => ({ drug: 'norepinephrine', dose, unit: 'mcg/min' }) as const;
  const calm = (...rest: Parameters<typeof msg>[2][]) =>
    run([enrol(P), ...rest.map((s, i) => msg(P, 20 + i, s))], lee).last;

  it('a nasal cannula with no flow is an oxygen requirement, not an FiO2 estimated as nothing', () => {
    // Section 7: "A nasal cannula with no flow follows `nasalCannulaUnknownFlow`" (low by default: grade 2).
    const a = grade({ oxygen: { device: 'nasal_cannula' } });
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.find((r) => r.criterion === 'oxygen')!.text).toBe(
      'oxygen requirement: nasal cannula (flow not documented: graded as low-flow (FiO2 below 40 %)) at 2026-01-10T08:20:00Z',
    );
    expect(a.reasons.some((r) => r.criterion === 'fio2')).toBe(false);
  });

  it('one pump in the threshold unit says its dose and the threshold, and nothing in brackets', () => {
    const high = run([enrol(P), febrile(0), ...lowPair, msg(P, 20, { vasopressors: [norepinephrine(25)] })], lee);
    expect(texts(high.last)).toContain('norepinephrine high-dose: 25 mcg/min >= 20 at 2026-01-10T08:20:00Z');
    const low = run([enrol(P), febrile(0), ...lowPair, msg(P, 20, { vasopressors: [norepinephrine(10)] })], lee);
    expect(texts(low.last)).toContain('norepinephrine low-dose: 10 mcg/min < 20 at 2026-01-10T08:20:00Z');
  });

  it('a drug with one pump in units/min is graded high-dose for its units, not for a weight it has', () => {
    // Section 7: "A dose that cannot be converted (units/min ...) is graded as high-dose and the reasons say why".
    const pumps = [norepinephrine(10), { drug: 'norepinephrine', dose: 5, unit: 'units/min' } as const];
    const a = run([enrol(P), febrile(0), ...lowPair, msg(P, 20, { vasopressors: pumps })], lee).last;
    expect(a.crsGrade).toBe(3);
    expect(texts(a).join(' ')).toContain('units/min cannot be compared with 20 mcg/min (fail safe)');
  });

  it('an organ toxicity or a transaminitis below grade 2 is not named beside one that grades', () => {
    // Section 7: grade 2 is "organ toxicity grade 2 (transaminitis grade 2-3 counts as organ toxicity of its grade)".
    const tx = calm({ organToxicity: { maxCtcaeGrade: 1, transaminitisGrade: 3 } });
    expect(tx.crsGrade).toBe(3);
    expect(tx.reasons.map((r) => r.criterion)).toEqual(['transaminitis']);
    const organ = calm({ organToxicity: { maxCtcaeGrade: 2, transaminitisGrade: 1 } });
    expect(organ.crsGrade).toBe(2);
    expect(organ.reasons.map((r) => r.criterion)).toEqual(['organ-toxicity']);
  });

  it('a Lee grade above 0 never says that no criterion is met; at 0 it says which were looked for', () => {
    // Section 7: "No fever condition for grades 2-4": hypotension alone is grade 2.
    const two = run([enrol(P), ...lowPair], lee).last;
    expect(two.crsGrade).toBe(2);
    expect(two.reasons.some((r) => r.criterion === 'no-fever')).toBe(false);
    const zero = calm({ vitals: { temperatureC: 37 } });
    expect(zero.crsGrade).toBe(0);
    expect(zero.reasons).toEqual([
      expect.objectContaining({
        criterion: 'no-fever',
        value: false,
        text: 'no Lee 2014 criterion met: no temperature >= 38 °C in the last 24 h, no hypotension, oxygen requirement or organ toxicity grade >= 2 at 2026-01-10T08:20:00Z',
      }),
    ]);
  });

  it('ICANS reasons name the domains above normal only', () => {
    // Section 8: "ICANS = the most severe domain"; ICE 5 is grade 2, `alert` is an explicit normal value.
    const a = run([enrol(P), msg(P, 0, { neuro: { iceScore: 5, consciousness: 'alert', seizure: 'none' } })]).last;
    expect(a.icansGrade).toBe(2);
    expect(a.reasons.filter((r) => r.text.startsWith('ICANS')).map((r) => r.criterion)).toEqual(['ice-score']);
  });
});
