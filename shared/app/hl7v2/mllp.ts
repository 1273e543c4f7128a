// MLLP framing: <VT> message <FS><CR>. Written here rather than taken from @medplum/hl7, whose connection (4.5.2)
// measurably mis-frames: it ends a frame only when a TCP chunk ends with FS CR, so two frames in one chunk are
// parsed as one message (the second message's segments join the first's, another patient's PID included), a
// frame split after FS loses its end, and nothing bounds the buffer; its server also listens on every interface
// with no way to choose (measured on 4.5.2; docs/interfaces.md). Tested in test/unit/mllp.test.ts.
export const VT = 0x0b;
export const FS = 0x1c;
const CR = 0x0d;

/** The largest frame accepted (a PCD-01 message is a few KB); beyond it the connection is closed. */
const MLLP_MAX_FRAME = 1024 * 1024;

export function frame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = VT;
  body.copy(out, 1);
  out[body.length + 1] = FS;
  out[body.length + 2] = CR;
  return out;
}

export type FrameEvent = { type: 'frame'; text: string } | { type: 'error'; problem: string };

/** Splits a byte stream into frames; bytes outside a frame (line noise, keep-alives) are ignored. */
export class MllpDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private inFrame = false;
  /** The FS was the last byte of the previous chunk: a CR must follow. */
  private sawFs = false;

  constructor(private readonly maxFrame = MLLP_MAX_FRAME) {}

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
          problem: 'a frame started before the previous one ended; the previous one is dropped',
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
    this.size += part.length;
    if (this.size > this.maxFrame) {
      out.push({ type: 'error', problem: `a frame is longer than ${this.maxFrame} bytes` });
      this.reset();
      return;
    }
    this.parts.push(Buffer.from(part));
  }

  private finish(out: FrameEvent[]): void {
    out.push({ type: 'frame', text: Buffer.concat(this.parts).toString('utf8') });
    this.reset();
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.inFrame = false;
    this.sawFs = false;
  }

  /** True when part of a frame is buffered. */
  get pending(): boolean {
    return this.inFrame;
  }
}
