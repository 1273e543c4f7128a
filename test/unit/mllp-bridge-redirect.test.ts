// crs mllp-bridge against a server that answers with a redirect: never followed. fetch would send the POST on to
// the new address as a GET without its body (301, 302, 303), and an ACK answered there would take the message out
// of the spool as delivered, though no server ever received it.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { HL7_CONTENT_TYPE, readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { NO_ROOM_ACK } from '#app/hl7v2/ingest.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { type Bridge, startBridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { floodUnread } from '#test/support/mllp-flood.ts';
import { msg } from '#test/support/messages.ts';
import { until } from '#test/support/until.ts';

// The forwarder's backoff sleeps go through here: real, unless a test records them instead (and does not wait), or
// parks the long ones (a wait for room at the server) until it lets them go (`go`) or the bridge wakes (abort).
const backoff = vi.hoisted(() => ({
  record: undefined as number[] | undefined,
  park: undefined as { ms: number; go: () => void }[] | undefined,
}));
vi.mock('node:timers/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:timers/promises')>();
  return {
    ...real,
    setTimeout: (ms: number, value?: unknown, options?: { signal?: AbortSignal }) => {
      const park = backoff.park;
      if (park && ms >= 1000)
        return new Promise((resolve, reject) => {
          const unpark = () => park.includes(parked) && park.splice(park.indexOf(parked), 1).length > 0;
          const parked = { ms, go: () => unpark() && resolve(value) };
          park.push(parked);
          options?.signal?.addEventListener('abort', () => unpark() && reject(options.signal!.reason));
        });
      if (!backoff.record) return real.setTimeout(ms, value, options);
      backoff.record.push(ms);
      return Promise.resolve(value);
    },
  };
});

const hl7m = (controlId: string) => toPcd01(msg('P-1', 0, { vitals: { heartRate: 90 } }, controlId))!;

it('keeps a message in the spool when the server answers with a redirect, and never follows it', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST') {
      res.writeHead(302, { location: '/elsewhere' });
      return void res.end();
    }
    // What a followed redirect would find: an ACK with a status the bridge takes as the server's last word.
    res.writeHead(202, { 'content-type': 'x-application/hl7-v2+er7' });
    res.end('MSH|^~\\&|CRS|CRS|GW|GW|20260110080000||ACK^R01^ACK|A1|P|2.6\rMSA|AA|M-1\r');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-redirect-'));
  const logged: string[] = [];
  const bridge = await startBridge({
    listenPort: 0,
    listenHost: '127.0.0.1',
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hl7v2`,
    token: 'tok',
    spoolDir: dir,
    ackWaitMs: 30,
    log: (line) => logged.push(line),
  });
  const monitor = new MllpClient('127.0.0.1', bridge.port);
  try {
    const ack = await monitor.send(toPcd01(msg('P-1', 0, { vitals: { heartRate: 90 } }, 'M-1'))!);
    expect(readAck(ack)?.code).toBe('AA');
    expect(ack).toContain('held by the bridge');
    await until(
      () => /the server answered 302; message \d+ stays in the spool/.test(logged.join('\n')),
      () => `the 302 logged (last: ${JSON.stringify(logged)})`,
      10_000,
    );
    expect(seen).not.toContain('GET /elsewhere');
    expect(bridge.spool.counts().waiting).toBe(1);
  } finally {
    monitor.close();
    await bridge.close();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

it('reads little of an answer that goes on and on, and keeps the message in the spool', async () => {
  // The answer's body was read whole, for as long as the request's timeout let it come: a URL that streams (a
  // download, a proxy's endless page) made the bridge hold hundreds of MB at each try of the oldest message.
  const written: number[] = [];
  const ended: boolean[] = [];
  const server = createServer((req, res) => {
    req.resume();
    const n = written.push(0) - 1;
    ended.push(false);
    res.writeHead(202, { 'content-type': 'x-application/hl7-v2+er7' });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let closed = false;
    res.on('close', () => {
      closed = true;
      ended[n] = true;
    });
    const pump = () => {
      while (!closed) {
        written[n]! += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-endless-'));
  const logged: string[] = [];
  const bridge = await startBridge({
    listenPort: 0,
    listenHost: '127.0.0.1',
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hl7v2`,
    token: 'tok',
    spoolDir: dir,
    ackWaitMs: 30,
    requestTimeoutMs: 3000,
    log: (line) => logged.push(line),
  });
  const monitor = new MllpClient('127.0.0.1', bridge.port);
  try {
    expect(readAck(await monitor.send(hl7m('M-1')))?.code).toBe('AA');
    await vi.waitFor(() => expect(logged.join('\n')).toMatch(/message \d+ stays in the spool/), { timeout: 10_000 });
    expect(bridge.spool.counts().waiting).toBe(1);
    // What the server could write before the bridge let the answer go: the socket buffers' worth, not 3 s of it.
    await vi.waitFor(() => expect(ended[0]).toBe(true), { timeout: 10_000 });
    expect(written[0]).toBeLessThan(16 * 1024 * 1024);
  } finally {
    monitor.close();
    await bridge.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('crs mllp-bridge, pinned by a mutation run', () => {
  const ACK_HEAD = 'MSH|^~\\&|CRS|CRS|GW|GW|20260110080000||ACK^R01^ACK|A1|P|2.6\r';
  const ack = (code: string, controlId: string, text = '') => `${ACK_HEAD}MSA|${code}|${controlId}|${text}\r`;
  const hl7 = (controlId: string, patient = 'P-1') =>
    toPcd01(msg(patient, 0, { vitals: { heartRate: 90 } }, controlId))!;
  type Reply = { status: number; body: string; headers?: Record<string, string> } | 'hang';

  /** A fake POST /v1/hl7v2: each request is answered by `reply` (by the request's number, from 0). */
  async function fakeServer(reply: (n: number, body: string) => Reply) {
    const got: { controlId: string; authorization?: string; type?: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const n = got.length;
        got.push({
          controlId: body.split('\r')[0]!.split('|')[9]!,
          authorization: req.headers.authorization,
          type: req.headers['content-type'],
          body,
        });
        const r = reply(n, body);
        if (r === 'hang') return;
        res.writeHead(r.status, { 'content-type': 'x-application/hl7-v2+er7', ...r.headers });
        res.end(r.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      got,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/hl7v2`,
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  }

  async function withBridge(
    url: string,
    opts: { ackWaitMs: number; requestTimeoutMs?: number; dir?: string; token?: string; now?: () => number },
    body: (b: Bridge, monitor: MllpClient, logged: string[]) => Promise<void>,
  ) {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'crs-bridge-pinned-'));
    const logged: string[] = [];
    const bridge = await startBridge({
      listenPort: 0,
      listenHost: '127.0.0.1',
      url,
      token: opts.token ?? 'tok-SECRET-123',
      spoolDir: dir,
      ackWaitMs: opts.ackWaitMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      log: (line) => logged.push(line),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const monitor = new MllpClient('127.0.0.1', bridge.port);
    try {
      await body(bridge, monitor, logged);
    } finally {
      monitor.close();
      await bridge.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    }
  }

  it.each([
    ['503 (the queue down)', 503, ack('AR', 'M-1', 'not accepted: send again later')],
    // Not the server's "no room" for this message: another message's, or no AR.
    ['503 "no room" answering another message', 503, ack('AR', 'M-9', `not all: ${NO_ROOM_ACK}`)],
    ['503 "no room" that is no AR', 503, ack('AE', 'M-1', `not all: ${NO_ROOM_ACK}`)],
    ['429 (throttled)', 429, ack('AR', 'M-1', 'not accepted: send again later')],
    ['500', 500, ack('AR', 'M-1')],
    ['403 naming no message (a refused token)', 403, ack('AR', '')],
    ['202 with a body that is no ACK (a proxy page)', 202, '<html>ok</html>'],
  ])(
    'a %s is not the server’s word: sent again, and the monitor gets the answer to the resend',
    async (_, status, first) => {
      const server = await fakeServer((n) =>
        n === 0 ? { status, body: first } : { status: 202, body: ack('AA', 'M-1', 'accepted 1 message(s)') },
      );
      try {
        await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
          const answer = await monitor.send(hl7('M-1'));
          expect(readAck(answer)).toEqual({ code: 'AA', controlId: 'M-1', text: 'accepted 1 message(s)' });
          expect(server.got.map((g) => g.controlId)).toEqual(['M-1', 'M-1']);
          expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
        });
      } finally {
        await server.close();
      }
    },
  );

  it('sends the device token as a bearer and the HL7 content type, and the message as received', async () => {
    const server = await fakeServer(() => ({ status: 202, body: ack('AA', 'M-1') }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (_b, monitor) => {
        await monitor.send(hl7('M-1'));
        expect(server.got).toEqual([
          { controlId: 'M-1', authorization: 'Bearer tok-SECRET-123', type: HL7_CONTENT_TYPE, body: hl7('M-1') },
        ]);
      });
    } finally {
      await server.close();
    }
  });

  it.each([400, 413, 415, 422])(
    'a %i with an ACK is the server’s last word: the monitor gets that ACK, and the next message goes on',
    async (status) => {
      const server = await fakeServer((n, body) =>
        n === 0
          ? { status, body: ack('AR', 'M-1', `refused ${status}`) }
          : { status: 202, body: ack('AA', body.split('\r')[0]!.split('|')[9]!) },
      );
      try {
        await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
          expect(readAck(await monitor.send(hl7('M-1')))).toEqual({
            code: 'AR',
            controlId: 'M-1',
            text: `refused ${status}`,
          });
          expect(readAck(await monitor.send(hl7('M-2')))).toMatchObject({ code: 'AA', controlId: 'M-2' });
          expect(server.got.map((g) => g.controlId)).toEqual(['M-1', 'M-2']);
          expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
        });
      } finally {
        await server.close();
      }
    },
  );

  it('a refusal with no ACK in it (a proxy: 413 over its body limit, 400) is final: the monitor gets our AR naming the status, the next message goes on', async () => {
    const server = await fakeServer((n, body) =>
      n === 0
        ? { status: 413, body: '<html>413 Request Entity Too Large</html>' }
        : { status: 202, body: ack('AA', body.split('\r')[0]!.split('|')[9]!, 'accepted 1 message(s)') },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
        const refused = readAck(await monitor.send(hl7('M-1')));
        expect(refused).toEqual({
          code: 'AR',
          controlId: 'M-1',
          text: 'refused on the way to the server: HTTP 413, no ACK (a proxy?)',
        });
        expect(readAck(await monitor.send(hl7('M-2')))?.code).toBe('AA');
        expect(server.got.map((g) => g.controlId)).toEqual(['M-1', 'M-2']);
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
      });
    } finally {
      await server.close();
    }
  });

  it('a refusal with no ACK after the monitor had AA from the spool is kept aside, and the spool goes on', async () => {
    const server = await fakeServer((n) =>
      n === 0 ? { status: 503, body: ack('AR', '') } : { status: 400, body: 'Bad Request' },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (bridge, monitor, logged) => {
        expect(await monitor.send(hl7('M-1'))).toContain('held by the bridge');
        await bridge.drained();
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 1 });
        expect(logged.join('\n')).toMatch(/was refused by the server \(400 AR\)/);
      });
    } finally {
      await server.close();
    }
  });

  it('a refusal the monitor received is not kept as refused: the monitor has it, nothing waits', async () => {
    const server = await fakeServer(() => ({ status: 422, body: ack('AE', 'M-1', 'nothing taken') }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
        expect(readAck(await monitor.send(hl7('M-1')))?.code).toBe('AE');
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
      });
    } finally {
      await server.close();
    }
  });

  it('a refusal after the monitor had AA from the spool is kept aside, each one (never one over another), and logged by ids only', async () => {
    // Each message: 503 first (the monitor gets AA "held"), then 422 for good.
    const server = await fakeServer((n) =>
      n % 2 === 0 ? { status: 503, body: ack('AR', '') } : { status: 422, body: ack('AE', 'x') },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (bridge, monitor, logged) => {
        for (const id of ['M-1', 'M-2']) {
          expect(await monitor.send(hl7(id, 'PATIENT-42'))).toContain('held by the bridge');
          await bridge.drained();
        }
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 2 });
        const refused = logged.filter((l) => l.includes('was refused by the server'));
        expect(refused).toHaveLength(2);
        expect(refused[0]).toMatch(/message \d+ \(already ACKed from the spool\) was refused by the server \(422 AE\)/);
        expect(logged.join('\n')).not.toContain('PATIENT-42');
      });
    } finally {
      await server.close();
    }
  });

  it('a part refused (202 with an AE) after the monitor had AA from the spool is kept aside and logged too', async () => {
    // An ORU of two patients, one outside the bridge token's wards (or a reading from a clock too old after a long
    // outage): the server takes the other and answers 202 AE naming the refused one. The monitor was told AA.
    const server = await fakeServer((n) =>
      n === 0
        ? { status: 503, body: ack('AR', '') }
        : {
            status: 202,
            body: `${ack('AE', 'M-1', '1 message(s) accepted; 1 problem(s), see ERR')}ERR||PID^2|207^Application internal error^HL70357|E\r`,
          },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (bridge, monitor, logged) => {
        expect(await monitor.send(hl7('M-1', 'PATIENT-42'))).toContain('held by the bridge');
        await bridge.drained();
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 1 });
        expect(logged.join('\n')).toMatch(
          /message \d+ \(already ACKed from the spool\) was refused in part by the server \(202 AE\)/,
        );
        expect(logged.join('\n')).not.toContain('PATIENT-42');
      });
    } finally {
      await server.close();
    }
  });

  it('a part refused (202 with an AE) that the monitor received is not kept: the monitor has the AE', async () => {
    const server = await fakeServer(() => ({ status: 202, body: ack('AE', 'M-1', '1 message(s) accepted') }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
        expect(readAck(await monitor.send(hl7('M-1')))?.code).toBe('AE');
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
      });
    } finally {
      await server.close();
    }
  });

  it('takes an ACK of exactly 1 MiB (a long list of ERR) as the server’s word: the monitor gets it, nothing sent again', async () => {
    const head = ack('AE', 'M-1', '1 message(s) accepted');
    const err = 'ERR||OBX^1^5^1|102^Data type error^HL70357|E||||';
    const room = 1024 * 1024 - head.length - err.length - 1;
    const body = `${head}${err}${'y'.repeat(room)}\r`;
    expect(Buffer.byteLength(body)).toBe(1024 * 1024);
    const server = await fakeServer(() => ({ status: 202, body }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor) => {
        expect(readAck(await monitor.send(hl7('M-1')))?.code).toBe('AE');
        expect(server.got).toHaveLength(1);
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
      });
    } finally {
      await server.close();
    }
  });

  it('delivers the spool oldest first once the link is back', async () => {
    let up = false;
    const server = await fakeServer((_, body) =>
      up ? { status: 202, body: ack('AA', body.split('\r')[0]!.split('|')[9]!) } : { status: 503, body: ack('AR', '') },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (bridge, monitor) => {
        for (const id of ['M-1', 'M-2', 'M-3']) expect(await monitor.send(hl7(id))).toContain('held by the bridge');
        up = true;
        await bridge.drained();
        // Each message sent (again) until the server took it, and the next one only then: in the order received.
        const order = server.got.map((g) => g.controlId).filter((id, i, all) => id !== all[i - 1]);
        expect(order).toEqual(['M-1', 'M-2', 'M-3']);
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
      });
    } finally {
      await server.close();
    }
  });

  describe('a new patient the server has no room for (crs serve --max-patients: 503 AR, send again later)', () => {
    /** The server: patients it knows are taken; a new one only once there is room (503 "no room" till then). */
    async function ceilingServer(known: string[]) {
      const state = { room: false, known: new Set(known) };
      const server = await fakeServer((_, body) => {
        const id = body.split('\r')[0]!.split('|')[9]!;
        const patient = /\rPID\|[^|]*\|[^|]*\|([^^|\r]*)/.exec(body)![1]!;
        if (!state.room && !state.known.has(patient))
          return {
            status: 503,
            headers: { 'retry-after': '120' },
            body: `${ack('AR', id, `not all: ${NO_ROOM_ACK}`)}ERR||PID^1|207^Application internal error^HL70357|E\r`,
          };
        state.known.add(patient);
        return { status: 202, body: ack('AA', id, 'accepted 1 message(s)') };
      });
      return { ...server, state, ids: () => server.got.map((g) => g.controlId) };
    }
    const clock = { t: Date.parse('2026-12-06T10:00:00Z') };
    const opts = { ackWaitMs: 20_000, now: () => clock.t };
    /** The wait for room the bridge is in (a parked sleep of the server's Retry-After), let go with the clock on. */
    async function roomComes(server: { state: { room: boolean } }) {
      const parked = await until(() => backoff.park!.find((p) => p.ms === 120_000), 'the wait for room (120 s)');
      server.state.room = true;
      clock.t += 120_000;
      parked.go();
    }
    const held = (answer: string, id: string) => {
      expect(readAck(answer)).toMatchObject({ code: 'AA', controlId: id });
      expect(answer).toContain('held by the bridge: no room at the server for a new patient yet');
    };

    it('keeps it in the spool and sends it again after Retry-After, while another patient’s message goes at once; the same patient’s wait behind it, in order', async () => {
      backoff.park = [];
      const server = await ceilingServer(['P-KNOWN']);
      try {
        await withBridge(server.url, opts, async (bridge, monitor, logged) => {
          // Until 2026-12-06 the monitor got the AR and the message was set aside in `refused`: never sent again.
          held(await monitor.send(hl7('N-1', 'P-NEW')), 'N-1');
          expect(readAck(await monitor.send(hl7('K-1', 'P-KNOWN')))).toEqual({
            code: 'AA',
            controlId: 'K-1',
            text: 'accepted 1 message(s)',
          });
          // The new patient's next message is not sent before the first: it waits behind it, unsent.
          held(await monitor.send(hl7('N-2', 'P-NEW')), 'N-2');
          expect(server.ids()).toEqual(['N-1', 'K-1']);
          expect(bridge.spool.counts()).toEqual({ waiting: 2, refused: 0 });
          expect(logged.join('\n')).toMatch(
            /no room at the server for a new patient \(503\): message 1 waits in the spool, sent again every 120 s/,
          );
          expect(logged.join('\n')).not.toContain('P-NEW');
          await roomComes(server);
          await bridge.drained();
          expect(server.ids()).toEqual(['N-1', 'K-1', 'N-1', 'N-2']);
          expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
          expect(logged.join('\n')).toMatch(/the server had room: no message waits for it any more/);
        });
      } finally {
        backoff.park = undefined;
        await server.close();
      }
    });

    it('goes on waiting after a restart (on disk), other patients’ messages going at once, and keeps the order', async () => {
      backoff.park = [];
      const server = await ceilingServer(['P-KNOWN']);
      const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-room-'));
      try {
        await withBridge(server.url, { ...opts, dir }, async (bridge, monitor) => {
          held(await monitor.send(hl7('N-1', 'P-NEW')), 'N-1');
          held(await monitor.send(hl7('N-2', 'P-NEW')), 'N-2');
          expect(bridge.spool.counts()).toEqual({ waiting: 2, refused: 0 });
        });
        await withBridge(server.url, { ...opts, dir }, async (bridge, monitor) => {
          // Not sent again before its time (120 s from the refusal, on disk), nor its patient's later one.
          expect(readAck(await monitor.send(hl7('K-1', 'P-KNOWN')))?.code).toBe('AA');
          held(await monitor.send(hl7('N-3', 'P-NEW')), 'N-3');
          expect(server.ids()).toEqual(['N-1', 'K-1']);
          await roomComes(server);
          await bridge.drained();
          expect(server.ids()).toEqual(['N-1', 'K-1', 'N-1', 'N-2', 'N-3']);
          expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
        });
      } finally {
        backoff.park = undefined;
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('opens a spool from before (no retry_at) and delivers what it holds', async () => {
      const server = await ceilingServer(['P-KNOWN']);
      const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-old-spool-'));
      const old = new Database(join(dir, 'spool.db'));
      old.exec(`
        CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, received_at TEXT NOT NULL);
        CREATE TABLE refused (seq INTEGER PRIMARY KEY, text TEXT NOT NULL, received_at TEXT NOT NULL, status INTEGER NOT NULL, ack TEXT NOT NULL, at TEXT NOT NULL);
      `);
      old
        .prepare('INSERT INTO spool (text, received_at) VALUES (?, ?)')
        .run(hl7('K-0', 'P-KNOWN'), '2026-12-05T10:00:00Z');
      old.close();
      try {
        await withBridge(server.url, { ...opts, dir }, async (bridge) => {
          await bridge.drained();
          expect(server.ids()).toEqual(['K-0']);
        });
      } finally {
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a message waiting for room that the server refuses for good then (its readings too old) is kept aside', async () => {
      backoff.park = [];
      let refuse = false;
      const server = await fakeServer((_, body) => {
        const id = body.split('\r')[0]!.split('|')[9]!;
        return refuse
          ? { status: 422, body: ack('AE', id, 'nothing taken') }
          : { status: 503, body: ack('AR', id, `not all: ${NO_ROOM_ACK}`) };
      });
      try {
        await withBridge(server.url, opts, async (bridge, monitor, logged) => {
          held(await monitor.send(hl7('N-1', 'P-NEW')), 'N-1');
          // No Retry-After: 60 s.
          const parked = await until(() => backoff.park!.find((p) => p.ms === 60_000), 'the wait for room (60 s)');
          refuse = true;
          clock.t += 60_000;
          parked.go();
          await bridge.drained();
          expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 1 });
          expect(logged.join('\n')).toMatch(/message 1 \(already ACKed from the spool\) was refused by the server/);
        });
      } finally {
        backoff.park = undefined;
        await server.close();
      }
    });
  });

  it('a request the server never answers is given up after the request timeout and sent again', async () => {
    const server = await fakeServer((n) => (n === 0 ? 'hang' : { status: 202, body: ack('AA', 'M-1') }));
    try {
      await withBridge(server.url, { ackWaitMs: 1, requestTimeoutMs: 100 }, async (bridge, monitor, logged) => {
        expect(await monitor.send(hl7('M-1'))).toContain('held by the bridge');
        await bridge.drained();
        expect(server.got).toHaveLength(2);
        expect(logged.join('\n')).toMatch(/link down \(TimeoutError\); message \d+ stays in the spool/);
      });
    } finally {
      await server.close();
    }
  });

  it('with the link down (connection refused), AA once on disk, and neither the token nor the URL in the log', async () => {
    const server = await fakeServer(() => ({ status: 202, body: ack('AA', 'M-1') }));
    const url = server.url;
    await server.close(); // nothing listens there now
    await withBridge(url, { ackWaitMs: 1 }, async (bridge, monitor, logged) => {
      expect(readAck(await monitor.send(hl7('M-1')))).toMatchObject({ code: 'AA', controlId: 'M-1' });
      // Why, by its code (refused, a name that does not resolve, a certificate refused): "TypeError" alone said nothing.
      await until(
        () => /link down \(TypeError: ECONNREFUSED\)/.test(logged.join('\n')),
        () => `the link down logged (last: ${JSON.stringify(logged)})`,
        10_000,
      );
      expect(bridge.spool.counts().waiting).toBe(1);
      const all = logged.join('\n');
      expect(all).not.toContain('tok-SECRET-123');
      expect(all).not.toContain(url);
    });
  });

  it('neither the token nor the URL in the log of a status that holds the message', async () => {
    const server = await fakeServer(() => ({ status: 401, body: ack('AR', '') }));
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (_b, monitor, logged) => {
        await monitor.send(hl7('M-1'));
        await until(
          () => /the server answered 401; message \d+ stays/.test(logged.join('\n')),
          () => `the 401 logged (last: ${JSON.stringify(logged)})`,
          10_000,
        );
        expect(logged.join('\n')).not.toContain('tok-SECRET-123');
        expect(logged.join('\n')).not.toContain(server.url);
      });
    } finally {
      await server.close();
    }
  });

  // docs/runbook.md, "Rotating a device's token", step 3: "check the gateway's log for 403s". The server's reason says
  // which token to install (a rotated token's replacement, by id); until 2026-12-07 the bridge logged the status
  // alone, and on AWS, where the ingest function logs no reason, nothing else told the operator.
  it('logs why the server refused its token (the reason of an AR naming no message), one line, no token', async () => {
    const reason =
      'device token replaced at 2026-12-07T23:26:08.158Z by token cda171cc (crs token rotate): install the replacement on the device';
    const server = await fakeServer((n) =>
      n === 0
        ? {
            status: 403,
            body: `${ack('AR', '', reason)}ERR||MSH^1|207^Application internal error^HL70357|E||||${reason}\r`,
          }
        : { status: 202, body: ack('AA', 'M-1', 'accepted 1 message(s)') },
    );
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (_b, monitor, logged) => {
        await monitor.send(hl7('M-1'));
        await until(
          () => logged.some((l) => l.includes('stays in the spool')),
          () => `the 403 logged (last: ${JSON.stringify(logged)})`,
          10_000,
        );
        expect(logged.find((l) => l.includes('stays in the spool'))).toBe(
          `mllp-bridge: the server answered 403 (${reason}); message 1 stays in the spool`,
        );
        expect(logged.join('\n')).not.toContain('tok-SECRET-123');
      });
    } finally {
      await server.close();
    }
  });

  it('a spool it cannot write is answered AR 207 "send again", and nothing is forwarded', async () => {
    const server = await fakeServer(() => ({ status: 202, body: ack('AA', 'M-1') }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor, logged) => {
        bridge.spool.add = () => {
          throw new Error('disk full');
        };
        const answer = await monitor.send(hl7('M-1'));
        expect(readAck(answer)).toMatchObject({ code: 'AR', controlId: 'M-1' });
        expect(answer).toMatch(/\rERR\|[^\r]*\|207\^/);
        expect(answer).toContain('the bridge cannot store the message; send again');
        expect(logged.join('\n')).toContain('cannot write the spool (disk full); AR');
        expect(server.got).toEqual([]);
      });
    } finally {
      await server.close();
    }
  });

  it('a message the server took that cannot be taken out of the spool (a full disk) is not sent again, and the bridge goes on', async () => {
    const server = await fakeServer((_, body) => ({
      status: 202,
      body: ack('AA', body.split('\r')[0]!.split('|')[9]!),
    }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge, monitor, logged) => {
        const remove = bridge.spool.delivered.bind(bridge.spool);
        let full = true;
        bridge.spool.delivered = (seq) => {
          if (full) throw new Error('database or disk is full');
          remove(seq);
        };
        // The bridge used to end here (an unhandled rejection): the monitor never had its ACK.
        expect(readAck(await monitor.send(hl7('M-1')))).toMatchObject({ code: 'AA', controlId: 'M-1' });
        expect(readAck(await monitor.send(hl7('M-2')))).toMatchObject({ code: 'AA', controlId: 'M-2' });
        expect(server.got.map((g) => g.controlId)).toEqual(['M-1', 'M-2']); // M-1 not forwarded again
        // Said once while the spool cannot be written, not again for each message after it (a mutation run).
        expect(logged.filter((l) => l.includes('cannot be taken out of the spool'))).toEqual([
          expect.stringContaining('cannot be taken out of the spool (database or disk is full)'),
        ]);
        expect(bridge.spool.counts().waiting).toBe(2);
        full = false; // space freed
        await bridge.drained();
        expect(bridge.spool.counts()).toEqual({ waiting: 0, refused: 0 });
        expect(server.got.map((g) => g.controlId)).toEqual(['M-1', 'M-2']);
      });
    } finally {
      await server.close();
    }
  });

  it('holds little for a sender of broken frames that reads none of its ACKs: it stops reading from it (as the listener does)', async () => {
    await withBridge('http://127.0.0.1:9/v1/hl7v2', { ackWaitMs: 1 }, async (bridge) => {
      const flood = await floodUnread(bridge.port, 1024 * 1024, 32 * 1024 * 1024);
      expect(flood.stopped).toBe(true);
      expect(flood.handed).toBeLessThan(32 * 1024 * 1024);
    });
  });

  it('answers every frame of a long burst across many TCP chunks, in order (reading resumes after it paused)', async () => {
    const server = await fakeServer((_, body) => ({
      status: 202,
      body: ack('AA', body.split('\r')[0]!.split('|')[9]!),
    }));
    try {
      await withBridge(server.url, { ackWaitMs: 20_000 }, async (bridge) => {
        const ids = Array.from({ length: 200 }, (_, i) => `B-${i}`);
        const pad = `\rNTE|1||${'x'.repeat(2000)}`;
        const socket = connect({ host: '127.0.0.1', port: bridge.port });
        const decoder = new MllpDecoder();
        const acks: string[] = [];
        const all = new Promise<void>((resolve) =>
          socket.on('data', (chunk: Buffer) => {
            for (const e of decoder.push(chunk)) if (e.type === 'frame') acks.push(readAck(e.text)!.controlId);
            if (acks.length === ids.length) resolve();
          }),
        );
        socket.write(Buffer.concat(ids.map((id) => frame(hl7(id).replace(/\r$/, '') + pad))));
        await all;
        socket.destroy();
        expect(acks).toEqual(ids);
      });
    } finally {
      await server.close();
    }
  }, 30_000);

  it('closes a connection left idle in the middle of a frame, never answering the frame (as the listener does)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crs-bridge-idle-'));
    const bridge = await startBridge({
      listenPort: 0,
      listenHost: '127.0.0.1',
      url: 'http://127.0.0.1:9/v1/hl7v2',
      token: 'tok',
      spoolDir: dir,
      ackWaitMs: 1,
      idleMs: 100,
      log: () => undefined,
    });
    try {
      const socket = connect({ host: '127.0.0.1', port: bridge.port });
      const received: Buffer[] = [];
      socket.on('data', (c: Buffer) => received.push(c));
      const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.write(frame(hl7('M-1')).subarray(0, 40)); // never ended
      await ended;
      socket.destroy();
      expect(Buffer.concat(received).length).toBe(0);
      expect(bridge.spool.counts().waiting).toBe(0);
    } finally {
      await bridge.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('backs off 250 ms, doubling to 5 s at most, and from 250 ms again after the server answered', async () => {
    // 9 answers that hold the first message, then it is taken; the second message: held once, then taken.
    const server = await fakeServer((n) =>
      n < 9 || n === 10 ? { status: 503, body: ack('AR', '') } : { status: 202, body: ack('AA', 'x') },
    );
    const slept: number[] = [];
    backoff.record = slept;
    try {
      await withBridge(server.url, { ackWaitMs: 1 }, async (bridge, monitor) => {
        await monitor.send(hl7('M-1'));
        await bridge.drained();
        expect(slept).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
        await monitor.send(hl7('M-2'));
        await bridge.drained();
        expect(slept.slice(9)).toEqual([250]);
        expect(server.got.map((g) => g.controlId)).toEqual([...Array(10).fill('M-1'), 'M-2', 'M-2']);
      });
    } finally {
      backoff.record = undefined;
      await server.close();
    }
  });

  it('listens on the host it is given only', async () => {
    await withBridge('http://127.0.0.1:9/v1/hl7v2', { ackWaitMs: 1 }, async (bridge) => {
      const refused = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.2', port: bridge.port });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
    });
  });

  it('fsyncs each spooled message (synchronous=FULL, in WAL mode), and says nothing of a spool left from before when it is empty', async () => {
    await withBridge('http://127.0.0.1:9/v1/hl7v2', { ackWaitMs: 1 }, async (bridge, _m, logged) => {
      const db = (bridge.spool as unknown as { db: { pragma: (s: string, o: { simple: true }) => unknown } }).db;
      expect(db.pragma('synchronous', { simple: true })).toBe(2);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(logged.join('\n')).not.toContain('from before');
    });
  });
});

describe('MllpClient (the monitor side), pinned by a mutation run', () => {
  const controlIdOf = (text: string) => text.split('\r')[0]!.split('|')[9]!;
  const ackFor = (id: string) => `MSH|^~\\&|GW|GW|X|X|20260110080000||ACK^R01^ACK|A-${id}|P|2.6\rMSA|AA|${id}\r`;

  /** A raw MLLP listener: `onFrame` gets each frame's control id and its socket. */
  async function listener(onFrame: (id: string, socket: Socket) => void) {
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => {
      sockets.push(socket);
      const decoder = new MllpDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const e of decoder.push(chunk)) if (e.type === 'frame') onFrame(controlIdOf(e.text), socket);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as AddressInfo).port,
      sockets,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      },
    };
  }

  it('two messages sent at once each get their own ACK, one connection, one at a time', async () => {
    const l = await listener((id, socket) => socket.write(frame(ackFor(id))));
    const client = new MllpClient('127.0.0.1', l.port);
    try {
      const [a, b] = await Promise.all([client.send(hl7m('M-1')), client.send(hl7m('M-2'))]);
      expect([readAck(a)?.controlId, readAck(b)?.controlId]).toEqual(['M-1', 'M-2']);
      expect(l.sockets).toHaveLength(1);
    } finally {
      client.close();
      await l.close();
    }
  });

  it('after a timeout, a late ACK on the old connection is never taken for the next message’s', async () => {
    let first: Socket | undefined;
    const l = await listener((id, socket) => {
      if (id === 'M-1') return void (first = socket); // answered late, below
      first?.write(frame(ackFor('M-1'))); // the late ACK, before this one's
      socket.write(frame(ackFor(id)));
    });
    const client = new MllpClient('127.0.0.1', l.port, 200);
    try {
      await expect(client.send(hl7m('M-1'))).rejects.toThrow('no ACK within 200 ms');
      expect(readAck(await client.send(hl7m('M-2')))?.controlId).toBe('M-2');
    } finally {
      client.close();
      await l.close();
    }
  });

  it('a broken frame from the peer (cut off by the next <VT>) is no ACK: the send takes the whole frame after it', async () => {
    const l = await listener((id, socket) =>
      socket.write(Buffer.concat([Buffer.from('\x0bMSH|^~\\&|cut off'), frame(ackFor(id))])),
    );
    const client = new MllpClient('127.0.0.1', l.port);
    try {
      expect(readAck(await client.send(hl7m('M-1')))?.controlId).toBe('M-1');
    } finally {
      client.close();
      await l.close();
    }
  });

  it('waits 30 s for an ACK by default (longer than the bridge holds a message before its AA: 10 s)', async () => {
    let arrived: () => void = () => undefined;
    const frameIn = new Promise<void>((r) => (arrived = r));
    const l = await listener(() => arrived());
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const client = new MllpClient('127.0.0.1', l.port);
    try {
      const sent = client.send(hl7m('M-1'));
      const outcome = sent.then(
        () => 'answered',
        (err: Error) => err.message,
      );
      await frameIn; // the timer is set before the frame is written
      vi.advanceTimersByTime(29_999);
      expect(await Promise.race([outcome, Promise.resolve('waiting')])).toBe('waiting');
      vi.advanceTimersByTime(1);
      expect(await outcome).toBe('no ACK within 30000 ms');
    } finally {
      vi.useRealTimers();
      client.close();
      await l.close();
    }
  });

  it('a connection closed before the ACK fails the send at once, and the next send reconnects', async () => {
    const l = await listener((id, socket) => (id === 'M-1' ? socket.destroy() : socket.write(frame(ackFor(id)))));
    const client = new MllpClient('127.0.0.1', l.port); // 30 s timeout: the close, not the timer, ends it
    try {
      await expect(client.send(hl7m('M-1'))).rejects.toThrow('the MLLP connection closed before the ACK');
      expect(readAck(await client.send(hl7m('M-2')))?.controlId).toBe('M-2');
      expect(l.sockets).toHaveLength(2);
    } finally {
      client.close();
      await l.close();
    }
  }, 10_000);
});
