// A site's FHIR drug codes (`--fhir-drug-codes FILE`) and a Bundle that needs them: one febrile hypotensive patient
// on two pumps, norepinephrine by a local code the map names and epinephrine by its RxNorm ingredient (3992). With
// the map both are graded (two non-vasopressin vasopressors: ASTCT CRS 4); without it the Bundle is refused 422 (the
// local pump names norepinephrine but is coded as no drug this system grades).
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { LOINC_SYSTEM, RXNORM, UCUM } from '#app/interfaces/terminology.ts';

const LOCAL_DRUGS = 'urn:oid:1.2.3';
const LOCAL_NOREPINEPHRINE = 'NE-DRIP';

export function mappedPressors(at: number): {
  map: { system: string; code: string; drug: string }[];
  bundle: (patientId: string, localCode?: string) => Bundle;
} {
  const effectiveDateTime = new Date(at).toISOString();
  const qty = (value: number, code: string) => ({ value, unit: code, system: UCUM, code });
  const bundle = (patientId: string, localCode = LOCAL_NOREPINEPHRINE): Bundle => {
    const subject = { reference: `Patient/${patientId}` };
    const vital = (id: string, code: string, value: number, unit: string) => ({
      resourceType: 'Observation',
      id: `${patientId}-${id}`,
      status: 'final',
      code: { coding: [{ system: LOINC_SYSTEM, code }] },
      subject,
      effectiveDateTime,
      valueQuantity: qty(value, unit),
      device: { reference: 'Device/monitor-1' },
    });
    const pump = (id: string, coding: { system: string; code: string; display?: string }) => ({
      resourceType: 'MedicationAdministration',
      id: `${patientId}-${id}`,
      status: 'in-progress',
      medicationCodeableConcept: { coding: [coding] },
      subject,
      effectiveDateTime,
      dosage: { rateQuantity: qty(0.1, 'ug/kg/min') },
      device: [{ reference: `Device/pump-${patientId}-${id}` }],
    });
    const resources = [
      vital('temp', '8310-5', 38.9, 'Cel'),
      vital('map', '8478-0', 55, 'mm[Hg]'),
      pump('ne', { system: LOCAL_DRUGS, code: localCode, display: 'Norepinephrine drip' }),
      pump('epi', { system: RXNORM, code: '3992' }),
    ] as Resource[];
    return {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: resources.map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })),
    };
  };
  return { map: [{ system: LOCAL_DRUGS, code: LOCAL_NOREPINEPHRINE, drug: 'norepinephrine' }], bundle };
}
