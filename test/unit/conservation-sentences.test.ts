// Sentences of docs/conservation.md and docs/safety.md that no test held: each case fails with the code it names
// broken (a deliberate one-line edit, reverted), and passes on the real code (2026-12-08 audit).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { OutboxDispatcher, type Sink } from '#adapters/sqlite/outbox.ts';
import { messageDigest } from '#app/digest.ts';
import { gradePatient } from '#app/grade.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { PatientState } from '#domain/state.ts';
import { SeenBefore, type SaveExtras, type StateStore } from '#ports';
import { enrol } from '#test/support/messages.ts';

describe('conservation.md section 1: identity', () => {
  it('a store without a long-tail read learns the digests from SeenBefore: the message found is a duplicate, paged nothing', async () => {
    // ports.ts: "A store without it learns them on write (SeenBefore)"; conservation.md: "an id found after all fails
    // the transaction with the old item: SeenBefore, and the batch is graded again knowing its digests".
    const m = enrol('P1');
    const longTail = new Map([[m.messageId, [messageDigest(m)]]]);
    const saves: (SaveExtras | undefined)[] = [];
    let stored: { state: PatientState; version: number } | undefined;
    const store: StateStore = {
      load: async () => stored,
      save: async (patientId, state, expectedVersion, _outbox, extras) => {
        const before = new Map(
          (extras?.seen ?? []).flatMap((s) =>
            !s.prior && longTail.has(s.messageId) ? [[s.messageId, longTail.get(s.messageId)!] as const] : [],
          ),
        );
        if (before.size > 0) throw new SeenBefore(patientId, before);
        saves.push(extras);
        stored = { state, version: expectedVersion + 1 };
      },
    };
    const r = await gradePatient(store, DEFAULT_CONFIG, 'P1', [m]);
    expect(r.error).toBeUndefined();
    expect(r.steps.map((s) => s.kind)).toEqual(['duplicate']);
    expect(r.notifications).toEqual([]);
    expect(saves).toEqual([]);
  });
});

describe('conservation.md section 3: a receiver down', () => {
  let dir: string | undefined;
  let db: Db | undefined;
  afterEach(() => {
    vi.useRealTimers();
    if (db?.open) db.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a lane without its own retry backs off from 1 s, doubling, to 60 s, and no further', async () => {
    dir = mkdtempSync(join(tmpdir(), 'crs-conservation-'));
    db = openDataDir(dir);
    db.prepare("INSERT INTO lane_starts (sink, kind, after_seq, since) VALUES ('webhook', 'page', 0, 'x')").run();
    db.prepare(
      "INSERT INTO outbox (kind, item_id, patient_id, body, created_at) VALUES ('page', 'a', 'P1', '{}', 'x')",
    ).run();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log: string[] = [];
    const sink: Sink = {
      name: 'webhook',
      kinds: ['page'],
      deliver: async () => {
        throw new Error('webhook answered HTTP 503');
      },
    };
    const d = new OutboxDispatcher(db, [sink], { log: (l) => log.push(l) });
    d.kick();
    for (let i = 0; log.length < 9 && i < 400; i++) await vi.advanceTimersByTimeAsync(1000);
    await d.stop();
    expect(log.slice(0, 9).map((l) => Number(/retry \d+ in (\d+) ms$/.exec(l)?.[1]))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
    ]);
  });
});
