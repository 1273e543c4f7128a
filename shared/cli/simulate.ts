// `crs simulate`: plays realistic courses to a running `crs serve` over HTTP, at accelerated speed, deterministic
// for a seed (and a --start). With --ndjson it prints the messages instead, e.g. to pipe into `crs replay -`.
import { setTimeout as sleep } from 'node:timers/promises';
import { ackReason, readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { MLLP_TLS_FLAGS, readMllpTls, type MllpTls } from '#hosts/mllp-tls.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { iso } from '#domain/time.ts';
import { parseTimeWithOffset } from '#domain/typed-time.ts';
import { COURSES, COURSE_NAMES, buildScenario, type Scenario } from '#sim/courses.ts';
import {
  MAX_ATTEMPTS,
  anchorStart,
  follow,
  play,
  postMessage,
  retryDelay,
  type Answer,
  type PlayStats,
} from '#sim/player.ts';
import { CONNECT_PORT, inline, numberFlag, shown, type NumberRange, parseFlags } from './flags.ts';
import { NdjsonWriter } from './io.ts';

export const SIMULATE_USAGE = `  crs simulate [--url URL] [--token T] [--seed N] [--speed X] [--courses LIST] [--copies N]
               [--start TIME] [--follow] [--ndjson] [--format hl7v2 --mllp HOST:PORT]
               [--mllp-tls-cert FILE --mllp-tls-key FILE --mllp-tls-ca FILE]
      play simulated patient courses to a running crs serve (token: --token or CRS_INGEST_TOKEN);
      --format hl7v2 --mllp HOST:PORT: the monitors' readings as IHE PCD-01 over MLLP (crs serve --mllp-port,
      or crs mllp-bridge), the rest (enrolment, pumps, charting) as JSON to --url as before;
      --mllp-tls-*: MLLP inside TLS with this client certificate and key, the listener's signed by the CA
      courses: ${COURSE_NAMES.join(', ')} (default: all)
`;

export const SIMULATE_DEFAULTS = { url: 'http://127.0.0.1:8080', seed: 1, speed: 60 } as const;
/** --seed and --speed, of crs simulate and crs start alike. */
export const SEED_RANGE: NumberRange = { min: 0, max: 2 ** 32 - 1 };
export const SPEED_RANGE: NumberRange = { min: 1, max: 100_000, fraction: true };

export class SimulateUsageError extends Error {}

export interface SimulateSettings {
  seed: number;
  speed: number;
  courses: string[];
  copies: number;
  /** Scenario start (patient time); by default chosen so that the courses end at the present. */
  start?: number;
}

/** The flags `crs simulate` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const SIMULATE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  seed: { type: 'string' },
  speed: { type: 'string' },
  courses: { type: 'string' },
  copies: { type: 'string' },
  start: { type: 'string' },
  follow: { type: 'boolean' },
  ndjson: { type: 'boolean' },
  format: { type: 'string' },
  mllp: { type: 'string' },
  ...MLLP_TLS_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseSimulateArgs(args: string[]) {
  const { values } = parseFlags({
    args,
    options: SIMULATE_OPTIONS,
  });
  const fail = (error: string) => new SimulateUsageError(error);
  const courses = values.courses
    ? values.courses
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean)
    : COURSE_NAMES;
  for (const c of courses)
    if (!COURSES[c]) throw new SimulateUsageError(`unknown course ${shown(c)} (courses: ${COURSE_NAMES.join(', ')})`);
  let start: number | undefined;
  if (values.start !== undefined) {
    // With a zone offset: a local time would make the same --seed and --start give other messages on another machine.
    start = parseTimeWithOffset(values.start);
    if (!Number.isFinite(start))
      throw new SimulateUsageError(
        `--start must be an RFC 3339 time with a zone offset, e.g. 2026-11-26T06:00:00Z (got ${shown(values.start)})`,
      );
  }
  const settings: SimulateSettings = {
    seed: numberFlag('seed', values.seed, SEED_RANGE, SIMULATE_DEFAULTS.seed, fail),
    speed: numberFlag('speed', values.speed, SPEED_RANGE, SIMULATE_DEFAULTS.speed, fail),
    courses,
    copies: numberFlag('copies', values.copies, { min: 1, max: 200 }, 1, fail),
    ...(start !== undefined ? { start } : {}),
  };
  if (values.format !== undefined && values.format !== 'json' && values.format !== 'hl7v2')
    throw new SimulateUsageError('--format must be json or hl7v2');
  const mllp = values.mllp?.match(/^(.+):([^:\]]*)$/);
  if ((values.format === 'hl7v2') !== (values.mllp !== undefined))
    throw new SimulateUsageError('--format hl7v2 and --mllp HOST:PORT go together');
  if (values.mllp !== undefined && !mllp)
    throw new SimulateUsageError(`--mllp must be HOST:PORT (got ${shown(values.mllp)})`);
  const mllpPort = mllp ? numberFlag('mllp PORT', mllp[2], CONNECT_PORT, 0, fail) : 0;
  let tls: MllpTls | undefined;
  try {
    tls = readMllpTls(values);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (tls && !mllp) throw fail('--mllp-tls-cert, --mllp-tls-key and --mllp-tls-ca are for --mllp HOST:PORT');
  return {
    settings,
    ...(mllp ? { mllp: { host: mllp[1]!.replace(/^\[|\]$/g, ''), port: mllpPort, ...(tls ? { tls } : {}) } } : {}),
    url: (values.url ?? SIMULATE_DEFAULTS.url).replace(/\/+$/, ''),
    token: values.token ?? process.env.CRS_INGEST_TOKEN,
    follow: values.follow ?? false,
    ndjson: values.ndjson ?? false,
    help: values.help ?? false,
  };
}

/** The scenario for these settings; without a start, it ends at `now` once played at `speed`. */
export function scenarioFor(s: SimulateSettings, now = Date.now()): Scenario {
  const draft = buildScenario({ seed: s.seed, start: s.start ?? now, courses: s.courses, copies: s.copies });
  if (s.start !== undefined) return draft;
  return buildScenario({
    seed: s.seed,
    start: anchorStart(now, draft.spanMs, s.speed),
    courses: s.courses,
    copies: s.copies,
  });
}

export function describeScenario(sc: Scenario, speed: number): string {
  const hours = Math.round((sc.spanMs / 3_600_000) * 10) / 10;
  const realMin = Math.round((sc.spanMs / speed / 60_000) * 10) / 10;
  const who = sc.patients.map((p) => `${p.patientId} (${p.bed}, ${p.course})`).join(', ');
  return `${sc.patients.length} patients: ${who}; ${hours} h of patient time from ${iso(sc.start)} at ${speed}x, about ${realMin} min`;
}

/**
 * Delivery over MLLP for what a monitor measures (vitals, oxygen), as IHE PCD-01; everything else over HTTP. The
 * ACK code stands for an HTTP status in the statistics: AA 202, AE 422, AR 400, and what a refusal's ACK says
 * (ackReason: its ERR segments, MSA-3) is its reason, as a 400's errors are over HTTP. An AR that says "send again"
 * (the server's queue was down: its 503) and a lost connection (a restart) are tried again as over HTTP.
 */
export function mllpDelivery(
  client: MllpClient,
  url: string,
  token: string,
): (m: DeviceMessage, signal?: AbortSignal) => Promise<Answer> {
  return async (m, signal) => {
    const text =
      m.source.kind === 'monitor' || m.source.kind === 'ventilator'
        ? toPcd01(m, { application: 'CRS-SIM', facility: 'SIM' })
        : undefined;
    if (!text || m.enrolment || m.vasopressors || m.medications || m.neuro || m.organToxicity || m.labs)
      return postMessage(url, token, m, signal);
    for (let attempt = 1; ; attempt++) {
      let ack: string | undefined;
      try {
        ack = await client.send(text);
      } catch (err) {
        if (signal?.aborted || attempt >= MAX_ATTEMPTS) throw err;
      }
      const code = ack === undefined ? undefined : readAck(ack)?.code;
      const again = ack === undefined || (code === 'AR' && /send again/i.test(ack));
      // The last try's answer (a lost connection on the last try was thrown above).
      if (ack !== undefined && (!again || attempt >= MAX_ATTEMPTS)) {
        if (code === 'AA') return { status: 202 };
        const reason = ackReason(ack);
        return { status: again ? 503 : code === 'AE' ? 422 : 400, ...(reason !== undefined ? { reason } : {}) };
      }
      await sleep(retryDelay(attempt), undefined, signal ? { signal } : {});
    }
  };
}

/** Plays, then (with follow) keeps the patients live until the signal aborts. */
export async function runSimulation(
  sc: Scenario,
  o: {
    url: string;
    token: string;
    speed: number;
    follow: boolean;
    signal?: AbortSignal;
    log: (line: string) => void;
    deliver?: (m: DeviceMessage, signal?: AbortSignal) => Promise<number | Answer>;
  },
): Promise<PlayStats> {
  const stats = await play(sc, o);
  const counts = `${stats.accepted} of ${stats.sent} messages accepted${stats.refused ? `, ${stats.refused} refused` : ''}`;
  o.log(
    o.signal?.aborted ? `simulate: stopped: ${counts} (of ${sc.messages.length})` : `simulate: courses done: ${counts}`,
  );
  if (o.follow && !o.signal?.aborted) {
    o.log('simulate: following: one monitor reading per patient per minute (Ctrl-C to stop)');
    await follow(sc, o);
  }
  return stats;
}

export async function simulateCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseSimulateArgs(args);
  } catch (err) {
    if (err instanceof SimulateUsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs simulate: ${inline((err as Error).message)}\nusage:\n${SIMULATE_USAGE}`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(`usage:\n${SIMULATE_USAGE}`);
    return 0;
  }
  const sc = scenarioFor(parsed.settings);
  if (parsed.ndjson) {
    const out = new NdjsonWriter(process.stdout);
    for (const m of sc.messages) await out.write(m);
    await out.flush();
    return 0;
  }
  if (!parsed.token) {
    process.stderr.write(
      'crs simulate: no ingest token: pass --token or set CRS_INGEST_TOKEN (the one crs serve accepts)\n',
    );
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const client = parsed.mllp
    ? new MllpClient(parsed.mllp.host, parsed.mllp.port, undefined, undefined, parsed.mllp.tls)
    : undefined;
  const deliver = client ? mllpDelivery(client, parsed.url, parsed.token) : undefined;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await fetch(`${parsed.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  } catch {
    log(`crs simulate: no server answers at ${parsed.url}: start one with crs serve (or pass --url)`);
    return 1;
  }
  log(`simulate: ${describeScenario(sc, parsed.settings.speed)}`);
  try {
    const stats = await runSimulation(sc, {
      url: parsed.url,
      token: parsed.token,
      speed: parsed.settings.speed,
      follow: parsed.follow,
      signal: abort.signal,
      log,
      ...(deliver ? { deliver } : {}),
    });
    return stats.refused > 0 ? 1 : 0;
  } catch (err) {
    log(
      `crs simulate: ${(err as Error).message}${(err as { cause?: { code?: string } }).cause?.code ? ` (${(err as { cause: { code: string } }).cause.code}; is crs serve running at ${parsed.url}?)` : ''}`,
    );
    return 1;
  } finally {
    client?.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
