// fast-check generators of valid device messages and patient timelines, late and out-of-order messages included.
import fc from 'fast-check';
import {
  CEREBRAL_EDEMA,
  CONSCIOUSNESS,
  MEDICATION_DRUGS,
  OXYGEN_DEVICES,
  SEIZURE,
  VASOPRESSOR_DRUGS,
  VASOPRESSOR_UNITS,
  type DeviceMessage,
} from '#domain/contract.ts';
import { T0 } from './messages.ts';

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const dec = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

/** Drops undefined keys, as JSON would. */
const clean = <T extends object>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

const vitals = fc
  .record({
    temperatureC: opt(fc.integer({ min: 355, max: 415 }).map((x) => x / 10)),
    heartRate: opt(fc.integer({ min: 40, max: 180 })),
    systolicBP: opt(fc.integer({ min: 60, max: 160 })),
    meanArterialPressure: opt(fc.integer({ min: 40, max: 110 })),
    spo2: opt(fc.integer({ min: 80, max: 100 })),
  })
  .map(clean)
  .filter((v) => Object.keys(v).length > 0);

const oxygen = fc
  .record({
    device: fc.constantFrom(...OXYGEN_DEVICES),
    flowLpm: opt(fc.integer({ min: 0, max: 60 })),
    fio2: opt(dec(0.21, 1)),
    forComfort: opt(fc.boolean()),
  })
  .map(clean);

const vasopressors = fc.array(
  fc.record({
    drug: fc.constantFrom(...VASOPRESSOR_DRUGS),
    dose: dec(0, 50),
    unit: fc.constantFrom(...VASOPRESSOR_UNITS),
  }),
  { maxLength: 3 },
);

const medications = fc.array(
  fc.record({ drug: fc.constantFrom(...MEDICATION_DRUGS), doseMg: opt(fc.integer({ min: 0, max: 1000 })) }).map(clean),
  {
    minLength: 1,
    maxLength: 2,
  },
);

const neuro = fc
  .record({
    iceScore: opt(fc.integer({ min: 0, max: 10 })),
    consciousness: opt(fc.constantFrom(...CONSCIOUSNESS)),
    seizure: opt(fc.constantFrom(...SEIZURE)),
    motorWeakness: opt(fc.boolean()),
    cerebralEdema: opt(fc.constantFrom(...CEREBRAL_EDEMA)),
  })
  .map(clean)
  .filter((n) => Object.keys(n).length > 0); // the contract refuses an empty section

const organToxicity = fc
  .record({
    maxCtcaeGrade: opt(fc.integer({ min: 0, max: 4 })),
    transaminitisGrade: opt(fc.integer({ min: 0, max: 4 })),
  })
  .map(clean)
  .filter((o) => Object.keys(o).length > 0);

const enrolment = fc.record({
  therapy: fc.constantFrom('car-t' as const, 'bispecific' as const),
  infusedAt: fc.constant('2026-01-08T08:00:00Z'),
  weightKg: fc.integer({ min: 10, max: 150 }),
  bed: fc.constant('B-1'),
});

/** The data sections of one message: usually one, sometimes two. */
const sections = fc
  .record({
    enrolment: opt(enrolment),
    vitals: opt(vitals),
    oxygen: opt(oxygen),
    vasopressors: opt(vasopressors),
    medications: opt(medications),
    neuro: opt(neuro),
    organToxicity: opt(organToxicity),
  })
  .map(clean)
  .filter((s) => Object.keys(s).length > 0);

/** A timeline for one patient: unique messageIds, times mostly rising, some late. */
export function timeline(patientId: string, maxLength = 40): fc.Arbitrary<DeviceMessage[]> {
  return fc
    .array(fc.tuple(sections, fc.integer({ min: -30, max: 120 })), { minLength: 1, maxLength, size: 'max' })
    .map((items) => {
      let minute = 0;
      return items.map(([s, step], i) => {
        minute += step; // a negative step is a late message
        return {
          messageId: `${patientId}-${i}`,
          patientId,
          observedAt: new Date(T0 + minute * 60_000).toISOString(),
          source: { deviceId: `dev-${patientId}`, kind: 'monitor' as const },
          ...s,
        } as DeviceMessage;
      });
    });
}

// ------------------------------------------------------------------------------------------------------------
// Courses for the order-independence property (rules 1.1 item 1): every section, several messages at one
// instant with no field given twice there (the one case where arrival order decides), exact duplicates,
// several pumps (paused ones, one drug twice), partial neuro and organ sections, an enrolment with thresholds.

/** Several pumps: drugs from a small set so that one drug comes twice, doses of 0 (paused) among them. */
const pumps = fc.array(
  fc.record({
    drug: fc.constantFrom(
      'norepinephrine' as const,
      'norepinephrine' as const,
      'phenylephrine' as const,
      'vasopressin' as const,
      'dopamine' as const,
    ),
    dose: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 400 }).map((x) => x / 10),
    ),
    unit: fc.constantFrom(...VASOPRESSOR_UNITS),
  }),
  { maxLength: 4 },
);

/** Everything observed at one instant, before it is split into messages. */
const observation = fc
  .record({
    vitals: opt(vitals),
    oxygen: opt(oxygen),
    vasopressors: opt(pumps),
    medications: opt(medications),
    neuro: opt(neuro),
    organToxicity: opt(organToxicity),
    labs: opt(fc.record({ crpMgL: fc.integer({ min: 1, max: 300 }) })),
  })
  .map(clean)
  .filter((s) => Object.keys(s).length > 0);

type Sections = Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>;
const FIELD_SECTIONS = ['vitals', 'neuro', 'organToxicity', 'labs'] as const;

/** Splits one instant's observation over `parts` messages: fields one by one, oxygen and vasopressors whole. */
function split(o: Sections, picks: number[], parts: number): Sections[] {
  const out: Record<string, Record<string, unknown>>[] = Array.from({ length: parts }, () => ({}));
  let k = 0;
  const pick = () => picks[k++ % picks.length]! % parts;
  for (const section of FIELD_SECTIONS) {
    for (const [field, value] of Object.entries(o[section] ?? {})) (out[pick()]![section] ??= {})[field] = value;
  }
  for (const section of ['oxygen', 'vasopressors', 'medications'] as const) {
    if (o[section] !== undefined) (out[pick()] as Record<string, unknown>)[section] = o[section];
  }
  return (out as Sections[]).filter((s) => Object.keys(s).length > 0);
}

// A patient's own thresholds: both, or one alone (each keeps its latest value, the other stays as it was).
const thresholds = fc
  .record(
    { systolicBelow: fc.integer({ min: 80, max: 100 }), mapBelow: fc.integer({ min: 55, max: 70 }) },
    { requiredKeys: [] },
  )
  .filter((t) => Object.keys(t).length > 0);

/**
 * One patient's course in observedAt order (times rise; several messages may share an instant), with a few
 * exact duplicates: arrival order is for the caller to choose.
 */
export function course(patientId: string, maxInstants = 30): fc.Arbitrary<DeviceMessage[]> {
  return fc
    .record({
      enrolment: fc.record({
        weightKg: fc.integer({ min: 10, max: 150 }),
        hypotension: opt(thresholds),
        late: fc.boolean(),
      }),
      instants: fc.array(
        fc.tuple(
          observation,
          fc.integer({ min: 1, max: 90 }),
          fc.integer({ min: 1, max: 3 }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        ),
        {
          minLength: 1,
          maxLength: maxInstants,
          size: 'max',
        },
      ),
      duplicates: fc.array(fc.nat(), { maxLength: 4 }),
    })
    .map(({ enrolment, instants, duplicates }) => {
      let i = 0;
      const message = (minute: number, sections: Sections): DeviceMessage => ({
        messageId: `${patientId}-${i++}`,
        patientId,
        observedAt: new Date(T0 + minute * 60_000).toISOString(),
        source: { deviceId: `dev-${patientId}`, kind: 'monitor' },
        ...sections,
      });
      const { late, ...fields } = enrolment;
      const out = [
        message(late ? 5 : -60, {
          enrolment: clean({ therapy: 'car-t' as const, infusedAt: '2026-01-08T08:00:00Z', bed: 'B-1', ...fields }),
        }),
      ];
      let minute = 0;
      for (const [o, step, parts, picks] of instants) {
        minute += step;
        for (const s of split(o as Sections, picks, parts)) out.push(message(minute, s));
      }
      for (const d of duplicates) out.push(structuredClone(out[d % out.length]!));
      return out.sort((a, b) => Date.parse(a.observedAt) - Date.parse(b.observedAt));
    });
}

/** A permutation of 0..n-1 from random keys (fast-check shrinks the keys). */
export function permutation(n: number, keys: number[]): number[] {
  return Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (keys[a % keys.length] ?? 0) - (keys[b % keys.length] ?? 0) || a - b,
  );
}

// ------------------------------------------------------------------------------------------------------------
// Clinical courses for the rules oracle (test/unit/rules-oracle-agree.test.ts): values near every threshold,
// long runs of blood-pressure readings and pump sections (beyond the engine's kept-history bounds), paused pumps,
// fever-masking medications before and after fever, corrections at one instant, re-enrolment with a later
// infusion, an enrolment with no weight, days-long gaps across the fever window.

const nearBp = fc
  .record({
    systolicBP: opt(fc.integer({ min: 84, max: 96 })),
    meanArterialPressure: opt(fc.integer({ min: 60, max: 70 })),
  })
  .map(clean)
  .filter((v) => Object.keys(v).length > 0);

const nearDose = fc.oneof(
  fc.constant(0),
  fc.constantFrom(0.1, 1.7, 5, 8.2, 9.9, 10, 19.9, 20, 199, 200),
  fc.integer({ min: 1, max: 300 }).map((x) => x / 10),
);

const clinicalPumps = fc.array(
  fc.record({
    drug: fc.constantFrom(...VASOPRESSOR_DRUGS),
    dose: nearDose,
    unit: fc.constantFrom('mcg/min' as const, 'mcg/min' as const, 'mcg/kg/min' as const, 'units/min' as const),
  }),
  { maxLength: 3 },
);

const clinicalOxygen = fc
  .record({
    device: fc.constantFrom(...OXYGEN_DEVICES),
    flowLpm: opt(fc.constantFrom(0, 1, 4, 4.74, 4.75, 5, 6, 6.5, 7, 15)),
    fio2: opt(fc.constantFrom(0.21, 0.3, 0.39, 0.4, 0.41, 0.6)),
    forComfort: opt(fc.boolean()),
  })
  .map(clean);

/** Minutes after T0 that an enrolment may name as its infusion: before, inside and after the course. */
const infusion = fc.integer({ min: -48, max: 72 }).map((h) => new Date(T0 + h * 3_600_000).toISOString());

const clinicalSections: fc.Arbitrary<Sections> = fc.oneof(
  { weight: 6, arbitrary: nearBp.map((vitals) => ({ vitals })) },
  {
    weight: 3,
    arbitrary: fc.integer({ min: 374, max: 386 }).map((x) => ({ vitals: { temperatureC: x / 10 } })),
  },
  { weight: 3, arbitrary: clinicalPumps.map((vasopressors) => ({ vasopressors })) },
  { weight: 2, arbitrary: fc.constantFrom(...MEDICATION_DRUGS).map((drug) => ({ medications: [{ drug }] })) },
  { weight: 2, arbitrary: clinicalOxygen.map((oxygen) => ({ oxygen })) },
  { weight: 1, arbitrary: neuro.map((n) => ({ neuro: n })) },
  { weight: 1, arbitrary: organToxicity.map((organToxicity) => ({ organToxicity })) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      infusion.map((infusedAt) => ({ enrolment: { infusedAt } })),
      fc.integer({ min: 10, max: 120 }).map((weightKg) => ({ enrolment: { weightKg } })),
      thresholds.map((hypotension) => ({ enrolment: { hypotension } })),
    ),
  },
);

/**
 * One patient's clinical course in observedAt order. Steps are mostly minutes, sometimes 0 (the same instant as
 * the message before: a split panel or a correction) and sometimes hours.
 */
export function clinicalCourse(
  patientId: string,
  { maxMessages = 60, minMessages = 1, reinfusion = false } = {},
): fc.Arbitrary<DeviceMessage[]> {
  const step = fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 15 }) },
    { weight: 1, arbitrary: fc.integer({ min: 60, max: 1500 }) },
  );
  return fc
    .record({
      first: fc.record({
        infusedAt: infusion,
        weightKg: opt(fc.integer({ min: 10, max: 120 })),
        minute: fc.integer({ min: -120, max: 30 }),
      }),
      items: fc.array(fc.tuple(step, clinicalSections, fc.nat(2), fc.nat(19)), {
        minLength: minMessages,
        maxLength: maxMessages,
        size: 'max',
      }),
    })
    .map(({ first, items }) => {
      const { minute: enrolledAt, ...fields } = first;
      /** One instant, spelt three ways (UTC with milliseconds, UTC without, +02:00): still one instant. */
      const at = (minute: number, spelling = 0) => {
        const ms = T0 + minute * 60_000;
        if (spelling === 0) return new Date(ms).toISOString();
        if (spelling === 1) return new Date(ms).toISOString().replace('.000Z', 'Z');
        return new Date(ms + 2 * 3_600_000).toISOString().replace('.000Z', '+02:00');
      };
      const out: DeviceMessage[] = [
        {
          messageId: `${patientId}-e`,
          patientId,
          observedAt: at(enrolledAt),
          source: { deviceId: `dev-${patientId}`, kind: 'ehr' },
          enrolment: clean({ therapy: 'car-t' as const, bed: 'B-1', ...fields }),
        },
      ];
      let minute = 0;
      items.forEach(([s, sections, spelling, extra], i) => {
        minute += s;
        // Without re-infusion, an enrolment section repeats the first infusion time (a re-sent enrolment).
        if (!reinfusion && sections.enrolment?.infusedAt) sections = { enrolment: { infusedAt: first.infusedAt } };
        const message: DeviceMessage = {
          // Now and then a device reuses an earlier messageId for new content (a new observation).
          messageId: extra === 0 && i > 0 ? `${patientId}-${i - 1}` : `${patientId}-${i}`,
          patientId,
          observedAt: at(minute, spelling),
          source: { deviceId: `dev-${patientId}`, kind: 'monitor' },
          ...sections,
        };
        out.push(message);
        if (extra === 1) out.push(structuredClone(message)); // an exact duplicate (redelivery)
        if (extra === 2) out.push(respelled(message, at(minute, (spelling + 1) % 3))); // the same, rewritten
      });
      return out.sort((a, b) => Date.parse(a.observedAt) - Date.parse(b.observedAt));
    });
}

/**
 * The same message as an integration engine may write it again (the same content, rules section 5): its instant in
 * another spelling, its infusion time with milliseconds, its sets (pumps, medications) in the reverse order.
 */
function respelled(m: DeviceMessage, observedAt: string): DeviceMessage {
  const copy: DeviceMessage = { ...structuredClone(m), observedAt };
  if (copy.enrolment?.infusedAt)
    copy.enrolment.infusedAt = new Date(Date.parse(copy.enrolment.infusedAt)).toISOString();
  copy.vasopressors?.reverse();
  copy.medications?.reverse();
  return copy;
}

/** Arrival order close to observedAt order: each message moves at most `reach` places later (a late message). */
export function nearlyOrdered(n: number, delays: number[], reach: number): number[] {
  return Array.from({ length: n }, (_, i) => i).sort(
    (a, b) =>
      a + ((delays[a % delays.length] ?? 0) % (reach + 1)) - (b + ((delays[b % delays.length] ?? 0) % (reach + 1))) ||
      a - b,
  );
}
