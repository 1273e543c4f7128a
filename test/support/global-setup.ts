// Runs once before the tests (each project of the config runs it; the first does the work).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN_DIR_PREFIX = 'crs-test-run-';

/**
 * /dev/shm when this process can write there and has 2 GiB free (a container's is often 64 MB; a whole run here
 * held at most 60 MB there at once, 2026-12-07), else `fallback`.
 */
function memoryOr(fallback: string): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    const fs = statfsSync('/dev/shm');
    return fs.bavail * fs.bsize >= 2 ** 31 ? '/dev/shm' : fallback;
  } catch {
    return fallback;
  }
}

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
  // In memory (/dev/shm, a tmpfs on Linux) unless TMPDIR names a place: the servers' SQLite files commit with
  // synchronous=FULL, and on a disk each commit waits for its sync. A process killed mid-write (the crash tests) leaves
  // what a disk would: the kernel's page cache outlives the process either way; only a power loss would differ.
  const runDir = mkdtempSync(join(process.env.TMPDIR ? tmpdir() : memoryOr(tmpdir()), RUN_DIR_PREFIX));
  process.env.TMPDIR = runDir;
  // For what the run's files share through its directory while it lasts (test/support/moto.ts: one moto loaded once).
  process.env.CRS_TEST_RUN_DIR = runDir;
  process.env.CRS_TEST_RUN_PID = String(process.pid);
  return () => rmSync(runDir, { recursive: true, force: true });
}
