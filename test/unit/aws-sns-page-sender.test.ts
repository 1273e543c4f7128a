// SnsPageSender against a mocked SNS client: one Publish per page (one team, one level), with the attributes the
// teams' filter policies match (teams as a String.Array of one, team, role, level, ward) and the ids a receiver
// drops repeats by; HTTPS subscribers get the notification event exactly as `crs replay` prints it plus the page
// (role, level, acknowledge link); email and SMS get readable text with the link; alerts say what they are.
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { OXYGEN_DEVICE_NAMES } from '#domain/grading.ts';
import { byId, wireId } from '#domain/ids.ts';
import { notificationEvent } from '#domain/events.ts';
import { changeId, type Notification } from '#domain/page.ts';
import { DEFAULT_PAGING, pagesForAlert, pagesForNotification } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import type { PatientState } from '#domain/state.ts';
import { RecordRefused, type PageMessage } from '#ports';
import { MemoryAuditLog, MemoryPageStore, MemoryParkedSends } from '#app/memory.ts';
import { Pager, SendDeferred } from '#app/pager.ts';
import {
  MAX_ATTRIBUTES,
  SMS_MAX_SEGMENTS,
  SnsPageSender,
  pageSms,
  smsSegments,
  testPagePublishInput,
} from '#adapters/aws/sns-page-sender.ts';
import { shortAckToken, signAck } from '#app/ack.ts';
import fc from 'fast-check';
import { enrol, msg } from '#test/support/messages.ts';
import { parsePagingConfig, pagesSubscriptions } from '#domain/paging-endpoints.ts';
import { planStaleFeeds } from '#app/stale-feed.ts';
import { matchesFilterPolicy } from '#hosts/aws-emulator/patterns.ts';

const sns = mockClient(SNSClient);
afterAll(() => sns.restore());
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:Pages';
const NOW = Date.parse('2026-01-10T08:10:00Z');
let outbox: Map<string, Notification>;
const sender = () =>
  new SnsPageSender(
    new SNSClient({ region: 'eu-west-1' }),
    TOPIC,
    { notification: async (_p, id) => outbox.get(id), ward: async () => 'H4' },
    'Europe/Paris',
    () => NOW,
  );

function notifications(patientId: string, enrolment: Record<string, unknown> = {}): Notification[] {
  let state: PatientState | undefined;
  const out: Notification[] = [];
  for (const m of [
    enrol(patientId, -60, enrolment),
    msg(patientId, 0, { vitals: { temperatureC: 38.9 } }),
    msg(patientId, 5, { neuro: { iceScore: 5 } }),
  ]) {
    const step = reduce(state, m, DEFAULT_CONFIG, arrivalOf(m));
    state = step.state;
    if (step.kind === 'applied') out.push(...step.notifications);
  }
  for (const n of out) outbox.set(n.notificationId, n);
  return out;
}

/** The page message of a notification to one of its teams, at a level of the ladder. */
function pageOf(n: Notification, team: Notification['teams'][number], level = 0): PageMessage {
  const d = pagesForNotification(n, [], [], NOW, DEFAULT_PAGING).deliveries.find((x) => x.page.team === team)!;
  const page = { ...d.page, level };
  return {
    page,
    role: DEFAULT_PAGING.policies[team].levels[level]!,
    reason: level === 0 ? 'triggered' : 'escalated',
    ackUrl: `https://api.example/ack/v1.token-${team}`,
  };
}

/** GSM 03.38: the basic set (one septet each) and the extension table (an escape and the character: two). */
const GSM_BASIC_SET = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENSION_SET = new Set('^{}\\[~]|€');
/** The septets of a text in the GSM alphabet; a character outside it fails the test. */
function gsmSeptets(text: string): number {
  let n = 0;
  for (const c of text) {
    expect(GSM_BASIC_SET.has(c) || GSM_EXTENSION_SET.has(c), `not GSM: ${JSON.stringify(c)} in ${text}`).toBe(true);
    n += GSM_EXTENSION_SET.has(c) ? 2 : 1;
  }
  return n;
}

const published = () => sns.commandCalls(PublishCommand).map((c) => c.args[0].input);

beforeEach(() => {
  outbox = new Map();
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
});

describe('SnsPageSender', () => {
  it('publishes one page per team and level with the attributes the filter policies match', async () => {
    const [, icans] = notifications('P-1');
    expect(icans!.teams).toContain('neurology');
    await sender().send(pageOf(icans!, 'neurology', 1));
    const [input] = published();
    expect(input!.TopicArn).toBe(TOPIC);
    expect(input!.MessageAttributes).toEqual({
      teams: { DataType: 'String.Array', StringValue: '["neurology"]' },
      team: { DataType: 'String', StringValue: 'neurology' },
      role: { DataType: 'String', StringValue: 'neurology attending' },
      level: { DataType: 'Number', StringValue: '1' },
      subject: { DataType: 'String', StringValue: 'icans' },
      grade: { DataType: 'Number', StringValue: String(icans!.toGrade) },
      kind: { DataType: 'String', StringValue: 'escalation' },
      notificationId: { DataType: 'String', StringValue: icans!.notificationId },
      pageId: { DataType: 'String', StringValue: `${icans!.notificationId}|neurology` },
      ward: { DataType: 'String', StringValue: 'H4' },
    });
    expect(Object.keys(input!.MessageAttributes!).length).toBeLessThanOrEqual(MAX_ATTRIBUTES);
  });

  it('gives HTTPS subscribers the notification event as crs replay prints it, plus the page; email and SMS readable text with the link', async () => {
    const [crs] = notifications('P-2');
    await sender().send(pageOf(crs!, 'hematology'));
    const [input] = published();
    expect(input!.MessageStructure).toBe('json');
    const bodies = JSON.parse(input!.Message!) as Record<string, string>;
    const body = JSON.parse(bodies.default!) as Record<string, unknown>;
    const { page, ...event } = body;
    expect(event).toEqual(JSON.parse(JSON.stringify(notificationEvent(crs!))));
    // The page event every backend emits (the embedded webhook and --page-lines print the same).
    expect(page).toEqual({
      type: 'page',
      sendId: `${crs!.notificationId}|hematology#0`,
      pageId: `${crs!.notificationId}|hematology`,
      notificationId: crs!.notificationId,
      patientId: 'P-2',
      team: 'hematology',
      role: 'hematology fellow',
      level: 0,
      round: 0,
      reason: 'triggered',
      subject: 'crs',
      kind: 'escalation',
      technical: false,
      grade: 1,
      status: 'open',
      summary: crs!.summary,
      ackUrl: 'https://api.example/ack/v1.token-hematology',
      escalatesAt: '2026-01-10T08:25:00Z',
      sentAt: '2026-01-10T08:10:00Z',
    });
    expect(bodies.email).toContain(crs!.summary);
    for (const action of crs!.actions) expect(bodies.email).toContain(action);
    expect(bodies.email).toContain('Acknowledge: https://api.example/ack/v1.token-hematology');
    // SMS: the grade, the bed, the patient and the link, in one segment here.
    expect(bodies.sms).toBe(
      'CRS grade 1 (was 0) bed H4-P-2 P-2 - provisional, details at the link. Ack: https://api.example/ack/v1.token-hematology',
    );
    expect(smsSegments(bodies.sms!)).toBe(1);
    expect(input!.Subject).toBe('PROVISIONAL CRS grade 1 (was 0) P-2 bed H4-P-2');
  });

  it('says an escalated page is escalated, to whom and why', async () => {
    const [crs] = notifications('P-3');
    await sender().send(pageOf(crs!, 'hematology', 2));
    const [input] = published();
    expect(input!.Subject).toMatch(/^ESCALATED to hematology consultant: PROVISIONAL CRS grade 1/);
    expect(JSON.parse(input!.Message!).email).toContain(
      'Escalated to you (hematology consultant): nobody acknowledged in time.',
    );
  });

  it('says a page a silence held was held, sent now that the silence ended: in the subject, the email and the SMS', async () => {
    const [crs] = notifications('P-3');
    for (const level of [0, 1]) {
      sns.reset();
      sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
      const m = pageOf(crs!, 'hematology', level);
      // Held from 07:40 UTC, released at 08:10 UTC: written in the site's time (2026-12-07: the e-mail said neither).
      const page = { ...m.page, heldAt: NOW - 30 * 60_000, releasedAt: NOW };
      await sender().send({ ...m, page, reason: 'released' });
      const [input] = published();
      expect(input!.Subject).toMatch(/^AFTER SILENCE: PROVISIONAL CRS grade 1/);
      const message = JSON.parse(input!.Message!);
      expect(message.email).toContain(
        'Held by a silence from 2026-01-10 08:40 CET, sent 2026-01-10 09:10 CET when it ended: the change it is about may be older than this page.',
      );
      expect(message.sms).toMatch(/^AFTER SILENCE CRS grade 1 /);
      expect(JSON.parse(message.default).page.reason).toBe('released');
    }
    // A page never held says nothing of the kind.
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
    await sender().send(pageOf(crs!, 'hematology', 0));
    expect(published()[0]!.Subject).toMatch(/^PROVISIONAL CRS grade 1/);
    expect(JSON.parse(published()[0]!.Message!).email).not.toContain('Held by a silence');
  });

  it('reads the grade change back from the outbox when it was not handed over, and refuses a page without one', async () => {
    const [crs] = notifications('P-4');
    const s = sender();
    await s.send(pageOf(crs!, 'hematology'));
    outbox.clear();
    await expect(s.send(pageOf({ ...crs!, notificationId: 'crs|P-4|gone' }, 'hematology'))).rejects.toThrow(
      /not in the outbox/,
    );
    expect(published()).toHaveLength(1);
  });

  it("sends a technical alert as an alert, with the patient's ward for ward-limited endpoints", async () => {
    const t = pagesForAlert(
      {
        alertId: 'stale-feed|P-5|1',
        patientId: 'P-5',
        subject: 'stale-feed',
        cleared: false,
        summary: 'NO DATA, patient P-5',
      },
      [],
      [],
      NOW,
      DEFAULT_PAGING,
    );
    const d = t.deliveries[0]!;
    await sender().send({ page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://a/ack/x' });
    const [input] = published();
    expect(JSON.parse(JSON.parse(input!.Message!).default)).toEqual({
      type: 'alert',
      alertId: 'stale-feed|P-5|1',
      patientId: 'P-5',
      subject: 'stale-feed',
      kind: 'alert',
      summary: 'NO DATA, patient P-5',
      page: expect.objectContaining({
        type: 'page',
        pageId: 'stale-feed|P-5|1|bedside',
        team: 'bedside',
        role: 'bedside nurse',
        technical: true,
        ackUrl: 'https://a/ack/x',
      }),
    });
    expect(input!.MessageAttributes!.subject).toEqual({ DataType: 'String', StringValue: 'stale-feed' });
    expect(input!.MessageAttributes!.ward).toEqual({ DataType: 'String', StringValue: 'H4' });
  });

  it('leaves out the ward when none is known (SNS refuses empty values), and keeps the subject legal', async () => {
    const [crs] = notifications('P-6', { ward: undefined, bed: 'Bett-Ü-12'.padEnd(32, 'x') });
    outbox.set(crs!.notificationId, { ...crs!, ward: null });
    await sender().send(pageOf({ ...crs!, ward: null }, 'hematology'));
    const [input] = published();
    expect(input!.MessageAttributes!.ward).toBeUndefined();
    expect(input!.Subject!.length).toBeLessThanOrEqual(100);
    expect(input!.Subject).toMatch(/^[\x20-\x7e]+$/);
  });

  it('lets a publish failure surface, so the pager leaves the page unsent and sends it again', async () => {
    sns.on(PublishCommand).rejects(Object.assign(new Error('throttled'), { name: 'ThrottledException' }));
    const [crs] = notifications('P-7');
    await expect(sender().send(pageOf(crs!, 'hematology'))).rejects.toThrow('throttled');
  });
});

describe('SMS pages', () => {
  it('counts segments as carriers do: 160 GSM characters in one, 153 a segment beyond, 70/67 once a character is not GSM; the topic prefix included', () => {
    const prefix = 'CRS PAGES> '.length;
    expect(smsSegments('x'.repeat(160 - prefix))).toBe(1);
    expect(smsSegments('x'.repeat(161 - prefix))).toBe(2);
    expect(smsSegments('x'.repeat(306 - prefix))).toBe(2);
    expect(smsSegments('x'.repeat(307 - prefix))).toBe(3);
    expect(smsSegments('[]'.repeat(Math.floor((160 - prefix) / 4)))).toBe(1); // two septets each
    expect(smsSegments(`Bett ${'ł'}`)).toBe(1);
    expect(smsSegments('ł'.repeat(70 - prefix + 1))).toBe(2);
  });

  // 2026-12-07: the parts were the length divided by 153 (67): one too few when a two-septet character (or a
  // surrogate pair) fell on the boundary between two parts, which carriers do not cut.
  it('counts an extension character as two septets at the one-part limit, and never cuts it or a surrogate pair between parts', () => {
    const prefix = 'CRS PAGES> '.length;
    expect(smsSegments(`${'x'.repeat(160 - prefix - 2)}€`)).toBe(1);
    expect(smsSegments(`${'x'.repeat(160 - prefix - 1)}€`)).toBe(2);
    expect(smsSegments(`${'x'.repeat(160 - prefix - 2)}[`)).toBe(1);
    expect(smsSegments(`${'x'.repeat(160 - prefix - 1)}]`)).toBe(2);
    // 306 septets: the euro sign in places 152 and 153 fits the first part; in 153 and 154 it starts the second,
    // which then has 154 septets: three parts.
    expect(smsSegments(`${'x'.repeat(151 - prefix)}€${'x'.repeat(153)}`)).toBe(2);
    expect(smsSegments(`${'x'.repeat(152 - prefix)}€${'x'.repeat(152)}`)).toBe(3);
    // UCS-2, 134 code units: a surrogate pair in units 66 and 67 fits the first part; in 67 and 68 it does not.
    expect(smsSegments(`${'ł'.repeat(65 - prefix)}😀${'ł'.repeat(67)}`)).toBe(2);
    expect(smsSegments(`${'ł'.repeat(66 - prefix)}😀${'ł'.repeat(66)}`)).toBe(3);
  });

  it('keeps the grade, the bed, the word provisional and the whole link in two segments, dropping details first, for any realistic ids, teams and levels', () => {
    const [crs] = notifications('P-SMS');
    fc.assert(
      fc.property(
        fc.constantFrom(...(['crs', 'icans'] as const)),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/),
        // The patient's count of applied messages (changeId): a year of one a minute is 6 digits.
        fc.integer({ min: 1, max: 999_999 }),
        fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: null }),
        fc.constantFrom(...crs!.teams),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        (condition, from, to, patientId, seq, bed, team, level, released) => {
          const n = {
            ...crs!,
            condition,
            fromGrade: from,
            toGrade: to,
            patientId,
            bed,
            // Ids as the code makes them (page.ts changeId); ids once made from UUID messageIds were 30 longer.
            notificationId: changeId(condition, { patientId, seq }),
          };
          const page = pageOf(n, team, Math.min(level, DEFAULT_PAGING.policies[team].levels.length - 1));
          const token = signAck(Buffer.alloc(32, 7), {
            pageId: page.page.pageId,
            role: page.role,
            expiresAt: NOW + 12 * 3_600_000,
          });
          const ackUrl = `https://a1b2c3d4e5.execute-api.ap-southeast-2.amazonaws.com/ack/${token}`;
          const sms = pageSms({ ...page, ackUrl, ...(released ? { reason: 'released' as const } : {}) }, n);
          expect(smsSegments(sms)).toBeLessThanOrEqual(SMS_MAX_SEGMENTS);
          expect(sms.endsWith(ackUrl)).toBe(true);
          expect(sms).toContain(`${condition.toUpperCase()} grade ${to}`);
          expect(sms).toContain('- provisional'); // every page says so, however short
          if (bed && /^[A-Za-z0-9 -]+$/.test(bed)) expect(sms).toContain(`bed ${bed}`);
          if (released) expect(sms).toMatch(/^AFTER SILENCE /);
          else if (page.page.level > 0) expect(sms).toMatch(/^ESCALATED /);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sends a page with its short link in one part, leaving out only the words "details at the link"; in two when the ids need them, with everything', () => {
    const [crs] = notifications('P-2');
    const page = pageOf(crs!, 'hematology');
    const token = shortAckToken(Buffer.alloc(32, 7), {
      pageId: page.page.pageId,
      role: page.role,
      expiresAt: NOW + 12 * 3_600_000,
    });
    const ackUrl = `https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/ack/${token}`;
    const sms = pageSms({ ...page, ackUrl }, crs);
    expect(sms).toBe(`CRS grade 1 (was 0) bed H4-P-2 P-2 - provisional. Ack: ${ackUrl}`);
    expect(smsSegments(sms)).toBe(1);
    // Ids long enough that even that is over one part: two parts, nothing left out.
    const long = { ...crs!, patientId: 'MRN-0000123456789012', bed: 'ICU-WEST-12B' };
    const two = pageSms({ ...page, ackUrl }, long);
    expect(two).toBe(
      `CRS grade 1 (was 0) bed ICU-WEST-12B MRN-0000123456789012 - provisional, details at the link. Ack: ${ackUrl}`,
    );
    expect(smsSegments(two)).toBe(2);
  });

  it("shortens an alert's summary at a word, never inside a bed, an id or a time (2026-12-06)", () => {
    // A ward's no-data alert names its quiet patients: shortened mid-word, an escalated one ended "their grades
    // cannot be trus..", and a longer list could end "bed H4-1.." (bed H4-17) or "since 2026-12-06 02:4..".
    const link = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/ack/U8hxA2w8fIT0AW94a1clCg';
    const beds = (n: number) => Array.from({ length: n }, (_, i) => `P-00${41 + i}, bed H4-${11 + i}`).join('; ');
    for (const n of [5, 6, 7, 8, 9, 12]) {
      const summary = `NO DATA, ward H4: ${n} patients' monitors quiet since 2026-12-06 02:40 CET (${beds(n)}); their grades cannot be trusted`;
      const t = pagesForAlert(
        { alertId: 'stale-feed|ward:H4|1', patientId: 'ward:H4', subject: 'stale-feed', cleared: false, summary },
        [],
        [],
        NOW,
        DEFAULT_PAGING,
      );
      const d = t.deliveries[0]!;
      for (const level of [0, 1]) {
        const sms = pageSms({ page: { ...d.page, level }, role: d.role, reason: 'triggered', ackUrl: link });
        expect(smsSegments(sms)).toBeLessThanOrEqual(SMS_MAX_SEGMENTS);
        expect(sms.endsWith(` Ack: ${link}`)).toBe(true);
        const text = sms.slice(0, -` Ack: ${link}`.length).replace(/^ESCALATED /, '');
        if (text === summary) continue;
        // What is left is the summary's start, ended at a whole word, and says it was shortened.
        expect(text).toMatch(/[^ ,;:(]\.\.$/);
        const kept = text.slice(0, -2);
        expect(summary.startsWith(kept)).toBe(true);
        expect(summary[kept.length]).toMatch(/[ ,;:)]/);
        // A time is never left without its hour: "since 2026-12-06 .." says nothing of when.
        expect(kept).not.toMatch(/\d{4}-\d\d-\d\d$/);
      }
    }
  });

  it("shortens an alert's summary to fit, and never sends text outside the GSM alphabet", () => {
    const long = `NO DATA from the monitor of patient P-9 for 15 minutes: check the monitor, its cable and the gateway ${'and more '.repeat(30)}`;
    const t = pagesForAlert(
      { alertId: 'stale-feed|P-9|1', patientId: 'P-9', subject: 'stale-feed', cleared: false, summary: long },
      [],
      [],
      NOW,
      DEFAULT_PAGING,
    );
    const d = t.deliveries[0]!;
    const sms = pageSms({ page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://a/ack/tok' });
    expect(smsSegments(sms)).toBeLessThanOrEqual(SMS_MAX_SEGMENTS);
    expect(sms).toMatch(/^NO DATA from the monitor of patient P-9.*\.\. Ack: https:\/\/a\/ack\/tok$/);
    const [crs] = notifications('P-U', { bed: 'Bett-Ü-12' });
    const umlaut = pageSms({ ...pageOf(crs!, 'hematology'), ackUrl: 'https://a/ack/t' }, crs);
    expect(umlaut).toContain('bed Bett-Ü-12');
  });

  it('keeps every letter the GSM 7-bit alphabet has, writes the others as their nearest GSM form, ? only for the rest (2026-12-07)', () => {
    // Until 2026-12-07 the SMS kept printable ASCII only: bed "Süd 3 – Bett 2" arrived as "bed S?d 3 ? Bett 2".
    const ackUrl = 'https://abcdef1234.execute-api.eu-west-1.amazonaws.com/ack/rI4J-D4gIRk11J_f3xwQ-w';
    const [crs] = notifications('P-0042', { bed: 'Süd 3 – Bett 2' });
    const sms = pageSms({ ...pageOf(crs!, 'hematology'), ackUrl }, crs);
    expect(sms).toBe(`CRS grade 1 (was 0) bed Süd 3 - Bett 2 P-0042 - provisional. Ack: ${ackUrl}`);
    expect(smsSegments(sms)).toBe(1);
    const bed = (label: string) =>
      pageSms({ ...pageOf(crs!, 'hematology'), ackUrl: 'https://a/ack/t' }, { ...crs!, bed: label }).match(
        /bed (.*) P-0042/,
      )![1];
    expect(bed('Straße 4 Øst Åbo ÉÇ ñ à è é ù ì ò ¿¡ § Δ')).toBe('Straße 4 Øst Åbo ÉÇ ñ à è é ù ì ò ¿¡ § Δ');
    expect(bed('Bett [2] {a} ~ ^ | € \\')).toBe('Bett [2] {a} ~ ^ | € \\');
    expect(bed('Chambre “côté” d’ami — lit\u00a02 Łódź ÿ')).toBe('Chambre "coté" d\'ami - lit 2 Lodz y');
    expect(bed('Bed 中 2')).toBe('Bed ? 2');
    // A technical alert's summary (a ward or bed label in it) is written the same way (a mutation run, 2026-12-07).
    const alertSms = pageSms({
      page: { summary: 'NO DATA, ward Hämatologie – Süd: 3 monitors', level: 0, round: 0 } as PageMessage['page'],
      role: 'bedside nurse',
      reason: 'triggered',
    });
    expect(alertSms).toBe('NO DATA, ward Hämatologie - Süd: 3 monitors');
    // Sent decomposed (NFD: a letter and its combining mark, as some keyboards and systems write it), read as one
    // letter: ü kept, not "u?"; a mark no letter of the alphabet carries is left off (q̇ q), not a "?".
    expect(bed('Su\u0308d 3 – Bett 2')).toBe('Süd 3 - Bett 2');
    expect(bed('Bett q\u0307 2\u0301')).toBe('Bett q 2');
    // Whatever goes in, the SMS holds only GSM characters, each counted as it is sent (the cost model's parts).
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), (label) => {
        const sms = pageSms({ ...pageOf(crs!, 'hematology'), ackUrl: 'https://a/ack/t' }, { ...crs!, bed: label });
        expect(smsSegments(sms)).toBeLessThanOrEqual(SMS_MAX_SEGMENTS);
        expect(smsSegments(sms), sms).toBe(smsSegments('x'.repeat(gsmSeptets(sms))));
      }),
      { numRuns: 300 },
    );
  });
});

describe('the e-mail subject in ASCII (2026-12-07: written as the SMS is, by the same transliteration)', () => {
  // Until 2026-12-07 the subject kept printable ASCII only, every other character a "?": bed "Süd 3 – Bett 2" read
  // "bed S?d 3 ? Bett 2", ward Hämatologie "H?matologie", while the SMS of the same page had "Süd 3 - Bett 2".
  const subjectOf = async (m: PageMessage, n?: Notification) => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
    if (n) outbox.set(n.notificationId, n);
    await sender().send(m);
    return published()[0]!.Subject!;
  };
  const alertPage = (summary: string): PageMessage => {
    const t = pagesForAlert(
      { alertId: 'stale-feed|ward:H4|1', patientId: 'ward:H4', subject: 'stale-feed', cleared: false, summary },
      [],
      [],
      NOW,
      DEFAULT_PAGING,
    );
    const d = t.deliveries[0]!;
    return { page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://a/ack/x' };
  };

  it('writes a letter with a diacritic as its base letter, dashes and quotes as ASCII, ? only for the rest', async () => {
    const [crs] = notifications('P-0042', { bed: 'Süd 3 – Bett 2' });
    expect(await subjectOf(pageOf(crs!, 'hematology'), crs)).toBe(
      'PROVISIONAL CRS grade 1 (was 0) P-0042 bed Sud 3 - Bett 2',
    );
    const bed = async (label: string) =>
      (await subjectOf(pageOf({ ...crs!, bed: label }, 'hematology'), { ...crs!, bed: label })).replace(
        /^.* P-0042 bed /,
        '',
      );
    expect(await bed('Straße Øst Åbo ÆØ œ ÉÇ ñ')).toBe('Strasse Ost Abo AEO oe EC n');
    expect(await bed('Chambre “côté” d’ami — lit\u00a02 Łódź ÿ')).toBe('Chambre "cote" d\'ami - lit 2 Lodz y');
    expect(await bed('Bed 中 2 😀')).toBe('Bed ? 2 ?');
    // Printable ASCII is kept whole, from the space to the tilde; decomposed letters are read as one (NFC).
    expect(await bed('~ [x] {y} | ^ \\ ` @')).toBe('~ [x] {y} | ^ \\ ` @');
    expect(await bed('Su\u0308d 3 q\u0307')).toBe('Sud 3 q');
    // A mark with nothing before it is no accent: a "?", never an empty subject (which SNS refuses).
    expect(await subjectOf(alertPage('\u0301\u0301'))).toBe('?');
    expect(await bed('a\nb\tc\u2028d\x00e\x7f')).toBe('a b c d?e?');
    expect(await subjectOf(alertPage('NO DATA from ward Hämatologie – 3 monitors'))).toBe(
      'NO DATA from ward Hamatologie - 3 monitors',
    );
    const m = pageOf(crs!, 'hematology', 1);
    expect(await subjectOf({ ...m, role: 'Oberärztin Hämatologie' }, crs)).toMatch(
      /^ESCALATED to Oberarztin Hamatologie: PROVISIONAL CRS grade 1/,
    );
  });

  it('keeps SNS limits whatever the labels: printable ASCII, one line, under 100 characters, the grade kept', async () => {
    const [crs] = notifications('P-9');
    const label = fc.string({ unit: 'binary', maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(label, label, label, async (bed, role, summary) => {
        const n = { ...crs!, bed };
        const m = pageOf(n, 'hematology', 1);
        for (const subject of [await subjectOf({ ...m, role }, n), await subjectOf(alertPage(summary || 'x'))]) {
          expect(subject).toMatch(/^[\x20-\x7e]+$/);
          expect(subject.length).toBeLessThan(100);
        }
        expect(await subjectOf({ ...m, role: role || 'x' }, n)).toMatch(/: PROVISIONAL CRS grade 1 \(was 0\)/);
      }),
      { numRuns: 200 },
    );
    // A role of letters that take two ASCII characters each (ß: ss) still leaves the grade in the subject.
    expect(await subjectOf({ ...pageOf(crs!, 'hematology', 1), role: 'ß'.repeat(40) }, crs)).toMatch(
      /^ESCALATED to s{28}\.\.: PROVISIONAL CRS grade 1 \(was 0\)/,
    );
  });
});

describe('the low-SpO2 all-clear in an SMS (2026-12-07: it says what cleared it)', () => {
  it('fits one part, as before, with ids of 20 and beds of 12 characters, whatever the device, in any zone', () => {
    const patientId = 'MRN-0000123456789012';
    for (const timeZone of ['UTC', 'Europe/Paris', 'America/St_Johns', 'Asia/Kolkata', 'Pacific/Chatham'])
      for (const device of Object.keys(OXYGEN_DEVICE_NAMES).filter((d) => d !== 'room_air')) {
        const cfg = { ...DEFAULT_CONFIG, site: { ...DEFAULT_CONFIG.site, timeZone } };
        let state: PatientState | undefined;
        const cleared: string[] = [];
        for (const m of [
          enrol(patientId, -60, { bed: 'ICU-WEST-12B' }),
          msg(patientId, 0, { vitals: { spo2: 88 } }),
          msg(patientId, 6, { vitals: { spo2: 87 } }),
          msg(patientId, 7, { oxygen: { device } } as Parameters<typeof msg>[2]),
        ]) {
          const step = reduce(state, m, cfg, arrivalOf(m));
          state = step.state;
          if (step.kind === 'applied') cleared.push(...step.alerts.filter((a) => a.cleared).map((a) => a.summary));
        }
        expect(cleared).toHaveLength(1);
        const alert = { alertId: 'spo2|x|1', patientId, subject: 'spo2' as const, cleared: true, summary: cleared[0]! };
        const t = pagesForAlert(alert, [], [], NOW, DEFAULT_PAGING);
        for (const d of t.deliveries) {
          const sms = pageSms({ page: d.page, role: d.role, reason: 'triggered' });
          expect(sms).toMatch(/; last SpO2 87 %$/);
          expect(smsSegments(sms), sms).toBe(1);
        }
      }
  });
});

describe('SnsPageSender and what SNS refuses (issue 10)', () => {
  it('writes ids into attributes through wireId: an id from before the strict contract cannot make SNS refuse the page', async () => {
    const [n] = notifications('P-1');
    const m = pageOf(n!, 'hematology');
    const hostile = {
      ...m,
      page: { ...m.page, pageId: `${m.page.pageId}\r\n\u65e5`, notificationId: `${n!.notificationId}\u0000` },
    };
    outbox.set(hostile.page.notificationId, { ...n!, notificationId: hostile.page.notificationId });
    await sender().send(hostile);
    const attrs = published()[0]!.MessageAttributes!;
    expect(attrs.pageId!.StringValue).toBe(`${m.page.pageId}%0D%0A%E6%97%A5`);
    expect(attrs.notificationId!.StringValue).toBe(`${n!.notificationId}%00`);
  });

  it('tells a page SNS refuses (RecordRefused: parked by the pager) from SNS being down (retried in order)', async () => {
    const [n] = notifications('P-1');
    const refusal = Object.assign(new Error('Invalid parameter: Message too long'), {
      name: 'InvalidParameterException',
    });
    sns.on(PublishCommand).rejects(refusal);
    await expect(sender().send(pageOf(n!, 'hematology'))).rejects.toMatchObject({
      name: 'RecordRefused',
      message: 'SNS refused the page (InvalidParameterException)',
    });
    sns.on(PublishCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottledException' }));
    await expect(sender().send(pageOf(n!, 'hematology'))).rejects.toMatchObject({ name: 'ThrottledException' });
    sns.on(PublishCommand).rejects(Object.assign(new Error('KMS'), { name: 'KMSThrottlingException' }));
    await expect(sender().send(pageOf(n!, 'hematology'))).rejects.toMatchObject({ name: 'KMSThrottlingException' });
  });
});

describe('SnsPageSender: pinned by a mutation run', () => {
  it('pages a grade change handed over without reading it back (the outbox keeps it 30 days; a parked record is paged from its copy)', async () => {
    const [crs] = notifications('P-8');
    outbox.clear(); // dropped by the outbox's TTL since
    const s = sender();
    s.remember(crs!);
    await s.send(pageOf(crs!, 'hematology'));
    expect(published()).toHaveLength(1);
  });

  it('sends an ICANS page as a grade change, like a CRS one: the event crs replay prints, and the grade in the SMS', async () => {
    const [, icans] = notifications('P-9');
    expect(icans!.condition).toBe('icans');
    await sender().send(pageOf(icans!, 'neurology'));
    const message = JSON.parse(published()[0]!.Message!);
    const { page: _, ...event } = JSON.parse(message.default);
    expect(event).toEqual(JSON.parse(JSON.stringify(notificationEvent(icans!))));
    expect(message.sms).toMatch(new RegExp(`^ICANS grade ${icans!.toGrade} `));
  });

  it('says ESCALATED in the SMS of a page at the first level of a later round of its ladder', () => {
    const [crs] = notifications('P-10');
    const m = pageOf(crs!, 'hematology');
    expect(pageSms({ ...m, page: { ...m.page, level: 0, round: 1 } }, crs!)).toMatch(/^ESCALATED CRS grade /);
    expect(pageSms(m, crs!)).toMatch(/^CRS grade /);
  });

  it('says ESCALATED, and to whom, in the subject of a page at the first level of a later round', async () => {
    const [crs] = notifications('P-11');
    const m = pageOf(crs!, 'hematology');
    await sender().send({ ...m, page: { ...m.page, level: 0, round: 1 } });
    expect(published()[0]!.Subject).toMatch(/^ESCALATED to hematology fellow: PROVISIONAL CRS grade /);
  });

  it('keeps the email subject under the 100 characters SNS takes, however long the role, the patient id and the bed', async () => {
    const [crs] = notifications('P-LONG-PATIENT-ID-1', { bed: 'B'.repeat(32) });
    const m = pageOf(crs!, 'hematology', 1);
    await sender().send({ ...m, role: 'r'.repeat(40) });
    const subject = published()[0]!.Subject!;
    expect(subject.length).toBeLessThan(100);
    expect(subject).toMatch(/^ESCALATED to r{28}\.\.: PROVISIONAL CRS grade /);
  });

  it('never leaves the link out of an SMS, even one that cannot fit in two segments (an unusually long link)', () => {
    const [crs] = notifications('P-12', { bed: 'Bed 12' });
    const ackUrl = `https://api.example/ack/${'t'.repeat(400)}`;
    const sms = pageSms({ ...pageOf(crs!, 'hematology'), ackUrl }, crs!);
    expect(smsSegments(sms)).toBeGreaterThan(SMS_MAX_SEGMENTS);
    expect(sms.startsWith('CRS grade ')).toBe(true);
    expect(sms.endsWith(ackUrl)).toBe(true);
  });

  it("gives a test page every ward the team's ward-limited endpoints take, so that each of them gets it", () => {
    const input = testPagePublishInput(TOPIC, 'hematology', ['H4', 'ICU-2'], 't1', NOW, 'UTC');
    expect(input.MessageAttributes!.ward).toEqual({ DataType: 'String.Array', StringValue: '["H4","ICU-2"]' });
    expect(input.MessageAttributes!.team).toEqual({ DataType: 'String', StringValue: 'hematology' });
    expect(testPagePublishInput(TOPIC, 'hematology', [], 't2', NOW, 'UTC').MessageAttributes!.ward).toBeUndefined();
  });

  // docs/time-zones.md: the email text is read by people, in the site's zone (2026-12-07: the test page's was UTC,
  // "sent 2026-01-10T08:10:00.000Z", an hour off in Paris, beside pages that said 09:10 CET).
  it("writes a test page's time in the site's zone, its JSON's sentAt in RFC 3339 UTC", () => {
    const input = testPagePublishInput(TOPIC, 'icu', [], 't3', NOW, 'Europe/Paris');
    const message = JSON.parse(input.Message!) as { default: string; email: string };
    expect(message.email).toContain('Test t3, sent 2026-01-10 09:10 CET.');
    expect(JSON.parse(message.default)).toMatchObject({ sentAt: '2026-01-10T08:10:00.000Z' });
    const utc = JSON.parse(testPagePublishInput(TOPIC, 'icu', [], 't4', NOW, 'UTC').Message!) as { email: string };
    expect(utc.email).toContain('Test t4, sent 2026-01-10 08:10 UTC.');
  });
});

describe('SnsPageSender: a page that fails whenever it is sent is refused, never taken for SNS being down', () => {
  const aws = (name: string, fault: 'client' | 'server') =>
    Object.assign(new Error(name), {
      name,
      $fault: fault,
      $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 },
    });

  it('refuses a page whose grade change cannot be written (an outbox record of an older shape, or not JSON)', async () => {
    const [n] = notifications('P-OLD');
    // Stored before `reasons` and `actions` were written with every grade change: the page's text cannot be made.
    const { reasons: _r, actions: _a, ...old } = n!;
    outbox.set(n!.notificationId, old as Notification);
    await expect(sender().send(pageOf(n!, 'hematology'))).rejects.toMatchObject({
      name: 'RecordRefused',
      message: 'the page cannot be written (TypeError)',
    });
    const unreadable = new SnsPageSender(
      new SNSClient({ region: 'eu-west-1' }),
      TOPIC,
      { notification: async () => JSON.parse('{"notificationId":'), ward: async () => 'H4' },
      'UTC',
      () => NOW,
    );
    await expect(unreadable.send(pageOf(n!, 'hematology'))).rejects.toBeInstanceOf(RecordRefused);
    expect(published()).toEqual([]);
  });

  it('refuses what SNS answers about the page itself (any 4xx but throttling, a key, a permission or the topic); SNS failing or out of reach is down', async () => {
    const [n] = notifications('P-1');
    for (const e of [
      aws('InvalidParameterException', 'client'),
      aws('SomeNewRefusalException', 'client'),
      new URIError('URI malformed'),
    ]) {
      sns.on(PublishCommand).rejects(e);
      await expect(sender().send(pageOf(n!, 'hematology')), e.name).rejects.toBeInstanceOf(RecordRefused);
    }
    for (const e of [
      aws('ThrottledException', 'client'),
      aws('InternalErrorException', 'server'),
      aws('AuthorizationErrorException', 'client'),
      aws('NotFoundException', 'client'),
      aws('KMSAccessDeniedException', 'client'),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      Object.assign(new Error('socket timed out'), { code: 'ERR_SOCKET_CONNECTION_TIMEOUT' }),
      Object.assign(new Error('Forbidden'), { name: 'Error', $fault: 'client', $metadata: { httpStatusCode: 403 } }),
    ]) {
      sns.on(PublishCommand).rejects(e);
      await expect(sender().send(pageOf(n!, 'hematology')), e.name).rejects.not.toBeInstanceOf(RecordRefused);
    }
    // A read of the outbox that fails (DynamoDB throttled) is an outage too: the page is sent once it reads.
    const throttled = new SnsPageSender(
      new SNSClient({ region: 'eu-west-1' }),
      TOPIC,
      { notification: async () => Promise.reject(aws('ThrottlingException', 'client')), ward: async () => 'H4' },
      'UTC',
      () => NOW,
    );
    await expect(throttled.send(pageOf(n!, 'hematology'))).rejects.not.toBeInstanceOf(RecordRefused);
  });

  it('writes a ward label into the ward attribute in characters SNS takes and the SDK can encode (a lone surrogate, U+FFFE)', async () => {
    // The contract's labels refuse controls and format characters, not these: a ward "H4\uD800" was stored, and the
    // SDK's encodeURIComponent threw URIError on every page of the patient, which the pager took for SNS down.
    for (const ward of ['H4\uD800', 'H4\uDC00x', 'H4\uFFFE', 'H4\uFFFF']) {
      sns.resetHistory();
      const [n] = notifications('P-W', { ward });
      await sender().send(pageOf(n!, 'hematology'));
      const [input] = published();
      const value = input!.MessageAttributes!.ward!.StringValue!;
      expect(value).toBe(`H4\uFFFD${ward.endsWith('x') ? 'x' : ''}`);
      expect(() => encodeURIComponent(value + input!.Message!)).not.toThrow();
      expect(input!.Message!).not.toMatch(/[\uFFFE\uFFFF]/);
    }
  });

  it("on the escalate tick, a poison page is parked alone and every other patient's pages go out", async () => {
    const [old] = notifications('P-OLD');
    const [fine] = notifications('P-NEW');
    const audit = new MemoryAuditLog();
    const pages = new MemoryPageStore(audit);
    const parked = new MemoryParkedSends();
    // The notify and the escalate functions: one store, a sender each (the escalate one reads the outbox back).
    const pagerOf = (s: SnsPageSender) =>
      new Pager({
        pages,
        sender: s,
        audit,
        parked,
        refusedDelayMs: 0,
        config: DEFAULT_PAGING,
        ackSecret: Buffer.alloc(32, 7),
        ackBaseUrl: 'https://crs.example/ack/',
      });
    // SNS down while both grade changes were paged: their pages are stored unsent, P-OLD's first.
    sns.on(PublishCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottledException' }));
    const notify = pagerOf(sender());
    for (const [n, at] of [
      [old!, NOW],
      [fine!, NOW + 1000],
    ] as const)
      await expect(notify.onNotification({ ...n, teams: ['hematology'] }, at)).rejects.toBeInstanceOf(SendDeferred);
    // What the escalate function reads back for P-OLD cannot make a page (a record of an older shape).
    const { reasons: _r, actions: _a, ...oldShape } = old!;
    outbox.set(old!.notificationId, oldShape as Notification);
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'sns-1' });
    await pagerOf(sender()).onTick(NOW + 60_000);
    expect(published().map((i) => i.MessageAttributes!.pageId!.StringValue)).toEqual([
      `${fine!.notificationId}|hematology`,
    ]);
    expect(await parked.list()).toEqual([
      expect.objectContaining({
        pageId: `${old!.notificationId}|hematology`,
        reason: 'the page cannot be written (TypeError)',
      }),
    ]);
  });
});

describe("SnsPageSender: a ward's endpoints and the ward-wide no-data alert", () => {
  // The ward as the deployed sender reads it: the patient's state item (a ward alert's "patient" has none).
  const states = new Map<string, PatientState>();
  const deployed = () =>
    new SnsPageSender(
      new SNSClient({ region: 'eu-west-1' }),
      TOPIC,
      {
        notification: async (_p, id) => outbox.get(id),
        ward: async (patientId) => states.get(patientId)?.enrolment.ward?.v ?? null,
      },
      'UTC',
      () => NOW,
    );
  /** The stack's subscription of the bedside nurse of ward H4, and whether SNS hands it a published page. */
  const [h4Nurse] = pagesSubscriptions(
    parsePagingConfig({ teams: { bedside: { email: ['h4-nurses@hospital.example'], wards: ['H4'] } } }, 'paging'),
  );
  const reaches = (input: ReturnType<typeof published>[number]) =>
    matchesFilterPolicy(
      h4Nurse!.filterPolicy,
      Object.fromEntries(
        Object.entries(input.MessageAttributes!).map(([k, v]) => [k, { Type: v.DataType!, Value: v.StringValue! }]),
      ),
    );

  it("reaches the ward's nurses when its monitors go quiet together, as each patient's alert did, and its all-clear too", async () => {
    const checks = ['P-71', 'P-72', 'P-73'].map((patientId) => {
      const step = reduce(undefined, enrol(patientId), DEFAULT_CONFIG, arrivalOf(enrol(patientId)));
      states.set(patientId, step.state!);
      return { patientId, state: step.state, feed: { stale: true, since: NOW - 20 * 60_000 } };
    });
    // One patient quiet alone: the ward's nurses get its alert.
    const alone = planStaleFeeds(new Map(), checks.slice(0, 1), DEFAULT_PAGING, NOW, true, 'UTC');
    const one = pagesForAlert(alone.alerts[0]!, [], [], NOW, DEFAULT_PAGING).deliveries[0]!;
    await deployed().send({ page: one.page, role: one.role, reason: 'triggered', ackUrl: 'https://a/ack/x' });
    // The three quiet together (the ward's network down): one alert for the ward, and its all-clear.
    const plan = planStaleFeeds(new Map(), checks, DEFAULT_PAGING, NOW, true, 'UTC');
    expect(plan.alerts.map((a) => a.patientId)).toEqual(['ward H4']);
    const raised = pagesForAlert(plan.alerts[0]!, [], [], NOW, DEFAULT_PAGING);
    const d = raised.deliveries[0]!;
    await deployed().send({ page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://a/ack/y' });
    await deployed().send({ page: { ...d.page, level: 1 }, role: 'charge nurse', reason: 'escalated' });
    const resumed = planStaleFeeds(
      plan.set,
      checks.map((c) => ({ ...c, feed: { stale: false, since: NOW } })),
      DEFAULT_PAGING,
      NOW,
      true,
      'UTC',
    );
    expect(resumed.alerts.map((a) => a.summary)).toEqual([expect.stringMatching(/^Data resumed, ward H4/)]);
    const cleared = pagesForAlert(resumed.alerts[0]!, raised.pages, [], NOW, DEFAULT_PAGING).deliveries[0]!;
    await deployed().send({ page: cleared.page, role: cleared.role, reason: 'triggered' });
    const sent = published();
    expect(sent.map((i) => i.MessageAttributes!.ward?.StringValue)).toEqual(['H4', 'H4', 'H4', 'H4']);
    expect(sent.map(reaches)).toEqual([true, true, true, true]);
  });
});

describe('wireId and byId, which every transport and store order relies on (pinned by a mutation run)', () => {
  it('encodes each unsafe character as UTF-8, in upper-case hex, and leaves the safe ones', () => {
    expect(wireId('P-1._:~@/+=|#')).toBe('P-1._:~@/+=|#');
    expect(wireId('a b')).toBe('a%20b');
    // Those encodeURI would leave, and those encodeURIComponent leaves.
    expect(wireId("?&$;,!'()*")).toBe('%3F%26%24%3B%2C%21%27%28%29%2A');
    // A character beyond the BMP is one character, four UTF-8 bytes (not two surrogates).
    expect(wireId('x\u{1F600}')).toBe('x%F0%9F%98%80');
  });

  it('marks a lone surrogate apart, at both ends of the range, in upper case', () => {
    expect(wireId('a\uD800')).toBe('a%uD800');
    expect(wireId('a\uDFFF')).toBe('a%uDFFF');
    expect(wireId('\uDABC')).toBe('%uDABC');
  });

  it('orders ids by their code units, not by the locale: upper case before lower', () => {
    expect(['b', 'B', 'a', 'A', 'a'].sort(byId)).toEqual(['A', 'B', 'a', 'a', 'b']);
    expect(byId('a', 'a')).toBe(0);
  });
});
