// Observation codes, onto contract fields, as HL7 v2's OBX-3 and FHIR's Observation.code carry them (one table and
// one ranking of sources for both interfaces): the domain's MDC and LOINC tables
// (shared/domain/codes.ts, crs-rules.md section 7) plus the invasive arterial pressures, the ECG and pulse-oximeter
// heart rates, the cuff pressures and impedance respiratory rate of Mindray and Comen monitors, and the inspired oxygen
// concentration that monitors and ventilators send.
import { LOINC, MDC, type CodedField } from '#domain/codes.ts';
import { LOINC_TEMPERATURE_SITES, MDC_TEMPERATURE_SITES } from '#app/interfaces/terminology.ts';

const MDC_EXTRA: Record<number, CodedField> = {
  150033: 'vitals.systolicBP', // MDC_PRESS_BLD_ART_SYS (arterial line)
  150034: 'vitals.diastolicBP', // MDC_PRESS_BLD_ART_DIA
  150035: 'vitals.meanArterialPressure', // MDC_PRESS_BLD_ART_MEAN
  150037: 'vitals.systolicBP', // MDC_PRESS_BLD_ART_ABP_SYS (the arterial line as Philips, Mindray and OpenICE label it)
  150038: 'vitals.diastolicBP', // MDC_PRESS_BLD_ART_ABP_DIA
  150039: 'vitals.meanArterialPressure', // MDC_PRESS_BLD_ART_ABP_MEAN
  150301: 'vitals.systolicBP', // MDC_PRESS_CUFF_SYS (non-invasive, as Mindray and Comen send it)
  150302: 'vitals.diastolicBP', // MDC_PRESS_CUFF_DIA
  150303: 'vitals.meanArterialPressure', // MDC_PRESS_CUFF_MEAN
  151578: 'vitals.respiratoryRate', // MDC_TTHOR_RESP_RATE (transthoracic impedance, from the ECG leads)
  147842: 'vitals.heartRate', // MDC_ECG_HEART_RATE
  149530: 'vitals.heartRate', // MDC_PULS_OXIM_PULS_RATE
  152196: 'oxygen.fio2', // MDC_CONC_AWAY_O2_INSP
  150364: 'vitals.temperatureC', // MDC_TEMP_BODY (body temperature, site unspecified: ranks with 150344 MDC_TEMP)
};

/**
 * When one message carries the same measurement from two sources at the same time, the more direct one is used:
 * the arterial line over the cuff, the ECG over the oximeter's pulse over the cuff's pulse, the monitor's respiratory
 * rate over the impedance channel's; the body temperature over a site's temperature (core, then oral, ear and
 * temporal artery, then axillary: terminology.ts). Lower ranks first;
 * codes not listed rank last.
 */
const SOURCE_RANK: Record<number, number> = {
  150033: 0,
  150034: 0,
  150035: 0,
  150037: 0,
  150038: 0,
  150039: 0,
  150021: 1,
  150022: 1,
  150023: 1,
  150301: 1,
  150302: 1,
  150303: 1,
  147842: 0,
  149530: 1,
  149546: 2,
  // The monitor's respiratory rate (whatever it derives it from) over the ECG leads' impedance channel alone.
  151562: 0,
  151578: 1,
  // A site's body temperature after the generic one (150344, 150364: 5; LOINC 8310-5: 9), never over it.
  ...MDC_TEMPERATURE_SITES,
};

/** The project's local coding system (HL7 "99zzz" convention) for what has no MDC or LOINC code. */
export const LOCAL_SYSTEM = '99CRS';
/** OBX-3 code of a coded oxygen delivery device observation (value: SNOMED CT or the contract's device names). */
export const OXYGEN_DEVICE_CODE = 'oxygen-device';

export function fieldOfMdc(code: number): CodedField | undefined {
  if (Object.hasOwn(MDC, code)) return MDC[code];
  if (Object.hasOwn(MDC_EXTRA, code)) return MDC_EXTRA[code];
  return Object.hasOwn(MDC_TEMPERATURE_SITES, code) ? 'vitals.temperatureC' : undefined;
}

export function fieldOfLoinc(code: string): CodedField | undefined {
  if (Object.hasOwn(LOINC, code)) return LOINC[code];
  return Object.hasOwn(LOINC_TEMPERATURE_SITES, code) ? 'vitals.temperatureC' : undefined;
}

/** The rank of an MDC source (SOURCE_RANK; one not listed ranks 5) and of a LOINC one (9; a site's temperature after). */
export const rankOfMdc = (code: number): number => (Object.hasOwn(SOURCE_RANK, code) ? SOURCE_RANK[code]! : 5);
export const rankOfLoinc = (code: string): number =>
  Object.hasOwn(LOINC_TEMPERATURE_SITES, code) ? LOINC_TEMPERATURE_SITES[code]! : 9;
