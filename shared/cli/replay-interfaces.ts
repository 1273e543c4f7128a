// `crs replay --format hl7v2|fhir|mixed FILE`: the same replay over files of HL7 v2 messages (one per MLLP frame, or
// per blank-line-separated block), FHIR R4 (one JSON resource or Bundle, or NDJSON of them) or both (mixed:
// blank-line-separated blocks, each an HL7 message or a FHIR JSON value, as an interface engine's capture holds
// them), translated exactly as the servers translate them. A refused message or part is a "rejected" event naming
// its item (1-based) and problem.
import { readFileSync } from 'node:fs';
import { INGEST_LIMITS, checkReplayed, jsonDepth } from '#app/ingest.ts';
import { Replay } from '#app/replay.ts';
import { entriesOf, type FhirOptions, translateResources } from '#app/fhir/translate.ts';
import { HL7_MAX_BYTES, tooLong } from '#app/hl7v2/ack.ts';
import { MllpDecoder } from '#app/hl7v2/mllp.ts';
import { translatePcd01, type Hl7Location, type Pcd01Options } from '#app/hl7v2/pcd01.ts';
import { takenIfKnown } from '#app/interfaces/known.ts';
import { screen, type Translated } from '#app/interfaces/screen.ts';
import type { GradingConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import type { OutputEvent } from '#domain/events.ts';
import { NdjsonWriter } from './io.ts';
import { EXIT } from './replay.ts';

export const REPLAY_FORMATS = ['json', 'hl7v2', 'fhir', 'mixed'] as const;

/**
 * The HL7 messages of a file: MLLP frames when it has any, else blocks separated by blank lines. What the servers
 * would refuse before reading it (a frame over 1 MiB, one cut off by the next start block) is an item refused too.
 */
function hl7Items(text: string): { value?: string; error?: string }[] {
  if (text.includes('\x0b')) {
    return new MllpDecoder()
      .push(Buffer.from(text, 'utf8'))
      .map((e) => (e.type === 'frame' ? { value: e.text } : { error: `${where(e.problem.at)}: ${e.problem.text}` }));
  }
  return text
    .split(/\r?\n[ \t]*\r?\n|\r\r/)
    .map((block) =>
      block
        .trim()
        .split(/\r\n|\r|\n/)
        .join('\r'),
    )
    .filter((block) => block !== '')
    .map((block) => {
      if (Buffer.byteLength(block, 'utf8') <= HL7_MAX_BYTES) return { value: block };
      const problem = tooLong();
      return { error: `${where(problem.at)}: ${problem.text}` };
    });
}

/**
 * The FHIR items of a file: one JSON value, or one per line (NDJSON). An item nested deeper than the servers take
 * (INGEST_LIMITS.fhirDepth) is refused as they refuse it: the translator quotes what it refuses, and quoting 100,000
 * levels overflowed the stack.
 */
function fhirItems(text: string): { value?: unknown; error?: string }[] {
  const tooDeep = (t: string) => jsonDepth(t, INGEST_LIMITS.fhirDepth) > INGEST_LIMITS.fhirDepth;
  const item = (t: string): { value?: unknown; error?: string } =>
    tooDeep(t)
      ? { error: `the item nests arrays and objects more than ${INGEST_LIMITS.fhirDepth} deep` }
      : { value: JSON.parse(t) };
  if (!tooDeep(text))
    try {
      return [{ value: JSON.parse(text) }];
    } catch {
      // NDJSON, read line by line below
    }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return item(l);
      } catch (err) {
        return { error: `not JSON: ${(err as Error).message}` };
      }
    });
}

const where = (l: Hl7Location) => `${l.segment}-${l.sequence}${l.field ? `.${l.field}` : ''}`;
// Replay has no clock: as the JSON replay, each message is taken as arriving at its observedAt (device-clock.ts).
const noClock = checkReplayed;

/** One item's contract messages and its problems (as "where: what"). */
function translateItem(
  format: 'hl7v2' | 'fhir',
  item: string | unknown,
  known: ReadonlySet<string>,
  hl7: Pcd01Options,
  fhir: Omit<FhirOptions, 'deviceId'>,
): { messages: DeviceMessage[]; errors: string[] } {
  const screened: { message: DeviceMessage; ifKnown?: true }[] = [];
  const errors: string[] = [];
  const take = <L>(t: Translated<L>, show: (l: L) => string) => {
    const s = screen(t, noClock);
    errors.push(...s.problems.map((p) => `${show(p.at)}: ${p.text}`));
    if (s.message) screened.push({ message: s.message, ...(t.ifKnown ? { ifKnown: t.ifKnown } : {}) });
  };
  if (format === 'hl7v2') {
    const r = translatePcd01(item as string, hl7);
    errors.push(...r.problems.map((p) => `${where(p.at)}: ${p.text}`));
    if (r.ok) for (const t of r.translated) take(t, where);
  } else {
    const e = entriesOf(item);
    if (!e.ok)
      return { messages: [], errors: e.issues.map((i) => `${i.expression ? `${i.expression}: ` : ''}${i.text}`) };
    const t = translateResources(e.items, { deviceId: 'replay', ...fhir }, e.type === 'batch');
    errors.push(...t.issues.filter((i) => i.severity !== 'warning').map((i) => `${i.expression}: ${i.text}`));
    if (e.type !== 'batch' && errors.length > 0) return { messages: [], errors };
    for (const one of t.translated) take(one, (l) => l);
  }
  // Where an ADT event or an Encounter places a patient, or ends the stay, is taken for a patient known by then (of
  // an earlier item, or this item's other data), as a server takes it (shared/app/interfaces/known.ts).
  const messages = takenIfKnown(screened, known).map((s) => s.message);
  return { messages, errors };
}

export async function replayInterfacesCommand(
  file: string,
  format: 'hl7v2' | 'fhir' | 'mixed',
  config: GradingConfig,
  hl7: Pcd01Options = {},
  /** The site's FHIR patient system (patient-system.ts) and drug codes (drug-codes.ts). */
  fhir: Omit<FhirOptions, 'deviceId'> = {},
): Promise<number> {
  let text: string;
  try {
    // A UTF-8 byte order mark (Notepad, PowerShell 5) opens the file: it is not part of its first item.
    text = readFileSync(file === '-' ? 0 : file, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    process.stderr.write(`crs replay: cannot read ${file}: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  const replay = new Replay(config);
  const out = new NdjsonWriter(process.stdout);
  const items: { format: 'hl7v2' | 'fhir'; value?: unknown; error?: string }[] =
    format === 'hl7v2'
      ? hl7Items(text).map((i) => ({ format, ...i }))
      : format === 'fhir'
        ? fhirItems(text).map((i) => ({ format, ...i }))
        : text
            .split(/\r?\n[ \t]*\r?\n/)
            .filter((block) => block.trim() !== '')
            .map((block) =>
              block.trimStart().startsWith('{')
                ? { format: 'fhir' as const, ...fhirItems(block)[0]! }
                : { format: 'hl7v2' as const, ...(hl7Items(block)[0] ?? { value: '' }) },
            );
  let refused = 0;
  let n = 0;
  const known = new Set<string>();
  for (const [index, item] of items.entries()) {
    const number = index + 1;
    const t =
      item.error !== undefined
        ? { messages: [], errors: [item.error] }
        : translateItem(item.format, item.value, known, hl7, fhir);
    if (t.errors.length > 0) {
      refused++;
      await out.write({ type: 'rejected', line: number, errors: t.errors } satisfies OutputEvent);
    }
    for (const m of t.messages) {
      known.add(m.patientId);
      for (const event of replay.line(JSON.stringify(m), ++n)) await out.write(event);
    }
  }
  await out.flush();
  return refused > 0 ? EXIT.rejected : EXIT.ok;
}
