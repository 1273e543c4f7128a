// The simulator: deterministic for a seed, valid messages only, and each course grades as it says for any seed
// (checked through the same replay code the pipeline uses); the player and `crs simulate` against a stand-in server.
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Replay } from '#app/replay.ts';
import { buildAck } from '#app/hl7v2/ack.ts';
import { mllpDelivery, parseSimulateArgs, scenarioFor, SimulateUsageError, simulateCommand } from '#cli/simulate.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { type DeviceMessage, validateMessage } from '#domain/contract.ts';
import type { NotificationEvent } from '#domain/events.ts';
import { iso } from '#domain/time.ts';
import type { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { buildScenario, COURSE_NAMES, COURSES, settledReading } from '#sim/courses.ts';
import { anchorStart, follow, play, postMessage } from '#sim/player.ts';
import { int, mulberry32, round, uniform } from '#sim/prng.ts';

// The player's waits, replaceable per test (see ownClock); everything else in this file sleeps for real.
vi.mock('node:timers/promises', async (original) => {
  const actual = await original<typeof import('node:timers/promises')>();
  return { ...actual, setTimeout: vi.fn(actual.setTimeout) };
});

const START = Date.parse('2026-03-01T06:00:00Z');

function pagesOf(course: string, seed: number): NotificationEvent[] {
  const sc = buildScenario({ seed, start: START, courses: [course] });
  const replay = new Replay(DEFAULT_CONFIG);
  const events = sc.messages.flatMap((m, i) => replay.line(JSON.stringify(m), i + 1));
  expect(replay.rejected).toBe(0);
  return events.filter((e): e is NotificationEvent => e.type === 'notification');
}

const summary = (pages: NotificationEvent[]) =>
  pages.map((p) => `${p.condition} ${p.kind} ${p.fromGrade}->${p.toGrade}`);

describe('simulated courses', () => {
  it('are the same messages for the same seed and start, and differ for another seed', () => {
    const a = buildScenario({ seed: 7, start: START });
    const b = buildScenario({ seed: 7, start: START });
    const c = buildScenario({ seed: 8, start: START });
    expect(JSON.stringify(a.messages)).toBe(JSON.stringify(b.messages));
    expect(JSON.stringify(a.messages)).not.toBe(JSON.stringify(c.messages));
    expect(a.patients.map((p) => p.course)).toEqual(COURSE_NAMES);
  });

  it('hold only valid, unique, time-ordered messages', () => {
    const sc = buildScenario({ seed: 3, start: START, copies: 3 });
    expect(new Set(sc.patients.map((p) => p.patientId)).size).toBe(COURSE_NAMES.length * 3);
    expect(new Set(sc.messages.map((m) => m.messageId)).size).toBe(sc.messages.length);
    for (const m of sc.messages) expect(validateMessage(m)).toEqual({ ok: true, message: m });
    const times = sc.messages.map((m) => Date.parse(m.observedAt));
    expect(times).toEqual([...times].sort((x, y) => x - y));
  });

  for (const seed of [1, 2, 3, 42, 2026]) {
    it(`grade as described for seed ${seed}`, () => {
      const crs = pagesOf('crs', seed);
      expect(summary(crs)).toEqual([
        'crs escalation 0->1',
        'crs escalation 1->2',
        'crs escalation 2->3',
        'crs de-escalation 3->1',
      ]);
      expect(crs[2]!.teams).toEqual(['hematology', 'icu']);
      expect(crs[2]!.reasons.join(' ')).toContain('norepinephrine');

      const icans = pagesOf('icans', seed);
      expect(summary(icans).slice(0, 3)).toEqual([
        'icans escalation 0->1',
        'icans escalation 1->2',
        'icans escalation 2->3',
      ]);
      expect(icans[2]!.teams).toContain('icu');
      expect(icans.every((p) => p.condition === 'icans')).toBe(true);

      expect(pagesOf('quiet', seed)).toEqual([]);
      expect(pagesOf('artefact', seed)).toEqual([]); // one low reading alone pages nobody

      const bispecific = pagesOf('bispecific', seed);
      expect(summary(bispecific).slice(0, 2)).toEqual(['crs escalation 0->1', 'crs escalation 1->2']);
      expect(bispecific[1]!.actions.join(' ')).toMatch(/interrupt the infusion/i);
    });
  }

  it('escalate to CRS 3 within the first minute of the demo (npm start plays at 120x)', () => {
    const sc = buildScenario({ seed: 1, start: START, courses: ['crs'] });
    const replay = new Replay(DEFAULT_CONFIG);
    const grade3 = sc.messages.find((m, i) =>
      replay.line(JSON.stringify(m), i + 1).some((e) => e.type === 'notification' && e.toGrade === 3),
    )!;
    expect((Date.parse(grade3.observedAt) - START) / 120).toBeLessThan(60_000);
  });

  it('never send an observation from the future: an accelerated course ends at the present', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    for (const speed of [1, 60, 120, 5000]) {
      const sc = scenarioFor({ seed: 1, speed, courses: COURSE_NAMES, copies: 1 }, now);
      expect(sc.start).toBe(anchorStart(now, sc.spanMs, speed));
      for (const m of sc.messages) {
        const sentAt = now + (Date.parse(m.observedAt) - sc.start) / speed; // when the player sends it
        expect(Date.parse(m.observedAt)).toBeLessThanOrEqual(sentAt + 1000);
      }
    }
  });

  it('print as NDJSON from the CLI (crs simulate --ndjson), the same for the same seed and start', () => {
    const bin = fileURLToPath(new URL('../../bin/crs.js', import.meta.url));
    const out = execFileSync(
      process.execPath,
      [bin, 'simulate', '--ndjson', '--seed', '3', '--start', '2026-03-01T06:00:00Z'],
      { encoding: 'utf8' },
    );
    const expected = buildScenario({ seed: 3, start: START }).messages.map((m) => JSON.stringify(m));
    expect(out.trimEnd().split('\n')).toEqual(expected);
    const bad = spawnSync(process.execPath, [bin, 'simulate', '--speed', 'fast'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--speed must be a decimal number');
  });
});

describe('the simulated courses, pinned by a mutation run', () => {
  const patientsOf = (sc: ReturnType<typeof buildScenario>, course: string) => {
    const p = sc.patients.find((x) => x.course === course)!;
    return { patient: p, messages: sc.messages.filter((m) => m.patientId === p.patientId) };
  };

  it('draw from the published mulberry32 (the same seed gives the same courses in every version)', () => {
    const rng = mulberry32(1);
    expect([rng(), rng(), rng()]).toEqual([0.6270739405881613, 0.002735721180215478, 0.5274470399599522]);
    expect(mulberry32(2 ** 32 - 1)()).toBe(0.8964226141106337);
  });

  it('draw whole numbers over the whole range, values in [lo, hi), and round to the digits asked', () => {
    const rng = mulberry32(9);
    const ints = new Set(Array.from({ length: 400 }, () => int(rng, 1, 6)));
    expect([...ints].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const values = Array.from({ length: 400 }, () => uniform(rng, 10, 12));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...values)).toBeLessThan(12);
    expect(Math.max(...values)).toBeGreaterThan(11.9);
    expect([round(1.23456, 2), round(38.86, 1), round(2.5)]).toEqual([1.23, 38.9, 3]);
  });

  it('put each course in the bed the README names: H4-01 crs ... H4-05 bispecific, each device its bed', () => {
    const sc = buildScenario({ seed: 1, start: START });
    expect(sc.patients.map((p) => `${p.bed} ${p.course}`)).toEqual([
      'H4-01 crs',
      'H4-02 icans',
      'H4-03 quiet',
      'H4-04 artefact',
      'H4-05 bispecific',
    ]);
    for (const m of sc.messages) {
      const bed = sc.patients.find((p) => p.patientId === m.patientId)!.bed;
      expect(m.source.deviceId).toBe(m.source.kind === 'ehr' ? 'ehr-H4' : `${m.source.kind}-${bed}`);
    }
  });

  it('keep the noise bounded for every seed: hypotension below 90 mmHg systolic, every other reading well above', () => {
    for (let seed = 0; seed < 200; seed++) {
      const sc = buildScenario({ seed, start: START, courses: ['crs'] });
      for (const m of sc.messages) {
        if (m.source.kind !== 'monitor') continue;
        const minute = (Date.parse(m.observedAt) - START) / 60_000;
        if (minute >= 38 && minute < 80) expect(m.vitals!.systolicBP).toBeLessThan(90);
        else expect(m.vitals!.systolicBP).toBeGreaterThanOrEqual(95);
      }
    }
  });

  it('give each reading the mean arterial pressure of its own systolic and diastolic, and read to the end', () => {
    const sc = buildScenario({ seed: 1, start: START });
    for (const p of sc.patients) {
      const readings = sc.messages.filter((m) => m.patientId === p.patientId && m.source.kind === 'monitor');
      for (const { vitals: v } of readings)
        expect(v!.meanArterialPressure).toBe(Math.round((v!.systolicBP! + 2 * v!.diastolicBP!) / 3));
      const last = (Date.parse(readings.at(-1)!.observedAt) - START) / 60_000;
      expect(last).toBeGreaterThanOrEqual(COURSES[p.course]!.span);
    }
  });

  it('give the artefact course exactly one low blood pressure, between normal ones', () => {
    for (const seed of [1, 2, 3]) {
      const { messages } = patientsOf(buildScenario({ seed, start: START, courses: ['artefact'] }), 'artefact');
      const sys = messages.flatMap((m) => (m.vitals?.systolicBP !== undefined ? [m.vitals.systolicBP] : []));
      expect(sys.filter((s) => s < 90)).toHaveLength(1);
      expect(sys.filter((s) => s >= 100).length).toBe(sys.length - 1);
    }
  });

  it('recover as described: ICANS back to 0 after dexamethasone, the bispecific down from CRS 2 after tocilizumab', () => {
    for (const seed of [1, 2]) {
      const icans = pagesOf('icans', seed);
      expect(summary(icans).slice(3)).toEqual(['icans de-escalation 3->1', 'icans de-escalation 1->0']);
      const bisp = pagesOf('bispecific', seed);
      expect(summary(bisp).slice(2)).toEqual(['crs de-escalation 2->1']);
      const sc = buildScenario({ seed, start: START, courses: ['icans', 'bispecific'] });
      const { messages: im } = patientsOf(sc, 'icans');
      const ice2 = im.findIndex((m) => m.neuro?.iceScore === 2);
      const dexa = im.findIndex((m) => m.medications?.some((d) => d.drug === 'dexamethasone'));
      expect(dexa).toBeGreaterThan(ice2);
      const { messages: bm } = patientsOf(sc, 'bispecific');
      const o2 = bm.findIndex((m) => m.oxygen?.device === 'nasal_cannula');
      expect(bm.findIndex((m) => m.medications?.some((d) => d.drug === 'tocilizumab'))).toBeGreaterThan(o2);
      expect(bm.filter((m) => m.oxygen?.device === 'room_air')).toHaveLength(2);
    }
  });

  it('dose tocilizumab at 8 mg/kg of the enrolment weight, never above 800 mg', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const sc = buildScenario({ seed, start: START, courses: ['crs', 'bispecific'] });
      for (const p of sc.patients) {
        const ms = sc.messages.filter((m) => m.patientId === p.patientId);
        const weight = ms.find((m) => m.enrolment)!.enrolment!.weightKg!;
        const toci = ms.flatMap((m) => m.medications ?? []).find((d) => d.drug === 'tocilizumab')!;
        expect(toci.doseMg).toBe(Math.min(800, weight * 8));
      }
    }
  });

  it('enrol each patient on the calendar day its course names, in the daytime, so that the course opens on it', () => {
    const day = (ms: number) => Math.floor(ms / 86_400_000);
    const days = { crs: 1, icans: 5, quiet: 3, artefact: 2, bispecific: 2 } as Record<string, number>;
    // A course starting just after midnight and one starting late in the day.
    for (const start of [day(START) * 86_400_000 + 60_000, day(START) * 86_400_000 + 23 * 3_600_000]) {
      const sc = buildScenario({ seed: 4, start });
      for (const p of sc.patients) {
        const e = sc.messages.find((m) => m.patientId === p.patientId && m.enrolment)!.enrolment!;
        const infused = Date.parse(e.infusedAt!);
        expect(day(start) - day(infused)).toBe(days[p.course]);
        const hour = new Date(infused).getUTCHours();
        expect(hour).toBeGreaterThanOrEqual(8);
        expect(hour).toBeLessThanOrEqual(16);
      }
    }
  });

  it('give every patient its own id and noise, even with 200 copies of each course', () => {
    const sc = buildScenario({ seed: 5, start: START, copies: 200 });
    expect(new Set(sc.patients.map((p) => p.patientId)).size).toBe(1000);
    const first = (n: number) => sc.messages.find((m) => m.patientId === sc.patients[n]!.patientId && m.vitals)!.vitals;
    expect(first(5)).not.toEqual(first(10)); // two copies of the crs course
  });

  it("number a patient's messages in the order they are sent, each at a whole second", () => {
    const sc = buildScenario({ seed: 2, start: START + 123, copies: 2 });
    for (const p of sc.patients) {
      const ids = sc.messages.filter((m) => m.patientId === p.patientId).map((m) => m.messageId);
      expect(ids).toEqual([...ids].sort());
    }
    for (const m of sc.messages) expect(Date.parse(m.observedAt) % 1000).toBe(0);
  });

  it('take their message ids from the start minute, so a second run is not read as resends of the first', () => {
    const a = buildScenario({ seed: 1, start: START });
    const b = buildScenario({ seed: 1, start: START + 60_000 });
    const ids = new Set(a.messages.map((m) => m.messageId));
    expect(b.messages.some((m) => ids.has(m.messageId))).toBe(false);
  });

  it('cover every message in their span, the longest course of any copy', () => {
    const sc = buildScenario({ seed: 6, start: START, copies: 4 });
    const last = Math.max(...sc.messages.map((m) => Date.parse(m.observedAt)));
    expect(sc.start + sc.spanMs).toBeGreaterThanOrEqual(last);
    const longest = Math.max(...sc.patients.map((p) => p.offset + COURSES[p.course]!.span));
    expect(sc.spanMs).toBe((longest + 1) * 60_000);
  });

  it('never stamp a message after the moment it is sent: the anchored start is rounded down, to a whole second', () => {
    for (const now of [Date.parse('2026-11-26T12:00:00.999Z'), Date.parse('2026-11-26T12:00:00.001Z')]) {
      const span = 421 * 60_000;
      const start = anchorStart(now, span, 120);
      expect(start % 1000).toBe(0);
      expect(start).toBeLessThanOrEqual(now - span + span / 120);
      expect(start).toBeGreaterThan(now - span + span / 120 - 1000);
    }
  });

  it('refuse an unknown course by name', () => {
    expect(() => buildScenario({ seed: 1, start: START, courses: ['crs', 'nope'] })).toThrow(
      'unknown course "nope" (courses: crs, icans, quiet, artefact, bispecific)',
    );
  });

  it("keep sending, after the course, the patient's settled vitals stamped with the present", () => {
    const sc = buildScenario({ seed: 1, start: START });
    const p = { ...sc.patients[0]!, settled: { temp: 36.1, hr: 50, rr: 30, sys: 150, dia: 95, spo2: 90 } };
    const m = settledReading(mulberry32(3), p, START, 1);
    expect(m.observedAt).toBe(iso(START));
    expect(m.source).toEqual({ deviceId: `monitor-${p.bed}`, kind: 'monitor' });
    expect(Math.abs(m.vitals!.spo2! - 90)).toBeLessThanOrEqual(1);
    expect(Math.abs(m.vitals!.heartRate! - 50)).toBeLessThanOrEqual(5);
    expect(settledReading(mulberry32(3), p, START + 60_000, 1).messageId).not.toBe(m.messageId);
  });
});

// The player against a stand-in server (node:http) and the real fetch; its waits (the course's clock and the
// backoff) go through `node:timers/promises`, which these tests replace with a clock of their own when they need to.
interface Seen {
  path: string;
  auth: string | undefined;
  message: DeviceMessage;
}

async function standIn(
  answer: (
    m: DeviceMessage,
    n: number,
  ) => number | [number, Record<string, string>] | [number, Record<string, string>, string],
) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      const message = JSON.parse(body) as DeviceMessage;
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, message });
      const [status, headers, answerBody = '{}'] = [answer(message, seen.length)].flat() as [
        number,
        Record<string, string>?,
        string?,
      ];
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(answerBody);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A port nothing listens on. */
async function closedPort(): Promise<string> {
  const s = await standIn(() => 202);
  await s.close();
  return s.url;
}

afterEach(() => {
  vi.mocked(sleep).mockReset();
  vi.useRealTimers();
});

/** Sleeps answered at once, each moving Date on by its length; `hang`: only an abort ends them. */
function ownClock(mode: 'instant' | 'hang' = 'instant') {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.parse('2026-12-03T12:00:00Z'));
  const slept: number[] = [];
  vi.mocked(sleep).mockImplementation(((ms: number, value?: unknown, o?: { signal?: AbortSignal }) => {
    slept.push(ms);
    if (o?.signal?.aborted) return Promise.reject(o.signal.reason);
    if (mode === 'hang')
      return new Promise((_, reject) => o?.signal?.addEventListener('abort', () => reject(o.signal!.reason)));
    // On the next turn of the event loop, once what was due before it has run.
    return new Promise<unknown>((resolve) =>
      setImmediate(() => {
        vi.setSystemTime(Date.now() + ms);
        resolve(value);
      }),
    );
  }) as typeof sleep);
  return slept;
}

describe('the player, pinned by a mutation run', () => {
  const quiet = () => buildScenario({ seed: 1, start: START, courses: ['quiet'] });
  const BACKOFF = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000, 8000];

  it('retries a 503 with a doubling backoff up to 8 s, and reports it after the tenth attempt', async () => {
    const slept = ownClock();
    const s = await standIn(() => 503);
    try {
      expect(await postMessage(s.url, 'tok', quiet().messages[0]!)).toEqual({ status: 503 });
      expect(s.seen).toHaveLength(10);
      expect(slept).toEqual(BACKOFF);
    } finally {
      await s.close();
    }
  });

  it('retries a 429 and a 500 and sends the message again, but never a 400', async () => {
    ownClock();
    for (const first of [429, 500]) {
      const s = await standIn((_, n) => (n === 1 ? first : 202));
      try {
        expect(await postMessage(s.url, 'tok', quiet().messages[0]!)).toEqual({ status: 202 });
        expect(s.seen).toHaveLength(2);
      } finally {
        await s.close();
      }
    }
    const s = await standIn(() => 400);
    try {
      expect(await postMessage(s.url, 'tok', quiet().messages[0]!)).toEqual({ status: 400 });
      expect(s.seen).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('retries a refused connection (a server restarting) and fails after the tenth attempt', async () => {
    const slept = ownClock();
    const url = await closedPort();
    await expect(postMessage(url, 'tok', quiet().messages[0]!)).rejects.toThrow(/fetch failed/);
    expect(slept).toEqual(BACKOFF);
  });

  it('stops at once when stopped during a backoff', async () => {
    ownClock('hang');
    const s = await standIn(() => 503);
    const abort = new AbortController();
    try {
      const sent = postMessage(s.url, 'tok', quiet().messages[0]!, abort.signal);
      await vi.waitFor(() => expect(s.seen).toHaveLength(1), { timeout: 10_000 });
      abort.abort();
      await expect(sent).rejects.toThrow();
    } finally {
      await s.close();
    }
  }, 5_000);

  for (const status of [401, 403]) {
    it(`stops the course on a refused token (HTTP ${status}): nothing more sent, no waiting for the rest, failed`, async () => {
      const s = await standIn(() => status);
      try {
        // Real time: at 60x the next message is due within a second, the course's end in 7 minutes.
        const sc = buildScenario({ seed: 1, start: START, courses: ['crs'] });
        await expect(play(sc, { url: s.url, token: 'bad', speed: 60 })).rejects.toThrow(
          `the server refused the ingest token (HTTP ${status})`,
        );
        expect(s.seen).toHaveLength(1);
      } finally {
        await s.close();
      }
    }, 5_000);
  }

  it("says what the server refused, in the server's words, when a 403 is not about the token", async () => {
    // The token is good, the patient is in another ward than the token's.
    const error =
      'not allowed for this device token: enrolment.ward: "ICU" is outside this token\'s wards (H4); P-1024';
    const s = await standIn(() => [403, {}, JSON.stringify({ error, errors: [error.slice(36)] })]);
    try {
      await expect(postMessage(s.url, 'tok', quiet().messages[0]!)).rejects.toThrow(
        `the server refused the message (HTTP 403): ${error}`,
      );
    } finally {
      await s.close();
    }
  });

  it("logs a refused message with the server's reason: a 400's errors, another refusal's error", async () => {
    ownClock();
    const sc = quiet();
    const [first, second, third] = sc.messages;
    const s = await standIn((_, n) =>
      n === 1
        ? [400, {}, JSON.stringify({ errors: ['vitals.spo2: 120 is outside 0-100', 'vitals.heartRate: is empty'] })]
        : n === 2
          ? [415, {}, JSON.stringify({ error: 'content-type must be application/json' })]
          : n === 3
            ? [400, {}, 'not JSON']
            : 202,
    );
    const lines: string[] = [];
    try {
      const stats = await play(sc, { url: s.url, token: 'tok', speed: 1_000_000, log: (l) => lines.push(l) });
      expect(stats).toEqual({ sent: sc.messages.length, accepted: sc.messages.length - 3, refused: 3 });
    } finally {
      await s.close();
    }
    expect(lines).toEqual([
      `simulate: message ${first!.messageId} of patient ${first!.patientId} refused (HTTP 400): vitals.spo2: 120 is outside 0-100; vitals.heartRate: is empty`,
      `simulate: message ${second!.messageId} of patient ${second!.patientId} refused (HTTP 415): content-type must be application/json`,
      `simulate: message ${third!.messageId} of patient ${third!.patientId} refused (HTTP 400)`,
    ]);
  });

  it('sends each message at its time on the accelerated clock, never before', async () => {
    ownClock();
    const sc = quiet();
    const speed = 1000; // a monitor reading every 15 patient minutes: 0.9 s apart
    const realStart = Date.now();
    const late: number[] = [];
    const stats = await play(sc, {
      url: 'unused',
      token: 'tok',
      speed,
      deliver: async (m) => {
        const due = realStart + (Date.parse(m.observedAt) - sc.start) / speed;
        late.push(Date.now() - due);
        return 202;
      },
    });
    expect(stats).toEqual({ sent: sc.messages.length, accepted: sc.messages.length, refused: 0 });
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...late)).toBeLessThanOrEqual(1);
  });

  it("sends a patient's next message only once the last is answered, and answers them all before it ends", async () => {
    ownClock();
    const sc = buildScenario({ seed: 2, start: START, courses: ['crs', 'icans'] });
    const inFlight = new Set<string>();
    const order: string[] = [];
    let overlapped = 0;
    const stats = await play(sc, {
      url: 'unused',
      token: 'tok',
      speed: 1_000_000,
      deliver: async (m) => {
        if (inFlight.has(m.patientId)) overlapped++;
        inFlight.add(m.patientId);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight.delete(m.patientId);
        order.push(m.messageId);
        return 202;
      },
    });
    expect(overlapped).toBe(0);
    expect(stats.accepted).toBe(sc.messages.length);
    for (const p of sc.patients) {
      const mine = (ids: string[]) => ids.filter((id) => id.includes(p.patientId));
      expect(mine(order)).toEqual(mine(sc.messages.map((m) => m.messageId)));
    }
  });

  it('counts only a 202 as accepted (a 200 from something else at that address is not the ingest)', async () => {
    ownClock();
    const sc = quiet();
    const lines: string[] = [];
    const stats = await play(sc, {
      url: 'unused',
      token: 'tok',
      speed: 1000,
      deliver: async () => 200,
      log: (l) => lines.push(l),
    });
    expect(stats).toEqual({ sent: sc.messages.length, accepted: 0, refused: sc.messages.length });
    expect(lines[0]).toBe(
      `simulate: message ${sc.messages[0]!.messageId} of patient ${sc.messages[0]!.patientId} refused (HTTP 200)`,
    );
  });

  it('sends nothing more once a delivery failed', async () => {
    ownClock();
    let calls = 0;
    await expect(
      play(quiet(), {
        url: 'unused',
        token: 'tok',
        speed: 1000,
        deliver: async () => {
          calls++;
          throw new Error('gone');
        },
      }),
    ).rejects.toThrow('gone');
    expect(calls).toBe(1);
  });

  it('after the courses, sends each patient a reading of the present every minute, through failed ones', async () => {
    const slept = ownClock();
    const sc = buildScenario({ seed: 1, start: START, courses: ['crs', 'quiet'] });
    const abort = new AbortController();
    const sent: { patientId: string; late: number }[] = [];
    await follow(sc, {
      url: 'unused',
      token: 'tok',
      speed: 120,
      signal: abort.signal,
      deliver: async (m) => {
        sent.push({ patientId: m.patientId, late: Date.now() - Date.parse(m.observedAt) });
        if (sent.length === 1) throw new Error('a server restarting');
        if (sent.length === 6) abort.abort();
        return 202;
      },
    });
    expect(sent.map((x) => x.patientId)).toEqual(
      Array(3)
        .fill(sc.patients.map((p) => p.patientId))
        .flat(),
    );
    for (const x of sent) expect(x.late).toBeGreaterThanOrEqual(0);
    for (const x of sent) expect(x.late).toBeLessThan(1000);
    expect(slept.slice(0, 2)).toEqual([60_000, 60_000]);
  });
});

describe('crs simulate, pinned by a mutation run', () => {
  const usage = (args: string[]) => {
    try {
      parseSimulateArgs(args);
      return 'accepted';
    } catch (err) {
      expect(err).toBeInstanceOf(SimulateUsageError);
      return (err as Error).message;
    }
  };

  it('refuses a fractional seed, a speed below real time and no copies; takes a list with a trailing comma', () => {
    expect(usage(['--seed', '1.5'])).toBe('--seed must be a whole number from 0 to 4294967295 (got "1.5")');
    expect(usage(['--seed', '4294967295'])).toBe('accepted');
    expect(usage(['--speed', '0.5'])).toBe('--speed must be a decimal number from 1 to 100000 (got "0.5")');
    expect(usage(['--copies', '0'])).toBe('--copies must be a whole number from 1 to 200 (got "0")');
    expect(parseSimulateArgs(['--courses', 'crs, quiet,']).settings.courses).toEqual(['crs', 'quiet']);
    expect(usage(['--courses', 'crs,nope'])).toBe(
      'unknown course "nope" (courses: crs, icans, quiet, artefact, bispecific)',
    );
  });

  it('takes --mllp only with --format hl7v2, an IPv6 host in brackets, and --url without its trailing slash', () => {
    expect(usage(['--mllp', '127.0.0.1:2575'])).toBe('--format hl7v2 and --mllp HOST:PORT go together');
    expect(usage(['--format', 'hl7v2'])).toBe('--format hl7v2 and --mllp HOST:PORT go together');
    const p = parseSimulateArgs(['--format', 'hl7v2', '--mllp', '[::1]:2575', '--url', 'http://h:1//']);
    expect(p.mllp).toEqual({ host: '::1', port: 2575 });
    expect(p.url).toBe('http://h:1');
  });

  it('counts an ACK as the server meant it: AA accepted, AE and AR and an unreadable answer refused', async () => {
    const reading = buildScenario({ seed: 1, start: START, courses: ['quiet'] }).messages.find((m) => m.vitals)!;
    const ack = (code: string) => `MSH|^~\\&|CRS||CRS-SIM|SIM|20260301060000||ACK|1|P|2.6\rMSA|${code}|1\r`;
    const statusFor = async (answer: string) => {
      const sent: string[] = [];
      const client = {
        send: async (text: string) => {
          sent.push(text);
          return answer;
        },
      } as unknown as MllpClient;
      const status = await mllpDelivery(client, 'http://127.0.0.1:1', 'tok')(reading);
      expect(sent[0]).toMatch(/^MSH\|/);
      return status;
    };
    expect(await statusFor(ack('AA'))).toEqual({ status: 202 });
    expect(await statusFor(ack('AE'))).toEqual({ status: 422 });
    expect(await statusFor(ack('AR'))).toEqual({ status: 400 });
    expect(await statusFor('not an ACK')).toEqual({ status: 400 });
  });

  it("logs a message refused over MLLP with the server's reason: its ERR segments' text, or MSA-3", async () => {
    ownClock();
    const sc = buildScenario({ seed: 1, start: START, courses: ['quiet'] });
    const readings = sc.messages.filter((m) => m.vitals && !m.enrolment);
    const now = Date.parse('2026-03-01T06:00:00Z');
    const obx = { segment: 'OBX', sequence: 2, field: 5 };
    // By the order the readings go out: crs serve's AE (one ERR a field refused, escaped: a ^ is \S\), its AR of a
    // refused token (MSA-3 says the same as its ERR), another server's AR saying why only in MSA-3, and one whose ERR
    // has a code and no text.
    const answers = new Map<string, string>([
      [
        readings[0]!.messageId,
        buildAck({
          code: 'AE',
          problems: [
            { at: obx, code: 102, text: 'vitals.spo2: 120 is outside 0-100' },
            { at: { ...obx, sequence: 3 }, code: 103, text: 'OBX-3: unknown code 999^MDC' },
          ],
          now,
        }),
      ],
      [
        readings[1]!.messageId,
        buildAck({
          code: 'AR',
          problems: [{ at: { segment: 'MSH', sequence: 1 }, code: 207, text: 'device token revoked' }],
          text: 'device token revoked',
          now,
        }),
      ],
      [readings[2]!.messageId, 'MSH|^~\\&|LIS||CRS-SIM|SIM|20260301060000||ACK|1|P|2.5\rMSA|AR|1|unknown patient\r'],
      [
        readings[3]!.messageId,
        'MSH|^~\\&|LIS||CRS-SIM|SIM|20260301060000||ACK|1|P|2.5\rMSA|AE|1\rERR||OBX^1|103^Table value not found^HL70357|E\r',
      ],
    ]);
    const accepted = buildAck({ code: 'AA', now });
    let sending: DeviceMessage | undefined;
    const client = { send: async () => answers.get(sending!.messageId) ?? accepted } as unknown as MllpClient;
    const viaMllp = mllpDelivery(client, 'http://127.0.0.1:1', 'tok');
    const lines: string[] = [];
    const stats = await play(sc, {
      url: 'http://127.0.0.1:1',
      token: 'tok',
      speed: 1_000_000,
      log: (l) => lines.push(l),
      deliver: async (m, signal) => {
        if (!m.vitals || m.enrolment) return 202; // what goes over HTTP is not this test's
        sending = m;
        return viaMllp(m, signal);
      },
    });
    expect(stats.refused).toBe(4);
    const refused = (i: number, status: number, reason: string) =>
      `simulate: message ${readings[i]!.messageId} of patient ${readings[i]!.patientId} refused (HTTP ${status}): ${reason}`;
    expect(lines).toEqual([
      refused(0, 422, 'vitals.spo2: 120 is outside 0-100; OBX-3: unknown code 999^MDC'),
      refused(1, 400, 'device token revoked'),
      refused(2, 400, 'unknown patient'),
      refused(3, 422, 'Table value not found'),
    ]);
  });

  /** Runs `crs simulate` in this process against `url`; its exit code and what it wrote to standard error. */
  async function simulate(args: string[]) {
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const code = await simulateCommand([
        ...args,
        '--courses',
        'quiet',
        '--speed',
        '100000',
        '--start',
        '2026-03-01T06:00:00Z',
      ]);
      return { code, stderr: written.join('') };
    } finally {
      write.mockRestore();
    }
  }
  const QUIET = buildScenario({ seed: 1, start: START, courses: ['quiet'] }).messages.length;

  it('plays the courses with the token of CRS_INGEST_TOKEN and ends (exit 0) without --follow', async () => {
    const s = await standIn(() => 202);
    vi.stubEnv('CRS_INGEST_TOKEN', 'env-token');
    try {
      const r = await simulate(['--url', `${s.url}/`]);
      expect(r.stderr).toContain(`simulate: courses done: ${QUIET} of ${QUIET} messages accepted\n`);
      expect(r.code).toBe(0);
      expect(new Set(s.seen.map((x) => `${x.path} ${x.auth}`))).toEqual(new Set(['/v1/messages Bearer env-token']));
    } finally {
      vi.unstubAllEnvs();
      await s.close();
    }
  }, 10_000);

  it('stops on Ctrl-C, saying how far it got', async () => {
    const s = await standIn(() => 202);
    const before = process.listeners('SIGINT');
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      // At real time the quiet course takes six hours.
      const run = simulateCommand(['--url', s.url, '--token', 't', '--courses', 'quiet', '--speed', '1']);
      await vi.waitFor(() => expect(s.seen.length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
      const ctrlC = process.listeners('SIGINT').find((l) => !before.includes(l)) as () => void;
      ctrlC();
      expect(await run).toBe(0);
      expect(written.join('')).toMatch(/simulate: stopped: \d+ of \d+ messages accepted \(of 29\)\n/);
      expect(process.listeners('SIGINT')).toEqual(before);
    } finally {
      write.mockRestore();
      await s.close();
    }
  }, 10_000);

  it('exits 1, saying how many, when the server refused a message', async () => {
    const s = await standIn((_, n) => (n === 3 ? 400 : 202));
    try {
      const r = await simulate(['--url', s.url, '--token', 't']);
      expect(r.stderr).toContain(`simulate: courses done: ${QUIET - 1} of ${QUIET} messages accepted, 1 refused\n`);
      expect(r.code).toBe(1);
    } finally {
      await s.close();
    }
  }, 10_000);

  it('exits 1 when the token is refused, and when no server answers', async () => {
    const s = await standIn(() => 401);
    try {
      const r = await simulate(['--url', s.url, '--token', 't']);
      expect(r.stderr).toContain('crs simulate: the server refused the ingest token (HTTP 401)');
      expect(r.code).toBe(1);
    } finally {
      await s.close();
    }
    const url = await closedPort();
    const r = await simulate(['--url', url, '--token', 't']);
    expect(r.stderr).toContain(`crs simulate: no server answers at ${url}`);
    expect(r.code).toBe(1);
  }, 10_000);
});

describe('crs simulate --format hl7v2, sending again what the server asks for: pinned by a mutation run', () => {
  it('over MLLP, sends a reading again when the server says "send again" or the connection drops, as over HTTP', async () => {
    const slept = ownClock();
    const reading = buildScenario({ seed: 1, start: START, courses: ['quiet'] }).messages.find((m) => m.vitals)!;
    const problem = (text: string) => [{ at: { segment: 'MSH', sequence: 1 }, code: 207 as const, text }];
    const now = Date.parse('2026-03-01T06:00:00Z');
    // What crs serve --mllp-port answers with its queue down, and on an internal error (docs/interfaces.md: AR, send again).
    const queueDown = buildAck({
      code: 'AR',
      problems: problem('the queue is unavailable; nothing was accepted, send again later'),
      text: 'not accepted: send again later',
      now,
    });
    const internal = buildAck({ code: 'AR', problems: problem('internal error; send again'), now });
    const notHl7 = buildAck({
      code: 'AR',
      problems: [{ at: { segment: 'MSH', sequence: 1 }, code: 100, text: 'not HL7' }],
      now,
    });
    const accepted = buildAck({ code: 'AA', now });
    const run = async (answers: (string | Error)[]) => {
      let sends = 0;
      const client = {
        send: async () => {
          const a = answers[Math.min(sends++, answers.length - 1)]!;
          if (a instanceof Error) throw a;
          return a;
        },
      } as unknown as MllpClient;
      const { status, reason } = await mllpDelivery(client, 'http://127.0.0.1:1', 'tok')(reading);
      return { status, ...(reason !== undefined ? { reason } : {}), sends };
    };
    expect(await run([queueDown, internal, new Error('the MLLP connection closed before the ACK'), accepted])).toEqual({
      status: 202,
      sends: 4,
    });
    expect(slept).toEqual([250, 500, 1000]);
    expect(await run([notHl7, accepted])).toEqual({ status: 400, reason: 'not HL7', sends: 1 }); // never one it refused
    // Reported, not tried for ever, with what the server said the last time.
    expect(await run([queueDown])).toEqual({
      status: 503,
      reason: 'not accepted: send again later; the queue is unavailable; nothing was accepted, send again later',
      sends: 10,
    });
    await expect(run([new Error('connect ECONNREFUSED')])).rejects.toThrow('ECONNREFUSED');
  });
});

describe("the player waits out a 503's Retry-After: pinned by a mutation run", () => {
  const quiet = () => buildScenario({ seed: 1, start: START, courses: ['quiet'] });

  it("waits as long as a 503's Retry-After asks before sending again (up to a minute)", async () => {
    const slept = ownClock();
    const s = await standIn((_, n) =>
      n === 1 ? [503, { 'retry-after': '5' }] : n === 2 ? [503, { 'retry-after': '3600' }] : 202,
    );
    try {
      expect(await postMessage(s.url, 'tok', quiet().messages[0]!)).toEqual({ status: 202 });
      expect(slept).toEqual([5000, 60_000]);
    } finally {
      await s.close();
    }
  });
});
