// Contract messages written as FHIR R4 resources, as an EHR or a flowsheet would chart them: the inverse of
// translate.ts, for the tests, the vignettes and examples. Stateful per patient only to write "all vasopressors
// stopped" ([]) as the stopped administrations of the drugs that were infusing.
import type {
  Bundle,
  BundleEntry,
  Encounter,
  MedicationAdministration,
  Observation,
  Procedure,
  Resource,
} from '@medplum/fhirtypes';
import type { DeviceMessage, VasopressorDrug } from '#domain/contract.ts';
import {
  CRS_CODES,
  CRS_OBSERVATIONS,
  DISCHARGE_DISPOSITION,
  DISPOSITION_OF,
  LOINC_SYSTEM,
  RXNORM,
  RXNORM_MEDICATIONS,
  RXNORM_VASOPRESSORS,
  UCUM,
} from '#app/interfaces/terminology.ts';
import { LOINC_WEIGHT } from './translate.ts';

const rxnormOf = (table: Record<string, string>, drug: string) => Object.entries(table).find(([, d]) => d === drug)![0];
const RATE_UCUM = { 'mcg/kg/min': 'ug/kg/min', 'mcg/min': 'ug/min', 'units/min': 'U/min' } as const;
const VITAL_LOINC: Record<string, [code: string, ucum: string]> = {
  temperatureC: ['8310-5', 'Cel'],
  heartRate: ['8867-4', '/min'],
  respiratoryRate: ['9279-1', '/min'],
  spo2: ['59408-5', '%'],
  systolicBP: ['8480-6', 'mm[Hg]'],
  diastolicBP: ['8462-4', 'mm[Hg]'],
  meanArterialPressure: ['8478-0', 'mm[Hg]'],
};

export class FhirEncoder {
  private readonly infusing = new Map<string, VasopressorDrug[]>();

  /** The message's sections as a transaction Bundle (vitals included unless `skipVitals`). */
  bundle(m: DeviceMessage, o: { skipVitals?: boolean } = {}): Bundle | undefined {
    const resources = this.resources(m, o);
    if (resources.length === 0) return undefined;
    return {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: resources.map(
        (resource): BundleEntry => ({ resource, request: { method: 'POST', url: resource.resourceType } }),
      ),
    };
  }

  resources(m: DeviceMessage, o: { skipVitals?: boolean } = {}): Resource[] {
    let n = 0;
    const identifier = () => [{ system: 'urn:crs:message-id', value: `${m.messageId}#${++n}` }];
    const subject = { reference: `Patient/${m.patientId}` };
    const device = { reference: `Device/${m.source.deviceId}` };
    const when = m.observedAt;
    const out: Resource[] = [];
    const obs = (
      code: { system: string; code: string },
      extra: Partial<Observation>,
      withDevice = false,
    ): Observation => ({
      resourceType: 'Observation',
      identifier: identifier(),
      status: 'final',
      code: { coding: [code] },
      subject,
      effectiveDateTime: when,
      ...(withDevice ? { device } : {}),
      ...extra,
    });

    const e = m.enrolment;
    if (e) {
      if (e.infusedAt && e.therapy) {
        const p: Procedure = {
          resourceType: 'Procedure',
          identifier: identifier(),
          status: 'completed',
          code: {
            coding: [{ system: CRS_CODES, code: e.therapy === 'car-t' ? 'car-t-infusion' : 'bispecific-infusion' }],
          },
          subject,
          performedDateTime: e.infusedAt,
          ...(e.product ? { usedCode: [{ text: e.product }] } : {}),
        };
        out.push(p);
      }
      if (e.weightKg !== undefined)
        out.push(
          obs(
            { system: LOINC_SYSTEM, code: LOINC_WEIGHT },
            { valueQuantity: { value: e.weightKg, unit: 'kg', system: UCUM, code: 'kg' } },
          ),
        );
    }
    // Where the patient is, and the end of the stay (a finished Encounter at period.end): one Encounter.
    if (e?.bed || e?.ward || m.monitoringEnd) {
      const loc = (type: string, display: string) => ({
        location: { display },
        status: 'active' as const,
        physicalType: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: type }],
        },
        period: { start: when },
      });
      const end = m.monitoringEnd;
      const enc: Encounter = {
        resourceType: 'Encounter',
        identifier: identifier(),
        status: end ? 'finished' : 'in-progress',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
        subject,
        ...(end
          ? {
              period: { end: when },
              hospitalization: {
                dischargeDisposition: {
                  coding: [{ system: DISCHARGE_DISPOSITION, code: DISPOSITION_OF[end.reason] }],
                },
              },
            }
          : {}),
        location: [...(e?.bed ? [loc('bd', e.bed)] : []), ...(e?.ward ? [loc('wa', e.ward)] : [])],
      };
      out.push(enc);
    }
    if (m.vitals && !o.skipVitals) {
      const withDevice = m.source.kind === 'monitor';
      for (const [field, value] of Object.entries(m.vitals)) {
        const [code, unit] = VITAL_LOINC[field]!;
        out.push(
          obs(
            { system: LOINC_SYSTEM, code },
            { category: [vitalSigns], valueQuantity: { value, unit, system: UCUM, code: unit } },
            withDevice,
          ),
        );
      }
    }
    if (m.oxygen) {
      const x = m.oxygen;
      const component: Observation['component'] = [];
      if (x.fio2 !== undefined)
        component.push({
          code: { coding: [{ system: LOINC_SYSTEM, code: '3150-0' }] },
          valueQuantity: { value: Math.round(x.fio2 * 10000) / 100, unit: '%', system: UCUM, code: '%' },
        });
      if (x.flowLpm !== undefined)
        component.push({
          code: { coding: [{ system: LOINC_SYSTEM, code: '3151-8' }] },
          valueQuantity: { value: x.flowLpm, unit: 'L/min', system: UCUM, code: 'L/min' },
        });
      if (x.forComfort !== undefined)
        component.push({
          code: { coding: [{ system: CRS_CODES, code: CRS_OBSERVATIONS.oxygenForComfort }] },
          valueBoolean: x.forComfort,
        });
      out.push(
        obs(
          { system: CRS_CODES, code: CRS_OBSERVATIONS.oxygenDevice },
          {
            valueCodeableConcept: { coding: [{ system: CRS_CODES, code: x.device }] },
            ...(component.length ? { component } : {}),
          },
          m.source.kind === 'ventilator',
        ),
      );
    }
    if (m.vasopressors) {
      const pump = m.source.kind === 'pump' ? { device: [device] } : {};
      const drugs = m.vasopressors.map((v) => v.drug);
      for (const v of m.vasopressors) {
        const ma: MedicationAdministration = {
          resourceType: 'MedicationAdministration',
          identifier: identifier(),
          status: v.dose > 0 ? 'in-progress' : 'on-hold',
          medicationCodeableConcept: { coding: [{ system: RXNORM, code: rxnormOf(RXNORM_VASOPRESSORS, v.drug) }] },
          subject,
          effectiveDateTime: when,
          dosage: { rateQuantity: { value: v.dose, unit: RATE_UCUM[v.unit], system: UCUM, code: RATE_UCUM[v.unit] } },
          ...pump,
        };
        out.push(ma);
      }
      // "None infusing any more": the drugs that were infusing, stopped.
      for (const drug of this.infusing.get(m.patientId) ?? []) {
        if (drugs.includes(drug)) continue;
        out.push({
          resourceType: 'MedicationAdministration',
          identifier: identifier(),
          status: 'stopped',
          medicationCodeableConcept: { coding: [{ system: RXNORM, code: rxnormOf(RXNORM_VASOPRESSORS, drug) }] },
          subject,
          effectiveDateTime: when,
          ...pump,
        } satisfies MedicationAdministration);
      }
      if (m.vasopressors.length === 0 && !(this.infusing.get(m.patientId) ?? []).length) {
        throw new Error(`message ${m.messageId}: "no vasopressor" with none known to stop cannot be written as FHIR`);
      }
      this.infusing.set(m.patientId, [...new Set(drugs)]);
    }
    for (const med of m.medications ?? []) {
      const ma: MedicationAdministration = {
        resourceType: 'MedicationAdministration',
        identifier: identifier(),
        status: 'completed',
        medicationCodeableConcept: { coding: [{ system: RXNORM, code: rxnormOf(RXNORM_MEDICATIONS, med.drug) }] },
        subject,
        effectiveDateTime: when,
        ...(med.doseMg !== undefined
          ? { dosage: { dose: { value: med.doseMg, unit: 'mg', system: UCUM, code: 'mg' } } }
          : {}),
      };
      out.push(ma);
    }
    if (m.neuro) {
      const n = m.neuro;
      if (n.iceScore !== undefined)
        out.push(obs({ system: CRS_CODES, code: CRS_OBSERVATIONS.iceScore }, { valueInteger: n.iceScore }));
      const coded = (code: string, value: string) =>
        obs({ system: CRS_CODES, code }, { valueCodeableConcept: { coding: [{ system: CRS_CODES, code: value }] } });
      if (n.consciousness) out.push(coded(CRS_OBSERVATIONS.consciousness, n.consciousness));
      if (n.seizure) out.push(coded(CRS_OBSERVATIONS.seizure, n.seizure));
      if (n.cerebralEdema) out.push(coded(CRS_OBSERVATIONS.cerebralEdema, n.cerebralEdema));
      if (n.motorWeakness !== undefined)
        out.push(obs({ system: CRS_CODES, code: CRS_OBSERVATIONS.motorWeakness }, { valueBoolean: n.motorWeakness }));
    }
    if (m.organToxicity) {
      const t = m.organToxicity;
      if (t.maxCtcaeGrade !== undefined)
        out.push(obs({ system: CRS_CODES, code: CRS_OBSERVATIONS.organToxicity }, { valueInteger: t.maxCtcaeGrade }));
      if (t.transaminitisGrade !== undefined)
        out.push(
          obs({ system: CRS_CODES, code: CRS_OBSERVATIONS.transaminitis }, { valueInteger: t.transaminitisGrade }),
        );
    }
    if (m.labs) {
      const lab = (code: string, value: number, unit: string) =>
        obs({ system: LOINC_SYSTEM, code }, { valueQuantity: { value, unit, system: UCUM, code: unit } });
      if (m.labs.crpMgL !== undefined) out.push(lab('1988-5', m.labs.crpMgL, 'mg/L'));
      if (m.labs.ferritinNgMl !== undefined) out.push(lab('2276-4', m.labs.ferritinNgMl, 'ng/mL'));
      if (m.labs.il6PgMl !== undefined) out.push(lab('26881-3', m.labs.il6PgMl, 'pg/mL'));
    }
    return out;
  }
}

const vitalSigns = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }],
};
