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
import type { Bundle, BundleEntry, Observation, OperationOutcome, Resource } from '@medplum/fhirtypes';
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
import { hl7Time } from '#app/hl7v2/er7.ts';
import { handleDeviceRequest, type DeviceAnswer } from '#app/interfaces/http.ts';
import { principalOf, type PatientDirectory, type Principal } from '#app/scope.ts';
import type { Hl7IngestDeps } from '#app/hl7v2/ingest.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { startMllpListener, type MllpListener } from '#hosts/embedded/mllp.ts';
import { connect, type Socket } from 'node:net';
import { measurementProblem, type DeviceMessage } from '#domain/contract.ts';
import type { MessageQueue } from '#ports';
import { MemorySecurityLog, MemoryTokenStore } from '#test/support/port-fakes.ts';

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
  bp?: { panel: boolean; systolic?: number; diastolic?: number; arterial?: true };
  /** The bed (JSON enrolment.bed, HL7 PV1-3.3, an Encounter's `bd` location). */
  bed?: '12' | '14';
  /** The end of the stay (a finished Encounter, an ADT^A03; JSON monitoringEnd). */
  end?: true;
  /** A CAR-T infusion (a Procedure; JSON enrolment.infusedAt, therapy, product). */
  infusion?: true;
  /** FHIR: the patient and the monitor as resources contained in each resource (`#p1`, `#d1`). */
  contained?: true;
}

const FORMATS = [
  'json',
  'batch',
  'hl7',
  'adt',
  'fhir-batch',
  'fhir-transaction',
  'fhir-collection',
  'fhir-resource',
] as const;
/** HL7 v2 ADT events (docs/interfaces.md): the end of the stay, its cancellation, where an inpatient is. */
const EVENTS = ['A01', 'A02', 'A03', 'A08', 'A12', 'A13'] as const;
type Format = (typeof FORMATS)[number];

interface Request {
  format: Format;
  /**
   * `scoped`: a monitor's token for P-1 and P-2; `ward`: for ward H4; `pump`: a pump's, which sends no vitals;
   * `ehr-ward`: an EHR's for ward H4.
   */
  token: 'ehr' | 'scoped' | 'ward' | 'pump' | 'ehr-ward';
  /** The ADT event of an `adt` request. */
  event: (typeof EVENTS)[number];
  /** HL7 v2 over MLLP (crs serve --mllp-port, --mllp-device naming the token's device) instead of HTTP. */
  mllp: boolean;
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
      .uniqueArray(fc.constantFrom(...FIELDS), { minLength: 0, maxLength: 2 })
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
    bed: fc.option(fc.constantFrom('12' as const, '14' as const), { nil: undefined, freq: 4 }),
    end: fc.option(fc.constant(true as const), { nil: undefined, freq: 6 }),
    infusion: fc.option(fc.constant(true as const), { nil: undefined, freq: 6 }),
    contained: fc.option(fc.constant(true as const), { nil: undefined, freq: 4 }),
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
    // HL7 v2 twice as often: its ORU over HTTP and MLLP, an AA only when nothing of it is refused.
    format: fc.constantFrom(...FORMATS, 'hl7' as const),
    token: fc.constantFrom(
      'ehr' as const,
      'ehr' as const,
      'scoped' as const,
      'ward' as const,
      'pump' as const,
      'ehr-ward' as const,
    ),
    event: fc.constantFrom(...EVENTS),
    mllp: fc.boolean(),
    groups: fc.array(group, { minLength: 1, maxLength: 4 }),
    twice: fc.boolean(),
    otherSource: fc.boolean(),
    queue: fc.constantFrom('up' as const, 'up' as const, 'flaky' as const, 'down' as const),
  })
  .map(({ format, token, event, mllp, groups, twice, otherSource, queue }) => {
    let g = format === 'json' || format === 'adt' ? groups.slice(0, 1) : groups;
    // An Encounter or a Procedure alone (no vitals) is FHIR's and JSON's; an ORU carries a reading at least.
    if (format === 'hl7' || format === 'fhir-resource')
      g = g.map((x) =>
        Object.keys(x.vitals).length > 0 || (format === 'hl7' && (x.oxygen || x.bp))
          ? x
          : { ...x, vitals: { heartRate: 80 } },
      );
    if (format === 'fhir-resource') {
      const { oxygen: _, bp: _bp, ...one } = g[0]!;
      g = [{ ...one, vitals: Object.fromEntries(Object.entries(g[0]!.vitals).slice(0, 1)) }];
    }
    // The same item twice in one request (a gateway's retry inside its own batch).
    else if (twice && format !== 'json' && format !== 'adt') g = [...g, g[0]!];
    // The blood pressure of that time from another source too (HL7 v2: the EHR's panel row beside the monitor's pair,
    // or the reverse; FHIR: the arterial line's MDC Observations beside LOINC's), each half good where the other's
    // is out of range and the reverse.
    const bp = g[0]!.bp;
    if (otherSource && (format === 'hl7' || format === 'fhir-batch' || format === 'fhir-collection') && bp) {
      const other = (v: number | undefined, good: number, bad: number) =>
        v === undefined ? undefined : v === bad ? good : bad;
      g = [
        ...g,
        {
          patientId: g[0]!.patientId,
          minutesAgo: g[0]!.minutesAgo,
          vitals: {},
          bp: JSON.parse(
            JSON.stringify({
              panel: format === 'hl7' ? !bp.panel : false,
              ...(format === 'hl7' ? {} : { arterial: true }),
              systolic: other(bp.systolic, 86, 400),
              diastolic: other(bp.diastolic, 48, 480),
            }),
          ),
        },
      ];
    }
    return { format, token, event, mllp, groups: g, queue };
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
    ...(g.ward || g.bed || g.infusion
      ? {
          enrolment: {
            ...(g.ward ? { ward: g.ward } : {}),
            ...(g.bed ? { bed: g.bed } : {}),
            ...(g.infusion ? { infusedAt: observedAt(g), therapy: 'car-t' as const, product: 'axi-cel' } : {}),
          },
        }
      : {}),
    ...(g.end ? { monitoringEnd: { reason: 'discharged' as const } } : {}),
  };
}

/** A blood pressure Observation as the arterial line's (MDC), which ranks over LOINC's 8480-6 and 8462-4. */
function arterial(x: Resource): Resource {
  const o = x as Observation;
  const mdc = { '8480-6': '150033', '8462-4': '150034' }[o.code?.coding?.[0]?.code ?? ''];
  return mdc ? { ...o, code: { coding: [{ system: 'urn:iso:std:iso:11073:10101', code: mdc }] } } : x;
}

/** The resource with its patient and monitor contained (`#p1` with its MR, `#d1` with its identifier). */
function contain(x: Resource): Resource {
  const r = x as Resource & { subject?: { reference?: string }; device?: { reference?: string } };
  const patient = r.subject?.reference?.replace(/^Patient\//, '');
  const device = r.device?.reference?.replace(/^Device\//, '');
  if (!patient) return x;
  const mr = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };
  return {
    ...r,
    contained: [
      { resourceType: 'Patient', id: 'p1', identifier: [{ type: mr, value: patient }] },
      ...(device ? [{ resourceType: 'Device', id: 'd1', identifier: [{ value: device }] }] : []),
    ],
    subject: { reference: '#p1' },
    ...(device ? { device: { reference: '#d1' } } : {}),
  } as Resource;
}

function build(r: Request, n: number): Built {
  const sent: Sent[] = [];
  let obx = 0;
  let entry = 0;
  let pv1 = 0;
  const hl7 = r.format === 'hl7' || r.format === 'adt';
  r.groups.forEach((g, i) => {
    const at = { patientId: g.patientId, ms: Date.parse(observedAt(g)), pid: i + 1, pv1: g.ward || g.bed ? ++pv1 : 0 };
    if (r.format === 'adt') {
      // A03: the end (PV1-3, the bed left, not read); the others: the bed and ward of PV1-3.
      const one = { ...at, index: 0, obx: 0 };
      if (r.event === 'A03') sent.push({ ...one, field: 'monitoringEnd.reason', value: 'discharged' });
      else {
        if (g.ward) sent.push({ ...one, field: 'enrolment.ward', value: g.ward });
        if (g.bed) sent.push({ ...one, field: 'enrolment.bed', value: g.bed });
      }
      return;
    }
    // JSON: the message's index; FHIR: the entry's: the Procedure, the Encounter, one Observation a vital, one for
    // the oxygen (FhirEncoder's order).
    const index = r.format.startsWith('fhir') ? undefined : i;
    if (g.infusion && !hl7)
      sent.push({ ...at, field: 'enrolment.therapy', value: 'car-t', index: index ?? entry++, obx: 0 });
    if (g.ward || g.bed || (g.end && !hl7)) {
      const e = index ?? entry++;
      if (g.ward) sent.push({ ...at, field: 'enrolment.ward', value: g.ward, index: e, obx: 0 });
      if (g.bed) sent.push({ ...at, field: 'enrolment.bed', value: g.bed, index: e, obx: 0 });
      if (g.end && !hl7) sent.push({ ...at, field: 'monitoringEnd.reason', value: 'discharged', index: e, obx: 0 });
    }
    for (const [field, value] of Object.entries(vitalsOf(g)))
      sent.push({
        ...at,
        field: `vitals.${field}`,
        value,
        index: index ?? entry++,
        // Ranked below the same measurement of another source: an HL7 v2 panel (LOINC) below the pair (MDC); a FHIR
        // LOINC Observation below the arterial line's.
        ...((r.format === 'hl7' ? g.bp?.panel : !g.bp?.arterial) && field.endsWith('BP')
          ? { panel: true as const }
          : {}),
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
    case 'adt': {
      const g = r.groups[0]!;
      const t = hl7Time(Date.parse(observedAt(g)));
      const text = [
        `MSH|^~\\&|EPIC|HOSP|CRS|HOSP|${t}||ADT^${r.event}^ADT_A01|a-${n}|P|2.6`,
        `EVN|${r.event}|${t}||||${t}`,
        `PID|||${g.patientId}^^^HOSP^MR`,
        `PV1||I|${g.ward ?? ''}^^${g.bed ?? ''}`,
      ].join('\r');
      return { path: '/v1/hl7v2', type: 'x-application/hl7-v2+er7', body: text, sent };
    }
    case 'hl7': {
      const lines = r.groups.flatMap((g, i) => {
        const text = withPanel(toPcd01(message(g, idOf(i)), { controlId: `c-${n}` })!.split('\r'), g);
        return i === 0 ? text : text.slice(1);
      });
      return { path: '/v1/hl7v2', type: 'x-application/hl7-v2+er7', body: lines.join('\r'), sent };
    }
    default: {
      // One Observation a reading, in the order of `sent`.
      const resources: Resource[] = r.groups.flatMap((g, i) =>
        new FhirEncoder()
          .resources(message(g, idOf(i)))
          .map((x) => (g.bp?.arterial ? arterial(x) : x))
          .map((x) => (g.contained ? contain(x) : x)),
      );
      if (r.format === 'fhir-resource')
        return {
          path: `/fhir/r4/${resources[0]!.resourceType}`,
          type: 'application/fhir+json',
          body: JSON.stringify(resources[0]),
          sent: sent.filter((x) => x.index === 0),
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
  // An ADT event or an Encounter of a patient the server does not know: "nothing taken", no error (a batch or
  // transaction's entry says so in its outcome; a collection's OperationOutcome at the entry). Nothing of it may be
  // queued.
  const entries =
    (r.format === 'fhir-batch' || r.format === 'fhir-transaction') && a.status === 200
      ? (JSON.parse(a.body) as Bundle).entry!
      : undefined;
  const notMonitoredAt = (s: Sent): boolean => {
    if (!/does not monitor/.test(a.body)) return false;
    if (entries) return /does not monitor/.test(JSON.stringify(entries[s.index]!.response!.outcome ?? {}));
    if (r.format === 'fhir-collection')
      return ((JSON.parse(a.body) as OperationOutcome).issue ?? []).some(
        (i) =>
          /does not monitor/.test(i.diagnostics ?? '') &&
          (i.expression ?? []).some((e) => e.startsWith(`Bundle.entry[${s.index}]`)),
      );
    return true; // one resource, one ADT event
  };
  const placing = (s: Sent) => /^(enrolment\.(ward|bed)|monitoringEnd\.)/.test(s.field);
  // Over HL7 v2 a PV1 whose PID group's readings are all refused is held to its answer too: taken on its own, or
  // named (until 2026-12-05 it was neither, and this test let it be).
  // A panel's half beside the same measurement in an OBX of its own (MDC) at one time ranks below it (MDC over
  // LOINC, docs/interfaces.md): it is not used, and not refused; unless that one is refused on its own (out of the
  // contract's range), when the panel's is the best there is.
  const outranked = (s: Sent) =>
    s.panel &&
    b.sent.some(
      (t) =>
        !t.panel &&
        t.patientId === s.patientId &&
        t.ms === s.ms &&
        t.field === s.field &&
        measurementProblem(t.field, t.value) === undefined,
    );
  return b.sent.map((s, i) => (outranked(s) ? undefined : told[i] && !(placing(s) && notMonitoredAt(s))));
}

function said(r: Request, b: Built, a: DeviceAnswer): boolean[] {
  if (r.format === 'hl7' || r.format === 'adt') {
    const segments = a.body.split('\r').map((s) => s.split('|'));
    const code = segments.find((s) => s[0] === 'MSA')![1];
    if (code === 'AA') return b.sent.map(() => true);
    // An AR for want of room names the refused patients in its ERRs: the rest was queued (said in MSA-3, "N
    // message(s) accepted, not all"), and the resend the AR asks for is absorbed as a duplicate (since 2026-12-06).
    if (code === 'AR' && !/accepted, not all: no room for a new patient/.test(a.body)) return b.sent.map(() => false);
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
  /** crs serve's MLLP listener, sending one frame as this principal through these deps. */
  mllp?: (text: string, principal: Principal, deps: Hl7IngestDeps) => Promise<string>;
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

/**
 * crs serve's MLLP listener, one for the test: each frame goes to the run's backend (the deps and the principal of
 * the request being sent: --mllp-device naming that token's device).
 */
let listener: MllpListener | undefined;
let route: { principal: Principal; deps: Hl7IngestDeps } | undefined;
let connection: { socket: Socket; waiting: ((ack: string) => void)[] } | undefined;
afterAll(async () => {
  connection?.socket.end();
  await listener?.close();
});

async function mllpSend(text: string, principal: Principal, deps: Hl7IngestDeps): Promise<string> {
  listener ??= await startMllpListener({
    port: 0,
    host: '127.0.0.1',
    log: () => undefined,
    security: new MemorySecurityLog(),
    deps: {
      queue: { enqueue: (m) => route!.deps.queue.enqueue(m) },
      now: () => NOW,
      maxObservationAgeMs: 7 * 24 * 3600_000,
      patients: {
        lookup: (ids) => route!.deps.patients!.lookup(ids),
        admitNew: (ids, ceiling) => route!.deps.patients!.admitNew!(ids, ceiling),
      },
      maxPatients: 4,
    },
    principal: async () => route!.principal,
  });
  route = { principal, deps };
  // One connection for the test, as a gateway keeps one: each frame answered in order.
  if (!connection) {
    const socket = connect(listener.port, '127.0.0.1');
    const decoder = new MllpDecoder();
    const waiting: ((ack: string) => void)[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const e of decoder.push(chunk)) if (e.type === 'frame') waiting.shift()?.(e.text);
    });
    connection = { socket, waiting };
  }
  const { socket, waiting } = connection;
  const ack = new Promise<string>((resolve) => waiting.push(resolve));
  socket.write(frame(text));
  return ack;
}

/** crs serve's inbox (SQLite), its patient directory and a ceiling of 4 patients; the disk full while down. */
function embeddedBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'crs-truth-'));
  const db: Db = openDataDir(dir);
  const inbox = new SqliteQueue(db);
  let mode: Request['queue'] = 'up';
  return {
    mllp: mllpSend,
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
  const ehrWard = issueToken('ehr-h4', new Date(NOW), { kind: 'ehr', wards: ['H4'] });
  await tokens.put(ehrWard.record);
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
  const principals = {
    ehr: principalOf('gw-ehr', { kind: 'ehr' }),
    scoped: principalOf('mon-gw', { kind: 'monitor', patients: ['P-1', 'P-2'] }),
    ward: principalOf('mon-h4', { kind: 'monitor', wards: ['H4'] }),
    pump: principalOf('pump-7', { kind: 'pump' }),
    'ehr-ward': principalOf('ehr-h4', { kind: 'ehr', wards: ['H4'] }),
  };
  for (const [n, r] of requests.entries()) {
    const b = build(r, n);
    const before = new Set(backend.held().map((h) => h.key));
    const mllp = r.mllp && backend.mllp && (r.format === 'hl7' || r.format === 'adt') ? backend.mllp : undefined;
    // Over MLLP the ACK is the answer: an AR "send again later" is the 503 of HTTP.
    const overMllp = async (send: NonNullable<typeof mllp>): Promise<DeviceAnswer & { mllp: true }> => {
      const ack = await send(b.body, principals[r.token], deps);
      const down = /\rMSA\|AR\|[^|\r]*\|not accepted: send again later/.test(ack);
      return { status: down ? 503 : 200, headers: { 'retry-after': 'n/a' }, body: ack, messageIds: [], mllp: true };
    };
    const post = (): Promise<DeviceAnswer & { mllp?: true }> =>
      mllp
        ? overMllp(mllp)
        : handleDeviceRequest(
            {
              method: 'POST',
              path: b.path,
              headers: {
                authorization: `Bearer ${{ ehr, scoped, ward, pump, 'ehr-ward': ehrWard }[r.token].token}`,
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
      `request ${n} (${r.format}${mllp ? ' over MLLP' : ''}, ${r.token}, queue ${r.queue}) answered ${answer.status}:\n${answer.body}`;
    // A 503 exactly when the queue failed (retrying can succeed then), or when a new patient found no room (since
    // 2026-12-06: retrying succeeds once the operator makes room; no queue was asked).
    // JSON and HL7 say "no room for a new patient"; FHIR's OperationOutcome names the patient that "would be new".
    const forRoom = (a: typeof answer) => a.status === 503 && /no room for a new patient|would be new/.test(a.body);
    const noRoom = forRoom(answer);
    if (noRoom) seen.add('a 503 for want of room');
    expect(answer.status === 503 && !noRoom, context()).toBe(threw);
    if (answer.status === 503 && !noRoom) {
      // Nothing was taken, says the answer: the sender sends it again once the queue is back.
      expect(answer.headers['retry-after'], context()).toBeDefined();
      if (backend.held().some((h) => !before.has(h.key))) seen.add('a 503 with part of the request queued');
      backend.fail('up');
      threw = false;
      answer = await post();
      seen.add('a 503 sent again');
      expect(threw, context()).toBe(false);
      // Sent again with the queue back: taken, or (a new patient past the ceiling) told to wait for room.
      expect(answer.status === 503 && !forRoom(answer), context()).toBe(false);
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
    // A blood pressure of one time from two sources, the better one out of range.
    if (
      b.sent.some(
        (s, i) =>
          s.panel &&
          told[i] &&
          b.sent.some((t) => !t.panel && same({ ...t, value: s.value }, s) && t.value !== s.value),
      )
    )
      seen.add('a blood pressure of two sources at one time');
    // A PV1 said taken while no reading of its PID group was: its place taken on its own.
    const place = (s: Sent) => s.field.startsWith('enrolment.');
    if (
      r.format === 'hl7' &&
      b.sent.some((s, i) => told[i] && place(s) && !b.sent.some((t, j) => told[j] && !place(t) && t.pid === s.pid))
    )
      seen.add('an HL7 place taken with its readings refused');
    if (r.format === 'adt') seen.add(`ADT ${/MSA\|(A.)/.exec(answer.body)?.[1]}`);
    if (r.format === 'adt' && /does not monitor/.test(answer.body)) seen.add('an ADT event of a patient not monitored');
    if (r.format.startsWith('fhir'))
      b.sent.forEach((s, i) => {
        if (told[i] && s.field === 'monitoringEnd.reason') seen.add('a finished Encounter taken');
        if (told[i] && s.field === 'enrolment.therapy') seen.add('an infusion Procedure taken');
        if (told[i] && r.groups.some((g) => g.contained && g.patientId === s.patientId)) seen.add('contained Patient');
      });
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
    // Every message this request put in the queue is one the answer named (JSON and FHIR list their ids; an ACK
    // over MLLP lists none).
    if (!mllp) for (const h of added) expect(answer.messageIds, context()).toContain(h.message.messageId);
    else seen.add(`MLLP ${/MSA\|(A.)/.exec(answer.body)?.[1]}`);
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
  'ADT AA',
  'ADT AR',
  'an ADT event of a patient not monitored',
  'a finished Encounter taken',
  'an infusion Procedure taken',
  'contained Patient',
  'a blood pressure of two sources at one time',
  'an HL7 place taken with its readings refused',
];

describe('every answer tells the sender what was queued', () => {
  const runs = Number(process.env.ANSWER_TRUTH_RUNS ?? 150);
  it.each([
    ['AWS (SQS FIFO, partial batch failures)', awsBackend, ['a 503 with part of the request queued']],
    [
      'embedded (SQLite inbox, --max-patients 4; HL7 v2 over HTTP and MLLP)',
      embeddedBackend,
      ['a server full of patients', 'MLLP AA', 'MLLP AE', 'MLLP AR'],
    ],
  ])(
    '%s',
    async (_, make, own) => {
      seen.clear();
      const unmet = () => [...MET, ...own].filter((situation) => !seen.has(situation));
      // Rare situations (a full server, an AA over HL7) may be missed by one draw of a fresh seed: up to three more
      // draws (each of a fresh seed, or FC_SEED's next) before calling a situation lost.
      const fixed = fc.readConfigureGlobal().seed;
      for (let draw = 0; draw < 4 && (draw === 0 || unmet().length > 0); draw++)
        await fc.assert(
          fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), async (requests) => {
            const backend = make();
            try {
              await run(backend, requests);
            } finally {
              backend.close();
            }
          }),
          { numRuns: runs, ...(fixed === undefined ? {} : { seed: fixed + draw }) },
        );
      // The runs met each situation the property is meant to test (a generator changed could lose one unseen).
      expect(unmet()).toEqual([]);
    },
    30_000 + runs * 160,
  );
});
