// One MLLP connection served, the same for the embedded listener (crs serve --mllp-port) and the bridge (crs
// mllp-bridge): each frame, and each framing error, answered in order, one at a time. MLLP carries no credentials, so
// what a sender can make the server hold is bounded here, whether it reads its ACKs or not: reading pauses while
// 64 KiB wait to be answered, and an ACK the sender is not reading (the socket's buffer full) is waited for before
// the next frame is taken. Until 2026-12-05 a framing error was answered without either: a
// sender writing "\x0bX" over and over, reading nothing, took the embedded server from 70 MB to 2.7 GB in a minute
// (an AR of about 150 bytes for every 2 bytes it sent, all held in memory), with a log line for each.
import type { Server, Socket } from 'node:net';
import { MllpDecoder, frame, type FrameEvent } from '#app/hl7v2/mllp.ts';
import { DEFAULT_HTTP_LIMITS, capConnections } from './embedded/limits.ts';

/** Bytes read ahead of the frames being answered: reading pauses past it. */
const READ_AHEAD_BYTES = 64 * 1024;
/** And reads (each a Buffer of its own, about 100 bytes however short): a sender of one-byte writes is paused too. */
const READ_AHEAD_CHUNKS = 256;
/** The decoder is fed this much at a time, so that the answers it holds waiting are few (one per 2 bytes at worst). */
const SLICE_BYTES = 1024;

export interface MllpConnection {
  /** Resolves once what was read so far is answered. */
  settled(): Promise<void>;
}

/** How long a connection may stay idle, and how long a frame may take from its first byte to its end. */
export interface MllpTimeouts {
  idleMs: number;
  frameMs: number;
}

/**
 * Serves one connection: `answer` gives the ACK of each frame or framing error (undefined: none), called one at a
 * time in the order they came, also for the frames read before the sender closed (their ACKs go nowhere). Closed
 * after `idleMs` without traffic (destroyed when an ACK is still unsent then: a sender that stopped reading), and
 * destroyed when a frame is still not ended `frameMs` after it began (MLLP_FRAME_MS): that frame was never answered,
 * so the sender sends it again.
 */
export function serveMllpConnection(
  socket: Socket,
  answer: (event: FrameEvent) => Promise<string | undefined>,
  timeouts: MllpTimeouts,
): MllpConnection {
  const decoder = new MllpDecoder();
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let running: Promise<void> | undefined;
  let deadline: NodeJS.Timeout | undefined;

  const clearDeadline = () => {
    clearTimeout(deadline);
    deadline = undefined;
  };
  // Past the deadline with all that was read decoded, the frame waits on its sender, not on us.
  const onDeadline = () => {
    deadline = undefined;
    if (pending.length === 0 && decoder.pending) socket.destroy();
    else if (decoder.pending) armDeadline();
  };
  const armDeadline = () => {
    deadline ??= setTimeout(onDeadline, timeouts.frameMs).unref();
  };

  async function pump(): Promise<void> {
    while (pending.length > 0) {
      const chunk = pending.shift()!;
      pendingBytes -= chunk.length;
      for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
        const events = decoder.push(chunk.subarray(at, at + SLICE_BYTES));
        // A frame ended (or was dropped): the deadline is the next one's, from the slice it began in.
        if (events.length > 0) clearDeadline();
        if (decoder.pending) armDeadline();
        for (const event of events) {
          const ack = await answer(event).catch(() => undefined);
          if (ack === undefined || socket.destroyed || socket.writableEnded) continue;
          // The sender is not reading its ACKs: take nothing more from it until it does.
          if (!socket.write(frame(ack))) await drained(socket);
        }
      }
      if (!aheadTooFar() && socket.isPaused() && !socket.destroyed) socket.resume();
    }
  }
  const aheadTooFar = () => pendingBytes > READ_AHEAD_BYTES || pending.length > READ_AHEAD_CHUNKS;

  socket.setTimeout(timeouts.idleMs, () => (socket.writableLength > 0 ? socket.destroy() : socket.end()));
  socket.on('close', clearDeadline);
  socket.on('data', (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (aheadTooFar()) socket.pause();
    // Cleared once the pump has taken everything (after it returns: it may return without waiting for anything).
    running ??= pump().finally(() => {
      running = undefined;
    });
  });
  socket.on('error', () => undefined); // a reset by the peer: nothing to answer
  return { settled: () => running ?? Promise.resolve() };
}

/** Resolves when the socket's buffer is written out, or the socket is gone. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Caps an MLLP listener's connections as crs serve's HTTP ones are: 1,024 at once, 64 from one address. */
export function capMllpConnections(server: Server, onRefused: (address: string) => void = () => undefined): void {
  capConnections(server, DEFAULT_HTTP_LIMITS, [], onRefused);
}
