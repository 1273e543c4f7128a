// Differential test at the rules' edges: courses whose times sit on a lattice of the rules' durations (the fever
// window, the hold, one millisecond either side), values exactly at and one unit either side of each threshold,
// messageIds from a small pool (reused ids, exact duplicates), in any arrival order, against the naive oracle.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { configFor, type GradingConfig } from '#domain/config.ts';
import { MEDICATION_DRUGS, OXYGEN_DEVICES, VASOPRESSOR_DRUGS, type DeviceMessage } from '#domain/contract.ts';
import { reduce } from '#domain/reducer.ts';
import { deserializeState, serializeState, type PatientState } from '#domain/state.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { clinicalCourse, permutation } from '#test/support/arbitraries.ts';
import { T0 } from '#test/support/messages.ts';
import { expectedNotifications } from '#test/support/notify-model.ts';
import { run } from '#test/support/run.ts';
import { disagreement, withinGuarantees } from '#test/support/rules-guarantees.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';

const RUNS = Number(process.env.RULES_EDGE_RUNS ?? 100);
const ROUNDTRIP = process.env.RULES_EDGE_ROUNDTRIP === '1';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const P = 'EDGE';

type Sections = Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>;

/** A time on the lattice: a base, plus maybe the fever window (24 h or the site's 90 min), plus -1, 0 or 1 ms. */
const time = fc
  .tuple(
    fc.constantFrom(0, HOUR, 2 * HOUR),
    fc.constantFrom(0, 0, 24 * HOUR, 90 * MINUTE),
    fc.constantFrom(-1, 0, 0, 1),
  )
  .map(([b, w, e]) => T0 + b + w + e);

const sections: fc.Arbitrary<Sections> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(36.8, 37.99, 38, 38.01, 38.29, 38.3, 39)
      .map((temperatureC) => ({ vitals: { temperatureC } })),
  },
  {
    weight: 5,
    arbitrary: fc
      .record(
        {
          systolicBP: fc.constantFrom(89.9, 90, 91.9, 92, 120),
          meanArterialPressure: fc.constantFrom(64.9, 65, 65.9, 66, 80),
        },
        { requiredKeys: [] },
      )
      .filter((v) => Object.keys(v).length > 0)
      .map((vitals) => ({ vitals })),
  },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.record({
          drug: fc.constantFrom(...VASOPRESSOR_DRUGS),
          dose: fc.constantFrom(0, 0, 0.1, 0.2, 9.9, 10, 19.9, 20, 200),
          unit: fc.constantFrom('mcg/min' as const, 'mcg/kg/min' as const, 'units/min' as const),
        }),
        { maxLength: 2 },
      )
      .map((vasopressors) => ({ vasopressors })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...MEDICATION_DRUGS), fc.constantFrom(undefined, 0, 560))
      .map(([drug, doseMg]) => ({ medications: [doseMg === undefined ? { drug } : { drug, doseMg }] })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record(
        {
          device: fc.constantFrom(...OXYGEN_DEVICES),
          flowLpm: fc.constantFrom(3.9999, 4, 4.0001, 4.7499, 4.75, 5.9999, 6, 6.0001),
          fio2: fc.constantFrom(0.3499, 0.35, 0.3999, 0.4, 0.4001),
          forComfort: fc.boolean(),
        },
        { requiredKeys: ['device'] },
      )
      .map((oxygen) => ({ oxygen })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          iceScore: fc.constantFrom(0, 2, 3, 6, 7, 9, 10),
          consciousness: fc.constantFrom('alert' as const, 'awakens_to_voice' as const, 'unarousable' as const),
          seizure: fc.constantFrom('none' as const, 'self_limited' as const),
        },
        { requiredKeys: [] },
      )
      .filter((n) => Object.keys(n).length > 0)
      .map((neuro) => ({ neuro })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ maxCtcaeGrade: fc.nat(4), transaminitisGrade: fc.nat(4) }, { requiredKeys: [] })
      .filter((o) => Object.keys(o).length > 0)
      .map((organToxicity) => ({ organToxicity })),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      time.map((t) => ({ enrolment: { infusedAt: new Date(t).toISOString() } })),
      fc.constantFrom(29.9, 30, 70).map((weightKg) => ({ enrolment: { weightKg } })),
      fc
        .record({ systolicBelow: fc.constantFrom(90, 92), mapBelow: fc.constantFrom(65, 66) }, { requiredKeys: [] })
        .filter((h) => Object.keys(h).length > 0)
        .map((hypotension) => ({ enrolment: { hypotension } })),
    ),
  },
);

/** A course on the lattice, in observedAt order; ids from a pool of 8, some messages sent twice. */
const edgeCourse = fc
  .array(fc.tuple(time, sections, fc.nat(7), fc.nat(5)), { minLength: 1, maxLength: 30 })
  .map((items) => {
    const out: DeviceMessage[] = [];
    for (const [t, s, id, extra] of items) {
      const m: DeviceMessage = {
        messageId: `${P}-${id}`,
        patientId: P,
        observedAt: new Date(t).toISOString(),
        source: { deviceId: `dev-${P}`, kind: 'monitor' },
        ...s,
      };
      out.push(m);
      if (extra === 0) out.push(structuredClone(m));
    }
    return out.sort((a, b) => Date.parse(a.observedAt) - Date.parse(b.observedAt));
  });

/** With RULES_EDGE_ROUNDTRIP=1 the state is read back after every message, as each store would read it. */
const load = (s: PatientState) =>
  ROUNDTRIP
    ? deserializeState(serializeState(expandState(JSON.parse(JSON.stringify(compactState(s))) as unknown[])))
    : s;

const site = (scheme: 'astct2019' | 'lee2014') =>
  configFor(scheme, {
    feverThresholdC: 38.3,
    feverWindowMinutes: 90,
    feverWindowEdge: 'exclusive',
    hypotension: { systolicBelow: 92, mapBelow: 66 },
    lowFlowMaxLpm: 4,
    lee: { fio2Grade3: 0.35 },
  });

const configs: [string, GradingConfig][] = [
  ['astct2019', configFor('astct2019')],
  ['lee2014', configFor('lee2014')],
  ['astct2019 site', site('astct2019')],
  ['lee2014 site', site('lee2014')],
  ['astct2019 24 h exclusive', configFor('astct2019', { feverWindowEdge: 'exclusive' })],
  [
    'astct2019 latest infusion, waiver needs it, unknown flow high',
    configFor('astct2019', {
      episodeStart: 'latest-infusion',
      waiverNeedsInfusionTime: true,
      nasalCannulaUnknownFlow: 'high',
    }),
  ],
  [
    'lee2014 latest infusion, unknown flow high',
    configFor('lee2014', { episodeStart: 'latest-infusion', nasalCannulaUnknownFlow: 'high' }),
  ],
];

/** Every course of the lattice, in any arrival order, holds `check` under each configuration. */
function eachConfig(title: string, check: (arrivals: DeviceMessage[], cfg: GradingConfig) => void) {
  describe(title, () => {
    it.each(configs)(
      '%s',
      (_name, cfg) => {
        const keys = fc.array(fc.integer(), { minLength: 60, maxLength: 60 });
        fc.assert(
          fc.property(edgeCourse, keys, (ordered, k) =>
            check(
              permutation(ordered.length, k).map((i) => ordered[i]!),
              cfg,
            ),
          ),
          { numRuns: RUNS },
        );
      },
      120_000,
    );
  });
}

eachConfig('the engine agrees with the oracle on courses at the edges of the rules', (arrivals, cfg) => {
  fc.pre(withinGuarantees(arrivals, cfg));
  expect(disagreement(arrivals, cfg, load)).toBeUndefined();
});

eachConfig('who is paged at the edges: the engine against the section 5 model', (arrivals, cfg) => {
  const r = run(arrivals, cfg);
  const got = r.notifications.map(({ kind, condition, fromGrade, toGrade, teams }) => ({
    kind,
    condition,
    fromGrade,
    toGrade,
    teams,
  }));
  expect(got).toEqual(expectedNotifications(r.assessments, cfg).map(({ step: _s, ...n }) => n));
});

describe('what a message dated ahead of its arrival is graded at (docs/grading-rules.md section 1)', () => {
  // Pinned 2026-12-07: a message dated ahead of its arrival (a device clock up to 5 min fast) is placed at its
  // arrival, and the windows and instants of the rules are then compared with where it was placed, not with its
  // observedAt. The rules (section 1) grade on observedAt alone: at these edges the grade depends on arrival times.
  const Q = 'AHEAD';
  const T = Date.parse('2026-01-10T10:00:00Z');
  const at = (id: string, t: number, s: Sections, kind: 'monitor' | 'ehr' = 'monitor'): DeviceMessage => ({
    messageId: `${Q}-${id}`,
    patientId: Q,
    observedAt: new Date(t).toISOString(),
    source: { deviceId: `dev-${Q}`, kind },
    ...s,
  });
  /** The CRS grade after the arrivals, each received at its observedAt but those given another time. */
  const graded = (
    arrivals: DeviceMessage[],
    received: Map<DeviceMessage, number> = new Map(),
    config: GradingConfig = configFor('astct2019'),
  ) => {
    let state: PatientState | undefined;
    let crs = 0;
    for (const m of arrivals) {
      const receivedAt = received.get(m) ?? Date.parse(m.observedAt);
      const step = reduce(state, m, config, { ...arrivalOf(m), receivedAt });
      state = step.state;
      if (step.kind === 'applied') crs = step.assessment.crsGrade;
    }
    return crs;
  };
  const cfg = configFor('astct2019');
  /** Infused 10:00, a fever at 10:02, tocilizumab at 11:00, two low MAPs the next day: CRS 2 by the rules. */
  const waived = () => {
    const fever = at('f', T + 2 * MINUTE, { vitals: { temperatureC: 38.5 } });
    const course = [
      at('e', T - HOUR, { enrolment: { infusedAt: new Date(T).toISOString() } }, 'ehr'),
      fever,
      at('t', T + HOUR, { medications: [{ drug: 'tocilizumab' }] }, 'ehr'),
      at('l1', T + 30 * HOUR, { vitals: { meanArterialPressure: 60 } }),
      at('l2', T + 30 * HOUR + 5 * MINUTE, { vitals: { meanArterialPressure: 60 } }),
    ];
    return { fever, course };
  };

  it('a fever observed 2 min after the infusion by a monitor 3 min fast is not of the episode: no waiver', () => {
    const { fever, course } = waived();
    expect(oracleGrades(course, cfg).crs).toBe(2);
    expect(graded(course)).toBe(2);
    expect(graded(course, new Map([[fever, T - MINUTE]]))).toBe(0); // placed at 09:59, before the infusion
  });

  it('a fever from a monitor 2 min fast leaves the 24 h window 2 min early', () => {
    const fever = at('f', T + 2 * MINUTE, { vitals: { temperatureC: 38.5 } });
    const course = [fever, at('p', T + 24 * HOUR + MINUTE, { vitals: { heartRate: 80 } })];
    expect(oracleGrades(course, cfg).crs).toBe(1);
    expect(graded(course)).toBe(1);
    expect(graded(course, new Map([[fever, T]]))).toBe(0);
  });

  describe('with aheadOfArrival "observedAt" (2026-12-07): at its observedAt, as the rules read', () => {
    // Built in the tests (a configuration that does not know the option throws), as the others above.
    const observedAt = (more: object = {}) => configFor('astct2019', { aheadOfArrival: 'observedAt', ...more });

    it('the fever a monitor 3 min fast dates 2 min after the infusion is of the episode: waived, CRS 2', () => {
      const { fever, course } = waived();
      const literal = observedAt();
      expect(oracleGrades(course, literal).crs).toBe(2);
      expect(graded(course, new Map([[fever, T - MINUTE]]), literal)).toBe(2);
    });

    it('a fever from a monitor 5 min fast stays in the 24 h window to the millisecond of its observedAt', () => {
      const fever = at('f', T + 2 * MINUTE, { vitals: { temperatureC: 38.5 } });
      const received = new Map([[fever, T - 3 * MINUTE]]);
      const literal = observedAt();
      const edge = T + 2 * MINUTE + 24 * HOUR; // inclusive by default: still in the window
      expect(graded([fever, at('p', edge, { vitals: { heartRate: 80 } })], received, literal)).toBe(1);
      expect(graded([fever, at('p', edge + 1, { vitals: { heartRate: 80 } })], received, literal)).toBe(0);
      const exclusive = observedAt({ feverWindowEdge: 'exclusive' });
      expect(graded([fever, at('p', edge - 1, { vitals: { heartRate: 80 } })], received, exclusive)).toBe(1);
      expect(graded([fever, at('p', edge, { vitals: { heartRate: 80 } })], received, exclusive)).toBe(0);
    });

    it('places nothing ahead: the state and every step are those of a replay, which has no arrival times', () => {
      const fever = at('f', T + 2 * MINUTE, { vitals: { temperatureC: 38.5 } });
      const correction = at('c', T + 2 * MINUTE, { vitals: { temperatureC: 36.9 } });
      const literal = observedAt();
      const live = walk([fever, correction], (m) => Date.parse(m.observedAt) - 4 * MINUTE, literal);
      const replayed = walk([fever, correction], () => undefined, literal);
      expect(live.state.placedAhead).toEqual([]);
      expect(live).toEqual(replayed);
      // The default places both at the arrival of the first (one instant), and the correction still merges.
      const placed = walk([fever, correction], (m) => Date.parse(m.observedAt) - 4 * MINUTE, cfg);
      expect(placed.state.placedAhead).toEqual([[T + 2 * MINUTE, T - 2 * MINUTE]]);
      expect(placed.steps.map((s) => s.crsGrade)).toEqual([1, 0]);
    });

    it('keeps an instant the default placed before the switch: its correction still merges with it', () => {
      // A deployment switched to "observedAt" with a state the default wrote: the fever placed at its arrival stays
      // there, and the correction of its observedAt replaces it (one instant), not a second reading after it.
      const fever = at('f', T + 2 * MINUTE, { vitals: { temperatureC: 38.5 } });
      const correction = at('c', T + 2 * MINUTE, { vitals: { temperatureC: 36.9 } });
      const before = reduce(undefined, fever, cfg, { ...arrivalOf(fever), receivedAt: T - 2 * MINUTE });
      expect(before.state.placedAhead).toEqual([[T + 2 * MINUTE, T - 2 * MINUTE]]);
      const after = reduce(before.state, correction, observedAt(), { ...arrivalOf(correction), receivedAt: T });
      expect(after.kind === 'applied' && after.assessment.crsGrade).toBe(0);
    });
  });
});

/** A step's result: when it is as of, its grades and its pages (a duplicate: the ones before it, no pages). */
type Walked = { at: string; crsGrade: number; icansGrade: number; pages: unknown[] };

/** Every arrival reduced with `receivedAt` as its arrival (undefined: none, as replay): the last state, the steps. */
function walk(
  arrivals: DeviceMessage[],
  receivedAt: (m: DeviceMessage, i: number) => number | undefined,
  config: GradingConfig,
): { state: PatientState; steps: Walked[] } {
  let state: PatientState | undefined;
  let last: Walked = { at: '', crsGrade: 0, icansGrade: 0, pages: [] };
  const steps = arrivals.map((m, i) => {
    const r = receivedAt(m, i);
    const step = reduce(state, m, config, r === undefined ? arrivalOf(m) : { ...arrivalOf(m), receivedAt: r });
    state = step.state;
    const { assessment: a, notifications } = step.kind === 'applied' ? step : { assessment: last, notifications: [] };
    last = { at: a.at, crsGrade: a.crsGrade, icansGrade: a.icansGrade, pages: notifications };
    return last;
  });
  return { state: state!, steps };
}

describe('aheadOfArrival "observedAt": messages dated up to 5 min ahead of their arrival grade as the rules say', () => {
  // Random courses, in any arrival order, each message arriving up to 5 minutes before its observedAt (a device
  // clock that fast; the contract refuses more): after every arrival the engine gives the rules oracle's grades
  // (inside the guarantees it documents), and its states, grades and pages are those of a replay of the same
  // arrivals, which has no arrival times.
  const aheadMs = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 * MINUTE }), fc.constant(5 * MINUTE));
  const aheads = fc.array(aheadMs, { minLength: 300, maxLength: 300 });
  const keys = fc.array(fc.integer(), { minLength: 300, maxLength: 300 });
  const check = (ordered: DeviceMessage[], k: number[], a: number[], config: GradingConfig) => {
    const arrivals = permutation(ordered.length, k).map((i) => ordered[i]!);
    const live = walk(arrivals, (m, i) => Date.parse(m.observedAt) - a[i % a.length]!, config);
    expect(live.state.placedAhead).toEqual([]);
    expect(live).toEqual(walk(arrivals, () => undefined, config));
    if (!withinGuarantees(arrivals, config)) return;
    live.steps.forEach((step, i) => {
      const oracle = oracleGrades(arrivals.slice(0, i + 1), config);
      expect({ after: i + 1, crs: step.crsGrade, icans: step.icansGrade }).toEqual({ after: i + 1, ...oracle });
    });
  };
  // Built in the tests: a configuration that does not know the option throws.
  const literal = (c: GradingConfig) => configFor(c.scheme, { ...c, aheadOfArrival: 'observedAt' });
  it.each(configs)(
    'courses at the edges, %s',
    (_name, c) => {
      const config = literal(c);
      fc.assert(
        fc.property(edgeCourse, keys, aheads, (o, k, a) => check(o, k, a, config)),
        { numRuns: RUNS },
      );
    },
    120_000,
  );
  it.each(['astct2019', 'lee2014'] as const)(
    'clinical courses with re-infusions, %s',
    (scheme) => {
      const config = literal(configFor(scheme));
      fc.assert(
        fc.property(clinicalCourse(P, { reinfusion: true }), keys, aheads, (o, k, a) => check(o, k, a, config)),
        { numRuns: RUNS },
      );
    },
    120_000,
  );
});
