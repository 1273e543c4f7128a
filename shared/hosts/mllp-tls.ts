// MLLP inside TLS with client certificates (IHE ATNA secure node), the same for the embedded listener (crs serve
// --mllp-port) and the bridge (crs mllp-bridge --listen), with the same options: --mllp-tls-cert FILE (the listener's
// certificate), --mllp-tls-key FILE (its key), --mllp-tls-ca FILE (the CA that signs the devices' certificates). All
// three or none. With them, a sender is authenticated by its certificate before a byte of HL7 is read: a connection
// with no certificate, one the CA did not sign, or plain MLLP is closed at the handshake and logged by its address.
// Plain MLLP authenticates nobody: anyone who reached the port sent as the listener's device (until 2026-12-07).
import { readFileSync } from 'node:fs';
import { createServer as createPlainServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { RateLimiter, normalise } from './embedded/limits.ts';

/** The listener's certificate, its key and the CA of the devices' certificates (PEM). */
export interface MllpTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export const MLLP_TLS_OPTIONS = ['mllp-tls-cert', 'mllp-tls-key', 'mllp-tls-ca'] as const;
type MllpTlsFlag = (typeof MLLP_TLS_OPTIONS)[number];

/** The TLS options as parseArgs reads them, for a command that takes them. */
export const MLLP_TLS_FLAGS = {
  'mllp-tls-cert': { type: 'string' },
  'mllp-tls-key': { type: 'string' },
  'mllp-tls-ca': { type: 'string' },
} as const;

/** A start refused for the TLS options: a usage error (exit 2) whose message names the option. */
export class MllpTlsOptionError extends Error {
  override name = 'UsageError';
}

/**
 * The files the options name, read; undefined when none is given. Throws MllpTlsOptionError when one or two are
 * given (naming those missing) or a file cannot be read (naming the option and its file).
 */
export function readMllpTls(values: Partial<Record<MllpTlsFlag, string | undefined>>): MllpTls | undefined {
  const given = MLLP_TLS_OPTIONS.filter((f) => values[f] !== undefined);
  if (given.length === 0) return undefined;
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
  return { cert: read('mllp-tls-cert'), key: read('mllp-tls-key'), ca: read('mllp-tls-ca') };
}

/** Log lines of refused handshakes one address may write (a burst), then one more every 6 s; the rest counted. */
const LOG_BURST = 10;
const LOG_REFILL_MS = 6_000;

/**
 * An MLLP listener's server: plain TCP without `tls`; with it, TLS 1.2 or later that requires a client certificate
 * the CA signed (`onSocket` sees only senders so authenticated). A refused handshake is logged with the sender's
 * address and why (the TLS error's code), never what it sent. A key that does not match the certificate, or PEM that
 * is not one, throws here (the start fails, naming the option).
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
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    const address = normalise(socket.remoteAddress ?? (raw && addresses.get(raw)) ?? 'unknown');
    if (!budget.take(address)) {
      unwritten++;
      return;
    }
    const code = typeof err.code === 'string' && /^[A-Z0-9_]{1,80}$/.test(err.code) ? err.code : err.name;
    log(
      `${prefix}: TLS handshake refused from ${address} (${code}): a client certificate signed by --mllp-tls-ca is required${unwritten > 0 ? ` (and ${unwritten} refusal(s) before it not written: over the budget)` : ''}`,
    );
    unwritten = 0;
  });
  return server;
}

/**
 * The device a TLS sender's certificate names: its subject CN (the device id, as `crs token issue --device` names
 * it), or undefined (a plain connection, or a certificate without one).
 */
export function certificateDevice(socket: Socket): string | undefined {
  const tlsSocket = socket as Partial<TLSSocket>;
  if (typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const cn = tlsSocket.getPeerCertificate().subject?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  return typeof first === 'string' && first !== '' ? first : undefined;
}
