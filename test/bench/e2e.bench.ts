// `npm run bench:e2e`: the deployed shape end to end on an AWS emulator (AWS_ENDPOINT_URL, or a moto_server of
// its own). 1,000 messages over 50 patients POSTed to `crs serve --backend aws` (one device per patient, all at
// once, each device's messages in order): the latency from a message's POST to the page it causes arriving on
// the team queue (printed on stdout), p50 and p95, and the throughput from the first POST until everything is
// graded and paged. Then, in the same run on the same endpoint, the floor: the bare AWS calls one message needs
// (send, receive, get, transactional write, publish, receive), made directly by 50 concurrent chains on fresh
// resources of the same kinds. Prints pipeline/floor; the target is at most 1.5.
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateTopicCommand,
  DeleteTopicCommand,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { Agent } from 'node:http';
import { publishInput } from '#adapters/aws/sns-page-sender.ts';
import { pagesForNotification } from '#domain/paging.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { postMessages } from './post.ts';
import type { Notification } from '#domain/page.ts';
import { INGEST_TOKEN, health, runPrefix, spawnAwsServe, stop, teardown } from '#test/support/aws-serve.ts';
import { recentFeed } from '#test/support/feed.ts';
import { startEmulator } from '#test/support/moto.ts';

const MESSAGES = 1000;
const PATIENTS = 50;
const TARGET_RATIO = 1.5;

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const ms = (ns: bigint) => Number(ns) / 1e6;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const f1 = (n: number) => n.toFixed(1);

const post = (url: string, m: DeviceMessage) => postMessages(url, agent, INGEST_TOKEN, m);

interface Figures {
  p50: number;
  p95: number;
  perSecond: number;
  samples: number;
  /** POSTs answered 5xx and sent again. */
  resent?: number;
  timeouts?: number;
}

async function pipeline(endpoint: string, feed: DeviceMessage[]): Promise<Figures> {
  const prefix = runPrefix('bench');
  const server = await spawnAwsServe(endpoint, prefix, [], { POWERTOOLS_LOG_LEVEL: 'ERROR' });
  const postedAt = new Map<string, bigint>();
  const latencies: number[] = [];
  let lastPage = 0n;
  let resent = 0;
  server.onLine = (line, at) => {
    if (!line.trim()) return;
    const page = JSON.parse(line) as { type: string; causedBy: string };
    if (page.type !== 'notification') return; // a page line (each team, each level): the notification is timed
    const sent = postedAt.get(page.causedBy);
    if (sent !== undefined) latencies.push(ms(at - sent));
    lastPage = at;
  };
  const expectedPages = (() => {
    const r = new Replay(DEFAULT_CONFIG);
    return feed.flatMap((m, i) => r.line(JSON.stringify(m), i + 1)).filter((e) => e.type === 'notification').length;
  })();
  try {
    const devices = new Map<string, DeviceMessage[]>();
    for (const m of feed) devices.set(m.patientId, [...(devices.get(m.patientId) ?? []), m]);
    const start = process.hrtime.bigint();
    await Promise.all(
      [...devices.values()].map(async (messages) => {
        for (const m of messages) {
          postedAt.set(m.messageId, process.hrtime.bigint());
          // A gateway resends what was not accepted (5xx), as the ingest's 503 asks; the latency counts from the first try.
          for (let attempt = 1; ; attempt++) {
            const status = await post(server.url, m);
            if (status === 202) break;
            if (status < 500 || attempt >= 5) throw new Error(`POST answered ${status}`);
            resent++;
            await new Promise((r) => setTimeout(r, 200 * attempt));
          }
        }
      }),
    );
    for (;;) {
      const h = await health(server);
      if (
        h.grade.succeeded >= feed.length &&
        h.pages.printed >= expectedPages &&
        h.queue.visible + h.queue.inFlight === 0
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const graded = process.hrtime.bigint();
    const end = lastPage > graded ? lastPage : graded;
    latencies.sort((a, b) => a - b);
    const timeouts = server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('ingest: invocation failed')).length;
    return {
      p50: pct(latencies, 50),
      p95: pct(latencies, 95),
      perSecond: feed.length / (ms(end - start) / 1000),
      samples: latencies.length,
      resent,
      timeouts,
    };
  } finally {
    await stop(server);
    await teardown(endpoint, prefix);
  }
}

/** The same six calls per message, made directly, by one chain per patient, on resources made for the purpose. */
async function floor(endpoint: string, feed: DeviceMessage[]): Promise<Figures> {
  const config = {
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
    },
  };
  const sqs = new SQSClient(config);
  const ddb = new DynamoDBClient(config);
  const sns = new SNSClient(config);
  const name = runPrefix('floor');
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `${name}.fifo`,
        Attributes: { FifoQueue: 'true', DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' },
      }),
    )
  ).QueueUrl!;
  const teamUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-team` }))).QueueUrl!;
  const teamArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: teamUrl, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!;
  await ddb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
    }),
  );
  const topicArn = (await sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: teamArn,
      Attributes: { FilterPolicy: JSON.stringify({ teams: ['hematology'] }) },
    }),
  );

  // A real page (the first the feed causes) as the published message, and a real state document's size.
  const replay = new Replay(DEFAULT_CONFIG);
  let page: Notification | undefined;
  for (const [i, m] of feed.entries()) {
    const ev = replay.line(JSON.stringify(m), i + 1).find((e) => e.type === 'notification');
    if (ev) {
      page = { ...(ev as unknown as Notification), reasons: [] };
      break;
    }
  }
  const state = JSON.stringify(replay.state(feed[0]!.patientId));
  const latencies: number[] = [];
  const chains = new Map<string, DeviceMessage[]>();
  for (const m of feed) chains.set(m.patientId, [...(chains.get(m.patientId) ?? []), m]);
  let version = 0;
  try {
    const start = process.hrtime.bigint();
    await Promise.all(
      [...chains.values()].map(async (messages) => {
        for (const m of messages) {
          const t0 = process.hrtime.bigint();
          const body = JSON.stringify({ message: m, receivedAt: new Date().toISOString(), sender: 'bench' });
          await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: [
                { Id: '0', MessageBody: body, MessageGroupId: m.patientId, MessageDeduplicationId: m.messageId },
              ],
            }),
          );
          const got = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 1,
              MessageSystemAttributeNames: ['All'],
            }),
          );
          await ddb.send(
            new GetItemCommand({
              TableName: name,
              Key: { pk: { S: m.patientId }, sk: { S: 'state' } },
              ConsistentRead: true,
            }),
          );
          const v = ++version;
          await ddb.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                {
                  Put: {
                    TableName: name,
                    Item: {
                      pk: { S: m.patientId },
                      sk: { S: 'state' },
                      kind: { S: 'state' },
                      version: { N: String(v) },
                      state: { S: state },
                    },
                  },
                },
                {
                  Put: {
                    TableName: name,
                    Item: {
                      pk: { S: m.patientId },
                      sk: { S: `outbox#${m.messageId}` },
                      kind: { S: 'outbox' },
                      notification: { S: JSON.stringify(page) },
                    },
                  },
                },
              ],
            }),
          );
          const n = { ...page!, patientId: m.patientId, notificationId: `crs|${m.patientId}|${m.messageId}` };
          const [delivery] = pagesForNotification(
            { ...n, teams: ['hematology'] },
            [],
            [],
            Date.now(),
            DEFAULT_CONFIG.paging,
          ).deliveries;
          await sns.send(
            new PublishCommand(
              publishInput(
                topicArn,
                { page: delivery!.page, role: delivery!.role, reason: 'triggered' },
                n,
                n.ward,
                Date.now(),
                DEFAULT_CONFIG.site.timeZone,
              ),
            ),
          );
          const arrived = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: teamUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }),
          );
          latencies.push(ms(process.hrtime.bigint() - t0));
          // Not timed: keep the queues clean so that the next chain's calls cost the same.
          for (const x of [
            ...(got.Messages ?? []).map((g) => [queueUrl, g] as const),
            ...(arrived.Messages ?? []).map((g) => [teamUrl, g] as const),
          ]) {
            await sqs.send(new DeleteMessageCommand({ QueueUrl: x[0], ReceiptHandle: x[1].ReceiptHandle! }));
          }
        }
      }),
    );
    const elapsed = ms(process.hrtime.bigint() - start);
    latencies.sort((a, b) => a - b);
    return {
      p50: pct(latencies, 50),
      p95: pct(latencies, 95),
      perSecond: feed.length / (elapsed / 1000),
      samples: latencies.length,
    };
  } finally {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: teamUrl })).catch(() => undefined);
    await sns.send(new DeleteTopicCommand({ TopicArn: topicArn })).catch(() => undefined);
    await ddb.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    for (const c of [sqs, ddb, sns]) c.destroy();
  }
}

export async function run(): Promise<void> {
  const emulator = await startEmulator();
  try {
    console.log(
      `\ne2e on ${emulator.owned ? 'moto_server (started by the bench)' : emulator.endpoint}: ${MESSAGES} messages over ${PATIENTS} patients`,
    );
    const feed = recentFeed(MESSAGES, PATIENTS);
    const p = await pipeline(emulator.endpoint, feed);
    console.log(
      `  pipeline (crs serve --backend aws): POST -> page on the team queue p50 ${f1(p.p50)} ms, p95 ${f1(p.p95)} ms (${p.samples} pages); ${f1(p.perSecond)} messages/s; ${p.resent} POSTs resent after a 5xx`,
    );
    const fl = await floor(emulator.endpoint, feed);
    console.log(
      `  floor (send, receive, get, transact write, publish, receive, direct): p50 ${f1(fl.p50)} ms, p95 ${f1(fl.p95)} ms; ${f1(fl.perSecond)} messages/s`,
    );
    const ratios = { p50: p.p50 / fl.p50, p95: p.p95 / fl.p95, throughput: fl.perSecond / p.perSecond };
    const verdict = (r: number) => (r <= TARGET_RATIO ? 'within' : 'OVER');
    console.log(
      `  pipeline/floor: latency p50 ${ratios.p50.toFixed(2)} (${verdict(ratios.p50)} ${TARGET_RATIO}), p95 ${ratios.p95.toFixed(2)} (${verdict(ratios.p95)}), ` +
        `time per message ${ratios.throughput.toFixed(2)} (${verdict(ratios.throughput)})`,
    );
  } finally {
    agent.destroy();
    await emulator.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
