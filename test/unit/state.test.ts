// The patient state is one compact JSON document in one DynamoDB item (hard limit 400 KB): prove it is bounded.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import type { DeviceMessage } from '../../shared/domain/contract.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import { arrivalOf } from '../../shared/app/digest.ts';
import { seenCount } from '../../shared/domain/seen.ts';
import { deserializeState, emptyState, serializeState, type PatientState } from '../../shared/domain/state.ts';
import { enrol, msg } from '../support/messages.ts';

const DYNAMODB_ITEM_LIMIT = 400 * 1024;

/** A week of one-minute vitals with a fever course, pressors and tocilizumab doses, deterministic. */
function* week(patientId: string): Generator<DeviceMessage> {
  yield enrol(patientId, -1);
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let m = 0; m < 7 * 24 * 60; m++) {
    const feverish = m % (24 * 60) < 8 * 60; // eight febrile hours a day
    yield msg(patientId, m, {
      vitals: {
        temperatureC: Math.round((feverish ? 38 + rand() * 2 : 36.5 + rand()) * 10) / 10,
        heartRate: 80 + Math.round(rand() * 40),
        systolicBP: 80 + Math.round(rand() * 40),
        meanArterialPressure: 60 + Math.round(rand() * 20),
        spo2: 90 + Math.round(rand() * 10),
      },
    });
    if (m % 180 === 0) yield msg(patientId, m, { vasopressors: m % 360 === 0 ? [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] : [] });
    if (m % (8 * 60) === 30) yield msg(patientId, m, { medications: [{ drug: 'tocilizumab', doseMg: 560 }, { drug: 'acetaminophen', doseMg: 1000 }] });
    if (m % 240 === 0) yield msg(patientId, m, { neuro: { iceScore: 10 - (m % 7), consciousness: 'alert' }, oxygen: { device: 'nasal_cannula', flowLpm: 1 + (m % 5) } });
  }
}

describe('the patient state', () => {
  it('stays bounded through a week of one-minute vitals', () => {
    let state: PatientState | undefined;
    let count = 0;
    const sizes: number[] = [];
    for (const m of week('W-1')) {
      state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      count++;
      if (count % 1440 === 0) sizes.push(serializeState(state).length);
    }
    expect(count).toBeGreaterThan(7 * 24 * 60);
    const max = Math.max(...sizes);
    // Far under the item limit, and no growth from day 2 to day 7.
    expect(max).toBeLessThan(DYNAMODB_ITEM_LIMIT / 10);
    expect(sizes.at(-1)! - sizes[1]!).toBeLessThan(2 * 1024);
    // Each bounded part holds what the rules need and no more.
    expect(seenCount(state!.seen)).toBeGreaterThanOrEqual(DEFAULT_CONFIG.dedupeWindow);
    expect(seenCount(state!.seen)).toBeLessThan(DEFAULT_CONFIG.dedupeWindow + 64);
    expect(state!.bp).toHaveLength(DEFAULT_CONFIG.bpHistory);
    expect(state!.febrile.every(([t]) => t >= state!.clock - DEFAULT_CONFIG.feverWindowMinutes * 60_000)).toBe(true);
    expect(state!.febrile.length).toBeLessThanOrEqual(71); // one entry per 0.1 °C from 38.0 to 45.0 at most
    expect(state!.tocilizumab.length).toBeLessThanOrEqual(16);
  });

  it('round-trips through JSON and grades the same afterwards', () => {
    const msgs = [...week('W-2')].slice(0, 3000);
    let live: PatientState | undefined;
    let stored: string | undefined;
    for (const m of msgs) {
      const fromStore = stored === undefined ? undefined : deserializeState(stored);
      const a = reduce(live, m, DEFAULT_CONFIG, arrivalOf(m));
      const b = reduce(fromStore, m, DEFAULT_CONFIG, arrivalOf(m));
      expect(b).toEqual(a);
      live = a.state;
      stored = serializeState(b.state);
    }
  });

  it('serialises an empty state and refuses an unknown version', () => {
    const s = emptyState('E-1');
    expect(deserializeState(serializeState(s))).toEqual(s);
    expect(() => deserializeState('{"v":3}')).toThrow(/unsupported patient state version 3/);
  });

  it('never mutates the state it is given', () => {
    let state: PatientState | undefined;
    for (const m of [...week('W-3')].slice(0, 600)) {
      const before = state === undefined ? undefined : serializeState(state);
      const next = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
      if (state) expect(serializeState(state)).toBe(before);
      state = next;
    }
  });
});
