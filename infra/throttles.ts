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

export interface RouteThrottle {
  /** Names the route's 429 alarm (Throttled<name>) and says who calls it. */
  name: string;
  /** Requests per second, steady. */
  rateLimit: number;
  /** Requests at once above the steady rate. */
  burstLimit: number;
  /** How long one request takes at p99 on Lambda: the concurrency the route can hold is rateLimit x this. */
  p99Seconds: number;
}

export const ROUTE_THROTTLES: Record<string, RouteThrottle> = {
  [`POST ${ROUTES.single}`]: { name: 'DeviceMessages', rateLimit: 200, burstLimit: 400, p99Seconds: 0.1 },
  [`POST ${ROUTES.batch}`]: { name: 'DeviceBatches', rateLimit: 20, burstLimit: 40, p99Seconds: 0.5 },
  [`POST ${HL7_ROUTE}`]: { name: 'Hl7Messages', rateLimit: 50, burstLimit: 100, p99Seconds: 0.1 },
  [`POST ${FHIR_BASE}`]: { name: 'FhirBundles', rateLimit: 10, burstLimit: 20, p99Seconds: 0.5 },
  // A Bundle posted as a resource (what many clients do; FHIR's own place for a batch is the base): as a Bundle.
  [`POST ${FHIR_BASE}/Bundle`]: { name: 'FhirBundlesAsResource', rateLimit: 10, burstLimit: 20, p99Seconds: 0.5 },
  [`POST ${FHIR_BASE}/{resource}`]: { name: 'FhirResources', rateLimit: 50, burstLimit: 100, p99Seconds: 0.1 },
  [`GET ${FHIR_METADATA_ROUTE}`]: { name: 'FhirMetadata', rateLimit: 5, burstLimit: 10, p99Seconds: 0.1 },
  [`GET ${ACK_ROUTES.link}`]: { name: 'AckLinkOpened', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
  [`POST ${ACK_ROUTES.link}`]: { name: 'AckLinkAnswered', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
  [`POST ${ACK_ROUTES.api}`]: { name: 'AckApi', rateLimit: 10, burstLimit: 20, p99Seconds: 0.2 },
};

/** Any other request (a path no route has, answered 404 at the edge) shares this. */
export const DEFAULT_THROTTLE = { rateLimit: 50, burstLimit: 100 };

/**
 * The throttles with the operator's overrides (context `routeThrottles`: {"POST /v1/messages": {"rateLimit": 400,
 * "burstLimit": 800}}); an override for a route the API does not have is refused.
 */
export function routeThrottles(overrides: Record<string, Partial<RouteThrottle>> = {}): Record<string, RouteThrottle> {
  const out: Record<string, RouteThrottle> = { ...ROUTE_THROTTLES };
  for (const [key, o] of Object.entries(overrides)) {
    const base = out[key];
    if (!base) throw new Error(`routeThrottles: no route "${key}" (routes: ${Object.keys(out).join(', ')})`);
    const merged = { ...base, ...o };
    for (const f of ['rateLimit', 'burstLimit'] as const) {
      if (!Number.isInteger(merged[f]) || merged[f] < 1)
        throw new Error(
          `routeThrottles: "${key}".${f} must be a whole number of at least 1 (got ${JSON.stringify(merged[f])})`,
        );
    }
    out[key] = merged;
  }
  return out;
}
