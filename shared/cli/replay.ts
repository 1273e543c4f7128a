// `crs replay FILE [--scheme astct2019|lee2014] [--config FILE]`: NDJSON in, NDJSON events out.
import { Replay } from '../app/replay.ts';
import type { GradingConfig } from '../domain/config.ts';
import { NdjsonWriter, readLines } from './io.ts';

export const EXIT = { ok: 0, rejected: 1, usage: 2 } as const;

export async function replayCommand(file: string, config: GradingConfig): Promise<number> {
  const replay = new Replay(config);
  const out = new NdjsonWriter(process.stdout);
  let lineNo = 0;
  try {
    for await (const text of readLines(file)) {
      lineNo++;
      for (const event of replay.line(text, lineNo)) await out.write(event);
    }
    await out.flush();
  } catch (err) {
    await out.flush().catch(() => undefined);
    process.stderr.write(`crs replay: cannot read ${file}: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  return replay.rejected > 0 ? EXIT.rejected : EXIT.ok;
}
