// `crs mllp-bridge` (the real command) with the link down, killed and restarted: every message ACKed to the monitor
// reaches the server when the link is back, and is graded as `crs replay --format hl7v2` grades the same messages.
// With the link up, the monitor gets the server's own ACK (an AE names the problem).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAck } from '#app/hl7v2/ack.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { makeTestPki } from '#test/support/mllp-certs.ts';
import { until } from '#test/support/until.ts';
import { asInterfaces, vignettes } from '#test/support/interfaces.ts';
import { CRS_BIN, INGEST_TOKEN, REPO, idle, pageEvents, spawnServe, stop } from './embedded-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${INGEST_TOKEN}\n`, { mode: 0o600 });
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A link that is down: nothing listens on port 1 (below the range ports are handed out from, and privileged). Until
 * 2026-12-06 a port found free (listen on 0, closed) stood for it, and the server was started on that port later: any
 * process of the run could bind it meanwhile (a moto, a server, a bridge on port 0), and the link was not down.
 */
const LINK_DOWN = 'http://127.0.0.1:1';

/** `ackWait`: how long the bridge waits for the server's ACK before answering its own (held) AA. */
async function spawnBridge(
  to: string,
  spool: string,
  ackWait = 300,
  extra: string[] = [],
): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [
      CRS_BIN,
      'mllp-bridge',
      '--listen',
      '0',
      '--to',
      to,
      '--token-file',
      tokenFile,
      '--spool',
      spool,
      '--ack-wait',
      String(ackWait),
      ...extra,
    ],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  let err = '';
  child.stderr!.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bridge did not start:\n${err}`)), 20_000);
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const m = err.match(/MLLP on [\d.]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return { child, port, stderr: () => err };
}

const exited = (c: ChildProcess) =>
  new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

describe('crs mllp-bridge', () => {
  it('never loses a message it ACKed: link down, bridge killed and restarted, then delivered and graded', async () => {
    const items = vignettes
      .filter((v) => v.scheme === 'astct2019')
      .flatMap(asInterfaces)
      .flatMap((i) => (i.format === 'hl7v2' ? [i.text] : []));
    const spool = join(dir, 'spool');

    // The link is down (nothing listens there): each message is spooled and ACKed AA from the spool. No server can
    // answer, so the bridge waits 10 ms for one, not 300 (30 messages: 9 s of the file's 12 were this wait).
    const first = await spawnBridge(LINK_DOWN, spool, 10);
    const monitor = new MllpClient('127.0.0.1', first.port);
    for (const text of items) {
      const ack = readAck(await monitor.send(text));
      expect(ack).toMatchObject({ code: 'AA', text: 'held by the bridge: delivered when the link is back' });
    }
    monitor.close();
    first.child.kill('SIGKILL'); // no clean shutdown
    await exited(first.child);

    // The server comes up (on a port it bound itself), the bridge restarts on the same spool, its link to the server
    // up, and delivers everything.
    const server = await spawnServe(join(dir, 'serve'));
    const second = await spawnBridge(server.url, spool);
    try {
      expect(second.stderr()).toContain(`${items.length} message(s) in the spool from before`);
      // Each HL7 item is one observation time, so one contract message: wait until the server has graded them all.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const h = (await (
          await fetch(`${server.url}/api/health`, { headers: { authorization: `Bearer ${server.boardKey}` } })
        ).json()) as { graded: number; duplicates: number };
        if (h.graded + h.duplicates >= items.length) break;
        if (Date.now() > deadline) throw new Error(`only ${h.graded + h.duplicates} of ${items.length} delivered`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await idle(server);
    } finally {
      second.child.kill('SIGTERM');
      await exited(second.child);
      expect(await stop(server)).toBe(0);
    }
    const file = join(dir, 'all.hl7');
    writeFileSync(file, items.join('\n\n').replace(/\r/g, '\n'));
    const replayed = pageEvents(
      execFileSync(process.execPath, [CRS_BIN, 'replay', file, '--format', 'hl7v2'], {
        cwd: REPO,
        encoding: 'utf8',
      }).split('\n'),
    );
    const strip = (es: ReturnType<typeof pageEvents>) =>
      es.filter((e) => e.type === 'notification').map(({ notificationId: _n, ...rest }) => rest);
    expect(strip(pageEvents(server.lines))).toEqual(strip(replayed));
    expect(strip(replayed).length).toBeGreaterThan(0);
  }, 120_000);

  it('relays the server’s own ACK while the link is up (AA, and AE naming the problem)', async () => {
    const server = await spawnServe(join(dir, 'serve-up'));
    // The link is up: the server's ACK is relayed when it comes, so the wait is the product's default (10 s), not
    // the 300 ms the link-down test shortens it to (a busy machine answered the first message later than that).
    const bridge = await spawnBridge(server.url, join(dir, 'spool-up'), 10_000);
    const monitor = new MllpClient('127.0.0.1', bridge.port);
    try {
      const text = asInterfaces(vignettes[0]!).find((i) => i.format === 'hl7v2')!;
      if (text.format !== 'hl7v2') throw new Error('no HL7 item');
      expect(readAck(await monitor.send(text.text))).toMatchObject({ code: 'AA', text: 'accepted 1 message(s)' });
      const ack = await monitor.send(
        text.text.replace('268192^MDC_DIM_DEGC^MDC', '').replace(/\|P01-002\|P\|/, '|P01-XYZ|P|'),
      );
      expect(readAck(ack)?.code).toBe('AE');
      expect(ack).toMatch(/OBX-6 no unit: a vitals.temperatureC value needs one/);
      expect(readAck(await monitor.send('MSH|^~\\&|X'))?.code).toBe('AR');
    } finally {
      monitor.close();
      bridge.child.kill('SIGTERM');
      await exited(bridge.child);
      expect(await stop(server)).toBe(0);
    }
  }, 60_000);

  // Until 2026-12-07 the bridge took MLLP from anyone who reached its port, and sent it on with its device token.
  it('takes MLLP inside TLS from a gateway with a certificate of --mllp-tls-ca, and refuses one without at the handshake', async () => {
    const pki = makeTestPki();
    const server = await spawnServe(join(dir, 'serve-tls'));
    const tls = ['--mllp-tls-cert', pki.listener.cert, '--mllp-tls-key', pki.listener.key, '--mllp-tls-ca', pki.ca];
    const bridge = await spawnBridge(server.url, join(dir, 'spool-tls'), 10_000, tls);
    const gateway = new MllpClient('127.0.0.1', bridge.port, 10_000, undefined, pki.read(pki.device('gw-1')));
    const { cert: _c, key: _k, ...anonymous } = pki.read(pki.listener);
    const nobody = new MllpClient('127.0.0.1', bridge.port, 10_000, undefined, anonymous as never);
    try {
      expect(bridge.stderr()).toMatch(/MLLP on 127\.0\.0\.1:\d+ inside TLS \(client certificates of --mllp-tls-ca\)/);
      const text = asInterfaces(vignettes[0]!).find((i) => i.format === 'hl7v2')!;
      if (text.format !== 'hl7v2') throw new Error('no HL7 item');
      expect(readAck(await gateway.send(text.text))).toMatchObject({ code: 'AA', text: 'accepted 1 message(s)' });
      await expect(nobody.send(text.text)).rejects.toThrow();
      await until(() => bridge.stderr().includes('mllp-bridge: TLS handshake refused from 127.0.0.1'), bridge.stderr);
    } finally {
      gateway.close();
      nobody.close();
      bridge.child.kill('SIGTERM');
      await exited(bridge.child);
      expect(await stop(server)).toBe(0);
      rmSync(pki.dir, { recursive: true, force: true });
    }
  }, 60_000);

  // Two bridges on one spool each forwarded the same messages (nothing locked it): every message twice to the
  // server, and each removed the other's. The second is refused, as crs serve refuses a data directory in use.
  it('refuses a second bridge on a spool directory a running bridge holds; a killed one leaves no lock behind', async () => {
    const spool = join(dir, 'spool-shared');
    const down = LINK_DOWN;
    const first = await spawnBridge(down, spool);
    // (Bounded: a bridge that is not refused runs until it is killed.)
    const second = spawnSync(
      process.execPath,
      [CRS_BIN, 'mllp-bridge', '--listen', '0', '--to', down, '--token-file', tokenFile, '--spool', spool],
      { cwd: REPO, encoding: 'utf8', timeout: 20_000 },
    );
    expect(second.status).toBe(1);
    expect(second.stderr).toBe(
      `crs mllp-bridge: another crs mllp-bridge is using the spool directory ${spool}: give each bridge its own --spool DIR\n`,
    );
    first.child.kill('SIGKILL');
    await exited(first.child);
    const third = await spawnBridge(down, spool); // it listens: the kernel let the killed one's lock go
    expect(third.stderr()).not.toContain('another crs mllp-bridge');
    third.child.kill('SIGTERM');
    await exited(third.child);
  }, 60_000);
});
