// A week of one-minute vitals for one patient (a fever course, pressors on and off, tocilizumab, neuro checks,
// oxygen), deterministic: the patient-state size test and `npm run bench` measure the state it leaves.
import type { DeviceMessage } from '#domain/contract.ts';
import { enrol, msg } from './messages.ts';

export function* week(patientId: string): Generator<DeviceMessage> {
  let n = 0;
  const id = () => `gw-${patientId}-${String(++n).padStart(6, '0')}`; // as a gateway numbers its messages
  yield { ...enrol(patientId, -1), messageId: id() };
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let m = 0; m < 7 * 24 * 60; m++) {
    const feverish = m % (24 * 60) < 8 * 60; // eight febrile hours a day
    yield msg(
      patientId,
      m,
      {
        vitals: {
          temperatureC: Math.round((feverish ? 38 + rand() * 2 : 36.5 + rand()) * 10) / 10,
          heartRate: 80 + Math.round(rand() * 40),
          systolicBP: 80 + Math.round(rand() * 40),
          meanArterialPressure: 60 + Math.round(rand() * 20),
          spo2: 90 + Math.round(rand() * 10),
        },
      },
      id(),
    );
    if (m % 180 === 0)
      yield msg(
        patientId,
        m,
        { vasopressors: m % 360 === 0 ? [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] : [] },
        id(),
      );
    if (m % (8 * 60) === 30)
      yield msg(
        patientId,
        m,
        {
          medications: [
            { drug: 'tocilizumab', doseMg: 560 },
            { drug: 'acetaminophen', doseMg: 1000 },
          ],
        },
        id(),
      );
    if (m % 240 === 0)
      yield msg(
        patientId,
        m,
        {
          neuro: { iceScore: 10 - (m % 7), consciousness: 'alert' },
          oxygen: { device: 'nasal_cannula', flowLpm: 1 + (m % 5) },
        },
        id(),
      );
  }
}
