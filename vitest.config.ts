import { defineConfig } from 'vitest/config';

// Test tiers live in folders: test/unit (domain, handlers with fakes), test/infra (CDK template),
// test/integration (a real AWS emulator), test/browser (real Chromium).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
