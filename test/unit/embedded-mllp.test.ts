// The MLLP listener of the embedded server: frames sent together are answered one by one, in order, each after the
// commit; refusals get AE/AR; a taken port fails the start cleanly (the data directory can be opened again).
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { msg } from '#test/support/messages.ts';

const dirs: string[] = [];
const servers: EmbeddedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(mllpPort = 0): Promise<EmbeddedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'crs-mllp-'));
  dirs.push(dir);
  const s = await startEmbeddedServer({
    dataDir: dir,
    config: DEFAULT_CONFIG,
    port: 0,
    mllpPort,
    pageStream: new PassThrough(),
    log: () => undefined,
  });
  servers.push(s);
  return s;
}

describe('crs serve --mllp-port', () => {
  it('answers frames sent in one write one by one, in order, and commits what it ACKs', async () => {
    const s = await start();
    const good = (n: number) => toPcd01(msg('P-7', n, { vitals: { temperatureC: 38 + n / 10 } }, `M-${n}`))!;
    const wire = Buffer.concat([
      frame(good(1)),
      frame(good(2).replace('268192^MDC_DIM_DEGC^MDC', '')),
      frame('garbage'),
      frame(good(3)),
    ]);
    const socket = connect(s.mllpPort!, '127.0.0.1');
    const decoder = new MllpDecoder();
    const acks: string[] = [];
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk) => {
        for (const e of decoder.push(chunk)) if (e.type === 'frame') acks.push(e.text);
        if (acks.length === 4) resolve();
      });
      socket.write(wire);
    });
    socket.end();
    expect(acks.map((a) => [readAck(a)?.code, readAck(a)?.controlId])).toEqual([
      ['AA', 'M-1'],
      ['AE', 'M-2'],
      ['AR', ''],
      ['AA', 'M-3'],
    ]);
    // M-1 and M-3 were committed before their AA (still in the inbox, or already graded); M-2 had nothing left.
    const inbox = (s.db.prepare('SELECT count(*) AS n FROM inbox').get() as { n: number }).n;
    expect(inbox + s.worker.stats.applied).toBe(2);
  });

  it('answers a sender that does not wait for its ACKs, all of them in order (reading pauses past a backlog)', async () => {
    const s = await start();
    const n = 300;
    const wire = Buffer.concat(
      Array.from({ length: n }, (_, i) =>
        frame(toPcd01(msg('P-8', i, { vitals: { heartRate: 60 + (i % 50) } }, `B-${i}`))!),
      ),
    );
    const socket = connect(s.mllpPort!, '127.0.0.1');
    const decoder = new MllpDecoder();
    const ids: string[] = [];
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk) => {
        for (const e of decoder.push(chunk))
          if (e.type === 'frame') ids.push(`${readAck(e.text)?.code} ${readAck(e.text)?.controlId}`);
        if (ids.length === n) resolve();
      });
      socket.write(wire);
    });
    socket.end();
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `AA B-${i}`));
  });

  it('fails to start on a taken port and leaves the data directory usable', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'crs-mllp-'));
    dirs.push(dir);
    const options = {
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      pageStream: new PassThrough(),
      log: () => undefined,
    };
    await expect(startEmbeddedServer({ ...options, mllpPort: port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise<void>((r) => blocker.close(() => r()));
    const again = await startEmbeddedServer(options);
    servers.push(again);
    expect(again.mllpPort).toBeUndefined();
  });
});
