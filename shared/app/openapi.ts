// The device-facing HTTP API as an OpenAPI 3.1 document, for integration engineers (Mirth, Rhapsody, gateways).
// Built from what the code serves, never written by hand: the contract's JSON Schema (deviceMessageJsonSchema, not
// restated), the route constants both hosts and the stack use, the limits, and examples from the real validator
// and encoders. `npm run schema` writes it to shared/contract/openapi.v1.json; test/unit/openapi.test.ts holds the
// file, the routes and every status and body to the code. The board's /api routes are the board's, not an API.
import { deviceMessageJsonSchema, validateMessage, type DeviceMessage } from '#domain/contract.ts';
import { ACK_BODY_LIMIT, ACK_NAME_MAX } from './ack.ts';
import { ACK_ROUTES, ACK_TOKEN } from './ack-flow.ts';
import { RETRY_LATER, TOKEN_UNKNOWN } from './auth.ts';
import { capabilityStatement } from './fhir/capability.ts';
import { FhirEncoder } from './fhir/encode.ts';
import { FHIR_CONTENT_TYPE } from './fhir/http.ts';
import { FHIR_RESOURCES } from './fhir/translate.ts';
import { HL7_CONTENT_TYPE, HL7_MAX_BYTES } from './hl7v2/ack.ts';
import { HL7_MAX_DELIMITERS, HL7_MAX_SEGMENTS } from './hl7v2/pcd01.ts';
import { toPcd01 } from './hl7v2/encode.ts';
import { INGEST_LIMITS, ROUTES } from './ingest.ts';
import { FHIR_BASE, FHIR_METADATA_ROUTE, HL7_ROUTE } from './interfaces/routes.ts';

/** Where `crs serve` answers this document (no token: it holds no patient data). */
export const OPENAPI_ROUTE = '/v1/openapi.json';

/** Which backend serves an operation: `crs serve`, the AWS HTTP API, or both (the extension `x-crs-backends`). */
type Backend = 'embedded' | 'aws';
const BOTH: Backend[] = ['embedded', 'aws'];

/**
 * Verbatim lines of test/fixtures/sample-timeline.ndjson (a test holds them to it and posts them): the EHR's
 * enrolment and a monitor's readings of patient P-0042.
 */
const ENROLMENT: DeviceMessage = {
  messageId: 'gw-h4-0001',
  patientId: 'P-0042',
  observedAt: '2026-11-26T07:00:00Z',
  source: { deviceId: 'ehr-h4', kind: 'ehr' },
  enrolment: {
    therapy: 'car-t',
    product: 'axi-cel',
    infusedAt: '2026-11-24T09:00:00Z',
    weightKg: 70,
    bed: 'H4-12',
    ward: 'H4',
  },
};
const READINGS: DeviceMessage[] = [
  {
    messageId: 'gw-h4-0002',
    patientId: 'P-0042',
    observedAt: '2026-11-26T08:00:00Z',
    source: { deviceId: 'mon-h4-12', kind: 'monitor' },
    vitals: { temperatureC: 37.6, heartRate: 96, systolicBP: 118, meanArterialPressure: 84, spo2: 97 },
  },
  {
    messageId: 'gw-h4-0003',
    patientId: 'P-0042',
    observedAt: '2026-11-26T09:00:00Z',
    source: { deviceId: 'mon-h4-12', kind: 'monitor' },
    vitals: { temperatureC: 38.6, heartRate: 112, systolicBP: 110, meanArterialPressure: 78, spo2: 95 },
  },
];
const [READING] = READINGS as [DeviceMessage, DeviceMessage];
/** The contract's own example of a refusal: a temperature sent in Fahrenheit. */
const FAHRENHEIT = { ...READING, vitals: { ...READING.vitals, temperatureC: 101.3 } };
const errorsOf = (value: unknown) => {
  const v = validateMessage(value);
  return v.ok ? [] : v.errors;
};

type Json = Record<string, unknown>;
const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });
const strings = { type: 'array', items: { type: 'string' } };
const closed = (properties: Json, required: string[] = Object.keys(properties)) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const text = { type: 'string' };

const json = (schema: Json, example?: unknown) => ({
  'application/json': { schema, ...(example === undefined ? {} : { example }) },
});
const response = (description: string, content?: Json, headers?: Json) => ({
  description,
  ...(headers ? { headers } : {}),
  ...(content ? { content } : {}),
});

/** API Gateway's own answers (`{"message": ...}`), on AWS only. */
const THROTTLED = response(
  'AWS only: over the route\'s rate limit (API Gateway\'s throttle, `{"message": "Too Many Requests"}`); send again later.',
  json(schemaRef('GatewayMessage'), { message: 'Too Many Requests' }),
);
const OTHER_METHOD = (allow: string) =>
  `Another method than ${allow} (\`crs serve\`, with \`Allow\`; on AWS a method without a route is API Gateway's 404).`;
const RETRY = { 'Retry-After': headerRef('RetryAfter') };

/** The refusals every device route gives, in its own format: JSON `{error}`, an HL7 AR, a FHIR OperationOutcome. */
function deviceRefusals(content: (example?: unknown) => Json, examples: Record<number, unknown> = {}): Json {
  return {
    401: response('No bearer token. Nothing was read.', content(examples[401]), {
      'WWW-Authenticate': headerRef('WwwAuthenticate'),
    }),
    405: response(OTHER_METHOD('POST'), content(examples[405]), { Allow: headerRef('Allow') }),
    413: response("The body is over the route's limit; nothing was accepted.", content(examples[413])),
    415: response(
      'A content-type this route does not take, or a compressed body (`Content-Encoding` other than `identity`: send it uncompressed).',
      content(examples[415]),
    ),
    429: THROTTLED,
    503: response(
      'The queue, the token store or another store ingest reads is unavailable: nothing was accepted; send again after `Retry-After` seconds.',
      content(examples[503]),
      RETRY,
    ),
  };
}

const DEVICE_ERRORS = {
  401: { error: 'missing bearer token: send "Authorization: Bearer <device token>"' },
  405: { error: 'use POST' },
  415: { error: 'content-type "text/plain" is not JSON: send application/json (UTF-8)' },
  503: { error: 'the queue is unavailable; nothing was accepted, retry later' },
};
const jsonRefusals = (limit: number) =>
  deviceRefusals((example) => json(schemaRef('IngestError'), example), {
    ...DEVICE_ERRORS,
    413: { error: `body is ${limit + 1} bytes; the limit is ${limit}` },
  });

const FORBIDDEN =
  'An unknown, revoked or expired device token, or a section or patient this token may not send; nothing was accepted. ' +
  'A token refused says what to do with the `crs token` command to run (on AWS with `--backend aws --outputs FILE`).';

function jsonRoutes(): Json {
  const single = {
    tags: ['devices'],
    operationId: 'postMessage',
    summary: 'Send one device message',
    description:
      'One message of the device contract. Answered `202` only once it is durable (fsynced, or on the SQS FIFO queue). ' +
      'A resend with the same `messageId` and content is answered `202` again and graded once. ' +
      'A body without a content-type is read as JSON.',
    security: [{ deviceToken: [] }],
    'x-crs-backends': BOTH,
    requestBody: {
      required: true,
      description: `At most ${INGEST_LIMITS.messageBytes} bytes.`,
      content: { 'application/json': { schema: schemaRef('DeviceMessage'), example: READING } },
    },
    responses: {
      202: response(
        'Accepted: durable, to be graded.',
        json(schemaRef('Accepted'), { accepted: 1, messageIds: [READING.messageId] }),
      ),
      400: response(
        'Refused, naming each field, the value and what is allowed (or the body is not JSON, or nests too deep).',
        json(schemaRef('FieldErrors'), { errors: errorsOf(FAHRENHEIT) }),
      ),
      403: response(
        `${FORBIDDEN} \`errors\` names each section or patient.`,
        json(schemaRef('Forbidden'), { error: TOKEN_UNKNOWN() }),
      ),
      ...jsonRefusals(INGEST_LIMITS.messageBytes),
    },
  };
  const batch = {
    tags: ['devices'],
    operationId: 'postMessageBatch',
    summary: `Send 1-${INGEST_LIMITS.batchMessages} device messages, all or nothing`,
    description:
      'An array of messages of the device contract. All or nothing: one bad message refuses the batch, naming its `index`. ' +
      'Answered `202` only once every message is durable.',
    security: [{ deviceToken: [] }],
    'x-crs-backends': BOTH,
    requestBody: {
      required: true,
      description: `At most ${INGEST_LIMITS.batchBytes} bytes, measured whole.`,
      content: {
        'application/json': {
          schema: {
            type: 'array',
            minItems: 1,
            maxItems: INGEST_LIMITS.batchMessages,
            items: schemaRef('DeviceMessage'),
          },
          example: READINGS,
        },
      },
    },
    responses: {
      202: response(
        'Accepted: every message durable, to be graded.',
        json(schemaRef('Accepted'), { accepted: READINGS.length, messageIds: READINGS.map((m) => m.messageId) }),
      ),
      400: response(
        'Refused, nothing accepted: each bad message by its `index` with its errors (or the body is not a JSON array of 1-100).',
        json(schemaRef('BatchErrors'), { errors: [{ index: 1, errors: errorsOf(FAHRENHEIT) }], accepted: 0 }),
      ),
      403: response(
        `${FORBIDDEN} \`errors\` names each by the message's \`index\`.`,
        json(schemaRef('BatchForbidden'), { error: TOKEN_UNKNOWN() }),
      ),
      ...jsonRefusals(INGEST_LIMITS.batchBytes),
    },
  };
  return { [ROUTES.single]: { post: single }, [ROUTES.batch]: { post: batch } };
}

function hl7Route(): Json {
  const ack = (description: string, headers?: Json) =>
    response(description, { [HL7_CONTENT_TYPE]: { schema: schemaRef('Hl7Ack') } }, headers);
  const refusals = deviceRefusals(() => ({ [HL7_CONTENT_TYPE]: { schema: schemaRef('Hl7Ack') } }));
  return {
    [HL7_ROUTE]: {
      post: {
        tags: ['devices'],
        operationId: 'postHl7v2',
        summary: 'Send one HL7 v2 message (IHE PCD-01 ORU^R01, ADT^A03, ADT^A13)',
        description:
          'One ER7 message as the body; the answer is its HL7 ACK (AA, AE with an ERR segment per refused observation, AR). ' +
          'Translated into the device contract and graded as JSON is (docs/interfaces.md). The content-type must name `hl7-v2` or `er7`.',
        security: [{ deviceToken: [] }],
        'x-crs-backends': BOTH,
        requestBody: {
          required: true,
          description: `At most ${HL7_MAX_BYTES} bytes, ${HL7_MAX_SEGMENTS} segments and ${HL7_MAX_DELIMITERS} field, component, repetition and subcomponent delimiters (413 with an AR over any of them).`,
          content: { [HL7_CONTENT_TYPE]: { schema: { type: 'string' }, example: toPcd01(READING) } },
        },
        responses: {
          202: ack(
            'AA: every observation accepted and durable; or AE: some refused (ERR segments), the rest accepted.',
          ),
          400: ack('AR: not a message that can be read (not HL7, not ORU^R01/ADT^A03/A13, not production, ...).'),
          403: ack(`AR: ${FORBIDDEN}`),
          422: ack('AE: nothing in the message could be accepted (ERR segments name each problem).'),
          ...refusals,
        },
      },
    },
  };
}

function fhirRoutes(): Json {
  const fhirJson = (schema: Json, example?: unknown) => ({
    [FHIR_CONTENT_TYPE]: { schema, ...(example === undefined ? {} : { example }) },
  });
  const outcome = (description: string, headers?: Json) =>
    response(description, fhirJson(schemaRef('OperationOutcome')), headers);
  const refusals = deviceRefusals(() => fhirJson(schemaRef('OperationOutcome')));
  const body = (schema: Json, example?: unknown) => ({
    required: true,
    description: `A FHIR R4 resource as JSON (\`${FHIR_CONTENT_TYPE}\` or \`application/json\`), at most ${INGEST_LIMITS.batchBytes} bytes.`,
    content: {
      [FHIR_CONTENT_TYPE]: { schema, ...(example === undefined ? {} : { example }) },
      'application/json': { schema },
    },
  });
  const common = {
    400: outcome('Not JSON, not a FHIR resource, or not the resource this route takes.'),
    403: outcome(`${FORBIDDEN} (issues of code \`forbidden\`).`),
    422: outcome(
      'Nothing accepted: each problem an issue with its `expression` (a transaction, a collection or a single resource is all or nothing).',
    ),
    ...refusals,
  };
  const bundle = (operationId: string, summary: string) => ({
    tags: ['devices'],
    operationId,
    summary,
    description:
      'A batch, transaction or collection Bundle of Observation, MedicationAdministration, Encounter and Procedure resources, translated into the device contract (docs/interfaces.md). ' +
      'A transaction or a collection is all or nothing; a batch takes each entry on its own. A batch, and a transaction taken, are answered `200` with a batch-response or transaction-response Bundle (one response a request entry, in its order); a collection taken, `202`.',
    security: [{ deviceToken: [] }],
    'x-crs-backends': BOTH,
    requestBody: body(schemaRef('FhirBundle'), new FhirEncoder().bundle(ENROLMENT)),
    responses: {
      200: response(
        "A batch (a batch-response): each entry's own `202 Accepted` or `422` (with its outcome). A transaction taken (a transaction-response): each entry `202 Accepted`, its warnings in its outcome. Accepted entries are durable.",
        fhirJson(schemaRef('EntryResponseBundle')),
      ),
      202: outcome(
        'A collection: accepted and durable (an `informational` issue lists the message ids; warnings may follow).',
      ),
      ...common,
    },
  });
  return {
    [FHIR_BASE]: { post: bundle('postFhirBase', 'Send a FHIR R4 Bundle to the base') },
    [`${FHIR_BASE}/Bundle`]: { post: bundle('postFhirBundle', 'Send a FHIR R4 Bundle') },
    [`${FHIR_BASE}/{resource}`]: {
      post: {
        tags: ['devices'],
        operationId: 'postFhirResource',
        summary: 'Send one FHIR R4 resource',
        description: 'One resource of the type the path names, translated into the device contract; all or nothing.',
        security: [{ deviceToken: [] }],
        'x-crs-backends': BOTH,
        parameters: [
          { name: 'resource', in: 'path', required: true, schema: { type: 'string', enum: [...FHIR_RESOURCES] } },
        ],
        requestBody: body(schemaRef('FhirResource')),
        responses: {
          202: outcome('Accepted and durable.'),
          404: outcome('A resource type this endpoint does not take.'),
          ...common,
        },
      },
    },
    [FHIR_METADATA_ROUTE]: {
      get: {
        tags: ['devices'],
        operationId: 'getFhirMetadata',
        summary: 'The FHIR CapabilityStatement',
        description: 'What FHIR clients read before they send. No token: it names no patient.',
        security: [],
        'x-crs-backends': BOTH,
        responses: {
          200: response(
            'The CapabilityStatement (FHIR R4 4.0.1).',
            fhirJson(schemaRef('FhirResource'), capabilityStatement()),
          ),
          405: outcome(OTHER_METHOD('GET'), { Allow: headerRef('Allow') }),
          429: THROTTLED,
        },
      },
    },
  };
}

function ackRoutes(): Json {
  const errors = (example?: string) => json(schemaRef('AckErrors'), example ? { errors: [example] } : undefined);
  const html = { 'text/html': { schema: { type: 'string' } } };
  const page = (description: string, headers?: Json) => response(description, html, headers);
  const token = {
    name: 'token',
    in: 'path',
    required: true,
    description: 'The last part of the acknowledge link a page carries.',
    schema: { type: 'string', pattern: ACK_TOKEN.source },
  };
  const tooMany = (what: string) =>
    response(
      `Too many refused acknowledgements from this address (\`crs serve\`: ${what}, with \`Retry-After\`); on AWS, the route's throttle.`,
      undefined,
      { 'Retry-After': headerRef('RetryAfter') },
    );
  const refused = 'The link is forged, altered, malformed or expired.';
  return {
    [ACK_ROUTES.api]: {
      post: {
        tags: ['acknowledgements'],
        operationId: 'acknowledgePage',
        summary: "Acknowledge a page with its link's token",
        description:
          'For apps and integration engines: the token of the acknowledge link a page carries is the authority (no bearer token). ' +
          'Acknowledging a page already acknowledged answers `200` with `changed: false`.',
        security: [],
        'x-crs-backends': BOTH,
        requestBody: {
          required: true,
          description: `JSON, at most ${ACK_BODY_LIMIT} bytes.`,
          content: { 'application/json': { schema: schemaRef('AckRequest') } },
        },
        responses: {
          200: response(
            'Acknowledged (`changed: true`), or acknowledged before (`changed: false`).',
            json(schemaRef('AckDone')),
          ),
          400: response(
            'Not a JSON object, or no token, or no name, or a field it does not take (named).',
            errors('by: is required (your name: the audit trail records who did it)'),
          ),
          403: response(refused, errors()),
          404: response('No record of the page.', errors()),
          405: response(OTHER_METHOD('POST'), json(schemaRef('IngestError'), { error: 'use POST' }), {
            Allow: headerRef('Allow'),
          }),
          409: response('The page is no longer open (resolved, superseded, ...).', errors()),
          413: response(`Over ${ACK_BODY_LIMIT} bytes.`, errors(`body: more than ${ACK_BODY_LIMIT} bytes`)),
          415: response('Not JSON (a body without a content-type too).', errors()),
          429: {
            ...tooMany('JSON'),
            content: {
              'application/json': { schema: { oneOf: [schemaRef('AckErrors'), schemaRef('GatewayMessage')] } },
            },
          },
        },
      },
    },
    [ACK_ROUTES.link]: {
      get: {
        tags: ['acknowledgements'],
        operationId: 'showAcknowledgeLink',
        summary: "The page's summary and a form asking for a name",
        description:
          'Opened from a phone. Never acknowledges (SMS and chat apps fetch links to preview them). No token: the link is the authority.',
        security: [],
        'x-crs-backends': BOTH,
        parameters: [token],
        responses: {
          200: page('The form (or the page as it stands: acknowledged, or nothing to acknowledge).'),
          403: page(refused),
          404: page('No record of the page.'),
          405: page(OTHER_METHOD('GET, HEAD, POST'), { Allow: headerRef('Allow') }),
          429: THROTTLED,
        },
      },
      post: {
        tags: ['acknowledgements'],
        operationId: 'submitAcknowledgeLink',
        summary: "Acknowledge from the link's form",
        security: [],
        'x-crs-backends': BOTH,
        parameters: [token],
        requestBody: {
          required: true,
          description: `The form, at most ${ACK_BODY_LIMIT} bytes.`,
          content: {
            'application/x-www-form-urlencoded': {
              schema: closed({ by: { type: 'string', minLength: 1, maxLength: ACK_NAME_MAX } }),
            },
          },
        },
        responses: {
          200: page('Acknowledged, or acknowledged before.'),
          400: page('No name, or a name that cannot be recorded: the form again, saying why.'),
          403: page(refused),
          404: page('No record of the page.'),
          405: page(OTHER_METHOD('GET, HEAD, POST'), { Allow: headerRef('Allow') }),
          409: page('The page is no longer open.'),
          413: page(`Over ${ACK_BODY_LIMIT} bytes.`),
          429: { ...tooMany('an HTML page'), content: { ...html, ...json(schemaRef('GatewayMessage')) } },
        },
      },
    },
  };
}

function discoveryRoute(): Json {
  return {
    [OPENAPI_ROUTE]: {
      get: {
        tags: ['discovery'],
        operationId: 'getOpenApi',
        summary: 'This document',
        description:
          '`crs serve` only (on AWS the file ships in the repository: shared/contract/openapi.v1.json). No token.',
        security: [],
        'x-crs-backends': ['embedded'],
        responses: {
          200: response('This document.', { 'application/json': { schema: { type: 'object' } } }),
          405: response(OTHER_METHOD('GET'), json(schemaRef('IngestError'), { error: 'use GET' }), {
            Allow: headerRef('Allow'),
          }),
        },
      },
    },
  };
}

const COMPONENT_SCHEMAS: Json = {
  // The contract itself, as generated (shared/contract/device-message.v1.schema.json): JSON Schema 2020-12.
  DeviceMessage: deviceMessageJsonSchema(),
  Accepted: closed({ accepted: { type: 'integer', minimum: 1 }, messageIds: strings }),
  FieldErrors: closed({ errors: { ...strings, minItems: 1 } }),
  IndexedErrors: closed({ index: { type: 'integer', minimum: 0 }, errors: strings }),
  BatchErrors: {
    oneOf: [
      schemaRef('FieldErrors'),
      closed({ errors: { type: 'array', items: schemaRef('IndexedErrors'), minItems: 1 }, accepted: { const: 0 } }),
    ],
  },
  IngestError: closed({ error: text }),
  Forbidden: closed({ error: text, errors: strings }, ['error']),
  BatchForbidden: closed(
    { error: text, errors: { type: 'array', items: schemaRef('IndexedErrors') }, accepted: { const: 0 } },
    ['error'],
  ),
  GatewayMessage: closed({ message: text }),
  Hl7Ack: { type: 'string', description: 'An HL7 v2 ACK (ER7, segments separated by CR): MSH, MSA, ERR...' },
  FhirResource: {
    type: 'object',
    required: ['resourceType'],
    properties: { resourceType: text },
    externalDocs: { url: 'https://hl7.org/fhir/R4/' },
  },
  FhirBundle: {
    type: 'object',
    required: ['resourceType', 'type'],
    properties: {
      resourceType: { const: 'Bundle' },
      type: { enum: ['batch', 'transaction', 'collection'] },
      entry: { type: 'array', items: { type: 'object' } },
    },
    externalDocs: { url: 'https://hl7.org/fhir/R4/bundle.html' },
  },
  OperationOutcome: {
    type: 'object',
    required: ['resourceType', 'issue'],
    properties: {
      resourceType: { const: 'OperationOutcome' },
      issue: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['severity', 'code'],
          properties: {
            severity: { enum: ['fatal', 'error', 'warning', 'information'] },
            code: text,
            diagnostics: text,
            expression: strings,
          },
        },
      },
    },
  },
  EntryResponseBundle: {
    type: 'object',
    required: ['resourceType', 'type', 'entry'],
    properties: {
      resourceType: { const: 'Bundle' },
      type: { enum: ['batch-response', 'transaction-response'] },
      entry: {
        type: 'array',
        items: {
          type: 'object',
          required: ['response'],
          properties: {
            response: {
              type: 'object',
              required: ['status'],
              properties: { status: text, outcome: schemaRef('OperationOutcome') },
            },
          },
        },
      },
    },
  },
  AckRequest: {
    type: 'object',
    required: ['token', 'by'],
    additionalProperties: false,
    properties: {
      token: { type: 'string', pattern: ACK_TOKEN.source, description: 'The last part of the acknowledge link.' },
      by: {
        type: 'string',
        minLength: 1,
        maxLength: ACK_NAME_MAX,
        description: 'Who acknowledges: the audit trail records it.',
      },
    },
  },
  AckDone: closed({
    acknowledged: { const: true },
    changed: { type: 'boolean' },
    page: closed(
      {
        pageId: text,
        patientId: text,
        team: text,
        status: text,
        level: { type: 'integer', minimum: 0 },
        ack: closed({ by: text, at: { type: 'string', format: 'date-time' }, via: text }),
      },
      ['pageId', 'patientId', 'team', 'status', 'level'],
    ),
  }),
  AckErrors: closed({ errors: { ...strings, minItems: 1 } }),
};

/** The document. Pure: the same every call, so that the published file can be compared with it. */
export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'CRS alerting: device and acknowledgement API',
      version: '1',
      description:
        "What devices, integration engines and device gateways send (JSON device messages, HL7 v2, FHIR R4), and how a clinician's phone or an app acknowledges a page. " +
        'The same on both backends (`crs serve` and AWS); `x-crs-backends` names where each operation is served. ' +
        "Generated from the code (shared/app/openapi.ts); the device message schema is the contract's own (docs/contract.md).",
    },
    servers: [
      { url: 'http://127.0.0.1:8080', description: '`crs serve` (its default port; put a TLS reverse proxy in front)' },
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com',
        description: "AWS: the stack's HTTP API (the outputs IngestUrl, AckBaseUrl), or its custom domain",
        variables: { apiId: { default: 'abc123' }, region: { default: 'us-east-1' } },
      },
    ],
    tags: [
      { name: 'devices', description: 'Device data in: device tokens (`crs token issue`), one kind and scope each.' },
      { name: 'acknowledgements', description: 'Acknowledging a page: the signed link is the authority.' },
      { name: 'discovery', description: 'This document.' },
    ],
    paths: { ...jsonRoutes(), ...hl7Route(), ...fhirRoutes(), ...ackRoutes(), ...discoveryRoute() },
    components: {
      securitySchemes: {
        deviceToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'A device token (`crs token issue --device ID --kind K`): checked before the body is read.',
        },
      },
      headers: {
        RetryAfter: {
          description: 'Seconds to wait before sending again.',
          schema: { type: 'integer', minimum: 1, examples: [Number(RETRY_LATER['retry-after'])] },
        },
        WwwAuthenticate: { description: 'How to authenticate.', schema: { const: 'Bearer realm="crs-ingest"' } },
        Allow: { description: 'The methods the path takes.', schema: text },
      },
      schemas: COMPONENT_SCHEMAS,
    },
  };
}
