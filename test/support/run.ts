// Runs messages through the reducer the way replay does, collecting what a user would see.
import { DEFAULT_CONFIG, resolveConfig, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import { reduce, type Assessment } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';

export interface Run {
  state: PatientState | undefined;
  assessments: Assessment[];
  notifications: Notification[];
  duplicates: number;
  last: Assessment;
}

export function config(overrides: Record<string, unknown> = {}): GradingConfig {
  const r = resolveConfig(overrides);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
}

export function run(messages: DeviceMessage[], cfg: GradingConfig = DEFAULT_CONFIG, start?: PatientState): Run {
  let state = start;
  const assessments: Assessment[] = [];
  const notifications: Notification[] = [];
  let duplicates = 0;
  for (const m of messages) {
    const step = reduce(state, m, cfg, arrivalOf(m));
    state = step.state;
    if (step.kind === 'duplicate') duplicates++;
    else {
      assessments.push(step.assessment);
      notifications.push(...step.notifications);
    }
  }
  return { state, assessments, notifications, duplicates, last: assessments[assessments.length - 1]! };
}

/** Pages as (kind condition from->to teams) strings: easy to compare and to read in a failure. */
export const pages = (r: Run) =>
  r.notifications.map((n) => `${n.kind} ${n.condition} ${n.fromGrade}->${n.toGrade} ${n.teams.join('+')}`);
