// The host's own clock stepping while the real `crs serve` runs (an NTP step after a bad RTC, a VM resumed, an
// operator fixing the time by hand): the server runs on the test clock (CRS_TEST_CLOCK=1), whose wall clock a test
// steps with POST /local/clock?stepMs=N while its monotonic clock goes on. Escalations, silences and the stale-feed
// alert keep the time they had left by the monotonic clock; the step is said on standard error and raised by the
// delivery watch. This test's own clock is not stepped: it measures what the phone would see.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { enrol } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import { post, spawnServe, stop, type ServeProcess, pageLines, pagingConfig } from './embedded-support.ts';

const root = mkdtempSync(join(tmpdir(), 'crs-clock-it-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const HOUR = 3_600_000;

const config = (name: string, paging: object) => pagingConfig(root, name, paging);

/** When (this process's monotonic clock, ms) each page line arrived, by sendId. */
function arrivals(s: ServeProcess): Map<string, number> {
  const at = new Map<string, number>();
  s.onLine = (line, t) => {
    if (line.includes('"type":"page"')) at.set((JSON.parse(line) as PageEvent).sendId, Number(t / 1_000_000n));
  };
  return at;
}

const monotonic = () => Number(process.hrtime.bigint() / 1_000_000n);

async function accept(s: ServeProcess, ...messages: DeviceMessage[]): Promise<void> {
  for (const m of messages) expect((await post(s.url, m)).status).toBe(202);
}

async function step(s: ServeProcess, ms: number): Promise<void> {
  expect((await fetch(`${s.url}/local/clock?stepMs=${ms}`, { method: 'POST' })).status).toBe(200);
}

async function deliveryAlerts(s: ServeProcess): Promise<{ key: string; text: string }[]> {
  const res = await fetch(`${s.url}/api/health`, { headers: { authorization: `Bearer ${s.boardKey}` } });
  return ((await res.json()) as { deliveryAlerts: { key: string; text: string }[] }).deliveryAlerts;
}

/** A reading observed now (by this process's clock, which is not stepped). */
const reading = (patientId: string, id: string, extra: Partial<DeviceMessage> = {}): DeviceMessage => ({
  messageId: id,
  patientId,
  observedAt: new Date().toISOString(),
  source: { deviceId: `mon-${patientId}`, kind: 'monitor' },
  vitals: { heartRate: 80 },
  ...extra,
});

/** Grade 3 CRS now: fever and a vasopressor (the ICU's ladder: registrar, then consultant). */
async function grade3(s: ServeProcess, patientId: string): Promise<void> {
  await accept(
    s,
    { ...enrol(patientId), observedAt: new Date(Date.now() - 60_000).toISOString() },
    reading(patientId, `${patientId}-fever`, { vitals: { temperatureC: 39.1, systolicBP: 118 } }),
    reading(patientId, `${patientId}-pressor`, {
      vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
    }),
  );
}

// Concurrent: each test runs its own server and waits out real time (a minute for the silence), not the CPU.
describe.concurrent('crs serve when the host clock steps', () => {
  // Grade 3: ten seconds a level. No stale-feed alert in these tests.
  const ladder = { timeoutMinutes: { severe: 1 / 6, other: 0.5 }, staleFeedMinutes: LONGEST_SETTING_MINUTES };

  for (const [name, stepMs] of [
    ['back by an hour', -HOUR],
    ['forward by six hours', 6 * HOUR],
  ] as const) {
    it(`a step ${name}: the next level goes at its time by the monotonic clock, and the operator is told`, async () => {
      const server = await spawnServe(
        join(root, `ladder${stepMs}`),
        ['--config', config(`ladder${stepMs}`, ladder), '--page-lines'],
        { CRS_TEST_CLOCK: '1' },
      );
      const at = arrivals(server);
      try {
        const before = monotonic(); // the page opens after this
        await grade3(server, 'K1');
        const registrar = await until(
          () => pageLines(server).find((p) => p.role === 'ICU registrar'),
          'the ICU registrar paged',
        );
        await step(server, stepMs);
        const consultant = await until(
          () => pageLines(server).find((p) => p.role === 'ICU consultant'),
          'the ICU consultant paged',
          40_000,
        );
        // Ten seconds after the page opened, as the phones see it: not an hour late, not at once with the step. Until
        // 2026-12-06 counted from the registrar's line, which a busy machine can print or read seconds late; now from
        // before the page opened (ten seconds at the least, to the clocks' milliseconds), and as long again for the
        // posts and a busy machine (an hour late is what would fail: the wait above gives up at 40 s).
        const waited = at.get(consultant.sendId)! - before;
        expect(waited).toBeGreaterThan(9_900);
        expect(waited).toBeLessThan(25_000);
        // Its stored due time is in the clock as it is now: the registrar's, moved by the step (as the server measured
        // it, to its clocks' milliseconds).
        expect(Date.parse(consultant.sentAt)).toBeGreaterThanOrEqual(Date.parse(registrar.escalatesAt!) + stepMs - 100);
        // One level at a time: the ladder did not run to its end.
        expect(
          pageLines(server)
            .filter((p) => p.team === 'icu')
            .map((p) => p.role),
        ).toEqual(['ICU registrar', 'ICU consultant']);
        expect(server.stderr()).toMatch(
          new RegExp(
            `clock: the system clock stepped ${stepMs < 0 ? 'back' : 'forward'} by ${stepMs < 0 ? '1 h' : '6 h'}`,
          ),
        );
        const alerts = await deliveryAlerts(server);
        expect(alerts).toContainEqual(expect.objectContaining({ key: 'clock' }));
        expect(server.stderr()).toContain('delivery watch: ALERT the system clock stepped');
      } finally {
        await stop(server);
      }
    }, 90_000);
  }

  it('a step back by an hour: a silence ends after the minute it had left, and the page it held goes then', async () => {
    const server = await spawnServe(
      join(root, 'silence'),
      [
        '--config',
        config('silence', { timeoutMinutes: { severe: 5, other: 5 }, staleFeedMinutes: LONGEST_SETTING_MINUTES }),
        '--page-lines',
      ],
      { CRS_TEST_CLOCK: '1' },
    );
    const at = arrivals(server);
    try {
      await accept(server, { ...enrol('S1'), observedAt: new Date(Date.now() - HOUR - 60_000).toISOString() });
      // Once the enrolment is graded (a silence is of a patient the server knows).
      await until(
        async () =>
          (
            await fetch(`${server.url}/api/silences`, {
              method: 'POST',
              headers: { authorization: `Bearer ${server.boardKey}`, 'content-type': 'application/json' },
              body: JSON.stringify({ patientId: 'S1', minutes: 1, reason: 'transport to MRI', by: 'Nurse Bea' }),
            })
          ).status === 201,
        'the silence taken',
      );
      const start = monotonic();
      await step(server, -HOUR);
      // Grade 2 CRS (held: below grade 4) while the silence is in force, from monitors whose clocks agree with
      // the server's as it is now (it was an hour ahead: NTP stepped it back).
      const behind = new Date(Date.now() - HOUR).toISOString();
      await accept(
        server,
        reading('S1', 'S1-fever', { observedAt: behind, vitals: { temperatureC: 39.2 } }),
        reading('S1', 'S1-o2', { observedAt: behind, oxygen: { device: 'nasal_cannula', flowLpm: 2 } }),
      );
      const released = await until(
        () => pageLines(server).find((p) => p.patientId === 'S1' && p.reason === 'released'),
        () => `the held page released:\n${server.lines.join('\n')}\n${server.stderr()}`,
        90_000,
      );
      const waited = at.get(released.sendId)! - start;
      expect(waited).toBeGreaterThan(55_000);
      expect(waited).toBeLessThan(70_000);
    } finally {
      await stop(server);
    }
  }, 120_000);

  for (const [name, stepMs] of [
    ['back by an hour', -HOUR],
    ['forward by six hours', 6 * HOUR],
  ] as const) {
    it(`a step ${name}: a quiet monitor's no-data alert goes when it has been quiet long enough, no sooner or later`, async () => {
      const server = await spawnServe(
        join(root, `stale${stepMs}`),
        ['--config', config(`stale${stepMs}`, { staleFeedMinutes: 0.25 }), '--page-lines'], // 15 seconds
        { CRS_TEST_CLOCK: '1' },
      );
      const at = arrivals(server);
      try {
        // From before the reading (until 2026-12-06 after the posts, which a busy machine can take seconds over).
        const sent = monotonic();
        const last = reading('Q1', 'q-1');
        await accept(server, { ...enrol('Q1'), observedAt: last.observedAt }, last);
        await step(server, stepMs);
        const alert = await until(
          () => pageLines(server).find((p) => p.subject === 'stale-feed'),
          'the stale-feed alert',
          45_000,
        );
        const waited = at.get(alert.sendId)! - sent;
        expect(waited).toBeGreaterThan(14_000);
        // 15 s, a sweep (3.75 s), the posts and a busy machine (an hour late is what would fail: the wait gives up at
        // 45 s).
        expect(waited).toBeLessThan(35_000);
      } finally {
        await stop(server);
      }
    }, 90_000);
  }
});
