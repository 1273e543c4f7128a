// The device message contract v1 as the devices' document states it (message-contract.md), sentence by sentence,
// where no other test would fail if it were implemented otherwise (audit of 2026-12-07). Its values are written out
// here as the document writes them, never taken from the code's vocabulary: a value dropped from the code must fail.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { handleIngest } from '#app/ingest.ts';
import { validateMessage } from '#domain/contract.ts';
import { REPO, replayMain } from '#test/support/cli.ts';
import { ingestFakes } from '#test/support/port-fakes.ts';

const base = {
  messageId: 'gw-icu4-000123',
  patientId: 'P-0042',
  observedAt: '2026-11-26T10:00:00Z',
  source: { deviceId: 'mon-icu4-12', kind: 'monitor' },
};
const errors = (value: unknown) => {
  const r = validateMessage(value);
  return r.ok ? [] : r.errors;
};

describe('every value the contract names is accepted, with every field it names', () => {
  it.each([
    ['vasopressors[].drug', ['norepinephrine', 'epinephrine', 'phenylephrine', 'dopamine', 'vasopressin']],
    ['vasopressors[].unit', ['mcg/min', 'mcg/kg/min', 'units/min']],
    [
      'medications[].drug',
      [
        'tocilizumab',
        'siltuximab',
        'anakinra',
        'dexamethasone',
        'methylprednisolone',
        'hydrocortisone',
        'acetaminophen',
        'ibuprofen',
      ],
    ],
    ['neuro.consciousness', ['alert', 'awakens_spontaneously', 'awakens_to_voice', 'awakens_to_touch', 'unarousable']],
    ['neuro.seizure', ['none', 'self_limited', 'prolonged']],
    ['neuro.cerebralEdema', ['none', 'focal', 'diffuse']],
    ['source.kind', ['monitor', 'pump', 'ventilator', 'ehr', 'manual']],
    ['enrolment.therapy', ['car-t', 'bispecific']],
  ] as const)('%s', (field, values) => {
    const message = (value: string): object => {
      switch (field) {
        case 'vasopressors[].drug':
          return { ...base, vasopressors: [{ drug: value, dose: 0.08, unit: 'mcg/kg/min' }] };
        case 'vasopressors[].unit':
          return { ...base, vasopressors: [{ drug: 'vasopressin', dose: 0.04, unit: value }] };
        case 'medications[].drug':
          return { ...base, medications: [{ drug: value, doseMg: 560 }] };
        case 'source.kind':
          return { ...base, source: { deviceId: 'dev-1', kind: value }, vitals: { heartRate: 80 } };
        case 'enrolment.therapy':
          return { ...base, enrolment: { therapy: value } };
        default:
          return { ...base, neuro: { [field.slice('neuro.'.length)]: value } };
      }
    };
    for (const value of values) expect(errors(message(value)), value).toEqual([]);
  });
});

describe('the error names the field and the problem', () => {
  it('a number past the range of JSON numbers is said to be one, never quoted as null (JSON.parse reads it as Infinity)', () => {
    // Until 2026-12-07: `vitals.heartRate: null is not a number (allowed 0-350)` for a heart rate sent as 1e400.
    const sent = (section: string) =>
      JSON.parse(`{"messageId":"m","patientId":"P","observedAt":"2026-11-26T10:00:00Z",
      "source":{"deviceId":"d","kind":"monitor"},${section}}`) as unknown;
    expect(errors(sent('"vitals":{"heartRate":1e400}'))).toEqual([
      'vitals.heartRate: is a number too large to read (beyond ±1.8e308): allowed 0-350',
    ]);
    expect(errors(sent('"vasopressors":[{"drug":"dopamine","dose":-1e400,"unit":"mcg/min"}]'))).toEqual([
      'vasopressors[0].dose: is a number too large to read (beyond ±1.8e308): allowed 0 or more',
    ]);
  });
});

describe('ids', () => {
  it('patientId and source.deviceId refuse each character only a messageId may hold (~ @ / + =)', () => {
    for (const c of ['~', '@', '/', '+', '=']) {
      expect(errors({ ...base, messageId: `m${c}1`, vitals: { heartRate: 80 } }), c).toEqual([]);
      expect(errors({ ...base, patientId: `P${c}1`, vitals: { heartRate: 80 } }), c).toEqual([
        `patientId: "P${c}1" is not 1-64 characters of A-Z a-z 0-9 . _ : -`,
      ]);
      expect(errors({ ...base, source: { deviceId: `d${c}1`, kind: 'monitor' }, vitals: { heartRate: 80 } })).toEqual([
        `source.deviceId: "d${c}1" is not 1-64 characters of A-Z a-z 0-9 . _ : -`,
      ]);
    }
  });
});

const line = (id: string, observedAt: string, sections: object) =>
  JSON.stringify({
    messageId: id,
    patientId: 'T-1',
    observedAt,
    source: { deviceId: 'mon-1', kind: 'monitor' },
    ...sections,
  });

describe('crs replay writes what the contract says', () => {
  it('an assessment is at the patient clock (the latest observedAt), also for a message that arrives late', async () => {
    const input = [
      line('a', '2026-11-26T10:00:00Z', { vitals: { heartRate: 90 } }),
      line('late', '2026-11-26T09:00:00Z', { vitals: { heartRate: 95 } }),
    ].join('\n');
    const { status, events } = await replayMain(['-'], input);
    expect(status).toBe(0);
    expect(events.map((e) => [e.type, e.messageId, e.at])).toEqual([
      ['assessment', 'a', '2026-11-26T10:00:00Z'],
      ['assessment', 'late', '2026-11-26T10:00:00Z'],
    ]);
  });

  it('the sample timeline: each page right after the assessment of the message that caused it, escalations and de-escalations of crs and icans, the fields in the contract order', async () => {
    const timeline = readFileSync(`${REPO}/test/fixtures/sample-timeline.ndjson`, 'utf8');
    const { status, events } = await replayMain(['-'], timeline);
    expect(status).toBe(0);
    const pages = events.flatMap((e, i) =>
      e.type === 'notification'
        ? [[events[i - 1]!.type, events[i - 1]!.messageId === e.causedBy, e.kind, e.condition, e.fromGrade, e.toGrade]]
        : [],
    );
    expect(pages).toEqual([
      ['assessment', true, 'escalation', 'crs', 0, 1],
      ['assessment', true, 'escalation', 'crs', 1, 2],
      ['assessment', true, 'escalation', 'crs', 2, 3],
      ['assessment', true, 'escalation', 'icans', 0, 1],
      ['assessment', true, 'de-escalation', 'crs', 3, 2],
      ['assessment', true, 'de-escalation', 'icans', 1, 0],
    ]);
    const lines = timeline.split('\n').filter((l) => l.trim() !== '');
    expect(events.filter((e) => e.type === 'assessment')).toHaveLength(lines.length);
    // The keys the contract shows, in its order (the product adds others between and after them).
    const order = {
      assessment: ['type', 'messageId', 'patientId', 'at', 'scheme', 'crsGrade', 'icansGrade', 'reasons'],
      notification: [
        ...['type', 'notificationId', 'patientId', 'at', 'kind', 'condition', 'fromGrade', 'toGrade', 'teams'],
        ...['summary', 'actions'],
      ],
    } as Record<string, string[]>;
    for (const e of events) {
      const keys = order[e.type]!;
      expect(
        Object.keys(e).filter((k) => keys.includes(k)),
        e.type,
      ).toEqual(keys);
      if (e.type === 'notification') {
        expect([typeof e.summary, Array.isArray(e.actions), (e.teams as unknown[]).length > 0]).toEqual([
          'string',
          true,
          true,
        ]);
      }
    }
  });

  it('a line with a key sent twice is refused as the HTTP ingest refuses the body, in the same words; the run goes on', async () => {
    // The same validation as the deployed pipeline (message-contract.md): until 2026-12-07 a replay took the last
    // value (a heart rate of 99 then 300 graded 300) where both servers answer 400.
    const at = '2026-11-26T10:00:00Z';
    const twice = line('m1', at, { vitals: { heartRate: 99 } }).replace(
      '"heartRate":99',
      '"heartRate":99,"heartRate":300',
    );
    const { queue, tokens, token } = await ingestFakes(Date.parse(at));
    const http = await handleIngest(
      { method: 'POST', path: '/v1/messages', headers: { authorization: `Bearer ${token}` }, body: twice },
      { queue, tokens, now: () => Date.parse(at) },
    );
    expect(http.status).toBe(400);
    const said = (JSON.parse(http.body) as { errors: string[] }).errors;
    expect(said).toEqual([
      'vitals.heartRate: the key appears twice: which value is meant would be a guess; send it once',
    ]);
    const input = [twice, line('m2', at, { vitals: { heartRate: 98 } })].join('\n');
    for (const args of [['-'], ['-', '--escalations']]) {
      const { status, events } = await replayMain(args, input);
      expect(status, args.join(' ')).toBe(1);
      expect(events.filter((e) => e.type !== 'audit').slice(0, 2), args.join(' ')).toEqual([
        { type: 'rejected', line: 1, errors: said },
        expect.objectContaining({ type: 'assessment', messageId: 'm2' }),
      ]);
    }
  });
});

describe('docs/contract.md says what the published JSON Schema says', () => {
  const doc = readFileSync(`${REPO}/docs/contract.md`, 'utf8').replace(/\s+/g, ' ');
  const schema = JSON.parse(readFileSync(`${REPO}/shared/contract/device-message.v1.schema.json`, 'utf8')) as Record<
    string,
    unknown
  >;
  /** Every property of the schema, nested ones too (array items): [name, its schema]. */
  const properties: [string, Record<string, unknown>][] = [];
  const walk = (s: Record<string, unknown>) => {
    for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      properties.push([name, p]);
      walk(p);
      if (p.items) walk(p.items as Record<string, unknown>);
    }
  };
  walk(schema);
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

  it('every enumeration, whole and in order', () => {
    const enums = properties.filter(([, p]) => Array.isArray(p.enum));
    expect(enums.length).toBe(10);
    for (const [name, p] of enums) {
      const values = p.enum as string[];
      const listed = new RegExp(`${literal(values.map((v) => `\`${v}\``).join(', '))}(?!, \`)`);
      const piped = new RegExp(`${literal(name)}: ${literal(values.join('|'))}(?![|\\w-])`);
      expect(listed.test(doc) || piped.test(doc), `${name}: ${values.join(', ')}`).toBe(true);
    }
  });

  it('every plausible range, and which are whole numbers', () => {
    const sentence = /Plausible ranges \([^)]*\): ([^.]*(?:\.\d[^.]*)*)\./.exec(doc)![1]!;
    const ranges = [...sentence.matchAll(/(\w+) ([\d.]+)-([\d.]+)/g)].map(
      ([, name, lo, hi]) => [name!, lo!, hi!] as const,
    );
    expect(ranges.length).toBe(12);
    const named = new Map(properties);
    for (const [name, lo, hi] of ranges) {
      const fields = name === 'grades' ? ['maxCtcaeGrade', 'transaminitisGrade'] : [name];
      for (const field of fields) {
        const p = named.get(field)!;
        expect([field, p.minimum, p.maximum], sentence).toEqual([field, Number(lo), Number(hi)]);
        const whole = field === 'iceScore' || name === 'grades';
        expect(p.type, field).toBe(whole ? 'integer' : 'number');
      }
    }
    for (const field of ['dose', 'doseMg', 'crpMgL', 'ferritinNgMl', 'il6PgMl']) {
      expect([field, named.get(field)!.minimum, named.get(field)!.maximum]).toEqual([field, 0, undefined]);
    }
    expect(sentence).toContain('doses and labs >= 0');
  });
});
