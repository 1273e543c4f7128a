// Differential test of who is paged and when: the engine's notification events against a model written from
// crs-rules.md section 5 alone (test/support/notify-model.ts), fed the engine's own assessments so that only the
// notification decisions are compared. Random courses in random and nearly-ordered arrival orders, under the
// default routing and hold, Lee 2014, and sites with other routing and holds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { configFor, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { Notification } from '#domain/page.ts';
import { reduce, type Assessment } from '#domain/reducer.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { deserializeState, serializeState, type PatientState } from '#domain/state.ts';
import { clinicalCourse, course, nearlyOrdered, permutation } from '#test/support/arbitraries.ts';
import { CRS_MESSAGE, enrol, msg } from '#test/support/messages.ts';
import { expectedNotifications, type ExpectedNotification } from '#test/support/notify-model.ts';

const RUNS = Number(process.env.NOTIFY_MODEL_RUNS ?? 100);
const TIMEOUT = Math.max(30_000, RUNS * 100);

const P = 'P';
/** Routes that differ per grade and are not nested, so that every page's teams tell which grade chose them. */
const siteRouting: GradingConfig['routing'] = {
  crs: [['icu'], ['hematology', 'icu'], ['radiology'], ['neurology', 'icu']],
  icans: [['neurology'], ['icu'], ['hematology'], ['radiology', 'neurology']],
};
/** A site that pages nobody at some grades (the configuration allows an empty route). */
const sparseRouting: GradingConfig['routing'] = {
  crs: [[], ['hematology'], [], ['icu']],
  icans: [['neurology'], [], ['icu'], []],
};
const smallWindow = configFor('astct2019', { dedupeWindow: 16 });
const configs: [string, GradingConfig][] = [
  ['ASTCT 2019, default routing, hold 60', configFor('astct2019')],
  ['Lee 2014, default routing, hold 60', configFor('lee2014')],
  ['site routing, hold 30', configFor('astct2019', { holdMinutes: 30, routing: siteRouting })],
  ['site routing, hold 0', configFor('astct2019', { holdMinutes: 0, routing: siteRouting })],
  ['Lee 2014, site routing, hold 7.5', configFor('lee2014', { holdMinutes: 7.5, routing: siteRouting })],
  ['episode ends after 2 h at CRS 0, hold 60', configFor('astct2019', { episodeEndsAfterHoursAtGrade0: 2 })],
  ['routes with no team at some grades, hold 45', configFor('astct2019', { holdMinutes: 45, routing: sparseRouting })],
];

interface Ran {
  assessments: Assessment[];
  /** Per applied message, the notifications it sent. */
  sent: Notification[][];
  duplicates: number;
}

/** How the state is kept between messages: in memory, or stored and read back as a backend does (a restart). */
type Storage = 'memory' | 'json' | 'compact';
const keep: Record<Storage, (s: PatientState) => PatientState> = {
  memory: (s) => s,
  json: (s) => deserializeState(serializeState(s)),
  compact: (s) => expandState(JSON.parse(JSON.stringify(compactState(s)))),
};

/**
 * Minutes each message's observedAt is off the server's clock when it arrives (a device clock running fast or
 * slow), or undefined for a file replay (no arrival time). The server clock never goes back.
 */
type Skews = number[] | undefined;

function runArrivals(
  arrivals: DeviceMessage[],
  cfg: GradingConfig,
  storage: Storage = 'memory',
  skews?: Skews,
  /** A backend's long-term record of the digests applied under each messageId, when it keeps one. */
  record?: Map<string, string[]>,
): Ran {
  let state: PatientState | undefined;
  const ran: Ran = { assessments: [], sent: [], duplicates: 0 };
  let server = Number.NEGATIVE_INFINITY;
  for (const [i, m] of arrivals.entries()) {
    const arrival = arrivalOf(m, record?.get(m.messageId));
    if (skews) {
      server = Math.max(server, Date.parse(m.observedAt) - skews[i % skews.length]! * 60_000);
      Object.assign(arrival, { receivedAt: server });
    }
    const step = reduce(state, m, cfg, arrival);
    state = keep[storage](step.state);
    if (step.kind === 'duplicate') ran.duplicates++;
    else {
      record?.set(m.messageId, [...(record.get(m.messageId) ?? []), step.digest]);
      ran.assessments.push(step.assessment);
      ran.sent.push(step.notifications);
    }
  }
  return ran;
}

const line = (n: Pick<ExpectedNotification, 'kind' | 'condition' | 'fromGrade' | 'toGrade' | 'teams'>) =>
  `${n.kind} ${n.condition} ${n.fromGrade}->${n.toGrade} ${[...n.teams].sort().join('+')}`;
/** Per applied message, its pages as sorted lines (the order of CRS and ICANS within one message is not a rule). */
const engineLines = (ran: Ran) => ran.sent.map((ns) => ns.map(line).sort());
function modelLines(ran: Ran, cfg: GradingConfig): string[][] {
  const out: string[][] = ran.assessments.map(() => []);
  for (const n of expectedNotifications(ran.assessments, cfg)) out[n.step]!.push(line(n));
  return out.map((l) => l.sort());
}

/** The first applied message where engine and model differ, with the grades up to it, or undefined. */
function disagreement(ran: Ran, cfg: GradingConfig) {
  const engine = engineLines(ran);
  const model = modelLines(ran, cfg);
  const k = engine.findIndex((e, i) => JSON.stringify(e) !== JSON.stringify(model[i]));
  if (k < 0) return undefined;
  const grades = ran.assessments
    .slice(0, k + 1)
    .map((a) => `${a.at.slice(11, 16)} crs ${a.crsGrade} icans ${a.icansGrade}`);
  return { at: k, engine: engine[k], model: model[k], grades };
}

/** Each notification's id, time and cause: unique per grade change, never from a messageId (grading-rules §11). */
function checkIdentities(ran: Ran) {
  const ids = new Set<string>();
  ran.sent.forEach((ns, i) => {
    const a = ran.assessments[i]!;
    for (const n of ns) {
      expect(n.notificationId).toBe(`${n.condition}|${P}|#${i + 1}`);
      expect(ids.has(n.notificationId)).toBe(false);
      ids.add(n.notificationId);
      expect(n.at).toBe(a.at);
      expect(n.causedBy).toBe(a.messageId);
      expect(n.patientId).toBe(P);
    }
  });
}

type Order = 'observed' | 'shuffled' | 'nearly';
function arrange(ordered: DeviceMessage[], order: Order, keys: number[]): DeviceMessage[] {
  if (order === 'observed') return ordered;
  const idx = order === 'shuffled' ? permutation(ordered.length, keys) : nearlyOrdered(ordered.length, keys, 4);
  return idx.map((i) => ordered[i]!);
}

// ---- Fixed courses that reach every kind of decision whatever the random draw (coverage below rests on them).
const ice = (m: number, iceScore: number, id?: string) => msg(P, m, { neuro: { iceScore } }, id);
const crs = (m: number, grade: number, id?: string) => msg(P, m, CRS_MESSAGE[grade]!, id);
/** ICANS 3, down to 1 and up to 2 within the hold (de-escalation 3->2), a flap at 2, then 2->1 and 1->0. */
const icansCourse: DeviceMessage[] = [
  enrol(P),
  ice(0, 2),
  ice(10, 8),
  ice(40, 5),
  ice(70, 5),
  ice(80, 8),
  ice(100, 5),
  ice(110, 8),
  ice(115, 8),
  ice(170, 8),
  ice(180, 10),
  ice(180, 10, 'same-instant'),
  ice(240, 10),
  ice(250, 2),
];
/** CRS 1, 3, down to 0, back up to 3 within the hold (a flap), down for good, then 4; every messageId reused. */
const crsCourse: DeviceMessage[] = [
  enrol(P),
  crs(0, 1),
  crs(10, 3),
  crs(20, 0),
  crs(25, 3),
  crs(30, 0),
  crs(30, 0),
  crs(95, 0),
  crs(100, 2),
  crs(130, 1),
  crs(135, 1),
  crs(200, 4),
].map((m, i) => (i === 0 ? m : { ...m, messageId: 'reused' }));
/** Late messages: a drop arriving after the clock moved on, and a message whose clock does not move. */
const lateCourse: DeviceMessage[] = [
  enrol(P),
  ice(0, 1),
  ice(50, 10),
  ice(60, 10),
  ice(30, 9),
  ice(55, 10),
  ice(120, 10),
];
const inOrder = [0];
const examples: [DeviceMessage[], Order, number[], Storage, Skews][] = [
  [icansCourse, 'observed', inOrder, 'memory', undefined],
  [crsCourse, 'observed', inOrder, 'compact', undefined],
  [lateCourse, 'observed', inOrder, 'json', undefined],
  [icansCourse, 'shuffled', [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7], 'memory', [0, -20, 5, -35]],
];

const courses = fc.oneof(
  course(P),
  clinicalCourse(P),
  clinicalCourse(P, { maxMessages: 120 }),
  clinicalCourse(P, { reinfusion: true }),
);
const orders = fc.constantFrom<Order>('observed', 'shuffled', 'nearly');
const storages = fc.constantFrom<Storage>('memory', 'json', 'compact');
const skewss = fc.option(fc.array(fc.integer({ min: -40, max: 40 }), { minLength: 1, maxLength: 60 }), {
  nil: undefined,
});
const keys = fc.array(fc.integer(), { minLength: 1, maxLength: 300 });

interface Coverage {
  escalation: number;
  deEscalation: number;
  /** A de-escalation to a grade other than the first one below the notified grade (it moved within the hold). */
  movedWithinHold: number;
  /** Below the notified grade and back to it within the hold: nothing sent. */
  flap: number;
  /** A de-escalation from a grade a de-escalation had set (its teams are that page's teams). */
  chained: number;
  duplicate: number;
}

function cover(c: Coverage, ran: Ran, cfg: GradingConfig) {
  const model = expectedNotifications(ran.assessments, cfg);
  c.duplicate += ran.duplicates;
  for (const condition of ['crs', 'icans'] as const) {
    const mine = model.filter((n) => n.condition === condition);
    const grade = (i: number) => (condition === 'crs' ? ran.assessments[i]!.crsGrade : ran.assessments[i]!.icansGrade);
    mine.forEach((n, j) => {
      if (n.kind === 'escalation') return void c.escalation++;
      c.deEscalation++;
      if (mine[j - 1]?.kind === 'de-escalation') c.chained++;
      let first = n.step;
      while (first > 0 && grade(first - 1) < n.fromGrade) first--;
      if (grade(first) !== n.toGrade) c.movedWithinHold++;
    });
    // A run below the notified grade that ended back at it with nothing sent.
    let notified = 0;
    let below = false;
    ran.assessments.forEach((_, i) => {
      const sent = mine.find((n) => n.step === i);
      if (sent) [notified, below] = [sent.toGrade, false];
      else if (grade(i) < notified) below = true;
      else if (below && grade(i) === notified) [below, c.flap] = [false, c.flap + 1];
    });
  }
}

describe('who is paged and when: engine against the section 5 model', () => {
  it.each(configs)(
    '%s: the engine pages exactly what the model says, with unique ids',
    (_name, cfg) => {
      const c: Coverage = { escalation: 0, deEscalation: 0, movedWithinHold: 0, flap: 0, chained: 0, duplicate: 0 };
      fc.assert(
        fc.property(courses, orders, keys, storages, skewss, (ordered, order, k, storage, skews) => {
          const ran = runArrivals(arrange(ordered, order, k), cfg, storage, skews);
          expect(disagreement(ran, cfg)).toBeUndefined();
          checkIdentities(ran);
          cover(c, ran, cfg);
        }),
        { numRuns: RUNS, examples },
      );
      expect(c.duplicate).toBeGreaterThan(0);
      expect(c.escalation).toBeGreaterThan(0);
      expect(c.deEscalation).toBeGreaterThan(0);
      expect(c.chained).toBeGreaterThan(0);
      // With a hold of 0 every drop is sent at once: nothing can move or come back within it.
      if (cfg.holdMinutes > 0) expect(c.movedWithinHold).toBeGreaterThan(0);
      if (cfg.holdMinutes > 0) expect(c.flap).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it('a site that changes its routing and hold mid-course: each decision by the configuration in force', () => {
    const site = configs[2]![1];
    fc.assert(
      fc.property(courses, orders, keys, fc.nat(), (ordered, order, k, switchAt) => {
        const arrivals = arrange(ordered, order, k);
        const at = switchAt % (arrivals.length + 1);
        const cfgAt = (i: number) => (i < at ? configs[0]![1] : site);
        let state: PatientState | undefined;
        const ran: Ran = { assessments: [], sent: [], duplicates: 0 };
        /** The arrival index of each applied message (duplicates are not assessed). */
        const appliedIndex: number[] = [];
        arrivals.forEach((m, i) => {
          const step = reduce(state, m, cfgAt(i), arrivalOf(m));
          state = step.state;
          if (step.kind === 'duplicate') return void ran.duplicates++;
          appliedIndex.push(i);
          ran.assessments.push(step.assessment);
          ran.sent.push(step.notifications);
        });
        const model = ran.assessments.map((): string[] => []);
        for (const n of expectedNotifications(ran.assessments, (s) => cfgAt(appliedIndex[s]!)))
          model[n.step]!.push(line(n));
        expect(engineLines(ran)).toEqual(model.map((l) => l.sort()));
      }),
      { numRuns: RUNS, examples: [[icansCourse, 'observed', inOrder, 7]] },
    );
  });

  it('named: CRS 3 -> 2 stands down hematology and ICU, and so does a later 2 -> 1 (the teams paged at 2)', () => {
    const ran = runArrivals([enrol(P), crs(0, 3), crs(10, 2), crs(70, 2), crs(80, 1), crs(140, 1)], configs[0]![1]);
    expect(ran.sent.flat().map(line)).toEqual([
      'escalation crs 0->3 hematology+icu',
      'de-escalation crs 3->2 hematology+icu',
      'de-escalation crs 2->1 hematology+icu',
    ]);
  });

  it('notification ids stay unique when every message of a course reuses one messageId', () => {
    fc.assert(
      fc.property(clinicalCourse(P), orders, keys, storages, (ordered, order, k, storage) => {
        const arrivals = arrange(ordered, order, k).map((m) => ({ ...m, messageId: 'one-id' }));
        const ran = runArrivals(arrivals, configs[0]![1], storage);
        expect(disagreement(ran, configs[0]![1])).toBeUndefined();
        checkIdentities(ran);
      }),
      { numRuns: RUNS, examples: [[crsCourse, 'observed', inOrder, 'compact']] },
    );
  });

  it('an exact duplicate sends nothing: the pages are those of the course without it', () => {
    fc.assert(
      fc.property(
        courses,
        orders,
        keys,
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }),
        (o, order, k, dups) => {
          const arrivals = arrange(o, order, k);
          const withDups = [...arrivals];
          for (const [which, where] of dups) {
            const original = arrivals[which % arrivals.length]!;
            const at = withDups.indexOf(original); // a copy arrives after the original, wherever earlier copies moved it
            withDups.splice(at + 1 + (where % (withDups.length - at)), 0, structuredClone(original));
          }
          const plain = runArrivals(arrivals, configs[0]![1]);
          const duplicated = runArrivals(withDups, configs[0]![1]);
          expect(duplicated.duplicates).toBe(plain.duplicates + dups.length);
          expect(duplicated.sent).toEqual(plain.sent);
          // The smallest window, with a backend's long-term record of what each id was applied with: however late.
          const narrow = runArrivals(withDups, smallWindow, 'compact', undefined, new Map());
          expect(narrow.duplicates).toBe(plain.duplicates + dups.length);
          expect(narrow.sent).toEqual(runArrivals(arrivals, smallWindow, 'memory', undefined, new Map()).sent);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
