// ER7 text helpers for what this project writes (ACKs, the simulator's messages): always the default delimiters.

/** Escapes text for a field written with |^~\& (and keeps it on one line). */
export function escapeHl7(text: string): string {
  return text
    .replace(/\\/g, '\\E\\')
    .replace(/\|/g, '\\F\\')
    .replace(/\^/g, '\\S\\')
    .replace(/&/g, '\\T\\')
    .replace(/~/g, '\\R\\')
    .replace(/[\r\n\x0b\x1c]+/g, ' ');
}

/** An instant as an HL7 DTM in UTC with its offset: 20260110080000+0000 (milliseconds when there are some). */
export function hl7Time(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const base = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return `${base}${d.getUTCMilliseconds() ? `.${p(d.getUTCMilliseconds(), 3)}` : ''}+0000`;
}
