// Unit conversion of what HL7 v2 and FHIR send (shared/app/interfaces/units.ts): a converted value must stay on the
// side of every grading threshold that the value as sent is on. A conversion rounded to a few decimals moved 8.66
// kPa (64.955 mmHg, hypotension) to 65.0 mmHg (normal), and 39.996 % FiO2 to 0.40 (Lee grade 3).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toContractUnit, UNIT_RULES } from '#app/interfaces/units.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { Replay } from '#app/replay.ts';
import { resolveConfig } from '#domain/config.ts';
import type { OutputEvent } from '#domain/events.ts';

type Sent = { digits: bigint; places: number };

/** A decimal as sent: `digits / 10^places`, kept exact as integers for the comparison. */
const sent = (min: number, max: number): fc.Arbitrary<Sent> =>
  fc
    .integer({ min: 0, max: 4 })
    .chain((places) =>
      fc
        .bigInt({ min: BigInt(Math.round(min * 10 ** places)), max: BigInt(Math.round(max * 10 ** places)) })
        .map((digits) => ({ digits, places })),
    );

/** A threshold and a value as sent: anywhere in the range, or within a few last digits of the threshold. */
const around = (thresholds: fc.Arbitrary<number>, inSentUnit: (t: number) => number, min: number, max: number) =>
  thresholds.chain((t) =>
    fc.tuple(
      fc.constant(t),
      fc.oneof(
        sent(min, max),
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: -30, max: 30 })).map(
          ([places, delta]): Sent => ({
            digits: BigInt(Math.round(inSentUnit(t) * 10 ** places) + delta),
            places,
          }),
        ),
      ),
    ),
  );

const text = ({ digits, places }: Sent) => {
  const s = digits.toString().padStart(places + 1, '0');
  return places === 0 ? s : `${s.slice(0, -places)}.${s.slice(-places)}`;
};
const sign = (x: bigint | number) => (x > 0 ? 1 : x < 0 ? -1 : 0);
const converted = (field: Parameters<typeof toContractUnit>[0], value: number, ucum: string) => {
  const c = toContractUnit(field, value, { ucum });
  if (!c.ok) throw new Error(c.problem);
  return c.value;
};

describe('unit conversions keep a value on its side of every threshold', () => {
  it('Fahrenheit: against any fever threshold of 37.0-41.0 °C', () => {
    fc.assert(
      fc.property(
        around(fc.integer({ min: 370, max: 410 }), (t) => ((t / 10) * 9) / 5 + 32, 77, 113),
        ([tenths, v]) => {
          const scale = 10n ** BigInt(v.places);
          // (F - 32) x 5/9 against tenths/10, in integers: (digits - 32 scale) x 50 against 9 tenths scale.
          const exact = sign((v.digits - 32n * scale) * 50n - 9n * BigInt(tenths) * scale);
          const c = converted('vitals.temperatureC', Number(text(v)), '[degF]');
          expect(sign(c - tenths / 10), `${text(v)} °F is ${c} °C`).toBe(exact);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('kPa: against any blood pressure threshold of 20-200 mmHg', () => {
    fc.assert(
      fc.property(
        around(fc.integer({ min: 20, max: 200 }), (t) => (t * 133.322387415) / 1000, 0, 40),
        ([mmHg, v]) => {
          // kPa x 1000 / 133.322387415 (1 mmHg in Pa, by definition; docs/interfaces.md) against mmHg, in integers:
          // digits x 10^12 against mmHg x 133322387415 x 10^places.
          const exact = sign(v.digits * 10n ** 12n - BigInt(mmHg) * 133322387415n * 10n ** BigInt(v.places));
          const c = converted('vitals.meanArterialPressure', Number(text(v)), 'kPa');
          expect(sign(c - mmHg), `${text(v)} kPa is ${c} mmHg`).toBe(exact);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('percent: against any FiO2 threshold of 0.21-1.00', () => {
    fc.assert(
      fc.property(
        around(fc.integer({ min: 21, max: 100 }), (t) => t, 21, 100),
        ([hundredths, v]) => {
          const exact = sign(v.digits - BigInt(hundredths) * 10n ** BigInt(v.places));
          const c = converted('oxygen.fio2', Number(text(v)), '%');
          expect(sign(c - hundredths / 100), `${text(v)} % is ${c}`).toBe(exact);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('gives the value as the formula does, without floating-point noise', () => {
    expect(converted('vitals.temperatureC', 101.3, '[degF]')).toBe(38.5);
    expect(converted('vitals.temperatureC', 100.4, '[degF]')).toBe(38);
    expect(converted('vitals.meanArterialPressure', 8.66, 'kPa')).toBe(64.9553324682);
    // 1 kPa is 7.500615758 mmHg: x 7.50062 (rounded) put 11.3324 kPa at 85.00003 mmHg, on a patient's threshold of 85.
    expect(converted('vitals.meanArterialPressure', 11.3324, 'kPa')).toBe(84.9999780211);
    expect(converted('oxygen.fio2', 39.996, '%')).toBe(0.39996);
    expect(converted('oxygen.fio2', 35, '%')).toBe(0.35);
    expect(converted('enrolment.weightKg', 154, '[lb_av]')).toBe(69.85322498);
  });
});

// A refused unit's text said one unit per system ("use /min (MDC_DIM_BEAT_PER_MIN 264864)") where the table takes
// more ({beats}/min; kPa's MDC codes): a sender told to use /min when it sent {beats}/min wrongly was not told it could.
describe('a refused unit names every unit the table takes for the field', () => {
  it('each UCUM code, MDC number and MDC reference id, in each system', () => {
    for (const [field, rule] of Object.entries(UNIT_RULES)) {
      const units = [...Object.keys(rule.ucum), ...Object.keys(rule.mdc), ...Object.keys(rule.mdcRefId)];
      for (const sent of [{ ucum: 'x' }, {}]) {
        const r = toContractUnit(field as keyof typeof UNIT_RULES, 1, sent);
        expect(r.ok).toBe(false);
        const problem = r.ok ? '' : r.problem;
        for (const unit of units) expect([field, problem]).toEqual([field, expect.stringContaining(unit)]);
      }
    }
  });

  it('says them by system', () => {
    expect(toContractUnit('vitals.heartRate', 80, { ucum: 'bpm' })).toEqual({
      ok: false,
      problem:
        'unit "bpm" is not a unit for vitals.heartRate (use UCUM /min, {beats}/min or {beat}/min; MDC 264864 MDC_DIM_BEAT_PER_MIN)',
    });
    expect(toContractUnit('vitals.systolicBP', 80, {})).toEqual({
      ok: false,
      problem:
        'no unit: a vitals.systolicBP value needs one (UCUM mm[Hg] or kPa; MDC 266016 MDC_DIM_MMHG or 265987 MDC_DIM_KILO_PASCAL); it is never guessed',
    });
  });
});

describe('a blood pressure sent in kPa grades as the rules say', () => {
  // Fever, then a MAP of 8.66 kPa (64.96 mmHg < 65) on two consecutive readings: hypotension without a vasopressor,
  // CRS grade 2 (ASTCT). It was 65.0 mmHg after the conversion's rounding: grade 1.
  const oru = (id: string, at: string, map: string) =>
    [
      `MSH|^~\\&|GW|ICU4|CRS|HOSP|${at}||ORU^R01^ORU_R01|${id}|P|2.6`,
      'PID|||P-KPA^^^HOSP^MR',
      `OBR|1|${id}^GW|${id}^GW|182777000^monitoring of patient^SCT|||${at}`,
      `OBX|1|NM|150344^MDC_TEMP^MDC|1.1.1.1|38.6|268192^MDC_DIM_DEGC^MDC|||||F|||${at}`,
      `OBX|2|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.1.1.2|${map}|265987^MDC_DIM_KILO_PASCAL^MDC|||||F|||${at}`,
    ].join('\r');

  const grade = (map: string) => {
    const config = resolveConfig({ scheme: 'astct2019' });
    if (!config.ok) throw new Error(config.errors.join('; '));
    const replay = new Replay(config.config);
    const enrol = {
      messageId: 'enrol',
      patientId: 'P-KPA',
      observedAt: '2026-01-10T07:00:00Z',
      source: { deviceId: 'ehr', kind: 'ehr' },
      enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', weightKg: 70, bed: 'B-1' },
    };
    const events: OutputEvent[] = [...replay.line(JSON.stringify(enrol), 1)];
    for (const [i, at] of ['20260110080000+0000', '20260110080500+0000'].entries()) {
      const r = translatePcd01(oru(`MSG-${i}`, at, map));
      if (!r.ok) throw new Error('not translated');
      expect(r.problems).toEqual([]);
      for (const t of r.translated) events.push(...replay.line(JSON.stringify(t.message), i + 2));
    }
    const last = events.filter((e) => e.type === 'assessment').at(-1) as Extract<OutputEvent, { type: 'assessment' }>;
    return last.crsGrade;
  };

  it('8.66 kPa (64.96 mmHg) is hypotension: grade 2; 8.67 kPa (65.03 mmHg) is not: grade 1', () => {
    expect(grade('8.66')).toBe(2);
    expect(grade('8.67')).toBe(1);
  });
});

describe('floating-point noise (withoutFloatNoise): pinned by a mutation run', () => {
  it('is removed where it sits in the 16th significant digit too', () => {
    // (91.22 - 32) x 5/9 is 32.900000000000006 and 10 x 0.45359237 is 4.535923700000001: 16 digits keep the noise.
    expect(converted('vitals.temperatureC', 91.22, '[degF]')).toBe(32.9);
    expect(converted('vitals.temperatureC', 89.78, '[degF]')).toBe(32.1);
    expect(converted('enrolment.weightKg', 10, '[lb_av]')).toBe(4.5359237);
  });
});
