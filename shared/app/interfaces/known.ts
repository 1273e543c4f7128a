// Where a patient is (an ADT event's bed, a FHIR Encounter's), the end of a stay and a re-admission are taken only
// for a patient the server already knows (graded, or waiting to be graded; on AWS, one with a state): a hospital's
// ADT feed, or an EHR's Encounter feed, names every patient, and each one enrolled would be watched for monitor data
// it never sends (a "no data" page each), each one discharged would be a patient of its own (on crs serve, counted
// against --max-patients until real patients are refused).
import { admitPatients, type PatientDirectory, type Principal } from '#app/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';

/** What the sender is told of such a message of a patient the server does not know (HL7: MSA-3; FHIR: an issue). */
export const NOT_MONITORED = 'a patient this system does not monitor (no data yet): nothing taken';

export interface KnownSort<T> {
  /** To admit and queue as any message. */
  taken: T[];
  /** Of a patient the server does not know: nothing taken, the sender told so (never an error). */
  notMonitored: T[];
  /** Of a patient outside the token's scope: refused as any message of that patient, known or not. */
  refused: { item: T; error: string }[];
}

/**
 * Sorts a request's screened messages (the token's sections already decided: a sender that may not send them was
 * refused, known patient or not). One marked `ifKnown` is taken for a patient the directory knows (none without a
 * directory), or one the same request gives other data of: a FHIR transaction or batch that carries a new patient's
 * first Observations with its Encounter is taken whole, bed and all, as if the Encounter came a moment after (an
 * HL7 ADT message carries nothing else). For another patient, the token's patient and ward scope is decided before
 * the sender is told "not monitored": a token refused for that patient is refused, whether the server knows the
 * patient or not (an answer that differs would tell a token scoped to other patients which ones are monitored).
 */
export async function sortIfKnown<T extends { message: DeviceMessage; ifKnown?: true }>(
  items: readonly T[],
  principal: Principal,
  directory: PatientDirectory | undefined,
): Promise<KnownSort<T>> {
  const carried = new Set(items.filter((i) => !i.ifKnown).map((i) => i.message.patientId));
  const asked = [
    ...new Set(items.filter((i) => i.ifKnown && !carried.has(i.message.patientId)).map((i) => i.message.patientId)),
  ];
  // A directory that fails throws, as the scope's lookup does: the host answers 503 (send again).
  const known = asked.length > 0 && directory ? await directory.lookup(asked) : new Map<string, unknown>();
  const taken: T[] = [];
  const unknown: T[] = [];
  for (const i of items)
    (i.ifKnown && !carried.has(i.message.patientId) && !known.has(i.message.patientId) ? unknown : taken).push(i);
  if (unknown.length === 0) return { taken, notMonitored: [], refused: [] };
  // The scope alone (no ceiling: nothing is taken, so no room is reserved).
  const scope = await admitPatients(
    principal,
    unknown.map((i) => i.message),
    directory ? { directory } : {},
  );
  scope.release(false);
  const refusals = new Map(scope.refusals.map((r) => [r.index, r.error]));
  return {
    taken,
    notMonitored: unknown.filter((_, n) => !refusals.has(n)),
    refused: unknown.flatMap((item, n) => (refusals.has(n) ? [{ item, error: refusals.get(n)! }] : [])),
  };
}

/** The same for a replay (no token, no directory): a patient is known by an earlier item, or this item's data. */
export function takenIfKnown<T extends { message: DeviceMessage; ifKnown?: true }>(
  items: readonly T[],
  earlier: ReadonlySet<string>,
): T[] {
  const carried = new Set(items.filter((i) => !i.ifKnown).map((i) => i.message.patientId));
  return items.filter((i) => !i.ifKnown || earlier.has(i.message.patientId) || carried.has(i.message.patientId));
}
