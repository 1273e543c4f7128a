// A translated message goes through the contract's own validation (validateMessage, via the ingest's check, which
// adds the device-clock rule) like any JSON message: there is no second set of clinical ranges here. What this adds
// is the way back: an error on a field is reported at the HL7 segment or FHIR path it came from, and that one
// observation is refused while the message's other observations are kept (a monitor does not send the good ones
// again). An error that no single observation explains (the patient id, the time) refuses the whole message.
import type { DeviceMessage } from '#domain/contract.ts';

/** A contract message as a translator built it (not yet validated), and where each of its parts came from. */
export interface Translated<L> {
  message: Record<string, unknown>;
  /**
   * Removable parts ('vitals.temperatureC', 'oxygen', 'vasopressors', ...) and the source location of each: an
   * error under one of these paths removes that part only.
   */
  origins: Record<string, L>;
  /** Where an error about the whole message is reported (the PID segment, the resource). */
  whole: L;
  /**
   * The other places the message came from (HL7 v2: a second PID group of the same patient, time and device), where
   * a refusal of the whole message is said too: said at the first alone, the others' observations were taken by the
   * sender for accepted.
   */
  alsoAt?: L[];
  /**
   * The other places a removable part came from (HL7 v2: the FiO2 and flow OBX of the oxygen section, whose origin is
   * the device's), where its refusal as a whole is said too.
   */
  alsoFrom?: Record<string, L[]>;
  /**
   * Taken only for a patient the server already knows (known.ts): where an ADT event or a FHIR Encounter places a
   * patient, or ends the watch, which a hospital's whole feed sends for every patient.
   */
  ifKnown?: true;
}

export interface Problem<L> {
  at: L;
  text: string;
}

export type Check = (value: unknown) => { ok: true; message: DeviceMessage } | { ok: false; errors: string[] };

const pathOf = (error: string) => error.slice(0, Math.max(0, error.indexOf(': ')));

function originFor<L>(t: Translated<L>, path: string): string | undefined {
  let best: string | undefined;
  for (const key of Object.keys(t.origins)) {
    if (
      (path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`)) &&
      (!best || key.length > best.length)
    )
      best = key;
  }
  return best;
}

function without(message: Record<string, unknown>, key: string): Record<string, unknown> {
  const [section, field] = key.split('.') as [string, string | undefined];
  const copy = { ...message };
  if (field === undefined) {
    delete copy[section];
    return copy;
  }
  const inner = { ...(copy[section] as Record<string, unknown>) };
  delete inner[field];
  if (Object.keys(inner).length === 0) delete copy[section];
  else copy[section] = inner;
  return copy;
}

/** Every place a refusal of the whole message is said: `whole`, then `alsoAt`. */
export const wholeOf = <L>(t: Pick<Translated<L>, 'whole' | 'alsoAt'>): L[] => [t.whole, ...(t.alsoAt ?? [])];

/** The message as validated (with the refused observations taken out), or none, and every problem found. */
export function screen<L>(t: Translated<L>, check: Check): { message?: DeviceMessage; problems: Problem<L>[] } {
  const problems: Problem<L>[] = [];
  let message = t.message;
  // Each pass removes at least one part, so this ends.
  for (;;) {
    const v = check(message);
    if (v.ok) return { message: v.message, problems };
    const removable = new Set<string>();
    // Errors that no part present in the message explains (the patient id, the time, a required field that is
    // absent even where it has an origin): they refuse the whole message and are reported there, never dropped.
    const unexplained: string[] = [];
    for (const error of v.errors) {
      const key = originFor(t, pathOf(error));
      if (key && key in flatKeys(message)) {
        removable.add(key);
        for (const at of [t.origins[key]!, ...(t.alsoFrom?.[key] ?? [])]) problems.push({ at, text: error });
      } else unexplained.push(error);
    }
    if (unexplained.length > 0 || removable.size === 0) {
      for (const error of unexplained) for (const at of wholeOf(t)) problems.push({ at, text: error });
      return { problems };
    }
    for (const key of removable) message = without(message, key);
    if (!Object.keys(message).some((k) => !['messageId', 'patientId', 'observedAt', 'source'].includes(k)))
      return { problems };
  }
}

/** The removable keys present in a message ('vitals', 'vitals.spo2', ...), as an object for `in`. */
function flatKeys(message: Record<string, unknown>): Record<string, true> {
  const out: Record<string, true> = {};
  for (const [k, v] of Object.entries(message)) {
    out[k] = true;
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const f of Object.keys(v)) out[`${k}.${f}`] = true;
  }
  return out;
}
