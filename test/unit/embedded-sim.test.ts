// The simulator: deterministic for a seed, valid messages only, and each course grades as it says for any seed
// (checked through the same replay code the pipeline uses).
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { scenarioFor } from '#cli/simulate.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { validateMessage } from '#domain/contract.ts';
import type { NotificationEvent } from '#domain/events.ts';
import { buildScenario, COURSE_NAMES } from '#sim/courses.ts';
import { anchorStart } from '#sim/player.ts';

const START = Date.parse('2026-03-01T06:00:00Z');

function pagesOf(course: string, seed: number): NotificationEvent[] {
  const sc = buildScenario({ seed, start: START, courses: [course] });
  const replay = new Replay(DEFAULT_CONFIG);
  const events = sc.messages.flatMap((m, i) => replay.line(JSON.stringify(m), i + 1));
  expect(replay.rejected).toBe(0);
  return events.filter((e): e is NotificationEvent => e.type === 'notification');
}

const summary = (pages: NotificationEvent[]) =>
  pages.map((p) => `${p.condition} ${p.kind} ${p.fromGrade}->${p.toGrade}`);

describe('simulated courses', () => {
  it('are the same messages for the same seed and start, and differ for another seed', () => {
    const a = buildScenario({ seed: 7, start: START });
    const b = buildScenario({ seed: 7, start: START });
    const c = buildScenario({ seed: 8, start: START });
    expect(JSON.stringify(a.messages)).toBe(JSON.stringify(b.messages));
    expect(JSON.stringify(a.messages)).not.toBe(JSON.stringify(c.messages));
    expect(a.patients.map((p) => p.course)).toEqual(COURSE_NAMES);
  });

  it('hold only valid, unique, time-ordered messages', () => {
    const sc = buildScenario({ seed: 3, start: START, copies: 3 });
    expect(new Set(sc.patients.map((p) => p.patientId)).size).toBe(COURSE_NAMES.length * 3);
    expect(new Set(sc.messages.map((m) => m.messageId)).size).toBe(sc.messages.length);
    for (const m of sc.messages) expect(validateMessage(m)).toEqual({ ok: true, message: m });
    const times = sc.messages.map((m) => Date.parse(m.observedAt));
    expect(times).toEqual([...times].sort((x, y) => x - y));
  });

  for (const seed of [1, 2, 3, 42, 2026]) {
    it(`grade as described for seed ${seed}`, () => {
      const crs = pagesOf('crs', seed);
      expect(summary(crs)).toEqual([
        'crs escalation 0->1',
        'crs escalation 1->2',
        'crs escalation 2->3',
        'crs de-escalation 3->1',
      ]);
      expect(crs[2]!.teams).toEqual(['hematology', 'icu']);
      expect(crs[2]!.reasons.join(' ')).toContain('norepinephrine');

      const icans = pagesOf('icans', seed);
      expect(summary(icans).slice(0, 3)).toEqual([
        'icans escalation 0->1',
        'icans escalation 1->2',
        'icans escalation 2->3',
      ]);
      expect(icans[2]!.teams).toContain('icu');
      expect(icans.every((p) => p.condition === 'icans')).toBe(true);

      expect(pagesOf('quiet', seed)).toEqual([]);
      expect(pagesOf('artefact', seed)).toEqual([]); // one low reading alone pages nobody

      const bispecific = pagesOf('bispecific', seed);
      expect(summary(bispecific).slice(0, 2)).toEqual(['crs escalation 0->1', 'crs escalation 1->2']);
      expect(bispecific[1]!.actions.join(' ')).toMatch(/interrupt the infusion/i);
    });
  }

  it('escalate to CRS 3 within the first minute of the demo (npm start plays at 120x)', () => {
    const sc = buildScenario({ seed: 1, start: START, courses: ['crs'] });
    const replay = new Replay(DEFAULT_CONFIG);
    const grade3 = sc.messages.find((m, i) =>
      replay.line(JSON.stringify(m), i + 1).some((e) => e.type === 'notification' && e.toGrade === 3),
    )!;
    expect((Date.parse(grade3.observedAt) - START) / 120).toBeLessThan(60_000);
  });

  it('never send an observation from the future: an accelerated course ends at the present', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    for (const speed of [1, 60, 120, 5000]) {
      const sc = scenarioFor({ seed: 1, speed, courses: COURSE_NAMES, copies: 1 }, now);
      expect(sc.start).toBe(anchorStart(now, sc.spanMs, speed));
      for (const m of sc.messages) {
        const sentAt = now + (Date.parse(m.observedAt) - sc.start) / speed; // when the player sends it
        expect(Date.parse(m.observedAt)).toBeLessThanOrEqual(sentAt + 1000);
      }
    }
  });

  it('print as NDJSON from the CLI (crs simulate --ndjson), the same for the same seed and start', () => {
    const bin = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));
    const out = execFileSync(
      process.execPath,
      [bin, 'simulate', '--ndjson', '--seed', '3', '--start', '2026-03-01T06:00:00Z'],
      { encoding: 'utf8' },
    );
    const expected = buildScenario({ seed: 3, start: START }).messages.map((m) => JSON.stringify(m));
    expect(out.trimEnd().split('\n')).toEqual(expected);
    const bad = spawnSync(process.execPath, [bin, 'simulate', '--speed', 'fast'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--speed must be a number');
  });
});
