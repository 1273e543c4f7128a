// An MLLP sender that writes broken frames and reads none of its ACKs (MLLP has no credentials: anyone who reaches
// the port can), for the embedded listener and the bridge alike: what the server then holds for it.
import { connect, Socket } from 'node:net';
import { vi } from 'vitest';
import { until } from './until.ts';

/**
 * Writes `bytes` of "\x0bX" (each pair a frame started before the previous one ended: a framing error, answered AR)
 * to `port`, reading nothing, and waits until the server stopped reading from it while an ACK waits to be written,
 * or until the ACKs it handed to its socket passed `ceiling` bytes. Returns those bytes, and whether it stopped.
 */
export async function floodUnread(
  port: number,
  bytes: number,
  ceiling: number,
): Promise<{ handed: number; stopped: boolean }> {
  const client = connect(port, '127.0.0.1');
  client.on('error', () => undefined);
  client.pause();
  let server: Socket | undefined;
  let handed = 0;
  const write = Socket.prototype.write;
  const spy = vi.spyOn(Socket.prototype, 'write').mockImplementation(function (this: Socket, ...args: unknown[]) {
    if (this !== client) {
      server = this;
      handed += Buffer.byteLength(args[0] as Buffer);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  });
  try {
    await new Promise<void>((r) => client.once('connect', () => r()));
    client.write(Buffer.from('\x0bX'.repeat(bytes / 2), 'latin1'));
    const stopped = () => server?.isPaused() === true && server.writableLength >= server.writableHighWaterMark;
    await until(() => handed > ceiling || stopped(), 'the server to stop reading, or to hold more than the ceiling');
    return { handed, stopped: stopped() };
  } finally {
    spy.mockRestore();
    client.destroy();
  }
}
