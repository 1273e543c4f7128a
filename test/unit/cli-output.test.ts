// The CLI as a user reads it: `--help` on every command (usage on stdout, exit 0, what it needs), and the tables it prints.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDirUnusable } from '#hosts/embedded/embedded.ts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { lockDataDir, openDataDir } from '#adapters/sqlite/db.ts';
import { outboxCommand } from '#cli/outbox.ts';
import { silenceTable } from '#cli/silence.ts';
import { CLI, captured, crsMain, pretendServeDir } from '#test/support/cli.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';

/** `crs ARGS` through the CLI's `main`, in this process; what only a process shows runs bin/crs.js (spawnSync). */
const crs = (...args: string[]) => crsMain(args);

describe('crs --help', () => {
  it.each([
    ['replay'],
    ['schema'],
    ['serve'],
    ['token'],
    ['silence'],
    ['outbox'],
    ['dead-letters'],
    ['audit'],
    ['doctor'],
    ['ack-key'],
    ['board-link'],
  ])('crs %s --help prints its usage and exits 0', async (command) => {
    const r = await crs(command, '--help');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/usage:/);
    expect(r.stdout).toContain(`crs ${command}`);
  });

  // README: every command takes --help, the sub-commands it lists too (they answered "Unknown option", exit 2).
  it.each([
    ['audit', 'export'],
    ['silence', 'create'],
    ['silence', 'end'],
    ['silence', 'list'],
    ['ack-key', 'rotate'],
    ['ack-key', 'drop-previous'],
  ])('crs %s %s --help prints its usage and exits 0', async (command, sub) => {
    const r = await crs(command, sub, '--help');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`crs ${command} ${sub}`);
  });

  // The README's command table is what a new user reads first; `crs --help` left out `crs token rotate`.
  it("crs --help names every action of each command the README's command table lists", async () => {
    const usage = (await crs('--help')).stdout;
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `crs ([a-z-]+)([^`]*)`/gm)];
    expect(rows.length).toBeGreaterThan(10);
    for (const [, command, rest] of rows) {
      // The actions: words outside [options], neither a --flag nor its value (`--backend aws`).
      const words = rest!.replace(/\[[^\]]*\]/g, ' ').split(/\s+|\\\|/);
      const actions = words.filter((w, i) => /^[a-z][a-z-]*$/.test(w) && !words[i - 1]?.startsWith('--'));
      const lines = usage.split('\n').filter((l) => l.trimStart().startsWith(`crs ${command}`));
      expect(lines, `crs ${command}`).not.toEqual([]);
      for (const action of actions)
        expect(
          lines.some((l) => new RegExp(`(^|[ |])${action}([ |]|$)`).test(l.trim().slice(`crs ${command}`.length))),
          `crs --help names crs ${command} ${action}`,
        ).toBe(true);
    }
  });

  // Each command's --help (and -h) is its own usage, naming every flag it takes on each of its backends: crs replay
  // and crs schema printed the summary of all commands, crs start crs serve's, crs token refused -h (exit 2), and crs silence detailed
  // create, end and list only with --backend aws (the embedded server's, the default, was one line).
  const AWS = ['--backend aws', '--outputs FILE'];
  it.each([
    [
      ['replay'],
      [
        '--scheme',
        '--config',
        '--format',
        '--hl7-zone',
        '--hl7-patient-authority',
        '--fhir-patient-system',
        '--escalations',
        '--until',
      ],
    ],
    [['schema'], ['--openapi', '--write']],
    [
      ['serve'],
      [
        '--port',
        '--host',
        '--data',
        '--webhook',
        '--public-url',
        '--mllp-port',
        '--max-patients',
        'crs serve --backend aws --help',
      ],
    ],
    [
      ['serve', '--backend', 'aws'],
      ['--endpoint', '--prefix', '--region', '--paging', '--visibility-timeout', '--teardown', '--outputs'],
    ],
    [['start'], ['--port', '--data', '--seed', '--speed']],
    [
      ['simulate'],
      ['--url', '--token', '--seed', '--speed', '--courses', '--copies', '--start', '--follow', '--ndjson', '--mllp'],
    ],
    [['mllp-bridge'], ['--listen', '--to', '--token-file', '--host', '--spool', '--ack-wait']],
    [
      ['token'],
      [
        '--device',
        '--kind',
        '--ward',
        '--patient',
        '--expires',
        '--overlap',
        '--json',
        '--data DIR',
        '--table',
        ...AWS,
      ],
    ],
    [['audit'], ['--patient', '--format', '--data DIR', '--seen-table', '--state-table', ...AWS]],
    [['backup'], ['--to', '--data']],
    [['ack-key'], ['--data', '--drop-previous', ...AWS]],
    [['board-link'], ['--data']],
    [
      ['silence'],
      ['--patient', '--team', '--minutes', '--by', '--reason', '--all', '--json', '--data DIR', '--config', ...AWS],
    ],
    [['outbox'], ['--json', '--all', '--sink', '--data DIR', '--config', ...AWS]],
    [['dead-letters'], ['--json', '--all', '--data DIR', 'MessagesDlq']],
    [['doctor'], ['--paging', '--config', '--test-page', '--json', ...AWS]],
  ])('crs %o --help and -h: its own usage, naming its flags %o (exit 0)', async (args, flags) => {
    for (const h of ['--help', '-h']) {
      const r = await crs(...args, h);
      expect([r.status, r.stderr], h).toEqual([0, '']);
      expect(r.stdout, h).toMatch(new RegExp(`^usage:\\n  crs ${args[0]} `));
      for (const flag of flags) expect(r.stdout, `${h}: ${flag}`).toContain(flag);
      // Its own: no other command's line (the summary names them all).
      const others = [...r.stdout.matchAll(/^ {2}crs ([a-z-]+)/gm)].map((m) => m[1]);
      expect(
        others.filter((c) => c !== args[0]),
        h,
      ).toEqual([]);
    }
  });

  // Pinned by a mutation run (2026-12-06, later): -h after a sub-command, and `crs token help`, as --help.
  it.each(
    [
      ['silence', 'create', '-h'],
      ['silence', 'end', '-h'],
      ['silence', 'list', '-h'],
      ['token', 'help'],
      ['token', 'list', '-h'],
    ].map((args) => [args.join(' '), args]),
  )('crs %s prints its usage, exit 0', async (_, args) => {
    const r = await crs(...args);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(new RegExp(`^usage:\\n {2}crs ${args[0]} `));
  });

  it('crs silence --help details create, end and list on the embedded server too, not only with --backend aws', async () => {
    const out = (await crs('silence', '--help')).stdout;
    expect(out).toMatch(/^ {2}crs silence create \(--patient P \| --team T\) --minutes N --by NAME --reason TEXT/m);
    expect(out).toMatch(/^ {2}crs silence end SILENCE_ID --by NAME/m);
    expect(out).not.toMatch(/^ {2}crs silence (create|end|list) [^\n]*--backend aws/m);
  });

  it('crs serve --help names the token kind (required) and where the AWS backend options are', async () => {
    const out = (await crs('serve', '--help')).stdout;
    expect(out).toContain('crs token issue --device DEVICE_ID --kind KIND');
    expect(out).toContain('crs serve --backend aws --help');
    expect((await crs('serve', '--backend', 'aws', '--help')).stdout).toContain('--endpoint URL');
  });
});

describe('crs silence list, as people read it', () => {
  // Until 2026-12-06 its times were RFC 3339 UTC: a nurse in CET read them an hour off the board's.
  it('writes its times in the site zone as the board does, every column kept apart, long patient ids included', () => {
    const at = Date.parse('2026-12-02T09:31:41.338Z');
    const text = silenceTable(
      [
        {
          silenceId: 'sil_hjNDzRxBbwrw',
          scope: { patientId: 'P-0042' },
          from: at,
          until: at + 45 * 60_000,
          createdBy: 'Nurse Bea',
          reason: 'transport to MRI',
        },
        {
          silenceId: 'sil_2',
          scope: { patientId: 'a-patient-id-of-the-longest-length-allowed-64-characters-xxxxxx' },
          from: at,
          until: at + 60_000,
          createdBy: 'Dr Lee',
          reason: 'drill',
          endedAt: at + 30_000,
          endedBy: 'Dr Lee',
        },
      ],
      'Europe/Paris',
    );
    const [head, first, second] = text.split('\n');
    expect(head).toMatch(/^SILENCE ID +SCOPE +FROM +UNTIL +BY \/ REASON$/);
    expect(first).toMatch(
      /^sil_hjNDzRxBbwrw +patient P-0042 +2026-12-02 10:31 CET +2026-12-02 11:16 CET +Nurse Bea: transport to MRI$/,
    );
    // Each value starts where its header does.
    expect(first!.indexOf('2026-12-02 10:31')).toBe(head!.indexOf('FROM'));
    expect(first!.indexOf('2026-12-02 11:16')).toBe(head!.indexOf('UNTIL'));
    expect(first!.indexOf('Nurse Bea')).toBe(head!.indexOf('BY / REASON'));
    expect(second).toMatch(
      /^sil_2 +patient a-patient-id\S+ +2026-12-02 10:31 CET +2026-12-02 10:32 CET +Dr Lee: drill \(ended 2026-12-02 10:32 CET by Dr Lee\)$/,
    );
    // A zone written as an offset (GMT+5:30) still leaves a space before the next column.
    const [h, row] = silenceTable([silenceFrom(at)], 'Asia/Kolkata').split('\n');
    expect(row).toMatch(/^sil_3 +patient P +2026-12-02 15:01 GMT\+5:30 +2026-12-02 15:02 GMT\+5:30 +B: r$/);
    expect(row!.indexOf('B: r')).toBe(h!.indexOf('BY / REASON'));
  });
});

const silenceFrom = (at: number) => ({
  silenceId: 'sil_3',
  scope: { patientId: 'P' },
  from: at,
  until: at + 60_000,
  createdBy: 'B',
  reason: 'r',
});

describe('a reader that stops early (crs replay FILE | head)', () => {
  it('ends crs replay quietly, without an unhandled EPIPE, with the status of an I/O error (2), never 0', async () => {
    // message-contract.md: 0 only when every line was accepted, 2 on an I/O error. Until 2026-12-07 it exited 0, a
    // replay whose first line was refused too (`set -o pipefail; crs replay FILE | head` passed).
    const dir = mkdtempSync(join(tmpdir(), 'crs-epipe-'));
    const file = join(dir, 'many.ndjson');
    const t0 = Date.parse('2026-01-10T08:00:00Z');
    const lines = Array.from({ length: 5000 }, (_, i) =>
      JSON.stringify({
        messageId: `m-${i}`,
        patientId: `P-${i % 50}`,
        observedAt: new Date(t0 + i * 60_000).toISOString(),
        source: { deviceId: 'mon-1', kind: 'monitor' },
        vitals: { temperatureC: 37 + (i % 3) * 0.8, heartRate: 90 },
      }),
    );
    const refused = lines[0]!.replace('"heartRate":90', '"heartRate":900');
    writeFileSync(file, `${[refused, ...lines.slice(1)].join('\n')}\n`);
    const child = spawn(process.execPath, [CLI, 'replay', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    // 'close', not 'exit': its standard error is all read by then (an EPIPE written last could come after the exit).
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    rmSync(dir, { recursive: true, force: true });
    expect(stderr).not.toContain('EPIPE');
    expect(status).toBe(2);
  });

  it('ends crs replay whose output cannot be written (a full disk) with one line and the status of an I/O error, 2', () => {
    // Until 2026-12-07 it crashed with a stack trace and exited 1, the status of a refused line.
    const full = openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, [CLI, 'replay', 'test/fixtures/sample-timeline.ndjson'], {
      stdio: ['ignore', full, 'pipe'],
      encoding: 'utf8',
    });
    closeSync(full);
    expect([r.status, r.stderr]).toEqual([
      2,
      'crs replay: cannot write standard output: ENOSPC: no space left on device, write\n',
    ]);
  });
});

describe('crs outbox retry --sink', () => {
  it('refuses a lane crs serve does not have, naming the lanes, instead of retrying nothing', async () => {
    const r = await crs('outbox', 'retry', '--all', '--sink', 'webhok', '--data', tmpdir());
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--sink must be one of stdout, pager, board, webhook (got "webhok")');
  });
});

describe('crs silence without --by', () => {
  it('asks for the name of whoever silences, not of someone acknowledging', async () => {
    const r = await crs('silence', 'create', '--patient', 'P-1', '--minutes', '5', '--reason', 'x', '--data', tmpdir());
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--by: is required (your name: the audit trail records who did it)');
    expect(r.stderr).not.toContain('acknowledging');
  });
});

describe('crs replay --escalations --until', () => {
  it('refuses a time without a zone offset (it would be read in the machine zone) and a date alone', async () => {
    for (const until of ['2026-11-26T12:00:00', '2026-11-26']) {
      const r = await crs('replay', 'test/fixtures/sample-timeline.ndjson', '--escalations', '--until', until);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--until takes an RFC 3339 time with a zone offset');
    }
    const ok = await crs(
      'replay',
      'test/fixtures/sample-timeline.ndjson',
      '--escalations',
      '--until',
      '2026-11-26T18:00:00Z',
    );
    expect(ok.status).toBe(0);
  });
});

describe('crs simulate --start', () => {
  it('refuses a time without a zone offset, so the same --seed and --start give the same messages anywhere', async () => {
    const r = await crs('simulate', '--ndjson', '--start', '2026-11-26T06:00:00');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--start must be an RFC 3339 time with a zone offset');
    // A process of its own (bin/crs.js, as simulate's): in the machine zone given to it.
    const a = spawnSync(process.execPath, [CLI, 'simulate', '--ndjson', '--start', '2026-11-26T06:00:00Z'], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'America/New_York' },
    });
    expect(a.status).toBe(0);
    expect(a.stdout).toContain('"observedAt":"2026-11-26T06:00:00Z"');
  });
});

describe('pinned by a mutation run', () => {
  it('crs silence list --all says when a silence was ended, and by whom', () => {
    const at = Date.parse('2026-12-02T09:00:00Z');
    const line = silenceTable(
      [
        {
          silenceId: 'sil_1',
          scope: { team: 'icu' },
          from: at,
          until: at + 60 * 60_000,
          createdBy: 'Dr Lee',
          reason: 'drill',
          endedAt: at + 10 * 60_000,
          endedBy: 'Nurse Bea',
        },
      ],
      'UTC',
    ).split('\n')[1];
    expect(line).toMatch(/team icu .* Dr Lee: drill \(ended 2026-12-02 09:10 UTC by Nurse Bea\)$/);
  });
});

/**
 * For a command run in process: what it writes to standard error, the SIGTERM handler it adds, and a stop as
 * SIGTERM would do it, without sending a signal to the test's own process.
 */
function inProcess() {
  const written: string[] = [];
  /** The lines written while the command had no SIGTERM handler of its own (a signal then killed it). */
  const unguarded: string[] = [];
  const before = { int: process.listeners('SIGINT'), term: process.listeners('SIGTERM') };
  const termHandler = () => process.listeners('SIGTERM').find((l) => !before.term.includes(l));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    if (!termHandler()) unguarded.push(String(chunk));
    return true;
  });
  return {
    stderr: () => written.join(''),
    unguarded: () => unguarded.join(''),
    termHandler,
    stop() {
      const term = termHandler()!;
      for (const l of process.listeners('SIGINT')) if (!before.int.includes(l)) process.removeListener('SIGINT', l);
      process.removeListener('SIGTERM', term);
      (term as (s: string) => void)('SIGTERM');
    },
    restore: () => write.mockRestore(),
  };
}

describe('crs mllp-bridge on a port already taken', () => {
  it('says so and exits 2, as crs serve does (it crashed with a stack trace)', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-busy-'));
    try {
      writeFileSync(join(dir, 'token'), 'tok-123\n');
      const port = (busy.address() as AddressInfo).port;
      const r = await crs(
        'mllp-bridge',
        '--listen',
        String(port),
        '--to',
        'http://127.0.0.1:9',
        '--token-file',
        join(dir, 'token'),
        '--spool',
        join(dir, 'spool'),
      );
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`crs mllp-bridge: port ${port} is already in use`);
      expect(r.stderr).not.toContain('node:net');
    } finally {
      busy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs mllp-bridge options, pinned by a mutation run', () => {
  type Started = import('#hosts/mllp-bridge/mllp-bridge.ts').BridgeOptions;

  /** Runs the command in-process with startBridge replaced: what the bridge was started with, or the exit code. */
  async function bridgeWith(
    args: string[],
    tokenText = 'tok-123\n',
    bridge: { madePrivate?: string[]; waiting?: number; close?: () => Promise<void> } = {},
  ) {
    const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-cli-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, tokenText);
    const started: Started[] = [];
    vi.resetModules();
    vi.doMock('#hosts/mllp-bridge/mllp-bridge.ts', () => ({
      startBridge: async (o: Started) => {
        started.push(o);
        return {
          port: 4321,
          spool: { madePrivate: bridge.madePrivate ?? [], counts: () => ({ waiting: bridge.waiting ?? 0 }) },
          close: bridge.close ?? (async () => {}),
        };
      },
    }));
    const cmd = inProcess();
    try {
      const { mllpBridgeCommand } = await import('#cli/mllp-bridge.ts');
      const run = mllpBridgeCommand(args.map((a) => (a === 'TOKEN' ? tokenFile : a)));
      const code = await Promise.race([run, new Promise<'running'>((r) => setTimeout(() => r('running'), 0))]);
      if (code !== 'running') return { code, started, stderr: cmd.stderr(), unguarded: cmd.unguarded() };
      await vi.waitFor(() => expect(started).toHaveLength(1), { timeout: 10_000 });
      cmd.stop();
      return { code: await run, started, stderr: cmd.stderr(), unguarded: cmd.unguarded() };
    } finally {
      cmd.restore();
      vi.doUnmock('#hosts/mllp-bridge/mllp-bridge.ts');
      vi.resetModules(); // the commands imported meanwhile hold the stand-in: crs (main) imports them afresh
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('listens for SIGTERM before it prints the line scripts wait for (a signal then stops it cleanly)', async () => {
    // Until 2026-12-06 the handlers came after it: a SIGTERM sent as soon as it was read killed the bridge.
    const r = await bridgeWith(['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('crs mllp-bridge: MLLP on 127.0.0.1:4321');
    expect(r.unguarded).not.toContain('MLLP on');
  });

  it('starts on 127.0.0.1 by default, posting to URL/v1/hl7v2 with the token as written less its line end', async () => {
    const r = await bridgeWith(['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN']);
    expect(r.code).toBe(0);
    expect(r.started).toEqual([
      expect.objectContaining({
        listenPort: 0,
        listenHost: '127.0.0.1',
        url: 'https://crs.example/v1/hl7v2',
        token: 'tok-123',
        spoolDir: '.crs/bridge',
        ackWaitMs: 10_000,
      }),
    ]);
  });

  it('posts to URL/v1/hl7v2 under the path the URL has (a stage, a proxy prefix), or to the /v1/hl7v2 it names', async () => {
    for (const [to, url] of [
      ['https://crs.example/prod', 'https://crs.example/prod/v1/hl7v2'],
      ['https://crs.example/crs/', 'https://crs.example/crs/v1/hl7v2'],
      ['https://crs.example/prod/v1/hl7v2', 'https://crs.example/prod/v1/hl7v2'],
      ['https://crs.example/', 'https://crs.example/v1/hl7v2'],
    ]) {
      const r = await bridgeWith(['--listen', '0', '--to', to!, '--token-file', 'TOKEN']);
      expect(
        r.started.map((s) => s.url),
        to,
      ).toEqual([url]);
    }
  });

  it.each([
    [
      ['--listen', '65536', '--to', 'https://crs.example', '--token-file', 'TOKEN'],
      '--listen must be a whole number from 0 to 65535',
    ],
    [
      ['--listen=-1', '--to', 'https://crs.example', '--token-file', 'TOKEN'],
      '--listen must be a whole number from 0 to 65535',
    ],
    [['--to', 'https://crs.example', '--token-file', 'TOKEN'], '--listen PORT (0-65535)'],
    [['--listen', '0', '--to', 'ftp://crs.example', '--token-file', 'TOKEN'], '--to must be an http or https URL'],
    [['--listen', '0', '--to', 'https://gw:secret@crs.example', '--token-file', 'TOKEN'], '--to must carry no user'],
    [['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN', '--ack-wait=-5'], '--ack-wait'],
  ])('refuses %j with its usage (exit 2), starting nothing', async (args, text) => {
    const r = await bridgeWith(args);
    expect([r.code, r.started]).toEqual([2, []]);
    expect(r.stderr).toContain(text);
  });

  it('refuses a token file holding only blanks, starting nothing', async () => {
    const r = await bridgeWith(['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN'], ' \n');
    expect([r.code, r.started]).toEqual([2, []]);
    expect(r.stderr).toContain('the token file is empty');
  });

  it('refuses a token file that holds more than the token (crs token issue output saved whole), starting nothing', async () => {
    // Started with it, the bridge ACKed every monitor's message "held" and then failed each forward before it left
    // (an Authorization header cannot carry a line break), logging "link down" for ever: nothing reached grading.
    const issued =
      'token:    crs_l8Gcrm8aNk57R5xATNdaL4dkF1A89jjFMJoERh6WzcI\ntokenId:  467fd4d1-afce-4be0-ab81-0be138f1254d\ndevice:   gw1\n';
    // Each says what is wrong with it (pinned by a mutation run, 2026-12-05).
    for (const [text, why] of [
      [issued, '3 lines'],
      ['crs_abc\ncrs_def\n', '2 lines'],
      ['crs_abc def\n', 'a space'],
      ['crs_abc\tdef\n', 'a space'],
      ['crs_abc\u00e9\n', 'a character outside printable ASCII'],
      ['crs_abc\u007f\n', 'a character outside printable ASCII'],
    ]) {
      const r = await bridgeWith(['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN'], text);
      expect([r.code, r.started], JSON.stringify(text)).toEqual([2, []]);
      expect(r.stderr).toContain('--token-file must hold the token alone');
      expect(r.stderr, JSON.stringify(text)).toContain(`(it has ${why})`);
    }
  });

  it('takes the edges: port 65535, --ack-wait 0 (AA from the spool at once)', async () => {
    const r = await bridgeWith([
      '--listen',
      '65535',
      '--to',
      'https://crs.example',
      '--token-file',
      'TOKEN',
      '--ack-wait',
      '0',
    ]);
    expect(r.code).toBe(0);
    expect(r.started).toEqual([expect.objectContaining({ listenPort: 65535, ackWaitMs: 0 })]);
  });

  it('refuses an --ack-wait that is no number, starting nothing', async () => {
    const r = await bridgeWith([
      '--listen',
      '0',
      '--to',
      'https://crs.example',
      '--token-file',
      'TOKEN',
      '--ack-wait',
      'soon',
    ]);
    expect([r.code, r.started]).toEqual([2, []]);
    expect(r.stderr).toContain('--ack-wait must be a whole number from 0 to 600000');
  });

  it('says where it forwards without the query (a key there stays out of the log), what it made private and what waits', async () => {
    const r = await bridgeWith(
      ['--listen', '0', '--to', 'https://crs.example/v1/hl7v2?code=KEY-SECRET', '--token-file', 'TOKEN'],
      'tok-123\n',
      { madePrivate: ['spool was 0755, now 0700'], waiting: 3 },
    );
    expect(r.code).toBe(0);
    expect(r.started[0]!.url).toBe('https://crs.example/v1/hl7v2?code=KEY-SECRET');
    expect(r.stderr).toContain('made private (others could read patient data): spool was 0755, now 0700');
    expect(r.stderr).toContain('forwarding to https://crs.example/v1/hl7v2; spool .crs/bridge (3 waiting)');
    expect(r.stderr).not.toContain('KEY-SECRET');
    expect(r.stderr).not.toContain('tok-123');
  });

  it('stops cleanly on SIGINT (Ctrl-C) as on SIGTERM: exit 0, saying so', async () => {
    vi.resetModules();
    const closed: string[] = [];
    vi.doMock('#hosts/mllp-bridge/mllp-bridge.ts', () => ({
      startBridge: async () => ({
        port: 4321,
        spool: { madePrivate: [], counts: () => ({ waiting: 0 }) },
        close: async () => void closed.push('closed'),
      }),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-cli-'));
    writeFileSync(join(dir, 'token'), 'tok\n');
    const cmd = inProcess();
    const before = process.listeners('SIGINT');
    try {
      const { mllpBridgeCommand } = await import('#cli/mllp-bridge.ts');
      const run = mllpBridgeCommand([
        '--listen',
        '0',
        '--to',
        'https://crs.example',
        '--token-file',
        join(dir, 'token'),
      ]);
      await vi.waitFor(() => expect(cmd.termHandler()).toBeDefined(), { timeout: 10_000 });
      const int = process.listeners('SIGINT').find((l) => !before.includes(l));
      expect(int).toBeDefined();
      process.removeListener('SIGINT', int!);
      process.removeListener('SIGTERM', cmd.termHandler()!);
      (int as (s: string) => void)('SIGINT');
      expect(await run).toBe(0);
      expect(closed).toEqual(['closed']);
      expect(cmd.stderr()).toContain('crs mllp-bridge: SIGINT: stopping (the spool keeps what is not delivered)');
    } finally {
      cmd.restore();
      vi.doUnmock('#hosts/mllp-bridge/mllp-bridge.ts');
      vi.resetModules(); // the commands imported meanwhile hold the stand-in: crs (main) imports them afresh
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 when the bridge fails to close on SIGTERM', async () => {
    const r = await bridgeWith(['--listen', '0', '--to', 'https://crs.example', '--token-file', 'TOKEN'], 'tok\n', {
      close: async () => {
        throw new Error('spool locked');
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SIGTERM: stopping (the spool keeps what is not delivered)');
  });

  it('warns of plain http to another host only, not to this machine', async () => {
    const warning = 'patient data would cross the network unencrypted';
    const args = (to: string) => ['--listen', '0', '--to', to, '--token-file', 'TOKEN'];
    expect((await bridgeWith(args('http://crs.example:8080'))).stderr).toContain(warning);
    for (const to of ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'https://crs.example']) {
      const r = await bridgeWith(args(to));
      expect([r.code, r.stderr.includes(warning)]).toEqual([0, false]);
    }
  });
});

describe('crs usage errors and exit codes, pinned by a mutation run', () => {
  /** `crs ARGS`, DIR a scratch directory (a command that starts a server instead of refusing fails after 8 s). */
  const crsIn = async (...args: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-usage-'));
    try {
      return await crs(...args.map((a) => a.replace('DIR', dir)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it.each([
    [['serve', '--data', 'DIR', '--port', '0', '--backend'], '--backend must be aws or embedded (got "")'],
    [['serve', '--data', 'DIR', '--port', '0', '--backend', 'gcp'], '--backend must be aws or embedded (got "gcp")'],
    [['serve', '--data', 'DIR', '--port', '0', '--backend=local'], '--backend must be aws or embedded (got "local")'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['replay', 'test/fixtures/sample-timeline.ndjson', '--until', '2026-11-26T18:00:00Z'], 'only with --escalations'],
    [['replay', '-', '--format', 'hl7v2', '--hl7-zone', 'Mars/Base'], '--hl7-zone "Mars/Base" is not an IANA zone'],
    [['replay', '-', '--format', 'hl7v2', '--escalations'], '--escalations takes JSON'],
  ])('crs %o exits 2 (usage), naming the mistake', async (args, message) => {
    const r = await crsIn(...args);
    expect(r.status).toBe(2);
    // crs replay says its mistakes with its own usage; crs (the command's name itself, --backend) with the summary
    expect(r.stderr).toMatch(args[0] === 'replay' ? /^crs replay: / : /^crs: /);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage:');
  });

  it('crs alone prints the usage and exits 2; crs help, --help and -h exit 0', async () => {
    // A process of its own: the exit status bin/crs.js sets from what main returns.
    const bare = spawnSync(process.execPath, [CLI], { encoding: 'utf8' });
    expect(bare.status).toBe(2);
    expect(bare.stdout).toMatch(/^usage:/);
    expect((await crsIn('help')).status).toBe(0);
    // -h as every command takes it (it was "unknown command "-h"", exit 2).
    for (const flag of ['--help', '-h']) {
      const r = await crsIn(flag);
      expect(r.status, flag).toBe(0);
      expect(r.stdout, flag).toMatch(/^usage:/);
      expect(r.stderr, flag).toBe('');
    }
  });

  it('crs serve --backend embedded is the embedded server, its options as without it', async () => {
    const r = await crsIn('serve', '--backend', 'embedded', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('crs serve [--port N]');
  });

  it('crs replay -h and crs schema -h print their own usage and exit 0', async () => {
    for (const command of ['replay', 'schema']) {
      const r = await crsIn(command, '-h');
      expect(r.status, command).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage:\\n  crs ${command} `));
      expect(r.stdout, command).not.toContain('crs serve');
    }
  });
});

describe('crs outbox on the embedded backend, pinned by a mutation run', () => {
  /** The command in this process, its output captured (a server it talks to may run in this process too). */
  const outbox = (...args: string[]) =>
    captured(() =>
      outboxCommand(args, () => {
        throw new Error('no configuration is read on the embedded backend');
      }),
    );
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-outbox-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A data directory with a database holding two parked records: one of the webhook lane, one of the pager's. */
  function parkedDatabase() {
    const db = openDataDir(dir);
    const at = '2026-12-02T09:00:00Z';
    for (const [seq, item, patient] of [
      [1, 'crs|P-1|n1', 'P-1'],
      [2, 'crs|P-2|#2|icu#1#1', 'P-2'],
    ] as const) {
      db.prepare('INSERT INTO outbox (seq, kind, item_id, patient_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        seq,
        seq === 1 ? 'notification' : 'page',
        item,
        patient,
        '{}',
        at,
      );
    }
    db.prepare('INSERT INTO parked VALUES (?, ?, ?, ?, ?, ?)').run(
      'crs|P-1|n1',
      'webhook',
      1,
      'webhook answered HTTP 422',
      3,
      at,
    );
    db.prepare('INSERT INTO parked VALUES (?, ?, ?, ?, ?, ?)').run('crs|P-2|#2|icu#1#1', 'pager', 2, 'refused', 3, at);
    const parked = () => db.prepare('SELECT item_id AS id, sink FROM parked ORDER BY seq').all();
    return { parked, close: () => db.close() };
  }

  it.each([
    [['list', 'crs|P-1|n1'], 'list takes no ids'],
    [['list', '--all'], 'list takes no ids'],
    [['retry'], 'retry takes either --all or the ids to retry'],
    [['retry', '--all', 'crs|P-1|n1'], 'retry takes either --all or the ids to retry'],
    [['list', '--backend', 'gcp'], '--backend must be aws or embedded'],
    [['retry', '--all', '--backend', 'aws', '--sink', 'webhook'], 'on AWS the lanes that park are sns'],
  ])('refuses %o with exit 2 and its usage, changing nothing', async (args, message) => {
    const db = parkedDatabase();
    try {
      const r = await outbox(...args, '--data', dir);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`crs outbox: ${message}`);
      expect(r.err).toContain('usage:');
      expect(db.parked()).toHaveLength(2);
    } finally {
      db.close();
    }
  });

  it('with no server running, lists from the database and puts back only the lane and records asked for', async () => {
    const db = parkedDatabase();
    try {
      const listed = await outbox('list', '--json', '--data', dir);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.out).parked).toEqual([
        {
          id: 'crs|P-1|n1',
          lane: 'webhook',
          patientId: 'P-1',
          kind: 'notification',
          reason: 'webhook answered HTTP 422',
          attempts: 3,
          parkedAt: '2026-12-02T09:00:00Z',
        },
        expect.objectContaining({ id: 'crs|P-2|#2|icu#1#1', lane: 'pager', kind: 'page' }),
      ]);
      const unknown = await outbox('retry', 'crs|P-9|n9', '--data', dir);
      expect(unknown.code).toBe(1);
      expect(unknown.out).toMatch(/^0 parked record\(s\) put back/);
      expect(unknown.err).toContain('crs outbox: nothing parked as crs|P-9|n9');
      // One id parked and one not: the first is put back, the second said, and the exit status says so (as on AWS).
      const mixed = await outbox('retry', 'crs|P-1|n1', 'crs|P-9|n9', '--sink', 'webhook', '--data', dir);
      expect(mixed.code).toBe(1);
      expect(mixed.out).toMatch(/^1 parked record\(s\) put back in their lanes; no crs serve is running/);
      expect(mixed.err).toContain('crs outbox: nothing parked as crs|P-9|n9 in lane webhook');
      expect(mixed.err).not.toContain('crs|P-1|n1');
      expect(db.parked()).toEqual([{ id: 'crs|P-2|#2|icu#1#1', sink: 'pager' }]);
      const none = await outbox('retry', '--all', '--sink', 'webhook', '--data', dir);
      expect(none.code).toBe(0);
    } finally {
      db.close();
    }
  });

  it('reads the database when the server that left serve.json is gone, and refuses while one holds the directory without answering', async () => {
    const db = parkedDatabase();
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise((r) => gone.close(r));
    writeFileSync(join(dir, 'serve.json'), JSON.stringify({ url }));
    writeFileSync(join(dir, 'board.key'), 'k'.repeat(43));
    try {
      const r = await outbox('list', '--json', '--data', dir);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out).parked).toHaveLength(2);
      const lock = lockDataDir(dir);
      try {
        const held = await outbox('retry', '--all', '--data', dir);
        expect(held.code).toBe(1);
        expect(held.err).toContain(
          `${dir} is in use by another process (a crs serve that does not answer, or a crs command working on it); try again, or stop it first`,
        );
        expect(db.parked()).toHaveLength(2);
      } finally {
        lock.release();
      }
    } finally {
      db.close();
    }
  });

  it("through the running server: its parked records and alerts, a retry's lane and records, and the exit status", async () => {
    const calls: { method: string; path: string; body: string }[] = [];
    let retried = 1;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        calls.push({ method: req.method!, path: req.url!, body });
        res.setHeader('content-type', 'application/json');
        if (req.url === '/api/outbox/retry') return void res.end(JSON.stringify({ retried }));
        res.end(
          JSON.stringify({
            parked: [
              {
                itemId: 'crs|P-1|n1',
                sink: 'webhook',
                patientId: 'P-1',
                kind: 'notification',
                reason: 'webhook answered HTTP 422',
                attempts: 3,
                parkedAt: '2026-12-02T09:00:00Z',
              },
            ],
            lanes: [
              { sink: 'pager', backlog: 0, oldestAt: null, parked: 0, retrying: false, lastError: null },
              {
                sink: 'webhook',
                backlog: 2,
                oldestAt: '2026-12-02T09:05:00.000Z',
                parked: 1,
                retrying: true,
                lastError: 'webhook answered HTTP 503',
              },
            ],
            alerts: [{ text: 'lane webhook parked 1 record' }],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const serving = pretendServeDir(dir, (server.address() as AddressInfo).port);
    try {
      const listed = await outbox('list', '--data', dir);
      expect(listed.code).toBe(0);
      // Each lane's backlog, as its usage and docs/conservation.md say (until 2026-12-06 only --json had them).
      expect(listed.out).toBe(
        '2026-12-02T09:00:00Z  webhook  notification crs|P-1|n1  patient P-1  (3 refusals: webhook answered HTTP 422)\n' +
          'lane pager    backlog 0, parked 0\n' +
          'lane webhook  backlog 2 (oldest 2026-12-02T09:05:00.000Z), parked 1, retrying (webhook answered HTTP 503)\n' +
          'ALERT lane webhook parked 1 record\n',
      );
      // --json is one document, the lanes in it and never a line of their own: pinned by a mutation run.
      const json = await outbox('list', '--json', '--data', dir);
      expect(JSON.parse(json.out).lanes.map((l: { sink: string }) => l.sink)).toEqual(['pager', 'webhook']);
      calls.length = 0;
      expect((await outbox('retry', 'crs|P-1|n1', '--sink', 'webhook', '--data', dir)).code).toBe(0);
      expect(calls.filter((c) => c.method === 'POST').map((c) => JSON.parse(c.body))).toEqual([
        { sink: 'webhook', itemId: 'crs|P-1|n1' },
      ]);
      retried = 0;
      const none = await outbox('retry', 'crs|P-9|n9', '--data', dir);
      expect(none.code).toBe(1);
      expect(none.out).toBe('0 parked record(s) put back in their lanes\n');
      expect(none.err).toContain('crs outbox: nothing parked as crs|P-9|n9');
      expect((await outbox('retry', '--all', '--data', dir)).code).toBe(0);
    } finally {
      serving.release();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('crs board-link', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crs-board-link-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the running crs serve's board link with its key on stdout, at its --public-url when it has one", async () => {
    const serving = pretendServeDir(dir, 4321);
    try {
      // A serve.json of a server from before 2026-12-06 names no board address: its own URL's.
      expect(await crs('board-link', '--data', dir)).toEqual({
        status: 0,
        stdout: `http://127.0.0.1:4321/?key=${'k'.repeat(43)}\n`,
        stderr: '',
      });
      writeFileSync(
        join(dir, 'serve.json'),
        JSON.stringify({ url: 'http://127.0.0.1:4321', board: 'https://crs.example.org/wards/', pid: process.pid }),
      );
      expect((await crs('board-link', '--data', dir)).stdout).toBe(
        `https://crs.example.org/wards/?key=${'k'.repeat(43)}\n`,
      );
    } finally {
      serving.release();
    }
    // The server gone (its lock free), its serve.json left behind: no link to an address nothing answers at.
    const gone = await crs('board-link', '--data', dir);
    expect(gone).toEqual({
      status: 1,
      stdout: '',
      stderr: `crs board-link: no crs serve is running on ${dir}: the link is at its address, known once it runs\n`,
    });
  });

  it('exits 2 on a data directory with no board key', async () => {
    expect(await crs('board-link', '--data', dir)).toEqual({
      status: 2,
      stdout: '',
      stderr: `crs board-link: no board key in ${dir} (no board.key): give the data directory of crs serve with --data DIR\n`,
    });
  });
});

describe('crs serve --backend aws, the stack it synthesizes', () => {
  /** `crs serve --backend aws ARGS` in this process up to the stack's synthesis: what the stack was asked with. */
  async function untilSynthesis(args: string[], configOf?: (overrides: unknown, scheme?: string) => unknown) {
    const asked: unknown[] = [];
    const { serveAwsCommand } = await import('#cli/serve-aws.ts');
    const main = await import('#cli/main.ts');
    const cmd = inProcess();
    const stdout = process.stdout.write;
    for (const k of ['AWS_REGION', 'AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
      vi.stubEnv(k, process.env[k]);
    vi.stubEnv('CRS_INGEST_TOKEN', '');
    try {
      const code = await serveAwsCommand(
        ['--backend', 'aws', '--endpoint', 'http://127.0.0.1:1', '--port', '0', ...args],
        (overrides, scheme) => {
          const config = main.configOf(overrides, scheme);
          configOf?.(overrides, scheme);
          return config;
        },
        async (o) => {
          asked.push(o);
          throw new Error('synthesis stops here');
        },
      );
      expect(code).toBe(1);
      expect(cmd.stderr()).toContain('crs serve: synthesis stops here');
      return asked;
    } finally {
      process.stdout.write = stdout;
      cmd.restore();
      vi.unstubAllEnvs();
    }
  }

  it('synthesizes the stack with --hl7-zone, --hl7-patient-authority and --fhir-patient-system as its context (the ingest function reads them)', async () => {
    const asked = await untilSynthesis([
      '--hl7-zone',
      'Europe/Paris',
      '--hl7-patient-authority',
      'HOSP',
      '--fhir-patient-system',
      'urn:oid:1.2.3',
    ]);
    expect(asked).toEqual([
      expect.objectContaining({
        hl7Zone: 'Europe/Paris',
        hl7PatientAuthority: 'HOSP',
        fhirPatientSystem: 'urn:oid:1.2.3',
      }),
    ]);
  });

  it('synthesizes the stack with the map of --fhir-drug-codes FILE as its context (a bad map is refused before: test/unit/cli-flags.test.ts)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-serve-aws-drugs-'));
    try {
      const map = [{ system: 'urn:oid:1.2.3', code: '40012', drug: 'norepinephrine' }];
      const file = join(dir, 'codes.json');
      writeFileSync(file, JSON.stringify(map));
      expect(await untilSynthesis(['--fhir-drug-codes', file])).toEqual([
        expect.objectContaining({ fhirDrugCodes: map }),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The file was read twice until 2026-12-06 (the configuration checked, then the stack's overrides): replaced in
  // between, the stack was given a configuration never checked.
  it('reads --config once: the stack is given the overrides that were checked, the file replaced after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-serve-aws-config-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ feverThresholdC: 38.5 }));
      const checked: unknown[] = [];
      const asked = await untilSynthesis(['--config', file], (overrides) => {
        checked.push(overrides);
        writeFileSync(file, JSON.stringify({ feverThresholdC: 39.5 }));
      });
      expect(checked).toEqual([{ feverThresholdC: 38.5 }]);
      expect(asked).toEqual([expect.objectContaining({ gradingOverrides: { feverThresholdC: 38.5 } })]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve --backend aws, once up', () => {
  it('listens for SIGTERM before it prints the lines scripts wait for: its resources, its outputs file, where it listens', async () => {
    // Until 2026-12-06 (later) the resources line and the outputs file's were printed before the handlers: a script
    // that read one and stopped the host met the default action (the host killed, its work in flight cut off).
    const dir = mkdtempSync(join(tmpdir(), 'crs-serve-aws-up-'));
    const fn = { environment: {} };
    vi.resetModules();
    vi.doMock('#hosts/aws-emulator/host.ts', () => ({
      // A host that is up, with nothing provisioned: the command prints its lines and waits for a signal.
      startAwsHost: async () => ({
        url: 'http://127.0.0.1:1',
        dummyCredentials: {},
        provisioned: {
          gradeSource: { queue: { url: 'http://q' } },
          notifySource: {},
          queues: [],
          tables: [],
          teamQueues: [],
          routes: ['/v1/messages'],
          functions: { ingest: fn, notify: fn, ack: fn },
        },
        close: async () => {},
        // Two grade changes printed, four pages the teams received (printed too with --page-lines).
        pages: () => ({ printed: 2, pages: 4, deliveries: { hematology: 2, icu: 1, neurology: 1 } }),
      }),
    }));
    vi.stubEnv('CRS_INGEST_TOKEN', '');
    const stdout = process.stdout.write;
    const cmd = inProcess();
    try {
      const { serveAwsCommand } = await import('#cli/serve-aws.ts');
      const { configOf } = await import('#cli/main.ts');
      const args = ['--backend', 'aws', '--endpoint', 'http://127.0.0.1:1', '--port', '0'];
      const run = serveAwsCommand([...args, '--outputs', join(dir, 'outputs.json')], configOf, async () => {
        throw new Error('the stand-in host synthesizes nothing');
      });
      let code: number | undefined;
      void run.then((c) => {
        code = c;
      });
      // Its last line printed: it waits for the signal.
      await vi.waitFor(
        () => {
          if (code === undefined && !cmd.stderr().includes('grade changes go to standard output'))
            throw new Error('neither ended nor running yet');
        },
        { timeout: 10_000, interval: 5 },
      );
      expect(code, cmd.stderr()).toBeUndefined();
      cmd.stop();
      expect(await run).toBe(0);
      expect(cmd.stderr()).toContain('crs serve: resources {');
      expect(cmd.stderr()).toContain("crs serve: the run's names are in");
      expect(cmd.unguarded()).not.toMatch(/resources|names are in|listening on/);
      // Its last line counts grade changes and pages apart (until 2026-12-06 "2 pages printed" for the grade changes).
      expect(cmd.stderr()).toContain(
        'crs serve: stopped; 2 grade changes printed, 4 pages received; deliveries per team {"hematology":2,"icu":1,"neurology":1}',
      );
    } finally {
      process.stdout.write = stdout;
      cmd.restore();
      vi.unstubAllEnvs();
      vi.doUnmock('#hosts/aws-emulator/host.ts');
      vi.resetModules(); // the commands imported meanwhile hold the stand-in: crs (main) imports them afresh
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve --backend aws --teardown', () => {
  it('names the region it deleted in, on an emulator too: a run made with --region is not found without it', async () => {
    // Until 2026-12-06 it said "deleted run P on endpoint URL": a teardown without the run's --region (us-east-1 by
    // default) deleted nothing of a run in eu-west-1, and said the same.
    vi.resetModules();
    vi.doMock('#hosts/aws-emulator/host.ts', () => ({
      teardownAwsHost: async () => ({ queues: [], teamQueues: [], tables: [], topics: [], secrets: [], alarms: [] }),
    }));
    const cmd = inProcess();
    try {
      const { serveAwsCommand } = await import('#cli/serve-aws.ts');
      const { configOf } = await import('#cli/main.ts');
      const args = ['--backend', 'aws', '--teardown', '--endpoint', 'http://127.0.0.1:1', '--region', 'eu-west-1'];
      expect(await serveAwsCommand(args, configOf, async () => ({}) as never)).toBe(0);
      expect(cmd.stderr()).toContain(
        'crs serve: deleted run crs-local on endpoint http://127.0.0.1:1 (region eu-west-1):',
      );
    } finally {
      cmd.restore();
      vi.doUnmock('#hosts/aws-emulator/host.ts');
      vi.resetModules();
    }
  });

  it('says that nothing of the run was found there, and exits 1, when there is none to delete', async () => {
    vi.resetModules();
    vi.doMock('#hosts/aws-emulator/host.ts', () => ({ teardownAwsHost: async () => undefined }));
    const cmd = inProcess();
    try {
      const { serveAwsCommand } = await import('#cli/serve-aws.ts');
      const { configOf } = await import('#cli/main.ts');
      const args = ['--backend', 'aws', '--teardown', '--endpoint', 'http://127.0.0.1:1', '--prefix', 'walk'];
      expect(await serveAwsCommand(args, configOf, async () => ({}) as never)).toBe(1);
      expect(cmd.stderr()).toContain('crs serve: nothing of run walk on endpoint http://127.0.0.1:1 (region ');
      expect(cmd.stderr()).toContain('nothing deleted (was the run made with another --prefix or --region?)');
      expect(cmd.stderr()).not.toContain('deleted run');
    } finally {
      cmd.restore();
      vi.doUnmock('#hosts/aws-emulator/host.ts');
      vi.resetModules();
    }
  });
});

describe('crs serve and crs start options, pinned by a mutation run', () => {
  type Started = import('#hosts/embedded/embedded.ts').EmbeddedOptions;

  /**
   * Runs the command in-process with startEmbeddedServer replaced (`busy`: the first starts fail as a port in use
   * would): what the server was started with, and the exit code (a running command stopped as SIGTERM would).
   */
  async function serveWith(command: 'serve' | 'start', args: string[], busy = 0) {
    const started: Started[] = [];
    vi.resetModules();
    vi.doMock('#hosts/embedded/embedded.ts', async (original) => ({
      ...(await original<typeof import('#hosts/embedded/embedded.ts')>()),
      startEmbeddedServer: async (o: Started) => {
        started.push(o);
        // As Node's own: the error carries the port it could not take.
        if (started.length <= busy)
          throw Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE', port: o.port });
        return {
          url: 'http://127.0.0.1:1',
          boardUrl: 'http://127.0.0.1:1/?key=THE-BOARD-KEY',
          port: 1,
          ...(o.mllpPort !== undefined ? { mllpPort: 2 } : {}),
          dataDir: o.dataDir,
          close: async () => {},
        };
      },
    }));
    vi.doMock('#cli/simulate.ts', async (original) => ({
      ...(await original<typeof import('#cli/simulate.ts')>()),
      runSimulation: async () => {},
    }));
    vi.stubEnv('CRS_INGEST_TOKEN', '');
    const cmd = inProcess();
    try {
      const { serveCommand, startCommand } = await import('#cli/serve.ts');
      const { loadConfig } = await import('#cli/main.ts');
      const run = (command === 'serve' ? serveCommand : startCommand)(args, loadConfig);
      // Until it ends (refused, or failed to start) or runs: a server started and its signal handlers in place.
      let code: number | undefined;
      void run.then((c) => {
        code = c;
      });
      await vi.waitFor(
        () => {
          if (code === undefined && !cmd.termHandler()) throw new Error('neither ended nor running yet');
        },
        { timeout: 10_000, interval: 5 },
      );
      if (code !== undefined) return { code, started, stderr: cmd.stderr(), unguarded: cmd.unguarded() };
      cmd.stop();
      return { code: await run, started, stderr: cmd.stderr(), unguarded: cmd.unguarded() };
    } finally {
      cmd.restore();
      vi.unstubAllEnvs();
      vi.doUnmock('#hosts/embedded/embedded.ts');
      vi.doUnmock('#cli/simulate.ts');
      vi.resetModules(); // the commands imported meanwhile hold the stand-ins: crs (main) imports them afresh
    }
  }

  it('says it listens on every address when --host is a wildcard, not the loopback URL it prints for links', async () => {
    // The stand-in answers as the real server does for --host 0.0.0.0: its URL (for links and crs silence) is
    // http://127.0.0.1:PORT, which the listening line repeated; an operator read "127.0.0.1" and believed the
    // server, and its MLLP listener (no credentials), unreachable from other machines.
    const r = await serveWith('serve', ['--host', '0.0.0.0', '--data', '/tmp/crs-nowhere']);
    expect(r.code).toBe(0);
    expect(r.started[0]).toMatchObject({ host: '0.0.0.0' });
    expect(r.stderr).toContain(
      'crs serve: listening on every address (--host 0.0.0.0), port 1; here http://127.0.0.1:1',
    );
    expect(r.stderr).not.toContain('crs serve: listening on http://127.0.0.1:1');
  });

  it('warns of plain HTTP on a network address unless a TLS proxy is named (an https --public-url, --trust-proxy)', async () => {
    // Until 2026-12-06 a page webhook, an alert webhook, a --public-url and the bridge's --to in plain http were
    // warned of, and the server itself on --host 0.0.0.0 was not: device tokens, the board key and every patient's
    // data crossed the network in clear, silently (a hospital's security review, run against crs serve).
    const warning =
      'crs serve: warning: plain HTTP on a network address (--host HOST): device tokens, the board key and patient data would cross the network unencrypted; put it behind a TLS reverse proxy (--public-url https://..., --trust-proxy ADDR)';
    for (const host of ['0.0.0.0', '::', '10.0.0.5']) {
      const r = await serveWith('serve', ['--host', host, '--data', '/tmp/crs-nowhere']);
      expect([r.code, r.stderr], host).toEqual([0, expect.stringContaining(warning.replace('HOST', host))]);
    }
    for (const args of [
      ['--host', '127.0.0.1'],
      ['--host', 'localhost'],
      ['--host', '::1'],
      [],
      ['--host', '0.0.0.0', '--public-url', 'https://crs.example/'],
      ['--host', '0.0.0.0', '--trust-proxy', '10.0.0.2'],
    ]) {
      const r = await serveWith('serve', [...args, '--data', '/tmp/crs-nowhere']);
      expect([r.code, r.stderr.includes('plain HTTP on a network address')], args.join(' ')).toEqual([0, false]);
    }
  });

  it('crs serve --backend aws warns of plain HTTP on a network address before it provisions anything', async () => {
    // Until 2026-12-06 only the embedded backend warned: this one, a stand-in for API Gateway (HTTPS), took device
    // tokens and patient data in clear on --host 0.0.0.0 without a word. The stand-in host is never started here.
    const stdoutWrite = process.stdout.write;
    const run = async (args: string[]) => {
      vi.resetModules();
      vi.doMock('#hosts/aws-emulator/host.ts', async (original) => ({
        ...(await original<typeof import('#hosts/aws-emulator/host.ts')>()),
        startAwsHost: async () => {
          throw new Error('stand-in: nothing provisioned');
        },
      }));
      vi.stubEnv('CRS_INGEST_TOKEN', '');
      const cmd = inProcess();
      try {
        const { serveAwsCommand } = await import('#cli/serve-aws.ts');
        const code = await serveAwsCommand(
          args,
          () => DEFAULT_CONFIG,
          async () => ({}) as never,
        );
        return { code, stderr: cmd.stderr() };
      } finally {
        cmd.restore();
        process.stdout.write = stdoutWrite;
        vi.unstubAllEnvs();
        vi.doUnmock('#hosts/aws-emulator/host.ts');
        vi.resetModules();
      }
    };
    const warning = 'crs serve: warning: plain HTTP on a network address (--host 10.0.0.5)';
    const network = await run(['--host', '10.0.0.5']);
    expect(network).toEqual({ code: 1, stderr: expect.stringContaining(warning) });
    expect(network.stderr.indexOf(warning)).toBeLessThan(network.stderr.indexOf('provisioning run'));
    for (const host of ['127.0.0.1', '::1', 'localhost']) {
      const r = await run(['--host', host]);
      expect([r.code, r.stderr.includes('plain HTTP')], host).toEqual([1, false]);
    }
  });

  it("prints the board's link with its key only to a terminal: to a log, its address and how to get the link", async () => {
    // Until 2026-12-06 the link with the key was printed at every start: under systemd, into the journal (CWE-532),
    // where the key that opens every patient's record was kept with the logs (a security review).
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    try {
      for (const [isTTY, dir] of [
        [false, '/tmp/crs-nowhere'],
        [undefined, "/tmp/crs it's"],
      ] as const) {
        Object.defineProperty(process.stderr, 'isTTY', { value: isTTY, configurable: true });
        const r = await serveWith('serve', ['--data', dir, '--port', '0']);
        expect(r.code).toBe(0);
        expect(r.stderr).not.toContain('THE-BOARD-KEY');
        expect(r.stderr).toContain(
          `crs serve: on-call board: http://127.0.0.1:1/ (its link with the key, as this user: crs board-link --data ${dir === '/tmp/crs-nowhere' ? dir : "'/tmp/crs it'\\''s'"})`,
        );
      }
      Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
      const r = await serveWith('serve', ['--data', '/tmp/crs-nowhere', '--port', '0']);
      expect(r.stderr).toContain('crs serve: on-call board: http://127.0.0.1:1/?key=THE-BOARD-KEY\n');
      expect(r.stderr).not.toContain('crs board-link');
      // The demo (a demo key, simulated patients) prints it whatever standard error is: docs/embedded.md.
      Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
      const demo = await serveWith('start', ['--data', '/tmp/crs-nowhere', '--port', '0']);
      expect(demo.stderr).toContain('On-call board: http://127.0.0.1:1/?key=THE-BOARD-KEY\n');
    } finally {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });

  it('listens for SIGTERM before it prints the lines scripts and supervisors wait for (a signal then stops it cleanly)', async () => {
    // Until 2026-12-06 the handlers came after the board's line: a SIGTERM sent as soon as it was read met the default
    // action and killed the server, its work in flight cut off (a fresh-clone CI run caught it, exit null).
    for (const command of ['serve', 'start'] as const) {
      const r = await serveWith(command, ['--data', '/tmp/crs-nowhere', '--port', '0']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/on-call board: http/i);
      expect(r.unguarded, command).not.toMatch(/on-call board|listening on/i);
    }
    // The MLLP listener's line, before the board's, gives the port a script feeds HL7 to (and stops it after): until
    // 2026-12-06 (later) it was printed before the handlers were in place.
    const r = await serveWith('serve', ['--data', '/tmp/crs-nowhere', '--port', '0', '--mllp-port', '0']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('crs serve: HL7 v2 over MLLP on 127.0.0.1:2');
    expect(r.unguarded).not.toContain('MLLP on');
  });

  it('starts the server with the options as given', async () => {
    const r = await serveWith('serve', [
      '--port',
      '65535',
      '--data',
      '/tmp/crs-nowhere',
      '--max-patients',
      '50',
      '--hl7-zone',
      'Europe/Paris',
      '--hl7-patient-authority',
      'HOSP',
      '--fhir-patient-system',
      'http://hospital.example/mrn',
      '--public-url',
      'https://crs.example/',
      '--trust-proxy',
      '10.0.0.2',
    ]);
    expect(r.code).toBe(0);
    expect(r.started).toHaveLength(1);
    expect(r.started[0]).toMatchObject({
      port: 65535,
      dataDir: '/tmp/crs-nowhere',
      maxPatients: 50,
      publicUrl: 'https://crs.example',
      trustProxy: ['10.0.0.2'],
      hl7PatientAuthority: 'HOSP',
      fhirPatientSystem: 'http://hospital.example/mrn',
    });
    // The zone given, not just some zone: HL7 times without an offset are read in it (CET in January, CEST in July).
    const zone = r.started[0]!.hl7Zone;
    expect(zone?.name).toBe('Europe/Paris');
    expect(
      [Date.parse('2026-01-10T12:00:00Z'), Date.parse('2026-07-10T12:00:00Z')].map((t) => zone?.offsetAt(t)),
    ).toEqual([60, 120]);
    // No CRS_INGEST_TOKEN: devices need tokens of their own.
    expect(r.started[0]).not.toHaveProperty('localToken');
  });

  it.each([
    [['--port', '65536'], '--port must be a whole number from 0 to 65535 (got "65536")'],
    [['--max-patients', '0'], '--max-patients must be a whole number from 1 to 1000000'],
    [['--trust-proxy', 'proxy.example'], '--trust-proxy must be an IP address'],
    [['--mllp-device', 'gw-1'], '--mllp-device is the MLLP listener'],
    [['--public-url', 'https://crs.example/?x=1'], '--public-url takes no query or fragment'],
    // A user and password would be in every acknowledge link sent to a phone (and in the board link printed).
    [['--public-url', 'https://u:secret@crs.example/'], '--public-url takes no user or password'],
    [['--webhook', 'ftp://hooks.example'], '--webhook must be an http or https URL'],
    // Its path goes into the board's <base href> and its cookie's Path: a ; would end the attribute.
    [
      ['--public-url', 'https://crs.example/wa;rds/'],
      '--public-url: its path takes letters, digits and - . _ ~ % / only',
    ],
    // Taken off the paths asked: /api/... would lose its /api.
    [
      ['--public-url', 'https://crs.example/api/'],
      "--public-url: its path cannot start with /api, a path of crs serve's own",
    ],
  ])('refuses %j with its usage (exit 2), starting nothing', async (args, text) => {
    const r = await serveWith('serve', ['--data', '/tmp/crs-nowhere', ...args]);
    expect([r.code, r.started]).toEqual([2, []]);
    expect(r.stderr).toContain(text);
  });

  it('names a port in use, exit 2; crs start takes a free port only when none was asked for', async () => {
    const serve = await serveWith('serve', ['--data', '/tmp/crs-nowhere'], 1);
    expect(serve.code).toBe(2);
    // Which port: an operator who gave no --port (8080 by default) was told "the port" (2026-12-06).
    expect(serve.stderr).toContain('crs serve: port 8080 is already in use; choose another with --port N');
    const dir = mkdtempSync(join(tmpdir(), 'crs-start-'));
    try {
      const asked = await serveWith('start', ['--data', dir, '--port', '8080'], 1);
      expect([asked.code, asked.started.length]).toEqual([2, 1]);
      const any = await serveWith('start', ['--data', dir], 1);
      expect(any.code).toBe(0);
      expect(any.started.map((o) => o.port)).toEqual([8080, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('crs start resets no directory the demo did not make', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-start-real-'));
    try {
      writeFileSync(join(dir, 'crs.db'), 'real data');
      const r = await serveWith('start', ['--data', dir]);
      expect([r.code, r.started]).toEqual([2, []]);
      expect(r.stderr).toContain('is not a demo data directory (no CRS-DEMO file); refusing to reset it');
      expect(readFileSync(join(dir, 'crs.db'), 'utf8')).toBe('real data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve with its MLLP port in use', () => {
  it('names --mllp-port, not --port (which was free), exit 2', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'crs-mllp-busy-'));
    try {
      vi.stubEnv('CRS_INGEST_TOKEN', '');
      const r = await crs('serve', '--data', dir, '--port', '0', '--mllp-port', `${port}`);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(
        `crs serve: the MLLP port ${port} is already in use; choose another with --mllp-port N`,
      );
      expect(r.stderr).not.toContain('--port N');
    } finally {
      await new Promise((r) => taken.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve on a damaged database', () => {
  it('names the file, what SQLite says, and what to do, exit 1 (it said only "file is not a database")', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-damaged-'));
    try {
      writeFileSync(join(dir, 'crs.db'), Buffer.alloc(8192, 7));
      const r = await crs('serve', '--data', dir, '--port', '0');
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `crs serve: the database ${join(dir, 'crs.db')} cannot be used (SQLITE_NOTADB: file is not a database): it is damaged or not a crs database; restore the data directory from a backup (crs backup), or start with another --data DIR`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve on a data directory it cannot write (2026-12-06)', () => {
  it('names the lock file, what SQLite says, and what to do, exit 1 (it said only "file is not a database")', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-bad-lock-'));
    try {
      writeFileSync(join(dir, 'serve.lock'), Buffer.alloc(8192, 7));
      const r = await crs('serve', '--data', dir, '--port', '0');
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `crs serve: the file ${join(dir, 'serve.lock')} cannot be used (SQLITE_NOTADB: file is not a database): it is damaged; with no crs serve running on the directory, delete it and start crs serve again`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a full disk or a read-only one with the directory and what to do (it said "database or disk is full")', () => {
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    expect((dataDirUnusable('/var/lib/crs', 'serve.lock', full) as Error).message).toBe(
      'the file /var/lib/crs/serve.lock cannot be used (SQLITE_FULL: database or disk is full): the disk of /var/lib/crs is full; free space on it (df -h /var/lib/crs), then start crs serve again',
    );
    const readOnly = Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' });
    expect((dataDirUnusable('/var/lib/crs', 'crs.db', readOnly) as Error).message).toContain(
      "the database /var/lib/crs/crs.db cannot be used (SQLITE_READONLY: attempt to write a readonly database): it cannot be written (a read-only file system, or files not this user's); make /var/lib/crs writable",
    );
  });
});

// Each command that opens the database itself says a damaged one as crs serve does, with what to do (2026-12-06:
// "crs token: SqliteError: file is not a database", "crs outbox: file is not a database").
describe('a damaged database, said alike by the commands that open it', () => {
  it.each([
    [['token', 'list'], 'token'],
    [['outbox', 'list'], 'outbox'],
    [['dead-letters', 'list'], 'dead-letters'],
    [['audit', 'export', '--patient', 'P-1'], 'audit'],
  ])('crs %o: exit 1, the file, SQLite code and what to do', async (args, command) => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-damaged-'));
    try {
      writeFileSync(join(dir, 'crs.db'), Buffer.alloc(8192, 7), { mode: 0o600 });
      const r = await crs(...args, '--data', dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `crs ${command}: the database ${join(dir, 'crs.db')} cannot be used (SQLITE_NOTADB: file is not a database): it is damaged or not a crs database; restore the data directory from a backup (crs backup), or give crs ${command} another --data DIR\n`,
      );
      // The command run, not crs serve (2026-12-06: "or start with another --data DIR", of crs serve).
      expect(r.stderr).not.toMatch(/start/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A damaged lock file is not a process holding the directory: crs outbox and crs dead-letters said "in use by another
// process (a crs serve that does not answer ...)", and an operator looked for a process that was not there (2026-12-06).
describe('a damaged serve.lock, with no server running', () => {
  it.each([[['outbox', 'list']], [['dead-letters', 'list']]])('crs %o names the file and what to do', async (args) => {
    // What to do names the command run (2026-12-06: "delete it and start crs serve again", after crs outbox list).
    const dir = mkdtempSync(join(tmpdir(), 'crs-damaged-lock-'));
    try {
      openDataDir(dir).close();
      writeFileSync(join(dir, 'serve.lock'), Buffer.alloc(4096, 7), { mode: 0o600 });
      const r = await crs(...args, '--data', dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `crs ${args[0]}: the file ${join(dir, 'serve.lock')} cannot be used (SQLITE_NOTADB: file is not a database): it is damaged; with no crs serve running on the directory, delete it and run crs ${args[0]} again\n`,
      );
      expect(r.stderr).not.toContain('in use by another process');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs start on a demo directory a running demo holds', () => {
  it('refuses, and leaves the running demo its database (a second crs start deleted it, WAL included)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-start-held-'));
    // As the running demo has it: the directory locked, its database open, the latest commits in the WAL.
    const lock = lockDataDir(dir);
    const running = openDataDir(dir);
    writeFileSync(join(dir, 'CRS-DEMO'), 'Data of `crs start` (the demo): reset on every start.\n');
    running
      .prepare("INSERT INTO device_tokens (token_id, device_id, hash, created_at) VALUES ('t1', 'gw-1', 'h', 'now')")
      .run();
    try {
      const r = await crs('start', '--data', dir, '--port', '0');
      expect(r.status).toBe(1);
      // And what to do (2026-12-06: it named the directory only, after an npx stop that left the server running).
      expect(r.stderr).toContain(
        `crs start: another crs serve is using the data directory ${dir}: stop it first, or give another --data DIR`,
      );
      const reader = openDataDir(dir);
      try {
        expect(reader.prepare('SELECT device_id FROM device_tokens').pluck().all()).toEqual(['gw-1']);
      } finally {
        reader.close();
      }
    } finally {
      running.close();
      lock.release();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('crs serve --backend aws options, pinned by a mutation run', () => {
  /** Refused before anything is provisioned (an endpoint nobody listens on, should a mutant get that far). */
  const serveAws = (...args: string[]) => {
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:9');
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('CRS_INGEST_TOKEN', '');
    return crsMain(['serve', '--backend', 'aws', ...args], { wentOnMs: 20_000 });
  };

  it.each([
    [['--endpoint', 'ftp://moto:5000'], '--endpoint must be an http(s) URL (got "ftp://moto:5000")'],
    [
      ['--port', '0', '--schedule-interval', '0'],
      '--schedule-interval must be a whole number from 1 to 86400 (got "0")',
    ],
    [['--port', '65536'], '--port must be a whole number from 0 to 65535 (got "65536")'],
  ])('crs serve --backend aws %o exits 2 (usage), naming the mistake', async (args, message) => {
    const r = await serveAws(...args);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage:');
    expect(r.status).toBe(2);
  });
});
