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
    // One file at a time on two cores (vitest's default, cores - 1). Two or three AWS files at once share one moto
    // so much on the loaded 2-core machine that ingest and grade invocations time out (docs/testing.md);
    // `npm run test:unit` (no moto) runs two at once.
  },
});
