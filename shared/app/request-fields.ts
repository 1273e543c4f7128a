// A board request's fields: one that the request does not take is refused naming it, never ignored (a misspelt
// field would otherwise go unnoticed). The monitoring end and resumption (monitoring.ts) and silences (silence.ts).

/** The errors for each field of `body` that is not among `fields`, none when every one is known. */
export function unknownFields(body: Record<string, unknown>, fields: readonly string[]): string[] {
  const takes = fields.length > 0 ? `only ${fields.map((f) => `"${f}"`).join(', ')}` : 'no fields';
  return Object.keys(body)
    .filter((k) => !fields.includes(k))
    .map((k) => `${k}: unknown field (this request takes ${takes})`);
}
