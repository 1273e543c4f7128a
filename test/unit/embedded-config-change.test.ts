// `crs serve` restarted on another configuration while a patient is monitored (2026-12-07): a ladder climbing under
// the former paging settings goes on under the new ones and ends; the start says how many patients were graded under
// other grading settings; the next grade change says it may come from the configuration, and the trail records it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '#domain/config.ts';
import { gradingSettingsId } from '#domain/settings-id.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import type { AuditEvent } from '#ports';
import { boardApi, pageEvents, postMessages, stepPaging } from '#test/support/in-process-serve.ts';
import { lineStream } from '#test/support/lines.ts';
import { T0, enrol, msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

const TOKEN = 'local-test-token-of-at-least-32-chars';
const MIN = 60_000;
let dir: string;
let server: EmbeddedServer | undefined;
let clock: number;
let lines: string[];
let logs: string[];

const configOf = (overrides: Record<string, unknown>) => {
  const r = resolveConfig({
    ...overrides,
    paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES, ...(overrides.paging as object) },
  });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.config;
};
const start = async (overrides: Record<string, unknown>) => {
  server = await startEmbeddedServer({
    dataDir: dir,
    config: configOf(overrides),
    port: 0,
    localToken: TOKEN,
    pageStream: lineStream(lines),
    pageLines: true,
    now: () => clock,
    log: (l) => logs.push(l),
  });
  return server;
};
const pages = () => pageEvents(lines);
const sent = (team: string) => pages().flatMap((p) => (p.team === team ? [`${p.role} g${p.grade} ${p.status}`] : []));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-config-change-'));
  lines = [];
  logs = [];
  clock = T0 + 30 * MIN;
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('crs serve restarted on another configuration', () => {
  it('ends the ladder it climbed by the new settings, says the patients graded under others, and the change it pages', async () => {
    const astct = {};
    const lee = {
      scheme: 'lee2014',
      routing: { crs: [['hematology'], ['hematology'], ['icu'], ['icu']] },
      paging: {
        policies: { hematology: { levels: ['hematology attending'], loops: 1 } },
        timeoutMinutes: { severe: 5, other: 10 },
      },
    };
    const s1 = await start(astct);
    expect(logs).toContain(
      `crs serve: grading settings ${gradingSettingsId(configOf(astct))} (scheme astct2019; set other than the defaults: paging.staleFeedMinutes)`,
    );
    await postMessages(s1, TOKEN, [
      enrol('P1', 0),
      msg('P1', 10, { vitals: { temperatureC: 39 }, oxygen: { device: 'nasal_cannula', flowLpm: 5 } }),
    ]);
    await until(() => sent('hematology').length === 1 || undefined, 'hematology paged');
    expect(sent('hematology')).toEqual(['hematology fellow g2 open']);
    await s1.close();
    server = undefined;

    logs = [];
    const s2 = await start(lee);
    const [was, now] = [gradingSettingsId(configOf(astct)), gradingSettingsId(configOf(lee))];
    expect(logs.find((l) => l.startsWith('crs serve: grading settings'))).toBe(
      `crs serve: grading settings ${now} (scheme lee2014; set other than the defaults: paging.policies.hematology.levels, paging.policies.hematology.loops, paging.staleFeedMinutes, paging.timeoutMinutes.other, routing.crs, scheme); 1 patient(s) last graded under other settings (${was}: 1): each is graded under these at its next message, and a grade change it makes then says so`,
    );
    const health = (await (await boardApi(s2)('/api/health')).json()) as { gradingSettings: string };
    expect(health.gradingSettings).toBe(now);

    // The CRS 2 page's level keeps its due time (15 minutes, the former timeout); nobody answering, the one-level,
    // one-walk ladder of now is exhausted there: not stuck, not sent to a level the ladder no longer has.
    clock += 16 * MIN;
    await stepPaging(s2);
    const hematology = (await s2.paging.store.patientPages('P1', 10)).pages.filter((p) => p.team === 'hematology');
    expect(hematology.map((p) => p.status)).toEqual(['exhausted']);

    // The next message is graded under Lee 2014: CRS 3, to the ICU alone now, saying it may come from the settings.
    await postMessages(s2, TOKEN, [msg('P1', 50, { vitals: { heartRate: 90 } })]);
    await until(() => sent('icu').length === 1 || undefined, 'the ICU paged');
    const icu = pages().find((p) => p.team === 'icu')!;
    expect(icu.summary).toContain(
      `The grading settings changed since this patient's last message (settings ${now}, were ${was})`,
    );
    const audit = ((await (await boardApi(s2)('/api/patients/P1/audit?format=ndjson')).text()) as string)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent);
    expect(audit.filter((e) => e.type === 'assessment').map((e) => e.details.settings)).toEqual([was, undefined, now]);
    expect(audit.filter((e) => e.type === 'settings-changed').map((e) => e.details)).toEqual([
      expect.objectContaining({ settings: now, formerSettings: was }),
    ]);
  });
});
