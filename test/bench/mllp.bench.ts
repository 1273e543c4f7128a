// `crs serve --mllp-port` figures on this machine, the server as its own process: HL7 v2 (IHE PCD-01) messages/s
// over MLLP with each ACK sent only after the inbox commit (synchronous=FULL), as monitor gateways send them (one
// message in flight per connection): 100 bedside connections, then a single gateway connection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { health, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { syntheticFeed } from './generate.ts';

const PATIENTS = 100;
const MESSAGES = 20_000;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** PCD-01 texts per patient (the feed's vitals), ids and patients unique per run. */
function feed(tag: string, count: number): Map<string, string[]> {
  const start = Date.now() - 2 * 24 * 3_600_000;
  const byPatient = new Map<string, string[]>();
  let i = 0;
  for (const m of syntheticFeed(count * 2, PATIENTS)) {
    if (!m.vitals || i >= count) continue;
    const patientId = `${tag}-${m.patientId}`;
    const text = toPcd01({
      ...m,
      patientId,
      messageId: `${tag}-${m.messageId}`,
      observedAt: new Date(start + i++ * 600).toISOString(),
    })!;
    byPatient.set(patientId, [...(byPatient.get(patientId) ?? []), text]);
  }
  return byPatient;
}

async function measure(
  s: ServeProcess,
  port: number,
  label: string,
  connections: number,
  count: number,
  tag: string,
  note = '(target >= 1,000)',
): Promise<void> {
  const byPatient = feed(tag, count);
  const lanes: string[][] = Array.from({ length: connections }, () => []);
  [...byPatient.values()].forEach((list, i) => lanes[i % connections]!.push(...list));
  // Each bedside monitor from an address of its own (127.0.0.2, 127.0.0.3, ...: Linux answers the whole 127/8), as
  // on a ward: the listener takes at most 64 connections from one address (docs/security.md), so 100 from 127.0.0.1
  // were cut off (ECONNRESET) from 2026-12-01 until 2026-12-06.
  const clients = lanes.map(
    (_, i) => new MllpClient('127.0.0.1', port, undefined, connections > 1 ? `127.0.0.${2 + i}` : undefined),
  );
  const before = (await health(s)).graded;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    lanes.map(async (lane, i) => {
      for (const text of lane) {
        const code = readAck(await clients[i]!.send(text))?.code;
        if (code !== 'AA') throw new Error(`ACK ${code}`);
      }
    }),
  );
  const acked = Number(process.hrtime.bigint() - t0) / 1e9;
  while ((await health(s)).graded < before + count) await new Promise((r) => setTimeout(r, 5));
  const graded = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const c of clients) c.close();
  console.log(
    `${label}: ${fmt(count / acked)} messages/s MLLP -> AA after the commit (${fmt(count)} messages, ${connections} connection(s); ` +
      `all graded after ${graded.toFixed(2)} s, ${fmt(count / graded)}/s) ${note}`,
  );
}

export async function run(): Promise<void> {
  console.log(
    `\n== crs serve --mllp-port: HL7 v2 PCD-01 over MLLP, each ACK after the inbox commit (synchronous=FULL), ${PATIENTS} patients ==`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'crs-mllp-bench-'));
  const server = await spawnServe(dir, ['--mllp-port', '0']);
  const port = Number(server.stderr().match(/MLLP on [\d.]+:(\d+)/)?.[1]);
  try {
    await measure(server, port, 'warm-up', PATIENTS, 2_000, 'warm');
    await measure(server, port, 'bedside connections', PATIENTS, MESSAGES, 'beds');
    await measure(
      server,
      port,
      'one gateway connection',
      1,
      2_000,
      'gw',
      '(one message in flight, so one commit and fsync per message)',
    );
  } finally {
    await stop(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
