// The public vignettes POSTed one by one to the real `crs serve` give the same pages, field for field, as
// `crs replay` prints for the same messages (the CLI, run as a child process), for each scheme.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { CRS_BIN, REPO, idle, pageEvents, post, spawnServe, stop } from './embedded-support.ts';

interface Vignette {
  id: string;
  scheme: 'astct2019' | 'lee2014';
  messages: DeviceMessage[];
  expect: { notifications: unknown[] };
}

const vignettes = JSON.parse(
  readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8'),
) as Vignette[];
const dir = mkdtempSync(join(tmpdir(), 'crs-vignettes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const byPatient = (events: { patientId: string }[]) => {
  const out: Record<string, unknown[]> = {};
  for (const e of events) (out[e.patientId] ??= []).push(e);
  return out;
};

describe('vignettes over HTTP', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    it(`give the same pages as crs replay (${scheme})`, async () => {
      const set = vignettes.filter((v) => v.scheme === scheme);
      const messages = set.flatMap((v) => v.messages);
      const file = join(dir, `${scheme}.ndjson`);
      writeFileSync(file, messages.map((m) => JSON.stringify(m)).join('\n') + '\n');
      const replayed = pageEvents(
        execFileSync(process.execPath, [CRS_BIN, 'replay', file, '--scheme', scheme], {
          cwd: REPO,
          encoding: 'utf8',
        }).split('\n'),
      ).filter((e) => e.type === 'notification');
      expect(replayed.length).toBe(set.reduce((n, v) => n + v.expect.notifications.length, 0));

      const server = await spawnServe(join(dir, scheme), ['--scheme', scheme]);
      try {
        for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
        await idle(server);
      } finally {
        expect(await stop(server)).toBe(0);
      }
      const served = pageEvents(server.lines);
      expect(byPatient(served)).toEqual(byPatient(replayed));
      expect(served.length).toBe(replayed.length);
    });
  }
});
