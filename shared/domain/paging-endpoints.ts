// Who gets paged on AWS: each team's endpoints (email, SMS, HTTPS), and the operators' endpoints for alarms. The
// stack subscribes them (infra/paging-config.ts reads it from CDK context); `crs doctor` checks a deployment against it.
import * as z from './zod.ts';
import { PAGE_TEAMS, type Page } from './paging.ts';

/** The kinds of page: two that wait for an answer and climb the ladder, and their informational ends. */
const PAGE_KINDS = ['escalation', 'alert', 'de-escalation', 'alert-cleared'] as const satisfies readonly Page['kind'][];

const email = z
  .string()
  .check(
    z.regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { error: (iss) => `${JSON.stringify(iss.input)} is not an email address` }),
  );
const sms = z.string().check(
  z.regex(/^\+[1-9]\d{6,14}$/, {
    error: (iss) => `${JSON.stringify(iss.input)} is not an E.164 phone number (+15551234567)`,
  }),
);
const https = z.string().check(
  z.regex(/^https:\/\/[^\s]+$/, {
    error: (iss) => `${JSON.stringify(iss.input)} is not an https:// URL (TLS is required)`,
  }),
);

const Endpoints = z.strictObject({
  email: z._default(z.array(email), []),
  sms: z._default(z.array(sms), []),
  https: z._default(z.array(https), []),
});

const TeamEndpoints = z.extend(Endpoints, {
  /** Only pages for patients on these wards (all wards when absent). */
  wards: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  /**
   * The kinds of page this team's SMS numbers get (every kind when absent): e.g. only those that wait for an answer
   * (escalation, alert), the informational ones (de-escalation, alert-cleared) going by email and HTTPS only. SNS
   * bills each SMS part; an email or HTTPS delivery costs next to nothing.
   */
  smsKinds: z.optional(z.array(z.enum(PAGE_KINDS)).check(z.minLength(1))),
});

const PagingConfigSchema = z.strictObject({
  teams: z._default(z.partialRecord(z.enum(PAGE_TEAMS), TeamEndpoints), {}),
  /** Where CloudWatch alarms go. */
  alarms: z._default(Endpoints, { email: [], sms: [], https: [] }),
});
export type PagingConfig = z.infer<typeof PagingConfigSchema>;
type TeamEndpointsConfig = z.infer<typeof TeamEndpoints>;

export function parsePagingConfig(value: unknown, where: string): PagingConfig {
  const r = PagingConfigSchema.safeParse(value);
  if (!r.success) {
    const errors = r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new Error(`invalid paging config (${where}): ${errors.join('; ')}`);
  }
  return r.data;
}

/**
 * The `kind` allowlist of a team's SMS subscriptions, or undefined when they get every kind. A test page (`crs doctor
 * --test-page`, kind `test`) always gets through: it is how an operator checks the numbers.
 */
export function smsKindFilter(endpoints: Pick<TeamEndpointsConfig, 'smsKinds'>): string[] | undefined {
  return endpoints.smsKinds ? [...endpoints.smsKinds, 'test'] : undefined;
}
