// The grading configuration's defaults (../docs/crs-rules.md fixes them; config.ts has the schema that checks a
// deployment's overrides against them). A module of its own, without zod: a function that checks no overrides
// (notify, escalate, ack, when the stack ships none) loads no zod at its cold start (docs/cost.md "Cold start").
import type { GradingConfig } from './config.ts';
import { DEFAULT_PAGING } from './paging.ts';
import { DEFAULT_TIME_ZONE } from './time.ts';

export const DEFAULT_CONFIG: GradingConfig = {
  scheme: 'astct2019',
  feverThresholdC: 38.0,
  feverWindowMinutes: 24 * 60,
  feverWindowEdge: 'inclusive',
  hypotension: { systolicBelow: 90, mapBelow: 65 },
  holdMinutes: 60,
  lowFlowMaxLpm: 6,
  nasalCannulaUnknownFlow: 'low',
  episodeEndsAfterHoursAtGrade0: null,
  episodeStart: 'latest-observed',
  waiverNeedsInfusionTime: false,
  aheadOfArrival: 'arrival',
  feverMaskingDrugs: [
    'acetaminophen',
    'ibuprofen',
    'tocilizumab',
    'siltuximab',
    'anakinra',
    'dexamethasone',
    'methylprednisolone',
    'hydrocortisone',
  ],
  lee: {
    fio2Grade3: 0.4,
    highDose: {
      norepinephrine: { dose: 20, unit: 'mcg/min' },
      dopamine: { dose: 10, unit: 'mcg/kg/min' },
      phenylephrine: { dose: 200, unit: 'mcg/min' },
      epinephrine: { dose: 10, unit: 'mcg/min' },
    },
    fio2Estimate: {
      room_air: 0.21,
      blow_by: 0.25,
      nasalCannulaPerLpm: 0.04,
      nasalCannulaMax: 0.45,
      simple_mask: 0.4,
      non_rebreather: 0.6,
      venturi: 0.4,
      high_flow_nasal_cannula: 0.4,
    },
  },
  routing: {
    crs: [['hematology'], ['hematology'], ['hematology', 'icu'], ['hematology', 'icu']],
    icans: [
      ['hematology', 'neurology'],
      ['hematology', 'neurology', 'radiology'],
      ['hematology', 'neurology', 'radiology', 'icu'],
      ['hematology', 'neurology', 'radiology', 'icu'],
    ],
  },
  tocilizumab: {
    mgPerKg: 8,
    mgPerKgLowWeight: 12,
    lowWeightBelowKg: 30,
    maxDoseMg: 800,
    repeatAfterHours: 8,
    max24h: 3,
    maxTotal: 4,
    totalPer: 'stay',
  },
  actions: {
    crs: [
      ['Supportive care; infection work-up.', 'Consider tocilizumab if fever persists or comorbidities.'],
      [
        'Tocilizumab.',
        'Fluids, oxygen.',
        'Dexamethasone 10 mg IV q6h if hypotension persists after 1-2 doses of tocilizumab.',
      ],
      ['Transfer to ICU.', 'Tocilizumab (if the caps allow) plus dexamethasone 10 mg IV q6h.'],
      [
        'ICU; ventilation as needed.',
        'Tocilizumab (if the caps allow).',
        'High-dose methylprednisolone.',
        'Consider siltuximab or anakinra if refractory.',
      ],
    ],
    icans: [
      ['Neurology consult.'],
      ['Neurology consult.', 'MRI/CT and EEG.', 'Dexamethasone.'],
      ['Neurology consult.', 'MRI/CT and EEG.', 'Dexamethasone.', 'Transfer to ICU.'],
      ['Neurology consult.', 'MRI/CT and EEG.', 'Dexamethasone.', 'Transfer to ICU.'],
    ],
    icansWithoutCrs: ['Caution with repeated tocilizumab: ICANS is present without CRS.'],
    bispecificInterruptFromGrade: 2,
    bispecificInterrupt: 'Bispecific therapy: interrupt the infusion (short half-life, about 2 h for blinatumomab).',
    deEscalation: 'Grade has fallen; review and continue the protocol for the current grade.',
  },
  dedupeWindow: 500,
  bpHistory: 64,
  vasopressorHistory: 32,
  feverHistory: 64,
  paging: DEFAULT_PAGING,
  site: { timeZone: DEFAULT_TIME_ZONE },
};
