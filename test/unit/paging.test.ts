// The page lifecycle and escalation ladders (shared/domain/paging.ts), in simulated time.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PAGING,
  acknowledge,
  feedStatus,
  heldText,
  nextDue,
  pagesForAlert,
  pagesForNotification,
  sendReason,
  tick,
  type Page,
  type Silence,
  type Transition,
  wasSent,
} from '#domain/paging.ts';
import type { PatientState } from '#domain/state.ts';
import { formatSiteTime } from '#domain/time.ts';

const T = Date.parse('2026-11-26T10:00:00Z');
const min = (m: number) => T + m * 60_000;
/** Nurse B's silence s1 of patient P-1 from T for 30 minutes (transport to MRI), with these fields changed. */
const silenceOf = (o: Partial<Silence> = {}): Silence => ({
  silenceId: 's1',
  scope: { patientId: 'P-1' },
  from: T,
  until: min(30),
  createdBy: 'Nurse B',
  reason: 'transport to MRI',
  ...o,
});
const cfg = DEFAULT_PAGING;

const notification = (
  id: string,
  toGrade: number,
  kind: 'escalation' | 'de-escalation' = 'escalation',
  teams = ['hematology', 'icu'] as ('hematology' | 'icu')[],
) => ({
  notificationId: id,
  patientId: 'P-1',
  condition: 'crs' as const,
  kind,
  toGrade,
  teams,
  summary: `CRS grade ${toGrade}`,
});

/** A tiny page store: apply transitions, keep the latest version of each page. */
class Store {
  pages = new Map<string, Page>();
  sent: string[] = [];
  /** Stores the pages and makes their deliveries (marked delivered, as the pager does once it has sent them). */
  apply(t: Transition) {
    for (const p of t.pages) this.pages.set(p.pageId, p);
    for (const d of t.deliveries) {
      this.sent.push(`${d.reason} ${d.page.team} ${d.role}`);
      this.pages.set(d.page.pageId, { ...d.page, delivered: true });
    }
    return t;
  }
  get all() {
    return [...this.pages.values()];
  }
  status(team: string) {
    return this.all.filter((p) => p.team === team).map((p) => `${p.notificationId}:${p.status}`);
  }
}

describe('escalation ladders', () => {
  it('climbs level by level when nobody answers, loops, then is exhausted', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg));
    for (let m = 1; m <= 100; m++) s.apply(tick(s.all, [], min(m), cfg));
    // grade 2: 15 minutes a level; 3 levels x 2 loops; exhausted when the 6th level times out (90 min).
    expect(s.sent).toEqual([
      'triggered hematology hematology fellow',
      'escalated hematology hematology attending',
      'escalated hematology hematology consultant',
      'escalated hematology hematology fellow',
      'escalated hematology hematology attending',
      'escalated hematology hematology consultant',
    ]);
    const page = s.all[0]!;
    expect(page.status).toBe('exhausted');
    expect(page.closedAt).toBe(min(90));
    // A late answer is still recorded: someone owns the page from then on.
    expect(acknowledge(page, { by: 'Dr Late', at: min(95), via: 'link' })).toMatchObject({
      ok: true,
      changed: true,
      page: { status: 'acknowledged' },
    });
  });

  it('moves every 5 minutes from grade 3, every 15 below', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 3, 'escalation', ['icu']), [], [], T, cfg));
    s.apply(tick(s.all, [], min(4), cfg));
    expect(s.sent).toHaveLength(1);
    s.apply(tick(s.all, [], min(5), cfg));
    expect(s.sent.at(-1)).toBe('escalated icu ICU consultant');
  });

  it('stops at the first acknowledgement', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 3), [], [], T, cfg));
    s.apply(tick(s.all, [], min(5), cfg));
    const hem = s.all.find((p) => p.team === 'hematology')!;
    const r = acknowledge(hem, { by: 'Dr A', at: min(6), via: 'link' });
    expect(r).toMatchObject({ ok: true, changed: true });
    s.apply({ pages: [(r as { page: Page }).page], deliveries: [] });
    for (let m = 7; m <= 60; m++) s.apply(tick(s.all, [], min(m), cfg));
    expect(s.sent.filter((x) => x.includes('hematology'))).toEqual([
      'triggered hematology hematology fellow',
      'escalated hematology hematology attending',
    ]);
    expect(s.pages.get('n1|hematology')).toMatchObject({
      status: 'acknowledged',
      ack: { by: 'Dr A', via: 'link' },
      dueAt: null,
    });
    // The ICU page was not acknowledged: its ladder went on.
    expect(s.pages.get('n1|icu')!.status).toBe('exhausted');
  });

  it('acknowledging twice keeps the first; a closed page cannot be acknowledged', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg));
    const first = acknowledge(s.all[0]!, { by: 'A', at: min(1), via: 'board' }) as { page: Page };
    expect(acknowledge(first.page, { by: 'B', at: min(2), via: 'link' })).toEqual({
      ok: true,
      page: first.page,
      changed: false,
    });
    const superseded = pagesForNotification(
      notification('n2', 3, 'escalation', ['hematology']),
      s.all,
      [],
      min(3),
      cfg,
    );
    s.apply(superseded);
    expect(acknowledge(s.pages.get('n2|hematology')!, { by: 'C', at: min(4), via: 'api' })).toMatchObject({ ok: true });
    // The closed one: n1, superseded by n2 (the test only acknowledged the open one before).
    expect(s.pages.get('n1|hematology')!.status).toBe('superseded');
    expect(acknowledge(s.pages.get('n1|hematology')!, { by: 'C', at: min(4), via: 'api' })).toMatchObject({
      ok: false,
      code: 'not-open',
    });
  });

  it('a higher grade re-pages at once even if the last page was acknowledged', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 1, 'escalation', ['hematology']), [], [], T, cfg));
    s.apply({
      pages: [(acknowledge(s.all[0]!, { by: 'A', at: min(1), via: 'board' }) as { page: Page }).page],
      deliveries: [],
    });
    s.apply(pagesForNotification(notification('n2', 3), s.all, [], min(2), cfg));
    expect(s.sent).toEqual([
      'triggered hematology hematology fellow',
      'triggered hematology hematology fellow',
      'triggered icu ICU registrar',
    ]);
    expect(s.status('hematology')).toEqual(['n1:acknowledged', 'n2:open']);
  });

  it("a superseded page names its team's page of the newer grade; no other team's, and nothing when resolved", () => {
    // Its acknowledge link then says which page to answer (until 2026-12-06 only "a newer page replaced it").
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 1, 'escalation', ['hematology']), [], [], T, cfg));
    s.apply(pagesForNotification(notification('n2', 2, 'escalation', ['icu']), s.all, [], min(1), cfg));
    // n2 does not page hematology: n1's hematology page is superseded, with no page of its team to name.
    expect(s.pages.get('n1|hematology')).toMatchObject({ status: 'superseded' });
    expect(s.pages.get('n1|hematology')!.supersededBy).toBeUndefined();
    // It records where the newer grade went instead (2026-12-06): its link says so, not "answer that one".
    expect(s.pages.get('n1|hematology')!.supersededTeams).toEqual(['icu']);
    s.apply(pagesForNotification(notification('n3', 3), s.all, [], min(2), cfg));
    expect(s.pages.get('n2|icu')).toMatchObject({ status: 'superseded', supersededBy: 'n3|icu' });
    expect(s.pages.get('n2|icu')!.supersededTeams).toBeUndefined();
    s.apply(pagesForNotification(notification('n4', 1, 'de-escalation'), s.all, [], min(3), cfg));
    expect(s.pages.get('n3|icu')).toMatchObject({ status: 'resolved' });
    expect(s.pages.get('n3|icu')!.supersededBy).toBeUndefined();
    expect(s.pages.get('n3|icu')!.supersededTeams).toBeUndefined();
  });

  it('a page replaced before its first send went out (informational now) names the newer page too', () => {
    const s = new Store();
    const first = pagesForNotification(notification('n1', 1, 'escalation', ['hematology']), [], [], T, cfg);
    s.pages.set('n1|hematology', first.pages[0]!); // stored, never sent (its transport was down)
    s.apply(pagesForNotification(notification('n2', 3), s.all, [], min(1), cfg));
    expect(s.pages.get('n1|hematology')).toMatchObject({ status: 'info', supersededBy: 'n2|hematology' });
  });

  it('a newer escalation supersedes the open page; a de-escalation resolves it and cancels its ladder', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg));
    s.apply(pagesForNotification(notification('n2', 3), s.all, [], min(1), cfg));
    expect(s.status('hematology')).toEqual(['n1:superseded', 'n2:open']);
    s.apply(pagesForNotification(notification('n3', 1, 'de-escalation'), s.all, [], min(2), cfg));
    expect(s.status('hematology')).toEqual(['n1:superseded', 'n2:resolved', 'n3:info']);
    const sentBefore = s.sent.length;
    for (let m = 3; m <= 120; m++) s.apply(tick(s.all, [], min(m), cfg));
    expect(s.sent).toHaveLength(sentBefore); // nothing pending any more
    expect(nextDue(s.all, [], min(120), cfg)).toBeNull();
  });

  it('pages of other patients and conditions are left alone', () => {
    const s = new Store();
    s.apply(
      pagesForNotification(
        { ...notification('n1', 2, 'escalation', ['hematology']), patientId: 'P-2' },
        [],
        [],
        T,
        cfg,
      ),
    );
    s.apply(
      pagesForNotification(
        { ...notification('n2', 2, 'escalation', ['hematology']), condition: 'icans' },
        s.all,
        [],
        T,
        cfg,
      ),
    );
    s.apply(pagesForNotification(notification('n3', 0, 'de-escalation', ['hematology']), s.all, [], min(1), cfg));
    expect(s.all.map((p) => `${p.notificationId}:${p.status}`)).toEqual(['n1:open', 'n2:open', 'n3:info']);
  });
});

describe('a page replaced before it was ever sent (conservation)', () => {
  // The pure Store above marks every delivery made; here the transport was down and nothing was marked.
  const unsent = (t: Transition) => t.pages;

  it('is still sent once, as information, when a higher grade supersedes it or a lower one resolves it', () => {
    const first = unsent(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg));
    const second = pagesForNotification(notification('n2', 3, 'escalation', ['hematology']), first, [], min(1), cfg);
    const [replaced, created] = second.pages;
    expect(replaced).toMatchObject({
      pageId: 'n1|hematology',
      status: 'info',
      delivered: false,
      dueAt: null,
      closedAt: min(1),
      grade: 2,
    });
    expect(created).toMatchObject({ pageId: 'n2|hematology', status: 'open' });
    expect(acknowledge(replaced!, { by: 'A', at: min(2), via: 'board' })).toMatchObject({ ok: false });
    const down = pagesForNotification(
      notification('n3', 1, 'de-escalation', ['hematology']),
      [created!],
      [],
      min(2),
      cfg,
    );
    expect(down.pages[0]).toMatchObject({ pageId: 'n2|hematology', status: 'info', delivered: false });
    // Nothing more to do for it: no ladder, no due time.
    expect(nextDue([replaced!, down.pages[0]!], [], min(60), cfg)).toBeNull();
  });

  it('is closed as before once sent, when a silence held it, or when only a later level of its ladder is unsent', () => {
    const sent = {
      ...unsent(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg))[0]!,
      delivered: true,
    };
    expect(
      pagesForNotification(notification('n2', 3, 'escalation', ['hematology']), [sent], [], min(1), cfg).pages[0]!
        .status,
    ).toBe('superseded');
    const silence = silenceOf();
    const held = unsent(
      pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [silence], T, cfg),
    )[0]!;
    expect(held.heldBy).toBe('s1');
    expect(
      pagesForNotification(notification('n2', 3, 'escalation', ['hematology']), [held], [silence], min(1), cfg)
        .pages[0]!.status,
    ).toBe('superseded');
    const escalating = { ...sent, level: 1, delivered: false };
    expect(
      pagesForNotification(notification('n2', 3, 'escalation', ['hematology']), [escalating], [], min(16), cfg)
        .pages[0]!.status,
    ).toBe('superseded');
    // Its first level again, on the ladder's next walk, unsent: sent before, so not owed (as information it went
    // to that role again after the newer grade; mutation run of 2026-12-06).
    const nextWalk = { ...sent, level: 0, round: 1, delivered: false };
    expect(
      pagesForNotification(notification('n2', 3, 'escalation', ['hematology']), [nextWalk], [], min(46), cfg).pages[0]!
        .status,
    ).toBe('superseded');
  });

  it('an alert never sent is still sent once when its all-clear comes first', () => {
    const stale = {
      alertId: 'stale-feed|P-1|1',
      patientId: 'P-1',
      subject: 'stale-feed' as const,
      cleared: false,
      summary: 'NO DATA',
    };
    const raised = unsent(pagesForAlert(stale, [], [], T, cfg));
    const cleared = pagesForAlert(
      { ...stale, alertId: 'stale-feed|P-1|2', cleared: true, summary: 'data again' },
      raised,
      [],
      min(1),
      cfg,
    );
    expect(cleared.pages.map((p) => `${p.kind}:${p.status}:${p.delivered}`)).toEqual([
      'alert:info:false',
      'alert-cleared:info:false',
    ]);
  });
});

describe('silences', () => {
  const transport = silenceOf();

  it('hold low grades for the silence, then release them if still open', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    expect(s.sent).toEqual([]);
    expect(s.all[0]).toMatchObject({ status: 'open', heldBy: 's1', dueAt: null });
    expect(nextDue(s.all, [transport], min(1), cfg)).toBe(min(30));
    s.apply(tick(s.all, [transport], min(29), cfg));
    expect(s.sent).toEqual([]);
    s.apply(tick(s.all, [transport], min(30), cfg));
    expect(s.sent).toEqual(['released hematology hematology fellow']);
    expect(s.all[0]).toMatchObject({ heldBy: undefined, dueAt: min(45), releasedAt: min(30) });
    expect(sendReason(s.all[0]!)).toBe('released');
  });

  it('keep when the hold began, through the release, for what the send and its link say (2026-12-07)', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    expect(s.all[0]).toMatchObject({ heldBy: 's1', heldAt: min(1) });
    expect(heldText(s.all[0]!, 'UTC')).toBeUndefined(); // held still: not sent
    s.apply(tick(s.all, [transport], min(30), cfg));
    expect(s.all[0]).toMatchObject({ heldAt: min(1), releasedAt: min(30) });
    expect(heldText(s.all[0]!, 'Europe/Paris')).toBe(
      `Held by a silence from ${formatSiteTime(min(1), 'Europe/Paris')}, sent ${formatSiteTime(min(30), 'Europe/Paris')} when it ended: the change it is about may be older than this page.`,
    );
    // Held again at a later step (a new silence): from then, and the earlier release no longer said.
    const later = silenceOf({ silenceId: 's2', from: min(40), until: min(90) });
    s.apply(tick(s.all, [later], min(45), cfg));
    expect(s.all[0]).toMatchObject({ heldBy: 's2', heldAt: min(45), releasedAt: undefined });
    s.apply(tick(s.all, [later], min(90), cfg));
    expect(s.all[0]).toMatchObject({ heldAt: min(45), releasedAt: min(90) });
    // The ladder moves on: neither is said of the next level's send.
    s.apply(tick(s.all, [], min(90) + 15 * 60_000, cfg));
    expect(s.all[0]).toMatchObject({ level: 1, heldAt: undefined, releasedAt: undefined });
  });

  it('keep when the hold began when another silence takes the hold over (pinned by a mutation run, 2026-12-07)', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    const ward = silenceOf({ silenceId: 's2', from: min(20), until: min(60) });
    s.apply(tick(s.all, [transport, ward], min(30), cfg));
    expect(s.all[0]).toMatchObject({ heldBy: 's2', heldAt: min(1) });
    s.apply(tick(s.all, [ward], min(60), cfg));
    expect(s.all[0]).toMatchObject({ heldAt: min(1), releasedAt: min(60) });
  });

  it('a released page says so until its ladder moves on: the next level is an escalation again', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    expect(sendReason(s.all[0]!)).toBe('triggered'); // held before its first send
    s.apply(tick(s.all, [transport], min(30), cfg));
    expect(sendReason(s.all[0]!)).toBe('released');
    s.apply(tick(s.all, [transport], min(45), cfg)); // nobody acknowledged: the next level
    expect(s.sent.at(-1)).toBe('escalated hematology hematology attending');
    expect(s.all[0]).toMatchObject({ level: 1 });
    expect(s.all[0]!.releasedAt).toBeUndefined();
    expect(sendReason(s.all[0]!)).toBe('escalated');
  });

  it('release a held page when its silence stops holding: at its end, or when someone ended it, whichever is first', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    expect(nextDue(s.all, [{ ...transport, endedAt: min(10) }], min(1), cfg)).toBe(min(10));
    expect(nextDue(s.all, [{ ...transport, endedAt: min(45) }], min(1), cfg)).toBe(min(30)); // ended after it ran out
    expect(nextDue(s.all, [], min(2), cfg)).toBe(min(2)); // its silence unknown: the next tick releases it
    s.apply(tick(s.all, [], min(2), cfg));
    expect(s.sent).toEqual(['released hematology hematology fellow']);
  });

  it('never hide a grade 4 page', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 4), [], [transport], min(1), cfg));
    expect(s.sent).toEqual(['triggered hematology hematology fellow', 'triggered icu ICU registrar']);
  });

  it('can be scoped to a team, and ended early', () => {
    const icuBusy: Silence = {
      silenceId: 's2',
      scope: { team: 'icu' },
      from: T,
      until: min(60),
      createdBy: 'Dr C',
      reason: 'drill',
    };
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 3), [], [icuBusy], min(1), cfg));
    expect(s.sent).toEqual(['triggered hematology hematology fellow']);
    const ended = { ...icuBusy, endedAt: min(3), endedBy: 'Dr C' };
    s.apply(tick(s.all, [ended], min(3), cfg));
    expect(s.sent.at(-1)).toBe('released icu ICU registrar');
  });

  // Found by test/unit/replay-vs-serve-paging.test.ts and silences-agree.test.ts: a patient's silence and its
  // team's silence over one page; the page named whichever its store listed first (SQLite orders by the server's
  // random ids, DynamoDB by id), so replay, crs serve and AWS wrote different trails and boards.
  it('when several hold a page, it is held by the one that holds it longest, then a patient silence, whatever their order', () => {
    const team: Silence = { ...transport, silenceId: 'a-team', scope: { team: 'hematology' } };
    const longer: Silence = { ...transport, silenceId: 'z-longer', until: min(45) };
    const held = (silences: Silence[]) =>
      pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], silences, min(1), cfg).pages[0]!
        .heldBy;
    expect(held([team, transport])).toBe('s1');
    expect(held([transport, team])).toBe('s1');
    expect(held([transport, longer, team])).toBe('z-longer');
    expect(held([longer, team, transport])).toBe('z-longer');
    // Pinned by a mutation run: of two that end together, the earlier started, then the smaller id.
    const earlier: Silence = { ...transport, silenceId: 'z-earlier', from: min(-10) };
    expect(held([transport, earlier])).toBe('z-earlier');
    expect(held([{ ...transport, silenceId: 's2' }, transport])).toBe('s1');
  });

  // Pinned by a mutation run: a held informational page was left unsent, so every store kept it in its set of
  // pages to send (every tick read it back, forever), though it is never to be sent.
  it('keep a fall in grade made during a silence as settled: recorded, never sent, not owed', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 1, 'de-escalation', ['hematology']), [], [transport], min(1), cfg));
    expect(s.sent).toEqual([]);
    expect(s.all[0]).toMatchObject({ status: 'info', heldBy: 's1', delivered: true, dueAt: null });
  });

  it('do not start before their time', () => {
    const later: Silence = { ...transport, from: min(10) };
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [later], min(1), cfg));
    expect(s.sent).toHaveLength(1);
  });
});

describe('alerts', () => {
  it('a stale feed alerts the bedside team and its all-clear resolves the open alert', () => {
    const s = new Store();
    s.apply(
      pagesForAlert(
        { alertId: 'stale|P-1|1', patientId: 'P-1', subject: 'stale-feed', cleared: false, summary: 'no data' },
        [],
        [],
        T,
        cfg,
      ),
    );
    expect(s.sent).toEqual(['triggered bedside bedside nurse']);
    s.apply(
      pagesForAlert(
        {
          alertId: 'stale|P-1|1:clear',
          patientId: 'P-1',
          subject: 'stale-feed',
          cleared: true,
          summary: 'data resumed',
        },
        s.all,
        [],
        min(3),
        cfg,
      ),
    );
    expect(s.all.map((p) => `${p.kind}:${p.status}`)).toEqual(['alert:resolved', 'alert-cleared:info']);
    // The all-clear is sent once (docs/paging.md: all-clears are info pages, sent once), to the team the alert paged.
    expect(s.sent).toEqual(['triggered bedside bedside nurse', 'triggered bedside bedside nurse']);
    expect(s.all.map((p) => p.delivered)).toEqual([true, true]);
    // Only a stale-feed alert: the patient's low-SpO2 alert, open, is left open by the stale feed's all-clear.
    const spo2 = pagesForAlert(
      { alertId: 'spo2|P-1|1', patientId: 'P-1', subject: 'spo2', cleared: false, summary: 'low SpO2' },
      [],
      [],
      T,
      cfg,
    ).pages;
    const clear = pagesForAlert(
      { alertId: 'stale|P-1|2:clear', patientId: 'P-1', subject: 'stale-feed', cleared: true, summary: 'data resumed' },
      spo2,
      [],
      min(3),
      cfg,
    );
    expect(clear.pages.map((p) => `${p.notificationId}:${p.status}`)).toEqual(['stale|P-1|2:clear:info']);
  });

  // The board says a technical alert's sends are past the retention when a page of it was sent and none of its sends
  // is left (board-api.ts sweptBy, 2026-12-07): a page never sent must not read so.
  it('wasSent: a page sent, not an all-clear a silence held (marked delivered, never sent) nor a held alert', () => {
    const s = new Store();
    const alert = { alertId: 'stale|P-1|1', patientId: 'P-1', subject: 'stale-feed' as const, summary: 'no data' };
    s.apply(pagesForAlert({ ...alert, cleared: false }, [], [], T, cfg));
    expect(s.all.map(wasSent)).toEqual([true]);
    const held = pagesForAlert(
      { ...alert, alertId: 'stale|P-1|1:clear', cleared: true, summary: 'data resumed' },
      s.all,
      [silenceOf({ from: min(2), until: min(60) })],
      min(3),
      cfg,
    );
    const clear = held.pages.find((p) => p.kind === 'alert-cleared')!;
    expect([clear.status, clear.delivered, held.deliveries.length]).toEqual(['info', true, 0]);
    expect(wasSent(clear)).toBe(false);
    const open = pagesForAlert({ ...alert, alertId: 'stale|P-1|2', cleared: false }, [], [silenceOf()], min(1), cfg);
    expect(open.pages.map((p) => [p.status, wasSent(p)])).toEqual([['open', false]]);
  });

  // Pinned by a mutation run (2026-12-07): any page a silence holds read as never sent, as a held all-clear does.
  it('wasSent: an alert sent, then held by a silence at its escalation, was sent', () => {
    const s = new Store();
    const alert = { alertId: 'stale|P-1|1', patientId: 'P-1', subject: 'stale-feed' as const, summary: 'no data' };
    s.apply(pagesForAlert({ ...alert, cleared: false }, [], [], T, cfg));
    const due = s.all[0]!.dueAt!;
    const held = tick(s.all, [silenceOf({ from: due - 1, until: due + min(30) - T })], due, cfg);
    expect(held.pages.map((p) => [p.status, p.heldBy, p.delivered, wasSent(p)])).toEqual([['open', 's1', true, true]]);
  });

  // Pinned by a mutation run: an all-clear that names the alert it answers (a ward's) closes that alert's pages
  // only; another alert of the same ward, still without data, keeps paging.
  it("an all-clear that names its alert resolves that alert's pages only", () => {
    const s = new Store();
    const raise = (alertId: string, at: number) =>
      s.apply(
        pagesForAlert(
          { alertId, patientId: 'ward A', subject: 'stale-feed', cleared: false, summary: 'no data' },
          s.all,
          [],
          at,
          cfg,
        ),
      );
    raise('stale-feed|ward A|1', T);
    raise('stale-feed|ward A|2', min(20));
    s.apply(
      pagesForAlert(
        {
          alertId: 'stale-feed|ward A|1|cleared',
          patientId: 'ward A',
          subject: 'stale-feed',
          cleared: true,
          summary: 'data resumed',
          resolves: 'stale-feed|ward A|1',
        },
        s.all,
        [],
        min(30),
        cfg,
      ),
    );
    expect(s.status('bedside')).toEqual([
      'stale-feed|ward A|1:resolved',
      'stale-feed|ward A|2:open',
      'stale-feed|ward A|1|cleared:info',
    ]);
  });
});

// Pinned by a mutation run: when a monitor feed counts as quiet (the "no data" alert's clock).
describe('feed status', () => {
  /** Enrolled at minute 0 (its ward), its bed set at minute 2; the monitor last spoke at `monitorAt` (none: never). */
  const state = (monitorAt?: number) =>
    ({
      enrolment: { ward: { v: 'A', t: min(0) }, bed: { v: '3', t: min(2) } },
      ...(monitorAt === undefined ? {} : { lastMonitorAt: min(monitorAt) }),
    }) as unknown as PatientState;

  it('is quiet from staleFeedMinutes after the last monitor data, to the millisecond', () => {
    expect(feedStatus(state(5), min(20) - 1, cfg)).toEqual({ stale: false, since: min(5) });
    expect(feedStatus(state(5), min(20), cfg)).toEqual({ stale: true, since: min(5) });
  });

  it('counts from enrolment (its first field) when no monitor has spoken, and is undefined for a patient not enrolled', () => {
    expect(feedStatus(state(), min(15), cfg)).toEqual({ stale: true, since: min(0) });
    expect(feedStatus({ enrolment: {} } as unknown as PatientState, min(15), cfg)).toBeUndefined();
  });
});

// Pinned by a mutation run: what a closed page keeps.
describe('closed pages', () => {
  it('a held page that a newer grade replaces is no longer held', () => {
    const transport = silenceOf({ reason: 'MRI' });
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [transport], min(1), cfg));
    const t = pagesForNotification(
      notification('n2', 4, 'escalation', ['hematology']),
      s.all,
      [transport],
      min(2),
      cfg,
    );
    expect(t.pages[0]).toMatchObject({ pageId: 'n1|hematology', status: 'superseded', heldBy: undefined });
  });

  it('an acknowledged page is closed when it was acknowledged', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 3, 'escalation', ['icu']), [], [], T, cfg));
    const r = acknowledge(s.all[0]!, { by: 'Dr D', at: min(3), via: 'board' });
    expect(r.ok && r.page).toMatchObject({ status: 'acknowledged', closedAt: min(3), dueAt: null });
  });
});

// Pinned by a mutation run.
describe('held steps and all-clears', () => {
  it('a step held by a silence that began after the page has no due time until the silence ends', () => {
    const s = new Store();
    s.apply(pagesForNotification(notification('n1', 2, 'escalation', ['hematology']), [], [], T, cfg));
    const mri = silenceOf({ from: min(5), until: min(60), reason: 'MRI' });
    s.apply(tick(s.all, [mri], min(15), cfg));
    expect(s.all[0]).toMatchObject({ status: 'open', level: 0, heldBy: 's1', dueAt: null });
  });

  it("a patient's all-clear leaves another patient's open alert alone", () => {
    const s = new Store();
    for (const patientId of ['P-1', 'P-2'])
      s.apply(
        pagesForAlert(
          {
            alertId: `stale-feed|${patientId}|1`,
            patientId,
            subject: 'stale-feed',
            cleared: false,
            summary: 'no data',
          },
          s.all,
          [],
          T,
          cfg,
        ),
      );
    s.apply(
      pagesForAlert(
        {
          alertId: 'stale-feed|P-1|1|cleared',
          patientId: 'P-1',
          subject: 'stale-feed',
          cleared: true,
          summary: 'data resumed',
        },
        s.all,
        [],
        min(3),
        cfg,
      ),
    );
    expect(s.status('bedside')).toEqual([
      'stale-feed|P-1|1:resolved',
      'stale-feed|P-2|1:open',
      'stale-feed|P-1|1|cleared:info',
    ]);
  });
});
