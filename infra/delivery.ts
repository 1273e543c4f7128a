// How SNS keeps trying an HTTPS endpoint (a team's paging gateway, an operators' webhook) that does not answer 2xx.
// SNS's default is 3 retries 20 s apart: a gateway restarting for a minute would lose the page. This policy
// retries for about ten minutes, quickly at first, then backing off to once a minute; only then does the page go
// to the UndeliveredPages queue (alarmed). The escalation ladder does not wait for it: an unacknowledged page
// escalates on its own timer whatever SNS is still retrying.
import { Annotations, Duration } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { endpointShown } from '#domain/paging.ts';

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

export const HTTPS_DELIVERY_POLICY: sns.DeliveryPolicy = {
  healthyRetryPolicy: {
    numRetries: HTTPS_RETRY.numRetries,
    numNoDelayRetries: HTTPS_RETRY.numNoDelayRetries,
    numMinDelayRetries: HTTPS_RETRY.numMinDelayRetries,
    minDelayTarget: Duration.seconds(HTTPS_RETRY.minDelaySeconds),
    numMaxDelayRetries: HTTPS_RETRY.numMaxDelayRetries,
    maxDelayTarget: Duration.seconds(HTTPS_RETRY.maxDelaySeconds),
    backoffFunction: sns.BackoffFunction.EXPONENTIAL,
  },
};

/**
 * Warns at synth of an https endpoint with a password in its URL (SNS's basic or digest authentication,
 * `https://user:password@host/`): SNS takes it only there, so it is in plain text in the synthesized template (the
 * resource's id and path too), in the CloudFormation stack and in the subscription. The warning names the endpoint
 * with the password masked; docs/aws.md ("A password in an https endpoint") says what to do instead.
 */
export function warnOfHttpsPassword(scope: Construct, where: string, url: string): void {
  if (new URL(url).password === '') return;
  const shown = endpointShown(url);
  Annotations.of(scope).addWarningV2(
    'crs:https-endpoint-password',
    `${where}: the https endpoint ${shown} has a user and password in its URL: SNS keeps them in the endpoint, so they are in plain text in the synthesized template, the CloudFormation stack and the subscription, for anyone who may read them. Prefer a gateway that verifies SNS's message signature; see docs/aws.md, "A password in an https endpoint"`,
  );
}
