// Upgrades while messages flow: on AWS a deploy (or a rollback) updates the functions one at a time, and a message
// queued by one release's ingest is graded by another release's grade function. The queued message was validated by
// the ingest that queued it; the grade function reads it again. A field a later release adds (2026-12-03:
// `monitoringEnd`, which the grade function of that morning refused as an unknown section) must not make a valid
// message a poison message: held 3 times 90 s with its patient's later messages, then dead-lettered, its page lost
// until someone redrives it. The device contract at the ingest stays strict (contract.test.ts). The grade function
// and the embedded worker over them: handlers-grade.test.ts, embedded-store.test.ts.
import { describe, expect, it } from 'vitest';
import { validateMessage, validateQueuedMessage, type DeviceMessage } from '#domain/contract.ts';
import { readQueued } from '#app/grade.ts';
import { enrol, msg } from '#test/support/messages.ts';

/** A queued message as an ingest of a later release may write it: this release's message and fields it does not know. */
const later = (m: DeviceMessage, extra: Record<string, unknown>): DeviceMessage =>
  ({ ...m, ...extra }) as unknown as DeviceMessage;

describe('a queued message from a later release (validateQueuedMessage)', () => {
  it('leaves out a section and a field this release does not know, names them, and keeps the rest', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const sent = { ...m, vitals: { temperatureC: 39.2, etco2MmHg: 38 }, imaging: { ctHead: 'normal' } };
    const v = validateQueuedMessage(sent);
    expect(v).toEqual({ ok: true, message: m, ignored: ['vitals.etco2MmHg', 'imaging'] });
    // The device contract is as strict as ever.
    expect(validateMessage(sent).ok).toBe(false);
  });

  it('takes a message of this release as validateMessage does, with nothing ignored', () => {
    const m = enrol('P');
    expect(validateQueuedMessage(m)).toEqual({ ok: true, message: m });
  });

  it('leaves out a section whose every field is unknown (it says nothing this release reads)', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const v = validateQueuedMessage({ ...m, neuro: { pupilAsymmetry: true } });
    expect(v).toEqual({ ok: true, message: m, ignored: ['neuro.pupilAsymmetry'] });
  });

  it('refuses an unknown field beside a value that is wrong, with the errors validateMessage gives', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const bad = { ...m, vitals: { temperatureC: 101.3, etco2MmHg: 38 } };
    const v = validateQueuedMessage(bad);
    expect(v.ok).toBe(false);
    expect(v).toEqual(validateMessage(bad));
  });

  it('refuses a message with nothing this release reads (dead-lettered: graded once the later release runs)', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const { vitals: _, ...head } = m;
    const only = { ...head, imaging: { ctHead: 'normal' } };
    const v = validateQueuedMessage(only);
    expect(v).toEqual(validateMessage(only));
    expect(v.ok).toBe(false);
  });

  it('leaves out an unknown field of a list entry and of the source', () => {
    const m = msg('P', 5, { vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min' }] });
    const sent = {
      ...m,
      source: { ...m.source, firmware: '2.1' },
      vasopressors: [{ drug: 'norepinephrine', dose: 0.1, unit: 'mcg/kg/min', line: 'central' }],
    };
    expect(validateQueuedMessage(sent)).toEqual({
      ok: true,
      message: m,
      ignored: ['source.firmware', 'vasopressors[0].line'],
    });
  });

  it('reads the queue body through it: a later release`s field is no poison message', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const body = JSON.stringify({ message: later(m, { monitoringNote: 'x' }), digest: 'd', sender: 'gw-1' });
    const q = readQueued([body]);
    expect(q.messages).toEqual([m]);
    expect(q.ignored).toEqual([['monitoringNote']]);
  });
});
