// The one acknowledgement flow of both backends (the ack Lambda and crs serve): the acknowledge link's page (GET
// shows, never acknowledges: SMS and chat apps fetch links to preview them), its form (POST acknowledges) and the
// JSON API for apps and integration engines (POST /v1/acks). Each host only turns its request into these calls and
// the answer into its response; the statuses, bodies and limits are decided here once.
import type { AckResult, Page, PageTeam, PagingConfig } from '#domain/paging.ts';
import { awaitsAcknowledgement, hasPolicy, PageUnreadable, roleOf } from '#domain/paging.ts';
import { formatSiteTime, iso } from '#domain/time.ts';
import { readJsonObject } from './json-body.ts';
import { ACK_BODY_LIMIT, ACK_NAME_MAX, checkAckName, kindOf, type AckVerification, type LinkAckResult } from './ack.ts';
import {
  ACK_PAGE_HEADERS,
  HTTPS_ONLY_HEADERS,
  ackErrorPage,
  ackFailedPage,
  ackFormPage,
  ackStatusPage,
  closedText,
  linkRefusal,
  replacedElsewhereText,
  replacedText,
} from './ack-page.ts';

/** The acknowledgement routes, the same on both hosts (crs serve, the HTTP API's ack function); `{token}` is a path segment. */
export const ACK_ROUTES = { link: '/ack/{token}', api: '/v1/acks' } as const;

/** The fields POST /v1/acks takes. */
const ACK_API_FIELDS = ['token', 'by'];

/** What the form answers a name sent twice (`by: ` reads "Your name: " on the page). */
const FORM_TWICE =
  'by: was sent twice in the form, so which one answered would be a guess. Nothing was recorded: type it once and send again.';

const READ_OUTCOME = { 400: 'invalid', 413: 'too-large', 415: 'unsupported-media-type' } as const;

/** An acknowledge link's token: what both hosts accept in a path or a body before verifying it. */
export const ACK_TOKEN = /^[A-Za-z0-9._-]{1,2048}$/;

/**
 * What is wrong with the token of a POST /v1/acks, or undefined: one sent but not a token is said to be wrong,
 * never missing (2026-12-06: `"token": []` was answered "is required", sending the sender looking for a field sent).
 */
function tokenProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'token: is required (the last part of the acknowledge link)';
  if (typeof value !== 'string')
    return `token: must be text (the last part of the acknowledge link), not ${kindOf(value)}`;
  if (value === '') return 'token: is empty; send the last part of the acknowledge link';
  if (!ACK_TOKEN.test(value))
    return "token: is not an acknowledge link's token (letters, digits, '.', '_' and '-', at most 2048): send the last part of the link";
  return undefined;
}

/** What happened, for the host's logs, metrics and live updates (the status and body say it to the client). */
type AckOutcome =
  | 'acknowledged'
  | 'already-acknowledged'
  | 'shown'
  | 'invalid'
  | 'too-large'
  | 'unsupported-media-type'
  | 'link-refused'
  | 'no-such-page'
  | 'not-open'
  | 'rate-limited'
  /** The link's page is stored but its item cannot be read (not JSON, a field missing): nothing recorded. */
  | 'page-unreadable'
  /** The host failed (its store, most often): the link's answer is still a page (linkFailed). */
  | 'failed';

export interface AckAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  outcome: AckOutcome;
  /** The page acknowledged (outcome acknowledged or already-acknowledged). */
  page?: Page;
  /** The page whose item cannot be read (outcome page-unreadable): the host logs it by id. */
  unreadable?: string;
}

export interface AckFlowDeps {
  /**
   * Verifies the token and acknowledges its page (the pager audits a refusal); the claims of a link that verified come
   * back with the result.
   */
  acknowledgeLink(token: string, by: string, client: string): Promise<LinkAckResult>;
  /** Verifies a token without acknowledging (the GET of a link; the form sent without a name). */
  verify(token: string): Promise<AckVerification>;
  page(pageId: string): Promise<Page | undefined> | Page | undefined;
  config: PagingConfig;
  /** The site's time zone: times people read are written in it (formatSiteTime). */
  timeZone: string;
  /** Whether the host has an on-call board to acknowledge on (crs serve), named to a clinician whose link expired. */
  board: boolean;
  /**
   * The moment of the backup the host was restored from (epoch ms; crs serve, and the ack function of a stack
   * `crs restore --backend aws` restored), while a link sent before the restore may still be unexpired
   * (restoredFromOf): links sent after that moment are not known. Undefined: none.
   */
  restoredFrom?: () => number | undefined;
  /** The host answers only over HTTPS (the ack function): each answer says so (HTTPS_ONLY_HEADERS). */
  httpsOnly?: boolean;
  /** A host's per-address budget of refused links (the Lambda leaves it to API Gateway's throttles). */
  refusals?: {
    /** Seconds this client must wait before its next try, or undefined to go on. */
    admit(token: string, client: string): Promise<number | undefined>;
    refused(client: string): void;
  };
}

const JSON_HEADERS = {
  'content-type': 'application/json',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};
const json = (status: number, outcome: AckOutcome, value: unknown, page?: Page): AckAnswer => ({
  status,
  headers: { ...JSON_HEADERS },
  body: JSON.stringify(value),
  outcome,
  ...(page ? { page } : {}),
});
const html = (status: number, outcome: AckOutcome, body: string, page?: Page): AckAnswer => ({
  status,
  headers: { ...ACK_PAGE_HEADERS },
  body,
  outcome,
  ...(page ? { page } : {}),
});

/** The answer with what a host served only over HTTPS adds to each (HTTPS_ONLY_HEADERS). */
const overTransport = (a: AckAnswer, host: Pick<AckFlowDeps, 'httpsOnly'>): AckAnswer =>
  host.httpsOnly ? { ...a, headers: { ...a.headers, ...HTTPS_ONLY_HEADERS } } : a;

/** The status of a refused acknowledgement: a bad link 403, an unknown page 404, a page no longer open 409. */
export function refusalStatus(r: Extract<AckResult, { ok: false }>): number {
  return r.code === 'no-such-page' ? 404 : r.code === 'not-open' ? 409 : 403;
}
const refusalOutcome = (r: Extract<AckResult, { ok: false }>): AckOutcome =>
  r.code === 'no-such-page' ? 'no-such-page' : r.code === 'not-open' ? 'not-open' : 'link-refused';

/** Acknowledges through the host's refusal budget: undefined when the client must wait (the seconds in `wait`). */
async function acknowledgeWithin(
  deps: AckFlowDeps,
  token: string,
  by: string,
  client: string,
): Promise<LinkAckResult | { wait: number }> {
  const wait = await deps.refusals?.admit(token, client);
  if (wait !== undefined) return { wait };
  const r = await deps.acknowledgeLink(token, by, client);
  if (!r.ok && r.code.startsWith('link-')) deps.refusals?.refused(client);
  return r;
}

/**
 * What the JSON API tells about a page after an acknowledgement (ids, team, level, who and when): the same on both
 * hosts (the embedded server once answered its board's view of the page here, which the ack function cannot build).
 */
const pageSummary = (p: Page) => ({
  pageId: p.pageId,
  patientId: p.patientId,
  team: p.team,
  status: p.status,
  level: p.level,
  ...(p.ack ? { ack: { by: p.ack.by, at: iso(p.ack.at), via: p.ack.via } } : {}),
});

/**
 * A link to a page whose stored item cannot be read (PageUnreadable, from the store): answered with what it is, 500
 * (the server holds a record it cannot read; nothing was recorded), never a failed call. Until 2026-12-05 the call
 * failed: the phone got API Gateway's bare 500 (crs serve's {"errors":["internal error"]}), saying nothing.
 */
async function unlessUnreadable(
  answer: () => Promise<AckAnswer>,
  unreadable: (err: PageUnreadable) => AckAnswer,
): Promise<AckAnswer> {
  try {
    return await answer();
  } catch (err) {
    if (!(err instanceof PageUnreadable)) throw err;
    return { ...unreadable(err), unreadable: err.pageId };
  }
}

const unreadableText = (err: PageUnreadable) =>
  `page ${err.pageId}: its stored record cannot be read (${err.reason}); it cannot be acknowledged until an operator mends it`;

const unreadablePage = (err: PageUnreadable) =>
  html(
    500,
    'page-unreadable',
    ackErrorPage(
      'This page cannot be read',
      `The record of page ${err.pageId} cannot be read, so it cannot be acknowledged with this link, and its ladder does not escalate. Nothing was recorded. Answer the team directly; the operators are alerted.`,
    ),
  );

/**
 * POST /v1/acks {"token", "by"}: 200 (also when acknowledged before), 400 (also an unknown field), 403, 404, 409, 413, 415 (also a body sent
 * with a content coding: nothing inflates it); 500 for a page that cannot be read.
 */
export function acknowledgeByApi(
  req: { contentType: string | undefined; contentEncoding: string | undefined; body: string; client: string },
  deps: AckFlowDeps,
): Promise<AckAnswer> {
  return unlessUnreadable(
    () => acknowledgeByApiOnce(req, deps),
    (err) => json(500, 'page-unreadable', { errors: [unreadableText(err)] }),
  ).then((a) => overTransport(a, deps));
}

async function acknowledgeByApiOnce(
  req: Parameters<typeof acknowledgeByApi>[0],
  deps: AckFlowDeps,
): Promise<AckAnswer> {
  const example = '{"token": "<from the acknowledge link>", "by": "your name"}';
  // A field sent twice is refused as on the device routes (`"by": "Dr A", "by": "M"` was recorded as M's), and an
  // unknown one naming it (it was ignored, and a misspelt field can change what a request means): both 2026-12-06.
  const read = readJsonObject(req, example, ACK_BODY_LIMIT, ACK_API_FIELDS);
  if (!read.ok) return json(read.status, READ_OUTCOME[read.status], { errors: read.errors });
  const body = read.body;
  const errors: string[] = [];
  const token = tokenProblem(body.token);
  if (token) errors.push(token);
  const name = checkAckName(body.by);
  if (!name.ok) errors.push(name.error);
  if (errors.length > 0 || !name.ok) return json(400, 'invalid', { errors });
  const r = await acknowledgeWithin(deps, body.token as string, name.name, req.client);
  if ('wait' in r)
    return {
      ...json(429, 'rate-limited', {
        errors: [`too many refused acknowledgements from ${req.client}; wait ${r.wait} s`],
      }),
      headers: { ...JSON_HEADERS, 'retry-after': String(r.wait) },
    };
  if (!r.ok) return json(refusalStatus(r), refusalOutcome(r), { errors: [apiRefusal(r, deps)] });
  return json(
    200,
    r.changed ? 'acknowledged' : 'already-acknowledged',
    { acknowledged: true, changed: r.changed, page: pageSummary(r.page) },
    r.page,
  );
}

/**
 * What a link answers when the host fails while opening it (GET, HEAD) or taking its form (POST): a 500 with the
 * acknowledge pages' document and headers saying nothing was recorded and what to do, on both hosts (it was
 * crs serve's `{"error":"internal error"}` and API Gateway's `{"message":"Internal Server Error"}` on the phone).
 * The host logs the failure and, on AWS, counts it toward the AckErrors alarm.
 */
export const linkFailed = (method: string, host: Pick<AckFlowDeps, 'httpsOnly'> = {}): AckAnswer =>
  overTransport(html(500, 'failed', ackFailedPage(method === 'POST')), host);

/**
 * How many newer pages a replaced page's answer follows to the newest: each replaced the one before by a higher grade
 * (a fall resolves, it does not replace), so grades 1 to 4 make at most 3; the bound only stops a hand-made loop.
 */
const NEWER_HOPS = 3;

/**
 * The newest page that replaced this one, following `supersededBy`; only a page of the same patient and team (an item
 * edited by hand might name another: never another patient's page). A newer page missing or unreadable ends the walk:
 * the answer names the last one read, or none (today's sentence).
 */
async function newestReplacing(page: Page, deps: AckFlowDeps): Promise<Page | undefined> {
  let newest: Page | undefined;
  for (let at = page, hop = 0; at.supersededBy !== undefined && hop < NEWER_HOPS; hop++) {
    const id = at.supersededBy;
    const next = await Promise.resolve(deps.page(id)).catch((err: unknown) => {
      if (err instanceof PageUnreadable) return undefined;
      throw err;
    });
    if (!next || next.pageId !== id || next.patientId !== page.patientId || next.team !== page.team) break;
    newest = at = next;
  }
  return newest;
}

/** The role a page is at now (its level's), or its team for one without a ladder. */
const currentRole = (page: Page, config: PagingConfig) =>
  hasPolicy(page.team, config) ? roleOf(page, config) : page.team;

/**
 * Why a page that has nothing left to acknowledge has not: for a replaced one, which page replaced it, or which teams
 * the newer grade went to, or (neither recorded) where to look.
 */
async function closedDetail(page: Page, deps: AckFlowDeps): Promise<string> {
  const newer = page.status === 'superseded' ? await newestReplacing(page, deps) : undefined;
  // Each team by the role its page goes to first, as the clinician knows it ("ICU registrar", not "icu").
  const firstRoles = (p: Page) =>
    (p.status === 'superseded' ? (p.supersededTeams ?? []) : []).map((team) =>
      hasPolicy(team, deps.config) ? roleOf({ team: team as PageTeam, level: 0 }, deps.config) : team,
    );
  if (newer) return replacedText(newer, currentRole(newer, deps.config), deps.timeZone, firstRoles(newer));
  const elsewhere = firstRoles(page);
  if (elsewhere.length > 0) return replacedElsewhereText(elsewhere);
  return closedText(page.status, deps.board, page.subject);
}

/** GET /ack/{token}: the page's summary and a form asking for a name. Never acknowledges. */
export function showLink(token: string, deps: AckFlowDeps): Promise<AckAnswer> {
  return unlessUnreadable(() => showLinkOnce(token, deps), unreadablePage).then((a) => overTransport(a, deps));
}

async function showLinkOnce(token: string, deps: AckFlowDeps): Promise<AckAnswer> {
  if (!ACK_TOKEN.test(token))
    return html(403, 'link-refused', ackErrorPage('Link refused', linkRefusal('malformed', deps.board)));
  const time = (ms: number) => formatSiteTime(ms, deps.timeZone);
  const v = await deps.verify(token);
  if (!v.ok)
    return html(
      403,
      'link-refused',
      ackErrorPage('Link refused', linkRefusal(v.reason, deps.board, restoredText(deps))),
    );
  const page = await deps.page(v.claims.pageId);
  if (!page) return html(404, 'no-such-page', ackErrorPage('No such page', 'There is no record of this page.'));
  if (awaitsAcknowledgement(page))
    return html(
      200,
      'shown',
      ackFormPage(page, v.claims.role, ACK_NAME_MAX, deps.timeZone, undefined, currentRole(page, deps.config)),
    );
  if (page.status === 'acknowledged' && page.ack) {
    const detail = `Acknowledged by ${page.ack.by} at ${time(page.ack.at)} (via ${page.ack.via}).`;
    return html(200, 'shown', ackStatusPage(page, v.claims.role, 'Already acknowledged', detail, true, deps.timeZone));
  }
  return html(
    200,
    'shown',
    ackStatusPage(page, v.claims.role, 'Nothing to acknowledge', await closedDetail(page, deps), false, deps.timeZone),
  );
}

/** POST /ack/{token} (form-encoded by=<name>): acknowledges and answers a small HTML page. */
export function submitLink(
  token: string,
  req: { body: string; client: string },
  deps: AckFlowDeps,
): Promise<AckAnswer> {
  return unlessUnreadable(() => submitLinkOnce(token, req, deps), unreadablePage).then((a) => overTransport(a, deps));
}

async function submitLinkOnce(
  token: string,
  req: { body: string; client: string },
  deps: AckFlowDeps,
): Promise<AckAnswer> {
  if (!ACK_TOKEN.test(token))
    return html(403, 'link-refused', ackErrorPage('Link refused', linkRefusal('malformed', deps.board)));
  if (Buffer.byteLength(req.body) > ACK_BODY_LIMIT) {
    return html(
      413,
      'too-large',
      ackErrorPage('Too long', `The form sent too much; type a name of up to ${ACK_NAME_MAX} characters.`),
    );
  }
  const time = (ms: number) => formatSiteTime(ms, deps.timeZone);
  const names = new URLSearchParams(req.body).getAll('by');
  // A name sent twice is refused as a field sent twice to /v1/acks is: which one answered would be a guess (the first
  // was recorded until 2026-12-06). The form again, saying so; only a form made by hand sends two.
  const name: ReturnType<typeof checkAckName> =
    names.length > 1 ? { ok: false, error: FORM_TWICE } : checkAckName(names[0]);
  if (!name.ok) {
    // The form again, for a link that verifies (checked, not acknowledged: the GET's check).
    const v = await deps.verify(token);
    const page = v.ok ? await deps.page(v.claims.pageId) : undefined;
    if (v.ok && page)
      return html(
        400,
        'invalid',
        ackFormPage(
          page,
          v.claims.role,
          ACK_NAME_MAX,
          deps.timeZone,
          name.error.replace(/^by: /, 'Your name: '),
          currentRole(page, deps.config),
        ),
      );
  }
  // A refused link is refused (and audited) whatever the name says. The pager verifies the link, once, and acknowledges
  // only a link that verifies; what the answer says of the link (its page, its role) comes from that verification.
  const r = await acknowledgeWithin(deps, token, name.ok ? name.name : '(no name)', req.client);
  if ('wait' in r) {
    const page = ackErrorPage('Too many attempts', `Too many refused links from this address: wait ${r.wait} seconds.`);
    return { ...html(429, 'rate-limited', page), headers: { ...ACK_PAGE_HEADERS, 'retry-after': String(r.wait) } };
  }
  // The role the link was sent to; without one (never, from the pager), the page's level's now, or its team.
  const role = (page: Page) => r.claims?.role ?? currentRole(page, deps.config);
  if (!r.ok) {
    if (r.code === 'no-such-page')
      return html(404, 'no-such-page', ackErrorPage('No such page', 'There is no record of this page.'));
    if (r.code !== 'not-open')
      return html(
        403,
        'link-refused',
        ackErrorPage('Link refused', linkRefusal(r.code.replace('link-', ''), deps.board, restoredText(deps))),
      );
    const page = r.claims ? await deps.page(r.claims.pageId) : undefined;
    return page
      ? html(
          409,
          'not-open',
          ackStatusPage(
            page,
            role(page),
            'Nothing to acknowledge',
            await closedDetail(page, deps),
            false,
            deps.timeZone,
          ),
        )
      : html(409, 'not-open', ackErrorPage('Nothing to acknowledge', r.reason));
  }
  const p = r.page;
  const ack = p.ack!;
  const detail = r.changed
    ? `Recorded: ${ack.by} at ${time(ack.at)}. Nobody else on this ladder will be paged for it.`
    : `It was already acknowledged by ${ack.by} at ${time(ack.at)} (via ${ack.via}).`;
  return html(
    200,
    r.changed ? 'acknowledged' : 'already-acknowledged',
    ackStatusPage(p, role(p), r.changed ? 'Acknowledged' : 'Already acknowledged', detail, true, deps.timeZone),
    p,
  );
}

/**
 * Why the JSON API refused a link: a link that looks forged on a host restored from a backup is said to be one the
 * backup does not know, as the link's page says (linkRefusal; until 2026-12-07 "acknowledge link forged").
 */
function apiRefusal(r: Extract<LinkAckResult, { ok: false }>, deps: AckFlowDeps): string {
  const from = r.code === 'link-forged' ? restoredText(deps) : undefined;
  return from === undefined
    ? r.reason
    : `acknowledge link not known: this server was restored from a backup of ${from} and does not know the links sent after it (or the link was altered); nothing was recorded: acknowledge the page sent again`;
}

/**
 * The moment of the backup a host was restored from (`takenAt`), for as long as a link sent before the restore
 * (`restoredAt`) may be unexpired (ackLinkMinutes): an unknown link may then be one sent after the backup, and the
 * refusal says so. Undefined: never restored, or long enough ago that no such link lives. One rule for crs serve and
 * the ack function (2026-12-07: the ack function said such a link was altered or not issued here).
 */
export function restoredFromOf(
  restore: { restoredAt: number; takenAt: number } | undefined,
  now: number,
  ackLinkMinutes: number,
): number | undefined {
  return restore && now < restore.restoredAt + ackLinkMinutes * 60_000 ? restore.takenAt : undefined;
}

/** The moment of the backup the host was restored from, as people read it (undefined: never restored). */
const restoredText = (deps: AckFlowDeps) => {
  const from = deps.restoredFrom?.();
  return from === undefined ? undefined : formatSiteTime(from, deps.timeZone);
};
