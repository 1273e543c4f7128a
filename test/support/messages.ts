// Builders for device messages in tests: a patient timeline written as minutes after a start time.
import type { DeviceMessage } from '#domain/contract.ts';

export const T0 = Date.parse('2026-01-10T08:00:00Z');

const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

type Sections = Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>;

let counter = 0;

/** A monitor reading (heart rate 80) from `patientId`'s monitor, observed now: for the live no-data alert tests. */
export const liveReading = (patientId: string, messageId: string): DeviceMessage => ({
  messageId,
  patientId,
  observedAt: new Date().toISOString(),
  source: { deviceId: `mon-${patientId}`, kind: 'monitor' },
  vitals: { heartRate: 80 },
});

/** A message for `patientId` observed `minutes` after T0. */
export function msg(patientId: string, minutes: number, sections: Sections, messageId?: string): DeviceMessage {
  counter++;
  return {
    messageId: messageId ?? `${patientId}-m${counter}`,
    patientId,
    observedAt: at(minutes),
    source: { deviceId: `dev-${patientId}`, kind: 'monitor' },
    ...sections,
  };
}

export const enrol = (patientId: string, minutes = -60, extra: Partial<NonNullable<DeviceMessage['enrolment']>> = {}) =>
  msg(patientId, minutes, {
    enrolment: {
      therapy: 'car-t',
      product: 'axi-cel',
      infusedAt: '2026-01-08T08:00:00Z',
      weightKg: 70,
      bed: `H4-${patientId}`,
      ward: 'H4',
      ...extra,
    },
  });

/** Sections that grade CRS 0-4 (fever and oxygen support), as the paging tests script grade changes. */
export const CRS_MESSAGE: Record<number, Pick<DeviceMessage, 'vitals' | 'oxygen'>> = {
  0: { vitals: { temperatureC: 37 }, oxygen: { device: 'room_air' } },
  1: { vitals: { temperatureC: 39 }, oxygen: { device: 'room_air' } },
  2: { vitals: { temperatureC: 39 }, oxygen: { device: 'nasal_cannula', flowLpm: 2 } },
  3: { vitals: { temperatureC: 39 }, oxygen: { device: 'non_rebreather' } },
  4: { vitals: { temperatureC: 39 }, oxygen: { device: 'bipap' } },
};
