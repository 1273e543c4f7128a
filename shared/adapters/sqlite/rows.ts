// Stored rows read one at a time: what each holds, or why it cannot be read (not JSON, a field missing or of another
// type: an older shape, a row edited by hand). The board names such a row; the webhook sends a page without it.
import type { Notification } from '#domain/page.ts';

export const isText = (v: unknown) => typeof v === 'string';
export const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
/** An RFC 3339 time (what a reason's parts hold): one that does not parse would fail its formatting. */
const isTime = (v: unknown) => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/** A JSON object, or why the text is not one. */
export function jsonObject(body: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return 'not JSON';
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : 'not a JSON object';
}

/** A grade change as the board shows it (its reasons, next steps, grade before, time), or why its row cannot be read. */
export function readNotification(body: string): Notification | string {
  const v = jsonObject(body);
  if (typeof v === 'string') return v;
  const reasonOk = (r: unknown) => {
    const x = r as { text?: unknown; parts?: unknown } | null;
    return (
      typeof x === 'object' &&
      x !== null &&
      isText(x.text) &&
      (x.parts === undefined ||
        (Array.isArray(x.parts) && x.parts.every((p) => isText(p) || isTime((p as { at?: unknown } | null)?.at))))
    );
  };
  if (!Array.isArray(v.reasons) || !v.reasons.every(reasonOk)) return 'reasons is not what a grade change holds there';
  if (!Array.isArray(v.actions) || !v.actions.every(isText)) return 'actions is not what a grade change holds there';
  if (v.fromGrade !== undefined && v.fromGrade !== null && !isNumber(v.fromGrade))
    return 'fromGrade is not what a grade change holds there';
  if (v.at !== undefined && !isText(v.at)) return 'at is not what a grade change holds there';
  return v as unknown as Notification;
}
