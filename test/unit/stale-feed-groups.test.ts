// Growth under control (issue 16 item 3): many feeds quiet at once page once per ward. The reproduction on `crs
// serve` over HTTP (one token, 20 batch requests, 2,000 patients: 15 minutes later the old server sent 2,000 "no
// data" pages, each with its ladder), and the rule (planStaleFeeds) through the AWS sweep: joining an alert in force
// within the window, the all-clear only when the ward's last patient has data again, one page per patient still
// for a few, a repeated sweep raising nothing twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepStaleFeeds, type SweepDeps } from '../../shared/adapters/aws/stale-feed-sweep.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { arrivalOf } from '../../shared/app/digest.ts';
import type { AlertInput } from '../../shared/domain/paging.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import type { PatientState } from '../../shared/domain/state.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { T0, enrol, msg } from '../support/messages.ts';
import { sweepFakes } from '../support/sweep.ts';
import type { InForce } from '#app/stale-feed.ts';
import { until } from '#test/support/until.ts';
import { startPagingServer } from '#test/support/in-process-serve.ts';

const MIN = 60_000;
const TOKEN = 'stale-feed-groups-test-token-0123456789';

describe('crs serve with 2,000 patients whose feeds go quiet together', () => {
  let dir: string;
  let server: EmbeddedServer | undefined;
  let lines: string[];
  let clock: number;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-groups-'));
    lines = [];
    clock = T0;
  });
  afterEach(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages once per ward and team (a patient alone in its ward still gets its own page), and clears a ward when its last patient has data again', async () => {
    const boot = () =>
      startPagingServer({
        dataDir: dir,
        paging: { staleFeedMinutes: 15 },
        lines,
        now: () => clock,
        localToken: TOKEN,
        maxPatients: 5000,
      });
    server = await boot();
    const s = server;
    const wardOf = (i: number) => (i < 1990 ? 'H4' : i < 1999 ? 'H5' : 'H6');
    const ids = Array.from({ length: 2000 }, (_, i) => `P${i}`);
    // The issue's reproduction: one token, 20 batch requests of 100 enrolments.
    for (let b = 0; b < 20; b++) {
      const batch = ids
        .slice(b * 100, b * 100 + 100)
        .map((p, j) => enrol(p, 0, { ward: wardOf(b * 100 + j), bed: `B${b * 100 + j}` }));
      const res = await fetch(`${s.url}/v1/messages/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      });
      expect(res.status).toBe(202);
    }
    const count = s.db.prepare('SELECT count(*) FROM patients').pluck();
    await until(
      () => count.get() === 2000,
      () => `2,000 patients graded (${String(count.get())})`,
    );

    clock = T0 + 16 * MIN;
    await s.paging.sweep();
    await until(() => s.dispatcher.backlog('stdout') === 0);
    const pages = () => lines.map((l) => JSON.parse(l) as PageEvent).filter((e) => e.type === 'page');
    expect(pages().map((p) => [p.patientId, p.team, p.kind])).toEqual([
      ['ward H4', 'bedside', 'alert'],
      ['ward H5', 'bedside', 'alert'],
      ['P1999', 'bedside', 'alert'],
    ]);
    expect(pages()[0]!.summary).toMatch(
      /^NO DATA, ward H4: 1990 patients' monitors quiet since 2026-01-10 08:00 UTC \(P0, bed B0; P1, bed B1; .*; and 1970 more\); their grades cannot be trusted$/,
    );
    expect(pages()[1]!.summary).toContain('9 patients');
    // The ladders: one per ward, not one per patient.
    expect(s.db.prepare("SELECT count(*) FROM pages WHERE status = 'open'").pluck().get()).toBe(3);

    // One patient of H5 has data again: the ward's alert stands; the rest of them: the all-clear, once.
    const post = (m: DeviceMessage[]) =>
      fetch(`${s.url}/v1/messages/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(m),
      });
    expect((await post([msg('P1990', 16, { vitals: { heartRate: 80 } })])).status).toBe(202);
    await until(
      async () =>
        s.db.prepare("SELECT feed_since FROM patients WHERE patient_id = 'P1990'").pluck().get() === T0 + 16 * MIN,
    );
    await s.paging.sweep();
    expect(pages()).toHaveLength(3);
    expect((await post(ids.slice(1991, 1999).map((p) => msg(p, 16, { vitals: { heartRate: 80 } })))).status).toBe(202);
    await until(
      async () =>
        (s.db
          .prepare('SELECT count(*) FROM patients WHERE feed_since = ?')
          .pluck()
          .get(T0 + 16 * MIN) as number) === 9,
    );
    await s.paging.sweep();
    await until(() => s.dispatcher.backlog('stdout') === 0 && pages().length === 4);
    expect(pages()[3]).toMatchObject({ patientId: 'ward H5', kind: 'alert-cleared', status: 'info' });
    // It names who resumed, and when (2026-12-07): P1990 a sweep before the others.
    const back = ids.slice(1990, 1999).map((p) => `${p}, bed B${p.slice(1)} at 2026-01-10 08:16 UTC`);
    expect(pages()[3]!.summary).toBe(
      `Data resumed, ward H5: every patient of the no-data alert of 2026-01-10 08:00 UTC has monitor data again (resumed: ${back.join('; ')})`,
    );
    const h5 = s.db.prepare("SELECT status FROM pages WHERE patient_id = 'ward H5' AND kind = 'alert'").pluck().all();
    expect(h5).toEqual(['resolved']);
    // The H4 alert is untouched by H5's all-clear.
    expect(s.db.prepare("SELECT status FROM pages WHERE patient_id = 'ward H4'").pluck().all()).toEqual(['open']);

    // A restart forgets who belonged to H4's alert: the next sweep finds them again, and pages nobody.
    await s.close();
    server = await boot();
    await server.paging.sweep();
    expect(server.db.prepare("SELECT count(*) FROM pages WHERE subject = 'stale-feed'").pluck().get()).toBe(4); // the three alerts and H5's all-clear
  }, 120_000);
});

describe('the ward rule on the AWS sweep', () => {
  let states: Map<string, PatientState>;
  let alerts: AlertInput[];
  let inForce: Map<string, InForce>;
  let deps: () => SweepDeps;
  /** A patient of `ward` enrolled at T0 whose monitor last spoke at minute `lastAt` (none: never). */
  const patient = (id: string, ward: string, lastAt?: number) => {
    let state: PatientState | undefined;
    for (const m of [
      enrol(id, 0, { ward }),
      ...(lastAt === undefined ? [] : [msg(id, lastAt, { vitals: { heartRate: 80 } })]),
    ])
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    states.set(id, state!);
  };
  const said = () => alerts.map((a) => `${a.patientId}${a.cleared ? ' cleared' : ''}`);
  beforeEach(() => {
    ({ states, alerts, inForce, deps } = sweepFakes(T0));
  });

  it('groups three or more of a ward quiet in one sweep, lets late ones join within 5 minutes, and clears when the last resumes', async () => {
    for (const p of ['A1', 'A2', 'A3']) patient(p, 'A', 1);
    patient('B1', 'B', 1);
    patient('B2', 'B', 1);
    patient('A4', 'A', 4); // quiet 3 minutes after the others: the same outage
    patient('A5', 'A', 9); // 8 minutes after: a page of its own
    await sweepStaleFeeds(deps(), T0 + 16 * MIN);
    expect(said()).toEqual(['ward A', 'B1', 'B2']);
    await sweepStaleFeeds(deps(), T0 + 16 * MIN); // repeated (a retried run): nothing new
    await sweepStaleFeeds(deps(), T0 + 19 * MIN);
    expect(said()).toEqual(['ward A', 'B1', 'B2']);
    expect(inForce.get('A4')!.alertId).toBe(alerts[0]!.alertId);
    await sweepStaleFeeds(deps(), T0 + 24 * MIN);
    expect(said()).toEqual(['ward A', 'B1', 'B2', 'A5']);

    // The ward's patients have data again one by one: one all-clear, after the last.
    for (const p of ['A1', 'A2', 'A3']) patient(p, 'A', 25);
    await sweepStaleFeeds(deps(), T0 + 26 * MIN);
    expect(said()).toHaveLength(4);
    // Kept on the ward alert's item, who came back and when (2026-12-07), for its all-clear.
    expect(inForce.get(alerts[0]!.alertId)!.resumed).toEqual(
      ['A1', 'A2', 'A3'].map((patientId) => ({ patientId, bed: `H4-${patientId}`, at: T0 + 25 * MIN })),
    );
    patient('A4', 'A', 26);
    await sweepStaleFeeds(deps(), T0 + 27 * MIN);
    expect(said()).toEqual(['ward A', 'B1', 'B2', 'A5', 'ward A cleared']);
    expect(alerts[4]).toMatchObject({ alertId: `${alerts[0]!.alertId}|cleared`, resolves: alerts[0]!.alertId });
    expect(alerts[4]!.summary).toBe(
      'Data resumed, ward A: every patient of the no-data alert of 2026-01-10 08:01 UTC has monitor data again (resumed: ' +
        'A1, bed H4-A1 at 2026-01-10 08:25 UTC; A2, bed H4-A2 at 2026-01-10 08:25 UTC; ' +
        'A3, bed H4-A3 at 2026-01-10 08:25 UTC; A4, bed H4-A4 at 2026-01-10 08:26 UTC)',
    );
    expect([...inForce.keys()].sort()).toEqual(['A5', 'B1', 'B2']);
  });

  it('keeps a patient who moves ward while quiet in the alert it belongs to, until its data resumes (docs/paging.md, A patient who moves wards)', async () => {
    /** An ADT A02: the EHR's enrolment with the new ward, at minute `at`. */
    const move = (id: string, ward: string, at: number) => {
      const m = {
        ...msg(id, at, { enrolment: { ward, bed: `${ward}-${id}` } }),
        source: { deviceId: 'adt', kind: 'ehr' as const },
      };
      states.set(id, reduce(states.get(id), m, DEFAULT_CONFIG, arrivalOf(m)).state!);
    };
    for (const p of ['A1', 'A2', 'A3']) patient(p, 'A', 1);
    patient('B1', 'B', 1);
    await sweepStaleFeeds(deps(), T0 + 16 * MIN);
    expect(said()).toEqual(['ward A', 'B1']);
    // A3 goes to ward B, B1 to ward A, both still quiet: nothing is paged, each stays in its alert.
    move('A3', 'B', 17);
    move('B1', 'A', 17);
    await sweepStaleFeeds(deps(), T0 + 18 * MIN);
    expect(said()).toEqual(['ward A', 'B1']);
    expect(inForce.get('A3')!.alertId).toBe(alerts[0]!.alertId);
    // The others of ward A have data again: the ward's alert waits for A3, now in ward B.
    for (const p of ['A1', 'A2']) patient(p, 'A', 19);
    await sweepStaleFeeds(deps(), T0 + 20 * MIN);
    expect(said()).toEqual(['ward A', 'B1']);
    patient('A3', 'A', 20);
    move('A3', 'B', 17);
    await sweepStaleFeeds(deps(), T0 + 21 * MIN);
    expect(said()).toEqual(['ward A', 'B1', 'ward A cleared']);
    expect([...inForce.keys()]).toEqual(['B1']);
  });
});
