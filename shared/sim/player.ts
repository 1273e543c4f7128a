// Plays a scenario to a running server over HTTP, like device gateways would: each message is POSTed when its
// time comes (accelerated by `speed`), a patient's messages one after the other in order, retried on 5xx, 429
// and connection errors (the server may be restarting; no sooner than a Retry-After asks), never on a 4xx it would
// refuse again.
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeviceMessage } from '#domain/contract.ts';
import { MINUTE } from '#domain/time.ts';
import { mulberry32 } from './prng.ts';
import { settledReading, type Scenario } from './courses.ts';

export interface PlayOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token: string;
  /** Patient minutes per real minute. */
  speed: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** How each message goes (an HTTP status back, or the server's answer); POST /v1/messages by default. */
  deliver?: (m: DeviceMessage, signal?: AbortSignal) => Promise<number | Answer>;
}

/** What the server answered a message: its HTTP status, and what it said of a refusal (why), if anything. */
export interface Answer {
  status: number;
  reason?: string;
}

export interface PlayStats {
  sent: number;
  accepted: number;
  refused: number;
}

class TokenRefused extends Error {}

/**
 * The scenario start (patient time) that makes an accelerated course end at the present: the server refuses
 * observations from the future, so a course played faster than real time is a course from the recent past.
 */
export function anchorStart(nowMs: number, spanMs: number, speed: number): number {
  return Math.floor((nowMs - spanMs + spanMs / speed) / 1000) * 1000;
}

/** The `error` and `errors` a JSON answer carries (the ingest says what it refused, and why), if any. */
function saidIn(body: string): { error?: string; errors: string[] } {
  try {
    const said = JSON.parse(body) as { error?: unknown; errors?: unknown } | null;
    const error = typeof said?.error === 'string' && said.error !== '' ? said.error : undefined;
    const errors = Array.isArray(said?.errors)
      ? said.errors.filter((e): e is string => typeof e === 'string' && e !== '')
      : [];
    return { ...(error !== undefined ? { error } : {}), errors };
  } catch {
    return { errors: [] };
  }
}

export const MAX_ATTEMPTS = 10;

/** The wait before another attempt after `attempt` failed ones: 250 ms doubling, 8 s at most. */
export const retryDelay = (attempt: number) => Math.min(8000, 250 * 2 ** (attempt - 1));

export async function postMessage(url: string, token: string, m: DeviceMessage, signal?: AbortSignal): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    let status: number;
    let asked = 0; // the server's Retry-After, ms (a minute at most)
    // The server's own words: what it refused (a token, a scope, the patient ceiling; a 400's fields) and why.
    let said: { error?: string; errors: string[] } = { errors: [] };
    try {
      const res = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(m),
        ...(signal ? { signal } : {}),
      });
      said = saidIn(await res.text());
      status = res.status;
      asked = Math.min(60, Number(res.headers.get('retry-after')) || 0) * 1000;
    } catch (err) {
      if (signal?.aborted || attempt >= MAX_ATTEMPTS) throw err;
      status = 0;
    }
    if (status === 401 || status === 403)
      throw new TokenRefused(
        said.error === undefined
          ? `the server refused the ingest token (HTTP ${status})`
          : `the server refused the message (HTTP ${status}): ${said.error}`,
      );
    // A 400 names each field it refused (`errors`); other answers say it in one `error`.
    const reason = said.errors.length > 0 ? said.errors.join('; ') : said.error;
    const answer = { status, ...(reason !== undefined ? { reason } : {}) };
    if (status !== 0 && status !== 429 && status < 500) return answer;
    if (attempt >= MAX_ATTEMPTS) return answer;
    await sleep(Math.max(retryDelay(attempt), asked), undefined, signal ? { signal } : {});
  }
}

/** Sends every message at its time; resolves when all are answered. */
export async function play(scenario: Scenario, o: PlayOptions): Promise<PlayStats> {
  const log = o.log ?? (() => undefined);
  const stats: PlayStats = { sent: 0, accepted: 0, refused: 0 };
  const chains = new Map<string, Promise<void>>();
  const realStart = Date.now();
  let failure: Error | undefined;

  const send = async (m: DeviceMessage) => {
    if (failure || o.signal?.aborted) return;
    stats.sent++;
    try {
      const answer = await (o.deliver ?? ((x, signal) => postMessage(o.url, o.token, x, signal)))(m, o.signal);
      const { status, reason } = typeof answer === 'number' ? { status: answer, reason: undefined } : answer;
      if (status === 202) stats.accepted++;
      else {
        stats.refused++;
        log(
          `simulate: message ${m.messageId} of patient ${m.patientId} refused (HTTP ${status})${reason !== undefined ? `: ${reason}` : ''}`,
        );
      }
    } catch (err) {
      failure ??= err as Error;
    }
  };

  for (const m of scenario.messages) {
    if (failure || o.signal?.aborted) break;
    const due = realStart + (Date.parse(m.observedAt) - scenario.start) / o.speed;
    const wait = due - Date.now();
    if (wait > 1) {
      try {
        await sleep(wait, undefined, o.signal ? { signal: o.signal } : {});
      } catch {
        break; // aborted
      }
    }
    const prev = chains.get(m.patientId) ?? Promise.resolve();
    chains.set(
      m.patientId,
      prev.then(() => send(m)),
    );
  }
  await Promise.all(chains.values());
  if (failure && !o.signal?.aborted) throw failure;
  return stats;
}

/**
 * After the courses: a monitor reading per patient every `everyMs` of real time, stamped with the present, so that
 * the board stays live (ages stay fresh). Runs until the signal aborts.
 */
export async function follow(scenario: Scenario, o: PlayOptions & { everyMs?: number }): Promise<void> {
  const rng = mulberry32(scenario.seed ^ 0x5eed);
  const every = o.everyMs ?? MINUTE;
  for (let n = 1; !o.signal?.aborted; n++) {
    const t = Math.floor(Date.now() / 1000) * 1000;
    await Promise.all(
      scenario.patients.map((p) =>
        (o.deliver ?? ((x, signal) => postMessage(o.url, o.token, x, signal)))(
          settledReading(rng, p, t, n),
          o.signal,
        ).catch(() => undefined),
      ),
    );
    try {
      await sleep(every, undefined, o.signal ? { signal: o.signal } : {});
    } catch {
      return;
    }
  }
}
