// `crs simulate --format hl7v2 --mllp HOST:PORT` (the real command) against the real `crs serve --mllp-port`: the
// monitors' readings arrive as PCD-01 over MLLP, the rest as JSON, and the course pages as it does over JSON.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CRS_BIN, INGEST_TOKEN, REPO, idle, pageEvents, spawnServe, stop } from './embedded-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-sim-hl7-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('crs simulate --format hl7v2', () => {
  it('plays the crs course over MLLP and pages its escalations', async () => {
    const server = await spawnServe(join(dir, 'serve'), ['--mllp-port', '0']);
    const port = server.stderr().match(/MLLP on [\d.]+:(\d+)/)?.[1];
    expect(port).toBeDefined();
    try {
      const run = spawnSync(
        process.execPath,
        [
          CRS_BIN,
          'simulate',
          '--url',
          server.url,
          '--token',
          INGEST_TOKEN,
          '--format',
          'hl7v2',
          '--mllp',
          `127.0.0.1:${port}`,
          '--courses',
          'crs',
          '--speed',
          '100000',
        ],
        {
          cwd: REPO,
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      expect(run.stderr).toMatch(/courses done: (\d+) of \1 messages accepted/);
      expect(run.status).toBe(0);
      await idle(server);
    } finally {
      expect(await stop(server)).toBe(0);
    }
    const pages = pageEvents(server.lines).filter((e) => e.type === 'notification') as unknown as {
      condition: string;
      kind: string;
      toGrade: number;
      causedBy: string;
    }[];
    // The fever that opened the course came from a monitor, so over MLLP: its id is the HL7 one.
    expect(pages[0]!.causedBy).toMatch(/^hl7v2:SIM\//);
    expect(pages.map((p) => `${p.condition} ${p.kind} ${p.toGrade}`).slice(0, 3)).toEqual([
      'crs escalation 1',
      'crs escalation 2',
      'crs escalation 3',
    ]);
  }, 90_000);
});
