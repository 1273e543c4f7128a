// `crs replay --escalations`: ladders, acknowledgements, silences and alerts in simulated time, deterministic.
import { describe, expect, it } from 'vitest';
import { EscalatingReplay, type EscalationEvent } from '#app/replay-escalations.ts';
import { DEFAULT_CONFIG, resolveConfig } from '#domain/config.ts';
import { replayMain } from '#test/support/cli.ts';

const at = (hhmm: string) => `2026-11-26T${hhmm}:00Z`;
let n = 0;
const m = (hhmm: string, sections: object, kind = 'monitor') =>
  JSON.stringify({
    messageId: `x${++n}`,
    patientId: 'E-1',
    observedAt: at(hhmm),
    source: { deviceId: 'mon', kind },
    ...sections,
  });
const enrol = (hhmm = '10:00') =>
  m(hhmm, { enrolment: { therapy: 'car-t', infusedAt: '2026-11-25T09:00:00Z', weightKg: 70, bed: 'H4-1' } }, 'ehr');

async function run(lines: string[], until?: string): Promise<EscalationEvent[]> {
  const r = new EscalatingReplay(DEFAULT_CONFIG);
  const out: EscalationEvent[] = [];
  for (const [i, l] of lines.entries()) out.push(...(await r.line(l, i + 1)));
  out.push(...(await r.finish(until ? Date.parse(at(until)) : undefined)));
  return out;
}

/** "hh:mm what" lines for the alert pages opened and resolved. */
const alertLines = (events: EscalationEvent[]) =>
  events.flatMap((e) =>
    e.type === 'audit' && e.event === 'alert' ? [`${e.at.slice(11, 16)} ${e.text.split(':')[0]}`] : [],
  );

/** "hh:mm event team role" lines for deliveries, escalations, acknowledgements and page changes. */
const story = (events: EscalationEvent[], team?: string) =>
  events.flatMap((e) => {
    if (e.type !== 'audit') return [];
    const d = e.details as Record<string, string>;
    if (team && d.team !== team) return [];
    const what =
      e.event === 'delivery'
        ? `delivery ${d.role}`
        : e.event === 'page'
          ? `page ${d.status}`
          : e.event === 'acknowledgement'
            ? `ack ${d.by}`
            : e.event === 'escalation'
              ? `escalation ${d.status}`
              : e.event;
    return [`${e.at.slice(11, 16)} ${what}`];
  });

describe('replay --escalations', () => {
  it('climbs the ladder when nobody answers and stops at the first acknowledgement', async () => {
    const events = await run(
      [
        enrol(),
        m('10:00', { vitals: { temperatureC: 39 } }),
        m('10:01', { oxygen: { device: 'non_rebreather' } }), // CRS 3: five minutes a level
        JSON.stringify({ type: 'advance', to: at('10:12') }),
        JSON.stringify({ type: 'ack', pageId: 'crs|E-1|#3|icu', by: 'Dr ICU', at: at('10:13') }), // the third message's change
      ],
      '11:00',
    );
    expect(story(events, 'icu')).toEqual([
      '10:01 page open',
      '10:01 delivery ICU registrar',
      '10:06 escalation open',
      '10:06 delivery ICU consultant',
      '10:11 escalation open',
      '10:11 delivery ICU registrar',
      '10:13 ack Dr ICU',
    ]);
  });

  it('re-pages at once on a higher grade even after an acknowledgement, and a de-escalation cancels the ladder', async () => {
    const events = await run(
      [
        enrol(),
        m('10:00', { vitals: { temperatureC: 39 } }),
        JSON.stringify({ type: 'ack', pageId: 'crs|E-1|#2|hematology', by: 'Dr H', at: at('10:02') }),
        m('10:05', { oxygen: { device: 'nasal_cannula', flowLpm: 2 } }),
        m('10:06', { oxygen: { device: 'room_air' } }),
        m('11:10', { vitals: { heartRate: 90 } }), // below for the 60-minute hold: de-escalation 2 -> 1
      ],
      '12:00',
    );
    expect(story(events, 'hematology')).toEqual([
      '10:00 page open',
      '10:00 delivery hematology fellow',
      '10:02 ack Dr H',
      '10:05 page open',
      '10:05 delivery hematology fellow',
      '10:20 escalation open',
      '10:20 delivery hematology attending',
      '10:35 escalation open',
      '10:35 delivery hematology consultant',
      '10:50 escalation open',
      '10:50 delivery hematology fellow',
      '11:05 escalation open',
      '11:05 delivery hematology attending',
      '11:10 page resolved',
      '11:10 page info',
      '11:10 delivery hematology fellow',
    ]);
  });

  it('a silence holds low grades and not grade 4', async () => {
    const silence = JSON.stringify({
      type: 'silence',
      silenceId: 's1',
      patientId: 'E-1',
      from: at('10:00'),
      until: at('10:30'),
      by: 'Nurse B',
      reason: 'transport to MRI',
    });
    const low = await run([enrol(), silence, m('10:05', { vitals: { temperatureC: 39 } })], '10:31');
    expect(story(low, 'hematology')).toEqual([
      '10:05 page open',
      '10:30 escalation open',
      '10:30 delivery hematology fellow',
    ]);
    const high = await run(
      [enrol(), silence, m('10:05', { vitals: { temperatureC: 39 } }), m('10:06', { oxygen: { device: 'bipap' } })],
      '10:07',
    );
    expect(story(high).filter((s) => s.includes('delivery'))).toEqual([
      '10:06 delivery hematology fellow',
      '10:06 delivery ICU registrar',
    ]);
  });

  it('raises a stale-feed alert when the monitor goes quiet, and clears it when data resumes', async () => {
    const events = await run([
      enrol(),
      m('10:01', { vitals: { heartRate: 80 } }),
      m('10:30', { vitals: { heartRate: 82 } }),
    ]);
    expect(alertLines(events)).toEqual([
      '10:16 alert page opened for bedside',
      '10:30 bedside page resolved',
      '10:30 alert-cleared page opened for bedside',
    ]);
  });

  it('raises a low-SpO2 warning page that is not a grade', async () => {
    const events = await run([enrol(), m('10:01', { vitals: { spo2: 88 } }), m('10:02', { vitals: { spo2: 86 } })]);
    expect(events.filter((e) => e.type === 'notification')).toEqual([]);
    const opened = events
      .filter((e) => e.type === 'audit' && e.event === 'alert')
      .map((e) => (e as unknown as { details: { team: string } }).details.team);
    expect(opened).toEqual(['bedside', 'hematology']);
  });

  // Found by the hazard log (docs/safety.md, alarm fatigue): one reading at 90 % cleared the warning, so SpO2
  // hovering at the threshold paged both teams a warning and an all-clear at every dip.
  it('warns once for SpO2 hovering at the threshold; two readings at or above it clear the warning', async () => {
    const spo2 = (hhmm: string, v: number) => m(hhmm, { vitals: { spo2: v } });
    const events = await run([
      enrol(),
      ...[88, 86, 91, 88, 87, 92, 89, 88].map((v, i) => spo2(`10:0${i + 1}`, v)),
      spo2('10:10', 95),
      spo2('10:11', 96),
    ]);
    expect(alertLines(events)).toEqual([
      '10:02 alert page opened for bedside',
      '10:02 alert page opened for hematology',
      '10:11 bedside page resolved',
      '10:11 hematology page resolved',
      '10:11 alert-cleared page opened for bedside',
      '10:11 alert-cleared page opened for hematology',
    ]);
  });

  it('refuses a bad control line and says why; the CLI exits 1', async () => {
    const events = await run([
      enrol(),
      JSON.stringify({ type: 'ack', pageId: 'nope', by: 'X', at: at('10:05') }),
      JSON.stringify({ type: 'advance' }),
    ]);
    expect(events.filter((e) => e.type === 'control-refused')).toEqual([
      { type: 'control-refused', line: 2, error: 'no such page' },
      { type: 'control-refused', line: 3, error: expect.stringContaining('to:') },
    ]);
    const cli = await replayMain(['-', '--escalations'], [enrol(), JSON.stringify({ type: 'advance' })].join('\n'));
    expect(cli.status).toBe(1);
  });

  // Found beside test/unit/replay-vs-serve-paging.test.ts: a silence ending before it starts stopped the whole
  // replay ("cannot read FILE", exit 2, the lines after it lost), and ending a silence that does not exist passed
  // silently where `crs serve` answers 404.
  it('refuses a silence that ends before it starts, and the end of no such silence, and goes on', async () => {
    const events = await run([
      enrol(),
      JSON.stringify({
        type: 'silence',
        silenceId: 's1',
        patientId: 'E-1',
        from: at('10:30'),
        until: at('10:00'),
        by: 'Nurse B',
        reason: 'transport',
      }),
      JSON.stringify({ type: 'end-silence', silenceId: 'nope', by: 'Nurse B', at: at('10:01') }),
      m('10:05', { vitals: { temperatureC: 39 } }),
    ]);
    expect(events.filter((e) => e.type === 'control-refused')).toEqual([
      { type: 'control-refused', line: 2, error: 'until: must be after from' },
      { type: 'control-refused', line: 3, error: 'no such silence' },
    ]);
    expect(story(events, 'hematology')).toEqual(['10:05 page open', '10:05 delivery hematology fellow']);
    const cli = await replayMain(
      ['-', '--escalations'],
      [enrol(), JSON.stringify({ type: 'end-silence', silenceId: 'nope', by: 'N', at: at('10:01') })].join('\n'),
    );
    expect(cli.status).toBe(1);
  });

  it('without --escalations, the output is the plain contract', async () => {
    const cli = await replayMain(['-'], [enrol(), m('10:00', { vitals: { temperatureC: 39 } })].join('\n'));
    expect(cli.events.map((e) => e.type)).toEqual(['assessment', 'assessment', 'notification']);
  });

  it('pages a ward once when three of its monitors go quiet together, as the servers do', async () => {
    const patient = (id: string, ward: string) =>
      JSON.stringify({
        messageId: `w-${id}`,
        patientId: id,
        observedAt: at('10:00'),
        source: { deviceId: 'ehr', kind: 'ehr' },
        enrolment: { therapy: 'car-t', infusedAt: '2026-11-25T09:00:00Z', weightKg: 70, bed: id, ward },
      });
    const events = await run(
      [patient('W-1', 'H4'), patient('W-2', 'H4'), patient('W-3', 'H4'), patient('X-1', 'H5')],
      '10:20',
    );
    const opened = events.flatMap((e) =>
      e.type === 'audit' && e.event === 'alert'
        ? [`${e.at.slice(11, 16)} ${e.patientId}: ${e.text.split(':')[0]}`]
        : [],
    );
    expect(opened).toEqual([
      '10:15 ward H4: alert page opened for bedside',
      '10:15 X-1: alert page opened for bedside',
    ]);
  });
});

describe('replay --escalations control lines, pinned by a mutation run', () => {
  const silence = (extra: object) =>
    JSON.stringify({ type: 'silence', silenceId: 's1', from: at('10:30'), by: 'Nurse B', reason: 'MRI', ...extra });

  it('refuses a silence of no length and a silence of nobody, and the CLI exits 1', async () => {
    const events = await run([
      enrol(),
      silence({ patientId: 'E-1', until: at('10:30') }),
      silence({ until: at('11:00') }),
    ]);
    expect(events.filter((e) => e.type === 'control-refused')).toEqual([
      { type: 'control-refused', line: 2, error: 'until: must be after from' },
      { type: 'control-refused', line: 3, error: 'a silence needs a patientId or a team' },
    ]);
    expect(events.some((e) => e.type === 'audit' && e.event === 'silence')).toBe(false);
    const cli = await replayMain(['-', '--escalations'], [enrol(), silence({ until: at('11:00') })].join('\n'));
    expect(cli.status).toBe(1);
  });

  it('the CLI lets time run on to --until and prints what happened meanwhile', async () => {
    const quiet = await replayMain(['-', '--escalations'], enrol());
    expect(quiet.events.filter((e) => e.type === 'audit')).toEqual([]);
    const cli = await replayMain(['-', '--escalations', '--until', at('10:20')], enrol());
    expect(cli.status).toBe(0);
    expect(
      cli.events.flatMap((e) => (e.type === 'audit' && e.event === 'alert' ? [`${e.at} ${e.patientId}`] : [])),
    ).toEqual(['2026-11-26T10:15:00Z E-1']);
  });

  it('records an ack line via api, with the name as written', async () => {
    const events = await run([
      m('10:00', { vitals: { temperatureC: 39 } }),
      JSON.stringify({ type: 'ack', pageId: `crs|E-1|#1|hematology`, by: 'Dr A', at: at('10:02') }),
    ]);
    const acks = events.filter((e) => e.type === 'audit' && e.event === 'acknowledgement');
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({
      at: '2026-11-26T10:02:00Z',
      text: 'hematology page acknowledged by Dr A via api',
      details: { by: 'Dr A', via: 'api', team: 'hematology' },
    });
  });

  it("writes a stale-feed alert's times in the site's zone, as the servers page them (2026-12-06)", async () => {
    const paris = resolveConfig({ site: { timeZone: 'Europe/Paris' } });
    if (!paris.ok) throw new Error(paris.errors.join('; '));
    const r = new EscalatingReplay(paris.config);
    const events = [...(await r.line(enrol(), 1)), ...(await r.finish(Date.parse(at('10:20'))))];
    const alert = events.find((e) => e.type === 'audit' && e.event === 'alert');
    expect(alert).toMatchObject({ at: '2026-11-26T10:15:00Z', patientId: 'E-1' });
    expect(alert?.type === 'audit' && alert.text).toMatch(/no monitor data since enrolment at 2026-11-26 11:00 CET;/);
  });

  // A defect found by the run: replay silenced the patient where both servers refuse a silence of two scopes.
  it('refuses a silence naming both a patient and a team, as the servers do', async () => {
    const events = await run([enrol(), silence({ patientId: 'E-1', team: 'icu', until: at('11:00') })]);
    expect(events.filter((e) => e.type === 'control-refused')).toEqual([
      { type: 'control-refused', line: 2, error: 'scope: give either patientId or team, not both' },
    ]);
    expect(events.some((e) => e.type === 'audit' && e.event === 'silence')).toBe(false);
  });

  it('prints what a line set off right after that line, before a late message that does not move the clock', async () => {
    const events = await run([m('10:00', { vitals: { temperatureC: 39 } }), m('09:50', { vitals: { heartRate: 80 } })]);
    const kinds = events.map((e) => (e.type === 'audit' ? 'audit' : e.type));
    expect(kinds.indexOf('audit')).toBe(2);
    expect(kinds.lastIndexOf('assessment')).toBe(kinds.length - 1);
  });

  it('a silence from a later time starts then: its entry is at its start', async () => {
    const events = await run([enrol(), silence({ patientId: 'E-1', until: at('11:00') })]);
    const entries = events.filter((e) => e.type === 'audit' && e.event === 'silence');
    expect(entries.map((e) => (e as { at: string }).at)).toEqual(['2026-11-26T10:30:00Z']);
  });
});
