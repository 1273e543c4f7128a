// Numbers given on the command line, read one way by every command: plain decimal digits (a fraction only where the
// flag takes one), within the flag's range, or refused naming the flag, its range and what was given. Number()
// alone read "" as 0 (a random port), "0x10" as 16, "1e3" as 1000 and took 1e308.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { inline, quoted } from '#domain/printable.ts';

/** A flag's number: its range, and whether it takes a fraction (--speed 1.5). */
export interface NumberRange {
  min: number;
  max: number;
  fraction?: boolean;
}

/**
 * How a command that reads HL7 v2 and FHIR reads the site's time zone, identifiers and drug codes: the same four flags
 * on `crs serve`, `crs serve --backend aws` and `crs replay` (docs/interfaces.md).
 */
export const INTERFACE_FLAGS = {
  'hl7-zone': { type: 'string' },
  'hl7-patient-authority': { type: 'string' },
  'fhir-patient-system': { type: 'string' },
  'fhir-drug-codes': { type: 'string' },
} as const;

/** The ports a server listens on (0: any free port). */
export const LISTEN_PORT: NumberRange = { min: 0, max: 65535 };
/** The ports a client connects to. */
export const CONNECT_PORT: NumberRange = { min: 1, max: 65535 };

/**
 * What was given, as the CLI shows it: quoted and escaped (no raw control or format character: a bidirectional
 * override would reorder the operator's terminal line), cut at 80 characters.
 */
export function shown(text: string): string {
  return `${quoted(text.slice(0, 80))}${text.length > 80 ? `... (${text.length} characters)` : ''}`;
}

// `inline` lives with the other printable rules (shared/app/token-expiry.ts words its findings with it too).
export { inline };

/**
 * The number `text` gives for --`flag`, or the error saying why it gives none (the caller throws it as its own
 * usage error: exit 2).
 */
export function parseNumberFlag(
  flag: string,
  text: string,
  range: NumberRange,
): { ok: true; value: number } | { ok: false; error: string } {
  const value = (range.fraction ? /^\d{1,15}(\.\d{1,15})?$/ : /^\d{1,15}$/).test(text) ? Number(text) : Number.NaN;
  if (value >= range.min && value <= range.max) return { ok: true, value };
  return {
    ok: false,
    error: `--${flag} must be ${range.fraction ? 'a decimal number' : 'a whole number'} from ${range.min} to ${range.max} (got ${shown(text)})`,
  };
}

/** parseNumberFlag for an optional flag, throwing `fail(error)`: the fallback when the flag is not given. */
export function numberFlag<T extends number | undefined>(
  flag: string,
  text: string | undefined,
  range: NumberRange,
  fallback: T,
  fail: (error: string) => Error,
): number | T {
  if (text === undefined) return fallback;
  const r = parseNumberFlag(flag, text, range);
  if (!r.ok) throw fail(r.error);
  return r.value;
}

/**
 * Why `text` can be no id the CLI printed (a TOKEN_ID, an outbox record's ID), or undefined when it can: 1 to `max`
 * characters, none of them a space, a control or an invisible one. What is refused is named escaped.
 */
export function idArgumentError(what: string, text: string, max: number): string | undefined {
  if (text.length >= 1 && text.length <= max && /^[^\p{C}\s]+$/u.test(text)) return undefined;
  return `${what} must be an id as it was printed: 1-${max} characters, no space or control character (got ${shown(text)})`;
}

// Node's hint after an unknown option where a command takes positionals (replay FILE, token rotate TOKEN_ID): three
// lines on a terminal, its quote left open. Cut at its first sentence: only an option holding that text is cut short.
const POSITIONAL_HINT = /^(Unknown option '[\s\S]*?')\. To specify a positional argument starting with [\s\S]*$/;

// Node's hint after a value that starts with a dash (--seed -1), in three lines: escaped, its line ends were printed
// as "\u000a". Its lines joined; the option quoted is one the command defines, never text as given.
const AMBIGUOUS =
  /^(Option '[^'\n]*' argument is ambiguous\.)\n(Did you forget [^\n]*)\n(To specify an option [^\n]*)$/;

/**
 * util.parseArgs, its errors said as every command says them: "Unknown option '--x'" without Node's hint (the
 * commands taking positionals added it, the others did not), escaped (Node quotes what was given raw). Thrown with
 * Node's code (ERR_PARSE_ARGS_...): each command answers it as its own usage error, exit 2.
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
    const message = e.message.replace(POSITIONAL_HINT, '$1').replace(AMBIGUOUS, '$1 $2 $3');
    throw Object.assign(new Error(inline(message)), { code: e.code });
  }
}

/**
 * Whether `word` is one of a command's sub-commands (`list`, the words each command exports: the test of the docs'
 * commands, test/unit/docs-commands.test.ts, reads the same lists).
 */
export function isOneOf<T extends string>(list: readonly T[], word: string | undefined): word is T {
  return (list as readonly (string | undefined)[]).includes(word);
}
