// `crs replay --escalations` against `crs serve`, differentially: a random script (three patients of one ward;
// grades up and down over hours, some messages arriving late; acknowledgements by page id; silences of a patient
// or a team started and ended; time passing so that ladders climb and feeds go stale) is run as a replay file
// through EscalatingReplay, and against an embedded server whose clock follows the script (its HTTP routes for
// messages, acknowledgements and silences). Both must write the same audit trail of pages: opened, sent (to whom,
// at which level and round, when), escalated, held and released, acknowledged, superseded, resolved, alerts.
//
// What differs by design (docs/paging.md, "crs replay --escalations and crs serve"), and how it is compared:
// - Time: replay's clock is the latest time in the file; the server's is its own, here the script's time (never
//   moved back by a late message), so the two agree.
// - Stale-feed sweeps: the server sweeps every quarter of staleFeedMinutes, so an alert is up to that late; replay
//   raises it at the moment the feed became stale. The test sweeps the server at that moment (a phase the real loop
//   may have), and compares exactly. The server's own timers also run (at the same clock): entries of one instant
//   are compared in a canonical order.
// - Silence ids: the server makes them; replay's file names them. Mapped.
// - Acknowledgements: replay's line acknowledges by page id, recorded `via api`; the server's board button
//   (`POST /api/pages/<id>/ack`, `via board`) and the link's token (`POST /v1/acks`, `via link`, the name followed
//   by the role the link was sent to). `by` and `via` are compared up to that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { EscalatingReplay, type EscalationEvent } from '#app/replay-escalations.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { CONSCIOUSNESS, type DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { feedStatus, PAGE_TEAMS, type PageTeam } from '#domain/paging.ts';
import { iso } from '#domain/time.ts';
import type { AuditEvent } from '#ports';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { lineStream } from '#test/support/lines.ts';
import { CRS_MESSAGE, T0, enrol, msg } from '#test/support/messages.ts';

const RUNS = Number(process.env.REPLAY_SERVE_RUNS ?? 40);
const TOKEN = 'local-test-token-of-at-least-32-chars';
const MINUTE = 60_000;
const CONFIG = DEFAULT_CONFIG;
const PATIENTS = ['P-1', 'P-2', 'P-3'];

// ---------------------------------------------------------------------------------------------------------------
// The script.

type Op =
  | { op: 'crs'; patient: number; grade: number; late: number }
  | { op: 'icans'; patient: number; grade: number; late: number }
  | { op: 'reading'; patient: number; late: number }
  | { op: 'spo2'; patient: number; late: number }
  | { op: 'wait'; minutes: number }
  | { op: 'ack'; which: number; via: 'board' | 'link'; link: number }
  | { op: 'again'; which: number }
  | { op: 'silence'; patient: number; team: PageTeam | null; minutes: number }
  | { op: 'end-silence'; which: number };

const patient = fc.constantFrom(0, 0, 0, 1, 2);
/** Mostly on time; sometimes minutes late (behind messages already sent), once in a while over an hour. */
const late = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 21, max: 90 }) },
);
const which = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('crs' as const), patient, grade: fc.integer({ min: 0, max: 4 }), late }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('icans' as const), patient, grade: fc.integer({ min: 0, max: 4 }), late }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('reading' as const), patient, late }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('spo2' as const), patient, late }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 45 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      which,
      via: fc.constantFrom('board' as const, 'link' as const),
      link: which,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('silence' as const),
      patient,
      team: fc.option(fc.constantFrom(...PAGE_TEAMS), { nil: null, freq: 3 }),
      minutes: fc.integer({ min: 1, max: 90 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end-silence' as const), which }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('again' as const), which }) },
);
const scriptArb = fc.record({
  patients: fc.integer({ min: 2, max: 3 }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40, size: 'medium' }),
  /** How long time runs on after the last line (--until). */
  tail: fc.integer({ min: 0, max: 120 }),
});
type Script = { patients: number; ops: Op[]; tail: number };

// ---------------------------------------------------------------------------------------------------------------
// One audit entry, as compared.

interface Entry {
  at: string;
  patientId: string;
  type: string;
  text: string;
  details: Record<string, unknown>;
}

/**
 * Up to the documented differences: silence ids (each named by what it is: two silences of the same scope and
 * times are the same to a reader), and who acknowledged through which route.
 */
function canonical(e: Entry, silenceIds: Map<string, string>): Entry {
  let text = e.text;
  const details = { ...e.details };
  const ids = [...silenceIds.keys()].sort((a, b) => b.length - a.length).map((k) => k.replace(/[^\w]/g, '\\$&'));
  if (ids.length > 0)
    text = text.replace(new RegExp(`(?<![\\w-])(${ids.join('|')})(?![\\w-])`, 'g'), (id) => silenceIds.get(id)!);
  if (typeof details.silenceId === 'string') details.silenceId = silenceIds.get(details.silenceId) ?? details.silenceId;
  if (e.type === 'acknowledgement') {
    const by = String(details.by).replace(/ \(.*\)$/, '');
    text = text.replace(/ acknowledged by .* via \w+$/, ` acknowledged by ${by}`);
    details.by = by;
    delete details.via;
  }
  return { at: e.at, patientId: e.patientId, type: e.type, text, details };
}

/** Per patient, oldest first; entries of one instant in a canonical order (the server's own timers may run first). */
function trail(entries: Entry[], silenceIds: Map<string, string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const groups = new Map<string, Entry[]>();
  for (const e of entries) groups.set(e.patientId, [...(groups.get(e.patientId) ?? []), canonical(e, silenceIds)]);
  for (const [p, list] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out[p] = list
      .map((e) => ({ e, s: `${e.at} ${e.type} ${e.text} ${JSON.stringify(sortKeys(e.details))}` }))
      .sort((a, b) => (a.e.at < b.e.at ? -1 : a.e.at > b.e.at ? 1 : a.s < b.s ? -1 : a.s > b.s ? 1 : 0))
      .map((x) => x.s);
  }
  return out;
}

const sortKeys = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

const PAGING_TYPES = new Set([
  'page',
  'delivery',
  'escalation',
  'acknowledgement',
  'acknowledgement-refused',
  'alert',
  'silence',
]);

// ---------------------------------------------------------------------------------------------------------------
// The two runs.

interface Outcome {
  trail: Record<string, string[]>;
  /** Per ack / end-silence step: accepted or refused. */
  answers: string[];
}

/** The lines of the replay file, and what the server is asked, step by step. */
interface Step {
  line: string;
  /** The script's time at this step (the server's clock). */
  now: number;
  op: Op | { op: 'enrol' } | { op: 'until' };
  /** The message posted, for message steps. */
  message?: DeviceMessage;
}

function stepsOf(script: Script): Step[] {
  let now = T0;
  let n = 0;
  const steps: Step[] = [];
  const ids = PATIENTS.slice(0, script.patients);
  const message = (m: DeviceMessage, op: Step['op']) => steps.push({ line: JSON.stringify(m), now, op, message: m });
  for (const p of ids) message(enrol(p, 0, {}), { op: 'enrol' });
  const minutes = (t: number) => (t - T0) / MINUTE;
  let silences = 0;
  for (const op of script.ops) {
    const P = ids[Math.min('patient' in op ? op.patient : 0, ids.length - 1)]!;
    switch (op.op) {
      case 'crs':
        message(msg(P, minutes(now) - op.late, CRS_MESSAGE[op.grade]!, `${P}-x${++n}`), op);
        break;
      case 'icans':
        message(
          msg(P, minutes(now) - op.late, { neuro: { consciousness: CONSCIOUSNESS[op.grade]! } }, `${P}-x${++n}`),
          op,
        );
        break;
      case 'reading':
        message(msg(P, minutes(now) - op.late, { vitals: { heartRate: 80 } }, `${P}-x${++n}`), op);
        break;
      case 'spo2':
        message(msg(P, minutes(now) - op.late, { vitals: { spo2: 87 } }, `${P}-x${++n}`), op);
        break;
      case 'wait':
        now += op.minutes * MINUTE;
        steps.push({ line: JSON.stringify({ type: 'advance', to: iso(now) }), now, op });
        break;
      case 'again': {
        // A message sent again (a device's retry), later: a duplicate, however late.
        const sent = steps.filter((x) => x.message && x.op.op !== 'enrol');
        if (sent.length > 0) message(sent[op.which % sent.length]!.message!, op);
        break;
      }
      case 'ack':
        // The page is chosen when the step runs (among those opened so far): a placeholder here.
        steps.push({ line: '', now, op });
        break;
      case 'silence': {
        const scope = op.team ? { team: op.team } : { patientId: P };
        steps.push({
          line: JSON.stringify({
            type: 'silence',
            silenceId: `s${++silences}`,
            ...scope,
            from: iso(now),
            until: iso(now + op.minutes * MINUTE),
            by: 'Nurse B',
            reason: 'transport',
          }),
          now,
          op,
        });
        break;
      }
      case 'end-silence':
        steps.push({ line: '', now, op });
        break;
    }
  }
  now += script.tail * MINUTE;
  steps.push({ line: '', now, op: { op: 'until' } });
  return steps;
}

/** The script's silence ids -> what they are: "[patient P-1 01-10T08:00 to 01-10T08:30]". */
function silenceLabels(steps: Step[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of steps) {
    if (s.op.op !== 'silence') continue;
    const c = JSON.parse(s.line) as {
      silenceId: string;
      patientId?: string;
      team?: string;
      from: string;
      until: string;
    };
    const scope = c.team ? `team ${c.team}` : `patient ${c.patientId}`;
    out.set(c.silenceId, `[${scope} ${c.from.slice(5, 16)} to ${c.until.slice(5, 16)}]`);
  }
  return out;
}

/** The page ids opened so far, in the order of the trail: what an ack step picks from. */
const pageIdsOf = (entries: Entry[]) => [
  ...new Set(entries.filter((e) => e.type === 'page' || e.type === 'alert').map((e) => String(e.details.pageId))),
];
const silenceCount = (steps: Step[], upTo: number) => steps.slice(0, upTo).filter((s) => s.op.op === 'silence').length;

async function runReplay(steps: Step[]): Promise<Outcome & { pageChoices: Map<number, string> }> {
  const r = new EscalatingReplay(CONFIG);
  const events: EscalationEvent[] = [];
  const answers: string[] = [];
  const pageChoices = new Map<number, string>(); // step -> the page its ack is for
  const entries = () =>
    events.flatMap((e) =>
      e.type === 'audit' ? [{ ...(e as unknown as Entry), type: (e as { event: string }).event }] : [],
    );
  for (const [i, s] of steps.entries()) {
    if (s.op.op === 'until') {
      events.push(...(await r.finish(s.now)));
      break;
    }
    let line = s.line;
    if (s.op.op === 'ack') {
      const ids = pageIdsOf(entries());
      if (ids.length === 0) continue;
      const pageId = ids[s.op.which % ids.length]!;
      pageChoices.set(i, pageId);
      line = JSON.stringify({ type: 'ack', pageId, by: 'Dr A', at: iso(s.now) });
    } else if (s.op.op === 'end-silence') {
      const made = silenceCount(steps, i);
      if (made === 0) continue;
      line = JSON.stringify({
        type: 'end-silence',
        silenceId: `s${(s.op.which % made) + 1}`,
        by: 'Nurse B',
        at: iso(s.now),
      });
    }
    const out = await r.line(line, i + 1);
    events.push(...out);
    if (s.op.op === 'ack') answers.push(out.some((e) => e.type === 'control-refused') ? 'refused' : 'acknowledged');
    const refused = out.find((e) => e.type === 'control-refused');
    if (refused && s.op.op !== 'ack') throw new Error(`replay refused line ${i + 1}: ${JSON.stringify(refused)}`);
  }
  const audit = entries().filter((e) => PAGING_TYPES.has(e.type));
  return { trail: trail(audit, silenceLabels(steps)), answers, pageChoices };
}

async function runServer(steps: Step[], pageChoices: Map<number, string>): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'crs-replay-serve-'));
  let clock = T0;
  const lines: string[] = [];
  const server: EmbeddedServer = await startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: lineStream(lines),
    pageLines: true,
    now: () => clock,
    log: () => undefined,
  });
  const boardKey = new URL(server.boardUrl).searchParams.get('key')!;
  const post = (path: string, body: unknown, auth = boardKey) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** Everything accepted is graded, handed to the pager, its pages written out, the sweeps after it done. */
  const settle = async () => {
    const deadline = Date.now() + 30_000; // a loaded machine is slow, not wrong
    for (let round = 0; round < 2; round++) {
      for (;;) {
        const lanes = server.dispatcher.health();
        if (server.queue.pending() === 0 && lanes.every((l) => l.backlog === 0)) break;
        if (Date.now() > deadline) throw new Error('the server did not settle in 30 s');
        await new Promise((r) => setTimeout(r, 2));
      }
      await server.paging.sweep([]); // after the checks a commit started
    }
  };
  /** When the next patient's feed becomes stale, after the clock and up to `to`. */
  const nextStale = async (to: number): Promise<number | undefined> => {
    let next: number | undefined;
    for (const p of PATIENTS) {
      const s = await new SqliteStateStore(server.db).load(p); // a store of its own caches what it read
      const f = s && feedStatus(s.state, clock, CONFIG.paging);
      if (!f) continue;
      const at = f.since + CONFIG.paging.staleFeedMinutes * MINUTE;
      if (at > clock && at <= to && (next === undefined || at < next)) next = at;
    }
    return next;
  };
  /** The clock runs to `to`: the timer loop ticks, and the sweep runs when a feed becomes stale. */
  const advance = async (to: number) => {
    for (;;) {
      const at = await nextStale(to);
      if (at === undefined) break;
      clock = at;
      await server.paging.tick();
      await server.paging.sweep();
      await settle();
    }
    if (to > clock) clock = to;
    await server.paging.tick();
    await server.paging.sweep();
    await settle();
  };

  const labels = silenceLabels(steps);
  const silenceIds = new Map<string, string>(); // server id -> label
  const scriptSilences: string[] = [];
  const answers: string[] = [];
  try {
    for (const [i, s] of steps.entries()) {
      await advance(s.now);
      switch (s.op.op) {
        case 'until':
          break;
        case 'wait':
          break;
        case 'ack': {
          const pageId = pageChoices.get(i);
          if (pageId === undefined) break;
          // The link of any level the page was sent to; one past its expiry would be refused (replay's line is not).
          const links = lines
            .map((l) => JSON.parse(l) as PageEvent | { type: string })
            .filter((e): e is PageEvent => e.type === 'page' && (e as PageEvent).pageId === pageId)
            .flatMap((e) => (e.ackUrl ? [e.ackUrl.split('/ack/')[1]!] : []))
            .filter((token) => Number.parseInt(token.split('.')[3]!, 36) > clock);
          const link = links.length > 0 ? links[s.op.link % links.length] : undefined;
          const res =
            s.op.via === 'link' && link
              ? await post('/v1/acks', { token: link, by: 'Dr A' })
              : await post(`/api/pages/${encodeURIComponent(pageId)}/ack`, { by: 'Dr A' });
          answers.push(res.status === 200 ? 'acknowledged' : 'refused');
          break;
        }
        case 'silence': {
          const c = JSON.parse(s.line) as {
            patientId?: string;
            team?: string;
            silenceId: string;
            from: string;
            until: string;
          };
          const res = await post('/api/silences', {
            ...(c.team ? { team: c.team } : { patientId: c.patientId }),
            minutes: (Date.parse(c.until) - Date.parse(c.from)) / MINUTE,
            reason: 'transport',
            by: 'Nurse B',
          });
          expect(res.status, `silence at step ${i}`).toBe(201);
          const made = ((await res.json()) as { silence: { silenceId: string } }).silence.silenceId;
          silenceIds.set(made, labels.get(c.silenceId)!);
          scriptSilences.push(made);
          break;
        }
        case 'end-silence': {
          if (scriptSilences.length === 0) break;
          const id = scriptSilences[s.op.which % scriptSilences.length]!;
          const res = await post(`/api/silences/${encodeURIComponent(id)}/end`, { by: 'Nurse B' });
          expect(res.status, `end of silence at step ${i}`).toBe(200);
          break;
        }
        default: {
          const res = await post('/v1/messages', s.message, TOKEN);
          expect(res.ok, `message at step ${i}: ${res.status}`).toBe(true);
        }
      }
      await settle();
    }
    const entries: Entry[] = [];
    for (const p of [...PATIENTS, 'ward H4', '*'])
      for await (const e of server.paging.audit.forPatient(p))
        if (PAGING_TYPES.has(e.type)) entries.push(e as AuditEvent as Entry);
    return { trail: trail(entries, silenceIds), answers };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the scripts reached (in replay's trail), so that a generator that stops reaching one fails. */
const MARKS: Record<string, RegExp> = {
  escalated: / escalated to /,
  exhausted: / page exhausted: /,
  held: /\(held by silence /,
  released: / page released: /,
  'held mid-ladder': / page held by silence /,
  acknowledged: / acknowledgement /,
  superseded: / page superseded/,
  resolved: / page resolved/,
  'stale feed': /NO DATA, patient /,
  'ward alert': /NO DATA, ward /,
  'low SpO2': /"subject":"spo2"/,
  'de-escalation': / de-escalation page opened/,
};
const reached = new Map<string, number>();

async function compare(script: Script): Promise<void> {
  const steps = stepsOf(script);
  const replay = await runReplay(steps);
  const served = await runServer(steps, replay.pageChoices);
  expect(served.trail).toEqual(replay.trail);
  expect(served.answers).toEqual(replay.answers);
  const all = Object.values(replay.trail).flat();
  for (const [mark, re] of Object.entries(MARKS))
    if (all.some((l) => re.test(l))) reached.set(mark, (reached.get(mark) ?? 0) + 1);
}

/** Scripts that found a defect (each also a fixed example where the behaviour lives). */
const FOUND: Script[] = [
  // A page held by a patient's and its team's silence at once named either (test/unit/paging.test.ts, silences).
  {
    patients: 2,
    ops: [
      { op: 'silence', patient: 2, team: null, minutes: 1 },
      { op: 'silence', patient: 0, team: 'hematology', minutes: 1 },
      { op: 'icans', patient: 1, grade: 1, late: 21 },
      { op: 'wait', minutes: 2 },
    ],
    tail: 0,
  },
];

/**
 * A script that reaches the rarer marks whatever the random draws (two low SpO2 readings in a row, a ward's feeds
 * all going quiet, a ladder walked to its end), so that the coverage check below does not depend on luck.
 */
const COVERS: Script[] = [
  {
    patients: 3,
    ops: [
      { op: 'spo2', patient: 0, late: 0 },
      { op: 'wait', minutes: 1 },
      { op: 'spo2', patient: 0, late: 0 },
      { op: 'reading', patient: 1, late: 0 },
      { op: 'reading', patient: 2, late: 0 },
      { op: 'crs', patient: 1, grade: 3, late: 0 },
      { op: 'wait', minutes: 45 },
      { op: 'wait', minutes: 45 },
      { op: 'wait', minutes: 45 },
    ],
    tail: 120,
  },
  {
    patients: 2,
    ops: [
      { op: 'crs', patient: 0, grade: 1, late: 0 },
      { op: 'crs', patient: 0, grade: 2, late: 0 },
      { op: 'wait', minutes: 1 },
      { op: 'ack', which: 0, via: 'board', link: 0 },
      { op: 'ack', which: 1, via: 'link', link: 1 },
      { op: 'crs', patient: 1, grade: 3, late: 0 },
      { op: 'wait', minutes: 6 },
      { op: 'silence', patient: 1, team: null, minutes: 30 },
      { op: 'wait', minutes: 10 },
      { op: 'crs', patient: 0, grade: 0, late: 0 },
      { op: 'reading', patient: 1, late: 0 },
      { op: 'wait', minutes: 40 },
      { op: 'reading', patient: 0, late: 0 },
      { op: 'reading', patient: 1, late: 0 },
      { op: 'wait', minutes: 30 },
      { op: 'reading', patient: 0, late: 0 },
    ],
    tail: 10,
  },
];

describe('crs replay --escalations and crs serve page alike', () => {
  it('the same pages, sends, escalations, acknowledgements, silences and alerts over random scripts', async () => {
    await fc.assert(fc.asyncProperty(scriptArb, compare), {
      numRuns: RUNS,
      examples: [...FOUND, ...COVERS].map((s) => [s]),
    });
    expect(Object.keys(MARKS).filter((m) => !reached.has(m))).toEqual([]);
  }, 600_000);
});
