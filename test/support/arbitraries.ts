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
} from '../../shared/domain/contract.ts';
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
  fc.record({ drug: fc.constantFrom(...VASOPRESSOR_DRUGS), dose: dec(0, 50), unit: fc.constantFrom(...VASOPRESSOR_UNITS) }),
  { maxLength: 3 },
);

const medications = fc.array(fc.record({ drug: fc.constantFrom(...MEDICATION_DRUGS), doseMg: opt(fc.integer({ min: 0, max: 1000 })) }).map(clean), {
  minLength: 1,
  maxLength: 2,
});

const neuro = fc
  .record({
    iceScore: opt(fc.integer({ min: 0, max: 10 })),
    consciousness: opt(fc.constantFrom(...CONSCIOUSNESS)),
    seizure: opt(fc.constantFrom(...SEIZURE)),
    motorWeakness: opt(fc.boolean()),
    cerebralEdema: opt(fc.constantFrom(...CEREBRAL_EDEMA)),
  })
  .map(clean);

const organToxicity = fc
  .record({ maxCtcaeGrade: opt(fc.integer({ min: 0, max: 4 })), transaminitisGrade: opt(fc.integer({ min: 0, max: 4 })) })
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
  return fc.array(fc.tuple(sections, fc.integer({ min: -30, max: 120 })), { minLength: 1, maxLength }).map((items) => {
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
