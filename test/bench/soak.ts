// `npx tsx test/bench/soak.ts`: what `crs serve` (its own process) holds over a long life of churn, sampled after each
// round: its resident memory, its JavaScript heap after a full collection, and its open file descriptors. Each round
// is what a ward and an attacker do at once: requests with a new bad device token each, forged acknowledge links,
// paths that do not exist, the board's polling, SSE connections opened and dropped, MLLP connections dropped in the
// middle of a frame, and devices sending for patients never seen before. Then the board's live events to readers
// that stop reading (a laptop whose lid closed on the board: its TCP connection stays open). Figures, not assertions:
// the rounds should level off (docs/testing.md, "Benchmarks"). SOAK_ROUNDS, SOAK_PATIENTS change the run.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceMessage } from '#domain/contract.ts';
import { INGEST_TOKEN, health, post, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 14);
/** New patients each round (each sends an enrolment and a reading). */
const PATIENTS = Number(process.env.SOAK_PATIENTS ?? 250);
const BAD_TOKENS = 400;
const FORGED_LINKS = 200;
const STRAY_PATHS = 200;
const SSE_DROPS = 60;
const MLLP_DROPS = 60;
const POLLS = 40;

// A test-only debug path, loaded into the server with --import: on SIGUSR2 it collects garbage and writes
// process.memoryUsage() to a file. Nothing of it is in the product.
const PROBE = `
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
process.on('SIGUSR2', () => {
  gc(); gc();
  writeFileSync(process.env.SOAK_PROBE_OUT, JSON.stringify(process.memoryUsage()));
});
`;

interface Sample {
  label: string;
  rssMiB: number;
  heapMiB: number;
  /** The heap V8 has committed (resident, used or not). */
  heapTotalMiB: number;
  /** Memory outside the JavaScript heap that V8 knows of (Buffers). */
  externalMiB: number;
  fds: number;
}

const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;

async function sample(s: ServeProcess, out: string, label: string): Promise<Sample> {
  const pid = s.child.pid!;
  rmSync(out, { force: true });
  s.child.kill('SIGUSR2');
  let usage: NodeJS.MemoryUsage | undefined;
  for (let i = 0; i < 500 && !usage; i++) {
    try {
      usage = JSON.parse(readFileSync(out, 'utf8')) as NodeJS.MemoryUsage;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(status.match(/VmRSS:\s+(\d+)/)?.[1]);
  return {
    label,
    rssMiB: mib(rssKb * 1024),
    heapMiB: mib(usage?.heapUsed ?? Number.NaN),
    heapTotalMiB: mib(usage?.heapTotal ?? Number.NaN),
    externalMiB: mib(usage?.external ?? Number.NaN),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

const show = (x: Sample) =>
  console.log(
    `${x.label.padEnd(34)} RSS ${String(x.rssMiB).padStart(6)} MiB  heap ${String(x.heapMiB).padStart(6)} MiB (of ${String(x.heapTotalMiB).padStart(5)})  external ${String(x.externalMiB).padStart(5)} MiB  fds ${x.fds}`,
  );

function messagesFor(round: number, start: number): DeviceMessage[] {
  const out: DeviceMessage[] = [];
  for (let p = 0; p < PATIENTS; p++) {
    const patientId = `SOAK-${round}-${p}`;
    const source = { deviceId: `mon-${round}-${p}`, kind: 'monitor' as const };
    const t = start + p * 10;
    out.push({
      messageId: `${patientId}-e`,
      patientId,
      observedAt: new Date(t).toISOString(),
      source,
      enrolment: {
        therapy: 'car-t',
        product: 'axi-cel',
        infusedAt: new Date(t - 86_400_000).toISOString(),
        weightKg: 70,
        bed: `B${p}`,
        ward: `W${round % 4}`,
      },
    });
    out.push({
      messageId: `${patientId}-v`,
      patientId,
      observedAt: new Date(t + 1000).toISOString(),
      source,
      vitals: { temperatureC: 38.4, heartRate: 100, systolicBP: 110, meanArterialPressure: 80, spo2: 97 },
    });
  }
  return out;
}

/** Opens an HTTP request on a raw socket and drops it once `until` is seen (or at once). */
function rawRequest(port: number, text: string, until?: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(text);
      if (!until) {
        s.destroy();
        resolve();
      }
    });
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (until && got.includes(until)) {
        s.destroy();
        resolve();
      }
    });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

async function round(s: ServeProcess, port: number, mllpPort: number, r: number): Promise<void> {
  const auth = { authorization: `Bearer ${s.boardKey}` };
  const work: (() => Promise<unknown>)[] = [];
  // Devices: new patients.
  const messages = messagesFor(r, Date.now() - 3_600_000);
  for (let i = 0; i < messages.length; i += 100) work.push(() => post(s.url, messages.slice(i, i + 100), INGEST_TOKEN));
  // A new bad token on every request.
  for (let i = 0; i < BAD_TOKENS; i++)
    work.push(() =>
      post(s.url, messages[0]!, `bad-${randomBytes(16).toString('hex')}`).then((res) => res.arrayBuffer()),
    );
  // Forged acknowledge links, paths that do not exist.
  for (let i = 0; i < FORGED_LINKS; i++)
    work.push(() => fetch(`${s.url}/ack/${randomBytes(24).toString('base64url')}`).then((res) => res.arrayBuffer()));
  for (let i = 0; i < STRAY_PATHS; i++)
    work.push(() => fetch(`${s.url}/nowhere/${randomBytes(8).toString('hex')}`).then((res) => res.arrayBuffer()));
  // The board polling.
  for (let i = 0; i < POLLS; i++)
    for (const path of ['/api/patients', '/api/health', '/api/outbox', '/api/silences', `/api/patients/SOAK-${r}-${i}`])
      work.push(() => fetch(`${s.url}${path}`, { headers: auth }).then((res) => res.arrayBuffer()));
  // In a shuffled order, 16 at a time (one address may hold 64 connections).
  work.sort(() => Math.random() - 0.5);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let next = work.pop(); next; next = work.pop()) await next();
    }),
  );
  // SSE connections opened and dropped (each once its stream began).
  for (let i = 0; i < SSE_DROPS; i += 10)
    await Promise.all(
      Array.from({ length: 10 }, () =>
        rawRequest(
          port,
          `GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.boardKey}\r\n\r\n`,
          'retry:',
        ),
      ),
    );
  // MLLP connections dropped in the middle of a frame.
  for (let i = 0; i < MLLP_DROPS; i += 10)
    await Promise.all(
      Array.from({ length: 10 }, () =>
        rawRequest(mllpPort, `\x0bMSH|^~\\&|GW|WARD|CRS|H|20261205||ORU^R01|${r}-${i}|P|2.6\r`),
      ),
    );
  const end = Date.now() + 60_000;
  while ((await health(s)).inbox > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

/** Board readers that stop reading: connected, their stream begun, then never read again. */
function stalledReaders(port: number, boardKey: string, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect(port, '127.0.0.1', () =>
            s.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${boardKey}\r\n\r\n`),
          );
          s.once('data', () => {
            s.pause();
            resolve(s);
          });
          s.on('error', () => undefined);
        }),
    ),
  );
}

export async function run(): Promise<void> {
  console.log(
    `\n== crs serve soak: ${ROUNDS} rounds of churn (${PATIENTS} new patients each), then stalled board readers ==`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'crs-soak-'));
  const probe = join(dir, 'probe.mjs');
  const out = join(dir, 'usage.json');
  writeFileSync(probe, PROBE);
  const data = join(dir, 'data');
  const s = await spawnServe(data, ['--mllp-port', '0', '--max-patients', String(ROUNDS * PATIENTS + 1000)], {
    NODE_OPTIONS: `--import ${probe}`,
    SOAK_PROBE_OUT: out,
  });
  const port = Number(new URL(s.url).port);
  const mllpPort = Number(s.stderr().match(/MLLP on [\d.]+:(\d+)/)?.[1]);
  try {
    const samples: Sample[] = [await sample(s, out, 'started')];
    show(samples[0]!);
    for (let r = 0; r < ROUNDS; r++) {
      await round(s, port, mllpPort, r);
      samples.push(await sample(s, out, `round ${r + 1} (${(r + 1) * PATIENTS} patients)`));
      show(samples.at(-1)!);
    }
    // The server keeps the latest 2,000 patients' states parsed (StateCache): from there on, nothing should grow.
    const full = samples[Math.min(samples.length - 1, Math.ceil(2000 / PATIENTS))]!;
    const last = samples.at(-1)!;
    const diff = (a: number, b: number) => `${b - a >= 0 ? '+' : ''}${Math.round((b - a) * 10) / 10}`;
    console.log(
      `from "${full.label}" to the last round: heap ${diff(full.heapMiB, last.heapMiB)} MiB, RSS ${diff(full.rssMiB, last.rssMiB)} MiB, fds ${diff(full.fds, last.fds)}`,
    );
    // Stalled board readers while devices send: what the server holds for them.
    const readers = await stalledReaders(port, s.boardKey, 20);
    show(await sample(s, out, '20 stalled board readers'));
    // Readings of patients the server has (the last round's): what grows now is what the readers are sent.
    for (let k = 0; k < 4; k++) {
      for (let n = 0; n < 8; n++)
        for (let p = 0; p < PATIENTS; p++) {
          const patientId = `SOAK-${ROUNDS - 1}-${p}`;
          const res = await post(s.url, {
            messageId: `${patientId}-s${k}-${n}`,
            patientId,
            observedAt: new Date(Date.now() - 3_000_000 + (k * 8 + n) * 60_000 + p).toISOString(),
            source: { deviceId: `mon-${ROUNDS - 1}-${p}`, kind: 'monitor' },
            vitals: { temperatureC: 37, heartRate: 80 + n, systolicBP: 120, meanArterialPressure: 85, spo2: 98 },
          });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`a device's message answered ${res.status}`);
        }
      show(await sample(s, out, `  + ${8 * PATIENTS} single posts`));
    }
    for (const r of readers) r.destroy();
    await new Promise((r) => setTimeout(r, 500));
    show(await sample(s, out, 'stalled readers gone'));
  } finally {
    await stop(s);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
