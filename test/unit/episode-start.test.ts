// Where the episode starts when enrolments disagree on the infusion time (docs/grading-rules.md section 4,
// `episodeStart`). crs-rules.md section 1: "An episode starts at an enrolment's infusedAt; a new enrolment with a
// later infusedAt starts a new one." It does not say which enrolment when one observed later carries an older
// infusedAt (an EHR snapshot resending the first infusion after a step-up dose). By default the engine reads the
// infusedAt observed last (the start moves back: the higher grade); `episodeStart: "latest-infusion"` takes the
// latest infusedAt of every enrolment accepted (the start never moves back). Until 2026-12-07 this was not
// configurable, against the project's standard for an ambiguity of the rules.
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '#app/digest.ts';
import { resolveConfig, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { dayPostInfusion } from '#domain/page.ts';
import { reduce } from '#domain/reducer.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { deserializeState, serializeState, type PatientState } from '#domain/state.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';

const P = 'STEP';
const DAY = 24 * 60;
const temp = (m: number, temperatureC: number) => msg(P, m, { vitals: { temperatureC } });
const lowMap = (m: number) => msg(P, m, { vitals: { temperatureC: 37, meanArterialPressure: 60 } });
const acetaminophen = (m: number) => msg(P, m, { medications: [{ drug: 'acetaminophen' }] });
const infused = (observed: number, at: string) => msg(P, observed, { enrolment: { infusedAt: at } });

// Times are minutes after T0 (2026-01-10T08:00:00Z). First infusion on day -2; a fever at 08:00 and acetaminophen
// at 08:30 (the first dose's episode); the step-up dose infused at 09:30, charted at 10:00; the EHR snapshot resends
// the first infusion, observed at 11:20; the next day at noon, afebrile (the fevers out of the window), two low MAPs.
const FIRST = '2026-01-08T08:00:00Z';
const STEP_UP = '2026-01-10T09:30:00Z';
const common = [enrol(P, -60, { infusedAt: FIRST }), temp(0, 38.5), acetaminophen(30), lowMap(DAY + 240)];
const stepUp = infused(120, STEP_UP);
const resend = infused(200, FIRST);
const last = lowMap(DAY + 245);
/** The step-up enrolment before the resend, charted late (after it), and every message in reverse. */
const inOrder = [...common, stepUp, resend, last];
const stepUpLate = [...common, resend, stepUp, last];
const orders = [inOrder, stepUpLate, [...inOrder].reverse()];

/** Built in each test: the code before refused the key (each test then fails on its own). */
const latestInfusion = () => config({ episodeStart: 'latest-infusion' });
const grade = (messages: DeviceMessage[], cfg?: GradingConfig) => run(messages, cfg).last;
const waived = (messages: DeviceMessage[], cfg?: GradingConfig) =>
  grade(messages, cfg).reasons.some((r) => r.criterion === 'fever-waiver');

describe('the episode start when an enrolment observed later carries an older infusedAt', () => {
  it('is a configuration key: latest-observed (the default) or latest-infusion, anything else refused by name', () => {
    expect(config()).toMatchObject({ episodeStart: 'latest-observed' });
    for (const v of ['latest-observed', 'latest-infusion']) expect(resolveConfig({ episodeStart: v }).ok).toBe(true);
    const r = resolveConfig({ episodeStart: 'first-infusion' });
    expect(r.ok ? [] : r.errors).toEqual([expect.stringMatching(/^episodeStart: .*latest-observed.*latest-infusion/)]);
  });

  it('by default the infusedAt observed last: the resend moves the start back, the first episode waives (unchanged)', () => {
    // Every order: the resend has the later observedAt, so it is current.
    for (const messages of orders) {
      expect(grade(messages).crsGrade).toBe(2);
      expect(waived(messages)).toBe(true);
    }
    // Without the resend the step-up starts the episode: the 08:00 fever is the first episode's.
    expect(grade([...common, stepUp, last]).crsGrade).toBe(0);
  });

  it('latest-infusion: the resend never moves the start back, in any arrival order', () => {
    for (const messages of orders) {
      expect(grade(messages, latestInfusion()).crsGrade).toBe(0);
      expect(waived(messages, latestInfusion())).toBe(false);
    }
    // The same as without the resend at all.
    expect(grade([...common, stepUp, last], latestInfusion()).crsGrade).toBe(0);
  });

  it('latest-infusion: the new episode waives on its own fever and masking drug, whatever came around them', () => {
    const own = [temp(150, 38.4), acetaminophen(160)];
    for (const messages of [
      [...common, stepUp, resend, ...own, last],
      [...common, resend, ...own, stepUp, last],
      [last, ...own, resend, stepUp, ...common],
    ]) {
      expect(grade(messages, latestInfusion()).crsGrade).toBe(2);
      expect(waived(messages, latestInfusion())).toBe(true);
    }
  });

  it('latest-infusion: an episode ended at CRS 0 is not restarted by a resend of the infusion it belongs to', () => {
    // The episode ends after 2 h at CRS 0 (a fever window of 1 h). The step-up episode has a fever at 10:30 and
    // acetaminophen at 10:40, then hours afebrile end it (at 18:00); the first infusion is resent at 18:50, then
    // the step-up's at 19:40: neither is a new infusion, so the end holds and two low MAPs just after grade 0. By
    // default the step-up's resend is a later infusedAt than the current one, restarts the episode, and waives: 2.
    const cfg = (episodeStart: string) =>
      config({ episodeStart, episodeEndsAfterHoursAtGrade0: 2, feverWindowMinutes: 60 });
    const messages = [
      enrol(P, -60, { infusedAt: FIRST }),
      stepUp,
      temp(150, 38.4),
      acetaminophen(160),
      temp(300, 37),
      temp(600, 37),
      infused(650, FIRST),
      infused(700, STEP_UP),
      lowMap(710),
      lowMap(715),
    ];
    expect(grade(messages, cfg('latest-infusion')).crsGrade).toBe(0);
    expect(grade(messages, cfg('latest-observed')).crsGrade).toBe(2);
  });
});

describe('the day since infusion on pages and the board', () => {
  // The patient clock ends on 2026-01-11 (day +3 from the first infusion, day +1 from the step-up dose).
  it('counts from the episode: by default the infusedAt observed last, under latest-infusion the latest infusion', () => {
    for (const messages of orders) {
      expect(dayPostInfusion(run(messages).state!, 'UTC')).toBe(3);
      expect(dayPostInfusion(run(messages, latestInfusion()).state!, 'UTC')).toBe(1);
    }
  });
});

describe('what latest-infusion keeps in the stored state', () => {
  const through = {
    json: (s: PatientState) => deserializeState(serializeState(s)),
    compact: (s: PatientState) => expandState(JSON.parse(JSON.stringify(compactState(s))) as unknown[]),
  };
  /** The messages one at a time, the state stored and read back after each. */
  function stored(messages: DeviceMessage[], cfg: GradingConfig, form: (s: PatientState) => PatientState) {
    let state: PatientState | undefined;
    let crs = -1;
    for (const m of messages) {
      const step = reduce(state, m, cfg, arrivalOf(m));
      if (step.kind === 'applied') crs = step.assessment.crsGrade;
      state = form(step.state);
    }
    return { state: state!, crs };
  }

  it.each(Object.entries(through))('the latest infusion survives the %s form: the start stays put', (_form, form) => {
    for (const messages of orders) {
      const r = stored(messages, latestInfusion(), form);
      expect(r.crs).toBe(0);
      expect(r.state.latestInfusedAt).toBe(Date.parse(STEP_UP));
    }
    // Nothing kept by default: the state is as before the option.
    expect(stored(inOrder, config(), form).state.latestInfusedAt).toBeUndefined();
  });

  it.each(Object.entries(through))(
    'a %s state stored before the option reads, and its next enrolment takes its current infusion as known',
    (_form, form) => {
      // Stored by the code before (no latestInfusedAt), the step-up current; then the resend arrives.
      const before = run([...common, stepUp], config()).state!;
      expect(before.latestInfusedAt).toBeUndefined();
      const loaded = form(before);
      expect(loaded.latestInfusedAt).toBeUndefined();
      expect(run([resend, last], latestInfusion(), loaded).last.crsGrade).toBe(0);
    },
  );

  it('switched back to latest-observed, a state kept under latest-infusion grades by the default again', () => {
    const kept = run([...common, stepUp, resend], latestInfusion()).state!;
    expect(kept.latestInfusedAt).toBe(Date.parse(STEP_UP));
    const r = run([last], config(), kept);
    expect(r.last.crsGrade).toBe(2);
    expect(r.state!.latestInfusedAt).toBeUndefined();
  });
});
