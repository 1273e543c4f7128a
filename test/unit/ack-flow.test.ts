// The one acknowledgement flow both hosts use (shared/app/ack-flow.ts): its statuses and bodies, decided once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acknowledgeByApi, linkFailed, showLink, submitLink, type AckFlowDeps } from '#app/ack-flow.ts';
import { ACK_BODY_LIMIT } from '#app/ack.ts';
import { DEFAULT_PAGING, PageUnreadable, type AckRefusal, type AckResult, type Page } from '#domain/paging.ts';
import { inlineText } from '#test/support/html.ts';

const page = {
  pageId: 'crs|P-1|#3|icu',
  patientId: 'P-1',
  team: 'icu',
  status: 'open',
  level: 0,
  subject: 'crs',
  grade: 3,
  summary: 'CRS 3',
  triggeredAt: 0,
} as unknown as Page;

/** The link "good" names the page, sent to the ICU fellow; as the pager does, its claims come back with the result. */
const GOOD_CLAIMS = { pageId: page.pageId, role: 'icu fellow', expiresAt: 1 };

function flow(result: AckResult, calls: string[] = []): AckFlowDeps {
  return {
    acknowledgeLink: async (token, by, client) => {
      calls.push(`${token} ${by} ${client}`);
      return token === 'good' && !(!result.ok && result.code.startsWith('link-'))
        ? { ...result, claims: GOOD_CLAIMS }
        : result;
    },
    verify: async (token) => (token === 'good' ? { ok: true, claims: GOOD_CLAIMS } : { ok: false, reason: 'forged' }),
    page: async (id) => (id === page.pageId ? page : undefined),
    config: DEFAULT_PAGING,
    timeZone: 'UTC',
    board: true,
  };
}

const acknowledged: AckResult = {
  ok: true,
  changed: true,
  page: { ...page, status: 'acknowledged', ack: { by: 'Dr A (icu fellow)', at: 0, via: 'link' } },
};
const refused = (code: AckRefusal): AckResult => ({ ok: false, code, reason: `refused: ${code}` });
const api = (body: unknown, deps: AckFlowDeps, contentType = 'application/json') =>
  acknowledgeByApi(
    {
      contentType,
      contentEncoding: undefined,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      client: '10.0.0.9',
    },
    deps,
  );

describe('the acknowledgement flow of both hosts', () => {
  it.each([
    ['forged', true],
    ['expired', true],
    ['malformed', true],
    ['expired', false],
  ] as const)('tells the phone a %s link recorded nothing, and what to do (a board: %s)', async (reason, board) => {
    // Until 2026-12-06 a damaged or expired link did not say that nothing was recorded, and an expired one sent the
    // clinician to the on-call board on AWS too, which has none.
    const deps = { ...flow(refused(`link-${reason}`)), board, verify: async () => ({ ok: false as const, reason }) };
    for (const a of [await showLink('good', deps), await submitLink('good', { body: 'by=Dr+A', client: 'x' }, deps)]) {
      expect(a.status).toBe(403);
      expect(a.body).toContain('Nothing was recorded');
      expect(a.body).toContain('phone the team');
      expect(a.body.includes('board')).toBe(board && reason === 'expired');
    }
  });

  it.each([
    ['link-forged', 403],
    ['link-expired', 403],
    ['link-malformed', 403],
    ['no-such-page', 404],
    ['not-open', 409],
  ] as const)('answers a refusal %s with %i, as {errors} on the API', async (code, status) => {
    const a = await api({ token: 'good', by: 'Dr A' }, flow(refused(code)));
    expect([a.status, JSON.parse(a.body)]).toEqual([status, { errors: [`refused: ${code}`] }]);
    expect((await submitLink('good', { body: 'by=Dr+A', client: 'x' }, flow(refused(code)))).status).toBe(status);
  });

  it('acknowledges through the API with the name and the client, and says so', async () => {
    const calls: string[] = [];
    const a = await api({ token: 'good', by: ' Dr  A ' }, flow(acknowledged, calls));
    expect(a.status).toBe(200);
    expect(a.outcome).toBe('acknowledged');
    expect(JSON.parse(a.body)).toMatchObject({
      acknowledged: true,
      changed: true,
      page: { pageId: page.pageId, status: 'acknowledged' },
    });
    expect(calls).toEqual(['good Dr A 10.0.0.9']);
  });

  it('refuses what is not a well-formed request before it reaches the pager: 413, 415, 400 naming the field', async () => {
    const calls: string[] = [];
    const deps = flow(acknowledged, calls);
    const big = await api('x'.repeat(ACK_BODY_LIMIT + 1), deps);
    expect([big.status, JSON.parse(big.body).errors[0]]).toEqual([413, `body: more than ${ACK_BODY_LIMIT} bytes`]);
    // The size first, whatever the content type: 413 before 415, the order readJsonObject gives /v1/acks (the
    // board's writes check the headers before reading a body). Removing that first check failed no test.
    expect((await api('x'.repeat(ACK_BODY_LIMIT + 1), deps, 'text/plain')).status).toBe(413);
    expect((await api({ token: 'good', by: 'A' }, deps, 'text/plain; charset=json')).status).toBe(415);
    expect((await api({ token: 'good', by: 'A' }, deps, 'application/jsonx')).status).toBe(415);
    expect(JSON.parse((await api({ by: 'A' }, deps)).body).errors).toEqual([
      'token: is required (the last part of the acknowledge link)',
    ]);
    expect(JSON.parse((await api({ token: 'good' }, deps)).body).errors[0]).toMatch(/^by: /);
    expect((await api('[1]', deps)).status).toBe(400);
    expect(calls).toEqual([]);
  });

  it('a token sent but not a token is said to be wrong, never missing (found by the fuzzing below, 2026-12-06)', async () => {
    const calls: string[] = [];
    const deps = flow(acknowledged, calls);
    const errors = async (token: unknown) => JSON.parse((await api({ token, by: 'Dr A' }, deps)).body).errors;
    expect(await errors([])).toEqual(['token: must be text (the last part of the acknowledge link), not a list']);
    expect(await errors(7)).toEqual(['token: must be text (the last part of the acknowledge link), not a number']);
    expect(await errors('')).toEqual(['token: is empty; send the last part of the acknowledge link']);
    expect(await errors('a b/c')).toEqual([
      "token: is not an acknowledge link's token (letters, digits, '.', '_' and '-', at most 2048): send the last part of the link",
    ]);
    expect(await errors(null)).toEqual(['token: is required (the last part of the acknowledge link)']);
    expect(calls).toEqual([]);
  });

  it('refuses a field sent twice, naming it, never taking the last name as the one who acknowledged (2026-12-06)', async () => {
    // JSON.parse keeps the last: `"by": "Dr A", "by": "Mallory"` was recorded as Mallory's acknowledgement. The device
    // routes and FHIR refuse a key sent twice; so does this one.
    const calls: string[] = [];
    const deps = flow(acknowledged, calls);
    const a = await api('{"token": "good", "by": "Dr A", "by": "Mallory"}', deps);
    expect([a.status, JSON.parse(a.body)]).toEqual([
      400,
      { errors: ['by: the key appears twice: which value is meant would be a guess; send it once'] },
    ]);
    expect(calls).toEqual([]);
  });

  it('refuses an unknown field naming it, with the field it was likely meant for, acknowledging nothing (2026-12-06)', async () => {
    // Until 2026-12-06 an unknown field was ignored: {"token", "by", "nmae"} acknowledged with the name in `by`, and
    // a misspelt field can change what a request means (the device contract's rule: refused, never dropped).
    const calls: string[] = [];
    const deps = flow(acknowledged, calls);
    const a = await api({ token: 'good', by: 'Dr A', tokne: 'x' }, deps);
    expect([a.status, a.outcome, JSON.parse(a.body)]).toEqual([
      400,
      'invalid',
      { errors: ['unknown field "tokne" (did you mean "token"?); allowed: token, by'] },
    ]);
    const two = JSON.parse((await api({ token: 'good', byy: 'Dr A', note: 1 }, deps)).body).errors;
    expect(two).toEqual([
      'unknown field "byy" (did you mean "by"?); allowed: token, by; unknown field "note"; allowed: token, by',
    ]);
    expect(calls).toEqual([]);
  });

  it('adds HSTS to every answer of a host served over HTTPS only (the ack function), none to the others', async () => {
    const hsts = (a: { headers: Record<string, string> }) => a.headers['strict-transport-security'];
    const https = { ...flow(acknowledged), httpsOnly: true };
    expect(hsts(await showLink('good', https))).toBe('max-age=31536000');
    expect(hsts(await submitLink('good', { body: 'by=A', client: 'x' }, https))).toBe('max-age=31536000');
    expect(hsts(await api({ token: 'good', by: 'A' }, https))).toBe('max-age=31536000');
    expect(hsts(linkFailed('GET', https))).toBe('max-age=31536000');
    expect(hsts(await showLink('good', flow(acknowledged)))).toBeUndefined();
    expect(hsts(linkFailed('POST'))).toBeUndefined();
  });

  it('shows a link without acknowledging; a malformed or forged one is a 403 page', async () => {
    const calls: string[] = [];
    const shown = await showLink('good', flow(acknowledged, calls));
    expect([shown.status, shown.outcome, shown.headers['content-type']]).toEqual([
      200,
      'shown',
      'text/html; charset=utf-8',
    ]);
    expect(shown.body).toContain('<form');
    expect((await showLink('bad token!', flow(acknowledged, calls))).status).toBe(403);
    expect((await showLink('forged', flow(acknowledged, calls))).status).toBe(403);
    expect(calls).toEqual([]);
  });

  it("verifies the form's link once: the pager's acknowledgement verifies it; only a form without a name checks it first", async () => {
    const calls: string[] = [];
    const verified: string[] = [];
    const counted = (result: AckResult): AckFlowDeps => {
      const deps = flow(result, calls);
      const verify: AckFlowDeps['verify'] = (token) => {
        verified.push(token);
        return deps.verify(token);
      };
      return { ...deps, verify };
    };
    for (const result of [acknowledged, refused('not-open'), refused('link-forged')])
      await submitLink('good', { body: 'by=Dr+A', client: 'x' }, counted(result));
    expect([calls.length, verified]).toEqual([3, []]);
    calls.length = 0;
    expect((await submitLink('good', { body: 'by=', client: 'x' }, counted(acknowledged))).status).toBe(400);
    expect([calls, verified]).toEqual([[], ['good']]);
  });

  it('asks again for a missing name on the form, acknowledging nothing', async () => {
    const calls: string[] = [];
    const a = await submitLink('good', { body: 'by=', client: 'x' }, flow(acknowledged, calls));
    expect([a.status, a.outcome]).toEqual([400, 'invalid']);
    expect(a.body).toContain('Your name: ');
    expect(calls).toEqual([]);
  });

  it('refuses a name sent twice on the form, saying so and that nothing was recorded (2026-12-06)', async () => {
    // URLSearchParams.get takes the first: `by=Dr+A&by=Mallory` was recorded as Dr A's, a guess at who answered.
    const calls: string[] = [];
    const a = await submitLink('good', { body: 'by=Dr+A&by=Mallory', client: 'x' }, flow(acknowledged, calls));
    expect([a.status, a.outcome]).toEqual([400, 'invalid']);
    expect(inlineText(a.body)).toContain(
      'Your name: was sent twice in the form, so which one answered would be a guess. Nothing was recorded: type it once and send again.',
    );
    expect(calls).toEqual([]);
  });

  // Pinned by a mutation run of shared/app/ack-flow.ts.
  it("spends an address's budget of refused links only on refused links, not on a page closed or unknown", async () => {
    const spent: string[] = [];
    const budget = (result: AckResult): AckFlowDeps => ({
      ...flow(result),
      refusals: { admit: async () => undefined, refused: (client) => void spent.push(client) },
    });
    await api({ token: 'good', by: 'Dr A' }, budget(refused('not-open')));
    await api({ token: 'good', by: 'Dr A' }, budget(refused('no-such-page')));
    expect(spent).toEqual([]);
    await api({ token: 'good', by: 'Dr A' }, budget(refused('link-forged')));
    expect(spent).toEqual(['10.0.0.9']);
  });

  it('answers an acknowledgement with the role its link was sent to, not the role the page has escalated to since', async () => {
    const escalated = { ...page, level: 1 } as Page; // the ICU consultant is paged now; the fellow answers
    const result: AckResult = {
      ok: true,
      changed: true,
      page: { ...escalated, status: 'acknowledged', ack: { by: 'Dr A (icu fellow)', at: 0, via: 'link' } },
    };
    const a = await submitLink('good', { body: 'by=Dr+A', client: 'x' }, flow(result));
    expect(a.status).toBe(200);
    expect(a.body).toContain('icu fellow');
    expect(a.body).not.toContain('ICU consultant');
  });

  it('tells the holder of a link that the page has gone on to another role, or to nobody who answered', async () => {
    // Until 2026-12-06 the fellow opening the link after the page had gone on read only "Acknowledging stops the
    // escalation to the next person on call", as if nobody else had been paged yet.
    const at = (p: Partial<Page>) => ({ ...flow(refused('not-open')), page: async () => ({ ...page, ...p }) as Page });
    const text = async (p: Partial<Page>) => inlineText((await showLink('good', at(p))).body);
    expect(await text({ level: 1 })).toContain(
      'Escalated since it was sent to you: now paged to ICU consultant. Acknowledging here still stops it.',
    );
    expect(await text({ status: 'exhausted', level: 1, round: 1 })).toContain(
      'Every level of the ladder was paged and nobody acknowledged: acknowledge if you are on it.',
    );
    // The link's own role, and a page just sent to it: nothing more.
    const own = { ...GOOD_CLAIMS, role: 'ICU registrar' };
    const deps = { ...at({ level: 0 }), verify: async () => ({ ok: true as const, claims: own }) };
    expect(inlineText((await showLink('good', deps)).body)).not.toContain('since it was sent');
  });

  it('says of a closed page that the grade fell, or that the alert cleared, whichever it was', async () => {
    // Until 2026-12-06 both read "The grade fell or the alert cleared", a CRS 3 page's link too.
    const at = (p: Partial<Page>) => ({ ...flow(refused('not-open')), page: async () => ({ ...page, ...p }) as Page });
    const text = async (p: Partial<Page>) => inlineText((await showLink('good', at(p))).body);
    expect(await text({ status: 'resolved' })).toContain('The grade fell since: nothing is left to answer.');
    for (const subject of ['stale-feed', 'spo2'] as const)
      expect(await text({ status: 'resolved', subject })).toContain('The alert cleared: nothing is left to answer.');
  });

  it('reads a body of exactly the size limit (only a larger one is refused)', async () => {
    const body = JSON.stringify({ token: 'good', by: 'Dr A' });
    const a = await api(body + ' '.repeat(ACK_BODY_LIMIT - Buffer.byteLength(body)), flow(acknowledged));
    expect(a.status).toBe(200);
  });

  it('answers a page acknowledged before with changed false, and who acknowledged it', async () => {
    const before: AckResult = { ...acknowledged, changed: false };
    const a = await api({ token: 'good', by: 'Dr B' }, flow(before));
    expect([a.status, a.outcome]).toEqual([200, 'already-acknowledged']);
    expect(JSON.parse(a.body)).toMatchObject({ changed: false, page: { ack: { by: 'Dr A (icu fellow)' } } });
  });

  it('refuses a forged link sent without a name as a refused link (403), not a form to fill in', async () => {
    const calls: string[] = [];
    const a = await submitLink('forged', { body: 'by=', client: 'x' }, flow(refused('link-forged'), calls));
    expect([a.status, a.outcome]).toEqual([403, 'link-refused']);
    expect(calls).toEqual(['forged (no name) x']);
  });

  it('tells a client over its budget of refused links when to try again (Retry-After)', async () => {
    const deps: AckFlowDeps = { ...flow(acknowledged), refusals: { admit: async () => 30, refused: () => undefined } };
    const a = await api({ token: 'good', by: 'Dr A' }, deps);
    expect([a.status, a.headers['retry-after']]).toEqual([429, '30']);
    const f = await submitLink('good', { body: 'by=Dr+A', client: 'x' }, deps);
    expect([f.status, f.headers['retry-after']]).toEqual([429, '30']);
  });

  it('shows a link to a page acknowledged already with who acknowledged it, when and how', async () => {
    const done = { ...page, status: 'acknowledged', ack: { by: 'Dr A (icu fellow)', at: 0, via: 'link' } } as Page;
    const shown = await showLink('good', { ...flow(acknowledged), page: async () => done });
    expect(shown.body).toContain('Already acknowledged');
    expect(shown.body).toContain('Dr A (icu fellow)');
  });
});

describe('pinned by a mutation run', () => {
  it('refuses a link token longer than 2048 characters as damaged, before verifying it or reaching the pager', async () => {
    const calls: string[] = [];
    const verified: string[] = [];
    const deps: AckFlowDeps = {
      ...flow(acknowledged, calls),
      verify: async (token) => {
        verified.push(token);
        return { ok: false, reason: 'malformed' };
      },
    };
    const long = 'a'.repeat(2049);
    for (const a of [await showLink(long, deps), await submitLink(long, { body: 'by=Dr+A', client: 'x' }, deps)]) {
      expect([a.status, a.outcome]).toEqual([403, 'link-refused']);
      expect(a.body).toContain('incomplete or damaged');
    }
    expect([calls, verified]).toEqual([[], []]);
    // 2048 is still a token to check.
    await showLink('a'.repeat(2048), deps);
    expect(verified).toHaveLength(1);
  });
});

describe("a page a higher grade replaced names the page that replaced it (2026-12-06; before, only 'a newer page')", () => {
  const MIN = 60_000;
  // The link's page: CRS grade 1 to the ICU, replaced by grade 2 at 10:03, replaced in turn by grade 3 at 10:05.
  const at = (m: number) => Date.parse('2026-11-26T10:00:00Z') + m * MIN;
  const replaced = { ...page, grade: 1, status: 'superseded', supersededBy: 'crs|P-1|#4|icu' } as Page;
  const grade2 = { ...page, pageId: 'crs|P-1|#4|icu', grade: 2, summary: 'CRS 2', triggeredAt: at(3) } as Page;
  const grade3 = { ...page, pageId: 'crs|P-1|#5|icu', summary: 'CRS 3 newer', triggeredAt: at(5) } as Page;
  /** The flow over these stored pages (the link's page among them), the link refused as not open when sent. */
  const over = (...stored: Page[]): AckFlowDeps => ({
    ...flow(refused('not-open')),
    page: async (id) => [replaced, ...stored].find((p) => p.pageId === id),
  });
  /** What the link answers on GET and on its form's POST: the status line of each (the same). */
  async function said(deps: AckFlowDeps): Promise<string> {
    const shown = await showLink('good', deps);
    const sent = await submitLink('good', { body: 'by=Dr+A', client: 'x' }, deps);
    expect([shown.status, sent.status]).toEqual([200, 409]);
    const status = (body: string) => inlineText(body).match(/<p class="status">([^<]*)<\/p>/)![1]!;
    expect(status(sent.body)).toBe(status(shown.body));
    return status(shown.body);
  }
  // None named (2026-12-06): "answer that one" pointed at nothing the clinician has; where to look instead, the
  // on-call board only where there is one.
  const NONE = (board: boolean) =>
    `A newer page about this patient replaced it (a higher grade); which one was not recorded with this page, and it may have gone to another team. Nothing was recorded. Look for the newest page about this patient ${board ? 'on the on-call board or ' : ''}in your messages.`;
  const OLD = NONE(true);

  it('names the condition, grade, time and role of the newer page, and says to answer it', async () => {
    expect(await said(over(grade2))).toBe(
      'A newer page replaced it: CRS grade 2 at 2026-11-26 10:03 UTC (paged to ICU registrar): answer that one.',
    );
  });

  it('follows each newer page to the newest, and says whether it is still to answer, never by whom', async () => {
    const chain = { ...grade2, status: 'superseded', supersededBy: grade3.pageId } as Page;
    expect(await said(over(chain, { ...grade3, level: 1 }))).toBe(
      'A newer page replaced it: CRS grade 3 at 2026-11-26 10:05 UTC (paged to ICU consultant): answer that one.',
    );
    const acked = { ...grade3, status: 'acknowledged', ack: { by: 'Dr Seen', at: at(7), via: 'link' } } as Page;
    const text = await said(over(chain, acked));
    expect(text).toBe(
      'A newer page replaced it: CRS grade 3 at 2026-11-26 10:05 UTC (paged to ICU registrar), acknowledged at 2026-11-26 10:07 UTC.',
    );
    expect((await showLink('good', over(chain, acked))).body).not.toContain('Dr Seen');
    expect(await said(over(chain, { ...grade3, status: 'resolved' } as Page))).toMatch(
      /grade 3 at .*; the grade fell since: nothing is left to answer\.$/,
    );
    expect(await said(over(chain, { ...grade3, heldBy: 's1' } as Page))).toMatch(
      /grade 3 at .* \(held by a silence, not sent yet\): answer that one\.$/,
    );
  });

  it("never names another patient's page nor another team's: today's sentence instead", async () => {
    for (const other of [
      { ...grade2, patientId: 'P-2', summary: 'CRS 2 of P-2' },
      { ...grade2, team: 'hematology' },
      { ...grade2, pageId: 'crs|P-2|#4|icu' }, // a store answering with a page of another id
    ] as Page[]) {
      expect(await said({ ...over(), page: async (id) => (id === replaced.pageId ? replaced : other) })).toBe(OLD);
      expect(
        (await showLink('good', { ...over(), page: async (id) => (id === page.pageId ? replaced : other) })).body,
      ).not.toContain('P-2');
    }
  });

  it("says today's sentence for a page replaced before (none named), or whose newer page is gone or unreadable", async () => {
    const { supersededBy: _, ...before } = replaced;
    expect(await said({ ...over(), page: async () => before })).toBe(OLD);
    expect(await said({ ...over(), page: async () => before, board: false })).toBe(NONE(false));
    expect(await said({ ...over(), page: async () => before })).not.toContain('answer that one');
    expect(await said(over())).toBe(OLD);
    const unreadable: AckFlowDeps = {
      ...over(),
      page: async (id) => {
        if (id === replaced.pageId) return replaced;
        throw new PageUnreadable(id, 'not JSON');
      },
    };
    expect(await said(unreadable)).toBe(OLD);
  });

  // 2026-12-06: a routing of its own paged the higher grade to other teams: said, the same on every host.
  it("says which teams the newer grade went to when it paged none of this page's team", async () => {
    const { supersededBy: _, ...elsewhere } = { ...replaced, supersededTeams: ['neurology', 'hematology'] };
    for (const board of [true, false])
      expect(await said({ ...over(), page: async () => elsewhere, board })).toBe(
        'A newer page about this patient replaced it: the higher grade was routed to the neurology resident and the hematology fellow, not to this team. Nothing was recorded.',
      );
  });

  // A newer page of this team, itself replaced by a grade paged to other teams only: not "answer the newest", a page
  // this team never had (2026-12-06: the routing's case above, one page further on).
  it('says where a grade went when the newer page it follows to was replaced by one paged to other teams', async () => {
    const chain = { ...grade2, status: 'superseded', supersededTeams: ['hematology'] } as Page;
    const text = await said(over(chain));
    expect(text).toBe(
      'A newer page replaced it: CRS grade 2 at 2026-11-26 10:03 UTC (paged to ICU registrar); the higher grade since was routed to the hematology fellow, not to this team.',
    );
    expect(text).not.toContain('answer the newest');
  });

  // Pinned by a mutation run: the teams are said only of a replaced page, and only when there are some.
  it('says the teams of a replaced page only: an informational one says so, an empty list says where to look', async () => {
    const { supersededBy: _, ...elsewhere } = { ...replaced, supersededTeams: ['neurology'] };
    // A page replaced before it was ever sent becomes informational, and keeps the teams it was replaced for.
    const info = { ...elsewhere, status: 'info' } as Page;
    expect(await said({ ...over(), page: async () => info })).toBe('An informational page: nothing to acknowledge.');
    expect(await said({ ...over(), page: async () => ({ ...elsewhere, supersededTeams: [] }) })).toBe(OLD);
  });

  it('ends a loop of pages naming each other after 3 newer pages, read once each', async () => {
    const reads: string[] = [];
    const a = { ...grade2, status: 'superseded', supersededBy: grade3.pageId } as Page;
    const b = { ...grade3, status: 'superseded', supersededBy: grade2.pageId } as Page;
    const deps: AckFlowDeps = {
      ...over(),
      page: async (id) => {
        reads.push(id);
        return [replaced, a, b].find((p) => p.pageId === id);
      },
    };
    expect((await showLink('good', deps)).body).toContain('a newer page replaced that one too: answer the newest.');
    expect(reads).toEqual([replaced.pageId, grade2.pageId, grade3.pageId, grade2.pageId]);
  });
});

// POST /v1/acks fuzzed (2026-12-06, seeded by FC_SEED): a body of any JSON type, objects with odd keys (near
// misses, Object.prototype's names, unicode) and token and by of any JSON value. Never a throw or a 5xx; a 400
// names the field and what is wrong with it; only a well-formed request reaches the pager.
describe('POST /v1/acks, fuzzed', () => {
  const key = fc.oneof(
    fc.constantFrom(
      'token',
      'by',
      'tokne',
      'By',
      '__proto__',
      'constructor',
      'toString',
      '',
      'tøken',
      '"',
      'x'.repeat(500),
    ),
    fc.string({ maxLength: 20 }),
  );
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom('good', 'Dr A', ' ', 'a\u0000b', 'x'.repeat(300)),
  );
  const body = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.dictionary(key, value, { maxKeys: 4 }).map((o) => JSON.stringify(o)),
    // As JSON.parse makes it, a key `__proto__` of the object's own.
    fc
      .record({ token: value, by: value })
      .map(({ token, by }) => `{"token":${JSON.stringify(token)},"by":${JSON.stringify(by)}}`),
    fc
      .tuple(value, value, key, value)
      .map(
        ([t, b, k, v]) =>
          `{"token":${JSON.stringify(t)},"by":${JSON.stringify(b)},${JSON.stringify(k)}:${JSON.stringify(v)}}`,
      ),
    fc.string({ unit: 'binary', maxLength: 50 }),
  );

  it('answers every body with 200 or a 4xx whose errors name the field and the problem', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const calls: string[] = [];
        const a = await api(text, flow(acknowledged, calls));
        expect([200, 400, 413], text).toContain(a.status);
        const out = JSON.parse(a.body) as { errors?: string[] };
        if (a.status !== 400) return;
        expect(calls, text).toEqual([]);
        expect(out.errors!.length, text).toBeGreaterThan(0);
        for (const e of out.errors!) expect(e, text).toMatch(/^(body|token|by): \S|^unknown field "/);
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {}
        // A field sent is never called missing: what is wrong with it is said.
        for (const f of ['token', 'by'])
          if (parsed && typeof parsed === 'object' && Object.hasOwn(parsed, f) && parsed[f] !== null)
            for (const e of out.errors!) expect(e, text).not.toMatch(new RegExp(`^${f}: is required`));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('the acknowledge page of a page a silence held and released says so, in site time (2026-12-07)', () => {
  const MIN = 60_000;
  const at = (m: number) => Date.parse('2026-11-26T10:00:00Z') + m * MIN;
  // Held at 10:00 UTC, released at 10:40 UTC when its silence ended: 11:00 and 11:40 in Paris.
  const released = { ...page, heldAt: at(0), releasedAt: at(40) } as Page;
  const HELD =
    'Held by a silence from 2026-11-26 11:00 CET, sent 2026-11-26 11:40 CET when it ended: the change it is about may be older than this page.';
  const paris = (p: Page, result: AckResult = { ok: true, changed: true, page: p }): AckFlowDeps => ({
    ...flow(result),
    page: async () => p,
    timeZone: 'Europe/Paris',
  });

  it('on the form and after acknowledging, in the words of the e-mail', async () => {
    expect(inlineText((await showLink('good', paris(released))).body)).toContain(HELD);
    const acked = { ...released, status: 'acknowledged', ack: { by: 'Dr A', at: at(45), via: 'link' } } as Page;
    const sent = await submitLink('good', { body: 'by=Dr+A', client: 'x' }, paris(acked));
    expect(sent.status).toBe(200);
    expect(inlineText(sent.body)).toContain(HELD);
  });

  it('says only when it was sent for a page held before 2026-12-07 (no heldAt), and nothing for one never held', async () => {
    const { heldAt: _, ...before } = released;
    expect(inlineText((await showLink('good', paris(before as Page))).body)).toContain(
      'Held by a silence, sent 2026-11-26 11:40 CET when it ended',
    );
    expect((await showLink('good', paris(page))).body).not.toContain('Held by a silence');
    // Held again since (a new silence): not sent yet, so nothing of the earlier release.
    expect((await showLink('good', paris({ ...released, heldBy: 's-2' }))).body).not.toContain('Held by a silence');
  });
});

describe("a replaced page's answer gives the newer page's times in the site's zone, as the rest of the page", () => {
  const at = (m: number) => Date.parse('2026-11-26T10:00:00Z') + m * 60_000;
  const replaced = { ...page, grade: 1, status: 'superseded', supersededBy: 'crs|P-1|#4|icu' } as Page;
  const newer = { ...page, pageId: 'crs|P-1|#4|icu', grade: 2, triggeredAt: at(3) } as Page;
  it('on the link and its form, open and acknowledged', async () => {
    for (const [n, text] of [
      [newer, 'CRS grade 2 at 2026-11-26 11:03 CET (paged to ICU registrar): answer that one.'],
      [
        { ...newer, status: 'acknowledged', ack: { by: 'Dr B', at: at(7), via: 'link' } },
        'CRS grade 2 at 2026-11-26 11:03 CET (paged to ICU registrar), acknowledged at 2026-11-26 11:07 CET.',
      ],
    ] as const) {
      const deps: AckFlowDeps = {
        ...flow(refused('not-open')),
        page: async (id) => [replaced, n as Page].find((p) => p.pageId === id),
        timeZone: 'Europe/Paris',
      };
      for (const a of [await showLink('good', deps), await submitLink('good', { body: 'by=A', client: 'x' }, deps)]) {
        const body = inlineText(a.body);
        expect(body).toContain(`A newer page replaced it: ${text}`);
        expect(body).not.toMatch(/UTC|\dZ\b/);
      }
    }
  });
});
