// Simulated patient courses for demos, training and tests: bedside monitor readings with noise, pump and charting
// events, at realistic times. Noise is bounded so that each course's grades are the same for every seed (a low
// blood pressure stays below the threshold, a normal one stays well above it); only values and timings vary.
import type { DeviceMessage, SOURCE_KINDS, VitalsSection } from '#domain/contract.ts';
import { DAY, HOUR, MINUTE, iso } from '#domain/time.ts';
import { int, mulberry32, round, uniform, type Rng } from './prng.ts';

type SourceKind = (typeof SOURCE_KINDS)[number];
type Sections = Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>;

interface SimPatient {
  patientId: string;
  bed: string;
  ward: string;
}

interface Scripted {
  /** Minutes after the course starts. */
  at: number;
  kind: SourceKind;
  sections: Sections;
}

/** Physiological targets; each monitor reading adds bounded noise. */
interface Targets {
  temp: number;
  hr: number;
  rr: number;
  sys: number;
  dia: number;
  spo2: number;
}

export interface Course {
  name: string;
  description: string;
  /** Minutes of patient time the course covers. */
  span: number;
  script(rng: Rng, patient: SimPatient, startMs: number): Scripted[];
  /** Where the patient's vitals settle at the end (the follow mode keeps sending these). */
  settled: Targets;
}

function reading(rng: Rng, t: Targets): VitalsSection {
  const systolicBP = Math.round(t.sys + uniform(rng, -4, 4));
  const diastolicBP = Math.round(t.dia + uniform(rng, -3, 3));
  return {
    temperatureC: round(t.temp + uniform(rng, -0.2, 0.2), 1),
    heartRate: Math.round(t.hr + uniform(rng, -5, 5)),
    respiratoryRate: Math.round(t.rr + uniform(rng, -2, 2)),
    systolicBP,
    diastolicBP,
    meanArterialPressure: Math.round((systolicBP + 2 * diastolicBP) / 3),
    spo2: Math.min(100, Math.round(t.spo2 + uniform(rng, -1, 1))),
  };
}

/** Monitor readings every `every` minutes (plus up to a minute of jitter), following the phase in force. */
function monitor(rng: Rng, phases: [from: number, Targets][], span: number, every: number): Scripted[] {
  const out: Scripted[] = [];
  for (let m = 0; m <= span; m += every) {
    const at = m + round(rng(), 2);
    const targets = phases.filter(([from]) => from <= at).at(-1)![1];
    out.push({ at, kind: 'monitor', sections: { vitals: reading(rng, targets) } });
  }
  return out;
}

function enrolment(
  rng: Rng,
  p: SimPatient,
  startMs: number,
  o: { therapy: 'car-t' | 'bispecific'; product: string; day: number },
) {
  const weightKg = int(rng, 55, 95);
  // Day +N counts calendar days (docs/grading-rules.md): the infusion in the daytime of the (UTC) day N days before
  // the course starts, so that the course opens on the day its description names.
  const infusedAt = iso(Math.floor(startMs / DAY) * DAY - o.day * DAY + int(rng, 8, 16) * HOUR);
  return {
    weightKg,
    event: {
      at: 0,
      kind: 'ehr' as const,
      sections: {
        enrolment: { therapy: o.therapy, product: o.product, infusedAt, weightKg, bed: p.bed, ward: p.ward },
      },
    },
  };
}

const at = (m: number, kind: SourceKind, sections: Sections): Scripted => ({ at: m, kind, sections });
const roomAir = (m: number) => at(m, 'manual', { oxygen: { device: 'room_air' } });
const ice = (
  m: number,
  iceScore: number,
  consciousness: 'alert' | 'awakens_spontaneously' | 'awakens_to_voice' = 'alert',
) =>
  at(m, 'manual', { neuro: { iceScore, consciousness, seizure: 'none', motorWeakness: false, cerebralEdema: 'none' } });
const toci = (m: number, weightKg: number) =>
  at(m, 'ehr', { medications: [{ drug: 'tocilizumab', doseMg: Math.min(800, weightKg * 8) }] });

const NORMAL: Targets = { temp: 37.0, hr: 80, rr: 15, sys: 122, dia: 76, spo2: 98 };

/** Day +1 CAR-T: fever, then hypotension (two low readings), tocilizumab, a vasopressor (ICU paged), recovery. */
const crs: Course = {
  name: 'crs',
  description: 'day +1 CAR-T: fever, hypotension, tocilizumab, norepinephrine (CRS 3, ICU paged), recovery',
  span: 420,
  settled: { temp: 37.0, hr: 86, rr: 16, sys: 116, dia: 70, spo2: 97 },
  script(rng, p, startMs) {
    const { weightKg, event } = enrolment(rng, p, startMs, { therapy: 'car-t', product: 'axi-cel', day: 1 });
    const phases: [number, Targets][] = [
      [0, { temp: 37.3, hr: 88, rr: 16, sys: 118, dia: 72, spo2: 97 }],
      [18, { temp: 38.9, hr: 118, rr: 22, sys: 118, dia: 70, spo2: 95 }],
      [38, { temp: 38.9, hr: 126, rr: 24, sys: 80, dia: 46, spo2: 94 }], // hypotension
      [80, { temp: 38.9, hr: 112, rr: 22, sys: 102, dia: 60, spo2: 96 }], // on norepinephrine
      [120, { temp: 37.4, hr: 100, rr: 20, sys: 102, dia: 60, spo2: 97 }], // afebrile after tocilizumab
      [295, this.settled],
    ];
    return [
      event,
      roomAir(0),
      ice(0, 10),
      ...monitor(rng, phases, this.span, 10),
      at(25, 'ehr', { medications: [{ drug: 'acetaminophen', doseMg: 1000 }] }),
      toci(58, weightKg),
      at(78, 'pump', { vasopressors: [{ drug: 'norepinephrine', dose: 0.08, unit: 'mcg/kg/min' }] }),
      at(95, 'manual', { oxygen: { device: 'nasal_cannula', flowLpm: 3 } }),
      ice(180, 10),
      at(240, 'pump', { vasopressors: [{ drug: 'norepinephrine', dose: 0.03, unit: 'mcg/kg/min' }] }),
      at(290, 'pump', { vasopressors: [] }),
      roomAir(330),
    ];
  },
};

/** Day +5 CAR-T, afebrile: ICE scores fall to 2 (ICANS 3, ICU paged), dexamethasone, recovery. */
const icans: Course = {
  name: 'icans',
  description: 'day +5 CAR-T: ICE score falls 10 -> 8 -> 5 -> 2 (ICANS 3), dexamethasone, recovery',
  span: 330,
  settled: { temp: 37.1, hr: 82, rr: 15, sys: 124, dia: 76, spo2: 98 },
  script(rng, p, startMs) {
    const { event } = enrolment(rng, p, startMs, { therapy: 'car-t', product: 'axi-cel', day: 5 });
    return [
      event,
      roomAir(0),
      ice(0, 10),
      ...monitor(rng, [[0, this.settled]], this.span, 15),
      ice(25, 8),
      ice(55, 5, 'awakens_spontaneously'),
      ice(85, 2, 'awakens_to_voice'),
      at(90, 'ehr', { medications: [{ drug: 'dexamethasone', doseMg: 10 }] }),
      ice(150, 5),
      ice(210, 8),
      ice(270, 10),
    ];
  },
};

/** Day +3 CAR-T with normal observations throughout: no page. */
const quiet: Course = {
  name: 'quiet',
  description: 'day +3 CAR-T, normal observations: no page',
  span: 360,
  settled: NORMAL,
  script(rng, p, startMs) {
    const { event } = enrolment(rng, p, startMs, { therapy: 'car-t', product: 'liso-cel', day: 3 });
    return [event, roomAir(0), ice(0, 10), ...monitor(rng, [[0, NORMAL]], this.span, 15), ice(240, 10)];
  },
};

/** Day +2 CAR-T, normal, with one very low blood pressure (a cuff artefact): one reading alone pages nobody. */
const artefact: Course = {
  name: 'artefact',
  description: 'day +2 CAR-T, one artefactual low blood pressure between normal ones: no page',
  span: 300,
  settled: { temp: 37.2, hr: 84, rr: 16, sys: 120, dia: 74, spo2: 97 },
  script(rng, p, startMs) {
    const { event } = enrolment(rng, p, startMs, { therapy: 'car-t', product: 'tisa-cel', day: 2 });
    return [
      event,
      roomAir(0),
      ice(0, 10),
      ...monitor(rng, [[0, this.settled]], this.span, 10),
      at(125, 'monitor', { vitals: { systolicBP: 66, diastolicBP: 38, meanArterialPressure: 47, heartRate: 86 } }),
    ];
  },
};

/** Day +2 of a bispecific: fever, then nasal cannula oxygen (CRS 2: interrupt the infusion), tocilizumab. */
const bispecific: Course = {
  name: 'bispecific',
  description: 'day +2 bispecific: fever, low-flow oxygen (CRS 2, interrupt the infusion), tocilizumab, recovery',
  span: 360,
  settled: { temp: 37.2, hr: 88, rr: 17, sys: 122, dia: 74, spo2: 96 },
  script(rng, p, startMs) {
    const { weightKg, event } = enrolment(rng, p, startMs, { therapy: 'bispecific', product: 'teclistamab', day: 2 });
    const phases: [number, Targets][] = [
      [0, { temp: 37.2, hr: 86, rr: 16, sys: 126, dia: 78, spo2: 97 }],
      [28, { temp: 38.5, hr: 108, rr: 20, sys: 122, dia: 74, spo2: 94 }],
      [85, { temp: 38.4, hr: 104, rr: 22, sys: 120, dia: 72, spo2: 92 }],
      [110, this.settled],
    ];
    return [
      event,
      roomAir(0),
      ice(0, 10),
      ...monitor(rng, phases, this.span, 15),
      at(88, 'manual', { oxygen: { device: 'nasal_cannula', flowLpm: 2 } }),
      toci(100, weightKg),
      roomAir(240),
    ];
  },
};

export const COURSES: Record<string, Course> = { crs, icans, quiet, artefact, bispecific };
export const COURSE_NAMES = Object.keys(COURSES);

export interface ScenarioPatient extends SimPatient {
  course: string;
  /** Minutes after the scenario start at which this patient's course begins. */
  offset: number;
  settled: Targets;
}

export interface Scenario {
  seed: number;
  /** Patient time (epoch ms) of the scenario's minute 0. */
  start: number;
  /** Patient time the scenario covers, ms. */
  spanMs: number;
  patients: ScenarioPatient[];
  /** Every message in observedAt order (a patient's messages in the order they are sent). */
  messages: DeviceMessage[];
}

export interface ScenarioOptions {
  seed: number;
  start: number;
  courses?: string[];
  /** How many patients follow each course (each with its own noise and timings). */
  copies?: number;
  ward?: string;
}

/** The scenario for a seed and a start time: the same inputs give the same messages, byte for byte. */
export function buildScenario(o: ScenarioOptions): Scenario {
  const names = o.courses ?? COURSE_NAMES;
  for (const n of names)
    if (!COURSES[n]) throw new Error(`unknown course "${n}" (courses: ${COURSE_NAMES.join(', ')})`);
  const copies = o.copies ?? 1;
  const ward = o.ward ?? 'H4';
  const master = mulberry32(o.seed);
  const run = Math.floor(o.start / MINUTE).toString(36);
  const used = new Set<string>();
  const patients: ScenarioPatient[] = [];
  const timed: { t: number; i: number; m: DeviceMessage }[] = [];
  let span = 0;
  let index = 0;
  for (let copy = 0; copy < copies; copy++) {
    for (const name of names) {
      const course = COURSES[name]!;
      const rng = mulberry32(Math.floor(master() * 2 ** 32));
      let patientId: string;
      do patientId = `P-${int(master, 1000, 9999)}`;
      while (used.has(patientId));
      used.add(patientId);
      index++;
      const patient: SimPatient = { patientId, bed: `${ward}-${String(index).padStart(2, '0')}`, ward };
      // The first copy of each course starts at once (the demo escalates early); further copies are spread out.
      const offset = copy === 0 ? 0 : int(rng, 0, 30);
      const courseStart = o.start + offset * MINUTE;
      const script = course.script(rng, patient, courseStart).sort((a, b) => a.at - b.at);
      script.forEach((s, n) => {
        const t = Math.round((courseStart + s.at * MINUTE) / 1000) * 1000;
        const device = s.kind === 'ehr' ? `ehr-${ward}` : `${s.kind}-${patient.bed}`;
        timed.push({
          t,
          i: timed.length,
          m: {
            messageId: `sim-${run}-${patientId}-${String(n + 1).padStart(3, '0')}`,
            patientId,
            observedAt: iso(t),
            source: { deviceId: device, kind: s.kind },
            ...s.sections,
          },
        });
      });
      patients.push({ ...patient, course: name, offset, settled: course.settled });
      span = Math.max(span, offset + course.span);
    }
  }
  timed.sort((a, b) => a.t - b.t || a.i - b.i);
  return { seed: o.seed, start: o.start, spanMs: (span + 1) * MINUTE, patients, messages: timed.map((x) => x.m) };
}

/** A monitor reading of a settled patient (the follow mode's steady stream). */
export function settledReading(rng: Rng, p: ScenarioPatient, t: number, n: number): DeviceMessage {
  return {
    messageId: `sim-follow-${p.patientId}-${t.toString(36)}-${n}`,
    patientId: p.patientId,
    observedAt: iso(t),
    source: { deviceId: `monitor-${p.bed}`, kind: 'monitor' },
    vitals: reading(rng, p.settled),
  };
}
