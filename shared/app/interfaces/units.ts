// Units of the coded measurements that HL7 v2 and FHIR send, onto the contract's units. A value is converted only
// when its unit says so (a Fahrenheit temperature in [degF] or MDC_DIM_FAHR); a missing or unknown unit is
// refused, never guessed. Shared by both translators so that a unit means the same whichever way it came.
import type { CodedField } from '#domain/codes.ts';
import { withoutFloatNoise } from '#domain/numbers.ts';

/** A unit as sent: a UCUM code, an IEEE 11073 MDC unit code (numeric) or its reference id (MDC_DIM_...). */
export interface SentUnit {
  ucum?: string;
  mdc?: number;
  mdcRefId?: string;
}

type Convert = (v: number) => number;
const same: Convert = (v) => v;

interface UnitRule {
  /** UCUM codes (case-sensitive, as UCUM is). */
  ucum: Record<string, Convert>;
  /** MDC unit codes (partition 4: 262144 + term code). */
  mdc: Record<number, Convert>;
  mdcRefId: Record<string, Convert>;
  /** How the unit should be written, for the error text. */
  expected: string;
}

const PERCENT_TO_FRACTION: Convert = (v) => withoutFloatNoise(v / 100);
const FAHRENHEIT: Convert = (v) => withoutFloatNoise(((v - 32) * 5) / 9);
// 1 mmHg is 133.322387415 Pa by definition: 1 kPa is 7.500615758... mmHg (7.50062, rounded, read a few values just
// under a threshold as on it).
const KPA_TO_MMHG: Convert = (v) => withoutFloatNoise((v * 1000) / 133.322387415);

export const UNIT_RULES: Record<CodedField | 'enrolment.weightKg', UnitRule> = {
  'vitals.temperatureC': {
    ucum: { Cel: same, '[degF]': FAHRENHEIT },
    mdc: { 268192: same, 266560: FAHRENHEIT },
    mdcRefId: { MDC_DIM_DEGC: same, MDC_DIM_FAHR: FAHRENHEIT },
    expected: 'Cel or [degF] (MDC_DIM_DEGC 268192, MDC_DIM_FAHR 266560)',
  },
  'vitals.heartRate': {
    ucum: { '/min': same, '{beats}/min': same, '{beat}/min': same },
    mdc: { 264864: same },
    mdcRefId: { MDC_DIM_BEAT_PER_MIN: same },
    expected: '/min (MDC_DIM_BEAT_PER_MIN 264864)',
  },
  'vitals.respiratoryRate': {
    ucum: { '/min': same, '{breaths}/min': same, '{breath}/min': same },
    mdc: { 264928: same },
    mdcRefId: { MDC_DIM_RESP_PER_MIN: same },
    expected: '/min (MDC_DIM_RESP_PER_MIN 264928)',
  },
  'vitals.spo2': {
    ucum: { '%': same },
    mdc: { 262688: same },
    mdcRefId: { MDC_DIM_PERCENT: same },
    expected: '% (MDC_DIM_PERCENT 262688)',
  },
  'vitals.systolicBP': pressure(),
  'vitals.diastolicBP': pressure(),
  'vitals.meanArterialPressure': pressure(),
  'oxygen.fio2': {
    ucum: { '%': PERCENT_TO_FRACTION, '1': same, '{ratio}': same },
    mdc: { 262688: PERCENT_TO_FRACTION },
    mdcRefId: { MDC_DIM_PERCENT: PERCENT_TO_FRACTION },
    expected: '% or 1 (a fraction)',
  },
  'oxygen.flowLpm': {
    ucum: { 'L/min': same, 'l/min': same },
    mdc: {},
    mdcRefId: {},
    expected: 'L/min',
  },
  'enrolment.weightKg': {
    ucum: { kg: same, g: (v) => withoutFloatNoise(v / 1000), '[lb_av]': (v) => withoutFloatNoise(v * 0.45359237) },
    mdc: {},
    mdcRefId: {},
    expected: 'kg, g or [lb_av]',
  },
};

function pressure(): UnitRule {
  return {
    ucum: { 'mm[Hg]': same, kPa: KPA_TO_MMHG },
    mdc: { 266016: same, 265987: KPA_TO_MMHG },
    mdcRefId: { MDC_DIM_MMHG: same, MDC_DIM_KILO_PASCAL: KPA_TO_MMHG },
    expected: 'mm[Hg] or kPa (MDC_DIM_MMHG 266016)',
  };
}

/** A table entry by a sent key, never an inherited property ("constructor" is not a unit). */
const own = <K extends string | number>(table: Record<K, Convert>, key: K | undefined): Convert | undefined =>
  key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;

export type Converted = { ok: true; value: number } | { ok: false; problem: string };

const describe = (u: SentUnit) =>
  [u.mdc !== undefined ? String(u.mdc) : '', u.mdcRefId ?? '', u.ucum ?? ''].filter(Boolean).join(' / ');

/** The value in the contract's unit for `field`, or why the unit is refused. */
export function toContractUnit(field: keyof typeof UNIT_RULES, value: number, unit: SentUnit): Converted {
  const rule = UNIT_RULES[field];
  const shown = describe(unit);
  if (!shown)
    return { ok: false, problem: `no unit: a ${field} value needs one (${rule.expected}); it is never guessed` };
  const known = [own(rule.mdc, unit.mdc), own(rule.mdcRefId, unit.mdcRefId), own(rule.ucum, unit.ucum)].filter(
    (c) => c !== undefined,
  );
  const convert = known[0];
  if (!convert)
    return { ok: false, problem: `unit ${JSON.stringify(shown)} is not a unit for ${field} (use ${rule.expected})` };
  // Two codes of one unit that mean different units (MDC_DIM_MMHG's number beside MDC_DIM_KILO_PASCAL): which one
  // the device meant is a guess, and a guess can move a value over a grading threshold.
  if (known.some((c) => c !== convert))
    return { ok: false, problem: `unit ${JSON.stringify(shown)} names two different units for ${field}` };
  return { ok: true, value: convert(value) };
}
