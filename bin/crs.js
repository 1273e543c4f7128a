#!/usr/bin/env node
// The `crs` command: runs the build in dist/cli/ (see bin/build-cli.js). When the build is missing, or any file it
// was built from has changed since, it is rebuilt first, so running from source never runs stale code.
import { buildCli, isFresh } from './build-cli.js';

if (!isFresh()) await buildCli();
const { main } = await import('../dist/cli/main.js');
// The entry point is the one place that joins the CLI and the CDK app: `crs serve --backend aws` gets the synthesized
// stack from here (infra/synthesize.ts; the CDK library loads only for that command), so nothing in shared/ imports infra/.
const synthesize = async (o) => (await import('../dist/cli/synthesize.js')).synthesizeStack(o);
process.exitCode = await main(process.argv.slice(2), { synthesize });
