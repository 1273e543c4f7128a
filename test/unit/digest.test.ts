// "The same content" of a duplicate is the same fields and values (crs-rules 1.1 section 5, item 8): two spellings
// of one instant and a set in another order are the same content. Until 2026-12-06 the digest was of the message as
// sent: a redelivery respelled by an integration engine was a new observation, and as the later arrival at its
// instant it undid a correction sent in between (the fever came back). The digests of messages spelled the usual
// way are pinned as the code before that change computed them: identities already stored must still match.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageDigest } from '#app/digest.ts';
import { gradePatient } from '#app/grade.ts';
import { Replay } from '#app/replay.ts';
import { openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { resolveConfig } from '#domain/config.ts';
import { validateMessage, type DeviceMessage } from '#domain/contract.ts';
import type { StateStore } from '#ports';
import { startEmbeddedServer } from '#hosts/embedded/embedded.ts';
import { FakeDynamo, STATE_STORE_TABLES, stateStoreOn } from '#test/support/fake-dynamo.ts';
import { lineStream } from '#test/support/lines.ts';
import { until } from '#test/support/until.ts';

const resolved = resolveConfig({ dedupeWindow: 16, holdMinutes: 0 });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;

/** A message as the ingest takes it: validated (objects rebuilt in the contract's field order). */
function valid(value: unknown): DeviceMessage {
  const v = validateMessage(value);
  if (!v.ok) throw new Error(v.errors.join('; '));
  return v.message;
}

const monitor = { deviceId: 'mon-1', kind: 'monitor' } as const;

describe('the digest of a message spelled the usual way is the one stored before 2026-12-06', () => {
  // Computed with `git show cb9ffcd:shared/app/digest.ts` (SHA-256 of the validated message's JSON, 22 base64url).
  it.each([
    [
      'vitals, a time in Z without a fraction',
      {
        messageId: 'm-1',
        patientId: 'P-0042',
        observedAt: '2026-01-10T08:00:00Z',
        source: monitor,
        vitals: { temperatureC: 38.6, heartRate: 112 },
      },
      'rUTWHnfOT7_AGaPQ0Ojvzx',
    ],
    [
      'one vasopressor, a time with milliseconds',
      {
        messageId: 'm-2',
        patientId: 'P-0042',
        observedAt: '2026-01-10T08:00:00.250Z',
        source: { deviceId: 'pump-3', kind: 'pump' },
        vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
      },
      'b-sVA3PIwsMU337VYI2jv8',
    ],
    [
      'an enrolment with its infusion time',
      {
        messageId: 'enr-1',
        patientId: 'P-0042',
        observedAt: '2026-01-10T07:00:00Z',
        source: { deviceId: 'ehr', kind: 'ehr' },
        enrolment: {
          therapy: 'car-t',
          product: 'axi-cel',
          infusedAt: '2026-01-08T08:00:00Z',
          weightKg: 70,
          bed: 'H4-12',
          ward: 'H4',
        },
      },
      'yivLOHckr7epSypGLJWKVU',
    ],
    [
      'one medication, keys sent in another order',
      {
        source: { kind: 'ehr', deviceId: 'ehr' },
        medications: [{ doseMg: 1000, drug: 'acetaminophen' }],
        observedAt: '2026-01-10T09:00:00Z',
        patientId: 'P-0042',
        messageId: 'med-1',
      },
      'QjYxwI2_6tIrxjrGXBpYrp',
    ],
    [
      'two vasopressors in the canonical order (by drug)',
      {
        messageId: 'm-3',
        patientId: 'P-0042',
        observedAt: '2026-01-10T10:00:00Z',
        source: { deviceId: 'pump-3', kind: 'pump' },
        vasopressors: [
          { drug: 'epinephrine', dose: 0.05, unit: 'mcg/kg/min' },
          { drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' },
        ],
      },
      'ibLyyBmu2wRi9xMjEv_McW',
    ],
  ])('%s', (_, message, digest) => {
    expect(messageDigest(valid(message))).toBe(digest);
  });
});

describe('the same content is the same fields and values', () => {
  const base = {
    messageId: 'm-1',
    patientId: 'P-1',
    observedAt: '2026-01-10T08:00:00Z',
    source: { deviceId: 'ehr', kind: 'ehr' },
    enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z' },
    vasopressors: [
      { drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' },
      { drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' },
      { drug: 'vasopressin', dose: 0.03, unit: 'units/min' },
    ],
    medications: [{ drug: 'tocilizumab', doseMg: 560 }, { drug: 'dexamethasone' }],
  };
  const digest = (change: Record<string, unknown>) => messageDigest(valid({ ...base, ...change }));
  const same = digest({});

  it.each([
    '2026-01-10T08:00:00.000Z',
    '2026-01-10T08:00:00+00:00',
    '2026-01-10T08:00:00-00:00',
    '2026-01-10T09:00:00+01:00',
    '2026-01-10T03:30:00-04:30',
    '2026-01-10T08:00:00.0Z',
    '2026-01-10T08:00:00.0004Z', // below a millisecond: the reducer places it at the same millisecond
  ])('observedAt %s is the instant 2026-01-10T08:00:00Z', (observedAt) => {
    expect(digest({ observedAt })).toBe(same);
  });

  it('counts an infusion time as its instant', () => {
    expect(digest({ enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T09:00:00.000+01:00' } })).toBe(same);
  });

  it('counts milliseconds, however many digits the fraction has', () => {
    const at = digest({ observedAt: '2026-01-10T08:00:00.120Z' });
    expect(digest({ observedAt: '2026-01-10T08:00:00.12Z' })).toBe(at);
    expect(digest({ observedAt: '2026-01-10T09:00:00.120999+01:00' })).toBe(at);
    expect(at).not.toBe(same);
    expect(digest({ observedAt: '2026-01-10T08:00:00.121Z' })).not.toBe(at);
    expect(digest({ observedAt: '2026-01-10T08:00:01Z' })).not.toBe(same);
  });

  it('takes vasopressors and medications as sets, each entry as many times as sent', () => {
    expect(digest({ vasopressors: [...base.vasopressors].reverse() })).toBe(same);
    expect(digest({ vasopressors: [base.vasopressors[1], base.vasopressors[2], base.vasopressors[0]] })).toBe(same);
    expect(digest({ medications: [...base.medications].reverse() })).toBe(same);
    // Other content: an entry more, one fewer, another dose, a field of an entry left out.
    expect(digest({ vasopressors: [...base.vasopressors, base.vasopressors[0]] })).not.toBe(same);
    expect(digest({ vasopressors: base.vasopressors.slice(1) })).not.toBe(same);
    expect(
      digest({
        medications: [
          { drug: 'tocilizumab', doseMg: 560 },
          { drug: 'dexamethasone', doseMg: 0 },
        ],
      }),
    ).not.toBe(same);
    expect(digest({ medications: [{ drug: 'tocilizumab' }, { drug: 'dexamethasone' }] })).not.toBe(same);
  });
});

/**
 * The review's course: 38.6 °C at 08:30, corrected to 36.9 °C at 08:30 by another message, then the first message
 * again, its time respelled by an integration engine. `between` messages come between, to carry the first one's
 * identity past the state's window (16) into the store's long tail.
 */
function course(between: number): DeviceMessage[][] {
  const at = (minute: number) => `2026-01-10T${minute < 60 ? '08' : '09'}:${String(minute % 60).padStart(2, '0')}:00Z`;
  return [
    [
      valid({
        messageId: 'enr',
        patientId: 'P-1',
        observedAt: '2026-01-10T07:00:00Z',
        source: { deviceId: 'ehr', kind: 'ehr' },
        enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed: 'H4-1', ward: 'H4' },
      }),
    ],
    [valid({ messageId: 'm1', patientId: 'P-1', observedAt: at(30), source: monitor, vitals: { temperatureC: 38.6 } })],
    [valid({ messageId: 'm2', patientId: 'P-1', observedAt: at(30), source: monitor, vitals: { temperatureC: 36.9 } })],
    ...Array.from({ length: between }, (_, i) => [
      valid({
        messageId: `hr${i}`,
        patientId: 'P-1',
        observedAt: at(31 + i),
        source: monitor,
        vitals: { heartRate: 80 },
      }),
    ]),
  ];
}
const respelled = [
  valid({
    messageId: 'm1',
    patientId: 'P-1',
    observedAt: '2026-01-10T09:30:00.000+01:00',
    source: monitor,
    vitals: { temperatureC: 38.6 },
  }),
  valid({
    messageId: 'after',
    patientId: 'P-1',
    observedAt: '2026-01-10T09:59:00Z',
    source: monitor,
    vitals: { heartRate: 81 },
  }),
];

async function redeliveryAfterCorrection(store: () => StateStore, between: number) {
  const crs: number[] = [];
  for (const batch of course(between)) {
    const r = await gradePatient(store(), CONFIG, 'P-1', batch);
    for (const s of r.steps) if (s.kind === 'applied') crs.push(s.assessment.crsGrade);
  }
  expect(crs.slice(0, 3)).toEqual([0, 1, 0]); // the fever, then its correction
  const r = await gradePatient(store(), CONFIG, 'P-1', respelled);
  expect(r.steps.map((s) => s.kind)).toEqual(['duplicate', 'applied']);
  expect(r.notifications).toEqual([]);
  const last = r.steps[1]!;
  expect(last.kind === 'applied' && last.assessment.crsGrade).toBe(0);
}

describe('a late redelivery respelled does not undo a correction', () => {
  describe('SQLite (crs serve)', () => {
    let dir: string;
    let db: Db;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'crs-digest-'));
      db = openDataDir(dir);
    });
    afterEach(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    it('within the state window', () => redeliveryAfterCorrection(() => new SqliteStateStore(db), 0));
    it('past the window, from the long tail', () => redeliveryAfterCorrection(() => new SqliteStateStore(db), 40));
  });

  describe('DynamoDB (AWS)', () => {
    const ddb = new FakeDynamo(STATE_STORE_TABLES);
    afterAll(() => ddb.restore());
    beforeEach(() => ddb.reset());
    const store = () => stateStoreOn(ddb, Date.parse('2026-01-10T10:00:00Z'));
    it('within the state window', () => redeliveryAfterCorrection(store, 0));
    it('past the window, from the long tail', () => redeliveryAfterCorrection(store, 40));
  });

  it('crs replay', () => {
    const replay = new Replay(CONFIG);
    const lines = [...course(0).flat(), ...respelled].map((m) => JSON.stringify(m));
    const events = lines.map((l, i) => replay.line(l, i + 1));
    const grades = events.map((e) => e.map((x): number | string => (x.type === 'assessment' ? x.crsGrade : x.type)));
    expect(grades).toEqual([[0], [1, 'notification'], [0, 'notification'], ['duplicate'], [0]]);
  });
});

describe('one instant however it is spelled, for the merge too (section 1)', () => {
  it('merges a panel and takes a correction sent with another spelling of the instant', () => {
    const replay = new Replay(CONFIG);
    const m = (messageId: string, observedAt: string, vitals: Record<string, number>) =>
      JSON.stringify({ messageId, patientId: 'P-1', observedAt, source: monitor, vitals });
    const lines = [
      JSON.stringify(course(0)[0]![0]),
      m('t1', '2026-01-10T08:30:00Z', { temperatureC: 38.6 }),
      m('t2', '2026-01-10T09:30:00.000+01:00', { temperatureC: 36.9 }), // a correction at the same instant
      m('t3', '2026-01-10T08:30:00.0004Z', { heartRate: 90 }), // below a millisecond: the same instant still
    ];
    const events = lines.map((l, i) => replay.line(l, i + 1));
    const grades = events.map((e) => e.flatMap((x) => (x.type === 'assessment' ? [x.crsGrade] : [])));
    expect(grades).toEqual([[0], [1], [0], [0]]);
    const vitals = replay.state('P-1')!.vitals;
    expect([vitals.temperatureC?.t, vitals.heartRate?.t]).toEqual([
      Date.parse('2026-01-10T08:30:00Z'),
      Date.parse('2026-01-10T08:30:00Z'),
    ]);
  });
});

describe('crs serve: a respelled redelivery posted after a correction', () => {
  it('is a duplicate through the ingest and the grading (changes nothing), not a reused id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-digest-serve-'));
    const token = 'digest-test-token-of-32-characters-x';
    const pages: string[] = [];
    const server = await startEmbeddedServer({
      dataDir: dir,
      config: CONFIG,
      port: 0,
      localToken: token,
      pageStream: lineStream(pages),
      log: () => {},
    });
    const key = new URL(server.boardUrl).searchParams.get('key')!;
    const health = async () =>
      (await (await fetch(`${server.url}/api/health`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
        inbox: number;
        duplicates: number;
        reusedIds: number;
      };
    const post = async (m: unknown) => {
      const r = await fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(m),
      });
      expect(r.status).toBe(202);
      await until(async () => (await health()).inbox === 0, 'the inbox graded');
    };
    try {
      const t = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
      const z = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
      const fever = (observedAt: string, temperatureC: number, messageId: string) => ({
        messageId,
        patientId: 'P-1',
        observedAt,
        source: monitor,
        vitals: { temperatureC },
      });
      await post({
        messageId: 'enr',
        patientId: 'P-1',
        observedAt: z(t - 60 * 60_000),
        source: { deviceId: 'ehr', kind: 'ehr' },
        enrolment: { therapy: 'car-t', infusedAt: z(t - 2 * 86_400_000), bed: 'H4-1', ward: 'H4' },
      });
      await post(fever(z(t), 38.6, 'm1'));
      await post(fever(z(t), 36.9, 'm2'));
      await post(fever(new Date(t + 3_600_000).toISOString().replace('Z', '+01:00'), 38.6, 'm1'));
      await until(async () => {
        const h = await health();
        return h.duplicates + h.reusedIds > 0;
      }, 'the redelivery graded');
      expect(await health()).toMatchObject({ duplicates: 1, reusedIds: 0 });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
