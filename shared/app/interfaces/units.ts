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
  /** What the error text adds to the units it lists (expectedUnits). */
  note?: string;
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
  },
  'vitals.heartRate': {
    ucum: { '/min': same, '{beats}/min': same, '{beat}/min': same },
    mdc: { 264864: same },
    mdcRefId: { MDC_DIM_BEAT_PER_MIN: same },
  },
  'vitals.respiratoryRate': {
    ucum: { '/min': same, '{breaths}/min': same, '{breath}/min': same },
    mdc: { 264928: same },
    mdcRefId: { MDC_DIM_RESP_PER_MIN: same },
  },
  'vitals.spo2': {
    ucum: { '%': same },
    mdc: { 262688: same },
    mdcRefId: { MDC_DIM_PERCENT: same },
  },
  'vitals.systolicBP': pressure(),
  'vitals.diastolicBP': pressure(),
  'vitals.meanArterialPressure': pressure(),
  'oxygen.fio2': {
    ucum: { '%': PERCENT_TO_FRACTION, '1': same, '{ratio}': same },
    mdc: { 262688: PERCENT_TO_FRACTION },
    mdcRefId: { MDC_DIM_PERCENT: PERCENT_TO_FRACTION },
    note: '1 and {ratio} are a fraction',
  },
  'oxygen.flowLpm': {
    ucum: { 'L/min': same, 'l/min': same },
    mdc: {},
    mdcRefId: {},
  },
  'enrolment.weightKg': {
    ucum: { kg: same, g: (v) => withoutFloatNoise(v / 1000), '[lb_av]': (v) => withoutFloatNoise(v * 0.45359237) },
    mdc: {},
    mdcRefId: {},
  },
};

function pressure(): UnitRule {
  return {
    ucum: { 'mm[Hg]': same, kPa: KPA_TO_MMHG },
    mdc: { 266016: same, 265987: KPA_TO_MMHG },
    mdcRefId: { MDC_DIM_MMHG: same, MDC_DIM_KILO_PASCAL: KPA_TO_MMHG },
  };
}

const listed = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}`);

/**
 * Every unit the table takes for a field, by system (2026-12-06: one per system was said, "use /min
 * (MDC_DIM_BEAT_PER_MIN 264864)", where {beats}/min is taken too). An MDC number is said with its reference id (the
 * one that converts alike), as the docs' table does.
 */
function expectedUnits(rule: UnitRule): string {
  const numbers = Object.entries(rule.mdc);
  const ids = Object.entries(rule.mdcRefId);
  // The number of an id: the one number that converts as it does, when no other id does (ids keep the table's order).
  const numberOf = ([, c]: [string, Convert]) => {
    const alike = numbers.filter(([, d]) => d === c);
    return alike.length === 1 && ids.filter(([, d]) => d === c).length === 1 ? alike[0]![0] : undefined;
  };
  const paired = ids.map(numberOf);
  const mdc = [
    ...ids.map(([id], i) => (paired[i] ? `${paired[i]} ${id}` : id)),
    ...numbers.map(([n]) => n).filter((n) => !paired.includes(n)),
  ];
  const systems = [`UCUM ${listed(Object.keys(rule.ucum))}`, ...(mdc.length ? [`MDC ${listed(mdc)}`] : [])];
  return `${systems.join('; ')}${rule.note ? `: ${rule.note}` : ''}`;
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
    return { ok: false, problem: `no unit: a ${field} value needs one (${expectedUnits(rule)}); it is never guessed` };
  const known = [own(rule.mdc, unit.mdc), own(rule.mdcRefId, unit.mdcRefId), own(rule.ucum, unit.ucum)].filter(
    (c) => c !== undefined,
  );
  const convert = known[0];
  if (!convert)
    return {
      ok: false,
      problem: `unit ${JSON.stringify(shown)} is not a unit for ${field} (use ${expectedUnits(rule)})`,
    };
  // Two codes of one unit that mean different units (MDC_DIM_MMHG's number beside MDC_DIM_KILO_PASCAL): which one
  // the device meant is a guess, and a guess can move a value over a grading threshold.
  if (known.some((c) => c !== convert))
    return { ok: false, problem: `unit ${JSON.stringify(shown)} names two different units for ${field}` };
  return { ok: true, value: convert(value) };
}

/**
 * A unit a count of points (the ICE score) or a grade is taken with, the same over HL7 v2 and FHIR: none, UCUM's 1 or
 * an annotation (`{score}`: an annotation alone is 1), or where `points` is true and the unit is no UCUM code, the
 * word points (points, pts, score) as a sender writes it.
 */
export function unitlessOrPoints(unit: string, points: boolean): boolean {
  return unit === '' || unit === '1' || /^\{[^{}]*\}$/.test(unit) || (points && /^(points?|pts|score)$/i.test(unit));
}
