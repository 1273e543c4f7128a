// MLLP inside TLS with client certificates (--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca), real sockets and real
// certificates (openssl): a device with a certificate the CA signed is taken as the device its CN names, with that
// device's token scope; no certificate, another CA's, or plain MLLP is refused at the handshake, logged by address,
// nothing taken. Until 2026-12-07 both MLLP listeners authenticated nobody.
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { issueToken, openMllpWarning, TOKEN_REVOKED } from '#app/auth.ts';
import { readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { escapeHl7 } from '#app/hl7v2/er7.ts';
import { frame } from '#app/hl7v2/mllp.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { startEmbeddedServer, type EmbeddedOptions, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { startBridge, type Bridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { readMllpTls } from '#hosts/mllp-tls.ts';
import { makeTestPki, type CertFiles } from '#test/support/mllp-certs.ts';
import { msg, T0 } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const pki = makeTestPki();
const NOW = T0 + 60 * 60_000;
const dirs: string[] = [pki.dir];
const servers: { close(): Promise<void> }[] = [];
const clients: MllpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'crs-mllp-tls-data-'));
  dirs.push(d);
  return d;
};

async function serve(options: Partial<EmbeddedOptions> = {}): Promise<{ s: EmbeddedServer; logs: string[] }> {
  const logs: string[] = [];
  const s = await startEmbeddedServer({
    dataDir: tempDir(),
    config: DEFAULT_CONFIG,
    port: 0,
    mllpPort: 0,
    mllpTls: pki.read(pki.listener),
    pageStream: new PassThrough(),
    now: () => NOW,
    log: (line) => logs.push(line),
    ...options,
  });
  servers.push(s);
  return { s, logs };
}

const oru = (p: string, ward: string, n = 1) =>
  toPcd01({ ...msg(p, n, { vitals: { temperatureC: 39.2 } }), enrolment: { ward, bed: '1' } } as DeviceMessage)!;

/** A device (its certificate, or none) sending over TLS, trusting the hospital CA for the listener. */
function device(port: number, files: CertFiles | undefined): MllpClient {
  const tls = files ? pki.read(files) : { ...pki.read(pki.listener), cert: undefined, key: undefined };
  const c = new MllpClient('127.0.0.1', port, 10_000, undefined, tls as never);
  clients.push(c);
  return c;
}

const inbox = (s: EmbeddedServer) =>
  (s.db.prepare('SELECT count(*) AS n FROM inbox').get() as { n: number }).n +
  (s.db.prepare('SELECT count(*) AS n FROM timeline').get() as { n: number }).n;

describe('crs serve --mllp-port with --mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca', () => {
  it('takes an ORU from a device whose certificate the CA signed, as the device its CN names (its token scope), and grades it', async () => {
    const { s } = await serve();
    const { record } = issueToken('gw-h4', new Date(NOW - 60_000), { kind: 'monitor', wards: ['H4'] });
    await s.tokens.put(record);
    const gw = device(s.mllpPort!, pki.device('gw-h4'));
    expect(readAck(await gw.send(oru('P-TLS-1', 'H4')))?.code).toBe('AA');
    const graded = await until(
      () => s.db.prepare('SELECT crs FROM timeline WHERE patient_id = ?').get('P-TLS-1') as { crs: number } | undefined,
      'the ORU graded',
    );
    expect(graded.crs).toBeGreaterThanOrEqual(1); // 39.2 degrees: a fever, CRS grade 1
    const entries = s.db.prepare("SELECT entry FROM audit WHERE patient_id = 'P-TLS-1'").all() as { entry: string }[];
    expect(entries.map((e) => e.entry).join('\n')).toContain('"sender":"gw-h4"');
    // Its scope, not a monitor's for every patient: a patient outside its wards is refused.
    expect(await gw.send(oru('P-TLS-2', 'ICU'))).toMatch(/MSA\|AR[\s\S]*outside this token's wards \(H4\)/);
    // Revoked: refused at once, as --mllp-device is.
    await s.tokens.revoke(record.tokenId, new Date(NOW).toISOString());
    expect(await gw.send(oru('P-TLS-1', 'H4', 2))).toContain(escapeHl7(TOKEN_REVOKED()));
  });

  it('refuses a device with no token of its own (its CN) as revoked, and closes a certificate that names no device', async () => {
    const { s, logs } = await serve();
    expect(await device(s.mllpPort!, pki.device('gw-none')).send(oru('P-X', 'H4'))).toContain(
      escapeHl7(TOKEN_REVOKED()),
    );
    await expect(device(s.mllpPort!, pki.device(undefined)).send(oru('P-X', 'H4'))).rejects.toThrow();
    expect(logs).toContain('mllp: mllp:127.0.0.1: its client certificate names no device (no subject CN): closed');
    expect(inbox(s)).toBe(0);
  });

  it('refuses at the handshake a device without a certificate, one of another CA, and plain MLLP: logged by address, nothing taken', async () => {
    const { s, logs } = await serve({ mllpDevice: undefined });
    await s.tokens.put(issueToken('gw-h4', new Date(NOW - 60_000), { kind: 'monitor' }).record);
    await expect(device(s.mllpPort!, undefined).send(oru('P-1', 'H4'))).rejects.toThrow();
    await expect(device(s.mllpPort!, pki.stranger('gw-h4')).send(oru('P-2', 'H4'))).rejects.toThrow();
    const plain = await plainSend(s.mllpPort!, oru('P-3', 'H4'));
    expect(plain).toEqual({ answered: '' }); // closed: no ACK, nothing taken
    await until(
      () => logs.filter((l) => l.includes('TLS handshake refused')).length >= 3,
      () => logs.join('\n'),
    );
    for (const l of logs.filter((x) => x.includes('TLS handshake refused')))
      expect(l).toMatch(
        /^mllp: TLS handshake refused from 127\.0\.0\.1 \([A-Z0-9_]+\): a client certificate signed by --mllp-tls-ca is required$/,
      );
    expect(logs.join('\n')).not.toMatch(/P-[123]|MSH/);
    expect(inbox(s)).toBe(0);
  });

  it('refuses --mllp-device with TLS (the certificate names the device), and does not warn of an open listener', async () => {
    await expect(serve({ mllpDevice: 'gw-h4' })).rejects.toThrow(/^--mllp-device is for a plain MLLP listener/);
    expect(openMllpWarning('0.0.0.0', undefined, true)).toBeUndefined();
    expect(openMllpWarning('0.0.0.0', undefined)).toMatch(/--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca/);
  });
});

describe('the --mllp-tls-* options', () => {
  it('are all three or none, naming those missing, and name a file that cannot be read', () => {
    expect(readMllpTls({})).toBeUndefined();
    expect(() => readMllpTls({ 'mllp-tls-cert': pki.listener.cert })).toThrow(
      'MLLP over TLS takes --mllp-tls-cert, --mllp-tls-key and --mllp-tls-ca together: give --mllp-tls-key FILE and --mllp-tls-ca FILE too',
    );
    const missing = join(pki.dir, 'nowhere.pem');
    expect(() =>
      readMllpTls({ 'mllp-tls-cert': pki.listener.cert, 'mllp-tls-key': pki.listener.key, 'mllp-tls-ca': missing }),
    ).toThrow(`cannot read --mllp-tls-ca ${missing}: ENOENT`);
    const notPem = join(pki.dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    expect(() =>
      readMllpTls({ 'mllp-tls-cert': notPem, 'mllp-tls-key': pki.listener.key, 'mllp-tls-ca': pki.ca }),
    ).toThrow(`cannot read --mllp-tls-cert ${notPem}: not PEM`);
  });
});

describe('crs mllp-bridge with --mllp-tls-*', () => {
  async function bridge(): Promise<{ b: Bridge; logs: string[] }> {
    const logs: string[] = [];
    const b = await startBridge({
      listenPort: 0,
      listenHost: '127.0.0.1',
      url: 'http://127.0.0.1:1/v1/hl7v2', // the link down: a message taken is held in the spool
      token: 'x'.repeat(40),
      spoolDir: tempDir(),
      ackWaitMs: 0,
      log: (line) => logs.push(line),
      tls: pki.read(pki.listener),
    });
    servers.push(b);
    return { b, logs };
  }

  it('spools an ORU from a device with a certificate the CA signed; refuses none, another CA and plain MLLP at the handshake', async () => {
    const { b, logs } = await bridge();
    expect(readAck(await device(b.port, pki.device('gw-1')).send(oru('P-B1', 'H4')))?.code).toBe('AA');
    expect(b.spool.counts().waiting).toBe(1);
    await expect(device(b.port, undefined).send(oru('P-B2', 'H4'))).rejects.toThrow();
    await expect(device(b.port, pki.stranger('gw-1')).send(oru('P-B3', 'H4'))).rejects.toThrow();
    expect(await plainSend(b.port, oru('P-B4', 'H4'))).toEqual({ answered: '' });
    await until(
      () => logs.filter((l) => l.includes('TLS handshake refused')).length >= 3,
      () => logs.join('\n'),
    );
    expect(logs.filter((l) => l.includes('TLS handshake refused'))[0]).toMatch(
      /^mllp-bridge: TLS handshake refused from 127\.0\.0\.1 \(/,
    );
    expect(b.spool.counts().waiting).toBe(1);
  });
});

/** Plain MLLP to the port: what came back before the connection closed. */
function plainSend(port: number, text: string): Promise<{ answered: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answered = '';
    socket.on('data', (c: Buffer) => {
      answered += c.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ answered: answered.includes('MSA') ? answered : '' }));
    socket.write(frame(text));
  });
}
