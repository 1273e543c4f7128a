// Which grading settings a patient was graded under: an id of the settings that decide a grade, and the names of
// the settings two configurations differ in (2026-12-07). A module of its own, without zod: the grade function loads
// it at every cold start (docs/cost.md "Cold start").
import type { GradingConfig } from './config.ts';
import { DEFAULT_CONFIG } from './config-defaults.ts';

/**
 * The parts of the configuration that do not decide a grade: who is paged and how (routing, paging), what a page
 * advises (actions, tocilizumab) and the zone its times are shown in (site). Every other key decides a grade or
 * when it is paged (holdMinutes), and is in the grading settings' id (gradingSettingsId).
 */
const NOT_GRADING: ReadonlySet<string> = new Set(['routing', 'paging', 'actions', 'tocilizumab', 'site']);

/**
 * JSON with every object's keys in order: the same settings give the same text, whatever order a file gave them
 * (the emulator's synthesis cache keys its options with it too).
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** FNV-1a (32 bits) of a text, 8 hex digits: an id to tell settings apart, not a secret. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const settingsIds = new WeakMap<GradingConfig, string>();

/**
 * The id of the settings that decide a grade (every key but NOT_GRADING's), 8 hex digits: the same for the same
 * settings, whatever else changed. A patient's state keeps the id it was last graded under (PatientState.gradedUnder),
 * so that the message graded first under other settings says so (its audit trail, its page: reducer.ts), and the
 * audit trail tells which settings graded each assessment (2026-12-07). Worked out once per configuration object.
 */
export function gradingSettingsId(config: GradingConfig): string {
  let id = settingsIds.get(config);
  if (id === undefined) {
    const grading = Object.fromEntries(Object.entries(config).filter(([k]) => !NOT_GRADING.has(k)));
    settingsIds.set(config, (id = fnv1a(canonicalJson(grading))));
  }
  return id;
}

/**
 * The settings two configurations differ in, by name (`scheme`, `hypotension.mapBelow`, `paging.policies.icu.levels`):
 * what a start-up line says changed. Names only, never a value (a protocol text may be long). A list is one setting.
 */
export function changedSettings(before: unknown, after: unknown, prefix = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(before) || !isObject(after))
    return canonicalJson(before) === canonicalJson(after) ? [] : [prefix || 'configuration'];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((k) => changedSettings(before[k], after[k], prefix ? `${prefix}.${k}` : k));
}

/**
 * What a server says at its start of the configuration it grades under, and of the patients last graded under other
 * settings (`gradedUnder`: how many patients each settings id graded last; null: a state stored before 2026-12-07,
 * which names none): ids, counts and setting names only, never a value or a patient. Such a patient is graded under
 * the settings of now at its next message, whose grade change then says so; until then its board and its grades stay
 * those of its last message (docs/runbook.md, "Changing the grading or paging configuration").
 */
export function settingsAtStart(config: GradingConfig, gradedUnder: ReadonlyMap<string | null, number>): string {
  const id = gradingSettingsId(config);
  const own = changedSettings(DEFAULT_CONFIG, config);
  const head = `grading settings ${id} (scheme ${config.scheme}; ${own.length === 0 ? 'the defaults' : `set other than the defaults: ${own.join(', ')}`})`;
  const others = [...gradedUnder]
    .filter(([k, n]) => k !== id && n > 0)
    .sort(([a], [b]) => String(a).localeCompare(String(b)));
  if (others.length === 0) return head;
  const total = others.reduce((sum, [, n]) => sum + n, 0);
  const which = others.map(([k, n]) => `${k ?? 'not recorded'}: ${n}`).join(', ');
  return `${head}; ${total} patient(s) last graded under other settings (${which}): each is graded under these at its next message, and a grade change it makes then says so`;
}
