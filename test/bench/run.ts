// `npm run bench`: every benchmark in turn; each prints its own figures. Run them on an otherwise idle machine.
import '../support/quiet-sdk.ts';

const benches = [
  './cli.bench.ts',
  './core.bench.ts',
  './aws.bench.ts',
  './http.bench.ts',
  './mllp.bench.ts',
  './hl7-bounds.bench.ts',
  './json-keys.bench.ts',
  './paging.bench.ts',
  './storage.bench.ts',
  './board.bench.ts',
];

for (const file of benches) {
  const mod = (await import(file)) as { run: () => Promise<void> };
  await mod.run();
}
