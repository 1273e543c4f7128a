// crs mllp-bridge against a server that answers with a redirect: never followed. fetch would send the POST on to
// the new address as a GET without its body (301, 302, 303), and an ACK answered there would take the message out
// of the spool as delivered, though no server ever received it.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { startBridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { msg } from '#test/support/messages.ts';

it('keeps a message in the spool when the server answers with a redirect, and never follows it', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST') {
      res.writeHead(302, { location: '/elsewhere' });
      return void res.end();
    }
    // What a followed redirect would find: an ACK with a status the bridge takes as the server's last word.
    res.writeHead(202, { 'content-type': 'x-application/hl7-v2+er7' });
    res.end('MSH|^~\\&|CRS|CRS|GW|GW|20260110080000||ACK^R01^ACK|A1|P|2.6\rMSA|AA|M-1\r');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-redirect-'));
  const logged: string[] = [];
  const bridge = await startBridge({
    listenPort: 0,
    listenHost: '127.0.0.1',
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hl7v2`,
    token: 'tok',
    spoolDir: dir,
    ackWaitMs: 30,
    log: (line) => logged.push(line),
  });
  const monitor = new MllpClient('127.0.0.1', bridge.port);
  try {
    const ack = await monitor.send(toPcd01(msg('P-1', 0, { vitals: { heartRate: 90 } }, 'M-1'))!);
    expect(readAck(ack)?.code).toBe('AA');
    expect(ack).toContain('held by the bridge');
    await vi.waitFor(() =>
      expect(logged.join('\n')).toMatch(/the server answered 302; message \d+ stays in the spool/),
    );
    expect(seen).not.toContain('GET /elsewhere');
    expect(bridge.spool.counts().waiting).toBe(1);
  } finally {
    monitor.close();
    await bridge.close();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
