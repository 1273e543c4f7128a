// Runs `crs replay FILE` in this process (the CLI's own code path) and reports peak memory on stderr.
import { main } from '#cli/main.ts';

const code = await main(['replay', process.argv[2]!]);
process.stderr.write(`${JSON.stringify({ exitCode: code, maxRssKb: process.resourceUsage().maxRSS })}\n`);
