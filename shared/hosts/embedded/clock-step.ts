// The host's wall clock against its monotonic clock: a step of the wall clock (an NTP step after a bad RTC, a VM
// resumed, an operator fixing the time by hand) is the two moving apart between two looks. NTP's slewing (at most
// 0.5 ms a second) and a busy event loop (both clocks move) never come near the threshold.
import { HOUR, MINUTE, iso } from '#domain/time.ts';

/** A step smaller than this is not one (NTP slews small errors; a look is about a second after the last). */
const CLOCK_STEP_MS = 5_000;

/** How long the delivery watch's alert stays after a step (by the monotonic clock). */
const ALERT_MS = HOUR;

export interface ClockStep {
  /** How far the wall clock moved apart from the monotonic clock: negative, back. */
  stepMs: number;
  /** The moment of the step on the wall clock as it was (epoch ms). */
  before: number;
  /** The same moment on the wall clock as it is (epoch ms). */
  after: number;
}

/**
 * "1 h", "1.5 h", "20 min", "12 s". The unit is chosen after rounding: a step measured a millisecond short of an hour
 * (the look came a millisecond after the step) is "1 h", not "60 min".
 */
export function stepSpan(ms: number): string {
  const a = Math.abs(ms);
  const seconds = Math.round(a / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(a / MINUTE);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.round((a / HOUR) * 10) / 10} h`;
}

/** "the system clock stepped back by 1 h", then when and what it became (no colon before: a log line cuts there). */
export const stepText = (s: ClockStep): string =>
  `the system clock stepped ${s.stepMs < 0 ? 'back' : 'forward'} by ${stepSpan(s.stepMs)} against the monotonic clock (${iso(s.before)} became ${iso(s.after)})`;

export class ClockStepWatch {
  private wall: number;
  private mono: number;
  private last: { step: ClockStep; mono: number } | undefined;

  constructor(
    private readonly now: () => number,
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.wall = now();
    this.mono = this.monotonic();
  }

  /** Looks once: the step since the last look, if the clocks moved apart by CLOCK_STEP_MS or more. */
  check(): ClockStep | undefined {
    const wall = this.now();
    const mono = this.monotonic();
    const before = Math.round(this.wall + (mono - this.mono));
    this.wall = wall;
    this.mono = mono;
    const stepMs = wall - before;
    if (Math.abs(stepMs) < CLOCK_STEP_MS) return undefined;
    const step = { stepMs, before, after: wall };
    this.last = { step, mono };
    return step;
  }

  /**
   * A step seen before a restart, `agoMs` ago by the wall clock (the monotonic clock starts afresh): its alert
   * stands for the rest of its hour. A wall clock now before the step's moment (set back again while the server was
   * stopped) cannot say how long ago it was: a whole hour then. Whether it still stands.
   */
  resume(step: ClockStep, agoMs: number): boolean {
    if (agoMs >= ALERT_MS) return false;
    this.last = { step, mono: this.monotonic() - Math.max(0, agoMs) };
    return true;
  }

  /** The last step, for an hour after it (the delivery watch's alert). */
  recent(): ClockStep | undefined {
    return this.last && this.monotonic() - this.last.mono < ALERT_MS ? this.last.step : undefined;
  }
}
