// What an error from AWS (or on the way to it) is about: something every request would meet alike (the service
// failing, throttling or refusing this caller, the network, another writer), or the one request it was made for.
import { VersionConflict } from '#ports';

/**
 * Whether an error means something a request needs is down, rather than the request being bad: an AWS service
 * failing or refusing this caller (throttling, a 5xx, a timeout, a key, a permission, a table or topic that is not
 * there: every request would fail alike), the network, or another writer (a version conflict). Anything else, a
 * request the service refuses for what it holds, one the SDK cannot even write, or an error of the code on it, is
 * the request's own.
 */
export function isOutage(err: unknown): boolean {
  if (err instanceof VersionConflict) return true;
  if (!(err instanceof Error)) return false;
  const e = err as Error & { $fault?: string; code?: unknown; $metadata?: { httpStatusCode?: number } };
  if (e.$fault === 'server') return true;
  // Refusing this caller, whatever it asks (a proxy or the service answering without a name the SDK knows).
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || CALLER_REFUSED.has(status))) return true;
  return named(e, OUTAGE) || named(e, ON_THE_WAY);
}

/**
 * Whether an error came from AWS or the way to it, whatever it says: any answer of a service (the SDK gives each
 * `$metadata`, and `$fault`, a refusal for the request's own sake included), the network, a timeout, the caller's
 * credentials. Anything else is an error of the code (a TypeError, an assertion): `crs doctor` reports the first
 * kind as a resource it could not read and goes on, and lets the second end the run (2026-12-07: it reported both).
 */
export function isFromAws(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { $fault?: unknown; code?: unknown; $metadata?: unknown };
  return e.$metadata !== undefined || e.$fault !== undefined || named(e, ON_THE_WAY);
}

const named = (e: Error & { code?: unknown }, pattern: RegExp) =>
  pattern.test(e.name) || (typeof e.code === 'string' && pattern.test(e.code));

const CALLER_REFUSED = new Set([401, 403, 407, 408, 429]);

const OUTAGE =
  /Throttl|TooManyRequests|RequestLimitExceeded|ProvisionedThroughputExceeded|LimitExceeded|ServiceUnavailable|InternalServerError|InternalFailure|InternalError|TransactionConflict|TransactionInProgress|TransactionCanceled|KMS|AccessDenied|AuthorizationError|InvalidSecurity|UnrecognizedClient|InvalidClientTokenId|ExpiredToken|InvalidSignature|SignatureDoesNotMatch|NotFound/;
/** On the way to a service, before it answers: a timeout, the network, the caller's credentials. */
const ON_THE_WAY =
  /Timeout|TimedOut|TIMEOUT|ERR_SOCKET|Credential|Networking|AbortError|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/;
