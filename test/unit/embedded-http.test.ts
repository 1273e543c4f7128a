// `crs serve` in process, over real HTTP: ingest statuses and auth, the page stream, the board's API (key, cookie,
// pages per team, acknowledgements), live events, the webhook with retries, and the board's assets (no network,
// strict CSP). Acknowledge links, silences, alerts and the audit export: embedded-paging-http.test.ts.
import fc from 'fast-check';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { EventEmitter } from 'node:events';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { lineStream } from '#test/support/lines.ts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACK_BODY_LIMIT } from '#app/ack.ts';
import { issueToken } from '#app/auth.ts';
import { DEFAULT_CONFIG, resolveConfig, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { SecurityEvent } from '#ports';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { boardCookieName } from '#hosts/embedded/board-key.ts';
import { createRequestHandler, type HostDeps } from '#hosts/embedded/http.ts';
import { DEFAULT_HTTP_LIMITS } from '#hosts/embedded/limits.ts';
import { StdoutSink } from '#hosts/embedded/sinks.ts';
import { SseHub } from '#hosts/embedded/sse.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import { crsMain, spawnCrs } from '#test/support/cli.ts';

const TOKEN = 'local-test-token-of-at-least-32-chars';
// The messages are from January 2026: no stale-feed alert here (they are tested in embedded-paging-http.test.ts).
const resolved = resolveConfig({ paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES } });
if (!resolved.ok) throw new Error(resolved.errors.join('; '));
const CONFIG = resolved.config;
let dir: string;
let server: EmbeddedServer;
let pageLines: string[];
let logs: string[];

async function start(extra: Partial<Parameters<typeof startEmbeddedServer>[0]> = {}): Promise<EmbeddedServer> {
  const stream = lineStream(pageLines);
  return startEmbeddedServer({
    dataDir: dir,
    config: CONFIG,
    port: 0,
    localToken: TOKEN,
    pageStream: stream,
    log: (l) => logs.push(l),
    ...extra,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crs-serve-'));
  pageLines = [];
  logs = [];
  server = await start();
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const boardKey = () => new URL(server.boardUrl).searchParams.get('key')!;

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${boardKey()}`, ...(init.headers ?? {}) },
  });

function escalation(patientId: string): DeviceMessage[] {
  return [
    enrol(patientId, 0),
    msg(patientId, 10, { vitals: { temperatureC: 39.1, systolicBP: 118 } }),
    msg(patientId, 20, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] }),
  ];
}

describe('ingest over HTTP', () => {
  it('answers 202 once committed, and the page appears on the stream exactly as replay prints it', async () => {
    for (const m of escalation('P1')) expect((await post('/v1/messages', m)).status).toBe(202);
    await until(() => pageLines.length === 2, 'two pages');
    const pages = pageLines.map((l) => JSON.parse(l));
    expect(pages.map((p) => [p.type, p.condition, p.toGrade, p.teams])).toEqual([
      ['notification', 'crs', 1, ['hematology']],
      ['notification', 'crs', 3, ['hematology', 'icu']],
    ]);
    expect(Object.keys(pages[1])).toContain('criteria');
  });

  it('gives the sender a status to act on: 401, 403, 400 with the field, 413, 415, 404, 405', async () => {
    const m = escalation('P1')[0]!;
    const noAuth = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    expect(noAuth.status).toBe(401);
    expect(noAuth.headers.get('www-authenticate')).toContain('Bearer');
    expect((await post('/v1/messages', m, { authorization: 'Bearer wrong' })).status).toBe(403);
    const bad = await post('/v1/messages', { ...m, vitals: { temperatureC: 101.3 } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('vitals.temperatureC');
    expect((await post('/v1/messages', 'x'.repeat(70 * 1024))).status).toBe(413);
    expect((await post('/v1/messages', m, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('/v1/nowhere', m)).status).toBe(404);
    expect((await fetch(`${server.url}/v1/messages`)).status).toBe(405);
    const huge = await post('/v1/messages/batch', 'x'.repeat(3 * 1024 * 1024));
    expect(huge.status).toBe(413);
  });

  it("gives a FHIR client the server's CapabilityStatement without a token (GET /fhir/r4/metadata)", async () => {
    const res = await fetch(`${server.url}/fhir/r4/metadata?_format=json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    expect(await res.json()).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
  });

  it('accepts a batch, and a device token from the token table until it is revoked', async () => {
    // A token issued before scopes (no kind) may not set therapy, infusion, weight or thresholds: 403, nothing taken.
    const { token, record } = issueToken('monitor-12', new Date());
    await server.tokens.put(record);
    const legacy = await post('/v1/messages/batch', escalation('P2'), { authorization: `Bearer ${token}` });
    expect(legacy.status).toBe(403);
    expect(((await legacy.json()) as { error: string }).error).toMatch(
      /^not allowed for this device token: message \[0\] enrolment.therapy: .*crs token scope TOKEN_ID --kind ehr/,
    );
    // Given a kind in place, the same token sends it.
    await server.tokens.setScope(record.tokenId, { kind: 'ehr' });
    const batch = await post('/v1/messages/batch', escalation('P2'), { authorization: `Bearer ${token}` });
    expect(batch.status).toBe(202);
    expect(await batch.json()).toMatchObject({ accepted: 3 });
    await server.tokens.revoke(record.tokenId, new Date().toISOString());
    expect((await post('/v1/messages', escalation('P3')[0], { authorization: `Bearer ${token}` })).status).toBe(403);
  });

  it('says in /api/health which release runs (the runbook speaks of releases by their dates)', async () => {
    expect(((await (await api('/api/health')).json()) as { release: string }).release).toBe('unknown release');
    await server.close();
    server = await start({ release: '2026-12-07 1c3511dd' });
    expect(((await (await api('/api/health')).json()) as { release: string }).release).toBe('2026-12-07 1c3511dd');
  });

  it('answers a duplicate like an accepted message and changes nothing', async () => {
    const [a, b] = escalation('P1');
    await post('/v1/messages', a);
    await post('/v1/messages', b);
    expect((await post('/v1/messages', b)).status).toBe(202);
    // Idle: the inbox graded (the duplicate too) and every page committed written to the page stream.
    const idle = async () => {
      const h = (await (await api('/api/health')).json()) as { inbox: number; undelivered: { stdout: number } };
      return (h.inbox === 0 && h.undelivered.stdout === 0) || undefined;
    };
    await until(idle, 'graded and delivered');
    await new Promise((r) => setImmediate(r)); // the stream hands on what was written to it
    expect(pageLines.length).toBe(1);
  });
});

describe('the board API', () => {
  it('requires the board key; the printed link sets an HttpOnly cookie and leaves the address bar clean', async () => {
    expect((await fetch(`${server.url}/api/patients`)).status).toBe(401);
    expect((await fetch(`${server.url}/api/patients`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${server.url}/?key=wrong`, { redirect: 'manual' })).status).toBe(403);
    const link = await fetch(server.boardUrl, { redirect: 'manual' });
    expect(link.status).toBe(303);
    // Relative: back to the board where the browser has it, under a proxy's path prefix too.
    expect(link.headers.get('location')).toBe('./');
    const cookie = link.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const withCookie = await fetch(`${server.url}/api/patients`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
  });

  it('under episodeStart latest-infusion shows the episode infusion, not a resent older one, beside the day it counts from', async () => {
    await server.close();
    const latest = resolveConfig({
      paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES },
      episodeStart: 'latest-infusion',
    });
    if (!latest.ok) throw new Error(latest.errors.join('; '));
    server = await start({ config: latest.config });
    // The first infusion on 01-08, a step-up dose on 01-10 at 07:00, then the EHR resends the first (observed last).
    for (const m of [
      enrol('P1', 0),
      enrol('P1', 10, { infusedAt: '2026-01-10T07:00:00Z' }),
      enrol('P1', 20),
      msg('P1', 30, { vitals: { temperatureC: 37 } }),
    ])
      expect((await post('/v1/messages', m)).status).toBe(202);
    const p = await until(async () => {
      const l = (await (await api('/api/patients')).json()) as { patients: Array<Record<string, any>> };
      return l.patients[0]?.clock === '2026-01-10T08:30:00Z' ? l.patients[0] : undefined;
    }, 'the last message graded');
    // Until 2026-12-07 the list said 2026-01-08 (the enrolment observed last) while the day counted from 01-10.
    expect([p.infusedAt, p.dayPostInfusion]).toEqual(['2026-01-10T07:00:00Z', 0]);
  });

  it('under aheadOfArrival "observedAt" grades a message dated ahead of its arrival at its observedAt', async () => {
    // The server's clock at 08:30; a monitor 3 minutes fast dates its reading 08:33.
    const arrived = Date.parse('2026-01-10T08:30:00Z');
    const clockAfter = async (config: GradingConfig, patientId: string) => {
      await server.close();
      server = await start({ config, now: () => arrived });
      for (const m of [enrol(patientId, 0), msg(patientId, 33, { vitals: { temperatureC: 38.6 } })])
        expect((await post('/v1/messages', m)).status).toBe(202);
      return until(async () => {
        const l = (await (await api('/api/patients')).json()) as { patients: Array<Record<string, any>> };
        const p = l.patients.find((x) => x.patientId === patientId);
        return p?.crs.grade === 1 ? [p.clock, p.vitals.temperatureC.at] : undefined;
      }, 'the fever graded');
    };
    // The default: at its arrival, the fever's time with it (pages and the board say 08:30).
    expect(await clockAfter(CONFIG, 'P1')).toEqual(['2026-01-10T08:30:00Z', '2026-01-10T08:30:00Z']);
    const literal = resolveConfig({
      paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES },
      aheadOfArrival: 'observedAt',
    });
    if (!literal.ok) throw new Error(literal.errors.join('; '));
    expect(await clockAfter(literal.config, 'P2')).toEqual(['2026-01-10T08:33:00Z', '2026-01-10T08:33:00Z']);
  });

  it('shows each patient with grades, last vitals and what is paged per team; the patient view has the timeline and every page', async () => {
    const posted = Date.now(); // the pages open after this, on the server's clock (the same)
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 2, 'pages');
    type Group = {
      toGrade?: number;
      grade: number;
      current: boolean;
      reasons: string[];
      actions: string[];
      pages: Record<string, any>[];
    };
    const list = (await (await api('/api/patients')).json()) as {
      patients: Array<Record<string, any>>;
      paging: Record<string, any>;
    };
    expect(list.paging.unsilenceableFromGrade).toBe(4);
    const p = await until(async () => {
      const l = (await (await api('/api/patients')).json()) as { patients: Array<Record<string, any>> };
      return l.patients[0]?.waiting === 2 ? l.patients[0] : undefined;
    }, 'both teams paged');
    expect(p).toMatchObject({
      patientId: 'P1',
      bed: 'H4-P1',
      dayPostInfusion: 2,
      crs: { grade: 3 },
      icans: { grade: 0 },
    });
    expect(p.vitals.temperatureC).toEqual({ value: 39.1, at: '2026-01-10T08:10:00Z' });
    expect(p.lastVitalsAt).toBe('2026-01-10T08:10:00Z');
    // Only the grade 3 needs attention: the grade 1 page was superseded by it.
    const groups = p.paging as Group[];
    expect(groups.map((g) => [g.grade, g.current])).toEqual([[3, true]]);
    expect(groups[0]!.actions.join(' ')).toContain('ICU');
    expect(groups[0]!.reasons.join(' ')).toContain('norepinephrine');
    expect(groups[0]!.pages.map((x) => [x.team, x.state, x.role, x.sent.map((s: { role: string }) => s.role)])).toEqual(
      [
        ['hematology', 'waiting', 'hematology fellow', ['hematology fellow']],
        ['icu', 'waiting', 'ICU registrar', ['ICU registrar']],
      ],
    );
    // The next level, and when: 5 minutes for grade 3, from the page's opening, which is after the posts and a moment
    // before its send (until 2026-12-06 a second at most: a busy machine can stretch that moment).
    const icu = groups[0]!.pages[1]!;
    expect(icu.next.role).toBe('ICU consultant');
    const opened = Date.parse(icu.next.at) - 5 * 60_000;
    expect(opened).toBeGreaterThanOrEqual(posted);
    expect(opened).toBeLessThanOrEqual(Date.parse(icu.sent[0].at));
    const detail = (await (await api('/api/patients/P1')).json()) as Record<string, any>;
    expect(detail.timeline.points.map((x: any) => x.crs)).toEqual([0, 1, 3]);
    expect(detail.timeline.points[1].vitals).toEqual({ temperatureC: 39.1, systolicBP: 118 });
    expect(detail.timeline.feverThresholdC).toBe(38);
    expect((detail.pages as Group[]).map((g) => [g.grade, g.current, g.pages.map((x) => x.status)])).toEqual([
      [3, true, ['open', 'open']],
      [1, false, ['superseded']],
    ]);
    expect((await api('/api/patients/nobody')).status).toBe(404);
    expect((await api('/api/patients/%E0%A4%A')).status).toBe(400);
  });

  it('records an acknowledgement per team page with who, when and how; refuses it without a name or from another site', async () => {
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 2, 'pages');
    const grade3 = JSON.parse(pageLines[1]!).notificationId as string;
    const icuPage = `${grade3}|icu`;
    await until(async () => (await server.paging.store.get(icuPage)) !== undefined, 'the ICU page');
    const ack = (id: string, body: unknown, headers: Record<string, string> = {}) =>
      api(`/api/pages/${encodeURIComponent(id)}/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    expect((await ack(icuPage, { by: '   ' })).status).toBe(400);
    expect((await ack(icuPage, { by: 'x'.repeat(81) })).status).toBe(400);
    // The browser's cookie from another site (or with no Origin) is refused; the key as a bearer is a script's.
    const viaCookie = (origin?: string) =>
      fetch(`${server.url}/api/pages/${encodeURIComponent(icuPage)}/ack`, {
        method: 'POST',
        headers: {
          cookie: `${boardCookieName(boardKey())}=${boardKey()}`,
          'content-type': 'application/json',
          ...(origin ? { origin } : {}),
        },
        body: JSON.stringify({ by: 'Dr Ada' }),
      });
    expect((await viaCookie('https://evil.example')).status).toBe(403);
    expect((await viaCookie()).status).toBe(403);
    const before = Date.now();
    const ok = await ack(icuPage, { by: '  Dr   Ada ' });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as {
      changed: boolean;
      page: { state: string; ack: { by: string; at: string; via: string } };
    };
    expect(body).toMatchObject({ changed: true, page: { state: 'acknowledged', ack: { by: 'Dr Ada', via: 'board' } } });
    expect(Date.parse(body.page.ack.at)).toBeGreaterThanOrEqual(before - 1000);
    // Again: the first acknowledgement stands.
    const again = (await (await ack(icuPage, { by: 'Someone' })).json()) as {
      changed: boolean;
      page: { ack: { by: string } };
    };
    expect(again).toMatchObject({ changed: false, page: { ack: { by: 'Dr Ada' } } });
    // The superseded grade 1 page has nothing left to acknowledge; an unknown page is 404.
    const old = await ack(`${JSON.parse(pageLines[0]!).notificationId}|hematology`, { by: 'Dr Ada' });
    expect(old.status).toBe(409);
    expect(((await old.json()) as { errors: string[] }).errors).toEqual([
      'page is superseded, there is nothing to acknowledge',
    ]);
    expect((await ack('crs|P1|none|icu', { by: 'A' })).status).toBe(404);
    // Hematology still waits; the ICU is done.
    const list = (await (await api('/api/patients')).json()) as {
      patients: Array<{ waiting: number; paging: { pages: { team: string; state: string }[] }[] }>;
    };
    expect(list.patients[0]!.waiting).toBe(1);
    expect(list.patients[0]!.paging[0]!.pages.map((x) => `${x.team}:${x.state}`)).toEqual([
      'hematology:waiting',
      'icu:acknowledged',
    ]);
    expect(logs.join('\n')).not.toContain('Ada'); // names stay in the database
  });

  it('streams live events: patients changed, new page, acknowledgement', async () => {
    const events: string[] = [];
    const req = request(`${server.url}/api/events`, { headers: { authorization: `Bearer ${boardKey()}` } });
    const res = await new Promise<IncomingMessage>((resolve) => {
      req.on('response', resolve);
      req.end();
    });
    expect(res.headers['content-type']).toContain('text/event-stream');
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => events.push(...chunk.split('\n').filter((l) => l.startsWith('event: '))));
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => events.includes('event: page') || undefined, 'a page event');
    expect(events).toContain('event: patients');
    req.destroy();
  });
});

describe('the webhook', () => {
  let hook: Server;
  let received: {
    event: string;
    id: string;
    signature: string;
    body: string;
    notificationId?: string;
    contentType?: string;
  }[];
  let failuresLeft: number;

  beforeEach(async () => {
    received = [];
    failuresLeft = 2;
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (failuresLeft-- > 0) {
          res.writeHead(503).end();
          return;
        }
        received.push({
          event: String(req.headers['x-crs-event']),
          id: String(req.headers['x-crs-event-id']),
          signature: String(req.headers['x-crs-signature']),
          body,
          ...(req.headers['x-crs-notification-id']
            ? { notificationId: String(req.headers['x-crs-notification-id']) }
            : {}),
          ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    await server.close();
    server = await start({
      webhook: {
        url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/pages`,
        secret: 's3cret',
        retry: { initialMs: 20, maxMs: 50 },
      },
    });
  });
  afterEach(async () => {
    await new Promise((r) => hook.close(r));
  });

  it('is retried with backoff until it answers 2xx, gets each grade change and each page to a role once, signed, and never holds up stdout', async () => {
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 2, 'stdout pages');
    // Two grade changes, and three pages to roles (hematology for grade 1; hematology and ICU for grade 3).
    await until(() => received.length === 5 || undefined, 'webhook posts');
    const notifications = received.filter((r) => r.event === 'notification');
    expect(notifications.map((r) => r.id)).toEqual(pageLines.map((l) => JSON.parse(l).notificationId));
    expect(notifications[0]!.body).toBe(pageLines[0]);
    expect(notifications[0]!.signature).toBe(
      `sha256=${createHmac('sha256', 's3cret').update(notifications[0]!.body).digest('hex')}`,
    );
    const pages = received.filter((r) => r.event === 'page').map((r) => JSON.parse(r.body) as Record<string, any>);
    expect(pages.map((p) => [p.team, p.role, p.level, p.grade])).toEqual([
      ['hematology', 'hematology fellow', 0, 1],
      ['hematology', 'hematology fellow', 0, 3],
      ['icu', 'ICU registrar', 0, 3],
    ]);
    expect(pages[2]!.ackUrl).toMatch(new RegExp(`^${server.url}/ack/[A-Za-z0-9_-]{22}$`));
    expect(pages[2]!.notification.actions.join(' ')).toContain('Transfer to ICU.');
    expect(received.filter((r) => r.event === 'page').map((r) => r.id)).toEqual(pages.map((p) => p.sendId));
    expect(new Set(received.map((r) => r.id)).size).toBe(5);
    expect(logs.some((l) => /webhook: \S+ .* not delivered \(webhook answered HTTP 503\)/.test(l))).toBe(true);
  });

  describe('pinned by a mutation run', () => {
    it('names the grade change of a notification in x-crs-notification-id, and signs each page as sent, JSON', async () => {
      for (const m of escalation('P1')) await post('/v1/messages', m);
      await until(() => received.length === 5 || undefined, 'webhook posts');
      const ids = pageLines.map((l) => JSON.parse(l).notificationId as string);
      expect(received.filter((r) => r.event === 'notification').map((r) => r.notificationId)).toEqual(ids);
      expect(received.filter((r) => r.event === 'page').map((r) => r.notificationId)).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
      for (const r of received) {
        expect(r.contentType).toBe('application/json');
        expect(r.signature).toBe(`sha256=${createHmac('sha256', 's3cret').update(r.body).digest('hex')}`);
      }
    });
  });
});

describe('the stdout sink', () => {
  it('refuses further lines once standard output is closed (EPIPE), instead of crashing or claiming them sent', async () => {
    let state: PatientState | undefined;
    const pages = escalation('P1').flatMap((m) => {
      const step = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m));
      state = step.state;
      return step.kind === 'applied' ? step.notifications : [];
    });
    const item = (n: (typeof pages)[number], seq: number) => ({
      seq,
      kind: 'notification' as const,
      id: n.notificationId,
      patientId: 'P1',
      body: JSON.stringify(n),
    });
    const closed = new Writable({
      write: (_chunk, _enc, cb) => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })),
    });
    const sink = new StdoutSink(closed);
    await sink.deliver(item(pages[0]!, 1));
    await new Promise((r) => setImmediate(r));
    await expect(sink.deliver(item(pages[1]!, 2))).rejects.toThrow('standard output is closed (EPIPE)');
  });

  it('prints pages to roles only with --page-lines, after their grade change', async () => {
    await server.close();
    pageLines = [];
    server = await start({ pageLines: true });
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 5, 'five lines');
    const events = pageLines.map(
      (l) => JSON.parse(l) as { type: string; notificationId: string; role?: string; grade?: number; toGrade?: number },
    );
    expect(
      events.map((e) => (e.type === 'page' ? `page ${e.role} ${e.grade}` : `notification ${e.toGrade}`)).sort(),
    ).toEqual([
      'notification 1',
      'notification 3',
      'page ICU registrar 3',
      'page hematology fellow 1',
      'page hematology fellow 3',
    ]);
    // The notification lines alone are what replay prints; each page comes after its grade change.
    events.forEach((e, i) => {
      if (e.type === 'page')
        expect(
          events.findIndex((x) => x.type === 'notification' && x.notificationId === e.notificationId),
        ).toBeLessThan(i);
    });
  });
});

describe('the server process', () => {
  it('refuses a second server on the same data directory', async () => {
    await expect(start()).rejects.toThrow(/another crs serve/);
  });

  it('serves the board with a strict CSP and no asset from the network', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).toContain('<script src="board.js" defer>');
    // Every address of the board is relative to its page: it works behind a proxy that maps a path prefix
    // (test/browser/board-prefix.test.ts).
    expect(html).not.toMatch(/(href|src)="\//);
    const script = readFileSync(new URL('../../shared/web/board.js', import.meta.url), 'utf8');
    expect(script).not.toMatch(/['"]\/api\//);
    expect(script).toContain("new EventSource('api/events')");
    const boardDir = new URL('../../shared/web/', import.meta.url);
    for (const f of readdirSync(boardDir)) {
      const text = readFileSync(new URL(f, boardDir), 'utf8');
      // The only URL allowed is the SVG namespace, an identifier that is never fetched.
      expect(text.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    }
    for (const asset of ['/board.js', '/chart.js', '/board.css', '/favicon.svg'])
      expect((await fetch(`${server.url}${asset}`)).status).toBe(200);
  });
});

describe('pinned by a mutation run', () => {
  it('takes at most 100 live-event clients, and frees the place of one that disconnects', () => {
    const hub = new SseHub();
    const client = () => {
      const res = new EventEmitter() as EventEmitter & { writeHead(): void; write(): boolean; end(): void };
      res.writeHead = () => undefined;
      res.write = () => true;
      res.end = () => undefined;
      return res as unknown as ServerResponse;
    };
    const clients = Array.from({ length: 100 }, client);
    for (const c of clients) expect(hub.attach(c)).toBe(true);
    expect(hub.attach(client())).toBe(false);
    expect(hub.size).toBe(100);
    clients[0]!.emit('close');
    expect(hub.size).toBe(99);
    expect(hub.attach(client())).toBe(true);
    hub.close();
  });

  it('lets go of a live-event client that stopped reading (what it holds is bounded), and keeps the one that reads', async () => {
    // A board whose tab froze, or a laptop whose lid closed on it, keeps its connection open and reads nothing: each
    // event for it was held in the server's memory, without end (about 80 bytes a grading pass, for every such client).
    const hub = new SseHub();
    const http = createServer((_req, res) => void hub.attach(res));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const { port } = http.address() as AddressInfo;
    const open = (onData: (chunk: Buffer) => void) =>
      new Promise<Socket>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write('GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.once('data', (c: Buffer) => {
          onData(c);
          s.on('data', onData);
          resolve(s);
        });
        s.on('error', () => undefined);
      });
    let read = 0;
    const reader = await open((c) => (read += c.length));
    const stalled = await open(() => undefined);
    stalled.pause();
    await until(() => hub.size === 2);
    const event = { pad: 'x'.repeat(1000) };
    let sent = 0;
    // Bursts as grading makes them (small, the event loop turning between them), up to 64 MiB: far more than the
    // socket buffers of both ends can take.
    for (let burst = 0; burst < 1024 && hub.size > 1; burst++) {
      for (let i = 0; i < 64; i++) hub.broadcast('patients', event);
      sent += 64;
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.size).toBe(1);
    // Its connection is closed: it sees the end once it reads again (and its browser reconnects).
    stalled.resume();
    await until(() => stalled.closed);
    // The reader got every event (the one that reads is never let go), and can go on.
    hub.broadcast('patients', { last: true });
    await until(() => read >= sent * 1000);
    expect(hub.size).toBe(1);
    reader.destroy();
    stalled.destroy();
    hub.close();
    await new Promise((r) => http.close(r));
  });

  it('frames each live event as the EventSource standard reads it, and ends every stream when it closes', () => {
    const hub = new SseHub();
    const written: string[] = [];
    let ended = 0;
    const res = new EventEmitter() as EventEmitter & { writeHead(): void; write(c: string): boolean; end(): void };
    res.writeHead = () => undefined;
    res.write = (c: string) => written.push(c) > 0;
    res.end = () => void ended++;
    expect(hub.attach(res as unknown as ServerResponse)).toBe(true);
    hub.broadcast('page', { patientId: 'P1' });
    hub.broadcast('patients', {});
    // A blank line ends an event: without it a browser would hold the first event until the next one came.
    const events = written.join('').split('\n\n');
    expect(events).toEqual([
      'retry: 2000',
      'event: ping\ndata: {"everyMs":15000}',
      'event: page\ndata: {"patientId":"P1"}',
      'event: patients\ndata: {}',
      '',
    ]);
    hub.close();
    expect(ended).toBe(1);
    expect(hub.size).toBe(0);
  });

  // Pinned by a mutation run: pings come at the period they announce (the board drops a stream silent for 3 of them).
  it('pings every client at the period its pings announce', async () => {
    const hub = new SseHub(20);
    const written: string[] = [];
    const res = new EventEmitter() as EventEmitter & { writeHead(): void; write(c: string): boolean; end(): void };
    res.writeHead = () => undefined;
    res.write = (c: string) => written.push(c) > 0;
    res.end = () => undefined;
    hub.attach(res as unknown as ServerResponse);
    const pings = () => written.join('').split('event: ping\ndata: {"everyMs":20}\n\n').length - 1;
    await until(() => pings() >= 4, 'the first ping and three more', 2_000);
    hub.close();
  });

  it('refuses a wrong board key in the Authorization header, whatever cookie comes with it', async () => {
    const link = await fetch(server.boardUrl, { redirect: 'manual' });
    const cookie = link.headers.get('set-cookie')!.split(';')[0]!;
    const both = await fetch(`${server.url}/api/patients`, { headers: { cookie, authorization: 'Bearer nope' } });
    expect(both.status).toBe(401);
  });

  it('lists the sickest first, then by bed in numeric order, and pages the list with offset and limit', async () => {
    const ids = ['B2', 'B10', 'B1', 'B7'];
    for (const id of ids) expect((await post('/v1/messages', enrol(id, 0))).status).toBe(202);
    expect((await post('/v1/messages', msg('B7', 10, { vitals: { temperatureC: 39.1 } }))).status).toBe(202);
    type List = { total: number; offset: number; limit: number; patients: { patientId: string }[] };
    const full = await until(async () => {
      const l = (await (await api('/api/patients')).json()) as List & { patients: { crs: { grade: number } }[] };
      return l.total === 4 && l.patients[0]!.crs.grade === 1 ? l : undefined;
    }, 'four patients, one with a fever');
    expect(full.patients.map((p) => p.patientId)).toEqual(['B7', 'B1', 'B2', 'B10']);
    const page = (await (await api('/api/patients?offset=1&limit=2')).json()) as List;
    expect(page).toMatchObject({ total: 4, offset: 1, limit: 2 });
    expect(page.patients.map((p) => p.patientId)).toEqual(['B1', 'B2']);
  });

  it('lists a patient whose monitoring ended after those monitored, saying why and when, still graded', async () => {
    for (const id of ['D1', 'D2']) expect((await post('/v1/messages', enrol(id, 0))).status).toBe(202);
    expect((await post('/v1/messages', msg('D1', 10, { vitals: { temperatureC: 39.1 } }))).status).toBe(202);
    const end = {
      ...msg('D1', 20, { monitoringEnd: { reason: 'discharged' } }),
      source: { deviceId: 'adt', kind: 'ehr' },
    };
    expect((await post('/v1/messages', end)).status).toBe(202);
    type List = { patients: { patientId: string; crs: { grade: number }; monitoringEnded: unknown }[] };
    const list = await until(async () => {
      const l = (await (await api('/api/patients')).json()) as List;
      return l.patients.some((p) => p.monitoringEnded) ? l : undefined;
    }, 'the discharge graded');
    expect(list.patients.map((p) => [p.patientId, p.crs.grade, p.monitoringEnded])).toEqual([
      ['D2', 0, null],
      ['D1', 1, { reason: 'discharged', at: '2026-01-10T08:20:00Z' }],
    ]);
  });

  it('ranks by the worse of CRS and ICANS, then those with a page waiting before those acknowledged', async () => {
    for (const id of ['A1', 'A2', 'A3']) expect((await post('/v1/messages', enrol(id, 0))).status).toBe(202);
    await post('/v1/messages', msg('A1', 10, { neuro: { iceScore: 5 } })); // ICANS 2
    await post('/v1/messages', msg('A2', 10, { vitals: { temperatureC: 39.1 } })); // CRS 1
    await post('/v1/messages', msg('A3', 10, { vitals: { temperatureC: 39.1 } })); // CRS 1
    await until(() => pageLines.length === 3, 'three pages');
    const a2 = pageLines.map((l) => JSON.parse(l)).find((p) => p.patientId === 'A2')!;
    const pageId = `${a2.notificationId}|hematology`;
    await until(async () => (await server.paging.store.get(pageId)) !== undefined, "A2's page");
    const ack = await api(`/api/pages/${encodeURIComponent(pageId)}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Dr Ada' }),
    });
    expect(ack.status).toBe(200);
    type List = { patients: { patientId: string; waiting: number }[] };
    const list = await until(async () => {
      const l = (await (await api('/api/patients')).json()) as List;
      const w = Object.fromEntries(l.patients.map((p) => [p.patientId, p.waiting]));
      return w.A2 === 0 && (w.A3 ?? 0) > 0 ? l : undefined;
    }, "A2's page acknowledged, A3's waiting");
    expect(list.patients.map((p) => p.patientId)).toEqual(['A1', 'A3', 'A2']);
  });

  it("says which grade each change came from, and shows only the asked hours of the patient's timeline", async () => {
    for (const m of [
      enrol('P1', 0),
      msg('P1', 60, { vitals: { temperatureC: 39.1, systolicBP: 118 } }),
      msg('P1', 180, {
        vasopressors: [
          { drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' },
          { drug: 'vasopressin', dose: 0, unit: 'units/min' },
        ],
      }),
    ]) {
      expect((await post('/v1/messages', m)).status).toBe(202);
    }
    await until(() => pageLines.length === 2, 'pages');
    type Detail = {
      patient: { paging: { grade: number }[]; vasopressors: { value: { drug: string }[] } };
      pages: { grade: number; fromGrade: number | null }[];
      timeline: { points: { crs: number }[] };
    };
    const detail = await until(async () => {
      const d = (await (await api('/api/patients/P1')).json()) as Detail;
      return d.pages.length === 2 ? d : undefined;
    }, 'two grade changes');
    expect(detail.pages.map((g) => [g.grade, g.fromGrade])).toEqual([
      [3, 1],
      [1, 0],
    ]);
    // The card: only the current change needs attention; a drug stopped (dose 0) is not running.
    expect(detail.patient.paging.map((g) => g.grade)).toEqual([3]);
    expect(detail.patient.vasopressors.value.map((v) => v.drug)).toEqual(['norepinephrine']);
    expect(detail.timeline.points.map((p) => p.crs)).toEqual([0, 1, 3]);
    const lastTwoHours = (await (await api('/api/patients/P1?hours=2')).json()) as Detail;
    expect(lastTwoHours.timeline.points.map((p) => p.crs)).toEqual([1, 3]);
  });
});

describe('the stdout sink, pinned by a mutation run', () => {
  it('never prints a page record it cannot read (one broken line would break the NDJSON stream): it parks it', async () => {
    await server.close();
    server = await start({ pageLines: true });
    server.db
      .prepare(
        "INSERT INTO outbox (kind, item_id, patient_id, body, created_at) VALUES ('page', 'crs|P0|broken|icu', 'P0', '{\"half\":', ?)",
      )
      .run(new Date().toISOString());
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 5 || undefined, "P1's grade changes and pages, behind the broken one");
    for (const l of pageLines) expect(() => JSON.parse(l), l).not.toThrow();
    const outbox = (await (await api('/api/outbox')).json()) as { parked: { itemId: string; sink: string }[] };
    expect(outbox.parked.filter((p) => p.sink === 'stdout').map((p) => p.itemId)).toEqual(['crs|P0|broken|icu']);
  });
});

describe('the board API, pinned by a mutation run', () => {
  const apiPost = (path: string, body: unknown) =>
    api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('answers a route used with the wrong method 405 naming the right one, doing nothing', async () => {
    for (const m of escalation('P1').slice(0, 2)) await post('/v1/messages', m);
    await until(() => pageLines.length === 1 || undefined, 'a grade change');
    const pageId = `${JSON.parse(pageLines[0]!).notificationId}|hematology`;
    await until(async () => (await server.paging.store.get(pageId)) !== undefined, 'the page');
    const silence = await apiPost('/api/silences', { team: 'icu', minutes: 30, reason: 'drill', by: 'Ops' });
    const { silenceId } = ((await silence.json()) as { silence: { silenceId: string } }).silence;
    for (const [method, path, allow] of [
      ['GET', `/api/pages/${encodeURIComponent(pageId)}/ack`, 'POST'],
      ['GET', `/api/silences/${silenceId}/end`, 'POST'],
      ['PUT', '/api/silences', 'GET, POST'],
      ['POST', '/api/outbox', 'GET'],
      ['GET', '/api/outbox/retry', 'POST'],
      ['GET', '/v1/acks', 'POST'],
      // HEAD is served as GET (a mail scanner's check of a link): Allow says so.
      ['PUT', '/ack/v1.x', 'GET, HEAD, POST'],
      // The board's views take GET only (they answered 404, "no route", as if the path did not exist).
      ['POST', '/api/patients', 'GET'],
      ['DELETE', '/api/patients/P1', 'GET'],
      ['POST', '/api/patients/P1/audit', 'GET'],
      ['POST', '/api/health', 'GET'],
      ['POST', '/api/events', 'GET'],
      ['HEAD', '/api/patients', 'GET'],
      // The API's description is served to GET and HEAD alike: Allow says both.
      ['POST', '/v1/openapi.json', 'GET, HEAD'],
    ] as const) {
      const res = await api(path, { method });
      expect([method, path, res.status, res.headers.get('allow')]).toEqual([method, path, 405, allow]);
    }
    expect((await server.paging.store.get(pageId))!.status).toBe('open');
    const listed = (await (await api('/api/silences')).json()) as { silences: { silenceId: string }[] };
    expect(listed.silences.map((x) => x.silenceId)).toEqual([silenceId]);
  });

  it('answers 404 for a silence that does not exist, 400 for an id no silence has, and lists only the silences in force', async () => {
    const end = await apiPost('/api/silences/sil_nobodymadeit/end', { by: 'Ops' });
    expect(end.status).toBe(404);
    // Refused naming the field before any lookup, as crs silence end refuses it on both backends.
    for (const id of ['no-such-silence', 'sil_nobodymadeit%0D', `sil_${'x'.repeat(4000)}`]) {
      const bad = await apiPost(`/api/silences/${id}/end`, { by: 'Ops' });
      expect([id.slice(0, 20), bad.status, await bad.json()]).toEqual([
        id.slice(0, 20),
        400,
        { errors: ['silenceId: must be a silence id (sil_ and 12 of A-Z a-z 0-9 _ -)'] },
      ]);
    }
    const silence = await apiPost('/api/silences', { team: 'icu', minutes: 30, reason: 'drill', by: 'Ops' });
    const { silenceId } = ((await silence.json()) as { silence: { silenceId: string } }).silence;
    const ended = await apiPost(`/api/silences/${silenceId}/end`, { by: 'Ops' });
    expect(ended.status).toBe(200);
    const { silence: view } = (await ended.json()) as { silence: { endedAt: string | null; endedBy: string | null } };
    expect(view.endedBy).toBe('Ops');
    expect(Date.parse(view.endedAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(((await (await api('/api/silences')).json()) as { silences: unknown[] }).silences).toEqual([]);
  });

  it('refuses with the status that says why: 400 for a bad list page, outbox retry or escape; 404 for a two-part link; 413 for a big acknowledgement', async () => {
    for (const q of ['limit=0', 'limit=501', 'offset=-1', 'offset=x']) {
      const res = await api(`/api/patients?${q}`);
      expect([q, res.status]).toEqual([q, 400]);
    }
    expect((await api('/api/patients?limit=500')).status).toBe(200);
    expect((await apiPost('/api/outbox/retry', { sink: 5 })).status).toBe(400);
    expect((await apiPost('/api/outbox/retry', { itemId: ['x'] })).status).toBe(400);
    expect((await apiPost('/api/outbox/retry', [])).status).toBe(400); // not "every parked record"
    expect((await fetch(`${server.url}/api/health`)).status).toBe(401);
    expect((await fetch(`${server.url}/ack/v1.abc/more`)).status).toBe(404); // a link is one path segment
    expect((await fetch(`${server.url}/ack/v1.abc`, { method: 'HEAD' })).status).toBe(403); // as GET, no body
    // An acknowledgement body over its limit is not read further: 413, and the connection closes.
    const big = await fetch(`${server.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'x'.repeat(ACK_BODY_LIMIT), by: 'A' }),
    });
    expect([big.status, big.headers.get('connection')]).toEqual([413, 'close']);
    const broken = await api('/api/patients/%E0%A4%A');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ error: 'malformed percent-encoding in the path' });
  });

  it('takes a board request body of exactly the acknowledgement limit, and refuses one byte more with 413', async () => {
    const json = JSON.stringify({ team: 'icu', minutes: 30, reason: 'drill', by: 'Ops' });
    const padded = (n: number) => json.slice(0, -1) + ' '.repeat(n - json.length) + '}';
    const send = (body: string) =>
      api('/api/silences', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await send(padded(ACK_BODY_LIMIT + 1))).status).toBe(413);
    expect((await send(padded(ACK_BODY_LIMIT))).status).toBe(201);
  });

  it("shows at most 14 days of a patient's timeline, however many hours are asked", async () => {
    const day = 24 * 60;
    for (const m of [
      enrol('P1', 0),
      msg('P1', 10, { vitals: { temperatureC: 39.1 } }),
      msg('P1', 20 * day, { vitals: { temperatureC: 37 } }),
    ])
      expect((await post('/v1/messages', m)).status).toBe(202);
    type Detail = { timeline: { from: string; to: string; points: { crs: number }[] } };
    const all = await until(async () => {
      const d = (await (await api('/api/patients/P1?hours=336')).json()) as Detail;
      return d.timeline?.points.length ? d : undefined;
    }, 'the timeline');
    const asked = (await (await api('/api/patients/P1?hours=10000')).json()) as Detail;
    // The chart's axis: 14 days back from the patient's clock (older points are not kept either).
    expect(asked.timeline).toEqual(all.timeline);
    expect(Date.parse(all.timeline.to) - Date.parse(all.timeline.from)).toBe(14 * 24 * 3_600_000);
  });

  it('sends its JSON with the security headers, and names an audit download by a safe file name', async () => {
    const res = await api('/api/patients');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('cache-control')).toBe('no-store');
    const audit = await api(`/api/patients/${encodeURIComponent('P"1/\\x')}/audit?format=csv`);
    expect(audit.status).toBe(200);
    expect(audit.headers.get('content-disposition')).toBe('attachment; filename="audit-P_1__x.csv"');
  });
});

describe('acknowledge links, pinned by a mutation run', () => {
  it('are made at --public-url, given with or without its trailing slash, not at the listening address', async () => {
    for (const [patient, publicUrl] of [
      ['P1', 'https://crs.example.org/'],
      ['P2', 'https://crs.example.org'],
    ] as const) {
      await server.close();
      pageLines = [];
      server = await start({ pageLines: true, publicUrl });
      for (const m of escalation(patient).slice(0, 2)) await post('/v1/messages', m);
      await until(() => pageLines.length === 2 || undefined, 'the grade change and its page');
      const page = pageLines.map((l) => JSON.parse(l)).find((e) => e.type === 'page');
      expect(page.ackUrl).toMatch(/^https:\/\/crs\.example\.org\/ack\/[A-Za-z0-9_-]{22}$/);
    }
  });
});

describe('the board link', () => {
  it('is not in what crs serve prints to a log; crs board-link prints it, at --public-url, and it opens the board', async () => {
    // Until 2026-12-05 it was the listening address (http://127.0.0.1:8080/?key=...), which a phone or a
    // workstation behind the TLS proxy cannot reach. Until 2026-12-06 it was printed, key and all, at every start:
    // under systemd, into the journal (a security review); now only to a terminal, else crs board-link gives it.
    const data = join(dir, 'public');
    const serve = await spawnCrs(
      ['serve', '--port', '0', '--data', data, '--public-url', 'https://crs.example.org/'],
      { CRS_INGEST_TOKEN: 'a-local-token-of-at-least-32-characters' },
      (err) => {
        const board = err.match(/on-call board: (\S+)/)?.[1];
        const local = err.match(/listening on (http:\/\/\S+)/)?.[1];
        return board && local ? { board, local } : undefined;
      },
      20_000,
    );
    try {
      const key = readFileSync(join(data, 'board.key'), 'utf8').trim();
      expect(serve.board).toBe('https://crs.example.org/');
      expect(serve.stderr()).not.toContain(key);
      expect(serve.stderr()).toContain(`(its link with the key, as this user: crs board-link --data ${data})`);
      const r = await crsMain(['board-link', '--data', data]);
      expect([r.status, r.stderr]).toEqual([0, '']);
      const link = new URL(r.stdout.trim());
      expect(`${link.origin}${link.pathname}`).toBe('https://crs.example.org/');
      expect(link.searchParams.get('key')).toBe(key);
      // What the proxy forwards to the listener: the board takes the key.
      const res = await fetch(`${serve.local}/api/patients`, {
        headers: { authorization: `Bearer ${link.searchParams.get('key')}` },
      });
      expect(res.status).toBe(200);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    // In process, the server says the same.
    await server.close();
    server = await start({ publicUrl: 'https://crs.example.org' });
    expect(server.boardUrl).toBe(`https://crs.example.org/?key=${boardKey()}`);
  }, 30_000);
});

describe('live events, pinned by a mutation run', () => {
  /** The board's live stream, each event as its name and data. */
  async function liveEvents(): Promise<{ events: { event: string; data: any }[]; close: () => void }> {
    const events: { event: string; data: any }[] = [];
    const req = request(`${server.url}/api/events`, { headers: { authorization: `Bearer ${boardKey()}` } });
    const res = await new Promise<IncomingMessage>((resolve) => {
      req.on('response', resolve);
      req.end();
    });
    res.setEncoding('utf8');
    let buffered = '';
    res.on('data', (chunk: string) => {
      buffered += chunk;
      const blocks = buffered.split('\n\n');
      buffered = blocks.pop()!;
      for (const b of blocks) {
        const event = b.match(/^event: (.*)$/m)?.[1];
        const data = b.match(/^data: (.*)$/m)?.[1];
        if (event) events.push({ event, data: data === undefined ? undefined : JSON.parse(data) });
      }
    });
    return { events, close: () => req.destroy() };
  }

  it("names the patient whose pages changed, and each page's patient, team and role (the board announces them)", async () => {
    const live = await liveEvents();
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => live.events.filter((e) => e.event === 'page').length === 3 || undefined, 'three pages');
    expect(
      live.events.filter((e) => e.event === 'page').map((e) => [e.data.patientId, e.data.team, e.data.role]),
    ).toEqual([
      ['P1', 'hematology', 'hematology fellow'],
      ['P1', 'hematology', 'hematology fellow'],
      ['P1', 'icu', 'ICU registrar'],
    ]);
    const changed = live.events.filter((e) => e.event === 'pages');
    expect(changed.length).toBeGreaterThan(0);
    for (const e of changed) expect(e.data).toEqual({ patientIds: ['P1'] });
    const pageId = `${JSON.parse(pageLines[1]!).notificationId}|icu`;
    const ack = await api(`/api/pages/${encodeURIComponent(pageId)}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Dr Ada' }),
    });
    expect(ack.status).toBe(200);
    await until(() => live.events.some((e) => e.event === 'ack') || undefined, 'the acknowledgement');
    const again = await api(`/api/pages/${encodeURIComponent(pageId)}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Dr Bo' }),
    });
    expect(await again.json()).toMatchObject({ changed: false });
    // An event after it on the same stream: whatever the repeat pushed has arrived by then.
    await api('/api/silences', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ team: 'icu', minutes: 5, reason: 'drill', by: 'Ops' }),
    });
    await until(() => live.events.some((e) => e.event === 'silences') || undefined, 'a later event');
    expect(live.events.filter((e) => e.event === 'ack').map((e) => e.data)).toEqual([{ patientId: 'P1', pageId }]);
    live.close();
  });

  it('pushes an acknowledgement made with the link or through the API to the boards', async () => {
    await server.close();
    server = await start({ pageLines: true });
    for (const m of escalation('P1')) await post('/v1/messages', m);
    await until(() => pageLines.length === 5 || undefined, 'the grade changes and their pages');
    const paged = pageLines.map((l) => JSON.parse(l)).filter((e) => e.type === 'page' && e.grade === 3);
    const live = await liveEvents();
    const [hematology, icu] = paged as { pageId: string; ackUrl: string }[];
    const token = (url: string) => url.slice(url.lastIndexOf('/') + 1);
    const viaLink = await fetch(hematology!.ackUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'by=Dr+Ada',
    });
    expect(viaLink.status).toBe(200);
    const viaApi = await fetch(`${server.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: token(icu!.ackUrl), by: 'Dr Osei' }),
    });
    expect(viaApi.status).toBe(200);
    await until(() => live.events.filter((e) => e.event === 'ack').length === 2 || undefined, 'both acknowledgements');
    expect(live.events.filter((e) => e.event === 'ack').map((e) => e.data)).toEqual([
      { patientId: 'P1', pageId: hematology!.pageId },
      { patientId: 'P1', pageId: icu!.pageId },
    ]);
    live.close();
  });

  it('answers the 101st board 503 with Retry-After, for its page to try again later', async () => {
    await server.close();
    server = await start({ httpLimits: { maxConnectionsPerAddress: 200 } });
    const streams = await Promise.all(
      Array.from({ length: 101 }, async () => {
        const req = request(`${server.url}/api/events`, { headers: { authorization: `Bearer ${boardKey()}` } });
        const res = await new Promise<IncomingMessage>((resolve) => {
          req.on('response', resolve);
          req.end();
        });
        res.resume();
        return { req, res };
      }),
    );
    const refused = streams.filter((x) => x.res.statusCode === 503);
    expect(refused.map((x) => x.res.headers['retry-after'])).toEqual(['10']);
    for (const x of streams) x.req.destroy();
  });

  it('ends every live stream cleanly when the server stops, without waiting for the forced close', async () => {
    const req = request(`${server.url}/api/events`, { headers: { authorization: `Bearer ${boardKey()}` } });
    const res = await new Promise<IncomingMessage>((resolve) => {
      req.on('response', resolve);
      req.end();
    });
    res.resume();
    const how = new Promise<string>((resolve) => {
      res.on('end', () => resolve('ended'));
      res.on('aborted', () => resolve('cut off'));
      req.on('error', () => resolve('cut off'));
    });
    await server.close();
    expect(await how).toBe('ended');
    server = await start(); // for afterEach
  });

  it('tells the boards when a silence starts and when it is ended, holding nothing', async () => {
    for (const m of escalation('P1').slice(0, 1)) await post('/v1/messages', m);
    await until(async () => (server.worker.stats.applied === 1 ? true : undefined), 'P1 enrolled');
    const live = await liveEvents();
    const created = await api('/api/silences', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ patientId: 'P1', minutes: 30, reason: 'transport to MRI', by: 'Nurse Bea' }),
    });
    expect(created.status).toBe(201);
    const { silenceId } = ((await created.json()) as { silence: { silenceId: string } }).silence;
    await until(() => live.events.some((e) => e.event === 'silences') || undefined, 'the silence started');
    const ended = await api(`/api/silences/${silenceId}/end`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'Nurse Bea' }),
    });
    expect(ended.status).toBe(200);
    await until(() => live.events.filter((e) => e.event === 'silences').length === 2 || undefined, 'the silence ended');
    expect(live.events.filter((e) => e.event === 'silences').map((e) => e.data)).toEqual([
      { silenceId },
      { silenceId },
    ]);
    live.close();
  });
});

describe('the audit download, pinned by a mutation run', () => {
  it('cuts the connection when the trail fails to read halfway, so that a partial file is never taken for the whole', async () => {
    // The board's handler alone, over an audit log whose read fails after the first entry.
    const real = server.paging.audit;
    const failing = {
      async *forPatient(patientId: string) {
        for await (const e of real.forPatient(patientId)) {
          yield e;
          throw new Error('disk I/O error');
        }
      },
    };
    for (const m of escalation('P1').slice(0, 2)) await post('/v1/messages', m);
    await until(() => pageLines.length === 1 || undefined, 'a grade change');
    const host = await bareHost({ paging: server.paging, audit: failing as never });
    try {
      const outcome = await new Promise<string>((resolve) => {
        const req = request(
          `${host.base}/api/patients/P1/audit?format=ndjson`,
          { headers: { authorization: `Bearer ${boardKey()}` } },
          (res) => {
            res.resume();
            res.on('end', () => resolve('complete'));
            res.on('aborted', () => resolve('cut off'));
            res.on('error', () => resolve('cut off'));
          },
        );
        req.on('error', () => resolve('cut off'));
        req.end();
      });
      expect(outcome).toBe('cut off');
      expect(logs.some((l) => /^http: GET \/api\/patients\/P1\/audit failed \(Error\)$/.test(l))).toBe(true);
    } finally {
      await host.close();
    }
  });
});

describe('acknowledge links in the log', () => {
  it('never writes the token of a link whose request failed: the log says the route and the failure', async () => {
    // The store fails while a phone opens its link and sends the form (a full disk, an I/O error). The link is a
    // credential for 12 h: until 2026-12-05 the failure's log line carried it whole ("GET /ack/<token> failed").
    const token = 'Zk3v9QeX1bT7mN2pL5rW8a';
    const broken = async () => {
      throw new Error('disk I/O error');
    };
    const host = await bareHost({
      queries: { page: broken } as never,
      paging: { verifyLink: broken, acknowledgeLink: broken } as never,
    });
    try {
      const base = host.base;
      logs = [];
      expect((await fetch(`${base}/ack/${token}`)).status).toBe(500);
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      expect((await fetch(`${base}/ack/${token}`, { method: 'POST', headers: form, body: 'by=Dr+A' })).status).toBe(
        500,
      );
      expect(logs).toEqual(['http: GET /ack/<token> failed (Error)', 'http: POST /ack/<token> failed (Error)']);
    } finally {
      await host.close();
    }
  });
});

describe('acknowledge links in the log: pinned by a mutation run (2026-12-06)', () => {
  it('never writes the token of a link whose form the client broke off: the log says the route', async () => {
    const token = 'Zk3v9QeX1bT7mN2pL5rW8a';
    const host = await bareHost({});
    try {
      logs = [];
      const socket = connect(Number(new URL(host.base).port), '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.end(
        `POST /ack/${token} HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nby=Dr`,
      );
      await until(() => logs.length > 0 || undefined, 'the failure logged');
      expect(logs).toEqual(['http: POST /ack/<token> failed (Error)']);
      socket.destroy();
    } finally {
      await host.close();
    }
  });
});

describe('the audit export to a reader that does not keep up', () => {
  it('reads the trail no faster than the reader takes it (a long trail is never held in memory whole)', async () => {
    // The trail is read from the database in pages so that a long one never sits in memory, but every row was
    // written at once whatever the reader took: a download over a slow link (or one paused) held the whole trail in
    // the server's memory (a busy patient's month is tens of MB), once for each download.
    const TOTAL = 100_000;
    let read = 0;
    let finished = false;
    async function* forPatient() {
      for (; read < TOTAL; read++)
        yield {
          at: '2026-01-10T08:00:00Z',
          patientId: 'P1',
          type: 'assessment',
          text: `CRS 1 ${'x'.repeat(400)}`,
          details: { n: read },
        };
      finished = true;
    }
    const host = await bareHost({ audit: { forPatient } as never });
    const socket = connect(Number(new URL(host.base).port), '127.0.0.1');
    try {
      await new Promise((r) => socket.once('connect', r));
      socket.write(`GET /api/patients/P1/audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${boardKey()}\r\n\r\n`);
      await new Promise((r) => socket.once('data', r));
      socket.pause();
      // Until the server stops reading the trail (it waits for the reader), or has read it all.
      let last = -1;
      for (let still = 0; still < 20 && !finished; ) {
        await new Promise((r) => setTimeout(r, 25));
        still = read === last ? still + 1 : 0;
        last = read;
      }
      expect(finished).toBe(false);
      // What was read is what the socket buffers of both ends hold: a few MB at most, not 45 MB.
      expect(read).toBeLessThan(TOTAL / 4);
      // The reader reads: the trail comes whole.
      let bytes = 0;
      socket.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      socket.resume();
      await until(() => finished && bytes > TOTAL * 450, 'the whole trail');
    } finally {
      socket.destroy();
      await host.close();
    }
  });
});

describe('device-token refusals in the security log: pinned by a mutation run', () => {
  it('records a refused token with its route, never a token store that fails (503 is no refusal)', async () => {
    const events: SecurityEvent[] = [];
    let failing = false;
    const findByHash = async () => {
      if (failing) throw new Error('SQLITE_BUSY');
      return undefined;
    };
    const host = await bareHost({
      ingest: { tokens: { findByHash }, now: Date.now } as never,
      security: { record: async (e) => void events.push(e), notWritten: async () => undefined },
    });
    try {
      const post = async () =>
        (
          await fetch(`${host.base}/v1/messages`, {
            method: 'POST',
            headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json' },
            body: '{}',
          })
        ).status;
      expect(await post()).toBe(403);
      failing = true;
      expect(await post()).toBe(503);
      expect(events.map((e) => [e.event, e.claimed])).toEqual([['device-token-refused', { route: '/v1/messages' }]]);
    } finally {
      await host.close();
    }
  });
});

/** The board's request handler alone, on a port of its own: stub parts but those a test gives, its log in `logs`. */
async function bareHost(parts: Partial<HostDeps>): Promise<{ base: string; close: () => Promise<void> }> {
  const http = createServer(
    createRequestHandler({
      ingest: {} as never,
      board: {} as never,
      queries: {} as never,
      paging: {} as never,
      outbox: {} as never,
      deadLetters: {} as never,
      pagingConfig: CONFIG.paging,
      timeZone: CONFIG.site.timeZone,
      audit: {} as never,
      sse: new SseHub(),
      boardKey: boardKey(),
      now: Date.now,
      health: () => ({}),
      log: (l) => logs.push(l),
      security: { record: async () => undefined, notWritten: async () => undefined },
      trustProxy: [],
      limits: DEFAULT_HTTP_LIMITS,
      ...parts,
    }),
  );
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: async () => {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

// test/unit/ack-flow.test.ts fuzzes POST /v1/acks at the shared function; a smaller draw goes through crs serve
// (2026-12-06, seeded by FC_SEED): whatever the body, an answer in JSON with a status the sender can act on.
describe('POST /v1/acks through crs serve, fuzzed', () => {
  it('answers any body with a 4xx whose errors say what is wrong (429 past the refusal budget), never a 5xx', async () => {
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('v1.abc', 'Dr A', '__proto__'));
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .tuple(value, value, fc.constantFrom('token', 'by', 'tokne', '__proto__', 'constructor', ''), value)
        .map(
          ([t, b, k, v]) =>
            `{"token":${JSON.stringify(t)},"by":${JSON.stringify(b)},${JSON.stringify(k)}:${JSON.stringify(v)}}`,
        ),
      fc.string({ unit: 'binary', maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const res = await fetch(`${server.url}/v1/acks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: text,
        });
        expect([400, 403, 413, 429], text).toContain(res.status);
        const out = (await res.json()) as { errors: string[] };
        expect(out.errors.length, text).toBeGreaterThan(0);
        // A 400 names the field; a 403 (a token that does not verify) or 429 says why in words.
        for (const e of out.errors)
          expect(e, text).toMatch(res.status === 400 ? /^(body|token|by): \S|^unknown field "/ : /\S/);
        if (res.status === 429) expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      }),
      { numRuns: 60 },
    );
  });
});
