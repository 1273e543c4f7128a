// `crs serve`: the whole pipeline on one machine (embedded backend, SQLite), with the on-call board.
// `crs start`: serve plus the simulator demo in one process (`npm start`).
// Standard output carries only the page stream (NDJSON, as `crs replay` prints pages); everything else is stderr.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { DEFAULT_MAX_PATIENTS } from '#adapters/sqlite/patients.ts';
import { lockDataDir, openDataDir } from '#adapters/sqlite/db.ts';
import { DEFAULT_RETENTION_DAYS } from '#adapters/sqlite/retention.ts';
import { openMllpWarning, plainHttpWarning } from '#app/auth.ts';
import { thisRelease } from '#app/release.ts';
import { parseZone, zoneProblem } from '#app/interfaces/zone.ts';
import { PATIENT_AUTHORITY_RULE, parsePatientAuthority } from '#app/interfaces/patient-authority.ts';
import { PATIENT_SYSTEM_RULE, parsePatientSystem } from '#app/interfaces/patient-system.ts';
import { drugCodesFile } from './drug-codes-file.ts';
import type { GradingConfig } from '#domain/config.ts';
import { DEVICE_CLOCK, MAX_OBSERVATION_AGE_RULE, maxObservationAgeMs } from '#domain/device-clock.ts';
import { DAY } from '#domain/time.ts';
import { COURSE_NAMES } from '#sim/courses.ts';
import { ALERT_WEBHOOK_QUEUE } from '#hosts/embedded/alert-webhook.ts';
import { DEFAULT_ENDED_HOURS } from '#hosts/embedded/board-api.ts';
import { DEFAULT_DATA_DIR, startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { MLLP_TLS_LISTENER_FLAGS, MLLP_TLS_OPTIONS, readMllpTls } from '#hosts/mllp-tls.ts';
import { INTERFACE_FLAGS, LISTEN_PORT, inline, numberFlag, shown, parseFlags } from './flags.ts';
import { SEED_RANGE, SPEED_RANGE, describeScenario, runSimulation, scenarioFor } from './simulate.ts';

/** --max-patients: the most patients with data in the last 14 days. */
const MAX_PATIENTS = { min: 1, max: 1_000_000 };
/** --retention-days: how long delivered records, ended silences and expired links are kept. */
const RETENTION_DAYS = { min: 1, max: 36_500 };
/** --board-ended-hours: how long a patient whose monitoring ended stays on the board's list (0: not at all). */
const BOARD_ENDED_HOURS = { min: 0, max: 87_600 };
const DEFAULT_MAX_AGE_DAYS = DEVICE_CLOCK.behindMs / DAY;
/** --heartbeat-seconds: how often the heartbeat URL is asked while the server is healthy. */
const HEARTBEAT_SECONDS = { min: 10, max: 3600 };
const DEFAULT_HEARTBEAT_SECONDS = 60;

export const SERVE_USAGE = `  crs serve [--port N] [--host H] [--data DIR] [--webhook URL] [--scheme S] [--config FILE]
            [--public-url URL] [--page-lines] [--mllp-port N [--mllp-device ID]] [--hl7-zone ZONE]
            [--mllp-tls-cert FILE --mllp-tls-key FILE --mllp-tls-ca FILE [--mllp-tls-crl FILE]]
            [--hl7-patient-authority AUTH] [--fhir-patient-system URI] [--fhir-drug-codes FILE] [--max-patients N]
            [--trust-proxy ADDR]...
            [--ingest-token-any-host] [--retention-days N] [--board-ended-hours N] [--max-observation-age-days D]
            [--heartbeat-url URL [--heartbeat-seconds N]] [--alert-webhook URL]
      the pipeline on this machine: POST /v1/messages, /v1/hl7v2 (HL7 v2) and /fhir/r4/... (FHIR R4),
      on-call board at / (its link with the key on a terminal; else crs board-link), pages on stdout (NDJSON);
      --mllp-port: also take HL7 v2 (IHE PCD-01) over MLLP on this port (same host; MLLP has no credentials:
        the listener sends as a monitor for every patient, or as the device --mllp-device ID with its token's scope);
      --mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca: MLLP inside TLS (1.2+), each sender with a client certificate
        signed by the CA (others refused at the handshake); its subject CN is the device, with its token's scope;
      --mllp-tls-crl: the CA's revocation list (PEM): a certificate it revokes is refused at the handshake (read at
        start: restart after replacing it);
      --max-patients: the most patients with data in the last 14 days, not discharged (default ${DEFAULT_MAX_PATIENTS}); new ones
        beyond are refused (503, send again; an alert);
      --retention-days: days delivered outbox records, ended silences and expired acknowledge links are kept
        (default ${DEFAULT_RETENTION_DAYS}); the audit trail, the patients and the pages are kept for good;
      --board-ended-hours: hours a patient whose monitoring ended (a discharge) stays on the board's list
        (default ${DEFAULT_ENDED_HOURS}); then left out, counted and opened by id, unless a page, alert, grade or silence is open;
      --trust-proxy: a reverse proxy's address (TLS terminator): its X-Forwarded-For names the client (per-address
        limits) and its X-Forwarded-Proto https makes the board cookie Secure;
      --ingest-token-any-host: accept CRS_INGEST_TOKEN (32+ characters) on a non-loopback --host too;
      --max-observation-age-days: how long before its arrival a message's observedAt may be (default ${DEFAULT_MAX_AGE_DAYS}
        days: a gateway's spool after a long outage); older readings are refused, "check the device clock";
      --hl7-zone: the site's zone (Europe/Paris, +01:00) for HL7 times sent without an offset (else refused);
      --hl7-patient-authority: the assigning authority (PID-3.4) whose ids are this system's patient ids: its PID-3
        repetition is the patient, whatever else PID-3 holds (else the one typed MR, or the only one);
      --fhir-patient-system: the FHIR identifier system (a URI) whose values are this system's patient ids: the
        identifier of that system is the patient, whatever else is there (else the one typed MR, or untyped);
      --fhir-drug-codes: a JSON file of the site's FHIR drug codes, [{ "system", "code", "drug" }]: a local or RxNorm
        product code read as one of the contract's drugs, or not-graded (docs/interfaces.md), before the built-in table;
      --public-url: the address phones and browsers reach this server at, for acknowledge links and the board's link
        (the listening URL by default); a path is a reverse proxy's prefix (https://host/wards/): the board works there;
      --heartbeat-url: a dead man's switch: GET this URL (an external push monitor's: healthchecks.io, Uptime Kuma,
        Cronitor) every --heartbeat-seconds (default ${DEFAULT_HEARTBEAT_SECONDS}) while the server is healthy (no delivery alert, as
        /api/health); the monitor pages when the beats stop: the server dead, hung or unhealthy;
      --alert-webhook: POST each delivery alert (a lane stuck, the pager late, grading behind, dead letters, a clock
        step, a ladder nobody answered) as it is raised and cleared, as JSON with ids only, to the operator's chat or
        paging tool (signed with CRS_WEBHOOK_SECRET); retried in order while the server runs, the last ${ALERT_WEBHOOK_QUEUE} kept;
      --webhook, --alert-webhook, --heartbeat-url: or CRS_WEBHOOK_URL, CRS_ALERT_WEBHOOK_URL, CRS_HEARTBEAT_URL (their
        paths are often secrets, and a command line is seen by every user: ps); the flag wins over the variable;
      --page-lines: also print each page to a role ({"type":"page",...}, with its acknowledge link) on stdout
      device tokens: crs token issue --device DEVICE_ID --kind KIND [--data DIR] (crs token --help)
      the deployed shape on an emulator or AWS: crs serve --backend aws --help; the demo: crs start --help
`;

// Its own: crs start --help printed crs serve's (some thirty options, of which it takes six).
const START_USAGE = `  crs start [--port N] [--data DIR] [--seed N] [--speed X] [--scheme S] [--config FILE]
      crs serve plus the simulator demo (npm start), on DIR (default .crs/demo): reset on each start;
      --port: default 8080 (a free one if it is taken); --seed, --speed: as crs simulate's (default 1 and 120)
`;

type LoadConfig = (file: string | undefined, scheme: string | undefined) => GradingConfig;

class ServeUsageError extends Error {}

const log = (line: string) => process.stderr.write(`${line}\n`);

const usageError = (error: string) => new ServeUsageError(error);

function port(flag: 'port' | 'mllp-port', text: string | undefined, fallback: number): number {
  return numberFlag(flag, text, LISTEN_PORT, fallback, usageError);
}

function patientAuthority(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const authority = parsePatientAuthority(text);
  if (authority === undefined)
    throw new ServeUsageError(`--hl7-patient-authority must be ${PATIENT_AUTHORITY_RULE} (got ${shown(text)})`);
  return authority;
}

function patientSystem(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const system = parsePatientSystem(text);
  if (system === undefined)
    throw new ServeUsageError(`--fhir-patient-system must be ${PATIENT_SYSTEM_RULE} (got ${shown(text)})`);
  return system;
}

/** The first segments of crs serve's own paths: a --public-url path under one would be taken off them. */
const OWN_PATHS = new Set(['api', 'v1', 'ack', 'healthz', 'fhir', 'board.js', 'board.css', 'chart.js', 'favicon.svg']);

function publicUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServeUsageError(`--public-url must be an http or https URL (got ${shown(text)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ServeUsageError('--public-url must be an http or https URL');
  if (url.search || url.hash) throw new ServeUsageError('--public-url takes no query or fragment');
  // Credentials in it would be in every acknowledge link sent to a phone.
  if (url.username || url.password) throw new ServeUsageError('--public-url takes no user or password');
  // Its path is the board's prefix: put in its page (<base href>) and its cookie's Path, and taken off the paths
  // asked (so it must not be one of the server's own).
  const path = url.pathname.replace(/\/+$/, '');
  if (!/^[A-Za-z0-9\-._~%/]*$/.test(path))
    throw new ServeUsageError('--public-url: its path takes letters, digits and - . _ ~ % / only');
  const first = path.split('/')[1] ?? '';
  if (OWN_PATHS.has(first))
    throw new ServeUsageError(`--public-url: its path cannot start with /${first}, a path of crs serve's own`);
  if (url.protocol === 'http:')
    log('crs serve: warning: --public-url is plain http; acknowledge links would cross the network unencrypted');
  return url.toString().replace(/\/+$/, '');
}

/** The three URL options whose path is often a secret, and the environment variable each may come from instead. */
const URL_ENV = {
  webhook: 'CRS_WEBHOOK_URL',
  'alert-webhook': 'CRS_ALERT_WEBHOOK_URL',
  'heartbeat-url': 'CRS_HEARTBEAT_URL',
} as const;
type UrlFlag = keyof typeof URL_ENV;

/**
 * The URL given to `flag`, or else to its environment variable (2026-12-06): a command line is readable by every user
 * of the machine (ps, /proc/PID/cmdline) and sits in unit files, an owner-only EnvironmentFile does not. An empty
 * variable is not set; the flag wins, said once, neither URL shown. `from` names where it came from, for refusals.
 */
function urlGiven(flag: UrlFlag, text: string | undefined): { text: string; from: string } | undefined {
  const env = URL_ENV[flag];
  const fromEnv = process.env[env] || undefined;
  if (text === undefined) return fromEnv === undefined ? undefined : { text: fromEnv, from: env };
  if (fromEnv !== undefined) log(`crs serve: --${flag} and ${env} both given: --${flag} is used`);
  return { text, from: `--${flag}` };
}

/**
 * An http or https URL given to `flag` (or its environment variable). A push monitor's or an incoming webhook's path
 * may hold a secret, so the text given is never shown, only its scheme (a page webhook's given on the command line that
 * was no URL was shown until 2026-12-06: its path is often a secret too).
 */
function httpUrl(flag: UrlFlag, given: string | undefined): URL | undefined {
  const g = urlGiven(flag, given);
  if (g === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(g.text);
  } catch {
    throw new ServeUsageError(`${g.from} must be an http or https URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ServeUsageError(`${g.from} must be an http or https URL (got ${shown(url.protocol)})`);
  // fetch refuses a URL with credentials (2026-12-06): not one request would ever go out (the heartbeat's monitor
  // paging "down" for a server that is up, every page or alert held), the log saying only "TypeError".
  if (url.username !== '' || url.password !== '')
    throw new ServeUsageError(`${g.from} must not hold a user or password (user:password@): nothing could be sent`);
  if (
    url.protocol === 'http:' &&
    flag !== 'heartbeat-url' &&
    !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  )
    log(
      `crs serve: warning: ${g.from} is plain http to another host; ${flag === 'webhook' ? 'pages' : 'alerts'} would cross the network unencrypted`,
    );
  return url;
}

function heartbeatOption(
  text: string | undefined,
  seconds: string | undefined,
): { url: string; everyMs: number } | undefined {
  const url = httpUrl('heartbeat-url', text);
  if (url === undefined) {
    if (seconds !== undefined)
      throw new ServeUsageError(
        `--heartbeat-seconds is the heartbeat's: give --heartbeat-url (or ${URL_ENV['heartbeat-url']}) too`,
      );
    return undefined;
  }
  const every = numberFlag('heartbeat-seconds', seconds, HEARTBEAT_SECONDS, DEFAULT_HEARTBEAT_SECONDS, usageError);
  return { url: url.toString(), everyMs: every * 1000 };
}

/** Waits for SIGINT or SIGTERM, then closes the server cleanly. */
function untilSignal(server: EmbeddedServer, also?: () => void): Promise<number> {
  return new Promise((resolveExit) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      log(`crs serve: ${signal}: finishing the work in flight and stopping`);
      also?.();
      server.close().then(
        () => resolveExit(0),
        (err: Error) => {
          log(`crs serve: error while stopping: ${err.message}`);
          resolveExit(1);
        },
      );
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

/** A --host that listens on every address: the URL printed for links says 127.0.0.1, which the listener is not. */
const wildcard = (host: string | undefined) => host === '0.0.0.0' || host === '::' || host === '[::]';

/** A path as one word of a shell command line: quoted when it holds anything but the plain characters. */
const shellWord = (path: string) => (/^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`);

function announce(
  server: EmbeddedServer,
  config: GradingConfig,
  localToken: string | undefined,
  webhook?: string,
  host?: string,
): void {
  const where = wildcard(host) ? `every address (--host ${host}), port ${server.port}; here ${server.url}` : server.url;
  log(`crs serve: listening on ${where} (data ${server.dataDir}, scheme ${config.scheme}; crs ${thisRelease()})`);
  // The link holds the board key, which opens every patient's record: printed only to a person at a terminal. Under
  // a supervisor standard error is a log (the journal), where it was written at every start until 2026-12-06.
  if (process.stderr.isTTY) log(`crs serve: on-call board: ${server.boardUrl}`);
  else {
    const board = new URL(server.boardUrl);
    board.search = '';
    log(
      `crs serve: on-call board: ${board} (its link with the key, as this user: crs board-link --data ${shellWord(server.dataDir)})`,
    );
  }
  log(
    `crs serve: devices POST ${server.url}/v1/messages with "Authorization: Bearer <token>" ` +
      (localToken
        ? '(CRS_INGEST_TOKEN or a device token)'
        : '(a device token: crs token issue --device DEVICE_ID --kind KIND; or set CRS_INGEST_TOKEN)'),
  );
  log(
    `crs serve: pages go to standard output as NDJSON${webhook ? ` and to the webhook ${new URL(webhook).origin}` : ''}`,
  );
  log(
    `crs serve: escalation ladders for ${Object.keys(config.paging.policies).join(', ')}; ` +
      `a page not acknowledged in ${config.paging.timeoutMinutes.severe} min (grade ${config.paging.severeFromGrade}+) or ${config.paging.timeoutMinutes.other} min goes to the next level`,
  );
}

/** The flags `crs serve` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const SERVE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  webhook: { type: 'string' },
  scheme: { type: 'string' },
  config: { type: 'string' },
  'public-url': { type: 'string' },
  'page-lines': { type: 'boolean' },
  'mllp-port': { type: 'string' },
  'mllp-device': { type: 'string' },
  ...MLLP_TLS_LISTENER_FLAGS,
  ...INTERFACE_FLAGS,
  'max-patients': { type: 'string' },
  'retention-days': { type: 'string' },
  'board-ended-hours': { type: 'string' },
  'max-observation-age-days': { type: 'string' },
  'trust-proxy': { type: 'string', multiple: true },
  'ingest-token-any-host': { type: 'boolean' },
  'heartbeat-url': { type: 'string' },
  'heartbeat-seconds': { type: 'string' },
  'alert-webhook': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function serveCommand(args: string[], loadConfig: LoadConfig): Promise<number> {
  try {
    const { values: v } = parseFlags({
      args,
      options: SERVE_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${SERVE_USAGE}`);
      return 0;
    }
    if (v['mllp-device'] !== undefined && v['mllp-port'] === undefined)
      throw new ServeUsageError("--mllp-device is the MLLP listener's device: give --mllp-port too");
    if ([...MLLP_TLS_OPTIONS, 'mllp-tls-crl' as const].some((f) => v[f] !== undefined) && v['mllp-port'] === undefined)
      throw new ServeUsageError(
        "--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca and --mllp-tls-crl are the MLLP listener's: give --mllp-port too",
      );
    const mllpTls = readMllpTls(v);
    const maxPatients = numberFlag('max-patients', v['max-patients'], MAX_PATIENTS, undefined, usageError);
    const retentionDays = numberFlag('retention-days', v['retention-days'], RETENTION_DAYS, undefined, usageError);
    const boardEndedHours = numberFlag(
      'board-ended-hours',
      v['board-ended-hours'],
      BOARD_ENDED_HOURS,
      undefined,
      usageError,
    );
    const age = v['max-observation-age-days'];
    const maxObservationAge = age === undefined ? undefined : maxObservationAgeMs(age);
    if (age !== undefined && maxObservationAge === undefined)
      throw new ServeUsageError(`--max-observation-age-days must be ${MAX_OBSERVATION_AGE_RULE} (got ${shown(age)})`);
    for (const a of v['trust-proxy'] ?? [])
      if (isIP(a) === 0) throw new ServeUsageError(`--trust-proxy must be an IP address (got ${shown(a)})`);
    const zoneText = v['hl7-zone'];
    const badZone = zoneText === undefined ? undefined : zoneProblem(zoneText);
    if (zoneText !== undefined && badZone !== undefined)
      throw new ServeUsageError(`--hl7-zone ${shown(zoneText)} ${badZone}`);
    const hl7Zone = zoneText === undefined ? undefined : parseZone(zoneText);
    const hl7PatientAuthority = patientAuthority(v['hl7-patient-authority']);
    const heartbeat = heartbeatOption(v['heartbeat-url'], v['heartbeat-seconds']);
    const fhirPatientSystem = patientSystem(v['fhir-patient-system']);
    const drugCodesPath = v['fhir-drug-codes'];
    const fhirDrugCodes =
      drugCodesPath === undefined ? undefined : drugCodesFile(drugCodesPath, (t) => new ServeUsageError(t));
    const listenPort = port('port', v.port, 8080);
    const mllpPort = v['mllp-port'] === undefined ? undefined : port('mllp-port', v['mllp-port'], 0);
    const dataDir = v.data ?? DEFAULT_DATA_DIR;
    const config = loadConfig(v.config, v.scheme);
    const webhook = httpUrl('webhook', v.webhook)?.toString();
    const alertWebhook = httpUrl('alert-webhook', v['alert-webhook'])?.toString();
    const links = publicUrl(v['public-url']);
    const localToken = process.env.CRS_INGEST_TOKEN || undefined;
    const server = await startEmbeddedServer({
      dataDir,
      config,
      release: thisRelease(),
      ...(links ? { publicUrl: links } : {}),
      pageLines: v['page-lines'] ?? false,
      port: listenPort,
      ...(mllpPort !== undefined ? { mllpPort } : {}),
      ...(v['mllp-device'] !== undefined ? { mllpDevice: v['mllp-device'] } : {}),
      ...(mllpTls ? { mllpTls } : {}),
      ...(maxPatients !== undefined ? { maxPatients } : {}),
      ...(retentionDays !== undefined ? { retentionDays } : {}),
      ...(boardEndedHours !== undefined ? { boardEndedHours } : {}),
      ...(maxObservationAge !== undefined ? { maxObservationAgeMs: maxObservationAge } : {}),
      ...(v['trust-proxy'] ? { trustProxy: v['trust-proxy'] } : {}),
      ...(v['ingest-token-any-host'] ? { localTokenAnyHost: true } : {}),
      ...(hl7Zone ? { hl7Zone } : {}),
      ...(hl7PatientAuthority !== undefined ? { hl7PatientAuthority } : {}),
      ...(fhirPatientSystem !== undefined ? { fhirPatientSystem } : {}),
      ...(fhirDrugCodes !== undefined ? { fhirDrugCodes } : {}),
      ...(v.host ? { host: v.host } : {}),
      ...(localToken ? { localToken } : {}),
      ...(webhook ? { webhook: signedTarget(webhook) } : {}),
      ...(process.env.CRS_TEST_CLOCK === '1' ? { testClock: true } : {}),
      ...testPing(),
      ...(heartbeat ? { heartbeat } : {}),
      ...(alertWebhook ? { alertWebhook: { ...signedTarget(alertWebhook), ...(links ? { server: links } : {}) } } : {}),
      log,
    });
    // Listening for the signals before the lines scripts and supervisors wait for: a SIGTERM sent as soon as they are
    // out met the default action and killed the server, its work in flight cut off (until 2026-12-06; seen in CI; the
    // MLLP line, which a script feeding HL7 waits for, until later that day).
    const stopped = untilSignal(server);
    // Before the board's line, which scripts wait for: once that is out, the MLLP port is known too.
    if (server.mllpPort !== undefined) {
      log(
        `crs serve: HL7 v2 over MLLP on ${wildcard(v.host) ? `every address (--host ${v.host}), port ` : `${new URL(server.url).hostname}:`}${server.mllpPort}${mllpTls ? ' inside TLS (client certificates of --mllp-tls-ca, each naming its device)' : ''} (ACK after the commit)`,
      );
      const open = openMllpWarning(v.host ?? '127.0.0.1', v['mllp-device'], mllpTls !== undefined);
      if (open) log(`crs serve: WARNING ${open}`);
    }
    announce(server, config, localToken, webhook, v.host);
    const plain = plainHttpWarning(v.host ?? '127.0.0.1', {
      ...(links ? { publicUrl: links } : {}),
      ...(v['trust-proxy'] ? { trustProxy: v['trust-proxy'] } : {}),
    });
    if (plain) log(`crs serve: warning: ${plain}`);
    if (heartbeat)
      log(
        `crs serve: heartbeat: GET ${new URL(heartbeat.url).origin} every ${heartbeat.everyMs / 1000} s while healthy`,
      );
    if (alertWebhook)
      log(
        `crs serve: alert webhook: POST ${new URL(alertWebhook).origin} each delivery alert raised and cleared (ids only)`,
      );
    return await stopped;
  } catch (err) {
    return failed('serve', err);
  }
}

/** Test hook: CRS_TEST_WEBHOOK_RETRY_MS="initial,max" shortens the webhooks' backoff (1 s doubling to 60 s). */
/** A webhook's target (pages or operator alerts): its URL, signed with CRS_WEBHOOK_SECRET when set. */
function signedTarget(url: string): { url: string; secret?: string; retry?: { initialMs: number; maxMs: number } } {
  return {
    url,
    ...(process.env.CRS_WEBHOOK_SECRET ? { secret: process.env.CRS_WEBHOOK_SECRET } : {}),
    ...testRetry(),
  };
}

function testRetry(): { retry?: { initialMs: number; maxMs: number } } {
  const m = process.env.CRS_TEST_WEBHOOK_RETRY_MS?.match(/^(\d+),(\d+)$/);
  return m ? { retry: { initialMs: Number(m[1]), maxMs: Number(m[2]) } } : {};
}

/** Test hook: CRS_TEST_SSE_PING_MS=N pings the board every N ms (15 s): its lost-server banner then comes sooner. */
function testPing(): { ssePingMs?: number } {
  const ms = Number(process.env.CRS_TEST_SSE_PING_MS);
  return Number.isInteger(ms) && ms >= 50 ? { ssePingMs: ms } : {};
}

function failed(command: 'serve' | 'start', err: unknown): number {
  const e = err as Error & { code?: string };
  if (e instanceof ServeUsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
    log(`crs ${command}: ${inline(e.message)}\nusage:\n${command === 'start' ? START_USAGE : SERVE_USAGE}`);
    return 2;
  }
  if (e.code === 'EADDRINUSE') {
    // The MLLP listener's port: "choose another with --port N" sent the operator to change the port that was free.
    const mllp = (e as { listener?: string }).listener === 'mllp';
    // Which port: an operator who gave no --port (8080) was told "the port" and had to guess (2026-12-06).
    const port = (e as { port?: number }).port;
    log(
      mllp
        ? `crs ${command}: the MLLP port ${port} is already in use; choose another with --mllp-port N`
        : `crs ${command}: ${port === undefined ? 'the port' : `port ${port}`} is already in use; choose another with --port N (or --port 0 for any free port)`,
    );
    return 2;
  }
  if (
    e.name === 'UsageError' ||
    /^(--scheme|cannot read config|invalid config|CRS_INGEST_TOKEN|CRS_TEST_CLOCK|--mllp-device)/.test(e.message)
  ) {
    log(`crs ${command}: ${e.message}`);
    return 2;
  }
  log(`crs ${command}: ${e.message}`);
  return 1;
}

const DEMO_MARKER = 'CRS-DEMO';

/**
 * The demo replays courses from the recent past (observations hours old, catching up with the present), so by the
 * monitor's clock every feed would look quiet until it caught up: the demo's stale-feed time covers that span.
 */
function demoConfig(config: GradingConfig, spanMs: number): GradingConfig {
  const catchUp = Math.ceil(spanMs / 60_000) + config.paging.staleFeedMinutes;
  return {
    ...config,
    paging: { ...config.paging, staleFeedMinutes: Math.max(config.paging.staleFeedMinutes, catchUp) },
  };
}

/**
 * The demo directory is wiped on each start, so it must be one the demo made (never someone's real data), and no
 * server may be running on it: a second `crs start` deleted the running demo's database, WAL included, then found
 * the directory in use (its board went on over a database nobody else could read).
 */
function resetDemoDir(dir: string): void {
  const abs = resolve(dir);
  if (existsSync(abs) && readdirSync(abs).length > 0 && !existsSync(join(abs, DEMO_MARKER))) {
    throw new ServeUsageError(`${abs} is not a demo data directory (no ${DEMO_MARKER} file); refusing to reset it`);
  }
  const lock = lockDataDir(abs);
  try {
    for (const f of readdirSync(abs)) if (f.startsWith('crs.db')) rmSync(join(abs, f));
    openDataDir(abs).close();
    writeFileSync(join(abs, DEMO_MARKER), 'Data of `crs start` (the demo): reset on every start.\n');
  } finally {
    lock.release();
  }
}

/** The flags `crs start` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const START_OPTIONS = {
  port: { type: 'string' },
  data: { type: 'string' },
  seed: { type: 'string' },
  speed: { type: 'string' },
  scheme: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function startCommand(args: string[], loadConfig: LoadConfig): Promise<number> {
  try {
    const { values: v } = parseFlags({
      args,
      options: START_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${START_USAGE}`);
      return 0;
    }
    // As crs simulate reads them, before the demo directory is reset.
    const wanted = port('port', v.port, 8080);
    const seed = numberFlag('seed', v.seed, SEED_RANGE, 1, usageError);
    const speed = numberFlag('speed', v.speed, SPEED_RANGE, 120, usageError);
    const loaded = loadConfig(v.config, v.scheme);
    const dataDir = v.data ?? join(DEFAULT_DATA_DIR, 'demo');
    resetDemoDir(dataDir);
    const token = process.env.CRS_INGEST_TOKEN || `demo_${randomBytes(32).toString('base64url')}`;
    const scenario = scenarioFor({ seed, speed, courses: COURSE_NAMES, copies: 1 });
    const config = demoConfig(loaded, scenario.spanMs);
    const options = { dataDir, config, release: thisRelease(), localToken: token, log };
    let server: EmbeddedServer;
    try {
      server = await startEmbeddedServer({ ...options, port: wanted });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || v.port !== undefined) throw err;
      log(`crs start: port ${wanted} is in use; taking a free one`);
      server = await startEmbeddedServer({ ...options, port: 0 });
    }

    const abort = new AbortController();
    const stopped = untilSignal(server, () => abort.abort()); // before the lines waited for, as crs serve
    log('');
    log(`  On-call board: ${server.boardUrl}`);
    log('');
    log(`crs start: demo: ${describeScenario(scenario, speed)}`);
    log('crs start: the courses are replayed from the recent past up to now (the server refuses future times),');
    log('crs start: so observation ages shrink as the demo catches up. Pages stream below as NDJSON. Ctrl-C stops.');
    log(
      `crs start: devices may also POST ${server.url}/v1/messages with "Authorization: Bearer ${process.env.CRS_INGEST_TOKEN ? '$CRS_INGEST_TOKEN' : token}"`,
    );

    const sim = runSimulation(scenario, {
      url: server.url,
      token,
      speed,
      follow: true,
      signal: abort.signal,
      log,
    }).catch((err: Error) => {
      log(`crs start: the simulator stopped: ${err.message}`);
    });
    const code = await stopped;
    await sim;
    return code;
  } catch (err) {
    return failed('start', err);
  }
}
