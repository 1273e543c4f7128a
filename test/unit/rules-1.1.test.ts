// crs-rules.md version 1.1, item by item (the list at the top of the rules): each test names its item.
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { Replay } from '#app/replay.ts';
import type { DeviceMessage, VasopressorEntry } from '#domain/contract.ts';
import type { AssessmentEvent, NotificationEvent, OutputEvent } from '#domain/events.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';
import { episodeStartMoves } from '#test/support/waiver-cases.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';
import { withinGuarantees } from '#test/support/rules-guarantees.ts';

const P = 'V11';
const lee = config({ scheme: 'lee2014' });
const temp = (m: number, temperatureC: number, id?: string) => msg(P, m, { vitals: { temperatureC } }, id);
const bp = (m: number, systolicBP?: number, meanArterialPressure?: number, id?: string) =>
  msg(
    P,
    m,
    {
      vitals: {
        ...(systolicBP === undefined ? {} : { systolicBP }),
        ...(meanArterialPressure === undefined ? {} : { meanArterialPressure }),
      },
    },
    id,
  );
const pressors = (m: number, ...entries: VasopressorEntry[]) => msg(P, m, { vasopressors: entries });
const norepi = (dose: number, unit: VasopressorEntry['unit'] = 'mcg/kg/min'): VasopressorEntry => ({
  drug: 'norepinephrine',
  dose,
  unit,
});
const give = (m: number, drug: 'tocilizumab' | 'acetaminophen' | 'dexamethasone') =>
  msg(P, m, { medications: [{ drug }] });
const HOUR = 60;

/** Every arrival order of the messages (small lists only). */
function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

/** [CRS, ICANS] after the last message. */
const grades = (msgs: DeviceMessage[], cfg = config()) => {
  const r = run(msgs, cfg);
  return [r.last.crsGrade, r.last.icansGrade];
};

/** Through `crs replay`'s own pipeline (validation, digests, every identity remembered). */
function replay(msgs: DeviceMessage[], cfg = config()): OutputEvent[] {
  const r = new Replay(cfg);
  return msgs.flatMap((m, i) => r.line(JSON.stringify(m), i + 1));
}
const assessments = (events: OutputEvent[]) => events.filter((e): e is AssessmentEvent => e.type === 'assessment');
const notifications = (events: OutputEvent[]) =>
  events.filter((e): e is NotificationEvent => e.type === 'notification');

describe('1.1 item 1: order independence', () => {
  describe('a fever-masking medication charted late, after a later fever (item 4: the fever it follows is kept)', () => {
    // Section 1: the grades are a function of the set of accepted messages. Paracetamol at 08:30 after a fever at
    // 08:00 waives fever for the episode (item 4); the next day, afebrile (the fevers out of the 24 h window), two
    // low blood pressures are CRS 2. Charted after a later fever arrived, the 08:00 fever is no longer among the
    // kept febrile readings (covered by a later, at-least-as-high one, or out of the window): it must still count.
    const nextDay = [bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)];

    it.each([38.5, 39.2])('the 08:00 fever covered by one of %s at 09:00: CRS 2 in both arrival orders', (later) => {
      const onTime = [enrol(P), temp(0, 38.5), give(30, 'acetaminophen'), temp(HOUR, later)];
      const chartedLate = [enrol(P), temp(0, 38.5), temp(HOUR, later), give(30, 'acetaminophen')];
      expect(grades([...onTime, ...nextDay]), 'on time').toEqual([2, 0]);
      expect(grades([...chartedLate, ...nextDay]), 'charted late').toEqual([2, 0]);
    });

    it('the 08:00 fever out of the fever window when the medication arrives: CRS 2 in both arrival orders', () => {
      // A lower fever at 09:00 covers nothing; the clock then passes both out of the 24 h window.
      const fevers = [enrol(P), temp(0, 38.5), temp(HOUR, 38.1)];
      const onTime = [...fevers, give(30, 'acetaminophen'), ...nextDay];
      const chartedLate = [...fevers, ...nextDay, give(30, 'acetaminophen')];
      expect(grades(onTime), 'on time').toEqual([2, 0]);
      expect(grades(chartedLate), 'charted late').toEqual([2, 0]);
    });

    it('two masking medications charted late, the first before every fever: the second still follows one', () => {
      // 38.5 at 08:00 and 38.6 at 10:00 arrive, then dexamethasone at 07:00 (before every fever: no waiver yet),
      // then paracetamol at 09:00, after the 08:00 fever that the 10:00 one covered.
      const fevers = [enrol(P), temp(0, 38.5), temp(2 * HOUR, 38.6)];
      const meds = [give(-HOUR, 'dexamethasone'), give(HOUR, 'acetaminophen')];
      for (const order of permutations([...fevers.slice(1), ...meds]))
        expect(grades([fevers[0]!, ...order, ...nextDay]), order.map((m) => m.observedAt).join(' ')).toEqual([2, 0]);
    });

    it('premedication only (every medication before every fever) still waives nothing: CRS 0', () => {
      const course = [enrol(P), temp(0, 38.5), temp(HOUR, 38.6)];
      const premedication = give(-30, 'acetaminophen');
      expect(grades([...course, premedication, ...nextDay])).toEqual([0, 0]);
      expect(grades([premedication, ...course, ...nextDay])).toEqual([0, 0]);
    });
  });

  it.each([
    [
      'the waiver case of issue 11',
      [
        temp(0, 38.9),
        give(60, 'tocilizumab'),
        msg(P, 120, { neuro: { iceScore: 10 } }),
        bp(26 * HOUR, 85),
        bp(26 * HOUR + 10, 84),
      ],
      [2, 0],
    ],
    ['low, low, normal by time', [bp(10, 85), bp(20, 84), bp(30, 120), temp(0, 39)], [2, 0]],
    ['low, normal, low by time', [bp(10, 85), bp(20, 120), bp(30, 84), temp(0, 39)], [1, 0]],
    ['a panel split over two messages', [temp(0, 39), bp(10, 86), bp(10, undefined, 72), bp(20, 85, 70)], [2, 0]],
    [
      'a vasopressor course',
      [temp(0, 39), bp(10, 84), bp(15, 82), pressors(20, norepi(0.1)), bp(30, 110), pressors(40)],
      [2, 0],
    ],
    [
      'partial neuro sections',
      [
        msg(P, 0, { neuro: { iceScore: 2 } }),
        msg(P, 30, { neuro: { consciousness: 'alert' } }),
        msg(P, 40, { neuro: { seizure: 'none' } }),
      ],
      [0, 3],
    ],
  ] as const)('%s: every arrival order ends in the same grades', (_name, msgs, expected) => {
    for (const order of permutations([...msgs])) expect(grades([enrol(P), ...order])).toEqual(expected);
  });
});

describe('1.1 item 2: same-instant merge', () => {
  it('a blood-pressure panel split over two messages at one instant is one reading, in either order', () => {
    for (const split of [
      [bp(10, 86), bp(10, undefined, 60)],
      [bp(10, undefined, 60), bp(10, 86)],
    ]) {
      // 10: systolic 86 (low) with MAP 60 (low); 20: MAP 62 (low): two consecutive low readings.
      expect(grades([enrol(P), temp(0, 39), ...split, bp(20, undefined, 62)])).toEqual([2, 0]);
    }
  });

  it('a field sent twice at one instant: the later arrival wins (a correction)', () => {
    expect(grades([enrol(P), temp(0, 39), bp(10, 85), bp(20, 84), bp(20, 120)])).toEqual([1, 0]);
    expect(grades([enrol(P), temp(0, 39), bp(10, 85), bp(20, 120), bp(20, 84)])).toEqual([2, 0]);
    // A temperature too: a febrile reading corrected at its instant no longer counts.
    expect(grades([enrol(P), temp(0, 39.5), temp(0, 37.0)])).toEqual([0, 0]);
    expect(grades([enrol(P), temp(0, 37.0), temp(0, 39.5)])).toEqual([1, 0]);
  });

  it('fields of different messages at one instant all count', () => {
    const r = run([
      enrol(P),
      temp(0, 39),
      msg(P, 0, { vitals: { heartRate: 120 } }),
      msg(P, 0, { neuro: { iceScore: 5 } }),
    ]);
    expect([r.last.crsGrade, r.last.icansGrade]).toEqual([1, 2]);
    expect(r.state!.vitals.temperatureC?.v).toBe(39);
  });

  it('oxygen and vasopressors are whole sections: the later arrival at one instant replaces', () => {
    expect(
      grades([
        enrol(P),
        temp(0, 39),
        msg(P, 5, { oxygen: { device: 'non_rebreather' } }),
        msg(P, 5, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } }),
      ]),
    ).toEqual([2, 0]);
    expect(
      grades([
        enrol(P),
        temp(0, 39),
        bp(1, 80),
        bp(2, 80),
        pressors(5, norepi(0.1), { drug: 'epinephrine', dose: 0.1, unit: 'mcg/kg/min' }),
        pressors(5, norepi(0.1)),
      ]),
    ).toEqual([3, 0]);
  });

  it('a vasopressors section corrected to [] at the same instant was never an infusion: no hypotension from it', () => {
    // Section 1, same instant: "`oxygen` and `vasopressors` are whole sections (the later arrival at one instant
    // replaces them)"; hypotension is "any vasopressor currently infusing" or two consecutive low readings.
    const corrected = [enrol(P), temp(0, 39), pressors(5, norepi(0.1)), pressors(5)];
    expect(grades(corrected)).toEqual([1, 0]);
    // Nor does it hold hypotension on afterwards: normal readings are normal readings.
    expect(grades([...corrected, bp(10, 110), bp(15, 112)])).toEqual([1, 0]);
    // The other way round: [] corrected to an infusion is an infusion, and hypotension stays after its stop.
    const started = [enrol(P), temp(0, 39), pressors(5), pressors(5, norepi(0.1))];
    expect(grades(started)).toEqual([3, 0]);
    expect(grades([...started, pressors(20), bp(25, 110)])).toEqual([2, 0]);
  });
});

describe('1.1 item 2 with a device clock running ahead: a message is placed at its arrival, its instant stays one', () => {
  // A monitor whose clock runs 2 minutes fast: each message arrives before its observedAt and is placed at its
  // arrival (section 1). A second message for the same observedAt (a correction, or the other half of a panel) is of
  // the same instant: it merges with the first, wherever its own arrival places it.
  const MINUTE_MS = 60_000;
  const arrivedAt = (m: DeviceMessage, minutesBeforeObserved: number) =>
    Date.parse(m.observedAt) - minutesBeforeObserved * MINUTE_MS;
  /** [CRS, ICANS] after the last of [message, minutes its arrival came before its observedAt]. */
  function gradesArrived(list: [DeviceMessage, number][]): number[] {
    let state: PatientState | undefined;
    let last = [0, 0];
    for (const [m, before] of list) {
      const step = reduce(state, m, config(), { ...arrivalOf(m), receivedAt: arrivedAt(m, before) });
      state = step.state;
      if (step.kind === 'applied') last = [step.assessment.crsGrade, step.assessment.icansGrade];
    }
    return last;
  }

  it('a febrile temperature corrected at its instant no longer counts, the correction arriving ahead or not', () => {
    for (const correctionBefore of [1, 0, -30]) {
      // 38.6 observed "10:02" arrives 10:00; 36.9 for "10:02" arrives at 10:01, 10:02 or 10:32.
      expect(
        gradesArrived([
          [enrol(P), 0],
          [temp(122, 38.6), 2],
          [temp(122, 36.9), correctionBefore],
        ]),
      ).toEqual([0, 0]);
    }
  });

  it('a blood-pressure panel split over two requests is one reading', () => {
    // A low MAP at 10:00, then the panel of "10:07" (systolic 120 alone is normal, with MAP 60 it is low) in two
    // requests a few seconds apart, both ahead: two consecutive low readings.
    const panel: [DeviceMessage, number][] = [
      [bp(127, 120), 2],
      [bp(127, undefined, 60), 1.9],
    ];
    expect(gradesArrived([[enrol(P), 0], [temp(115, 39), 0], [bp(120, undefined, 62), 0], ...panel])).toEqual([2, 0]);
  });

  /** [CRS, ICANS] after messages that all arrived at one time (one request: a JSON batch, a FHIR bundle). */
  function gradesInOneRequest(list: DeviceMessage[], receivedAt: number, cfg = config()): number[] {
    let state: PatientState | undefined;
    let last = [0, 0];
    for (const m of list) {
      const step = reduce(state, m, cfg, { ...arrivalOf(m), receivedAt });
      state = step.state;
      if (step.kind === 'applied') last = [step.assessment.crsGrade, step.assessment.icansGrade];
    }
    return last;
  }

  it('instants dated ahead in one request stay distinct, in observedAt order, whatever order they come in', () => {
    // A monitor whose clock runs 3 minutes fast flushes its readings in one request that arrives at 10:00: each is
    // dated ahead of it. Until 2026-12-06 all were placed at the arrival, one instant, so a later reading there was
    // a correction of the earlier: 38.6 °C then 37.2 °C a minute later lost the fever (CRS 0, the rules give 1), and
    // two low MAPs a minute apart were one reading (CRS 1, the rules give 2).
    const arrival = T0 + 120 * 60_000; // 10:00, observedAt 10:01 and 10:02
    const fever = [temp(121, 38.6), temp(122, 37.2)];
    const lows = [temp(100, 38.2), bp(121, undefined, 60), bp(122, undefined, 62)];
    const earlier = [enrol(P)];
    for (const order of permutations(fever))
      expect(gradesInOneRequest([...earlier, ...order], arrival)).toEqual([1, 0]);
    for (const order of permutations(lows)) expect(gradesInOneRequest([...earlier, ...order], arrival)).toEqual([2, 0]);
    // Three readings of one request in any order: the latest by observedAt is the latest value, the lows pair.
    const three = [bp(121, undefined, 60), bp(122, 120, 80), bp(123, undefined, 61)];
    for (const order of permutations(three)) {
      let state: PatientState | undefined;
      for (const m of [...earlier, temp(100, 38.2), ...order])
        state = reduce(state, m, config(), { ...arrivalOf(m), receivedAt: arrival }).state;
      expect(state!.vitals.meanArterialPressure!.v).toBe(61);
      expect(state!.vitals.systolicBP!.v).toBe(120);
    }
  });

  it('still, a value dated ahead does not outrank a later reading observed before its time', () => {
    // Systolic 70 dated "10:05" arrives 10:00 (placed at 10:00); 121 observed 10:01 arrives then: the latest.
    let state: PatientState | undefined;
    for (const [m, before] of [
      [bp(125, 70), 5],
      [bp(121, 121), 0],
    ] as [DeviceMessage, number][])
      state = reduce(state, m, config(), { ...arrivalOf(m), receivedAt: arrivedAt(m, before) }).state;
    expect(state!.vitals.systolicBP!.v).toBe(121);
  });
});

describe('1.1 item 3: hypotension clears only off vasopressors', () => {
  const onPressor = [bp(0, 84), bp(5, 82), pressors(10, norepi(0.1)), bp(20, 105), bp(30, 108)];

  it('normal readings taken while a vasopressor infuses do not count toward clearing (vignette P-14)', () => {
    const r = run([enrol(P), temp(0, 38.8), ...onPressor, pressors(40), temp(45, 38.5), bp(45, 86)]);
    expect(r.last.crsGrade).toBe(2); // 1.0 cleared it with the two normals on norepinephrine, then gave 1
    expect(pages(r)).toEqual([
      'escalation crs 0->1 hematology',
      'escalation crs 1->2 hematology',
      'escalation crs 2->3 hematology+icu',
    ]);
  });

  it('clearing needs two consecutive normal readings strictly after the stop (a reading at the stop counts for nothing)', () => {
    const stopped = [enrol(P), temp(0, 39), ...onPressor, pressors(40)];
    expect(grades([...stopped, bp(40, 120), bp(45, 121)])).toEqual([2, 0]);
    expect(grades([...stopped, bp(40, 120), bp(45, 121), bp(50, 119)])).toEqual([1, 0]);
    // A low reading between two normal ones restarts the count.
    expect(grades([...stopped, bp(45, 121), bp(50, 80), bp(55, 119)])).toEqual([2, 0]);
  });

  it('a vasopressor alone is hypotension, which stays after the stop until two normal readings', () => {
    const course = [enrol(P), temp(0, 39), pressors(10, { drug: 'phenylephrine', dose: 50, unit: 'mcg/min' })];
    expect(grades(course)).toEqual([3, 0]);
    expect(grades([...course, pressors(20)])).toEqual([2, 0]);
    expect(grades([...course, pressors(20), bp(25, 110), bp(30, 112)])).toEqual([1, 0]);
  });

  it('a section of paused pumps (dose 0) starts no vasopressor period', () => {
    expect(grades([enrol(P), temp(0, 39), pressors(10, norepi(0)), pressors(20)])).toEqual([1, 0]);
  });

  it("the patient's own thresholds apply to every kept reading, whenever the enrolment arrives", () => {
    const readings = [temp(0, 39), bp(10, 85), bp(15, 84)];
    const child = enrol(P, -60, { hypotension: { systolicBelow: 80 } });
    expect(grades([enrol(P), ...readings])).toEqual([2, 0]);
    expect(grades([child, ...readings])).toEqual([1, 0]);
    expect(grades([enrol(P), ...readings, { ...child, observedAt: msg(P, 20, {}).observedAt }])).toEqual([1, 0]);
  });

  it("each of the patient's own thresholds keeps its latest value: one sent alone leaves the other, in every order", () => {
    // A stricter systolic threshold (100), then a MAP threshold charted alone: systolic 95 twice is still low.
    const thresholds = (m: number, hypotension: { systolicBelow?: number; mapBelow?: number }) =>
      msg(P, m, { enrolment: { hypotension } });
    const course = [
      thresholds(-30, { systolicBelow: 100 }),
      thresholds(-20, { mapBelow: 70 }),
      temp(0, 39),
      bp(10, 95, 80),
      bp(15, 94, 80),
    ];
    for (const order of permutations(course)) expect(grades([enrol(P), ...order])).toEqual([2, 0]);
    // A threshold sent again replaces only itself: systolic back to 90 keeps MAP at 70 (MAP 68 is low).
    const relaxed = [...course.slice(0, 3), thresholds(5, { systolicBelow: 90 }), bp(10, 95, 68), bp(15, 94, 68)];
    for (const order of permutations(relaxed)) expect(grades([enrol(P), ...order])).toEqual([2, 0]);
    expect(grades([enrol(P), ...relaxed.slice(0, 4), bp(10, 95, 80), bp(15, 94, 80)])).toEqual([1, 0]);
  });

  it('the reasons name the pair of low readings, and say why hypotension persists after a stop', () => {
    const r = run([enrol(P), temp(0, 39), bp(0, 84), bp(5, 82), pressors(10, norepi(0.1)), pressors(40)]);
    const texts = r.last.reasons.map((x) => x.text);
    expect(texts).toContain('low blood pressure systolic 84 mmHg (systolic < 90 or MAP < 65) at 2026-01-10T08:00:00Z');
    expect(texts).toContain('low blood pressure systolic 82 mmHg (systolic < 90 or MAP < 65) at 2026-01-10T08:05:00Z');
    expect(texts).toContain(
      'hypotension not cleared: no two consecutive normal readings since the vasopressor stopped at 2026-01-10T08:40:00Z',
    );
  });

  it('a vasopressor section older than the kept blood-pressure history, the latest section, is still an infusion', () => {
    // Pinned by a mutation run (2026-12-06). Section 1: hypotension is "any vasopressor currently infusing", and "any
    // bound on kept history must not change a result". With bpHistory 2 the readings of 08:10 and 08:20 are folded;
    // norepinephrine observed at 08:15 then arrives, the only section: it is not kept in the history (docs section 9)
    // but it is what infuses. In observedAt order the later normal readings were taken on it: ASTCT 3, Lee 2 (low
    // dose: 7 mcg/min at 70 kg), as the oracle written from the rules gives. A hypotension test on the folded
    // readings alone graded CRS 1 in both schemes.
    const small = { bpHistory: 2, vasopressorHistory: 2 };
    const course = [
      enrol(P),
      temp(0, 39),
      bp(10, 120),
      bp(20, 121),
      bp(30, 122),
      bp(40, 123),
      pressors(15, norepi(0.1)),
    ];
    for (const cfg of [config(small), config({ ...small, scheme: 'lee2014' })]) {
      expect(withinGuarantees(course, cfg)).toBe(true);
      const want = cfg.scheme === 'lee2014' ? 2 : 3;
      expect(oracleGrades(course, cfg).crs).toBe(want);
      expect(grades(course, cfg)).toEqual([want, 0]);
    }
  });
});

describe('1.1 item 4: waiver onset is the earliest fever of the episode', () => {
  it('a late fever before the masking medication waives fever the next day (vignette P-15), in every order', () => {
    const late = [
      msg(P, 2 * HOUR, { neuro: { iceScore: 10, consciousness: 'alert' } }),
      temp(0, 38.9),
      give(HOUR, 'tocilizumab'),
    ];
    const nextDay = [
      msg(P, 27 * HOUR, { vitals: { temperatureC: 37, systolicBP: 85 } }),
      msg(P, 27 * HOUR + 10, { vitals: { temperatureC: 37.1, systolicBP: 84 } }),
    ];
    for (const order of permutations(late)) expect(grades([enrol(P), ...order, ...nextDay])).toEqual([2, 0]);
  });

  it('a medication at the instant of the fever, charted after that fever left the window, waives fever', () => {
    // Section 1, fever waiver: medication "with an `observedAt` at or after" the first fever; order independence
    // (item 1): charted late it waives as charted on time.
    const onTime = [enrol(P), temp(0, 38.9), give(0, 'acetaminophen'), temp(25 * HOUR, 37)];
    const late = [enrol(P), temp(0, 38.9), temp(25 * HOUR, 37), give(0, 'acetaminophen')];
    const nextDay = [bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)];
    expect(grades([...onTime, ...nextDay])).toEqual([2, 0]);
    expect(grades([...late, ...nextDay])).toEqual([2, 0]);
  });

  it('medication before the first fever (premedication) does not waive it', () => {
    expect(
      grades([enrol(P), give(-30, 'acetaminophen'), temp(0, 38.9), bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)]),
    ).toEqual([0, 0]);
  });

  it('premedication charted after the fever arrived still does not waive it (order independence)', () => {
    // Section 1: "Medication given *before* that time (premedication) does not waive fever", whatever the order
    // the messages arrive in (item 1).
    expect(
      grades([enrol(P), temp(0, 38.9), give(-30, 'acetaminophen'), bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)]),
    ).toEqual([0, 0]);
  });

  it('a fever before the infusion is not the episode onset', () => {
    const infusedNow = enrol(P, -2 * HOUR, { infusedAt: '2026-01-10T08:00:00Z' });
    // Febrile at 07:00 (before the infusion), paracetamol at 07:30: no fever of this episode yet.
    const before = [temp(-HOUR, 38.5), give(-30, 'acetaminophen')];
    const nextDay = [bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)];
    expect(grades([infusedNow, ...before, ...nextDay])).toEqual([0, 0]);
    // With a fever after the infusion and a masking medication after that, the waiver holds.
    expect(grades([infusedNow, ...before, temp(10, 38.4), give(20, 'dexamethasone'), ...nextDay])).toEqual([2, 0]);
  });

  it('a fever observed at the very instant of the infusion is a fever of the episode (it starts at infusedAt)', () => {
    // Section 1, fever waiver: "An episode starts at an enrolment's `infusedAt`": a fever at that instant is in it,
    // so a masking medication after it waives fever the next day.
    const infusedNow = enrol(P, -2 * HOUR, { infusedAt: '2026-01-10T08:00:00Z' });
    const nextDay = [bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)];
    expect(grades([infusedNow, temp(0, 38.6), give(30, 'acetaminophen'), ...nextDay])).toEqual([2, 0]);
  });

  it('a fever at the instant of the infusion is of the episode also for a masking medication charted late', () => {
    // Pinned by a mutation run (2026-12-06). Section 1, fever waiver: "An episode starts at an enrolment's
    // `infusedAt`"; the onset is "the earliest `observedAt` of a febrile temperature in the episode". Infused 09:00,
    // 38.4 °C at 09:00, 39.0 °C at 11:00 and 12:00 (with feverHistory 2 they push 09:00 out of the kept readings),
    // then acetaminophen given at 10:00 charted: it follows the 09:00 fever, so two low systolics the next day are
    // CRS 2. A fever one minute before the infusion is not of the episode: the medication then precedes the onset
    // (11:00), premedication, CRS 0. The engine took a fever at the infusion's instant as of the episode only
    // while it was kept (rules-boundaries pins the instant itself).
    const cfg = config({ feverHistory: 2 });
    const infused = enrol(P, -2 * HOUR, { infusedAt: '2026-01-10T09:00:00Z' });
    const course = (first: number) => [
      infused,
      temp(first, 38.4),
      temp(3 * HOUR, 39),
      temp(4 * HOUR, 39),
      give(2 * HOUR, 'acetaminophen'),
      bp(30 * HOUR, 85),
      bp(30 * HOUR + 5, 84),
    ];
    for (const [first, want] of [
      [HOUR, 2],
      [HOUR - 1, 0],
    ] as const) {
      expect(oracleGrades(course(first), cfg).crs).toBe(want);
      expect(grades(course(first), cfg)).toEqual([want, 0]);
    }
  });

  it('after a re-infusion, a masking medication charted late follows the first fever of the new episode', () => {
    // Pinned by a mutation run (2026-12-06). Section 1, fever waiver: "a new enrolment with a later `infusedAt`
    // starts a new one", and the waiver needs a masking medication at or after the earliest fever of the episode.
    // Infused 06:00, 38.5 °C at 09:00; re-infused 10:00; 39.0 °C at 11:00, 12:00 and 13:00 (feverHistory 2 keeps the
    // last two); tocilizumab given at 11:30, charted after them. It follows the 11:00 fever of the new episode: two
    // low systolics the next day are CRS 2. The engine kept taking the 09:00 fever of the old episode as the first
    // one after the masking medications (unmaskedFever) once the re-infusion moved the episode start: CRS 0.
    // The medication comes after the move: docs/grading-rules.md section 4 says the waiver is then exact, so the
    // oracle tests take such courses too (waiver-cases.ts F, with feverHistory 3).
    const cfg = config({ feverHistory: 2 });
    const course = [
      enrol(P, -2 * HOUR, { infusedAt: '2026-01-10T06:00:00Z' }),
      temp(HOUR, 38.5),
      enrol(P, 2 * HOUR, { infusedAt: '2026-01-10T10:00:00Z' }),
      temp(3 * HOUR, 39),
      temp(4 * HOUR, 39),
      temp(5 * HOUR, 39),
      give(3 * HOUR + 30, 'tocilizumab'),
      bp(31 * HOUR, 85),
      bp(31 * HOUR + 5, 84),
    ];
    expect(oracleGrades(course, cfg).crs).toBe(2);
    expect(grades(course, cfg)).toEqual([2, 0]);
  });

  it('a fever corrected at its instant after the earlier fever left the window: the waiver rests on the earlier one', () => {
    // Section 1: a field sent twice at one instant is a correction (the later arrival wins), and "any bound on kept
    // history must not change a result". 08:00 38.9 °C (CRS 1); 20:00 38.2 °C charted; tocilizumab at 20:30; the
    // next afternoon two low systolics, then the 20:00 reading corrected to 37.2 and norepinephrine started. The
    // 08:00 fever, followed by the tocilizumab, still waives fever: CRS 2, then 3 on the vasopressor. Until
    // 2026-12-05 the engine looked for the fever before the corrected one among the fever window's readings only,
    // found none (08:00 was 34 h old) and graded CRS 0: no ICU page for a patient on norepinephrine.
    const course = [
      enrol(P),
      temp(0, 38.9),
      temp(12 * HOUR, 38.2),
      give(12 * HOUR + 30, 'tocilizumab'),
      bp(33 * HOUR, 85),
      bp(34 * HOUR, 84),
      temp(12 * HOUR, 37.2),
    ];
    expect(grades(course)).toEqual([2, 0]);
    expect(grades([...course, pressors(34 * HOUR + 5, norepi(0.1))])).toEqual([3, 0]);
    const r = run(course);
    expect(r.last.reasons[0]!.text).toContain('on or after a fever of the episode (2026-01-10T08:00:00Z)');
  });

  it('the waiver rests on a fever that has left the window while fewer than 8 febrile readings came after it', () => {
    // Pinned by a mutation run (2026-12-05): the latest 8 febrile readings stay once they leave the window
    // (docs/grading-rules.md), a fever and 7 after it. 08:00 38.9 °C; 20:00-20:06 38.2 °C each minute; tocilizumab at
    // 20:30; the next afternoon two low systolics, and every 20:0x reading corrected to 37.2.
    const later = (n: number) => Array.from({ length: n }, (_, i) => 12 * HOUR + i);
    const course = (n: number, before: DeviceMessage[] = []) => [
      enrol(P),
      temp(0, 38.9),
      ...before,
      ...later(n).map((m) => temp(m, 38.2)),
      give(12 * HOUR + 30, 'tocilizumab'),
      bp(33 * HOUR, 85),
      bp(34 * HOUR, 84),
      ...later(n).map((m) => temp(m, 37.2)),
    ];
    expect(grades(course(7))).toEqual([2, 0]);
    expect(run(course(7)).last.reasons[0]!.text).toContain('on or after a fever of the episode (2026-01-10T08:00:00Z)');
    // Another fever before them, at 08:30: the waiver rests on it, the 8th latest (08:00 is the 9th).
    expect(grades(course(7, [temp(30, 38.5)]))).toEqual([2, 0]);
    // With 8 after it, 08:00 is the 9th latest: not kept (the state's size), but the span of dropped readings is
    // (2026-12-06: before, CRS 0): one of them may be the fever the medication follows, and here it is.
    expect(grades(course(8))).toEqual([2, 0]);
    expect(run(course(8)).last.reasons[0]!.text).toContain(
      'maybe one of the febrile readings between 2026-01-10T08:00:00Z and 2026-01-10T08:00:00Z, no longer kept',
    );
  });

  it('the reason names the medication and the fever of the episode it follows', () => {
    const r = run([enrol(P), temp(0, 38.9), give(30, 'tocilizumab'), bp(26 * HOUR, 85), bp(26 * HOUR + 5, 84)]);
    expect(r.last.reasons[0]).toMatchObject({ criterion: 'fever-waiver', at: '2026-01-10T08:30:00Z' });
    expect(r.last.reasons[0]!.text).toContain('on or after a fever of the episode (2026-01-10T08:00:00Z)');
  });
});

describe('1.1 section 1 and item 4: no bound on kept history changes the waiver when the episode start moves', () => {
  // Each fever the waiver rests on has left the fever window, or a later, higher one covered it, before the
  // episode start moved to where the rules look for it (test/support/waiver-cases.ts).
  it.each(episodeStartMoves.map((c) => [c.name, c.messages] as const))('%s: ASTCT CRS 2', (_name, messages) => {
    const r = run(messages);
    expect([r.last.crsGrade, r.last.icansGrade]).toEqual([2, 0]);
    expect(r.last.reasons[0]).toMatchObject({ criterion: 'fever-waiver' });
  });

  it('E: while the infusion time says 09:00, the fever of 08:30 is not in the episode (CRS 0); back at 08:00 it is', () => {
    const e = episodeStartMoves.find((c) => c.name.startsWith('E:'))!.messages;
    const r = run(e);
    const grades = r.assessments.map((a) => a.crsGrade);
    expect(grades.slice(-4)).toEqual([0, 0, 2, 2]); // two low MAP at 09:00, then the start back at 08:00
  });
});

describe('1.1 item 5: vasopressors', () => {
  const low = [temp(0, 39), bp(1, 84), bp(2, 82)];
  it.each([
    [
      'ASTCT: a paused pump beside a running one is one vasopressor (vignette P-20)',
      config(),
      [norepi(0.1), { drug: 'epinephrine', dose: 0, unit: 'mcg/kg/min' }],
      3,
    ],
    ['ASTCT: two pumps of one drug are one agent', config(), [norepi(0.05), norepi(0.05)], 3],
    ['ASTCT: two drugs are grade 4', config(), [norepi(0.05), { drug: 'phenylephrine', dose: 50, unit: 'mcg/min' }], 4],
    ['ASTCT: only paused pumps: hypotension without vasopressor', config(), [norepi(0)], 2],
    [
      'Lee: two pumps of one drug are not "multiple"; summed 0.1 mcg/kg/min (7 mcg/min) is low-dose',
      lee,
      [norepi(0.05), norepi(0.05)],
      2,
    ],
    [
      'Lee: two pumps of one drug, summed 24 mcg/min, are high-dose',
      lee,
      [norepi(12, 'mcg/min'), norepi(12, 'mcg/min')],
      3,
    ],
    [
      'Lee: one drug in two units is summed with the weight (0.2 mcg/kg/min = 14 + 8 mcg/min)',
      lee,
      [norepi(0.2), norepi(8, 'mcg/min')],
      3,
    ],
    [
      // Summed in floating point, 0.1 + 8.2 + 1.7 was 9.999999999999998: low-dose, grade 2.
      'Lee: three pumps of epinephrine summing to exactly 10 mcg/min are high-dose',
      lee,
      [0.1, 8.2, 1.7].map((dose) => ({ drug: 'epinephrine', dose, unit: 'mcg/min' }) as const),
      3,
    ],
    [
      'Lee: a paused second drug is not "multiple" (vignette P-16)',
      lee,
      [norepi(0.05), norepi(0.05), { drug: 'epinephrine', dose: 0, unit: 'mcg/min' }],
      2,
    ],
    [
      'Lee: two infusing drugs are "multiple"',
      lee,
      [norepi(0.05), { drug: 'vasopressin', dose: 0.03, unit: 'units/min' }],
      3,
    ],
  ] as const)('%s', (_name, cfg, entries, grade) => {
    expect(grades([enrol(P), ...low, pressors(5, ...entries)], cfg)[0]).toBe(grade);
  });

  it('the reasons show one agent per drug with its pumps', () => {
    const r = run([enrol(P), ...low, pressors(5, norepi(12, 'mcg/min'), norepi(12, 'mcg/min'))], lee);
    const texts = r.last.reasons.map((x) => x.text);
    expect(texts).toContain('norepinephrine 12 + 12 mcg/min (2 pumps) infusing at 2026-01-10T08:05:00Z');
    expect(texts).toContain('norepinephrine high-dose: 24 mcg/min (2 pumps summed) >= 20 at 2026-01-10T08:05:00Z');
  });
});

describe('1.1 item 6: neuro fields merge one by one', () => {
  it.each([
    [
      'consciousness alone keeps the earlier ICE score 2 (vignette P-17)',
      [{ iceScore: 2, consciousness: 'awakens_to_voice' }, { consciousness: 'alert' }],
      3,
    ],
    ['a seizure stays until "none" is charted', [{ seizure: 'self_limited' }, { iceScore: 10 }], 3],
    ['"none" is an explicit normal', [{ seizure: 'self_limited' }, { seizure: 'none' }], 0],
    ['false is an explicit normal', [{ motorWeakness: true }, { motorWeakness: false }], 0],
    ['"alert" is an explicit normal', [{ consciousness: 'unarousable' }, { consciousness: 'alert' }], 0],
    ['cerebral oedema "none" clears it', [{ cerebralEdema: 'diffuse' }, { cerebralEdema: 'none' }], 0],
    ['before any value a domain is normal', [{ motorWeakness: false }], 0],
  ] as const)('%s', (_name, sections, grade) => {
    const r = run([enrol(P), ...sections.map((neuro, i) => msg(P, i * 10, { neuro }))]);
    expect(r.last.icansGrade).toBe(grade);
  });

  it('a late field never overwrites a newer one, and each reason carries its own time', () => {
    const r = run([
      enrol(P),
      msg(P, 30, { neuro: { iceScore: 5 } }),
      msg(P, 10, { neuro: { iceScore: 9, seizure: 'self_limited' } }),
    ]);
    expect(r.last.icansGrade).toBe(3);
    expect(r.last.reasons.filter((x) => x.text.startsWith('ICANS')).map((x) => x.text)).toEqual([
      'ICANS ICE score 5/10 at 2026-01-10T08:30:00Z',
      'ICANS seizure: self limited at 2026-01-10T08:10:00Z',
    ]);
  });
});

describe('1.1 item 7: Lee 2014 needs no fever for grades 2-4', () => {
  it.each([
    [
      'an afebrile patient on a high-dose pressor is grade 3 (issue 11)',
      [bp(0, 84), bp(5, 82), pressors(10, norepi(25, 'mcg/min'))],
      3,
    ],
    ['afebrile hypotension with no vasopressor is grade 2', [bp(0, 84), bp(5, 82)], 2],
    [
      'an afebrile oxygen requirement is grade 2 (vignette P-18)',
      [msg(P, 5, { oxygen: { device: 'nasal_cannula', flowLpm: 3 } })],
      2,
    ],
    ['afebrile organ toxicity grade 4 is grade 4', [msg(P, 5, { organToxicity: { maxCtcaeGrade: 4 } })], 4],
    ['afebrile with nothing else is 0', [temp(0, 37.2)], 0],
    ['grade 1 is fever', [temp(0, 38.2)], 1],
  ] as const)('%s', (_name, msgs, grade) => {
    expect(grades([enrol(P), ...msgs], lee)[0]).toBe(grade);
  });

  it('the fever waiver is ASTCT only: Lee never names it and never grades 1 without fever', () => {
    const course = [enrol(P), temp(0, 39), give(30, 'tocilizumab'), temp(26 * HOUR, 37)];
    const r = run(course, lee);
    expect(r.last.crsGrade).toBe(0);
    expect(r.assessments.flatMap((a) => a.reasons.map((x) => x.criterion))).not.toContain('fever-waiver');
    expect(run(course).last.reasons.map((x) => x.criterion)).toContain('fever-waiver');
  });
});

describe('1.1 item 8: duplicates and reused ids', () => {
  it('an identical message is a duplicate however late it comes (crs replay remembers every identity)', () => {
    const first = temp(0, 39, 'gw-1');
    const others = Array.from({ length: 100 }, (_, i) => msg(P, 1 + i, { vitals: { heartRate: 80 } }));
    const events = replay([enrol(P), first, ...others, structuredClone(first)], config({ dedupeWindow: 16 }));
    expect(events.at(-1)).toEqual({ type: 'duplicate', messageId: 'gw-1', patientId: P });
  });

  it('the content decides, not the order of its keys', () => {
    const m = temp(0, 39, 'gw-2');
    const reordered = {
      vitals: m.vitals,
      source: { kind: m.source.kind, deviceId: m.source.deviceId },
      observedAt: m.observedAt,
      patientId: P,
      messageId: 'gw-2',
    };
    expect(replay([enrol(P), m, reordered as DeviceMessage]).at(-1)?.type).toBe('duplicate');
  });

  it("beyond the window, the reducer takes a backend's earlier digests of the id (priorDigests)", () => {
    const cfg = config({ dedupeWindow: 16 });
    const first = temp(0, 39, 'gw-3');
    const state = run(
      [enrol(P), first, ...Array.from({ length: 100 }, (_, i) => msg(P, 1 + i, { vitals: { heartRate: 90 } }))],
      cfg,
    ).state;
    const digest = arrivalOf(first).digest;
    expect(reduce(state, first, cfg, { digest }).kind).toBe('applied'); // the window alone has forgotten it
    expect(reduce(state, first, cfg, { digest, priorDigests: [digest] }).kind).toBe('duplicate');
    const other = { ...first, vitals: { temperatureC: 37 } };
    const step = reduce(state, other, cfg, { digest: arrivalOf(other).digest, priorDigests: [digest] });
    expect(step.kind === 'applied' && step.reusedId).toBe(true);
  });

  it('a reused messageId with other content is a new observation: graded, paged, marked (vignette P-19)', () => {
    const cfg = config();
    const a = temp(0, 37, 'gw-4');
    const b = temp(30, 38.6, 'gw-4');
    const steps = [enrol(P), a, b].reduce<{ state?: PatientState; reused: boolean[] }>(
      (acc, m) => {
        const step = reduce(acc.state, m, cfg, arrivalOf(m));
        if (step.kind === 'applied') acc.reused.push(step.reusedId);
        return { state: step.state, reused: acc.reused };
      },
      { reused: [] },
    );
    expect(steps.reused).toEqual([false, false, true]);
    expect(pages(run([enrol(P), a, b]))).toEqual(['escalation crs 0->1 hematology']);
  });

  it('issue 10: a messageId reused after leaving the window still pages, under its own notification id', () => {
    const cfg = config({ dedupeWindow: 16, holdMinutes: 0 });
    const msgs = [
      enrol(P),
      msg(P, 0, { neuro: { iceScore: 8 } }, 'dup'), // ICANS 1
      msg(P, 1, { neuro: { iceScore: 10 } }), // ICANS 0
      ...Array.from({ length: 100 }, (_, i) => msg(P, 2 + i, { vitals: { heartRate: 80 } })),
      msg(P, 200, { neuro: { iceScore: 3 } }, 'dup'), // ICANS 2 under the reused id
    ];
    const events = replay(msgs, cfg);
    const sent = notifications(events).map(
      (n) => `${n.condition} ${n.fromGrade}->${n.toGrade} ${n.notificationId} ${n.causedBy}`,
    );
    expect(sent).toEqual([
      `icans 0->1 icans|${P}|#2 dup`,
      `icans 1->0 icans|${P}|#3 ${msgs[2]!.messageId}`,
      `icans 0->2 icans|${P}|#104 dup`,
    ]);
  });

  it('a stale identical duplicate never undoes a later same-instant correction', () => {
    const wrong = bp(10, 70, undefined, 'gw-5');
    const corrected = bp(10, 120, undefined, 'gw-6');
    const filler = Array.from({ length: 100 }, (_, i) => msg(P, 11 + i, { vitals: { heartRate: 80 } }));
    const events = replay(
      [enrol(P), temp(0, 39), bp(5, 80), wrong, corrected, ...filler, structuredClone(wrong)],
      config({ dedupeWindow: 16 }),
    );
    expect(events.at(-1)?.type).toBe('duplicate');
    expect(assessments(events).at(-1)!.crsGrade).toBe(1); // 80 then 120: no two consecutive low readings
  });
});

describe('1.1 item 9: organ toxicity and transaminitis (Lee 2014)', () => {
  it.each([
    [{ maxCtcaeGrade: 2 }, 2],
    [{ maxCtcaeGrade: 3 }, 3],
    [{ maxCtcaeGrade: 4 }, 4],
    [{ transaminitisGrade: 1 }, 1],
    [{ transaminitisGrade: 2 }, 2],
    [{ transaminitisGrade: 3 }, 3],
    [{ transaminitisGrade: 4 }, 3], // never 4
    [{ maxCtcaeGrade: 2, transaminitisGrade: 4 }, 3],
    [{ maxCtcaeGrade: 4, transaminitisGrade: 4 }, 4],
  ] as const)('%o with fever -> Lee grade %i', (organToxicity, grade) => {
    expect(grades([enrol(P), temp(0, 38.6), msg(P, 5, { organToxicity })], lee)[0]).toBe(grade);
  });

  it('each field keeps its own latest value; ASTCT ignores organ toxicity', () => {
    const course = [
      enrol(P),
      temp(0, 38.6),
      msg(P, 5, { organToxicity: { maxCtcaeGrade: 3 } }),
      msg(P, 10, { organToxicity: { transaminitisGrade: 2 } }),
    ];
    expect(grades(course, lee)[0]).toBe(3);
    expect(grades(course)[0]).toBe(1);
  });
});

describe('notification identity (issue 10 item 1)', () => {
  it('every grade change has its own id, even when one message causes two', () => {
    const r = run([
      enrol(P),
      msg(P, 0, { vitals: { temperatureC: 39 }, neuro: { iceScore: 5 } }),
      msg(P, 10, { oxygen: { device: 'non_rebreather' } }),
    ]);
    expect(r.notifications.map((n) => n.notificationId)).toEqual([`crs|${P}|#2`, `icans|${P}|#2`, `crs|${P}|#3`]);
  });
});

describe('readings dated ahead of their arrival, pinned by a mutation run', () => {
  // A monitor whose clock runs fast, its readings flushed in requests: where each instant is placed (section 1).
  const arrival = T0 + 120 * 60_000; // 10:00
  const MS = 1 / 60_000; // a millisecond, in the minutes msg takes
  /** The state and the assessments after messages each with its arrival (ms since the epoch). */
  function arrive(list: [DeviceMessage, number][]) {
    let state: PatientState | undefined;
    const at: string[] = [];
    const crs: number[] = [];
    for (const [m, receivedAt] of list) {
      const step = reduce(state, m, config(), { ...arrivalOf(m), receivedAt });
      state = step.state;
      if (step.kind === 'applied') {
        at.push(step.assessment.at);
        crs.push(step.assessment.crsGrade);
      }
    }
    return { state: state!, at, crs };
  }

  it('a reading observed before two already placed goes before the first of them, not between them', () => {
    // One request at 10:00 of 38.6 at "10:02", 36.8 at "10:03" and 37.1 at "10:01", in any order: three instants,
    // and the fever at 10:02 is not corrected by the reading of 10:01.
    const three = [temp(121, 37.1), temp(122, 38.6), temp(123, 36.8)];
    for (const order of permutations(three)) {
      const r = arrive([[enrol(P), T0], ...order.map((m): [DeviceMessage, number] => [m, arrival])]);
      expect(r.crs.at(-1)).toBe(1);
      expect(r.state.vitals.temperatureC!.v).toBe(36.8);
    }
  });

  it('the later readings of a request are placed 16 ms apart, past its arrival', () => {
    const r = arrive([
      [enrol(P), T0],
      [temp(121, 37.1), arrival],
      [temp(122, 37.2), arrival],
      [temp(123, 37.3), arrival],
    ]);
    expect(r.at.slice(1)).toEqual(['2026-01-10T10:00:00Z', '2026-01-10T10:00:00.016Z', '2026-01-10T10:00:00.032Z']);
  });

  it('a reading observed before every one placed, arriving at or after the first place, goes 16 ms before it', () => {
    // Pinned by a mutation run (2026-12-06): docs/grading-rules.md section 1, "16 ms ... before the one after when
    // there is one only". 10:02 placed at its arrival, 10:00; 10:01 of the same request then goes to 09:59:59.984.
    const r = arrive([
      [enrol(P), T0],
      [temp(122, 37.2), arrival],
      [temp(121, 37.1), arrival],
    ]);
    expect(r.at.slice(1)).toEqual(['2026-01-10T10:00:00Z', '2026-01-10T10:00:00Z']);
    expect(r.state.placedAhead).toEqual([
      [T0 + 121 * 60_000, arrival - 16],
      [T0 + 122 * 60_000, arrival],
    ]);
  });

  it('a reading observed between two placed 1 ms apart is placed with the one before', () => {
    // 10:01 placed at 10:00, 10:03 (the next request, 1 ms later) at 10:00:00.001; 10:02 then has no time between.
    const r = arrive([
      [enrol(P), T0],
      [temp(121, 37.5), arrival],
      [temp(123, 37.0), arrival + 1],
      [temp(122, 37.2), arrival + 1],
    ]);
    const minute = (m: number) => T0 + m * 60_000;
    expect(r.state.placedAhead).toEqual([
      [minute(121), arrival],
      [minute(122), arrival],
      [minute(123), arrival + 1],
    ]);
    expect(r.state.vitals.temperatureC!.v).toBe(37.0);
  });

  it('a reading is placed before its own observedAt, where a correction of it then merges', () => {
    // 37.0 at 10:00:00.005 and 38.6 at 10:00:00.010 arrive at 10:00; 38.6 goes 16 ms past the first, but no later
    // than 1 ms before its own time. Its correction, also dated ahead, is placed with it.
    const r = arrive([
      [enrol(P), T0],
      [temp(120 + 5 * MS, 37.0), arrival],
      [temp(120 + 10 * MS, 38.6), arrival],
      [temp(120 + 10 * MS, 36.9), arrival + 5],
    ]);
    expect(r.at.slice(1)).toEqual(['2026-01-10T10:00:00Z', '2026-01-10T10:00:00.009Z', '2026-01-10T10:00:00.009Z']);
    expect(r.crs.slice(1)).toEqual([0, 1, 0]);
  });
});
