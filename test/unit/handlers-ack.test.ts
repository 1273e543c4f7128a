// The ack Lambda with the real pager over in-memory stores, as API Gateway calls it: the link's GET shows the page
// and a form and never acknowledges; its POST acknowledges with the name typed; POST /v1/acks does the same for
// apps; a forged, altered or expired token is refused with 403: an expired one audited in the patient's trail, a
// forged or altered one recorded as a security event with the client's address (never in the trail); the log has
// ids only.
import { createHash, randomBytes } from 'node:crypto';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { signAck } from '#app/ack.ts';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager } from '#app/pager.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { DEFAULT_PAGING } from '#domain/paging.ts';
import { dynamoPager } from '#adapters/aws/dynamo-pager.ts';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';
import type { PageMessage, SecurityEvent } from '#ports';
import { pagingMetrics, telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import { ACK_KEYS_ISSUED_RELOAD_MS, ACK_KEYS_MAX_AGE_MS, ACK_KEYS_RELOAD_MS } from '#adapters/aws/ack-secret.ts';
import { ACK_PAGE_HEADERS } from '#app/ack-page.ts';
import { captureOutput, httpEvent, metricSum, quiet } from '#test/support/lambda-events.ts';
import { inlineText } from '#test/support/html.ts';

type HandlerModule = typeof import('#functions/ack/handler.ts');
let mod: HandlerModule;
let live: Telemetry;
beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('#functions/ack/handler.ts');
  live = telemetry('ack');
});

const T = Date.parse('2026-11-26T10:00:00Z');
const secret = randomBytes(32);
let now = T;
let pages: MemoryPageStore;
let audit: MemoryAuditLog;
let sent: PageMessage[];
let security: SecurityEvent[];
let pager: Pager;

beforeEach(async () => {
  now = T;
  audit = new MemoryAuditLog();
  pages = new MemoryPageStore(audit);
  sent = [];
  security = [];
  pager = new Pager({
    pages,
    sender: { send: async (m) => void sent.push(m) },
    audit,
    config: DEFAULT_PAGING,
    ackSecret: secret,
    ackBaseUrl: 'https://api.example/ack/',
    security: { record: async (e) => void security.push(e) },
  });
  await pager.onNotification(
    {
      notificationId: 'crs|P-1|m3',
      patientId: 'P-1',
      condition: 'crs',
      kind: 'escalation',
      toGrade: 3,
      teams: ['icu'],
      summary: 'PROVISIONAL CRS grade 3, patient P-1, bed H4-1',
    },
    T,
  );
});

/** The ack function over this file's pager and pages, with `deps` overriding what a test changes. */
const ackHandler = (deps: Partial<Parameters<HandlerModule['createAckHandler']>[0]> = {}) =>
  mod.createAckHandler({
    paging: async () => ({
      pager,
      page: (id) => pages.get(id),
      config: DEFAULT_PAGING,
      timeZone: 'Europe/Paris',
    }),
    now: () => now,
    ...live,
    ...deps,
  });
const handler = () => quiet(ackHandler());

const token = () => sent[0]!.ackUrl!.split('/').at(-1)!;
const link = (method: 'GET' | 'POST', t: string, body?: string) =>
  handler()(
    httpEvent({
      method,
      path: `/ack/${t}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      ...(body !== undefined ? { body } : {}),
    }),
  );
const api = (body: unknown, contentType = 'application/json') =>
  handler()(
    httpEvent({
      method: 'POST',
      path: '/v1/acks',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
const status = async () => (await pages.get('crs|P-1|m3|icu'))!.status;

describe('ack handler', () => {
  it('shows the page and a name form on GET, and acknowledges nothing (link previews fetch GETs)', async () => {
    const res = await link('GET', token());
    expect(res.statusCode).toBe(200);
    expect(res.headers!['content-type']).toMatch(/^text\/html/);
    expect(res.headers!['content-security-policy']).toContain("default-src 'none'");
    expect(inlineText(res.body!)).toContain('PROVISIONAL CRS grade 3, patient P-1, bed H4-1');
    expect(res.body).toContain('<form method="post">');
    expect(inlineText(res.body!)).toContain('since 2026-11-26 11:00 CET'); // the site's zone (Europe/Paris here), not UTC
    expect(await status()).toBe('open');
    expect(audit.events.map((e) => e.type)).not.toContain('acknowledgement');
  });

  it('tells the browser to come back over HTTPS only (HSTS), on every answer: API Gateway serves nothing else (2026-12-06)', async () => {
    // Until 2026-12-06 no answer said so: a phone that once followed an http:// address to the link could again.
    const hsts = 'max-age=31536000';
    expect((await link('GET', token())).headers!['strict-transport-security']).toBe(hsts);
    expect((await link('GET', 'forged.token')).headers!['strict-transport-security']).toBe(hsts);
    expect((await api({ token: token(), by: 'Dr A' })).headers!['strict-transport-security']).toBe(hsts);
    const failing = ackHandler({
      paging: async () => {
        throw Object.assign(new Error('down'), { name: 'AccessDeniedException' });
      },
    });
    const { result } = await captureOutput(() => failing(httpEvent({ method: 'GET', path: `/ack/${token()}` })));
    expect(result.headers!['strict-transport-security']).toBe(hsts);
  });

  it('acknowledges on the form\'s POST with the name typed and the role paged; again is "already acknowledged"', async () => {
    now = T + 120_000;
    const res = await link('POST', token(), 'by=Dr+Ada+Lovelace');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Acknowledged');
    expect(inlineText(res.body!)).toContain('Dr Ada Lovelace (ICU registrar) at 2026-11-26 11:02 CET');
    expect(await pages.get('crs|P-1|m3|icu')).toMatchObject({
      status: 'acknowledged',
      ack: { by: 'Dr Ada Lovelace (ICU registrar)', at: now, via: 'link' },
    });
    const again = await link('POST', token(), 'by=Someone+Else');
    expect(again.statusCode).toBe(200);
    expect(again.body).toContain('Already acknowledged');
  });

  it("reads the link's stored claims once for the form's acknowledgement", async () => {
    const reads = vi.spyOn(pages, 'ackLink');
    now = T + 120_000;
    const res = await link('POST', token(), 'by=Dr+Ada+Lovelace');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Dr Ada Lovelace (ICU registrar)');
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it("reads the link's stored claims once for the form on a page a higher grade replaced, named with its role", async () => {
    const higher = { notificationId: 'crs|P-1|m4', patientId: 'P-1', condition: 'crs', kind: 'escalation' } as const;
    await pager.onNotification({ ...higher, toGrade: 4, teams: ['icu'], summary: 's' }, T + 1000);
    const reads = vi.spyOn(pages, 'ackLink');
    const res = await link('POST', token(), 'by=Dr+B');
    expect(res.statusCode).toBe(409);
    // Which page replaced it, in the site's zone (until 2026-12-06 only "a newer page about this patient").
    expect(inlineText(res.body!)).toContain(
      'A newer page replaced it: CRS grade 4 at 2026-11-26 11:00 CET (paged to ICU registrar): answer that one.',
    );
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('asks again for a missing name, acknowledging nothing', async () => {
    const res = await link('POST', token(), 'by=+++');
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('Your name: is empty');
    expect(await status()).toBe('open');
  });

  it.each([
    [
      'forged',
      () => signAck(randomBytes(32), { pageId: 'crs|P-1|m3|icu', role: 'ICU registrar', expiresAt: T + 3_600_000 }),
    ],
    [
      'altered',
      // A character of the page's short link changed: nothing is stored for it.
      () => {
        const t = token();
        return `${t.slice(0, 5)}${t[5] === 'A' ? 'B' : 'A'}${t.slice(6)}`;
      },
    ],
    ['expired', () => signAck(secret, { pageId: 'crs|P-1|m3|icu', role: 'ICU registrar', expiresAt: T + 60_000 })],
  ])('refuses a %s link with 403, on the page and the API, and records each refusal', async (kind, make) => {
    now = T + 120_000;
    const t = make();
    const page = await link('POST', t, 'by=Mallory');
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('Link refused');
    // A second try at the same instant, alike to the character: counted too.
    const res = await api({ token: t, by: 'Mallory' });
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body!)).toEqual({ errors: [`acknowledge link ${kind === 'altered' ? 'forged' : kind}`] });
    expect((await link('GET', t)).statusCode).toBe(403);
    expect(await status()).toBe('open');
    const refusals = audit.events.filter((e) => e.type === 'acknowledgement-refused');
    if (kind === 'expired') {
      // Genuine (signed by us), answered late: the patient's trail says so.
      expect(refusals).toHaveLength(2); // the POSTs; a GET records nothing
      expect(refusals[0]).toMatchObject({
        patientId: 'P-1',
        details: { reason: 'expired', by: 'Mallory', pageId: 'crs|P-1|m3|icu' },
      });
      expect(security).toEqual([]);
    } else {
      // Vouched for by nobody: the security log, with the client's address and what the token claimed.
      expect(refusals).toEqual([]);
      expect(security).toHaveLength(2);
      expect(security[0]).toMatchObject({
        event: 'acknowledge-link-refused',
        reason: 'forged',
        client: '198.51.100.7',
        // A v1 token claims its page; a short one claims nothing but itself. The token's digest, never the token
        // (a damaged genuine link would be a few guesses from the real one), whatever was passed.
        claimed: {
          pageId: kind === 'forged' ? 'crs|P-1|m3|icu' : null,
          tokenDigest: createHash('sha256').update(t).digest('hex').slice(0, 16),
          by: 'Mallory',
        },
      });
      expect(JSON.stringify(security[0])).not.toContain(t);
    }
  });

  it('acknowledges through POST /v1/acks and says who and when', async () => {
    now = T + 60_000;
    const res = await api({ token: token(), by: 'Dr B' });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body!)).toEqual({
      acknowledged: true,
      changed: true,
      page: {
        pageId: 'crs|P-1|m3|icu',
        patientId: 'P-1',
        team: 'icu',
        status: 'acknowledged',
        level: 0,
        ack: { by: 'Dr B (ICU registrar)', at: '2026-11-26T10:01:00Z', via: 'link' },
      },
    });
  });

  it("answers the API's bad requests with the field and the problem", async () => {
    expect(JSON.parse((await api({ by: 'X' })).body!)).toEqual({
      errors: ['token: is required (the last part of the acknowledge link)'],
    });
    expect((await api({ token: token() })).statusCode).toBe(400);
    expect((await api('{not json')).statusCode).toBe(400);
    expect((await api({ token: token(), by: 'X' }, 'text/plain')).statusCode).toBe(415);
    expect((await api({ token: token(), by: 'x'.repeat(5000) })).statusCode).toBe(413);
  });

  it('answers 409 when the page has nothing left to acknowledge (a higher grade replaced it)', async () => {
    await pager.onNotification(
      {
        notificationId: 'crs|P-1|m4',
        patientId: 'P-1',
        condition: 'crs',
        kind: 'escalation',
        toGrade: 4,
        teams: ['icu'],
        summary: 's',
      },
      T + 1000,
    );
    const res = await api({ token: token(), by: 'Dr B' });
    expect(res.statusCode).toBe(409);
    expect(inlineText((await link('GET', token())).body!)).toContain(
      'A newer page replaced it: CRS grade 4 at 2026-11-26 11:00 CET',
    );
  });

  it('offers the form on an exhausted page and records a late acknowledgement (someone owns it from then on)', async () => {
    for (let minutes = 5; (await status()) === 'open' && minutes <= 240; minutes += 5) {
      now = T + minutes * 60_000;
      await pager.onTick(now);
    }
    expect(await status()).toBe('exhausted');
    const form = await link('GET', token());
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('<form method="post">');
    const res = await link('POST', token(), 'by=Dr+Late');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Acknowledged');
    expect(await status()).toBe('acknowledged');
  });

  it('logs ids only: never the name typed', async () => {
    const { out } = await captureOutput(() => api({ token: token(), by: 'Dr Unique Name' }));
    expect(out).toContain('crs|P-1|m3|icu');
    expect(out).not.toContain('Unique');
  });

  // Pinned by a mutation run (2026-12-06): a refused answer's body shows the page (its summary: grade, bed), which is
  // the clinician's to read, not the log's.
  it('logs a refused acknowledgement by its outcome only, never the page the answer shows', async () => {
    const { result, out } = await captureOutput(() => link('POST', token(), 'by='));
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('H4-1');
    expect(out).toContain('"outcome":"invalid"');
    expect(out).not.toContain('H4-1');
  });
});

// A stack whose tables crs restore --backend aws made those of a backup (docs/runbook.md, "Restoring from a backup"):
// a link sent after the backup's instant is not in the restored Pages table. Until 2026-12-07 the ack function said
// it was altered or not issued here, which a clinician holding a link the system sent reads as a forgery; crs serve,
// restored from a crs backup, said why. The same words now, from the State table's restore record, while a link sent
// before the restore may still be unexpired.
describe('ack handler on a restored stack', () => {
  const restored = (restoredAt: number) =>
    quiet(
      ackHandler({
        paging: async () => ({
          pager,
          page: (id) => pages.get(id),
          config: DEFAULT_PAGING,
          timeZone: 'Europe/Paris',
          restore: async () => ({ restoredAt, takenAt: T - 3_600_000 }),
        }),
      }),
    );
  const unknown = () => {
    const t = token();
    return `${t.slice(0, 5)}${t[5] === 'A' ? 'B' : 'A'}${t.slice(6)}`;
  };

  it('says a link it does not know may be one sent after the backup, on the page and the API', async () => {
    now = T + 120_000;
    const h = restored(T + 60_000);
    const page = await h(httpEvent({ method: 'GET', path: `/ack/${unknown()}` }));
    expect(page.statusCode).toBe(403);
    expect(inlineText(page.body!)).toContain(
      'This acknowledge link is not known here: this server was restored from a backup of 2026-11-26 10:00 CET and does not know the links sent after it (or the link was altered). Nothing was recorded.',
    );
    const res = await h(
      httpEvent({
        method: 'POST',
        path: '/v1/acks',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: unknown(), by: 'Dr A' }),
      }),
    );
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body!).errors[0]).toMatch(
      /^acknowledge link not known: this server was restored from a backup of 2026-11-26 10:00 CET /,
    );
    expect(await status()).toBe('open');
  });

  it('says no more of it once every link sent before the restore has expired (ackLinkMinutes)', async () => {
    now = T + DEFAULT_PAGING.ackLinkMinutes * 60_000 + 120_000;
    const page = await restored(T + 60_000)(httpEvent({ method: 'GET', path: `/ack/${unknown()}` }));
    expect(page.statusCode).toBe(403);
    expect(inlineText(page.body!)).toContain('This acknowledge link is not valid');
  });
});

describe("the ack function's security log", () => {
  it('is its log (WARN "security", with the claims) and counts forged links toward AckLinksRefused like audited refusals', async () => {
    const t = telemetry('ack-security-test');
    const { onSecurity, onAudit } = pagingMetrics(t);
    const { out } = await captureOutput(async () => {
      onSecurity({
        at: '2026-11-26T10:00:00Z',
        event: 'acknowledge-link-refused',
        reason: 'forged',
        client: '198.51.100.7',
        claimed: { pageId: 'crs|P-1|m3|icu', by: 'Mallory' },
      });
      onAudit({ type: 'acknowledgement-refused', details: { reason: 'expired' } });
      t.metrics.publishStoredMetrics();
    });
    const warn = out
      .split('\n')
      .filter((l) => l.includes('"message":"security"'))
      .map((l) => JSON.parse(l) as { level: string; reason: string; claimed: { by: string } });
    expect(warn).toMatchObject([{ level: 'WARN', reason: 'forged', claimed: { by: 'Mallory' } }]);
    expect(metricSum(out, 'AcknowledgementsRefused')).toBe(2);
  });
});

describe('pinned by a mutation run: the acknowledge-link key on AWS', () => {
  type SecretsClient = import('@aws-sdk/client-secrets-manager').SecretsManagerClient;
  const holding = (out: { SecretString?: string; SecretBinary?: Uint8Array }) =>
    ({ send: async () => out }) as unknown as SecretsClient;
  const read = async (out: { SecretString?: string; SecretBinary?: Uint8Array }) =>
    (await import('#adapters/aws/ack-secret.ts')).readAckSecret(holding(out), 'arn:secret');

  it('takes a key of 32 bytes or more, as the bytes of its text or as binary', async () => {
    const text = 'é'.repeat(16); // 16 characters, 32 bytes of UTF-8
    expect(await read({ SecretString: text })).toEqual(Buffer.from(text, 'utf8'));
    const binary = randomBytes(32);
    expect(await read({ SecretBinary: new Uint8Array(binary) })).toEqual(binary);
  });

  it('refuses a shorter key (acknowledge links would be guessable), or none', async () => {
    await expect(read({ SecretString: 'x'.repeat(31) })).rejects.toThrow(
      'the acknowledge-link secret must be at least 32 bytes',
    );
    await expect(read({ SecretBinary: new Uint8Array(16) })).rejects.toThrow(/at least 32 bytes/);
    await expect(read({})).rejects.toThrow(/at least 32 bytes/);
  });
});

describe('pinned by a mutation run: the ack function', () => {
  const raw = ackHandler;

  it('answers 404 to a route it does not serve: GET /v1/acks, a token on another path', async () => {
    const noRoute = { statusCode: 404, body: JSON.stringify({ errors: ['no such route'] }) };
    expect(await handler()(httpEvent({ method: 'GET', path: '/v1/acks' }))).toMatchObject(noRoute);
    const elsewhere = { ...httpEvent({ method: 'GET', path: '/board/x' }), pathParameters: { token: token() } };
    expect(await handler()(elsewhere)).toMatchObject(noRoute);
    expect(await status()).toBe('open');
  });

  it('shows and acknowledges the page of a team the paging config no longer has (a rollback): its link names the role it was sent to', async () => {
    const withCardiology = {
      ...DEFAULT_PAGING,
      policies: { ...DEFAULT_PAGING.policies, cardiology: { levels: ['cardiology fellow'], loops: 1 } },
    } as typeof DEFAULT_PAGING;
    const before = sent.length;
    await new Pager({
      pages,
      sender: { send: async (m) => void sent.push(m) },
      audit,
      config: withCardiology,
      ackSecret: secret,
      ackBaseUrl: 'https://api.example/ack/',
    }).onNotification(
      {
        notificationId: 'crs|P-9|#1',
        patientId: 'P-9',
        condition: 'crs',
        kind: 'escalation',
        toGrade: 3,
        teams: ['cardiology' as never],
        summary: 'PROVISIONAL CRS grade 3, patient P-9',
      },
      T,
    );
    const t = sent[before]!.ackUrl!.split('/').at(-1)!;
    const shown = await link('GET', t);
    expect([shown.statusCode, shown.body!.includes('cardiology fellow')]).toEqual([200, true]);
    const done = await link('POST', t, 'by=Dr+C');
    expect([done.statusCode, done.body!.includes('Dr C (cardiology fellow)')]).toEqual([200, true]);
    expect(await pages.get('crs|P-9|#1|cardiology')).toMatchObject({ status: 'acknowledged' });
    const again = await link('POST', t, 'by=Dr+D');
    expect([again.statusCode, again.body!.includes('Already acknowledged')]).toEqual([200, true]);
  });

  it('answers a link to a page whose stored item cannot be read with a page saying so (500, not a failed invocation), the API likewise, the log naming the page', async () => {
    const { level: _, ...broken } = (await pages.get('crs|P-1|m3|icu'))!;
    await pages.save([broken as never]);
    // Until 2026-12-05 the function failed (the phone got API Gateway's bare 500, AckErrors), with nothing said.
    const { result, out } = await captureOutput(async () => [
      await link('GET', token()),
      await link('POST', token(), 'by=Dr+A'),
      await api({ token: token(), by: 'Dr A' }),
    ]);
    const [shown, posted, viaApi] = result;
    for (const r of [shown!, posted!]) {
      expect(r.statusCode).toBe(500);
      expect(r.headers!['content-type']).toMatch(/^text\/html/);
      expect(r.body).toContain('This page cannot be read');
      expect(r.body).toContain('cannot be acknowledged with this link');
    }
    expect(viaApi!.statusCode).toBe(500);
    expect(JSON.parse(viaApi!.body as string)).toEqual({
      errors: [
        'page crs|P-1|m3|icu: its stored record cannot be read (level is missing); it cannot be acknowledged until an operator mends it',
      ],
    });
    expect(out).toMatch(
      /"message":"acknowledgement refused".*"outcome":"page-unreadable".*"pageId":"crs\|P-1\|m3\|icu"/,
    );
    expect(out).not.toMatch(/acknowledgement failed/);
  });

  it('answers a link it cannot serve (the store failing) with a page saying nothing was recorded, counted for AckErrors', async () => {
    // Until 2026-12-05 the function threw: the phone got API Gateway's {"message":"Internal Server Error"}.
    const failing = raw({
      paging: async () => {
        throw Object.assign(new Error('secret arn:aws:... denied'), { name: 'AccessDeniedException' });
      },
    });
    const { result, out } = await captureOutput(() => failing(httpEvent({ method: 'GET', path: `/ack/${token()}` })));
    expect(result).toMatchObject({ statusCode: 500, headers: ACK_PAGE_HEADERS });
    expect(result.body).toContain('<h1>Page not available</h1>');
    expect(result.body).toContain(
      'Nothing was recorded. Open the link again in a minute; if it fails again, phone the team',
    );
    expect(out).toMatch(/"level":"ERROR".*"message":"acknowledgement failed".*"error":"AccessDeniedException"/);
    expect(out).not.toContain('arn:aws');
    expect(metricSum(out, 'AckLinkFailures')).toBe(1);
  });

  it("answers a form the store cannot record with a page saying so, the page left open; the API's failure stays a function error", async () => {
    vi.spyOn(pages, 'save').mockRejectedValue(Object.assign(new Error('down'), { name: 'InternalServerError' }));
    const { result, out } = await captureOutput(() =>
      raw()(
        httpEvent({
          method: 'POST',
          path: `/ack/${token()}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'by=Dr+Ada',
        }),
      ),
    );
    expect(result).toMatchObject({ statusCode: 500, headers: ACK_PAGE_HEADERS });
    expect(result.body).toContain('<h1>Not recorded</h1>');
    expect(result.body).toContain('so the escalation goes on');
    expect(metricSum(out, 'AckLinkFailures')).toBe(1);
    expect(out).not.toContain('Dr Ada');
    expect(await status()).toBe('open');
    // An app's JSON API: API Gateway's 500, and the function's error (the AckErrors alarm counts both).
    const viaApi = captureOutput(() =>
      raw()(
        httpEvent({
          method: 'POST',
          path: '/v1/acks',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token: token(), by: 'Dr Ada' }),
        }),
      ),
    );
    await expect(viaApi).rejects.toThrow('down');
  });

  it('flushes its metrics after every request, answered or failed', async () => {
    let flushed = 0;
    const metrics: typeof live.metrics = Object.assign(Object.create(live.metrics), {
      publishStoredMetrics: () => void flushed++,
      addMetric: () => undefined,
      hasStoredMetrics: () => true, // something counted: an empty buffer is not flushed (flushMetrics)
    });
    await quiet(raw({ metrics }))(httpEvent({ method: 'GET', path: '/nowhere' }));
    expect(flushed).toBe(1);
    const failing = raw({ metrics, paging: () => Promise.reject(new Error('down')) });
    expect(await quiet(failing)(httpEvent({ method: 'GET', path: `/ack/${token()}` }))).toMatchObject({
      statusCode: 500,
    });
    expect(flushed).toBe(2);
    const apiEvent = httpEvent({ method: 'POST', path: '/v1/acks', headers: { 'content-type': 'application/json' } });
    await expect(quiet(failing)(apiEvent)).rejects.toThrow('down');
    expect(flushed).toBe(3);
  });

  it("logs a refused link (warn, with the outcome) and never the page's summary or bed", async () => {
    const forged = `${token().slice(0, -2)}AA`;
    const { out } = await captureOutput(() => raw()(httpEvent({ method: 'GET', path: `/ack/${forged}` })));
    expect(out).toMatch(/"level":"WARN".*"message":"acknowledgement refused"/);
    const acked = await captureOutput(() => api({ token: token(), by: 'Dr Ada' }));
    expect(acked.out).toContain('"message":"acknowledged"');
    expect(acked.out).not.toContain('H4-1');
    expect(acked.out).not.toContain('PROVISIONAL');
  });
});

describe("the ack function's keys after a rotation (2026-12-06): AWSCURRENT, then AWSPREVIOUS (liveDeps)", () => {
  const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AckSigningSecret';
  const STACK_ENV: Record<string, string> = {
    CRS_PAGES_TABLE: 'pages',
    CRS_AUDIT_TABLE: 'audit',
    CRS_ACK_SECRET_ARN: SECRET_ARN,
    CRS_ACK_BASE_URL: 'https://api.example/ack/',
  };
  const k1 = 'a'.repeat(64); // the secret before put-secret-value: AWSPREVIOUS after it
  const k2 = 'b'.repeat(64);
  let ddb: FakeDynamo;
  let secrets: ReturnType<typeof mockClient>;
  /** What Secrets Manager holds: AWSCURRENT, and AWSPREVIOUS (none: a secret never rotated, or its label removed). */
  const holding = (current: string, previous?: string) =>
    secrets.on(GetSecretValueCommand).callsFake((input: { VersionStage?: string }) => {
      if (input.VersionStage === undefined || input.VersionStage === 'AWSCURRENT') return { SecretString: current };
      if (input.VersionStage === 'AWSPREVIOUS' && previous !== undefined) return { SecretString: previous };
      throw new ResourceNotFoundException({ message: "can't find the staging label", $metadata: {} });
    });

  beforeEach(() => {
    ddb = new FakeDynamo(PAGING_TABLES);
    secrets = mockClient(SecretsManagerClient);
    for (const [name, value] of Object.entries(STACK_ENV)) vi.stubEnv(name, value);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    ddb.mock.restore();
    secrets.restore();
  });

  /** A page sent by the notify function's pager under `key`: its link's token. */
  async function sentUnder(key: string, patientId: string): Promise<string> {
    const out: PageMessage[] = [];
    const { pager } = dynamoPager(
      {
        config: DEFAULT_CONFIG,
        ackSecret: Buffer.from(key),
        ackBaseUrl: STACK_ENV.CRS_ACK_BASE_URL!,
        pagesTable: 'pages',
        auditTable: 'audit',
      },
      ddb.client(),
      { sender: { send: async (m) => void out.push(m) } },
    );
    await pager.onNotification(
      {
        notificationId: `crs|${patientId}|m3`,
        patientId,
        condition: 'crs',
        kind: 'escalation',
        toGrade: 3,
        teams: ['icu'],
        summary: 'PROVISIONAL CRS grade 3',
      },
      T,
    );
    return out[0]!.ackUrl!.split('/').at(-1)!;
  }
  const show = async (token: string, at = T) =>
    (await quiet(mod.createAckHandler(mod.liveDeps(() => at)))(httpEvent({ method: 'GET', path: `/ack/${token}` })))
      .statusCode;

  it('takes a link sent under the key before put-secret-value until it expires; the new key signs and verifies', async () => {
    const old = await sentUnder(k1, 'P-old');
    const fresh = await sentUnder(k2, 'P-new');
    holding(k2, k1);
    expect(await show(old)).toBe(200);
    // One cold start: AWSCURRENT and AWSPREVIOUS, read once each.
    const calls = secrets.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input);
    expect(calls).toEqual([{ SecretId: SECRET_ARN }, { SecretId: SECRET_ARN, VersionStage: 'AWSPREVIOUS' }]);
    expect(await show(fresh)).toBe(200);
    // The expiry holds under the previous key; a forged link is refused.
    expect(await show(old, T + DEFAULT_PAGING.ackLinkMinutes * 60_000)).toBe(403);
    expect(await show(`${old.slice(0, -2)}${old.endsWith('AA') ? 'AQ' : 'AA'}`)).toBe(403);
  });

  it('refuses it after a second rotation or with AWSPREVIOUS removed (the old key leaked); a secret never rotated is normal', async () => {
    const old = await sentUnder(k1, 'P-old');
    const fresh = await sentUnder(k2, 'P-new');
    holding(k2);
    expect([await show(old), await show(fresh)]).toEqual([403, 200]);
    holding('c'.repeat(64), k2);
    expect([await show(old), await show(fresh)]).toEqual([403, 200]);
  });

  it('reads the keys again for a link under a key put after its cold start (a warm container): at once for one issued here, at most every 30 s for a forgery', async () => {
    holding(k1);
    let clock = T;
    const warm = quiet(mod.createAckHandler(mod.liveDeps(() => clock)));
    const open = async (token: string) => (await warm(httpEvent({ method: 'GET', path: `/ack/${token}` }))).statusCode;
    expect(await open(await sentUnder(k1, 'P-old'))).toBe(200);
    const reads = () => secrets.commandCalls(GetSecretValueCommand).length;
    expect(reads()).toBe(2);
    // put-secret-value at T + 5 s: a notify container that read it signs with k2; this container read k1 only.
    holding(k2, k1);
    const fresh = await sentUnder(k2, 'P-new');
    const forged = (t: string) => `${t.slice(0, -2)}${t.endsWith('AA') ? 'AQ' : 'AA'}`;
    clock = T + 6_000;
    // A forged link (nothing stored under it): refused, and no read (forgeries cost at most a read each 30 s).
    expect(await open(forged(fresh))).toBe(403);
    expect(reads()).toBe(2);
    // The clinician's link, issued here: read again at once, taken (until 2026-12-06: 403 for up to 30 s).
    expect(await open(fresh)).toBe(200);
    expect(reads()).toBe(4);
    expect(await open(forged(fresh))).toBe(403);
    expect(reads()).toBe(4);
    clock = T + 6_000 + ACK_KEYS_RELOAD_MS;
    expect(await open(forged(fresh))).toBe(403);
    expect(reads()).toBe(6);
    // A read that fails keeps the keys held.
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    clock = T + 6_000 + 2 * ACK_KEYS_RELOAD_MS;
    expect(await open(forged(fresh))).toBe(403);
    expect(reads()).toBe(8);
    expect(await open(fresh)).toBe(200);
    expect(await open(await sentUnder(k1, 'P-old2'))).toBe(200);
  });

  it('one genuine link under a dropped key reads the keys at most once a second (2026-12-06)', async () => {
    holding(k2);
    let clock = T;
    const warm = quiet(mod.createAckHandler(mod.liveDeps(() => clock)));
    const open = async (token: string) => (await warm(httpEvent({ method: 'GET', path: `/ack/${token}` }))).statusCode;
    const dropped = await sentUnder(k1, 'P-old');
    const reads = () => secrets.commandCalls(GetSecretValueCommand).length;
    expect(await open(dropped)).toBe(403); // the cold start's read, and no other within a second of it
    expect(reads()).toBe(2);
    for (const [at, total] of [
      [ACK_KEYS_ISSUED_RELOAD_MS - 1, 2],
      [ACK_KEYS_ISSUED_RELOAD_MS, 4],
      [2 * ACK_KEYS_ISSUED_RELOAD_MS - 1, 4],
      [2 * ACK_KEYS_ISSUED_RELOAD_MS, 6],
    ]) {
      clock = T + at!;
      for (let i = 0; i < 3; i++) expect(await open(dropped)).toBe(403);
      expect(reads()).toBe(total);
    }
  });

  it('stops taking links under a dropped AWSPREVIOUS once its keys are 5 minutes old (a warm container, 2026-12-06); a failed read keeps them', async () => {
    holding(k2, k1);
    let clock = T;
    const warm = quiet(mod.createAckHandler(mod.liveDeps(() => clock)));
    const open = async (token: string) => (await warm(httpEvent({ method: 'GET', path: `/ack/${token}` }))).statusCode;
    const old = await sentUnder(k1, 'P-old');
    const fresh = await sentUnder(k2, 'P-new');
    expect([await open(old), await open(fresh)]).toEqual([200, 200]);
    const reads = () => secrets.commandCalls(GetSecretValueCommand).length;
    expect(reads()).toBe(2);
    // k1 leaked: the operator removes its AWSPREVIOUS label.
    holding(k2);
    clock = T + ACK_KEYS_MAX_AGE_MS - 1;
    expect(await open(old)).toBe(200); // the keys held are not yet 5 minutes old
    expect(reads()).toBe(2);
    clock = T + ACK_KEYS_MAX_AGE_MS;
    expect([await open(old), await open(fresh)]).toEqual([403, 200]);
    expect(reads()).toBe(4);
    // A read that fails keeps the keys held (k2 alone): counted and logged by the error's name only.
    secrets
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('secret arn:x throttled'), { name: 'ThrottlingException' }));
    clock = T + 2 * ACK_KEYS_MAX_AGE_MS;
    const failed = await captureOutput(() => open(fresh));
    expect(failed.result).toBe(200);
    expect(reads()).toBeGreaterThan(4);
    expect(metricSum(failed.out, 'AckKeyReadFailures')).toBe(1);
    expect(failed.out).toContain('"error":"ThrottlingException"');
    expect(failed.out).not.toContain('arn:x');
    expect(await open(old)).toBe(403);
  });

  it('ignores an AWSPREVIOUS shorter than 32 bytes (the functions refused it: it never signed a link), fails on other errors', async () => {
    const fresh = await sentUnder(k2, 'P-new');
    const underShort = await sentUnder('short', 'P-short');
    holding(k2, 'short');
    expect([await show(fresh), await show(underShort)]).toEqual([200, 403]);
    secrets.on(GetSecretValueCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    expect(await show(fresh)).toBe(500);
  });
});
