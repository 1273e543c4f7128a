// The on-call board's list after a year of a ward (`crs serve` in this process, test/support/in-process-serve.ts):
// BOARD_PAST patients discharged long ago (each paged once, de-escalated, discharged: quiet since) and BOARD_CURRENT
// patients of now, sent through the real ingest (batches of 100) and graded, then the time of the list the board
// fetches at start and again on every live event (GET /api/patients?offset=0&limit=50), its size, and how much of
// the server's one thread a board costs while the ward sends. Measured, not asserted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceMessage } from '#domain/contract.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { boardApi, startPagingServer } from '#test/support/in-process-serve.ts';
import { wardHistory } from '#test/support/ward-history.ts';

const PAST = Number(process.env.BOARD_PAST ?? 1900);
const CURRENT = Number(process.env.BOARD_CURRENT ?? 100);
const TOKEN = 'local-bench-token-of-at-least-32-chars';
const SAMPLES = 20;

async function seed(server: EmbeddedServer, messages: DeviceMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 100) {
    const res = await fetch(`${server.url}/v1/messages/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(messages.slice(i, i + 100)),
    });
    if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  }
  while (server.queue.backlog().waiting > 0 || server.dispatcher.backlog('pager') > 0)
    await new Promise((r) => setTimeout(r, 20));
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;

export async function run(): Promise<void> {
  console.log(
    `\n== the board's list after a year: ${PAST.toLocaleString('en-US')} patients discharged long ago, ${CURRENT} current ==`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'crs-board-bench-'));
  const lines: string[] = [];
  const server = await startPagingServer({
    dataDir: dir,
    paging: {},
    lines,
    now: Date.now,
    localToken: TOKEN,
    maxPatients: PAST + CURRENT + 100,
    // The year's history goes in through the ingest, as recorded data: older than the 7 days a device clock may lag.
    maxObservationAgeMs: 400 * 86_400_000,
  });
  try {
    const messages = wardHistory({ past: PAST, current: CURRENT, now: Date.now() });
    const t0 = Date.now();
    await seed(server, messages);
    console.log(
      `seeded ${messages.length.toLocaleString('en-US')} messages through the ingest in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    const api = boardApi(server);
    const times: number[] = [];
    let body: { total: number; patients: unknown[]; leftOut?: { count: number } } | undefined;
    let bytes = 0;
    for (let i = 0; i < SAMPLES; i++) {
      const t = performance.now();
      const res = await api('/api/patients?offset=0&limit=50');
      const text = await res.text();
      times.push(performance.now() - t);
      bytes = text.length;
      body = JSON.parse(text) as typeof body;
    }
    const median = quantile(times, 0.5);
    console.log(
      `GET /api/patients?limit=50 (the board's start and every live refresh): median ${median.toFixed(0)} ms, ` +
        `p95 ${quantile(times, 0.95).toFixed(0)} ms, ${(bytes / 1024).toFixed(0)} KiB; total listed ${body!.total}` +
        (body!.leftOut ? `, ${body!.leftOut.count} left out (discharged and quiet)` : ''),
    );
    // A ward of CURRENT patients sending a reading a minute is an event every 60/CURRENT s; each open board fetches
    // the list again (at most 4 times a second: the board waits 250 ms for more events).
    const perSecond = Math.min(4, CURRENT / 60);
    console.log(
      `with the ward sending a reading a minute each: ${perSecond.toFixed(1)} refreshes/s per open board, ` +
        `${((perSecond * median) / 10).toFixed(0)}% of the server's one thread per board`,
    );
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
