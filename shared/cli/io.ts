// Small I/O helpers for the CLI: buffered NDJSON output that respects back-pressure, and line input.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';

export class NdjsonWriter {
  private buffer: string[] = [];
  private size = 0;

  constructor(
    private readonly out: Writable,
    private readonly flushAt = 64 * 1024,
  ) {}

  async write(value: unknown): Promise<void> {
    const line = `${JSON.stringify(value)}\n`;
    this.buffer.push(line);
    this.size += line.length;
    if (this.size >= this.flushAt) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = this.buffer.join('');
    this.buffer = [];
    this.size = 0;
    if (!this.out.write(chunk)) await new Promise<void>((resolve) => this.out.once('drain', resolve));
  }
}

/** Lines of a file, or of standard input for "-". Opening errors surface as a rejected promise. */
export async function* readLines(file: string): AsyncGenerator<string> {
  const input = file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8' });
  if (file !== '-') {
    await new Promise<void>((resolve, reject) => {
      input.once('open', () => resolve());
      input.once('error', reject);
    });
  }
  const rl = createInterface({ input, crlfDelay: Infinity });
  // A UTF-8 byte order mark (Notepad, PowerShell 5) opens the file: it is not part of the first line's JSON.
  let first = true;
  for await (const line of rl) {
    yield first && line.startsWith('\uFEFF') ? line.slice(1) : line;
    first = false;
  }
}
