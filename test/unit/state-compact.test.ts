// The compact stored form of the patient state (version 3, for DynamoDB): the same state as version 2 for any
// course, and graded the same once read back; smaller before any compression.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrivalOf } from '../../shared/app/digest.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import { compactState, expandState } from '../../shared/domain/state-compact.ts';
import { hypotensionThresholds } from '../../shared/domain/grading.ts';
import { deserializeState, emptyState, serializeState, type PatientState } from '../../shared/domain/state.ts';
import { course, permutation } from '../support/arbitraries.ts';
import { enrol, msg, T0 } from '../support/messages.ts';
import { config, run } from '../support/run.ts';
import { decodeStateItem, encodeStateItem } from '../../shared/adapters/aws/state-item.ts';
import { identify } from '../../shared/domain/seen.ts';
import { week } from '../support/week.ts';

const throughJson = (s: PatientState) => expandState(JSON.parse(JSON.stringify(compactState(s))) as unknown[]);
/** The state as stored in version 2, as a value (the order of a section's fields is not kept). */
const v2 = (s: PatientState) => JSON.parse(serializeState(s)) as unknown;

describe('the compact patient state', () => {
  it('is the same state as version 2 after any course in any arrival order (millisecond times, folded history), and grades the same', () => {
    const small = config({ bpHistory: 3, vasopressorHistory: 2 });
    fc.assert(
      fc.property(
        course('C', 20),
        fc.array(fc.integer(), { minLength: 100, maxLength: 100 }),
        fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1 }),
        (ordered, keys, jitter) => {
          let live: PatientState | undefined;
          let stored: PatientState | undefined;
          for (const i of permutation(ordered.length, keys)) {
            const m = structuredClone(ordered[i]!);
            m.observedAt = new Date(Date.parse(m.observedAt) + jitter[i % jitter.length]!).toISOString();
            const a = reduce(live, m, small, arrivalOf(m));
            const b = reduce(stored, m, small, arrivalOf(m));
            expect({ ...b, state: v2(b.state) }).toEqual({ ...a, state: v2(a.state) });
            live = a.state;
            stored = throughJson(b.state);
            expect(v2(stored)).toEqual(v2(b.state));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('round-trips an empty state and a week of one-minute vitals, in under 70 % of the bytes of version 2 without the window', () => {
    expect(v2(throughJson(emptyState('E-1')))).toEqual(v2(emptyState('E-1')));
    let state: PatientState | undefined;
    for (const m of week('W-C')) state = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    expect(v2(throughJson(state!))).toEqual(v2(state!));
    const windowless = { ...state!, seen: [] };
    const version2 = serializeState(windowless).length;
    const version3 = JSON.stringify(compactState(windowless)).length;
    expect(version3).toBeLessThan(version2 * 0.7);
  });

  it('refuses a form it does not know', () => {
    expect(() => expandState([4, 'X'])).toThrow(/unsupported compact patient state version 4/);
  });
});

describe('the stored state after a fever', () => {
  it("keeps few of the febrile readings once they leave the fever window: a probe's hour of fever a day ago adds at most 64 bytes", () => {
    // Vitals every 15 s for 30 h; a fever in the second hour. Keeping all 64 latest febrile readings for the rest of
    // the stay added about 200 bytes and took the AWS state item past 1 KB (two write units at every message).
    const feed = (fever: boolean) => [
      enrol('P', -60),
      ...Array.from({ length: 4 * 60 * 30 }, (_, i) => {
        const hot = fever && i >= 4 * 60 && i < 4 * 120;
        const temperatureC = hot ? 38.6 + (i % 5) / 10 : 36.9;
        return msg('P', i / 4, { vitals: { temperatureC, heartRate: 90, systolicBP: 120, spo2: 97 } }, `m${i}`);
      }),
    ];
    const size = (fever: boolean) => encodeStateItem(run(feed(fever)).state!, []).length;
    expect(size(true) - size(false)).toBeLessThanOrEqual(64);
  });
});

describe("a patient's own hypotension thresholds in the stored forms", () => {
  // Stored before each threshold kept its own time: one field, `hypotension`, with both and one time.
  const withThresholds = () => {
    let s: PatientState | undefined;
    for (const [minutes, hypotension] of [
      [0, { systolicBelow: 100 }],
      [10, { mapBelow: 70 }],
    ] as const) {
      const m = msg('H', minutes, { enrolment: { hypotension } });
      s = reduce(s, m, DEFAULT_CONFIG, arrivalOf(m)).state;
    }
    return s!;
  };

  it('a state stored before the split reads each threshold at the old field’s time, in both forms', () => {
    const now = withThresholds();
    const { hypotensionSystolicBelow: _s, hypotensionMapBelow: _m, ...rest } = now.enrolment;
    const legacy = { v: { systolicBelow: 100, mapBelow: 70 }, t: T0 + 10 * 60_000 };
    const before = JSON.parse(serializeState(now)) as { enrolment: Record<string, unknown> };
    before.enrolment = { ...rest, hypotension: legacy };
    const read = deserializeState(JSON.stringify(before));
    expect(read.enrolment.hypotensionSystolicBelow).toEqual({ v: 100, t: legacy.t });
    expect(read.enrolment.hypotensionMapBelow).toEqual({ v: 70, t: legacy.t });
    expect(hypotensionThresholds(read, DEFAULT_CONFIG)).toEqual({ systolicBelow: 100, mapBelow: 70 });

    const compact = compactState(now);
    const enrolmentSlots = compact[4] as unknown[];
    expect(enrolmentSlots.length).toBe(18); // the old field's slot (12, 13), then the two thresholds
    const compactBefore = [...compact];
    compactBefore[4] = [...enrolmentSlots.slice(0, 12), legacy.v, (now.clock - legacy.t) / 1000];
    expect(expandState(compactBefore).enrolment).toEqual(read.enrolment);
  });

  it('a state written now also carries both thresholds in the old field, for the code before (a rollback)', () => {
    const now = withThresholds();
    const legacy = { v: { systolicBelow: 100, mapBelow: 70 }, t: T0 + 10 * 60_000 };
    expect((JSON.parse(serializeState(now)) as { enrolment: unknown }).enrolment).toMatchObject({
      hypotension: legacy,
    });
    const slots = compactState(now)[4] as unknown[];
    expect(slots.slice(12, 14)).toEqual([legacy.v, (now.clock - legacy.t) / 1000]);
    // And it reads back split, each threshold with its own time.
    expect(deserializeState(serializeState(now)).enrolment).toEqual(now.enrolment);
    expect(expandState(compactState(now)).enrolment).toEqual(now.enrolment);
    expect(now.enrolment.hypotensionSystolicBelow).toEqual({ v: 100, t: T0 });
  });

  it('a state the code before corrected at the same instant after a rollback: its correction wins, as a later arrival', () => {
    // The reducer keeps the later arrival of two values of one instant (a correction), and so did the code before
    // with the old field: an old field unlike the one written beside the split ones was changed by it since.
    // Until 2026-12-06 the split threshold of that instant was kept (MAP 70 where 65 had been charted).
    const now = withThresholds(); // systolic 100 at T0, MAP 70 at T0 + 10 min
    const json = JSON.parse(serializeState(now)) as { enrolment: Record<string, unknown> };
    const corrected = { v: { systolicBelow: 100, mapBelow: 65 }, t: T0 + 10 * 60_000 };
    json.enrolment.hypotension = corrected;
    const compact = compactState(now);
    compact[4] = [...(compact[4] as unknown[]).slice(0, 12), corrected.v, (now.clock - corrected.t) / 1000];
    for (const read of [deserializeState(JSON.stringify(json)), expandState(compact)]) {
      expect(read.enrolment.hypotensionMapBelow).toEqual({ v: 65, t: corrected.t });
      expect(read.enrolment.hypotensionSystolicBelow).toEqual({ v: 100, t: corrected.t });
      expect(hypotensionThresholds(read, DEFAULT_CONFIG)).toEqual({ systolicBelow: 100, mapBelow: 65 });
    }
  });

  it('a state the code before updated after a rollback: its later change to the old field wins', () => {
    // The code before kept the split fields it did not know as they were, and replaced the old field whole.
    const now = withThresholds();
    const json = JSON.parse(serializeState(now)) as { enrolment: Record<string, unknown> };
    json.enrolment.hypotension = { v: { systolicBelow: 95 }, t: T0 + 20 * 60_000 };
    const read = deserializeState(JSON.stringify(json)).enrolment;
    expect(read.hypotensionSystolicBelow).toEqual({ v: 95, t: T0 + 20 * 60_000 });
    expect(read.hypotensionMapBelow).toEqual({ v: 70, t: T0 + 10 * 60_000 });
  });
});

describe('pinned by a mutation run', () => {
  /** Every field of the state set, each with a time of its own (seconds before the clock, a hundred a part). */
  function everyField(): PatientState {
    const clock = Date.parse('2026-01-10T10:00:00Z');
    const at = (s: number) => clock - s * 1000;
    return {
      ...emptyState('G-1'),
      clock,
      seq: 42,
      enrolment: {
        therapy: { v: 'car-t', t: at(101) },
        product: { v: 'axi-cel', t: at(102) },
        infusedAt: { v: '2026-01-08T08:00:00Z', t: at(103) },
        weightKg: { v: 70, t: at(104) },
        bed: { v: 'H4-1', t: at(105) },
        ward: { v: 'H4', t: at(106) },
        hypotensionSystolicBelow: { v: 85, t: at(107) },
        hypotensionMapBelow: { v: 60, t: at(108) },
      },
      latestInfusedAt: Date.parse('2026-01-09T08:00:00Z'),
      firstEnrolledAt: Date.parse('2026-01-10T08:00:00Z'),
      vitals: {
        temperatureC: { v: 38.6, t: at(201) },
        heartRate: { v: 110, t: at(202) },
        respiratoryRate: { v: 22, t: at(203) },
        systolicBP: { v: 95, t: at(204) },
        diastolicBP: { v: 55, t: at(205) },
        meanArterialPressure: { v: 68, t: at(206) },
        spo2: { v: 93, t: at(207) },
      },
      oxygen: { v: { device: 'nasal_cannula', flowLpm: 2 }, t: at(301) },
      vasopressors: { v: [{ drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' }], t: at(302) },
      neuro: {
        iceScore: { v: 7, t: at(401) },
        consciousness: { v: 'awakens_to_voice', t: at(402) },
        seizure: { v: 'none', t: at(403) },
        motorWeakness: { v: true, t: at(404) },
        cerebralEdema: { v: 'none', t: at(405) },
      },
      organ: { maxCtcaeGrade: { v: 3, t: at(501) }, transaminitisGrade: { v: 1, t: at(502) } },
      labs: { crpMgL: { v: 120, t: at(601) }, ferritinNgMl: { v: 2500, t: at(602) }, il6PgMl: { v: 80, t: at(603) } },
      febrile: [
        [at(702), 39.1],
        [at(701), 38.6],
      ],
      latestFever: at(701),
      maskedFever: at(703),
      unmaskedFever: at(702),
      tocilizumab: [at(802), at(801)],
      lastGiven: { tocilizumab: at(801), dexamethasone: at(803), acetaminophen: at(804) },
      lastMaskingAt: at(804),
      episodeEndedAt: at(901),
      crsZeroSince: at(902),
      notified: {
        crs: { grade: 2, teams: ['hematology', 'icu'], belowSince: at(903) },
        icans: { grade: 1, teams: ['neurology'] },
      },
      lastMonitorAt: at(904),
      monitoringEnd: { v: 'discharged', t: at(1301) },
      lastEnrolmentAt: at(1302),
      readmittedAt: at(1303),
      enrolmentsSinceEnd: [at(1304), at(1302)],
      placedAhead: [
        [at(-60), at(1401)],
        [at(-120), at(1402)],
      ],
      spo2: [
        [at(1002), 91],
        [at(1001), 93],
      ],
      spo2Alert: true,
      seen: [['m-1', 'digest-1', 'm-2', 'digest-2']],
      bp: [
        [at(1102), 88, 60],
        [at(1101), 95, 68],
      ],
      pressors: [[at(1103), true]],
      bpFold: {
        at: at(1200),
        on: true,
        last: 1,
        infusing: false,
        stoppedAt: at(1201),
        pair: null,
        prev: [at(1202), 80, 58],
      },
    };
  }

  /**
   * That state as this code writes it (commit 9f4d80e), in the layout at the top of state-compact.ts: stored items
   * are read by position, so this never changes (a field appended at the end may be added).
   */
  const STORED = [
    3,
    'G-1',
    1768039200000,
    42,
    [
      'car-t',
      101,
      'axi-cel',
      102,
      '2026-01-08T08:00:00Z',
      103,
      70,
      104,
      'H4-1',
      105,
      'H4',
      106,
      { systolicBelow: 85, mapBelow: 60 },
      107,
      85,
      107,
      60,
      108,
    ],
    [38.6, 201, 110, 202, 22, 203, 95, 204, 55, 205, 68, 206, 93, 207],
    [{ device: 'nasal_cannula', flowLpm: 2 }, 301],
    [[{ drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' }], 302],
    [7, 401, 'awakens_to_voice', 402, 'none', 403, true, 404, 'none', 405],
    [3, 501, 1, 502],
    [120, 601, 2500, 602, 80, 603],
    [702, 39.1, 701, 38.6],
    703,
    [1102, 88, 60, 1, 95, 68],
    [1103, 1],
    [1200, 1, 1, 0, 1201, null, [1202, 80, 58]],
    [802, 801],
    ['tocilizumab', 801, 'dexamethasone', 803, 'acetaminophen', 804],
    804,
    901,
    902,
    [
      [2, ['hematology', 'icu'], 903],
      [1, ['neurology']],
    ],
    904,
    [1002, 91, 1001, 93],
    1,
    [['m-1', 'digest-1', 'm-2', 'digest-2']],
    701,
    703,
    702,
    ['discharged', 1301],
    1302,
    [-60, 1461, 60, 1522],
    null,
    93600,
    7200,
    1303,
    [1304, 1302],
  ];

  it('writes every field in its place and reads an item written before back field for field', () => {
    // A round trip alone passes with two fields of a section swapped (or any order): an item written before
    // would then be read with its values in the wrong fields (a CTCAE grade read as a transaminitis grade).
    expect(JSON.parse(JSON.stringify(compactState(everyField())))).toEqual(STORED);
    expect(expandState(structuredClone(STORED))).toEqual(everyField());
  });

  it('reads an item written before the end of monitoring was appended as a patient still monitored', () => {
    expect(expandState(STORED.slice(0, -8))).toEqual({
      ...everyField(),
      monitoringEnd: undefined,
      lastEnrolmentAt: undefined,
      placedAhead: [],
      latestInfusedAt: undefined,
      firstEnrolledAt: undefined,
      readmittedAt: undefined,
      enrolmentsSinceEnd: [],
    });
  });

  it('reads an item written before placedAhead was appended as one that placed no message ahead', () => {
    expect(expandState(STORED.slice(0, -6))).toEqual({
      ...everyField(),
      placedAhead: [],
      latestInfusedAt: undefined,
      firstEnrolledAt: undefined,
      readmittedAt: undefined,
      enrolmentsSinceEnd: [],
    });
  });

  it('reads an item written before latestInfusedAt was appended as one that knows only its current infusion', () => {
    expect(expandState(STORED.slice(0, -5))).toEqual({
      ...everyField(),
      latestInfusedAt: undefined,
      firstEnrolledAt: undefined,
      readmittedAt: undefined,
      enrolmentsSinceEnd: [],
    });
  });

  it('reads an item written before firstEnrolledAt was appended as one enrolled at its enrolment fields (2026-12-07)', () => {
    expect(expandState(STORED.slice(0, -3))).toEqual({
      ...everyField(),
      firstEnrolledAt: undefined,
      readmittedAt: undefined,
      enrolmentsSinceEnd: [],
    });
  });

  it('reads an item written before readmittedAt was appended as one re-admitted at its latest enrolment (2026-12-07)', () => {
    expect(expandState(STORED.slice(0, -2))).toEqual({
      ...everyField(),
      readmittedAt: undefined,
      enrolmentsSinceEnd: [],
    });
  });

  it('reads an item written before enrolmentsSinceEnd was appended as one that kept none (2026-12-07)', () => {
    expect(expandState(STORED.slice(0, -1))).toEqual({ ...everyField(), enrolmentsSinceEnd: [] });
  });

  it('keeps one enrolment since the end, and writes none as nothing: a state that kept none ends before it', () => {
    const one = { ...everyField(), enrolmentsSinceEnd: [everyField().clock - 1304_000] };
    expect(throughJson(one)).toEqual(one);
    const none = { ...everyField(), enrolmentsSinceEnd: [] };
    expect(JSON.parse(JSON.stringify(compactState(none)))).toEqual(STORED.slice(0, -1));
  });

  it('keeps, in both forms, where a message dated ahead was placed: its correction after a reload merges with it', () => {
    // 38.6 for "10:02" arrives at 10:00 and is placed there; the state is stored and read back; 36.9 for "10:02"
    // arrives at 10:05: one instant, corrected, no fever.
    const febrile = msg('G-2', 122, { vitals: { temperatureC: 38.6 } });
    const correction = msg('G-2', 122, { vitals: { temperatureC: 36.9 } });
    const first = reduce(undefined, febrile, DEFAULT_CONFIG, { ...arrivalOf(febrile), receivedAt: T0 + 120 * 60_000 });
    expect(first.kind === 'applied' && first.assessment.crsGrade).toBe(1);
    for (const stored of [
      expandState(JSON.parse(JSON.stringify(compactState(first.state)))),
      deserializeState(serializeState(first.state)),
    ]) {
      const next = reduce(stored, correction, DEFAULT_CONFIG, {
        ...arrivalOf(correction),
        receivedAt: T0 + 125 * 60_000,
      });
      expect(next.kind === 'applied' && next.assessment.crsGrade).toBe(0);
    }
  });

  it('keeps the placements of the latest 32 instants dated ahead, whatever order they came in, each once', () => {
    // 33 readings each dated a while ahead of its arrival, the latest instant first (38.6, placed at its arrival),
    // the earliest last. A correction of the latest instant (36.9) still merges with it: no fever.
    const at = (k: number) => 200 + k; // observed, in minutes from T0
    let state: PatientState | undefined;
    const send = (k: number, temperatureC: number, arrival: number) => {
      const m = msg('G-3', at(k), { vitals: { temperatureC } });
      const r = reduce(state, m, DEFAULT_CONFIG, { ...arrivalOf(m), receivedAt: T0 + arrival * 60_000 });
      if (r.kind !== 'applied') throw new Error(r.kind);
      state = r.state;
      return r;
    };
    send(32, 38.6, 150);
    for (let k = 31; k >= 0; k--) send(k, 37, 150 + (32 - k));
    send(31, 37.1, 190); // a correction of an instant already placed: kept once
    // Through the compact form: each placement after the first is stored as seconds after the one before it.
    const before = state!.placedAhead;
    state = expandState(JSON.parse(JSON.stringify(compactState(state!))) as unknown[]);
    expect(state.placedAhead).toEqual(before);
    const placed = state!.placedAhead.map(([o]) => o);
    expect([placed.length, new Set(placed).size]).toEqual([32, 32]);
    expect(send(32, 36.9, 191).assessment.crsGrade).toBe(0);
  });
});

describe('the AWS state item, pinned by a mutation run of the kept state', () => {
  it('keeps every digest of its pending messages a duplicate, reused ids with several digests among them', () => {
    // The window is sized by digests, not messages: 100 pending ids each applied with three contents.
    const pending = Array.from({ length: 100 }, (_, i) => ({
      messageId: `m${i}`,
      digests: ['a', 'b', 'c'].map((d) => `${d}${i}`),
      entries: [],
    }));
    const { state } = decodeStateItem(encodeStateItem(emptyState('Q-1'), pending));
    const answers = pending.flatMap((p) => p.digests.map((d) => identify(state.seen, p.messageId, d)));
    expect(answers.filter((a) => a !== 'duplicate')).toEqual([]);
  });
});
