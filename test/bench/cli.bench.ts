// Start time of the `crs` command: the median wall time of fresh processes of `crs --help` and of `crs replay` on a
// small file (test/fixtures/sample-timeline.ndjson, 18 messages), from spawn to exit, against the 300 ms budget.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const CRS = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));
const SMALL_FILE = fileURLToPath(new URL('../fixtures/sample-timeline.ndjson', import.meta.url));
const RUNS = 15;
const CLI_START_BUDGET_MS = 300;

function startMs(args: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CRS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0)
    throw new Error(`crs ${args.join(' ')} exited with ${r.status}: ${r.stderr.toString().slice(-2000)}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<void> {
  console.log(
    `\n== crs start time: median of ${RUNS} fresh processes (load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}) ==`,
  );
  startMs(['--help']); // builds dist/cli first if it is missing or stale: not counted
  for (const [name, args] of [
    ['crs --help', ['--help']],
    ['crs replay (18 messages)', ['replay', SMALL_FILE]],
  ] as const) {
    const times = Array.from({ length: RUNS }, () => startMs([...args]));
    const m = median(times);
    const verdict = m <= CLI_START_BUDGET_MS ? 'met' : 'NOT met';
    console.log(
      `${name}: median ${m.toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}); budget ${CLI_START_BUDGET_MS} ms ${verdict}`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
