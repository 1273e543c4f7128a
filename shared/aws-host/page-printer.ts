// Reads the team queues (one per team, subscribed to the pages topic with the stack's filter policy) and prints
// each page once, as the NDJSON notification event the notifier published (the shape `crs replay` prints).
//
// A page for several teams reaches several queues; it is printed from the first of them, in the order of TEAMS,
// whose filter policy matches it (its "home" queue), so that pages sharing a home queue print in publish order.
// With the default routing hematology is on every page, so every patient's pages print in order. A page printed
// twice means it was published twice (two SNS message ids): a repeat of the same SNS delivery is printed once.
// Every delivery is counted per team, and one that the team's filter policy should have kept out is reported.
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Team } from '../domain/config.ts';
import { matchesFilterPolicy, type EnvelopeAttribute } from './patterns.ts';
import type { TeamQueue } from './provision.ts';

export interface PagePrinterOptions {
  sqs: SQSClient;
  teamQueues: TeamQueue[];
  /** Receives one line per page (without the newline). */
  out: (line: string) => void;
  log: (line: string) => void;
}

interface Envelope {
  Type?: string;
  MessageId?: string;
  Message?: string;
  MessageAttributes?: Record<string, EnvelopeAttribute>;
}

/** SNS message ids remembered to drop a redelivered copy; old ones are forgotten first. */
const REMEMBERED = 100_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class PagePrinter {
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly printedIds = new Set<string>();
  readonly stats: { printed: number; deliveries: Partial<Record<Team, number>>; misdelivered: number; unreadable: number } = {
    printed: 0,
    deliveries: {},
    misdelivered: 0,
    unreadable: 0,
  };

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
        const out = await this.o.sqs.send(new ReceiveMessageCommand({ QueueUrl: t.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
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
          new DeleteMessageBatchCommand({ QueueUrl: t.queue.url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
        );
      } catch (err) {
        this.o.log(`pages: deleting from the ${t.team} queue failed (${(err as Error).name}); those deliveries will come again and be dropped`);
      }
    }
  }

  private handle(team: Team, m: Message): void {
    let envelope: Envelope;
    let page: { type?: string; notificationId?: string };
    try {
      envelope = JSON.parse(m.Body ?? '') as Envelope;
      page = JSON.parse(envelope.Message ?? '') as typeof page;
      if (page.type !== 'notification' || typeof page.notificationId !== 'string') throw new Error('not a page');
    } catch {
      this.stats.unreadable++;
      this.o.log(`pages: the ${team} queue received a message that is not a page (SQS message ${m.MessageId}); dropped`);
      return;
    }
    this.stats.deliveries[team] = (this.stats.deliveries[team] ?? 0) + 1;
    const attributes = envelope.MessageAttributes ?? {};
    const matching = this.o.teamQueues.filter((q) => matchesFilterPolicy(q.filterPolicy, attributes)).map((q) => q.team);
    if (!matching.includes(team)) {
      this.stats.misdelivered++;
      this.o.log(`pages: notification ${page.notificationId} reached the ${team} queue although its filter policy does not match it`);
    }
    const home = matching[0] ?? team;
    const id = envelope.MessageId ?? m.MessageId!;
    if (team !== home || this.printedIds.has(id)) return;
    this.printedIds.add(id);
    if (this.printedIds.size > REMEMBERED) this.printedIds.delete(this.printedIds.values().next().value!);
    this.stats.printed++;
    this.o.out(JSON.stringify(page));
  }
}
