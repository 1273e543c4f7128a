// The rules audit of 2026-12-04 (crs-rules.md version 1.1, line by line): clauses that no other test pinned.
// The engine followed the rules on each; these keep it so.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';

const P = 'AUD';
const lee = config({ scheme: 'lee2014' });

describe('the defaults are the rules text itself (the rules oracle reads them from the configuration, so a wrong one would be a mistake it shares)', () => {
  it('sections 1-3: fever, hypotension, oxygen, masking drugs, Lee 2014 FiO2 and high doses', () => {
    expect(DEFAULT_CONFIG).toMatchObject({
      scheme: 'astct2019',
      feverThresholdC: 38.0,
      feverWindowMinutes: 24 * 60,
      hypotension: { systolicBelow: 90, mapBelow: 65 },
      lowFlowMaxLpm: 6,
      lee: {
        fio2Grade3: 0.4,
        highDose: {
          norepinephrine: { dose: 20, unit: 'mcg/min' },
          dopamine: { dose: 10, unit: 'mcg/kg/min' },
          phenylephrine: { dose: 200, unit: 'mcg/min' },
          epinephrine: { dose: 10, unit: 'mcg/min' },
        },
        fio2Estimate: {
          room_air: 0.21,
          blow_by: 0.25,
          nasalCannulaPerLpm: 0.04,
          nasalCannulaMax: 0.45,
          simple_mask: 0.4,
          non_rebreather: 0.6,
          venturi: 0.4,
          high_flow_nasal_cannula: 0.4,
        },
      },
    });
    // An antipyretic (acetaminophen, ibuprofen), tocilizumab, siltuximab, anakinra, or a corticosteroid.
    expect([...DEFAULT_CONFIG.feverMaskingDrugs].sort()).toEqual(
      [
        'acetaminophen',
        'anakinra',
        'dexamethasone',
        'hydrocortisone',
        'ibuprofen',
        'methylprednisolone',
        'siltuximab',
        'tocilizumab',
      ].sort(),
    );
  });

  it('sections 5 and 6: routing, hold time, tocilizumab dosing and caps', () => {
    expect(DEFAULT_CONFIG.holdMinutes).toBe(60);
    expect(DEFAULT_CONFIG.routing).toEqual({
      crs: [['hematology'], ['hematology'], ['hematology', 'icu'], ['hematology', 'icu']],
      icans: [
        ['hematology', 'neurology'],
        ['hematology', 'neurology', 'radiology'],
        ['hematology', 'neurology', 'radiology', 'icu'],
        ['hematology', 'neurology', 'radiology', 'icu'],
      ],
    });
    expect(DEFAULT_CONFIG.tocilizumab).toEqual({
      mgPerKg: 8,
      mgPerKgLowWeight: 12,
      lowWeightBelowKg: 30,
      maxDoseMg: 800,
      repeatAfterHours: 8,
      max24h: 3,
      maxTotal: 4,
      totalPer: 'stay', // "4 in total", read literally: every dose of the stay
    });
    expect(DEFAULT_CONFIG.actions.bispecificInterruptFromGrade).toBe(2);
  });
});

describe('section 4: the ICE score and consciousness', () => {
  const icans = (...neuro: NonNullable<Parameters<typeof msg>[2]['neuro']>[]) =>
    run([enrol(P), ...neuro.map((n, i) => msg(P, i * 60, { neuro: n }))]).last.icansGrade;

  it('ICE 0 is grade 3 awake, and grade 4 when the patient is unarousable ("unarousable: see consciousness")', () => {
    expect(icans({ iceScore: 0, consciousness: 'alert' })).toBe(3);
    expect(icans({ iceScore: 0, consciousness: 'unarousable' })).toBe(4);
    expect(icans({ consciousness: 'unarousable' })).toBe(4);
  });

  it('the domains are independent (1.1 item 6): an ICE score charted alone leaves "unarousable" in force', () => {
    // The rules' reading; whether an ICE score implies the patient is now arousable is a question for the
    // clinical reference (reported by the audit), not a change.
    expect(icans({ iceScore: 0, consciousness: 'unarousable' }, { iceScore: 9 })).toBe(4);
    expect(icans({ iceScore: 0, consciousness: 'unarousable' }, { iceScore: 9, consciousness: 'alert' })).toBe(1);
  });
});

describe('section 3: Lee 2014, a vasopressor alone (afebrile, no low reading) is hypotension requiring it', () => {
  it.each([
    [{ drug: 'norepinephrine', dose: 10, unit: 'mcg/min' }, 2],
    [{ drug: 'norepinephrine', dose: 20, unit: 'mcg/min' }, 3],
    [{ drug: 'vasopressin', dose: 0.04, unit: 'units/min' }, 2],
  ] as const)('%o -> grade %i', (pump, grade) => {
    const last = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 37 }, vasopressors: [pump] })], lee).last;
    expect(last.crsGrade).toBe(grade);
  });
});

describe('section 6: the tocilizumab dose at its edges', () => {
  const toci = (weightKg: number, ...doseMinutes: number[]) =>
    run(
      [
        enrol(P, -60, { weightKg }),
        ...doseMinutes.map((m) => msg(P, m, { medications: [{ drug: 'tocilizumab' }] })),
        msg(P, 8 * 60, { vitals: { temperatureC: 39 } }),
      ],
      config(),
    ).notifications[0]!.tocilizumab;

  it('12 mg/kg below 30 kg, 8 mg/kg at 30 kg ("12 mg/kg if weight < 30 kg")', () => {
    expect(toci(29.9)).toMatchObject({ doseMg: 359, mgPerKg: 12 });
    expect(toci(30)).toMatchObject({ doseMg: 240, mgPerKg: 8 });
  });

  it('"may repeat every 8 h": exactly 8 h after a dose another is allowed now, a minute less it is not yet', () => {
    expect(toci(70, 0)).toMatchObject({ givenTotal: 1, anotherAllowed: true, notBefore: null });
    expect(toci(70, 1)).toMatchObject({ givenTotal: 1, anotherAllowed: true, notBefore: '2026-01-10T16:01:00Z' });
  });
});

describe('section 6: a page carries the criteria that drove the grade, with their values and times', () => {
  it('ICANS stood down to 0: the page names the neuro values it rests on (it named none)', () => {
    const r = run([
      enrol(P),
      msg(P, 0, { neuro: { iceScore: 5, consciousness: 'awakens_to_voice' } }),
      msg(P, 10, { neuro: { iceScore: 10 } }),
      msg(P, 20, { neuro: { consciousness: 'alert', seizure: 'none' } }),
      msg(P, 80, { vitals: { heartRate: 80 } }),
    ]);
    const down = r.notifications.find((n) => n.kind === 'de-escalation')!;
    expect(down).toMatchObject({ condition: 'icans', fromGrade: 2, toGrade: 0 });
    expect(down.reasons.map(({ criterion, value, at }) => ({ criterion, value, at }))).toEqual([
      { criterion: 'ice-score', value: 10, at: '2026-01-10T08:10:00Z' },
      { criterion: 'consciousness', value: 'alert', at: '2026-01-10T08:20:00Z' },
      { criterion: 'seizure', value: 'none', at: '2026-01-10T08:20:00Z' },
    ]);
    expect(down.summary).toContain('ICE score 10/10 at 2026-01-10 08:10 UTC');
    expect(down.summary).toContain('consciousness: alert at 2026-01-10 08:20 UTC');
    // The assessments are as they were: ICANS reasons only while ICANS is above 0.
    expect(r.last.reasons.some((x) => x.text.startsWith('ICANS'))).toBe(false);
  });

  it('CRS stood down to 0 under the fever waiver: the page says what 0 rests on, not the waiver alone', () => {
    // Fever, paracetamol after it (the waiver), a nasal cannula: CRS 2. The next day afebrile on room air: CRS 0,
    // because there is neither fever nor hypotension nor hypoxia; the page named only "fever not required".
    const r = run([
      enrol(P),
      msg(P, 0, { vitals: { temperatureC: 39 } }),
      msg(P, 10, { medications: [{ drug: 'acetaminophen' }], oxygen: { device: 'nasal_cannula', flowLpm: 2 } }),
      msg(P, 25 * 60, { oxygen: { device: 'room_air' } }),
      msg(P, 26 * 60, { vitals: { heartRate: 80 } }),
    ]);
    const down = r.notifications.find((n) => n.kind === 'de-escalation')!;
    expect(down).toMatchObject({ condition: 'crs', fromGrade: 2, toGrade: 0 });
    expect(down.reasons.map(({ criterion, value, at }) => ({ criterion, value, at }))).toEqual([
      { criterion: 'fever-waiver', value: true, at: '2026-01-10T08:10:00Z' },
      { criterion: 'no-fever', value: false, at: '2026-01-11T10:00:00Z' },
    ]);
    expect(down.summary).toContain('no temperature >= 38 °C in the last 24 h, no hypotension and no hypoxia');
  });

  it('a CRS page to 0 already did: the criterion not met, at the clock', () => {
    const r = run([
      enrol(P),
      msg(P, 0, { vitals: { temperatureC: 39 } }),
      msg(P, 25 * 60, { vitals: { heartRate: 80 } }),
      msg(P, 26 * 60, { vitals: { heartRate: 80 } }),
    ]);
    const down = r.notifications.find((n) => n.kind === 'de-escalation')!;
    expect(down).toMatchObject({ condition: 'crs', fromGrade: 1, toGrade: 0 });
    expect(down.reasons.map((x) => x.criterion)).toEqual(['no-fever']);
  });
});

describe('section 6: the scheme a page names is the one its grade was given in', () => {
  it('under Lee 2014 a CRS page says lee2014 and an ICANS page astct2019 (ICANS is graded by ASTCT in both schemes)', () => {
    const r = run(
      [
        enrol(P),
        msg(P, 0, { vitals: { temperatureC: 39 } }),
        msg(P, 10, { neuro: { iceScore: 5, consciousness: 'awakens_to_voice' } }),
      ],
      lee,
    );
    const crs = r.notifications.find((n) => n.condition === 'crs')!;
    const icans = r.notifications.find((n) => n.condition === 'icans')!;
    expect(crs).toMatchObject({ scheme: 'lee2014', toGrade: 1 });
    expect(crs.summary).toContain('Lee 2014');
    expect(icans).toMatchObject({ scheme: 'astct2019', toGrade: 2 });
    expect(icans.summary).toContain('ASTCT 2019 ICANS');
  });
});
