// The page an acknowledge link opens on a phone: what the page is about and a form asking for a name. No login
// (the signed link is the authority), no script, no asset from anywhere: one HTML document whose only style is
// inline and pinned by its hash in the Content-Security-Policy. Opening the link (GET) never acknowledges: SMS
// and chat apps fetch links to preview them; only the form's POST does.
import { createHash } from 'node:crypto';
import { awaitsAcknowledgement, heldText, type Page } from '#domain/paging.ts';
import { formatSiteTime } from '#domain/time.ts';
import { unbrokenPieces } from '#domain/unbroken.ts';

// overflow-wrap: an id or bed with nothing to break a line at (a 64-character OID-style id) wraps inside the card
// instead of widening the page past a phone's screen.
const STYLE = `
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;background:#f4f5f7;overflow-wrap:anywhere}
main{max-width:34rem;margin:0 auto;padding:1rem}
h1{font-size:1.2rem;margin:.2rem 0 .6rem}
.card{background:#fff;border:1px solid #c9c9c9;border-left:8px solid #d21f1f;border-radius:6px;padding:.8rem}
.card.ok{border-left-color:#4c9a52}.card.bad{border-left-color:#555}
.status{font-weight:700;margin-top:0}.summary{font-weight:600}.meta{color:#555;font-size:.95rem}
label{display:block;font-weight:600;margin:.8rem 0 .3rem}
input{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #666;border-radius:4px;min-height:48px}
button{font:inherit;font-weight:700;margin-top:.8rem;width:100%;min-height:52px;border-radius:6px;border:1px solid #0b57d0;background:#0b57d0;color:#fff}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.note{font-size:.9rem;color:#555}
.nw{white-space:nowrap}
`;

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

export const ACK_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  // The token is in the address: never send it anywhere as a referrer.
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/**
 * What a host that answers only over HTTPS (the ack function: API Gateway serves nothing else, on a host name of its
 * own) adds to every acknowledgement answer, so a browser that met it once never sends a link over plain HTTP. Not
 * crs serve: it speaks plain HTTP behind the site's TLS proxy, and the header would bind the proxy's host name, every
 * port of it, for a year; that is the proxy's to say.
 */
export const HTTPS_ONLY_HEADERS = { 'strict-transport-security': 'max-age=31536000' };

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * Escaped text whose times and values with their units are each kept on one line (the rule: #domain/unbroken.ts,
 * which the board keeps too): on a 360 px phone the lines broke inside them ("fever 39.1" / "°C", "at 2026-12-" /
 * "06 17:45 CET"), read at night as two values (until 2026-12-06).
 */
const readable = (s: string) =>
  unbrokenPieces(s)
    .map((p) => (p.keep ? `<span class="nw">${escapeHtml(p.text)}</span>` : escapeHtml(p.text)))
    .join('');

function document(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>
`;
}

/** What a page is about: its condition and grade ("CRS grade 3"), or a technical alert. */
const pageWhat = (page: Pick<Page, 'subject' | 'grade'>) =>
  page.subject === 'stale-feed' || page.subject === 'spo2'
    ? 'Technical alert (not a grade)'
    : `${page.subject.toUpperCase()} grade ${page.grade}`;

function about(page: Page, role: string, timeZone: string): string {
  const what = pageWhat(page);
  // The SMS says "details at the link": the next steps are here (decision support, like the email's).
  const steps = page.actions?.length
    ? `<p>Next steps (decision support; confirm against the local protocol):</p><ul>${page.actions.map((a) => `<li>${readable(a)}</li>`).join('')}</ul>`
    : '';
  // A send a silence held: the change may be older than the message that brought the clinician here (the e-mail's
  // words; until 2026-12-07 only the e-mail and the SMS said it).
  const held = heldText(page, timeZone);
  return `<p class="summary">${readable(page.summary)}</p>${steps}
<p class="meta">${escapeHtml(what)} · paged to ${escapeHtml(role)} (${escapeHtml(page.team)}) · since ${readable(formatSiteTime(page.triggeredAt, timeZone))}</p>${held ? `\n<p class="meta">${readable(held)}</p>` : ''}`;
}

/**
 * Where the page stands when it is no longer with the link's role (`now`: the role its level goes to now): the fellow
 * opening the link late knows the attending was paged too, or that nobody answered (until 2026-12-06 the form said
 * only "Acknowledging stops the escalation to the next person on call").
 */
function progress(page: Page, role: string, now: string | undefined): string {
  if (page.status === 'exhausted')
    return '<p class="status">Every level of the ladder was paged and nobody acknowledged: acknowledge if you are on it.</p>';
  if (now === undefined || now === role) return '';
  return `<p class="status">Escalated since it was sent to you: now paged to ${escapeHtml(now)}. Acknowledging here still stops it.</p>`;
}

/**
 * The form: the page is open and the link is valid. Times are written in `timeZone` (the site's); `now`, the role the
 * page is paged to now, when known.
 */
export function ackFormPage(
  page: Page,
  role: string,
  nameMax: number,
  timeZone: string,
  error?: string,
  now?: string,
): string {
  return document(
    'Acknowledge page',
    `<h1>Acknowledge this page</h1>
<div class="card">${progress(page, role, now)}${about(page, role, timeZone)}${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post"><label for="by">Your name (recorded with the time)</label>
<input id="by" name="by" autocomplete="name" required maxlength="${nameMax}">
<button type="submit">Acknowledge: I am on it</button></form>
<p class="note">Acknowledging stops the escalation to the next person on call. Grades are provisional: confirm at the bedside.</p></div>`,
  );
}

/**
 * After an acknowledgement, or when the page has nothing left to acknowledge. What became of the page comes first,
 * above the summary: a phone showed the old grade's summary and next steps, then below them "a newer page replaced
 * it" (until 2026-12-06).
 */
export function ackStatusPage(
  page: Page,
  role: string,
  heading: string,
  detail: string,
  ok: boolean,
  timeZone: string,
): string {
  return document(
    heading,
    `<h1>${escapeHtml(heading)}</h1><div class="card ${ok ? 'ok' : 'bad'}"><p class="status">${readable(detail)}</p>${about(page, role, timeZone)}</div>`,
  );
}

/** A link refused (forged, altered, expired) or a request that cannot be served. */
export function ackErrorPage(heading: string, detail: string): string {
  return document(heading, `<h1>${escapeHtml(heading)}</h1><div class="card bad"><p>${escapeHtml(detail)}</p></div>`);
}

/**
 * The server failed (its store unreachable, a write refused) while the link was opened (`sent` false) or its form
 * sent: a page a phone can read, never the host's raw error. Retrying is safe: an acknowledgement that did go
 * through is shown as such.
 */
export function ackFailedPage(sent: boolean): string {
  const phone =
    'if it fails again, phone the team so they know you are on it: the escalation goes on until someone acknowledges.';
  return sent
    ? ackErrorPage(
        'Not recorded',
        `The server could not record your acknowledgement (a server error), so the escalation goes on. Open the link again in a minute (if it did go through, the page says who acknowledged); ${phone}`,
      )
    : ackErrorPage(
        'Page not available',
        `The server could not read this page just now (a server error). Nothing was recorded. Open the link again in a minute; ${phone}`,
      );
}

// Why a page that can no longer be acknowledged cannot (an open or exhausted page can be). A resolved page says which
// of the two closed it (until 2026-12-06 "The grade fell or the alert cleared", a CRS 3 page's link too).
const CLOSED_TEXT: Record<string, string> = {
  resolved: 'The grade fell since: nothing is left to answer.',
  'resolved-alert': 'The alert cleared: nothing is left to answer.',
  info: 'An informational page: nothing to acknowledge.',
};

/**
 * What a replaced page's answer says when the newer grade paged other teams, none of them its own (a routing of its
 * own; 2026-12-06: it said "answer that one", of a page the clinician never had). The same on every host.
 */
export function replacedElsewhereText(roles: readonly string[]): string {
  return `A newer page about this patient replaced it: the higher grade was routed to ${pagedTo(roles)}, not to this team. Nothing was recorded.`;
}

const pagedTo = (roles: readonly string[]) => roles.map((role) => `the ${role}`).join(' and ');

/**
 * Why a page has nothing left to acknowledge; for a replaced one whose newer page cannot be named (replaced before
 * 2026-12-06, or the higher grade routed to another team, which leaves no `supersededBy`), where to look: the on-call
 * board only where there is one (crs serve; not on AWS). Until 2026-12-06 it said "answer that one", of a page the
 * clinician may never have had.
 */
export function closedText(status: string, board: boolean, subject?: Page['subject']): string {
  if (status === 'superseded')
    return `A newer page about this patient replaced it (a higher grade); which one was not recorded with this page, and it may have gone to another team. Nothing was recorded. Look for the newest page about this patient ${board ? 'on the on-call board or ' : ''}in your messages.`;
  const alert = status === 'resolved' && (subject === 'stale-feed' || subject === 'spo2');
  return CLOSED_TEXT[alert ? 'resolved-alert' : status] ?? `The page is ${status}.`;
}

/**
 * What a replaced page's answer says first (2026-12-06): which page replaced it (the newest of its patient and team:
 * condition, grade, when, to which role), and whether that one still waits for an answer; so that at night the
 * clinician knows whether it is a higher grade and which message to look for. Never a name, not who acknowledged.
 * Until then only "a newer page about this patient replaced it" (still said of pages replaced before, which name none).
 */
export function replacedText(newer: Page, role: string, timeZone: string, elsewhere: readonly string[] = []): string {
  const time = (ms: number) => formatSiteTime(ms, timeZone);
  const sent = newer.heldBy !== undefined ? 'held by a silence, not sent yet' : `paged to ${role}`;
  const head = `A newer page replaced it: ${pageWhat(newer)} at ${time(newer.triggeredAt)} (${sent})`;
  if (awaitsAcknowledgement(newer)) return `${head}: answer that one.`;
  if (newer.status === 'acknowledged' && newer.ack) return `${head}, acknowledged at ${time(newer.ack.at)}.`;
  if (newer.status === 'resolved') return `${head}; the grade fell since: nothing is left to answer.`;
  // Replaced in turn by a grade paged to other teams only: "answer the newest" would name a page this team never had.
  if (elsewhere.length > 0)
    return `${head}; the higher grade since was routed to ${pagedTo(elsewhere)}, not to this team.`;
  return `${head}; a newer page replaced that one too: answer the newest.`;
}

/**
 * What a refused link's page says (reason: forged, expired, malformed): that nothing was recorded and what to do. The
 * on-call board is named only where there is one (crs serve; not on AWS). Until 2026-12-06 a damaged or expired link
 * did not say that nothing was recorded, and an expired one sent the clinician to a board AWS does not have.
 */
export function linkRefusal(reason: string, board: boolean, restoredFrom?: string): string {
  const phone = 'phone the team so they know you are on it: the escalation goes on until someone acknowledges.';
  // A host restored from a backup (crs serve, 2026-12-07) knows no link sent after it: the clinician did nothing wrong.
  if (reason === 'forged' && restoredFrom !== undefined)
    return `This acknowledge link is not known here: this server was restored from a backup of ${restoredFrom} and does not know the links sent after it (or the link was altered). Nothing was recorded. Acknowledge the page sent again${board ? ' or on the on-call board' : ''}; if that fails, ${phone}`;
  const text: Record<string, string> = {
    malformed: `This acknowledge link is incomplete or damaged. Nothing was recorded. Open the link from the page message exactly as it was sent; if that fails, ${phone}`,
    forged: `This acknowledge link is not valid (it was altered or not issued by this server). Nothing was recorded. Open the link from the page message exactly as it was sent; if that fails, ${phone}`,
    expired: `This acknowledge link has expired. Nothing was recorded. Acknowledge ${board ? 'on the on-call board or ' : ''}from a newer page about this patient, or ${phone}`,
  };
  return text[reason] ?? `This acknowledge link was refused (${reason}). Nothing was recorded; ${phone}`;
}
