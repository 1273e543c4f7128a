// Properties that must hold for every input, checked with fast-check on generated timelines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG, configFor } from '#domain/config.ts';
import { validateMessage, type DeviceMessage } from '#domain/contract.ts';
import type { OutputEvent } from '#domain/events.ts';
import { course, permutation, timeline } from '#test/support/arbitraries.ts';
import { T0 } from '#test/support/messages.ts';
import { run } from '#test/support/run.ts';

const schemes = [DEFAULT_CONFIG, configFor('lee2014')];

function replayLines(messages: unknown[], scheme = DEFAULT_CONFIG): OutputEvent[] {
  const replay = new Replay(scheme);
  return messages.flatMap((m, i) => replay.line(JSON.stringify(m), i + 1));
}

const byPatient = (events: OutputEvent[], patientId: string) =>
  events.filter((e) => 'patientId' in e && e.patientId === patientId);

describe('properties', () => {
  it('every generated message is valid (the generator speaks the contract)', () => {
    fc.assert(
      fc.property(timeline('G'), (msgs) => {
        for (const m of msgs) expect(validateMessage(m)).toMatchObject({ ok: true });
      }),
    );
  });

  it('grades stay in range and pages are consistent with them', () => {
    for (const cfg of schemes) {
      fc.assert(
        fc.property(timeline('P'), (msgs) => {
          const r = run(msgs, cfg);
          for (const a of r.assessments) {
            expect(a.crsGrade).toBeGreaterThanOrEqual(0);
            expect(a.crsGrade).toBeLessThanOrEqual(4);
            expect(a.icansGrade).toBeGreaterThanOrEqual(0);
            expect(a.icansGrade).toBeLessThanOrEqual(4);
            expect(Number.isInteger(a.crsGrade) && Number.isInteger(a.icansGrade)).toBe(true);
          }
          for (const n of r.notifications) {
            expect(n.toGrade).not.toBe(n.fromGrade);
            expect(n.kind === 'escalation').toBe(n.toGrade > n.fromGrade);
            expect(n.teams.length).toBeGreaterThan(0);
            expect(n.teams).toContain('hematology');
          }
        }),
        { numRuns: 300 },
      );
    }
  });

  it('a duplicated message never changes the output', () => {
    fc.assert(
      fc.property(
        timeline('D'),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 10 }),
        (msgs, dups) => {
          // Re-send some messages later in the stream, possibly several times.
          const withDups: DeviceMessage[] = [...msgs];
          for (const [which, where] of dups) {
            const original = msgs[which % msgs.length]!;
            const at = withDups.indexOf(original); // the first occurrence, wherever earlier copies moved it
            withDups.splice(at + 1 + (where % (withDups.length - at)), 0, structuredClone(original));
          }
          const plain = replayLines(msgs);
          const duplicated = replayLines(withDups);
          expect(duplicated.filter((e) => e.type !== 'duplicate')).toEqual(plain);
          expect(duplicated.filter((e) => e.type === 'duplicate')).toHaveLength(dups.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the course generator speaks the contract, and uses every section', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(course('G'), (msgs) => {
        for (const m of msgs) {
          expect(validateMessage(m)).toMatchObject({ ok: true });
          for (const k of Object.keys(m)) seen.add(k);
        }
      }),
      { numRuns: 100 },
    );
    expect([...seen].sort()).toEqual([
      'enrolment',
      'labs',
      'medications',
      'messageId',
      'neuro',
      'observedAt',
      'organToxicity',
      'oxygen',
      'patientId',
      'source',
      'vasopressors',
      'vitals',
    ]);
  });

  it('1.1 item 1: every arrival order ends in the same CRS and ICANS grades as the observedAt-ordered replay', () => {
    for (const cfg of schemes) {
      fc.assert(
        fc.property(course('O'), fc.array(fc.integer(), { minLength: 100, maxLength: 100 }), (ordered, keys) => {
          const arrived = permutation(ordered.length, keys).map((i) => ordered[i]!);
          const a = run(ordered, cfg).last;
          const b = run(arrived, cfg).last;
          expect([b.crsGrade, b.icansGrade]).toEqual([a.crsGrade, a.icansGrade]);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('1.1 item 1 with episodeStart "latest-infusion": infusion times given in any order, the same grades', () => {
    // Enrolments with other infusion times (a step-up dose, a resend of the first), some at instants of other
    // messages: the latest infusion time of all is the episode start, whatever the order they arrive in.
    const infusions = fc.array(fc.tuple(fc.integer({ min: -60, max: 2700 }), fc.integer({ min: -72, max: 48 })), {
      minLength: 1,
      maxLength: 4,
    });
    for (const scheme of ['astct2019', 'lee2014'] as const) {
      const cfg = configFor(scheme, { episodeStart: 'latest-infusion' });
      fc.assert(
        fc.property(
          course('O'),
          infusions,
          fc.array(fc.integer(), { minLength: 100, maxLength: 100 }),
          (course, extra, keys) => {
            const ordered: DeviceMessage[] = [
              ...course,
              ...extra.map(([minute, hours], i) => ({
                messageId: `O-infusion-${i}`,
                patientId: 'O',
                observedAt: new Date(T0 + minute * 60_000).toISOString(),
                source: { deviceId: 'ehr-O', kind: 'ehr' as const },
                enrolment: { infusedAt: new Date(T0 + hours * 3_600_000).toISOString() },
              })),
            ].sort((x, y) => Date.parse(x.observedAt) - Date.parse(y.observedAt));
            const arrived = permutation(ordered.length, keys).map((i) => ordered[i]!);
            const a = run(ordered, cfg).last;
            const b = run(arrived, cfg).last;
            expect([b.crsGrade, b.icansGrade]).toEqual([a.crsGrade, a.icansGrade]);
          },
        ),
        { numRuns: 300 },
      );
    }
  });

  it('the validator never throws, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const r = validateMessage(value);
        if (!r.ok) expect(r.errors.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('the validator never throws on near-miss messages (a field or a section replaced by any JSON)', () => {
    fc.assert(
      fc.property(timeline('V', 1), fc.nat(), fc.nat(), fc.jsonValue(), (msgs, i, j, junk) => {
        const m = structuredClone(msgs[0]!) as Record<string, unknown>;
        const key = Object.keys(m)[i % Object.keys(m).length]!;
        const section = m[key];
        if (section !== null && typeof section === 'object' && !Array.isArray(section) && j % 2 === 0) {
          const fields = Object.keys(section);
          (section as Record<string, unknown>)[fields[j % fields.length] ?? 'extra'] = junk;
        } else {
          m[key] = junk;
        }
        const r = validateMessage(m);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it("interleaving different patients' messages never changes any patient's grades or pages", () => {
    fc.assert(
      fc.property(
        timeline('A', 25),
        timeline('B', 25),
        timeline('C', 25),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 75, maxLength: 75 }),
        (a, b, c, picks) => {
          const queues = [a.slice(), b.slice(), c.slice()];
          const sequential = [...a, ...b, ...c];
          const interleaved: DeviceMessage[] = [];
          for (const pick of picks) {
            const q = queues[pick]!;
            if (q.length > 0) interleaved.push(q.shift()!);
          }
          for (const q of queues) interleaved.push(...q);
          expect(interleaved).toHaveLength(sequential.length);
          const one = replayLines(sequential);
          const other = replayLines(interleaved);
          for (const p of ['A', 'B', 'C']) expect(byPatient(other, p)).toEqual(byPatient(one, p));
        },
      ),
      { numRuns: 200 },
    );
  });
});
