// Ingest Lambda behind the HTTP API: maps the API Gateway (payload 2.0) event to handleIngest and back.
// Validation, authentication and the 202-only-once-queued rule live in shared/app/ingest.ts.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { handleIngest, type HttpRequest } from '../../shared/app/ingest.ts';
import { DynamoTokenStore } from '../../shared/adapters/aws/dynamo-token-store.ts';
import { ENV, requireEnv } from '../../shared/adapters/aws/env.ts';
import { SqsFifoQueue } from '../../shared/adapters/aws/sqs-fifo-queue.ts';
import { METRIC, telemetry, type Telemetry } from '../../shared/adapters/aws/telemetry.ts';
import type { MessageQueue, TokenStore } from '../../shared/ports.ts';

export interface IngestHandlerDeps extends Telemetry {
  queue: MessageQueue;
  tokens: TokenStore;
  now: () => number;
}

export function toHttpRequest(event: APIGatewayProxyEventV2): HttpRequest {
  const raw = event.body ?? '';
  return {
    method: event.requestContext.http.method,
    path: event.rawPath,
    headers: event.headers ?? {},
    body: event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw,
  };
}

export function createIngestHandler(deps: IngestHandlerDeps) {
  const { logger, metrics } = deps;
  return async (event: APIGatewayProxyEventV2, context?: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    if (context) logger.addContext(context);
    try {
      const res = await handleIngest(toHttpRequest(event), { queue: deps.queue, tokens: deps.tokens, now: deps.now });
      const route = event.rawPath;
      if (res.status === 202) {
        const { accepted, messageIds } = JSON.parse(res.body) as { accepted: number; messageIds: string[] };
        metrics.addMetric(METRIC.messagesAccepted, MetricUnit.Count, accepted);
        logger.info('accepted', { status: res.status, route, messageIds });
      } else {
        if (res.status === 401 || res.status === 403) metrics.addMetric(METRIC.authFailures, MetricUnit.Count, 1);
        else if (res.status === 503) metrics.addMetric(METRIC.queueUnavailable, MetricUnit.Count, 1);
        else metrics.addMetric(METRIC.rejects, MetricUnit.Count, 1);
        // The status only: the response's error texts echo the values that were refused.
        (res.status >= 500 ? logger.error : logger.warn).call(logger, 'refused', { status: res.status, route });
      }
      return { statusCode: res.status, headers: res.headers, body: res.body };
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

function liveDeps(): IngestHandlerDeps {
  return {
    queue: new SqsFifoQueue(new SQSClient({}), requireEnv(ENV.queueUrl)),
    tokens: new DynamoTokenStore(new DynamoDBClient({}), requireEnv(ENV.tokensTable)),
    now: Date.now,
    ...telemetry('ingest'),
  };
}

export const handler = createIngestHandler(liveDeps());
