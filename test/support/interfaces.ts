// The public vignettes as a hospital's interfaces would send them: each message's vitals as an IHE PCD-01 ORU^R01
// from a monitor gateway, everything else (enrolment, oxygen, pumps, medications, neuro) as FHIR R4 from the EHR.
import { readFileSync } from 'node:fs';
import type { Bundle } from '@medplum/fhirtypes';
import { check } from '#app/ingest.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { entriesOf, translateResources } from '#app/fhir/translate.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { screen } from '#app/interfaces/screen.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { resolveConfig } from '#domain/config.ts';
import { Replay } from '#app/replay.ts';

export interface Vignette {
  id: string;
  scheme: 'astct2019' | 'lee2014';
  title: string;
  messages: DeviceMessage[];
  expect: {
    crs: number;
    icans: number;
    notifications: { kind: string; condition: string; toGrade: number; teams: string[] }[];
    duplicates?: number;
  };
}

/** The vignettes file this branch has (the rules branch replaces it with the 20-case one). */
export const vignettes = JSON.parse(
  readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8'),
) as Vignette[];

export type InterfaceItem =
  | { format: 'hl7v2'; text: string; from: string }
  | { format: 'fhir'; bundle: Bundle; from: string };

/** One vignette's messages, in order, as HL7 v2 (vitals) and FHIR (the rest). */
export function asInterfaces(v: Vignette): InterfaceItem[] {
  const fhir = new FhirEncoder();
  return v.messages.flatMap((m) => interfaceItems(m, fhir));
}

/**
 * One message as HL7 v2 (its vitals) and FHIR (the rest). `fhir` is the patient's encoder, called in charting
 * order: it remembers which vasopressors infuse, to write "all stopped" ([]).
 */
function interfaceItems(m: DeviceMessage, fhir: FhirEncoder): InterfaceItem[] {
  const out: InterfaceItem[] = [];
  const { oxygen: _o, enrolment: _e, neuro: _n, organToxicity: _t, ...vitals } = m;
  const text = toPcd01(vitals as DeviceMessage);
  if (text) out.push({ format: 'hl7v2', text, from: m.messageId });
  const bundle = fhir.bundle(m, { skipVitals: true });
  if (bundle) out.push({ format: 'fhir', bundle, from: m.messageId });
  return out;
}

/** An item translated and checked as the servers do (screen + the ingest's check), with every problem. */
export function translateItem(
  item: InterfaceItem,
  now: number,
  deviceId = 'ehr-test',
): { messages: DeviceMessage[]; problems: string[] } {
  const messages: DeviceMessage[] = [];
  const problems: string[] = [];
  const take = <L>(t: { message: Record<string, unknown>; origins: Record<string, L>; whole: L }) => {
    const s = screen(t, (value) => check(value, now));
    problems.push(...s.problems.map((p) => p.text));
    if (s.message) messages.push(s.message);
  };
  if (item.format === 'hl7v2') {
    const r = translatePcd01(item.text);
    problems.push(...r.problems.map((p) => p.text));
    if (r.ok) r.translated.forEach(take);
  } else {
    const e = entriesOf(item.bundle);
    if (!e.ok) return { messages, problems: e.issues.map((i) => i.text) };
    const t = translateResources(e.items, { deviceId });
    problems.push(...t.issues.filter((i) => i.severity !== 'warning').map((i) => `${i.expression}: ${i.text}`));
    t.translated.forEach(take);
  }
  return { messages, problems };
}

/** The CRS grades (ASTCT 2019) `crs replay` gives a translated message on its own: what a reading read in grades. */
export function crsGradesOf(message: unknown): number[] {
  const config = resolveConfig({ scheme: 'astct2019' });
  if (!config.ok) throw new Error(config.errors.join('; '));
  const events = new Replay(config.config).line(JSON.stringify(message), 1);
  return events.filter((e) => e.type === 'assessment').map((e) => (e as { crsGrade: number }).crsGrade);
}
