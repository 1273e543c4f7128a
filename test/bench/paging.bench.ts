// Paging figures of `crs serve` (its own process, --page-lines): the latency from POST to the page sent to a role
// (the pager's work on top of grading), how punctual the escalation timers are (when the next level is paged
// against when it fell due), and how many grade changes a second the pager opens pages for when they come in a
// burst. Measured, not asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PageEvent } from '#domain/page-event.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { health, post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';

const SAMPLES = 200;
const BURST = 1000;
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms`;
};

const source = { deviceId: 'bench', kind: 'monitor' as const };
// Enrolment comes from the EHR: device scopes refuse it from a monitor (issue 16).
const ehr = { deviceId: 'bench-ehr', kind: 'ehr' as const };
/** Enrolled now, then a fever: CRS 1, one page to the hematology fellow. */
function feverPatient(patientId: string): [DeviceMessage, DeviceMessage] {
  const now = Date.now();
  return [
    {
      messageId: `${patientId}-e`,
      patientId,
      observedAt: new Date(now - 1000).toISOString(),
      source: ehr,
      enrolment: { bed: patientId, therapy: 'car-t', infusedAt: new Date(now - 86_400_000).toISOString() },
    },
    {
      messageId: `${patientId}-f`,
      patientId,
      observedAt: new Date(now).toISOString(),
      source,
      vitals: { temperatureC: 39 },
    },
  ];
}

function pagesOf(s: ServeProcess): PageEvent[] {
  return s.lines.filter((l) => l.includes('"type":"page"')).map((l) => JSON.parse(l) as PageEvent);
}

export async function run(): Promise<void> {
  console.log(
    '\n== crs serve paging (embedded): POST -> page to a role, escalation timers, pages opened in a burst ==',
  );
  const dir = mkdtempSync(join(tmpdir(), 'crs-paging-bench-'));
  const config = join(dir, 'config.json');
  // A level every 3 s below grade 3, so that timers fire during the run.
  writeFileSync(config, JSON.stringify({ paging: { timeoutMinutes: { severe: 0.05, other: 0.05 } } }));
  // More patients than the default enrolment ceiling of 500 (issue 16).
  const server = await spawnServe(join(dir, 'data'), ['--config', config, '--page-lines', '--max-patients', '5000']);
  try {
    // 1. Idle: one patient at a time.
    const seen = new Map<string, (at: bigint) => void>();
    server.onLine = (line, at) => {
      if (!line.includes('"type":"page"')) return;
      const p = JSON.parse(line) as PageEvent;
      if (p.reason === 'triggered') seen.get(p.patientId)?.(at);
    };
    const latencies: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const patientId = `idle-${i}`;
      const [enrol, fever] = feverPatient(patientId);
      if ((await post(server.url, enrol)).status !== 202) throw new Error('enrolment not accepted');
      const paged = new Promise<bigint>((resolve) => seen.set(patientId, resolve));
      const t0 = process.hrtime.bigint();
      if ((await post(server.url, fever)).status !== 202) throw new Error('not accepted');
      latencies.push(Number((await paged) - t0) / 1e6);
    }
    server.onLine = undefined;
    console.log(`idle: POST -> page to the hematology fellow (with its ack link) ${fmt(latencies)} (${SAMPLES} pages)`);

    // 2. The ladders of those pages: each next level against the time it fell due.
    await new Promise((r) => setTimeout(r, 3500));
    const pages = pagesOf(server);
    const lateness: number[] = [];
    for (const p of pages) {
      if (p.reason !== 'escalated' || p.level !== 1) continue;
      const first = pages.find((x) => x.pageId === p.pageId && x.level === 0 && x.round === 0);
      if (first?.escalatesAt) lateness.push(Date.parse(p.sentAt) - Date.parse(first.escalatesAt));
    }
    console.log(
      `escalation timers: next level paged after it fell due by ${fmt(lateness)} (${lateness.length} escalations; the loop wakes at the due time, at most 1 s apart)`,
    );

    // 3. A burst: grade changes of BURST patients in batches of 100 messages (the limit), then until every page is sent.
    const before = pagesOf(server).filter((p) => p.reason === 'triggered').length;
    const t0 = performance.now();
    const messages = Array.from({ length: BURST }, (_, i) => feverPatient(`burst-${i}`)).flat();
    for (let i = 0; i < messages.length; i += 100) {
      const status = (await post(server.url, messages.slice(i, i + 100))).status;
      if (status !== 202) throw new Error(`HTTP ${status}`);
    }
    const accepted = performance.now() - t0;
    while (pagesOf(server).filter((p) => p.reason === 'triggered').length < before + BURST)
      await new Promise((r) => setTimeout(r, 5));
    const done = performance.now() - t0;
    console.log(
      `burst: ${BURST} grade changes (${BURST * 2} messages) accepted in ${(accepted / 1000).toFixed(2)} s, every page sent after ${(done / 1000).toFixed(2)} s: ` +
        `${Math.round(BURST / (done / 1000)).toLocaleString('en-US')} grade changes paged per second (pager lane backlog now ${(await health(server)).undelivered.pager ?? 0})`,
    );
  } finally {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
