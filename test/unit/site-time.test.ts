// Times people read: every page (SMS, email, the webhook's summary), the acknowledge page and the board show times
// in the site's zone (site.timeZone, UTC by default) in one format, 2026-12-01 09:20 CET. Reasons carry their
// times as data; the machine-readable fields (replay's reasons and criteria, the webhook's ISO fields) stay
// RFC 3339 UTC, as the message contract fixes them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publishInput } from '../../shared/adapters/aws/sns-page-sender.ts';
import { gradingConfigFromEnv } from '../../shared/adapters/aws/grading-config.ts';
import { shippedConfig } from '#test/support/config-file.ts';
import type { OutboxItem } from '#adapters/sqlite/outbox.ts';
import { pageEvent } from '#domain/page-event.ts';
import { arrivalOf } from '../../shared/app/digest.ts';
import { staleFeedAlert } from '../../shared/app/stale-feed.ts';
import { loadConfig } from '../../shared/cli/main.ts';
import { DEFAULT_CONFIG, configFor, resolveConfig, type GradingConfig } from '../../shared/domain/config.ts';
import { notificationEvent } from '../../shared/domain/events.ts';
import { reasonText } from '../../shared/domain/grading.ts';
import type { Notification } from '../../shared/domain/page.ts';
import { pagesForAlert, pagesForNotification } from '../../shared/domain/paging.ts';
import { reduce, type AlertChange } from '../../shared/domain/reducer.ts';
import type { PatientState } from '../../shared/domain/state.ts';
import { formatSiteTime, isTimeZone } from '../../shared/domain/time.ts';
import type { PageMessage } from '../../shared/ports.ts';
import { ackFormPage } from '#app/ack-page.ts';
import { WebhookSink } from '#hosts/embedded/sinks.ts';
import { T0, enrol, msg } from '../support/messages.ts';
import { inlineText } from '#test/support/html.ts';

const PARIS = configFor('astct2019', { site: { timeZone: 'Europe/Paris' } });
const ISO_INSTANT = /\d{4}-\d\d-\d\dT\d\d:\d\d/;

describe('formatSiteTime', () => {
  it('writes the site wall clock to the minute with the zone, UTC by default', () => {
    expect(DEFAULT_CONFIG.site.timeZone).toBe('UTC');
    expect(formatSiteTime('2026-12-01T08:20:03Z', DEFAULT_CONFIG.site.timeZone)).toBe('2026-12-01 08:20 UTC');
    expect(formatSiteTime('2026-12-01T08:20:03Z', 'Europe/Paris')).toBe('2026-12-01 09:20 CET');
    expect(formatSiteTime(Date.parse('2026-07-01T08:20:00Z'), 'Europe/Paris')).toBe('2026-07-01 10:20 CEST');
    // An instant written with another offset is the same instant.
    expect(formatSiteTime('2026-12-01T03:20:00-05:00', 'Europe/Paris')).toBe('2026-12-01 09:20 CET');
    // A zone without an abbreviation in the format's locale is written as its offset; the date follows the zone.
    expect(formatSiteTime('2026-12-01T23:30:00Z', 'Asia/Kolkata')).toBe('2026-12-02 05:00 GMT+5:30');
    expect(formatSiteTime('2026-12-01T02:00:00Z', 'America/New_York')).toBe('2026-11-30 21:00 GMT-5');
  });

  it('follows daylight saving time: the skipped hour in spring, the repeated hour in autumn told apart by the zone', () => {
    // Europe/Paris, 29 March 2026: 02:00 CET becomes 03:00 CEST.
    expect(formatSiteTime('2026-03-29T00:59:00Z', 'Europe/Paris')).toBe('2026-03-29 01:59 CET');
    expect(formatSiteTime('2026-03-29T01:00:00Z', 'Europe/Paris')).toBe('2026-03-29 03:00 CEST');
    // 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    expect(formatSiteTime('2026-10-25T00:30:00Z', 'Europe/Paris')).toBe('2026-10-25 02:30 CEST');
    expect(formatSiteTime('2026-10-25T01:30:00Z', 'Europe/Paris')).toBe('2026-10-25 02:30 CET');
    // America/New_York, 8 March 2026 at 02:00 local.
    expect(formatSiteTime('2026-03-08T06:59:00Z', 'America/New_York')).toBe('2026-03-08 01:59 GMT-5');
    expect(formatSiteTime('2026-03-08T07:00:00Z', 'America/New_York')).toBe('2026-03-08 03:00 GMT-4');
  });

  it('knows IANA zone names and refuses anything else', () => {
    for (const zone of ['UTC', 'Etc/UTC', 'GMT', 'Europe/Paris', 'America/Argentina/Buenos_Aires', 'EST5EDT'])
      expect(isTimeZone(zone), zone).toBe(true);
    // A fixed offset under a zone's name is refused as `+01:00` is (2026-12-07): Etc/GMT+1 was taken.
    for (const zone of ['', 'Mars/Olympus_Mons', '+01:00', 'Europe/Paris ', 'CET+1', '../etc', 'Etc/GMT+1', 'EST'])
      expect(isTimeZone(zone), zone).toBe(false);
    // The other fixed abbreviations, in any case (the runtime takes "est" as America/Panama).
    for (const zone of ['MST', 'HST', 'est', 'mst']) expect(isTimeZone(zone), zone).toBe(false);
  });
});

describe('site.timeZone', () => {
  it('is validated with an error that names the field, in the config file, on AWS and at synth (test/infra)', () => {
    expect(resolveConfig({ site: { timeZone: 'Europe/Pariss' } })).toEqual({
      ok: false,
      errors: [
        'site.timeZone: "Europe/Pariss" is not an IANA time zone name (e.g. Europe/Paris, America/New_York, UTC)',
      ],
    });
    expect(resolveConfig({ site: { timeZone: '+01:00' } }).ok).toBe(false);
    // IANA's Etc/GMT+5 is UTC-5 (POSIX's sign, west positive), without daylight saving time: set for Bogota it was
    // right, for New York an hour off in summer, and set as "GMT+5" for Karachi ten hours off. Refused since
    // 2026-12-07, as docs/time-zones.md says fixed offsets are, naming the reversal and the fix; so are the tz
    // database's fixed abbreviations (EST is UTC-5 all year, never New York's time in summer).
    expect(resolveConfig({ site: { timeZone: 'Etc/GMT+5' } })).toEqual({
      ok: false,
      errors: [
        'site.timeZone: "Etc/GMT+5" is a fixed offset, UTC-5 (IANA reverses the sign: Etc/GMT+N is N hours west of UTC), without daylight saving time: set the region\'s zone name (e.g. America/Bogota, Asia/Karachi, Europe/Paris)',
      ],
    });
    expect(resolveConfig({ site: { timeZone: 'etc/gmt-14' } })).toEqual({
      ok: false,
      errors: [
        'site.timeZone: "etc/gmt-14" is a fixed offset, UTC+14 (IANA reverses the sign: Etc/GMT-N is N hours east of UTC), without daylight saving time: set the region\'s zone name (e.g. America/Bogota, Asia/Karachi, Europe/Paris)',
      ],
    });
    expect(resolveConfig({ site: { timeZone: 'EST' } })).toEqual({
      ok: false,
      errors: [
        'site.timeZone: "EST" is a fixed offset, UTC-5 all year, without daylight saving time: set the region\'s zone name (e.g. America/New_York, America/Bogota)',
      ],
    });
    expect(resolveConfig({ site: { timeZone: 'hst' } })).toEqual({
      ok: false,
      errors: [
        'site.timeZone: "hst" is a fixed offset, UTC-10 all year, without daylight saving time: set the region\'s zone name (e.g. America/New_York, America/Bogota)',
      ],
    });
    for (const utc of ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT'])
      expect(resolveConfig({ site: { timeZone: utc } }).ok, utc).toBe(true);
    expect(resolveConfig({ site: { zone: 'UTC' } })).toMatchObject({
      ok: false,
      errors: [expect.stringMatching(/^site: .*zone/)],
    });
    expect(resolveConfig({ site: {} }).ok).toBe(true);
    // The AWS functions read it from CRS_CONFIG_FILE (the stack ships `-c gradingConfig=...` there).
    expect(gradingConfigFromEnv(shippedConfig({ site: { timeZone: 'Europe/Paris' } })).site.timeZone).toBe(
      'Europe/Paris',
    );
    expect(() => gradingConfigFromEnv(shippedConfig({ site: { timeZone: 'Paris' } }))).toThrow(
      /CRS_CONFIG_FILE .*site\.timeZone: "Paris" is not an IANA time zone/,
    );
    // crs serve / replay --config FILE.
    const dir = mkdtempSync(join(tmpdir(), 'crs-tz-'));
    writeFileSync(join(dir, 'bad.json'), '{"site":{"timeZone":"Europe/Pariss"}}');
    writeFileSync(join(dir, 'good.json'), '{"site":{"timeZone":"America/New_York"}}');
    writeFileSync(join(dir, 'fixed.json'), '{"site":{"timeZone":"Etc/GMT+5"}}');
    expect(() => loadConfig(join(dir, 'fixed.json'), undefined)).toThrow(
      'invalid config: site.timeZone: "Etc/GMT+5" is a fixed offset, UTC-5 (IANA reverses the sign',
    );
    expect(() => gradingConfigFromEnv(shippedConfig({ site: { timeZone: 'Etc/GMT+5' } }))).toThrow(
      /CRS_CONFIG_FILE .*site\.timeZone: "Etc\/GMT\+5" is a fixed offset, UTC-5/,
    );
    expect(() => loadConfig(join(dir, 'bad.json'), undefined)).toThrow(
      'invalid config: site.timeZone: "Europe/Pariss" is not an IANA time zone name',
    );
    expect(loadConfig(join(dir, 'good.json'), undefined).site.timeZone).toBe('America/New_York');
    rmSync(dir, { recursive: true });
  });
});

/** Enrolled; tocilizumab at 07:50Z; fever 38.9 at 08:00Z (09:00 in Paris): CRS 1, paged to hematology. */
function gradeOne(config: GradingConfig): { notification: Notification; state: PatientState } {
  let state: PatientState | undefined;
  const out: Notification[] = [];
  for (const m of [
    enrol('TZ1', -60),
    msg('TZ1', -10, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] }),
    msg('TZ1', 0, { vitals: { temperatureC: 38.9 } }),
  ]) {
    const step = reduce(state, m, config, arrivalOf(m));
    state = step.state;
    if (step.kind === 'applied') out.push(...step.notifications);
  }
  expect(out).toHaveLength(1);
  return { notification: out[0]!, state: state! };
}

const NOW = T0 + 10 * 60_000; // 08:10Z, 09:10 in Paris

function pageMessage(n: Notification): PageMessage {
  const d = pagesForNotification(n, [], [], NOW, PARIS.paging).deliveries[0]!;
  return { page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://crs.example/ack/v1.token' };
}

describe('a page rendered for a site in Europe/Paris', () => {
  it('has its reasons and advice in local time, and the machine-readable fields as the contract fixes them', () => {
    const { notification: n } = gradeOne(PARIS);
    expect(n.summary).toContain('fever 38.9 °C at 2026-01-10 09:00 CET');
    expect(n.summary).not.toMatch(ISO_INSTANT);
    expect(n.actions.join('\n')).toContain('another allowed from 2026-01-10 16:50 CET (repeat every 8 h)');
    expect(n.tocilizumab).toMatchObject({ notBefore: '2026-01-10T15:50:00Z', lastGivenAt: '2026-01-10T07:50:00Z' });
    // crs replay, the stdout sink and the webhook print the same stable reasons and criteria as before.
    const event = notificationEvent(n);
    expect(event.reasons).toEqual(['fever 38.9 °C at 2026-01-10T08:00:00Z']);
    expect(event.criteria).toEqual([{ criterion: 'fever', value: 38.9, at: '2026-01-10T08:00:00Z' }]);
    expect(event.at).toBe('2026-01-10T08:00:00Z');
    expect(reasonText(n.reasons[0]!, 'Europe/Paris')).toBe('fever 38.9 °C at 2026-01-10 09:00 CET');
    // A reason stored before reasons carried parts reads as its text.
    expect(reasonText({ text: 'fever 38.9 °C at 2026-01-10T08:00:00Z' }, 'Europe/Paris')).toBe(
      'fever 38.9 °C at 2026-01-10T08:00:00Z',
    );
  });

  it('is in UTC, in the same format, when the site sets no zone', () => {
    const { notification: n } = gradeOne(DEFAULT_CONFIG);
    expect(n.summary).toContain('fever 38.9 °C at 2026-01-10 08:00 UTC');
    expect(notificationEvent(n).reasons).toEqual(['fever 38.9 °C at 2026-01-10T08:00:00Z']);
  });

  it('shows local time by email, in the HTTPS (webhook) JSON summary and by SMS on AWS', () => {
    const { notification: n, state } = gradeOne(PARIS);
    const grade = JSON.parse(publishInput('arn:topic', pageMessage(n), n, 'H4', NOW, PARIS.site.timeZone).Message!) as {
      default: string;
      email: string;
      sms: string;
    };
    expect(grade.email).toContain('fever 38.9 °C at 2026-01-10 09:00 CET');
    expect(grade.email).toContain('another allowed from 2026-01-10 16:50 CET');
    const body = JSON.parse(grade.default) as {
      summary: string;
      reasons: string[];
      page: { summary: string; sentAt: string };
    };
    expect(body.summary).toContain('at 2026-01-10 09:00 CET');
    expect(body.page.summary).toContain('at 2026-01-10 09:00 CET');
    expect(body.reasons).toEqual(['fever 38.9 °C at 2026-01-10T08:00:00Z']); // the contract's string form
    expect(body.page.sentAt).toBe('2026-01-10T08:10:00Z'); // machine-readable
    expect(grade.sms).not.toMatch(ISO_INSTANT); // a grade SMS names no time: the grade, the bed, the link

    // An alert's SMS is its summary: the time in it is local too.
    const alert = staleFeedAlert('TZ1', T0, state, PARIS.site.timeZone);
    const d = pagesForAlert(alert, [], [], NOW, PARIS.paging).deliveries[0]!;
    const sms = (
      JSON.parse(
        publishInput(
          'arn:topic',
          { page: d.page, role: d.role, reason: 'triggered', ackUrl: 'https://crs.example/ack/v1.t' },
          undefined,
          'H4',
          NOW,
          PARIS.site.timeZone,
        ).Message!,
      ) as { sms: string }
    ).sms;
    expect(sms).toContain('since 2026-01-10 09:00 CET');
  });

  it('shows local time in the SpO2 warning and on the acknowledge page', () => {
    let state: PatientState | undefined;
    const alerts: AlertChange[] = [];
    for (const m of [
      enrol('TZ2', -60),
      msg('TZ2', 0, { vitals: { spo2: 88 } }),
      msg('TZ2', 1, { vitals: { spo2: 87 } }),
    ]) {
      const step = reduce(state, m, PARIS, arrivalOf(m));
      state = step.state;
      if (step.kind === 'applied') alerts.push(...step.alerts);
    }
    expect(alerts[0]!.summary).toContain('with no oxygen support documented at 2026-01-10 09:01 CET');

    const { notification: n } = gradeOne(PARIS);
    const html = inlineText(ackFormPage(pageMessage(n).page, 'hematology fellow', 100, PARIS.site.timeZone));
    expect(html).toContain('since 2026-01-10 09:10 CET');
    expect(html).toContain('at 2026-01-10 09:00 CET');
  });

  describe('by the embedded webhook', () => {
    let close: (() => void) | undefined;
    afterEach(() => close?.());

    it('posts the grade change and the page with their summaries in local time', async () => {
      const bodies: Record<string, unknown>[] = [];
      const server = createServer((req: IncomingMessage, res) => {
        let text = '';
        req.on('data', (c: Buffer) => (text += c.toString('utf8')));
        req.on('end', () => {
          bodies.push(JSON.parse(text) as Record<string, unknown>);
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      close = () => server.close();
      const { notification: n } = gradeOne(PARIS);
      const sink = new WebhookSink(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, undefined, () => n);
      const item = (kind: OutboxItem['kind'], id: string, body: unknown): OutboxItem => ({
        seq: 1,
        kind,
        id,
        patientId: 'TZ1',
        body: JSON.stringify(body),
      });
      await sink.deliver(item('notification', n.notificationId, n));
      const page = pageEvent(pageMessage(n), NOW);
      await sink.deliver(item('page', page.sendId, page));
      const [grade, paged] = bodies as [
        { summary: string; reasons: string[] },
        { summary: string; sentAt: string; notification: { summary: string } },
      ];
      expect(grade.summary).toContain('fever 38.9 °C at 2026-01-10 09:00 CET');
      expect(grade.reasons).toEqual(['fever 38.9 °C at 2026-01-10T08:00:00Z']);
      expect(paged.summary).toContain('at 2026-01-10 09:00 CET');
      expect(paged.notification.summary).toContain('at 2026-01-10 09:00 CET');
      expect(paged.sentAt).toBe('2026-01-10T08:10:00Z');
    });
  });
});
