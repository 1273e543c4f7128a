// A patient who moves wards, on the deployed shape on an emulator (the real `crs serve --backend aws`, its team
// queues subscribed with the stack's filter policies): hematology's and the bedside nurses' endpoints are limited to
// ward H4, the other teams' take every ward. What each ward's endpoints receive is what docs/paging.md says ("A
// patient who moves wards"): a grade change's ladder keeps the ward the grade changed in, so it goes on reaching
// the endpoints it was first sent to after the patient moved; a new grade change reaches the ward the patient is on
// now; a ward's "no data" alert reaches that ward's endpoints.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import { PAGE_TEAMS } from '#domain/paging.ts';
import {
  health,
  HostClock,
  post,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teamPages,
  teardown,
  until,
  type AwsServe,
} from '#test/support/aws-serve.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

const SEVERE_S = 30;
const STALE_S = 300;
const dir = mkdtempSync(join(tmpdir(), 'crs-aws-wards-'));
const configFile = join(dir, 'config.json');
const pagingFile = join(dir, 'paging.json');
writeFileSync(
  configFile,
  JSON.stringify({ paging: { timeoutMinutes: { severe: SEVERE_S / 60, other: 1 }, staleFeedMinutes: STALE_S / 60 } }),
);
const H4_ONLY = new Set(['hematology', 'bedside']);
writeFileSync(
  pagingFile,
  JSON.stringify({
    teams: Object.fromEntries(
      PAGE_TEAMS.map((t) => [
        t,
        { https: [`https://${t}.pages.invalid/`], ...(H4_ONLY.has(t) ? { wards: ['H4'] } : {}) },
      ]),
    ),
  }),
);

let emulator: Emulator;
let server: AwsServe;
const prefix = runPrefix('wrd');

beforeAll(async () => {
  emulator = await startEmulator();
  server = await spawnAwsServe(
    emulator.endpoint,
    prefix,
    [
      '--config',
      configFile,
      '--paging',
      pagingFile,
      '--schedule-interval',
      '3600',
      '--visibility-timeout',
      '2',
      '--page-lines',
    ],
    { CRS_TEST_CLOCK: '1' },
  );
  await settle(server, 0);
}, 120_000);
afterAll(async () => {
  if (server) await stop(server);
  if (emulator) await teardown(emulator.endpoint, prefix).catch(() => undefined);
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const { ago, at, message } = new HostClock(() => server, 'wd');
const enrol = (patientId: string, secondsAgo: number, ward = 'H4') =>
  message(
    patientId,
    secondsAgo,
    { enrolment: { therapy: 'car-t', infusedAt: ago(2 * 86_400), weightKg: 70, bed: `${ward}-${patientId}`, ward } },
    'ehr',
  );
/** An ADT A02 transfer as the contract carries it: the EHR's enrolment with the new bed and ward. */
const transfer = (patientId: string, secondsAgo: number, ward: string) =>
  message(patientId, secondsAgo, { enrolment: { bed: `${ward}-${patientId}`, ward } }, 'ehr');

async function send(...messages: DeviceMessage[]): Promise<void> {
  for (const m of messages) expect((await post(server.url, m)).status).toBe(202);
}
/** What a team's endpoints received for a patient (each send once). */
const received = (patientId: string, team: string) => {
  const sends = new Set<string>();
  return teamPages(server.lines)
    .filter((p) => p.patientId === patientId && p.team === team)
    .filter((p) => !sends.has(p.sendId) && sends.add(p.sendId));
};
const said = (pages: ReturnType<typeof received>) =>
  pages.map((p) => `${p.subject} ${p.kind} ${p.grade} L${p.level} R${p.round} ${p.reason}`);

describe('a patient who moves wards, on the deployed shape: what each ward-limited endpoint receives', () => {
  it("keeps an open ladder with the ward it was first paged to, and pages a new grade change to the patient's ward now", async () => {
    await send(
      enrol('M-1', 120),
      message('M-1', 60, { vitals: { temperatureC: 39 } }),
      message('M-1', 50, { oxygen: { device: 'non_rebreather' } }),
    );
    const first = await until(server, 'the CRS 3 page to hematology (H4)', () =>
      received('M-1', 'hematology').find((p) => p.grade === 3),
    );
    // Moved to H5 (an A02), then nobody answers: the ladder goes on to H4's hematology endpoints, as it began.
    await send(transfer('M-1', 40, 'H5'));
    await at(Date.parse(first.escalatesAt!));
    await until(server, 'the escalation', () => received('M-1', 'icu').find((p) => p.grade === 3 && p.level === 1));
    expect(said(received('M-1', 'hematology'))).toEqual([
      'crs escalation 1 L0 R0 triggered',
      'crs escalation 3 L0 R0 triggered',
      'crs escalation 3 L1 R0 escalated',
    ]);
    // A new grade change in H5: the ICU (every ward) is paged; hematology, whose endpoints are all limited to H4,
    // is paged to nobody (SNS takes the page, no subscription matches it: docs/paging.md, owner decision), and its
    // H4 endpoints are not told the grade 3 page they had is superseded.
    await send(message('M-1', 0, { oxygen: { device: 'bipap' } }));
    await until(server, 'the CRS 4 page to the ICU', () => received('M-1', 'icu').find((p) => p.grade === 4));
    await settle(server, 0);
    expect(said(received('M-1', 'hematology'))).toEqual([
      'crs escalation 1 L0 R0 triggered',
      'crs escalation 3 L0 R0 triggered',
      'crs escalation 3 L1 R0 escalated',
    ]);
    // The host reports any delivery a filter policy should have kept out: none.
    expect(server.stderr()).not.toMatch(/although its filter policy does not match/);
  }, 120_000);

  it("pages a ward's no-data alert (its monitors quiet together) to that ward's endpoints, and its all-clear", async () => {
    const patients = ['Q-1', 'Q-2', 'Q-3'];
    await send(...patients.map((p) => enrol(p, STALE_S + 60)));
    await at((await health(server)).now);
    const alert = await until(server, "the ward's alert to the bedside nurses of H4", () =>
      received('ward H4', 'bedside').find((p) => p.kind === 'alert'),
    );
    expect(alert.summary).toMatch(
      /^NO DATA, ward H4: 3 patients' monitors never sent, enrolled from .* \(Q-1, bed H4-Q-1; Q-2/,
    );
    // Q-1 first: who came back is kept on the ward alert's item (2026-12-07), and its all-clear, a sweep later, names
    // all three with when (beds and ids only).
    await send(message('Q-1', 0, { vitals: { heartRate: 80 } }));
    await at((await health(server)).now + 1000);
    expect(received('ward H4', 'bedside').filter((p) => p.kind === 'alert-cleared')).toEqual([]);
    await send(...patients.slice(1).map((p) => message(p, 0, { vitals: { heartRate: 80 } })));
    await at((await health(server)).now + 1000);
    const cleared = await until(server, 'the all-clear', () =>
      received('ward H4', 'bedside').find((p) => p.kind === 'alert-cleared'),
    );
    expect(cleared.summary).toMatch(
      /\(resumed: Q-1, bed H4-Q-1 at [^;]+; Q-2, bed H4-Q-2 at [^;]+; Q-3, bed H4-Q-3 at [^;]+\)$/,
    );
  }, 120_000);
});
