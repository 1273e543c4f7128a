// Escalation timers on SQS: when a page is stored with a due time (the next level of its ladder) or a silence
// ends, a message is put on the escalation queue with DelaySeconds up to that time; the escalate function, woken
// by it, lets the pager tick. SQS delays at most 15 minutes, so a later time is reached in hops: the function
// puts the message back with the remaining delay. A lost timer costs at most a minute: the schedule also ticks.
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Page, Silence } from '#domain/paging.ts';
import type { AuditEvent, PageStore } from '#ports';

/** The longest delay SQS allows. */
const MAX_DELAY_SECONDS = 900;

/** The body of a timer message. */
export interface TimerMessage {
  wakeAt: number;
}

/** Seconds to wait from `now` until `at` (rounded up, so a wake is never early), within what SQS allows. */
export function delaySeconds(at: number, now: number): number {
  return Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil((at - now) / 1000)));
}

export function parseTimerMessage(body: string): TimerMessage | undefined {
  try {
    const v = JSON.parse(body) as { wakeAt?: unknown };
    return typeof v.wakeAt === 'number' && Number.isFinite(v.wakeAt) ? { wakeAt: v.wakeAt } : undefined;
  } catch {
    return undefined;
  }
}

export class SqsTimer {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Arranges for the escalate function to run at `at` (or, if that is more than 15 minutes off, to hop on). */
  async wake(at: number): Promise<void> {
    const body: TimerMessage = { wakeAt: at };
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        DelaySeconds: delaySeconds(at, this.now()),
      }),
    );
  }
}

/**
 * The page store with timers: every page stored with a due time, and every silence with an end, sets a timer for
 * that time. A timer that fails to be set is logged and left to the schedule's minute tick: the page is stored.
 */
export function withTimers(
  store: PageStore,
  timer: Pick<SqsTimer, 'wake'>,
  onError: (err: unknown) => void,
): PageStore {
  const wakeAll = async (times: number[]) => {
    for (const at of new Set(times)) {
      try {
        await timer.wake(at);
      } catch (err) {
        onError(err);
      }
    }
  };
  return {
    get: (id) => store.get(id),
    openPages: (patientId) => store.openPages(patientId),
    pendingPages: (now) => store.pendingPages(now),
    unsentPages: (patientId) => store.unsentPages(patientId),
    patientPages: (patientId, limit) => store.patientPages(patientId, limit),
    silences: (now) => store.silences(now),
    getSilence: (id) => store.getSilence(id),
    endUnreadableSilence: (id, at, audit) => store.endUnreadableSilence(id, at, audit),
    saveAckLink: (key, link) => store.saveAckLink(key, link),
    ackLink: (key) => store.ackLink(key),
    async save(pages: Page[], audit?: AuditEvent[]) {
      await store.save(pages, audit);
      // A due time is new when a level is stored before its send (marking it delivered keeps the same time).
      await wakeAll(
        pages.flatMap((p) =>
          p.status === 'open' && !p.delivered && p.heldBy === undefined && p.dueAt !== null ? [p.dueAt] : [],
        ),
      );
    },
    async saveSilence(s: Silence, audit?: AuditEvent[]) {
      await store.saveSilence(s, audit);
      if (s.endedAt === undefined) await wakeAll([s.until]);
    },
  };
}
