// `crs board-link [--data DIR]` (2026-12-06): the on-call board's link with its access key, on standard output. crs
// serve prints it only when its standard error is a terminal: under a supervisor that is a log (the journal), and
// the key opens every patient's record (it was printed there at every start until 2026-12-06).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BOARD_KEY_FILE } from '#hosts/embedded/board-key.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { inline, parseFlags } from './flags.ts';
import { runningServe } from './serve-client.ts';

export const BOARD_LINK_USAGE = `  crs board-link [--data DIR]
      the on-call board's link with its access key (DIR/board.key), at the address of the crs serve running on DIR
      (its --public-url when given), on standard output; crs serve prints it only to a terminal, never to a log.
      Run it as the server's user (the key is owner-only). Exit 1: no crs serve runs on DIR; 2: DIR has no key
`;

/** The flags `crs board-link` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const BOARD_LINK_OPTIONS = { data: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

export async function boardLinkCommand(args: string[]): Promise<number> {
  try {
    const { values: v } = parseFlags({
      args,
      options: BOARD_LINK_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${BOARD_LINK_USAGE}`);
      return 0;
    }
    const dir = resolve(v.data ?? DEFAULT_DATA_DIR);
    const file = join(dir, BOARD_KEY_FILE);
    try {
      readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      process.stderr.write(
        code === 'ENOENT' || code === 'ENOTDIR'
          ? `crs board-link: no board key in ${dir} (no ${BOARD_KEY_FILE}): give the data directory of crs serve with --data DIR\n`
          : `crs board-link: cannot read ${file} (${code}): run this as the user crs serve runs as (the key is owner-only)\n`,
      );
      return 2;
    }
    const running = await runningServe(dir);
    if (running === undefined) {
      process.stderr.write(
        `crs board-link: no crs serve is running on ${dir}: the link is at its address, known once it runs\n`,
      );
      return 1;
    }
    process.stdout.write(`${running.board}?key=${running.key}\n`);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs board-link: ${inline(e.message)}\nusage:\n${BOARD_LINK_USAGE}`);
      return 2;
    }
    process.stderr.write(`crs board-link: ${e.message}\n`);
    return 1;
  }
}
