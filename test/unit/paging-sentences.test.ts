// docs/paging.md sentence by sentence, where no other test held a sentence (a deliberate break of its code failed
// none): each case names the sentence it holds.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemoryAuditLog, MemoryPageStore } from '#app/memory.ts';
import { Pager, type PagerDeps } from '#app/pager.ts';
import { DEFAULT_PAGING, type PagingConfig } from '#domain/paging.ts';
import type { PageMessage, PageSender } from '#ports';

const T = Date.parse('2026-12-08T01:00:00Z');
const min = (m: number) => T + m * 60_000;
const secret = randomBytes(32);

class Phone implements PageSender {
  sent: PageMessage[] = [];
  async send(m: PageMessage) {
    this.sent.push(m);
  }
  get log() {
    return this.sent.map((m) => `${m.page.patientId} ${m.page.kind} ${m.role} ${m.page.level}.${m.page.round}`);
  }
}

function stores() {
  const audit = new MemoryAuditLog();
  const pages = new MemoryPageStore(audit);
  const phone = new Phone();
  const pager = (more: Partial<PagerDeps> = {}) =>
    new Pager({
      pages,
      sender: phone,
      audit,
      config: DEFAULT_PAGING,
      ackSecret: secret,
      ackBaseUrl: 'https://crs.example/ack/',
      ...more,
    });
  return { audit, pages, phone, pager };
}

describe('docs/paging.md, Ladders: a deployment that changes the paging settings while pages are open', () => {
  it('"An all-clear of its alert resolves it but is sent to the teams of now only": also of a team the deployed config gives no endpoint (AWS), which the tick would name at every run', async () => {
    const { pages, phone, pager } = stores();
    // The "no data" alert goes to the bedside team; the site then moves it to the ICU and removes the bedside
    // team's endpoints (AWS: CRS_TEAMS_WITHOUT_ENDPOINTS names bedside).
    const alert = { alertId: 'stale-feed|P-9|1', patientId: 'P-9', subject: 'stale-feed' as const, summary: 'NO DATA' };
    await pager().onAlert({ ...alert, cleared: false }, T);
    const moved: PagingConfig = { ...DEFAULT_PAGING, alertTeams: { ...DEFAULT_PAGING.alertTeams, staleFeed: ['icu'] } };
    const after = pager({ config: moved, unreachable: new Set(['bedside']) });
    // Its next level falls due: set aside and named, not published to nobody.
    expect(await after.onTick(min(16))).toEqual({
      setAside: [
        { pageId: 'stale-feed|P-9|1|bedside', reason: 'its team has no endpoint now: nobody would receive it' },
      ],
    });
    // Data resumes: the bedside page is resolved, and the all-clear goes to the team of now.
    await after.onAlert(
      { ...alert, alertId: `${alert.alertId}|cleared`, cleared: true, summary: 'Data resumed' },
      min(17),
    );
    expect(await pages.get('stale-feed|P-9|1|bedside')).toMatchObject({ status: 'resolved' });
    expect(phone.log).toEqual(['P-9 alert bedside nurse 0.0', 'P-9 alert-cleared ICU registrar 0.0']);
    // Nothing is left that nobody can receive: no tick names a page any more (on AWS each named page fails the
    // schedule's run, EscalateErrors, every minute).
    expect(await after.onTick(min(18))).toEqual({ setAside: [] });
  });
});

describe('docs/paging.md, Ladders: a page item that cannot be read', () => {
  it('"A grade change delivered again one of whose own pages cannot be read counts that page as stored: it is not opened again": also when it is its only page', async () => {
    const { pages, phone, pager } = stores();
    const p = pager();
    const icu = {
      notificationId: 'crs|P-1|#3',
      patientId: 'P-1',
      condition: 'crs' as const,
      kind: 'escalation' as const,
      toGrade: 3,
      teams: ['icu' as const],
      summary: 'PROVISIONAL CRS grade 3',
    };
    await p.onNotification(icu, T);
    expect(phone.log).toEqual(['P-1 escalation ICU registrar 0.0']);
    // Its item as an older version or a hand edit left it: no level.
    const { level: _, ...broken } = (await pages.get('crs|P-1|#3|icu'))!;
    await pages.save([broken as never]);
    // The record delivered again (the notifier's retry): handled, nothing opened or sent again, the item left as it is
    // for an operator to mend (the tick names it).
    await p.onNotification(icu, min(1));
    expect(phone.log).toEqual(['P-1 escalation ICU registrar 0.0']);
    expect(await p.onTick(min(2))).toEqual({
      setAside: [{ pageId: 'crs|P-1|#3|icu', reason: 'its stored item cannot be read: level is missing' }],
    });
  });
});

describe('docs/paging.md, On one machine: acknowledge links', () => {
  it('"An expired link\'s refusal is in the patient\'s audit trail (acknowledgement-refused, with the page, the name given and an attemptId of its own, so that each attempt is an entry, two alike to the millisecond too)"', async () => {
    const { audit, phone, pager } = stores();
    const p = pager();
    await p.onNotification(
      {
        notificationId: 'crs|P-1|#2',
        patientId: 'P-1',
        condition: 'crs',
        kind: 'escalation',
        toGrade: 2,
        teams: ['hematology'],
        summary: 'PROVISIONAL CRS grade 2',
      },
      T,
    );
    const token = phone.sent[0]!.ackUrl!.split('/ack/')[1]!;
    const late = T + (DEFAULT_PAGING.ackLinkMinutes + 1) * 60_000;
    // The same link and name, sent twice in one millisecond (a double tap): two attempts, two entries.
    for (let i = 0; i < 2; i++)
      expect(await p.acknowledgeLink(token, 'Dr A', late)).toMatchObject({ ok: false, code: 'link-expired' });
    const refused = audit.events.filter((e) => e.type === 'acknowledgement-refused');
    expect(refused).toHaveLength(2);
    for (const e of refused)
      expect(e).toMatchObject({
        patientId: 'P-1',
        details: { reason: 'expired', pageId: 'crs|P-1|#2|hematology', by: 'Dr A', attemptId: expect.any(String) },
      });
    expect(refused[0]!.details.attemptId).not.toBe(refused[1]!.details.attemptId);
  });
});

describe("docs/paging.md, Ladders: the defaults it names are the code's (shared/domain/paging.ts)", () => {
  const doc = readFileSync(new URL('../../docs/paging.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
  const number = (re: RegExp) => {
    const m = re.exec(doc);
    if (!m) throw new Error(`docs/paging.md no longer says ${re}`);
    return Number(m[1]);
  };

  it('the timeouts, the grade they change at, the link, the stale feed, its group, SpO2, silences, the delivery watch', () => {
    expect({
      severe: number(/`timeoutMinutes\.severe` \((\d+)\)/),
      severeFromGrade: number(/`severeFromGrade` \((\d+)\)/),
      other: number(/`timeoutMinutes\.other` \((\d+)\)/),
      ackLinkMinutes: number(/`ackLinkMinutes` \((\d+);/),
      staleFeedMinutes: number(/`staleFeedMinutes` \((\d+)\)/),
      fromPatients: number(/`fromPatients` (\d+),/),
      windowMinutes: number(/`windowMinutes` (\d+)\)/),
      spo2WarningBelow: number(/`spo2WarningBelow` \((\d+)\)/),
      unsilenceableFromGrade: number(/`unsilenceableFromGrade` \((\d+)\)/),
      deliveryAlertMinutes: number(/`deliveryAlertMinutes` \((\d+):/),
    }).toEqual({
      severe: DEFAULT_PAGING.timeoutMinutes.severe,
      severeFromGrade: DEFAULT_PAGING.severeFromGrade,
      other: DEFAULT_PAGING.timeoutMinutes.other,
      ackLinkMinutes: DEFAULT_PAGING.ackLinkMinutes,
      staleFeedMinutes: DEFAULT_PAGING.staleFeedMinutes,
      fromPatients: DEFAULT_PAGING.staleFeedGroup.fromPatients,
      windowMinutes: DEFAULT_PAGING.staleFeedGroup.windowMinutes,
      spo2WarningBelow: DEFAULT_PAGING.spo2WarningBelow,
      unsilenceableFromGrade: DEFAULT_PAGING.unsilenceableFromGrade,
      deliveryAlertMinutes: DEFAULT_PAGING.deliveryAlertMinutes,
    });
  });

  it('"the number of `loops` (walks of the ladder: 2 by default, radiology 1)", per team', () => {
    const loops = number(/walks of the ladder: (\d+) by default/);
    const radiology = number(/by default, radiology (\d+)\)/);
    expect(Object.fromEntries(Object.entries(DEFAULT_PAGING.policies).map(([team, p]) => [team, p.loops]))).toEqual({
      hematology: loops,
      icu: loops,
      neurology: loops,
      radiology,
      bedside: loops,
    });
  });
});
