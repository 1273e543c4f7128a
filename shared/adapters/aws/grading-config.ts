// The grading configuration a function reads from its environment: the defaults, with the overrides of
// CRS_CONFIG_FILE (the stack ships the file beside the handler) checked by the configuration's schema. The grade
// function reads it at its start (it loads zod for the device messages anyway); the others through
// loadGradingConfig (load-grading-config.ts), which loads this module only when there are overrides to check.
import { DEFAULT_CONFIG, resolveConfig, type GradingConfig } from '#domain/config.ts';
import { ENV, shippedFile } from './env.ts';

/** The grading configuration: the defaults, with the overrides of CRS_CONFIG_FILE when the stack ships one. */
export function gradingConfigFromEnv(env: NodeJS.ProcessEnv = process.env): GradingConfig {
  const shipped = shippedFile(ENV.gradingConfigFile, env);
  if (!shipped) return structuredClone(DEFAULT_CONFIG);
  const { named, text: raw } = shipped;
  let overrides: unknown;
  try {
    overrides = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${named} is not valid JSON: ${(err as Error).message}`);
  }
  const r = resolveConfig(overrides);
  if (!r.ok) throw new Error(`${named} is not a valid grading configuration: ${r.errors.join('; ')}`);
  return r.config;
}
