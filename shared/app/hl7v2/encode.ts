// Contract messages written as IHE PCD-01 ORU^R01 (their vitals and oxygen): what `crs simulate --format hl7v2`
// plays and what the tests send. The inverse of pcd01.ts for what a monitor measures.
import type { DeviceMessage } from '#domain/contract.ts';
import { parseTime } from '#domain/time.ts';
import { escapeHl7, hl7Time } from './er7.ts';
import { LOCAL_SYSTEM, OXYGEN_DEVICE_CODE } from '#app/interfaces/codes.ts';

const VITALS: Record<string, [code: number, refId: string, unit: string]> = {
  temperatureC: [150344, 'MDC_TEMP', '268192^MDC_DIM_DEGC^MDC'],
  heartRate: [147842, 'MDC_ECG_HEART_RATE', '264864^MDC_DIM_BEAT_PER_MIN^MDC'],
  respiratoryRate: [151562, 'MDC_RESP_RATE', '264928^MDC_DIM_RESP_PER_MIN^MDC'],
  spo2: [150456, 'MDC_PULS_OXIM_SAT_O2', '262688^MDC_DIM_PERCENT^MDC'],
  systolicBP: [150021, 'MDC_PRESS_BLD_NONINV_SYS', '266016^MDC_DIM_MMHG^MDC'],
  diastolicBP: [150022, 'MDC_PRESS_BLD_NONINV_DIA', '266016^MDC_DIM_MMHG^MDC'],
  meanArterialPressure: [150023, 'MDC_PRESS_BLD_NONINV_MEAN', '266016^MDC_DIM_MMHG^MDC'],
};

export interface EncodeOptions {
  facility?: string;
  application?: string;
  /** MSH-10; the message's own id by default (so that a resent message deduplicates the same way). */
  controlId?: string;
}

/**
 * An ORU^R01 for the message's vitals and oxygen, or undefined when it has neither. Oxygen for comfort is left out,
 * never written as oxygen the server would count toward hypoxia: what a monitor measures is written here, and since
 * 2026-12-07 pcd01.ts reads `oxygen-for-comfort^^99CRS` (with the ICANS and organ toxicity codes) from an EHR's ORU.
 */
export function toPcd01(m: DeviceMessage, o: EncodeOptions = {}): string | undefined {
  if (m.oxygen?.forComfort) {
    const { oxygen: _comfort, ...rest } = m;
    return toPcd01(rest, o);
  }
  if (!m.vitals && !m.oxygen) return undefined;
  const when = hl7Time(parseTime(m.observedAt));
  const obx: string[] = [];
  let n = 0;
  const row = (type: string, code: string, value: string, unit: string) =>
    obx.push(
      `OBX|${++n}|${type}|${code}|1.1.1.${n}|${value}|${unit}|||||F|||${when}||||${escapeHl7(m.source.deviceId)}^EUI-64`,
    );
  for (const [field, value] of Object.entries(m.vitals ?? {})) {
    const [code, refId, unit] = VITALS[field]!;
    row('NM', `${code}^${refId}^MDC`, String(value), unit);
  }
  if (m.oxygen) {
    row(
      'CWE',
      `${OXYGEN_DEVICE_CODE}^Oxygen delivery device^${LOCAL_SYSTEM}`,
      `${m.oxygen.device}^^${LOCAL_SYSTEM}`,
      '',
    );
    if (m.oxygen.fio2 !== undefined)
      row('NM', '3150-0^Inhaled oxygen concentration^LN', String(m.oxygen.fio2), '1^^UCUM');
    if (m.oxygen.flowLpm !== undefined)
      row('NM', '3151-8^Inhaled oxygen flow rate^LN', String(m.oxygen.flowLpm), 'L/min^^UCUM');
  }
  const place =
    m.enrolment?.bed || m.enrolment?.ward
      ? [`PV1||I|${escapeHl7(m.enrolment?.ward ?? '')}^^${escapeHl7(m.enrolment?.bed ?? '')}`]
      : [];
  return [
    `MSH|^~\\&|${escapeHl7(o.application ?? 'CRS-SIM')}|${escapeHl7(o.facility ?? 'SIM')}|CRS|HOSP|${when}||ORU^R01^ORU_R01|${escapeHl7(o.controlId ?? m.messageId)}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
    `PID|||${m.patientId}^^^HOSP^MR`,
    ...place,
    `OBR|1|${escapeHl7(m.messageId)}^CRS-SIM|${escapeHl7(m.messageId)}^CRS-SIM|182777000^monitoring of patient^SCT|||${when}`,
    ...obx,
  ].join('\r');
}
