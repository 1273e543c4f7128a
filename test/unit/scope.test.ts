// Device scopes (shared/app/scope.ts): what each kind of device token may send, which source.kind it may claim,
// whose patients it reaches, and the ceiling on new patients. The rule both backends and every route call.
import { describe, expect, it } from 'vitest';
import {
  RIGHTS,
  admitPatients,
  checkScope,
  describeScope,
  principalOf,
  sectionRefusals,
  type PatientDirectory,
  type PatientFacts,
  type Principal,
} from '../../shared/app/scope.ts';
import { SECTIONS, type DeviceMessage } from '../../shared/domain/contract.ts';
import { enrol, msg } from '../support/messages.ts';

const as = (role: Principal['role'], extra: Partial<Principal> = {}): Principal => ({
  deviceId: `${role}-1`,
  role,
  ...extra,
});
const kind = (m: DeviceMessage, k: DeviceMessage['source']['kind']): DeviceMessage => ({
  ...m,
  source: { ...m.source, kind: k },
});

/** One message per section, each claiming the kind given. */
const bySection = (k: DeviceMessage['source']['kind']): Record<(typeof SECTIONS)[number], DeviceMessage> => ({
  enrolment: kind(msg('P', 0, { enrolment: { ward: 'H4', bed: '3' } }), k),
  vitals: kind(msg('P', 0, { vitals: { heartRate: 80 } }), k),
  oxygen: kind(msg('P', 0, { oxygen: { device: 'nasal_cannula', flowLpm: 2 } }), k),
  vasopressors: kind(msg('P', 0, { vasopressors: [{ drug: 'norepinephrine', dose: 0.05, unit: 'mcg/kg/min' }] }), k),
  medications: kind(msg('P', 0, { medications: [{ drug: 'tocilizumab', doseMg: 560 }] }), k),
  neuro: kind(msg('P', 0, { neuro: { iceScore: 9 } }), k),
  organToxicity: kind(msg('P', 0, { organToxicity: { maxCtcaeGrade: 1 } }), k),
  labs: kind(msg('P', 0, { labs: { crpMgL: 40 } }), k),
  monitoringEnd: kind(msg('P', 0, { monitoringEnd: { reason: 'discharged' } }), k),
});

describe('what each kind of device may send', () => {
  const table: [Principal['role'], string[]][] = [
    ['monitor', ['enrolment', 'vitals', 'oxygen']],
    ['ventilator', ['vitals', 'oxygen']],
    ['pump', ['vasopressors', 'medications']],
    ['manual', [...SECTIONS]],
    ['ehr', [...SECTIONS]],
    // The end of monitoring came after scopes: a token without a kind may not stop the stale-feed watch.
    ['legacy', SECTIONS.filter((s) => s !== 'monitoringEnd')],
  ];
  it.each(table)('a %s token sends %j and is refused the rest, naming the section', (role, allowed) => {
    const claim = role === 'legacy' || role === 'ehr' ? 'monitor' : role;
    for (const [section, m] of Object.entries(bySection(claim as DeviceMessage['source']['kind']))) {
      const refused = sectionRefusals(as(role), m);
      if (allowed.includes(section)) expect(refused, section).toEqual([]);
      else
        expect(refused, section).toEqual([
          expect.stringMatching(
            new RegExp(
              `^${section}: a ${role === 'legacy' ? 'token without a device kind \\(issued before scopes\\)' : `${role} token`} may not send ${section} \\(it sends `,
            ),
          ),
        ]);
    }
  });

  it("lets only ehr and manual tokens (and the operator's own) set therapy, infusion, weight and hypotension thresholds", () => {
    const settings = enrol('P', 0, { hypotension: { systolicBelow: 20, mapBelow: 10 } });
    for (const role of ['ehr', 'local'] as const) expect(sectionRefusals(as(role), settings)).toEqual([]);
    expect(sectionRefusals(as('manual'), kind(settings, 'manual'))).toEqual([]);
    const monitor = sectionRefusals(as('monitor'), settings);
    expect(monitor.map((e) => e.split(':')[0])).toEqual([
      'enrolment.therapy',
      'enrolment.product',
      'enrolment.infusedAt',
      'enrolment.weightKg',
      'enrolment.hypotension',
    ]);
    // A token from before scopes keeps bed and ward but not the settings, and is told how to get them.
    const legacy = sectionRefusals(as('legacy'), settings);
    expect(legacy.map((e) => e.split(':')[0])).toEqual([
      'enrolment.therapy',
      'enrolment.product',
      'enrolment.infusedAt',
      'enrolment.weightKg',
      'enrolment.hypotension',
    ]);
    expect(legacy[0]).toMatch(/issued before scopes.*crs token scope TOKEN_ID --kind ehr/);
  });

  it('checks source.kind against the token: a device claims its own kind; the EHR relays any', () => {
    const pretending = kind(msg('P', 0, { vasopressors: [] }), 'ehr');
    expect(sectionRefusals(as('pump'), pretending)).toEqual([
      'source.kind: "ehr" is not allowed for a pump token (it sends source.kind "pump")',
    ]);
    expect(sectionRefusals(as('manual'), kind(msg('P', 0, { vitals: { spo2: 97 } }), 'monitor'))[0]).toMatch(
      /^source.kind: "monitor"/,
    );
    for (const k of ['monitor', 'pump', 'ventilator', 'ehr', 'manual'] as const)
      expect(sectionRefusals(as('ehr'), kind(msg('P', 0, { vitals: { spo2: 97 } }), k))).toEqual([]);
    expect(RIGHTS.legacy.claims).toHaveLength(5); // old tokens keep claiming what they claimed
  });
});

/** A directory over a fixed set of patients, with a ceiling that counts what it admitted. */
function directory(
  known: Record<string, string | null>,
  active = Object.keys(known).length,
): PatientDirectory & { reserved: () => number } {
  let reserved = 0;
  return {
    reserved: () => reserved,
    lookup: async (ids) =>
      new Map(
        ids.flatMap((id): [string, PatientFacts][] =>
          id in known ? [[id, { known: true, ...(known[id] ? { ward: known[id]! } : {}) }]] : [],
        ),
      ),
    admitNew: (ids, ceiling) => {
      if (active + reserved + ids.length > ceiling) return { ok: false, active: active + reserved };
      reserved += ids.length;
      return { ok: true, release: () => (reserved -= ids.length) };
    },
  };
}

describe('whose patients a token reaches', () => {
  const d = directory({ 'P-H4': 'H4', 'P-ICU': 'ICU', 'P-none': null });
  const vitals = (p: string) => msg(p, 0, { vitals: { heartRate: 90 } });

  it('a ward token reaches the patients the server has in its wards, and new patients a message places there', async () => {
    const h4 = as('monitor', { wards: ['H4'] });
    expect((await admitPatients(h4, [vitals('P-H4')], { directory: d })).refusals).toEqual([]);
    expect((await admitPatients(h4, [vitals('P-ICU')], { directory: d })).refusals).toEqual([
      { index: 0, error: "patientId: patient P-ICU is in another ward, outside this token's wards (H4)" },
    ]);
    // A new patient: only when the request places it in the token's wards (an earlier message of the request counts).
    expect((await admitPatients(h4, [vitals('P-new')], { directory: d })).refusals[0]!.error).toMatch(
      /patient P-new is in no ward this server knows/,
    );
    const placed = [msg('P-new', 0, { enrolment: { ward: 'H4' } }), vitals('P-new')];
    expect((await admitPatients(h4, placed, { directory: d })).refusals).toEqual([]);
    // Setting a ward outside its own is refused as a field (so the HL7 and FHIR screens drop just that part).
    expect(sectionRefusals(h4, msg('P-H4', 0, { enrolment: { ward: 'ICU' } }))).toEqual([
      'enrolment.ward: "ICU" is outside this token\'s wards (H4)',
    ]);
  });

  // Until 2026-12-05 the AWS directory failed on such a patient, and every request naming it was answered 503.
  it('a ward token is refused, named, a patient whose stored state cannot be read, even placed in its ward; the others are taken', async () => {
    const h4 = as('monitor', { wards: ['H4'] });
    const bad = {
      lookup: async (ids: readonly string[]) =>
        new Map(
          ids.map((id) => [
            id,
            id === 'P-bad' ? { known: true, unreadable: true as const } : { known: true, ward: 'H4' },
          ]),
        ),
    };
    const placed = msg('P-bad', 0, { enrolment: { ward: 'H4' } });
    expect((await admitPatients(h4, [vitals('P-H4'), placed], { directory: bad })).refusals).toEqual([
      {
        index: 1,
        error:
          "patientId: patient P-bad's stored state cannot be read, so its ward cannot be checked against this token's; ask the operator",
      },
    ]);
    // A token of that patient's own reaches it.
    const mine = as('pump', { wards: ['H4'], patients: ['P-bad'] });
    expect((await admitPatients(mine, [vitals('P-bad')], { directory: bad })).refusals).toEqual([]);
  });

  it('a patient token reaches its patients only; no scope reaches everyone', async () => {
    const mine = as('pump', { patients: ['P-ICU'] });
    expect((await admitPatients(mine, [vitals('P-ICU')], { directory: d })).refusals).toEqual([]);
    expect((await admitPatients(mine, [vitals('P-H4'), vitals('P-ICU')], { directory: d })).refusals).toEqual([
      { index: 0, error: "patientId: patient P-H4 is not one of this token's patients" },
    ]);
    expect((await admitPatients(as('ehr'), [vitals('P-H4'), vitals('P-x')], { directory: d })).refusals).toEqual([]);
  });

  it('new patients beyond the ceiling are refused with a clear error, and the room is reserved until released', async () => {
    const full = directory({ a: null, b: null }, 2);
    const first = await admitPatients(as('ehr'), [vitals('c')], { directory: full, maxPatients: 3 });
    expect(first.refusals).toEqual([]);
    expect(full.reserved()).toBe(1);
    // A concurrent request while the first is being queued finds no room: the reservation holds it.
    const second = await admitPatients(as('ehr'), [vitals('d'), vitals('a')], { directory: full, maxPatients: 3 });
    expect(second.refusals).toEqual([
      {
        index: 0,
        error:
          'patientId: patient d would be new, and this server already holds 3 patients with recent data (the ceiling: crs serve --max-patients 3); send it again later: the operator is alerted',
        full: true,
      },
    ]);
    first.release(true);
    expect(full.reserved()).toBe(0);
    // Known patients never count against it.
    expect(
      (await admitPatients(as('pump'), [vitals('a'), vitals('b')], { directory: full, maxPatients: 2 })).refusals,
    ).toEqual([]);
  });
});

describe('refusals from both rules, in request order', () => {
  it('a ceiling refusal and a scope refusal come back ordered by message index, so the first named is the first bad', async () => {
    const full = directory({ a: null }, 1);
    const vitals = (p: string) => msg(p, 0, { vitals: { heartRate: 90 } });
    const mine = as('ehr', { patients: ['new1'] });
    const r = await admitPatients(mine, [vitals('new1'), vitals('other')], { directory: full, maxPatients: 1 });
    expect(r.refusals.map((x) => x.index)).toEqual([0, 1]);
    expect(r.refusals[0]!.error).toMatch(/^patientId: patient new1 would be new/);
    expect(r.refusals[1]!.error).toBe("patientId: patient other is not one of this token's patients");
  });
});

describe('a ward token and a new patient placed elsewhere', () => {
  it('is refused by the patient rule on its own, not only by the enrolment.ward rule that routes run first', async () => {
    const h4 = as('monitor', { wards: ['H4'] });
    const placed = msg('P-new', 0, { enrolment: { ward: 'ICU' } });
    expect((await admitPatients(h4, [placed], {})).refusals).toEqual([
      {
        index: 0,
        error:
          'patientId: patient P-new is in no ward this server knows; a token for wards H4 reaches a patient that a message places there (enrolment.ward)',
      },
    ]);
  });
});

describe('wards in a scope', () => {
  // Until 2026-12-05 every refused ward was "1-32 printable characters" with the ward quoted raw: a bidirectional
  // override reordered the operator's terminal line, a zero-width space was not seen in it.
  const refused = (ward: string) => {
    const c = checkScope({ kind: 'monitor', wards: [ward] });
    if (c.ok) throw new Error(`${JSON.stringify(ward)} was taken`);
    expect(c.error).not.toMatch(/[\p{Cc}\p{Cf}]/u);
    return c.error;
  };

  it('names what is wrong with a ward as the contract names it in enrolment.ward, the character escaped', () => {
    expect(refused('H4\u200b')).toBe(
      'ward: "H4\\u200b" contains a format character (U+200B), which can hide or reorder text (a ward follows the rule of enrolment.ward)',
    );
    expect(refused('ICU\u202e4H')).toBe(
      'ward: "ICU\\u202e4H" contains a format character (U+202E), which can hide or reorder text (a ward follows the rule of enrolment.ward)',
    );
    expect(refused('H\u00074')).toBe(
      'ward: "H\\u00074" contains a control character (U+0007) (a ward follows the rule of enrolment.ward)',
    );
    expect(refused('x'.repeat(33))).toMatch(/^ward: "x+" is longer than 32 characters \(/);
    expect(refused(' ')).toMatch(/^ward: is empty \(/);
    expect(refused('H4\u200d')).toMatch(
      /^ward: "H4\\u200d" holds a zero-width joiner \(U\+200D\) where it joins nothing/,
    );
    expect(refused('S\ufffdd')).toMatch(/holds U\+FFFD, the mark of bytes that were not UTF-8/);
    // The ward rule takes what enrolment.ward takes: a Persian ward name with its non-joiner.
    expect(checkScope({ kind: 'monitor', wards: ['\u0628\u062e\u0634\u200c\u06cc'] })).toMatchObject({ ok: true });
  });

  it('shows a refused kind or patient escaped too', () => {
    const kind = checkScope({ kind: 'monitor\u202e' });
    expect(kind).toEqual({
      ok: false,
      error: 'kind must be one of monitor, pump, ventilator, ehr, manual (got "monitor\\u202e")',
    });
    const patient = checkScope({ kind: 'pump', patients: ['P\u200b1'] });
    expect(patient).toEqual({
      ok: false,
      error: 'patient must be a patient id (1-64 characters of A-Z a-z 0-9 . _ : -) (got "P\\u200b1")',
    });
  });
});

describe('patient ids in a scope', () => {
  it('takes a patient id of 64 characters and refuses 65, as the contract does', () => {
    expect(checkScope({ kind: 'pump', patients: ['p'.repeat(64)] })).toEqual({
      ok: true,
      scope: { kind: 'pump', patients: ['p'.repeat(64)] },
    });
    expect(checkScope({ kind: 'pump', patients: ['p'.repeat(65)] })).toEqual({
      ok: false,
      error: `patient must be a patient id (1-64 characters of A-Z a-z 0-9 . _ : -) (got "${'p'.repeat(65)}")`,
    });
  });
});

describe('scopes as operators type them', () => {
  it('checks kinds, wards and patient ids, and describes a scope', () => {
    expect(checkScope({ kind: 'pump', wards: [' H4 ', 'H4'], patients: [] })).toEqual({
      ok: true,
      scope: { kind: 'pump', wards: ['H4'] },
    });
    expect(checkScope({ kind: 'toaster' })).toEqual({
      ok: false,
      error: 'kind must be one of monitor, pump, ventilator, ehr, manual (got "toaster")',
    });
    expect(checkScope({ kind: 'pump', patients: ['a b'] })).toMatchObject({ ok: false });
    expect(checkScope({ kind: 'pump', wards: ['x'.repeat(33)] })).toMatchObject({ ok: false });
    expect(describeScope({ kind: 'monitor', wards: ['H4', 'ICU'] })).toBe('monitor; wards H4,ICU');
    expect(describeScope({})).toBe('no kind (legacy); every patient');
    // A ward with a comma or a space is quoted: "East, 3,ICU" read as three wards.
    expect(describeScope({ kind: 'monitor', wards: ['East, 3', 'ICU', 'Süd'] })).toBe(
      'monitor; wards "East, 3",ICU,Süd',
    );
    expect(principalOf('gw', { kind: 'monitor', wards: [], patients: ['P'] })).toEqual({
      deviceId: 'gw',
      role: 'monitor',
      patients: ['P'],
    });
  });
});

describe('pinned by a mutation run', () => {
  const vitals = (p: string) => msg(p, 0, { vitals: { heartRate: 90 } });

  it("does not refuse an enrolment field a mapper left undefined (a monitor's HL7 PV1 gives the ward only)", () => {
    const m = msg('P', 0, { enrolment: { ward: 'H4', bed: '3', therapy: undefined } as never });
    expect(sectionRefusals(as('monitor'), m)).toEqual([]);
  });

  it('lets a token move one of its own patients out of its wards (the patient list reaches them anywhere)', () => {
    const both = as('monitor', { wards: ['H4'], patients: ['P-mine'] });
    expect(sectionRefusals(both, msg('P-mine', 0, { enrolment: { ward: 'ICU' } }))).toEqual([]);
    expect(sectionRefusals(both, msg('P-other', 0, { enrolment: { ward: 'ICU' } }))).toEqual([
      'enrolment.ward: "ICU" is outside this token\'s wards (H4)',
    ]);
  });

  it("places a new patient by each message's own ward; the last ward counts only for messages giving none", async () => {
    const h4 = as('monitor', { wards: ['H4'] });
    const request = [
      msg('P-new', 0, { enrolment: { ward: 'H4' } }),
      msg('P-new', 0, { enrolment: { ward: 'ICU' } }),
      vitals('P-new'),
    ];
    // HL7 v2 and FHIR keep what is allowed: the message placing the patient in H4 goes through.
    expect((await admitPatients(h4, request, { directory: directory({}) })).refusals.map((r) => r.index)).toEqual([
      1, 2,
    ]);
  });

  it('names each refused message once, even when the ceiling would refuse its patient too', async () => {
    const h4 = as('monitor', { wards: ['H4'] });
    const full = directory({ a: null }, 1);
    const request = [msg('P-new', 0, { enrolment: { ward: 'ICU' } }), msg('P-new', 0, { enrolment: { ward: 'H4' } })];
    const r = await admitPatients(h4, request, { directory: full, maxPatients: 1 });
    expect(r.refusals.map((x) => x.index)).toEqual([0, 1]);
    expect(r.refusals[0]!.error).toMatch(/^patientId: patient P-new is in no ward this server knows/);
    expect(r.refusals[1]!.error).toMatch(/^patientId: patient P-new would be new/);
  });

  it('keeps each patient of a scope once', () => {
    expect(checkScope({ kind: 'pump', patients: ['P1', ' P1 ', 'P2'] })).toEqual({
      ok: true,
      scope: { kind: 'pump', patients: ['P1', 'P2'] },
    });
  });
});
