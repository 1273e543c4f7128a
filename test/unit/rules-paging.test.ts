// crs-rules.md sections 5, 6 and 7: who is paged and when, what a page carries, and the device codes.
import { describe, expect, it } from 'vitest';
import { LOINC, LOINC_BP_PANEL, MDC, MDC_UNITS } from '#domain/codes.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';

const P = 'R1';
const temp = (m: number, c: number) => msg(P, m, { vitals: { temperatureC: c } });
const oxygen = (m: number, device: 'room_air' | 'nasal_cannula' | 'non_rebreather' | 'bipap', flowLpm?: number) =>
  msg(P, m, { oxygen: flowLpm === undefined ? { device } : { device, flowLpm } });
const neuro = (m: number, iceScore: number) => msg(P, m, { neuro: { iceScore } });

describe('section 5: routing', () => {
  it.each([
    [[oxygen(5, 'room_air')], 'escalation crs 0->1 hematology'],
    [[oxygen(5, 'nasal_cannula', 2)], 'escalation crs 1->2 hematology'],
    [[oxygen(5, 'non_rebreather')], 'escalation crs 1->3 hematology+icu'],
    [[oxygen(5, 'bipap')], 'escalation crs 1->4 hematology+icu'],
  ])('CRS pages %#', (rest, last) => {
    expect(pages(run([enrol(P), temp(0, 39), ...rest])).at(-1)).toBe(last);
  });

  it.each([
    [8, 'escalation icans 0->1 hematology+neurology'],
    [5, 'escalation icans 0->2 hematology+neurology+radiology'],
    [1, 'escalation icans 0->3 hematology+neurology+radiology+icu'],
  ])('ICANS with ICE %i pages %s', (ice, page) => {
    expect(pages(run([enrol(P), neuro(0, ice)]))).toEqual([page]);
  });

  it('ICANS 4 pages hematology, neurology, radiology and ICU', () => {
    expect(pages(run([enrol(P), msg(P, 0, { neuro: { consciousness: 'unarousable' } })]))).toEqual([
      'escalation icans 0->4 hematology+neurology+radiology+icu',
    ]);
  });

  it('routing is configuration', () => {
    const cfg = config({ routing: { crs: [['icu'], ['icu'], ['icu'], ['icu']] } });
    expect(pages(run([enrol(P), temp(0, 39)], cfg))).toEqual(['escalation crs 0->1 icu']);
  });
});

describe('section 5: escalation and de-escalation', () => {
  const course = [enrol(P), temp(0, 39), oxygen(5, 'non_rebreather')];

  it('escalates at once, to the teams of the new grade', () => {
    expect(pages(run(course))).toEqual(['escalation crs 0->1 hematology', 'escalation crs 1->3 hematology+icu']);
  });

  it('de-escalates once the grade has stayed below for the hold time, to the teams paged at the notified grade', () => {
    const r = run([...course, oxygen(10, 'room_air'), temp(40, 37), temp(69, 37), temp(70, 37), temp(90, 37)]);
    expect(pages(r)).toEqual([
      'escalation crs 0->1 hematology',
      'escalation crs 1->3 hematology+icu',
      'de-escalation crs 3->1 hematology+icu',
    ]);
    expect(r.notifications.at(-1)!.at).toBe('2026-01-10T09:10:00Z');
  });

  it('a second stand-down, to 0, goes to the same teams as the first (pinned by a mutation run)', () => {
    // "The stand-down goes to everyone paged at the notified grade; they stay the audience until it is 0."
    const r = run([
      ...course,
      oxygen(10, 'room_air'),
      temp(70, 37),
      temp(24 * 60 + 1, 37), // the 08:00 fever has left the 24 h window: CRS 0
      temp(25 * 60 + 2, 37),
    ]);
    expect(pages(r)).toEqual([
      'escalation crs 0->1 hematology',
      'escalation crs 1->3 hematology+icu',
      'de-escalation crs 3->1 hematology+icu',
      'de-escalation crs 1->0 hematology+icu',
    ]);
  });

  it('going down and back up within the hold time sends nothing', () => {
    const r = run([
      ...course,
      oxygen(10, 'room_air'),
      oxygen(40, 'non_rebreather'),
      oxygen(60, 'room_air'),
      temp(100, 37),
    ]);
    expect(pages(r)).toEqual(['escalation crs 0->1 hematology', 'escalation crs 1->3 hematology+icu']);
  });

  it('the hold runs from when the grade first fell below, even if it rises part way', () => {
    const r = run([...course, oxygen(10, 'room_air'), oxygen(30, 'nasal_cannula', 2), temp(70, 38.5)]);
    expect(pages(r).at(-1)).toBe('de-escalation crs 3->2 hematology+icu');
  });

  it('the hold time is configuration', () => {
    const r = run([...course, oxygen(10, 'room_air'), temp(20, 37)], config({ holdMinutes: 10 }));
    expect(pages(r).at(-1)).toBe('de-escalation crs 3->1 hematology+icu');
  });

  it('de-escalates down to 0 once, then re-escalates from 0', () => {
    const r = run([enrol(P), neuro(0, 5), neuro(10, 10), neuro(70, 10), neuro(200, 10), neuro(210, 8)]);
    expect(pages(r)).toEqual([
      'escalation icans 0->2 hematology+neurology+radiology',
      'de-escalation icans 2->0 hematology+neurology+radiology',
      'escalation icans 0->1 hematology+neurology',
    ]);
  });

  it('a duplicate message changes nothing and sends nothing; a reused id with other content is applied (1.1 item 8)', () => {
    const m = temp(0, 39);
    const r = run([enrol(P), m, { ...m }, { ...m, vitals: { temperatureC: 36 } }]);
    expect(r.duplicates).toBe(1);
    expect(r.assessments).toHaveLength(3);
    // Rules 1.0 dropped the third as a duplicate of its id; it is a correction of the same instant.
    expect(r.last.crsGrade).toBe(0);
    expect(pages(r)).toEqual(['escalation crs 0->1 hematology']);
  });
});

describe('section 6: what a page carries', () => {
  const page = (msgs: Parameters<typeof run>[0], cfg?: Parameters<typeof run>[1]) =>
    run(msgs, cfg).notifications.at(-1)!;

  it('patient id and bed, never a name; condition, grades, scheme, reasons with values and times, day, provisional', () => {
    const n = page([enrol(P), temp(0, 39.4), oxygen(5, 'nasal_cannula', 4)]);
    expect(n).toMatchObject({
      patientId: P,
      bed: 'H4-R1',
      ward: 'H4',
      condition: 'crs',
      kind: 'escalation',
      fromGrade: 1,
      toGrade: 2,
      scheme: 'astct2019',
      dayPostInfusion: 2,
      provisional: true,
    });
    expect(n.reasons.map((r) => [r.criterion, r.value, r.at])).toEqual([
      ['fever', 39.4, '2026-01-10T08:00:00Z'],
      ['oxygen', 'nasal cannula 4 L/min', '2026-01-10T08:05:00Z'],
    ]);
    expect(n.summary).toMatch(
      /^PROVISIONAL CRS grade 2 \(was 1; ASTCT 2019\), patient R1, bed H4-R1, day \+2: fever 39.4 °C/,
    );
    expect(n.summary).toContain('confirm at bedside');
  });

  // Each grade's whole list, then the tocilizumab advice: one action per grade passed a page for CRS 3 or 4 that
  // left out the transfer to ICU.
  it.each([
    [
      [temp(0, 39)],
      1,
      ['Supportive care; infection work-up.', 'Consider tocilizumab if fever persists or comorbidities.'],
    ],
    [
      [temp(0, 39), oxygen(5, 'nasal_cannula', 3)],
      2,
      [
        'Tocilizumab.',
        'Fluids, oxygen.',
        'Dexamethasone 10 mg IV q6h if hypotension persists after 1-2 doses of tocilizumab.',
      ],
    ],
    [
      [temp(0, 39), oxygen(5, 'non_rebreather')],
      3,
      ['Transfer to ICU.', 'Tocilizumab (if the caps allow) plus dexamethasone 10 mg IV q6h.'],
    ],
    [
      [temp(0, 39), oxygen(5, 'bipap')],
      4,
      [
        'ICU; ventilation as needed.',
        'Tocilizumab (if the caps allow).',
        'High-dose methylprednisolone.',
        'Consider siltuximab or anakinra if refractory.',
      ],
    ],
  ])('CRS actions by grade %#', (rest, grade, actions) => {
    const n = page([enrol(P), ...rest]);
    expect(n.toGrade).toBe(grade);
    expect(n.actions).toEqual([...actions, n.tocilizumab.text]);
  });

  it.each([
    [70, 560, false],
    [120, 800, true], // 960 mg capped at 800
    [25, 300, false], // 12 mg/kg under 30 kg
  ])('tocilizumab for %i kg is %i mg (capped: %s)', (weightKg, doseMg, capped) => {
    const n = page([enrol(P, -60, { weightKg }), temp(0, 39)]);
    expect(n.tocilizumab).toMatchObject({ doseMg, weightKg, capped, anotherAllowed: true, givenTotal: 0 });
    expect(n.actions.join(' ')).toContain(`Tocilizumab ${doseMg} mg IV`);
    // None given yet reads so (until 2026-12-06: "0 doses given (0 in 24 h); another dose is allowed now").
    expect(n.tocilizumab.text).toMatch(
      /; no dose given yet; a dose is allowed now \(at most 3 in 24 h, 4 in total\)\.$/,
    );
  });

  it('counts the doses already given and applies the 24 h and total caps', () => {
    const dose = (m: number) => msg(P, m, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] });
    const escalateAt = (m: number) => [oxygen(m, 'non_rebreather')];
    // Three doses in the last 24 h: no further dose allowed.
    const three = page([
      enrol(P),
      temp(0, 39),
      dose(10),
      dose(8 * 60 + 10),
      dose(16 * 60 + 10),
      ...escalateAt(17 * 60),
    ]);
    expect(three.tocilizumab).toMatchObject({ givenTotal: 3, given24h: 3, anotherAllowed: false });
    expect(three.tocilizumab.text).toContain('no further dose allowed: 3 in 24 h reached');
    // One dose 2 h ago: allowed, but not before the 8 h repeat interval.
    const one = page([enrol(P), temp(0, 39), dose(60), ...escalateAt(180)]);
    expect(one.tocilizumab).toMatchObject({
      givenTotal: 1,
      given24h: 1,
      anotherAllowed: true,
      notBefore: '2026-01-10T17:00:00Z',
    });
    // Four doses in total: the total cap.
    const day = 24 * 60;
    const four = page([
      enrol(P),
      temp(0, 39),
      dose(10),
      dose(day),
      dose(2 * day),
      dose(2 * day + 600),
      temp(3 * day, 39),
      ...escalateAt(3 * day + 10),
    ]);
    expect(four.tocilizumab).toMatchObject({ givenTotal: 4, anotherAllowed: false });
    expect(four.tocilizumab.text).toContain('4 in total reached');
  });

  it('"4 in total" counts the stay by default, or each episode (a BiTE step-up dose) with totalPer "episode"', () => {
    const dose = (m: number) => msg(P, m, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] });
    const day = 24 * 60;
    // Four doses after the first step-up dose (infused 2026-01-08T08:00Z), a second step-up three days later, and a
    // fever in its episode.
    const course = [
      enrol(P),
      temp(0, 39),
      dose(10),
      dose(day),
      dose(day + 600),
      dose(2 * day),
      enrol(P, 3 * day, { infusedAt: '2026-01-13T08:00:00Z' }),
      temp(3 * day + 60, 39.2),
      oxygen(3 * day + 70, 'non_rebreather'),
    ];
    const stay = page(course);
    expect(stay.tocilizumab).toMatchObject({ givenTotal: 4, given24h: 0, anotherAllowed: false });
    expect(stay.tocilizumab.text).toContain('4 doses given (0 in 24 h); no further dose allowed: 4 in total reached');
    const episode = page(course, config({ tocilizumab: { totalPer: 'episode' } }));
    expect(episode.tocilizumab).toMatchObject({ givenTotal: 0, given24h: 0, anotherAllowed: true, notBefore: null });
    expect(episode.tocilizumab.text).toMatch(
      /; 0 doses given this episode \(0 in 24 h, 4 in all\); another dose is allowed now \(at most 3 in 24 h, 4 this episode\)\.$/,
    );
    // The 24 h cap and the repeat interval still count the doses of the episode before (the drug is still there):
    // three doses at 0, 8 and 16 h, a step-up dose at 18 h, and a fever in its episode.
    const close = page(
      [
        enrol(P),
        temp(0, 39),
        dose(0),
        dose(480),
        dose(960),
        enrol(P, 1080, { infusedAt: '2026-01-11T02:00:00Z' }),
        temp(1140, 39.2),
        oxygen(1150, 'non_rebreather'),
      ],
      config({ tocilizumab: { totalPer: 'episode' } }),
    );
    expect(close.tocilizumab).toMatchObject({ givenTotal: 0, given24h: 3, anotherAllowed: false });
    expect(close.tocilizumab.text).toContain('no further dose allowed: 3 in 24 h reached');
  });

  it('without a weight the dose is not computed, and the page says so', () => {
    const n = page([
      msg(P, -60, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed: 'B1' } }),
      temp(0, 39),
    ]);
    expect(n.tocilizumab.doseMg).toBeNull();
    expect(n.tocilizumab.text).toContain('dose not computed, no enrolment weight');
  });

  it('ICANS actions: consult; imaging, EEG and dexamethasone from grade 2; ICU from 3; caution without CRS', () => {
    expect(page([enrol(P), neuro(0, 8)]).actions).toEqual([
      'Neurology consult.',
      'Caution with repeated tocilizumab: ICANS is present without CRS.',
    ]);
    const g3 = page([enrol(P), temp(0, 39), neuro(5, 2)]);
    expect(g3.actions).toEqual(['Neurology consult.', 'MRI/CT and EEG.', 'Dexamethasone.', 'Transfer to ICU.']);
  });

  it('bispecific therapy: interrupt the infusion from grade 2', () => {
    const bite = enrol(P, -60, { therapy: 'bispecific', product: 'blinatumomab' });
    expect(page([bite, temp(0, 39)]).actions.join(' ')).not.toContain('interrupt');
    expect(page([bite, temp(0, 39), oxygen(5, 'nasal_cannula', 2)]).actions.join(' ')).toContain(
      'interrupt the infusion',
    );
    expect(page([bite, neuro(0, 5)]).actions.join(' ')).toContain('interrupt the infusion');
  });

  it('Lee 2014 pages say when FiO2 was estimated', () => {
    const n = page([enrol(P), temp(0, 39), oxygen(5, 'non_rebreather')], config({ scheme: 'lee2014' }));
    expect(n.summary).toContain('FiO2 estimated 0.6 from the device');
    expect(n.summary).toContain('Lee 2014');
  });

  it('notification ids are the same when the same messages are graded again, and never made from a messageId', () => {
    const timeline = [enrol(P), temp(0, 39)];
    const a = page(timeline);
    const b = page(timeline);
    expect(a.notificationId).toBe(b.notificationId);
    expect(a.notificationId).toBe(`crs|${P}|#2`); // the patient's second applied message
    expect(a.causedBy).toBe(timeline[1]!.messageId);
  });
});

describe('section 7: device codes', () => {
  it('pins FiO2 and oxygen flow, which are often swapped', () => {
    expect(LOINC['3150-0']).toBe('oxygen.fio2');
    expect(LOINC['3151-8']).toBe('oxygen.flowLpm');
  });
  it('maps the LOINC vital signs', () => {
    expect(LOINC).toMatchObject({
      '8310-5': 'vitals.temperatureC',
      '8867-4': 'vitals.heartRate',
      '9279-1': 'vitals.respiratoryRate',
      '2708-6': 'vitals.spo2',
      '59408-5': 'vitals.spo2',
      '8480-6': 'vitals.systolicBP',
      '8462-4': 'vitals.diastolicBP',
      '8478-0': 'vitals.meanArterialPressure',
    });
    expect(LOINC_BP_PANEL).toBe('85354-9');
  });
  it('maps the IEEE 11073 MDC codes and units', () => {
    expect(MDC).toEqual({
      150456: 'vitals.spo2',
      150021: 'vitals.systolicBP',
      150022: 'vitals.diastolicBP',
      150023: 'vitals.meanArterialPressure',
      149546: 'vitals.heartRate',
      151562: 'vitals.respiratoryRate',
      150344: 'vitals.temperatureC',
    });
    expect(MDC_UNITS).toEqual({ 266016: 'mmHg', 264864: 'beats/min' });
  });
});

describe('clauses pinned by the rules audit', () => {
  const page = (msgs: Parameters<typeof run>[0]) => run(msgs).notifications.at(-1)!;

  it.each([
    // Section 6: "Tocilizumab 8 mg/kg IV (12 mg/kg if weight < 30 kg), at most 800 mg per dose".
    [29.9, 12, 359, false],
    [30, 8, 240, false],
    [100, 8, 800, false],
    [100.1, 8, 800, true],
  ])('tocilizumab for %s kg: %i mg/kg, %i mg (capped: %s)', (weightKg, mgPerKg, doseMg, capped) => {
    const n = page([enrol(P, -60, { weightKg }), temp(0, 39)]);
    expect(n.tocilizumab).toMatchObject({ weightKg, mgPerKg, doseMg, capped });
  });

  it('ICANS 2 actions: imaging, EEG and dexamethasone from grade 2, ICU not before grade 3', () => {
    // Section 6: "MRI/CT and EEG at grade >= 2; dexamethasone at grade >= 2; ICU at grade >= 3".
    expect(page([enrol(P), temp(0, 39), neuro(5, 6)]).actions).toEqual([
      'Neurology consult.',
      'MRI/CT and EEG.',
      'Dexamethasone.',
    ]);
  });

  it('ICANS 4 actions include the ICU, and caution without CRS', () => {
    expect(page([enrol(P), msg(P, 0, { neuro: { consciousness: 'unarousable' } })]).actions).toEqual([
      'Neurology consult.',
      'MRI/CT and EEG.',
      'Dexamethasone.',
      'Transfer to ICU.',
      'Caution with repeated tocilizumab: ICANS is present without CRS.',
    ]);
  });
});

describe('clauses pinned by the rules audit: the tocilizumab 24 h cap', () => {
  // Section 6: "at most 3 doses in 24 h"; docs/grading-rules.md section 14: the 24 h before the patient clock, the
  // dose exactly 24 h before no longer in it (8-hourly dosing: 0, 8, 16 h, then 24 h).
  const dose = (m: number) => msg(P, m, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] });
  const at = (m: number) =>
    run([
      enrol(P),
      temp(0, 39),
      dose(0),
      dose(8 * 60),
      dose(16 * 60),
      temp(m - 1, 39),
      oxygen(m, 'non_rebreather'),
    ]).notifications.at(-1)!.tocilizumab;

  it('a minute before 24 h after the first dose: 3 in 24 h, no further dose', () => {
    expect(at(24 * 60 - 1)).toMatchObject({ givenTotal: 3, given24h: 3, anotherAllowed: false });
  });

  it('exactly 24 h after the first dose: it has left the 24 h, another is allowed now', () => {
    expect(at(24 * 60)).toMatchObject({ givenTotal: 3, given24h: 2, anotherAllowed: true, notBefore: null });
  });
});
