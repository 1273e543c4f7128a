// A model of the technical alerts' lifecycle as docs/paging.md states it ("Technical alerts", "Silences", the
// lifecycle of a page), checked against the real code over random scripts: monitors of a few patients on two wards
// sending or going quiet, SpO2 readings, a late enrolment, silences of a patient or a team, and time moving minute
// by minute with the AWS stale-feed sweep (the shared planStaleFeeds) and the pager's tick, over in-memory stores.
//
// The model is written from the docs, not the code. Readings are dated half a minute before server time and the
// join window is 4.5 minutes, so that no quiet time falls exactly on a documented limit (15 minutes, the window):
// where "at 15 minutes" means >= or > is not this property's question.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sweepStaleFeeds, type SweepDeps } from '#adapters/aws/stale-feed-sweep.ts';
import { gradePatient } from '#app/grade.ts';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import type { AlertInput } from '#domain/paging.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageMessage } from '#domain/page-event.ts';
import type { PageTeam, Silence } from '#domain/paging.ts';
import type { AlertChange } from '#domain/reducer.ts';
import type { Notification } from '#domain/page.ts';
import type { PatientState } from '#domain/state.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { MemoryStateStore } from '#test/support/port-fakes.ts';

const MIN = 60_000;
const PATIENTS = 5; // P-1..P-4 enrolled at the start, P-5 not (it may be enrolled later)
const STALE = 15; // staleFeedMinutes (default)
const WINDOW = 4.5; // staleFeedGroup.windowMinutes: between whole minutes, so no join is on the limit
const FROM = 3; // staleFeedGroup.fromPatients (default)
const BELOW = 90; // spo2WarningBelow (default)

const CONFIG = {
  ...DEFAULT_CONFIG,
  paging: { ...DEFAULT_CONFIG.paging, staleFeedGroup: { fromPatients: FROM, windowMinutes: WINDOW } },
};
const TEAMS = { 'stale-feed': ['bedside'], spo2: ['bedside', 'hematology'] } as const;

type Target = { patient: number } | { team: 'bedside' | 'hematology' };
type Op =
  | { op: 'data'; patient: number }
  /** Every patient of a ward sends (a ward's monitors back after a network outage). */
  | { op: 'resume'; ward: string }
  /** SpO2 readings of one patient in a row (two low in a row raise the alert). */
  | { op: 'spo2'; patient: number; values: number[] }
  | { op: 'enrol' }
  | { op: 'wait'; minutes: number }
  | { op: 'silence'; target: Target; minutes: number }
  | { op: 'end' };

const patient = fc.integer({ min: 1, max: PATIENTS });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('data' as const), patient }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('spo2' as const),
      patient: fc.integer({ min: 1, max: 4 }),
      values: fc.array(fc.constantFrom(85, 88, 89, 90, 91, 96), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resume' as const), ward: fc.constantFrom('H4', 'H5') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('enrol' as const) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 20 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('silence' as const),
      target: fc.oneof(
        fc.record({ patient: fc.integer({ min: 1, max: 4 }) }),
        fc.record({ team: fc.constantFrom('bedside' as const, 'hematology' as const) }),
      ),
      minutes: fc.integer({ min: 1, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end' as const) }) },
);
const scriptArb = fc.record({
  wards: fc.array(fc.constantFrom('H4', 'H5'), { minLength: PATIENTS, maxLength: PATIENTS }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 40 }),
});
type Script = { wards: string[]; ops: Op[] };

const pid = (k: number) => `P-${k}`;
const wardWho = (w: string) => `ward ${w}`;

// ---------------------------------------------------------------------------------------------------------------
// The model (docs/paging.md)

interface ModelAlert {
  subject: 'stale-feed' | 'spo2';
  /** The patient, or "ward W" for a ward's alert. */
  who: string;
  raisedAt: number;
  clearedAt?: number;
  /** A ward alert: the patients named in its page, and those still quiet in it. */
  named?: string[];
  members?: Set<string>;
  ward?: string;
  since: number;
  /** Per team: when its first page was (or is to be) sent; 'held' while a silence holds it; 'never' once dropped. */
  first: Map<PageTeam, number | 'held' | 'never' | 'unsure'>;
  /** Per team: when the all-clear went, or 'never' (made during a silence). */
  clear: Map<PageTeam, number | 'never' | 'unsure'>;
}

interface ModelSilence {
  id: string;
  target: Target;
  from: number;
  until: number;
  ended?: number;
}

class Model {
  readonly alerts: ModelAlert[] = [];
  readonly silences: ModelSilence[] = [];
  /** Whether any patient silence was made: a ward alert's pages under one are not the docs' question. */
  patientSilences = false;
  /** From this time on the docs do not say what happens (see `ambiguity`): events after it are not compared. */
  cutoff = Number.POSITIVE_INFINITY;
  ambiguity: string | undefined;
  private readonly enrolled = new Set<string>();
  private readonly feedSince = new Map<string, number>();
  private readonly spo2 = new Map<string, number[]>();
  /** The stale-feed alert each patient is in (its own or its ward's). */
  private readonly staleOf = new Map<string, ModelAlert>();

  constructor(private readonly wards: string[]) {}

  wardOf(p: string) {
    return this.wards[Number(p.slice(2)) - 1]!;
  }

  private covered(a: ModelAlert, team: PageTeam, now: number) {
    return this.silences.some(
      (s) =>
        s.from <= now &&
        now < s.until &&
        (s.ended === undefined || now < s.ended) &&
        ('team' in s.target ? s.target.team === team : pid(s.target.patient) === a.who),
    );
  }

  /** Whether a patient silence might hold this ward alert's pages (the docs do not say). */
  private unsure(a: ModelAlert) {
    return a.ward !== undefined && this.patientSilences;
  }

  private raise(a: Omit<ModelAlert, 'first' | 'clear' | 'raisedAt'>, now: number) {
    const alert: ModelAlert = { ...a, raisedAt: now, first: new Map(), clear: new Map() };
    for (const team of TEAMS[a.subject])
      alert.first.set(team, this.unsure(alert) ? 'unsure' : this.covered(alert, team, now) ? 'held' : now);
    this.alerts.push(alert);
    return alert;
  }

  private clearAlert(a: ModelAlert, now: number) {
    a.clearedAt = now;
    for (const team of TEAMS[a.subject]) {
      if (a.first.get(team) === 'held') a.first.set(team, 'never'); // an all-clear answers the held page
      // "an informational page (a fall in grade, an all-clear) made during a silence is recorded ... but never sent"
      a.clear.set(team, this.unsure(a) ? 'unsure' : this.covered(a, team, now) ? 'never' : now);
    }
  }

  monitor(p: string, at: number) {
    this.feedSince.set(p, Math.max(this.feedSince.get(p) ?? at, at));
  }

  enrol(p: string, at: number) {
    this.enrolled.add(p);
    this.monitor(p, at); // an enrolment a monitor sends is monitor data too
  }

  /**
   * "below spo2WarningBelow on two consecutive readings with no oxygen support documented"; cleared by two
   * consecutive readings at or above it.
   */
  spo2Reading(p: string, value: number, now: number) {
    const last = [...(this.spo2.get(p) ?? []), value].slice(-2);
    this.spo2.set(p, last);
    const low = last.length === 2 && last.every((v) => v < BELOW);
    const recovered = last.length === 2 && last.every((v) => v >= BELOW);
    const open = this.alerts.find((a) => a.subject === 'spo2' && a.who === p && a.clearedAt === undefined);
    if (low && !open) this.raise({ subject: 'spo2', who: p, since: now }, now);
    if (recovered && open) this.clearAlert(open, now);
  }

  /** One sweep at `now`. */
  sweep(now: number) {
    const quiet = (p: string) => this.enrolled.has(p) && now - this.feedSince.get(p)! >= STALE * MIN;
    // Data committed again clears (by the first sweep after it, on AWS); a ward's all-clear when its last resumes.
    for (const [p, a] of [...this.staleOf]) {
      if (quiet(p)) continue;
      this.staleOf.delete(p);
      if (a.members) {
        a.members.delete(p);
        if (a.members.size === 0) this.clearAlert(a, now);
      } else this.clearAlert(a, now);
    }
    const newly = [...this.enrolled].filter((p) => quiet(p) && !this.staleOf.has(p)).sort();
    for (const ward of ['H4', 'H5']) {
      const mine = newly.filter((p) => this.wardOf(p) === ward);
      if (mine.length === 0) continue;
      const left: string[] = [];
      for (const p of mine) {
        // "a patient of that ward quiet within windowMinutes joins it"
        const join = this.alerts.find(
          (a) => a.ward === ward && a.clearedAt === undefined && this.feedSince.get(p)! - a.since <= WINDOW * MIN,
        );
        if (join) {
          join.members!.add(p);
          this.staleOf.set(p, join);
        } else left.push(p);
      }
      const already = [...this.staleOf.keys()].filter((p) => this.wardOf(p) === ward).length;
      if (left.length >= FROM) {
        // "Three or more of a ward quiet in one sweep share one alert, paged as `ward W` with the patients named in
        // the order of their ids"
        const since = Math.min(...left.map((p) => this.feedSince.get(p)!));
        const a = this.raise(
          { subject: 'stale-feed', who: wardWho(ward), ward, since, named: left, members: new Set(left) },
          now,
        );
        for (const p of left) this.staleOf.set(p, a);
      } else {
        if (left.length > 0 && left.length + already >= FROM && this.cutoff > now) {
          this.cutoff = now;
          this.ambiguity = `${left.join(', ')} newly quiet while ${already} of ward ${ward} already have alerts`;
        }
        for (const p of left)
          this.staleOf.set(p, this.raise({ subject: 'stale-feed', who: p, since: this.feedSince.get(p)! }, now));
      }
    }
  }

  /** The pager's tick at `now`: held pages whose silences have all ended are sent, if still open. */
  tick(now: number) {
    for (const a of this.alerts)
      for (const [team, f] of a.first)
        if (f === 'held' && a.clearedAt === undefined && !this.covered(a, team, now)) a.first.set(team, now);
  }

  silence(s: ModelSilence) {
    this.silences.push(s);
    if ('patient' in s.target) this.patientSilences = true;
    // A page held by one silence that a later one covers too: whether it waits for the later one is not said.
    for (const a of this.alerts)
      for (const [team, f] of a.first) if (f === 'held' && this.covered(a, team, s.from)) a.first.set(team, 'unsure');
    for (const a of this.alerts) if (this.unsure(a)) for (const t of a.first.keys()) a.first.set(t, 'unsure');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The real code

class AlertingStore extends MemoryStateStore {
  readonly alerts: AlertChange[] = [];
  override async save(
    patientId: string,
    state: PatientState,
    expectedVersion: number,
    outbox: Notification[],
    extra?: { alerts?: readonly AlertChange[] },
  ): Promise<void> {
    await super.save(patientId, state, expectedVersion, outbox);
    this.alerts.push(...(extra?.alerts ?? []));
  }
}

interface Raised extends AlertInput {
  at: number;
}
interface Sent {
  at: number;
  m: PageMessage;
}

async function runReal(script: Script, model: Model) {
  const clock = { now: T0 };
  const store = new AlertingStore();
  const audit = new MemoryAuditLog();
  const pages = new MemoryPageStore(audit);
  const sent: Sent[] = [];
  const pager = new Pager({
    pages,
    sender: { send: async (m: PageMessage) => void sent.push({ at: clock.now, m: structuredClone(m) }) },
    audit,
    config: CONFIG.paging,
    ackSecret: Buffer.alloc(32, 7),
    ackBaseUrl: 'https://crs.example.org/ack/',
  });
  const raised: Raised[] = [];
  const onAlert = async (a: AlertInput, now: number) => {
    raised.push({ ...a, at: now });
    await pager.onAlert(a, now);
  };
  const inForce = new Map<string, { alertId: string; since: number }>();
  const deps: SweepDeps = {
    states: {
      feeds: async function* () {
        for (const id of store.records.keys()) {
          const s = store.state(id)!;
          const enrolled = Math.min(...Object.values(s.enrolment).map((f) => f.t));
          yield { patientId: id, since: s.lastMonitorAt ?? enrolled };
        }
      },
      load: (id: string) => store.load(id),
    } as SweepDeps['states'],
    pages: {
      staleFeedAlerts: async () => ({ alerts: new Map(inForce), unreadable: [] }),
      setStaleFeedAlert: async (p: string, alertId: string, since: number) => void inForce.set(p, { alertId, since }),
      clearStaleFeedAlert: async (p: string) => void inForce.delete(p),
    } as SweepDeps['pages'],
    pager: { onAlert },
    config: CONFIG.paging,
    timeZone: 'UTC',
  };

  let seq = 0;
  // Dated half a minute (less a few ms, to keep readings in order) before server time.
  const observed = () => (clock.now - 30_000 + ++seq - T0) / MIN;
  const grade = async (m: DeviceMessage) => {
    await gradePatient(store, CONFIG, m.patientId, [m]);
    for (const a of store.alerts.splice(0))
      await onAlert(
        { alertId: a.alertId, patientId: a.patientId, subject: a.subject, cleared: a.cleared, summary: a.summary },
        clock.now,
      );
  };
  const enrolment = (k: number) => {
    const at = observed();
    model.enrol(pid(k), T0 + at * MIN);
    return enrol(pid(k), at, { ward: script.wards[k - 1]!, bed: `B${k}` });
  };
  for (let k = 1; k <= 4; k++) await grade(enrolment(k));
  let silences = 0;
  const open: string[] = [];
  for (const step of script.ops) {
    if (step.op === 'data') {
      const at = observed();
      model.monitor(pid(step.patient), T0 + at * MIN);
      await grade(msg(pid(step.patient), at, { vitals: { heartRate: 80 } }));
    } else if (step.op === 'resume') {
      for (let k = 1; k <= PATIENTS; k++) {
        if (script.wards[k - 1] !== step.ward) continue;
        const at = observed();
        model.monitor(pid(k), T0 + at * MIN);
        await grade(msg(pid(k), at, { vitals: { heartRate: 80 } }));
      }
    } else if (step.op === 'spo2') {
      for (const value of step.values) {
        const at = observed();
        model.monitor(pid(step.patient), T0 + at * MIN);
        model.spo2Reading(pid(step.patient), value, clock.now);
        await grade(msg(pid(step.patient), at, { vitals: { spo2: value } }));
      }
    } else if (step.op === 'enrol') {
      await grade(enrolment(5));
    } else if (step.op === 'wait') {
      for (let i = 0; i < step.minutes; i++) {
        clock.now += MIN;
        model.sweep(clock.now);
        await sweepStaleFeeds(deps, clock.now);
        model.tick(clock.now);
        await pager.onTick(clock.now);
      }
    } else if (step.op === 'silence') {
      const id = `S${++silences}`;
      const until = clock.now + step.minutes * MIN;
      const scope = 'team' in step.target ? { team: step.target.team } : { patientId: pid(step.target.patient) };
      const s: Silence = { silenceId: id, scope, from: clock.now, until, createdBy: 'Nurse Bea', reason: 'test' };
      model.silence({ id, target: step.target, from: clock.now, until });
      await pager.silence(s, clock.now);
      open.push(id);
    } else {
      const id = open.pop();
      if (id === undefined) continue;
      const s = model.silences.find((x) => x.id === id)!;
      if (s.ended === undefined && clock.now < s.until) s.ended = clock.now;
      model.tick(clock.now);
      await pager.endSilence(id, 'Nurse Bea', clock.now);
    }
  }
  return { raised, sent };
}

// ---------------------------------------------------------------------------------------------------------------
// The comparison

const who = (a: AlertInput) => a.patientId;

async function check(script: Script) {
  const model = new Model(script.wards);
  const { raised, sent } = await runReal(script, model);
  const before = (t: number) => t < model.cutoff;

  // The same alerts raised and cleared, at the same sweep: once each, never earlier, and again after data.
  const real = raised
    .filter((a) => before(a.at))
    .map((a) => `${a.at - T0}|${a.subject}|${who(a)}|${a.cleared ? 'clear' : 'raise'}`);
  const expected = model.alerts.flatMap((a) => [
    ...(before(a.raisedAt) ? [`${a.raisedAt - T0}|${a.subject}|${a.who}|raise`] : []),
    ...(a.clearedAt !== undefined && before(a.clearedAt) ? [`${a.clearedAt - T0}|${a.subject}|${a.who}|clear`] : []),
  ]);
  expect(real.sort()).toEqual(expected.sort());

  // Matched in order: one patient's SpO2 alert can clear and be raised again at the same instant (two alerts).
  const matched = new Set<(typeof raised)[number]>();
  for (const a of model.alerts.filter((x) => before(x.raisedAt))) {
    const input = raised.find(
      (r) => !matched.has(r) && !r.cleared && r.at === a.raisedAt && r.subject === a.subject && who(r) === a.who,
    )!;
    matched.add(input);
    // A ward's page names each of its patients once, in the order of their ids.
    if (a.named) expect(input.summary.match(/P-\d+/g)).toEqual([...a.named].sort());
    const firsts = sent.filter(
      (s) => s.m.page.notificationId === input.alertId && s.m.page.level === 0 && s.m.page.round === 0,
    );
    // Pages only to alertTeams.
    expect(new Set(firsts.map((s) => s.m.page.team)).size).toBeLessThanOrEqual(TEAMS[a.subject].length);
    for (const s of firsts) expect(TEAMS[a.subject]).toContain(s.m.page.team);
    for (const [team, f] of a.first) {
      if (f === 'unsure') continue;
      const mine = firsts.filter((s) => s.m.page.team === team);
      // Each team's first role, exactly once, when raised (or when the silence holding it ended), or never.
      if (typeof f !== 'number' || !before(f)) {
        // Still held at the end, or answered while held: never sent (past the cutoff: at most once).
        if (model.cutoff === Number.POSITIVE_INFINITY && typeof f !== 'number') expect(mine).toEqual([]);
        else expect(mine.length).toBeLessThanOrEqual(1);
        continue;
      }
      // Its first send is at that time; a later send of level 0 can only be a release: a page already sent and then
      // held by a silence at its escalation time is "sent when the silence ends" (listed as an ambiguity).
      expect(
        mine.slice(0, 1).map((s) => s.at - T0),
        `${a.subject} ${a.who} ${team}`,
      ).toEqual([f - T0]);
      // (Later sends of level 0 are not asserted: see the ambiguity above.)
      for (const s of mine) expect(s.m.role).toBe(CONFIG.paging.policies[team].levels[0]);
    }
    if (a.clearedAt === undefined || !before(a.clearedAt)) continue;
    const cleared = raised.find(
      (r) => r.cleared && r.at === a.clearedAt && r.subject === a.subject && who(r) === a.who,
    )!;
    for (const [team, c] of a.clear) {
      if (c === 'unsure') continue;
      const mine = sent.filter((s) => s.m.page.notificationId === cleared.alertId && s.m.page.team === team);
      // An all-clear is informational: sent once, nothing to acknowledge; never if made during a silence.
      expect(
        mine.map((s) => s.at - T0),
        `${a.subject} ${a.who} all-clear ${team}`,
      ).toEqual(c === 'never' ? [] : [c - T0]);
      for (const s of mine) expect(s.m.page.status).toBe('info');
    }
  }
  return model;
}

/** What a script reached, from the model's account of it (compared events only: before the cutoff). */
function reached(model: Model): string[] {
  const marks: string[] = [];
  for (const a of model.alerts) {
    if (!(a.raisedAt < model.cutoff)) continue;
    const kind = a.subject === 'spo2' ? 'spo2' : a.who.startsWith('ward') ? 'ward stale feed' : 'stale feed';
    marks.push(`${kind} raised`);
    if (a.clearedAt !== undefined && a.clearedAt < model.cutoff) marks.push(`${kind} cleared`);
    for (const f of a.first.values()) {
      if (typeof f === 'number') marks.push(f === a.raisedAt ? 'paged when raised' : 'paged when its silence ended');
      else if (f === 'never') marks.push('held, then answered by the all-clear');
    }
    for (const c of a.clear.values()) {
      if (typeof c === 'number') marks.push('all-clear sent');
      else if (c === 'never') marks.push('all-clear made during a silence');
    }
  }
  return marks;
}

const MARKS = [
  'stale feed raised',
  'stale feed cleared',
  'ward stale feed raised',
  'ward stale feed cleared',
  'spo2 raised',
  'spo2 cleared',
  'paged when raised',
  'paged when its silence ended',
  'held, then answered by the all-clear',
  'all-clear sent',
  'all-clear made during a silence',
];

/** Scripts that reach every mark, so the coverage check does not depend on the random draw. */
const COVERS: Script[] = [
  // A ward's monitors all go quiet (one ward alert, paged when raised) and come back (its all-clear).
  {
    wards: ['H4', 'H4', 'H4', 'H4', 'H5'],
    ops: [
      { op: 'wait', minutes: 16 },
      { op: 'resume', ward: 'H4' },
      { op: 'wait', minutes: 1 },
    ],
  },
  // Under a bedside silence: P-1's own alert (H4 alone) is held, and its feed back answers it; the all-clear made
  // during the silence is never sent. P-2 to P-4 share ward H5's alert.
  {
    wards: ['H4', 'H5', 'H5', 'H5', 'H5'],
    ops: [
      { op: 'silence', target: { team: 'bedside' }, minutes: 30 },
      { op: 'wait', minutes: 16 },
      { op: 'data', patient: 1 },
      { op: 'wait', minutes: 1 },
    ],
  },
  // Low SpO2 twice: the bedside paged at once, hematology once its silence ends; two normal readings clear it.
  {
    wards: ['H4', 'H4', 'H5', 'H5', 'H5'],
    ops: [
      { op: 'silence', target: { team: 'hematology' }, minutes: 3 },
      { op: 'spo2', patient: 1, values: [85, 88] },
      { op: 'wait', minutes: 4 },
      { op: 'spo2', patient: 1, values: [96, 97] },
    ],
  },
];

describe('technical alerts against a model of docs/paging.md', () => {
  it('raise, clear, group by ward and page as documented', { timeout: 60_000 }, async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(scriptArb, async (script) => {
        for (const m of reached(await check(script))) seen.set(m, (seen.get(m) ?? 0) + 1);
      }),
      { numRuns: Number(process.env.ALERTS_MODEL_RUNS ?? 200), examples: COVERS.map((c) => [c]) },
    );
    // The scripts reached every behaviour the model compares.
    expect(MARKS.filter((m) => !seen.has(m))).toEqual([]);
  });
});
