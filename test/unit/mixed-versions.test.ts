// Upgrades while messages flow: on AWS a deploy (or a rollback) updates the functions one at a time, and a message
// queued by one release's ingest is graded by another release's grade function. The queued message was validated by
// the ingest that queued it; the grade function reads it again. A field a later release adds (2026-12-03:
// `monitoringEnd`, which the grade function of that morning refused as an unknown section) must not make a valid
// message a poison message: held 3 times 90 s with its patient's later messages, then dead-lettered, its page lost
// until someone redrives it. The device contract at the ingest stays strict (contract.test.ts). The grade function
// and the embedded worker over them: handlers-grade.test.ts, embedded-store.test.ts.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeStateItem, encodeStateItem } from '#adapters/aws/state-item.ts';
import { outboxRecord } from '#adapters/aws/dynamo-state-store.ts';
import { parseTimerMessage } from '#adapters/aws/sqs-timer.ts';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import { validateMessage, validateQueuedMessage, type DeviceMessage } from '#domain/contract.ts';
import { readPage } from '#domain/paging.ts';
import { reduce } from '#domain/reducer.ts';
import { arrivalOf } from '#app/digest.ts';
import { laterReleaseFields, readQueued } from '#app/grade.ts';
import { timeline } from '#test/support/arbitraries.ts';
import '#test/support/fast-check-seed.ts';
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

  it('leaves out a section that the unknown fields of a part of it leave empty, and keeps the other sections', () => {
    // A later release's hypotension threshold alone: the thresholds go, then the enrolment they leave empty; the
    // fever beside them is graded (until 2026-12-07 the empty enrolment refused the message: dead-lettered).
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const v = validateQueuedMessage({ ...m, enrolment: { hypotension: { diastolicBelow: 50 } } });
    expect(v).toEqual({ ok: true, message: m, ignored: ['enrolment.hypotension.diastolicBelow'] });
    // An enrolment with a field this release reads keeps it.
    const ward = { ...m, enrolment: { ward: 'H4' } };
    expect(validateQueuedMessage({ ...ward, enrolment: { ward: 'H4', hypotension: { diastolicBelow: 50 } } })).toEqual({
      ok: true,
      message: ward,
      ignored: ['enrolment.hypotension.diastolicBelow'],
    });
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

  it('reads any valid message with fields added anywhere in it as the message itself, naming each (fast-check)', () => {
    /** Every object of a message, by its path: the message, its source, its sections, their list entries. */
    const objects = (value: unknown, path: (string | number)[] = []): (string | number)[][] =>
      typeof value !== 'object' || value === null
        ? []
        : [
            ...(Array.isArray(value) ? [] : [path]),
            ...Object.entries(value).flatMap(([k, v]) => objects(v, [...path, Array.isArray(value) ? Number(k) : k])),
          ];
    const added = fc.array(fc.tuple(fc.nat(), fc.stringMatching(/^[a-z][A-Za-z0-9]{0,11}$/), fc.jsonValue()), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(timeline('P', 3), added, (messages, extras) => {
        for (const m of messages) {
          const sent = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
          const paths = objects(sent);
          const names = new Set<string>();
          for (const [at, key, value] of extras) {
            const path = paths[at % paths.length]!;
            const target = path.reduce<Record<string | number, unknown>>((o, p) => o[p] as never, sent);
            const name = `next_${key}`;
            const shown = [...path, name].map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');
            if (names.has(shown)) continue;
            names.add(shown);
            target[name] = value;
          }
          const v = validateQueuedMessage(sent);
          expect(v).toEqual({ ...validateMessage(m), ignored: expect.anything() });
          expect(v.ok).toBe(true);
          expect(new Set(v.ignored)).toEqual(names);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('reads the queue body through it: a later release`s field is no poison message', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const body = JSON.stringify({ message: later(m, { monitoringNote: 'x' }), digest: 'd', sender: 'gw-1' });
    const q = readQueued([body]);
    expect(q.messages).toEqual([m]);
    expect(q.ignored).toEqual([['monitoringNote']]);
  });

  it('names the fields left out of each message by its place, a poison message before it or not', () => {
    const m = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    const bodies = [
      '{',
      JSON.stringify({ message: later(m, { monitoringNote: 'x' }) }),
      JSON.stringify({ message: m }),
    ];
    const q = readQueued(bodies);
    expect(q.messages[0]).toBeInstanceOf(Error);
    expect(q.messages.slice(1)).toEqual([m, m]);
    expect(q.ignored).toEqual([[], ['monitoringNote'], []]);
  });
});

// The other records between our own functions already pass over what a later release adds: pinned, so that no reader
// is made strict unawares (each as 2026-12-06's release reads today's, by hand, 2026-12-07).
describe('records a later release adds to, read by this one', () => {
  // And named, as a field of the message is (2026-12-07, a walk of docs/runbook.md, "Deploying an upgrade while
  // messages flow": the grade log's warning is the operator's sign that an earlier grade function reads what a later
  // ingest queued; a later ingest that added to the body alone gave none).
  it('a queue body with an envelope field it does not know: the message and its provenance read, the field named', () => {
    const m = enrol('P');
    const body = JSON.stringify({
      message: m,
      digest: 'd',
      receivedAt: '2026-01-10T08:00:00Z',
      sender: 'gw',
      trace: 1,
    });
    const q = readQueued([body]);
    expect(q).toEqual({
      messages: [m],
      provenance: [{ sender: 'gw', receivedAt: Date.parse('2026-01-10T08:00:00Z') }],
      ignored: [['queueBody.trace']],
    });
    expect(laterReleaseFields(q)).toEqual([{ index: 0, messageId: m.messageId, fields: ['queueBody.trace'] }]);
  });

  it('an outbox grade change with a field and an attribute it does not know: paged as a grade change', () => {
    const notification = { notificationId: 'P#1', patientId: 'P', teams: ['icu'], toGrade: 2, severity: 'x' };
    const image = { kind: { S: 'outbox' }, notification: { S: JSON.stringify(notification) }, shard: { S: '7' } };
    expect(outboxRecord(image)).toEqual({ record: 'notification', notification });
  });

  it('an outbox record of a kind it does not know is no grade change: an error, which the notifier parks', () => {
    const image = { kind: { S: 'outbox' }, record: { S: 'digest' }, digest: { S: '{}' } };
    expect(() => outboxRecord(image)).toThrow('outbox record has no notification');
  });

  it('a state item with parts appended to the state and to the item: read, pending messages and all', () => {
    let state = reduce(undefined, enrol('P'), DEFAULT_CONFIG, arrivalOf(enrol('P'))).state;
    const fever = msg('P', 5, { vitals: { temperatureC: 39.2 } });
    state = reduce(state, fever, DEFAULT_CONFIG, arrivalOf(fever)).state;
    const pending = [{ messageId: fever.messageId, digests: ['d1'], entries: [] }];
    const [compact, encoded] = JSON.parse(inflateRawSync(encodeStateItem(state, pending)).toString('utf8'));
    const later = deflateRawSync(
      JSON.stringify([[...compact, 12, [1, 2]], encoded.map((e: unknown[]) => [...e, 'x']), 'z']),
    );
    const read = decodeStateItem(later);
    expect(read.pending).toEqual(pending);
    expect(read.state.vitals.temperatureC?.v).toBe(39.2);
    expect(read.state.enrolment).toEqual(decodeStateItem(encodeStateItem(state, pending)).state.enrolment);
  });

  it('a page with a field it does not know: read, and the field kept for the release that wrote it', () => {
    const page = {
      pageId: 'crs|P|#1|icu',
      notificationId: 'P#1',
      patientId: 'P',
      team: 'icu',
      subject: 'crs',
      kind: 'escalation',
      grade: 2,
      summary: 's',
      status: 'open',
      delivered: true,
      level: 0,
      round: 0,
      triggeredAt: 1,
      dueAt: 2,
      quietUntil: 3,
    };
    expect(readPage(page.pageId, JSON.stringify(page), 4)).toEqual({ ...page, rev: 4 });
  });

  it('an escalation timer with a field it does not know: woken at its time', () => {
    expect(parseTimerMessage(JSON.stringify({ wakeAt: 5, reason: 'silence' }))).toEqual({ wakeAt: 5 });
  });
});
