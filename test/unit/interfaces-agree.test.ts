// A random course sent through the hospital interfaces (vitals as HL7 v2 PCD-01 ORU^R01, everything else as FHIR
// R4 Bundles) grades exactly as the same course sent as contract JSON, in both schemes. One JSON message becomes
// several interface messages (an HL7 message, one FHIR message per source kind, the infusion Procedure at its own
// time), so pages may differ in timing (rules 1.1 item 1); the grades may not: compared after the last message of
// each instant, and at the end.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG, configFor, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { course, permutation } from '#test/support/arbitraries.ts';
import { interfaceItems, translateItem, type InterfaceItem } from '#test/support/interfaces.ts';

const NOW = Date.parse('2027-01-01T00:00:00Z');
const SCHEMES = [DEFAULT_CONFIG, configFor('lee2014')];
const SECTIONS = ['enrolment', 'vitals', 'oxygen', 'vasopressors', 'medications', 'neuro', 'organToxicity', 'labs'];

/**
 * The course reduced to what both interfaces carry, the same for both sides:
 * - no `enrolment.hypotension`: per-patient thresholds have no HL7 or FHIR form (docs/interfaces.md maps only the
 *   infusion Procedure, the weight and the Encounter's bed and ward to `enrolment`);
 * - FiO2 to 2 decimals: the FHIR encoder writes it as a percent with 2 decimals;
 * - no `vasopressors: []` while no drug is known to infuse: FHIR says "none" only as stopped administrations of
 *   the drugs that were infusing, and with none there is nothing to write (FhirEncoder throws).
 * Decided once per messageId, in charting order, so that a duplicate stays an exact copy of its original.
 */
function carried(ordered: DeviceMessage[]): DeviceMessage[] {
  const decided = new Map<string, DeviceMessage | null>();
  let infusing = false;
  const out: DeviceMessage[] = [];
  for (const m of ordered) {
    if (!decided.has(m.messageId)) {
      const c = structuredClone(m);
      if (c.enrolment) delete c.enrolment.hypotension;
      if (c.oxygen?.fio2 !== undefined) c.oxygen.fio2 = Math.round(c.oxygen.fio2 * 100) / 100;
      if (c.vasopressors?.length === 0 && !infusing) delete c.vasopressors;
      if (c.vasopressors) infusing = c.vasopressors.length > 0;
      decided.set(m.messageId, SECTIONS.some((s) => s in c) ? c : null);
    }
    const c = decided.get(m.messageId);
    if (c) out.push(structuredClone(c));
  }
  return out;
}

interface Arrival {
  /** The observedAt of the JSON message it came from. */
  instant: string;
  message: DeviceMessage;
}

/**
 * Each message as HL7 v2 and FHIR items, charted in order by one encoder; a duplicate is resent as the very items
 * of its original (a resend is the same bytes, not a new charting). Each item translated as the servers do.
 */
function asItems(messages: DeviceMessage[]): { instant: string; item: InterfaceItem }[] {
  const fhir = new FhirEncoder();
  const sent = new Map<string, InterfaceItem[]>();
  return messages.flatMap((m) => {
    const items = sent.get(m.messageId) ?? interfaceItems(m, fhir);
    sent.set(m.messageId, items);
    return items.map((item) => ({ instant: m.observedAt, item }));
  });
}

function translated(items: { instant: string; item: InterfaceItem }[]): Arrival[] {
  return items.flatMap(({ instant, item }) => {
    const t = translateItem(item, NOW);
    expect(t.problems, `${item.format} of ${item.from}`).toEqual([]);
    return t.messages.map((message) => ({ instant, message }));
  });
}

/** The (CRS, ICANS) grades after the last arrival of each instant, in order of first arrival, and at the end. */
function grades(arrivals: Arrival[], cfg: GradingConfig): { byInstant: string[]; last: string } {
  const replay = new Replay(cfg);
  const after = new Map<string, string>();
  let current = '';
  arrivals.forEach(({ instant, message }, i) => {
    for (const e of replay.line(JSON.stringify(message), i + 1)) {
      if (e.type === 'rejected') expect.fail(`${message.messageId} rejected: ${e.errors.join('; ')}`);
      if (e.type === 'assessment') current = `crs ${e.crsGrade} icans ${e.icansGrade}`;
    }
    after.set(instant, current);
  });
  return { byInstant: [...after].map(([instant, g]) => `${instant} ${g}`), last: current };
}

/**
 * course() with epinephrine in dopamine's place in some courses: course()'s pumps never name epinephrine, whose
 * RxNorm code and Lee high-dose threshold are its own.
 */
const courses = (patientId: string) =>
  fc.tuple(course(patientId, 20), fc.boolean()).map(([ordered, epinephrine]) =>
    epinephrine
      ? ordered.map((m) =>
          m.vasopressors
            ? {
                ...m,
                vasopressors: m.vasopressors.map((v) =>
                  v.drug === 'dopamine' ? { ...v, drug: 'epinephrine' as const } : v,
                ),
              }
            : m,
        )
      : ordered,
  );

const asJson = (messages: DeviceMessage[]): Arrival[] =>
  messages.map((message) => ({ instant: message.observedAt, message }));

describe('a course through HL7 v2 and FHIR grades as its JSON does', () => {
  it('in observedAt order: the same grades after every instant, in both schemes', () => {
    fc.assert(
      fc.property(courses('IA'), (ordered) => {
        const messages = carried(ordered);
        const viaInterfaces = translated(asItems(messages));
        for (const cfg of SCHEMES) {
          const a = grades(viaInterfaces, cfg);
          const b = grades(asJson(messages), cfg);
          expect(a.byInstant, cfg.scheme).toEqual(b.byInstant);
          expect(a.last, cfg.scheme).toBe(b.last);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('in any arrival order of the interface messages: the same final grades as the JSON in observedAt order', () => {
    fc.assert(
      fc.property(courses('IB'), fc.array(fc.integer(), { minLength: 100, maxLength: 100 }), (ordered, keys) => {
        const messages = carried(ordered);
        const items = asItems(messages);
        const shuffled = translated(permutation(items.length, keys).map((i) => items[i]!));
        for (const cfg of SCHEMES) {
          expect(grades(shuffled, cfg).last, cfg.scheme).toBe(grades(asJson(messages), cfg).last);
        }
      }),
      { numRuns: 100 },
    );
  });
});
