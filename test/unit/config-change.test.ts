// A site changes its grading configuration (`crs serve --config`, AWS `-c gradingConfig`) while patients are monitored:
// the state each patient has stored was graded under the former settings, and the next message is graded under the
// new ones (docs/runbook.md, "Changing the grading or paging configuration", 2026-12-07).
import { describe, expect, it } from 'vitest';
import { enrol, msg } from '#test/support/messages.ts';
import { config, pages, run } from '#test/support/run.ts';

const P = 'P1';
const texts = (r: ReturnType<typeof run>) => r.last.reasons.map((x) => x.text);

describe('a fever threshold changed between two messages of a patient', () => {
  it('raised: a temperature below the new threshold is no longer a fever (it graded CRS 1 for the rest of the window)', () => {
    const before = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 38.2 } })], config({}));
    expect(before.last.crsGrade).toBe(1);
    const after = run([msg(P, 10, { vitals: { heartRate: 80 } })], config({ feverThresholdC: 38.5 }), before.state);
    expect(after.last.crsGrade).toBe(0);
    expect(texts(after).join(' ')).not.toContain('fever 38.2');
    // A kept reading at or above it still is one.
    const high = run([
      enrol(P),
      msg(P, 0, { vitals: { temperatureC: 38.2 } }),
      msg(P, 5, { vitals: { temperatureC: 38.7 } }),
    ]);
    const later = run([msg(P, 10, { vitals: { heartRate: 80 } })], config({ feverThresholdC: 38.5 }), high.state);
    expect(later.last.crsGrade).toBe(1);
    expect(texts(later)).toEqual(['fever 38.7 °C at 2026-01-10T08:05:00Z']);
  });

  it('lowered: the latest temperature at or above the new threshold is a fever (it was missed until the next febrile reading)', () => {
    const before = run([enrol(P), msg(P, 0, { vitals: { temperatureC: 38.2 } })], config({ feverThresholdC: 38.5 }));
    expect(before.last.crsGrade).toBe(0);
    const after = run([msg(P, 10, { vitals: { heartRate: 80 } })], config({}), before.state);
    expect(after.last.crsGrade).toBe(1);
    expect(texts(after)).toEqual(['fever 38.2 °C at 2026-01-10T08:00:00Z']);
    expect(pages(after)).toEqual(['escalation crs 0->1 hematology']);
    // Out of the window, it is not.
    const late = run([msg(P, 25 * 60, { vitals: { heartRate: 80 } })], config({}), before.state);
    expect(late.last.crsGrade).toBe(0);
  });
});
