// crs-rules.md version 1.1, sentence by sentence (2026-12-07): clauses that a mutation of their code left every
// rules table and vignette test passing (the waiver case also every random oracle: docs/testing.md, mutation runs).
// Each case quotes its clause and says which reading it pins.
import { describe, expect, it } from 'vitest';
import { enrol, msg } from '#test/support/messages.ts';
import { run } from '#test/support/run.ts';

const P = 'SNT';
const temp = (m: number, c = 38.5) => msg(P, m, { vitals: { temperatureC: c } });
const sys = (m: number, systolicBP: number) => msg(P, m, { vitals: { systolicBP } });

describe('section 1: "`oxygen` and `vasopressors` are whole sections (the later arrival at one instant replaces them)"', () => {
  it('a field the later oxygen section leaves out is not kept from the earlier one at that instant', () => {
    // A nasal cannula charted as for comfort at 8 L/min, corrected at the same instant to 2 L/min without the flag:
    // the correction is the section (not for comfort: hypoxia, grade 2). Merged field by field it stayed "for
    // comfort" (CRS 1). The tests before changed only the device, which a merge replaces too.
    const comfort = msg(P, 10, { oxygen: { device: 'nasal_cannula', flowLpm: 8, forComfort: true } });
    const a = run([enrol(P), temp(0), comfort, msg(P, 10, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } })]).last;
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.find((r) => r.criterion === 'oxygen')!.text).toContain('nasal cannula 2 L/min');
    // A flow left out by the later section is not documented (low-flow by default), not the earlier 8 L/min (grade 3).
    const noFlow = msg(P, 10, { oxygen: { device: 'nasal_cannula' } });
    const b = run([enrol(P), temp(0), msg(P, 10, { oxygen: { device: 'nasal_cannula', flowLpm: 8 } }), noFlow]).last;
    expect(b.crsGrade).toBe(2);
    expect(b.reasons.find((r) => r.criterion === 'oxygen')!.text).toContain('flow not documented');
  });
});

describe('section 1: the fever waiver, "with an `observedAt` at or after the time grade >= 1 was first reached"', () => {
  it('a masking drug at the instant of a fever, charted after a later one, follows that fever when the start moves', () => {
    // Infused 07:00; fevers at 08:00, 09:00 and 10:00; tocilizumab given at 09:00, charted after all three; then the
    // infusion time corrected to 08:30. The 09:00 fever is of the episode and the drug is at its instant: the waiver
    // holds, and the next day, afebrile, two low systolics grade CRS 2. Following only a fever strictly before the
    // drug (08:00, now before the episode) lost the waiver: CRS 0.
    const course = [
      enrol(P, -60, { infusedAt: '2026-01-10T07:00:00Z' }),
      temp(0),
      temp(60),
      temp(120),
      msg(P, 60, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] }),
      enrol(P, 150, { infusedAt: '2026-01-10T08:30:00Z' }),
      sys(26 * 60, 84),
      sys(26 * 60 + 5, 82),
    ];
    const a = run(course).last;
    expect(a.crsGrade).toBe(2);
    expect(a.reasons.find((r) => r.criterion === 'fever-waiver')!.text).toContain(
      'given on or after a fever of the episode (2026-01-10T09:00:00Z)',
    );
  });
});
