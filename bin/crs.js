#!/usr/bin/env node
// The `crs` command. TypeScript runs through tsx's loader, so the CLI works right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../shared/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
