// The grade Lambda with an in-memory state store: per-patient grouping, one load and one save per patient,
// partial batch failures that hold up only the failing patient, retries that change nothing, ids-only logs.
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { shippedConfig } from '#test/support/config-file.ts';
import type { SQSBatchResponse } from 'aws-lambda';
import { configFor, DEFAULT_CONFIG, type GradingConfig } from '#domain/config.ts';
import { gradingSettingsId } from '#domain/settings-id.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf, messageDigest } from '#app/digest.ts';
import { gradePatient, provenanceOf, queuedDigest } from '#app/grade.ts';
import { hasSeen, seenCount } from '#domain/seen.ts';
import { SeenBefore, VersionConflict, type AuditEvent, type StateStore } from '#ports';
import { telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import {
  captureOutput,
  metricSum,
  quiet,
  sqsEvent,
  sqsRecord,
  withoutTimestamps,
} from '#test/support/lambda-events.ts';
import { enrol, msg, T0 } from '#test/support/messages.ts';
import { MemoryStateStore } from '#test/support/port-fakes.ts';

type HandlerModule = typeof import('#functions/grade/handler.ts');
let mod: HandlerModule;
let live: Telemetry;

beforeAll(async () => {
  process.env.CRS_STATE_TABLE = 'state';
  process.env.CRS_AUDIT_TABLE = 'audit';
  process.env.CRS_SEEN_TABLE = 'seen';
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('#functions/grade/handler.ts');
  live = telemetry('grade');
});

let store: MemoryStateStore;
beforeEach(() => {
  store = new MemoryStateStore();
});

const grade = () => quiet(mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...live }));
/** How many messages are applied to the patient's stored state. */
const applied = (patientId: string) => seenCount(store.state(patientId)?.seen ?? []);
const failedIds = (r: SQSBatchResponse) => r.batchItemFailures.map((f) => f.itemIdentifier);
/** DynamoDB throttling the patient's write, as the SDK names it: an outage, not a message the store refuses. */
const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
const fever = (patientId: string, minutes: number, temperatureC = 38.6) =>
  msg(patientId, minutes, { vitals: { temperatureC } });

describe('grade handler', () => {
  it('records a messageId reused with other content: graded, the ReusedMessageIds metric, a warning by id only', async () => {
    const records = [
      enrol('R'),
      msg('R', 1, { neuro: { iceScore: 8 } }, 'dup'),
      msg('R', 2, { neuro: { iceScore: 3 } }, 'dup'),
    ].map((m) => sqsRecord(m));
    const { result, out } = await captureOutput(() =>
      mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...live })(sqsEvent(records)),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(metricSum(out, 'ReusedMessageIds')).toBe(1);
    const warning = out.split('\n').find((l) => l.includes('reused with other content'))!;
    expect(JSON.parse(warning)).toMatchObject({ level: 'WARN', patientId: 'R', messageIds: ['dup'] });
    expect(warning).not.toContain('iceScore');
  });

  it('says, by ids only, a patient graded under grading settings other than its last message (a redeploy changed them)', async () => {
    const handler = (config: GradingConfig) =>
      mod.createGradeHandler({ store, config, now: Date.now, ...live })(
        sqsEvent([enrol('S'), fever('S', 0)].map((m) => sqsRecord(m))),
      );
    await captureOutput(() => handler(DEFAULT_CONFIG));
    const lee = configFor('lee2014');
    const { out } = await captureOutput(() =>
      mod.createGradeHandler({ store, config: lee, now: Date.now, ...live })(sqsEvent([sqsRecord(fever('S', 10))])),
    );
    const warning = out.split('\n').find((l) => l.includes('graded under grading settings other than'))!;
    expect(JSON.parse(warning)).toMatchObject({
      level: 'WARN',
      patientId: 'S',
      settings: gradingSettingsId(lee),
      formerSettings: gradingSettingsId(DEFAULT_CONFIG),
    });
    expect(warning).not.toContain('38.6');
  });

  it('grades every patient in the batch with one state read and one write per patient', async () => {
    const records = [
      enrol('A'),
      enrol('B'),
      fever('A', 0),
      fever('B', 5),
      msg('A', 10, { vitals: { heartRate: 110 } }),
    ].map((m) => sqsRecord(m));
    const res = await grade()(sqsEvent(records));
    expect(res.batchItemFailures).toEqual([]);
    expect(store.loads).toBe(2);
    expect(store.saves).toBe(2);
    expect(applied('A')).toBe(3);
    expect(applied('B')).toBe(2);
  });

  it('writes the pages a grade change causes into the outbox with the state, as the reducer computes them', async () => {
    const a = [enrol('A'), fever('A', 0)];
    await grade()(sqsEvent(a.map((m) => sqsRecord(m))));
    // The same messages through the pure reducer give the same pages.
    let state;
    const expected = [];
    for (const m of a) {
      const step = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m));
      state = step.state;
      if (step.kind === 'applied') expected.push(...step.notifications);
    }
    expect(expected.length).toBeGreaterThan(0);
    expect(store.outbox).toEqual(expected);
    expect(store.outbox[0]).toMatchObject({ condition: 'crs', toGrade: 1, teams: ['hematology'], patientId: 'A' });
  });

  it('fails a poison message and the rest of its patient, and lets other patients go on', async () => {
    const a1 = sqsRecord(enrol('A'));
    const poison = sqsRecord('{"message": {"messageId": "x"}', { groupId: 'A' });
    const a3 = sqsRecord(fever('A', 0));
    const b1 = sqsRecord(enrol('B'));
    const b2 = sqsRecord(fever('B', 0));
    const res = await grade()(sqsEvent([a1, b1, poison, b2, a3]));
    expect(failedIds(res)).toEqual([poison.messageId, a3.messageId]);
    expect(applied('A')).toBe(1); // a1 committed; a3 waits behind the poison, in order
    expect(applied('B')).toBe(2);
  });

  it('fails only the patient whose state could not be written, and a retry then commits it', async () => {
    store.failNextSave.set('A', throttled());
    const records = [enrol('A'), enrol('B'), fever('A', 0)].map((m) => sqsRecord(m));
    const res = await grade()(sqsEvent(records));
    expect(failedIds(res)).toEqual([records[0]!.messageId, records[2]!.messageId]);
    expect(store.state('A')).toBeUndefined();
    expect(store.state('B')).toBeDefined();

    const retry = await grade()(sqsEvent([records[0]!, records[2]!]));
    expect(retry.batchItemFailures).toEqual([]);
    expect(applied('A')).toBe(2);
  });

  it('loses no update when another delivery wrote the patient in between (version condition, reload, reapply)', async () => {
    const first = enrol('A');
    await grade()(sqsEvent([sqsRecord(first)]));
    const other = fever('A', 1, 38.9);
    // A concurrent grader commits `other` between this batch's read and write.
    store.racer.set('A', (s) => reduce(s, other, DEFAULT_CONFIG, arrivalOf(other)).state);
    const mine = msg('A', 2, { vitals: { heartRate: 120 } });
    const res = await grade()(sqsEvent([sqsRecord(mine)]));
    expect(res.batchItemFailures).toEqual([]);
    for (const m of [first, other, mine]) expect(hasSeen(store.state('A')!.seen, m.messageId)).toBe(true);
    expect(applied('A')).toBe(3);
  });

  it('changes nothing when the same batch is delivered again', async () => {
    const records = [enrol('A'), fever('A', 0)].map((m) => sqsRecord(m));
    await grade()(sqsEvent(records));
    const before = { state: store.state('A'), outbox: store.outbox.length, saves: store.saves };
    const { result, out } = await captureOutput(() => grade()(sqsEvent(records)));
    expect(result.batchItemFailures).toEqual([]);
    expect(store.state('A')).toEqual(before.state);
    expect(store.outbox).toHaveLength(before.outbox);
    expect(store.saves).toBe(before.saves);
    expect(metricSum(out, 'DuplicatesIgnored')).toBe(2);
    expect(metricSum(out, 'GradesComputed')).toBe(0);
  });

  it('fails the invocation when every record failed, without the record errors (they echo values)', async () => {
    const poison = sqsRecord(JSON.stringify({ message: { ...fever('A', 0, 101.3) } }), { groupId: 'A' });
    const { result, out } = await captureOutput(() =>
      grade()(sqsEvent([poison])).then(
        () => undefined,
        (e: Error) => e,
      ),
    );
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).name).toBe('WholeBatchFailed');
    expect((result as Error).message).not.toMatch(/101\.3|temperature/);
    expect(out).toContain('"patientId":"A"');
    expect(out).not.toMatch(/101\.3|temperatureC|Fahrenheit/);
    expect(metricSum(out, 'PoisonMessages')).toBe(1);
  });

  it('logs patient and message ids, never values, and measures grades and latency', async () => {
    const e = enrol('A', -60, { bed: 'BED-SECRET-9' });
    const f = fever('A', 0, 39.4);
    const { out } = await captureOutput(() =>
      grade()(sqsEvent([sqsRecord(e, { sentAt: Date.now() - 1000 }), sqsRecord(f)])),
    );
    expect(out).toContain(e.messageId);
    expect(out).toContain(f.messageId);
    expect(out).toMatch(/"notificationIds":\["crs\|A\|/);
    for (const value of ['BED-SECRET-9', '39.4', 'axi-cel', 'PROVISIONAL'])
      expect(withoutTimestamps(out)).not.toContain(value);
    expect(metricSum(out, 'GradesComputed')).toBe(2);
    expect(metricSum(out, 'ProcessingLatency')).toBeGreaterThanOrEqual(1000);
    // A count of 0 is not published: CloudWatch bills a custom metric for each hour it receives data.
    expect(out).not.toContain('DuplicatesIgnored');
  });

  it('gives up on a patient after repeated version conflicts and reports its records failed', async () => {
    const conflicting = new MemoryStateStore();
    vi.spyOn(conflicting, 'save').mockImplementation(async (patientId) => {
      throw new VersionConflict(patientId);
    });
    const handler = quiet(
      mod.createGradeHandler({ store: conflicting, config: DEFAULT_CONFIG, now: Date.now, ...live }),
    );
    const a = sqsRecord(enrol('A'));
    const b = sqsRecord(enrol('B'));
    const res = await handler(sqsEvent([a, b])).catch((e: Error) => e);
    expect(res).toBeInstanceOf(Error); // both patients failed: the whole batch is retried
    expect(conflicting.loads).toBeGreaterThan(2);
  });
});

describe('grade handler: a message a later ingest queued (a deploy or a rollback, 2026-12-07)', () => {
  it('grades it and pages its grade change, warning of the fields it left out by name (no poison message)', async () => {
    const fever = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const later = { ...fever, monitoringEnd2: { reason: 'moved' } } as unknown as DeviceMessage;
    const handler = mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...live });
    const { result, out } = await captureOutput(() => handler(sqsEvent([sqsRecord(enrol('P')), sqsRecord(later)])));
    expect(result.batchItemFailures).toEqual([]);
    expect(store.outbox.map((n) => [n.condition, n.toGrade, n.causedBy])).toEqual([['crs', 1, fever.messageId]]);
    const warning = out.split('\n').find((l) => l.includes('fields this release does not know'));
    expect(JSON.parse(warning!)).toMatchObject({
      level: 'WARN',
      release: 'unknown release', // the stack sets CRS_RELEASE (test/infra/stack.test.ts); this test does not
      patientId: 'P',
      messageId: fever.messageId,
      fields: ['monitoringEnd2'],
    });
  });

  it('names at most ten of the fields it left out, and how many more (the warning stays one short line)', async () => {
    const fever = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const added = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`added${i}`, i]));
    const later = { ...fever, vitals: { ...fever.vitals, ...added } } as unknown as DeviceMessage;
    const handler = mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...live });
    const { result, out } = await captureOutput(() => handler(sqsEvent([sqsRecord(enrol('P')), sqsRecord(later)])));
    expect(result.batchItemFailures).toEqual([]);
    const warning = JSON.parse(out.split('\n').find((l) => l.includes('fields this release does not know'))!);
    expect(warning.fields).toEqual([...Array.from({ length: 10 }, (_, i) => `vitals.added${i}`), '15 more']);
  });
});

describe('grade handler cold start', () => {
  it('fails loudly on a bad CRS_CONFIG_FILE override instead of grading with the wrong settings', async () => {
    vi.resetModules();
    process.env.CRS_CONFIG_FILE = shippedConfig({ feverThresholdC: 50 }).CRS_CONFIG_FILE;
    try {
      await expect(import('#functions/grade/handler.ts')).rejects.toThrow(/CRS_CONFIG_FILE.*feverThresholdC/);
    } finally {
      delete process.env.CRS_CONFIG_FILE;
    }
  });

  it('fails loudly when the state table is not configured', async () => {
    vi.resetModules();
    const saved = process.env.CRS_STATE_TABLE;
    delete process.env.CRS_STATE_TABLE;
    try {
      await expect(import('#functions/grade/handler.ts')).rejects.toThrow(/CRS_STATE_TABLE/);
    } finally {
      process.env.CRS_STATE_TABLE = saved;
    }
  });

  it('grades with a valid override (the Lee 2014 scheme)', async () => {
    vi.resetModules();
    process.env.CRS_CONFIG_FILE = shippedConfig({ scheme: 'lee2014' }).CRS_CONFIG_FILE;
    try {
      const { gradingConfigFromEnv } = await import('#adapters/aws/grading-config.ts');
      expect(gradingConfigFromEnv().scheme).toBe('lee2014');
      await expect(import('#functions/grade/handler.ts')).resolves.toHaveProperty('handler');
    } finally {
      delete process.env.CRS_CONFIG_FILE;
    }
  });
});

describe('pinned by a mutation run', () => {
  // gradePatient itself on the in-memory store: what a user sees of one patient's batch.
  it('refuses a message for another patient and writes nothing under this one', async () => {
    const result = await gradePatient(store, DEFAULT_CONFIG, 'A', [enrol('B')]);
    expect(result.committed).toBe(0);
    expect(result.error?.message).toMatch(/is for another patient/);
    expect(store.saves).toBe(0);
    expect(store.state('A')).toBeUndefined();
  });

  it('places each message of a batch by its own arrival, not the first one', async () => {
    // Both arrived a second after they were observed: each is placed at its observedAt.
    const first = fever('A', 0);
    const second = fever('A', 30, 38.9);
    const arrival = (m: DeviceMessage) => ({ receivedAt: Date.parse(m.observedAt) + 1000 });
    const result = await gradePatient(store, DEFAULT_CONFIG, 'A', [first, second], [arrival(first), arrival(second)]);
    const at = result.steps.map((s) => (s.kind === 'applied' ? Date.parse(s.assessment.at) : undefined));
    expect(at).toEqual([Date.parse(first.observedAt), Date.parse(second.observedAt)]);
  });

  it.each([
    ['VersionConflict', VersionConflict, (id: string) => new VersionConflict(id)],
    ['SeenBefore', SeenBefore, (id: string) => new SeenBefore(id, new Map())],
  ])('retries a save refused with %s five times, then gives up', async (_name, kind, refusal) => {
    vi.spyOn(store, 'save').mockImplementation(async (patientId) => {
      store.saves++;
      throw refusal(patientId);
    });
    await expect(gradePatient(store, DEFAULT_CONFIG, 'A', [enrol('A')])).rejects.toBeInstanceOf(kind);
    expect([store.loads, store.saves]).toEqual([6, 6]);
  });

  it('learns the digests a SeenBefore carries (a store without priorDigests): a late duplicate is not graded again', async () => {
    // A long tail the store does not read before grading: a first-time write of an id it holds is refused.
    const late = fever('A', 0, 39.2);
    const tail = new Map([[late.messageId, [messageDigest(late)]]]);
    const tailed: StateStore = {
      load: (patientId) => store.load(patientId),
      save: async (patientId, state, version, outbox, extras) => {
        const known = (extras?.seen ?? []).filter((m) => !m.prior && tail.has(m.messageId));
        if (known.length > 0)
          throw new SeenBefore(patientId, new Map(known.map((m) => [m.messageId, tail.get(m.messageId)!])));
        return store.save(patientId, state, version, outbox);
      },
    };
    await gradePatient(tailed, DEFAULT_CONFIG, 'A', [enrol('A')]);
    const result = await gradePatient(tailed, DEFAULT_CONFIG, 'A', [late]);
    expect(result.steps.map((s) => s.kind)).toEqual(['duplicate']);
    expect(result.notifications).toEqual([]);
    expect(applied('A')).toBe(1);
  });

  // 2026-12-06 (a mutation run of grading and replay): what the trail shows of a batch, and where a message is placed.
  it("audits each message of a batch with its own sender, its grades as they are, and each page's causing message", async () => {
    const audits: AuditEvent[] = [];
    const audited: StateStore = {
      load: (patientId) => store.load(patientId),
      save: async (patientId, state, version, outbox, extras) => {
        audits.push(...(extras?.audit ?? []));
        return store.save(patientId, state, version, outbox);
      },
    };
    const a = [enrol('A'), fever('A', 0)];
    await gradePatient(audited, DEFAULT_CONFIG, 'A', a, [{ sender: 'gw-1' }, { sender: 'gw-2' }]);
    const assessments = audits.filter((e) => e.type === 'assessment');
    expect(assessments.map((e) => [e.details?.messageId, e.details?.sender])).toEqual([
      [a[0]!.messageId, 'gw-1'],
      [a[1]!.messageId, 'gw-2'],
    ]);
    // CRS 1 from the fever, ICANS 0: the text says which grade is which.
    expect(assessments[1]!.text).toMatch(/^CRS 1, ICANS 0 \(astct2019\): /);
    const page = audits.find((e) => e.type === 'notification')!;
    expect(page.details).toMatchObject({ messageId: a[1]!.messageId, notificationId: store.outbox[0]!.notificationId });
  });

  it('places a message dated ahead of its arrival at the arrival the queue body records', async () => {
    // A device clock 10 minutes fast: the ingest queued the message with when it arrived (QueuedMessage.receivedAt).
    const ahead = fever('A', 10);
    const receivedAt = new Date(Date.parse(ahead.observedAt) - 10 * 60_000).toISOString();
    const provenance = provenanceOf(JSON.stringify({ message: ahead, receivedAt, sender: 'gw-1' }));
    expect(provenance).toEqual({ sender: 'gw-1', receivedAt: Date.parse(receivedAt) });
    const result = await gradePatient(store, DEFAULT_CONFIG, 'A', [enrol('A', -60), ahead], [undefined, provenance]);
    const step = result.steps[1]!;
    expect(step.kind === 'applied' && step.assessment.at).toBe(receivedAt.replace('.000Z', 'Z'));
  });

  it('places it at its observedAt under a shipped aheadOfArrival "observedAt", at the arrival by default', async () => {
    // The queue body records arrival at 08:00 (sqsRecord); a monitor 3 minutes fast dates its fever 08:03.
    const ahead = fever('A', 3);
    const { gradingConfigFromEnv } = await import('#adapters/aws/grading-config.ts');
    const shipped = gradingConfigFromEnv(shippedConfig({ aheadOfArrival: 'observedAt' }));
    const handle = (config: GradingConfig) =>
      quiet(mod.createGradeHandler({ store, config, now: Date.now, ...live }))(sqsEvent([sqsRecord(ahead)]));
    await handle(DEFAULT_CONFIG);
    expect(store.state('A')).toMatchObject({ clock: T0, placedAhead: [[T0 + 3 * 60_000, T0]] });
    store = new MemoryStateStore();
    await handle(shipped);
    expect(store.state('A')).toMatchObject({ clock: T0 + 3 * 60_000, placedAhead: [] });
  });

  it("keys a dead letter by the queued message's digest, and a body that no longer validates by ''", () => {
    const m = fever('A', 0);
    expect(queuedDigest(JSON.stringify({ message: m }))).toBe(messageDigest(m));
    expect(queuedDigest('{not json')).toBe('');
    expect(queuedDigest(JSON.stringify({ message: { ...m, patientId: '' } }))).toBe('');
  });
});

describe('grade handler: pinned by a mutation run', () => {
  const at = Date.parse('2026-01-10T08:00:00Z');
  const gradeAt = () => quiet(mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: () => at, ...live }));

  it('counts only the redelivered messages of a mixed batch as DuplicatesIgnored', async () => {
    const e = sqsRecord(enrol('A'));
    await gradeAt()(sqsEvent([e]));
    const { out } = await captureOutput(() => gradeAt()(sqsEvent([e, sqsRecord(fever('A', 0))])));
    expect(metricSum(out, 'DuplicatesIgnored')).toBe(1);
    expect(metricSum(out, 'GradesComputed')).toBe(1);
  });

  it('measures ProcessingLatency (queue to committed grade) for committed messages only, never below 0', async () => {
    const committed = sqsRecord(enrol('A'), { sentAt: at - 1000 });
    const poison = sqsRecord('{"message": {"messageId": "x"}', { groupId: 'A', sentAt: at - 600_000 });
    const behind = sqsRecord(fever('A', 0), { sentAt: at - 600_000 });
    const { out } = await captureOutput(() => gradeAt()(sqsEvent([committed, poison, behind])));
    expect(metricSum(out, 'ProcessingLatency')).toBe(1000);
    // A sender's clock ahead of this one: 0, not a negative latency that would pull the average down.
    const ahead = await captureOutput(() => gradeAt()(sqsEvent([sqsRecord(enrol('B'), { sentAt: at + 60_000 })])));
    expect(ahead.out).toMatch(/"ProcessingLatency":0\b/);
  });

  it('names the poison message by its own SQS id in the error log', async () => {
    const a1 = sqsRecord(enrol('A'));
    const poison = sqsRecord('{"message": {"messageId": "x"}', { groupId: 'A' });
    const { out } = await captureOutput(() => gradeAt()(sqsEvent([a1, poison])));
    const line = out.split('\n').find((l) => l.includes('message cannot be applied'))!;
    expect(line).toContain(`"sqsMessageId":"${poison.messageId}"`);
  });

  it('counts StateWriteFailures when a patient state cannot be written', async () => {
    store.failNextSave.set('A', throttled());
    const { out } = await captureOutput(() => gradeAt()(sqsEvent([sqsRecord(enrol('A')), sqsRecord(enrol('B'))])));
    expect(metricSum(out, 'StateWriteFailures')).toBe(1);
  });
});

describe('grade handler logs: pinned by a mutation run', () => {
  it("carries the invocation's request id on its log lines, to find a batch's lines", async () => {
    const context = {
      awsRequestId: 'req-7f3a',
      functionName: 'grade',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:grade',
      memoryLimitInMB: '256',
      logGroupName: '/aws/lambda/grade',
      logStreamName: 's',
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => 30_000,
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
    const handler = mod.createGradeHandler({ store, config: DEFAULT_CONFIG, now: Date.now, ...live });
    const { out } = await captureOutput(() => handler(sqsEvent([sqsRecord(enrol('A'))]), context));
    const line = out.split('\n').find((l) => l.includes('"graded"'))!;
    expect(line).toContain('req-7f3a');
  });
});

describe('grade handler: a patient written one message at a time, pinned by a mutation run', () => {
  // A store that refuses a write of more than one new message for a reason of its own (no outage: as DynamoDB
  // refuses a transaction too large), then, when `outageAt` says, throttles the nth single write.
  const tooLarge = () => Object.assign(new Error('Transaction too large'), { name: 'ValidationException' });
  function oneAtATime(o: { outageAt?: number } = {}) {
    const audit: { messageId: unknown; sender: unknown }[] = [];
    let singles = 0;
    const s: StateStore = {
      load: (patientId) => store.load(patientId),
      save: async (patientId, state, version, outbox, extras) => {
        if ((extras?.seen ?? []).length > 1) throw tooLarge();
        if (++singles === o.outageAt) throw throttled();
        await store.save(patientId, state, version, outbox);
        for (const e of extras?.audit ?? [])
          if (e.type === 'assessment') audit.push({ messageId: e.details?.messageId, sender: e.details?.sender });
      },
    };
    return { s, audit };
  }
  const from = (m: DeviceMessage, sender: string) => {
    const r = sqsRecord(m);
    return { ...r, body: JSON.stringify({ ...JSON.parse(r.body), sender }) };
  };

  it('grades every message alone, the last too: counted, logged with its grade changes, each audited with its own sender', async () => {
    const a = [enrol('A'), fever('A', 0), msg('A', 10, { vitals: { heartRate: 110 } })];
    const records = a.map((m, i) => from(m, `gw-${i + 1}`));
    const { s, audit } = oneAtATime();
    const { result, out } = await captureOutput(() =>
      mod.createGradeHandler({ store: s, config: DEFAULT_CONFIG, now: Date.now, ...live })(sqsEvent(records)),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(applied('A')).toBe(3);
    expect(metricSum(out, 'GradesComputed')).toBe(3);
    const graded = JSON.parse(out.split('\n').find((l) => l.includes('"graded"'))!) as { notificationIds: string[] };
    expect(graded.notificationIds).toEqual(store.outbox.map((n) => n.notificationId));
    expect(graded.notificationIds).toHaveLength(1); // the fever's grade change
    expect(audit).toEqual(a.map((m, i) => ({ messageId: m.messageId, sender: `gw-${i + 1}` })));
  });

  it('stops at a message the reducer cannot apply: the ones after it wait behind it, it is the poison', async () => {
    const poison = sqsRecord('{"message": {"messageId": "x"}', { groupId: 'A' });
    const records = [sqsRecord(enrol('A')), sqsRecord(fever('A', 0)), poison, sqsRecord(fever('A', 20, 39.4))];
    const { s } = oneAtATime();
    const { result, out } = await captureOutput(() =>
      mod.createGradeHandler({ store: s, config: DEFAULT_CONFIG, now: Date.now, ...live })(sqsEvent(records)),
    );
    expect(failedIds(result)).toEqual([poison.messageId, records[3]!.messageId]);
    expect(applied('A')).toBe(2);
    expect(metricSum(out, 'PoisonMessages')).toBe(1);
  });

  it('a lone message the store refuses for a reason of its own is the poison message, as it is beside others', async () => {
    // Until 2026-12-05 it was counted a state write failure ("patient state not saved") when alone in its batch, a
    // poison message beside another: the same message, two alarms, by the batch it came in.
    const refusing: StateStore = {
      load: (patientId) => store.load(patientId),
      save: async (patientId, state, version, outbox) => {
        if (patientId === 'A') throw tooLarge();
        await store.save(patientId, state, version, outbox);
      },
    };
    const lone = sqsRecord(enrol('A'));
    const { result, out } = await captureOutput(() =>
      mod.createGradeHandler({ store: refusing, config: DEFAULT_CONFIG, now: Date.now, ...live })(
        sqsEvent([lone, sqsRecord(enrol('B'))]),
      ),
    );
    expect(failedIds(result)).toEqual([lone.messageId]);
    expect(metricSum(out, 'PoisonMessages')).toBe(1);
    expect(metricSum(out, 'StateWriteFailures')).toBe(0);
    const line = out.split('\n').find((l) => l.includes('message cannot be applied'))!;
    expect(line).toContain(`"sqsMessageId":"${lone.messageId}"`);
  });

  it('an outage while writing one at a time is a state write failure, not a poison message', async () => {
    const records = [sqsRecord(enrol('A')), sqsRecord(fever('A', 0))];
    const { s } = oneAtATime({ outageAt: 2 });
    const { result, out } = await captureOutput(() =>
      mod.createGradeHandler({ store: s, config: DEFAULT_CONFIG, now: Date.now, ...live })(sqsEvent(records)),
    );
    expect(failedIds(result)).toEqual([records[1]!.messageId]);
    expect(metricSum(out, 'StateWriteFailures')).toBe(1);
    expect(metricSum(out, 'PoisonMessages')).toBe(0);
    expect(out).toContain("patient state not saved; the patient's messages are retried");
  });
});
