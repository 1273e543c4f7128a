// The device-clock rule (shared/domain/device-clock.ts) decided alike on every front, as docs/contract.md says: the
// same messages sent as JSON, in a batch, as HL7 v2 over HTTP and over MLLP, and as FHIR, to `crs serve` and to the
// AWS ingest function (behind the emulator's HTTP front), both on the default limit of 7 days. A monitor whose clock
// reset to 1970 or to year 0000, or that runs 8 days behind, is refused on each with "check the device clock" and a
// status the sender can act on (400, AE, a 422 OperationOutcome); one 6 days behind (a gateway's spool after an
// outage), an infusion Procedure charted 30 days after it was given, and an EHR's enrolment of last month are taken.
// `crs replay` (no arrival time) refuses only what is before 2000-01-01.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { checkReplayed } from '#app/ingest.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { deviceClockErrors, maxObservationAgeMs, maxObservationAgeSetting } from '#domain/device-clock.ts';
import { DAY, HOUR } from '#domain/time.ts';
import type { HttpFront } from '#hosts/aws-emulator/http-front.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { DEVICE_ROUTES, frontFor, ingestFunction } from '#test/support/front.ts';
import { MemoryQueue, MemoryTokenStore } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

const reading = (id: string, observedAt: string): DeviceMessage => ({
  messageId: id,
  patientId: 'P-1',
  observedAt,
  source: { deviceId: 'mon-1', kind: 'monitor' },
  vitals: { systolicBP: 82, heartRate: 100 },
});
const enrolment = (id: string, observedAt: string, infusedAt: string): DeviceMessage => ({
  messageId: id,
  patientId: 'P-1',
  observedAt,
  source: { deviceId: 'ehr-1', kind: 'ehr' },
  enrolment: { therapy: 'car-t', product: 'axi-cel', infusedAt, weightKg: 70 },
});

const CLOCK = /check the device clock$/;
/** Each case: the message, whether it is taken, and what names the refusal. */
const CASES: {
  name: string;
  message: DeviceMessage;
  taken: boolean;
  error?: RegExp;
  fhirError?: RegExp;
  noHl7?: true;
}[] = [
  { name: '6 days behind (a spool)', message: reading('m-6d', iso(NOW - 6 * DAY)), taken: true },
  {
    name: '8 days behind',
    message: reading('m-8d', iso(NOW - 8 * DAY)),
    taken: false,
    error:
      /^observedAt: "2026-01-02T09:00:00(\.000)?Z" is 8 days before its arrival \(server time 2026-01-10T09:00:00Z\); the limit is 7 days: check the device clock$/,
  },
  {
    name: 'a clock reset to 1970',
    message: reading('m-1970', '1970-01-01T00:00:00Z'),
    taken: false,
    error:
      /^observedAt: "1970-01-01T00:00:00(\.000)?Z" is over 56 years before its arrival .*the limit is 7 days: check the device clock$/,
  },
  {
    name: 'year 0000',
    message: reading('m-0000', '0000-01-01T00:00:00Z'),
    taken: false,
    error:
      /^observedAt: "0000-01-01T00:00:00(\.000)?Z" is over 2026 years before its arrival .*check the device clock$/,
    // FHIR's own dateTime has no year 0000: refused by its time rule first.
    fhirError: /^"0000-01-01T00:00:00Z" is not a real date and time/,
    // The test's HL7 encoder writes 4-digit years only from 1000: the 1970 case stands for HL7 v2.
    noHl7: true,
  },
  {
    name: 'an infusion charted 30 days after it was given (its own time)',
    message: enrolment('e-30d', iso(NOW - 30 * DAY), iso(NOW - 30 * DAY)),
    taken: true,
  },
  {
    name: 'an infusion time 35 years ahead (a year typo)',
    message: enrolment('e-typo', iso(NOW - HOUR), '2061-01-10T08:00:00Z'),
    taken: false,
    error:
      /^enrolment\.infusedAt: "2061-01-10T08:00:00(\.000)?Z" is over 35 years after the message's arrival \(server time 2026-01-10T09:00:00Z\): an infusion is sent once given; check the date and the sender's clock$/,
    // FHIR dates the infusion Procedure's message at the infusion: its time is refused as from the future too.
    fhirError:
      /^(observedAt: "2061-01-10T08:00:00Z" is in the future .*|enrolment\.infusedAt: "2061-01-10T08:00:00Z" is over 35 years after .*)$/,
  },
];

// ------------------------------------------------------------------------------------------------------------
// The fronts, as a sender sees them: taken or not, and the error text.

type Outcome = { taken: boolean; errors: string[]; status: number };
type Send = (m: DeviceMessage) => Promise<Outcome>;

const json =
  (base: string, token: string): Send =>
  async (m) => {
    const r = await fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    const body = (await r.json()) as { errors?: string[] };
    return { taken: r.status === 202, errors: body.errors ?? [], status: r.status };
  };
const batch =
  (base: string, token: string): Send =>
  async (m) => {
    const r = await fetch(`${base}/v1/messages/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify([m]),
    });
    const body = (await r.json()) as { errors?: { index: number; errors: string[] }[] };
    return { taken: r.status === 202, errors: (body.errors ?? []).flatMap((e) => e.errors), status: r.status };
  };
/** ERR-8 of each ERR segment, and whether MSA-1 is AA. */
const fromAck = (ack: string, status: number): Outcome => {
  const segments = ack.split('\r');
  const code = segments.find((s) => s.startsWith('MSA|'))?.split('|')[1];
  const errors = segments.filter((s) => s.startsWith('ERR|')).map((s) => s.split('|')[8] ?? '');
  return {
    taken: code === 'AA',
    errors: errors.map((e) => e.replaceAll('\\S\\', '^').replaceAll('\\T\\', '&')),
    status,
  };
};
const hl7 =
  (base: string, token: string): Send =>
  async (m) => {
    const r = await fetch(`${base}/v1/hl7v2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/hl7-v2' },
      body: toPcd01(m)!,
    });
    return fromAck(await r.text(), r.status);
  };
const fhir =
  (base: string, token: string): Send =>
  async (m) => {
    const r = await fetch(`${base}/fhir/r4/Bundle`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(new FhirEncoder().bundle(m)),
    });
    const body = (await r.json()) as { issue?: { severity: string; diagnostics?: string }[] };
    const errors = (body.issue ?? []).filter((i) => i.severity === 'error').map((i) => i.diagnostics ?? '');
    return { taken: r.status === 200 || r.status === 201 || r.status === 202, errors, status: r.status };
  };

describe('the device-clock rule on every front of both backends', () => {
  let dir: string;
  let embedded: EmbeddedServer;
  let aws: HttpFront;
  let mllp: MllpClient;
  // One token per sender kind on each backend: a monitor gateway's for readings, the EHR's for the enrolments.
  const issued = () => ({
    monitor: issueToken('mon-gw', new Date(NOW), { kind: 'monitor' }),
    ehr: issueToken('ehr-gw', new Date(NOW), { kind: 'ehr' }),
  });
  const embeddedTokens = issued();
  const awsTokens = issued();
  const by =
    (make: (base: string, token: string) => Send, base: () => string, tokens: ReturnType<typeof issued>): Send =>
    (m) =>
      make(base(), tokens[m.source.kind === 'ehr' ? 'ehr' : 'monitor'].token)(m);

  beforeAll(async () => {
    // The default limit: the test run sets CRS_MAX_OBSERVATION_AGE_DAYS for servers fed the 2026-01 fixtures.
    vi.stubEnv('CRS_MAX_OBSERVATION_AGE_DAYS', '');
    dir = mkdtempSync(join(tmpdir(), 'crs-clock-agree-'));
    embedded = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      mllpPort: 0,
      pageStream: new PassThrough(),
      log: () => undefined,
      now: () => NOW,
    });
    for (const t of Object.values(embeddedTokens)) await embedded.tokens.put(t.record);
    const tokens = new MemoryTokenStore();
    for (const t of Object.values(awsTokens)) await tokens.put(t.record);
    const { maxObservationAgeSetting } = await import('#domain/device-clock.ts');
    aws = await frontFor(
      'ingest',
      await ingestFunction({
        queue: new MemoryQueue(),
        tokens,
        now: () => NOW,
        // What liveDeps gives the function when the stack sets no limit.
        maxObservationAgeMs: maxObservationAgeSetting(undefined),
      }),
      DEVICE_ROUTES,
    );
    mllp = new MllpClient('127.0.0.1', embedded.mllpPort!);
  });
  afterAll(async () => {
    mllp?.close();
    await aws?.close();
    await embedded?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the same times with the same words, and takes the same, on JSON, batch, HL7 v2 (HTTP, MLLP) and FHIR', async () => {
    const fronts: Record<string, Send> = {
      'embedded JSON': by(json, () => embedded.url, embeddedTokens),
      'embedded batch': by(batch, () => embedded.url, embeddedTokens),
      'embedded FHIR': by(fhir, () => embedded.url, embeddedTokens),
      'AWS JSON': by(json, () => aws.url, awsTokens),
      'AWS batch': by(batch, () => aws.url, awsTokens),
      'AWS FHIR': by(fhir, () => aws.url, awsTokens),
    };
    const hl7Fronts: Record<string, Send> = {
      'embedded HL7 v2': by(hl7, () => embedded.url, embeddedTokens),
      'AWS HL7 v2': by(hl7, () => aws.url, awsTokens),
      'embedded MLLP': async (m) => fromAck(await mllp.send(toPcd01(m)!), 0),
    };
    for (const c of CASES) {
      // HL7 v2 carries a monitor's readings; the enrolment is the EHR's, as JSON and FHIR.
      const all = c.message.vitals && !c.noHl7 ? { ...fronts, ...hl7Fronts } : fronts;
      for (const [front, send] of Object.entries(all)) {
        const o = await send(structuredClone(c.message));
        expect(o.taken, `${c.name} on ${front}: ${JSON.stringify(o)}`).toBe(c.taken);
        if (c.taken) continue;
        expect(o.errors.length, `${c.name} on ${front}`).toBeGreaterThan(0);
        const error = front.endsWith('FHIR') ? (c.fhirError ?? c.error!) : c.error!;
        for (const e of o.errors) expect(e, `${c.name} on ${front}`).toMatch(error);
        // A status the sender can act on: 400 for JSON, an AE for HL7 v2 (422 over HTTP), a 422 OperationOutcome.
        if (front.endsWith('JSON') || front.endsWith('batch')) expect(o.status).toBe(400);
        else if (front !== 'embedded MLLP') expect(o.status, `${c.name} on ${front}`).toBe(422);
      }
    }
  });

  it('a clock behind by the refused span is answered AE over MLLP, never AR (the monitor would resend it for ever)', async () => {
    const ack = await mllp.send(toPcd01(reading('m-mllp', '1970-01-01T00:00:00Z'))!);
    expect(ack).toMatch(/\rMSA\|AE\|/);
    expect(ack).toMatch(CLOCK.source.replace('$', ''));
  });
});

describe('crs replay, which has no arrival time', () => {
  it('refuses what is before 2000-01-01 and takes last year, naming the field', () => {
    expect(checkReplayed(reading('r-1', '1999-12-31T23:59:59Z'))).toEqual({
      ok: false,
      errors: [
        'observedAt: "1999-12-31T23:59:59Z" is before 2000-01-01, the earliest time taken: check the device clock',
      ],
    });
    expect(checkReplayed(reading('r-2', '2000-01-01T00:00:00Z')).ok).toBe(true);
    expect(checkReplayed(enrolment('r-3', '2026-01-10T08:00:00Z', '1926-01-08T08:00:00Z'))).toEqual({
      ok: false,
      errors: [
        'enrolment.infusedAt: "1926-01-08T08:00:00Z" is before 2000-01-01, the earliest time taken: check the date',
      ],
    });
  });

  it('no longer pairs a year-0000 low blood pressure with a real one into CRS 2', () => {
    const replay = new Replay(DEFAULT_CONFIG);
    const lines = [
      enrolment('e', '2026-01-10T07:00:00Z', '2026-01-08T08:00:00Z'),
      reading('bp-0000', '0000-01-01T00:00:00Z'),
      reading('bp-now', '2026-01-10T08:00:00Z'),
    ].map((m, i) => replay.line(JSON.stringify(m), i + 1));
    expect(lines[1]).toEqual([
      {
        type: 'rejected',
        line: 2,
        errors: [
          'observedAt: "0000-01-01T00:00:00Z" is before 2000-01-01, the earliest time taken: check the device clock',
        ],
      },
    ]);
    expect(replay.state('P-1')?.notified.crs.grade).toBe(0);
    expect(lines[2]!.some((e) => e.type === 'notification')).toBe(false);
  });
});

describe('the device-clock refusal names how far behind a time is', () => {
  const message = (observedAt: string): DeviceMessage => ({
    messageId: 'm1',
    patientId: 'P-1',
    observedAt,
    source: { deviceId: 'mon-1', kind: 'monitor' },
    vitals: { heartRate: 80 },
  });
  const arrival = { atMs: Date.parse('2026-01-10T09:00:00Z'), behindMs: 7 * DAY };

  it('a minute past the limit reads as over it, never as the limit itself', () => {
    expect(deviceClockErrors(message('2026-01-03T08:59:00Z'), arrival)).toEqual([
      'observedAt: "2026-01-03T08:59:00Z" is over 7 days before its arrival (server time 2026-01-10T09:00:00Z); the limit is 7 days: check the device clock',
    ]);
    expect(deviceClockErrors(message('2026-01-03T09:00:00Z'), arrival)).toEqual([]);
  });
});

describe('the device-clock rule at its edges (pinned by a mutation run)', () => {
  const at = Date.parse('2026-01-10T09:00:00Z');
  const withInfusion = (infusedAt: string): DeviceMessage => enrolment('e-1', iso(at - HOUR), infusedAt);

  it('takes an infusion time exactly 5 minutes after the arrival, refuses one a second more, and names how far', () => {
    expect(deviceClockErrors(withInfusion(iso(at + 5 * 60_000)), { atMs: at })).toEqual([]);
    expect(deviceClockErrors(withInfusion(iso(at + 60_000)), { atMs: at })).toEqual([]);
    expect(deviceClockErrors(withInfusion(iso(at + 5 * 60_000 + 1000)), { atMs: at })).toEqual([
      'enrolment.infusedAt: "2026-01-10T09:05:01.000Z" is over 5 min after the message\'s arrival (server time 2026-01-10T09:00:00Z): an infusion is sent once given; check the date and the sender\'s clock',
    ]);
  });

  it('takes an observedAt exactly 5 minutes ahead of the arrival, refuses one a millisecond more', () => {
    // Pinned by a mutation run (2026-12-06): "more than 5 minutes ahead is refused" (docs/grading-rules.md section 1).
    const reading = (ms: number) => ({ ...withInfusion('2026-01-08T08:00:00Z'), observedAt: iso(at + ms) });
    expect(deviceClockErrors(reading(5 * 60_000), { atMs: at })).toEqual([]);
    expect(deviceClockErrors(reading(5 * 60_000 + 1), { atMs: at })).toHaveLength(1);
  });

  it('refuses an infusion time a millisecond before 2000-01-01', () => {
    expect(deviceClockErrors(withInfusion('1999-12-31T23:59:59.999Z'))).toHaveLength(1);
  });

  it('takes an infusion time of 2000-01-01 itself', () => {
    expect(deviceClockErrors(withInfusion('2000-01-01T00:00:00Z'))).toEqual([]);
    expect(deviceClockErrors(withInfusion('1999-12-31T23:59:59Z'))).toHaveLength(1);
  });

  it('spans: minutes below 2 hours, hours from 2 hours, days from 2 days, years from 2 years, whole or "over"', () => {
    const ahead = (ms: number) =>
      deviceClockErrors(withInfusion(iso(at + ms)), { atMs: at })[0]!.match(/ is (.*) after the message's/)![1];
    expect(ahead(2 * HOUR - 60_000)).toBe('119 min');
    expect(ahead(2 * HOUR)).toBe('2 h');
    expect(ahead(2 * DAY - HOUR)).toBe('47 h');
    expect(ahead(2 * DAY)).toBe('2 days');
    expect(ahead(8.9 * DAY)).toBe('over 8 days');
    expect(ahead(729 * DAY)).toBe('729 days');
    // Never "over 1 years": days until 2 years, of 365.2425 days each.
    expect(ahead(730 * DAY)).toBe('730 days');
    expect(ahead(2 * 365.2425 * DAY)).toBe('2 years');
    expect(ahead(731 * DAY)).toBe('over 2 years');
  });

  it('names a limit of 1 day, and of a day and a half, as a site may set it', () => {
    const old = reading('m-old', iso(at - 3 * DAY));
    expect(deviceClockErrors(old, { atMs: at, behindMs: DAY })[0]).toMatch(/; the limit is 1 day: check/);
    expect(deviceClockErrors(old, { atMs: at, behindMs: 1.5 * DAY })[0]).toMatch(/; the limit is 1\.5 days: check/);
  });

  it('holds an enrolment that carries readings too to the limit: only an enrolment alone is let through', () => {
    const both: DeviceMessage = {
      ...enrolment('e-2', iso(at - 8 * DAY), iso(at - 8 * DAY)),
      vitals: { heartRate: 80 },
    };
    expect(deviceClockErrors(both, { atMs: at, behindMs: 7 * DAY })).toHaveLength(1);
    const alone = enrolment('e-3', iso(at - 8 * DAY), iso(at - 8 * DAY));
    expect(deviceClockErrors(alone, { atMs: at, behindMs: 7 * DAY })).toEqual([]);
  });

  it('reads a limit setting in days: 1-36500, a decimal, spaces round it; nothing else', () => {
    expect(maxObservationAgeMs('1')).toBe(DAY);
    expect(maxObservationAgeMs(1)).toBe(DAY);
    expect(maxObservationAgeMs(' 7 ')).toBe(7 * DAY);
    expect(maxObservationAgeMs('1.5')).toBe(1.5 * DAY);
    expect(maxObservationAgeMs('36500')).toBe(36_500 * DAY);
    // Whole milliseconds, whatever the decimal.
    expect(maxObservationAgeMs('1.0000001')).toBe(Math.round(1.0000001 * DAY));
    for (const bad of ['0.99', '36501', '7e2', '0x10', '7 days', '-7', '', 'NaN'])
      expect(maxObservationAgeMs(bad), bad).toBeUndefined();
    expect(maxObservationAgeMs(0.5)).toBeUndefined();
    expect(maxObservationAgeSetting(undefined)).toBe(7 * DAY);
    expect(maxObservationAgeSetting('')).toBe(7 * DAY);
    expect(maxObservationAgeSetting('30')).toBe(30 * DAY);
    expect(() => maxObservationAgeSetting('0')).toThrow(
      'CRS_MAX_OBSERVATION_AGE_DAYS "0" is not a number of days, 1-36500',
    );
  });
});
