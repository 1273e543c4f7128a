// Each route of the HTTP API has its own rate limit, so that a runaway device gateway spends its own route's
// budget and never the clinicians' acknowledgement links'. A route added to the API needs one line here (the
// synth refuses a route without one), which also gives it its 429 alarm (Throttled<name>).
//
// The limits sit under the functions' reserved concurrency, so that API Gateway's 429, not a Lambda throttle (a
// 5xx), is what a caller meets first: each route's rate times its request's p99 duration on Lambda (`p99Seconds`),
// summed over a function's routes, is at most the function's reserved concurrency (ingest 50.5 of 55, ack 6 of 10;
// test/infra/stack.test.ts checks it).
import { ACK_ROUTES } from '#app/ack-flow.ts';
import { FHIR_BASE, FHIR_METADATA_ROUTE, HL7_ROUTE } from '#app/interfaces/routes.ts';
import { ROUTES } from '#app/ingest.ts';
import { DeployInputError } from './deploy-input.ts';

export interface RouteThrottle {
  /** Names the route's 429 alarm (Throttled<name>) and says who calls it. */
  name: string;
  /** The function behind the route, whose reserved concurrency its rate must fit in. */
  fn: 'ingest' | 'ack';
  /** Requests per second, steady. */
  rateLimit: number;
  /** Requests at once above the steady rate. */
  burstLimit: number;
  /** How long one request takes at p99 on Lambda: the concurrency the route can hold is rateLimit x this. */
  p99Seconds: number;
}

export const ROUTE_THROTTLES: Record<string, RouteThrottle> = {
  [`POST ${ROUTES.single}`]: { name: 'DeviceMessages', fn: 'ingest', rateLimit: 200, burstLimit: 400, p99Seconds: 0.1 },
  [`POST ${ROUTES.batch}`]: { name: 'DeviceBatches', fn: 'ingest', rateLimit: 20, burstLimit: 40, p99Seconds: 0.5 },
  [`POST ${HL7_ROUTE}`]: { name: 'Hl7Messages', fn: 'ingest', rateLimit: 50, burstLimit: 100, p99Seconds: 0.1 },
  [`POST ${FHIR_BASE}`]: { name: 'FhirBundles', fn: 'ingest', rateLimit: 10, burstLimit: 20, p99Seconds: 0.5 },
  // A Bundle posted as a resource (what many clients do; FHIR's own place for a batch is the base): as a Bundle.
  [`POST ${FHIR_BASE}/Bundle`]: {
    name: 'FhirBundlesAsResource',
    fn: 'ingest',
    rateLimit: 10,
    burstLimit: 20,
    p99Seconds: 0.5,
  },
  [`POST ${FHIR_BASE}/{resource}`]: {
    name: 'FhirResources',
    fn: 'ingest',
    rateLimit: 50,
    burstLimit: 100,
    p99Seconds: 0.1,
  },
  [`GET ${FHIR_METADATA_ROUTE}`]: { name: 'FhirMetadata', fn: 'ingest', rateLimit: 5, burstLimit: 10, p99Seconds: 0.1 },
  [`GET ${ACK_ROUTES.link}`]: { name: 'AckLinkOpened', fn: 'ack', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
  [`POST ${ACK_ROUTES.link}`]: { name: 'AckLinkAnswered', fn: 'ack', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
  [`POST ${ACK_ROUTES.api}`]: { name: 'AckApi', fn: 'ack', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
};

/** Any other request (a path no route has, answered 404 at the edge) shares this. */
export const DEFAULT_THROTTLE = { rateLimit: 50, burstLimit: 100 };

const OVERRIDABLE = ['rateLimit', 'burstLimit'] as const;
type RouteLimits = Pick<RouteThrottle, (typeof OVERRIDABLE)[number]>;

/**
 * The throttles with the operator's overrides (context `routeThrottles`: {"POST /v1/messages": {"rateLimit": 400,
 * "burstLimit": 800}}); an override for a route the API does not have is refused, and so is one that is not an
 * object of rateLimit and burstLimit (`{"POST /v1/messages": 400}` or a `ratelimit` was taken as no override).
 */
export function routeThrottles(overrides: unknown = {}): Record<string, RouteThrottle> {
  const out: Record<string, RouteThrottle> = { ...ROUTE_THROTTLES };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(overrides))
    throw new DeployInputError(
      `routeThrottles must be a JSON object of routes, e.g. {"POST /v1/messages":{"rateLimit":400,"burstLimit":800}} (got ${JSON.stringify(overrides)})`,
    );
  for (const [key, o] of Object.entries(overrides)) {
    const base = out[key];
    if (!base) throw new DeployInputError(`routeThrottles: no route "${key}" (routes: ${Object.keys(out).join(', ')})`);
    if (!isObject(o) || Object.keys(o).length === 0)
      throw new DeployInputError(
        `routeThrottles: "${key}" must be an object of ${OVERRIDABLE.join(' and ')} (got ${JSON.stringify(o)})`,
      );
    for (const f of Object.keys(o))
      if (!(OVERRIDABLE as readonly string[]).includes(f))
        throw new DeployInputError(`routeThrottles: "${key}" has no limit "${f}" (${OVERRIDABLE.join(', ')})`);
    const merged = { ...base, ...(o as Partial<RouteLimits>) };
    for (const f of OVERRIDABLE) {
      if (!Number.isInteger(merged[f]) || merged[f] < 1)
        throw new DeployInputError(
          `routeThrottles: "${key}".${f} must be a whole number of at least 1 (got ${JSON.stringify(merged[f])})`,
        );
    }
    out[key] = merged;
  }
  return out;
}

/**
 * Refuses throttles whose routes hold more of a function than its reserved concurrency (each route its rate times
 * its p99 duration): raising a rate alone let Lambda throttle the function before the API answered 429, so a
 * device got a 5xx and a clinician's acknowledgement failed.
 */
export function checkThrottlesFit(
  throttles: Record<string, RouteThrottle>,
  reserved: Record<RouteThrottle['fn'], number>,
): void {
  const held: Record<string, number> = {};
  for (const t of Object.values(throttles)) held[t.fn] = (held[t.fn] ?? 0) + t.rateLimit * t.p99Seconds;
  for (const [fn, n] of Object.entries(held)) {
    const limit = reserved[fn as RouteThrottle['fn']];
    if (n > limit + 1e-9)
      throw new DeployInputError(
        `routeThrottles: the ${fn} function's routes can hold ${Math.round(n * 10) / 10} invocations at once (each rate x its p99 duration: ${Object.entries(
          throttles,
        )
          .filter(([, t]) => t.fn === fn)
          .map(([k, t]) => `${k} ${t.rateLimit}/s x ${t.p99Seconds} s`)
          .join(
            ', ',
          )}), over its reserved concurrency ${limit}: raise concurrency.${fn} to at least ${Math.ceil(n - 1e-9)}, or lower the rates`,
      );
  }
}
