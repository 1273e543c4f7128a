// Differential test: the engine (reduce, one message at a time, bounded state) against a naive oracle written
// from the rules text alone (test/support/rules-oracle.ts), which recomputes every grade from the whole set of
// accepted messages. After every arrival, both must give the same CRS (ASTCT 2019 and Lee 2014) and ICANS grades.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { configFor, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { course, permutation } from '#test/support/arbitraries.ts';
import { oracleGrades } from '#test/support/rules-oracle.ts';

const RUNS = Number(process.env.RULES_ORACLE_RUNS ?? 150);
const schemes: GradingConfig[] = [configFor('astct2019'), configFor('lee2014')];

/** The first arrival at which engine and oracle disagree, or undefined. */
function disagreement(arrivals: DeviceMessage[], cfg: GradingConfig) {
  let state: PatientState | undefined;
  let engine = { crs: 0, icans: 0 };
  for (let k = 0; k < arrivals.length; k++) {
    const step = reduce(state, arrivals[k]!, cfg, arrivalOf(arrivals[k]!));
    state = step.state;
    if (step.kind === 'applied') engine = { crs: step.assessment.crsGrade, icans: step.assessment.icansGrade };
    const oracle = oracleGrades(arrivals.slice(0, k + 1), cfg);
    if (engine.crs !== oracle.crs || engine.icans !== oracle.icans)
      return { after: k + 1, scheme: cfg.scheme, engine, oracle };
  }
  return undefined;
}

describe('the engine agrees with the naive rules oracle', () => {
  for (const cfg of schemes) {
    it(`${cfg.scheme}: random courses in a random arrival order, after every message`, () => {
      fc.assert(
        fc.property(course('R'), fc.array(fc.integer(), { minLength: 100, maxLength: 100 }), (ordered, keys) => {
          const arrivals = permutation(ordered.length, keys).map((i) => ordered[i]!);
          expect(disagreement(arrivals, cfg)).toBeUndefined();
        }),
        { numRuns: RUNS },
      );
    });
  }
});
