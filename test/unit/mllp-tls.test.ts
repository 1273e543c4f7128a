// MLLP inside TLS with client certificates (--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca), real sockets and real
// certificates (openssl): a device with a certificate the CA signed is taken as the device its CN names, with that
// device's token scope; no certificate, another CA's, or plain MLLP is refused at the handshake, logged by address,
// nothing taken. Until 2026-12-07 both MLLP listeners authenticated nobody.
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { issueToken, openMllpWarning, TOKEN_REVOKED } from '#app/auth.ts';
import { HL7_CONTENT_TYPE, readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { escapeHl7 } from '#app/hl7v2/er7.ts';
import { frame } from '#app/hl7v2/mllp.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { startEmbeddedServer, type EmbeddedOptions, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { startBridge, type Bridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { certificateDevice, readMllpTls, type MllpTls } from '#hosts/mllp-tls.ts';
import { mllpBridgeCommand } from '#cli/mllp-bridge.ts';
import { serveCommand } from '#cli/serve.ts';
import { sameAck } from '#test/support/hl7-ack.ts';
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
    expect(logs).toContain('mllp: mllp:127.0.0.1: its client certificate names no device: no subject CN: closed');
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
  async function bridge(tls: MllpTls = pki.read(pki.listener)): Promise<{ b: Bridge; logs: string[] }> {
    const logs: string[] = [];
    const b = await startBridge({
      listenPort: 0,
      listenHost: '127.0.0.1',
      url: 'http://127.0.0.1:1/v1/hl7v2', // the link down: a message taken is held in the spool
      token: 'x'.repeat(40),
      spoolDir: tempDir(),
      ackWaitMs: 0,
      log: (line) => logs.push(line),
      tls,
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

  it('refuses at the handshake a gateway whose certificate --mllp-tls-crl revokes (a stolen one), and takes the others (2026-12-07)', async () => {
    const stolen = pki.device('gw-stolen');
    const { b, logs } = await bridge(pki.read(pki.listener, pki.revoke(stolen)));
    await expect(device(b.port, stolen).send(oru('P-R1', 'H4'))).rejects.toThrow();
    expect(readAck(await device(b.port, pki.device('gw-2')).send(oru('P-R2', 'H4')))?.code).toBe('AA');
    await until(
      () => logs.some((l) => l.startsWith('mllp-bridge: TLS handshake refused from 127.0.0.1 (')),
      () => logs.join('\n'),
    );
    expect(b.spool.counts().waiting).toBe(1);
  });

  it('closes a connection that sends no ClientHello once the handshake limit is past (2026-12-07)', async () => {
    const { b, logs } = await bridge({ ...pki.read(pki.listener), handshakeMs: 200 });
    await silent(b.port);
    await until(
      () => logs.includes('mllp-bridge: TLS handshake from 127.0.0.1 not finished within 0.2 s: closed'),
      () => logs.join('\n'),
    );
  }, 5_000);
});

describe('MLLP over TLS, hardened (2026-12-07)', () => {
  it('crs serve refuses at the handshake a device whose certificate --mllp-tls-crl revokes; the CA other devices still pass', async () => {
    const stolen = pki.device('gw-h4');
    const { s, logs } = await serve({ mllpTls: pki.read(pki.listener, pki.revoke(stolen)) });
    for (const id of ['gw-h4', 'gw-h5'])
      await s.tokens.put(issueToken(id, new Date(NOW - 60_000), { kind: 'monitor' }).record);
    // The certificate revoked, its device's token not: the certificate alone is refused.
    await expect(device(s.mllpPort!, stolen).send(oru('P-R1', 'H4'))).rejects.toThrow();
    expect(readAck(await device(s.mllpPort!, pki.device('gw-h5')).send(oru('P-R2', 'H4')))?.code).toBe('AA');
    await until(
      () => logs.some((l) => /^mllp: TLS handshake refused from 127\.0\.0\.1 \([A-Z0-9_]+\)/.test(l)),
      () => logs.join('\n'),
    );
    for (const table of ['inbox', 'timeline'])
      expect(s.db.prepare(`SELECT count(*) FROM ${table} WHERE patient_id = 'P-R1'`).pluck().get()).toBe(0);
  });

  it('--mllp-tls-crl: with the other three only, PEM of a CRL only; named at start, exit 2 (crs serve and crs mllp-bridge)', async () => {
    const three = { 'mllp-tls-cert': pki.listener.cert, 'mllp-tls-key': pki.listener.key, 'mllp-tls-ca': pki.ca };
    const crl = pki.revoke();
    expect(readMllpTls({ ...three, 'mllp-tls-crl': crl })?.crl).toEqual(pki.read(pki.listener, crl).crl);
    expect(() => readMllpTls({ 'mllp-tls-crl': crl })).toThrow(
      '--mllp-tls-crl is for MLLP over TLS: give --mllp-tls-cert FILE, --mllp-tls-key FILE and --mllp-tls-ca FILE too',
    );
    expect(() => readMllpTls({ ...three, 'mllp-tls-crl': pki.ca })).toThrow(
      `cannot read --mllp-tls-crl ${pki.ca}: not a CRL (no -----BEGIN X509 CRL----- line)`,
    );
    const broken = join(pki.dir, 'broken-crl.pem');
    writeFileSync(broken, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    expect(() => readMllpTls({ ...three, 'mllp-tls-crl': broken })).toThrow(
      `cannot read --mllp-tls-crl ${broken}: not a CRL OpenSSL can read (Failed to parse CRL)`,
    );
    const missing = join(pki.dir, 'no-crl.pem');
    expect(() => readMllpTls({ ...three, 'mllp-tls-crl': missing })).toThrow(
      `cannot read --mllp-tls-crl ${missing}: ENOENT`,
    );
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const flags = ['--mllp-tls-cert', pki.listener.cert, '--mllp-tls-key', pki.listener.key, '--mllp-tls-ca', pki.ca];
      const tokenFile = join(tempDir(), 'token');
      writeFileSync(tokenFile, 'x'.repeat(40));
      const bridgeArgs = ['--listen', '0', '--to', 'http://127.0.0.1:1', '--token-file', tokenFile];
      expect(await mllpBridgeCommand([...bridgeArgs, ...flags, '--mllp-tls-crl', broken])).toBe(2);
      expect(await serveCommand(['--mllp-port', '0', ...flags, '--mllp-tls-crl', pki.ca], undefined as never)).toBe(2);
      const said = stderr.mock.calls.map((c) => String(c[0])).join('');
      expect(said).toContain(`cannot read --mllp-tls-crl ${broken}: not a CRL OpenSSL can read`);
      expect(said).toContain(`cannot read --mllp-tls-crl ${pki.ca}: not a CRL`);
    } finally {
      stderr.mockRestore();
    }
  });

  it('closes a connection that sends no ClientHello once the handshake limit is past, logged by address', async () => {
    const { s, logs } = await serve({ mllpTls: { ...pki.read(pki.listener), handshakeMs: 200 } });
    await silent(s.mllpPort!);
    await until(
      () => logs.includes('mllp: TLS handshake from 127.0.0.1 not finished within 0.2 s: closed'),
      () => logs.join('\n'),
    );
  }, 5_000);

  it('closes a certificate whose CN is no device id (a space, a control character) or that has several CNs: logged quoted, nothing taken', async () => {
    const { s, logs } = await serve();
    for (const id of ['gw-h4', 'admin'])
      await s.tokens.put(issueToken(id, new Date(NOW - 60_000), { kind: 'monitor' }).record);
    const cases = [
      ['/CN=gw h4', 'its client certificate names no device: its subject CN "gw h4" is not a device id'],
      [
        '/CN=gw-h4\x1b[2J\x07',
        'its client certificate names no device: its subject CN "gw-h4\\u001b[2J\\u0007" is not',
      ],
      [
        '/CN=gw-h4/CN=admin',
        'its client certificate names no device: its subject has 2 CNs ("gw-h4", "admin"), not one',
      ],
      [
        '/CN=gw-h4+CN=admin',
        'its client certificate names no device: its subject has 2 CNs ("gw-h4", "admin"), not one',
      ],
    ] as const;
    for (const [subject, said] of cases) {
      await expect(device(s.mllpPort!, pki.subject(subject)).send(oru('P-CN', 'H4')), subject).rejects.toThrow();
      await until(
        () => logs.some((l) => l.startsWith('mllp: mllp:127.0.0.1: ') && l.includes(said) && l.endsWith(': closed')),
        () => `${subject}\n${logs.join('\n')}`,
      );
    }
    expect(logs.join('\n')).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(inbox(s)).toBe(0);
  });

  it('takes one CN of 1-128 printable ASCII characters as the device, as crs token issue --device does; nothing else', () => {
    const cn = (subject: Record<string, unknown> | undefined) =>
      certificateDevice({ getPeerCertificate: () => (subject ? { subject } : {}) } as never);
    expect(cn({ CN: 'gw-h4' })).toEqual({ device: 'gw-h4' });
    expect(cn({ CN: 'a'.repeat(128) })).toEqual({ device: 'a'.repeat(128) });
    expect(cn({ CN: 'a'.repeat(129) })).toEqual({
      refused: `its subject CN "${'a'.repeat(64)}..." is not a device id (1-128 printable ASCII characters, no space)`,
    });
    expect(cn({ CN: '' })).toEqual({
      refused: 'its subject CN "" is not a device id (1-128 printable ASCII characters, no space)',
    });
    expect(cn({ CN: 'gw\u202eh4' })).toEqual({
      refused: 'its subject CN "gw\\u202eh4" is not a device id (1-128 printable ASCII characters, no space)',
    });
    expect(cn({ O: 'Hospital' })).toEqual({ refused: 'no subject CN' });
    expect(cn(undefined)).toEqual({ refused: 'no subject CN' });
    expect(cn({ CN: ['a', 'b', 'c'] })).toEqual({ refused: 'its subject has 3 CNs ("a", "b", "c"), not one' });
    // A plain connection: no certificate, no device.
    expect(certificateDevice({} as never)).toBeUndefined();
  });

  it('a device of kind ehr (an ADT feed) or monitor (ward-scoped) decides over TLS as its token does over POST /v1/hl7v2', async () => {
    const overTls = (await serve()).s;
    const overHttp = (await serve({ mllpTls: undefined, mllpPort: undefined })).s;
    const devices = [
      issueToken('adt-feed', new Date(NOW - 60_000), { kind: 'ehr' }),
      issueToken('gw-h4', new Date(NOW - 60_000), { kind: 'monitor', wards: ['H4'] }),
    ];
    for (const s of [overTls, overHttp]) for (const d of devices) await s.tokens.put(d.record);
    const codes = new Set<string>();
    let n = 0;
    for (const d of devices) {
      const viaTls = device(overTls.mllpPort!, pki.device(d.record.deviceId));
      const messages = [
        adt('A01', 'P-K1', 'H4', ++n),
        oru('P-K1', 'H4', ++n),
        adt('A01', 'P-K2', 'ICU', ++n),
        oru('P-K2', 'ICU', ++n),
        oru('P-K3', 'H4', ++n),
        adt('A03', 'P-K1', 'H4', ++n),
      ].map((m) => m.replace(/\|P\|2\.6/, `-${d.record.deviceId}|P|2.6`));
      for (const m of messages) {
        const fromTls = await viaTls.send(m);
        const r = await fetch(`${overHttp.url}/v1/hl7v2`, {
          method: 'POST',
          headers: { authorization: `Bearer ${d.token}`, 'content-type': HL7_CONTENT_TYPE },
          body: m,
        });
        const fromHttp = await r.text();
        expect(sameAck(fromHttp), `${d.record.deviceId}: ${m.split('\r')[0]}`).toBe(sameAck(fromTls));
        codes.add(`${d.record.deviceId} ${readAck(fromTls)?.code}`);
      }
    }
    const graded = (s: EmbeddedServer) =>
      s.db.prepare('SELECT patient_id, observed_at, crs FROM timeline ORDER BY patient_id, observed_at').all();
    await until(() => inboxEmpty(overTls) && inboxEmpty(overHttp), 'both inboxes graded');
    expect(graded(overTls)).toEqual(graded(overHttp));
    const places = (s: EmbeddedServer) =>
      s.db.prepare('SELECT patient_id, state FROM patients ORDER BY patient_id').all();
    expect(places(overTls)).toEqual(places(overHttp));
    // Not a vacuous agreement: each device had messages taken and messages refused.
    expect([...codes].sort()).toEqual(expect.arrayContaining(['adt-feed AA', 'gw-h4 AA', 'gw-h4 AR']));
  });
});

const inboxEmpty = (s: EmbeddedServer) => s.db.prepare('SELECT count(*) FROM inbox').pluck().get() === 0;

const dtm = (ms: number) => `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
/** An EHR's ADT (A01 admit, A03 discharge) of `patient` in `ward`, `n` minutes after T0. */
const adt = (event: 'A01' | 'A03', patient: string, ward: string, n: number) =>
  [
    `MSH|^~\\&|EPIC|HOSP|CRS|HOSP|${dtm(T0 + n * 60_000)}||ADT^${event}^ADT_${event}|ADT-${patient}-${n}|P|2.6`,
    `EVN|${event}|${dtm(T0 + n * 60_000)}`,
    `PID|||${patient}^^^HOSP^MR`,
    `PV1||I|${ward}^^1${event === 'A03' ? `${'|'.repeat(42)}${dtm(T0 + n * 60_000)}` : ''}`,
  ].join('\r');

/** A TCP connection to the port that sends nothing (no ClientHello): resolves once the listener has closed it. */
function silent(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

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
