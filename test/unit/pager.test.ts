// The pager service over in-memory ports: crash safety, idempotency, acknowledge links, silences, audit.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signAck } from '../../shared/app/ack.ts';
import { MemoryAuditLog, MemoryPageStore } from '../../shared/app/memory.ts';
import { Pager } from '../../shared/app/pager.ts';
import { DEFAULT_PAGING, type PageableNotification } from '../../shared/domain/paging.ts';
import type { PageMessage, PageSender, SecurityEvent } from '../../shared/ports.ts';

const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;
const secret = randomBytes(32);

const grade3: PageableNotification = {
  notificationId: 'crs|P-1|m3',
  patientId: 'P-1',
  condition: 'crs',
  kind: 'escalation',
  toGrade: 3,
  teams: ['hematology', 'icu'],
  summary: 'PROVISIONAL CRS grade 3',
};

class Phone implements PageSender {
  sent: PageMessage[] = [];
  failNext = 0;
  async send(m: PageMessage) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('sender down');
    }
    this.sent.push(m);
  }
  get log() {
    return this.sent.map((m) => `${m.page.team}:${m.role}`);
  }
}

function setup() {
  const pages = new MemoryPageStore();
  const audit = new MemoryAuditLog();
  const phone = new Phone();
  const security: SecurityEvent[] = [];
  const pager = new Pager({ pages, sender: phone, audit, config: DEFAULT_PAGING, ackSecret: secret, ackBaseUrl: 'https://crs.example/ack/', security: { record: async (e) => void security.push(e) } });
  return { pages, audit, phone, pager, security };
}

describe('the pager', () => {
  it('pages each team with a signed acknowledge link', async () => {
    const { phone, pager } = setup();
    await pager.onNotification(grade3, T);
    expect(phone.log).toEqual(['hematology:hematology fellow', 'icu:ICU registrar']);
    expect(phone.sent[0]!.ackUrl).toMatch(/^https:\/\/crs\.example\/ack\/v1\./);
  });

  it('opens the pages of a notification once, however often it is delivered', async () => {
    const { phone, pager } = setup();
    await pager.onNotification(grade3, T);
    await pager.onNotification(grade3, min(1));
    expect(phone.log).toHaveLength(2);
  });

  it('a send cut short (crash or outage) is made again by the next tick, once', async () => {
    const { phone, pager, pages } = setup();
    phone.failNext = 1;
    await expect(pager.onNotification(grade3, T)).rejects.toThrow('sender down');
    expect(phone.log).toEqual([]);
    expect((await pages.get('crs|P-1|m3|hematology'))!.delivered).toBe(false);
    await pager.onTick(min(1));
    await pager.onTick(min(2));
    expect(phone.log).toEqual(['hematology:hematology fellow', 'icu:ICU registrar']);
  });

  it('acknowledges through the link and stops that ladder', async () => {
    const { phone, pager, audit } = setup();
    await pager.onNotification(grade3, T);
    const token = phone.sent[0]!.ackUrl!.split('/').at(-1)!;
    const r = await pager.acknowledgeLink(token, 'Dr A', min(2));
    expect(r).toMatchObject({ ok: true, changed: true, page: { status: 'acknowledged', ack: { by: 'Dr A (hematology fellow)', via: 'link' } } });
    await pager.onTick(min(30));
    expect(phone.log.filter((x) => x.startsWith('hematology'))).toEqual(['hematology:hematology fellow']);
    expect(audit.events.find((e) => e.type === 'acknowledgement')).toMatchObject({ patientId: 'P-1', details: { by: 'Dr A (hematology fellow)', via: 'link' } });
  });

  it.each([
    ['forged', () => signAck(randomBytes(32), { pageId: 'crs|P-1|m3|hematology', role: 'x', expiresAt: min(60) }), min(1)],
    ['expired', () => signAck(secret, { pageId: 'crs|P-1|m3|hematology', role: 'x', expiresAt: min(5) }), min(6)],
    ['malformed', () => 'v1.garbage', min(1)],
  ])('refuses a %s link: an expired one in the patient\'s trail, the others in the security log', async (reason, token, at) => {
    const { pager, pages, audit, security } = setup();
    await pager.onNotification(grade3, T);
    expect(await pager.acknowledgeLink(token(), 'Mallory', at, '203.0.113.9')).toEqual({ ok: false, reason: `acknowledge link ${reason}` });
    expect((await pages.get('crs|P-1|m3|hematology'))!.status).toBe('open');
    const refusal = audit.events.find((e) => e.type === 'acknowledgement-refused');
    if (reason === 'expired') {
      expect(refusal).toMatchObject({ patientId: 'P-1', details: { reason, by: 'Mallory' } });
      expect(security).toEqual([]);
    } else {
      expect(refusal).toBeUndefined();
      expect(security).toEqual([expect.objectContaining({ event: 'acknowledge-link-refused', reason, client: '203.0.113.9', claimed: expect.objectContaining({ by: 'Mallory' }) })]);
    }
  });

  it('a silence holds a low grade until it ends; ending it early releases the page', async () => {
    const { phone, pager } = setup();
    await pager.silence({ silenceId: 's1', scope: { patientId: 'P-1' }, from: T, until: min(60), createdBy: 'Nurse B', reason: 'transport' }, T);
    await pager.onNotification({ ...grade3, notificationId: 'crs|P-1|m2', toGrade: 2, teams: ['hematology'] }, min(1));
    await pager.onTick(min(10));
    expect(phone.log).toEqual([]);
    await pager.endSilence('s1', 'Nurse B', min(12));
    expect(phone.log).toEqual(['hematology:hematology fellow']);
  });

  it('a silence never hides grade 4', async () => {
    const { phone, pager } = setup();
    await pager.silence({ silenceId: 's1', scope: { team: 'icu' }, from: T, until: min(60), createdBy: 'Dr C', reason: 'drill' }, T);
    await pager.onNotification({ ...grade3, toGrade: 4 }, min(1));
    expect(phone.log).toEqual(['hematology:hematology fellow', 'icu:ICU registrar']);
  });

  it('audits every step of the story, in order', async () => {
    const { pager, audit } = setup();
    await pager.onNotification({ ...grade3, teams: ['icu'] }, T);
    await pager.onTick(min(5));
    await pager.acknowledge('crs|P-1|m3|icu', 'Dr D', 'board', min(6));
    expect(audit.events.map((e) => `${e.at.slice(11, 16)} ${e.type}`)).toEqual([
      '10:00 page',
      '10:00 delivery',
      '10:05 escalation',
      '10:05 delivery',
      '10:06 acknowledgement',
    ]);
  });
});
