// `crs replay FILE [--scheme astct2019|lee2014] [--config FILE] [--escalations [--until TIME]]`:
// NDJSON in, NDJSON events out.
import { EscalatingReplay } from '#app/replay-escalations.ts';
import { Replay } from '#app/replay.ts';
import type { GradingConfig } from '#domain/config.ts';
import { NdjsonWriter, readLines } from './io.ts';

export const EXIT = { ok: 0, rejected: 1, usage: 2 } as const;

export interface ReplayOptions {
  /** Run pages, ladders, acknowledgements, silences and alerts in simulated time. */
  escalations?: boolean;
  /** With escalations: let simulated time run on to this instant after the last line. */
  until?: number;
}

export async function replayCommand(file: string, config: GradingConfig, options: ReplayOptions = {}): Promise<number> {
  const plain = options.escalations ? undefined : new Replay(config);
  const escalating = options.escalations ? new EscalatingReplay(config) : undefined;
  const out = new NdjsonWriter(process.stdout);
  let lineNo = 0;
  let refused = 0;
  try {
    for await (const text of readLines(file)) {
      lineNo++;
      const events = plain ? plain.line(text, lineNo) : await escalating!.line(text, lineNo);
      for (const event of events) {
        if (event.type === 'rejected' || event.type === 'control-refused') refused++;
        await out.write(event);
      }
    }
    if (escalating) for (const event of await escalating.finish(options.until)) await out.write(event);
    await out.flush();
  } catch (err) {
    await out.flush().catch(() => undefined);
    process.stderr.write(`crs replay: cannot read ${file}: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  return refused > 0 ? EXIT.rejected : EXIT.ok;
}
