// Contract messages written as IHE PCD-01 ORU^R01 (their vitals and oxygen, and since 2026-12-07 what is charted:
// ICANS, organ toxicity, oxygen for comfort): what `crs simulate --format hl7v2` plays and what the tests send. The
// inverse of pcd01.ts.
import type { DeviceMessage } from '#domain/contract.ts';
import { parseTime } from '#domain/time.ts';
import { escapeHl7, hl7Time } from './er7.ts';
import { LOCAL_SYSTEM, OXYGEN_DEVICE_CODE } from '#app/interfaces/codes.ts';
import { CRS_OBSERVATIONS as CRS } from '#app/interfaces/terminology.ts';

const VITALS: Record<string, [code: number, refId: string, unit: string]> = {
  temperatureC: [150344, 'MDC_TEMP', '268192^MDC_DIM_DEGC^MDC'],
  heartRate: [147842, 'MDC_ECG_HEART_RATE', '264864^MDC_DIM_BEAT_PER_MIN^MDC'],
  respiratoryRate: [151562, 'MDC_RESP_RATE', '264928^MDC_DIM_RESP_PER_MIN^MDC'],
  spo2: [150456, 'MDC_PULS_OXIM_SAT_O2', '262688^MDC_DIM_PERCENT^MDC'],
  systolicBP: [150021, 'MDC_PRESS_BLD_NONINV_SYS', '266016^MDC_DIM_MMHG^MDC'],
  diastolicBP: [150022, 'MDC_PRESS_BLD_NONINV_DIA', '266016^MDC_DIM_MMHG^MDC'],
  meanArterialPressure: [150023, 'MDC_PRESS_BLD_NONINV_MEAN', '266016^MDC_DIM_MMHG^MDC'],
};

/** A yes/no as HL7 table 0136. */
const yesNo = (v: boolean) => (v ? 'Y^Yes^HL70136' : 'N^No^HL70136');
const word = (v: string) => `${escapeHl7(v)}^^${LOCAL_SYSTEM}`;

/**
 * The charted sections as 99CRS OBX rows (docs/interfaces.md, "Charted values"): [OBX-2, OBX-3, OBX-5], numbers as
 * NM with no unit, words as CWE in 99CRS, yes/no as CWE in HL7 table 0136.
 */
function chartedRows(m: DeviceMessage): [type: string, code: string, value: string][] {
  const rows: [string, string, string][] = [];
  const code = (c: string, text: string) => `${c}^${text}^${LOCAL_SYSTEM}`;
  const n = m.neuro;
  if (n?.iceScore !== undefined) rows.push(['NM', code(CRS.iceScore, 'ICE score'), String(n.iceScore)]);
  if (n?.consciousness !== undefined)
    rows.push(['CWE', code(CRS.consciousness, 'Level of consciousness'), word(n.consciousness)]);
  if (n?.seizure !== undefined) rows.push(['CWE', code(CRS.seizure, 'Seizure'), word(n.seizure)]);
  if (n?.motorWeakness !== undefined)
    rows.push(['CWE', code(CRS.motorWeakness, 'Motor weakness'), yesNo(n.motorWeakness)]);
  if (n?.cerebralEdema !== undefined)
    rows.push(['CWE', code(CRS.cerebralEdema, 'Cerebral edema'), word(n.cerebralEdema)]);
  const o = m.organToxicity;
  if (o?.maxCtcaeGrade !== undefined)
    rows.push(['NM', code(CRS.organToxicity, 'Organ toxicity, highest CTCAE grade'), String(o.maxCtcaeGrade)]);
  if (o?.transaminitisGrade !== undefined)
    rows.push(['NM', code(CRS.transaminitis, 'Transaminitis, CTCAE grade'), String(o.transaminitisGrade)]);
  return rows;
}

export interface EncodeOptions {
  facility?: string;
  application?: string;
  /** MSH-10; the message's own id by default (so that a resent message deduplicates the same way). */
  controlId?: string;
}

/**
 * An ORU^R01 for the message's vitals, oxygen (for comfort as `oxygen-for-comfort^^99CRS`), ICANS domains and organ
 * toxicity, or undefined when it has none of them. pcd01.ts reads the ICANS domains back as a message of kind
 * `manual` and organ toxicity as one of kind `ehr` (a monitor's token may not send them: AE 207), so `crs simulate`
 * sends a message with charting as JSON, as before.
 */
export function toPcd01(m: DeviceMessage, o: EncodeOptions = {}): string | undefined {
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
    row('CWE', `${OXYGEN_DEVICE_CODE}^Oxygen delivery device^${LOCAL_SYSTEM}`, word(m.oxygen.device), '');
    if (m.oxygen.fio2 !== undefined)
      row('NM', '3150-0^Inhaled oxygen concentration^LN', String(m.oxygen.fio2), '1^^UCUM');
    if (m.oxygen.flowLpm !== undefined)
      row('NM', '3151-8^Inhaled oxygen flow rate^LN', String(m.oxygen.flowLpm), 'L/min^^UCUM');
    if (m.oxygen.forComfort !== undefined)
      row('CWE', `${CRS.oxygenForComfort}^Oxygen for comfort^${LOCAL_SYSTEM}`, yesNo(m.oxygen.forComfort), '');
  }
  for (const [type, code, value] of chartedRows(m)) row(type, code, value, '');
  if (obx.length === 0) return undefined;
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
