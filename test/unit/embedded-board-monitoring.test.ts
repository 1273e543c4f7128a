// A ward without an ADT feed discharges a patient from the board: `crs serve`'s board API ends a patient's
// monitoring (the board lists them ended, and the no-data alert in force is closed at the next sweep, saying so) and
// resumes it (a re-admission: the stale-feed watch starts again), each as the board's own message through the device
// ingest. Board-key auth, the board's origin rule, and refusals that name the field. In process, with the server's
// clock under the test's control.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { iso } from '#domain/time.ts';
import type { AuditEvent } from '#ports';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { boardCookieName } from '#hosts/embedded/board-key.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import { boardApi, postMessages, startPagingServer } from '#test/support/in-process-serve.ts';

const TOKEN = 'local-test-token-of-at-least-32-chars';
const MIN = 60_000;
let dir: string;
let server: EmbeddedServer;
let clock: number;
let lines: string[];

const start = (site?: Record<string, unknown>) =>
  startPagingServer({
    dataDir: dir,
    paging: { staleFeedMinutes: 15 },
    lines,
    now: () => clock,
    localToken: TOKEN,
    ...(site ? { site } : {}),
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-board-monitoring-'));
  lines = [];
  clock = T0 + 5 * MIN;
});
afterEach(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const boardKey = () => new URL(server.boardUrl).searchParams.get('key')!;
const api = (path: string, init: RequestInit = {}) => boardApi(server)(path, init);
/** The name a board user types (the trail records it); `by: undefined` sends none. */
const BY = 'R. Nurse';
const monitoring = (patientId: string, action: 'end' | 'resume', body: object = {}, headers = {}) =>
  api(`/api/patients/${encodeURIComponent(patientId)}/monitoring/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ by: BY, ...body }),
  });

const post = (...messages: DeviceMessage[]) => postMessages(server, TOKEN, messages);

interface ListedPatient {
  patientId: string;
  monitoringEnded: { reason: string; at: string } | null;
  paging: { subject: string; kind: string }[];
}
const listed = async () => ((await (await api('/api/patients')).json()) as { patients: ListedPatient[] }).patients;
const patientOf = async (id: string) => (await listed()).find((p) => p.patientId === id)!;

/** The no-data pages about a patient (the bedside team's), in order. */
const pages = (patientId: string) =>
  lines
    .map((l) => JSON.parse(l) as PageEvent | { type: 'notification' })
    .filter((e): e is PageEvent => e.type === 'page' && e.patientId === patientId && e.subject === 'stale-feed');

/** Lets the server's clock run on; the ladders step and the stale feeds are swept as the timer loop would. */
async function advance(minutes: number): Promise<void> {
  clock += minutes * MIN;
  await server.paging.tick();
  await server.paging.sweep();
  await until(() => server.dispatcher.backlog('stdout') === 0 || undefined, 'the stream to catch up');
}

async function auditOf(patientId: string): Promise<AuditEvent[]> {
  const text = await (await api(`/api/patients/${patientId}/audit?format=ndjson`)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** Two enrolled patients in ward H4, well: P1 listed first while both are monitored (by bed). */
async function twoPatients(): Promise<void> {
  server = await start();
  await post(
    enrol('P1', 0),
    msg('P1', 1, { vitals: { heartRate: 80 } }),
    enrol('P2', 0),
    msg('P2', 1, { vitals: { heartRate: 80 } }),
  );
  await until(async () => (await listed()).length === 2 || undefined, 'both graded');
  expect((await listed()).map((p) => p.patientId)).toEqual(['P1', 'P2']);
}

describe("ending a patient's monitoring from the board", () => {
  it('lists the patient as ended, last, and closes the no-data alert in force at the next sweep, saying so', async () => {
    await twoPatients();
    await advance(16); // the monitors quiet for 19 minutes: a no-data alert for each
    expect(pages('P1').map((p) => [p.subject, p.kind])).toEqual([['stale-feed', 'alert']]);
    expect((await patientOf('P1')).paging).toMatchObject([{ subject: 'stale-feed', kind: 'alert' }]);

    const res = await monitoring('P1', 'end', { reason: 'discharged' });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; messageIds: string[]; message: DeviceMessage };
    expect(body.accepted).toBe(1);
    // The board's own message: charting (manual) from the board, observed at the server's now, a fresh id.
    expect(body.message).toEqual({
      messageId: body.messageIds[0],
      patientId: 'P1',
      observedAt: iso(clock),
      source: { deviceId: 'board', kind: 'manual' },
      monitoringEnd: { reason: 'discharged' },
    });

    const ended = await until(async () => (await patientOf('P1')).monitoringEnded ?? undefined, 'P1 listed ended');
    expect(ended).toEqual({ reason: 'discharged', at: iso(clock) });
    expect((await listed()).map((p) => p.patientId)).toEqual(['P2', 'P1']); // ended: after those monitored
    // Graded and audited like any message, as sent by the board, by the name the user typed.
    const assessment = (await auditOf('P1')).find((e) => e.details.messageId === body.messageIds[0]);
    expect(assessment).toMatchObject({ type: 'assessment', details: { sender: `board (by ${BY})`, crsGrade: 0 } });

    await advance(1);
    expect(pages('P1').map((p) => [p.kind, p.summary])).toEqual([
      ['alert', expect.stringMatching(/^NO DATA, patient P1/)],
      [
        'alert-cleared',
        'Monitoring ended, patient P1, bed H4-P1: discharged at 2026-01-10 08:21 UTC; the no-data alert is closed',
      ],
    ]);
    expect((await patientOf('P1')).paging).toEqual([]);
    // P2's alert stays in force: only the patient ended.
    expect((await patientOf('P2')).paging).toMatchObject([{ subject: 'stale-feed', kind: 'alert' }]);
    await advance(60);
    expect(pages('P1')).toHaveLength(2); // no new no-data alert for the discharged patient
  });

  it('resumes it (a re-admission to the bed and ward the patient has): monitored again, the watch timed from then', async () => {
    await twoPatients();
    expect((await monitoring('P1', 'end', { reason: 'transferred' })).status).toBe(202);
    await until(async () => (await patientOf('P1')).monitoringEnded ?? undefined, 'P1 ended');
    await advance(30);
    expect(pages('P1')).toEqual([]);

    const res = await monitoring('P1', 'resume');
    expect(res.status).toBe(202);
    const { message } = (await res.json()) as { message: DeviceMessage };
    expect(message).toMatchObject({
      patientId: 'P1',
      observedAt: iso(clock),
      source: { deviceId: 'board', kind: 'manual' },
      enrolment: { bed: 'H4-P1', ward: 'H4' },
    });
    expect(message.monitoringEnd).toBeUndefined();
    await until(async () => (await patientOf('P1')).monitoringEnded === null || undefined, 'P1 monitored again');

    // The watch restarted at the re-admission: no data for staleFeedMinutes from then is a no-data alert.
    expect(iso(clock)).toBe('2026-01-10T08:35:00Z');
    await advance(14);
    expect(pages('P1')).toEqual([]);
    await advance(1);
    expect(pages('P1').map((p) => [p.kind, p.summary])).toEqual([
      [
        'alert',
        'NO DATA, patient P1, bed H4-P1: no monitor data since re-admission at 2026-01-10 08:35 UTC; the grade cannot be trusted',
      ],
    ]);
  });
});

describe("the board's refusals, in the site's time zone as every time on the board", () => {
  it('tells the user when the monitoring ended, and when the end it cannot follow is, in Paris time', async () => {
    server = await start({ timeZone: 'Europe/Paris' });
    await post(enrol('P1', 0), msg('P1', 1, { vitals: { heartRate: 80 } }));
    await until(async () => (await listed()).length === 1 || undefined, 'graded');
    const first = await monitoring('P1', 'end', { reason: 'discharged' });
    expect(first.status).toBe(202);
    await until(async () => (await patientOf('P1')).monitoringEnded !== null || undefined, 'the end graded');
    const again = await monitoring('P1', 'end', { reason: 'transferred' });
    expect([again.status, ((await again.json()) as { errors: string[] }).errors]).toEqual([
      409,
      [
        "monitoringEnd: patient P1's monitoring has already ended (discharged at 2026-01-10 09:05 CET); resume it first to give another reason",
      ],
    ]);
    // The server's clock stepped back behind the end: a resumption now would come before it.
    clock -= 10 * MIN;
    const resume = await monitoring('P1', 'resume');
    expect([resume.status, ((await resume.json()) as { errors: string[] }).errors]).toEqual([
      409,
      [
        "monitoring: patient P1's end of monitoring is observed at 2026-01-10 09:05 CET, not before the server's time: a re-admission now would not follow it",
      ],
    ]);
  });
});

describe("two board users ending the same patient's monitoring together", () => {
  it('one is taken; the other is told it has already ended, and the teams get one page with the reason taken', async () => {
    await twoPatients();
    await advance(16); // a no-data alert in force for P1
    const [a, b] = await Promise.all([
      monitoring('P1', 'end', { reason: 'discharged', by: 'Nurse A' }),
      monitoring('P1', 'end', { reason: 'transferred', by: 'Nurse B' }),
    ]);
    expect([a.status, b.status]).toEqual([202, 409]);
    expect(((await b.json()) as { errors: string[] }).errors).toEqual([
      "monitoringEnd: patient P1's monitoring has already ended (discharged at 2026-01-10 08:21 UTC); resume it first to give another reason",
    ]);
    const { messageIds } = (await a.json()) as { messageIds: string[] };
    const graded = async () => (await auditOf('P1')).some((e) => e.details.messageId === messageIds[0]) || undefined;
    await until(graded, 'the end graded');
    await advance(1);
    // The trail holds the one end taken, by who sent it; the board and the page say its reason.
    expect(
      (await auditOf('P1')).filter((e) => String(e.details.sender).startsWith('board')).map((e) => e.details.sender),
    ).toEqual(['board (by Nurse A)']);
    expect((await patientOf('P1')).monitoringEnded).toEqual({ reason: 'discharged', at: iso(clock - MIN) });
    expect(pages('P1').map((p) => [p.kind, p.summary])).toEqual([
      ['alert', expect.stringMatching(/^NO DATA, patient P1/)],
      [
        'alert-cleared',
        'Monitoring ended, patient P1, bed H4-P1: discharged at 2026-01-10 08:21 UTC; the no-data alert is closed',
      ],
    ]);
  });
});

describe('the board API refuses', () => {
  it('a request without the board key, and a cookie-carried one from another origin', async () => {
    await twoPatients();
    // Each body is one the route takes (a reason and a name): refused for the key or the origin alone, not the body.
    const bare = await fetch(`${server.url}/api/patients/P1/monitoring/end`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'discharged', by: BY }),
    });
    expect(bare.status).toBe(401);
    // Under systemd the link is not printed (stderr is no terminal): the answer names the command that prints it.
    expect(((await bare.json()) as { error: string }).error).toBe(
      'board access key required: open the board with its link (crs board-link --data DIR prints it), or send the key as Authorization: Bearer',
    );
    const forged = await fetch(`${server.url}/api/patients/P1/monitoring/end`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie: `${boardCookieName(boardKey())}=${boardKey()}`,
        origin: 'https://evil.example',
      },
      body: JSON.stringify({ reason: 'discharged', by: BY }),
    });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: string }).error).toMatch(/^cross-origin request refused/);
    const form = await monitoring('P1', 'end', { reason: 'discharged' }, { 'content-type': 'text/plain' });
    expect(form.status).toBe(415);
    expect((await api('/api/patients/P1/monitoring/end')).status).toBe(405);
    // Nothing was queued: a message sent after the refusals is graded (a patient's messages in order) and P1 is
    // monitored still, with no message from the board in its trail.
    const after = msg('P1', 6, { vitals: { heartRate: 81 } });
    await post(after);
    await until(
      async () => (await auditOf('P1')).some((e) => e.details.messageId === after.messageId) || undefined,
      'graded',
    );
    expect((await patientOf('P1')).monitoringEnded).toBeNull();
    expect((await auditOf('P1')).filter((e) => String(e.details.sender).startsWith('board'))).toEqual([]);
  });

  it('a bad or missing reason, or an unknown field, naming the field; an unknown patient', async () => {
    await twoPatients();
    const bad = await monitoring('P1', 'end', { reason: 'gone home' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      errors: ['reason: "gone home" is not one of discharged, transferred, other'],
    });
    const missing = await monitoring('P1', 'end', {});
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { errors: string[] }).errors).toEqual([
      'reason: is required (one of discharged, transferred, other)',
    ]);
    const extra = await monitoring('P1', 'resume', { bed: 'H4-9' });
    expect(extra.status).toBe(400);
    expect(((await extra.json()) as { errors: string[] }).errors).toEqual([
      'unknown field "bed" (did you mean "by"?); allowed: by',
    ]);
    // Named as every route names one (until 2026-12-06 `bed: unknown field (this request takes only "by")`).
    const misspelt = await monitoring('P1', 'end', { reasn: 'discharged', by: 'Nurse B', note: 'home' });
    expect([misspelt.status, await misspelt.json()]).toEqual([
      400,
      {
        errors: [
          'unknown field "reasn" (did you mean "reason"?); allowed: reason, by; unknown field "note"; allowed: reason, by',
        ],
      },
    ]);
    // Who did it, as for a silence: required, and named.
    for (const by of [undefined, '  ', 'x'.repeat(81)]) {
      const anonymous = await monitoring('P1', 'end', { reason: 'discharged', by });
      expect(anonymous.status, String(by)).toBe(400);
      expect(((await anonymous.json()) as { errors: string[] }).errors).toEqual([
        expect.stringMatching(by === undefined ? /^by: is required/ : /^by: is (empty|longer)/),
      ]);
    }
    const nobody = await monitoring('P9', 'end', { reason: 'discharged' });
    expect(nobody.status).toBe(404);
    expect(await nobody.json()).toEqual({ error: 'no such patient' });
    expect((await patientOf('P1')).monitoringEnded).toBeNull();
  });

  it('a body that is not a JSON object, or not sent as JSON, with an example that the route takes (the name too)', async () => {
    await twoPatients();
    const raw = (action: 'end' | 'resume', body: string, type = 'application/json') =>
      api(`/api/patients/P1/monitoring/${action}`, { method: 'POST', headers: { 'content-type': type }, body });
    for (const action of ['end', 'resume'] as const) {
      for (const [body, type, status] of [
        ['[]', 'application/json', 400],
        ['"discharged"', 'application/json', 400],
        ['null', 'application/json', 400],
        ['{"reason": "discharged"}', 'text/plain', 415],
      ] as const) {
        const res = await raw(action, body, type);
        expect(res.status, `${action} ${body} ${type}`).toBe(status);
        const out = (await res.json()) as { error?: string; errors?: string[] };
        const text = out.error ?? out.errors![0]!;
        // The example as given, sent as it is, is taken: it names every field the route requires.
        const example = text.slice(text.indexOf('{'));
        expect(Object.keys(JSON.parse(example) as object), text).toEqual(action === 'end' ? ['reason', 'by'] : ['by']);
      }
    }
    const end = await raw('end', '{"reason": "discharged", "by": "your name"}');
    expect(end.status).toBe(202);
    await until(async () => (await patientOf('P1')).monitoringEnded ?? undefined, 'P1 ended');
    clock += MIN;
    expect((await raw('resume', '{"by": "your name"}')).status).toBe(202);
  });

  it("an end of a patient's monitoring that has ended, a resumption of one that has not, and one without a bed", async () => {
    await twoPatients();
    const monitored = await monitoring('P1', 'resume');
    expect(monitored.status).toBe(409);
    expect(((await monitored.json()) as { errors: string[] }).errors).toEqual([
      "monitoring: patient P1's monitoring has not ended: there is nothing to resume",
    ]);
    expect((await monitoring('P1', 'end', { reason: 'other' })).status).toBe(202);
    await until(async () => (await patientOf('P1')).monitoringEnded ?? undefined, 'P1 ended');
    const again = await monitoring('P1', 'end', { reason: 'discharged' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { errors: string[] }).errors[0]).toMatch(
      /^monitoringEnd: patient P1's monitoring has already ended \(other at 2026-01-10 08:05 UTC\)/,
    );

    // A patient charted without a bed: there is no bed to re-admit to, and none is invented.
    await post({ ...msg('P3', 2, { vitals: { heartRate: 90 } }), source: { deviceId: 'ehr-1', kind: 'ehr' } });
    await until(async () => (await listed()).some((p) => p.patientId === 'P3') || undefined, 'P3 graded');
    clock += MIN;
    expect((await monitoring('P3', 'end', { reason: 'discharged' })).status).toBe(202);
    await until(async () => (await patientOf('P3')).monitoringEnded ?? undefined, 'P3 ended');
    clock += MIN;
    const bedless = await monitoring('P3', 'resume');
    expect(bedless.status).toBe(409);
    expect(((await bedless.json()) as { errors: string[] }).errors[0]).toMatch(
      /^enrolment\.bed: patient P3 has no bed on record/,
    );
    expect((await patientOf('P3')).monitoringEnded).toMatchObject({ reason: 'discharged' });
  });

  it("an end or a resumption that a message ahead of the server's clock would undo at once (the clock stepped back)", async () => {
    await twoPatients();
    // The EHR re-admits P1 at 08:08 by the server's clock (a message is never placed later than it arrived), then the
    // server's clock is stepped back to 08:05 (a time sync): an end at 08:05 would come before the re-admission.
    clock = T0 + 8 * MIN;
    const readmission = { ...enrol('P1', 8), source: { deviceId: 'ehr-1', kind: 'ehr' as const } };
    await post(readmission);
    const applied = async () => (await auditOf('P1')).some((e) => e.details.messageId === readmission.messageId);
    await until(async () => (await applied()) || undefined, 'the re-admission applied');
    clock = T0 + 5 * MIN;
    const end = await monitoring('P1', 'end', { reason: 'discharged' });
    expect(end.status).toBe(409);
    expect(((await end.json()) as { errors: string[] }).errors).toEqual([
      "monitoringEnd: patient P1 has an enrolment observed at or after the server's time (2026-01-10 08:08 UTC): an end now would not hold",
    ]);
    expect((await patientOf('P1')).monitoringEnded).toBeNull();

    // The EHR discharges P2 at 08:09, the clock is stepped back: a re-admission at 08:05 would not follow the discharge.
    clock = T0 + 9 * MIN;
    await post({
      ...msg('P2', 9, { monitoringEnd: { reason: 'discharged' } }),
      source: { deviceId: 'ehr-1', kind: 'ehr' },
    });
    await until(async () => (await patientOf('P2')).monitoringEnded ?? undefined, 'P2 ended');
    clock = T0 + 5 * MIN;
    const resume = await monitoring('P2', 'resume');
    expect(resume.status).toBe(409);
    expect(((await resume.json()) as { errors: string[] }).errors).toEqual([
      "monitoring: patient P2's end of monitoring is observed at 2026-01-10 08:09 UTC, not before the server's time: a re-admission now would not follow it",
    ]);
    expect((await patientOf('P2')).monitoringEnded).toMatchObject({ reason: 'discharged' });

    // Once the clock has passed both, each goes through.
    clock = T0 + 10 * MIN;
    expect((await monitoring('P1', 'end', { reason: 'discharged' })).status).toBe(202);
    expect((await monitoring('P2', 'resume')).status).toBe(202);
    await until(async () => ((await patientOf('P1')).monitoringEnded ? true : undefined), 'P1 ended');
    await until(async () => ((await patientOf('P2')).monitoringEnded === null ? true : undefined), 'P2 resumed');
  });
});

describe("the board API's infusion time", () => {
  it('is RFC 3339 UTC as its other time fields, whatever offset the enrolment was sent with', async () => {
    server = await start();
    await post(
      msg('P7', 0, {
        enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T09:00:00+01:00', bed: 'H4-7', ward: 'H4' },
      }) as DeviceMessage,
    );
    // It was the raw string with its +01:00 offset, where docs/time-zones.md says the board API's times are UTC.
    const infusedAt = async () => {
      const r = await api('/api/patients/P7');
      return r.status === 200
        ? ((await r.json()) as { patient: { infusedAt: string } | null }).patient?.infusedAt
        : undefined;
    };
    const p = await until(async () => (await infusedAt()) ?? undefined, 'P7 graded');
    expect(p).toBe('2026-01-08T08:00:00Z');
  });
});
