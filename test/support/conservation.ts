// The conservation test's streams and its check (issue 10 item 7), shared by both backends.
//
// Streams: the simulator's clinical courses (grade changes in every direction), per patient in order, with what
// unlucky and hostile devices add: duplicates sent at once and long after (beyond the state's recent window),
// messageIds reused with other content (a counter reset after a reboot, issue 10's reproduction among them), and
// ids with characters that must not travel (expected 400). The check: every grade change `crs replay` computes for
// the messages accepted reaches each of its teams exactly once (by id).
import { Replay } from '#app/replay.ts';
import { LONGEST_SETTING_MINUTES } from '#domain/paging.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { buildScenario } from '#sim/courses.ts';
import { mulberry32 } from '#sim/prng.ts';

/** The configuration of issue 10's reproduction: a small recent window, no hold before a stand-down. */
export const CONSERVATION_CONFIG = {
  dedupeWindow: 16,
  holdMinutes: 0,
  paging: { staleFeedMinutes: LONGEST_SETTING_MINUTES },
};

export interface Send {
  /** One message, or a batch (POST /v1/messages/batch) of messages all expected accepted. */
  message: DeviceMessage | DeviceMessage[];
  /** What the device should be told: accepted (202, a duplicate included) or refused (400, naming the field). */
  expect: 202 | 400;
  kind: 'new' | 'duplicate' | 'late-duplicate' | 'reused-id' | 'hostile';
}

const HOSTILE = ['dup\r\nx-crs-event: forged', 'm\u00e9', '\u65e5\u672c-1', 'a b', 'tab\tid', 'quote"id', 'nul\u0000'];

/** One device stream per patient: the courses of `copies` x 5 patients from `start`, mutated with seed `seed`. */
export function conservationStreams(o: {
  seed: number;
  start: number;
  copies: number;
  window: number;
}): Map<string, Send[]> {
  const scenario = buildScenario({ seed: o.seed, start: o.start, copies: o.copies });
  const rng = mulberry32(o.seed ^ 0x5eed);
  const streams = new Map<string, Send[]>();
  for (const m of scenario.messages) {
    const list = streams.get(m.patientId) ?? [];
    streams.set(m.patientId, list);
    const accepted = list.filter(
      (s): s is Send & { message: DeviceMessage } =>
        s.expect === 202 && s.kind !== 'duplicate' && s.kind !== 'late-duplicate' && !Array.isArray(s.message),
    );
    const r = rng();
    if (r < 0.06 && accepted.length > 0) {
      // A counter reset: this new observation goes out under the id of an earlier message.
      const old = accepted[Math.floor(rng() * accepted.length)]!;
      list.push({ message: { ...m, messageId: old.message.messageId }, expect: 202, kind: 'reused-id' });
    } else {
      list.push({ message: m, expect: 202, kind: 'new' });
    }
    if (rng() < 0.1 && accepted.length > 0) {
      // A resend: of the last message (at once), or of one long gone from the recent window.
      const late = accepted.length > o.window + 2 && rng() < 0.5;
      const old = late ? accepted[Math.floor(rng() * (accepted.length - o.window - 1))]! : accepted.at(-1)!;
      list.push({ message: old.message, expect: 202, kind: late ? 'late-duplicate' : 'duplicate' });
    }
    if (rng() < 0.04) {
      const bad = HOSTILE[Math.floor(rng() * HOSTILE.length)]!;
      const where = rng();
      const message: DeviceMessage =
        where < 0.6
          ? { ...m, messageId: `${m.messageId}-${bad}` }
          : where < 0.8
            ? { ...m, messageId: `${m.messageId}-h`, source: { ...m.source, deviceId: bad } }
            : { ...m, messageId: `${m.messageId}-h`, patientId: `${m.patientId}${bad}` };
      list.push({ message, expect: 400, kind: 'hostile' });
    }
  }
  // Issue 10's reproduction, as one more device: ICANS 1 as `dup`, ICE 10, then more than the window of other
  // messages, then `dup` again with ICE 3: ICANS 0 -> 2 must be paged.
  const first = scenario.messages[0]!;
  const patientId = 'P-REPRO';
  const t0 = Date.parse(first.observedAt);
  const at = (minutes: number) => new Date(t0 + minutes * 60_000).toISOString();
  const base = { patientId, source: { deviceId: 'ehr-repro', kind: 'ehr' as const } };
  const repro: Send[] = [
    {
      message: {
        ...base,
        messageId: 'enrol',
        observedAt: at(0),
        enrolment: {
          therapy: 'car-t',
          product: 'axi-cel',
          infusedAt: at(-2 * 24 * 60),
          weightKg: 70,
          bed: 'H4-99',
          ward: 'H4',
        },
      },
      expect: 202,
      kind: 'new',
    },
    { message: { ...base, messageId: 'dup', observedAt: at(1), neuro: { iceScore: 8 } }, expect: 202, kind: 'new' },
    { message: { ...base, messageId: 'ice-ok', observedAt: at(2), neuro: { iceScore: 10 } }, expect: 202, kind: 'new' },
  ];
  // The 100 others in batches (as a gateway catching up sends them), which keeps the test quick.
  const others = Array.from(
    { length: o.window + 84 },
    (_, i): DeviceMessage => ({
      ...base,
      source: { deviceId: 'mon-repro', kind: 'monitor' },
      messageId: `v${i}`,
      observedAt: at(3 + i),
      vitals: { heartRate: 80 },
    }),
  );
  for (let i = 0; i < others.length; i += 50)
    repro.push({ message: others.slice(i, i + 50), expect: 202, kind: 'new' });
  repro.push({
    message: { ...base, messageId: 'dup', observedAt: at(3 + o.window + 84), neuro: { iceScore: 3 } },
    expect: 202,
    kind: 'reused-id',
  });
  streams.set(patientId, repro);
  return streams;
}

export interface ExpectedChange {
  notificationId: string;
  patientId: string;
  teams: string[];
}

/** The grade changes `crs replay` computes for the messages accepted, per patient in the order each device sent. */
export function expectedChanges(streams: Map<string, Send[]>, config: GradingConfig): ExpectedChange[] {
  const replay = new Replay(config);
  const out: ExpectedChange[] = [];
  let line = 0;
  for (const sends of streams.values()) {
    for (const s of sends) {
      if (s.expect !== 202) continue;
      for (const m of Array.isArray(s.message) ? s.message : [s.message]) {
        for (const e of replay.line(JSON.stringify(m), ++line)) {
          if (e.type === 'notification')
            out.push({ notificationId: e.notificationId, patientId: e.patientId, teams: [...e.teams] });
        }
      }
    }
  }
  return out;
}

/** A page a team received: the grade change it is about, the team, the page and this send of it. */
export interface Received {
  notificationId: string;
  team: string;
  pageId: string;
  sendId: string;
  level: number;
  round: number;
}

/**
 * Every expected grade change reached each of its teams exactly once, by id: one page per (grade change, team) at
 * the ladder's first step, sent once (a repeat of the same send, same sendId, is one the receiver drops); and no
 * team got a page about a grade change replay does not compute.
 */
export function checkConservation(
  expected: ExpectedChange[],
  received: Received[],
): { missing: string[]; twice: string[]; unexpected: string[] } {
  const want = new Set(expected.flatMap((c) => c.teams.map((t) => `${c.notificationId} -> ${t}`)));
  const firstSends = new Map<string, Set<string>>();
  for (const r of received) {
    if (r.level !== 0 || r.round !== 0) continue;
    const key = `${r.notificationId} -> ${r.team}`;
    const sends = firstSends.get(key) ?? new Set<string>();
    sends.add(`${r.pageId}#${r.sendId}`);
    firstSends.set(key, sends);
  }
  return {
    missing: [...want].filter((k) => !firstSends.has(k)),
    twice: [...firstSends].filter(([, s]) => s.size > 1).map(([k]) => k),
    unexpected: [...firstSends.keys()].filter((k) => !want.has(k)),
  };
}

export interface Device {
  sends: Send[];
  /** The first send not yet answered. */
  next: number;
}

/**
 * Each device sends its stream in order, one request in flight, as a gateway does, until it is done or the server
 * dies (then it stops at the unanswered send, to resend it to the next server). A status other than the one
 * expected fails the test; a 400 must name the id field.
 */
export async function sendStreams(
  post: (url: string, m: DeviceMessage | DeviceMessage[]) => Promise<Response>,
  url: string,
  devices: Device[],
  onSent: () => void,
): Promise<void> {
  await Promise.all(
    devices.map(async (d) => {
      while (d.next < d.sends.length) {
        const s = d.sends[d.next]!;
        let res: Response;
        try {
          res = await post(url, s.message);
        } catch {
          return;
        }
        const text = await res.text();
        if (res.status !== s.expect) throw new Error(`${s.kind} answered ${res.status}, expected ${s.expect}: ${text}`);
        if (s.expect === 400 && !/^\{"errors":\["(messageId|patientId|source\.deviceId): /.test(text))
          throw new Error(`a hostile id's 400 does not name the field: ${text}`);
        d.next++;
        onSent();
      }
    }),
  );
}
