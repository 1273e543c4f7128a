// A Lambda handler behind the emulator's HTTP front (what API Gateway does on AWS), on a free port, open: the
// differential tests put it beside `crs serve` and compare the answers.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { INTERFACE_ROUTES } from '#app/interfaces/routes.ts';
import { startHttpFront, type HttpFront } from '#hosts/aws-emulator/http-front.ts';
import type { IngestHandlerDeps } from '#functions/ingest/handler.ts';
import { quiet } from './lambda-events.ts';

type Handler = (e: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** The device routes (JSON, batch, HL7 v2, FHIR) or the acknowledgement routes, all to `handler`. */
export const DEVICE_ROUTES = [
  'POST /v1/messages',
  'POST /v1/messages/batch',
  ...INTERFACE_ROUTES.map((path) => `POST ${path}`),
];
export const ACK_ROUTES = ['GET /ack/{token}', 'POST /ack/{token}', 'POST /v1/acks'];

export async function frontFor(name: string, handler: Handler, routeKeys: readonly string[]): Promise<HttpFront> {
  const target = { name, maxConcurrency: 4, invoke: (e: APIGatewayProxyEventV2) => handler(e) };
  const front = await startHttpFront({
    port: 0,
    host: '127.0.0.1',
    routes: Object.fromEntries(routeKeys.map((k) => [k, target])),
    log: () => undefined,
  });
  front.open();
  return front;
}

/**
 * The AWS ingest function as a handler, over the given queue and tokens, its log and metric lines kept out of the
 * test's output. Its environment (table and queue names, which it reads when it loads) is set first.
 */
export async function ingestFunction(
  deps: Omit<IngestHandlerDeps, keyof ReturnType<typeof telemetry>>,
): Promise<Handler> {
  process.env.CRS_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
  process.env.CRS_TOKENS_TABLE = 'tokens';
  process.env.CRS_STATE_TABLE = 'state';
  process.env.AWS_REGION ??= 'eu-west-1';
  const { createIngestHandler } = await import('#functions/ingest/handler.ts');
  return quiet(createIngestHandler({ ...deps, ...telemetry('ingest') }));
}
