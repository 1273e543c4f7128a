// The two content filters of the deployed shape, evaluated here as AWS evaluates them: Lambda event filtering
// (the notifier's stream filter: outbox INSERTs only) and SNS subscription filter policies on message attributes
// (which team gets which page). Only the operators AWS documents for both are accepted; anything else is refused
// loudly at start rather than matched wrongly.

type Leaf = string | number | boolean | null | { [op: string]: unknown };

function matchesLeaf(rule: Leaf, value: unknown, present: boolean): boolean {
  if (rule === null || typeof rule !== 'object') return present && value === rule;
  const [op, arg] = Object.entries(rule)[0] ?? [];
  switch (op) {
    case 'exists':
      return present === arg;
    case 'prefix':
      return present && typeof value === 'string' && typeof arg === 'string' && value.startsWith(arg);
    case 'anything-but': {
      const list = Array.isArray(arg) ? arg : [arg];
      return present && !list.includes(value);
    }
    case 'numeric': {
      if (!present || typeof value !== 'number' || !Array.isArray(arg)) return false;
      for (let i = 0; i + 1 < arg.length; i += 2) {
        const bound = Number(arg[i + 1]);
        const ok = {
          '=': value === bound,
          '<': value < bound,
          '<=': value <= bound,
          '>': value > bound,
          '>=': value >= bound,
        }[String(arg[i])];
        if (!ok) return false;
      }
      return true;
    }
    default:
      throw new Error(`filter operator ${JSON.stringify(op)} is not supported by the local host`);
  }
}

/** A list of alternatives matches when any of them matches the value (or, for an array value, any element). */
function matchesList(rules: Leaf[], value: unknown, present: boolean): boolean {
  if (Array.isArray(value)) return value.some((v) => rules.some((r) => matchesLeaf(r, v, true)));
  return rules.some((r) => matchesLeaf(r, value, present));
}

/** Lambda event filtering: every key of the pattern must match the event (nested objects recurse). */
export function matchesEventPattern(pattern: Record<string, unknown>, event: unknown): boolean {
  const obj = (event ?? {}) as Record<string, unknown>;
  for (const [key, rule] of Object.entries(pattern)) {
    const present = Object.hasOwn(obj, key) && obj[key] !== undefined;
    if (Array.isArray(rule)) {
      if (!matchesList(rule as Leaf[], obj[key], present)) return false;
    } else if (rule && typeof rule === 'object') {
      if (!present || !matchesEventPattern(rule as Record<string, unknown>, obj[key])) return false;
    } else {
      throw new Error(`filter pattern key ${key} must be a list or an object`);
    }
  }
  return true;
}

/** An SNS message attribute as SNS delivers it in the notification envelope. */
export interface EnvelopeAttribute {
  Type: string;
  Value: string;
}

function attributeValue(a: EnvelopeAttribute): unknown {
  if (a.Type === 'String.Array') {
    try {
      return JSON.parse(a.Value) as unknown;
    } catch {
      return a.Value;
    }
  }
  if (a.Type.startsWith('Number')) return Number(a.Value);
  return a.Value;
}

/** SNS filter policy (scope MessageAttributes): every key must match; an absent attribute matches nothing. */
export function matchesFilterPolicy(
  policy: Record<string, unknown>,
  attributes: Record<string, EnvelopeAttribute>,
): boolean {
  for (const [name, rule] of Object.entries(policy)) {
    if (!Array.isArray(rule)) throw new Error(`filter policy key ${name} must be a list`);
    const attribute = attributes[name];
    if (!matchesList(rule as Leaf[], attribute ? attributeValue(attribute) : undefined, attribute !== undefined))
      return false;
  }
  return true;
}
