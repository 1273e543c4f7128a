// Differential test of the interpretations docs/grading-rules.md section 13 lets a site configure, and of the
// placement of messages dated ahead of their arrival (section 1), against a second oracle written from the docs
// (test/support/rules-oracle-docs.ts): after every arrival of random clinical courses, in random arrival orders,
// the engine's CRS and ICANS grades are the oracle's. The episode end after hours at CRS 0 depends on arrival order
// (section 4); the oracle walks the arrivals in the same order, so it must agree there too.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { messageDigest } from '#app/digest.ts';
import { configFor, type GradingConfig } from '#domain/config.ts';
import { CEREBRAL_EDEMA, CONSCIOUSNESS, type DeviceMessage, SEIZURE } from '#domain/contract.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { clinicalCourse, nearlyOrdered, permutation } from '#test/support/arbitraries.ts';
import { enrol as enrolAt, msg as msgAt, T0 } from '#test/support/messages.ts';
import { withinGuarantees } from '#test/support/rules-guarantees.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';
import { type Arrived, docsOracle, placedAt } from '#test/support/rules-oracle-docs.ts';

const RUNS = Number(process.env.RULES_ORACLE_RUNS ?? 100);
const TIMEOUT = Math.max(30_000, RUNS * 80);
const MINUTE = 60_000;

/** The engine's grades after each arrival (a duplicate repeats the last ones). */
function engine(arrivals: Arrived[], cfg: GradingConfig) {
  let state: PatientState | undefined;
  let last = { crs: 0, icans: 0 };
  return arrivals.map(({ message, receivedAt }) => {
    const digest = messageDigest(message);
    const step = reduce(state, message, cfg, receivedAt === undefined ? { digest } : { digest, receivedAt });
    state = step.state;
    if (step.kind === 'duplicate') return { ...last, duplicate: true };
    last = { crs: step.assessment.crsGrade, icans: step.assessment.icansGrade };
    return { ...last, duplicate: false };
  });
}

function firstDisagreement(arrivals: Arrived[], cfg: GradingConfig) {
  const e = engine(arrivals, cfg);
  const o = docsOracle(arrivals, cfg);
  const k = e.findIndex((x, i) => x.crs !== o[i]!.crs || x.icans !== o[i]!.icans || x.duplicate !== o[i]!.duplicate);
  return k < 0 ? undefined : { after: k + 1, engine: e[k], oracle: o[k] };
}

/**
 * The arrivals as the engine places them (section 1: a message dated ahead of its arrival is placed there), for the
 * guarantees' check, which reads observedAt. A later message of an instant placed ahead is placed with it.
 */
function placedMessages(arrivals: Arrived[], cfg: GradingConfig): DeviceMessage[] {
  const placed = new Map<number, number>();
  return arrivals.map(({ message: m, receivedAt }) => ({
    ...m,
    observedAt: new Date(
      placedAt(placed, Date.parse(m.observedAt), cfg.aheadOfArrival === 'arrival' ? receivedAt : undefined),
    ).toISOString(),
  }));
}

type Order = (n: number, keys: number[]) => number[];
const keys = fc.array(fc.integer(), { minLength: 300, maxLength: 300 });
/** How far ahead of the server each message is dated (minutes): mostly not at all, up to the 5 the contract takes. */
const aheads = fc.array(fc.constantFrom(0, 0, 0, 0, 1, 3, 5), { minLength: 300, maxLength: 300 });

/**
 * Arrivals of a course: in `order`, and with `server` a clock that never goes back and is at least each message's
 * time less how far its device is ahead (so some are dated ahead of their arrival).
 */
function arrive(ordered: DeviceMessage[], order: number[], ahead: number[] | undefined): Arrived[] {
  let server = Number.NEGATIVE_INFINITY;
  return order.map((i, k) => {
    const message = ordered[i]!;
    if (!ahead) return { message };
    server = Math.max(server, Date.parse(message.observedAt) - ahead[k % ahead.length]! * MINUTE);
    return { message, receivedAt: server };
  });
}

function agreeOn(
  courses: fc.Arbitrary<DeviceMessage[]>,
  order: Order,
  cfg: GradingConfig,
  { numRuns = RUNS, dated = false } = {},
) {
  fc.assert(
    fc.property(courses, keys, aheads, (ordered, k, a) => {
      const arrivals = arrive(ordered, order(ordered.length, k), dated ? a : undefined);
      fc.pre(withinGuarantees(placedMessages(arrivals, cfg), cfg));
      expect(firstDisagreement(arrivals, cfg)).toBeUndefined();
    }),
    { numRuns },
  );
}

const anyOrder: Order = permutation;
const aFewLate: Order = (n, k) => nearlyOrdered(n, k, 4);
const inOrder: Order = (n) => Array.from({ length: n }, (_, i) => i);

/** Section 13, each interpretation moved off its default, in both schemes. */
const interpretations: [string, object][] = [
  ['a short exclusive fever window', { feverWindowMinutes: 45, feverWindowEdge: 'exclusive' }],
  ['a short inclusive fever window', { feverWindowMinutes: 45, feverWindowEdge: 'inclusive' }],
  ['a fever threshold of 38.3', { feverThresholdC: 38.3 }],
  ['no waiver before an infusion time', { waiverNeedsInfusionTime: true }],
  ['a nasal cannula without a flow graded high-flow', { nasalCannulaUnknownFlow: 'high' }],
  ['masking drugs: ibuprofen and anakinra only', { feverMaskingDrugs: ['ibuprofen', 'anakinra'] }],
  ['a low-flow limit of 4.74 L/min', { lowFlowMaxLpm: 4.74 }],
  ['stricter deployment thresholds', { hypotension: { systolicBelow: 95, mapBelow: 68 } }],
  [
    'Lee FiO2 estimates and threshold moved',
    {
      lee: {
        fio2Grade3: 0.35,
        fio2Estimate: {
          blow_by: 0.35,
          nasalCannulaPerLpm: 0.03,
          nasalCannulaMax: 0.5,
          simple_mask: 0.34,
          non_rebreather: 0.7,
          venturi: 0.5,
          high_flow_nasal_cannula: 0.3,
        },
      },
    },
  ],
  [
    'Lee high doses in the other unit',
    {
      lee: {
        highDose: {
          norepinephrine: { dose: 0.2, unit: 'mcg/kg/min' },
          dopamine: { dose: 700, unit: 'mcg/min' },
          phenylephrine: { dose: 2, unit: 'mcg/kg/min' },
          epinephrine: { dose: 0.1, unit: 'mcg/kg/min' },
        },
      },
    },
  ],
  [
    'the episode ends after 2 h at CRS 0 (short fever window)',
    { episodeEndsAfterHoursAtGrade0: 2, feverWindowMinutes: 60 },
  ],
  ['the episode ends after 30 min at CRS 0', { episodeEndsAfterHoursAtGrade0: 0.5, feverWindowMinutes: 30 }],
  ['the episode starts at the latest infusion time given', { episodeStart: 'latest-infusion' }],
  [
    'the episode at the latest infusion, ending after 1 h at CRS 0',
    { episodeStart: 'latest-infusion', episodeEndsAfterHoursAtGrade0: 1, feverWindowMinutes: 40 },
  ],
];

describe('every configurable interpretation (section 13) against the docs oracle', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    for (const [name, overrides] of interpretations) {
      const cfg = configFor(scheme, overrides);
      it(
        `${scheme}, ${name}: random arrival order, after every message`,
        () => agreeOn(clinicalCourse('I', { reinfusion: true }), anyOrder, cfg),
        TIMEOUT,
      );
    }
  }
});

describe('the episode end after hours at CRS 0 (section 4): measured as messages arrive', () => {
  const cfg = configFor('astct2019', { episodeEndsAfterHoursAtGrade0: 1, feverWindowMinutes: 40 });
  it('in order', () => agreeOn(clinicalCourse('E', { reinfusion: true }), inOrder, cfg), TIMEOUT);
  it('a few late', () => agreeOn(clinicalCourse('E', { reinfusion: true }), aFewLate, cfg), TIMEOUT);
  it(
    'dated ahead of arrival',
    () => agreeOn(clinicalCourse('E', { reinfusion: true }), aFewLate, cfg, { dated: true }),
    TIMEOUT,
  );
});

describe('messages dated ahead of their arrival are placed at it (section 1)', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    const cfg = configFor(scheme);
    it(
      `${scheme}: a few late, some dated up to 5 minutes ahead`,
      () => agreeOn(clinicalCourse('A', { reinfusion: true }), aFewLate, cfg, { dated: true }),
      TIMEOUT,
    );
    it(
      `${scheme}: random order, some dated ahead`,
      () => agreeOn(clinicalCourse('A', { reinfusion: true }), anyOrder, cfg, { dated: true }),
      TIMEOUT,
    );
  }
});

describe('aheadOfArrival "observedAt" (section 1): messages dated ahead of their arrival placed at their observedAt', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    it(
      `${scheme}: random order, some dated up to 5 minutes ahead`,
      () =>
        agreeOn(
          clinicalCourse('A', { reinfusion: true }),
          anyOrder,
          configFor(scheme, { aheadOfArrival: 'observedAt' }),
          {
            dated: true,
          },
        ),
      TIMEOUT,
    );
  }
});

describe('ICANS (section 8): neuro fields merged one by one, in any arrival order (rules 1.1 items 1, 2 and 6)', () => {
  const P = 'N';
  const fields = fc
    .record(
      {
        iceScore: fc.integer({ min: 0, max: 10 }),
        consciousness: fc.constantFrom(...CONSCIOUSNESS),
        seizure: fc.constantFrom(...SEIZURE),
        motorWeakness: fc.boolean(),
        cerebralEdema: fc.constantFrom(...CEREBRAL_EDEMA),
      },
      { requiredKeys: [] },
    )
    .filter((n) => Object.keys(n).length > 0);
  /** Assessments at a few instants (several may share one), each field sent in a message of its own or with others. */
  const assessments = fc
    .array(fc.tuple(fc.integer({ min: 0, max: 6 }), fields, fc.array(fc.nat(3), { minLength: 5, maxLength: 5 })), {
      minLength: 1,
      maxLength: 12,
    })
    .map((items) => {
      const out: DeviceMessage[] = [];
      let n = 0;
      for (const [slot, neuro, parts] of items) {
        const groups = new Map<number, Record<string, unknown>>();
        Object.entries(neuro).forEach(([f, v], i) => {
          const g = parts[i]!;
          groups.set(g, { ...groups.get(g), [f]: v });
        });
        for (const section of groups.values())
          out.push({
            messageId: `${P}-${n++}`,
            patientId: P,
            observedAt: new Date(T0 + slot * 10 * MINUTE).toISOString(),
            source: { deviceId: 'ehr-N', kind: 'ehr' },
            neuro: section as DeviceMessage['neuro'],
          });
      }
      return out;
    });
  const cfg = configFor('astct2019', { holdMinutes: 0 });

  it('after every arrival the grade is the docs oracle, and it pages every change of it (hold 0)', () => {
    fc.assert(
      fc.property(assessments, keys, (ordered, k) => {
        const arrivals = permutation(ordered.length, k).map((i) => ({ message: ordered[i]! }));
        expect(firstDisagreement(arrivals, cfg)).toBeUndefined();
        let state: PatientState | undefined;
        let grade = 0;
        for (const { message } of arrivals) {
          const step = reduce(state, message, cfg, { digest: messageDigest(message) });
          state = step.state;
          if (step.kind !== 'applied') continue;
          const pages = step.notifications.filter((p) => p.condition === 'icans');
          const now = step.assessment.icansGrade;
          expect(pages.map((p) => [p.fromGrade, p.toGrade])).toEqual(now === grade ? [] : [[grade, now]]);
          grade = now;
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('with no field sent twice at one instant, the grade after the last message does not depend on arrival order', () => {
    const once = assessments.filter((ms) => {
      const seen = new Set<string>();
      for (const m of ms)
        for (const f of Object.keys(m.neuro!)) {
          const key = `${m.observedAt}|${f}`;
          if (seen.has(key)) return false;
          seen.add(key);
        }
      return true;
    });
    fc.assert(
      fc.property(once, keys, keys, (ordered, k1, k2) => {
        const grade = (order: number[]) =>
          engine(
            order.map((i) => ({ message: ordered[i]! })),
            cfg,
          ).at(-1)!.icans;
        expect(grade(permutation(ordered.length, k1))).toBe(grade(permutation(ordered.length, k2)));
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('the history bounds (section 9): a late reading or section placed exactly as the docs say', () => {
  const B = 6;
  const V = 4;
  const small = (scheme: 'astct2019' | 'lee2014') =>
    configFor(scheme, { bpHistory: B, vasopressorHistory: V, feverHistory: 64 });
  const hasReading = (m: DeviceMessage) =>
    m.vitals?.systolicBP !== undefined || m.vitals?.meanArterialPressure !== undefined;
  const hasSection = (m: DeviceMessage) => m.vasopressors !== undefined;

  /**
   * The course in order, but message `pick` (one with a reading or a section) arrives as late as it may while fewer
   * than B readings and fewer than V sections observed after it have been accepted (`extra` 0), or one arrival later
   * (`extra` 1: at the bound, where it may be folded away). Undefined when the course has no such message.
   */
  function lateAtTheBound(ordered: DeviceMessage[], pick: number, extra: 0 | 1): Arrived[] | undefined {
    const candidates = ordered.map((_, i) => i).filter((i) => hasReading(ordered[i]!) || hasSection(ordered[i]!));
    if (candidates.length === 0) return undefined;
    const i = candidates[pick % candidates.length]!;
    const t = Date.parse(ordered[i]!.observedAt);
    const readings = new Set<number>();
    const sections = new Set<number>();
    let p = i;
    for (let j = i + 1; j < ordered.length; j++) {
      const m = ordered[j]!;
      const tj = Date.parse(m.observedAt);
      if (tj > t && hasReading(m)) readings.add(tj);
      if (tj > t && hasSection(m)) sections.add(tj);
      if (readings.size >= B || sections.size >= V) {
        if (extra === 1) p = j;
        break;
      }
      p = j;
    }
    const order = ordered.map((_, j) => j).filter((j) => j !== i);
    order.splice(order.indexOf(p) + 1, 0, i);
    return order.map((j) => ({ message: ordered[j]! }));
  }

  it('the bounds are both: sections folded fold the readings before them (a cuff every 15 min, pumps every minute)', () => {
    // Defaults: 64 readings, 32 sections. A cuff reading every 15 minutes and the pump's section every minute: a
    // reading charted 45 minutes late has 3 readings after it, but 45 sections: folded away, as section 9 says (fewer
    // than 64 readings AND fewer than 32 sections after it). Here it would have made two low readings in a row.
    const P = 'CUFF';
    const cfg = configFor('astct2019');
    const arrivals: DeviceMessage[] = [enrolAt(P), msgAt(P, 0, { vitals: { temperatureC: 38.5 } })];
    for (let m = 1; m <= 100; m++)
      arrivals.push(msgAt(P, m, { vasopressors: [{ drug: 'norepinephrine', dose: 0, unit: 'mcg/min' }] }));
    for (const m of [30, 60, 75, 90]) arrivals.push(msgAt(P, m, { vitals: { systolicBP: m === 60 ? 85 : 120 } }));
    const late = msgAt(P, 55, { vitals: { systolicBP: 84 } });
    const r = engine(
      [...arrivals, late].map((message) => ({ message })),
      cfg,
    );
    const oracle = docsOracle(
      [...arrivals, late].map((message) => ({ message })),
      cfg,
    );
    expect(oracle.at(-1)!.crs).toBe(1); // 55 and 60 low, then 75 and 90 normal: cleared
    expect(r.at(-1)!.crs).toBe(1);
    let state: PatientState | undefined;
    for (const m of [...arrivals, late]) state = reduce(state, m, cfg, { digest: messageDigest(m) }).state;
    expect(state!.bp.some(([t]) => t === Date.parse(late.observedAt))).toBe(false); // not kept: 3 readings after it
    expect(state!.bp.length).toBeLessThan(cfg.bpHistory);
  });

  for (const scheme of ['astct2019', 'lee2014'] as const) {
    it(
      `${scheme}: a message late by one fewer than the bounds is placed in order (both oracles agree)`,
      () => {
        const cfg = small(scheme);
        const long = clinicalCourse('B', { maxMessages: 120, minMessages: 40, reinfusion: true });
        let folded = 0;
        fc.assert(
          fc.property(long, fc.nat(), (ordered, pick) => {
            const arrivals = lateAtTheBound(ordered, pick, 0);
            fc.pre(arrivals !== undefined && withinGuarantees(placedMessages(arrivals, cfg), cfg));
            expect(firstDisagreement(arrivals!, cfg)).toBeUndefined();
            // The late message is kept in the history, in order.
            const late = arrivals!.findIndex(
              (a, k) => k > 0 && Date.parse(a.message.observedAt) < Date.parse(arrivals![k - 1]!.message.observedAt),
            );
            let state: PatientState | undefined;
            arrivals!.forEach(({ message }, k) => {
              state = reduce(state, message, cfg, { digest: messageDigest(message) }).state;
              if (k !== late) return;
              const t = Date.parse(message.observedAt);
              if (hasReading(message)) expect(state.bp.some(([x]) => x === t)).toBe(true);
              if (hasSection(message)) expect(state.pressors.some(([x]) => x === t)).toBe(true);
              if (state.bpFold.at !== Number.NEGATIVE_INFINITY) folded++;
            });
            // The first oracle reads the course as this one does.
            expect(
              oracleGrades(
                arrivals!.map((a) => a.message),
                cfg,
              ).crs,
            ).toBe(docsOracle(arrivals!, cfg).at(-1)!.crs);
          }),
          { numRuns: Math.max(20, RUNS / 2) },
        );
        expect(folded).toBeGreaterThan(0); // the bounds were reached: readings were folded before the late one came
      },
      TIMEOUT,
    );
  }
});

describe('the public vignettes under both schemes and every interpretation', () => {
  const vignettes = JSON.parse(readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8')) as {
    id: string;
    scheme: string;
    messages: DeviceMessage[];
    expect: { crs: number; icans: number };
  }[];
  it.each(vignettes.map((v) => [v.id, v] as const))(
    '%s: the engine grades as the docs oracle after every message',
    (_id, v) => {
      const arrivals = v.messages.map((message) => ({ message }));
      for (const scheme of ['astct2019', 'lee2014'] as const) {
        expect(firstDisagreement(arrivals, configFor(scheme))).toBeUndefined();
        for (const [, overrides] of interpretations)
          expect(firstDisagreement(arrivals, configFor(scheme, overrides))).toBeUndefined();
      }
      // In its own scheme the oracle gives what the vignette says (the oracle's reading checked on them).
      const own = docsOracle(arrivals, configFor(v.scheme as 'astct2019' | 'lee2014')).at(-1)!;
      expect([own.crs, own.icans]).toEqual([v.expect.crs, v.expect.icans]);
    },
  );
});
