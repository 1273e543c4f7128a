// Runs once before the tests (each project of the config runs it; the first does the work).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN_DIR_PREFIX = 'crs-test-run-';

export default function setup(): () => void {
  if (basename(tmpdir()).startsWith(RUN_DIR_PREFIX)) return () => {};

  // `crs --help` rebuilds the CLI (dist/cli) if a source changed, so that the many `crs` processes the tests start in
  // parallel find it built and never rebuild it at the same time.
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../bin/crs.js', import.meta.url)), '--help'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the crs command does not build or start:\n${r.stderr}`);

  // Every temporary file of the run in one directory of its own, removed when the run ends: the tests' directories,
  // the cloud assemblies the CDK writes to the system's temporary directory when given no outdir (a `cdk.out*`
  // directory a synthesis), the files of the `crs` processes and browsers the tests start. Left in /tmp, they were
  // about 140 directories (90 MB) a run. The workers and every process they start inherit TMPDIR.
  const runDir = mkdtempSync(join(tmpdir(), RUN_DIR_PREFIX));
  process.env.TMPDIR = runDir;
  return () => rmSync(runDir, { recursive: true, force: true });
}
