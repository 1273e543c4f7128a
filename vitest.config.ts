import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, app, adapters with fakes, handlers), test/infra (CDK template),
// test/integration (a real AWS emulator, real `crs serve` processes), test/browser (real Chromium).
// docs/testing.md says what each tier needs and how long it takes.

/**
 * The files that wait on other processes first, the AWS integration files first of all (they take most of the run,
 * waiting on moto), then the other integration and browser files (a `crs serve`, Chromium, a minute of real time),
 * then the infra files, then the unit files, each group in vitest's own order (longest first once a run has recorded
 * durations, largest first on a fresh clone, which has none). A long file that starts last runs nearly alone at the
 * end: vitest's order had put `embedded-paging` and `embedded-clock-step` (a minute each, mostly waiting) behind sixty
 * to ninety larger unit files, and on a fresh clone the infra files (the CDK's synthesis and cfn-lint: 5 to 30 s each)
 * among the unit files by size, `compliance.test.ts` (20 s, small) the last of the run in two CI runs of 2026-12-07.
 * Among the unit files, those that draw random cases (fast-check, directly or through test/support's arbitraries and
 * paging scripts) go first: the longest of the tier are among them, most of them small files that a fresh clone's
 * order started last (`replay-vs-serve-paging`, 29 s, ended two CI runs of 2026-12-07 alone).
 */
const drawsCases = (path: string) =>
  /from 'fast-check'|support\/(arbitraries|paging-scripts)\.ts'/.test(readFileSync(path, 'utf8'));

class WaitingFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const path = f.moduleId.replaceAll('\\', '/');
      if (/\/test\/integration\/aws-[^/]*$/.test(path)) return 0;
      if (/\/test\/(integration|browser)\//.test(path)) return 1;
      if (/\/test\/infra\//.test(path)) return 2;
      return drawsCases(path) ? 3 : 4;
    };
    return [0, 1, 2, 3, 4].flatMap((r) => sorted.filter((f) => rank(f) === r));
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
    sequence: { sequencer: WaitingFirst },
  },
});
