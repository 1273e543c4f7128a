import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedSynthesis } from '#hosts/aws-emulator/synthesis-cache.ts';
import type { Synthesized, SynthOptions } from '#hosts/aws-emulator/template.ts';

const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/crs-synth/', import.meta.url));
mkdirSync(CACHE_DIR, { recursive: true });
const before = new Set(readdirSync(CACHE_DIR));
afterAll(() => {
  for (const f of readdirSync(CACHE_DIR)) if (!before.has(f)) rmSync(join(CACHE_DIR, f), { force: true });
});

/** A stand-in for the CDK's synthesis that counts its calls and says which call made each result. */
function counting() {
  const calls: SynthOptions[] = [];
  const synthesize = async (o: SynthOptions & { paging: unknown }): Promise<Synthesized> => {
    calls.push(o);
    return {
      template: { Resources: { Made: { Type: 'Test::Call', Properties: { call: calls.length } } } },
      functions: { ingest: 'I', grade: 'G', notify: 'N', escalate: 'E', ack: 'A' },
      files: { ingest: {}, grade: {}, notify: {}, escalate: {}, ack: {} },
    };
  };
  return { calls, synthesize };
}

describe('the synthesized stack, cached for the emulator host', () => {
  // Options no earlier run has used, so that every run starts with nothing cached for them.
  const paging = { teams: {}, run: randomUUID() };

  it('synthesizes once for the same options, also in a later process (the result is on disk)', async () => {
    const first = counting();
    const one = await cachedSynthesis(first.synthesize)({ paging });
    const again = await cachedSynthesis(first.synthesize)({ paging });
    expect(first.calls).toHaveLength(1);
    expect(again).toEqual(one);
    // A new wrapper (as each `crs serve` process makes) reads the file the first one wrote.
    const later = counting();
    expect(await cachedSynthesis(later.synthesize)({ paging })).toEqual(one);
    expect(later.calls).toHaveLength(0);
  });

  it('takes the same options written in another order for the same synthesis', async () => {
    const s = counting();
    const cached = cachedSynthesis(s.synthesize);
    const one = await cached({ paging, gradingOverrides: { holdMinutes: 1, paging: { staleFeedMinutes: 5 } } });
    const same = await cached({ gradingOverrides: { paging: { staleFeedMinutes: 5 }, holdMinutes: 1 }, paging });
    expect(same).toEqual(one);
    expect(s.calls).toHaveLength(1);
  });

  it('synthesizes again for other options', async () => {
    const s = counting();
    const cached = cachedSynthesis(s.synthesize);
    await cached({ paging });
    await cached({ paging, hl7Zone: '+01:00' });
    await cached({ paging, gradingOverrides: { feverThresholdC: 38.3 } });
    expect(s.calls.map((o) => Object.keys(o).sort())).toEqual([
      ['hl7Zone', 'paging'],
      ['gradingOverrides', 'paging'],
    ]);
  });
});
