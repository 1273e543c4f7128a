// Any body whatever gets a 4xx, never a 5xx (issue 10): the validator never throws, and both HTTP fronts (the
// embedded server and the AWS ingest function behind the emulator's HTTP front) answer arbitrary and deeply nested
// JSON, and text that is not JSON, with 400/413/415, both alike to the byte (a device is answered the same way by
// either backend); HL7 v2 and FHIR R4, valid and broken, with the same status and the same ACK or OperationOutcome
// (or batch-response Bundle), byte for byte. Ready before traffic: the AWS front answers 503 with Retry-After, never 404, until its routes
// are in place.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { hashToken, issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { HL7_CONTENT_TYPE } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { INGEST_LIMITS, jsonDepth } from '#app/ingest.ts';
import { duplicateKey, pathText } from '#app/json-keys.ts';
import { codingRefused } from '#app/media-type.ts';
import { startHttpFront, type HttpFront, type RouteTarget } from '#hosts/aws-emulator/http-front.ts';
import { DEVICE_ROUTES, frontFor, ingestFunction } from '#test/support/front.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { validateMessage, type DeviceMessage } from '#domain/contract.ts';
import { MINUTE } from '#domain/time.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { timeline } from '#test/support/arbitraries.ts';
import { sameAck } from '#test/support/hl7-ack.ts';
import { msg } from '#test/support/messages.ts';
import { MemoryQueue, MemoryTokenStore, queueDirectory } from '#test/support/port-fakes.ts';
import { fhirAnswerProblems } from '#test/support/fhir-conformance.ts';

const TOKEN = 'hostile-test-token-of-at-least-32-chars';
/** Device tokens by kind: an EHR may send everything, a monitor only vitals, oxygen and where the patient is. */
const DEVICES = {
  ehr: 'crs_hostile-ehr-token-0123456789abcdefghijklmn',
  monitor: 'crs_hostile-monitor-token-0123456789abcdefghij',
} as const;
const NOW = Date.parse('2026-01-10T09:00:00Z');

/** A value nested `depth` deep, as text: arrays, objects, or both. */
const nested = (depth: number, kind: 'array' | 'object' | 'mixed') => {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const array = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    open += array ? '[' : '{"k":';
    close = (array ? ']' : '}') + close;
  }
  return `${open}1${close}`;
};

/** Bodies a hostile or broken gateway might send: any JSON, deep JSON, JSON inside a message, and non-JSON. */
const bodies = fc.oneof(
  fc.json({ depthSize: 'large' }),
  fc
    .jsonValue()
    .map((v) =>
      JSON.stringify({ ...JSON.parse(JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80 } }))), vitals: v }),
    ),
  fc.jsonValue().map((v) => JSON.stringify([v, v])),
  fc
    .record({
      depth: fc.integer({ min: 1, max: 40_000 }),
      kind: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
    })
    .map(({ depth, kind }) => nested(depth, kind)),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '',
    '[',
    '{"messageId":',
    '\u0000',
    '"\\ud800"',
    '1e400',
    '[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]',
  ),
);

/** A valid message (or a batch of copies) with one to three fields set to something else, or added. */
const FIELDS = [
  'messageId',
  'patientId',
  'observedAt',
  'source',
  'vitals',
  'enrolment',
  'oxygen',
  'vasopressors',
  'medications',
  'neuro',
  'labs',
  'organToxicity',
  'extra',
];
const nearValid = fc
  .array(
    fc.record({
      field: fc.constantFrom(...FIELDS),
      sub: fc.option(
        fc.constantFrom(
          'temperatureC',
          'heartRate',
          'systolicBP',
          'spo2',
          'deviceId',
          'kind',
          'iceScore',
          'device',
          'fio2',
        ),
      ),
      value: fc.oneof(fc.jsonValue(), fc.constantFrom(37.5, -1, 1e9, 'x', null, '2026-13-40T00:00:00Z')),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .chain((edits) =>
    fc.integer({ min: 1, max: 3 }).map((copies) => {
      const m = JSON.parse(JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37 } }))) as Record<
        string,
        unknown
      >;
      for (const e of edits) {
        const section = m[e.field];
        if (e.sub && section !== null && typeof section === 'object')
          (section as Record<string, unknown>)[e.sub] = e.value;
        else m[e.field] = e.value;
      }
      return copies === 1 ? JSON.stringify(m) : JSON.stringify(Array.from({ length: copies }, () => m));
    }),
  );

// ------------------------------------------------------------------------------------------------------------
// HL7 v2 and FHIR bodies: valid ones from the encoders (a random message, its times before the servers' clock),
// and the same with parts dropped, doubled or turned to junk, a wrong unit or code, another message type.

/** A short course's messages, observed in the 150 minutes up to NOW (never after it: valid means accepted). */
const message = (patientId: string, maxLength = 1) =>
  timeline(patientId, maxLength).map((ms) =>
    ms.map((m) => ({ ...m, observedAt: new Date(Date.parse(m.observedAt) - 60 * MINUTE).toISOString() })),
  );

const JUNK = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'|^~\\&\r\nA1.-+ x'), maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', 'abc', '-1', '1e400', 'NaN', '\\E\\', '20261340', '999999^MDC_NOTHING^MDC', 'ADT^A01'),
);
const HL7_UNITS = [
  '268192^MDC_DIM_DEGC^MDC',
  '266560^MDC_DIM_FAHR^MDC',
  '264864^MDC_DIM_BEAT_PER_MIN^MDC',
  '262688^MDC_DIM_PERCENT^MDC',
  '266016^MDC_DIM_MMHG^MDC',
  '266048^MDC_DIM_KILO_PASCAL^MDC',
  '[degF]^^UCUM',
  'Cel^^UCUM',
  '%^^UCUM',
  '1^^UCUM',
  'L/min^^UCUM',
  'mm[Hg]^^UCUM',
  'kPa^^UCUM',
  'mg^^UCUM',
  '^MDC_DIM_FAHR^MDC',
  '',
  'junk',
];
const HL7_CODES = [
  '150344^MDC_TEMP^MDC',
  '147842^MDC_ECG_HEART_RATE^MDC',
  '150456^MDC_PULS_OXIM_SAT_O2^MDC',
  '150021^MDC_PRESS_BLD_NONINV_SYS^MDC',
  '150023^MDC_PRESS_BLD_NONINV_MEAN^MDC',
  '8310-5^Body temperature^LN',
  '8867-4^Heart rate^LN',
  '3150-0^Inhaled oxygen concentration^LN',
  '999999^MDC_NOTHING^MDC',
  '^MDC_TEMP^MDC',
  '150344^^MDC',
  'X',
];

/** One change to an ER7 text; indexes are taken modulo what the message has. */
const hl7Edit = fc.oneof(
  fc.record({ op: fc.constantFrom('drop-segment' as const, 'duplicate-segment' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('junk-segment' as const), at: fc.nat(), junk: JUNK }),
  fc.record({
    op: fc.constantFrom('drop-field' as const, 'duplicate-field' as const),
    at: fc.nat(),
    field: fc.nat(),
  }),
  fc.record({ op: fc.constant('junk-field' as const), at: fc.nat(), field: fc.nat(), junk: JUNK }),
  fc.record({ op: fc.constant('unit' as const), at: fc.nat(), to: fc.constantFrom(...HL7_UNITS) }),
  fc.record({ op: fc.constant('code' as const), at: fc.nat(), to: fc.constantFrom(...HL7_CODES) }),
  // OBX-11: a status of HL7 table 0085, none, or one outside it (refused at OBX-11 since 2026-12-06).
  fc.record({
    op: fc.constant('status' as const),
    at: fc.nat(),
    to: fc.constantFrom('F', 'C', 'X', 'W', '', 'Z', 'z'),
  }),
  fc.record({
    op: fc.constant('msh-9' as const),
    to: fc.constantFrom(
      'ADT^A01^ADT_A01',
      'ORU^R30^ORU_R30',
      'ORM^O01',
      'ACK^R01^ACK',
      'ORU',
      'oru^r01',
      '',
      'QRY^Q01',
    ),
  }),
  fc.record({ op: fc.constant('drop-pid' as const) }),
  fc.record({ op: fc.constant('line-ends' as const), to: fc.constantFrom('\n', '\r\n', '\n\r', '') }),
);
type Hl7Edit = typeof hl7Edit extends fc.Arbitrary<infer E> ? E : never;

function editHl7(text: string, edits: Hl7Edit[]): string {
  let segments = text.split('\r');
  let sep = '\r';
  const pick = (n: number) => n % segments.length;
  const obx = (n: number) => {
    const at = segments.flatMap((s, i) => (s.startsWith('OBX|') ? [i] : []));
    return at.length > 0 ? at[n % at.length]! : undefined;
  };
  const setField = (i: number, field: number, value: string) => {
    const fields = segments[i]!.split('|');
    while (fields.length <= field) fields.push('');
    fields[field] = value;
    segments[i] = fields.join('|');
  };
  for (const e of edits) {
    if (segments.length === 0) segments = [''];
    switch (e.op) {
      case 'drop-segment':
        segments.splice(pick(e.at), 1);
        break;
      case 'duplicate-segment':
        segments.splice(pick(e.at), 0, segments[pick(e.at)]!);
        break;
      case 'junk-segment':
        segments[pick(e.at)] = e.junk;
        break;
      case 'drop-field':
      case 'duplicate-field':
      case 'junk-field': {
        const i = pick(e.at);
        const fields = segments[i]!.split('|');
        const f = 1 + (e.field % Math.max(1, fields.length - 1)); // never the segment's name
        if (e.op === 'drop-field') fields.splice(f, 1);
        else if (e.op === 'duplicate-field') fields.splice(f, 0, fields[f] ?? '');
        else if (e.op === 'junk-field') fields[f] = e.junk;
        segments[i] = fields.join('|');
        break;
      }
      case 'unit':
      case 'code':
      case 'status': {
        const i = obx(e.at);
        if (i !== undefined) setField(i, { unit: 6, code: 3, status: 11 }[e.op], e.to);
        break;
      }
      case 'msh-9': {
        const i = segments.findIndex((s) => s.startsWith('MSH|'));
        if (i >= 0) setField(i, 8, e.to); // MSH-1 is the separator itself: MSH-9 is the 8th after the name
        break;
      }
      case 'drop-pid':
        segments = segments.filter((s) => !s.startsWith('PID|'));
        break;
      case 'line-ends':
        sep = e.to;
        break;
    }
  }
  return segments.join(sep);
}

/** A message with vitals or oxygen, as a monitor gateway writes it (PCD-01). */
const hl7Message = fc
  .constantFrom('P1', 'P2', 'HL7-3')
  .chain((patientId) => message(patientId))
  .map(([m]) => m!)
  // What HL7 v2 can say: vitals or oxygen (oxygen for comfort has no HL7 code, and alone writes no message).
  .filter((m) => toPcd01(m) !== undefined);

/** The last message of a course as FHIR (one encoder over the course: "all vasopressors stopped" can be written). */
function fhirBundle(ms: DeviceMessage[]): Bundle | undefined {
  const encoder = new FhirEncoder();
  let last: Bundle | undefined;
  try {
    for (const m of ms) last = encoder.bundle(m);
  } catch {
    return undefined; // "no vasopressor" with none infusing before: not writable as FHIR
  }
  return last;
}
const fhirCourse = fc
  .constantFrom('P1', 'P2', 'FHIR-3')
  .chain((patientId) => message(patientId, 2))
  .filter((ms) => fhirBundle(ms) !== undefined);

/** Paths to every value inside a JSON value (the root excluded). */
function jsonPaths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...at, k], ...jsonPaths((v as Record<string | number, unknown>)[k], [...at, k])]);
}
const parentOf = (root: unknown, path: (string | number)[]) =>
  path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root) as Record<
    string | number,
    unknown
  >;

/** One change to a FHIR body; indexes are taken modulo what the body has. */
const fhirEdit = fc.oneof(
  fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('retype' as const),
    at: fc.nat(),
    to: fc.oneof(
      fc.constantFrom<unknown>(
        null,
        0,
        -1,
        1e9,
        '',
        'x',
        true,
        [],
        {},
        ['x'],
        { value: 'x' },
        'constructor',
        '__proto__',
      ),
      // Names that plain objects inherit, as JSON gives them: own properties, not functions.
      fc
        .constantFrom('{"toString":"x","valueOf":"x"}', '{"__proto__":{"code":"x"}}', '{"constructor":1}')
        .map((t) => JSON.parse(t)),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  }),
  fc.record({
    op: fc.constant('resource-type' as const),
    at: fc.nat(),
    to: fc.constantFrom<unknown>('Patient', 'Basic', 'Observationx', 'Bundle', 'observation', '', 7, null),
  }),
  fc.record({
    op: fc.constant('unit' as const),
    at: fc.nat(),
    to: fc.constantFrom('[degF]', 'Cel', 'kPa', 'mm[Hg]', '%', '1', '/min', 'mg', 'g', '[lb_av]', 'ug/min', 'x', ''),
  }),
  fc.record({
    op: fc.constant('code' as const),
    at: fc.nat(),
    to: fc.constantFrom(
      '8310-5',
      '8867-4',
      '85354-9',
      '59408-5',
      '29463-7',
      '1988-5',
      '7512',
      'icans-seizure',
      'x',
      '',
    ),
  }),
  fc.record({
    op: fc.constant('empty' as const),
    how: fc.constantFrom('no-entry', 'entry-[]', 'entry-{}', 'entry-[{}]'),
  }),
  fc.record({
    op: fc.constant('bundle-type' as const),
    to: fc.constantFrom<unknown>('batch', 'collection', 'transaction', 'document', 'searchset', 'x', null),
  }),
);
type FhirEdit = typeof fhirEdit extends fc.Arbitrary<infer E> ? E : never;

function editFhir(body: unknown, edits: FhirEdit[]): unknown {
  const root = structuredClone(body) as Record<string, unknown>;
  const nth = (paths: (string | number)[][], n: number) => (paths.length > 0 ? paths[n % paths.length] : undefined);
  const where = (key: string) => jsonPaths(root).filter((p) => p[p.length - 1] === key);
  for (const e of edits) {
    switch (e.op) {
      case 'remove':
      case 'retype': {
        const path = nth(jsonPaths(root), e.at);
        if (!path) break;
        const parent = parentOf(root, path);
        const key = path[path.length - 1]!;
        if (e.op === 'retype') parent[key] = structuredClone(e.to);
        else if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      }
      case 'resource-type':
      case 'unit':
      case 'code': {
        const key = e.op === 'resource-type' ? 'resourceType' : e.op;
        const path = nth(where(key), e.at);
        if (path) parentOf(root, path)[key] = e.to;
        else if (e.op === 'resource-type') root.resourceType = e.to;
        break;
      }
      case 'empty':
        if (e.how === 'no-entry') delete root.entry;
        else root.entry = e.how === 'entry-[]' ? [] : e.how === 'entry-{}' ? {} : [{}];
        break;
      case 'bundle-type':
        root.type = e.to;
        break;
    }
  }
  return root;
}

/** How the body goes out: as JSON, or text that is not (cut short, with junk after, or instead). */
const fhirText = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ as: 'json' as const }) },
  { weight: 1, arbitrary: fc.record({ as: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ as: fc.constant('trailing' as const), junk: JUNK }) },
  { weight: 1, arbitrary: fc.record({ as: fc.constant('instead' as const), junk: JUNK }) },
);
type FhirText = typeof fhirText extends fc.Arbitrary<infer T> ? T : never;
const writeFhir = (v: unknown, t: FhirText) => {
  const text = JSON.stringify(v);
  return t.as === 'json'
    ? text
    : t.as === 'cut'
      ? text.slice(0, t.at % text.length)
      : t.as === 'trailing'
        ? `${text}${t.junk}`
        : t.junk;
};

/** What a body is sent as: mostly right, sometimes not (none at all included). */
/** A property over answers proves something only if some bodies were taken (202) and some refused (4xx). */
function expectAcceptedAndRefused(statuses: Set<number>): void {
  const seen = [...statuses].join();
  expect(
    [...statuses].some((s) => s === 202),
    seen,
  ).toBe(true);
  expect(
    [...statuses].some((s) => s >= 400 && s < 500),
    seen,
  ).toBe(true);
}

const contentType = (right: string) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(right) },
    {
      weight: 3,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        '',
        'application/json',
        'application/fhir+json',
        'application/fhir+json; charset=utf-8',
        'APPLICATION/FHIR+JSON',
        'application/fhir+xml',
        HL7_CONTENT_TYPE,
        `${HL7_CONTENT_TYPE}; charset=utf-8`,
        'application/hl7-v2',
        'text/plain',
        'text/json',
        'application/octet-stream',
        'multipart/form-data; boundary=x',
      ),
    },
  );

describe('the validator', () => {
  it('never throws on any JSON value, however deep (30k levels overflowed the stack in its error formatter)', () => {
    for (const kind of ['array', 'object', 'mixed'] as const) {
      expect(validateMessage(JSON.parse(nested(30_000, kind))).ok).toBe(false);
    }
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'large' }), (v) => {
        expect(validateMessage(v).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('measures nesting without parsing, skipping strings and escapes', () => {
    expect(jsonDepth('{"a":[1,{"b":"[[[["}]}', 100)).toBe(3);
    expect(jsonDepth('["\\"[[["]', 100)).toBe(1);
    expect(jsonDepth(nested(30_000, 'array'), INGEST_LIMITS.depth)).toBe(INGEST_LIMITS.depth + 1);
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        const depth = (x: unknown): number =>
          x !== null && typeof x === 'object' ? 1 + Math.max(0, ...Object.values(x as object).map(depth)) : 0;
        expect(jsonDepth(text, 1000)).toBe(depth(v));
      }),
    );
  });
});

describe('a key that appears twice in one object (JSON.parse keeps the last, silently)', () => {
  it('is found by its path, keys compared decoded, strings and escapes skipped', () => {
    expect(duplicateKey('{"vitals":{"heartRate":99,"heartRate":300}}')).toEqual(['vitals', 'heartRate']);
    expect(duplicateKey('{"a\\"b":1,"a\\"b":2}')).toEqual(['a"b']);
    expect(duplicateKey('{"\\u0061":1,"a":2}')).toEqual(['a']);
    expect(duplicateKey('{"a":1,"\\u0041":2,"b\\\\":3,"b\\\\\\\\":4}')).toBeUndefined();
    expect(duplicateKey('{"x":"{\\"a\\":1,\\"a\\":2}","y":["a","a"],"a":{"a":{"a":1}}}')).toBeUndefined();
    expect(duplicateKey('[{"a":1},{"a":1,"b":[1,{},{"c":1,"d":[],"c":2}]}]')).toEqual([1, 'b', 2, 'c']);
    expect(duplicateKey('{"a":{"b":1,"c":2},"d":{"b":1},"e":[{"b":1},{"b":2}]}')).toBeUndefined();
    expect(duplicateKey('{"a":[],"a":{}}')).toEqual(['a']);
    expect(duplicateKey('{ "" : 1 , "" : 2 }')).toEqual(['']);
    expect(pathText([3, 'vitals', 'heart rate', 0, 'x'])).toBe('[3].vitals["heart rate"][0].x');
    // A long key that is no plain name is quoted by its first 40 characters: what the sender sent, bounded.
    expect(pathText(['k '.repeat(21)])).toBe(`["${'k '.repeat(20)}..."]`);
    expect(pathText(['k '.repeat(20)])).toBe(`["${'k '.repeat(20)}"]`);
    // A plain name too (until 2026-12-06 echoed whole, up to the body limit): quoted once cut, never a dotted name.
    expect(pathText(['vitals', 'k'.repeat(41)])).toBe(`vitals["${'k'.repeat(40)}..."]`);
    expect(pathText(['k'.repeat(100_000)])).toBe(`["${'k'.repeat(40)}..."]`);
    expect(pathText(['vitals', 'k'.repeat(40)])).toBe(`vitals.${'k'.repeat(40)}`);
    // Past 16 keys an object's are kept in a Set: a key sent again is found there too, before and after the change.
    const many = Array.from({ length: 20 }, (_, i) => `"k${i}":0`);
    expect(duplicateKey(`{${many.join(',')}}`)).toBeUndefined();
    for (const at of [1, 15, 16, 17, 19])
      expect(duplicateKey(`{${[...many.slice(0, at), '"k0":1', ...many.slice(at)].join(',')}}`), `${at}`).toEqual([
        'k0',
      ]);
    // Any JSON.stringify output has none; the same text with one key sent again, written any way, has one.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(duplicateKey(JSON.stringify(v))).toBeUndefined();
      }),
    );
    const escapedKey = (k: string) =>
      `"${Array.from({ length: k.length }, (_, i) => `\\u${k.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`;
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue(), { minKeys: 1 }),
        fc.nat(),
        fc.boolean(),
        (o, n, escaped) => {
          const entries = Object.entries(o).map(([k, x]) => `${JSON.stringify(k)}:${JSON.stringify(x)}`);
          const key = Object.keys(o)[n % entries.length]!;
          const again = `${escaped ? escapedKey(key) : JSON.stringify(key)}:0`;
          const text = `{"m":[{${[...entries, again].join(',')}}]}`;
          expect(Object.keys(JSON.parse(text).m[0])).toHaveLength(entries.length);
          expect(duplicateKey(text)).toEqual(['m', 0, key]);
        },
      ),
    );
  });
});

describe('both HTTP fronts answer any body with a 4xx', () => {
  let dir: string;
  let embedded: EmbeddedServer;
  let front: HttpFront;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crs-hostile-'));
    embedded = await startEmbeddedServer({
      dataDir: dir,
      config: DEFAULT_CONFIG,
      port: 0,
      localToken: TOKEN,
      pageStream: new PassThrough(),
      log: () => undefined,
      now: () => NOW,
    });
    const tokens = new MemoryTokenStore();
    const issued = issueToken('gw', new Date(NOW));
    await tokens.put({ ...issued.record, hash: hashToken(TOKEN) });
    // The HL7 and FHIR properties send as these devices, known to both backends alike.
    for (const [kind, t] of Object.entries(DEVICES)) {
      const { record } = issueToken(`${kind}-1`, new Date(NOW), { kind: kind as keyof typeof DEVICES });
      for (const store of [tokens, embedded.tokens]) await store.put({ ...record, hash: hashToken(t) });
    }
    // The patients it knows are those it queued, as crs serve knows those of its inbox (an ADT event's bed is taken
    // for a known patient only).
    const queue = new MemoryQueue();
    front = await frontFor(
      'ingest',
      await ingestFunction({ queue, tokens, now: () => NOW, patients: queueDirectory(queue) }),
      DEVICE_ROUTES,
    );
  });
  afterAll(async () => {
    await embedded.close();
    await front.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (base: string, path: string, body: string) =>
    (
      await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      })
    ).status;

  it('30k-deep arrays and objects: 400 on both, single and batch (413 where that is also over the size limit)', async () => {
    for (const base of [embedded.url, front.url]) {
      for (const path of ['/v1/messages', '/v1/messages/batch']) {
        expect(await post(base, path, nested(30_000, 'array')), `${base}${path}`).toBe(400);
        expect(await post(base, path, nested(10_000, 'object')), `${base}${path}`).toBe(400);
        const big = await post(base, path, nested(30_000, 'mixed'));
        expect(path.endsWith('batch') ? big === 400 : big === 413, `${base}${path}: ${big}`).toBe(true);
      }
    }
  });

  it('a compressed body (Content-Encoding gzip): the same 415 naming the coding from both, on every device route', async () => {
    // Until 2026-12-06 the compressed bytes were read as the body: a 400 "not valid JSON" quoting binary (an AR "does
    // not start with an MSH segment"), which told an engine with compression switched on to fix a message that was
    // right. Nothing here inflates a body: one decoder fewer, and no compression bomb to bound.
    const { gzipSync } = await import('node:zlib');
    const message = msg('P-gz', 0, { vitals: { heartRate: 90 } }, 'gz-1');
    const cases: [string, string, string, RegExp][] = [
      [
        '/v1/messages',
        'application/json',
        JSON.stringify(message),
        /"error":"content-encoding \\"gzip\\" is not taken/,
      ],
      [
        '/fhir/r4/Observation',
        'application/fhir+json',
        '{}',
        /"code":"not-supported".*content-encoding \\"gzip\\" is not taken/,
      ],
      ['/v1/hl7v2', HL7_CONTENT_TYPE, toPcd01(message) ?? '', /MSA\|AR\|\|content-encoding "gzip" is not taken/],
    ];
    for (const [path, type, body, said] of cases) {
      const answers = [];
      for (const base of [embedded.url, front.url]) {
        const r = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${DEVICES.ehr}`, 'content-type': type, 'content-encoding': 'gzip' },
          body: gzipSync(body),
        });
        answers.push({ status: r.status, body: sameAck(await r.text()) });
      }
      expect(answers[1], path).toEqual(answers[0]);
      expect(answers[0]!.status, path).toBe(415);
      expect(answers[0]!.body, path).toMatch(said);
    }
    // Codings are a list (RFC 9110), case-insensitive: identity in any case is none; another is named.
    expect(codingRefused(' Identity , IDENTITY ')).toBeUndefined();
    expect(codingRefused('identity, gzip')).toMatch(/^content-encoding "gzip" is not taken/);
    // identity is no coding: taken as before.
    const plain = await fetch(`${embedded.url}/v1/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${DEVICES.ehr}`,
        'content-type': 'application/json',
        'content-encoding': 'identity',
      },
      body: JSON.stringify(message),
    });
    expect(plain.status).toBe(202);
  });

  it('a key sent twice in one object: the same 400 naming its path from both, single, batch and FHIR', async () => {
    // Until 2026-12-06 the last value was taken and graded: a heart rate of 99 then 300 was a tachycardia of 300.
    const twice = (m: unknown) => JSON.stringify(m).replace('"heartRate":99', '"heartRate":99,"heartRate":300');
    const message = twice(msg('P-twice', 0, { vitals: { heartRate: 99 } }, 'twice-1'));
    const other = JSON.stringify(msg('P-twice', 0, { vitals: { heartRate: 98 } }, 'twice-0'));
    const said = 'the key appears twice: which value is meant would be a guess; send it once';
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: { identifier: { value: 'P-twice' } },
      effectiveDateTime: '2026-01-10T08:59:00Z',
      valueQuantity: { value: 99, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    };
    const cases: [string, string, string, unknown][] = [
      ['/v1/messages', 'application/json', message, { errors: [`vitals.heartRate: ${said}`] }],
      [
        '/v1/messages/batch',
        'application/json',
        `[${other},${message}]`,
        { errors: [{ index: 1, errors: [`vitals.heartRate: ${said}`] }], accepted: 0 },
      ],
      // A key that is no element's name: said from the resource's type, with no FHIRPath expression.
      [
        '/fhir/r4/Observation',
        'application/fhir+json',
        '{"resourceType":"Observation","a b":1,"a b":2}',
        {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'structure', diagnostics: `Observation["a b"]: ${said}` }],
        },
      ],
      // A long plain key, bounded as any (until 2026-12-06 echoed whole; in FHIR, as the expression too).
      [
        '/v1/messages',
        'application/json',
        `{"${'k'.repeat(30_000)}":1,"${'k'.repeat(30_000)}":2}`,
        { errors: [`["${'k'.repeat(40)}..."]: ${said}`] },
      ],
      [
        '/fhir/r4/Observation',
        'application/fhir+json',
        `{"resourceType":"Observation","${'k'.repeat(500)}":1,"${'k'.repeat(500)}":2}`,
        {
          resourceType: 'OperationOutcome',
          issue: [
            { severity: 'error', code: 'structure', diagnostics: `Observation["${'k'.repeat(40)}..."]: ${said}` },
          ],
        },
      ],
      // A batch that is no array: named as a single message's, not as a message's index ("a" is none).
      ['/v1/messages/batch', 'application/json', '{"a":1,"a":2}', { errors: [`a: ${said}`] }],
      [
        '/fhir/r4/Observation',
        'application/fhir+json',
        JSON.stringify(observation).replace('"value":99', '"value":99,"value":300'),
        {
          resourceType: 'OperationOutcome',
          issue: [
            {
              severity: 'error',
              code: 'structure',
              diagnostics: `Observation.valueQuantity.value: ${said}`,
              expression: ['Observation.valueQuantity.value'],
            },
          ],
        },
      ],
    ];
    for (const [path, type, body, answer] of cases) {
      const answers = [];
      for (const base of [embedded.url, front.url]) {
        const r = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${DEVICES.ehr}`, 'content-type': type },
          body,
        });
        answers.push({ status: r.status, body: await r.text() });
      }
      expect(answers[1], path).toEqual(answers[0]);
      expect([answers[0]!.status, JSON.parse(answers[0]!.body)], path).toEqual([400, answer]);
    }
  });

  it('the same status and answer from both, for any body and for messages with fields gone wrong', async () => {
    const answer = async (base: string, path: string, body: string) => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      });
      return { status: r.status, body: await r.text() };
    };
    const statuses = new Set<number>();
    const valid = JSON.stringify(msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37 } }, 'same-answer-1'));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(bodies, nearValid),
        fc.constantFrom('/v1/messages', '/v1/messages/batch'),
        async (body, path) => {
          const embeddedAnswer = await answer(embedded.url, path, body);
          expect(await answer(front.url, path, body)).toEqual(embeddedAnswer);
          statuses.add(embeddedAnswer.status);
        },
      ),
      {
        numRuns: 300,
        // A message as sent, alone and in a batch: accepted by both, with the same answer.
        examples: [
          [valid, '/v1/messages'],
          [`[${valid},${valid}]`, '/v1/messages/batch'],
          // A body that is not JSON, and a message with no fields: refused (400) for sure, so the coverage check
          // below does not depend on the random draw.
          ['{"patientId":', '/v1/messages'],
          ['{}', '/v1/messages'],
        ],
      },
    );
    expect([...statuses].sort()).toEqual(expect.arrayContaining([202, 400]));
  });

  /** Who sends: a device of either kind mostly, sometimes no token or one neither backend knows. */
  const sender = fc.oneof(
    { weight: 6, arbitrary: fc.constant('ehr' as const) },
    { weight: 3, arbitrary: fc.constant('monitor' as const) },
    { weight: 1, arbitrary: fc.constantFrom('none' as const, 'unknown' as const) },
  );
  type Sender = typeof sender extends fc.Arbitrary<infer S> ? S : never;

  /**
   * Everything a device reads in an answer. Both servers' clocks are pinned to NOW, so the ACK's MSH-7 compares as it
   * is; its MSH-10 is its own (unique to each ACK since 2026-12-06), the one thing set aside.
   */
  const deviceAnswer = async (base: string, path: string, type: string | undefined, who: Sender, body: string) => {
    const headers: Record<string, string> = {};
    if (who !== 'none')
      headers.authorization = `Bearer ${who === 'unknown' ? TOKEN.replace('hostile', 'unknown') : DEVICES[who]}`;
    if (type !== undefined) headers['content-type'] = type;
    // As bytes: fetch adds no content-type of its own.
    const r = await fetch(`${base}${path}`, { method: 'POST', headers, body: Buffer.from(body, 'utf8') });
    return {
      status: r.status,
      type: r.headers.get('content-type'),
      authenticate: r.headers.get('www-authenticate'),
      body: sameAck(await r.text()),
    };
  };
  const sameFromBoth = async (path: string, type: string | undefined, who: Sender, body: string) => {
    const fromEmbedded = await deviceAnswer(embedded.url, path, type, who, body);
    const fromAws = await deviceAnswer(front.url, path, type, who, body);
    // A refused token is told its backend's command (2026-12-06): the one difference the two answers may have.
    const awsCommand = ' --backend aws --outputs FILE';
    if (who === 'unknown' && fromAws.status === 403) expect(fromAws.body, path).toContain(awsCommand);
    expect({ ...fromAws, body: fromAws.body.replaceAll(awsCommand, '') }, `${path} as ${type}`).toEqual(fromEmbedded);
    // A FHIR answer, whatever was sent, is valid FHIR R4 (test/support/fhir-conformance.ts).
    if (path.startsWith('/fhir/'))
      expect(
        fhirAnswerProblems({ ...fromEmbedded, headers: { 'content-type': fromEmbedded.type ?? undefined } }),
        body.slice(0, 200),
      ).toEqual([]);
    return fromEmbedded.status;
  };

  it('HL7 v2: the same status and ACK from both, for valid ORU^R01 and for broken ones', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        hl7Message,
        fc.array(hl7Edit, { maxLength: 3 }),
        contentType(HL7_CONTENT_TYPE),
        sender,
        async (m, edits, type, who) => {
          const body = editHl7(toPcd01(m)!, edits);
          statuses.add(await sameFromBoth('/v1/hl7v2', type, who, body));
        },
      ),
      {
        numRuns: 200,
        // Valid messages as sent, from each kind of device: accepted by both, with the same ACK.
        examples: [
          [msg('P1', 0, { vitals: { heartRate: 80, temperatureC: 37 } }, 'hl7-same-1'), [], HL7_CONTENT_TYPE, 'ehr'],
          [
            msg('P2', 0, { vitals: { spo2: 91 }, oxygen: { device: 'nasal_cannula', flowLpm: 4 } }, 'hl7-same-2'),
            [],
            HL7_CONTENT_TYPE,
            'monitor',
          ],
          // Sent with no token: refused (401) for sure, so the coverage check below does not depend on the random draw.
          [msg('P3', 0, { vitals: { heartRate: 81 } }, 'hl7-same-3'), [], HL7_CONTENT_TYPE, 'none'],
          // An OBX-11 outside HL7 table 0085: the same AE naming OBX-11 from both.
          [
            msg('P4', 0, { vitals: { heartRate: 82 } }, 'hl7-same-4'),
            [{ op: 'status', at: 0, to: 'Z' }],
            HL7_CONTENT_TYPE,
            'ehr',
          ],
        ],
      },
    );
    expectAcceptedAndRefused(statuses);
  });

  it('FHIR R4: the same status and OperationOutcome or Bundle from both, for valid charting and broken', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fhirCourse,
        fc.constantFrom('transaction', 'batch', 'collection', 'single'),
        fc.nat(),
        fc.array(fhirEdit, { maxLength: 3 }),
        fhirText,
        contentType('application/fhir+json'),
        sender,
        // Now and then a route other than the body's own (Patient: a resource type not taken).
        fc.oneof(
          { weight: 9, arbitrary: fc.constant(null) },
          {
            weight: 1,
            arbitrary: fc.constantFrom('/fhir/r4', '/fhir/r4/Bundle', '/fhir/r4/Observation', '/fhir/r4/Patient'),
          },
        ),
        async (course, shape, pick, edits, text, type, who, otherPath) => {
          const bundle = fhirBundle(course)!;
          const entries = bundle.entry!;
          const single = shape === 'single' ? (entries[pick % entries.length]!.resource as Resource) : undefined;
          const sent = single ?? { ...bundle, type: shape };
          const path = otherPath ?? (single ? `/fhir/r4/${single.resourceType}` : '/fhir/r4/Bundle');
          statuses.add(await sameFromBoth(path, type, who, writeFhir(editFhir(sent, edits), text)));
        },
      ),
      {
        numRuns: 200,
        // Valid charting as sent, as a transaction and as a batch: accepted by both, with the same answer.
        examples: [
          [
            [msg('P1', 0, { neuro: { iceScore: 7 } }, 'fhir-same-1')],
            'transaction',
            0,
            [],
            { as: 'json' },
            'application/fhir+json',
            'ehr',
            null,
          ],
          [
            [
              msg(
                'P2',
                0,
                { vitals: { heartRate: 120 }, medications: [{ drug: 'tocilizumab', doseMg: 400 }] },
                'fhir-same-2',
              ),
            ],
            'batch',
            0,
            [],
            { as: 'json' },
            'application/fhir+json',
            'ehr',
            null,
          ],
          [
            [msg('P1', 0, { vitals: { spo2: 93 } }, 'fhir-same-3')],
            'single',
            0,
            [],
            { as: 'json' },
            'application/fhir+json',
            'monitor',
            null,
          ],
          // Sent with no token: refused (401) for sure, so the coverage check below does not depend on the random draw.
          [
            [msg('P3', 0, { vitals: { heartRate: 81 } }, 'fhir-same-4')],
            'transaction',
            0,
            [],
            { as: 'json' },
            'application/fhir+json',
            'none',
            null,
          ],
        ],
      },
    );
    expectAcceptedAndRefused(statuses);
  });

  it("an Encounter of a patient neither server knows: the same 202 saying nothing was taken; once the patient's data came, taken by both", async () => {
    const encounter = JSON.stringify({
      resourceType: 'Encounter',
      id: 'enc-hostile-1',
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject: { reference: 'Patient/P-ENC-1' },
      period: { start: '2026-01-10T07:00:00Z' },
      location: [
        {
          location: { display: 'H5-07' },
          physicalType: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'bd' }],
          },
        },
      ],
    });
    const FHIR = 'application/fhir+json';
    const first = await deviceAnswer(embedded.url, '/fhir/r4/Encounter', FHIR, 'ehr', encounter);
    expect(await deviceAnswer(front.url, '/fhir/r4/Encounter', FHIR, 'ehr', encounter)).toEqual(first);
    expect([first.status, (JSON.parse(first.body) as OperationOutcome).issue.at(-1)]).toEqual([
      202,
      {
        severity: 'information',
        code: 'informational',
        diagnostics: 'Encounter: a patient this system does not monitor (no data yet): nothing taken',
        expression: ['Encounter'],
      },
    ]);
    const hr = JSON.stringify({
      resourceType: 'Observation',
      id: 'obs-hostile-enc-1',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: { reference: 'Patient/P-ENC-1' },
      effectiveDateTime: '2026-01-10T08:00:00Z',
      valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    });
    expect(await sameFromBoth('/fhir/r4/Observation', FHIR, 'ehr', hr)).toBe(202);
    const again = await deviceAnswer(embedded.url, '/fhir/r4/Encounter', FHIR, 'ehr', encounter);
    expect(await deviceAnswer(front.url, '/fhir/r4/Encounter', FHIR, 'ehr', encounter)).toEqual(again);
    expect([again.status, again.body]).toEqual([
      202,
      expect.stringContaining('accepted 1 message(s): fhir:Encounter/enc-hostile-1'),
    ]);
  });

  it('FHIR parts of the wrong shape: the same 422 naming the part from both, never a 500 (found by the property)', async () => {
    // These crashed the translator: each host then answered its own 500 ({"error":"internal error"} from the
    // embedded server, API Gateway's {"message":"Internal Server Error"}), a device being told different things.
    const [procedure, _weight, encounter, heartRate, oxygen, pump] = new FhirEncoder().resources(
      msg(
        'P1',
        0,
        {
          enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', weightKg: 70, bed: 'B-1' },
          vitals: { heartRate: 90 },
          oxygen: { device: 'nasal_cannula', flowLpm: 4 },
          vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
        },
        'shape-1',
      ),
    ) as Record<string, any>[];
    expect(procedure!.resourceType).toBe('Procedure');
    const hostileUnit = JSON.parse('{"toString":"x","valueOf":"x"}');
    const cases: [Record<string, any>, (r: Record<string, any>) => void, string][] = [
      [encounter!, (r) => void (r.location = [null]), 'Encounter.location[0]'],
      [encounter!, (r) => void (r.location = {}), 'Encounter.location'],
      [oxygen!, (r) => void (r.component = [null]), 'Observation.component[0]'],
      [oxygen!, (r) => void (r.component = 'x'), 'Observation.component'],
      [heartRate!, (r) => void (r.valueQuantity.code = hostileUnit), 'Observation.valueQuantity.code'],
      [pump!, (r) => void (r.dosage.rateQuantity.code = hostileUnit), 'MedicationAdministration.dosage.rateQuantity'],
      // A status that is no R4 code (taken as read until 2026-12-06: a "retracted" value graded, a bed moved).
      [heartRate!, (r) => void (r.status = 'retracted'), 'Observation.status'],
      [heartRate!, (r) => void (r.status = hostileUnit), 'Observation.status'],
      [encounter!, (r) => void (r.status = 'active'), 'Encounter.status'],
    ];
    for (const [resource, edit, expression] of cases) {
      const sent = structuredClone(resource);
      edit(sent);
      const body = JSON.stringify(sent);
      expect(await sameFromBoth(`/fhir/r4/${sent.resourceType}`, 'application/fhir+json', 'ehr', body), body).toBe(422);
      const answer = await deviceAnswer(
        embedded.url,
        `/fhir/r4/${sent.resourceType}`,
        'application/fhir+json',
        'ehr',
        body,
      );
      expect(answer.body, body).toContain(`"expression":["${expression}`);
    }
  });

  it('a batch of messages with hundreds of unknown fields each: the same 400 from both, 5 fields named a message', async () => {
    // 800 unknown fields in each of 100 messages (720 KB) were answered with 14 MB, each field named with the list of
    // the allowed ones: past Lambda's 6 MB response, so API Gateway's 500 on AWS.
    const base = msg('P1', 0, { vitals: { heartRate: 80 } }, 'fields');
    const extra = Object.fromEntries(Array.from({ length: 800 }, (_, k) => [`k${k}`, 1]));
    const batch = Array.from({ length: 100 }, (_, i) => ({ ...base, messageId: `fields-${i}`, ...extra }));
    const answer = await deviceAnswer(
      embedded.url,
      '/v1/messages/batch',
      'application/json',
      'ehr',
      JSON.stringify(batch),
    );
    expect(await sameFromBoth('/v1/messages/batch', 'application/json', 'ehr', JSON.stringify(batch))).toBe(400);
    const { errors } = JSON.parse(answer.body) as { errors: { index: number; errors: string[] }[] };
    expect(errors).toHaveLength(100);
    for (const e of errors) {
      expect(e.errors).toHaveLength(1);
      expect(e.errors[0]).toMatch(
        /^message: unknown section or field "k0"; allowed: .*"k4"; allowed: [^"]*; and 795 more unknown \(not named\)$/,
      );
    }
  });

  it('FHIR with thousands of bad parts: the same 422 from both, the first 20 problems named and the rest counted', async () => {
    // 100,000 components that are not objects (200 KB) were answered with 12 MB, one issue each: past Lambda's 6 MB
    // response, so API Gateway's 500 on AWS; 500,000 (1 MB) overflowed the stack, and both answered 503, which tells
    // the sender to send the same body again, for ever.
    const oxygen = new FhirEncoder()
      .resources(msg('P1', 0, { oxygen: { device: 'nasal_cannula', flowLpm: 4 } }, 'many-1'))
      .find((r) => 'component' in r) as Record<string, any>;
    expect(oxygen.resourceType).toBe('Observation');
    for (const parts of [100_000, 500_000]) {
      const body = JSON.stringify({ ...oxygen, component: new Array(parts).fill(1) });
      expect(await sameFromBoth('/fhir/r4/Observation', 'application/fhir+json', 'ehr', body), `${parts}`).toBe(422);
      const answer = await deviceAnswer(embedded.url, '/fhir/r4/Observation', 'application/fhir+json', 'ehr', body);
      const issues = (JSON.parse(answer.body) as { issue: { diagnostics: string; expression?: string[] }[] }).issue;
      expect(issues.slice(0, 20).map((i) => i.expression?.[0])).toEqual(
        Array.from({ length: 20 }, (_, i) => `Observation.component[${i}]`),
      );
      expect(issues.slice(20)).toEqual([
        expect.objectContaining({
          expression: ['Observation'],
          diagnostics: `and ${parts - 20} more problems in this resource, not named (the first 20 are)`,
        }),
      ]);
    }
    // A batch: each entry's own problems are bounded alike, and its good entry is still taken.
    const bad = (id: string) => ({ resource: { ...oxygen, id, component: new Array(50_000).fill(1) } });
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ resource: { ...oxygen, id: 'many-2' } }, bad('many-3'), bad('many-4')],
    };
    const answer = await deviceAnswer(
      front.url,
      '/fhir/r4/Bundle',
      'application/fhir+json',
      'ehr',
      JSON.stringify(batch),
    );
    expect(answer.status).toBe(200);
    const entries = (JSON.parse(answer.body) as Bundle).entry!.map((e) => [
      e.response!.status,
      e.response!.outcome?.issue?.length ?? 0,
    ]);
    expect(entries).toEqual([
      ['202 Accepted', 0],
      ['422 Unprocessable Entity', 21],
      ['422 Unprocessable Entity', 21],
    ]);
  });

  it('FHIR nested 100,000 deep where a problem is named (Bundle.type, a comparator): the same 400 from both', async () => {
    // The translator quotes what it refuses (JSON.stringify, String): that overflowed the stack, and both hosts
    // answered 503, which tells the sender to send the same body again, for ever.
    const oxygen = new FhirEncoder()
      .resources(msg('P1', 0, { oxygen: { device: 'nasal_cannula', flowLpm: 4 } }, 'deep-1'))
      .find((r) => 'component' in r) as Record<string, any>;
    const deep = nested(100_000, 'array');
    const bodies: [string, string][] = [
      ['/fhir/r4/Bundle', `{"resourceType":"Bundle","type":${deep}}`],
      [
        '/fhir/r4/Observation',
        JSON.stringify({ ...oxygen, valueQuantity: { value: 4, comparator: 0 } }).replace(
          '"comparator":0',
          `"comparator":${deep}`,
        ),
      ],
      ['/fhir/r4/Observation', JSON.stringify({ ...oxygen, note: 0 }).replace('"note":0', `"note":${deep}`)],
    ];
    for (const [path, body] of bodies) {
      expect(await sameFromBoth(path, 'application/fhir+json', 'ehr', body), body.slice(0, 100)).toBe(400);
      const answer = await deviceAnswer(embedded.url, path, 'application/fhir+json', 'ehr', body);
      expect(answer.body).toContain('nests arrays and objects more than 64 deep');
    }
    // As deep as FHIR goes (a complex extension on a component's coding) is read as before.
    const ext = {
      extension: [{ url: 'u', extension: [{ url: 'v', valueCodeableConcept: { coding: [{ code: 'c' }] } }] }],
    };
    const charted = {
      ...oxygen,
      component: oxygen.component.map((c: any) => ({
        ...c,
        code: { ...c.code, coding: c.code.coding.map((x: any) => ({ ...x, ...ext })) },
      })),
    };
    expect(await sameFromBoth('/fhir/r4/Observation', 'application/fhir+json', 'ehr', JSON.stringify(charted))).toBe(
      202,
    );
  });

  it('arbitrary bodies: a 4xx (or 202 for a valid message), never a 5xx, on both', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, fc.constantFrom('/v1/messages', '/v1/messages/batch'), async (body, path) => {
        for (const base of [embedded.url, front.url]) {
          const status = await post(base, path, body);
          expect(status === 202 || (status >= 400 && status <= 499), `${status} from ${base}${path}`).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('ready before traffic', () => {
  it('the AWS front answers 503 with Retry-After until its routes are in place, never 404 for a known route', async () => {
    const routes: Record<string, RouteTarget> = {};
    const front = await startHttpFront({ port: 0, host: '127.0.0.1', routes, log: () => undefined });
    try {
      const early = await fetch(`${front.url}/v1/messages`, { method: 'POST', body: '{}' });
      expect(early.status).toBe(503);
      expect(early.headers.get('retry-after')).toBe('1');
      routes['POST /v1/messages'] = {
        name: 'ingest',
        maxConcurrency: 1,
        invoke: async () => ({ statusCode: 202, body: '{}' }),
      };
      front.open();
      expect((await fetch(`${front.url}/v1/messages`, { method: 'POST', body: '{}' })).status).toBe(202);
      expect((await fetch(`${front.url}/nowhere`, { method: 'POST', body: '{}' })).status).toBe(404);
    } finally {
      await front.close();
    }
  });
});
