// crs-rules.md version 1.1 at its boundaries: each threshold exactly, one step either side (0.01 °C, 0.1 mmHg,
// 0.0001 FiO2, one millisecond of time), and the end of each time window. Every case quotes the clause it pins.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { T0, enrol } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';

const P = 'BND';
const lee = config({ scheme: 'lee2014' });
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

type Sections = Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>;
let counter = 0;
/** A message observed `ms` milliseconds after T0 (the builders in messages.ts work in whole minutes). */
const at = (ms: number, sections: Sections): DeviceMessage => ({
  messageId: `${P}-b${++counter}`,
  patientId: P,
  observedAt: new Date(T0 + ms).toISOString(),
  source: { deviceId: `dev-${P}`, kind: 'monitor' },
  ...sections,
});
const temp = (ms: number, temperatureC: number) => at(ms, { vitals: { temperatureC } });
const sys = (ms: number, systolicBP: number) => at(ms, { vitals: { systolicBP } });
const map = (ms: number, meanArterialPressure: number) => at(ms, { vitals: { meanArterialPressure } });
const pulse = (ms: number) => at(ms, { vitals: { heartRate: 80 } });
const crs = (msgs: DeviceMessage[], cfg = config()) => run(msgs, cfg).last.crsGrade;

describe('section 1: "any temperature >= 38.0 °C", one step either side', () => {
  it.each([
    [37.99, 0],
    [38.0, 1],
    [38.01, 1],
  ])('%s °C: CRS %i in both schemes', (c, grade) => {
    expect(crs([enrol(P), temp(0, c)])).toBe(grade);
    expect(crs([enrol(P), temp(0, c)], lee)).toBe(grade);
  });

  it('a configured threshold is inclusive at its value (feverThresholdC 38.3: 38.29 is not fever, 38.3 is)', () => {
    const cfg = config({ feverThresholdC: 38.3 });
    expect(crs([enrol(P), temp(0, 38.29)], cfg)).toBe(0);
    expect(crs([enrol(P), temp(0, 38.3)], cfg)).toBe(1);
  });

  it('property: at 0.01 °C resolution, CRS 1 exactly when the temperature is >= 38.0 (both schemes)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3600, max: 4000 }), (hundredths) => {
        const c = hundredths / 100;
        const want = hundredths >= 3800 ? 1 : 0;
        expect(crs([enrol(P), temp(0, c)])).toBe(want);
        expect(crs([enrol(P), temp(0, c)], lee)).toBe(want);
      }),
      { numRuns: 200, examples: [[3799], [3800]] },
    );
  });
});

describe('section 1: "observed within the fever window (default 24 h) before the patient clock", to the millisecond', () => {
  const DAY = 24 * HOUR;

  it('inclusive (the default): a fever exactly 24 h before the clock counts, 24 h and 1 ms does not', () => {
    expect(crs([enrol(P), temp(0, 38.5), pulse(DAY)])).toBe(1);
    expect(crs([enrol(P), temp(0, 38.5), pulse(DAY + 1)])).toBe(0);
  });

  it('exclusive (feverWindowEdge): 1 ms inside the window counts, exactly 24 h does not', () => {
    const cfg = config({ feverWindowEdge: 'exclusive' });
    expect(crs([enrol(P), temp(0, 38.5), pulse(DAY - 1)], cfg)).toBe(1);
    expect(crs([enrol(P), temp(0, 38.5), pulse(DAY)], cfg)).toBe(0);
  });

  it('a late fever (arriving after the clock moved on) is judged against the same edge', () => {
    // Section 1: a late message "still counts for history-based criteria (fever window ...)".
    expect(crs([enrol(P), pulse(DAY), temp(0, 38.5)])).toBe(1);
    expect(crs([enrol(P), pulse(DAY + 1), temp(0, 38.5)])).toBe(0);
  });

  it('a configured window ends where it says (feverWindowMinutes 90: 90 min counts, 90 min and 1 ms does not)', () => {
    const cfg = config({ feverWindowMinutes: 90 });
    expect(crs([enrol(P), temp(0, 38.5), pulse(90 * MINUTE)], cfg)).toBe(1);
    expect(crs([enrol(P), temp(0, 38.5), pulse(90 * MINUTE + 1)], cfg)).toBe(0);
  });

  it('property: within 5 s either side of the edge, CRS 1 exactly when the fever is at most 24 h old', () => {
    fc.assert(
      fc.property(fc.integer({ min: -5 * SECOND, max: 5 * SECOND }), (offset) => {
        expect(crs([enrol(P), temp(0, 38.5), pulse(DAY + offset)])).toBe(offset <= 0 ? 1 : 0);
      }),
      { numRuns: 200, examples: [[-1], [0], [1]] },
    );
  });

  it('a fever exactly 24 h old still counts after later febrile readings of the window were corrected away', () => {
    // Pinned by a mutation run (2026-12-06). The edge holds for every reading the state keeps: 39.5 °C at 08:00,
    // 38.5 °C at 09:00-16:00 (8 more), a pulse at 08:00 the next day, then each later reading corrected to 37.0 at
    // its instant (section 1: "the later arrival wins"). The 08:00 fever is in the window (and no later reading
    // covers it, so it is kept: docs/grading-rules.md section 2): CRS 1; with the pulse 1 ms later, CRS 0. Pruning
    // the readings that left the window at "before or at" its start dropped it.
    const later = Array.from({ length: 8 }, (_, i) => (i + 1) * HOUR);
    const course = (clock: number) => [
      enrol(P),
      temp(0, 39.5),
      ...later.map((t) => temp(t, 38.5)),
      pulse(clock),
      ...later.map((t) => temp(t, 37)),
    ];
    for (const cfg of [config(), lee]) {
      expect(oracleGrades(course(DAY), cfg).crs).toBe(1);
      expect(crs(course(DAY), cfg)).toBe(1);
      expect(crs(course(DAY + 1), cfg)).toBe(0);
    }
  });
});

describe('section 1: "systolic < 90 mmHg or mean arterial pressure < 65 mmHg", the thresholds strict', () => {
  const febrile = [enrol(P), temp(0, 39)];

  it.each([
    ['systolic 89.9 twice', 2, [sys(MINUTE, 89.9), sys(2 * MINUTE, 89.9)]],
    ['systolic 90 twice', 1, [sys(MINUTE, 90), sys(2 * MINUTE, 90)]],
    ['MAP 64.9 twice', 2, [map(MINUTE, 64.9), map(2 * MINUTE, 64.9)]],
    ['MAP 65 twice', 1, [map(MINUTE, 65), map(2 * MINUTE, 65)]],
    ['systolic 89.9 then MAP 64.9: both low readings, consecutive', 2, [sys(MINUTE, 89.9), map(2 * MINUTE, 64.9)]],
  ] as const)('%s -> CRS %i', (_name, grade, readings) => {
    expect(crs([...febrile, ...readings])).toBe(grade);
  });

  it("a patient's own threshold is strict too (systolic 80: 80 is normal, 79.9 low)", () => {
    // "adult defaults, configurable per deployment and per patient".
    const child = enrol(P, -60, { weightKg: 20, hypotension: { systolicBelow: 80, mapBelow: 50 } });
    expect(crs([child, temp(0, 39), sys(MINUTE, 80), sys(2 * MINUTE, 80)])).toBe(1);
    expect(crs([child, temp(0, 39), sys(MINUTE, 79.9), sys(2 * MINUTE, 79.9)])).toBe(2);
    expect(crs([child, temp(0, 39), map(MINUTE, 50), map(2 * MINUTE, 50)])).toBe(1);
    expect(crs([child, temp(0, 39), map(MINUTE, 49.9), map(2 * MINUTE, 49.9)])).toBe(2);
  });

  it("property: for any patient's systolic threshold, a pair of readings is hypotension exactly below it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 60, max: 110 }), fc.integer({ min: -30, max: 30 }), (threshold, tenths) => {
        const reading = (threshold * 10 + tenths) / 10;
        const e = enrol(P, -60, { hypotension: { systolicBelow: threshold } });
        expect(crs([e, temp(0, 39), sys(MINUTE, reading), sys(2 * MINUTE, reading)])).toBe(tenths < 0 ? 2 : 1);
      }),
      {
        numRuns: 200,
        examples: [
          [90, -1],
          [90, 0],
        ],
      },
    );
  });
});

describe('section 1: clearing "after two consecutive normal readings observed strictly after the last vasopressor stopped"', () => {
  const STOP = 10 * MINUTE;
  const norepi = (dose: number) => [{ drug: 'norepinephrine' as const, dose, unit: 'mcg/min' as const }];
  const course = (stop: DeviceMessage) => [enrol(P), temp(0, 39), at(MINUTE, { vasopressors: norepi(5) }), stop];

  it.each([
    ['a stop ([])', at(STOP, { vasopressors: [] })],
    ['a paused pump (dose 0 "is a paused pump (not infusing)")', at(STOP, { vasopressors: norepi(0) })],
  ])('after %s: a normal reading at the instant of the stop counts for nothing; 1 ms later it counts', (_n, stop) => {
    expect(crs(course(stop))).toBe(2); // "hypotension requiring vasopressors" stays after the stop
    expect(crs([...course(stop), sys(STOP, 120), sys(STOP + 1, 120)])).toBe(2);
    expect(crs([...course(stop), sys(STOP + 1, 120), sys(STOP + 2, 120)])).toBe(1);
  });

  it('a vasopressor period separates readings: a normal one before it never pairs with one after the stop', () => {
    // Low, low (hypotension), normal; the vasopressor starts with a normal reading at its instant (taken while it
    // infuses); it stops; one normal reading is not two consecutive normal readings after the stop.
    const msgs = [
      enrol(P),
      temp(0, 39),
      sys(MINUTE, 85),
      sys(2 * MINUTE, 84),
      sys(3 * MINUTE, 120),
      at(4 * MINUTE, { vasopressors: norepi(5), vitals: { systolicBP: 121 } }),
      at(STOP, { vasopressors: [] }),
      sys(STOP + 1, 122),
    ];
    expect(crs(msgs)).toBe(2);
    expect(crs([...msgs, sys(STOP + 2, 123)])).toBe(1);
  });
});

describe('section 1: the fever waiver at the edges of its times, to the millisecond', () => {
  const lowPairNextDay = [map(26 * HOUR, 60), map(26 * HOUR + MINUTE, 60)];
  const masking = (ms: number) => at(ms, { medications: [{ drug: 'acetaminophen' }] });

  it('a masking medication 1 ms before the earliest fever is premedication; at its instant it waives fever', () => {
    // "with an observedAt at or after the time grade >= 1 was first reached (the earliest observedAt of a febrile
    // temperature in the episode)"; "Medication given before that time (premedication) does not waive fever."
    expect(crs([enrol(P), masking(HOUR - 1), temp(HOUR, 38.5), ...lowPairNextDay])).toBe(0);
    expect(crs([enrol(P), masking(HOUR), temp(HOUR, 38.5), ...lowPairNextDay])).toBe(2);
    expect(crs([enrol(P), temp(HOUR, 38.5), masking(HOUR), ...lowPairNextDay])).toBe(2);
  });

  it("a fever 1 ms before the infusion is not of the episode; one at the infusion's instant is", () => {
    // "An episode starts at an enrolment's infusedAt".
    const infusedAt = new Date(T0 + HOUR).toISOString();
    const e = enrol(P, -60, { infusedAt });
    expect(crs([e, temp(HOUR - 1, 38.5), masking(2 * HOUR), ...lowPairNextDay])).toBe(0);
    expect(crs([e, temp(HOUR, 38.5), masking(2 * HOUR), ...lowPairNextDay])).toBe(2);
  });

  it('the optional episode end (episodeEndsAfterHoursAtGrade0 12) has not come 1 ms before 12 h at CRS 0', () => {
    const cfg = config({ episodeEndsAfterHoursAtGrade0: 12 });
    // CRS 0 from 25 h (the fever left the window, afebrile, no hypotension yet). A low MAP at 37 h - 2 ms, still CRS
    // 0, then one at 37 h - 1 ms: hypotension with the waiver. A low MAP at exactly 37 h (CRS 0 for 12 h: the
    // episode ends), then one 1 ms later: hypotension without fever or waiver, CRS 0.
    const base = [enrol(P), temp(0, 39), masking(30 * MINUTE), temp(25 * HOUR, 37)];
    expect(crs([...base, map(37 * HOUR - 2, 60), map(37 * HOUR - 1, 60)], cfg)).toBe(2);
    expect(crs([...base, map(37 * HOUR, 60), map(37 * HOUR + 1, 60)], cfg)).toBe(0);
  });
});

describe('section 3: Lee 2014 "FiO2 >= 0.40" one step either side, given and estimated', () => {
  const oxygen = (o: NonNullable<DeviceMessage['oxygen']>, cfg = lee) =>
    run([enrol(P), at(0, { oxygen: o })], cfg).last;

  it.each([
    [0.3999, 2],
    [0.4, 3],
    [0.4001, 3],
  ])('FiO2 %s given -> grade %i', (fio2, grade) => {
    expect(oxygen({ device: 'venturi', fio2 }).crsGrade).toBe(grade);
  });

  it('the nasal cannula estimate reaches its cap exactly at 6 L/min (0.21 + 0.04 x 6 = 0.45), no further', () => {
    // "nasal cannula 0.21 + 0.04 x flow (L/min), at most 0.45".
    const fio2 = (flowLpm: number) =>
      oxygen({ device: 'nasal_cannula', flowLpm }).reasons.find((r) => r.criterion === 'fio2')!.value;
    expect(fio2(5.99)).toBe(0.4496);
    expect(fio2(6)).toBe(0.45);
    expect(fio2(6.01)).toBe(0.45);
  });

  it('a configured threshold is inclusive at its value (fio2Grade3 0.35: 3.5 L/min estimates 0.35, grade 3)', () => {
    const cfg = config({ scheme: 'lee2014', lee: { fio2Grade3: 0.35 } });
    expect(oxygen({ device: 'nasal_cannula', flowLpm: 3.49 }, cfg).crsGrade).toBe(2);
    expect(oxygen({ device: 'nasal_cannula', flowLpm: 3.5 }, cfg).crsGrade).toBe(3);
  });
});

describe('section 5: "stayed below the notified grade for at least the hold time", to the millisecond', () => {
  const course = [enrol(P), at(0, { vitals: { temperatureC: 39 }, oxygen: { device: 'non_rebreather' } })];
  const below = at(10 * MINUTE, { oxygen: { device: 'room_air' } });

  it('1 ms short of 60 min below: nothing; exactly 60 min: the stand-down, once', () => {
    expect(pages(run([...course, below, pulse(70 * MINUTE - 1)]))).toEqual(['escalation crs 0->3 hematology+icu']);
    const r = run([...course, below, pulse(70 * MINUTE), pulse(71 * MINUTE)]);
    expect(pages(r)).toEqual(['escalation crs 0->3 hematology+icu', 'de-escalation crs 3->1 hematology+icu']);
    expect(r.notifications.at(-1)!.at).toBe('2026-01-10T09:10:00Z');
  });

  it('a configured hold of 0 stands down at the first message below', () => {
    const r = run([...course, below], config({ holdMinutes: 0 }));
    expect(pages(r).at(-1)).toBe('de-escalation crs 3->1 hematology+icu');
  });
});

describe('section 6: "at most 800 mg per dose", at the cap', () => {
  it.each([
    [100, 800, false],
    [100.1, 800, true],
  ])('%s kg: %i mg (capped: %s)', (weightKg, doseMg, capped) => {
    const n = run([enrol(P, -60, { weightKg }), temp(0, 39)]).notifications.at(-1)!;
    expect(n.tocilizumab).toMatchObject({ doseMg, capped, mgPerKg: 8 });
  });
});
