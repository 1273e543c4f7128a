// Device scopes decided alike by both hosts, and as docs/security.md says: the embedded server (`crs serve`, its
// SQLite tokens and patient knowledge) and the AWS ingest function (behind the emulator's HTTP front, with its
// patient directory on the state table) get the same tokens (random kinds, wards, patients, and old tokens without
// a kind), learn the same patients the way the product does (an EHR's enrolment sent through each host and graded:
// the embedded worker grades it; on AWS the grade function runs on what the ingest queued and writes the state table
// that DynamoPatientDirectory reads), then answer the same random messages with the same status and body, byte for
// byte. Each decision is also checked against a small model written from docs/security.md, not from the code.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoPatientDirectory } from '#adapters/aws/dynamo-patient-directory.ts';
import { telemetry } from '#adapters/aws/telemetry.ts';
import { hashToken, issueToken, TOKEN_EXPIRED } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { SECTIONS, SOURCE_KINDS, type DeviceMessage } from '#domain/contract.ts';
import type { TokenScope } from '#domain/scope.ts';
import type { HttpFront } from '#hosts/aws-emulator/http-front.ts';
import { DEVICE_ROUTES, frontFor } from '#test/support/front.ts';
import { sameAck } from '#test/support/hl7-ack.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';
import { quiet, sqsEvent, sqsRecord } from '#test/support/lambda-events.ts';
import { MemoryQueue, MemoryTokenStore } from '#test/support/port-fakes.ts';

const NOW = Date.parse('2026-01-10T09:00:00Z');
const WARDS = ['H4', 'ICU', 'W7'] as const;
/** P1-P4 may be enrolled before the requests; P5 never is (unknown unless a request brings it). */
const PATIENTS = ['P1', 'P2', 'P3', 'P4', 'P5'] as const;
const KINDS = SOURCE_KINDS;
type Kind = (typeof KINDS)[number];
type Role = Kind | 'legacy';
/**
 * The contract's sections: JSON and FHIR carry each (the end of monitoring as a finished Encounter); the HL7 v2 steps
 * send what a monitor's ORU^R01 carries (ADT^A03 is test/unit/hl7-adt.test.ts).
 */
type Section = (typeof SECTIONS)[number];
const ENROLMENT_FIELDS = ['therapy', 'product', 'infusedAt', 'weightKg', 'bed', 'ward', 'hypotension'] as const;
type EnrolmentField = (typeof ENROLMENT_FIELDS)[number];

// ------------------------------------------------------------------------------------------------------------
// The model, from docs/security.md ("What each device kind may send", ward and patient scopes, old tokens).

const EVERYTHING: readonly Section[] = SECTIONS;
const DOC_TABLE: Record<Role, { sections: readonly Section[]; enrolment: readonly string[]; claims: readonly Kind[] }> =
  {
    monitor: { sections: ['vitals', 'oxygen', 'enrolment'], enrolment: ['bed', 'ward'], claims: ['monitor'] },
    ventilator: { sections: ['oxygen', 'vitals'], enrolment: [], claims: ['ventilator'] },
    pump: { sections: ['vasopressors', 'medications'], enrolment: [], claims: ['pump'] },
    manual: { sections: EVERYTHING, enrolment: ENROLMENT_FIELDS, claims: ['manual'] },
    ehr: { sections: EVERYTHING, enrolment: ENROLMENT_FIELDS, claims: KINDS },
    // "Tokens issued before scopes": every section and source.kind and every patient; of enrolment only bed and ward,
    // and not monitoringEnd.
    legacy: { sections: EVERYTHING.filter((s) => s !== 'monitoringEnd'), enrolment: ['bed', 'ward'], claims: KINDS },
  };

interface ModelToken {
  role: Role;
  wards: string[];
  patients: string[];
}

/**
 * What the model refuses: what the token's kind may not send (`section`, `enrolment.field`, `source.kind`), and, when
 * that passes, what is outside its reach (`enrolment.ward` moving a patient out of its wards, `patient P`).
 */
function modelRefusals(
  t: ModelToken,
  messages: DeviceMessage[],
  known: Map<string, string | undefined>,
): { kind: string[]; reach: string[] } {
  const rights = DOC_TABLE[t.role];
  const named: string[] = [];
  for (const m of messages) {
    if (!rights.claims.includes(m.source.kind)) named.push('source.kind');
    for (const s of SECTIONS) {
      if (m[s] === undefined) continue;
      if (!rights.sections.includes(s)) named.push(s);
      else if (s === 'enrolment')
        for (const f of Object.keys(m.enrolment!)) if (!rights.enrolment.includes(f)) named.push(`enrolment.${f}`);
    }
  }
  // A refusal of what a device may send comes first ("403 naming the section"); the patients only when that passes.
  if (named.length > 0) return { kind: named, reach: [] };
  const reach: string[] = [];
  if (t.wards.length === 0 && t.patients.length === 0) return { kind: [], reach };
  // "placed there by the same request": the last ward the request gives the patient, for its messages without one.
  const placed = new Map<string, string>();
  for (const m of messages) if (m.enrolment?.ward !== undefined) placed.set(m.patientId, m.enrolment.ward);
  for (const m of messages) {
    const ward = m.enrolment?.ward;
    const own = t.patients.includes(m.patientId);
    // Interpretation: a ward token may not move a patient out of its wards ("reach patients outside its wards").
    if (ward !== undefined && t.wards.length > 0 && !own && !t.wards.includes(ward)) reach.push('enrolment.ward');
    if (own) continue;
    // A patient the server already has in another ward stays outside.
    const where = known.get(m.patientId) ?? ward ?? placed.get(m.patientId);
    if (t.wards.length === 0 || where === undefined || !t.wards.includes(where)) reach.push(`patient ${m.patientId}`);
  }
  return { kind: [], reach };
}

/**
 * HL7 v2 (docs/interfaces.md): a PCD-01 message is always `source.kind` monitor; a refused part is named in an ERR
 * and the rest kept (AE), so a ward outside the token's wards takes PV1-3 out (the patient is then judged where the
 * server has it); nothing left for the device is AR with 403.
 */
function hl7Model(t: ModelToken, m: DeviceMessage, known: Map<string, string | undefined>) {
  const first = modelRefusals(t, [m], known);
  if (first.kind.length > 0) return { status: 403, code: 'AR', named: first.kind, kept: undefined };
  const moved = first.reach.includes('enrolment.ward');
  const { enrolment: _, ...unplaced } = m;
  const kept = moved ? (unplaced as DeviceMessage) : m;
  const reach = moved ? modelRefusals(t, [kept], known).reach : first.reach;
  if (reach.length > 0) return { status: 403, code: 'AR', named: reach, kept: undefined };
  return { status: 202, code: moved ? 'AE' : 'AA', named: moved ? ['enrolment.ward'] : [], kept };
}

/**
 * What a FHIR server takes of the parts of a request it accepts (docs/interfaces.md, "An Encounter is taken only for
 * a patient the server knows"): a part that is an Encounter's alone (its bed and ward, the end of the stay) only for
 * a patient known before, or one the request gives other data of.
 */
function takenIfKnown(parts: DeviceMessage[], known: Map<string, string | undefined>): DeviceMessage[] {
  const encounterOnly = (m: DeviceMessage) =>
    SECTIONS.every(
      (s) =>
        m[s] === undefined ||
        s === 'monitoringEnd' ||
        (s === 'enrolment' && Object.keys(m.enrolment!).every((f) => f === 'bed' || f === 'ward')),
    );
  const carried = new Set(parts.filter((m) => !encounterOnly(m)).map((m) => m.patientId));
  return parts.filter((m) => !encounterOnly(m) || known.has(m.patientId) || carried.has(m.patientId));
}

/**
 * The contract messages a FHIR server makes of a message written as FHIR (docs/interfaces.md, "FHIR R4" and the
 * `source.kind` table): resources of one patient, kind and time make one message, in the order they come; the
 * infusion Procedure is dated by its performedDateTime; vitals are `monitor` with a Device (else `manual`), oxygen
 * `ventilator` with one (else `manual`), vasopressors `pump` with one (else `ehr`), the ICE score `manual`, the rest
 * `ehr`. The encoder names the Device when the message's kind is that device's.
 */
function fhirParts(messages: DeviceMessage[]): DeviceMessage[] {
  const parts = new Map<string, Record<string, unknown>>();
  const add = (
    m: DeviceMessage,
    kind: Kind,
    time: string,
    section: string,
    value: Record<string, unknown> | unknown,
  ) => {
    const key = `${m.patientId}|${kind}|${Date.parse(time)}`;
    const part = parts.get(key) ?? { patientId: m.patientId, observedAt: time, source: { kind } };
    parts.set(key, part);
    if (section === 'enrolment') part.enrolment = { ...(part.enrolment as object), ...(value as object) };
    else part[section] = value;
  };
  for (const m of messages) {
    const e = m.enrolment;
    if (e?.therapy && e.infusedAt)
      add(m, 'ehr', e.infusedAt, 'enrolment', {
        therapy: e.therapy,
        infusedAt: e.infusedAt,
        ...(e.product ? { product: e.product } : {}),
      });
    const placed = Object.fromEntries(
      (['weightKg', 'bed', 'ward'] as const).flatMap((f) => (e?.[f] === undefined ? [] : [[f, e[f]]])),
    );
    if (Object.keys(placed).length > 0) add(m, 'ehr', m.observedAt, 'enrolment', placed);
    const kindOf: Record<Exclude<Section, 'enrolment'>, Kind> = {
      vitals: m.source.kind === 'monitor' ? 'monitor' : 'manual',
      oxygen: m.source.kind === 'ventilator' ? 'ventilator' : 'manual',
      vasopressors: m.source.kind === 'pump' ? 'pump' : 'ehr',
      medications: 'ehr',
      neuro: 'manual',
      organToxicity: 'ehr',
      labs: 'ehr',
      monitoringEnd: 'ehr', // a finished Encounter, ending at the message's time
    };
    for (const s of SECTIONS) if (s !== 'enrolment' && m[s] !== undefined) add(m, kindOf[s], m.observedAt, s, m[s]);
  }
  return [...parts.values()] as unknown as DeviceMessage[];
}

// ------------------------------------------------------------------------------------------------------------
// Generators: tokens, the patients known beforehand, and requests.

/**
 * An AWS answer as the embedded server words it. They differ only in the `crs token` commands they name: on AWS each
 * one is the AWS operator's (`--backend aws --outputs FILE`; 2026-12-07, a token without a kind was sent to the
 * embedded command), which this checks before taking the suffix off.
 */
const AWS_COMMAND = ' --backend aws --outputs FILE';
function asEmbedded<T extends { body: string }>(a: T): T {
  expect(a.body.split('crs token ').length, `each crs token command is the AWS one: ${a.body}`).toBe(
    a.body.split(AWS_COMMAND).length,
  );
  return { ...a, body: a.body.replaceAll(AWS_COMMAND, '') };
}

const none = fc.constant<string[]>([]);
const tokenArb: fc.Arbitrary<ModelToken> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<ModelToken>({ role: 'legacy', wards: [], patients: [] }) },
  {
    weight: 6,
    arbitrary: fc.record({
      role: fc.constantFrom<Role>(...KINDS),
      wards: fc.oneof(none, fc.subarray<string>([...WARDS], { minLength: 1, maxLength: 2 })),
      patients: fc.oneof(none, none, fc.subarray<string>([...PATIENTS], { minLength: 1, maxLength: 2 })),
    }),
  },
);

const VALUES: Record<Exclude<Section, 'enrolment'>, unknown> = {
  vitals: { heartRate: 92, temperatureC: 37.4 },
  oxygen: { device: 'nasal_cannula', flowLpm: 2 },
  vasopressors: [{ drug: 'norepinephrine', dose: 2, unit: 'mcg/min' }],
  medications: [{ drug: 'tocilizumab', doseMg: 400 }],
  neuro: { iceScore: 9 },
  organToxicity: { maxCtcaeGrade: 1 },
  labs: { crpMgL: 12 },
  monitoringEnd: { reason: 'discharged' },
};
const enrolmentValue = (fields: EnrolmentField[], ward: string) =>
  Object.fromEntries(
    fields.map((f) => [
      f,
      {
        therapy: 'car-t',
        product: 'axi-cel',
        infusedAt: '2026-01-08T08:00:00Z',
        weightKg: 70,
        bed: 'B1',
        ward,
        hypotension: { systolicBelow: 85, mapBelow: 60 },
      }[f],
    ]),
  );

/** One message as drawn: built into a DeviceMessage once the run's ids and times are known. */
interface Draft {
  patient: (typeof PATIENTS)[number];
  /** null: the token's own kind (legacy: monitor). */
  claim: Kind | null;
  /** null: sections the token's kind may send. */
  sections: Section[] | null;
  anySections: Section[];
  fields: EnrolmentField[];
  ward: string;
}
const draftArb: fc.Arbitrary<Draft> = fc.record({
  patient: fc.constantFrom(...PATIENTS),
  claim: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...KINDS) }),
  sections: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.subarray([...SECTIONS], { minLength: 1, maxLength: 2 }) },
  ),
  anySections: fc.subarray([...SECTIONS], { minLength: 1, maxLength: 2 }),
  fields: fc.oneof(
    { weight: 3, arbitrary: fc.subarray(['bed', 'ward'] as EnrolmentField[], { minLength: 1 }) },
    { weight: 1, arbitrary: fc.subarray([...ENROLMENT_FIELDS], { minLength: 1, maxLength: 3 }) },
  ),
  ward: fc.constantFrom(...WARDS),
});

const stepArb = fc.record({
  token: fc.nat(),
  messages: fc.array(draftArb, { minLength: 1, maxLength: 3 }),
  batch: fc.boolean(),
});

/** A monitor's message for P1 placing it in H4 (the fixed examples). */
const FIXED: Draft = {
  patient: 'P1',
  claim: null,
  sections: null,
  anySections: ['vitals'],
  fields: ['ward'],
  ward: 'H4',
};

/** Enrolments sent by the EHR before the requests: a ward, or none (enrolled without a ward). */
const setupArb = fc.record({
  P1: fc.option(fc.option(fc.constantFrom(...WARDS), { nil: undefined }), { nil: null }),
  P2: fc.option(fc.option(fc.constantFrom(...WARDS), { nil: undefined }), { nil: null }),
  P3: fc.option(fc.option(fc.constantFrom(...WARDS), { nil: undefined }), { nil: null }),
  P4: fc.option(fc.option(fc.constantFrom(...WARDS), { nil: undefined }), { nil: null }),
});

// ------------------------------------------------------------------------------------------------------------

describe('device scopes: both hosts decide alike, and as docs/security.md says', () => {
  let dir: string;
  let embedded: EmbeddedServer;
  let front: HttpFront;
  let awsTokens: MemoryTokenStore;
  let awsQueue: MemoryQueue;
  let ddb: FakeDynamo;
  let gradeAws: (records: ReturnType<typeof sqsRecord>[]) => Promise<{ batchItemFailures: unknown[] }>;
  let graded = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crs-scopes-agree-'));
    // No ceiling to reach: the AWS function has none (docs/security.md), and the property makes many patients.
    embedded = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      pageStream: new PassThrough(),
      log: () => undefined,
      now: () => NOW,
      maxPatients: 1_000_000,
    });
    process.env.CRS_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
    process.env.CRS_TOKENS_TABLE = 'tokens';
    process.env.CRS_STATE_TABLE = 'state';
    process.env.CRS_AUDIT_TABLE = 'audit';
    process.env.CRS_SEEN_TABLE = 'seen';
    process.env.AWS_REGION ??= 'eu-west-1';
    const { createIngestHandler } = await import('#functions/ingest/handler.ts');
    const { createGradeHandler } = await import('#functions/grade/handler.ts');
    ddb = new FakeDynamo(STATE_STORE_TABLES);
    awsTokens = new MemoryTokenStore();
    awsQueue = new MemoryQueue();
    const ingest = quiet(
      createIngestHandler({
        queue: awsQueue,
        tokens: awsTokens,
        now: () => NOW,
        patients: new DynamoPatientDirectory(ddb.client(), 'state'),
        ...telemetry('ingest'),
      }),
    );
    const grade = quiet(
      createGradeHandler({
        store: stateStoreOn(ddb, NOW),
        config: DEFAULT_CONFIG,
        now: () => NOW,
        ...telemetry('grade'),
      }),
    );
    gradeAws = async (records) => (await grade(sqsEvent(records))) as { batchItemFailures: unknown[] };
    front = await frontFor('ingest', ingest, DEVICE_ROUTES);
  });
  afterAll(async () => {
    await embedded?.close();
    await front?.close();
    ddb?.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One token, the same secret and scope in both stores. */
  async function tokenFor(deviceId: string, scope: TokenScope): Promise<string> {
    const { token, record } = issueToken(deviceId, new Date(NOW), scope);
    await embedded.tokens.put(record);
    await awsTokens.put({ ...record, hash: hashToken(token) });
    return token;
  }

  const answer = async (base: string, token: string, body: DeviceMessage[], batch: boolean) => {
    const r = await fetch(`${base}${batch ? '/v1/messages/batch' : '/v1/messages'}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(batch ? body : body[0]),
    });
    return { status: r.status, body: await r.text() };
  };

  const post = async (base: string, path: string, token: string, type: string, body: string) => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      body,
    });
    return { status: r.status, body: await r.text() };
  };

  /** Both hosts grade what they accepted, so that each knows the patients' wards (the way the product learns them). */
  async function gradeBoth(): Promise<void> {
    const fresh = awsQueue.messages.slice(graded);
    graded = awsQueue.messages.length;
    if (fresh.length > 0) {
      const res = await gradeAws(fresh.map((q) => sqsRecord(JSON.stringify(q), { groupId: q.message.patientId })));
      expect(res.batchItemFailures).toEqual([]);
    }
    const waiting = embedded.db.prepare('SELECT count(*) FROM inbox').pluck();
    for (let i = 0; (waiting.get() as number) > 0; i++) {
      if (i > 500) throw new Error('the embedded server did not grade its inbox');
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  let run = 0;
  let minute = 0;
  /**
   * One run's world: the patients known beforehand (enrolled by the EHR through both hosts, and graded), its tokens
   * in both stores, and how a drawn message is built (ids and times of this run).
   */
  async function prepare(tokenSpecs: ModelToken[], setup: Record<string, string | undefined | null>) {
    run++;
    const id = (p: string) => `r${run}-${p}`;
    const at = () => new Date(NOW - 600 * 60_000 + ++minute * 1000).toISOString();
    let n = 0;
    const known = new Map<string, string | undefined>();
    const ehr = await tokenFor(`ehr-${run}`, { kind: 'ehr' });
    const enrolments: DeviceMessage[] = Object.entries(setup).flatMap(([p, ward]) =>
      ward === null
        ? []
        : [
            {
              messageId: `${id(p)}-enrol`,
              patientId: id(p),
              observedAt: at(),
              source: { deviceId: `ehr-${run}`, kind: 'ehr' },
              enrolment: {
                therapy: 'car-t',
                infusedAt: '2026-01-08T08:00:00Z',
                weightKg: 70,
                ...(ward ? { ward } : {}),
              },
            } satisfies DeviceMessage,
          ],
    );
    if (enrolments.length > 0) {
      for (const base of [embedded.url, front.url])
        expect((await answer(base, ehr, enrolments, true)).status).toBe(202);
      for (const m of enrolments) known.set(m.patientId, m.enrolment?.ward);
      await gradeBoth();
    }
    const tokens = await Promise.all(
      tokenSpecs.map(async (t, i) => ({
        model: { ...t, patients: t.patients.map(id) },
        secret: await tokenFor(`dev-${run}-${i}`, {
          ...(t.role === 'legacy' ? {} : { kind: t.role }),
          ...(t.wards.length ? { wards: t.wards } : {}),
          ...(t.patients.length ? { patients: t.patients.map(id) } : {}),
        }),
      })),
    );
    /** A drawn message as a token of this role would send it (null claim: its own kind; legacy: monitor). */
    const message = (d: Draft, role: Role): DeviceMessage => {
      const allowed = DOC_TABLE[role].sections;
      const sections = d.sections ?? d.anySections.map((s, i) => allowed[(SECTIONS.indexOf(s) + i) % allowed.length]!);
      const m: Record<string, unknown> = {
        messageId: `${id(d.patient)}-${++n}`,
        patientId: id(d.patient),
        observedAt: at(),
        source: { deviceId: `dev-${run}`, kind: d.claim ?? (role === 'legacy' ? 'monitor' : role) },
      };
      for (const s of new Set(sections))
        m[s] = s === 'enrolment' ? enrolmentValue(d.fields, d.ward) : structuredClone(VALUES[s]);
      return m as unknown as DeviceMessage;
    };
    return { id, at, known, tokens, message };
  }

  /** After an accepted request: its patients are known, in the ward it gave them (graded by both hosts next). */
  function learn(known: Map<string, string | undefined>, accepted: DeviceMessage[]): void {
    for (const m of accepted)
      if (!known.has(m.patientId) || m.enrolment?.ward)
        known.set(m.patientId, m.enrolment?.ward ?? known.get(m.patientId));
  }

  it('the same status and body from both, for random tokens, patients and messages; each decision as the docs say', async () => {
    const statuses = new Set<number>();
    const wardDecisions = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(tokenArb, { minLength: 1, maxLength: 3 }),
        setupArb,
        fc.array(stepArb, { minLength: 1, maxLength: 4 }),
        async (tokenSpecs, setup, steps) => {
          const { known, tokens, message } = await prepare(tokenSpecs, setup);

          for (const step of steps) {
            const t = tokens[step.token % tokens.length]!;
            const messages = step.messages.map((d) => message(d, t.model.role));
            const batch = step.batch || messages.length > 1;
            const sent = batch ? messages : messages.slice(0, 1);
            const fromEmbedded = await answer(embedded.url, t.secret, sent, batch);
            const fromAws = await answer(front.url, t.secret, sent, batch);
            const model = modelRefusals(t.model, sent, known);
            const context = JSON.stringify({ token: t.model, known: Object.fromEntries(known), sent });
            expect(asEmbedded(fromAws), `AWS and embedded differ: ${context}`).toEqual(fromEmbedded);
            statuses.add(fromEmbedded.status);
            if (t.model.wards.length > 0 && model.kind.length === 0 && sent.some((m) => known.get(m.patientId)))
              wardDecisions[fromEmbedded.status === 202 ? 'accepted' : 'refused']++;

            const refused = [...model.kind, ...model.reach];
            expect(
              fromEmbedded.status,
              `docs say ${refused.join('; ') || 'accept'}: ${context}\n${fromEmbedded.body}`,
            ).toBe(refused.length > 0 ? 403 : 202);
            if (fromEmbedded.status === 403) {
              // "403 naming the section": every part the kind may not send is named; else a patient or ward it may not reach.
              const errors = JSON.stringify((JSON.parse(fromEmbedded.body) as { errors: unknown }).errors);
              const names = (r: string) => errors.includes(r.startsWith('patient ') ? `${r} ` : `${r}:`);
              if (model.kind.length > 0) for (const r of model.kind) expect(names(r), `${r} in ${errors}`).toBe(true);
              else expect(model.reach.some(names), `one of ${model.reach.join(', ')} in ${errors}`).toBe(true);
            } else {
              learn(known, sent);
              await gradeBoth();
            }
          }
        },
      ),
      {
        numRuns: 150,
        examples: [
          // Found by this property (shrunk): the AWS patient directory read the state item's old JSON attribute, but
          // the state store writes the compact one (`s`), so every graded patient was "in no ward". A monitor for
          // ward H4 was refused a patient enrolled in H4 (docs: allowed)...
          [
            [{ role: 'monitor', wards: ['H4'], patients: [] }],
            { P1: 'H4', P2: null, P3: null, P4: null },
            [{ token: 0, messages: [{ ...FIXED, sections: ['vitals'] }], batch: false }],
          ],
          // ...and reached a patient enrolled in ICU by placing it in H4 itself (docs: outside its wards, refused).
          [
            [{ role: 'monitor', wards: ['H4'], patients: [] }],
            { P1: 'ICU', P2: null, P3: null, P4: null },
            [{ token: 0, messages: [{ ...FIXED, sections: ['vitals', 'enrolment'] }], batch: false }],
          ],
        ],
      },
    );
    expect([...statuses].sort()).toEqual([202, 403]);
    // Ward scopes were decided on patients each host had learnt, both ways.
    expect(wardDecisions.accepted, JSON.stringify(wardDecisions)).toBeGreaterThan(0);
    expect(wardDecisions.refused, JSON.stringify(wardDecisions)).toBeGreaterThan(0);
  }, 60_000);
  it('HL7 v2 and FHIR too: the same status and body from both, each decision (ACK, OperationOutcome) as the docs say', async () => {
    const seen = { hl7v2: new Set<string>(), fhir: new Set<number>(), fhirEnd: new Set<number>() };
    await fc.assert(
      fc.asyncProperty(
        fc.array(tokenArb, { minLength: 1, maxLength: 3 }),
        setupArb,
        fc.array(
          fc.record({
            token: fc.nat(),
            messages: fc.array(draftArb, { minLength: 1, maxLength: 3 }),
            format: fc.constantFrom('hl7v2' as const, 'fhir' as const),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (tokenSpecs, setup, steps) => {
          const { known, tokens, message } = await prepare(tokenSpecs, setup);
          for (const step of steps) {
            const t = tokens[step.token % tokens.length]!;
            const messages = step.messages.map((d) => message(d, t.model.role));
            const context = (sent: unknown) =>
              JSON.stringify({ format: step.format, token: t.model, known: Object.fromEntries(known), sent });
            if (step.format === 'hl7v2') {
              // One ORU^R01: what a monitor measures (vitals, oxygen) and where the patient is (PV1-3), as `monitor`.
              const d = step.messages[0]!;
              const drawn = messages[0]!;
              const place = d.fields.filter((f) => f === 'bed' || f === 'ward');
              const hl7Oxygen = drawn.oxygen?.forComfort ? undefined : drawn.oxygen;
              const m = {
                messageId: drawn.messageId,
                patientId: drawn.patientId,
                observedAt: drawn.observedAt,
                source: { deviceId: drawn.source.deviceId, kind: 'monitor' },
                // Oxygen for comfort has no HL7 code (toPcd01 leaves it out): only the oxygen HL7 can say.
                ...(hl7Oxygen ? { oxygen: hl7Oxygen } : {}),
                ...(drawn.vitals || !hl7Oxygen ? { vitals: structuredClone(VALUES.vitals) } : {}),
                ...(place.length ? { enrolment: enrolmentValue(place, d.ward) } : {}),
              } as DeviceMessage;
              const body = toPcd01(m)!;
              const fromEmbedded = await post(embedded.url, '/v1/hl7v2', t.secret, 'x-application/hl7-v2+er7', body);
              const fromAws = await post(front.url, '/v1/hl7v2', t.secret, 'x-application/hl7-v2+er7', body);
              expect(
                { ...fromAws, body: sameAck(asEmbedded(fromAws).body) },
                `AWS and embedded differ: ${context(m)}`,
              ).toEqual({
                ...fromEmbedded,
                body: sameAck(fromEmbedded.body),
              });
              const expected = hl7Model(t.model, m, known);
              const code = /\rMSA\|(A[AER])\|/.exec(fromEmbedded.body)?.[1];
              const why = `docs say ${expected.code} ${expected.named.join('; ')}: ${context(m)}\n${fromEmbedded.body}`;
              expect({ status: fromEmbedded.status, code }, why).toEqual({
                status: expected.status,
                code: expected.code,
              });
              seen.hl7v2.add(`${fromEmbedded.status} ${code}`);
              // ERR names what was refused: a part the device may not send, else a ward or patient beyond its reach.
              if (expected.named.length > 0)
                expect(
                  expected.named.some((r) => fromEmbedded.body.includes(r.startsWith('patient ') ? `${r} ` : `${r}:`)),
                  why,
                ).toBe(true);
              if (expected.kept) {
                learn(known, [expected.kept]);
                await gradeBoth();
              }
            } else {
              const encoder = new FhirEncoder();
              const entry = messages.flatMap((m) =>
                encoder
                  .resources(m)
                  .map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })),
              );
              if (entry.length === 0) continue; // nothing FHIR writes (only hypotension thresholds, say)
              const body = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
              const fromEmbedded = await post(embedded.url, '/fhir/r4/Bundle', t.secret, 'application/fhir+json', body);
              const fromAws = await post(front.url, '/fhir/r4/Bundle', t.secret, 'application/fhir+json', body);
              expect(asEmbedded(fromAws), `AWS and embedded differ: ${context(messages)}`).toEqual(fromEmbedded);
              const parts = fhirParts(messages);
              const model = modelRefusals(t.model, parts, known);
              const refused = [...model.kind, ...model.reach];
              const why = `docs say ${refused.join('; ') || 'accept'}: ${context(parts)}\n${fromEmbedded.body}`;
              // A transaction is all or nothing: refused (403) when anything in it is not this device's to send;
              // taken, a transaction-response (200), each entry's own response in its order.
              expect(fromEmbedded.status, why).toBe(refused.length > 0 ? 403 : 200);
              seen.fhir.add(fromEmbedded.status);
              if (messages.some((m) => m.monitoringEnd)) seen.fhirEnd.add(fromEmbedded.status);
              type Outcome = { resourceType: string; issue: { code: string; diagnostics: string }[] };
              const answer = JSON.parse(fromEmbedded.body) as Outcome & {
                type?: string;
                entry?: { response: { status: string; outcome?: Outcome } }[];
              };
              const outcomes =
                fromEmbedded.status === 403
                  ? [answer]
                  : (answer.entry ?? []).flatMap((e) => (e.response.outcome ? [e.response.outcome] : []));
              expect(
                fromEmbedded.status === 403
                  ? answer.resourceType
                  : [answer.resourceType, answer.type, answer.entry?.map((e) => e.response.status)],
                why,
              ).toEqual(
                fromEmbedded.status === 403
                  ? 'OperationOutcome'
                  : ['Bundle', 'transaction-response', entry.map(() => '202 Accepted')],
              );
              const issues = { issue: outcomes.flatMap((o) => o.issue) };
              const said = issues.issue.map((i) => i.diagnostics).join('\n');
              if (fromEmbedded.status === 403) {
                expect(
                  issues.issue.every((i) => i.code === 'forbidden'),
                  why,
                ).toBe(true);
                const names = (r: string) => said.includes(r.startsWith('patient ') ? `${r} ` : `${r}:`);
                if (model.kind.length > 0) for (const r of model.kind) expect(names(r), `${r}: ${why}`).toBe(true);
                else expect(model.reach.some(names), why).toBe(true);
              } else {
                const taken = takenIfKnown(parts, known);
                // What is not taken (an Encounter of a patient not monitored) is said at its entry, and only that.
                expect(said.includes('does not monitor (no data yet)'), why).toBe(taken.length < parts.length);
                learn(known, taken);
                await gradeBoth();
              }
            }
          }
        },
      ),
      {
        numRuns: 100,
        // Accepted and refused in each format for sure, so the coverage check below does not depend on the random
        // draw: a monitor's ORU^R01 (202 AA) and a pump's (403 AR, it may not send as a monitor); an EHR's labs as
        // a FHIR transaction (200) and a pump's (403, labs are not a pump's to send); a discharge (a finished
        // Encounter) from an EHR (200) and from a monitor (403: it may not end a patient's monitoring).
        examples: [
          [
            [
              { role: 'monitor', wards: [], patients: [] },
              { role: 'pump', wards: [], patients: [] },
            ],
            { P1: null, P2: null, P3: null, P4: null },
            [
              { token: 0, messages: [FIXED], format: 'hl7v2' },
              { token: 1, messages: [FIXED], format: 'hl7v2' },
            ],
          ],
          [
            [
              { role: 'ehr', wards: [], patients: [] },
              { role: 'pump', wards: [], patients: [] },
            ],
            { P1: null, P2: null, P3: null, P4: null },
            [
              { token: 0, messages: [{ ...FIXED, sections: ['labs'] }], format: 'fhir' },
              { token: 1, messages: [{ ...FIXED, sections: ['labs'] }], format: 'fhir' },
            ],
          ],
          [
            [
              { role: 'ehr', wards: [], patients: [] },
              { role: 'monitor', wards: [], patients: [] },
            ],
            { P1: 'H4', P2: null, P3: null, P4: null },
            [
              { token: 0, messages: [{ ...FIXED, sections: ['monitoringEnd'] }], format: 'fhir' },
              { token: 1, messages: [{ ...FIXED, sections: ['monitoringEnd'] }], format: 'fhir' },
            ],
          ],
          // A transaction refused for a discharge the token may not send, beside an Encounter it may send for a
          // patient not monitored: the refusal said "does not monitor" too, telling the token which patients are
          // (found with the seed -1038117222).
          [
            [
              { role: 'legacy', wards: [], patients: [] },
              { role: 'monitor', wards: ['ICU'], patients: [] },
            ],
            { P1: null, P2: null, P3: null, P4: null },
            [
              {
                token: 147172376,
                messages: [
                  {
                    patient: 'P1',
                    claim: null,
                    sections: null,
                    anySections: ['enrolment', 'labs'],
                    fields: ['ward'],
                    ward: 'H4',
                  },
                  {
                    patient: 'P1',
                    claim: null,
                    sections: ['monitoringEnd'],
                    anySections: ['monitoringEnd'],
                    fields: ['bed'],
                    ward: 'H4',
                  },
                ],
                format: 'fhir',
              },
            ],
          ],
        ],
      },
    );
    // Both accepted and refused, in each format.
    expect([...seen.fhir].sort(), 'FHIR statuses').toEqual([200, 403]);
    expect([...seen.fhirEnd].sort(), 'FHIR statuses of a discharge').toEqual([200, 403]);
    expect([...seen.hl7v2].sort(), 'HL7 v2 answers').toEqual(expect.arrayContaining(['202 AA', '403 AR']));
  }, 60_000);

  // Expiry (2026-12-06), at each host's clock (NOW): a token whose expiresAt is not after it is refused by both, alike,
  // as docs/security.md says; one without expiresAt never expires.
  it('refuses an expired token alike on both hosts, and takes one not yet expired', async () => {
    const seen = new Set<number>();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 }), { nil: undefined }),
        fc.constantFrom<Kind>('monitor', 'manual'),
        async (offset, kind) => {
          const deviceId = `exp-${++n}`;
          const expiresAt = offset === undefined ? undefined : new Date(NOW + offset).toISOString();
          const { token, record } = issueToken(deviceId, new Date(NOW - 4 * 86_400_000), { kind }, expiresAt);
          await embedded.tokens.put(record);
          await awsTokens.put(record);
          const message = {
            messageId: `exp-${n}`,
            patientId: `exp-P${n}`,
            observedAt: new Date(NOW - 60_000).toISOString(),
            source: { deviceId, kind },
            vitals: { heartRate: 92 },
          } as DeviceMessage;
          const [e, a] = [
            await answer(embedded.url, token, [message], false),
            await answer(front.url, token, [message], false),
          ];
          const expired = offset !== undefined && offset <= 0;
          // The model, from docs/security.md: refused 403, naming when, and what to do (the crs token command as each
          // backend's operator runs it, 2026-12-06); else not refused for expiry, and answered alike.
          const refusal = (backend: 'embedded' | 'aws') => ({
            status: 403,
            body: JSON.stringify({ error: TOKEN_EXPIRED(expiresAt!, backend) }),
          });
          if (expired) expect([e, a]).toEqual([refusal('embedded'), refusal('aws')]);
          else {
            expect(a).toEqual(e);
            expect(e.body).not.toContain('expired');
          }
          seen.add(e.status);
        },
      ),
      {
        numRuns: 40,
        examples: [
          [0, 'monitor'],
          [1, 'monitor'],
          [-1, 'pump'],
          [undefined, 'ehr'],
        ],
      },
    );
    expect([...seen].sort()).toEqual(expect.arrayContaining([202, 403]));
  }, 60_000);
});
