#!/usr/bin/env node
// The `crs` command: runs the build in dist/cli/ (see bin/build-cli.js). When the build is missing, or any file it
// was built from has changed since, it is rebuilt first, so running from source never runs stale code.
import { buildCli, isFresh } from './build-cli.js';

// The lockfile pins AWS SDK releases that run on Node.js 20 (docs/aws.md, "Node.js versions"); their warning that
// releases after the first week of January 2027 need Node.js 22 would come before every AWS command's own output.
// AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false shows it again.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// `crs replay FILE | head`: a reader that stops early ends a command that only prints, quietly, as it ends `cat`.
// (The servers are left alone: their stdout is a page lane, which retries and logs instead.) The process's, so here.
// `crs replay` with the status of an I/O error, 2 (message-contract.md: 0 only when every line was accepted), and so
// for any other write error (a full disk) in one line: until 2026-12-07 it exited 0 when the reader stopped, a
// replay whose first line was refused too, and 1 (a refused line's status) with a stack trace when the disk was full.
const [command] = process.argv.slice(2);
if (command !== 'serve' && command !== 'start') {
  process.stdout.on('error', (err) => {
    if (command === 'replay') {
      if (err.code !== 'EPIPE') process.stderr.write(`crs replay: cannot write standard output: ${err.message}\n`);
      process.exit(2);
    }
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

if (!isFresh()) await buildCli();
const { main, cachedSynthesis } = await import('../dist/cli/main.js');
// The entry point is the one place that joins the CLI and the CDK app: `crs serve --backend aws` gets the synthesized
// stack from here, so nothing in shared/ imports infra/. The CDK app runs from its TypeScript through tsx, as
// `npm run synth` does, and only when the cache has no synthesis of the sources as they are
// (shared/hosts/aws-emulator/synthesis-cache.ts): once registered, tsx's loader sees every later import.
async function synthesize(options) {
  const { register } = await import('tsx/esm/api');
  register();
  return (await import('../infra/synthesize.ts')).synthesizeStack(options);
}
process.exitCode = await main(process.argv.slice(2), { synthesize: cachedSynthesis(synthesize) });
