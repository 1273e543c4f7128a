import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, app, adapters with fakes, handlers), test/infra (CDK template),
// test/integration (a real AWS emulator, real `crs serve` processes), test/browser (real Chromium).
// docs/testing.md says what each tier needs and how long it takes.

/**
 * The AWS integration files first (they take most of the run, waiting on moto), then the infra and browser files
 * (CDK synths and cfn-lint, Chromium: 20-55 s each), then the rest, each group in vitest's own order (longest first
 * once a run has recorded durations; a fresh clone, as CI is, has none): the short files fill the other workers
 * meanwhile instead of one long file starting last and running alone (compliance.test.ts did, 32 s at the end).
 */
class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) =>
      /[\\/]test[\\/]integration[\\/]aws-[^\\/]*$/.test(f.moduleId)
        ? 0
        : /[\\/]test[\\/](infra|browser)[\\/]/.test(f.moduleId)
          ? 1
          : 2;
    return [0, 1, 2].flatMap((r) => sorted.filter((f) => rank(f) === r));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/fast-check-seed.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One file more than there are cores (vitest's default is one fewer): many files spend their time waiting on
    // other processes (a moto, a `crs serve`, Chromium) or on a server's own timers (a slow client cut off at 30 s,
    // an escalation level of 10 s), and a third file keeps both cores of the CI machine busy meanwhile
    // (docs/testing.md has the figures). Each AWS file starts a moto of its own
    // (test/support/moto.ts: moto-server.py), so the AWS files run beside each other and beside the other tiers.
    // Two files on one moto got 500s and time-outs, so with an emulator given in AWS_ENDPOINT_URL (LocalStack, a
    // moto of one's own) every file shares it, one at a time.
    maxWorkers: process.env.AWS_ENDPOINT_URL ? 1 : availableParallelism() + 1,
    sequence: { sequencer: LongFirst },
  },
});
