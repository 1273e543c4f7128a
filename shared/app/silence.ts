// Silences as both backends take them: the request checked (exactly one scope, whole minutes, a reason and a
// name), and a patient's silence refused for a patient the backend has never graded (it would hold nothing, and a
// mistyped id must not pass for a silence). `crs serve`'s API and `crs silence` (both backends) call these.
import { randomBytes } from 'node:crypto';
import { checkAckName } from '#app/ack.ts';
import { PAGE_TEAMS, type PageTeam, type Silence } from '#domain/paging.ts';
import { MINUTE } from '#domain/time.ts';
import { unprintable } from '#domain/printable.ts';
import { unknownFields } from '#app/json-body.ts';

const SILENCE_LIMITS = { maxMinutes: 24 * 60, reasonMax: 200 } as const;

/** A silence holds a patient's pages or a team's, never both at once. */
export const ONE_SCOPE = 'scope: give either patientId or team, not both';

/** A silence's id, as checkSilence makes it (the only ids either backend stores). */
const SILENCE_ID = /^sil_[A-Za-z0-9_-]{12}$/;

/**
 * Why `id` can be no silence's, or undefined when it can be one. Checked before any lookup, by the board's API and
 * by crs silence end on both backends: a 100 KB id was sent in a URL crs serve could not read ("does not answer"),
 * and on AWS an empty or long one failed DynamoDB's key checks (exit 1).
 */
export function silenceIdError(id: string): string | undefined {
  return SILENCE_ID.test(id) ? undefined : 'silenceId: must be a silence id (sil_ and 12 of A-Z a-z 0-9 _ -)';
}

/** The fields a silence request takes. */
const SILENCE_FIELDS = ['patientId', 'team', 'minutes', 'reason', 'by'] as const;

/** Checks a silence request: no unknown field, exactly one scope, a duration, a reason and a name. */
export function checkSilence(
  body: Record<string, unknown>,
  now: number,
): { ok: true; silence: Silence } | { ok: false; errors: string[] } {
  // Refused naming it, as the board's monitoring end refuses one: ignored, a misspelt field went unnoticed.
  const unknown = unknownFields(body, SILENCE_FIELDS);
  if (unknown.length > 0) return { ok: false, errors: unknown };
  const errors: string[] = [];
  const { patientId, team, minutes, reason } = body;
  let scope: Silence['scope'] | undefined;
  if ((patientId === undefined) === (team === undefined)) errors.push(ONE_SCOPE);
  else if (patientId !== undefined) {
    if (typeof patientId !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(patientId))
      errors.push('patientId: must be a patient id');
    else scope = { patientId };
  } else if (typeof team !== 'string' || !(PAGE_TEAMS as readonly string[]).includes(team)) {
    errors.push(`team: must be one of ${PAGE_TEAMS.join(', ')}`);
  } else scope = { team: team as PageTeam };
  // Whole minutes, as the board offers them: 1.5 is more likely a slip for 15 than a wish for 90 seconds.
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > SILENCE_LIMITS.maxMinutes) {
    errors.push(`minutes: how long, 1 to ${SILENCE_LIMITS.maxMinutes} (whole minutes)`);
  }
  const why = typeof reason === 'string' ? reason.trim().replace(/\s+/g, ' ') : '';
  if (why.length === 0) errors.push('reason: is required (e.g. transport to MRI)');
  else if (why.length > SILENCE_LIMITS.reasonMax)
    errors.push(`reason: at most ${SILENCE_LIMITS.reasonMax} printable characters`);
  else if (unprintable(why, 'reason')) errors.push(`reason: ${unprintable(why, 'reason')}`);
  const name = checkAckName(body.by);
  if (!name.ok) errors.push(name.error);
  if (errors.length > 0 || !scope || !name.ok) return { ok: false, errors };
  return {
    ok: true,
    silence: {
      silenceId: `sil_${randomBytes(9).toString('base64url')}`,
      scope,
      from: now,
      until: now + Math.round((minutes as number) * MINUTE),
      createdBy: name.name,
      reason: why,
    },
  };
}

/** What a backend answers when a patient's silence names a patient it does not know. */
export const NO_SUCH_PATIENT = 'no such patient';

/**
 * Starts a checked silence through `start` (the backend's pager), unless it is a patient's and `known` says the
 * backend has never graded that patient.
 */
export async function startSilence(
  s: Silence,
  known: (patientId: string) => Promise<boolean> | boolean,
  start: (s: Silence) => Promise<Silence>,
): Promise<{ ok: true; silence: Silence } | { ok: false; error: typeof NO_SUCH_PATIENT }> {
  if ('patientId' in s.scope && !(await known(s.scope.patientId))) return { ok: false, error: NO_SUCH_PATIENT };
  return { ok: true, silence: await start(s) };
}
