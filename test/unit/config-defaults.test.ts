// With no overrides, resolveConfig hands out the defaults without parsing them (a function's cold start would pay
// zod's first parse and the first Intl formatter): so the defaults must be what the schema makes of them.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, resolveConfig } from '#domain/config.ts';
import { gradingConfigFromEnv } from '#adapters/aws/env.ts';

describe('the default configuration', () => {
  it('is a valid configuration, unchanged by the schema', () => {
    // An override that changes nothing goes through the schema.
    expect(resolveConfig({ scheme: DEFAULT_CONFIG.scheme })).toEqual({ ok: true, config: DEFAULT_CONFIG });
  });

  it('is what no overrides, an empty object and an unset CRS_CONFIG give, each a copy of its own', () => {
    for (const r of [resolveConfig(), resolveConfig({})]) expect(r).toEqual({ ok: true, config: DEFAULT_CONFIG });
    expect(gradingConfigFromEnv({})).toEqual(DEFAULT_CONFIG);
    expect(gradingConfigFromEnv({ CRS_CONFIG: ' ' })).toEqual(DEFAULT_CONFIG);
    const a = gradingConfigFromEnv({});
    a.paging.timeoutMinutes.severe = 1;
    expect(DEFAULT_CONFIG.paging.timeoutMinutes.severe).toBe(5);
  });

  it('still refuses what is not an object of overrides', () => {
    expect(resolveConfig([]).ok).toBe(false);
    expect(resolveConfig(null).ok).toBe(false);
    expect(resolveConfig({ scheme: 'nope' }).ok).toBe(false);
  });
});
