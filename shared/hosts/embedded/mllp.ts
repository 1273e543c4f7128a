// The MLLP listener of `crs serve --mllp-port N`: each frame is one HL7 v2 message, answered on the same connection,
// in order, with its ACK once the messages are committed to the inbox (ingestHl7). MLLP carries no credentials: the
// listener binds to the server's host (127.0.0.1 by default) and belongs on a trusted segment, or behind
// `crs mllp-bridge` / a TLS tunnel. What it may send is a device's (shared/app/scope.ts): by default a monitor's
// (PCD-01 is monitor data) for every patient, recorded as sent by `mllp:<peer address>`; with `--mllp-device ID`,
// the scope of that device's active token (its kind, wards, patients), recorded as sent by ID, and refused (AR) once
// the token is revoked or has expired (each refusal recorded in the security log, as the HTTP routes record theirs).
// With --mllp-tls-cert/-key/-ca (shared/hosts/mllp-tls.ts) MLLP is inside TLS and each sender shows a certificate the
// CA signed: its subject CN names the device, and the connection acts with that device's token scope, as
// --mllp-device does for the whole listener (since 2026-12-07).
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { TOKEN_REVOKED } from '#app/auth.ts';
import { refusalAck } from '#app/hl7v2/ack.ts';
import { ingestHl7, type Hl7IngestDeps } from '#app/hl7v2/ingest.ts';
import { MLLP_FRAME_MS, MLLP_IDLE_MS, type FrameEvent } from '#app/hl7v2/mllp.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import type { Principal } from '#app/scope.ts';
import { iso } from '#domain/time.ts';
import { capMllpConnections, serveMllpConnection, type MllpConnection } from '../mllp-connection.ts';
import { certificateDevice, createMllpServer, type MllpTls } from '../mllp-tls.ts';
import { DEFAULT_HTTP_LIMITS, RateLimiter, normalise } from './limits.ts';
import { recordTokenRefusal, type CountingSecurityLog } from './security-log.ts';

/** Log lines one sender address may write (a burst), then one more every 6 s; the rest are counted (as HTTP's refusals). */
const LOG_BURST = 10;
const LOG_REFILL_MS = 6_000;

export interface MllpListener {
  port: number;
  /** Stops accepting, lets each connection's messages in flight be answered, then closes them. */
  close(): Promise<void>;
}

export interface MllpListenerOptions {
  port: number;
  host: string;
  deps: Hl7IngestDeps;
  log: (line: string) => void;
  /** Idle connections are closed after this long (monitors reconnect). */
  idleMs?: number;
  /** A frame not ended this long after it began closes its connection (MLLP_FRAME_MS). */
  frameMs?: number;
  /**
   * Who the messages of `device` (--mllp-device, or the certificate's over TLS) come from, asked for each message so
   * that a revocation applies at once; undefined: no active token (refused as revoked); `refused`: its token (by id)
   * refused, with what HTTP tells that token. Without it, the listener is a monitor for every patient.
   */
  principal?: (device: string | undefined) => Promise<Principal | { refused: string; tokenId: string } | undefined>;
  /** The listener's device (--mllp-device), named in the security log's lines; over TLS, each certificate's. */
  device?: string;
  /** MLLP inside TLS with client certificates: each connection is the device its certificate names (subject CN). */
  tls?: MllpTls;
  /**
   * Where its token's refusals are recorded (crs serve's security log, where the HTTP routes record theirs; until
   * 2026-12-06 they went to the server's log): by the device's and the token's ids, never the token.
   */
  security: Pick<CountingSecurityLog, 'record' | 'notWritten'>;
}

/** The listener's scope without --mllp-device: a monitor's, for every patient. */
const mllpMonitor = (peer: string): Principal => ({ deviceId: peer, role: 'monitor' });

export async function startMllpListener(o: MllpListenerOptions): Promise<MllpListener> {
  const connections = new Map<Socket, MllpConnection>();
  let closing = false;
  // A line for each refusal, within a budget per sender address: an unauthenticated sender of garbage gets its
  // answers, not a log line for every 2 bytes it sends. What the budget kept out is counted and said on the
  // address's next line, and when the connection closes.
  const budget = new RateLimiter(LOG_BURST, LOG_REFILL_MS, o.deps.now);
  // The security log's budget per address, as the HTTP routes' (what it keeps out is counted there).
  const refusals = new RateLimiter(LOG_BURST, LOG_REFILL_MS, o.deps.now);
  const server: Server = createMllpServer(o.tls, onSocket, o.log, 'mllp', o.deps.now);
  function onSocket(socket: Socket): void {
    const address = normalise(socket.remoteAddress ?? 'unknown');
    const named = o.tls ? certificateDevice(socket) : undefined;
    const device = named ? ('device' in named ? named.device : undefined) : o.device;
    const peer = `mllp:${socket.remoteAddress ?? 'unknown'}${o.tls && device ? ` (${device})` : ''}`;
    let unwritten = 0;
    const log = (line: string) => {
      if (!budget.take(address)) {
        unwritten++;
        return;
      }
      o.log(unwritten > 0 ? `${line} (and ${unwritten} line(s) before it not written: over the budget)` : line);
      unwritten = 0;
    };
    if (o.tls && device === undefined) {
      // Signed by the CA, but naming no device (no CN, several, or one no device id can be): no token scope to act
      // with, nothing read. What the CN is, quoted: it is the sender's text.
      const why = named && 'refused' in named ? named.refused : 'no subject CN';
      log(`mllp: ${peer}: its client certificate names no device: ${why}: closed`);
      socket.destroy();
      return;
    }
    socket.once('close', () => {
      if (unwritten > 0)
        o.log(`mllp: ${peer}: ${unwritten} line(s) of this connection not written (over the budget of its address)`);
    });
    const answer = async (event: FrameEvent): Promise<string | undefined> => {
      if (event.type === 'error') {
        log(`mllp: ${peer}: ${event.problem.text}`);
        return refusalAck(event.problem, o.deps.now());
      }
      try {
        const principal = o.principal ? await o.principal(device) : mllpMonitor(peer);
        if (!principal || 'refused' in principal) {
          const text = principal?.refused ?? TOKEN_REVOKED();
          const claimed = { listener: 'mllp', device: device ?? null, tokenId: principal?.tokenId ?? null };
          // A security log that cannot be written changes no answer: said in the server's log, by the error's name.
          await recordTokenRefusal(o.security, refusals, {
            at: iso(o.deps.now()),
            reason: text,
            client: address,
            claimed,
          }).catch((err: Error) => log(`mllp: ${peer}: a refusal not written to the security log (${err.name})`));
          // The AR the device's token gets over HTTP, addressed to the message (HTTP refuses before reading it).
          const problem = { at: { segment: 'MSH', sequence: 1 }, code: 207, text } as const;
          return refusalAck(problem, o.deps.now(), translatePcd01(event.text).header);
        }
        const answer = await ingestHl7(event.text, principal, o.deps);
        if (answer.code !== 'AA')
          log(
            `mllp: ${peer}: ${answer.code} (${answer.problems.length} problem(s), ${answer.messageIds.length} message(s) accepted)`,
          );
        return answer.ack;
      } catch (err) {
        // ingestHl7 does not throw on input; this is a bug or a closed database: no AA, the sender resends.
        log(`mllp: ${peer}: failed (${(err as Error).name})`);
        const problem = { at: { segment: 'MSH', sequence: 1 }, code: 207, text: 'internal error; send again' } as const;
        return refusalAck(problem, o.deps.now(), translatePcd01(event.text).header);
      }
    };
    const connection = serveMllpConnection(socket, answer, {
      idleMs: o.idleMs ?? MLLP_IDLE_MS,
      frameMs: o.frameMs ?? MLLP_FRAME_MS,
    });
    connections.set(socket, connection);
    socket.on('close', () => connections.delete(socket));
    if (closing) void connection.settled().then(() => socket.end());
  }
  let capped = 0;
  capMllpConnections(server, () => {
    if (capped++ % 100 === 0)
      o.log(
        `mllp: connections over the per-address cap (${DEFAULT_HTTP_LIMITS.maxConnectionsPerAddress}) refused (${capped} so far)`,
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...connections.entries()].map(([socket, c]) => c.settled().then(() => socket.end())));
      const force = setTimeout(() => {
        for (const socket of connections.keys()) socket.destroy();
      }, 5000);
      await stopped;
      clearTimeout(force);
    },
  };
}
