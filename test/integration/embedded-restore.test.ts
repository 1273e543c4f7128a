// Disaster recovery on one machine: `crs backup` taken while `crs serve` runs, more happens (grade changes paged, a
// page acknowledged, a patient first seen), the server is lost, and `crs serve --data BACKUP` is the restore. The
// gateways then send again what they sent since the backup (the only copy of it), live data coming in meanwhile.
// What a receiver must get: every grade change the restored server pages, under an id the lost server never sent (a
// webhook receiver drops a repeat by x-crs-event-id: docs/embedded.md); and the operator told that the server runs
// on a backup, of which time, and what to do. Until 2026-12-07 each patient's sequence (the ids' source) went back
// to the backup's, so the restored server's CRS 3 went out as `crs|P1|#3`, the id the lost server had given CRS 2,
// and nothing said it ran on a backup. What the backup lacks (an acknowledgement, a silence) pages again, never fewer.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { changeSeq } from '#domain/page.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { formatSiteTime } from '#domain/time.ts';
import { CRS_MESSAGE, enrol, liveReading, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';
import {
  CRS_BIN,
  idle,
  pageLines,
  pagingConfig,
  post,
  spawnServe,
  stop,
  type ServeProcess,
} from './embedded-support.ts';

const root = mkdtempSync(join(tmpdir(), 'crs-restore-it-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function accept(s: ServeProcess, ...messages: DeviceMessage[]): Promise<void> {
  for (const m of messages) expect((await post(s.url, m)).status).toBe(202);
  await idle(s);
}

/** The grade changes (standard output, as crs replay prints them) and page sends (--page-lines) of a server. */
function sent(s: ServeProcess) {
  const lines = s.lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    changes: lines.filter((l) => l.type === 'notification').map((l) => String(l.notificationId)),
    pages: pageLines(s).map((p) => ({ sendId: p.sendId, summary: p.summary, ackUrl: p.ackUrl })),
  };
}

describe('crs serve restored from a crs backup', () => {
  it('pages what the gateways send again under ids the lost server never sent, and says it runs on a backup', async () => {
    // The course is from January: no "no data" alert in the way.
    const cfg = pagingConfig(root, 'cfg', { staleFeedMinutes: LONGEST_SETTING_MINUTES });
    const args = ['--config', cfg, '--page-lines'];
    const data = join(root, 'data');
    const lost = await spawnServe(data, args);
    await accept(lost, enrol('P1', 0), msg('P1', 10, CRS_MESSAGE[1]!));
    const backup = join(root, 'backup');
    const beforeBackup = Date.now();
    const r = spawnSync(process.execPath, [CRS_BIN, 'backup', '--data', data, '--to', backup], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const afterBackup = Date.now();
    const atBackup = sent(lost);

    // After the backup: P1 climbs to CRS 2 and the hematology fellow acknowledges; P2 is seen first, at CRS 1.
    const p1 = msg('P1', 20, CRS_MESSAGE[2]!);
    const p2 = [enrol('P2', 0), msg('P2', 10, CRS_MESSAGE[1]!)];
    await accept(lost, p1, ...p2);
    const crs2 = sent(lost).pages.find((p) => p.summary.includes('CRS grade 2'));
    expect(crs2).toBeDefined();
    const ack = await fetch(`${lost.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: crs2!.ackUrl!.split('/ack/')[1], by: 'Dr Lost' }),
    });
    expect(ack.status).toBe(200);
    const byLost = sent(lost);
    expect(await stop(lost)).toBe(0);

    // The restore: the server started on the backup says so, with the backup's time and what to do.
    const restored = await spawnServe(backup, args, { CRS_TEST_CLOCK: '1' });
    const said = await until(
      () => restored.stderr().match(/a backup taken at (\S+) \(crs backup\)/),
      'the restored server says it runs on a backup',
    );
    const takenAt = Date.parse(said[1]!);
    expect(takenAt).toBeGreaterThanOrEqual(beforeBackup);
    expect(takenAt).toBeLessThanOrEqual(afterBackup);
    expect(restored.stderr()).toContain(`have every gateway send again what it sent since ${said[1]}`);
    // And on the board's banner (the delivery watch), for the operator who did not read standard error.
    const banner = await fetch(`${restored.url}/api/outbox`, {
      headers: { authorization: `Bearer ${restored.boardKey}` },
    });
    const alerts = ((await banner.json()) as { alerts: { key: string; text: string }[] }).alerts;
    expect(alerts.find((a) => a.key === 'restored')?.text).toContain(`a backup taken at ${said[1]}`);

    // Live data first (P1 now at CRS 3), then the gateway's resend of everything since the backup.
    await accept(restored, msg('P1', 30, CRS_MESSAGE[3]!));
    await accept(restored, p1, ...p2);
    const byRestored = sent(restored);
    // Every message sent again is graded (none taken for a repeat): P2's CRS 1 is paged again.
    expect(byRestored.pages.filter((p) => p.summary.includes('CRS grade 3')).length).toBe(2); // hematology, ICU
    expect(byRestored.pages.some((p) => p.summary.includes('patient P2'))).toBe(true);
    // No id the lost server sent after the backup comes again, for anything else.
    const lostSince = {
      changes: byLost.changes.filter((id) => !atBackup.changes.includes(id)),
      sends: byLost.pages.map((p) => p.sendId).filter((id) => !atBackup.pages.some((b) => b.sendId === id)),
    };
    expect(lostSince.changes.length).toBeGreaterThan(0);
    for (const id of byRestored.changes) expect(lostSince.changes, id).not.toContain(id);
    for (const p of byRestored.pages) expect(lostSince.sends, p.sendId).not.toContain(p.sendId);
    // A patient's changes keep their order: the restored server's come after the backup's.
    const p1Seqs = (ids: string[]) => ids.filter((id) => id.startsWith('crs|P1|')).map((id) => changeSeq(id)!);
    expect(Math.min(...p1Seqs(byRestored.changes))).toBeGreaterThan(Math.max(...p1Seqs(atBackup.changes)));
    // The acknowledgement given after the backup is not known, nor its link (what it stood for was stored after the
    // backup): refused, the clinician told to phone the team; the page sent again has a link that works.
    // For as long as a link sent before the restore can be unexpired (ackLinkMinutes, 12 h): ten minutes on, too.
    expect((await fetch(`${restored.url}/local/clock?stepMs=600000`, { method: 'POST' })).status).toBe(200);
    const old = await fetch(`${restored.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: crs2!.ackUrl!.split('/ack/')[1], by: 'Dr Lost' }),
    });
    expect(old.status).toBe(403);
    // The JSON answer says why too (until 2026-12-07: "acknowledge link forged").
    const oldErrors = ((await old.json()) as { errors: string[] }).errors;
    expect(oldErrors).toHaveLength(1);
    expect(oldErrors[0]).toContain('this server was restored from a backup of ');
    expect(oldErrors[0]).toContain('acknowledge the page sent again');
    // Opened in a browser, the link says why, not that it was altered or never issued here (until 2026-12-07).
    const opened = await fetch(`${restored.url}/ack/${crs2!.ackUrl!.split('/ack/')[1]}`);
    expect(opened.status).toBe(403);
    const page = await opened.text();
    expect(page).toContain('this server was restored from a backup of');
    expect(page).toContain('Acknowledge the page sent again');
    expect(await stop(restored)).toBe(0);

    // A restart is no second restore: nothing moved on again, and the banner still says it within the hour.
    const again = await spawnServe(backup, args);
    expect(again.stderr()).not.toContain('crs serve: this data directory is a backup');
    await accept(again, msg('P1', 40, CRS_MESSAGE[4]!));
    const crs4 = sent(again).changes;
    expect(crs4).toHaveLength(1);
    expect(changeSeq(crs4[0]!)).toBe(Math.max(...p1Seqs(byRestored.changes)) + 2); // after the resend of p1
    const watch = await until(
      () => /delivery watch: ALERT this data directory is a backup taken at/.test(again.stderr()),
      'the delivery watch says it after the restart',
    );
    expect(watch).toBe(true);
    expect(await stop(again)).toBe(0);
  }, 60_000);

  it('names the backup by when it was taken, and the restore alert by when it was restored, hours apart (mutation run)', async () => {
    // A backup three hours old: its moment is moved back in the copy's own record of it. Taken and restored within
    // one minute (as in the test above), a link refused naming the restore's minute, or an alert dated from the
    // backup, read the same; here they cannot.
    const cfg = pagingConfig(root, 'old-cfg', { staleFeedMinutes: LONGEST_SETTING_MINUTES });
    const data = join(root, 'old-data');
    expect(await stop(await spawnServe(data, ['--config', cfg]))).toBe(0);
    const backup = join(root, 'old-backup');
    const r = spawnSync(process.execPath, [CRS_BIN, 'backup', '--data', data, '--to', backup], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const db = new Database(join(backup, 'crs.db'));
    db.prepare('UPDATE restores SET taken_at = taken_at - ? WHERE restored_at IS NULL').run(3 * 3_600_000);
    const takenAt = db.prepare('SELECT taken_at FROM restores WHERE restored_at IS NULL').pluck().get() as number;
    db.close();
    const restored = await spawnServe(backup, ['--config', cfg]);
    try {
      const said = await until(
        () => restored.stderr().match(/a backup taken at (\S+) \(crs backup\), restored at (\S+Z):/),
        'the restored server says it runs on a backup',
      );
      expect(said[1]).toBe(new Date(takenAt).toISOString());
      // The delivery watch's alert (the board's banner, --alert-webhook) began at the restore, not at the backup.
      const banner = await fetch(`${restored.url}/api/outbox`, {
        headers: { authorization: `Bearer ${restored.boardKey}` },
      });
      const alerts = ((await banner.json()) as { alerts: { key: string; since: string }[] }).alerts;
      expect(alerts.find((a) => a.key === 'restored')?.since).toBe(said[2]);
      // A link the backup does not know is refused naming the backup's moment, not the restore's.
      const refused = await fetch(`${restored.url}/v1/acks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'AAAAAAAAAAAAAAAAAAAAAA', by: 'Dr Lost' }),
      });
      expect(refused.status).toBe(403);
      const [error] = ((await refused.json()) as { errors: string[] }).errors;
      expect(error).toContain(
        `restored from a backup of ${formatSiteTime(takenAt, DEFAULT_CONFIG.site.timeZone)} and does not know`,
      );
    } finally {
      expect(await stop(restored)).toBe(0);
    }
  }, 60_000);

  it('sends the no-data alert and its all-clear under ids the lost server never sent', async () => {
    // Three seconds without monitor data raise the no-data alert. Its id is built from when the feed went quiet, not
    // from the patient's sequence: until 2026-12-07 a restored server sent the alert and all-clear the lost server had
    // sent for the same quiet spell under the same ids, and a receiver dropping repeats dropped them.
    const cfg = pagingConfig(root, 'stale', { staleFeedMinutes: 0.05 });
    const args = ['--config', cfg, '--page-lines'];
    const data = join(root, 'stale-data');
    const lost = await spawnServe(data, args);
    const backup = join(root, 'stale-backup');
    const r = spawnSync(process.execPath, [CRS_BIN, 'backup', '--data', data, '--to', backup], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const reading = (id: string) => liveReading('Q1', id);
    const first = [{ ...enrol('Q1'), observedAt: new Date().toISOString() }, reading('q-1')];
    const stale = (s: ServeProcess) => pageLines(s).filter((p) => p.subject === 'stale-feed');
    // After the backup: Q1's monitor goes quiet (alerted), then sends again (all-clear).
    await accept(lost, ...first);
    await until(() => stale(lost).length === 1 || undefined, 'the lost server alerts');
    const second = reading('q-2');
    await accept(lost, second);
    await until(() => stale(lost).length === 2 || undefined, 'the lost server clears');
    const lostSends = stale(lost).map((p) => p.sendId);
    expect(await stop(lost)).toBe(0);

    const restored = await spawnServe(backup, args);
    try {
      await accept(restored, ...first);
      await until(() => stale(restored).length === 1 || undefined, 'the restored server alerts');
      // The resent reading, observed now: one observed at the lost run's moment can be older than the quiet it would
      // end on a busy machine, and rightly ends nothing. Its all-clear's id is the quiet spell's, as the lost one's.
      await accept(restored, reading('q-2'));
      await until(() => stale(restored).length === 2 || undefined, 'the restored server clears');
      const sends = stale(restored);
      expect(sends.map((p) => p.kind)).toEqual(['alert', 'alert-cleared']);
      for (const p of sends) expect(lostSends, p.sendId).not.toContain(p.sendId);
    } finally {
      await stop(restored);
    }
  }, 60_000);

  it('pages again rather than fewer: an acknowledgement and a silence given after the backup are not known', async () => {
    // Grade 3: ten seconds a level (room for a restore on a busy machine); the course is from January.
    const cfg = pagingConfig(root, 'ladder', {
      timeoutMinutes: { severe: 1 / 6, other: 0.5 },
      staleFeedMinutes: LONGEST_SETTING_MINUTES,
    });
    const args = ['--config', cfg, '--page-lines'];
    const data = join(root, 'ladder-data');
    const lost = await spawnServe(data, args);
    await accept(lost, enrol('K1', 0), msg('K1', 10, CRS_MESSAGE[3]!));
    const first = await until(() => (sent(lost).pages.length === 2 ? pageLines(lost) : undefined), 'the first level');
    expect(first.map((p) => p.role).sort()).toEqual(['ICU registrar', 'hematology fellow']);
    const backup = join(root, 'ladder-backup');
    const r = spawnSync(process.execPath, [CRS_BIN, 'backup', '--data', data, '--to', backup], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // After the backup: the ICU registrar acknowledges, and hematology's pages are silenced (below grade 4).
    const registrar = first.find((p) => p.team === 'icu')!;
    const ack = await fetch(`${lost.url}/v1/acks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: registrar.ackUrl!.split('/ack/')[1], by: 'Dr Lost' }),
    });
    expect(ack.status).toBe(200);
    const silence = spawnSync(
      process.execPath,
      [
        CRS_BIN,
        'silence',
        'create',
        '--team',
        'hematology',
        '--minutes',
        '60',
        '--by',
        'Ops',
        '--reason',
        'drill',
      ].concat(['--data', data]),
      { encoding: 'utf8' },
    );
    expect(silence.status, silence.stderr).toBe(0);
    expect(await stop(lost)).toBe(0);

    const restored = await spawnServe(backup, args);
    try {
      // Both ladders climb at their time, to their next level: the ICU's acknowledged and hematology's silenced on
      // the lost server. (Paged again, not fewer.)
      const next = await until(() => {
        const byTeam = new Map<string, PageEvent>();
        for (const p of pageLines(restored)) if (!byTeam.has(p.team)) byTeam.set(p.team, p);
        return byTeam.size === 2 ? byTeam : undefined;
      }, 'the next level of both ladders');
      expect([...next.values()].map((p) => [p.team, p.role, p.level, p.reason]).sort()).toEqual([
        ['hematology', 'hematology attending', 1, 'escalated'],
        ['icu', 'ICU consultant', 1, 'escalated'],
      ]);
    } finally {
      await stop(restored);
    }
  }, 90_000);
});
