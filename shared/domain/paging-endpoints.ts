// Who gets paged on AWS: each team's endpoints (email, SMS, HTTPS), and the operators' endpoints for alarms. The
// stack subscribes them (infra/paging-config.ts reads it from CDK context); `crs doctor` checks a deployment against it.
import * as z from './zod.ts';
import { WARD } from './contract.ts';
import { endpointKey, PAGE_TEAMS, type Page, type PageTeam } from './paging.ts';

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
/** An https:// URL with a host, as SNS takes it: "https:///x" (no host) or a port over 65535 failed the deploy. */
function isHttpsUrl(s: string): boolean {
  if (!/^https:\/\/[^\s/<>"{}|\\^`]+(?:[/?#][^\s<>"{}|\\^`]*)?$/.test(s)) return false;
  try {
    return new URL(s).hostname !== '';
  } catch {
    return false;
  }
}
const https = z.string().check(
  z.refine(isHttpsUrl, {
    error: (iss) => `${JSON.stringify(iss.input)} is not an https:// URL with a host (TLS is required)`,
  }),
);

const Endpoints = z.strictObject({
  email: z._default(z.array(email), []),
  sms: z._default(z.array(sms), []),
  https: z._default(z.array(https), []),
});

const TeamEndpoints = z.extend(Endpoints, {
  /** Only pages for patients on these wards (all wards when absent). */
  wards: z.optional(z.array(WARD).check(z.minLength(1))),
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

/**
 * Said of a team the configuration pages whose every endpoint is limited to wards: a page of a patient in another
 * ward, or in none (moved out, enrolled without a ward), reaches nobody of that team. SNS takes it and nothing is
 * parked; only LaddersExhausted tells, when the ladder has run out (docs/paging.md, "A patient who moves wards").
 */
export function wardLimitedTeamWarning(team: string, wards: readonly string[]): string {
  return `${team}: every endpoint is limited to wards ${[...new Set(wards)].sort().join(', ')}: a page of a patient in another ward, or in none, reaches nobody of ${team} (drop the team's wards, or route those pages to another team too)`;
}

/** SNS refuses a filter policy whose values combine to more than this (teams x wards x kinds). */
const MAX_FILTER_COMBINATIONS = 150;

/** `Refusal`: the error a caller's refusal is (the CDK app's is the operator's input mistake, said in one line). */
export function parsePagingConfig(
  value: unknown,
  where: string,
  Refusal: new (message: string) => Error = Error,
): PagingConfig {
  const r = PagingConfigSchema.safeParse(value);
  const errors = r.success
    ? subscriptionErrors(r.data)
    : r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
  if (errors.length > 0) throw new Refusal(`invalid paging config (${where}): ${errors.join('; ')}`);
  return r.data as PagingConfig;
}

/**
 * What SNS would refuse at deploy, or take and page nobody with: a team with no endpoint; an endpoint listed twice
 * (SNS keeps one subscription per topic, protocol and endpoint: a second failed the deploy, or shared the first's;
 * an email address in another letter case is the same mailbox, paged twice); smsKinds on a team with no SMS number
 * (it limits nothing);
 * an endpoint in two teams whose subscriptions would need other filters (the stack subscribes it once for the teams
 * whose wards and smsKinds agree); a filter policy over SNS's 150 combinations of values.
 */
function subscriptionErrors(config: PagingConfig): string[] {
  const errors: string[] = [];
  const protocols = ['email', 'sms', 'https'] as const;
  const seen = new Map<string, { at: string; team?: string; filter: string }>();
  const check = (at: string, key: string, team: string | undefined, filter: string, endpoint: string) => {
    const first = seen.get(key);
    if (!first) seen.set(key, { at, ...(team ? { team } : {}), filter });
    else if (first.team === team) errors.push(`${at}: ${JSON.stringify(endpoint)} is listed twice (also ${first.at})`);
    else if (first.filter !== filter)
      errors.push(
        `${at}: ${JSON.stringify(endpoint)} is also ${first.at}, whose wards and smsKinds differ: SNS subscribes an endpoint once per topic, so it can be in two teams only with the same filters`,
      );
  };
  for (const team of PAGE_TEAMS) {
    const e = config.teams[team];
    if (!e) continue;
    if (e.email.length + e.sms.length + e.https.length === 0)
      errors.push(`teams.${team}: no endpoint (email, sms or https): its pages would reach nobody`);
    if (e.smsKinds && e.sms.length === 0)
      errors.push(
        `teams.${team}.smsKinds: the team has no SMS number, so smsKinds limits nothing (its email and https endpoints get every kind of page): remove it, or give the team its SMS numbers`,
      );
    const wards = e.wards ? [...new Set(e.wards)].sort() : null;
    for (const protocol of protocols) {
      const kinds = protocol === 'sms' ? (smsKindFilter(e)?.slice().sort() ?? null) : null;
      const filter = JSON.stringify({ wards, kinds });
      e[protocol].forEach((endpoint, i) =>
        check(`teams.${team}.${protocol}.${i}`, endpointKey(protocol, endpoint), team, filter, endpoint),
      );
      const combinations = (e.wards?.length ?? 1) * (kinds?.length ?? 1);
      if (e.wards && e[protocol].length > 0 && combinations > MAX_FILTER_COMBINATIONS)
        errors.push(
          `teams.${team}.wards: ${e.wards.length} wards x ${kinds?.length ?? 1} kind${kinds && kinds.length > 1 ? 's' : ''} of page is over the ${MAX_FILTER_COMBINATIONS} values SNS allows in a filter policy (its ${protocol} subscriptions)`,
        );
    }
  }
  seen.clear();
  for (const protocol of protocols)
    config.alarms[protocol].forEach((endpoint, i) =>
      check(`alarms.${protocol}.${i}`, endpointKey(protocol, endpoint), 'alarms', '', endpoint),
    );
  return [...new Set(errors)];
}

/**
 * The `kind` allowlist of a team's SMS subscriptions, or undefined when they get every kind. A test page (`crs doctor
 * --test-page`, kind `test`) always gets through: it is how an operator checks the numbers.
 */
function smsKindFilter(endpoints: Pick<TeamEndpointsConfig, 'smsKinds'>): string[] | undefined {
  return endpoints.smsKinds ? [...endpoints.smsKinds, 'test'] : undefined;
}

/** A subscription of the pages topic as the stack makes it: one endpoint, the teams it is in, its filter policy. */
export interface PagesSubscription {
  protocol: 'email' | 'sms' | 'https';
  endpoint: string;
  teams: PageTeam[];
  /** Each message attribute the filter policy names, and the values it lets through (SNS's string allowlist). */
  filterPolicy: Record<string, string[]>;
}

/**
 * The pages topic's subscriptions of a paging config, as infra/stack.ts subscribes them and `crs doctor --paging`
 * checks them. One per endpoint: SNS keeps one per topic, protocol and endpoint, so an endpoint in several teams
 * (the config lets it be only where their wards and smsKinds agree) is subscribed once for all of them, an email
 * address as first spelled. Its filter: the teams, the wards of a ward-limited team, the kinds of page of an SMS
 * number with smsKinds.
 */
export function pagesSubscriptions(config: Pick<PagingConfig, 'teams'>): PagesSubscription[] {
  const byEndpoint = new Map<
    string,
    { protocol: PagesSubscription['protocol']; endpoint: string; teams: PageTeam[] }
  >();
  for (const team of PAGE_TEAMS) {
    const endpoints = config.teams[team];
    if (!endpoints) continue;
    for (const protocol of ['email', 'sms', 'https'] as const)
      for (const endpoint of endpoints[protocol]) {
        const key = endpointKey(protocol, endpoint);
        const entry = byEndpoint.get(key) ?? { protocol, endpoint, teams: [] };
        entry.teams.push(team);
        byEndpoint.set(key, entry);
      }
  }
  return [...byEndpoint.values()].map(({ protocol, endpoint, teams }) => {
    const endpoints = config.teams[teams[0]!]!;
    const kinds = protocol === 'sms' ? smsKindFilter(endpoints) : undefined;
    return {
      protocol,
      endpoint,
      teams,
      filterPolicy: { teams, ...(endpoints.wards ? { ward: endpoints.wards } : {}), ...(kinds ? { kind: kinds } : {}) },
    };
  });
}
