// The per-patient ordered queue on SQLite: the inbox table. enqueue resolves only after the commit (the 202's
// promise); every request that arrives in the same turn of the event loop shares one transaction and one fsync.
import type { MessageQueue, QueuedMessage } from '#ports';
import type { Db } from './db.ts';

interface Waiting {
  messages: QueuedMessage[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SqliteQueue implements MessageQueue {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private readonly insert;

  /** onCommitted runs after each commit that added messages (the grading worker is woken by it). */
  constructor(
    private readonly db: Db,
    private readonly onCommitted: () => void = () => undefined,
  ) {
    // A resend (patientId, messageId and content digest) still waiting is ignored: it is answered like an accepted
    // one. The same messageId with other content is another message (a reused id).
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO inbox (patient_id, message_id, digest, body, received_at) VALUES (?, ?, ?, ?, ?)',
    );
  }

  enqueue(messages: QueuedMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.waiting;
    this.waiting = [];
    if (group.length === 0) return;
    try {
      this.db.transaction(() => {
        for (const w of group) {
          for (const q of w.messages) {
            const body = JSON.stringify({ message: q.message, receivedAt: q.receivedAt, sender: q.sender });
            this.insert.run(q.message.patientId, q.message.messageId, q.digest, body, q.receivedAt);
          }
        }
      })();
    } catch (err) {
      for (const w of group) w.reject(err as Error);
      return;
    }
    for (const w of group) w.resolve();
    this.onCommitted();
  }

  /** Messages accepted and not yet graded (dead letters excluded). */
  pending(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM inbox').get() as { n: number }).n;
  }

  /** How many messages wait to be graded, and when the oldest of them arrived (epoch ms; null: none waits). */
  backlog(): { waiting: number; oldestAt: number | null } {
    const r = this.db
      .prepare('SELECT count(*) AS n, (SELECT received_at FROM inbox ORDER BY seq LIMIT 1) AS oldest FROM inbox')
      .get() as { n: number; oldest: string | null };
    return { waiting: r.n, oldestAt: r.oldest === null ? null : Date.parse(r.oldest) };
  }
}
