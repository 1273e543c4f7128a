// crs restore --backend aws (2026-12-07): which outbox records of the restored State table the restored Pages table
// shows never paged by the restore's instant, so that the copy writes them again and the notifier pages them when it
// resumes (shared/adapters/aws/restore-unpaged.ts). A fake DynamoDB client answers the Pages table's reads: the
// copy itself is the integration test's (test/integration/aws-restore.test.ts, minutes under moto).
import type { AttributeValue, BatchGetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { unpagedRecords } from '#adapters/aws/restore-unpaged.ts';
import { type PageTeam, pageId } from '#domain/paging.ts';

type Item = Record<string, AttributeValue>;
const RESTORED_AT = Date.parse('2026-12-07T10:00:00Z');

/** A client whose restored Pages table holds these keys (`pk sk`), and the keys each read asked for. */
function pagesHolding(held: string[]) {
  const asked: string[] = [];
  const client = {
    send: async (cmd: BatchGetItemCommand) => {
      const [table, { Keys }] = Object.entries(cmd.input.RequestItems!)[0] as [string, { Keys: Item[] }];
      const keys = Keys.map((k) => `${k.pk!.S} ${k.sk!.S}`);
      asked.push(...keys);
      const found = Keys.filter((_, i) => held.includes(keys[i]!));
      return { Responses: { [table]: found }, UnprocessedKeys: {} };
    },
  } as unknown as DynamoDBClient;
  return { client, asked };
}

const change = (seq: number, teams: string[], extra: Item = {}): Item => ({
  pk: { S: 'P1' },
  sk: { S: `outbox#crs|P1|#${seq}` },
  kind: { S: 'outbox' },
  notification: { S: JSON.stringify({ notificationId: `crs|P1|#${seq}`, patientId: 'P1', teams }) },
  ...extra,
});
const alert = (id: string): Item => ({
  pk: { S: 'P1' },
  sk: { S: `outbox#${id}` },
  kind: { S: 'outbox' },
  record: { S: 'alert' },
  alert: { S: JSON.stringify({ alertId: id, patientId: 'P1' }) },
});
const page = (id: string, team: PageTeam) => `P1 page#${pageId(id, team)}`;
const marked = (item: Item) => ({ ...item, restoredAt: { N: String(RESTORED_AT) } });

describe('the outbox records a restore writes again (never paged by its instant)', () => {
  it('a grade change none of whose teams has a page, nor a parked record, is written again marked with the restore', async () => {
    const never = change(1, ['hematology', 'icu']);
    const onePaged = change(2, ['hematology', 'icu']);
    const parked = change(3, ['hematology']);
    const { client } = pagesHolding([page('crs|P1|#2', 'icu'), `#parked record#P1#outbox#crs|P1|#3`]);
    const out = await unpagedRecords(client, 'pages', RESTORED_AT)([never, onePaged, parked]);
    expect([...out.entries()]).toEqual([[never, marked(never)]]);
  });

  it('an alert is paged when any team has its page; one with none is written again', async () => {
    const paged = alert('stale-feed|P1|1');
    const never = alert('stale-feed|P1|2');
    const { client } = pagesHolding([page('stale-feed|P1|1', 'icu')]);
    const out = await unpagedRecords(client, 'pages', RESTORED_AT)([paged, never]);
    expect([...out.keys()]).toEqual([never]);
  });

  it('leaves out a change of no team, one past its time to live (at the instant too), and items that are no outbox record', async () => {
    const { client, asked } = pagesHolding([]);
    const live = change(4, ['icu'], { expiresAt: { N: String(RESTORED_AT / 1000 + 1) } });
    const out = await unpagedRecords(
      client,
      'pages',
      RESTORED_AT,
    )([
      change(1, []),
      change(2, ['icu'], { expiresAt: { N: String(RESTORED_AT / 1000) } }),
      change(3, ['icu'], { expiresAt: { N: String(RESTORED_AT / 1000 - 60) } }),
      { pk: { S: 'P1' }, sk: { S: 'state' }, kind: { S: 'state' } },
      { ...change(5, ['icu']), kind: { S: 'state' } },
      { ...change(6, ['icu']), sk: { S: 'seen#crs|P1|#6' } },
      live,
    ]);
    expect([...out.keys()]).toEqual([live]);
    expect(asked.some((k) => k.includes('#1'))).toBe(false);
  });

  it('an outbox record that cannot be read is written again (the notifier parks it and the operator is told), unless parked', async () => {
    const broken = { ...change(1, ['icu']), notification: { S: '{"teams": 3}' } };
    const brokenParked = { ...change(2, ['icu']), notification: { S: 'not json' } };
    const { client } = pagesHolding(['#parked record#P1#outbox#crs|P1|#2']);
    const out = await unpagedRecords(client, 'pages', RESTORED_AT)([broken, brokenParked]);
    expect([...out.keys()]).toEqual([broken]);
  });
});
