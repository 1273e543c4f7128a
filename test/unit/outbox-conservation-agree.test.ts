// Page conservation when receivers refuse or are down, on both backends, against a model written from
// docs/conservation.md (section 3): random scripts of grade changes for three patients, with the receiver (the
// embedded webhook; SNS on AWS, mocked) refusing chosen pages a few times (422 / InvalidParameter) and down for
// stretches (503 / throttling or a 5xx), the operator's `crs outbox list`, `retry --all` and `retry ID` (the real
// command: through the running `crs serve`'s /api/outbox, and with `--backend aws` over the DynamoDB fake), then the
// receiver healthy again, the escalate tick, and `retry --all`.
//
// The model: a page the receiver refuses is tried 3 times, then parked (with its reason) and the pages behind it go
// on; while the receiver is down nothing is parked and the page waits (embedded: the lane keeps its order and backs
// off; AWS: stored unsent, sent by the escalate tick once SNS is back); `list` shows exactly the parked ones;
// `retry ID` puts that one back only, `retry --all` all of them, and a page put back is tried 3 times again.
// In the end every grade change has reached every team of its routing exactly once, by page id (no crash here,
// so no repeat either), each page refused exactly as often as the model says, and a patient's pages that were
// never refused arrived in the order of their grade changes (a grade change's teams by name).
//
// Settling: after each step the embedded server is waited on until its lanes are idle (everything delivered or
// parked, or the receiver down and the lane backing off); on AWS the notify path is synchronous here, and the
// escalate function's tick runs when the receiver comes back (the clock then moves past the 30 s an unsent page is
// left to whoever stored it). OUTBOX_AGREE_RUNS raises the number of cases (default 15).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetRecordsCommand, GetShardIteratorCommand, DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '#adapters/aws/env.ts';
import { DynamoParkedRecords, DynamoParkedSends } from '#adapters/aws/dynamo-page-store.ts';
import { DynamoStateStore, outboxRecord } from '#adapters/aws/dynamo-state-store.ts';
import { OutboxDelivery } from '#adapters/aws/outbox-delivery.ts';
import { awsPaging } from '#adapters/aws/paging.ts';
import { arrivalOf } from '#app/digest.ts';
import { gradePatient } from '#app/grade.ts';
import { SendDeferred } from '#app/pager.ts';
import { OPERATOR_ENV } from '#cli/aws-operator.ts';
import { outboxCommand } from '#cli/outbox.ts';
import { resolveConfig } from '#domain/config.ts';
import { CONSCIOUSNESS, type DeviceMessage } from '#domain/contract.ts';
import { pageId, LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';
import { CRS_MESSAGE, enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const RUNS = Number(process.env.OUTBOX_AGREE_RUNS ?? 15);
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
const TOKEN = 'outbox-agree-token-of-at-least-32-chars';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
const SECRET = 'outbox-agree-ack-secret-of-32-bytes!!';
/** docs/conservation.md section 3: a refused record is tried 3 times in all, then parked. */
const REFUSED_TRIES = 3;
/** shared/adapters/aws/dynamo-page-store.ts UNSENT_GRACE_MS: a tick leaves a page younger than that unsent. */
const PAST_GRACE_MS = 31_000;

// ---------------------------------------------------------------------------------------------------------------
// The script.

type Op =
  | { op: 'grade'; patient: number; condition: 'crs' | 'icans'; grade: number }
  | { op: 'down'; how: 'throttled' | 'unavailable' }
  | { op: 'up' }
  /** The receiver goes down right after the next page it refuses (while its lane waits to try it again). */
  | { op: 'dies-on-refusal' }
  | { op: 'list' }
  | { op: 'retry-all' }
  | { op: 'retry-one'; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('grade' as const),
      patient: fc.integer({ min: 1, max: 3 }),
      condition: fc.constantFrom('crs' as const, 'icans' as const),
      grade: fc.integer({ min: 0, max: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('down' as const),
      how: fc.constantFrom('throttled' as const, 'unavailable' as const),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: 'up' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'dies-on-refusal' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'list' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'retry-all' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('retry-one' as const), which: fc.nat({ max: 100 }) }) },
);
const scriptArb = fc.array(opArb, { minLength: 1, maxLength: 10 });
/** How many times the receiver refuses a page before it takes it (by page id: the same on both backends). */
const budgetArb = fc.func(fc.constantFrom(0, 0, 0, 0, 0, 1, 2, 3, 3, 4));

const PATIENTS = ['P-1', 'P-2', 'P-3'];

/** The messages of a script, built once so that both backends get the same ids. */
function messagesOf(script: Op[]): Map<number, DeviceMessage> {
  const out = new Map<number, DeviceMessage>();
  script.forEach((s, i) => {
    if (s.op !== 'grade') return;
    const sections =
      s.condition === 'crs' ? CRS_MESSAGE[s.grade]! : { neuro: { consciousness: CONSCIOUSNESS[s.grade]! } };
    out.set(i, msg(`P-${s.patient}`, i + 1, sections, `P-${s.patient}-s${i}`));
  });
  return out;
}
const enrolments = () => PATIENTS.map((p) => enrol(p, 0, {}));

// ---------------------------------------------------------------------------------------------------------------
// The receiver, the same on both backends: refuses a page `budget(pageId)` times while up, answers nothing while down.

interface Accepted {
  pageId: string;
  patientId: string;
  sendId: string;
}

class Receiver {
  down = false;
  healthy = false;
  diesOnRefusal = false;
  readonly used = new Map<string, number>();
  readonly accepted: Accepted[] = [];
  /** Page ids of every attempt made while up (refused or taken). */
  readonly attempts: string[] = [];
  /** Grade changes taken (the embedded webhook gets them as records of their own; SNS only within pages). */
  readonly notifications: string[] = [];

  constructor(private readonly budget: (pageId: string) => number) {}

  page(a: Accepted): 'ok' | 'refused' | 'down' {
    if (this.down) return 'down';
    this.attempts.push(a.pageId);
    const used = this.used.get(a.pageId) ?? 0;
    if (!this.healthy && used < this.budget(a.pageId)) {
      this.used.set(a.pageId, used + 1);
      if (this.diesOnRefusal) {
        this.diesOnRefusal = false;
        this.down = true;
      }
      return 'refused';
    }
    this.accepted.push(a);
    return 'ok';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The model (docs/conservation.md section 3).

interface MPage {
  pageId: string;
  patientId: string;
  status: 'pending' | 'parked' | 'delivered';
  /** Tries since it was last put in its lane (parked at REFUSED_TRIES). */
  tries: number;
  refused: number;
}

class Model {
  readonly pages: MPage[] = [];
  down = false;
  healthy = false;
  diesOnRefusal = false;
  /** An outage broke off the tries of a refused page (where the backends differ: docs/conservation.md). */
  brokeOff = false;
  readonly notifications: string[] = [];
  private readonly states = new Map<string, PatientState | undefined>();

  constructor(
    private readonly budget: (pageId: string) => number,
    /** AWS: a send's tries start again after an outage broke them off (docs/conservation.md). */
    private readonly outageRestartsTries: boolean,
  ) {
    for (const m of enrolments()) this.apply(m);
  }

  /** The grade changes a message makes (the reducer is tested elsewhere: here it only says which pages exist). */
  apply(m: DeviceMessage): void {
    const step = reduce(this.states.get(m.patientId), m, CONFIG, arrivalOf(m));
    this.states.set(m.patientId, step.state);
    if (step.kind !== 'applied') return;
    for (const n of step.notifications) this.notifications.push(n.notificationId);
    for (const n of step.notifications)
      for (const team of [...n.teams].sort())
        this.pages.push({
          pageId: pageId(n.notificationId, team),
          patientId: n.patientId,
          status: 'pending',
          tries: 0,
          refused: 0,
        });
  }

  /** While the receiver is up, every page waiting is tried: refused up to 3 times in a row, then parked. */
  deliver(): void {
    for (const p of this.pages) {
      while (p.status === 'pending' && !this.down) {
        p.tries++;
        if (!this.healthy && p.refused < this.budget(p.pageId)) {
          p.refused++;
          if (p.tries >= REFUSED_TRIES) p.status = 'parked';
          if (this.diesOnRefusal) {
            this.diesOnRefusal = false;
            this.down = true;
            if (p.status === 'pending') this.brokeOff = true;
            if (p.status === 'pending' && this.outageRestartsTries) p.tries = 0;
          }
        } else p.status = 'delivered';
      }
    }
  }

  parked(): string[] {
    return this.pages.filter((p) => p.status === 'parked').map((p) => p.pageId);
  }

  putBack(ids: string[]): void {
    for (const p of this.pages)
      if (p.status === 'parked' && ids.includes(p.pageId)) {
        p.status = 'pending';
        p.tries = 0;
      }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The two backends behind one face.

interface Backend {
  receiver: Receiver;
  grade(m: DeviceMessage): Promise<void>;
  down(how: 'throttled' | 'unavailable'): Promise<void>;
  up(): Promise<void>;
  /** `crs outbox list --json`: the parked pages' ids, with their attempts and reasons. */
  list(): Promise<{ pageId: string; attempts: number; reason: string }[]>;
  /**
   * `crs outbox retry`: --all, or the page's id as each backend names it. `stayed`: the pages it says stay parked
   * because the receiver is down (AWS: a send whose page has moved on has no lane to wait in; docs/conservation.md).
   */
  retry(pageIds: string[] | 'all'): Promise<{ code: number; stayed: string[] }>;
  settle(): Promise<void>;
  close(): Promise<void>;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const into = (lines: string[]) => (c: string | Uint8Array) => {
    lines.push(String(c));
    return true;
  };
  const o = vi.spyOn(process.stdout, 'write').mockImplementation(into(out));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation(into(err));
  try {
    const code = await outboxCommand(args, () => CONFIG);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const listed = (out: string) =>
  (JSON.parse(out) as { parked: { id: string; lane: string; attempts: number; reason: string }[] }).parked;

async function embeddedBackend(receiver: Receiver, clock: { now: number }): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'crs-outbox-agree-'));
  const hook: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const b = JSON.parse(body) as { pageId?: string; patientId: string; sendId?: string; notificationId: string };
      let status = 204;
      if (req.headers['x-crs-event'] === 'page') {
        const r = receiver.page({ pageId: b.pageId!, patientId: b.patientId, sendId: b.sendId! });
        status = r === 'down' ? 503 : r === 'refused' ? 422 : 204;
      } else if (receiver.down) status = 503;
      else receiver.notifications.push(b.notificationId);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const stream = new PassThrough();
  stream.resume();
  const server: EmbeddedServer = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: stream,
    log: () => undefined,
    now: () => clock.now,
    webhook: {
      url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
      // Short pauses: what is checked is the tries and their order, not how long the lane waits between them.
      retry: { initialMs: 10, maxMs: 50, refusedMs: 0 },
    },
  });
  const post = async (m: DeviceMessage) => {
    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    await res.arrayBuffer();
    if (res.status !== 202 && res.status !== 200) throw new Error(`ingest answered ${res.status}`);
  };
  const b: Backend = {
    receiver,
    grade: post,
    down: async () => {
      receiver.down = true;
    },
    up: async () => {
      receiver.down = false;
    },
    list: async () => {
      const r = await cli(['list', '--json', '--data', dir]);
      expect(r.code, r.err).toBe(0);
      return listed(r.out).map((p) => {
        expect(p.lane).toBe('webhook');
        return { pageId: p.id.slice(0, p.id.lastIndexOf('#')), attempts: p.attempts, reason: p.reason };
      });
    },
    retry: async (pageIds) => {
      const ids = pageIds === 'all' ? ['--all'] : await sendIds(pageIds);
      return { code: (await cli(['retry', ...ids, '--data', dir])).code, stayed: [] };
    },
    settle: async () => {
      const state = () => {
        const lanes = server.dispatcher.health();
        const lane = (name: string) => lanes.find((l) => l.sink === name)!;
        return { pending: server.queue.pending(), pager: lane('pager'), webhook: lane('webhook') };
      };
      await until(
        () => {
          const s = state();
          if (s.pending > 0 || s.pager.backlog > 0) return false;
          return s.webhook.backlog === 0 || (receiver.down && s.webhook.retrying);
        },
        () => `the embedded lanes to settle: ${JSON.stringify(state())}`,
      );
    },
    close: async () => {
      await server.close();
      await new Promise((r) => hook.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  /** The outbox item ids (page sends) of parked pages. */
  const sendIds = async (pageIds: string[]) => {
    const r = await cli(['list', '--json', '--data', dir]);
    return listed(r.out)
      .map((p) => p.id)
      .filter((id) => pageIds.includes(id.slice(0, id.lastIndexOf('#'))));
  };
  for (const m of enrolments()) await post(m);
  await b.settle();
  return b;
}

const ddb = new FakeDynamo(PAGING_TABLES);
const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
const secrets = mockClient(SecretsManagerClient);

async function awsBackend(receiver: Receiver, clock: { now: number }): Promise<Backend> {
  ddb.reset();
  let outage: 'throttled' | 'unavailable' = 'throttled';
  sns.reset();
  sns.on(PublishCommand).callsFake(async (input: { Message?: string }) => {
    const page = (JSON.parse((JSON.parse(input.Message!) as { default: string }).default) as { page: Accepted }).page;
    const r = receiver.page({ pageId: page.pageId, patientId: page.patientId, sendId: page.sendId });
    if (r === 'down')
      throw outage === 'throttled'
        ? Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client' })
        : Object.assign(new Error('Service Unavailable'), { name: 'InternalErrorException', $fault: 'server' });
    if (r === 'refused')
      throw Object.assign(new Error('Invalid parameter: Message'), { name: 'InvalidParameterException' });
    return { MessageId: `m-${receiver.accepted.length}` };
  });
  const client = ddb.client();
  const paging = awsPaging(
    {
      config: CONFIG,
      ackSecret: Buffer.from(SECRET),
      ackBaseUrl: 'https://api.example/ack/',
      pagesTable: 'pages',
      auditTable: 'audit',
      stateTable: 'state',
      topicArn: TOPIC,
      refusedDelayMs: 0,
    },
    { dynamodb: client, sns: new SNSClient({ region: 'eu-west-1' }) },
    {},
    () => clock.now,
  );
  const store = new DynamoStateStore(client, 'state', () => clock.now, 'audit', 'seen');
  const done = new Set<string>();
  /** The notify function: each new outbox record of the state table's stream, in order. */
  const notify = async () => {
    const records = ddb
      .items('state')
      .filter((i) => outboxRecord(i as never) !== undefined && !done.has(`${i.pk!.S}#${i.sk!.S}`));
    const delivery = new OutboxDelivery({
      paging: async () => ({
        pager: paging.pager,
        parkedRecords: paging.parkedRecords,
        remember: (n) => paging.sender!.remember(n),
      }),
      now: () => clock.now,
      log: () => undefined,
    });
    for (const r of records) {
      done.add(`${r.pk!.S}#${r.sk!.S}`);
      await delivery.deliver(r as never);
    }
  };
  const grade = async (m: DeviceMessage) => {
    // Each grade change at a time of its own, as in life: pages of one millisecond go out by patient id
    // (byTrigger), where the model (and the embedded lane) keep the order the changes were made in.
    clock.now += 1;
    await gradePatient(store, CONFIG, m.patientId, [m]);
    await notify();
  };
  for (const m of enrolments()) await grade(m);
  const b: Backend = {
    receiver,
    grade,
    down: async (how) => {
      outage = how;
      receiver.down = true;
    },
    up: async () => {
      receiver.down = false;
      // The escalate function runs every minute: by then an unsent page is no longer left to whoever stored it
      // (`crs outbox retry` stores with the operator's own clock, the real one).
      clock.now = Math.max(clock.now, Date.now()) + PAST_GRACE_MS;
      // As the escalate function: SNS down again within the tick leaves the pages stored for a later tick.
      await paging.pager.onTick(clock.now).catch((err: unknown) => {
        if (!(err instanceof SendDeferred)) throw err;
      });
    },
    list: async () => {
      const r = await cli(['list', '--json', '--backend', 'aws']);
      expect(r.code, r.err).toBe(0);
      return listed(r.out).map((p) => {
        expect(p.lane).toBe('sns');
        return { pageId: p.id.split('#').slice(0, -2).join('#'), attempts: p.attempts, reason: p.reason };
      });
    },
    retry: async (pageIds) => {
      const r = await cli(['retry', ...(pageIds === 'all' ? ['--all'] : pageIds), '--backend', 'aws']);
      const stayed = [...r.out.matchAll(/^(\S+): not sent \(SNS is down\); it stays parked/gm)].map((m) =>
        m[1]!.split('#').slice(0, -2).join('#'),
      );
      return { code: r.code, stayed };
    },
    settle: async () => undefined,
    close: async () => undefined,
  };
  return b;
}

// ---------------------------------------------------------------------------------------------------------------
// The run.

interface Observed {
  /** Per step: the parked page ids `list` showed (sorted). */
  lists: string[][];
  accepted: Accepted[];
  refused: [string, number][];
  codes: number[];
  /**
   * Whether the script met a documented difference (then the parked lists and refusals may differ): a retry left a
   * send parked because the receiver was down (AWS), or an outage broke off a refused page's tries.
   */
  differs: boolean;
}

async function run(
  make: (r: Receiver, clock: { now: number }) => Promise<Backend>,
  script: Op[],
  budget: (pageId: string) => number,
  messages: Map<number, DeviceMessage>,
  start: number,
  outageRestartsTries: boolean,
): Promise<Observed> {
  const receiver = new Receiver(budget);
  const clock = { now: start };
  const model = new Model(budget, outageRestartsTries);
  const b = await make(receiver, clock);
  const observed: Observed = { lists: [], accepted: [], refused: [], codes: [], differs: false };
  const retry = async (what: string, ids: string[] | 'all') => {
    const chosen = ids === 'all' ? model.parked() : ids;
    const r = await b.retry(ids);
    if (r.stayed.length > 0) {
      expect(receiver.down, `${what}: a send stays parked only while the receiver is down`).toBe(true);
      observed.differs = true;
    }
    model.putBack(chosen.filter((id) => !r.stayed.includes(id)));
    observed.codes.push(r.code);
  };
  const check = async (what: string) => {
    await b.settle();
    model.deliver();
    const parked = await b.list();
    for (const p of parked) {
      expect(p.attempts, `${what}: ${p.pageId} parked after ${REFUSED_TRIES} tries`).toBe(REFUSED_TRIES);
      expect(p.reason, `${what}: ${p.pageId} parked with its reason`).toMatch(/422|InvalidParameter/);
    }
    const ids = parked.map((p) => p.pageId).sort();
    expect(ids, `${what}: crs outbox list shows exactly what is parked`).toEqual(model.parked().sort());
    observed.lists.push(ids);
  };
  try {
    for (const [i, s] of script.entries()) {
      const what = `${make.name}: step ${i} ${JSON.stringify(s)}`;
      const before = receiver.attempts.length;
      switch (s.op) {
        case 'grade':
          model.apply(messages.get(i)!);
          await b.grade(messages.get(i)!);
          break;
        case 'down':
          model.down = true;
          await b.down(s.how);
          break;
        case 'dies-on-refusal':
          model.diesOnRefusal = true;
          receiver.diesOnRefusal = true;
          break;
        case 'up':
          model.down = false;
          await b.up();
          break;
        case 'list':
          break;
        case 'retry-all':
          await retry(what, 'all');
          break;
        case 'retry-one': {
          const parked = model.parked().sort();
          if (parked.length === 0) break;
          const one = parked[s.which % parked.length]!;
          await retry(what, [one]);
          await b.settle();
          if (!receiver.down)
            expect(
              [...new Set(receiver.attempts.slice(before))],
              `${what}: retry of ${one} sends that one only`,
            ).toEqual([one]);
          break;
        }
      }
      await check(what);
    }
    // The receiver healthy again, the escalate tick, and the operator's retry of everything parked.
    receiver.healthy = true;
    model.healthy = true;
    model.down = false;
    await b.up();
    await check(`${make.name}: healthy again`);
    await retry('the final retry --all', 'all');
    await check(`${make.name}: after retry --all`);

    const expected = model.pages.map((p) => p.pageId).sort();
    const got = receiver.accepted.map((a) => a.pageId).sort();
    expect(got, 'every grade change reached every team of its routing exactly once, by page id').toEqual(expected);
    if (make === embeddedBackend)
      expect(receiver.notifications.sort(), 'the webhook got every grade change once').toEqual(
        [...model.notifications].sort(),
      );
    for (const p of model.pages)
      expect(receiver.used.get(p.pageId) ?? 0, `${make.name}: ${p.pageId} refused as often as the model says`).toBe(
        p.refused,
      );
    // A patient's pages never refused arrive in the order of their grade changes.
    for (const patient of PATIENTS) {
      const clean = new Set(model.pages.filter((p) => p.patientId === patient && p.refused === 0).map((p) => p.pageId));
      const order = model.pages.filter((p) => clean.has(p.pageId)).map((p) => p.pageId);
      const arrived = receiver.accepted.filter((a) => clean.has(a.pageId)).map((a) => a.pageId);
      expect(arrived, `${patient}'s pages arrive in order`).toEqual(order);
    }
    observed.differs ||= model.brokeOff;
    observed.accepted = receiver.accepted;
    observed.refused = [...receiver.used.entries()].sort();
    return observed;
  } finally {
    await b.close();
  }
}

describe('page conservation with refusing and down receivers, embedded and AWS alike (docs/conservation.md)', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    process.env.AWS_REGION = 'eu-west-1';
    process.env[ENV.stateTable] = 'state';
    process.env[ENV.pagesTable] = 'pages';
    process.env[ENV.auditTable] = 'audit';
    process.env[ENV.topicArn] = TOPIC;
    process.env[ENV.escalationQueueUrl] = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Escalations';
    process.env[ENV.ackSecretArn] = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ack';
    process.env[ENV.ackBaseUrl] = 'https://api.example/ack/';
    process.env[OPERATOR_ENV.notifyFailuresQueue] = 'https://sqs.eu-west-1.amazonaws.com/123456789012/NotifyFailures';
    secrets.on(GetSecretValueCommand).resolves({ SecretString: SECRET });
    sqs.on(ReceiveMessageCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: 'timer' });
  });
  afterAll(() => {
    // In place: a plain object put in process.env's stead stays in the worker for the files after this one, apart
    // from the environment vitest's stubEnv changes.
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
    sns.restore();
    sqs.restore();
    secrets.restore();
    ddb.restore();
  });

  const property = async (script: Op[], budget: (pageId: string) => number) => {
    const messages = messagesOf(script);
    const start = Date.now();
    const embedded = await run(embeddedBackend, script, budget, messages, start, false);
    const aws = await run(awsBackend, script, budget, messages, start, true);
    if (!aws.differs && !embedded.differs) {
      expect(aws.lists, 'the same parked pages at each step').toEqual(embedded.lists);
      expect(aws.refused, 'the same refusals').toEqual(embedded.refused);
    }
    expect(aws.accepted.map((a) => a.pageId).sort(), 'the same pages delivered').toEqual(
      embedded.accepted.map((a) => a.pageId).sort(),
    );
  };

  // Found by the property: on AWS, `crs outbox retry --all` while SNS was down removed the first parked send (CRS 1's
  // page, superseded by CRS 2's) and then met the outage: the send was lost, and the command stopped there, leaving
  // CRS 2's page parked where the embedded lane had taken it back.
  it('found: a retry while SNS is down loses no send and goes on with the others', { timeout: 60_000 }, async () => {
    await property(
      [
        { op: 'grade', patient: 1, condition: 'crs', grade: 1 },
        { op: 'grade', patient: 1, condition: 'crs', grade: 2 },
        { op: 'down', how: 'throttled' },
        { op: 'retry-all' },
      ],
      () => 3,
    );
  });

  // Found by the property: while SNS was down, P-2's ICANS change and then its CRS change left their pages unsent;
  // the tick sent them by trigger time and then by page id, so the CRS page ("crs|..." sorts first) overtook the
  // ICANS pages of the earlier grade change whenever both were triggered in the same millisecond.
  it("found: a patient's deferred pages go out in the order of the grade changes, not of their ids", {
    timeout: 60_000,
  }, async () => {
    await property(
      [
        { op: 'down', how: 'throttled' },
        { op: 'grade', patient: 2, condition: 'icans', grade: 1 },
        { op: 'grade', patient: 2, condition: 'crs', grade: 1 },
      ],
      () => 0,
    );
  });

  // A documented difference (docs/conservation.md): SNS down between the tries of a refused send. The embedded lane
  // counts the refusals across the outage (parked after 3); the AWS pager's tries of a send start again at the tick
  // after the outage (the receiver is asked at most 2 more times). Nothing is lost either way.
  it('a receiver that goes down between the tries of a refused page: parked on embedded, tried again on AWS', {
    timeout: 60_000,
  }, async () => {
    await property(
      [{ op: 'dies-on-refusal' }, { op: 'grade', patient: 1, condition: 'icans', grade: 1 }, { op: 'up' }],
      (id) => (id.endsWith('|neurology') ? 3 : 0),
    );
  });

  // Found by the random scripts: the receiver back, the escalate tick's send refused, then the receiver down again
  // within the same tick. The tick fails (as the escalate function's invocation would, to run again a minute later)
  // and the page stays stored unsent: it goes out once the receiver is back.
  it('found: a receiver that refuses and goes down again during the first tick after an outage', {
    timeout: 60_000,
  }, async () => {
    await property(
      [
        { op: 'down', how: 'throttled' },
        { op: 'dies-on-refusal' },
        { op: 'grade', patient: 1, condition: 'crs', grade: 1 },
        { op: 'up' },
        { op: 'down', how: 'throttled' },
      ],
      (id) => (id === 'crs|P-1|#2|hematology' ? 2 : 0),
    );
  });

  it('an outage after a retry: the sends go on in the order of the grade changes (found by the random scripts)', async () => {
    // Two patients' pages refused and parked, retried while SNS was down, then the receiver dies on its next
    // refusal: the test's AWS clock gave both grade changes one millisecond, so the tick sent P-1's first (by
    // patient id) where the model and the embedded lane send P-2's (made first). Not a defect: pages of different
    // patients have no order; the test now gives each grade change a time of its own.

    await property(
      [
        { op: 'grade', patient: 2, condition: 'crs', grade: 1 },
        { op: 'grade', patient: 1, condition: 'crs', grade: 1 },
        { op: 'dies-on-refusal' },
        { op: 'down', how: 'throttled' },
        { op: 'retry-all' },
        { op: 'up' },
        { op: 'down', how: 'throttled' },
      ],
      () => 4,
    );
  });

  it(`holds for random scripts (${RUNS} runs)`, { timeout: 600_000 }, async () => {
    await fc.assert(fc.asyncProperty(scriptArb, budgetArb, property), { numRuns: RUNS });
  });

  describe('crs outbox --backend aws, pinned by a mutation run', () => {
    const streams = mockClient(DynamoDBStreamsClient);
    const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/NotifyFailures';
    const rearm = () => {
      sqs.reset();
      sqs.on(ReceiveMessageCommand).resolves({});
      sqs.on(SendMessageCommand).resolves({ MessageId: 'timer' });
    };
    afterEach(() => {
      streams.reset();
      rearm();
    });
    afterAll(() => streams.restore());
    const parkedOf = async () => listed((await cli(['list', '--json', '--backend', 'aws'])).out).map((p) => p.id);

    it('retries a send named by its page id, leaves it to --sink notify, and exits 1 for an id nothing parked has', async () => {
      const receiver = new Receiver((id) => (id.includes('|P-1|') ? 3 : 0));
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[1]!, 'P-1-pinned'));
        const parked = await b.list();
        expect(parked.length).toBeGreaterThan(0);
        for (const p of parked)
          expect(p).toMatchObject({ attempts: REFUSED_TRIES, reason: expect.stringMatching(/InvalidParameter/) });
        const notify = await cli(['retry', '--all', '--sink', 'notify', '--backend', 'aws']);
        expect(notify.code, notify.err).toBe(0);
        expect(notify.out).not.toMatch(/parked send\(s\)/);
        expect(await b.list(), '--sink notify leaves the parked sends').toEqual(parked);
        const unknown = await cli(['retry', 'crs|P-9|nothing', '--backend', 'aws']);
        expect(unknown.code).toBe(1);
        expect(unknown.err).toContain('crs outbox: nothing parked as crs|P-9|nothing');
        receiver.healthy = true;
        const one = await cli(['retry', parked[0]!.pageId, '--backend', 'aws']);
        expect(one.code, one.err).toBe(0);
        expect(one.out).toMatch(/^1 parked send\(s\) sent again \(or taken back by their page\) at \d{4}-/m);
        expect(receiver.accepted.map((a) => a.pageId)).toEqual([parked[0]!.pageId]);
      } finally {
        await b.close();
      }
    });

    it('exits 1 when a send stays parked because SNS is down, saying so', async () => {
      const receiver = new Receiver(() => 3);
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[1]!, 'P-1-down-1'));
        await b.grade(msg('P-1', 2, CRS_MESSAGE[2]!, 'P-1-down-2'));
        await b.down('throttled');
        const r = await cli(['retry', '--all', '--backend', 'aws']);
        expect(r.out).toMatch(/: not sent \(SNS is down\); it stays parked: retry it once SNS is back$/m);
        expect(r.code).toBe(1);
      } finally {
        await b.close();
      }
    });

    it('leaves parked, naming it and why, a send whose page the pager cannot send (a team without a ladder now, an item that cannot be read), and sends the others; exit 1', async () => {
      const receiver = new Receiver((id) => (id.includes('|P-1|') || id.includes('|P-2|') ? 3 : 0));
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[2]!, 'P-1-rollback'));
        await b.grade(msg('P-2', 1, CRS_MESSAGE[2]!, 'P-2-rollback'));
        const parked = (await b.list()).map((p) => p.pageId);
        const p1 = parked.find((id) => id.includes('|P-1|'))!;
        const p2 = parked.find((id) => id.includes('|P-2|'))!;
        const item = (pageId: string) => ddb.items('pages').find((i) => i.sk?.S === `page#${pageId}`)!;
        // P-1's page as a version that knew a cardiology team stored it (then rolled back); P-2's no longer JSON.
        const page = JSON.parse(item(p1).page!.S!) as Record<string, unknown>;
        item(p1).page = { S: JSON.stringify({ ...page, team: 'cardiology' }) };
        item(p2).page = { S: '{"pageId":' };
        receiver.healthy = true;
        // Until 2026-12-05 P-1's send was reported sent and removed, though nothing was sent (or, once its page had
        // moved on, the command ended with a TypeError's stack trace, the sends after it left).
        const r = await cli(['retry', '--all', '--backend', 'aws']);
        expect(r.code, r.err).toBe(1);
        expect(r.out).toMatch(
          new RegExp(
            `^${p1.replaceAll('|', '\\|')}#0#0: not sent: its page's team has no ladder in the paging config; it stays parked`,
            'm',
          ),
        );
        expect(r.out).toMatch(
          new RegExp(
            `^${p2.replaceAll('|', '\\|')}#0#0: not sent: its page's stored item cannot be read; it stays parked`,
            'm',
          ),
        );
        expect(r.err).toBe('');
        expect((await b.list()).map((p) => p.pageId).sort()).toEqual([p1, p2].sort());
        expect(receiver.accepted.map((a) => a.pageId).sort()).toEqual(
          parked.filter((id) => id !== p1 && id !== p2).sort(),
        );
      } finally {
        await b.close();
      }
    });

    it('exits 1 when the one send it leaves parked is of a team without a ladder now (nothing else failing)', async () => {
      const receiver = new Receiver((id) => (id.includes('|P-1|') ? 3 : 0));
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[2]!, 'P-1-rollback-alone'));
        const parked = (await b.list()).map((p) => p.pageId);
        expect(parked.length).toBeGreaterThan(0);
        const p1 = parked[0]!;
        const item = ddb.items('pages').find((i) => i.sk?.S === `page#${p1}`)!;
        item.page = { S: JSON.stringify({ ...(JSON.parse(item.page!.S!) as object), team: 'cardiology' }) };
        receiver.healthy = true;
        // conservation.md: such a send "is left parked, named with why, the others are retried, and the command
        // exits 1"; the case above held the exit only through its unreadable item (2026-12-08 audit).
        const r = await cli(['retry', `${p1}#0#0`, '--backend', 'aws']);
        expect(r.code, r.err).toBe(1);
        expect((await b.list()).map((p) => p.pageId)).toContain(p1);
      } finally {
        await b.close();
      }
    });

    it('leaves parked a send of a team the stack says has no endpoint now (CRS_TEAMS_WITHOUT_ENDPOINTS, or the output TeamsWithoutEndpoints), saying what to do; exit 1', async () => {
      const receiver = new Receiver((id) => (id.includes('|P-1|') ? 3 : 0));
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[1]!, 'P-1-unreachable'));
        const [send, ...others] = (await b.list()).map((p) => p.pageId);
        expect(others).toEqual([]);
        const team = send!.split('|').at(-1)!;
        receiver.healthy = true;
        process.env[ENV.teamsWithoutEndpoints] = team;
        let r: Awaited<ReturnType<typeof cli>>;
        try {
          r = await cli(['retry', '--all', '--backend', 'aws']);
        } finally {
          delete process.env[ENV.teamsWithoutEndpoints];
        }
        // Until 2026-12-07 the operator's pager did not know the team had no endpoint: it published the page to the
        // topic, which no subscription of that team read, and removed the parked send.
        expect(receiver.accepted).toEqual([]);
        expect(r.code, r.err).toBe(1);
        expect(r.out).toMatch(
          new RegExp(
            `^${send!.replaceAll('|', '\\|')}#0#0: not sent: its page's team has no endpoint in the paging config deployed \\(nobody would receive it\\); it stays parked: page the team by other means, and retry it once the team has an endpoint again$`,
            'm',
          ),
        );
        expect((await b.list()).map((p) => p.pageId)).toEqual([send]);
      } finally {
        await b.close();
      }
    });

    // Until 2026-12-05 the list read every parked item with JSON.parse: one item that could not be read (edited by
    // hand, an older shape) made `crs outbox list` and `retry --backend aws` fail outright, every parked send and
    // record with it.
    it('lists and retries the parked items it can read, names each one it cannot (id, why), and exits 1', async () => {
      const receiver = new Receiver((id) => (id.includes('|P-1|') ? 3 : 0));
      const b = await awsBackend(receiver, { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[1]!, 'P-1-unreadable'));
        const parked = (await b.list()).map((p) => `${p.pageId}#0#0`);
        expect(parked.length).toBeGreaterThan(0);
        await new DynamoParkedSends(ddb.client(), 'pages').park({
          pageId: 'crs|P-7|#1|icu',
          patientId: 'P-7',
          notificationId: 'crs|P-7|#1',
          team: 'icu',
          level: 0,
          round: 0,
          reason: 'r',
          attempts: 3,
          parkedAt: '2026-01-10T08:00:00Z',
        });
        await new DynamoParkedRecords(ddb.client(), 'pages').park({
          key: 'P-8#outbox#x',
          patientId: 'P-8',
          id: '',
          reason: 'r',
          parkedAt: '2026-01-10T08:00:00Z',
          image: '{}',
        });
        const item = (sk: string) => ddb.items('pages').find((i) => i.sk?.S === sk)!;
        item('crs|P-7|#1|icu#0#0').send = { S: '{"pageId":' };
        const { parkedAt: _, ...older } = JSON.parse(item('record#P-8#outbox#x').record!.S!) as Record<string, unknown>;
        item('record#P-8#outbox#x').record = { S: JSON.stringify(older) };
        const list = await cli(['list', '--json', '--backend', 'aws']);
        expect(list.code).toBe(1);
        expect(listed(list.out).map((p) => p.id)).toEqual(parked);
        expect((JSON.parse(list.out) as { unreadable: unknown }).unreadable).toEqual([
          { id: 'crs|P-7|#1|icu#0#0', lane: 'sns', reason: 'not JSON' },
          { id: 'record#P-8#outbox#x', lane: 'notify', reason: 'parkedAt is missing' },
        ]);
        const text = await cli(['list', '--backend', 'aws']);
        expect(text.code).toBe(1);
        expect(text.out).toContain('crs|P-7|#1|icu#0#0: its stored item cannot be read (not JSON)');
        expect(text.err).toContain('crs outbox: 2 parked item(s) cannot be read');
        receiver.healthy = true;
        const r = await cli(['retry', '--all', '--backend', 'aws']);
        expect(r.code).toBe(1);
        expect(r.out).toMatch(new RegExp(`^${parked.length} parked send\\(s\\) sent again`, 'm'));
        expect(r.err).toContain('crs outbox: 2 parked item(s) cannot be read');
        expect(receiver.accepted.map((a) => `${a.pageId}#0#0`).sort()).toEqual([...parked].sort());
        expect((await cli(['list', '--json', '--backend', 'aws'])).out).toContain('record#P-8#outbox#x');
      } finally {
        await b.close();
      }
    });

    it('pages a parked outbox record again and removes it; one parked again stays parked', async () => {
      const b = await awsBackend(new Receiver(() => 0), { now: Date.now() });
      try {
        await b.grade(msg('P-1', 1, CRS_MESSAGE[1]!, 'P-1-record'));
        const item = ddb.items('state').find((i) => outboxRecord(i as never) !== undefined)!;
        const records = new DynamoParkedRecords(ddb.client(), 'pages');
        const good = `${item.pk!.S}#${item.sk!.S}`;
        const bad = 'P-2#outbox#damaged';
        const damaged = {
          pk: { S: 'P-2' },
          sk: { S: 'outbox#damaged' },
          kind: { S: 'outbox' },
          notification: { S: '{"half":' },
        };
        await records.park({
          key: good,
          patientId: 'P-1',
          id: 'n',
          reason: 'r',
          parkedAt: '2026-01-10T08:00:00Z',
          image: JSON.stringify(item),
        });
        await records.park({
          key: bad,
          patientId: 'P-2',
          id: '',
          reason: 'r',
          parkedAt: '2026-01-10T08:00:01Z',
          image: JSON.stringify(damaged),
        });
        expect(await parkedOf()).toEqual([`record#${good}`, `record#${bad}`]);
        const r = await cli(['retry', '--all', '--sink', 'notify', '--backend', 'aws']);
        expect(r.out).toContain(`record#${bad}: parked again`);
        expect(r.out).toMatch(/^1 parked record\(s\) and 0 stream range\(s\) paged again at /m);
        expect(await parkedOf()).toEqual([`record#${bad}`]);
      } finally {
        await b.close();
      }
    });

    it('reads a stream range the notifier gave up on again, deletes it once paged, shows the ones it leaves again, and leaves it to --sink sns', async () => {
      const b = await awsBackend(new Receiver(() => 0), { now: Date.now() });
      const failure = {
        requestContext: { condition: 'RetryAttemptsExhausted' },
        DDBStreamBatchInfo: {
          shardId: 'shard-1',
          startSequenceNumber: '100',
          endSequenceNumber: '100',
          approximateArrivalOfFirstRecord: '2026-01-10T09:00:00Z',
          batchSize: 1,
          streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/state/stream/2026',
        },
      };
      const onQueue = () => {
        rearm();
        sqs
          .on(ReceiveMessageCommand)
          .resolvesOnce({ Messages: [{ Body: JSON.stringify(failure), ReceiptHandle: 'r1' }] })
          .resolves({});
      };
      streams.on(GetShardIteratorCommand).resolves({ ShardIterator: 'it-1' });
      streams.on(GetRecordsCommand).resolves({
        Records: [
          { eventName: 'MODIFY', dynamodb: { SequenceNumber: '100' } },
          { eventName: 'INSERT', dynamodb: { SequenceNumber: '101' } },
        ],
        NextShardIterator: 'it-2',
      });
      try {
        onQueue();
        const list = await cli(['list', '--backend', 'aws']);
        expect(list.out).toContain('stream range stream#100..100');
        expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input)).toEqual([
          { QueueUrl: QUEUE, ReceiptHandle: 'r1', VisibilityTimeout: 0 },
        ]);
        onQueue();
        expect((await cli(['retry', '--all', '--sink', 'sns', '--backend', 'aws'])).code).toBe(0);
        expect(sqs.commandCalls(ReceiveMessageCommand)).toHaveLength(0);
        expect(streams.commandCalls(GetShardIteratorCommand)).toHaveLength(0);
        onQueue();
        const retry = await cli(['retry', 'stream#100..100', '--backend', 'aws']);
        expect(retry.code, retry.err).toBe(0);
        expect(retry.out).toContain('stream#100..100: read from the stream again: 0 paged, 0 parked');
        expect(sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).toEqual([
          { QueueUrl: QUEUE, ReceiptHandle: 'r1' },
        ]);
      } finally {
        await b.close();
      }
    });
  });
});
