// The host's wall clock against its monotonic clock (shared/hosts/embedded/clock-step.ts): what counts as a step,
// and how long the delivery watch says so.
import { describe, expect, it } from 'vitest';
import { ClockStepWatch, stepSpan, stepText } from '#hosts/embedded/clock-step.ts';

const T = Date.parse('2026-12-05T14:00:00Z');

describe('the clock-step watch', () => {
  it('takes a stall (both clocks move) and a slew for no step, and a step of 5 s or more for one, either way', () => {
    let wall = T;
    let mono = 1000;
    const move = (w: number, m: number) => {
      wall += w;
      mono += m;
    };
    const watch = new ClockStepWatch(
      () => wall,
      () => mono,
    );
    move(30_000, 30_000); // the event loop blocked for 30 s
    expect(watch.check()).toBeUndefined();
    move(1000 + 4999, 1000); // a second, and a correction under the threshold
    expect(watch.check()).toBeUndefined();
    move(1000 - 3_600_000, 1000);
    const back = watch.check()!;
    expect(back).toEqual({ stepMs: -3_600_000, before: T + 36_999, after: T + 36_999 - 3_600_000 });
    expect(stepText(back)).toBe(
      'the system clock stepped back by 1 h against the monotonic clock (2026-12-05T14:00:36.999Z became 2026-12-05T13:00:36.999Z)',
    );
    expect(watch.check()).toBeUndefined(); // said once
    move(5000, 0); // a step forward of 5 s between two looks at the same instant
    expect(watch.check()?.stepMs).toBe(5000);
    expect(watch.recent()?.stepMs).toBe(5000);
    move(3_600_000, 3_600_000); // an hour on: the alert is over
    expect(watch.check()).toBeUndefined();
    expect(watch.recent()).toBeUndefined();
  });

  it('resumes a step seen before a restart for the rest of its hour; a whole hour when the clock is before it', () => {
    let mono = 0;
    const watch = new ClockStepWatch(
      () => T,
      () => mono,
    );
    const step = { stepMs: -3_600_000, before: T + 3_600_000, after: T };
    expect(watch.resume(step, 3_600_000)).toBe(false); // its hour is over
    expect(watch.recent()).toBeUndefined();
    expect(watch.resume(step, 3_599_000)).toBe(true);
    expect(watch.recent()).toEqual(step);
    mono += 1000; // the last second of its hour gone
    expect(watch.recent()).toBeUndefined();
    // The wall clock set back again while stopped: how long ago the step was is not known.
    expect(watch.resume(step, -600_000)).toBe(true);
    mono += 3_599_999;
    expect(watch.recent()).toEqual(step);
    mono += 1;
    expect(watch.recent()).toBeUndefined();
  });
});

describe('the clock-step wording, pinned by a mutation run', () => {
  it('names a step of exactly a minute in minutes, and of exactly an hour in hours', () => {
    expect([stepSpan(59_000), stepSpan(60_000), stepSpan(-90 * 60_000), stepSpan(3_600_000)]).toEqual([
      '59 s',
      '1 min',
      '1.5 h',
      '1 h',
    ]);
  });

  it('names the unit after rounding: a step looked at a millisecond late is "1 h", not "60 min"', () => {
    // Until 2026-12-05 the unit came before the rounding: a busy host that looked one millisecond after an hour's
    // step back said "stepped back by 60 min" (seen in a CI run of embedded-clock-step.test.ts).
    expect([stepSpan(-3_599_999), stepSpan(59_600), stepSpan(3_570_000), stepSpan(3_540_000)]).toEqual([
      '1 h',
      '1 min',
      '1 h',
      '59 min',
    ]);
  });
});
