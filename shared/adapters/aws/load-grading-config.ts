// The grading configuration of the functions that check nothing else with zod. A module of its own, apart from
// env.ts: a dynamic import is a file of the bundle wherever it is written, and esbuild shares what it needs (the
// defaults, zod's parts for the configuration's schema) with every bundle that imports the module holding it, so
// that in env.ts it added 7 KB to what the ingest function reads at a cold start.
import type { GradingConfig } from '#domain/config.ts';
import { DEFAULT_CONFIG } from '#domain/config-defaults.ts';
import { ENV } from './env.ts';

/**
 * The grading configuration of a function that checks nothing else with zod (notify, escalate, ack): the defaults,
 * or, when the stack ships CRS_CONFIG_FILE, its overrides checked by the configuration's schema, which is loaded
 * then (grading-config.ts): without overrides these functions load no zod (docs/cost.md "Cold start").
 */
export async function loadGradingConfig(env: NodeJS.ProcessEnv = process.env): Promise<GradingConfig> {
  if (!env[ENV.gradingConfigFile]) return structuredClone(DEFAULT_CONFIG);
  return (await import('./grading-config.ts')).gradingConfigFromEnv(env);
}
