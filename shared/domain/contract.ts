// Device message contract v1: the single source of truth for what a device may send.
// The JSON Schema in shared/contract/ is generated from this file (`npm run schema`).
import * as z from './zod.ts';
import {
  OXYGEN_DEVICES,
  VASOPRESSOR_DRUGS,
  VASOPRESSOR_UNITS,
  MEDICATION_DRUGS,
  CONSCIOUSNESS,
  SEIZURE,
  CEREBRAL_EDEMA,
  SOURCE_KINDS,
  THERAPIES,
  MONITORING_END_REASONS,
  SECTIONS,
  RANGES,
} from './vocabulary.ts';
import {
  JOINERS_JOIN,
  NO_CONTROL,
  NO_FORMAT,
  NO_SEPARATOR,
  controlProblem,
  formatProblem,
  joinerProblem,
  quoted,
  SENDER_MOST,
  separatorProblem,
} from './printable.ts';
import { timeSpellingProblem, zoneOffsetCheck } from './typed-time.ts';
import { unknownKeys } from './unknown-keys.ts';
export * from './vocabulary.ts';

/**
 * A short preview of a refused value. Bounded: a value nested thousands deep must not overflow the stack; text is
 * quoted as every device answer quotes a sender's value (quoted, SENDER_MOST): its control and format characters and
 * line separators escaped (a bidirectional override would reorder the error itself, a separator break it in two), at
 * most 64 characters, then `..."` (cut at 57 of its JSON, an escape cut in two and no closing quote, until 2026-12-07).
 */
const show = (v: unknown): string => {
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v !== null && typeof v === 'object') return 'an object';
  return typeof v === 'string' ? quoted(v, SENDER_MOST) : String(JSON.stringify(v) ?? v);
};

const isMissing = (input: unknown) => input === undefined;

/** A number in [lo, hi]; the error names the value and the range. */
function num(lo: number, hi: number, opts: { int?: boolean; hint?: (v: number) => string | undefined } = {}) {
  const range = hi === Infinity ? `${lo} or more` : `${lo}-${hi}`;
  const outside = (iss: { input?: unknown }) => {
    const hint = typeof iss.input === 'number' ? opts.hint?.(iss.input) : undefined;
    const problem = hi === Infinity ? `is below ${lo}` : `is outside ${range}`;
    return `${show(iss.input)} ${problem}${hint ? ` (${hint})` : ''}`;
  };
  let schema = z.number({
    error: (iss) =>
      isMissing(iss.input)
        ? 'is required'
        : // JSON.parse reads a number past the range of doubles (1e400) as Infinity, which JSON writes as null: it was
          // quoted as `null is not a number` until 2026-12-07.
          typeof iss.input === 'number' && Math.abs(iss.input) === Infinity
          ? `is a number too large to read (beyond ±1.8e308): allowed ${range}`
          : `${show(iss.input)} is not a number (allowed ${range})`,
  });
  if (opts.int)
    schema = schema.check(z.int({ error: (iss) => `${show(iss.input)} is not a whole number (allowed ${range})` }));
  schema = schema.check(z.gte(lo, { error: outside }));
  if (hi !== Infinity) schema = schema.check(z.lte(hi, { error: outside }));
  return schema;
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) =>
      isMissing(iss.input)
        ? `is required (one of ${values.join(', ')})`
        : `${show(iss.input)} is not one of ${values.join(', ')}`,
  });
}

/**
 * A label (bed, ward, product): printable text. A control or format character or a line or paragraph separator (a
 * line break, a bidirectional override, U+2028) would start a line of its own or reorder the text of a page, the board and the audit trail; the
 * replacement character (U+FFFD) stands for bytes that were not UTF-8, not for what was written. The two format
 * characters that only shape the characters either side, the zero-width non-joiner and joiner (U+200C, U+200D: in
 * Persian words, Indic half forms, emoji sequences), are taken between two characters beyond ASCII, where they do
 * that; next to ASCII, at an end or doubled they join nothing and would only make a label look like another.
 */
function text(min: number, max: number) {
  return z
    .string({ error: (iss) => (isMissing(iss.input) ? 'is required' : `${show(iss.input)} is not a string`) })
    .check(
      z.minLength(min, {
        error: (iss) => (min === 1 ? 'is empty' : `${show(iss.input)} is shorter than ${min} characters`),
      }),
      z.maxLength(max, { error: (iss) => `${show(iss.input)} is longer than ${max} characters` }),
      z.regex(NO_CONTROL, { error: (iss) => `${show(iss.input)} ${controlProblem(String(iss.input))}` }),
      z.regex(NO_FORMAT, { error: (iss) => `${show(iss.input)} ${formatProblem(String(iss.input))}` }),
      z.regex(NO_SEPARATOR, { error: (iss) => `${show(iss.input)} ${separatorProblem(String(iss.input))}` }),
      z.regex(JOINERS_JOIN, { error: (iss) => `${show(iss.input)} ${joinerProblem(String(iss.input), 'label')}` }),
      // U+FFFD is what a decoder writes for bytes that were not UTF-8 (ISO 8859-1 from an HL7 engine): a label read
      // so is another label ("S\uFFFDd" is not the ward "Süd"), on every page and in every ward scope.
      z.regex(/^[^\uFFFD]*$/u, {
        error: (iss) => `${show(iss.input)} holds U+FFFD, the mark of bytes that were not UTF-8: send UTF-8`,
      }),
      // Half of a surrogate pair alone ("\ud800" in JSON) is no character: UTF-8 cannot carry it, and the AWS SDK
      // threw on every page that named it (a ward as an SNS attribute).
      z.regex(/^\P{Cs}*$/u, {
        error: (iss) => `${show(iss.input)} holds half of a surrogate pair, which is no character: send UTF-8`,
      }),
    );
}

/** `enrolment.ward`: a token's wards are checked by the same rule. */
export const WARD = text(1, 32);

const timestamp = () =>
  z.iso
    .datetime({
      offset: true,
      error: (iss) =>
        isMissing(iss.input)
          ? 'is required'
          : `${show(iss.input)} ${
              (typeof iss.input === 'string' && timeSpellingProblem(iss.input)) ||
              'is not an RFC 3339 timestamp with a zone offset (e.g. 2026-11-26T10:00:00Z)'
            }`,
      // No later check for a text that is no such time: one error a field.
      abort: true,
    })
    .check(...zoneOffsetCheck(show));

/** An object that refuses unknown keys, naming them, so that a misspelt field is never silently dropped. */
function strict<S extends z.core.$ZodLooseShape>(shape: S, what = 'field') {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') return unknownKeys(iss.keys, known, what);
      if (iss.code === 'invalid_type')
        return isMissing(iss.input) ? 'is required' : `${show(iss.input)} is not an object`;
      return undefined;
    },
  });
}

/**
 * A check that only speaks when the object has no other problem so far (a misspelt key leaves a section empty too:
 * "empty" is only worth saying then). A check function that looks at the issues itself, not a refine with `when`:
 * z.compile (validateMessage) refuses a custom `when`, and a check function runs on its fast path with no issues
 * yet, as here on a valid message.
 */
function ifNoIssuesYet<T>(holds: (value: T) => boolean, message: string) {
  return z.check<T>((payload) => {
    if (payload.issues.length === 0 && !holds(payload.value))
      payload.issues.push({ code: 'custom', message, input: payload.value, continue: true });
  });
}

/**
 * An object with at least one of its fields. The check speaks for the parser; `minProperties` says it in the JSON
 * Schema, which carries no check function (until 2026-12-07 the published schema took `"vitals": {}`): registered,
 * not a z.meta check, which z.compile (validateMessage's fast path) does not take on an object.
 */
function nonEmpty<T extends z.ZodMiniObject>(schema: T, what: string) {
  const checked = schema.check(
    ifNoIssuesYet((o: object) => Object.values(o).some((v) => v !== undefined), `is empty: give at least one ${what}`),
  );
  z.globalRegistry.add(checked as z.ZodMiniObject, { minProperties: 1 });
  return checked;
}

const fahrenheitHint = (v: number) => (v >= 90 && v <= 115 ? 'Fahrenheit?' : undefined);
// FiO2 is a fraction; charts and ventilators often show it as a percent (40 %, sent as 40).
const percentHint = (v: number) =>
  v >= 21 && v <= 100 ? `a percent? send ${Number((v / 100).toPrecision(6))}` : undefined;

const Enrolment = nonEmpty(
  strict({
    therapy: z.optional(oneOf(THERAPIES)),
    product: z.optional(text(1, 64)),
    infusedAt: z.optional(timestamp()),
    weightKg: z.optional(num(0.5, 400)),
    bed: z.optional(text(1, 32)),
    ward: z.optional(WARD),
    // Per-patient hypotension thresholds (e.g. paediatric); the deployment defaults apply otherwise.
    // Either threshold may come alone; neither is a message that sets nothing, refused as an empty section is.
    hypotension: z.optional(
      nonEmpty(
        strict({
          systolicBelow: z.optional(num(...RANGES.systolicBelow)),
          mapBelow: z.optional(num(...RANGES.mapBelow)),
        }),
        'threshold',
      ),
    ),
  }),
  'enrolment field',
);

const VITALS = {
  temperatureC: z.optional(num(25, 45, { hint: fahrenheitHint })),
  heartRate: z.optional(num(0, 350)),
  respiratoryRate: z.optional(num(0, 120)),
  systolicBP: z.optional(num(0, 300)),
  diastolicBP: z.optional(num(0, 250)),
  meanArterialPressure: z.optional(num(0, 300)),
  spo2: z.optional(num(0, 100)),
};
const Vitals = nonEmpty(strict(VITALS), 'measurement');

const OXYGEN = {
  device: oneOf(OXYGEN_DEVICES),
  flowLpm: z.optional(num(...RANGES.flowLpm)),
  fio2: z.optional(num(...RANGES.fio2, { hint: percentHint })),
  forComfort: z.optional(z.boolean({ error: (iss) => `${show(iss.input)} is not true or false` })),
};
const Oxygen = strict(OXYGEN);

/**
 * What the contract says of one measurement (`vitals.temperatureC`, `oxygen.fio2`...), or undefined when it takes
 * it: for a translator choosing among a device's sources of one quantity, so that a value the contract refuses
 * anyway is never weighed against a good one.
 */
export function measurementProblem(field: string, value: unknown): string | undefined {
  const [section, key] = field.split('.');
  const shape: Record<string, z.ZodMiniType> | undefined =
    section === 'vitals' ? VITALS : section === 'oxygen' ? OXYGEN : undefined;
  const schema = key !== undefined && shape && Object.hasOwn(shape, key) ? shape[key] : undefined;
  if (!schema || value === undefined) return undefined;
  const r = schema.safeParse(value);
  return r.success ? undefined : r.error.issues[0]?.message;
}

const Vasopressor = strict({
  drug: oneOf(VASOPRESSOR_DRUGS),
  dose: num(0, Infinity),
  unit: oneOf(VASOPRESSOR_UNITS),
});

const Medication = strict({
  drug: oneOf(MEDICATION_DRUGS),
  doseMg: z.optional(num(0, Infinity)),
});

// Empty, it would say nothing: since rules 1.1 a field left out keeps its latest value (it no longer meant "normal").
const Neuro = nonEmpty(
  strict({
    iceScore: z.optional(num(0, 10, { int: true })),
    consciousness: z.optional(oneOf(CONSCIOUSNESS)),
    seizure: z.optional(oneOf(SEIZURE)),
    motorWeakness: z.optional(z.boolean({ error: (iss) => `${show(iss.input)} is not true or false` })),
    cerebralEdema: z.optional(oneOf(CEREBRAL_EDEMA)),
  }),
  'neuro field',
);

const OrganToxicity = nonEmpty(
  strict({
    maxCtcaeGrade: z.optional(num(0, 4, { int: true })),
    transaminitisGrade: z.optional(num(0, 4, { int: true })),
  }),
  'grade',
);

const Labs = nonEmpty(
  strict({
    crpMgL: z.optional(num(0, Infinity)),
    ferritinNgMl: z.optional(num(0, Infinity)),
    il6PgMl: z.optional(num(0, Infinity)),
  }),
  'lab value',
);

/**
 * The end of a patient's monitoring (a discharge, a transfer out of the program's care) at `observedAt`: the
 * stale-feed watch stops, until monitor data or an enrolment observed after it (docs/contract.md). Grading goes on.
 */
const MonitoringEnd = strict({ reason: oneOf(MONITORING_END_REASONS) });

const list = <T extends z.ZodMiniType>(item: T, max: number) =>
  z
    .array(item, { error: (iss) => (isMissing(iss.input) ? 'is required' : `${show(iss.input)} is not a list`) })
    .check(z.maxLength(max, { error: `has more than ${max} entries` }));

/**
 * Ids travel: into HTTP headers, SNS message attributes, file names and log lines. The contract keeps them to
 * characters that are safe in all of these (no spaces, control characters, quotes, '%' or non-ASCII).
 */
export const ID_PATTERNS = {
  messageId: { pattern: /^[A-Za-z0-9._:~@/+=-]{1,128}$/, text: '1-128 characters of A-Z a-z 0-9 . _ : ~ @ / + = -' },
  patientId: { pattern: /^[A-Za-z0-9._:-]{1,64}$/, text: '1-64 characters of A-Z a-z 0-9 . _ : -' },
  deviceId: { pattern: /^[A-Za-z0-9._:-]{1,64}$/, text: '1-64 characters of A-Z a-z 0-9 . _ : -' },
} as const;

function id(kind: keyof typeof ID_PATTERNS) {
  const { pattern, text: allowed } = ID_PATTERNS[kind];
  return z
    .string({ error: (iss) => (isMissing(iss.input) ? 'is required' : `${show(iss.input)} is not a string`) })
    .check(z.regex(pattern, { error: (iss) => `${show(iss.input)} is not ${allowed}` }));
}

export const DeviceMessage = strict(
  {
    messageId: id('messageId'),
    patientId: id('patientId'),
    observedAt: timestamp(),
    source: strict({
      deviceId: id('deviceId'),
      kind: oneOf(SOURCE_KINDS),
    }),
    enrolment: z.optional(Enrolment),
    vitals: z.optional(Vitals),
    oxygen: z.optional(Oxygen),
    vasopressors: z.optional(list(Vasopressor, 10)),
    medications: z.optional(list(Medication, 20)),
    neuro: z.optional(Neuro),
    organToxicity: z.optional(OrganToxicity),
    labs: z.optional(Labs),
    monitoringEnd: z.optional(MonitoringEnd),
  },
  'section or field',
)
  .check(
    ifNoIssuesYet(
      (m: Record<string, unknown>) => SECTIONS.some((s) => m[s] !== undefined),
      `has no data section: give at least one of ${SECTIONS.join(', ')}`,
    ),
  )
  // The same in the JSON Schema, which carries no check function: until 2026-12-07 it took a message of no section.
  .register(z.globalRegistry, { anyOf: SECTIONS.map((s) => ({ required: [s] })) });

export type DeviceMessage = z.infer<typeof DeviceMessage>;
export type VitalsSection = z.infer<typeof Vitals>;
export type OxygenSection = z.infer<typeof Oxygen>;
export type VasopressorEntry = z.infer<typeof Vasopressor>;
export type NeuroSection = z.infer<typeof Neuro>;
export type OxygenDevice = (typeof OXYGEN_DEVICES)[number];
export type VasopressorDrug = (typeof VASOPRESSOR_DRUGS)[number];
export type MedicationDrug = (typeof MEDICATION_DRUGS)[number];
export type MonitoringEndReason = (typeof MONITORING_END_REASONS)[number];

export type Validation = { ok: true; message: DeviceMessage } | { ok: false; errors: string[] };

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * After this many messages, validateMessage uses z.compile's parser of the schema: generated from it by zod, it
 * answers a valid message about three times faster with far less garbage, and hands any other to the schema's own
 * parser (so every refusal and its words are the schema's). Not from the first message: generating it takes tens
 * of milliseconds, which a Lambda's cold start or a short `crs replay` would pay for a handful of messages.
 */
const COMPILE_AFTER = 500;
let parsedSoFar = 0;
let compiled: typeof DeviceMessage | undefined;

function parser(): typeof DeviceMessage {
  if (compiled) return compiled;
  if (++parsedSoFar < COMPILE_AFTER) return DeviceMessage;
  compiled = z.compile(DeviceMessage);
  return compiled;
}

/** Validates one parsed JSON value. Never throws; errors read "field.path: problem". */
export function validateMessage(input: unknown): Validation {
  let result: ReturnType<typeof DeviceMessage.safeParse>;
  try {
    result = parser().safeParse(input);
  } catch (err) {
    // No valid message makes the validator throw (the ingest bounds depth and size first): say so, never crash.
    return {
      ok: false,
      errors: [`message: cannot be checked (${(err as Error).name}); send one JSON object as the contract describes`],
    };
  }
  if (result.success) return { ok: true, message: result.data };
  const errors = result.error.issues.map((iss) => {
    const where = formatPath(iss.path);
    return `${where || 'message'}: ${iss.message}`;
  });
  return { ok: false, errors };
}

/**
 * A message as the queue between the ingest and the grading carries it (both backends): validated by the ingest that
 * queued it, which may be of a later release (a deploy or a rollback runs both side by side). Read as validateMessage
 * reads it, except that fields this release does not know are left out and named in `ignored` (`vitals.etco2MmHg`,
 * `vasopressors[0].line`; a section they leave empty goes too, and so does a part of one, with the section it
 * leaves empty): graded with what it knows, as a message without them, not refused and dead-lettered (until
 * 2026-12-07 a field a later release added held its patient's messages 3 times and dead-lettered the message, its
 * page lost until a redrive). Any other problem refuses it as validateMessage does, with its errors; so does a
 * message with nothing this release reads.
 */
export function validateQueuedMessage(input: unknown): Validation & { ignored?: string[] } {
  const v = validateMessage(input);
  if (v.ok) return v;
  const issues = DeviceMessage.safeParse(input).error?.issues ?? [];
  if (issues.length === 0 || issues.some((i) => i.code !== 'unrecognized_keys')) return v;
  const copy = JSON.parse(JSON.stringify(input)) as Record<string, unknown>;
  const ignored: string[] = [];
  for (const issue of issues) {
    const keys = (issue as { keys: string[] }).keys;
    // The objects from the message down to the one with the unknown keys.
    const chain: Record<PropertyKey, unknown>[] = [copy];
    for (const p of issue.path) chain.push(chain[chain.length - 1]![p] as Record<PropertyKey, unknown>);
    const object = chain[chain.length - 1]!;
    for (const k of keys) {
      delete object[k];
      ignored.push(formatPath([...issue.path, k]));
    }
    // An object they leave empty goes, and one that leaves empty, up to the section (2026-12-07: a threshold of a
    // later release alone left `enrolment` empty, which refused the message); never a list entry or the message.
    for (let i = issue.path.length; i > 0 && Object.keys(chain[i]!).length === 0; i--) {
      if (Array.isArray(chain[i - 1])) break;
      delete chain[i - 1]![issue.path[i - 1]!];
    }
  }
  const stripped = validateMessage(copy);
  return stripped.ok ? { ...stripped, ignored } : v;
}

/** The contract as JSON Schema (draft 2020-12), generated from the zod schema above. */
export function deviceMessageJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(DeviceMessage, { target: 'draft-2020-12' }),
    $id: 'https://crs-alerting.example/contract/device-message.v1.schema.json',
    title: 'CRS alerting device message, contract v1',
  };
}
