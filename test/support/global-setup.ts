// Runs once before the tests: `crs --help`, which rebuilds the CLI (dist/cli) if a source changed, so that the many
// `crs` processes the tests start in parallel find it built and never rebuild it at the same time.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../bin/crs.js', import.meta.url)), '--help'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the crs command does not build or start:\n${r.stderr}`);
}
