// The CLI as a user reads it: `--help` on every command (usage on stdout, exit 0, what it needs), and the tables it prints.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { silenceTable } from '#cli/silence.ts';
import { CLI } from '#test/support/cli.ts';

const crs = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('crs --help', () => {
  it.each([['replay'], ['schema'], ['serve'], ['token'], ['silence'], ['outbox'], ['audit'], ['doctor']])(
    'crs %s --help prints its usage and exits 0',
    (command) => {
      const r = crs(command, '--help');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/usage:/);
      expect(r.stdout).toContain(`crs ${command}`);
    },
  );

  it('crs serve --help names the token kind (required) and where the AWS backend options are', () => {
    const out = crs('serve', '--help').stdout;
    expect(out).toContain('crs token issue --device DEVICE_ID --kind KIND');
    expect(out).toContain('crs serve --backend aws --help');
    expect(crs('serve', '--backend', 'aws', '--help').stdout).toContain('--endpoint URL');
  });
});

describe('crs silence list, as people read it', () => {
  it('keeps every column apart, full RFC 3339 times and long patient ids included', () => {
    const at = Date.parse('2026-12-02T09:31:41.338Z');
    const text = silenceTable([
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
      },
    ]);
    const [head, first, second] = text.split('\n');
    expect(head).toMatch(/^SILENCE ID +SCOPE +FROM +UNTIL +BY \/ REASON$/);
    expect(first).toMatch(
      /^sil_hjNDzRxBbwrw +patient P-0042 +2026-12-02T09:31:41\.338Z +2026-12-02T10:16:41\.338Z +Nurse Bea: transport to MRI$/,
    );
    // Each value starts where its header does.
    expect(first!.indexOf('2026-12-02T09:31')).toBe(head!.indexOf('FROM'));
    expect(first!.indexOf('2026-12-02T10:16')).toBe(head!.indexOf('UNTIL'));
    expect(first!.indexOf('Nurse Bea')).toBe(head!.indexOf('BY / REASON'));
    expect(second).toMatch(
      /^sil_2 +patient a-patient-id\S+ +2026-12-02T09:31:41\.338Z +2026-12-02T09:32:41\.338Z +Dr Lee: drill$/,
    );
  });
});

describe('a reader that stops early (crs replay FILE | head)', () => {
  it('ends crs replay quietly, without an unhandled EPIPE', async () => {
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
    writeFileSync(file, `${lines.join('\n')}\n`);
    const child = spawn(process.execPath, [CLI, 'replay', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
    expect(stderr).not.toContain('EPIPE');
    expect(status).toBe(0);
  });
});

describe('crs outbox retry --sink', () => {
  it('refuses a lane crs serve does not have, naming the lanes, instead of retrying nothing', () => {
    const r = crs('outbox', 'retry', '--all', '--sink', 'webhok', '--data', tmpdir());
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--sink must be one of stdout, pager, board, webhook (got "webhok")');
  });
});

describe('crs silence without --by', () => {
  it('asks for the name of whoever silences, not of someone acknowledging', () => {
    const r = crs('silence', 'create', '--patient', 'P-1', '--minutes', '5', '--reason', 'x', '--data', tmpdir());
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--by: is required (your name: the audit trail records who did it)');
    expect(r.stderr).not.toContain('acknowledging');
  });
});

describe('crs replay --escalations --until', () => {
  it('refuses a time without a zone offset (it would be read in the machine zone) and a date alone', () => {
    for (const until of ['2026-11-26T12:00:00', '2026-11-26']) {
      const r = crs('replay', 'test/fixtures/sample-timeline.ndjson', '--escalations', '--until', until);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('--until takes an RFC 3339 time with a zone offset');
    }
    const ok = crs(
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
  it('refuses a time without a zone offset, so the same --seed and --start give the same messages anywhere', () => {
    const r = crs('simulate', '--ndjson', '--start', '2026-11-26T06:00:00');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--start must be an RFC 3339 time with a zone offset');
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
    const line = silenceTable([
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
    ]).split('\n')[1];
    expect(line).toMatch(/team icu .* Dr Lee: drill \(ended 2026-12-02T09:10:00Z by Nurse Bea\)$/);
  });
});

describe('crs mllp-bridge options, pinned by a mutation run', () => {
  type Started = import('#hosts/mllp-bridge/mllp-bridge.ts').BridgeOptions;

  /** Runs the command in-process with startBridge replaced: what the bridge was started with, or the exit code. */
  async function bridgeWith(args: string[], tokenText = 'tok-123\n') {
    const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-cli-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, tokenText);
    const started: Started[] = [];
    vi.resetModules();
    vi.doMock('#hosts/mllp-bridge/mllp-bridge.ts', () => ({
      startBridge: async (o: Started) => {
        started.push(o);
        return { port: 4321, spool: { madePrivate: [], counts: () => ({ waiting: 0 }) }, close: async () => {} };
      },
    }));
    const stderr: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    const before = { int: process.listeners('SIGINT'), term: process.listeners('SIGTERM') };
    try {
      const { mllpBridgeCommand } = await import('#cli/mllp-bridge.ts');
      const run = mllpBridgeCommand(args.map((a) => (a === 'TOKEN' ? tokenFile : a)));
      const code = await Promise.race([run, new Promise<'running'>((r) => setTimeout(() => r('running'), 0))]);
      if (code !== 'running') return { code, started, stderr: stderr.join('') };
      // Running: stop it as SIGTERM would, without sending a signal to the test's own process.
      await vi.waitFor(() => expect(started).toHaveLength(1));
      const term = process.listeners('SIGTERM').find((l) => !before.term.includes(l))!;
      for (const l of process.listeners('SIGINT')) if (!before.int.includes(l)) process.removeListener('SIGINT', l);
      process.removeListener('SIGTERM', term);
      (term as (s: string) => void)('SIGTERM');
      return { code: await run, started, stderr: stderr.join('') };
    } finally {
      write.mockRestore();
      vi.doUnmock('#hosts/mllp-bridge/mllp-bridge.ts');
      rmSync(dir, { recursive: true, force: true });
    }
  }

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

  it.each([
    [['--listen', '65536', '--to', 'https://crs.example', '--token-file', 'TOKEN'], '--listen PORT (0-65535)'],
    [['--listen=-1', '--to', 'https://crs.example', '--token-file', 'TOKEN'], '--listen PORT (0-65535)'],
    [['--to', 'https://crs.example', '--token-file', 'TOKEN'], '--listen PORT (0-65535)'],
    [['--listen', '0', '--to', 'ftp://crs.example', '--token-file', 'TOKEN'], '--to must be an http or https URL'],
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
