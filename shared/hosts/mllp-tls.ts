// MLLP inside TLS with client certificates (IHE ATNA secure node), the same for the embedded listener (crs serve
// --mllp-port) and the bridge (crs mllp-bridge --listen), with the same options: --mllp-tls-cert FILE (the listener's
// certificate), --mllp-tls-key FILE (its key), --mllp-tls-ca FILE (the CA that signs the devices' certificates). All
// three or none. With them, a sender is authenticated by its certificate before a byte of HL7 is read: a connection
// with no certificate, one the CA did not sign, or plain MLLP is closed at the handshake and logged by its address.
// Plain MLLP authenticates nobody: anyone who reached the port sent as the listener's device (until 2026-12-07).
// Hardened 2026-12-07: --mllp-tls-crl FILE (the CA's revocation list, PEM) refuses a revoked certificate at the
// handshake (no CRL was read: a stolen gateway certificate passed until it expired); a handshake not finished within
// MLLP_HANDSHAKE_MS is closed (none was: Node's 120 s limit only reports, and with a tlsClientError listener nothing
// closed the connection, so a sender that never spoke held it for ever and kept crs serve from stopping); a
// certificate's subject must hold one CN that is a device id (the first of several was taken, raw into the logs).
import { readFileSync } from 'node:fs';
import { createServer as createPlainServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { TOKEN_DEVICE_ID } from '#domain/scope.ts';
import { RateLimiter, normalise } from './embedded/limits.ts';

/**
 * The listener's certificate, its key and the CA of the devices' certificates (PEM); the CA's revocation list
 * (PEM, --mllp-tls-crl) when given; how long a handshake may take (MLLP_HANDSHAKE_MS unless a test says otherwise).
 */
export interface MllpTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  crl?: Buffer;
  handshakeMs?: number;
}

/**
 * How long a TLS handshake may take from the connection, as the HTTP routes' headers (10 s): a sender that connects
 * and never finishes it is closed then, and counts against its address's cap (64 connections) until it is.
 */
const MLLP_HANDSHAKE_MS = 10_000;

export const MLLP_TLS_OPTIONS = ['mllp-tls-cert', 'mllp-tls-key', 'mllp-tls-ca'] as const;
type MllpTlsFlag = (typeof MLLP_TLS_OPTIONS)[number] | 'mllp-tls-crl';

/** The TLS options as parseArgs reads them, for a command that takes them (a sender's: crs simulate). */
export const MLLP_TLS_FLAGS = {
  'mllp-tls-cert': { type: 'string' },
  'mllp-tls-key': { type: 'string' },
  'mllp-tls-ca': { type: 'string' },
} as const;

/** A listener's (crs serve --mllp-port, crs mllp-bridge): the three, and the CA's revocation list. */
export const MLLP_TLS_LISTENER_FLAGS = { ...MLLP_TLS_FLAGS, 'mllp-tls-crl': { type: 'string' } } as const;

/** A start refused for the TLS options: a usage error (exit 2) whose message names the option. */
export class MllpTlsOptionError extends Error {
  override name = 'UsageError';
}

/**
 * The files the options name, read; undefined when none is given. Throws MllpTlsOptionError when one or two are
 * given (naming those missing), --mllp-tls-crl without them, or a file cannot be read or is not what it should be
 * (naming the option and its file).
 */
export function readMllpTls(values: Partial<Record<MllpTlsFlag, string | undefined>>): MllpTls | undefined {
  const given = MLLP_TLS_OPTIONS.filter((f) => values[f] !== undefined);
  if (given.length === 0) {
    if (values['mllp-tls-crl'] !== undefined)
      throw new MllpTlsOptionError(
        '--mllp-tls-crl is for MLLP over TLS: give --mllp-tls-cert FILE, --mllp-tls-key FILE and --mllp-tls-ca FILE too',
      );
    return undefined;
  }
  const missing = MLLP_TLS_OPTIONS.filter((f) => values[f] === undefined);
  if (missing.length > 0)
    throw new MllpTlsOptionError(
      `MLLP over TLS takes --mllp-tls-cert, --mllp-tls-key and --mllp-tls-ca together: give ${missing.map((f) => `--${f} FILE`).join(' and ')} too`,
    );
  const read = (flag: MllpTlsFlag): Buffer => {
    const file = values[flag]!;
    try {
      const pem = readFileSync(file);
      if (!pem.includes('-----BEGIN ')) throw new Error('not PEM (no -----BEGIN line)');
      return pem;
    } catch (err) {
      throw new MllpTlsOptionError(`cannot read --${flag} ${file}: ${(err as Error).message}`);
    }
  };
  const tls: MllpTls = { cert: read('mllp-tls-cert'), key: read('mllp-tls-key'), ca: read('mllp-tls-ca') };
  return values['mllp-tls-crl'] === undefined ? tls : { ...tls, crl: readCrl(values['mllp-tls-crl']) };
}

/** A CRL file as OpenSSL will read it, or MllpTlsOptionError naming the option and the file. */
function readCrl(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new MllpTlsOptionError(`cannot read --mllp-tls-crl ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN X509 CRL-----'))
    throw new MllpTlsOptionError(`cannot read --mllp-tls-crl ${file}: not a CRL (no -----BEGIN X509 CRL----- line)`);
  try {
    createSecureContext({ crl: pem });
  } catch (err) {
    throw new MllpTlsOptionError(
      `cannot read --mllp-tls-crl ${file}: not a CRL OpenSSL can read (${(err as Error).message})`,
    );
  }
  return pem;
}

/** Log lines of refused handshakes one address may write (a burst), then one more every 6 s; the rest counted. */
const LOG_BURST = 10;
const LOG_REFILL_MS = 6_000;

/**
 * An MLLP listener's server: plain TCP without `tls`; with it, TLS 1.2 or later that requires a client certificate
 * the CA signed and its CRL (if any) does not revoke (`onSocket` sees only senders so authenticated). A refused
 * handshake, or one not finished within `tls.handshakeMs`, is closed and logged with the sender's address and why (the
 * TLS error's code), never what it sent. A key that does not match the certificate, or PEM that is not one, throws
 * here (the start fails, naming the option).
 */
export function createMllpServer(
  tls: MllpTls | undefined,
  onSocket: (socket: Socket) => void,
  log: (line: string) => void,
  prefix: string,
  now: () => number = Date.now,
): Server {
  if (!tls) return createPlainServer(onSocket);
  let server: Server;
  try {
    server = createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        ...(tls.crl ? { crl: tls.crl } : {}),
        handshakeTimeout: tls.handshakeMs ?? MLLP_HANDSHAKE_MS,
        minVersion: 'TLSv1.2',
        requestCert: true,
        rejectUnauthorized: true,
      },
      onSocket,
    );
  } catch (err) {
    throw new MllpTlsOptionError(
      `--mllp-tls-cert, --mllp-tls-key and --mllp-tls-ca cannot be used (${(err as Error).message}): the key must be the certificate's, both PEM`,
    );
  }
  const budget = new RateLimiter(LOG_BURST, LOG_REFILL_MS, now);
  let unwritten = 0;
  // The sender's address, taken as it connects: a sender gone before its handshake failed has none left to ask.
  const addresses = new WeakMap<Socket, string>();
  server.on('connection', (raw: Socket) => addresses.set(raw, raw.remoteAddress ?? 'unknown'));
  const limitSeconds = (tls.handshakeMs ?? MLLP_HANDSHAKE_MS) / 1000;
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    // Node closes nothing once this event has a listener: a handshake timed out left its connection open for ever
    // (until 2026-12-07), holding one of its address's 64 and keeping server.close() from finishing.
    socket.destroy();
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    const address = normalise(socket.remoteAddress ?? (raw && addresses.get(raw)) ?? 'unknown');
    if (!budget.take(address)) {
      unwritten++;
      return;
    }
    const code = typeof err.code === 'string' && /^[A-Z0-9_]{1,80}$/.test(err.code) ? err.code : err.name;
    const before = unwritten > 0 ? ` (and ${unwritten} refusal(s) before it not written: over the budget)` : '';
    log(
      code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? `${prefix}: TLS handshake from ${address} not finished within ${limitSeconds} s: closed${before}`
        : `${prefix}: TLS handshake refused from ${address} (${code}): a client certificate signed by --mllp-tls-ca${tls.crl ? ' (not revoked by --mllp-tls-crl)' : ''} is required${before}`,
    );
    unwritten = 0;
  });
  return server;
}

/**
 * The device a TLS sender's certificate names: its subject's one CN, a device id as `crs token issue --device` takes
 * it (TOKEN_DEVICE_ID); or why it names none (no CN, several, or one no device id can be), the CN quoted (escaped,
 * cut) for a log line; undefined for a plain connection. Until 2026-12-07 the first of several CNs was the device, and
 * a CN with a space, a control character or an escape sequence went raw into the log lines naming the sender.
 */
export function certificateDevice(socket: Socket): { device: string } | { refused: string } | undefined {
  const tlsSocket = socket as Partial<TLSSocket>;
  if (typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const cn: unknown = tlsSocket.getPeerCertificate().subject?.CN;
  if (cn === undefined) return { refused: 'no subject CN' };
  if (Array.isArray(cn))
    return {
      refused: `its subject has ${cn.length} CNs (${cn
        .slice(0, 5)
        .map((c) => quoted(c, SENDER_MOST))
        .join(', ')}${cn.length > 5 ? ', ...' : ''}), not one`,
    };
  if (typeof cn !== 'string' || !TOKEN_DEVICE_ID.pattern.test(cn))
    return { refused: `its subject CN ${quoted(cn, SENDER_MOST)} is not a device id (${TOKEN_DEVICE_ID.text})` };
  return { device: cn };
}
