#!/usr/bin/env node
// The `crs` command. TypeScript runs through tsx's loader, so the CLI works right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('#cli/main.ts');
// The entry point is the one place that joins the runtime code and the CDK app: `crs serve --backend aws` gets the
// synthesized stack from here (the CDK library loads only for that command).
const synthesize = async (o) => (await import('#infra/synthesize.ts')).synthesizeStack(o);
process.exitCode = await main(process.argv.slice(2), { synthesize });
