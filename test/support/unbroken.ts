// What a phone must draw on one line (the acknowledge page and the board, shared/domain/unbroken.ts), written here
// again from what clinicians read split (not from that rule): a time with its zone, a comparison with its word
// ("MAP < 65", ">= 0.4"), an FiO2, a value or a range with its unit ("39.1 °C", "1-2 doses", "24 h").
import type { Page } from 'playwright-core';
import type { DeviceMessage } from '#domain/contract.ts';

const PIECES = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d [A-Z][A-Za-z0-9+:-]*|(?:[A-Za-z]\w* )?[<>]=? \d+(?:\.\d+)?|FiO2 \d+(?:\.\d+)?|\d+(?:\.\d+)?(?:-\d+)? (?:°C|mmHg|mcg\/kg\/min|mg\/kg|mg|kg|L\/min|%|doses|dose|min|h)(?![\w\/])`;

/**
 * Every such piece of text under `selector` (each text node, so a piece split across elements is not seen): its
 * text, the number of lines it is drawn on, and whether it is drawn unbreakable (white-space: nowrap), which makes
 * the check independent of where a line happens to end at this width.
 */
export function pieces(page: Page, selector: string): Promise<{ text: string; lines: number; nowrap: boolean }[]> {
  // A string: the tests are typed without the DOM.
  return page.evaluate(`(() => {
    const re = new RegExp(${JSON.stringify(PIECES)}, 'g');
    const found = [];
    for (const root of document.querySelectorAll(${JSON.stringify(selector)})) {
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.parentElement || n.parentElement.getClientRects().length === 0) continue; // not drawn
        for (const m of n.data.matchAll(re)) {
          const r = document.createRange();
          r.setStart(n, m.index);
          r.setEnd(n, m.index + m[0].length);
          const lines = new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size;
          found.push({ text: m[0], lines, nowrap: getComputedStyle(n.parentElement).whiteSpace === 'nowrap' });
        }
      }
    }
    return found;
  })()`);
}

/** Whether the page scrolls sideways (wider than the screen). */
export const scrollsSideways = (page: Page) =>
  page.evaluate('document.documentElement.scrollWidth > document.documentElement.clientWidth') as Promise<boolean>;

/**
 * A course that pages CRS 2, then 3, in the last half hour: its reasons and steps hold a time of each kind, "38.8 °C",
 * "MAP < 65", "0.1 mcg/kg/min", "4 L/min", "1-2 doses" (the CRS 2 steps) and "24 h" (the tocilizumab advice).
 */
export function narrowCourse(patientId: string, enrolment: DeviceMessage['enrolment'] = {}): DeviceMessage[] {
  const t = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
  const base = { patientId, source: { deviceId: 'mon-1', kind: 'monitor' as const } };
  return [
    {
      ...base,
      messageId: `${patientId}-enrol`,
      observedAt: t(30),
      source: { deviceId: 'ehr-1', kind: 'ehr' },
      enrolment: { therapy: 'car-t', infusedAt: '2026-01-08T08:00:00Z', bed: 'H4-12', weightKg: 70, ...enrolment },
    },
    { ...base, messageId: `${patientId}-1`, observedAt: t(20), vitals: { temperatureC: 38.8, systolicBP: 84 } },
    { ...base, messageId: `${patientId}-2`, observedAt: t(15), vitals: { systolicBP: 82, meanArterialPressure: 60 } },
    {
      ...base,
      messageId: `${patientId}-3`,
      observedAt: t(10),
      vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }],
      oxygen: { device: 'nasal_cannula', flowLpm: 4 },
    },
  ];
}
