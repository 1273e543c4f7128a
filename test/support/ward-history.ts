// A ward after months of use, as device messages through the real ingest: many patients seen, monitored, paged and
// discharged long ago (their page answered and their grade de-escalated: quiet), and the ward's current patients.
// For the board's list: the benchmark (test/bench/board.bench.ts) and the tests of which patients it lists.
import type { DeviceMessage } from '#domain/contract.ts';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

const iso = (t: number) => new Date(t).toISOString();

function enrolment(patientId: string, t: number, bed: string): DeviceMessage {
  return {
    messageId: `${patientId}-enrol`,
    patientId,
    observedAt: iso(t),
    source: { deviceId: 'ehr-1', kind: 'ehr' },
    enrolment: {
      therapy: 'car-t',
      product: 'axi-cel',
      infusedAt: iso(t - DAY),
      weightKg: 70,
      bed,
      ward: 'H4',
    },
  };
}

const reading = (patientId: string, t: number, temperatureC: number, tag: string): DeviceMessage => ({
  messageId: `${patientId}-${tag}`,
  patientId,
  observedAt: iso(t),
  source: { deviceId: `mon-${patientId}`, kind: 'monitor' },
  vitals: { temperatureC, heartRate: 80, systolicBP: 120, meanArterialPressure: 85, spo2: 97 },
});

/** A discharge from the EHR (`monitoringEnd`), observed at `t`. */
const discharge = (patientId: string, t: number): DeviceMessage => ({
  messageId: `${patientId}-end`,
  patientId,
  observedAt: iso(t),
  source: { deviceId: 'ehr-1', kind: 'ehr' },
  monitoringEnd: { reason: 'discharged' },
});

/**
 * One stay that ended at `end`: enrolled 2 days before, a fever (CRS 1: hematology paged), normal a day later (the
 * fever out of the 24-hour window: CRS 0) and de-escalated after the hour's hold (the page resolved), then discharged.
 */
function pastStay(patientId: string, end: number, bed = `H4-${patientId}`): DeviceMessage[] {
  const t = end - 2 * DAY;
  return [
    enrolment(patientId, t, bed),
    reading(patientId, t + 30 * MIN, 39, 'fever'),
    reading(patientId, t + DAY + 60 * MIN, 37, 'normal'),
    reading(patientId, t + DAY + 180 * MIN, 37, 'still-normal'),
    discharge(patientId, end),
  ];
}

/** A patient monitored now: enrolled 2 h ago, a reading a minute ago (`fever`: CRS 1, a page waiting). */
function currentStay(patientId: string, now: number, o: { fever?: boolean; bed?: string } = {}): DeviceMessage[] {
  return [
    enrolment(patientId, now - 120 * MIN, o.bed ?? `H4-${patientId}`),
    reading(patientId, now - 60 * MIN, 37, 'first'),
    reading(patientId, now - MIN, o.fever ? 39 : 37, 'latest'),
  ];
}

/**
 * `past` patients discharged between a year and two days before `now` (quiet since), and `current` patients: a
 * tenth of them discharged 2 h ago (still on the list), the rest monitored, every fifth with a fever (a page open).
 */
export function wardHistory(o: { past: number; current: number; now: number }): DeviceMessage[] {
  const out: DeviceMessage[] = [];
  const span = 363 * DAY;
  for (let i = 0; i < o.past; i++) {
    const end = o.now - 2 * DAY - Math.floor((span * i) / Math.max(1, o.past));
    out.push(...pastStay(`OLD-${String(i).padStart(5, '0')}`, end));
  }
  for (let i = 0; i < o.current; i++) {
    const id = `NOW-${String(i).padStart(4, '0')}`;
    if (i % 10 === 9) out.push(...pastStay(id, o.now - 120 * MIN));
    else out.push(...currentStay(id, o.now, { fever: i % 5 === 0 }));
  }
  return out;
}
