// Printable text on one line: the rule of the contract's labels (bed, ward, product) and of the names and reasons
// people type on the board and the acknowledge page. No zod here: the functions that only check a name (the ack
// function) do not build the device-message schema for it.

/** A character's code point as Unicode writes it: 200D, 1F469. */
const hex = (c: string) => c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
/**
 * The most characters of a sender's value a device answer (FHIR, HL7 v2) quotes: a value may run to the body's
 * limit, 1 MiB. The CLI's own messages quote what an operator typed whole (their own limits cut it).
 */
export const SENDER_MOST = 64;
/**
 * The most problems an answer names for one resource (FHIR) or one message (JSON), the rest counted ("and 7 more"):
 * a body's problems are as many as its parts, and each named one costs its words.
 */
export const PROBLEMS_NAMED = 20;

/**
 * `t` as an error message quotes what was given: as JSON writes it (a control character escaped), and a format
 * character, a line or paragraph separator or a C1 control escaped too ("\u202e"): a bidirectional override would
 * reorder the message itself (the operator's terminal line), a zero-width character would not be seen in it. At
 * most `most` characters of it, then "..." (a device answer echoed a 5,000-character resourceType until 2026-12-07,
the JSON routes a 5,000-character unknown key).
 * What is no string is said by its kind: a number, true or null as JSON writes it, "a list", "an object".
 */
export const quoted = (t: unknown, most = Number.POSITIVE_INFINITY): string => {
  if (typeof t !== 'string') {
    if (Array.isArray(t)) return 'a list';
    return typeof t === 'object' && t !== null ? 'an object' : String(t);
  }
  // Cut between code points, never inside a surrogate pair (half of one is shown as its escape).
  const cut = t.length > most ? t.slice(0, /[\uD800-\uDBFF]/.test(t[most - 1]!) ? most - 1 : most) : t;
  const shown = JSON.stringify(cut).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u${hex(c).toLowerCase()}`);
  return cut === t ? shown : `${shown.slice(0, -1)}..."`;
};

/**
 * A message or a table cell as the CLI prints it on one line: every control or format character (and line or
 * paragraph separator) escaped, "\u202e". For text the CLI did not write itself: Node's own messages about an
 * option (they quote it raw), what a store holds (a hand-edited DynamoDB item).
 */
export const inline = (text: string): string =>
  text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u${hex(c).toLowerCase()}`);

/** The first character of `input` that `re` (one character) matches, as "U+200D". */
const codePoint = (input: unknown, re: RegExp) => `U+${hex(String(input).match(re)?.[0] ?? '?')}`;

const JOINER_NAMES: Record<string, string> = {
  '\u200c': 'zero-width non-joiner',
  '\u200d': 'zero-width joiner',
};

// Printable text on one line (labels; names and reasons typed on the board and the acknowledge page). A control
// character (a line break) starts a line of its own; a format character (a bidirectional override, a zero-width
// space) can hide or reorder text. The zero-width non-joiner and joiner (U+200C, U+200D) only shape the characters
// either side (Persian words, Indic half forms, emoji sequences): taken between two characters beyond ASCII, where
// they do that; next to ASCII, at an end or doubled they join nothing and would only make a text look like another.
export const NO_CONTROL = /^\P{Cc}*$/u;
export const NO_FORMAT = /^(?:\P{Cf}|[\u200c\u200d])*$/u;
export const JOINERS_JOIN =
  /^(?:[^\u200c\u200d]|(?<=[^\x00-\x7f\u200c\u200d])[\u200c\u200d](?=[^\x00-\x7f\u200c\u200d]))*$/u;
// A line or paragraph separator (U+2028, U+2029) is neither a control nor a format character, but starts a line of
// its own as a line break does.
export const NO_SEPARATOR = /^[^\u2028\u2029]*$/u;
export const separatorProblem = (t: string) =>
  `holds a line or paragraph separator (${codePoint(t, /[\u2028\u2029]/u)}), which starts a line of its own`;
export const controlProblem = (t: string) => `contains a control character (${codePoint(t, /\p{Cc}/u)})`;
export const formatProblem = (t: string) =>
  `contains a format character (${codePoint(t, /(?![\u200c\u200d])\p{Cf}/u)}), which can hide or reorder text`;
export function joinerProblem(t: string, what: string): string {
  const at = t.match(/(?:^|[\x00-\x7f\u200c\u200d])([\u200c\u200d])|([\u200c\u200d])(?:$|[\x00-\x7f])/u);
  const c = at?.[1] ?? at?.[2] ?? '\u200d';
  return `holds a ${JOINER_NAMES[c]} (${codePoint(c, /./u)}) where it joins nothing (next to ASCII, or at an end): it would only make the ${what} look like another`;
}

/**
 * Why `t` is not printable text on one line ("contains a control character (U+000A)"), or undefined when it is:
 * the labels' rule, for the names and reasons people type. `what` is what a misplaced joiner would disguise.
 */
export function unprintable(t: string, what: string): string | undefined {
  if (!NO_CONTROL.test(t)) return controlProblem(t);
  if (!NO_FORMAT.test(t)) return formatProblem(t);
  if (!NO_SEPARATOR.test(t)) return separatorProblem(t);
  if (!JOINERS_JOIN.test(t)) return joinerProblem(t, what);
  return undefined;
}
