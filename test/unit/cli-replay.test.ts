// `crs replay` as a user runs it: output order, rejected lines, exit codes, files and standard input.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Replay } from '#app/replay.ts';
import { DEFAULT_CONFIG, resolveConfig } from '#domain/config.ts';
import { REPO, replayCli, replayMain } from '#test/support/cli.ts';

const good = (id: string, minutes: number, sections: object) =>
  JSON.stringify({
    messageId: id,
    patientId: 'C-1',
    observedAt: new Date(Date.parse('2026-01-10T08:00:00Z') + minutes * 60_000).toISOString(),
    source: { deviceId: 'mon-1', kind: 'monitor' },
    ...sections,
  });

describe('crs replay', () => {
  // A process of its own (bin/crs.js), as the replay a user runs: standard input itself, and the exit status.
  it('prints an assessment per message, each followed by the pages it caused, and exits 0', () => {
    const input = [
      good('a', 0, { vitals: { temperatureC: 38.5 } }),
      good('b', 5, { oxygen: { device: 'bipap' } }),
    ].join('\n');
    const { status, events } = replayCli(['-'], input);
    expect(status).toBe(0);
    expect(events.map((e) => `${e.type}:${e.type === 'notification' ? e.toGrade : e.messageId}`)).toEqual([
      'assessment:a',
      'notification:1',
      'assessment:b',
      'notification:4',
    ]);
  });

  it('reports a rejected line with its number and errors, keeps going, and exits 1', async () => {
    const input = [
      good('a', 0, { vitals: { temperatureC: 101.3 } }),
      '{not json',
      '',
      good('b', 5, { vitals: { temperatureC: 38.5 } }),
    ].join('\n');
    const { status, events } = await replayMain(['-'], input);
    expect(status).toBe(1);
    expect(events[0]).toEqual({
      type: 'rejected',
      line: 1,
      errors: ['vitals.temperatureC: 101.3 is outside 25-45 (Fahrenheit?)'],
    });
    expect(events[1]).toMatchObject({ type: 'rejected', line: 2 });
    // With the parser's reason: where the line goes wrong.
    expect((events[1]!.errors as string[])[0]).toMatch(/^line is not valid JSON: \S/);
    expect(events.slice(2).map((e) => e.type)).toEqual(['assessment', 'notification']);
  });

  it('reads a file, and takes --scheme lee2014', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-replay-'));
    const file = join(dir, 'in.ndjson');
    writeFileSync(
      file,
      [
        good('a', 0, { vitals: { temperatureC: 38.5 } }),
        good('b', 5, { oxygen: { device: 'nasal_cannula', flowLpm: 5 } }),
      ].join('\n'),
    );
    const astct = await replayMain([file], '');
    const lee = await replayMain([file, '--scheme', 'lee2014'], '');
    expect(astct.events.at(-1)).toMatchObject({ type: 'notification', toGrade: 2, scheme: 'astct2019' });
    expect(lee.events.at(-1)).toMatchObject({ type: 'notification', toGrade: 3, scheme: 'lee2014' }); // FiO2 estimated 0.41
  });

  it.each([
    [['nofile.ndjson'], /cannot read nofile.ndjson/],
    [['-', '--scheme', 'ctcae'], /--scheme must be one of astct2019, lee2014/],
    [[], /replay takes exactly one FILE/],
    [['-', '--frobnicate'], /Unknown option/],
    [['-', '--config', '/nonexistent.json'], /cannot read config/],
  ])('usage and I/O errors exit 2: %o', async (args, message) => {
    const { status, stderr } = await replayMain(args, '');
    expect(status).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('reads a file saved by a Windows tool: a UTF-8 byte order mark and CRLF line ends, from a file or standard input', async () => {
    // Notepad and PowerShell 5 write UTF-8 with a BOM: the first message was refused as "Unexpected token '\uFEFF'",
    // an invisible character, and the replay exited 1.
    const text = `\uFEFF${[good('a', 0, { vitals: { temperatureC: 38.5 } }), good('b', 5, { vitals: { heartRate: 90 } })].join('\r\n')}\r\n`;
    const dir = mkdtempSync(join(tmpdir(), 'crs-replay-'));
    const file = join(dir, 'windows.ndjson');
    writeFileSync(file, text);
    // Standard input in a process of its own (bin/crs.js): the command in process reads its "-" from a file.
    for (const { status, events } of [await replayMain([file], ''), replayCli(['-'], text)]) {
      expect(events.filter((e) => e.type !== 'notification')).toMatchObject([
        { type: 'assessment', messageId: 'a' },
        { type: 'assessment', messageId: 'b' },
      ]);
      expect(status).toBe(0);
    }
  });

  it('takes a configuration file, and refuses a bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-config-'));
    const cfg = join(dir, 'site.json');
    writeFileSync(cfg, JSON.stringify({ feverThresholdC: 38.3 }));
    const site = await replayMain(['-', '--config', cfg], good('a', 0, { vitals: { temperatureC: 38.2 } }));
    expect(site.events[0]).toMatchObject({ crsGrade: 0 });
    writeFileSync(cfg, JSON.stringify({ feverTresholdC: 38.3 }));
    const bad = await replayMain(['-', '--config', cfg], '');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/invalid config/);
  });
  // With --scheme, the file's JSON was spread into an object ({...[], scheme}): a file holding [] or null was taken as
  // no overrides, while without --scheme (and at the stack's synth) the same file was refused.
  it.each(['[]', 'null', '"lee2014"'])(
    'refuses a file that is no JSON object (%s), with --scheme as without',
    async (json) => {
      const dir = mkdtempSync(join(tmpdir(), 'crs-config-'));
      const cfg = join(dir, 'site.json');
      writeFileSync(cfg, json);
      for (const scheme of [[], ['--scheme', 'lee2014']]) {
        const r = await replayMain(['-', '--config', cfg, ...scheme], good('a', 0, { vitals: { temperatureC: 38.2 } }));
        expect([r.status, r.events.length], scheme.join(' ')).toEqual([2, 0]);
        expect(r.stderr).toMatch(/invalid config: config: .*expected object/);
      }
    },
  );
  it('refuses a duration past 10 years before it reads a line (a dose allowed again in 10^12 hours failed part-way)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-config-'));
    const cfg = join(dir, 'site.json');
    const timeline = readFileSync(join(REPO, 'test/fixtures/sample-timeline.ndjson'), 'utf8');
    const plain = await replayMain(['-'], timeline);
    writeFileSync(cfg, JSON.stringify({ tocilizumab: { repeatAfterHours: 1e12 } }));
    const refused = await replayMain(['-', '--config', cfg], timeline);
    expect([refused.status, refused.events.length]).toEqual([2, 0]);
    expect(refused.stderr).toMatch(/invalid config.*tocilizumab\.repeatAfterHours: at most 10 years \(87600 hours\)/);
    writeFileSync(cfg, JSON.stringify({ tocilizumab: { repeatAfterHours: 87_600 } }));
    const longest = await replayMain(['-', '--config', cfg], timeline);
    expect([longest.status, longest.stderr]).toEqual([0, '']);
    expect(longest.events.map((e) => e.type)).toEqual(plain.events.map((e) => e.type));
  });
});

describe('crs replay output, pinned by a mutation run', () => {
  it('prints each event with the fields the contract names: warnings only when there are any', async () => {
    const low = (id: string, minutes: number, vitals: object) => good(id, minutes, { vitals });
    const input = [
      low('a', 0, { spo2: 85 }),
      low('b', 5, { spo2: 86, temperatureC: 38.4 }),
      low('b', 5, { spo2: 86, temperatureC: 38.4 }),
    ].join('\n');
    const { status, events } = await replayMain(['-'], input);
    expect(status).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['assessment', 'assessment', 'notification', 'duplicate']);
    const [first, second, page, duplicate] = events;
    expect(first).toEqual({
      type: 'assessment',
      messageId: 'a',
      patientId: 'C-1',
      at: '2026-01-10T08:00:00Z',
      scheme: 'astct2019',
      crsGrade: 0,
      icansGrade: 0,
      reasons: ['CRS entry criterion not met: no temperature >= 38 °C in the last 24 h at 2026-01-10T08:00:00Z'],
      criteria: [{ criterion: 'no-fever', value: false, at: '2026-01-10T08:00:00Z' }],
    });
    expect(second).toEqual({
      type: 'assessment',
      messageId: 'b',
      patientId: 'C-1',
      at: '2026-01-10T08:05:00Z',
      scheme: 'astct2019',
      crsGrade: 1,
      icansGrade: 0,
      reasons: ['fever 38.4 °C at 2026-01-10T08:05:00Z'],
      criteria: [{ criterion: 'fever', value: 38.4, at: '2026-01-10T08:05:00Z' }],
      warnings: ['SpO2 85 % then 86 % (below 90 %) with no oxygen support documented at 2026-01-10T08:05:00Z'],
    });
    expect(page).toMatchObject({
      notificationId: 'crs|C-1|#2',
      patientId: 'C-1',
      kind: 'escalation',
      condition: 'crs',
      fromGrade: 0,
      toGrade: 1,
      teams: ['hematology'],
      provisional: true,
      causedBy: 'b',
      reasons: ['fever 38.4 °C at 2026-01-10T08:05:00Z'],
      criteria: [{ criterion: 'fever', value: 38.4, at: '2026-01-10T08:05:00Z' }],
    });
    expect(duplicate).toEqual({ type: 'duplicate', messageId: 'b', patientId: 'C-1' });
  });
});

describe('crs replay input and output, pinned by a mutation run (2026-12-06)', () => {
  it('skips a line of only spaces or tabs as a blank line: nothing refused, the numbers of the lines after it kept', async () => {
    const input = [good('a', 0, { vitals: { temperatureC: 38.5 } }), '   ', '\t', '{oops'].join('\n');
    const { status, events } = await replayMain(['-'], input);
    expect(events.map((e) => (e.type === 'rejected' ? `rejected:${e.line}` : e.type))).toEqual([
      'assessment',
      'notification',
      'rejected:4',
    ]);
    expect(status).toBe(1);
  });

  it('prints each event once when the output is longer than the writer buffers (64 KiB)', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => `h${i}`);
    const input = ids.map((id, i) => good(id, i, { vitals: { heartRate: 80 + (i % 20) } })).join('\n');
    const { status, events } = await replayMain(['-'], input);
    expect(status).toBe(0);
    expect(events.map((e) => e.messageId)).toEqual(ids);
  });
});

describe('the configuration file, pinned by a mutation run: a bad one is refused, naming the key', () => {
  const errors = (overrides: unknown) => {
    const r = resolveConfig(overrides);
    return r.ok ? [] : r.errors;
  };

  it.each([
    ['a misspelt hypotension key', { hypotension: { systolicBellow: 100 } }, /^hypotension: .*systolicBellow/],
    ['a misspelt tocilizumab key', { tocilizumab: { maxDose: 600 } }, /^tocilizumab: .*maxDose/],
    ['a misspelt actions key', { actions: { deescalation: 'x' } }, /^actions: .*deescalation/],
    ['a misspelt routing key', { routing: { ICANS: DEFAULT_CONFIG.routing.icans } }, /^routing: .*ICANS/],
    [
      'a routing table of three grades',
      { routing: { crs: [['hematology'], ['hematology'], ['icu']] } },
      /^routing\.crs/,
    ],
    [
      'an unknown team',
      { routing: { crs: [['hematology'], ['hematology'], ['hematology', 'ICU'], ['icu']] } },
      /^routing\.crs\.2\.1: /,
    ],
    ['a fever threshold below 37 °C', { feverThresholdC: 36.9 }, /^feverThresholdC: /],
    [
      'a bispecific interruption from grade 0',
      { actions: { bispecificInterruptFromGrade: 0 } },
      /^actions\.bispecificInterruptFromGrade: /,
    ],
    ['a de-duplication window under 16', { dedupeWindow: 15 }, /^dedupeWindow: /],
    ['a null scheme (not the default)', { scheme: null }, /^scheme: /],
    ['a null hold time (not the default)', { holdMinutes: null }, /^holdMinutes: /],
    // A drug the contract has no word for never matches a medication: a site listing paracetamol (the contract says
    // acetaminophen) had its waiver silently never apply, and a patient on acetaminophen graded CRS 0, not 2.
    [
      'a masking drug the contract does not name',
      { feverMaskingDrugs: ['paracetamol', 'tocilizumab'] },
      /^feverMaskingDrugs\.0: /,
    ],
  ])('refuses %s', (_, overrides, message) => {
    const e = errors(overrides);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatch(message);
  });

  it('replaces a list whole: a shorter list of masking drugs keeps none of the defaults', () => {
    const r = resolveConfig({ feverMaskingDrugs: ['acetaminophen'] });
    expect(r.ok && r.config.feverMaskingDrugs).toEqual(['acetaminophen']);
  });
});

describe('replay remembers every identity, pinned by a mutation run', () => {
  // Each content a reused messageId was applied with stays known (the second since 2026-12-06's mutation run).
  it.each([
    ['the first content', 0, 38.5],
    ['the other content', 1, 37.0],
  ])('a reused messageId: %s is a duplicate however late it comes back', (_name, minutes, temperatureC) => {
    const r = resolveConfig({ dedupeWindow: 16 });
    if (!r.ok) throw new Error(r.errors.join('; '));
    const replay = new Replay(r.config);
    const lines = [
      good('m', 0, { vitals: { temperatureC: 38.5 } }),
      good('m', 1, { vitals: { temperatureC: 37.0 } }), // the same id, other content: a new observation
      ...Array.from({ length: 120 }, (_, i) => good(`x${i}`, 2 + i, { vitals: { heartRate: 80 } })),
      good('m', minutes, { vitals: { temperatureC } }), // far past the window: still a duplicate
    ];
    const last = lines.flatMap((l, i) => replay.line(l, i + 1)).at(-1);
    expect(last).toEqual({ type: 'duplicate', messageId: 'm', patientId: 'C-1' });
  });
});
