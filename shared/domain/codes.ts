// Device codes for mapping FHIR Observations and HL7 v2 / IHE PCD-01 results onto contract fields
// (crs-rules.md section 7). FiO2 is LOINC 3150-0 and oxygen flow 3151-8: the two are often swapped.

export type CodedField =
  | 'vitals.temperatureC'
  | 'vitals.heartRate'
  | 'vitals.respiratoryRate'
  | 'vitals.spo2'
  | 'vitals.systolicBP'
  | 'vitals.diastolicBP'
  | 'vitals.meanArterialPressure'
  | 'oxygen.fio2'
  | 'oxygen.flowLpm';

export const LOINC: Record<string, CodedField> = {
  '8310-5': 'vitals.temperatureC',
  '8867-4': 'vitals.heartRate',
  '9279-1': 'vitals.respiratoryRate',
  '2708-6': 'vitals.spo2',
  '59408-5': 'vitals.spo2',
  '8480-6': 'vitals.systolicBP',
  '8462-4': 'vitals.diastolicBP',
  '8478-0': 'vitals.meanArterialPressure',
  '3150-0': 'oxygen.fio2',
  '3151-8': 'oxygen.flowLpm',
};

/** The blood pressure panel whose components carry systolic (8480-6) and diastolic (8462-4). */
export const LOINC_BP_PANEL = '85354-9';

/** IEEE 11073 MDC observation codes. */
export const MDC: Record<number, CodedField> = {
  150456: 'vitals.spo2',
  150021: 'vitals.systolicBP',
  150022: 'vitals.diastolicBP',
  150023: 'vitals.meanArterialPressure',
  149546: 'vitals.heartRate', // non-invasive pulse rate
  151562: 'vitals.respiratoryRate',
  150344: 'vitals.temperatureC',
};

/** IEEE 11073 MDC unit codes. */
export const MDC_UNITS: Record<number, string> = {
  266016: 'mmHg',
  264864: 'beats/min',
};
