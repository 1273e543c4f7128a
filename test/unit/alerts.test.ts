// Warnings that are not grades: low SpO2 without oxygen support, and a monitor feed that went quiet.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { feedStatus } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { arrivalOf } from '#app/digest.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';

const P = 'W1';
const spo2 = (m: number, value: number) => msg(P, m, { vitals: { spo2: value } });

describe('the low-SpO2 warning', () => {
  it('needs two consecutive readings below 90 % with no oxygen support documented', () => {
    expect(run([enrol(P), spo2(0, 88)]).last.warnings).toEqual([]);
    const r = run([enrol(P), spo2(0, 88), spo2(5, 87)]);
    expect(r.last.warnings).toEqual([
      {
        warning: 'spo2-low-without-oxygen',
        at: '2026-01-10T08:05:00Z',
        parts: [
          'SpO2 88 % then 87 % (below 90 %) with no oxygen support documented at ',
          { at: '2026-01-10T08:05:00Z' },
        ],
        text: 'SpO2 88 % then 87 % (below 90 %) with no oxygen support documented at 2026-01-10T08:05:00Z',
      },
    ]);
    expect(r.last.crsGrade).toBe(0); // not a grade
    expect(r.notifications).toEqual([]);
  });

  it('is ordered by observedAt, and cleared by a normal reading or by oxygen support', () => {
    expect(run([enrol(P), spo2(0, 88), spo2(10, 95), spo2(5, 87)]).last.warnings).toEqual([]);
    // A normal reading that arrives last but was observed first clears nothing: the two latest by observedAt are low.
    expect(run([enrol(P), spo2(5, 88), spo2(10, 87), spo2(0, 95)]).last.warnings.map((w) => w.text)).toEqual([
      'SpO2 88 % then 87 % (below 90 %) with no oxygen support documented at 2026-01-10T08:10:00Z',
    ]);
    expect(run([enrol(P), spo2(0, 88), spo2(5, 87), spo2(10, 93)]).last.warnings).toEqual([]);
    expect(
      run([enrol(P), spo2(0, 88), spo2(5, 87), msg(P, 6, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } })]).last
        .warnings,
    ).toEqual([]);
    expect(
      run([enrol(P), msg(P, 0, { oxygen: { device: 'room_air' } }), spo2(1, 88), spo2(5, 87)]).last.warnings,
    ).toHaveLength(1);
  });
});

describe('the low-SpO2 warning in force: what clears it (pinned by a mutation run)', () => {
  const inForce = (...more: Parameters<typeof run>[0]) => run([enrol(P), ...more]).state!.spo2Alert;

  it('oxygen support documented clears it at once, the readings still low', () => {
    expect(inForce(spo2(0, 88), spo2(5, 87))).toBe(true);
    expect(inForce(spo2(0, 88), spo2(5, 87), msg(P, 6, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } }))).toBe(
      false,
    );
  });

  it('room air documented is no oxygen support: one reading back above the threshold clears nothing', () => {
    const roomAir = msg(P, 0, { oxygen: { device: 'room_air' } });
    expect(inForce(roomAir, spo2(1, 88), spo2(5, 87), spo2(10, 95))).toBe(true);
    expect(inForce(roomAir, spo2(1, 88), spo2(5, 87), spo2(10, 95), spo2(15, 96))).toBe(false);
  });

  it("two readings at or above the site's own threshold clear it, not the default's", () => {
    const site = config({ paging: { spo2WarningBelow: 94 } });
    const low = [enrol(P), spo2(0, 92), spo2(5, 91)];
    expect(run(low, site).state!.spo2Alert).toBe(true);
    // 93 then 95: no longer two low readings (no warning), but 93 is below this site's 94: not recovered.
    expect(run([...low, spo2(10, 93), spo2(15, 95)], site).state!.spo2Alert).toBe(true);
    expect(run([...low, spo2(10, 94), spo2(15, 95)], site).state!.spo2Alert).toBe(false);
  });
});

describe('the low-SpO2 all-clear says what cleared it (2026-12-07)', () => {
  // Until 2026-12-07 every all-clear read "SpO2 no longer low without oxygen support": no value, no time, and the
  // same words when oxygen support was documented with the readings still low.
  const summaries = (messages: DeviceMessage[], cfg = config({ site: { timeZone: 'Europe/Paris' } })) => {
    let state: PatientState | undefined;
    const out: string[] = [];
    for (const m of messages) {
      const step = reduce(state, m, cfg, arrivalOf(m));
      state = step.state;
      if (step.kind === 'applied') out.push(...step.alerts.map((a) => a.summary));
    }
    return out;
  };

  it('two readings back at or above the threshold: their values and the time of the second, in site time', () => {
    expect(summaries([enrol(P), spo2(0, 88), spo2(5, 87), spo2(10, 95), spo2(15, 96)])).toEqual([
      'WARNING (not a grade), patient W1, bed H4-W1: SpO2 88 % then 87 % (below 90 %) with no oxygen support documented at 2026-01-10 09:05 CET',
      'Cleared, patient W1, bed H4-W1: SpO2 no longer low: 95 % then 96 % at 2026-01-10 09:15 CET',
    ]);
  });

  it('oxygen support documented: the device and its time, and the last reading, which may still be low (its value)', () => {
    const o2 = msg(P, 6, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } });
    expect(summaries([enrol(P), spo2(0, 88), spo2(5, 87), o2])[1]).toBe(
      'Cleared, patient W1, bed H4-W1: oxygen support (nasal cannula) at 2026-01-10 09:06 CET; last SpO2 87 %',
    );
  });

  // A mutation run (2026-12-07): room air charted is no oxygen support; the readings cleared it.
  it('room air charted, then two readings back: the readings, never "oxygen support (room air)"', () => {
    const air = msg(P, 6, { oxygen: { device: 'room_air' } });
    expect(summaries([enrol(P), spo2(0, 88), spo2(5, 87), air, spo2(10, 95), spo2(15, 96)]).slice(1)).toEqual([
      'Cleared, patient W1, bed H4-W1: SpO2 no longer low: 95 % then 96 % at 2026-01-10 09:15 CET',
    ]);
  });

  // A mutation run (2026-12-07) found the time of the oxygen support unpinned: charted late, it is its own time.
  it('oxygen support charted late (observed before the last reading): the time it was observed, not the latest', () => {
    const o2 = msg(P, 4, { oxygen: { device: 'high_flow_nasal_cannula', flowLpm: 30 } });
    expect(summaries([enrol(P), spo2(0, 88), spo2(5, 87), o2])[1]).toBe(
      'Cleared, patient W1, bed H4-W1: oxygen support (high-flow nasal cannula) at 2026-01-10 09:04 CET; last SpO2 87 %',
    );
  });
});

describe('the stale-feed check', () => {
  const minutes = (m: number) => T0 + m * 60_000;
  const paging = DEFAULT_CONFIG.paging;

  it('is quiet for a patient who is not enrolled', () => {
    expect(feedStatus(run([msg(P, 0, { vitals: { heartRate: 80 } })]).state!, minutes(60), paging)).toBeUndefined();
  });

  it('fires after 15 minutes without a monitor message and clears when data resumes', () => {
    const state = run([enrol(P, 0), msg(P, 1, { vitals: { heartRate: 80 } })]).state!;
    expect(feedStatus(state, minutes(15), paging)).toEqual({ stale: false, since: minutes(1) });
    expect(feedStatus(state, minutes(16), paging)).toEqual({ stale: true, since: minutes(1) });
    const resumed = run([msg(P, 20, { vitals: { heartRate: 82 } })], DEFAULT_CONFIG, state).state!;
    expect(feedStatus(resumed, minutes(21), paging)!.stale).toBe(false);
  });

  it('counts only monitors: charting does not keep a silent monitor feed alive', () => {
    const charted = {
      ...msg(P, 10, { vitals: { temperatureC: 37 } }),
      source: { deviceId: 'ehr', kind: 'ehr' as const },
    };
    const state = run([enrol(P, 0), charted]).state!;
    expect(feedStatus(state, minutes(15), paging)).toEqual({ stale: true, since: minutes(0) });
  });
});
