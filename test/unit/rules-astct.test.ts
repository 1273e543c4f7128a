// crs-rules.md sections 1 and 2, row by row: time and state semantics, and ASTCT 2019 CRS grading.
import { describe, expect, it } from 'vitest';
import { enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';

const P = 'P1';
const febrile = (m = 0, c = 38.5) => msg(P, m, { vitals: { temperatureC: c } });
const bp = (m: number, systolicBP: number, meanArterialPressure?: number) =>
  msg(P, m, { vitals: meanArterialPressure === undefined ? { systolicBP } : { systolicBP, meanArterialPressure } });
const mapOnly = (m: number, meanArterialPressure: number) => msg(P, m, { vitals: { meanArterialPressure } });

describe('section 1: the patient clock and late messages', () => {
  it('grades as of the latest observedAt seen for the patient', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 30, { vitals: { heartRate: 90 } }),
      msg(P, 10, { vitals: { heartRate: 100 } }),
    ]);
    expect(r.last.at).toBe('2026-01-10T08:30:00Z');
  });

  it('a late (older) message never overwrites a newer value', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 20, { oxygen: { device: 'non_rebreather' } }),
      msg(P, 10, { oxygen: { device: 'room_air' } }), // late
    ]);
    expect(r.last.crsGrade).toBe(3);
    expect(r.state!.oxygen!.v.device).toBe('non_rebreather');
  });

  it('a late message still counts for the fever window', () => {
    const r = run([enrol(P), msg(P, 60, { vitals: { temperatureC: 37.0 } }), febrile(30, 38.9)]);
    expect(r.last.crsGrade).toBe(1);
    expect(r.last.reasons.map((x) => x.text)).toContain('fever 38.9 °C at 2026-01-10T08:30:00Z');
  });

  it('consecutive blood pressures are ordered by observedAt, not by arrival', () => {
    // Arrival: low(10), normal(30), low(20). By time: low, low, normal -> hypotension established, one normal does not clear.
    const r = run([enrol(P), febrile(0), bp(10, 85), bp(30, 120), bp(20, 84)]);
    expect(r.last.crsGrade).toBe(2);
    // Arrival: low(10), low(30), normal(20). By time: low, normal, low -> never two consecutive lows.
    const r2 = run([enrol(P), febrile(0), bp(10, 85), bp(30, 84), bp(20, 120)]);
    expect(r2.last.crsGrade).toBe(1);
  });
});

describe('section 1: fever', () => {
  it.each([
    [38.0, 1],
    [37.9, 0],
    [40.5, 1],
  ])('temperature %s °C gives CRS %i', (c, grade) => {
    expect(run([enrol(P), febrile(0, c)]).last.crsGrade).toBe(grade);
  });

  it('counts a febrile temperature for 24 h (inclusive), then not', () => {
    const within = run([enrol(P), febrile(0), msg(P, 24 * 60, { vitals: { temperatureC: 37 } })]);
    expect(within.last.crsGrade).toBe(1);
    const after = run([enrol(P), febrile(0), msg(P, 24 * 60 + 1, { vitals: { temperatureC: 37 } })]);
    expect(after.last.crsGrade).toBe(0);
  });

  it('a fever exactly 24 h old still counts when an older, higher one has just left the window', () => {
    // Section 1: "any temperature >= 38.0 °C observed within the fever window (default 24 h)", inclusive as above.
    const r = run([enrol(P), febrile(-10, 39.5), febrile(0, 38.5), msg(P, 24 * 60, { vitals: { temperatureC: 37 } })]);
    expect(r.last.crsGrade).toBe(1);
  });

  it('the fever window and threshold are configuration', () => {
    const cfg = config({ feverWindowMinutes: 60, feverThresholdC: 38.3 });
    expect(run([enrol(P), febrile(0, 38.2)], cfg).last.crsGrade).toBe(0);
    expect(run([enrol(P), febrile(0, 38.4), msg(P, 61, { vitals: { heartRate: 80 } })], cfg).last.crsGrade).toBe(0);
    expect(run([enrol(P), febrile(0, 38.4), msg(P, 60, { vitals: { heartRate: 80 } })], cfg).last.crsGrade).toBe(1);
  });

  it('the window edge is an interpretation: inclusive by default, exclusive by configuration', () => {
    const atEdge = [enrol(P), febrile(0), msg(P, 24 * 60, { vitals: { temperatureC: 37 } })];
    expect(run(atEdge).last.crsGrade).toBe(1);
    const exclusive = config({ feverWindowEdge: 'exclusive' });
    expect(run(atEdge, exclusive).last.crsGrade).toBe(0);
    expect(run(atEdge, exclusive).last.reasons[0]!.criterion).toBe('no-fever');
    // A minute inside the window counts either way.
    const inside = [enrol(P), febrile(0), msg(P, 24 * 60 - 1, { vitals: { temperatureC: 37 } })];
    expect(run(inside, exclusive).last.crsGrade).toBe(1);
  });
});

describe('section 1: the CRS entry criterion', () => {
  it('without fever or waiver CRS is 0 whatever the hypotension and hypoxia', () => {
    const r = run([
      enrol(P),
      bp(0, 80),
      bp(5, 78),
      msg(P, 6, { vasopressors: [{ drug: 'norepinephrine', dose: 0.2, unit: 'mcg/kg/min' }] }),
      msg(P, 7, { oxygen: { device: 'mechanical_ventilation', fio2: 0.8 } }),
    ]);
    expect(r.last.crsGrade).toBe(0);
    expect(r.notifications).toHaveLength(0);
    expect(r.last.reasons[0]!.criterion).toBe('no-fever');
  });
});

describe('section 1: the fever waiver', () => {
  const hypotensiveDayLater = (m: number) => [bp(m, 84), bp(m + 5, 82)];

  it.each([
    'acetaminophen',
    'ibuprofen',
    'tocilizumab',
    'siltuximab',
    'anakinra',
    'dexamethasone',
    'methylprednisolone',
    'hydrocortisone',
  ] as const)('%s after CRS onset waives fever for the rest of the episode', (drug) => {
    const r = run([enrol(P), febrile(0), msg(P, 30, { medications: [{ drug }] }), ...hypotensiveDayLater(26 * 60)]);
    expect(r.last.crsGrade).toBe(2);
    expect(r.last.reasons.map((x) => x.criterion)).toContain('fever-waiver');
    // The reason names the drug (until 2026-12-06 "fever-masking medication given ..." named none).
    expect(r.last.reasons.find((x) => x.criterion === 'fever-waiver')!.text).toBe(
      `fever not required: fever-masking medication (${drug}) given on or after a fever of the episode (2026-01-10T08:00:00Z) at 2026-01-10T08:30:00Z`,
    );
  });

  it("the waiver's reason names every masking drug charted at its time, and none of another time or not masking", () => {
    const waiverText = (...meds: Parameters<typeof msg>[2][]) =>
      run(
        [enrol(P), febrile(0), ...meds.map((m, i) => msg(P, 30 + i * 10, m)), ...hypotensiveDayLater(26 * 60)],
        config({ feverMaskingDrugs: ['acetaminophen', 'dexamethasone', 'tocilizumab'] }),
      ).last.reasons.find((x) => x.criterion === 'fever-waiver')!.text;
    // Two at once; an ibuprofen (off this list) with them is not named.
    expect(
      waiverText({ medications: [{ drug: 'dexamethasone' }, { drug: 'ibuprofen' }, { drug: 'acetaminophen' }] }),
    ).toContain('fever-masking medication (acetaminophen, dexamethasone) given');
    // An earlier masking dose is not the one the time names; a later non-masking one is not named either.
    expect(
      waiverText(
        { medications: [{ drug: 'acetaminophen' }] },
        { medications: [{ drug: 'tocilizumab' }] },
        { medications: [{ drug: 'ibuprofen' }] },
      ),
    ).toMatch(/fever-masking medication \(tocilizumab\) given .* at 2026-01-10T08:40:00Z$/);
  });

  it('premedication before the first CRS grade does not waive fever', () => {
    const r = run([
      enrol(P),
      msg(P, -30, { medications: [{ drug: 'acetaminophen', doseMg: 1000 }] }),
      febrile(0),
      ...hypotensiveDayLater(26 * 60),
    ]);
    expect(r.last.crsGrade).toBe(0);
  });

  it('a masking medication at the very instant grade 1 is first reached waives fever (at or after)', () => {
    const r = run([
      enrol(P),
      msg(P, 0, { medications: [{ drug: 'acetaminophen' }] }),
      febrile(0),
      ...hypotensiveDayLater(26 * 60),
    ]);
    expect(r.last.crsGrade).toBe(2);
  });

  it('with the waiver, afebrile and neither hypotension nor hypoxia, CRS is 0', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 30, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] }),
      msg(P, 25 * 60, { vitals: { temperatureC: 36.8 } }),
    ]);
    expect(r.last.crsGrade).toBe(0);
  });

  it('with the waiver, hypoxia alone grades without fever', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 30, { medications: [{ drug: 'dexamethasone', doseMg: 10 }] }),
      msg(P, 25 * 60, { oxygen: { device: 'nasal_cannula', flowLpm: 3 } }),
    ]);
    expect(r.last.crsGrade).toBe(2);
  });

  it('a new infusion starts a new episode without the waiver', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 30, { medications: [{ drug: 'tocilizumab' }] }),
      msg(P, 3 * 24 * 60, { enrolment: { infusedAt: '2026-01-13T08:00:00Z' } }),
      ...hypotensiveDayLater(3 * 24 * 60 + 10),
    ]);
    expect(r.last.crsGrade).toBe(0);
  });

  it('before any infusion time is known every fever is of the episode, unless configured otherwise', () => {
    const noEnrolment = [
      febrile(0),
      msg(P, 30, { medications: [{ drug: 'acetaminophen' }] }),
      ...hypotensiveDayLater(26 * 60),
    ];
    expect(run(noEnrolment).last.crsGrade).toBe(2);
    const strict = config({ waiverNeedsInfusionTime: true });
    const r = run(noEnrolment, strict);
    expect(r.last.crsGrade).toBe(0);
    expect(r.last.reasons.map((x) => x.criterion)).not.toContain('fever-waiver');
    // The enrolment arriving later, with an infusion before the fever, brings the waiver back (any arrival order).
    const later = run(
      [...noEnrolment, msg(P, 26 * 60 + 10, { enrolment: { infusedAt: '2026-01-10T07:00:00Z' } })],
      strict,
    );
    expect(later.last.crsGrade).toBe(2);
    // A fever still grades CRS 1 without an infusion time.
    expect(run([febrile(0)], strict).last.crsGrade).toBe(1);
  });

  it('optionally, the episode ends after a configured time at CRS 0', () => {
    const cfg = config({ episodeEndsAfterHoursAtGrade0: 12 });
    const r = run(
      [
        enrol(P),
        febrile(0),
        msg(P, 30, { medications: [{ drug: 'tocilizumab' }] }),
        msg(P, 25 * 60, { vitals: { temperatureC: 37 } }),
        msg(P, 38 * 60, { vitals: { temperatureC: 37 } }),
        ...hypotensiveDayLater(40 * 60),
      ],
      cfg,
    );
    expect(r.last.crsGrade).toBe(0);
  });
});

describe('section 1: the optional end of an episode (episodeEndsAfterHoursAtGrade0)', () => {
  const cfg = config({ episodeEndsAfterHoursAtGrade0: 12 });
  const masked = [enrol(P), febrile(0), msg(P, 30, { medications: [{ drug: 'tocilizumab' }] })];
  const afebrile = (m: number) => msg(P, m, { vitals: { temperatureC: 37 } });

  it('ends exactly the configured time after CRS 0 (at or after), and the waiver goes with it', () => {
    // CRS 0 from 25 h (the fever of 0 h left the window); 37 h is exactly 12 h later: the episode has ended, so
    // the low pair of 36 h and 37 h 5 min is without fever or waiver.
    const r = run([...masked, afebrile(25 * 60), bp(36 * 60, 84), afebrile(37 * 60), bp(37 * 60 + 5, 82)], cfg);
    expect(r.last.crsGrade).toBe(0);
  });

  it('time at CRS 1 is not time at CRS 0: a febrile patient is still in the episode', () => {
    // Section 1: the waiver holds "for the rest of the episode"; fevers at 0 h and 12 h, CRS 0 only from 36 h.
    const r = run(
      [...masked, febrile(12 * 60), afebrile(36 * 60 + 30), ...[bp(37 * 60, 84), bp(37 * 60 + 5, 82)]],
      cfg,
    );
    expect(r.last.crsGrade).toBe(2);
  });

  it('an enrolment sent again with the same infusedAt does not start a new episode', () => {
    // Section 1: "a new enrolment with a later `infusedAt` starts a new one": the same infusedAt is the same episode,
    // which has ended (12 h at CRS 0 from 25 h): no waiver afterwards.
    const again = enrol(P, 38 * 60, { weightKg: 72 });
    const r = run([...masked, afebrile(25 * 60), afebrile(38 * 60), again, bp(40 * 60, 84), bp(40 * 60 + 5, 82)], cfg);
    expect(r.last.crsGrade).toBe(0);
  });
});

describe('section 1: hypotension', () => {
  it.each([
    ['systolic < 90 twice', [bp(10, 89), bp(15, 88)], 2],
    ['MAP < 65 twice', [bp(10, 100, 64), bp(15, 100, 60)], 2],
    ['systolic 90 is not low', [bp(10, 90), bp(15, 90)], 1],
    ['MAP 65 is not low', [bp(10, 100, 65), bp(15, 100, 65)], 1],
    [
      'a MAP-only reading is judged on its MAP (no systolic is not a low systolic)',
      [mapOnly(10, 70), mapOnly(15, 72)],
      1,
    ],
    ['MAP-only readings below 65 twice', [mapOnly(10, 64), mapOnly(15, 60)], 2],
    ['one low reading alone is an artefact candidate', [bp(10, 70)], 1],
    ['low, normal, low never establishes it', [bp(10, 85), bp(15, 110), bp(20, 85)], 1],
    ['low, low, normal: one normal does not clear it', [bp(10, 85), bp(15, 84), bp(20, 110)], 2],
    ['low, low, normal, normal: cleared', [bp(10, 85), bp(15, 84), bp(20, 110), bp(25, 112)], 1],
  ] as const)('%s', (_name, readings, grade) => {
    expect(run([enrol(P), febrile(0), ...readings]).last.crsGrade).toBe(grade);
  });

  it('a vasopressor infusing is hypotension even without a low reading', () => {
    expect(
      run([enrol(P), febrile(0), msg(P, 5, { vasopressors: [{ drug: 'phenylephrine', dose: 50, unit: 'mcg/min' }] })])
        .last.crsGrade,
    ).toBe(3);
  });

  it('clears after two consecutive normal readings observed after the vasopressor stopped (1.1 item 3)', () => {
    const on = [
      bp(10, 80),
      bp(15, 82),
      msg(P, 16, { vasopressors: [{ drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' }] }),
      bp(30, 105),
      bp(35, 110),
    ];
    expect(run([enrol(P), febrile(0), ...on]).last.crsGrade).toBe(3); // still on the vasopressor
    // Rules 1.0 cleared it here; the normal readings were taken on the vasopressor and do not count.
    const stopped = [...on, msg(P, 40, { vasopressors: [] })];
    expect(run([enrol(P), febrile(0), ...stopped]).last.crsGrade).toBe(2);
    expect(run([enrol(P), febrile(0), ...stopped, bp(45, 108), bp(50, 112)]).last.crsGrade).toBe(1);
  });

  it('thresholds are configurable per deployment and per patient', () => {
    const cfg = config({ hypotension: { systolicBelow: 100, mapBelow: 65 } });
    expect(run([enrol(P), febrile(0), bp(10, 95), bp(15, 96)], cfg).last.crsGrade).toBe(2);
    const child = enrol(P, -60, { weightKg: 20, hypotension: { systolicBelow: 80 } });
    expect(run([child, febrile(0), bp(10, 85), bp(15, 84)]).last.crsGrade).toBe(1);
    expect(run([child, febrile(0), bp(10, 75), bp(15, 74)]).last.crsGrade).toBe(2);
  });

  it('a redelivered reading at the same instant cannot pair with itself', () => {
    const low = bp(10, 80);
    const again = { ...low, messageId: 'another-id-same-reading' };
    expect(run([enrol(P), febrile(0), low, again]).last.crsGrade).toBe(1);
  });
});

describe('section 1: oxygen, vasopressors, neuro and organ toxicity state', () => {
  it('oxygen for comfort never counts as hypoxia; room air means none', () => {
    expect(
      run([enrol(P), febrile(0), msg(P, 5, { oxygen: { device: 'simple_mask', forComfort: true } })]).last.crsGrade,
    ).toBe(1);
    expect(
      run([
        enrol(P),
        febrile(0),
        msg(P, 5, { oxygen: { device: 'simple_mask' } }),
        msg(P, 9, { oxygen: { device: 'room_air' } }),
      ]).last.crsGrade,
    ).toBe(1);
  });

  it('each vasopressors section is the complete set; [] stops all', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 5, {
        vasopressors: [
          { drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' },
          { drug: 'epinephrine', dose: 0.05, unit: 'mcg/kg/min' },
        ],
      }),
      msg(P, 10, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] }),
    ]);
    expect(r.assessments.map((a) => a.crsGrade)).toEqual([0, 1, 4, 3]);
    // After [] no vasopressor infuses; the hypotension it stood for stays until two normal readings (1.1 item 3).
    const stopped = [
      enrol(P),
      febrile(0),
      msg(P, 5, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] }),
      msg(P, 10, { vasopressors: [] }),
    ];
    expect(run(stopped).last.crsGrade).toBe(2);
    expect(run([...stopped, bp(20, 120), bp(25, 118)]).last.crsGrade).toBe(1);
  });

  it('neuro fields merge one by one: a field left out keeps its latest value (1.1 item 6; 1.0 counted it as normal)', () => {
    const r = run([
      enrol(P),
      msg(P, 0, { neuro: { iceScore: 4, consciousness: 'awakens_to_voice' } }),
      msg(P, 10, { neuro: { iceScore: 8 } }),
    ]);
    expect(r.last.icansGrade).toBe(2); // ICE 8 is grade 1, but the patient still awakens only to voice
  });
});

describe('section 2: ASTCT 2019 hypotension grades', () => {
  const lowPair = [bp(10, 82), bp(15, 80)];
  const vaso = (...drugs: ('norepinephrine' | 'epinephrine' | 'phenylephrine' | 'dopamine' | 'vasopressin')[]) =>
    msg(P, 20, {
      vasopressors: drugs.map((drug) => ({
        drug,
        dose: drug === 'vasopressin' ? 0.03 : 0.1,
        unit: drug === 'vasopressin' ? ('units/min' as const) : ('mcg/kg/min' as const),
      })),
    });

  it.each([
    ['present, no vasopressor', [] as const, 2],
    ['one non-vasopressin vasopressor', ['norepinephrine'] as const, 3],
    ['one non-vasopressin with vasopressin', ['norepinephrine', 'vasopressin'] as const, 3],
    ['vasopressin alone', ['vasopressin'] as const, 3],
    ['two non-vasopressin vasopressors', ['norepinephrine', 'phenylephrine'] as const, 4],
    ['three vasopressors', ['dopamine', 'epinephrine', 'vasopressin'] as const, 4],
  ])('%s -> grade %i', (_n, drugs, grade) => {
    const msgs = [enrol(P), febrile(0), ...lowPair];
    if (drugs.length > 0) msgs.push(vaso(...drugs));
    expect(run(msgs).last.crsGrade).toBe(grade);
  });
});

describe('section 2: ASTCT 2019 hypoxia grades', () => {
  it.each([
    ['blow_by', undefined, 2],
    ['nasal_cannula', 1, 2],
    ['nasal_cannula', 6, 2],
    ['nasal_cannula', 6.5, 3],
    ['high_flow_nasal_cannula', 40, 3],
    ['simple_mask', undefined, 3],
    ['non_rebreather', 15, 3],
    ['venturi', undefined, 3],
    ['cpap', undefined, 4],
    ['bipap', undefined, 4],
    ['mechanical_ventilation', undefined, 4],
    ['room_air', undefined, 1],
  ] as const)('%s at %s L/min -> grade %i', (device, flowLpm, grade) => {
    const oxygen = flowLpm === undefined ? { device } : { device, flowLpm };
    expect(run([enrol(P), febrile(0), msg(P, 5, { oxygen })]).last.crsGrade).toBe(grade);
  });

  it('a nasal cannula with no flow documented is graded low-flow by default, and says so', () => {
    const r = run([enrol(P), febrile(0), msg(P, 5, { oxygen: { device: 'nasal_cannula' } })]);
    expect(r.last.crsGrade).toBe(2);
    expect(r.last.reasons.map((x) => x.text).join(' ')).toContain('flow not documented');
    expect(
      run(
        [enrol(P), febrile(0), msg(P, 5, { oxygen: { device: 'nasal_cannula' } })],
        config({ nasalCannulaUnknownFlow: 'high' }),
      ).last.crsGrade,
    ).toBe(3);
  });

  it('the grade is the worst of hypotension and hypoxia', () => {
    const r = run([enrol(P), febrile(0), bp(5, 80), bp(10, 80), msg(P, 12, { oxygen: { device: 'bipap' } })]);
    expect(r.last.crsGrade).toBe(4);
  });

  it('organ toxicities do not change the ASTCT grade', () => {
    expect(run([enrol(P), febrile(0), msg(P, 5, { organToxicity: { maxCtcaeGrade: 4 } })]).last.crsGrade).toBe(1);
  });

  it('never computes grade 5', () => {
    const r = run([
      enrol(P),
      febrile(0),
      msg(P, 5, {
        oxygen: { device: 'mechanical_ventilation' },
        vasopressors: [
          { drug: 'norepinephrine', dose: 1, unit: 'mcg/kg/min' },
          { drug: 'epinephrine', dose: 1, unit: 'mcg/kg/min' },
        ],
      }),
    ]);
    expect(r.last.crsGrade).toBe(4);
    expect(pages(r)).toEqual(['escalation crs 0->1 hematology', 'escalation crs 1->4 hematology+icu']);
  });
});

describe('clauses pinned by the rules audit', () => {
  it.each([
    // Section 2: "`nasal_cannula` with flow <= 6 L/min" is grade 2, "`nasal_cannula` > 6 L/min" grade 3: just outside.
    [{}, 6, 2],
    [{}, 6.01, 3],
    // The limit is configuration (lowFlowMaxLpm), inclusive at its value.
    [{ lowFlowMaxLpm: 4 }, 4, 2],
    [{ lowFlowMaxLpm: 4 }, 4.01, 3],
  ] as const)('nasal cannula under %o at %s L/min -> grade %i', (overrides, flowLpm, grade) => {
    const oxygen = { device: 'nasal_cannula' as const, flowLpm };
    expect(run([enrol(P), febrile(0), msg(P, 5, { oxygen })], config(overrides)).last.crsGrade).toBe(grade);
  });

  it.each(['bipap', 'non_rebreather', 'high_flow_nasal_cannula'] as const)(
    'oxygen for comfort never counts as hypoxia, whatever the device (%s)',
    (device) => {
      // Section 1: "`forComfort: true` means oxygen given for comfort, which never counts as hypoxia".
      const r = run([enrol(P), febrile(0), msg(P, 5, { oxygen: { device, forComfort: true } })]);
      expect(r.last.crsGrade).toBe(1);
      expect(r.last.reasons.map((x) => x.criterion)).not.toContain('oxygen');
    },
  );
});

// What Stryker's mutants of grading.ts left alive (docs/testing.md, 2026-12-07).
describe('pinned by a mutation run: fever reasons, blow-by, an episode ended before the infusion', () => {
  const feverReasons = (...temps: [number, number][]) =>
    run([enrol(P), ...temps.map(([m, c]) => febrile(m, c))])
      .last.reasons.filter((r) => r.criterion.startsWith('fever'))
      .map((r) => r.text);

  it('the reasons name the latest fever and, when higher, the peak of the window (the latest of equal peaks)', () => {
    expect(feverReasons([0, 38.4], [10, 39.4], [20, 38.6])).toEqual([
      'fever 38.6 °C at 2026-01-10T08:20:00Z',
      'peak 39.4 °C in the fever window at 2026-01-10T08:10:00Z',
    ]);
    expect(feverReasons([0, 39.1], [10, 39.1], [20, 38.5])).toEqual([
      'fever 38.5 °C at 2026-01-10T08:20:00Z',
      'peak 39.1 °C in the fever window at 2026-01-10T08:10:00Z',
    ]);
    // A latest fever as high as any: no peak besides it.
    expect(feverReasons([0, 38.5], [10, 38.5])).toEqual(['fever 38.5 °C at 2026-01-10T08:10:00Z']);
  });

  it('CRS 0 without fever says so, as a criterion not met', () => {
    const a = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 37.2 } })]).last;
    expect(a.reasons).toEqual([
      expect.objectContaining({
        criterion: 'no-fever',
        value: false,
        text: 'CRS entry criterion not met: no temperature >= 38 °C in the last 24 h at 2026-01-10T08:00:00Z',
      }),
    ]);
  });

  it.each([
    ['a documented flow', { device: 'blow_by', flowLpm: 10 }, config()],
    ['nasalCannulaUnknownFlow "high"', { device: 'blow_by' }, config({ nasalCannulaUnknownFlow: 'high' })],
  ] as const)('blow-by is grade 2 whatever its flow (%s)', (_n, oxygen, cfg) => {
    // Section 3: grade 2 is "`blow_by`"; the flow rule is the nasal cannula's.
    const a = run([enrol(P), febrile(0), msg(P, 5, { oxygen })], cfg).last;
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.find((r) => r.criterion === 'oxygen')!.text).not.toContain('flow not documented');
  });

  it('a premedication charted after the fever it came before waives nothing, in either arrival order', () => {
    // Section 4: "Medication before the onset (premedication) does not waive fever". Acetaminophen at 07:30, the
    // first fever at 08:00; the next day, afebrile, two low readings: CRS 0 whichever of the two arrived first.
    const premed = msg(P, -30, { medications: [{ drug: 'acetaminophen' }] });
    const hypotensive = [bp(26 * 60, 84), bp(26 * 60 + 5, 82)];
    for (const course of [
      [enrol(P), febrile(0), premed, ...hypotensive],
      [enrol(P), premed, febrile(0), ...hypotensive],
    ]) {
      const a = run(course).last;
      expect(a.crsGrade).toBe(0);
      expect(a.reasons.some((x) => x.criterion === 'fever-waiver')).toBe(false);
    }
  });

  it('a masking medication charted late, after a later fever arrived, follows the fever before it', () => {
    // Section 4: "A masking medication charted late, after a later fever arrived, follows the fever before it too".
    // Fevers at 08:00 and 10:00, tocilizumab at 09:00 charted after both; the next day two low readings: CRS 2.
    const late = msg(P, 60, { medications: [{ drug: 'tocilizumab' }] });
    const a = run([enrol(P), febrile(0), febrile(120), late, bp(26 * 60 + 120, 84), bp(26 * 60 + 125, 82)]).last;
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.find((x) => x.criterion === 'fever-waiver')!.text).toContain(
      'given on or after a fever of the episode (2026-01-10T08:00:00Z) at 2026-01-10T09:00:00Z',
    );
  });

  it('a fever corrected away at its instant is no fever a masking drug can follow', () => {
    // Section 1: "a febrile temperature corrected at its instant no longer counts"; section 4: the waiver needs a
    // fever of the episode before the medication. 38.6 °C at 08:00 corrected to 36.9 °C, tocilizumab at 09:00, the
    // next day two low readings: no fever, no waiver, CRS 0.
    const toci = msg(P, 60, { medications: [{ drug: 'tocilizumab' }] });
    const a = run([enrol(P), febrile(0, 38.6), febrile(0, 36.9), toci, bp(26 * 60, 84), bp(26 * 60 + 5, 82)]).last;
    expect(a.crsGrade).toBe(0);
  });

  it('an episode with no fever yet does not end at CRS 0: a fever charted late is still of it', () => {
    // Section 4: "Only an episode that has had a fever ends this way". Three hours at CRS 0 (end after 2 h), then
    // a 09:00 fever charted late, tocilizumab at 11:20, the next day two low readings: the waiver holds, CRS 2.
    const cfg = config({ episodeEndsAfterHoursAtGrade0: 2 });
    const afebrile = (m: number) => msg(P, m, { vitals: { temperatureC: 37 } });
    const toci = msg(P, 200, { medications: [{ drug: 'tocilizumab' }] });
    const course = [enrol(P), afebrile(0), afebrile(180), febrile(60), toci, bp(26 * 60, 84), bp(26 * 60 + 5, 82)];
    expect(run(course, cfg).last.crsGrade).toBe(2);
  });

  it('an episode ended at CRS 0 before any enrolment does not reach back past the infusion that follows', () => {
    // Section 4: the episode starts at infusedAt; "fevers before the episode start do not count" for the waiver.
    // A fever before any enrolment ends that first episode after 24 h at CRS 0 (episodeEndsAfterHoursAtGrade0);
    // then a fever, the infusion an hour later, tocilizumab, and the next day two low readings: no fever of the
    // episode was masked, so CRS 0 (taking the end as the start, the fever before the infusion waived: CRS 2).
    const cfg = config({ episodeEndsAfterHoursAtGrade0: 24 });
    const H = 60;
    const r = run(
      [
        febrile(0),
        msg(P, 24 * H + 1, { vitals: { temperatureC: 37 } }),
        msg(P, 48 * H + 2, { vitals: { temperatureC: 37 } }), // 24 h at CRS 0: the episode ends
        febrile(48 * H + 30, 38.6),
        enrol(P, 49 * H, { infusedAt: '2026-01-12T09:00:00Z' }),
        msg(P, 49 * H + 30, { medications: [{ drug: 'tocilizumab' }] }),
        bp(73 * H, 84),
        bp(73 * H + 15, 82),
      ],
      cfg,
    );
    expect(r.last.crsGrade).toBe(0);
    expect(r.last.reasons.some((x) => x.criterion === 'fever-waiver')).toBe(false);
  });
});
