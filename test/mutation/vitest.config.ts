import { defineConfig } from 'vitest/config';

// The vitest configuration of the mutation run (test/mutation/stryker.config.json; docs/testing.md): the unit files
// that grade (the rules tables, their oracles, the stored fevers), in one process each, and nothing
// that starts a server or a browser. Stryker's vitest runner narrows each mutant to the tests that cover it.
export default defineConfig({
  root: new URL('../..', import.meta.url).pathname,
  test: {
    include: ['test/unit/rules-*.test.ts', 'test/unit/state-fevers.test.ts', 'test/unit/episode-start.test.ts'],
    setupFiles: ['test/support/fast-check-seed.ts'],
    env: { CRS_MAX_OBSERVATION_AGE_DAYS: '36500', FC_SEED: '20261202', RULES_ORACLE_RUNS: '10', RULES_EDGE_RUNS: '10' },
    testTimeout: 60_000,
    maxWorkers: 1,
  },
});
