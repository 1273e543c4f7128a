// The page printer of `crs serve --backend aws` (shared/hosts/aws-emulator/page-printer.ts), on fake team queues
// holding SNS envelopes: each grade change printed once, from its home queue, in the order that queue got them; a
// repeated SNS delivery printed once; page lines only when asked for; every message taken is deleted.
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { PagePrinter } from '#hosts/aws-emulator/page-printer.ts';
import type { TeamQueue } from '#hosts/aws-emulator/provision.ts';
import type { PageTeam } from '#domain/paging.ts';
import { until } from '#test/support/until.ts';

/** Team queues; a queue answers its receives only once `open` (all open unless told). */
class TeamQueues {
  readonly held = new Map<string, Message[]>();
  readonly deleted: string[] = [];
  readonly closed = new Set<string>();
  private n = 0;

  deliver(team: PageTeam, body: unknown, snsMessageId = `sns-${this.n}`, attributes: Record<string, unknown> = {}) {
    const envelope = {
      Type: 'Notification',
      MessageId: snsMessageId,
      Message: JSON.stringify(body),
      MessageAttributes: { teams: { Type: 'String.Array', Value: JSON.stringify([team]) }, ...attributes },
    };
    const list = this.held.get(team) ?? [];
    list.push({ MessageId: `sqs-${this.n}`, ReceiptHandle: `rh-${this.n++}`, Body: JSON.stringify(envelope) });
    this.held.set(team, list);
  }

  readonly client = {
    send: async (command: unknown) => {
      await new Promise((r) => setTimeout(r, 1));
      if (command instanceof ReceiveMessageCommand) {
        const team = command.input.QueueUrl!;
        if (this.closed.has(team)) return { Messages: [] };
        return { Messages: (this.held.get(team) ?? []).splice(0, command.input.MaxNumberOfMessages ?? 1) };
      }
      if (command instanceof DeleteMessageBatchCommand) {
        for (const e of command.input.Entries ?? []) this.deleted.push(e.ReceiptHandle!);
        return {};
      }
      throw new Error('unexpected command');
    },
  } as unknown as SQSClient;
}

const teamQueue = (team: PageTeam): TeamQueue => ({
  team,
  queue: {
    logicalId: `team-${team}`,
    name: team,
    url: team,
    arn: `arn:${team}`,
    fifo: false,
    visibilityTimeoutSeconds: 30,
  },
  filterPolicy: { teams: [team] },
  subscriptionArn: `sub-${team}`,
});

const notification = (id: string, teams: PageTeam[], team: PageTeam) => ({
  type: 'notification',
  notificationId: id,
  patientId: 'P-1',
  teams,
  page: { type: 'page', pageId: `${id}|${team}|1`, team, level: 1 },
});

let printer: PagePrinter | undefined;
afterEach(async () => {
  await printer?.stop();
  printer = undefined;
});

function printerOn(queues: TeamQueues, teams: PageTeam[], pageLines = false) {
  const lines: Record<string, any>[] = [];
  printer = new PagePrinter({
    sqs: queues.client,
    teamQueues: teams.map(teamQueue),
    out: (l) => lines.push(JSON.parse(l)),
    log: () => undefined,
    pageLines,
  });
  return { printer, lines };
}

describe('the page printer, pinned by a mutation run', () => {
  it("prints a grade change from its home queue, in that queue's order, even when another team's queue gets it first", async () => {
    const queues = new TeamQueues();
    // n0 pages hematology alone; n1 pages hematology and icu. icu's queue gets n1 before hematology's is read.
    queues.deliver('hematology', notification('n0', ['hematology'], 'hematology'));
    queues.deliver('hematology', notification('n1', ['hematology', 'icu'], 'hematology'));
    queues.deliver('icu', notification('n1', ['hematology', 'icu'], 'icu'));
    queues.closed.add('hematology');
    const { printer: p, lines } = printerOn(queues, ['hematology', 'icu']);
    p.start();
    await until(() => p.stats.deliveries.icu === 1, 'icu read');
    queues.closed.delete('hematology');
    await until(() => p.stats.printed === 2, 'both printed');
    expect(lines.map((l) => l.notificationId)).toEqual(['n0', 'n1']);
    expect(lines.every((l) => l.page === undefined)).toBe(true);
  });

  it('prints a repeated SNS delivery once, and a grade change published twice once', async () => {
    const queues = new TeamQueues();
    queues.deliver('hematology', notification('n0', ['hematology'], 'hematology'), 'sns-a');
    queues.deliver('hematology', notification('n0', ['hematology'], 'hematology'), 'sns-a');
    // Published again (a notifier that crashed before it recorded the first publish): another SNS message.
    queues.deliver('hematology', notification('n0', ['hematology'], 'hematology'), 'sns-b');
    const { printer: p, lines } = printerOn(queues, ['hematology'], true);
    p.start();
    await until(() => queues.deleted.length === 3, 'all taken');
    // Two pages (one per SNS message, the repeat dropped) and the grade change once.
    expect(lines.filter((l) => l.type === 'page')).toHaveLength(2);
    expect(lines.filter((l) => l.type === 'notification')).toHaveLength(1);
    expect(p.stats).toMatchObject({ pages: 2, printed: 1, deliveries: { hematology: 3 } });
  });

  it('prints no page line, whose link acts as a credential, unless asked to', async () => {
    const queues = new TeamQueues();
    queues.deliver('hematology', notification('n0', ['hematology'], 'hematology'));
    const { printer: p, lines } = printerOn(queues, ['hematology']);
    p.start();
    await until(() => p.stats.printed === 1, 'printed');
    expect(lines.map((l) => l.type)).toEqual(['notification']);
  });

  it('prints a technical alert as a page only, never as a grade change', async () => {
    const queues = new TeamQueues();
    queues.deliver('bedside', {
      type: 'alert',
      alertId: 'a1',
      patientId: 'P-1',
      subject: 'stale-feed',
      kind: 'alert',
      summary: 'no data',
      page: { type: 'page', pageId: 'a1|bedside|1', team: 'bedside', level: 1 },
    });
    const { printer: p, lines } = printerOn(queues, ['bedside'], true);
    p.start();
    await until(() => queues.deleted.length === 1, 'taken');
    expect(lines.map((l) => l.type)).toEqual(['page']);
    expect(p.stats.printed).toBe(0);
  });

  it('prints a test page once per team that receives it, a repeated delivery dropped', async () => {
    const queues = new TeamQueues();
    const test = { type: 'test-page', testId: 't1', team: 'icu', sentAt: '2026-01-01T00:00:00Z', note: '' };
    queues.deliver('icu', test, 'sns-t');
    queues.deliver('icu', test, 'sns-t');
    const { printer: p, lines } = printerOn(queues, ['icu']);
    p.start();
    await until(() => queues.deleted.length === 2, 'taken');
    expect(lines).toEqual([{ type: 'test-page', team: 'icu', testId: 't1', sentAt: '2026-01-01T00:00:00Z' }]);
  });

  it("counts a page its team's filter policy should have kept out", async () => {
    const queues = new TeamQueues();
    queues.deliver('icu', notification('n0', ['hematology'], 'hematology'), 'sns-x', {
      teams: { Type: 'String.Array', Value: '["hematology"]' },
    });
    queues.deliver('icu', notification('n1', ['icu'], 'icu'));
    queues.deliver('icu', notification('n2', ['hematology', 'icu'], 'icu'));
    const { printer: p } = printerOn(queues, ['icu']);
    p.start();
    await until(() => queues.deleted.length === 3, 'taken');
    expect(p.stats.misdelivered).toBe(1);
  });
});
