// MLLP framing: frames however TCP cuts or joins them, noise between frames ignored, an oversized frame refused.
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FS, MllpDecoder, VT, frame } from '#app/hl7v2/mllp.ts';

const texts = (events: ReturnType<MllpDecoder['push']>) => events.flatMap((e) => (e.type === 'frame' ? [e.text] : []));

describe('MLLP decoder', () => {
  it('splits two frames sent in one chunk (the case @medplum/hl7 4.5.2 merges into one message)', () => {
    const d = new MllpDecoder();
    expect(texts(d.push(Buffer.concat([frame('MSH|1\rPID|||A'), frame('MSH|2\rPID|||B')])))).toEqual([
      'MSH|1\rPID|||A',
      'MSH|2\rPID|||B',
    ]);
  });

  it('joins a frame cut anywhere, between FS and CR included, and ignores bytes outside frames', () => {
    const d = new MllpDecoder();
    const wire = Buffer.concat([Buffer.from('\r\nnoise'), frame('MSH|é\x1cx'), Buffer.from('\n')]);
    const out: string[] = [];
    for (let i = 0; i < wire.length; i++) out.push(...texts(d.push(wire.subarray(i, i + 1))));
    expect(out).toEqual(['MSH|é\x1cx']);
    expect(d.pending).toBe(false);
  });

  it('refuses a frame longer than the limit and recovers for the next', () => {
    const d = new MllpDecoder(10);
    const events = d.push(Buffer.concat([frame('MSH|0123456789'), frame('MSH|ok')]));
    expect(events).toEqual([
      {
        type: 'error',
        problem: {
          at: { segment: 'MSH', sequence: 1 },
          code: 207,
          text: 'the message is longer than 10 bytes, the most taken',
        },
      },
      { type: 'frame', text: 'MSH|ok' },
    ]);
  });

  it('any cutting of any frames gives back the same messages (property)', () => {
    const message = fc.string({ minLength: 1, maxLength: 40 }).map((s) => s.replace(/[\x0b\x1c]/g, '.'));
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1 }),
        (messages, cuts) => {
          const wire = Buffer.concat(messages.map(frame));
          const d = new MllpDecoder();
          const out: string[] = [];
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const n = cuts[i % cuts.length]!;
            out.push(...texts(d.push(wire.subarray(at, at + n))));
            at += n;
          }
          expect(out).toEqual(messages);
        },
      ),
    );
    expect([VT, FS]).toEqual([0x0b, 0x1c]);
  });
});

describe('MLLP decoder, pinned by a mutation run', () => {
  it('a frame cut off by the next start block in a later chunk: an error, then the new frame alone (never merged)', () => {
    const d = new MllpDecoder();
    const first = d.push(Buffer.from('\x0bMSH|1\rPID|||PATIENT-A\rOBX|1'));
    expect(first).toEqual([]);
    expect(d.pending).toBe(true);
    const events = d.push(Buffer.concat([Buffer.from('|more of A'), frame('MSH|2\rPID|||PATIENT-B')]));
    expect(events).toEqual([
      {
        type: 'error',
        problem: {
          at: { segment: 'MSH', sequence: 1 },
          code: 100,
          text: 'a frame started before the previous one ended; the previous one is dropped',
        },
      },
      { type: 'frame', text: 'MSH|2\rPID|||PATIENT-B' },
    ]);
    expect(d.pending).toBe(false);
  });

  it('reads a frame many times its first buffer pushed in one chunk whole (crs replay pushes a framed file at once)', () => {
    const d = new MllpDecoder();
    const long = `MSH|${'OBX|1|NM|x||1\r'.repeat(3000)}`; // about 45 KB: the buffer must grow more than once
    expect(texts(d.push(Buffer.concat([frame(long), frame('MSH|next')])))).toEqual([long, 'MSH|next']);
  });

  it('lets a large frame go once it is read: a connection that sent one 1 MiB message does not keep holding it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const d = new MllpDecoder();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const big = `MSH|${'X'.repeat(1024 * 1024 - 10)}`;
    d.push(Buffer.from([VT]));
    for (let at = 0; at < big.length; at += 1024) d.push(Buffer.from(big.slice(at, at + 1024)));
    expect(texts(d.push(Buffer.from([FS, 0x0d])))).toEqual([big]);
    // Buffers' memory is given back after the collection that frees them: collect, let it settle, collect again.
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(256 * 1024);
    expect(texts(d.push(frame('MSH|next')))).toEqual(['MSH|next']);
  });

  it('keeps an FS inside a message (not followed by CR) once, as data, when the frame comes in one chunk', () => {
    const d = new MllpDecoder();
    expect(texts(d.push(Buffer.concat([frame('MSH|a\x1cb\x1c\x1cc'), frame('MSH|next')])))).toEqual([
      'MSH|a\x1cb\x1c\x1cc',
      'MSH|next',
    ]);
  });

  it('takes a frame of exactly the limit, and refuses one byte more (the limit counts bytes, not characters)', () => {
    const d = new MllpDecoder(10);
    expect(texts(d.push(frame('MSH|012345')))).toEqual(['MSH|012345']);
    expect(texts(d.push(frame('MSH|01234é')))).toEqual([]);
    expect(texts(d.push(frame('MSH|0123é')))).toEqual(['MSH|0123é']);
  });

  it('keeps no reference to a chunk once pushed: a reader that reuses its buffer loses nothing', () => {
    const d = new MllpDecoder();
    const buffer = Buffer.from('\x0bMSH|first half|');
    expect(d.push(buffer)).toEqual([]);
    buffer.fill('X');
    expect(texts(d.push(Buffer.from('second half\x1c\r')))).toEqual(['MSH|first half|second half']);
  });

  it('holds a frame sent a byte at a time in about its own size, not a hundred times it', () => {
    // Until 2026-12-05 each piece read was a Buffer of its own: 1 MiB sent a byte at a time (an unauthenticated
    // sender can) held 107 MB of the server's heap, for each of up to 64 connections from one address.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const d = new MllpDecoder();
    gc();
    const before = process.memoryUsage();
    d.push(Buffer.from([VT]));
    const one = Buffer.from('A');
    let events = 0;
    for (let i = 0; i < 200_000; i++) events += d.push(one).length;
    expect(events).toBe(0);
    gc();
    const after = process.memoryUsage();
    const held = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
    expect(held).toBeLessThan(2 * 1024 * 1024); // was about 21 MB for these 200 KB
    expect(texts(d.push(Buffer.from([FS, 0x0d])))).toEqual(['A'.repeat(200_000)]);
  });
});
