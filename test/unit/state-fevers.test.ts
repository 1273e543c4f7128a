// States stored before the state kept latestFever and maskedFever (it kept the episode's earliest febrile time,
// feverOnset): SQLite and DynamoDB hold them today. Written by that code (commit c54a7af) after the messages of
// each course, in both stored forms (JSON version 2, compact version 3), with the grades that code gave.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { configFor } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { droppedFeverMasked, episodeStart, gradeCrs, gradeIcans } from '#domain/grading.ts';
import { reduce } from '#domain/reducer.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { deserializeState, serializeState, type PatientState } from '#domain/state.ts';

interface Course {
  name: string;
  scheme: 'astct2019' | 'lee2014';
  endAfter: number | null;
  messages: DeviceMessage[];
  /** The state after the first `after` messages, as stored, and the grades after that message. */
  steps: { after: number; json: string; compact: unknown[]; crs: number; icans: number }[];
}

const { courses } = JSON.parse(
  readFileSync(new URL('../fixtures/patient-states-v2-onset.json', import.meta.url), 'utf8'),
) as { courses: Course[] };
const cfgOf = (c: Course) =>
  configFor(c.scheme, c.endAfter === null ? {} : { episodeEndsAfterHoursAtGrade0: c.endAfter });
/** The courses the old code graded below the rules (test/support/waiver-cases.ts): it grades them right now. */
const fixed = (c: Course) => /^[B-E]: /.test(c.name);
/** The onset in the compact form, where the code before reads it (position 12, seconds before the clock). */
function compactOnset(s: PatientState): number | undefined {
  const a = compactState(s);
  const t = a[12] as number | null;
  return t === null ? undefined : s.clock - Math.round(t * 1000);
}

describe('a state stored with feverOnset (before latestFever and maskedFever)', () => {
  it.each(courses.map((c) => [c.name, c] as const))('%s: loads in both forms and grades as it did', (_n, c) => {
    const cfg = cfgOf(c);
    for (const step of c.steps) {
      const fromJson = deserializeState(step.json);
      const fromCompact = expandState(step.compact);
      expect(fromCompact).toEqual(fromJson);
      for (const s of [fromJson, fromCompact])
        expect([gradeCrs(s, cfg).grade, gradeIcans(s).grade], `after ${step.after}`).toEqual([step.crs, step.icans]);
      // Written back in today's forms, it reads as the same state.
      expect(deserializeState(serializeState(fromJson))).toEqual(fromJson);
      expect(expandState(JSON.parse(JSON.stringify(compactState(fromJson))))).toEqual(fromJson);
    }
  });

  // Only the courses with a state stored before their last message: from the last one, the course has nothing
  // to go on with, and the test below asserted nothing (15 of its cases passed with any grades).
  const goOn = courses.filter((c) => !fixed(c) && c.steps.some((s) => s.after < c.messages.length));

  it('has courses that go on from a stored state', () => {
    expect(goOn.length).toBeGreaterThan(0);
  });

  it.each(goOn.map((c) => [c.name, c] as const))(
    '%s: the course goes on from any stored state with the grades it had',
    (_n, c) => {
      const cfg = cfgOf(c);
      let checked = 0;
      for (const from of c.steps) {
        let state: PatientState = deserializeState(from.json);
        let grades = [from.crs, from.icans];
        for (let k = from.after; k < c.messages.length; k++) {
          const step = reduce(state, c.messages[k]!, cfg, arrivalOf(c.messages[k]!));
          state = step.state;
          if (step.kind === 'applied') grades = [step.assessment.crsGrade, step.assessment.icansGrade];
          const then = c.steps.find((s) => s.after === k + 1);
          if (!then) continue;
          expect(grades, `from ${from.after}, after ${k + 1}`).toEqual([then.crs, then.icans]);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
    },
  );

  it.each(courses.map((c) => [c.name, c] as const))(
    '%s: a state written now, read as the code before reads it, waives fever and ends episodes as this code does',
    (_n, c) => {
      const cfg = cfgOf(c);
      let state: PatientState | undefined;
      for (const m of c.messages) {
        state = reduce(state, m, cfg, arrivalOf(m)).state;
        const onset = (JSON.parse(serializeState(state)) as { feverOnset?: number }).feverOnset;
        expect(compactOnset(state)).toBe(onset);
        const start = episodeStart(state);
        const waived =
          (state.maskedFever !== undefined && state.maskedFever >= start) || droppedFeverMasked(state) !== undefined;
        const hadFever = state.latestFever !== undefined && state.latestFever >= start;
        // The code before: the waiver when the latest masking medication is at or after the onset; an episode
        // ends at CRS 0 only when it has an onset.
        expect(onset !== undefined && state.lastMaskingAt !== undefined && state.lastMaskingAt >= onset).toBe(waived);
        expect(onset !== undefined).toBe(hadFever);
      }
    },
  );

  it('a masking medication at the very instant of the stored onset still waives fever (at or after it)', () => {
    // Section 1, fever waiver: a masking medication "with an `observedAt` at or after the time grade >= 1 was
    // first reached" waives fever; the code before held the waiver when lastMaskingAt >= feverOnset.
    const p15 = courses.find((c) => c.name === 'P-15')!;
    const stored = p15.steps.at(-1)!;
    const old = JSON.parse(stored.json) as { feverOnset: number; lastMaskingAt: number };
    const s = deserializeState(JSON.stringify({ ...old, lastMaskingAt: old.feverOnset }));
    expect(s.maskedFever).toBe(old.feverOnset);
    expect(gradeCrs(s, cfgOf(p15)).grade).toBe(2); // afebrile, hypotensive: the waiver holds
  });

  it('derives the latest fever, and the latest fever at or before the latest masking medication', () => {
    const p15 = courses.find((c) => c.name === 'P-15')!;
    const stored = p15.steps.at(-1)!;
    expect(JSON.parse(stored.json)).toHaveProperty('feverOnset');
    const s = deserializeState(stored.json);
    const onset = (JSON.parse(stored.json) as { feverOnset: number }).feverOnset;
    expect(s.maskedFever).toBeGreaterThanOrEqual(onset);
    expect(s.maskedFever).toBeLessThanOrEqual(s.lastMaskingAt!);
    expect(s.latestFever).toBeGreaterThanOrEqual(s.maskedFever!);
  });
});

describe('unmaskedFever in the stored forms (the fever a masking medication charted late follows)', () => {
  const cfg = configFor('astct2019');
  const P = 'UF';
  const T0 = Date.parse('2026-01-10T08:00:00Z');
  const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
  const m = (id: string, min: number, sections: Partial<DeviceMessage>): DeviceMessage => ({
    messageId: `${P}-${id}`,
    patientId: P,
    observedAt: at(min),
    source: { deviceId: 'd', kind: 'monitor' },
    ...sections,
  });
  const enrolled = m('e', -60, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-10T07:00:00Z' } });
  // 38.5 °C at 08:00, then 38.5 °C at 09:00, which covers it (the code before feverHistory kept only the latter).
  const fevers = [m('f1', 0, { vitals: { temperatureC: 38.5 } }), m('f2', 60, { vitals: { temperatureC: 38.5 } })];
  // Paracetamol charted late as given at 08:30; the next day, afebrile, two low MAP readings.
  const rest = [
    m('p', 30, { medications: [{ drug: 'acetaminophen' }] }),
    m('b1', 26 * 60, { vitals: { temperatureC: 37, meanArterialPressure: 60 } }),
    m('b2', 26 * 60 + 5, { vitals: { temperatureC: 37, meanArterialPressure: 60 } }),
  ];
  const apply = (s: PatientState | undefined, msgs: DeviceMessage[]) =>
    msgs.reduce<PatientState | undefined>((st, x) => reduce(st, x, cfg, arrivalOf(x)).state, s)!;
  const stored = apply(undefined, [enrolled, ...fevers]);

  it('is kept by both forms, and the course goes on to CRS 2 from either', () => {
    expect(stored.unmaskedFever).toBe(T0);
    expect(stored.febrile.map(([t]) => t)).toEqual([T0, T0 + 60 * 60_000]); // both kept (feverHistory)
    const compact = compactState(stored);
    expect(compact[28]).toBe(3600); // appended after maskedFever: 08:00, seconds before the clock (09:00)
    for (const loaded of [deserializeState(serializeState(stored)), expandState(JSON.parse(JSON.stringify(compact)))]) {
      expect(loaded.unmaskedFever).toBe(T0);
      expect(gradeCrs(apply(loaded, rest), cfg).grade).toBe(2);
    }
  });

  it('stored before it (no key, the compact form ending at maskedFever): taken from the fevers the state knows', () => {
    // As the code before stored it: without the key, and without the 08:00 fever (covered, so not kept then).
    const before = { ...stored, febrile: stored.febrile.filter(([t]) => t !== T0) };
    const json = JSON.parse(serializeState(before)) as Record<string, unknown>;
    delete json.unmaskedFever;
    delete json.firstEnrolledAt; // appended later still (2026-12-07)
    delete json.gradedUnder; // and later (2026-12-07, the grading settings' id)
    const compact = (JSON.parse(JSON.stringify(compactState(before))) as unknown[]).slice(0, 28);
    const fromJson = deserializeState(JSON.stringify(json));
    expect(expandState(compact)).toEqual(fromJson);
    // The earliest kept fever after every masking medication: the 08:00 one was not kept by the code before.
    expect(fromJson.unmaskedFever).toBe(T0 + 60 * 60_000);
    expect(gradeCrs(fromJson, cfg).grade).toBe(gradeCrs(stored, cfg).grade);
  });

  it.each([
    ['07:00', '2026-01-10T07:00:00Z'],
    ["08:00, the first fever's instant", '2026-01-10T08:00:00Z'],
  ])(
    'stored before latestFever too, infused at %s: its onset, no longer kept, is the fever a late medication follows',
    (_n, infusedAt) => {
      // The code before latestFever kept the episode's earliest febrile time (feverOnset, 08:00) and the 09:00
      // reading that covered it: paracetamol charted late at 08:30 follows the 08:00 fever (pinned by a mutation run).
      const s = apply(undefined, [{ ...enrolled, enrolment: { therapy: 'car-t', infusedAt } }, ...fevers]);
      const json = JSON.parse(serializeState({ ...s, febrile: s.febrile.filter(([t]) => t !== T0) })) as Record<
        string,
        unknown
      >;
      for (const k of ['latestFever', 'maskedFever', 'unmaskedFever']) delete json[k];
      json.feverOnset = T0;
      const loaded = deserializeState(JSON.stringify(json));
      expect(loaded.unmaskedFever).toBe(T0);
      expect(gradeCrs(apply(loaded, rest), cfg).grade).toBe(2);
    },
  );

  it('writes, for the code before, a masked fever at the very start of the episode (the infusion) as the onset', () => {
    // 38.5 °C at the infusion's instant, tocilizumab at 08:30, 38.5 °C at 09:00: the waiver holds (section 4); the
    // code before waives fever when the medication is at or after the onset it reads (pinned by a mutation run).
    const s = apply(undefined, [
      { ...enrolled, enrolment: { therapy: 'car-t', infusedAt: '2026-01-10T08:00:00Z' } },
      fevers[0]!,
      m('t', 30, { medications: [{ drug: 'tocilizumab' }] }),
      fevers[1]!,
    ]);
    expect([s.maskedFever, s.latestFever, episodeStart(s)]).toEqual([T0, T0 + 60 * 60_000, T0]);
    expect((JSON.parse(serializeState(s)) as { feverOnset?: number }).feverOnset).toBe(T0);
    expect(compactOnset(s)).toBe(T0);
  });

  it('none after the latest masking medication: written as nothing, and read back as none', () => {
    const masked = apply(stored, [m('t', 90, { medications: [{ drug: 'tocilizumab' }] })]);
    expect(masked.unmaskedFever).toBeUndefined();
    expect(compactState(masked)[28]).toBeNull();
    expect(deserializeState(serializeState(masked)).unmaskedFever).toBeUndefined();
    expect(expandState(compactState(masked)).unmaskedFever).toBeUndefined();
  });
});

describe('feverDropped in the stored forms (the span of febrile readings dropped from the kept ones)', () => {
  const cfg = configFor('astct2019');
  const P = 'FDS';
  const T0 = Date.parse('2026-01-10T08:00:00Z');
  const m = (id: string, min: number, sections: Partial<DeviceMessage>): DeviceMessage => ({
    messageId: `${P}-${id}`,
    patientId: P,
    observedAt: new Date(T0 + min * 60_000).toISOString(),
    source: { deviceId: 'd', kind: 'monitor' },
    ...sections,
  });
  const apply = (s: PatientState | undefined, msgs: DeviceMessage[]) =>
    msgs.reduce<PatientState | undefined>((st, x) => reduce(st, x, cfg, arrivalOf(x)).state, s)!;
  // Infused 06:00; 38.5 °C hourly 08:00-19:00; the next day afebrile: 08:00-11:00 dropped (the latest 8 kept).
  const stored = apply(undefined, [
    m('e', -60, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-10T06:00:00Z' } }),
    ...Array.from({ length: 12 }, (_, h) => m(`f${h}`, h * 60, { vitals: { temperatureC: 38.5 } })),
    m('b1', 36 * 60, { vitals: { temperatureC: 37, systolicBP: 85 } }),
  ]);
  // Then the infusion time corrected to 08:30, tocilizumab charted late as given at 09:30, a second low systolic.
  const rest = [
    m('c', 36 * 60 + 1, { enrolment: { therapy: 'car-t', infusedAt: '2026-01-10T08:30:00Z' } }),
    m('t', 90, { medications: [{ drug: 'tocilizumab' }] }),
    m('b2', 36 * 60 + 5, { vitals: { systolicBP: 84 } }),
  ];

  it('is kept by both forms (appended last in the compact one), and the course goes on to CRS 2 from either', () => {
    expect(stored.feverDropped).toEqual([T0, T0 + 3 * 60 * 60_000]);
    expect(stored.placedAhead).toEqual([]); // written as null before it
    const compact = compactState(stored);
    expect(compact[32]).toEqual([36 * 3600, 33 * 3600]); // seconds before the clock
    for (const loaded of [deserializeState(serializeState(stored)), expandState(JSON.parse(JSON.stringify(compact)))]) {
      expect(loaded.feverDropped).toEqual(stored.feverDropped);
      expect(gradeCrs(apply(loaded, rest), cfg).grade).toBe(2);
    }
  });

  it('stored before it (no key, the compact form ending before it): loads as a state that dropped none', () => {
    const json = JSON.parse(serializeState(stored)) as Record<string, unknown>;
    delete json.feverDropped;
    delete json.firstEnrolledAt; // appended later still (2026-12-07)
    delete json.gradedUnder; // and later (2026-12-07, the grading settings' id)
    const compact = (JSON.parse(JSON.stringify(compactState(stored))) as unknown[]).slice(0, 32);
    const fromJson = deserializeState(JSON.stringify(json));
    expect(fromJson.feverDropped).toBeUndefined();
    expect(expandState(compact)).toEqual(fromJson);
    // It grades as the code before did: the fever the waiver needed is not known (CRS 0, below the rules' 2).
    expect(gradeCrs(apply(fromJson, rest), cfg).grade).toBe(0);
  });

  it('a waiver resting on the span: the code before reads an onset it waives fever on (a rollback)', () => {
    const after = apply(stored, rest);
    expect(after.maskedFever === undefined || after.maskedFever < episodeStart(after)).toBe(true); // no kept one
    const onset = (JSON.parse(serializeState(after)) as { feverOnset?: number }).feverOnset;
    expect(onset).toBe(Date.parse('2026-01-10T08:30:00Z')); // the span's earliest time in the episode
    expect(compactOnset(after)).toBe(onset);
    expect(after.lastMaskingAt).toBeGreaterThanOrEqual(onset!); // the code before waives when at or after it
  });

  it('a state that dropped none writes nothing for it', () => {
    const fresh = apply(undefined, [m('f', 0, { vitals: { temperatureC: 38.5 } })]);
    expect(fresh.feverDropped).toBeUndefined();
    expect(compactState(fresh)[32] ?? null).toBeNull(); // its place: nothing, or the null before a later field
    expect(JSON.parse(serializeState(fresh))).not.toHaveProperty('feverDropped');
  });
});
