// What the duplicate-key scan (shared/app/ingest.ts, duplicateKey) costs beside JSON.parse, on 1 MiB bodies: a batch
// of messages as devices send them, and shapes made to cost it most (one object of 100,000 keys, every key escaped,
// 100,000 small objects). Figures, not tests: docs/security.md quotes them. Run on an otherwise idle machine.
import { duplicateKey } from '#app/json-keys.ts';
import { msg } from '#test/support/messages.ts';

const MIB = 2 ** 20;
const fill = (item: (i: number) => string, open: string, close: string) => {
  const parts: string[] = [];
  let size = open.length + close.length;
  for (let i = 0; size < MIB; i++) {
    const p = item(i);
    parts.push(p);
    size += p.length + 1;
  }
  return `${open}${parts.join(',')}${close}`;
};

function cpuMs(f: () => unknown, runs = 20): number {
  f();
  const start = process.cpuUsage();
  for (let i = 0; i < runs; i++) f();
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000 / runs;
}

export async function run(): Promise<void> {
  const one = JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37, spo2: 95 } }));
  const bodies: Record<string, string> = {
    'a batch of messages': fill(() => one, '[', ']'),
    'one object of distinct keys': fill((i) => `"k${i}":${i}`, '{', '}'),
    'every key escaped (\\u0061...)': fill((i) => `"\\u0061${i}":0`, '{', '}'),
    'small objects, one key each': fill(() => '{"a":1}', '[', ']'),
    'strings of escaped quotes': fill(() => `{"a":"${'\\"'.repeat(100)}"}`, '[', ']'),
  };
  console.log('duplicate-key scan beside JSON.parse, CPU ms per 1 MiB body (mean of 20)');
  for (const [name, text] of Object.entries(bodies)) {
    if (duplicateKey(text) !== undefined) throw new Error(`${name}: a duplicate found where there is none`);
    const scan = cpuMs(() => duplicateKey(text));
    const parse = cpuMs(() => JSON.parse(text));
    console.log(
      `  ${name.padEnd(32)} ${(text.length / MIB).toFixed(2)} MiB  scan ${scan.toFixed(1)} ms  parse ${parse.toFixed(1)} ms`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
