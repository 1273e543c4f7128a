// A deterministic synthetic feed: N messages over P patients, interleaved, one-minute-ish cadence per patient,
// with the mix a ward produces (mostly vitals; some oxygen, pumps, neuro checks, medications).
import type { DeviceMessage } from '#domain/contract.ts';

export function syntheticFeed(count: number, patients: number, seed = 42): DeviceMessage[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const start = Date.parse('2026-11-26T00:00:00Z');
  const out: DeviceMessage[] = [];
  for (let i = 0; i < count; i++) {
    const p = i % patients;
    const round = Math.floor(i / patients);
    const patientId = `BENCH-${p}`;
    const base = {
      messageId: `gw-${p}-${round}`,
      patientId,
      observedAt: new Date(start + round * 60_000 + p * 100).toISOString(),
      source: { deviceId: `mon-${p}`, kind: 'monitor' as const },
    };
    const r = rand();
    if (round === 0) {
      out.push({
        ...base,
        enrolment: {
          therapy: 'car-t',
          product: 'axi-cel',
          infusedAt: '2026-11-25T09:00:00Z',
          weightKg: 50 + (p % 50),
          bed: `B-${p}`,
          ward: 'H4',
        },
      });
    } else if (r < 0.8) {
      const sick = (p + round) % 7 === 0;
      out.push({
        ...base,
        vitals: {
          temperatureC: Math.round((sick ? 38 + rand() * 2 : 36.5 + rand()) * 10) / 10,
          heartRate: 70 + Math.round(rand() * 60),
          systolicBP: 80 + Math.round(rand() * 50),
          meanArterialPressure: 58 + Math.round(rand() * 30),
          spo2: 88 + Math.round(rand() * 12),
        },
      });
    } else if (r < 0.88) {
      out.push({
        ...base,
        oxygen:
          rand() < 0.5 ? { device: 'room_air' } : { device: 'nasal_cannula', flowLpm: 1 + Math.round(rand() * 8) },
      });
    } else if (r < 0.94) {
      out.push({
        ...base,
        vasopressors:
          rand() < 0.5 ? [] : [{ drug: 'norepinephrine', dose: Math.round(rand() * 30) / 100, unit: 'mcg/kg/min' }],
      });
    } else if (r < 0.98) {
      out.push({ ...base, neuro: { iceScore: 5 + Math.round(rand() * 5), consciousness: 'alert' } });
    } else {
      out.push({ ...base, medications: [{ drug: rand() < 0.5 ? 'acetaminophen' : 'tocilizumab', doseMg: 500 }] });
    }
  }
  return out;
}
