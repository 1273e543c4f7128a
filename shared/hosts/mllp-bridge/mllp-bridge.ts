// `crs mllp-bridge`: inside the hospital network, monitors speak MLLP to the bridge; the bridge forwards each HL7
// message over HTTPS to POST /v1/hl7v2 (the AWS API or a crs serve) with its device token, in arrival order, and
// answers the monitor with the server's ACK. Every message is first written to a durable spool: when the link is
// down (no answer, 5xx, 429, a refused token) the monitor still gets an AA once the message is on disk, and the
// bridge delivers it when the link is back, after a restart too. Nothing ACKed to a monitor is lost.
import type { AddressInfo, Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HL7_CONTENT_TYPE, ackReason, buildAck, readAck, refusalAck, unreadableAck } from '#app/hl7v2/ack.ts';
import { MLLP_FRAME_MS, MLLP_IDLE_MS } from '#app/hl7v2/mllp.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { capMllpConnections, serveMllpConnection } from '../mllp-connection.ts';
import { createMllpServer, type MllpTls } from '../mllp-tls.ts';
import { noRoom, patientKeys, roomRetryMs } from './room.ts';
import { Spool, type Spooled } from './spool.ts';

export interface BridgeOptions {
  listenPort: number;
  listenHost: string;
  /** POST /v1/hl7v2 of the server. */
  url: string;
  token: string;
  spoolDir: string;
  /** How long a monitor waits for the server's ACK before the bridge answers AA from its spool. */
  ackWaitMs?: number;
  /** Per HTTP attempt. */
  requestTimeoutMs?: number;
  log: (line: string) => void;
  now?: () => number;
  /** A monitor's connection idle this long is closed, as the embedded listener does (docs/interfaces.md, MLLP). */
  idleMs?: number;
  /** A frame not ended this long after it began closes its connection, as the embedded listener does. */
  frameMs?: number;
  /**
   * MLLP inside TLS, each monitor gateway showing a client certificate the CA signed (--mllp-tls-cert, -key, -ca, as
   * crs serve's listener: shared/hosts/mllp-tls.ts); without it, plain MLLP from anyone who reaches the port.
   */
  tls?: MllpTls;
}

export interface Bridge {
  port: number;
  spool: Spool;
  /** Resolves when the spool is empty, messages waiting for room at the server too (for tests, a clean shutdown). */
  drained(): Promise<void>;
  close(): Promise<void>;
}

/** The server's answer; `roomMs`: no room for a new patient, send it again after that long. */
type Outcome = { status: number; ack: string; roomMs?: number };
/** Statuses that are the server's last word on a message; anything else is tried again. */
const DEFINITIVE = new Set([202, 400, 413, 415, 422]);

/**
 * The server's last word on a message, or undefined (try again). A 403 is two things: the token refused (an AR
 * that names no message: the body was not read; an operator fixes the token, then it goes through) or this message
 * refused for the bridge's device (an AR echoing its control id: a patient outside the token's scope, the patient
 * ceiling), which no retry changes; retried, it held every later message behind it for ever.
 */
function lastWord(status: number, ack: string): Outcome | undefined {
  const read = readAck(ack);
  if (!read) return undefined;
  if (DEFINITIVE.has(status) || (status === 403 && read.controlId !== '')) return { status, ack };
  return undefined;
}

/** At most this much of the server's reason for refusing the token is logged (an ACK may be 1 MiB). */
const REASON_CHARS = 300;

/**
 * Why the server refused the bridge's token (a 401 or 403 whose AR names no message), as ` (reason)` for the log
 * line, else ''. It says what to do: the token a rotation made to install, by id (docs/runbook.md, "Rotating a
 * device's token"); it names no patient and no value, and never the token. Until 2026-12-07 the log said the status
 * alone, and on AWS nothing else told the operator (the ingest function logs no reason).
 */
function tokenRefusal(status: number, ack: string): string {
  if ((status !== 401 && status !== 403) || readAck(ack)?.controlId !== '') return '';
  const reason = ackReason(ack);
  if (reason === undefined) return '';
  return ` (${reason.length > REASON_CHARS ? `${reason.slice(0, REASON_CHARS)}...` : reason})`;
}

/**
 * A refusal with no ACK in it (a proxy on the way: nginx's 413 over its body limit, a 400): the same bytes would be
 * refused again, and retried they would hold every later message behind them for ever. Final, as an AR of ours.
 */
function refusedOnTheWay(status: number, m: Spooled, nowMs: number): Outcome | undefined {
  if (status === 202 || !DEFINITIVE.has(status)) return undefined;
  const read = translatePcd01(m.text);
  const problem = `refused on the way to the server: HTTP ${status}, no ACK (a proxy?)`;
  return {
    status,
    ack: buildAck({
      code: 'AR',
      ...(read.header ? { header: read.header } : {}),
      problems: [{ at: { segment: 'MSH', sequence: 1 }, code: 207, text: problem }],
      text: problem,
      now: nowMs,
    }),
  };
}

/** More of an answer than any ACK of ours: what is beyond is not read (it is not the server's ACK). */
const ANSWER_BYTES = 1024 * 1024;

/**
 * The answer's text, or '' (no ACK: the message stays in the spool) when it is longer than ANSWER_BYTES; the rest is
 * let go with its connection. It was read whole until 2026-12-05: an answer that went on (a URL that streams) was
 * held for as long as the request's timeout let it come (75 MB in 1 s on loopback, measured), at each try.
 */
async function answerText(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks).toString('utf8');
    size += value.byteLength;
    if (size > ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      return '';
    }
    chunks.push(value);
  }
}

export async function startBridge(o: BridgeOptions): Promise<Bridge> {
  const now = o.now ?? Date.now;
  const spool = new Spool(o.spoolDir);
  const waiters = new Map<number, (outcome: Outcome) => void>();
  let stopping = false;
  let wake: (() => void) | undefined;
  const idle: (() => void)[] = [];

  async function forward(m: Spooled): Promise<Outcome | undefined> {
    try {
      const res = await fetch(o.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${o.token}`, 'content-type': HL7_CONTENT_TYPE },
        body: m.text,
        // Never followed: fetch would send a 301, 302 or 303 on as a GET without the message, and an ACK answered
        // there would take it out of the spool undelivered. A redirect is not the server's word: it stays spooled.
        redirect: 'manual',
        signal: AbortSignal.timeout(o.requestTimeoutMs ?? 15_000),
      });
      const ack = await answerText(res);
      // No room for a new patient (crs serve --max-patients): sent again later, out of the line (room.ts). It was set
      // aside in `refused` until 2026-12-06, never sent again: the patient's monitor data lost once room came.
      if (noRoom(res.status, ack, m.text))
        return { status: res.status, ack, roomMs: roomRetryMs(res.headers.get('retry-after'), now()) };
      const outcome = lastWord(res.status, ack) ?? refusedOnTheWay(res.status, m, now());
      if (outcome) return outcome;
      o.log(
        `mllp-bridge: the server answered ${res.status}${tokenRefusal(res.status, ack)}; message ${m.seq} stays in the spool`,
      );
      return undefined;
    } catch (err) {
      // The cause's code says why (ECONNREFUSED, ENOTFOUND, a certificate refused); its message would name the host.
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      const why = typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? `: ${code}` : '';
      o.log(`mllp-bridge: link down (${(err as Error).name}${why}); message ${m.seq} stays in the spool`);
      return undefined;
    }
  }

  /**
   * Messages the server has answered for good whose removal from the spool failed (a full disk): taken out as soon
   * as the spool can be written, and never forwarded again meanwhile; the messages after them go on. The failed
   * write used to end the bridge (an unhandled rejection), and it ended again after each restart while the disk
   * stayed full, having forwarded the same oldest message again.
   */
  const settling: { seq: number; settle: () => void }[] = [];
  const settleDone = () => {
    while (settling.length > 0) {
      settling[0]!.settle();
      settling.shift();
    }
  };

  /**
   * The messages waiting for room at the server (a new patient past crs serve --max-patients), oldest first: the
   * patients each may be about (room.ts) and when it is tried again (0: once its patient's earlier one has gone).
   * Out of the line: the other patients' messages go on; a later message of a waiting patient joins them unsent, so
   * that the server sees each patient's messages in order. On disk (spool.retry_at): a restart goes on waiting.
   */
  const forRoom = new Map<number, { keys: string[]; retryAt: number }>();
  try {
    for (const w of spool.forRoom()) forRoom.set(w.seq, { keys: patientKeys(w.text), retryAt: w.retryAt });
  } catch (err) {
    spool.close();
    throw err;
  }
  let roomSaidAt = Number.NEGATIVE_INFINITY;

  /** The first waiting message of each patient that is due, else when the next one is. */
  function nextForRoom(t: number): { seq?: number; at?: number } {
    const before = new Set<string>();
    let at: number | undefined;
    for (const [seq, w] of forRoom) {
      const first = !w.keys.some((k) => before.has(k));
      for (const k of w.keys) before.add(k);
      if (!first) continue;
      if (w.retryAt <= t) return { seq };
      at = Math.min(at ?? w.retryAt, w.retryAt);
    }
    return at === undefined ? {} : { at };
  }

  /** A message of its patient (one of its keys) waits for room before it. */
  function behindOne(seq: number, keys: string[]): boolean {
    for (const [s, w] of forRoom) {
      if (s >= seq) return false;
      if (w.keys.some((k) => keys.includes(k))) return true;
    }
    return false;
  }

  function waitForRoom(m: Spooled, keys: string[], retryAt: number): void {
    forRoom.set(m.seq, { keys, retryAt });
    try {
      spool.waitForRoom(m.seq, retryAt);
    } catch (err) {
      // Kept waiting all the same; a bridge started again sends it first, and the server says again if it has room.
      o.log(`mllp-bridge: message ${m.seq} waits for room, but the spool cannot say so (${(err as Error).message})`);
    }
    // The monitor is told the bridge holds it, as for a link down: the bridge sends it again, not the monitor.
    const header = translatePcd01(m.text).header;
    waiters.get(m.seq)?.({
      status: 202,
      ack: buildAck({
        code: 'AA',
        ...(header ? { header } : {}),
        text: 'held by the bridge: no room at the server for a new patient yet; delivered when there is',
        now: now(),
      }),
    });
  }

  /** The next message in line: not one waiting for room, nor one answered whose removal failed (settling). */
  function nextInLine(): Spooled | undefined {
    let after = 0;
    for (;;) {
      const m = spool.oldest(after);
      if (!m || !(forRoom.has(m.seq) || settling.some((x) => x.seq === m.seq))) return m;
      after = m.seq;
    }
  }

  /** Until woken (a message came, the bridge closes) or `ms` has passed: the timer goes with the wait. */
  async function rest(ms: number | undefined): Promise<void> {
    const stop = new AbortController();
    const woken = new Promise<void>(
      (resolve) =>
        (wake = () => {
          stop.abort();
          resolve();
        }),
    );
    if (ms === undefined) return woken;
    await Promise.race([woken, sleep(ms, undefined, { signal: stop.signal }).catch(() => undefined)]);
    stop.abort();
  }

  // One forwarder, oldest first: the server sees each monitor's messages in the order the bridge got them (each
  // patient's: one waiting for room goes out of the line with the later ones of its patient, in their order).
  const forwarder = (async () => {
    let backoff = 250;
    const later = async () => {
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
    while (!stopping) {
      try {
        settleDone();
      } catch {
        // Still cannot be written: the messages after them go on meanwhile.
      }
      const t = now();
      const room = nextForRoom(t);
      let m: Spooled | undefined;
      try {
        m = nextInLine();
        if (room.seq !== undefined && (!m || room.seq < m.seq)) m = spool.get(room.seq);
      } catch (err) {
        o.log(`mllp-bridge: cannot read the spool (${(err as Error).message}); trying again`);
        await later();
        continue;
      }
      if (room.seq !== undefined && !m) {
        forRoom.delete(room.seq); // no longer in the spool
        continue;
      }
      if (!m) {
        if (settling.length > 0) {
          await later(); // nothing left to forward: try the removals again a little later
          continue;
        }
        for (const f of idle.splice(0)) f();
        await rest(room.at === undefined ? undefined : room.at - t);
        continue;
      }
      const waiting = forRoom.get(m.seq);
      const keys = waiting?.keys ?? patientKeys(m.text);
      if (!waiting && behindOne(m.seq, keys)) {
        waitForRoom(m, keys, 0);
        continue;
      }
      const outcome = await forward(m);
      if (!outcome) {
        await later();
        continue;
      }
      backoff = 250;
      if (outcome.roomMs !== undefined) {
        const first = !waiting || waiting.retryAt === 0;
        waitForRoom(m, keys, now() + outcome.roomMs);
        if (first || now() - roomSaidAt >= 3_600_000) {
          roomSaidAt = now();
          o.log(
            `mllp-bridge: no room at the server for a new patient (503): message ${m.seq} waits in the spool, sent again every ${Math.round(outcome.roomMs / 1000)} s, ${forRoom.size} message(s) waiting; the other patients' messages go on`,
          );
        }
        continue;
      }
      if (forRoom.delete(m.seq) && forRoom.size === 0)
        o.log(`mllp-bridge: the server had room: no message waits for it any more (the last, ${m.seq}, answered)`);
      const waiter = waiters.get(m.seq);
      const message = m;
      // A 202 with an AE took part of the message and refused the rest (an observation, a patient outside the
      // token's wards, a reading too old after a long outage): refused in part, as much as a 422 is in whole.
      const code = readAck(outcome.ack)?.code;
      const whole = outcome.status === 202 && code === 'AA';
      const settle =
        whole || waiter
          ? () => spool.delivered(message.seq)
          : () => {
              // The monitor was told AA from the spool, and the server refuses it: kept for an operator, said loudly.
              spool.refused(message, outcome.status, outcome.ack, new Date(now()).toISOString());
              o.log(
                `mllp-bridge: message ${message.seq} (already ACKed from the spool) was refused ${outcome.status === 202 ? 'in part ' : ''}by the server (${outcome.status} ${code}); kept in ${o.spoolDir}/spool.db, table refused`,
              );
            };
      if (settling.length > 0) settling.push({ seq: m.seq, settle });
      else
        try {
          settle();
        } catch (err) {
          settling.push({ seq: m.seq, settle });
          o.log(
            `mllp-bridge: message ${m.seq} was answered by the server but cannot be taken out of the spool (${(err as Error).message}); it is not sent again, and is taken out once the spool can be written`,
          );
        }
      waiter?.(outcome);
    }
  })();

  async function take(text: string): Promise<string> {
    const read = translatePcd01(text);
    // What no server could ever take (not HL7, neither ORU^R01 nor ADT^A03, not production, not v2, no MSH-10...:
    // the header alone decides, no setting of the server's changes it) is refused here at once with the server's own
    // AR, link up or down, and not spooled: an AA "held" would tell the monitor it was taken, and the server would
    // refuse it later.
    if (!read.ok) return unreadableAck(read, now());
    const header = read.header;
    let seq: number;
    try {
      seq = spool.add(text, new Date(now()).toISOString());
    } catch (err) {
      o.log(`mllp-bridge: cannot write the spool (${(err as Error).message}); AR`);
      return buildAck({
        code: 'AR',
        header,
        problems: [
          { at: { segment: 'MSH', sequence: 1 }, code: 207, text: 'the bridge cannot store the message; send again' },
        ],
        now: now(),
      });
    }
    wake?.();
    const outcome = await new Promise<Outcome | undefined>((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(seq);
        resolve(undefined);
      }, o.ackWaitMs ?? 10_000);
      waiters.set(seq, (out) => {
        clearTimeout(timer);
        waiters.delete(seq);
        resolve(out);
      });
    });
    if (outcome) return outcome.ack;
    return buildAck({ code: 'AA', header, text: 'held by the bridge: delivered when the link is back', now: now() });
  }

  // A frame never ended is never answered, and its connection (a gateway gone without closing it) is not kept for
  // ever: closed after 10 minutes idle, or a minute after the frame began. What a sender can make the bridge hold is bounded (shared/hosts/mllp-connection.ts).
  let server: Server;
  try {
    server = createMllpServer(
      o.tls,
      (socket) => {
        serveMllpConnection(socket, async (e) => (e.type === 'error' ? refusalAck(e.problem, now()) : take(e.text)), {
          idleMs: o.idleMs ?? MLLP_IDLE_MS,
          frameMs: o.frameMs ?? MLLP_FRAME_MS,
        });
      },
      o.log,
      'mllp-bridge',
      now,
    );
    capMllpConnections(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listenPort, o.listenHost, () => resolve());
    });
  } catch (err) {
    // The port is taken (or the TLS files unusable): the spool (and its lock) is let go, for a bridge started again.
    stopping = true;
    wake?.();
    await forwarder;
    spool.close();
    throw err;
  }
  const left = spool.counts().waiting;
  if (left > 0) o.log(`mllp-bridge: ${left} message(s) in the spool from before; delivering them first`);
  wake?.();

  return {
    port: (server.address() as AddressInfo).port,
    spool,
    drained: async () => {
      while (spool.counts().waiting > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(resolve, 2000).unref();
      });
      stopping = true;
      wake?.();
      await forwarder;
      spool.close();
    },
  };
}
