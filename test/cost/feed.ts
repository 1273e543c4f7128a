// The scenario's patients, as a ward's monitors and charting send them: an enrolment, then a full set of vital
// signs every `intervalSeconds` from the bedside monitor, and every four hours a neuro check and the oxygen
// charting. Two patients in three run a fever for some hours of the day (with acetaminophen): CRS 1, paged once,
// which is about what a CAR T ward sees; none is hypotensive or hypoxic. Deterministic, so the cost model's
// figures move only when the code does.
import type { DeviceMessage } from '../../shared/domain/contract.ts';

const FEED_START = Date.parse('2026-11-30T00:00:00Z');

const HOUR = 3_600_000;

/** One patient's messages from FEED_START for `hours` hours, every `intervalSeconds`, in the order a gateway sends them. */
function patientFeed(index: number, hours: number, intervalSeconds: number): DeviceMessage[] {
  const patientId = `COST-${String(index).padStart(4, '0')}`;
  let seed = 17 + index * 7919;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let n = 0;
  const base = (t: number, kind: 'monitor' | 'ehr' = 'monitor') => ({
    messageId: `gw-${index}-${String(++n).padStart(7, '0')}`,
    patientId,
    observedAt: new Date(t).toISOString(),
    source: { deviceId: kind === 'monitor' ? `mon-${index}` : `ehr-${index}`, kind },
  });
  const out: DeviceMessage[] = [
    {
      ...base(FEED_START - HOUR, 'ehr'),
      enrolment: {
        therapy: 'car-t',
        product: 'axi-cel',
        infusedAt: '2026-11-28T09:00:00Z',
        weightKg: 55 + (index % 40),
        bed: `H4-${index % 30}`,
        ward: 'H4',
      },
    },
  ];
  const febrile = index % 3 !== 2;
  const feverFrom = FEED_START + (2 + (index % 12)) * HOUR;
  const feverTo = feverFrom + (3 + (index % 4)) * HOUR;
  const steps = Math.floor((hours * HOUR) / (intervalSeconds * 1000));
  for (let i = 0; i < steps; i++) {
    const t = FEED_START + i * intervalSeconds * 1000;
    const fever = febrile && t >= feverFrom && t < feverTo;
    out.push({
      ...base(t),
      vitals: {
        temperatureC: Math.round((fever ? 38.1 + rand() * 1.2 : 36.6 + rand() * 0.8) * 10) / 10,
        heartRate: Math.round((fever ? 100 : 78) + rand() * 20),
        respiratoryRate: 14 + Math.round(rand() * 6),
        systolicBP: 105 + Math.round(rand() * 25),
        diastolicBP: 62 + Math.round(rand() * 15),
        meanArterialPressure: 76 + Math.round(rand() * 16),
        spo2: 95 + Math.round(rand() * 4),
      },
    });
    if ((t - FEED_START) % (4 * HOUR) === 0) {
      out.push({ ...base(t, 'ehr'), neuro: { iceScore: 10, consciousness: 'alert' }, oxygen: { device: 'room_air' } });
    }
    if (fever && (t - feverFrom) % (6 * HOUR) === 0)
      out.push({ ...base(t, 'ehr'), medications: [{ drug: 'acetaminophen', doseMg: 650 }] });
  }
  return out;
}

/** The patients' feeds interleaved as they arrive (by observedAt, patient by patient within an instant). */
export function wardFeed(patients: number, hours: number, intervalSeconds: number): DeviceMessage[] {
  const all = Array.from({ length: patients }, (_, i) => patientFeed(i, hours, intervalSeconds));
  const merged = all.flatMap((feed, p) => feed.map((m, k) => ({ m, t: Date.parse(m.observedAt), p, k })));
  merged.sort((a, b) => a.t - b.t || a.p - b.p || a.k - b.k);
  return merged.map((x) => x.m);
}
