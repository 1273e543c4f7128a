// A differential guard for work on the core's speed: runs the vignettes, a few thousand generated timelines (fixed
// seeds), refused and hostile messages, and part of the bench's feed through validate + digest + reduce and `crs
// replay`'s own path, and prints one SHA-256 per corpus of everything they produce: each validation (the message as
// validated, or its errors), each step (assessment with its reasons' parts, pages, alerts, digest), the replay
// NDJSON, and the state after every step in both stored forms (version 2 JSON and the compact form). States are
// carried in memory and, in a second pass, read back from storage after every step (alternating the two forms),
// so that a cache that answers differently from a fresh walk shows.
//
//   tsx test/bench/differential.ts [OUT_DIR]
//
// Run it at the commit a change starts from and after the change: the digests must be equal. With OUT_DIR it also
// writes, for each corpus, one digest per case (a timeline, a vignette, a message), to find the first that differs.
import { createHash, type Hash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { arrivalOf } from '#app/digest.ts';
import { Replay } from '#app/replay.ts';
import { configFor, DEFAULT_CONFIG, type GradingConfig } from '#domain/config.ts';
import { type DeviceMessage, validateMessage } from '#domain/contract.ts';
import { stepEvents } from '#domain/events.ts';
import { reduce, type Step } from '#domain/reducer.ts';
import { deserializeState, type PatientState, serializeState } from '#domain/state.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { clinicalCourse, course, nearlyOrdered, timeline } from '#test/support/arbitraries.ts';
import { week } from '#test/support/week.ts';
import { syntheticFeed } from './generate.ts';

const CONFIGS: GradingConfig[] = [
  DEFAULT_CONFIG,
  configFor('lee2014'),
  configFor('astct2019', {
    episodeEndsAfterHoursAtGrade0: 6,
    feverWindowEdge: 'exclusive',
    waiverNeedsInfusionTime: true,
    nasalCannulaUnknownFlow: 'high',
    holdMinutes: 0,
    site: { timeZone: 'Europe/Paris' },
  }),
  configFor('lee2014', { bpHistory: 4, vasopressorHistory: 2, feverHistory: 3, dedupeWindow: 16, holdMinutes: 5 }),
];

class Corpus {
  private readonly all: Hash = createHash('sha256');
  private readonly cases: string[] = [];
  private one: Hash = createHash('sha256');
  count = 0;
  /** What the corpus exercised, to see that it does: refused messages, duplicates, pages, alerts. */
  readonly seen = { refused: 0, duplicates: 0, pages: 0, alerts: 0 };
  constructor(readonly name: string) {}
  add(text: string): void {
    this.one.update(text);
    this.one.update('\n');
  }
  endCase(): void {
    const d = this.one.digest('hex');
    this.all.update(d);
    this.cases.push(d);
    this.one = createHash('sha256');
    this.count++;
  }
  finish(dir: string | undefined): string {
    const d = this.all.digest('hex');
    if (dir) writeFileSync(join(dir, `${this.name}.txt`), `${this.cases.join('\n')}\n`);
    return d;
  }
}

function stepText(step: Step): string {
  if (step.kind === 'duplicate') return JSON.stringify({ ...step, state: undefined });
  const { state: _state, ...rest } = step;
  return JSON.stringify(rest);
}

function stateText(state: PatientState): string {
  return `${serializeState(state)}\n${JSON.stringify(compactState(state))}`;
}

/** Round trip through one of the stored forms (alternating), as a backend loads the state before each message. */
function stored(state: PatientState, i: number): PatientState {
  return i % 2 === 0
    ? deserializeState(serializeState(state))
    : expandState(JSON.parse(JSON.stringify(compactState(state))) as unknown[]);
}

/** One patient's messages (as JSON values: validated first) through the reducer, in memory and from storage. */
function throughReducer(
  out: Corpus,
  values: unknown[],
  config: GradingConfig,
  receivedAt?: (m: DeviceMessage, i: number) => number | undefined,
): void {
  for (const fromStorage of [false, true]) {
    const states = new Map<string, PatientState>();
    const applied = new Map<string, string[]>();
    values.forEach((value, i) => {
      const v = validateMessage(value);
      if (!v.ok) {
        out.seen.refused++;
        out.add(JSON.stringify(v.errors));
        return;
      }
      const m = v.message;
      out.add(JSON.stringify(m));
      const key = `${m.patientId}|${m.messageId}`;
      // In storage mode, a backend's long-term record of digests (priorDigests), as the replay keeps.
      const prior = fromStorage ? applied.get(key) : undefined;
      const at = receivedAt?.(m, i);
      const arrival = { ...arrivalOf(m, prior), ...(at !== undefined ? { receivedAt: at } : {}) };
      const before = states.get(m.patientId);
      const step = reduce(before && fromStorage ? stored(before, i) : before, m, config, arrival);
      states.set(m.patientId, step.state);
      if (step.kind === 'applied') {
        applied.set(key, [...(applied.get(key) ?? []), step.digest]);
        out.seen.pages += step.notifications.length;
        out.seen.alerts += step.alerts.length;
      } else out.seen.duplicates++;
      out.add(stepText(step));
      out.add(JSON.stringify(stepEvents(step)));
      out.add(stateText(step.state));
    });
  }
}

/** Lines through `crs replay`'s own path (app/replay.ts): NDJSON events, and the states at the end. */
function throughReplay(out: Corpus, lines: string[], config: GradingConfig): void {
  const replay = new Replay(config);
  const patients = new Set<string>();
  lines.forEach((line, i) => {
    for (const e of replay.line(line, i + 1)) {
      out.add(JSON.stringify(e));
      if (e.type === 'rejected') out.seen.refused++;
      if (e.type === 'duplicate') out.seen.duplicates++;
      if (e.type === 'notification') out.seen.pages++;
      if (e.type === 'assessment') patients.add(e.patientId);
    }
    out.add(JSON.stringify(replay.lastAlerts));
    out.seen.alerts += replay.lastAlerts.length;
  });
  for (const p of [...patients].sort()) out.add(stateText(replay.state(p)!));
  out.add(`${replay.accepted} ${replay.rejected}`);
}

const sample = <T>(arb: fc.Arbitrary<T>, seed: number, numRuns: number): T[] => fc.sample(arb, { seed, numRuns });
const json = (m: unknown): unknown => JSON.parse(JSON.stringify(m));

// ------------------------------------------------------------------------------------------ hostile messages

const TEXTS = [
  '',
  ' ',
  'B-1',
  'a\nb',
  'a\u0000b',
  '\u202eevil',
  'x\u200by',
  'a\u2028b',
  '\u0641\u200c\u0627',
  'a\u200cb',
  '\u200d',
  'S\uFFFDd',
  '\ud800',
  'é'.repeat(70),
  'x'.repeat(200),
  '2026-01-10T08:00:00Z',
  '2026-01-10T08:00:00',
  '2026-02-30T08:00:00Z',
  '2026-01-10T08:00:00.123+02:00',
  'gw 1',
  'gw%1',
  'norepinephrine',
  'tocilizumab',
  'room_air',
  'car-t',
];
const ODD = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    0.5,
    1e9,
    -1e-9,
    98.6,
    101.3,
    Number.MAX_VALUE,
    [],
    {},
    [1, 2],
    { x: 1 },
    ...TEXTS,
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A valid message with one to three changes: a key dropped, a value replaced, an unknown key added. */
function hostile(seed: number, numRuns: number): unknown[] {
  const base = fc.oneof(timeline('H-1', 3), clinicalCourse('H-2', { maxMessages: 3 }), course('H-3', 3));
  const change = fc.tuple(
    fc.nat(),
    fc.nat(2),
    ODD,
    fc.constantFrom('vitalz', 'temperature', 'spO2', 'extra', 'Vitals'),
  );
  return sample(fc.tuple(base, fc.nat(), fc.array(change, { minLength: 1, maxLength: 3 })), seed, numRuns).map(
    ([messages, pick, changes]) => {
      const m = json(messages[pick % messages.length]) as Record<string, unknown>;
      for (const [where, what, value, key] of changes) {
        // Every object inside the message, the message itself first.
        const objects: Record<string, unknown>[] = [];
        const walk = (o: unknown) => {
          if (o === null || typeof o !== 'object') return;
          if (!Array.isArray(o)) objects.push(o as Record<string, unknown>);
          for (const v of Object.values(o)) walk(v);
        };
        walk(m);
        const o = objects[where % objects.length]!;
        const keys = Object.keys(o);
        const k = keys[where % Math.max(1, keys.length)];
        if (what === 0 && k !== undefined) delete o[k];
        else if (what === 1 && k !== undefined) o[k] = json(value);
        else o[key] = json(value);
      }
      return m;
    },
  );
}

// ------------------------------------------------------------------------------------------------------ main

const dir = process.argv[2];
if (dir) mkdirSync(dir, { recursive: true });
const started = Date.now();
const results: [string, number, string][] = [];
let lap = Date.now();
const done = (c: Corpus) => {
  results.push([c.name, c.count, c.finish(dir)]);
  console.error(`${c.name}: ${((Date.now() - lap) / 1000).toFixed(1)} s, ${JSON.stringify(c.seen)}`);
  lap = Date.now();
};

{
  const c = new Corpus('vignettes');
  const vignettes = JSON.parse(readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8')) as {
    scheme: 'astct2019' | 'lee2014';
    messages: unknown[];
  }[];
  for (const v of vignettes) {
    for (const config of [configFor(v.scheme), CONFIGS[2]!, CONFIGS[3]!]) {
      throughReducer(c, v.messages, config);
      throughReplay(
        c,
        v.messages.map((m) => JSON.stringify(m)),
        config,
      );
    }
    c.endCase();
  }
  done(c);
}

{
  const c = new Corpus('timelines');
  sample(timeline('T-1', 60), 1, 1200).forEach((messages, i) => {
    throughReducer(c, messages.map(json), CONFIGS[i % CONFIGS.length]!);
    c.endCase();
  });
  done(c);
}

{
  const c = new Corpus('courses');
  sample(fc.tuple(course('C-1', 30), fc.array(fc.nat(), { minLength: 1, maxLength: 20 })), 2, 1000).forEach(
    ([messages, delays], i) => {
      // Arrival close to observedAt order, and some messages dated ahead of their arrival (a fast device clock).
      const order = nearlyOrdered(messages.length, delays, 3);
      const arrived = order.map((k) => json(messages[k]));
      throughReducer(c, arrived, CONFIGS[i % CONFIGS.length]!, (m, k) =>
        (delays[k % delays.length] ?? 0) % 4 === 0 ? Date.parse(m.observedAt) - 60_000 * (1 + (k % 7)) : undefined,
      );
      c.endCase();
    },
  );
  done(c);
}

{
  const c = new Corpus('clinical');
  sample(
    fc
      .tuple(fc.boolean(), fc.nat())
      .chain(([reinfusion, n]) => clinicalCourse(`K-${n % 5}`, { maxMessages: 120, reinfusion })),
    3,
    1500,
  ).forEach((messages, i) => {
    throughReducer(c, messages.map(json), CONFIGS[i % CONFIGS.length]!);
    c.endCase();
  });
  done(c);
}

{
  const c = new Corpus('hostile');
  const values = hostile(4, 4000);
  for (const v of values) {
    const r = validateMessage(v);
    if (!r.ok) c.seen.refused++;
    c.add(JSON.stringify(r));
    c.endCase();
  }
  // And as lines of a replay, with lines that are not JSON, blank lines and other patients among them.
  const lines = values.map((v, i) => (i % 97 === 0 ? '{"messageId":' : i % 89 === 0 ? '   ' : JSON.stringify(v)));
  for (const config of CONFIGS) throughReplay(c, lines, config);
  c.endCase();
  done(c);
}

{
  const c = new Corpus('bench-feed');
  const lines = syntheticFeed(30_000, 300).map((m) => JSON.stringify(m));
  throughReplay(c, lines, DEFAULT_CONFIG);
  c.endCase();
  throughReducer(
    c,
    lines.slice(0, 6000).map((l) => JSON.parse(l) as unknown),
    CONFIGS[3]!,
  );
  c.endCase();
  done(c);
}

{
  const c = new Corpus('week');
  const messages = [...week('WEEK-1')].map(json);
  for (const config of [DEFAULT_CONFIG, CONFIGS[1]!]) {
    throughReplay(
      c,
      messages.map((m) => JSON.stringify(m)),
      config,
    );
    c.endCase();
  }
  throughReducer(c, messages.slice(0, 3000), CONFIGS[2]!);
  c.endCase();
  done(c);
}

for (const [name, count, digest] of results) console.log(`${name.padEnd(11)} ${String(count).padStart(5)}  ${digest}`);
console.error(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
