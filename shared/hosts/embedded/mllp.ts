// The MLLP listener of `crs serve --mllp-port N`: each frame is one HL7 v2 message, answered on the same connection,
// in order, with its ACK once the messages are committed to the inbox (ingestHl7). MLLP carries no credentials: the
// listener binds to the server's host (127.0.0.1 by default) and belongs on a trusted segment, or behind
// `crs mllp-bridge` / a TLS tunnel. What it may send is a device's (shared/app/scope.ts): by default a monitor's
// (PCD-01 is monitor data) for every patient, recorded as sent by `mllp:<peer address>`; with `--mllp-device ID`,
// the scope of that device's active token (its kind, wards, patients), recorded as sent by ID, and refused (AR) once
// the token is revoked.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { TOKEN_REVOKED } from '#app/auth.ts';
import { refusalAck } from '#app/hl7v2/ack.ts';
import { ingestHl7, type Hl7IngestDeps } from '#app/hl7v2/ingest.ts';
import { MLLP_IDLE_MS, MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import type { Principal } from '#app/scope.ts';

/** Messages read ahead of their ACKs on one connection before reading pauses. */
const MAX_BACKLOG = 64;

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
  /** Who the listener's messages come from (asked for each message, so a revocation applies at once); undefined: refused. */
  principal?: (peer: string) => Promise<Principal | undefined>;
}

/** The listener's scope without --mllp-device: a monitor's, for every patient. */
const mllpMonitor = (peer: string): Principal => ({ deviceId: peer, role: 'monitor' });

export async function startMllpListener(o: MllpListenerOptions): Promise<MllpListener> {
  const sockets = new Map<Socket, Promise<void>>();
  let closing = false;
  const server: Server = createServer((socket) => {
    const decoder = new MllpDecoder();
    const peer = `mllp:${socket.remoteAddress ?? 'unknown'}`;
    let chain = Promise.resolve();
    let backlog = 0;
    sockets.set(socket, chain);
    socket.setTimeout(o.idleMs ?? MLLP_IDLE_MS, () => socket.end());
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === 'error') {
          o.log(`mllp: ${peer}: ${event.problem.text}`);
          const ack = refusalAck(event.problem, o.deps.now());
          chain = chain.then(() => void socket.write(frame(ack)));
          continue;
        }
        // One message at a time per connection: the ACKs go back in the order the messages came. A sender that
        // does not wait for its ACKs is read no further until the backlog is down (bounded memory).
        if (++backlog >= MAX_BACKLOG) socket.pause();
        chain = chain.then(async () => {
          try {
            const principal = o.principal ? await o.principal(peer) : mllpMonitor(peer);
            if (!principal) {
              o.log(`mllp: ${peer}: refused (the listener's device token is revoked)`);
              // The AR the device's token gets over HTTP, addressed to the message (HTTP refuses before reading it).
              const problem = { at: { segment: 'MSH', sequence: 1 }, code: 207, text: TOKEN_REVOKED } as const;
              const header = translatePcd01(event.text).header;
              if (!socket.destroyed) socket.write(frame(refusalAck(problem, o.deps.now(), header)));
              return;
            }
            const answer = await ingestHl7(event.text, principal, o.deps);
            if (!socket.destroyed) socket.write(frame(answer.ack));
            if (answer.code !== 'AA')
              o.log(
                `mllp: ${peer}: ${answer.code} (${answer.problems.length} problem(s), ${answer.messageIds.length} message(s) accepted)`,
              );
          } catch (err) {
            // ingestHl7 does not throw on input; this is a bug or a closed database: no AA, the sender resends.
            o.log(`mllp: ${peer}: failed (${(err as Error).name})`);
            const problem = {
              at: { segment: 'MSH', sequence: 1 },
              code: 207,
              text: 'internal error; send again',
            } as const;
            const header = translatePcd01(event.text).header;
            if (!socket.destroyed) socket.write(frame(refusalAck(problem, o.deps.now(), header)));
          } finally {
            if (--backlog < MAX_BACKLOG / 4 && socket.isPaused()) socket.resume();
          }
        });
      }
      sockets.set(socket, chain);
      if (closing) void chain.then(() => socket.end());
    });
    socket.on('error', () => undefined); // a reset by the peer: nothing to answer
    socket.on('close', () => sockets.delete(socket));
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
      await Promise.all([...sockets.entries()].map(([socket, chain]) => chain.then(() => socket.end())));
      const force = setTimeout(() => {
        for (const socket of sockets.keys()) socket.destroy();
      }, 5000);
      await stopped;
      clearTimeout(force);
    },
  };
}
