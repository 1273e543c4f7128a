// The delivery policy of every HTTPS subscription (a team's paging gateway, an operators' webhook): its numbers are
// shared/adapters/aws/sns-delivery.ts's, which `crs doctor` checks a subscription against.
import { Annotations, Duration } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { HTTPS_RETRY } from '#adapters/aws/sns-delivery.ts';
import { endpointShown } from '#domain/paging.ts';

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
