// How an answer names the unknown keys of an object (a misspelt field, with the field it was likely meant to be):
// the contract's words, for the device message (contract.ts) and every other JSON a route reads (json-body.ts, FHIR
// elements). A module of its own, without zod: the ack function words its body's unknown fields so, and importing
// the contract built the whole device-message schema at each of its cold starts (docs/cost.md "Cold start").
import { quoted, SENDER_MOST } from './printable.ts';

/** Edit distance, to suggest the field a misspelt key was meant to be. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/**
 * The unknown keys named in one problem; the rest are counted. 100 messages of 800 unknown fields each (720 KB) were
 * answered with 14 MB, each field named with the list of those allowed: past Lambda's 6 MB response (a 500 on AWS).
 */
const UNKNOWN_KEYS_NAMED = 5;

/** Each unknown key, with the nearest of `candidates` (a FHIR choice spelt out, `valueQuantity`) and the `known`. */
export function unknownKeys(keys: string[], known: string[], what: string, candidates = known): string {
  const more = keys.length - UNKNOWN_KEYS_NAMED;
  return keys
    .slice(0, UNKNOWN_KEYS_NAMED)
    .map((key) => {
      const best = candidates.map((k) => [k, distance(key, k)] as const).sort((a, b) => a[1] - b[1])[0];
      const suggest = best && best[1] <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best[0]}"?)` : '';
      // Quoted as a value is: a key may run to the body's limit (one of 5,000 characters was echoed whole until
      // 2026-12-07) and hold a bidirectional override.
      return `unknown ${what} ${quoted(key, SENDER_MOST)}${suggest}; allowed: ${known.join(', ')}`;
    })
    .concat(more > 0 ? [`and ${more} more unknown (not named)`] : [])
    .join('; ');
}
