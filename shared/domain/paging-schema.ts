// The schema of the configuration's paging part and the settings it shares with the grading part (config.ts):
// built only to check a deployment's overrides. A module of its own, so that a function that checks none (notify,
// escalate, ack without overrides) loads no zod at its cold start (docs/cost.md "Cold start").
import { LONGEST_SETTING_MINUTES, PAGE_TEAMS } from './paging.ts';
import * as z from './zod.ts';

const TOO_LONG = 'at most 10 years';

/** A duration in minutes: positive (or, `orZero`, zero too), at most LONGEST_SETTING_MINUTES. */
export function minutesSetting(orZero = false) {
  const most = LONGEST_SETTING_MINUTES;
  return z.number().check(orZero ? z.gte(0) : z.positive(), z.lte(most, { error: `${TOO_LONG} (${most} minutes)` }));
}
/** A duration in hours: positive, at most LONGEST_SETTING_MINUTES. */
export function hoursSetting() {
  const most = LONGEST_SETTING_MINUTES / 60;
  return z.number().check(z.positive(), z.lte(most, { error: `${TOO_LONG} (${most} hours)` }));
}

/**
 * A list of teams (a grade's routing, an alert's teams), each named once: a team named twice opened two pages of one
 * id, which DynamoDB refuses to write in one transaction, at every retry, so that nobody was paged.
 */
export function teamList<const T extends readonly [string, ...string[]]>(teams: T) {
  return z.array(z.enum(teams)).check(
    z.refine((list) => new Set(list).size === list.length, {
      error: (iss) => {
        const list = iss.input as string[];
        return `${list.find((t, i) => list.indexOf(t) !== i)} is named twice (each team once)`;
      },
    }),
  );
}

/**
 * A text of the configuration that pages carry (a step of the protocol, a role): one line of at most `max` characters,
 * with no control characters. Pages travel by SNS (256 KB a message, its role a message attribute that the teams'
 * subscription filters read) and are stored as DynamoDB items (400 KB): a megabyte of protocol made every page fail.
 */
export function pageText(max: number, { empty = false } = {}) {
  return z.string().check(
    z.minLength(empty ? 0 : 1, { error: 'is empty' }),
    z.maxLength(max, { error: (iss) => `is ${String(iss.input).length} characters: at most ${max}` }),
    z.refine((t) => !/\p{Cc}/u.test(t), { error: 'holds a control character (a new line, a tab): one line of text' }),
  );
}

/** The paging part of the configuration's schema: built only to validate overrides (config.ts). */
export function pagingConfigSchema() {
  const policy = z.strictObject({
    /** Who is paged, in order: an unacknowledged page moves to the next level when its timeout passes. */
    levels: z.array(pageText(100)).check(z.minLength(1)),
    /** How many times the whole ladder is walked before the page is marked exhausted. */
    loops: z.number().check(z.int(), z.gte(1), z.lte(10)),
  });

  return z
    .strictObject({
      policies: z.strictObject({
        hematology: policy,
        icu: policy,
        neurology: policy,
        radiology: policy,
        bedside: policy,
      }),
      /** Minutes a level has to acknowledge before the next is paged: `severe` from severeFromGrade, else `other`. */
      timeoutMinutes: z.strictObject({ severe: minutesSetting(), other: minutesSetting() }),
      severeFromGrade: z.number().check(z.int(), z.gte(1), z.lte(4)),
      /** How long an acknowledge link stays valid. */
      ackLinkMinutes: minutesSetting(),
      /** An enrolled patient whose monitor has sent nothing for this long gets a "no data" alert. */
      staleFeedMinutes: minutesSetting(),
      /** SpO2 below this on two consecutive readings, with no oxygen support documented, raises a warning. */
      spo2WarningBelow: z.number().check(z.gte(50), z.lte(100)),
      alertTeams: z.strictObject({
        staleFeed: teamList(PAGE_TEAMS).check(z.minLength(1)),
        spo2: teamList(PAGE_TEAMS).check(z.minLength(1)),
      }),
      /**
       * Many feeds quiet at once (a ward's network down) page once per ward: `fromPatients` or more patients of a ward
       * found quiet by one sweep share one "no data" alert (one page per team); a patient of that ward going quiet
       * within `windowMinutes` of the alert's start joins it instead of paging. Fewer, or no ward: a page per patient.
       */
      staleFeedGroup: z.strictObject({
        fromPatients: z.number().check(z.int(), z.gte(2)),
        windowMinutes: minutesSetting(true),
      }),
      /** Silences never hide pages of this grade or above. */
      unsilenceableFromGrade: z.number().check(z.int(), z.gte(1), z.lte(4)),
      /**
       * The paging path proves itself: a lane whose oldest undelivered record is older than this, or a pager that has
       * not run for this long, raises an operator alert by a path that does not depend on it.
       */
      deliveryAlertMinutes: minutesSetting(),
    })
    .check(
      /**
       * A link lives at least as long as its level waits for an answer: a shorter one (links of 5 minutes, 15 to answer a
       * grade 2) was refused as expired while the page still waited for that person, who could not acknowledge it (on
       * AWS, with no board, at all) and was escalated past.
       */
      z.refine(
        (p) => {
          // Only between settings each valid on its own (a bad one is named by its own check).
          const valid = (m: unknown) => typeof m === 'number' && m > 0 && m <= LONGEST_SETTING_MINUTES;
          const { ackLinkMinutes: link, timeoutMinutes: t } = p;
          if (!valid(link) || !valid(t.severe) || !valid(t.other)) return true;
          return link >= Math.max(t.severe, t.other);
        },
        {
          path: ['ackLinkMinutes'],
          error: (iss) => {
            const p = iss.input as PagingSettings;
            const longest = p.timeoutMinutes.severe >= p.timeoutMinutes.other ? 'severe' : 'other';
            return `${p.ackLinkMinutes} is shorter than timeoutMinutes.${longest} (${p.timeoutMinutes[longest]}): a link would expire while its level still has time to acknowledge; make it at least as long`;
          },
        },
      ),
    );
}
type PagingSettings = { ackLinkMinutes: number; timeoutMinutes: { severe: number; other: number } };
