// How SNS keeps trying an HTTPS endpoint (a team's paging gateway, an operators' webhook) that does not answer 2xx:
// the numbers of the delivery policy infra/delivery.ts gives every HTTPS subscription, and that `crs doctor` checks
// a subscription against. SNS's default is 3 retries 20 s apart: a gateway restarting for a minute would lose the
// page. This policy retries for about ten minutes, quickly at first, then backing off to once a minute; only then
// does the page go to the UndeliveredPages queue (alarmed). The escalation ladder does not wait for it: an
// unacknowledged page escalates on its own timer whatever SNS is still retrying.

export const HTTPS_RETRY = {
  /** Retries in all (SNS allows at most 100 for HTTP/S). */
  numRetries: 20,
  numNoDelayRetries: 0,
  /** The first retries, 1 s apart: a dropped connection or a gateway failing over. */
  numMinDelayRetries: 3,
  minDelaySeconds: 1,
  /** Then backing off exponentially to a minute apart, and the last retries once a minute. */
  numMaxDelayRetries: 8,
  maxDelaySeconds: 60,
} as const;

/**
 * The longest SNS can keep retrying under this policy, seconds: every retry of the backoff phase counted at the
 * maximum delay (the real schedule is shorter). SNS refuses an HTTP/S policy whose retries span over an hour.
 */
export function httpsRetryUpperBoundSeconds(r: typeof HTTPS_RETRY = HTTPS_RETRY): number {
  const backoff = r.numRetries - r.numNoDelayRetries - r.numMinDelayRetries - r.numMaxDelayRetries;
  return r.numMinDelayRetries * r.minDelaySeconds + (backoff + r.numMaxDelayRetries) * r.maxDelaySeconds;
}

/** The healthyRetryPolicy of an HTTPS subscription's DeliveryPolicy attribute, as SNS keeps it (JSON). */
export const HTTPS_HEALTHY_RETRY_POLICY = {
  minDelayTarget: HTTPS_RETRY.minDelaySeconds,
  maxDelayTarget: HTTPS_RETRY.maxDelaySeconds,
  numRetries: HTTPS_RETRY.numRetries,
  numNoDelayRetries: HTTPS_RETRY.numNoDelayRetries,
  numMinDelayRetries: HTTPS_RETRY.numMinDelayRetries,
  numMaxDelayRetries: HTTPS_RETRY.numMaxDelayRetries,
  backoffFunction: 'exponential',
} as const;
