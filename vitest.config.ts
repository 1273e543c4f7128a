import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, app, adapters with fakes, handlers), test/infra (CDK template),
// test/integration (a real AWS emulator, real `crs serve` processes), test/browser (real Chromium).
// docs/testing.md says what each tier needs and how long it takes.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // On two cores vitest would run one file at a time. The integration files spend much of their time waiting on
    // other processes (moto, `crs serve`, Chromium), so two at once finish sooner; three at once share one moto so
    // much on this machine that the ingest function times out (measured: docs/testing.md).
    maxWorkers: 2,
  },
});
