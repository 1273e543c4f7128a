// Combined courses a clinician would recognise, from a differential walk of crs-rules.md sections 1-6 (2026-12-06):
// BiTE step-up dosing with repeated short episodes, tocilizumab with dexamethasone, every ICANS domain changing while
// another stays, blood-pressure readings interleaved with other vitals, and a de-escalation hold that restarts.
// Each quotes the clause it pins; the single-threshold cases live in rules-boundaries and rules-lee-icans.
import { describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { pages, run } from '#test/support/run.ts';

const P = 'CLIN';
const H = 60; // minutes
const temp = (m: number, temperatureC: number) => msg(P, m, { vitals: { temperatureC } });
const sys = (m: number, systolicBP: number) => msg(P, m, { vitals: { systolicBP } });
const given = (m: number, ...drugs: ('tocilizumab' | 'dexamethasone' | 'acetaminophen')[]) =>
  msg(P, m, { medications: drugs.map((drug) => ({ drug, doseMg: drug === 'tocilizumab' ? 560 : 10 })) });
const norepi = (m: number) => msg(P, m, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] });
const neuro = (m: number, fields: NonNullable<DeviceMessage['neuro']>) => msg(P, m, { neuro: fields });
const crs = (msgs: DeviceMessage[]) => run(msgs).last.crsGrade;
const icans = (msgs: DeviceMessage[]) => run(msgs).assessments.map((a) => a.icansGrade);

describe('BiTE step-up dosing: each dose starts an episode (section 1, "a new enrolment with a later infusedAt")', () => {
  // Step-up 1 infused at T0 (08:00), step-up 2 three days later; each with dexamethasone and acetaminophen premedication.
  const stepUp = (m: number) =>
    enrol(P, m, {
      therapy: 'bispecific',
      product: 'teclistamab',
      infusedAt: new Date(Date.parse('2026-01-10T08:00:00Z') + m * 60_000).toISOString(),
    });
  const firstDose = [
    stepUp(0),
    given(-30, 'dexamethasone', 'acetaminophen'),
    temp(6 * H, 38.6),
    given(7 * H, 'acetaminophen'),
  ];
  const secondDose = [given(72 * H - 30, 'dexamethasone', 'acetaminophen'), stepUp(72 * H)];

  it("premedication for the next dose waives nothing: that episode's afebrile hypotension is CRS 0", () => {
    // "Medication given before that time (premedication) does not waive fever": its own fever at 78 h has none after.
    const course = [...firstDose, ...secondDose, temp(78 * H, 38.3), sys(104 * H, 85), sys(105 * H, 85)];
    expect(crs(course)).toBe(0);
    // A masking drug after that episode's own fever waives it again: CRS 2.
    expect(crs([...course.slice(0, -2), given(79 * H, 'acetaminophen'), sys(104 * H, 85), sys(105 * H, 85)])).toBe(2);
  });

  it('the waiver of the previous dose does not carry over, but its fever still counts while in the window', () => {
    // "Fever: any temperature >= 38.0 °C observed within the fever window": not bound to the episode.
    const close = [stepUp(0), temp(12 * H, 38.6), given(13 * H, 'acetaminophen'), stepUp(24 * H)];
    expect(crs([...close, sys(25 * H, 85), sys(26 * H, 85)])).toBe(2); // the 20:00 fever is 14 h old
    expect(crs([...close, sys(37 * H, 85), sys(38 * H, 85)])).toBe(0); // 26 h old: no fever, no waiver
  });

  it('an enrolment observed later with the older infusedAt (an EHR snapshot) moves the start back', () => {
    // docs/grading-rules.md section 4: "current" is the infusedAt with the latest observedAt.
    const lows = [sys(102 * H, 85), sys(103 * H, 85)];
    const course = [stepUp(0), temp(6 * H, 38.6), given(7 * H, 'acetaminophen'), stepUp(72 * H)];
    expect(crs([...course, ...lows])).toBe(0);
    const snapshot = enrol(P, 73 * H, {
      therapy: 'bispecific',
      product: 'teclistamab',
      infusedAt: '2026-01-10T08:00:00Z',
    });
    expect(crs([...course, snapshot, ...lows])).toBe(2);
  });

  it('a fever at the very instant of the step-up infusion is of the new episode', () => {
    const course = [...firstDose, ...secondDose, temp(72 * H, 38.4), given(73 * H, 'acetaminophen')];
    expect(crs([...course, sys(100 * H, 85), sys(101 * H, 85)])).toBe(2);
  });
});

describe('tocilizumab with dexamethasone (sections 1 and 6)', () => {
  it('both charted in one message after the fever: afebrile on norepinephrine the next day is CRS 3, paged with the ICU', () => {
    const r = run([enrol(P), temp(0, 39.1), given(30, 'tocilizumab', 'dexamethasone'), norepi(26 * H)]);
    expect(r.last.crsGrade).toBe(3);
    const last = r.notifications.at(-1)!;
    expect(last.teams).toEqual(['hematology', 'icu']);
    expect(last.reasons.map((x) => x.criterion)).toEqual(['fever-waiver', 'vasopressor']);
    expect(last.reasons[0]!.text).toContain('(tocilizumab, dexamethasone)');
    expect(last.tocilizumab).toMatchObject({ givenTotal: 1, given24h: 0, anotherAllowed: true, notBefore: null });
  });
});

describe('hypotension: "two consecutive blood-pressure readings" (section 1)', () => {
  it.each([
    ['a temperature between two lows', 2, { temperatureC: 38.6 }],
    ['a heart rate between two lows', 2, { heartRate: 120 }],
    ['a diastolic pressure alone between two lows (no systolic, no MAP: no reading)', 2, { diastolicBP: 40 }],
    ['a normal systolic between two lows', 1, { systolicBP: 100 }],
  ] as const)('%s: CRS %i', (_, grade, vitals) => {
    expect(crs([enrol(P), temp(0, 39), sys(60, 85), msg(P, 90, { vitals }), sys(120, 85)])).toBe(grade);
  });

  it.each([
    ['L L N: still on', [85, 85, 100], 2],
    ['L L N L: still on (no two consecutive normal readings)', [85, 85, 100, 85], 2],
    ['L L N L N N: cleared', [85, 85, 100, 85, 100, 100], 1],
    ['L L N N L: one low after clearing is an artefact candidate', [85, 85, 100, 100, 85], 1],
    ['L L N N L L: on again', [85, 85, 100, 100, 85, 85], 2],
  ])('%s', (_, systolics, grade) => {
    expect(crs([enrol(P), temp(0, 39), ...systolics.map((s, i) => sys(10 * (i + 1), s))])).toBe(grade);
  });
});

describe('ICANS: "the most severe domain", one domain changing while another stays (section 4)', () => {
  it('every domain together, then each changed in turn', () => {
    const course = [
      enrol(P),
      neuro(0, { iceScore: 5, consciousness: 'awakens_to_voice', seizure: 'self_limited', cerebralEdema: 'focal' }),
      neuro(10, { motorWeakness: true }), // 4
      neuro(20, { motorWeakness: false }), // back to the seizure and focal oedema: 3
      neuro(30, { seizure: 'none' }), // focal oedema still: 3
      neuro(40, { cerebralEdema: 'none' }), // ICE 5 and awakens to voice: 2
      neuro(50, { consciousness: 'alert' }), // ICE 5 alone: 2
      neuro(60, { iceScore: 9 }), // 1
      neuro(70, { cerebralEdema: 'diffuse' }), // 4 with ICE 9 unchanged
      neuro(80, { iceScore: 10 }), // the oedema stays: 4
      neuro(90, { cerebralEdema: 'none' }), // ICE 10, alert: 0
    ];
    expect(icans(course)).toEqual([0, 3, 4, 3, 3, 2, 2, 1, 4, 4, 0]);
  });
});

describe('de-escalation: "the grade has stayed below the notified grade for at least the hold time" (section 5)', () => {
  it('back at the notified grade ends the hold: a later fall is held 60 min from itself', () => {
    const o2 = (m: number, device: 'blow_by' | 'room_air') => msg(P, m, { oxygen: { device } });
    const pulse = (m: number) => msg(P, m, { vitals: { heartRate: 80 } });
    const course = [enrol(P), temp(0, 39), o2(60, 'blow_by'), o2(120, 'room_air'), o2(150, 'blow_by')];
    course.push(o2(160, 'room_air'), pulse(219), pulse(220));
    const r = run(course);
    // 120-150 below, then 2 again; the fall at 160 stands down at 220 (60 min after 160), not at 180.
    expect(pages(r)).toEqual([
      'escalation crs 0->1 hematology',
      'escalation crs 1->2 hematology',
      'de-escalation crs 2->1 hematology',
    ]);
    expect(r.notifications.at(-1)!.at).toBe('2026-01-10T11:40:00Z');
  });
});
