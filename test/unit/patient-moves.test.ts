// The patient who moves (docs/paging.md, A patient who moves wards): a CAR-T patient moved from H4 to the ICU by an
// ADT^A02, on `crs serve` in the test's process. What the move must leave alone (an acknowledgement link of a page
// sent before it, the monitor of the bed left now sending for the next patient, the board's history) and what it
// must change (the bed shown, the old bed free, the old ward's device token refused: docs/security.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { issueToken } from '#app/auth.ts';
import type { TokenScope } from '#app/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { iso } from '#domain/time.ts';
import type { EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { adtEvent, boardApi, postMessages, startPagingServer, stepPaging } from '#test/support/in-process-serve.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'patient-moves-test-token-0123456789';
const MIN = 60_000;
let dir: string;
let server: EmbeddedServer;
let clock: number;
let lines: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-moves-'));
  lines = [];
  clock = T0 + 30 * MIN;
  server = await startPagingServer({ dataDir: dir, paging: {}, lines, now: () => clock, localToken: TOKEN });
});
afterEach(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = boardApi({
  get url() {
    return server.url;
  },
  get boardUrl() {
    return server.boardUrl;
  },
});
const post = (...messages: DeviceMessage[]) => postMessages(server, TOKEN, messages);
const pages = () =>
  lines
    .map((l) => JSON.parse(l) as PageEvent | { type: 'notification' })
    .filter((e): e is PageEvent => e.type === 'page');
const sent = (team: string) =>
  pages()
    .filter((p) => p.team === team && p.subject !== 'stale-feed')
    .map((p) => `${p.role} g${p.grade}`);

async function advance(minutes: number): Promise<void> {
  clock += minutes * MIN;
  await stepPaging(server);
}

/** An ADT event of the EHR, sent now: PV1-3 `ward^^bed`, EVN-6 `minute` after T0. */
const adt = (id: string, event: string, patientId: string, ward: string, bed: string, minute: number) =>
  adtEvent({ id, event, patientId, ward, bed, sentAt: clock, at: T0 + minute * MIN });
async function hl7(text: string): Promise<void> {
  const res = await fetch(`${server.url}/v1/hl7v2`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'x-application/hl7-v2+er7' },
    body: text,
  });
  expect(res.status, await res.clone().text()).toBe(202);
}

type Patient = { patientId: string; bed: string; ward: string; crs: { grade: number } };
type View = {
  patient: Patient;
  pages: { grade: number; pages: { team: string; state: string }[] }[];
  timeline: { points: { messageId: string; crs: unknown }[] };
};
const view = async (id: string) => (await (await api(`/api/patients/${id}`)).json()) as View;
const list = async () => ((await (await api('/api/patients')).json()) as { patients: Patient[] }).patients;
const graded = (id: string, n: number) =>
  until(
    async () =>
      ((await (await api(`/api/patients/${id}/audit?format=ndjson`)).text()).match(/"type":"assessment"/g) ?? [])
        .length >= n || undefined,
    `${id} graded ${n} times`,
  );

/** A monitor at a bed: the same device whatever patient it is set up for. */
const fromMonitor = (m: DeviceMessage, deviceId: string): DeviceMessage => ({
  ...m,
  source: { deviceId, kind: 'monitor' },
});
/** A device token issued while the server runs, limited as `scope` says. */
async function token(deviceId: string, scope: TokenScope): Promise<string> {
  const { token: t, record } = issueToken(deviceId, new Date(clock), scope);
  await server.tokens.put(record);
  return t;
}
const send = (t: string, m: DeviceMessage) =>
  fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
    body: JSON.stringify(m),
  });
/** The form of an acknowledgement link, sent with a name. */
const ackByLink = (link: string, by: string) =>
  fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ by }).toString(),
  });
const fever = (p: string, m: number) => msg(p, m, { vitals: { temperatureC: 39.1, systolicBP: 118 } });
const pressor = (p: string, m: number) =>
  msg(p, m, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] });

describe('a patient moved from H4 to the ICU (ADT^A02)', () => {
  it('an acknowledgement link of a page sent before the move, used after it, acknowledges and stops that ladder', async () => {
    await post(enrol('P1', 0, { bed: '4' }), fever('P1', 10), pressor('P1', 20)); // CRS 3 in H4 bed 4
    await until(() => sent('icu').length === 1 || undefined, 'the ICU paged');
    const link = pages().find((p) => p.team === 'icu')!.ackUrl!;
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 25));
    await until(async () => (await view('P1')).patient.ward === 'ICU' || undefined, 'the move');
    const res = await ackByLink(link, 'Dr Osei');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Recorded: Dr Osei');
    await advance(5);
    await advance(5);
    expect(sent('icu')).toEqual(['ICU registrar g3']); // stopped
    // The other team's ladder climbs on.
    expect(sent('hematology').filter((p) => p.endsWith('g3')).length).toBeGreaterThan(1);
    const icu = (await view('P1')).pages.find((g) => g.grade === 3)!.pages.find((p) => p.team === 'icu')!;
    expect(icu.state).toBe('acknowledged');
  });

  it('the monitor of the bed left, set up for the next patient: none of its readings go to the moved patient', async () => {
    clock = T0 + 51 * MIN;
    // P1 in H4 bed 4 with monitor mon-H4-4; moved to ICU bed 3 at minute 20; P2 admitted to H4 bed 4 at 21.
    await post(enrol('P1', 0, { bed: '4' }), fromMonitor(msg('P1', 5, { vitals: { heartRate: 80 } }), 'mon-H4-4'));
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 20));
    await post(enrol('P2', 21, { bed: '4' }));
    // The monitor, now for P2 (its PV1-3 the same bed), sends a fever for P2 and readings every few minutes.
    for (const m of [22, 26, 30, 34, 38, 42, 46, 50])
      await post(
        fromMonitor(
          msg('P2', m, { vitals: { temperatureC: 39.2, heartRate: 100 }, enrolment: { ward: 'H4', bed: '4' } }),
          'mon-H4-4',
        ),
      );
    await graded('P2', 9);
    await advance(0);
    const p1 = await view('P1');
    const p2 = await view('P2');
    expect(p1.patient).toMatchObject({ ward: 'ICU', bed: '3', crs: { grade: 0 } });
    expect(p2.patient).toMatchObject({ ward: 'H4', bed: '4', crs: { grade: 1 } });
    // P1's monitor data stopped at minute 5: it is quiet (no data since 08:05), P2 is not.
    const staleFor = (id: string) => pages().filter((p) => p.subject === 'stale-feed' && p.summary.includes(id));
    expect(staleFor('P2')).toEqual([]);
    expect(staleFor('P1').length).toBeGreaterThan(0);
    expect(staleFor('P1')[0]!.summary).toContain('08:05');
    const beds = (await list()).map((p) => `${p.patientId} ${p.ward} ${p.bed}`).sort();
    expect(beds).toEqual(['P1 ICU 3', 'P2 H4 4']);
  });

  it('the board after the move: the new ward and bed, the history kept, the old bed free', async () => {
    await post(enrol('P1', 0, { bed: '4' }), fever('P1', 10));
    await until(() => sent('hematology').length === 1 || undefined, 'grade 1 paged');
    const before = await view('P1');
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 15));
    await until(async () => (await view('P1')).patient.ward === 'ICU' || undefined, 'the move');
    const after = await view('P1');
    expect(after.patient).toMatchObject({ ward: 'ICU', bed: '3', crs: { grade: 1 } });
    expect(after.pages).toEqual(before.pages);
    // The timeline keeps every point before the move, as it was, and adds the move's.
    expect(before.timeline.points.length).toBeGreaterThan(1);
    expect(after.timeline.points.slice(0, before.timeline.points.length)).toEqual(before.timeline.points);
    expect(after.timeline.points).toHaveLength(before.timeline.points.length + 1);
    const onBoard = (await list()).filter((p) => p.ward === 'H4');
    expect(onBoard).toEqual([]);
  });

  it('a device token of the old ward is refused for the moved patient (403), readings taken before the move too', async () => {
    const h4 = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
    const icu = await token('gw-icu', { kind: 'monitor', wards: ['ICU'] });
    await post(enrol('P1', 0, { bed: '4' }));
    await graded('P1', 1);
    expect((await send(h4, fromMonitor(msg('P1', 5, { vitals: { heartRate: 80 } }), 'gw-h4'))).status).toBe(202);
    await graded('P1', 2);
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 20));
    // Taken (queued) is enough on crs serve, graded or not yet: the old ward refused, the new one reaches it.
    expect((await send(h4, fromMonitor(msg('P1', 21, { vitals: { heartRate: 80 } }), 'gw-h4'))).status).toBe(403);
    expect((await send(icu, fromMonitor(msg('P1', 21, { vitals: { heartRate: 80 } }), 'gw-icu'))).status).toBe(202);
    await until(async () => (await view('P1')).patient.ward === 'ICU' || undefined, 'the move');
    const late = await send(h4, fromMonitor(msg('P1', 18, { vitals: { heartRate: 81 } }), 'gw-h4'));
    expect(late.status).toBe(403);
    expect(await late.text()).toContain('in another ward');
    const after = await send(h4, fromMonitor(msg('P1', 22, { vitals: { heartRate: 82 } }), 'gw-h4'));
    expect(after.status).toBe(403);
    expect((await send(icu, fromMonitor(msg('P1', 23, { vitals: { heartRate: 83 } }), 'gw-icu'))).status).toBe(202);
  });
});

describe('a patient whose monitor never sent, moved while its "no data" alert is open', () => {
  it('keeps the alert in force through the move (no all-clear), and its link acknowledges it after the move', async () => {
    clock = T0;
    await post(enrol('P1', 0, { bed: '4' }));
    await graded('P1', 1);
    await advance(16); // quiet since 08:00: the alert
    const alert = await until(() => pages().find((p) => p.subject === 'stale-feed'), 'the no-data alert');
    expect(alert.summary).toContain('bed 4');
    expect(alert.escalatesAt).not.toBeNull(); // a ladder to stop
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 17));
    await until(async () => (await view('P1')).patient.ward === 'ICU' || undefined, 'the move');
    await advance(1);
    expect(
      pages()
        .filter((p) => p.subject === 'stale-feed')
        .map((p) => p.kind),
    ).toEqual([alert.kind]); // no all-clear
    const res = await ackByLink(alert.ackUrl!, 'Nurse Ade');
    expect(res.status).toBe(200);
    const before = pages().length;
    await advance(15);
    await advance(15);
    expect(
      pages()
        .slice(before)
        .filter((p) => p.subject === 'stale-feed'),
    ).toEqual([]); // its ladder stopped
    const acked = (await view('P1')).pages.flatMap((g) => g.pages).filter((p) => p.state === 'acknowledged');
    expect(acked).toHaveLength(1);
  });
});

describe('device scopes while a move charted late waits to be graded (crs serve)', () => {
  // crs serve counts the ward a waiting message gives (docs/security.md). A move charted before the one graded changes
  // nothing once graded (docs/paging.md): waiting, it must not place the patient back in the ward left either.
  it('a late A08 naming the ward left, still waiting: the old ward stays refused and the new one reaches the patient', async () => {
    const h4 = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
    const icu = await token('gw-icu', { kind: 'monitor', wards: ['ICU'] });
    await post(enrol('P1', 0, { bed: '4' }));
    await hl7(adt('ADT-1', 'A02', 'P1', 'ICU', '3', 20));
    await until(async () => (await view('P1')).patient.ward === 'ICU' || undefined, 'the move');
    // The EHR's update charted at minute 15 (in H4 then), arriving now; held in the inbox (the worker not woken).
    const late: DeviceMessage = {
      ...msg('P1', 15, { enrolment: { ward: 'H4', bed: '4' } }),
      source: { deviceId: 'local', kind: 'ehr' },
    };
    server.db
      .prepare("INSERT INTO inbox (patient_id, message_id, digest, body, received_at) VALUES (?, ?, '', ?, ?)")
      .run(
        'P1',
        late.messageId,
        JSON.stringify({ message: late, receivedAt: iso(clock), sender: 'local' }),
        iso(clock),
      );
    const fromH4 = await send(h4, fromMonitor(msg('P1', 25, { enrolment: { ward: 'H4', bed: '4' } }), 'gw-h4'));
    expect(fromH4.status, 'the old ward reaches the moved patient').toBe(403);
    const fromIcu = await send(icu, fromMonitor(msg('P1', 26, { vitals: { heartRate: 90 } }), 'gw-icu'));
    expect(fromIcu.status, 'the new ward is refused').toBe(202);
    await graded('P1', 4);
    expect((await view('P1')).patient).toMatchObject({ ward: 'ICU', bed: '3' });
  });
});
