// What a page carries, on every channel (crs-rules section 6, docs/paging.md, docs/runbook.md): random grade
// changes, made by grading real messages (both conditions, up and down, ASTCT and Lee, with and without bed,
// weight and tocilizumab doses, long ids and odd bed labels), paged through the real pager and rendered by each
// channel's real code. Every channel that carries a grade change carries what it is documented to carry, says the
// grade is provisional, never carries a name, and holds only characters its medium can carry.
//
// Per channel (a grade change):
// - HTTPS (SNS `default`: the event plus `page`), the webhook (the event; a page with it under `notification`),
//   stdout NDJSON and `crs replay`: the notification event (notificationEvent), valid JSON, with every section-6
//   item as a field (patientId, bed, condition, fromGrade, toGrade, scheme, criteria with value and at,
//   dayPostInfusion, provisional, actions, tocilizumab dose / doses given / allowed); the dose and the counts are
//   also worked out here independently from the weight and the doses sent.
// - Email body: the summary as its first line (id, bed, condition, grades, scheme, criteria with values and times,
//   day, "Provisional: confirm at bedside"), every action (the tocilizumab dose, doses given, whether another is
//   allowed), and the acknowledge link. Subject: one line of printable ASCII, at most 100 characters, with
//   "PROVISIONAL <condition> grade N (was M)", also escalated to a long-named role.
// - SMS: the short form (grade, bed or id, "provisional", the link whole), GSM alphabet, at most two segments
//   with ids of up to 20 characters (runbook); the rest is behind the link:
// - the acknowledge link's page: everything the email body carries, HTML-escaped.
// - no channel carries the enrolment's product, free text a name could be typed into.
// Technical alerts (stale feed, low SpO2; not grades): the summary on every channel, GSM SMS, escaped HTML.
// The board (shared/web/board.js) is checked by the browser tests, not here.
import fc from 'fast-check';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StdoutSink, WebhookSink } from '#hosts/embedded/sinks.ts';
import { pageEvent } from '#domain/page-event.ts';
import { pageSms, publishInput, smsSegments } from '#adapters/aws/sns-page-sender.ts';
import { readFileSync } from 'node:fs';
import { shortAckToken } from '#app/ack.ts';
import { ACK_PAGE_HEADERS, ackErrorPage, ackFormPage, ackStatusPage } from '#app/ack-page.ts';
import { arrivalOf } from '#app/digest.ts';
import { staleFeedAlert } from '#app/stale-feed.ts';
import { DEFAULT_CONFIG, type GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { notificationEvent } from '#domain/events.ts';
import { reasonText } from '#domain/grading.ts';
import { fromGradeOf, type Notification } from '#domain/page.ts';
import type { PageMessage } from '#domain/page-event.ts';
import { DEFAULT_PAGING, type Page, pagesForAlert, pagesForNotification } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import type { PatientState } from '#domain/state.ts';
import { CRS_MESSAGE, enrol, msg, T0 } from '#test/support/messages.ts';
import { config, run } from '#test/support/run.ts';
import { inlineText } from '#test/support/html.ts';

const NAME = 'Jane Doe';
const NOW = T0 + 3 * 24 * 3600_000;
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
const SCHEME_NAMES = { astct2019: 'ASTCT 2019', lee2014: 'Lee 2014' } as const;

type Step =
  | { kind: 'crs'; grade: number; gap: number }
  | { kind: 'icans'; iceScore: number; consciousness: 'alert' | 'awakens_to_voice' | 'unarousable'; gap: number }
  | { kind: 'tocilizumab'; gap: number }
  | { kind: 'spo2'; spo2: number; gap: number };

interface Scenario {
  patientId: string;
  scheme: 'astct2019' | 'lee2014';
  timeZone: string;
  therapy: 'car-t' | 'bispecific';
  bed?: string;
  weightKg?: number;
  infusedDaysBefore: number;
  steps: Step[];
  /** The role an escalated page goes to (paging config: any non-empty name). */
  escalatedRole?: string;
}

const idChars = fc.constantFrom(...'ABCPxyz0123456789._:-');
const gap = fc.integer({ min: 1, max: 120 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('crs' as const), grade: fc.integer({ min: 0, max: 4 }), gap }),
  fc.record({
    kind: fc.constant('icans' as const),
    iceScore: fc.constantFrom(10, 8, 5, 1, 0),
    consciousness: fc.constantFrom('alert' as const, 'awakens_to_voice' as const, 'unarousable' as const),
    gap,
  }),
  fc.record({ kind: fc.constant('tocilizumab' as const), gap }),
  fc.record({ kind: fc.constant('spo2' as const), spo2: fc.constantFrom(85, 97), gap }),
);

const scenario: fc.Arbitrary<Scenario> = fc.record(
  {
    patientId: fc.oneof(
      fc.constantFrom('P-001', 'MRN:0000123456', 'x'),
      fc.string({ unit: idChars, minLength: 1, maxLength: 64 }),
    ),
    scheme: fc.constantFrom('astct2019' as const, 'lee2014' as const),
    timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'),
    therapy: fc.constantFrom('car-t' as const, 'bispecific' as const),
    bed: fc.oneof(
      fc.constantFrom(
        'H4-12',
        'Zimmer Süd 3',
        '<b>&"bed"</b>',
        'ICU [7]{a}',
        'bed\nnew line',
        '床 12 🛏',
        'x'.repeat(32),
      ),
      fc.string({ minLength: 1, maxLength: 32 }),
    ),
    weightKg: fc.oneof(fc.integer({ min: 5, max: 150 }), fc.constantFrom(29.5, 100.5)),
    infusedDaysBefore: fc.integer({ min: -1, max: 20 }),
    steps: fc.array(step, { minLength: 1, maxLength: 14 }),
    escalatedRole: fc.oneof(fc.constant('ICU consultant'), fc.string({ minLength: 1, maxLength: 120 })),
  },
  { requiredKeys: ['patientId', 'scheme', 'timeZone', 'therapy', 'infusedDaysBefore', 'steps', 'escalatedRole'] },
);

/** Grades the scenario's messages: its grade changes, its technical alerts, and the config it was graded with. */
function grade(s: Scenario) {
  const cfg: GradingConfig = config({ scheme: s.scheme, site: { timeZone: s.timeZone } });
  let i = 0;
  let minute = 0;
  const doses: number[] = [];
  const message = (sections: Omit<DeviceMessage, 'messageId' | 'patientId' | 'observedAt' | 'source'>) =>
    ({
      messageId: `${s.patientId}-${i++}`,
      patientId: s.patientId,
      observedAt: new Date(T0 + minute * 60_000).toISOString(),
      source: { deviceId: 'dev-1', kind: 'monitor' },
      ...sections,
    }) as DeviceMessage;
  const messages: DeviceMessage[] = [
    message({
      enrolment: {
        therapy: s.therapy,
        // Free text a name could slip into: never carried by a page.
        product: `axi-cel for ${NAME}`,
        infusedAt: new Date(T0 - s.infusedDaysBefore * 24 * 3600_000).toISOString(),
        ...(s.bed === undefined ? {} : { bed: s.bed }),
        ...(s.weightKg === undefined ? {} : { weightKg: s.weightKg }),
        ward: 'H4',
      },
    }),
  ];
  for (const st of s.steps) {
    minute += st.gap;
    if (st.kind === 'crs') messages.push(message(CRS_MESSAGE[st.grade]!));
    else if (st.kind === 'icans')
      messages.push(message({ neuro: { iceScore: st.iceScore, consciousness: st.consciousness } }));
    else if (st.kind === 'tocilizumab') {
      messages.push(message({ medications: [{ drug: 'tocilizumab', doseMg: 560 }] }));
      doses.push(T0 + minute * 60_000);
    } else messages.push(message({ vitals: { spo2: st.spo2 } }));
  }
  let state: PatientState | undefined;
  const notifications: Notification[] = [];
  const alerts: Parameters<typeof pagesForAlert>[0][] = [];
  for (const m of messages) {
    const r = reduce(state, m, cfg, arrivalOf(m));
    state = r.state;
    if (r.kind !== 'applied') continue;
    notifications.push(...r.notifications);
    alerts.push(...r.alerts);
  }
  alerts.push(staleFeedAlert(s.patientId, T0, state, s.timeZone));
  // The day since infusion: the calendar days between the two dates in the site's zone (day 0 the infusion's day).
  const dateIn = new Intl.DateTimeFormat('en-CA', { timeZone: s.timeZone });
  const day = (ms: number) => Date.parse(dateIn.format(ms)) / (24 * 3600_000);
  const infused = T0 - s.infusedDaysBefore * 24 * 3600_000;
  // Each grade change's tocilizumab advice, worked out here independently (crs-rules section 6).
  for (const n of notifications) {
    const at = Date.parse(n.at);
    expect(n.dayPostInfusion).toBe(day(at) - day(infused));
    const w = s.weightKg;
    const total = doses.filter((t) => t <= at).length;
    const in24h = doses.filter((t) => t <= at && t > at - 24 * 3600_000).length;
    expect(n.tocilizumab).toMatchObject({
      doseMg: w === undefined ? null : Math.min(Math.round(w * (w < 30 ? 12 : 8)), 800),
      givenTotal: total,
      given24h: in24h,
      anotherAllowed: in24h < 3 && total < 4,
    });
  }
  return { cfg, notifications, alerts };
}

/** The messages of a page to each of its teams, at the first level and escalated, with and without a link. */
/**
 * The messages the pager can send for these pages: an information page (a fall in grade, an all-clear) is sent once,
 * with no link, and never escalates. Until 2026-12-06 one was also made escalated and with a link, which no page is
 * (an escalated fall with the 230-character link below took 3 SMS segments: FC_SEED=1941546027).
 */
function messagesOf(pages: Page[], withLink: boolean, escalatedRole = 'ICU consultant'): PageMessage[] {
  return pages.flatMap((page) =>
    (page.status === 'info' ? [0] : [0, 1]).map((level) => ({
      page: { ...page, level },
      role: level === 0 ? DEFAULT_PAGING.policies[page.team].levels[0]! : escalatedRole,
      reason: level === 0 ? ('triggered' as const) : ('escalated' as const),
      ...(withLink && page.status !== 'info'
        ? { ackUrl: `https://crs.hospital.example/ack/v1.${'A'.repeat(180)}.sig-${page.team}` }
        : {}),
    })),
  );
}

/** What a reader of a grade change must find, as text (section 6). */
function requiredText(n: Notification, cfg: GradingConfig): string[] {
  const tz = cfg.site.timeZone;
  return [
    `patient ${n.patientId}`,
    ...(n.bed ? [`bed ${n.bed}`] : []),
    // A fall says so in words: "grade 1 (was 3)" alone read at a glance as a rise (2026-12-06).
    `${n.condition.toUpperCase()} grade ${n.kind === 'de-escalation' ? 'down to ' : ''}${n.toGrade}`,
    `was ${n.fromGrade}`,
    n.condition === 'icans' ? 'ASTCT 2019 ICANS' : SCHEME_NAMES[n.scheme],
    ...n.reasons.map((r) => reasonText(r, tz)),
    ...(n.dayPostInfusion === null ? [] : [`day ${n.dayPostInfusion < 0 ? '' : '+'}${n.dayPostInfusion}`]),
    'Provisional: confirm at bedside',
    ...n.actions,
    ...(n.condition === 'crs' && n.toGrade >= 1
      ? [
          n.tocilizumab.doseMg === null ? 'dose not computed' : `Tocilizumab ${n.tocilizumab.doseMg} mg IV`,
          n.tocilizumab.givenTotal === 0 ? 'no dose given yet' : `${n.tocilizumab.givenTotal} dose`,
          !n.tocilizumab.anotherAllowed
            ? 'no further dose allowed'
            : n.tocilizumab.givenTotal === 0
              ? 'a dose is allowed now'
              : 'another',
        ]
      : []),
  ];
}

const GSM = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f',
);

/** The text a browser shows of an HTML document made of the ack page's tags (and fails on unescaped content). */
function htmlText(html: string): string {
  const body = inlineText(html.slice(html.indexOf('<main>'), html.indexOf('</main>')));
  const text = body.replace(/<\/?(main|h1|div|p|ul|li|form|label|input|button)\b[^>]*>/g, '\n');
  expect(text, 'raw < or > in text').not.toMatch(/[<>]/);
  expect(text, 'a bare &').not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/);
  return text.replace(
    /&(amp|lt|gt|quot|#39);/g,
    (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!,
  );
}

/** Checks every channel of one grade change; returns the problems found. */
/** A line break or control character read as a space: what a reader of one line of text sees. */
const flat = (s: string) => s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, ' ');

function checkGradeChange(n: Notification, cfg: GradingConfig, escalatedRole?: string): void {
  const required = requiredText(n, cfg).map(flat);
  const event = notificationEvent(n);
  // Webhook, stdout NDJSON, crs replay: the event as JSON.
  const line = JSON.stringify(event);
  expect(JSON.parse(line)).toEqual(event);
  expect(event).toMatchObject({
    type: 'notification',
    patientId: n.patientId,
    bed: n.bed,
    condition: n.condition,
    fromGrade: n.fromGrade,
    toGrade: n.toGrade,
    scheme: n.condition === 'icans' ? 'astct2019' : cfg.scheme, // the scheme of the grade
    dayPostInfusion: n.dayPostInfusion,
    provisional: true,
    actions: n.actions,
  });
  expect(event.criteria).toEqual(n.reasons.map(({ criterion, value, at }) => ({ criterion, value, at })));
  expect(event.summary).toContain('Provisional: confirm at bedside');
  expect(line).not.toContain(NAME);

  const { pages } = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING);
  for (const withLink of [true, false]) {
    for (const m of messagesOf(pages, withLink, escalatedRole)) {
      const input = publishInput(TOPIC, m, n, n.ward, NOW, 'UTC');
      const structure = JSON.parse(input.Message!) as { default: string; email: string; sms: string };
      // HTTPS: the event plus the page.
      const body = JSON.parse(structure.default) as Record<string, unknown>;
      expect(body).toMatchObject({ ...JSON.parse(line), page: m.ackUrl ? { ackUrl: m.ackUrl } : {} });
      expect('ackUrl' in (body.page as object)).toBe(m.ackUrl !== undefined);
      // Email.
      // Plain text: the summary is its first line, whatever a bed label holds (no line of it can pose as a link).
      expect(structure.email).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
      expect(structure.email.split('\n')[0]).toMatch(/Provisional: confirm at bedside\.$/);
      for (const t of required) expect(structure.email, `email: ${t}`).toContain(t);
      if (m.ackUrl) expect(structure.email).toContain(m.ackUrl);
      expect(input.Subject).toMatch(/^[\x20-\x7e]{1,100}$/);
      const headline = `${n.condition.toUpperCase()} grade ${n.kind === 'de-escalation' ? 'down to ' : ''}${n.toGrade}`;
      expect(n.toGrade < n.fromGrade).toBe(n.kind === 'de-escalation');
      expect(n.summary).toContain(`PROVISIONAL ${headline} (was ${n.fromGrade}; `);
      // What the board reads its "from N" from once the record is past the retention (2026-12-07): the page's own
      // field, and the summary's words for a page stored before it.
      expect(m.page.fromGrade).toBe(n.fromGrade);
      expect(fromGradeOf(n.summary)).toBe(n.fromGrade);
      expect(input.Subject).toContain(`PROVISIONAL ${headline} (was ${n.fromGrade})`);
      // SMS: the short form, and the link to the rest.
      const sms = structure.sms;
      expect(sms).toBe(pageSms(m, n));
      for (const c of sms) expect(GSM.has(c), `SMS character ${JSON.stringify(c)}`).toBe(true);
      expect(sms).toContain('provisional');
      expect(sms).toContain(headline);
      if (m.ackUrl) expect(sms).toContain(`Ack: ${m.ackUrl}`);
      else expect(sms, 'an SMS without a link sends nobody to one').not.toMatch(/link|Ack:/);
      if (n.patientId.length <= 20) expect(smsSegments(sms)).toBeLessThanOrEqual(2);
      for (const channel of [structure.default, structure.email, sms, input.Subject!])
        expect(channel).not.toContain(NAME);
      // The acknowledge link's page: the rest.
      const html = ackFormPage(m.page, m.role, 80, cfg.site.timeZone);
      const text = flat(htmlText(html));
      for (const t of required) expect(text, `ack page: ${t}`).toContain(t);
      expect(html).not.toContain(NAME);
    }
  }
}

function checkAlert(alert: Parameters<typeof pagesForAlert>[0]): void {
  const { pages } = pagesForAlert(alert, [], [], NOW, DEFAULT_PAGING);
  for (const m of messagesOf(pages, true)) {
    const structure = JSON.parse(publishInput(TOPIC, m, undefined, 'H4', NOW, 'UTC').Message!) as Record<
      string,
      string
    >;
    expect(JSON.parse(structure.default!)).toMatchObject({ type: 'alert', summary: alert.summary });
    expect(structure.email!.split('\n')[0]).toBe(flat(alert.summary));
    for (const c of structure.sms!) expect(GSM.has(c), `SMS character ${JSON.stringify(c)}`).toBe(true);
    if (m.ackUrl) expect(structure.sms).toContain(`Ack: ${m.ackUrl}`);
    else expect(structure.sms, 'an all-clear sends nobody to a link').not.toMatch(/Ack:/);
    // The link's page says which patient's alert it is: it was rendered and never read here.
    const html = ackFormPage(m.page, m.role, 80, 'UTC');
    expect(flat(htmlText(html))).toContain(flat(alert.summary));
    expect(html).not.toContain(NAME);
    for (const channel of Object.values(structure)) expect(channel).not.toContain(NAME);
  }
}

describe('what a page carries, on every channel', () => {
  it('random grade changes: every channel carries its section-6 items, provisional, no name, its alphabet', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { cfg, notifications, alerts } = grade(s);
        for (const n of notifications) checkGradeChange(n, cfg, s.escalatedRole);
        for (const a of alerts) checkAlert(a);
      }),
      { numRuns: Number(process.env.PAGE_CONTENT_RUNS ?? 60) },
    );
  }, 600_000);
});

/** The fixed examples' patient (each example sets its steps, and what it changes). */
const EXAMPLE = {
  patientId: 'P-001',
  scheme: 'astct2019',
  timeZone: 'UTC',
  therapy: 'car-t',
  bed: 'H4-12',
  weightKg: 70,
  infusedDaysBefore: 2,
} as const;

describe('the embedded lanes: webhook (signed JSON) and standard output (NDJSON)', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('carry the grade change as crs replay prints it, and each page with the grade change it is about', async () => {
    const posted: { body: string; headers: Record<string, string> }[] = [];
    vi.stubGlobal('fetch', async (_url: string, init: { body: string; headers: Record<string, string> }) => {
      posted.push({ body: init.body, headers: init.headers });
      return new Response(null, { status: 204 });
    });
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const { notifications } = grade(s);
        const byId = new Map(notifications.map((n) => [n.notificationId, n]));
        const webhook = new WebhookSink('http://127.0.0.1:9/hook', 'secret', (id) => byId.get(id));
        let out = '';
        const stdout = new StdoutSink(
          new Writable({
            write(chunk, _enc, done) {
              out += String(chunk);
              done();
            },
          }),
          true,
        );
        for (const n of notifications) {
          posted.length = 0;
          out = '';
          const record = { seq: 1, kind: 'notification' as const, id: n.notificationId, patientId: n.patientId };
          const item = { ...record, body: JSON.stringify(n) };
          await webhook.deliver(item);
          await stdout.deliver(item);
          const line = JSON.stringify(notificationEvent(n));
          expect(posted[0]!.body).toBe(line);
          expect(out).toBe(`${line}\n`);
          for (const m of messagesOf(pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages, true)) {
            const event = pageEvent(m, NOW);
            const pageItem = { seq: 2, kind: 'page' as const, id: event.sendId, patientId: n.patientId };
            await webhook.deliver({ ...pageItem, body: JSON.stringify(event) });
            const sent = JSON.parse(posted.at(-1)!.body) as Record<string, unknown>;
            expect(sent).toEqual({ ...event, notification: JSON.parse(line) });
            expect(sent.summary).toContain('Provisional: confirm at bedside');
            for (const v of Object.values(posted.at(-1)!.headers)) expect(v).toMatch(/^[\x20-\x7e]*$/);
          }
          expect(out + posted.map((p) => p.body).join('')).not.toContain(NAME);
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});

describe("the docs' examples are what the code sends", () => {
  it("runbook.md's SMS example is a CRS 3 page's SMS with a real acknowledge link", () => {
    const s: Scenario = {
      ...EXAMPLE,
      steps: [
        { kind: 'crs', grade: 1, gap: 1 },
        { kind: 'crs', grade: 3, gap: 5 },
      ],
    };
    const n = grade(s).notifications.at(-1)!;
    expect([n.fromGrade, n.toGrade]).toEqual([1, 3]);
    const [page] = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages;
    const role = DEFAULT_PAGING.policies[page!.team].levels[0]!;
    const token = shortAckToken(Buffer.alloc(32, 7), { pageId: page!.pageId, role, expiresAt: NOW + 720 * 60_000 });
    const link = `https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/ack/${token}`;
    const runbook = readFileSync(new URL('../../docs/runbook.md', import.meta.url), 'utf8').replace(/\n/g, ' ');
    const example = /An SMS page is short \([^)]*\): `([^`]+)`/.exec(runbook)![1]!;
    expect(pageSms({ page: page!, role, reason: 'triggered', ackUrl: link }, n)).toBe(example.replace('<link>', link));
  });
});

describe('found by the property above (fixed examples)', () => {
  it("the acknowledge link's page shows the next steps and the tocilizumab dose: the SMS leaves them to the link", () => {
    const s: Scenario = {
      ...EXAMPLE,
      steps: [
        { kind: 'tocilizumab', gap: 1 },
        { kind: 'crs', grade: 2, gap: 1 },
      ],
    };
    const { cfg, notifications } = grade(s);
    const n = notifications.find((x) => x.condition === 'crs' && x.toGrade === 2)!;
    const [page] = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages;
    const sms = pageSms(
      { page: page!, role: 'hematology fellow', reason: 'triggered', ackUrl: 'https://x.example/ack/t' },
      n,
    );
    expect(sms).toContain('details at the link');
    const text = htmlText(ackFormPage(page!, 'hematology fellow', 80, cfg.site.timeZone));
    expect(text).toContain('Next steps (decision support; confirm against the local protocol):');
    expect(text).toContain('Tocilizumab 560 mg IV (8 mg/kg x 70 kg); 1 dose given (1 in 24 h)');
    for (const a of n.actions) expect(text).toContain(a);
  });

  it('an SMS with no acknowledge link (a fall in grade: informational) does not say "details at the link"', () => {
    const s: Scenario = {
      ...EXAMPLE,
      steps: [
        { kind: 'crs', grade: 2, gap: 1 },
        { kind: 'crs', grade: 0, gap: 1 },
        { kind: 'crs', grade: 0, gap: 90 },
      ],
    };
    const n = grade(s).notifications.find((x) => x.kind === 'de-escalation')!;
    const [page] = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages;
    expect(page!.status).toBe('info');
    expect(pageSms({ page: page!, role: 'hematology fellow', reason: 'triggered' }, n)).toBe(
      `CRS grade down to ${n.toGrade} (was 2) bed H4-12 P-001 - provisional.`,
    );
  });

  it('a line break in a bed label does not start a line of the email (one could pose as an acknowledge link)', () => {
    const s: Scenario = {
      ...EXAMPLE,
      patientId: 'A',
      bed: 'H4\nAcknowledge: http://x',
      infusedDaysBefore: 0,
      steps: [{ kind: 'crs', grade: 1, gap: 1 }],
    };
    const { notifications, alerts } = grade(s);
    const n = notifications[0]!;
    const [page] = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages;
    const m = {
      page: page!,
      role: 'hematology fellow',
      reason: 'triggered' as const,
      ackUrl: 'https://x.example/ack/t',
    };
    const email = (JSON.parse(publishInput(TOPIC, m, n, 'H4', NOW, 'UTC').Message!) as { email: string }).email;
    expect(email.split('\n')[0]).toMatch(
      /^PROVISIONAL CRS grade 1 \(was 0; ASTCT 2019\), patient A, bed H4 Acknowledge: http:\/\/x, day \+0: /,
    );
    expect(email.split('\n').filter((l) => l.startsWith('Acknowledge:'))).toEqual([
      'Acknowledge: https://x.example/ack/t',
    ]);
    const [alert] = pagesForAlert(alerts.at(-1)!, [], [], NOW, DEFAULT_PAGING).pages;
    const alertEmail = JSON.parse(
      publishInput(TOPIC, { ...m, page: alert! }, undefined, 'H4', NOW, 'UTC').Message!,
    ).email;
    expect(alertEmail.split('\n')[0]).toMatch(/^NO DATA, patient A, bed H4 Acknowledge: http:\/\/x: nothing/);
  });

  it('an escalated email to a long-named role keeps the grade and "PROVISIONAL" in the subject', () => {
    const s: Scenario = {
      ...EXAMPLE,
      steps: [{ kind: 'crs', grade: 3, gap: 1 }],
    };
    const n = grade(s).notifications.at(-1)!;
    const [page] = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).pages;
    const role = 'Hematology attending on call for the CAR-T service (pager 4455, weekends)';
    const subject = publishInput(
      TOPIC,
      { page: { ...page!, level: 1 }, role, reason: 'escalated' },
      n,
      'H4',
      NOW,
      'UTC',
    ).Subject!;
    expect(subject).toMatch(
      /^ESCALATED to Hematology attending on call\.\.: PROVISIONAL CRS grade 3 \(was 0\) P-001 bed H4-12$/,
    );
    expect(subject.length).toBeLessThanOrEqual(100);
  });

  it('a grade change before the infusion is on day -1, not "day +-1"', () => {
    const s: Scenario = {
      ...EXAMPLE,
      infusedDaysBefore: -1,
      steps: [{ kind: 'crs', grade: 1, gap: 1 }],
    };
    const [n] = grade(s).notifications;
    expect(n!.dayPostInfusion).toBe(-1);
    expect(n!.summary).toContain('patient P-001, bed H4-12, day -1: fever');
    expect(n!.summary).not.toContain('+-');
  });
});

describe('pinned by a mutation run: the acknowledge page', () => {
  const page: Page = {
    pageId: 'crs|P-1|n-1|hematology',
    notificationId: 'n-1',
    patientId: 'P-1',
    team: 'hematology',
    subject: 'spo2',
    kind: 'alert',
    grade: 0,
    summary: 'SpO2 88% on P-1 (bed 4)',
    status: 'open',
    delivered: true,
    rev: 1,
    level: 0,
    round: 0,
    triggeredAt: Date.parse('2026-11-26T10:00:00Z'),
    dueAt: null,
  };

  it('is sent with headers that keep it out of frames, caches, referrers and content sniffing', () => {
    expect(ACK_PAGE_HEADERS).toMatchObject({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    });
    expect(ACK_PAGE_HEADERS['content-security-policy']).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
    expect(ackFormPage(page, 'hematology fellow', 80, 'UTC')).toContain('<meta name="referrer" content="no-referrer">');
  });

  it("allows its own inline style and nothing else: the CSP's hash is the style's", async () => {
    const { createHash } = await import('node:crypto');
    const style = /<style>([\s\S]*?)<\/style>/.exec(ackFormPage(page, 'hematology fellow', 80, 'UTC'))![1]!;
    const hash = createHash('sha256').update(style).digest('base64');
    expect(ACK_PAGE_HEADERS['content-security-policy']).toContain(`style-src 'sha256-${hash}'`);
  });

  it('calls a low-SpO2 page a technical alert, not a grade', () => {
    const html = ackFormPage(page, 'hematology fellow', 80, 'UTC');
    expect(html).toContain('Technical alert (not a grade)');
    expect(html).not.toMatch(/SPO2 grade/);
  });

  it('asks for the name as a required field, and escapes the error and the detail it shows', () => {
    const form = ackFormPage(page, 'hematology fellow', 80, 'UTC', 'by: <b>bad</b>');
    expect(form).toMatch(/<input id="by" name="by"[^>]* required /);
    expect(form).toContain('by: &lt;b&gt;bad&lt;/b&gt;');
    expect(ackErrorPage('Refused', '<img src=x>')).toContain('<p>&lt;img src=x&gt;</p>');
  });

  it('marks a done acknowledgement green and a refusal grey', () => {
    expect(ackStatusPage(page, 'r', 'Acknowledged', 'done', true, 'UTC')).toContain('<div class="card ok">');
    expect(ackStatusPage(page, 'r', 'Not acknowledged', 'closed', false, 'UTC')).toContain('<div class="card bad">');
  });
});

describe('pinned by a mutation run: what a grade change page carries', () => {
  const fever = CRS_MESSAGE[1]!;

  it('counts calendar days from the day of the infusion: 2 days and 18 hours after it is day +3 once past midnight', () => {
    // Infused 2026-01-08T08:00Z (enrol's default); T0 is 2026-01-10T08:00Z: T0 + 15 h is 23:00 on 10 January, day +2,
    // and T0 + 18 h is 02:00 on 11 January, day +3 (a count of whole 24 hours said +2 all that morning).
    const before = run([enrol('D-1'), msg('D-1', 15 * 60, fever)]).notifications[0]!;
    expect(before.dayPostInfusion).toBe(2);
    const r = run([enrol('D-1b'), msg('D-1b', 18 * 60, fever)]);
    const [n] = r.notifications;
    expect(n!.dayPostInfusion).toBe(3);
    expect(n!.summary).toContain('patient D-1b, bed H4-D-1b, day +3: ');
  });

  it("counts the days in the site's zone: infused at 16:00 in Paris, the next morning is day +1, and an hour before it day 0", () => {
    const paris = config({ site: { timeZone: 'Europe/Paris' } });
    const infusedAt = '2026-01-10T15:00:00Z'; // 16:00 CET on 10 January
    // 08:00 CET on 11 January: 16 hours after the infusion, the day after it.
    const next = run([enrol('D-3', -60, { infusedAt }), msg('D-3', 23 * 60, fever)], paris).notifications[0]!;
    expect([next.dayPostInfusion, next.summary]).toEqual([1, expect.stringContaining('bed H4-D-3, day +1: ')]);
    // A fever at 15:00 CET on the day of the infusion, before it: day 0, not day -1.
    const same = run([enrol('D-4', -60, { infusedAt }), msg('D-4', 6 * 60, fever)], paris).notifications[0]!;
    expect([same.dayPostInfusion, same.summary]).toEqual([0, expect.stringContaining('bed H4-D-4, day +0: ')]);
    // 23:30 UTC on 10 January is 00:30 on the 11th in Paris: day +1 there, day 0 for a site in UTC.
    const late = [enrol('D-5', -60, { infusedAt }), msg('D-5', 15 * 60 + 30, fever)];
    expect(run(late, paris).notifications[0]!.dayPostInfusion).toBe(1);
    expect(run(late).notifications[0]!.dayPostInfusion).toBe(0);
  });

  it('counts the days across a daylight-saving change as the calendar does (New York, 8 March 2026)', () => {
    const ny = config({ site: { timeZone: 'America/New_York' } });
    // Infused at 00:30 EST on 7 March; the clocks go forward at 02:00 on 8 March. 23:30 EDT on 8 March is only
    // 46 hours later, yet day +1; 00:15 EDT on 9 March (46 h 45 min later) is day +2.
    const infusedAt = '2026-03-07T05:30:00Z';
    const at = (observedAt: string) =>
      run(
        [
          { ...enrol('D-6'), observedAt: '2026-03-07T06:00:00Z', enrolment: { ...enrol('D-6').enrolment!, infusedAt } },
          { ...msg('D-6', 0, fever), observedAt },
        ],
        ny,
      ).notifications[0]!;
    expect(at('2026-03-09T03:30:00Z').dayPostInfusion).toBe(1);
    expect(at('2026-03-09T04:15:00Z').dayPostInfusion).toBe(2);
  });

  it('with no infusion time known, a page gives no day since infusion (not day +0)', () => {
    const r = run([msg('D-2', 0, fever)]);
    const [n] = r.notifications;
    expect(n!.dayPostInfusion).toBeNull();
    expect(n!.summary).toMatch(/^PROVISIONAL CRS grade 1 \(was 0; ASTCT 2019\), patient D-2: fever/);
    expect(n!.summary).not.toContain('day');
  });

  const toci = (patientId: string, minutes: number) =>
    msg(patientId, minutes, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] });

  it('with the caps reached, the advice names no time for another dose, and the last dose is the latest', () => {
    // Three doses in 24 h (the cap), the last 1 h before the page: no "not before" time, as no dose is allowed.
    const r = run([enrol('D-3'), toci('D-3', 0), toci('D-3', 60), toci('D-3', 120), msg('D-3', 180, fever)]);
    const t = r.notifications.at(-1)!.tocilizumab;
    expect(t).toMatchObject({ givenTotal: 3, given24h: 3, anotherAllowed: false, notBefore: null });
    expect(t.lastGivenAt).toBe('2026-01-10T10:00:00Z');
    expect(t.text).toContain('no further dose allowed: 3 in 24 h reached');
  });

  it('a tocilizumab charted at 0 mg (a held dose) is no dose given, and masks no fever', () => {
    const held = (patientId: string, minutes: number, drug: 'tocilizumab' | 'acetaminophen') =>
      msg(patientId, minutes, { medications: [{ drug, doseMg: 0 }] });
    const r = run([
      enrol('D-6'),
      toci('D-6', 0),
      toci('D-6', 60),
      held('D-6', 120, 'tocilizumab'),
      msg('D-6', 180, fever),
    ]);
    expect(r.notifications.at(-1)!.tocilizumab).toMatchObject({ givenTotal: 2, given24h: 2, anotherAllowed: true });
    // A fever, a 0 mg antipyretic, low pressures the next day out of the fever's 24 h: no waiver, no CRS (ASTCT).
    const low = (minutes: number) => msg('D-7', minutes, { vitals: { temperatureC: 37, systolicBP: 84 } });
    const course = (drug: 'acetaminophen', doseMg: number) =>
      run([
        enrol('D-7'),
        msg('D-7', 0, fever),
        msg('D-7', 30, { medications: [{ drug, doseMg }] }),
        low(25 * 60),
        low(25 * 60 + 10),
      ]).notifications.map((n) => n.toGrade);
    expect(course('acetaminophen', 0)).toEqual([1]); // not given: fever needed, and gone
    expect(course('acetaminophen', 1000)).toEqual([1, 2]); // given, it waives fever
  });

  it('says when the dose was capped at the maximum', () => {
    const r = run([enrol('D-4', -60, { weightKg: 120 }), msg('D-4', 0, fever)]);
    const t = r.notifications[0]!.tocilizumab;
    expect(t).toMatchObject({ doseMg: 800, capped: true });
    expect(t.text).toMatch(
      /^Tocilizumab 800 mg IV \(8 mg\/kg x 120 kg, capped at 800 mg\); no dose given yet; a dose is allowed now \(/,
    );
    expect(r.notifications[0]!.actions).toContain(t.text);
  });

  it("a fall in grade leads with the stand-down line, then the new grade's steps", () => {
    const r = run([
      enrol('D-5'),
      msg('D-5', 0, CRS_MESSAGE[2]!),
      msg('D-5', 10, { oxygen: { device: 'room_air' } }),
      msg('D-5', 80, { oxygen: { device: 'room_air' } }),
    ]);
    const down = r.notifications.at(-1)!;
    expect(down).toMatchObject({ kind: 'de-escalation', fromGrade: 2, toGrade: 1 });
    expect(down.actions).toEqual([
      'Grade has fallen; review and continue the protocol for the current grade.',
      'Supportive care; infection work-up.',
      'Consider tocilizumab if fever persists or comorbidities.',
      down.tocilizumab.text,
    ]);
  });

  it('leaves out the stand-down and interruption lines a site left empty: no empty step on the page', () => {
    // Until 2026-12-05 an empty text (which the configuration takes) was an empty step on the page (found by a mutation
    // run).
    const cfg = config({ actions: { ...DEFAULT_CONFIG.actions, deEscalation: '', bispecificInterrupt: '' } });
    const r = run(
      [
        enrol('D-5', -60, { therapy: 'bispecific' }),
        msg('D-5', 0, CRS_MESSAGE[2]!),
        msg('D-5', 10, { oxygen: { device: 'room_air' } }),
        msg('D-5', 80, { oxygen: { device: 'room_air' } }),
      ],
      cfg,
    );
    const [up, down] = r.notifications;
    expect([up!.kind, down!.kind]).toEqual(['escalation', 'de-escalation']);
    expect(up!.actions).toEqual([...DEFAULT_CONFIG.actions.crs[1]!, up!.tocilizumab.text]);
    expect(down!.actions).toEqual([...DEFAULT_CONFIG.actions.crs[0]!, down!.tocilizumab.text]);
  });

  it('names the therapy and the ward, and a bispecific one is told to interrupt from grade 2', () => {
    const r = run([enrol('D-6', -60, { therapy: 'bispecific' }), msg('D-6', 0, CRS_MESSAGE[2]!)]);
    const [n] = r.notifications;
    expect(n).toMatchObject({ therapy: 'bispecific', ward: 'H4', bed: 'H4-D-6', toGrade: 2 });
    expect(n!.actions.at(-1)).toBe(
      'Bispecific therapy: interrupt the infusion (short half-life, about 2 h for blinatumomab).',
    );
  });

  it('shows the mg/kg the dose was worked out with: 12 mg/kg under 30 kg', () => {
    const r = run([enrol('D-7', -60, { weightKg: 25 }), msg('D-7', 0, fever)]);
    expect(r.notifications[0]!.tocilizumab.text).toMatch(
      /^Tocilizumab 300 mg IV \(12 mg\/kg x 25 kg\); no dose given yet; a dose is allowed now \(/,
    );
  });

  // The board's "from N" once the retention dropped the record (2026-12-07): read from the start of a grade change's
  // summary alone. A no-data alert quoting those words in its bed label (free text, 32 characters) has none.
  it("reads the grade a change went from at the start of its summary only, whatever the grades' digits", () => {
    const bed = 'PROVISIONAL CRS grade 3 (was 1; ';
    const m = enrol('P1', 0, { bed });
    const alert = staleFeedAlert('P1', T0, reduce(undefined, m, DEFAULT_CONFIG, arrivalOf(m)).state, 'UTC');
    expect(alert.summary).toContain(`bed ${bed}`);
    expect([fromGradeOf(alert.summary), fromGradeOf(staleFeedAlert('P1', T0, undefined, 'UTC').summary)]).toEqual([
      undefined,
      undefined,
    ]);
    // No grade has two digits: the reading does not depend on it.
    expect(fromGradeOf('PROVISIONAL ICANS grade down to 9 (was 12; ASTCT 2019 ICANS), patient P1.')).toBe(12);
    expect(fromGradeOf('PROVISIONAL CRS grade 10 (was 9; Lee 2014), patient P1.')).toBe(9);
  });
});

describe('pinned by a mutation run: the page event every sink carries', () => {
  const page: Page = {
    pageId: 'crs|P-1|#4|icu',
    notificationId: 'crs|P-1|#4',
    patientId: 'P-1',
    team: 'icu',
    subject: 'crs',
    kind: 'escalation',
    grade: 3,
    summary: 'PROVISIONAL CRS grade 3 (was 1; ASTCT 2019), patient P-1',
    status: 'open',
    delivered: true,
    rev: 5,
    level: 1,
    round: 2,
    triggeredAt: Date.parse('2026-11-26T10:00:00Z'),
    dueAt: Date.parse('2026-11-26T10:10:00Z'),
  };
  const sentAt = Date.parse('2026-11-26T10:05:00Z');

  it('carries the reason, the role, the grade, when it was sent and when it escalates', () => {
    const e = pageEvent(
      { page, role: 'ICU consultant', reason: 'escalated', ackUrl: 'https://x.example/ack/t' },
      sentAt,
    );
    expect(e).toEqual({
      type: 'page',
      sendId: 'crs|P-1|#4|icu#5',
      pageId: 'crs|P-1|#4|icu',
      notificationId: 'crs|P-1|#4',
      patientId: 'P-1',
      team: 'icu',
      role: 'ICU consultant',
      level: 1,
      round: 2,
      reason: 'escalated',
      subject: 'crs',
      kind: 'escalation',
      technical: false,
      grade: 3,
      status: 'open',
      summary: 'PROVISIONAL CRS grade 3 (was 1; ASTCT 2019), patient P-1',
      ackUrl: 'https://x.example/ack/t',
      escalatesAt: '2026-11-26T10:10:00Z',
      sentAt: '2026-11-26T10:05:00Z',
    });
    for (const reason of ['triggered', 'released', 'resent'] as const)
      expect(pageEvent({ page, role: 'r', reason }, sentAt).reason).toBe(reason);
  });

  it('an informational page has no acknowledge link and does not escalate', () => {
    const info = { ...page, kind: 'de-escalation' as const, status: 'info' as const, dueAt: null };
    const e = pageEvent({ page: info, role: 'ICU registrar', reason: 'triggered' }, sentAt);
    expect('ackUrl' in e).toBe(false);
    expect(e.escalatesAt).toBeNull();
  });
});
