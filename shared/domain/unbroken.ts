// What a line of text people read must not break inside, on a 360 px phone: the acknowledge page
// (shared/app/ack-page.ts) and the on-call board (shared/web/board.js, sent the rule's source with every answer, so
// that the two keep one rule). Read at night, a split read as two things: "fever 39.1" / "°C", "at 2026-12-" /
// "06 17:45 CET", "MAP" / "< 65", "1-" / "2 doses", "24" / "h" (until 2026-12-06).

const NUMBER = String.raw`\d+(?:\.\d+)?`;
const UNIT = String.raw`(?:°C|mmHg|mcg\/kg\/min|mcg\/min|mg\/kg|mg|kg|L\/min|%|doses?|min|h|s)(?![\w/])`;

/**
 * A time with its zone (`2026-12-06 03:12 CET`, `GMT+5:30`); a comparison with the word it is of and any unit
 * (`MAP < 65`, `systolic < 90`, `>= 0.4`, `< 30 kg`); an FiO2 (`FiO2 0.45`); a value or a range with its unit (`39.1 °C`, `8 mg/kg`,
 * `1-2 doses`, `24 h`). Global: each match is one piece to keep whole. Its source is what the board is sent.
 */
export const UNBROKEN = new RegExp(
  [
    String.raw`\d{4}-\d\d-\d\d \d\d:\d\d(?: [A-Z][A-Za-z0-9+:-]*)?`,
    // Each starts where a word or number does (\b, no digit or point before): linear in the text, not quadratic
    // in a long run of letters or digits (50,000 took 1.1 s).
    String.raw`(?:\b[A-Za-z][A-Za-z0-9]* )?[<>]=? ${NUMBER}(?: ${UNIT})?`,
    `FiO2 ${NUMBER}`,
    String.raw`(?<![\d.])${NUMBER}(?:-${NUMBER})? ${UNIT}`,
  ].join('|'),
  'g',
);

/** Text as pieces: those to keep whole (`keep`) and the rest, in order; joined, the text as it was. */
export function unbrokenPieces(text: string): { text: string; keep: boolean }[] {
  const out: { text: string; keep: boolean }[] = [];
  let from = 0;
  for (const m of text.matchAll(UNBROKEN)) {
    if (m.index > from) out.push({ text: text.slice(from, m.index), keep: false });
    out.push({ text: m[0], keep: true });
    from = m.index + m[0].length;
  }
  if (from < text.length) out.push({ text: text.slice(from), keep: false });
  return out;
}
