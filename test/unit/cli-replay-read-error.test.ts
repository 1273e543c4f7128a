// `crs replay` when its input fails part-way (a network drive gone, a pipe broken): the lines read before the error
// were graded, and their events are printed before the error is reported (2026-12-06, a mutation run of replay).
import { describe, expect, it, vi } from 'vitest';
import { crsMain } from '#test/support/cli.ts';

const FAILING = 'fails-after-one-line.ndjson';

vi.mock('#cli/io.ts', async (importOriginal) => {
  const io = await importOriginal<typeof import('#cli/io.ts')>();
  return {
    ...io,
    // This file alone: one good line, then the read fails.
    async *readLines(file: string) {
      if (file !== FAILING) return yield* io.readLines(file);
      yield JSON.stringify({
        messageId: 'a',
        patientId: 'C-1',
        observedAt: '2026-01-10T08:00:00Z',
        source: { deviceId: 'mon-1', kind: 'monitor' },
        vitals: { temperatureC: 38.5 },
      });
      throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    },
  };
});

describe('crs replay, a read that fails part-way', () => {
  it('prints the events of the lines read before the error, then reports it and exits 2', async () => {
    const r = await crsMain(['replay', FAILING]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read fails-after-one-line\.ndjson: EIO/);
    const events = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.map((e) => e.type)).toEqual(['assessment', 'notification']);
  });
});
