// Every device route, whatever the format: JSON (/v1/messages, /v1/messages/batch), HL7 v2 (/v1/hl7v2) and FHIR R4
// (/fhir/r4/...). Both hosts (the embedded server, the ingest Lambda) call this one function.
// The HL7 v2 and FHIR code (and its FHIR library) loads on the first request of its route: a host that only sees
// JSON never loads it, and the ingest Lambda's cold start does not pay for it (npm run bench).
import { UNAVAILABLE, type AuthResult } from '#app/auth.ts';
import { handleIngest, unavailable, type HttpRequest, type IngestDeps } from '#app/ingest.ts';
import type { DeviceAnswer } from '#app/hl7v2/http.ts';
import { FHIR_BASE, HL7_ROUTE } from './routes.ts';
import type { Hl7IngestDeps } from '#app/hl7v2/ingest.ts';
import type { FhirIngestDeps } from '#app/fhir/http.ts';

export type { DeviceAnswer };
export type DeviceDeps = IngestDeps &
  Pick<Hl7IngestDeps, 'hl7Zone' | 'hl7PatientAuthority'> &
  Pick<FhirIngestDeps, 'fhirPatientSystem' | 'fhirDrugCodes'> & {
    /** Told the error (for its name in the host's log) when a request is answered 503 because something threw. */
    onUnavailable?: (err: unknown) => void;
  };

/**
 * Loads the HL7 v2 and FHIR routes now. `crs serve` calls it at start: loaded at their first request instead, from
 * a build replaced since (bin/crs.js rebuilds dist/cli when a source changed, and removes the build it replaces),
 * they could not load, and each such request was answered 500. The ingest Lambda, whose bundle never changes under
 * it, keeps loading them at their first request.
 */
export async function loadInterfaceRoutes(): Promise<void> {
  await Promise.all([import('../hl7v2/http.ts'), import('../fhir/http.ts')]);
}

/** True for a path this function answers (the hosts route these here). */
export function isDevicePath(path: string): boolean {
  return path.startsWith('/v1/') || path === FHIR_BASE || path.startsWith(`${FHIR_BASE}/`);
}

/**
 * `authenticated`: the token, when the host checked it before reading the body (the embedded server does).
 * A store the request needs that throws (the patient directory throttled, a database closed) is answered 503 in the
 * route's own format: nothing was accepted, and the sender sends again (a 500 would not say so).
 */
export async function handleDeviceRequest(
  req: HttpRequest,
  deps: DeviceDeps,
  authenticated?: AuthResult,
): Promise<DeviceAnswer> {
  const hl7 = req.path === HL7_ROUTE;
  const fhir = req.path === FHIR_BASE || req.path.startsWith(`${FHIR_BASE}/`);
  try {
    if (hl7) return await (await import('../hl7v2/http.ts')).handleHl7Http(req, deps, authenticated);
    if (fhir) return await (await import('../fhir/http.ts')).handleFhirHttp(req, deps, authenticated);
    const res = await handleIngest(req, deps, authenticated);
    let messageIds: string[] = [];
    if (res.status === 202) messageIds = (JSON.parse(res.body) as { messageIds: string[] }).messageIds;
    return { ...res, messageIds };
  } catch (err) {
    deps.onUnavailable?.(err);
    if (hl7) return (await import('../hl7v2/http.ts')).hl7Unavailable(UNAVAILABLE, deps.now());
    if (fhir) return (await import('../fhir/http.ts')).fhirUnavailable(UNAVAILABLE);
    return { ...unavailable(UNAVAILABLE), messageIds: [] };
  }
}
