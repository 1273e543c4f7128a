// Device scopes on `crs serve` over real HTTP (issue 16 item 1): the reproductions (a pump's token claiming to be
// the EHR and lowering a patient's hypotension thresholds; a value dated minutes ahead outranking the correction that
// follows it; the sender recorded nowhere), ward and patient scopes on JSON and HL7 v2, the ceiling on new patients,
// and the MLLP listener acting as a configured device.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { until } from '#test/support/until.ts';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { issueToken, TOKEN_EXPIRED, TOKEN_REVOKED, UNKNOWN_KIND, UNREADABLE_SCOPE } from '../../shared/app/auth.ts';
import { SECURITY_LOG_FILE } from '#hosts/embedded/security-log.ts';
import { escapeHl7 } from '#app/hl7v2/er7.ts';
import { NO_ROOM_ACK } from '#app/hl7v2/ingest.ts';
import { applicationErrors } from '#app/hl7v2/ack.ts';
import { noRoom } from '#hosts/mllp-bridge/room.ts';
import type { TokenScope } from '../../shared/app/scope.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { frame, MllpDecoder } from '#app/hl7v2/mllp.ts';
import { resolveConfig } from '../../shared/domain/config.ts';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { T0, enrol, msg } from '../support/messages.ts';

const MIN = 60_000;
const config = (() => {
  const r = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
})();
let dir: string;
let server: EmbeddedServer;
let clock: number;

async function start(extra: Partial<Parameters<typeof startEmbeddedServer>[0]> = {}): Promise<EmbeddedServer> {
  return startEmbeddedServer({
    dataDir: dir,
    config,
    port: 0,
    pageStream: new PassThrough(),
    now: () => clock,
    log: () => undefined,
    ...extra,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-scopes-'));
  clock = T0 + 60 * MIN;
  server = await start();
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function token(deviceId: string, scope: TokenScope): Promise<string> {
  const { token: t, record } = issueToken(deviceId, new Date(clock), scope);
  await server.tokens.put(record);
  return t;
}

const send = (
  t: string,
  body: DeviceMessage | DeviceMessage[],
  path = Array.isArray(body) ? '/v1/messages/batch' : '/v1/messages',
) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const boardKey = () => new URL(server.boardUrl).searchParams.get('key')!;
const board = async <T>(path: string): Promise<T> =>
  (await (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${boardKey()}` } })).json()) as T;
const from = (m: DeviceMessage, deviceId: string, kind: DeviceMessage['source']['kind']): DeviceMessage => ({
  ...m,
  source: { deviceId, kind },
});

async function graded(): Promise<void> {
  await until(async () => (await board<{ inbox: number }>('/api/health')).inbox === 0, 'the inbox graded');
}

interface PatientBody {
  patient: {
    crs: { grade: number };
    limits: { systolicBelow: number; mapBelow: number };
    vitals: Record<string, { value: number; at: string }>;
  };
  timeline: { points: { messageId: string; sender?: string }[] };
}

describe('device scopes (issue 16 reproductions)', () => {
  it("refuses a pump's token that claims to be the EHR and sets a patient's hypotension thresholds to 20/10: the low pressures still grade CRS 2", async () => {
    const ehr = await token('ehr-1', { kind: 'ehr' });
    const pump = await token('pump-3', { kind: 'pump' });
    const monitor = await token('mon-7', { kind: 'monitor' });
    expect((await send(ehr, from(enrol('P1', 0), 'ehr-1', 'ehr'))).status).toBe(202);

    const attack = from(
      msg('P1', 1, { enrolment: { hypotension: { systolicBelow: 20, mapBelow: 10 } } }),
      'ehr-1',
      'ehr',
    );
    const refused = await send(pump, attack);
    expect(refused.status).toBe(403);
    const body = (await refused.json()) as { error: string; errors: string[] };
    expect(body.errors).toEqual([
      'source.kind: "ehr" is not allowed for a pump token (it sends source.kind "pump")',
      'enrolment: a pump token may not send enrolment (it sends vasopressors, medications)',
    ]);
    expect(body.error).toMatch(/^not allowed for this device token: source.kind/);
    // The same thresholds claimed as a pump: still not a pump's to set.
    expect((await send(pump, from(attack, 'pump-3', 'pump'))).status).toBe(403);

    expect(
      (
        await send(
          monitor,
          from(
            msg('P1', 10, { vitals: { temperatureC: 39.2, systolicBP: 80, meanArterialPressure: 55 } }),
            'mon-7',
            'monitor',
          ),
        )
      ).status,
    ).toBe(202);
    expect(
      (
        await send(
          monitor,
          from(msg('P1', 12, { vitals: { systolicBP: 80, meanArterialPressure: 55 } }), 'mon-7', 'monitor'),
        )
      ).status,
    ).toBe(202);
    await graded();
    const p = await board<PatientBody>('/api/patients/P1');
    expect(p.patient.limits).toMatchObject({ systolicBelow: 90, mapBelow: 65 });
    expect(p.patient.crs.grade).toBe(2);
  });

  it('records the device whose token sent each message, in the audit trail and the timeline', async () => {
    const ehr = await token('ehr-1', { kind: 'ehr' });
    const monitor = await token('mon-7', { kind: 'monitor' });
    await send(ehr, from(enrol('P1', 0), 'whatever-it-says', 'ehr'));
    await send(monitor, from(msg('P1', 5, { vitals: { heartRate: 88 } }, 'hr-1'), 'mon-7', 'monitor'));
    await graded();
    const audit = await (
      await fetch(`${server.url}/api/patients/P1/audit?format=ndjson`, {
        headers: { authorization: `Bearer ${boardKey()}` },
      })
    ).text();
    const assessments = audit
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; details: { sender?: string; messageId: string } })
      .filter((e) => e.type === 'assessment');
    expect(assessments.map((e) => e.details.sender)).toEqual(['ehr-1', 'mon-7']); // the token's device, not what the message claims
    const p = await board<PatientBody>('/api/patients/P1');
    expect(p.timeline.points.find((x) => x.messageId === 'hr-1')!.sender).toBe('mon-7');
  });

  it('does not let a value dated minutes ahead outrank the correction that follows it', async () => {
    const monitor = await token('mon-7', { kind: 'monitor' });
    const at = (ms: number) => new Date(ms).toISOString();
    const ahead = {
      ...from(msg('P1', 0, { vitals: { systolicBP: 70 } }), 'mon-7', 'monitor'),
      observedAt: at(clock + 4 * MIN + 50_000),
    };
    expect((await send(monitor, ahead)).status).toBe(202); // within the 5-minute device-clock allowance
    await graded();
    clock += MIN;
    const correction = {
      ...from(msg('P1', 0, { vitals: { systolicBP: 121 } }), 'mon-7', 'monitor'),
      observedAt: at(clock),
    };
    expect((await send(monitor, correction)).status).toBe(202);
    await graded();
    const p = await board<PatientBody>('/api/patients/P1');
    expect(p.patient.vitals.systolicBP!.value).toBe(121);
    // Six minutes ahead is refused as a clock error (unchanged).
    expect((await send(monitor, { ...correction, messageId: 'far', observedAt: at(clock + 6 * MIN) })).status).toBe(
      400,
    );
  });
});

describe('ward and patient scopes', () => {
  it('a ward token reaches its ward only; a new patient only when placed there', async () => {
    const ehr = await token('ehr-1', { kind: 'ehr' });
    const h4 = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
    await send(ehr, [
      from(enrol('P-H4', 0, { ward: 'H4' }), 'e', 'ehr'),
      from(enrol('P-ICU', 0, { ward: 'ICU' }), 'e', 'ehr'),
    ]);
    await graded();
    const vitals = (p: string) => from(msg(p, 5, { vitals: { heartRate: 90 } }), 'gw-h4', 'monitor');
    expect((await send(h4, vitals('P-H4'))).status).toBe(202);
    const out = await send(h4, vitals('P-ICU'));
    expect(out.status).toBe(403);
    expect(((await out.json()) as { error: string }).error).toBe(
      "not allowed for this device token: patientId: patient P-ICU is in another ward, outside this token's wards (H4)",
    );
    expect((await send(h4, vitals('P-new'))).status).toBe(403);
    // Placed in its ward by the same request, the new patient is its own (the monitor's PV1-3 does this).
    expect(
      (
        await send(h4, [
          from(msg('P-new', 5, { enrolment: { ward: 'H4', bed: '2' } }), 'gw-h4', 'monitor'),
          vitals('P-new'),
        ])
      ).status,
    ).toBe(202);
    // Whatever the order of the request's messages: the vitals first, the placement after.
    expect(
      (
        await send(h4, [
          from(msg('P-new2', 5, { vitals: { heartRate: 88 } }), 'gw-h4', 'monitor'),
          from(msg('P-new2', 6, { enrolment: { ward: 'H4', bed: '3' } }), 'gw-h4', 'monitor'),
        ])
      ).status,
    ).toBe(202);
    // Moving a patient out of its wards is not a ward token's to do.
    expect((await send(h4, from(msg('P-H4', 6, { enrolment: { ward: 'ICU' } }), 'gw-h4', 'monitor'))).status).toBe(403);
  });

  it('FHIR: a ward EHR token enrols a new patient with one transaction (the infusion, dated earlier, and the ward)', async () => {
    // Was refused: the infusion Procedure becomes a message dated at its performedDateTime, before the Encounter
    // that places the patient, and only an earlier message placed one (found by test/unit/scopes-agree.test.ts).
    const ehrH4 = await token('ehr-h4', { kind: 'ehr', wards: ['H4'] });
    const enrolment = from(
      msg('P-fhir', 5, {
        enrolment: { therapy: 'car-t', infusedAt: new Date(T0 - 24 * 60 * MIN).toISOString(), ward: 'H4', bed: '7' },
      }),
      'ehr-h4',
      'ehr',
    );
    const bundle = new FhirEncoder().bundle(enrolment)!;
    const res = await fetch(`${server.url}/fhir/r4`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ehrH4}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(bundle),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it('HL7 v2: a pump token is refused (403, AR naming source.kind); a ward gateway keeps the vitals it may send', async () => {
    const pump = await token('pump-3', { kind: 'pump' });
    const gw = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
    const hl7 = (t: string, text: string) =>
      fetch(`${server.url}/v1/hl7v2`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': 'x-application/hl7-v2+er7' },
        body: text,
      });
    const text = toPcd01({
      ...msg('P9', 5, { vitals: { heartRate: 101, spo2: 95 } }),
      enrolment: { ward: 'H4', bed: '9' },
    } as DeviceMessage)!;
    const refused = await hl7(pump, text);
    expect(refused.status).toBe(403);
    const ack = await refused.text();
    expect(ack).toMatch(/MSA\|AR/);
    expect(ack).toContain('source.kind: "monitor" is not allowed for a pump token');
    const ok = await hl7(gw, text);
    expect(ok.status).toBe(202);
    expect(await ok.text()).toMatch(/MSA\|AA/);
    // PV1-3 naming another ward: that part is refused (AE, ERR on PV1), the vitals are kept... but then the patient
    // is known in H4 only through this message, so a patient in no ward of the token is refused as a whole.
    const elsewhere = await hl7(
      gw,
      toPcd01({
        ...msg('P10', 5, { vitals: { heartRate: 99 } }),
        enrolment: { ward: 'ICU', bed: '1' },
      } as DeviceMessage)!,
    );
    expect(elsewhere.status).toBe(403);
    const text2 = await elsewhere.text();
    expect(text2).toContain('enrolment.ward: \\"ICU\\" is outside this token\'s wards (H4)'.replace(/\\"/g, '"'));
    expect(text2).toContain('patient P10 is in no ward this server knows');
  });
});

describe('the ceiling on new patients', () => {
  it('refuses new patients beyond --max-patients with a clear error, whatever the concurrency, and keeps taking known ones', async () => {
    await server.close();
    server = await start({ maxPatients: 25 });
    const ehr = await token('ehr-1', { kind: 'ehr' });
    const batch = (n: number) =>
      Array.from({ length: 10 }, (_, i) => from(msg(`P-${n}-${i}`, 1, { vitals: { heartRate: 80 } }), 'e', 'ehr'));
    const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => send(ehr, batch(n))));
    const statuses = answers.map((r) => r.status).sort();
    // 503, never 403 (an engine drops a 403): valid messages, the server lacks room; send again (2026-12-06).
    expect(statuses).toEqual([202, 202, 503, 503, 503]);
    const full = answers.find((r) => r.status === 503)!;
    expect(full.headers.get('retry-after')).toBe('60');
    const refusal = (await full.json()) as { error: string; accepted: number };
    expect(refusal.error).toMatch(
      /^no room for a new patient, nothing was accepted: message \[0\] patientId: patient P-\d-0 would be new, and this server already holds (20|2\d) patients with recent data \(the ceiling: crs serve --max-patients 25\); send it again later: the operator is alerted$/,
    );
    expect(refusal.accepted).toBe(0);
    await graded();
    expect((await board<{ patients: number }>('/api/health')).patients).toBe(20);
    // Known patients are still taken; five more new ones fit.
    const known = (await board<{ patients: { patientId: string }[] }>('/api/patients?limit=100')).patients[0]!
      .patientId;
    expect((await send(ehr, from(msg(known, 2, { vitals: { heartRate: 81 } }), 'e', 'ehr'))).status).toBe(202);
    expect((await send(ehr, batch(9).slice(0, 5))).status).toBe(202);
    expect((await send(ehr, from(msg('one-too-many', 2, { vitals: { heartRate: 81 } }), 'e', 'ehr'))).status).toBe(503);
  });

  it('tells every interface to send again (503, Retry-After, AR) and the operator (an alert) while it refuses new patients; a scope refusal stays 403', async () => {
    const lines: string[] = [];
    const told: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        told.push(body);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      await server.close();
      server = await start({
        maxPatients: 1,
        mllpPort: 0,
        log: (line) => lines.push(line),
        alertWebhook: {
          url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
          secret: 's',
          server: 'https://crs.ward.example',
        },
      });
      const ehr = await token('ehr-1', { kind: 'ehr' });
      const h4 = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
      expect((await send(ehr, from(enrol('P1', 0), 'e', 'ehr'))).status).toBe(202);
      await graded();

      // JSON: one message.
      const json = await send(ehr, from(msg('P2', 1, { vitals: { heartRate: 80 } }), 'e', 'ehr'));
      expect([json.status, json.headers.get('retry-after')]).toEqual([503, '60']);
      expect(((await json.json()) as { error: string }).error).toMatch(
        /^no room for a new patient.*patient P2 would be new/,
      );
      // HL7 v2 over HTTP: an AR, 503, naming the patient at its PID.
      const pcd = (p: string, ward: string) =>
        toPcd01({ ...msg(p, 2, { vitals: { heartRate: 101 } }), enrolment: { ward, bed: '1' } } as DeviceMessage)!;
      const hl7 = await fetch(`${server.url}/v1/hl7v2`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ehr}`, 'content-type': 'x-application/hl7-v2+er7' },
        body: pcd('P3', 'H4'),
      });
      expect([hl7.status, hl7.headers.get('retry-after')]).toEqual([503, '60']);
      expect(await hl7.text()).toMatch(
        /MSA\|AR\|[^|]*\|not all: no room for a new patient, send again later[\s\S]*ERR\|\|PID\^1[^|]*\|207[^|]*\|E\|NO_ROOM\^[^|]*\^99CRS\|[^\r]*patient P3 would be new/,
      );
      // MLLP: the same AR.
      expect(await mllp(server.mllpPort!, pcd('P4', 'H4'))).toMatch(
        /MSA\|AR\|[^|]*\|not all: no room for a new patient/,
      );
      // FHIR: 503, an OperationOutcome `transient`.
      const bundle = new FhirEncoder().bundle(from(msg('P5', 3, { vitals: { heartRate: 90 } }), 'e', 'ehr'))!;
      const fhir = await fetch(`${server.url}/fhir/r4`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ehr}`, 'content-type': 'application/fhir+json' },
        body: JSON.stringify(bundle),
      });
      expect([fhir.status, fhir.headers.get('retry-after')]).toEqual([503, '60']);
      const oo = (await fhir.json()) as { issue: { code: string; diagnostics: string }[] };
      expect(oo.issue.map((i) => i.code)).toContain('transient');
      // A token for another ward stays 403, room or not.
      const other = await send(
        h4,
        from({ ...msg('P6', 3, { vitals: { heartRate: 80 } }), enrolment: { ward: 'ICU' } }, 'g', 'monitor'),
      );
      expect(other.status).toBe(403);

      // The operator: standard error once, /api/health, the banner's alerts, the alert webhook.
      const alerts = lines.filter((l) => l.includes('new patient(s) refused'));
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatch(
        /^delivery watch: ALERT \d+ new patient\(s\) refused since \S+, .*raise --max-patients or end monitoring of discharged patients/,
      );
      const health = await board<{
        newPatientsRefused: { count: number; patientIds: string[]; maxPatients: number } | null;
        deliveryAlerts: { key: string }[];
      }>('/api/health');
      expect(health.newPatientsRefused).toMatchObject({
        count: 4,
        patientIds: ['P2', 'P3', 'P4', 'P5'],
        maxPatients: 1,
      });
      expect(health.deliveryAlerts.map((a) => a.key)).toContain('ceiling');
      await until(() => told.some((b) => b.includes('new patient(s) refused')), 'the alert webhook told');

      // Room again (the operator raised the ceiling): P2 is taken, the alert clears.
      await server.close();
      lines.length = 0;
      server = await start({ maxPatients: 10, log: (line) => lines.push(line) });
      expect((await send(ehr, from(msg('P2', 1, { vitals: { heartRate: 80 } }), 'e', 'ehr'))).status).toBe(202);
      expect((await board<{ newPatientsRefused: unknown }>('/api/health')).newPatientsRefused).toBeNull();
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });

  /** A server full with P1 (ward ICU), and a token for ward H4: P1 is outside its scope, a new patient past room. */
  async function fullWithP1InIcu(): Promise<string> {
    await server.close();
    server = await start({ maxPatients: 1 });
    const ehr = await token('ehr-1', { kind: 'ehr' });
    const h4 = await token('gw-h4', { kind: 'monitor', wards: ['H4'] });
    expect((await send(ehr, from(enrol('P1', 0, { ward: 'ICU' }), 'e', 'ehr'))).status).toBe(202);
    await graded();
    return h4;
  }

  it('a request refused for a token scope and for want of room alike is a 403: room would not mend it', async () => {
    const h4 = await fullWithP1InIcu();
    const newInH4 = from({ ...msg('P2', 1, { vitals: { heartRate: 80 } }), enrolment: { ward: 'H4' } }, 'g', 'monitor');
    const mixed = await send(h4, [from(msg('P1', 1, { vitals: { heartRate: 80 } }), 'g', 'monitor'), newInH4]);
    expect([mixed.status, mixed.headers.get('retry-after')]).toEqual([403, null]);
    expect(((await mixed.json()) as { error: string }).error).toMatch(
      /^not allowed for this device token: message \[0\] patientId: patient P1 is in another ward/,
    );
    // The new patient alone: no room, send again.
    expect((await send(h4, newInH4)).status).toBe(503);
  });

  // Until 2026-12-06 a FHIR transaction mixing the two was a 422: final too, but not the scope's 403 JSON and HL7 give.
  it('a FHIR transaction refused for a token scope and for want of room alike is a 403, as JSON and HL7 v2', async () => {
    await fullWithP1InIcu();
    // An EHR of ward H4: P1 (ICU) is outside it; P2, placed in H4, would be a new patient past the ceiling.
    const h4 = await token('ehr-h4', { kind: 'ehr', wards: ['H4'] });
    const enc = new FhirEncoder();
    const p1 = enc.bundle(from(msg('P1', 1, { vitals: { heartRate: 80 } }), 'ehr-h4', 'ehr'))!;
    const p2 = enc.bundle(
      from({ ...msg('P2', 1, { vitals: { heartRate: 80 } }), enrolment: { ward: 'H4' } }, 'ehr-h4', 'ehr'),
    )!;
    const both = { ...p1, entry: [...(p1.entry ?? []), ...(p2.entry ?? [])] };
    const res = await fetch(`${server.url}/fhir/r4`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h4}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(both),
    });
    const oo = (await res.json()) as { issue: { code: string }[] };
    expect([res.status, res.headers.get('retry-after')], JSON.stringify(oo)).toEqual([403, null]);
    expect(oo.issue.map((i) => i.code)).toEqual(expect.arrayContaining(['forbidden', 'transient']));
  });

  // Until 2026-12-06 HL7 v2 answered such a message 503 AR "no room": an engine (crs mllp-bridge too) sent it again
  // for ever, room or not. The scope part wins, as in JSON: 403 AR over HTTP, AR over MLLP, the ERR naming it.
  it('an HL7 v2 message refused for a token scope and for want of room alike is an AR 403, over HTTP and MLLP', async () => {
    const h4 = await fullWithP1InIcu();
    // The listener acts as the H4 token's device (its token issued first).
    await server.close();
    server = await start({ maxPatients: 1, mllpPort: 0, mllpDevice: 'gw-h4' });
    const group = (p: string, ward?: string) =>
      toPcd01({ ...msg(p, 2, { vitals: { heartRate: 101 } }), ...(ward ? { enrolment: { ward, bed: '1' } } : {}) })!;
    const both = [...group('P1').split('\r'), ...group('P2', 'H4').split('\r').slice(1)].join('\r');
    const hl7 = await fetch(`${server.url}/v1/hl7v2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h4}`, 'content-type': 'x-application/hl7-v2+er7' },
      body: both,
    });
    const ack = await hl7.text();
    expect([hl7.status, hl7.headers.get('retry-after')]).toEqual([403, null]);
    expect(ack).toMatch(/MSA\|AR\|[^|]*\|not accepted: not allowed for this device\r/);
    expect(ack).toMatch(/ERR\|\|PID\^1[^|]*\|207[^\r]*patient P1 is in another ward/);
    // Only the patient refused for room carries the code NO_ROOM (ERR-5), not the one refused for the scope (pinned
    // by a mutation run, 2026-12-06).
    expect(ack).toMatch(/ERR\|\|PID\^1[^|]*\|207[^|]*\|E\|\|/);
    expect(applicationErrors(ack)).toEqual(['NO_ROOM']);
    expect(noRoom(hl7.status, ack, both)).toBe(false);
    const overMllp = await mllp(server.mllpPort!, both);
    expect(overMllp).toMatch(/MSA\|AR\|[^|]*\|not accepted: not allowed for this device\r/);
    expect(overMllp).not.toContain(NO_ROOM_ACK);
  });

  it('clears the alert when a new patient is admitted, or after an hour with no refusal', async () => {
    const lines: string[] = [];
    await server.close();
    server = await start({ maxPatients: 1, log: (line) => lines.push(line) });
    const ehr = await token('ehr-1', { kind: 'ehr' });
    expect((await send(ehr, from(enrol('P1', 0), 'e', 'ehr'))).status).toBe(202);
    expect((await send(ehr, from(msg('P2', 1, { vitals: { heartRate: 80 } }), 'e', 'ehr'))).status).toBe(503);
    expect(server.watch.current().map((a) => a.key)).toContain('ceiling');
    clock += 59 * MIN;
    server.watch.check();
    expect(server.watch.current().map((a) => a.key)).toContain('ceiling');
    clock += 2 * MIN;
    server.watch.check();
    expect(server.watch.current().map((a) => a.key)).not.toContain('ceiling');
    expect(lines).toContainEqual(expect.stringMatching(/^delivery watch: cleared: \d+ new patient\(s\) refused since/));
  });
});

async function mllp(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  const decoder = new MllpDecoder();
  const ack = new Promise<string>((resolve) =>
    socket.on('data', (chunk) => {
      for (const e of decoder.push(chunk)) if (e.type === 'frame') resolve(e.text);
    }),
  );
  socket.write(frame(text));
  const a = await ack;
  socket.end();
  return a;
}

describe('MLLP', () => {
  it('acts as a monitor for every patient by default, and as the configured device (its scope, until revoked) with --mllp-device', async () => {
    await server.close();
    server = await start({ mllpPort: 0 });
    const text = (p: string, ward: string) =>
      toPcd01({ ...msg(p, 5, { vitals: { heartRate: 101 } }), enrolment: { ward, bed: '1' } } as DeviceMessage)!;
    expect(await mllp(server.mllpPort!, text('P1', 'ICU'))).toMatch(/MSA\|AA/);
    await server.close();

    await expect(start({ mllpPort: 0, mllpDevice: 'gw-h4' })).rejects.toThrow(
      /--mllp-device gw-h4: no active token for this device; issue one first/,
    );
    server = await start();
    const { record } = issueToken('gw-h4', new Date(clock), { kind: 'monitor', wards: ['H4'] });
    await server.tokens.put(record);
    await server.close();
    server = await start({ mllpPort: 0, mllpDevice: 'gw-h4' });
    expect(await mllp(server.mllpPort!, text('P2', 'H4'))).toMatch(/MSA\|AA/);
    expect(await mllp(server.mllpPort!, text('P3', 'ICU'))).toMatch(/MSA\|AR[\s\S]*outside this token's wards \(H4\)/);
    // A scope this version cannot read (a newer version's kind, wards as text): the AR its token gets over HTTP,
    // never the rights of no kind or of every ward (a kind it did not know was answered "internal error; send again").
    const scoped = server.db.prepare('UPDATE device_tokens SET scope = ? WHERE token_id = ?');
    scoped.run('{"kind":"camera","wards":["H4"]}', record.tokenId);
    expect(await mllp(server.mllpPort!, text('P2', 'H4'))).toContain(escapeHl7(UNKNOWN_KIND('camera')));
    scoped.run('{"kind":"monitor","wards":"ICU-H4"}', record.tokenId);
    expect(await mllp(server.mllpPort!, text('P3', 'ICU'))).toContain(escapeHl7(UNREADABLE_SCOPE('wards')));
    scoped.run('{"kind":"monitor","wards":["H4"]}', record.tokenId);
    await server.tokens.revoke(record.tokenId, new Date(clock).toISOString());
    expect(await mllp(server.mllpPort!, text('P2', 'H4'))).toMatch(/MSA\|AR[\s\S]*device token revoked/);
    await graded();
    const audit = await (
      await fetch(`${server.url}/api/patients/P2/audit?format=ndjson`, {
        headers: { authorization: `Bearer ${boardKey()}` },
      })
    ).text();
    expect(audit).toContain('"sender":"gw-h4"');
  });

  // Expiry (2026-12-06): the listener decides at the server's clock, as HTTP does, and the security log says why.
  it('refuses an expired token at the server clock over HTTP and MLLP (and logs it), and takes the rotated one', async () => {
    const text = (p: string) =>
      toPcd01({ ...msg(p, 5, { vitals: { heartRate: 101 } }), enrolment: { ward: 'H4', bed: '1' } } as DeviceMessage)!;
    const expiresAt = new Date(clock + 10 * MIN).toISOString();
    const old = issueToken('gw-x', new Date(clock), { kind: 'monitor' }, expiresAt);
    await server.tokens.put(old.record);
    await server.close();
    server = await start({ mllpPort: 0, mllpDevice: 'gw-x' });
    const vitals = from(msg('P1', 5, { vitals: { heartRate: 90 } }), 'gw-x', 'monitor');
    expect((await send(old.token, vitals)).status).toBe(202);
    expect(await mllp(server.mllpPort!, text('P2'))).toMatch(/MSA\|AA/);
    clock += 10 * MIN; // the instant it expires: refused
    const refused = await send(old.token, vitals);
    expect([refused.status, await refused.json()]).toEqual([403, { error: TOKEN_EXPIRED(expiresAt) }]);
    expect(await mllp(server.mllpPort!, text('P3'))).toContain(escapeHl7(TOKEN_EXPIRED(expiresAt)));
    const logged = readFileSync(join(dir, SECURITY_LOG_FILE), 'utf8');
    expect(logged).toContain(`"reason":${JSON.stringify(TOKEN_EXPIRED(expiresAt))}`);
    // A newer token of the device (a rotation) is taken over MLLP while the old one is refused.
    await server.tokens.put(issueToken('gw-x', new Date(clock), { kind: 'monitor' }).record);
    expect(await mllp(server.mllpPort!, text('P4'))).toMatch(/MSA\|AA/);
  });

  // Until 2026-12-06 the listener's refusals went to the server's log (stdout), not to the security log where the HTTP
  // routes' go: each is a device-token-refused line there, by the device's and the token's ids, never the token.
  it("records the listener's token refusals in the security log, as HTTP's (ids only), not in the server's log", async () => {
    const text = (p: string) =>
      toPcd01({ ...msg(p, 5, { vitals: { heartRate: 101 } }), enrolment: { ward: 'H4', bed: '1' } } as DeviceMessage)!;
    const expiresAt = new Date(clock + 10 * MIN).toISOString();
    const t = issueToken('gw-s', new Date(clock), { kind: 'monitor' }, expiresAt);
    await server.tokens.put(t.record);
    await server.close();
    const logs: string[] = [];
    server = await start({ mllpPort: 0, mllpDevice: 'gw-s', log: (l) => logs.push(l) });
    expect(await mllp(server.mllpPort!, text('P1'))).toMatch(/MSA\|AA/);
    const scoped = server.db.prepare('UPDATE device_tokens SET scope = ? WHERE token_id = ?');
    scoped.run('{"kind":"camera"}', t.record.tokenId);
    expect(await mllp(server.mllpPort!, text('P2'))).toMatch(/MSA\|AR/);
    scoped.run('{"kind":"monitor"}', t.record.tokenId);
    clock += 10 * MIN;
    expect(await mllp(server.mllpPort!, text('P3'))).toMatch(/MSA\|AR/);
    await server.tokens.revoke(t.record.tokenId, new Date(clock).toISOString());
    expect(await mllp(server.mllpPort!, text('P4'))).toMatch(/MSA\|AR/);
    const file = readFileSync(join(dir, SECURITY_LOG_FILE), 'utf8');
    const lines = file
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const claimed = { listener: 'mllp', device: 'gw-s', tokenId: t.record.tokenId };
    expect(lines.map(({ at: _, ...rest }) => rest)).toEqual([
      { event: 'device-token-refused', reason: UNKNOWN_KIND('camera'), client: '127.0.0.1', claimed },
      { event: 'device-token-refused', reason: TOKEN_EXPIRED(expiresAt), client: '127.0.0.1', claimed },
      {
        event: 'device-token-refused',
        reason: TOKEN_REVOKED(),
        client: '127.0.0.1',
        claimed: { ...claimed, tokenId: null },
      },
    ]);
    for (const secret of [t.token, t.record.hash, 'P2', 'P3', 'P4']) expect(file).not.toContain(secret);
    expect(logs.filter((l) => l.startsWith('mllp:'))).toEqual([]);
  });

  // The newest token not expired decides, alone: a newest the server cannot read is refused, never passed over for an
  // older token's scope (the operator's latest word on the device).
  it('decides MLLP by the newest token not expired, refusing one it cannot read rather than taking an older scope', async () => {
    const text = (p: string, ward: string) =>
      toPcd01({ ...msg(p, 5, { vitals: { heartRate: 101 } }), enrolment: { ward, bed: '1' } } as DeviceMessage)!;
    await server.tokens.put(issueToken('gw-y', new Date(clock - MIN), { kind: 'monitor', wards: ['H4'] }).record);
    const newest = issueToken('gw-y', new Date(clock), { kind: 'monitor', wards: ['ICU'] });
    await server.tokens.put(newest.record);
    await server.close();
    server = await start({ mllpPort: 0, mllpDevice: 'gw-y' });
    expect(await mllp(server.mllpPort!, text('P1', 'ICU'))).toMatch(/MSA\|AA/);
    expect(await mllp(server.mllpPort!, text('P2', 'H4'))).toMatch(/MSA\|AR[\s\S]*outside this token's wards \(ICU\)/);
    server.db
      .prepare('UPDATE device_tokens SET scope = ? WHERE token_id = ?')
      .run('{"kind":"camera","wards":["ICU"]}', newest.record.tokenId);
    expect(await mllp(server.mllpPort!, text('P3', 'H4'))).toContain(escapeHl7(UNKNOWN_KIND('camera')));
  });

  it('decides MLLP by an older token when the newest expired, and by the newest expiry when all did (pinned by a mutation run)', async () => {
    const text = (p: string) =>
      toPcd01({ ...msg(p, 5, { vitals: { heartRate: 101 } }), enrolment: { ward: 'H4', bed: '1' } } as DeviceMessage)!;
    const olderEnd = new Date(clock + 20 * MIN).toISOString();
    const newestEnd = new Date(clock + 10 * MIN).toISOString();
    await server.tokens.put(issueToken('gw-z', new Date(clock - MIN), { kind: 'monitor' }, olderEnd).record);
    await server.tokens.put(issueToken('gw-z', new Date(clock), { kind: 'monitor' }, newestEnd).record);
    await server.close();
    server = await start({ mllpPort: 0, mllpDevice: 'gw-z' });
    clock += 10 * MIN; // the newest expired: the older one, still taken, decides
    expect(await mllp(server.mllpPort!, text('P1'))).toMatch(/MSA\|AA/);
    clock += 10 * MIN; // both expired: the newest's expiry is said
    expect(await mllp(server.mllpPort!, text('P2'))).toContain(escapeHl7(TOKEN_EXPIRED(newestEnd)));
  });

  // Until 2026-12-06 an empty --mllp-device was no device: the listener sent as a monitor for every patient, while
  // crs serve took it for a device and said nothing of a listener open to the network (openMllpWarning).
  it('refuses an empty --mllp-device rather than sending as a monitor for every patient', async () => {
    await server.close();
    await expect(start({ mllpPort: 0, mllpDevice: '' })).rejects.toThrow(/--mllp-device : no active token/);
    server = await start();
  });
});
