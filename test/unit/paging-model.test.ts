// A model of the paging rules as the docs state them (docs/paging.md; crs-rules.md section 5: who is paged, the
// de-escalation hold; docs/conservation.md: parked sends), checked against the real reducer and Pager over random
// scripts: grade changes up and down for three patients, technical alerts, the clock moving minute by minute with a
// tick each minute, acknowledgements (API, board, genuine links, forged or altered links), silences of a patient or
// a team started and ended, a team whose endpoint refuses sends (parked) and the operator's retry of parked sends.
//
// The model is written from the docs, not from the code. Where the docs leave a behaviour open it asserts nothing
// about it (each such place says "not asserted"): which level a page held mid-ladder pages when its silence ends;
// whether a held de-escalation or all-clear is ever sent; whether an exhausted page, or an earlier level's link,
// may still acknowledge; which teams a de-escalation that follows a de-escalation goes to.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signAck } from '#app/ack.ts';
import { arrivalOf } from '#app/digest.ts';
import { MemoryAuditLog, MemoryPageStore, MemoryParkedSends } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_CONFIG, type Condition, type Team } from '#domain/config.ts';
import { CONSCIOUSNESS, type DeviceMessage } from '#domain/contract.ts';
import { pageEvent } from '#domain/page-event.ts';
import { DEFAULT_PAGING, PAGE_TEAMS, type AckResult, type Page, type PageTeam } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { RecordRefused, type PageMessage } from '#ports';
import { T0, enrol, msg } from '#test/support/messages.ts';

const MINUTE = 60_000;
const SECRET = Buffer.alloc(32, 7);
const WRONG_SECRET = Buffer.alloc(32, 8);
const ACK_BASE = 'https://crs.example.org/ack/';

// ---------------------------------------------------------------------------------------------------------------
// What the docs say, as constants. The model reads nothing of the product's configuration but the ladders' levels
// and loops, which docs/paging.md leaves to "Defaults in shared/domain/paging.ts".

/** crs-rules.md section 5, the routing table (restated from the rules on purpose: the model is an independent oracle). */
const ROUTING: Record<Condition, Team[][]> = {
  crs: [['hematology'], ['hematology'], ['hematology', 'icu'], ['hematology', 'icu']],
  icans: [
    ['hematology', 'neurology'],
    ['hematology', 'neurology', 'radiology'],
    ['hematology', 'neurology', 'radiology', 'icu'],
    ['hematology', 'neurology', 'radiology', 'icu'],
  ],
};
/** crs-rules.md section 5: the de-escalation hold, on the patient clock. */
const HOLD_MINUTES = 60;
/**
 * docs/paging.md: `timeoutMinutes.severe` (5) from `severeFromGrade` (3), `other` (15) below. A technical alert has
 * no grade (its pages carry 0): "other" is taken to cover it.
 */
const timeoutMinutes = (grade: number) => (grade >= 3 ? 5 : 15);
/** docs/paging.md: `ackLinkMinutes` (720). */
const ACK_LINK_MINUTES = 720;
/** docs/paging.md: `unsilenceableFromGrade` (4), "grade 4 is always sent". */
const UNSILENCEABLE_FROM = 4;
/** docs/paging.md: "no data" to the bedside team; low SpO2 to the bedside team and hematology. */
const ALERT_TEAMS = { 'stale-feed': ['bedside'], spo2: ['bedside', 'hematology'] } as const;
const LADDERS = DEFAULT_PAGING.policies;

// ---------------------------------------------------------------------------------------------------------------
// The script.

type Op =
  | { op: 'crs'; patient: number; grade: number }
  | { op: 'icans'; patient: number; grade: number }
  | { op: 'reading'; patient: number }
  | { op: 'alert'; patient: number; subject: 'stale-feed' | 'spo2' }
  | { op: 'wait'; minutes: number }
  | { op: 'silence'; patient: number; team: PageTeam | null; minutes: number }
  | { op: 'end-silence'; which: number }
  | { op: 'ack'; which: number; via: 'api' | 'board' }
  | { op: 'ack-link'; which: number }
  | { op: 'ack-forged'; which: number; how: 'other-secret' | 'altered' }
  | { op: 'refuse'; team: PageTeam | null }
  | { op: 'retry-parked' };

// Mostly one patient, so that its grades go up and down; sometimes others, so that their pages interleave.
const patient = fc.constantFrom(1, 1, 1, 2, 3);
const which = fc.nat({ max: 1000 });
const team = fc.constantFrom(...PAGE_TEAMS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('crs' as const), patient, grade: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('icans' as const), patient, grade: fc.integer({ min: 0, max: 4 }) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('reading' as const), patient }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('alert' as const),
      patient,
      subject: fc.constantFrom('stale-feed' as const, 'spo2' as const),
    }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 30 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('silence' as const),
      patient,
      team: fc.option(team, { nil: null }),
      minutes: fc.integer({ min: 1, max: 60 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end-silence' as const), which }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('ack' as const),
      which,
      via: fc.constantFrom('api' as const, 'board' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('ack-link' as const), which }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('ack-forged' as const),
      which,
      how: fc.constantFrom('other-secret' as const, 'altered' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('refuse' as const), team: fc.option(team, { nil: null }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'retry-parked' as const }) },
);
const scriptArb = fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' });

// ---------------------------------------------------------------------------------------------------------------
// The model.

type Subject = Condition | 'stale-feed' | 'spo2';

interface MSilence {
  id: string;
  scope: { patientId: string } | { team: PageTeam };
  from: number;
  until: number;
  endedAt?: number;
}

interface MPage {
  key: string;
  patientId: string;
  team: PageTeam;
  subject: Subject;
  grade: number;
  /** A de-escalation or an all-clear: sent once, nothing to acknowledge. */
  info: boolean;
  status: Page['status'];
  /**
   * held-at-open: a silence held it from the start (its first send is owed when the silence ends, if still open);
   * exact: its ladder runs from `base`, step i at base + i timeouts; held: held by a silence mid-ladder; loose:
   * released from a mid-ladder hold, its next step due at `due` (which level it pages: not asserted).
   */
  phase: 'held-at-open' | 'exact' | 'held' | 'loose';
  base: number;
  next: number;
  due: number;
  lastSendAt: number | null;
  /** The level and round of its last send: whose link is the current one. */
  current: { level: number; round: number } | null;
  sends: number;
  ackBy?: string;
}

/** The sends the model expects of one step (a tick, a grade change, an alert, a silence ended). */
interface Expectation {
  /** Exactly one send, of this level and round. */
  exact: Map<MPage, { level: number; round: number }>;
  /** Exactly one send (a page held mid-ladder whose silence ended; which level: not asserted). */
  release: Set<MPage>;
  /** One send, or none and the page exhausted (a released page's next step: which one is not asserted). */
  either: Set<MPage>;
}
const nothing = (): Expectation => ({ exact: new Map(), release: new Set(), either: new Set() });

interface Notified {
  grade: number;
  /** The teams paged at the notified grade; null where the docs do not say (after a de-escalation). */
  teams: Team[] | null;
  belowSince?: number;
}

interface GradeChange {
  kind: 'escalation' | 'de-escalation';
  condition: Condition;
  fromGrade: number;
  toGrade: number;
  teams: readonly Team[] | null;
}

const keyOf = (notificationId: string, team: string) => `${notificationId} ${team}`;
const stepsOf = (team: PageTeam) => LADDERS[team].levels.length * LADDERS[team].loops;
const levelOf = (team: PageTeam, step: number) => {
  const levels = LADDERS[team].levels.length;
  return { level: step % levels, round: Math.floor(step / levels) };
};

class Model {
  readonly pages = new Map<string, MPage>();
  readonly silences: MSilence[] = [];
  private readonly notified = new Map<string, Notified>();

  /** A silence holds its patient's or its team's pages below grade 4, and technical alerts. */
  held(p: Pick<MPage, 'patientId' | 'team' | 'grade'>, t: number) {
    if (p.grade >= UNSILENCEABLE_FROM) return false;
    return this.silences.some(
      (s) =>
        ('patientId' in s.scope ? s.scope.patientId === p.patientId : s.scope.team === p.team) &&
        s.from <= t &&
        t < Math.min(s.until, s.endedAt ?? Number.POSITIVE_INFINITY),
    );
  }

  /** What one message of the patient notifies, given its grades and the patient clock `t` (crs-rules 5). */
  onGrades(patientId: string, grades: Record<Condition, number>, t: number): GradeChange[] {
    const out: GradeChange[] = [];
    for (const condition of ['crs', 'icans'] as const) {
      const key = `${patientId} ${condition}`;
      const n = this.notified.get(key) ?? { grade: 0, teams: [] };
      const g = grades[condition];
      if (g > n.grade) {
        // Escalation: at once, to the teams of the new grade.
        const teams = ROUTING[condition][g - 1]!;
        out.push({ kind: 'escalation', condition, fromGrade: n.grade, toGrade: g, teams });
        this.notified.set(key, { grade: g, teams });
      } else if (g === n.grade) {
        // Down and back up within the hold time sends nothing.
        this.notified.set(key, { grade: n.grade, teams: n.teams });
      } else {
        const belowSince = n.belowSince ?? t;
        if (t - belowSince >= HOLD_MINUTES * MINUTE) {
          // Stayed below for the hold time: to the teams paged at the notified grade, once.
          out.push({ kind: 'de-escalation', condition, fromGrade: n.grade, toGrade: g, teams: n.teams });
          this.notified.set(key, { grade: g, teams: g === 0 ? [] : null });
        } else this.notified.set(key, { ...n, belowSince });
      }
    }
    return out;
  }

  /** A grade change or an alert: closes the open pages it answers and opens one page per team. */
  open(
    seed: { notificationId: string; patientId: string; subject: Subject; grade: number },
    kind: 'escalation' | 'de-escalation' | 'alert' | 'alert-cleared',
    teams: readonly PageTeam[],
    now: number,
  ): Expectation {
    const exp = nothing();
    // A newer grade supersedes (even an acknowledged page is paged again: the new page); a lower grade or an
    // all-clear resolves; a raised alert closes nothing.
    const closing = kind === 'escalation' ? 'superseded' : kind === 'alert' ? null : 'resolved';
    for (const p of this.pages.values()) {
      if (closing && p.status === 'open' && p.patientId === seed.patientId && p.subject === seed.subject) {
        p.status = closing;
      }
    }
    const info = kind === 'de-escalation' || kind === 'alert-cleared';
    for (const team of teams) {
      const p: MPage = {
        key: keyOf(seed.notificationId, team),
        patientId: seed.patientId,
        subject: seed.subject,
        grade: seed.grade,
        team,
        info,
        status: info ? 'info' : 'open',
        phase: 'exact',
        base: now,
        next: 1,
        due: 0,
        lastSendAt: null,
        current: null,
        sends: 0,
      };
      if (this.held(p, now)) p.phase = 'held-at-open';
      else exp.exact.set(p, { level: 0, round: 0 });
      this.pages.set(p.key, p);
    }
    return exp;
  }

  /** Time is `t`: the ladders' steps due now, and the pages whose silences have ended. */
  tick(t: number): Expectation {
    const exp = nothing();
    for (const p of this.pages.values()) {
      if (p.status !== 'open') continue;
      const timeout = timeoutMinutes(p.grade) * MINUTE;
      const held = this.held(p, t);
      if (p.phase === 'held-at-open') {
        // "a held page is sent when the silence ends if it is still open": its first send, and its ladder from then.
        if (!held) {
          Object.assign(p, { phase: 'exact', base: t, next: 1 });
          exp.exact.set(p, { level: 0, round: 0 });
        }
      } else if (p.phase === 'exact') {
        const at = p.base + p.next * timeout;
        if (at < t) throw new Error(`model: ${p.key} step ${p.next} was due at ${at}, before ${t}`);
        if (at !== t) continue;
        if (held) p.phase = 'held';
        else if (p.next === stepsOf(p.team)) p.status = 'exhausted';
        else exp.exact.set(p, levelOf(p.team, p.next++));
      } else if (p.phase === 'held') {
        if (!held) {
          Object.assign(p, { phase: 'loose', due: t + timeout });
          exp.release.add(p);
        }
      } else if (p.due === t) {
        if (held) p.phase = 'held';
        else exp.either.add(p);
      }
    }
    return exp;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The system: the reducer and the Pager over the in-memory stores.

interface Send {
  sendId: string;
  pageId: string;
  key: string;
  team: PageTeam;
  role: string;
  level: number;
  round: number;
  ackUrl?: string;
  at: number;
  /** Taken by the endpoint (not refused). */
  ok: boolean;
}

class World {
  now = T0;
  readonly attempts: Send[] = [];
  refusing: PageTeam | null = null;
  readonly audit = new MemoryAuditLog();
  readonly store = new MemoryPageStore(this.audit);
  readonly parked = new MemoryParkedSends();
  readonly states = new Map<string, PatientState | undefined>();
  readonly pager = new Pager({
    pages: this.store,
    sender: {
      send: async (m: PageMessage) => {
        const ok = m.page.team !== this.refusing;
        this.attempts.push({
          sendId: pageEvent(m, this.now).sendId,
          pageId: m.page.pageId,
          key: keyOf(m.page.notificationId, m.page.team),
          team: m.page.team,
          role: m.role,
          level: m.page.level,
          round: m.page.round,
          ...(m.ackUrl ? { ackUrl: m.ackUrl } : {}),
          at: this.now,
          ok,
        });
        if (!ok) throw new RecordRefused('the endpoint refuses this page');
      },
    },
    audit: this.audit,
    parked: this.parked,
    refusedDelayMs: 0,
    config: DEFAULT_PAGING,
    ackSecret: SECRET,
    ackBaseUrl: ACK_BASE,
  });

  /** The sends a call made: a refused send is tried again (the same message), then parked. */
  async during(call: () => Promise<unknown>): Promise<Send[]> {
    const from = this.attempts.length;
    await call();
    const sends = new Map<string, Send>();
    for (const s of this.attempts.slice(from)) {
      const k = `${s.sendId} ${s.level} ${s.round}`;
      const seen = sends.get(k);
      sends.set(k, seen ? { ...seen, ok: seen.ok || s.ok } : s);
    }
    return [...sends.values()];
  }

  async allPages(): Promise<Page[]> {
    const out: Page[] = [];
    for (const k of [1, 2, 3]) out.push(...(await this.store.patientPages(`P-${k}`, 10_000)).pages);
    return out;
  }
}

/** Asserts cheaply (the property makes hundreds of thousands of checks); vitest's diff only on a failure. */
function same<T>(actual: T, expected: T, message: string) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, message).toEqual(expected);
}

// ---------------------------------------------------------------------------------------------------------------
// Playing a script to both, checking after every step.

const CRS_MESSAGE: Record<number, Pick<DeviceMessage, 'vitals' | 'oxygen'>> = {
  1: { vitals: { temperatureC: 39 }, oxygen: { device: 'room_air' } },
  2: { vitals: { temperatureC: 39 }, oxygen: { device: 'nasal_cannula', flowLpm: 2 } },
  3: { vitals: { temperatureC: 39 }, oxygen: { device: 'non_rebreather' } },
  4: { vitals: { temperatureC: 39 }, oxygen: { device: 'bipap' } },
};

/** How often the scripts reached each behaviour, so that a property that stops reaching one fails. */
const reached = new Map<string, number>();
const reach = (what: string) => reached.set(what, (reached.get(what) ?? 0) + 1);

async function play(script: Op[]): Promise<void> {
  const world = new World();
  const model = new Model();
  const intended = new Map<string, Record<Condition, number>>();
  const inForce = new Map<string, string>(); // `${patientId} ${subject}` -> the alert raised
  /** Every send an endpoint took; `release`: the release of a page held mid-ladder (or its retry once parked). */
  const taken: { send: Send; release: boolean }[] = [];
  const refusedReleases = new Set<string>();
  const parkKey = (x: { pageId: string; level: number; round: number }) => `${x.pageId} L${x.level}R${x.round}`;
  let n = 0;
  const at = () => `${(world.now - T0) / MINUTE} min`;

  for (let k = 1; k <= 3; k++) {
    const P = `P-${k}`;
    const e = { ...enrol(P, -60), messageId: `enrol-${k}` };
    world.states.set(P, reduce(undefined, e, DEFAULT_CONFIG, arrivalOf(e)).state);
    intended.set(P, { crs: 0, icans: 0 });
  }

  /** The sends of one step against what the model expects of it. */
  const verify = (exp: Expectation, sends: Send[], what: string) => {
    const where = `${what} at ${at()}`;
    const byKey = new Map<string, Send[]>();
    for (const s of sends) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
    for (const [key, ss] of byKey) {
      const p = model.pages.get(key);
      if (!p) expect.fail(`${where}: a send for a page the model does not know (${key})`);
      same(
        ss.length,
        1,
        `${where}: ${key} is paged once in a step, not ${ss.map((s) => `L${s.level}R${s.round}`)} (a ladder moves one level a timeout)`,
      );
      const s = ss[0]!;
      const held = model.held(p, world.now);
      if (!p.info && p.lastSendAt !== null && s.at - p.lastSendAt < timeoutMinutes(p.grade) * MINUTE) {
        expect.fail(
          `${where}: ${key} paged L${s.level}R${s.round} ${(s.at - p.lastSendAt) / MINUTE} min after its last send, before its ${timeoutMinutes(p.grade)} min timeout`,
        );
      }
      // A held de-escalation or all-clear: whether it is sent once its silence ends is not asserted; never while
      // held, and at most once.
      const optional = p.info && p.phase === 'held-at-open' && p.sends === 0 && !held;
      const allowed = exp.exact.has(p) || exp.release.has(p) || exp.either.has(p) || optional;
      if (!allowed) {
        expect.fail(
          `${where}: ${key} (${p.status}, ${p.phase}${held ? ', held by a silence' : ''}) paged L${s.level}R${s.round} to ${s.role}, which the docs do not allow now`,
        );
      }
      const want = exp.exact.get(p);
      if (want) same({ level: s.level, round: s.round }, want, `${where}: ${key}'s level and round`);
      same(s.role, LADDERS[p.team].levels[s.level], `${where}: ${key} goes to its level's role`);
      same(s.ackUrl !== undefined, !p.info, `${where}: ${key} carries an acknowledge link unless informational`);
      p.lastSendAt = s.at;
      p.current = { level: s.level, round: s.round };
      p.sends++;
      if (exp.either.has(p)) p.due += timeoutMinutes(p.grade) * MINUTE;
      if (s.ok) taken.push({ send: s, release: exp.release.has(p) });
      else if (exp.release.has(p)) refusedReleases.add(parkKey(s));
      reach(
        exp.release.has(p) ? 'a page released mid-ladder' : s.level + s.round > 0 ? 'an escalation' : 'a first send',
      );
      if (s.round > 0) reach('a second round');
    }
    for (const [p, want] of exp.exact) {
      if (!byKey.has(p.key)) expect.fail(`${where}: ${p.key} was not paged (L${want.level}R${want.round} due)`);
    }
    for (const p of exp.release) {
      if (!byKey.has(p.key)) expect.fail(`${where}: ${p.key} was not paged: the silence holding it ended`);
    }
    for (const p of exp.either) if (!byKey.has(p.key)) p.status = 'exhausted'; // checked by checkPages
  };

  /** After every step: each page's status; an open one is held by a silence in force or has its next step due. */
  const checkPages = async (what: string) => {
    const where = `${what} at ${at()}`;
    const real = await world.allPages();
    same(
      real.map((r) => keyOf(r.notificationId, r.team)).sort(),
      [...model.pages.keys()].sort(),
      `${where}: one page per team of each grade change and alert`,
    );
    for (const r of real) {
      const p = model.pages.get(keyOf(r.notificationId, r.team))!;
      same(r.status, p.status, `${where}: ${p.key}'s status (model: ${p.phase})`);
      if (r.grade >= UNSILENCEABLE_FROM) same(r.heldBy, undefined, `${where}: grade 4 is never held (${p.key})`);
      if (r.status !== 'open') same(r.dueAt, null, `${where}: ${p.key} is ${r.status}: nothing pending`);
      else if (r.heldBy !== undefined) {
        same(model.held(p, world.now), true, `${where}: ${p.key} is held, and no silence of it is in force`);
      } else if (r.dueAt === null || r.dueAt <= world.now) {
        expect.fail(`${where}: open ${p.key} is neither held nor has its next step in the future (${r.dueAt})`);
      }
    }
  };

  /** An acknowledgement's answer against the page's status in the model, which then follows the answer. */
  const checkAck = (p: MPage, r: AckResult, where: string, current: boolean) => {
    const answer = r.ok ? `ok changed=${r.changed}` : r.code;
    const was = p.status;
    if (was === 'open' && current) same(answer, 'ok changed=true', `${where}: an open page is acknowledged`);
    if (was === 'acknowledged') {
      same(answer, 'ok changed=false', `${where}: acknowledged before`);
      same(r.ok && r.page.ack?.by, p.ackBy, `${where}: the answer says who acknowledged first`);
    }
    if (was === 'superseded' || was === 'resolved' || was === 'info') {
      same(answer, 'not-open', `${where}: nothing left to acknowledge`);
    }
    // An exhausted page, an earlier level's link: not asserted.
    if (r.ok && r.changed) Object.assign(p, { status: 'acknowledged', ackBy: r.page.ack?.by });
    reach(`acknowledging a page ${was}: ${answer}`);
  };

  const message = async (P: string, sections: Partial<DeviceMessage>, what: string) => {
    const m = msg(P, (world.now - T0) / MINUTE, sections as never, `m${++n}`);
    const step = reduce(world.states.get(P), m, DEFAULT_CONFIG, arrivalOf(m));
    world.states.set(P, step.state);
    if (step.kind !== 'applied') expect.fail(`${what}: a new message taken for a duplicate`);
    const want = intended.get(P)!;
    same(
      { crs: step.assessment.crsGrade, icans: step.assessment.icansGrade },
      want,
      `script: ${what} makes the grades it means to`,
    );
    const expected = model.onGrades(P, want, world.now);
    const shape = (x: GradeChange, teams: readonly Team[] | null) =>
      `${x.kind} ${x.condition} ${x.fromGrade}->${x.toGrade}${teams ? ` ${[...teams].sort().join('+')}` : ''}`;
    const byCondition = (c: Condition) => expected.find((x) => x.condition === c);
    same(
      step.notifications.map((x) => shape(x, byCondition(x.condition)?.teams === null ? null : x.teams)).sort(),
      expected.map((x) => shape(x, x.teams)).sort(),
      `${what} at ${at()}: the grade changes notified, and to whom (crs-rules section 5)`,
    );
    for (const note of step.notifications) {
      reach(`notified: ${note.kind}`);
      const exp = model.open(
        { notificationId: note.notificationId, patientId: P, subject: note.condition, grade: note.toGrade },
        note.kind,
        note.teams,
        world.now,
      );
      const sends = await world.during(() => world.pager.onNotification(note, world.now));
      verify(exp, sends, `${what}: ${shape(note, note.teams)}`);
      const teams = sends.map((s) => s.team);
      same(teams, [...teams].sort(), `${what}: the pages of one grade change go out in the order of the teams' names`);
    }
  };

  for (const step of script) {
    const what = JSON.stringify(step);
    const parkedBefore = await world.parked.list();
    const attemptsBefore = world.attempts.length;
    switch (step.op) {
      case 'crs':
      case 'icans': {
        const P = `P-${step.patient}`;
        intended.get(P)![step.op] = step.grade;
        const sections =
          step.op === 'crs' ? CRS_MESSAGE[step.grade]! : { neuro: { consciousness: CONSCIOUSNESS[step.grade]! } };
        await message(P, sections, what);
        break;
      }
      case 'reading':
        await message(`P-${step.patient}`, { vitals: { heartRate: 80 } }, what);
        break;
      case 'alert': {
        const P = `P-${step.patient}`;
        const raised = inForce.get(`${P} ${step.subject}`);
        const alertId = `${step.subject}|${P}|#${++n}`;
        if (raised) inForce.delete(`${P} ${step.subject}`);
        else inForce.set(`${P} ${step.subject}`, alertId);
        const exp = model.open(
          { notificationId: alertId, patientId: P, subject: step.subject, grade: 0 },
          raised ? 'alert-cleared' : 'alert',
          ALERT_TEAMS[step.subject],
          world.now,
        );
        const alert = {
          alertId,
          patientId: P,
          subject: step.subject,
          cleared: raised !== undefined,
          summary: `${step.subject} ${raised ? 'cleared' : 'raised'}`,
        };
        verify(exp, await world.during(() => world.pager.onAlert(alert, world.now)), what);
        break;
      }
      case 'wait':
        for (let m = 0; m < step.minutes; m++) {
          world.now += MINUTE;
          const exp = model.tick(world.now);
          verify(exp, await world.during(() => world.pager.onTick(world.now)), `${what}, tick`);
          await checkPages(`${what}, tick`);
        }
        break;
      case 'silence': {
        const s: MSilence = {
          id: `s${model.silences.length + 1}`,
          scope: step.team ? { team: step.team } : { patientId: `P-${step.patient}` },
          from: world.now,
          until: world.now + step.minutes * MINUTE,
        };
        model.silences.push(s);
        const silence = { ...s, silenceId: s.id, createdBy: 'Nurse B', reason: 'transfer' };
        verify(nothing(), await world.during(() => world.pager.silence(silence, world.now)), what);
        break;
      }
      case 'end-silence': {
        const s = model.silences[step.which % Math.max(1, model.silences.length)];
        if (!s) break;
        s.endedAt ??= world.now;
        const exp = model.tick(world.now); // what it held is paged now, if still open
        verify(exp, await world.during(() => world.pager.endSilence(s.id, 'Nurse B', world.now)), what);
        break;
      }
      case 'ack': {
        const pages = [...model.pages.values()];
        const p = pages[step.which % Math.max(1, pages.length)];
        if (!p) break;
        const real = (await world.allPages()).find((r) => keyOf(r.notificationId, r.team) === p.key)!;
        let r: AckResult | undefined;
        const sends = await world.during(async () => {
          r = await world.pager.acknowledge(real.pageId, 'Dr A', step.via, world.now);
        });
        verify(nothing(), sends, what);
        checkAck(p, r!, `${what}: ${p.key} (${p.status}) at ${at()}`, true);
        break;
      }
      case 'ack-link':
      case 'ack-forged': {
        const links = taken.filter((t) => t.send.ackUrl !== undefined).map((t) => t.send);
        const s = links[step.which % Math.max(1, links.length)];
        if (!s) break;
        const p = model.pages.get(s.key)!;
        const token = s.ackUrl!.slice(ACK_BASE.length);
        const forged =
          step.op === 'ack-link'
            ? undefined
            : step.how === 'other-secret'
              ? signAck(WRONG_SECRET, { pageId: s.pageId, role: s.role, expiresAt: world.now + 60 * MINUTE })
              : `${token.slice(0, 3)}${token[3] === 'A' ? 'B' : 'A'}${token.slice(4)}`; // a character of it changed
        let r: AckResult | undefined;
        const sends = await world.during(async () => {
          r = await world.pager.acknowledgeLink(forged ?? token, 'Dr B', world.now);
        });
        verify(nothing(), sends, what);
        const where = `${what}: the link of ${p.key} L${s.level}R${s.round} sent at ${(s.at - T0) / MINUTE} min, used at ${at()} (${p.status})`;
        const answer = r!.ok ? 'ok' : r!.code;
        if (forged) {
          same(answer, 'link-forged', `${where}: a forged or altered link is refused`);
          reach('a forged link');
        } else if (world.now - s.at >= (ACK_LINK_MINUTES + 1) * MINUTE) {
          same(answer, 'link-expired', `${where}: an expired link is refused`);
        } else if (world.now - s.at < (ACK_LINK_MINUTES - 1) * MINUTE) {
          checkAck(p, r!, where, p.current?.level === s.level && p.current.round === s.round);
        }
        break;
      }
      case 'refuse':
        world.refusing = step.team;
        break;
      case 'retry-parked': {
        const sends = await world.during(async () => {
          for (const send of parkedBefore) await world.pager.retryParked(send, world.now);
        });
        // Each parked send is sent again once, and nothing else; what is refused again is parked again.
        same(sends.map(parkKey).sort(), parkedBefore.map(parkKey).sort(), `${what}: the parked sends, once each`);
        same(
          (await world.parked.list()).map(parkKey).sort(),
          sends
            .filter((x) => !x.ok)
            .map(parkKey)
            .sort(),
          `${what}: what is refused again is parked again`,
        );
        for (const x of sends) if (x.ok) taken.push({ send: x, release: refusedReleases.has(parkKey(x)) });
        if (sends.some((x) => x.ok)) reach('a parked send retried');
        break;
      }
    }
    if (step.op !== 'wait') await checkPages(what);
    // A refused send is tried 3 times, then parked (docs/conservation.md); its ladder goes on (checked above).
    const refused = world.attempts.slice(attemptsBefore).filter((x) => !x.ok);
    const parked = new Set((await world.parked.list()).map(parkKey));
    for (const a of refused) {
      same(parked.has(parkKey(a)), true, `${what}: a refused send is parked (${parkKey(a)})`);
      const tries = refused.filter((x) => x.sendId === a.sendId && x.level === a.level && x.round === a.round);
      same(tries.length, 3, `${what}: a refused send is tried 3 times (${parkKey(a)})`);
    }
  }

  for (const p of model.pages.values()) reach(`a page ending ${p.status}`);
  // One send per page, level and round (a repeat keeps its sendId). The release of a page held mid-ladder is left
  // out: which level it pages is not asserted.
  const byLevel = new Map<string, Set<string>>();
  for (const { send, release } of taken) {
    if (release) continue;
    const k = `${send.key} L${send.level}R${send.round}`;
    byLevel.set(k, (byLevel.get(k) ?? new Set()).add(send.sendId));
  }
  for (const [k, ids] of byLevel) same(ids.size, 1, `${k}: sent under one sendId, not ${[...ids]}`);
  // And no two sends share a sendId: receivers drop a repeat by it (docs/paging.md), so a new send under an old
  // sendId is a page dropped. (Nothing fails in these scripts: none of these sends is a repeat.)
  const ids = new Map<string, string>();
  for (const { send } of taken) {
    const what = `${send.key} L${send.level}R${send.round} to ${send.role} at ${(send.at - T0) / MINUTE} min`;
    if (ids.has(send.sendId)) expect.fail(`sendId ${send.sendId} of ${what} was the sendId of ${ids.get(send.sendId)}`);
    ids.set(send.sendId, what);
  }
}

/**
 * Scripts that reach every behaviour the coverage check below names, whatever the random draw, so that the check
 * does not depend on luck (they run first, as fixed examples of the property).
 */
const COVERS: Op[][] = [
  // A severe grade's ladders walked to their ends (both rounds); then CRS down and ICANS back to 0, held for an hour.
  [
    { op: 'crs', patient: 1, grade: 3 },
    { op: 'wait', minutes: 30 },
    { op: 'wait', minutes: 10 },
    { op: 'crs', patient: 1, grade: 1 },
    { op: 'icans', patient: 1, grade: 1 },
    { op: 'icans', patient: 1, grade: 0 },
    { op: 'wait', minutes: 30 },
    { op: 'wait', minutes: 30 },
    { op: 'wait', minutes: 2 },
    { op: 'reading', patient: 1 },
  ],
  // A page superseded and acknowledged (twice), a forged link.
  [
    { op: 'crs', patient: 1, grade: 1 },
    { op: 'crs', patient: 1, grade: 2 },
    { op: 'ack', which: 0, via: 'api' },
    { op: 'ack', which: 1, via: 'board' },
    { op: 'ack', which: 1, via: 'api' },
    { op: 'ack-forged', which: 0, how: 'other-secret' },
  ],
  // A page's next step held by a silence and released when it ends; a refused send parked, then retried.
  [
    { op: 'crs', patient: 3, grade: 1 },
    { op: 'silence', patient: 3, team: null, minutes: 20 },
    { op: 'wait', minutes: 21 },
    { op: 'refuse', team: 'hematology' },
    { op: 'crs', patient: 3, grade: 2 },
    { op: 'refuse', team: null },
    { op: 'retry-parked' },
  ],
];

describe('the paging rules as documented, against the reducer and the Pager', () => {
  const numRuns = Number(process.env.PAGING_MODEL_RUNS ?? 200);

  it(`agree over ${numRuns} random scripts`, { timeout: 120_000 }, async () => {
    reached.clear();
    await fc.assert(
      fc.asyncProperty(scriptArb, (script) => play(script)),
      { numRuns, examples: COVERS.map((script) => [script]) },
    );
    // The scripts reach what the model is about (a property that stopped reaching these would pass vacuously).
    for (const what of [
      'a first send',
      'an escalation',
      'a second round',
      'a page released mid-ladder',
      'notified: de-escalation',
      'a page ending superseded',
      'a page ending resolved',
      'a page ending exhausted',
      'a page ending acknowledged',
      'acknowledging a page open: ok changed=true',
      'acknowledging a page acknowledged: ok changed=false',
      'acknowledging a page superseded: not-open',
      'a forged link',
      'a parked send retried',
    ]) {
      expect(reached.get(what) ?? 0, `the scripts reached ${what}`).toBeGreaterThan(0);
    }
  });

  // Found by the property above (shrunk), kept as fixed examples.
  //
  // Two silences overlap over a page. The page was released when the silence named in its `heldBy` ended, while
  // the other still held it: its ladder timed from the first end (the attending paged 14 min after the fellow), or,
  // when another page was held by the second silence, the tick stopped at that earlier time and no held page was
  // ever released. Now a page whose silence ends while another holds it is held by that one (shared/domain/paging.ts
  // tick). docs/paging.md: "a page nobody acknowledges in time goes to the next role"; "a held page is sent when the
  // silence ends if it is still open".
  it.each([
    [
      'the ladder waits its full timeout after the later silence ends',
      [
        { op: 'silence', patient: 1, team: null, minutes: 1 },
        { op: 'silence', patient: 1, team: null, minutes: 2 },
        { op: 'crs', patient: 1, grade: 1 },
        { op: 'wait', minutes: 16 },
      ],
    ],
    [
      'pages are released when the last silence holding them ends',
      [
        { op: 'silence', patient: 1, team: null, minutes: 1 },
        { op: 'silence', patient: 1, team: null, minutes: 2 },
        { op: 'icans', patient: 1, grade: 1 },
        { op: 'wait', minutes: 1 },
        { op: 'alert', patient: 1, subject: 'stale-feed' },
        { op: 'wait', minutes: 1 },
      ],
    ],
  ] satisfies [string, Op[]][])('overlapping silences: %s', async (_, script) => {
    await play(script);
  });

  // Parked sends of one page at two levels, retried once the page has moved on, were both resent under the page's
  // current sendId (`${pageId}#${rev}`): a receiver dropping repeats by sendId (docs/paging.md) kept the fellow's
  // resend and dropped the attending's. A resent parked send is now named by its level and round
  // (shared/domain/page-event.ts).
  it('parked sends: each resend of one page has its own sendId', async () => {
    await play([
      { op: 'refuse', team: 'hematology' },
      { op: 'crs', patient: 1, grade: 1 },
      { op: 'wait', minutes: 15 },
      { op: 'refuse', team: null },
      { op: 'wait', minutes: 15 },
      { op: 'retry-parked' },
    ]);
  });
});
