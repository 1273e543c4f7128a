import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, app, adapters with fakes, handlers), test/infra (CDK template),
// test/integration (a real AWS emulator, real `crs serve` processes), test/browser (real Chromium).
// docs/testing.md says what each tier needs and how long it takes.

/**
 * The order files start in. The AWS integration files first (they take most of the run, waiting on moto; three of
 * them at once keep both cores busy). Then the other integration and browser files, which mostly wait (a `crs serve`,
 * Chromium, a minute of real time), each followed by a few of the files that only compute (infra, then the unit
 * files that draw random cases, then the other unit files), so that a waiting file runs beside files that use the
 * cores. Each group in vitest's own order (longest first once a run has recorded durations, largest first on a fresh
 * clone, which has none). Until 2026-12-07 the waiting files ran one after another, and for about 100 s of a run all
 * three workers held one each, about one core busy of two. A long file that starts last runs nearly alone at the
 * end: vitest's order had put `embedded-paging` and `embedded-clock-step` (a minute each, mostly waiting) behind
 * sixty to ninety larger unit files, and on a fresh clone the infra files (the CDK's synthesis and cfn-lint: 5 to 30
 * s each) among the unit files by size (`compliance.test.ts`, 20 s, small, was the last of two CI runs); the small
 * `replay-vs-serve-paging` (29 s) ended two others: so the waiting files are placed in the first half of the rest.
 */
const drawsCases = (path: string) =>
  /from 'fast-check'|support\/(arbitraries|paging-scripts)\.ts'/.test(readFileSync(path, 'utf8'));

class WaitingBesideComputing extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const path = f.moduleId.replaceAll('\\', '/');
      if (/\/test\/integration\/aws-[^/]*$/.test(path)) return 0;
      if (/\/test\/(integration|browser)\//.test(path)) return 1;
      if (/\/test\/infra\//.test(path)) return 2;
      return drawsCases(path) ? 3 : 4;
    };
    const [aws = [], waiting = [], ...rest] = [0, 1, 2, 3, 4].map((r) => sorted.filter((f) => rank(f) === r));
    const computing = rest.flat();
    // A waiting file before every `step` computing files: all of them placed within the first half of those.
    const step = Math.max(1, Math.ceil(computing.length / (2 * Math.max(1, waiting.length))));
    const order = [...aws];
    computing.forEach((f, i) => {
      if (i % step === 0 && waiting.length > 0) order.push(waiting.shift()!);
      order.push(f);
    });
    return [...order, ...waiting];
  }
}

/**
 * The test files that mock a module (vi.mock, vi.doMock): a mock stays registered in its worker after the file ends,
 * so these run each in a worker of its own. Found by reading the files, so that a new one is never missed.
 */
const testDir = new URL('./test/', import.meta.url);
const mockingFiles = readdirSync(testDir, { recursive: true, encoding: 'utf8' })
  .map((f) => f.replaceAll('\\', '/'))
  .filter((f) => f.endsWith('.test.ts') && /\bvi\.(do)?[mM]ock\(/.test(readFileSync(new URL(f, testDir), 'utf8')))
  .map((f) => `test/${f}`);

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/fast-check-seed.ts'],
    // The fixtures are dated 2026-01 and sent to servers on the real clock: as far behind it as a device clock can be
    // (shared/domain/device-clock.ts refuses that past 7 days). Every server of the run takes them; the rule's own
    // tests (test/unit/device-clock-agree.test.ts) set the limit they test.
    env: { CRS_MAX_OBSERVATION_AGE_DAYS: '36500' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // What a test stubs (vi.stubEnv, vi.stubGlobal) is put back after it, so nothing it stubs reaches another test.
    unstubEnvs: true,
    unstubGlobals: true,
    projects: [
      {
        // Files share worker processes (isolate: false). A fresh process for each of the ~130 files loaded vitest,
        // the AWS SDK, zod, Medplum and the CDK again each time: about 100 s of the run's CPU, on 2 cores. Each file
        // still gets fresh copies of the project's own modules (test/support/fresh-modules.ts), so no module state
        // (a Lambda handler configured from the environment as it is imported) passes from one file to the next.
        extends: true,
        test: {
          name: 'shared-workers',
          include: ['test/**/*.test.ts'],
          exclude: mockingFiles,
          isolate: false,
          setupFiles: ['test/support/fresh-modules.ts'],
        },
      },
      // Only with files to run: a project with no include pattern would take vitest's default, every test file.
      ...(mockingFiles.length > 0
        ? [{ extends: true as const, test: { name: 'mocking', include: mockingFiles } }]
        : []),
    ],
    // One file more than there are cores (vitest's default is one fewer): many files spend their time waiting on
    // other processes (a moto, a `crs serve`, Chromium) or on a server's own timers (a slow client cut off at 30 s,
    // an escalation level of 10 s), and a third file keeps both cores of the CI machine busy meanwhile
    // (docs/testing.md has the figures). Each AWS file starts a moto of its own
    // (test/support/moto.ts: moto-server.py), so the AWS files run beside each other and beside the other tiers.
    // Two files on one moto got 500s and time-outs, so with an emulator given in AWS_ENDPOINT_URL (LocalStack, a
    // moto of one's own) every file shares it, one at a time.
    maxWorkers: process.env.AWS_ENDPOINT_URL ? 1 : availableParallelism() + 1,
    sequence: { sequencer: WaitingBesideComputing },
  },
});
