// Lambda events as AWS delivers them (API Gateway HTTP API payload 2.0, SQS FIFO, DynamoDB stream), and a capture
// of what the functions write to standard output (Powertools logs and EMF metrics) for the "ids only" checks.
import type { APIGatewayProxyEventV2, DynamoDBRecord, DynamoDBStreamEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import type { QueuedMessage } from '#ports';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { messageDigest } from '#app/digest.ts';

export function httpEvent(opts: {
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  base64?: boolean;
}): APIGatewayProxyEventV2 {
  const body = opts.body ?? '';
  return {
    version: '2.0',
    routeKey: `${opts.method ?? 'POST'} ${opts.path ?? '/v1/messages'}`,
    rawPath: opts.path ?? '/v1/messages',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...opts.headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example',
      domainPrefix: 'api',
      http: {
        method: opts.method ?? 'POST',
        path: opts.path ?? '/v1/messages',
        protocol: 'HTTP/1.1',
        sourceIp: '198.51.100.7',
        userAgent: 'gw',
      },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '10/Jan/2026:08:00:00 +0000',
      timeEpoch: 0,
    },
    body: opts.base64 ? Buffer.from(body, 'utf8').toString('base64') : body,
    isBase64Encoded: opts.base64 ?? false,
  };
}

let sqsCounter = 0;

/** One SQS FIFO record carrying a queued message, as the ingest queues it. */
export function sqsRecord(
  message: DeviceMessage | string,
  opts: { sentAt?: number; groupId?: string } = {},
): SQSRecord {
  sqsCounter++;
  const body =
    typeof message === 'string'
      ? message
      : JSON.stringify({
          message,
          digest: messageDigest(message),
          receivedAt: '2026-01-10T08:00:00Z',
          sender: 'gw-1',
        } satisfies QueuedMessage);
  const groupId = opts.groupId ?? (typeof message === 'string' ? 'unknown' : message.patientId);
  return {
    messageId: `sqs-${sqsCounter}`,
    receiptHandle: `rh-${sqsCounter}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(opts.sentAt ?? Date.now() - 50),
      SenderId: 'AIDA',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
      MessageGroupId: groupId,
      MessageDeduplicationId: typeof message === 'string' ? `d-${sqsCounter}` : message.messageId,
      SequenceNumber: String(sqsCounter),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:Messages.fifo',
    awsRegion: 'eu-west-1',
  };
}

export const sqsEvent = (records: SQSRecord[]): SQSEvent => ({ Records: records });

let seq = 1000;

/** A stream INSERT of an outbox record, as the state store writes it. */
export function outboxInsert(n: Notification): DynamoDBRecord {
  seq++;
  return {
    eventID: `e${seq}`,
    eventName: 'INSERT',
    eventSource: 'aws:dynamodb',
    awsRegion: 'eu-west-1',
    dynamodb: {
      Keys: { pk: { S: n.patientId }, sk: { S: `outbox#${n.notificationId}` } },
      NewImage: {
        [STATE_TABLE.partitionKey]: { S: n.patientId },
        [STATE_TABLE.sortKey]: { S: `${STATE_TABLE.outboxSortKeyPrefix}${n.notificationId}` },
        [STATE_TABLE.kindAttribute]: { S: STATE_TABLE.outboxKind },
        notificationId: { S: n.notificationId },
        notification: { S: JSON.stringify(n) },
      },
      SequenceNumber: String(seq),
      SizeBytes: 100,
      StreamViewType: 'NEW_IMAGE',
    },
  };
}

export const streamEvent = (records: DynamoDBRecord[]): DynamoDBStreamEvent => ({ Records: records });

const buffers: string[][] = [];
let restore: (() => void) | undefined;

/**
 * Runs fn while collecting everything written to standard output and error (Powertools logs and metrics), so
 * tests can check it and the test run's output stays readable. Captures nest: an outer capture sees it all too.
 */
export async function captureOutput<T>(fn: () => Promise<T>): Promise<{ result: T; out: string }> {
  const chunks: string[] = [];
  buffers.push(chunks);
  if (!restore) {
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((s) => s.write);
    for (const stream of streams) {
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
        for (const b of buffers) b.push(text);
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      }) as typeof stream.write;
    }
    restore = () => streams.forEach((s, i) => (s.write = originals[i]!));
  }
  try {
    const result = await fn();
    return { result, out: chunks.join('') };
  } finally {
    buffers.splice(buffers.indexOf(chunks), 1);
    if (buffers.length === 0) {
      restore?.();
      restore = undefined;
    }
  }
}

/** A Lambda handler whose log and metric output is captured (and dropped unless an outer capture wants it). */
export function quiet<E, C, R>(handler: (event: E, context?: C) => Promise<R>): (event: E, context?: C) => Promise<R> {
  return async (event, context) => (await captureOutput(() => handler(event, context))).result;
}

/**
 * Captured output without its log lines' timestamps, to look for values that must not be logged: a time such as
 * 01:24:39.712Z holds "39.7", which a test looking for a temperature of 39.7 would otherwise find.
 */
export const withoutTimestamps = (out: string): string => out.replace(/"timestamp":"[^"]*"/g, '"timestamp":""');

/** The EMF metric values named `name` in captured output, summed. */
export function metricSum(out: string, name: string): number {
  let sum = 0;
  for (const line of out.split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const doc = JSON.parse(line) as Record<string, unknown>;
    const v = doc[name];
    if (typeof v === 'number') sum += v;
    else if (Array.isArray(v)) sum += (v as number[]).reduce((a, b) => a + b, 0);
  }
  return sum;
}
