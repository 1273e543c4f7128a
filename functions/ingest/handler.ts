// Ingest Lambda behind the HTTP API: maps the API Gateway (payload 2.0) event to handleIngest and back.
// Validation, authentication and the 202-only-once-queued rule live in shared/app/ingest.ts; the HL7 v2 and FHIR
// routes translate onto it (shared/app/interfaces/http.ts).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { HttpRequest } from '#app/ingest.ts';
import { handleDeviceRequest } from '#app/interfaces/http.ts';
import { parseZone, zoneProblem, type SiteZone } from '#app/interfaces/zone.ts';
import { PATIENT_AUTHORITY_RULE, parsePatientAuthority } from '#app/interfaces/patient-authority.ts';
import { PATIENT_SYSTEM_RULE, parsePatientSystem } from '#app/interfaces/patient-system.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';
import { maxObservationAgeSetting } from '#domain/device-clock.ts';
import { DynamoPatientDirectory } from '#adapters/aws/dynamo-patient-directory.ts';
import { DynamoTokenStore } from '#adapters/aws/dynamo-token-store.ts';
import type { PatientDirectory } from '#app/scope.ts';
import { ENV, requireEnv } from '#adapters/aws/env.ts';
import { fhirDrugCodesFromEnv } from '#adapters/aws/drug-codes-env.ts';
import { SqsFifoQueue } from '#adapters/aws/sqs-fifo-queue.ts';
import { METRIC, errorName, telemetry, type Telemetry, flushMetrics } from '#adapters/aws/telemetry.ts';
import type { MessageQueue, TokenStore } from '#ports';

export interface IngestHandlerDeps extends Telemetry {
  queue: MessageQueue;
  tokens: TokenStore;
  now: () => number;
  hl7Zone?: SiteZone;
  /** The assigning authority (PID-3.4) whose ids are this system's patient ids. */
  hl7PatientAuthority?: string;
  /** The FHIR identifier system whose values are this system's patient ids. */
  fhirPatientSystem?: string;
  /** The site's FHIR drug codes (CRS_FHIR_DRUG_CODES_FILE, as the stack ships them), read before the built-in table. */
  fhirDrugCodes?: SiteDrugCodes;
  /** Where patients' wards are read, for tokens scoped to wards (shared/app/scope.ts). */
  patients?: PatientDirectory;
  /** How long before its arrival an observedAt may be (shared/domain/device-clock.ts's default otherwise). */
  maxObservationAgeMs?: number;
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
      const res = await handleDeviceRequest(toHttpRequest(event), {
        queue: deps.queue,
        tokens: deps.tokens,
        now: deps.now,
        // Its refusals of a token name the AWS operator's crs token command (crs serve --backend aws runs this too).
        backend: 'aws',
        ...(deps.hl7Zone ? { hl7Zone: deps.hl7Zone } : {}),
        ...(deps.hl7PatientAuthority !== undefined ? { hl7PatientAuthority: deps.hl7PatientAuthority } : {}),
        ...(deps.fhirPatientSystem !== undefined ? { fhirPatientSystem: deps.fhirPatientSystem } : {}),
        ...(deps.fhirDrugCodes !== undefined ? { fhirDrugCodes: deps.fhirDrugCodes } : {}),
        ...(deps.patients ? { patients: deps.patients } : {}),
        ...(deps.maxObservationAgeMs !== undefined ? { maxObservationAgeMs: deps.maxObservationAgeMs } : {}),
        onUnavailable: (err) => logger.error('a store ingest reads failed', { error: errorName(err) }),
      });
      // The route as the API declares it (`POST /fhir/r4/{resource}`), never the path: a client writes what it likes there.
      const route = event.routeKey;
      const { messageIds } = res;
      if (res.status < 300 || messageIds.length > 0) {
        // HL7 and FHIR may accept some messages and refuse others (an AE, a batch entry): both are counted.
        metrics.addMetric(METRIC.messagesAccepted, MetricUnit.Count, messageIds.length);
        if (res.status >= 300 || /^MSA\|AE/m.test(res.body) || res.body.includes('"422 '))
          metrics.addMetric(METRIC.rejects, MetricUnit.Count, 1);
        logger.info('accepted', { status: res.status, route, messageIds });
      } else {
        // A 403 for scope (a section, a patient) is a device sending what it may not: counted with the auth failures.
        if (res.status === 401 || res.status === 403) metrics.addMetric(METRIC.authFailures, MetricUnit.Count, 1);
        else if (res.status === 503) metrics.addMetric(METRIC.queueUnavailable, MetricUnit.Count, 1);
        else metrics.addMetric(METRIC.rejects, MetricUnit.Count, 1);
        // The status only: the response's error texts echo the values that were refused.
        (res.status >= 500 ? logger.error : logger.warn).call(logger, 'refused', { status: res.status, route });
      }
      return { statusCode: res.status, headers: res.headers, body: res.body };
    } finally {
      flushMetrics(metrics);
    }
  };
}

/** `now`: Date.now in Lambda; the host's clock when `crs serve --backend aws` runs the function. */
export function liveDeps(now: () => number = Date.now): IngestHandlerDeps {
  const dynamodb = new DynamoDBClient({});
  const zone = process.env[ENV.hl7Zone];
  const badZone = zone ? zoneProblem(zone) : undefined;
  if (badZone !== undefined) throw new Error(`${ENV.hl7Zone} ${JSON.stringify(zone)} ${badZone}`);
  const hl7Zone = zone ? parseZone(zone) : undefined;
  const authority = process.env[ENV.hl7PatientAuthority];
  const hl7PatientAuthority = authority ? parsePatientAuthority(authority) : undefined;
  if (authority && hl7PatientAuthority === undefined)
    throw new Error(`${ENV.hl7PatientAuthority} ${JSON.stringify(authority)} is not ${PATIENT_AUTHORITY_RULE}`);
  const system = process.env[ENV.fhirPatientSystem];
  const fhirPatientSystem = system ? parsePatientSystem(system) : undefined;
  if (system && fhirPatientSystem === undefined)
    throw new Error(`${ENV.fhirPatientSystem} ${JSON.stringify(system)} is not ${PATIENT_SYSTEM_RULE}`);
  // A bad map stops the function at its start, naming its entry and field, as a bad zone does.
  const fhirDrugCodes = fhirDrugCodesFromEnv();
  return {
    ...(hl7Zone ? { hl7Zone } : {}),
    // 7 days unless the stack sets another (-c maxObservationAgeDays); a bad value fails the cold start.
    maxObservationAgeMs: maxObservationAgeSetting(process.env[ENV.maxObservationAgeDays]),
    ...(hl7PatientAuthority !== undefined ? { hl7PatientAuthority } : {}),
    ...(fhirPatientSystem !== undefined ? { fhirPatientSystem } : {}),
    ...(fhirDrugCodes !== undefined ? { fhirDrugCodes } : {}),
    queue: new SqsFifoQueue(new SQSClient({}), requireEnv(ENV.queueUrl)),
    tokens: new DynamoTokenStore(dynamodb, requireEnv(ENV.tokensTable)),
    patients: new DynamoPatientDirectory(dynamodb, requireEnv(ENV.stateTable)),
    now,
    ...telemetry('ingest'),
  };
}

export const handler = createIngestHandler(liveDeps());
