// Does every answer tell the sender the truth about what was durably queued? Random requests of good, refused and
// hostile observations (out of range, a device clock a week behind, a patient outside the token's patients, a
// server full of patients, an item twice in one request, one patient's observations in two places of one request,
// the queue failing some entries or all) go through the device routes both hosts share (JSON, batch, HL7 v2, FHIR
// batch, transaction, collection and one resource) onto each backend's queue: the AWS one (SqsFifoQueue, SQS mocked
// with partial SendMessageBatch failures) and the embedded one (the SQLite inbox, crs serve's patient directory and
// --max-patients). Each observation's answer (a status, an HL7 ERR naming its OBX or PID, a FHIR entry's status) is
// compared with the queue afterwards: said taken, it is there; said refused, this request put nothing of it there.
// A 503 comes exactly when the queue failed; it is sent again (as a sender does), and what the failed attempt had
// queued must be absorbed by the resend (one content per id). docs/testing.md says what it found.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SQSClient,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchResultEntry,
  type BatchResultErrorEntry,
} from '@aws-sdk/client-sqs';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SqsFifoQueue } from '#adapters/aws/sqs-fifo-queue.ts';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqlitePatientDirectory } from '#adapters/sqlite/patients.ts';
import { SqliteQueue } from '#adapters/sqlite/queue.ts';
import { issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { handleDeviceRequest, type DeviceAnswer } from '#app/interfaces/http.ts';
import type { PatientDirectory } from '#app/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { MessageQueue } from '#ports';
import { MemoryTokenStore } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const PATIENTS = ['P-1', 'P-2', 'P-3', 'P-4', 'P-5', 'P-6'] as const;
const FIELDS = ['heartRate', 'spo2', 'temperatureC', 'respiratoryRate'] as const;
type Field = (typeof FIELDS)[number];
/** Out of the contract's range: refused (a garbled reading). */
const BAD: Record<Field, number> = { heartRate: 999, spo2: 130, temperatureC: 384.5, respiratoryRate: 400 };
const GOOD: Record<Field, readonly number[]> = {
  heartRate: [80, 95, 120],
  spo2: [92, 97],
  temperatureC: [37.2, 38.6],
  respiratoryRate: [16, 24],
};

/** One patient's readings at one time: what a monitor sends (a JSON message, a PID group, FHIR Observations). */
interface Group {
  patientId: string;
  /** Minutes before the server's time; a week and more: a device clock gone wrong. */
  minutesAgo: number;
  vitals: Partial<Record<Field, number>>;
  /** The oxygen support: HL7 v2 sends the device, FiO2 and flow as three OBX, FHIR as one Observation. */
  oxygen?: { device: 'nasal_cannula' | 'simple_mask'; fio2?: number; flowLpm?: number };
  /** Where the patient is (JSON enrolment.ward, HL7 PV1-3, a FHIR Encounter): a ward-scoped token reaches H4 only. */
  ward?: 'H4' | 'H5';
  /**
   * The blood pressure, either half possibly impossible or missing: HL7 v2 sends it as the pair 8480-6/8462-4 or, with
   * `panel`, as one OBX 85354-9 `systolic/diastolic` (`86/480`, `86/`: an EHR's flowsheet row); the others as two values.
   */
  bp?: { panel: boolean; systolic?: number; diastolic?: number };
}

const FORMATS = ['json', 'batch', 'hl7', 'fhir-batch', 'fhir-transaction', 'fhir-collection', 'fhir-resource'] as const;
type Format = (typeof FORMATS)[number];

interface Request {
  format: Format;
  /** `scoped`: a monitor's token for P-1 and P-2; `ward`: for ward H4; `pump`: a pump's, which sends no vitals. */
  token: 'ehr' | 'scoped' | 'ward' | 'pump';
  groups: Group[];
  /** The queue: takes all; fails some entries once (SQS retries them); is down for the request's first attempt. */
  queue: 'up' | 'flaky' | 'down';
}

const group: fc.Arbitrary<Group> = fc
  .record({
    patientId: fc.constantFrom(...PATIENTS),
    // Few times, so that one patient's groups often share one (merged into one message by HL7 v2 and FHIR).
    minutesAgo: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(1, 2) },
      { weight: 1, arbitrary: fc.constant(8 * 24 * 60) },
    ),
    vitals: fc
      .uniqueArray(fc.constantFrom(...FIELDS), { minLength: 1, maxLength: 2 })
      .chain((fields) =>
        fc.tuple(
          ...fields.map((f) =>
            fc
              .oneof(
                { weight: 6, arbitrary: fc.constantFrom(...GOOD[f]) },
                { weight: 1, arbitrary: fc.constant(BAD[f]) },
              )
              .map((v) => [f, v] as const),
          ),
        ),
      )
      .map((pairs) => Object.fromEntries(pairs) as Partial<Record<Field, number>>),
    oxygen: fc.option(
      fc
        .record({
          device: fc.constantFrom('nasal_cannula' as const, 'simple_mask' as const),
          // 40 is a percent sent as a fraction: refused ("a percent? send 0.4").
          fio2: fc.option(fc.constantFrom(0.3, 0.5, 40), { nil: undefined }),
          flowLpm: fc.option(fc.constantFrom(2, 6), { nil: undefined }),
        })
        .map((o) => JSON.parse(JSON.stringify(o)) as NonNullable<Group['oxygen']>),
      { nil: undefined, freq: 3 },
    ),
    ward: fc.option(fc.constantFrom('H4' as const, 'H5' as const), { nil: undefined, freq: 3 }),
    bp: fc.option(
      fc
        .record({
          panel: fc.boolean(),
          // 400 and 480: out of the contract's range (0-300, 0-250).
          systolic: fc.option(fc.constantFrom(86, 120, 86, 400), { nil: undefined, freq: 4 }),
          diastolic: fc.option(fc.constantFrom(48, 80, 48, 480), { nil: undefined, freq: 4 }),
        })
        .filter((b) => b.systolic !== undefined || b.diastolic !== undefined)
        .map((b) => JSON.parse(JSON.stringify(b)) as NonNullable<Group['bp']>),
      { nil: undefined, freq: 3 },
    ),
  })
  .map((g) => JSON.parse(JSON.stringify(g)) as Group);

const request: fc.Arbitrary<Request> = fc
  .record({
    format: fc.constantFrom(...FORMATS),
    token: fc.constantFrom('ehr' as const, 'ehr' as const, 'scoped' as const, 'ward' as const, 'pump' as const),
    groups: fc.array(group, { minLength: 1, maxLength: 4 }),
    twice: fc.boolean(),
    queue: fc.constantFrom('up' as const, 'up' as const, 'flaky' as const, 'down' as const),
  })
  .map(({ format, token, groups, twice, queue }) => {
    let g = format === 'json' ? groups.slice(0, 1) : groups;
    if (format === 'fhir-resource') {
      const { oxygen: _, bp: _bp, ...one } = g[0]!;
      g = [{ ...one, vitals: Object.fromEntries(Object.entries(g[0]!.vitals).slice(0, 1)) }];
    }
    // The same item twice in one request (a gateway's retry inside its own batch).
    else if (twice && format !== 'json') g = [...g, g[0]!];
    return { format, token, groups: g, queue };
  });

/** One observation as sent, and where the answer can name it. */
interface Sent {
  patientId: string;
  ms: number;
  /** 'vitals.heartRate', 'oxygen.fio2', ... */
  field: string;
  value: number | string;
  /** The JSON message's index, the FHIR entry's; the HL7 OBX's place in the message (1-based) and its PID's. */
  index: number;
  obx: number;
  pid: number;
  /** The PV1 of its group (HL7 v2), 0 when none. */
  pv1: number;
  /** A half of an HL7 v2 blood pressure panel (85354-9). */
  panel?: true;
}

interface Built {
  path: string;
  type: string;
  body: string;
  sent: Sent[];
}

const observedAt = (g: Group) => new Date(NOW - g.minutesAgo * 60_000).toISOString();

/** The group's vitals, the blood pressure last (its OBX, or its panel's, after the others). */
const vitalsOf = (g: Group): Record<string, number> => ({
  ...g.vitals,
  ...(g.bp?.systolic !== undefined ? { systolicBP: g.bp.systolic } : {}),
  ...(g.bp?.diastolic !== undefined ? { diastolicBP: g.bp.diastolic } : {}),
});

/** The HL7 v2 blood pressure panel row (85354-9) in place of the pair's OBX: `86/48`, `86/480`, `86/`, `/48`. */
function withPanel(lines: string[], g: Group): string[] {
  if (!g.bp?.panel) return lines;
  const rows = lines.filter((l) => /^OBX\|\d+\|NM\|15002[12]\^/.test(l));
  const first = rows[0]!.split('|');
  first[2] = 'ST';
  first[3] = '85354-9^Blood pressure panel^LN';
  first[5] = `${g.bp.systolic ?? ''}/${g.bp.diastolic ?? ''}`;
  first[6] = 'mm[Hg]^^UCUM';
  return lines.flatMap((l) => (l === rows[0] ? [first.join('|')] : l === rows[1] ? [] : [l]));
}

function message(g: Group, messageId: string): DeviceMessage {
  return {
    messageId,
    patientId: g.patientId,
    observedAt: observedAt(g),
    source: { deviceId: 'mon-1', kind: 'monitor' },
    vitals: vitalsOf(g),
    ...(g.oxygen ? { oxygen: g.oxygen } : {}),
    ...(g.ward ? { enrolment: { ward: g.ward } } : {}),
  };
}

function build(r: Request, n: number): Built {
  const sent: Sent[] = [];
  let obx = 0;
  let entry = 0;
  let pv1 = 0;
  r.groups.forEach((g, i) => {
    const at = { patientId: g.patientId, ms: Date.parse(observedAt(g)), pid: i + 1, pv1: g.ward ? ++pv1 : 0 };
    // JSON: the message's index; FHIR: the entry's: the Encounter, one Observation a vital, one for the oxygen.
    const index = r.format.startsWith('fhir') ? undefined : i;
    if (g.ward) sent.push({ ...at, field: 'enrolment.ward', value: g.ward, index: index ?? entry++, obx: 0 });
    for (const [field, value] of Object.entries(vitalsOf(g)))
      sent.push({
        ...at,
        field: `vitals.${field}`,
        value,
        index: index ?? entry++,
        ...(r.format === 'hl7' && g.bp?.panel && field.endsWith('BP') ? { panel: true as const } : {}),
        // One panel OBX gives both halves.
        obx: r.format === 'hl7' && g.bp?.panel && field === 'diastolicBP' && g.bp.systolic !== undefined ? obx : ++obx,
      });
    if (g.oxygen) {
      const e = index ?? entry++;
      for (const [field, value] of Object.entries(g.oxygen))
        sent.push({ ...at, field: `oxygen.${field}`, value, index: e, obx: ++obx });
    }
  });
  // The same item twice keeps its id: a resend inside the request.
  const idOf = (i: number) => `m-${n}-${r.groups.indexOf(r.groups[i]!)}`;
  switch (r.format) {
    case 'json':
      return {
        path: '/v1/messages',
        type: 'application/json',
        body: JSON.stringify(message(r.groups[0]!, idOf(0))),
        sent,
      };
    case 'batch':
      return {
        path: '/v1/messages/batch',
        type: 'application/json',
        body: JSON.stringify(r.groups.map((g, i) => message(g, idOf(i)))),
        sent,
      };
    case 'hl7': {
      const lines = r.groups.flatMap((g, i) => {
        const text = withPanel(toPcd01(message(g, idOf(i)), { controlId: `c-${n}` })!.split('\r'), g);
        return i === 0 ? text : text.slice(1);
      });
      return { path: '/v1/hl7v2', type: 'x-application/hl7-v2+er7', body: lines.join('\r'), sent };
    }
    default: {
      // One Observation a reading, in the order of `sent`.
      const resources: Resource[] = r.groups.flatMap((g, i) => new FhirEncoder().resources(message(g, idOf(i))));
      if (r.format === 'fhir-resource')
        return {
          path: '/fhir/r4/Observation',
          type: 'application/fhir+json',
          body: JSON.stringify(resources[0]),
          sent,
        };
      const type = r.format.slice('fhir-'.length) as 'batch' | 'transaction' | 'collection';
      const bundle: Bundle = {
        resourceType: 'Bundle',
        type,
        entry: resources.map(
          (resource): BundleEntry => ({
            resource,
            ...(type === 'collection' ? {} : { request: { method: 'POST', url: resource.resourceType } }),
          }),
        ),
      };
      return { path: '/fhir/r4/Bundle', type: 'application/fhir+json', body: JSON.stringify(bundle), sent };
    }
  }
}

/** What the answer says of each observation: taken (queued), or refused (nothing of it queued). */
/**
 * What the answer says of each reading: taken (true), refused (false), or neither (undefined): an Encounter of a
 * patient this server does not monitor, which is answered as taken with a note that nothing was (docs/interfaces.md).
 */
function claims(r: Request, b: Built, a: DeviceAnswer): (boolean | undefined)[] {
  const told = said(r, b, a);
  const notMonitored = /does not monitor/.test(a.body);
  // Over HL7 v2 a PV1 goes with its message's readings: none of them taken, it is not taken either ("a bed alone is
  // not worth a message"), and only the readings are named.
  const withReadings = (s: Sent) =>
    r.format !== 'hl7' ||
    b.sent.some((t, j) => told[j] && !t.field.startsWith('enrolment.') && t.patientId === s.patientId && t.ms === s.ms);
  // A panel's half beside the same measurement in an OBX of its own (MDC) at one time ranks below it (MDC over
  // LOINC, docs/interfaces.md): it is not used, and not refused.
  const outranked = (s: Sent) =>
    s.panel && b.sent.some((t) => !t.panel && t.patientId === s.patientId && t.ms === s.ms && t.field === s.field);
  return b.sent.map((s, i) =>
    (told[i] && s.field.startsWith('enrolment.') && (notMonitored || !withReadings(s))) || outranked(s)
      ? undefined
      : told[i],
  );
}

function said(r: Request, b: Built, a: DeviceAnswer): boolean[] {
  if (r.format === 'hl7') {
    const segments = a.body.split('\r').map((s) => s.split('|'));
    const code = segments.find((s) => s[0] === 'MSA')![1];
    if (code === 'AA') return b.sent.map(() => true);
    if (code === 'AR') return b.sent.map(() => false);
    const refused = segments
      .filter((s) => s[0] === 'ERR' && s[4] === 'E')
      .map((s) => s[2]!.split('^'))
      .map(([segment, sequence]) => ({ segment, sequence: Number(sequence) }));
    return b.sent.map(
      (s) =>
        !refused.some(
          (e) =>
            e.segment === 'MSH' ||
            (e.segment === 'OBX' && e.sequence === s.obx) ||
            (e.segment === 'PID' && e.sequence === s.pid) ||
            (e.segment === 'PV1' && e.sequence === s.pv1 && s.field.startsWith('enrolment.')),
        ),
    );
  }
  if (r.format === 'fhir-batch' && a.status === 200) {
    const entries = (JSON.parse(a.body) as Bundle).entry!;
    return b.sent.map((s) => entries[s.index]!.response!.status.startsWith('202'));
  }
  return b.sent.map(() => a.status === 200 || a.status === 202);
}

/** A queued message as both backends de-duplicate it: the patient, the messageId and the content's digest. */
interface Held {
  key: string;
  message: DeviceMessage;
}

interface Backend {
  queue: MessageQueue;
  patients: PatientDirectory;
  maxPatients?: number;
  /** Every message held, de-duplicated as the backend does. */
  held(): Held[];
  /** How the next attempt's queue behaves. */
  fail(mode: Request['queue']): void;
  close(): void;
}

const sqs = mockClient(SQSClient);
afterAll(() => sqs.restore());

/** SQS FIFO, mocked: a deduplication id seen before is accepted and dropped; entries fail as told. */
function awsBackend(): Backend {
  const held = new Map<string, Held>();
  let mode: Request['queue'] = 'up';
  const failedOnce = new Set<string>();
  sqs.reset();
  sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
    const Successful: SendMessageBatchResultEntry[] = [];
    const Failed: BatchResultErrorEntry[] = [];
    input.Entries!.forEach((e, i) => {
      const body = JSON.parse(e.MessageBody!) as { message: DeviceMessage; digest: string };
      // Down: every entry of P-1, P-3 and P-5 fails (the others of the request may go through: a partial batch).
      const fails =
        (mode === 'down' && ['P-1', 'P-3', 'P-5'].includes(body.message.patientId)) ||
        (mode === 'flaky' && i % 2 === 0 && !failedOnce.has(e.MessageDeduplicationId!));
      if (fails) {
        failedOnce.add(e.MessageDeduplicationId!);
        Failed.push({ Id: e.Id!, Code: 'InternalError', SenderFault: false });
        return;
      }
      Successful.push({ Id: e.Id!, MessageId: `sqs-${held.size}`, MD5OfMessageBody: '' });
      const key = `${body.message.patientId}|${body.message.messageId}|${body.digest}`;
      if (!held.has(key)) held.set(key, { key, message: body.message });
    });
    return { Successful, Failed };
  });
  const queue = new SqsFifoQueue(
    new SQSClient({ region: 'eu-west-1' }),
    'https://sqs.example/q.fifo',
    {
      attempts: 3,
      baseDelayMs: 0,
    },
    async () => undefined,
  );
  return {
    queue,
    // The state table knows a patient once graded: here, once queued (the grade function keeps up).
    patients: {
      lookup: async (ids) => {
        const known = new Set([...held.values()].map((h) => h.message.patientId));
        return new Map(ids.filter((id) => known.has(id)).map((id) => [id, { known: true }]));
      },
    },
    held: () => [...held.values()],
    fail: (m) => {
      mode = m;
    },
    close: () => undefined,
  };
}

/** crs serve's inbox (SQLite), its patient directory and a ceiling of 4 patients; the disk full while down. */
function embeddedBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'crs-truth-'));
  const db: Db = openDataDir(dir);
  const inbox = new SqliteQueue(db);
  let mode: Request['queue'] = 'up';
  return {
    queue: {
      enqueue: (messages) =>
        mode === 'down' ? Promise.reject(new Error('SQLITE_FULL: database or disk is full')) : inbox.enqueue(messages),
    },
    patients: new SqlitePatientDirectory(db, () => NOW),
    maxPatients: 4,
    held: () =>
      (
        db.prepare('SELECT patient_id, message_id, digest, body FROM inbox').all() as {
          patient_id: string;
          message_id: string;
          digest: string;
          body: string;
        }[]
      ).map((r) => ({
        key: `${r.patient_id}|${r.message_id}|${r.digest}`,
        message: (JSON.parse(r.body) as { message: DeviceMessage }).message,
      })),
    fail: (m) => {
      mode = m;
    },
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const holds = (m: DeviceMessage, s: Sent) => {
  const [section, field] = s.field.split('.') as [string, string];
  return (
    m.patientId === s.patientId &&
    Date.parse(m.observedAt) === s.ms &&
    (m as unknown as Record<string, Record<string, unknown> | undefined>)[section]?.[field] === s.value
  );
};

/** What the runs must have met, so that the property keeps testing them. */
const SITUATIONS: [string, RegExp][] = [
  ['a patient outside the token', /is not one of this token's patients/],
  ['a ward outside the token', /outside this token's wards|in no ward this server knows/],
  ['a section the token may not send', /may not send/],
  ['a server full of patients', /--max-patients/],
  ['a device clock a week behind', /check the device clock/],
  ['a reading out of range', /is outside/],
  ['two values at one time', /different values/],
];
const seen = new Set<string>();

const same = (s: Sent, t: Sent) =>
  s.patientId === t.patientId && s.ms === t.ms && s.field === t.field && s.value === t.value;

const describeSent = (s: Sent) => `${s.patientId} ${new Date(s.ms).toISOString()} ${s.field}=${s.value}`;

async function run(backend: Backend, requests: Request[]): Promise<void> {
  const tokens = new MemoryTokenStore();
  const ehr = issueToken('gw-ehr', new Date(NOW), { kind: 'ehr' });
  const scoped = issueToken('mon-gw', new Date(NOW), { kind: 'monitor', patients: ['P-1', 'P-2'] });
  const ward = issueToken('mon-h4', new Date(NOW), { kind: 'monitor', wards: ['H4'] });
  const pump = issueToken('pump-7', new Date(NOW), { kind: 'pump' });
  await tokens.put(ehr.record);
  await tokens.put(scoped.record);
  await tokens.put(ward.record);
  await tokens.put(pump.record);
  // Whether the queue refused the attempt (after SQS's own retries): the sender must then hear 503, never a 2xx or 4xx.
  let threw = false;
  const queue: MessageQueue = {
    enqueue: (messages) =>
      backend.queue.enqueue(messages).catch((err: unknown) => {
        threw = true;
        throw err;
      }),
  };
  const deps = {
    queue,
    tokens,
    now: () => NOW,
    maxObservationAgeMs: 7 * 24 * 3600_000,
    patients: backend.patients,
    ...(backend.maxPatients !== undefined ? { maxPatients: backend.maxPatients } : {}),
  };
  for (const [n, r] of requests.entries()) {
    const b = build(r, n);
    const before = new Set(backend.held().map((h) => h.key));
    const post = () =>
      handleDeviceRequest(
        {
          method: 'POST',
          path: b.path,
          headers: {
            authorization: `Bearer ${{ ehr, scoped, ward, pump }[r.token].token}`,
            'content-type': b.type,
          },
          body: b.body,
        },
        deps,
      );
    backend.fail(r.queue);
    threw = false;
    let answer = await post();
    const first = answer;
    const context = () =>
      `request ${n} (${r.format}, ${r.token}, queue ${r.queue}) answered ${answer.status}:\n${answer.body}`;
    // A 503 exactly when the queue failed: retrying can succeed then, and only then.
    expect(answer.status === 503, context()).toBe(threw);
    if (answer.status === 503) {
      // Nothing was taken, says the answer: the sender sends it again once the queue is back.
      expect(answer.headers['retry-after'], context()).toBeDefined();
      if (backend.held().some((h) => !before.has(h.key))) seen.add('a 503 with part of the request queued');
      backend.fail('up');
      threw = false;
      answer = await post();
      seen.add('a 503 sent again');
      expect(threw, context()).toBe(false);
      expect(answer.status, context()).not.toBe(503);
    }
    const told = claims(r, b, answer);
    for (const [label, pattern] of SITUATIONS)
      if (pattern.test(first.body) || pattern.test(answer.body)) seen.add(label);
    if (r.format === 'hl7') seen.add(`HL7 ${/MSA\|(A.)/.exec(answer.body)?.[1]}`);
    if (
      r.format === 'hl7' &&
      r.groups.some((g) => g.bp?.panel && (g.bp.systolic ?? 400) + (g.bp.diastolic ?? 480) > 600)
    )
      seen.add('an HL7 blood pressure panel with one half refused');
    if (r.format === 'fhir-batch' && /422 /.test(answer.body) && /202 /.test(answer.body))
      seen.add('a FHIR batch in part');
    // The same reading twice in one request (one patient, time, field and value) is one reading. Said taken by one
    // copy and refused by another (HL7 v2 names the first OBX of a reading it refuses; a FHIR entry refused for its
    // FiO2 gives the device another entry gives too), the answer says both, and the queue may hold it or not.
    const both = b.sent.map((s, i) => b.sent.some((t, j) => told[j] !== told[i] && same(s, t)));
    const held = backend.held();
    const added = held.filter((h) => !before.has(h.key));
    b.sent.forEach((s, i) => {
      if (both[i] || told[i] === undefined) return;
      if (told[i]) {
        expect(
          held.some((h) => holds(h.message, s)),
          `${context()}\nsaid taken, not queued: ${describeSent(s)}`,
        ).toBe(true);
      } else {
        expect(
          added.filter((h) => holds(h.message, s)).map((h) => h.message),
          `${context()}\nsaid refused, queued: ${describeSent(s)}`,
        ).toEqual([]);
      }
    });
    // Every message this request put in the queue is one the answer named (JSON and FHIR list their ids).
    for (const h of added) expect(answer.messageIds, context()).toContain(h.message.messageId);
    // One content per id: a resend after a 503 is a duplicate the queue (and the grading) drops, never a new
    // observation under the same id.
    const digests = new Map<string, Set<string>>();
    for (const h of held) {
      const id = `${h.message.patientId}|${h.message.messageId}`;
      digests.set(id, (digests.get(id) ?? new Set()).add(h.key));
    }
    for (const [id, keys] of digests) expect(keys.size, `${context()}\n${id} queued with two contents`).toBe(1);
  }
}

/** What every run set of either backend meets; each adds its own (the ceiling on crs serve, a partial batch on SQS). */
const MET = [
  'a patient outside the token',
  'a ward outside the token',
  'a section the token may not send',
  'a device clock a week behind',
  'a reading out of range',
  'two values at one time',
  'a 503 sent again',
  'HL7 AA',
  'HL7 AE',
  'HL7 AR',
  'a FHIR batch in part',
  'an HL7 blood pressure panel with one half refused',
];

describe('every answer tells the sender what was queued', () => {
  const runs = Number(process.env.ANSWER_TRUTH_RUNS ?? 150);
  it.each([
    ['AWS (SQS FIFO, partial batch failures)', awsBackend, 'a 503 with part of the request queued'],
    ['embedded (SQLite inbox, --max-patients 4)', embeddedBackend, 'a server full of patients'],
  ])(
    '%s',
    async (_, make, own) => {
      seen.clear();
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), async (requests) => {
          const backend = make();
          try {
            await run(backend, requests);
          } finally {
            backend.close();
          }
        }),
        { numRuns: runs },
      );
      // The runs met each situation the property is meant to test (a generator changed could lose one unseen).
      for (const situation of [...MET, own]) expect([...seen], situation).toContain(situation);
    },
    30_000 + runs * 40,
  );
});
