// The many ways a hospital's interfaces may write the same observation, for the differential property
// (test/unit/interfaces-agree.test.ts): other units, other codes for one measurement (the arterial line, the
// oximeter's pulse, LOINC), decoy rows a translator must pass over, times written in any zone offset, the vitals
// through HL7 v2 or FHIR. A post-processing step on what toPcd01 and FhirEncoder write (their defaults, which
// `crs simulate` plays, stay as they are). Every choice is drawn by the caller; the first option of each list is
// the encoders' own writing, so a shrunk counterexample keeps only the variations that matter.
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import type { FhirEncoder } from '#app/fhir/encode.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { LOINC_BP_PANEL } from '#domain/codes.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { CRS_OBSERVATIONS } from '#app/interfaces/terminology.ts';
import type { InterfaceItem } from './interfaces.ts';

/** Random choices, drawn by the property (fc.gen) so that they shrink with it. */
export interface Draw {
  /** One of the options; shrinks toward the first. */
  one<T>(options: readonly T[]): T;
  /** An integer in [min, max]; shrinks toward min. */
  int(min: number, max: number): number;
}

type Vital = keyof NonNullable<DeviceMessage['vitals']>;

// ------------------------------------------------------------------------------------------------- numbers as sent

/** 1 kPa in mmHg: 1 mmHg is 133.322387415 Pa by definition. */
export const KPA_TO_MMHG = 1000 / 133.322387415;
const POUND_KG = 0.45359237;

/**
 * A Celsius value as °F text. A temperature with one decimal (0.1 °C is exactly 0.18 °F) is written exactly, as
 * two decimals, so the translator's (F - 32) x 5/9 must give the Celsius value back exactly: 38.0 °C is 100.40 °F,
 * and 100.40 °F must grade as febrile. Any other value is written at full double precision.
 */
function fahrenheitText(c: number): string {
  const tenths = Math.round(c * 10);
  if (tenths / 10 !== c) return String((c * 9) / 5 + 32);
  const hundredths = tenths * 18 + 3200;
  return `${Math.trunc(hundredths / 100)}.${String(Math.abs(hundredths % 100)).padStart(2, '0')}`;
}

/**
 * A pressure in mmHg as kPa text, to 15 significant digits: an integer of mmHg is no short decimal of kPa (the
 * factor is 7.500615758...), so the sender writes as many digits as a double holds reliably; the translator's
 * conversion to 12 significant digits must give the mmHg value back exactly (the error, about 1e-15, is far below
 * the 12th digit, and the value is on that digit's grid: an integer, or a kpaReading).
 */
const kpaText = (mmHg: number): string => String(Number((mmHg / KPA_TO_MMHG).toPrecision(15)));

/**
 * The mmHg value a kPa monitor's reading of `hundredths` / 100 becomes in the contract (8.66 kPa is 64.9553324682
 * mmHg, below the MAP threshold of 65): to 12 significant digits, as docs/interfaces.md states the conversion. A
 * contract value a kPa monitor really produces, sent back as kPa text by kpaText.
 */
export function kpaReading(hundredths: number): number {
  return Number((((hundredths / 100) * 1000) / 133.322387415).toPrecision(12));
}

/** A weight in kg in [lb_av], to 15 significant digits (a pound is 0.45359237 kg exactly; see kpaText). */
const pounds = (kg: number): number => Number((kg / POUND_KG).toPrecision(15));

/** A weight in kg with at most one decimal, as grams: an integer, exact. */
const grams = (kg: number): number => Math.round(kg * 10) * 100;

// ---------------------------------------------------------------------------------------------------- times

/** Zone offsets, in minutes east of UTC: the first (0) keeps the encoders' own UTC text. */
const OFFSETS = [0, 60, -300, 330, -570, 840, -660, 765, -210, 345] as const;

const p2 = (n: number) => String(n).padStart(2, '0');

function wall(ms: number, offset: number) {
  const d = new Date(ms + offset * 60_000);
  const sign = offset < 0 ? '-' : '+';
  const a = Math.abs(offset);
  return {
    date: `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}`,
    isoDate: `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}`,
    hh: p2(d.getUTCHours()),
    mm: p2(d.getUTCMinutes()),
    ss: p2(d.getUTCSeconds()),
    ms: d.getUTCMilliseconds(),
    zone: `${sign}${p2(Math.trunc(a / 60))}${p2(a % 60)}`,
    isoZone: `${sign}${p2(Math.trunc(a / 60))}:${p2(a % 60)}`,
  };
}

/**
 * The same instant as an HL7 DTM in another offset, with or without seconds (when it has none), milliseconds as 3
 * or 4 digits (DTM allows 4).
 */
function hl7TimeIn(ms: number, offset: number, seconds: boolean, fourDigits = false): string {
  const w = wall(ms, offset);
  const fraction = w.ms ? `.${String(w.ms).padStart(3, '0')}${fourDigits ? '0' : ''}` : '';
  const s = seconds || w.ss !== '00' || w.ms ? `${w.ss}${fraction}` : '';
  return `${w.date}${w.hh}${w.mm}${s}${w.zone}`;
}

/** The same instant as a FHIR dateTime in another offset, with or without seconds (when it has none). */
function fhirTimeIn(ms: number, offset: number, seconds: boolean): string {
  const w = wall(ms, offset);
  const s = seconds || w.ss !== '00' || w.ms ? `:${w.ss}${w.ms ? `.${String(w.ms).padStart(3, '0')}` : ''}` : '';
  return `${w.isoDate}T${w.hh}:${w.mm}${s}${w.isoZone}`;
}

const hl7Time = (draw: Draw, ms: number) =>
  hl7TimeIn(ms, draw.one(OFFSETS), draw.one([true, false]), draw.one([false, true]));
/** A FHIR time as written, or the same instant in another offset. */
function fhirTime(draw: Draw, written: string): string {
  const offset = draw.one(OFFSETS);
  return offset === 0 ? written : fhirTimeIn(Date.parse(written), offset, draw.one([true, false]));
}

// --------------------------------------------------------------------------------------------------- HL7 v2

/**
 * OBX-3 codes of each vital, best source first (the translator's ranking: arterial line over cuff, ECG over the
 * oximeter's pulse over the cuff's pulse, MDC over LOINC). `primary` lists the codes the value may be sent as,
 * toPcd01's own first.
 */
const HL7_CODES: Record<Vital, { ranked: string[]; primary: number[] }> = {
  temperatureC: { ranked: ['150344^MDC_TEMP^MDC', '8310-5^Body temperature^LN'], primary: [0, 1] },
  heartRate: {
    ranked: [
      '147842^MDC_ECG_HEART_RATE^MDC',
      '149530^MDC_PULS_OXIM_PULS_RATE^MDC',
      '149546^MDC_PULS_RATE_NON_INV^MDC',
      '8867-4^Heart rate^LN',
    ],
    primary: [0, 1, 2, 3],
  },
  respiratoryRate: { ranked: ['151562^MDC_RESP_RATE^MDC', '9279-1^Respiratory rate^LN'], primary: [0, 1] },
  spo2: { ranked: ['150456^MDC_PULS_OXIM_SAT_O2^MDC', '59408-5^SpO2^LN'], primary: [0, 1] },
  systolicBP: {
    ranked: ['150033^MDC_PRESS_BLD_ART_SYS^MDC', '150021^MDC_PRESS_BLD_NONINV_SYS^MDC', '8480-6^Systolic^LN'],
    primary: [1, 0, 2],
  },
  diastolicBP: {
    ranked: ['150034^MDC_PRESS_BLD_ART_DIA^MDC', '150022^MDC_PRESS_BLD_NONINV_DIA^MDC', '8462-4^Diastolic^LN'],
    primary: [1, 0, 2],
  },
  meanArterialPressure: {
    ranked: ['150035^MDC_PRESS_BLD_ART_MEAN^MDC', '150023^MDC_PRESS_BLD_NONINV_MEAN^MDC', '8478-0^MAP^LN'],
    primary: [1, 0, 2],
  },
};

/** The vital toPcd01 wrote in an OBX, by its OBX-3 code. */
const TO_PCD01_CODE: Record<string, Vital> = {
  150344: 'temperatureC',
  147842: 'heartRate',
  151562: 'respiratoryRate',
  150456: 'spo2',
  150021: 'systolicBP',
  150022: 'diastolicBP',
  150023: 'meanArterialPressure',
};

const PRESSURE_UNITS = ['266016^MDC_DIM_MMHG^MDC', 'mm[Hg]^^UCUM', '265987^MDC_DIM_KILO_PASCAL^MDC', 'kPa^^UCUM'];
/** OBX-6 units of each vital (toPcd01's first) and how the value is written in each. */
const HL7_UNITS: Record<Vital, string[]> = {
  temperatureC: [
    '268192^MDC_DIM_DEGC^MDC',
    'Cel^^UCUM',
    '266560^MDC_DIM_FAHR^MDC',
    '[degF]^^UCUM',
    '^MDC_DIM_FAHR^MDC',
  ],
  heartRate: ['264864^MDC_DIM_BEAT_PER_MIN^MDC', '/min^^UCUM', '{beats}/min^^UCUM'],
  respiratoryRate: ['264928^MDC_DIM_RESP_PER_MIN^MDC', '/min^^UCUM', '{breaths}/min^^UCUM'],
  spo2: ['262688^MDC_DIM_PERCENT^MDC', '%^^UCUM'],
  systolicBP: PRESSURE_UNITS,
  diastolicBP: PRESSURE_UNITS,
  meanArterialPressure: PRESSURE_UNITS,
};

/** SNOMED CT codes of the oxygen devices that have one (shared/app/interfaces/terminology.ts). */
const SNOMED_DEVICE: Record<string, string> = {
  nasal_cannula: '336623009',
  blow_by: '425478008',
  non_rebreather: '427591007',
  venturi: '428285009',
  simple_mask: '463587004',
};

/** FiO2 as OBX-3 and OBX-6 (toPcd01's first), and as FHIR UCUM codes (FhirEncoder's first). */
const FIO2_CODES = ['3150-0^Inhaled oxygen concentration^LN', '152196^MDC_CONC_AWAY_O2_INSP^MDC'];
const FIO2_UNITS = ['1^^UCUM', '{ratio}^^UCUM', '%^^UCUM', '262688^MDC_DIM_PERCENT^MDC'];
/** A fraction of 4 decimals (the property's FiO2) as a percent of 2, written as that decimal. */
const percent = (fraction: number) => Math.round(fraction * 10_000) / 100;

/** A contract value as written in a sent unit (HL7 OBX-6 or a FHIR UCUM code). */
function valueIn(unit: string, v: number): number | string {
  if (unit.includes('FAHR') || unit.startsWith('[degF]')) return fahrenheitText(v);
  if (unit.includes('KILO_PASCAL') || unit.startsWith('kPa')) return kpaText(v);
  return v;
}

/**
 * A PCD-01 message as toPcd01 wrote it, rewritten: each vital under one of its codes and units, maybe with a decoy
 * the translator must not use (a worse-ranked source with another value, or a row of the best source marked
 * deleted/wrong/no result), any result status that is taken, the oxygen rows in their other codes and units, and
 * each time in some offset (OBX-14 sometimes left to OBR-7). It still means exactly `m`'s vitals and oxygen.
 */
function varyPcd01(text: string, m: DeviceMessage, draw: Draw): string {
  const ms = Date.parse(m.observedAt);
  const out: string[][] = [];
  for (const line of text.split('\r')) {
    const f = line.split('|');
    if (f[0] === 'MSH') f[6] = hl7Time(draw, ms);
    else if (f[0] === 'OBR') f[7] = hl7Time(draw, ms);
    if (f[0] !== 'OBX') {
      out.push(f);
      continue;
    }
    const code = f[3]!.split('^')[0]!;
    if (CHARTED_CODES.has(code)) {
      out.push(chartedRow(f, draw, ms));
      continue;
    }
    if (code === 'oxygen-device' || code === '3150-0' || code === '3151-8') {
      out.push(oxygenRow(f, m, draw, ms));
      continue;
    }
    const vital = TO_PCD01_CODE[code];
    const v = vital ? m.vitals?.[vital] : undefined;
    if (!vital || v === undefined) throw new Error(`varyPcd01: an OBX toPcd01 does not write: ${line}`);
    const codes = HL7_CODES[vital];
    const rank = draw.one(codes.primary);
    const unit = draw.one(HL7_UNITS[vital]);
    const row = [...f];
    row[3] = codes.ranked[rank]!;
    row[5] = String(valueIn(unit, v));
    row[6] = unit;
    row[11] = draw.one(['F', 'C', 'R', 'P']);
    row[14] = draw.one([true, false]) ? hl7Time(draw, ms) : '';
    const decoy = draw.one(['none', 'worse', 'skipped'] as const);
    const other = vital === 'temperatureC' ? v + 0.5 : v + 7;
    // A decoy in toPcd01's unit, at the same instant (another time would make it a message of its own).
    const extra = [...f];
    extra[5] = String(other);
    extra[14] = hl7Time(draw, ms);
    let withDecoy = false;
    if (decoy === 'worse' && rank < codes.ranked.length - 1) {
      extra[3] = codes.ranked[draw.int(rank + 1, codes.ranked.length - 1)]!;
      withDecoy = true;
    } else if (decoy === 'skipped') {
      extra[3] = codes.ranked[0]!;
      extra[11] = draw.one(['X', 'D', 'W']);
      withDecoy = true;
    }
    out.push(...(!withDecoy ? [row] : draw.one([true, false]) ? [row, extra] : [extra, row]));
  }
  let n = 0;
  for (const f of out) {
    if (f[0] !== 'OBX') continue;
    f[1] = String(++n);
    f[4] = `1.1.1.${n}`;
  }
  return out.map((f) => f.join('|')).join('\r');
}

/** The 99CRS codes of what toPcd01 writes as charted (docs/interfaces.md, "Charted values"). */
const CHARTED_CODES = new Set<string>(
  Object.values(CRS_OBSERVATIONS).filter((c) => c !== 'oxygen-device' && c !== 'cell-therapy-infusion'),
);

/**
 * A charted OBX of toPcd01 (99CRS), rewritten as the reader takes it too: OBX-2 left empty, a number with the unit 1
 * or {score}, a word with no system or as its alternate (OBX-5.4), a yes/no as true/false, a time in OBX-14 or not.
 */
function chartedRow(f: string[], draw: Draw, ms: number): string[] {
  const row = [...f];
  if (draw.one([false, true])) row[2] = '';
  const [value, , system] = f[5]!.split('^');
  if (f[2] === 'NM') row[6] = draw.one(['', '1^^UCUM', '{score}^^UCUM']);
  else if (system === 'HL70136') row[5] = draw.one([f[5]!, value!, value === 'Y' ? 'true' : 'false']);
  else row[5] = draw.one([f[5]!, value!, `^^^${value}^^99CRS`]);
  row[14] = draw.one([true, false]) ? hl7Time(draw, ms) : '';
  return row;
}

/** An oxygen OBX of toPcd01 (device, FiO2, flow), rewritten: the device in SNOMED CT, FiO2 as MDC or a percent. */
function oxygenRow(f: string[], m: DeviceMessage, draw: Draw, ms: number): string[] {
  const row = [...f];
  const x = m.oxygen!;
  const code = f[3]!.split('^')[0];
  if (code === 'oxygen-device') {
    const snomed = SNOMED_DEVICE[x.device];
    if (snomed && draw.one([false, true])) row[5] = `${snomed}^^SCT`;
  } else if (code === '3150-0') {
    row[3] = draw.one(FIO2_CODES);
    row[6] = draw.one(FIO2_UNITS);
    row[5] = String(row[6].startsWith('%') || row[6].startsWith('262688') ? percent(x.fio2!) : x.fio2);
  } else row[6] = draw.one(['L/min^^UCUM', 'l/min^^UCUM']);
  row[14] = draw.one([true, false]) ? hl7Time(draw, ms) : '';
  return row;
}

// ----------------------------------------------------------------------------------------------------- FHIR

const UCUM = 'http://unitsofmeasure.org';
/** FHIR units of each vital (FhirEncoder's first). */
const FHIR_UNITS: Record<Vital, string[]> = {
  temperatureC: ['Cel', '[degF]'],
  heartRate: ['/min', '{beats}/min'],
  respiratoryRate: ['/min', '{breaths}/min'],
  spo2: ['%'],
  systolicBP: ['mm[Hg]', 'kPa'],
  diastolicBP: ['mm[Hg]', 'kPa'],
  meanArterialPressure: ['mm[Hg]', 'kPa'],
};
const VITAL_LOINC: Record<string, Vital> = {
  '8310-5': 'temperatureC',
  '8867-4': 'heartRate',
  '9279-1': 'respiratoryRate',
  '59408-5': 'spo2',
  '8480-6': 'systolicBP',
  '8462-4': 'diastolicBP',
  '8478-0': 'meanArterialPressure',
};
const BP_LOINC = new Set(['8480-6', '8462-4', '8478-0']);
/** The units of each lab (FhirEncoder's first) and the value in each. */
const LABS: Record<string, [string, (v: number) => number][]> = {
  // CRP in mg/dL: a 1-decimal mg/L (the property's CRP) is a 2-decimal mg/dL, written as that decimal (integers
  // divided: the double nearest it, as a sender's JSON text would read).
  '1988-5': [
    ['mg/L', (v) => v],
    ['mg/dL', (v) => Math.round(v * 10) / 100],
  ],
  '2276-4': [
    ['ng/mL', (v) => v],
    ['ug/L', (v) => v],
  ],
  '26881-3': [
    ['pg/mL', (v) => v],
    ['ng/L', (v) => v],
  ],
};

const quantity = (value: number | string, code: string) => ({ value: Number(value), unit: code, system: UCUM, code });
/** The first code of a resource's or component's code (LOINC, or the CRS code of the oxygen device). */
const codeOf = (r: { code?: { coding?: { code?: string }[] } }) => r.code?.coding?.[0]?.code ?? '';
/** Vasopressor rate units as FhirEncoder writes them, and the other spellings the translator takes. */
const RATE_SPELLINGS: Record<string, string[]> = {
  'ug/kg/min': ['ug/kg/min', 'mcg/kg/min'],
  'ug/min': ['ug/min', 'mcg/min'],
  'U/min': ['U/min', '[U]/min', '[iU]/min', 'units/min'],
};

type Mutable = Resource & Record<string, unknown>;

/** A resource's time (`key`: effectiveDateTime or performedDateTime) in another offset and maybe another element. */
function retime(r: Mutable, key: string, draw: Draw, forms: ('instant' | 'start' | 'end')[]): void {
  const written = r[key];
  if (typeof written !== 'string') return;
  const form = draw.one(['dateTime', ...forms] as const);
  const period = key === 'performedDateTime' ? 'performedPeriod' : 'effectivePeriod';
  if (form === 'dateTime') r[key] = fhirTime(draw, written);
  else {
    delete r[key];
    const ms = Date.parse(written);
    if (form === 'instant') r.effectiveInstant = fhirTimeIn(ms, draw.one(OFFSETS), true);
    // A stopped infusion's period ends when it stopped: the start, an hour before, is not its time.
    else if (form === 'end') r[period] = { start: fhirTimeIn(ms - 3_600_000, 0, true), end: fhirTime(draw, written) };
    else r[period] = { start: fhirTime(draw, written) };
  }
}

/**
 * A Bundle as FhirEncoder wrote it, rewritten: vitals, weight, labs, FiO2 and pump rates in any accepted unit or
 * spelling, the oxygen device in SNOMED CT, every time in some offset and in any element that carries it
 * (effectiveInstant, effectivePeriod, performedPeriod, the Encounter's period), the patient as a reference, a URL
 * or an identifier, vitals charted with or without their device, a blood pressure sometimes as the 85354-9
 * panel. It still means exactly `m`.
 */
function varyBundle(bundle: Bundle, m: DeviceMessage, draw: Draw): Bundle {
  const withDevice = draw.one([true, false]);
  const entries = bundle.entry ?? [];
  for (const { resource } of entries) {
    const r = resource as Mutable;
    r.subject = draw.one([
      { reference: `Patient/${m.patientId}` },
      { reference: `https://ehr.example/fhir/Patient/${m.patientId}` },
      { identifier: { system: 'urn:oid:1.2.3.4', value: m.patientId } },
    ]);
    if (r.resourceType === 'Observation') {
      const o = r as Observation;
      o.status = draw.one(['final', 'amended', 'corrected', 'preliminary'] as const);
      retime(r, 'effectiveDateTime', draw, ['instant', 'start']);
      const code = codeOf(o);
      const vital = VITAL_LOINC[code];
      const value = o.valueQuantity?.value;
      if (vital && value !== undefined) {
        const unit = draw.one(FHIR_UNITS[vital]);
        o.valueQuantity = quantity(valueIn(unit, value), unit);
        if (vital === 'spo2') o.code!.coding![0]!.code = draw.one(['59408-5', '2708-6']);
        if (!withDevice) delete o.device;
      } else if (code === '29463-7' && value !== undefined) {
        const unit = draw.one(['kg', 'g', '[lb_av]']);
        o.valueQuantity = quantity(unit === 'g' ? grams(value) : unit === '[lb_av]' ? pounds(value) : value, unit);
      } else if (LABS[code] && value !== undefined) {
        const [unit, convert] = draw.one(LABS[code]);
        o.valueQuantity = quantity(convert(value), unit);
      }
      const snomed = m.oxygen ? SNOMED_DEVICE[m.oxygen.device] : undefined;
      if (o.valueCodeableConcept && codeOf(o) === 'oxygen-device' && snomed && draw.one([false, true]))
        o.valueCodeableConcept = { coding: [{ system: 'http://snomed.info/sct', code: snomed }] };
      const fio2 = o.component?.find((c) => codeOf(c) === '3150-0');
      if (fio2 && m.oxygen?.fio2 !== undefined) {
        const unit = draw.one(['%', '1', '{ratio}']);
        if (unit !== '%') fio2.valueQuantity = quantity(m.oxygen.fio2, unit);
      }
    } else if (r.resourceType === 'MedicationAdministration') {
      const rate = (r as { dosage?: { rateQuantity?: { code?: string; unit?: string } } }).dosage?.rateQuantity;
      if (rate?.code) rate.code = rate.unit = draw.one(RATE_SPELLINGS[rate.code] ?? [rate.code]);
      retime(r, 'effectiveDateTime', draw, [r.status === 'stopped' ? 'end' : 'start']);
    } else if (r.resourceType === 'Procedure') {
      retime(r, 'performedDateTime', draw, ['start']);
    } else if (r.resourceType === 'Encounter') {
      const locations = (r as { location?: { period?: { start?: string } }[] }).location ?? [];
      const start = locations[0]?.period?.start;
      // The stay's period instead of each location's, when they all start at once.
      if (start && draw.one([false, true])) {
        for (const loc of locations) delete loc.period;
        r.period = { start: fhirTime(draw, start) };
      } else for (const loc of locations) if (loc.period?.start) loc.period.start = fhirTime(draw, loc.period.start);
    }
  }
  const bp = entries.filter((e) => e.resource?.resourceType === 'Observation' && BP_LOINC.has(codeOf(e.resource)));
  if (bp.length >= 2 && draw.one([false, true])) {
    // One blood pressure panel with the readings as components, where the separate Observations were.
    const [first, ...rest] = bp.map((e) => e.resource as Observation);
    first!.component = [first!, ...rest].map((o) => ({ code: o.code, valueQuantity: o.valueQuantity! }));
    first!.code = { coding: [{ system: 'http://loinc.org', code: LOINC_BP_PANEL }] };
    delete first!.valueQuantity;
    bundle.entry = entries.filter((e) => !rest.includes(e.resource as Observation));
  }
  return bundle;
}

// ------------------------------------------------------------------------------------------------ the items

/**
 * One message as HL7 v2 and FHIR items, each written in a drawn variation: the vitals as PCD-01 or as FHIR
 * Observations, the oxygen section (for comfort too), the ICANS domains and organ toxicity each as ORU rows (99CRS
 * since 2026-12-07) or FHIR, the rest as FHIR. A PCD-01 message may carry the patient's `place` in PV1 (a bed and ward the course gives anyway).
 * `fhir` is the patient's encoder, called in charting order.
 */
export function variedItems(
  m: DeviceMessage,
  fhir: FhirEncoder,
  draw: Draw,
  place?: { bed?: string; ward?: string },
): InterfaceItem[] {
  const out: InterfaceItem[] = [];
  const vitalsAsFhir = m.vitals !== undefined && draw.one([false, true]);
  const oxygenAsHl7 = m.oxygen !== undefined && draw.one([false, true]);
  const neuroAsHl7 = m.neuro !== undefined && draw.one([false, true]);
  const organAsHl7 = m.organToxicity !== undefined && draw.one([false, true]);
  const hl7 = {
    ...m,
    vitals: vitalsAsFhir ? undefined : m.vitals,
    oxygen: oxygenAsHl7 ? m.oxygen : undefined,
    neuro: neuroAsHl7 ? m.neuro : undefined,
    organToxicity: organAsHl7 ? m.organToxicity : undefined,
    enrolment: place && draw.one([false, true]) ? place : undefined,
  } as DeviceMessage;
  const text = toPcd01(hl7);
  if (text) out.push({ format: 'hl7v2', text: varyPcd01(text, hl7, draw), from: m.messageId });
  const rest = {
    ...m,
    oxygen: oxygenAsHl7 ? undefined : m.oxygen,
    neuro: neuroAsHl7 ? undefined : m.neuro,
    organToxicity: organAsHl7 ? undefined : m.organToxicity,
  } as DeviceMessage;
  const bundle = fhir.bundle(rest, { skipVitals: !vitalsAsFhir });
  if (bundle) out.push({ format: 'fhir', bundle: varyBundle(bundle, rest, draw), from: m.messageId });
  return out;
}
