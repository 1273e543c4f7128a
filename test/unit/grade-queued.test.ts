// gradeQueued (shared/app/grade.ts), the one place both backends grade a patient's queued messages and fall back to
// one at a time: over fakes, a message is either committed or failed with its error, never lost, never graded twice.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { seenCount } from '#domain/seen.ts';
import { gradePatient, gradeQueued, readQueued, type Queued } from '#app/grade.ts';
import type { StateStore } from '#ports';
import { enrol, msg } from '#test/support/messages.ts';
import { MemoryStateStore } from '#test/support/port-fakes.ts';

const body = (m: DeviceMessage) => JSON.stringify({ message: m, sender: 'gw-1' });
/** A write the store refuses for a reason of the message's own (not an outage). */
const refused = () => Object.assign(new Error('Transaction too large'), { name: 'ValidationException' });
const outage = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
const isOutage = (err: unknown) => (err as Error).name === 'ThrottlingException';

/** A store over memory that refuses (or fails with) any write carrying one of `refuse`'s message ids; every try noted. */
function fakeStore(refuse: Record<string, () => Error> = {}) {
  const memory = new MemoryStateStore();
  const tries: string[][] = [];
  const store: StateStore = {
    load: (patientId) => memory.load(patientId),
    save: async (patientId, state, version, outbox, extras) => {
      const ids = (extras?.seen ?? []).map((s) => s.messageId);
      tries.push(ids);
      for (const id of ids) if (refuse[id]) throw refuse[id]!();
      await memory.save(patientId, state, version, outbox);
    },
  };
  const applied = (patientId: string) => seenCount(memory.state(patientId)?.seen ?? []);
  return { store, tries, applied };
}

/** Grades as the grade Lambda does; counts the calls of each kind. */
async function run(store: StateStore, bodies: string[]) {
  const queued = readQueued(bodies);
  const calls = { together: 0, alone: [] as number[] };
  const grade = (q: Queued) => gradePatient(store, DEFAULT_CONFIG, 'P', q.messages, q.provenance);
  const result = await gradeQueued(
    queued,
    {
      together: () => {
        calls.together++;
        return grade(queued);
      },
      alone: (part, i) => {
        calls.alone.push(i);
        return grade(part);
      },
    },
    isOutage,
  );
  return { result, calls };
}

describe('gradeQueued', () => {
  it('grades the group together: one write, nothing one at a time', async () => {
    const { store, tries, applied } = fakeStore();
    const { result, calls } = await run(store, [enrol('P'), msg('P', 5, { vitals: { temperatureC: 38.6 } })].map(body));
    expect(result.committed).toBe(2);
    expect(result.error).toBeUndefined();
    expect(calls).toEqual({ together: 1, alone: [] });
    expect(tries).toHaveLength(1);
    expect(applied('P')).toBe(2);
  });

  it('fails a lone message the store refuses at once, with its error: written once, not graded again', async () => {
    const lone = enrol('P');
    const { store, tries, applied } = fakeStore({ [lone.messageId]: refused });
    const { result, calls } = await run(store, [body(lone)]);
    expect(result).toMatchObject({ committed: 0, steps: [], notifications: [] });
    expect(result.error?.name).toBe('ValidationException');
    expect(calls).toEqual({ together: 1, alone: [] });
    expect(tries).toEqual([[lone.messageId]]);
    expect(applied('P')).toBe(0);
  });

  it('fails a lone body that no longer parses with its parse error (a poison message), nothing written', async () => {
    const { store, tries } = fakeStore();
    const { result, calls } = await run(store, ['{not json']);
    expect(result.committed).toBe(0);
    expect(result.error?.message).toBe('queue body is not JSON');
    expect(calls).toEqual({ together: 1, alone: [] });
    expect(tries).toEqual([]);
  });

  it('a group whose second message the store refuses: the first committed once, the second failed, the third untried', async () => {
    const [a, b, c] = [
      enrol('P'),
      msg('P', 5, { vitals: { temperatureC: 38.6 } }),
      msg('P', 10, { vitals: { temperatureC: 37 } }),
    ];
    const { store, tries, applied } = fakeStore({ [b!.messageId]: refused });
    const { result, calls } = await run(store, [a!, b!, c!].map(body));
    expect(result.committed).toBe(1);
    expect(result.steps).toHaveLength(1);
    expect(result.error?.name).toBe('ValidationException');
    expect(calls).toEqual({ together: 1, alone: [0, 1] });
    // Together (refused, nothing written), then a alone (written), then b alone (refused); c waits behind b.
    expect(tries).toEqual([[a!.messageId, b!.messageId, c!.messageId], [a!.messageId], [b!.messageId]]);
    expect(applied('P')).toBe(1);
  });

  it('throws an outage (each backend retries the patient its own way), trying nothing one at a time', async () => {
    const m = enrol('P');
    const { store } = fakeStore({ [m.messageId]: outage });
    const queued = readQueued([body(m), body(msg('P', 5, { vitals: { temperatureC: 37 } }))]);
    let alone = 0;
    await expect(
      gradeQueued(
        queued,
        {
          together: () => gradePatient(store, DEFAULT_CONFIG, 'P', queued.messages, queued.provenance),
          alone: async () => {
            alone++;
            return { committed: 0, steps: [], notifications: [] };
          },
        },
        isOutage,
      ),
    ).rejects.toThrow('Rate exceeded');
    expect(alone).toBe(0);
  });

  it('an outage while writing one at a time is the result error at its message, after the ones before it', async () => {
    const [a, b] = [enrol('P'), msg('P', 5, { vitals: { temperatureC: 38.6 } })];
    const { store, applied } = fakeStore();
    const queued = readQueued([a!, b!].map(body));
    const result = await gradeQueued(
      queued,
      {
        together: () => Promise.reject(refused()),
        alone: (part, i) =>
          i === 1 ? Promise.reject(outage()) : gradePatient(store, DEFAULT_CONFIG, 'P', part.messages, part.provenance),
      },
      isOutage,
    );
    expect(result.committed).toBe(1);
    expect(result.error?.name).toBe('ThrottlingException');
    expect(applied('P')).toBe(1);
  });
});
