// Flags and ids at their extremes, as the standard asks of every command: refused up front (exit 2) naming the flag
// and what was given, escaped (no raw control character reaches the terminal), never ignored, never taken to fail
// later. Numbers are read one way by every command (shared/cli/flags.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { outboxCommand } from '#cli/outbox.ts';
import { silenceCommand } from '#cli/silence.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { CLI, captured, crsMain, pretendServeDir } from '#test/support/cli.ts';

const TOKEN = 'flags-test-token-of-at-least-32-chars';

/** `crs ARGS` as a user runs it; a command that starts a server instead of refusing is stopped after 8 s. */
const crs = (args: string[], input = '') =>
  spawnSync(process.execPath, [CLI, ...args], {
    input,
    encoding: 'utf8',
    timeout: 8_000,
    env: { ...process.env, CRS_INGEST_TOKEN: TOKEN },
  });

/**
 * `crs ARGS` for a refusal: the CLI's `main` as bin/crs.js runs it, in this process (crsMain). A refusal answers
 * before the command reads its input or starts anything, and the ninety of them here each took a process of their own
 * (about 0.3 s of CPU: a third of the run's `crs` processes); `crs` above runs the commands that go on.
 */
function refusal(given: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  vi.stubEnv('CRS_INGEST_TOKEN', TOKEN);
  return crsMain(given.map((a) => (a === 'DIR' ? dir : a))); // DIR: the test's own data directory
}

/** Raw control characters (ESC, BEL, CR...) other than the line ends of the output itself. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crs-flags-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for the crs serve of `dir` (serve.json, board.key): answers with `answer`, records what it was sent. */
async function fakeServe(answer: (url: string) => { status: number; body: string }) {
  const calls: { path: string; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push({ path: req.url!, body });
      const a = answer(req.url!);
      res.writeHead(a.status, { 'content-type': a.body.startsWith('{') ? 'application/json' : 'text/plain' });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const serving = pretendServeDir(dir, (server.address() as AddressInfo).port);
  return {
    calls,
    close: () => {
      serving.release();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('crs replay --hl7-zone', () => {
  it('is checked whatever the input: garbage is refused with JSON too, named escaped (it was ignored, exit 0)', async () => {
    const r = await refusal(['replay', '-', '--hl7-zone', 'Mars/Olympus\u001b[2J']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(
      'crs replay: --hl7-zone "Mars/Olympus\\u001b[2J" is not an IANA zone (Europe/Paris) or an offset (+01:00)',
    );
  });

  it('refuses the name of a fixed offset as site.timeZone does, in its words (2026-12-07: Etc/GMT+5 was taken)', async () => {
    const r = await refusal(['replay', '-', '--format', 'hl7v2', '--hl7-zone', 'Etc/GMT+5']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      'crs replay: --hl7-zone "Etc/GMT+5" is a fixed offset, UTC-5 (IANA reverses the sign: Etc/GMT+N is N hours west of UTC), without daylight saving time: set the region\'s zone name (e.g. America/Bogota, Asia/Karachi, Europe/Paris)',
    );
  });

  it.each([[[]], [['--format', 'json']], [['--format', 'fhir']]])(
    'is refused as not applying to JSON or FHIR input %o, a valid zone too (it was taken and did nothing)',
    async (format) => {
      const r = await refusal(['replay', '-', ...format, '--hl7-zone', 'Europe/Paris']);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^crs replay: --hl7-zone is the zone of HL7 v2 times without an offset: it takes --format hl7v2 or mixed, not (json|fhir)\n/,
      );
    },
  );

  it('still takes a zone with HL7 v2 and mixed input', () => {
    for (const format of ['hl7v2', 'mixed'])
      expect(crs(['replay', '-', '--format', format, '--hl7-zone', 'UTC'], '').status).toBe(0);
  });
});

describe('--hl7-patient-authority', () => {
  it.each([
    ['replay', '-', '--format', 'hl7v2'],
    ['serve', '--data', 'DIR'],
    ['serve', '--backend', 'aws'],
  ])('%s refuses a value no assigning authority can be, named escaped (exit 2, nothing started)', async (...args) => {
    for (const bad of ['HOSP^MR', 'HOSP&1.2.3', '', ' HOSP', 'H\u001b[2J', 'x'.repeat(65), 'HÔPITAL']) {
      const r = await refusal([...args, '--hl7-patient-authority', bad]);
      expect([r.status, r.stdout], bad).toEqual([2, '']);
      expect(r.stderr.split('\n')[0], bad).toMatch(
        /^crs(?: serve| replay)?: --hl7-patient-authority must be an assigning authority's namespace id \(PID-3\.4\): 1-64 printable ASCII characters, none of \| \^ ~ \\ &, no space at either end \(got "/,
      );
      expect(r.stderr, bad).not.toMatch(RAW_CONTROL);
    }
  });

  it('is refused with JSON or FHIR input to replay, which it cannot apply to', async () => {
    for (const format of [[], ['--format', 'json'], ['--format', 'fhir']]) {
      const r = await refusal(['replay', '-', ...format, '--hl7-patient-authority', 'HOSP']);
      expect([r.status, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toMatch(
        /^crs replay: --hl7-patient-authority is the assigning authority of HL7 v2 patient ids: it takes --format hl7v2 or mixed, not (json|fhir)\n/,
      );
    }
    for (const format of ['hl7v2', 'mixed'])
      expect(crs(['replay', '-', '--format', format, '--hl7-patient-authority', 'HOSP.EU-1'], '').status).toBe(0);
  });
});

describe('--fhir-patient-system', () => {
  it.each([
    ['replay', '-', '--format', 'fhir'],
    ['serve', '--data', 'DIR'],
    ['serve', '--backend', 'aws'],
  ])('%s refuses a value no identifier system can be, named escaped (exit 2, nothing started)', async (...args) => {
    for (const bad of [
      'MRN',
      '',
      ' http://h.example/mrn',
      'http://h.example/my mrn',
      'urn:\u001b[2J',
      'http:',
      `urn:${'x'.repeat(1021)}`,
      'urn:hôpital',
    ]) {
      const r = await refusal([...args, '--fhir-patient-system', bad]);
      expect([r.status, r.stdout], bad).toEqual([2, '']);
      expect(r.stderr.split('\n')[0], bad).toMatch(
        /^crs(?: serve| replay)?: --fhir-patient-system must be an absolute URI \(an Identifier\.system: http:\/\/hospital\.example\/mrn, urn:oid:1\.2\.3\.4\): a scheme and a colon, then the rest; 1-1024 printable ASCII characters, no space \(got "/,
      );
      expect(r.stderr, bad).not.toMatch(RAW_CONTROL);
    }
  });

  it('is refused with JSON or HL7 v2 input to replay, which it cannot apply to', async () => {
    for (const format of [[], ['--format', 'json'], ['--format', 'hl7v2']]) {
      const r = await refusal(['replay', '-', ...format, '--fhir-patient-system', 'urn:oid:1.2.3']);
      expect([r.status, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toMatch(
        /^crs replay: --fhir-patient-system is the identifier system of FHIR patient ids: it takes --format fhir or mixed, not (json|hl7v2)\n/,
      );
    }
    for (const format of ['fhir', 'mixed'])
      expect(
        crs(['replay', '-', '--format', format, '--fhir-patient-system', `urn:${'x'.repeat(1020)}`], '').status,
      ).toBe(0);
  });
});

describe('an unknown option, as every command names it', () => {
  it.each([
    ['token', 'list'],
    ['silence', 'list'],
    ['outbox', 'list'],
    ['dead-letters', 'list'],
    ['audit', 'export'],
    ['backup'],
    ['serve'],
    ['simulate'],
    ['replay', '-'],
  ])(
    'crs %s refuses it with exit 2, escaped (Node quoted it raw: a bidirectional override reordered the line)',
    async (...args) => {
      const r = await refusal([...args, '--ward\u202e\u0007']);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/Unknown option '--ward\\u202e\\u0007'/);
      expect(r.stderr).not.toMatch(/\p{Cf}/u);
      expect(r.stderr).not.toMatch(RAW_CONTROL);
    },
  );
  // One short line, "crs COMMAND: Unknown option '--x'", then the command's own usage: the commands that take
  // positionals (replay FILE, token rotate ID...) gave Node's three-line hint instead (its quote left open), and
  // crs replay and crs schema the summary of every command.
  it.each([
    [['serve'], 'serve'],
    [['serve', '--backend', 'aws'], 'serve'],
    [['start'], 'start'],
    [['doctor'], 'doctor'],
    [['simulate'], 'simulate'],
    [['audit', 'export'], 'audit'],
    [['replay', '-'], 'replay'],
    [['schema'], 'schema'],
    [['silence', 'create'], 'silence'],
    [['silence', 'end'], 'silence'],
    [['backup'], 'backup'],
    [['token'], 'token'],
    [['token', 'rotate', 'tok_x'], 'token'],
    [['outbox', 'retry'], 'outbox'],
    [['dead-letters', 'redrive'], 'dead-letters'],
    [['ack-key', 'rotate'], 'ack-key'],
    [['board-link'], 'board-link'],
    [['mllp-bridge'], 'mllp-bridge'],
  ])('crs %o --x\\u001b: one short line, escaped, and its own usage (exit 2)', async (args, command) => {
    const r = await refusal([...args, '--x\u001b']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const [first, second, ...usage] = r.stderr.split('\n');
    expect(first).toBe(`crs ${command}: Unknown option '--x\\u001b'`);
    expect(second).toBe('usage:');
    expect(usage.join('\n')).toMatch(new RegExp(`^ +crs ${command} `, 'm'));
    expect(r.stderr).not.toMatch(RAW_CONTROL);
  });
});

// Pinned by a mutation run (2026-12-06, later): parseFlags escapes every refusal of util.parseArgs, not only an
// unknown option. crs mllp-bridge and crs doctor print its message as it comes, and Node quotes a stray word raw.
describe('a stray argument, refused escaped', () => {
  it.each([['mllp-bridge'], ['doctor'], ['serve'], ['schema']])(
    'crs %s x\\u001b[2J: exit 2, escaped',
    async (command) => {
      const r = await refusal([command, 'x\u001b[2J']);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/Unexpected argument 'x\\u001b\[2J'/);
      expect(r.stderr).not.toMatch(RAW_CONTROL);
    },
  );
});

// A value starting with a dash (a negative number, a typo): Node's three-line hint came out as one line with
// "\u000a" printed where its line ends were (2026-12-06). Its own text, joined into one sentence a line.
describe('a flag given a value that starts with a dash', () => {
  it.each([
    [['simulate', '--seed', '-1'], 'simulate', '--seed'],
    [['silence', 'create', '--minutes', '-5'], 'silence', '--minutes'],
    [['serve', '--port', '-1'], 'serve', '--port'],
    [['backup', '--to', '-x'], 'backup', '--to'],
  ])('crs %o: one readable line (exit 2)', async (args, command, flag) => {
    const r = await refusal(args);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `crs ${command}: Option '${flag}' argument is ambiguous. Did you forget to specify the option argument for ` +
        `'${flag}'? To specify an option argument starting with a dash use '${flag}=-XYZ'.`,
    );
  });
});

describe('number flags, read one way by every command', () => {
  it.each([
    // crs start took these (1e308 as a speed, any integer as a seed) where crs simulate refused them
    [
      ['start', '--data', 'DIR', '--port', '0', '--speed', '1e308'],
      '--speed must be a decimal number from 1 to 100000 (got "1e308")',
    ],
    [
      ['start', '--data', 'DIR', '--port', '0', '--seed', '1e308'],
      '--seed must be a whole number from 0 to 4294967295 (got "1e308")',
    ],
    [
      ['start', '--data', 'DIR', '--port', '0', '--speed', '0x10'],
      '--speed must be a decimal number from 1 to 100000 (got "0x10")',
    ],
    // "" was port 0 (any free port: no device would find the server) and 0x10 port 16
    [['serve', '--data', 'DIR', '--port', ''], '--port must be a whole number from 0 to 65535 (got "")'],
    [['serve', '--data', 'DIR', '--port', '0x10'], '--port must be a whole number from 0 to 65535 (got "0x10")'],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--mllp-port', ''],
      '--mllp-port must be a whole number from 0 to 65535 (got "")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--mllp-port', '1e3'],
      '--mllp-port must be a whole number from 0 to 65535 (got "1e3")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--max-patients', '0x10'],
      '--max-patients must be a whole number from 1 to 1000000 (got "0x10")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--retention-days', '0'],
      '--retention-days must be a whole number from 1 to 36500 (got "0")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--board-ended-hours', '1e3'],
      '--board-ended-hours must be a whole number from 0 to 87600 (got "1e3")',
    ],
    // The dead man's switch (docs/safety.md H15): a push monitor's URL, http or https, never shown (its path is its
    // secret); its interval long enough for a monitor, short enough for a page within the hour.
    [
      ['serve', '--data', 'DIR', '--port', '0', '--heartbeat-url', 'ftp://hc.example/secret-uuid'],
      '--heartbeat-url must be an http or https URL (got "ftp:")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--heartbeat-url', 'hc-ping'],
      '--heartbeat-url must be an http or https URL',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--heartbeat-url', 'https://hc.example/u', '--heartbeat-seconds', '5'],
      '--heartbeat-seconds must be a whole number from 10 to 3600 (got "5")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--heartbeat-seconds', '60'],
      "--heartbeat-seconds is the heartbeat's: give --heartbeat-url (or CRS_HEARTBEAT_URL) too",
    ],
    // A user or password in it: fetch refuses to send one, so no beat would ever go out (the monitor paging for a
    // server that is up, the log saying only "TypeError"); refused at start instead, the URL still not shown.
    [
      ['serve', '--data', 'DIR', '--port', '0', '--heartbeat-url', 'https://user:secret-pw@hc.example/ping'],
      '--heartbeat-url must not hold a user or password',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--webhook', 'https://user:secret-pw@paging.example/hook'],
      '--webhook must not hold a user or password',
    ],
    // The alert webhook (docs/safety.md H2, H15): http or https only, never shown (an incoming webhook's path is
    // its secret).
    [
      ['serve', '--data', 'DIR', '--port', '0', '--alert-webhook', 'ftp://hooks.example/T000/secret-path'],
      '--alert-webhook must be an http or https URL (got "ftp:")',
    ],
    [
      ['serve', '--data', 'DIR', '--port', '0', '--alert-webhook', 'hooks.example/T000/secret-path'],
      '--alert-webhook must be an http or https URL',
    ],
    [['simulate', '--ndjson', '--seed', '0x10'], '--seed must be a whole number from 0 to 4294967295 (got "0x10")'],
    [['simulate', '--ndjson', '--copies', ' 2'], '--copies must be a whole number from 1 to 200 (got " 2")'],
    [
      ['simulate', '--ndjson', '--format', 'hl7v2', '--mllp', '127.0.0.1:99999'],
      '--mllp PORT must be a whole number from 1 to 65535 (got "99999")',
    ],
    [['serve', '--backend', 'aws', '--port', ''], '--port must be a whole number from 0 to 65535 (got "")'],
    [
      ['serve', '--backend', 'aws', '--port', '0', '--visibility-timeout', '1e1'],
      '--visibility-timeout must be a whole number from 0 to 43200 (got "1e1")',
    ],
    // As on the embedded backend: the operator's own token (every right) is taken only where nobody else can send it
    // (until 2026-12-06 the AWS backend took it on any --host).
    [
      ['serve', '--backend', 'aws', '--host', '0.0.0.0'],
      'CRS_INGEST_TOKEN is accepted only on a loopback listener (this one is 0.0.0.0): issue device tokens (crs token issue), or pass --ingest-token-any-host',
    ],
  ])('crs %o is refused, exit 2, naming the flag and what was given', async (args, said) => {
    const r = await refusal(args);
    expect({ status: r.status, said: r.stderr.split('\n')[0] }).toEqual({
      status: 2,
      said: expect.stringContaining(said),
    });
  });

  // The page webhook's too since 2026-12-06 (a text that was no URL was shown; its path is often a secret as well).
  it.each(['--alert-webhook', '--webhook', '--heartbeat-url'])(
    'crs serve %s refused never shows the URL given (its path is the secret)',
    async (flag) => {
      for (const url of ['ftp://hooks.example/T000/secret-path', 'hooks.example/T000/secret-path']) {
        const r = await refusal(['serve', '--data', 'DIR', '--port', '0', flag, url]);
        expect([r.status, r.stderr.includes('secret-path')]).toEqual([2, false]);
      }
    },
  );

  // The three secret-holding URLs may come from the environment (an owner-only EnvironmentFile, not the command line
  // every user sees: 2026-12-06): the same checks, the refusal naming the variable, the URL never shown; an empty one
  // is not set; the flag wins, said once, neither URL shown.
  it.each([
    [
      { CRS_HEARTBEAT_URL: 'ftp://hc.example/secret-uuid' },
      [],
      'CRS_HEARTBEAT_URL must be an http or https URL (got "ftp:")',
    ],
    [
      { CRS_ALERT_WEBHOOK_URL: 'hooks.example/T000/secret-path' },
      [],
      'CRS_ALERT_WEBHOOK_URL must be an http or https URL',
    ],
    [{ CRS_WEBHOOK_URL: 'paging.example/secret-path' }, [], 'CRS_WEBHOOK_URL must be an http or https URL'],
    [
      { CRS_WEBHOOK_URL: 'https://user:secret-pw@paging.example/hook' },
      [],
      'CRS_WEBHOOK_URL must not hold a user or password',
    ],
    // A password with no user is refused too (pinned by a mutation run).
    [
      { CRS_ALERT_WEBHOOK_URL: 'https://:secret-pw@hooks.example/T000' },
      [],
      'CRS_ALERT_WEBHOOK_URL must not hold a user or password',
    ],
    [{ CRS_HEARTBEAT_URL: '' }, ['--heartbeat-seconds', '60'], 'give --heartbeat-url (or CRS_HEARTBEAT_URL) too'],
    [
      { CRS_HEARTBEAT_URL: 'https://hc.example/secret-uuid' },
      ['--heartbeat-url', 'ftp://hc.example/u'],
      '--heartbeat-url must be an http or https URL (got "ftp:")',
    ],
  ])(
    'crs serve with %o and %o: refused, exit 2, naming where the URL came from, never showing it',
    async (env, args, said) => {
      for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
      const r = await refusal(['serve', '--data', 'DIR', '--port', '0', ...args]);
      expect({
        status: r.status,
        said: r.stderr.split('\n').find((l) => l.includes(' must ') || l.includes("heartbeat's")),
      }).toEqual({
        status: 2,
        said: expect.stringContaining(said),
      });
      expect(r.stderr).not.toMatch(/secret-(uuid|path|pw)/);
      // Both given: said once that the flag is used.
      expect(r.stderr.split('\n').filter((l) => l.includes('both given'))).toEqual(
        args[0] === '--heartbeat-url'
          ? ['crs serve: --heartbeat-url and CRS_HEARTBEAT_URL both given: --heartbeat-url is used']
          : [],
      );
    },
  );

  it('crs serve --backend aws takes CRS_TEST_CLOCK on a loopback --host only (POST /local/clock takes no key)', async () => {
    vi.stubEnv('CRS_TEST_CLOCK', '1');
    const r = await refusal(['serve', '--backend', 'aws', '--host', '0.0.0.0', '--ingest-token-any-host']);
    expect({ status: r.status, said: r.stderr.split('\n')[0] }).toEqual({
      status: 2,
      said: expect.stringContaining(
        "CRS_TEST_CLOCK (a test hook: POST /local/clock moves the server's clock, and takes no key) is accepted only on a loopback listener (this one is 0.0.0.0)",
      ),
    });
  });

  it.each([
    // "" listened on a random port (the monitors' gateway would find nobody); 0x10 on port 16
    [['--listen', ''], '--listen must be a whole number from 0 to 65535 (got "")'],
    [['--listen', '0x10'], '--listen must be a whole number from 0 to 65535 (got "0x10")'],
    // a timer past 2^31 ms fires at once: 1e308 was taken
    [
      ['--listen', '0', '--ack-wait', '1e308'],
      '--ack-wait must be a whole number from 0 to 600000 (got "1e308") (milliseconds)',
    ],
    [['--listen', '0', '--ack-wait', ''], '--ack-wait must be a whole number from 0 to 600000 (got "") (milliseconds)'],
  ])('crs mllp-bridge %o is refused, exit 2, starting nothing', async (args, said) => {
    writeFileSync(join(dir, 'token'), 'tok\n');
    const r = await refusal([
      'mllp-bridge',
      ...args,
      '--to',
      'http://127.0.0.1:9',
      '--token-file',
      join(dir, 'token'),
      '--spool',
      join(dir, 'spool'),
    ]);
    expect({ status: r.status, said: r.stderr.split('\n')[0] }).toEqual({
      status: 2,
      said: `crs mllp-bridge: ${said}`,
    });
  });

  it("crs silence create refuses --minutes 0x10 as the board's API refuses it (one message for both)", async () => {
    const r = await captured(() =>
      silenceCommand(
        ['create', '--team', 'icu', '--minutes', '0x10', '--reason', 'MRI', '--by', 'N', '--data', dir],
        () => DEFAULT_CONFIG,
      ),
    );
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('crs silence: --minutes: how long, 1 to 1440 (whole minutes)');
  });
});

describe('crs silence end SILENCE_ID', () => {
  const end = (id: string, ...more: string[]) =>
    captured(() => silenceCommand(['end', id, '--by', 'Nurse Bea', '--data', dir, ...more], () => DEFAULT_CONFIG));

  it('refuses a 100 KB id up front, exit 2, shown cut and escaped (crs serve was said not to answer)', async () => {
    const serve = await fakeServe(() => ({ status: 404, body: '{"error":"no such silence"}' }));
    try {
      const r = await end(`sil_${'x'.repeat(100_000)}`);
      expect(r.code).toBe(2);
      expect(r.err.split('\n')[0]).toBe(
        `crs silence: SILENCE_ID must be a silence id, sil_ and 12 of A-Z a-z 0-9 _ - as create and list print it (got "sil_${'x'.repeat(76)}"... (100004 characters))`,
      );
      expect(serve.calls).toEqual([]);
    } finally {
      await serve.close();
    }
  });

  it.each([[''], ['sil_\u001b]0;owned\u0007abc'], ['sil_abcdefghijk\r'], [' sil_abcdefghijkl']])(
    'refuses %j on both backends before any is opened, never echoing a raw control character',
    async (id) => {
      for (const backend of [[], ['--backend', 'aws']]) {
        const r = await end(id, ...backend);
        expect(r.code).toBe(2);
        expect(r.err).toContain('SILENCE_ID must be a silence id');
        expect(r.err).not.toMatch(RAW_CONTROL);
      }
    },
  );

  it('says what crs serve answered when it is not JSON, not that it does not answer', async () => {
    const serve = await fakeServe(() => ({ status: 431, body: 'Request Header Fields Too Large' }));
    try {
      const r = await end('sil_abcdefghijkl');
      expect(r.code).toBe(1);
      expect(r.err).toBe('crs silence: Error: the server answered 431: Request Header Fields Too Large\n');
    } finally {
      await serve.close();
    }
  });
});

describe('crs outbox retry ID', () => {
  const outbox = (...args: string[]) =>
    captured(() =>
      outboxCommand([...args, '--data', dir], () => {
        throw new Error('no configuration is read on the embedded backend');
      }),
    );

  it('refuses an empty ID, exit 2, instead of retrying every parked record through crs serve', async () => {
    const serve = await fakeServe(() => ({ status: 200, body: '{"retried":5,"parked":[],"lanes":[],"alerts":[]}' }));
    try {
      const r = await outbox('retry', '');
      expect(r.code).toBe(2);
      expect(r.err.split('\n')[0]).toBe(
        'crs outbox: ID must be an id as it was printed: 1-1024 characters, no space or control character (got "")',
      );
      expect(serve.calls.filter((c) => c.path === '/api/outbox/retry')).toEqual([]);
    } finally {
      await serve.close();
    }
  });

  it('refuses an ID with control characters, shown escaped (they reached the terminal raw), on both backends', async () => {
    for (const backend of [[], ['--backend', 'aws']]) {
      const r = await outbox('retry', 'crs|P-1|n1\u001b[2J\u001b[H', ...backend);
      expect(r.code).toBe(2);
      expect(r.err.split('\n')[0]).toContain('(got "crs|P-1|n1\\u001b[2J\\u001b[H")');
      expect(r.err).not.toMatch(RAW_CONTROL);
    }
  });

  it('shows an ID with a format character escaped too (a bidirectional override reordered the line)', async () => {
    // Until 2026-12-05 what was given was quoted as JSON writes it: control characters escaped, U+202E raw.
    const r = await outbox('retry', 'crs|P-1\u202e|n1\u200b');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toContain('(got "crs|P-1\\u202e|n1\\u200b")');
    expect(r.err).not.toMatch(/\p{Cf}/u);
  });
});

describe('crs token revoke|scope TOKEN_ID', () => {
  const token = (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const opened: string[] = [];
    const fail = async (where: string) => {
      opened.push(where);
      throw new Error('no store in this test');
    };
    return tokenCommand(args, {
      out: (t) => void out.push(t),
      err: (t) => void err.push(t),
      embedded: () => fail('embedded'),
      aws: () => fail('aws'),
      env: { CRS_TOKENS_TABLE: 'tokens' },
    }).then((code) => ({ code, out: out.join(''), err: err.join(''), opened }));
  };

  it.each([[''], ['x'.repeat(129)], ['tok\u001b]0;owned\u0007'], ['a b']])(
    'refuses %j before any store is opened, on both backends, shown escaped (an empty or long one failed on DynamoDB, exit 1)',
    async (id) => {
      for (const backend of [
        ['--backend', 'embedded', '--data', dir],
        ['--backend', 'aws'],
      ]) {
        for (const args of [
          ['revoke', id],
          ['scope', id, '--kind', 'pump'],
        ]) {
          const r = await token(...args, ...backend);
          expect(r.code).toBe(2);
          expect(r.err.split('\n')[0]).toMatch(
            /^crs token: TOKEN_ID must be an id as it was printed: 1-128 characters/,
          );
          expect(r.err).not.toMatch(RAW_CONTROL);
          expect(r.opened).toEqual([]);
        }
      }
    },
  );
});

describe('--fhir-drug-codes (2026-12-07)', () => {
  const file = (content: unknown) => {
    const path = join(dir, 'drug-codes.json');
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  const LOCAL = 'urn:oid:1.2.3';

  it.each([
    ['replay', '-', '--format', 'fhir'],
    ['serve', '--data', 'DIR'],
    ['serve', '--backend', 'aws'],
  ])('%s refuses a bad map at start naming the entry and field (exit 2, nothing started)', async (...args) => {
    const bad = file([{ system: LOCAL, code: '1', drug: 'levophed' }]);
    const r = await refusal([...args, '--fhir-drug-codes', bad]);
    expect([r.status, r.stdout]).toEqual([2, '']);
    expect(r.stderr.split('\n')[0]).toMatch(
      /^crs(?: serve| replay)?: --fhir-drug-codes .*drug-codes\.json: entry 0 drug: must be one of norepinephrine, /,
    );
    const builtIn = file([{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '7512', drug: 'not-graded' }]);
    expect((await refusal([...args, '--fhir-drug-codes', builtIn])).stderr).toMatch(/entry 0 drug: RxNorm 7512/);
    expect((await refusal([...args, '--fhir-drug-codes', join(dir, 'none.json')])).stderr).toMatch(
      /cannot read --fhir-drug-codes/,
    );
  });

  it('replay reads a local code mapped to norepinephrine as one', () => {
    const drip = {
      resourceType: 'MedicationAdministration',
      id: 'ma-n',
      status: 'in-progress',
      medicationCodeableConcept: { coding: [{ system: LOCAL, code: '40012', display: 'NORADRENALINE DRIP' }] },
      subject: { reference: 'Patient/P-1' },
      effectiveDateTime: '2026-01-10T08:00:00Z',
      dosage: {
        rateQuantity: { value: 0.1, unit: 'ug/kg/min', system: 'http://unitsofmeasure.org', code: 'ug/kg/min' },
      },
    };
    const input = `${JSON.stringify(drip)}\n`;
    const without = crs(['replay', '-', '--format', 'fhir'], input);
    expect(without.stdout).toContain('"rejected"');
    expect(without.stdout).toContain('names norepinephrine');
    const map = file([{ system: LOCAL, code: '40012', drug: 'norepinephrine' }]);
    const mapped = crs(['replay', '-', '--format', 'fhir', '--fhir-drug-codes', map], input);
    expect(mapped.stdout).not.toContain('"rejected"');
    expect(mapped.stdout).toContain('"type":"assessment"');
  });
});
