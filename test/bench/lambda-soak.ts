// `npx tsx test/bench/lambda-soak.ts`: what a warm Lambda container holds after many invocations with keys it never
// saw before, in this process: the ingest function (a new bad device token on half the requests, a new patient on the
// other half) and the ack function (a forged link each time) with the project's in-memory fakes, the grade function
// (new patients only) with its real DynamoDB client against moto (the fake DynamoDB's mock keeps every call, even
// after its reset: about 2.5 KB a request, measured). The JavaScript heap after a full collection, after each round;
// the queue fake's messages (and its memory of them) are emptied between rounds, so what is left is the functions'. Figures, not assertions: the rounds should level off (docs/testing.md, "Benchmarks"). LAMBDA_ROUNDS
// changes the run.
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import '../support/quiet-sdk.ts';
import { Pager } from '#app/pager.ts';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createKeyedTable } from '#test/support/dynamo-tables.ts';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { AUDIT_TABLE, SEEN_TABLE, STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { startEmulator } from '#test/support/moto.ts';
import { httpEvent, quiet, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { ingestFakes } from '#test/support/port-fakes.ts';

const ROUNDS = Number(process.env.LAMBDA_ROUNDS ?? 6);
const INGESTS = 4000;
const GRADED = 300;
const FORGED = 2000;
const NOW = Date.parse('2026-01-10T09:00:00Z');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = () => {
  gc();
  gc();
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
};

export async function run(): Promise<void> {
  console.log(
    `\n== warm Lambda containers, in process: ${ROUNDS} rounds (${INGESTS} ingests, ${GRADED} new patients graded, ${FORGED} forged links each) ==`,
  );
  process.env.AWS_REGION ??= 'eu-west-1';
  process.env.CRS_QUEUE_URL ??= 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
  process.env.CRS_TOKENS_TABLE ??= 'tokens';
  process.env.CRS_STATE_TABLE ??= 'state';
  process.env.CRS_AUDIT_TABLE ??= 'audit';
  process.env.CRS_SEEN_TABLE ??= 'seen';
  const ingestMod = await import('#functions/ingest/handler.ts');
  const gradeMod = await import('#functions/grade/handler.ts');
  const ackMod = await import('#functions/ack/handler.ts');

  const { queue, tokens, token } = await ingestFakes(NOW);
  const ingest = quiet(ingestMod.createIngestHandler({ queue, tokens, now: () => NOW, ...telemetry('ingest') }));
  const moto = await startEmulator();
  const dynamodb = new DynamoDBClient({
    endpoint: moto.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const table = (name: string, pk: string, sk: string, extra: Parameters<typeof createKeyedTable>[3] = {}) =>
    createKeyedTable(dynamodb, name, [pk, sk], extra);
  await table('state', STATE_TABLE.partitionKey, STATE_TABLE.sortKey, {
    AttributeDefinitions: [
      { AttributeName: STATE_TABLE.feedShardAttribute, AttributeType: 'S' },
      { AttributeName: STATE_TABLE.feedSinceAttribute, AttributeType: 'N' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: STATE_TABLE.feedIndex,
        KeySchema: [
          { AttributeName: STATE_TABLE.feedShardAttribute, KeyType: 'HASH' },
          { AttributeName: STATE_TABLE.feedSinceAttribute, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  });
  await table('audit', AUDIT_TABLE.partitionKey, AUDIT_TABLE.sortKey);
  await table('seen', SEEN_TABLE.partitionKey, SEEN_TABLE.sortKey);
  const store = new DynamoStateStore(dynamodb, 'state', () => NOW, 'audit', 'seen');
  const grade = quiet(
    gradeMod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: () => NOW, ...telemetry('grade') }),
  );
  const audit = new MemoryAuditLog();
  const pages = new MemoryPageStore(audit);
  const pager = new Pager({
    pages,
    sender: { send: async () => undefined },
    audit,
    config: DEFAULT_PAGING,
    ackSecret: randomBytes(32),
    ackBaseUrl: 'https://api.example/ack/',
    security: { record: async () => undefined },
  });
  const ack = quiet(
    ackMod.createAckHandler({
      paging: async () => ({ pager, page: (id) => pages.get(id), config: DEFAULT_PAGING, timeZone: 'Europe/Paris' }),
      now: () => NOW,
      ...telemetry('ack'),
    }),
  );

  console.log(`before: heap ${heapMiB()} MiB`);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const only = process.env.LAMBDA_ONLY;
      for (let i = 0; i < (only && only !== 'ingest' ? 0 : INGESTS); i++) {
        const patientId = `L-${r}-${i}`;
        const bad = i % 2 === 0;
        await ingest(
          httpEvent({
            headers: { authorization: `Bearer ${bad ? `bad-${randomBytes(16).toString('hex')}` : token}` },
            body: JSON.stringify(msg(patientId, 0, { vitals: { heartRate: 80 } })),
          }),
        );
      }
      queue.messages.length = 0;
      (queue as unknown as { seen: Set<string> }).seen.clear(); // the fake's own memory of what it took
      // Each new patient twice: enrolled with a fever, then a quiet reading (its state read back).
      for (const later of [false, true])
        for (let i = 0; i < (only && only !== 'grade' ? 0 : GRADED); i += 5) {
          const records = Array.from({ length: 5 }, (_, k) => `G-${r}-${i + k}`).flatMap((p) =>
            later
              ? [msg(p, 2, { vitals: { heartRate: 90 } })]
              : [enrol(p), msg(p, 1, { vitals: { temperatureC: 38.5 } })],
          );
          await grade(sqsEvent(records.map((m) => sqsRecord(m))));
        }
      for (let i = 0; i < (only && only !== 'ack' ? 0 : FORGED); i++)
        await ack(httpEvent({ method: 'GET', path: `/ack/${randomBytes(24).toString('base64url')}`, body: '' }));
      console.log(`round ${r + 1}: heap ${heapMiB()} MiB (the state store remembers ${store.remembered} patients)`);
    }
  } finally {
    dynamodb.destroy();
    await moto.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
