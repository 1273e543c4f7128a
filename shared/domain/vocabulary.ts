// The device contract's vocabulary: the values its enumerated fields may take, and its sections. Apart from the
// schema (contract.ts) so that code which needs only the words (the state's compact encoding, the functions that
// page) does not build the whole message schema when it loads.

export const OXYGEN_DEVICES = [
  'room_air',
  'blow_by',
  'nasal_cannula',
  'high_flow_nasal_cannula',
  'simple_mask',
  'non_rebreather',
  'venturi',
  'cpap',
  'bipap',
  'mechanical_ventilation',
] as const;
export const VASOPRESSOR_DRUGS = ['norepinephrine', 'epinephrine', 'phenylephrine', 'dopamine', 'vasopressin'] as const;
export const VASOPRESSOR_UNITS = ['mcg/min', 'mcg/kg/min', 'units/min'] as const;
export const MEDICATION_DRUGS = [
  'tocilizumab',
  'siltuximab',
  'anakinra',
  'dexamethasone',
  'methylprednisolone',
  'hydrocortisone',
  'acetaminophen',
  'ibuprofen',
] as const;
export const CONSCIOUSNESS = [
  'alert',
  'awakens_spontaneously',
  'awakens_to_voice',
  'awakens_to_touch',
  'unarousable',
] as const;
export const SEIZURE = ['none', 'self_limited', 'prolonged'] as const;
export const CEREBRAL_EDEMA = ['none', 'focal', 'diffuse'] as const;
export const SOURCE_KINDS = ['monitor', 'pump', 'ventilator', 'ehr', 'manual'] as const;
export const THERAPIES = ['car-t', 'bispecific'] as const;
/** Why a patient's monitoring ended (`monitoringEnd.reason`): said on the board and in the pages it closes. */
export const MONITORING_END_REASONS = ['discharged', 'transferred', 'other'] as const;

/** The data sections of a message, in the order the contract lists them. */
export const SECTIONS = [
  'enrolment',
  'vitals',
  'oxygen',
  'vasopressors',
  'medications',
  'neuro',
  'organToxicity',
  'labs',
  'monitoringEnd',
] as const;

/**
 * What a message may carry of the measurements a configuration's thresholds are compared with (contract.ts): the
 * configuration keeps to the same ranges (config.ts), since a threshold outside them grades every patient alike.
 */
export const RANGES = {
  /** A patient's own hypotension thresholds (enrolment.hypotension), and the site's. */
  systolicBelow: [20, 200],
  mapBelow: [10, 150],
  flowLpm: [0, 80],
  fio2: [0.21, 1],
} as const;
