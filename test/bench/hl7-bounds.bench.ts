// What one HL7 v2 message can cost the embedded server's one event loop (shared/app/hl7v2/pcd01.ts, HL7_MAX_SEGMENTS
// and HL7_MAX_DELIMITERS): first translatePcd01 in this process, for the costliest messages taken (at the bounds)
// and for messages of 1 MiB refused by the bounds; then `crs serve --mllp-port` as its own process, /healthz asked
// every 20 ms while one MLLP sender writes such a message over and over (each after the ACK of the one before).
// Figures, not tests: docs/security.md and docs/interfaces.md quote them. Run on an otherwise idle machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAck } from '#app/hl7v2/ack.ts';
import { HL7_MAX_DELIMITERS, HL7_MAX_SEGMENTS, translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { spawnServe, stop } from '#test/integration/embedded-support.ts';

const HEAD = (id: string) =>
  `MSH|^~\\&|GW|ICU|CRS|H|20261206010000+0000||ORU^R01^ORU_R01|${id}|P|2.6\rPID|||P1^^^H^MR\rPV1||I|ICU^^B1\rOBR|1|||x|||20261206010000+0000\r`;
const HEAD_SEGMENTS = 4;
const time = (i: number) =>
  `${new Date(Date.UTC(2026, 11, 6) - i * 60_000).toISOString().replace(/\D/g, '').slice(0, 12)}+0000`;
const obx = (i: number, value: string, at: string) =>
  `OBX|${i}|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.1.1|${value}|262688^MDC_DIM_PERCENT^MDC|||||R|||${at}||||MON1\r`;
const delimiters = (text: string) => (text.match(/[|^~&]/g) ?? []).length;
const obxRows = (n: number, value: (i: number) => string, at: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => obx(i + 1, value(i), at(i))).join('');

/** The costliest messages taken: at the segment bound, at the delimiter bound. */
function atBounds(id: string): Record<string, string> {
  const rows = HL7_MAX_SEGMENTS - HEAD_SEGMENTS;
  const perSegment = Math.floor((HL7_MAX_DELIMITERS - delimiters(HEAD(id))) / rows);
  return {
    [`${rows} SpO2 OBX, each of its own time (one contract message each)`]: `${HEAD(id)}${obxRows(
      rows,
      () => '97',
      time,
    )}`,
    [`${rows} SpO2 OBX of one time, 5 values (every one refused, ERR each)`]: `${HEAD(id)}${obxRows(
      rows,
      (i) => String(90 + (i % 5)),
      () => time(0),
    )}`,
    [`${rows} segments of ${perSegment} empty fields`]: `${HEAD(id)}${`ZZZ${'|'.repeat(perSegment)}\r`.repeat(rows)}`,
    [`one segment of ${HL7_MAX_DELIMITERS - 40} empty fields`]: `${HEAD(id)}ZZZ${'|'.repeat(HL7_MAX_DELIMITERS - 40)}`,
  };
}

/** Messages of about 1 MiB that the 1 MiB limit alone let through (until 2026-12-06). */
function pathological(id: string): Record<string, string> {
  return {
    'one segment of 1,000,000 empty fields (1 MiB)': `${HEAD(id)}ZZZ${'|'.repeat(1_000_000)}`,
    '262,000 empty segments (1 MiB)': `${HEAD(id)}${'ZZZ\r'.repeat(262_000)}`,
    '9,000 SpO2 OBX, each of its own time (1 MiB)': `${HEAD(id)}${obxRows(9_000, () => '97', time)}`,
  };
}

const ms = (n: number) => `${n.toFixed(1)} ms`;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

function inProcess(): void {
  const realistic = `${HEAD('R')}${obxRows(
    300,
    () => '97',
    (i) => time(i % 10),
  )}`;
  console.log(
    `a realistic large PCD-01 message: 300 OBX, ${realistic.split('\r').length - 1} segments, ${delimiters(realistic)} delimiters (bounds: ${HL7_MAX_SEGMENTS}, ${HL7_MAX_DELIMITERS})`,
  );
  const shapes = { 'realistic, 300 OBX': realistic, ...atBounds('B'), ...pathological('P') };
  for (const [name, text] of Object.entries(shapes)) {
    const times: number[] = [];
    let r: ReturnType<typeof translatePcd01> | undefined;
    for (let k = 0; k < 9; k++) {
      const t0 = performance.now();
      r = translatePcd01(text, { notAfter: Date.parse('2026-12-07T00:00:00Z') });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const outcome = r!.ok ? `taken (${r!.translated.length} message(s))` : `refused: ${r!.problems[0]!.text}`;
    console.log(
      `  ${name}: translatePcd01 median ${ms(quantile(times, 0.5))}, max ${ms(times.at(-1)!)} (${text.length} bytes; ${outcome})`,
    );
  }
}

async function underLoad(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crs-hl7-bounds-bench-'));
  const server = await spawnServe(dir, ['--mllp-port', '0']);
  const port = Number(server.stderr().match(/MLLP on [\d.]+:(\d+)/)?.[1]);
  const probe = async (forMs: number) => {
    const latencies: number[] = [];
    const end = Date.now() + forMs;
    while (Date.now() < end) {
      const t0 = performance.now();
      await (await fetch(`${server.url}/healthz`)).text();
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
    return latencies.sort((a, b) => a - b);
  };
  const say = (label: string, l: number[], extra = '') =>
    console.log(
      `  ${label}: /healthz median ${ms(quantile(l, 0.5))}, p95 ${ms(quantile(l, 0.95))}, max ${ms(l.at(-1)!)} (${l.length} probes${extra})`,
    );
  try {
    say('idle', await probe(3_000));
    const frames = { ...atBounds('L'), ...pathological('Q') };
    let n = 0;
    for (const [name, text] of Object.entries(frames)) {
      const client = new MllpClient('127.0.0.1', port, 10_000);
      let sending = true;
      let sent = 0;
      const codes = new Set<string>();
      const sender = (async () => {
        while (sending) {
          // A new MSH-10 each time: every one is read, none a duplicate.
          // An ACK over 1 MiB (until 2026-12-06, one ERR naming every OBX of a conflict, each) is read by no client.
          const ack = await client
            .send(text.replace(/\|[LQ]\|P\|2\.6\r/, `|L${n++}|P|2.6\r`))
            .catch((err: Error) => `no ACK (${err.message})`);
          codes.add(readAck(ack)?.code ?? ack);
          sent++;
        }
      })();
      const l = await probe(6_000);
      sending = false;
      await sender;
      client.close();
      say(name, l, `; ${sent} frames answered ${[...codes].join('/')}`);
    }
  } finally {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  console.log('\n== one HL7 v2 message: what reading it costs (translatePcd01), this process ==');
  inProcess();
  console.log('\n== crs serve --mllp-port: /healthz every 20 ms while one MLLP sender writes each message in turn ==');
  await underLoad();
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
