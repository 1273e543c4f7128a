// IHE PCD-01 (HL7 v2 ORU^R01) to contract messages. @medplum/core's Hl7Message splits the message; this module
// reads it: the patient from PID-3 (PID-5, the name, is never read), bed and ward from PV1-3, each OBX by its MDC
// or LOINC code with its unit (OBX-6) and time (OBX-14, else OBR-7), skipping OBX-11 X/D/W and unknown codes
// (refusing an OBX-11 outside HL7 table 0085).
// One HL7 message becomes one contract message per patient, device and observation time. An ADT^A03 (a discharge)
// becomes the patient's end of monitoring (`discharge`, below). Pure: no clock, no I/O.
import { Hl7Message, type Hl7Segment } from '@medplum/core';
import type { CodedField } from '#domain/codes.ts';
import { measurementProblem, type OxygenDevice } from '#domain/contract.ts';
import { quoted, SENDER_MOST } from '#domain/printable.ts';
import { iso, MAX_OFFSET_MINUTES } from '#domain/time.ts';
import { CONTRACT_ID, compactTime, idPart, messageIdOf } from '#app/interfaces/ids.ts';
import type { Translated } from '#app/interfaces/screen.ts';
import {
  CRS_CHARTED_FIELDS,
  CRS_OBSERVATIONS,
  ENUMS,
  HL7_SYSTEMS,
  oxygenDeviceOf,
} from '#app/interfaces/terminology.ts';
import { toContractUnit, unitlessOrPoints, type SentUnit } from '#app/interfaces/units.ts';
import { wallClockInstants, type SiteZone } from '#app/interfaces/zone.ts';
import {
  LOCAL_SYSTEM,
  OXYGEN_DEVICE_CODE,
  fieldOfLoinc,
  fieldOfMdc,
  rankOfLoinc,
  rankOfMdc,
} from '#app/interfaces/codes.ts';

/** HL7 table 0357 (message error condition codes) as used in ERR-3. */
export const ERROR_CODES = {
  0: 'Message accepted',
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  207: 'Application internal error',
} as const;
type ErrorCode = keyof typeof ERROR_CODES;

/**
 * This system's own application error codes (ERR-5, a CWE in the local coding system 99CRS, HL7 table 0396), for a
 * refusal a program must tell from the others whatever MSA-3 and ERR-8 say: `crs mllp-bridge` waits for room.
 */
export const APPLICATION_ERRORS = { NO_ROOM: 'no room for a new patient' } as const;
/** ERR-5.3 of those codes. */
export const APPLICATION_SYSTEM = '99CRS';

/** Where a problem is (ERR-2): the segment, its occurrence in the message (1-based), the field and component. */
export interface Hl7Location {
  segment: string;
  sequence: number;
  field?: number;
  component?: number;
}

export interface Hl7Problem {
  at: Hl7Location;
  code: ErrorCode;
  text: string;
  /** ERR-4: `E` (an error; the default) or `W` (a warning: the message was taken, but not all as the sender meant). */
  severity?: 'W';
  /** ERR-5: one of APPLICATION_ERRORS. */
  application?: keyof typeof APPLICATION_ERRORS;
}

export interface Hl7Header {
  /** MSH-10 read (unescaped, its first component, trimmed): the contract's messageId. */
  controlId: string;
  /** MSH-10 as sent (still escaped, whole), echoed in MSA-2: an engine matches its ACK by it. */
  controlIdSent: string;
  /** MSH-3 to MSH-6 as sent (still escaped), for the ACK's addresses. */
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  version: string;
  trigger: string;
}

export interface Pcd01Options {
  /** The site's zone, for timestamps sent without an offset; without it such a time is refused. */
  zone?: SiteZone;
  /**
   * The latest instant an observation can have: when the message arrived, plus the device-clock allowance (the
   * ingest's). A local time in the hour a daylight-saving change repeats is the later of its two instants when that
   * is not after this, else the earlier (a reading is not taken after it arrives). Without it (a replayed file),
   * such a time is refused.
   */
  notAfter?: number;
  /**
   * The site's patient authority (PID-3.4.1, shared/app/interfaces/patient-authority.ts): the PID-3 repetition of
   * that assigning authority is the patient; without it, the repetition typed MR or the only one.
   */
  patientAuthority?: string;
}

export type Pcd01Result =
  /**
   * Cannot be taken at all (AR): not HL7, neither ORU^R01 nor ADT, no control id; `tooLarge` over the bounds of
   * HL7_MAX_SEGMENTS and HL7_MAX_DELIMITERS (refused as a message over 1 MiB is: over HTTP, 413).
   */
  | { ok: false; header?: Hl7Header; problems: Hl7Problem[]; tooLarge?: true }
  /**
   * Read; `problems` are the observations refused (AE when any), the rest is in `translated`. `notes` say why
   * nothing was taken of a message that refuses nothing (an ADT event not used: MSA-3 of the AA).
   */
  | {
      ok: true;
      header: Hl7Header;
      translated: Hl7Translated[];
      problems: Hl7Problem[];
      notes?: string[];
      /** What was taken but not as the sender meant (a retraction not applied): ERR segments of severity W in the AA. */
      warnings?: Hl7Problem[];
    };

/** A contract message of an HL7 message; an ADT event's is `ifKnown` (taken for a patient the server knows). */
type Hl7Translated = Translated<Hl7Location>;

const MSH: Hl7Location = { segment: 'MSH', sequence: 1 };
const reject = (problems: Hl7Problem[], header?: Hl7Header): Extract<Pcd01Result, { ok: false }> => ({
  ok: false,
  problems,
  ...(header ? { header } : {}),
});

/**
 * The most segments one message may have. Parsed, every segment, field, repetition and component is an object of its
 * own (@medplum/core), and each OBX is then read: until 2026-12-06 only the 1 MiB limit bounded it, and one message
 * of a million empty fields (or 262,000 empty segments, or 10,000 OBX) held the server's one event loop for 0.25 to
 * 2.4 s. A PCD-01 message has a few to a few hundred segments. Figures: test/bench/hl7-bounds.bench.ts.
 */
export const HL7_MAX_SEGMENTS = 1_000;
/** The most field, component, repetition and subcomponent delimiters (| ^ ~ &, as MSH-1/MSH-2 give them) in one message. */
export const HL7_MAX_DELIMITERS = 40_000;

interface Shape {
  segments: number;
  delimiters: number;
  /** Where the first segment (the MSH) ends, and its delimiters. */
  firstSegment: { end: number; delimiters: number };
}

/**
 * A message's segments (as @medplum/core splits them: at each run of CR and LF) and delimiters, counted in one pass
 * over its characters, nothing allocated per field: what parsing it would cost.
 */
function shapeOf(text: string, separators: string): Shape {
  const [field, component, repetition, , subcomponent] = [...separators].map((c) => c.charCodeAt(0));
  let segments = 1;
  let delimiters = 0;
  let firstSegment: Shape['firstSegment'] | undefined;
  let inBreak = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 || c === 10) {
      if (!inBreak) {
        firstSegment ??= { end: i, delimiters };
        inBreak = true;
      }
      continue;
    }
    if (inBreak) {
      segments++;
      inBreak = false;
    }
    if (c === field || c === component || c === repetition || c === subcomponent) delimiters++;
  }
  return { segments, delimiters, firstSegment: firstSegment ?? { end: text.length, delimiters } };
}

/** The AR problem of a message over the bounds, or undefined. */
function overBounds(shape: Shape): Hl7Problem | undefined {
  if (shape.segments > HL7_MAX_SEGMENTS)
    return {
      at: MSH,
      code: 207,
      text: `the message has ${shape.segments} segments, more than ${HL7_MAX_SEGMENTS}, the most taken`,
    };
  if (shape.delimiters > HL7_MAX_DELIMITERS)
    return {
      at: MSH,
      code: 207,
      text: `the message has ${shape.delimiters} field, component, repetition and subcomponent delimiters, more than ${HL7_MAX_DELIMITERS}, the most taken`,
    };
  return undefined;
}

/**
 * OBX-8 flags that say the value is no measurement of the patient, refused (never read as the value): off the
 * instrument's scale (HL7 table 0078 `<` and `>`: a bound, as a FHIR quantity's comparator) or, as Mindray monitors
 * flag every value, a monitor in demo mode (`DEMO`: invented values).
 */
const NOT_A_MEASUREMENT: Record<string, string> = {
  '<': "below the instrument's scale: a bound, not a measurement",
  '>': "above the instrument's scale: a bound, not a measurement",
  DEMO: 'the monitor is in demo mode: not a measurement of the patient',
};

/** OBX-11 result statuses that carry no value to grade: no result, deleted, wrong, not asked, pending. */
const SKIPPED_STATUS = new Set(['X', 'D', 'W', 'N', 'I', 'O']);
/**
 * Of those, the retractions of a result sent before (HL7 table 0085): the contract has none, so a value graded
 * before stays graded (docs/grading-rules.md: a grade is never lowered by data the engine cannot verify); the sender
 * is told, in the AA, that it was not applied.
 */
const RETRACTION: Record<string, string> = { W: 'retracted', D: 'deleted' };
/**
 * HL7 table 0085, every OBX-11 result status. Another (a "Z", a vendor's own) was taken as a final result and graded
 * until 2026-12-06: whether the sender meant a final value, a correction or none is unknown, so the OBX is refused.
 */
const RESULT_STATUS = new Set(['C', 'D', 'F', 'I', 'N', 'O', 'P', 'R', 'S', 'U', 'W', 'X']);

export function translatePcd01(input: string, options: Pcd01Options = {}): Pcd01Result {
  const text = input
    .replace(/^\uFEFF/, '')
    .replace(/^[\s\x0b]+/, '')
    .replace(/[\s\x1c]+$/, '');
  if (!text.startsWith('MSH'))
    return reject([{ at: MSH, code: 100, text: 'the message does not start with an MSH segment' }]);
  const separators = text.slice(3, 8);
  if (separators.length < 5 || new Set(separators).size !== 5 || /[A-Za-z0-9\s]/.test(separators)) {
    return reject([
      { at: { ...MSH, field: 2 }, code: 102, text: 'MSH-1/MSH-2 must give five distinct delimiters (e.g. |^~\\&)' },
    ]);
  }
  const unescapeText = unescaper(separators);
  const get = (seg: Hl7Segment, field: number, component = 1, repetition = 0, subcomponent?: number) =>
    unescapeText(
      seg.getComponent(field, component, subcomponent === undefined ? undefined : subcomponent - 1, repetition) ?? '',
    ).trim();
  const raw = (seg: Hl7Segment, field: number) => seg.getField(field)?.toString() ?? '';
  const headerOf = (msh: Hl7Segment): Hl7Header => ({
    controlId: get(msh, 10),
    controlIdSent: raw(msh, 10),
    sendingApplication: raw(msh, 3),
    sendingFacility: raw(msh, 4),
    receivingApplication: raw(msh, 5),
    receivingFacility: raw(msh, 6),
    version: get(msh, 12) || '2.6',
    trigger: get(msh, 9, 2) || 'R01',
  });
  // What the parse costs is counted first, without it: one message over the bounds is refused whole, addressed back
  // to its sender when its MSH alone is within them (read alone).
  const shape = shapeOf(text, separators);
  const over = overBounds(shape);
  if (over) {
    const first = shape.firstSegment;
    const header =
      first.delimiters <= HL7_MAX_DELIMITERS ? headerOf(Hl7Message.parse(text.slice(0, first.end)).header) : undefined;
    return { ...reject([over], header), tooLarge: true };
  }
  let msg: Hl7Message;
  try {
    msg = Hl7Message.parse(text);
  } catch (err) {
    return reject([{ at: MSH, code: 100, text: `not an HL7 v2 message (${(err as Error).message})` }]);
  }
  const msh = msg.header;
  const header = headerOf(msh);

  const type = get(msh, 9, 1);
  if (type !== 'ORU' && type !== 'ADT')
    return reject(
      [
        {
          at: { ...MSH, field: 9, component: 1 },
          code: 200,
          text: `message type ${quoted(type, SENDER_MOST)} is not taken; send ORU^R01 (IHE PCD-01) or ADT (A03 a discharge, A13 its cancellation, A01, A02, A06, A08, A12 an inpatient's bed)`,
        },
      ],
      header,
    );
  // Of ADT, every event is answered (an ADT feed sends them all, and an AR halts many engines' queues): the
  // discharge, its cancellation and the events that place an inpatient are read (admission, below), the rest are
  // acknowledged as nothing to do. An ADT message with no event at all is no event to answer.
  const event = get(msh, 9, 2);
  if (type === 'ADT' ? !/^[A-Z0-9]{1,8}$/.test(event) : header.trigger !== 'R01')
    return reject(
      [
        {
          at: { ...MSH, field: 9, component: 2 },
          code: 201,
          text:
            type === 'ADT'
              ? `event ${quoted(event, SENDER_MOST)} is no ADT trigger event (A01, A02, A03...)`
              : `event ${quoted(header.trigger, SENDER_MOST)} is not taken; send ORU^R01`,
        },
      ],
      header,
    );
  const processing = get(msh, 11);
  if (processing && processing !== 'P')
    return reject(
      [
        {
          at: { ...MSH, field: 11 },
          code: 202,
          text: `processing id ${quoted(processing, SENDER_MOST)}: only production (P) messages are graded`,
        },
      ],
      header,
    );
  if (!/^2\.\d/.test(header.version))
    return reject(
      [{ at: { ...MSH, field: 12 }, code: 203, text: `version ${quoted(header.version, SENDER_MOST)} is not HL7 v2` }],
      header,
    );
  if (!header.controlId)
    return reject(
      [
        {
          at: { ...MSH, field: 10 },
          code: 101,
          text: 'MSH-10 (message control id) is required: it identifies the message for acknowledgement and de-duplication',
        },
      ],
      header,
    );
  // HD: the namespace id, else the universal id (an Efficia CM sends MSH-3 as ^EfficiaCM).
  const facility = get(msh, 4, 1) || get(msh, 4, 2) || get(msh, 3, 1) || get(msh, 3, 2);
  if (!facility)
    return reject(
      [
        {
          at: { ...MSH, field: 4 },
          code: 101,
          text: 'MSH-4 (sending facility) or MSH-3 is required: it scopes MSH-10',
        },
      ],
      header,
    );
  const gateway = deviceIdOf(get(msh, 3, 1) || get(msh, 3, 2)) ?? 'hl7v2-gateway';
  const segments = segmentsOf(msg);
  if ('problem' in segments) return reject([segments.problem], header);
  if (type === 'ADT') {
    if (event === 'A03' || event === 'A13' || Object.hasOwn(PLACING, event))
      return admission(event as AdtEvent, segments.list, get, header, facility, gateway, options);
    return {
      ok: true,
      header,
      translated: [],
      problems: [],
      notes: [`ADT event ${event} is not used by this system: nothing taken`],
    };
  }

  // An ORU^R01 needs its PATIENT_RESULT group, an ORDER_OBSERVATION (OBR) at least. One with none of PID, OBR and OBX
  // is a broken mapping, most often segments joined by something other than CR or LF, read as one long MSH: until
  // 2026-12-06 it was answered AA "accepted 0 message(s)", and the sender took it for delivered.
  if (!segments.list.some(({ seg }) => seg.name === 'PID' || seg.name === 'OBR' || seg.name === 'OBX'))
    return reject(
      [
        {
          at: { segment: 'OBR', sequence: 1 },
          code: 100,
          text: 'an ORU^R01 needs a result: no PID, OBR or OBX follows the MSH (segments end with CR; LF is read too)',
        },
      ],
      header,
    );

  const problems: Hl7Problem[] = [];
  const warnings: Hl7Problem[] = [];
  const fragments: Fragment[] = [];
  let patient: { id?: string; at: Hl7Location } | undefined;
  let place: { bed?: string; ward?: string; at: Hl7Location } | undefined;
  let obrTime: { ms?: number; at: Hl7Location } | undefined;
  // The OBX of the current place read (giving it a time) and refused: a place none of whose OBX was read has no time
  // to be taken at, and is named when any of them was refused (placeLeft), unless its patient is (the PID's ERR).
  let placeObx = { read: false, refused: [] as number[] };
  const placeLeft = () => {
    if (place && (place.bed || place.ward) && patient?.id && !placeObx.read && placeObx.refused.length > 0)
      problems.push({
        at: place.at,
        code: 102,
        text: `enrolment: PV1-3 is not taken: no OBX of its group could be read (${placeObx.refused.map((n) => `OBX ${n}`).join(', ')}), and a monitor's place is taken at its readings' time; send it again with a reading`,
      });
    placeObx = { read: false, refused: [] };
  };
  // A PID group with neither OBR nor OBX (its ORDER_OBSERVATION, required, missing) gives nothing: said (AE 100)
  // rather than passed over under an AA, as it was until 2026-12-06. An OBR with no OBX yet (an order with no result)
  // is no error.
  let resultless: Hl7Location | undefined;
  const groupLeft = () => {
    if (resultless)
      problems.push({
        at: resultless,
        code: 100,
        text: `PID ${resultless.sequence} has no OBR or OBX after it: an ORU^R01 patient result needs its OBR; nothing taken for it`,
      });
    resultless = undefined;
  };

  for (const { seg, at } of segments.list) {
    if (seg.name === 'OBR' || seg.name === 'OBX') resultless = undefined;
    if (seg.name === 'PID') {
      groupLeft();
      resultless = at();
      placeLeft();
      patient = { at: at(3), ...patientIdOf(seg, get, at, problems, options.patientAuthority) };
      place = undefined;
      obrTime = undefined;
    } else if (seg.name === 'PV1') {
      placeLeft();
      // The names: in HL7 v2.7 the point of care and the bed are HD (name&universal id&type), `H4^^Bed12&1.2.3&ISO`.
      const ward = get(seg, 3, 1, 0, 1);
      const bed = get(seg, 3, 3, 0, 1);
      place = { at: at(3), ...(bed ? { bed } : {}), ...(ward ? { ward } : {}) };
    } else if (seg.name === 'OBR') {
      const value = get(seg, 7);
      if (!value) obrTime = { at: at(7) };
      else {
        const t = parseDtm(value, options);
        if (!t.ok) problems.push({ at: at(7), code: 102, text: `OBR-7 ${t.problem}` });
        obrTime = { at: at(7), ...(t.ok ? { ms: t.ms } : {}) };
      }
    } else if (seg.name === 'OBX') {
      const before = problems.length;
      const read = [
        observation(seg, get, at, { patient, obrTime, times: options, gateway, warnings }, problems) ?? [],
      ].flat();
      for (const f of read) fragments.push({ ...f, ...(place ? { place } : {}) });
      if (read.length > 0) placeObx.read = true;
      else if (problems.length > before) placeObx.refused.push(at().sequence);
    }
    // Other segments (NTE, ORC, PD1, Z-segments...) carry nothing this system grades.
  }
  placeLeft();
  groupLeft();
  const translated = assemble(fragments, facility, header.controlId, problems);
  return { ok: true, header, translated, problems, ...(warnings.length > 0 ? { warnings } : {}) };
}

/** A field's component (1-based), of a repetition (0-based), or one subcomponent of it (1-based), unescaped. */
type Get = (seg: Hl7Segment, field: number, component?: number, repetition?: number, subcomponent?: number) => string;
type At = (field?: number, component?: number) => Hl7Location;
type Located = { seg: Hl7Segment; at: At };

/** The segments, each with where it is (its occurrence), or the AR problem of a line that is no segment or a second MSH. */
function segmentsOf(msg: Hl7Message): { list: Located[] } | { problem: Hl7Problem } {
  const counts = new Map<string, number>();
  const list: Located[] = [];
  for (const [index, seg] of msg.segments.entries()) {
    if (seg.name === '' && index === msg.segments.length - 1) continue;
    if (!/^[A-Z][A-Z0-9]{2}$/.test(seg.name)) {
      // Not echoed: a line that is not a segment could be anything, a name included.
      return {
        problem: {
          at: { segment: 'UNK', sequence: index + 1 },
          code: 100,
          text: `line ${index + 1} is not an HL7 segment (a 3-character id such as OBX, then the field separator): nothing of the message was taken; correct it and send the message again`,
        },
      };
    }
    const sequence = (counts.get(seg.name) ?? 0) + 1;
    counts.set(seg.name, sequence);
    const at = (field?: number, component?: number): Hl7Location => ({
      segment: seg.name,
      sequence,
      ...(field ? { field } : {}),
      ...(component ? { component } : {}),
    });
    if (seg.name === 'MSH' && index > 0)
      return { problem: { at: at(), code: 100, text: 'a second MSH: send one message per frame' } };
    list.push({ seg, at });
  }
  return { list };
}

/**
 * The ADT events that say where an inpatient is now (PV1-3, ward^room^bed), each with the times it is placed at (the
 * first given): A01 admit, A02 transfer, A06 outpatient to inpatient and A08 update when the event occurred (EVN-6),
 * else when it was recorded (EVN-2), else the message's time (MSH-7); A12 (cancel transfer: PV1-3 is the location
 * before the transfer) when it was recorded, as A13 is, its EVN-6 being the time of the transfer cancelled.
 */
const PLACING: Record<string, 'occurred' | 'recorded'> = {
  A01: 'occurred',
  A02: 'occurred',
  A06: 'occurred',
  A08: 'occurred',
  A12: 'recorded',
};
/** A03, A13 or one of PLACING. */
type AdtEvent = string;

/**
 * An inpatient's (PV1-2 I) ADT event, from the EHR (`source.kind` ehr: a monitor's token may not send them). The
 * patient is PID-3, read as the ORU's.
 * - A03 (discharge/end visit) is the end of the patient's monitoring (`monitoringEnd`, reason `discharged`) when the
 *   discharge happened: EVN-6 (event occurred), else PV1-45 (discharge date/time), else EVN-2 (recorded, which the
 *   standard requires). PV1-3 is not read: it is the bed the patient left.
 * - A13 (cancel discharge) undoes it: the patient is in the bed of PV1-3 again, an enrolment from the EHR (which
 *   restarts the stale-feed watch, docs/contract.md) when the cancellation was recorded: EVN-2, else MSH-7 (EVN-6
 *   and PV1-45 are the time of the discharge cancelled).
 * - The events of PLACING are the bed and ward of PV1-3 (an enrolment from the EHR: after a discharge, the
 *   re-admission). A stay already discharged (PV1-45), an outpatient's or one with neither bed nor ward is nothing
 *   to do (a note, AA).
 * Each is taken for a patient the server knows only (`ifKnown`): a hospital's ADT feed sends every patient's, and
 * enrolled, each would be watched for monitor data it never sends; ended, each would be a patient of its own.
 */
function admission(
  event: AdtEvent,
  segments: Located[],
  get: Get,
  header: Hl7Header,
  facility: string,
  gateway: string,
  options: Pcd01Options,
): Pcd01Result {
  const placing = Object.hasOwn(PLACING, event) ? PLACING[event] : undefined;
  const what = event === 'A03' ? 'the discharge' : event === 'A13' ? 'the cancelled discharge' : 'the event';
  const problems: Hl7Problem[] = [];
  const nothing = (why: string): Pcd01Result => ({
    ok: true,
    header,
    translated: [],
    problems,
    ...(problems.length === 0 ? { notes: [`ADT event ${event}: ${why}: nothing taken`] } : {}),
  });
  const pids = segments.filter((s) => s.seg.name === 'PID');
  if (pids.length > 1)
    return reject(
      [{ at: pids[1]!.at(), code: 100, text: `a second PID: an ADT^${event} is ${what} of one patient` }],
      header,
    );
  const evn = segments.find((s) => s.seg.name === 'EVN');
  const pv1 = segments.find((s) => s.seg.name === 'PV1');
  const pid = pids[0];
  if (!pid)
    problems.push({
      at: { segment: 'PID', sequence: 1, field: 3 },
      code: 101,
      text: `an ADT^${event} needs a PID segment: PID-3 (patient identifier) is required`,
    });
  const patient = pid ? patientIdOf(pid.seg, get, pid.at, problems, options.patientAuthority) : {};
  // Only an inpatient stay's discharge ends monitoring: an outpatient or emergency visit that ends (a day of
  // outpatient CAR-T care) leaves the patient watched, and is taken as nothing to do (AA, no message); so is the
  // cancellation of one, and where an outpatient is.
  const patientClass = pv1 ? get(pv1.seg, 2) : '';
  if (placing && patientClass !== 'I') return nothing(`not an inpatient (PV1-2 ${quoted(patientClass, SENDER_MOST)})`);
  if (!patientClass)
    problems.push({
      at: pv1 ? pv1.at(2) : { segment: 'PV1', sequence: 1, field: 2 },
      code: 101,
      text: 'PV1-2 (patient class) is required: only the discharge of an inpatient (I) ends monitoring',
    });
  // Said in the AA, as another event's nothing is (until 2026-12-05 it said only "accepted 0 message(s)").
  else if (patientClass !== 'I') return nothing(`not an inpatient (PV1-2 ${quoted(patientClass, SENDER_MOST)})`);
  // A stay with its discharge time given is over: the bed of an update sent after it (A08) is the one left.
  if (placing && pv1 && get(pv1.seg, 45)) return nothing('the stay is discharged (PV1-45)');
  // A re-admission names the bed (an enrolment restarts the watch; PV1-3 ward^room^bed, as an ORU's).
  // By their names (the first subcomponent: HL7 v2.7's HD, `12&1.2.3&ISO`), as an ORU's.
  const bed = event !== 'A03' && pv1 ? get(pv1.seg, 3, 3, 0, 1) : '';
  const ward = event !== 'A03' && pv1 ? get(pv1.seg, 3, 1, 0, 1) : '';
  if (placing && !bed && !ward) return nothing('PV1-3 names no bed or ward');
  if (event === 'A13' && !bed)
    problems.push({
      at: pv1 ? pv1.at(3, 3) : { segment: 'PV1', sequence: 1, field: 3 },
      code: 101,
      text: 'PV1-3.3 (bed) is required: a cancelled discharge puts the patient back in a bed',
    });
  // The first of the times that is given decides; one given but unreadable refuses the message (never a fall-back
  // to a later one, as an OBX-14 is never replaced by OBR-7). A cancellation is placed when it was recorded (EVN-2,
  // else the message's MSH-7), never at EVN-6: HL7 gives a cancellation's EVN-6 as the time the event cancelled
  // occurred, the discharge's own time, and a re-admission at the instant of the end does not follow it (the patient
  // stayed unwatched).
  const times: [Located | undefined, number, string][] =
    event === 'A03'
      ? [
          [evn, 6, 'EVN-6'],
          [pv1, 45, 'PV1-45'],
          [evn, 2, 'EVN-2'],
        ]
      : placing === 'occurred'
        ? [
            [evn, 6, 'EVN-6'],
            [evn, 2, 'EVN-2'],
            [segments[0], 7, 'MSH-7'],
          ]
        : [
            [evn, 2, 'EVN-2'],
            [segments[0], 7, 'MSH-7'],
          ];
  let ms: number | undefined;
  const given = times.find(([s, field]) => s && get(s.seg, field));
  if (!given) {
    const [first, field] = times[0]!;
    problems.push({
      at: first ? first.at(field) : { segment: 'EVN', sequence: 1, field },
      code: 101,
      text:
        event === 'A03'
          ? 'no discharge time: EVN-6 (event occurred), PV1-45 (discharge date/time) and EVN-2 (recorded) are all empty'
          : placing === 'occurred'
            ? 'no time: EVN-6 (event occurred), EVN-2 (recorded) and MSH-7 (message date/time) are all empty'
            : `no time for the cancellation: EVN-2 (recorded) and MSH-7 (message date/time) are both empty`,
    });
  } else {
    const [s, field, name] = given;
    const t = parseDtm(get(s!.seg, field), options);
    if (t.ok) ms = t.ms;
    else problems.push({ at: s!.at(field), code: 102, text: `${name} ${t.problem}` });
  }
  // Without a patient, a time, the class or (A13) the bed, nothing is done (never a stay ended or resumed by guess).
  if (patient.id === undefined || ms === undefined || !patientClass || (event === 'A13' && !bed))
    return { ok: true, header, translated: [], problems };
  const message: Record<string, unknown> = {
    messageId: messageIdOf('hl7v2', [idPart(facility), idPart(header.controlId)]),
    patientId: patient.id,
    observedAt: iso(ms),
    source: { deviceId: gateway, kind: 'ehr' },
    ...(event === 'A03'
      ? { monitoringEnd: { reason: 'discharged' } }
      : { enrolment: { ...(bed ? { bed } : {}), ...(ward ? { ward } : {}) } }),
  };
  // A refusal (a monitor's token) is told at MSH-9: the message type is what makes it one.
  const origins: Record<string, Hl7Location> = {
    [event === 'A03' ? 'monitoringEnd' : 'enrolment']: { ...MSH, field: 9 },
  };
  return {
    ok: true,
    header,
    // Every ADT event is taken for a known patient only: an A03 or A13 of a patient never monitored here ends or
    // resumes nothing, and taken, each of a hospital's discharges made a patient of its own (on crs serve, counted
    // against --max-patients until real patients were refused).
    translated: [{ message, origins, whole: pid!.at(3), ifKnown: true as const }],
    problems,
  };
}

function patientIdOf(
  seg: Hl7Segment,
  get: Get,
  at: At,
  problems: Hl7Problem[],
  authority: string | undefined,
): { id?: string } {
  // With the site's patient authority, the repetitions of that assigning authority (CX-4.1), whatever their place
  // and whatever else PID-3 holds; without it, all of them. Of those, the ones typed MR (PID-3.5), else the only
  // one. Several that differ (two MR numbers of two assigning authorities, or several and none MR) are refused:
  // taking the first made two patients of one when a sender listed them in another order. The same number twice
  // is one patient.
  const repetitions = seg.getField(3)?.components.length ?? 0;
  const all: { value: string; type: string }[] = [];
  let sent = false;
  for (let r = 0; r < repetitions; r++) {
    const value = get(seg, 3, 1, r);
    sent ||= value !== '';
    if (value && (authority === undefined || get(seg, 3, 4, r, 1) === authority))
      all.push({ value, type: get(seg, 3, 5, r) });
  }
  const mr = all.filter((x) => x.type === 'MR');
  const candidates = new Set((mr.length > 0 ? mr : all).map((x) => x.value));
  if (candidates.size === 0) {
    // The authority is the site's setting, not the sender's data: it is named so that the sender can act.
    problems.push(
      authority !== undefined && sent
        ? {
            at: at(3),
            code: 102,
            text: `PID-3 holds no identifier of the assigning authority ${quoted(authority, SENDER_MOST)} (PID-3.4), whose ids are this system's patient ids: send that one`,
          }
        : { at: at(3), code: 101, text: 'PID-3 (patient identifier) is required' },
    );
    return {};
  }
  if (candidates.size > 1) {
    const of = authority === undefined ? '' : ` of the assigning authority ${quoted(authority, SENDER_MOST)}`;
    const guess = 'which one is the patient would be a guess';
    problems.push({
      at: at(3),
      code: 102,
      text:
        authority !== undefined
          ? `PID-3 holds ${candidates.size} different identifiers${of}${mr.length > 0 ? ' typed MR (PID-3.5)' : ' and none typed MR (PID-3.5)'}: ${guess}; send one`
          : mr.length > 0
            ? `PID-3 holds ${candidates.size} different identifiers typed MR (PID-3.5): ${guess}; send the one of the hospital whose ids this system uses`
            : `PID-3 holds ${candidates.size} different identifiers and none typed MR (PID-3.5): ${guess}; send the medical record number typed MR`,
    });
    return {};
  }
  const id = [...candidates][0]!;
  // The value is not echoed: a name typed into the wrong field must not travel back in an ACK.
  if (!CONTRACT_ID.test(id)) {
    problems.push({
      at: at(3, 1),
      code: 102,
      text: 'PID-3 patient identifier is not 1-64 characters of A-Z a-z 0-9 . _ : -',
    });
    return {};
  }
  return { id };
}

interface Fragment {
  patientId: string;
  ms: number;
  deviceId: string;
  field: CodedField | 'oxygen.device' | ChartedField;
  value: number | OxygenDevice | string | boolean;
  rank: number;
  /** The message's source.kind: a monitor's readings, or charted (CHARTED: as FHIR gives the same codes). */
  kind: ChartedKind;
  at: Hl7Location;
  /** The PID the observation belongs to (where an error about the whole message is reported). */
  pid: Hl7Location;
  place?: { bed?: string; ward?: string; at: Hl7Location };
}

interface Context {
  patient: { id?: string; at: Hl7Location } | undefined;
  obrTime: { ms?: number; at: Hl7Location } | undefined;
  /** The site's zone and the latest instant a time can be (parseDtm). */
  times: Pcd01Options;
  gateway: string;
  warnings: Hl7Problem[];
}

/** One OBX as a fragment of a contract message, or nothing (skipped, or refused with a problem). */
function observation(
  seg: Hl7Segment,
  get: Get,
  at: At,
  ctx: Context,
  problems: Hl7Problem[],
): Omit<Fragment, 'place'> | Omit<Fragment, 'place'>[] | undefined {
  const status = get(seg, 11).toUpperCase();
  const coded = codeOf(seg, get);
  if (SKIPPED_STATUS.has(status)) {
    const retraction = Object.hasOwn(RETRACTION, status) ? RETRACTION[status] : undefined;
    if (coded && retraction)
      ctx.warnings.push({
        at: at(11),
        code: 0,
        severity: 'W',
        text: `OBX-11 "${status}" (${retraction}) is not applied: this system has no retraction; a value sent before for this time stays graded. Send the right value with OBX-11 C and the same OBX-14, or tell the clinical team`,
      });
    return undefined;
  }
  if (!coded) return undefined; // a code this system does not grade (ECG leads, alarms, device rows...)
  if (typeof coded === 'object' && 'two' in coded) {
    problems.push({ at: at(3), code: 103, text: coded.two });
    return undefined;
  }
  // Empty is read as before: many gateways leave it so for a final value.
  if (status && !RESULT_STATUS.has(status)) {
    problems.push({
      at: at(11),
      code: 103,
      text: `OBX-11 ${quoted(status, SENDER_MOST)} is no HL7 result status (table 0085: ${[...RESULT_STATUS].join(' ')}): whether the value is final, a correction or none would be a guess; the OBX is refused`,
    });
    return undefined;
  }
  const flags = seg.getField(8)?.components.length ?? 0;
  for (let r = 0; r < flags; r++) {
    const flag = get(seg, 8, 1, r).toUpperCase();
    const why = Object.hasOwn(NOT_A_MEASUREMENT, flag) ? NOT_A_MEASUREMENT[flag] : undefined;
    if (why) {
      problems.push({ at: at(8), code: 102, text: `OBX-8 ${quoted(flag, SENDER_MOST)}: ${why}` });
      return undefined;
    }
  }
  if (!ctx.patient) {
    problems.push({ at: at(3), code: 100, text: 'an OBX before any PID: whose observation is it?' });
    return undefined;
  }
  if (!ctx.patient.id) {
    problems.push({
      at: at(3),
      code: 101,
      text: `refused: the patient (PID ${ctx.patient.at.sequence}) has no valid PID-3`,
    });
    return undefined;
  }
  let ms: number;
  const own = get(seg, 14);
  if (own) {
    const t = parseDtm(own, ctx.times);
    if (!t.ok) {
      problems.push({ at: at(14), code: 102, text: `OBX-14 ${t.problem}` });
      return undefined;
    }
    ms = t.ms;
  } else if (ctx.obrTime?.ms !== undefined) ms = ctx.obrTime.ms;
  else {
    problems.push({
      at: at(14),
      code: 101,
      text: `no observation time: OBX-14 is empty and ${ctx.obrTime ? 'OBR-7 is unusable' : 'there is no OBR-7'}`,
    });
    return undefined;
  }
  const deviceId = deviceIdOf(get(seg, 18, 1)) ?? ctx.gateway;
  const base = { patientId: ctx.patient.id, ms, deviceId, at: at(5), pid: ctx.patient.at, kind: 'monitor' as const };

  if (coded === 'oxygen.device') {
    const code = get(seg, 5, 1);
    // The identifier and the alternate identifier (OBX-5.1-3 and 5.4-6), as OBX-3 is read, of every repetition. Two
    // that name different devices are refused: until 2026-12-05 only the first was read, and a nasal cannula in
    // SNOMED CT beside high flow in 99CRS was graded as the cannula (ASTCT 2, not 3) with nothing said.
    const repetitions = Math.max(1, seg.getField(5)?.components.length ?? 0);
    const devices = [
      ...new Set(
        Array.from({ length: repetitions }, (_, r) => [1, 4].map((first) => [first, r] as const))
          .flat()
          .flatMap(
            ([first, r]) => oxygenDeviceOf(HL7_SYSTEMS[get(seg, 5, first + 2, r)] ?? '', get(seg, 5, first, r)) ?? [],
          ),
      ),
    ];
    if (devices.length > 1) {
      problems.push({
        at: at(5),
        code: 102,
        text: `OBX-5 names two different oxygen devices (${devices.join(', ')}): which one is meant would be a guess; send one`,
      });
      return undefined;
    }
    const device = devices[0];
    if (!device) {
      problems.push({
        at: at(5),
        code: 103,
        text: `oxygen device ${quoted(`${code}^^${get(seg, 5, 3)}`, SENDER_MOST)} is not a known device (SNOMED CT as SCT, or a contract device name as 99CRS)`,
      });
      return undefined;
    }
    return { ...base, field: 'oxygen.device', value: device, rank: 0 };
  }
  if (coded === BP_PANEL) return bloodPressurePanel(seg, get, at, base, problems);
  if ('charted' in coded) return chartedValue(seg, get, at, base, coded.charted, problems);
  const type = get(seg, 2);
  if (type && type !== 'NM') {
    problems.push({
      at: at(2),
      code: 102,
      text: `OBX-2 value type ${quoted(type, SENDER_MOST)}: a ${coded.field} measurement must be NM`,
    });
    return undefined;
  }
  const text = numberOf(seg, get, at, coded.field, problems);
  if (text === undefined) return undefined;
  const converted = toContractUnit(coded.field, Number(text), unitOf(seg, get));
  if (!converted.ok) {
    problems.push({ at: at(6), code: 103, text: `OBX-6 ${converted.problem}` });
    return undefined;
  }
  return { ...base, field: coded.field, value: converted.value, rank: coded.rank };
}

/** OBX-5 as one decimal number (NM), or undefined with its problem. */
function numberOf(seg: Hl7Segment, get: Get, at: At, field: string, problems: Hl7Problem[]): string | undefined {
  const text = get(seg, 5);
  // The field as sent, whole: a second repetition or component, or an escape inside the digits, is no NM (read by
  // its first part, the rest was dropped unsaid, and "9\.br\3" was 93).
  const whole = (seg.getField(5)?.toString() ?? '').trim();
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) && whole === text) return text;
  problems.push({
    at: at(5),
    code: whole ? 102 : 101,
    text: whole ? `OBX-5 ${quoted(whole, SENDER_MOST)} is not a number` : `OBX-5 is empty: no value for ${field}`,
  });
  return undefined;
}

/**
 * The blood pressure panel (LOINC 85354-9, or 55284-4) as one value, "systolic/diastolic", as an EHR's flowsheet
 * row holds it (Epic's "BP" row, 120/80): read as the systolic and diastolic it gives, with the unit of OBX-6.
 */
const BP_PANEL = 'bp-panel';
const BP_PANEL_CODES = new Set(['85354-9', '55284-4']);

function bloodPressurePanel(
  seg: Hl7Segment,
  get: Get,
  at: At,
  base: Omit<Fragment, 'field' | 'value' | 'rank' | 'place'>,
  problems: Hl7Problem[],
): Omit<Fragment, 'place'>[] | undefined {
  const type = get(seg, 2);
  const whole = (seg.getField(5)?.toString() ?? '').trim();
  // A panel's heading row with no value (its systolic and diastolic in OBX of their own) carries nothing.
  if (!whole) return undefined;
  const m = whole.match(/^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/);
  if ((type && type !== 'ST' && type !== 'NM') || !m) {
    problems.push({
      at: at(5),
      code: 102,
      text: `OBX-5 ${quoted(whole, SENDER_MOST)}: a blood pressure panel (OBX-3 85354-9) as one value is systolic/diastolic (ST, e.g. 120/80); or send 8480-6 and 8462-4, each NM`,
    });
    return undefined;
  }
  const out: Omit<Fragment, 'place'>[] = [];
  for (const [field, text] of [
    ['vitals.systolicBP', m[1]!],
    ['vitals.diastolicBP', m[2]!],
  ] as const) {
    const converted = toContractUnit(field, Number(text), unitOf(seg, get));
    if (!converted.ok) {
      problems.push({ at: at(6), code: 103, text: `OBX-6 ${converted.problem}` });
      return undefined;
    }
    out.push({ ...base, field, value: converted.value, rank: 9 });
  }
  // One row, one answer: a half the contract refuses (86/480) refuses the row, named at OBX-5. The other half was
  // queued and graded (a systolic 86, a hypotension) from a row the ERR told the sender was refused.
  const bad = out.flatMap((f) => {
    const problem = measurementProblem(f.field, f.value);
    return problem ? [`${f.field}: ${problem}`] : [];
  });
  if (bad.length > 0) {
    for (const text of bad) problems.push({ at: at(5), code: 102, text: `${text}; the panel's row is refused whole` });
    return undefined;
  }
  return out;
}

type Coded = { field: CodedField; rank: number } | { charted: Charted } | 'oxygen.device' | typeof BP_PANEL;
/** What two codes of one OBX-3 name when they name different fields (said AE 103 at OBX-3). */
interface TwoFields {
  two: string;
}

function codeOf(seg: Hl7Segment, get: Get): Coded | TwoFields | undefined {
  // The identifier and the alternate identifier (OBX-3.1-3 and 3.4-6), each read. Two codes of one field (LOINC
  // and MDC of one vital) are one; a code of no interest beside a known one is passed over. Two known codes of
  // different fields are refused: until 2026-12-07 the identifier was read, and 8867-4^^LN^ice-score^^99CRS (an
  // ICE score of 4, ICANS 2) was graded as a heart rate of 4, with nothing said.
  const named = [1, 4].flatMap((first) => {
    const code = get(seg, 3, first);
    const system = get(seg, 3, first + 2).toUpperCase();
    const coded = code ? codeNamed(code, system) : undefined;
    return coded
      ? [{ coded, said: `${quoted(`${code}^^${get(seg, 3, first + 2)}`, SENDER_MOST)} (${fieldNamed(coded)})` }]
      : [];
  });
  const [one, other] = named;
  if (one && other && fieldNamed(one.coded) !== fieldNamed(other.coded))
    return {
      two: `OBX-3 names two different fields: ${one.said} and ${other.said}: which one is meant would be a guess; send the codes of one observation`,
    };
  return one?.coded;
}

/** The contract field (or the panel) a code names. */
function fieldNamed(coded: Coded): string {
  if (typeof coded === 'string') return coded === BP_PANEL ? 'blood pressure panel' : coded;
  return 'charted' in coded ? coded.charted.field : coded.field;
}

function codeNamed(code: string, system: string): Coded | undefined {
  if (system === LOCAL_SYSTEM && code === OXYGEN_DEVICE_CODE) return 'oxygen.device';
  if (system === LOCAL_SYSTEM && Object.hasOwn(CHARTED, code)) return { charted: CHARTED[code]! };
  const mdc = mdcOf(code, system);
  if (system === 'LN') {
    const field = fieldOfLoinc(code);
    if (field) return { field, rank: rankOfLoinc(code) };
    if (BP_PANEL_CODES.has(code)) return BP_PANEL;
  } else if (mdc !== undefined) {
    const field = fieldOfMdc(mdc);
    if (field) return { field, rank: rankOfMdc(mdc) };
  }
  return undefined;
}

type ChartedField = (typeof CRS_CHARTED_FIELDS)[keyof typeof CRS_CHARTED_FIELDS];
type ChartedKind = 'monitor' | 'manual' | 'ehr';
interface Charted {
  field: ChartedField;
  /** A number (NM: the contract says whether whole and its range), a word of the vocabulary, or Y/N. */
  read: 'number' | keyof typeof ENUMS | 'boolean';
  /** source.kind, as FHIR gives the same code: the ICANS domains are nurses' charting, organ toxicity the EHR's. */
  kind: ChartedKind;
}

/**
 * The project's observation codes (99CRS, as FHIR reads them under its CRS code system) of what is charted, not
 * measured: until 2026-12-07 they were refused over HL7 v2 (AE 103), read over FHIR and JSON alone. Oxygen for
 * comfort is part of the oxygen section (its device needed at the same time, as FiO2 and flow are).
 */
const CHARTED: Record<string, Charted> = Object.fromEntries(
  (
    [
      [CRS_OBSERVATIONS.oxygenForComfort, 'boolean', 'monitor'],
      [CRS_OBSERVATIONS.iceScore, 'number', 'manual'],
      [CRS_OBSERVATIONS.consciousness, 'consciousness', 'manual'],
      [CRS_OBSERVATIONS.seizure, 'seizure', 'manual'],
      [CRS_OBSERVATIONS.motorWeakness, 'boolean', 'manual'],
      [CRS_OBSERVATIONS.cerebralEdema, 'cerebralEdema', 'manual'],
      [CRS_OBSERVATIONS.organToxicity, 'number', 'ehr'],
      [CRS_OBSERVATIONS.transaminitis, 'number', 'ehr'],
    ] as const
  ).map(([code, read, kind]) => [code, { field: CRS_CHARTED_FIELDS[code], read, kind }]),
);

/** A yes/no: HL7 table 0136 (Y, N) or the contract's own true/false. */
const YES_NO: Record<string, boolean> = { Y: true, N: false, true: true, false: false };
/** The coding systems a coded value may name: the project's, HL7 table 0136 for a yes/no, or none. */
const VALUE_SYSTEMS = new Set([LOCAL_SYSTEM, 'HL70136', '']);

/**
 * A charted value (CHARTED): a number as NM, one decimal number (the contract refuses one not whole where it wants an
 * integer, never rounded) with no unit (1 or a {annotation} in UCUM; for the ICE score, points as text); a coded
 * value as CWE, CE or ST, the contract's word in OBX-5.1 (or 5.4) with no system or 99CRS, or for a yes/no Y or N
 * (HL7 table 0136) or true or false. Two different values in one OBX are refused, as two oxygen devices are.
 */
function chartedValue(
  seg: Hl7Segment,
  get: Get,
  at: At,
  base: Omit<Fragment, 'field' | 'value' | 'rank' | 'place'>,
  charted: Charted,
  problems: Hl7Problem[],
): Omit<Fragment, 'place'> | undefined {
  const { field, read } = charted;
  const out = (value: Fragment['value']) => ({ ...base, field, value, rank: 0, kind: charted.kind });
  const type = get(seg, 2);
  const types = read === 'number' ? ['NM'] : ['CWE', 'CE', 'ST'];
  if (type && !types.includes(type)) {
    problems.push({
      at: at(2),
      code: 102,
      text: `OBX-2 value type ${quoted(type, SENDER_MOST)}: ${field} is sent as ${types.join(', ').replace(/, (\w+)$/, ' or $1')}`,
    });
    return undefined;
  }
  if (read === 'number') {
    const text = numberOf(seg, get, at, field, problems);
    if (text === undefined) return undefined;
    // No unit (1 or an annotation is UCUM's for none); the ICE score's points as words (not as a UCUM code), as FHIR:
    // the same whether in OBX-6.1 (the code) or OBX-6.2 (the text), and each one sent must be one of them.
    const ice = field === 'neuro.iceScore';
    const unit = get(seg, 6, 1);
    const unitText = get(seg, 6, 2);
    const bad = !unitlessOrPoints(unit, ice && get(seg, 6, 3).toUpperCase() !== 'UCUM')
      ? `OBX-6 unit ${quoted(unit, SENDER_MOST)}`
      : !unitlessOrPoints(unitText, ice)
        ? `OBX-6.2 unit text ${quoted(unitText, SENDER_MOST)}`
        : undefined;
    if (bad) {
      problems.push({
        at: at(6),
        code: 103,
        text: `${field}: ${bad} is not taken: it has no unit (leave OBX-6 empty, or 1 or {score} in UCUM${ice ? ', or points' : ''})`,
      });
      return undefined;
    }
    return out(Number(text));
  }
  const allowed: readonly string[] = read === 'boolean' ? ['Y', 'N', 'true', 'false'] : ENUMS[read];
  const said = read === 'boolean' ? 'Y or N (HL7 table 0136), or true or false' : `one of ${allowed.join(', ')}`;
  const values = new Set<Fragment['value']>();
  const foreign: string[] = [];
  const repetitions = Math.max(1, seg.getField(5)?.components.length ?? 0);
  for (let r = 0; r < repetitions; r++)
    for (const first of [1, 4]) {
      const code = get(seg, 5, first, r);
      const system = get(seg, 5, first + 2, r);
      if (!code) continue;
      if (!VALUE_SYSTEMS.has(system.toUpperCase())) {
        foreign.push(`${code}^^${system}`);
        continue;
      }
      if (!allowed.includes(code)) {
        problems.push({ at: at(5), code: 103, text: `${field}: ${quoted(code, SENDER_MOST)} is not ${said}` });
        return undefined;
      }
      values.add(read === 'boolean' ? YES_NO[code]! : code);
    }
  if (values.size > 1) {
    problems.push({
      at: at(5),
      code: 102,
      text: `${field}: OBX-5 gives two different values (${[...values].join(', ')}): which one is meant would be a guess; send one`,
    });
    return undefined;
  }
  if (values.size === 1) return out([...values][0]!);
  if (foreign.length > 0) {
    problems.push({
      at: at(5),
      code: 103,
      text: `${field}: ${quoted(foreign[0]!, SENDER_MOST)} is no ${LOCAL_SYSTEM} code: send ${said} (OBX-5.1, coding system ${LOCAL_SYSTEM} or none)`,
    });
    return undefined;
  }
  // No code, but a text (OBX-5.2 or 5.5): not empty, and still not read (a text is no word of the contract).
  let shown: { component: number; text: string } | undefined;
  for (let r = 0; r < repetitions && !shown; r++)
    for (const component of [2, 5]) {
      const text = get(seg, 5, component, r);
      if (text) {
        shown = { component, text };
        break;
      }
    }
  const word = shown && allowed.includes(shown.text) ? shown.text : allowed[0]!;
  const like = `${word}^^${read === 'boolean' && /^[YN]$/.test(word) ? 'HL70136' : LOCAL_SYSTEM}`;
  problems.push(
    shown
      ? {
          at: at(5),
          code: 101,
          text: `${field}: no code in OBX-5.1 (or 5.4); the text in OBX-5.${shown.component} (${quoted(shown.text, SENDER_MOST)}) is not read: send ${said} as the code (OBX-5.1), e.g. ${like}`,
        }
      : { at: at(5), code: 101, text: `OBX-5 is empty: no value for ${field}` },
  );
  return undefined;
}

/**
 * An MDC code (IEEE 11073-10101) as sent: its number under the system MDC (or none), or, under Philips' own system
 * MDIL (IntelliVue Information Center, Efficia), its partition and code in hex, `0002-4182` (partition 2, code 0x4182:
 * 2 x 65536 + 16770 = 147842, MDC_ECG_HEART_RATE), as Philips' export documents them.
 */
function mdcOf(code: string, system: string): number | undefined {
  if ((system === 'MDC' || system === '') && /^\d+$/.test(code)) return Number(code);
  const mdil = system === 'MDIL' ? code.match(/^([0-9A-Fa-f]{4})-([0-9A-Fa-f]{4})$/) : null;
  return mdil ? Number.parseInt(mdil[1]!, 16) * 65536 + Number.parseInt(mdil[2]!, 16) : undefined;
}

function unitOf(seg: Hl7Segment, get: Get): SentUnit {
  const code = get(seg, 6, 1);
  const text = get(seg, 6, 2);
  const system = get(seg, 6, 3).toUpperCase();
  if (!code && !text) return {};
  if (system === 'MDIL') {
    const mdc = mdcOf(code, system);
    return mdc !== undefined ? { mdc } : { ucum: code || text };
  }
  if (system === 'MDC' || (system === '' && /^\d+$/.test(code))) {
    const mdc = /^\d+$/.test(code) ? { mdc: Number(code) } : {};
    const refId = text.startsWith('MDC_') ? { mdcRefId: text } : code.startsWith('MDC_') ? { mdcRefId: code } : {};
    // Neither an MDC number nor a reference id under MDC (mm[Hg]^^MDC): read as written, as FHIR reads such a unit,
    // not as no unit at all.
    if (!('mdc' in mdc) && !('mdcRefId' in refId)) return { ucum: code || text };
    return { ...mdc, ...refId };
  }
  if (code.startsWith('MDC_')) return { mdcRefId: code };
  return { ucum: code || text };
}

/** A device id from an HL7 identifier, when it fits the contract's set. */
function deviceIdOf(text: string): string | undefined {
  return CONTRACT_ID.test(text) ? text : undefined;
}

/** Groups fragments into contract messages: one per patient, device and time. */
function assemble(
  fragments: Fragment[],
  facility: string,
  controlId: string,
  problems: Hl7Problem[],
): Translated<Hl7Location>[] {
  const groups = new Map<string, Fragment[]>();
  for (const f of fragments) {
    const key = `${f.patientId}\n${f.kind}\n${f.deviceId}\n${f.ms}`;
    const list = groups.get(key);
    if (list) list.push(f);
    else groups.set(key, [f]);
  }
  const patients = new Set(fragments.map((f) => f.patientId)).size;
  const devices = new Set(fragments.map((f) => f.deviceId)).size;
  const times = new Set(fragments.map((f) => f.ms)).size;
  const out: Translated<Hl7Location>[] = [];
  for (const list of groups.values()) {
    const { patientId, deviceId, ms, kind } = list[0]!;
    const parts = [idPart(facility), idPart(controlId)];
    if (patients > 1) parts.push(`p=${idPart(patientId)}`);
    if (devices > 1) parts.push(`d=${idPart(deviceId)}`);
    if (times > 1) parts.push(`t=${compactTime(ms)}`);
    // What is charted is a message of its own kind (as FHIR makes it): a monitor's readings keep the id they had.
    if (kind !== 'monitor') parts.push(`k=${kind}`);
    const message: Record<string, unknown> = {
      messageId: messageIdOf('hl7v2', parts),
      patientId,
      observedAt: iso(ms),
      source: { deviceId, kind },
    };
    const origins: Record<string, Hl7Location> = {};
    const vitals: Record<string, number> = {};
    const oxygen: Record<string, unknown> = {};
    const charted: Record<string, Record<string, unknown>> = {};
    const alsoFrom: Record<string, Hl7Location[]> = {};
    const before = problems.length;
    const chosenFields = choose(list, problems);
    // An OBX refused in choose (two values at one time) that gave another field too (a blood pressure panel's other
    // half) gives nothing: that field is taken from another OBX with the same value, or not at all.
    const refusedObx = new Set(problems.slice(before).map((p) => p.at.sequence));
    for (const [field, chosen] of chosenFields) {
      if (!refusedObx.has(chosen.at.sequence)) continue;
      const other = list.find(
        (f) =>
          f.field === field && f.value === chosen.value && f.rank === chosen.rank && !refusedObx.has(f.at.sequence),
      );
      if (other) chosenFields.set(field, other);
      else {
        chosenFields.delete(field);
        problems.push({
          at: chosen.at,
          code: 102,
          text: `${field}: refused with the rest of OBX ${chosen.at.sequence} (one row, one answer)`,
        });
      }
    }
    for (const [field, chosen] of chosenFields) {
      const [section, name] = field.split('.') as [string, string];
      if (section === 'vitals') {
        vitals[name] = chosen.value as number;
        origins[field] = chosen.at;
      } else if (section !== 'oxygen') {
        // A neuro or organ toxicity field: refused alone (the contract's range) or with its section (a token's
        // scope), said at each of the section's OBX.
        (charted[section] ??= {})[name] = chosen.value;
        origins[field] = chosen.at;
        if (origins[section]) (alsoFrom[section] ??= []).push(chosen.at);
        else origins[section] = chosen.at;
      } else {
        oxygen[name] = chosen.value;
        // FiO2 and flow are each refused at their own OBX (the contract's range): it was said at the device's, and
        // the FiO2 row refused was taken by the sender for accepted.
        if (name !== 'device') {
          origins[field] = chosen.at;
          (alsoFrom.oxygen ??= []).push(chosen.at);
        }
      }
    }
    if (Object.keys(vitals).length > 0) message.vitals = vitals;
    Object.assign(message, charted);
    if (Object.keys(oxygen).length > 0) {
      const device = list.find((f) => f.field === 'oxygen.device');
      if (oxygen.device === undefined) {
        for (const f of list) {
          if (f.field.startsWith('oxygen.'))
            problems.push({
              at: f.at,
              code: 101,
              text: `${f.field} needs the oxygen device at the same time (OBX-3 ${OXYGEN_DEVICE_CODE}^^${LOCAL_SYSTEM}); it is never guessed`,
            });
        }
      } else {
        message.oxygen = oxygen;
        origins.oxygen = device!.at;
      }
    }
    // One patient's observations of one time in two PID groups whose PV1-3 differ: where the patient is would be a
    // guess. Neither is taken, each named (the first was taken, the other dropped under an AA).
    // A monitor's place only: charted (ICANS, organ toxicity), it would be an enrolment from the EHR, which re-admits
    // a patient whose monitoring ended (docs/contract.md).
    const places = [
      ...new Map(
        list.flatMap((f) => (f.place && f.kind === 'monitor' ? [[`${f.place.bed}|${f.place.ward}`, f.place]] : [])),
      ).values(),
    ];
    if (places.length > 1) {
      const where = named(places.map((p) => `PV1 ${p.at.sequence}`));
      for (const p of places)
        problems.push({
          at: p.at,
          code: 102,
          text: `enrolment: PV1-3 gives two different places at the same time (${where}); neither is used`,
        });
    }
    const place = places.length === 1 ? places[0] : undefined;
    if (place && (place.bed || place.ward)) {
      message.enrolment = { ...(place.bed ? { bed: place.bed } : {}), ...(place.ward ? { ward: place.ward } : {}) };
      origins.enrolment = place.at;
    }
    // Every reading of the group refused here (two values at one time, FiO2 without its device): its place is taken
    // on its own, as when the contract refuses them (screen.ts), and as the contract lets a bed move travel alone.
    if (!message.vitals && !message.oxygen && !message.enrolment && Object.keys(charted).length === 0) continue;
    // One per PID segment, in the order of their first observation (a Map: a findIndex per PID was quadratic).
    const pids = [...new Map(list.map((f) => [f.pid.sequence, f.pid] as const)).values()];
    if (!message.oxygen) {
      delete alsoFrom.oxygen;
      delete origins['oxygen.fio2'];
      delete origins['oxygen.flowLpm'];
    }
    out.push({
      message,
      origins,
      whole: pids[0]!,
      ...(pids.length > 1 ? { alsoAt: pids.slice(1) } : {}),
      ...(Object.keys(alsoFrom).length > 0 ? { alsoFrom } : {}),
    });
  }
  return out;
}

/**
 * The places named in one problem's text, the first few of them: each of the places is named in an ERR of its own
 * with that text, and until 2026-12-06 each named them all (5,000 OBX of one time with two values made 245 MB of
 * ERR text).
 */
function named(places: string[], most = 5): string {
  const shown = places.slice(0, most).join(', ');
  return places.length > most ? `${shown} and ${places.length - most} more` : shown;
}

/**
 * One value per field: the best-ranked source; two different values from equally good sources refuse both, but a
 * value the contract refuses anyway (out of its range: a garbled 384.5 °C) is refused on its own first, so that it
 * never takes a good one down with it.
 */
function choose(list: Fragment[], problems: Hl7Problem[]): Map<string, Fragment> {
  const byField = new Map<string, Fragment[]>();
  for (const f of list) {
    const same = byField.get(f.field);
    if (same) same.push(f);
    else byField.set(f.field, [f]);
  }
  const out = new Map<string, Fragment>();
  for (const [field, all] of byField) {
    // Of several, one the contract refuses anyway that would be used (of the best source left) is refused on its
    // own first: before two values are called a conflict, and before a worse source is passed over (an arterial line
    // flushed, 400 mmHg, hid the cuff's 86 of the same time, dropped without a word). A worse source's value that is
    // never used is passed over, as before, whatever it is.
    let candidates = all;
    while (candidates.length > 1) {
      const first = Math.min(...candidates.map((c) => c.rank));
      const refused = candidates.filter((c) => {
        if (c.rank !== first) return false;
        const problem = measurementProblem(field, c.value);
        if (problem) problems.push({ at: c.at, code: 102, text: `${field}: ${problem}` });
        return problem !== undefined;
      });
      if (refused.length === 0) break;
      const out = new Set(refused);
      candidates = candidates.filter((c) => !out.has(c));
    }
    if (candidates.length === 0) continue;
    const best = Math.min(...candidates.map((c) => c.rank));
    const top = candidates.filter((c) => c.rank === best);
    if (new Set(top.map((c) => c.value)).size > 1) {
      const where = named(top.map((c) => `OBX ${c.at.sequence}`));
      for (const c of top)
        problems.push({
          at: c.at,
          code: 102,
          text: `${field} has different values at the same time (${where}); neither is used`,
        });
      continue;
    }
    out.set(field, top[0]!);
  }
  return out;
}

type Dtm = { ok: true; ms: number } | { ok: false; problem: string };

/** A DTM (YYYYMMDDHHMM[SS[.S...]][+/-ZZZZ]), strictly: at least minutes, a real date, an offset (or the site zone). */
function parseDtm(text: string, { zone, notAfter }: Pick<Pcd01Options, 'zone' | 'notAfter'>): Dtm {
  const m = text.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?([+-]\d{4})?$/);
  if (!m) {
    return /^\d{4,10}([+-]\d{4})?$/.test(text)
      ? {
          ok: false,
          problem: `${quoted(text, SENDER_MOST)} is not precise enough: an observation time needs at least minutes (YYYYMMDDHHMM)`,
        }
      : { ok: false, problem: `${quoted(text, SENDER_MOST)} is not an HL7 time (YYYYMMDDHHMM[SS][+ZZZZ])` };
  }
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  // Second 60, a leap second, is refused naming it (below): read as it is, it was the next minute.
  const leap = s === '60';
  const wall = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    leap ? 59 : Number(s ?? 0),
    // To the millisecond, the rest dropped, as FHIR and the contract read a time: rounded, .9995 was the next
    // second (at 23:59:59, the next day, refused as no real date) and .1235 a millisecond off the same time as JSON.
    Number((frac ?? '').padEnd(3, '0').slice(0, 3)),
  );
  const back = new Date(wall);
  if (
    back.getUTCFullYear() !== Number(y) ||
    back.getUTCMonth() !== Number(mo) - 1 ||
    back.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    (!leap && Number(s ?? 0) > 59)
  ) {
    return { ok: false, problem: `${quoted(text, SENDER_MOST)} is not a real date and time` };
  }
  if (leap)
    return {
      ok: false,
      problem: `${quoted(text, SENDER_MOST)} has a leap second (second 60), which is not taken: send ${text.slice(0, 12)}59.999${offset ?? ''}`,
    };
  if (offset) {
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(3, 5));
    if (oh * 60 + om > MAX_OFFSET_MINUTES || om > 59)
      return { ok: false, problem: `${quoted(text, SENDER_MOST)} has an impossible UTC offset` };
    return { ok: true, ms: wall - (offset[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000 };
  }
  if (!zone)
    return {
      ok: false,
      problem: `${quoted(text, SENDER_MOST)} has no UTC offset, and no site zone is configured: send it with its offset (e.g. ${text}+0100), or set the site's zone (crs serve --hl7-zone; on AWS -c hl7Zone)`,
    };
  return localTime(text, wall, zone, notAfter);
}

const offsetText = (minutes: number) => {
  const m = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(m / 60)).padStart(2, '0')}${String(m % 60).padStart(2, '0')}`;
};

/**
 * A time without an offset, in the site's zone. One that names no instant (the hour a daylight-saving change skips)
 * is refused: it was never shown by a clock that keeps the zone's time. One that names two (the hour the change
 * repeats) is the later when that is not after `notAfter` (a reading is not taken after it arrives), else the
 * earlier: read as the later alone, a monitor's readings of the first pass were an hour ahead of their arrival and
 * refused as from a fast clock. Without `notAfter` (a replayed file) it is refused.
 */
function localTime(text: string, wall: number, zone: SiteZone, notAfter: number | undefined): Dtm {
  const instants = wallClockInstants(wall, zone);
  if (instants.length === 1) return { ok: true, ms: instants[0]! };
  const offsets = [zone.offsetAt(wall - 86_400_000), zone.offsetAt(wall + 86_400_000)].map(offsetText);
  if (instants.length === 0)
    return {
      ok: false,
      problem: `${quoted(text, SENDER_MOST)} is no time in ${zone.name}: its clocks went from ${offsets[0]} to ${offsets[1]} then, skipping it; send the time with its UTC offset`,
    };
  const [first, second] = instants as [number, number];
  if (notAfter !== undefined) return { ok: true, ms: second <= notAfter ? second : first };
  return {
    ok: false,
    problem: `${quoted(text, SENDER_MOST)} is in the hour ${zone.name} repeats when its clocks go from ${offsets[0]} to ${offsets[1]}: either ${text}${offsets[0]} or ${text}${offsets[1]}; send the time with its UTC offset`,
  };
}

/**
 * HL7 escape sequences (\F\ \S\ \T\ \R\ \E\, \Xhh..\ as UTF-8 bytes) back to text; formatting escapes are dropped.
 */
export function unescaper(separators: string): (text: string) => string {
  const [field, component, repetition, escapeChar, subcomponent] = separators;
  if (!escapeChar) return (t) => t;
  const map: Record<string, string> = { F: field!, S: component!, T: subcomponent!, R: repetition!, E: escapeChar };
  const pattern = new RegExp(`\\${escapeChar}([^\\${escapeChar}]*)\\${escapeChar}`, 'g');
  return (text) =>
    text.includes(escapeChar)
      ? text.replace(pattern, (_all, code: string) => {
          if (code in map) return map[code]!;
          // The message's own bytes, read as UTF-8 as the rest of it is (docs/interfaces.md): a byte that is not
          // UTF-8 is U+FFFD, which the contract refuses in a label. Read as ISO 8859-1, "S\XC3BC\d" was "SÃ¼d".
          if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('utf8');
          return '';
        })
      : text;
}
