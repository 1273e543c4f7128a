// The one ladder on the real clock (aws-paging.test.ts moves a test clock instead): the real `crs serve --backend
// aws` with a 6 s level from grade 3 and the schedule every 2 s. The ICU registrar is paged; the host is killed; the
// next level falls due while nothing runs; after the restart the ICU consultant is paged once, at its time: the
// timers and the schedule on real time, and no level paged twice across the kill.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import {
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teamPages,
  teardown,
  until,
  type AwsServe,
} from '../support/aws-serve.ts';
import { startEmulator, type Emulator } from '../support/moto.ts';

const SEVERE_S = 6;
const CONFIG = {
  holdMinutes: 1,
  paging: { timeoutMinutes: { severe: SEVERE_S / 60, other: 12 / 60 }, staleFeedMinutes: 15 / 60 },
};

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-realtime-'));
const configFile = join(dir, 'config.json');
writeFileSync(configFile, JSON.stringify(CONFIG));
const SERVE_ARGS = ['--config', configFile, '--schedule-interval', '2', '--visibility-timeout', '2', '--page-lines'];

let emulator: Emulator;
let before: AwsServe;
let server: AwsServe | undefined;
const prefix = runPrefix('rt');

beforeAll(async () => {
  emulator = await startEmulator();
  before = await spawnAwsServe(emulator.endpoint, prefix, SERVE_ARGS);
  server = before;
}, 120_000);
afterAll(async () => {
  if (server) await stop(server);
  if (emulator) await teardown(emulator.endpoint, prefix).catch(() => undefined);
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
const message = (
  n: number,
  secondsAgo: number,
  sections: Partial<DeviceMessage>,
  kind: 'monitor' | 'ehr' = 'monitor',
): DeviceMessage =>
  ({
    messageId: `rt-${n}`,
    patientId: 'K-1',
    observedAt: ago(secondsAgo),
    source: { deviceId: 'dev-K-1', kind },
    ...sections,
  }) as DeviceMessage;

/** ICU's pages of K-1's grade 3 page, across hosts, each send once (a send a kill cut short is made again). */
const icuPages = (hosts: AwsServe[]) => {
  const sends = new Set<string>();
  return hosts
    .flatMap((h) => teamPages(h.lines))
    .filter((p) => p.patientId === 'K-1' && p.team === 'icu' && p.grade === 3)
    .filter((p) => !sends.has(p.sendId) && sends.add(p.sendId));
};

describe('a ladder on the real clock, on the deployed shape on an emulator', () => {
  it('keeps the escalation timers through a killed host: the next level is paged once, at its time, after the restart', async () => {
    for (const m of [
      message(
        1,
        600,
        { enrolment: { therapy: 'car-t', infusedAt: ago(2 * 86_400), weightKg: 70, bed: 'B-K-1', ward: 'H4' } },
        'ehr',
      ),
      message(2, 60, { vitals: { temperatureC: 39 } }),
      message(3, 30, { oxygen: { device: 'non_rebreather' } }),
    ]) {
      expect((await post(before.url, m)).status).toBe(202);
    }
    const first = await until(before, 'the ICU registrar page', () => icuPages([before]).find((p) => p.level === 0));
    expect(await stop(before, 'SIGKILL')).toBeNull();
    const dueAt = Date.parse(first.sentAt) + SEVERE_S * 1000;
    await new Promise((r) => setTimeout(r, dueAt + 2000 - Date.now())); // the next level falls due while nothing runs
    server = await spawnAwsServe(emulator.endpoint, prefix, SERVE_ARGS);
    const next = await until(server, 'the ICU consultant page after the restart', () =>
      icuPages([before, server!]).find((p) => p.pageId === first.pageId && p.level === 1),
    );
    expect(next).toMatchObject({ role: 'ICU consultant', reason: 'escalated' });
    expect(Date.parse(next.sentAt)).toBeGreaterThanOrEqual(dueAt); // at its time, not before
    await settle(server, 0); // whatever the old timers and the schedule's catch-up did is printed by now
    const all = icuPages([before, server]).filter((p) => p.pageId === first.pageId);
    const steps = all.map((p) => `L${p.level} R${p.round}`);
    expect(new Set(steps).size, JSON.stringify(all.map((p) => [p.sendId, p.reason, p.sentAt]))).toBe(steps.length); // no level paged twice, across the kill
    expect(steps.slice(0, 2)).toEqual(['L0 R0', 'L1 R0']);
  }, 180_000);
});
