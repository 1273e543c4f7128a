// With no overrides, resolveConfig hands out the defaults without parsing them (a function's cold start would pay
// zod's first parse and the first Intl formatter): so the defaults must be what the schema makes of them.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, resolveConfig } from '#domain/config.ts';
import { loadGradingConfig } from '#adapters/aws/load-grading-config.ts';
import { gradingConfigFromEnv } from '#adapters/aws/grading-config.ts';
import { shippedConfig } from '#test/support/config-file.ts';

describe('the default configuration', () => {
  it('is a valid configuration, unchanged by the schema', () => {
    // An override that changes nothing goes through the schema.
    expect(resolveConfig({ scheme: DEFAULT_CONFIG.scheme })).toEqual({ ok: true, config: DEFAULT_CONFIG });
  });

  it('is what no overrides, an empty object and an unset CRS_CONFIG_FILE give, each a copy of its own', () => {
    for (const r of [resolveConfig(), resolveConfig({})]) expect(r).toEqual({ ok: true, config: DEFAULT_CONFIG });
    expect(gradingConfigFromEnv({})).toEqual(DEFAULT_CONFIG);
    expect(gradingConfigFromEnv({ CRS_CONFIG_FILE: '' })).toEqual(DEFAULT_CONFIG);
    expect(gradingConfigFromEnv(shippedConfig({}))).toEqual(DEFAULT_CONFIG);
    const a = gradingConfigFromEnv({});
    a.paging.timeoutMinutes.severe = 1;
    expect(DEFAULT_CONFIG.paging.timeoutMinutes.severe).toBe(5);
  });

  // notify, escalate and ack load the schema (and zod) only when the stack ships overrides (docs/cost.md "Cold start").
  it('is what loadGradingConfig gives without a file; with one, what gradingConfigFromEnv gives, refusals alike', async () => {
    expect(await loadGradingConfig({})).toEqual(DEFAULT_CONFIG);
    expect(await loadGradingConfig({ CRS_CONFIG_FILE: '' })).toEqual(DEFAULT_CONFIG);
    const lee = shippedConfig({ scheme: 'lee2014', paging: { timeoutMinutes: { severe: 3 } } });
    expect(await loadGradingConfig(lee)).toEqual(gradingConfigFromEnv(lee));
    expect((await loadGradingConfig(lee)).scheme).toBe('lee2014');
    for (const bad of [shippedConfig({ scheme: 'nope' }), shippedConfig('{"scheme":')]) {
      const refused = (() => {
        try {
          gradingConfigFromEnv(bad);
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(refused).toMatch(/CRS_CONFIG_FILE .* is not (valid JSON|a valid grading configuration)/);
      await expect(loadGradingConfig(bad)).rejects.toThrow(refused);
    }
  });

  it('refuses an aheadOfArrival other than "arrival" (the default) or "observedAt", naming the key and both', () => {
    expect(DEFAULT_CONFIG.aheadOfArrival).toBe('arrival');
    expect(resolveConfig({ aheadOfArrival: 'observedAt' })).toMatchObject({
      ok: true,
      config: { aheadOfArrival: 'observedAt' },
    });
    for (const bad of ['device', 'ObservedAt', true, null]) {
      const r = resolveConfig({ aheadOfArrival: bad });
      expect(r.ok).toBe(false);
      expect(r.ok ? [] : r.errors).toEqual([expect.stringMatching(/^aheadOfArrival: .*"arrival".*"observedAt"/)]);
    }
  });

  it('still refuses what is not an object of overrides', () => {
    expect(resolveConfig([]).ok).toBe(false);
    expect(resolveConfig(null).ok).toBe(false);
    expect(resolveConfig({ scheme: 'nope' }).ok).toBe(false);
  });
});

// Every duration a setting gives is at most 10 years: a longer one (10^12 minutes) put the times computed from it past
// what a date can hold, so that a page could never be sent ("Invalid time value" at every try) and a patient given
// tocilizumab could not be graded.
describe('durations in the configuration', () => {
  const DURATIONS: [path: string, unit: 'minutes' | 'hours'][] = [
    ['feverWindowMinutes', 'minutes'],
    ['holdMinutes', 'minutes'],
    ['episodeEndsAfterHoursAtGrade0', 'hours'],
    ['tocilizumab.repeatAfterHours', 'hours'],
    ['paging.timeoutMinutes.severe', 'minutes'],
    ['paging.timeoutMinutes.other', 'minutes'],
    ['paging.ackLinkMinutes', 'minutes'],
    ['paging.staleFeedMinutes', 'minutes'],
    ['paging.staleFeedGroup.windowMinutes', 'minutes'],
    ['paging.deliveryAlertMinutes', 'minutes'],
  ];
  const at = (path: string, value: number): object =>
    path
      .split('.')
      .reverse()
      .reduce<unknown>((inner, key) => ({ [key]: inner }), value) as object;

  it.each(DURATIONS)('%s: 10 years at most, named when longer', (path, unit) => {
    const most = unit === 'minutes' ? 5_256_000 : 87_600;
    // A timeout that long needs acknowledge links as long (below).
    const links = path.startsWith('paging.timeoutMinutes') ? { ackLinkMinutes: most } : {};
    const withLinks = (o: object) => ({ ...o, paging: { ...(o as { paging?: object }).paging, ...links } });
    expect(resolveConfig(withLinks(at(path, most))).ok).toBe(true);
    expect(resolveConfig(withLinks(at(path, most + 1)))).toEqual({
      ok: false,
      errors: [`${path}: at most 10 years (${most} ${unit})`],
    });
  });
});

// Acknowledge links shorter than a level's time to answer were taken: links of 5 minutes with 15 to answer a grade 2
// page (`crs serve --config`, ackLinkMinutes 0.05 and timeouts of 1 minute: "This acknowledge link has expired" 4 s
// after the page, which stayed open at the fellow's level for the rest of the minute). On AWS, which has no board,
// the person paged could not acknowledge at all until the ladder paged the next level.
describe('acknowledge links and the time a level has to answer', () => {
  it.each([
    [{ paging: { ackLinkMinutes: 5 } }, '5 is shorter than timeoutMinutes.other (15)'],
    [
      { paging: { ackLinkMinutes: 10, timeoutMinutes: { severe: 12, other: 8 } } },
      '10 is shorter than timeoutMinutes.severe (12)',
    ],
    [
      { paging: { ackLinkMinutes: 0.05, timeoutMinutes: { severe: 1, other: 1 } } },
      '0.05 is shorter than timeoutMinutes.severe (1)',
    ],
  ])(
    'a link that would expire before its level may be escalated past is refused, naming both: %j',
    (overrides, text) => {
      expect(resolveConfig(overrides)).toEqual({
        ok: false,
        errors: [
          `paging.ackLinkMinutes: ${text}: a link would expire while its level still has time to acknowledge; make it at least as long`,
        ],
      });
    },
  );

  it('a link as long as the longest timeout, or longer, is taken', () => {
    expect(resolveConfig({ paging: { ackLinkMinutes: 15 } }).ok).toBe(true);
    expect(resolveConfig({ paging: { ackLinkMinutes: 1, timeoutMinutes: { severe: 0.5, other: 1 } } }).ok).toBe(true);
  });
});

// A team named twice in one list was taken and its pages could never be stored on AWS: a grade change (or an
// alert) to that list opens one page per team, two of them the same item in one DynamoDB transaction, which DynamoDB
// refuses at every retry ("Transaction request cannot include multiple operations on one item"), so nobody was paged.
describe('team lists in the configuration', () => {
  it.each([
    [{ routing: { crs: [['hematology'], ['hematology'], ['hematology', 'icu', 'icu'], ['icu']] } }, 'routing.crs.2'],
    [{ routing: { icans: [['neurology', 'neurology'], [], [], []] } }, 'routing.icans.0'],
    [{ paging: { alertTeams: { staleFeed: ['bedside', 'bedside'] } } }, 'paging.alertTeams.staleFeed'],
    [{ paging: { alertTeams: { spo2: ['hematology', 'bedside', 'hematology'] } } }, 'paging.alertTeams.spo2'],
  ])('a team named twice is refused, naming the list: %j', (overrides, path) => {
    const r = resolveConfig(overrides);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors).toEqual([
      expect.stringMatching(new RegExp(`^${path}: (icu|neurology|bedside|hematology) is named twice`)),
    ]);
  });

  it('a list of distinct teams, or none (a grade the site pages nobody at), is taken', () => {
    expect(
      resolveConfig({ routing: { crs: [[], ['hematology'], ['hematology', 'icu'], ['icu', 'hematology']] } }).ok,
    ).toBe(true);
  });
});
// Texts pages carry. Taken whole, a megabyte of protocol made every page fail on AWS (SNS takes 256 KB a message, a
// DynamoDB item 400 KB), once the configuration no longer had to fit in a function's 4 KB of variables; a tab in a
// role's name goes into the SNS attribute the teams' subscriptions filter on.
describe('texts that pages carry, in the configuration', () => {
  const steps = (n: number, text = 'step') => Array.from({ length: n }, () => text);
  it.each([
    [{ actions: { crs: [steps(1, 'x'.repeat(501)), [], [], []] } }, 'actions.crs.0.0: is 501 characters: at most 500'],
    [{ actions: { icans: [[], [], [], steps(21)] } }, 'actions.icans.3: 21 steps: at most 20'],
    [{ actions: { icansWithoutCrs: ['MRI\nEEG'] } }, 'actions.icansWithoutCrs.0: holds a control character'],
    [{ actions: { crs: [[''], [], [], []] } }, 'actions.crs.0.0: is empty'],
    [{ actions: { deEscalation: 'x'.repeat(501) } }, 'actions.deEscalation: is 501 characters: at most 500'],
    [
      { actions: { bispecificInterrupt: 'x'.repeat(501) } },
      'actions.bispecificInterrupt: is 501 characters: at most 500',
    ],
    [{ actions: { bispecificInterrupt: 'stop\tthe pump' } }, 'actions.bispecificInterrupt: holds a control character'],
    [{ actions: { deEscalation: 'review\r\n' } }, 'actions.deEscalation: holds a control character'],
    [
      { paging: { policies: { icu: { levels: ['charge nurse', 'fellow\t2'], loops: 1 } } } },
      'paging.policies.icu.levels.1: holds a control character',
    ],
    [
      { paging: { policies: { icu: { levels: ['x'.repeat(101)], loops: 1 } } } },
      'paging.policies.icu.levels.0: is 101 characters: at most 100',
    ],
  ])('is refused beyond its bounds, naming it: %#', (overrides, error) => {
    const r = resolveConfig(overrides);
    expect(r.ok ? [] : r.errors).toEqual([expect.stringContaining(error)]);
  });

  it('is taken at its bounds: 20 steps of 500 characters a grade, a role of 100, no steps, empty interruption and stand-down texts', () => {
    const protocol = [steps(20, 'x'.repeat(500)), [], steps(1), steps(3)];
    expect(
      resolveConfig({
        actions: { crs: protocol, icans: protocol, icansWithoutCrs: [], bispecificInterrupt: '', deEscalation: '' },
        paging: { policies: { icu: { levels: ['x'.repeat(100), 'Oncall (ICU) — attending'], loops: 2 } } },
      }).ok,
    ).toBe(true);
  });
});
// Thresholds a measurement is compared with, outside what the measurement can be: taken, they graded every patient
// as hypotensive (systolicBelow 900, a typo for 90) or none (9), and Lee's FiO2 estimates could be 10^308 or -5. Each
// is now held to what a message may carry (docs/contract.md): a patient's own hypotension thresholds, an FiO2, a flow.
describe('clinical thresholds in the configuration', () => {
  it.each([
    [{ hypotension: { systolicBelow: 900 } }, 'hypotension.systolicBelow: 900 is outside 20-200'],
    [{ hypotension: { systolicBelow: 9 } }, 'hypotension.systolicBelow: 9 is outside 20-200'],
    [{ hypotension: { mapBelow: 650 } }, 'hypotension.mapBelow: 650 is outside 10-150'],
    [{ lowFlowMaxLpm: 600 }, 'lowFlowMaxLpm: 600 is outside 0-80'],
    [{ lee: { fio2Estimate: { blow_by: 1e308 } } }, 'lee.fio2Estimate.blow_by: 1e+308 is outside 0.21-1'],
    [{ lee: { fio2Estimate: { room_air: -5 } } }, 'lee.fio2Estimate.room_air: -5 is outside 0.21-1'],
    [{ lee: { fio2Estimate: { nasalCannulaMax: 4.5 } } }, 'lee.fio2Estimate.nasalCannulaMax: 4.5 is outside 0.21-1'],
    [
      { lee: { fio2Estimate: { nasalCannulaPerLpm: -0.04 } } },
      'lee.fio2Estimate.nasalCannulaPerLpm: -0.04 is outside 0-0.79',
    ],
  ])('%j is refused, naming the key and the range', (overrides, error) => {
    expect(resolveConfig(overrides)).toEqual({ ok: false, errors: [error] });
  });

  it('the ends of each range are taken', () => {
    for (const o of [
      { hypotension: { systolicBelow: 20, mapBelow: 150 } },
      { hypotension: { systolicBelow: 200, mapBelow: 10 } },
      { lowFlowMaxLpm: 80 },
      { lee: { fio2Estimate: { room_air: 0.21, venturi: 1, nasalCannulaPerLpm: 0, nasalCannulaMax: 1 } } },
    ])
      expect(resolveConfig(o).ok, JSON.stringify(o)).toBe(true);
  });
});

// The page computes a tocilizumab dose and says whether another is allowed from these: a site's protocol may advise
// less than the label, never more (a maxDoseMg of 8000 advised a 150 kg patient 1200 mg).
describe('tocilizumab settings', () => {
  it.each([
    ['mgPerKg', 8, 6, "is above the tocilizumab label's 8 mg/kg from 30 kg"],
    ['mgPerKgLowWeight', 12, 10, "is above the tocilizumab label's 12 mg/kg under 30 kg"],
    ['lowWeightBelowKg', 30, 25, "is above the tocilizumab label's 30 kg for the higher mg/kg"],
    ['maxDoseMg', 800, 600, "is above the tocilizumab label's 800 mg a dose"],
    ['max24h', 3, 2, "is above the tocilizumab label's 3 doses in 24 h"],
    ['maxTotal', 4, 3, "is above the tocilizumab label's 4 doses in all"],
  ] as const)('%s: the label limit %d or less is taken, more is refused naming it', (key, most, less, message) => {
    for (const v of [most, less]) expect(resolveConfig({ tocilizumab: { [key]: v } }).ok).toBe(true);
    expect(resolveConfig({ tocilizumab: { [key]: most * 10 } })).toEqual({
      ok: false,
      errors: [`tocilizumab.${key}: ${most * 10} ${message}`],
    });
  });

  it('repeatAfterHours: every 8 h or less often is taken, more often is refused naming the label', () => {
    for (const v of [8, 12]) expect(resolveConfig({ tocilizumab: { repeatAfterHours: v } }).ok).toBe(true);
    expect(resolveConfig({ tocilizumab: { repeatAfterHours: 4 } })).toEqual({
      ok: false,
      errors: ["tocilizumab.repeatAfterHours: 4 is more often than the label's every 8 h"],
    });
  });
});

describe('the fever-masking drugs, pinned by a mutation run', () => {
  it('are drugs the contract names: one it has no word for (paracetamol) is refused naming the key, never a waiver that cannot apply', () => {
    const r = resolveConfig({ feverMaskingDrugs: ['paracetamol', 'ibuprofen'] });
    expect(r.ok ? [] : r.errors).toEqual([expect.stringMatching(/^feverMaskingDrugs\.0: .*acetaminophen/)]);
    const known = resolveConfig({ feverMaskingDrugs: ['acetaminophen', 'ibuprofen'] });
    expect(known.ok && known.config.feverMaskingDrugs).toEqual(['acetaminophen', 'ibuprofen']);
  });
});

// A Lee high-dose threshold with a misspelt key (`units` for `unit`) was taken, the key dropped: the site meant
// 0.3 mcg/kg/min, the engine kept the default unit and compared with 0.3 mcg/min, so every norepinephrine infusion
// graded Lee 3 (high-dose) instead of 2. Every other part of the configuration refused an unknown key already.
describe('Lee high-dose thresholds', () => {
  it('refuse a key they do not have, naming it, as every other part of the configuration does', () => {
    const r = resolveConfig({ lee: { highDose: { norepinephrine: { dose: 0.3, units: 'mcg/kg/min' } } } });
    expect(r.ok ? [] : r.errors).toEqual(['lee.highDose.norepinephrine: Unrecognized key: "units"']);
  });

  it('take a dose alone, keeping the unit of the default', () => {
    const r = resolveConfig({ lee: { highDose: { dopamine: { dose: 5 } } } });
    expect(r.ok && r.config.lee.highDose.dopamine).toEqual({ dose: 5, unit: 'mcg/kg/min' });
    expect(r.ok && r.config.lee.highDose.norepinephrine).toEqual({ dose: 20, unit: 'mcg/min' });
  });
});

// JSON.parse makes "__proto__" an own key of the file's object; the overlay assigned it, which set the merged
// object's prototype instead: the key was neither refused nor taken, and the file loaded as if it were not there.
describe('a "__proto__" key in the file', () => {
  it('is refused as the unknown key it is, at the top and inside a section', () => {
    for (const [json, at] of [
      ['{"__proto__": {"feverThresholdC": 39}}', 'config'],
      ['{"paging": {"__proto__": {"staleFeedMinutes": 5}}}', 'paging'],
    ]) {
      const r = resolveConfig(JSON.parse(json!));
      expect(r.ok ? [] : r.errors, json).toEqual([`${at}: Unrecognized key: "__proto__"`]);
    }
    expect(({} as Record<string, unknown>).feverThresholdC).toBe(undefined);
  });
});
