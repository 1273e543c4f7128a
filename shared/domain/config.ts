// Grading configuration: every threshold, window, hold time, route and action text, with the defaults that
// ../docs (crs-rules.md) fixes. A deployment overrides any part with a JSON file (see loadConfig / README).
import { hoursSetting, minutesSetting, pageText, pagingConfigSchema, teamList } from './paging-schema.ts';
import { DEFAULT_CONFIG } from './config-defaults.ts';
import { isTimeZone, timeZoneProblem } from './time.ts';
import { MEDICATION_DRUGS, RANGES } from './vocabulary.ts';
import * as z from './zod.ts';

export const SCHEMES = ['astct2019', 'lee2014'] as const;

/** The most steps of the protocol a grade's page carries, and characters a step (pageText). */
const ACTION_STEPS = 20;
const ACTION_STEP_CHARACTERS = 500;
export type Scheme = (typeof SCHEMES)[number];
export const TEAMS = ['hematology', 'icu', 'neurology', 'radiology'] as const;
export type Team = (typeof TEAMS)[number];
export type Condition = 'crs' | 'icans';

/**
 * A threshold on a measurement, within what a message may carry of it (RANGES): one outside graded every patient
 * alike (a systolicBelow of 900 made everyone hypotensive, 9 no one).
 */
function within([lo, hi]: readonly [number, number]) {
  return z
    .number()
    .check(z.refine((v) => v >= lo && v <= hi, { error: (iss) => `${String(iss.input)} is outside ${lo}-${hi}` }));
}

/** A tocilizumab setting: positive, and not above the label's limit (crs-rules.md section 6). */
function labelAtMost(most: number, what: string) {
  return z
    .number()
    .check(
      z.positive(),
      z.lte(most, { error: (iss) => `${String(iss.input)} is above the tocilizumab label's ${most} ${what}` }),
    );
}

/**
 * The configuration's schema, built on first use: a deployment without overrides never validates (resolveConfig),
 * and building it would cost every function's cold start (docs/cost.md "Cold start").
 */
function buildGradingConfigSchema() {
  const teams = teamList(TEAMS);
  /** Teams per grade 1..4 (index 0 is grade 1). */
  const routeTable = z.tuple([teams, teams, teams, teams]);
  /** Action lines per grade 1..4. */
  const steps = z.array(pageText(ACTION_STEP_CHARACTERS)).check(
    z.maxLength(ACTION_STEPS, {
      error: (iss) => `${(iss.input as unknown[]).length} steps: at most ${ACTION_STEPS}`,
    }),
  );
  const actionTable = z.tuple([steps, steps, steps, steps]);
  const fio2 = within(RANGES.fio2);
  // Strict as every other part: a misspelt `units` was dropped, and the default unit compared with the site's dose.
  const highDose = z.strictObject({ dose: z.number().check(z.positive()), unit: z.enum(['mcg/min', 'mcg/kg/min']) });

  return z.strictObject({
    scheme: z.enum(SCHEMES),
    feverThresholdC: z.number().check(z.gte(37), z.lte(41)),
    feverWindowMinutes: minutesSetting().check(z.int()),
    /**
     * Interpretation: a temperature observed exactly `feverWindowMinutes` before the patient clock is in the window
     * ('inclusive'). Set 'exclusive' to leave it out.
     */
    feverWindowEdge: z.enum(['inclusive', 'exclusive']),
    hypotension: z.strictObject({
      systolicBelow: within(RANGES.systolicBelow),
      mapBelow: within(RANGES.mapBelow),
    }),
    /** De-escalation waits until the grade has stayed below the notified grade this long (patient clock). */
    holdMinutes: minutesSetting(true),
    /** ASTCT: nasal cannula at or below this flow is low-flow (grade 2); above it grade 3. */
    lowFlowMaxLpm: within(RANGES.flowLpm).check(z.positive()),
    /**
     * Interpretation: a nasal cannula with no flow documented is graded as low-flow (ASTCT grade 2, Lee: oxygen
     * requirement below 40 %) and the reasons say the flow was missing. Set to 'high' to grade it as high-flow.
     */
    nasalCannulaUnknownFlow: z.enum(['low', 'high']),
    /**
     * Interpretation: the fever waiver lasts for the rest of the episode, and an episode ends only when a new
     * enrolment with a later infusion time starts. Set a number of hours to also end it after that long at CRS 0.
     */
    episodeEndsAfterHoursAtGrade0: z.nullable(hoursSetting()),
    /**
     * Interpretation: the episode starts at the infusedAt of the enrolment observed last ('latest-observed'), so an
     * enrolment observed later with an older infusedAt (an EHR snapshot resending the first infusion after a
     * step-up dose) moves it back, and the earlier episode's fevers and masking drugs count again (the higher
     * grade). Set 'latest-infusion' to start it at the latest infusedAt of every enrolment accepted: it never moves
     * back, and only a later infusion starts a new episode.
     */
    episodeStart: z.enum(['latest-observed', 'latest-infusion']),
    /**
     * Interpretation: before any enrolment gives an infusion time, every fever is of the episode, so a masking
     * medication after one waives fever (false). Set true to allow no waiver until an infusion time is known (a
     * fever still grades CRS 1 either way).
     */
    waiverNeedsInfusionTime: z.boolean(),
    /**
     * Interpretation: a message dated ahead of its arrival (a device clock up to 5 minutes fast; more is refused) is
     * placed at its arrival ('arrival'), so that it cannot outrank the correction that follows it; its fever window,
     * episode start and waiver are then compared with its arrival. Set 'observedAt' to place it at its observedAt,
     * as the rules read (the grades depend on the set of messages alone, as in `crs replay`): a value dated ahead
     * then outranks, for up to 5 minutes, a correction observed before its time (docs/grading-rules.md section 1).
     */
    aheadOfArrival: z.enum(['arrival', 'observedAt']),
    /**
     * Drugs the contract names (medications[].drug): one it has no word for (paracetamol, for acetaminophen) would
     * never match a medication, and the waiver would silently never apply.
     */
    feverMaskingDrugs: z.array(z.enum(MEDICATION_DRUGS)),
    lee: z.strictObject({
      fio2Grade3: z.number().check(z.gte(0.21), z.lte(1)),
      highDose: z.strictObject({
        norepinephrine: highDose,
        dopamine: highDose,
        phenylephrine: highDose,
        epinephrine: highDose,
      }),
      /** FiO2 estimate by device when none is given; nasal cannula is 0.21 + perLpm x flow, capped. */
      fio2Estimate: z.strictObject({
        room_air: fio2,
        blow_by: fio2,
        /** At most what one litre can add to room air's 0.21. */
        nasalCannulaPerLpm: within([0, 1 - RANGES.fio2[0]]),
        nasalCannulaMax: fio2,
        simple_mask: fio2,
        non_rebreather: fio2,
        venturi: fio2,
        high_flow_nasal_cannula: fio2,
      }),
    }),
    routing: z.strictObject({ crs: routeTable, icans: routeTable }),
    // A site's protocol may advise less than the tocilizumab label, never more: the page computes a dose from these.
    tocilizumab: z.strictObject({
      mgPerKg: labelAtMost(8, 'mg/kg from 30 kg'),
      mgPerKgLowWeight: labelAtMost(12, 'mg/kg under 30 kg'),
      lowWeightBelowKg: labelAtMost(30, 'kg for the higher mg/kg'),
      maxDoseMg: labelAtMost(800, 'mg a dose'),
      repeatAfterHours: hoursSetting().check(
        z.gte(8, { error: (iss) => `${String(iss.input)} is more often than the label's every 8 h` }),
      ),
      max24h: labelAtMost(3, 'doses in 24 h').check(z.int()),
      maxTotal: labelAtMost(4, 'doses in all').check(z.int()),
      // crs-rules.md section 6 says "4 in total" without saying over what; the label counts a CRS event's doses, so a
      // site treating step-up (BiTE) episodes as separate events counts each episode's doses.
      totalPer: z.enum(['stay', 'episode']),
    }),
    actions: z.strictObject({
      crs: actionTable,
      icans: actionTable,
      icansWithoutCrs: steps,
      bispecificInterruptFromGrade: z.number().check(z.int(), z.gte(1), z.lte(4)),
      bispecificInterrupt: pageText(ACTION_STEP_CHARACTERS, { empty: true }),
      deEscalation: pageText(ACTION_STEP_CHARACTERS, { empty: true }),
    }),
    /** How many recent messageIds each patient remembers for de-duplication. */
    dedupeWindow: z.number().check(z.int(), z.gte(16), z.lte(5000)),
    /**
     * How many blood-pressure readings, and vasopressor sections, each patient keeps in observedAt order for the
     * hypotension rule; older ones are folded into the rule's state (docs/grading-rules.md, section 9).
     */
    bpHistory: z.number().check(z.int(), z.gte(2), z.lte(1000)),
    vasopressorHistory: z.number().check(z.int(), z.gte(2), z.lte(1000)),
    /**
     * How many febrile readings of the fever window each patient keeps at least (the latest; of those that have left
     * it, the latest 8 stay: the waiver may rest on one), besides every one in the window no later reading covers; a
     * correction lowering a kept one finds the readings it covered (docs/grading-rules.md).
     */
    feverHistory: z.number().check(z.int(), z.gte(2), z.lte(1000)),
    /** Escalation ladders, silences, acknowledge links and technical alerts (shared/domain/paging.ts). */
    paging: pagingConfigSchema(),
    site: z.strictObject({
      /**
       * The IANA zone (Europe/Paris) every time people read is shown in: pages, the acknowledge page, the board.
       * Machine-readable times (replay output, the webhook's JSON fields, the API) stay RFC 3339 UTC.
       */
      timeZone: z.string().check(
        z.refine(isTimeZone, {
          error: (iss) => `${JSON.stringify(iss.input)} ${timeZoneProblem(String(iss.input))}`,
        }),
      ),
    }),
  });
}
let gradingConfigSchema: ReturnType<typeof buildGradingConfigSchema> | undefined;
export type GradingConfig = z.infer<ReturnType<typeof buildGradingConfigSchema>>;
export { DEFAULT_CONFIG };

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (Array.isArray(over) || over === null || typeof over !== 'object') return over;
  if (base === null || typeof base !== 'object' || Array.isArray(base)) return over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  // Defined, not assigned: a file's "__proto__" (an own key once parsed) set the prototype, and was never refused.
  for (const [k, v] of Object.entries(over))
    Object.defineProperty(out, k, {
      value: merge(Object.hasOwn(out, k) ? out[k] : undefined, v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

const isEmptyObject = (v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

export type ConfigResult = { ok: true; config: GradingConfig } | { ok: false; errors: string[] };

/** Defaults overlaid with a deployment's overrides, validated: an unknown key or a bad value is an error. */
export function resolveConfig(overrides: unknown = {}): ConfigResult {
  // No overrides (most deployments): the defaults themselves, which a test holds to the schema. Parsing them would
  // cost every function's cold start zod's first parse and the first Intl formatter (about 25 ms on a slow machine).
  if (isEmptyObject(overrides)) return { ok: true, config: structuredClone(DEFAULT_CONFIG) };
  gradingConfigSchema ??= buildGradingConfigSchema();
  const result = gradingConfigSchema.safeParse(merge(DEFAULT_CONFIG, overrides));
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, errors: result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`) };
}

export function configFor(scheme: Scheme, overrides: unknown = {}): GradingConfig {
  const r = resolveConfig(merge(overrides, { scheme }));
  if (!r.ok) throw new Error(`invalid configuration: ${r.errors.join('; ')}`);
  return r.config;
}

/**
 * Every team this configuration pages, with what pages it (`routing.crs grade 3`, `paging.alertTeams.staleFeed`):
 * a deployment must give each of them endpoints (infra/paging-config.ts).
 */
export function pagedTeams(config: GradingConfig): Map<string, string[]> {
  const by = new Map<string, string[]>();
  const note = (teams: readonly string[], where: string) => {
    for (const team of teams) by.set(team, [...(by.get(team) ?? []), where]);
  };
  for (const condition of ['crs', 'icans'] as const)
    config.routing[condition].forEach((teams, i) => note(teams, `routing.${condition} grade ${i + 1}`));
  for (const [subject, teams] of Object.entries(config.paging.alertTeams)) note(teams, `paging.alertTeams.${subject}`);
  return by;
}
