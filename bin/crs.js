#!/usr/bin/env node
// The `crs` command: runs the build in dist/cli/ (see bin/build-cli.js). When the build is missing, or any file it
// was built from has changed since, it is rebuilt first, so running from source never runs stale code.
import { readFileSync, statSync } from 'node:fs';

const ROOT = new URL('../', import.meta.url);

function isFresh() {
  try {
    const { startedAt, inputs } = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', ROOT), 'utf8'));
    return inputs.every((file) => statSync(new URL(file, ROOT)).mtimeMs < startedAt);
  } catch {
    return false; // no build yet, or an input was removed
  }
}

if (!isFresh()) await (await import('./build-cli.js')).buildCli();
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
