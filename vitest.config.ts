import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, app, adapters with fakes, handlers), test/infra (CDK template),
// test/integration (a real AWS emulator, real `crs serve` processes), test/browser (real Chromium).
// docs/testing.md says what each tier needs and how long it takes.

/**
 * The AWS integration files first (they take most of the run, waiting on moto), then the rest, each group slowest
 * first (SLOWEST, then vitest's own order): the short files fill the other worker at the end instead of one long
 * file starting last and running alone.
 */
class AwsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const aws = (f: TestSpecification) => /[\\/]test[\\/]integration[\\/]aws-[^\\/]*$/.test(f.moduleId);
    // Within each group the slowest first, so that the two workers end together; a fresh clone (CI) has no recorded
    // durations for vitest to go by.
    const rank = (f: TestSpecification) => {
      const path = f.moduleId.replaceAll('\\', '/');
      const i = SLOWEST.findIndex((name) => path.includes(`/test/${name}`));
      return i < 0 ? SLOWEST.length : i;
    };
    const bySlowness = (a: TestSpecification, b: TestSpecification) => rank(a) - rank(b);
    return [...sorted.filter(aws).sort(bySlowness), ...sorted.filter((f) => !aws(f)).sort(bySlowness)];
  }
}

/** The slowest test files, slowest first, as measured in fresh-clone CI runs on this machine (2026-12-02). */
const SLOWEST = [
  'integration/aws-order',
  'integration/aws-failures-sns-outage',
  'integration/aws-failures-stuck-record',
  'integration/aws-conservation',
  'integration/aws-vignettes',
  'integration/aws-paging.test',
  'integration/aws-doctor',
  'integration/aws-paging-realtime',
  'integration/aws-failures-poison',
  'integration/aws-failures-crash',
  'integration/aws-interfaces',
  'infra/stack',
  'integration/hostile-serve',
  'infra/compliance',
  'integration/embedded-paging',
  'browser/board',
  'integration/mllp-bridge',
  'integration/embedded-conservation',
  'infra/cost',
  'unit/aws-pager-crash-anywhere',
  'unit/aws-crash-anywhere',
  'unit/properties',
];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two files at once on two cores (vitest's default would be one): each AWS file starts a moto of its own
    // (test/support/moto.ts: moto-server.py), so the AWS files run beside each other and beside the other tiers.
    // Two files on one moto got 500s and time-outs, so with an emulator given in AWS_ENDPOINT_URL (LocalStack, a
    // moto of one's own) every file shares it, one at a time.
    maxWorkers: process.env.AWS_ENDPOINT_URL ? 1 : Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: AwsFirst },
  },
});
