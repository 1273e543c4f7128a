// Runs the real `crs serve --backend aws` as a child process against an emulator, as an operator would, and talks
// to it over HTTP: the AWS integration tests and the end-to-end bench use it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { AwsHostHealth } from '#hosts/aws-emulator/host.ts';
import { stackOfServeArgs } from '#cli/serve-aws.ts';
import { cachedSynthesis } from '#hosts/aws-emulator/synthesis-cache.ts';
import { synthesizeStack } from '#infra/synthesize.ts';
import { CLI, REPO, crsAsync, spawnCrs, type CrsProcess } from './cli.ts';
import { isOwnEmulator } from './moto.ts';

export { REPO, CLI as CRS_BIN };
export const INGEST_TOKEN = 'aws-integration-token-of-32-characters';

/** The stack as `crs serve --backend aws` synthesizes it (bin/crs.js: from the cache while the sources are unchanged). */
export const synthesizedStack = cachedSynthesis(synthesizeStack);

interface Resources {
  prefix: string;
  queue: string;
  queues: Record<string, string>;
  tables: Record<string, string>;
  topic: string;
  /** The acknowledge-link secret's ARN. */
  secret: string;
  ackBaseUrl: string;
  teamQueues: Record<string, string>;
}

export interface AwsServe extends CrsProcess {
  url: string;
  resources: Resources;
}

/**
 * A `--config` file for a run whose feed ended hours ago (recentFeed, the vignettes) and that is not about the
 * stale-feed alert (aws-paging.test.ts is): the alert after a day instead of 15 minutes. With the default, the
 * schedule's first tick after a minute finds every monitor quiet and pages an alert per patient: work beside what
 * the test checks, which on a loaded machine feeds on itself (a slower run meets more ticks).
 */
export function freshFeedConfig(): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'crs-fresh-feed-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ paging: { staleFeedMinutes: 24 * 60 } }));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A prefix of its own for each run, so that runs share an emulator without meeting. */
export const runPrefix = (tag: string) => `t${tag}-${randomBytes(4).toString('hex')}`;

export async function spawnAwsServe(
  endpoint: string,
  prefix: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<AwsServe> {
  const started = (err: string) => {
    const url = err.match(/listening on (http:\/\/\S+)/);
    const resources = err.match(/crs serve: resources (\{.*\})\n/);
    return url && resources ? { url: url[1]!, resources: JSON.parse(resources[1]!) as Resources } : undefined;
  };
  // The stack synthesized here, into the cache the host reads: this process loads the CDK once for all its files
  // (a synthesis then about 0.25 s of CPU), where a host that synthesizes loads it anew (about 2 s). Arguments the
  // host refuses are left for it to refuse.
  const stack = (() => {
    try {
      return stackOfServeArgs(args);
    } catch {
      return undefined;
    }
  })();
  if (stack) await synthesizedStack(stack);
  return spawnCrs(
    ['serve', '--backend', 'aws', '--endpoint', endpoint, '--prefix', prefix, '--port', '0', ...args],
    { CRS_INGEST_TOKEN: INGEST_TOKEN, POWERTOOLS_LOG_LEVEL: 'WARN', ...env },
    started,
    90_000,
  );
}

export async function health(s: { url: string }): Promise<AwsHostHealth> {
  const res = await fetch(`${s.url}/local/health`);
  if (res.status !== 200) throw new Error(`health answered ${res.status}`);
  return (await res.json()) as AwsHostHealth;
}

/** What moves while the host works: equal in two snapshots, nothing was done between them (a tick that finds nothing to do moves nothing). */
const progress = (h: AwsHostHealth) =>
  JSON.stringify([h.grade.invocations, h.notify.delivered, h.notify.retries, h.escalate.invocations, h.pages]);

/**
 * Waits until at least `pages` notifications have been printed and the host is idle (its `idle` signal: no
 * message waiting or in hand in any queue, no stream record pending, no scheduled run going) and stays so, with
 * nothing done meanwhile, across two more reads of the stream's end (a record written just before the grade queue
 * drained is seen by then); with `afterTick`, also across one more scheduled tick (pages stored while SNS refused
 * them wait for it). Then waits until this process has received every line the host printed. Nothing is printed
 * after that unless something new happens (a delayed timer falls due, the schedule fires, a test posts).
 */
export async function settle(
  s: AwsServe,
  /** How many notifications, or the ones expected (`replayPages`): a timeout then names those missing by id. */
  want: number | PageLine[],
  timeoutMs = 120_000,
  o: { afterTick?: boolean } = {},
): Promise<AwsHostHealth> {
  const pages = typeof want === 'number' ? want : want.length;
  const end = Date.now() + timeoutMs;
  // Each health read is about ten queue reads on the emulator (3 ms of its CPU each, its most frequent request): 100 ms
  // apart, not 50, halves them for at most 50 ms more a settle.
  const pause = () => new Promise((r) => setTimeout(r, 100));
  const late = (h: AwsHostHealth) => {
    if (Date.now() > end)
      throw new Error(
        `not settled after ${timeoutMs} ms (want ${pages} pages): ${JSON.stringify(h)}${missing(s, want)}\nstderr:\n${s.stderr().slice(-3000)}`,
      );
  };
  let h = await health(s);
  for (;;) {
    late(h);
    if (!h.idle || h.pages.printed < pages) {
      await pause();
      h = await health(s);
      continue;
    }
    const done = (x: AwsHostHealth) =>
      x.notify.emptyReads >= h.notify.emptyReads + 2 &&
      (!o.afterTick || (x.escalate.scheduled > h.escalate.scheduled && x.escalate.scheduleRunning === 0));
    let again = h;
    for (;;) {
      await pause();
      again = await health(s);
      late(again);
      if (progress(again) !== progress(h)) break; // work was done: watch again from here
      if (again.idle && done(again)) {
        await receivedAll(s, again, end);
        return again;
      }
    }
    h = again;
  }
}

/**
 * The expected notifications not printed, and those printed that were not expected, by id, with each patient concerned
 * as expected and as printed (in the order the host printed them, which is the order it graded them in): a loss (an
 * id missing, nothing in its place) tells from a patient's messages applied in another order (its grade changes
 * merged or moved: other ids, other grades).
 */
function missing(s: AwsServe, want: number | PageLine[]): string {
  if (typeof want === 'number') return '';
  const printed = pageLines(s.lines);
  const ids = (l: PageLine[]) => new Set(l.map((p) => p.notificationId));
  const [expectedIds, printedIds] = [ids(want), ids(printed)];
  const notPrinted = want.filter((p) => !printedIds.has(p.notificationId));
  const unexpected = printed.filter((p) => !expectedIds.has(p.notificationId));
  const patients = new Set([...notPrinted, ...unexpected].map((p) => p.patientId));
  const course = (l: PageLine[], patientId: string) =>
    l
      .filter((p) => p.patientId === patientId)
      .map((p) => `${p.notificationId}:${p.toGrade}`)
      .join(' ');
  return [
    `\nnot printed: ${notPrinted.map((p) => `${p.notificationId} (${p.condition} ${p.toGrade} to ${p.teams.join('+')})`).join(', ') || 'none'}`,
    `printed, not expected: ${unexpected.map((p) => p.notificationId).join(', ') || 'none'}`,
    ...[...patients].map((id) => `${id} expected ${course(want, id)}; printed ${course(printed, id)}`),
  ].join('\n');
}

/** Waits until the lines the host printed (as its counts say) have all reached this process. */
async function receivedAll(s: AwsServe, h: AwsHostHealth, end: number): Promise<void> {
  const count = (type: string) =>
    s.lines.filter((l) => l.trim() !== '' && (JSON.parse(l) as { type: string }).type === type).length;
  const pageLines = s.child.spawnargs.includes('--page-lines');
  while (
    count('notification') < h.pages.printed ||
    (pageLines && count('page') < h.pages.pages) ||
    count('test-page') < h.pages.testPages
  ) {
    if (Date.now() > end)
      throw new Error(`the host printed ${JSON.stringify(h.pages)}, this process has ${s.lines.length} lines`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `probe` until it gives a value (a page printed, say); on timeout the host's last log lines say why. */
export async function until<T>(
  s: { stderr: () => string },
  what: string,
  probe: () => T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; stderr:\n${s.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** With CRS_TEST_CLOCK=1: moves the functions' clock forward. */
export async function advanceClock(s: { url: string }, ms: number): Promise<void> {
  const res = await fetch(`${s.url}/local/clock?advanceMs=${ms}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`advancing the clock answered ${res.status}: ${await res.text()}`);
}

/** With CRS_TEST_CLOCK=1: fires the schedule (the escalate tick and the stale-feed sweep); resolves when it ended. */
async function fireSchedule(s: { url: string }): Promise<void> {
  const res = await fetch(`${s.url}/local/schedule`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`the scheduled escalate run answered ${res.status}: ${await res.text()}`);
}

/**
 * The functions' clock (CRS_TEST_CLOCK=1) as a test moves it, and device messages timed against it: `ago(s)` is s
 * seconds before the host's now, `message` numbers its ids with `idPrefix`. Arrow properties, to be destructured.
 */
export class HostClock {
  private movedMs = 0;
  private n = 0;

  constructor(
    private readonly server: () => AwsServe,
    private readonly idPrefix: string,
  ) {}

  now = (): number => Date.now() + this.movedMs;
  ago = (s: number): string => new Date(this.now() - s * 1000).toISOString();

  /** Moves the host's clock forward, nothing fired. */
  advance = async (ms: number): Promise<void> => {
    await advanceClock(this.server(), ms);
    this.movedMs += ms;
  };

  /** Time passes for the functions: `seconds` later, the schedule fires; then the host is idle again. */
  later = async (seconds: number): Promise<void> => {
    await settle(this.server(), 0);
    await this.advance(seconds * 1000);
    await fireSchedule(this.server());
    await settle(this.server(), 0);
  };

  /** The schedule fires at `ms` on the host's clock (at once if that time has passed); then the host is idle again. */
  at = async (ms: number): Promise<void> => {
    await settle(this.server(), 0);
    const ahead = ms - (await health(this.server())).now;
    if (ahead > 0) await this.advance(ahead);
    await fireSchedule(this.server());
    await settle(this.server(), 0);
  };

  message = (
    patientId: string,
    secondsAgo: number,
    sections: Partial<DeviceMessage>,
    kind: 'monitor' | 'ehr' = 'monitor',
  ): DeviceMessage =>
    ({
      messageId: `${this.idPrefix}-${++this.n}`,
      patientId,
      observedAt: this.ago(secondsAgo),
      source: { deviceId: `dev-${patientId}`, kind },
      ...sections,
    }) as DeviceMessage;
}

export async function stop(s: AwsServe, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal);
  return s.exited;
}

export function post(url: string, m: DeviceMessage | DeviceMessage[], token = INGEST_TOKEN): Promise<Response> {
  return fetch(`${url}${Array.isArray(m) ? '/v1/messages/batch' : '/v1/messages'}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(m),
  });
}

/** Posts messages in batches of 20; each batch must be accepted (202). */
export async function postAll(url: string, messages: DeviceMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 20) {
    const res = await post(url, messages.slice(i, i + 20));
    if (res.status !== 202) throw new Error(`a batch of messages answered ${res.status}: ${await res.text()}`);
  }
}

export type { PageLine as PrintedPage } from '#hosts/aws-emulator/page-printer.ts';
import type { PageLine as PrintedPage } from '#hosts/aws-emulator/page-printer.ts';

export interface PageLine {
  type: string;
  notificationId: string;
  patientId: string;
  condition: string;
  toGrade: number;
  teams: string[];
}

/** The grade changes printed (one `notification` line each, as `crs replay` prints them). */
export const pageLines = (lines: string[]) =>
  lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as PageLine)
    .filter((e) => e.type === 'notification');

/** Every page a team received (one `page` line each: team, role, level, acknowledge link). */
export const teamPages = (lines: string[]) =>
  lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string } & PrintedPage)
    .filter((e) => e.type === 'page');

/** The grade changes `crs replay` computes for these messages with the default configuration. */
export const replayPages = (messages: DeviceMessage[]) => {
  const replay = new Replay(DEFAULT_CONFIG);
  return messages
    .flatMap((m, i) => replay.line(JSON.stringify(m), i + 1))
    .filter((e) => e.type === 'notification') as unknown as PageLine[];
};

/** Each patient's pages in order. */
export function byPatient<T extends { patientId: string }>(events: T[]): Record<string, T[]> {
  const out: Record<string, T[]> = {};
  for (const e of events) (out[e.patientId] ??= []).push(e);
  return out;
}

/**
 * Deletes a run's resources from the emulator (the same command an operator uses); what it says it deleted (its
 * standard error) is returned. Not on a moto of the test file's own, which ends with the file and everything in it:
 * a teardown is a process start, a provisioning pass and the deletes, seconds of CPU that only an emulator shared
 * between runs (AWS_ENDPOINT_URL) needs. `always` runs it anyway (aws-doctor.test.ts checks what it deletes).
 */
export async function teardown(endpoint: string, prefix: string, o: { always?: boolean } = {}): Promise<string> {
  if (isOwnEmulator(endpoint) && !o.always) return '';
  await synthesizedStack(stackOfServeArgs([])); // the stack it provisions again to find the run's resources
  const { status: code, stderr: err } = await crsAsync(
    ['serve', '--backend', 'aws', '--teardown', '--endpoint', endpoint, '--prefix', prefix],
    {},
  );
  // A run that never provisioned (its test failed first) is nothing to delete: said, exit 1, not a failure here.
  if (code !== 0 && !(code === 1 && err.includes(`nothing of run ${prefix} `)))
    throw new Error(`teardown of ${prefix} failed:\n${err.slice(-2000)}`);
  return err;
}

/** The environment of an operator's shell: the emulator at `endpoint`, and no CRS_* variable of the test run. */
export const operatorShell = (endpoint: string) => ({
  ...Object.fromEntries(Object.keys(process.env).flatMap((k) => (k.startsWith('CRS_') ? [[k, undefined]] : []))),
  AWS_ENDPOINT_URL: endpoint,
  AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
});
