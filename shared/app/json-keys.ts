// The keys of a JSON text: a key sent twice in one object (which JSON.parse hides), and a path as the answers name
// it. Read by the device routes (ingest.ts, FHIR) and every other JSON body (json-body.ts); a module of its own, so
// that a function reading a JSON body that is no device message (the ack function) loads no device contract.
import { quoted } from '#domain/printable.ts';

/**
 * The path of the first key that appears twice in one object of a JSON text, or undefined: JSON.parse keeps the
 * last silently (`{"heartRate":99,"heartRate":300}` was graded 300), and which one the sender meant would be a
 * guess. For a text JSON.parse took (it says nothing of one that is no JSON). One pass, strings skipped; a key with
 * an escape is compared decoded (`"\u0061"` is `"a"`); an object's keys are kept in a list, in a Set past 16.
 */
export function duplicateKey(text: string): (string | number)[] | undefined {
  const path: (string | number)[] = [];
  // Per open object its keys so far; per open array null.
  const keys: (string[] | Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let escaped = false;
      let j = i + 1;
      for (let d = text.charCodeAt(j); d !== 0x22; d = text.charCodeAt(++j))
        if (d === 0x5c) {
          escaped = true;
          j++; // the escaped character
        }
      if (expectKey) {
        const top = keys.length - 1;
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        const seen = keys[top]!;
        if (seen instanceof Set ? seen.has(key) : seen.includes(key)) return [...path.slice(0, top), key];
        if (seen instanceof Set) seen.add(key);
        // A few keys are searched in a list, more in a Set: most objects have a few.
        else if (seen.push(key) > 16) keys[top] = new Set(seen);
        path[top] = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      path.push('');
      keys.push([]);
      expectKey = true;
    } else if (c === 0x5b) {
      path.push(0);
      keys.push(null);
    } else if (c === 0x7d || c === 0x5d) {
      path.pop();
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      const top = keys.length - 1;
      if (keys[top] === null) (path[top] as number)++;
      else expectKey = true;
    }
  }
  return undefined;
}

/** The most characters of a key an answer quotes (a key may run to the body's limit). */
export const KEY_SHOWN = 40;

/**
 * A path as the answers name it: `vitals.heartRate`, `[2].vitals`, a key that is no plain name quoted, `["a b"]`;
 * a key longer than KEY_SHOWN quoted cut, `["kkk..."]`, plain or not (a plain one was echoed whole until 2026-12-06).
 * Quoted as a sender's value is (quoted): a format character escaped, `["\u202e"]` (shown raw until 2026-12-07).
 */
export function pathText(path: readonly (string | number)[]): string {
  return path
    .map((p, i) =>
      typeof p === 'number'
        ? `[${p}]`
        : p.length <= KEY_SHOWN && /^[A-Za-z_$][\w$]*$/.test(p)
          ? `${i === 0 ? '' : '.'}${p}`
          : `[${quoted(p, KEY_SHOWN)}]`,
    )
    .join('');
}

/** What a duplicated key is answered. */
export const TWICE = 'the key appears twice: which value is meant would be a guess; send it once';
