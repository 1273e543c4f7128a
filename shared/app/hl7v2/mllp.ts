// MLLP framing: <VT> message <FS><CR>. Written here rather than taken from @medplum/hl7, whose connection (4.5.2)
// measurably mis-frames: it ends a frame only when a TCP chunk ends with FS CR, so two frames in one chunk are
// parsed as one message (the second message's segments join the first's, another patient's PID included), a
// frame split after FS loses its end, and nothing bounds the buffer; its server also listens on every interface
// with no way to choose (measured on 4.5.2; docs/interfaces.md). Tested in test/unit/mllp.test.ts.
import { HL7_MAX_BYTES, tooLong } from './ack.ts';
import type { Hl7Problem } from './pcd01.ts';

export const VT = 0x0b;
export const FS = 0x1c;
/** A sender's connection idle this long is closed (the listener and the bridge alike): a frame never ended with it. */
export const MLLP_IDLE_MS = 10 * 60_000;
/**
 * A frame begun this long ago and still not ended closes its connection (the listener and the bridge alike). A
 * gateway writes a message at once (1 MiB, the largest taken, is 8 s at 1 Mbit/s); without this deadline a sender
 * trickling a byte every few minutes kept a partial frame, up to 1 MiB, for as long as it liked.
 */
export const MLLP_FRAME_MS = 60_000;
/** A frame's buffer starts this large and doubles as it fills (up to the largest frame taken). */
const FIRST_BUFFER_BYTES = 4096;
const CR = 0x0d;

export function frame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = VT;
  body.copy(out, 1);
  out[body.length + 1] = FS;
  out[body.length + 2] = CR;
  return out;
}

/** A frame, or what went wrong in place of one (answered AR with this problem: ack.ts refusalAck). */
export type FrameEvent = { type: 'frame'; text: string } | { type: 'error'; problem: Hl7Problem };

/** Splits a byte stream into frames; bytes outside a frame (line noise, keep-alives) are ignored. */
export class MllpDecoder {
  /**
   * The frame so far, in one buffer that doubles as it fills: until 2026-12-05 each piece read was kept as a Buffer of
   * its own, and a sender writing a frame a byte at a time made the server hold about 100 bytes for each of its bytes
   * (1 MiB sent was 107 MB held, measured).
   */
  private buffer = Buffer.alloc(0);
  private size = 0;
  private inFrame = false;
  /** The FS was the last byte of the previous chunk: a CR must follow. */
  private sawFs = false;

  /** A longer frame is refused (one error) and the rest of it skipped, up to the next start block. */
  constructor(private readonly maxFrame = HL7_MAX_BYTES) {}

  push(chunk: Buffer): FrameEvent[] {
    const out: FrameEvent[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (!this.inFrame) {
        if (b === VT) {
          this.inFrame = true;
          start = i + 1;
        }
        continue;
      }
      if (this.sawFs) {
        this.sawFs = false;
        if (b === CR) {
          this.finish(out);
          continue;
        }
        // An FS inside the message (not followed by CR) is kept as data.
        this.append(Buffer.from([FS]), out);
      }
      if (b === FS) {
        this.append(chunk.subarray(start, i), out);
        this.sawFs = this.inFrame; // false when the append found the frame too long
        start = i + 1;
      } else if (b === VT) {
        // A new start before the end: the sender gave up on the previous frame.
        out.push({
          type: 'error',
          problem: {
            at: { segment: 'MSH', sequence: 1 },
            code: 100,
            text: 'a frame started before the previous one ended; the previous one is dropped',
          },
        });
        this.reset();
        this.inFrame = true;
        start = i + 1;
      }
    }
    if (this.inFrame && !this.sawFs) this.append(chunk.subarray(start), out);
    return out;
  }

  private append(part: Buffer, out: FrameEvent[]): void {
    if (!this.inFrame || part.length === 0) return;
    const size = this.size + part.length;
    if (size > this.maxFrame) {
      out.push({ type: 'error', problem: tooLong(this.maxFrame) });
      this.reset();
      return;
    }
    if (size > this.buffer.length) {
      let capacity = Math.max(this.buffer.length, FIRST_BUFFER_BYTES);
      while (capacity < size) capacity *= 2;
      const grown = Buffer.allocUnsafe(Math.min(capacity, this.maxFrame));
      this.buffer.copy(grown, 0, 0, this.size);
      this.buffer = grown;
    }
    part.copy(this.buffer, this.size);
    this.size = size;
  }

  private finish(out: FrameEvent[]): void {
    out.push({ type: 'frame', text: this.buffer.toString('utf8', 0, this.size) });
    this.reset();
  }

  private reset(): void {
    // A large frame's buffer is let go; a small one is kept for the next frame.
    if (this.buffer.length > FIRST_BUFFER_BYTES) this.buffer = Buffer.alloc(0);
    this.size = 0;
    this.inFrame = false;
    this.sawFs = false;
  }

  /** True when part of a frame is buffered. */
  get pending(): boolean {
    return this.inFrame;
  }
}
