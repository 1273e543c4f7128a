// `crs mllp-bridge --listen PORT --to URL --token-file F [--host H] [--spool DIR] [--ack-wait MS]`: MLLP from the
// monitors in, HTTPS to POST /v1/hl7v2 out, with a durable local spool (shared/hosts/mllp-bridge/mllp-bridge.ts).
import { readFileSync } from 'node:fs';
import { isBearerToken } from '#app/auth.ts';
import { startBridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { SpoolInUse } from '#hosts/mllp-bridge/spool.ts';
import { MLLP_TLS_LISTENER_FLAGS, MllpTlsOptionError, readMllpTls, type MllpTls } from '#hosts/mllp-tls.ts';
import { LISTEN_PORT, parseNumberFlag, parseFlags } from './flags.ts';

export const BRIDGE_USAGE = `  crs mllp-bridge --listen PORT --to URL --token-file F [--host H] [--spool DIR] [--ack-wait MS]
                  [--mllp-tls-cert FILE --mllp-tls-key FILE --mllp-tls-ca FILE [--mllp-tls-crl FILE]]
      MLLP in (monitor gateways), HTTPS out to URL (the API's base or its /v1/hl7v2) with the device token in F;
      every message is spooled to disk (DIR, default .crs/bridge) before it is ACKed; while the link is down the
      monitor gets AA after --ack-wait ms (default 10000) and the bridge delivers the spool when the link is back;
      --mllp-tls-*: MLLP in inside TLS (1.2+), each gateway with a client certificate signed by the CA (others are
      refused at the handshake), as crs serve --mllp-port takes them; --mllp-tls-crl: the CA's revocation list
      (PEM), a certificate it revokes refused too (read at start: restart after replacing it)
`;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The flags `crs mllp-bridge` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const BRIDGE_OPTIONS = {
  listen: { type: 'string' },
  host: { type: 'string' },
  to: { type: 'string' },
  'token-file': { type: 'string' },
  spool: { type: 'string' },
  'ack-wait': { type: 'string' },
  ...MLLP_TLS_LISTENER_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

export async function mllpBridgeCommand(args: string[]): Promise<number> {
  let v;
  try {
    v = parseFlags({
      args,
      options: BRIDGE_OPTIONS,
    }).values;
  } catch (err) {
    log(`crs mllp-bridge: ${(err as Error).message}\nusage:\n${BRIDGE_USAGE}`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(`usage:\n${BRIDGE_USAGE}`);
    return 0;
  }
  const usage = (text: string) => {
    log(`crs mllp-bridge: ${text}\nusage:\n${BRIDGE_USAGE}`);
    return 2;
  };
  if (v.listen === undefined) return usage('--listen PORT (0-65535) is required');
  const listen = parseNumberFlag('listen', v.listen, LISTEN_PORT);
  if (!listen.ok) return usage(listen.error);
  const port = listen.value;
  let url: URL;
  try {
    url = new URL(v.to ?? '');
  } catch {
    return usage('--to URL is required: the server (https://...) or its /v1/hl7v2');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return usage('--to must be an http or https URL');
  // fetch refuses such a URL on every attempt: said once here, not as a link down for ever.
  if (url.username || url.password) return usage('--to must carry no user or password: the device token authenticates');
  // The server's base, with any path before the API's own (a stage, a proxy's prefix), or its /v1/hl7v2 itself.
  if (!url.pathname.endsWith('/v1/hl7v2')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/hl7v2`;
  if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))
    log(
      'crs mllp-bridge: warning: --to is plain http to another host; patient data would cross the network unencrypted',
    );
  if (!v['token-file']) return usage('--token-file F is required (a device token from crs token issue)');
  let token: string;
  try {
    token = readFileSync(v['token-file'], 'utf8').trim();
  } catch (err) {
    return usage(`cannot read --token-file: ${(err as Error).message}`);
  }
  if (!token) return usage('the token file is empty');
  // A token no request can carry (the whole output of crs token issue, two tokens, a space) would be refused by every
  // forward before it left: the monitors ACKed "held" and nothing delivered, logged as a link down for ever.
  if (!isBearerToken(token)) {
    const lines = token.split(/\r?\n|\r/).length;
    const why = lines > 1 ? `${lines} lines` : /\s/.test(token) ? 'a space' : 'a character outside printable ASCII';
    return usage(
      `--token-file must hold the token alone, on one line, in printable ASCII without spaces (it has ${why}): crs token issue prints it after "token:"`,
    );
  }
  // Milliseconds, at most 10 minutes (a timer past 2^31 ms would fire at once).
  const ackWait = parseNumberFlag('ack-wait', v['ack-wait'] ?? '10000', { min: 0, max: 600_000 });
  if (!ackWait.ok) return usage(`${ackWait.error} (milliseconds)`);
  const ackWaitMs = ackWait.value;
  let tls: MllpTls | undefined;
  try {
    tls = readMllpTls(v);
  } catch (err) {
    return usage((err as Error).message);
  }

  let bridge: Awaited<ReturnType<typeof startBridge>>;
  try {
    bridge = await startBridge({
      listenPort: port,
      listenHost: v.host ?? '127.0.0.1',
      url: url.toString(),
      token,
      spoolDir: v.spool ?? '.crs/bridge',
      ackWaitMs,
      log,
      ...(tls ? { tls } : {}),
    });
  } catch (err) {
    if (err instanceof MllpTlsOptionError) return usage(err.message);
    if (err instanceof SpoolInUse) {
      log(`crs mllp-bridge: ${err.message}`);
      return 1;
    }
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    return usage(`port ${port} is already in use; choose another with --listen PORT`);
  }
  // Listening for the signals before the line scripts wait for: a SIGTERM sent as soon as it was out met the default
  // action and killed the bridge mid-forward (until 2026-12-06; the spool kept the messages, resent at the next start).
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log(`crs mllp-bridge: ${signal}: stopping (the spool keeps what is not delivered)`);
      bridge.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  for (const change of bridge.spool.madePrivate)
    log(`crs mllp-bridge: made private (others could read patient data): ${change}`);
  log(
    `crs mllp-bridge: MLLP on ${v.host ?? '127.0.0.1'}:${bridge.port}${tls ? ' inside TLS (client certificates of --mllp-tls-ca)' : ''}, forwarding to ${url.origin}${url.pathname}; spool ${v.spool ?? '.crs/bridge'} (${bridge.spool.counts().waiting} waiting)`,
  );
  return stopped;
}
