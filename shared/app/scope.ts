// Least privilege for devices (issue 16): what a device token may send (the sections its kind of device produces),
// for whom (its wards and patients), which `source.kind` it may claim, and whether it may bring a new patient onto
// a server that is full. One rule for every device route (JSON, HL7 v2, FHIR, MLLP) on both backends: each backend
// only stores a token's scope and says what it knows of a patient (PatientDirectory). docs/security.md has the table.
import { ID_PATTERNS, SECTIONS, SOURCE_KINDS, WARD, type DeviceMessage } from '#domain/contract.ts';
import { DEVICE_KINDS, type DeviceKind, type TokenScope } from '#domain/scope.ts';
import { quoted } from '#domain/printable.ts';

export { DEVICE_KINDS, type DeviceKind, type TokenScope };

type Section = (typeof SECTIONS)[number];

/** Who sent a request, once its token is checked. */
export interface Principal {
  /** The token's device: recorded with every message it sends (state history, audit). */
  deviceId: string;
  /**
   * The device's kind; `legacy` for a token issued before scopes; `local` for CRS_INGEST_TOKEN on a loopback
   * listener (the operator's own, for the demo and tests).
   */
  role: DeviceKind | 'legacy' | 'local';
  /** Empty or absent: every ward. A patient in `patients` or in one of `wards` is in scope. */
  wards?: readonly string[];
  patients?: readonly string[];
}

export function principalOf(deviceId: string, scope: TokenScope): Principal {
  return {
    deviceId,
    role: scope.kind ?? 'legacy',
    ...(scope.wards && scope.wards.length > 0 ? { wards: scope.wards } : {}),
    ...(scope.patients && scope.patients.length > 0 ? { patients: scope.patients } : {}),
  };
}

/** The operator's own token (CRS_INGEST_TOKEN): every section, every kind, every patient. */
export const LOCAL_PRINCIPAL: Principal = { deviceId: 'local', role: 'local' };

const ENROLMENT_FIELDS = ['therapy', 'product', 'infusedAt', 'weightKg', 'bed', 'ward', 'hypotension'] as const;
/** Where the patient is: what a bedside gateway knows (HL7 PV1-3), and all of enrolment a device may send. */
const LOCATION = ['bed', 'ward'] as const;

interface Rights {
  /** The data sections it may send. */
  sections: readonly Section[];
  /** Of `enrolment`, the fields it may send. */
  enrolment: readonly string[];
  /** The `source.kind` values it may claim. */
  claims: readonly DeviceKind[];
}

/**
 * The table (docs/security.md). A device sends what it measures; the EHR and nurses' charting send everything,
 * and only they set what changes how a patient is graded (therapy, infusion, weight, hypotension thresholds). The
 * EHR relays what it holds from devices (FHIR gives each resource its own source.kind), so it may claim any kind.
 */
export const RIGHTS: Record<Principal['role'], Rights> = {
  monitor: { sections: ['vitals', 'oxygen', 'enrolment'], enrolment: LOCATION, claims: ['monitor'] },
  ventilator: { sections: ['oxygen', 'vitals'], enrolment: [], claims: ['ventilator'] },
  pump: { sections: ['vasopressors', 'medications'], enrolment: [], claims: ['pump'] },
  manual: { sections: SECTIONS, enrolment: ENROLMENT_FIELDS, claims: ['manual'] },
  ehr: { sections: SECTIONS, enrolment: ENROLMENT_FIELDS, claims: SOURCE_KINDS },
  // Issued before scopes: keeps sending what it sent (any section, any kind), but not the settings that change how
  // a patient is graded, nor the end of monitoring (added after it: it stops the stale-feed watch); `crs token
  // scope TOKEN_ID --kind K` gives it a kind without a new secret.
  legacy: { sections: SECTIONS.filter((s) => s !== 'monitoringEnd'), enrolment: LOCATION, claims: SOURCE_KINDS },
  local: { sections: SECTIONS, enrolment: ENROLMENT_FIELDS, claims: SOURCE_KINDS },
};

const who = (p: Principal) =>
  p.role === 'legacy'
    ? 'a token without a device kind (issued before scopes)'
    : p.role === 'local'
      ? 'CRS_INGEST_TOKEN'
      : `a ${p.role} token`;
/** The backend that answers a device, whose operator runs `crs token` its own way. */
export type TokenBackend = 'embedded' | 'aws';

/**
 * `crs token SUB` as the operator of `backend` runs it: on AWS with --backend aws and the stack's outputs
 * (docs/runbook.md; 2026-12-06: the embedded command alone was said, which on AWS reads no deployment's tokens).
 * Here, not in auth.ts, so that the scope's refusals say it too (auth.ts imports this module).
 */
export const crsTokenCommand = (sub: string, backend: TokenBackend) =>
  `crs token ${sub}${backend === 'aws' ? ' --backend aws --outputs FILE' : ''}`;

// 2026-12-07: the embedded command on AWS as well.
const fix = (p: Principal, backend: TokenBackend) =>
  p.role === 'legacy'
    ? `; give it a kind with ${crsTokenCommand('scope TOKEN_ID --kind ehr', backend)} (or manual)`
    : '';

/**
 * What this principal may not send in this message, as "path: problem" (the contract's error form, so that the HL7
 * and FHIR screens refuse that part only and keep the rest). Empty when everything is allowed. `backend`: whose
 * `crs token` command a token without a kind is sent to.
 */
export function sectionRefusals(p: Principal, m: DeviceMessage, backend: TokenBackend = 'embedded'): string[] {
  const rights = RIGHTS[p.role];
  const out: string[] = [];
  if (!rights.claims.includes(m.source.kind)) {
    out.push(
      `source.kind: "${m.source.kind}" is not allowed for ${who(p)} (it sends source.kind ${rights.claims.map((k) => `"${k}"`).join(' or ')})`,
    );
  }
  for (const section of SECTIONS) {
    if (m[section] === undefined) continue;
    if (!rights.sections.includes(section)) {
      out.push(
        `${section}: ${who(p)} may not send ${section} (it sends ${rights.sections.join(', ')})${fix(p, backend)}`,
      );
      continue;
    }
    if (section === 'enrolment') {
      for (const field of Object.keys(m.enrolment!)) {
        if ((m.enrolment as Record<string, unknown>)[field] === undefined || rights.enrolment.includes(field)) continue;
        out.push(
          `enrolment.${field}: ${who(p)} may not set it (therapy, product, infusedAt, weightKg and hypotension thresholds come from an ehr or manual token${fix(p, backend)})`,
        );
      }
    }
  }
  const ward = m.enrolment?.ward;
  if (ward !== undefined && p.wards && !p.patients?.includes(m.patientId) && !p.wards.includes(ward)) {
    out.push(`enrolment.ward: "${ward}" is outside this token's wards (${p.wards.join(', ')})`);
  }
  return out;
}

/** What a backend knows of a patient, for the scope and the ceiling. */
export interface PatientFacts {
  /** Graded, or waiting to be. */
  known: boolean;
  /** The ward the server has for the patient, when known. */
  ward?: string;
  /** Its stored state cannot be read (an older shape, an item edited by hand): its ward cannot be told. */
  unreadable?: true;
}

/** Where a backend answers what it knows of patients (embedded: SQLite; AWS: the state table). */
export interface PatientDirectory {
  lookup(patientIds: readonly string[]): Promise<Map<string, PatientFacts>>;
  /**
   * Reserves room for these new patients under the ceiling, at once (no other request can take the same room): a
   * release to call once they are queued (`admitted`: durably) or refused or given up (the queue failed), or how
   * many patients the server holds. Absent: no ceiling.
   */
  admitNew?(
    patientIds: readonly string[],
    ceiling: number,
  ): { ok: true; release(admitted: boolean): void } | { ok: false; active: number };
}

export interface AdmitOptions {
  directory?: PatientDirectory;
  /** The most patients with recent data the server takes (a new one beyond is refused). */
  maxPatients?: number;
}

/**
 * The messages refused (by index in the request, naming the patient), and a release for the room reserved for the
 * new patients of the others, to call once they are queued or given up.
 */
export interface Admission {
  /**
   * `full`: refused for the ceiling alone (the message is valid, the server lacks room): a retry-later answer (503),
   * never a 403, which tells an interface engine to drop it (docs/security.md, "New patients").
   */
  refusals: { index: number; error: string; full?: true }[];
  /** `admitted`: the messages were durably queued (a new patient was taken); false when refused or given up. */
  release(admitted: boolean): void;
}

const nothing = () => undefined;

/**
 * Whether each message's patient is this principal's, and room under the ceiling for the new patients of the rest
 * (a message for a new patient when there is no room is refused). JSON ingest refuses the whole request when
 * anything is refused; HL7 v2 and FHIR keep the rest.
 */
export async function admitPatients(
  p: Principal,
  messages: readonly DeviceMessage[],
  o: AdmitOptions,
): Promise<Admission> {
  const scoped = p.wards !== undefined || p.patients !== undefined;
  const ceiling = o.maxPatients !== undefined && o.directory?.admitNew !== undefined;
  const needLookup = o.directory !== undefined && (p.wards !== undefined || ceiling);
  if (!scoped && !needLookup) return { refusals: [], release: nothing };
  const ids = [...new Set(messages.map((m) => m.patientId))];
  const facts = needLookup ? await o.directory!.lookup(ids) : new Map<string, PatientFacts>();
  const refusals: Admission['refusals'] = [];
  // The request places a patient in the last ward it gives them, for its messages that give none, whatever their
  // order: a FHIR transaction's infusion Procedure (dated earlier) comes before the Encounter that names the ward.
  const placed = new Map<string, string>();
  for (const m of messages) if (m.enrolment?.ward !== undefined) placed.set(m.patientId, m.enrolment.ward);
  messages.forEach((m, index) => {
    const ward = m.enrolment?.ward ?? placed.get(m.patientId);
    const refusal = scopeRefusal(p, m.patientId, facts.get(m.patientId), ward);
    if (refusal) refusals.push({ index, error: refusal });
  });
  if (!ceiling) return { refusals, release: nothing };
  const refused = new Set(refusals.map((r) => r.index));
  const fresh = [
    ...new Set(messages.flatMap((m, i) => (!refused.has(i) && !facts.get(m.patientId)?.known ? [m.patientId] : []))),
  ];
  if (fresh.length === 0) return { refusals, release: nothing };
  const room = o.directory!.admitNew!(fresh, o.maxPatients!);
  if (room.ok) return { refusals, release: room.release };
  messages.forEach((m, index) => {
    if (!refused.has(index) && fresh.includes(m.patientId)) {
      refusals.push({
        index,
        error: `patientId: patient ${m.patientId} would be new, and this server already holds ${room.active} patients with recent data (the ceiling: crs serve --max-patients ${o.maxPatients}); send it again later: the operator is alerted`,
        full: true,
      });
    }
  });
  return { refusals: refusals.sort((a, b) => a.index - b.index), release: nothing };
}

/** Why this patient is outside the principal's reach, or undefined. `ward`: where the request places the patient. */
function scopeRefusal(
  p: Principal,
  patientId: string,
  f: PatientFacts | undefined,
  ward: string | undefined,
): string | undefined {
  if ((p.wards === undefined && p.patients === undefined) || p.patients?.includes(patientId)) return undefined;
  if (!p.wards) return `patientId: patient ${patientId} is not one of this token's patients`;
  // Which ward it lies in cannot be told: refused, named (never taken on the message's word, nor answered 503).
  if (f?.unreadable)
    return `patientId: patient ${patientId}'s stored state cannot be read, so its ward cannot be checked against this token's; ask the operator`;
  const known = f?.known ? f.ward : undefined;
  if (known !== undefined) {
    return p.wards.includes(known)
      ? undefined
      : // Which ward is not said: the token's holder may not know where a patient of another ward lies.
        `patientId: patient ${patientId} is in another ward, outside this token's wards (${p.wards.join(', ')})`;
  }
  if (ward !== undefined && p.wards.includes(ward)) return undefined;
  return `patientId: patient ${patientId} is in no ward this server knows; a token for wards ${p.wards.join(', ')} reaches a patient that a message places there (enrolment.ward)`;
}

/** A kind named on the command line or stored with a token. */
export const isDeviceKind = (k: unknown): k is DeviceKind =>
  typeof k === 'string' && (DEVICE_KINDS as readonly string[]).includes(k);

/**
 * Wards and patients as a token keeps them: trimmed, unique, each a contract id (patients) or a label as
 * `enrolment.ward` takes it (wards). A refusal says what is wrong as the contract says it of `enrolment.ward` (too
 * long, a control or format character, with its code point) and quotes what was given escaped: a bidirectional
 * override or a zero-width character is never printed raw on the operator's terminal.
 */
export function checkScope(scope: {
  kind?: string;
  wards?: string[];
  patients?: string[];
}): { ok: true; scope: TokenScope } | { ok: false; error: string } {
  if (scope.kind !== undefined && !isDeviceKind(scope.kind))
    return { ok: false, error: `kind must be one of ${DEVICE_KINDS.join(', ')} (got ${quoted(scope.kind)})` };
  const wards = [...new Set((scope.wards ?? []).map((w) => w.trim()))];
  const patients = [...new Set((scope.patients ?? []).map((w) => w.trim()))];
  for (const ward of wards) {
    const checked = WARD.safeParse(ward);
    if (!checked.success)
      return {
        ok: false,
        error: `ward: ${checked.error.issues[0]?.message ?? 'is not a ward'} (a ward follows the rule of enrolment.ward)`,
      };
  }
  const badPatient = patients.find((id) => !ID_PATTERNS.patientId.pattern.test(id));
  if (badPatient !== undefined)
    return {
      ok: false,
      error: `patient must be a patient id (${ID_PATTERNS.patientId.text}) (got ${quoted(badPatient)})`,
    };
  return {
    ok: true,
    scope: {
      ...(scope.kind ? { kind: scope.kind as DeviceKind } : {}),
      ...(wards.length ? { wards } : {}),
      ...(patients.length ? { patients } : {}),
    },
  };
}

/**
 * A ward as a scope's description names it: quoted when it holds a comma, a space or a quote (the ward "East, 3" in
 * a list "East, 3,ICU" read as three wards).
 */
const wardWord = (ward: string) => (/^[^\s,"]+$/u.test(ward) ? ward : quoted(ward));

/** The scope in words, for `crs token list` and the logs. */
export function describeScope(scope: TokenScope): string {
  const kind = scope.kind ?? 'no kind (legacy)';
  const reach = [
    scope.wards?.length ? `wards ${scope.wards.map(wardWord).join(',')}` : '',
    scope.patients?.length ? `patients ${scope.patients.join(',')}` : '',
  ].filter(Boolean);
  return `${kind}${reach.length ? `; ${reach.join('; ')}` : '; every patient'}`;
}
