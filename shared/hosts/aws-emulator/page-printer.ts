// Reads the team queues (one per team, subscribed to the pages topic with the stack's filter policy) and prints
// what they receive on stdout, as NDJSON:
// - a `notification` line once per grade change, exactly as `crs replay` prints it (the page's body carries it);
// - with `pageLines` (--page-lines), also a `page` line for every page a team receives (each level of each ladder,
//   and technical alerts), the page event every backend emits: the team, the role paged, the level, why and the
//   acknowledge link. Off by default, as on the embedded backend: the links act as credentials, and standard
//   output often ends up in logs;
// - a `test-page` line for each team that receives a test page (`crs doctor --test-page TEAM`): no link, no grade.
//
// A grade change pages several teams, one message each; its notification line is printed from its "home" queue:
// the first, in the order of PAGE_TEAMS, of its teams whose filter policy matches it, so that the notifications
// sharing a home queue print in publish order (with the default routing hematology is on every grade change, so
// every patient's notifications print in order). A repeat of the same SNS delivery is printed once. Every
// delivery is counted per team, and one that the team's filter policy should have kept out is reported.
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { PageTeam } from '#domain/paging.ts';
import type { PageBody, TestPageBody } from '#adapters/aws/sns-page-sender.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { matchesFilterPolicy, type EnvelopeAttribute } from './patterns.ts';
import type { TeamQueue } from './provision.ts';

export interface PagePrinterOptions {
  sqs: SQSClient;
  teamQueues: TeamQueue[];
  /** Receives one line per page or notification (without the newline). */
  out: (line: string) => void;
  log: (line: string) => void;
  /** Also print every page a team receives. */
  pageLines?: boolean;
}

interface Envelope {
  Type?: string;
  MessageId?: string;
  Message?: string;
  MessageAttributes?: Record<string, EnvelopeAttribute>;
}

/** A page as a team received it (one stdout line with --page-lines). */
export type PageLine = PageEvent;

/** Ids remembered to drop a redelivered copy; old ones are forgotten first. */
const REMEMBERED = 100_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function remember(set: Set<string>, id: string): boolean {
  if (set.has(id)) return false;
  set.add(id);
  if (set.size > REMEMBERED) set.delete(set.values().next().value!);
  return true;
}

export class PagePrinter {
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly seenDeliveries = new Set<string>();
  private readonly printedNotifications = new Set<string>();
  readonly stats: {
    /** Notification lines printed (grade changes, once each). */
    printed: number;
    /** Pages the teams received (each printed with --page-lines). */
    pages: number;
    deliveries: Partial<Record<PageTeam, number>>;
    misdelivered: number;
    unreadable: number;
    /** Test pages (crs doctor --test-page) the team queues received. */
    testPages: number;
  } = { printed: 0, pages: 0, deliveries: {}, misdelivered: 0, unreadable: 0, testPages: 0 };

  constructor(private readonly o: PagePrinterOptions) {}

  start(): void {
    this.loops = this.o.teamQueues.map((t) => this.run(t));
  }

  /** Stops after the receives in flight (at most a second); what they brought is printed and deleted first. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async run(t: TeamQueue): Promise<void> {
    while (!this.stopping) {
      let messages: Message[];
      try {
        const out = await this.o.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: t.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        messages = out.Messages ?? [];
      } catch (err) {
        this.o.log(`pages: receiving from the ${t.team} queue failed (${(err as Error).name}); retrying`);
        await sleep(1000);
        continue;
      }
      if (messages.length === 0) continue;
      for (const m of messages) this.handle(t.team, m);
      try {
        await this.o.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: t.queue.url,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      } catch (err) {
        this.o.log(
          `pages: deleting from the ${t.team} queue failed (${(err as Error).name}); those deliveries will come again and be dropped`,
        );
      }
    }
  }

  private handle(team: PageTeam, m: Message): void {
    let envelope: Envelope;
    let body: PageBody | TestPageBody;
    try {
      envelope = JSON.parse(m.Body ?? '') as Envelope;
      body = JSON.parse(envelope.Message ?? '') as PageBody | TestPageBody;
      if (body.type === 'test-page') {
        if (typeof body.testId !== 'string') throw new Error('not a test page');
      } else if ((body.type !== 'notification' && body.type !== 'alert') || typeof body.page?.pageId !== 'string')
        throw new Error('not a page');
    } catch {
      this.stats.unreadable++;
      this.o.log(
        `pages: the ${team} queue received a message that is not a page (SQS message ${m.MessageId}); dropped`,
      );
      return;
    }
    const attributes = envelope.MessageAttributes ?? {};
    if (body.type === 'test-page') {
      // A test page (crs doctor --test-page): printed for each team that receives it, no link, never a grade.
      if (!remember(this.seenDeliveries, `${team}|${envelope.MessageId ?? m.MessageId}`)) return;
      this.stats.testPages++;
      this.o.out(JSON.stringify({ type: 'test-page', team, testId: body.testId, sentAt: body.sentAt }));
      return;
    }
    this.stats.deliveries[team] = (this.stats.deliveries[team] ?? 0) + 1;
    if (!this.o.teamQueues.some((q) => q.team === team && matchesFilterPolicy(q.filterPolicy, attributes))) {
      this.stats.misdelivered++;
      this.o.log(
        `pages: page ${body.page.pageId} reached the ${team} queue although its filter policy does not match it`,
      );
    }
    if (!remember(this.seenDeliveries, `${team}|${envelope.MessageId ?? m.MessageId}`)) return;

    this.stats.pages++;
    if (this.o.pageLines) this.o.out(JSON.stringify(body.page satisfies PageLine));

    if (body.type !== 'notification') return;
    // The notification's home queue: the first of its teams whose filter policy matches the whole notification.
    const whole = { ...attributes, teams: { Type: 'String.Array', Value: JSON.stringify(body.teams) } };
    const home =
      this.o.teamQueues.find((q) => body.teams.includes(q.team as never) && matchesFilterPolicy(q.filterPolicy, whole))
        ?.team ?? team;
    if (team !== home || !remember(this.printedNotifications, body.notificationId)) return;
    const { page: _page, ...notification } = body;
    this.stats.printed++;
    this.o.out(JSON.stringify(notification));
  }
}
