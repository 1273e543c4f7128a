// HL7 v2 ADT^A03 (discharge/end visit) in, as an EHR's integration engine sends it: the end of the patient's monitoring
// (`monitoringEnd`, reason discharged) at the time the discharge happened, from the EHR (source.kind ehr), over
// every transport (the translation, the HTTP route, the MLLP listener). A monitor's token may not send it.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { issueToken } from '#app/auth.ts';
import { readAck } from '#app/hl7v2/ack.ts';
import { handleHl7Http } from '#app/hl7v2/http.ts';
import { ingestHl7 } from '#app/hl7v2/ingest.ts';
import { MllpDecoder, frame } from '#app/hl7v2/mllp.ts';
import { translatePcd01 } from '#app/hl7v2/pcd01.ts';
import { parseZone } from '#app/interfaces/zone.ts';
import type { PatientDirectory, Principal } from '#app/scope.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { DEFAULT_PAGING, feedStatus, monitoringEnded } from '#domain/paging.ts';
import { startMllpListener, type MllpListener } from '#hosts/embedded/mllp.ts';
import type { QueuedMessage } from '#ports';
import { enrol, msg, T0 } from '#test/support/messages.ts';
import { planStaleFeeds, staleFeedAlert } from '#app/stale-feed.ts';
import { compactState, expandState } from '#domain/state-compact.ts';
import { deserializeState, serializeState, type PatientState } from '#domain/state.ts';
import { MemoryQueue, MemorySecurityLog, ingestFakes } from '#test/support/port-fakes.ts';
import { sameAck } from '#test/support/hl7-ack.ts';
import { run } from '#test/support/run.ts';
import { until } from '#test/support/until.ts';

const NOW = Date.parse('2026-01-10T09:30:00Z');
const NAME = 'Zebedee^Quigglesworth';
const PV1_45 = (time: string) => `PV1||I|H4^^12${'|'.repeat(42)}${time}`;
/** An Epic-style A03: EVN-2 recorded, EVN-6 occurred, PV1-45 the discharge time, the bed left in PV1-3. */
const A03 = [
  'MSH|^~\\&|EPIC|HOSP|CRS|HOSP|20260110100500+0100||ADT^A03^ADT_A03|ADT000777|P|2.6',
  'EVN|A03|20260110100400+0100||||20260110095500+0100',
  `PID|||998877^^^HOSP^PI~P-0042^^^HOSP^MR||${NAME}||19700101|F`,
  PV1_45('20260110095000+0100'),
  'DG1|1||D89.83^Cytokine release syndrome^I10',
].join('\r');
const lines = (text: string, n: number, line: string) =>
  text
    .split('\r')
    .map((l, i) => (i === n ? line : l))
    .join('\r');
const ehr: Principal = { deviceId: 'adt-feed', role: 'ehr' };
const monitor: Principal = { deviceId: 'gw', role: 'monitor' };

const translated = (text: string, zone?: string) => {
  const r = translatePcd01(text, zone ? { zone: parseZone(zone)! } : {});
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r;
};

describe('ADT^A03: the end of monitoring from the EHR', () => {
  it('is the end of monitoring (discharged) at EVN-6, from the EHR, the patient by PID-3 typed MR; PV1-3 (the bed left) and PID-5 are not read', () => {
    const r = translated(A03);
    expect(r.problems).toEqual([]);
    expect(r.header.trigger).toBe('A03');
    expect(r.translated.map((t) => t.message)).toEqual([
      {
        messageId: 'hl7v2:HOSP/ADT000777',
        patientId: 'P-0042',
        observedAt: '2026-01-10T08:55:00Z',
        source: { deviceId: 'EPIC', kind: 'ehr' },
        monitoringEnd: { reason: 'discharged' },
      },
    ]);
    expect(JSON.stringify(r)).not.toMatch(/Zebedee/);
  });

  it('takes EVN-6 (event occurred), else PV1-45 (discharge date/time), else EVN-2 (recorded)', () => {
    const at = (text: string) => translated(text).translated.map((t) => t.message.observedAt);
    expect(at(A03)).toEqual(['2026-01-10T08:55:00Z']);
    const noEvn6 = lines(A03, 1, 'EVN|A03|20260110100400+0100');
    expect(at(noEvn6)).toEqual(['2026-01-10T08:50:00Z']);
    expect(at(lines(noEvn6, 3, 'PV1||I|H4^^12'))).toEqual(['2026-01-10T09:04:00Z']);
  });

  it("ends monitoring only at an inpatient's discharge (PV1-2 I): another visit's end is nothing to do (AA), no class an error", () => {
    // An outpatient CAR-T patient's day at the clinic, an emergency visit: the patient stays watched.
    for (const cls of ['O', 'E', 'P']) {
      const r = translated(lines(A03, 3, PV1_45('20260110095000+0100').replace('PV1||I|', `PV1||${cls}|`)));
      // The AA says why nothing was taken, as another event's does (until 2026-12-05 it said only "accepted 0").
      expect([r.translated, r.problems, r.notes], cls).toEqual([
        [],
        [],
        [`ADT event A03: not an inpatient (PV1-2 "${cls}"): nothing taken`],
      ]);
    }
    const problem = (text: string) => {
      const r = translated(text);
      expect(r.translated).toEqual([]); // nothing ended by guess
      return r.problems.map((p) => [`${p.at.segment}-${p.at.field}`, p.code]);
    };
    expect(problem(lines(A03, 3, 'PV1|||H4^^12'))).toEqual([['PV1-2', 101]]);
    expect(problem(A03.split('\r').slice(0, 3).join('\r'))).toEqual([['PV1-2', 101]]);
    expect(translated(lines(A03, 3, 'PV1||I|H4^^12')).translated).toHaveLength(1);
  });

  it('reads a time without an offset in the site zone, as OBX-14 is; refused without one, naming the field', () => {
    const local = lines(A03, 1, 'EVN|A03|20260110100400||||20260110095500');
    expect(translated(local, 'Europe/Paris').translated[0]!.message.observedAt).toBe('2026-01-10T08:55:00Z');
    const r = translated(local);
    expect(r.translated).toEqual([]);
    expect(r.problems).toEqual([
      {
        at: { segment: 'EVN', sequence: 1, field: 6 },
        code: 102,
        // Until 2026-12-06 it did not say that the site's zone is a setting, nor its name.
        text: 'EVN-6 "20260110095500" has no UTC offset, and no site zone is configured: send it with its offset (e.g. 20260110095500+0100), or set the site\'s zone (crs serve --hl7-zone; on AWS -c hl7Zone)',
      },
    ]);
  });

  it('refuses a discharge with no usable time or patient, naming the field: never a time guessed or a later field put in place of a bad one', () => {
    const problem = (text: string) => {
      const r = translated(text);
      expect(r.translated).toEqual([]);
      return r.problems.map((p) => [`${p.at.segment}-${p.at.field}`, p.code, p.text]);
    };
    // An EVN-6 that cannot be read is not replaced by PV1-45 (as OBX-14 is never replaced by OBR-7).
    expect(problem(lines(A03, 1, 'EVN|A03|20260110100400+0100||||202601'))).toEqual([
      ['EVN-6', 102, 'EVN-6 "202601" is not precise enough: an observation time needs at least minutes (YYYYMMDDHHMM)'],
    ]);
    expect(problem(lines(lines(A03, 1, 'EVN|A03'), 3, 'PV1||I|H4^^12'))).toEqual([
      [
        'EVN-6',
        101,
        'no discharge time: EVN-6 (event occurred), PV1-45 (discharge date/time) and EVN-2 (recorded) are all empty',
      ],
    ]);
    expect(problem(lines(A03, 2, 'PID|||||Zebedee^Quigglesworth'))).toEqual([
      ['PID-3', 101, 'PID-3 (patient identifier) is required'],
    ]);
    expect(
      problem(
        A03.split('\r')
          .filter((l) => !l.startsWith('PID'))
          .join('\r'),
      ),
    ).toEqual([['PID-3', 101, 'an ADT^A03 needs a PID segment: PID-3 (patient identifier) is required']]);
    // Two patients in one discharge: which one left would be a guess.
    const two = translatePcd01(`${A03}\rPID|||P-0043^^^HOSP^MR`);
    expect(two.ok).toBe(false);
    expect(two.problems).toEqual([
      {
        at: { segment: 'PID', sequence: 2 },
        code: 100,
        text: 'a second PID: an ADT^A03 is the discharge of one patient',
      },
    ]);
  });

  it('stops the stale-feed watch of the patient it names once graded (the message is the contract one)', () => {
    const end = translated(A03).translated[0]!.message as unknown as DeviceMessage;
    const before = [{ ...enrol('P-0042', -120), source: { deviceId: 'ehr', kind: 'ehr' as const } }];
    const after = run([...before, end]).state!;
    expect(monitoringEnded(after)).toEqual({ v: 'discharged', t: Date.parse('2026-01-10T08:55:00Z') });
    expect(feedStatus(after, NOW + 3_600_000, DEFAULT_PAGING)).toBeUndefined();
    // Monitor data after it (the monitor unplugged a few minutes late) does not restart the watch.
    const late = msg('P-0042', 80, { vitals: { heartRate: 80 } });
    expect(feedStatus(run([...before, end, late]).state!, NOW + 3_600_000, DEFAULT_PAGING)).toBeUndefined();
  });

  it('is acknowledged as an ORU^R01 is: AA once queued, MSA-2 = MSH-10, the ACK for A03 addressed to the sender', async () => {
    const queue = new MemoryQueue();
    const patients = knowing('P-0042');
    const a = await ingestHl7(A03, ehr, { queue, now: () => NOW, patients });
    expect([a.code, a.status, a.messageIds]).toEqual(['AA', 202, ['hl7v2:HOSP/ADT000777']]);
    expect(a.ack.split('\r')[0]).toMatch(/^MSH\|\^~\\&\|CRS\|HOSP\|EPIC\|HOSP\|\d+\+0000\|\|ACK\^A03\^ACK\|/);
    expect(readAck(a.ack)).toEqual({ code: 'AA', controlId: 'ADT000777', text: 'accepted 1 message(s)' });
    expect(queue.messages.map((q) => [q.message.monitoringEnd, q.sender])).toEqual([
      [{ reason: 'discharged' }, 'adt-feed'],
    ]);
    // Sent again: the same id, a duplicate.
    await ingestHl7(A03, ehr, { queue, now: () => NOW, patients });
    expect(queue.messages).toHaveLength(1);
  });

  it("takes nothing for a patient never monitored here (AA with a note): a hospital's discharges make no patients", async () => {
    // Until 2026-12-05 each A03 of an unfiltered ADT feed made a patient of its own: on crs serve, counted against
    // --max-patients until real patients were refused.
    for (const message of [A03, A13]) {
      const queue = new MemoryQueue();
      const a = await ingestHl7(message, ehr, { queue, now: () => NOW, patients: knowing('P-OTHER') });
      expect([a.code, a.status, a.messageIds]).toEqual(['AA', 202, []]);
      expect(a.ack).toContain('a patient this system does not monitor (no data yet): nothing taken');
      expect(queue.messages).toEqual([]);
    }
  });

  it("is refused from a monitor's token (AR, 403) naming monitoringEnd at MSH-9, and from a token issued before scopes", async () => {
    for (const [principal, why] of [
      [monitor, 'monitoringEnd: a monitor token may not send monitoringEnd (it sends vitals, oxygen, enrolment)'],
      [
        { deviceId: 'old', role: 'legacy' },
        'monitoringEnd: a token without a device kind (issued before scopes) may not send monitoringEnd',
      ],
    ] as const) {
      const queue = new MemoryQueue();
      const a = await ingestHl7(A03, principal, { queue, now: () => NOW });
      expect([a.code, a.status]).toEqual(['AR', 403]);
      expect(a.problems[0]).toMatchObject({ at: { segment: 'MSH', sequence: 1, field: 9 }, code: 207 });
      expect(a.problems[0]!.text).toContain(why);
      expect(a.ack).toContain(`ERR||MSH^1^9^1|207^Application internal error^HL70357|E||||${why}`);
      expect(readAck(a.ack)?.controlId).toBe('ADT000777');
      expect(queue.messages).toEqual([]);
    }
  });

  it('tells a token issued before scopes how to get a kind as the answering backend runs crs token (2026-12-07)', async () => {
    const legacy: Principal = { deviceId: 'old', role: 'legacy' };
    const fix = (where: string) =>
      `monitoringEnd: a token without a device kind (issued before scopes) may not send monitoringEnd (it sends enrolment, vitals, oxygen, vasopressors, medications, neuro, organToxicity, labs); give it a kind with crs token scope TOKEN_ID --kind ehr${where} (or manual)`;
    for (const [backend, where] of [
      [undefined, ''],
      ['aws', ' --backend aws --outputs FILE'],
    ] as const) {
      const a = await ingestHl7(A03, legacy, {
        queue: new MemoryQueue(),
        now: () => NOW,
        ...(backend ? { backend } : {}),
      });
      expect([a.code, a.problems[0]!.text]).toEqual(['AR', fix(where)]);
    }
  });

  describe('over HTTP (POST /v1/hl7v2)', () => {
    const send = async (kind: 'ehr' | 'monitor') => {
      const { queue, tokens } = await ingestFakes(NOW);
      const issued = issueToken(`${kind}-1`, new Date(NOW), { kind });
      await tokens.put(issued.record);
      const headers = { authorization: `Bearer ${issued.token}`, 'content-type': 'x-application/hl7-v2+er7' };
      const res = await handleHl7Http(
        { method: 'POST', path: '/v1/hl7v2', headers, body: A03 },
        { queue, tokens, now: () => NOW, patients: knowing('P-0042') },
      );
      return { res, queue };
    };

    it("takes it from an EHR's token: 202 AA, queued as sent by that device", async () => {
      const { res, queue } = await send('ehr');
      expect([res.status, readAck(res.body)]).toEqual([
        202,
        { code: 'AA', controlId: 'ADT000777', text: 'accepted 1 message(s)' },
      ]);
      expect(res.messageIds).toEqual(['hl7v2:HOSP/ADT000777']);
      expect(queue.messages.map((q) => [q.message.patientId, q.message.monitoringEnd, q.sender])).toEqual([
        ['P-0042', { reason: 'discharged' }, 'ehr-1'],
      ]);
    });

    it("refuses it from a monitor's token: 403 AR naming monitoringEnd, nothing queued", async () => {
      const { res, queue } = await send('monitor');
      expect(res.status).toBe(403);
      expect(readAck(res.body)).toMatchObject({ code: 'AR', controlId: 'ADT000777' });
      expect(res.body).toContain('monitoringEnd: a monitor token may not send monitoringEnd');
      expect(queue.messages).toEqual([]);
    });
  });

  describe('over MLLP (crs serve --mllp-port)', () => {
    const listeners: MllpListener[] = [];
    afterEach(async () => {
      for (const l of listeners.splice(0)) await l.close();
    });

    async function sendOverMllp(principal?: Principal): Promise<{ ack: string; queued: QueuedMessage[] }> {
      const queued: QueuedMessage[] = [];
      const listener = await startMllpListener({
        port: 0,
        host: '127.0.0.1',
        log: () => undefined,
        security: new MemorySecurityLog(),
        deps: { queue: { enqueue: async (m) => void queued.push(...m) }, now: () => NOW, patients: knowing('P-0042') },
        ...(principal ? { principal: async () => principal } : {}),
      });
      listeners.push(listener);
      const socket = connect(listener.port, '127.0.0.1');
      const decoder = new MllpDecoder();
      const acks: string[] = [];
      socket.on('data', (chunk: Buffer) => {
        for (const e of decoder.push(chunk)) if (e.type === 'frame') acks.push(e.text);
      });
      socket.write(frame(A03));
      const ack = await until(() => acks[0], 'the ACK');
      socket.end();
      return { ack, queued };
    }

    it('takes it with --mllp-device naming an EHR token: AA, queued as sent by that device', async () => {
      const { ack, queued } = await sendOverMllp(ehr);
      expect(readAck(ack)).toEqual({ code: 'AA', controlId: 'ADT000777', text: 'accepted 1 message(s)' });
      expect(queued.map((q) => [q.message.monitoringEnd, q.sender])).toEqual([[{ reason: 'discharged' }, 'adt-feed']]);
    });

    it("refuses it on the default listener, which has a monitor's scope: AR naming monitoringEnd", async () => {
      const { ack, queued } = await sendOverMllp();
      expect(readAck(ack)).toMatchObject({ code: 'AR', controlId: 'ADT000777' });
      expect(ack).toContain('monitoringEnd: a monitor token may not send monitoringEnd');
      expect(queued).toEqual([]);
    });
  });
});

/** The discharge of A03 cancelled, recorded at EVN-2; EVN-6 here a sender's own use (HL7 gives it as the discharge's time). */
const A13 = [
  'MSH|^~\\&|EPIC|HOSP|CRS|HOSP|20260110103500+0100||ADT^A13^ADT_A01|ADT000778|P|2.6',
  'EVN|A13|20260110103400+0100||||20260110103000+0100',
  `PID|||998877^^^HOSP^PI~P-0042^^^HOSP^MR||${NAME}||19700101|F`,
  PV1_45('20260110095000+0100'),
].join('\r');

describe('ADT^A13: a cancelled discharge from the EHR, the patient back in the bed of PV1-3', () => {
  it('is an enrolment from the EHR with the bed and ward of PV1-3, at EVN-2, else MSH-7, never EVN-6 or PV1-45 (the discharge cancelled)', () => {
    const r = translated(A13);
    expect(r.problems).toEqual([]);
    expect(r.translated.map((t) => t.message)).toEqual([
      {
        messageId: 'hl7v2:HOSP/ADT000778',
        patientId: 'P-0042',
        observedAt: '2026-01-10T09:34:00Z',
        source: { deviceId: 'EPIC', kind: 'ehr' },
        enrolment: { bed: '12', ward: 'H4' },
      },
    ]);
    expect(JSON.stringify(r)).not.toMatch(/Zebedee/);
    // HL7 v2.7 gives PV1-3's point of care and bed as HD (name&universal id&type): the name is the label.
    const v27 = translated(A13.replace('PV1||I|H4^^12|', 'PV1||I|H4&1.2.3.4&ISO^^12&1.2.3&ISO|'));
    expect(v27.problems).toEqual([]);
    expect(v27.translated.map((t) => t.message.enrolment)).toEqual([{ bed: '12', ward: 'H4' }]);
    const noEvn2 = translated(lines(A13, 1, 'EVN|A13|||||20260110103000+0100'));
    expect(noEvn2.translated.map((t) => t.message.observedAt)).toEqual(['2026-01-10T09:35:00Z']);
    const badEvn2 = translated(lines(A13, 1, 'EVN|A13|2026011010+0100'));
    expect(badEvn2.translated).toEqual([]);
    expect(badEvn2.problems.map((p) => [`${p.at.segment}-${p.at.field}`, p.code])).toEqual([['EVN-2', 102]]);
    const neither = translated(
      lines(
        lines(A13, 1, 'EVN|A13|||||20260110103000+0100'),
        0,
        A13.split('\r')[0]!.replace('20260110103500+0100', ''),
      ),
    );
    expect(neither.translated).toEqual([]);
    expect(neither.problems.map((p) => [`${p.at.segment}-${p.at.field}`, p.code])).toEqual([['EVN-2', 101]]);
  });

  it('resumes nothing without a bed (AE at PV1-3.3), or for an outpatient (AA, nothing)', () => {
    const noBed = translated(lines(A13, 3, 'PV1||I|H4'));
    expect(noBed.translated).toEqual([]);
    expect(noBed.problems).toEqual([
      {
        at: { segment: 'PV1', sequence: 1, field: 3, component: 3 },
        code: 101,
        text: 'PV1-3.3 (bed) is required: a cancelled discharge puts the patient back in a bed',
      },
    ]);
    const outpatient = translated(lines(A13, 3, 'PV1||O|H4^^12'));
    expect([outpatient.translated, outpatient.problems, outpatient.notes]).toEqual([
      [],
      [],
      ['ADT event A13: not an inpatient (PV1-2 "O"): nothing taken'],
    ]);
  });

  it('restarts the stale-feed watch the discharge stopped, whichever of the two arrives first', () => {
    const end = translated(A03).translated[0]!.message as unknown as DeviceMessage;
    const undo = translated(A13).translated[0]!.message as unknown as DeviceMessage;
    const before = [{ ...enrol('P-0042', -120), source: { deviceId: 'ehr', kind: 'ehr' as const } }];
    expect(feedStatus(run([...before, end]).state!, NOW + 3_600_000, DEFAULT_PAGING)).toBeUndefined();
    for (const order of [
      [end, undo],
      [undo, end],
    ]) {
      const state = run([...before, ...order]).state!;
      expect(monitoringEnded(state)).toBeUndefined();
      expect(state.enrolment.bed?.v).toBe('12');
      // Watched again from the cancellation (EVN-2, 09:34 UTC), not from the enrolment: any status passed here.
      expect(feedStatus(state, NOW + 3_600_000, DEFAULT_PAGING)).toEqual({ stale: true, since: NOW + 240_000 });
    }
  });

  /**
   * Whence the stale-feed watch runs an hour later after the discharge and its cancellation, in either arrival order
   * (undefined: the patient unwatched); the watch is stale by then.
   */
  const watchedSince = (end: DeviceMessage, undo: DeviceMessage) =>
    [
      [end, undo],
      [undo, end],
    ].map((order) => {
      const state = run([{ ...enrol('P-0042', -120), source: { deviceId: 'ehr', kind: 'ehr' as const } }, ...order])
        .state!;
      const feed = monitoringEnded(state) ? undefined : feedStatus(state, NOW + 3_600_000, DEFAULT_PAGING);
      return feed?.stale ? feed.since : undefined;
    });

  it('restarts the watch when EVN-6 is the time of the discharge cancelled, as HL7 defines it for a cancellation', () => {
    // HL7 v2 (EVN-6): "On a cancellation event, this field should contain the date/time that the event being
    // cancelled occurred". Placed there, the re-admission was at the instant of the end, not after it, and the
    // patient stayed unwatched after the discharge was cancelled.
    const end = translated(A03).translated[0]!.message as unknown as DeviceMessage;
    const standard = lines(A13, 1, 'EVN|A13|20260110103400+0100||||20260110095500+0100');
    const undo = translated(standard).translated[0]!.message as unknown as DeviceMessage;
    expect(watchedSince(end, undo)).toEqual([Date.parse('2026-01-10T09:34:00Z'), Date.parse('2026-01-10T09:34:00Z')]);
    // At EVN-2, when the cancellation was recorded.
    expect(undo.observedAt).toBe('2026-01-10T09:34:00Z');
  });

  it('restarts the watch when the discharge is cancelled in the minute it was charted (times to the minute)', () => {
    // The discharge charted at 10:55 local as happening then; its cancellation recorded in the same minute.
    const end = translated(lines(A03, 1, 'EVN|A03|20260110105500+0100||||20260110105500+0100')).translated[0]!
      .message as unknown as DeviceMessage;
    const undo = translated(lines(A13, 1, 'EVN|A13|20260110105500+0100')).translated[0]!
      .message as unknown as DeviceMessage;
    expect([end.observedAt, undo.observedAt]).toEqual(['2026-01-10T09:55:00Z', '2026-01-10T09:55:00Z']);
    expect(watchedSince(end, undo)).toEqual([Date.parse('2026-01-10T09:55:00Z'), Date.parse('2026-01-10T09:55:00Z')]);
  });

  it("is taken from an EHR's token (AA) and refused from a monitor's (AR, 403, at MSH-9): a monitor does not speak for the EHR", async () => {
    const queue = new MemoryQueue();
    const a = await ingestHl7(A13, ehr, { queue, now: () => NOW, patients: knowing('P-0042') });
    expect([a.code, a.status, a.messageIds]).toEqual(['AA', 202, ['hl7v2:HOSP/ADT000778']]);
    expect(queue.messages.map((q) => [q.message.enrolment, q.sender])).toEqual([
      [{ bed: '12', ward: 'H4' }, 'adt-feed'],
    ]);
    const refused = await ingestHl7(A13, monitor, { queue: new MemoryQueue(), now: () => NOW });
    expect([refused.code, refused.status]).toEqual(['AR', 403]);
  });
});

/** A directory that knows these patients (graded, or waiting to be). */
const knowing = (...ids: string[]): PatientDirectory => ({
  lookup: async (asked) => new Map(asked.filter((id) => ids.includes(id)).map((id) => [id, { known: true }])),
});
/** An Epic-style A01 (admit): EVN-6 occurred, the bed in PV1-3 (ward^room^bed). */
const adt = (event: string, pv1 = 'PV1||I|H5^^07', evn = `EVN|${event}|20260110103400+0100||||20260110103000+0100`) =>
  [
    `MSH|^~\\&|EPIC|HOSP|CRS|HOSP|20260110103500+0100||ADT^${event}^ADT_A01|ADT-${event}|P|2.6`,
    evn,
    `PID|||998877^^^HOSP^PI~P-0042^^^HOSP^MR||${NAME}||19700101|F`,
    pv1,
  ].join('\r');

describe('ADT events that place an inpatient (A01 admit, A02 transfer, A06, A08 update, A12 cancel transfer)', () => {
  it('is the bed and ward of PV1-3 from the EHR, at EVN-6, else EVN-2, else MSH-7 (A12, a cancellation: EVN-2, else MSH-7)', () => {
    for (const event of ['A01', 'A02', 'A06', 'A08']) {
      const r = translated(adt(event));
      expect([r.problems, r.translated.map((t) => [t.message, t.ifKnown])], event).toEqual([
        [],
        [
          [
            {
              messageId: `hl7v2:HOSP/ADT-${event}`,
              patientId: 'P-0042',
              observedAt: '2026-01-10T09:30:00Z',
              source: { deviceId: 'EPIC', kind: 'ehr' },
              enrolment: { bed: '07', ward: 'H5' },
            },
            true,
          ],
        ],
      ]);
      expect(JSON.stringify(r)).not.toMatch(/Zebedee/);
      const at = (text: string) => translated(text).translated.map((t) => t.message.observedAt);
      expect(at(adt(event, undefined, `EVN|${event}|20260110103400+0100`))).toEqual(['2026-01-10T09:34:00Z']);
      expect(at(adt(event, undefined, `EVN|${event}`))).toEqual(['2026-01-10T09:35:00Z']);
    }
    // A12's PV1-3 is the location before the transfer cancelled; its EVN-6, the time of the transfer cancelled.
    const a12 = translated(adt('A12', 'PV1||I|H4^^12'));
    expect(a12.translated.map((t) => [t.message.observedAt, t.message.enrolment])).toEqual([
      ['2026-01-10T09:34:00Z', { bed: '12', ward: 'H4' }],
    ]);
  });

  it("takes nothing, AA with a note, for an outpatient, a stay already discharged (PV1-45) or a PV1-3 with neither bed nor ward; a bad time is refused as an A03's", () => {
    for (const [pv1, note] of [
      ['PV1||O|H5^^07', 'not an inpatient (PV1-2 "O")'],
      [PV1_45('20260110095000+0100'), 'the stay is discharged (PV1-45)'],
      ['PV1||I', 'PV1-3 names no bed or ward'],
    ]) {
      const r = translated(adt('A08', pv1));
      expect([r.translated, r.problems, r.notes], pv1).toEqual([[], [], [`ADT event A08: ${note}: nothing taken`]]);
    }
    const bad = translated(adt('A02', undefined, 'EVN|A02|||||2026011010+0100'));
    expect(bad.problems.map((p) => [`${p.at.segment}-${p.at.field}`, p.code])).toEqual([['EVN-6', 102]]);
  });

  it("is taken for a patient the server knows, never for one it does not: a hospital's whole ADT feed enrols nobody (AA, with a note)", async () => {
    const queue = new MemoryQueue();
    const known = await ingestHl7(adt('A02'), ehr, { queue, now: () => NOW, patients: knowing('P-0042') });
    expect([known.code, known.status, readAck(known.ack)?.text]).toEqual(['AA', 202, 'accepted 1 message(s)']);
    expect(queue.messages.map((q) => [q.message.enrolment, q.sender])).toEqual([
      [{ bed: '07', ward: 'H5' }, 'adt-feed'],
    ]);
    const other = new MemoryQueue();
    const unknown = await ingestHl7(adt('A01'), ehr, { queue: other, now: () => NOW, patients: knowing('P-0001') });
    expect([unknown.code, unknown.status, unknown.messageIds, readAck(unknown.ack)]).toEqual([
      'AA',
      202,
      [],
      {
        code: 'AA',
        controlId: 'ADT-A01',
        text: 'accepted 0 message(s); ADT event A01: a patient this system does not monitor (no data yet): nothing taken',
      },
    ]);
    expect(unknown.ack).not.toContain('ERR');
    expect(other.messages).toEqual([]);
  });

  it("decides a patient-scoped token's patients before the note: the same AR for a patient known or not (the AA told which were monitored)", async () => {
    // A token for P-0001 only, sending an A01 of P-0042: refused whether this server monitors P-0042 or not. Until
    // 2026-12-05 an unmonitored patient's was an AA with the note, a monitored one's an AR: the token learnt which.
    const scoped: Principal = { ...ehr, patients: ['P-0001'] };
    const answers = [];
    for (const patients of [knowing('P-0042'), knowing()]) {
      const queue = new MemoryQueue();
      const a = await ingestHl7(adt('A01'), scoped, { queue, now: () => NOW, patients });
      answers.push([a.code, a.status, a.problems.map((p) => [p.code, p.text]), readAck(a.ack)?.text]);
      expect(queue.messages).toEqual([]);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[0]).toEqual([
      'AR',
      403,
      [[207, "patientId: patient P-0042 is not one of this token's patients"]],
      'not accepted: not allowed for this device',
    ]);
  });

  it('gets the same ACK, to the byte (but its own MSH-10), over HTTP (POST /v1/hl7v2) and over MLLP (crs serve --mllp-device), the patient known or not', async () => {
    for (const [patients, taken] of [
      [knowing('P-0042'), 1],
      [knowing(), 0],
    ] as const) {
      const { queue, tokens } = await ingestFakes(NOW);
      const issued = issueToken('adt-feed', new Date(NOW), { kind: 'ehr' });
      await tokens.put(issued.record);
      const headers = { authorization: `Bearer ${issued.token}`, 'content-type': 'x-application/hl7-v2+er7' };
      const http = await handleHl7Http(
        { method: 'POST', path: '/v1/hl7v2', headers, body: adt('A02') },
        { queue, tokens, now: () => NOW, patients },
      );
      const queued: QueuedMessage[] = [];
      const listener = await startMllpListener({
        port: 0,
        host: '127.0.0.1',
        log: () => undefined,
        security: new MemorySecurityLog(),
        deps: { queue: { enqueue: async (m) => void queued.push(...m) }, now: () => NOW, patients },
        principal: async () => ehr,
      });
      try {
        const socket = connect(listener.port, '127.0.0.1');
        const decoder = new MllpDecoder();
        const acks: string[] = [];
        socket.on('data', (chunk: Buffer) => {
          for (const e of decoder.push(chunk)) if (e.type === 'frame') acks.push(e.text);
        });
        socket.write(frame(adt('A02')));
        const ack = await until(() => acks[0], 'the ACK');
        socket.end();
        expect([http.status, sameAck(http.body)]).toEqual([202, sameAck(ack)]);
        expect(queued.map((q) => q.message)).toEqual(queue.messages.map((q) => q.message));
        expect(queued).toHaveLength(taken);
      } finally {
        await listener.close();
      }
    }
  });

  it('an admission (A01) after a discharge is the re-admission: it restarts the stale-feed watch, as a FHIR Encounter in progress does', () => {
    const end = translated(A03).translated[0]!.message as unknown as DeviceMessage;
    const admit = translated(adt('A01', undefined, 'EVN|A01|20260110113400+0100||||20260110113000+0100')).translated[0]!
      .message as unknown as DeviceMessage;
    const before = [{ ...enrol('P-0042', -120), source: { deviceId: 'ehr', kind: 'ehr' as const } }];
    for (const order of [
      [end, admit],
      [admit, end],
    ]) {
      const state = run([...before, ...order]).state!;
      expect(state.enrolment.bed?.v).toBe('07');
      expect(feedStatus(state, NOW + 7_200_000, DEFAULT_PAGING)).toEqual({
        stale: true,
        since: Date.parse('2026-01-10T10:30:00Z'),
      });
    }
  });
});

describe('other ADT events (A04, A05, A07, A11, A28, A31, A40...): acknowledged AA, nothing taken, never AR', () => {
  it('answers AA with a note in MSA-3, so that an ADT feed is never halted by them', async () => {
    for (const event of ['A04', 'A05', 'A07', 'A11', 'A28', 'A31', 'A40']) {
      const r = translated(adt(event));
      expect([r.translated, r.problems, r.notes], event).toEqual([
        [],
        [],
        [`ADT event ${event} is not used by this system: nothing taken`],
      ]);
      const queue = new MemoryQueue();
      const a = await ingestHl7(adt(event), ehr, { queue, now: () => NOW });
      expect([a.code, a.status, readAck(a.ack)], event).toEqual([
        'AA',
        202,
        {
          code: 'AA',
          controlId: `ADT-${event}`,
          text: `accepted 0 message(s); ADT event ${event} is not used by this system: nothing taken`,
        },
      ]);
      expect(a.ack.split('\r')[0]).toContain(`|ACK^${event}^ACK|`);
      expect(queue.messages).toEqual([]);
    }
    // From a monitor's token too: nothing is sent, so nothing is refused.
    expect((await ingestHl7(adt('A04'), monitor, { queue: new MemoryQueue(), now: () => NOW })).code).toBe('AA');
    // A site's own event too; an ADT message with no event at all is still refused.
    expect(translated(adt('Z99')).notes).toEqual(['ADT event Z99 is not used by this system: nothing taken']);
    const none = translatePcd01(adt('A04').replace('ADT^A04^ADT_A01', 'ADT'));
    expect([none.ok, none.problems.map((p) => p.code)]).toEqual([false, [201]]);
  });
});

describe('ADT events that place an inpatient, pinned by a mutation run', () => {
  it('takes the ward alone when PV1-3 names a ward and no bed (A01, A02...): the patient is placed in that ward', () => {
    for (const event of ['A01', 'A02', 'A12']) {
      const r = translated(adt(event, 'PV1||I|H5'));
      expect([r.problems, r.notes, r.translated.map((t) => t.message.enrolment)], event).toEqual([
        [],
        undefined,
        [{ ward: 'H5' }],
      ]);
    }
  });

  it("acknowledges a site's own event longer than the standard three characters AA, nothing taken (an AR halts the feed)", () => {
    expect(translated(adt('ZSITE01')).notes).toEqual(['ADT event ZSITE01 is not used by this system: nothing taken']);
  });
});

describe('a transfer of a patient whose monitor never sent: the "no data" watch counts from the enrolment (2026-12-07)', () => {
  // Until 2026-12-07 the watch of a patient no monitor had sent for counted from the earliest time of the enrolment
  // fields it holds: a transfer (an A02, or the EHR sending its whole enrolment again with the new bed) gave them all
  // its own time, so the patient was no longer quiet: its open "no data" alert cleared with no monitor data at all,
  // and the watch began again (15 minutes more without an alert, each move).
  const fromEhr = (m: DeviceMessage): DeviceMessage => ({ ...m, source: { deviceId: 'EPIC', kind: 'ehr' } });
  const a01 = translated(adt('A01', 'PV1||I|H4^^01', 'EVN|A01|||||20260110090000+0100')).translated[0]!.message;
  const a02 = translated(adt('A02')).translated[0]!.message; // to H5^^07 at 09:30Z
  const ENROLLED = Date.parse('2026-01-10T08:00:00Z');
  const stored = (s: PatientState) => [s, deserializeState(serializeState(s)), expandState(compactState(s))];

  it('an A02 after an A01 (bed and ward alone): quiet since the A01, stored on either backend', () => {
    const s = run([a01, a02] as DeviceMessage[]).state!;
    expect(s.enrolment.ward?.v).toBe('H5');
    for (const form of stored(s))
      expect(feedStatus(form, Date.parse('2026-01-10T09:31:00Z'), DEFAULT_PAGING)).toEqual({
        stale: true,
        since: ENROLLED,
      });
    // The move charted late (before the A01 arrived) changes nothing either.
    expect(
      feedStatus(run([a02, a01] as DeviceMessage[]).state!, Date.parse('2026-01-10T09:31:00Z'), DEFAULT_PAGING),
    ).toEqual({ stale: true, since: ENROLLED });
  });

  it('the whole enrolment sent again with the new bed and ward: quiet since the first', () => {
    const first = fromEhr(enrol('P-0042', 0));
    const again = fromEhr(enrol('P-0042', 90, { bed: 'ICU-03', ward: 'ICU' }));
    const s = run([first, again]).state!;
    expect(feedStatus(s, T0 + 91 * 60_000, DEFAULT_PAGING)).toEqual({ stale: true, since: T0 });
    // A monitor that sent is quiet since its last reading, as before; a re-admission still restarts the watch.
    const sent = msg('P-0042', 20, { vitals: { heartRate: 80 } });
    expect(feedStatus(run([first, sent, again]).state!, T0 + 91 * 60_000, DEFAULT_PAGING)?.since).toBe(
      T0 + 20 * 60_000,
    );
    const end = fromEhr(msg('P-0042', 30, { monitoringEnd: { reason: 'discharged' } }));
    expect(feedStatus(run([first, end, again]).state!, T0 + 91 * 60_000, DEFAULT_PAGING)).toEqual({
      stale: false,
      since: T0 + 90 * 60_000,
    });
  });

  it('a state stored before the first enrolment was kept counts from its enrolment fields, as it did', () => {
    const s = run([a01] as DeviceMessage[]).state!;
    const old = { ...s, firstEnrolledAt: undefined };
    expect(feedStatus(old, Date.parse('2026-01-10T08:31:00Z'), DEFAULT_PAGING)?.since).toBe(ENROLLED);
    expect(expandState(compactState(old)).firstEnrolledAt).toBeUndefined();
    // Its next enrolment keeps the earliest it knows.
    expect(run([a02] as DeviceMessage[], undefined, old).state!.firstEnrolledAt).toBe(ENROLLED);
  });
});

describe('a move after a discharge and a re-admission: the "no data" watch counts from the re-admission (2026-12-07)', () => {
  // Until 2026-12-07 the watch after an end of monitoring restarted at the latest enrolment from the EHR: a move after
  // the re-admission (an A02, or the whole enrolment sent again with the new bed) was taken for the re-admission, so
  // the watch began again at the move (the alert later by as much) and its text said "re-admission" at the move.
  const fromEhr = (m: DeviceMessage): DeviceMessage => ({ ...m, source: { deviceId: 'EPIC', kind: 'ehr' } });
  const at = (m: number) => T0 + m * 60_000;
  const first = fromEhr(enrol('P-0042', 0));
  const end = (m: number) => fromEhr(msg('P-0042', m, { monitoringEnd: { reason: 'discharged' } }));
  const back = (m: number) => fromEhr(enrol('P-0042', m));
  const move = (m: number) => fromEhr(enrol('P-0042', m, { bed: 'ICU-03', ward: 'ICU' }));
  const a02 = translated(adt('A02')).translated[0]!.message as DeviceMessage; // to H5^^07 at 09:30Z (minute 90)
  const since = (messages: DeviceMessage[], now: number) => feedStatus(run(messages).state!, at(now), DEFAULT_PAGING);

  it('an A02 after the re-admission: quiet since the re-admission, stored on either backend, and its alert says so', () => {
    const s = run([first, end(30), back(60), a02]).state!;
    expect(s.enrolment.ward?.v).toBe('H5');
    for (const form of [s, deserializeState(serializeState(s)), expandState(compactState(s))])
      expect(feedStatus(form, at(91), DEFAULT_PAGING)).toEqual({ stale: true, since: at(60) });
    expect(staleFeedAlert('P-0042', at(60), s, 'UTC').summary).toContain(
      'no monitor data since re-admission at 2026-01-10 09:00 UTC',
    );
    // The move arriving before the re-admission it follows: the same.
    expect(since([first, end(30), a02, back(60)], 91)?.since).toBe(at(60));
  });

  it('a monitor that sent after the re-admission and stopped: quiet since it stopped, the move notwithstanding', () => {
    const sent = msg('P-0042', 70, { vitals: { heartRate: 80 } });
    expect(since([first, end(30), back(60), sent, move(90)], 91)).toEqual({ stale: true, since: at(70) });
  });

  it('a second discharge and re-admission: quiet since the latest re-admission', () => {
    const stays = [first, end(30), back(60), a02, end(120), back(150), move(180)];
    expect(since(stays, 181)).toEqual({ stale: true, since: at(150) });
    expect(since(stays.slice(0, -1), 151)).toEqual({ stale: false, since: at(150) });
  });

  it('a move charted late: from before the discharge it changes nothing; after it, it is the re-admission, in any order', () => {
    expect(since([first, end(30), back(60), move(20)], 91)?.since).toBe(at(60));
    // An enrolment from the EHR after the end is a re-admission: the earliest is when the patient was back.
    expect(since([first, end(30), back(60), move(45)], 91)?.since).toBe(at(45));
    expect(since([first, end(30), move(45), back(60)], 91)?.since).toBe(at(45));
  });

  it('an open alert cleared by a discharge and re-admission with a move between two sweeps says re-admitted, not data resumed', () => {
    const s = run([first, end(30), back(31), move(32)]).state!;
    const feed = feedStatus(s, at(33), DEFAULT_PAGING);
    expect(feed).toEqual({ stale: false, since: at(31) });
    const alertId = `stale-feed|P-0042|${at(0)}`;
    const p = planStaleFeeds(
      new Map([['P-0042', { alertId, since: at(0) }]]),
      [{ patientId: 'P-0042', state: s, feed }],
      DEFAULT_PAGING,
      at(33),
      true,
      'UTC',
    );
    expect(p.alerts.map((a) => a.summary)).toEqual([
      'Re-admitted, patient P-0042, bed ICU-03: watched again from 2026-01-10 08:31 UTC, with no monitor data yet; the no-data alert is closed',
    ]);
  });

  it('a state stored before the re-admission was kept counts from its latest enrolment, as it did, until the next', () => {
    const s = run([first, end(30), back(60), a02]).state!;
    // Stored before either was kept (readmittedAt, then enrolmentsSinceEnd: both 2026-12-07).
    const old = { ...s, readmittedAt: undefined, enrolmentsSinceEnd: [] };
    expect(feedStatus(old, at(91), DEFAULT_PAGING)?.since).toBe(at(90));
    expect(expandState(compactState(old)).readmittedAt).toBeUndefined();
    // Its next move keeps the earlier of the two.
    expect(run([move(100)], undefined, old).state!.readmittedAt).toBe(at(90));
  });
});
