// The dead letters of the embedded backend: accepted messages the grading worker failed to grade 3 times, set
// aside in the table `dead_letter` so that their patient's later messages go on. Listed and put back in the inbox
// (redriven) by `crs dead-letters` (through the running server, or on the database when none runs). A redriven
// message goes back at its place in arrival order, with its attempts counted from zero, and is graded like any
// message: one already applied (a device resent it after the fault was fixed, or it is redriven twice) is found
// by the grading's identity check (messageId and content digest) and counted as a duplicate, never applied twice.
import { queuedDigest } from '#app/grade.ts';
import type { Db } from './db.ts';

export interface DeadLetter {
  /** The message's arrival number (its inbox seq): what `crs dead-letters redrive ID` takes. */
  id: string;
  patientId: string;
  messageId: string;
  receivedAt: string;
  attempts: number;
  /** Why the last attempt failed (the error's name and text: it may quote the message, so it is never logged). */
  error: string;
  failedAt: string;
}

/** Every dead letter, oldest first. */
export function listDeadLetters(db: Db): DeadLetter[] {
  return (
    db
      .prepare(
        'SELECT seq, patient_id, message_id, received_at, attempts, error, failed_at FROM dead_letter ORDER BY seq',
      )
      .all() as {
      seq: number;
      patient_id: string;
      message_id: string;
      received_at: string;
      attempts: number;
      error: string;
      failed_at: string;
    }[]
  ).map((r) => ({
    id: String(r.seq),
    patientId: r.patient_id,
    messageId: r.message_id,
    receivedAt: r.received_at,
    attempts: r.attempts,
    error: r.error,
    failedAt: r.failed_at,
  }));
}

/** How many messages are dead-lettered, and when the first of them was (null: none). */
export function deadLetterCount(db: Db): { count: number; since: string | null } {
  return db.prepare('SELECT count(*) AS count, min(failed_at) AS since FROM dead_letter').get() as {
    count: number;
    since: string | null;
  };
}

/**
 * Puts the dead letter `id` (every one without it) back in the inbox, in one transaction (synchronous=FULL, as an
 * accepted message's commit): its original arrival number, so that it is graded before its patient's messages still
 * waiting. A copy of it already waiting in the inbox (a device resent it) is graded instead. Returns how many.
 */
export function redriveDeadLetters(db: Db, id?: string): number {
  if (id !== undefined && !/^[1-9]\d{0,15}$/.test(id)) return 0;
  const take = db.prepare(
    'SELECT seq, patient_id, message_id, body, received_at FROM dead_letter WHERE (? IS NULL OR seq = ?) ORDER BY seq',
  );
  const insert = db.prepare(
    'INSERT OR IGNORE INTO inbox (seq, patient_id, message_id, digest, body, received_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const remove = db.prepare('DELETE FROM dead_letter WHERE seq = ?');
  return db.transaction(() => {
    const seq = id === undefined ? null : Number(id);
    const rows = take.all(seq, seq) as {
      seq: number;
      patient_id: string;
      message_id: string;
      body: string;
      received_at: string;
    }[];
    for (const r of rows) {
      insert.run(r.seq, r.patient_id, r.message_id, queuedDigest(r.body), r.body, r.received_at);
      remove.run(r.seq);
    }
    return rows.length;
  })();
}
