// Durability of `crs serve`: the real server process is killed with SIGKILL twice while devices stream to it and
// pages stream out. Devices resend what was not answered 202 (as real gateways do). At the end every accepted
// message is applied exactly once, no page is missing and none was printed twice, with one exception no pipe can
// avoid: a page written in the microseconds before the kill and not yet recorded is printed again, first thing, by
// the next process (same notificationId). The test allows exactly that case and no other repeat.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { buildScenario } from '#sim/courses.ts';
import { idle, pageEvents, post, spawnServe, stop, type ServeProcess } from './embedded-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every patient's messages in order; `next` is the first one not yet answered 202. */
interface Device {
  messages: DeviceMessage[];
  next: number;
}

/**
 * Streams every device's messages in order, one in flight per device, until all are accepted or the server dies
 * (then a device stops at its first unanswered message). Calls `onAccepted` with the running count.
 */
async function stream(
  server: ServeProcess,
  devices: Device[],
  accepted: Set<string>,
  onAccepted: (n: number) => void,
): Promise<void> {
  await Promise.all(
    devices.map(async (d) => {
      while (d.next < d.messages.length) {
        const m = d.messages[d.next]!;
        let status: number;
        try {
          status = (await post(server.url, m)).status;
        } catch {
          return; // the server is gone: resend from here to the next server
        }
        if (status !== 202) throw new Error(`message ${m.messageId} answered ${status}`);
        accepted.add(m.messageId);
        d.next++;
        onAccepted(accepted.size);
      }
    }),
  );
}

describe('crs serve killed with SIGKILL mid-stream', () => {
  it('loses no accepted message and sends no page twice', async () => {
    // Two days ago: the server refuses observations from the future.
    const scenario = buildScenario({
      seed: 11,
      start: Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000,
      copies: 6,
    });
    const all = scenario.messages;
    const devices = new Map<string, Device>();
    for (const m of all) {
      const d = devices.get(m.patientId) ?? { messages: [], next: 0 };
      d.messages.push(m);
      devices.set(m.patientId, d);
    }
    const accepted = new Set<string>();
    const acceptedBeforeKill: string[][] = [];
    const runs: string[][] = [];

    for (const killAt of [0.3, 0.65]) {
      const server = await spawnServe(dir);
      let killed = false;
      await stream(server, [...devices.values()], accepted, (n) => {
        if (!killed && n >= all.length * killAt) {
          killed = true;
          server.child.kill('SIGKILL');
        }
      });
      await server.exited;
      expect(killed).toBe(true);
      expect(server.child.signalCode).toBe('SIGKILL');
      acceptedBeforeKill.push([...accepted]);
      runs.push(server.lines.filter((l) => l.trim() !== ''));
    }

    const last = await spawnServe(dir);
    await stream(last, [...devices.values()], accepted, () => undefined);
    await idle(last);
    expect(await stop(last)).toBe(0); // a clean stop on SIGTERM
    runs.push(last.lines.filter((l) => l.trim() !== ''));

    // The only repeat allowed: the killed process's very last line, printed again as the next process's first.
    for (let i = 0; i + 1 < runs.length; i++) {
      if (runs[i]!.length > 0 && runs[i]!.at(-1) === runs[i + 1]![0]) runs[i + 1]!.shift();
    }

    // No page twice, none missing, each patient's pages in order: the same as replay over the same arrivals.
    const pages = pageEvents(runs.flat());
    const ids = pages.map((p) => p.notificationId);
    expect(new Set(ids).size).toBe(ids.length);
    const replay = new Replay(DEFAULT_CONFIG);
    const expected = all
      .flatMap((m, i) => replay.line(JSON.stringify(m), i + 1))
      .filter((e) => e.type === 'notification');
    const byPatient = (list: { patientId: string; notificationId: string }[]) => {
      const out: Record<string, string[]> = {};
      for (const p of list) (out[p.patientId] ??= []).push(p.notificationId);
      return out;
    };
    expect(byPatient(pages)).toEqual(byPatient(expected as { patientId: string; notificationId: string }[]));
    expect(pages).toEqual(expect.arrayContaining(expected as object[]));
    expect(expected.length).toBeGreaterThan(20);

    // Every message accepted before each kill is applied, exactly once (one timeline row per message).
    const db = new Database(join(dir, 'crs.db'), { readonly: true });
    try {
      const applied = (db.prepare('SELECT message_id FROM timeline').all() as { message_id: string }[]).map(
        (r) => r.message_id,
      );
      expect(new Set(applied).size).toBe(applied.length);
      for (const before of acceptedBeforeKill) expect(applied).toEqual(expect.arrayContaining(before));
      expect(applied.length).toBe(all.length);
      expect(db.prepare('SELECT count(*) AS n FROM inbox').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT count(*) AS n FROM dead_letter').get()).toEqual({ n: 0 });
      expect(db.prepare("SELECT count(*) AS n FROM deliveries WHERE sink = 'stdout'").get()).toEqual({
        n: expected.length,
      });
    } finally {
      db.close();
    }
  }, 120_000);
});
