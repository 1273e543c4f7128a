// `crs replay --escalations` against `crs serve`, differentially: a random script (three patients of one ward;
// grades up and down over hours, some messages arriving late; acknowledgements by page id; silences of a patient
// or a team started and ended; time passing so that ladders climb and feeds go stale) is run as a replay file
// through EscalatingReplay, and against an embedded server whose clock follows the script (its HTTP routes for
// messages, acknowledgements and silences). Both must write the same audit trail of pages: opened, sent (to whom,
// at which level and round, when), escalated, held and released, acknowledged, superseded, resolved, alerts.
//
// What differs by design (docs/paging.md, its opening: "except where they differ by design"), and how it is compared:
// - Time: replay's clock is the latest time in the file; the server's is its own, here the script's time (never
//   moved back by a late message), so the two agree.
// - Stale-feed sweeps: the server sweeps every quarter of staleFeedMinutes, so an alert is up to that late; replay
//   raises it at the moment the feed became stale. The test sweeps the server at that moment (a phase the real loop
//   may have), and compares exactly. The server's own timers also run (at the same clock): entries of one instant
//   are compared in a canonical order.
// - Silence ids: the server makes them; replay's file names them. Mapped.
// - Acknowledgements: replay's line acknowledges by page id, recorded `via api`; the server's board button
//   (`POST /api/pages/<id>/ack`, `via board`) and the link's token (`POST /v1/acks`, `via link`, the name followed
//   by the role the link was sent to). `by` and `via` are compared up to that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { SqlitePageStore } from '#adapters/sqlite/pages.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { feedStatus } from '#domain/paging.ts';
import type { AuditEvent } from '#ports';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { lineStream } from '#test/support/lines.ts';
import {
  CONFIG,
  type Entry,
  everyScriptAgrees,
  MINUTE,
  type Outcome,
  PAGING_TYPES,
  PATIENTS,
  type Script,
  type Step,
  runReplay,
  silenceLabels,
  stepsOf,
  trail,
} from '#test/support/paging-scripts.ts';
import { T0 } from '#test/support/messages.ts';

const RUNS = Number(process.env.REPLAY_SERVE_RUNS ?? 40);
const TOKEN = 'local-test-token-of-at-least-32-chars';

async function runServer(steps: Step[], pageChoices: Map<number, string>): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'crs-replay-serve-'));
  let clock = T0;
  const lines: string[] = [];
  const server: EmbeddedServer = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: lineStream(lines),
    pageLines: true,
    now: () => clock,
    log: () => undefined,
  });
  const boardKey = new URL(server.boardUrl).searchParams.get('key')!;
  // The test's own reader of what is due, made once: it caches nothing (each nextDueAt reads the table), and a store
  // made anew at each step prepared its statements again and registered its SQL function on the server's connection
  // again, which made SQLite prepare the server's own statements again.
  const pages = new SqlitePageStore(server.db);
  const post = (path: string, body: unknown, auth = boardKey) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** Everything accepted is graded, handed to the pager, its pages written out, the sweeps after it done. */
  const settle = async () => {
    const deadline = Date.now() + 30_000; // a loaded machine is slow, not wrong
    for (let round = 0; round < 2; round++) {
      for (;;) {
        const lanes = server.dispatcher.health();
        if (server.queue.pending() === 0 && lanes.every((l) => l.backlog === 0)) break;
        if (Date.now() > deadline) throw new Error('the server did not settle in 30 s');
        await new Promise((r) => setTimeout(r, 2));
      }
      await server.paging.sweep([]); // after the checks a commit started
    }
  };
  /** When the next patient's feed becomes stale, after the clock and up to `to`. */
  const nextStale = async (to: number): Promise<number | undefined> => {
    let next: number | undefined;
    // A store of its own each time: a store caches what it read, and reads each patient once here.
    const states = new SqliteStateStore(server.db);
    for (const p of PATIENTS) {
      const s = await states.load(p);
      const f = s && feedStatus(s.state, clock, CONFIG.paging);
      if (!f) continue;
      const at = f.since + CONFIG.paging.staleFeedMinutes * MINUTE;
      if (at > clock && at <= to && (next === undefined || at < next)) next = at;
    }
    return next;
  };
  /**
   * The clock runs to `to`: the timer loop ticks when the next step falls due (it wakes then: the store's
   * nextDueAt), and the sweep runs when a feed becomes stale.
   */
  const advance = async (to: number) => {
    for (;;) {
      const stale = await nextStale(to);
      const due = pages.nextDueAt();
      const step = due !== null && due > clock && due <= to ? due : undefined;
      if (stale === undefined && step === undefined) break;
      const stops = stale !== undefined && (step === undefined || stale <= step);
      clock = stops ? stale : step!;
      await server.paging.tick();
      if (stops) await server.paging.sweep();
      await settle();
    }
    if (to > clock) clock = to;
    await server.paging.tick();
    await server.paging.sweep();
    await settle();
  };

  const labels = silenceLabels(steps);
  const silenceIds = new Map<string, string>(); // server id -> label
  const scriptSilences: string[] = [];
  const answers: string[] = [];
  try {
    for (const [i, s] of steps.entries()) {
      await advance(s.now);
      switch (s.op.op) {
        case 'until':
          break;
        case 'wait':
          break;
        case 'ack': {
          const pageId = pageChoices.get(i);
          if (pageId === undefined) break;
          // The link of any level the page was sent to; one past its expiry would be refused (replay's line is not).
          const links = lines
            .map((l) => JSON.parse(l) as PageEvent | { type: string })
            .filter((e): e is PageEvent => e.type === 'page' && (e as PageEvent).pageId === pageId)
            .flatMap((e) => (e.ackUrl ? [e.ackUrl.split('/ack/')[1]!] : []))
            .filter((token) => Number.parseInt(token.split('.')[3]!, 36) > clock);
          const link = links.length > 0 ? links[s.op.link % links.length] : undefined;
          const res =
            s.op.via === 'link' && link
              ? await post('/v1/acks', { token: link, by: 'Dr A' })
              : await post(`/api/pages/${encodeURIComponent(pageId)}/ack`, { by: 'Dr A' });
          answers.push(res.status === 200 ? 'acknowledged' : 'refused');
          break;
        }
        case 'silence': {
          const c = JSON.parse(s.line) as {
            patientId?: string;
            team?: string;
            silenceId: string;
            from: string;
            until: string;
          };
          const res = await post('/api/silences', {
            ...(c.team ? { team: c.team } : { patientId: c.patientId }),
            minutes: (Date.parse(c.until) - Date.parse(c.from)) / MINUTE,
            reason: 'transport',
            by: 'Nurse B',
          });
          expect(res.status, `silence at step ${i}`).toBe(201);
          const made = ((await res.json()) as { silence: { silenceId: string } }).silence.silenceId;
          silenceIds.set(made, labels.get(c.silenceId)!);
          scriptSilences.push(made);
          break;
        }
        case 'end-silence': {
          if (scriptSilences.length === 0) break;
          const id = scriptSilences[s.op.which % scriptSilences.length]!;
          const res = await post(`/api/silences/${encodeURIComponent(id)}/end`, { by: 'Nurse B' });
          expect(res.status, `end of silence at step ${i}`).toBe(200);
          break;
        }
        default: {
          const res = await post('/v1/messages', s.message, TOKEN);
          expect(res.ok, `message at step ${i}: ${res.status}`).toBe(true);
        }
      }
      await settle();
    }
    const entries: Entry[] = [];
    for (const p of [...PATIENTS, 'ward H4', 'ward H5', '*'])
      for await (const e of server.paging.audit.forPatient(p))
        if (PAGING_TYPES.has(e.type)) entries.push(e as AuditEvent as Entry);
    return { trail: trail(entries, silenceIds), answers };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function compare(script: Script): Promise<Record<string, string[]>> {
  const steps = stepsOf(script);
  const replay = await runReplay(steps);
  const served = await runServer(steps, replay.pageChoices);
  expect(served.trail).toEqual(replay.trail);
  expect(served.answers).toEqual(replay.answers);
  return replay.trail;
}

/** Scripts that found a defect (each also a fixed example where the behaviour lives). */
const FOUND: Script[] = [
  // A page held by a patient's and its team's silence at once named either (test/unit/paging.test.ts, silences).
  {
    patients: 2,
    ops: [
      { op: 'silence', patient: 2, team: null, minutes: 1 },
      { op: 'silence', patient: 0, team: 'hematology', minutes: 1 },
      { op: 'icans', patient: 1, grade: 1, late: 21 },
      { op: 'wait', minutes: 2 },
    ],
    tail: 0,
  },
];

describe('crs replay --escalations and crs serve page alike', () => {
  it('the same pages, sends, escalations, acknowledgements, silences and alerts over random scripts', async () => {
    await everyScriptAgrees(compare, RUNS, FOUND);
  }, 600_000);
});
