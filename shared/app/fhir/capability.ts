// The server's CapabilityStatement (GET /fhir/r4/metadata): what FHIR clients read before they send anything (a
// HAPI FHIR client checks it on its first request by default), so an integration engine can connect. It states
// only what this endpoint does: create of the resources it grades, and batch and transaction Bundles.
import type { CapabilityStatement } from '@medplum/fhirtypes';
import { FHIR_RESOURCES } from './translate.ts';

/** When this statement last changed (CapabilityStatement.date is required). */
const STATEMENT_DATE = '2026-12-03';

export function capabilityStatement(): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: STATEMENT_DATE,
    kind: 'instance',
    software: { name: 'crs-alerting' },
    implementation: {
      description:
        'CRS and ICANS grading: receives observations, medications, encounters and procedures; stores no FHIR resources and answers no reads',
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation:
          'POST a batch, transaction or collection Bundle to the base (or to Bundle), or one resource to its type',
        security: {
          description: 'Every POST needs a device token (Authorization: Bearer <token>); this statement needs none.',
        },
        resource: [...FHIR_RESOURCES, 'Bundle' as const].map((type) => ({ type, interaction: [{ code: 'create' }] })),
        interaction: [{ code: 'batch' }, { code: 'transaction' }],
      },
    ],
  };
}
