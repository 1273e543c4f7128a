// The paging scripts the differential tests of `crs replay --escalations` share (against `crs serve`:
// test/unit/replay-vs-serve-paging.test.ts; against the AWS functions: test/unit/replay-vs-aws-paging.test.ts):
// the random script (patients of one ward; grades up and down, late messages, duplicates, waits,
// acknowledgements, silences), its replay run, the paging audit trail as compared, the marks of what a run
// reached, and the fixed scripts that reach every mark whatever the random draws.
import fc from 'fast-check';
import { expect } from 'vitest';
import { EscalatingReplay, type EscalationEvent } from '#app/replay-escalations.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { CONSCIOUSNESS, type DeviceMessage } from '#domain/contract.ts';
import { PAGE_TEAMS, type PageTeam } from '#domain/paging.ts';
import { iso } from '#domain/time.ts';
import { CRS_MESSAGE, T0, enrol, msg } from '#test/support/messages.ts';

export const MINUTE = 60_000;
export const CONFIG = DEFAULT_CONFIG;
export const PATIENTS = ['P-1', 'P-2', 'P-3'];

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
  | { op: 'end-silence'; which: number }
  /** The patient moved to another ward and bed (an ADT A02 transfer: the EHR's enrolment), maybe charted late. */
  | { op: 'move'; patient: number; ward: string; late: number };

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
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('move' as const), patient, ward: fc.constantFrom('H4', 'H5'), late }),
  },
);
const scriptArb = fc.record({
  patients: fc.integer({ min: 2, max: 3 }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40, size: 'medium' }),
  /** How long time runs on after the last line (--until). */
  tail: fc.integer({ min: 0, max: 120 }),
});
export type Script = { patients: number; ops: Op[]; tail: number };

// ---------------------------------------------------------------------------------------------------------------
// One audit entry, as compared.

export interface Entry {
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
export function trail(entries: Entry[], silenceIds: Map<string, string>): Record<string, string[]> {
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

export const PAGING_TYPES = new Set([
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

export interface Outcome {
  trail: Record<string, string[]>;
  /** Per ack / end-silence step: accepted or refused. */
  answers: string[];
}

/** The lines of the replay file, and what the server is asked, step by step. */
export interface Step {
  line: string;
  /** The script's time at this step (the server's clock). */
  now: number;
  op: Op | { op: 'enrol' } | { op: 'until' };
  /** The message posted, for message steps. */
  message?: DeviceMessage;
}

export function stepsOf(script: Script): Step[] {
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
      case 'move':
        message(
          {
            ...msg(P, minutes(now) - op.late, { enrolment: { bed: `${op.ward}-${P}`, ward: op.ward } }, `${P}-x${++n}`),
            source: { deviceId: 'adt', kind: 'ehr' },
          },
          op,
        );
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
export function silenceLabels(steps: Step[]): Map<string, string> {
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

/**
 * The script run through `crs replay --escalations`. An ack step acknowledges the page `choose` names (given the
 * step's index and the page ids opened so far), by default the step's `which`-th; none: the step is left out.
 */
export async function runReplay(
  steps: Step[],
  choose: (step: number, ids: string[]) => string | undefined = (step, ids) => {
    const op = steps[step]!.op as Extract<Op, { op: 'ack' }>;
    return ids.length > 0 ? ids[op.which % ids.length] : undefined;
  },
): Promise<Outcome & { pageChoices: Map<number, string> }> {
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
      const pageId = choose(i, pageIdsOf(entries()));
      if (pageId === undefined) continue;
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
  // Both runs end silences through the same pager: a silence end that did nothing would agree on both sides.
  'silence ended': / silence \[.*\] ended by Nurse B /,
  // A patient moved to another ward: its bed in the pages after the move, its feed in the other ward's alerts.
  moved: / bed H5-P-/,
};

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
  // Patients moved between wards while pages are open and feeds quiet (ADT A02): a ladder open across the move, a
  // ward alert whose patient moves out while quiet, a move charted late (behind a newer one), and three feeds of
  // the ward moved into going quiet together.
  {
    patients: 3,
    ops: [
      { op: 'crs', patient: 0, grade: 3, late: 0 },
      { op: 'wait', minutes: 3 },
      { op: 'move', patient: 0, ward: 'H5', late: 0 },
      { op: 'wait', minutes: 4 },
      { op: 'crs', patient: 0, grade: 1, late: 0 },
      { op: 'wait', minutes: 20 },
      { op: 'move', patient: 1, ward: 'H5', late: 0 },
      { op: 'move', patient: 1, ward: 'H4', late: 10 },
      { op: 'wait', minutes: 5 },
      { op: 'reading', patient: 0, late: 0 },
      { op: 'reading', patient: 2, late: 0 },
      { op: 'move', patient: 2, ward: 'H5', late: 0 },
      { op: 'wait', minutes: 30 },
      { op: 'reading', patient: 1, late: 0 },
      { op: 'wait', minutes: 30 },
    ],
    tail: 30,
  },
  // A silence ended by hand while it holds a page.
  {
    patients: 2,
    ops: [
      { op: 'crs', patient: 0, grade: 3, late: 0 },
      { op: 'silence', patient: 0, team: null, minutes: 30 },
      { op: 'wait', minutes: 3 },
      { op: 'end-silence', which: 0 },
      { op: 'wait', minutes: 2 },
    ],
    tail: 5,
  },
];

/**
 * The property over the fixed scripts (`found`, then COVERS) and `runs` random ones: `compare` runs a script both
 * ways, checks they agree and returns replay's trail; in the end every mark must have been reached.
 */
export async function everyScriptAgrees(
  compare: (script: Script) => Promise<Record<string, string[]>>,
  runs: number,
  found: Script[],
): Promise<void> {
  const reached = new Set<string>();
  await fc.assert(
    fc.asyncProperty(scriptArb, async (script) => {
      const all = Object.values(await compare(script)).flat();
      for (const [mark, re] of Object.entries(MARKS)) if (all.some((l) => re.test(l))) reached.add(mark);
    }),
    { numRuns: runs, examples: [...found, ...COVERS].map((s) => [s]) },
  );
  expect(Object.keys(MARKS).filter((m) => !reached.has(m))).toEqual([]);
}
