// `crs restore --backend aws` (2026-12-07): the stack's tables restored to an instant as docs/runbook.md says (the
// State, SeenMessages and Pages tables restored from backups into new tables, copied into the stack's with the
// pipeline stopped), through the real `crs serve --backend aws` on moto. What the gateways send again is paged under
// ids the lost pipeline never sent, for a patient known at the backup and for one first seen after it. Until then the
// runbook's script copied the tables and moved no sequence on: the CRS 3 graded after the restore took the id the
// lost pipeline had given the CRS 2 and was never paged (the notifier found that id paged already).
import {
  BatchWriteItemCommand,
  type BatchWriteItemCommandOutput,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  CreateBackupCommand,
  CreateTableCommand,
  paginateScan,
  RestoreTableFromBackupCommand,
} from '@aws-sdk/client-dynamodb';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inlineText } from '#test/support/html.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { arrivalOf } from '#app/digest.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { reduce } from '#domain/reducer.ts';
import { copyTable, readRestore } from '#adapters/aws/restore.ts';
import { unpagedRecords } from '#adapters/aws/restore-unpaged.ts';
import { encodeStateItem, stateOfItem } from '#adapters/aws/state-item.ts';
import {
  HostClock,
  health,
  operatorShell,
  pageLines,
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teamPages,
  teardown,
  until,
  type AwsServe,
} from '#test/support/aws-serve.ts';
import { crsMain } from '#test/support/cli.ts';
import { until as waitFor } from '#test/support/until.ts';
import { CRS_MESSAGE, T0, enrol, msg } from '#test/support/messages.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createKeyedTable } from '#test/support/dynamo-tables.ts';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-restore-'));
const outputsFile = join(dir, 'outputs.json');
const configFile = join(dir, 'config.json');
writeFileSync(configFile, JSON.stringify({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } }));
let emulator: Emulator;
let dynamodb: DynamoDBClient;

beforeAll(async () => {
  emulator = await startEmulator();
  dynamodb = new DynamoDBClient({
    endpoint: emulator.endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  dynamodb?.destroy();
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The test's messages (written from T0) moved to two hours ago: observations over 7 days old are refused. */
const base = Date.now() - 2 * 3_600_000;
const recent = (m: DeviceMessage): DeviceMessage => {
  const shift = (t: string) => new Date(Date.parse(t) - T0 + base).toISOString();
  return {
    ...m,
    observedAt: shift(m.observedAt),
    ...(m.enrolment ? { enrolment: { ...m.enrolment, infusedAt: shift(m.enrolment.infusedAt!) } } : {}),
  };
};

const shell = () => operatorShell(emulator.endpoint);

type Tables = { state: string; seen: string; pages: string };

/** The stack's State, SeenMessages and Pages tables, from the outputs file of a `crs serve --backend aws`. */
function stackTables(outputs: string): Tables {
  const o = Object.values(JSON.parse(readFileSync(outputs, 'utf8')))[0] as Record<string, string>;
  return { state: o.StateTableName!, seen: o.SeenTableName!, pages: o.PagesTableName! };
}

const createTable = (name: string, keys: [string, string]) => createKeyedTable(dynamodb, name, keys);

/** Backups of the three tables standing for the instant T (moto restores a point in time as the table is now). */
async function backUp(tables: Tables): Promise<Record<string, string>> {
  const backups: Record<string, string> = {};
  for (const [k, t] of Object.entries(tables))
    backups[k] = (await dynamodb.send(new CreateBackupCommand({ TableName: t, BackupName: `${t}-at-T` })))
      .BackupDetails!.BackupArn!;
  return backups;
}

/** Each backup restored into a new table, `<table>-at-T`, as the runbook's step 5 does. */
async function restoreBackups(tables: Tables, backups: Record<string, string>): Promise<void> {
  for (const [k, t] of Object.entries(tables))
    await dynamodb.send(new RestoreTableFromBackupCommand({ BackupArn: backups[k], TargetTableName: `${t}-at-T` }));
}

/**
 * `crs restore --backend aws` from the `-at-T` tables of `restored` into the stack's (named by the outputs file, or by
 * `stack` flags), as an operator runs it.
 */
const crsRestore = (at: string, outputs: string | string[], restored: Tables) =>
  crsMain(
    [
      'restore',
      '--backend',
      'aws',
      '--at',
      at,
      ...(typeof outputs === 'string' ? ['--outputs', outputs] : outputs),
      '--from-state-table',
      `${restored.state}-at-T`,
      '--from-seen-table',
      `${restored.seen}-at-T`,
      '--from-pages-table',
      `${restored.pages}-at-T`,
    ],
    { env: shell() },
  );

/**
 * The last sequence number of the State table's stream: where the notifier's mapping stands once it has caught up and
 * is paused (the runbook's step 2), and whence Lambda resumes it (CRS_TEST_NOTIFY_AFTER for the emulator's).
 */
async function streamEnd(stateTable: string): Promise<string> {
  const streams = new DynamoDBStreamsClient({
    endpoint: emulator.endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  try {
    const arn = (await dynamodb.send(new DescribeTableCommand({ TableName: stateTable }))).Table!.LatestStreamArn!;
    let last = 0n;
    for (const shard of (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!
      .Shards!) {
      let iterator = (
        await streams.send(
          new GetShardIteratorCommand({ StreamArn: arn, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }),
        )
      ).ShardIterator;
      while (iterator) {
        const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        for (const r of out.Records ?? []) {
          const seq = BigInt(r.dynamodb!.SequenceNumber!);
          if (seq > last) last = seq;
        }
        iterator = (out.Records ?? []).length > 0 ? out.NextShardIterator : undefined;
      }
    }
    return String(last);
  } finally {
    streams.destroy();
  }
}

describe('crs restore --backend aws', () => {
  it('pages what the gateways send again under ids the lost pipeline never sent', async () => {
    const prefix = runPrefix('restore');
    const args = ['--config', configFile, '--outputs', outputsFile, '--page-lines'];
    const p1 = [enrol('P1', 0), msg('P1', 10, CRS_MESSAGE[1]!)].map(recent);
    const p1Later = [msg('P1', 20, CRS_MESSAGE[2]!)].map(recent);
    const p2 = [enrol('P2', 15), msg('P2', 25, CRS_MESSAGE[1]!)].map(recent);
    const lost = await spawnAwsServe(emulator.endpoint, prefix, args);
    let tables: Tables;
    const at = new Date().toISOString();
    try {
      for (const m of p1) expect((await post(lost.url, m)).status).toBe(202);
      await settle(lost, 1);
      tables = stackTables(outputsFile);
      const backups = await backUp(tables);
      // After T: P1 graded CRS 2 and P2 first seen, both paged by the pipeline then lost.
      for (const m of [...p1Later, ...p2]) expect((await post(lost.url, m)).status).toBe(202);
      await settle(lost, 3);
      await restoreBackups(tables, backups);
    } finally {
      expect(await stop(lost)).toBe(0);
    }
    const lostIds = new Set(pageLines(lost.lines).map((p) => p.notificationId));
    expect(lostIds.size).toBe(3);

    const restored = await crsRestore(at, outputsFile, tables!);
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^State: .* holds the 2 item\(s\) of .*: .*1 patient\(s\) moved on$/m);
    expect(restored.stdout).toContain(`send again everything it sent since ${new Date(at).toISOString()}`);

    const server = await spawnAwsServe(emulator.endpoint, prefix, args);
    try {
      // P1 goes on to CRS 3, live, while the gateways send again what they sent since T (as measured on 2026-12-07:
      // the CRS 3 took the id the lost pipeline had given the CRS 2).
      for (const m of [recent(msg('P1', 30, CRS_MESSAGE[3]!)), ...p1Later, ...p2])
        expect((await post(server.url, m)).status).toBe(202);
      await until(server, 'the CRS 3 of P1 and the CRS 1 of P2 paged under new ids', () => {
        const mine = pageLines(server.lines).filter((p) => !lostIds.has(p.notificationId));
        return mine.some((p) => p.patientId === 'P1' && p.toGrade === 3) && mine.some((p) => p.patientId === 'P2')
          ? mine
          : undefined;
      });
      // A link the lost pipeline sent after T (P2's page) is not in the restored Pages table: the page says why, as
      // a restored crs serve's does (2026-12-07; it said the link was altered or not issued here).
      const lostLink = teamPages(lost.lines).find((p) => p.patientId === 'P2')!.ackUrl!;
      const refused = await fetch(`${server.url}/ack/${lostLink.split('/').at(-1)}`);
      expect(refused.status).toBe(403);
      expect(inlineText(await refused.text())).toMatch(
        /This acknowledge link is not known here: this server was restored from a backup of .* and does not know the links sent after it/,
      );
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const fresh = pageLines(server.lines).filter((p) => !lostIds.has(p.notificationId));
    expect(fresh.map((p) => [p.patientId, p.condition, p.toGrade])).toEqual(
      expect.arrayContaining([
        ['P1', 'crs', 3],
        ['P2', 'crs', 1],
      ]),
    );
  }, 240_000);

  it('sends the no-data alert, its all-clear and the next level of a page of the backup under ids the lost pipeline never sent', async () => {
    // Neither id comes from the moved-on sequence: a no-data alert's is made of when the feed went quiet, which the
    // resend gives again, and a page of the backup goes on from its revision as it went on in the lost pipeline. Until
    // 2026-12-07 the restored pipeline sent both under the lost one's sendIds (crs serve marked them, AWS did not),
    // and a receiver dropping repeats by sendId dropped a real alert.
    const prefix = runPrefix('stale');
    const cfg = join(dir, 'stale-config.json');
    const outputs = join(dir, 'stale-outputs.json');
    writeFileSync(cfg, JSON.stringify({ paging: { timeoutMinutes: { severe: 0.5, other: 1 }, staleFeedMinutes: 1 } }));
    const args = ['--config', cfg, '--outputs', outputs, '--schedule-interval', '3600', '--page-lines'];
    const clockEnv = { CRS_TEST_CLOCK: '1' };
    const sends = (s: AwsServe) =>
      teamPages(s.lines).filter((p) => p.patientId === 'K1' && (p.subject === 'stale-feed' || p.level > 0));
    const first = [enrol('K1', 0), msg('K1', 10, CRS_MESSAGE[3]!)].map(recent);
    let lostServer: AwsServe | undefined;
    const lostClock = new HostClock(() => lostServer!, 'k');
    lostServer = await spawnAwsServe(emulator.endpoint, prefix, args, clockEnv);
    const lost = lostServer;
    let tables: Tables;
    const at = new Date().toISOString();
    // Data again, after the alert: the same message on both (observed a little before the clocks stand then).
    let resumed: DeviceMessage;
    try {
      for (const m of first) expect((await post(lost.url, m)).status).toBe(202);
      await settle(lost, 1);
      tables = stackTables(outputs);
      const backups = await backUp(tables);
      // After T: the CRS 3 climbs to its next level and the quiet monitor is alerted, then sends again (all-clear).
      await lostClock.later(31);
      // The alert is sent before the data resumes (the stream's batch can reach the notifier after the host is idle).
      await until(lost, 'the lost pipeline alerts', () => sends(lost).some((p) => p.kind === 'alert') || undefined);
      resumed = lostClock.message('K1', 5, { vitals: { heartRate: 80 } });
      expect((await post(lost.url, resumed)).status).toBe(202);
      await lostClock.later(1);
      await restoreBackups(tables, backups);
    } finally {
      expect(await stop(lost)).toBe(0);
    }
    const lostSends = sends(lost);
    // Which sends, not how many: an alert due at the very tick its all-clear is made is sent again first or not,
    // as the host's timing falls (each send under its own id).
    const kinds = (list: typeof lostSends) => [...new Set(list.map((p) => `${p.kind} L${p.level}`))].sort();
    expect(kinds(lostSends)).toEqual(['alert L0', 'alert-cleared L0', 'escalation L1']);

    const restored = await crsRestore(at, outputs, tables!);
    expect(restored.status, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^Pages: .*; \d+ page\(s\) marked with the restore$/m);

    let server: AwsServe | undefined;
    const clock = new HostClock(() => server!, 'k2');
    server = await spawnAwsServe(emulator.endpoint, prefix, args, clockEnv);
    try {
      await clock.later(31);
      await until(
        server,
        'the restored pipeline alerts',
        () => sends(server!).some((p) => p.kind === 'alert') || undefined,
      );
      expect((await post(server.url, resumed!)).status).toBe(202);
      await clock.later(1);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const again = sends(server);
    expect(kinds(again)).toEqual(kinds(lostSends));
    const lostIds = new Set(lostSends.map((p) => p.sendId));
    expect(again.filter((p) => !/@\d+$/.test(p.sendId))).toEqual([]);
    expect(again.filter((p) => lostIds.has(p.sendId)).map((p) => `${p.kind} L${p.level} ${p.sendId}`)).toEqual([]);
  }, 240_000);

  it('pages a grade change of the backup whose pages the lost pipeline opened only after it: once, marked with the restore', async () => {
    // R1's grade change was committed before T and paged only after it (the notifier a few seconds behind): the
    // restored State holds its outbox record, the restored Pages none of its pages, and the copy removes those the lost
    // pipeline opened. Nothing is sent again from before T, so nothing else would page it. Q1 was paged before T: its
    // page is in the restored Pages table and is not opened again. `crs restore` runs twice (a run again).
    const prefix = runPrefix('unpaged');
    const outputs = join(dir, 'unpaged-outputs.json');
    const args = ['--config', configFile, '--outputs', outputs, '--page-lines'];
    // The first host's notifier fails R1's records (the hook): its grade change is stored, not paged, at T.
    const held = await spawnAwsServe(emulator.endpoint, prefix, args, { CRS_TEST_FAIL_NOTIFY_PATIENT: 'R1' });
    let tables: Tables;
    let at: string;
    let backups: Record<string, string>;
    try {
      for (const m of [enrol('Q1', 0), msg('Q1', 10, CRS_MESSAGE[1]!)].map(recent))
        expect((await post(held.url, m)).status).toBe(202);
      await settle(held, 1);
      for (const m of [enrol('R1', 0), msg('R1', 10, CRS_MESSAGE[2]!)].map(recent))
        expect((await post(held.url, m)).status).toBe(202);
      // Q1 was paged without a retry: the first is of R1's record, stored (and not paged) by then.
      await waitFor(
        async () => (await health(held)).notify.retries > 0,
        'the notifier to fail the record of R1',
        60_000,
      );
      tables = stackTables(outputs);
      at = new Date().toISOString();
      backups = await backUp(tables);
    } finally {
      expect(await stop(held)).toBe(0);
    }
    // The pipeline then lost pages R1 (its notifier reads the stream again from the start).
    const lost = await spawnAwsServe(emulator.endpoint, prefix, args);
    try {
      await settle(lost, 1);
    } finally {
      expect(await stop(lost)).toBe(0);
    }
    const lostSends = teamPages(lost.lines).filter((p) => p.patientId === 'R1');
    expect(lostSends.length).toBeGreaterThan(0);
    expect(pageLines(lost.lines).map((p) => p.patientId)).toEqual(['R1']);
    const checkpoint = await streamEnd(tables.state);
    await restoreBackups(tables, backups);

    for (const run of [1, 2]) {
      const restored = await crsRestore(at, outputs, tables);
      expect(restored.status, `run ${run}: ${restored.stderr}`).toBe(0);
      expect(restored.stdout).toMatch(
        /^State: .*; 1 grade change\(s\) or alert\(s\) never paged by .* written again: the notifier pages them when it resumes, marked with the restore$/m,
      );
    }

    const server = await spawnAwsServe(emulator.endpoint, prefix, args, { CRS_TEST_NOTIFY_AFTER: checkpoint });
    try {
      await settle(server, 0);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const sends = teamPages(server.lines);
    // Each team of R1's grade change paged once, at the first level, under sendIds marked with the restore; Q1 not.
    expect(sends.map((p) => `${p.patientId} ${p.team} L${p.level}`).sort()).toEqual(
      lostSends.map((p) => `${p.patientId} ${p.team} L${p.level}`).sort(),
    );
    expect(sends.filter((p) => !/@\d+$/.test(p.sendId)).map((p) => p.sendId)).toEqual([]);
    const lostIds = new Set(lostSends.map((p) => p.sendId));
    expect(sends.filter((p) => lostIds.has(p.sendId)).map((p) => p.sendId)).toEqual([]);
    expect(pageLines(server.lines).map((p) => [p.patientId, p.toGrade])).toEqual([['R1', 2]]);
  }, 240_000);

  it('copies page by page: puts what differs, deletes what the restored table lacks, leaves the same items be', async () => {
    const prefix = runPrefix('copy');
    const table = async (name: string, items: [number, string][]) => {
      await createTable(name, ['patientId', 'messageId']);
      for (let i = 0; i < items.length; i += 25)
        await dynamodb.send(
          new BatchWriteItemCommand({
            RequestItems: {
              [name]: items.slice(i, i + 25).map(([k, v]) => ({
                PutRequest: {
                  Item: { patientId: { S: `P${k % 7}` }, messageId: { S: `m${k}` }, digests: { SS: [v] } },
                },
              })),
            },
          }),
        );
    };
    const range = (from: number, to: number, v: string) =>
      Array.from({ length: to - from }, (_, i): [number, string] => [from + i, v]);
    // More than two scan pages: 230 restored items; the stack's table has 10 the same, 20 changed, 20 added since.
    await table(`${prefix}-at-T`, range(0, 230, 'a'));
    await table(prefix, [...range(0, 10, 'a'), ...range(10, 30, 'b'), ...range(300, 320, 'c')]);
    const count = await copyTable(dynamodb, `${prefix}-at-T`, prefix);
    expect(count).toEqual({ items: 230, put: 220, deleted: 20, movedOn: 0, marked: 0, unreadable: 0, anew: 0 });
    const held: string[] = [];
    for await (const page of paginateScan({ client: dynamodb }, { TableName: prefix, ConsistentRead: true }))
      for (const item of page.Items ?? []) held.push(`${item.messageId!.S}=${item.digests!.SS!.join()}`);
    expect(held.sort()).toEqual(
      range(0, 230, 'a')
        .map(([k, v]) => `m${k}=${v}`)
        .sort(),
    );
    expect(await copyTable(dynamodb, `${prefix}-at-T`, prefix)).toEqual({
      items: 230,
      put: 0,
      deleted: 0,
      movedOn: 0,
      marked: 0,
      unreadable: 0,
      anew: 0,
    });
  }, 120_000);

  it('writes again, as new items marked with the restore, only the outbox records the restored Pages table holds no page of, nor parked', async () => {
    const prefix = runPrefix('anew');
    const [state, from, pages] = [prefix, `${prefix}-at-T`, `${prefix}-pages-at-T`];
    for (const t of [state, from, pages]) await createTable(t, ['pk', 'sk']);
    const restoredAt = Date.now();
    const live = String(Math.floor(restoredAt / 1000) + 86_400);
    const record = (patientId: string, id: string, body: Record<string, unknown>, expiresAt = live) => ({
      pk: { S: patientId },
      sk: { S: `outbox#${id}` },
      kind: { S: 'outbox' },
      expiresAt: { N: expiresAt },
      ...body,
    });
    const change = (patientId: string, id: string, teams: string[], expiresAt?: string) =>
      record(
        patientId,
        id,
        {
          record: { S: 'notification' },
          notification: { S: JSON.stringify({ notificationId: id, patientId, teams }) },
        },
        expiresAt,
      );
    const alert = (patientId: string, id: string) =>
      record(patientId, id, { record: { S: 'alert' }, alert: { S: JSON.stringify({ alertId: id, patientId }) } });
    const items = {
      paged: change('N1', 'crs|N1|#1', ['hematology']),
      unpaged: change('N2', 'crs|N2|#1', ['hematology', 'icu']),
      parked: change('N3', 'crs|N3|#1', ['hematology']),
      alertPaged: alert('N4', 'spo2|N4|#2'),
      alertUnpaged: alert('N5', 'spo2|N5|#2'),
      noTeam: change('N6', 'crs|N6|#1', []),
      expired: change('N7', 'crs|N7|#1', ['hematology'], String(Math.floor(restoredAt / 1000) - 1)),
      unreadable: record('N8', 'crs|N8|#1', { notification: { S: '{' } }),
    };
    const put = (table: string, item: Record<string, unknown>) =>
      dynamodb.send(new PutItemCommand({ TableName: table, Item: item as never }));
    for (const item of Object.values(items)) await put(from, item);
    await put(state, items.unpaged); // the stack's table holds it the same: written again all the same
    await put(pages, { pk: { S: 'N1' }, sk: { S: 'page#crs|N1|#1|hematology' }, page: { S: '{}' } });
    await put(pages, { pk: { S: 'N4' }, sk: { S: 'page#spo2|N4|#2|bedside' }, page: { S: '{}' } });
    await put(pages, { pk: { S: '#parked' }, sk: { S: 'record#N3#outbox#crs|N3|#1' }, record: { S: '{}' } });
    const marks = async () => {
      const held: Record<string, string> = {};
      for await (const page of paginateScan({ client: dynamodb }, { TableName: state, ConsistentRead: true }))
        for (const item of page.Items ?? []) if (item.restoredAt) held[item.pk!.S!] = item.restoredAt.N!;
      return held;
    };
    for (const at of [restoredAt, restoredAt + 1]) {
      const count = await copyTable(dynamodb, from, state, { anew: unpagedRecords(dynamodb, pages, at) });
      expect(count).toMatchObject({ items: 8, anew: 3, deleted: 0 });
      expect(await marks()).toEqual({ N2: String(at), N5: String(at), N8: String(at) });
    }
  }, 60_000);

  it('fails naming the table when DynamoDB keeps leaving its writes unprocessed (throttled), after a bounded backoff', async () => {
    // Until 2026-12-07 the copy sent unprocessed writes again for ever: a throttled table held `crs restore` with
    // no word. Now as a batch read: 6 requests, 2.5 s of backoff, then an error naming the table.
    const prefix = runPrefix('throttled');
    for (const name of [`${prefix}-at-T`, prefix])
      await dynamodb.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        }),
      );
    await dynamodb.send(
      new BatchWriteItemCommand({
        RequestItems: { [`${prefix}-at-T`]: [{ PutRequest: { Item: { pk: { S: 'P1' } } } }] },
      }),
    );
    let writes = 0;
    // A client of its own (paginateScan takes a DynamoDBClient) whose batch writes DynamoDB leaves all unprocessed.
    const throttling = new DynamoDBClient({
      endpoint: emulator.endpoint,
      region: process.env.AWS_REGION ?? 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const send = throttling.send.bind(throttling);
    throttling.send = ((command: Parameters<typeof send>[0]) => {
      if (!(command instanceof BatchWriteItemCommand)) return send(command);
      writes++;
      return Promise.resolve({ UnprocessedItems: command.input.RequestItems } as BatchWriteItemCommandOutput);
    }) as typeof throttling.send;
    await expect(copyTable(throttling, `${prefix}-at-T`, prefix)).rejects.toThrow(
      `DynamoDB left 1 writes of ${prefix} unprocessed 6 times (throttled)`,
    );
    expect(writes).toBe(6);
    throttling.destroy();
  }, 30_000);

  it('records the restore before it copies: a copy failing part way leaves the moment recorded, and a run again finishes it', async () => {
    // Until 2026-12-07 the record was written last: a copy that failed part way (a table throttled, the network) left
    // the stack with no #restore until the operator ran it again, and a patient first seen meanwhile, or a no-data
    // alert, took ids the lost pipeline had sent. Ids moved on by a restore are harmless, so the moment is recorded
    // first, and the copy leaves the record be (neither the restored table's older one nor its absence replaces it).
    const prefix = runPrefix('partway');
    const tables = { state: `${prefix}-state`, seen: `${prefix}-seen`, pages: `${prefix}-pages` };
    for (const t of [tables.state, tables.pages, `${tables.state}-at-T`, `${tables.pages}-at-T`])
      await createTable(t, ['pk', 'sk']);
    for (const t of [tables.seen, `${tables.seen}-at-T`]) await createTable(t, ['patientId', 'messageId']);
    const m = recent(enrol('R1', 0));
    const state = reduce(undefined, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    const put = (table: string, item: Record<string, unknown>) =>
      dynamodb.send(new PutItemCommand({ TableName: table, Item: item as never }));
    await put(`${tables.state}-at-T`, {
      pk: { S: 'R1' },
      sk: { S: 'state' },
      kind: { S: 'state' },
      version: { N: '1' },
      s: { B: encodeStateItem(state, []) },
    });
    // The restored table holds the record of an earlier restore (its backup was taken after one).
    await put(`${tables.state}-at-T`, {
      pk: { S: '#restore' },
      sk: { S: 'restore' },
      kind: { S: 'restore' },
      restoredAt: { N: '1000' },
      takenAt: { N: '500' },
    });
    await put(`${tables.seen}-at-T`, { patientId: { S: 'R1' }, messageId: { S: m.messageId }, digests: { SS: ['d'] } });
    await put(`${tables.pages}-at-T`, { pk: { S: '#silences' }, sk: { S: 's-1' }, silence: { S: '{}' } });
    const at = new Date(Date.now() - 3_600_000).toISOString();
    const run = () =>
      crsRestore(
        at,
        ['--state-table', tables.state, '--seen-table', tables.seen, '--pages-table', tables.pages],
        tables,
      );
    const seqOf = async () => {
      const out = await dynamodb.send(
        new GetItemCommand({
          TableName: tables.state,
          Key: { pk: { S: 'R1' }, sk: { S: 'state' } },
          ConsistentRead: true,
        }),
      );
      return out.Item ? stateOfItem(out.Item)!.state.seq : undefined;
    };

    // The Pages table's writes fail (a fault of the network, injected): the State and SeenMessages tables are copied.
    const send = DynamoDBClient.prototype.send;
    DynamoDBClient.prototype.send = function (this: DynamoDBClient, command: unknown, ...rest: unknown[]) {
      if (command instanceof BatchWriteItemCommand && command.input.RequestItems?.[tables.pages])
        return Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      return (send as (...a: unknown[]) => Promise<unknown>).call(this, command, ...rest);
    } as typeof send;
    const before = Date.now();
    let failed: Awaited<ReturnType<typeof run>>;
    try {
      failed = await run();
    } finally {
      DynamoDBClient.prototype.send = send;
    }
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/^crs restore: socket hang up/m);
    expect(failed.stderr).toContain('run crs restore again');
    const first = await readRestore(dynamodb, tables.state);
    expect(first?.takenAt).toBe(Date.parse(at));
    expect(first!.restoredAt).toBeGreaterThanOrEqual(before);
    expect(await seqOf()).toBe(state.seq + first!.restoredAt);

    const again = await run();
    expect(again.status, again.stderr).toBe(0);
    const second = await readRestore(dynamodb, tables.state);
    expect(second!.restoredAt).toBeGreaterThan(first!.restoredAt);
    expect(second!.takenAt).toBe(Date.parse(at));
    expect(await seqOf()).toBe(state.seq + second!.restoredAt);
  }, 60_000);
});
