// A stream for a server's NDJSON output (`pageStream`) that collects its complete lines into `lines`.
import { PassThrough } from 'node:stream';

export function lineStream(lines: string[]): PassThrough {
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  let buffer = '';
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  return stream;
}
