// HL7 v2 over MLLP and over HTTP, compared: the same random ORU^R01 messages (valid ones and broken ones: another
// message type, a bad MSH, bad or custom delimiters, no MSH-10, a line that is no segment, a vital with no unit, a
// patient id that is not one, a time in the future, huge, non-ASCII, \n or \r\n line ends) sent to `crs serve`'s
// MLLP listener and to its POST /v1/hl7v2 route get the same ACK, byte for byte, and the same effect (the
// observations stored and graded once the worker has drained). Each answer is also checked against a model written
// from docs/interfaces.md ("Acknowledgements", "MLLP"), not from the code. Then the framing: the same messages cut
// into any TCP chunks, several frames in one chunk, noise between frames, a frame cut off by the next start block,
// an oversized frame, a connection closed mid-frame: one ACK per frame, in order, and the listener keeps working.
// Last, `crs mllp-bridge` in front of the AWS ingest function (behind the emulator's HTTP front) answers a monitor
// with the ACKs the embedded listener gives, scoped device tokens included.
// Runs: MLLP_FRONTS_RUNS (default 60 per property).
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken, TOKEN_REVOKED } from '#app/auth.ts';
import { HL7_CONTENT_TYPE } from '#app/hl7v2/ack.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { HL7_MAX_DELIMITERS, HL7_MAX_SEGMENTS } from '#app/hl7v2/pcd01.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { TokenScope } from '#domain/scope.ts';
import { startHttpFront, type HttpFront } from '#hosts/aws-emulator/http-front.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { startBridge, type Bridge } from '#hosts/mllp-bridge/mllp-bridge.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { DEVICE_ROUTES, frontFor, ingestFunction } from '#test/support/front.ts';
import { MemoryQueue, MemoryTokenStore } from '#test/support/port-fakes.ts';
import { sameAck } from '#test/support/hl7-ack.ts';
import { until } from '#test/support/until.ts';

const RUNS = Number(process.env.MLLP_FRONTS_RUNS ?? 60);
const NOW = Date.parse('2026-01-10T09:00:00Z');
const MIB = 1024 * 1024;

// ------------------------------------------------------------------------------------------------------------
// Messages: an ORU^R01 built here (not by the product's encoder), and what docs/interfaces.md says it gets.

/** The vitals drawn: OBX-3, OBX-6 and the value range the contract takes (docs/interfaces.md, codes and units). */
const VITALS = {
  temperatureC: { code: '150344^MDC_TEMP^MDC', unit: '268192^MDC_DIM_DEGC^MDC', min: 355, max: 415, scale: 10 },
  heartRate: { code: '147842^MDC_ECG_HEART_RATE^MDC', unit: '264864^MDC_DIM_BEAT_PER_MIN^MDC', min: 40, max: 180 },
  respiratoryRate: { code: '151562^MDC_RESP_RATE^MDC', unit: '264928^MDC_DIM_RESP_PER_MIN^MDC', min: 8, max: 40 },
  spo2: { code: '150456^MDC_PULS_OXIM_SAT_O2^MDC', unit: '262688^MDC_DIM_PERCENT^MDC', min: 80, max: 100 },
} as const;
type Vital = keyof typeof VITALS;

/** What is done to a valid message, and what the docs say it then gets. */
const MUTATIONS = [
  'none',
  'lf', // segments ended by \n
  'crlf', // segments ended by \r\n
  'custom-delimiters', // MSH|  written with other delimiters, as HL7 allows (MSH-1, MSH-2)
  'z-segment', // a Z-segment and an NTE with non-ASCII text: ignored
  'non-ascii-name', // PID-5 with non-ASCII: never read
  'huge', // ~300 KB of NTE
  'adt', // MSH-9 ADT^A01 of a patient the server does not know: AA, nothing taken (docs: ADT events)
  'r30', // MSH-9 ORU^R30
  'training', // MSH-11 T
  'v3', // MSH-12 3.0
  'no-control-id', // MSH-10 empty
  'not-msh', // the first segment is not MSH
  'bad-delimiters', // MSH-2 with a delimiter twice
  'second-msh',
  'junk-line', // a line that is not a segment
  'no-unit', // one OBX without OBX-6
  'bad-patient-id', // PID-3 outside the id set
  'future', // one OBX 10 minutes ahead of the server's clock
  'oversize', // over 1 MiB
  'escaped-control-id', // MSH-10 with HL7 escape sequences (a | ^ & ~ \ in the id, hex, formatting), non-ASCII, 150 characters
  'no-offset', // one OBX-14 without a zone offset (no site zone configured)
  'obr-time', // one OBX-14 empty: OBR-7 is its time
  'skipped-status', // one OBX-11 X (no result): skipped silently
  'unknown-code', // one OBX-3 not a code this system grades: skipped silently
  'joined-segments', // segments joined by the text \r, not a CR: one long MSH, no result (AR since 2026-12-06)
  'pid-only', // no OBR or OBX after the PID (AE since 2026-12-06)
] as const;
type Mutation = (typeof MUTATIONS)[number];

interface Drawn {
  vitals: { field: Vital; value: number; minutesAgo: number }[];
  mutation: Mutation;
  /** Which OBX the mutation touches (modulo their number). */
  pick: number;
}

const drawn: fc.Arbitrary<Drawn> = fc.record({
  vitals: fc.uniqueArray(
    fc.constantFrom(...(Object.keys(VITALS) as Vital[])).chain((field) =>
      fc.record({
        field: fc.constant(field),
        value: fc
          .integer({ min: VITALS[field].min, max: VITALS[field].max })
          .map((v) => v / ('scale' in VITALS[field] ? 10 : 1)),
        minutesAgo: fc.constantFrom(5, 30),
      }),
    ),
    { minLength: 1, maxLength: 4, selector: (v) => v.field },
  ),
  mutation: fc.constantFrom(...MUTATIONS),
  pick: fc.nat(),
});

const dtm = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14) + '+0000';

interface Built {
  text: string;
  controlId: string;
  patientId: string;
  /** What the docs say: the ACK code, MSA-2, the ERR-3 codes (undefined: any), the observations taken. */
  expect: {
    code: 'AA' | 'AE' | 'AR';
    echo: string;
    errs?: number[];
    taken: { field: Vital; value: number; at: number }[];
  };
}

/** The message of one run: ids of this run, so that runs share nothing (no de-duplication across runs). */
/** MSH-10 as written for 'escaped-control-id' (escaped as ST requires), by `pick`. */
const ODD_IDS = ['\\F\\x', '\\S\\y\\T\\z', '\\R\\\\E\\', 'é✓', `-${'9'.repeat(150)}`, '\\X41\\b', 'x\\.br\\y'];

/** `patient`: instead of one of the run's own; `ward`: a PV1-3 placing the patient there. */
function build(d: Drawn, run: string, patient?: string, ward?: string): Built {
  const controlId = d.mutation === 'escaped-control-id' ? `C${run}${ODD_IDS[d.pick % ODD_IDS.length]}` : `C${run}`;
  const patientId = patient ?? `P${run}`;
  const obx = d.vitals.map((v, i) => ({ ...v, at: NOW - v.minutesAgo * 60_000, n: i + 1 }));
  const touched = d.pick % obx.length;
  if (d.mutation === 'future') obx[touched]!.at = NOW + 10 * 60_000;
  const fields = (name: string, ...f: string[]) => [name, ...f].join('|');
  const msh = [
    'MSH|^~\\&|MON-GW|ICU-FAC|CRS|HOSP',
    dtm(NOW - 60_000),
    '',
    d.mutation === 'adt' ? 'ADT^A01^ADT_A01' : d.mutation === 'r30' ? 'ORU^R30^ORU_R30' : 'ORU^R01^ORU_R01',
    d.mutation === 'no-control-id' ? '' : controlId,
    d.mutation === 'training' ? 'T' : 'P',
    d.mutation === 'v3' ? '3.0' : '2.6',
    '',
    '',
    'NE',
    'AL',
    '',
    'UNICODE UTF-8',
  ].join('|');
  const segments = [
    d.mutation === 'not-msh'
      ? msh.replace(/^MSH/, 'MSX')
      : d.mutation === 'bad-delimiters'
        ? msh.replace('^~\\&', '^^\\&')
        : msh,
    fields(
      'PID',
      '',
      '',
      `${d.mutation === 'bad-patient-id' ? `${patientId} x` : patientId}^^^HOSP^MR`,
      '',
      d.mutation === 'non-ascii-name' ? 'Müller-Łódź^Zoë^李' : 'DOE^JANE',
    ),
    ...(ward === undefined ? [] : [fields('PV1', '', 'I', `${ward}^^${ward}-bed-1`)]),
    fields('OBR', '1', `${controlId}^GW`, '', '182777000^monitoring of patient^SCT', '', '', dtm(NOW - 60_000)),
    ...obx.map((o) =>
      fields(
        'OBX',
        String(o.n),
        'NM',
        VITALS[o.field].code,
        `1.1.1.${o.n}`,
        String(o.value),
        d.mutation === 'no-unit' && o.n === touched + 1 ? '' : VITALS[o.field].unit,
        '',
        '',
        '',
        '',
        'F',
        '',
        '',
        o.n !== touched + 1
          ? dtm(o.at)
          : d.mutation === 'no-offset'
            ? dtm(o.at).slice(0, 14)
            : d.mutation === 'obr-time'
              ? ''
              : dtm(o.at),
      ),
    ),
  ];
  const row = segments.findIndex((x) => x.startsWith(`OBX|${touched + 1}|`));
  if (d.mutation === 'skipped-status') segments[row] = segments[row]!.replace('||F||', '||X||');
  if (d.mutation === 'unknown-code')
    segments[row] = segments[row]!.replace(VITALS[obx[touched]!.field].code, '999999^MDC_NOTHING^MDC');
  if (d.mutation === 'z-segment') segments.push('ZCR|1|réanimation ✓ 漢字', 'NTE|1||Patientin ruhig – überwacht');
  if (d.mutation === 'second-msh') segments.push(msh);
  if (d.mutation === 'junk-line') segments.splice(2, 0, 'the monitor was moved to bed 4');
  if (d.mutation === 'huge' || d.mutation === 'oversize') {
    const line = `NTE|1||${'trend data '.repeat(90)}`;
    const target = d.mutation === 'huge' ? 300_000 : MIB + 10_000;
    for (let size = 0; size < target; size += line.length + 1) segments.push(line);
  }
  if (d.mutation === 'pid-only') segments.splice(segments.findIndex((x) => x.startsWith('OBR|')));
  const ends = { lf: '\n', crlf: '\r\n', 'joined-segments': '\\r' } as Partial<Record<Mutation, string>>;
  let text = segments.join(ends[d.mutation] ?? '\r');
  if (d.mutation === 'custom-delimiters') text = withDelimiters(text, '#', '*', '~', '\\', '&');

  // The model (docs/interfaces.md "Acknowledgements"): AR when nothing can be taken, AE with an ERR per refused
  // observation (the rest taken), AA when everything was. MSA-2 echoes MSH-10 whenever the MSH could be read.
  const all = obx.map((o) => ({ field: o.field, value: o.value, at: o.at }));
  const others = all.filter((_, i) => i !== touched);
  const ar = (echo: string, errs?: number[]) => ({ code: 'AR' as const, echo, ...(errs ? { errs } : {}), taken: [] });
  const byMutation: Record<Mutation, Built['expect']> = {
    none: { code: 'AA', echo: controlId, errs: [], taken: all },
    lf: { code: 'AA', echo: controlId, errs: [], taken: all },
    crlf: { code: 'AA', echo: controlId, errs: [], taken: all },
    'custom-delimiters': { code: 'AA', echo: controlId, errs: [], taken: all },
    'z-segment': { code: 'AA', echo: controlId, errs: [], taken: all },
    'non-ascii-name': { code: 'AA', echo: controlId, errs: [], taken: all },
    huge: { code: 'AA', echo: controlId, errs: [], taken: all },
    adt: { code: 'AA', echo: controlId, errs: [], taken: [] },
    r30: ar(controlId, [201]),
    training: ar(controlId, [202]),
    v3: ar(controlId, [203]),
    'no-control-id': ar('', [101]),
    'not-msh': ar('', [100]),
    'bad-delimiters': ar(''),
    'second-msh': ar(controlId, [100]),
    'junk-line': ar(controlId, [100]),
    'no-unit': { code: 'AE', echo: controlId, taken: all.filter((_, i) => i !== touched) },
    'bad-patient-id': { code: 'AE', echo: controlId, taken: [] },
    future: { code: 'AE', echo: controlId, taken: all.filter((_, i) => i !== touched) },
    oversize: ar(''),
    'escaped-control-id': { code: 'AA', echo: controlId, errs: [], taken: all },
    'no-offset': { code: 'AE', echo: controlId, errs: [102], taken: others },
    'obr-time': {
      code: 'AA',
      echo: controlId,
      errs: [],
      taken: all.map((o, i) => (i === touched ? { ...o, at: NOW - 60_000 } : o)),
    },
    'skipped-status': { code: 'AA', echo: controlId, errs: [], taken: others },
    'unknown-code': { code: 'AA', echo: controlId, errs: [], taken: others },
    'joined-segments': ar(controlId, [100]),
    'pid-only': { code: 'AE', echo: controlId, errs: [100], taken: [] },
  };
  return { text, controlId, patientId, expect: byMutation[d.mutation] };
}

/** The same message written with other delimiters (the text holds none of them, nor escapes). */
function withDelimiters(
  text: string,
  field: string,
  component: string,
  repetition: string,
  escaping: string,
  sub: string,
) {
  const map: Record<string, string> = { '|': field, '^': component, '~': repetition, '\\': escaping, '&': sub };
  const body = text.slice(8).replace(/[|^~\\&]/g, (c) => map[c]!);
  return `MSH${field}${component}${repetition}${escaping}${sub}${body}`;
}

/** A valid message of one heart rate (drawn: to be built with `build`). */
const heartRate = (value: number): Drawn => ({
  vitals: [{ field: 'heartRate', value, minutesAgo: 5 }],
  mutation: 'none',
  pick: 0,
});

/** What a sender reads in an ACK: MSA-1, MSA-2, and each ERR's location, code and text. */
function readAnswer(ack: string) {
  const segments = ack.split('\r');
  const msa = segments.find((s) => s.startsWith('MSA|'))?.split('|') ?? [];
  const errs = segments.filter((s) => s.startsWith('ERR|')).map((s) => s.split('|'));
  return {
    code: msa[1],
    controlId: msa[2] ?? '',
    errs: errs.map((e) => ({ at: e[2], code: Number(e[3]?.split('^')[0]), text: e[8] })),
  };
}

function expectModel(ack: string, b: Built, label: string) {
  const a = readAnswer(ack);
  expect(a.code, `${label}: MSA-1\n${ack}`).toBe(b.expect.code);
  expect(a.controlId, `${label}: MSA-2\n${ack}`).toBe(b.expect.echo);
  if (b.expect.code !== 'AA') expect(a.errs.length, `${label}: an ERR names the problem\n${ack}`).toBeGreaterThan(0);
  if (b.expect.errs)
    expect(
      a.errs.map((e) => e.code),
      `${label}: ERR-3\n${ack}`,
    ).toEqual(b.expect.errs);
}

// ------------------------------------------------------------------------------------------------------------
// Hosts and senders.

const dirs: string[] = [];
const tmp = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `crs-${name}-`));
  dirs.push(d);
  return d;
};

async function embedded(options: { mllpDevice?: string; dataDir?: string } = {}): Promise<EmbeddedServer> {
  return startEmbeddedServer({
    dataDir: options.dataDir ?? tmp('mllp-fronts'),
    config: DEFAULT_CONFIG,
    port: 0,
    mllpPort: 0,
    maxPatients: 1_000_000, // each run has patients of its own
    ...(options.mllpDevice ? { mllpDevice: options.mllpDevice } : {}),
    pageStream: new PassThrough(),
    log: () => undefined,
    now: () => NOW,
  });
}

const postHl7 = async (url: string, token: string, text: string) => {
  const r = await fetch(`${url}/v1/hl7v2`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': HL7_CONTENT_TYPE },
    body: Buffer.from(text, 'utf8'),
  });
  return { status: r.status, ack: await r.text() };
};

/** Resolves once the worker has graded everything committed (the inbox is empty). */
async function drained(s: EmbeddedServer): Promise<void> {
  const waiting = s.db.prepare('SELECT count(*) FROM inbox').pluck();
  await until(() => waiting.get() === 0, 'the embedded server to grade its inbox');
}

/** What the server stored and graded for a patient: each observation as graded, and the latest assessment. */
/** `sender`: who sent the patient's observations (and the EHR's enrolment, where there is one). */
function effect(s: EmbeddedServer, patientId: string, sender: string) {
  const timeline = s.db
    .prepare('SELECT message_id, observed_at, crs, icans, data FROM timeline WHERE patient_id = ? ORDER BY id')
    .all(patientId) as { message_id: string; observed_at: number; crs: number; icans: number; data: string }[];
  const patient = s.db.prepare('SELECT assessment FROM patients WHERE patient_id = ?').pluck().get(patientId) as
    | string
    | undefined;
  return {
    timeline: timeline.map((r) => {
      const { sender: from, ...data } = JSON.parse(r.data) as Record<string, unknown>;
      expect([sender, 'ehr-1']).toContain(from);
      return { ...r, data };
    }),
    assessment: patient === undefined ? undefined : (JSON.parse(patient) as unknown),
  };
}

/** A raw MLLP connection: writes chunks as given, collects every frame that comes back. */
class RawConnection {
  readonly acks: string[] = [];
  private readonly decoder = new MllpDecoder();
  private waiter: (() => void) | undefined;
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const e of this.decoder.push(chunk)) if (e.type === 'frame') this.acks.push(e.text);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  async write(chunks: Buffer[]): Promise<void> {
    for (const c of chunks) await new Promise<void>((r, j) => this.socket.write(c, (err) => (err ? j(err) : r())));
  }

  /** Resolves when `n` ACKs have come (or rejects when the connection closes first). */
  async until(n: number): Promise<string[]> {
    while (this.acks.length < n) {
      if (this.closed) throw new Error(`the connection closed after ${this.acks.length} of ${n} ACKs`);
      await new Promise<void>((r) => (this.waiter = r));
    }
    return this.acks.slice(0, n);
  }

  end(): void {
    this.socket.end();
  }
}

// ----------------------------------------------------------------------------------------------------------
// Framing (docs/interfaces.md "MLLP"): <VT> message <FS><CR>, one message per frame, answered in order on the same
// connection; bytes outside frames are ignored; a frame cut off by the next start block is answered AR (100) in
// its place; a frame over 1 MiB is answered AR (207) and the rest of it skipped; a frame never ended is never
// answered, and a connection closed mid-frame takes nothing else down.

/** Bytes a line or a gateway may put between frames: anything but a start block. */
const noise = fc.oneof(
  fc.constantFrom('\r\n', '\n', '\x1c\r', 'PING', ' '),
  fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a.filter((b) => b !== 0x0b)).toString('latin1')),
);
const piece = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('frame' as const),
      d: drawn.filter((d) => d.mutation !== 'oversize'),
      noise: fc.option(noise, { nil: undefined }),
      /** A frame started before this one and never ended: its first bytes (a share of the message's). */
      abandoned: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined, freq: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'oversized' as const }) },
);
/** What one connection carries: at most one oversized frame (1 MiB each). */
const pieces = fc
  .array(piece, { minLength: 1, maxLength: 5 })
  .filter((ps) => ps.filter((p) => p.kind === 'oversized').length <= 1);
const ending = fc.constantFrom('probe' as const, 'close-mid-frame' as const, 'close-at-once' as const);
const chunking = fc.oneof(
  fc.constant([] as number[]), // all in one write
  fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 6 }),
);

const raw = (text: string) => Buffer.from(text, 'latin1');
const oversized = () => frame(`MSH|^~\\&|GW|F|||||ORU^R01|BIG|P|2.6\r${'NTE|1||x\r'.repeat(MIB / 9 + 10)}`);
const cut = (wire: Buffer, sizes: number[]) => {
  if (sizes.length === 0) return [wire];
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < wire.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(wire.subarray(at, at + n));
    at += n;
  }
  return out;
};
const abandonedAnswer = { code: 'AR', controlId: '', errs: [100] };
const tooLongAnswer = { code: 'AR', controlId: '', errs: [207] };

/**
 * Sends `pieces` to an MLLP listener on `port` cut into `sizes`, ended as `end`, and checks each ACK against the
 * model, then that a new connection is answered. Returns the messages sent whole (`run` makes their ids).
 */
async function framing(
  port: number,
  run: string,
  pieces: (typeof piece extends fc.Arbitrary<infer P> ? P : never)[],
  sizes: number[],
  end: 'probe' | 'close-mid-frame' | 'close-at-once',
): Promise<Built[]> {
  const parts: Buffer[] = [];
  /** Each answer expected, in order: a message's model, or a refusal of the framing. */
  const expected: (Built | typeof abandonedAnswer)[] = [];
  const built: Built[] = [];
  pieces.forEach((p, i) => {
    if (p.kind === 'oversized') {
      parts.push(oversized());
      expected.push(tooLongAnswer);
      return;
    }
    const b = build(p.d, `${run}-${i}`);
    built.push(b);
    if (p.noise !== undefined) parts.push(raw(p.noise));
    if (p.abandoned !== undefined) {
      const bytes = Buffer.from(b.text, 'utf8');
      parts.push(Buffer.from([0x0b]), bytes.subarray(0, Math.floor(p.abandoned * bytes.length)));
      expected.push(abandonedAnswer);
    }
    parts.push(frame(b.text));
    expected.push(b);
  });
  const conn = await RawConnection.open(port);
  const partial = frame(built[0]?.text ?? 'MSH|^~\\&|X').subarray(0, -2);
  if (end === 'close-at-once') {
    // Everything, a frame that never ends, and the connection closed, without reading an ACK.
    await conn.write(cut(Buffer.concat([...parts, partial]), sizes));
    conn.end();
  } else {
    await conn.write(cut(Buffer.concat(parts), sizes));
    const acks = await conn.until(expected.length);
    acks.forEach((ack, i) => {
      const e = expected[i]!;
      if ('expect' in e) expectModel(ack, e, `frame ${i}`);
      else {
        const a = readAnswer(ack);
        expect({ code: a.code, controlId: a.controlId, errs: a.errs.map((x) => x.code) }, `answer ${i}`).toEqual(e);
      }
    });
    if (end === 'probe') {
      // One more message on the same connection gets the next ACK: no answer more, none fewer.
      const probe = build(
        { vitals: [{ field: 'spo2', value: 97, minutesAgo: 5 }], mutation: 'none', pick: 0 },
        `${run}-probe`,
      );
      await conn.write([frame(probe.text)]);
      const [last] = (await conn.until(expected.length + 1)).slice(-1);
      expectModel(last!, probe, 'probe');
      conn.end();
    } else {
      await conn.write([partial]);
      conn.end();
    }
  }
  // The listener still answers a new connection.
  const probe = build(
    { vitals: [{ field: 'spo2', value: 96, minutesAgo: 5 }], mutation: 'none', pick: 0 },
    `${run}-next`,
  );
  const next = await RawConnection.open(port);
  await next.write([frame(probe.text)]);
  expectModel((await next.until(1))[0]!, probe, 'a new connection');
  next.end();
  return built;
}

afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------------------

/**
 * A valid message (built) padded to `segments` segments with NTE, or to `delimiters` delimiters with one NTE of
 * repetitions (`~`): at the bounds of what one message may cost to read (docs/interfaces.md).
 */
function padded(b: Built, to: { segments: number } | { delimiters: number }): Built {
  const segments = b.text.split(/[\r\n]+/).length;
  const delimiters = (b.text.match(/[|^~&]/g) ?? []).length;
  const text =
    'segments' in to
      ? `${b.text}\r${Array.from({ length: to.segments - segments }, () => 'NTE|1||x').join('\r')}`
      : `${b.text}\rNTE|1||${'~'.repeat(to.delimiters - delimiters - 3)}`;
  return { ...b, text };
}

describe('HL7 v2 over MLLP and over HTTP, on crs serve', () => {
  let overMllp: EmbeddedServer;
  let overHttp: EmbeddedServer;
  let monitorToken: string;
  let client: MllpClient;

  beforeAll(async () => {
    overMllp = await embedded();
    overHttp = await embedded();
    // The MLLP listener sends as a monitor for every patient (docs/security.md): the HTTP sender is one too.
    const issued = issueToken('monitor-1', new Date(NOW), { kind: 'monitor' });
    await overHttp.tokens.put(issued.record);
    monitorToken = issued.token;
    client = new MllpClient('127.0.0.1', overMllp.mllpPort!);
  });
  afterAll(async () => {
    client.close();
    await overMllp.close();
    await overHttp.close();
  });

  let run = 0;
  it('the same ACK and the same observations graded, as docs/interfaces.md says', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(drawn, fc.boolean(), async (d, resend) => {
        const b = build(d, `f${++run}`);
        const viaMllp = await client.send(b.text);
        const viaHttp = await postHl7(overHttp.url, monitorToken, b.text);
        expectModel(viaMllp, b, `MLLP ${d.mutation}`);
        expect(sameAck(viaHttp.ack), `HTTP ${d.mutation} (${viaHttp.status})`).toBe(sameAck(viaMllp));
        if (resend) {
          // A monitor that missed its ACK sends again: the same answer, and nothing taken twice (rules section 5).
          expect(sameAck(await client.send(b.text)), `MLLP resend of ${d.mutation}`).toBe(sameAck(viaMllp));
          expect(sameAck((await postHl7(overHttp.url, monitorToken, b.text)).ack), `HTTP resend of ${d.mutation}`).toBe(
            sameAck(viaMllp),
          );
        }
        await Promise.all([drained(overMllp), drained(overHttp)]);
        // The one difference by design: who sent it (docs/interfaces.md, `source.kind` and device tokens).
        const stored = effect(overMllp, b.patientId, 'mllp:127.0.0.1');
        expect(effect(overHttp, b.patientId, 'monitor-1'), `effect of ${d.mutation}`).toEqual(stored);
        // The observations taken, and no others, each graded at its own time.
        const taken = stored.timeline.flatMap((r) =>
          Object.entries((r.data.vitals ?? {}) as Record<string, number>).map(([field, value]) => ({
            field,
            value,
            at: r.observed_at,
          })),
        );
        const byField = (x: { field: string }, y: { field: string }) => x.field.localeCompare(y.field);
        expect(taken.sort(byField), `stored for ${d.mutation}`).toEqual([...b.expect.taken].sort(byField));
        seen.add(b.expect.code);
      }),
      {
        numRuns: RUNS,
        // Each ACK code once for sure (AA, AE: one unit missing, AR: an ORU^R30), so the coverage check below does not
        // depend on the random draw.
        examples: [
          [heartRate(80), false],
          [{ ...heartRate(81), mutation: 'no-unit' }, false],
          [{ ...heartRate(82), mutation: 'r30' }, false],
          [{ ...heartRate(83), mutation: 'adt' }, false],
        ],
      },
    );
    expect([...seen].sort()).toEqual(['AA', 'AE', 'AR']);
  }, 120_000);

  it('a ward-scoped monitor: the listener acting as the device (--mllp-device) decides as its token does over HTTP', async () => {
    // docs/security.md: a ward token reaches a patient the server has in one of its wards, or one in no ward that
    // the message places there (PV1-3); a patient known in another ward is out of reach (AR, 403); a PV1-3 outside
    // its wards is refused (its ERR; AE) and the patient judged where the server has it.
    const WARDS = ['ICU', 'ICU2'];
    const scope: TokenScope = { kind: 'monitor', wards: WARDS };
    const mon = issueToken('ward-mon', new Date(NOW), scope);
    const ehr = issueToken('ehr-1', new Date(NOW), { kind: 'ehr' });
    const dir = tmp('mllp-ward');
    const first = await embedded({ dataDir: dir });
    await first.tokens.put(mon.record);
    await first.close();
    const viaListener = await embedded({ dataDir: dir, mllpDevice: 'ward-mon' });
    const viaHttp = await embedded();
    const listener = new MllpClient('127.0.0.1', viaListener.mllpPort!);
    try {
      await viaHttp.tokens.put(mon.record);
      // Known beforehand, on both, as an EHR places them: WK7 in ward W7, WKI in ICU.
      const known = new Map<string, string>([
        ['WK7', 'W7'],
        ['WKI', 'ICU'],
      ]);
      for (const s of [viaListener, viaHttp]) {
        await s.tokens.put(ehr.record);
        for (const [patientId, ward] of known) {
          const m = {
            messageId: `enrol-${patientId}`,
            patientId,
            observedAt: new Date(NOW - 120 * 60_000).toISOString(),
            source: { deviceId: 'ehr-1', kind: 'ehr' },
            enrolment: { ward, bed: `${ward}-1` },
          };
          const r = await fetch(`${s.url}/v1/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ehr.token}`, 'content-type': 'application/json' },
            body: JSON.stringify(m),
          });
          expect(r.status).toBe(202);
        }
        await drained(s);
      }
      // Where each patient is (the EHR's beds, then what PV1-3 placed), by the model.
      const places = new Map([...known].map(([p, w]) => [p, { ward: w, bed: `${w}-1`, at: NOW - 120 * 60_000 }]));
      const placeOf = (s: EmbeddedServer, patientId: string) => {
        const state = s.db.prepare('SELECT state FROM patients WHERE patient_id = ?').pluck().get(patientId) as
          | string
          | undefined;
        if (state === undefined) return undefined;
        const { enrolment } = JSON.parse(state) as { enrolment: { ward?: { v: string }; bed?: { v: string } } };
        return enrolment.ward || enrolment.bed ? { ward: enrolment.ward?.v, bed: enrolment.bed?.v } : undefined;
      };
      let n = 0;
      const seen = new Set<string>();
      await fc.assert(
        fc.asyncProperty(
          drawn.map((d) => ({ ...d, mutation: 'none' as const })),
          fc.constantFrom('WA', 'WB', 'WK7', 'WKI'),
          fc.constantFrom(undefined, 'ICU', 'ICU2', 'W7'),
          async (d, patient, ward) => {
            const b = build(d, `w${++n}`, patient, ward);
            const before = effect(viaListener, patient, 'ward-mon').timeline.length;
            const fromListener = await listener.send(b.text);
            const fromHttp = await postHl7(viaHttp.url, mon.token, b.text);
            expect(sameAck(fromHttp.ack), `${patient} ${ward}`).toBe(sameAck(fromListener));
            // The model.
            const placeRefused = ward !== undefined && !WARDS.includes(ward);
            const placed = placeRefused ? undefined : ward;
            const where = known.get(patient) ?? placed;
            const reached = where !== undefined && WARDS.includes(where);
            const a = readAnswer(fromListener);
            const expected = !reached ? 'AR' : placeRefused ? 'AE' : 'AA';
            expect(a.code, `${patient} (known in ${known.get(patient)}) placed in ${ward}\n${fromListener}`).toBe(
              expected,
            );
            expect(a.controlId).toBe(b.controlId);
            if (!reached || placeRefused) expect(a.errs.map((e) => e.code)).toContain(207);
            if (reached && placed !== undefined) known.set(patient, placed);
            seen.add(expected);
            await Promise.all([drained(viaListener), drained(viaHttp)]);
            const stored = effect(viaListener, patient, 'ward-mon');
            expect(effect(viaHttp, patient, 'ward-mon')).toEqual(stored);
            // What was stored, by the model too (the two fronts share the translation and the scope, so comparing
            // them alone misses a break in either): nothing for a patient out of reach; else the observations, and
            // the place PV1-3 gave (ward^^bed) when it was taken.
            const added = stored.timeline.slice(before);
            const taken = added.flatMap((r) =>
              Object.entries((r.data.vitals ?? {}) as Record<string, number>).map(([field, value]) => ({
                field,
                value,
                at: r.observed_at,
              })),
            );
            const byField = (x: { field: string }, y: { field: string }) => x.field.localeCompare(y.field);
            expect(taken.sort(byField), `stored for ${patient} placed in ${ward}`).toEqual(
              reached ? [...b.expect.taken].sort(byField) : [],
            );
            // A place holds until one observed as late or later comes (the latest of the message's times).
            const at = Math.max(...b.expect.taken.map((o) => o.at));
            if (reached && placed !== undefined && at >= (places.get(patient)?.at ?? 0))
              places.set(patient, { ward: placed, bed: `${placed}-bed-1`, at });
            const place = places.get(patient);
            for (const s of [viaListener, viaHttp])
              expect(placeOf(s, patient), `place of ${patient} sent to ${ward}`).toEqual(
                place && { ward: place.ward, bed: place.bed },
              );
          },
        ),
        {
          numRuns: RUNS,
          // Each ACK code once for sure, so the coverage check below does not depend on the random draw: WKI (in
          // ICU) reached (AA), then placed in W7 outside the token's wards (AE); WK7 (in W7) out of reach (AR).
          examples: [
            [heartRate(80), 'WKI', undefined],
            [heartRate(81), 'WKI', 'W7'],
            [heartRate(82), 'WK7', undefined],
          ],
        },
      );
      expect([...seen].sort()).toEqual(['AA', 'AE', 'AR']);
      // The token revoked: the listener stops taking its messages at once, with the AR its token gets over HTTP
      // (the listener said "this listener's device token is revoked", its MSA-3 the default text: found here),
      // addressed to the message: the listener has read it, where HTTP refuses before reading the body.
      for (const s of [viaListener, viaHttp])
        expect(await s.tokens.revoke(mon.record.tokenId, new Date(NOW).toISOString())).toBe(true);
      const b = build(heartRate(77), 'w-revoked', 'WKI');
      const fromListener = await listener.send(b.text);
      const fromHttp = await postHl7(viaHttp.url, mon.token, b.text);
      expect(fromHttp.status).toBe(403);
      const refused = { code: 'AR', errs: [{ at: 'MSH^1', code: 207, text: TOKEN_REVOKED() }] };
      expect(readAnswer(fromListener)).toEqual({ ...refused, controlId: b.controlId });
      expect(readAnswer(fromHttp.ack)).toEqual({ ...refused, controlId: '' });
    } finally {
      listener.close();
      await viaListener.close();
      await viaHttp.close();
    }
  }, 120_000);

  let framingRun = 0;
  it('one ACK per frame, in order, however TCP cuts or joins them; the listener keeps answering', async () => {
    await fc.assert(
      fc.asyncProperty(pieces, chunking, ending, async (sent, sizes, end) => {
        const run = ++framingRun;
        const built = await framing(overMllp.mllpPort!, `g${run}`, sent, sizes, end);
        // Every complete frame was taken as its model says, its ACK read or not (a closed connection's frames may
        // still be in hand after the new connection's answer: wait for each one to be graded, then compare).
        for (const b of built) {
          if (b.expect.taken.length === 0) continue;
          await until(
            () => effect(overMllp, b.patientId, 'mllp:127.0.0.1').timeline.length > 0,
            `${b.controlId} to be stored`,
          );
        }
        await drained(overMllp);
        for (const b of built) {
          const stored = effect(overMllp, b.patientId, 'mllp:127.0.0.1').timeline.flatMap((r) =>
            Object.keys((r.data.vitals ?? {}) as object),
          );
          expect(stored.sort(), b.controlId).toEqual(b.expect.taken.map((t) => t.field).sort());
        }
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it('a message over 1 MiB: the same AR over both, naming the limit (found by the property)', async () => {
    // MLLP answered ERR-3 100 "a frame is longer than 1048576 bytes", HTTP ERR-3 207 "body is 1048577 bytes; the
    // limit is 1048576" (the size as far as it read): a sender was told two different things for one message.
    const b = build(
      { vitals: [{ field: 'heartRate', value: 80, minutesAgo: 5 }], mutation: 'oversize', pick: 0 },
      'big1',
    );
    const viaMllp = await client.send(b.text);
    const viaHttp = await postHl7(overHttp.url, monitorToken, b.text);
    expect(viaHttp.status).toBe(413);
    expect(sameAck(viaHttp.ack)).toBe(sameAck(viaMllp));
    expect(readAnswer(viaMllp)).toEqual({
      code: 'AR',
      controlId: '',
      errs: [{ at: 'MSH^1', code: 207, text: 'the message is longer than 1048576 bytes, the most taken' }],
    });
    // The listener read past the rest of the frame: the next message on the connection is answered as usual.
    const next = build(
      { vitals: [{ field: 'heartRate', value: 81, minutesAgo: 5 }], mutation: 'none', pick: 0 },
      'big2',
    );
    expectModel(await client.send(next.text), next, 'after the oversized frame');
  });
  it('a message over the bounds of segments or delimiters: the same AR over both (HTTP 413), naming the bound; one at the bounds is taken', async () => {
    // Until 2026-12-06 only the 1 MiB limit bounded a message, and one of a million empty fields held the server's
    // event loop for a second or more (docs/security.md).
    const over = [
      {
        b: padded(build(heartRate(82), 'seg-over'), { segments: HL7_MAX_SEGMENTS + 1 }),
        text: `the message has ${HL7_MAX_SEGMENTS + 1} segments, more than ${HL7_MAX_SEGMENTS}, the most taken`,
      },
      {
        b: padded(build(heartRate(83), 'del-over'), { delimiters: HL7_MAX_DELIMITERS + 1 }),
        text: `the message has ${HL7_MAX_DELIMITERS + 1} field, component, repetition and subcomponent delimiters, more than ${HL7_MAX_DELIMITERS}, the most taken`,
      },
    ];
    for (const { b, text } of over) {
      const viaMllp = await client.send(b.text);
      const viaHttp = await postHl7(overHttp.url, monitorToken, b.text);
      expect(viaHttp.status, b.controlId).toBe(413);
      expect(sameAck(viaHttp.ack)).toBe(sameAck(viaMllp));
      // Addressed to the message: its MSH alone is read.
      expect(readAnswer(viaMllp)).toEqual({
        code: 'AR',
        controlId: b.controlId,
        errs: [{ at: 'MSH^1', code: 207, text }],
      });
      expect(effect(overMllp, b.patientId, 'mllp:127.0.0.1').timeline).toEqual([]);
    }
    // At the bounds: taken, as any message.
    for (const b of [
      padded(build(heartRate(84), 'seg-at'), { segments: HL7_MAX_SEGMENTS }),
      padded(build(heartRate(85), 'del-at'), { delimiters: HL7_MAX_DELIMITERS }),
    ]) {
      expectModel(await client.send(b.text), b, `${b.controlId} over MLLP`);
      const viaHttp = await postHl7(overHttp.url, monitorToken, b.text);
      expect(viaHttp.status, b.controlId).toBe(202);
      expectModel(viaHttp.ack, b, `${b.controlId} over HTTP`);
    }
  });
});

// ------------------------------------------------------------------------------------------------------------
// `crs mllp-bridge` in front of the AWS ingest function (behind the emulator's HTTP front): while the link is up the
// monitor gets the server's own ACK (docs/interfaces.md), so the same ACK as from `crs serve`'s listener acting as
// the same device: a monitor for every patient, and a monitor limited to some patients (docs/security.md).

describe('crs mllp-bridge to the AWS ingest, against crs serve --mllp-port', () => {
  const SCOPED_PATIENTS = ['B1', 'B2'];
  const scope: TokenScope = { kind: 'monitor', patients: SCOPED_PATIENTS };
  let front: HttpFront;
  let queue: MemoryQueue;
  /** The AWS API while its link is down (503 until opened), with a bridge of its own and a short ACK wait. */
  let downFront: HttpFront;
  let downQueue: MemoryQueue;
  let downBridge: Bridge;
  let plain: ReturnType<typeof issueToken>;
  const hosts: {
    name: string;
    embedded: EmbeddedServer;
    bridge: Bridge;
    viaEmbedded: MllpClient;
    viaBridge: MllpClient;
  }[] = [];

  beforeAll(async () => {
    const tokens = new MemoryTokenStore();
    queue = new MemoryQueue();
    front = await frontFor('ingest', await ingestFunction({ queue, tokens, now: () => NOW }), DEVICE_ROUTES);
    plain = issueToken('bridge-plain', new Date(NOW), { kind: 'monitor' });
    const scoped = issueToken('bridge-scoped', new Date(NOW), scope);
    await tokens.put(plain.record);
    await tokens.put(scoped.record);
    // The embedded listener acting as the scoped device: its token must be there before the server starts.
    const scopedDir = tmp('mllp-scoped');
    const first = await embedded({ dataDir: scopedDir });
    await first.tokens.put({ ...scoped.record });
    await first.close();
    for (const [name, token, server] of [
      ['plain', plain.token, await embedded()],
      ['scoped', scoped.token, await embedded({ dataDir: scopedDir, mllpDevice: 'bridge-scoped' })],
    ] as const) {
      const bridge = await startBridge({
        listenPort: 0,
        listenHost: '127.0.0.1',
        url: `${front.url}/v1/hl7v2`,
        token,
        spoolDir: tmp(`bridge-${name}`),
        ackWaitMs: 5000,
        log: () => undefined,
        now: () => NOW,
      });
      hosts.push({
        name,
        embedded: server,
        bridge,
        viaEmbedded: new MllpClient('127.0.0.1', server.mllpPort!),
        viaBridge: new MllpClient('127.0.0.1', bridge.port),
      });
    }
  });
  afterAll(async () => {
    for (const h of hosts) {
      h.viaBridge.close();
      h.viaEmbedded.close();
      await h.bridge.close();
      await h.embedded.close();
    }
    await front.close();
    await downBridge?.close();
    await downFront?.close();
  });

  let framingRun = 0;
  it('the bridge frames as the listener does: one ACK per frame, in order, however TCP cuts or joins them', async () => {
    const h = hosts.find((x) => x.name === 'plain')!;
    await fc.assert(
      fc.asyncProperty(pieces, chunking, ending, async (sent, sizes, end) => {
        const built = await framing(h.bridge.port, `h${++framingRun}`, sent, sizes, end);
        // Whatever the monitor read, each whole frame reaches the server as its model says, and nothing stays behind
        // (a closed connection's frames are still taken one by one after the probe's: wait for them first).
        const queued = (b: Built) =>
          queue.messages
            .filter((q) => q.message.patientId === b.patientId)
            .flatMap((q) => Object.keys(q.message.vitals ?? {}));
        for (const b of built) {
          if (b.expect.taken.length > 0) await until(() => queued(b).length > 0, `${b.controlId} to reach the server`);
        }
        await h.bridge.drained();
        for (const b of built) expect(queued(b).sort(), b.controlId).toEqual(b.expect.taken.map((t) => t.field).sort());
        expect(h.bridge.spool.counts().waiting).toBe(0);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  /** The mutations docs/interfaces.md lists under AR "nothing could be taken", the oversized frame included. */
  const UNTAKEABLE: readonly Mutation[] = [
    'r30',
    'training',
    'v3',
    'no-control-id',
    'not-msh',
    'bad-delimiters',
    'second-msh',
    'junk-line',
    'oversize',
    'joined-segments',
  ];

  it('link down: AA from the spool for what can be taken, the AR at once for what never can; all delivered when the link is back', async () => {
    const tokens = new MemoryTokenStore();
    await tokens.put(plain.record); // the plain bridge's token, known to this API too
    downQueue = new MemoryQueue();
    const ingest = await ingestFunction({ queue: downQueue, tokens, now: () => NOW });
    const target = { name: 'ingest', maxConcurrency: 4, invoke: ingest };
    downFront = await startHttpFront({
      port: 0,
      host: '127.0.0.1',
      routes: Object.fromEntries(DEVICE_ROUTES.map((k) => [k, target])),
      log: () => undefined,
    });
    downBridge = await startBridge({
      listenPort: 0,
      listenHost: '127.0.0.1',
      url: `${downFront.url}/v1/hl7v2`,
      token: plain.token,
      spoolDir: tmp('bridge-down'),
      ackWaitMs: 30,
      log: () => undefined,
      now: () => NOW,
    });
    const h = hosts.find((x) => x.name === 'plain')!;
    const monitor = new MllpClient('127.0.0.1', downBridge.port);
    const held: { b: Built; fromEmbedded: string }[] = [];
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(drawn, async (d) => {
          const b = build(d, `down${++n}`);
          const fromEmbedded = await h.viaEmbedded.send(b.text);
          const fromBridge = await monitor.send(b.text);
          if (UNTAKEABLE.includes(d.mutation)) {
            // Never takeable, whatever the server: told so now, not AA for a message that will be refused.
            expect(sameAck(fromBridge), d.mutation).toBe(sameAck(fromEmbedded));
            return;
          }
          expect(readAnswer(fromBridge), d.mutation).toEqual({ code: 'AA', controlId: b.controlId, errs: [] });
          expect(fromBridge).toContain('held by the bridge: delivered when the link is back');
          held.push({ b, fromEmbedded });
        }),
        {
          numRuns: RUNS,
          // Found by the property: with the link down, these got AA "held by the bridge" (only a message without
          // MSH-10 was refused at once), and were refused by the server once the link was back.
          examples: [
            [{ ...heartRate(88), mutation: 'v3' }],
            [{ ...heartRate(89), mutation: 'r30' }],
            [{ ...heartRate(86), mutation: 'adt' }],
            [{ ...heartRate(87), mutation: 'none' }],
          ],
        },
      );
    } finally {
      monitor.close();
    }
    // The link is back: everything held reaches the server, which takes what crs serve took and refuses the rest,
    // kept aside in the spool (the monitor had its AA).
    downFront.open();
    await downBridge.drained();
    const counts = downBridge.spool.counts();
    expect(counts.waiting).toBe(0);
    // Refused (kept aside): an AE, whether it took nothing (HTTP 422) or a part (202: until 2026-12-05 it was taken
    // out of the spool as delivered, its refused part said to nobody); an AA that had nothing to take (a skipped row)
    // is not.
    const refused = held.filter((x) => x.b.expect.code !== 'AA');
    expect(counts.refused, refused.map((x) => x.b.controlId).join()).toBe(refused.length);
    for (const { b } of held) {
      const queued = downQueue.messages
        .filter((q) => q.message.patientId === b.patientId)
        .flatMap((q) => Object.keys(q.message.vitals ?? {}));
      expect(queued.sort(), b.controlId).toEqual(b.expect.taken.map((t) => t.field).sort());
    }
  }, 120_000);

  it('a message the server refuses for the bridge’s device is answered AR, and the next one goes through (found by the property)', async () => {
    // A 403 was "try again": the monitor got AA "held by the bridge" for a patient outside the token's scope, and
    // the forwarder retried it for ever, oldest first, so every later message of every monitor was held too.
    const h = hosts.find((x) => x.name === 'scoped')!;
    for (const [patient, code] of [
      ['BX', 'AR'],
      ['B2', 'AA'],
    ] as const) {
      const b = build(heartRate(90), `scope-${patient}`, patient);
      const fromBridge = await h.viaBridge.send(b.text);
      expect(sameAck(fromBridge)).toBe(sameAck(await h.viaEmbedded.send(b.text)));
      expect(readAnswer(fromBridge)).toMatchObject({ code, controlId: b.controlId });
    }
    expect(h.bridge.spool.counts().waiting).toBe(0);
    expect(queue.messages.some((q) => q.message.messageId === 'hl7v2:ICU-FAC/Cscope-B2')).toBe(true);
  });

  it('a message without MSH-10, refused by the bridge itself, is answered as the server answers it (found by the property)', async () => {
    // The bridge's own AR was addressed to no one (MSH-5/6 empty, MSH-9 and MSH-12 defaulted).
    const h = hosts.find((x) => x.name === 'plain')!;
    const b = build({ ...heartRate(91), mutation: 'no-control-id' }, 'no-msh10');
    const fromBridge = await h.viaBridge.send(b.text);
    expect(sameAck(fromBridge)).toBe(sameAck(await h.viaEmbedded.send(b.text)));
    expect(fromBridge.split('\r')[0]).toMatch(/^MSH\|\^~\\&\|CRS\|HOSP\|MON-GW\|ICU-FAC\|/);
    expect(readAnswer(fromBridge)).toMatchObject({ code: 'AR', controlId: '', errs: [{ code: 101 }] });
  });

  it('a message over the bounds of segments, refused by the bridge itself (not spooled), is answered as the server answers it', async () => {
    const h = hosts.find((x) => x.name === 'plain')!;
    const b = padded(build(heartRate(92), 'bridge-over'), { segments: HL7_MAX_SEGMENTS + 1 });
    const fromBridge = await h.viaBridge.send(b.text);
    expect(sameAck(fromBridge)).toBe(sameAck(await h.viaEmbedded.send(b.text)));
    expect(readAnswer(fromBridge)).toMatchObject({ code: 'AR', controlId: b.controlId, errs: [{ code: 207 }] });
  });

  it('an ADT^A03 (a discharge) is forwarded, no longer refused by the bridge itself: the server refuses it to a monitor, naming monitoringEnd', async () => {
    const h = hosts.find((x) => x.name === 'plain')!;
    const a03 = [
      'MSH|^~\\&|ADT-ENGINE|HOSP|CRS|HOSP|20260110085900+0000||ADT^A03^ADT_A03|A03-bridge|P|2.6',
      'EVN|A03|20260110085900+0000||||20260110085500+0000',
      'PID|||P-A03^^^HOSP^MR',
      'PV1||I|H4^^12',
    ].join('\r');
    const fromBridge = await h.viaBridge.send(a03);
    expect(sameAck(fromBridge)).toBe(sameAck(await h.viaEmbedded.send(a03)));
    expect(readAnswer(fromBridge)).toMatchObject({ code: 'AR', controlId: 'A03-bridge' });
    expect(fromBridge).toContain('monitoringEnd: a monitor token may not send monitoringEnd');
    expect(h.bridge.spool.counts().waiting).toBe(0);
  });

  let run = 0;
  it('the same ACK through the bridge as from the embedded listener, for the same messages', async () => {
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        drawn,
        fc.constantFrom('plain', 'scoped'),
        fc.constantFrom('B1', 'B2', 'BX'),
        async (d, name, patient) => {
          const h = hosts.find((x) => x.name === name)!;
          const b = build(d, `b${++run}`, name === 'scoped' ? patient : undefined);
          const fromEmbedded = await h.viaEmbedded.send(b.text);
          const fromBridge = await h.viaBridge.send(b.text);
          expect(sameAck(fromBridge), `${name} ${d.mutation} ${patient}`).toBe(sameAck(fromEmbedded));
          codes.add(readAnswer(fromEmbedded).code!);
          // Nothing waits in the bridge's spool: each message had the server's last word.
          expect(h.bridge.spool.counts().waiting).toBe(0);
        },
      ),
      { numRuns: RUNS },
    );
    expect([...codes].sort()).toEqual(['AA', 'AE', 'AR']);
  }, 120_000);
});
